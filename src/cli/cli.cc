#include "cli/cli.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <exception>
#include <functional>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cli/commands.h"
#include "cli/completion.h"
#include "cli/dev_endpoints.h"
#include "cli/flags.h"
#include "core/crypto.h"
#include "core/non_dumpable.h"
#include "core/suggest.h"
#include "ops/config.h"

namespace ferry::cli {
namespace {

// An option whose absence matters (flag > env > default): stored as nullopt until given.
CLI::Option* AddOptional(CLI::App* app, const std::string& name, std::optional<std::string>& dest,
                         const std::string& help) {
  return app->add_option_function<std::string>(
      name, [&dest](const std::string& v) { dest = v; }, help);
}

// The names of this process's environment variables.
std::vector<std::string> EnvironmentNames() {
  std::vector<std::string> out;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string entry = *e;
    entry.resize(std::min(entry.find('='), entry.size()));
    out.push_back(std::move(entry));
  }
  return out;
}

// `--handler`, repeatable, on every command that runs a worker (docs/handlers.md).
void AddHandlerFlag(CLI::App* app, std::vector<std::string>& dest) {
  const ops::SettingInfo* handlers = ops::FindSetting("handlers");
  app->add_option(ops::FlagOf(*handlers), dest, ops::FlagHelp(*handlers));
}

// A usage message for a command line that names no command where one is needed: a word that
// names none ("ferry task lst", with the closest command), or none at all ("ferry queue", with
// its commands); nullopt otherwise. CLI11 itself says only "A subcommand is required". Options,
// and the value of each that takes one, are skipped, wherever on the command line they are.
std::optional<std::string> MissingCommand(CLI::App& app, int argc, char** argv,
                                          const CLI::ParseError& error) {
  std::vector<CLI::App*> path = {&app};
  std::string named = "ferry";
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--") return std::nullopt;
    if (arg.size() > 1 && arg[0] == '-') {
      if (arg.find('=') != std::string::npos) continue;
      for (auto it = path.rbegin(); it != path.rend(); ++it) {
        if (const CLI::Option* opt = (*it)->get_option_no_throw(arg)) {
          if (opt->get_items_expected_min() > 0) ++i;  // its value
          break;
        }
      }
      continue;
    }
    std::vector<std::string> names;
    CLI::App* next = nullptr;
    for (CLI::App* sub : path.back()->get_subcommands({})) {
      names.push_back(sub->get_name());
      if (sub->get_name() == arg) next = sub;
    }
    if (next != nullptr) {
      path.push_back(next);
      named += " " + arg;
      continue;
    }
    // A command that takes words of its own (`task submit KIND`) is not misspelt here.
    if (path.back()->get_require_subcommand_min() == 0) return std::nullopt;
    const auto close = ClosestMatch(arg, names);
    return "unknown command '" + named + " " + arg + "'" +
           (close ? "; did you mean '" + named + " " + *close + "'?" : "") + " (`" + named +
           " --help` lists them)";
  }
  // Only CLI11's own complaint of a missing command is replaced (not, say, an unknown option).
  if (path.back()->get_require_subcommand_min() == 0 ||
      dynamic_cast<const CLI::RequiredError*>(&error) == nullptr ||
      std::string_view(error.what()).find("ubcommand") == std::string_view::npos) {
    return std::nullopt;
  }
  std::string names;
  for (CLI::App* sub : path.back()->get_subcommands({})) {
    names += (names.empty() ? "" : ", ") + sub->get_name();
  }
  return "'" + named + "' needs one of its commands: " + names + " (`" + named +
         " --help` says what each does)";
}

