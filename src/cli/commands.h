// The subcommands behind `ferry`. cli.cc parses argv with CLI11 into these argument structs and
// calls one Run* function, which returns the process exit code (output.h: 0 ok, 1 failure,
// 2 usage, 3 Redis, the store or the server unreachable or refused the credentials, 4 outcome
// unknown).
//
// Thread-safety: each Run* function runs on the main thread; the ones that start a worker also
// own a signal thread for the duration of the call.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "broker/broker.h"
#include "cli/options.h"
#include "cli/output.h"
#include "core/pool.h"
#include "service/remote/remote_service.h"
#include "service/service.h"
#include "store/store.h"

namespace CLI {
class App;
}  // namespace CLI

namespace ferry::service {
struct LocalServiceOptions;
}  // namespace ferry::service

namespace ferry::cli {

// Where workflows and runs live, and (workers) where secrets come from.
struct StoreFlags {
  std::optional<std::string> store;
  std::optional<std::string> secrets_file;
  // The command may make the store (and the data directory) when there is none: `workflow apply`
  // and `token create`, the first writes a store gets. The others report a missing one.
  bool create = false;
  // --remediation-* given on the command line (worker start, scheduler start, dev): key -> text.
  std::map<std::string, std::string> remediation;
};

// `flags` with create set.
inline StoreFlags Creating(StoreFlags flags) {
  flags.create = true;
  return flags;
}

// What every command shares: the global flags, the environment and the output mode.
class Context {
 public:
  Context(GlobalFlags global, EnvLookup env);
  const GlobalFlags& global() const { return global_; }
  const EnvLookup& env() const { return env_; }
  const Output& out() const { return out_; }

  // Resolves the global settings and starts logging (stderr). Call once, before Connect().
  Status Init(const std::string& default_log_level = "warn");
  const ClientConfig& config() const { return config_; }
  // Opens one broker connection. Connection errors come back with a message that names the
  // (masked) Redis URL, e.g. "cannot connect to Redis at redis://127.0.0.1:6379: Connection
  // refused".
  Result<std::unique_ptr<Broker>> Connect();

  // Where client commands send their actions: a server's HTTP API with --server
  // (FERRY_SERVER) and --token / --token-file (FERRY_TOKEN / FERRY_TOKEN_FILE), else Redis and
  // the store named by `sf` directly (each opened when a call first needs it). The answers are
  // the same JSON either way (src/service/service.h). `local` adjusts the local service's
  // options (e.g. the alert thresholds), before the first call only.
  Result<service::Service*> Service(
      const StoreFlags& sf, const std::function<void(service::LocalServiceOptions&)>& local = {});
  // Whether --server (FERRY_SERVER) was given. Valid after Init().
  bool remote() const { return remote_.has_value(); }
  // Who this CLI is to the service: recorded in run events ("cancelled by cli").
  static service::Caller Caller();

