// One cron dispatch tick: for every enabled cron trigger of a non-paused workflow, plan the due
// occurrences (plan.h), apply the overlap policy, create each fired occurrence's run with
// Store::CreateCronRun (the unique (trigger, fire time) record makes it exactly once, however
// many schedulers or on-demand dispatches race) and enqueue it (runs::EnsureRunTask), then record
// the trigger's progress (UpdateTriggerFireTimes).
//
// Runs get inputs {"scheduled_for": "<ISO 8601 with the zone's offset>", "timezone": "<zone>"}
// (plus "missed_count" for a run_once catch-up run), resolved against the workflow's declared
// inputs (undeclared keys allowed), and a "run.created" event whose `trigger` object templates
// read as `trigger.*`.
//
// Used by the Scheduler's leader loop, by POST /api/v1/triggers/cron/dispatch and by tests.
// Thread-safety: uses the given Store and Broker from the caller's thread only.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "broker/broker.h"
#include "core/clock.h"
#include "core/json.h"
#include "core/result.h"
#include "scheduler/plan.h"
#include "store/store.h"

namespace ferry::scheduler {

// Workflow versions whose cron inputs were reported as rejected. A scheduler keeps one across
// its ticks so that the error is logged once per workflow version, not at every occurrence (each
// occurrence is still recorded, and reported as kRejected).
// Thread-safety: none; one scheduler's work thread uses it.
class RejectedVersions {
 public:
  // True the first time this version is seen.
  bool FirstTime(const std::string& workflow_id, int version) {
    return seen_.emplace(workflow_id, version).second;
  }

 private:
  std::set<std::pair<std::string, int>> seen_;
};

struct DispatchOptions {
  // An occurrence later than this when first seen is missed (the misfire policy decides).
  std::chrono::milliseconds misfire_grace = std::chrono::seconds(30);
  // The queue run tasks go to.
  std::string queue = "default";
  // Occurrences examined per trigger per tick before jumping ahead (see PlanOptions).
  int64_t max_scan = 100'000;
  // Checked before each trigger; false stops the tick (a leader that lost its lease).
  std::function<bool()> keep_going;
  // Recorded in each run's "run.created" event (the leader's fencing token; 0 = on demand).
  int64_t fencing_token = 0;
  // Where rejected cron inputs are remembered; null (an on-demand dispatch): every rejection in
  // this tick is logged.
  RejectedVersions* rejected_versions = nullptr;
};

struct FireOutcome {
  enum class Action {
    kFired,           // a run was created (and enqueued unless enqueue_error says otherwise)
    kDuplicate,       // someone else already recorded this occurrence: nothing done
    kSkippedOverlap,  // overlap: skip, a run was active: recorded without a run
    kHeld,            // overlap: queue, a run is active: waits for a later tick
    kSkippedMisfire,  // dropped by the misfire policy (one entry per trigger and tick)
    kRejected,        // the version cannot take a cron run (inputs refused, a stored graph that no
                      // longer loads): recorded without a run
    kError,           // could not be handled; retried on the next tick
  };
  Action action = Action::kFired;
  std::string trigger_id;
  std::string workflow;
  std::string trigger_key;
  int64_t fire_ms = 0;  // kSkippedMisfire: the newest dropped occurrence
  int64_t count = 1;    // kSkippedMisfire: how many were dropped
  std::string run_id;
  std::string detail;  // errors, enqueue failures
};
std::string_view FireActionName(FireOutcome::Action a);

struct DispatchReport {
  int triggers = 0;  // cron triggers examined
  std::vector<FireOutcome> outcomes;
  bool stopped = false;  // keep_going said stop part-way
  int64_t Count(FireOutcome::Action a) const;
  Json ToJson() const;
};

// One tick at clock.Now(). Errors only when the trigger list cannot be read; per-trigger problems
// are kError outcomes (and logged).
Result<DispatchReport> DispatchCron(Store& store, Broker& broker, const Clock& clock,
                                    const DispatchOptions& options = {});

// Runs of `trigger_id` that are pending or running (the overlap check).
Result<int64_t> CountActiveRuns(Store& store, const Trigger& trigger);

}  // namespace ferry::scheduler
