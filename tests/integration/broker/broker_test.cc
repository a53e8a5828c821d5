// The Redis broker against a real redis-server (tests/support RedisServer). Each test uses its
// own key prefix, so tests share one server per suite and stay independent.
#include "broker/broker.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <cstdlib>
#include <functional>
#include <set>
#include <thread>

#include "core/ids.h"
#include "core/time_util.h"
#include "harness.h"

namespace ferry {
namespace {

using ferry::testing::Eventually;
using ferry::testing::RedisServer;
using std::chrono::milliseconds;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::UnorderedElementsAre;

constexpr milliseconds kNoBlock{0};

class BrokerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { server_ = new RedisServer(); }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }

  void SetUp() override {
    options_.redis_url = server_->url();
    options_.prefix = "t" + RandomHex(6);
    Reopen();
  }

  void Reopen() {
    factory_ = MakeRedisBrokerFactory(options_);
    broker_ = Open();
  }

  std::unique_ptr<Broker> Open() {
    auto b = factory_->Open();
    EXPECT_TRUE(b) << b.error().ToString();
    return b ? std::move(*b) : nullptr;
  }

  std::string Cli(const std::vector<std::string>& args) { return server_->Cli(args); }
  // Waits until some connection is blocked in Redis (XREADGROUP/XREAD BLOCK), so what a test
  // does next happens while a reader waits: the wake-up path is exercised every time.
  bool WaitForBlockedReader() {
    return Eventually(
        [&] {
          const std::string info = Cli({"INFO", "clients"});
          const auto at = info.find("blocked_clients:");
          return at != std::string::npos && std::atoi(info.c_str() + at + 16) > 0;
        },
        std::chrono::seconds(10));
  }
  std::string Key(const std::string& queue, const std::string& rest) {
    return options_.prefix + ":{" + queue + "}:" + rest;
  }

  SubmitRequest Req(const std::string& kind = "noop", const std::string& queue = "default") {
    SubmitRequest r;
    r.kind = kind;
    r.queue = queue;
    r.payload = Json{{"n", 1}};
    return r;
  }

  // A task of queue "default" that the task `waiter` of queue "runs" waits for.
  SubmitRequest WaitedFor(const std::string& waiter) {
    SubmitRequest r = Req("echo", "default");
    r.waiter_queue = "runs";
    r.waiter_id = waiter;
    return r;
  }

  std::string SubmitOk(const SubmitRequest& r) {
    auto s = broker_->Submit(r);
    EXPECT_TRUE(s) << s.error().ToString();
    return s ? s->id : "";
  }

  std::vector<ClaimedTask> ClaimOk(const std::vector<std::string>& queues,
                                   const std::string& worker = "w1", int count = 10) {
    auto c = broker_->Claim(queues, worker, count, kNoBlock);
    EXPECT_TRUE(c) << c.error().ToString();
    return c ? *c : std::vector<ClaimedTask>{};
  }

  TaskRecord Get(const std::string& id) {
    auto t = broker_->GetTask(id);
    EXPECT_TRUE(t) << t.error().ToString();
    EXPECT_TRUE(t && *t) << "no task " << id;
    return t && *t ? **t : TaskRecord{};
  }

  // Worker w1's snooze of `t` for an hour: a task waiting out of its slot (a run's).
  static Completion AnHoursSnooze(const ClaimedTask& t) {
    Completion z = Done(t, Completion::Kind::kSnooze, "w1");
    z.backoff_ms = 3'600'000;
    return z;
  }
  static Completion Done(const ClaimedTask& t, Completion::Kind kind, const std::string& worker) {
    Completion c;
    c.kind = kind;
    c.id = t.id;
    c.queue = t.queue;
    c.entry_id = t.entry_id;
    c.epoch = t.epoch;
    c.worker = worker;
    return c;
  }

  CompletionOutcome CompleteOne(const Completion& c) {
    auto r = broker_->Complete({c});
    EXPECT_TRUE(r) << r.error().ToString();
    return r && r->size() == 1 ? r->front() : CompletionOutcome::kMissing;
  }

  // Dead-letters the next n tasks of `queue` (non-retryable failures), claiming as many as
  // Claim gives.
  void KillNext(size_t n, const std::string& queue = "default") {
    size_t done = 0;
    for (int round = 0; round < 1000 && done < n; ++round) {
      auto claimed = ClaimOk({queue}, "w1", 100);
      std::vector<Completion> batch;
      for (const auto& t : claimed) {
        Completion c = Done(t, Completion::Kind::kFailed, "w1");
        c.error = "bad input";
        c.retryable = false;
        batch.push_back(c);
      }
      auto r = broker_->Complete(batch);
      ASSERT_TRUE(r) << r.error().ToString();
      done += batch.size();
    }
    ASSERT_EQ(done, n);
  }

  // Dead-letters `first` (the only task waiting in "default"), waits until the clock is past its
  // death, then dead-letters 501 more tasks (one past a dead-set script's batch of 500), which
  // so die strictly later. Returns first's death time; the others' ids go to `rest`.
  int64_t KillFirstThen501(const std::string& first, std::vector<std::string>& rest) {
    KillNext(1);
    const int64_t first_dead_ms = Get(first).finished_ms;
    EXPECT_GT(first_dead_ms, 0);
    EXPECT_TRUE(Eventually([&] { return WallNowMs() > first_dead_ms; }, std::chrono::seconds(5)));
    for (int i = 0; i < 501; ++i) rest.push_back(SubmitOk(Req("fail")));
    KillNext(rest.size());
    return first_dead_ms;
  }

  int64_t Counter(const std::string& queue, const std::string& name) {
    auto s = broker_->GetQueueStats(queue);
    EXPECT_TRUE(s) << s.error().ToString();
    return s ? s->counters[name] : -1;
  }

  static RedisServer* server_;
  BrokerOptions options_;
  std::unique_ptr<BrokerFactory> factory_;
  std::unique_ptr<Broker> broker_;
};

RedisServer* BrokerTest::server_ = nullptr;

TEST_F(BrokerTest, SubmitClaimComplete) {
  int64_t before = WallNowMs();
  SubmitRequest req = Req("echo");
  req.timeout = milliseconds(1500);
  std::string id = SubmitOk(req);
  ASSERT_TRUE(LooksLikeId(id));

  TaskRecord rec = Get(id);
  EXPECT_EQ(rec.status, TaskStatus::kPending);
  EXPECT_EQ(rec.kind, "echo");
  EXPECT_EQ(rec.queue, "default");
  EXPECT_EQ(rec.payload, R"({"n":1})");
  EXPECT_GE(rec.created_ms, before);
  EXPECT_EQ(rec.attempts, 0);

  auto claimed = ClaimOk({"default"});
  ASSERT_EQ(claimed.size(), 1u);
  const ClaimedTask& t = claimed[0];
  EXPECT_EQ(t.id, id);
  EXPECT_EQ(t.kind, "echo");
  EXPECT_EQ(t.payload, R"({"n":1})");
  EXPECT_EQ(t.epoch, 1);
  EXPECT_EQ(t.attempt, 1);
  EXPECT_EQ(t.max_attempts, 3);
  EXPECT_EQ(t.timeout_ms, 1500);
  EXPECT_EQ(t.created_ms, rec.created_ms);
  EXPECT_GE(t.started_ms, rec.created_ms);
  EXPECT_FALSE(t.reclaimed);
  EXPECT_FALSE(t.entry_id.empty());
  EXPECT_TRUE(ClaimOk({"default"}).empty());

  rec = Get(id);
  EXPECT_EQ(rec.status, TaskStatus::kRunning);
  EXPECT_EQ(rec.worker, "w1");

  Completion c = Done(t, Completion::Kind::kSucceeded, "w1");
  c.result = R"({"ok":true})";
  EXPECT_EQ(CompleteOne(c), CompletionOutcome::kApplied);
  rec = Get(id);
  EXPECT_EQ(rec.status, TaskStatus::kSucceeded);
  EXPECT_EQ(rec.result, R"({"ok":true})");
  EXPECT_GE(rec.finished_ms, rec.started_ms);

  // Retention applies once the task ended; the stream no longer holds the entry.
  EXPECT_GT(std::stoll(Cli({"PTTL", Key("default", "task:" + id)})), 0);
  EXPECT_EQ(Cli({"XLEN", Key("default", "stream")}), "0");
  auto stats = broker_->GetQueueStats("default");
  ASSERT_TRUE(stats);
  EXPECT_EQ(stats->counters["submitted"], 1);
  EXPECT_EQ(stats->counters["started"], 1);
  EXPECT_EQ(stats->counters["succeeded"], 1);
  EXPECT_EQ(stats->pending, 0);
  EXPECT_EQ(stats->running, 0);
}

// A task's queue, once found, is asked alone: a task's event stream reads every 150 ms, and
// asking every queue each time grew with their number (one EXISTS per queue per read).
TEST_F(BrokerTest, ATaskFoundOnceIsLookedUpInItsQueueAlone) {
  std::string id;
  for (int i = 0; i < 20; ++i) {
    SubmitRequest req = Req("echo");
    req.queue = "q" + std::to_string(i);
    std::string made = SubmitOk(req);
    if (i == 7) id = made;
  }
  auto fresh = Open();  // a connection that has not seen the task yet
  ASSERT_TRUE(fresh->ReadEvents(id, "0", 10, kNoBlock));
  ASSERT_EQ(Cli({"CONFIG", "RESETSTAT"}), "OK");
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(fresh->ReadEvents(id, "0", 10, kNoBlock));
  const std::string stats = Cli({"INFO", "commandstats"});
  EXPECT_NE(stats.find("cmdstat_exists:calls=3,"), std::string::npos) << stats;
}

TEST_F(BrokerTest, BatchSubmitAcrossQueues) {
  std::vector<SubmitRequest> reqs;
  for (int i = 0; i < 1000; ++i) reqs.push_back(Req("noop", i % 2 == 0 ? "even" : "odd"));
  auto r = broker_->SubmitBatch(reqs);
  ASSERT_TRUE(r) << r.error().ToString();
  ASSERT_EQ(r->size(), 1000u);
  std::set<std::string> ids;
  for (const auto& s : *r) {
    EXPECT_FALSE(s.existing);
    ids.insert(s.id);
  }
  EXPECT_EQ(ids.size(), 1000u);
  EXPECT_EQ(Get((*r)[1].id).queue, "odd");

  auto queues = broker_->ListQueues();
  ASSERT_TRUE(queues);
  EXPECT_THAT(*queues, ElementsAre("even", "odd"));
  auto stats = broker_->GetQueueStats("even");
  ASSERT_TRUE(stats);
  EXPECT_EQ(stats->pending, 500);
  EXPECT_EQ(stats->counters["submitted"], 500);

  size_t claimed = 0;
  for (int round = 0; round < 20 && claimed < 1000; ++round) {
    claimed += ClaimOk({"even", "odd"}, "w1", 100).size();
  }
  EXPECT_EQ(claimed, 1000u);
}

TEST_F(BrokerTest, BatchValidationIsAllOrNothing) {
  std::vector<SubmitRequest> reqs = {Req(), Req(), Req()};
  reqs[2].queue = "bad queue";
  auto r = broker_->SubmitBatch(reqs);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
  EXPECT_THAT(r.error().message, HasSubstr("task 2"));
  auto queues = broker_->ListQueues();
  ASSERT_TRUE(queues);
  EXPECT_TRUE(queues->empty());
}

TEST_F(BrokerTest, UniqueKeyDedupe) {
  SubmitRequest req = Req();
  req.unique_key = "run-42";
  auto first = broker_->Submit(req);
  ASSERT_TRUE(first);
  EXPECT_FALSE(first->existing);
  auto second = broker_->Submit(req);
  ASSERT_TRUE(second);
  EXPECT_TRUE(second->existing);
  EXPECT_EQ(second->id, first->id);

  auto batch = broker_->SubmitBatch({req, req});
  ASSERT_TRUE(batch);
  EXPECT_EQ((*batch)[0].id, first->id);
  EXPECT_TRUE((*batch)[1].existing);

  SubmitRequest other = req;
  other.unique_key = "run-43";
  auto third = broker_->Submit(other);
  ASSERT_TRUE(third);
  EXPECT_FALSE(third->existing);
  EXPECT_NE(third->id, first->id);

  EXPECT_EQ(ClaimOk({"default"}).size(), 2u);
  EXPECT_EQ(Counter("default", "submitted"), 2);
}

TEST_F(BrokerTest, PayloadTooLarge) {
  options_.max_payload_bytes = 64;
  Reopen();
  SubmitRequest req = Req();
  req.payload = Json{{"blob", std::string(200, 'x')}};
  auto r = broker_->Submit(req);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kTooLarge);
  EXPECT_THAT(r.error().message, HasSubstr("over the limit of 64"));
  // Exactly the limit is accepted; one byte more is not.
  req.payload = Json{{"blob", std::string(53, 'x')}};
  ASSERT_EQ(DumpJson(req.payload).size(), 64u);
  EXPECT_TRUE(broker_->Submit(req));
  req.payload = Json{{"blob", std::string(54, 'x')}};
  auto over = broker_->Submit(req);
  ASSERT_FALSE(over);
  EXPECT_EQ(over.error().code, ErrorCode::kTooLarge);
  EXPECT_THAT(over.error().message, HasSubstr("payload is 65 bytes"));
}

TEST_F(BrokerTest, BadQueueNames) {
  for (std::string q :
       {std::string(), std::string("a b"), std::string("x{y}"), std::string(65, 'q')}) {
    auto r = broker_->Submit(Req("noop", q));
    ASSERT_FALSE(r) << q;
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
    auto c = broker_->Claim({"default", q}, "w1", 1, kNoBlock);
    ASSERT_FALSE(c);
    EXPECT_EQ(c.error().code, ErrorCode::kInvalidArgument);
    EXPECT_FALSE(broker_->GetQueueStats(q));
  }
  auto c = broker_->Claim({}, "w1", 1, kNoBlock);
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code, ErrorCode::kInvalidArgument);
}

TEST_F(BrokerTest, StrictPriorityAcrossQueues) {
  std::vector<std::string> low, high;
  for (int i = 0; i < 3; ++i) low.push_back(SubmitOk(Req("noop", "low")));
  for (int i = 0; i < 2; ++i) high.push_back(SubmitOk(Req("noop", "high")));

  auto first = ClaimOk({"high", "low"}, "w1", 10);
  ASSERT_EQ(first.size(), 2u);
  for (const auto& t : first) EXPECT_EQ(t.queue, "high");
  auto second = ClaimOk({"high", "low"}, "w1", 2);
  ASSERT_EQ(second.size(), 2u);
  EXPECT_EQ(second[0].id, low[0]);  // FIFO within a queue
  EXPECT_EQ(second[1].id, low[1]);

  SubmitOk(Req("noop", "high"));
  auto third = ClaimOk({"high", "low"}, "w1", 1);
  ASSERT_EQ(third.size(), 1u);
  EXPECT_EQ(third[0].queue, "high");
}

