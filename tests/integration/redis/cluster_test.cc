// redis+cluster://: a real Redis Cluster made with `redis-cli --cluster create`. Every script runs
// on a cluster node (where Redis rejects a script that touches two slots), queues on different
// shards are consumed by one claimer, MOVED after a slot moved and ASK during a migration are
// handled. Resharding and failover under load are in fault_test.cc (FERRY_FAULT_TESTS=1).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <future>
#include <thread>

#include "deploy_support.h"
#include "harness.h"
#include "redis_topology.h"

namespace ferry::testing {
namespace {

using ::testing::HasSubstr;

RedisCluster::Options ThreeMasters() {
  RedisCluster::Options o;
  o.masters = 3;
  o.replicas = 0;
  return o;
}

// The first queue name "<stem><n>" whose slot `master` serves.
std::string QueueOnMaster(const RedisCluster& cluster, const std::string& stem, int master) {
  auto owners = cluster.SlotOwners();
  for (int i = 0; i < 10000; ++i) {
    std::string q = stem + std::to_string(i);
    if (owners[static_cast<size_t>(TestKeySlot(q))] == master) return q;
  }
  return "";
}

class RedisClusterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cluster_ = std::make_unique<RedisCluster>(ThreeMasters());
    auto masters = cluster_->Masters();
    ASSERT_EQ(masters.size(), 3u);
    qa_ = QueueOnMaster(*cluster_, "a", static_cast<int>(masters[0]));
    qb_ = QueueOnMaster(*cluster_, "b", static_cast<int>(masters[1]));
    ASSERT_FALSE(qa_.empty());
    ASSERT_FALSE(qb_.empty());
    options_ = OptionsFor(cluster_->url());
  }
  std::unique_ptr<RedisCluster> cluster_;
  std::string qa_;
  std::string qb_;
  BrokerOptions options_;
};

TEST_F(RedisClusterTest, EveryScriptOnACluster) {
  auto broker = OpenOk(options_);
  ASSERT_TRUE(broker);
  ExerciseEverything(*broker, options_, qa_);
  auto info = broker->ServerInfo();
  ASSERT_TRUE(info) << info.error().ToString();
  EXPECT_EQ((*info)["ferry_topology"], "cluster");
  EXPECT_EQ((*info)["ferry_cluster_state"], "ok");
  EXPECT_EQ((*info)["ferry_cluster_slots_assigned"], "16384");
  EXPECT_EQ((*info)["ferry_cluster_masters"], "3");
  auto missing = broker->MissingPermissions();
  ASSERT_TRUE(missing) << missing.error().ToString();
  EXPECT_TRUE(missing->empty());
}

TEST_F(RedisClusterTest, OneClaimerConsumesQueuesOnTwoShards) {
  auto broker = OpenOk(options_);
  ASSERT_TRUE(broker);
  // Strict priority across shards: qa first.
  EXPECT_FALSE(RoundTrip(*broker, qb_, {qa_, qb_}).empty());
  EXPECT_FALSE(RoundTrip(*broker, qa_, {qa_, qb_}).empty());
  SubmitRequest a;
  a.kind = "noop";
  a.queue = qa_;
  SubmitRequest b = a;
  b.queue = qb_;
  auto batch = broker->SubmitBatch({b, a});  // one call, two shards
  ASSERT_TRUE(batch) << batch.error().ToString();
  auto first = broker->Claim({qa_, qb_}, "w1", 10, std::chrono::milliseconds(0));
  ASSERT_TRUE(first && first->size() == 1);
  EXPECT_EQ(first->front().queue, qa_);
  auto second = broker->Claim({qa_, qb_}, "w1", 10, std::chrono::milliseconds(0));
  ASSERT_TRUE(second && second->size() == 1);
  EXPECT_EQ(second->front().queue, qb_);

  // Blocking on both shards: a task that lands on the second one while the claimer waits.
  auto producer = std::async(std::launch::async, [&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    auto p = OpenOk(options_);
    return p ? static_cast<bool>(p->Submit(b)) : false;
  });
  auto t0 = std::chrono::steady_clock::now();
  auto waited = broker->Claim({qa_, qb_}, "w1", 10, std::chrono::seconds(5));
  ASSERT_TRUE(producer.get());
  ASSERT_TRUE(waited) << waited.error().ToString();
  ASSERT_EQ(waited->size(), 1u);
  EXPECT_EQ(waited->front().queue, qb_);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
  auto queues = broker->ListQueues();
  ASSERT_TRUE(queues);
  EXPECT_EQ(queues->size(), 2u);
}

