// Remediation settings: every one is a flag of `ferry scheduler start` / `ferry worker start` /
// `ferry dev`, a FERRY_REMEDIATION_* environment variable and a config-file key, in that order of
// precedence (docs/remediation.md maps the seed's ORCHEO_WORKFLOW_AUTOFIX_* names to these).
//
// Thread-safety: pure functions over immutable values.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/env.h"
#include "core/result.h"

namespace ferry::remediation {

// What the scan does when the host's load cannot be read.
enum class UnknownLoad { kSkip, kAllow };
// How the agent is isolated: bubblewrap when it works here (auto), always (bwrap: an attempt
// fails without it), or never (none: a clean environment and its own process group only).
enum class SandboxMode { kAuto, kBwrap, kNone };

struct Settings {
  // Capture failed runs (workers) and scan for idle time (scheduler leader).
  bool enabled = false;
  // Record the agent's classification, note and artifact hashes; create no workflow version.
  bool dry_run = true;
  std::chrono::milliseconds scan_interval = std::chrono::seconds(60);
  // Claims held at once across every scheduler.
  int max_concurrent = 1;
  // The scan is skipped while the 1-minute load average divided by the CPU count is above this.
  double idle_load = 1.0;
  UnknownLoad unknown_load = UnknownLoad::kSkip;
  // The scan is skipped while more runs than this are pending or running.
  int max_active_runs = 0;
  // After a fix, run the new version with the failed run's inputs.
  bool retry_after_fix = false;
  // The agent's argv template: a JSON array of strings, or words split like a shell would
  // (quotes, no expansion). {workspace}, {workflow_file}, {instructions} and {candidate} are
  // replaced in every word. Empty: scans skip ("no agent configured").
  std::vector<std::string> agent_argv;
  std::chrono::milliseconds agent_timeout = std::chrono::minutes(10);
  // Environment variables handed to the agent from this process's environment (names only;
  // FERRY_* names are refused).
  std::vector<std::string> agent_env;
  // Extra paths the sandboxed agent may read (its own installation, its configuration).
  std::vector<std::string> agent_read_paths;
  // Whether the sandboxed agent may use the network (a hosted model needs it).
  bool agent_network = false;
  SandboxMode sandbox = SandboxMode::kAuto;
  // Claims per candidate (reopen starts a new count), backoff between them, claims per
  // workflow per 24 hours.
  int attempt_cap = 3;
  std::chrono::milliseconds backoff = std::chrono::minutes(5);
  int daily_cap = 10;
  // A claim's lease; the attempt renews it every third of it. A scheduler killed mid-attempt
  // leaves a claim that another takes over once the lease has run out.
  std::chrono::milliseconds claim_lease = std::chrono::minutes(1);
  // Where attempt workspaces are made ("" = $TMPDIR or /tmp), and whether they are kept.
  std::string workspace_dir;
  bool keep_workspaces = false;
};

// One setting: config-file key (flag --<key>, env from ops::EnvNameForKey), default, help.
struct SettingSpec {
  std::string key;
  std::string default_text;
  std::string help;
};
// Every remediation setting, in display order.
const std::vector<SettingSpec>& SettingSpecs();

// Resolves the settings: `flags` (key -> text, those given on the command line), then
// `env(FERRY_REMEDIATION_...)`, then the defaults. kInvalidArgument names the flag or variable.
Result<Settings> ResolveSettings(const std::map<std::string, std::string>& flags,
                                 const EnvLookup& env);

// Splits an agent command: a JSON array of strings, or shell-like words (single and double
// quotes, backslash escapes; no variables, globs or pipes). kInvalidArgument when malformed or
// empty.
Result<std::vector<std::string>> ParseAgentCommand(const std::string& text);

}  // namespace ferry::remediation
