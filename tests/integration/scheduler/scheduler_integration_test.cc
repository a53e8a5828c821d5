// The scheduler against real servers: leader lease semantics on redis-server; two `ferry
// scheduler start` processes with a per-second schedule and a kill -9 of the leader (exactly one
// run per occurrence, none missed); restart after downtime (misfire policies); overlap policies
// with a slow workflow run by a real worker; two dispatchers recording the same occurrence (a
// deposed leader waking up, the dispatch endpoint racing the leader); `ferry schedule` commands.
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>

#include "apply_workflow.h"
#include "broker/leader.h"
#include "core/crypto.h"
#include "core/ids.h"
#include "core/time_util.h"
#include "engine/ingest.h"
#include "gate.h"
#include "harness.h"
#include "scheduler/plan.h"
#include "scheduler/scheduler.h"
#include "store/store.h"
#include "wrapping_store_factory.h"

namespace ferry::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

bool Contains(const std::string& s, const std::string& n) { return s.find(n) != std::string::npos; }

// ---------------------------------------------------------------------------------------------
// Leader lease

class LeaseTest : public ::testing::Test {
 protected:
  std::unique_ptr<LeaderLease> Lease(const std::string& holder, milliseconds ttl) {
    BrokerOptions o;
    o.redis_url = redis_.url();
    o.prefix = "lease-test";
    auto l = MakeRedisLeaderLease(o, LeaderLeaseOptions{"scheduler", holder, ttl});
    // Thrown, not dereferenced: the test then fails with the reason instead of crashing.
    if (!l) throw std::runtime_error("cannot make a lease: " + l.error().message);
    return std::move(*l);
  }
  RedisServer redis_;
};

TEST_F(LeaseTest, AcquireRenewReleaseAndFencingTokens) {
  auto a = Lease("a", seconds(5));
  auto b = Lease("b", seconds(5));
  auto ra = a->TryAcquire();
  ASSERT_TRUE(ra) << ra.error().message;
  EXPECT_TRUE(ra->held);
  EXPECT_EQ(ra->token, 1);
  auto again = a->TryAcquire();  // the holder again: same token
  ASSERT_TRUE(again);
  EXPECT_TRUE(again->held);
  EXPECT_EQ(again->token, 1);
  auto rb = b->TryAcquire();
  ASSERT_TRUE(rb);
  EXPECT_FALSE(rb->held);
  EXPECT_EQ(rb->holder, "a");
  auto renew_b = b->Renew();
  ASSERT_TRUE(renew_b);
  EXPECT_FALSE(renew_b->held);
  auto renew_a = a->Renew();
  ASSERT_TRUE(renew_a);
  EXPECT_TRUE(renew_a->held);
  EXPECT_EQ(renew_a->token, 1);
  EXPECT_EQ(redis_.Cli({"GET", "lease-test:{scheduler}:leader"}), "a");
  ASSERT_TRUE(b->Release());  // not the holder: no-op
  EXPECT_EQ(redis_.Cli({"GET", "lease-test:{scheduler}:leader"}), "a");
  ASSERT_TRUE(a->Release());
  auto rb2 = b->TryAcquire();
  ASSERT_TRUE(rb2);
  EXPECT_TRUE(rb2->held);
  EXPECT_EQ(rb2->token, 2);
  auto inspect = a->Inspect();
  ASSERT_TRUE(inspect);
  EXPECT_EQ(inspect->holder, "b");
  EXPECT_FALSE(inspect->held);
}

TEST_F(LeaseTest, ExpiredLeaseIsStolenWithANewTokenAndTheOldHolderLosesIt) {
  auto a = Lease("a", milliseconds(300));
  auto b = Lease("b", milliseconds(300));
  const auto acquired = std::chrono::steady_clock::now();
  ASSERT_TRUE(a->TryAcquire()->held);
  auto early = b->TryAcquire();
  ASSERT_TRUE(early);
  if (std::chrono::steady_clock::now() - acquired < milliseconds(250)) {
    EXPECT_FALSE(early->held) << "taken while the holder's lease still ran";
    EXPECT_EQ(early->holder, "a");
  }
  // Once the lease has lapsed (nobody renewed it), b gets it under the next token.
  std::optional<LeaseState> rb;
  ASSERT_TRUE(Eventually(
      [&] {
        auto r = b->TryAcquire();
        if (r && r->held) rb = *r;
        return rb.has_value();
      },
      seconds(10)));
  EXPECT_EQ(rb->token, 2);
  auto ra = a->Renew();
  ASSERT_TRUE(ra);
  EXPECT_FALSE(ra->held);
  EXPECT_EQ(ra->holder, "b");
}

