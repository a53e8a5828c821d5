// Shutdown signals for long-running commands (`ferry worker start`, `ferry demo --keep`).
// SIGINT and SIGTERM are blocked in the constructing thread, so every thread it starts afterwards
// inherits the mask, and a dedicated thread takes them with sigtimedwait: the callback runs on
// that ordinary thread, never inside a signal handler, so it may lock, log and call Stop().
//
// REQUIRES: construct before starting any other thread that must not receive the signals.
// Thread-safety: construct and destroy on one thread; the callback runs on the watcher thread.
#pragma once

#include <functional>
#include <thread>

namespace ferry::cli {

class SignalWatcher {
 public:
  // on_signal(signo, n): n counts signals received so far (1 for the first).
  explicit SignalWatcher(std::function<void(int signo, int n)> on_signal);
  // Stops the watcher thread (within ~200 ms). The signals stay blocked: a late SIGTERM during
  // cleanup must not kill the process half-way.
  ~SignalWatcher();
  SignalWatcher(const SignalWatcher&) = delete;
  SignalWatcher& operator=(const SignalWatcher&) = delete;

 private:
  std::function<void(int, int)> on_signal_;
  std::jthread thread_;
};

const char* SignalName(int signo);

}  // namespace ferry::cli
