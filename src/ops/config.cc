#include "ops/config.h"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <sstream>

#include "core/mask.h"
#include "remediation/settings.h"

namespace ferry::ops {
namespace {

std::string Trim(std::string_view s) {
  size_t b = 0;
  while (b < s.size() && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  size_t e = s.size();
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return std::string(s.substr(b, e - b));
}

std::string NormalizeKey(std::string_view key) {
  std::string out(key);
  for (char& c : out) {
    if (c == '_') c = '-';
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

bool KnownKey(const std::string& key) {
  const auto& all = Settings();
  return std::any_of(all.begin(), all.end(), [&](const SettingInfo& s) { return s.key == key; });
}

// Strips an unquoted trailing "# comment" and matching surrounding quotes.
Result<std::string> ParseValue(std::string_view raw, const std::string& where) {
  std::string v = Trim(raw);
  if (!v.empty() && (v.front() == '"' || v.front() == '\'')) {
    const char q = v.front();
    size_t end = v.find(q, 1);
    if (end == std::string::npos) {
      return Fail(ErrorCode::kInvalidArgument, where + ": unterminated quote");
    }
    std::string rest = Trim(std::string_view(v).substr(end + 1));
    if (!rest.empty() && rest.front() != '#') {
      return Fail(ErrorCode::kInvalidArgument, where + ": text after the closing quote");
    }
    return v.substr(1, end - 1);
  }
  // " #" starts a comment; a '#' inside a value (a URL fragment, a password) needs quotes only
  // when preceded by a space.
  size_t hash = v.find(" #");
  if (hash != std::string::npos) v = Trim(std::string_view(v).substr(0, hash));
  return v;
}

}  // namespace

Result<ConfigFile> ParseConfigText(std::string_view text, const std::string& path) {
  ConfigFile out;
  out.path = path;
  std::istringstream in{std::string(text)};
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    const std::string where = path + ":" + std::to_string(n);
    std::string t = Trim(line);
    if (t.empty() || t.front() == '#') continue;
    if (t == "---") continue;  // a YAML document marker
    size_t eq = t.find('=');
    size_t colon = t.find(':');
    size_t sep = std::string::npos;
    if (eq != std::string::npos && (colon == std::string::npos || eq < colon)) {
      sep = eq;
    } else if (colon != std::string::npos) {
      // YAML style: "key: value" (the colon must be followed by a space or end the line, so
      // "redis-url=redis://h:1" keeps its colons).
      if (colon + 1 == t.size() || t[colon + 1] == ' ' || t[colon + 1] == '\t') sep = colon;
    }
    if (sep == std::string::npos) {
      return Fail(ErrorCode::kInvalidArgument, where + ": expected key = value, got '" + t + "'");
    }
    std::string key = NormalizeKey(Trim(std::string_view(t).substr(0, sep)));
    if (key.empty() || key.find_first_of(" \t") != std::string::npos) {
      return Fail(ErrorCode::kInvalidArgument, where + ": bad key '" + key + "'");
    }
    if (key.rfind("--", 0) == 0) key = key.substr(2);
    auto value = ParseValue(std::string_view(t).substr(sep + 1), where);
    if (!value) return Fail(value.error());
    if (out.values.count(key) != 0) {
      return Fail(ErrorCode::kInvalidArgument, where + ": '" + key +
                                                   "' is set twice (first on line " +
                                                   std::to_string(out.values[key].line) + ")");
    }
    if (!KnownKey(key)) out.unknown_keys.push_back(key);
    out.values[key] = ConfigValue{*value, n};
  }
  return out;
}

Result<ConfigFile> LoadConfigFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return Fail(ErrorCode::kNotFound, "cannot read config file " + path);
  std::ostringstream ss;
  ss << f.rdbuf();
  return ParseConfigText(ss.str(), path);
}

std::string EnvNameForKey(std::string_view key) {
  std::string out = "FERRY_";
  for (char c : key) {
    out.push_back(c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
  }
  return out;
}

std::string EnvNameOf(std::string_view key) {
  for (const auto& s : Settings()) {
    if (s.key == key && !s.env.empty()) return s.env;
  }
  return EnvNameForKey(key);
}

std::string_view SourceName(Source s) {
  switch (s) {
    case Source::kFlag:
      return "flag";
    case Source::kEnv:
      return "env";
    case Source::kFile:
      return "file";
    case Source::kDefault:
      return "default";
  }
  return "default";
}

EnvLookup LayeredEnv(EnvLookup env, std::shared_ptr<const ConfigFile> file) {
  if (!file) return env;
  // FERRY_X -> value, built once.
  auto by_env = std::make_shared<std::map<std::string, std::string>>();
  for (const auto& [key, v] : file->values) {
    if (!v.value.empty()) (*by_env)[EnvNameOf(key)] = v.value;
  }
  return [env = std::move(env), by_env](const std::string& name) -> std::optional<std::string> {
    if (auto v = env(name)) return v;
    auto it = by_env->find(name);
    if (it != by_env->end()) return it->second;
    return std::nullopt;
  };
}

Result<std::shared_ptr<const ConfigFile>> LoadConfigFrom(const std::optional<std::string>& flag,
                                                         const EnvLookup& env) {
  std::optional<std::string> path = flag;
  std::string origin = "--config";
  if (!path) {
    path = env("FERRY_CONFIG");
    origin = "FERRY_CONFIG";
  }
  if (!path || path->empty()) return std::shared_ptr<const ConfigFile>();
  auto file = LoadConfigFile(*path);
  if (!file) return Fail(file.error().code, origin + ": " + file.error().message);
  return std::make_shared<const ConfigFile>(std::move(*file));
}

const std::vector<SettingInfo>& Settings() {
  static const std::vector<SettingInfo> kAll = {
      {"config", "", "all", false, "Config file (key = value per line)", ""},
      {"redis-url", "redis://127.0.0.1:6379", "all", true, "Redis URL", ""},
      {"prefix", "ferry", "all", false, "Redis key prefix", ""},
      {"io-timeout", "5s", "all", false, "Redis connect/command timeout", ""},
      {"redis-username", "", "all", false, "Redis ACL user when the URL names none", ""},
      {"redis-tls-ca", "system trust store", "all", false, "CA file (PEM) for rediss://", ""},
      {"redis-tls-cert", "", "all", false, "TLS client certificate (PEM)", ""},
      {"redis-tls-key", "", "all", false, "TLS client key (PEM)", ""},
      {"redis-tls-server-name", "the host", "all", false, "Name checked in the certificate", ""},
      {"redis-tls-verify", "yes", "all", false, "Verify the server's certificate", ""},
      {"redis-sentinel-username", "", "all", false, "Sentinels' ACL user", ""},
      {"redis-sentinel-password", "", "all", true, "Sentinels' password", ""},
      {"redis-wait-replicas", "0 (off)", "all", false,
       "Replicas that must confirm a submit/complete (WAIT)", ""},
      {"redis-wait-timeout", "1s", "all", false, "How long a write waits for its replicas", ""},
      {"task-retention", "24h", "all", false, "Finished task records and events kept for", ""},
      {"dead-retention", "7d", "all", false, "Dead-lettered tasks kept for", ""},
      {"event-stream-length", "1000", "all", false, "Events kept per task", ""},
      {"log-level", "info (long-running), warn (one-shot)", "all", false,
       "trace|debug|info|warn|error|critical|off, any case", ""},
      {"log-format", "text", "all", false, "text|json (stderr)", ""},
      {"store", "sqlite ./.ferry/ferry.db", "server, worker, scheduler", true,
       "Workflow and run store: SQLite path or postgresql:// URL", ""},
      {"secrets-file", "", "worker", false, "File of NAME=value workflow secrets", ""},
      {"listen", "127.0.0.1:8080", "server, dev", false, "HTTP listen address", ""},
      {"data-dir", "./.ferry", "dev", false, "ferry dev's data directory", ""},
      {"queues", "default", "worker", false, "Queues in strict priority order", ""},
      {"concurrency", "1", "worker", false, "Tasks run at once", ""},
      {"prefetch", "-1 (= concurrency)", "worker", false, "Tasks claimed ahead", ""},
      {"worker-id", "{hostname}-{pid}-{random}", "worker", false, "Worker id", ""},
      {"lease", "30s", "worker", false, "Running-task lease", ""},
      {"drain-timeout", "30s", "worker", false, "Time running tasks get on SIGTERM", ""},
      {"default-timeout", "30m", "worker", false, "Timeout of tasks that set none", ""},
      {"health-port", "-1 (off)", "worker", false, "Port of /healthz and /metrics", ""},
      {"health-host", "127.0.0.1", "worker", false, "Address of the health port", ""},
      {"backoff-base", "1s", "worker", false, "First retry delay", ""},
      {"heartbeat-ttl", "30s", "worker", false, "Worker record TTL", ""},
      {"handlers", "", "worker", false,
       "Kinds run by programs or HTTP services: KIND=exec:PROGRAM ARGS or KIND=URL, ';' "
       "between (flag --handler, repeatable; docs/handlers.md)",
       ""},
      {"handler-secret", "", "worker", true,
       "HMAC-SHA256 key signing http handlers' requests (no flag)", ""},
      {"threads", "32", "server", false, "HTTP worker threads (flag --threads)",
       "FERRY_API_THREADS"},
      {"max-sse-clients", "16", "server", false, "Concurrent run event streams", ""},
      {"scheduler-id", "{hostname}-{pid}-{random}", "scheduler", false,
       "Scheduler id in the leader lease (flag --id)", ""},
      {"scheduler-tick", "1s", "scheduler", false, "Cron dispatch interval (flag --tick)", ""},
      {"scheduler-lease", "5s", "scheduler", false, "Leader lease TTL (flag --lease)", ""},
      {"misfire-grace", "5s", "scheduler", false, "How late a cron fire may still run", ""},
      {"run-queue", "default", "scheduler", false, "Queue of workflow run tasks", ""},
      {"metrics-port", "-1 (off)", "scheduler", false, "Port of the scheduler's /metrics", ""},
      {"metrics-host", "127.0.0.1", "scheduler", false, "Address of the scheduler's /metrics", ""},
      {"alert-queue-depth-warning", "100", "alerts", false, "Queue depth warning threshold", ""},
      {"alert-queue-depth-critical", "500", "alerts", false, "Queue depth critical threshold", ""},
      {"alert-failure-rate", "0.10", "alerts", false, "Failed share of finished attempts", ""},
      {"alert-failure-window", "5m", "alerts", false, "Window of the failure rate", ""},
      {"alert-failure-min-volume", "20", "alerts", false,
       "Finished attempts in the window below which the rate is not judged", ""},
      {"alert-wait-time", "60s", "alerts", false, "Oldest pending task age threshold", ""},
      {"alert-pending-run-age", "5m", "alerts", false, "Pending runs older than this alert", ""},
      {"alert-interval", "15s", "alerts", false, "How often the scheduler evaluates alerts", ""},
      {"alert-webhook-url", "", "alerts", false, "POST alert changes here (JSON)", ""},
      {"alert-webhook-secret", "", "alerts", true, "HMAC-SHA256 key for X-Ferry-Signature", ""},
  };
  // Remediation's settings are catalogued by their part (src/remediation/settings.h).
  static const std::vector<SettingInfo> kWithRemediation = [] {
    std::vector<SettingInfo> all = kAll;
    for (const auto& r : remediation::SettingSpecs()) {
      all.push_back({r.key, r.default_text, "worker, scheduler, dev", false, r.help, ""});
    }
    return all;
  }();
  return kWithRemediation;
}

std::string MaskSecret(std::string_view key, std::string_view value) {
  if (value.empty()) return "";
  // Locations keep what identifies them and lose their credentials; other secrets are hidden.
  if (value.find("://") != std::string_view::npos || key == "store" || key == "redis-url") {
    return MaskCredentials(value, /*userinfo_is_secret=*/key == "redis-url");
  }
  return "********";
}

std::vector<EffectiveSetting> EffectiveSettings(const std::map<std::string, std::string>& flags,
                                                const EnvLookup& env, const ConfigFile* file) {
  std::vector<EffectiveSetting> out;
  for (const auto& info : Settings()) {
    EffectiveSetting e;
    e.info = info;
    const std::string env_name = EnvNameOf(info.key);
    if (auto f = flags.find(info.key); f != flags.end()) {
      e.value = f->second;
      e.source = Source::kFlag;
      e.origin = "--" + info.key;
    } else if (auto v = env(env_name)) {
      e.value = *v;
      e.source = Source::kEnv;
      e.origin = env_name;
    } else if (file != nullptr && file->values.count(info.key) != 0) {
      const auto& cv = file->values.at(info.key);
      e.value = cv.value;
      e.source = Source::kFile;
      e.origin = file->path + ":" + std::to_string(cv.line);
    } else {
      e.value = info.default_text;
      e.source = Source::kDefault;
      e.origin = "default";
    }
    if (info.secret && e.source != Source::kDefault) {
      e.value = MaskSecret(info.key, e.value);
    } else if (e.value.find("://") != std::string::npos) {
      e.value = MaskCredentials(e.value);  // a URL setting not marked secret may still carry some
    }
    out.push_back(std::move(e));
  }
  return out;
}

}  // namespace ferry::ops
