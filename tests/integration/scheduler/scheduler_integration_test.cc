// The scheduler against real servers: leader lease semantics on redis-server; two `ferry
// scheduler start` processes with a per-second schedule and a kill -9 of the leader (exactly one
// run per occurrence, none missed); restart after downtime (misfire policies); overlap policies
// with a slow workflow run by a real worker; `ferry schedule` commands.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <set>

#include "apply_workflow.h"
#include "broker/leader.h"
#include "harness.h"
#include "scheduler/plan.h"
#include "store/store.h"

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
    EXPECT_TRUE(l) << (l ? "" : l.error().message);
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
  ASSERT_TRUE(a->TryAcquire()->held);
  SleepMs(450);
  auto rb = b->TryAcquire();
  ASSERT_TRUE(rb);
  EXPECT_TRUE(rb->held);
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
  SleepMs(12'000);
  EXPECT_FALSE(Contains(b->Stderr(), "leading")) << b->Stderr();

  a->Signal(SIGKILL);
  a->Wait(seconds(5));
  auto killed = std::chrono::steady_clock::now();
  ASSERT_TRUE(b->WaitForOutput("leading (fencing token 2)", seconds(10))) << b->Stderr();
  auto takeover =
      std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - killed);
  EXPECT_LT(takeover.count(), 6000);
  std::printf("takeover after kill -9: %lld ms\n", static_cast<long long>(takeover.count()));
  SleepMs(12'000);
  b->Signal(SIGTERM);
  ASSERT_EQ(b->Wait(seconds(10)), 0) << b->Stderr();

  auto fires = Fires(wf);
  ASSERT_GT(fires.size(), 25u);
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
  auto first = StartScheduler("s1", grace);
  ASSERT_TRUE(first->WaitForOutput("leading", seconds(10))) << first->Stderr();
  SleepMs(3000);
  first->Signal(SIGTERM);
  ASSERT_EQ(first->Wait(seconds(10)), 0);
  SleepMs(7000);  // ~7 occurrences missed
  auto second = StartScheduler("s2", grace);
  ASSERT_TRUE(second->WaitForOutput("leading", seconds(10))) << second->Stderr();
  SleepMs(2500);
  second->Signal(SIGTERM);
  ASSERT_EQ(second->Wait(seconds(10)), 0);

  auto late_runs = [&](const Workflow& wf, int64_t* missed_count) {
    int late = 0;
    for (const auto& r : Runs(wf)) {
      Json t = TriggerContext(r.id);
      if (t.value("late", false)) ++late;
      if (missed_count && t.contains("missed_count")) *missed_count = t["missed_count"];
    }
    return late;
  };
  auto max_gap = [&](const Workflow& wf) {
    auto f = Fires(wf);
    int64_t gap = 0;
    for (size_t i = 1; i < f.size(); ++i) gap = std::max(gap, f[i].fire_ms - f[i - 1].fire_ms);
    return gap;
  };
  EXPECT_EQ(late_runs(skip, nullptr), 0);
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
  auto worker = StartWorker();
  auto sched = StartScheduler("ov", {"--misfire-grace", "2s"});
  ASSERT_TRUE(sched->WaitForOutput("leading", seconds(10))) << sched->Stderr();
  SleepMs(14'000);
  sched->Signal(SIGTERM);
  ASSERT_EQ(sched->Wait(seconds(10)), 0);
  SleepMs(4000);  // let started runs finish

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
  EXPECT_GT(overlaps(allow), 0) << "allow: runs should overlap";
  EXPECT_EQ(overlaps(skip), 0);
  EXPECT_GT(without_run(skip), 0) << "skip: occurrences during a run are recorded without one";
  EXPECT_EQ(overlaps(queue), 0);
  EXPECT_EQ(without_run(queue), 0);
  // queue: later runs were created well after their occurrence (they waited), and still ran.
  int waited = 0;
  for (const auto& r : Runs(queue)) {
    Json t = TriggerContext(r.id);
    if (r.created_ms - t.value("fire_ms", r.created_ms) > 1500) ++waited;
  }
  EXPECT_GT(waited, 0);
  std::printf(
      "allow: %zu runs, %d overlapping pairs; skip: %zu runs, %d skipped; queue: %zu "
      "runs, %d waited\n",
      Runs(allow).size(), overlaps(allow), Runs(skip).size(), without_run(skip), Runs(queue).size(),
      waited);
}

// ---------------------------------------------------------------------------------------------
// ferry schedule

TEST_F(SchedulerProcessTest, ScheduleCommands) {
  auto next = RunCommand({FerryBinary(), "--json", "schedule", "next", "30 2 * * *", "--timezone",
                          "America/New_York", "--from", "2026-03-07T00:00:00", "--count", "3"});
  ASSERT_EQ(next.exit_code, 0) << next.err;
  auto j = ParseJson(next.out);
  ASSERT_TRUE(j) << next.out;
  EXPECT_EQ(*j, Json::parse(R"(["2026-03-07T02:30:00-05:00","2026-03-08T03:00:00-04:00",
                               "2026-03-09T02:30:00-04:00"])"));
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

  ApplyWorkflowSource(*store_, CronWorkflow("listed", "0 9 * * MON-FRI",
                                            "    timezone: Europe/Paris\n    overlap: queue\n"));
  auto list = RunCommand({FerryBinary(), "--json", "schedule", "list", "--store", db_});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  auto lj = ParseJson(list.out);
  ASSERT_TRUE(lj && lj->size() == 1) << list.out;
  EXPECT_EQ((*lj)[0]["workflow"], "listed");
  EXPECT_EQ((*lj)[0]["timezone"], "Europe/Paris");
  EXPECT_EQ((*lj)[0]["overlap"], "queue");
  EXPECT_EQ((*lj)[0]["next_fire_times"].size(), 3u);
  EXPECT_TRUE(Contains((*lj)[0]["next_fire_times"][0].get<std::string>(), "T09:00:00+0"));
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
