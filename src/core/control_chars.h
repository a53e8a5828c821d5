// Names that lists and tables print as they are (task kinds, unique keys, token names): a
// control character there would let an escape sequence paint over an operator's terminal, or a
// CR draw a fake row. Such names are refused where they come in.
#pragma once

#include <cstdio>
#include <optional>
#include <string>
#include <string_view>

#include "core/result.h"

namespace ferry {

// The offset of the first control character (below 0x20, or DEL) in `text`, a tab excepted
// when `tab_allowed`; nullopt when there is none.
inline std::optional<size_t> FirstControlCharacter(std::string_view text,
                                                   bool tab_allowed = false) {
  for (size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if ((c < 0x20 && !(tab_allowed && c == '\t')) || c == 0x7f) return i;
  }
  return std::nullopt;
}

// kInvalidArgument naming `what` and the first control character in `text`, with its offset; ok
// when there is none.
inline Status NoControlCharacters(std::string_view text, std::string_view what) {
  const auto at = FirstControlCharacter(text);
  if (!at) return {};
  char hex[8];
  std::snprintf(hex, sizeof hex, "0x%02x", static_cast<unsigned char>(text[*at]));
  return Fail(ErrorCode::kInvalidArgument, std::string(what) +
                                               " must not hold control characters (byte " + hex +
                                               " at offset " + std::to_string(*at) + ")");
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
