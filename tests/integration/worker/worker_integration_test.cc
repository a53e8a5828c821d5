// The worker against a real redis-server: in-process Workers plus a Broker from the factory.
// Every test uses its own key prefix; tests that stop or restart Redis start their own server.
#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <fstream>
#include <future>
#include <limits>
#include <map>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>

#include "core/ids.h"
#include "core/time_util.h"
#include "forwarding_broker.h"
#include "harness.h"
#include "worker/worker.h"

namespace ferry {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::Eventually;
using ::testing::HasSubstr;
using testing::RedisServer;

// Counts executions per task id and overlapping executions of one id.
struct ExecutionLog {
  void Begin(const std::string& id) {
    std::lock_guard lock(mu);
    ++runs[id];
    if (!in_flight.insert(id).second) ++overlaps;
    ++concurrent;
    max_concurrent = std::max(max_concurrent, concurrent);
  }
  void End(const std::string& id) {
    std::lock_guard lock(mu);
    in_flight.erase(id);
    --concurrent;
  }
  int Runs(const std::string& id) {
    std::lock_guard lock(mu);
    return runs.count(id) ? runs[id] : 0;
  }
  std::mutex mu;
  std::map<std::string, int> runs;
  std::set<std::string> in_flight;
  int overlaps = 0;
  int concurrent = 0;
  int max_concurrent = 0;
};

// A handler that records its execution and sleeps payload.ms (interruptible).
Handler CountingHandler(ExecutionLog& log) {
  return [&log](TaskContext& ctx) -> HandlerResult {
    log.Begin(ctx.id);
    int ms = ctx.payload.value("ms", 0);
    if (ms > 0) {
      std::mutex mu;
      std::condition_variable_any cv;
      std::unique_lock lock(mu);
      cv.wait_for(lock, ctx.stop, milliseconds(ms), [] { return false; });
    }
    log.End(ctx.id);
    if (ctx.stop.stop_requested()) return tl::unexpected(HandlerError{"stopped", true});
    return Json{{"ok", true}};
  };
}

bool ProcessGone(pid_t pid) {
  if (::kill(pid, 0) != 0) return true;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string content;
  std::getline(stat, content);
  auto close = content.rfind(')');
  return close != std::string::npos && close + 2 < content.size() && content[close + 2] == 'Z';
}

// The built-in handlers and "deaf", a handler that never looks at its stop token (its thread
// cannot be killed): it returns {"late": true} once Open() is called. Declared before the worker
// it serves, as the worker keeps a reference to registry().
class DeafHandler {
 public:
  DeafHandler() {
    RegisterBuiltinHandlers(registry_);
    registry_.Register("deaf", [opened = opened_](TaskContext&) -> HandlerResult {
      opened.wait();
      return Json{{"late", true}};
    });
  }
  const HandlerRegistry& registry() const { return registry_; }
  void Open() {
    std::call_once(once_, [&] { gate_.set_value(); });
  }

 private:
  std::promise<void> gate_;
  std::shared_future<void> opened_ = gate_.get_future().share();
  std::once_flag once_;
  HandlerRegistry registry_;
};

// Opens a DeafHandler on the way out. Declared after the worker, so it runs before the worker's
// destructor, which waits for its handlers: a failed assertion does not leave that waiting.
struct OpenAtEnd {
  DeafHandler& handler;
  ~OpenAtEnd() { handler.Open(); }
};

class WorkerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { shared_redis_ = new RedisServer(); }
  static void TearDownTestSuite() {
    delete shared_redis_;
    shared_redis_ = nullptr;
  }

  WorkerTest() : prefix_("wt" + RandomHex(4)) { RegisterBuiltinHandlers(registry_); }

  RedisServer& redis() { return own_redis_ ? *own_redis_ : *shared_redis_; }
  void UseOwnRedis() { own_redis_ = std::make_unique<RedisServer>(); }

  BrokerOptions BrokerOpts() {
    BrokerOptions o;
    o.redis_url = redis().url();
    o.prefix = prefix_;
    o.io_timeout = milliseconds(1000);
    return o;
  }

  WorkerOptions Opts(int concurrency = 2) {
    WorkerOptions o;
    o.broker = BrokerOpts();
    o.queues = {"q1"};
    o.concurrency = concurrency;
    o.lease = seconds(3);
    o.heartbeat_ttl = seconds(3);
    o.block = milliseconds(200);
    o.drain_timeout = seconds(5);
    o.backoff_base = milliseconds(50);
    o.backoff_cap = milliseconds(200);
    return o;
  }

  std::unique_ptr<Broker> OpenBroker() {
    auto factory = MakeRedisBrokerFactory(BrokerOpts());
    auto b = factory->Open();
    // Thrown, not dereferenced: the test then fails with the reason instead of crashing.
    if (!b) throw std::runtime_error("cannot open a broker: " + b.error().message);
    return std::move(*b);
  }

  Broker& broker() {
    if (!client_) client_ = std::make_unique<TaskClient>(OpenBroker());
    return client_->broker();
  }

  std::unique_ptr<Worker> StartWorker(WorkerOptions o, const HandlerRegistry& registry) {
    auto w = MakeWorker(o, registry, MakeRedisBrokerFactory(o.broker));
    if (!w) throw std::runtime_error("cannot make a worker: " + w.error().message);
    auto st = (*w)->Start();
    EXPECT_TRUE(st) << st.error().message;
    return std::move(*w);
  }
  std::unique_ptr<Worker> StartWorker(WorkerOptions o) {
    return StartWorker(std::move(o), registry_);
  }

  std::string Submit(const std::string& kind, Json payload = Json::object(), int max_attempts = 1,
                     milliseconds timeout = milliseconds(0)) {
    SubmitRequest r;
    r.kind = kind;
    r.payload = std::move(payload);
    r.queue = "q1";
    r.max_attempts = max_attempts;
    r.timeout = timeout;
    auto s = broker().Submit(r);
    EXPECT_TRUE(s) << s.error().message;
    return s ? s->id : "";
  }

  TaskRecord WaitDone(const std::string& id, milliseconds timeout = seconds(10)) {
    broker();
    auto r = client_->Wait(id, timeout);
    EXPECT_TRUE(r) << r.error().message;
    return r ? *r : TaskRecord{};
  }

  TaskStatus StatusOf(const std::string& id) {
    auto r = broker().GetTask(id);
    return (r && *r) ? (**r).status : TaskStatus::kPending;
  }

  bool WaitStatus(const std::string& id, TaskStatus s, milliseconds timeout = seconds(10)) {
    return Eventually([&] { return StatusOf(id) == s; }, timeout);
  }

  // A succeeded task's events, once its "succeeded" (written with the completion, after the
  // handler's events) is there; empty when it does not come within 10 s.
  std::vector<TaskEvent> EventsOfSucceeded(const std::string& id) {
    std::vector<TaskEvent> events;
    const bool ended = Eventually(
        [&] {
          auto read = broker().ReadEvents(id, "0", 1000, milliseconds(0));
          if (!read) return false;
          events = *read;
          return !events.empty() && events.back().type == "succeeded";
        },
        seconds(10));
    EXPECT_TRUE(ended) << "task " << id << " has no succeeded event";
    return ended ? events : std::vector<TaskEvent>{};
  }
  static std::vector<std::string> Types(const std::vector<TaskEvent>& events) {
    std::vector<std::string> out;
    for (const auto& e : events) out.push_back(e.type);
    return out;
  }

  static RedisServer* shared_redis_;
  std::unique_ptr<RedisServer> own_redis_;
  std::string prefix_;
  HandlerRegistry registry_;
  std::unique_ptr<TaskClient> client_;
};

RedisServer* WorkerTest::shared_redis_ = nullptr;

