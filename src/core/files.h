// Reading a small file a user named (a token file, a workflow definition) whole, with a size
// cap so a wrong path such as /dev/zero cannot exhaust memory; making a directory a user named.
//
// Thread-safety: functions only.
#pragma once

#include <cstddef>
#include <string>
#include <system_error>

#include "core/result.h"

namespace ferry {

// The file's bytes. kNotFound when it does not exist, kInvalidArgument when it cannot be read
// (a directory, no permission) or holds more than `max_bytes`; messages say which.
Result<std::string> ReadSmallFile(const std::string& path, size_t max_bytes);

// The code of a failure on a local path: kPermissionDenied when the filesystem refused the user
// (no permission, read-only), else kConflict (something is in the way: a file, a full disk). A
// CLI exits 1 with either: the path is this machine's, not a service to retry.
ErrorCode LocalPathErrorCode(std::error_code ec);

// Makes `path` and its missing parents. On failure the message is the reason ("Not a
// directory") and the code LocalPathErrorCode's.
Status MakeDirectories(const std::string& path);

}  // namespace ferry
