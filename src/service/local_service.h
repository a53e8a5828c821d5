// The Service over Ferry's own broker and store: what `ferry server` serves and what the CLI
// runs when it holds the Redis and store credentials. Implemented by resource:
// local_tasks.cc (tasks, queues, workers), local_workflows.cc, local_runs.cc, local_follow.cc,
// local_schedules.cc, local_tokens.cc, local_remediation.cc, local_ops.cc.
//
// Thread-safety: every call takes its own connections from the pools, so calls may run on many
// threads at once. A connection that saw an unavailable or internal error is closed, not
// returned.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "broker/broker.h"
#include "core/clock.h"
#include "core/pool.h"
#include "engine/definition.h"
#include "service/service.h"
#include "store/run_counter.h"
#include "store/store.h"

namespace ferry::service {

struct LocalServiceOptions {
  // Where runs go when a start names no queue. Must be a valid queue name.
  std::string run_queue = "default";
  // Task limits (payload size, attempts) for SubmitTask; the broker factory's options.
  BrokerOptions broker;
  // Time for delays and ETAs. Never null.
  const Clock* clock = &SystemClock::Instance();
  // How often followers poll the store for new run events.
  std::chrono::milliseconds follow_poll = std::chrono::milliseconds(200);
  // A run's events may trail its end: a cancel records run.cancelled after the status changes,
  // and the worker that was running it then records its interrupted nodes and run.finished.
  // A follower of a run that has ended stops at run.finished, or once the run has been over this
  // long with nothing more written (a run cancelled before any worker took it).
  std::chrono::milliseconds run_events_settle = std::chrono::milliseconds(3000);
  // A page of run events (the API's JSON pages, each step of a follower) ends with the event
  // that brings its data to this many bytes: a run's events may each hold a node's whole output
  // (up to 1 MiB), so 500 of them would be hundreds of MB in the server's memory.
  int64_t run_event_page_bytes = int64_t{4} << 20;
  // CountRuns: how old the ended statuses' counts may be (RunCounter). Pending and running are
  // counted on each call.
  std::chrono::milliseconds run_counts_ended_every = std::chrono::seconds(15);
  // Evaluates the alert rules with their thresholds (ops::AlertEvaluator, which sits above the
  // service) through a broker and, when `alerts_read_store`, a store (else null). Empty: Alerts()
  // answers kUnavailable.
  std::function<Result<Json>(Broker& broker, Store* store)> alerts;
  bool alerts_read_store = true;
  // Runs the deployment checks (ops::RunDoctor, with the owner's own connections). Empty:
  // Doctor() answers kUnavailable.
  std::function<Result<Json>()> doctor;
};

// A workflow's webhook as its current version declares it (LocalService::FindWebhook).
struct WebhookTarget {
  std::string workflow_id;
  int version = 0;
  // None: the version declares no webhook trigger.
  std::optional<engine::WebhookTrigger> trigger;
  // The trigger's record (runs name it); empty when the store has none.
  std::string trigger_id;
};

// A webhook delivery that passed the trigger's checks (the API verifies signatures: they are
// about HTTP headers), for LocalService::StartWebhookRun.
struct WebhookDelivery {
  // {method, headers, query, body} as the trigger exposes them to the workflow.
  Json data;
  // The signature's replay nonce and until when it is remembered; empty when none.
  std::string nonce;
  int64_t nonce_expires_ms = 0;
};

// A webhook's run, committed (LocalService::StartWebhookRun).
struct WebhookRunStarted {
  Json answer;  // {run_id, status}
  // Submits the run's task (its failure is recorded on the run, which the sweeper then
  // enqueues): called once, after the answer is on its way, for the answer does not wait for it.
  std::function<void()> enqueue;
};

class LocalService : public Service {
 public:
  // The pools must outlive the service. A store is opened only by calls that need one, so a
  // CLI that lists tasks never touches the store.
  LocalService(Pool<Store>& stores, Pool<Broker>& brokers, LocalServiceOptions options);

  Result<Json> SubmitTask(const Json& body) override;
  Result<Json> SubmitTasks(const Json& body) override;
  Result<Json> ListTasks(const Query& query) override;
  Result<Json> GetTask(const std::string& id) override;
  Result<Json> CancelTask(const std::string& id) override;
  Result<Json> RetryTask(const std::string& id) override;
  Result<Json> TaskEvents(const std::string& id, const Query& query) override;
  Result<Json> ListWorkers() override;
  Result<Json> ListQueues() override;
  Result<Json> GetQueue(const std::string& name) override;
  Result<Json> ListDead(const std::string& queue, const Query& query) override;
  Result<Json> PurgeDead(const std::string& queue) override;
  Result<Json> RetryDead(const std::string& queue) override;
  Result<Json> DeleteQueue(const std::string& queue) override;

  Result<Json> ApplyWorkflow(const Json& body, const Caller& caller) override;
  Result<Json> ListWorkflows() override;
  Result<Json> GetWorkflow(const std::string& name) override;
  Result<Json> ListVersions(const std::string& name) override;
  Result<Json> GetVersion(const std::string& name, const std::string& version) override;

  Result<Json> StartRun(const Json& body, const Caller& caller) override;
  Result<Json> ListRuns(const Query& query) override;
  Result<Json> CountRuns() override;
  Result<Json> GetRun(const std::string& id) override;
  Result<Json> CancelRun(const std::string& id, const Caller& caller) override;
  Result<Json> RetryRun(const std::string& id, const Json& body) override;
  Result<Json> RunEvents(const std::string& id, const Query& query) override;

