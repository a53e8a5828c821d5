// Task kinds with a meaning outside the worker that runs them.
#pragma once

#include <string_view>

namespace ferry {

// The built-in kind whose payload names the program to run (worker/builtin_handlers.cc). Such a
// program runs as the workers' user and can do what it can: read its files and secrets, reach
// its store and Redis. So submitting one through the API needs the admin scope (docs/api.md).
inline constexpr std::string_view kShellTaskKind = "shell";

// Kinds Ferry submits itself (ferry.run: a workflow run's task). No one else may submit one: a
// forged ferry.run task would take over the run it names.
inline constexpr std::string_view kFerryKindPrefix = "ferry.";
inline bool IsFerrysOwnKind(std::string_view kind) { return kind.rfind(kFerryKindPrefix, 0) == 0; }

}  // namespace ferry
