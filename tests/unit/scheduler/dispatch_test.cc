// Cron dispatch against a real SQLite store (a file in a TempDir), a FakeBroker and a FakeClock:
// exactly once, inputs, misfire after downtime, overlap policies, pause, duties.
#include "scheduler/dispatch.h"

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <set>
#include <sstream>

#include "apply_workflow.h"
#include "engine/ingest.h"
#include "engine/template.h"
#include "fake_broker.h"
#include "harness.h"
#include "scheduler/duties.h"

namespace ferry::scheduler {
namespace {

using Action = FireOutcome::Action;
using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::ApplyWorkflowSource;
using testing::CronWorkflow;

int64_t Ms(const std::string& iso) { return ToMs(*cron::ParseIso8601(iso, nullptr)); }

class DispatchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    clock_.SetMs(Ms("2026-03-02T10:00:00.500Z"));
    StoreOptions o;
    o.clock = &clock_;
    auto f = MakeStoreFactory((dir_.path() / "ferry.db").string(), o);
    ASSERT_TRUE(f);
    factory_ = std::move(*f);
    auto s = factory_->Open();
    ASSERT_TRUE(s) << s.error().message;
    store_ = std::move(*s);
  }

  DispatchReport Tick(Store* store = nullptr) {
    DispatchOptions o;
    o.misfire_grace = seconds(5);
    auto r = DispatchCron(store ? *store : *store_, broker_, clock_, o);
    EXPECT_TRUE(r) << (r ? "" : r.error().message);
    return r ? *r : DispatchReport{};
  }

  // Advances the clock second by second, dispatching after each step.
  void RunFor(int secs) {
    for (int i = 0; i < secs; ++i) {
      clock_.Advance(seconds(1));
      Tick();
    }
  }

  std::vector<ferry::Run> CronRuns(const std::string& workflow_id) {
    RunFilter f;
    f.workflow_id = workflow_id;
    f.limit = 1000;
    auto page = store_->ListRuns(f);
    EXPECT_TRUE(page);
    std::vector<ferry::Run> out(page->runs.rbegin(), page->runs.rend());  // oldest first
    return out;
  }

  std::vector<std::string> ScheduledFor(const std::vector<ferry::Run>& runs) {
    std::vector<std::string> out;
    for (const auto& r : runs) {
      auto j = ParseJson(r.inputs);
      out.push_back(j->value("scheduled_for", "?"));
    }
    return out;
  }

  Trigger OnlyTrigger(const std::string& workflow_id) {
    TriggerFilter f;
    f.workflow_id = workflow_id;
    auto t = store_->ListTriggers(f);
    EXPECT_TRUE(t && t->size() == 1);
    return t->at(0);
  }

  testing::TempDir dir_;
  FakeClock clock_;
  std::unique_ptr<StoreFactory> factory_;
  std::unique_ptr<Store> store_;
  testing::FakeBroker broker_;
};

TEST_F(DispatchTest, PerSecondScheduleFiresEachOccurrenceOnceWithInputs) {
  auto wf = ApplyWorkflowSource(
      *store_, CronWorkflow("tick", "* * * * * *", "    timezone: Asia/Kolkata\n"));
  RunFor(10);
  auto runs = CronRuns(wf.id);
  ASSERT_EQ(runs.size(), 10u);
  EXPECT_EQ(ScheduledFor(runs).front(), "2026-03-02T15:30:01+05:30");
  EXPECT_EQ(ScheduledFor(runs).back(), "2026-03-02T15:30:10+05:30");
  for (const auto& r : runs) {
    EXPECT_EQ(r.triggered_by, TriggeredBy::kCron);
    EXPECT_FALSE(r.trigger_id.empty());
    EXPECT_EQ(ParseJson(r.inputs)->value("timezone", ""), "Asia/Kolkata");
  }
  EXPECT_EQ(broker_.submitted.size(), 10u);  // each enqueued once, run id as unique key
  EXPECT_EQ(broker_.submitted[0].unique_key, runs[0].id);
  auto t = OnlyTrigger(wf.id);
  EXPECT_EQ(t.last_fire_ms, Ms("2026-03-02T10:00:10Z"));
  EXPECT_EQ(t.next_fire_ms, Ms("2026-03-02T10:00:11Z"));
  // The trigger context for templates is in run.created.
  auto events = store_->ListRunEvents(runs[0].id, 0, 10);
  ASSERT_TRUE(events && !events->empty());
  EXPECT_EQ(events->at(0).type, "run.created");
  EXPECT_NE(events->at(0).data.find("\"scheduled_for\":\"2026-03-02T15:30:01+05:30\""),
            std::string::npos)
      << events->at(0).data;
}

