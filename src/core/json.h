// Internal name of the public header: JSON (include/ferry/json.h).
#pragma once

#include <optional>
#include <string>

#include "ferry/json.h"

namespace ferry {

// What in `value` its JSON text would not carry as it is, for a value built in code (a C++
// handler's result) rather than parsed: an integer above INT64_MAX (ParseJson refuses it read
// back, so the record would be kept as text), a NaN or an infinity (dumped as null), a string or
// key that is not UTF-8 (its bytes replaced). "n[2]: integer 18446744073709551615 is out of range
// (...)"; nullopt when everything is kept. Recursive: check JsonDepth first.
std::optional<std::string> UnkeptJsonValue(const Json& value);

}  // namespace ferry