  Result<Json> DispatchCron() override;
  Result<Json> ListRemediations(const Query& query) override;
  Result<Json> GetRemediation(const std::string& id) override;
  Result<Json> DismissRemediation(const std::string& id, const Json& body,
                                  const Caller& caller) override;
  Result<Json> ReopenRemediation(const std::string& id, const Caller& caller) override;
  Result<Json> RemediationDiff(const std::string& id) override;

  Result<Json> Alerts() override;
  Result<Json> Doctor() override;

  Result<Json> ListSchedules() override;
  Result<Json> SetSchedulesPaused(const std::string& workflow, bool paused) override;

  Result<Json> ListTokens() override;
  Result<Json> CreateToken(const Json& body) override;
  Result<Json> RevokeToken(const std::string& id) override;

  Status FollowRunEvents(const std::string& id, int64_t after, std::chrono::milliseconds timeout,
                         const EventSink& sink) override;
  Status FollowTaskEvents(const std::string& id, std::chrono::milliseconds timeout,
                          const EventSink& sink) override;

  // Calls only the server makes (they answer HTTP admission, not a user's action).

  // The scopes of the live API token whose secret's SHA-256 is `token_hash`; nullopt when no
  // live token has it (unknown or revoked).
  Result<std::optional<std::vector<std::string>>> TokenScopes(const std::string& token_hash);
  // Workflow `name`'s webhook: kNotFound when there is no such workflow. Each call reads the
  // workflow (so a new version takes effect at once); its trigger is parsed once per version.
  Result<WebhookTarget> FindWebhook(const std::string& name);
  // Starts `name`'s run for a verified delivery. The body's object fields are the run's inputs
  // (unknown ones allowed: senders choose their payloads); the nonce is recorded with the run, so
  // a replay is kConflict. The run is committed on return; its task is submitted by `enqueue`.
  Result<WebhookRunStarted> StartWebhookRun(const std::string& name, const WebhookTarget& target,
                                            WebhookDelivery delivery);
  // Whether the store and the broker answer: {status: "ok" | "unavailable", store, redis[, error]}
  // (each part "ok" or "unreachable"). /readyz needs no token, so why a part failed (its host,
  // port, driver message) goes to the log, once per new reason, not into the answer.
  Json Readiness();

  // One step of following a run's or a task's events: what came after `after` (at most
  // `limit`, and for a run at most about run_event_page_bytes), and whether the run or task has
  // ended with nothing left to read. The status is read before the events, so every event written
  // before the end is in this step or an earlier one; a run has ended once run.finished is read, or
  // once it has been over for run_events_settle (see LocalServiceOptions). The API's SSE streams
  // poll these (two reads per step); Follow*Events loop on them. A run or task that does not exist
  // (or no longer: retention) is kNotFound.
  struct EventStep {
    struct Event {
      std::string id;  // the cursor to continue after: a run event's seq, a task event's id
      std::string type;
      Json view;  // views::RunEvent / views::TaskEvent
    };
    std::vector<Event> events;
    bool full = false;   // a whole page: more may be waiting, step again at once
    bool ended = false;  // the run or task has ended and every event has been returned
  };
  Result<EventStep> RunEventStep(const std::string& id, int64_t after, int limit);
  // `block`: how long to wait for a first new event while the task has not ended (0: answer at
  // once).
  Result<EventStep> TaskEventStep(const std::string& id, const std::string& after, int limit,
                                  std::chrono::milliseconds block);

  const LocalServiceOptions& options() const { return options_; }

 private:
  // Runs `fn(conn)` on a pooled connection, closing the connection when `fn` failed in a way
  // that may have broken it.
  template <typename T, typename Fn>
  static auto With(Pool<T>& pool, Fn&& fn) -> decltype(fn(std::declval<T&>()));
  // Whether a connection that saw `e` may be broken (and must be closed, not reused).
  static bool MayBreakConnection(const Error& e) {
    return e.code == ErrorCode::kUnavailable || e.code == ErrorCode::kInternal;
  }
  // The workflow named `name` on `store`: NotFound if there is none, InvalidArgument if `name` is
  // empty (no workflow has that name: an unset shell variable, not a missing record).
  static Result<Workflow> FindWorkflow(Store& store, const std::string& name);
  // PurgeDead and RetryDead: `act` on the queue's dead letters up to now -> {queue, done_field}.
  Result<Json> OnDeadLetters(const std::string& queue, const char* done_field, const char* verb,
                             Result<int64_t> (Broker::*act)(const std::string&, int64_t));

  // Constant after construction.
  Pool<Store>& stores_;
  Pool<Broker>& brokers_;
  const LocalServiceOptions options_;
  RunCounter run_counter_{options_.run_counts_ended_every};

  std::mutex readiness_mu_;
  std::string
      readiness_logged_[2];  // store's, broker's last reason logged; Guarded by readiness_mu_

  std::mutex webhooks_mu_;
  std::map<std::string, WebhookTarget> webhooks_;  // by workflow id; Guarded by webhooks_mu_
  // Until when (steady clock) webhooks' runs are left to the sweeper without trying Redis, after
  // a submission failed (local_webhooks.cc).
  std::atomic<std::chrono::steady_clock::rep> submit_skip_until_{0};
};

template <typename T, typename Fn>
auto LocalService::With(Pool<T>& pool, Fn&& fn) -> decltype(fn(std::declval<T&>())) {
  auto lease = pool.Acquire();
  if (!lease) return Fail(lease.error());
  auto result = fn(**lease);
  if (!result && MayBreakConnection(result.error())) lease->MarkBad();
  return result;
}

}  // namespace ferry::service