// A cron run's templates read its trigger object (the run.created event), late and missed_count
// included as docs/scheduler.md lists them, and ingestion lets a template read every field the
// object holds.
TEST_F(DispatchTest, CronRunTemplatesReadTheTriggerObject) {
  const std::string source =
      "name: late\ntriggers:\n  cron:\n    schedule: \"* * * * *\"\n    misfire: run_once\n"
      "nodes:\n  a:\n    kind: fail\n"
      "    message: \"late={{ trigger.late }} missed={{ trigger.missed_count }}\"\n";
  auto wf = ApplyWorkflowSource(*store_, source);
  ASSERT_FALSE(wf.id.empty());
  clock_.SetMs(Ms("2026-03-02T10:01:01Z"));
  Tick();
  clock_.SetMs(Ms("2026-03-02T10:05:02Z"));  // 10:02..10:04 missed: one run for them, then 10:05
  Tick();
  auto runs = CronRuns(wf.id);
  ASSERT_EQ(runs.size(), 3u);
  auto events = store_->ListRunEvents(runs[1].id, 0, 1);
  ASSERT_TRUE(events && !events->empty());
  const Json trigger = ParseJson(events->at(0).data)->at("trigger");
  for (const auto& [key, value] : trigger.items()) {
    EXPECT_NE(std::find(std::begin(engine::kCronTriggerFields),
                        std::end(engine::kCronTriggerFields), key),
              std::end(engine::kCronTriggerFields))
        << "trigger." << key << " is stored but ingestion refuses it";
  }
  auto ingested = engine::IngestWorkflow(source);
  ASSERT_TRUE(ingested) << ingested.error().message;
  auto message =
      engine::Template::Parse(std::get<engine::FailSpec>(ingested->workflow.nodes[0].spec).message);
  ASSERT_TRUE(message);
  const Json root{{"trigger", trigger}};
  engine::Scope scope;
  scope.root = &root;
  EXPECT_EQ(message->RenderString(scope).value_or("?"), "late=true missed=3");
}

TEST_F(DispatchTest, TwoSchedulersRacingCreateOneRunPerOccurrence) {
  auto wf = ApplyWorkflowSource(*store_, CronWorkflow("race", "* * * * * *"));
  auto second = factory_->Open();
  ASSERT_TRUE(second);
  int64_t duplicates = 0;
  for (int i = 0; i < 20; ++i) {
    clock_.Advance(seconds(1));
    // Both see the same due occurrences (the second one's view is as stale as can be: it lists
    // before the first writes); only one may create each run.
    Tick();
    auto r = Tick(second->get());
    duplicates += r.Count(Action::kDuplicate);
  }
  auto runs = CronRuns(wf.id);
  ASSERT_EQ(runs.size(), 20u);
  std::set<std::string> times;
  for (const auto& s : ScheduledFor(runs)) times.insert(s);
  EXPECT_EQ(times.size(), 20u);
  auto fires = store_->ListCronFires(OnlyTrigger(wf.id).id, 100);
  ASSERT_TRUE(fires);
  EXPECT_EQ(fires->size(), 20u);
  (void)duplicates;
}

