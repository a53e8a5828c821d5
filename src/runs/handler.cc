#include "runs/handler.h"

#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <utility>

#include "core/crypto.h"
#include "core/delayed_threads.h"
#include "core/json_fields.h"
#include "core/pool.h"
#include "core/sleep.h"
#include "core/time_util.h"
#include "engine/ingest.h"
#include "runs/definitions.h"
#include "runs/runs.h"
#include "worker/worker.h"

namespace ferry::runs {
namespace {

using std::chrono::milliseconds;

// How long a task node's submission key maps to its task (SubmitRequest::unique_ttl).
constexpr std::chrono::hours kTaskNodeUniqueTtl{24 * 30};
// When a task node looks at its task again after Redis did not answer.
constexpr milliseconds kTaskLookAfterBrokerError{1000};
// A run's events held for the next write while the store cannot take them (WritePendingLocked):
// about a minute of a chatty node's log lines, bounded so a long outage does not grow memory.
constexpr size_t kMaxHeldEvents = 2000;
// The first and the longest pause between tries of a write WhileStoreAway repeats.
constexpr milliseconds kStoreRetryFirstPause{100};
constexpr milliseconds kStoreRetryMaxPause{2000};

// Tries `write` again while the store is briefly away (a restart, a failover, a lock waited out
// to the statement timeout), for up to `patience`, pausing longer each time. For the writes a
// run's progress rests on (a node's checkpoint, a delay's deadline, the run's end): given up,
// the attempt stops and the task's next one runs the node again, whose side effects then happen
// twice. Each such write is safe to repeat after a lost answer (a checkpoint or an end already
// stored is found so). A stop request (a drain, a cancel, a lost lease) ends the waiting.
template <typename Write>
auto WhileStoreAway(const std::string& run_id, std::string_view what, milliseconds patience,
                    const std::stop_token& stop, Write&& write) {
  const auto give_up = std::chrono::steady_clock::now() + patience;
  milliseconds pause = kStoreRetryFirstPause;
  for (;;) {
    auto r = write();
    if (r || !r.error().Retryable()) return r;
    if (std::chrono::steady_clock::now() + pause > give_up) return r;
    spdlog::warn("run {}: {} not saved ({}); trying again in {} ms", run_id, what,
                 r.error().message, pause.count());
    if (!SleepFor(stop, pause)) return r;
    pause = std::min(pause * 2, kStoreRetryMaxPause);
  }
}

// Shared by every execution of one registered handler.
struct HandlerState {
  HandlerState(StoreFactory& s, BrokerFactory& b, RunHandlerOptions o)
      : options(std::move(o)),
        stores([&s] { return s.Open(); }, options.max_idle_store_connections),
        brokers([&b] { return b.Open(); }, options.max_idle_broker_connections) {
    if (options.worker_id.empty()) options.worker_id = DefaultWorkerId();
    options.executor.secrets = options.secrets != nullptr ? options.secrets : &env_secrets;
    options.executor.give_back_waits_over = options.give_back_waits_over;
  }

  engine::EnvSecretResolver env_secrets;
  RunHandlerOptions options;
  Pool<Store> stores;
  Pool<Broker> brokers;
  // Each execution's store watcher (below), started once a run outlives its first turn. Last:
  // every execution, and so every watcher, has ended before the state goes.
  DelayedThreads watchers;
};

HandlerError Retryable(std::string message) { return HandlerError{std::move(message), true}; }
HandlerError NotRetryable(std::string message) { return HandlerError{std::move(message), false}; }

std::optional<engine::StepStatus> ParseStepStatus(const std::string& s) {
  for (auto st : {engine::StepStatus::kSucceeded, engine::StepStatus::kFailed,
                  engine::StepStatus::kSkipped}) {
    if (engine::StepStatusName(st) == s) return st;
  }
  return std::nullopt;
}

// A node's stored wait (a kStepWaiting row): a delay's deadline, or the task a task node waits
// for (stored when the run gave its slot back).
struct StoredNodeWait {
  int attempt = 0;
  int64_t deadline_ms = 0;  // a delay's; 0 for a task node's
  int64_t started_ms = 0;   // when the wait's attempt began, in the execution that stored it
  std::string task_id;      // a task node's task
};

// The step row that stores a node's wait (a delay's deadline, or the task a task node waits
// for), so that a resumed run goes on in that attempt and from when it began.
RunStep WaitingStep(const std::string& run_id, const std::string& node_id, int attempt,
                    int64_t fencing, int64_t started_ms, const Json& output) {
  RunStep step;
  step.run_id = run_id;
  step.node_id = node_id;
  step.status = std::string(kStepWaiting);
  step.output = DumpJson(output);
  step.attempt = attempt;
  step.epoch = fencing;
  step.started_ms = started_ms;
  return step;
}

// The executor's window on the store and the task layer for one execution. Node threads call it
// concurrently; the one Store connection is serialized by store_mu.
class StoreSink final : public engine::RunSink {
 public:
  // `waiter_queue` and `waiter_id` name the run's own task, which task nodes' tasks wake.
  StoreSink(HandlerState& state, Store& store, std::mutex& store_mu, std::string run_id,
            int64_t fencing, const TaskContext& task, std::map<std::string, StoredNodeWait> waiting)
      : state_(state),
        store_(store),
        store_mu_(store_mu),
        run_id_(std::move(run_id)),
        fencing_(fencing),
        task_events_(task.events),
        waiter_queue_(task.queue),
        waiter_id_(task.id),
        stop_(task.stop),
        waiting_(std::move(waiting)) {
    // The tasks stored waits name are this run's from the start: found by id when their nodes
    // go on (whatever became of their unique keys), and cancelled if the run ends first.
    for (const auto& [node_id, w] : waiting_) {
      if (!w.task_id.empty()) child_tasks_[{node_id, w.attempt}] = ChildTask{w.task_id, false};
    }
  }

