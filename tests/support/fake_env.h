// An environment for tests: the variables given, nothing else. An empty value counts as unset,
// as ProcessEnv() treats one (cli/options.h).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <utility>

#include "core/env.h"

namespace ferry::testing {

inline EnvLookup FakeEnv(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](const std::string& name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end() || it->second.empty()) return std::nullopt;
    return it->second;
  };
}

}  // namespace ferry::testing
