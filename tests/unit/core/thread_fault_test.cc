// DelayedThreads when the process cannot start a thread: pthread_create is replaced in this
// executable (its own binary, so no other test goes through it) by one that fails on demand.
#include <dlfcn.h>
#include <gtest/gtest.h>
#include <pthread.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <system_error>

#include "core/delayed_threads.h"

namespace {
std::atomic<int> fail_next{0};  // how many of the next thread starts fail
}  // namespace

extern "C" int pthread_create(pthread_t* thread, const pthread_attr_t* attr, void* (*start)(void*),
                              void* arg) {
  using Real = int (*)(pthread_t*, const pthread_attr_t*, void* (*)(void*), void*);
  static const auto real = reinterpret_cast<Real>(dlsym(RTLD_NEXT, "pthread_create"));
  int left = fail_next.load();
  while (left > 0) {
    if (fail_next.compare_exchange_weak(left, left - 1)) return EAGAIN;
  }
  return real(thread, attr, start, arg);
}

namespace ferry {
namespace {

using std::chrono::milliseconds;

struct Ran {
  std::mutex mu;
  std::condition_variable cv;
  int orphan = 0;
  int kept = 0;
  void Mark(int Ran::*field) {
    std::lock_guard lock(mu);
    ++(this->*field);
    cv.notify_all();
  }
  bool WaitKept() {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, std::chrono::seconds(10), [this] { return kept == 1; });
  }
};

TEST(DelayedThreadsFault, ATimerThatCannotStartThrowsAndLeavesNothingQueued) {
  Ran ran;
  DelayedThreads threads;
  fail_next = 1;
  EXPECT_THROW(
      (void)threads.Start(milliseconds(1), [&](std::stop_token) { ran.Mark(&Ran::orphan); }),
      std::system_error);
  // The next Start starts the timer; the slot of the call that threw must not be in it.
  auto kept = threads.Start(milliseconds(50), [&](std::stop_token) { ran.Mark(&Ran::kept); });
  ASSERT_TRUE(ran.WaitKept());
  std::lock_guard lock(ran.mu);
  EXPECT_EQ(ran.orphan, 0);
}

TEST(DelayedThreadsFault, ASlotWhoseThreadCannotStartIsTriedAgainAndTheProcessGoesOn) {
  Ran ran;
  DelayedThreads threads;
  auto warm = threads.Start(milliseconds(0), [](std::stop_token) {});  // the timer is up
  warm.Stop();
  fail_next = 2;  // the slot's first two tries
  auto kept = threads.Start(milliseconds(1), [&](std::stop_token) { ran.Mark(&Ran::kept); });
  ASSERT_TRUE(ran.WaitKept());
  EXPECT_EQ(fail_next.load(), 0);
  EXPECT_TRUE(kept.started());
}

}  // namespace
}  // namespace ferry
