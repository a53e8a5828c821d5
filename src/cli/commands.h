// The subcommands behind `ferry`. cli.cc parses argv with CLI11 into these argument structs and
// calls one Run* function, which returns the process exit code (output.h: 0 ok, 1 failure,
// 2 usage, 3 Redis unreachable or refused the credentials).
//
// Thread-safety: each Run* function runs on the main thread; the ones that start a worker also
// own a signal thread for the duration of the call.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "broker/broker.h"
#include "cli/options.h"
#include "cli/output.h"

namespace ferry::cli {

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

 private:
  GlobalFlags global_;
  EnvLookup env_;
  Output out_;
  ClientConfig config_;
  std::unique_ptr<BrokerFactory> factory_;
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
  std::string unique_key;
  int max_attempts = 3;
  std::optional<std::string> timeout;
  bool wait = false;
  std::optional<std::string> wait_timeout;
};

struct ListArgs {
  std::optional<std::string> status;
  std::optional<std::string> queue;
  int limit = 50;
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

int RunWorkerStart(Context& ctx, const WorkerFlags& flags);
int RunWorkerList(Context& ctx);
int RunTaskSubmit(Context& ctx, const SubmitArgs& args);
int RunTaskList(Context& ctx, const ListArgs& args);
int RunTaskStatus(Context& ctx, const std::string& id);
int RunTaskCancel(Context& ctx, const std::string& id);
int RunTaskRetry(Context& ctx, const std::string& id);
int RunTaskEvents(Context& ctx, const EventsArgs& args);
int RunQueueList(Context& ctx);
int RunQueueStats(Context& ctx, const std::string& queue);
int RunQueueDead(Context& ctx, const std::string& queue, int limit);
int RunVersion(Context& ctx);
int RunDemo(Context& ctx, const DemoArgs& args);

// Tables shared by commands and the demo.
Table WorkersTable(const std::vector<WorkerInfo>& workers);
Table TasksTable(const std::vector<TaskRecord>& tasks, bool unicode);

}  // namespace ferry::cli
