// Reading a whole file in tests, in one place.
#pragma once

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace ferry::testing {

// The file's bytes, or "" when it cannot be opened. Streams through rdbuf(): GCC 12's
// -Wnull-dereference flags the istreambuf_iterator form inside libstdc++.
inline std::string ReadAll(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  if (in) out << in.rdbuf();
  return out.str();
}

}  // namespace ferry::testing
