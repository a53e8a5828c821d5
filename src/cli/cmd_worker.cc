// `ferry worker start|list`.
#include <algorithm>

#include "cli/cli.h"
#include "cli/commands.h"
#include "core/time_util.h"
#include "handlers/register.h"
#include "ops/metrics.h"
#include "ops/sd_notify.h"
#include "views/views.h"
#include "worker/worker.h"

namespace ferry::cli {
namespace {

std::string Join(const std::vector<std::string>& parts, const std::string& sep) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i > 0) out += sep;
    out += parts[i];
  }
  return out;
}

}  // namespace

int RunWorkerStart(Context& ctx, const WorkerFlags& flags, const StoreFlags& sf,
                   const HandlerRegistry* extra) {
  const Output& out = ctx.out();
  auto cfg = ResolveWorkerConfig(ctx.global(), flags, ctx.env());
  if (!cfg) return out.Fail(cfg.error());
  if (auto st = EnsureLogging(cfg->log); !st) return out.Fail(st.error());

  // Before any thread exists, so every thread started from here on inherits the blocked mask
  // and only the worker's signal thread takes SIGTERM/SIGINT.
  BlockTerminationSignals();
  HandlerRegistry registry;
  RegisterBuiltinHandlers(registry);
  if (extra != nullptr) {
    for (const auto& kind : extra->Kinds()) {
      if (const Handler* h = extra->Find(kind)) registry.Register(kind, *h);
    }
  }
  if (auto st = handlers::RegisterExternalHandlers(cfg->handlers, {cfg->handler_secret}, registry);
      !st) {
    return out.Fail(st.error());
  }
  auto fail = [&](Error e) {
    if (e.code == ErrorCode::kUnavailable || e.code == ErrorCode::kUnauthenticated) {
      e = DescribeConnectError(e, cfg->worker.broker.redis_url);
    }
    return out.Fail(e);
  };
  // Workflow runs: the handler records this worker's id on the runs it executes.
  if (cfg->worker.worker_id.empty()) cfg->worker.worker_id = DefaultWorkerId();
  auto runs_support =
      RegisterWorkerRunHandler(ctx, sf, cfg->worker.broker, cfg->worker.worker_id, registry);
  if (!runs_support) return out.Fail(runs_support.error());
  // /metrics on the health port: what this worker ran (src/ops). Cluster-wide values (queue
  // depths, broker counters) come from the server's /metrics.
  ops::Metrics metrics("worker");
  cfg->worker.on_task_end = [&metrics](const TaskObservation& o) { metrics.ObserveTask(o); };
  cfg->worker.metrics = [&metrics] { return metrics.Render(); };
  auto worker = MakeWorker(cfg->worker, registry);
  if (!worker) return fail(worker.error());
  // The worker logs the startup banner (id, masked Redis URL, queues, concurrency).
  if (auto st = (*worker)->Start(); !st) return fail(st.error());
  ops::SdNotify("READY=1\nSTATUS=worker " + (*worker)->id() + " claiming");
  RunWorkerUntilSignal(**worker);  // the worker logs the drain and its end
  return kExitOk;
}

int RunWorkerMain(int argc, char** argv, const HandlerRegistry& registry) {
  // The same parser, config and environment as `ferry worker start`: one code path for both.
  std::vector<char*> args;
  static char worker_word[] = "worker";
  static char start_word[] = "start";
  args.push_back(argc > 0 ? argv[0] : worker_word);
  args.push_back(worker_word);
  args.push_back(start_word);
  for (int i = 1; i < argc; ++i) args.push_back(argv[i]);
  return Main(static_cast<int>(args.size()), args.data(), &registry);
}

Table WorkersTable(const std::vector<WorkerInfo>& workers) {
  Table table({"Worker ID", "Status", "Hostname", "Tasks", "Failed", "Current Task(s)",
               "Concurrency", "Last Heartbeat"});
  for (const auto& w : workers) {
    std::string status = w.alive ? w.status : "dead";
    std::string current = w.current_tasks.empty() ? "-" : Join(w.current_tasks, ", ");
    table.AddRow({w.id, Cell(status, StatusColor(status)), w.hostname,
                  std::to_string(w.tasks_processed), std::to_string(w.tasks_failed),
                  Ellipsize(current, 60), std::to_string(w.concurrency),
                  HumanTime(w.last_heartbeat_ms)});
  }
  return table;
}

int RunWorkerList(Context& ctx) {
  const Output& out = ctx.out();
  auto broker = ctx.Connect();
  if (!broker) return out.Fail(broker.error());
  auto workers = (*broker)->ListWorkers();
  if (!workers) return out.Fail(workers.error());
  std::stable_sort(workers->begin(), workers->end(), [](const WorkerInfo& a, const WorkerInfo& b) {
    if (a.alive != b.alive) return a.alive;
    return a.id < b.id;
  });
  if (out.json()) {
    Json arr = Json::array();
    for (const auto& w : *workers) arr.push_back(views::Worker(w, WallNowMs()));
    out.PrintJson(views::Page("workers", std::move(arr), ""));
    return kExitOk;
  }
  if (workers->empty()) {
    out.Print("No workers.\n");
    return kExitOk;
  }
  out.PrintTable(WorkersTable(*workers));
  return kExitOk;
}

}  // namespace ferry::cli
