// Runs by status for overviews (the console's, `ferry run counts`, /metrics). Pending and
// running are counted on every call: their partial indexes hold the work in flight only. The
// ended statuses are the whole history, a read of every run (about 0.2 s per million on
// PostgreSQL, using both cores; docs/benchmarks.md), so they are counted at most once per
// `ended_every` and shared by every caller in between: any number of open consoles, or a
// caller polling the API, costs one such read per period.
//
// Thread-safe: one counter serves every thread of a process.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>

#include "core/result.h"
#include "store/store.h"

namespace ferry {

class RunCounter {
 public:
  explicit RunCounter(std::chrono::milliseconds ended_every) : ended_every_(ended_every) {}
  RunCounter(const RunCounter&) = delete;
  RunCounter& operator=(const RunCounter&) = delete;

  // Every status, zero included: pending and running as of now, the ended ones as of at most
  // ended_every ago (a run that ended meanwhile is in neither until the next count).
  Result<std::map<RunStatus, int64_t>> Count(Store& store);

 private:
  const std::chrono::milliseconds ended_every_;
  // Held while the ended statuses are counted, so callers arriving meanwhile wait for that
  // count instead of starting their own.
  std::mutex mu_;
  std::map<RunStatus, int64_t> ended_;                // Guarded by mu_
  std::chrono::steady_clock::time_point ended_at_{};  // Guarded by mu_
  bool have_ended_ = false;                           // Guarded by mu_
};

}  // namespace ferry