TEST_F(WorkerTest, SubmitRunResultAndRegistry) {
  auto w = StartWorker(Opts());
  std::string echo = Submit("echo", Json{{"hello", "world"}});
  std::string noop = Submit("noop");
  auto rec = WaitDone(echo);
  EXPECT_EQ(rec.status, TaskStatus::kSucceeded);
  EXPECT_EQ(ParseJson(rec.result).value(), (Json{{"hello", "world"}}));
  EXPECT_EQ(rec.worker, w->id());
  EXPECT_EQ(WaitDone(noop).result, "null");

  auto workers = broker().ListWorkers();
  ASSERT_TRUE(workers);
  auto it = std::find_if(workers->begin(), workers->end(),
                         [&](const WorkerInfo& i) { return i.id == w->id(); });
  ASSERT_NE(it, workers->end());
  EXPECT_EQ(it->status, "running");
  EXPECT_EQ(it->concurrency, 2);
  EXPECT_EQ(it->pid, ::getpid());
  EXPECT_EQ(it->queues, std::vector<std::string>{"q1"});
  EXPECT_FALSE(it->version.empty());

  w->Stop();
  w->Wait();
  workers = broker().ListWorkers();
  ASSERT_TRUE(workers);
  it = std::find_if(workers->begin(), workers->end(),
                    [&](const WorkerInfo& i) { return i.id == w->id(); });
  ASSERT_NE(it, workers->end());
  EXPECT_EQ(it->status, "stopped");
  EXPECT_EQ(it->tasks_processed, 2);
}

TEST_F(WorkerTest, WaitTimesOut) {
  std::string id = Submit("noop");  // no worker
  broker();
  auto r = client_->Wait(id, milliseconds(300));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kTimeout);
}

TEST_F(WorkerTest, ConcurrencyRunsSlotsInParallelAndHeartbeatListsEverySlot) {
  ExecutionLog log;
  HandlerRegistry reg;
  reg.Register("count", CountingHandler(log));
  auto w = StartWorker(Opts(4), reg);
  std::vector<std::string> ids;
  for (int i = 0; i < 4; ++i) ids.push_back(Submit("count", Json{{"ms", 1500}}));
  // All four run at once, and the heartbeat shows the task of each slot.
  EXPECT_TRUE(Eventually(
      [&] {
        std::lock_guard lock(log.mu);
        return log.concurrent == 4;
      },
      seconds(5)));
  EXPECT_TRUE(Eventually(
      [&] {
        auto ws = broker().ListWorkers();
        if (!ws) return false;
        for (auto& i : *ws) {
          if (i.id == w->id()) return i.current_tasks.size() == 4;
        }
        return false;
      },
      seconds(3)));
  for (auto& id : ids) EXPECT_EQ(WaitDone(id).status, TaskStatus::kSucceeded);
  EXPECT_EQ(log.max_concurrent, 4);
}

TEST_F(WorkerTest, TwoWorkersNeverRunOneTaskAtOnce) {
  ExecutionLog log;
  HandlerRegistry reg;
  reg.Register("count", CountingHandler(log));
  auto o = Opts(4);
  auto a = StartWorker(o, reg);
  auto b = StartWorker(o, reg);
  std::vector<SubmitRequest> reqs;
  for (int i = 0; i < 400; ++i) {
    SubmitRequest r;
    r.kind = "count";
    r.queue = "q1";
    r.payload = Json{{"ms", i % 3}};
    reqs.push_back(r);
  }
  auto submitted = broker().SubmitBatch(reqs);
  ASSERT_TRUE(submitted);
  for (auto& s : *submitted) EXPECT_EQ(WaitDone(s.id).status, TaskStatus::kSucceeded);
  EXPECT_EQ(log.overlaps, 0);
  for (auto& s : *submitted) EXPECT_EQ(log.Runs(s.id), 1) << s.id;
  // Both took part.
  std::set<std::string> owners;
  for (auto& s : *submitted) {
    auto rec = broker().GetTask(s.id);
    if (rec && *rec) owners.insert((**rec).worker);
  }
  EXPECT_EQ(owners.size(), 2u);
}

TEST_F(WorkerTest, RetryThenDeadLetter) {
  auto w = StartWorker(Opts());
  std::string id = Submit("fail", Json{{"message", "flaky"}, {"retryable", true}}, 3);
  auto rec = WaitDone(id);
  EXPECT_EQ(rec.status, TaskStatus::kFailed);
  EXPECT_EQ(rec.attempts, 3);
  EXPECT_EQ(rec.error, "flaky");
  auto dead = broker().ListDead("q1", 10);
  ASSERT_TRUE(dead);
  ASSERT_EQ(dead->size(), 1u);
  EXPECT_EQ((*dead)[0].id, id);

  std::string permanent = Submit("fail", Json{{"message", "bad input"}, {"retryable", false}}, 3);
  rec = WaitDone(permanent);
  EXPECT_EQ(rec.status, TaskStatus::kFailed);
  EXPECT_EQ(rec.attempts, 1);
}

// Each retry waits out the worker's backoff for its attempt: the delay drawn from the policy is
// recorded in the retrying event, and the next attempt starts no sooner than that delay after
// the failed one ended. (Lower bounds only: a loaded machine makes retries later, never sooner.)
TEST_F(WorkerTest, RetriesWaitOutTheBackoffOfTheirAttempt) {
  std::mutex mu;
  std::vector<int64_t> starts, ends;  // wall-clock ms of each attempt
  HandlerRegistry reg;
  reg.Register("flaky", [&](TaskContext&) -> HandlerResult {
    std::lock_guard lock(mu);
    starts.push_back(WallNowMs());
    ends.push_back(WallNowMs());
    return tl::unexpected(HandlerError{"flaky", true});
  });
  auto o = Opts();
  o.backoff_base = milliseconds(400);
  o.backoff_cap = seconds(10);
  auto w = StartWorker(o, reg);
  std::string id = Submit("flaky", Json::object(), 3);
  auto rec = WaitDone(id, seconds(20));
  EXPECT_EQ(rec.status, TaskStatus::kFailed);
  EXPECT_EQ(rec.attempts, 3);

  auto events = broker().ReadEvents(id, "0", 100, milliseconds(0));
  ASSERT_TRUE(events) << events.error().message;
  std::vector<int64_t> backoff;
  for (const auto& e : *events) {
    if (e.type == "retrying") backoff.push_back(e.data.value("backoff_ms", int64_t{-1}));
  }
  ASSERT_EQ(backoff.size(), 2u);
  // Attempt n's nominal delay is base * 2^(n-1), drawn from its upper half.
  EXPECT_GE(backoff[0], 200);
  EXPECT_LE(backoff[0], 400);
  EXPECT_GE(backoff[1], 400);
  EXPECT_LE(backoff[1], 800);
  std::lock_guard lock(mu);
  ASSERT_EQ(starts.size(), 3u);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_GE(starts[i + 1] - ends[i], backoff[i] - 1)  // 1 ms: the clock's resolution
        << "attempt " << i + 2 << " started before its backoff of " << backoff[i] << " ms";
  }
}

TEST_F(WorkerTest, UnknownKindFailsAndWorkerKeepsGoing) {
  auto w = StartWorker(Opts());
  std::string id = Submit("no-such-kind", Json::object(), 3);
  auto rec = WaitDone(id);
  EXPECT_EQ(rec.status, TaskStatus::kFailed);
  EXPECT_EQ(rec.attempts, 1);  // not retryable
  EXPECT_THAT(rec.error, HasSubstr("no handler for kind 'no-such-kind'"));
  EXPECT_THAT(rec.error, HasSubstr("echo, fail, noop, shell, sleep"));
  EXPECT_EQ(WaitDone(Submit("echo")).status, TaskStatus::kSucceeded);
}

TEST_F(WorkerTest, ThrowingHandlerFailsTheTaskNotTheWorker) {
  HandlerRegistry reg;
  RegisterBuiltinHandlers(reg);
  reg.Register("throws", [](TaskContext&) -> HandlerResult { throw std::runtime_error("kaboom"); });
  auto w = StartWorker(Opts(), reg);
  auto rec = WaitDone(Submit("throws", Json::object(), 2));
  EXPECT_EQ(rec.status, TaskStatus::kFailed);
  EXPECT_EQ(rec.attempts, 2);  // retryable
  EXPECT_THAT(rec.error, HasSubstr("kaboom"));
  EXPECT_EQ(WaitDone(Submit("noop")).status, TaskStatus::kSucceeded);
}

