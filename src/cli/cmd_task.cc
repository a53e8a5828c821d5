// `ferry task submit|list|status|cancel|retry|events`.
#include <chrono>
#include <thread>

#include "cli/commands.h"
#include "core/time_util.h"
#include "runs/runs.h"
#include "views/views.h"
#include "worker/worker.h"

namespace ferry::cli {
namespace {

using std::chrono::milliseconds;

std::string ValidStatuses() {
  return "pending, scheduled, running, retrying, succeeded, failed (or dead), cancelled";
}

Result<milliseconds> FlagDuration(const std::string& flag, const std::string& text) {
  auto d = ParseDuration(text);
  if (!d) return Fail(ErrorCode::kInvalidArgument, flag + ": " + d.error().message);
  return *d;
}

// "task X already succeeded" -> "it already succeeded", after "cannot cancel task X: ".
std::string AboutIt(const std::string& message, const std::string& id) {
  std::string prefix = "task " + id + " ";
  if (message.rfind(prefix, 0) == 0) return "it " + message.substr(prefix.size());
  return message;
}

Error NoTask(const std::string& id) { return Error{ErrorCode::kNotFound, "no task " + id}; }

std::vector<std::pair<std::string, std::string>> TaskFields(const TaskRecord& t) {
  auto or_dash = [](const std::string& s) { return s.empty() ? std::string("-") : s; };
  std::vector<std::pair<std::string, std::string>> rows = {
      {"ID", t.id},
      {"Status", std::string(TaskStatusName(t.status)) +
                     (t.cancel_requested && !IsTerminal(t.status) ? " (cancel requested)" : "")},
      {"Kind", t.kind},
      {"Queue", t.queue},
      {"Attempts", std::to_string(t.attempts) + " of " + std::to_string(t.max_attempts)},
      {"Epoch", std::to_string(t.epoch)},
      {"Reclaims", std::to_string(t.reclaims)},
      {"Worker", or_dash(t.worker)},
      {"Timeout",
       t.timeout_ms == 0 ? "worker default" : FormatDuration(milliseconds(t.timeout_ms))},
      {"Unique key", or_dash(t.unique_key)},
      {"Created", HumanTime(t.created_ms)},
  };
  if (t.eta_ms != 0) rows.emplace_back("Ready at", HumanTime(t.eta_ms));
  rows.emplace_back("Started", HumanTime(t.started_ms));
  rows.emplace_back("Finished", HumanTime(t.finished_ms));
  if (t.started_ms != 0 && t.finished_ms >= t.started_ms) {
    rows.emplace_back("Duration", FormatDuration(milliseconds(t.finished_ms - t.started_ms)));
  }
  rows.emplace_back("Payload", or_dash(t.payload));
  rows.emplace_back("Result", t.result.empty() ? "-" : DumpJson(views::Embedded(t.result), 2));
  rows.emplace_back("Error", or_dash(t.error));
  return rows;
}

}  // namespace

Table TasksTable(const std::vector<TaskRecord>& tasks, bool unicode) {
  Table table({"ID", "Queue", "Kind", "Status", "Attempts", "Worker", "Created", "Result / Error"});
  for (const auto& t : tasks) {
    std::string status(TaskStatusName(t.status));
    std::string outcome = !t.error.empty() && t.status != TaskStatus::kSucceeded ? t.error
                          : !t.result.empty()                                    ? t.result
                                                                                 : "-";
    table.AddRow({t.id, t.queue, t.kind, Cell(status, StatusColor(status)),
                  std::to_string(t.attempts) + "/" + std::to_string(t.max_attempts),
                  t.worker.empty() ? "-" : t.worker, HumanTime(t.created_ms),
                  Ellipsize(outcome, 48, unicode)});
  }
  return table;
}

int RunTaskSubmit(Context& ctx, const SubmitArgs& args) {
  const Output& out = ctx.out();
  SubmitRequest req;
  req.kind = args.kind;
  req.queue = args.queue;
  req.max_attempts = args.max_attempts;
  req.unique_key = args.unique_key;
  if (req.kind == runs::kRunTaskKind) {
    return out.Fail(ErrorCode::kInvalidArgument,
                    "ferry.run tasks are made by `ferry workflow run` (or POST /api/v1/runs)");
  }
  if (args.payload) {
    auto j = ParseJson(*args.payload);
    if (!j) {
      return out.Fail(ErrorCode::kInvalidArgument,
                      "--payload is not valid JSON: " + j.error().message);
    }
    req.payload = *j;
  }
  if (args.timeout) {
    auto d = FlagDuration("--timeout", *args.timeout);
    if (!d) return out.Fail(d.error());
    req.timeout = *d;
  }
  if (args.delay && args.eta) {
    return out.Fail(ErrorCode::kInvalidArgument, "give --delay or --eta, not both");
  }
  if (args.delay) {
    auto d = FlagDuration("--delay", *args.delay);
    if (!d) return out.Fail(d.error());
    if (*d > kMaxTaskEtaHorizon) {
      return out.Fail(ErrorCode::kInvalidArgument, "--delay must be at most 366 days");
    }
    if (d->count() > 0) req.eta_ms = WallNowMs() + d->count();
  }
  if (args.eta) {
    auto t = ParseIso8601(*args.eta);
    if (!t) return out.Fail(ErrorCode::kInvalidArgument, "--eta: " + t.error().message);
    if (*t > WallNowMs() + kMaxTaskEtaHorizon.count()) {
      return out.Fail(ErrorCode::kInvalidArgument, "--eta must be within 366 days from now");
    }
    req.eta_ms = *t;
  }
  milliseconds wait_timeout = std::chrono::hours(24 * 365);
  if (args.wait_timeout) {
    if (!args.wait) return out.Fail(ErrorCode::kInvalidArgument, "--wait-timeout needs --wait");
    auto d = FlagDuration("--wait-timeout", *args.wait_timeout);
    if (!d) return out.Fail(d.error());
    wait_timeout = *d;
  }
  if (auto st = ValidateSubmit(req, ctx.config().broker); !st) return out.Fail(st.error());

  auto broker = ctx.Connect();
  if (!broker) return out.Fail(broker.error());
  TaskClient client(std::move(*broker));
  auto submitted = client.Submit(req);
  if (!submitted) return out.Fail(submitted.error());
  const std::string& id = submitted->id;
  if (!args.wait) {
    if (out.json()) {
      out.PrintJson(Json{{"id", id}, {"existing", submitted->existing}});
    } else {
      out.Print(id + (submitted->existing ? " (existing)" : "") + "\n");
    }
    return kExitOk;
  }
  if (!out.json()) out.Print(id + (submitted->existing ? " (existing)" : "") + "\n");
  auto record = client.Wait(id, wait_timeout);
  if (!record) {
    if (record.error().code == ErrorCode::kTimeout) {
      return out.Fail(ErrorCode::kTimeout, "timed out after " + FormatDuration(wait_timeout) +
                                               " waiting for task " + id);
    }
    return out.Fail(record.error());
  }
  std::string status(TaskStatusName(record->status));
  if (out.json()) {
    out.PrintJson(
        Json{{"id", id}, {"existing", submitted->existing}, {"task", views::Task(*record)}});
  } else {
    std::string line = status;
    if (record->status == TaskStatus::kSucceeded) {
      line += ": " + (record->result.empty() ? std::string("null") : record->result);
    } else if (!record->error.empty()) {
      line += ": " + record->error;
    }
    out.Print(line + "\n");
  }
  return record->status == TaskStatus::kSucceeded ? kExitOk : kExitFailure;
}

int RunTaskList(Context& ctx, const ListArgs& args) {
  const Output& out = ctx.out();
  TaskListFilter filter;
  if (args.status) {
    auto s = ParseTaskStatus(*args.status);
    if (!s) {
      return out.Fail(ErrorCode::kInvalidArgument,
                      "unknown status '" + *args.status + "'; valid: " + ValidStatuses());
    }
    filter.status = s;
  }
  if (args.queue) {
    if (auto st = ValidateQueueName(*args.queue); !st) return out.Fail(st.error());
    filter.queue = args.queue;
  }
  if (args.limit < 1) return out.Fail(ErrorCode::kInvalidArgument, "--limit must be at least 1");
  filter.limit = args.limit;
  auto broker = ctx.Connect();
  if (!broker) return out.Fail(broker.error());
  auto tasks = (*broker)->ListTasks(filter);
  if (!tasks) return out.Fail(tasks.error());
  if (out.json()) {
    Json arr = Json::array();
    for (const auto& t : *tasks) arr.push_back(views::Task(t));
    out.PrintJson(views::Page("tasks", std::move(arr), ""));
    return kExitOk;
  }
  if (tasks->empty()) {
    out.Print("No tasks.\n");
    return kExitOk;
  }
  out.PrintTable(TasksTable(*tasks, out.style().unicode));
  return kExitOk;
}

int RunTaskStatus(Context& ctx, const std::string& id) {
  const Output& out = ctx.out();
  auto broker = ctx.Connect();
  if (!broker) return out.Fail(broker.error());
  auto task = (*broker)->GetTask(id);
  if (!task) return out.Fail(task.error());
  if (!*task) return out.Fail(NoTask(id));
  if (out.json()) {
    out.PrintJson(views::Task(**task));
  } else {
    out.Print(RenderKeyValues(TaskFields(**task)));
  }
  return kExitOk;
}

int RunTaskCancel(Context& ctx, const std::string& id) {
  const Output& out = ctx.out();
  auto broker = ctx.Connect();
  if (!broker) return out.Fail(broker.error());
  auto status = (*broker)->Cancel(id);
  if (!status) {
    if (status.error().code == ErrorCode::kNotFound) return out.Fail(NoTask(id));
    if (status.error().code == ErrorCode::kConflict) {
      return out.Fail(ErrorCode::kConflict,
                      "cannot cancel task " + id + ": " + AboutIt(status.error().message, id));
    }
    return out.Fail(status.error());
  }
  // The broker cancels waiting tasks at once; a running one is only flagged, and its worker
  // stops the handler (within about a second) and records the cancellation.
  bool requested = *status == TaskStatus::kRunning;
  std::string outcome = requested ? "cancel_requested" : "cancelled";
  if (out.json()) {
    out.PrintJson(Json{{"id", id}, {"outcome", outcome}, {"status", TaskStatusName(*status)}});
  } else if (requested) {
    out.Print(id + ": cancel requested; the worker will stop it\n");
  } else {
    out.Print(id + ": cancelled\n");
  }
  return kExitOk;
}

int RunTaskRetry(Context& ctx, const std::string& id) {
  const Output& out = ctx.out();
  auto broker = ctx.Connect();
  if (!broker) return out.Fail(broker.error());
  if (auto st = (*broker)->Retry(id); !st) {
    if (st.error().code == ErrorCode::kNotFound) return out.Fail(NoTask(id));
    if (st.error().code == ErrorCode::kConflict) {
      return out.Fail(ErrorCode::kConflict,
                      "cannot retry task " + id + ": " + AboutIt(st.error().message, id));
    }
    return out.Fail(st.error());
  }
  auto task = (*broker)->GetTask(id);
  std::string status = task && *task ? std::string(TaskStatusName((*task)->status)) : "pending";
  if (out.json()) {
    out.PrintJson(Json{{"id", id}, {"outcome", "requeued"}, {"status", status}});
  } else {
    out.Print(id + ": re-queued (" + status + ")\n");
  }
  return kExitOk;
}

int RunTaskEvents(Context& ctx, const EventsArgs& args) {
  const Output& out = ctx.out();
  std::optional<std::chrono::steady_clock::time_point> deadline;
  if (args.timeout) {
    auto d = FlagDuration("--timeout", *args.timeout);
    if (!d) return out.Fail(d.error());
    deadline = std::chrono::steady_clock::now() + *d;
  }
  auto broker = ctx.Connect();
  if (!broker) return out.Fail(broker.error());
  Broker& b = **broker;
  auto task = b.GetTask(args.id);
  if (!task) return out.Fail(task.error());
  if (!*task) return out.Fail(NoTask(args.id));

  auto print = [&](const TaskEvent& e) {
    if (out.json()) {
      out.PrintJsonLine(views::TaskEvent(e));
      return;
    }
    std::string data =
        e.data.is_null() || (e.data.is_object() && e.data.empty()) ? "" : "  " + DumpJson(e.data);
    out.Print(FormatIsoMs(e.ts_ms) + "  " + e.type + data + "\n");
  };
  std::string after = "0";
  bool ended = IsTerminal((*task)->status);
  while (true) {
    milliseconds block{0};
    if (args.follow && !ended) {
      block = milliseconds(500);
      if (deadline) {
        auto left =
            std::chrono::duration_cast<milliseconds>(*deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
          return out.Fail(ErrorCode::kTimeout, "timed out following task " + args.id);
        }
        block = std::min(block, left);
      }
    }
    auto events = b.ReadEvents(args.id, after, 100, block);
    if (!events) return out.Fail(events.error());
    for (const auto& e : *events) {
      print(e);
      after = e.id;
    }
    if (!events->empty() && events->size() == 100) continue;  // more to read at once
    if (!args.follow || ended) break;
    // The record, not the event stream, says when the task is over (a retry is not an end).
    auto now = b.GetTask(args.id);
    if (!now) return out.Fail(now.error());
    if (!*now || IsTerminal((*now)->status)) ended = true;  // one more read drains the tail
  }
  return kExitOk;
}

}  // namespace ferry::cli