  Result<int64_t> DelayDeadline(const std::string& node_id, int attempt,
                                milliseconds duration) override {
    std::lock_guard lock(store_mu_);
    if (auto it = waiting_.find(node_id); it != waiting_.end() && it->second.attempt == attempt) {
      return it->second.deadline_ms;
    }
    const int64_t deadline = WallNowMs() + duration.count();
    const RunStep step =
        WaitingStep(run_id_, node_id, attempt, fencing_,
                    StartedMsLocked(node_id, attempt).value_or(WallNowMs()),
                    Json{{"deadline_ms", deadline}, {"duration_ms", duration.count()}});
    if (auto r = SaveWithEvents(step); !r) {
      // The executor aborts the run for it (NodeAbortRun), as for a checkpoint not saved.
      if (!abort_error_) abort_error_ = r.error();
      return Fail(r.error());
    }
    waiting_[node_id] = StoredNodeWait{attempt, deadline, step.started_ms, ""};
    return deadline;
  }

  std::optional<StoredWait> StoredWaitOf(const std::string& node_id) override {
    std::lock_guard lock(store_mu_);
    auto it = waiting_.find(node_id);
    if (it == waiting_.end()) return std::nullopt;
    return StoredWait{it->second.attempt, it->second.started_ms};
  }

  Status SaveStep(const std::string& node_id, engine::StepStatus status, const Json& output,
                  const std::string& error, int attempt) override {
    std::lock_guard lock(store_mu_);
    auto r = SaveWithEvents(MakeStepLocked(node_id, status, output, error, attempt));
    if (!r) {
      if (!abort_error_) abort_error_ = r.error();
      return Fail(r.error());
    }
    return {};
  }

  // Held for the run's end: FinishRun writes it, the end and the events in one commit.
  Status SaveLastStep(const std::string& node_id, engine::StepStatus status, const Json& output,
                      const std::string& error, int attempt) override {
    std::lock_guard lock(store_mu_);
    last_step_ = MakeStepLocked(node_id, status, output, error, attempt);
    return {};
  }

  // For the run's end: the last node's step, if one is held. The executor hands over the last
  // node only when every node is done, so the outcome is then succeeded or failed and the run
  // always reaches Finish, which takes it.
  std::vector<RunStep> TakeLastStep() {
    std::lock_guard lock(store_mu_);
    std::vector<RunStep> out;
    if (last_step_) out.push_back(*std::exchange(last_step_, std::nullopt));
    return out;
  }

  // Events wait for the next write of this execution (a checkpoint, a delay's deadline, the
  // run's end) or the next FlushRunEvents, and go in that commit: a node's start, its log lines,
  // its end and its checkpoint cost one commit, not one each.
  // Not under store_mu_, which a store call holds (the watcher's read of the run may wait out a
  // lock up to the statement timeout): a node's log line never waits for the store.
  void Emit(const std::string& type, const Json& data) override {
    {
      std::lock_guard lock(events_mu_);
      if (type == "node.started" && data.is_object() && data.contains("node")) {
        started_ms_[data["node"].get<std::string>()] = WallNowMs();
      }
      pending_.push_back(NewRunEvent{type, DumpJson(data), WallNowMs()});
    }
    if (state_.options.task_events && task_events_ != nullptr) task_events_->Emit(type, data);
  }

  // Writes the waiting events in one commit (the watcher calls it every `event_flush`, so a
  // page following the run sees them that soon).
  void FlushRunEvents() {
    std::lock_guard lock(store_mu_);
    WritePendingLocked();  // one commit: AppendRunEvents is atomic
  }

  // The waiting events, taken for a write (the run's end, a checkpoint, a flush).
  std::vector<NewRunEvent> TakePendingEvents() {
    std::lock_guard lock(events_mu_);
    return std::exchange(pending_, {});
  }

