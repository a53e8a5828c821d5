// DelayedThreads when the process cannot start a thread: pthread_create is replaced in this
// executable (its own binary, so no other test goes through it) by one that fails on demand.
#include <dlfcn.h>
#include <gtest/gtest.h>
#include <pthread.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <system_error>

#include "core/delayed_threads.h"
#include "thread_record.h"

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

using Record = testing::ThreadRecord;

TEST(DelayedThreadsFault, ATimerThatCannotStartThrowsAndLeavesNothingQueued) {
  Record record;
  DelayedThreads threads;
  fail_next = 1;
  EXPECT_THROW((void)threads.Start(milliseconds(1),
                                   [&](std::stop_token) { record.Mark(&Record::first_ran); }),
               std::system_error);
  // The next Start starts the timer; the slot of the call that threw must not be in it.
  auto kept =
      threads.Start(milliseconds(50), [&](std::stop_token) { record.Mark(&Record::second_ran); });
  ASSERT_TRUE(record.WaitFor([&] { return record.second_ran == 1; }));
  std::lock_guard lock(record.mu);
  EXPECT_EQ(record.first_ran, 0);
}

TEST(DelayedThreadsFault, ASlotWhoseThreadCannotStartIsTriedAgainAndTheProcessGoesOn) {
  Record record;
  DelayedThreads threads;
  auto warm = threads.Start(milliseconds(0), [](std::stop_token) {});  // the timer is up
  warm.Stop();
  fail_next = 2;  // the slot's first two tries
  auto kept =
      threads.Start(milliseconds(1), [&](std::stop_token) { record.Mark(&Record::second_ran); });
  ASSERT_TRUE(record.WaitFor([&] { return record.second_ran == 1; }));
  EXPECT_EQ(fail_next.load(), 0);
  EXPECT_TRUE(kept.started());
}

}  // namespace
}  // namespace ferry
