#include "core/backoff.h"

#include <algorithm>
#include <random>

namespace ferry {

std::chrono::milliseconds BackoffDelay(const BackoffPolicy& policy, int attempt,
                                       double unit_random) {
  int shift = std::clamp(attempt - 1, 0, 40);
  double nominal = static_cast<double>(policy.base.count()) * static_cast<double>(1ULL << shift);
  nominal = std::min(nominal, static_cast<double>(policy.cap.count()));
  double r = std::clamp(unit_random, 0.0, 1.0);
  double delay = nominal / 2.0 + r * nominal / 2.0;
  return std::chrono::milliseconds(static_cast<int64_t>(delay));
}

std::chrono::milliseconds BackoffDelay(const BackoffPolicy& policy, int attempt) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::uniform_real_distribution<double> dist(0.0, 1.0);
  return BackoffDelay(policy, attempt, dist(rng));
}

}  // namespace ferry
