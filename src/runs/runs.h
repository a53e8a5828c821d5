// Workflow runs on top of the task layer: a run is a row in the Store plus a task of kind
// `ferry.run` (payload {"run_id": ..., "generation": G}) in the Broker.
//
// Creation commits the run first and enqueues second, so a failed enqueue leaves a pending run
// that the sweeper re-enqueues (the unique key makes that idempotent): no run is ever lost.
//
// Generations. A run's first task has generation 0 and the unique key = the run id. When that
// task is gone for good (dead-lettered, deleted, expired) while the run is not finished, recovery
// submits a new task with generation G+1 and unique key "<run id>#<G+1>". Keys are derived, so
// two recoverers racing on one run submit the same task. The fencing token a task presents to
// the store is (generation << 32) | task epoch: a reclaim bumps the task epoch, a new generation
// outranks every attempt of the older ones, so the newest owner always wins MarkRunRunning and a
// stale one loses SaveStep/FinishRun. docs/runs.md has the whole lifecycle.
//
// Which task serves a run is recorded in the run's event history: "run.created" names the first
// task (its id is drawn before the run is committed, and that task is submitted after), and
// "run.enqueued" (a cron fire's task, recovery's later generations) and "run.started" (by the
// handler) carry {task_id, queue, generation}.
//
// Thread-safety: free functions; the Store and Broker passed in are used from the caller's thread
// only (each is one connection).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "broker/broker.h"
#include "core/json.h"
#include "core/result.h"
#include "store/store.h"