// A result the record cannot keep fails its task, not the worker: one nested deeper than the
// JSON limit (dumping it recursed until the stack overflowed), or larger than 1 MiB, as exec and
// http handlers' results are limited. Each limit itself is kept.
TEST_F(WorkerTest, AResultTooDeepOrTooLargeFailsItsTaskNotTheWorker) {
  auto nested = [](int depth) {
    Json j = Json::array();
    for (int i = 1; i < depth; ++i) j = Json::array({std::move(j)});
    return j;
  };
  HandlerRegistry reg;
  RegisterBuiltinHandlers(reg);
  reg.Register("nested", [nested](TaskContext& ctx) -> HandlerResult {
    return nested(ctx.payload["depth"].get<int>());
  });
  reg.Register("text", [](TaskContext& ctx) -> HandlerResult {
    return Json(std::string(ctx.payload["chars"].get<size_t>(), 'x'));
  });
  auto w = StartWorker(Opts(), reg);
  auto deep = WaitDone(Submit("nested", Json{{"depth", 100000}}, 3), seconds(30));
  EXPECT_EQ(deep.status, TaskStatus::kFailed);
  EXPECT_EQ(deep.error,
            "the handler's result nests 100000 levels deep, more than the limit of 128");
  EXPECT_EQ(deep.attempts, 1);  // it would return the same again
  EXPECT_EQ(WaitDone(Submit("nested", Json{{"depth", 129}})).status, TaskStatus::kFailed);
  auto at_depth = WaitDone(Submit("nested", Json{{"depth", 128}}));
  EXPECT_EQ(at_depth.status, TaskStatus::kSucceeded);

  const size_t limit = size_t{1} << 20;  // a string's JSON is its characters and two quotes
  auto large = WaitDone(Submit("text", Json{{"chars", limit - 1}}));
  EXPECT_EQ(large.status, TaskStatus::kFailed);
  EXPECT_EQ(large.error, "the handler's result is " + std::to_string(limit + 1) +
                             " bytes of JSON, more than the limit of " + std::to_string(limit));
  auto at_limit = WaitDone(Submit("text", Json{{"chars", limit - 2}}));
  EXPECT_EQ(at_limit.status, TaskStatus::kSucceeded);
  EXPECT_EQ(at_limit.result.size(), limit);
}

// A result built in code may hold what its JSON text cannot: an integer above INT64_MAX (read
// back, the record was served as a string), a NaN (dumped as null), bytes that are not UTF-8
// (replaced). Each fails its task naming the place instead of being kept as something else; the
// near misses (INT64_MAX itself, a finite double, UTF-8) are kept as they are.
TEST_F(WorkerTest, AResultItsTextCannotHoldFailsItsTaskInsteadOfChanging) {
  HandlerRegistry reg;
  RegisterBuiltinHandlers(reg);
  reg.Register("odd", [](TaskContext& ctx) -> HandlerResult {
    const std::string mode = ctx.payload["mode"].get<std::string>();
    if (mode == "u64") return Json{{"n", std::numeric_limits<uint64_t>::max()}};
    if (mode == "i64max") {
      return Json{{"n", static_cast<uint64_t>(std::numeric_limits<int64_t>::max())}};
    }
    if (mode == "nan") return Json{{"a", Json::array({1.5, std::nan("")})}};
    if (mode == "inf") return Json(std::numeric_limits<double>::infinity());
    if (mode == "bytes")
      return Json{{"s", std::string("a\xff"
                                    "b")}};
    if (mode == "key") return Json{{std::string("k\xfe"), 1}};
    return Json{{"s", "caf\xc3\xa9"}, {"x", 0.1}};
  });
  reg.Register("long_error", [](TaskContext& ctx) -> HandlerResult {
    // 2-byte characters, so the cut falls in the middle of one unless it is placed with care.
    std::string message = ctx.payload.value("lead", "");
    for (size_t i = 0; i < ctx.payload["chars"].get<size_t>(); ++i) message += "\xc3\xa9";
    return tl::unexpected(HandlerError{message, false});
  });
  auto w = StartWorker(Opts(), reg);
  const std::map<std::string, std::string> refused = {
      {"u64", "n: integer 18446744073709551615 is out of range"},
      {"nan", "a[1]: number NaN has no JSON form"},
      {"inf", "number infinity has no JSON form"},
      {"bytes", "s: string is not UTF-8 (byte 1)"},
      {"key", "a key is not UTF-8 (byte 1)"}};
  for (const auto& [mode, why] : refused) {
    auto rec = WaitDone(Submit("odd", Json{{"mode", mode}}, 3));
    EXPECT_EQ(rec.status, TaskStatus::kFailed) << mode;
    EXPECT_THAT(rec.error, HasSubstr("the handler's result cannot be kept: " + why)) << mode;
    EXPECT_EQ(rec.attempts, 1) << mode;
  }
  auto max = WaitDone(Submit("odd", Json{{"mode", "i64max"}}));
  EXPECT_EQ(max.status, TaskStatus::kSucceeded);
  EXPECT_EQ(max.result, R"({"n":9223372036854775807})");
  auto fine = WaitDone(Submit("odd", Json{{"mode", "fine"}}));
  EXPECT_EQ(fine.status, TaskStatus::kSucceeded);
  EXPECT_EQ(fine.result, "{\"s\":\"caf\xc3\xa9\",\"x\":0.1}");

  // An error message is kept up to 16 KiB, cut where a character begins and saying how much went.
  auto at_cap = WaitDone(Submit("long_error", Json{{"chars", 8192}}));
  EXPECT_EQ(at_cap.error.size(), 16384u);
  auto over = WaitDone(Submit("long_error", Json{{"chars", 8193}}));
  EXPECT_EQ(over.status, TaskStatus::kFailed);
  EXPECT_EQ(over.error.substr(16384), " [2 more bytes not kept]");
  // One byte more in front: the 16 KiB end in the middle of a character, which goes whole.
  auto mid = WaitDone(Submit("long_error", Json{{"lead", "x"}, {"chars", 8192}}));
  EXPECT_EQ(mid.error.substr(16383), " [2 more bytes not kept]");
  auto huge = WaitDone(Submit("long_error", Json{{"chars", 1'000'000}}));
  EXPECT_EQ(huge.error.size(), 16384 + std::string(" [1983616 more bytes not kept]").size());
}

TEST_F(WorkerTest, CancelPendingScheduledAndRunning) {
  // Pending and scheduled: no worker yet.
  std::string pending = Submit("noop");
  SubmitRequest later;
  later.kind = "noop";
  later.queue = "q1";
  later.eta_ms = WallNowMs() + 3'600'000;
  auto scheduled = broker().Submit(later);
  ASSERT_TRUE(scheduled);
  EXPECT_EQ(StatusOf(scheduled->id), TaskStatus::kScheduled);
  ASSERT_TRUE(broker().Cancel(pending));
  ASSERT_TRUE(broker().Cancel(scheduled->id));
  EXPECT_EQ(StatusOf(pending), TaskStatus::kCancelled);
  EXPECT_EQ(StatusOf(scheduled->id), TaskStatus::kCancelled);

  auto w = StartWorker(Opts());
  std::string running = Submit("sleep", Json{{"ms", 30000}});
  ASSERT_TRUE(WaitStatus(running, TaskStatus::kRunning));
  auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(broker().Cancel(running));
  auto rec = WaitDone(running, seconds(20));
  EXPECT_EQ(rec.status, TaskStatus::kCancelled);
  // The cancel reached the handler: left alone, it would have slept 30 s.
  EXPECT_LT(std::chrono::steady_clock::now() - t0, seconds(15));
  // The worker ran neither of the cancelled ones and is still serving.
  EXPECT_EQ(WaitDone(Submit("noop")).status, TaskStatus::kSucceeded);
  EXPECT_EQ(StatusOf(pending), TaskStatus::kCancelled);
}