TEST_F(DispatchTest, DowntimeMisfireSkipRunOnceCatchUp) {
  auto skip =
      ApplyWorkflowSource(*store_, CronWorkflow("m-skip", "* * * * *", "    misfire: skip\n"));
  auto once =
      ApplyWorkflowSource(*store_, CronWorkflow("m-once", "* * * * *", "    misfire: run_once\n"));
  auto catchup = ApplyWorkflowSource(
      *store_,
      CronWorkflow("m-catch", "* * * * *", "    misfire: catch_up\n    catch_up_max: 4\n"));
  clock_.SetMs(Ms("2026-03-02T10:01:01Z"));
  Tick();                                    // 10:01 on time for all three
  clock_.SetMs(Ms("2026-03-02T10:30:02Z"));  // down for 29 minutes: 10:02..10:29 missed
  auto report = Tick();
  EXPECT_EQ(CronRuns(skip.id).size(), 1u + 1u);
  EXPECT_EQ(CronRuns(once.id).size(), 1u + 2u);
  EXPECT_EQ(CronRuns(catchup.id).size(), 1u + 5u);
  EXPECT_EQ(ScheduledFor(CronRuns(once.id))[1], "2026-03-02T10:29:00+00:00");
  EXPECT_EQ(ParseJson(CronRuns(once.id)[1].inputs)->value("missed_count", 0), 28);
  EXPECT_EQ(ScheduledFor(CronRuns(catchup.id)),
            (std::vector<std::string>{"2026-03-02T10:01:00+00:00", "2026-03-02T10:26:00+00:00",
                                      "2026-03-02T10:27:00+00:00", "2026-03-02T10:28:00+00:00",
                                      "2026-03-02T10:29:00+00:00", "2026-03-02T10:30:00+00:00"}));
  EXPECT_EQ(report.Count(Action::kSkippedMisfire), 28 + 27 + 24);
}

TEST_F(DispatchTest, OverlapSkipRecordsSkippedOccurrences) {
  auto wf =
      ApplyWorkflowSource(*store_, CronWorkflow("o-skip", "* * * * * *", "    overlap: skip\n"));
  RunFor(1);
  auto first = CronRuns(wf.id);
  ASSERT_EQ(first.size(), 1u);
  ASSERT_TRUE(store_->MarkRunRunning(first[0].id, 1, "w"));
  RunFor(3);  // a run is active: 3 occurrences skipped
  EXPECT_EQ(CronRuns(wf.id).size(), 1u);
  auto fires = store_->ListCronFires(OnlyTrigger(wf.id).id, 100);
  ASSERT_EQ(fires->size(), 4u);
  EXPECT_EQ(fires->at(0).run_id, "");  // recorded without a run
  ASSERT_TRUE(store_->FinishRun(first[0].id, 1, RunStatus::kSucceeded, "{}", "", ""));
  RunFor(1);
  EXPECT_EQ(CronRuns(wf.id).size(), 2u);
}

TEST_F(DispatchTest, OverlapQueueHoldsThenFiresInOrder) {
  auto wf =
      ApplyWorkflowSource(*store_, CronWorkflow("o-queue", "* * * * * *", "    overlap: queue\n"));
  RunFor(1);
  auto first = CronRuns(wf.id);
  ASSERT_EQ(first.size(), 1u);
  ASSERT_TRUE(store_->MarkRunRunning(first[0].id, 1, "w"));
  RunFor(20);  // 20 occurrences wait, longer than the misfire grace: not misfires
  EXPECT_EQ(CronRuns(wf.id).size(), 1u);
  auto t = OnlyTrigger(wf.id);
  EXPECT_EQ(t.next_fire_ms, Ms("2026-03-02T10:00:02Z"));  // the oldest waiting one
  ASSERT_TRUE(store_->FinishRun(first[0].id, 1, RunStatus::kSucceeded, "{}", "", ""));
  RunFor(1);
  auto runs = CronRuns(wf.id);
  ASSERT_EQ(runs.size(), 2u);
  EXPECT_EQ(ScheduledFor(runs)[1], "2026-03-02T10:00:02+00:00");
  // One at a time: the new run is pending, so the next waits.
  RunFor(1);
  EXPECT_EQ(CronRuns(wf.id).size(), 2u);
  ASSERT_TRUE(store_->CancelRun(runs[1].id));
  RunFor(1);
  runs = CronRuns(wf.id);
  ASSERT_EQ(runs.size(), 3u);
  EXPECT_EQ(ScheduledFor(runs)[2], "2026-03-02T10:00:03+00:00");
}

TEST_F(DispatchTest, OverlapAllowFiresWhileRunsAreActive) {
  auto wf = ApplyWorkflowSource(*store_, CronWorkflow("o-allow", "* * * * * *"));
  RunFor(1);
  ASSERT_TRUE(store_->MarkRunRunning(CronRuns(wf.id)[0].id, 1, "w"));
  RunFor(3);
  EXPECT_EQ(CronRuns(wf.id).size(), 4u);
}

