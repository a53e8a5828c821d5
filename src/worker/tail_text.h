// Internal: the end of a program's output for an error message ("...last lines").
#pragma once

#include <cstddef>
#include <string>

#include "core/utf8.h"

namespace ferry {

// The last `n` bytes of text, on a line boundary when one is near, trailing newlines dropped.
inline std::string TailText(const std::string& text, size_t n) {
  std::string s = text;
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  if (s.size() <= n) return s;
  std::string tail(Utf8Tail(s, n));
  size_t nl = tail.find('\n');
  if (nl != std::string::npos && nl + 1 < tail.size()) tail = tail.substr(nl + 1);
  return "..." + tail;
}

}  // namespace ferry