// A handler that snoozes gives its slot back: with one slot, another task runs during the
// snooze. The snoozed task comes back after its wait as the same attempt (max_attempts 1 would
// leave none otherwise) with a new epoch, and its snooze shows in the queue's counters.
TEST_F(WorkerTest, ASnoozeGivesTheSlotBackAndComesBackAsTheSameAttempt) {
  HandlerRegistry registry;
  RegisterBuiltinHandlers(registry);
  std::mutex mu;
  std::vector<std::pair<int, int64_t>> calls;  // attempt, epoch
  registry.Register("later", [&](TaskContext& ctx) -> HandlerResult {
    std::lock_guard lock(mu);
    calls.emplace_back(ctx.attempt, ctx.epoch);
    if (calls.size() == 1) return tl::unexpected(Snooze(milliseconds(1500)));
    return Json{{"calls", calls.size()}};
  });
  auto w = StartWorker(Opts(/*concurrency=*/1), registry);
  const std::string later = Submit("later");
  ASSERT_TRUE(WaitStatus(later, TaskStatus::kScheduled));
  // Its slot is free: a task submitted after it runs while it waits.
  EXPECT_EQ(WaitDone(Submit("noop")).status, TaskStatus::kSucceeded);
  EXPECT_EQ(StatusOf(later), TaskStatus::kScheduled);
  TaskRecord rec = WaitDone(later, seconds(15));
  EXPECT_EQ(rec.status, TaskStatus::kSucceeded) << rec.error;
  EXPECT_EQ(rec.attempts, 1);
  std::lock_guard lock(mu);
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_EQ(calls[0].first, 1);
  EXPECT_EQ(calls[1].first, 1);
  EXPECT_EQ(calls[1].second, calls[0].second + 1);
  auto stats = broker().GetQueueStats("q1");
  ASSERT_TRUE(stats) << stats.error().message;
  EXPECT_EQ(stats->counters["snoozed"], 1);
}

// A snooze woken while its handler ran (a run whose task node's task ended meanwhile) is queued
// again at once, and this worker may claim it before that snooze's completion comes back: the
// claim is the task's next execution, run at once, not taken for the one that ended (which
// would leave it to wait out its lease and a reclaim).
TEST_F(WorkerTest, AWokenSnoozeClaimedBeforeItsCompletionReturnsRunsAtOnce) {
  HandlerRegistry registry;
  std::atomic<int> calls{0};
  constexpr int kWakes = 60;
  registry.Register("waker", [&](TaskContext& ctx) -> HandlerResult {
    if (++calls > kWakes) return Json{{"calls", calls.load()}};
    // What wake.lua does to a running waiter: its snooze then comes back at once.
    redis().Cli({"HSET", prefix_ + ":{q1}:task:" + ctx.id, "woken", "1"});
    return tl::unexpected(Snooze(std::chrono::hours(1)));
  });
  auto o = Opts(/*concurrency=*/1);
  o.lease = seconds(2);
  auto w = StartWorker(o, registry);
  const std::string id = Submit("waker");
  TaskRecord rec = WaitDone(id, seconds(60));
  EXPECT_EQ(rec.status, TaskStatus::kSucceeded) << rec.error;
  EXPECT_EQ(calls.load(), kWakes + 1);
  auto stats = broker().GetQueueStats("q1");
  ASSERT_TRUE(stats) << stats.error().message;
  EXPECT_EQ(stats->counters["snoozed"], kWakes);
  EXPECT_EQ(stats->counters["reclaimed"], 0) << "an execution waited out its lease";
}

TEST_F(WorkerTest, TimeoutOfASleepingHandler) {
  auto w = StartWorker(Opts());
  auto t0 = std::chrono::steady_clock::now();
  auto rec = WaitDone(Submit("sleep", Json{{"ms", 30000}}, 1, milliseconds(300)), seconds(20));
  EXPECT_EQ(rec.status, TaskStatus::kFailed);
  EXPECT_EQ(rec.error, "timed out after 0.3s");
  // Stopped by the timeout, not by the end of its 30 s sleep.
  EXPECT_LT(std::chrono::steady_clock::now() - t0, seconds(15));
}

// A handler that ignores its stop token cannot be killed (it is a thread), but its attempt ends
// without it once the grace has passed: a timed-out one fails without a retry (which would run
// beside it), a cancelled one is cancelled. What it returns later is discarded.
TEST_F(WorkerTest, AHandlerThatIgnoresItsStopLosesItsAttemptNotTheQueue) {
  struct Gate {
    std::mutex mu;
    std::condition_variable cv;
    bool open = false;
    int waiting = 0;
    void Open() {
      std::lock_guard lock(mu);
      open = true;
      cv.notify_all();
    }
  };
  auto gate = std::make_shared<Gate>();
  HandlerRegistry reg;
  RegisterBuiltinHandlers(reg);
  reg.Register("deaf", [gate](TaskContext&) -> HandlerResult {
    std::unique_lock lock(gate->mu);
    ++gate->waiting;
    gate->cv.wait(lock, [&] { return gate->open; });  // never looks at ctx.stop
    return Json{{"late", true}};
  });
  auto o = Opts();
  o.concurrency = 2;
  auto w = StartWorker(o, reg);
  struct OpenGateAtEnd {  // before the worker stops, which waits for its handlers
    std::shared_ptr<Gate> g;
    ~OpenGateAtEnd() { g->Open(); }
  } open_at_end{gate};

  const std::string timed_out = Submit("deaf", Json::object(), 3, milliseconds(300));
  auto rec = WaitDone(timed_out, seconds(30));
  EXPECT_EQ(rec.status, TaskStatus::kFailed);
  EXPECT_EQ(rec.error,
            "timed out after 0.3s (its handler ignored the stop for 5s and still runs); not "
            "retried while it may still be working");
  EXPECT_EQ(rec.attempts, 1);  // 3 allowed

  const std::string cancelled = Submit("deaf");
  ASSERT_TRUE(WaitStatus(cancelled, TaskStatus::kRunning));
  ASSERT_TRUE(broker().Cancel(cancelled));
  rec = WaitDone(cancelled, seconds(30));
  EXPECT_EQ(rec.status, TaskStatus::kCancelled);
  EXPECT_EQ(rec.error,
            "cancelled while running (its handler ignored the stop for 5s and still runs)");

  // Both handlers still hold their slots; once they return, their results are discarded and the
  // slots serve again.
  gate->Open();
  EXPECT_EQ(WaitDone(Submit("noop"), seconds(20)).status, TaskStatus::kSucceeded);
  EXPECT_EQ(WaitDone(Submit("noop"), seconds(20)).status, TaskStatus::kSucceeded);
  EXPECT_EQ(StatusOf(timed_out), TaskStatus::kFailed);
  EXPECT_EQ(StatusOf(cancelled), TaskStatus::kCancelled);
}

// A drain does not wait without end for a handler that ignores its stop: its task is handed
// back, the worker's loops end and WaitUntilDrained says one thread still runs. Wait() returns
// once that handler does, and what it returned is discarded.
TEST_F(WorkerTest, ADrainEndsWithoutAHandlerThatIgnoresItsStop) {
  DeafHandler deaf_handler;
  auto o = Opts(2);
  o.drain_timeout = milliseconds(100);
  auto w = StartWorker(o, deaf_handler.registry());
  OpenAtEnd open_at_end{deaf_handler};

  const std::string deaf = Submit("deaf", Json::object(), 3);
  ASSERT_TRUE(WaitStatus(deaf, TaskStatus::kRunning));
  EXPECT_EQ(WaitDone(Submit("noop"), seconds(20)).status,
            TaskStatus::kSucceeded);  // the other slot

  w->Stop();
  auto drained = std::async(std::launch::async, [&] { return w->WaitUntilDrained(); });
  ASSERT_EQ(drained.wait_for(seconds(60)), std::future_status::ready);
  EXPECT_EQ(drained.get(), 1);
  EXPECT_EQ(StatusOf(deaf), TaskStatus::kPending);  // handed back while its handler still runs
  // The stopped worker's record holds no current task: it handed its one back (the record
  // listed it, beside a stopped status, while the thread ran on).
  auto workers = broker().ListWorkers();
  ASSERT_TRUE(workers);
  auto me = std::find_if(workers->begin(), workers->end(),
                         [&](const WorkerInfo& info) { return info.id == w->id(); });
  ASSERT_NE(me, workers->end());
  EXPECT_EQ(me->status, "stopped");
  EXPECT_TRUE(me->current_tasks.empty()) << me->current_tasks.front();

  deaf_handler.Open();
  w->Wait();
  auto rec = broker().GetTask(deaf);
  ASSERT_TRUE(rec && *rec);
  EXPECT_EQ((*rec)->status, TaskStatus::kPending);  // what it returned late was discarded
  EXPECT_EQ((*rec)->result, "");
  EXPECT_EQ((*rec)->attempts, 0);  // a hand-back gives its attempt back
}