  Result<engine::TaskNodeProgress> SubmitOrCheck(const engine::TaskNodeRequest& request) override {
    std::string id;
    std::string stored;  // named by the wait an earlier execution stored, not yet looked at
    {
      std::lock_guard lock(store_mu_);
      if (auto it = child_tasks_.find({request.node_id, request.attempt});
          it != child_tasks_.end()) {
        (it->second.looked ? id : stored) = it->second.id;
      }
    }
    // Redis out of reach (restarting, failing over) is no failure of the node's attempt, which
    // would submit a second task under the next attempt's key: look again (the same key finds
    // the task, if the submit that lost its answer made one).
    const auto later = [&](const Error& e) -> Result<engine::TaskNodeProgress> {
      if (!e.Retryable()) return Fail(e);
      spdlog::debug("run {}: task node {}: {}; looking again", run_id_, request.node_id, e.message);
      return engine::TaskNodeProgress{id, std::nullopt,
                                      WallNowMs() + kTaskLookAfterBrokerError.count(), 0};
    };
    auto broker = state_.brokers.Acquire();
    if (!broker) return later(broker.error());
    const int64_t check_at = WallNowMs() + state_.options.task_poll.count();
    const auto look = [&](const std::string& task_id) -> Result<std::optional<TaskRecord>> {
      auto task = (*broker)->GetTask(task_id);
      if (!task) broker->MarkBad();
      return task;
    };
    if (!stored.empty()) {
      // A task a stored wait names is looked at by that id. Ended: its end counts, as is. Gone
      // (the run was away longer than the task layer keeps a record): the node submits anew, as
      // for a new attempt. Still going: submitted again under its key below, which makes this
      // run's task (a new one, after recovery) the one its end wakes.
      auto task = look(stored);
      if (!task) return later(task.error());
      if (*task && IsTerminal((**task).status)) {
        id = stored;
        RememberChild(request, id);
        return ProgressOf(id, **task, check_at);
      }
      if (!*task) stored.clear();
    }
    if (id.empty()) {
      // A new attempt of the node: the task of one before it that did not end (the attempt timed
      // out) is no longer waited for by anyone, so it stops instead of running on beside this one.
      for (const auto& abandoned : AbandonedChildren(request.node_id, request.attempt)) {
        if (auto r = (*broker)->CancelUnwaited(abandoned); !r &&
                                                           r.error().code != ErrorCode::kConflict &&
                                                           r.error().code != ErrorCode::kNotFound) {
          spdlog::debug("run {}: task node {}: cancelling task {} of an earlier attempt: {}",
                        run_id_, request.node_id, abandoned, r.error().message);
          continue;  // the run's end tries again
        }
        std::lock_guard lock(store_mu_);
        ended_children_.insert(abandoned);
      }
      auto submitted = (*broker)->Submit(ChildRequest(request));
      if (!submitted) {
        broker->MarkBad();
        return later(submitted.error());
      }
      id = submitted->id;
      bool fresh = !submitted->existing;
      if (!stored.empty() && id != stored) {
        // The stored task goes on, but its key had gone (it names a task for a month): the
        // stored task is the node's, and the one just made is cancelled, and kept among the
        // run's tasks so that its end cancels it should this not have.
        if (fresh) {
          (void)(*broker)->CancelUnwaited(id);
          std::lock_guard lock(store_mu_);
          stray_children_.insert(id);
        }
        id = stored;
        fresh = false;
      }
      RememberChild(request, id);
      // Just made: it has not ended. One submitted before (a resumed run) may have.
      if (fresh) return engine::TaskNodeProgress{id, std::nullopt, check_at, WallNowMs()};
    }
    auto task = look(id);
    if (!task) return later(task.error());
    if (!*task) return Fail(ErrorCode::kInternal, "task " + id + " vanished");
    return ProgressOf(id, **task, check_at);
  }

  // The first SaveStep or delay deadline error (why the executor aborted).
  std::optional<Error> abort_error() const {
    std::lock_guard lock(store_mu_);
    return abort_error_;
  }
  // The tasks task nodes submitted that were not seen to end (a timed-out attempt's, one
  // still running beside a node that failed the run).
  std::set<std::string> unended_child_tasks() const {
    std::lock_guard lock(store_mu_);
    std::set<std::string> ids = stray_children_;
    for (const auto& [attempt, child] : child_tasks_) {
      if (ended_children_.count(child.id) == 0) ids.insert(child.id);
    }
    return ids;
  }

 private:
  SubmitRequest ChildRequest(const engine::TaskNodeRequest& request) const {
    SubmitRequest req;
    req.kind = request.kind;
    req.payload = request.payload;
    req.queue = request.queue;
    req.max_attempts = request.max_attempts;
    req.timeout = request.timeout;
    req.unique_key = request.unique_key;
    // A run that waits for days finds its task again by this key when it goes on: the key
    // outlives any wait short of a month (a day, the default, would submit a second task).
    req.unique_ttl = kTaskNodeUniqueTtl;
    // Its end wakes this run's task, should the run have given its slot back meanwhile.
    req.waiter_queue = waiter_queue_;
    req.waiter_id = waiter_id_;
    return req;
  }

  void RememberChild(const engine::TaskNodeRequest& request, const std::string& id) {
    std::lock_guard lock(store_mu_);
    child_tasks_[{request.node_id, request.attempt}] = ChildTask{id, true};
  }

  // Where task `id` (its record `t`) leaves the node: its result, its failure, or still going
  // (look again at `check_at`).
  Result<engine::TaskNodeProgress> ProgressOf(const std::string& id, const TaskRecord& t,
                                              int64_t check_at) {
    if (IsTerminal(t.status)) {
      std::lock_guard lock(store_mu_);
      ended_children_.insert(id);
    }
    if (t.status == TaskStatus::kSucceeded) {
      if (t.result.empty()) return engine::TaskNodeProgress{id, Json(nullptr), 0, t.created_ms};
      auto j = ParseStoredJson(t.result);
      return engine::TaskNodeProgress{id, j ? *j : Json(t.result), 0, t.created_ms};
    }
    if (t.status == TaskStatus::kFailed) {
      return Fail(ErrorCode::kInternal, "task " + id + " (" + t.kind + ") failed: " + t.error);
    }
    if (t.status == TaskStatus::kCancelled) {
      return Fail(ErrorCode::kCancelled, "task " + id + " (" + t.kind + ") was cancelled");
    }
    return engine::TaskNodeProgress{id, std::nullopt, check_at, t.created_ms};
  }

