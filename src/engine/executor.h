// RunExecutor: runs one workflow run's DAG to its end.
//
// Given the ingested Workflow, the run's inputs, the steps already finished (checkpoints) and a
// RunSink, it runs every ready node (all its needs finished) in dependency order, independent
// ready nodes in parallel up to `max_parallelism`, and returns the run's outcome.
//
//  - A node listed in `checkpoints` never runs again: its recorded output feeds its dependents.
//    (A checkpoint with status failed ends the run as failed with that node, without re-running.)
//  - `when:` false -> the node is skipped, and so is every node that needs it (transitively):
//    a dependent never runs with a missing input. Skips are checkpointed like other steps.
//  - A failing attempt is retried per the node's retry policy (BackoffDelay between attempts);
//    `fail` nodes, template errors and cancellation are never retried. Once a node has failed
//    for good, no new node starts, running nodes are asked to stop, and the run fails.
//  - Each attempt gets the node's timeout; the node's stop token fires on timeout or on run stop.
//  - A delay node (with no timeout shorter than its wait) hands its deadline to the coordinator,
//    which starts it again once due (it then succeeds at once) and meanwhile runs what else is
//    ready. See give_back_waits_over for a run left with only waits.
//  - SaveStep is called exactly once per node that finishes (succeeded, failed or skipped) and
//    before its dependents start; for the run's last node (every other node is done) it is
//    SaveLastStep instead. A node interrupted by `stop` is not saved: it runs again when
//    the run resumes. If SaveStep fails (e.g. the worker lost its fencing epoch) the executor
//    stops everything and returns kAborted.
//  - Secrets: every value that `secrets.NAME` resolves to, and every secret the definition names,
//    is redacted ("***") from outputs, errors and events before they reach the sink. Outputs are
//    redacted before dependents read them too, so a resumed run sees exactly what a fresh one saw.
//
// Thread-safety: one RunExecutor::Run call at a time per executor object; the sink is called from
// the executor's node threads concurrently and must be thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <stop_token>
#include <string>
#include <vector>

#include "core/json.h"
#include "core/result.h"
#include "engine/definition.h"
#include "engine/lua_sandbox.h"
#include "engine/secrets.h"

namespace ferry::engine {

enum class StepStatus { kSucceeded, kFailed, kSkipped };
std::string_view StepStatusName(StepStatus s);

// A finished node, as checkpointed.
struct StepRecord {
  StepStatus status = StepStatus::kSucceeded;
  Json output;        // null when skipped
  std::string error;  // when failed
  int attempt = 1;
};

// What a `task` node asks the task layer to do.
struct TaskNodeRequest {
  std::string run_id;
  std::string node_id;
  int attempt = 1;  // the node's
  std::string queue;
  std::string kind;
  Json payload;
  int max_attempts = 1;
  std::chrono::milliseconds timeout{0};
  // Stable across resumes of the same run: use it as the submission's unique key so a resumed
  // run waits for the task it already submitted instead of submitting another.
  std::string unique_key;
};

// Where a task node's task is: ended well (its result), or still going (when to look again).
struct TaskNodeProgress {
  std::string task_id;
  std::optional<Json> result;  // set once the task succeeded
  int64_t check_at_ms = 0;     // still going: when to look again (wall-clock ms)
  int64_t created_ms = 0;      // when the task was submitted (wall-clock ms; 0: unknown)
};

// Where a run's results go. Implemented by the worker (store checkpoints, event stream) and by
// tests. All methods are called concurrently from node threads.
class RunSink {
 public:
  virtual ~RunSink() = default;

  // Called exactly once per finished node. An error aborts the run (see kAborted).
  virtual Status SaveStep(const std::string& node_id, StepStatus status, const Json& output,
                          const std::string& error, int attempt) = 0;
  // SaveStep for the run's last node: nothing runs after it, and the run ends next with the
  // outcome it decides. A sink may hold it and write it in the commit that ends the run (the
  // worker's does: one commit, not two), so a crash before that end runs the node again, as a
  // crash during it would. The default saves it now.
  virtual Status SaveLastStep(const std::string& node_id, StepStatus status, const Json& output,
                              const std::string& error, int attempt) {
    return SaveStep(node_id, status, output, error, attempt);
  }

  // Event types: node.started {node, kind, attempt}, node.finished {node, status, attempt,
  // duration_ms, error?}, node.retrying {node, attempt, delay_ms, error},
  // node.log {node, message, stream?}, node.waiting {node, attempt, deadline_ms}. Must not block
  // for long.
  virtual void Emit(const std::string& type, const Json& data) = 0;

  // Submits the task (again: the request's unique key makes that idempotent) and says where it
  // is, without waiting for it: the executor calls again at check_at_ms, with the run's other
  // nodes free to go on meanwhile (and the run free to give its worker slot back). A task that
  // failed or was cancelled is an error whose retryable flag decides whether the node's retry
  // policy applies.
  virtual Result<TaskNodeProgress> SubmitOrCheck(const TaskNodeRequest& request) = 0;

  // A delay node's deadline in wall-clock ms, kept across resumes: the first call for a node's
  // attempt stores now + duration; after a crash the resumed run's call gets the stored one, so
  // the node waits only what is left. An error fails the attempt (a retryable node error).
  virtual Result<int64_t> DelayDeadline(const std::string& node_id, int attempt,
                                        std::chrono::milliseconds duration) = 0;

