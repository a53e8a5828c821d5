#include "remediation/settings.h"

#include <cctype>
#include <charconv>
#include <cmath>

#include "core/json.h"
#include "core/time_util.h"

namespace ferry::remediation {
namespace {

std::string EnvName(const std::string& key) {
  std::string out = "FERRY_";
  for (char c : key) {
    out.push_back(c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
  }
  return out;
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string Trim(const std::string& s) {
  size_t b = 0;
  size_t e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return s.substr(b, e - b);
}

// A value and the name of where it came from, for error messages.
struct Raw {
  std::string text;
  std::string source;
};

class Reader {
 public:
  Reader(const std::map<std::string, std::string>& flags, const EnvLookup& env)
      : flags_(flags), env_(env) {}

  std::optional<Raw> Get(const std::string& key) const {
    if (auto it = flags_.find(key); it != flags_.end()) return Raw{it->second, "--" + key};
    const std::string name = EnvName(key);
    if (env_) {
      if (auto v = env_(name)) return Raw{*v, name};
    }
    return std::nullopt;
  }

  Status Bool(const std::string& key, bool& dest) const {
    auto raw = Get(key);
    if (!raw) return {};
    const std::string v = Lower(Trim(raw->text));
    if (v == "1" || v == "true" || v == "yes" || v == "on") {
      dest = true;
    } else if (v == "0" || v == "false" || v == "no" || v == "off") {
      dest = false;
    } else {
      return Bad(*raw, "expected yes or no");
    }
    return {};
  }

  Status Int(const std::string& key, int& dest, int min, int max) const {
    auto raw = Get(key);
    if (!raw) return {};
    const std::string v = Trim(raw->text);
    int n = 0;
    auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
    if (ec != std::errc() || ptr != v.data() + v.size() || n < min || n > max) {
      return Bad(*raw,
                 "expected a whole number " + std::to_string(min) + ".." + std::to_string(max));
    }
    dest = n;
    return {};
  }

  Status Double(const std::string& key, double& dest, double min, double max) const {
    auto raw = Get(key);
    if (!raw) return {};
    const std::string v = Trim(raw->text);
    double d = 0;
    auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), d);
    if (ec != std::errc() || ptr != v.data() + v.size() || !std::isfinite(d) || d < min ||
        d > max) {
      return Bad(*raw, "expected a number from " + FormatNumber(min) + " to " + FormatNumber(max));
    }
    dest = d;
    return {};
  }

  Status Duration(const std::string& key, std::chrono::milliseconds& dest,
                  std::chrono::milliseconds min) const {
    auto raw = Get(key);
    if (!raw) return {};
    auto d = ParseDuration(Trim(raw->text));
    if (!d) return Bad(*raw, d.error().message);
    if (*d < min) return Bad(*raw, "must be at least " + FormatDuration(min));
    dest = *d;
    return {};
  }

  // Comma-separated list; empty items dropped.
  std::optional<std::vector<std::string>> List(const std::string& key) const {
    auto raw = Get(key);
    if (!raw) return std::nullopt;
    std::vector<std::string> out;
    size_t start = 0;
    const std::string& t = raw->text;
    while (start <= t.size()) {
      size_t end = t.find(',', start);
      if (end == std::string::npos) end = t.size();
      std::string item = Trim(t.substr(start, end - start));
      if (!item.empty()) out.push_back(item);
      start = end + 1;
    }
    return out;
  }

  static tl::unexpected<Error> Bad(const Raw& raw, const std::string& why) {
    return Fail(ErrorCode::kInvalidArgument, raw.source + ": " + why + " (got '" + raw.text + "')");
  }

 private:
  static std::string FormatNumber(double d) {
    std::string s = std::to_string(d);
    while (s.size() > 1 && s.back() == '0') s.pop_back();
    if (!s.empty() && s.back() == '.') s.pop_back();
    return s;
  }

  const std::map<std::string, std::string>& flags_;
  const EnvLookup& env_;
};

bool ValidEnvName(const std::string& n) {
  if (n.empty() || n.size() > 128) return false;
  if (std::isdigit(static_cast<unsigned char>(n[0]))) return false;
  for (char c : n) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_')) return false;
  }
  return true;
}

}  // namespace