TEST_F(LeaseTest, RedisDownIsAnErrorNotLeadership) {
  auto a = Lease("a", seconds(5));
  ASSERT_TRUE(a->TryAcquire()->held);
  redis_.Stop();
  auto r = a->Renew();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kUnavailable);
}

// ---------------------------------------------------------------------------------------------
// ferry scheduler start

class SchedulerProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_ = (dir_.path() / "ferry.db").string();
    auto s = OpenStore(db_);
    ASSERT_TRUE(s) << s.error().message;
    store_ = std::move(*s);
  }

  std::unique_ptr<Process> StartScheduler(const std::string& id,
                                          std::vector<std::string> extra = {}) {
    Process::Options o;
    o.argv = {FerryBinary(), "--redis-url",    redis_.url(),
              "--prefix",    "sched",          "scheduler",
              "start",       "--store",        db_,
              "--tick",      "200ms",          "--lease",
              "3s",          "--scheduler-id", id};
    o.argv.insert(o.argv.end(), extra.begin(), extra.end());
    return std::make_unique<Process>(o);
  }

  std::unique_ptr<Process> StartWorker() {
    Process::Options o;
    o.argv = {FerryBinary(), "--redis-url",   redis_.url(), "--prefix", "sched",
              "worker",      "start",         "--store",    db_,        "--concurrency",
              "6",           "--health-port", "-1"};
    return std::make_unique<Process>(o);
  }

  std::string TriggerId(const Workflow& wf) {
    TriggerFilter f;
    f.workflow_id = wf.id;
    auto t = store_->ListTriggers(f);
    EXPECT_TRUE(t && t->size() == 1);
    return t && !t->empty() ? t->at(0).id : "";
  }

  std::vector<CronFire> Fires(const Workflow& wf) {
    auto f = store_->ListCronFires(TriggerId(wf), 10000);
    EXPECT_TRUE(f);
    std::vector<CronFire> out = *f;
    std::sort(out.begin(), out.end(),
              [](const CronFire& a, const CronFire& b) { return a.fire_ms < b.fire_ms; });
    return out;
  }

  std::vector<ferry::Run> Runs(const Workflow& wf) {
    RunFilter f;
    f.workflow_id = wf.id;
    f.limit = 1000;
    auto page = store_->ListRuns(f);
    EXPECT_TRUE(page);
    return page->runs;
  }

  // The run.created event's trigger object.
  Json TriggerContext(const std::string& run_id) {
    auto events = store_->ListRunEvents(run_id, 0, 10);
    if (!events) return Json();
    for (const auto& e : *events) {
      if (e.type == "run.created") return ParseJson(e.data)->value("trigger", Json());
    }
    return Json();
  }

  TempDir dir_;
  RedisServer redis_;
  std::string db_;
  std::unique_ptr<Store> store_;
};

