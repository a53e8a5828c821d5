// Internal: cutting text at a byte count without splitting a UTF-8 character, so a cut text
// holds only characters that were in the original (a split one would be dumped as U+FFFD), and
// finding text that is not UTF-8 at all, which a JSON dump would change the same way (and
// showing it so).
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace ferry {

// How many bytes at the end of `s` begin a character they do not finish (0-3).
inline size_t Utf8UnfinishedTail(std::string_view s) {
  for (size_t k = 1; k <= 3 && k <= s.size(); ++k) {
    const auto c = static_cast<unsigned char>(s[s.size() - k]);
    if ((c & 0xC0) == 0x80) continue;  // a continuation byte: look further back
    const size_t length = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
    return length > k ? k : 0;
  }
  return 0;
}

// How many continuation bytes (the rest of a character cut off before) begin `s` (0-3).
inline size_t Utf8OrphanHead(std::string_view s) {
  size_t n = 0;
  while (n < 3 && n < s.size() && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) ++n;
  return n;
}

// At most the last `n` bytes of `s`, beginning on a character (the rest of one the cut split
// is left out).
inline std::string_view Utf8Tail(std::string_view s, size_t n) {
  if (s.size() <= n) return s;
  s.remove_prefix(s.size() - n);
  s.remove_prefix(Utf8OrphanHead(s));
  return s;
}

// The offset of the first byte of `s` that does not begin a well-formed UTF-8 character
// (RFC 3629: no overlong forms, no surrogates, nothing past U+10FFFF); nullopt when `s` is
// UTF-8 throughout.
inline std::optional<size_t> Utf8FirstInvalid(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t length = 0;
    unsigned char low = 0x80;  // the range of the second byte, narrower for some leads
    unsigned char high = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
      length = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      length = 3;
      if (c == 0xE0) low = 0xA0;   // overlong
      if (c == 0xED) high = 0x9F;  // surrogates
    } else if (c >= 0xF0 && c <= 0xF4) {
      length = 4;
      if (c == 0xF0) low = 0x90;   // overlong
      if (c == 0xF4) high = 0x8F;  // past U+10FFFF
    } else {
      return i;
    }
    if (i + length > s.size()) return i;
    const auto second = static_cast<unsigned char>(s[i + 1]);
    if (second < low || second > high) return i;
    for (size_t k = 2; k < length; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return i;
    }
    i += length;
  }
  return std::nullopt;
}

// `s` with each byte that does not begin a well-formed character (Utf8FirstInvalid) shown as
// U+FFFD, as a JSON dump shows it: for stored bytes that are read back as JSON text.
inline std::string Utf8Shown(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  while (auto bad = Utf8FirstInvalid(s)) {
    out.append(s.substr(0, *bad));
    out += "\xEF\xBF\xBD";
    s.remove_prefix(*bad + 1);
  }
  out.append(s);
  return out;
}

}  // namespace ferry
