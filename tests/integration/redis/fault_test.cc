// Fault tests with real servers and real `ferry` processes (workers, server, scheduler). They take
// minutes, so they run only with FERRY_FAULT_TESTS=1 (docs/runbook.md "Fault tests"); the default
// suite has a short test of each deployment (sentinel_test.cc, cluster_test.cc).
//
//   Sentinel: 1 master, 1 replica, 3 sentinels; 2,000 tasks through 2 workers; kill -9 the master
//   while they run. Measured: when the sentinels named the new master, and when each process
//   first succeeded on it (worker claim and completion loops, the server's /readyz, the
//   scheduler's leader lease). Audited: every acknowledged task ends succeeded (or is explained:
//   with --redis-wait-replicas 0 the last writes before the kill may not have reached the
//   replica), and how many ran twice.
//
//   Cluster: 3 masters + 3 replicas made with `redis-cli --cluster create`; 4,000 tasks on three
//   queues, one per master, through 2 workers; during the load `redis-cli --cluster reshard`
//   moves the first queue's slot to another master, then a master is killed with -9 (after the
//   resharding: redis-cli cannot finish a resharding while a master is down).
//
// Each prints one "FAULT ..." line with the figures (docs/benchmarks.md quotes them).
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <future>
#include <iostream>

#include "core/ids.h"
#include "core/time_util.h"
#include "fault_support.h"
#include "harness.h"
#include "redis_topology.h"

