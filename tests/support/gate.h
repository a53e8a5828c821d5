// A gate that holds the threads reaching it until the test opens it: a process paused at one
// precise step (a GC pause, SIGSTOP, a slow disk), so a race that is rare in production happens
// in the test every time, in the order the test chooses.
//
// Thread-safety: every method may be called from any thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>

namespace ferry::testing {

class Gate {
 public:
  Gate() = default;
  Gate(const Gate&) = delete;
  Gate& operator=(const Gate&) = delete;
  ~Gate() { Open(); }

  // Called by the code under test: counts the arrival, then waits until the gate is open. The
  // wait is bounded (a minute) so a failing test ends instead of hanging.
  void Arrive() {
    std::unique_lock lock(mu_);
    ++arrived_;
    cv_.notify_all();
    cv_.wait_for(lock, std::chrono::minutes(1), [this] { return open_; });
  }

  // Called by the test: waits until `n` threads arrived; false after `timeout`.
  bool WaitArrived(std::chrono::milliseconds timeout, int n = 1) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return arrived_ >= n; });
  }

  // Lets every waiting and every later arrival through.
  void Open() {
    std::lock_guard lock(mu_);
    open_ = true;
    cv_.notify_all();
  }

  int arrived() const {
    std::lock_guard lock(mu_);
    return arrived_;
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  int arrived_ = 0;    // Guarded by mu_
  bool open_ = false;  // Guarded by mu_
};

}  // namespace ferry::testing