TEST_F(SchedulerProcessTest, TwoSchedulersKillTheLeaderExactlyOncePerOccurrence) {
  auto wf = ApplyWorkflowSource(
      *store_,
      CronWorkflow("every-second", "* * * * * *", "    misfire: catch_up\n    catch_up_max: 30\n"));
  auto a = StartScheduler("sched-a", {"--misfire-grace", "2s"});
  ASSERT_TRUE(a->WaitForOutput("leading (fencing token 1)", seconds(10))) << a->Stderr();
  auto b = StartScheduler("sched-b", {"--misfire-grace", "2s"});
  ASSERT_TRUE(b->WaitForOutput("scheduler sched-b started", seconds(10))) << b->Stderr();
  // A leads for a dozen occurrences while B keeps trying for the lease.
  ASSERT_TRUE(Eventually([&] { return Fires(wf).size() >= 12; }, seconds(60)));
  EXPECT_FALSE(Contains(b->Stderr(), "leading")) << b->Stderr();

  a->Signal(SIGKILL);
  a->Wait(seconds(5));
  const size_t before_kill = Fires(wf).size();
  auto killed = std::chrono::steady_clock::now();
  // B takes over once A's 3 s lease lapses (docs/scheduler.md: within lease + lease/5).
  ASSERT_TRUE(b->WaitForOutput("leading (fencing token 2)", seconds(30))) << b->Stderr();
  auto takeover =
      std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - killed);
  std::printf("takeover after kill -9: %lld ms\n", static_cast<long long>(takeover.count()));
  ASSERT_TRUE(Eventually([&] { return Fires(wf).size() >= before_kill + 12; }, seconds(60)));
  b->Signal(SIGTERM);
  ASSERT_EQ(b->Wait(seconds(10)), 0) << b->Stderr();

  auto fires = Fires(wf);
  ASSERT_GE(fires.size(), 24u);
  std::set<std::string> run_ids;
  int64_t missing = 0;
  for (size_t i = 0; i < fires.size(); ++i) {
    EXPECT_FALSE(fires[i].run_id.empty());
    run_ids.insert(fires[i].run_id);
    if (i > 0) missing += (fires[i].fire_ms - fires[i - 1].fire_ms) / 1000 - 1;
  }
  EXPECT_EQ(run_ids.size(), fires.size());  // one run per occurrence
  EXPECT_EQ(missing, 0) << "occurrences missing between " << fires.front().fire_ms << " and "
                        << fires.back().fire_ms;
  EXPECT_EQ(Runs(wf).size(), fires.size());  // and no run without its occurrence
  std::printf("covered %zu consecutive occurrences, %zu runs\n", fires.size(), run_ids.size());
}

TEST_F(SchedulerProcessTest, RestartAfterDowntimeObeysTheMisfirePolicy) {
  auto skip =
      ApplyWorkflowSource(*store_, CronWorkflow("mf-skip", "* * * * * *", "    misfire: skip\n"));
  auto once = ApplyWorkflowSource(
      *store_, CronWorkflow("mf-once", "* * * * * *", "    misfire: run_once\n"));
  auto catchup = ApplyWorkflowSource(
      *store_,
      CronWorkflow("mf-catch", "* * * * * *", "    misfire: catch_up\n    catch_up_max: 3\n"));
  std::vector<std::string> grace = {"--misfire-grace", "1s"};
  // The late runs the restarted scheduler's first tick made for the missed span. A loaded
  // machine may stall a tick past the 1 s grace at any other time too, and the policy rightly
  // fires that occurrence late as well; those come later and are not counted. The first tick
  // is the earliest creation among the runs made after `restart_ms`; its missed occurrences are
  // the ones more than the grace before it.
  int64_t restart_ms = 0;
  auto late_runs = [&](const Workflow& wf, int64_t* missed_count) {
    std::map<std::string, int64_t> created;  // runs made after the restart
    int64_t first_tick = std::numeric_limits<int64_t>::max();
    for (const auto& r : Runs(wf)) {
      if (restart_ms == 0 || r.created_ms < restart_ms) continue;
      created[r.id] = r.created_ms;
      first_tick = std::min(first_tick, r.created_ms);
    }
    int late = 0;
    for (const auto& f : Fires(wf)) {
      if (created.count(f.run_id) == 0 || f.fire_ms > first_tick - 1000) continue;
      // null while the run's run.created event is not yet stored: it counts on a later poll.
      Json t = TriggerContext(f.run_id);
      if (!t.is_object()) continue;
      if (t.value("late", false)) ++late;
      if (missed_count && t.contains("missed_count")) *missed_count = t["missed_count"];
    }
    return late;
  };
  auto all_late = [&](const Workflow& wf) {
    int late = 0;
    for (const auto& r : Runs(wf)) {
      Json t = TriggerContext(r.id);
      if (t.is_object() && t.value("late", false)) ++late;
    }
    return late;
  };
  auto max_gap = [&](const Workflow& wf) {
    auto f = Fires(wf);
    int64_t gap = 0;
    for (size_t i = 1; i < f.size(); ++i) gap = std::max(gap, f[i].fire_ms - f[i - 1].fire_ms);
    return gap;
  };

  auto first = StartScheduler("s1", grace);
  ASSERT_TRUE(first->WaitForOutput("leading", seconds(10))) << first->Stderr();
  ASSERT_TRUE(Eventually(
      [&] {
        return Fires(skip).size() >= 2 && Fires(once).size() >= 2 && Fires(catchup).size() >= 2;
      },
      seconds(30)));
  first->Signal(SIGTERM);
  ASSERT_EQ(first->Wait(seconds(10)), 0);
  // The downtime itself: occurrences can only be missed by letting them pass (7, give or take).
  SleepMs(7000);
  restart_ms = WallNowMs();
  auto second = StartScheduler("s2", grace);
  ASSERT_TRUE(second->WaitForOutput("leading", seconds(10))) << second->Stderr();
  // The first tick after the restart handles the whole missed span (and skip fires its first
  // on-time occurrence after the gap); wait until it has.
  EXPECT_TRUE(Eventually(
      [&] {
        return late_runs(catchup, nullptr) >= 3 && late_runs(once, nullptr) >= 1 &&
               max_gap(skip) >= 5000;
      },
      seconds(30)));
  second->Signal(SIGTERM);
  ASSERT_EQ(second->Wait(seconds(10)), 0);

  EXPECT_EQ(all_late(skip), 0);    // skip never fires late, stalled or not
  EXPECT_GE(max_gap(skip), 5000);  // the missed span fired nothing
  int64_t missed = 0;
  EXPECT_EQ(late_runs(once, &missed), 1);
  EXPECT_GE(missed, 5);                       // one run stands for the whole missed span
  EXPECT_EQ(late_runs(catchup, nullptr), 3);  // catch_up_max of the missed ones
  for (const auto* wf : {&skip, &once, &catchup}) {
    std::set<std::string> ids;
    for (const auto& f : Fires(*wf)) ids.insert(f.run_id);
    EXPECT_EQ(ids.size(), Fires(*wf).size());
  }
  std::printf("run_once stood for %lld missed occurrences\n", static_cast<long long>(missed));
}

