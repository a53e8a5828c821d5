#include "cli/cli.h"

#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>
#include <functional>
#include <iostream>

#include "cli/commands.h"

namespace ferry::cli {
namespace {

// An option whose absence matters (flag > env > default): stored as nullopt until given.
CLI::Option* AddOptional(CLI::App* app, const std::string& name, std::optional<std::string>& dest,
                         const std::string& help) {
  return app->add_option_function<std::string>(
      name, [&dest](const std::string& v) { dest = v; }, help);
}

}  // namespace

int Main(int argc, char** argv) {
  CLI::App app("Ferry: background tasks on Redis Streams.", "ferry");
  app.require_subcommand(1);
  app.fallthrough();  // global options may follow the subcommand: `ferry task list --json`
  app.set_help_all_flag("--help-all", "Help for every command");

  GlobalFlags global;
  AddOptional(&app, "--redis-url", global.redis_url,
              "Redis URL (env FERRY_REDIS_URL; default redis://127.0.0.1:6379)")
      ->group("Global");
  AddOptional(&app, "--prefix", global.prefix, "Redis key prefix (env FERRY_PREFIX; default ferry)")
      ->group("Global");
  AddOptional(&app, "--log-level", global.log_level,
              "trace|debug|info|warn|error|off (env FERRY_LOG_LEVEL; default info for workers, "
              "warn otherwise)")
      ->group("Global");
  AddOptional(&app, "--log-format", global.log_format,
              "text|json, logs go to stderr (env FERRY_LOG_FORMAT; default text)")
      ->group("Global");
  AddOptional(&app, "--io-timeout", global.io_timeout,
              "Redis connect/command timeout, e.g. 5s (env FERRY_IO_TIMEOUT; default 5s)")
      ->group("Global");
  app.add_flag("--json", global.json, "Machine-readable output on stdout")->group("Global");
  app.add_flag("--ascii", global.ascii, "Tables with + - | instead of box drawing")
      ->group("Global");
  app.add_flag("--no-color", global.no_color, "Never colour output (also: NO_COLOR=1)")
      ->group("Global");

  // The chosen command, run after parsing so every option has been seen.
  std::function<int(Context&)> run;
  std::string default_log_level = "warn";

  // --- worker ---
  auto* worker = app.add_subcommand("worker", "Run workers and inspect the fleet");
  worker->require_subcommand(1);
  WorkerFlags wf;
  auto* wstart = worker->add_subcommand("start", "Claim and run tasks until SIGTERM/SIGINT");
  AddOptional(wstart, "--queues", wf.queues,
              "Queues in strict priority order, e.g. high,default (env FERRY_QUEUES; default "
              "default)");
  AddOptional(wstart, "--concurrency", wf.concurrency,
              "Tasks run at once (env FERRY_CONCURRENCY; default 1)");
  AddOptional(wstart, "--prefetch", wf.prefetch,
              "Tasks claimed ahead; -1 = same as concurrency (env FERRY_PREFETCH)");
  AddOptional(wstart, "--worker-id", wf.worker_id,
              "Worker id (env FERRY_WORKER_ID; default {hostname}-{pid}-{random})");
  AddOptional(wstart, "--lease", wf.lease,
              "Lease of a running task; others reclaim it after this long without renewal "
              "(env FERRY_LEASE; default 30s)");
  AddOptional(wstart, "--drain-timeout", wf.drain_timeout,
              "On SIGTERM, how long running tasks may finish before they are handed back "
              "(env FERRY_DRAIN_TIMEOUT; default 30s)");
  AddOptional(wstart, "--default-timeout", wf.default_timeout,
              "Timeout of tasks that set none; 0 = none (env FERRY_DEFAULT_TIMEOUT; default 30m)");
  AddOptional(wstart, "--health-port", wf.health_port,
              "Port of /healthz; 0 = any free port, -1 = none (env FERRY_HEALTH_PORT; default -1)");
  AddOptional(wstart, "--backoff-base", wf.backoff_base,
              "First retry delay, doubled per attempt (env FERRY_BACKOFF_BASE; default 1s)");
  AddOptional(wstart, "--heartbeat-ttl", wf.heartbeat_ttl,
              "Worker record TTL, refreshed every third (env FERRY_HEARTBEAT_TTL; default 30s)");
  wstart->callback([&] {
    default_log_level = "info";
    run = [&](Context& ctx) { return RunWorkerStart(ctx, wf); };
  });
  worker->add_subcommand("list", "Workers, their status, counters and current tasks")
      ->callback([&] { run = RunWorkerList; });

  // --- task ---
  auto* task = app.add_subcommand("task", "Submit and inspect tasks");
  task->require_subcommand(1);
  SubmitArgs sa;
  auto* submit = task->add_subcommand("submit", "Submit a task and print its id");
  submit->add_option("KIND", sa.kind, "Handler kind: noop, echo, sleep, fail, shell, ...")
      ->required();
  AddOptional(submit, "--payload", sa.payload, "JSON payload (default {})");
  submit->add_option("--queue", sa.queue, "Queue (default default)");
  AddOptional(submit, "--delay", sa.delay, "Run after this long, e.g. 30s, 5m");
  AddOptional(submit, "--eta", sa.eta, "Run at/after this time, ISO 8601 (2026-02-17T10:30:00Z)");
  submit->add_option("--unique-key", sa.unique_key,
                     "Idempotency key: the same key within 24h returns the existing task");
  submit->add_option("--max-attempts", sa.max_attempts, "Executions before dead-lettering")
      ->check(CLI::Range(1, 1000));
  AddOptional(submit, "--timeout", sa.timeout, "Per-attempt timeout, e.g. 30s (default: worker's)");
  submit->add_flag("--wait", sa.wait, "Wait for the task to end; exit 0 only if it succeeded");
  AddOptional(submit, "--wait-timeout", sa.wait_timeout, "Give up waiting after this long");
  submit->callback([&] { run = [&](Context& ctx) { return RunTaskSubmit(ctx, sa); }; });

  ListArgs la;
  auto* list = task->add_subcommand("list", "Recent tasks, newest first");
  AddOptional(list, "--status", la.status,
              "pending|scheduled|running|retrying|succeeded|failed|cancelled (any case)");
  AddOptional(list, "--queue", la.queue, "Only this queue");
  list->add_option("--limit", la.limit, "At most this many (default 50)");
  list->callback([&] { run = [&](Context& ctx) { return RunTaskList(ctx, la); }; });

  std::string task_id;
  auto* status = task->add_subcommand("status", "Every field of one task");
  status->add_option("ID", task_id, "Task id")->required();
  status->callback([&] { run = [&](Context& ctx) { return RunTaskStatus(ctx, task_id); }; });

  auto* cancel = task->add_subcommand("cancel", "Cancel a waiting task, or stop a running one");
  cancel->add_option("ID", task_id, "Task id")->required();
  cancel->callback([&] { run = [&](Context& ctx) { return RunTaskCancel(ctx, task_id); }; });

  auto* retry = task->add_subcommand("retry", "Re-run a failed (dead-lettered) or cancelled task");
  retry->add_option("ID", task_id, "Task id")->required();
  retry->callback([&] { run = [&](Context& ctx) { return RunTaskRetry(ctx, task_id); }; });

  EventsArgs ea;
  auto* events = task->add_subcommand("events", "A task's event stream");
  events->add_option("ID", ea.id, "Task id")->required();
  events->add_flag("--follow,-f", ea.follow, "Keep printing events until the task ends");
  AddOptional(events, "--timeout", ea.timeout, "With --follow: give up after this long");
  events->callback([&] { run = [&](Context& ctx) { return RunTaskEvents(ctx, ea); }; });

  // --- queue ---
  auto* queue = app.add_subcommand("queue", "Inspect queues");
  queue->require_subcommand(1);
  queue->add_subcommand("list", "Every queue with its depths and counters")->callback([&] {
    run = RunQueueList;
  });
  std::string queue_name;
  auto* qstats = queue->add_subcommand("stats", "One queue's depths and every counter");
  qstats->add_option("QUEUE", queue_name, "Queue name")->required();
  qstats->callback([&] { run = [&](Context& ctx) { return RunQueueStats(ctx, queue_name); }; });
  int dead_limit = 50;
  auto* qdead = queue->add_subcommand("dead", "Dead-lettered tasks of a queue, newest first");
  qdead->add_option("QUEUE", queue_name, "Queue name")->required();
  qdead->add_option("--limit", dead_limit, "At most this many (default 50)");
  qdead->callback(
      [&] { run = [&](Context& ctx) { return RunQueueDead(ctx, queue_name, dead_limit); }; });

  // --- misc ---
  app.add_subcommand("version", "Print Ferry's version")->callback([&] { run = RunVersion; });
  DemoArgs da;
  auto* demo = app.add_subcommand(
      "demo", "Quick start: private Redis, a worker, example tasks, their outcomes");
  demo->add_flag("--keep", da.keep, "Keep Redis and the worker running until Ctrl-C");
  demo->callback([&] { run = [&](Context& ctx) { return RunDemo(ctx, da); }; });

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return kExitUsage;
  }
  if (!run) return kExitUsage;

  Context ctx(global, ProcessEnv());
  try {
    if (auto st = ctx.Init(default_log_level); !st) return ctx.out().Fail(st.error());
    return run(ctx);
  } catch (const std::exception& e) {
    return ctx.out().Fail(ErrorCode::kInternal, std::string("unexpected error: ") + e.what());
  }
}

}  // namespace ferry::cli
