// `ferry worker start|list`.
#include <algorithm>

#include "cli/cli.h"
#include "cli/commands.h"
#include "cli/json_text.h"
#include "core/time_util.h"
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
  if (auto st = RegisterDeclaredHandlers(cfg->handlers, ctx.env(), registry); !st) {
    return out.Fail(st.error());
  }
  // The worker's kUnavailable and kUnauthenticated come from Redis alone: the health listener
  // fails with codes of its own (http/server.h), so a taken port is not reported as Redis.
  auto fail = [&](Error e) {
    if (e.code == ErrorCode::kUnavailable || e.code == ErrorCode::kUnauthenticated) {
      e = DescribeConnectError(e, cfg->worker.broker.redis_url);
    }
    return out.Fail(e);
  };
  // Workflow runs: the handler records this worker's id on the runs it executes.
  if (cfg->worker.worker_id.empty()) cfg->worker.worker_id = DefaultWorkerId();
  auto runs_support = RegisterWorkerRunHandler(ctx, sf, *cfg, registry);
  if (!runs_support) return out.Fail(runs_support.error());
  // /metrics on the health port: what this worker ran (src/ops). Cluster-wide values (queue
  // depths, broker counters) come from the server's /metrics.
  ops::Metrics metrics("worker");
  cfg->worker.on_task_end = [&metrics](const TaskObservation& o) { metrics.ObserveTask(o); };
  cfg->worker.metrics = [&metrics] { return metrics.Render(); };
  auto worker = MakeWorker(cfg->worker, registry, MakeRedisBrokerFactory(cfg->worker.broker));
  if (!worker) return fail(worker.error());
  // The worker logs the startup banner (id, masked Redis URL, queues, concurrency).
  if (auto st = (*worker)->Start(); !st) return fail(st.error());
  ops::SdNotify("READY=1\nSTATUS=worker " + (*worker)->id() + " claiming");
  // The worker logs the drain and its end; systemd hears of it as the drain begins.
  const std::string id = (*worker)->id();
  RunWorkerUntilSignal(**worker,
                       [&id] { ops::SdNotify("STOPPING=1\nSTATUS=worker " + id + " draining"); });
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

Table WorkersTable(const Json& workers) {
  Table table({"Worker ID", "Status", "Hostname", "Tasks", "Failed", "Current Task(s)",
               "Concurrency", "Last Heartbeat"});
  for (const auto& w : workers) {
    const std::string status = Field(w, "status");
    std::vector<std::string> current;
    for (const auto& t : w.value("current_tasks", Json::array())) {
      if (t.is_string()) current.push_back(t.get<std::string>());
    }
    table.AddRow({Field(w, "id"), Cell(status, StatusColor(status)), Field(w, "hostname"),
                  Field(w, "tasks_processed"), Field(w, "tasks_failed"),
                  Ellipsize(current.empty() ? "-" : Join(current, ", "), 60),
                  Field(w, "concurrency"), FieldTime(w, "last_heartbeat_at")});
  }
  return table;
}

int RunWorkerList(Context& ctx) {
  const Output& out = ctx.out();
  auto svc = ctx.Service({});
  if (!svc) return out.Fail(svc.error());
  auto page = (*svc)->ListWorkers();
  if (!page) return out.Fail(page.error());
  if (out.json()) {
    out.PrintJson(*page);
    return kExitOk;
  }
  if ((*page)["workers"].empty()) {
    out.Print("No workers.\n");
    return kExitOk;
  }
  out.PrintTable(WorkersTable((*page)["workers"]));
  return kExitOk;
}

}  // namespace ferry::cli
