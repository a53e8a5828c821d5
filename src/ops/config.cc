#include "ops/config.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <sstream>

#include "core/control_chars.h"
#include "core/files.h"
#include "core/mask.h"
#include "core/suggest.h"
#include "core/utf8.h"
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

// Why `line` cannot be in a config file, or "": text that is not UTF-8, or a control
// character (a NUL, an escape sequence), would be echoed in errors and `ferry config show`,
// and reach settings no one wrote on purpose. Tabs are spacing, and a CRLF line's CR is the
// line end.
std::string NotText(std::string_view line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (auto bad = Utf8FirstInvalid(line)) {
    return "byte " + std::to_string(*bad + 1) + " is not UTF-8 text";
  }
  if (auto at = FirstControlCharacter(line, /*tab_allowed=*/true)) {
    char hex[8];
    std::snprintf(hex, sizeof hex, "%04X", static_cast<unsigned char>(line[*at]));
    return "byte " + std::to_string(*at + 1) + " is the control character U+" + hex;
  }
  return "";
}

// Variables Ferry reads that are not settings: the client's, and what a worker sets for the
// programs it runs (handlers, the remediation agent), which may run `ferry` themselves.
bool OtherFerryVariable(std::string_view name) {
  static const char* const kNames[] = {"FERRY_SERVER",
                                       "FERRY_TOKEN",
                                       "FERRY_TOKEN_FILE",
                                       "FERRY_EVENTS_FD",
                                       "FERRY_REMEDIATION_WORKSPACE",
                                       "FERRY_REMEDIATION_CANDIDATE"};
  for (const char* n : kNames) {
    if (name == n) return true;
  }
  // FERRY_SECRET_<NAME> holds a secret by design; FERRY_TASK_* describes a handler's task.
  return name.rfind("FERRY_SECRET_", 0) == 0 || name.rfind("FERRY_TASK_", 0) == 0;
}

}  // namespace

