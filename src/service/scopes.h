// API token scopes: what a bearer token may do. Each route needs one of the levels below; a
// level includes the ones before it. Applying a workflow that uses secrets also needs a grant for
// each (docs/api.md "Authentication"):
//
//   read           every GET route (lists, details, event streams, alerts)
//   run            + start, cancel and retry runs; submit, cancel and retry tasks
//   apply          + apply workflows (that use no secret, or only granted ones)
//   admin          + every secret
//   secret:NAME    may apply workflows that use secret NAME ("secret:*": any secret)
//
// Thread-safety: pure functions.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace ferry::service {

enum class Scope { kRead = 0, kRun = 1, kApply = 2, kAdmin = 3 };
std::string_view ScopeName(Scope s);

// Parses "read,run" or "apply secret:GITHUB_TOKEN" (commas or spaces). kInvalidArgument names
// an unknown scope, a bad secret name or an empty item between commas ("read,,run"); at least
// one scope is required.
Result<std::vector<std::string>> ParseScopes(std::string_view text);

// "fy_" + 64 random hex characters: a new token's secret, shown once (the store keeps its
// SHA-256 only).
std::string NewApiTokenSecret();

// Whether `granted` includes `needed` (a level or the ones above it).
bool Allows(const std::vector<std::string>& granted, Scope needed);
// Whether `granted` may apply a workflow using secret `name` (admin, secret:*, secret:NAME).
bool AllowsSecret(const std::vector<std::string>& granted, std::string_view name);
// The first of `secrets` not allowed, if any.
std::optional<std::string> FirstDeniedSecret(const std::vector<std::string>& granted,
                                             const std::vector<std::string>& secrets);

}  // namespace ferry::service
