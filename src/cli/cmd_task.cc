// `ferry task submit|list|status|cancel|retry|events`.
#include <chrono>
#include <thread>

#include "cli/commands.h"
#include "cli/json_text.h"
#include "core/time_util.h"

namespace ferry::cli {
namespace {

using std::chrono::milliseconds;

Result<milliseconds> FlagDuration(const std::string& flag, const std::string& text) {
  auto d = ParseDuration(text);
  if (!d) return Fail(ErrorCode::kInvalidArgument, flag + ": " + d.error().message);
  return *d;
}

// The task's status and outcome once it ended, for `task submit --wait`.
std::string EndLine(const Json& task) {
  std::string line = Field(task, "status");
  if (line == "succeeded") {
    line += ": " + (task.contains("result") ? DumpJson(task["result"]) : std::string("null"));
  } else if (auto error = Field(task, "error"); error != "-") {
    line += ": " + error;
  }
  return line;
}

// Polls the task until it is terminal; kTimeout after `timeout`.
Result<Json> WaitForTask(service::Service& svc, const std::string& id, milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  milliseconds pause(20);
  while (true) {
    auto shown = svc.GetTask(id);
    if (!shown) return Fail(shown.error());
    const Json& task = (*shown)["task"];
    auto status = ParseTaskStatus(task.value("status", ""));
    if (status && IsTerminal(*status)) return task;
    if (std::chrono::steady_clock::now() >= deadline) {
      return Fail(ErrorCode::kTimeout,
                  "timed out after " + FormatDuration(timeout) + " waiting for task " + id);
    }
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, milliseconds(500));
  }
}

}  // namespace

// Every field of a task view, for `task status`.
std::vector<std::pair<std::string, std::string>> TaskFields(const Json& t) {
  const std::string status = Field(t, "status");
  const bool cancel_requested = t.value("cancel_requested", false);
  const int64_t timeout_ms = FieldInt(t, "timeout_ms");
  std::vector<std::pair<std::string, std::string>> rows = {
      {"ID", Field(t, "id")},
      {"Status", status + (cancel_requested && status != "succeeded" && status != "failed" &&
                                   status != "cancelled"
                               ? " (cancel requested)"
                               : "")},
      {"Kind", Field(t, "kind")},
      {"Queue", Field(t, "queue")},
      {"Attempts", Field(t, "attempts") + " of " + Field(t, "max_attempts")},
      {"Epoch", Field(t, "epoch")},
      {"Reclaims", Field(t, "reclaims")},
      {"Worker", Field(t, "worker")},
      {"Timeout", timeout_ms == 0 ? "worker default" : FormatDuration(milliseconds(timeout_ms))},
      {"Unique key", Field(t, "unique_key")},
      {"Created", FieldTime(t, "created_at")},
  };
  if (FieldMs(t, "eta_at") != 0) rows.emplace_back("Ready at", FieldTime(t, "eta_at"));
  rows.emplace_back("Started", FieldTime(t, "started_at"));
  rows.emplace_back("Finished", FieldTime(t, "finished_at"));
  const int64_t started = FieldMs(t, "started_at");
  const int64_t finished = FieldMs(t, "finished_at");
  if (started != 0 && finished >= started) {
    rows.emplace_back("Duration", FormatDuration(milliseconds(finished - started)));
  }
  rows.emplace_back("Payload", Field(t, "payload"));
  rows.emplace_back(
      "Result", t.contains("result") && !t["result"].is_null() ? DumpJson(t["result"], 2) : "-");
  // The view's `error` is a failure's; beside a status that is none, an earlier attempt's error
  // (`last_error`) is labelled so (a succeeded task showing "Error: ..." reads as a failure).
  const std::string error = Field(t, "error");
  const std::string last = Field(t, "last_error");
  const auto none = [](const std::string& text) { return text.empty() || text == "-"; };
  if (none(error) && !none(last)) {
    rows.emplace_back("Last error", last);
  } else {
    rows.emplace_back("Error", error);
  }
  return rows;
}

