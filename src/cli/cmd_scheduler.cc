// `ferry scheduler start`, and the registration of the `scheduler` and `schedule` nouns
// (the `schedule` commands live in cmd_schedule.cc).
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <condition_variable>
#include <initializer_list>
#include <mutex>
#include <utility>

#include "cli/commands.h"
#include "cli/flags.h"
#include "cli/signals.h"
#include "core/redis_url.h"
#include "core/time_util.h"
#include "ops/alerts.h"
#include "ops/metrics.h"
#include "ops/sd_notify.h"
#include "remediation/attempt.h"
#include "remediation/capture.h"
#include "remediation/runner.h"
#include "scheduler/scheduler.h"
#include "store/store.h"
#include "worker/health.h"

namespace ferry::cli {
namespace {

struct SchedulerFlags {
  // Settings by key (ops::Settings()): scheduler-tick, scheduler-lease, misfire-grace,
  // run-queue, scheduler-id, metrics-port, metrics-host.
  std::optional<std::string> tick;
  std::optional<std::string> lease;
  std::optional<std::string> misfire_grace;
  std::optional<std::string> run_queue;
  std::optional<std::string> id;
  std::optional<std::string> metrics_port;
  std::optional<std::string> metrics_host;
  std::map<std::string, std::string> alerts;  // --alert-* (src/ops)
};

int RunSchedulerStart(Context& ctx, const StoreFlags& sf, const SchedulerFlags& flags) {
  const Output& out = ctx.out();
  scheduler::SchedulerOptions so;
  if (auto st = PickDurationAtLeast(flags.tick, "scheduler-tick", ctx.env(), scheduler::kMinTick,
                                    so.tick);
      !st) {
    return out.Fail(st.error());
  }
  if (auto st = PickDurationAtLeast(flags.lease, "scheduler-lease", ctx.env(), scheduler::kMinLease,
                                    so.lease);
      !st) {
    return out.Fail(st.error());
  }
  if (auto st = PickDuration(flags.misfire_grace, "misfire-grace", ctx.env(), /*allow_zero=*/false,
                             so.dispatch.misfire_grace);
      !st) {
    return out.Fail(st.error());
  }
  if (auto q = PickSetting(flags.run_queue, "run-queue", ctx.env())) {
    if (auto st = ValidateQueueName(q->text); !st)
      return out.Fail(BadSetting(*q, st.error().message).value());
    so.dispatch.queue = q->text;
    so.recovery.task.queue = q->text;
  }
  if (auto id = PickSettingText(flags.id, "scheduler-id", ctx.env())) so.id = *id;

  // Alerts (src/ops): the leader evaluates the rules every alert-interval, keeping the shared
  // firing-since state in Redis current, and announces changes to the alert webhook if one is set.
  auto alerts = ops::ResolveAlertSettings(flags.alerts, ctx.env());
  if (!alerts) return out.Fail(alerts.error());
  auto evaluator = std::make_shared<const ops::AlertEvaluator>(alerts->thresholds);
  auto notifier = std::make_shared<const ops::AlertNotifier>(alerts->webhook);
  so.hooks.push_back(scheduler::PeriodicHook{
      "alerts", alerts->interval,
      [evaluator, notifier](Store& store, Broker& broker, const Clock&) -> Status {
        auto report = evaluator->Evaluate(broker, &store);
        if (!report) return Fail(report.error());
        if (auto sent = notifier->Deliver(broker, *report); !sent) return Fail(sent.error());
        return {};
      }});
  int metrics_port = -1;
  if (auto st = PickInt(flags.metrics_port, "metrics-port", ctx.env(), -1, 65535, metrics_port);
      !st) {
    return out.Fail(st.error());
  }

  // Loopback unless asked: like the worker's health port, exposing it is the operator's choice.
  const std::string metrics_host =
      PickSettingText(flags.metrics_host, "metrics-host", ctx.env()).value_or("127.0.0.1");

  auto location = ResolveStoreLocation(ctx, sf);
  if (!location) return out.Fail(location.error());
  auto stores = MakeStoreFactory(*location);
  if (!stores) return out.Fail(stores.error());
  if (auto st = OpenStoreUpFront(**stores); !st) return out.Fail(st.error());
  auto brokers = MakeRedisBrokerFactory(ctx.config().broker);

  // Remediation (src/remediation): the leader's idle scan as a duty, its attempts on threads
  // of the runner, and capture of the runs that recovery fails.
  auto rem = remediation::ResolveSettings(sf.remediation, ctx.env());
  if (!rem) return out.Fail(rem.error());
  if (auto st = remediation::CheckAttemptSettings(*rem); !st) return out.Fail(st.error());
  if (so.id.empty()) so.id = scheduler::DefaultSchedulerId();
  engine::EnvSecretResolver env_secrets;
  remediation::RunnerOptions ro;
  ro.attempt.settings = *rem;
  ro.attempt.owner = so.id;
  ro.attempt.run_queue = so.dispatch.queue;
  ro.attempt.secrets = &env_secrets;
  ro.attempt.hide_paths = remediation::HidePaths(
      *location, PickSettingText(sf.secrets_file, "secrets-file", ctx.env()).value_or(""),
      PickSettingText(ctx.global().config, "config", ctx.env()).value_or(""), "");
  remediation::Runner runner(**stores, *brokers, ro);
  so.hooks.push_back(runner.Duty());
  so.recovery.on_run_failed = remediation::CaptureHook(*rem, &env_secrets);

  // Before any thread: only the watcher's thread takes SIGTERM/SIGINT.
  std::mutex mu;
  std::condition_variable cv;
  bool stop = false;
  SignalWatcher signals([&](int signo, int n) {
    spdlog::info("{} received{}", SignalName(signo), n > 1 ? " again" : "");
    std::lock_guard lock(mu);
    stop = true;
    cv.notify_all();
  });

  scheduler::Scheduler sched(**stores, *brokers, so);
  if (auto st = sched.Start(); !st) {
    Error e = st.error();
    if (e.message.find("Redis") != std::string::npos &&
        (e.code == ErrorCode::kUnavailable || e.code == ErrorCode::kUnauthenticated)) {
      e = DescribeConnectError(e, ctx.config().broker.redis_url);
    }
    return out.Fail(e);
  }
  spdlog::info("ferry scheduler {} ({}): redis {}, store {}, tick {}, lease {}, remediation {}",
               FERRY_VERSION, sched.id(), MaskRedisUrl(ctx.config().broker.redis_url),
               (*stores)->Describe(), FormatDuration(so.tick), FormatDuration(so.lease),
               rem->enabled ? (rem->dry_run ? "on (dry run)" : "on") : "off");
  // /metrics: this scheduler's own state (cluster-wide values come from the server's /metrics).
  ops::Metrics metrics("scheduler");
  metrics.AddGauge("ferry_scheduler_leader", "1 while this scheduler holds the leader lease.",
                   [&sched] { return sched.IsLeader() ? 1.0 : 0.0; });
  auto stat = [&sched](int64_t scheduler::SchedulerStats::*field) {
    return [&sched, field] { return static_cast<double>(sched.stats().*field); };
  };
  using St = scheduler::SchedulerStats;
  metrics.AddCounter("ferry_scheduler_ticks_total", "Cron dispatch ticks run as leader.",
                     stat(&St::ticks));
  metrics.AddCounter("ferry_scheduler_runs_fired_total", "Runs created by cron triggers.",
                     stat(&St::fired));
  metrics.AddCounter("ferry_scheduler_duplicates_total",
                     "Cron occurrences another scheduler had already recorded.",
                     stat(&St::duplicates));
  metrics.AddCounter("ferry_scheduler_errors_total", "Failed ticks, duties and occurrences.",
                     stat(&St::errors));
  metrics.AddCounter("ferry_scheduler_leader_acquisitions_total",
                     "Times this scheduler became the leader.", stat(&St::acquisitions));
  metrics.AddCounter("ferry_scheduler_promoted_total", "Delayed tasks promoted by this leader.",
                     stat(&St::promoted));
  metrics.AddCounter("ferry_scheduler_runs_recovered_total",
                     "Runs re-enqueued or failed by recovery.", stat(&St::recovered));
  // GET /metrics and GET /healthz: healthy while Redis answers its lease requests (without
  // it the scheduler neither leads nor can take over), 503 once it has not for a lease.
  HealthServer metrics_server;
  const auto healthy = [&sched, lease = so.lease](Json& body) {
    const auto since = sched.SinceRedisAnswered();
    body["scheduler"] = sched.id();
    body["leader"] = sched.IsLeader();
    body["redis_answered_ms_ago"] = since.count();
    return since <= lease;
  };
  if (metrics_port >= 0) {
    auto bound = metrics_server.Start(metrics_host, metrics_port, healthy,
                                      [&metrics] { return metrics.Render(); });
    if (!bound) {
      sched.Stop();
      return out.Fail(bound.error());
    }
    const bool v6 = metrics_host.find(':') != std::string::npos;
    spdlog::info("scheduler metrics on http://{}{}{}:{}/metrics", v6 ? "[" : "", metrics_host,
                 v6 ? "]" : "", *bound);
  }
  ops::SdNotify("READY=1\nSTATUS=scheduler " + sched.id() + " running");
  {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return stop; });
  }
  ops::SdNotify("STOPPING=1");
  metrics_server.Stop();
  sched.Stop();
  runner.Stop();
  auto stats = sched.stats();
  spdlog::info("scheduler {} stopped: {} tick(s) as leader, {} run(s) fired, {} duplicate(s)",
               sched.id(), stats.ticks, stats.fired, stats.duplicates);
  return kExitOk;
}

