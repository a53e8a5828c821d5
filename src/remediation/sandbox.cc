#include "remediation/sandbox.h"

#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <filesystem>
#include <mutex>

#include "process/process.h"

namespace ferry::remediation {
namespace {

namespace fs = std::filesystem;

// What a program needs from /etc to run (name lookups, TLS roots, the dynamic linker's cache,
// alternatives links such as awk), and nothing that might hold credentials.
constexpr std::array<const char*, 16> kEtcFiles = {
    "/etc/alternatives", "/etc/ca-certificates", "/etc/ssl",        "/etc/ld.so.cache",
    "/etc/ld.so.conf",   "/etc/ld.so.conf.d",    "/etc/localtime",  "/etc/passwd",
    "/etc/group",        "/etc/nsswitch.conf",   "/etc/hosts",      "/etc/resolv.conf",
    "/etc/host.conf",    "/etc/gai.conf",        "/etc/mime.types", "/etc/timezone"};
constexpr std::array<const char*, 6> kLibDirs = {"/bin",   "/sbin",  "/lib",
                                                 "/lib32", "/lib64", "/libx32"};

bool Exists(const std::string& p) {
  struct stat st {};
  return ::lstat(p.c_str(), &st) == 0;
}

bool IsExecutable(const std::string& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(p.c_str(), X_OK) == 0;
}

std::optional<std::string> Which(const std::string& name, const std::string& path) {
  if (name.find('/') != std::string::npos) {
    if (!IsExecutable(name)) return std::nullopt;
    std::error_code ec;
    auto abs = fs::absolute(name, ec);
    return ec ? name : abs.lexically_normal().string();
  }
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find(':', start);
    if (end == std::string::npos) end = path.size();
    if (end > start) {
      std::string candidate = path.substr(start, end - start) + "/" + name;
      if (IsExecutable(candidate)) return candidate;
    }
    start = end + 1;
  }
  return std::nullopt;
}

// Whether `p` is `root` or inside it (both absolute, normalized).
bool Under(const std::string& p, const std::string& root) {
  if (root == "/") return true;
  return p == root ||
         (p.size() > root.size() && p.compare(0, root.size(), root) == 0 && p[root.size()] == '/');
}

std::string Normal(const std::string& p) {
  std::error_code ec;
  auto abs = fs::absolute(p, ec);
  std::string s = (ec ? fs::path(p) : abs).lexically_normal().string();
  while (s.size() > 1 && s.back() == '/') s.pop_back();
  return s;
}

}  // namespace

std::vector<std::string> HidePaths(const std::string& store_location,
                                   const std::string& secrets_file, const std::string& config_file,
                                   const std::string& data_dir) {
  std::vector<std::string> out;
  std::string store = store_location;
  if (store.rfind("postgres://", 0) == 0 || store.rfind("postgresql://", 0) == 0) store.clear();
  if (store.rfind("sqlite://", 0) == 0) store = store.substr(9);
  if (!store.empty()) {
    for (const char* suffix : {"", "-wal", "-shm", "-journal", "-precedence"})
      out.push_back(store + suffix);
  }
  for (const std::string* p : {&secrets_file, &config_file, &data_dir}) {
    if (!p->empty()) out.push_back(*p);
  }
  return out;
}

const SandboxProbe& ProbeSandbox() {
  static std::once_flag once;
  static SandboxProbe probe;
  std::call_once(once, [] {
    auto bwrap = Which("bwrap", "/usr/bin:/bin:/usr/local/bin:/usr/sbin:/sbin");
    if (!bwrap) {
      probe.detail = "bubblewrap (bwrap) is not installed";
      return;
    }
    probe.program = *bwrap;
    ProcessSpec version;
    version.argv = {*bwrap, "--version"};
    version.timeout = std::chrono::seconds(10);
    if (auto v = RunProcess(version, {}); v && v->exit_code == 0) {
      std::string text = v->stdout_text;
      while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
      probe.version = text;
    }
    ProcessSpec spec;
    spec.argv = {*bwrap,
                 "--ro-bind",
                 "/",
                 "/",
                 "--dev",
                 "/dev",
                 "--proc",
                 "/proc",
                 "--unshare-pid",
                 "--unshare-ipc",
                 "--die-with-parent",
                 "--new-session",
                 "true"};
    spec.timeout = std::chrono::seconds(10);
    auto r = RunProcess(spec, {});
    if (!r) {
      probe.detail = r.error().message;
    } else if (r->exit_code != 0) {
      std::string err = r->stderr_text;
      while (!err.empty() && err.back() == '\n') err.pop_back();
      probe.detail = "bwrap cannot create a sandbox here: " +
                     (err.empty() ? "exit " + std::to_string(r->exit_code) : err);
    } else {
      probe.works = true;
    }
  });
  return probe;
}

