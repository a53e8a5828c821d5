// LocalService: runs (store first, then the broker for their tasks).
#include <charconv>

#include "core/json_fields.h"
#include "engine/definition.h"
#include "runs/definitions.h"
#include "runs/runs.h"
#include "service/arguments.h"
#include "service/local_service.h"
#include "service/query.h"
#include "views/views.h"

namespace ferry::service {
namespace {

Error NoRun(const std::string& id) { return Error{ErrorCode::kNotFound, "no run " + id}; }

Result<Run> FindRun(Store& store, const std::string& id) {
  if (auto st = CheckRunId(id); !st) return Fail(st.error());
  auto run = store.GetRun(id);
  if (!run) return Fail(run.error());
  if (!*run) return Fail(NoRun(id));
  return **run;
}

}  // namespace

Result<Json> LocalService::StartRun(const Json& body, const Caller& caller) {
  runs::StartRunRequest start;
  FieldReader f(body);
  start.workflow = f.String("workflow", kRequired).value_or("");
  start.inputs = f.Object("inputs").value_or(Json::object());
  start.queue = f.String("queue").value_or(options_.run_queue);
  if (auto st = f.Finish(); !st) return Fail(st.error());
  // Not "no workflow ": no workflow can have an empty name, so asking for one is a mistake in the
  // request (`ferry workflow run ''` with an unset shell variable), not a missing record.
  if (start.workflow.empty()) {
    return Fail(ErrorCode::kInvalidArgument,
                "workflow must not be empty: name the workflow to run");
  }
  if (auto st = ValidateQueueName(start.queue); !st) return Fail(st.error());
  start.triggered_by = ParseTriggeredBy(caller.actor).value_or(TriggeredBy::kApi);
  auto store = stores_.Acquire();
  if (!store) return Fail(store.error());
  auto broker = brokers_.Acquire();
  if (!broker) return Fail(broker.error());
  auto started = runs::StartRun(**store, **broker, start);
  if (!started) {
    if (MayBreakConnection(started.error())) store->MarkBad();
    return Fail(started.error());
  }
  if (!started->enqueued) broker->MarkBad();
  return Json{{"run", views::Run(started->run)},
              {"enqueued", started->enqueued},
              {"task_id", views::Text(started->task_id)},
              {"enqueue_error", views::Text(started->enqueue_error)}};
}

Result<Json> LocalService::ListRuns(const Query& query) {
  QueryReader q(query);
  RunFilter filter;
  filter.limit = q.Limit(50, kMaxPageLimit);
  filter.cursor = q.Text("cursor");
  if (auto s = q.Text("status"); !s.empty()) {
    filter.status = ParseRunStatus(s);
    if (!filter.status) {
      q.Problem("unknown status '" + s +
                "'; valid: pending, running, succeeded, failed, cancelled");
    }
  }
  if (auto t = q.Text("triggered_by"); !t.empty()) {
    filter.triggered_by = ParseTriggeredBy(t);
    if (!filter.triggered_by) q.Problem("unknown triggered_by '" + t + "'");
  }
  const std::string workflow = q.Text("workflow");
  if (auto st = q.Finish(); !st) return Fail(st.error());
  return With(stores_, [&](Store& store) -> Result<Json> {
    if (!workflow.empty()) {
      auto wf = FindWorkflow(store, workflow);
      if (!wf) return Fail(wf.error());
      filter.workflow_id = wf->id;
    }
    auto page = store.ListRuns(filter);
    if (!page) return Fail(page.error());
    Json out = Json::array();
    for (const auto& r : page->runs) out.push_back(views::Run(r));
    return views::Page("runs", std::move(out), page->next_cursor);
  });
}

Result<Json> LocalService::CountRuns() {
  return With(stores_, [&](Store& store) -> Result<Json> {
    auto counts = run_counter_.Count(store);
    if (!counts) return Fail(counts.error());
    Json by_status = Json::object();
    int64_t total = 0;
    for (const auto& [status, n] : *counts) {
      by_status[std::string(RunStatusName(status))] = n;
      total += n;
    }
    return Json{{"counts", std::move(by_status)}, {"total", total}};
  });
}

Result<Json> LocalService::GetRun(const std::string& id) {
  return With(stores_, [&](Store& store) -> Result<Json> {
    auto run = FindRun(store, id);
    if (!run) return Fail(run.error());
    auto steps = store.ListSteps(id);
    if (!steps) return Fail(steps.error());
    Json out = views::Run(*run);
    Json list = Json::array();
    for (const auto& s : *steps) list.push_back(views::Step(s, run->status));
    // A run that ended while nodes ran (cancelled, or failed by one beside them): those nodes,
    // stopped mid-attempt, have no row, only their events; they are shown as `run watch` tells
    // them.
    if (run->status == RunStatus::kCancelled || run->status == RunStatus::kFailed) {
      for (const auto& s : runs::InterruptedSteps(store, id, *steps)) {
        list.push_back(views::Step(s, run->status));
      }
    }
    out["steps"] = std::move(list);
    // A run waiting out of any worker's slot: until when, and for which tasks.
    out["waiting"] = nullptr;
    if (IsReleased(*run)) {
      if (auto w = runs::LastRunWaiting(store, id)) {
        out["waiting"] = Json{{"until", views::Time(w->until_ms)}, {"tasks", w->tasks}};
      }
    }
    return Json{{"run", std::move(out)}};
  });
}

Result<Json> LocalService::CancelRun(const std::string& id, const Caller& caller) {
  auto store = stores_.Acquire();
  if (!store) return Fail(store.error());
  auto fail = [&](const Error& e) -> Result<Json> {
    if (MayBreakConnection(e)) store->MarkBad();
    return Fail(e);
  };
  auto before = FindRun(**store, id);
  if (!before) return fail(before.error());
  auto run = (*store)->CancelRun(id);
  if (!run) {
    if (run.error().code == ErrorCode::kConflict) {
      return Fail(ErrorCode::kConflict, "cannot cancel run " + id + ": it already ended (" +
                                            std::string(RunStatusName(before->status)) + ")");
    }
    return fail(run.error());
  }
  (void)(*store)->AppendRunEvent(id, std::string(runs::kEventCancelled),
                                 DumpJson(Json{{"by", caller.actor}}));
  // A run no handler holds (pending, or released to wait) has none to end its history: its end
  // is written here (a held one's handler writes it as it stops). Whether one held it is the
  // cancelled row's: the worker as the cancel found it (a release or a start may have come since
  // `before`). Written before Redis is asked anything: a follower stops reading a run that
  // ended once its end has not come for a while, and Redis may be slow to answer.
  const bool unheld = run->worker.empty();
  if (unheld) runs::EndUnheldRun(**store, nullptr, id, Json{{"status", "cancelled"}});
  // The store decides; telling the task only stops the work sooner (the handler also polls the
  // run's status), so a failure here does not fail the cancel.
  Json out{{"run", views::Run(*run)}, {"task_id", nullptr}, {"task_cancel", nullptr}};
  bool task_was_waiting = false;  // cancelled while no worker ran it
  if (auto task = runs::LatestRunTask(**store, id); task && *task) {
    out["task_id"] = (*task)->task_id;
    if (auto broker = brokers_.Acquire(); !broker) {
      out["task_cancel"] = broker.error().message;
    } else if (auto c = (*broker)->Cancel((*task)->task_id); !c) {
      if (MayBreakConnection(c.error())) broker->MarkBad();
      out["task_cancel"] = c.error().message;
    } else {
      out["task_cancel"] = *c == TaskStatus::kRunning ? "stopping" : TaskStatusName(*c);
      task_was_waiting = *c == TaskStatus::kCancelled;
    }
  }
  if (unheld) {
    if (auto broker = brokers_.Acquire()) runs::CancelTasksItWaitedFor(**store, **broker, id);
  } else if (task_was_waiting) {
    // The row names a worker, yet no handler holds the run: its handler stopped without
    // releasing it (a drain, a lost lease) and its task waited in the queue, cancelled now, so
    // none will take it again. Its end is written here, as for an unheld run.
    auto broker = brokers_.Acquire();
    runs::EndUnheldRun(**store, broker ? &**broker : nullptr, id, Json{{"status", "cancelled"}});
  }
  return out;
}

namespace {

// Whether `run`'s inputs are ones its workflow's current version takes (runs::StartRun's
// check, with the handler's leniency for inputs a version no longer declares).
// kInvalidArgument naming the version and the input when not.
Status InputsFitTheCurrentVersion(Store& store, const Run& run) {
  auto def = runs::LoadDefinition(store, run.workflow_id, 0);
  if (!def) return Fail(def.error());
  auto given = ParseJson(run.inputs);
  if (!given) return Fail(ErrorCode::kInternal, "run " + run.id + "'s stored inputs are not JSON");
  if (auto inputs = engine::ResolveInputs(*def->workflow, *given, /*allow_unknown=*/true);
      !inputs) {
    return Fail(ErrorCode::kInvalidArgument,
                "cannot retry run " + run.id + " on " + run.workflow_name + "'s current version " +
                    std::to_string(def->version) + ": " + inputs.error().message +
                    " (its inputs are the run's own; retry without latest_version to run version " +
                    std::to_string(run.version) + ")");
  }
  return {};
}

}  // namespace

Result<Json> LocalService::RetryRun(const std::string& id, const Json& body) {
  RetryRunOptions retry;
  FieldReader f(body);
  retry.latest_version = f.Bool("latest_version").value_or(false);
  if (auto st = f.Finish(); !st) return Fail(st.error());
  auto store = stores_.Acquire();
  if (!store) return Fail(store.error());
  auto fail = [&](const Error& e) -> Result<Json> {
    if (MayBreakConnection(e)) store->MarkBad();
    return Fail(e);
  };
  auto old = FindRun(**store, id);
  if (!old) return fail(old.error());
  if (retry.latest_version) {
    // On the current version the run's inputs are checked as its start would check them: a
    // retry the new inputs refuse would fail at once and spend the run's one retry.
    if (auto st = InputsFitTheCurrentVersion(**store, *old); !st) return fail(st.error());
  }
  auto run = (*store)->RetryRun(id, retry);
  if (!run) {
    if (run.error().code == ErrorCode::kConflict) {
      return Fail(ErrorCode::kConflict, "cannot retry run " + id + ": " + run.error().message);
    }
    return fail(run.error());
  }
  // The retry goes where the run it repeats went (workers there know the workflow), else to
  // the configured run queue.
  runs::EnsureTaskOptions task;
  task.queue = options_.run_queue;
  task.reason = "retry";
  if (auto ref = runs::LatestRunTask(**store, id); ref && *ref) task.queue = (*ref)->queue;
  Json out{{"run", views::Run(*run)},
           {"enqueued", false},
           {"task_id", nullptr},
           {"enqueue_error", nullptr}};
  auto broker = brokers_.Acquire();
  if (!broker) {
    out["enqueue_error"] = broker.error().message;
    return out;
  }
  if (auto ensured = runs::EnsureRunTask(**store, **broker, *run, task)) {
    out["enqueued"] = true;
    out["task_id"] = ensured->task_id;
  } else {
    if (MayBreakConnection(ensured.error())) broker->MarkBad();
    out["enqueue_error"] = ensured.error().message;
  }
  return out;
}

Result<Json> LocalService::RunEvents(const std::string& id, const Query& query) {
  if (auto st = CheckRunId(id); !st) return Fail(st.error());
  QueryReader q(query);
  const int limit = q.Limit(500, 1000);
  int64_t after = 0;
  if (auto text = q.Text("after"); !text.empty()) {
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), after);
    if (ec != std::errc() || end != text.data() + text.size() || after < 0) {
      q.Problem("after must be an event seq (an integer >= 0), got '" + text + "'");
    }
  }
  if (auto st = q.Finish(); !st) return Fail(st.error());
  return With(stores_, [&](Store& store) -> Result<Json> {
    if (auto run = FindRun(store, id); !run) return Fail(run.error());
    auto page = store.ListRunEventPage(
        id, {.after_seq = after, .limit = limit, .max_bytes = options_.run_event_page_bytes});
    if (!page) return Fail(page.error());
    Json out = Json::array();
    for (const auto& e : page->events) out.push_back(views::RunEvent(e));
    // Like every listing, a page as long as its limit says where to go on even when nothing
    // follows; so does one cut short by its bytes.
    const bool full = page->more || static_cast<int>(page->events.size()) == limit;
    return views::Page("events", std::move(out),
                       full ? std::to_string(page->events.back().seq) : std::string());
  });
}

}  // namespace ferry::service
