#include "runs/recovery.h"

#include <spdlog/spdlog.h>

#include "core/sleep.h"
#include "core/time_util.h"

namespace ferry::runs {
namespace {

using std::chrono::milliseconds;
using Action = RunRecovery::Action;

RunRecovery WithError(RunRecovery r, const Error& e) {
  r.action = Action::kError;
  r.detail = e.message;
  return r;
}

RunRecovery Examine(const Run& run) {
  RunRecovery r;
  r.run_id = run.id;
  r.workflow = run.workflow_name;
  r.status = run.status;
  return r;
}

// A run's latest task, as its history names it, and that task's record (nullopt: gone).
struct LatestTask {
  RunTaskRef ref;
  std::optional<TaskRecord> record;
};

// nullopt when its history names no task.
Result<std::optional<LatestTask>> FindLatestTask(Store& store, Broker& broker,
                                                 const std::string& run_id) {
  auto ref = LatestRunTask(store, run_id);
  if (!ref) return Fail(ref.error());
  if (!*ref) return std::optional<LatestTask>();
  auto task = broker.GetTask((*ref)->task_id);
  if (!task) return Fail(task.error());
  return LatestTask{std::move(**ref), std::move(*task)};
}

// A run whose task was cancelled (`ferry task cancel`) is cancelled with it: its task's cancel
// is the run's, and a new task would undo what was asked.
RunRecovery CancelWithItsTask(Store& store, Broker& broker, RunRecovery r,
                              const std::string& task_id, const std::string& gone,
                              const RecoveryOptions& options) {
  r.detail = gone + "; the run is cancelled with it";
  if (options.dry_run) {
    r.action = Action::kCancelled;
    return r;
  }
  auto cancelled = store.CancelRun(r.run_id);
  if (!cancelled) {
    r.action = cancelled.error().code == ErrorCode::kConflict ? Action::kSkipped : Action::kError;
    r.detail = cancelled.error().message;
    return r;
  }
  (void)store.AppendRunEvent(r.run_id, std::string(kEventCancelled),
                             DumpJson(Json{{"by", "task " + task_id + " cancelled"}}));
  const Json finished{{"status", "cancelled"}};
  if (cancelled->worker.empty()) {
    EndUnheldRun(store, &broker, r.run_id, finished);
  } else {
    (void)store.AppendRunEvent(r.run_id, std::string(kEventFinished), DumpJson(finished));
  }
  r.action = Action::kCancelled;
  return r;
}

// A pending run: make sure some task will start it.
RunRecovery RecoverPending(Store& store, Broker& broker, const Run& run,
                           const RecoveryOptions& options) {
  RunRecovery r = Examine(run);
  auto latest = FindLatestTask(store, broker, run.id);
  if (!latest) return WithError(std::move(r), latest.error());
  if (*latest) {
    const std::string& id = (*latest)->ref.task_id;
    const std::optional<TaskRecord>& task = (*latest)->record;
    if (task && task->status == TaskStatus::kCancelled) {
      return CancelWithItsTask(store, broker, std::move(r), id, "task " + id + " cancelled",
                               options);
    }
    if (options.dry_run && task && !IsTerminal(task->status)) {
      r.action = Action::kAlive;
      r.task_id = id;
      r.detail = "task " + std::string(TaskStatusName(task->status));
      return r;
    }
  }
  if (options.dry_run) {
    r.action = Action::kEnqueued;
    r.detail = "would enqueue (dry run)";
    return r;
  }
  auto ensured = EnsureRunTask(store, broker, run, options.task);
  if (!ensured) {
    r.action = Action::kError;
    r.detail = ensured.error().message;
    return r;
  }
  r.task_id = ensured->task_id;
  r.generation = ensured->generation;
  if (ensured->action == EnsureTaskResult::Action::kAlive) {
    r.action = Action::kAlive;
    r.detail = "task " + std::string(TaskStatusName(ensured->task_status));
  } else {
    r.action = Action::kEnqueued;
    r.detail = ensured->previous.empty() ? "no task was enqueued before"
                                         : "previous task " + ensured->previous;
  }
  return r;
}

// A running run: alive while its task is; otherwise the next generation takes it over.
RunRecovery RecoverRunning(Store& store, Broker& broker, const Run& run,
                           const RecoveryOptions& options) {
  RunRecovery r = Examine(run);
  auto latest = FindLatestTask(store, broker, run.id);
  if (!latest) return WithError(std::move(r), latest.error());
  std::string gone = "no task recorded";
  bool task_cancelled = false;
  if (*latest) {
    const std::string& id = (*latest)->ref.task_id;
    const std::optional<TaskRecord>& task = (*latest)->record;
    if (task && !IsTerminal(task->status)) {
      r.action = Action::kAlive;
      r.task_id = id;
      r.generation = (*latest)->ref.generation;
      r.detail = "task " + std::string(TaskStatusName(task->status)) +
                 (task->worker.empty() ? "" : " on " + task->worker);
      return r;
    }
    task_cancelled = task && task->status == TaskStatus::kCancelled;
    gone = task ? "task " + id + " " + std::string(TaskStatusName(task->status)) +
                      (task->error.empty() ? "" : " (" + task->error + ")")
                : "task " + id + " missing";
  }
  // The task may have ended because the run just ended: look again before acting.
  auto now = store.GetRun(run.id);
  if (!now) return WithError(std::move(r), now.error());
  if (!*now || (**now).status != RunStatus::kRunning || (**now).epoch != run.epoch) {
    r.action = Action::kSkipped;
    r.detail = *now ? "now " + std::string(RunStatusName((**now).status)) : "deleted";
    return r;
  }
  if (*latest && task_cancelled) {
    return CancelWithItsTask(store, broker, std::move(r), (*latest)->ref.task_id, gone, options);
  }
  // The next start counts an attempt, unless the run was released to wait: going on after a
  // wait is none (MarkRunStarted), so a released run on its last attempt still has it.
  if (run.attempt >= options.max_run_attempts + (IsReleased(**now) ? 1 : 0)) {
    r.detail = "gave up after " + std::to_string(run.attempt) + " attempts; " + gone;
    if (options.dry_run) {
      r.action = Action::kFailed;
      return r;
    }
    auto done = store.FinishRun(run.id, run.epoch, RunStatus::kFailed, "",
                                "run abandoned: " + r.detail, "");
    if (!done) {
      r.action = done.error().code == ErrorCode::kConflict ? Action::kSkipped : Action::kError;
      r.detail = done.error().message;
      return r;
    }
    EndUnheldRun(store, &broker, run.id, Json{{"status", "failed"}, {"error", r.detail}});
    if (options.on_run_failed) options.on_run_failed(store, *done);
    r.action = Action::kFailed;
    return r;
  }
  if (options.dry_run) {
    r.action = Action::kEnqueued;
    r.detail = gone + "; would enqueue the next generation (dry run)";
    return r;
  }
  EnsureTaskOptions task = options.task;
  // A run released to wait for a delay goes on when its wait ends, not at once: it would only
  // hold a slot, or be released again.
  if (IsReleased(**now)) {
    if (auto waiting = LastRunWaiting(store, run.id)) task.eta_ms = waiting->until_ms;
  }
  auto ensured = EnsureRunTask(store, broker, **now, task);
  if (!ensured) return WithError(std::move(r), ensured.error());
  r.task_id = ensured->task_id;
  r.generation = ensured->generation;
  r.action =
      ensured->action == EnsureTaskResult::Action::kEnqueued ? Action::kEnqueued : Action::kAlive;
  r.detail = gone + "; resumes from its checkpoints" +
             (task.eta_ms && *task.eta_ms > WallNowMs()
                  ? " when its wait ends (" + FormatIsoMs(*task.eta_ms) + ")"
                  : "");
  return r;
}

// A cancelled run with no end in its history: once its task has ended (or is gone), no handler
// will write the end, and it is written here. A task still going may be the handler about to
// write it (the cancel just landed): left for a later pass.
RunRecovery EndCancelled(Store& store, Broker& broker, const Run& run,
                         const RecoveryOptions& options) {
  RunRecovery r = Examine(run);
  auto latest = FindLatestTask(store, broker, run.id);
  if (!latest) return WithError(std::move(r), latest.error());
  if (*latest) {
    r.task_id = (*latest)->ref.task_id;
    const std::optional<TaskRecord>& task = (*latest)->record;
    if (task && !IsTerminal(task->status)) {
      r.action = Action::kAlive;
      r.detail = "its end is not written yet; task " + std::string(TaskStatusName(task->status));
      return r;
    }
  }
  r.action = Action::kEnded;
  r.detail = "cancelled while no handler could end it (its worker gone)";
  if (options.dry_run) return r;
  EndUnheldRun(store, &broker, run.id, Json{{"status", "cancelled"}});
  r.detail += "; its end written";
  return r;
}

}  // namespace

std::string_view RecoveryActionName(RunRecovery::Action a) {
  switch (a) {
    case Action::kAlive:
      return "alive";
    case Action::kEnqueued:
      return "enqueued";
    case Action::kFailed:
      return "failed";
    case Action::kCancelled:
      return "cancelled";
    case Action::kEnded:
      return "ended";
    case Action::kSkipped:
      return "skipped";
    case Action::kError:
      return "error";
  }
  return "?";
}

int RecoveryReport::Count(RunRecovery::Action a) const {
  int n = 0;
  for (const auto& r : runs) n += r.action == a ? 1 : 0;
  return n;
}

Result<RecoveryReport> RecoverRuns(Store& store, Broker& broker, const RecoveryOptions& options) {
  RecoveryReport report;
  if (options.pending_age >= milliseconds(0)) {
    auto pending = store.ListPendingRunsOlderThan(options.pending_age, options.limit);
    if (!pending) return Fail(pending.error());
    for (const auto& run : *pending) {
      report.runs.push_back(RecoverPending(store, broker, run, options));
    }
  }
  if (options.check_running) {
    auto running = store.ListRunningRuns(options.running_age, options.limit, options.running_after);
    if (!running) return Fail(running.error());
    if (static_cast<int>(running->size()) == options.limit)
      report.running_next = running->back().id;
    for (const auto& run : *running) {
      report.runs.push_back(RecoverRunning(store, broker, run, options));
    }
  }
  if (options.cancelled_within >= milliseconds(0)) {
    auto cancelled = store.ListCancelledRunsWithout(std::string(kEventFinished),
                                                    options.cancelled_within, options.limit);
    if (!cancelled) return Fail(cancelled.error());
    for (const auto& run : *cancelled) {
      report.runs.push_back(EndCancelled(store, broker, run, options));
    }
  }
  return report;
}

RunSweeper::RunSweeper(StoreFactory& stores, BrokerFactory& brokers, RunSweeperOptions options)
    : stores_(stores), brokers_(brokers), options_(std::move(options)) {}

RunSweeper::~RunSweeper() { Stop(); }

void RunSweeper::Start() {
  if (thread_.joinable()) return;
  thread_ = std::jthread([this](std::stop_token st) { Loop(st); });
}

void RunSweeper::Stop() {
  if (!thread_.joinable()) return;
  thread_.request_stop();
  thread_.join();
}

void RunSweeper::Loop(std::stop_token st) {
  std::string running_after;  // where the next pass's running runs begin
  std::unique_ptr<Store> store;
  std::unique_ptr<Broker> broker;
  std::string last_error;
  while (!st.stop_requested()) {
    if (!SleepFor(st, options_.interval)) break;
    std::string error;
    if (!store) {
      auto s = stores_.Open();
      if (s)
        store = std::move(*s);
      else
        error = "store: " + s.error().message;
    }
    if (!broker && error.empty()) {
      auto b = brokers_.Open();
      if (b)
        broker = std::move(*b);
      else
        error = "redis: " + b.error().message;
    }
    if (error.empty()) {
      RecoveryOptions pass = options_.recovery;
      pass.running_after = running_after;
      auto report = RecoverRuns(*store, *broker, pass);
      if (!report) {
        error = report.error().message;
        store.reset();
      } else {
        running_after = report->running_next;
        bool acted = false;
        for (const auto& r : report->runs) {
          if (r.action == Action::kAlive) continue;
          acted = true;
          auto log = r.action == Action::kError ? spdlog::level::warn : spdlog::level::info;
          spdlog::log(log, "sweeper: run {} ({}, {}): {} ({}){}", r.run_id, r.workflow,
                      RunStatusName(r.status), RecoveryActionName(r.action), r.detail,
                      r.task_id.empty() ? "" : " [task " + r.task_id + "]");
          // A Redis error poisons the connection state; reopen next pass.
          if (r.action == Action::kError) broker.reset();
        }
        if (acted && options_.on_report) options_.on_report(*report);
      }
    }
    if (!error.empty() && error != last_error) {
      spdlog::warn("sweeper: {} (retrying every {} ms)", error, options_.interval.count());
    }
    last_error = error;
  }
}

}  // namespace ferry::runs
