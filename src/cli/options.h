// Settings resolution for the CLI: every setting comes from its flag, else its FERRY_* environment
// variable, else its default (DESIGN.md §2). Flags are captured as raw strings so this layer can
// validate them uniformly, name the source in errors ("--lease" vs "FERRY_LEASE"), and be unit
// tested with a fake environment.
//
// Thread-safety: pure functions; ProcessEnv() reads the process environment (getenv).
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "broker/broker.h"
#include "core/env.h"
#include "core/log.h"
#include "core/result.h"
#include "handlers/spec.h"
#include "worker/worker.h"

namespace ferry::cli {

// The process environment (core/env.h).
EnvLookup ProcessEnv();

// A log level in any case ("WARNING", "info"; warning = warn, fatal = critical), as spdlog names
// it.
Result<std::string> ParseLogLevelName(const std::string& text);

// A setting's text and where it came from, for error messages ("--lease", "FERRY_LEASE").
struct SettingText {
  std::string text;
  std::string source;
};

// The catalogued setting `key` (ops::Settings(), which names its flag and environment variable):
// its flag's value if given, else its environment variable's (the config file answers behind the
// environment: ops::LayeredEnv). Throws std::logic_error for a key not in the catalogue.
std::optional<SettingText> PickSetting(const std::optional<std::string>& flag, std::string_view key,
                                       const EnvLookup& env);
// PickSetting's text alone, for settings used as given (paths, addresses, names).
std::optional<std::string> PickSettingText(const std::optional<std::string>& flag,
                                           std::string_view key, const EnvLookup& env);
// "SOURCE: why" as kInvalidArgument.
tl::unexpected<Error> BadSetting(const SettingText& setting, const std::string& why);
// An integer in [min, max].
Result<int> ParseIntSetting(const SettingText& setting, int min, int max);
// A duration ("30s", "5m"); zero only when `allow_zero`.
Result<std::chrono::milliseconds> ParseDurationSetting(const SettingText& setting, bool allow_zero);
// A duration in [min, max] ("--timeout: must be from 1ms to 168h00m, not '200h'"): a bound the
// part that uses it enforces too, checked here so the message names the flag or variable.
Result<std::chrono::milliseconds> ParseDurationInRange(const SettingText& setting,
                                                       std::chrono::milliseconds min,
                                                       std::chrono::milliseconds max);
// PickSetting then ParseDurationSetting into `into`, which stays as it was when nothing is set.
Status PickDuration(const std::optional<std::string>& flag, std::string_view key,
                    const EnvLookup& env, bool allow_zero, std::chrono::milliseconds& into);
// PickDuration for a setting with a floor ("--lease: must be at least 100ms"): the minimum the
// part that uses it enforces too (worker/worker.h kMinTaskLease, ...), checked here so the
// message names the setting and comes before any connection is made.
Status PickDurationAtLeast(const std::optional<std::string>& flag, std::string_view key,
                           const EnvLookup& env, std::chrono::milliseconds min,
                           std::chrono::milliseconds& into);
// PickSetting then ParseIntSetting into `into`, which stays as it was when nothing is set.
template <typename Int>
Status PickInt(const std::optional<std::string>& flag, std::string_view key, const EnvLookup& env,
               int min, int max, Int& into) {
  auto setting = PickSetting(flag, key, env);
  if (!setting) return {};
  auto v = ParseIntSetting(*setting, min, max);
  if (!v) return Fail(v.error());
  into = *v;
  return {};
}

// Settings given as flags on this command line: key -> value (cli/flags.h records them; `ferry
// config show` reports them).
using SettingsGiven = std::map<std::string, std::string>;

// Options every command takes, each the flag of the setting of the same name in ops::Settings()
// (server, token-file, redis-url, ...). nullopt = the flag was not given.
struct GlobalFlags {
  std::optional<std::string> config;
  // A Ferry server for client commands (remote mode): its URL and bearer token.
  std::optional<std::string> server;
  std::optional<std::string> token;
  std::optional<std::string> token_file;
  std::optional<std::string> redis_url;
  std::optional<std::string> prefix;
  std::optional<std::string> log_level;
  std::optional<std::string> log_format;
  std::optional<std::string> io_timeout;
  // Redis connection (docs/operations.md "Redis: TLS, ACL, Sentinel, Cluster").
  std::optional<std::string> redis_username;
  std::optional<std::string> redis_tls_ca;
  std::optional<std::string> redis_tls_cert;
  std::optional<std::string> redis_tls_key;
  std::optional<std::string> redis_tls_server_name;
  std::optional<std::string> redis_tls_verify;
  std::optional<std::string> redis_sentinel_username;
  std::optional<std::string> redis_sentinel_password;
  std::optional<std::string> redis_wait_replicas;
  std::optional<std::string> redis_wait_timeout;
  // Retention of what Redis keeps (docs/runbook.md, Redis memory).
  std::optional<std::string> task_retention;
  std::optional<std::string> dead_retention;
  std::optional<std::string> event_stream_length;
  std::optional<std::string> max_queues;
  SettingsGiven given;  // every setting flag given, global or of the command
  bool json = false;
  bool ascii = false;
  bool no_color = false;
};

// `ferry worker start` options: the settings of the same names (ops::Settings()).
struct WorkerFlags {
  std::optional<std::string> queues;
  std::optional<std::string> concurrency;
  std::optional<std::string> prefetch;
  std::optional<std::string> nice;
  std::optional<std::string> worker_id;
  std::optional<std::string> lease;
  std::optional<std::string> drain_timeout;
  std::optional<std::string> default_timeout;
  std::optional<std::string> health_port;
  std::optional<std::string> health_host;
  std::optional<std::string> backoff_base;
  std::optional<std::string> heartbeat_ttl;
  std::optional<std::string> run_task_events;
  std::optional<std::string> run_slot_wait;
  // --handler, repeatable; else FERRY_HANDLERS (declarations separated by ';'). The signing
  // secret of http handlers is FERRY_HANDLER_SECRET only: a flag would show in `ps`.
  std::vector<std::string> handlers;
};

inline constexpr const char* kDefaultRedisUrl = "redis://127.0.0.1:6379";
inline constexpr const char* kDefaultPrefix = "ferry";

struct ClientConfig {
  BrokerOptions broker;
  LogOptions log;
  // Where broker.redis_url came from ("--redis-url", "FERRY_REDIS_URL", "REDIS_URL"); empty for
  // the default. Names the setting when Redis refuses the URL itself (a database it lacks).
  std::string redis_url_source;
};

// Kinds run by programs or HTTP services (docs/handlers.md), as `ferry worker start` and
// `ferry dev` take them.
struct HandlerDeclarations {
  std::vector<handlers::HandlerSpec> specs;
  // Where they were declared (--handler, FERRY_HANDLERS or the config file's line): named in
  // an error registering them, as in one parsing them.
  std::string source;
  std::string secret;  // FERRY_HANDLER_SECRET: the key of http handlers without their own
};

struct WorkerConfig {
  WorkerOptions worker;
  LogOptions log;
  HandlerDeclarations handlers;
  bool run_task_events = false;  // runs::RunHandlerOptions::task_events
  // runs::RunHandlerOptions::give_back_waits_over
  std::chrono::milliseconds run_slot_wait = std::chrono::seconds(5);
};

// Resolves the global options. `default_log_level` differs per command: "info" for long-running
// processes, "warn" for one-shot commands (their stdout is the product, not logs).
Result<ClientConfig> ResolveClientConfig(const GlobalFlags& flags, const EnvLookup& env,
                                         const std::string& default_log_level = "warn");
Result<WorkerConfig> ResolveWorkerConfig(const GlobalFlags& global, const WorkerFlags& flags,
                                         const EnvLookup& env);
// `--handler` flags (one declaration each), else FERRY_HANDLERS (or the config file's
// `handlers`), and FERRY_HANDLER_SECRET.
Result<HandlerDeclarations> ResolveHandlerDeclarations(const std::vector<std::string>& flags,
                                                       const EnvLookup& env);
// Registers them in `registry` (after the program's own kinds), reading `secret-env=` names
// through `env`.
Status RegisterDeclaredHandlers(const HandlerDeclarations& declared, const EnvLookup& env,
                                HandlerRegistry& registry);

// "a, b,c" -> {"a","b","c"}; each name validated, no empties, no duplicates.
Result<std::vector<std::string>> ParseQueueList(const std::string& text);

// Parses an ISO 8601 time with a zone, "2026-02-17T10:30:15Z" or "2026-02-17 10:30:15.5+02:00"
// (cron::ParseIso8601's grammar: no such date, hour, second or offset is accepted), to epoch
// milliseconds (sub-millisecond digits truncated).
Result<int64_t> ParseIso8601(const std::string& text);

}  // namespace ferry::cli