// A usage message for an option no command on the command line has ("ferry workflow run hello
// --inputs {}"): the option, the command it was given to, the closest option that command or
// the global ones have, and where they are listed; nullopt for any other error. CLI11 itself
// says "The following arguments were not expected: {} --inputs", the words in reverse order
// and the option's value among them.
std::optional<std::string> UnknownOption(CLI::App& app, int argc, char** argv,
                                         const CLI::ParseError& error) {
  if (dynamic_cast<const CLI::ExtrasError*>(&error) == nullptr) return std::nullopt;
  std::vector<CLI::App*> path = {&app};
  std::string named = "ferry";
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--") return std::nullopt;
    if (arg.size() < 2 || arg[0] != '-') {
      for (CLI::App* sub : path.back()->get_subcommands({})) {
        if (sub->get_name() == arg) {
          path.push_back(sub);
          named += " " + arg;
          break;
        }
      }
      continue;  // a command's own word, or a value
    }
    const std::string name = arg.substr(0, arg.find('='));
    const CLI::Option* opt = nullptr;
    for (auto it = path.rbegin(); it != path.rend() && opt == nullptr; ++it) {
      opt = (*it)->get_option_no_throw(name);
    }
    if (opt != nullptr) {
      if (arg.find('=') == std::string::npos && opt->get_items_expected_min() > 0) ++i;
      continue;
    }
    std::vector<std::string> known;
    for (CLI::App* cmd : path) {
      for (const CLI::Option* o : cmd->get_options()) {
        for (const auto& l : o->get_lnames()) known.push_back("--" + l);
      }
    }
    const auto close = ClosestMatch(name, known);
    return "unknown option '" + name + "' for '" + named + "'" +
           (close ? "; did you mean '" + *close + "'?" : "") + " (`" + named +
           " --help` lists its options)";
  }
  return std::nullopt;
}

}  // namespace

