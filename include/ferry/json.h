// JSON helpers over nlohmann::json. Parsing never throws: malformed input is an Error.
//
// Every JSON text Ferry reads (API bodies, webhook bodies, CLI arguments, config and secrets
// files, records read back from Redis and the store) goes through ParseJson, which refuses, with
// kInvalidArgument and a message naming the place:
//   - nesting deeper than kMaxJsonDepth arrays/objects (nothing downstream recurses deeper);
//   - numbers outside the double range ("1e999");
//   - an object with the same key twice (the later value would silently win);
//   - syntax errors (the message names the byte offset).
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "ferry/result.h"

namespace ferry {

using Json = nlohmann::json;

// The deepest nesting of arrays and objects accepted anywhere (docs/api.md "Limits").
inline constexpr int kMaxJsonDepth = 128;

// Parses text as JSON under the rules above.
Result<Json> ParseJson(std::string_view text);

// Documents Ferry writes itself (a run's events, inputs and step outputs, a task's payload and
// result) and its own API's answers hold accepted values, each at most kMaxJsonDepth deep, under
// a few levels of their own (an event's {"trigger": {"body": ...}}, a response's envelope).
inline constexpr int kMaxStoredJsonDepth = kMaxJsonDepth + 16;
// ParseJson for such documents only, never for what a client sends: under kMaxJsonDepth a
// webhook body accepted 127 levels deep was read back as no trigger at all.
Result<Json> ParseStoredJson(std::string_view text);
// Compact dump that never throws on invalid UTF-8 (replaces bad bytes).
std::string DumpJson(const Json& j, int indent = -1);

// How deep `j` nests (a scalar is 0, [] and {} are 1). Iterative: safe on any depth.
int JsonDepth(const Json& j);

}  // namespace ferry
