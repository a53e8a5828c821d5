// `ferry server start`: the HTTP API (src/api) until SIGTERM/SIGINT, plus the pending-run sweeper
// until the scheduler owns it.
#include <spdlog/spdlog.h>

#include <condition_variable>
#include <cstdio>
#include <mutex>

#include "api/server.h"
#include "cli/commands.h"
#include "cli/limits.h"
#include "cli/signals.h"
#include "core/redis_url.h"
#include "engine/secrets.h"
#include "ops/alerts.h"
#include "ops/doctor.h"
#include "ops/metrics.h"
#include "ops/sd_notify.h"
#include "runs/recovery.h"
#include "store/store.h"

namespace ferry::cli {
namespace {

Result<int> ParseBoundedInt(const std::string& text, const char* what, int lo, int hi) {
  try {
    size_t used = 0;
    int v = std::stoi(text, &used);
    if (used == text.size() && v >= lo && v <= hi) return v;
  } catch (const std::exception&) {
  }
  return Fail(ErrorCode::kInvalidArgument, std::string(what) + " must be an integer from " +
                                               std::to_string(lo) + " to " + std::to_string(hi));
}

}  // namespace

Result<std::pair<std::string, int>> ParseListenAddress(const std::string& text) {
  auto colon = text.rfind(':');
  auto bad = [&] {
    return Fail(ErrorCode::kInvalidArgument, "--listen wants HOST:PORT, got '" + text + "'");
  };
  if (colon == std::string::npos || colon == 0) return bad();
  std::string host = text.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  auto port = ParseBoundedInt(text.substr(colon + 1), "port", 0, 65535);
  if (!port || host.empty()) return bad();
  return std::make_pair(host, *port);
}

int RunServerStart(Context& ctx, const StoreFlags& sf, const ServerArgs& args) {
  const Output& out = ctx.out();

  api::ApiServerOptions ao;
  auto listen_setting = PickSetting(args.listen, "listen", ctx.env());
  auto listen = ParseListenAddress(listen_setting ? listen_setting->text : "127.0.0.1:8080");
  if (!listen) return out.Fail(listen.error());
  ao.host = listen->first;
  ao.port = listen->second;
  struct IntSetting {
    const std::optional<std::string>& flag;
    const char* key;
    int min;
    int max;
    int& dest;
  };
  for (const IntSetting& setting : {
           IntSetting{args.threads, "threads", 1, 1024, ao.threads},
           IntSetting{args.max_sse_clients, "max-sse-clients", 0, 100000, ao.max_sse_clients},
           IntSetting{args.max_connections, "max-connections", 1, 1000000, ao.http.max_connections},
           IntSetting{args.max_connections_per_client, "max-connections-per-client", 1, 1000000,
                      ao.http.max_connections_per_client},
       }) {
    if (auto st =
            PickInt(setting.flag, setting.key, ctx.env(), setting.min, setting.max, setting.dest);
        !st) {
      return out.Fail(st.error());
    }
  }
  // The alert rules' thresholds serve GET /api/v1/alerts; every --alert-* setting is checked, as
  // the scheduler checks them, before anything is opened.
  auto alert_settings = ops::ResolveAlertSettings(args.alert_flags, ctx.env());
  if (!alert_settings) return out.Fail(alert_settings.error());
  // Each connection is a descriptor: let the cap, not the soft limit, decide.
  RaiseOpenFileLimit();

  // Signals first: every thread started below inherits the blocked mask.
  std::mutex mu;
  std::condition_variable cv;
  bool interrupted = false;  // Guarded by mu
  SignalWatcher signals([&](int signo, int n) {
    if (n == 1) spdlog::info("received {}: stopping the API server", SignalName(signo));
    std::lock_guard lock(mu);
    interrupted = true;
    cv.notify_all();
  });

  auto location = ResolveStoreLocation(ctx, sf);
  if (!location) return out.Fail(location.error());
  StoreOptions store_options;
  // On a SQLite file shared with a worker running runs flat out, the answers (webhooks, run
  // starts) must not wait behind the worker's transactions.
  store_options.write_precedence = true;
  auto stores = MakeStoreFactory(*location, store_options);
  if (!stores) return out.Fail(stores.error());
  if (auto st = OpenStoreUpFront(**stores); !st) return out.Fail(st.error());
  const BrokerOptions& broker_options = ctx.config().broker;
  auto brokers = MakeRedisBrokerFactory(broker_options);
  if (auto b = brokers->Open(); !b) {
    return out.Fail(DescribeConnectError(b.error(), broker_options.redis_url));
  }

  // Webhook secrets: FERRY_SECRET_<NAME>, then the secrets file if one is given.
  engine::EnvSecretResolver env_secrets;
  std::unique_ptr<engine::MapSecretResolver> file_secrets;
  std::vector<const engine::SecretResolver*> chain = {&env_secrets};
  auto secrets_file = PickSetting(sf.secrets_file, "secrets-file", ctx.env());
  if (secrets_file) {
    auto f = engine::LoadSecretsFile(secrets_file->text);
    if (!f) {
      return out.Fail(f.error().code,
                      secrets_file->source + " " + secrets_file->text + ": " + f.error().message);
    }
    file_secrets = std::move(*f);
    chain.push_back(file_secrets.get());
  }
  engine::ChainSecretResolver secrets(chain);

  // Operations (src/ops): /metrics with the cluster-wide values, webhook metrics, and
  // GET /api/v1/alerts evaluated on request against the shared alert state in Redis.
  ops::Metrics metrics("server");
  metrics.EnableCluster(brokers.get(), stores->get());
  const ops::AlertEvaluator evaluator(alert_settings->thresholds);
  ao.metrics = [&metrics] { return metrics.Render(); };
  ao.on_webhook = [&metrics](const std::string& workflow, int status, double seconds) {
    metrics.ObserveWebhook(workflow, status, seconds);
  };
  ao.alerts = [&evaluator](Broker& b, Store* s) { return evaluator.EvaluateJson(b, s); };
  ao.doctor = [&] {
    return Result<Json>(ops::DoctorJson(ops::RunDoctor(*brokers, stores->get())));
  };

  // Until the scheduler owns it, the server re-enqueues pending runs whose enqueue failed and
  // recovers runs whose task died.
  runs::RunSweeperOptions so;
  so.recovery.pending_age = std::chrono::seconds(5);
  so.interval = std::chrono::seconds(5);
  runs::RunSweeper sweeper(**stores, *brokers, so);
  if (!args.no_sweeper) sweeper.Start();

  ao.store_factory = stores->get();
  ao.broker_factory = brokers.get();
  ao.secrets = &secrets;
  api::ApiServer server(ao);
  auto port = server.Start();
  if (!port) {
    sweeper.Stop();
    return out.Fail(port.error());
  }
  const std::string base = "http://" + ao.host + ":" + std::to_string(*port);
  if (out.json()) {
    out.PrintJsonLine(Json{{"api", base + "/api/v1"},
                           {"port", *port},
                           {"store", (*stores)->Describe()},
                           {"redis_url", MaskRedisUrl(broker_options.redis_url)}});
  } else {
    std::string banner = std::string("ferry server ") + FERRY_VERSION + "\n";
    banner += "  Console:    " + base + "/ (sign in with a token)\n";
    banner += "  API:        " + base + "/api/v1 (bearer tokens: ferry token create NAME)\n";
    banner += "  Webhooks:   " + base + "/hooks/{workflow}\n";
    banner += "  Health:     " + base + "/healthz, " + base + "/readyz\n";
    banner += "  Store:      " + (*stores)->Describe() + "\n";
    banner += "  Redis:      " + MaskRedisUrl(broker_options.redis_url) + "\n";
    banner += "  Threads:    " + std::to_string(ao.threads) + " handlers (at most " +
              std::to_string(ao.http.max_connections) + " connections, " +
              std::to_string(ao.max_sse_clients) + " event streams)\n";
    if (secrets_file) banner += "  Secrets:    FERRY_SECRET_*, " + secrets_file->text + "\n";
    banner += "  Sweeper:    " + std::string(args.no_sweeper ? "off" : "on") + "\n";
    out.Print(banner);
  }
  std::fflush(stdout);
  spdlog::info("API server listening on {}", base);
  ops::SdNotify("READY=1\nSTATUS=serving on " + base);

  {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return interrupted; });
  }
  ops::SdNotify("STOPPING=1");
  server.Stop();
  sweeper.Stop();
  spdlog::info("API server stopped");
  return kExitOk;
}

}  // namespace ferry::cli
