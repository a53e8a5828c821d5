#include "cli/terminal_text.h"

#include <fmt/format.h>

namespace ferry::cli {
namespace {

// U+2400 + c for C0 controls, U+2421 for DEL: three bytes of UTF-8 each.
void AppendControlPicture(std::string& out, unsigned char c) {
  const unsigned code = c == 0x7f ? 0x2421 : 0x2400 + c;
  out += static_cast<char>(0xE0 | (code >> 12));
  out += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
  out += static_cast<char>(0x80 | (code & 0x3F));
}

// The code point of the UTF-8 sequence at `at` when it is a C1 control or the Arabic letter mark
// U+061C (2 bytes), or one of the other bidi controls (3 bytes); else 0.
unsigned HiddenControlAt(std::string_view text, size_t at) {
  const auto byte = [&](size_t i) {
    return at + i < text.size() ? static_cast<unsigned char>(text[at + i]) : 0u;
  };
  if (byte(0) == 0xC2 && byte(1) >= 0x80 && byte(1) <= 0x9F) return byte(1);
  if (byte(0) == 0xD8 && byte(1) == 0x9C) return 0x061C;
  if (byte(0) != 0xE2 || (byte(2) & 0xC0u) != 0x80) return 0;
  const unsigned code = 0x2000u + ((byte(1) & 0x3Fu) << 6) + (byte(2) & 0x3Fu);
  const bool bidi = code == 0x200E || code == 0x200F || (code >= 0x202A && code <= 0x202E) ||
                    (code >= 0x2066 && code <= 0x2069);
  return bidi ? code : 0;
}

}  // namespace

std::string TerminalSafe(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c == '\n' || c == '\t' || (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n')) {
      out += static_cast<char>(c);
    } else if (c < 0x20 || c == 0x7f) {
      AppendControlPicture(out, c);
    } else if (const unsigned hidden = HiddenControlAt(text, i)) {
      out += fmt::format("<U+{:04X}>", hidden);
      i += hidden < 0x800 ? 1 : 2;  // past the sequence's other bytes
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

}  // namespace ferry::cli