TEST_F(RedisClusterTest, FollowsMovedAfterTheQueueSlotMoves) {
  auto broker = OpenOk(options_);
  ASSERT_TRUE(broker);
  SubmitRequest req;
  req.kind = "echo";
  req.queue = qa_;
  auto s = broker->Submit(req);
  ASSERT_TRUE(s);
  const int slot = TestKeySlot(qa_);
  const size_t from = static_cast<size_t>(cluster_->MasterOfSlot(slot));
  const size_t to = static_cast<size_t>(cluster_->MasterOfSlot(TestKeySlot(qb_)));
  cluster_->BeginSlotMove(slot, from, to);
  while (cluster_->MoveSlotKeys(slot, from, to, 100) > 0) {
  }
  cluster_->EndSlotMove(slot, to);
  // The broker's slot map still names the old master: MOVED, then the new one.
  auto claimed = broker->Claim({qa_}, "w1", 10, std::chrono::milliseconds(0));
  ASSERT_TRUE(claimed) << claimed.error().ToString();
  ASSERT_EQ(claimed->size(), 1u);
  EXPECT_EQ(claimed->front().id, s->id);
  EXPECT_FALSE(RoundTrip(*broker, qa_).empty());
  EXPECT_EQ(cluster_->node(to).Cli({"EXISTS", options_.prefix + ":{" + qa_ + "}:task:" + s->id}),
            "1");
}

TEST_F(RedisClusterTest, ScriptsWaitWhileTheirSlotMigrates) {
  auto broker = OpenOk(options_);
  ASSERT_TRUE(broker);
  SubmitRequest req;
  req.kind = "echo";
  req.queue = qa_;
  auto first = broker->Submit(req);
  ASSERT_TRUE(first);
  const int slot = TestKeySlot(qa_);
  const size_t from = static_cast<size_t>(cluster_->MasterOfSlot(slot));
  const size_t to = static_cast<size_t>(cluster_->MasterOfSlot(TestKeySlot(qb_)));
  cluster_->BeginSlotMove(slot, from, to);
  ASSERT_GT(cluster_->MoveSlotKeys(slot, from, to, 2), 0);  // part of the queue has moved

  // A plain read of a key follows ASK wherever the key is now.
  auto rec = broker->GetTask(first->id);
  ASSERT_TRUE(rec) << rec.error().ToString();
  ASSERT_TRUE(rec->has_value());

  // A script of the queue must not run on half of its keys: it waits for the migration.
  auto submit = std::async(std::launch::async, [&] {
    auto b = OpenOk(options_);
    return b ? b->Submit(req) : Result<SubmitResult>(Fail(ErrorCode::kInternal, "no broker"));
  });
  EXPECT_EQ(submit.wait_for(std::chrono::milliseconds(500)), std::future_status::timeout);
  while (cluster_->MoveSlotKeys(slot, from, to, 100) > 0) {
  }
  cluster_->EndSlotMove(slot, to);
  auto second = submit.get();
  ASSERT_TRUE(second) << second.error().ToString();
  auto claimed = broker->Claim({qa_}, "w1", 10, std::chrono::milliseconds(0));
  ASSERT_TRUE(claimed) << claimed.error().ToString();
  EXPECT_EQ(claimed->size(), 2u);
}

TEST_F(RedisClusterTest, AMigrationLongerThanTheTimeoutIsAnError) {
  options_.io_timeout = std::chrono::milliseconds(500);
  auto broker = OpenOk(options_);
  ASSERT_TRUE(broker);
  SubmitRequest req;
  req.kind = "echo";
  req.queue = qa_;
  ASSERT_TRUE(broker->Submit(req));
  const int slot = TestKeySlot(qa_);
  const size_t from = static_cast<size_t>(cluster_->MasterOfSlot(slot));
  const size_t to = static_cast<size_t>(cluster_->MasterOfSlot(TestKeySlot(qb_)));
  cluster_->BeginSlotMove(slot, from, to);
  ASSERT_GT(cluster_->MoveSlotKeys(slot, from, to, 1), 0);
  auto s = broker->Submit(req);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, ErrorCode::kUnavailable);
  EXPECT_THAT(s.error().message, HasSubstr("ASK"));
  while (cluster_->MoveSlotKeys(slot, from, to, 100) > 0) {
  }
  cluster_->EndSlotMove(slot, to);
  EXPECT_TRUE(broker->Submit(req));
}

}  // namespace
}  // namespace ferry::testing