TEST_F(BrokerTest, BlockingClaimWakesOnSubmit) {
  std::thread producer([&] {
    auto b = factory_->Open();
    ASSERT_TRUE(b);
    ASSERT_TRUE(WaitForBlockedReader());
    ASSERT_TRUE((*b)->Submit(Req("noop", "late")));
  });
  auto start = std::chrono::steady_clock::now();
  auto c = broker_->Claim({"early", "late"}, "w1", 5, milliseconds(20'000));
  producer.join();
  ASSERT_TRUE(c) << c.error().ToString();
  std::vector<ClaimedTask> got = *c;
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].queue, "late");
  EXPECT_EQ(got[0].epoch, 1);
  EXPECT_EQ(Get(got[0].id).status, TaskStatus::kRunning);
  // Woken by the submit, not by the end of its 20 s BLOCK.
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(15));

  // A blocking read that sees nothing returns empty after its BLOCK time.
  auto empty = broker_->Claim({"early"}, "w1", 5, milliseconds(50));
  ASSERT_TRUE(empty) << empty.error().ToString();
  EXPECT_TRUE(empty->empty());
}

TEST_F(BrokerTest, EtaSchedulingAndPromoteDue) {
  int64_t now = WallNowMs();
  SubmitRequest req = Req();
  req.eta_ms = now + 3'600'000;
  std::string id = SubmitOk(req);
  TaskRecord rec = Get(id);
  EXPECT_EQ(rec.status, TaskStatus::kScheduled);
  EXPECT_EQ(rec.eta_ms, now + 3'600'000);
  EXPECT_TRUE(ClaimOk({"default"}).empty());

  auto moved = broker_->PromoteDue("default", now, 100);
  ASSERT_TRUE(moved);
  EXPECT_EQ(*moved, 0);
  moved = broker_->PromoteDue("default", now + 7'200'000, 100);
  ASSERT_TRUE(moved);
  EXPECT_EQ(*moved, 1);
  EXPECT_EQ(Get(id).status, TaskStatus::kPending);
  auto claimed = ClaimOk({"default"});
  ASSERT_EQ(claimed.size(), 1u);
  EXPECT_EQ(claimed[0].id, id);

  // An ETA in the past is "now".
  SubmitRequest past = Req();
  past.eta_ms = now - 1000;
  EXPECT_EQ(Get(SubmitOk(past)).status, TaskStatus::kPending);

  // The limit bounds one promotion.
  for (int i = 0; i < 5; ++i) {
    SubmitRequest later = Req();
    later.eta_ms = now + 1000;
    SubmitOk(later);
  }
  moved = broker_->PromoteDue("default", now + 2000, 3);
  ASSERT_TRUE(moved);
  EXPECT_EQ(*moved, 3);
  moved = broker_->PromoteDue("default", now + 2000, 100);
  ASSERT_TRUE(moved);
  EXPECT_EQ(*moved, 2);
}

TEST_F(BrokerTest, RetryWithBackoffThenDeadLetterThenRetry) {
  SubmitRequest req = Req("fail");
  req.max_attempts = 2;
  std::string id = SubmitOk(req);

  auto first = ClaimOk({"default"});
  ASSERT_EQ(first.size(), 1u);
  Completion fail = Done(first[0], Completion::Kind::kFailed, "w1");
  fail.error = "boom 1";
  fail.retryable = true;
  fail.backoff_ms = 60'000;
  int64_t before = WallNowMs();
  EXPECT_EQ(CompleteOne(fail), CompletionOutcome::kApplied);
  int64_t after = WallNowMs();
  TaskRecord rec = Get(id);
  EXPECT_EQ(rec.status, TaskStatus::kRetrying);
  EXPECT_EQ(rec.error, "boom 1");
  // Exactly the given backoff after the completion: not less, and not more either.
  EXPECT_GE(rec.eta_ms, before + 60'000);
  EXPECT_LE(rec.eta_ms, after + 60'000);
  EXPECT_EQ(Cli({"ZSCORE", Key("default", "delayed"), id}), std::to_string(rec.eta_ms));
  EXPECT_TRUE(ClaimOk({"default"}).empty());

  // Not due yet, not even one millisecond before its time; due at it.
  auto moved = broker_->PromoteDue("default", WallNowMs(), 10);
  ASSERT_TRUE(moved);
  EXPECT_EQ(*moved, 0);
  moved = broker_->PromoteDue("default", rec.eta_ms - 1, 10);
  ASSERT_TRUE(moved);
  EXPECT_EQ(*moved, 0);
  EXPECT_TRUE(ClaimOk({"default"}).empty());
  moved = broker_->PromoteDue("default", rec.eta_ms, 10);
  ASSERT_TRUE(moved);
  EXPECT_EQ(*moved, 1);

  auto second = ClaimOk({"default"});
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(second[0].attempt, 2);
  EXPECT_EQ(second[0].epoch, 2);
  Completion fail2 = Done(second[0], Completion::Kind::kFailed, "w1");
  fail2.error = "boom 2";
  fail2.retryable = true;
  EXPECT_EQ(CompleteOne(fail2), CompletionOutcome::kApplied);
  rec = Get(id);
  EXPECT_EQ(rec.status, TaskStatus::kFailed);
  EXPECT_EQ(rec.error, "boom 2");
  auto dead = broker_->ListDead("default", 10);
  ASSERT_TRUE(dead);
  ASSERT_EQ(dead->size(), 1u);
  EXPECT_EQ((*dead)[0].id, id);
  auto stats = broker_->GetQueueStats("default");
  ASSERT_TRUE(stats);
  EXPECT_EQ(stats->dead, 1);
  EXPECT_EQ(stats->counters["retried"], 1);
  EXPECT_EQ(stats->counters["failed"], 2);
  EXPECT_EQ(stats->counters["dead_lettered"], 1);
  EXPECT_GT(std::stoll(Cli({"PTTL", Key("default", "task:" + id)})),
            options_.retention.count());  // dead_retention

  ASSERT_TRUE(broker_->Retry(id));
  rec = Get(id);
  EXPECT_EQ(rec.status, TaskStatus::kPending);
  EXPECT_EQ(rec.attempts, 0);
  EXPECT_EQ(Cli({"PTTL", Key("default", "task:" + id)}), "-1");
  dead = broker_->ListDead("default", 10);
  ASSERT_TRUE(dead);
  EXPECT_TRUE(dead->empty());
  auto third = ClaimOk({"default"});
  ASSERT_EQ(third.size(), 1u);
  EXPECT_EQ(third[0].attempt, 1);
  EXPECT_EQ(third[0].epoch, 3);
  EXPECT_EQ(CompleteOne(Done(third[0], Completion::Kind::kSucceeded, "w1")),
            CompletionOutcome::kApplied);
  EXPECT_EQ(Get(id).status, TaskStatus::kSucceeded);

  auto again = broker_->Retry(id);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, ErrorCode::kConflict);
  auto unknown = broker_->Retry("01HZZZZZZZZZZZZZZZZZZZZZZZ");
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().code, ErrorCode::kNotFound);
}

TEST_F(BrokerTest, ARetriedTaskNoLongerSaysWhenItsEarlierScheduleWasDue) {
  // A task cancelled while it waited for its time, then retried, is pending now: the time it
  // once waited for is no longer when it becomes ready (`task status` showed it as "Ready at").
  SubmitRequest later = Req();
  later.eta_ms = WallNowMs() + 3'600'000;
  std::string id = SubmitOk(later);
  ASSERT_EQ(Get(id).eta_ms, *later.eta_ms);
  ASSERT_TRUE(broker_->Cancel(id));
  ASSERT_TRUE(broker_->Retry(id));
  TaskRecord rec = Get(id);
  EXPECT_EQ(rec.status, TaskStatus::kPending);
  EXPECT_EQ(rec.eta_ms, 0);
  EXPECT_EQ(Cli({"HEXISTS", Key("default", "task:" + id), "eta_ms"}), "0");
}

TEST_F(BrokerTest, NonRetryableFailureDeadLettersAtOnce) {
  std::string id = SubmitOk(Req("fail"));
  auto t = ClaimOk({"default"});
  ASSERT_EQ(t.size(), 1u);
  Completion c = Done(t[0], Completion::Kind::kFailed, "w1");
  c.error = "bad input";
  c.retryable = false;
  EXPECT_EQ(CompleteOne(c), CompletionOutcome::kApplied);
  EXPECT_EQ(Get(id).status, TaskStatus::kFailed);
  EXPECT_EQ(Counter("default", "retried"), 0);
}

TEST_F(BrokerTest, PurgeDeletesDeadLettersUpToItsTimeAndNothingElse) {
  SubmitRequest unique = Req("fail");
  unique.unique_key = "order-7";
  const std::string first = SubmitOk(unique);
  // The rest die strictly later, so a purge up to first_dead_ms can only take `first`.
  std::vector<std::string> rest;
  const int64_t first_dead_ms = KillFirstThen501(first, rest);
  const std::string retried = SubmitOk(Req("fail"));
  KillNext(1);
  ASSERT_TRUE(broker_->Retry(retried));
  const std::string pending = SubmitOk(Req("noop"));

  // One millisecond before the first death: nothing goes.
  auto purged = broker_->PurgeDead("default", first_dead_ms - 1);
  ASSERT_TRUE(purged) << purged.error().ToString();
  EXPECT_EQ(*purged, 0);
  EXPECT_EQ(Get(first).status, TaskStatus::kFailed);
  // At it: exactly that task, its events and its unique key.
  purged = broker_->PurgeDead("default", first_dead_ms);
  ASSERT_TRUE(purged);
  EXPECT_EQ(*purged, 1);
  auto gone = broker_->GetTask(first);
  ASSERT_TRUE(gone);
  EXPECT_FALSE(*gone);
  EXPECT_EQ(Cli({"EXISTS", Key("default", "task:" + first), Key("default", "events:" + first)}),
            "0");
  auto again = broker_->Submit(unique);
  ASSERT_TRUE(again);
  EXPECT_FALSE(again->existing);
  EXPECT_NE(again->id, first);
  auto stats = broker_->GetQueueStats("default");
  ASSERT_TRUE(stats);
  EXPECT_EQ(stats->dead, 501);

  // Everything else dead goes in one call; the retried and the waiting tasks stay.
  purged = broker_->PurgeDead("default", WallNowMs());
  ASSERT_TRUE(purged);
  EXPECT_EQ(*purged, 501);
  for (const auto& id : {rest.front(), rest.back()}) {
    auto t = broker_->GetTask(id);
    ASSERT_TRUE(t);
    EXPECT_FALSE(*t) << id;
  }
  EXPECT_EQ(Get(retried).status, TaskStatus::kPending);
  EXPECT_EQ(Get(pending).status, TaskStatus::kPending);
  stats = broker_->GetQueueStats("default");
  ASSERT_TRUE(stats);
  EXPECT_EQ(stats->dead, 0);
  EXPECT_EQ(stats->counters["purged"], 502);
  // Nothing left: a purge is a no-op, and a bad queue name is refused.
  purged = broker_->PurgeDead("default", WallNowMs());
  ASSERT_TRUE(purged);
  EXPECT_EQ(*purged, 0);
  purged = broker_->PurgeDead("bad queue!", WallNowMs());
  ASSERT_FALSE(purged);
  EXPECT_EQ(purged.error().code, ErrorCode::kInvalidArgument);
}

TEST_F(BrokerTest, RetryDeadRetriesDeadLettersUpToItsTimeAndNothingElse) {
  const std::string first = SubmitOk(Req("fail"));
  // The rest die strictly later, so a retry up to first_dead_ms can only take `first`.
  std::vector<std::string> rest;
  const int64_t first_dead_ms = KillFirstThen501(first, rest);
  // A cancelled task is not a dead letter: only its own retry brings it back.
  const std::string cancelled = SubmitOk(Req("noop"));
  ASSERT_TRUE(broker_->Cancel(cancelled));
  // A dead letter whose record expired leaves the set without being counted.
  const std::string expired = SubmitOk(Req("fail"));
  KillNext(1);
  Cli({"DEL", Key("default", "task:" + expired)});
  const int64_t epoch_before = Get(first).epoch;

  // One millisecond before the first death: nothing is retried.
  auto retried = broker_->RetryDead("default", first_dead_ms - 1);
  ASSERT_TRUE(retried) << retried.error().ToString();
  EXPECT_EQ(*retried, 0);
  EXPECT_EQ(Get(first).status, TaskStatus::kFailed);
  // At it: exactly that task, back in the stream with fresh attempts and the epoch kept.
  retried = broker_->RetryDead("default", first_dead_ms);
  ASSERT_TRUE(retried);
  EXPECT_EQ(*retried, 1);
  TaskRecord again = Get(first);
  EXPECT_EQ(again.status, TaskStatus::kPending);
  EXPECT_EQ(again.attempts, 0);
  EXPECT_EQ(again.epoch, epoch_before);
  EXPECT_EQ(Get(rest.front()).status, TaskStatus::kFailed);

  // Everything else dead goes back in one call; the cancelled task stays cancelled.
  const int64_t requeued = Counter("default", "requeued");
  retried = broker_->RetryDead("default", WallNowMs());
  ASSERT_TRUE(retried);
  EXPECT_EQ(*retried, 501);
  for (const auto& id : {rest.front(), rest.back()})
    EXPECT_EQ(Get(id).status, TaskStatus::kPending);
  EXPECT_EQ(Get(cancelled).status, TaskStatus::kCancelled);
  auto stats = broker_->GetQueueStats("default");
  ASSERT_TRUE(stats);
  EXPECT_EQ(stats->dead, 0);
  EXPECT_EQ(stats->counters["requeued"], requeued + 501);
  EXPECT_EQ(Cli({"ZSCORE", Key("default", "dead"), expired}), "");

  // Each runs again: the retried tasks are claimed (502 of them, `first` first) and, failing
  // again, are dead letters once more, for the next call.
  KillNext(502);
  stats = broker_->GetQueueStats("default");
  ASSERT_TRUE(stats);
  EXPECT_EQ(stats->dead, 502);
  EXPECT_TRUE(ClaimOk({"default"}).empty());
  // Nothing dead up to a time before those deaths; a bad queue name is refused.
  retried = broker_->RetryDead("default", first_dead_ms);
  ASSERT_TRUE(retried);
  EXPECT_EQ(*retried, 0);
  retried = broker_->RetryDead("bad queue!", WallNowMs());
  ASSERT_FALSE(retried);
  EXPECT_EQ(retried.error().code, ErrorCode::kInvalidArgument);
}