TEST_F(DispatchTest, PausedWorkflowDoesNotFireNorCatchUpAfterResume) {
  auto wf = ApplyWorkflowSource(
      *store_,
      CronWorkflow("paused", "* * * * * *", "    misfire: catch_up\n    catch_up_max: 100\n"));
  RunFor(2);
  ASSERT_TRUE(store_->SetWorkflowPaused(wf.id, true));
  RunFor(30);
  EXPECT_EQ(CronRuns(wf.id).size(), 2u);
  ASSERT_TRUE(store_->SetWorkflowPaused(wf.id, false));
  RunFor(2);
  EXPECT_EQ(CronRuns(wf.id).size(), 4u);
}

TEST_F(DispatchTest, EnqueueFailureLeavesAPendingRunForTheSweeper) {
  auto wf = ApplyWorkflowSource(*store_, CronWorkflow("nq", "* * * * * *"));
  broker_.fail_submit = true;
  clock_.Advance(seconds(1));
  auto r = Tick();
  EXPECT_EQ(r.Count(Action::kFired), 1);
  auto runs = CronRuns(wf.id);
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0].status, RunStatus::kPending);
  broker_.fail_submit = false;
  RunFor(1);
  EXPECT_EQ(CronRuns(wf.id).size(), 2u);  // the schedule moved on; the run stays for the sweeper
}

// What the default logger writes while it lives.
class LogCapture {
 public:
  LogCapture() : sink_(std::make_shared<spdlog::sinks::ostream_sink_mt>(text_)) {
    spdlog::default_logger()->sinks().push_back(sink_);
  }
  ~LogCapture() {
    auto& sinks = spdlog::default_logger()->sinks();
    sinks.erase(std::remove(sinks.begin(), sinks.end(), sink_), sinks.end());
  }
  std::string Text() const { return text_.str(); }
  // How many times `needle` was written.
  size_t Count(const std::string& needle) const {
    const std::string text = Text();
    size_t n = 0;
    for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) {
      ++n;
    }
    return n;
  }

 private:
  std::ostringstream text_;
  std::shared_ptr<spdlog::sinks::ostream_sink_mt> sink_;
};

// A required input that cron runs are not given is refused at apply (ingest_test.cc has the
// cases). What apply cannot foresee, a cron value an input's constraint refuses, is recorded
// without a run at each occurrence and logged once per workflow version.
TEST_F(DispatchTest, RejectedCronInputsAreRecordedEachTimeAndLoggedOncePerVersion) {
  runs::ApplySourceRequest refused;
  refused.source =
      "name: needy\ninputs:\n  who: {type: string, required: true}\ntriggers:\n  cron:\n"
      "    schedule: \"* * * * * *\"\nnodes:\n  a: {kind: lua, script: return 1}\n";
  auto applied = runs::ApplyWorkflowSource(*store_, refused, nullptr);
  ASSERT_FALSE(applied);
  EXPECT_NE(applied.error().message.find("inputs.who: required without a default, but the cron "
                                         "trigger cannot give it"),
            std::string::npos)
      << applied.error().message;

  std::string source =
      "name: picky\ninputs:\n  scheduled_for: {type: string, required: true, enum: [never]}\n"
      "triggers:\n  cron:\n    schedule: \"* * * * * *\"\nnodes:\n  a: {kind: lua, script: "
      "return 1}\n";
  auto wf = ApplyWorkflowSource(*store_, source);
  LogCapture logs;
  RejectedVersions rejected;
  DispatchOptions o;
  o.rejected_versions = &rejected;
  auto tick = [&] {
    clock_.Advance(seconds(1));
    auto r = DispatchCron(*store_, broker_, clock_, o);
    EXPECT_TRUE(r);
    return r ? r->Count(Action::kRejected) : 0;
  };
  EXPECT_EQ(tick(), 1);
  EXPECT_EQ(tick(), 1);  // the next occurrence, not the same one again
  EXPECT_EQ(tick(), 1);
  EXPECT_EQ(logs.Count("inputs rejected"), 1u) << logs.Text();
  // A new version is a new story: logged once more.
  source.replace(source.find("return 1"), 8, "return 2");
  ApplyWorkflowSource(*store_, source);
  EXPECT_EQ(tick(), 1);
  EXPECT_EQ(tick(), 1);
  EXPECT_EQ(logs.Count("inputs rejected"), 2u) << logs.Text();
  EXPECT_EQ(CronRuns(wf.id).size(), 0u);
  EXPECT_EQ(store_->ListCronFires(OnlyTrigger(wf.id).id, 100)->size(), 5u);
}