Result<ConfigFile> ParseConfigText(std::string_view text, const std::string& path) {
  ConfigFile out;
  out.path = path;
  // A byte order mark says the file is UTF-8 (editors on Windows write one); it is not part of
  // the first key, which it made unknown.
  constexpr std::string_view kBom = "\xEF\xBB\xBF";
  if (text.substr(0, kBom.size()) == kBom) text.remove_prefix(kBom.size());
  std::istringstream in{std::string(text)};
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    const std::string where = path + ":" + std::to_string(n);
    if (std::string why = NotText(line); !why.empty()) {
      return Fail(ErrorCode::kInvalidArgument, where + ": " + why);
    }
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

std::string NearestKey(std::string_view key) {
  std::vector<std::string> keys;
  for (const auto& s : Settings()) keys.push_back(s.key);
  return ClosestMatch(NormalizeKey(key), keys).value_or("");
}

std::vector<std::string> MistypedVariables(const std::vector<std::string>& names) {
  static constexpr std::string_view kPrefix = "FERRY_";
  // Compared without the prefix, which every name shares: "BIN" is not near "NICE".
  std::vector<std::string> known;
  for (const auto& s : Settings()) known.push_back(EnvNameOf(s.key).substr(kPrefix.size()));
  std::vector<std::string> out;
  for (const auto& name : names) {
    if (name.rfind(kPrefix, 0) != 0 || OtherFerryVariable(name)) continue;
    const std::string rest = name.substr(kPrefix.size());
    if (std::find(known.begin(), known.end(), rest) != known.end()) continue;
    if (auto nearest = ClosestMatch(rest, known)) {
      out.push_back(name + " is not a Ferry setting and is ignored; did you mean " +
                    std::string(kPrefix) + *nearest + "?");
    }
  }
  return out;
}

Result<ConfigFile> LoadConfigFile(const std::string& path) {
  // A config file is a page of settings: a cap keeps a wrong path (/dev/zero) from taking memory.
  auto text = ReadSmallFile(path, kMaxConfigFileBytes);
  if (!text) return Fail(text.error().code, "config file " + path + ": " + text.error().message);
  return ParseConfigText(*text, path);
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
  // An empty --config names no file: refused, not taken for "no config file". An empty
  // FERRY_CONFIG is an unset variable, as for every other setting.
  if (flag && flag->empty()) {
    return Fail(ErrorCode::kInvalidArgument, "--config is empty: name a file or leave it out");
  }
  if (!path || path->empty()) return std::shared_ptr<const ConfigFile>();
  auto file = LoadConfigFile(*path);
  // A file the flag or variable names but that cannot be read is a bad setting (exit 2), as a
  // bad value of any other setting is.
  if (!file) return Fail(ErrorCode::kInvalidArgument, origin + ": " + file.error().message);
  return std::make_shared<const ConfigFile>(std::move(*file));
}

const std::vector<SettingInfo>& Settings() {
  // {key, default, used by, secret, help, env (when not FERRY_<KEY>), flag (when not --key)}
  static const std::vector<SettingInfo> kAll = {
      {"config", "", "all", false,
       "Config file of key = value lines, keys named like the flags; precedence flag > env > "
       "file > default",
       "", ""},
      {"server", "", "client commands", false,
       "Send client commands (task, queue, worker list, workflow, run, schedule, token, "
       "remediation, alerts, doctor) to this Ferry server's HTTP API instead of Redis and the "
       "store, e.g. http://127.0.0.1:8080",
       "", ""},
      {"token", "", "client commands", true, "Bearer token for --server (see `ferry token create`)",
       "", ""},
      {"token-file", "", "client commands", false, "File holding the bearer token for --server", "",
       ""},
      {"redis-url", "redis://127.0.0.1:6379", "all", true,
       "Redis URL (REDIS_URL is read when neither FERRY_REDIS_URL nor the config file sets it)", "",
       ""},
      {"prefix", "ferry", "all", false, "Redis key prefix", "", ""},
      {"io-timeout", "5s", "all", false, "Redis connect/command timeout, e.g. 5s", "", ""},
      {"redis-username", "", "all", false, "Redis ACL user when the URL names none", "", ""},
      {"redis-tls-ca", "the system's trust store", "all", false,
       "CA certificates (PEM) that sign the server's certificate, for rediss:// URLs", "", ""},
      {"redis-tls-cert", "", "all", false,
       "Client certificate (PEM) for servers with tls-auth-clients", "", ""},
      {"redis-tls-key", "", "all", false, "Key of the client certificate (PEM)", "", ""},
      {"redis-tls-server-name", "the host connected to", "all", false,
       "Name expected in the server's certificate and sent as SNI", "", ""},
      {"redis-tls-verify", "yes", "all", false, "yes|no: verify the server's certificate", "", ""},
      {"redis-sentinel-username", "", "all", false,
       "ACL user of the sentinels, for redis+sentinel:// URLs", "", ""},
      {"redis-sentinel-password", "", "all", true, "Password of the sentinels", "", ""},
      {"redis-wait-replicas", "0 (off)", "all", false,
       "Durability: submit, complete, cancel and retry wait until this many replicas have the "
       "write (Redis WAIT)",
       "", ""},
      {"redis-wait-timeout", "1s", "all", false,
       "How long such a write waits for its replicas before failing", "", ""},
      {"task-retention", "24h", "all", false,
       "How long a finished task's record and events stay in Redis", "", ""},
      {"dead-retention", "7d", "all", false,
       "How long dead-lettered tasks stay inspectable and re-runnable", "", ""},
      {"event-stream-length", "1000", "all", false, "Events kept per task, oldest trimmed first",
       "", ""},
      {"max-queues", "1000", "all", false,
       "How many queues may exist; past it a task or worker for a new queue is refused", "", ""},
      {"log-level", "info for long-running commands, warn for one-shot ones", "all", false,
       "trace|debug|info|warn|error|critical|off, any case (warning = warn)", "", ""},
      {"log-format", "text", "all", false, "text|json, logs go to stderr", "", ""},
      {"store", "./.ferry/ferry.db", "server, worker, scheduler, dev, workflow and run commands",
       true, "Workflow and run store: an SQLite file path or a postgresql:// URL", "", ""},
      {"secrets-file", "", "server, worker, dev", false,
       "Workflow and webhook secrets: NAME=value lines or a JSON object (FERRY_SECRET_<NAME> "
       "variables are read too)",
       "", ""},
      {"listen", "127.0.0.1:8080", "server, dev", false,
       "Address to serve the API on, HOST:PORT; port 0 = any free one", "", ""},
      {"data-dir", "./.ferry", "dev", false,
       "ferry dev's data directory: its SQLite store and the endpoints client commands find; "
       "commands given no store use its ferry.db",
       "", ""},
      {"queues", "default", "worker", false, "Queues in strict priority order, e.g. high,default",
       "", ""},
      {"concurrency", "1 (ferry dev: 4)", "worker, dev", false, "Tasks run at once", "", ""},
      {"prefetch", "-1 (= concurrency)", "worker", false, "Tasks claimed ahead", "", ""},
      {"nice", "0", "worker, dev", false,
       "Niceness 0-19 of the threads that run tasks and workflow runs (handler processes inherit "
       "it); 10 lets ferry server and a database on the same machine answer ahead of them",
       "", ""},
      {"worker-id", "{hostname}-{pid}-{random}", "worker", false, "Worker id", "", ""},
      {"lease", "30s", "worker", false,
       "Lease of a running task; others reclaim it after this long without renewal (at least "
       "100ms)",
       "", ""},
      {"drain-timeout", "30s", "worker", false,
       "On SIGTERM, how long running tasks may finish before they are handed back", "", ""},
      {"default-timeout", "30m", "worker", false, "Timeout of tasks that set none; 0 = none", "",
       ""},
      {"health-port", "-1 (off)", "worker", false,
       "Port of /healthz and /metrics; 0 = any free port, -1 = none", "", ""},
      {"health-host", "127.0.0.1", "worker", false,
       "Address of the health port; 0.0.0.0 to let Prometheus scrape /metrics from elsewhere", "",
       ""},
      {"backoff-base", "1s", "worker", false, "First retry delay, doubled per attempt", "", ""},
      {"heartbeat-ttl", "30s", "worker", false, "Worker record TTL, refreshed every third", "", ""},
      {"run-task-events", "no", "worker", false,
       "yes|no: also copy workflow runs' node events into their tasks' event streams (ferry task "
       "events); the run's history has them either way (ferry run watch)",
       "", ""},
      {"run-slot-wait", "5s", "worker, dev", false,
       "Longest a workflow run waits in its worker slot for a delay or for its task node's task; "
       "a run left with only longer waits gives the slot back and goes on when they end",
       "", ""},
      {"handlers", "", "worker, dev", false,
       "Task kinds run by programs or HTTP services: KIND=exec:PROGRAM [ARGS...] or "
       "KIND=http(s)://URL [secret-env=NAME], ';' between in the variable, one per --handler "
       "(repeatable); http handlers sign with the key in NAME, else FERRY_HANDLER_SECRET "
       "(docs/handlers.md)",
       "", "--handler"},
      {"handler-secret", "", "worker, dev", true,
       "HMAC-SHA256 key signing http handlers' requests (no flag: it would show in `ps`)", "", "-"},
      {"threads", "16", "server", false, "Request handler threads", "FERRY_API_THREADS", ""},
      {"max-sse-clients", "512", "server", false, "Concurrent event streams; more get 503", "", ""},
      {"max-connections", "10000", "server", false, "Open client connections; more get 503", "",
       ""},
      {"max-connections-per-client", "4000", "server", false,
       "Open connections from one client address; more get 503", "", ""},
      {"scheduler-id", "{hostname}-{pid}-{random}", "scheduler", false,
       "Scheduler id in the leader lease", "", ""},
      {"scheduler-tick", "1s", "scheduler", false, "Cron dispatch interval (at least 100ms)", "",
       "--tick"},
      {"scheduler-lease", "5s", "scheduler", false,
       "Leader lease; a dead leader is replaced within about this long (at least 500ms)", "",
       "--lease"},
      {"misfire-grace", "30s", "scheduler", false, "An occurrence later than this is a misfire", "",
       ""},
      {"run-queue", "default", "scheduler", false, "Queue of the runs' tasks", "", ""},
      {"metrics-port", "-1 (off)", "scheduler", false,
       "Port of the scheduler's /metrics and /healthz; 0 = any, -1 = off", "", ""},
      {"metrics-host", "127.0.0.1", "scheduler", false,
       "Address the metrics port binds; 0.0.0.0 to let a remote Prometheus scrape", "", ""},
      {"alert-queue-depth-warning", "100", "alerts", false, "Queue depth warning threshold", "",
       ""},
      {"alert-queue-depth-critical", "500", "alerts", false, "Queue depth critical threshold", "",
       ""},
      {"alert-failure-rate", "0.10", "alerts", false, "Failed share of finished attempts", "", ""},
      {"alert-failure-window", "5m", "alerts", false, "Window of the failure rate", "", ""},
      {"alert-failure-min-volume", "20", "alerts", false,
       "Finished attempts in the window below which the rate is not judged", "", ""},
      {"alert-wait-time", "60s", "alerts", false, "Oldest pending task age threshold", "", ""},
      {"alert-pending-run-age", "5m", "alerts", false, "Pending runs older than this alert", "",
       ""},
      {"alert-interval", "15s", "alerts", false, "How often the scheduler evaluates alerts", "",
       ""},
      {"alert-webhook-url", "", "alerts", false, "POST alert changes here (JSON)", "", ""},
      {"alert-webhook-secret", "", "alerts", true, "HMAC-SHA256 key for X-Ferry-Signature", "", ""},
  };
  // Remediation's settings are catalogued by their part (src/remediation/settings.h).
  static const std::vector<SettingInfo> kWithRemediation = [] {
    std::vector<SettingInfo> all = kAll;
    for (const auto& r : remediation::SettingSpecs()) {
      all.push_back({r.key, r.default_text, "worker, scheduler, dev", false, r.help, "", ""});
    }
    return all;
  }();
  return kWithRemediation;
}

const SettingInfo* FindSetting(std::string_view key) {
  for (const auto& s : Settings()) {
    if (s.key == key) return &s;
  }
  return nullptr;
}

std::string FlagOf(const SettingInfo& setting) {
  if (setting.flag == "-") return "";
  return setting.flag.empty() ? "--" + setting.key : setting.flag;
}

std::string FlagHelp(const SettingInfo& setting) {
  return setting.help + " (env " + EnvNameOf(setting.key) +
         (setting.default_text.empty() ? "" : "; default " + setting.default_text) + ")";
}

std::string MaskSecret(std::string_view key, std::string_view value) {
  if (value.empty()) return "";
  // Locations keep what identifies them and lose their credentials; other secrets are hidden.
  if (value.find("://") != std::string_view::npos || key == "store" || key == "redis-url") {
    return MaskCredentials(value, /*userinfo_is_secret=*/key == "redis-url");
  }
  return "********";
}

std::string_view EnvFallbackOf(std::string_view key) {
  return key == "redis-url" ? "REDIS_URL" : "";
}

namespace {
// The value of `key`'s fallback variable, when it has one and it is set.
std::optional<std::string> FallbackValue(std::string_view key, const EnvLookup& env) {
  const std::string_view name = EnvFallbackOf(key);
  if (name.empty()) return std::nullopt;
  return env(std::string(name));
}
}  // namespace

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
      e.origin = FlagOf(info);
    } else if (auto v = env(env_name)) {
      e.value = *v;
      e.source = Source::kEnv;
      e.origin = env_name;
    } else if (file != nullptr && file->values.count(info.key) != 0) {
      const auto& cv = file->values.at(info.key);
      e.value = cv.value;
      e.source = Source::kFile;
      e.origin = file->path + ":" + std::to_string(cv.line);
    } else if (auto fb = FallbackValue(info.key, env)) {
      e.value = *fb;
      e.source = Source::kEnv;
      e.origin = std::string(EnvFallbackOf(info.key));
    } else {
      e.value = info.default_text;
      e.source = Source::kDefault;
      e.origin = "default";
    }
    if (info.secret && e.source != Source::kDefault) {
      e.value = MaskSecret(info.key, e.value);
    } else if (e.value.find("://") != std::string::npos) {
      // A URL setting not marked secret may still carry some, `handlers` one per declaration.
      e.value = MaskUrlsInText(e.value);
    }
    out.push_back(std::move(e));
  }
  return out;
}

}  // namespace ferry::ops
