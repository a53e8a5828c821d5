#include "devstack/embedded_redis.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

namespace ferry::devstack {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// Closes a socket on scope exit.
struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

sockaddr_in Loopback(int port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  return addr;
}

Result<int> FreeLoopbackPort() {
  Fd s{::socket(AF_INET, SOCK_STREAM, 0)};
  if (s.fd < 0) return Fail(ErrorCode::kInternal, std::string("socket: ") + std::strerror(errno));
  sockaddr_in addr = Loopback(0);
  if (::bind(s.fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    return Fail(ErrorCode::kInternal, std::string("bind: ") + std::strerror(errno));
  }
  socklen_t len = sizeof addr;
  ::getsockname(s.fd, reinterpret_cast<sockaddr*>(&addr), &len);
  return static_cast<int>(ntohs(addr.sin_port));
}

std::string ReadTail(const std::string& path, size_t max_bytes) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  if (s.size() > max_bytes) s = s.substr(s.size() - max_bytes);
  return s;
}

// Whether the child has exited (reaps it).
bool Exited(pid_t pid, int* status) { return ::waitpid(pid, status, WNOHANG) == pid; }

}  // namespace

bool PingRedis(int port, std::chrono::milliseconds timeout) {
  Fd s{::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0)};
  if (s.fd < 0) return false;
  sockaddr_in addr = Loopback(port);
  int timeout_ms = static_cast<int>(timeout.count());
  if (::connect(s.fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    if (errno != EINPROGRESS) return false;
    pollfd p{s.fd, POLLOUT, 0};
    if (::poll(&p, 1, timeout_ms) != 1) return false;
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(s.fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) return false;
  }
  static constexpr char kPing[] = "PING\r\n";
  if (::send(s.fd, kPing, sizeof kPing - 1, MSG_NOSIGNAL) !=
      static_cast<ssize_t>(sizeof kPing - 1)) {
    return false;
  }
  std::string reply;
  auto deadline = Clock::now() + timeout;
  while (reply.find("\r\n") == std::string::npos && Clock::now() < deadline) {
    pollfd p{s.fd, POLLIN, 0};
    if (::poll(&p, 1, timeout_ms) != 1) return false;
    char buf[64];
    ssize_t n = ::recv(s.fd, buf, sizeof buf, 0);
    if (n <= 0) return false;
    reply.append(buf, static_cast<size_t>(n));
  }
  return reply.rfind("+PONG", 0) == 0;
}

Result<std::unique_ptr<EmbeddedRedis>> EmbeddedRedis::Start(EmbeddedRedisOptions options) {
  std::unique_ptr<EmbeddedRedis> self(new EmbeddedRedis());
  const char* tmp = std::getenv("TMPDIR");
  std::string templ = std::string(tmp && *tmp ? tmp : "/tmp") + "/ferry-redis-XXXXXX";
  std::vector<char> buf(templ.begin(), templ.end());
  buf.push_back('\0');
  if (::mkdtemp(buf.data()) == nullptr) {
    return Fail(ErrorCode::kInternal,
                "cannot create a directory for redis-server: " + std::string(std::strerror(errno)));
  }
  self->dir_ = buf.data();
  std::string log_path = self->dir_ + "/redis.log";

  // A port chosen free can be taken before redis binds it; try a few.
  std::string last_log;
  for (int attempt = 0; attempt < 3; ++attempt) {
    int port = options.port;
    if (port == 0) {
      auto p = FreeLoopbackPort();
      if (!p) return Fail(p.error());
      port = *p;
    }
    std::vector<std::string> argv = {options.program,
                                     "--port",
                                     std::to_string(port),
                                     "--bind",
                                     "127.0.0.1",
                                     "--save",
                                     "",
                                     "--appendonly",
                                     "no",
                                     "--dir",
                                     self->dir_,
                                     "--daemonize",
                                     "no",
                                     "--logfile",
                                     log_path};
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    // Used after fork: only async-signal-safe calls until exec.
    int exec_err_pipe[2];
    if (::pipe2(exec_err_pipe, O_CLOEXEC) != 0) {
      return Fail(ErrorCode::kInternal, std::string("pipe: ") + std::strerror(errno));
    }
    pid_t pid = ::fork();
    if (pid < 0) {
      ::close(exec_err_pipe[0]);
      ::close(exec_err_pipe[1]);
      return Fail(ErrorCode::kInternal, std::string("fork: ") + std::strerror(errno));
    }
    if (pid == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      ::setpgid(0, 0);  // a Ctrl-C at the terminal is Ferry's to handle, not redis-server's
      sigset_t none;
      sigemptyset(&none);
      ::sigprocmask(SIG_SETMASK, &none, nullptr);
      int devnull = ::open("/dev/null", O_RDWR);
      if (devnull >= 0) {
        ::dup2(devnull, 0);
        ::dup2(devnull, 1);
      }
      ::execvp(args[0], args.data());
      int err = errno;
      ssize_t ignored = ::write(exec_err_pipe[1], &err, sizeof err);
      (void)ignored;
      ::_exit(127);
    }
    ::close(exec_err_pipe[1]);
    int exec_errno = 0;
    ssize_t n = ::read(exec_err_pipe[0], &exec_errno, sizeof exec_errno);
    ::close(exec_err_pipe[0]);
    if (n == static_cast<ssize_t>(sizeof exec_errno)) {
      int status = 0;
      ::waitpid(pid, &status, 0);
      return Fail(ErrorCode::kNotFound, "cannot run " + options.program + ": " +
                                            std::strerror(exec_errno) +
                                            " (install the redis-server package)");
    }
    self->pid_ = pid;
    self->port_ = port;
    auto deadline = Clock::now() + options.startup_timeout;
    bool exited = false;
    while (Clock::now() < deadline) {
      int status = 0;
      if (Exited(pid, &status)) {
        exited = true;
        break;
      }
      if (PingRedis(port, std::chrono::milliseconds(200))) return self;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    last_log = ReadTail(log_path, 2000);
    if (exited) {
      self->pid_ = -1;
      if (options.port != 0) break;  // a fixed port: retrying cannot help
      continue;
    }
    self->Stop();
    return Fail(ErrorCode::kUnavailable,
                "redis-server on port " + std::to_string(port) + " did not answer PING within " +
                    std::to_string(options.startup_timeout.count()) + " ms; its log:\n" + last_log);
  }
  return Fail(ErrorCode::kUnavailable, "redis-server did not start; its log:\n" + last_log);
}

void EmbeddedRedis::Stop() {
  if (pid_ > 0) {
    ::kill(pid_, SIGTERM);
    auto deadline = Clock::now() + std::chrono::seconds(5);
    int status = 0;
    bool gone = false;
    while (Clock::now() < deadline) {
      if (Exited(pid_, &status)) {
        gone = true;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (!gone) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, &status, 0);
    }
    pid_ = -1;
  }
  if (!dir_.empty()) {
    std::error_code ec;
    fs::remove_all(dir_, ec);
    dir_.clear();
  }
}

EmbeddedRedis::~EmbeddedRedis() { Stop(); }

}  // namespace ferry::devstack