Table TasksTable(const Json& tasks, bool unicode) {
  Table table({"ID", "Queue", "Kind", "Status", "Attempts", "Worker", "Created", "Result / Error"});
  for (const auto& t : tasks) {
    const std::string status = Field(t, "status");
    const std::string error = Field(t, "error");
    std::string outcome =
        error != "-" && status != "succeeded" ? error
        : t.contains("result") && !t["result"].is_null()
            ? (t["result"].is_string() ? t["result"].get<std::string>() : DumpJson(t["result"]))
            : "-";
    table.AddRow({Field(t, "id"), Field(t, "queue"), Field(t, "kind"),
                  Cell(status, StatusColor(status)),
                  Field(t, "attempts") + "/" + Field(t, "max_attempts"), Field(t, "worker"),
                  FieldTime(t, "created_at"), Ellipsize(outcome, 48, unicode)});
  }
  return table;
}

int RunTaskSubmit(Context& ctx, const SubmitArgs& args) {
  const Output& out = ctx.out();
  // The flags become the API's request body; the service checks it (the same rules as POST
  // /api/v1/tasks). Only what the body cannot say is checked here.
  Json body{{"kind", args.kind}, {"queue", args.queue}, {"max_attempts", args.max_attempts}};
  if (args.unique_key) body["unique_key"] = *args.unique_key;
  if (args.payload) {
    auto j = ParseJson(*args.payload);
    if (!j) {
      return out.Fail(ErrorCode::kInvalidArgument,
                      "--payload is not valid JSON: " + j.error().message);
    }
    body["payload"] = *j;
  }
  if (args.timeout) {
    // The service's bounds, checked here so the message names the flag (the service's names the
    // API's field, `timeout`).
    auto d = ParseDurationInRange(SettingText{*args.timeout, "--timeout"}, milliseconds(1),
                                  kMaxTaskTimeout);
    if (!d) return out.Fail(d.error());
    body["timeout"] = *args.timeout;
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
    body["delay"] = *args.delay;
  }
  if (args.eta) {
    auto t = ParseIso8601(*args.eta);
    if (!t) return out.Fail(ErrorCode::kInvalidArgument, "--eta: " + t.error().message);
    if (*t > WallNowMs() + kMaxTaskEtaHorizon.count()) {
      return out.Fail(ErrorCode::kInvalidArgument, "--eta must be within 366 days from now");
    }
    body["eta_ms"] = std::max<int64_t>(0, *t);
  }
  milliseconds wait_timeout = std::chrono::hours(24 * 365);
  if (args.wait_timeout) {
    if (!args.wait) return out.Fail(ErrorCode::kInvalidArgument, "--wait-timeout needs --wait");
    auto d = FlagDuration("--wait-timeout", *args.wait_timeout);
    if (!d) return out.Fail(d.error());
    wait_timeout = *d;
  }
  auto svc = ctx.Service({});
  if (!svc) return out.Fail(svc.error());
  auto submitted = (*svc)->SubmitTask(body);
  if (!submitted) return out.Fail(submitted.error());
  const std::string id = Field(*submitted, "id");
  const bool existing = submitted->value("existing", false);
  if (!args.wait) {
    if (out.json()) {
      out.PrintJson(*submitted);
    } else {
      out.Print(id + (existing ? " (existing)" : "") + "\n");
    }
    return kExitOk;
  }
  if (!out.json()) out.Print(id + (existing ? " (existing)" : "") + "\n");
  auto task = WaitForTask(**svc, id, wait_timeout);
  if (!task) return out.Fail(task.error());
  if (out.json()) {
    Json answer = *submitted;
    answer["task"] = *task;
    out.PrintJson(answer);
  } else {
    out.Print(EndLine(*task) + "\n");
  }
  return Field(*task, "status") == "succeeded" ? kExitOk : kExitFailure;
}

