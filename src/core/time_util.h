// Time formatting and duration parsing shared by the CLI, logs and the API.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/result.h"

namespace ferry {

// "2026-02-17T10:30:15.123Z" (UTC, milliseconds).
std::string FormatIsoMs(int64_t epoch_ms);
// "2026-02-17 10:30:15 UTC" as in `worker list` tables.
std::string FormatHumanUtc(int64_t epoch_ms);
// Parses "250ms", "30s", "5m", "2h", "1d", or a bare number of seconds ("1.5").
Result<std::chrono::milliseconds> ParseDuration(std::string_view text);
// "1.2s", "350ms", "3m04s": short human durations for tables.
std::string FormatDuration(std::chrono::milliseconds d);
int64_t WallNowMs();

}  // namespace ferry
