#include "cli/options.h"

#include <cctype>
#include <charconv>
#include <cstdlib>
#include <fstream>
#include <set>
#include <stdexcept>

#include "core/mask.h"
#include "core/redis_url.h"
#include "core/time_util.h"
#include "cron/cron.h"
#include "handlers/register.h"
#include "ops/config.h"

namespace ferry::cli {
namespace {

std::string Trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(" \t");
  return s.substr(b, e - b + 1);
}

Result<bool> ParseYesNo(const SettingText& raw) {
  static const std::set<std::string> kYes = {"yes", "true", "on", "1"};
  static const std::set<std::string> kNo = {"no", "false", "off", "0"};
  if (kYes.count(raw.text)) return true;
  if (kNo.count(raw.text)) return false;
  return BadSetting(raw, "expected yes or no, not '" + raw.text + "'");
}

// A file named by a setting must be readable now, not at the first reconnect.
Status RequireFile(const SettingText& raw) {
  std::ifstream f(raw.text);
  if (!f) return BadSetting(raw, "cannot read '" + raw.text + "'");
  return {};
}

// The Redis connection settings beyond the URL: one block per setting.
Status ResolveRedisConnect(const GlobalFlags& flags, const EnvLookup& env, BrokerOptions& b) {
  RedisConnectOptions& c = b.redis;
  if (auto r = PickSetting(flags.redis_username, "redis-username", env)) {
    c.username = r->text;
  }
  if (auto r = PickSetting(flags.redis_tls_ca, "redis-tls-ca", env)) {
    if (auto st = RequireFile(*r); !st) return st;
    c.tls.ca_file = r->text;
  }
  if (auto r = PickSetting(flags.redis_tls_cert, "redis-tls-cert", env)) {
    if (auto st = RequireFile(*r); !st) return st;
    c.tls.cert_file = r->text;
  }
  if (auto r = PickSetting(flags.redis_tls_key, "redis-tls-key", env)) {
    if (auto st = RequireFile(*r); !st) return st;
    c.tls.key_file = r->text;
  }
  if (auto r = PickSetting(flags.redis_tls_server_name, "redis-tls-server-name", env)) {
    if (r->text.empty() || r->text.find_first_of(" \t/") != std::string::npos) {
      return BadSetting(*r, "expected a host name, e.g. redis.example.com");
    }
    c.tls.server_name = r->text;
  }
  if (auto r = PickSetting(flags.redis_tls_verify, "redis-tls-verify", env)) {
    auto v = ParseYesNo(*r);
    if (!v) return Fail(v.error());
    c.tls.verify = *v;
  }
  if (auto r = PickSetting(flags.redis_sentinel_username, "redis-sentinel-username", env)) {
    c.sentinel_username = r->text;
  }
  if (auto r = PickSetting(flags.redis_sentinel_password, "redis-sentinel-password", env)) {
    c.sentinel_password = r->text;
  }
  if (auto st =
          PickInt(flags.redis_wait_replicas, "redis-wait-replicas", env, 0, 100, b.wait_replicas);
      !st)
    return Fail(st.error());
  if (auto st = PickDuration(flags.redis_wait_timeout, "redis-wait-timeout", env,
                             /*allow_zero=*/false, b.wait_timeout);
      !st) {
    return Fail(st.error());
  }
  // The settings must fit the URL (TLS files need rediss://, ...): say so now, naming both.
  if (auto ep = ResolveRedisEndpoint(b.redis_url, c); !ep) {
    return Fail(ErrorCode::kInvalidArgument, ep.error().message);
  }
  return {};
}

}  // namespace

Result<std::string> ParseLogLevelName(const std::string& text) {
  // Any case, and Python logging's names (WARNING, FATAL) as environment files of Celery and
  // orbiter deployments set them.
  std::string level;
  for (char c : text) level += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (level == "warning") level = "warn";
  if (level == "fatal") level = "critical";
  static const std::set<std::string> kLevels = {"trace", "debug",    "info", "warn",
                                                "error", "critical", "off"};
  if (!kLevels.count(level)) {
    return Fail(ErrorCode::kInvalidArgument,
                "log level must be trace, debug, info, warn(ing), error, critical or off (any "
                "case), not '" +
                    text + "'");
  }
  return level;
}

