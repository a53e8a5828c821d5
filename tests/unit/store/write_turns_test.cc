// WriteTurns (src/store/sqlite/write_turns.h): a process's SQLite writers of one file take turns
// in arrival order, each handed the turn directly, and a waiter that gives up leaves no trace.
#include "store/sqlite/write_turns.h"

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <mutex>
#include <thread>
#include <vector>

#include "harness.h"

namespace ferry::store_internal {
namespace {

using namespace std::chrono_literals;
using testing::Eventually;

TEST(WriteTurns, WaitersGetTheTurnInArrivalOrder) {
  testing::TempDir dir;
  auto turns = WriteTurns::ForFile((dir.path() / "a.db").string());
  ASSERT_TRUE(turns->Acquire(1s));
  std::mutex mu;
  std::vector<int> order;
  std::vector<std::thread> threads;
  for (int i = 0; i < 5; ++i) {
    threads.emplace_back([&, i] {
      ASSERT_TRUE(turns->Acquire(30s));
      {
        std::lock_guard lock(mu);
        order.push_back(i);
      }
      turns->Release();
    });
    // The next one starts only once this one is in line.
    ASSERT_TRUE(Eventually([&] { return turns->Waiters() == static_cast<size_t>(i) + 1; }, 10s));
  }
  turns->Release();
  for (auto& t : threads) t.join();
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4}));
  EXPECT_EQ(turns->Waiters(), 0u);
}

TEST(WriteTurns, AReleasedTurnGoesToTheWaiterNotToANewcomer) {
  testing::TempDir dir;
  auto turns = WriteTurns::ForFile((dir.path() / "a.db").string());
  ASSERT_TRUE(turns->Acquire(1s));
  bool waiter_got_it = false;
  std::thread waiter([&] { waiter_got_it = turns->Acquire(30s); });  // keeps the turn it gets
  ASSERT_TRUE(Eventually([&] { return turns->Waiters() == 1; }, 10s));
  turns->Release();
  // At once, before the waiter has even woken: the turn is already its, not free to take.
  EXPECT_FALSE(turns->Acquire(0ms)) << "the turn was left free for a newcomer";
  waiter.join();
  EXPECT_TRUE(waiter_got_it);
  EXPECT_FALSE(turns->Acquire(1ms));
  turns->Release();  // the waiter's
  EXPECT_TRUE(turns->Acquire(1ms));
  turns->Release();
}

TEST(WriteTurns, AWaiterThatGivesUpLeavesTheLine) {
  testing::TempDir dir;
  auto turns = WriteTurns::ForFile((dir.path() / "a.db").string());
  ASSERT_TRUE(turns->Acquire(1s));
  EXPECT_FALSE(turns->Acquire(20ms));
  EXPECT_EQ(turns->Waiters(), 0u);
  turns->Release();
  // Nobody holds it now, although one gave up: the next caller gets it at once.
  EXPECT_TRUE(turns->Acquire(1ms));
  turns->Release();
}

TEST(WriteTurns, OneFileSharesItsTurnsWhateverItsSpelling) {
  testing::TempDir dir;
  std::filesystem::create_directories(dir.path() / "sub");
  auto a = WriteTurns::ForFile((dir.path() / "a.db").string());
  auto same = WriteTurns::ForFile((dir.path() / "sub" / ".." / "a.db").string());
  auto other = WriteTurns::ForFile((dir.path() / "b.db").string());
  EXPECT_EQ(a.get(), same.get());
  EXPECT_NE(a.get(), other.get());
  ASSERT_TRUE(a->Acquire(1s));
  EXPECT_FALSE(same->Acquire(1ms));
  EXPECT_TRUE(other->Acquire(1ms));
  other->Release();
  a->Release();
}

}  // namespace
}  // namespace ferry::store_internal