  // The tasks of `node_id`'s attempts other than `attempt` that were not seen to end.
  std::vector<std::string> AbandonedChildren(const std::string& node_id, int attempt) const {
    std::lock_guard lock(store_mu_);
    std::vector<std::string> ids;
    for (const auto& [at, child] : child_tasks_) {
      if (at.first == node_id && at.second != attempt && ended_children_.count(child.id) == 0) {
        ids.push_back(child.id);
      }
    }
    return ids;
  }

  // REQUIRES store_mu_ held.
  RunStep MakeStepLocked(const std::string& node_id, engine::StepStatus status, const Json& output,
                         const std::string& error, int attempt) const {
    RunStep step;
    step.run_id = run_id_;
    step.node_id = node_id;
    step.status = std::string(engine::StepStatusName(status));
    step.output = output.is_null() ? "" : DumpJson(output);
    step.error = error;
    step.attempt = attempt;
    step.epoch = fencing_;
    step.finished_ms = WallNowMs();
    step.started_ms = StartedMsLocked(node_id, attempt).value_or(step.finished_ms);
    return step;
  }

  // When `node_id`'s attempt began: at its node.started in this execution, or, going on from a
  // wait an earlier one stored (no node.started again), when that wait's attempt began.
  // REQUIRES store_mu_ held.
  std::optional<int64_t> StartedMsLocked(const std::string& node_id, int attempt) const {
    {
      std::lock_guard lock(events_mu_);
      if (auto it = started_ms_.find(node_id); it != started_ms_.end()) return it->second;
    }
    auto stored = waiting_.find(node_id);
    if (stored != waiting_.end() && stored->second.attempt == attempt &&
        stored->second.started_ms > 0) {
      return stored->second.started_ms;
    }
    return std::nullopt;
  }

  // Saves `step` and the waiting events in one commit, tried again while the store is briefly
  // away (WhileStoreAway). REQUIRES store_mu_ held: the watcher's reads and the other nodes'
  // writes wait meanwhile, as they would fail too.
  Status SaveWithEvents(const RunStep& step) {
    return WhileStoreAway(run_id_, "node " + step.node_id + "'s checkpoint",
                          state_.options.store_patience, stop_,
                          [&] { return SaveWithEventsOnce(step); });
  }

  // One try of SaveWithEvents. The events of a try that failed wait for the next write, unless
  // its commit's answer was lost: they may be stored, and the history would tell them twice.
  Status SaveWithEventsOnce(const RunStep& step) {
    std::vector<NewRunEvent> batch = TakePendingEvents();
    const auto failed = [&](Error e) -> Status {
      if (OutcomeIsUnknown(e)) {
        if (!batch.empty()) {
          spdlog::warn("run {}: {} event(s) of its history may not be recorded: {}", run_id_,
                       batch.size(), e.message);
        }
      } else {
        PutBackLocked(std::move(batch), e);
      }
      return Fail(std::move(e));
    };
    auto tx = store_.Begin();
    if (!tx) return failed(tx.error());
    if (!batch.empty()) {
      if (auto r = store_.AppendRunEvents(run_id_, batch); !r) return failed(r.error());
    }
    if (auto r = store_.SaveStep(step); !r) return failed(r.error());
    if (auto r = (*tx)->Commit(); !r) return failed(r.error());
    return {};
  }

  // REQUIRES store_mu_ held. Events are never a reason to stop the run. Those the store cannot
  // take just now (unreachable, a statement timeout) wait for the next write, up to
  // kMaxHeldEvents; others, and past that many, are dropped, and the operator is told how many.
  void WritePendingLocked() {
    std::vector<NewRunEvent> batch = TakePendingEvents();
    if (batch.empty()) return;
    auto r = store_.AppendRunEvents(run_id_, batch);
    if (r) return;
    if (r.error().Retryable()) {
      const size_t n = batch.size();
      if (PutBackLocked(std::move(batch), r.error())) {
        spdlog::warn("run {}: {} event(s) not recorded yet, kept for the next write: {}", run_id_,
                     n, r.error().message);
      }
      return;
    }
    spdlog::warn("run {}: {} event(s) of its history dropped: {}", run_id_, batch.size(),
                 r.error().message);
  }

  // Puts `batch`, which a write could not take (`why`), back for the next write, ahead of the
  // events emitted since: the history keeps the order things happened in. Past kMaxHeldEvents it
  // is dropped instead, and the operator told; false then. REQUIRES store_mu_ held.
  bool PutBackLocked(std::vector<NewRunEvent> batch, const Error& why) {
    if (batch.empty()) return true;
    if (batch.size() > kMaxHeldEvents) {
      spdlog::warn("run {}: {} event(s) of its history dropped: {}", run_id_, batch.size(),
                   why.message);
      return false;
    }
    std::lock_guard lock(events_mu_);
    batch.insert(batch.end(), std::make_move_iterator(pending_.begin()),
                 std::make_move_iterator(pending_.end()));
    pending_ = std::move(batch);
    return true;
  }