// A task whose handler ignored its timeout has ended (failed) once the grace passed; its thread
// still holds the slot. A drain has nothing of it to wait for or hand back: it ends at once
// instead of waiting out its drain timeout for that slot.
TEST_F(WorkerTest, ADrainDoesNotWaitForATaskThatAlreadyEndedWithoutItsHandler) {
  DeafHandler deaf_handler;
  auto o = Opts(2);
  o.drain_timeout = seconds(120);
  auto w = StartWorker(o, deaf_handler.registry());
  OpenAtEnd open_at_end{deaf_handler};

  const std::string deaf = Submit("deaf", Json::object(), 3, milliseconds(300));
  auto rec = WaitDone(deaf, seconds(30));
  ASSERT_EQ(rec.status, TaskStatus::kFailed);
  EXPECT_EQ(rec.attempts, 1);

  w->Stop();
  auto drained = std::async(std::launch::async, [&] { return w->WaitUntilDrained(); });
  // Far less than the 120 s drain timeout the old drain waited out for the deaf slot.
  ASSERT_EQ(drained.wait_for(seconds(30)), std::future_status::ready);
  EXPECT_EQ(drained.get(), 1);                     // its thread still runs
  EXPECT_EQ(StatusOf(deaf), TaskStatus::kFailed);  // not handed back: it had ended

  deaf_handler.Open();
  w->Wait();
  EXPECT_EQ(StatusOf(deaf), TaskStatus::kFailed);
}

TEST_F(WorkerTest, DefaultTimeoutApplies) {
  auto o = Opts();
  o.default_timeout = milliseconds(200);
  auto w = StartWorker(o);
  auto rec = WaitDone(Submit("sleep", Json{{"ms", 30000}}));
  EXPECT_EQ(rec.status, TaskStatus::kFailed);
  EXPECT_EQ(rec.error, "timed out after 0.2s");
}

TEST_F(WorkerTest, TimeoutOfAShellChildKillsItsGrandchild) {
  testing::TempDir dir;
  std::string pidfile = (dir.path() / "grandchild.pid").string();
  auto w = StartWorker(Opts());
  Json payload = {{"argv", {"sh", "-c", "sleep 30 & echo $! > " + pidfile + "; wait"}}};
  auto rec = WaitDone(Submit("shell", payload, 1, milliseconds(500)));
  EXPECT_EQ(rec.status, TaskStatus::kFailed);
  EXPECT_THAT(rec.error, HasSubstr("timed out after 0.5s"));
  std::ifstream in(pidfile);
  pid_t grandchild = 0;
  in >> grandchild;
  ASSERT_GT(grandchild, 0);
  EXPECT_TRUE(Eventually([&] { return ProcessGone(grandchild); }, seconds(5)));
}

TEST_F(WorkerTest, ShellResultAndLogEvents) {
  auto w = StartWorker(Opts());
  std::string id = Submit("shell", Json{{"argv", {"sh", "-c", "echo one; echo two >&2"}}});
  auto rec = WaitDone(id);
  ASSERT_EQ(rec.status, TaskStatus::kSucceeded) << rec.error;
  Json result = ParseJson(rec.result).value();
  EXPECT_EQ(result["stdout"], "one\n");
  EXPECT_EQ(result["stderr"], "two\n");
  auto events = broker().ReadEvents(id, "0", 100, milliseconds(0));
  ASSERT_TRUE(events);
  int logs = 0;
  for (auto& e : *events) {
    if (e.type == "log") ++logs;
  }
  EXPECT_EQ(logs, 2);
}

// The worker's brokers, each holding its first AppendEvents of a "blob" event until the test
// releases it: the outbox's one send in flight, without stopping Redis, so what is in flight and
// what waits in the outbox is known exactly.
struct SendGate {
  std::mutex mu;
  std::condition_variable cv;
  bool entered = false;
  bool released = false;
};

class GatedBroker final : public testing::ForwardingBroker {
 public:
  GatedBroker(std::unique_ptr<Broker> inner, SendGate& gate)
      : ForwardingBroker(*inner), inner_(std::move(inner)), gate_(gate) {}
  Status AppendEvents(const std::string& queue, const std::string& id,
                      const std::vector<std::pair<std::string, Json>>& events) override {
    if (!events.empty() && events.front().first == "blob") {
      std::unique_lock lock(gate_.mu);
      gate_.entered = true;
      gate_.cv.notify_all();
      gate_.cv.wait_for(lock, seconds(30), [&] { return gate_.released; });
    }
    return ForwardingBroker::AppendEvents(queue, id, events);
  }

 private:
  std::unique_ptr<Broker> inner_;
  SendGate& gate_;
};

class GatedBrokerFactory final : public BrokerFactory {
 public:
  GatedBrokerFactory(std::unique_ptr<BrokerFactory> inner, SendGate& gate)
      : inner_(std::move(inner)), gate_(gate) {}
  Result<std::unique_ptr<Broker>> Open() override {
    auto b = inner_->Open();
    if (!b) return b;
    return std::unique_ptr<Broker>(std::make_unique<GatedBroker>(std::move(*b), gate_));
  }
  const BrokerOptions& options() const override { return inner_->options(); }

 private:
  std::unique_ptr<BrokerFactory> inner_;
  SendGate& gate_;
};

// Events a handler emits while a send to Redis hangs wait in the worker's outbox, which is
// bounded in bytes as well as in count: here the first of 64 events of 1 MiB is in the hung send,
// and of the 63 emitted meanwhile the outbox keeps 31 (31 of 1 MiB and a few bytes fit in
// 32 MiB, 32 do not); the rest are dropped, and what was kept reaches the task's stream once the
// send goes on (in calls of about 1 MiB each).
TEST_F(WorkerTest, TheEventOutboxIsBoundedInBytes) {
  std::atomic<bool> first_emitted{false};
  std::atomic<bool> go{false};
  std::atomic<bool> emitted{false};
  HandlerRegistry reg;
  reg.Register("chatty", [&](TaskContext& ctx) -> HandlerResult {
    auto blob = [&](int i) {
      ctx.events->Emit("blob", Json{{"i", i}, {"text", std::string(size_t{1} << 20, 'x')}});
    };
    blob(0);
    first_emitted = true;
    for (int i = 0; i < 3000 && !go; ++i) testing::SleepMs(10);
    for (int i = 1; i < 64; ++i) blob(i);
    emitted = true;
    return Json("done");
  });
  SendGate gate;
  WorkerOptions o = Opts(1);
  // The outbox's bound is the subject: one attempt's own limits must not come first.
  o.max_event_bytes = size_t{2} << 20;
  o.max_attempt_event_bytes = size_t{128} << 20;
  auto made = MakeWorker(
      o, reg, std::make_unique<GatedBrokerFactory>(MakeRedisBrokerFactory(o.broker), gate));
  ASSERT_TRUE(made) << made.error().message;
  std::unique_ptr<Worker> w = std::move(*made);
  ASSERT_TRUE(w->Start());
  const std::string id = Submit("chatty");
  ASSERT_TRUE(Eventually([&] { return first_emitted.load(); }, seconds(10)));
  {
    std::unique_lock lock(gate.mu);
    ASSERT_TRUE(gate.cv.wait_for(lock, seconds(10), [&] { return gate.entered; }));
  }
  go = true;
  ASSERT_TRUE(Eventually([&] { return emitted.load(); }, seconds(10)));
  {
    std::lock_guard lock(gate.mu);
    gate.released = true;
  }
  gate.cv.notify_all();
  EXPECT_EQ(WaitDone(id, seconds(30)).status, TaskStatus::kSucceeded);
  std::set<int> kept;
  auto events = broker().ReadEvents(id, "0", 1000, milliseconds(0));
  ASSERT_TRUE(events) << events.error().message;
  for (const auto& e : *events) {
    if (e.type == "blob") kept.insert(e.data["i"].get<int>());
  }
  std::set<int> first_32;
  for (int i = 0; i < 32; ++i) first_32.insert(i);
  EXPECT_EQ(kept, first_32) << "the outbox kept more or other than 32 MiB's worth";
  w->Stop();
  w->Wait();
}

