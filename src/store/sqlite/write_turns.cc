#include "store/sqlite/write_turns.h"

#include <condition_variable>
#include <deque>
#include <mutex>

#include "store/sqlite/per_file.h"

namespace ferry::store_internal {
namespace {

class FifoTurns final : public WriteTurns {
 public:
  bool Acquire(std::chrono::milliseconds timeout) override {
    std::unique_lock lock(mu_);
    if (!held_ && waiters_.empty()) {
      held_ = true;
      return true;
    }
    Waiter me;
    waiters_.push_back(&me);
    if (me.cv.wait_for(lock, timeout, [&] { return me.granted; })) return true;
    // Timed out before being handed the turn: leave the line (the turn was not given to us, so
    // nothing is held on our behalf).
    std::erase(waiters_, &me);
    return false;
  }

  size_t Waiters() const override {
    std::lock_guard lock(mu_);
    return waiters_.size();
  }

  void Release() override {
    std::lock_guard lock(mu_);
    if (waiters_.empty()) {
      held_ = false;
      return;
    }
    // Handed over directly: the turn never looks free to a newcomer while someone waits.
    Waiter* next = waiters_.front();
    waiters_.pop_front();
    next->granted = true;
    next->cv.notify_one();
  }

 private:
  struct Waiter {
    std::condition_variable cv;
    bool granted = false;
  };

  mutable std::mutex mu_;
  bool held_ = false;
  std::deque<Waiter*> waiters_;  // in arrival order; each lives on its waiting thread's stack
};

}  // namespace

std::shared_ptr<WriteTurns> WriteTurns::ForFile(const std::string& path) {
  return SharedPerFile<WriteTurns>(CanonicalFileKey(path),
                                   [] { return std::make_shared<FifoTurns>(); });
}

}  // namespace ferry::store_internal
