// `ferry worker start|list`.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>
#include <mutex>

#include "cli/commands.h"
#include "cli/signals.h"
#include "core/redis_url.h"
#include "core/time_util.h"
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

void LogBanner(const WorkerOptions& o, const Worker& worker, LogFormat format) {
  int prefetch = o.prefetch < 0 ? o.concurrency : o.prefetch;
  std::string health =
      worker.health_port() > 0 ? o.health_host + ":" + std::to_string(worker.health_port()) : "off";
  if (format == LogFormat::kJson) {
    spdlog::info(
        "ferry worker {} started: worker_id={} redis={} prefix={} queues={} concurrency={} "
        "prefetch={} lease={} drain_timeout={} health={}",
        FERRY_VERSION, worker.id(), MaskRedisUrl(o.broker.redis_url), o.broker.prefix,
        Join(o.queues, ","), o.concurrency, prefetch, FormatDuration(o.lease),
        FormatDuration(o.drain_timeout), health);
    return;
  }
  // Seed 004's banner: who this worker is and where it takes work from, password masked.
  std::string banner = std::string("ferry worker ") + FERRY_VERSION + "\n" +
                       "  Worker ID:     " + worker.id() + "\n" +
                       "  Redis:         " + MaskRedisUrl(o.broker.redis_url) + " (prefix " +
                       o.broker.prefix + ")\n" + "  Queues:        " + Join(o.queues, ", ") +
                       (o.queues.size() > 1 ? " (strict priority)" : "") + "\n" +
                       "  Concurrency:   " + std::to_string(o.concurrency) + " (prefetch " +
                       std::to_string(prefetch) + ")\n" +
                       "  Lease:         " + FormatDuration(o.lease) + ", drain timeout " +
                       FormatDuration(o.drain_timeout) + "\n" + "  Health:        " + health + "\n";
  std::fflush(stdout);
  std::fputs(banner.c_str(), stderr);
  std::fflush(stderr);
}

}  // namespace

int RunWorkerStart(Context& ctx, const WorkerFlags& flags) {
  const Output& out = ctx.out();
  auto cfg = ResolveWorkerConfig(ctx.global(), flags, ctx.env());
  if (!cfg) return out.Fail(cfg.error());
  if (auto st = EnsureLogging(cfg->log); !st) return out.Fail(st.error());

  HandlerRegistry registry;
  RegisterBuiltinHandlers(registry);
  // Before the worker starts its threads, so they all inherit the blocked mask.
  // A signal may arrive before Start() returns: remember it and stop once there is a worker.
  std::mutex mu;
  Worker* target = nullptr;   // guarded by mu
  bool stop_pending = false;  // guarded by mu
  SignalWatcher signals([&](int signo, int n) {
    std::lock_guard lock(mu);
    if (n == 1) {
      spdlog::info("received {}: draining (stops claiming; running tasks have {} to finish)",
                   SignalName(signo), FormatDuration(cfg->worker.drain_timeout));
    } else {
      spdlog::warn("received {} again: already draining", SignalName(signo));
    }
    if (target != nullptr) {
      target->Stop();
    } else {
      stop_pending = true;
    }
  });

  auto worker = MakeWorker(cfg->worker, registry);
  if (!worker) return out.Fail(worker.error());
  if (auto st = (*worker)->Start(); !st) {
    Error e = st.error();
    if (e.code == ErrorCode::kUnavailable || e.code == ErrorCode::kUnauthenticated) {
      e = DescribeConnectError(e, cfg->worker.broker.redis_url);
    }
    return out.Fail(e);
  }
  LogBanner(cfg->worker, **worker, cfg->log.format);
  {
    std::lock_guard lock(mu);
    target = worker->get();
    if (stop_pending) target->Stop();
  }
  (*worker)->Wait();
  {
    std::lock_guard lock(mu);
    target = nullptr;
  }
  spdlog::info("worker {} stopped", (*worker)->id());
  return kExitOk;
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
    for (const auto& w : *workers) arr.push_back(WorkerToJson(w));
    out.PrintJson(arr);
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