// An event's type and data (as JSON text) may take 16 KiB, as an exec handler's event line may:
// one byte more is dropped, and the handler's later events are kept.
TEST_F(WorkerTest, AnEventOverTheLimitIsDropped) {
  // {"type":...} aside, the data "yyy..." takes its length plus 2 quotes.
  auto data = [](size_t bytes) { return Json(std::string(bytes - 2 - 4, 'y')); };
  HandlerRegistry reg;
  reg.Register("big", [&](TaskContext& ctx) -> HandlerResult {
    ctx.events->Emit("fits", data(kMaxEventBytes));
    ctx.events->Emit("over", data(kMaxEventBytes + 1));
    ctx.events->Emit("over", Json(std::string(5000000, 'z')));
    ctx.events->Emit("last", Json(1));
    return Json("done");
  });
  auto w = StartWorker(Opts(1), reg);
  const std::string id = Submit("big");
  ASSERT_EQ(WaitDone(id).status, TaskStatus::kSucceeded);
  EXPECT_THAT(Types(EventsOfSucceeded(id)),
              ::testing::ElementsAre("submitted", "running", "fits", "last", "succeeded"));
}

// One attempt's events may take 1 MiB of its task's stream: 64 events of exactly 16 KiB fit,
// the 65th and later are dropped and one "log" event says how many; the next attempt has its own.
TEST_F(WorkerTest, AnAttemptsEventsAreBoundedInBytes) {
  HandlerRegistry reg;
  reg.Register("chatty", [&](TaskContext& ctx) -> HandlerResult {
    for (int i = 0; i < 100; ++i) {
      ctx.events->Emit("blob", Json(std::string(kMaxEventBytes - 4 - 2, 'b')));
    }
    if (ctx.attempt == 1) return tl::unexpected<HandlerError>(HandlerError{"again", true});
    return Json("done");
  });
  WorkerOptions o = Opts(1);
  o.backoff_base = milliseconds(1);
  auto w = StartWorker(o, reg);
  const std::string id = Submit("chatty", Json::object(), 2);
  ASSERT_EQ(WaitDone(id).status, TaskStatus::kSucceeded);
  static_assert(kMaxAttemptEventBytes == 64 * kMaxEventBytes);
  const std::vector<TaskEvent> events = EventsOfSucceeded(id);
  ASSERT_FALSE(events.empty());
  std::vector<int> blobs_per_attempt(1, 0);
  std::vector<std::string> notes;
  for (const auto& e : events) {
    if (e.type == "blob") ++blobs_per_attempt.back();
    if (e.type == "log") {
      notes.push_back(e.data.value("line", ""));
      blobs_per_attempt.push_back(0);
    }
  }
  EXPECT_EQ(blobs_per_attempt, (std::vector<int>{64, 64, 0}));
  const std::string note =
      "36 further event(s) not recorded: this attempt's events reached 1048576 bytes";
  EXPECT_EQ(notes, (std::vector<std::string>{note, note}));
}

// A C++ handler's event named like one of the task's own is dropped: the stream holds the
// broker's one "succeeded", not the handler's, and the handler's other events. So is one whose
// type an exec program could not write either (empty, over 64 characters, a line break that
// would draw a forged line in `ferry task events`); 64 characters are a type.
TEST_F(WorkerTest, AHandlerCannotWriteTheTasksOwnEvents) {
  const std::string longest(64, 'x');
  HandlerRegistry reg;
  reg.Register("forger", [longest](TaskContext& ctx) -> HandlerResult {
    ctx.events->Emit("succeeded", Json{{"worker", "forged"}});
    ctx.events->Emit("progress", Json{{"percent", 50}});
    ctx.events->Emit("FAILED", Json{{"worker", "forged"}});
    ctx.events->Emit("", Json{{"worker", "forged"}});
    ctx.events->Emit(longest + "x", Json{{"worker", "forged"}});
    ctx.events->Emit("progress\n2026-12-06 succeeded", Json{{"worker", "forged"}});
    ctx.events->Emit(longest, Json{{"percent", 60}});
    return Json("done");
  });
  auto w = StartWorker(Opts(1), reg);
  const std::string id = Submit("forger");
  ASSERT_EQ(WaitDone(id).status, TaskStatus::kSucceeded);
  const std::vector<TaskEvent> events = EventsOfSucceeded(id);
  for (const auto& e : events) EXPECT_NE(e.data.value("worker", ""), "forged") << e.type;
  EXPECT_THAT(Types(events),
              ::testing::ElementsAre("submitted", "running", "progress", longest, "succeeded"));
}

// The threads that run tasks, and the processes of shell handlers, run at the niceness asked for;
// the thread that started the worker keeps its own.
TEST_F(WorkerTest, TasksRunAtTheNiceAskedForAndTheStartingThreadKeepsItsOwn) {
  errno = 0;
  const int own = ::getpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()));
  ASSERT_EQ(errno, 0);
  if (own >= 19) GTEST_SKIP() << "runs at nice " << own << ": nothing lower to ask for";
  auto niceness_of_a_task = [&](int nice) {
    auto o = Opts(1);
    o.nice = nice;
    auto w = StartWorker(o);
    // coreutils' nice with no command prints the niceness it runs at.
    auto rec = WaitDone(Submit("shell", Json{{"argv", {"nice"}}}));
    EXPECT_EQ(rec.status, TaskStatus::kSucceeded) << rec.error;
    w->Stop();
    w->Wait();
    auto result = ParseJson(rec.result);
    return result ? (*result)["stdout"].get<std::string>() : std::string("no result");
  };
  EXPECT_EQ(niceness_of_a_task(19), "19\n");
  EXPECT_EQ(niceness_of_a_task(0), std::to_string(own) + "\n") << "0: the process's own";
  errno = 0;
  EXPECT_EQ(::getpriority(PRIO_PROCESS, static_cast<id_t>(::gettid())), own);
  EXPECT_EQ(errno, 0);
}

TEST_F(WorkerTest, DrainHandsBackALongTaskAtOnce) {
  auto o = Opts(1);
  o.drain_timeout = milliseconds(200);
  auto a = StartWorker(o);
  std::string id = Submit("sleep", Json{{"ms", 30000}}, 1);
  ASSERT_TRUE(WaitStatus(id, TaskStatus::kRunning));
  auto t0 = std::chrono::steady_clock::now();
  a->Stop();
  a->Wait();
  // The drain deadline (0.2 s) ended it, not the handler's 30 s sleep.
  EXPECT_LT(std::chrono::steady_clock::now() - t0, seconds(15));
  auto rec = broker().GetTask(id);
  ASSERT_TRUE(rec && *rec);
  EXPECT_EQ((**rec).status, TaskStatus::kPending);
  EXPECT_EQ((**rec).attempts, 0);  // the handed-back attempt does not count

  // Claimable at once (no lease wait) by another worker, which finishes it.
  HandlerRegistry quick;
  quick.Register("sleep", [](TaskContext&) -> HandlerResult { return Json("quick"); });
  auto b = StartWorker(Opts(1), quick);
  auto done = WaitDone(id, seconds(3));
  EXPECT_EQ(done.status, TaskStatus::kSucceeded);
  EXPECT_EQ(done.worker, b->id());
  EXPECT_EQ(done.attempts, 1);  // max_attempts 1 and it still ran: the hand-back was free
}