EnvLookup ProcessEnv() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());
    if (v == nullptr || *v == '\0') return std::nullopt;
    return std::string(v);
  };
}

std::optional<SettingText> PickSetting(const std::optional<std::string>& flag, std::string_view key,
                                       const EnvLookup& env) {
  const ops::SettingInfo* setting = ops::FindSetting(key);
  if (setting == nullptr) throw std::logic_error("no setting " + std::string(key));
  if (flag) return SettingText{*flag, ops::FlagOf(*setting)};
  const std::string var = ops::EnvNameOf(key);
  if (auto v = env(var)) return SettingText{*v, var};
  return std::nullopt;
}

std::optional<std::string> PickSettingText(const std::optional<std::string>& flag,
                                           std::string_view key, const EnvLookup& env) {
  if (auto v = PickSetting(flag, key, env)) return std::move(v->text);
  return std::nullopt;
}

tl::unexpected<Error> BadSetting(const SettingText& setting, const std::string& why) {
  return Fail(ErrorCode::kInvalidArgument, setting.source + ": " + why);
}

Result<int> ParseIntSetting(const SettingText& setting, int min, int max) {
  int v = 0;
  const char* b = setting.text.data();
  const char* e = b + setting.text.size();
  auto [p, ec] = std::from_chars(b, e, v);
  if (setting.text.empty() || ec != std::errc() || p != e || v < min || v > max) {
    return BadSetting(setting, "expected an integer from " + std::to_string(min) + " to " +
                                   std::to_string(max) + ", not '" + setting.text + "'");
  }
  return v;
}

Result<std::chrono::milliseconds> ParseDurationSetting(const SettingText& setting,
                                                       bool allow_zero) {
  auto d = ParseDuration(setting.text);
  if (!d) return BadSetting(setting, d.error().message);
  if (!allow_zero && d->count() == 0) return BadSetting(setting, "must be greater than zero");
  return *d;
}

Result<std::chrono::milliseconds> ParseDurationInRange(const SettingText& setting,
                                                       std::chrono::milliseconds min,
                                                       std::chrono::milliseconds max) {
  auto d = ParseDurationSetting(setting, /*allow_zero=*/true);
  if (!d) return Fail(d.error());
  if (*d < min || *d > max) {
    return BadSetting(setting, "must be from " + FormatDuration(min) + " to " +
                                   FormatDuration(max) + ", not '" + setting.text + "'");
  }
  return *d;
}

Status PickDuration(const std::optional<std::string>& flag, std::string_view key,
                    const EnvLookup& env, bool allow_zero, std::chrono::milliseconds& into) {
  auto setting = PickSetting(flag, key, env);
  if (!setting) return {};
  auto d = ParseDurationSetting(*setting, allow_zero);
  if (!d) return Fail(d.error());
  into = *d;
  return {};
}

Status PickDurationAtLeast(const std::optional<std::string>& flag, std::string_view key,
                           const EnvLookup& env, std::chrono::milliseconds min,
                           std::chrono::milliseconds& into) {
  auto setting = PickSetting(flag, key, env);
  if (!setting) return {};
  auto d = ParseDurationSetting(*setting, /*allow_zero=*/true);
  if (!d) return Fail(d.error());
  if (*d < min) {
    return BadSetting(*setting,
                      "must be at least " + FormatDuration(min) + ", not '" + setting->text + "'");
  }
  into = *d;
  return {};
}

