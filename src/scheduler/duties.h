// The scheduler's periodic duties besides cron dispatch, each one function that a test can call
// alone. The Scheduler's leader runs each at its own interval (scheduler.h).
//
//  - PromoteDelayedTasks: moves due scheduled/retrying tasks of every known queue into their
//    streams (Broker::PromoteDue). Workers promote too; doing it twice is harmless, and it keeps
//    delayed work moving while no worker watches a queue.
//  - Run recovery: runs::RecoverRuns (the pending-run sweeper and the recovery of running runs
//    whose task is gone), called as is.
//  - CleanupRetention: deletes finished runs (with steps and events), cron fire records and
//    expired webhook nonces older than their retention, in bounded batches. Task records expire
//    in Redis on their own (BrokerOptions::retention).
//  - Hooks: PeriodicHook functions (the remediation scan plugs in here).
//
// Thread-safety: the Store and Broker passed in are used from the caller's thread only.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

#include "broker/broker.h"
#include "core/clock.h"
#include "core/result.h"
#include "store/store.h"

namespace ferry::scheduler {

// Returns how many tasks moved, over every queue.
Result<int64_t> PromoteDelayedTasks(Broker& broker, const Clock& clock, int limit_per_queue = 1000);

struct RetentionOptions {
  // Finished runs (succeeded, failed, cancelled) older than this are deleted. 0 = keep forever.
  std::chrono::milliseconds runs = std::chrono::hours(24 * 30);
  // Cron fire records older than this are deleted (only the trigger's cursor matters for
  // exactly-once after a few ticks; these are history). 0 = keep forever.
  std::chrono::milliseconds cron_fires = std::chrono::hours(24 * 30);
  // Expired webhook replay nonces are deleted.
  bool nonces = true;
  // Rows per statement, and statements per call per kind (bounds one pass).
  int batch = 500;
  int max_batches = 20;
};

struct RetentionReport {
  int64_t runs = 0;
  int64_t cron_fires = 0;
  int64_t nonces = 0;
  bool more = false;  // a kind hit max_batches: the next pass continues
};

Result<RetentionReport> CleanupRetention(Store& store, const Clock& clock,
                                         const RetentionOptions& options = {});

// A periodic function the leader calls (the remediation scan, later). An error is logged; the
// hook runs again at its next interval.
struct PeriodicHook {
  std::string name;
  std::chrono::milliseconds interval = std::chrono::seconds(30);
  std::function<Status(Store& store, Broker& broker, const Clock& clock)> run;
};

}  // namespace ferry::scheduler
