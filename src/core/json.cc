#include "core/json.h"

namespace ferry {

Result<Json> ParseJson(std::string_view text) {
  try {
    return Json::parse(text.begin(), text.end());
  } catch (const Json::parse_error& e) {
    return Fail(ErrorCode::kInvalidArgument,
                "malformed JSON at byte " + std::to_string(e.byte) + ": " + e.what());
  }
}

std::string DumpJson(const Json& j, int indent) {
  return j.dump(indent, ' ', false, Json::error_handler_t::replace);
}

}  // namespace ferry