// A submit whose answer is lost (Redis stopped after the call was sent, longer than the
// socket timeout) cannot say whether its task exists: the error says it may, whether a retry is
// safe (with a unique_key) or may duplicate (without), and carries outcome "unknown" for the
// API's body. Here the task does exist once Redis goes on, so a plain "unavailable" would have
// invited a duplicate. A connection that sent only its own handshake is not such a case.
TEST_F(BrokerTest, ASubmitWhoseAnswerIsLostSaysItsTaskMayExist) {
  options_.io_timeout = milliseconds(300);
  Reopen();
  SubmitOk(Req("noop", "lost"));  // the queue exists: what follows sends only the submit
  const std::string info = Cli({"INFO", "server"});
  const auto at = info.find("process_id:");
  ASSERT_NE(at, std::string::npos);
  const pid_t pid = static_cast<pid_t>(std::stol(info.substr(at + 11)));
  struct Resume {
    pid_t pid;
    ~Resume() { ::kill(pid, SIGCONT); }
  } resume{pid};
  const auto stopped = [&](const std::function<void()>& fn) {
    ASSERT_EQ(::kill(pid, SIGSTOP), 0);
    fn();
    ASSERT_EQ(::kill(pid, SIGCONT), 0);
  };
  SubmitRequest keyed = Req("noop", "lost");
  keyed.unique_key = "once";
  Result<SubmitResult> lost = Fail(ErrorCode::kInternal, "not sent");
  stopped([&] { lost = broker_->Submit(keyed); });
  ASSERT_FALSE(lost);
  EXPECT_EQ(lost.error().code, ErrorCode::kUnavailable);
  EXPECT_THAT(lost.error().message,
              HasSubstr("no answer came after the submit was sent, so the task may exist; "
                        "a submit with the same unique_key finds it instead of making it twice"));
  EXPECT_THAT(lost.error().message, HasSubstr("lost the connection to Redis"));
  EXPECT_EQ(lost.error().details, R"({"outcome": "unknown"})");
  EXPECT_TRUE(Eventually(
      [&] {
        return Cli({"XLEN", Key("lost", "stream")}) == "2";
      },
      std::chrono::seconds(10)))
      << "the submit sent before Redis stopped took effect when it went on";
  // The retry the message advises finds it instead of making a second.
  auto again = broker_->Submit(keyed);
  ASSERT_TRUE(again) << again.error().ToString();
  EXPECT_TRUE(again->existing);
  EXPECT_EQ(Cli({"XLEN", Key("lost", "stream")}), "2");

  // Without a key the message says a retry may duplicate.
  stopped([&] { lost = broker_->Submit(Req("noop", "lost")); });
  ASSERT_FALSE(lost);
  // It names the task, and the task it names is the one the submit made.
  const std::string& said = lost.error().message;
  const std::string lead = "no answer came after the submit was sent, so task ";
  ASSERT_EQ(said.rfind(lead, 0), 0u) << said;
  const std::string named = said.substr(lead.size(), 26);
  EXPECT_THAT(said, HasSubstr(named +
                              " may exist; submitting again may make it twice (`ferry "
                              "task status " +
                              named + "` shows whether it exists"));
  EXPECT_EQ(lost.error().details, R"({"outcome": "unknown"})");
  EXPECT_TRUE(Eventually(
      [&] {
        auto t = broker_->GetTask(named);
        return t && t->has_value();
      },
      std::chrono::seconds(10)))
      << named;
  // A batch is named by its count (a submit first, so the reconnection and the queue's
  // registration are not what Redis misses).
  ASSERT_TRUE(broker_->Submit(keyed));
  Result<std::vector<SubmitResult>> lost_batch = Fail(ErrorCode::kInternal, "not sent");
  stopped([&] { lost_batch = broker_->SubmitBatch({Req("noop", "lost"), Req("noop", "lost")}); });
  ASSERT_FALSE(lost_batch);
  EXPECT_THAT(lost_batch.error().message,
              HasSubstr("so its 2 tasks may exist; submitting again may make them twice "
                        "(`ferry task list` shows whether they exist"));

  // A read whose answer is lost changed nothing: no flag.
  Result<QueueStats> read = Fail(ErrorCode::kInternal, "not read");
  stopped([&] { read = broker_->GetQueueStats("lost"); });
  ASSERT_FALSE(read);
  EXPECT_EQ(read.error().code, ErrorCode::kUnavailable);
  EXPECT_TRUE(read.error().details.empty()) << read.error().details;

  // A broker that connects while Redis is stopped has sent its handshake, not a submit: its
  // failure is a plain unavailable.
  Result<std::unique_ptr<Broker>> fresh = Fail(ErrorCode::kInternal, "not opened");
  stopped([&] { fresh = MakeRedisBrokerFactory(options_)->Open(); });
  ASSERT_FALSE(fresh);
  EXPECT_EQ(fresh.error().code, ErrorCode::kUnavailable);
  EXPECT_TRUE(fresh.error().details.empty()) << fresh.error().details;
}

// At a limit of one the refusal speaks of one queue, not "1 queues".
TEST_F(BrokerTest, ALimitOfOneQueueIsNamedInTheSingular) {
  options_.max_queues = 1;
  Reopen();
  SubmitOk(Req("noop", "q1"));
  auto over = broker_->Submit(Req("noop", "q2"));
  ASSERT_FALSE(over);
  EXPECT_THAT(over.error().message,
              HasSubstr("queue q2 cannot be made: 1 queue exists and the limit is 1 "));
}

// A batch whose new queues would pass the limit submits nothing and makes none; its refusal
// counts them, so it does not read as a limit reached before it.
TEST_F(BrokerTest, ABatchRefusedByTheLimitSaysHowManyQueuesItNeeds) {
  options_.max_queues = 3;
  Reopen();
  SubmitOk(Req("noop", "q1"));
  auto batch = broker_->SubmitBatch({Req("noop", "n1"), Req("noop", "n2"), Req("noop", "n3")});
  ASSERT_FALSE(batch);
  EXPECT_EQ(batch.error().code, ErrorCode::kConflict);
  EXPECT_THAT(batch.error().message,
              HasSubstr("3 new queues (n1, n2, n3) cannot be made: 1 queue exists, this call "
                        "needs 3 more, and the limit is 3 (--max-queues"));
  EXPECT_THAT(batch.error().message, HasSubstr("it submits nothing and makes none"));
  auto queues = broker_->ListQueues();
  ASSERT_TRUE(queues);
  EXPECT_THAT(*queues, ElementsAre("q1"));
  for (const std::string q : {"n1", "n2", "n3"}) EXPECT_EQ(Cli({"EXISTS", Key(q, "stream")}), "0");
  // Near miss: two new queues fit exactly.
  auto fits = broker_->SubmitBatch({Req("noop", "n1"), Req("noop", "n2")});
  ASSERT_TRUE(fits) << fits.error().ToString();
  // One past the limit with none of its own: the plain words.
  auto over = broker_->SubmitBatch({Req("noop", "q1"), Req("noop", "n4")});
  ASSERT_FALSE(over);
  EXPECT_THAT(over.error().message,
              HasSubstr("queue n4 cannot be made: 3 queues exist and the limit is 3 "));
}

// A refused batch lists none of its queues, even for a moment: a process that walks the listed
// queues meanwhile (a scheduler promoting due tasks in each) would make them again and keep
// them, past the limit.
TEST_F(BrokerTest, ARefusedBatchLeavesNoQueueBehindWhileOthersWalkTheQueues) {
  options_.max_queues = 50;
  Reopen();
  for (int i = 0; i < 10; ++i) SubmitOk(Req("noop", "kept" + std::to_string(i)));
  auto walker = Open();
  ASSERT_TRUE(walker);
  std::atomic<bool> stop{false};
  std::atomic<int> walks{0};
  std::thread walk([&] {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (!stop && std::chrono::steady_clock::now() < deadline) {
      auto listed = walker->ListQueues();
      if (!listed) continue;
      for (const auto& q : *listed) (void)walker->PromoteDue(q, WallNowMs(), 10);
      ++walks;
    }
  });
  ASSERT_TRUE(Eventually([&] { return walks > 0; }, std::chrono::seconds(10)));
  for (int round = 0; round < 20; ++round) {
    std::vector<SubmitRequest> batch;
    for (int i = 0; i < 60; ++i) {
      batch.push_back(Req("noop", "b" + std::to_string(round) + "_" + std::to_string(i)));
    }
    auto refused = broker_->SubmitBatch(batch);
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().code, ErrorCode::kConflict);
  }
  stop = true;
  walk.join();
  auto queues = broker_->ListQueues();
  ASSERT_TRUE(queues);
  EXPECT_EQ(queues->size(), 10u) << ::testing::PrintToString(*queues);
  EXPECT_EQ(Cli({"EVAL", "return #redis.call('KEYS', ARGV[1])", "0", options_.prefix + ":{b*"}),
            "0");
}

// max_queues bounds how many queues exist: the one past it is refused whoever makes it (a task,
// a batch, a worker's claim) and leaves no key behind; queues that exist go on; deleting one
// frees its place.
TEST_F(BrokerTest, QueuesPastTheLimitAreRefusedAndDeletingOneFreesAPlace) {
  options_.max_queues = 3;
  Reopen();
  for (const std::string q : {"q1", "q2", "q3"}) SubmitOk(Req("noop", q));
  auto over = broker_->Submit(Req("noop", "q4"));
  ASSERT_FALSE(over);
  EXPECT_EQ(over.error().code, ErrorCode::kConflict);
  EXPECT_THAT(over.error().message, HasSubstr("queue q4 cannot be made: 3 queues exist"));
  EXPECT_THAT(over.error().message, HasSubstr("FERRY_MAX_QUEUES"));
  EXPECT_EQ(Cli({"EXISTS", Key("q4", "stream")}), "0");
  // The same from another connection (its own cache), from a batch, and from a worker.
  auto other = Open();
  ASSERT_TRUE(other);
  auto batch = other->SubmitBatch({Req("noop", "q1"), Req("noop", "q4")});
  ASSERT_FALSE(batch);
  EXPECT_EQ(batch.error().code, ErrorCode::kConflict);
  auto claim = other->Claim({"q4"}, "w1", 1, kNoBlock);
  ASSERT_FALSE(claim);
  EXPECT_EQ(claim.error().code, ErrorCode::kConflict);
  EXPECT_THAT(claim.error().message, HasSubstr("queue q4 cannot be made"));
  // A worker that also serves a queue that exists reads it, blocking or not.
  for (const milliseconds block : {kNoBlock, milliseconds(2000)}) {
    const std::string id = SubmitOk(Req("noop", "q1"));
    auto mixed = other->Claim({"q4", "q1"}, "w2", 10, block);
    ASSERT_TRUE(mixed) << mixed.error().ToString();
    ASSERT_EQ(mixed->size(), 2u - (block.count() > 0 ? 1u : 0u));
    EXPECT_EQ(mixed->back().id, id);
  }
  EXPECT_EQ(Cli({"EXISTS", Key("q4", "stream")}), "0");
  // Queues that exist take tasks and give them out as before.
  SubmitOk(Req("noop", "q3"));
  EXPECT_EQ(ClaimOk({"q3"}, "w1", 10).size(), 2u);
  auto queues = other->ListQueues();
  ASSERT_TRUE(queues);
  EXPECT_THAT(*queues, ElementsAre("q1", "q2", "q3"));

  // q2 holds a waiting task: not deletable until it is gone.
  auto busy = broker_->DeleteQueue("q2");
  ASSERT_FALSE(busy);
  EXPECT_EQ(busy.error().code, ErrorCode::kConflict);
  EXPECT_THAT(busy.error().message, HasSubstr("1 waiting or running"));
  auto running = ClaimOk({"q2"}, "w1", 10);
  ASSERT_EQ(running.size(), 1u);
  busy = broker_->DeleteQueue("q2");
  ASSERT_FALSE(busy);
  EXPECT_THAT(busy.error().message, HasSubstr("1 waiting or running"));
  ASSERT_TRUE(broker_->Complete({Done(running[0], Completion::Kind::kSucceeded, "w1")}));
  ASSERT_TRUE(broker_->DeleteQueue("q2"));
  // Its place is free, from every connection: q4 can be made now, and then no fifth queue.
  SubmitOk(Req("noop", "q4"));
  auto fifth = other->Submit(Req("noop", "q5"));
  ASSERT_FALSE(fifth);
  EXPECT_THAT(fifth.error().message, HasSubstr("queue q5 cannot be made: 3 queues exist"));
  queues = other->ListQueues();
  ASSERT_TRUE(queues);
  EXPECT_THAT(*queues, ElementsAre("q1", "q3", "q4"));
}

// DeleteQueue refuses a queue while any task in it is unfinished or dead-lettered, naming what
// it holds, and forgets it once empty; the queue can then be made again from nothing.
TEST_F(BrokerTest, DeleteQueueForgetsOnlyAnEmptyQueue) {
  SubmitOk(Req("noop", "jobs"));
  auto claimed = ClaimOk({"jobs"}, "w1", 10);
  ASSERT_EQ(claimed.size(), 1u);
  ASSERT_TRUE(broker_->Complete({Done(claimed[0], Completion::Kind::kSucceeded, "w1")}));
  SubmitRequest later = Req("noop", "jobs");
  later.eta_ms = WallNowMs() + 3600 * 1000;
  const std::string scheduled = SubmitOk(later);
  SubmitOk(Req("fail", "jobs"));
  claimed = ClaimOk({"jobs"}, "w1", 10);
  ASSERT_EQ(claimed.size(), 1u);
  Completion c = Done(claimed[0], Completion::Kind::kFailed, "w1");
  c.retryable = false;
  c.error = "bad input";
  ASSERT_TRUE(broker_->Complete({c}));

  auto busy = broker_->DeleteQueue("jobs");
  ASSERT_FALSE(busy);
  EXPECT_EQ(busy.error().code, ErrorCode::kConflict);
  EXPECT_THAT(busy.error().message, HasSubstr("(1 scheduled or retrying, 1 dead-lettered)"));
  ASSERT_TRUE(broker_->Cancel(scheduled));
  busy = broker_->DeleteQueue("jobs");
  ASSERT_FALSE(busy);
  EXPECT_THAT(busy.error().message, HasSubstr("(1 dead-lettered)"));
  auto purged = broker_->PurgeDead("jobs", WallNowMs());
  ASSERT_TRUE(purged);
  ASSERT_EQ(*purged, 1);

  auto deleted = broker_->DeleteQueue("jobs");
  ASSERT_TRUE(deleted) << deleted.error().ToString();
  auto queues = broker_->ListQueues();
  ASSERT_TRUE(queues);
  EXPECT_THAT(*queues, Not(::testing::Contains("jobs")));
  for (const char* key : {"stream", "delayed", "dead", "stats", "index"}) {
    EXPECT_EQ(Cli({"EXISTS", Key("jobs", key)}), "0") << key;
  }
  auto again = broker_->DeleteQueue("jobs");
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, ErrorCode::kNotFound);
  auto bad = broker_->DeleteQueue("bad queue!");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, ErrorCode::kInvalidArgument);

  // Made again by its next task, from nothing: counters at 0, the task given out.
  const std::string fresh = SubmitOk(Req("noop", "jobs"));
  auto stats = broker_->GetQueueStats("jobs");
  ASSERT_TRUE(stats);
  EXPECT_EQ(stats->pending, 1);
  EXPECT_EQ(stats->counters["succeeded"], 0);
  claimed = ClaimOk({"jobs"}, "w1", 10);
  ASSERT_EQ(claimed.size(), 1u);
  EXPECT_EQ(claimed[0].id, fresh);
}

