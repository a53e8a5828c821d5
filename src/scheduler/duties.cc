#include "scheduler/duties.h"

#include <spdlog/spdlog.h>

namespace ferry::scheduler {

Result<int64_t> PromoteDelayedTasks(Broker& broker, const Clock& clock, int limit_per_queue) {
  auto queues = broker.ListQueues();
  if (!queues) return Fail(queues.error());
  int64_t moved = 0;
  for (const auto& q : *queues) {
    auto n = broker.PromoteDue(q, clock.NowMs(), limit_per_queue);
    if (!n) return Fail(n.error());
    moved += *n;
  }
  return moved;
}

Result<RetentionReport> CleanupRetention(Store& store, const Clock& clock,
                                         const RetentionOptions& options) {
  RetentionReport report;
  const int batch = std::max(options.batch, 1);
  // Repeats `step` while it deletes full batches, at most max_batches times.
  auto drain = [&](auto step, int64_t& total) -> Status {
    for (int i = 0; i < options.max_batches; ++i) {
      auto n = step();
      if (!n) return Fail(n.error());
      total += *n;
      if (*n < batch) return {};
    }
    report.more = true;
    return {};
  };
  const int64_t now = clock.NowMs();
  if (options.runs.count() > 0) {
    const int64_t before = now - options.runs.count();
    auto st = drain([&] { return store.DeleteFinishedRunsBefore(before, batch); }, report.runs);
    if (!st) return Fail(st.error());
  }
  if (options.cron_fires.count() > 0) {
    const int64_t before = now - options.cron_fires.count();
    auto st = drain([&] { return store.DeleteCronFiresBefore(before, batch); }, report.cron_fires);
    if (!st) return Fail(st.error());
  }
  if (options.nonces) {
    auto st = drain([&] { return store.DeleteExpiredNonces(batch); }, report.nonces);
    if (!st) return Fail(st.error());
  }
  if (report.runs + report.cron_fires + report.nonces > 0) {
    spdlog::info("retention: deleted {} run(s), {} cron fire record(s), {} nonce(s){}", report.runs,
                 report.cron_fires, report.nonces, report.more ? " (more next pass)" : "");
  }
  return report;
}

}  // namespace ferry::scheduler
