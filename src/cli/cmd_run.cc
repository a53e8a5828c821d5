// `ferry run list|show|watch|cancel|retry|recover`, the helpers shared with `workflow` and `dev`
// (runs_common.h), and the `ferry.run` handler wiring for `ferry worker start`.
#include <spdlog/spdlog.h>

#include <filesystem>
#include <thread>

#include "cli/commands.h"
#include "cli/runs_common.h"
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

constexpr const char* kDefaultStoreDir = ".ferry";
constexpr const char* kDefaultStoreFile = ".ferry/ferry.db";

std::string OrDash(const std::string& s) { return s.empty() ? "-" : s; }

Error NoRun(const std::string& id) { return Error{ErrorCode::kNotFound, "no run " + id}; }

std::string Clock(int64_t ms) {
  // "10:30:15.123" from the ISO form.
  std::string iso = FormatIsoMs(ms);
  auto t = iso.find('T');
  return t == std::string::npos ? iso : iso.substr(t + 1, 12);
}

std::string StepDuration(const RunStep& s) {
  if (s.started_ms == 0 || s.finished_ms < s.started_ms) return "-";
  return FormatDuration(milliseconds(s.finished_ms - s.started_ms));
}

}  // namespace

// --------------------------------------------------------------------------------------------
// Shared helpers (runs_common.h)

Result<std::string> ResolveStoreLocation(const Context& ctx, const StoreFlags& sf) {
  if (sf.store && !sf.store->empty()) return *sf.store;
  if (auto env = ctx.env()("FERRY_STORE")) return *env;
  std::error_code ec;
  std::filesystem::create_directories(kDefaultStoreDir, ec);
  if (ec) {
    return Fail(ErrorCode::kUnavailable,
                std::string("cannot create ") + kDefaultStoreDir + ": " + ec.message());
  }
  return std::string(kDefaultStoreFile);
}

Result<std::unique_ptr<Store>> OpenCliStore(const Context& ctx, const StoreFlags& sf) {
  auto location = ResolveStoreLocation(ctx, sf);
  if (!location) return Fail(location.error());
  auto store = OpenStore(*location);
  if (!store) {
    return Fail(store.error().code, "cannot open the store at " + MaskStoreUrl(*location) + ": " +
                                        store.error().message);
  }
  return store;
}

namespace {

// The run `id`, or the CLI's "no run" error.
Result<Run> FindRun(Store& store, const std::string& id) {
  auto run = store.GetRun(id);
  if (!run) return Fail(run.error());
  if (!*run) return Fail(NoRun(id));
  return **run;
}

}  // namespace

std::string RunDuration(const Run& r) {
  if (r.started_ms == 0) return "-";
  int64_t end = r.finished_ms != 0 ? r.finished_ms : WallNowMs();
  return FormatDuration(milliseconds(std::max<int64_t>(0, end - r.started_ms)));
}

Table RunsTable(const std::vector<Run>& runs, bool unicode) {
  Table table(
      {"Run ID", "Workflow", "Version", "Status", "Trigger", "Created", "Duration", "Error"});
  for (const auto& r : runs) {
    std::string status(RunStatusName(r.status));
    std::string error = r.error;
    if (!r.failed_node.empty()) error = r.failed_node + ": " + error;
    table.AddRow({r.id, r.workflow_name, "v" + std::to_string(r.version),
                  Cell(status, StatusColor(status)), std::string(TriggeredByName(r.triggered_by)),
                  HumanTime(r.created_ms), RunDuration(r), Ellipsize(OrDash(error), 48, unicode)});
  }
  return table;
}