// A producer that made a queue before it was deleted, and submits to it again, makes it again
// first: the task is found by id and listed at once, and the worker whose group went gets it.
// A repeated unique submission on a deleted queue makes the queue and still answers the first
// id. A delete that finds the stream made again between its two steps puts the name back.
TEST_F(BrokerTest, AQueueDeletedUnderAProducerIsMadeAgainByItsNextTask) {
  auto worker = Open();
  auto deleter = Open();
  ASSERT_TRUE(worker && deleter);
  SubmitOk(Req("noop", "jobs"));
  auto claimed = worker->Claim({"jobs"}, "w1", 10, kNoBlock);
  ASSERT_TRUE(claimed && claimed->size() == 1u);
  ASSERT_TRUE(worker->Complete({Done((*claimed)[0], Completion::Kind::kSucceeded, "w1")}));
  ASSERT_TRUE(deleter->DeleteQueue("jobs"));
  ASSERT_EQ(Cli({"EXISTS", Key("jobs", "stream")}), "0");

  const std::string id = SubmitOk(Req("noop", "jobs"));  // broker_ still knows "jobs"
  auto found = deleter->GetTask(id);
  ASSERT_TRUE(found) << found.error().ToString();
  ASSERT_TRUE(*found) << "the task of a queue made again is found by id at once";
  EXPECT_EQ((*found)->status, TaskStatus::kPending);
  auto queues = deleter->ListQueues();
  ASSERT_TRUE(queues);
  EXPECT_THAT(*queues, ::testing::Contains("jobs"));
  auto got = worker->Claim({"jobs"}, "w1", 10, milliseconds(2000));
  ASSERT_TRUE(got) << got.error().ToString();
  ASSERT_EQ(got->size(), 1u);
  EXPECT_EQ((*got)[0].id, id);
  ASSERT_TRUE(worker->Complete({Done((*got)[0], Completion::Kind::kSucceeded, "w1")}));

  // A scheduled task first in its call, and a repeated unique key first in its call.
  SubmitRequest unique = Req("noop", "jobs");
  unique.unique_key = "u1";
  const std::string first = SubmitOk(unique);
  auto drained = worker->Claim({"jobs"}, "w1", 10, kNoBlock);
  ASSERT_TRUE(drained && drained->size() == 1u);
  ASSERT_TRUE(worker->Complete({Done((*drained)[0], Completion::Kind::kSucceeded, "w1")}));
  ASSERT_TRUE(deleter->DeleteQueue("jobs"));
  auto repeated = broker_->Submit(unique);
  ASSERT_TRUE(repeated) << repeated.error().ToString();
  EXPECT_TRUE(repeated->existing);
  EXPECT_EQ(repeated->id, first);
  EXPECT_EQ(Cli({"XLEN", Key("jobs", "stream")}), "0") << "the repeat left no entry";
  ASSERT_TRUE(deleter->DeleteQueue("jobs"));
  SubmitRequest later = Req("noop", "jobs");
  later.eta_ms = WallNowMs() + 3600 * 1000;
  const std::string scheduled = SubmitOk(later);
  found = deleter->GetTask(scheduled);
  ASSERT_TRUE(found && *found);
  EXPECT_EQ((*found)->status, TaskStatus::kScheduled);
}

// Deletes racing a producer that submits, runs and finishes one task at a time on the same
// queue: every task is found by id after its submit, and once quiet a queue whose stream exists
// is listed (a delete never leaves one unlisted). For one round trip a delete that finds the
// stream made again has the name out before it puts it back, so the lookup may wait that long.
TEST_F(BrokerTest, DeletesRacingAProducerLoseNoTaskAndLeaveNoQueueUnlisted) {
  auto producer = Open();
  auto deleter = Open();
  auto checker = Open();
  ASSERT_TRUE(producer && deleter && checker);
  std::atomic<bool> done{false};
  std::atomic<int> deletes{0};
  std::thread deleting([&] {
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (!done && std::chrono::steady_clock::now() < until) {
      if (deleter->DeleteQueue("jobs")) ++deletes;
    }
  });
  int lost = 0;
  int unlisted = 0;
  int refused = 0;
  for (int i = 0; i < 300; ++i) {
    auto submitted = producer->Submit(Req("noop", "jobs"));
    if (!submitted) {
      // The deleter won every one of the submit's three rounds: nothing was written, and the
      // caller is told so.
      EXPECT_THAT(submitted.error().message, HasSubstr("was deleted each time it was made again"));
      ++refused;
      continue;
    }
    const bool found = Eventually(
        [&] {
          auto t = checker->GetTask(submitted->id);
          return t && *t;
        },
        std::chrono::seconds(5));
    if (!found) ++lost;
    auto claimed = producer->Claim({"jobs"}, "w1", 10, milliseconds(1000));
    ASSERT_TRUE(claimed) << claimed.error().ToString();
    for (const auto& t : *claimed) {
      ASSERT_TRUE(producer->Complete({Done(t, Completion::Kind::kSucceeded, "w1")}));
    }
  }
  done = true;
  deleting.join();
  // Quiet now: a stream that exists is listed.
  if (Cli({"EXISTS", Key("jobs", "stream")}) == "1") {
    auto queues = checker->ListQueues();
    ASSERT_TRUE(queues);
    if (std::find(queues->begin(), queues->end(), "jobs") == queues->end()) ++unlisted;
  }
  EXPECT_EQ(lost, 0) << "tasks not found by id right after their submit";
  EXPECT_EQ(unlisted, 0);
  EXPECT_GT(deletes.load(), 0) << "no delete happened: the race was not exercised";
  EXPECT_LT(refused, 300);
}

TEST_F(BrokerTest, CancelInEachState) {
  // pending
  std::string pending = SubmitOk(Req());
  auto st = broker_->Cancel(pending);
  ASSERT_TRUE(st) << st.error().ToString();
  EXPECT_EQ(*st, TaskStatus::kCancelled);
  EXPECT_EQ(Get(pending).status, TaskStatus::kCancelled);
  EXPECT_TRUE(ClaimOk({"default"}).empty());

  // scheduled
  SubmitRequest later = Req();
  later.eta_ms = WallNowMs() + 3'600'000;
  std::string scheduled = SubmitOk(later);
  st = broker_->Cancel(scheduled);
  ASSERT_TRUE(st);
  EXPECT_EQ(*st, TaskStatus::kCancelled);
  EXPECT_EQ(Cli({"ZCARD", Key("default", "delayed")}), "0");

  // retrying
  std::string retrying = SubmitOk(Req());
  auto t = ClaimOk({"default"});
  ASSERT_EQ(t.size(), 1u);
  Completion fail = Done(t[0], Completion::Kind::kFailed, "w1");
  fail.backoff_ms = 60'000;
  ASSERT_EQ(CompleteOne(fail), CompletionOutcome::kApplied);
  ASSERT_EQ(Get(retrying).status, TaskStatus::kRetrying);
  st = broker_->Cancel(retrying);
  ASSERT_TRUE(st);
  EXPECT_EQ(*st, TaskStatus::kCancelled);
  EXPECT_EQ(Cli({"ZCARD", Key("default", "delayed")}), "0");

  // running: cancel is requested; the worker's failure then ends it as cancelled, not retried
  std::string running = SubmitOk(Req());
  t = ClaimOk({"default"});
  ASSERT_EQ(t.size(), 1u);
  LeaseRef lease{t[0].id, t[0].queue, t[0].entry_id, t[0].epoch};
  auto none = broker_->CancelRequested({lease});
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->empty());
  st = broker_->Cancel(running);
  ASSERT_TRUE(st);
  EXPECT_EQ(*st, TaskStatus::kRunning);
  TaskRecord rec = Get(running);
  EXPECT_EQ(rec.status, TaskStatus::kRunning);
  EXPECT_TRUE(rec.cancel_requested);
  auto requested = broker_->CancelRequested({lease});
  ASSERT_TRUE(requested);
  EXPECT_THAT(*requested, ElementsAre(running));
  Completion stopped = Done(t[0], Completion::Kind::kFailed, "w1");
  stopped.error = "stopped";
  EXPECT_EQ(CompleteOne(stopped), CompletionOutcome::kApplied);
  EXPECT_EQ(Get(running).status, TaskStatus::kCancelled);

  // ended
  std::string done = SubmitOk(Req());
  t = ClaimOk({"default"});
  ASSERT_EQ(t.size(), 1u);
  ASSERT_EQ(CompleteOne(Done(t[0], Completion::Kind::kSucceeded, "w1")),
            CompletionOutcome::kApplied);
  st = broker_->Cancel(done);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, ErrorCode::kConflict);
  EXPECT_EQ(st.error().message, "task " + done + " already ended (succeeded)");
  st = broker_->Cancel(pending);
  ASSERT_FALSE(st);
  EXPECT_THAT(st.error().message, HasSubstr("already ended (cancelled)"));

  // unknown
  st = broker_->Cancel("01HZZZZZZZZZZZZZZZZZZZZZZZ");
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(st.error().message, "no task 01HZZZZZZZZZZZZZZZZZZZZZZZ");

  EXPECT_EQ(Counter("default", "cancelled"), 4);
}

TEST_F(BrokerTest, DeliveredButNotStartedEntries) {
  // A worker's blocking read delivers entries before its start script runs; if it dies in
  // between, the entry sits in the PEL with the task still pending. Simulate with XREADGROUP.
  std::string cancelled = SubmitOk(Req());
  std::string orphan = SubmitOk(Req());
  Cli({"XREADGROUP", "GROUP", "ferry", "w9", "COUNT", "2", "STREAMS", Key("default", "stream"),
       ">"});

  // Cancel removes the delivered entry from the stream and the PEL.
  ASSERT_TRUE(broker_->Cancel(cancelled));
  EXPECT_EQ(Cli({"XLEN", Key("default", "stream")}), "1");

  // Reclaim starts the orphan as a first execution (no reclaim counted).
  auto r = broker_->Reclaim("default", "w1", milliseconds(0), 10);
  ASSERT_TRUE(r) << r.error().ToString();
  ASSERT_EQ(r->size(), 1u);
  EXPECT_EQ((*r)[0].id, orphan);
  EXPECT_EQ((*r)[0].attempt, 1);
  EXPECT_EQ((*r)[0].epoch, 1);
  EXPECT_EQ(Get(orphan).reclaims, 0);
  auto stats = broker_->GetQueueStats("default");
  ASSERT_TRUE(stats);
  EXPECT_EQ(stats->running, 1);
  EXPECT_EQ(stats->pending, 0);
}

TEST_F(BrokerTest, LeaseReclaimFencesTheOldOwner) {
  std::string id = SubmitOk(Req());
  auto a = ClaimOk({"default"}, "worker-a");
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0].epoch, 1);

  // B takes over once the entry has been idle for min_idle (A does not renew).
  std::vector<ClaimedTask> b;
  ASSERT_TRUE(Eventually(
      [&] {
        auto r = broker_->Reclaim("default", "worker-b", milliseconds(50), 10);
        EXPECT_TRUE(r) << r.error().ToString();
        if (r) b = *r;
        return !b.empty();
      },
      std::chrono::seconds(5)));
  ASSERT_EQ(b.size(), 1u);
  EXPECT_EQ(b[0].id, id);
  EXPECT_EQ(b[0].epoch, 2);
  EXPECT_EQ(b[0].attempt, 1);
  EXPECT_TRUE(b[0].reclaimed);
  EXPECT_EQ(b[0].entry_id, a[0].entry_id);
  TaskRecord rec = Get(id);
  EXPECT_EQ(rec.worker, "worker-b");
  EXPECT_EQ(rec.reclaims, 1);
  EXPECT_EQ(rec.epoch, 2);

  // A's late finish is rejected and counted; B's applies.
  Completion late = Done(a[0], Completion::Kind::kSucceeded, "worker-a");
  late.result = R"("from a")";
  EXPECT_EQ(CompleteOne(late), CompletionOutcome::kStale);
  EXPECT_EQ(Get(id).status, TaskStatus::kRunning);
  EXPECT_EQ(Counter("default", "stale"), 1);
  EXPECT_EQ(Counter("default", "reclaimed"), 1);

  Completion good = Done(b[0], Completion::Kind::kSucceeded, "worker-b");
  good.result = R"("from b")";
  EXPECT_EQ(CompleteOne(good), CompletionOutcome::kApplied);
  rec = Get(id);
  EXPECT_EQ(rec.status, TaskStatus::kSucceeded);
  EXPECT_EQ(rec.result, R"("from b")");
  // A's finish after B's is still stale, not a duplicate.
  EXPECT_EQ(CompleteOne(late), CompletionOutcome::kStale);
  EXPECT_EQ(Counter("default", "stale"), 2);
}

TEST_F(BrokerTest, RenewLeasesKeepsTheLeaseAndReportsLostOnes) {
  std::string id = SubmitOk(Req());
  auto a = ClaimOk({"default"}, "worker-a");
  ASSERT_EQ(a.size(), 1u);
  LeaseRef lease{a[0].id, a[0].queue, a[0].entry_id, a[0].epoch};
  const milliseconds min_idle(1000);

  // Time has to pass for a lease to expire: renew every 50 ms for well over one lease period
  // while B keeps trying. Bounded: 30 rounds.
  for (int i = 0; i < 30; ++i) {
    const auto renewed = std::chrono::steady_clock::now();
    auto lost = broker_->RenewLeases("worker-a", {lease});
    ASSERT_TRUE(lost) << lost.error().ToString();
    EXPECT_TRUE(lost->empty());
    auto b = broker_->Reclaim("default", "worker-b", min_idle, 10);
    ASSERT_TRUE(b);
    if (std::chrono::steady_clock::now() - renewed < min_idle) {
      EXPECT_TRUE(b->empty()) << "B took a lease A had renewed less than a lease ago";
    } else if (!b->empty()) {
      GTEST_SKIP() << "this process stalled for over a lease between renew and reclaim";
    }
    ferry::testing::SleepMs(50);
  }

  // A stops renewing; B takes over; A learns its lease is lost.
  std::vector<ClaimedTask> b;
  ASSERT_TRUE(Eventually(
      [&] {
        auto r = broker_->Reclaim("default", "worker-b", min_idle, 10);
        if (r) b = *r;
        return !b.empty();
      },
      std::chrono::seconds(5)));
  auto lost = broker_->RenewLeases("worker-a", {lease});
  ASSERT_TRUE(lost);
  EXPECT_THAT(*lost, ElementsAre(id));
  // B's own lease renews fine; an ended task's lease is lost.
  LeaseRef lease_b{b[0].id, b[0].queue, b[0].entry_id, b[0].epoch};
  lost = broker_->RenewLeases("worker-b", {lease_b});
  ASSERT_TRUE(lost);
  EXPECT_TRUE(lost->empty());
  ASSERT_EQ(CompleteOne(Done(b[0], Completion::Kind::kSucceeded, "worker-b")),
            CompletionOutcome::kApplied);
  lost = broker_->RenewLeases("worker-b", {lease_b});
  ASSERT_TRUE(lost);
  EXPECT_THAT(*lost, ElementsAre(id));
}

TEST_F(BrokerTest, PoisonPillAfterMaxReclaims) {
  options_.max_reclaims = 2;
  Reopen();
  std::string id = SubmitOk(Req("crash"));
  ASSERT_EQ(ClaimOk({"default"}, "w0").size(), 1u);
  for (int i = 1; i <= 2; ++i) {
    auto r = broker_->Reclaim("default", "w" + std::to_string(i), milliseconds(0), 10);
    ASSERT_TRUE(r);
    ASSERT_EQ(r->size(), 1u) << "reclaim " << i;
    EXPECT_EQ((*r)[0].epoch, i + 1);
  }
  auto r = broker_->Reclaim("default", "w3", milliseconds(0), 10);
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->empty());
  TaskRecord rec = Get(id);
  EXPECT_EQ(rec.status, TaskStatus::kFailed);
  EXPECT_EQ(rec.error, "poison pill: reclaimed 3 times");
  EXPECT_EQ(rec.reclaims, 3);
  auto dead = broker_->ListDead("default", 10);
  ASSERT_TRUE(dead);
  ASSERT_EQ(dead->size(), 1u);
  EXPECT_EQ((*dead)[0].id, id);
  auto stats = broker_->GetQueueStats("default");
  ASSERT_TRUE(stats);
  EXPECT_EQ(stats->counters["poison"], 1);
  EXPECT_EQ(stats->counters["reclaimed"], 3);
  EXPECT_EQ(stats->running, 0);
  EXPECT_EQ(stats->pending, 0);
}