int Main(int argc, char** argv, const HandlerRegistry* extra) {
  // Before anything holds a secret: the programs Ferry runs (shell nodes and tasks, exec
  // handlers) run as this user and must not read this process's environment (docs/api.md).
  MarkNonDumpable();
  CLI::App app("Ferry: background tasks on Redis Streams.", "ferry");
  app.require_subcommand(1);
  app.fallthrough();  // global options may follow the subcommand: `ferry task list --json`
  app.set_help_all_flag("--help-all", "Help for every command");
  // Usage errors read as every other error: "ferry: <message>" (docs/cli.md), then the hint.
  app.failure_message([](const CLI::App*, const CLI::Error& e) {
    return "ferry: " + std::string(e.what()) + "\nRun with --help for more information.\n";
  });

  GlobalFlags global;
  // Every setting's flag, help, variable and default come from its entry in ops::Settings().
  auto setting = [&global](CLI::App* cmd, std::string_view key, std::optional<std::string>& dest) {
    return AddSettingFlag(cmd, key, dest, global.given);
  };
  using SettingList = std::initializer_list<std::pair<const char*, std::optional<std::string>*>>;
  auto settings = [&](CLI::App* cmd, const char* group, SettingList list) {
    for (auto [key, dest] : list) setting(cmd, key, *dest)->group(group);
  };
  settings(&app, "Global",
           {{"redis-url", &global.redis_url},
            {"prefix", &global.prefix},
            {"log-level", &global.log_level},
            {"log-format", &global.log_format},
            {"io-timeout", &global.io_timeout},
            {"config", &global.config}});
  settings(&app, "Redis connection",
           {{"redis-username", &global.redis_username},
            {"redis-tls-ca", &global.redis_tls_ca},
            {"redis-tls-cert", &global.redis_tls_cert},
            {"redis-tls-key", &global.redis_tls_key},
            {"redis-tls-server-name", &global.redis_tls_server_name},
            {"redis-tls-verify", &global.redis_tls_verify},
            {"redis-sentinel-username", &global.redis_sentinel_username},
            {"redis-sentinel-password", &global.redis_sentinel_password},
            {"redis-wait-replicas", &global.redis_wait_replicas},
            {"redis-wait-timeout", &global.redis_wait_timeout}});
  settings(&app, "Retention",
           {{"task-retention", &global.task_retention},
            {"dead-retention", &global.dead_retention},
            {"event-stream-length", &global.event_stream_length},
            {"max-queues", &global.max_queues}});
  settings(
      &app, "Remote",
      {{"server", &global.server}, {"token", &global.token}, {"token-file", &global.token_file}});
  app.add_flag("--json", global.json, "Machine-readable output on stdout")->group("Global");
  app.add_flag("--ascii", global.ascii, "Tables with + - | instead of box drawing")
      ->group("Global");
  app.add_flag("--no-color", global.no_color, "Never colour output (also: NO_COLOR=1)")
      ->group("Global");

  // The chosen command, run after parsing so every option has been seen.
  std::function<int(Context&)> run;
  std::string default_log_level = "warn";

  StoreFlags sf;  // workflow/run commands, `worker start` and `dev`

  // --- worker ---
  auto* worker = app.add_subcommand("worker", "Run workers and inspect the fleet");
  worker->require_subcommand(1);
  WorkerFlags wf;
  auto* wstart = worker->add_subcommand("start", "Claim and run tasks until SIGTERM/SIGINT");
  setting(wstart, "queues", wf.queues);
  setting(wstart, "concurrency", wf.concurrency);
  setting(wstart, "prefetch", wf.prefetch);
  setting(wstart, "nice", wf.nice);
  setting(wstart, "worker-id", wf.worker_id);
  setting(wstart, "lease", wf.lease);
  setting(wstart, "drain-timeout", wf.drain_timeout);
  setting(wstart, "default-timeout", wf.default_timeout);
  setting(wstart, "health-port", wf.health_port);
  setting(wstart, "health-host", wf.health_host);
  setting(wstart, "backoff-base", wf.backoff_base);
  setting(wstart, "heartbeat-ttl", wf.heartbeat_ttl);
  setting(wstart, "run-task-events", wf.run_task_events);
  setting(wstart, "run-slot-wait", wf.run_slot_wait);
  AddHandlerFlag(wstart, wf.handlers);
  setting(wstart, "store", sf.store);
  setting(wstart, "secrets-file", sf.secrets_file);
  AddRemediationFlags(wstart, sf.remediation, global.given);
  wstart->callback([&] {
    default_log_level = "info";
    run = [&](Context& ctx) { return RunWorkerStart(ctx, wf, sf, extra); };
  });
  auto* wklist =
      worker->add_subcommand("list", "Workers, their status, counters and current tasks");
  wklist->callback([&] { run = RunWorkerList; });

  // --- task ---
  auto* task = app.add_subcommand("task", "Submit and inspect tasks");
  task->require_subcommand(1);
  SubmitArgs sa;
  auto* submit = task->add_subcommand("submit", "Submit a task and print its id");
  // The options that describe one task: --batch takes all of them from its lines instead.
  std::vector<CLI::Option*> one_task = {
      submit->add_option("KIND", sa.kind, "Handler kind: noop, echo, sleep, fail, shell, ..."),
      AddOptional(submit, "--payload", sa.payload, "JSON payload (default {})"),
      submit->add_option("--queue", sa.queue, "Queue (default default)"),
      AddOptional(submit, "--delay", sa.delay, "Run after this long, e.g. 30s, 5m"),
      AddOptional(submit, "--eta", sa.eta,
                  "Run at/after this time, ISO 8601 (2026-02-17T10:30:00Z)"),
      AddOptional(submit, "--unique-key", sa.unique_key,
                  "Idempotency key: the same key within 24h returns the existing task"),
      submit->add_option("--max-attempts", sa.max_attempts, "Executions before dead-lettering")
          ->check(CLI::Range(1, 1000)),
      AddOptional(submit, "--timeout", sa.timeout,
                  "Per-attempt timeout, e.g. 30s (default: worker's)"),
      submit->add_flag("--wait", sa.wait, "Wait for the task to end; exit 0 only if it succeeded"),
      AddOptional(submit, "--wait-timeout", sa.wait_timeout, "Give up waiting after this long")};
  AddOptional(submit, "--batch", sa.batch,
              "FILE of tasks, one JSON object per line with the fields of POST /api/v1/tasks "
              "(- = stdin); all are checked before any is sent");
  submit->callback([&, one_task] {
    if (sa.batch) {
      for (const CLI::Option* o : one_task) {
        if (o->count() > 0) {
          throw CLI::ValidationError(
              o->get_name(), "--batch takes every task from its lines; drop " + o->get_name());
        }
      }
      run = [&](Context& ctx) { return RunTaskSubmitBatch(ctx, *sa.batch); };
      return;
    }
    if (sa.kind.empty()) throw CLI::RequiredError("KIND (or --batch FILE)");
    run = [&](Context& ctx) { return RunTaskSubmit(ctx, sa); };
  });

  ListArgs la;
  auto* list = task->add_subcommand("list", "Recent tasks, newest first");
  AddOptional(list, "--status", la.status,
              "pending|scheduled|running|retrying|succeeded|failed|cancelled (any case)");
  AddOptional(list, "--queue", la.queue, "Only this queue");
  AddOptional(list, "--kind", la.kind, "Only tasks of this kind");
  AddLimitFlag(list, "--limit", la.limit);
  AddOptional(list, "--cursor", la.cursor, "Go on where a previous list stopped (it prints this)");
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
  auto* queue = app.add_subcommand(
      "queue", "Inspect queues; retry or purge their dead letters; delete empty ones");
  queue->require_subcommand(1);
  auto* qlist = queue->add_subcommand("list", "Every queue with its depths and counters");
  qlist->callback([&] { run = RunQueueList; });
  std::string queue_name;
  auto* qstats = queue->add_subcommand("stats", "One queue's depths and every counter");
  qstats->add_option("QUEUE", queue_name, "Queue name")->required();
  qstats->callback([&] { run = [&](Context& ctx) { return RunQueueStats(ctx, queue_name); }; });
  int dead_limit = 50;
  auto* qdead = queue->add_subcommand("dead", "Dead-lettered tasks of a queue, newest first");
  qdead->add_option("QUEUE", queue_name, "Queue name")->required();
  AddLimitFlag(qdead, "--limit", dead_limit);
  qdead->callback(
      [&] { run = [&](Context& ctx) { return RunQueueDead(ctx, queue_name, dead_limit); }; });
  auto* qretry = queue->add_subcommand(
      "retry", "Re-run every dead-lettered task of a queue, with fresh attempts");
  qretry->add_option("QUEUE", queue_name, "Queue name")->required();
  qretry->callback([&] { run = [&](Context& ctx) { return RunQueueRetry(ctx, queue_name); }; });
  bool purge_yes = false;
  auto* qpurge = queue->add_subcommand(
      "purge", "Delete a queue's dead-lettered tasks for good (records and events)");
  qpurge->add_option("QUEUE", queue_name, "Queue name")->required();
  qpurge->add_flag("--yes", purge_yes, "Confirm the deletion (without it, only says how many)");
  qpurge->callback(
      [&] { run = [&](Context& ctx) { return RunQueuePurge(ctx, queue_name, purge_yes); }; });
  auto* qdelete = queue->add_subcommand(
      "delete", "Forget a queue no live worker serves and that holds no unfinished or dead task");
  qdelete->add_option("QUEUE", queue_name, "Queue name")->required();
  qdelete->callback([&] { run = [&](Context& ctx) { return RunQueueDelete(ctx, queue_name); }; });

  // --- workflow / run / dev (cmd_workflow.cc, cmd_run.cc, cmd_dev.cc) ---
  auto add_store = [&](CLI::App* cmd) { setting(cmd, "store", sf.store); };
  auto* workflow = app.add_subcommand("workflow", "Apply, inspect and run workflows");
  workflow->require_subcommand(1);
  WorkflowApplyArgs wa;
  auto* wapply = workflow->add_subcommand("apply", "Validate a definition and store a new version");
  wapply->add_option("FILE", wa.file, "YAML or JSON definition")->required();
  wapply->add_option("--author", wa.author, "Recorded with the version");
  wapply->add_option("--notes", wa.notes, "Recorded with the version");
  add_store(wapply);
  wapply->callback([&] { run = [&](Context& ctx) { return RunWorkflowApply(ctx, sf, wa); }; });
  auto* wlist = workflow->add_subcommand("list", "Workflows with their latest run");
  add_store(wlist);
  wlist->callback([&] { run = [&](Context& ctx) { return RunWorkflowList(ctx, sf); }; });
  std::string wf_name;
  auto* wshow = workflow->add_subcommand("show", "A workflow's definition and its recent runs");
  wshow->add_option("NAME", wf_name, "Workflow name")->required();
  add_store(wshow);
  wshow->callback([&] { run = [&](Context& ctx) { return RunWorkflowShow(ctx, sf, wf_name); }; });
  auto* wversions = workflow->add_subcommand("versions", "A workflow's versions, newest first");
  wversions->add_option("NAME", wf_name, "Workflow name")->required();
  add_store(wversions);
  wversions->callback(
      [&] { run = [&](Context& ctx) { return RunWorkflowVersions(ctx, sf, wf_name); }; });
  WorkflowRunArgs wr;
  auto* wrun = workflow->add_subcommand("run", "Start a run and print its id");
  wrun->add_option("NAME", wr.name, "Workflow name")->required();
  AddOptional(wrun, "--input", wr.input, "Inputs, a JSON object");
  wrun->add_option("--queue", wr.queue, "Queue of the run's task (default default)");
  wrun->add_flag("--wait", wr.wait, "Wait for the run to end; exit 0 only if it succeeded");
  AddOptional(wrun, "--timeout", wr.timeout, "With --wait: give up after this long, e.g. 60s");
  add_store(wrun);
  wrun->callback([&] { run = [&](Context& ctx) { return RunWorkflowRun(ctx, sf, wr); }; });

  auto* runcmd = app.add_subcommand("run", "Inspect, follow, cancel, retry and recover runs");
  runcmd->require_subcommand(1);
  RunListArgs rl;
  auto* rlist = runcmd->add_subcommand("list", "Recent runs, newest first");
  AddOptional(rlist, "--workflow", rl.workflow, "Only this workflow's runs");
  AddOptional(rlist, "--status", rl.status,
              "pending|running|succeeded|failed|cancelled (any case)");
  AddLimitFlag(rlist, "--limit", rl.limit);
  AddOptional(rlist, "--cursor", rl.cursor, "Go on where a previous list stopped (it prints this)");
  add_store(rlist);
  rlist->callback([&] { run = [&](Context& ctx) { return RunRunList(ctx, sf, rl); }; });
  auto* rcounts = runcmd->add_subcommand("counts", "How many runs are in each status");
  add_store(rcounts);
  rcounts->callback([&] { run = [&](Context& ctx) { return RunRunCounts(ctx, sf); }; });
  std::string run_id;
  auto* rshow = runcmd->add_subcommand("show", "A run with its steps");
  rshow->add_option("ID", run_id, "Run id")->required();
  add_store(rshow);
  rshow->callback([&] { run = [&](Context& ctx) { return RunRunShow(ctx, sf, run_id); }; });
  RunWatchArgs rw;
  auto* rwatch = runcmd->add_subcommand("watch", "Follow a run's events until it ends");
  rwatch->add_option("ID", rw.id, "Run id")->required();
  AddOptional(rwatch, "--timeout", rw.timeout, "Give up after this long");
  add_store(rwatch);
  rwatch->callback([&] { run = [&](Context& ctx) { return RunRunWatch(ctx, sf, rw); }; });
  auto* rcancel = runcmd->add_subcommand("cancel", "Cancel a pending or running run");
  rcancel->add_option("ID", run_id, "Run id")->required();
  add_store(rcancel);
  rcancel->callback([&] { run = [&](Context& ctx) { return RunRunCancel(ctx, sf, run_id); }; });
  auto* rretry = runcmd->add_subcommand("retry", "Start a new run like a failed or cancelled one");
  rretry->add_option("ID", run_id, "Run id")->required();
  bool latest_version = false;
  rretry->add_flag("--latest-version", latest_version,
                   "Run the workflow's current version instead of the run's own (after a fix)");
  add_store(rretry);
  rretry->callback(
      [&] { run = [&](Context& ctx) { return RunRunRetry(ctx, sf, run_id, latest_version); }; });
  RunRecoverArgs rr;
  auto* rrecover = runcmd->add_subcommand(
      "recover", "Enqueue stranded pending runs and take over runs whose task is gone");
  AddOptional(rrecover, "--pending-age", rr.pending_age,
              "Pending runs older than this are checked (default 5s)");
  rrecover->add_flag("--dry-run", rr.dry_run, "Say what would be done, change nothing");
  add_store(rrecover);
  rrecover->callback([&] { run = [&](Context& ctx) { return RunRunRecover(ctx, sf, rr); }; });

  DevArgs dv;
  auto* dev = app.add_subcommand(
      "dev", "Everything in one process: API, worker, sweeper, SQLite, a private Redis");
  setting(dev, "listen", dv.listen);
  setting(dev, "data-dir", dv.data_dir);
  setting(dev, "concurrency", dv.concurrency);
  setting(dev, "nice", dv.nice);
  setting(dev, "run-slot-wait", dv.run_slot_wait);
  AddHandlerFlag(dev, dv.handlers);
  setting(dev, "secrets-file", sf.secrets_file);
  add_store(dev);
  AddRemediationFlags(dev, sf.remediation, global.given);
  dev->callback([&] {
    default_log_level = "info";
    run = [&](Context& ctx) { return RunDev(ctx, sf, dv); };
  });

  // --- server / token (cmd_server.cc, cmd_token.cc) ---
  ServerArgs sv;
  auto* server = app.add_subcommand("server", "Run the HTTP API server");
  server->require_subcommand(1);
  auto* sstart = server->add_subcommand(
      "start", "HTTP API, webhooks and live run events until SIGTERM/SIGINT (bearer-token auth)");
  setting(sstart, "listen", sv.listen);
  setting(sstart, "threads", sv.threads);
  setting(sstart, "max-sse-clients", sv.max_sse_clients);
  setting(sstart, "max-connections", sv.max_connections);
  setting(sstart, "max-connections-per-client", sv.max_connections_per_client);
  sstart->add_flag("--no-sweeper", sv.no_sweeper,
                   "Do not re-enqueue stranded pending runs from this process");
  setting(sstart, "secrets-file", sf.secrets_file);
  add_store(sstart);
  sstart->callback([&] {
    default_log_level = "info";
    run = [&](Context& ctx) { return RunServerStart(ctx, sf, sv); };
  });

  auto* token = app.add_subcommand("token", "API bearer tokens (stored as SHA-256 hashes)");
  token->require_subcommand(1);
  std::string token_arg;
  auto* tcreate = token->add_subcommand("create", "Create a token and print its secret once");
  tcreate->add_option("NAME", token_arg, "What the token is for")->required();
  std::string token_scopes = "run";
  tcreate->add_option("--scopes", token_scopes,
                      "What it may do: read, run, apply, admin, secret:NAME, comma-separated "
                      "(default run)");
  add_store(tcreate);
  tcreate->callback([&] {
    run = [&](Context& ctx) { return RunTokenCreate(ctx, sf, token_arg, token_scopes); };
  });
  auto* tlist =
      token->add_subcommand("list", "Tokens with their last use; secrets are never shown");
  add_store(tlist);
  tlist->callback([&] { run = [&](Context& ctx) { return RunTokenList(ctx, sf); }; });
  auto* trevoke = token->add_subcommand("revoke", "Revoke a token: requests with it get 401");
  trevoke->add_option("ID", token_arg, "Token id (ferry token list)")->required();
  add_store(trevoke);
  trevoke->callback(
      [&] { run = [&](Context& ctx) { return RunTokenRevoke(ctx, sf, token_arg); }; });

  // --- scheduler / schedule (cmd_scheduler.cc, cmd_schedule.cc) ---
  AddSchedulerCommands(app, sf, global.given, run, default_log_level);

  // --- remediation (cmd_remediation.cc) ---
  AddRemediationCommands(app, sf, global.given, run);

  // --- operations (cmd_alerts.cc, cmd_config.cc, cmd_doctor.cc) ---
  OpsFlags opsf;
  AddAlertFlags(sstart, sv.alert_flags, global.given);
  auto* alerts = app.add_subcommand(
      "alerts", "Evaluate the alert rules now: what fires and since when (exit 1 if any fires)");
  AddAlertFlags(alerts, opsf.values, global.given);
  add_store(alerts);
  alerts->callback([&] { run = [&](Context& ctx) { return RunAlerts(ctx, sf, opsf); }; });
  auto* config = app.add_subcommand("config", "Inspect the configuration");
  config->require_subcommand(1);
  auto* cshow = config->add_subcommand(
      "show", "Every setting's effective value and where it came from (secrets masked)");
  add_store(cshow);
  cshow->callback([&] { run = [&](Context& ctx) { return RunConfigShow(ctx); }; });
  auto* doctor = app.add_subcommand(
      "doctor",
      "Check Redis (version, AOF, eviction, TLS, ACL user, Sentinel, Cluster), clocks, workers and "
      "the store");
  add_store(doctor);
  doctor->callback([&] { run = [&](Context& ctx) { return RunDoctor(ctx, sf); }; });

  // --- misc ---
  app.add_subcommand("version", "Print Ferry's version")->callback([&] { run = RunVersion; });
  std::string shell;
  auto* completion = app.add_subcommand(
      "completion", "Print a shell completion script (bash: source <(ferry completion bash))");
  completion->add_option("SHELL", shell, "bash or zsh")
      ->required()
      ->check(CLI::IsMember({"bash", "zsh"}));
  completion->callback([&] {
    run = [&](Context& ctx) {
      ctx.out().Print(CompletionScript(app, shell));
      return kExitOk;
    };
  });
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
    auto unknown = UnknownOption(app, argc, argv, e);
    if (!unknown) unknown = MissingCommand(app, argc, argv, e);
    std::string message = unknown ? *unknown : e.what();
    if (unknown) {
      std::fprintf(stderr, "ferry: %s\n", unknown->c_str());
    } else {
      app.exit(e);
    }
    // Scripts that asked for --json get the usage error in the shape of every other error.
    for (int i = 1; i < argc; ++i) {
      if (std::string_view(argv[i]) == "--json") {
        std::printf("%s\n", DumpJson(Json{{"error",
                                           {{"code", ErrorCodeName(ErrorCode::kInvalidArgument)},
                                            {"message", message}}}})
                                .c_str());
        break;
      }
    }
    return kExitUsage;
  }
  if (!run) return kExitUsage;
  // The commands that work through a server's API (--server): they act through the service
  // (src/service). The others run Ferry's processes or need Redis and the store directly.
  std::vector<CLI::App*> with_server = {
      wklist, submit, list,    status, cancel,  retry, events,    qlist,  qstats, qdead,
      qretry, qpurge, qdelete, wapply, wlist,   wshow, wversions, wrun,   rlist,  rcounts,
      rshow,  rwatch, rcancel, rretry, tcreate, tlist, trevoke,   alerts, doctor};
  // `schedule list|pause|resume` (added by AddSchedulerCommands).
  for (const char* name : {"list", "pause", "resume"}) {
    with_server.push_back(app.get_subcommand("schedule")->get_subcommand(name));
  }
  for (const char* name : {"list", "show", "dismiss", "reopen", "diff"}) {
    with_server.push_back(app.get_subcommand("remediation")->get_subcommand(name));
  }
  // And those that need neither a server nor Redis nor the store: --server changes nothing.
  for (CLI::App* cmd : {app.get_subcommand("schedule")->get_subcommand("next"),
                        app.get_subcommand("version"), app.get_subcommand("completion")}) {
    with_server.push_back(cmd);
  }
  const bool works_with_server = std::any_of(with_server.begin(), with_server.end(),
                                             [](const CLI::App* cmd) { return cmd->parsed(); });

  // The config file sits behind the environment: every FERRY_* fallback also reads it.
  EnvLookup env = ProcessEnv();
  auto config_file = ops::LoadConfigFrom(global.config, env);
  if (config_file) env = ops::LayeredEnv(env, *config_file);
  // Behind both, a running `ferry dev` in this folder (or FERRY_DATA_DIR): cli/dev_endpoints.h.
  std::string dev_hint;
  if (config_file && !dev->parsed() && UsesDefaultRedis(global, env)) {
    if (auto found = FindDevEndpoints(env, &dev_hint)) env = WithDevEndpoints(env, *found);
  }
  Context ctx(global, env);
  if (!config_file) return ctx.out().Fail(config_file.error());
  if (!dev_hint.empty()) ctx.out().Message(dev_hint);
  try {
    if (auto st = ctx.Init(default_log_level); !st) return ctx.out().Fail(st.error());
    // FERRY_SERVER in the environment only concerns client commands; --server on another
    // command is a mistake worth naming.
    if (ctx.remote() && !works_with_server && global.server) {
      std::string name;
      for (const CLI::App* cmd = &app; cmd != nullptr;) {
        auto subs = cmd->get_subcommands();
        cmd = subs.empty() ? nullptr : subs.front();
        if (cmd != nullptr) name += (name.empty() ? "" : " ") + cmd->get_name();
      }
      return ctx.out().Fail(ErrorCode::kInvalidArgument,
                            "`ferry " + name +
                                "` needs Redis and the store directly; it does not work with "
                                "--server (FERRY_SERVER). Client commands that do: task, queue, "
                                "worker list, workflow, run (but run recover), schedule list, "
                                "pause and resume, token, remediation, alerts, doctor");
    }
    if (*config_file) {
      for (const auto& key : (*config_file)->unknown_keys) {
        const std::string nearest = ops::NearestKey(key);
        spdlog::warn("config file {}: unknown key '{}' ({})", (*config_file)->path, key,
                     nearest.empty() ? "ferry config show lists the known ones"
                                     : "did you mean '" + nearest + "'?");
      }
    }
    for (const auto& warning : ops::MistypedVariables(EnvironmentNames())) {
      spdlog::warn("{}", warning);
    }
    // Every command but `worker start` may hash (API tokens, workflow checksums, alert
    // signatures, remediation fingerprints): without libcrypto it fails here, naming the
    // package, rather than stopping at its first hash. A worker loads it on its first run or
    // signed delivery, and checks there (it stays out of an idle worker's memory).
    if (!wstart->parsed()) {
      if (auto crypto = CryptoAvailable(); !crypto) return ctx.out().Fail(crypto.error());
    }
    return run(ctx);
  } catch (const std::exception& e) {
    return ctx.out().Fail(ErrorCode::kInternal, std::string("unexpected error: ") + e.what());
  }
}

}  // namespace ferry::cli