  HandlerState& state_;
  Store& store_;
  std::mutex& store_mu_;
  const std::string run_id_;
  const int64_t fencing_;
  EventEmitter* const task_events_;
  const std::string waiter_queue_;
  const std::string waiter_id_;
  const std::stop_token stop_;  // the task's: ends WhileStoreAway's waiting
  // What Emit writes, taken after store_mu_ when both are held (never the other way round).
  mutable std::mutex events_mu_;
  std::vector<NewRunEvent> pending_;           // Guarded by events_mu_
  std::map<std::string, int64_t> started_ms_;  // Guarded by events_mu_
  // Guarded by store_mu_:
  std::map<std::string, StoredNodeWait> waiting_;
  std::optional<RunStep> last_step_;  // SaveLastStep's, until the run's end writes it
  std::optional<Error> abort_error_;
  // Task nodes' tasks, by node and attempt: submitted (or found again) by this execution, or
  // named by a stored wait and not yet looked at.
  struct ChildTask {
    std::string id;
    bool looked = false;
  };
  std::map<std::pair<std::string, int>, ChildTask> child_tasks_;
  std::set<std::string> stray_children_;  // made again under a key that had gone, cancelled
  std::set<std::string> ended_children_;  // of those, the ones seen to end
};

// The trigger context StartRun kept in the "run.created" event.
Json LoadTrigger(Store& store, const std::string& run_id) {
  // run.created is a run's first event (seq 1), written with the run.
  auto page = store.ListRunEventPage(run_id, {.limit = 1});
  if (!page) return Json::object();
  for (const auto& e : page->events) {
    if (e.type != kEventCreated) continue;
    auto data = ParseStoredJson(e.data);
    if (data && data->is_object() && data->contains("trigger")) return (*data)["trigger"];
  }
  return Json::object();
}

Json RunResult(const Run& run) {
  Json j{{"run_id", run.id}, {"status", RunStatusName(run.status)}};
  if (!run.failed_node.empty()) j["failed_node"] = run.failed_node;
  if (!run.error.empty()) j["error"] = run.error;
  return j;
}

class Execution {
 public:
  Execution(HandlerState& state, TaskContext& ctx) : state_(state), ctx_(ctx) {}

  // The store is away (a database restart, a failover): the next attempt waits 5 s more each
  // time, so a run's task's attempts span about 50 s of outage, not the dozen seconds of the
  // worker's own backoff, before it is dead-lettered (recovery would then go on with a new task,
  // leaving the dead letter behind). Nothing of the run was changed by the attempt.
  HandlerError StoreUnavailable(const std::string& message) const {
    constexpr std::chrono::milliseconds kStep = std::chrono::seconds(5);
    return HandlerError{"store: " + message, true, kStep * std::clamp(ctx_.attempt, 1, 12)};
  }

  HandlerResult Run() {
    if (!ctx_.payload.is_object() || !ctx_.payload.contains("run_id") ||
        !ctx_.payload["run_id"].is_string()) {
      return tl::unexpected(NotRetryable("payload needs {\"run_id\": \"...\"}"));
    }
    run_id_ = ctx_.payload["run_id"].get<std::string>();
    generation_ = ctx_.payload.value("generation", 0);
    fencing_ = RunFencingToken(generation_, ctx_.epoch);
    worker_ = state_.options.worker_id + "/" + ctx_.id;

    auto lease = state_.stores.Acquire();
    if (!lease) return tl::unexpected(StoreUnavailable(lease.error().message));
    Store& store = **lease;
    auto result = Execute(store);
    // A store error may have broken the connection; a snooze (the run gave its slot back) did not.
    if (!result && result.error().retryable && !result.error().snooze) lease->MarkBad();
    return result;
  }