TEST_F(BrokerTest, ReclaimEndsACancelRequestedTask) {
  std::string id = SubmitOk(Req());
  ASSERT_EQ(ClaimOk({"default"}, "w0").size(), 1u);
  ASSERT_TRUE(broker_->Cancel(id));
  auto r = broker_->Reclaim("default", "w1", milliseconds(0), 10);
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->empty());
  EXPECT_EQ(Get(id).status, TaskStatus::kCancelled);
}

// A cancel of a running task whose worker is gone ends it at once: nobody else would until a
// live worker of the queue reclaimed it. Gone means both: no heartbeat within the worker's TTL,
// and its entry not renewed for that long (Redis' own idle time, free of clock skew).
TEST_F(BrokerTest, CancelEndsTheTaskOfAWorkerThatIsGone) {
  std::string id = SubmitOk(Req());
  auto t = ClaimOk({"default"}, "w0");
  ASSERT_EQ(t.size(), 1u);
  auto idle_for = [&](const ClaimedTask& task, const std::string& worker, int64_t ms) {
    Cli({"XCLAIM", Key("default", "stream"), "ferry", worker, "0", task.entry_id, "IDLE",
         std::to_string(ms), "JUSTID"});
  };
  auto cancel = [&](const std::string& task_id) {
    auto st = broker_->Cancel(task_id);
    EXPECT_TRUE(st) << st.error().ToString();
    return st ? *st : TaskStatus::kPending;
  };
  WorkerInfo w;
  w.id = "w0";
  w.status = "running";
  w.queues = {"default"};
  w.started_ms = WallNowMs();

  // Heartbeating, though its entry looks idle: only requested.
  ASSERT_TRUE(broker_->Heartbeat(w, std::chrono::seconds(2)));
  idle_for(t[0], "w0", 60'000);
  EXPECT_EQ(cancel(id), TaskStatus::kRunning);
  // Its last beat a minute ago, but its entry renewed within its TTL: only requested.
  w.last_heartbeat_ms = WallNowMs() - 60'000;
  ASSERT_TRUE(broker_->Heartbeat(w, std::chrono::seconds(2)));
  idle_for(t[0], "w0", 1'900);
  EXPECT_EQ(cancel(id), TaskStatus::kRunning);
  EXPECT_EQ(Get(id).status, TaskStatus::kRunning);
  // Both lapsed: cancelled here, and its entry leaves the PEL.
  idle_for(t[0], "w0", 2'000);
  EXPECT_EQ(cancel(id), TaskStatus::kCancelled);
  TaskRecord rec = Get(id);
  EXPECT_EQ(rec.status, TaskStatus::kCancelled);
  EXPECT_EQ(rec.error, "cancelled (its worker w0 stopped heartbeating)");
  EXPECT_EQ(Cli({"XPENDING", Key("default", "stream"), "ferry", "-", "+", "10"}), "");
  // The gone worker, should it come back, has lost the task.
  LeaseRef lease{t[0].id, t[0].queue, t[0].entry_id, t[0].epoch};
  auto lost = broker_->RenewLeases("w0", {lease});
  ASSERT_TRUE(lost);
  EXPECT_THAT(*lost, ElementsAre(id));
  EXPECT_EQ(CompleteOne(Done(t[0], Completion::Kind::kSucceeded, "w0")), CompletionOutcome::kStale);
  EXPECT_EQ(Get(id).status, TaskStatus::kCancelled);

  // A worker that left no record at all: the default TTL (30 s) of unrenewed lease.
  std::string other = SubmitOk(Req());
  auto u = ClaimOk({"default"}, "w9");
  ASSERT_EQ(u.size(), 1u);
  idle_for(u[0], "w9", 29'000);
  EXPECT_EQ(cancel(other), TaskStatus::kRunning);
  idle_for(u[0], "w9", 30'000);
  EXPECT_EQ(cancel(other), TaskStatus::kCancelled);
  EXPECT_EQ(Get(other).error, "cancelled (its worker w9 stopped heartbeating)");
  EXPECT_EQ(Counter("default", "cancelled"), 2);
}

TEST_F(BrokerTest, DuplicateCompleteIsIdempotent) {
  SubmitOk(Req());
  SubmitOk(Req());
  auto t = ClaimOk({"default"});
  ASSERT_EQ(t.size(), 2u);
  Completion ok = Done(t[0], Completion::Kind::kSucceeded, "w1");
  Completion fail = Done(t[1], Completion::Kind::kFailed, "w1");
  fail.error = "x";
  fail.backoff_ms = 60'000;
  auto first = broker_->Complete({ok, fail});
  ASSERT_TRUE(first);
  EXPECT_THAT(*first, ElementsAre(CompletionOutcome::kApplied, CompletionOutcome::kApplied));
  auto second = broker_->Complete({ok, fail});
  ASSERT_TRUE(second);
  EXPECT_THAT(*second, ElementsAre(CompletionOutcome::kDuplicate, CompletionOutcome::kDuplicate));
  EXPECT_EQ(Counter("default", "succeeded"), 1);
  EXPECT_EQ(Counter("default", "retried"), 1);
  EXPECT_EQ(Counter("default", "stale"), 0);
}

TEST_F(BrokerTest, CompleteOfAVanishedRecordIsMissing) {
  std::string id = SubmitOk(Req());
  auto t = ClaimOk({"default"});
  ASSERT_EQ(t.size(), 1u);
  Cli({"DEL", Key("default", "task:" + id)});
  EXPECT_EQ(CompleteOne(Done(t[0], Completion::Kind::kSucceeded, "w1")),
            CompletionOutcome::kMissing);
  auto stats = broker_->GetQueueStats("default");
  ASSERT_TRUE(stats);
  EXPECT_EQ(stats->running, 0);  // the entry left the PEL

  // A malformed entry id neither fails the batch nor stops the others in it.
  std::string other = SubmitOk(Req());
  auto o = ClaimOk({"default"});
  ASSERT_EQ(o.size(), 1u);
  Completion bad = Done(t[0], Completion::Kind::kSucceeded, "w1");
  bad.entry_id = "not-an-id";
  auto both = broker_->Complete({bad, Done(o[0], Completion::Kind::kSucceeded, "w1")});
  ASSERT_TRUE(both) << both.error().ToString();
  EXPECT_THAT(*both, ElementsAre(CompletionOutcome::kMissing, CompletionOutcome::kApplied));
  LeaseRef bad_lease{other, "default", "garbage", 1};
  auto lost = broker_->RenewLeases("w1", {bad_lease});
  ASSERT_TRUE(lost) << lost.error().ToString();
  EXPECT_THAT(*lost, ElementsAre(other));
}

TEST_F(BrokerTest, HandBackRequeuesAtOnce) {
  std::string id = SubmitOk(Req());
  auto t = ClaimOk({"default"});
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(CompleteOne(Done(t[0], Completion::Kind::kHandBack, "w1")),
            CompletionOutcome::kApplied);
  TaskRecord rec = Get(id);
  EXPECT_EQ(rec.status, TaskStatus::kPending);
  EXPECT_EQ(rec.attempts, 0);
  EXPECT_EQ(Counter("default", "handed_back"), 1);
  EXPECT_EQ(CompleteOne(Done(t[0], Completion::Kind::kHandBack, "w1")),
            CompletionOutcome::kDuplicate);

  auto again = ClaimOk({"default"}, "w2");
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].id, id);
  EXPECT_EQ(again[0].attempt, 1);
  EXPECT_EQ(again[0].epoch, 2);
  EXPECT_NE(again[0].entry_id, t[0].entry_id);
  // The old hand-back is now stale.
  EXPECT_EQ(CompleteOne(Done(t[0], Completion::Kind::kHandBack, "w1")), CompletionOutcome::kStale);

  // A hand-back of a task whose cancel was requested ends it instead of requeueing it.
  ASSERT_TRUE(broker_->Cancel(id));
  EXPECT_EQ(CompleteOne(Done(again[0], Completion::Kind::kHandBack, "w2")),
            CompletionOutcome::kApplied);
  EXPECT_EQ(Get(id).status, TaskStatus::kCancelled);
  EXPECT_TRUE(ClaimOk({"default"}).empty());
}

// A snooze schedules the task again after its wait, without counting an attempt: it is
// promoted only once due, claimed with a new epoch, and a cancel meanwhile ends it.
TEST_F(BrokerTest, SnoozeSchedulesAgainWithoutCountingAnAttempt) {
  SubmitRequest req = Req();
  req.max_attempts = 1;  // a snooze counted as an attempt would leave none
  std::string id = SubmitOk(req);
  auto t = ClaimOk({"default"});
  ASSERT_EQ(t.size(), 1u);
  const Completion z = AnHoursSnooze(t[0]);
  const int64_t before = WallNowMs();
  EXPECT_EQ(CompleteOne(z), CompletionOutcome::kApplied);
  TaskRecord rec = Get(id);
  EXPECT_EQ(rec.status, TaskStatus::kScheduled);
  EXPECT_EQ(rec.attempts, 0);
  EXPECT_GE(rec.eta_ms, before + 3'600'000);
  EXPECT_LE(rec.eta_ms, WallNowMs() + 3'600'000);
  EXPECT_EQ(Counter("default", "snoozed"), 1);
  // Its events tell the snooze (the record alone would read as still running).
  auto events = broker_->ReadEvents(id, "0", 100, kNoBlock);
  ASSERT_TRUE(events) << events.error().ToString();
  std::vector<std::string> types;
  for (const auto& e : *events) types.push_back(e.type);
  EXPECT_THAT(types, ElementsAre("submitted", "running", "scheduled"));
  EXPECT_EQ(events->back().data["eta_ms"], rec.eta_ms);
  EXPECT_EQ(CompleteOne(z), CompletionOutcome::kDuplicate);
  EXPECT_TRUE(ClaimOk({"default"}).empty());

  // One millisecond before its time it stays; at its time it is promoted.
  auto moved = broker_->PromoteDue("default", rec.eta_ms - 1, 100);
  ASSERT_TRUE(moved);
  EXPECT_EQ(*moved, 0);
  moved = broker_->PromoteDue("default", rec.eta_ms, 100);
  ASSERT_TRUE(moved);
  EXPECT_EQ(*moved, 1);
  auto again = ClaimOk({"default"}, "w2");
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].id, id);
  EXPECT_EQ(again[0].attempt, 1);
  EXPECT_EQ(again[0].epoch, t[0].epoch + 1);
  EXPECT_EQ(CompleteOne(z), CompletionOutcome::kStale);  // the first execution's, now stale

  // Snoozed again, then cancelled while scheduled: it never runs again.
  Completion z2 = Done(again[0], Completion::Kind::kSnooze, "w2");
  z2.backoff_ms = 1;
  EXPECT_EQ(CompleteOne(z2), CompletionOutcome::kApplied);
  auto cancelled = broker_->Cancel(id);
  ASSERT_TRUE(cancelled) << cancelled.error().ToString();
  EXPECT_EQ(Get(id).status, TaskStatus::kCancelled);
  moved = broker_->PromoteDue("default", WallNowMs() + 10, 100);
  ASSERT_TRUE(moved);
  EXPECT_EQ(*moved, 0);
}

// A task cancelled by the task that waits for it (a run's task node giving up an attempt's task)
// does not wake that waiter: it would leave its slot and come back at once. Cancelled by anyone
// else, it wakes it as any end does.
TEST_F(BrokerTest, ACancelAskedByItsWaiterDoesNotWakeIt) {
  std::string parent = SubmitOk(Req("ferry.run", "runs"));
  ASSERT_EQ(ClaimOk({"runs"}, "w1").size(), 1u);
  const SubmitRequest child_req = WaitedFor(parent);
  const std::string woken_field = Key("runs", "task:" + parent);

  std::string abandoned = SubmitOk(child_req);
  auto quiet = broker_->CancelUnwaited(abandoned);
  ASSERT_TRUE(quiet) << quiet.error().ToString();
  EXPECT_EQ(*quiet, TaskStatus::kCancelled);
  EXPECT_EQ(Cli({"HGET", woken_field, "woken"}), "") << "its waiter was woken";

  std::string other = SubmitOk(child_req);
  ASSERT_TRUE(broker_->Cancel(other));
  EXPECT_EQ(Cli({"HGET", woken_field, "woken"}), "1");
}

// A task that another waits for (a run's task node's task) wakes its waiter when it ends: a
// snoozed waiter is queued at once; one still running is marked, so that its next snooze queues
// it at once instead; a retry is not an end and wakes nobody; a cancel while it is pending wakes
// too. Waiters in another queue are found by the queue their submission named.
TEST_F(BrokerTest, AnEndingTaskWakesTheTaskThatWaitsForIt) {
  std::string parent = SubmitOk(Req("ferry.run", "runs"));
  auto p = ClaimOk({"runs"}, "w1");
  ASSERT_EQ(p.size(), 1u);

  SubmitRequest child_req = WaitedFor(parent);
  child_req.max_attempts = 2;
  std::string child = SubmitOk(child_req);
  EXPECT_FALSE(Cli({"HGET", Key("default", "task:" + child), "waiter"}).empty());

  // The waiter snoozes for an hour; the child fails once (a retry: no wake), then succeeds.
  const Completion z = AnHoursSnooze(p[0]);
  ASSERT_EQ(CompleteOne(z), CompletionOutcome::kApplied);
  ASSERT_EQ(Get(parent).status, TaskStatus::kScheduled);
  auto c = ClaimOk({"default"}, "w2");
  ASSERT_EQ(c.size(), 1u);
  ASSERT_EQ(CompleteOne(Done(c[0], Completion::Kind::kFailed, "w2")), CompletionOutcome::kApplied);
  EXPECT_EQ(Get(child).status, TaskStatus::kRetrying);
  EXPECT_EQ(Get(parent).status, TaskStatus::kScheduled);
  ASSERT_EQ(*broker_->PromoteDue("default", WallNowMs() + 3'600'000, 10), 1);
  // The failure sent again once its retry is queued is a repeat, not a stale completion.
  EXPECT_EQ(CompleteOne(Done(c[0], Completion::Kind::kFailed, "w2")),
            CompletionOutcome::kDuplicate);
  c = ClaimOk({"default"}, "w2");
  ASSERT_EQ(c.size(), 1u);
  ASSERT_EQ(CompleteOne(Done(c[0], Completion::Kind::kSucceeded, "w2")),
            CompletionOutcome::kApplied);
  // Queued at once, not in an hour; no attempt counted.
  TaskRecord woken = Get(parent);
  EXPECT_EQ(woken.status, TaskStatus::kPending);
  auto again = ClaimOk({"runs"}, "w1");
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].id, parent);
  EXPECT_EQ(again[0].attempt, 1);
  // A repeat of the child's completion (its first answer lost) wakes the waiter again: the
  // first call's wake may not have been made.
  const Completion snooze_again = AnHoursSnooze(again[0]);
  ASSERT_EQ(CompleteOne(snooze_again), CompletionOutcome::kApplied);
  ASSERT_EQ(Get(parent).status, TaskStatus::kScheduled);
  ASSERT_EQ(CompleteOne(Done(c[0], Completion::Kind::kSucceeded, "w2")),
            CompletionOutcome::kDuplicate);
  EXPECT_EQ(Get(parent).status, TaskStatus::kPending);
  again = ClaimOk({"runs"}, "w1");
  ASSERT_EQ(again.size(), 1u);

  // A second child ends while the waiter runs: the waiter's snooze then comes back at once.
  std::string second = SubmitOk(child_req);
  c = ClaimOk({"default"}, "w2");
  ASSERT_EQ(c.size(), 1u);
  ASSERT_EQ(CompleteOne(Done(c[0], Completion::Kind::kSucceeded, "w2")),
            CompletionOutcome::kApplied);
  EXPECT_EQ(Get(parent).status, TaskStatus::kRunning);
  const Completion z2 = AnHoursSnooze(again[0]);
  ASSERT_EQ(CompleteOne(z2), CompletionOutcome::kApplied);
  EXPECT_EQ(Get(parent).status, TaskStatus::kPending);
  // Sent again (its answer lost), that snooze is a repeat, not another worker's stale one.
  EXPECT_EQ(CompleteOne(z2), CompletionOutcome::kDuplicate);
  auto third_look = ClaimOk({"runs"}, "w1");
  ASSERT_EQ(third_look.size(), 1u);
  // The mark was used: the next snooze waits its time.
  const Completion z3 = AnHoursSnooze(third_look[0]);
  ASSERT_EQ(CompleteOne(z3), CompletionOutcome::kApplied);
  EXPECT_EQ(Get(parent).status, TaskStatus::kScheduled);

  // A child that fails for good is not dead-lettered (its run owns the failure); a task nobody
  // waits for is.
  SubmitRequest once = child_req;
  once.max_attempts = 1;
  std::string failing = SubmitOk(once);
  std::string plain = SubmitOk(Req("echo", "default"));
  auto both = ClaimOk({"default"}, "w2");
  ASSERT_EQ(both.size(), 2u);
  for (const auto& t : both) {
    Completion f = Done(t, Completion::Kind::kFailed, "w2");
    f.retryable = false;
    ASSERT_EQ(CompleteOne(f), CompletionOutcome::kApplied);
  }
  EXPECT_EQ(Get(failing).status, TaskStatus::kFailed);
  auto dead = broker_->ListDead("default", 10);
  ASSERT_TRUE(dead);
  ASSERT_EQ(dead->size(), 1u);
  EXPECT_EQ((*dead)[0].id, plain);
  // Nor is it retried by hand: the refusal names the task that waits for it, in its text and in
  // its details (where the service finds the run to name instead).
  auto retried = broker_->Retry(failing);
  ASSERT_FALSE(retried);
  EXPECT_EQ(retried.error().code, ErrorCode::kConflict);
  EXPECT_THAT(retried.error().message, HasSubstr("is waited for by task runs/" + parent));
  EXPECT_EQ(retried.error().details, DumpJson(Json{{"waiter", "runs/" + parent}}));
  EXPECT_EQ(Get(failing).status, TaskStatus::kFailed);
  EXPECT_TRUE(broker_->Retry(plain)) << "a task nobody waits for is retried as before";
  ASSERT_TRUE(broker_->Cancel(plain));  // out of the way of the claims below

  // A child cancelled before it ran wakes it too.
  std::string third = SubmitOk(child_req);
  auto cancelled = broker_->Cancel(third);
  ASSERT_TRUE(cancelled) << cancelled.error().ToString();
  EXPECT_EQ(*cancelled, TaskStatus::kCancelled);
  EXPECT_EQ(Get(parent).status, TaskStatus::kPending);

  // A mark left for an execution that ended otherwise (handed back at a drain) goes with the next
  // claim: that execution looks at what it waits for anyway, so its snooze waits its time.
  auto running = ClaimOk({"runs"}, "w1");
  ASSERT_EQ(running.size(), 1u);
  SubmitOk(child_req);
  c = ClaimOk({"default"}, "w2");
  ASSERT_EQ(c.size(), 1u);
  ASSERT_EQ(CompleteOne(Done(c[0], Completion::Kind::kSucceeded, "w2")),
            CompletionOutcome::kApplied);
  EXPECT_EQ(Cli({"HGET", Key("runs", "task:" + parent), "woken"}), "1");
  ASSERT_EQ(CompleteOne(Done(running[0], Completion::Kind::kHandBack, "w1")),
            CompletionOutcome::kApplied);
  running = ClaimOk({"runs"}, "w1");
  ASSERT_EQ(running.size(), 1u);
  EXPECT_EQ(Cli({"HGET", Key("runs", "task:" + parent), "woken"}), "");
  const Completion later_snooze = AnHoursSnooze(running[0]);
  ASSERT_EQ(CompleteOne(later_snooze), CompletionOutcome::kApplied);
  EXPECT_EQ(Get(parent).status, TaskStatus::kScheduled);

  // A submission repeated under the same key by another waiter (a run's new task, after
  // recovery) makes it the one to wake while the task has not ended.
  SubmitRequest keyed = child_req;
  keyed.unique_key = "run-1:child:1";
  std::string fourth = SubmitOk(keyed);
  std::string other_waiter = SubmitOk(Req("ferry.run", "runs"));
  keyed.waiter_id = other_waiter;
  EXPECT_EQ(SubmitOk(keyed), fourth);
  EXPECT_EQ(Cli({"HGET", Key("default", "task:" + fourth), "waiter"}), "runs/" + other_waiter);

  // A task with no waiter ends as before, and half a waiter is refused.
  SubmitRequest half = Req();
  half.waiter_id = parent;
  auto refused = broker_->Submit(half);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, ErrorCode::kInvalidArgument);
  half.waiter_queue = "runs";
  half.waiter_id = "not-an-id";
  EXPECT_FALSE(broker_->Submit(half));
}