TEST_F(SchedulerProcessTest, OverlapPoliciesWithASlowWorkflow) {
  auto allow = ApplyWorkflowSource(
      *store_, CronWorkflow("ov-allow", "*/2 * * * * *", "    overlap: allow\n", "3s"));
  auto skip = ApplyWorkflowSource(
      *store_, CronWorkflow("ov-skip", "*/2 * * * * *", "    overlap: skip\n", "3s"));
  auto queue = ApplyWorkflowSource(
      *store_, CronWorkflow("ov-queue", "*/2 * * * * *", "    overlap: queue\n", "3s"));
  auto overlaps = [&](const Workflow& wf) {
    auto runs = Runs(wf);
    int n = 0;
    for (const auto& x : runs) {
      for (const auto& y : runs) {
        if (x.id < y.id && x.started_ms > 0 && y.started_ms > 0 &&
            x.started_ms < (y.finished_ms ? y.finished_ms : INT64_MAX) &&
            y.started_ms < (x.finished_ms ? x.finished_ms : INT64_MAX)) {
          ++n;
        }
      }
    }
    return n;
  };
  auto without_run = [&](const Workflow& wf) {
    int n = 0;
    for (const auto& f : Fires(wf)) n += f.run_id.empty() ? 1 : 0;
    return n;
  };
  // queue: runs created well after their occurrence (they waited for the previous one).
  auto waited_runs = [&](const Workflow& wf) {
    int n = 0;
    for (const auto& r : Runs(wf)) {
      // null while a cron run's run.created event is not yet stored (the scheduler writes it
      // after the run, in a second commit): the run counts on a later look.
      Json t = TriggerContext(r.id);
      if (!t.is_object() || !t.contains("fire_ms")) continue;
      if (r.created_ms - t["fire_ms"].get<int64_t>() > 1500) ++n;
    }
    return n;
  };

  auto worker = StartWorker();
  auto sched = StartScheduler("ov", {"--misfire-grace", "2s"});
  ASSERT_TRUE(sched->WaitForOutput("leading", seconds(10))) << sched->Stderr();
  // Until each policy has shown its behaviour at least once (about 10 s on an idle machine).
  EXPECT_TRUE(Eventually(
      [&] { return overlaps(allow) > 0 && without_run(skip) > 0 && waited_runs(queue) > 0; },
      seconds(90)));
  sched->Signal(SIGTERM);
  ASSERT_EQ(sched->Wait(seconds(10)), 0);
  // The runs already started finish on the worker (3 s each; queue's run one after the other).
  EXPECT_TRUE(Eventually(
      [&] {
        for (const auto* wf : {&allow, &skip, &queue}) {
          for (const auto& r : Runs(*wf)) {
            if (!IsTerminal(r.status)) return false;
          }
        }
        return true;
      },
      seconds(60)));

  EXPECT_GT(overlaps(allow), 0) << "allow: runs should overlap";
  EXPECT_EQ(overlaps(skip), 0);
  EXPECT_GT(without_run(skip), 0) << "skip: occurrences during a run are recorded without one";
  EXPECT_EQ(overlaps(queue), 0);
  EXPECT_EQ(without_run(queue), 0);
  // queue: later runs were created well after their occurrence (they waited), and still ran.
  const int waited = waited_runs(queue);
  EXPECT_GT(waited, 0);
  for (const auto& r : Runs(queue)) EXPECT_EQ(r.status, RunStatus::kSucceeded) << r.id;
  std::printf(
      "allow: %zu runs, %d overlapping pairs; skip: %zu runs, %d skipped; queue: %zu "
      "runs, %d waited\n",
      Runs(allow).size(), overlaps(allow), Runs(skip).size(), without_run(skip), Runs(queue).size(),
      waited);
}

