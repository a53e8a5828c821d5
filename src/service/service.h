// Every user action and query on tasks, queues, workers, workflows, runs, schedules and API
// tokens, once.
//
// The HTTP API's handlers and the CLI are thin callers of a Service: the API serves a
// LocalService (local_service.h), and the CLI uses either a LocalService (it holds the Redis and
// store credentials) or a RemoteService (remote/remote_service.h: the same calls over the HTTP
// API, so an operator needs only a URL and a token). Because both implementations answer with
// the same JSON, a command prints the same table and the same `--json` in either mode.
//
// Conventions:
//   - Request bodies and query parameters are those of the HTTP API (docs/api.md): the service
//     validates them, so a rule lives here and nowhere else.
//   - Answers are the API's response bodies, built from the record views (src/views).
//   - Errors are values (core/result.h); one mapping turns them into an HTTP status and a CLI
//     exit code.
//
// Thread-safety: an implementation may be called from many threads at once (LocalService takes
// a connection from its pools per call).
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <string>

#include "core/json.h"
#include "core/result.h"

namespace ferry::service {

// Query parameters (?status=running&limit=10); an absent parameter is simply not in the map.
using Query = std::map<std::string, std::string, std::less<>>;

// Who is asking: recorded in events ("cancelled by api"), and which secrets an applied workflow
// may reference (API tokens are scoped; the CLI's local mode may use all of them).
struct Caller {
  std::string actor = "cli";
  std::function<bool(const std::string& secret)> may_use_secret;  // empty: any secret
};

// Receives each followed event (its view) in order; return false to stop following.
using EventSink = std::function<bool(const Json& event)>;

class Service {
 public:
  virtual ~Service() = default;

  // --- Tasks, queues, workers ---
  // {kind, payload, queue, max_attempts, unique_key, timeout, delay | eta_ms} -> {id, existing}
  virtual Result<Json> SubmitTask(const Json& body) = 0;
  // {tasks: [submission, ...]} (1..kMaxBatchTasks, all or nothing, one round trip to Redis)
  // -> {tasks: [{id, existing}], created, existing}
  virtual Result<Json> SubmitTasks(const Json& body) = 0;
  // ?status&queue&limit -> {tasks, next_cursor}
  virtual Result<Json> ListTasks(const Query& query) = 0;
  // -> {task}
  virtual Result<Json> GetTask(const std::string& id) = 0;
  // -> {id, status, outcome: "cancelled" | "cancel_requested"}
  virtual Result<Json> CancelTask(const std::string& id) = 0;
  // -> {id, status, outcome: "requeued"}
  virtual Result<Json> RetryTask(const std::string& id) = 0;
  // ?after&limit -> {events, next_cursor}
  virtual Result<Json> TaskEvents(const std::string& id, const Query& query) = 0;
  // -> {workers, next_cursor}
  virtual Result<Json> ListWorkers() = 0;
  // -> {queues, next_cursor}
  virtual Result<Json> ListQueues() = 0;
  // -> {queue}
  virtual Result<Json> GetQueue(const std::string& name) = 0;
  // ?limit -> {tasks, next_cursor}: the queue's dead letters, newest first
  virtual Result<Json> ListDead(const std::string& queue, const Query& query) = 0;
  // -> {queue, purged}: deletes for good the tasks dead-lettered in the queue up to now
  virtual Result<Json> PurgeDead(const std::string& queue) = 0;
  // -> {queue, retried}: re-runs the tasks dead-lettered in the queue up to now, with fresh
  // attempts (Broker::RetryDead)
  virtual Result<Json> RetryDead(const std::string& queue) = 0;
  // -> {queue, deleted: true}: forgets a queue that no live worker serves and that holds no
  // task waiting, running, scheduled or dead-lettered (Broker::DeleteQueue); kConflict naming
  // what keeps it, kNotFound when there is no such queue.
  virtual Result<Json> DeleteQueue(const std::string& queue) = 0;