// `submitted` counts the tasks made, as the listing index's lifetime count of entries (one per
// task made; no counter of its own written per submit): a repeat under a unique key is not
// counted, and trimming the index takes nothing from it.
TEST_F(BrokerTest, SubmittedCountsTasksMadeWhateverTheIndexKeeps) {
  auto stats = broker_->GetQueueStats("fresh-queue");
  ASSERT_TRUE(stats) << stats.error().ToString();
  EXPECT_EQ(stats->counters["submitted"], 0);
  SubmitRequest keyed = Req();
  keyed.unique_key = "once";
  SubmitOk(keyed);
  SubmitOk(keyed);
  SubmitOk(Req());
  SubmitRequest later = Req();
  later.eta_ms = WallNowMs() + 3'600'000;
  SubmitOk(later);
  stats = broker_->GetQueueStats("default");
  ASSERT_TRUE(stats);
  EXPECT_EQ(stats->counters["submitted"], 3);
  Cli({"XTRIM", Key("default", "index"), "MAXLEN", "0"});
  stats = broker_->GetQueueStats("default");
  ASSERT_TRUE(stats);
  EXPECT_EQ(stats->counters["submitted"], 3);
  EXPECT_EQ(Cli({"HGET", Key("default", "stats"), "submitted"}), "");
}

// A waited-for task's unique key lives as long as its waiter may wait (a month) while the task
// has not ended, and no longer than the task's record once it has: by completion, by cancel.
// A task nobody waits for keeps the key its submitter asked for.
TEST_F(BrokerTest, AnEndedWaitedTaskKeepsItsKeyNoLongerThanItsRecord) {
  const int64_t month_ms = int64_t{30} * 24 * 3600 * 1000;
  std::string parent = SubmitOk(Req("ferry.run", "runs"));
  SubmitRequest child_req = WaitedFor(parent);
  child_req.unique_ttl = std::chrono::milliseconds(month_ms);
  auto key_ttl = [&](const std::string& key) {
    return std::stoll(Cli({"PTTL", Key("default", "unique:" + key)}));
  };
  child_req.unique_key = "run-1:child:1";
  std::string done_child = SubmitOk(child_req);
  child_req.unique_key = "run-1:other:1";
  std::string cancelled_child = SubmitOk(child_req);
  SubmitRequest plain = Req();
  plain.unique_key = "order-42";
  plain.unique_ttl = std::chrono::milliseconds(month_ms);
  std::string plain_id = SubmitOk(plain);
  EXPECT_GT(key_ttl("run-1:child:1"), month_ms - 60'000);

  auto c = ClaimOk({"default"}, "w2", 3);
  ASSERT_EQ(c.size(), 3u);
  for (const auto& t : c) {
    if (t.id == cancelled_child) continue;
    ASSERT_EQ(CompleteOne(Done(t, Completion::Kind::kSucceeded, "w2")),
              CompletionOutcome::kApplied);
  }
  const int64_t retention = options_.retention.count();
  EXPECT_LE(key_ttl("run-1:child:1"), retention);
  EXPECT_GT(key_ttl("run-1:child:1"), 0);
  EXPECT_GT(key_ttl("order-42"), month_ms - 60'000) << "nobody waits for it: its TTL is its own";
  EXPECT_GT(key_ttl("run-1:other:1"), month_ms - 60'000) << "still running";
  auto cancel = broker_->Cancel(cancelled_child);
  ASSERT_TRUE(cancel);
  ASSERT_EQ(*cancel, TaskStatus::kRunning);
  for (const auto& t : c) {
    if (t.id != cancelled_child) continue;
    ASSERT_EQ(CompleteOne(Done(t, Completion::Kind::kCancelled, "w2")),
              CompletionOutcome::kApplied);
  }
  EXPECT_LE(key_ttl("run-1:other:1"), retention);
  EXPECT_EQ(Get(plain_id).status, TaskStatus::kSucceeded);
  // Cancelled before it ran (cancel.lua ends it itself).
  child_req.unique_key = "run-1:third:1";
  std::string third = SubmitOk(child_req);
  EXPECT_GT(key_ttl("run-1:third:1"), month_ms - 60'000);
  cancel = broker_->Cancel(third);
  ASSERT_TRUE(cancel);
  ASSERT_EQ(*cancel, TaskStatus::kCancelled);
  EXPECT_LE(key_ttl("run-1:third:1"), retention);
}

// A task that reclaim ends (a poison pill, or cancelled with its worker gone) wakes its waiter as
// a completion would: the waiting run need not sleep out its snooze.
TEST_F(BrokerTest, ATaskEndedByReclaimWakesItsWaiter) {
  options_.max_reclaims = 1;
  Reopen();
  std::string parent = SubmitOk(Req("ferry.run", "runs"));
  auto p = ClaimOk({"runs"}, "w1");
  ASSERT_EQ(p.size(), 1u);
  const Completion z = AnHoursSnooze(p[0]);
  ASSERT_EQ(CompleteOne(z), CompletionOutcome::kApplied);

  SubmitRequest child_req = WaitedFor(parent);
  child_req.kind = "crash";
  std::string child = SubmitOk(child_req);
  ASSERT_EQ(ClaimOk({"default"}, "w2").size(), 1u);
  // One take-over is allowed: the waiter still sleeps.
  auto r = broker_->Reclaim("default", "w3", milliseconds(0), 10);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->size(), 1u);
  EXPECT_EQ(Get(parent).status, TaskStatus::kScheduled);
  // The second is one too many: the child fails as a poison pill and the waiter is queued.
  r = broker_->Reclaim("default", "w4", milliseconds(0), 10);
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->empty());
  EXPECT_EQ(Get(child).status, TaskStatus::kFailed);
  EXPECT_EQ(Get(parent).status, TaskStatus::kPending);
  // Its run owns that failure: not dead-lettered, so a retry of the queue's dead letters cannot
  // run it again outside its run.
  auto dead = broker_->ListDead("default", 10);
  ASSERT_TRUE(dead);
  EXPECT_TRUE(dead->empty());

  // A child cancelled while its worker is gone, ended by the next reclaim, wakes it too.
  auto again = ClaimOk({"runs"}, "w1");
  ASSERT_EQ(again.size(), 1u);
  const Completion z2 = AnHoursSnooze(again[0]);
  ASSERT_EQ(CompleteOne(z2), CompletionOutcome::kApplied);
  ASSERT_EQ(Get(parent).status, TaskStatus::kScheduled);
  std::string second = SubmitOk(child_req);
  ASSERT_EQ(ClaimOk({"default"}, "w2").size(), 1u);
  auto requested = broker_->Cancel(second);
  ASSERT_TRUE(requested) << requested.error().ToString();
  ASSERT_EQ(*requested, TaskStatus::kRunning);
  ASSERT_EQ(Get(parent).status, TaskStatus::kScheduled);
  r = broker_->Reclaim("default", "w3", milliseconds(0), 10);
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->empty());
  EXPECT_EQ(Get(second).status, TaskStatus::kCancelled);
  EXPECT_EQ(Get(parent).status, TaskStatus::kPending);
}

// A snooze after a cancel request ends the task as cancelled.
TEST_F(BrokerTest, SnoozeAfterACancelRequestCancels) {
  std::string id = SubmitOk(Req());
  auto t = ClaimOk({"default"});
  ASSERT_EQ(t.size(), 1u);
  ASSERT_TRUE(broker_->Cancel(id));
  Completion z = Done(t[0], Completion::Kind::kSnooze, "w1");
  z.backoff_ms = 1000;
  EXPECT_EQ(CompleteOne(z), CompletionOutcome::kApplied);
  EXPECT_EQ(Get(id).status, TaskStatus::kCancelled);
  EXPECT_EQ(Counter("default", "snoozed"), 0);
}

TEST_F(BrokerTest, EventStream) {
  std::string id = SubmitOk(Req());
  auto t = ClaimOk({"default"});
  ASSERT_EQ(t.size(), 1u);
  ASSERT_TRUE(broker_->AppendEvents("default", id,
                                    {{"progress", Json{{"pct", 50}}}, {"log", Json("halfway")}}));
  Completion c = Done(t[0], Completion::Kind::kSucceeded, "w1");
  ASSERT_EQ(CompleteOne(c), CompletionOutcome::kApplied);

  auto events = broker_->ReadEvents(id, "0", 100, kNoBlock);
  ASSERT_TRUE(events) << events.error().ToString();
  std::vector<std::string> types;
  for (const auto& e : *events) types.push_back(e.type);
  EXPECT_THAT(types, ElementsAre("submitted", "running", "progress", "log", "succeeded"));
  EXPECT_EQ((*events)[1].data["worker"], "w1");
  EXPECT_EQ((*events)[1].data["attempt"], 1);
  EXPECT_EQ((*events)[2].data["pct"], 50);
  EXPECT_EQ((*events)[3].data, Json("halfway"));
  EXPECT_GT((*events)[0].ts_ms, 0);

  // Exclusive resume point; a bounded count.
  auto rest = broker_->ReadEvents(id, (*events)[2].id, 100, kNoBlock);
  ASSERT_TRUE(rest);
  ASSERT_EQ(rest->size(), 2u);
  EXPECT_EQ((*rest)[0].type, "log");
  auto two = broker_->ReadEvents(id, "0", 2, kNoBlock);
  ASSERT_TRUE(two);
  EXPECT_EQ(two->size(), 2u);
  auto none = broker_->ReadEvents(id, events->back().id, 100, milliseconds(50));
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->empty());
  EXPECT_GT(std::stoll(Cli({"PTTL", Key("default", "events:" + id)})), 0);

  // A blocking read wakes up for an event appended by another connection.
  std::thread appender([&] {
    auto b = factory_->Open();
    ASSERT_TRUE(b);
    ASSERT_TRUE(WaitForBlockedReader());
    ASSERT_TRUE((*b)->AppendEvents("default", id, {{"log", Json("late")}}));
  });
  std::vector<TaskEvent> woke;
  for (int i = 0; i < 10 && woke.empty(); ++i) {
    auto r = broker_->ReadEvents(id, events->back().id, 10, milliseconds(2000));
    ASSERT_TRUE(r) << r.error().ToString();
    woke = *r;
  }
  appender.join();
  ASSERT_EQ(woke.size(), 1u);
  EXPECT_EQ(woke[0].data, Json("late"));

  auto unknown = broker_->ReadEvents("01HZZZZZZZZZZZZZZZZZZZZZZZ", "0", 10, kNoBlock);
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().code, ErrorCode::kNotFound);
  auto append_unknown =
      broker_->AppendEvents("default", "01HZZZZZZZZZZZZZZZZZZZZZZZ", {{"log", Json("x")}});
  ASSERT_FALSE(append_unknown);
  EXPECT_EQ(append_unknown.error().code, ErrorCode::kNotFound);
}

