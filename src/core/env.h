// How settings read the environment: one lookup type for every part that resolves FERRY_*
// variables (the CLI, ops settings, remediation settings), so a layered lookup (config file
// behind the environment, `ferry dev` endpoints behind both) passes through all of them.
//
// Thread-safety: a type only.
#pragma once

#include <functional>
#include <optional>
#include <string>

namespace ferry {

// The variable's value, or nullopt when unset. Empty values count as unset.
using EnvLookup = std::function<std::optional<std::string>(const std::string& name)>;

}  // namespace ferry