std::string RunEventLine(const RunEvent& e) {
  auto parsed = ParseJson(e.data);
  Json d = parsed && parsed->is_object() ? *parsed : Json::object();
  auto str = [&](const char* k) {
    if (!d.contains(k)) return std::string();
    return d[k].is_string() ? d[k].get<std::string>() : DumpJson(d[k]);
  };
  std::string text;
  if (e.type == "node.started") {
    text = str("node") + "  started (" + str("kind") +
           (d.value("attempt", 1) > 1 ? ", attempt " + str("attempt") : "") + ")";
  } else if (e.type == "node.finished") {
    text = str("node") + "  " + str("status");
    if (d.contains("duration_ms")) {
      text += " in " + FormatDuration(milliseconds(d.value("duration_ms", int64_t{0})));
    }
    if (d.contains("error")) text += ": " + str("error");
  } else if (e.type == "node.log") {
    text = str("node") + "  | " + str("message");
  } else if (e.type == "node.retrying") {
    text = str("node") + "  retrying (attempt " + str("attempt") + " failed: " + str("error") + ")";
  } else if (e.type == runs::kEventEnqueued) {
    text = "run enqueued as task " + str("task_id") + " (queue " + str("queue") + ")";
  } else if (e.type == runs::kEventStarted) {
    text = "run started on " + str("worker") + " (attempt " + str("attempt") + ")";
  } else if (e.type == runs::kEventFinished) {
    text = "run " + str("status");
    if (d.contains("failed_node")) text += " at node " + str("failed_node");
    if (d.contains("error")) text += ": " + str("error");
  } else if (e.type == runs::kEventCreated) {
    text = "run created (" + str("triggered_by") + ")";
  } else {
    text = e.type + " " + DumpJson(d);
  }
  return Clock(e.ts_ms) + "  " + text;
}

int RunExitCode(const Run& run) {
  return run.status == RunStatus::kSucceeded ? kExitOk : kExitFailure;
}

Result<Run> WaitForRun(const Output& out, Store& store, const std::string& id,
                       const WaitRunOptions& options) {
  auto deadline = SteadyClock::now() + options.timeout;
  int64_t after = 0;
  while (true) {
    // Read the status first: events written before it ended are then all visible below.
    auto run = FindRun(store, id);
    if (!run) return Fail(run.error());
    if (options.print_events) {
      while (true) {
        auto events = store.ListRunEvents(id, after, 500);
        if (!events) return Fail(events.error());
        for (const auto& e : *events) {
          if (out.json()) {
            out.PrintJsonLine(views::RunEvent(e));
          } else {
            out.Print(RunEventLine(e) + "\n");
          }
          after = e.seq;
        }
        if (events->size() < 500) break;
      }
    }
    if (IsTerminal(run->status)) return *run;
    if (SteadyClock::now() >= deadline) {
      return Fail(ErrorCode::kTimeout, "run " + id + " is still " +
                                           std::string(RunStatusName(run->status)) + " after " +
                                           FormatDuration(options.timeout));
    }
    std::this_thread::sleep_for(options.poll);
  }
}

// --------------------------------------------------------------------------------------------
// ferry run ...

int RunRunList(Context& ctx, const StoreFlags& sf, const RunListArgs& args) {
  const Output& out = ctx.out();
  RunFilter filter;
  if (args.status) {
    auto s = ParseRunStatus(*args.status);
    if (!s) {
      return out.Fail(ErrorCode::kInvalidArgument,
                      "unknown status '" + *args.status +
                          "'; valid: pending, running, succeeded, failed, cancelled");
    }
    filter.status = s;
  }
  if (args.limit < 1 || args.limit > 1000) {
    return out.Fail(ErrorCode::kInvalidArgument, "--limit must be between 1 and 1000");
  }
  filter.limit = args.limit;
  auto store = OpenCliStore(ctx, sf);
  if (!store) return out.Fail(store.error());
  if (args.workflow) {
    auto wf = (*store)->GetWorkflow(*args.workflow);
    if (!wf) return out.Fail(wf.error());
    if (!*wf) return out.Fail(ErrorCode::kNotFound, "no workflow " + *args.workflow);
    filter.workflow_id = (*wf)->id;
  }
  auto page = (*store)->ListRuns(filter);
  if (!page) return out.Fail(page.error());
  if (out.json()) {
    Json arr = Json::array();
    for (const auto& r : page->runs) arr.push_back(views::Run(r));
    out.PrintJson(views::Page("runs", std::move(arr), page->next_cursor));
    return kExitOk;
  }
  if (page->runs.empty()) {
    out.Print("No runs.\n");
    return kExitOk;
  }
  out.PrintTable(RunsTable(page->runs, out.style().unicode));
  return kExitOk;
}

