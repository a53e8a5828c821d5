#include "harness.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace ferry::testing {
namespace fs = std::filesystem;

void ThrowUnlessPortTaken(const std::string& server, int port, std::unique_ptr<Process>& proc) {
  const std::string log = proc->Stdout() + proc->Stderr();
  proc.reset();
  if (log.find("Address already in use") == std::string::npos) {
    throw std::runtime_error(server + " did not start: " + log);
  }
  std::fprintf(stderr, "%s: port %d was taken meanwhile; trying another\n", server.c_str(), port);
}

void SleepMs(int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

int FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw std::runtime_error("socket() failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    throw std::runtime_error("bind() failed");
  }
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  int port = ntohs(addr.sin_port);
  ::close(fd);
  return port;
}

TempDir::TempDir() {
  std::random_device rd;
  const char* base = std::getenv("TMPDIR");
  fs::path root = base ? base : "/tmp";
  for (int i = 0; i < 100; ++i) {
    fs::path p = root / ("ferry-test-" + std::to_string(rd()));
    std::error_code ec;
    if (fs::create_directory(p, ec)) {
      path_ = p;
      fs::permissions(p, fs::perms::all, ec);  // a dropped-privilege child (postgres) may write
      return;
    }
  }
  throw std::runtime_error("cannot create a temporary directory");
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

Process::Process(Options options) : dir_(std::make_unique<TempDir>()) {
  std::vector<std::string> argv = options.argv;
  if (!options.run_as.empty()) {
    argv.insert(argv.begin(), {"runuser", "-u", options.run_as, "--"});
  }
  std::string out = (dir_->path() / "stdout").string();
  std::string err = (dir_->path() / "stderr").string();
  pid_ = ::fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    ::setpgid(0, 0);
    int ofd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int efd = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int nfd = ::open("/dev/null", O_RDONLY);
    ::dup2(nfd, 0);
    ::dup2(ofd, 1);
    ::dup2(efd, 2);
    if (!options.cwd.empty() && ::chdir(options.cwd.c_str()) != 0) ::_exit(127);
    for (auto& [k, v] : options.env) ::setenv(k.c_str(), v.c_str(), 1);
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    ::_exit(127);
  }
}

Process::~Process() {
  if (pid_ > 0 && !exit_code_) {
    ::kill(-pid_, SIGKILL);
    ::kill(pid_, SIGKILL);
    Wait(std::chrono::seconds(5));
  }
}

bool Process::Running() {
  if (exit_code_) return false;
  int status = 0;
  pid_t r = ::waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return false;
  }
  return true;
}

void Process::Signal(int sig) {
  if (!exit_code_) ::kill(pid_, sig);
}

std::optional<int> Process::Wait(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (Running()) {
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    SleepMs(10);
  }
  return exit_code_;
}

static std::string ReadFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string Process::Stdout() const { return ReadFile(dir_->path() / "stdout"); }
std::string Process::Stderr() const { return ReadFile(dir_->path() / "stderr"); }

bool Process::WaitForOutput(const std::string& needle, std::chrono::milliseconds timeout) {
  return Eventually([&] { return (Stdout() + Stderr()).find(needle) != std::string::npos; },
                    timeout);
}

CommandResult RunCommand(const std::vector<std::string>& argv, std::chrono::milliseconds timeout,
                         const std::map<std::string, std::string>& env) {
  Process p({argv, env, "", ""});
  CommandResult r;
  auto code = p.Wait(timeout);
  r.exit_code = code ? *code : -1;
  r.out = p.Stdout();
  r.err = p.Stderr();
  return r;
}

RedisServer::RedisServer() : RedisServer(Options{}) {}

RedisServer::RedisServer(Options options)
    : options_(std::move(options)), dir_(std::make_unique<TempDir>()), port_(FreePort()) {
  // A port FreePort found free may be taken by another test process before the server binds it
  // (they run in parallel): then another port, a few times.
  for (int tries = 1; !Launch(); ++tries) {
    if (tries == kPortTries) throw std::runtime_error("redis-server: no free port that held");
    port_ = FreePort();
  }
}

RedisServer::~RedisServer() { Stop(); }

pid_t RedisServer::pid() const { return proc_ ? proc_->pid() : -1; }

std::string RedisServer::url() const {
  std::string auth = options_.password.empty() ? "" : ":" + options_.password + "@";
  return "redis://" + auth + "127.0.0.1:" + std::to_string(port_);
}

bool RedisServer::Launch() {
  std::vector<std::string> argv = {"redis-server",
                                   "--port",
                                   std::to_string(port_),
                                   "--bind",
                                   "127.0.0.1",
                                   "--dir",
                                   dir_->path().string(),
                                   "--save",
                                   "",
                                   "--daemonize",
                                   "no",
                                   "--appendonly",
                                   options_.appendonly ? "yes" : "no",
                                   "--appendfsync",
                                   "everysec",
                                   "--maxmemory-policy",
                                   "noeviction"};
  if (!options_.password.empty()) {
    argv.push_back("--requirepass");
    argv.push_back(options_.password);
  }
  proc_ = std::make_unique<Process>(Process::Options{argv, {}, "", ""});
  // Up when this very process answers on the port (another test's server on a port both were
  // given must not pass for it) and has loaded its data: INFO answers while the AOF of a restart
  // is still loading, when every other command is refused with LOADING.
  const std::string mine = "process_id:" + std::to_string(proc_->pid());
  bool up = Eventually(
      [&] {
        if (!proc_->Running()) return true;  // ended: no use waiting
        const std::string info = Cli({"INFO"});
        return info.find(mine) != std::string::npos &&
               info.find("\nloading:0") != std::string::npos;
      },
      std::chrono::seconds(10));
  if (up && proc_->Running()) return true;
  ThrowUnlessPortTaken("redis-server", port_, proc_);
  return false;
}

void RedisServer::Start() {
  if (!Launch()) {
    throw std::runtime_error("redis-server: port " + std::to_string(port_) +
                             " was taken by another process meanwhile");
  }
}

void RedisServer::Stop() {
  if (!proc_) return;
  Cli({"SHUTDOWN"});
  if (!proc_->Wait(std::chrono::seconds(10))) proc_->Signal(SIGKILL);
  proc_.reset();
}

void RedisServer::Restart() {
  Stop();
  Start();
}

std::string RedisServer::Cli(const std::vector<std::string>& args) const {
  std::vector<std::string> argv = {"redis-cli", "-h", "127.0.0.1", "-p", std::to_string(port_)};
  if (!options_.password.empty()) {
    argv.push_back("--no-auth-warning");
    argv.push_back("-a");
    argv.push_back(options_.password);
  }
  argv.insert(argv.end(), args.begin(), args.end());
  auto r = RunCommand(argv, std::chrono::seconds(10));
  std::string out = r.out;
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out;
}

std::string FerryBinary() {
  if (const char* env = std::getenv("FERRY_BINARY")) return env;
#ifdef FERRY_BINARY_PATH
  return FERRY_BINARY_PATH;
#else
  return "ferry";
#endif
}

}  // namespace ferry::testing
