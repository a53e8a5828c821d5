// The agent's sandbox: bubblewrap (Debian package `bubblewrap`, program bwrap) when it works on
// this host, so the agent sees a read-only system (/usr, the libraries, a few files of /etc, the
// paths the operator lists), a private /tmp, /proc and /dev, its own PID, IPC and UTS namespaces,
// no network unless allowed, no capabilities, and its workspace as the only writable place. The
// store, the secrets file, the data directory and the config file are masked even when they lie
// under a readable path. bwrap ends the sandbox when the scheduler dies (--die-with-parent).
//
// Without bubblewrap (mode none, or auto where it does not work) the agent still gets a clean
// environment and its own process group, but can read whatever the scheduler's user can:
// `ferry doctor` says so.
//
// Thread-safety: ProbeSandbox caches its answer (thread-safe); WrapAgent is pure.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/result.h"
#include "remediation/settings.h"

namespace ferry::remediation {

struct SandboxOptions {
  SandboxMode mode = SandboxMode::kAuto;
  bool network = false;
  std::vector<std::string> read_paths;
  // Masked inside the sandbox when they exist: the store (a SQLite file's directory), the
  // secrets file, the data directory, the config file.
  std::vector<std::string> hide_paths;
};

struct SandboxProbe {
  bool works = false;
  std::string program;  // absolute path of bwrap, "" when not found
  std::string version;  // "bubblewrap 0.8.0"
  std::string detail;   // why it does not work
};

// What the sandbox masks for a process configured with these locations ("" skipped): a SQLite
// store file with its -wal, -shm, -journal and -precedence files (a PostgreSQL URL has no file),
// the secrets file, the config file and the data directory.
std::vector<std::string> HidePaths(const std::string& store_location,
                                   const std::string& secrets_file, const std::string& config_file,
                                   const std::string& data_dir);

// Finds bwrap and runs `true` in a minimal sandbox once per process.
const SandboxProbe& ProbeSandbox();

struct AgentLaunch {
  std::vector<std::string> argv;  // what to run (bwrap ... -- agent ..., or the agent itself)
  bool sandboxed = false;
};

// `name` resolved as WrapAgent resolves the agent's program: a name with '/' when it is an
// executable file, otherwise the first executable of that name on `path` (a PATH value).
std::optional<std::string> FindProgram(const std::string& name, const std::string& path);

// The agent's command with its program resolved on `path` (a PATH value) and, when the mode and
// the probe allow, wrapped in bwrap. kUnavailable when mode is bwrap and the probe failed;
// kNotFound when the agent's program is not found.
Result<AgentLaunch> WrapAgent(const std::vector<std::string>& agent_argv,
                              const std::string& workspace, const std::string& path,
                              const SandboxOptions& options, const SandboxProbe& probe);

}  // namespace ferry::remediation
