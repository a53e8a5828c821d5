// RunProcess: fork + execve with a CLOEXEC error pipe, one poll loop per call. Between the
// caller and the program sits a keeper process (RunKeeper) that leads the program's process group
// and kills that group if the caller dies.
//
// Why fork/execve by hand rather than posix_spawn: we need chdir, a reset signal mask and signal
// dispositions, a new process group and "close every other descriptor" in the child, and a
// precise error (which step failed, with errno) when the program cannot start. Everything the
// child needs is prepared before fork(), because after fork() in a multi-threaded process only
// async-signal-safe calls are allowed.
#include "process/process.h"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <optional>
#include <utility>

#if __has_include(<linux/close_range.h>)
#include <linux/close_range.h>
#endif

#include "core/utf8.h"

extern char** environ;

namespace ferry {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// Owns one file descriptor.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  ~UniqueFd() { Reset(); }
  UniqueFd(UniqueFd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept {
    if (this != &o) {
      Reset();
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  void Reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

struct Pipe {
  UniqueFd read;
  UniqueFd write;
};

Result<Pipe> MakePipe() {
  std::array<int, 2> fds{};
  // CLOEXEC on both ends: a child forked concurrently by another thread must not inherit them,
  // or our reads would never see EOF. dup2() in our own child clears the flag where needed.
  if (::pipe2(fds.data(), O_CLOEXEC) != 0) {
    return Fail(ErrorCode::kInternal, std::string("pipe2: ") + std::strerror(errno));
  }
  return Pipe{UniqueFd(fds[0]), UniqueFd(fds[1])};
}

void SetNonBlocking(int fd) {
  int flags = ::fcntl(fd, F_GETFL);
  if (flags >= 0) ::fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

// Owns the child until it has been reaped: if RunProcess leaves early (an exception from
// on_line, an internal error), the whole group is killed and the zombie collected.
class ChildGuard {
 public:
  explicit ChildGuard(pid_t pid) : pid_(pid) {}
  ~ChildGuard() {
    if (pid_ <= 0) return;
    ::kill(-pid_, SIGKILL);
    ::kill(pid_, SIGKILL);
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
  }
  ChildGuard(const ChildGuard&) = delete;
  ChildGuard& operator=(const ChildGuard&) = delete;
  void Release() { pid_ = -1; }

 private:
  pid_t pid_;
};

bool IsExecutableFile(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

// PATH lookup in the parent (execvp in the child is not async-signal-safe in general).
std::optional<std::string> ResolveProgram(const std::string& name, const std::string& path_var) {
  if (name.find('/') != std::string::npos) {
    if (IsExecutableFile(name)) return name;
    return std::nullopt;
  }
  size_t start = 0;
  while (start <= path_var.size()) {
    size_t end = path_var.find(':', start);
    if (end == std::string::npos) end = path_var.size();
    // An empty PATH element means the current directory.
    std::string_view dir =
        end > start ? std::string_view(path_var).substr(start, end - start) : std::string_view(".");
    std::string candidate;
    candidate.reserve(dir.size() + 1 + name.size());
    candidate.append(dir).append(1, '/').append(name);
    if (IsExecutableFile(candidate)) return candidate;
    start = end + 1;
  }
  return std::nullopt;
}

// What a cleared environment keeps: where programs are and the locale, nothing that can carry a
// credential.
bool IsNeutralVariable(std::string_view name) {
  static constexpr std::string_view kKept[] = {"PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR"};
  return std::find(std::begin(kKept), std::end(kKept), name) != std::end(kKept);
}

std::vector<std::string> BuildEnv(const ProcessSpec& spec) {
  std::map<std::string, std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string_view kv(*e);
    size_t eq = kv.find('=');
    if (eq == std::string_view::npos) continue;
    std::string key(kv.substr(0, eq));
    if (spec.clear_env && !IsNeutralVariable(key)) continue;
    env.emplace(std::move(key), std::string(kv.substr(eq + 1)));
  }
  for (const auto& [k, v] : spec.env) env[k] = v;
  std::vector<std::string> out;
  out.reserve(env.size());
  for (auto& [k, v] : env) out.push_back(k + "=" + v);
  return out;
}

// What the child reports through the error pipe when a step before exec succeeds fails.
struct ChildFailure {
  int stage = 0;  // 1 = chdir, 2 = exec, 3 = setup (dup2), 4 = fork (of the program)
  int err = 0;
};

// Code that runs in the program's process before its exec, on a stack AddressSanitizer does not
// know (see RunKeeper): left uninstrumented, or each call that does not return makes it warn
// that it cannot tell the stack's bounds. It touches only its own locals and the plan.
#define FERRY_PROGRAM_SIDE [[gnu::no_sanitize_address]]

FERRY_PROGRAM_SIDE [[noreturn]] void ChildFail(int fd, int stage) {
  ChildFailure f{stage, errno};
  ssize_t n = ::write(fd, &f, sizeof f);
  (void)n;
  ::_exit(127);
}

// What the program's process needs, all prepared before fork(): descriptors to install, where
// to run, and what to execute.
struct ChildPlan {
  int in_fd = -1;
  int out_fd = -1;
  int err_fd = -1;
  int fd3 = -1;  // -1: the program gets no descriptor 3
  int report_fd = -1;
  const char* cwd = nullptr;
  const char* path = nullptr;
  char* const* argv = nullptr;
  char* const* envp = nullptr;
  // The top of the stack the program's process runs on until its exec (see RunKeeper).
  char* stack_top = nullptr;
};

// One past the highest descriptor a sweep without close_range() looks at.
FERRY_PROGRAM_SIDE int DescriptorSweepEnd() {
  const long max_fd = ::sysconf(_SC_OPEN_MAX);
  return max_fd < 0 || max_fd > 65536 ? 65536 : static_cast<int>(max_fd);
}

// Every catchable signal back to its default action.
FERRY_PROGRAM_SIDE void ResetSignalActions() {
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    ::sigaction(sig, &dfl, nullptr);
  }
}

// Runs in the program's process between fork and exec: async-signal-safe calls only. `keeper`
// is its parent (see RunKeeper).
FERRY_PROGRAM_SIDE [[noreturn]] void ExecProgram(pid_t keeper, ChildPlan plan) {
  // Should the keeper itself be killed, the program goes with it.
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != keeper) ::_exit(127);
  // The worker blocks SIGTERM/SIGINT in its threads for its signal thread, and may ignore
  // SIGPIPE; the keeper blocks everything. Both would be inherited across exec and make the
  // program unkillable or deaf.
  ResetSignalActions();
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  if (::dup2(plan.in_fd, 0) < 0 || ::dup2(plan.out_fd, 1) < 0 || ::dup2(plan.err_fd, 2) < 0) {
    ChildFail(plan.report_fd, 3);
  }
  if (plan.fd3 >= 0) {
    // The error pipe may itself be descriptor 3: move it out of the way first.
    if (plan.report_fd == 3) {
      plan.report_fd = ::fcntl(plan.report_fd, F_DUPFD_CLOEXEC, 4);
      if (plan.report_fd < 0) ::_exit(127);
    }
    if (plan.fd3 != 3 && ::dup2(plan.fd3, 3) < 0) ChildFail(plan.report_fd, 3);
  }
  if (plan.cwd != nullptr && ::chdir(plan.cwd) != 0) ChildFail(plan.report_fd, 1);
    // Descriptors the parent opened without CLOEXEC (sockets of other libraries) must not leak
    // into user programs.
#ifdef CLOSE_RANGE_CLOEXEC
  if (::close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) != 0)
#endif
  {
    for (int fd = 3, end = DescriptorSweepEnd(); fd < end; ++fd) {
      if (fd != plan.report_fd) ::fcntl(fd, F_SETFD, FD_CLOEXEC);
    }
  }
  // Descriptor 3 survives exec (dup2 cleared CLOEXEC, but the sweep above set it again).
  if (plan.fd3 >= 0 && ::fcntl(3, F_SETFD, 0) != 0) ChildFail(plan.report_fd, 3);
  ::execve(plan.path, plan.argv, plan.envp);
  ChildFail(plan.report_fd, 2);
}

// What the program's process starts from (clone's argument).
struct ProgramStart {
  pid_t keeper;
  const ChildPlan* plan;
};

FERRY_PROGRAM_SIDE int StartProgram(void* arg) {
  const auto* s = static_cast<const ProgramStart*>(arg);
  ExecProgram(s->keeper, *s->plan);
}

// Ends this process the way the program ended, so the worker reads the program's exit code or
// signal from the keeper's status.
[[noreturn]] void EndAs(int status) {
  if (WIFEXITED(status)) ::_exit(WEXITSTATUS(status));
  const int sig = WTERMSIG(status);
  // The program's core, if it left one, is the one that matters.
  struct rlimit no_core {};
  ::setrlimit(RLIMIT_CORE, &no_core);
  sigset_t only;
  sigemptyset(&only);
  sigaddset(&only, sig);
  ::sigprocmask(SIG_UNBLOCK, &only, nullptr);
  ::kill(::getpid(), sig);
  ::_exit(128 + sig);  // only for a signal whose default action does not end a process
}

// The signal the kernel sends the keeper when the worker's forking thread ends.
constexpr int kWorkerGone = SIGUSR1;

// Runs in the process fork() made, async-signal-safe calls only. It leads the program's process
// group and stays between the worker and the program. If the worker dies (kill -9, the OOM
// killer), it kills the whole group: another worker runs the task again once the lease expires,
// and neither the program nor anything it started may overlap that attempt. The kernel's death
// signal alone reaches only one process, the program, and leaves its children running.
// Otherwise the keeper waits for the program and ends as it ended. It blocks every signal, so a
// SIGTERM sent to the group reaches the program and the keeper keeps it pending: it ends the
// keeper only if it ended the program.
[[noreturn]] void RunKeeper(pid_t worker, const ChildPlan& plan) {
  ::setpgid(0, 0);
  // What `ps -o comm` and `top` show, so it is not taken for a second worker.
  ::prctl(PR_SET_NAME, "ferry-keeper");
  // Default actions first: a SIGCHLD the worker ignores would reap the program by itself.
  ResetSignalActions();
  sigset_t all;
  sigfillset(&all);
  ::sigprocmask(SIG_SETMASK, &all, nullptr);
  // The signal fires when the forking thread exits; RunProcess blocks that thread until the
  // keeper is reaped, so it cannot fire early. The getppid() check closes the race where the
  // worker died before prctl() ran.
  ::prctl(PR_SET_PDEATHSIG, kWorkerGone);
  if (::getppid() != worker) ::_exit(127);
  // The program's process shares the keeper's memory until it calls exec, and the keeper waits
  // until it has (CLONE_VFORK): a fork would copy the page tables of a process the size of the
  // worker a second time, which doubled what starting a program cost (docs/benchmarks.md). It runs
  // on a stack of its own, so nothing it does touches the keeper's frames.
  ProgramStart start{::getpid(), &plan};
  const pid_t program =
      ::clone(&StartProgram, plan.stack_top, CLONE_VM | CLONE_VFORK | SIGCHLD, &start);
  if (program < 0) ChildFail(plan.report_fd, 4);
    // The keeper holds no descriptor: its copies of the pipes would keep the worker's reads open.
#ifdef CLOSE_RANGE_CLOEXEC
  if (::close_range(0, ~0U, 0) != 0)
#endif
  {
    for (int fd = 0, end = DescriptorSweepEnd(); fd < end; ++fd) ::close(fd);
  }
  sigset_t wake;
  sigemptyset(&wake);
  sigaddset(&wake, SIGCHLD);
  sigaddset(&wake, kWorkerGone);
  while (true) {
    const int sig = ::sigwaitinfo(&wake, nullptr);
    // A kWorkerGone sent by anyone else while the worker lives changes nothing.
    if (sig == kWorkerGone && ::getppid() != worker) {
      ::kill(0, SIGKILL);  // the whole group, the keeper included
      ::_exit(137);
    }
    int status = 0;
    if (::waitpid(program, &status, WNOHANG) == program) EndAs(status);
  }
}

using LineFn = std::function<void(bool is_stderr, const std::string& line, size_t cut)>;

// Accumulates one output stream: the capped text and the line splitter for on_line.
struct StreamState {
  UniqueFd fd;
  bool is_stderr = false;
  std::string text;
  bool truncated = false;
  // The current line's first bytes (after the last newline), at most the line limit; what the
  // line holds past that is only counted, so a line without newlines cannot grow memory.
  std::string partial;
  size_t cut = 0;
  bool cut_ends_in_cr = false;  // the last byte counted in `cut` was '\r'
  // Descriptor 3: a line past the limit is delivered the moment it passes it, so its reader can
  // refuse it before the line ends (which may be never); the rest of it is dropped unseen.
  bool deliver_long_lines_early = false;
  bool delivered = false;  // the current line already went out early

  void Append(const char* data, size_t n, size_t limit, size_t max_line, const LineFn& on_line) {
    size_t room = limit > text.size() ? limit - text.size() : 0;
    size_t take = std::min(room, n);
    text.append(data, take);
    if (take < n) truncated = true;
    if (!on_line) return;
    const char* p = data;
    const char* end = data + n;
    while (p < end) {
      const char* nl = static_cast<const char*>(std::memchr(p, '\n', static_cast<size_t>(end - p)));
      const char* stop = nl == nullptr ? end : nl;
      Keep(p, static_cast<size_t>(stop - p), max_line, on_line);
      if (nl == nullptr) break;
      EndLine(on_line);
      p = nl + 1;
    }
  }
  void Flush(const LineFn& on_line) {
    if (on_line && !partial.empty()) EndLine(on_line);
    partial.clear();
    cut = 0;
  }

 private:
  void Keep(const char* p, size_t n, size_t max_line, const LineFn& on_line) {
    if (n == 0) return;
    const size_t room = max_line > partial.size() ? max_line - partial.size() : 0;
    const size_t keep = std::min(room, n);
    partial.append(p, keep);
    if (keep < n) {
      cut += n - keep;
      cut_ends_in_cr = p[n - 1] == '\r';
      if (deliver_long_lines_early && !delivered) {
        delivered = true;
        on_line(is_stderr, partial, cut);
      }
    }
  }
  // Delivers the line a newline (or the stream's end) closed: the CR of a CRLF is not part of
  // the line, whether it was kept or only counted.
  void EndLine(const LineFn& on_line) {
    if (!delivered) {
      if (cut > 0) {
        if (cut_ends_in_cr) --cut;
      } else if (!partial.empty() && partial.back() == '\r') {
        partial.pop_back();
      }
      on_line(is_stderr, partial, cut);
    }
    delivered = false;
    partial.clear();
    cut = 0;
  }
};

int PidfdOpen(pid_t pid) {
#ifdef SYS_pidfd_open
  return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
#else
  (void)pid;
  errno = ENOSYS;
  return -1;
#endif
}

// Writes to the child's stdin without letting EPIPE raise SIGPIPE in this process: the signal is
// blocked for this thread around the write and a pending one is consumed.
ssize_t WriteNoSigpipe(int fd, const char* data, size_t n) {
  sigset_t pipe_set;
  sigset_t old_set;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  ::pthread_sigmask(SIG_BLOCK, &pipe_set, &old_set);
  ssize_t w = ::write(fd, data, n);
  int saved = errno;
  if (w < 0 && saved == EPIPE) {
    timespec zero{0, 0};
    ::sigtimedwait(&pipe_set, nullptr, &zero);
  }
  ::pthread_sigmask(SIG_SETMASK, &old_set, nullptr);
  errno = saved;
  return w;
}

std::string StageText(int stage) {
  switch (stage) {
    case 1:
      return "cannot change to the working directory";
    case 2:
      return "cannot execute";
    case 4:
      return "cannot start a process for";
    default:
      return "cannot set up the child's standard streams";
  }
}

// The interpreter a script's "#!" line names, for a script the kernel could not run because
// that interpreter is missing (execve's ENOENT names no file, and the script itself is there);
// "" when `program` does not begin so.
std::string ScriptInterpreter(const std::string& program) {
  std::ifstream in(program, std::ios::binary);
  std::string line;
  if (!in || !std::getline(in, line) || line.rfind("#!", 0) != 0) return "";
  const size_t begin = line.find_first_not_of(" \t", 2);
  if (begin == std::string::npos) return "";
  const size_t end = line.find_first_of(" \t\r", begin);
  return line.substr(begin, end == std::string::npos ? std::string::npos : end - begin);
}

}  // namespace

std::string CutLine(std::string line, size_t max, size_t already_cut) {
  size_t cut = already_cut;
  if (line.size() > max) {
    cut += line.size() - max;
    line.resize(max);
  }
  if (cut == 0) return line;
  // A character the cut split goes whole, and is counted.
  const size_t split = Utf8UnfinishedTail(line);
  line.resize(line.size() - split);
  return line + " ... (" + std::to_string(cut + split) + " more bytes cut)";
}

std::optional<std::string> FindProgram(const std::string& name) {
  if (name.empty()) return std::nullopt;
  const char* path = std::getenv("PATH");
  return ResolveProgram(name, path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin");
}

std::optional<std::string> EnvNameProblem(std::string_view name) {
  if (name.empty()) return "is empty";
  if (name.find('=') != std::string_view::npos) return "holds '='";
  if (name.find('\0') != std::string_view::npos) return "holds a NUL byte";
  return std::nullopt;
}

Result<ProcessResult> RunProcess(const ProcessSpec& spec, std::stop_token stop) {
  if (spec.argv.empty()) return Fail(ErrorCode::kInvalidArgument, "argv must not be empty");
  if (spec.argv[0].empty()) {
    return Fail(ErrorCode::kInvalidArgument, "argv[0], the program, is empty");
  }
  // The kernel takes C strings: a NUL would silently cut the value short, so refuse it.
  auto has_nul = [](const std::string& text) { return text.find('\0') != std::string::npos; };
  for (size_t i = 0; i < spec.argv.size(); ++i) {
    if (has_nul(spec.argv[i])) {
      return Fail(ErrorCode::kInvalidArgument,
                  "argv[" + std::to_string(i) + "] holds a NUL byte (\\u0000)");
    }
  }
  for (const auto& [name, value] : spec.env) {
    if (auto problem = EnvNameProblem(name)) {
      return Fail(ErrorCode::kInvalidArgument,
                  "bad environment variable name '" + name + "': it " + *problem);
    }
    if (has_nul(value)) {
      return Fail(ErrorCode::kInvalidArgument,
                  "environment variable " + name + " holds a NUL byte (\\u0000)");
    }
  }
  if (has_nul(spec.cwd)) {
    return Fail(ErrorCode::kInvalidArgument, "cwd holds a NUL byte (\\u0000)");
  }
  const auto started = Clock::now();

  // --- everything the child needs, prepared before fork ---
  std::vector<std::string> env_strings = BuildEnv(spec);
  std::string path_var = "/usr/local/bin:/usr/bin:/bin";
  for (const auto& kv : env_strings) {
    if (kv.rfind("PATH=", 0) == 0) path_var = kv.substr(5);
  }
  std::optional<std::string> program = ResolveProgram(spec.argv[0], path_var);
  if (!program) {
    return Fail(ErrorCode::kNotFound, "program '" + spec.argv[0] + "' not found or not executable");
  }
  std::vector<std::string> argv_copy = spec.argv;
  std::vector<char*> argv_ptrs;
  argv_ptrs.reserve(argv_copy.size() + 1);
  for (auto& a : argv_copy) argv_ptrs.push_back(a.data());
  argv_ptrs.push_back(nullptr);
  std::vector<char*> env_ptrs;
  env_ptrs.reserve(env_strings.size() + 1);
  for (auto& e : env_strings) env_ptrs.push_back(e.data());
  env_ptrs.push_back(nullptr);

  auto out_pipe = MakePipe();
  if (!out_pipe) return Fail(out_pipe.error());
  auto err_pipe = MakePipe();
  if (!err_pipe) return Fail(err_pipe.error());
  auto report_pipe = MakePipe();
  if (!report_pipe) return Fail(report_pipe.error());
  Pipe in_pipe;
  if (!spec.stdin_data.empty()) {
    auto p = MakePipe();
    if (!p) return Fail(p.error());
    in_pipe = std::move(*p);
  } else {
    in_pipe.read = UniqueFd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    if (!in_pipe.read.valid()) {
      return Fail(ErrorCode::kInternal, std::string("open /dev/null: ") + std::strerror(errno));
    }
  }
  Pipe fd3_pipe;
  if (spec.on_fd3_line) {
    auto p = MakePipe();
    if (!p) return Fail(p.error());
    fd3_pipe = std::move(*p);
  }
  // Wakes the poll loop when the stop token is requested.
  auto wake_pipe = MakePipe();
  if (!wake_pipe) return Fail(wake_pipe.error());
  SetNonBlocking(wake_pipe->read.get());
  SetNonBlocking(wake_pipe->write.get());

  const char* cwd = spec.cwd.empty() ? nullptr : spec.cwd.c_str();
  // The program's process runs on this until its exec: a few calls deep, no more.
  constexpr size_t kProgramStackBytes = 64 << 10;
  std::vector<char> program_stack(kProgramStackBytes);
  char* stack_top = reinterpret_cast<char*>(
      reinterpret_cast<uintptr_t>(program_stack.data() + program_stack.size()) & ~uintptr_t{15});
  const pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) return Fail(ErrorCode::kInternal, std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    RunKeeper(parent, ChildPlan{in_pipe.read.get(), out_pipe->write.get(), err_pipe->write.get(),
                                fd3_pipe.write.get(), report_pipe->write.get(), cwd,
                                program->c_str(), argv_ptrs.data(), env_ptrs.data(), stack_top});
  }
  ChildGuard guard(pid);
  // Also in the parent, so the group exists before we might signal it (no race with the child).
  ::setpgid(pid, pid);
  in_pipe.read.Reset();
  out_pipe->write.Reset();
  err_pipe->write.Reset();
  fd3_pipe.write.Reset();
  report_pipe->write.Reset();

  // Blocks until exec succeeds (EOF: CLOEXEC closed the write end) or the child reports failure.
  ChildFailure failure{};
  ssize_t got = 0;
  do {
    got = ::read(report_pipe->read.get(), &failure, sizeof failure);
  } while (got < 0 && errno == EINTR);
  if (got == static_cast<ssize_t>(sizeof failure)) {
    // The guard reaps the child (it has already called _exit).
    std::string what = StageText(failure.stage);
    std::string target = failure.stage == 1 ? spec.cwd : *program;
    ErrorCode code = (failure.err == ENOENT || failure.err == EACCES || failure.err == ENOTDIR ||
                      failure.err == ENOEXEC)
                         ? ErrorCode::kNotFound
                         : ErrorCode::kInternal;
    if (failure.stage == 2 && failure.err == ENOENT) {
      if (const std::string interpreter = ScriptInterpreter(*program); !interpreter.empty()) {
        return Fail(code, what + " '" + target + "': its interpreter '" + interpreter +
                              "' (its #! line) was not found");
      }
    }
    return Fail(code, what + " '" + target + "': " + std::strerror(failure.err));
  }
  report_pipe->read.Reset();

  ProcessResult result;
  // stdout, stderr, and descriptor 3 when asked for.
  std::array<StreamState, 3> streams;
  streams[0].fd = std::move(out_pipe->read);
  streams[1].fd = std::move(err_pipe->read);
  streams[1].is_stderr = true;
  streams[2].fd = std::move(fd3_pipe.read);
  streams[2].deliver_long_lines_early = true;
  for (auto& s : streams) {
    if (s.fd.valid()) SetNonBlocking(s.fd.get());
  }
  // Descriptor 3's lines go to on_fd3_line; its text is not kept (limit 0).
  LineFn fd3_line;
  if (spec.on_fd3_line) {
    fd3_line = [&spec](bool, const std::string& line, size_t cut) { spec.on_fd3_line(line, cut); };
  }
  auto line_callback = [&](size_t i) -> const LineFn& { return i == 2 ? fd3_line : spec.on_line; };
  auto text_limit = [&](size_t i) -> size_t { return i == 2 ? 0 : spec.max_output_bytes; };
  auto max_line = [&](size_t i) -> size_t {
    return std::max<size_t>(i == 2 ? spec.max_fd3_line_bytes : spec.max_line_bytes, 1);
  };
  UniqueFd stdin_fd = std::move(in_pipe.write);
  size_t stdin_off = 0;
  if (stdin_fd.valid()) SetNonBlocking(stdin_fd.get());

  UniqueFd pidfd(PidfdOpen(pid));

  int wake_write = wake_pipe->write.get();
  std::stop_callback on_stop(stop, [wake_write] {
    char b = 1;
    ssize_t n = ::write(wake_write, &b, 1);
    (void)n;
  });

  const std::optional<Clock::time_point> deadline =
      spec.timeout.count() > 0 ? std::optional(started + spec.timeout) : std::nullopt;
  std::optional<Clock::time_point> term_sent_at;
  bool kill_sent = false;
  // Set once the child has exited; it stays unreaped (a zombie) until the end, which keeps its
  // pid, and so the group id we signal, from being reused.
  std::optional<Clock::time_point> exited_at;
  // After the child exits, descendants that inherited stdout/stderr may keep them open; we stop
  // reading after this long instead of waiting for them.
  constexpr milliseconds kDrainAfterExit{250};
  milliseconds tick{1};  // fallback polling when pidfd is unavailable
  std::array<char, 64 * 1024> buf{};

  auto send_group = [&](int sig) {
    // The child is not reaped until we return, so its pid (= the group id) cannot be reused.
    ::kill(-pid, sig);
  };

  while (true) {
    auto now = Clock::now();
    if (!term_sent_at && !exited_at) {
      const bool stdout_full = spec.stop_when_stdout_full && streams[0].truncated;
      if (stop.stop_requested()) {
        result.stopped = true;
      } else if (deadline && now >= *deadline) {
        result.timed_out = true;
      }
      if (result.stopped || result.timed_out || stdout_full) {
        send_group(SIGTERM);
        term_sent_at = now;
      }
    }
    if (term_sent_at && !kill_sent && now >= *term_sent_at + spec.kill_grace) {
      send_group(SIGKILL);
      kill_sent = true;
    }

    if (!exited_at) {
      siginfo_t info{};
      info.si_pid = 0;
      int wr = ::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT);
      // ECHILD: someone else reaped it (SIGCHLD ignored process-wide); it has exited all the same.
      if ((wr == 0 && info.si_pid == pid) || (wr < 0 && errno == ECHILD)) {
        exited_at = now;
        // Stragglers of a stopped group get no further grace: the leader is gone.
        if (term_sent_at && !kill_sent) {
          send_group(SIGKILL);
          kill_sent = true;
        }
      }
    }

    bool streams_open = streams[0].fd.valid() || streams[1].fd.valid() || streams[2].fd.valid();
    if (exited_at && (!streams_open || now >= *exited_at + kDrainAfterExit)) break;

    // --- poll ---
    std::array<pollfd, 6> pfds{};
    nfds_t n = 0;
    std::array<int, 3> idx_stream = {-1, -1, -1};  // streams[i]'s slot in pfds
    int idx_in = -1;
    for (size_t i = 0; i < streams.size(); ++i) {
      if (!streams[i].fd.valid()) continue;
      idx_stream[i] = static_cast<int>(n);
      pfds[n++] = {streams[i].fd.get(), POLLIN, 0};
    }
    if (stdin_fd.valid()) {
      idx_in = static_cast<int>(n);
      pfds[n++] = {stdin_fd.get(), POLLOUT, 0};
    }
    if (pidfd.valid() && !exited_at) {
      pfds[n++] = {pidfd.get(), POLLIN, 0};
    }
    pfds[n++] = {wake_pipe->read.get(), POLLIN, 0};

    // Sleep until the next thing we must do on our own.
    Clock::time_point next = now + milliseconds(1000);
    if (deadline && !term_sent_at) next = std::min(next, *deadline);
    if (term_sent_at && !kill_sent) next = std::min(next, *term_sent_at + spec.kill_grace);
    if (exited_at) next = std::min(next, *exited_at + kDrainAfterExit);
    if (!pidfd.valid() && !exited_at) {
      next = std::min(next, now + tick);
      tick = std::min(tick * 2, milliseconds(50));
    }
    auto wait_ms =
        std::chrono::duration_cast<milliseconds>(next - now).count() + (next > now ? 1 : 0);
    int pr = ::poll(pfds.data(), n, static_cast<int>(std::max<int64_t>(wait_ms, 0)));
    if (pr < 0) {
      if (errno == EINTR) continue;
      return Fail(ErrorCode::kInternal, std::string("poll: ") + std::strerror(errno));
    }
    if ((pfds[n - 1].revents & POLLIN) != 0) {
      char drain[64];
      while (::read(wake_pipe->read.get(), drain, sizeof drain) > 0) {
      }
    }
    for (size_t si = 0; si < streams.size(); ++si) {
      int i = idx_stream[si];
      if (i < 0 || pfds[static_cast<size_t>(i)].revents == 0) continue;
      StreamState& s = streams[si];
      while (true) {
        ssize_t r = ::read(s.fd.get(), buf.data(), buf.size());
        if (r > 0) {
          s.Append(buf.data(), static_cast<size_t>(r), text_limit(si), max_line(si),
                   line_callback(si));
          continue;
        }
        if (r < 0 && errno == EINTR) continue;
        if (r < 0 && errno == EAGAIN) break;
        s.Flush(line_callback(si));
        s.fd.Reset();  // EOF or error
        break;
      }
    }
    if (idx_in >= 0 && pfds[static_cast<size_t>(idx_in)].revents != 0) {
      while (stdin_off < spec.stdin_data.size()) {
        ssize_t w = WriteNoSigpipe(stdin_fd.get(), spec.stdin_data.data() + stdin_off,
                                   spec.stdin_data.size() - stdin_off);
        if (w > 0) {
          stdin_off += static_cast<size_t>(w);
          continue;
        }
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && errno == EAGAIN) break;
        stdin_off = spec.stdin_data.size();  // EPIPE: the child does not read its input
      }
      if (stdin_off >= spec.stdin_data.size()) stdin_fd.Reset();
    }
  }

  for (size_t si = 0; si < streams.size(); ++si) streams[si].Flush(line_callback(si));
  // The group may still hold stragglers of a stopped run; they must not outlive it.
  if (term_sent_at) send_group(SIGKILL);
  int status = 0;
  pid_t r = 0;
  do {
    r = ::waitpid(pid, &status, 0);
  } while (r < 0 && errno == EINTR);
  guard.Release();
  if (r == pid) {
    if (WIFEXITED(status)) {
      result.exit_code = WEXITSTATUS(status);
    } else if (WIFSIGNALED(status)) {
      result.exit_code = -1;
      result.signal = WTERMSIG(status);
    }
  }
  result.stdout_text = std::move(streams[0].text);
  result.stderr_text = std::move(streams[1].text);
  result.stdout_truncated = streams[0].truncated;
  result.stderr_truncated = streams[1].truncated;
  result.duration = std::chrono::duration_cast<milliseconds>(Clock::now() - started);
  return result;
}

}  // namespace ferry
