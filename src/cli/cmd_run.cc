// `ferry run list|show|watch|cancel|retry|recover`, the helpers shared with `workflow` and `dev`
// (runs_common.h), and the `ferry.run` handler wiring for `ferry worker start`.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>
#include <thread>

#include "cli/commands.h"
#include "cli/dev_endpoints.h"
#include "cli/json_text.h"
#include "cli/runs_common.h"
#include "core/files.h"
#include "core/time_util.h"
#include "engine/secrets.h"
#include "remediation/capture.h"
#include "runs/handler.h"
#include "runs/recovery.h"
#include "runs/runs.h"
#include "views/views.h"

namespace ferry::cli {
namespace {

using std::chrono::milliseconds;
using SteadyClock = std::chrono::steady_clock;

// What a run out of its slot waits for, from a run.waiting event's data ({until_ms, tasks?}) or
// the API's `waiting` ({until, tasks}): "until <ISO>", or "for task <id> or until <ISO>" (it
// goes on at whichever comes first).
std::string WaitingText(const Json& w) {
  std::string until = w.contains("until_ms") ? FormatIsoMs(w.value("until_ms", int64_t{0}))
                                             : w.value("until", std::string("?"));
  std::string tasks;
  if (auto it = w.find("tasks"); it != w.end() && it->is_array()) {
    for (const auto& t : *it) {
      if (!t.is_string()) continue;
      tasks += (tasks.empty() ? "" : ", ") + t.get<std::string>();
    }
  }
  if (tasks.empty()) return "until " + until;
  return "for task " + tasks + " or until " + until;
}

// Without a store setting, commands use the SQLite file of the data directory (FERRY_DATA_DIR,
// else ./.ferry), where `ferry dev` keeps its own: so a command pointed at a stopped dev stack's
// directory reads that stack's store, not a new empty one in the current folder.
std::string DefaultStoreFile(const Context& ctx) {
  return (std::filesystem::path(DataDirectory(std::nullopt, ctx.env())) / "ferry.db").string();
}

std::string OrDash(const std::string& s) { return s.empty() ? "-" : s; }

std::string Clock(int64_t ms) {
  // "10:30:15.123" from the ISO form.
  std::string iso = FormatIsoMs(ms);
  auto t = iso.find('T');
  return t == std::string::npos ? iso : iso.substr(t + 1, 12);
}

}  // namespace

// --------------------------------------------------------------------------------------------
// Shared helpers (runs_common.h)

Result<std::optional<SettingText>> PickStore(const Context& ctx, const StoreFlags& sf) {
  auto store = PickSetting(sf.store, "store", ctx.env());
  if (store && store->text.empty()) {
    return BadSetting(*store,
                      "must not be empty (leave it out to use the data directory's ferry.db)");
  }
  return store;
}

Result<std::string> ResolveStoreLocation(const Context& ctx, const StoreFlags& sf) {
  auto store = PickStore(ctx, sf);
  if (!store) return Fail(store.error());
  if (*store) return (*store)->text;
  const std::string dir = DataDirectory(std::nullopt, ctx.env());
  if (auto made = MakeDirectories(dir); !made) {
    return Fail(made.error().code, "cannot create " + dir + ": " + made.error().message);
  }
  return DefaultStoreFile(ctx);
}

namespace {

// The store, or why it could not be opened, naming where it was looked for. A location that is
// no store (a file that is not a SQLite database) is a bad value of the setting that named it
// (`given`, absent for the default location), named as every bad setting is.
Result<std::unique_ptr<Store>> Opened(Result<std::unique_ptr<Store>> store,
                                      const std::string& location,
                                      const std::optional<SettingText>& given) {
  if (store) return store;
  const std::string why =
      "cannot open the store at " + MaskStoreUrl(location) + ": " + store.error().message;
  if (given && store.error().code == ErrorCode::kInvalidArgument) return BadSetting(*given, why);
  return Fail(store.error().code, why);
}

}  // namespace

Result<std::unique_ptr<Store>> OpenCliStore(const Context& ctx, const StoreFlags& sf) {
  const auto given = PickStore(ctx, sf);
  if (!given) return Fail(given.error());
  if (sf.create) {
    auto location = ResolveStoreLocation(ctx, sf);
    if (!location) return Fail(location.error());
    return Opened(OpenStore(*location), *location, *given);
  }
  // Neither the data directory nor the file is made: a mistyped path is reported, not turned
  // into a new, empty store that answers "no runs".
  const bool named = given->has_value();
  const std::string location = named ? (*given)->text : DefaultStoreFile(ctx);
  StoreOptions options;
  options.create = false;
  auto store = OpenStore(location, options);
  if (store || store.error().code != ErrorCode::kNotFound)
    return Opened(std::move(store), location, *given);
  if (named) {
    return BadSetting(**given, "no store at " + MaskStoreUrl(location) +
                                   ": nothing has made one there (`ferry workflow apply` makes a "
                                   "new one)");
  }
  return Fail(ErrorCode::kNotFound, "no store at " + location +
                                        " yet: `ferry workflow apply` or `ferry dev` makes it "
                                        "there; --store or FERRY_STORE names another");
}

Status OpenStoreUpFront(StoreFactory& stores) {
  if (auto s = stores.Open(); !s) {
    return Fail(s.error().code,
                "cannot open the store at " + stores.Describe() + ": " + s.error().message);
  }
  return {};
}

std::string RunDuration(const Json& r) {
  const int64_t started = FieldMs(r, "started_at");
  if (started == 0) return "-";
  const int64_t finished = FieldMs(r, "finished_at");
  const int64_t end = finished != 0 ? finished : WallNowMs();
  return FormatDuration(milliseconds(std::max<int64_t>(0, end - started)));
}

Table RunsTable(const Json& runs, bool unicode) {
  Table table(
      {"Run ID", "Workflow", "Version", "Status", "Trigger", "Created", "Duration", "Error"});
  for (const auto& r : runs) {
    const std::string status = Field(r, "status");
    std::string error = OneLine(Field(r, "error"));
    if (auto node = Field(r, "failed_node"); node != "-") error = node + ": " + error;
    table.AddRow({Field(r, "id"), Field(r, "workflow"), "v" + Field(r, "version"),
                  Cell(status, StatusColor(status)), Field(r, "triggered_by"),
                  FieldTime(r, "created_at"), RunDuration(r), Ellipsize(error, 48, unicode)});
  }
  return table;
}

std::string OneLine(std::string text) {
  text.erase(text.find_last_not_of(" \t\r\n") + 1);
  std::replace_if(
      text.begin(), text.end(), [](char c) { return c == '\n' || c == '\r'; }, ' ');
  return text;
}

std::string RunEndText(const Json& run) {
  std::string text = Field(run, "status");
  if (auto node = Field(run, "failed_node"); node != "-") text += " at node " + node;
  if (auto error = Field(run, "error"); error != "-") text += ": " + OneLine(error);
  return text;
}

std::string RunEventLine(const Json& e) {
  const Json d = e.contains("data") && e["data"].is_object() ? e["data"] : Json::object();
  const std::string type = Field(e, "type");
  // One event, one line (OneLine).
  auto str = [&](const char* k) { return d.contains(k) ? OneLine(Field(d, k)) : std::string(); };
  std::string text;
  if (type == "node.started") {
    text = str("node") + "  started (" + str("kind") +
           (d.value("attempt", 1) > 1 ? ", attempt " + str("attempt") : "") + ")";
  } else if (type == "node.finished") {
    text = str("node") + "  " + str("status");
    if (d.contains("duration_ms")) {
      text += " in " + FormatDuration(milliseconds(d.value("duration_ms", int64_t{0})));
    }
    if (d.contains("error")) text += ": " + str("error");
  } else if (type == "node.log") {
    text = str("node") + "  | " + str("message");
  } else if (type == "node.retrying") {
    text = str("node") + "  retrying (attempt " + str("attempt") + " failed: " + str("error") + ")";
  } else if (type == "node.waiting") {
    // With its date: a delay may end days or a year ahead.
    text = d.contains("task") ? str("node") + "  waiting for task " + str("task")
           : d.contains("deadline_ms")
               ? str("node") + "  waiting until " + FormatIsoMs(d.value("deadline_ms", int64_t{0}))
               : str("node") + "  waiting for its task";
  } else if (type == runs::kEventWaiting) {
    text = "run waiting " + WaitingText(d) + ", its worker's slot free meanwhile";
  } else if (type == runs::kEventCancelled) {
    text = "run cancel asked by " + str("by");
  } else if (type == runs::kEventEnqueued) {
    text = "run enqueued as task " + str("task_id") + " (queue " + str("queue") + ")";
  } else if (type == runs::kEventStarted) {
    text = "run started on " + str("worker") + " (attempt " + str("attempt") + ")";
  } else if (type == runs::kEventFinished) {
    text = "run " + str("status");
    if (d.contains("failed_node")) text += " at node " + str("failed_node");
    if (d.contains("error")) text += ": " + str("error");
  } else if (type == runs::kEventCreated) {
    text = "run created (" + str("triggered_by") + ")";
    if (d.contains("task_id")) {
      text += ", task " + str("task_id") + " (queue " + str("queue") + ")";
    }
  } else {
    text = type + " " + DumpJson(d);
  }
  return Clock(FieldMs(e, "at")) + "  " + text;
}

int RunExitCode(const Json& run) {
  return Field(run, "status") == "succeeded" ? kExitOk : kExitFailure;
}

Result<Json> WaitForRun(const Output& out, service::Service& svc, const std::string& id,
                        const WaitRunOptions& options) {
  auto printed = svc.FollowRunEvents(id, 0, options.timeout, [&](const Json& e) {
    if (!options.print_events) return true;
    if (out.json()) {
      out.PrintJsonLine(e);
    } else {
      out.Print(RunEventLine(e) + "\n");
    }
    return true;
  });
  if (!printed) {
    if (printed.error().code != ErrorCode::kTimeout) return Fail(printed.error());
    auto run = svc.GetRun(id);
    std::string status = run ? Field((*run)["run"], "status") : std::string("unfinished");
    return Fail(ErrorCode::kTimeout,
                "run " + id + " is still " + status + " after " + FormatDuration(options.timeout));
  }
  auto run = svc.GetRun(id);
  if (!run) return Fail(run.error());
  return (*run)["run"];
}

// --------------------------------------------------------------------------------------------
// ferry run ...

int RunRunList(Context& ctx, const StoreFlags& sf, const RunListArgs& args) {
  const Output& out = ctx.out();
  service::Query query{{"limit", std::to_string(args.limit)}};
  if (args.status) query["status"] = *args.status;
  if (args.workflow) query["workflow"] = *args.workflow;
  if (args.cursor) query["cursor"] = *args.cursor;
  auto svc = ctx.Service(sf);
  if (!svc) return out.Fail(svc.error());
  auto page = (*svc)->ListRuns(query);
  if (!page) return out.Fail(page.error());
  if (out.json()) {
    out.PrintJson(*page);
    return kExitOk;
  }
  const Json& next = (*page)["next_cursor"];
  if ((*page)["runs"].empty()) {
    out.Print(args.cursor ? "No more runs.\n" : "No runs.\n");
    return kExitOk;
  }
  out.PrintTable(RunsTable((*page)["runs"], out.style().unicode));
  // The same filters with --cursor list the next page.
  if (next.is_string()) out.Print("More: add --cursor " + next.get<std::string>() + "\n");
  return kExitOk;
}

int RunRunCounts(Context& ctx, const StoreFlags& sf) {
  const Output& out = ctx.out();
  auto svc = ctx.Service(sf);
  if (!svc) return out.Fail(svc.error());
  auto counts = (*svc)->CountRuns();
  if (!counts) return out.Fail(counts.error());
  if (out.json()) {
    out.PrintJson(*counts);
    return kExitOk;
  }
  Table table({"Status", "Runs"});
  for (const char* status : {"pending", "running", "succeeded", "failed", "cancelled"}) {
    table.AddRow({Cell(status, StatusColor(status)), Field((*counts)["counts"], status)});
  }
  table.AddRow({"total", Field(*counts, "total")});
  out.PrintTable(table);
  return kExitOk;
}

int RunRunShow(Context& ctx, const StoreFlags& sf, const std::string& id) {
  const Output& out = ctx.out();
  auto svc = ctx.Service(sf);
  if (!svc) return out.Fail(svc.error());
  auto shown = (*svc)->GetRun(id);
  if (!shown) return out.Fail(shown.error());
  if (out.json()) {
    out.PrintJson(*shown);
    return kExitOk;
  }
  const Json& r = (*shown)["run"];
  const std::string trigger = Field(r, "trigger_id");
  std::vector<std::pair<std::string, std::string>> rows = {
      {"Run ID", Field(r, "id")},
      {"Workflow", Field(r, "workflow") + " (version " + Field(r, "version") + ")"},
      {"Status", Field(r, "status")},
      {"Triggered by",
       Field(r, "triggered_by") + (trigger == "-" ? "" : " (trigger " + trigger + ")")},
      {"Attempt", Field(r, "attempt")},
      // A running run held by no worker was released to wait (docs/workflows.md).
      {"Worker",
       Field(r, "status") == "running" && Field(r, "worker") == "-"
           ? "none: waiting " +
                 (r.value("waiting", Json()).is_object() ? WaitingText(r["waiting"]) + ", "
                                                         : std::string()) +
                 "out of any worker's slot"
           : Field(r, "worker")},
      {"Created", FieldTime(r, "created_at")},
      {"Started", FieldTime(r, "started_at")},
      {"Finished", FieldTime(r, "finished_at")},
      {"Duration", RunDuration(r)},
      {"Inputs", Field(r, "inputs")},
  };
  if (auto retry_of = Field(r, "retry_of"); retry_of != "-")
    rows.emplace_back("Retry of", retry_of);
  if (r.contains("output") && !r["output"].is_null()) {
    rows.emplace_back("Output", DumpJson(r["output"], 2));
  }
  if (auto node = Field(r, "failed_node"); node != "-") rows.emplace_back("Failed node", node);
  if (auto error = Field(r, "error"); error != "-") {
    error.erase(error.find_last_not_of(" \t\r\n") + 1);  // its line breaks inside are kept
    rows.emplace_back("Error", error);
  }
  out.Print(RenderKeyValues(rows));
  out.Print("\n");
  const Json steps = r.value("steps", Json::array());
  if (steps.empty()) {
    out.Print("No steps finished yet.\n");
    return kExitOk;
  }
  Table table({"Node", "Status", "Attempt", "Started", "Duration", "Output / Error"});
  for (const auto& st : steps) {
    const std::string status = Field(st, "status");
    std::string detail = Field(st, "error");
    if (detail == "-") detail = Field(st, "output");
    const bool timed = st.contains("duration_ms") && st["duration_ms"].is_number_integer();
    table.AddRow({Field(st, "node"), Cell(status, StatusColor(status)), Field(st, "attempt"),
                  FieldTime(st, "started_at"),
                  timed ? FormatDuration(milliseconds(FieldInt(st, "duration_ms"))) : "-",
                  Ellipsize(OneLine(detail), 60, out.style().unicode)});
  }
  out.PrintTable(table);
  return kExitOk;
}

int RunRunWatch(Context& ctx, const StoreFlags& sf, const RunWatchArgs& args) {
  const Output& out = ctx.out();
  WaitRunOptions wo;
  wo.print_events = true;
  if (args.timeout) {
    auto d = ParseDuration(*args.timeout);
    if (!d) return out.Fail(ErrorCode::kInvalidArgument, "--timeout: " + d.error().message);
    wo.timeout = *d;
  }
  auto svc = ctx.Service(sf);
  if (!svc) return out.Fail(svc.error());
  auto run = WaitForRun(out, **svc, args.id, wo);
  if (!run) return out.Fail(run.error());
  if (out.json()) {
    out.PrintJsonLine(Json{{"run", *run}});
  } else {
    out.Print("run " + Field(*run, "id") + " " + RunEndText(*run) + "\n");
  }
  return RunExitCode(*run);
}

int RunRunCancel(Context& ctx, const StoreFlags& sf, const std::string& id) {
  const Output& out = ctx.out();
  auto svc = ctx.Service(sf);
  if (!svc) return out.Fail(svc.error());
  auto cancelled = (*svc)->CancelRun(id, Context::Caller());
  if (!cancelled) return out.Fail(cancelled.error());
  if (out.json()) {
    out.PrintJson(*cancelled);
    return kExitOk;
  }
  // The store is the truth; the task is told too so a waiting task never starts and a running
  // one stops at once instead of at the handler's next store poll.
  std::string note;
  if (auto task = Field(*cancelled, "task_id"); task != "-") {
    note = " (task " + task + " " + Field(*cancelled, "task_cancel") + ")";
  }
  out.Print(id + ": cancelled" + note + "\n");
  return kExitOk;
}

int RunRunRetry(Context& ctx, const StoreFlags& sf, const std::string& id, bool latest_version) {
  const Output& out = ctx.out();
  auto svc = ctx.Service(sf);
  if (!svc) return out.Fail(svc.error());
  auto retried = (*svc)->RetryRun(id, Json{{"latest_version", latest_version}});
  if (!retried) return out.Fail(retried.error());
  if (out.json()) {
    out.PrintJson(*retried);
    return kExitOk;
  }
  const std::string new_id = Field((*retried)["run"], "id");
  out.Print(new_id + "\n");
  if (!retried->value("enqueued", false)) {
    out.Message("run " + new_id + " is stored as pending; enqueueing failed (" +
                Field(*retried, "enqueue_error") + "); the sweeper will enqueue it");
  }
  return kExitOk;
}

int RunRunRecover(Context& ctx, const StoreFlags& sf, const RunRecoverArgs& args) {
  const Output& out = ctx.out();
  runs::RecoveryOptions options;
  if (args.pending_age) {
    auto d = ParseDuration(*args.pending_age);
    if (!d) return out.Fail(ErrorCode::kInvalidArgument, "--pending-age: " + d.error().message);
    options.pending_age = *d;
  }
  options.dry_run = args.dry_run;
  auto store = OpenCliStore(ctx, sf);
  if (!store) return out.Fail(store.error());
  auto broker = ctx.Connect();
  if (!broker) return out.Fail(broker.error());
  auto report = runs::RecoverRuns(**store, **broker, options);
  if (!report) return out.Fail(report.error());
  using Action = runs::RunRecovery::Action;
  if (out.json()) {
    Json arr = Json::array();
    for (const auto& r : report->runs) {
      arr.push_back(Json{{"run_id", r.run_id},
                         {"workflow", r.workflow},
                         {"status", RunStatusName(r.status)},
                         {"action", runs::RecoveryActionName(r.action)},
                         {"task_id", views::Text(r.task_id)},
                         {"generation", r.generation},
                         {"detail", r.detail}});
    }
    out.PrintJson(Json{{"runs", arr}, {"dry_run", args.dry_run}});
  } else if (report->runs.empty()) {
    out.Print("Nothing to recover: no pending runs older than " +
              FormatDuration(options.pending_age) +
              ", no running runs, no cancelled run without its end.\n");
  } else {
    Table table({"Run ID", "Workflow", "Was", "Action", "Task", "Detail"});
    for (const auto& r : report->runs) {
      std::string action(runs::RecoveryActionName(r.action));
      // A dry run did nothing: its table says what a real one would do.
      if (args.dry_run && r.action == Action::kEnqueued) action = "would enqueue";
      if (args.dry_run && r.action == Action::kFailed) action = "would fail";
      if (args.dry_run && r.action == Action::kCancelled) action = "would cancel";
      if (args.dry_run && r.action == Action::kEnded) action = "would end";
      Color color = r.action == Action::kEnqueued                               ? Color::kYellow
                    : r.action == Action::kError || r.action == Action::kFailed ? Color::kRed
                                                                                : Color::kNone;
      table.AddRow({r.run_id, r.workflow, std::string(RunStatusName(r.status)), Cell(action, color),
                    OrDash(r.task_id), Ellipsize(r.detail, 70, out.style().unicode)});
    }
    out.PrintTable(table);
    out.Print(std::to_string(report->Count(Action::kEnqueued)) + " enqueued, " +
              std::to_string(report->Count(Action::kFailed)) + " failed, " +
              std::to_string(report->Count(Action::kCancelled)) + " cancelled, " +
              std::to_string(report->Count(Action::kEnded)) + " ended, " +
              std::to_string(report->Count(Action::kAlive)) + " alive, " +
              std::to_string(report->Count(Action::kError)) + " errors" +
              (args.dry_run ? " (dry run: nothing changed)" : "") + "\n");
  }
  return report->Count(Action::kError) > 0 ? kExitFailure : kExitOk;
}

// --------------------------------------------------------------------------------------------
// `ferry worker start`: the ferry.run handler

namespace {

// What the handler borrows for the worker's lifetime.
struct WorkerRunSupport {
  std::unique_ptr<StoreFactory> stores;
  std::unique_ptr<BrokerFactory> brokers;
  engine::EnvSecretResolver env;
  std::unique_ptr<engine::MapSecretResolver> file;
  std::unique_ptr<engine::ChainSecretResolver> chain;
};

}  // namespace

Result<std::shared_ptr<void>> RegisterWorkerRunHandler(Context& ctx, const StoreFlags& sf,
                                                       const WorkerConfig& worker,
                                                       HandlerRegistry& registry) {
  auto support = std::make_shared<WorkerRunSupport>();
  // Not ResolveStoreLocation: a worker that never sees a run must not create ./.ferry.
  auto store = PickStore(ctx, sf);
  if (!store) return Fail(store.error());
  std::string location = *store ? (*store)->text : DefaultStoreFile(ctx);
  auto stores = MakeStoreFactory(location);
  if (!stores) return Fail(stores.error());
  support->stores = std::move(*stores);
  support->brokers = MakeRedisBrokerFactory(worker.worker.broker);
  auto secrets_file = PickSettingText(sf.secrets_file, "secrets-file", ctx.env());
  std::vector<const engine::SecretResolver*> chain = {&support->env};
  if (secrets_file) {
    auto file = engine::LoadSecretsFile(*secrets_file);
    if (!file) {
      return Fail(file.error().code,
                  "--secrets-file " + *secrets_file + ": " + file.error().message);
    }
    support->file = std::move(*file);
    chain.push_back(support->file.get());
  }
  support->chain = std::make_unique<engine::ChainSecretResolver>(chain);
  auto remediation = remediation::ResolveSettings(sf.remediation, ctx.env());
  if (!remediation) return Fail(remediation.error());
  runs::RunHandlerOptions ho;
  ho.worker_id = worker.worker.worker_id;
  ho.task_events = worker.run_task_events;
  ho.give_back_waits_over = worker.run_slot_wait;
  ho.secrets = support->chain.get();
  ho.on_run_failed = remediation::CaptureHook(*remediation, support->chain.get());
  runs::RegisterRunHandler(registry, *support->stores, *support->brokers, ho);
  spdlog::info("ferry.run handler: store {}{}{}, runs give their slot back in waits over {}",
               support->stores->Describe(), secrets_file ? ", secrets file " + *secrets_file : "",
               remediation->enabled ? ", failed runs captured for remediation" : "",
               FormatDuration(worker.run_slot_wait));
  return std::shared_ptr<void>(support);
}

}  // namespace ferry::cli
