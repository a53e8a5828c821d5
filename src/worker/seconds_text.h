// Internal: "2s", "0.5s", "1.25s" for messages such as "timed out after 2s".
#pragma once

#include <chrono>
#include <cstdio>
#include <string>

namespace ferry {

inline std::string SecondsText(std::chrono::milliseconds d) {
  long long ms = static_cast<long long>(d.count());
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%lld.%03lld", ms / 1000, ms % 1000);
  std::string s = buf;
  while (s.back() == '0') s.pop_back();
  return s + "s";
}

}  // namespace ferry