 private:
  HandlerResult Execute(Store& store) {
    // Running, its "started" event and the read of its checkpoints are one commit (one round
    // trip on PostgreSQL). The transition is conditional and returns the row, so the run is not
    // read first: only when it does not apply (the run ended, or a newer execution holds it) is
    // it read, to say why.
    const NewRunEvent started_event{std::string(kEventStarted),
                                    DumpJson(Json{{"task_id", ctx_.id},
                                                  {"queue", ctx_.queue},
                                                  {"generation", generation_},
                                                  {"epoch", fencing_},
                                                  {"worker", state_.options.worker_id}}),
                                    0};
    auto started = store.MarkRunStarted(run_id_, fencing_, worker_, started_event);
    if (!started) {
      if (started.error().code == ErrorCode::kNotFound) {
        return tl::unexpected(NotRetryable("no run " + run_id_));
      }
      if (started.error().code != ErrorCode::kConflict) {
        return tl::unexpected(StoreUnavailable(started.error().message));
      }
      auto now = store.GetRun(run_id_);
      if (!now) return tl::unexpected(StoreUnavailable(now.error().message));
      if (*now && IsTerminal((**now).status)) {
        spdlog::info("run {}: already {}; nothing to do", run_id_, RunStatusName((**now).status));
        return RunResult(**now);
      }
      spdlog::info("run {}: superseded ({})", run_id_, started.error().message);
      return tl::unexpected(NotRetryable("superseded: " + started.error().message));
    }
    const ferry::Run& run = started->run;
    started_ms_ = run.started_ms;
    if (run.attempt > state_.options.max_run_attempts) {
      return Finish(store, RunStatus::kFailed, "",
                    "run abandoned: started " + std::to_string(run.attempt) +
                        " times, more than max_run_attempts (" +
                        std::to_string(state_.options.max_run_attempts) +
                        "); every earlier attempt ended without finishing it (a node that kills "
                        "its worker?)",
                    "");
    }

    // From here the run is ours: a definition problem ends it as failed.
    auto def = LoadDefinition(store, run.workflow_id, run.version);
    if (!def && def.error().code == ErrorCode::kUnavailable) {
      return tl::unexpected(StoreUnavailable(def.error().message));
    }
    if (!def) return Finish(store, RunStatus::kFailed, "", def.error().message, "");
    const engine::Workflow& wf = *def->workflow;
    auto given = ParseStoredJson(run.inputs.empty() ? "{}" : run.inputs);
    if (!given) return Finish(store, RunStatus::kFailed, "", "inputs are not JSON", "");
    auto inputs = engine::ResolveInputs(wf, *given, /*allow_unknown=*/true);
    if (!inputs) return Finish(store, RunStatus::kFailed, "", inputs.error().message, "");

    // Read with the start even on a first attempt: a repeat of the claim that already won (same
    // epoch and worker) gets the row back without a new attempt, and may find checkpoints.
    std::map<std::string, engine::StepRecord> checkpoints;
    std::map<std::string, StoredNodeWait> waiting;
    for (const auto& s : started->steps) {
      if (s.status == kStepWaiting) {
        auto out = ParseStoredJson(s.output);
        if (out && out->is_object() && (*out)["deadline_ms"].is_number_integer()) {
          waiting[s.node_id] =
              StoredNodeWait{s.attempt, (*out)["deadline_ms"].get<int64_t>(), s.started_ms, ""};
        } else if (out && out->is_object() && (*out)["task"].is_string()) {
          waiting[s.node_id] =
              StoredNodeWait{s.attempt, 0, s.started_ms, (*out)["task"].get<std::string>()};
        }
        continue;
      }
      auto status = ParseStepStatus(s.status);
      if (!status) continue;
      engine::StepRecord rec;
      rec.status = *status;
      if (!s.output.empty()) {
        auto j = ParseStoredJson(s.output);
        rec.output = j ? *j : Json(s.output);
      }
      rec.error = s.error;
      rec.attempt = s.attempt;
      checkpoints[s.node_id] = std::move(rec);
    }
    spdlog::info(
        "run.started id={} workflow={} version={} task={} generation={} epoch={} attempt={}{}",
        run_id_, run.workflow_name, run.version, ctx_.id, generation_, ctx_.epoch, run.attempt,
        checkpoints.empty()
            ? ""
            : ", resuming after " + std::to_string(checkpoints.size()) + " finished node(s)");

    engine::RunContext rc;
    rc.run_id = run_id_;
    rc.workflow = wf.name;
    rc.triggered_by = std::string(TriggeredByName(run.triggered_by));
    rc.inputs = *inputs;
    // Other runs keep no trigger context: nothing to read.
    rc.trigger = KeepsTrigger(run.triggered_by) ? LoadTrigger(store, run_id_) : Json::object();
    rc.slot_wanted = ctx_.slot_wanted;

    std::mutex store_mu;
    StoreSink sink(state_, store, store_mu, run_id_, fencing_, ctx_, std::move(waiting));
    std::stop_source exec_stop;
    std::stop_callback forward(ctx_.stop, [&exec_stop] { exec_stop.request_stop(); });
    std::atomic<bool> cancelled_in_store{false};
    std::atomic<bool> lost_ownership{false};
    // Watches the store: `ferry run cancel` (or the API) cancels the run there; a takeover by a
    // newer attempt shows as a changed epoch.
    // It also writes the events that waited longer than `event_flush`. It has nothing to do
    // before its first turn, so it is started only for a run still going then: most runs end
    // before (its turns keep their times from the run's start).
    using SteadyClock = std::chrono::steady_clock;
    const auto& o = state_.options;
    const auto begun = SteadyClock::now();
    DelayedThreads::Handle watcher =
        state_.watchers.Start(std::min(o.event_flush, o.cancel_poll), [&](std::stop_token st) {
          auto next_flush = begun + o.event_flush;
          auto next_check = begun + o.cancel_poll;
          while (!st.stop_requested()) {
            const auto wake = std::min(next_flush, next_check);
            SleepFor(st, std::max(milliseconds(1), std::chrono::duration_cast<milliseconds>(
                                                       wake - SteadyClock::now())));
            if (st.stop_requested()) return;
            if (SteadyClock::now() >= next_flush) {
              sink.FlushRunEvents();
              next_flush = SteadyClock::now() + o.event_flush;
            }
            if (SteadyClock::now() < next_check) continue;
            next_check = SteadyClock::now() + o.cancel_poll;
            std::lock_guard lock(store_mu);
            auto now = store.GetRun(run_id_);
            if (!now || !*now) continue;
            if ((**now).status == RunStatus::kCancelled) {
              cancelled_in_store = true;
              exec_stop.request_stop();
              return;
            }
            if ((**now).status != RunStatus::kRunning || (**now).epoch != fencing_) {
              lost_ownership = true;
              exec_stop.request_stop();
              return;
            }
          }
        });

    engine::RunExecutor executor(wf, state_.options.executor);
    engine::RunOutcome outcome = executor.Run(rc, checkpoints, sink, exec_stop.get_token());
    watcher.Stop();

    switch (outcome.kind) {
      case engine::RunOutcome::Kind::kSucceeded:
        return Finish(store, RunStatus::kSucceeded, DumpJson(outcome.outputs), "", "", &sink);
      case engine::RunOutcome::Kind::kFailed:
        return Finish(store, RunStatus::kFailed, "", outcome.error, outcome.failed_node, &sink);
      case engine::RunOutcome::Kind::kAborted: {
        auto err = sink.abort_error();
        if (err && err->code == ErrorCode::kConflict) {
          // A cancel that landed between two of the watcher's polls: the checkpoint was refused
          // because the run is cancelled, and the run ends as cancelled, not as a superseded
          // (dead-lettered) task.
          if (auto now = store.GetRun(run_id_);
              now && *now && (**now).status == RunStatus::kCancelled) {
            cancelled_in_store = true;
            break;
          }
          spdlog::info("run {}: checkpoint rejected, another attempt owns the run: {}", run_id_,
                       err->message);
          return tl::unexpected(NotRetryable("superseded: " + err->message));
        }
        spdlog::warn("run {}: checkpoint not saved ({}); the task will retry and resume", run_id_,
                     err ? err->message : outcome.error);
        return tl::unexpected(
            Retryable("checkpoint not saved: " + (err ? err->message : outcome.error)));
      }
      case engine::RunOutcome::Kind::kWaiting:
        // A stop that came after the executor chose to give back (a cancel, a drain, a lost
        // lease) is handled as a stop: the run is not released for a task that is ending.
        if (exec_stop.stop_requested()) break;
        return GiveBack(store, sink, outcome);
      case engine::RunOutcome::Kind::kCancelled:
        break;
    }
    // Stopped or aborted: what the nodes said so far is kept (interrupted nodes, log lines).
    sink.FlushRunEvents();

    // Stopped. Why decides whether the run ends here or resumes elsewhere.
    if (cancelled_in_store) {
      CancelChildren(sink);
      RecordRunEvent(store, run_id_, kEventFinished, Json{{"status", "cancelled"}});
      spdlog::info("run {}: cancelled", run_id_);
      auto now = store.GetRun(run_id_);
      if (now && *now) return RunResult(**now);
      return Json{{"run_id", run_id_}, {"status", "cancelled"}};
    }
    if (lost_ownership) {
      return tl::unexpected(NotRetryable("superseded: the run was taken over by a newer attempt"));
    }
    if (TaskCancelRequested()) {
      // Finish cancels the tasks its task nodes submitted, as any end of the run does.
      auto finished = Finish(store, RunStatus::kCancelled, "", "cancelled", "", &sink);
      if (!finished && finished.error().retryable) return finished;
      // The worker records the task as cancelled because its cancel was requested.
      return tl::unexpected(NotRetryable("cancelled"));
    }
    spdlog::info(
        "run {}: interrupted (worker stopping or lease lost); it resumes from its "
        "checkpoints on the next attempt",
        run_id_);
    return tl::unexpected(Retryable("interrupted; the run resumes from its checkpoints"));
  }

