// JSON helpers over nlohmann::json. Parsing never throws: malformed input is an Error.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "core/result.h"

namespace ferry {

using Json = nlohmann::json;

// Parses text as JSON; the error names the byte offset.
Result<Json> ParseJson(std::string_view text);
// Compact dump that never throws on invalid UTF-8 (replaces bad bytes).
std::string DumpJson(const Json& j, int indent = -1);

}  // namespace ferry