const std::vector<SettingSpec>& SettingSpecs() {
  static const std::vector<SettingSpec> kSpecs = {
      {"remediation-enabled", "no", "Capture failed runs and run the remediation scan"},
      {"remediation-dry-run", "yes",
       "Record the agent's note and classification only; create no workflow version"},
      {"remediation-scan-interval", "60s", "How often the scheduler leader scans"},
      {"remediation-max-concurrent", "1", "Remediation attempts at once, over every scheduler"},
      {"remediation-idle-load", "1.0",
       "Skip the scan while the 1-minute load average per CPU is above this"},
      {"remediation-unknown-load", "skip", "skip|allow: when the host load cannot be read"},
      {"remediation-max-active-runs", "0",
       "Skip the scan while more workflow runs than this are pending or running"},
      {"remediation-retry-after-fix", "no", "Run the fixed version with the failed run's inputs"},
      {"remediation-agent", "",
       "The agent's command: a JSON array or shell-like words; {workspace}, {workflow_file}, "
       "{instructions}, {candidate} are replaced"},
      {"remediation-agent-timeout", "10m", "The agent's process group is killed after this"},
      {"remediation-agent-env", "",
       "Comma-separated names of environment variables the agent gets (FERRY_* refused)"},
      {"remediation-agent-read-paths", "",
       "Comma-separated extra paths the sandboxed agent may read"},
      {"remediation-agent-network", "no", "Let the sandboxed agent use the network"},
      {"remediation-sandbox", "auto",
       "auto|bwrap|none: bubblewrap when it works here, always, or never"},
      {"remediation-attempt-cap", "3", "Attempts per candidate"},
      {"remediation-backoff", "5m", "Delay before a failed candidate's next attempt (doubles)"},
      {"remediation-daily-cap", "10", "Attempts per workflow per 24 hours"},
      {"remediation-claim-lease", "1m",
       "A claim not renewed for this long is taken over by another scheduler"},
      {"remediation-workspace-dir", "", "Where attempt workspaces are made (default $TMPDIR)"},
      {"remediation-keep-workspaces", "no", "Keep each attempt's workspace for inspection"},
  };
  return kSpecs;
}

