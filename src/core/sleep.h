// Sleeping that a stop request cuts short: every loop of Ferry's waits this way, so a stop (a
// drain, a cancel, a shutdown) never waits out a sleep.
#pragma once

#include <chrono>
#include <stop_token>

namespace ferry {

// Sleeps up to `d` (not at all when d <= 0); returns false when `stop` was requested, before or
// during the sleep.
bool SleepFor(std::stop_token stop, std::chrono::milliseconds d);

}  // namespace ferry
