#include "store/run_counter.h"

namespace ferry {
namespace {

constexpr RunStatus kEnded[] = {RunStatus::kSucceeded, RunStatus::kFailed, RunStatus::kCancelled};

}  // namespace

Result<std::map<RunStatus, int64_t>> RunCounter::Count(Store& store) {
  std::unique_lock lock(mu_);
  const auto now = std::chrono::steady_clock::now();
  if (!reading_ &&
      (read_at_ == std::chrono::steady_clock::time_point{} || now - read_at_ >= ended_every_)) {
    reading_ = true;
    read_at_ = now;
    lock.unlock();
    auto all = store.CountRunsByStatus();
    lock.lock();
    reading_ = false;
    read_.notify_all();
    if (all) {
      for (RunStatus s : kEnded) ended_[s] = all->contains(s) ? all->at(s) : 0;
      have_ended_ = true;
      error_.reset();
      return all;  // one read: the active counts agree with the ended ones
    }
    // A failed read keeps the last counts until the next period; with none, callers meanwhile
    // get its error.
    if (!have_ended_) {
      error_ = all.error();
      return Fail(all.error());
    }
  }
  // Only the first read is waited for; after it, the last counts answer meanwhile.
  read_.wait(lock, [this] { return !reading_ || have_ended_; });
  if (!have_ended_) return Fail(error_.value_or(Error{ErrorCode::kUnavailable, "no run counts"}));
  const std::map<RunStatus, int64_t> ended = ended_;
  lock.unlock();
  // After the ended counts were taken: a run that ends meanwhile is in neither, never in both.
  auto counts = store.CountActiveRuns();
  if (!counts) return Fail(counts.error());
  for (const auto& [status, n] : ended) (*counts)[status] = n;
  return counts;
}

}  // namespace ferry