Result<ClientConfig> ResolveClientConfig(const GlobalFlags& flags, const EnvLookup& env,
                                         const std::string& default_log_level) {
  ClientConfig cfg;
  cfg.broker.redis_url = kDefaultRedisUrl;
  // REDIS_URL is what Celery- and orbiter-style environment files set: read after Ferry's own
  // (ops::EnvFallbackOf, which `ferry config show` reads alike).
  auto redis_url = PickSetting(flags.redis_url, "redis-url", env);
  if (!redis_url) {
    const std::string fallback(ops::EnvFallbackOf("redis-url"));
    if (auto v = env(fallback)) redis_url = SettingText{*v, fallback};
  }
  if (const auto& r = redis_url) {
    if (auto ep = ParseRedisUrl(r->text); !ep) return BadSetting(*r, ep.error().message);
    cfg.broker.redis_url = r->text;
    cfg.redis_url_source = r->source;
  }
  cfg.broker.prefix = kDefaultPrefix;
  if (auto r = PickSetting(flags.prefix, "prefix", env)) {
    if (r->text.empty() || r->text.find_first_of(" {}\t\n") != std::string::npos) {
      return BadSetting(*r, "key prefix must be non-empty, without spaces or braces");
    }
    cfg.broker.prefix = r->text;
  }
  if (auto st = PickDuration(flags.io_timeout, "io-timeout", env, /*allow_zero=*/false,
                             cfg.broker.io_timeout);
      !st) {
    return Fail(st.error());
  }
  if (auto st = ResolveRedisConnect(flags, env, cfg.broker); !st) return Fail(st.error());
  if (auto st = PickDuration(flags.task_retention, "task-retention", env, /*allow_zero=*/false,
                             cfg.broker.retention);
      !st) {
    return Fail(st.error());
  }
  if (auto st = PickDuration(flags.dead_retention, "dead-retention", env, /*allow_zero=*/false,
                             cfg.broker.dead_retention);
      !st) {
    return Fail(st.error());
  }
  if (auto st = PickInt(flags.event_stream_length, "event-stream-length", env, 10, 1000000,
                        cfg.broker.events_maxlen);
      !st)
    return Fail(st.error());
  if (auto st = PickInt(flags.max_queues, "max-queues", env, 1, 1000000, cfg.broker.max_queues);
      !st)
    return Fail(st.error());
  cfg.log.level = default_log_level;
  if (auto r = PickSetting(flags.log_level, "log-level", env)) {
    auto level = ParseLogLevelName(r->text);
    if (!level) return BadSetting(*r, level.error().message);
    cfg.log.level = *level;
  }
  if (auto r = PickSetting(flags.log_format, "log-format", env)) {
    auto f = ParseLogFormat(r->text);
    if (!f) return BadSetting(*r, f.error().message);
    cfg.log.format = *f;
  }
  return cfg;
}

Result<WorkerConfig> ResolveWorkerConfig(const GlobalFlags& global, const WorkerFlags& flags,
                                         const EnvLookup& env) {
  auto client = ResolveClientConfig(global, env, "info");
  if (!client) return Fail(client.error());
  WorkerConfig cfg;
  cfg.log = client->log;
  WorkerOptions& w = cfg.worker;
  w.broker = client->broker;
  if (auto r = PickSetting(flags.queues, "queues", env)) {
    auto q = ParseQueueList(r->text);
    if (!q) return BadSetting(*r, q.error().message);
    w.queues = *q;
  }
  if (auto st = PickInt(flags.concurrency, "concurrency", env, 1, 4096, w.concurrency); !st)
    return Fail(st.error());
  if (auto st = PickInt(flags.prefetch, "prefetch", env, -1, 65536, w.prefetch); !st)
    return Fail(st.error());
  if (auto st = PickInt(flags.nice, "nice", env, 0, 19, w.nice); !st) return Fail(st.error());
  if (auto r = PickSetting(flags.worker_id, "worker-id", env)) {
    if (r->text.empty() || r->text.size() > 200 ||
        r->text.find_first_of(" \t\n{}") != std::string::npos) {
      return BadSetting(*r,
                        "worker id must be 1 to 200 characters, without spaces or braces (leave "
                        "it out for {hostname}-{pid}-{random})");
    }
    w.worker_id = r->text;
  }
  if (auto st = PickDurationAtLeast(flags.lease, "lease", env, kMinTaskLease, w.lease); !st) {
    return Fail(st.error());
  }
  if (auto st = PickDuration(flags.drain_timeout, "drain-timeout", env, /*allow_zero=*/true,
                             w.drain_timeout);
      !st) {
    return Fail(st.error());
  }
  if (auto st = PickDuration(flags.default_timeout, "default-timeout", env, /*allow_zero=*/true,
                             w.default_timeout);
      !st) {
    return Fail(st.error());
  }
  if (auto st = PickInt(flags.health_port, "health-port", env, -1, 65535, w.health_port); !st)
    return Fail(st.error());
  if (auto r = PickSetting(flags.health_host, "health-host", env)) {
    if (r->text.empty() || r->text.find_first_of(" \t/") != std::string::npos) {
      return BadSetting(*r, "expected an address to bind, e.g. 127.0.0.1 or 0.0.0.0");
    }
    w.health_host = r->text;
  }
  if (auto st = PickDuration(flags.backoff_base, "backoff-base", env, /*allow_zero=*/false,
                             w.backoff_base);
      !st) {
    return Fail(st.error());
  }
  if (auto r = PickSetting(flags.heartbeat_ttl, "heartbeat-ttl", env)) {
    auto d = ParseDurationSetting(*r, false);
    if (!d) return Fail(d.error());
    if (d->count() < 1000) return BadSetting(*r, "heartbeat TTL must be at least 1s");
    w.heartbeat_ttl = *d;
  }
  if (auto r = PickSetting(flags.run_task_events, "run-task-events", env)) {
    auto v = ParseYesNo(*r);
    if (!v) return Fail(v.error());
    cfg.run_task_events = *v;
  }
  if (auto st = PickDuration(flags.run_slot_wait, "run-slot-wait", env, /*allow_zero=*/true,
                             cfg.run_slot_wait);
      !st) {
    return Fail(st.error());
  }
  auto handlers = ResolveHandlerDeclarations(flags.handlers, env);
  if (!handlers) return Fail(handlers.error());
  cfg.handlers = std::move(*handlers);
  return cfg;
}

