#include "store/run_counter.h"

namespace ferry {

Result<std::map<RunStatus, int64_t>> RunCounter::Count(Store& store) {
  auto counts = store.CountActiveRuns();
  if (!counts) return Fail(counts.error());
  std::lock_guard lock(mu_);
  const auto now = std::chrono::steady_clock::now();
  if (!have_ended_ || now - ended_at_ >= ended_every_) {
    auto all = store.CountRunsByStatus();
    if (!all) return Fail(all.error());
    ended_.clear();
    for (RunStatus s : {RunStatus::kSucceeded, RunStatus::kFailed, RunStatus::kCancelled}) {
      ended_[s] = all->contains(s) ? all->at(s) : 0;
    }
    ended_at_ = now;
    have_ended_ = true;
  }
  for (const auto& [status, n] : ended_) (*counts)[status] = n;
  return counts;
}

}  // namespace ferry