// ---------------------------------------------------------------------------------------------
// Two dispatchers on one occurrence
//
// The leader lease keeps schedulers apart almost always, so these tests make the rare case
// happen every time: scheduler A is paused (gate.h) inside its dispatch, right before it records
// occurrence T, while another dispatcher fires T. When A wakes and records T too, the store's
// unique (trigger, fire time) record must turn it away: one run for T, whatever the timing.

// What A's paused dispatch shares between its stores and its lease.
struct Paused {
  Gate work;                        // A's dispatch waits here, in its first CreateCronRun
  Gate lease;                       // A's lease calls wait here once the dispatch is paused
  std::atomic<int64_t> fire_ms{0};  // the occurrence A was about to record
  std::atomic<bool> reached{false};
  std::atomic<int> outcome{-1};  // A's CreateCronRun for it: -1 not returned, 0 duplicate,
                                 // 1 created a run, 2 error
  void Open() {
    work.Open();
    lease.Open();
  }
};

class PausingStore : public OwningStoreWrapper {
 public:
  PausingStore(std::unique_ptr<Store> target, Paused& paused)
      : OwningStoreWrapper(std::move(target)), paused_(paused) {}
  Result<std::optional<ferry::Run>> CreateCronRun(const std::string& trigger_id, int64_t fire_ms,
                                                  const CreateRunRequest& request) override {
    const bool first = !paused_.reached.exchange(true);
    if (first) {
      paused_.fire_ms = fire_ms;
      paused_.work.Arrive();
    }
    auto r = OwningStoreWrapper::CreateCronRun(trigger_id, fire_ms, request);
    if (first) paused_.outcome = !r ? 2 : (*r ? 1 : 0);
    return r;
  }

 private:
  Paused& paused_;
};

// A's lease: frozen with the rest of A while its dispatch is paused, so the lease lapses.
class PausingLease : public LeaderLease {
 public:
  PausingLease(std::unique_ptr<LeaderLease> target, Paused& paused)
      : LeaderLease(target->options()), target_(std::move(target)), paused_(paused) {}
  Result<LeaseState> TryAcquire() override {
    Hold();
    return target_->TryAcquire();
  }
  Result<LeaseState> Renew() override {
    Hold();
    return target_->Renew();
  }
  Status Release() override { return target_->Release(); }
  Result<LeaseState> Inspect() override { return target_->Inspect(); }

 private:
  void Hold() {
    if (paused_.reached.load()) paused_.lease.Arrive();
  }
  std::unique_ptr<LeaderLease> target_;
  Paused& paused_;
};

