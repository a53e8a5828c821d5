// Names that lists and tables print as they are (task kinds, unique keys, token names): a
// control character there would let an escape sequence paint over an operator's terminal, or a
// CR draw a fake row. Such names are refused where they come in.
#pragma once

#include <cstdio>
#include <string>
#include <string_view>

#include "core/result.h"

namespace ferry {

// kInvalidArgument naming `what` and the first control character (below 0x20, or DEL) in
// `text`, with its offset; ok when there is none.
inline Status NoControlCharacters(std::string_view text, std::string_view what) {
  for (size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x20 || c == 0x7f) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "0x%02x", c);
      return Fail(ErrorCode::kInvalidArgument, std::string(what) +
                                                   " must not hold control characters (byte " +
                                                   hex + " at offset " + std::to_string(i) + ")");
    }
  }
  return {};
}

// `text` with each NUL byte written as the six characters \u0000, as JSON shows it. For free text
// Ferry records but did not accept from anyone as given (an error a node's program printed):
// PostgreSQL's text cannot hold NUL, and a message is better kept legible than lost.
inline std::string ShowNulBytes(std::string text) {
  for (size_t at = text.find('\0'); at != std::string::npos; at = text.find('\0', at + 6)) {
    text.replace(at, 1, "\\u0000");
  }
  return text;
}

}  // namespace ferry