TEST_F(WorkerTest, DrainWaitsForShortTasks) {
  ExecutionLog log;
  HandlerRegistry reg;
  reg.Register("count", CountingHandler(log));
  auto w = StartWorker(Opts(2), reg);
  std::string a = Submit("count", Json{{"ms", 600}});
  std::string b = Submit("count", Json{{"ms", 600}});
  // Both handlers started. (A task's record says running from its claim on, also while it waits
  // in the prefetch queue for a slot, and a prefetched task is handed back at stop, not waited
  // for.)
  ASSERT_TRUE(Eventually(
      [&] {
        std::lock_guard lock(log.mu);
        return log.concurrent == 2;
      },
      seconds(10)));
  w->Stop();
  // Still heartbeating as draining while they finish.
  EXPECT_TRUE(Eventually(
      [&] {
        auto ws = broker().ListWorkers();
        if (!ws) return false;
        for (auto& i : *ws) {
          if (i.id == w->id()) return i.status == "draining";
        }
        return false;
      },
      seconds(2)));
  w->Wait();
  EXPECT_EQ(StatusOf(a), TaskStatus::kSucceeded);
  EXPECT_EQ(StatusOf(b), TaskStatus::kSucceeded);
  EXPECT_EQ(log.Runs(a), 1);
  EXPECT_EQ(log.Runs(b), 1);
}

TEST_F(WorkerTest, PrefetchedTasksAreHandedBackOnStop) {
  auto o = Opts(1);
  o.prefetch = 4;
  o.drain_timeout = milliseconds(100);
  auto w = StartWorker(o);
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) ids.push_back(Submit("sleep", Json{{"ms", 30000}}));
  // One runs, four wait in the prefetch buffer (all "running" for the broker).
  ASSERT_TRUE(Eventually(
      [&] {
        for (auto& id : ids) {
          if (StatusOf(id) != TaskStatus::kRunning) return false;
        }
        return true;
      },
      seconds(5)));
  w->Stop();
  w->Wait();
  for (auto& id : ids) EXPECT_EQ(StatusOf(id), TaskStatus::kPending) << id;
}

// A task that waited in the prefetch buffer and is cancelled just as its slot comes free (a
// workflow run that ends cancels the task its task node left waiting, and that end is what frees
// the slot) never starts: a slot takes a task buffered longer than a cancel poll's period only
// after a fresh poll.
TEST_F(WorkerTest, APrefetchedTaskCancelledAsItsSlotFreesNeverStarts) {
  ExecutionLog log;
  HandlerRegistry reg;
  reg.Register("count", CountingHandler(log));
  std::atomic<bool> go{false};
  std::string waiting;  // written before `go`
  auto canceller = OpenBroker();
  reg.Register("gate", [&](TaskContext& ctx) -> HandlerResult {
    while (!go.load() && !ctx.stop.stop_requested()) std::this_thread::sleep_for(milliseconds(5));
    auto r = canceller->Cancel(waiting);
    if (!r) return tl::unexpected(HandlerError{r.error().message, false});
    return Json{{"cancel", TaskStatusName(*r)}};
  });
  auto o = Opts(1);
  o.prefetch = 1;
  auto w = StartWorker(o, reg);
  std::string gate = Submit("gate");
  ASSERT_TRUE(WaitStatus(gate, TaskStatus::kRunning));
  waiting = Submit("count");
  ASSERT_TRUE(WaitStatus(waiting, TaskStatus::kRunning));  // claimed into the buffer
  // It must have waited there longer than a cancel poll's period (300 ms) for the race to be
  // the one a run's end makes: a task taken sooner is not held back.
  std::this_thread::sleep_for(milliseconds(400));
  go = true;
  EXPECT_EQ(WaitDone(gate).status, TaskStatus::kSucceeded);
  TaskRecord rec = WaitDone(waiting);
  EXPECT_EQ(rec.status, TaskStatus::kCancelled);
  EXPECT_EQ(rec.error, "cancelled before it started");
  EXPECT_EQ(log.Runs(waiting), 0);
  // The worker goes on serving.
  EXPECT_EQ(WaitDone(Submit("count")).status, TaskStatus::kSucceeded);
}

// A drain that begins while a slot waits for that fresh poll (Redis slow to answer it) hands the
// task back unstarted, as the buffer's tasks are, instead of starting it as the worker stops.
TEST_F(WorkerTest, ADrainDuringTheWaitForAFreshPollHandsTheTaskBack) {
  ExecutionLog log;
  HandlerRegistry reg;
  reg.Register("count", CountingHandler(log));
  std::atomic<bool> go{false};
  reg.Register("gate", [&](TaskContext& ctx) -> HandlerResult {
    while (!go.load() && !ctx.stop.stop_requested()) std::this_thread::sleep_for(milliseconds(5));
    return Json{{"ok", true}};
  });
  auto o = Opts(1);
  o.prefetch = 1;
  auto w = StartWorker(o, reg);
  std::string gate = Submit("gate");
  ASSERT_TRUE(WaitStatus(gate, TaskStatus::kRunning));
  std::string waiting = Submit("count");
  ASSERT_TRUE(WaitStatus(waiting, TaskStatus::kRunning));  // claimed into the buffer
  std::this_thread::sleep_for(milliseconds(400));          // longer than a poll's period
  // Redis holds every command for 1.5 s: the poll the slot asks for does not come back.
  redis().Cli({"CLIENT", "PAUSE", "1500", "ALL"});
  go = true;
  std::this_thread::sleep_for(milliseconds(100));  // the slot takes the task and asks
  w->Stop();
  w->Wait();
  EXPECT_EQ(log.Runs(waiting), 0);
  EXPECT_EQ(StatusOf(waiting), TaskStatus::kPending);
}

TEST_F(WorkerTest, ExpiredLeaseOfADeadWorkerIsReclaimedAndItsLateFinishRejected) {
  // A "worker" that claims and then goes silent (as if killed): a raw broker connection.
  std::string id = Submit("echo", Json{{"v", 1}}, 3);
  auto ghost = OpenBroker();
  auto claimed = ghost->Claim({"q1"}, "ghost", 1, milliseconds(100));
  ASSERT_TRUE(claimed);
  ASSERT_EQ(claimed->size(), 1u);
  ClaimedTask stale = (*claimed)[0];

  auto o = Opts(1);
  o.lease = seconds(1);
  auto w = StartWorker(o);
  auto rec = WaitDone(id, seconds(6));
  EXPECT_EQ(rec.status, TaskStatus::kSucceeded);
  EXPECT_EQ(rec.worker, w->id());
  EXPECT_EQ(rec.reclaims, 1);
  EXPECT_GT(rec.epoch, stale.epoch);

  Completion late;
  late.kind = Completion::Kind::kSucceeded;
  late.id = stale.id;
  late.queue = stale.queue;
  late.entry_id = stale.entry_id;
  late.epoch = stale.epoch;
  late.result = "\"late\"";
  late.worker = "ghost";
  auto outcome = ghost->Complete({late});
  ASSERT_TRUE(outcome);
  EXPECT_EQ((*outcome)[0], CompletionOutcome::kStale);
  EXPECT_EQ(ParseJson(WaitDone(id).result).value(), (Json{{"v", 1}}));
}

