// Task kinds with a meaning outside the worker that runs them.
#pragma once

#include <string_view>

namespace ferry {

// The built-in kind whose payload names the program to run (worker/builtin_handlers.cc). Such a
// program runs as the workers' user and can do what it can: read its files and secrets, reach
// its store and Redis. So submitting one through the API needs the admin scope (docs/api.md).
inline constexpr std::string_view kShellTaskKind = "shell";

}  // namespace ferry