 private:
  GlobalFlags global_;
  EnvLookup env_;
  Output out_;
  ClientConfig config_;
  std::unique_ptr<BrokerFactory> factory_;
  std::optional<service::RemoteServiceOptions> remote_;
  // The local service's connections and the service (either kind), made by Service().
  StoreFlags store_flags_;
  std::unique_ptr<Pool<Store>> stores_;
  std::unique_ptr<Pool<Broker>> brokers_;
  std::unique_ptr<service::Service> service_;
};

// Rewrites an Open() error so it names the server: used by Context::Connect and the worker.
Error DescribeConnectError(const Error& error, const std::string& redis_url);

// Starts logging once per process (InitLogging registers a named logger).
Status EnsureLogging(const LogOptions& options);

struct SubmitArgs {
  std::string kind;
  std::optional<std::string> payload;
  std::string queue = "default";
  std::optional<std::string> delay;
  std::optional<std::string> eta;
  std::optional<std::string> unique_key;  // given empty: sent, and refused by the service
  int max_attempts = 3;
  std::optional<std::string> timeout;
  bool wait = false;
  std::optional<std::string> wait_timeout;
  // --batch FILE|-: every task from a JSON-lines file (or stdin); no KIND nor per-task flags.
  std::optional<std::string> batch;
};

struct ListArgs {
  std::optional<std::string> status;
  std::optional<std::string> queue;
  std::optional<std::string> kind;
  int limit = 50;
  std::optional<std::string> cursor;  // a previous page's next_cursor
};

struct EventsArgs {
  std::string id;
  bool follow = false;
  std::optional<std::string> timeout;
};

struct DemoArgs {
  // Keep the private Redis and the worker up after the report, until Ctrl-C.
  bool keep = false;
};

int RunWorkerList(Context& ctx);
int RunTaskSubmit(Context& ctx, const SubmitArgs& args);
// `ferry task submit --batch FILE|-` (cmd_task_batch.cc).
int RunTaskSubmitBatch(Context& ctx, const std::string& file);
int RunTaskList(Context& ctx, const ListArgs& args);
int RunTaskStatus(Context& ctx, const std::string& id);
int RunTaskCancel(Context& ctx, const std::string& id);
int RunTaskRetry(Context& ctx, const std::string& id);
int RunTaskEvents(Context& ctx, const EventsArgs& args);
int RunQueueList(Context& ctx);
int RunQueueStats(Context& ctx, const std::string& queue);
int RunQueueDead(Context& ctx, const std::string& queue, int limit);
// Deletes the queue's dead letters; refuses (exit 2, saying how many) without `confirmed`.
// Retries every task dead-lettered in the queue up to now (Service::RetryDead).
int RunQueueRetry(Context& ctx, const std::string& queue);
int RunQueuePurge(Context& ctx, const std::string& queue, bool confirmed);
int RunQueueDelete(Context& ctx, const std::string& queue);
int RunVersion(Context& ctx);
int RunDemo(Context& ctx, const DemoArgs& args);

// Tables shared by commands and the demo, from the record views (src/views).
Table WorkersTable(const Json& workers);
Table TasksTable(const Json& tasks, bool unicode);
// Every field of a task view as `task status` shows it: label, text.
std::vector<std::pair<std::string, std::string>> TaskFields(const Json& task);

// --- workflows, runs and the dev stack (cmd_workflow.cc, cmd_run.cc, cmd_dev.cc) ---

struct WorkflowApplyArgs {
  std::string file;
  std::string author;
  std::string notes;
};

struct WorkflowRunArgs {
  std::string name;
  std::optional<std::string> input;  // JSON object
  std::string queue = "default";
  bool wait = false;
  std::optional<std::string> timeout;  // with --wait
};

struct RunListArgs {
  std::optional<std::string> workflow;
  std::optional<std::string> status;
  int limit = 20;
  std::optional<std::string> cursor;
};

struct RunWatchArgs {
  std::string id;
  std::optional<std::string> timeout;
};

struct RunRecoverArgs {
  std::optional<std::string> pending_age;  // default 5s
  bool dry_run = false;
};

struct DevArgs {
  std::optional<std::string> listen;
  std::optional<std::string> data_dir;
  std::optional<std::string> concurrency;
  std::optional<std::string> nice;
  std::optional<std::string> run_slot_wait;
  std::vector<std::string> handlers;  // --handler, repeatable; else FERRY_HANDLERS
};

int RunWorkflowApply(Context& ctx, const StoreFlags& sf, const WorkflowApplyArgs& args);
int RunWorkflowList(Context& ctx, const StoreFlags& sf);
int RunWorkflowShow(Context& ctx, const StoreFlags& sf, const std::string& name);
int RunWorkflowVersions(Context& ctx, const StoreFlags& sf, const std::string& name);
int RunWorkflowRun(Context& ctx, const StoreFlags& sf, const WorkflowRunArgs& args);
int RunRunList(Context& ctx, const StoreFlags& sf, const RunListArgs& args);
int RunRunCounts(Context& ctx, const StoreFlags& sf);
int RunRunShow(Context& ctx, const StoreFlags& sf, const std::string& id);
int RunRunWatch(Context& ctx, const StoreFlags& sf, const RunWatchArgs& args);
int RunRunCancel(Context& ctx, const StoreFlags& sf, const std::string& id);
int RunRunRetry(Context& ctx, const StoreFlags& sf, const std::string& id, bool latest_version);
int RunRunRecover(Context& ctx, const StoreFlags& sf, const RunRecoverArgs& args);
int RunDev(Context& ctx, const StoreFlags& sf, const DevArgs& args);
// `ferry worker start`; `sf` configures the ferry.run handler.
// `extra` (may be null): a user binary's own kinds (RunWorkerMain).
int RunWorkerStart(Context& ctx, const WorkerFlags& flags, const StoreFlags& sf,
                   const HandlerRegistry* extra);

// --- API server and tokens (cmd_server.cc, cmd_token.cc) ---

struct ServerArgs {
  // Settings by key (ops::Settings()): listen, threads, max-sse-clients, max-connections,
  // max-connections-per-client.
  std::optional<std::string> listen;
  std::optional<std::string> threads;
  std::optional<std::string> max_sse_clients;
  std::optional<std::string> max_connections;
  std::optional<std::string> max_connections_per_client;
  bool no_sweeper = false;
  std::map<std::string, std::string> alert_flags;  // --alert-* (AddAlertFlags)
};

int RunServerStart(Context& ctx, const StoreFlags& sf, const ServerArgs& args);
int RunTokenCreate(Context& ctx, const StoreFlags& sf, const std::string& name,
                   const std::string& scopes);
int RunTokenList(Context& ctx, const StoreFlags& sf);
int RunTokenRevoke(Context& ctx, const StoreFlags& sf, const std::string& id);
// "HOST:PORT" (IPv6 hosts in brackets) -> host, port.
Result<std::pair<std::string, int>> ParseListenAddress(const std::string& text);

// --- scheduler and schedules (cmd_scheduler.cc, cmd_schedule.cc) ---

// Registers `ferry scheduler start` and `ferry schedule list|pause|resume|next` on `app`.
void AddSchedulerCommands(CLI::App& app, StoreFlags& sf, SettingsGiven& given,
                          std::function<int(Context&)>& run, std::string& default_log_level);

struct ScheduleNextArgs {
  std::string expression;
  std::string timezone = "UTC";
  std::optional<std::string> from;  // ISO 8601; default now
  int count = 5;
};

int RunScheduleList(Context& ctx, const StoreFlags& sf);
int RunSchedulePause(Context& ctx, const StoreFlags& sf, const std::string& workflow, bool paused);
int RunScheduleNext(Context& ctx, const ScheduleNextArgs& args);

// The store setting (--store, else FERRY_STORE or the config file) when one is given. An empty
// --store is refused: taken as "not given" it would silently pick the default store instead.
Result<std::optional<SettingText>> PickStore(const Context& ctx, const StoreFlags& sf);
// The store location: PickStore's, else the data directory's ferry.db (directory created).
Result<std::string> ResolveStoreLocation(const Context& ctx, const StoreFlags& sf);
// Opens the store once, for the long-running commands (server, scheduler, dev): pending
// migrations are applied up front, and a store that cannot be opened stops the command at its
// start, named with its credentials masked ("cannot open the store at postgresql://u:****@...").
Status OpenStoreUpFront(StoreFactory& stores);
// Registers the `ferry.run` handler for `ferry worker start`: store from `sf`, secrets from
// FERRY_SECRET_* and --secrets-file, the rest from the worker's settings. The returned handle
// keeps what the handler uses alive; hold it until the worker has stopped.
Result<std::shared_ptr<void>> RegisterWorkerRunHandler(Context& ctx, const StoreFlags& sf,
                                                       const WorkerConfig& worker,
                                                       HandlerRegistry& registry);

// --- remediation (cmd_remediation.cc) ---

struct RemediationArgs {
  std::string id;
  std::optional<std::string> status;  // optional: given empty is refused, not read as "any"
  std::optional<std::string> workflow;
  int limit = 50;
  std::optional<std::string> cursor;
  std::string reason;
};
// Registers `ferry remediation list|show|dismiss|reopen|diff` on `app`.
void AddRemediationCommands(CLI::App& app, StoreFlags& sf, SettingsGiven& given,
                            std::function<int(Context&)>& run);
// Adds every --remediation-* option (remediation::SettingSpecs()) to `cmd`, into `flags`.
void AddRemediationFlags(CLI::App* cmd, std::map<std::string, std::string>& flags,
                         SettingsGiven& given);

// --- operations (cmd_alerts.cc, cmd_config.cc, cmd_doctor.cc; src/ops) ---

// --alert-* flags given on the command line: key ("alert-wait-time") -> text. Read by `alerts`,
// `server start` (GET /api/v1/alerts) and the scheduler (evaluation and webhook delivery).
struct OpsFlags {
  std::map<std::string, std::string> values;
};
// Adds every --alert-* option (ops::Settings()) to `cmd`, stored into `flags` (key -> text).
void AddAlertFlags(CLI::App* cmd, std::map<std::string, std::string>& flags, SettingsGiven& given);

// `ferry alerts`: evaluates the rules now (Redis + the store when one is configured).
int RunAlerts(Context& ctx, const StoreFlags& sf, const OpsFlags& flags);
// `ferry config show`: every setting's effective value and source, secrets masked.
int RunConfigShow(Context& ctx);
// `ferry doctor`: deployment checks; exit 1 when one FAILs.
int RunDoctor(Context& ctx, const StoreFlags& sf);

}  // namespace ferry::cli
