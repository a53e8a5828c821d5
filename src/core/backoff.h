// Retry backoff: exponential with "full jitter" on the upper half, capped.
// delay(attempt) = min(cap, base * 2^(attempt-1)), then uniformly drawn from [delay/2, delay].
#pragma once

#include <chrono>
#include <cstdint>

namespace ferry {

struct BackoffPolicy {
  // First retry's nominal delay.
  std::chrono::milliseconds base = std::chrono::seconds(1);
  // No retry waits longer than this.
  std::chrono::milliseconds cap = std::chrono::minutes(10);
};

// attempt is 1 for the first retry. unit_random in [0, 1) picks the jitter (tests pass fixed
// values; callers pass a draw from their generator).
std::chrono::milliseconds BackoffDelay(const BackoffPolicy& policy, int attempt,
                                       double unit_random);
// Same, drawing the jitter from a thread-local generator.
std::chrono::milliseconds BackoffDelay(const BackoffPolicy& policy, int attempt);

}  // namespace ferry
