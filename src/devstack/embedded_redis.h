// A private redis-server for `ferry demo` and `ferry dev`: started on a free loopback port with
// no persistence and its own temporary directory, stopped (and the directory removed) when the
// object is destroyed. The child gets PR_SET_PDEATHSIG, so it also dies if Ferry is killed -9.
//
// Thread-safety: Start() and the destructor run on one thread, and that thread must outlive the
// server (PDEATHSIG fires when the forking thread ends). The accessors are safe from any thread
// once Start() returned.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <string>

#include "core/result.h"

namespace ferry::devstack {

struct EmbeddedRedisOptions {
  // Program to run; looked up on PATH.
  std::string program = "redis-server";
  // 0: a free loopback port chosen at start.
  int port = 0;
  // How long to wait for the first PONG.
  std::chrono::milliseconds startup_timeout = std::chrono::seconds(10);
};

class EmbeddedRedis {
 public:
  // Starts the server and waits until it answers PING. Errors: kNotFound when the program is not
  // installed, kUnavailable when it does not come up (its log is quoted in the message).
  static Result<std::unique_ptr<EmbeddedRedis>> Start(EmbeddedRedisOptions options = {});
  ~EmbeddedRedis();
  EmbeddedRedis(const EmbeddedRedis&) = delete;
  EmbeddedRedis& operator=(const EmbeddedRedis&) = delete;

  int port() const { return port_; }
  std::string url() const { return "redis://127.0.0.1:" + std::to_string(port_); }
  pid_t pid() const { return pid_; }
  // SIGTERM, wait up to 5 s, then SIGKILL. Idempotent; the destructor calls it.
  void Stop();

 private:
  EmbeddedRedis() = default;

  pid_t pid_ = -1;
  int port_ = 0;
  std::string dir_;
};

// True when something on 127.0.0.1:port answers "+PONG" to an inline PING within `timeout`.
bool PingRedis(int port, std::chrono::milliseconds timeout);

}  // namespace ferry::devstack