class CronRaceTest : public SchedulerProcessTest {
 protected:
  void SetUp() override {
    SchedulerProcessTest::SetUp();
    auto f = MakeStoreFactory(db_);
    ASSERT_TRUE(f) << f.error().message;
    stores_ = std::move(*f);
    paused_stores_ = std::make_unique<WrappingStoreFactory>(
        *stores_, [this](std::unique_ptr<Store> s) -> std::unique_ptr<Store> {
          return std::make_unique<PausingStore>(std::move(s), paused_);
        });
    BrokerOptions bo;
    bo.redis_url = redis_.url();
    bo.prefix = "sched";
    brokers_ = MakeRedisBrokerFactory(bo);
    // Every second; an occurrence found late is caught up, not dropped, so whoever comes second
    // (on time or late) still tries to record it.
    wf_ = ApplyWorkflowSource(
        *store_,
        CronWorkflow("race", "* * * * * *", "    misfire: catch_up\n    catch_up_max: 100\n"));
  }

  // A paused scheduler can only stop once the gates are open.
  void TearDown() override {
    paused_.Open();
    if (a_) a_->Stop();
  }

  scheduler::SchedulerOptions Options(const std::string& id) {
    scheduler::SchedulerOptions o;
    o.id = id;
    o.tick = milliseconds(100);
    o.lease = seconds(1);
    o.dispatch.misfire_grace = seconds(60);
    o.promote_interval = milliseconds(0);
    o.recovery_interval = milliseconds(0);
    o.retention_interval = milliseconds(0);
    return o;
  }

  // Scheduler A: its stores pause in the first CreateCronRun; with `freeze_lease`, its lease
  // calls pause too from then on (the whole process is frozen, as by SIGSTOP).
  scheduler::Scheduler& StartPausedLeader(bool freeze_lease) {
    auto o = Options("sched-a");
    if (freeze_lease) {
      o.make_lease = [this](const std::string& holder,
                            milliseconds ttl) -> Result<std::unique_ptr<LeaderLease>> {
        auto real =
            MakeRedisLeaderLease(brokers_->options(), LeaderLeaseOptions{"scheduler", holder, ttl});
        if (!real) return Fail(real.error());
        return std::unique_ptr<LeaderLease>(
            std::make_unique<PausingLease>(std::move(*real), paused_));
      };
    }
    a_ = std::make_unique<scheduler::Scheduler>(*paused_stores_, *brokers_, o);
    auto st = a_->Start();
    EXPECT_TRUE(st) << st.error().message;
    return *a_;
  }

  // Runs per occurrence, from each run's run.created event.
  std::map<int64_t, int> RunsPerOccurrence() {
    std::map<int64_t, int> n;
    for (const auto& r : Runs(wf_)) {
      Json t = TriggerContext(r.id);
      ++n[t.is_object() ? t.value("fire_ms", int64_t{0}) : int64_t{0}];
    }
    return n;
  }

  bool Recorded(int64_t fire_ms) {
    for (const auto& f : Fires(wf_)) {
      if (f.fire_ms == fire_ms) return !f.run_id.empty();
    }
    return false;
  }

  // One run per occurrence, T among them, and every fire record names its own run.
  void ExpectOneRunPerOccurrence(int64_t t) {
    auto per = RunsPerOccurrence();
    EXPECT_EQ(per[t], 1) << "runs for the occurrence both dispatchers recorded";
    for (const auto& [fire_ms, n] : per) EXPECT_EQ(n, 1) << "occurrence " << fire_ms;
    std::set<std::string> linked;
    for (const auto& f : Fires(wf_)) {
      if (f.run_id.empty()) continue;
      EXPECT_TRUE(linked.insert(f.run_id).second) << f.run_id;
    }
    EXPECT_EQ(linked.size(), Runs(wf_).size());
  }

  Paused paused_;
  std::unique_ptr<StoreFactory> stores_;
  std::unique_ptr<WrappingStoreFactory> paused_stores_;
  std::unique_ptr<BrokerFactory> brokers_;
  Workflow wf_;
  std::unique_ptr<scheduler::Scheduler> a_;  // the paused one
};