std::optional<std::string> FindProgram(const std::string& name, const std::string& path) {
  return Which(name, path);
}

Result<AgentLaunch> WrapAgent(const std::vector<std::string>& agent_argv,
                              const std::string& workspace, const std::string& path,
                              const SandboxOptions& options, const SandboxProbe& probe) {
  if (agent_argv.empty() || agent_argv[0].empty()) {
    return Fail(ErrorCode::kInvalidArgument, "no agent command configured");
  }
  auto program = Which(agent_argv[0], path);
  if (!program) {
    return Fail(ErrorCode::kNotFound,
                "the agent program '" + agent_argv[0] + "' is not found or not executable");
  }
  AgentLaunch out;
  std::vector<std::string> agent = agent_argv;
  agent[0] = *program;
  const bool use_bwrap =
      options.mode == SandboxMode::kBwrap || (options.mode == SandboxMode::kAuto && probe.works);
  if (!use_bwrap) {
    out.argv = std::move(agent);
    return out;
  }
  if (!probe.works) {
    return Fail(
        ErrorCode::kUnavailable,
        "remediation-sandbox is bwrap, but " +
            (probe.detail.empty() ? std::string("bubblewrap does not work") : probe.detail));
  }
  const std::string ws = Normal(workspace);
  std::vector<std::string> a = {probe.program,          "--die-with-parent", "--new-session",
                                "--unshare-pid",        "--unshare-ipc",     "--unshare-uts",
                                "--unshare-cgroup-try", "--cap-drop",        "ALL"};
  if (!options.network) a.push_back("--unshare-net");
  std::vector<std::string> readable = {"/usr"};
  a.insert(a.end(), {"--ro-bind", "/usr", "/usr"});
  for (const char* d : kLibDirs) {
    std::error_code ec;
    const fs::path p(d);
    if (fs::is_symlink(p, ec)) {
      a.insert(a.end(), {"--symlink", fs::read_symlink(p, ec).string(), d});
    } else if (fs::is_directory(p, ec)) {
      a.insert(a.end(), {"--ro-bind", d, d});
      readable.emplace_back(d);
    }
  }
  for (const char* f : kEtcFiles) {
    if (!Exists(f)) continue;
    a.insert(a.end(), {"--ro-bind", f, f});
    readable.emplace_back(f);
  }
  a.insert(a.end(), {"--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"});
  for (const auto& p : options.read_paths) {
    const std::string n = Normal(p);
    if (!Exists(n)) continue;
    a.insert(a.end(), {"--ro-bind", n, n});
    readable.push_back(n);
  }
  // Masks: a later mount hides what an earlier one exposed. The agent's program and its
  // workspace are bound after them, so a mask over a parent directory leaves those two visible.
  for (const auto& h : options.hide_paths) {
    const std::string n = Normal(h);
    if (n.empty() || n == "/" || !Exists(n)) continue;
    bool exposed = false;
    for (const auto& r : readable) exposed |= Under(n, r);
    if (!exposed) continue;
    std::error_code ec;
    if (fs::is_directory(n, ec)) {
      a.insert(a.end(), {"--tmpfs", n});
    } else {
      a.insert(a.end(), {"--ro-bind", "/dev/null", n});
    }
  }
  // The agent's own program (a script in a checkout, an installed CLI) when nothing above
  // covers it.
  const std::string prog = Normal(*program);
  bool covered = false;
  for (const auto& r : readable) covered |= Under(prog, r);
  if (!covered) a.insert(a.end(), {"--ro-bind", prog, prog});
  a.insert(a.end(), {"--bind", ws, ws});
  a.insert(a.end(), {"--chdir", ws, "--"});
  a.insert(a.end(), agent.begin(), agent.end());
  out.argv = std::move(a);
  out.sandboxed = true;
  return out;
}

}  // namespace ferry::remediation
