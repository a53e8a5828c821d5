#include "core/delayed_threads.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>

#include "thread_record.h"

namespace ferry {
namespace {

using std::chrono::hours;
using std::chrono::milliseconds;

using Record = testing::ThreadRecord;

// The delays are long enough that a test thread descheduled between a Start and its Stop does
// not start what it means to stop.
TEST(DelayedThreadsTest, AHandleStoppedBeforeItsDelayNeverRunsItsFunction) {
  Record record;
  DelayedThreads threads;
  auto first =
      threads.Start(milliseconds(500), [&](std::stop_token) { record.Mark(&Record::first_ran); });
  first.Stop();
  // Due after the first would have been: by the time it runs, the timer has passed the first's
  // time, and a first still queued would have run (and ended: its thread is joined when its slot
  // goes) before it.
  auto second =
      threads.Start(milliseconds(600), [&](std::stop_token) { record.Mark(&Record::second_ran); });
  ASSERT_TRUE(record.WaitFor([&] { return record.second_ran == 1; }));
  EXPECT_EQ(record.first_ran, 0);
}

TEST(DelayedThreadsTest, AHandleStillThereAfterItsDelayRunsItsFunctionAndStopsItOnStop) {
  Record record;
  DelayedThreads threads;
  auto handle =
      threads.Start(milliseconds(1), [&](std::stop_token st) { record.RunUntilStopped(st); });
  ASSERT_TRUE(record.WaitFor([&] { return record.first_ran == 1; }));
  EXPECT_TRUE(handle.started());
  handle.Stop();  // requests the stop and joins
  std::lock_guard lock(record.mu);
  EXPECT_TRUE(record.stop_seen);
}

TEST(DelayedThreadsTest, ASoonerSlotIsStartedWhileTheTimerWaitsForALaterOne) {
  Record record;
  DelayedThreads threads;
  auto later = threads.Start(hours(1), [&](std::stop_token) { record.Mark(&Record::first_ran); });
  // The timer asleep until the later one's time, so the sooner one has to wake it.
  const auto asleep_on_later = [&] {
    auto until = threads.SleepingUntil();
    return until && *until > DelayedThreads::Clock::now() + std::chrono::minutes(30);
  };
  const auto give_up = DelayedThreads::Clock::now() + std::chrono::seconds(10);
  while (!asleep_on_later() && DelayedThreads::Clock::now() < give_up) std::this_thread::yield();
  ASSERT_TRUE(asleep_on_later());
  auto sooner =
      threads.Start(milliseconds(1), [&](std::stop_token) { record.Mark(&Record::second_ran); });
  EXPECT_TRUE(record.WaitFor([&] { return record.second_ran == 1; }));
  EXPECT_EQ(record.first_ran, 0);
  EXPECT_FALSE(later.started());
}

TEST(DelayedThreadsTest, ManyShortScopesStartNothingAndTheTimerStillServesALongOne) {
  Record record;
  DelayedThreads threads;
  for (int i = 0; i < 1000; ++i) {
    auto h =
        threads.Start(milliseconds(500), [&](std::stop_token) { record.Mark(&Record::first_ran); });
  }  // each handle goes at once
  auto kept =
      threads.Start(milliseconds(600), [&](std::stop_token) { record.Mark(&Record::second_ran); });
  ASSERT_TRUE(record.WaitFor([&] { return record.second_ran == 1; }));
  EXPECT_EQ(record.first_ran, 0);
}

TEST(DelayedThreadsTest, AMovedHandleOwnsTheThreadAndAnEmptyOneStopsNothing) {
  Record record;
  DelayedThreads threads;
  DelayedThreads::Handle empty;
  empty.Stop();
  EXPECT_FALSE(empty.started());
  auto original =
      threads.Start(milliseconds(1), [&](std::stop_token st) { record.RunUntilStopped(st); });
  DelayedThreads::Handle moved = std::move(original);
  ASSERT_TRUE(record.WaitFor([&] { return record.first_ran == 1; }));
  original.Stop();  // moved from: owns nothing
  {
    std::lock_guard lock(record.mu);
    EXPECT_FALSE(record.stop_seen);
  }
  moved.Stop();
  std::lock_guard lock(record.mu);
  EXPECT_TRUE(record.stop_seen);
}

}  // namespace
}  // namespace ferry
