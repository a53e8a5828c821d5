// Helpers shared by the Redis deployment tests (TLS, ACL, Sentinel, Cluster): a task's full
// round trip through a broker, and broker options for a URL.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "broker/broker.h"
#include "broker/leader.h"
#include "core/ids.h"
#include "core/time_util.h"
#include "harness.h"

namespace ferry::testing {

inline BrokerOptions OptionsFor(const std::string& url) {
  BrokerOptions o;
  o.redis_url = url;
  o.prefix = "t" + RandomHex(6);
  o.io_timeout = std::chrono::seconds(5);
  return o;
}

inline std::unique_ptr<Broker> OpenOk(const BrokerOptions& options) {
  auto b = MakeRedisBrokerFactory(options)->Open();
  EXPECT_TRUE(b) << b.error().ToString();
  return b ? std::move(*b) : nullptr;
}

// Submits an echo task to `queue`, claims it (waiting up to 2s), completes it and checks the
// record says succeeded with the result. Returns the task id ("" on failure).
inline std::string RoundTrip(Broker& broker, const std::string& queue = "default",
                             const std::vector<std::string>& claim_from = {}) {
  SubmitRequest req;
  req.kind = "echo";
  req.queue = queue;
  req.payload = Json{{"hello", queue}};
  auto submitted = broker.Submit(req);
  EXPECT_TRUE(submitted) << submitted.error().ToString();
  if (!submitted) return "";
  std::vector<std::string> queues =
      claim_from.empty() ? std::vector<std::string>{queue} : claim_from;
  auto claimed = broker.Claim(queues, "w-" + queue, 10, std::chrono::seconds(2));
  EXPECT_TRUE(claimed) << claimed.error().ToString();
  if (!claimed) return "";
  const ClaimedTask* mine = nullptr;
  for (const auto& t : *claimed) {
    if (t.id == submitted->id) mine = &t;
  }
  EXPECT_NE(mine, nullptr) << "task " << submitted->id << " was not claimed";
  if (mine == nullptr) return "";
  Completion c;
  c.kind = Completion::Kind::kSucceeded;
  c.id = mine->id;
  c.queue = mine->queue;
  c.entry_id = mine->entry_id;
  c.epoch = mine->epoch;
  c.worker = "w-" + queue;
  c.result = R"({"ok":true})";
  auto done = broker.Complete({c});
  EXPECT_TRUE(done) << done.error().ToString();
  if (!done) return "";
  EXPECT_EQ(done->front(), CompletionOutcome::kApplied);
  auto rec = broker.GetTask(mine->id);
  EXPECT_TRUE(rec && *rec);
  if (!rec || !*rec) return "";
  EXPECT_EQ((*rec)->status, TaskStatus::kSucceeded);
  EXPECT_EQ((*rec)->result, R"({"ok":true})");
  return mine->id;
}

// Runs every broker script and call once on `queue` (retries, dead letters, delayed
// promotion, cancel, events, reclaim, the workers registry, ops state, the leader lease), each
// expected to succeed.
inline void ExerciseEverything(Broker& broker, const BrokerOptions& options,
                               const std::string& queue = "default") {
  EXPECT_FALSE(RoundTrip(broker, queue).empty());
  SubmitRequest failing;
  failing.kind = "fail";
  failing.queue = queue;
  failing.max_attempts = 1;
  auto f = broker.Submit(failing);
  ASSERT_TRUE(f) << f.error().ToString();
  auto claimed = broker.Claim({queue}, "w1", 10, std::chrono::milliseconds(0));
  ASSERT_TRUE(claimed) << claimed.error().ToString();
  ASSERT_EQ(claimed->size(), 1u);
  EXPECT_TRUE(broker.RenewLeases(
      "w1", {{f->id, queue, claimed->front().entry_id, claimed->front().epoch}}));
  EXPECT_TRUE(
      broker.CancelRequested({{f->id, queue, claimed->front().entry_id, claimed->front().epoch}}));
  Completion c{Completion::Kind::kFailed,
               f->id,
               queue,
               claimed->front().entry_id,
               claimed->front().epoch,
               "",
               "boom",
               true,
               0,
               "w1"};
  auto done = broker.Complete({c});
  ASSERT_TRUE(done) << done.error().ToString();
  EXPECT_TRUE(broker.ListDead(queue, 10));
  auto retried = broker.Retry(f->id);
  EXPECT_TRUE(retried) << retried.error().ToString();
  SubmitRequest later;
  later.kind = "noop";
  later.queue = queue;
  later.eta_ms = WallNowMs() + 5;
  auto l = broker.Submit(later);
  ASSERT_TRUE(l) << l.error().ToString();
  EXPECT_TRUE(Eventually([&] { return broker.PromoteDue(queue, WallNowMs(), 10).value_or(0) == 1; },
                         std::chrono::seconds(5)));
  auto cancelled = broker.Cancel(l->id);
  EXPECT_TRUE(cancelled) << cancelled.error().ToString();
  EXPECT_TRUE(broker.AppendEvents(queue, f->id, {{"progress", Json{{"p", 1}}}}));
  auto reclaimed = broker.Reclaim(queue, "w2", std::chrono::milliseconds(0), 10);
  EXPECT_TRUE(reclaimed) << reclaimed.error().ToString();
  WorkerInfo w;
  w.id = "w1";
  w.status = "running";
  w.queues = {queue};
  EXPECT_TRUE(broker.Heartbeat(w, std::chrono::seconds(30)));
  auto workers = broker.ListWorkers();
  ASSERT_TRUE(workers) << workers.error().ToString();
  EXPECT_EQ(workers->size(), 1u);
  EXPECT_TRUE(broker.GetQueueStats(queue));
  EXPECT_TRUE(broker.ListTasks({}));
  EXPECT_TRUE(broker.ReadEvents(f->id, "0", 10, std::chrono::milliseconds(0)));
  EXPECT_TRUE(broker.UpdateOpsState("alerts", {{"a", "1"}}, {{"b", "2"}}, {"c"}));
  EXPECT_TRUE(broker.GetOpsState("alerts"));
  EXPECT_TRUE(broker.RemoveWorker("w1"));
  auto info = broker.ServerInfo();
  EXPECT_TRUE(info) << info.error().ToString();

  LeaderLeaseOptions lo;
  lo.holder_id = "s1";
  auto lease = MakeRedisLeaderLease(options, lo);
  ASSERT_TRUE(lease);
  auto held = (*lease)->TryAcquire();
  ASSERT_TRUE(held) << held.error().ToString();
  EXPECT_TRUE(held->held);
  EXPECT_TRUE((*lease)->Renew());
  EXPECT_TRUE((*lease)->Inspect());
  EXPECT_TRUE((*lease)->Release());
}

}  // namespace ferry::testing
