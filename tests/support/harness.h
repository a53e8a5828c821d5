// Test harness: real servers and real processes on free loopback ports, cleaned up by RAII.
// Used by integration tests only; unit tests need none of this.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace ferry::testing {

// A port that was free when asked (bind to 127.0.0.1:0 and read it back).
int FreePort();
// How many ports a test server tries before it gives up (FreePort's port may be taken meanwhile).
constexpr int kPortTries = 5;

// A fresh directory under $TMPDIR removed (recursively) on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// A child process with captured stdout/stderr (to files), killed on destruction.
class Process {
 public:
  struct Options {
    std::vector<std::string> argv;
    std::map<std::string, std::string> env;  // added to the parent's environment
    std::string cwd;
    std::string run_as;  // user name to drop to (runuser), empty = self
  };
  explicit Process(Options options);
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }
  bool Running();
  void Signal(int sig);
  // Waits for exit up to `timeout`; returns the exit code (128+signal when killed by one).
  std::optional<int> Wait(std::chrono::milliseconds timeout);
  std::string Stdout() const;
  std::string Stderr() const;
  // Polls Stdout()+Stderr() until `needle` appears or `timeout` passes.
  bool WaitForOutput(const std::string& needle, std::chrono::milliseconds timeout);

 private:
  std::unique_ptr<TempDir> dir_;
  pid_t pid_ = -1;
  std::optional<int> exit_code_;
};

// Runs a command to completion (bounded by timeout) and returns code + output.
struct CommandResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};
CommandResult RunCommand(const std::vector<std::string>& argv,
                         std::chrono::milliseconds timeout = std::chrono::seconds(60),
                         const std::map<std::string, std::string>& env = {});

// For a test server that ended before it answered (`proc`, reset here): returns when its output
// says its port was taken (by another test process, between FreePort and the bind; said on
// stderr, and the caller tries another port), else throws with that output.
void ThrowUnlessPortTaken(const std::string& server, int port, std::unique_ptr<Process>& proc);

// A private redis-server on a free loopback port with its own data directory (AOF on, so a
// restart keeps the data). Stopped and removed on destruction.
class RedisServer {
 public:
  struct Options {
    std::string password;  // requirepass when non-empty
    bool appendonly = true;
  };
  RedisServer();
  explicit RedisServer(Options options);
  ~RedisServer();
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  int port() const { return port_; }
  // The server process, for tests that pause it (SIGSTOP) to lose an answer.
  pid_t pid() const;
  std::string url() const;  // redis://[:password@]127.0.0.1:port
  // SHUTDOWN (persists), then start again on the same port and data directory.
  void Restart();
  void Stop();
  void Start();
  // Runs redis-cli against this server and returns its stdout (trimmed).
  std::string Cli(const std::vector<std::string>& args) const;

 private:
  // Starts the server on port_ and waits until it answers; false when it ended because the port
  // was taken (by another test process, between FreePort and the bind).
  bool Launch();

  Options options_;
  std::unique_ptr<TempDir> dir_;
  std::unique_ptr<Process> proc_;
  int port_ = 0;
};

// Path to the built `ferry` binary (FERRY_BINARY compile definition or $FERRY_BINARY).
std::string FerryBinary();

void SleepMs(int ms);

// Polls pred every 20 ms until it holds or timeout passes; returns its last value.
template <typename Pred>
bool Eventually(Pred pred, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    if (pred()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    SleepMs(20);
  }
}

}  // namespace ferry::testing
