// Settings resolution for the CLI: every setting comes from its flag, else its FERRY_* environment
// variable, else its default (DESIGN.md §2). Flags are captured as raw strings so this layer can
// validate them uniformly, name the source in errors ("--lease" vs "FERRY_LEASE"), and be unit
// tested with a fake environment.
//
// Thread-safety: pure functions; ProcessEnv() reads the process environment (getenv).
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
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

// Options every command takes. nullopt = the flag was not given.
struct GlobalFlags {
  std::optional<std::string> config;  // FERRY_CONFIG: key = value file (src/ops/config.h)
  // A Ferry server for client commands (remote mode): its URL and bearer token.
  std::optional<std::string> server;      // FERRY_SERVER
  std::optional<std::string> token;       // FERRY_TOKEN
  std::optional<std::string> token_file;  // FERRY_TOKEN_FILE
  std::optional<std::string> redis_url;   // FERRY_REDIS_URL
  std::optional<std::string> prefix;      // FERRY_PREFIX
  std::optional<std::string> log_level;   // FERRY_LOG_LEVEL
  std::optional<std::string> log_format;  // FERRY_LOG_FORMAT
  std::optional<std::string> io_timeout;  // FERRY_IO_TIMEOUT
  // Redis connection (docs/operations.md "Redis: TLS, ACL, Sentinel, Cluster").
  std::optional<std::string> redis_username;           // FERRY_REDIS_USERNAME
  std::optional<std::string> redis_tls_ca;             // FERRY_REDIS_TLS_CA
  std::optional<std::string> redis_tls_cert;           // FERRY_REDIS_TLS_CERT
  std::optional<std::string> redis_tls_key;            // FERRY_REDIS_TLS_KEY
  std::optional<std::string> redis_tls_server_name;    // FERRY_REDIS_TLS_SERVER_NAME
  std::optional<std::string> redis_tls_verify;         // FERRY_REDIS_TLS_VERIFY, yes|no
  std::optional<std::string> redis_sentinel_username;  // FERRY_REDIS_SENTINEL_USERNAME
  std::optional<std::string> redis_sentinel_password;  // FERRY_REDIS_SENTINEL_PASSWORD
  std::optional<std::string> redis_wait_replicas;      // FERRY_REDIS_WAIT_REPLICAS
  std::optional<std::string> redis_wait_timeout;       // FERRY_REDIS_WAIT_TIMEOUT
  // Retention of what Redis keeps (docs/runbook.md, Redis memory).
  std::optional<std::string> task_retention;       // FERRY_TASK_RETENTION
  std::optional<std::string> dead_retention;       // FERRY_DEAD_RETENTION
  std::optional<std::string> event_stream_length;  // FERRY_EVENT_STREAM_LENGTH
  bool json = false;
  bool ascii = false;
  bool no_color = false;
};

// `ferry worker start` options.
struct WorkerFlags {
  std::optional<std::string> queues;           // FERRY_QUEUES, "a,b" in strict priority order
  std::optional<std::string> concurrency;      // FERRY_CONCURRENCY
  std::optional<std::string> prefetch;         // FERRY_PREFETCH
  std::optional<std::string> worker_id;        // FERRY_WORKER_ID
  std::optional<std::string> lease;            // FERRY_LEASE
  std::optional<std::string> drain_timeout;    // FERRY_DRAIN_TIMEOUT
  std::optional<std::string> default_timeout;  // FERRY_DEFAULT_TIMEOUT
  std::optional<std::string> health_port;      // FERRY_HEALTH_PORT
  std::optional<std::string> health_host;      // FERRY_HEALTH_HOST, default 127.0.0.1
  std::optional<std::string> backoff_base;     // FERRY_BACKOFF_BASE
  std::optional<std::string> heartbeat_ttl;    // FERRY_HEARTBEAT_TTL
  // --handler, repeatable; else FERRY_HANDLERS (declarations separated by ';'). The signing
  // secret of http handlers is FERRY_HANDLER_SECRET only: a flag would show in `ps`.
  std::vector<std::string> handlers;
};

inline constexpr const char* kDefaultRedisUrl = "redis://127.0.0.1:6379";
inline constexpr const char* kDefaultPrefix = "ferry";

struct ClientConfig {
  BrokerOptions broker;
  LogOptions log;
};

// Kinds run by programs or HTTP services (docs/handlers.md), as `ferry worker start` and
// `ferry dev` take them.
struct HandlerDeclarations {
  std::vector<handlers::HandlerSpec> specs;
  std::string secret;  // FERRY_HANDLER_SECRET: the key of http handlers without their own
};

struct WorkerConfig {
  WorkerOptions worker;
  LogOptions log;
  HandlerDeclarations handlers;
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

// Parses an ISO 8601 UTC/offset timestamp: "2026-02-17T10:30:15Z", "2026-02-17 10:30:15.5+02:00",
// "2026-02-17" (midnight UTC). Returns epoch milliseconds.
Result<int64_t> ParseIso8601(const std::string& text);

}  // namespace ferry::cli
