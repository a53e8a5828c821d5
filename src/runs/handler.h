// The `ferry.run` task handler: executes one workflow run on a worker slot.
//
//   1. MarkRunStarted fenced by RunFencingToken(generation, task epoch): running, the
//      "run.started" event and the read of the checkpoints in one commit; the run is not read
//      first (the transition is conditional and returns the row). When it does not apply, the run
//      is read to say why: a finished run is left alone (the task succeeds: idempotent redelivery),
//      an unknown one fails the task for good, and otherwise a newer attempt owns it: a
//      non-retryable "superseded" error, nothing else touched.
//   2. Loads the version's definition (cached per process) and the trigger context of webhook
//      and cron runs, and runs the RunExecutor. Each finished node is saved with SaveStep under
//      the same fencing token (a rejected save aborts the run here: someone else owns it now);
//      events go to the task's event stream at once and to the run's history (AppendRunEvent,
//      the SSE source) with the next checkpoint, or within `event_flush`.
//   3. Ends the run with FinishRun (succeeded / failed with the failing node / cancelled), in
//      one commit with its "finished" event and the node events still waiting.
//
// Stop handling: the run is cancelled when the task's cancel was requested (the broker says so)
// or the run was cancelled in the store (polled every `cancel_poll`). Any other stop (the worker
// drains, the lease was lost, the task timed out) leaves the run running and returns a retryable
// error: the task goes back to its queue and the run resumes from its checkpoints.
//
// The task ends succeeded whenever the run reached an end (its result says which): a failed run
// is a workflow outcome, not a task-layer failure to retry or dead-letter.
//
// Thread-safety: the registered handler runs on several slot threads at once. Each execution
// takes its own Store and Broker connections from internal pools (a Store is not thread-safe);
// the factories and the secret resolver must be thread-safe and outlive the registry.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "broker/broker.h"
#include "engine/executor.h"
#include "engine/secrets.h"
#include "runs/runs.h"
#include "store/store.h"
#include "worker/handler.h"

namespace ferry::runs {

struct RunHandlerOptions {
  // Recorded as the run's worker ("<worker_id>/<task id>": two tasks of one worker process racing
  // on a run must not look like a repeat of the same claim). Default: DefaultWorkerId().
  std::string worker_id;
  // Resolves `secrets.NAME`. Not owned. nullptr: FERRY_SECRET_<NAME> from the environment.
  const engine::SecretResolver* secrets = nullptr;
  // Executor settings; its `secrets` is replaced by the resolver above.
  engine::ExecutorOptions executor;
  // How long a write the run's progress rests on (a node's checkpoint, a delay's deadline, the
  // run's end) is tried again while the store is away, before the attempt stops and its task's
  // next attempt runs the node again: long enough for a database restart or failover.
  std::chrono::milliseconds store_patience = std::chrono::seconds(15);
  // How often a running run's store status is checked for a cancellation.
  std::chrono::milliseconds cancel_poll = std::chrono::milliseconds(500);
  // Node events are written with the next checkpoint, or after at most about this long (what a
  // page following the run waits at worst, besides its own polling).
  std::chrono::milliseconds event_flush = std::chrono::milliseconds(100);
  // A run left with only delays to wait for, the nearest more than this away, gives its worker's
  // slot back: its task snoozes until the delay ends (include/ferry/handler.h Snooze) and the run
  // goes on from its checkpoints then. Shorter waits hold the slot. Negative: every wait does.
  // The same for a run left waiting only for tasks its task nodes submitted, once each has been
  // waited for this long: their ends wake its task (the engine's task_wait_recheck bounds a
  // wake that never comes).
  std::chrono::milliseconds give_back_waits_over = std::chrono::seconds(5);
  // How often a `task` node polls the task it waits for.
  std::chrono::milliseconds task_poll = std::chrono::milliseconds(100);
  // Mirror node events into the task's own event stream (`ferry task events ID`) too. Off by
  // default: the run's history holds them, and the mirror costs a one-node run about a third of
  // its Redis commands (docs/benchmarks.md).
  bool task_events = false;
  // Idle store connections kept. 0: every one opened, which is at most one per slot (an
  // execution holds one for its whole run). A limit under the worker's concurrency made a busy
  // worker close and reopen them all the time (a PostgreSQL one is a process fork and an
  // authentication).
  int max_idle_store_connections = 0;
  // Idle Redis connections kept: `task` nodes hold one each while they wait (several per run),
  // cancellation checks one for a moment.
  int max_idle_broker_connections = 8;
  // After a run was persisted as failed (remediation capture). Empty: nothing.
  RunFailedHook on_run_failed;
  // A run started more times than this is failed at its next start instead of run again: each
  // worker that took it over died or lost it (a node that kills its worker), and recovery's own
  // check comes only between task generations.
  int max_run_attempts = kMaxRunAttempts;
};

// Registers `ferry.run` into `registry`. The factories must outlive every worker using it.
void RegisterRunHandler(HandlerRegistry& registry, StoreFactory& stores, BrokerFactory& brokers,
                        RunHandlerOptions options = {});

// The handler as a function object, for tests that drive executions by hand.
Handler MakeRunHandler(StoreFactory& stores, BrokerFactory& brokers, RunHandlerOptions options);

}  // namespace ferry::runs
