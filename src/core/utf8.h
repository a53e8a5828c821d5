// Internal: cutting text at a byte count without splitting a UTF-8 character, so a cut text
// holds only characters that were in the original (a split one would be dumped as U+FFFD).
#pragma once

#include <cstddef>
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

}  // namespace ferry
