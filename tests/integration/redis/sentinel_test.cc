// redis+sentinel://: master discovery through real sentinels (`redis-server --sentinel`), a new
// master found after a failover, READONLY from a replica, and the WAIT durability option. The
// kill -9 failover under 2,000 tasks is in fault_test.cc (FERRY_FAULT_TESTS=1).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "deploy_support.h"
#include "harness.h"
#include "redis_topology.h"

namespace ferry::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

SentinelGroup::Options GroupOptions() {
  SentinelGroup::Options o;
  o.replicas = 1;
  o.sentinels = 3;
  o.password = "sentinel-test";
  return o;
}

TEST(RedisSentinel, DiscoversTheMasterThenATask) {
  SentinelGroup group(GroupOptions());
  BrokerOptions o = OptionsFor(group.url());
  auto broker = OpenOk(o);
  ASSERT_TRUE(broker);
  ExerciseEverything(*broker, o);
  auto info = broker->ServerInfo();
  ASSERT_TRUE(info) << info.error().ToString();
  EXPECT_EQ((*info)["ferry_topology"], "sentinel");
  EXPECT_EQ((*info)["ferry_master"], group.node(0).address());
  EXPECT_EQ((*info)["ferry_sentinels_answered"], "3");
  EXPECT_THAT((*info)["ferry_sentinel_quorum"], StartsWith("OK"));
  EXPECT_EQ((*info)["connected_slaves"], "1");
}

TEST(RedisSentinel, UnknownMasterNameIsExplained) {
  SentinelGroup::Options go = GroupOptions();
  go.sentinels = 1;
  SentinelGroup group(go);
  std::string url = group.url();
  url.replace(url.rfind("/mymaster"), 9, "/nosuchmaster");
  auto b = MakeRedisBrokerFactory(OptionsFor(url))->Open();
  ASSERT_FALSE(b);
  EXPECT_EQ(b.error().code, ErrorCode::kUnavailable);
  EXPECT_THAT(b.error().message, HasSubstr("does not know master 'nosuchmaster'"));
}

TEST(RedisSentinel, FollowsTheMasterAfterAFailover) {
  SentinelGroup group(GroupOptions());
  BrokerOptions o = OptionsFor(group.url());
  auto broker = OpenOk(o);
  ASSERT_TRUE(broker);
  SubmitRequest req;
  req.kind = "echo";
  auto before = broker->Submit(req);
  ASSERT_TRUE(before);
  const int old_port = group.MasterPort();
  // Replication is asynchronous: let the replica have the task before promoting it.
  ASSERT_TRUE(Eventually(
      [&] {
        return group.node(1).Cli({"EXISTS", o.prefix + ":{default}:task:" + before->id}) == "1";
      },
      std::chrono::seconds(10)));
  ASSERT_EQ(group.SentinelCli(0, {"SENTINEL", "FAILOVER", "mymaster"}), "OK");
  ASSERT_TRUE(group.WaitForNewMaster(old_port, std::chrono::seconds(30)));
  // Until the sentinels turn the old master into a replica it still accepts writes, which the
  // new master never sees (Redis' split-brain window; docs/broker.md "Durability").
  ASSERT_TRUE(
      Eventually([&] { return group.node(0).Info("role") == "slave"; }, std::chrono::seconds(30)));
  // The same broker: its connection to the old master breaks or answers READONLY, and the
  // next calls ask the sentinels again.
  bool moved = Eventually(
      [&] {
        auto s = broker->Submit(req);
        return static_cast<bool>(s);
      },
      std::chrono::seconds(30));
  ASSERT_TRUE(moved);
  auto info = broker->ServerInfo();
  ASSERT_TRUE(info);
  EXPECT_EQ((*info)["ferry_master"], group.node(1).address());
  auto claimed = broker->Claim({"default"}, "w1", 10, std::chrono::milliseconds(0));
  ASSERT_TRUE(claimed) << claimed.error().ToString();
  EXPECT_EQ(claimed->size(), 2u);  // the task from before the failover and the one after
}

TEST(RedisSentinel, AReplicaAnswersReadonlyAndIsLeft) {
  SentinelGroup::Options go = GroupOptions();
  go.sentinels = 1;
  SentinelGroup group(go);
  // Straight to the replica (no sentinel): writes fail with READONLY as kUnavailable, and the
  // connection is dropped so the next call reconnects (under Sentinel: asks again).
  BrokerOptions o = OptionsFor("redis://:sentinel-test@" + group.node(1).address());
  auto broker = OpenOk(o);
  ASSERT_TRUE(broker);
  SubmitRequest req;
  req.kind = "noop";
  auto s = broker->Submit(req);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, ErrorCode::kUnavailable);
  EXPECT_THAT(s.error().message, HasSubstr("READONLY"));
  EXPECT_TRUE(broker->Ping());  // reconnected
}

TEST(RedisSentinel, WaitForReplicasOnAndOnePastTheReplicas) {
  SentinelGroup::Options go = GroupOptions();
  go.sentinels = 1;
  SentinelGroup group(go);
  BrokerOptions o = OptionsFor(group.url());
  o.wait_replicas = 1;
  auto broker = OpenOk(o);
  ASSERT_TRUE(broker);
  std::string id = RoundTrip(*broker);
  ASSERT_FALSE(id.empty());
  // Acknowledged means the replica has it already, not "soon".
  EXPECT_EQ(group.node(1).Cli({"HGET", o.prefix + ":{default}:task:" + id, "status"}), "succeeded");

  o.wait_replicas = 2;
  o.wait_timeout = std::chrono::milliseconds(200);
  auto strict = OpenOk(o);
  ASSERT_TRUE(strict);
  SubmitRequest req;
  req.kind = "noop";
  auto s = strict->Submit(req);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, ErrorCode::kUnavailable);
  EXPECT_THAT(s.error().message, HasSubstr("only 1 of 2 replica(s)"));
}

}  // namespace
}  // namespace ferry::testing