namespace ferry::runs {

inline constexpr std::string_view kRunTaskKind = "ferry.run";
// How many times a run may be started (each start an attempt, a takeover included) before it is
// failed as abandoned: by the worker at the start past it, by recovery before a new generation.
inline constexpr int kMaxRunAttempts = 10;

// Event types this library writes into a run's history (besides the executor's node.* events).
// {triggered_by, version, trigger?, task_id, queue, generation: 0}
inline constexpr std::string_view kEventCreated = "run.created";
inline constexpr std::string_view kEventEnqueued = "run.enqueued";  // {task_id, queue, generation}
inline constexpr std::string_view kEventEnqueueFailed = "run.enqueue_failed";  // {error}
inline constexpr std::string_view kEventStarted = "run.started";      // {task_id, ..., epoch}
inline constexpr std::string_view kEventFinished = "run.finished";    // {status, error?, ...}
inline constexpr std::string_view kEventCancelled = "run.cancelled";  // {by}
// The run gave its worker back to wait for a delay until until_ms; it starts again then.
inline constexpr std::string_view kEventWaiting = "run.waiting";  // {until_ms, tasks?}
// The executor's, read here: a node waits (a delay's deadline, or a task node's task).
inline constexpr std::string_view kEventNodeWaiting = "node.waiting";  // {node, attempt, task?}
// {node, kind, attempt} and {node, status, attempt, ...}; status "interrupted" for a node a run's
// end stopped mid-attempt.
inline constexpr std::string_view kEventNodeStarted = "node.started";
inline constexpr std::string_view kEventNodeFinished = "node.finished";

// Called after a run was persisted as failed (its FinishRun committed), on the thread that
// failed it, with that thread's store connection. It must not throw and cannot undo the
// transition: remediation capture plugs in here (src/remediation/capture.h).
using RunFailedHook = std::function<void(Store& store, const Run& run)>;

// Whether runs started this way keep a trigger context (exposed to templates as `trigger`) in
// their "run.created" event: webhook deliveries (StartRun) and cron fires (the scheduler's
// dispatch). The worker reads it only for these; StartRun refuses one for any other kind.
inline bool KeepsTrigger(TriggeredBy by) {
  return by == TriggeredBy::kWebhook || by == TriggeredBy::kCron;
}

struct StartRunRequest {
  std::string workflow;  // name
  // The workflow's id and the version to run, when the caller has just read them: a webhook's
  // admission, which checked the delivery against that version's trigger, so its run is of the
  // version that accepted it, and the workflow is not read again by name (workflows and their
  // versions are never deleted, so what was read stays valid).
  struct Known {
    std::string workflow_id;
    int version = 0;
  };
  std::optional<Known> known;
  Json inputs = Json::object();
  TriggeredBy triggered_by = TriggeredBy::kApi;
  std::string trigger_id;
  std::string queue = "default";  // the queue the run's task goes to
  // Exposed to templates as `trigger` (webhook: body/headers/query; cron: scheduled_for...).
  // Kept in the run's "run.created" event; the caller strips credentials before. Only for a
  // kind that KeepsTrigger (else kInvalidArgument).
  Json trigger = Json::object();
  // Accept inputs the workflow does not declare (webhook bodies) instead of kInvalidArgument.
  bool allow_unknown_inputs = false;
  // Webhook replay protection: the nonce is recorded in the same transaction as the run, so a
  // delivery that is refused (bad inputs, store unavailable) does not use it up. A nonce already
  // recorded (and not expired) is kConflict and no run is made.
  struct Nonce {
    std::string scope;
    std::string value;
    int64_t expires_ms = 0;
  };
  std::optional<Nonce> nonce;
  // Task settings of the run's task.
  int max_attempts = 5;
  std::chrono::milliseconds timeout = std::chrono::hours(24);
};

struct StartRunResult {
  Run run;
  // false when the run was stored but enqueueing failed; the sweeper will enqueue it.
  bool enqueued = false;
  std::string enqueue_error;
  std::string task_id;  // when enqueued
  // From CommitRun: the run's first task, for SubmitRunTask.
  std::optional<SubmitRequest> task;
};

// Validates inputs against the workflow's current version, creates the pending run and enqueues
// its task: CommitRun, then SubmitRunTask. kNotFound for an unknown workflow,
// kInvalidArgument for bad inputs. Once the run is committed the result is a success, whatever
// happens to the enqueue.
Result<StartRunResult> StartRun(Store& store, Broker& broker, const StartRunRequest& request);

// StartRun's first half: the run committed, its task not yet submitted but in the result's
// `task`. A webhook's answer names only the run, so it goes out between the two halves.
Result<StartRunResult> CommitRun(Store& store, const StartRunRequest& request);

// StartRun's second half: submits `result.task` (nothing when there is none) and sets enqueued
// and task_id. A failed submission leaves its message in enqueue_error and returns false: then
// RecordEnqueueFailed, so the sweeper enqueues the run.
bool SubmitRunTask(Broker& broker, StartRunResult& result);
void RecordEnqueueFailed(Store& store, const StartRunResult& result);

// Appends one event to the run's history, best effort: the history is for people and for finding
// the task, so a failed append is logged and never turns a stored, enqueued, started or cancelled
// run into an error.
void RecordRunEvent(Store& store, const std::string& run_id, std::string_view type,
                    const Json& data);

// --- generations and fencing ---
int64_t RunFencingToken(int generation, int64_t task_epoch);
int RunGeneration(int64_t fencing_token);
// "<run id>" for generation 0, "<run id>#<G>" after.
std::string RunTaskUniqueKey(const std::string& run_id, int generation);
Json RunTaskPayload(const std::string& run_id, int generation);
// The run a `ferry.run` task serves (its payload's run_id); "" for any other task.
std::string RunServedBy(const TaskRecord& task);

// The task that last served a run, from its event history.
struct RunTaskRef {
  std::string task_id;
  std::string queue;
  int generation = 0;
};
Result<std::optional<RunTaskRef>> LatestRunTask(Store& store, const std::string& run_id);

// What a released run (IsReleased) waits for, from its last run.waiting event: until when at the
// latest, and the tasks whose ends wake it sooner. nullopt when it has no such event (or the
// store cannot be read: callers only inform with it).
struct RunWaiting {
  int64_t until_ms = 0;
  std::vector<std::string> tasks;
};
std::optional<RunWaiting> LastRunWaiting(Store& store, const std::string& run_id);
// Cancels the tasks a run's task nodes submitted that have not ended (named by its node.waiting
// events), for a run that ended with no handler to do it (cancelled while released, or abandoned
// by recovery): nobody waits for them now. Best effort.
void CancelTasksItWaitedFor(Store& store, Broker& broker, const std::string& run_id);
// Ends the history of a run that ended with no handler holding it (cancelled while pending,
// released to wait or left by a handler that stopped, or abandoned by recovery), as a handler
// ends it as it stops: each node it left mid-attempt (started with no end told since, or
// waiting by a stored wait) told `node.finished {status: interrupted}`, then `run.finished`
// with `finished` as its data, in one write. Then the tasks its task nodes left
// are cancelled (CancelTasksItWaitedFor) when `broker` is given. Best effort, as
// RecordRunEvent: the run's status is the store's already.
void EndUnheldRun(Store& store, Broker* broker, const std::string& run_id, const Json& finished);
// The nodes of an ended run that were stopped mid-attempt by its end (a cancel, or a node beside
// them failing the run) and have no step row (`steps`, as stored): the store keeps no row for
// them (a run that ended takes no more), only their `node.finished {status: interrupted}`
// events. As step rows with status "interrupted", started_ms the time of its last `node.started` (0
// if none was told) and finished_ms the event's time.
std::vector<RunStep> InterruptedSteps(Store& store, const std::string& run_id,
                                      const std::vector<RunStep>& steps);

struct EnsureTaskOptions {
  std::string queue = "default";  // used when the history names none
  int max_attempts = 5;
  std::chrono::milliseconds timeout = std::chrono::hours(24);
  // The run.enqueued event's "reason" when the run had no task before (with one, the reason is
  // what became of it): who enqueues it.
  std::string reason = "sweep";
  // When set and ahead, a new task is scheduled for then (a released run's wait's end).
  std::optional<int64_t> eta_ms;
};

struct EnsureTaskResult {
  enum class Action {
    kAlive,     // a task that will serve the run exists (pending, scheduled, running, retrying)
    kEnqueued,  // a task was submitted now
  };
  Action action = Action::kAlive;
  std::string task_id;
  std::string queue;
  int generation = 0;
  TaskStatus task_status = TaskStatus::kPending;
  // Why a new generation was needed: the previous task's state ("failed: ...", "missing").
  std::string previous;
};

// Makes sure a non-terminal run has a live task: keeps the current one when it is alive, else
// submits the next generation (above every generation in the history and in the run's fencing
// token). Records "run.enqueued". Idempotent, and safe to race with itself.
Result<EnsureTaskResult> EnsureRunTask(Store& store, Broker& broker, const Run& run,
                                       const EnsureTaskOptions& options = {});

}  // namespace ferry::runs