// An option whose absence matters (flag > env > default).
CLI::Option* Optional(CLI::App* app, const std::string& name, std::optional<std::string>& dest,
                      const std::string& help) {
  return app->add_option_function<std::string>(
      name, [&dest](const std::string& v) { dest = v; }, help);
}

}  // namespace

void AddSchedulerCommands(CLI::App& app, StoreFlags& sf, SettingsGiven& given,
                          std::function<int(Context&)>& run, std::string& default_log_level) {
  // Static: CLI11 writes into these during parse, after this function returned.
  static SchedulerFlags flags;
  static ScheduleNextArgs next;
  static std::string workflow;
  auto add_store = [&](CLI::App* cmd) { AddSettingFlag(cmd, "store", sf.store, given); };

  auto* scheduler = app.add_subcommand("scheduler", "Run the cron scheduler (several may run)");
  scheduler->require_subcommand(1);
  auto* start = scheduler->add_subcommand(
      "start", "Fire cron triggers, promote delayed tasks, recover runs until SIGTERM/SIGINT");
  add_store(start);
  for (auto [key, dest] :
       std::initializer_list<std::pair<const char*, std::optional<std::string>*>>{
           {"scheduler-tick", &flags.tick},
           {"scheduler-lease", &flags.lease},
           {"misfire-grace", &flags.misfire_grace},
           {"run-queue", &flags.run_queue},
           {"scheduler-id", &flags.id},
           {"metrics-port", &flags.metrics_port},
           {"metrics-host", &flags.metrics_host}}) {
    AddSettingFlag(start, key, *dest, given);
  }
  AddAlertFlags(start, flags.alerts, given);
  AddRemediationFlags(start, sf.remediation, given);
  start->callback([&] {
    default_log_level = "info";
    run = [&sf](Context& ctx) { return RunSchedulerStart(ctx, sf, flags); };
  });

  auto* schedule = app.add_subcommand("schedule", "Inspect and control cron schedules");
  schedule->require_subcommand(1);
  auto* list = schedule->add_subcommand(
      "list", "Cron triggers: schedule, zone, next and last fire, policies, paused");
  add_store(list);
  list->callback([&] { run = [&sf](Context& ctx) { return RunScheduleList(ctx, sf); }; });
  auto* pause = schedule->add_subcommand("pause", "Stop a workflow's cron triggers from firing");
  pause->add_option("WORKFLOW", workflow, "Workflow name")->required();
  add_store(pause);
  pause->callback(
      [&] { run = [&sf](Context& ctx) { return RunSchedulePause(ctx, sf, workflow, true); }; });
  auto* resume = schedule->add_subcommand(
      "resume", "Let a workflow's cron triggers fire again (paused occurrences are not run)");
  resume->add_option("WORKFLOW", workflow, "Workflow name")->required();
  add_store(resume);
  resume->callback(
      [&] { run = [&sf](Context& ctx) { return RunSchedulePause(ctx, sf, workflow, false); }; });
  auto* nx = schedule->add_subcommand("next", "The next fire times of a cron expression");
  nx->add_option("EXPR", next.expression, "Cron expression, e.g. \"30 2 * * *\" or @hourly")
      ->required();
  nx->add_option("--timezone,--tz", next.timezone, "IANA time zone (default UTC)");
  Optional(nx, "--from", next.from, "Start after this ISO 8601 time (default now)");
  nx->add_option("--count,-n", next.count, "How many (default 5)")->check(CLI::Range(1, 10000));
  nx->callback([&] { run = [](Context& ctx) { return RunScheduleNext(ctx, next); }; });
}

}  // namespace ferry::cli