Result<HandlerDeclarations> ResolveHandlerDeclarations(const std::vector<std::string>& flags,
                                                       const EnvLookup& env) {
  HandlerDeclarations out;
  std::optional<SettingText> declared;
  if (!flags.empty()) {
    std::string joined;
    for (const auto& h : flags) {
      // ParseHandlerSpecs skips empty declarations between ';': a flag is one, and must say it.
      if (Trim(h).empty()) {
        return Fail(ErrorCode::kInvalidArgument,
                    "--handler: empty; declare KIND=TARGET (docs/handlers.md)");
      }
      // One flag is one declaration: a ';' inside it would silently start another.
      if (h.find_first_of(";\n") != std::string::npos) {
        return Fail(ErrorCode::kInvalidArgument, "--handler: one declaration per flag; '" +
                                                     MaskUrlsInText(h) +
                                                     "' holds a ';' or a newline");
      }
      joined += h + ";";
    }
    declared = SettingText{joined, "--handler"};
  } else {
    declared = PickSetting(std::nullopt, "handlers", env);
  }
  if (declared) {
    auto specs = handlers::ParseHandlerSpecs(declared->text);
    if (!specs) return BadSetting(*declared, specs.error().message);
    out.specs = std::move(*specs);
    out.source = declared->source;
  }
  if (auto secret = env("FERRY_HANDLER_SECRET")) out.secret = *secret;
  return out;
}

Status RegisterDeclaredHandlers(const HandlerDeclarations& declared, const EnvLookup& env,
                                HandlerRegistry& registry) {
  handlers::ExternalHandlerOptions options;
  options.http_secret = declared.secret;
  options.env = env;
  auto registered = handlers::RegisterExternalHandlers(declared.specs, options, registry);
  if (!registered && !declared.source.empty()) {
    return Fail(registered.error().code, declared.source + ": " + registered.error().message);
  }
  return registered;
}

Result<std::vector<std::string>> ParseQueueList(const std::string& text) {
  std::vector<std::string> out;
  std::set<std::string> seen;
  size_t start = 0;
  while (true) {
    size_t comma = text.find(',', start);
    std::string name =
        Trim(text.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
    if (name.empty()) {
      return Fail(ErrorCode::kInvalidArgument,
                  "empty queue name in '" + text + "' (expected e.g. high,default,low)");
    }
    if (auto st = ValidateQueueName(name); !st) return Fail(st.error());
    if (!seen.insert(name).second) {
      return Fail(ErrorCode::kInvalidArgument, "queue '" + name + "' is listed twice");
    }
    out.push_back(name);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

Result<int64_t> ParseIso8601(const std::string& text) {
  auto t = cron::ParseIso8601(text, nullptr, cron::ZoneRule::kRequired);
  if (!t) return Fail(t.error());
  return std::chrono::duration_cast<std::chrono::milliseconds>(t->time_since_epoch()).count();
}

}  // namespace ferry::cli