TEST_F(WorkerTest, HealthIsOkThenUnavailableWhenRedisStops) {
  UseOwnRedis();
  auto o = Opts(1);
  o.health_port = 0;
  o.prefetch = 0;
  o.block = milliseconds(100);
  o.drain_timeout = milliseconds(200);
  auto w = StartWorker(o);
  ASSERT_GT(w->health_port(), 0);
  httplib::Client http("127.0.0.1", w->health_port());
  http.set_read_timeout(2, 0);
  auto res = http.Get("/healthz");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_THAT(res->body, HasSubstr("\"status\":\"ok\""));

  // Busy with a long task (nothing to claim) is still healthy: the claim path pings Redis.
  std::string busy = Submit("sleep", Json{{"ms", 60000}});
  ASSERT_TRUE(WaitStatus(busy, TaskStatus::kRunning));
  auto busy_until = std::chrono::steady_clock::now() + milliseconds(5600);
  while (std::chrono::steady_clock::now() < busy_until) {
    auto r = http.Get("/healthz");
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
    testing::SleepMs(200);
  }
  ASSERT_TRUE(broker().Cancel(busy));
  EXPECT_EQ(WaitDone(busy).status, TaskStatus::kCancelled);

  redis().Stop();
  // block (0.1 s) + 5 s without a claim reply.
  EXPECT_TRUE(Eventually(
      [&] {
        auto r = http.Get("/healthz");
        return r && r->status == 503;
      },
      seconds(9)));
  redis().Start();
  client_.reset();  // its connection died with the server
  EXPECT_TRUE(Eventually(
      [&] {
        auto r = http.Get("/healthz");
        return r && r->status == 200;
      },
      seconds(8)));
  EXPECT_EQ(WaitDone(Submit("noop")).status, TaskStatus::kSucceeded);
}

TEST_F(WorkerTest, RedisRestartUnderLoadLosesNothingAndRunsNothingTwice) {
  UseOwnRedis();
  ExecutionLog log;
  HandlerRegistry reg;
  reg.Register("count", CountingHandler(log));
  auto o = Opts(8);
  o.lease = seconds(2);
  auto w = StartWorker(o, reg);
  std::vector<SubmitRequest> reqs;
  for (int i = 0; i < 2000; ++i) {
    SubmitRequest r;
    r.kind = "count";
    r.queue = "q1";
    r.payload = Json{{"ms", 1}};
    reqs.push_back(r);
  }
  auto submitted = broker().SubmitBatch(reqs);
  ASSERT_TRUE(submitted);
  ASSERT_TRUE(Eventually(
      [&] {
        std::lock_guard lock(log.mu);
        return log.runs.size() >= 300;
      },
      seconds(10)));
  redis().Restart();
  client_.reset();  // its connection died with the server
  for (auto& s : *submitted) {
    auto rec = WaitDone(s.id, seconds(20));
    ASSERT_EQ(rec.status, TaskStatus::kSucceeded) << s.id;
  }
  // SHUTDOWN persists the AOF, so every applied transition survives the restart, and the outage
  // is shorter than the lease, so no task is reclaimed while its first execution runs: each runs
  // exactly once. (Delivery is at-least-once in general: an outage longer than the lease may let
  // another worker reclaim a task that is still running here; fencing then rejects the older
  // execution's completion, which the Reclaim test covers.)
  EXPECT_EQ(log.overlaps, 0);
  for (auto& s : *submitted) EXPECT_EQ(log.Runs(s.id), 1) << s.id;
}

// Probers that open a connection and stall mid-head (a wedged load balancer, a port scanner)
// must not starve the supervisor's probe: the health port reads heads without a thread per
// connection. Eight stalled connections are four times its handler threads.
TEST_F(WorkerTest, HealthPortAnswersWhileOtherProbersStall) {
  auto o = Opts(1);
  o.health_port = 0;
  o.metrics = [] { return std::string("ferry_test_metric 1\n"); };
  auto w = StartWorker(o);
  std::vector<int> stalled;
  for (int i = 0; i < 8; ++i) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_GE(fd, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<uint16_t>(w->health_port()));
    ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    const std::string partial = "GET /healthz HTTP/1.1\r\nHost: x\r\n";
    ASSERT_EQ(::send(fd, partial.data(), partial.size(), 0), static_cast<ssize_t>(partial.size()));
    stalled.push_back(fd);
  }
  httplib::Client http("127.0.0.1", w->health_port());
  http.set_read_timeout(2, 0);
  auto res = http.Get("/healthz");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_THAT(res->body, HasSubstr("\"worker\":\"" + w->id() + "\""));
  auto metrics = http.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_EQ(metrics->status, 200);
  EXPECT_EQ(metrics->body, "ferry_test_metric 1\n");
  EXPECT_THAT(metrics->get_header_value("Content-Type"), HasSubstr("version=0.0.4"));
  // Probes take nothing but GET (the method is judged before any body).
  auto post = http.Post("/healthz", "", "application/json");
  ASSERT_TRUE(post);
  EXPECT_EQ(post->status, 405) << post->body;
  httplib::Client other("127.0.0.1", w->health_port());
  auto with_body = other.Post("/healthz", "{}", "application/json");
  ASSERT_TRUE(with_body);
  EXPECT_EQ(with_body->status, 405) << with_body->body;
  for (int fd : stalled) ::close(fd);
}

TEST_F(WorkerTest, HealthPortInUseFailsStart) {
  auto o = Opts(1);
  o.health_port = 0;
  auto first = StartWorker(o);
  o.health_port = first->health_port();
  auto second = MakeWorker(o, registry_, MakeRedisBrokerFactory(o.broker));
  ASSERT_TRUE(second);
  auto st = (*second)->Start();
  ASSERT_FALSE(st);
  EXPECT_THAT(st.error().message, HasSubstr(std::to_string(o.health_port)));
}

// SIGTERM reaches the signal thread of RunWorkerUntilSignal and drains the worker. Runs in a
// death-test child so a signal can never hit the test runner itself.
TEST_F(WorkerTest, SigtermDrainsThroughRunWorkerUntilSignal) {
  GTEST_FLAG_SET(death_test_style, "fast");
  // "fast" (fork, no re-exec): the child uses the suite's redis-server instead of starting one
  // it could not stop after _Exit. No other thread exists here: earlier workers are joined.
  auto body = [&] {
    BlockTerminationSignals();
    auto o = Opts(1);
    o.drain_timeout = milliseconds(100);
    auto w = MakeWorker(o, registry_, MakeRedisBrokerFactory(o.broker));
    if (!w || !(*w)->Start()) std::_Exit(3);
    std::string id = Submit("sleep", Json{{"ms", 30000}});
    if (!WaitStatus(id, TaskStatus::kRunning)) std::_Exit(4);
    ::kill(::getpid(), SIGTERM);
    int sig = RunWorkerUntilSignal(**w);
    if (sig != SIGTERM) std::_Exit(5);
    std::_Exit(StatusOf(id) == TaskStatus::kPending ? 0 : 6);
  };
  EXPECT_EXIT(body(), ::testing::ExitedWithCode(0), "");
}

// With a handler that ignores its stop, RunWorkerUntilSignal ends the process (exit 1) once the
// drain has handed its task back, rather than wait for the thread without end.
TEST_F(WorkerTest, SigtermEndsTheProcessWithoutAHandlerThatIgnoresItsStop) {
  GTEST_FLAG_SET(death_test_style, "fast");
  HandlerRegistry reg;
  RegisterBuiltinHandlers(reg);
  reg.Register("deaf", [](TaskContext&) -> HandlerResult {
    for (;;) ::pause();  // never looks at ctx.stop; ends with the process
  });
  auto body = [&] {
    BlockTerminationSignals();
    auto o = Opts(1);
    o.drain_timeout = milliseconds(100);
    auto w = MakeWorker(o, reg, MakeRedisBrokerFactory(o.broker));
    if (!w || !(*w)->Start()) std::_Exit(3);
    std::string id = Submit("deaf");
    if (!WaitStatus(id, TaskStatus::kRunning)) std::_Exit(4);
    ::kill(::getpid(), SIGTERM);
    RunWorkerUntilSignal(**w);
    std::_Exit(5);  // not reached: it ends the process
  };
  EXPECT_EXIT(body(), ::testing::ExitedWithCode(kExitHandlersAbandoned), "");
  TaskListFilter filter;
  filter.queue = "q1";
  auto page = broker().ListTasks(filter);
  ASSERT_TRUE(page) << page.error().message;
  ASSERT_EQ(page->tasks.size(), 1u);
  EXPECT_EQ(page->tasks[0].status, TaskStatus::kPending);  // handed back before the end
  EXPECT_EQ(page->tasks[0].kind, "deaf");
}

}  // namespace
}  // namespace ferry
