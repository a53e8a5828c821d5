// What functions started on threads of their own did, for a test to wait for (bounded, so a
// failing test ends instead of hanging).
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <stop_token>

namespace ferry::testing {

struct ThreadRecord {
  std::mutex mu;
  std::condition_variable_any cv;
  int first_ran = 0;
  int second_ran = 0;
  bool stop_seen = false;

  template <class Pred>
  bool WaitFor(Pred pred) {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, std::chrono::seconds(10), pred);
  }
  void Mark(int ThreadRecord::*field) {
    std::lock_guard lock(mu);
    ++(this->*field);
    cv.notify_all();
  }
  // A started function that marks first_ran, then runs until its stop is requested and says it
  // saw it (stop_seen).
  void RunUntilStopped(std::stop_token stop) {
    Mark(&ThreadRecord::first_ran);
    std::unique_lock lock(mu);
    cv.wait(lock, stop, [] { return false; });
    stop_seen = true;
  }
};

}  // namespace ferry::testing