// A deposed leader that wakes up: A is frozen (dispatch and lease) right before recording T; its
// lease lapses, B takes over and fires T; then A wakes, still in the middle of its tick.
TEST_F(CronRaceTest, DeposedLeaderWakingUpMakesNoSecondRun) {
  scheduler::Scheduler& a = StartPausedLeader(/*freeze_lease=*/true);
  ASSERT_TRUE(paused_.work.WaitArrived(seconds(30))) << "A never dispatched";
  const int64_t t = paused_.fire_ms.load();
  EXPECT_EQ(a.token(), 1);

  scheduler::Scheduler b(*stores_, *brokers_, Options("sched-b"));
  ASSERT_TRUE(b.Start());
  ASSERT_TRUE(Eventually([&] { return Recorded(t); }, seconds(30)))
      << "B never fired the occurrence A holds";
  EXPECT_TRUE(b.IsLeader());
  EXPECT_EQ(b.token(), 2);

  paused_.Open();
  ASSERT_TRUE(Eventually([&] { return paused_.outcome.load() >= 0; }, seconds(30)));
  EXPECT_TRUE(Eventually([&] { return !a.IsLeader(); }, seconds(10))) << "A still leads";
  a.Stop();
  b.Stop();
  EXPECT_EQ(paused_.outcome.load(), 0) << "A's late record of the occurrence was not refused";
  EXPECT_EQ(a.stats().fired, 0);
  EXPECT_GE(a.stats().duplicates, 1);
  EXPECT_GE(b.stats().fired, 1);
  ExpectOneRunPerOccurrence(t);
}

// The on-demand dispatch endpoint racing the leader: A leads and is paused right before recording
// T; POST /api/v1/triggers/cron/dispatch on a `ferry server start` process fires T; A goes on.
TEST_F(CronRaceTest, DispatchEndpointRacingTheLeaderMakesOneRun) {
  scheduler::Scheduler& a = StartPausedLeader(/*freeze_lease=*/false);
  ASSERT_TRUE(paused_.work.WaitArrived(seconds(30))) << "A never dispatched";
  const int64_t t = paused_.fire_ms.load();

  const std::string token = "fy_" + RandomHex(32);
  ASSERT_TRUE(store_->CreateApiToken("race", Sha256Hex(token), {"admin"}));
  const int port = FreePort();
  Process server(Process::Options{
      {FerryBinary(), "--redis-url", redis_.url(), "--prefix", "sched", "server", "start",
       "--listen", "127.0.0.1:" + std::to_string(port), "--store", db_, "--no-sweeper"},
      {},
      "",
      ""});
  httplib::Client api("127.0.0.1", port);
  api.set_bearer_token_auth(token.c_str());
  api.set_read_timeout(30, 0);
  ASSERT_TRUE(Eventually(
      [&] {
        auto r = api.Get("/healthz");
        return r && r->status == 200;
      },
      seconds(20)))
      << server.Stderr();
  auto res = api.Post("/api/v1/triggers/cron/dispatch", "{}", "application/json");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  Json report = Json::parse(res->body);
  bool fired_t = false;
  for (const auto& o : report["outcomes"]) {
    if (o["fire_time"] == FormatIsoMs(t)) fired_t = o["action"] == "fired";
  }
  EXPECT_TRUE(fired_t) << "the endpoint did not fire the occurrence A holds: " << res->body;
  EXPECT_TRUE(Recorded(t));

  paused_.Open();
  ASSERT_TRUE(Eventually([&] { return paused_.outcome.load() >= 0; }, seconds(30)));
  // A goes on leading (and firing later occurrences) until stopped.
  a.Stop();
  EXPECT_EQ(paused_.outcome.load(), 0) << "A's record of the occurrence was not refused";
  EXPECT_GE(a.stats().duplicates, 1);
  server.Signal(SIGTERM);
  server.Wait(seconds(10));
  ExpectOneRunPerOccurrence(t);
}

// ---------------------------------------------------------------------------------------------
// ferry schedule

