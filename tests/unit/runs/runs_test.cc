// Generations, fencing tokens and unique keys of run tasks; the connection pool.
#include "runs/runs.h"

#include <gtest/gtest.h>

#include <vector>

#include "core/pool.h"

namespace ferry::runs {
namespace {

TEST(RunFencing, NewerGenerationOutranksEveryEpochOfOlderOnes) {
  EXPECT_EQ(RunFencingToken(0, 1), 1);
  EXPECT_LT(RunFencingToken(0, 1), RunFencingToken(0, 2));
  EXPECT_LT(RunFencingToken(0, 1000000), RunFencingToken(1, 1));
  EXPECT_EQ(RunGeneration(RunFencingToken(7, 42)), 7);
  EXPECT_EQ(RunGeneration(0), 0);
}

TEST(RunFencing, UniqueKeysPerGeneration) {
  EXPECT_EQ(RunTaskUniqueKey("01ABC", 0), "01ABC");  // the contract: key = run id
  EXPECT_EQ(RunTaskUniqueKey("01ABC", 2), "01ABC#2");
  EXPECT_EQ(RunTaskPayload("01ABC", 2), (Json{{"run_id", "01ABC"}, {"generation", 2}}));
}

TEST(RunPool, ReusesGoodConnectionsAndDropsBadOnes) {
  int opened = 0;
  Pool<int> pool([&]() -> Result<std::unique_ptr<int>> { return std::make_unique<int>(++opened); },
                 2);
  {
    auto a = pool.Acquire();
    ASSERT_TRUE(a);
    EXPECT_EQ(**a, 1);
  }
  {
    auto a = pool.Acquire();
    EXPECT_EQ(**a, 1);  // reused
    a->MarkBad();
  }
  auto b = pool.Acquire();
  EXPECT_EQ(**b, 2);  // the bad one was closed
}

// Opens `at_once` leases together, returns them all, then takes `at_once` again: how many
// connections were opened in all.
int OpenedForTwoPeaks(int max_idle, int at_once) {
  int opened = 0;
  Pool<int> pool([&]() -> Result<std::unique_ptr<int>> { return std::make_unique<int>(++opened); },
                 max_idle);
  for (int round = 0; round < 2; ++round) {
    std::vector<Pool<int>::Lease> held;
    for (int i = 0; i < at_once; ++i) {
      auto lease = pool.Acquire();
      EXPECT_TRUE(lease);
      if (lease) held.push_back(std::move(*lease));
    }
  }
  return opened;
}

TEST(RunPool, KeepsEveryConnectionWithoutALimitAndClosesThoseOverOne) {
  EXPECT_EQ(OpenedForTwoPeaks(0, 16), 16);      // the second peak reuses all sixteen
  EXPECT_EQ(OpenedForTwoPeaks(8, 16), 16 + 8);  // eight were closed and opened again
  EXPECT_EQ(OpenedForTwoPeaks(16, 16), 16);     // a limit at the peak loses none
  EXPECT_EQ(OpenedForTwoPeaks(15, 16), 16 + 1);
}

}  // namespace
}  // namespace ferry::runs
