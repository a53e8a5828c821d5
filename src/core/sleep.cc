#include "core/sleep.h"

#include <condition_variable>
#include <mutex>

namespace ferry {

bool SleepFor(std::stop_token stop, std::chrono::milliseconds d) {
  if (d.count() <= 0) return !stop.stop_requested();
  std::mutex mu;
  std::condition_variable_any cv;
  std::unique_lock lock(mu);
  // Nothing notifies cv: only the stop token (or the time) ends the wait.
  cv.wait_for(lock, stop, d, [] { return false; });
  return !stop.stop_requested();
}

}  // namespace ferry