  // The run's end, its "finished" event, the events still waiting in `sink` and its last node's
  // step (if any) are one commit (FinishRun writes them only when the finish applies).
  HandlerResult Finish(Store& store, RunStatus status, const std::string& output,
                       const std::string& error, const std::string& failed_node,
                       StoreSink* sink = nullptr) {
    // The "finished" event says how long the run took from its first start (the run row's
    // started_ms, known since MarkRunStarted) to now.
    Json ev{{"status", RunStatusName(status)}};
    if (!error.empty()) ev["error"] = error;
    if (!failed_node.empty()) ev["failed_node"] = failed_node;
    const int64_t now_ms = WallNowMs();
    if (started_ms_ != 0 && now_ms >= started_ms_) ev["duration_ms"] = now_ms - started_ms_;
    std::vector<NewRunEvent> events;
    std::vector<RunStep> steps;
    if (sink != nullptr) {
      events = sink->TakePendingEvents();
      steps = sink->TakeLastStep();
    }
    events.push_back(NewRunEvent{std::string(kEventFinished), DumpJson(ev), now_ms});
    // Its last node's checkpoint goes in this commit: a store briefly away is waited for, as
    // for any checkpoint.
    auto done =
        WhileStoreAway(run_id_, "the run's end", state_.options.store_patience, ctx_.stop, [&] {
          return store.FinishRun(run_id_, fencing_, status, output, error, failed_node, events,
                                 steps);
        });
    if (!done) {
      if (done.error().code != ErrorCode::kConflict) {
        return tl::unexpected(StoreUnavailable(done.error().message));
      }
      // A cancel that landed as the run was ending (not the last node's checkpoint: the run is
      // over).
      if (auto cancelled = EndedByCancel(store, events, now_ms)) {
        if (sink != nullptr) CancelChildren(*sink);
        return *cancelled;
      }
      return tl::unexpected(NotRetryable("superseded: " + done.error().message));
    }
    // Its task nodes' tasks that were left going (a timed-out attempt's, one beside the node that
    // failed the run) have nobody to wait for them now. A run that ended before an execution
    // looked at them (abandoned after too many starts) finds them in its history.
    if (sink != nullptr) {
      CancelChildren(*sink);
    } else if (auto broker = state_.brokers.Acquire()) {
      CancelTasksItWaitedFor(store, **broker, run_id_);
    }
    const int64_t duration_ms = done->started_ms != 0 && done->finished_ms >= done->started_ms
                                    ? done->finished_ms - done->started_ms
                                    : 0;
    if (status == RunStatus::kFailed) {
      spdlog::info("run.failed id={} workflow={} node={} duration_ms={} error=\"{}\"", run_id_,
                   done->workflow_name, failed_node.empty() ? "-" : failed_node, duration_ms,
                   error);
      if (state_.options.on_run_failed) state_.options.on_run_failed(store, *done);
    } else {
      spdlog::info("run.{} id={} workflow={} duration_ms={}", RunStatusName(status), run_id_,
                   done->workflow_name, duration_ms);
    }
    return RunResult(*done);
  }