int RunTaskList(Context& ctx, const ListArgs& args) {
  const Output& out = ctx.out();
  service::Query query{{"limit", std::to_string(args.limit)}};
  if (args.status) query["status"] = *args.status;
  if (args.queue) query["queue"] = *args.queue;
  if (args.kind) query["kind"] = *args.kind;
  if (args.cursor) query["cursor"] = *args.cursor;
  auto svc = ctx.Service({});
  if (!svc) return out.Fail(svc.error());
  auto page = (*svc)->ListTasks(query);
  if (!page) return out.Fail(page.error());
  if (out.json()) {
    out.PrintJson(*page);
    return kExitOk;
  }
  const Json& next = (*page)["next_cursor"];
  if ((*page)["tasks"].empty()) {
    out.Print(next.is_string() ? "No tasks on this page.\n" : "No tasks.\n");
  } else {
    out.PrintTable(TasksTable((*page)["tasks"], out.style().unicode));
  }
  // The same filters with --cursor list the next page.
  if (next.is_string()) out.Print("More: add --cursor " + next.get<std::string>() + "\n");
  return kExitOk;
}

int RunTaskStatus(Context& ctx, const std::string& id) {
  const Output& out = ctx.out();
  auto svc = ctx.Service({});
  if (!svc) return out.Fail(svc.error());
  auto shown = (*svc)->GetTask(id);
  if (!shown) return out.Fail(shown.error());
  if (out.json()) {
    out.PrintJson(*shown);
  } else {
    out.Print(RenderKeyValues(TaskFields((*shown)["task"])));
  }
  return kExitOk;
}

int RunTaskCancel(Context& ctx, const std::string& id) {
  const Output& out = ctx.out();
  auto svc = ctx.Service({});
  if (!svc) return out.Fail(svc.error());
  auto cancelled = (*svc)->CancelTask(id);
  if (!cancelled) return out.Fail(cancelled.error());
  if (out.json()) {
    out.PrintJson(*cancelled);
  } else if (Field(*cancelled, "outcome") == "cancel_requested") {
    out.Print(id + ": cancel requested; the worker will stop it\n");
  } else {
    out.Print(id + ": cancelled\n");
  }
  return kExitOk;
}

int RunTaskRetry(Context& ctx, const std::string& id) {
  const Output& out = ctx.out();
  auto svc = ctx.Service({});
  if (!svc) return out.Fail(svc.error());
  auto retried = (*svc)->RetryTask(id);
  if (!retried) return out.Fail(retried.error());
  if (out.json()) {
    out.PrintJson(*retried);
  } else {
    out.Print(id + ": re-queued (" + Field(*retried, "status") + ")\n");
  }
  return kExitOk;
}

int RunTaskEvents(Context& ctx, const EventsArgs& args) {
  const Output& out = ctx.out();
  milliseconds timeout = std::chrono::hours(24 * 365);
  if (args.timeout) {
    if (!args.follow) return out.Fail(ErrorCode::kInvalidArgument, "--timeout needs --follow");
    auto d = FlagDuration("--timeout", *args.timeout);
    if (!d) return out.Fail(d.error());
    timeout = *d;
  }
  auto print = [&](const Json& e) {
    if (out.json()) {
      out.PrintJsonLine(e);
      return true;
    }
    const Json& data = e.contains("data") ? e["data"] : Json();
    std::string text =
        data.is_null() || (data.is_object() && data.empty()) ? "" : "  " + DumpJson(data);
    out.Print(Field(e, "at") + "  " + Field(e, "type") + text + "\n");
    return true;
  };
  auto svc = ctx.Service({});
  if (!svc) return out.Fail(svc.error());
  if (args.follow) {
    if (auto st = (*svc)->FollowTaskEvents(args.id, timeout, print); !st) {
      return out.Fail(st.error());
    }
    return kExitOk;
  }
  service::Query query{{"limit", "1000"}};
  while (true) {
    auto page = (*svc)->TaskEvents(args.id, query);
    if (!page) return out.Fail(page.error());
    for (const auto& e : (*page)["events"]) print(e);
    if (!(*page)["next_cursor"].is_string()) break;
    query["after"] = (*page)["next_cursor"].get<std::string>();
  }
  return kExitOk;
}

}  // namespace ferry::cli
