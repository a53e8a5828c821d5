// Process-wide logging on spdlog. Text for people, JSON lines for collectors.
// Call InitLogging once at start-up, before other threads log.
#pragma once

#include <string>

#include "core/result.h"

namespace ferry {

enum class LogFormat { kText, kJson };

struct LogOptions {
  std::string level = "info";  // trace, debug, info, warn, error, off
  LogFormat format = LogFormat::kText;
};

Status InitLogging(const LogOptions& options);
Result<LogFormat> ParseLogFormat(const std::string& text);

}  // namespace ferry