  // --- Workflows ---
  // {source, format, author, notes} -> {workflow, version, created, triggers}. An invalid source
  // is kInvalidArgument with {"diagnostics": [...]} in Error::details.
  virtual Result<Json> ApplyWorkflow(const Json& body, const Caller& caller) = 0;
  // -> {workflows (each with last_run), next_cursor}
  virtual Result<Json> ListWorkflows() = 0;
  // -> {workflow, version (full), triggers, recent_runs}
  virtual Result<Json> GetWorkflow(const std::string& name) = 0;
  // -> {workflow, versions, next_cursor}
  virtual Result<Json> ListVersions(const std::string& name) = 0;
  // -> {version (full)}
  virtual Result<Json> GetVersion(const std::string& name, const std::string& version) = 0;

  // --- Runs ---
  // {workflow, inputs, queue} -> {run, enqueued, task_id, enqueue_error}
  virtual Result<Json> StartRun(const Json& body, const Caller& caller) = 0;
  // ?workflow&status&triggered_by&limit&cursor -> {runs, next_cursor}
  virtual Result<Json> ListRuns(const Query& query) = 0;
  // -> {counts: {pending, running, succeeded, failed, cancelled}, total}: every run in the store
  virtual Result<Json> CountRuns() = 0;
  // -> {run (with steps)}
  virtual Result<Json> GetRun(const std::string& id) = 0;
  // -> {run, task_id, task_cancel}
  virtual Result<Json> CancelRun(const std::string& id, const Caller& caller) = 0;
  // {latest_version} -> {run, enqueued, task_id, enqueue_error}
  virtual Result<Json> RetryRun(const std::string& id, const Json& body) = 0;
  // ?after&limit -> {events, next_cursor}
  virtual Result<Json> RunEvents(const std::string& id, const Query& query) = 0;

  // -> the dispatch report {fired, ...}: one cron dispatch tick now, exactly once per
  // occurrence through the store, so racing the scheduler's leader is harmless
  virtual Result<Json> DispatchCron() = 0;

  // --- Remediation candidates (docs/remediation.md) ---
  // ?status&workflow&limit&cursor -> {remediations, next_cursor}
  virtual Result<Json> ListRemediations(const Query& query) = 0;
  // -> {remediation (with its attempt history)}
  virtual Result<Json> GetRemediation(const std::string& id) = 0;
  // {reason?} -> {remediation}
  virtual Result<Json> DismissRemediation(const std::string& id, const Json& body,
                                          const Caller& caller) = 0;
  // -> {remediation}
  virtual Result<Json> ReopenRemediation(const std::string& id, const Caller& caller) = 0;
  // -> {id, workflow, from_version, to_version, status, diff}
  virtual Result<Json> RemediationDiff(const std::string& id) = 0;

  // --- Operations ---
  // -> the alert rules evaluated now (docs/operations.md): {evaluated_at, evaluated_ms, firing,
  // resolved, store_checked, thresholds}; kUnavailable where no rules are evaluated
  virtual Result<Json> Alerts() = 0;
  // -> {status, checks: [{name, level, message, fix?}]} (src/ops/doctor.h): the deployment's
  // checks as the side that runs them sees it (a server: its Redis, store and clock)
  virtual Result<Json> Doctor() = 0;

  // --- Schedules (cron triggers) ---
  // -> {schedules, next_cursor}: each with its next fire times in its own time zone
  virtual Result<Json> ListSchedules() = 0;
  // Pauses or resumes every schedule of a workflow -> {workflow, paused}
  virtual Result<Json> SetSchedulesPaused(const std::string& workflow, bool paused) = 0;

  // --- API tokens ---
  // -> {tokens, next_cursor} (never a secret)
  virtual Result<Json> ListTokens() = 0;
  // {name, scopes: "run,apply" | ["run", ...] (default run)} -> the token's view plus "token",
  // its secret, shown this once
  virtual Result<Json> CreateToken(const Json& body) = 0;
  // -> {id, revoked: true}
  virtual Result<Json> RevokeToken(const std::string& id) = 0;

  // --- Following ---
  // Delivers the run's events after seq `after`, in order, until the run has ended and its last
  // event was delivered (then OK), `sink` returned false (OK), or `timeout` passed (kTimeout).
  virtual Status FollowRunEvents(const std::string& id, int64_t after,
                                 std::chrono::milliseconds timeout, const EventSink& sink) = 0;
  // The same for a task's event stream; it ends when the task record is terminal.
  virtual Status FollowTaskEvents(const std::string& id, std::chrono::milliseconds timeout,
                                  const EventSink& sink) = 0;
};

}  // namespace ferry::service