  // After a write refused because the run is not ours: when it was cancelled meanwhile, what the
  // nodes said (`events`, whose last one was to go with the write) is kept and the history ends
  // as the cancelled run did; the run's result then. nullopt when it was not cancelled.
  std::optional<HandlerResult> EndedByCancel(Store& store, std::vector<NewRunEvent> events,
                                             int64_t now_ms) {
    auto now = store.GetRun(run_id_);
    if (!now || !*now || (**now).status != RunStatus::kCancelled) return std::nullopt;
    events.back() =
        NewRunEvent{std::string(kEventFinished), DumpJson(Json{{"status", "cancelled"}}), now_ms};
    if (auto r = store.AppendRunEvents(run_id_, events); !r) {
      spdlog::debug("run {}: events of the cancelled end not recorded: {}", run_id_,
                    r.error().message);
    }
    return RunResult(**now);
  }

  // Left with only a long wait: the run is released in the store (its next start is no new
  // attempt) with what its nodes said and a "run.waiting" event, and its task snoozes until the
  // wait ends, giving the worker's slot back meanwhile.
  HandlerResult GiveBack(Store& store, StoreSink& sink, const engine::RunOutcome& outcome) {
    const int64_t resume_at_ms = outcome.resume_at_ms;
    std::vector<NewRunEvent> events = sink.TakePendingEvents();
    const int64_t now_ms = WallNowMs();
    Json waiting{{"until_ms", resume_at_ms}};
    // The tasks' ends wake the run's task sooner (their records name it: SubmitOrCheck). Each
    // task node's wait is stored, so that it goes on in its attempt and from when it began.
    std::vector<std::string> tasks;
    std::vector<RunStep> steps;
    for (const auto& w : outcome.waiting_tasks) {
      tasks.push_back(w.task_id);
      steps.push_back(WaitingStep(run_id_, w.node_id, w.attempt, fencing_, w.began_ms,
                                  Json{{"task", w.task_id}}));
    }
    if (!tasks.empty()) waiting["tasks"] = tasks;
    events.push_back(NewRunEvent{std::string(kEventWaiting), DumpJson(waiting), now_ms});
    auto released = store.ReleaseRun(run_id_, fencing_, events, steps);
    if (!released) {
      if (released.error().code != ErrorCode::kConflict) {
        return tl::unexpected(StoreUnavailable(released.error().message));
      }
      if (auto cancelled = EndedByCancel(store, events, now_ms)) {
        CancelChildren(sink);
        spdlog::info("run {}: cancelled", run_id_);
        return *cancelled;
      }
      return tl::unexpected(NotRetryable("superseded: " + released.error().message));
    }
    spdlog::info("run.waiting id={} until_ms={}{} (the worker's slot is free meanwhile)", run_id_,
                 resume_at_ms,
                 tasks.empty() ? "" : " tasks=" + fmt::format("{}", fmt::join(tasks, ",")));
    return tl::unexpected(Snooze(milliseconds(std::max<int64_t>(1, resume_at_ms - now_ms))));
  }

  bool TaskCancelRequested() {
    auto broker = state_.brokers.Acquire();
    if (!broker) return false;
    auto task = (*broker)->GetTask(ctx_.id);
    if (!task) {
      broker->MarkBad();
      return false;
    }
    return *task && (**task).cancel_requested;
  }

  // Tasks that `task` nodes submitted stop with the run when it is cancelled (a drain leaves
  // them: the resumed run waits for the same tasks through their unique keys).
  void CancelChildren(const StoreSink& sink) {
    auto children = sink.unended_child_tasks();
    if (children.empty()) return;
    auto broker = state_.brokers.Acquire();
    if (!broker) return;
    for (const auto& id : children) (void)(*broker)->Cancel(id);
  }

  HandlerState& state_;
  TaskContext& ctx_;
  std::string run_id_;
  int generation_ = 0;
  int64_t fencing_ = 0;
  std::string worker_;
  int64_t started_ms_ = 0;  // the run's first start, from MarkRunStarted
};

}  // namespace

Handler MakeRunHandler(StoreFactory& stores, BrokerFactory& brokers, RunHandlerOptions options) {
  auto state = std::make_shared<HandlerState>(stores, brokers, std::move(options));
  return [state](TaskContext& ctx) -> HandlerResult {
    // Runs hash (a stored graph's checksum when it is loaded): without libcrypto the task fails,
    // naming the package, and is retried later, instead of the worker stopping at the first hash.
    if (auto crypto = CryptoAvailable(); !crypto) {
      return tl::unexpected(HandlerError(crypto.error().message));
    }
    return Execution(*state, ctx).Run();
  };
}

void RegisterRunHandler(HandlerRegistry& registry, StoreFactory& stores, BrokerFactory& brokers,
                        RunHandlerOptions options) {
  registry.Register(std::string(kRunTaskKind), MakeRunHandler(stores, brokers, std::move(options)));
}

}  // namespace ferry::runs