namespace ferry::testing {
namespace {

bool FaultTestsEnabled() {
  const char* v = std::getenv("FERRY_FAULT_TESTS");
  return v != nullptr && std::string(v) == "1";
}

#define REQUIRE_FAULT_TESTS()                                                               \
  if (!FaultTestsEnabled()) {                                                               \
    GTEST_SKIP() << "a fault test: set FERRY_FAULT_TESTS=1 to run it (a few minutes each)"; \
  }

// With FERRY_FAULT_LOG_DIR set, each process's log is kept there as <name>.log.
void KeepLog(FerryProcess& p, const std::string& name) {
  const char* dir = std::getenv("FERRY_FAULT_LOG_DIR");
  if (dir == nullptr || *dir == '\0') return;
  std::ofstream(std::string(dir) + "/" + name + ".log") << p.process().Stderr();
}

std::string Ms(int64_t from, int64_t to) {
  return to > 0 ? std::to_string(to - from) + " ms" : std::string("never");
}

std::unique_ptr<Broker> Open(const BrokerOptions& o) {
  auto b = MakeRedisBrokerFactory(o)->Open();
  EXPECT_TRUE(b) << b.error().ToString();
  return b ? std::move(*b) : nullptr;
}

// Waits (bounded) until `n` workers heartbeat.
bool WaitForWorkers(const BrokerOptions& o, size_t n) {
  auto broker = Open(o);
  if (!broker) return false;
  return Eventually(
      [&] {
        auto w = broker->ListWorkers();
        return w && w->size() >= n;
      },
      std::chrono::seconds(60));
}

void SentinelFailover(bool durable) {
  SentinelGroup::Options go;
  go.replicas = 1;
  go.sentinels = 3;
  go.down_after = std::chrono::milliseconds(1000);
  go.failover_timeout = std::chrono::milliseconds(3000);
  SentinelGroup group(go);
  TempDir dir;
  const std::string marker = (dir.path() / "executions.txt").string();
  const std::string prefix = "fault" + RandomHex(4);
  std::map<std::string, std::string> env = {{"FERRY_REDIS_URL", group.url()},
                                            {"FERRY_PREFIX", prefix},
                                            {"FERRY_LOG_LEVEL", "info"},
                                            {"FERRY_STORE", (dir.path() / "ferry.db").string()},
                                            {"FERRY_REDIS_WAIT_REPLICAS", durable ? "1" : "0"},
                                            {"FERRY_REDIS_WAIT_TIMEOUT", "1s"}};
  const int http = FreePort();
  FerryProcess server({"server", "start", "--listen", "127.0.0.1:" + std::to_string(http)}, env);
  ASSERT_TRUE(
      Eventually([&] { return HttpStatus(http, "/readyz") == 200; }, std::chrono::seconds(60)))
      << server.process().Stderr();
  FerryProcess scheduler({"scheduler", "start", "--lease", "2s"}, env);
  ASSERT_TRUE(scheduler.WaitForLog("scheduler.leader_acquired", std::chrono::seconds(60)))
      << scheduler.process().Stderr();
  std::vector<std::unique_ptr<FerryProcess>> workers;
  for (int i = 0; i < 2; ++i) {
    workers.push_back(std::make_unique<FerryProcess>(
        std::vector<std::string>{"worker", "start", "--queues", "default", "--concurrency", "4",
                                 "--lease", "5s"},
        env));
  }
  BrokerOptions o;
  o.redis_url = group.url();
  o.prefix = prefix;
  o.wait_replicas = durable ? 1 : 0;
  ASSERT_TRUE(WaitForWorkers(o, 2));

  Producer producer(o, {"default"}, marker, 2000, 10, std::chrono::milliseconds(10));
  producer.Start();
  ASSERT_TRUE(
      Eventually([&] { return producer.acknowledged() >= 700; }, std::chrono::seconds(120)));
  const int old_port = group.MasterPort();
  const int64_t kill_ms = WallNowMs();
  group.node(0).Kill();

  // The sentinels' switch and the server's first good /readyz, watched from outside.
  int64_t switched_ms = 0;
  int64_t server_down_ms = 0;
  int64_t server_ok_ms = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(90);
  while (std::chrono::steady_clock::now() < deadline && (switched_ms == 0 || server_ok_ms == 0)) {
    if (switched_ms == 0) {
      int p = group.MasterPort();
      if (p != 0 && p != old_port) switched_ms = WallNowMs();
    }
    if (server_ok_ms == 0) {
      int status = HttpStatus(http, "/readyz");
      if (status != 200 && server_down_ms == 0) server_down_ms = WallNowMs();
      if (status == 200 && server_down_ms != 0) server_ok_ms = WallNowMs();
    }
    SleepMs(50);
  }
  ASSERT_NE(switched_ms, 0) << "the sentinels never promoted the replica";
  // The old master's host comes back; the sentinels make it a replica of the new master (with
  // --redis-wait-replicas 1 the writes wait for it).
  group.node(0).Start();
  producer.Join();

  BrokerOptions audit_options = o;
  audit_options.wait_replicas = 0;
  auto broker = Open(audit_options);
  ASSERT_TRUE(broker);
  EXPECT_TRUE(WaitUntilSettled(*broker, {"default"}, std::chrono::seconds(180)));
  const auto acks = producer.acks();
  Audit a = AuditTasks(*broker, acks, marker, kill_ms);

  std::string times = "new master named after " + Ms(kill_ms, switched_ms);
  for (size_t i = 0; i < workers.size(); ++i) {
    times += "; worker " + std::to_string(i + 1) + " claim loop " +
             Ms(kill_ms, workers[i]->FirstLog("claim loop: Redis reachable again", kill_ms)) +
             ", completion loop " +
             Ms(kill_ms, workers[i]->FirstLog("completion loop: Redis reachable again", kill_ms));
  }
  times += "; server /readyz 200 again after " + Ms(kill_ms, server_ok_ms);
  times += "; scheduler leader again after " +
           Ms(kill_ms, scheduler.FirstLog("scheduler.leader_acquired", kill_ms));
  KeepLog(server, "sentinel-server");
  KeepLog(scheduler, "sentinel-scheduler");
  for (size_t i = 0; i < workers.size(); ++i)
    KeepLog(*workers[i], "sentinel-worker" + std::to_string(i + 1));
  std::cout << "FAULT sentinel kill -9, --redis-wait-replicas " << (durable ? 1 : 0) << ": "
            << a.Summary() << "; producer batches retried " << producer.failed_batches() << "; "
            << times << std::endl;
  ::testing::Test::RecordProperty("audit", a.Summary());
  ::testing::Test::RecordProperty("times", times);

  EXPECT_EQ(a.acknowledged, 2000);
  EXPECT_EQ(a.unfinished, 0);
  EXPECT_EQ(a.never_executed, 0);
  EXPECT_EQ(a.succeeded + a.lost, a.acknowledged);
  if (durable) {
    EXPECT_EQ(a.lost, 0) << "acknowledged after WAIT, yet lost";
  } else {
    // Explained loss only: writes acknowledged by the master in the moments before the kill,
    // which asynchronous replication had not shipped yet.
    for (int64_t before : a.lost_ack_before_kill_ms) EXPECT_LT(before, 2000);
  }
  EXPECT_GT(server_ok_ms, 0);
  EXPECT_GT(scheduler.FirstLog("scheduler.leader_acquired", kill_ms), 0);
  for (auto& w : workers) EXPECT_GT(w->FirstLog("claim loop: Redis reachable again", kill_ms), 0);
}

TEST(RedisFault, SentinelKillMasterUnderLoadWaitOff) {
  REQUIRE_FAULT_TESTS();
  SentinelFailover(false);
}

TEST(RedisFault, SentinelKillMasterUnderLoadWaitOn) {
  REQUIRE_FAULT_TESTS();
  SentinelFailover(true);
}

void ClusterReshardAndFailover(bool durable) {
  RedisCluster::Options co;
  co.masters = 3;
  co.replicas = 1;
  co.node_timeout = std::chrono::milliseconds(2000);
  RedisCluster cluster(co);
  auto owners = cluster.SlotOwners();
  const size_t a = static_cast<size_t>(owners[0]);  // serves the lowest slots
  std::vector<size_t> others;
  for (size_t m : cluster.Masters()) {
    if (m != a) others.push_back(m);
  }
  ASSERT_EQ(others.size(), 2u);
  const size_t b = others[0];
  const size_t c = others[1];
  // q0 among the first 200 slots of master a (the ones resharding moves first), q1 on b, q2 on c.
  auto pick = [&](const std::string& stem, size_t master, int below) {
    for (int i = 0; i < 100000; ++i) {
      std::string q = stem + std::to_string(i);
      int slot = TestKeySlot(q);
      if (owners[static_cast<size_t>(slot)] == static_cast<int>(master) && slot < below) return q;
    }
    return std::string();
  };
  const std::string q0 = pick("q0-", a, 200);
  const std::string q1 = pick("q1-", b, 16384);
  const std::string q2 = pick("q2-", c, 16384);
  ASSERT_FALSE(q0.empty() || q1.empty() || q2.empty());

  TempDir dir;
  const std::string marker = (dir.path() / "executions.txt").string();
  const std::string prefix = "fault" + RandomHex(4);
  std::map<std::string, std::string> env = {{"FERRY_REDIS_URL", cluster.url()},
                                            {"FERRY_PREFIX", prefix},
                                            {"FERRY_LOG_LEVEL", "info"},
                                            {"FERRY_REDIS_WAIT_REPLICAS", durable ? "1" : "0"},
                                            {"FERRY_REDIS_WAIT_TIMEOUT", "1s"}};
  // The failed shard's queue first: workers take it whenever it has tasks, so its first task
  // finished after the kill measures the failover, not the other queues' backlog.
  const std::string queues = q2 + "," + q0 + "," + q1;
  std::vector<std::unique_ptr<FerryProcess>> workers;
  for (int i = 0; i < 2; ++i) {
    workers.push_back(std::make_unique<FerryProcess>(
        std::vector<std::string>{"worker", "start", "--queues", queues, "--concurrency", "4",
                                 "--lease", "5s"},
        env));
  }
  BrokerOptions o;
  o.redis_url = cluster.url();
  o.prefix = prefix;
  o.wait_replicas = durable ? 1 : 0;
  ASSERT_TRUE(WaitForWorkers(o, 2));

  constexpr int kTasks = 4000;
  Producer producer(o, {q0, q1, q2}, marker, kTasks, 6, std::chrono::milliseconds(20));
  producer.Start();
  ASSERT_TRUE(
      Eventually([&] { return producer.acknowledged() >= 600; }, std::chrono::seconds(120)));
  const int64_t reshard_start = WallNowMs();
  auto reshard = std::async(std::launch::async, [&] {
    auto r = cluster.Reshard(a, b, 200);
    return std::make_pair(r, WallNowMs());
  });
  // redis-cli tells every master about each moved slot, so it fails when one is down: the
  // failover comes after the resharding, both under load.
  auto [reshard_result, reshard_end] = reshard.get();
  EXPECT_EQ(reshard_result.exit_code, 0) << reshard_result.out << reshard_result.err;
  const int after_reshard = producer.acknowledged();
  ASSERT_TRUE(Eventually([&] { return producer.acknowledged() >= after_reshard + 300; },
                         std::chrono::seconds(300)));
  ASSERT_LT(producer.acknowledged(), kTasks) << "the load ended before the failover";
  const int q2_slot = TestKeySlot(q2);
  const int64_t kill_ms = WallNowMs();
  cluster.node(c).Kill();
  int64_t promoted_ms = 0;
  if (Eventually(
          [&] {
            int owner = cluster.MasterOfSlot(q2_slot, b);
            return owner >= 0 && owner != static_cast<int>(c);
          },
          std::chrono::seconds(60))) {
    promoted_ms = WallNowMs();
  }
  ASSERT_NE(promoted_ms, 0) << "the cluster never promoted a replica";
  cluster.node(c).Start();  // the old master's host comes back as a replica
  producer.Join();

  BrokerOptions audit_options = o;
  audit_options.wait_replicas = 0;
  auto broker = Open(audit_options);
  ASSERT_TRUE(broker);
  EXPECT_TRUE(WaitUntilSettled(*broker, {q0, q1, q2}, std::chrono::seconds(180)));
  const auto acks = producer.acks();
  Audit audit = AuditTasks(*broker, acks, marker, kill_ms);
  EXPECT_EQ(cluster.MasterOfSlot(TestKeySlot(q0), b), static_cast<int>(b))
      << "the resharding did not move " << q0;

  // First q2 task finished on its new master after the kill.
  int64_t q2_done_ms = 0;
  for (const auto& ack : acks) {
    if (ack.queue != q2 || ack.id.empty()) continue;
    auto rec = broker->GetTask(ack.id);
    if (rec && rec->has_value() && (*rec)->finished_ms > kill_ms &&
        (q2_done_ms == 0 || (*rec)->finished_ms < q2_done_ms)) {
      q2_done_ms = (*rec)->finished_ms;
    }
  }
  std::string times = "resharding of 200 slots took " + Ms(reshard_start, reshard_end) +
                      "; replica promoted after " + Ms(kill_ms, promoted_ms) +
                      "; first submit to the failed shard after " +
                      Ms(kill_ms, producer.FirstAckAfter(q2, kill_ms)) +
                      "; first task of it finished after " + Ms(kill_ms, q2_done_ms);
  for (size_t i = 0; i < workers.size(); ++i)
    KeepLog(*workers[i], "cluster-worker" + std::to_string(i + 1));
  std::cout << "FAULT cluster reshard + kill -9, --redis-wait-replicas " << (durable ? 1 : 0)
            << ": " << audit.Summary() << "; producer batches retried " << producer.failed_batches()
            << "; " << times << std::endl;
  ::testing::Test::RecordProperty("audit", audit.Summary());
  ::testing::Test::RecordProperty("times", times);

  EXPECT_EQ(audit.acknowledged, kTasks);
  EXPECT_EQ(audit.unfinished, 0);
  EXPECT_EQ(audit.never_executed, 0);
  EXPECT_EQ(audit.succeeded + audit.lost, audit.acknowledged);
  if (durable) {
    EXPECT_EQ(audit.lost, 0);
  } else {
    for (int64_t before : audit.lost_ack_before_kill_ms) EXPECT_LT(before, 2000);
  }
  EXPECT_GT(q2_done_ms, 0);
}

TEST(RedisFault, ClusterReshardAndKillMasterUnderLoadWaitOff) {
  REQUIRE_FAULT_TESTS();
  ClusterReshardAndFailover(false);
}

TEST(RedisFault, ClusterReshardAndKillMasterUnderLoadWaitOn) {
  REQUIRE_FAULT_TESTS();
  ClusterReshardAndFailover(true);
}

}  // namespace
}  // namespace ferry::testing