TEST_F(SchedulerProcessTest, ScheduleCommands) {
  auto next = RunCommand({FerryBinary(), "--json", "schedule", "next", "30 2 * * *", "--timezone",
                          "America/New_York", "--from", "2026-03-07T00:00:00", "--count", "3"});
  ASSERT_EQ(next.exit_code, 0) << next.err;
  auto j = ParseJson(next.out);
  ASSERT_TRUE(j) << next.out;
  EXPECT_EQ(*j, Json::parse(R"({"fire_times": ["2026-03-07T02:30:00-05:00",
                               "2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00"]})"));
  auto human = RunCommand({FerryBinary(), "schedule", "next", "0 1 * * *", "--tz",
                           "America/New_York", "--from", "2026-10-31T12:00:00Z", "-n", "2"});
  ASSERT_EQ(human.exit_code, 0) << human.err;
  EXPECT_EQ(human.out, "2026-11-01T01:00:00-04:00\n2026-11-02T01:00:00-05:00\n");
  auto bad = RunCommand({FerryBinary(), "schedule", "next", "0 0 32 * *"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_TRUE(Contains(bad.err, "day-of-month")) << bad.err;
  EXPECT_TRUE(Contains(bad.err, "position")) << bad.err;
  auto badzone = RunCommand({FerryBinary(), "schedule", "next", "@hourly", "--tz", "Nowhere/X"});
  EXPECT_EQ(badzone.exit_code, 2) << badzone.err;
  // Given empty (an unset variable) is named, not read as UTC.
  auto nozone = RunCommand({FerryBinary(), "schedule", "next", "@hourly", "--tz", ""});
  EXPECT_EQ(nozone.exit_code, 2) << nozone.out;
  EXPECT_EQ(nozone.err,
            "ferry: --timezone must not be empty: name an IANA time zone such as UTC or "
            "Europe/Paris\n");

  ApplyWorkflowSource(*store_, CronWorkflow("listed", "0 9 * * MON-FRI",
                                            "    timezone: Europe/Paris\n    overlap: queue\n"));
  auto list = RunCommand({FerryBinary(), "--json", "schedule", "list", "--store", db_});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  auto listed = ParseJson(list.out);
  ASSERT_TRUE(listed && listed->contains("schedules") && listed->contains("next_cursor"))
      << list.out;
  const Json* lj = &(*listed)["schedules"];
  ASSERT_EQ(lj->size(), 1u) << list.out;
  EXPECT_EQ((*lj)[0]["workflow"], "listed");
  EXPECT_EQ((*lj)[0]["timezone"], "Europe/Paris");
  EXPECT_EQ((*lj)[0]["overlap"], "queue");
  EXPECT_EQ((*lj)[0]["next_fire_times"].size(), 3u);
  EXPECT_TRUE(Contains((*lj)[0]["next_fire_times"][0].get<std::string>(), "T09:00:00+0"));
  EXPECT_EQ((*lj)[0]["waiting_fire_at"], nullptr) << list.out;
  // An occurrence held for the run before it (the cursor left on a past time) is a field of its
  // own, a time a client can parse; the table marks it.
  auto listed_wf = store_->GetWorkflow("listed");
  ASSERT_TRUE(listed_wf && *listed_wf);
  ASSERT_TRUE(store_->UpdateTriggerFireTimes(TriggerId(**listed_wf), 0, 1767600000000));
  auto held = RunCommand({FerryBinary(), "--json", "schedule", "list", "--store", db_});
  auto held_json = ParseJson(held.out);
  ASSERT_TRUE(held_json) << held.out;
  const Json& h = (*held_json)["schedules"][0];
  EXPECT_EQ(h["waiting_fire_at"], "2026-01-05T09:00:00+01:00") << held.out;
  EXPECT_EQ(h["next_fire_times"].size(), 3u) << held.out;
  for (const Json& t : h["next_fire_times"]) {
    EXPECT_FALSE(Contains(t.get<std::string>(), "waiting")) << held.out;
  }
  auto held_table = RunCommand({FerryBinary(), "--ascii", "schedule", "list", "--store", db_});
  EXPECT_TRUE(Contains(held_table.out, "2026-01-05T09:00:00+01:00 (waiting), ")) << held_table.out;
  auto pause = RunCommand({FerryBinary(), "schedule", "pause", "listed", "--store", db_});
  ASSERT_EQ(pause.exit_code, 0) << pause.err;
  auto wf = store_->GetWorkflow("listed");
  EXPECT_TRUE((*wf)->paused);
  auto table = RunCommand({FerryBinary(), "--ascii", "schedule", "list", "--store", db_});
  EXPECT_TRUE(Contains(table.out, "yes")) << table.out;
  auto resume = RunCommand({FerryBinary(), "schedule", "resume", "listed", "--store", db_});
  ASSERT_EQ(resume.exit_code, 0) << resume.err;
  EXPECT_FALSE((*store_->GetWorkflow("listed"))->paused);
  auto missing = RunCommand({FerryBinary(), "schedule", "pause", "nope", "--store", db_});
  EXPECT_EQ(missing.exit_code, 1) << missing.err;
}

}  // namespace
}  // namespace ferry::testing
