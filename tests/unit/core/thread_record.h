// What functions started on threads of their own did, for a test to wait for (bounded, so a
// failing test ends instead of hanging).
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>

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
};

}  // namespace ferry::testing
