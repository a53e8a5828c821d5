// Keeping runs moving when something died: the pending sweeper and running-run recovery.
//
//  - Pending runs older than `pending_age` get a task if they have none alive (their enqueue
//    failed, or their task was dead-lettered before it could start the run).
//  - Pending and running runs whose task was cancelled (`ferry task cancel`) are cancelled: a
//    new task would undo what was asked, and a run waiting for a delay out of any worker's slot
//    has no handler to see its task's cancel.
//  - Runs cancelled in the last `cancelled_within` whose history has no run.finished, and whose
//    task has ended: the worker whose handler held one died before it could write the end (its
//    task then ends cancelled by the broker's reclaim, with no handler). The end is written
//    here, nodes left mid-attempt told interrupted and its task nodes' tasks cancelled, as for
//    any run that ends with no handler (EndUnheldRun).
//  - Running runs whose task no longer holds a live lease (the task record is missing, or ended,
//    while the run did not) get a task of the next generation, which takes the run over and
//    resumes it from its checkpoints. A run that has already been started `max_run_attempts`
//    times is finished as failed instead, so a run that kills every worker cannot loop forever.
//
// A task that is running under a lease whose worker died is NOT recovered here: the broker's
// reclaim (any live worker, after the lease) hands it to another worker with a newer epoch.
//
// RecoverRuns is one pass (`ferry run recover`); RunSweeper repeats it on a thread (`ferry dev`,
// the API server until the scheduler owns it, then the scheduler's leader).
//
// Thread-safety: RecoverRuns uses the given Store and Broker from the caller's thread only.
// RunSweeper owns a thread with its own connections; Start/Stop from one thread.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "broker/broker.h"
#include "core/result.h"
#include "runs/runs.h"
#include "store/store.h"

namespace ferry::runs {

struct RecoveryOptions {
  // Pending runs created at least this long ago are checked. Negative: skip pending runs.
  std::chrono::milliseconds pending_age = std::chrono::seconds(5);
  // Running runs not updated for this long are checked (0 = every running run). A run's task is
  // looked up either way; this only bounds the work per pass.
  std::chrono::milliseconds running_age{0};
  bool check_running = true;
  // Cancelled runs whose end was not written are looked for among those cancelled this recently.
  // Negative: skip them.
  std::chrono::milliseconds cancelled_within = std::chrono::hours(1);
  // At most this many runs of each kind per pass.
  int limit = 200;
  // Running runs are looked at by id from after this one (RecoveryReport::running_next): a
  // sweeper goes on where its last pass stopped. Empty: from the first.
  std::string running_after;
  // A run started this many times whose task is gone again is failed instead of re-enqueued.
  int max_run_attempts = kMaxRunAttempts;
  // Where new tasks go when a run's history names no queue; and their settings.
  EnsureTaskOptions task;
  // Report what would be done, change nothing.
  bool dry_run = false;
  // After a run was failed here (remediation capture). Empty: nothing.
  RunFailedHook on_run_failed;
};

struct RunRecovery {
  enum class Action {
    kAlive,      // its task is alive: nothing to do
    kEnqueued,   // a task was submitted (pending: first one; running: the next generation)
    kFailed,     // given up: finished as failed
    kCancelled,  // its task was cancelled (`ferry task cancel` on a run waiting out of its slot)
    kEnded,      // cancelled with no end written (its worker died): its end was written
    kSkipped,    // it changed while we looked (finished, taken over): nothing to do
    kError,      // could not be checked or fixed; `detail` says why; retried next pass
  };
  std::string run_id;
  std::string workflow;
  RunStatus status = RunStatus::kPending;  // when examined
  Action action = Action::kAlive;
  std::string task_id;  // the live or the new task
  int generation = 0;
  std::string detail;
};
std::string_view RecoveryActionName(RunRecovery::Action a);

struct RecoveryReport {
  std::vector<RunRecovery> runs;  // every run examined, in order
  // Where the next pass's running runs begin: the last one looked at when the pass took its
  // limit, else empty (from the first again).
  std::string running_next;
  int Count(RunRecovery::Action a) const;
};

// One pass. Errors only when the store cannot list runs; per-run problems are kError entries.
Result<RecoveryReport> RecoverRuns(Store& store, Broker& broker, const RecoveryOptions& options);

struct RunSweeperOptions {
  RecoveryOptions recovery;
  std::chrono::milliseconds interval = std::chrono::seconds(2);
  // Called after each pass that did something (logging is done already); may be empty.
  std::function<void(const RecoveryReport&)> on_report;
};

// RecoverRuns every `interval` on its own thread, with its own connections (reopened after an
// error). Logs what it did.
class RunSweeper {
 public:
  // The factories are not owned and must outlive the sweeper.
  RunSweeper(StoreFactory& stores, BrokerFactory& brokers, RunSweeperOptions options);
  ~RunSweeper();  // Stop()
  RunSweeper(const RunSweeper&) = delete;
  RunSweeper& operator=(const RunSweeper&) = delete;

  void Start();
  // Returns once the thread ended (within one store/Redis call).
  void Stop();

 private:
  void Loop(std::stop_token st);

  // Constant after construction.
  StoreFactory& stores_;
  BrokerFactory& brokers_;
  const RunSweeperOptions options_;
  std::jthread thread_;
};

}  // namespace ferry::runs
