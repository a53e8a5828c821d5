// Process-wide logging on spdlog. Text for people, JSON lines for collectors.
// Call InitLogging once at start-up, before other threads log.
#pragma once

#include <string>
#include <string_view>

#include "core/result.h"

namespace ferry {

enum class LogFormat { kText, kJson };

struct LogOptions {
  std::string level = "info";  // trace, debug, info, warn, error, off
  LogFormat format = LogFormat::kText;
};

Status InitLogging(const LogOptions& options);
// A message as one log line of `format` shows it, whatever text it quotes (a program's error, an
// agent's note): in JSON, the inside of a JSON string; in text, with line breaks and other
// control characters as escapes (\n, \r, \xNN), so quoted text can neither end the line and
// forge the next nor act on a terminal. Bytes that are not UTF-8 become U+FFFD in JSON (which
// must be UTF-8) and \xNN in text.
std::string LogLineText(std::string_view message, LogFormat format);
Result<LogFormat> ParseLogFormat(const std::string& text);

}  // namespace ferry
