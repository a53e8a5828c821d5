// Runs by status for overviews (the console's, `ferry run counts`, /metrics). Pending and
// running are counted on every call: their partial indexes hold the work in flight only. The
// ended statuses are the whole history, a read of every run (about 0.2-0.5 s per two million;
// docs/benchmarks.md), so they are counted at most once per `ended_every`: any number of open
// consoles, or a caller polling the API, costs one such read per period and counter.
//
// Thread-safe: one counter serves every thread of a process. One caller reads the ended
// statuses while the others answer with the previous counts (only the very first count is
// waited for), and a read that fails is not tried again before the period has passed.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>

#include "core/result.h"
#include "store/store.h"

namespace ferry {

class RunCounter {
 public:
  explicit RunCounter(std::chrono::milliseconds ended_every) : ended_every_(ended_every) {}
  RunCounter(const RunCounter&) = delete;
  RunCounter& operator=(const RunCounter&) = delete;

  // Every status, zero included: pending and running as of this call, the ended ones as of at
  // most ended_every ago (a run that ended since is in neither until the next read; never in
  // both). The store is the caller's own connection.
  Result<std::map<RunStatus, int64_t>> Count(Store& store);

 private:
  const std::chrono::milliseconds ended_every_;
  std::mutex mu_;
  std::condition_variable read_;  // a read of the ended statuses finished
  // Guarded by mu_:
  std::map<RunStatus, int64_t> ended_;
  bool have_ended_ = false;
  std::optional<Error> error_;  // the last read's failure, while no counts were ever read
  std::chrono::steady_clock::time_point read_at_{};  // when the last read started
  bool reading_ = false;
};

}  // namespace ferry