// A stored version whose graph no longer loads (stored before a check that now refuses it) is
// read once, its occurrences are recorded without a run, and why is logged once per version:
// not an error at every tick.
TEST_F(DispatchTest, AStoredGraphThatNoLongerLoadsIsLoggedOncePerVersion) {
  auto wf = ApplyWorkflowSource(*store_, CronWorkflow("stale", "* * * * * *"));
  auto v1 = store_->GetWorkflowVersion(wf.id, 0);
  ASSERT_TRUE(v1 && *v1);
  Json graph = Json::parse((*v1)->graph);
  for (auto& node : graph["nodes"]) node["kind"] = "retired";  // a kind this build refuses
  ApplyWorkflowRequest stale;
  stale.name = "stale";
  stale.source = (*v1)->source;
  stale.graph = DumpJson(graph);
  stale.checksum = std::string(64, 'a');
  ASSERT_TRUE(store_->ApplyWorkflow(stale));
  LogCapture logs;
  RejectedVersions rejected;
  DispatchOptions o;
  o.rejected_versions = &rejected;
  std::vector<std::string> details;
  for (int i = 0; i < 3; ++i) {
    clock_.Advance(seconds(1));
    auto r = DispatchCron(*store_, broker_, clock_, o);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->Count(Action::kRejected), 1);
    EXPECT_EQ(r->Count(Action::kError), 0);
    for (const auto& f : r->outcomes) details.push_back(f.detail);
  }
  ASSERT_FALSE(details.empty());
  EXPECT_NE(details[0].find("stored graph (version 2) does not load"), std::string::npos)
      << details[0];
  EXPECT_EQ(logs.Count("does not load"), 1u) << logs.Text();
  EXPECT_EQ(CronRuns(wf.id).size(), 0u);
  EXPECT_EQ(store_->ListCronFires(OnlyTrigger(wf.id).id, 100)->size(), 3u);
}

TEST_F(DispatchTest, KeepGoingFalseStopsBeforeAnyTrigger) {
  ApplyWorkflowSource(*store_, CronWorkflow("stop", "* * * * * *"));
  clock_.Advance(seconds(1));
  DispatchOptions o;
  o.keep_going = [] { return false; };
  auto r = DispatchCron(*store_, broker_, clock_, o);
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->stopped);
  EXPECT_EQ(r->Count(Action::kFired), 0);
}

TEST_F(DispatchTest, PromoteDelayedTasksCoversEveryQueue) {
  broker_.queues = {"default", "high"};
  broker_.promote_result = 2;
  auto n = PromoteDelayedTasks(broker_, clock_);
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 4);
  EXPECT_EQ(broker_.promote_calls["high"], 1);
}

TEST_F(DispatchTest, RetentionDeletesOldFinishedRunsAndFires) {
  auto wf = ApplyWorkflowSource(*store_, CronWorkflow("old", "* * * * * *"));
  RunFor(3);
  for (const auto& r : CronRuns(wf.id)) {
    ASSERT_TRUE(store_->MarkRunRunning(r.id, 1, "w"));
    ASSERT_TRUE(store_->FinishRun(r.id, 1, RunStatus::kSucceeded, "{}", "", ""));
  }
  clock_.Advance(std::chrono::hours(24 * 31));
  RetentionOptions o;
  o.batch = 2;
  auto rep = CleanupRetention(*store_, clock_, o);
  ASSERT_TRUE(rep) << rep.error().message;
  EXPECT_EQ(rep->runs, 3);
  EXPECT_EQ(rep->cron_fires, 3);
  EXPECT_EQ(CronRuns(wf.id).size(), 0u);
}

}  // namespace
}  // namespace ferry::scheduler