TEST_F(BrokerTest, RoutineEventsAreDerivedWithoutAStream) {
  std::string id = SubmitOk(Req());
  auto events = broker_->ReadEvents(id, "0", 100, kNoBlock);
  ASSERT_TRUE(events) << events.error().ToString();
  ASSERT_EQ(events->size(), 1u);
  EXPECT_EQ((*events)[0].type, "submitted");
  const std::string submitted_id = (*events)[0].id;

  auto t = ClaimOk({"default"});
  ASSERT_EQ(t.size(), 1u);
  events = broker_->ReadEvents(id, submitted_id, 100, kNoBlock);
  ASSERT_TRUE(events);
  ASSERT_EQ(events->size(), 1u);
  EXPECT_EQ((*events)[0].type, "running");
  EXPECT_EQ((*events)[0].data["worker"], "w1");
  const std::string running_id = (*events)[0].id;

  // A follower blocked after "running" sees "succeeded" when another connection completes it.
  std::thread finisher([&] {
    auto b = factory_->Open();
    ASSERT_TRUE(b);
    ASSERT_TRUE(WaitForBlockedReader());
    auto r = (*b)->Complete({Done(t[0], Completion::Kind::kSucceeded, "w1")});
    ASSERT_TRUE(r);
  });
  std::vector<TaskEvent> woke;
  for (int i = 0; i < 10 && woke.empty(); ++i) {
    auto r = broker_->ReadEvents(id, running_id, 10, milliseconds(2000));
    ASSERT_TRUE(r) << r.error().ToString();
    woke = *r;
  }
  finisher.join();
  ASSERT_EQ(woke.size(), 1u);
  EXPECT_EQ(woke[0].type, "succeeded");
  // Nothing but the record was written for this task's routine life.
  EXPECT_EQ(Cli({"EXISTS", Key("default", "events:" + id)}), "0");

  // A task that fails gets a stream that starts with the same ids the derived events had.
  std::string failing = SubmitOk(Req());
  auto derived = broker_->ReadEvents(failing, "0", 100, kNoBlock);
  ASSERT_TRUE(derived);
  auto f = ClaimOk({"default"});
  ASSERT_EQ(f.size(), 1u);
  derived = broker_->ReadEvents(failing, "0", 100, kNoBlock);
  ASSERT_TRUE(derived);
  ASSERT_EQ(derived->size(), 2u);
  Completion c = Done(f[0], Completion::Kind::kFailed, "w1");
  c.error = "boom";
  c.backoff_ms = 60'000;
  ASSERT_EQ(CompleteOne(c), CompletionOutcome::kApplied);
  auto stored = broker_->ReadEvents(failing, "0", 100, kNoBlock);
  ASSERT_TRUE(stored);
  ASSERT_EQ(stored->size(), 3u);
  EXPECT_EQ((*stored)[0].id, (*derived)[0].id);
  EXPECT_EQ((*stored)[1].id, (*derived)[1].id);
  EXPECT_EQ((*stored)[1].data, (*derived)[1].data);
  EXPECT_EQ((*stored)[2].type, "retrying");
  EXPECT_EQ((*stored)[2].data["error"], "boom");
  auto resumed = broker_->ReadEvents(failing, (*derived)[1].id, 100, kNoBlock);
  ASSERT_TRUE(resumed);
  ASSERT_EQ(resumed->size(), 1u);
  EXPECT_EQ((*resumed)[0].type, "retrying");
}

TEST_F(BrokerTest, EventStreamIsBounded) {
  options_.events_maxlen = 10;
  Reopen();
  std::string id = SubmitOk(Req());
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE(broker_->AppendEvents("default", id, {{"log", Json(i)}}));
  }
  // MAXLEN ~ trims whole macro nodes, so allow the node size (100 entries by default) as slack.
  EXPECT_LE(std::stoll(Cli({"XLEN", Key("default", "events:" + id)})), 10 + 100);
}

// A worker waiting on one queue reads with one blocking XREADGROUP (no scripted read first), and
// both ways of claiming make the consumer group again when the stream was deleted under them
// (a FLUSHALL, a manual DEL): the next task is claimed, not an error.
TEST_F(BrokerTest, ClaimsRecreateTheGroupOfADeletedStream) {
  for (const milliseconds block : {kNoBlock, milliseconds(200)}) {
    SCOPED_TRACE(block.count() > 0 ? "blocking read" : "scripted read");
    SubmitOk(Req());
    auto first = broker_->Claim({"default"}, "w1", 10, block);
    ASSERT_TRUE(first) << first.error().ToString();
    ASSERT_EQ(first->size(), 1u);
    Cli({"DEL", Key("default", "stream")});
    const std::string id = SubmitOk(Req());
    auto again = broker_->Claim({"default"}, "w1", 10, block);
    ASSERT_TRUE(again) << again.error().ToString();
    ASSERT_EQ(again->size(), 1u);
    EXPECT_EQ((*again)[0].id, id);
  }
}

// A worker blocked on a queue that is deleted under it (Redis unblocks it with an error) makes
// the queue again and goes on waiting: the next task reaches it, and the queue is listed again.
// The worker may make the stream again before the delete has taken the name: the delete then
// keeps the queue and says so, which is as right.
TEST_F(BrokerTest, AWorkerBlockedOnADeletedQueueWaitsOnAndGetsTheNextTask) {
  auto worker = Open();
  auto deleter = Open();
  ASSERT_TRUE(worker && deleter);
  auto none = worker->Claim({"jobs"}, "w1", 1, kNoBlock);  // registers the queue
  ASSERT_TRUE(none && none->empty());
  Result<std::vector<ClaimedTask>> got;
  std::thread blocked([&] { got = worker->Claim({"jobs"}, "w1", 1, milliseconds(20000)); });
  const bool waiting = WaitForBlockedReader();
  auto deleted = deleter->DeleteQueue("jobs");
  // Made again by the worker alone (nothing else uses "jobs" now): listed again.
  const bool relisted = Eventually(
      [&] {
        auto queues = deleter->ListQueues();
        return queues && std::find(queues->begin(), queues->end(), "jobs") != queues->end();
      },
      std::chrono::seconds(10));
  const std::string id = SubmitOk(Req("noop", "jobs"));
  blocked.join();
  ASSERT_TRUE(waiting);
  if (!deleted) {
    EXPECT_EQ(deleted.error().code, ErrorCode::kConflict);
    EXPECT_THAT(deleted.error().message, HasSubstr("was used again while it was being deleted"));
  }
  EXPECT_TRUE(relisted);
  ASSERT_TRUE(got) << got.error().ToString();
  ASSERT_EQ(got->size(), 1u);
  EXPECT_EQ((*got)[0].id, id);
}

// The listing index is trimmed by age by the submits that append to it: nothing while every
// entry is younger than the retention, the old stream nodes once they have passed it.
TEST_F(BrokerTest, IndexIsTrimmedByAgeOnSubmit) {
  options_.retention = std::chrono::seconds(2);
  Reopen();
  std::vector<SubmitRequest> reqs(250, Req());
  ASSERT_TRUE(broker_->SubmitBatch(reqs));
  SubmitOk(Req());
  EXPECT_EQ(Cli({"XLEN", Key("default", "index")}), "251") << "trimmed before the retention";
  // MINID ~ drops whole nodes (100 entries by default) whose last entry is older than the
  // retention; the submits below are what trims.
  const bool trimmed = Eventually(
      [&] {
        SubmitOk(Req());
        return std::stoll(Cli({"XLEN", Key("default", "index")})) < 250;
      },
      std::chrono::seconds(20));
  EXPECT_TRUE(trimmed) << Cli({"XLEN", Key("default", "index")});
}

TEST_F(BrokerTest, HeartbeatAndListWorkers) {
  WorkerInfo w;
  w.id = "host-1-aaaa";
  w.status = "running";
  w.hostname = "host";
  w.pid = 1;
  w.version = "0.1.0";
  w.queues = {"high", "default"};
  w.concurrency = 4;
  w.tasks_processed = 7;
  w.current_tasks = {"T1", "T2"};
  w.started_ms = WallNowMs();
  ASSERT_TRUE(broker_->Heartbeat(w, std::chrono::seconds(30)));

  WorkerInfo dead = w;
  dead.id = "host-2-bbbb";
  dead.last_heartbeat_ms = WallNowMs() - 60'000;  // its last beat was a minute ago
  ASSERT_TRUE(broker_->Heartbeat(dead, std::chrono::seconds(30)));

  auto list = broker_->ListWorkers();
  ASSERT_TRUE(list) << list.error().ToString();
  ASSERT_EQ(list->size(), 2u);
  const WorkerInfo* alive = nullptr;
  const WorkerInfo* gone = nullptr;
  for (const auto& info : *list) (info.id == w.id ? alive : gone) = &info;
  ASSERT_TRUE(alive && gone);
  EXPECT_TRUE(alive->alive);
  EXPECT_FALSE(gone->alive);  // still listed, so operators see it died
  EXPECT_EQ(alive->queues, w.queues);
  EXPECT_EQ(alive->current_tasks, w.current_tasks);
  EXPECT_EQ(alive->tasks_processed, 7);
  EXPECT_EQ(alive->concurrency, 4);
  EXPECT_GT(std::stoll(Cli({"PTTL", options_.prefix + ":worker:" + w.id})), 30'000);

  ASSERT_TRUE(broker_->RemoveWorker(w.id));
  list = broker_->ListWorkers();
  ASSERT_TRUE(list);
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].id, dead.id);
}

TEST_F(BrokerTest, ListTasksNewestFirstWithStatusFilter) {
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) {
    ids.push_back(SubmitOk(Req("noop", i < 3 ? "a" : "b")));
    ferry::testing::SleepMs(2);  // distinct created_ms, so the order is defined
  }
  auto t = ClaimOk({"a"}, "w1", 1);
  ASSERT_EQ(t.size(), 1u);

  TaskListFilter all;
  auto list = broker_->ListTasks(all);
  ASSERT_TRUE(list);
  ASSERT_EQ(list->tasks.size(), 5u);
  EXPECT_EQ(list->tasks[0].id, ids[4]);
  EXPECT_EQ(list->tasks[4].id, ids[0]);

  TaskListFilter running;
  running.status = TaskStatus::kRunning;
  list = broker_->ListTasks(running);
  ASSERT_TRUE(list);
  ASSERT_EQ(list->tasks.size(), 1u);
  EXPECT_EQ(list->tasks[0].id, ids[0]);

  TaskListFilter in_a;
  in_a.queue = "a";
  in_a.status = TaskStatus::kPending;
  in_a.limit = 1;
  list = broker_->ListTasks(in_a);
  ASSERT_TRUE(list);
  ASSERT_EQ(list->tasks.size(), 1u);
  EXPECT_EQ(list->tasks[0].id, ids[2]);
}

// A kind filter looks past the newest tasks of other kinds, in the index (any status) and in the
// dead set (status failed), newest first, up to the limit.
TEST_F(BrokerTest, ListTasksFiltersByKindBehindNewerTasks) {
  std::vector<std::string> needles;
  for (int i = 0; i < 3; ++i) {
    needles.push_back(SubmitOk(Req("needle")));
    ferry::testing::SleepMs(2);  // distinct created_ms, so the order is defined
  }
  for (int i = 0; i < 250; ++i) SubmitOk(Req("hay"));
  // Every task dead-lettered, the needles first: the 250 hay tasks are the newest dead letters.
  KillNext(253);

  for (std::optional<TaskStatus> status :
       {std::optional<TaskStatus>(), std::optional(TaskStatus::kFailed)}) {
    TaskListFilter f;
    f.status = status;
    f.kind = "needle";
    f.limit = 50;
    auto list = broker_->ListTasks(f);
    ASSERT_TRUE(list) << list.error().ToString();
    ASSERT_EQ(list->tasks.size(), 3u) << (status ? "dead" : "any status");
    EXPECT_EQ(list->tasks[0].id, needles[2]);
    EXPECT_EQ(list->tasks[2].id, needles[0]);
    f.limit = 2;
    list = broker_->ListTasks(f);
    ASSERT_TRUE(list);
    EXPECT_EQ(list->tasks.size(), 2u);
  }
  TaskListFilter none;
  none.kind = "straw";
  auto list = broker_->ListTasks(none);
  ASSERT_TRUE(list);
  EXPECT_TRUE(list->tasks.empty());
}

// Paging: following next through pages of 7 lists every task once, newest first within each
// queue, across two queues, while new tasks arrive (they are not on later pages); with a status
// filter; and through the dead set, whose entries share their score (a batch dies in one ms).
TEST_F(BrokerTest, ListTasksPagesListEveryTaskOnce) {
  std::set<std::string> all;
  for (int i = 0; i < 30; ++i)
    all.insert(SubmitOk(Req(i % 3 == 0 ? "odd" : "noop", i % 2 ? "a" : "b")));
  // Follows `next` from `first` until it is empty (at most 100 pages); returns the ids in order.
  auto follow = [&](TaskListFilter f, int* pages) {
    std::vector<std::string> seen;
    for (*pages = 0; *pages < 100; ++*pages) {
      auto page = broker_->ListTasks(f);
      EXPECT_TRUE(page) << page.error().ToString();
      if (!page) break;
      EXPECT_LE(page->tasks.size(), static_cast<size_t>(f.limit));
      for (const auto& t : page->tasks) seen.push_back(t.id);
      if (page->next.empty()) break;
      f.cursor = page->next;
      if (*pages == 0) SubmitOk(Req("noop", "a"));  // newer than the listing: not on a page
    }
    return seen;
  };
  int pages = 0;
  TaskListFilter f;
  f.limit = 7;
  auto seen = follow(f, &pages);
  EXPECT_EQ(std::set<std::string>(seen.begin(), seen.end()), all);
  EXPECT_EQ(seen.size(), all.size()) << "a task was listed twice";
  EXPECT_EQ(pages, 4);  // 7 + 7 + 7 + 7 + 2
  // A limit exactly the size: one page, and then nothing more.
  f.limit = 31;  // 30 and the one submitted during the first walk
  auto one = broker_->ListTasks(f);
  ASSERT_TRUE(one);
  EXPECT_EQ(one->tasks.size(), 31u);
  EXPECT_EQ(one->next, "");

  // The kind filter, page by page: the 10 "odd" tasks, once each.
  f.limit = 3;
  f.kind = "odd";
  seen = follow(f, &pages);
  EXPECT_EQ(seen.size(), 10u);
  EXPECT_EQ(std::set<std::string>(seen.begin(), seen.end()).size(), 10u);

  // Dead letters: 250 die in batches of up to 100 at one ms each.
  std::set<std::string> dead;
  for (int i = 0; i < 250; ++i) dead.insert(SubmitOk(Req("fail", "d")));
  KillNext(250, "d");
  TaskListFilter d;
  d.queue = "d";
  d.status = TaskStatus::kFailed;
  d.limit = 7;
  seen = follow(d, &pages);
  EXPECT_EQ(seen.size(), 250u) << "a dead letter was listed twice or missed";
  EXPECT_EQ(std::set<std::string>(seen.begin(), seen.end()), dead);
}

