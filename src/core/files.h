// Reading a small file a user named (a token file, a workflow definition) whole, with a size
// cap so a wrong path such as /dev/zero cannot exhaust memory.
//
// Thread-safety: functions only.
#pragma once

#include <cstddef>
#include <string>

#include "core/result.h"

namespace ferry {

// The file's bytes. kNotFound when it does not exist, kInvalidArgument when it cannot be read
// (a directory, no permission) or holds more than `max_bytes`; messages say which.
Result<std::string> ReadSmallFile(const std::string& path, size_t max_bytes);

}  // namespace ferry
