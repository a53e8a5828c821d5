// `ferry dev`: the whole system in one process for a laptop. SQLite under the data directory, a
// private redis-server on a free loopback port (unless a Redis URL is given), an in-process worker
// with the built-in handlers and `ferry.run`, the pending sweeper / run recovery loop, and the
// HTTP API without auth on a loopback address. Runs until SIGINT/SIGTERM, then drains.
#include <spdlog/spdlog.h>

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <mutex>

#include "cli/commands.h"
#include "cli/dev_endpoints.h"
#include "cli/runs_common.h"
#include "cli/signals.h"
#include "core/files.h"
#include "core/redis_url.h"
#include "core/time_util.h"
#include "devstack/embedded_redis.h"
#include "engine/secrets.h"
#include "ops/alerts.h"
#include "ops/doctor.h"
#include "ops/metrics.h"
#include "remediation/attempt.h"
#include "remediation/capture.h"
#include "remediation/runner.h"
#include "runs/handler.h"
#include "runs/recovery.h"
#include "scheduler/scheduler.h"
#include "worker/worker.h"
#ifdef FERRY_WITH_API
#include "api/server.h"
#endif

namespace ferry::cli {

using std::chrono::milliseconds;

int RunDev(Context& ctx, const StoreFlags& sf, const DevArgs& args) {
  const Output& out = ctx.out();
  auto listen = ParseListenAddress(
      PickSettingText(args.listen, "listen", ctx.env()).value_or("127.0.0.1:8080"));
  if (!listen) return out.Fail(listen.error());
  int concurrency = 4;  // not a worker's 1: ferry dev runs workflows whose nodes wait on tasks
  if (auto st = PickInt(args.concurrency, "concurrency", ctx.env(), 1, 256, concurrency); !st) {
    return out.Fail(st.error());
  }
  int nice = WorkerOptions{}.nice;
  if (auto st = PickInt(args.nice, "nice", ctx.env(), 0, 19, nice); !st) {
    return out.Fail(st.error());
  }
  std::chrono::milliseconds run_slot_wait = runs::RunHandlerOptions{}.give_back_waits_over;
  if (auto st = PickDuration(args.run_slot_wait, "run-slot-wait", ctx.env(), /*allow_zero=*/true,
                             run_slot_wait);
      !st) {
    return out.Fail(st.error());
  }
  // The user's own kinds (docs/handlers.md), checked before anything starts.
  auto declared = ResolveHandlerDeclarations(args.handlers, ctx.env());
  if (!declared) return out.Fail(declared.error());
  // GET /api/v1/alerts evaluates with the thresholds of FERRY_ALERT_*, checked as every command
  // that reads them checks them.
  auto alert_settings = ops::ResolveAlertSettings({}, ctx.env());
  if (!alert_settings) return out.Fail(alert_settings.error());
  std::filesystem::path data_dir = DataDirectory(args.data_dir, ctx.env());
  if (auto made = MakeDirectories(data_dir.string()); !made) {
    return out.Fail(made.error().code, "cannot create data directory " + data_dir.string() + ": " +
                                           made.error().message);
  }
  auto held = DataDirLock::Acquire(data_dir.string());
  if (!held) return out.Fail(held.error());
  auto given_store = PickStore(ctx, sf);
  if (!given_store) return out.Fail(given_store.error());
  std::string store_location =
      *given_store ? (*given_store)->text : (data_dir / "ferry.db").string();
  auto cfg = ResolveClientConfig(ctx.global(), ctx.env(), "info");
  if (!cfg) return out.Fail(cfg.error());
  if (auto st = EnsureLogging(cfg->log); !st) return out.Fail(st.error());

  // Before any thread exists, so every thread inherits the blocked SIGINT/SIGTERM.
  std::mutex mu;
  std::condition_variable cv;
  bool interrupted = false;  // guarded by mu
  SignalWatcher signals([&](int signo, int n) {
    if (n == 1) spdlog::info("received {}: shutting down (draining the worker)", SignalName(signo));
    std::lock_guard lock(mu);
    interrupted = true;
    cv.notify_all();
  });

  // Redis: the one given, else a private one that lives as long as this process.
  std::unique_ptr<devstack::EmbeddedRedis> redis;
  BrokerOptions broker_options = cfg->broker;
  bool private_redis =
      !ctx.global().redis_url && !ctx.env()("FERRY_REDIS_URL") && !ctx.env()("REDIS_URL");
  if (private_redis) {
    auto r = devstack::EmbeddedRedis::Start();
    if (!r) return out.Fail(r.error());
    redis = std::move(*r);
    broker_options.redis_url = redis->url();
  }
  auto brokers = MakeRedisBrokerFactory(broker_options);
  if (auto b = brokers->Open(); !b) {
    return out.Fail(DescribeConnectError(b.error(), broker_options.redis_url));
  }

  auto stores = MakeStoreFactory(store_location);
  if (!stores) return out.Fail(stores.error());
  if (auto st = OpenStoreUpFront(**stores); !st) return out.Fail(st.error());

  // Secrets: FERRY_SECRET_<NAME>, then the secrets file if one is given.
  engine::EnvSecretResolver env_secrets;
  std::unique_ptr<engine::MapSecretResolver> file_secrets;
  std::vector<const engine::SecretResolver*> chain = {&env_secrets};
  if (auto path = PickSetting(sf.secrets_file, "secrets-file", ctx.env())) {
    auto f = engine::LoadSecretsFile(path->text);
    if (!f) {
      return out.Fail(f.error().code, path->source + " " + path->text + ": " + f.error().message);
    }
    file_secrets = std::move(*f);
    chain.push_back(file_secrets.get());
  }
  engine::ChainSecretResolver secrets(chain);

  // Operations (src/ops): the API's /metrics has the cluster-wide values plus this process's
  // worker and webhooks; GET /api/v1/alerts evaluates the rules (thresholds from FERRY_ALERT_*).
  ops::Metrics metrics("dev");
  metrics.EnableCluster(brokers.get(), stores->get());
  const ops::AlertEvaluator evaluator(alert_settings->thresholds);

  WorkerOptions wo;
  wo.broker = broker_options;
  wo.on_task_end = [&metrics](const TaskObservation& o) { metrics.ObserveTask(o); };
  wo.concurrency = concurrency;
  wo.nice = nice;
  wo.worker_id = DefaultWorkerId();
  wo.lease = std::chrono::seconds(10);
  wo.drain_timeout = std::chrono::seconds(10);
  wo.heartbeat_ttl = std::chrono::seconds(10);
  wo.block = milliseconds(500);
  HandlerRegistry registry;
  RegisterBuiltinHandlers(registry);
  if (auto st = RegisterDeclaredHandlers(*declared, ctx.env(), registry); !st) {
    return out.Fail(st.error());
  }
  // Remediation (src/remediation): capture in the worker and the sweeper, the scan as a
  // scheduler duty.
  auto rem = remediation::ResolveSettings(sf.remediation, ctx.env());
  if (!rem) return out.Fail(rem.error());
  if (auto st = remediation::CheckAttemptSettings(*rem); !st) return out.Fail(st.error());
  const runs::RunFailedHook capture = remediation::CaptureHook(*rem, &secrets);
  runs::RunHandlerOptions ho;
  ho.worker_id = wo.worker_id;
  ho.secrets = &secrets;
  ho.on_run_failed = capture;
  ho.give_back_waits_over = run_slot_wait;
  runs::RegisterRunHandler(registry, **stores, *brokers, ho);
  auto worker = MakeWorker(wo, registry, MakeRedisBrokerFactory(wo.broker));
  if (!worker) return out.Fail(worker.error());
  if (auto st = (*worker)->Start(); !st) return out.Fail(st.error());

  runs::RunSweeperOptions so;
  so.recovery.pending_age = std::chrono::seconds(5);
  so.recovery.on_run_failed = capture;
  so.interval = std::chrono::seconds(2);
  runs::RunSweeper sweeper(**stores, *brokers, so);
  sweeper.Start();
  // Cron triggers and delayed-task promotion (src/scheduler); the sweeper above recovers runs.
  scheduler::SchedulerOptions cron_options;
  cron_options.recovery_interval = std::chrono::milliseconds(0);
  cron_options.id = scheduler::DefaultSchedulerId();
  remediation::RunnerOptions ro;
  ro.attempt.settings = *rem;
  ro.attempt.owner = cron_options.id;
  ro.attempt.secrets = &secrets;
  ro.attempt.hide_paths = remediation::HidePaths(
      store_location, PickSettingText(sf.secrets_file, "secrets-file", ctx.env()).value_or(""),
      PickSettingText(ctx.global().config, "config", ctx.env()).value_or(""), data_dir.string());
  remediation::Runner remediation_runner(**stores, *brokers, ro);
  cron_options.hooks.push_back(remediation_runner.Duty());
  scheduler::Scheduler cron_scheduler(**stores, *brokers, cron_options);
  if (auto st = cron_scheduler.Start(); !st) {
    sweeper.Stop();
    (*worker)->Stop();
    (*worker)->Wait();
    return out.Fail(st.error());
  }

  std::string api_line = "not built into this binary";
#ifdef FERRY_WITH_API
  api::ApiServerOptions ao;
  ao.host = listen->first;
  ao.port = listen->second;
  ao.require_auth = false;
  ao.dev_mode = true;
  ao.store_factory = stores->get();
  ao.broker_factory = brokers.get();
  ao.secrets = &secrets;
  ao.metrics = [&metrics] { return metrics.Render(); };
  ao.on_webhook = [&metrics](const std::string& workflow, int status, double seconds) {
    metrics.ObserveWebhook(workflow, status, seconds);
  };
  ao.alerts = [&evaluator](Broker& b, Store* s) { return evaluator.EvaluateJson(b, s); };
  ao.doctor = [&] {
    return Result<Json>(ops::DoctorJson(ops::RunDoctor(*brokers, stores->get())));
  };
  api::ApiServer server(ao);
  auto port = server.Start();
  if (!port) {
    sweeper.Stop();
    (*worker)->Stop();
    (*worker)->Wait();
    return out.Fail(port.error());
  }
  std::string base = "http://" + listen->first + ":" + std::to_string(*port);
  api_line = base + "/api/v1 (no auth: dev only)";
#else
  std::string base;
#endif

  // Client commands in this folder (or with FERRY_DATA_DIR) find this stack through the file.
  DevEndpoints endpoints;
  endpoints.api = base.empty() ? "" : base + "/api/v1";
  endpoints.redis_url = broker_options.redis_url;
  endpoints.prefix = broker_options.prefix;
  endpoints.store = store_location;
  auto endpoints_file = DevEndpointsFile::Write(data_dir.string(), endpoints);
  if (!endpoints_file)
    spdlog::warn("{} (client commands will not find this stack)", endpoints_file.error().message);

  std::string banner = std::string("ferry dev ") + FERRY_VERSION + "\n";
  if (!base.empty()) banner += "  Console:    " + base + "/ (open it in a browser)\n";
  banner += "  API:        " + api_line + "\n";
  if (!base.empty()) banner += "  Webhooks:   " + base + "/hooks/{workflow}\n";
  if (!base.empty()) banner += "  Metrics:    " + base + "/metrics, alerts: ferry alerts\n";
  banner += "  Store:      " + (*stores)->Describe() + "\n";
  banner += "  Redis:      " + MaskRedisUrl(broker_options.redis_url) +
            (private_redis ? " (private, stops with ferry dev)" : "") + "\n";
  banner += "  Worker:     " + (*worker)->id() + " (concurrency " + std::to_string(concurrency) +
            ", queue default; runs give their slot back in waits over " +
            FormatDuration(run_slot_wait) + ")\n";
  if (!declared->specs.empty()) {
    std::string kinds;
    for (const auto& spec : declared->specs) {
      kinds += (kinds.empty() ? "" : ", ") + spec.kind +
               (spec.type == handlers::HandlerSpec::Type::kExec ? " (exec)" : " (http)");
    }
    banner += "  Handlers:   " + kinds + "\n";
  }
  banner += "  Sweeper:    pending runs re-enqueued after 5s; lost runs recovered\n";
  banner += "  Scheduler:  cron triggers every 1s (leader lease in Redis)\n";
  banner += std::string("  Remediation: ") +
            (rem->enabled ? (rem->dry_run ? "on, dry run" : "on") : "off (remediation-enabled)") +
            "\n";
  if (endpoints_file) {
    banner += "  Endpoints:  " + endpoints_file->path() + " (removed on exit)\n";
    banner += "\nIn another shell, in this folder";
    if (data_dir != ".ferry") banner += " (or with FERRY_DATA_DIR=" + data_dir.string() + ")";
    banner += ", commands use this stack:\n";
  } else {
    banner += "\nIn another shell:\n";
    banner += "  export FERRY_REDIS_URL=" + broker_options.redis_url +
              " FERRY_STORE=" + store_location + "\n";
  }
  // The example workflow is suggested where it is (Ferry's sources); in any other folder, a task
  // that needs no file, and where workflows come from.
  std::error_code no_file;
  if (std::filesystem::is_regular_file("examples/hello.yaml", no_file)) {
    banner += "  ferry workflow apply examples/hello.yaml\n";
    banner += "  ferry workflow run hello --input '{\"who\": \"Ada\"}' --wait\n";
  } else {
    banner += "  ferry task submit echo --payload '{\"hi\": 1}' --wait\n";
    banner +=
        "  ferry workflow apply FILE.yaml   (docs/workflows.md; examples/ in Ferry's sources)\n";
  }
  banner += "Press Ctrl-C to stop.\n";
  if (out.json()) {
    out.PrintJsonLine(
        Json{{"api", base.empty() ? Json(nullptr) : Json(base + "/api/v1")},
             {"console", base.empty() ? Json(nullptr) : Json(base + "/")},
             {"store", (*stores)->Describe()},
             {"redis_url", MaskRedisUrl(broker_options.redis_url)},
             {"endpoints_file", endpoints_file ? Json(endpoints_file->path()) : Json(nullptr)},
             {"worker_id", (*worker)->id()}});
  } else {
    out.Print(banner);
  }
  std::fflush(stdout);

  {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return interrupted; });
  }
#ifdef FERRY_WITH_API
  server.Stop();
#endif
  cron_scheduler.Stop();
  remediation_runner.Stop();
  sweeper.Stop();
  (*worker)->Stop();
  (*worker)->Wait();
  spdlog::info("ferry dev stopped");
  return kExitOk;
}

}  // namespace ferry::cli