Result<Settings> ResolveSettings(const std::map<std::string, std::string>& flags,
                                 const EnvLookup& env) {
  Settings s;
  Reader r(flags, env);
  using std::chrono::milliseconds;
  using std::chrono::seconds;
  for (auto st :
       {r.Bool("remediation-enabled", s.enabled), r.Bool("remediation-dry-run", s.dry_run),
        r.Duration("remediation-scan-interval", s.scan_interval, seconds(1)),
        r.Int("remediation-max-concurrent", s.max_concurrent, 1, 64),
        r.Double("remediation-idle-load", s.idle_load, 0, 1e6),
        r.Int("remediation-max-active-runs", s.max_active_runs, 0, 1'000'000),
        r.Bool("remediation-retry-after-fix", s.retry_after_fix),
        r.Duration("remediation-agent-timeout", s.agent_timeout, seconds(1)),
        r.Bool("remediation-agent-network", s.agent_network),
        r.Int("remediation-attempt-cap", s.attempt_cap, 1, 100),
        r.Duration("remediation-backoff", s.backoff, milliseconds(0)),
        r.Int("remediation-daily-cap", s.daily_cap, 1, 10'000),
        r.Duration("remediation-claim-lease", s.claim_lease, seconds(1)),
        r.Bool("remediation-keep-workspaces", s.keep_workspaces)}) {
    if (!st) return Fail(st.error());
  }
  if (auto raw = r.Get("remediation-unknown-load")) {
    const std::string v = Lower(Trim(raw->text));
    if (v == "skip") {
      s.unknown_load = UnknownLoad::kSkip;
    } else if (v == "allow") {
      s.unknown_load = UnknownLoad::kAllow;
    } else {
      return Reader::Bad(*raw, "expected skip or allow");
    }
  }
  if (auto raw = r.Get("remediation-sandbox")) {
    const std::string v = Lower(Trim(raw->text));
    if (v == "auto") {
      s.sandbox = SandboxMode::kAuto;
    } else if (v == "bwrap") {
      s.sandbox = SandboxMode::kBwrap;
    } else if (v == "none") {
      s.sandbox = SandboxMode::kNone;
    } else {
      return Reader::Bad(*raw, "expected auto, bwrap or none");
    }
  }
  if (auto raw = r.Get("remediation-agent"); raw && !Trim(raw->text).empty()) {
    auto argv = ParseAgentCommand(raw->text);
    if (!argv) return Reader::Bad(*raw, argv.error().message);
    s.agent_argv = std::move(*argv);
  }
  if (auto names = r.List("remediation-agent-env")) {
    for (const auto& n : *names) {
      auto raw = *r.Get("remediation-agent-env");
      if (!ValidEnvName(n)) return Reader::Bad(raw, "'" + n + "' is not a variable name");
      // Ferry's own settings hold the store and Redis credentials and the secrets.
      if (n.rfind("FERRY_", 0) == 0) {
        return Reader::Bad(raw, n + ": FERRY_* variables are never handed to the agent");
      }
    }
    s.agent_env = std::move(*names);
  }
  if (auto paths = r.List("remediation-agent-read-paths")) {
    for (const auto& p : *paths) {
      if (p.empty() || p[0] != '/') {
        return Reader::Bad(*r.Get("remediation-agent-read-paths"),
                           "'" + p + "' is not an absolute path");
      }
    }
    s.agent_read_paths = std::move(*paths);
  }
  if (auto raw = r.Get("remediation-workspace-dir")) {
    const std::string dir = Trim(raw->text);
    if (!dir.empty() && dir[0] != '/') return Reader::Bad(*raw, "expected an absolute path");
    s.workspace_dir = dir;
  }
  if (s.claim_lease < milliseconds(1000)) s.claim_lease = milliseconds(1000);
  return s;
}

Result<std::vector<std::string>> ParseAgentCommand(const std::string& text) {
  const std::string t = Trim(text);
  std::vector<std::string> out;
  if (!t.empty() && t[0] == '[') {
    auto j = ParseJson(t);
    if (!j || !j->is_array()) return Fail(ErrorCode::kInvalidArgument, "not a JSON array");
    for (const auto& e : *j) {
      if (!e.is_string()) {
        return Fail(ErrorCode::kInvalidArgument, "every element must be a string");
      }
      out.push_back(e.get<std::string>());
    }
  } else {
    std::string word;
    bool in_word = false;
    char quote = 0;
    for (size_t i = 0; i < t.size(); ++i) {
      const char c = t[i];
      if (quote == '\'') {
        if (c == '\'') {
          quote = 0;
        } else {
          word.push_back(c);
        }
        continue;
      }
      if (c == '\\') {
        if (i + 1 >= t.size()) return Fail(ErrorCode::kInvalidArgument, "a trailing backslash");
        word.push_back(t[++i]);
        in_word = true;
        continue;
      }
      if (quote == '"') {
        if (c == '"') {
          quote = 0;
        } else {
          word.push_back(c);
        }
        continue;
      }
      if (c == '\'' || c == '"') {
        quote = c;
        in_word = true;
        continue;
      }
      if (std::isspace(static_cast<unsigned char>(c))) {
        if (in_word) out.push_back(word);
        word.clear();
        in_word = false;
        continue;
      }
      word.push_back(c);
      in_word = true;
    }
    if (quote != 0) return Fail(ErrorCode::kInvalidArgument, "an unterminated quote");
    if (in_word) out.push_back(word);
  }
  if (out.empty() || out[0].empty()) return Fail(ErrorCode::kInvalidArgument, "no program named");
  return out;
}

}  // namespace ferry::remediation