int RunRunShow(Context& ctx, const StoreFlags& sf, const std::string& id) {
  const Output& out = ctx.out();
  auto store = OpenCliStore(ctx, sf);
  if (!store) return out.Fail(store.error());
  auto run = FindRun(**store, id);
  if (!run) return out.Fail(run.error());
  auto steps = (*store)->ListSteps(id);
  if (!steps) return out.Fail(steps.error());
  const Run& r = *run;
  if (out.json()) {
    Json js = Json::array();
    for (const auto& s : *steps) js.push_back(views::Step(s));
    Json j = views::Run(r);
    j["steps"] = js;
    out.PrintJson(j);
    return kExitOk;
  }
  std::vector<std::pair<std::string, std::string>> rows = {
      {"Run ID", r.id},
      {"Workflow", r.workflow_name + " (version " + std::to_string(r.version) + ")"},
      {"Status", std::string(RunStatusName(r.status))},
      {"Triggered by", std::string(TriggeredByName(r.triggered_by)) +
                           (r.trigger_id.empty() ? "" : " (trigger " + r.trigger_id + ")")},
      {"Attempt", std::to_string(r.attempt)},
      {"Worker", OrDash(r.worker)},
      {"Created", HumanTime(r.created_ms)},
      {"Started", HumanTime(r.started_ms)},
      {"Finished", HumanTime(r.finished_ms)},
      {"Duration", RunDuration(r)},
      {"Inputs", OrDash(r.inputs)},
  };
  if (!r.retry_of.empty()) rows.emplace_back("Retry of", r.retry_of);
  if (!r.output.empty()) rows.emplace_back("Output", DumpJson(views::Embedded(r.output), 2));
  if (!r.failed_node.empty()) rows.emplace_back("Failed node", r.failed_node);
  if (!r.error.empty()) rows.emplace_back("Error", r.error);
  out.Print(RenderKeyValues(rows));
  out.Print("\n");
  if (steps->empty()) {
    out.Print("No steps finished yet.\n");
    return kExitOk;
  }
  Table table({"Node", "Status", "Attempt", "Started", "Duration", "Output / Error"});
  for (const auto& s : *steps) {
    std::string detail = !s.error.empty() ? s.error : OrDash(s.output);
    table.AddRow({s.node_id, Cell(s.status, StatusColor(s.status)), std::to_string(s.attempt),
                  HumanTime(s.started_ms), StepDuration(s),
                  Ellipsize(detail, 60, out.style().unicode)});
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
  auto store = OpenCliStore(ctx, sf);
  if (!store) return out.Fail(store.error());
  auto run = WaitForRun(out, **store, args.id, wo);
  if (!run) return out.Fail(run.error());
  if (out.json()) {
    out.PrintJsonLine(Json{{"run", views::Run(*run)}});
  } else {
    std::string line = "run " + run->id + " " + std::string(RunStatusName(run->status));
    if (!run->failed_node.empty()) line += " at node " + run->failed_node;
    if (!run->error.empty()) line += ": " + run->error;
    out.Print(line + "\n");
  }
  return RunExitCode(*run);
}

int RunRunCancel(Context& ctx, const StoreFlags& sf, const std::string& id) {
  const Output& out = ctx.out();
  auto store = OpenCliStore(ctx, sf);
  if (!store) return out.Fail(store.error());
  auto run = FindRun(**store, id);
  if (!run) return out.Fail(run.error());
  auto cancelled = (*store)->CancelRun(id);
  if (!cancelled) {
    if (cancelled.error().code == ErrorCode::kConflict) {
      return out.Fail(ErrorCode::kConflict, "cannot cancel run " + id + ": it already ended (" +
                                                std::string(RunStatusName(run->status)) + ")");
    }
    return out.Fail(cancelled.error());
  }
  (void)(*store)->AppendRunEvent(id, std::string(runs::kEventCancelled),
                                 DumpJson(Json{{"by", "cli"}}));
  // The store is the truth; the task is told too so a waiting task never starts and a running
  // one stops at once instead of at the handler's next store poll.
  std::string task_note;
  auto ref = runs::LatestRunTask(**store, id);
  if (ref && *ref) {
    auto broker = ctx.Connect();
    if (broker) {
      auto st = (*broker)->Cancel((*ref)->task_id);
      task_note = st ? "task " + (*ref)->task_id + " " +
                           (*st == TaskStatus::kRunning ? "stopping" : "cancelled")
                     : "task " + (*ref)->task_id + ": " + st.error().message;
    } else {
      task_note = "task not told (" + broker.error().message + "); the worker notices anyway";
    }
  }
  if (out.json()) {
    out.PrintJson(Json{{"id", id}, {"status", "cancelled"}, {"task", task_note}});
  } else {
    out.Print(id + ": cancelled" + (task_note.empty() ? "" : " (" + task_note + ")") + "\n");
  }
  return kExitOk;
}

int RunRunRetry(Context& ctx, const StoreFlags& sf, const std::string& id) {
  const Output& out = ctx.out();
  auto store = OpenCliStore(ctx, sf);
  if (!store) return out.Fail(store.error());
  if (auto old = FindRun(**store, id); !old) return out.Fail(old.error());
  auto run = (*store)->RetryRun(id, RetryRunOptions{});
  if (!run) {
    if (run.error().code == ErrorCode::kConflict) {
      return out.Fail(ErrorCode::kConflict, "cannot retry run " + id + ": " + run.error().message);
    }
    return out.Fail(run.error());
  }
  std::string queue = "default";
  if (auto ref = runs::LatestRunTask(**store, id); ref && *ref) queue = (*ref)->queue;
  bool enqueued = false;
  std::string note;
  auto broker = ctx.Connect();
  if (broker) {
    runs::EnsureTaskOptions eo;
    eo.queue = queue;
    auto ensured = runs::EnsureRunTask(**store, **broker, *run, eo);
    enqueued = ensured.has_value();
    if (!ensured) note = ensured.error().message;
  } else {
    note = broker.error().message;
  }
  if (out.json()) {
    out.PrintJson(Json{{"id", run->id}, {"retry_of", id}, {"enqueued", enqueued}});
  } else {
    out.Print(run->id + "\n");
    if (!enqueued) {
      out.Message("run " + run->id + " is stored as pending; enqueueing failed (" + note +
                  "); the sweeper will enqueue it");
    }
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
              FormatDuration(options.pending_age) + ", no running runs.\n");
  } else {
    Table table({"Run ID", "Workflow", "Was", "Action", "Task", "Detail"});
    for (const auto& r : report->runs) {
      std::string action(runs::RecoveryActionName(r.action));
      Color color = r.action == Action::kEnqueued                               ? Color::kYellow
                    : r.action == Action::kError || r.action == Action::kFailed ? Color::kRed
                                                                                : Color::kNone;
      table.AddRow({r.run_id, r.workflow, std::string(RunStatusName(r.status)), Cell(action, color),
                    OrDash(r.task_id), Ellipsize(r.detail, 70, out.style().unicode)});
    }
    out.PrintTable(table);
    out.Print(std::to_string(report->Count(Action::kEnqueued)) + " enqueued, " +
              std::to_string(report->Count(Action::kFailed)) + " failed, " +
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
                                                       const BrokerOptions& broker,
                                                       const std::string& worker_id,
                                                       HandlerRegistry& registry) {
  auto support = std::make_shared<WorkerRunSupport>();
  // Not ResolveStoreLocation: a worker that never sees a run must not create ./.ferry.
  std::string location = sf.store && !sf.store->empty() ? *sf.store
                         : ctx.env()("FERRY_STORE")     ? *ctx.env()("FERRY_STORE")
                                                        : std::string(kDefaultStoreFile);
  auto stores = MakeStoreFactory(location);
  if (!stores) return Fail(stores.error());
  support->stores = std::move(*stores);
  support->brokers = MakeRedisBrokerFactory(broker);
  std::optional<std::string> secrets_file = sf.secrets_file;
  if (!secrets_file) secrets_file = ctx.env()("FERRY_SECRETS_FILE");
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
  ho.worker_id = worker_id;
  ho.secrets = support->chain.get();
  ho.on_run_failed = remediation::CaptureHook(*remediation, support->chain.get());
  runs::RegisterRunHandler(registry, *support->stores, *support->brokers, ho);
  spdlog::info("ferry.run handler: store {}{}{}", support->stores->Describe(),
               secrets_file ? ", secrets file " + *secrets_file : "",
               remediation->enabled ? ", failed runs captured for remediation" : "");
  return std::shared_ptr<void>(support);
}

}  // namespace ferry::cli