  // A delay's or a task node's wait that an earlier execution of the run stored: the node goes
  // on in the attempt it waits in (whose deadline DelayDeadline keeps, whose task the attempt's
  // key finds), and its duration counts from when it began (wall-clock ms). nullopt when none;
  // the default.
  struct StoredWait {
    int attempt = 1;
    int64_t began_ms = 0;
  };
  virtual std::optional<StoredWait> StoredWaitOf(const std::string& /*node_id*/) {
    return std::nullopt;
  }
};

struct RunContext {
  std::string run_id;
  std::string workflow;
  std::string triggered_by;       // "api", "webhook", "cron", ...
  Json inputs = Json::object();   // already resolved (ResolveInputs)
  Json trigger = Json::object();  // webhook: body/headers/query; cron: scheduled_for/timezone
  // Whether work waits for the worker slot this run holds (TaskContext::slot_wanted): a run left
  // with only waits then gives it back after a short look (slot_wanted_give_back) instead of
  // give_back_waits_over. Empty: never.
  std::function<bool()> slot_wanted{};
};

struct RunOutcome {
  enum class Kind {
    kSucceeded,  // every node succeeded or was skipped
    kFailed,     // failed_node failed after its retries; error says why
    kCancelled,  // stop was requested before the run finished
    kAborted,    // a checkpoint could not be saved; the run must not be marked finished here
    // Nothing left to do but wait, long (see ExecutorOptions::give_back_waits_over): for delays
    // and for tasks that task nodes submitted. Run again at `resume_at_ms` from the checkpoints
    // (the delays' deadlines are stored; a task node finds its task again by its unique key),
    // or sooner when one of `waiting_tasks` ends.
    kWaiting,
  };
  Kind kind = Kind::kSucceeded;
  Json outputs = Json::object();  // node id -> output, for nodes that succeeded (redacted)
  std::string failed_node;
  std::string error;
  int64_t resume_at_ms = 0;  // kWaiting: when to run again (wall-clock ms)
  // kWaiting: the tasks task nodes wait for, each with its node's attempt and when that began
  // (to store: the node goes on in that attempt, StoredWaitOf).
  struct WaitingTask {
    std::string node_id;
    int attempt = 1;
    int64_t began_ms = 0;
    std::string task_id;
  };
  std::vector<WaitingTask> waiting_tasks;
};
std::string_view RunOutcomeName(RunOutcome::Kind k);

struct ExecutorOptions {
  // Nodes of one run that may execute at once. Must be > 0.
  int max_parallelism = 4;
  LuaLimits lua;
  // Resolves secrets.NAME; null: no secrets (a template reading one fails its node).
  const SecretResolver* secrets = nullptr;
  // Per stream, for shell nodes' captured stdout/stderr.
  size_t max_output_bytes = 1 << 20;
  // A node's output as stored (its JSON), and the outputs of one run's nodes in all: each is
  // held in memory while the run goes on, stored, and sent whole by GET /runs/{id}. A Lua node
  // could otherwise return its whole memory budget, and each of a thousand nodes its own. A node
  // past either fails without a retry, naming the limit. The node limit is above an http node's
  // largest output (a 10 MiB body).
  size_t max_node_output_bytes = 16 << 20;
  size_t max_run_output_bytes = 64 << 20;
  // node.log events a single node may emit (shell output lines, Lua log calls), and their bytes
  // in all; the rest are dropped with one notice. A line longer than max_log_line_bytes is cut,
  // saying by how much: each event is stored, streamed and paged whole.
  int max_log_events_per_node = 1000;
  int64_t max_log_bytes_per_node = 1 << 20;
  size_t max_log_line_bytes = 16 * 1024;
  // Scales retry backoff (tests use 0 to retry at once).
  double backoff_scale = 1.0;
  // Delay nodes wait on the coordinator's clock, not on a thread each. Once nothing else runs or
  // can start and the nearest deadline is more than this away, the run ends as kWaiting, so its
  // caller can give the worker's slot back; at or under it, the executor waits itself. Negative:
  // it always waits itself.
  // Task nodes' tasks are waited for the same way: once a run has nothing else to do and each
  // of its task nodes has waited this long for its task, it ends as kWaiting too, to run again
  // when a task ends (its caller arranges that) or at the latest `task_wait_recheck` later,
  // growing with the task's age up to 20 times that (a task queued for days would otherwise
  // bring the run back every 30 s).
  std::chrono::milliseconds give_back_waits_over{-1};
  std::chrono::milliseconds task_wait_recheck{30000};
  // give_back_waits_over while RunContext::slot_wanted says work waits for the slot (its task
  // node's own task, say: holding the slot would starve it), when that is shorter.
  std::chrono::milliseconds slot_wanted_give_back{100};
};

// REQUIRES: `workflow` outlives the executor (it is held by reference, not copied).
class RunExecutor {
 public:
  RunExecutor(const Workflow& workflow, ExecutorOptions options);
  RunExecutor(const RunExecutor&) = delete;
  RunExecutor& operator=(const RunExecutor&) = delete;

  RunOutcome Run(const RunContext& context, const std::map<std::string, StepRecord>& checkpoints,
                 RunSink& sink, std::stop_token stop);

 private:
  const Workflow& workflow_;
  const ExecutorOptions options_;
};

}  // namespace ferry::engine
