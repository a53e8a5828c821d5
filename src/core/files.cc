#include "core/files.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <system_error>

namespace ferry {

Result<std::string> ReadSmallFile(const std::string& path, size_t max_bytes) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    return Fail(ErrorCode::kInvalidArgument, "is a directory");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    const int err = errno;
    if (err == ENOENT) return Fail(ErrorCode::kNotFound, "no such file");
    return Fail(ErrorCode::kInvalidArgument, std::string("cannot read it: ") + std::strerror(err));
  }
  std::string text;
  char buffer[65536];
  while (in) {
    in.read(buffer, sizeof(buffer));
    const auto n = static_cast<size_t>(in.gcount());
    if (text.size() + n > max_bytes) {
      return Fail(ErrorCode::kInvalidArgument,
                  "larger than " + std::to_string(max_bytes) + " bytes");
    }
    text.append(buffer, n);
  }
  if (in.bad()) return Fail(ErrorCode::kInvalidArgument, "read error");
  return text;
}

ErrorCode LocalPathErrorCode(std::error_code ec) {
  const bool refused = ec == std::errc::permission_denied ||
                       ec == std::errc::operation_not_permitted ||
                       ec == std::errc::read_only_file_system;
  return refused ? ErrorCode::kPermissionDenied : ErrorCode::kConflict;
}

Status MakeDirectories(const std::string& path) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (!ec) return {};
  return Fail(LocalPathErrorCode(ec), ec.message());
}

}  // namespace ferry