// A cursor is what a page gave, or it is refused, naming why.
TEST_F(BrokerTest, ListTasksRefusesACursorItDidNotWrite) {
  SubmitOk(Req());
  for (const std::string bad : {"default", "default~", "default~12", "default~-1-0", "default~x-1",
                                "default~1-", "default~1-0,default~2-0", "bad queue!~1-0",
                                "default~99999999999999999999-0", "default~1-0,", "default~1-a"}) {
    TaskListFilter f;
    f.cursor = bad;
    auto page = broker_->ListTasks(f);
    ASSERT_FALSE(page) << bad;
    EXPECT_EQ(page.error().code, ErrorCode::kInvalidArgument) << bad;
    EXPECT_EQ(page.error().message.rfind("malformed cursor (", 0), 0u) << page.error().message;
  }
  // Positions Redis itself would refuse (a stream id out of range, or 0-0, after which it ranges
  // nothing), and a stream id where a dead letter's task id belongs, are refused alike by the
  // index and the dead-letter listings: as the client's mistake, not an internal error.
  for (const std::string bad :
       {"default~0-0", "default~1796646620585-ABC", "default~1796646620585-18446744073709551616",
        "default~9223372036854775807-99999999999999999999"}) {
    for (const auto status :
         std::vector<std::optional<TaskStatus>>{std::nullopt, TaskStatus::kFailed}) {
      TaskListFilter f;
      f.cursor = bad;
      f.status = status;
      auto page = broker_->ListTasks(f);
      ASSERT_FALSE(page) << bad;
      EXPECT_EQ(page.error().code, ErrorCode::kInvalidArgument) << bad;
      EXPECT_EQ(page.error().message.rfind("malformed cursor (", 0), 0u) << page.error().message;
    }
  }
  // Near misses: a well-formed position past everything lists nothing more, up to the largest
  // sequence number.
  for (const std::string good : {"default~1-0", "default~1-18446744073709551615"}) {
    TaskListFilter f;
    f.cursor = good;
    auto page = broker_->ListTasks(f);
    ASSERT_TRUE(page) << good << ": " << page.error().ToString();
    EXPECT_TRUE(page->tasks.empty());
    EXPECT_EQ(page->next, "");
  }
}

// A listing over hundreds of queues: its cursor (a position per queue) would outgrow a URL, so
// the broker keeps it and the page names it. Every task is still listed once, every page's
// cursor is short, and a name that names no kept cursor (expired, or never given) is refused.
TEST_F(BrokerTest, ListTasksOverHundredsOfQueuesKeepsItsCursorShort) {
  std::set<std::string> all;
  for (int q = 0; q < 300; ++q) {
    const std::string queue = std::string(56, 'q') + std::to_string(1000 + q);  // 60 characters
    all.insert(SubmitOk(Req("noop", queue)));
  }
  TaskListFilter f;
  f.limit = 50;
  std::vector<std::string> seen;
  std::vector<std::string> cursors;
  for (int pages = 0; pages < 20; ++pages) {
    auto page = broker_->ListTasks(f);
    ASSERT_TRUE(page) << page.error().ToString();
    for (const auto& t : page->tasks) seen.push_back(t.id);
    if (page->next.empty()) break;
    EXPECT_LE(page->next.size(), 2048u);
    cursors.push_back(page->next);
    f.cursor = page->next;
  }
  EXPECT_EQ(seen.size(), all.size()) << "a task was listed twice or missed";
  EXPECT_EQ(std::set<std::string>(seen.begin(), seen.end()), all);
  ASSERT_FALSE(cursors.empty());
  // The first page's cursor names 250 queues (about 22 KB): kept, for an hour at most.
  const std::string first = cursors.front();
  ASSERT_EQ(first.size(), 27u) << first;
  EXPECT_EQ(first[0], '@');
  const int64_t ttl = std::stoll(Cli({"PTTL", options_.prefix + ":cursor:" + first.substr(1)}));
  EXPECT_GT(ttl, 0);
  EXPECT_LE(ttl, 3'600'000);
  // Used again, the same page follows.
  f.cursor = first;
  auto again = broker_->ListTasks(f);
  ASSERT_TRUE(again) << again.error().ToString();
  EXPECT_EQ(again->tasks.size(), 50u);

  // Gone (expired): refused, saying so.
  Cli({"DEL", options_.prefix + ":cursor:" + first.substr(1)});
  auto expired = broker_->ListTasks(f);
  ASSERT_FALSE(expired);
  EXPECT_EQ(expired.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(expired.error().message.rfind("cursor expired", 0), 0u) << expired.error().message;
  // Near misses: one character short of a name, and a name never given.
  f.cursor = first.substr(0, 26);
  auto short_name = broker_->ListTasks(f);
  ASSERT_FALSE(short_name);
  EXPECT_EQ(short_name.error().message.rfind("malformed cursor (", 0), 0u);
  f.cursor = "@" + NewId();
  auto never = broker_->ListTasks(f);
  ASSERT_FALSE(never);
  EXPECT_EQ(never.error().message.rfind("cursor expired", 0), 0u);
}

TEST_F(BrokerTest, QueueStatsCounts) {
  for (int i = 0; i < 4; ++i) SubmitOk(Req());
  SubmitRequest later = Req();
  later.eta_ms = WallNowMs() + 3'600'000;
  SubmitOk(later);
  auto t = ClaimOk({"default"}, "w1", 2);
  ASSERT_EQ(t.size(), 2u);
  Completion c = Done(t[0], Completion::Kind::kFailed, "w1");
  c.retryable = false;
  ASSERT_EQ(CompleteOne(c), CompletionOutcome::kApplied);

  auto s = broker_->GetQueueStats("default");
  ASSERT_TRUE(s) << s.error().ToString();
  EXPECT_EQ(s->queue, "default");
  EXPECT_EQ(s->pending, 2);
  EXPECT_EQ(s->running, 1);
  EXPECT_EQ(s->scheduled, 1);
  EXPECT_EQ(s->dead, 1);
  EXPECT_GT(s->oldest_pending_ms, 0);
  EXPECT_LE(s->oldest_pending_ms, WallNowMs());
  EXPECT_EQ(s->counters["submitted"], 5);
  EXPECT_EQ(s->counters["started"], 2);
  EXPECT_EQ(s->counters["dead_lettered"], 1);
  EXPECT_EQ(s->counters.count("handed_back"), 1u);

  auto empty = broker_->GetQueueStats("never-used");
  ASSERT_TRUE(empty) << empty.error().ToString();
  EXPECT_EQ(empty->pending, 0);
  EXPECT_EQ(empty->oldest_pending_ms, 0);
}

TEST_F(BrokerTest, PingAndServerInfo) {
  EXPECT_TRUE(broker_->Ping());
  auto info = broker_->ServerInfo();
  ASSERT_TRUE(info) << info.error().ToString();
  EXPECT_THAT((*info)["redis_version"], HasSubstr("7."));
  EXPECT_EQ((*info)["aof_enabled"], "1");
  EXPECT_EQ((*info)["maxmemory_policy"], "noeviction");
}

TEST_F(BrokerTest, SurvivesScriptFlush) {
  Cli({"SCRIPT", "FLUSH"});
  std::string id = SubmitOk(Req());
  EXPECT_EQ(Get(id).status, TaskStatus::kPending);
  Cli({"SCRIPT", "FLUSH"});
  auto r = broker_->SubmitBatch({Req(), Req()});
  ASSERT_TRUE(r) << r.error().ToString();
}

TEST(BrokerConnect, WrongPasswordIsUnauthenticated) {
  RedisServer server(RedisServer::Options{"s3cret-pw", false});
  BrokerOptions options;
  options.redis_url = "redis://:wrong-pw@127.0.0.1:" + std::to_string(server.port());
  auto b = MakeRedisBrokerFactory(options)->Open();
  ASSERT_FALSE(b);
  EXPECT_EQ(b.error().code, ErrorCode::kUnauthenticated);
  EXPECT_THAT(b.error().message, HasSubstr("Redis rejected the password"));
  EXPECT_THAT(b.error().message, Not(HasSubstr("wrong-pw")));

  options.redis_url = "redis://127.0.0.1:" + std::to_string(server.port());
  b = MakeRedisBrokerFactory(options)->Open();
  ASSERT_FALSE(b);
  EXPECT_EQ(b.error().code, ErrorCode::kUnauthenticated);
  EXPECT_THAT(b.error().message, HasSubstr("requires a password"));

  options.redis_url = server.url();
  b = MakeRedisBrokerFactory(options)->Open();
  ASSERT_TRUE(b) << b.error().ToString();
  EXPECT_TRUE((*b)->Ping());
}

TEST(BrokerConnect, UnreachableIsUnavailable) {
  int port = ferry::testing::FreePort();
  BrokerOptions options;
  options.redis_url = "redis://127.0.0.1:" + std::to_string(port);
  options.io_timeout = milliseconds(500);
  auto b = MakeRedisBrokerFactory(options)->Open();
  ASSERT_FALSE(b);
  EXPECT_EQ(b.error().code, ErrorCode::kUnavailable);
  EXPECT_EQ(b.error().message, "cannot connect to Redis at 127.0.0.1:" + std::to_string(port) +
                                   ": Connection refused");
  EXPECT_TRUE(b.error().Retryable());

  options.redis_url = "http://nope";
  b = MakeRedisBrokerFactory(options)->Open();
  ASSERT_FALSE(b);
  EXPECT_EQ(b.error().code, ErrorCode::kInvalidArgument);
}

TEST(BrokerConnect, SelectsTheDatabase) {
  RedisServer server;
  BrokerOptions options;
  options.redis_url = server.url() + "/3";
  options.prefix = "dbtest";
  auto b = MakeRedisBrokerFactory(options)->Open();
  ASSERT_TRUE(b) << b.error().ToString();
  SubmitRequest req;
  req.kind = "noop";
  ASSERT_TRUE((*b)->Submit(req));
  EXPECT_EQ(server.Cli({"-n", "3", "SCARD", "dbtest:queues"}), "1");
  EXPECT_EQ(server.Cli({"SCARD", "dbtest:queues"}), "0");
}

TEST(BrokerRestart, ReconnectsTransparentlyAndKeepsData) {
  RedisServer server;  // AOF on
  BrokerOptions options;
  options.redis_url = server.url();
  options.prefix = "restart";
  auto factory = MakeRedisBrokerFactory(options);
  auto opened = factory->Open();
  ASSERT_TRUE(opened) << opened.error().ToString();
  auto& broker = *opened;

  SubmitRequest req;
  req.kind = "noop";
  auto first = broker->Submit(req);
  ASSERT_TRUE(first);
  auto second = broker->Submit(req);
  ASSERT_TRUE(second);
  auto claimed = broker->Claim({"default"}, "w1", 1, kNoBlock);
  ASSERT_TRUE(claimed);
  ASSERT_EQ(claimed->size(), 1u);
  // AOF fsyncs every second; a clean SHUTDOWN writes everything anyway.
  server.Restart();

  // The first call after the restart fails kUnavailable or succeeds by reconnecting; either
  // way, a later call succeeds on the same object.
  auto ping = broker->Ping();
  if (!ping) {
    EXPECT_EQ(ping.error().code, ErrorCode::kUnavailable) << ping.error().ToString();
    EXPECT_TRUE(ping.error().Retryable());
  }
  ASSERT_TRUE(
      Eventually([&] { return static_cast<bool>(broker->Ping()); }, std::chrono::seconds(5)));
  auto rec = broker->GetTask(first->id);
  ASSERT_TRUE(rec) << rec.error().ToString();
  ASSERT_TRUE(*rec);
  EXPECT_EQ((*rec)->status, TaskStatus::kRunning);

  // The running task can still be completed; the pending one can still be claimed.
  Completion c;
  c.kind = Completion::Kind::kSucceeded;
  c.id = (*claimed)[0].id;
  c.queue = "default";
  c.entry_id = (*claimed)[0].entry_id;
  c.epoch = (*claimed)[0].epoch;
  auto done = broker->Complete({c});
  ASSERT_TRUE(done) << done.error().ToString();
  EXPECT_EQ(done->front(), CompletionOutcome::kApplied);
  auto next = broker->Claim({"default"}, "w1", 5, kNoBlock);
  ASSERT_TRUE(next) << next.error().ToString();
  ASSERT_EQ(next->size(), 1u);
  EXPECT_EQ((*next)[0].id, second->id);

  // Redis down: kUnavailable, not a hang or a crash.
  server.Stop();
  auto down = broker->Ping();
  ASSERT_FALSE(down);
  EXPECT_EQ(down.error().code, ErrorCode::kUnavailable);
  down = broker->Ping();
  ASSERT_FALSE(down);
  EXPECT_EQ(down.error().code, ErrorCode::kUnavailable);
  server.Start();
  ASSERT_TRUE(
      Eventually([&] { return static_cast<bool>(broker->Ping()); }, std::chrono::seconds(5)));
}

TEST(BrokerRestart, RestartWithoutPersistenceRecreatesGroups) {
  RedisServer server(RedisServer::Options{"", false});
  BrokerOptions options;
  options.redis_url = server.url();
  auto opened = MakeRedisBrokerFactory(options)->Open();
  ASSERT_TRUE(opened);
  auto& broker = *opened;
  SubmitRequest req;
  req.kind = "noop";
  ASSERT_TRUE(broker->Submit(req));
  server.Restart();  // data is gone, including the consumer group
  ASSERT_TRUE(
      Eventually([&] { return static_cast<bool>(broker->Ping()); }, std::chrono::seconds(5)));
  auto id = broker->Submit(req);
  ASSERT_TRUE(id) << id.error().ToString();
  auto claimed = broker->Claim({"default"}, "w1", 5, kNoBlock);
  ASSERT_TRUE(claimed) << claimed.error().ToString();
  ASSERT_EQ(claimed->size(), 1u);
  EXPECT_EQ((*claimed)[0].id, id->id);
}

}  // namespace
}  // namespace ferry
