// The Store conformance suite: one set of value-parameterized tests that every implementation
// must pass. Instantiated for SQLite in tests/unit/store (no server) and for SQLite + PostgreSQL
// in tests/integration/store.
#include "store_conformance.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <future>
#include <latch>
#include <map>
#include <set>
#include <thread>

#include "core/json.h"
#include "postgres.h"
#include "store/run_counter.h"
#include "store/sql_counters.h"
#include "store/store_wrapper.h"

namespace ferry::testing {

PostgresServer& SharedPostgres() {
  // Started on first use and stopped at exit; one server per test binary keeps the suite fast.
  static PostgresServer server;
  return server;
}

void StoreConformance::SetUp() {
  if (GetParam() == "postgres") {
    if (!PostgresServer::Available()) GTEST_SKIP() << "PostgreSQL binaries not installed";
    location_ = SharedPostgres().CreateDatabase();
  } else {
    dir_ = std::make_unique<TempDir>();
    location_ = (dir_->path() / "ferry.db").string();
  }
  options_.clock = &clock_;
  auto factory = MakeStoreFactory(location_, options_);
  ASSERT_TRUE(factory) << factory.error().ToString();
  factory_ = std::move(*factory);
  store_ = Open();
}

std::unique_ptr<Store> StoreConformance::Open() {
  auto s = factory_->Open();
  if (!s) ADD_FAILURE() << s.error().ToString();
  return s ? std::move(*s) : nullptr;
}

Workflow StoreConformance::Apply(const std::string& name, const std::string& checksum) {
  ApplyWorkflowRequest req;
  req.name = name;
  req.description = "desc of " + name;
  req.source = "name: " + name + "\n# " + checksum;
  req.graph = R"({"nodes":[]})";
  req.checksum = checksum;
  req.author = "tester";
  auto r = store_->ApplyWorkflow(req);
  EXPECT_TRUE(r) << r.error().ToString();
  return r ? r->workflow : Workflow{};
}

ferry::Run StoreConformance::NewRun(const Workflow& wf, const std::string& inputs) {
  CreateRunRequest req;
  req.workflow_id = wf.id;
  req.inputs = inputs;
  auto r = store_->CreateRun(req);
  EXPECT_TRUE(r) << r.error().ToString();
  clock_.Advance(Millis(1));
  return r ? *r : ferry::Run{};
}

ferry::Run StoreConformance::RunningWithADeadline(int64_t epoch) {
  ferry::Run run = NewRun(Apply("wf", "c1"));
  auto marked = store_->MarkRunRunning(run.id, epoch, "w");
  EXPECT_TRUE(marked) << marked.error().ToString();
  auto saved = store_->SaveStep(RunStep{run.id, "nap", std::string(kStepWaiting),
                                        R"({"deadline_ms":5})", "", 1, epoch, 0, 0});
  EXPECT_TRUE(saved) << saved.error().ToString();
  return run;
}

namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

#define ASSERT_OK(expr)                                        \
  do {                                                         \
    const auto& _r = (expr);                                   \
    ASSERT_TRUE(_r) << #expr << ": " << _r.error().ToString(); \
  } while (0)

#define EXPECT_CODE(expr, want)                                                  \
  do {                                                                           \
    const auto& _r = (expr);                                                     \
    ASSERT_FALSE(_r) << #expr << " succeeded, expected " << ErrorCodeName(want); \
    EXPECT_EQ(_r.error().code, want) << _r.error().ToString();                   \
  } while (0)

TEST_P(StoreConformance, BackendAndPing) {
  EXPECT_EQ(store_->Backend(), GetParam());
  ASSERT_OK(store_->Ping());
  auto v = store_->SchemaVersion();
  ASSERT_OK(v);
  EXPECT_EQ(*v, kStoreSchemaVersion);
}

TEST_P(StoreConformance, MigrationsIdempotentOnReopen) {
  Workflow wf = Apply("wf", "c1");
  store_.reset();
  for (int i = 0; i < 3; ++i) {
    auto s = Open();
    ASSERT_NE(s, nullptr);
    auto v = s->SchemaVersion();
    ASSERT_OK(v);
    EXPECT_EQ(*v, kStoreSchemaVersion);
    auto got = s->GetWorkflow("wf");
    ASSERT_OK(got);
    ASSERT_TRUE(got->has_value());
    EXPECT_EQ((*got)->id, wf.id);
  }
}

TEST_P(StoreConformance, ConcurrentFirstOpensMigrateOnce) {
  // A fresh database opened by several processes at once (server, worker, scheduler).
  std::string location;
  std::unique_ptr<TempDir> dir;
  if (GetParam() == "postgres") {
    location = SharedPostgres().CreateDatabase();
  } else {
    dir = std::make_unique<TempDir>();
    location = (dir->path() / "fresh.db").string();
  }
  auto factory = MakeStoreFactory(location, options_);
  ASSERT_OK(factory);
  constexpr int kOpeners = 6;
  std::latch start(kOpeners);
  std::atomic<int> ok{0};
  std::vector<std::string> errors(kOpeners);
  std::vector<std::thread> threads;
  for (int i = 0; i < kOpeners; ++i) {
    threads.emplace_back([&, i] {
      start.arrive_and_wait();
      auto s = (*factory)->Open();
      if (s) {
        ++ok;
      } else {
        errors[static_cast<size_t>(i)] = s.error().ToString();
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), kOpeners) << errors[0] << errors[1];
  auto s = (*factory)->Open();
  ASSERT_OK(s);
  EXPECT_EQ(*(*s)->SchemaVersion(), kStoreSchemaVersion);
}

TEST_P(StoreConformance, ApplyWorkflowDedupesByChecksum) {
  ApplyWorkflowRequest req;
  req.name = "deploy";
  req.source = "v1";
  req.graph = "{}";
  req.checksum = "aaa";
  req.author = "ann";
  req.notes = "first";
  auto a = store_->ApplyWorkflow(req);
  ASSERT_OK(a);
  EXPECT_TRUE(a->created);
  EXPECT_EQ(a->version.version, 1);
  EXPECT_EQ(a->workflow.current_version, 1);
  EXPECT_EQ(a->version.author, "ann");
  EXPECT_EQ(a->version.notes, "first");
  EXPECT_EQ(a->version.format, "yaml");

  auto same = store_->ApplyWorkflow(req);
  ASSERT_OK(same);
  EXPECT_FALSE(same->created);
  EXPECT_EQ(same->version.version, 1);
  EXPECT_EQ(same->workflow.id, a->workflow.id);

  req.source = "v2";
  req.checksum = "bbb";
  req.format = "json";
  auto b = store_->ApplyWorkflow(req);
  ASSERT_OK(b);
  EXPECT_TRUE(b->created);
  EXPECT_EQ(b->version.version, 2);
  EXPECT_EQ(b->version.format, "json");

  req.checksum = "aaa";  // reverting makes a new version, it does not rewind history
  auto c = store_->ApplyWorkflow(req);
  ASSERT_OK(c);
  EXPECT_TRUE(c->created);
  EXPECT_EQ(c->version.version, 3);

  auto versions = store_->ListWorkflowVersions(a->workflow.id);
  ASSERT_OK(versions);
  ASSERT_EQ(versions->size(), 3u);
  EXPECT_EQ((*versions)[0].version, 3);
  EXPECT_EQ((*versions)[2].source, "v1");

  auto cur = store_->GetWorkflowVersion(a->workflow.id, 0);
  ASSERT_OK(cur);
  ASSERT_TRUE(cur->has_value());
  EXPECT_EQ((*cur)->version, 3);
  auto v2 = store_->GetWorkflowVersion(a->workflow.id, 2);
  ASSERT_OK(v2);
  EXPECT_EQ((*v2)->source, "v2");
  auto none = store_->GetWorkflowVersion(a->workflow.id, 9);
  ASSERT_OK(none);
  EXPECT_FALSE(none->has_value());

  req.format = "toml";
  EXPECT_CODE(store_->ApplyWorkflow(req), ErrorCode::kInvalidArgument);
  req.format = "yaml";
  req.name = "";
  EXPECT_CODE(store_->ApplyWorkflow(req), ErrorCode::kInvalidArgument);
}

TEST_P(StoreConformance, WorkflowLookupsAndPause) {
  Workflow b = Apply("beta", "1");
  Workflow a = Apply("alpha", "1");
  auto list = store_->ListWorkflows();
  ASSERT_OK(list);
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].name, "alpha");
  EXPECT_EQ((*list)[0].description, "desc of alpha");
  auto byid = store_->GetWorkflowById(b.id);
  ASSERT_OK(byid);
  EXPECT_EQ((*byid)->name, "beta");
  auto missing = store_->GetWorkflow("gamma");
  ASSERT_OK(missing);
  EXPECT_FALSE(missing->has_value());

  auto paused = store_->SetWorkflowPaused(a.id, true);
  ASSERT_OK(paused);
  EXPECT_TRUE(paused->paused);
  auto again = store_->GetWorkflow("alpha");
  EXPECT_TRUE((*again)->paused);
  ASSERT_OK(store_->SetWorkflowPaused(a.id, false));
  EXPECT_FALSE((*store_->GetWorkflow("alpha"))->paused);
  EXPECT_CODE(store_->SetWorkflowPaused("nope", true), ErrorCode::kNotFound);
}

TEST_P(StoreConformance, ConcurrentApplyOfSameContentMakesOneVersion) {
  constexpr int kThreads = 4;
  std::latch start(kThreads);
  std::atomic<int> created{0};
  std::atomic<int> failed{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&] {
      auto s = factory_->Open();
      if (!s) {
        ++failed;
        return;
      }
      ApplyWorkflowRequest req;
      req.name = "raced";
      req.source = "x";
      req.graph = "{}";
      req.checksum = "same";
      start.arrive_and_wait();
      auto r = (*s)->ApplyWorkflow(req);
      if (!r) {
        ++failed;
      } else if (r->created) {
        ++created;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(created.load(), 1);
  auto wf = store_->GetWorkflow("raced");
  ASSERT_OK(wf);
  EXPECT_EQ((*store_->ListWorkflowVersions((*wf)->id)).size(), 1u);
}

TEST_P(StoreConformance, CreateAndGetRun) {
  Workflow wf = Apply("wf", "c1");
  CreateRunRequest req;
  req.workflow_id = wf.id;
  req.inputs = R"({"b":1,"a":[2]})";
  req.triggered_by = TriggeredBy::kWebhook;
  req.trigger_id = "trig-1";
  auto run = store_->CreateRun(req);
  ASSERT_OK(run);
  EXPECT_TRUE(LooksLikeId(run->id));
  EXPECT_EQ(run->status, RunStatus::kPending);
  EXPECT_EQ(run->version, 1);
  EXPECT_EQ(run->workflow_name, "wf");
  EXPECT_EQ(run->inputs, R"({"b":1,"a":[2]})");  // verbatim, key order kept
  EXPECT_EQ(run->triggered_by, TriggeredBy::kWebhook);
  EXPECT_EQ(run->trigger_id, "trig-1");
  EXPECT_EQ(run->created_ms, clock_.NowMs());
  EXPECT_EQ(run->started_ms, 0);
  EXPECT_EQ(run->attempt, 0);

  auto got = store_->GetRun(run->id);
  ASSERT_OK(got);
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ((*got)->inputs, run->inputs);
  auto missing = store_->GetRun("01ARZ3NDEKTSV4RRFFQ69G5FAV");
  ASSERT_OK(missing);
  EXPECT_FALSE(missing->has_value());

  req.id = NewId();
  auto fixed = store_->CreateRun(req);
  ASSERT_OK(fixed);
  EXPECT_EQ(fixed->id, req.id);
  EXPECT_CODE(store_->CreateRun(req), ErrorCode::kConflict);  // same id twice
  req.id = "not-an-id";
  EXPECT_CODE(store_->CreateRun(req), ErrorCode::kInvalidArgument);
  req.id = "";
  req.version = 7;
  EXPECT_CODE(store_->CreateRun(req), ErrorCode::kNotFound);
  req.version = 0;
  req.workflow_id = "nope";
  EXPECT_CODE(store_->CreateRun(req), ErrorCode::kNotFound);
}

TEST_P(StoreConformance, MarkRunningIsFencedByEpoch) {
  Workflow wf = Apply("wf", "c1");
  ferry::Run run = NewRun(wf);
  auto r1 = store_->MarkRunRunning(run.id, 1, "w1");
  ASSERT_OK(r1);
  EXPECT_EQ(r1->status, RunStatus::kRunning);
  EXPECT_EQ(r1->epoch, 1);
  EXPECT_EQ(r1->attempt, 1);
  EXPECT_EQ(r1->worker, "w1");
  int64_t first_start = r1->started_ms;
  EXPECT_GT(first_start, 0);

  auto repeat = store_->MarkRunRunning(run.id, 1, "w1");  // retried call: same claim
  ASSERT_OK(repeat);
  EXPECT_EQ(repeat->attempt, 1);
  EXPECT_CODE(store_->MarkRunRunning(run.id, 1, "w2"), ErrorCode::kConflict);

  clock_.Advance(seconds(1));
  auto r2 = store_->MarkRunRunning(run.id, 2, "w2");  // takeover after a lost lease
  ASSERT_OK(r2);
  EXPECT_EQ(r2->epoch, 2);
  EXPECT_EQ(r2->attempt, 2);
  EXPECT_EQ(r2->worker, "w2");
  EXPECT_EQ(r2->started_ms, first_start);
  auto stale = store_->MarkRunRunning(run.id, 1, "w1");
  ASSERT_FALSE(stale);
  EXPECT_EQ(stale.error().code, ErrorCode::kConflict);
  EXPECT_NE(stale.error().message.find("running at epoch 2"), std::string::npos)
      << stale.error().message;

  EXPECT_CODE(store_->FinishRun(run.id, 1, RunStatus::kSucceeded, "{}", "", ""),
              ErrorCode::kConflict);
  auto done = store_->FinishRun(run.id, 2, RunStatus::kFailed, "", "boom", "step2");
  ASSERT_OK(done);
  EXPECT_EQ(done->status, RunStatus::kFailed);
  EXPECT_EQ(done->error, "boom");
  EXPECT_EQ(done->failed_node, "step2");
  EXPECT_EQ(done->finished_ms, clock_.NowMs());
  ASSERT_OK(store_->FinishRun(run.id, 2, RunStatus::kFailed, "", "boom", "step2"));  // repeat
  EXPECT_CODE(store_->FinishRun(run.id, 2, RunStatus::kSucceeded, "{}", "", ""),
              ErrorCode::kConflict);
  EXPECT_CODE(store_->MarkRunRunning(run.id, 3, "w3"), ErrorCode::kConflict);
  EXPECT_CODE(store_->FinishRun(run.id, 2, RunStatus::kRunning, "", "", ""),
              ErrorCode::kInvalidArgument);
  EXPECT_CODE(store_->MarkRunRunning("01ARZ3NDEKTSV4RRFFQ69G5FAV", 1, "w"), ErrorCode::kNotFound);
  // No worker is a released run's mark only (ReleaseRun).
  EXPECT_CODE(store_->MarkRunRunning(NewRun(wf).id, 1, ""), ErrorCode::kInvalidArgument);
  EXPECT_CODE(store_->FinishRun(NewRun(wf).id, 1, RunStatus::kSucceeded, "", "", ""),
              ErrorCode::kConflict);  // still pending
}

// Types of a run's events, in order, and the data of those of one type.
std::vector<std::string> TypesOf(Store& store, const std::string& run_id) {
  std::vector<std::string> out;
  auto events = store.ListRunEvents(run_id, 0, 1000);
  EXPECT_TRUE(events.has_value());
  if (events) {
    for (const auto& e : *events) out.push_back(e.type);
  }
  return out;
}

// A run released to wait (ReleaseRun) stays running, held by no worker, with its events; only
// the epoch that holds it may release it; its next start counts no attempt, a later one does.
TEST_P(StoreConformance, AReleasedRunsNextStartCountsNoAttempt) {
  Workflow wf = Apply("wf", "c1");
  ferry::Run run = NewRun(wf);
  ASSERT_OK(store_->MarkRunRunning(run.id, 5, "w1"));
  const std::vector<NewRunEvent> waiting = {{"run.waiting", R"({"until_ms":9})", 0}};
  EXPECT_CODE(store_->ReleaseRun(run.id, 4, waiting), ErrorCode::kConflict);         // one behind
  EXPECT_CODE(store_->ReleaseRun(run.id, 6, waiting), ErrorCode::kConflict);         // one ahead
  EXPECT_CODE(store_->ReleaseRun(NewRun(wf).id, 5, waiting), ErrorCode::kConflict);  // pending
  EXPECT_EQ(TypesOf(*store_, run.id), std::vector<std::string>{});
  auto released = store_->ReleaseRun(run.id, 5, waiting);
  ASSERT_OK(released);
  EXPECT_EQ(released->status, RunStatus::kRunning);
  EXPECT_EQ(released->worker, "");
  EXPECT_EQ(released->epoch, 5);
  EXPECT_EQ(released->attempt, 1);
  EXPECT_EQ(TypesOf(*store_, run.id), std::vector<std::string>{"run.waiting"});

  auto resumed = store_->MarkRunRunning(run.id, 6, "w2");
  ASSERT_OK(resumed);
  EXPECT_EQ(resumed->attempt, 1) << "a wait out of the slot is no new attempt";
  EXPECT_EQ(resumed->worker, "w2");
  auto taken_over = store_->MarkRunRunning(run.id, 7, "w3");  // a crash's takeover counts
  ASSERT_OK(taken_over);
  EXPECT_EQ(taken_over->attempt, 2);

  ASSERT_OK(store_->CancelRun(run.id));
  EXPECT_CODE(store_->ReleaseRun(run.id, 7, waiting), ErrorCode::kConflict);
  EXPECT_EQ(TypesOf(*store_, run.id), std::vector<std::string>{"run.waiting"});
}

// An execution's start marks the run, appends its "started" event with the attempt the mark
// counted, and reads the checkpoints, all or nothing: a claim one epoch behind, or one whose
// run ended, writes no event; a repeat of the claim that won writes it again (as marking and
// then appending did).
TEST_P(StoreConformance, MarkRunStartedWritesItsEventOnlyWhenTheRunIsMarked) {
  Workflow wf = Apply("wf", "c1");
  ferry::Run run = NewRun(wf);
  const NewRunEvent started{"run.started", R"({"task_id":"t1","epoch":4})", 0};
  auto first = store_->MarkRunStarted(run.id, 4, "w1", started);
  ASSERT_OK(first);
  EXPECT_EQ(first->run.status, RunStatus::kRunning);
  EXPECT_EQ(first->run.attempt, 1);
  EXPECT_TRUE(first->steps.empty());
  auto events = store_->ListRunEvents(run.id, 0, 100);
  ASSERT_OK(events);
  ASSERT_EQ(events->size(), 1u);
  EXPECT_EQ((*events)[0].type, "run.started");
  EXPECT_EQ((*events)[0].seq, 1);
  EXPECT_EQ(ParseJson((*events)[0].data).value(),
            (Json{{"task_id", "t1"}, {"epoch", 4}, {"attempt", 1}}));

  // A checkpoint of this attempt is read by the next start of the run (a takeover).
  ASSERT_OK(store_->SaveStep(RunStep{run.id, "a", "succeeded", R"({"x":1})", "", 1, 4, 0, 0}));
  EXPECT_CODE(store_->MarkRunStarted(run.id, 3, "w0", started), ErrorCode::kConflict);
  EXPECT_CODE(store_->MarkRunStarted(run.id, 4, "w2", started), ErrorCode::kConflict);
  EXPECT_EQ(TypesOf(*store_, run.id), (std::vector<std::string>{"run.started"}));

  auto repeat = store_->MarkRunStarted(run.id, 4, "w1", started);  // the same claim again
  ASSERT_OK(repeat);
  EXPECT_EQ(repeat->run.attempt, 1);
  ASSERT_EQ(repeat->steps.size(), 1u);

  auto takeover = store_->MarkRunStarted(run.id, 5, "w2", NewRunEvent{"run.started", "{}", 0});
  ASSERT_OK(takeover);
  EXPECT_EQ(takeover->run.attempt, 2);
  ASSERT_EQ(takeover->steps.size(), 1u);
  EXPECT_EQ(takeover->steps[0].node_id, "a");
  EXPECT_EQ(takeover->steps[0].output, R"({"x":1})");
  auto last = store_->ListRunEvents(run.id, 2, 100);
  ASSERT_OK(last);
  ASSERT_EQ(last->size(), 1u);
  EXPECT_EQ((*last)[0].seq, 3);
  EXPECT_EQ(ParseJson((*last)[0].data).value(), (Json{{"attempt", 2}}));

  ASSERT_OK(store_->FinishRun(run.id, 5, RunStatus::kSucceeded, "{}", "", ""));
  EXPECT_CODE(store_->MarkRunStarted(run.id, 6, "w3", started), ErrorCode::kConflict);
  // The claim that held the run last, again: the run ended, so no event either.
  EXPECT_CODE(store_->MarkRunStarted(run.id, 5, "w2", started), ErrorCode::kConflict);
  EXPECT_EQ(TypesOf(*store_, run.id).size(), 3u);
  EXPECT_CODE(store_->MarkRunStarted("01ARZ3NDEKTSV4RRFFQ69G5FAV", 1, "w", started),
              ErrorCode::kNotFound);
  // Data that is not an object or has its own "attempt", or an event without a type: refused
  // before anything is written.
  ferry::Run other = NewRun(wf);
  EXPECT_CODE(store_->MarkRunStarted(other.id, 1, "w", NewRunEvent{"run.started", "[1]", 0}),
              ErrorCode::kInvalidArgument);
  EXPECT_CODE(store_->MarkRunStarted(other.id, 1, "w", NewRunEvent{"run.started", "{x}", 0}),
              ErrorCode::kInvalidArgument);
  EXPECT_CODE(
      store_->MarkRunStarted(other.id, 1, "w", NewRunEvent{"run.started", R"({"attempt":9})", 0}),
      ErrorCode::kInvalidArgument);
  EXPECT_CODE(store_->MarkRunStarted(other.id, 1, "w", NewRunEvent{"", "{}", 0}),
              ErrorCode::kInvalidArgument);
  EXPECT_CODE(store_->MarkRunStarted(other.id, -1, "w", started), ErrorCode::kInvalidArgument);
  auto still = store_->GetRun(other.id);
  ASSERT_OK(still);
  EXPECT_EQ((*still)->status, RunStatus::kPending);
  // Inside a caller's transaction: committed or rolled back with it.
  ferry::Run in_tx = NewRun(wf);
  {
    auto tx = store_->Begin();
    ASSERT_OK(tx);
    ASSERT_OK(store_->MarkRunStarted(in_tx.id, 1, "w", started));
  }  // rolled back
  EXPECT_EQ((*store_->GetRun(in_tx.id))->status, RunStatus::kPending);
  EXPECT_TRUE(TypesOf(*store_, in_tx.id).empty());
  {
    auto tx = store_->Begin();
    ASSERT_OK(tx);
    auto marked = store_->MarkRunStarted(in_tx.id, 1, "w", started);
    ASSERT_OK(marked);
    EXPECT_EQ(marked->run.attempt, 1);
    ASSERT_OK((*tx)->Commit());
  }
  EXPECT_EQ((*store_->GetRun(in_tx.id))->status, RunStatus::kRunning);
  EXPECT_EQ(TypesOf(*store_, in_tx.id), (std::vector<std::string>{"run.started"}));
  // Whitespace around the object is kept, and the attempt still lands inside it.
  for (const std::string data : {"{ }", "{\"a\":\"}\" }\n"}) {
    ferry::Run r = NewRun(wf);
    ASSERT_OK(store_->MarkRunStarted(r.id, 1, "w", NewRunEvent{"run.started", data, 0}));
    auto stored = store_->ListRunEvents(r.id, 0, 10);
    ASSERT_OK(stored);
    ASSERT_EQ(stored->size(), 1u);
    auto parsed = ParseJson((*stored)[0].data);
    ASSERT_TRUE(parsed.has_value()) << (*stored)[0].data;
    EXPECT_EQ((*parsed)["attempt"], 1) << (*stored)[0].data;
  }
}

// FinishRun ends a run only under its current epoch: one behind (the attempt that lost its
// lease) and one ahead (an attempt that never marked the run running) are both refused, and a
// refused finish changes nothing: the owner then finishes it as if nothing had happened.
TEST_P(StoreConformance, FinishRunIsFencedByTheExactEpoch) {
  Workflow wf = Apply("wf", "c1");
  ferry::Run run = NewRun(wf);
  ASSERT_OK(store_->MarkRunRunning(run.id, 7, "w1"));
  ASSERT_OK(store_->MarkRunRunning(run.id, 8, "w2"));  // w1 lost its lease; w2 took over
  clock_.Advance(seconds(1));
  for (int64_t epoch : {7, 9, 0}) {
    for (RunStatus status : {RunStatus::kSucceeded, RunStatus::kFailed, RunStatus::kCancelled}) {
      auto r = store_->FinishRun(run.id, epoch, status, R"({"from":"stale"})", "stale", "n");
      ASSERT_FALSE(r) << "epoch " << epoch << " finished a run held at epoch 8";
      EXPECT_EQ(r.error().code, ErrorCode::kConflict);
      EXPECT_NE(r.error().message.find("epoch " + std::to_string(epoch)), std::string::npos)
          << r.error().message;
    }
  }
  auto still = store_->GetRun(run.id);
  ASSERT_OK(still);
  ASSERT_TRUE(still->has_value());
  EXPECT_EQ((*still)->status, RunStatus::kRunning);
  EXPECT_EQ((*still)->epoch, 8);
  EXPECT_EQ((*still)->worker, "w2");
  EXPECT_EQ((*still)->output, "");
  EXPECT_EQ((*still)->error, "");
  EXPECT_EQ((*still)->finished_ms, 0);

  // A stale step of the old epoch is refused the same way.
  RunStep stale{run.id, "n", "succeeded", "{}", "", 1, 7, 0, 0};
  EXPECT_CODE(store_->SaveStep(stale), ErrorCode::kConflict);

  auto done = store_->FinishRun(run.id, 8, RunStatus::kSucceeded, R"({"from":"owner"})", "", "");
  ASSERT_OK(done);
  EXPECT_EQ(done->status, RunStatus::kSucceeded);
  EXPECT_EQ(done->output, R"({"from":"owner"})");
  EXPECT_EQ(done->epoch, 8);
  // Once ended, the stale attempt still cannot overwrite the outcome, nor can the owner change it.
  EXPECT_CODE(store_->FinishRun(run.id, 7, RunStatus::kSucceeded, R"({"from":"owner"})", "", ""),
              ErrorCode::kConflict);
  EXPECT_CODE(store_->FinishRun(run.id, 7, RunStatus::kFailed, "", "stale", "n"),
              ErrorCode::kConflict);
  EXPECT_CODE(store_->FinishRun(run.id, 8, RunStatus::kFailed, "", "late", "n"),
              ErrorCode::kConflict);
  auto final_run = store_->GetRun(run.id);
  ASSERT_OK(final_run);
  EXPECT_EQ((*final_run)->status, RunStatus::kSucceeded);
  EXPECT_EQ((*final_run)->output, R"({"from":"owner"})");
  EXPECT_EQ((*final_run)->error, "");
}

// The run's last step can ride in the commit that ends the run: written with the finish, fenced
// like SaveStep (an epoch one behind writes neither the step nor the end), and a repeat of the
// same finish with the same step succeeds again.
TEST_P(StoreConformance, FinishRunWritesTheLastStepInTheSameCommit) {
  Workflow wf = Apply("wf", "c1");
  ferry::Run run = NewRun(wf);
  ASSERT_OK(store_->MarkRunRunning(run.id, 8, "w2"));
  const std::vector<NewRunEvent> events = {
      NewRunEvent{"run.finished", R"({"status":"succeeded"})", 0}};
  RunStep stale{run.id, "last", "succeeded", R"({"n":1})", "", 1, 7, 0, 0};
  EXPECT_CODE(store_->FinishRun(run.id, 7, RunStatus::kSucceeded, "{}", "", "", events, {stale}),
              ErrorCode::kConflict);
  // A step one epoch behind the run's refuses the whole finish.
  RunStep behind{run.id, "last", "succeeded", R"({"n":1})", "", 1, 7, 0, 0};
  EXPECT_CODE(store_->FinishRun(run.id, 8, RunStatus::kSucceeded, "{}", "", "", events, {behind}),
              ErrorCode::kConflict);
  auto untouched = store_->ListSteps(run.id);
  ASSERT_OK(untouched);
  EXPECT_TRUE(untouched->empty());
  auto no_events = store_->ListRunEvents(run.id, 0, 100);
  ASSERT_OK(no_events);
  for (const auto& e : *no_events) EXPECT_NE(e.type, "run.finished");
  auto running = store_->GetRun(run.id);
  ASSERT_OK(running);
  EXPECT_EQ((*running)->status, RunStatus::kRunning);

  RunStep last{run.id, "last", "succeeded", R"({"n":1})", "", 1, 8, 0, 0};
  auto done = store_->FinishRun(run.id, 8, RunStatus::kSucceeded, "{}", "", "", events, {last});
  ASSERT_OK(done);
  EXPECT_EQ(done->status, RunStatus::kSucceeded);
  auto steps = store_->ListSteps(run.id);
  ASSERT_OK(steps);
  ASSERT_EQ(steps->size(), 1u);
  EXPECT_EQ((*steps)[0].node_id, "last");
  EXPECT_EQ((*steps)[0].output, R"({"n":1})");
  EXPECT_EQ((*steps)[0].epoch, 8);
  ASSERT_OK(store_->FinishRun(run.id, 8, RunStatus::kSucceeded, "{}", "", "", {}, {last}));
  // A different checkpoint of a checkpointed node is refused, and writes no event.
  RunStep other{run.id, "last", "succeeded", R"({"n":2})", "", 1, 8, 0, 0};
  EXPECT_CODE(store_->FinishRun(run.id, 8, RunStatus::kSucceeded, "{}", "", "", {}, {other}),
              ErrorCode::kConflict);
  EXPECT_CODE(store_->FinishRun(run.id, 8, RunStatus::kSucceeded, "{}", "", "", events, {other}),
              ErrorCode::kConflict);
  // So does a finish other than the one applied (another output), with the same step.
  EXPECT_CODE(
      store_->FinishRun(run.id, 8, RunStatus::kSucceeded, R"({"o":1})", "", "", events, {last}),
      ErrorCode::kConflict);
  const auto finished_events = [&] {
    const auto types = TypesOf(*store_, run.id);
    return std::count(types.begin(), types.end(), "run.finished");
  };
  EXPECT_EQ(finished_events(), 1);
  // A repeat of the finish that applied, its events with it, succeeds and writes them again.
  ASSERT_OK(store_->FinishRun(run.id, 8, RunStatus::kSucceeded, "{}", "", "", events, {last}));
  EXPECT_EQ(finished_events(), 2);
  ASSERT_EQ(store_->ListSteps(run.id)->size(), 1u);
}

// A finish with its step and events is one commit even when a delay's deadline ("waiting") was
// the node's row: the end replaces it. A finish under an epoch the run has left writes neither.
TEST_P(StoreConformance, FinishRunReplacesAWaitingStepAndNothingWhenItDoesNotApply) {
  const ferry::Run run = RunningWithADeadline(3);
  const std::vector<NewRunEvent> events = {NewRunEvent{"node.finished", "{}", 0},
                                           NewRunEvent{"run.finished", "{}", 0}};
  RunStep end{run.id, "nap", "succeeded", "{}", "", 1, 3, 0, 0};
  ASSERT_OK(store_->MarkRunRunning(run.id, 4, "w2"));  // taken over
  EXPECT_CODE(store_->FinishRun(run.id, 3, RunStatus::kSucceeded, "{}", "", "", events, {end}),
              ErrorCode::kConflict);
  auto steps = store_->ListSteps(run.id);
  ASSERT_OK(steps);
  ASSERT_EQ(steps->size(), 1u);
  EXPECT_EQ((*steps)[0].status, kStepWaiting);
  EXPECT_TRUE(TypesOf(*store_, run.id).empty());

  end.epoch = 4;
  auto done = store_->FinishRun(run.id, 4, RunStatus::kSucceeded, "{}", "", "", events, {end});
  ASSERT_OK(done);
  EXPECT_EQ(done->status, RunStatus::kSucceeded);
  steps = store_->ListSteps(run.id);
  ASSERT_OK(steps);
  ASSERT_EQ(steps->size(), 1u);
  EXPECT_EQ((*steps)[0].status, "succeeded");
  EXPECT_EQ((*steps)[0].epoch, 4);
  EXPECT_EQ(TypesOf(*store_, run.id), (std::vector<std::string>{"node.finished", "run.finished"}));
}

// A repeat of a finish that applied cannot bring checkpoints of its own: a new node's, or one
// replacing a delay's deadline, is refused (kConflict) and writes nothing, events included.
TEST_P(StoreConformance, ARepeatedFinishCannotAddOrReplaceCheckpoints) {
  const ferry::Run run = RunningWithADeadline(8);
  const std::vector<NewRunEvent> events = {NewRunEvent{"run.finished", "{}", 0}};
  const RunStep a{run.id, "a", "succeeded", "{}", "", 1, 8, 0, 0};
  ASSERT_OK(store_->FinishRun(run.id, 8, RunStatus::kFailed, "", "e", "a", events, {a}));
  const RunStep b{run.id, "b", "succeeded", "{}", "", 1, 8, 0, 0};
  EXPECT_CODE(store_->FinishRun(run.id, 8, RunStatus::kFailed, "", "e", "a", events, {a, b}),
              ErrorCode::kConflict);
  const RunStep nap{run.id, "nap", "succeeded", "{}", "", 1, 8, 0, 0};
  EXPECT_CODE(store_->FinishRun(run.id, 8, RunStatus::kFailed, "", "e", "a", events, {nap}),
              ErrorCode::kConflict);
  auto steps = store_->ListSteps(run.id);
  ASSERT_OK(steps);
  ASSERT_EQ(steps->size(), 2u);
  for (const auto& s : *steps) {
    if (s.node_id == "nap") {
      EXPECT_EQ(s.status, kStepWaiting);
    }
  }
  EXPECT_EQ(TypesOf(*store_, run.id), (std::vector<std::string>{"run.finished"}));
}

// An error a node's program printed may hold NUL bytes, which PostgreSQL's text cannot store:
// the run still ends failed, its errors written with each NUL shown as \u0000, on both stores.
TEST_P(StoreConformance, AnErrorHoldingANulIsKeptLegible) {
  Workflow wf = Apply("wf", "c1");
  const std::string nul_error = std::string("bad a") + '\0' + "b" + '\0';
  const std::string shown = "bad a\\u0000b\\u0000";
  ferry::Run run = NewRun(wf);
  ASSERT_OK(store_->MarkRunRunning(run.id, 1, "w"));
  ASSERT_OK(store_->SaveStep(RunStep{run.id, "first", "failed", "", nul_error, 1, 1, 0, 0}));
  auto done = store_->FinishRun(run.id, 1, RunStatus::kFailed, "", nul_error, "second",
                                {NewRunEvent{"run.finished", "{}", 0}},
                                {RunStep{run.id, "second", "failed", "", nul_error, 1, 1, 0, 0},
                                 RunStep{run.id, "third", "succeeded", "{}", "", 1, 1, 0, 0}});
  ASSERT_OK(done);
  EXPECT_EQ(done->status, RunStatus::kFailed);
  EXPECT_EQ(done->error, shown);
  EXPECT_EQ((*store_->GetRun(run.id))->error, shown);
  auto steps = store_->ListSteps(run.id);
  ASSERT_OK(steps);
  ASSERT_EQ(steps->size(), 3u);
  std::map<std::string, std::string> errors;
  for (const auto& st : *steps) errors[st.node_id] = st.error;
  EXPECT_EQ(errors["first"], shown);
  EXPECT_EQ(errors["second"], shown);
  EXPECT_EQ(errors["third"], "");
}

// The steps that go with a finish are checked as SaveStep checks them: a step without a node is
// invalid, a node that already has another checkpoint refuses the finish (its events too), two
// different checkpoints of one node in one call refuse it, and a delay's deadline followed by the
// node's end in one call is the end.
TEST_P(StoreConformance, AFinishsStepsAreCheckedAsSaveStepChecksThem) {
  Workflow wf = Apply("wf", "c1");
  const std::vector<NewRunEvent> events = {NewRunEvent{"run.finished", "{}", 0}};
  ferry::Run run = NewRun(wf);
  ASSERT_OK(store_->MarkRunRunning(run.id, 8, "w"));
  EXPECT_CODE(store_->FinishRun(run.id, 8, RunStatus::kSucceeded, "{}", "", "", events,
                                {RunStep{run.id, "", "", "{}", "", 1, 8, 0, 0}}),
              ErrorCode::kInvalidArgument);
  ASSERT_OK(store_->SaveStep(RunStep{run.id, "x", "succeeded", R"({"n":1})", "", 1, 8, 0, 0}));
  EXPECT_CODE(store_->FinishRun(run.id, 8, RunStatus::kSucceeded, "{}", "", "", events,
                                {RunStep{run.id, "x", "succeeded", R"({"n":2})", "", 1, 8, 0, 0}}),
              ErrorCode::kConflict);
  EXPECT_EQ((*store_->GetRun(run.id))->status, RunStatus::kRunning);
  EXPECT_TRUE(TypesOf(*store_, run.id).empty());

  ferry::Run twice = NewRun(wf);
  ASSERT_OK(store_->MarkRunRunning(twice.id, 8, "w"));
  EXPECT_CODE(
      store_->FinishRun(twice.id, 8, RunStatus::kSucceeded, "{}", "", "", events,
                        {RunStep{twice.id, "x", "succeeded", R"({"n":1})", "", 1, 8, 0, 0},
                         RunStep{twice.id, "x", "succeeded", R"({"n":2})", "", 1, 8, 0, 0}}),
      ErrorCode::kConflict);
  EXPECT_EQ((*store_->GetRun(twice.id))->status, RunStatus::kRunning);
  EXPECT_TRUE(store_->ListSteps(twice.id)->empty());
  EXPECT_TRUE(TypesOf(*store_, twice.id).empty());

  ferry::Run waited = NewRun(wf);
  ASSERT_OK(store_->MarkRunRunning(waited.id, 8, "w"));
  ASSERT_OK(store_->FinishRun(
      waited.id, 8, RunStatus::kSucceeded, "{}", "", "", events,
      {RunStep{waited.id, "y", std::string(kStepWaiting), R"({"deadline_ms":5})", "", 1, 8, 0, 0},
       RunStep{waited.id, "y", "succeeded", "{}", "", 1, 8, 0, 0}}));
  auto steps = store_->ListSteps(waited.id);
  ASSERT_OK(steps);
  ASSERT_EQ(steps->size(), 1u);
  EXPECT_EQ((*steps)[0].status, "succeeded");
  EXPECT_EQ(TypesOf(*store_, waited.id), (std::vector<std::string>{"run.finished"}));
}

TEST_P(StoreConformance, CancelFromPendingOrRunningOnly) {
  Workflow wf = Apply("wf", "c1");
  ferry::Run pending = NewRun(wf);
  auto c = store_->CancelRun(pending.id);
  ASSERT_OK(c);
  EXPECT_EQ(c->status, RunStatus::kCancelled);
  EXPECT_GT(c->finished_ms, 0);
  EXPECT_CODE(store_->CancelRun(pending.id), ErrorCode::kConflict);
  EXPECT_CODE(store_->MarkRunRunning(pending.id, 1, "w"), ErrorCode::kConflict);

  ferry::Run running = NewRun(wf);
  ASSERT_OK(store_->MarkRunRunning(running.id, 4, "w"));
  ASSERT_OK(store_->CancelRun(running.id));
  // The worker that still runs it learns on its next fenced write.
  EXPECT_CODE(store_->FinishRun(running.id, 4, RunStatus::kSucceeded, "{}", "", ""),
              ErrorCode::kConflict);
  RunStep step{running.id, "n1", "succeeded", "{}", "", 1, 4, 0, 0};
  EXPECT_CODE(store_->SaveStep(step), ErrorCode::kConflict);
  EXPECT_CODE(store_->CancelRun("01ARZ3NDEKTSV4RRFFQ69G5FAV"), ErrorCode::kNotFound);
}

TEST_P(StoreConformance, RetryMakesOneNewRun) {
  Workflow wf = Apply("wf", "c1");
  ferry::Run ok = NewRun(wf, R"({"x":1})");
  ASSERT_OK(store_->MarkRunRunning(ok.id, 1, "w"));
  ASSERT_OK(store_->FinishRun(ok.id, 1, RunStatus::kSucceeded, "{}", "", ""));
  EXPECT_CODE(store_->RetryRun(ok.id, {}), ErrorCode::kConflict);

  ferry::Run bad = NewRun(wf, R"({"x":2})");
  EXPECT_CODE(store_->RetryRun(bad.id, {}), ErrorCode::kConflict);  // still pending
  ASSERT_OK(store_->MarkRunRunning(bad.id, 1, "w"));
  ASSERT_OK(store_->FinishRun(bad.id, 1, RunStatus::kFailed, "", "err", "n"));
  Apply("wf", "c2");  // a fix: version 2
  auto retry = store_->RetryRun(bad.id, {});
  ASSERT_OK(retry);
  EXPECT_NE(retry->id, bad.id);
  EXPECT_EQ(retry->status, RunStatus::kPending);
  EXPECT_EQ(retry->retry_of, bad.id);
  EXPECT_EQ(retry->triggered_by, TriggeredBy::kRetry);
  EXPECT_EQ(retry->inputs, R"({"x":2})");
  EXPECT_EQ(retry->version, 1);
  auto twice = store_->RetryRun(bad.id, {});
  ASSERT_FALSE(twice);
  EXPECT_EQ(twice.error().code, ErrorCode::kConflict);
  EXPECT_NE(twice.error().message.find(retry->id), std::string::npos);

  ASSERT_OK(store_->CancelRun(retry->id));
  RetryRunOptions latest;
  latest.latest_version = true;
  latest.triggered_by = TriggeredBy::kRemediation;
  auto again = store_->RetryRun(retry->id, latest);
  ASSERT_OK(again);
  EXPECT_EQ(again->version, 2);
  EXPECT_EQ(again->triggered_by, TriggeredBy::kRemediation);
  EXPECT_CODE(store_->RetryRun("01ARZ3NDEKTSV4RRFFQ69G5FAV", {}), ErrorCode::kNotFound);
}

TEST_P(StoreConformance, ListRunsPagesNewestFirstWithFilters) {
  Workflow a = Apply("a", "1");
  Workflow b = Apply("b", "1");
  std::vector<std::string> ids;
  for (int i = 0; i < 7; ++i) ids.push_back(NewRun(i % 2 == 0 ? a : b).id);
  ASSERT_OK(store_->MarkRunRunning(ids[6], 1, "w"));
  CreateRunRequest cron;
  cron.workflow_id = a.id;
  cron.triggered_by = TriggeredBy::kCron;
  ASSERT_OK(store_->CreateRun(cron));

  RunFilter f;
  f.limit = 3;
  std::vector<std::string> seen;
  int pages = 0;
  do {
    auto page = store_->ListRuns(f);
    ASSERT_OK(page);
    ++pages;
    for (const auto& r : page->runs) seen.push_back(r.id);
    f.cursor = page->next_cursor;
  } while (!f.cursor.empty() && pages < 10);
  EXPECT_EQ(pages, 3);
  ASSERT_EQ(seen.size(), 8u);
  for (size_t i = 0; i < 7; ++i) EXPECT_EQ(seen[i + 1], ids[6 - i]);  // newest first

  RunFilter by_wf;
  by_wf.workflow_id = b.id;
  auto bs = store_->ListRuns(by_wf);
  ASSERT_OK(bs);
  EXPECT_EQ(bs->runs.size(), 3u);
  EXPECT_TRUE(bs->next_cursor.empty());
  for (const auto& r : bs->runs) EXPECT_EQ(r.workflow_name, "b");

  RunFilter by_status;
  by_status.status = RunStatus::kRunning;
  auto rs = store_->ListRuns(by_status);
  ASSERT_OK(rs);
  ASSERT_EQ(rs->runs.size(), 1u);
  EXPECT_EQ(rs->runs[0].id, ids[6]);

  RunFilter by_trigger;
  by_trigger.triggered_by = TriggeredBy::kCron;
  by_trigger.workflow_id = a.id;
  auto ts = store_->ListRuns(by_trigger);
  ASSERT_OK(ts);
  EXPECT_EQ(ts->runs.size(), 1u);

  RunFilter bad;
  bad.cursor = "abc";
  EXPECT_CODE(store_->ListRuns(bad), ErrorCode::kInvalidArgument);
  bad.cursor = "";
  bad.limit = 0;
  EXPECT_CODE(store_->ListRuns(bad), ErrorCode::kInvalidArgument);
}

// The runs recovery writes the end of: cancelled in the time asked, with no event of the type
// asked (a run cancelled while its worker was dead never got run.finished).
TEST_P(StoreConformance, CancelledRunsWithoutAnEventOfAType) {
  Workflow wf = Apply("wf", "1");
  ferry::Run old = NewRun(wf);
  ferry::Run held = NewRun(wf);
  ferry::Run ended = NewRun(wf);
  ferry::Run failed = NewRun(wf);
  ASSERT_OK(store_->CancelRun(old.id));
  clock_.Advance(seconds(120));
  ASSERT_OK(store_->MarkRunRunning(held.id, 1, "w"));
  ASSERT_OK(store_->CancelRun(held.id));
  ASSERT_OK(store_->CancelRun(ended.id));
  ASSERT_OK(store_->AppendRunEvent(ended.id, "run.finished", "{\"status\":\"cancelled\"}"));
  ASSERT_OK(store_->MarkRunRunning(failed.id, 1, "w"));
  ASSERT_OK(store_->FinishRun(failed.id, 1, RunStatus::kFailed, "", "boom", ""));

  auto recent = store_->ListCancelledRunsWithout("run.finished", seconds(60), 10);
  ASSERT_OK(recent);
  ASSERT_EQ(recent->size(), 1u);
  EXPECT_EQ((*recent)[0].id, held.id);
  EXPECT_EQ((*recent)[0].status, RunStatus::kCancelled);
  // The one cancelled 120 s ago is in a 120 s window, oldest cancel first; a limit takes the
  // first.
  auto wider = store_->ListCancelledRunsWithout("run.finished", seconds(120), 10);
  ASSERT_OK(wider);
  ASSERT_EQ(wider->size(), 2u);
  EXPECT_EQ((*wider)[0].id, old.id);
  EXPECT_EQ((*wider)[1].id, held.id);
  auto first = store_->ListCancelledRunsWithout("run.finished", seconds(120), 1);
  ASSERT_OK(first);
  ASSERT_EQ(first->size(), 1u);
  EXPECT_EQ((*first)[0].id, old.id);
  // Another type: `ended` has none of it either.
  auto other = store_->ListCancelledRunsWithout("run.waiting", seconds(60), 10);
  ASSERT_OK(other);
  EXPECT_EQ(other->size(), 2u);
  EXPECT_CODE(store_->ListCancelledRunsWithout("run.finished", seconds(60), 0),
              ErrorCode::kInvalidArgument);
}

TEST_P(StoreConformance, SweeperAndRecoveryQueries) {
  Workflow wf = Apply("wf", "1");
  ferry::Run old1 = NewRun(wf);
  ferry::Run old2 = NewRun(wf);
  ferry::Run started = NewRun(wf);
  ASSERT_OK(store_->MarkRunRunning(started.id, 1, "w"));
  clock_.Advance(seconds(10));
  ferry::Run fresh = NewRun(wf);

  auto pending = store_->ListPendingRunsOlderThan(seconds(5), 10);
  ASSERT_OK(pending);
  ASSERT_EQ(pending->size(), 2u);
  EXPECT_EQ((*pending)[0].id, old1.id);  // oldest first
  EXPECT_EQ((*pending)[1].id, old2.id);
  auto one = store_->ListPendingRunsOlderThan(seconds(5), 1);
  ASSERT_OK(one);
  EXPECT_EQ(one->size(), 1u);
  EXPECT_EQ(*store_->CountPendingOlderThan(seconds(5)), 2);
  EXPECT_EQ(*store_->CountPendingOlderThan(milliseconds(0)), 3);

  auto running = store_->ListRunningRuns(seconds(5), 10);
  ASSERT_OK(running);
  ASSERT_EQ(running->size(), 1u);
  EXPECT_EQ((*running)[0].id, started.id);
  EXPECT_EQ(store_->ListRunningRuns(seconds(60), 10)->size(), 0u);
  // A pass goes on after the last run the previous one looked at.
  EXPECT_EQ(store_->ListRunningRuns(seconds(5), 10, started.id)->size(), 0u);
  auto from_before = store_->ListRunningRuns(seconds(5), 10, started.id.substr(0, 25));
  ASSERT_OK(from_before);
  EXPECT_EQ(from_before->size(), 1u);

  auto counts = store_->CountRunsByStatus();
  ASSERT_OK(counts);
  EXPECT_EQ(counts->at(RunStatus::kPending), 3);
  EXPECT_EQ(counts->at(RunStatus::kRunning), 1);
  EXPECT_EQ(counts->at(RunStatus::kSucceeded), 0);
  EXPECT_EQ(counts->size(), 5u);
  (void)fresh;
}

// Counts the full reads a RunCounter makes, and fails them on request.
class CountingStore final : public StoreWrapper {
 public:
  using StoreWrapper::StoreWrapper;
  Result<std::map<RunStatus, int64_t>> CountRunsByStatus() override {
    ++full_counts;
    if (fail) return Fail(ErrorCode::kUnavailable, "statement timeout");
    return StoreWrapper::CountRunsByStatus();
  }
  int full_counts = 0;
  bool fail = false;
};

// The overviews' counter: pending and running as of each call, the ended statuses read in full
// once per period and shared until it has passed.
TEST_P(StoreConformance, TheRunCounterReadsTheEndedRunsOncePerPeriod) {
  Workflow wf = Apply("wf", "1");
  ferry::Run a = NewRun(wf);
  ferry::Run b = NewRun(wf);
  NewRun(wf);
  auto active = store_->CountActiveRuns();
  ASSERT_OK(active);
  EXPECT_EQ(*active,
            (std::map<RunStatus, int64_t>{{RunStatus::kPending, 3}, {RunStatus::kRunning, 0}}));
  CountingStore counting(*store_);
  RunCounter hourly(std::chrono::hours(1));
  auto counts = hourly.Count(counting);
  ASSERT_OK(counts);
  EXPECT_EQ(counts->size(), 5u);
  EXPECT_EQ(counts->at(RunStatus::kPending), 3);
  EXPECT_EQ(counts->at(RunStatus::kSucceeded), 0);
  EXPECT_EQ(counting.full_counts, 1);
  // a runs, then succeeds; b is cancelled: the active counts follow at once, the ended ones
  // wait for their period.
  ASSERT_OK(store_->MarkRunRunning(a.id, 1, "w"));
  counts = hourly.Count(counting);
  ASSERT_OK(counts);
  EXPECT_EQ(counts->at(RunStatus::kPending), 2);
  EXPECT_EQ(counts->at(RunStatus::kRunning), 1);
  ASSERT_OK(store_->FinishRun(a.id, 1, RunStatus::kSucceeded, "{}", "", ""));
  ASSERT_OK(store_->CancelRun(b.id));
  counts = hourly.Count(counting);
  ASSERT_OK(counts);
  EXPECT_EQ(counts->at(RunStatus::kPending), 1);
  EXPECT_EQ(counts->at(RunStatus::kRunning), 0);
  EXPECT_EQ(counts->at(RunStatus::kSucceeded), 0) << "counted an hour's period ago";
  EXPECT_EQ(counting.full_counts, 1);
  // A counter whose period has passed reads them again.
  RunCounter always(milliseconds(0));
  counts = always.Count(counting);
  ASSERT_OK(counts);
  EXPECT_EQ(counts->at(RunStatus::kSucceeded), 1);
  EXPECT_EQ(counts->at(RunStatus::kCancelled), 1);
  EXPECT_EQ(counts->at(RunStatus::kFailed), 0);
  EXPECT_EQ(counts->at(RunStatus::kPending), 1);
  EXPECT_EQ(counting.full_counts, 2);
  ASSERT_OK(always.Count(counting));
  EXPECT_EQ(counting.full_counts, 3);

  // A failed first read is the callers' error until its period passes, and is not read again
  // meanwhile; a failed later read keeps the last counts.
  counting.fail = true;
  RunCounter failing(std::chrono::hours(1));
  EXPECT_CODE(failing.Count(counting), ErrorCode::kUnavailable);
  EXPECT_CODE(failing.Count(counting), ErrorCode::kUnavailable);
  EXPECT_EQ(counting.full_counts, 4);
  counts = always.Count(counting);
  ASSERT_OK(counts);
  EXPECT_EQ(counting.full_counts, 5);
  EXPECT_EQ(counts->at(RunStatus::kSucceeded), 1) << "the last counts, kept";
  EXPECT_EQ(counts->at(RunStatus::kPending), 1);
}

// Callers meanwhile do not wait for a read of the ended statuses once there are counts, and
// do not start their own.
TEST_P(StoreConformance, TheRunCounterAnswersFromTheLastCountsWhileOneCallerReads) {
  Workflow wf = Apply("wf", "1");
  NewRun(wf);
  class SlowStore final : public StoreWrapper {
   public:
    using StoreWrapper::StoreWrapper;
    Result<std::map<RunStatus, int64_t>> CountRunsByStatus() override {
      ++full_counts;
      if (hold) {
        entered.count_down();
        release.wait();
      }
      return StoreWrapper::CountRunsByStatus();
    }
    std::atomic<int> full_counts{0};
    bool hold = false;
    std::latch entered{1};
    std::latch release{1};
  };
  SlowStore slow(*store_);
  RunCounter counter(milliseconds(0));
  ASSERT_OK(counter.Count(slow));  // the first counts
  slow.hold = true;
  std::thread reader([&] { EXPECT_TRUE(counter.Count(slow)); });
  slow.entered.wait();  // the reader is inside its read of the ended statuses
  CountingStore other(*store_);
  auto answer = std::async(std::launch::async, [&] { return counter.Count(other); });
  const bool answered = answer.wait_for(std::chrono::seconds(10)) == std::future_status::ready;
  slow.release.count_down();
  reader.join();
  ASSERT_TRUE(answered) << "a caller waited for another's read";
  auto counts = answer.get();
  ASSERT_OK(counts);
  EXPECT_EQ(counts->at(RunStatus::kPending), 1);
  EXPECT_EQ(other.full_counts, 0) << "a caller started a read while another's was under way";
  EXPECT_EQ(slow.full_counts, 2);
}

TEST_P(StoreConformance, StepsAreInsertOnceAndFenced) {
  Workflow wf = Apply("wf", "1");
  ferry::Run run = NewRun(wf);
  RunStep step{run.id, "fetch", "succeeded", R"({"n":1})", "", 1, 1, 100, 200};
  EXPECT_CODE(store_->SaveStep(step), ErrorCode::kConflict);  // run not running yet
  ASSERT_OK(store_->MarkRunRunning(run.id, 1, "w1"));
  auto saved = store_->SaveStep(step);
  ASSERT_OK(saved);
  EXPECT_EQ(*saved, SaveStepOutcome::kSaved);
  auto again = store_->SaveStep(step);
  ASSERT_OK(again);
  EXPECT_EQ(*again, SaveStepOutcome::kAlreadySaved);
  RunStep changed = step;
  changed.output = R"({"n":2})";
  EXPECT_CODE(store_->SaveStep(changed), ErrorCode::kConflict);

  ASSERT_OK(store_->MarkRunRunning(run.id, 2, "w2"));  // takeover
  RunStep late{run.id, "build", "succeeded", "{}", "", 1, 1, 0, 0};
  EXPECT_CODE(store_->SaveStep(late), ErrorCode::kConflict);  // old epoch
  RunStep redo = step;
  redo.epoch = 2;
  EXPECT_CODE(store_->SaveStep(redo), ErrorCode::kConflict);  // finished nodes never rerun
  late.epoch = 2;
  clock_.Advance(seconds(1));
  ASSERT_OK(store_->SaveStep(late));

  auto steps = store_->ListSteps(run.id);
  ASSERT_OK(steps);
  ASSERT_EQ(steps->size(), 2u);
  EXPECT_EQ((*steps)[0].node_id, "fetch");
  EXPECT_EQ((*steps)[0].output, R"({"n":1})");
  EXPECT_EQ((*steps)[0].epoch, 1);
  EXPECT_EQ((*steps)[0].started_ms, 100);
  EXPECT_EQ((*steps)[1].node_id, "build");
  EXPECT_EQ((*steps)[1].finished_ms, clock_.NowMs());
  RunStep ghost{"01ARZ3NDEKTSV4RRFFQ69G5FAV", "n", "succeeded", "{}", "", 1, 1, 0, 0};
  EXPECT_CODE(store_->SaveStep(ghost), ErrorCode::kNotFound);
}

TEST_P(StoreConformance, AWaitingStepIsReplacedByTheNodesEndAndNothingElse) {
  Workflow wf = Apply("wf", "1");
  ferry::Run run = NewRun(wf);
  ASSERT_OK(store_->MarkRunRunning(run.id, 1, "w1"));
  const std::string waiting(kStepWaiting);
  RunStep wait{run.id, "pause", waiting, R"({"deadline_ms":5000})", "", 1, 1, 100, 0};
  auto saved = store_->SaveStep(wait);
  ASSERT_OK(saved);
  EXPECT_EQ(*saved, SaveStepOutcome::kSaved);
  auto steps = store_->ListSteps(run.id);
  ASSERT_OK(steps);
  ASSERT_EQ(steps->size(), 1u);
  EXPECT_EQ((*steps)[0].status, waiting);
  EXPECT_EQ((*steps)[0].finished_ms, 0) << "a waiting row has not finished";

  // A takeover: the old epoch can no longer write, not even a waiting row.
  ASSERT_OK(store_->MarkRunRunning(run.id, 2, "w2"));
  RunStep stale = wait;
  stale.output = R"({"deadline_ms":9000})";
  EXPECT_CODE(store_->SaveStep(stale), ErrorCode::kConflict);
  RunStep stale_end{run.id, "pause", "succeeded", "{}", "", 1, 1, 100, 0};
  EXPECT_CODE(store_->SaveStep(stale_end), ErrorCode::kConflict);
  // The current epoch's end replaces it.
  RunStep end{run.id, "pause", "succeeded", R"({"waited_ms":4900})", "", 1, 2, 3000, 0};
  clock_.Advance(seconds(1));
  ASSERT_OK(store_->SaveStep(end));
  steps = store_->ListSteps(run.id);
  ASSERT_OK(steps);
  ASSERT_EQ(steps->size(), 1u);
  EXPECT_EQ((*steps)[0].status, "succeeded");
  EXPECT_EQ((*steps)[0].output, R"({"waited_ms":4900})");
  EXPECT_EQ((*steps)[0].epoch, 2);
  EXPECT_EQ((*steps)[0].finished_ms, clock_.NowMs());
  // A finished step is a checkpoint: a waiting row never replaces it.
  RunStep rewait = wait;
  rewait.epoch = 2;
  EXPECT_CODE(store_->SaveStep(rewait), ErrorCode::kConflict);
  EXPECT_EQ(store_->ListSteps(run.id)->at(0).status, "succeeded");
}

TEST_P(StoreConformance, RunEventsResumeAfterSeq) {
  Workflow wf = Apply("wf", "1");
  ferry::Run run = NewRun(wf);
  for (int i = 1; i <= 5; ++i) {
    auto seq = store_->AppendRunEvent(run.id, "log", R"({"i":)" + std::to_string(i) + "}");
    ASSERT_OK(seq);
    EXPECT_EQ(*seq, i);
  }
  auto page = store_->ListRunEvents(run.id, 2, 2);
  ASSERT_OK(page);
  ASSERT_EQ(page->size(), 2u);
  EXPECT_EQ((*page)[0].seq, 3);
  EXPECT_EQ((*page)[0].data, R"({"i":3})");
  EXPECT_EQ((*page)[1].seq, 4);
  EXPECT_EQ((*page)[1].type, "log");
  EXPECT_EQ(store_->ListRunEvents(run.id, 5, 100)->size(), 0u);
  EXPECT_EQ(store_->ListRunEvents(run.id, 0, 100)->size(), 5u);
  EXPECT_CODE(store_->AppendRunEvent("01ARZ3NDEKTSV4RRFFQ69G5FAV", "log", "{}"),
              ErrorCode::kNotFound);
  EXPECT_CODE(store_->ListRunEvents(run.id, 0, 0), ErrorCode::kInvalidArgument);
}

// A page ends at its count or at the event that brings its data to max_bytes, whichever comes
// first, always holds at least one event, and says whether more follow.
TEST_P(StoreConformance, RunEventPagesAreBoundedByCountAndBytes) {
  Workflow wf = Apply("wf", "1");
  ferry::Run run = NewRun(wf);
  // Ten events of exactly 100 bytes of data each ({"s":"xxx...x"}), then one of 10,000.
  const auto data = [](size_t bytes) { return R"({"s":")" + std::string(bytes - 8, 'x') + "\"}"; };
  ASSERT_EQ(data(100).size(), 100u);
  for (int i = 1; i <= 10; ++i) ASSERT_OK(store_->AppendRunEvent(run.id, "log", data(100)));
  ASSERT_OK(store_->AppendRunEvent(run.id, "node.finished", data(10000)));
  const auto seqs = [](const RunEventPage& p) {
    std::vector<int64_t> out;
    for (const auto& e : p.events) out.push_back(e.seq);
    return out;
  };
  using V = std::vector<int64_t>;
  // Bytes: the event that reaches the bound is the last (300 reached by the third).
  auto p = store_->ListRunEventPage(run.id, {.after_seq = 0, .limit = 100, .max_bytes = 300});
  ASSERT_OK(p);
  EXPECT_EQ(seqs(*p), (V{1, 2, 3}));
  EXPECT_TRUE(p->more);
  EXPECT_EQ(p->events[2].data, data(100));
  p = store_->ListRunEventPage(
      run.id, {.after_seq = 0, .limit = 100, .max_bytes = 301});  // one past: the fourth too
  ASSERT_OK(p);
  EXPECT_EQ(seqs(*p), (V{1, 2, 3, 4}));
  p = store_->ListRunEventPage(
      run.id, {.after_seq = 0, .limit = 100, .max_bytes = 299});  // one short: still the third
  ASSERT_OK(p);
  EXPECT_EQ(seqs(*p), (V{1, 2, 3}));
  // Count: a page of exactly what is left says nothing more; one fewer says more.
  p = store_->ListRunEventPage(run.id, {.after_seq = 8, .limit = 3, .max_bytes = 1 << 20});
  ASSERT_OK(p);
  EXPECT_EQ(seqs(*p), (V{9, 10, 11}));
  EXPECT_FALSE(p->more);
  p = store_->ListRunEventPage(run.id, {.after_seq = 8, .limit = 2, .max_bytes = 1 << 20});
  ASSERT_OK(p);
  EXPECT_EQ(seqs(*p), (V{9, 10}));
  EXPECT_TRUE(p->more);
  // An event larger than the bound still comes, alone.
  p = store_->ListRunEventPage(run.id, {.after_seq = 10, .limit = 100, .max_bytes = 1});
  ASSERT_OK(p);
  EXPECT_EQ(seqs(*p), (V{11}));
  EXPECT_EQ(p->events[0].data.size(), 10000u);
  EXPECT_EQ(p->events[0].type, "node.finished");
  EXPECT_FALSE(p->more);
  // Past the end, and near-miss arguments.
  p = store_->ListRunEventPage(run.id, {.after_seq = 11, .limit = 100, .max_bytes = 1 << 20});
  ASSERT_OK(p);
  EXPECT_TRUE(p->events.empty());
  EXPECT_FALSE(p->more);
  EXPECT_CODE(store_->ListRunEventPage(run.id, {.after_seq = 0, .limit = 0, .max_bytes = 100}),
              ErrorCode::kInvalidArgument);
  EXPECT_CODE(store_->ListRunEventPage(run.id, {.after_seq = 0, .limit = 10001, .max_bytes = 100}),
              ErrorCode::kInvalidArgument);
  EXPECT_CODE(store_->ListRunEventPage(run.id, {.after_seq = 0, .limit = 10, .max_bytes = 0}),
              ErrorCode::kInvalidArgument);

  // Bytes, not characters: 50 two-byte characters are 100 bytes of data, not 50 characters.
  ferry::Run other = NewRun(wf);
  std::string accents = R"({"s":")";
  for (int i = 0; i < 46; ++i) accents += "\xC3\xA9";  // é
  accents += "\"}";
  ASSERT_EQ(accents.size(), 100u);
  for (int i = 0; i < 3; ++i) ASSERT_OK(store_->AppendRunEvent(other.id, "log", accents));
  p = store_->ListRunEventPage(other.id, {.after_seq = 0, .limit = 100, .max_bytes = 150});
  ASSERT_OK(p);
  EXPECT_EQ(seqs(*p), (V{1, 2})) << "54 characters each, 100 bytes: the second reaches 150";
  EXPECT_TRUE(p->more);
}

// A page may hold only some types, and the last events instead of the first; both keep the
// count and byte bounds, and `more` says whether further such events exist.
TEST_P(StoreConformance, RunEventPagesFilterByTypeAndReadFromTheEnd) {
  Workflow wf = Apply("wf", "1");
  ferry::Run run = NewRun(wf);
  // seq 1..12: log, node.finished, log, node.finished, ... (each 100 bytes of data).
  const std::string hundred = R"({"s":")" + std::string(92, 'x') + "\"}";
  for (int i = 1; i <= 12; ++i) {
    ASSERT_OK(store_->AppendRunEvent(run.id, i % 2 == 1 ? "log" : "node.finished", hundred));
  }
  const auto seqs = [](const RunEventPage& p) {
    std::vector<int64_t> out;
    for (const auto& e : p.events) out.push_back(e.seq);
    return out;
  };
  using V = std::vector<int64_t>;
  auto p = store_->ListRunEventPage(run.id, {.limit = 100, .types = {"node.finished"}});
  ASSERT_OK(p);
  EXPECT_EQ(seqs(*p), (V{2, 4, 6, 8, 10, 12}));
  EXPECT_FALSE(p->more);
  for (const auto& e : p->events) EXPECT_EQ(e.type, "node.finished");
  // Several types, after a seq, cut by count: the next page starts where this one ended.
  p = store_->ListRunEventPage(run.id,
                               {.after_seq = 3, .limit = 4, .types = {"log", "node.finished"}});
  ASSERT_OK(p);
  EXPECT_EQ(seqs(*p), (V{4, 5, 6, 7}));
  EXPECT_TRUE(p->more);
  // Cut by bytes (the third reaches 300), with a type no event has beside one that some have.
  p = store_->ListRunEventPage(run.id,
                               {.limit = 100, .max_bytes = 300, .types = {"run.gone", "log"}});
  ASSERT_OK(p);
  EXPECT_EQ(seqs(*p), (V{1, 3, 5}));
  EXPECT_TRUE(p->more);
  p = store_->ListRunEventPage(run.id, {.limit = 100, .types = {"run.gone"}});
  ASSERT_OK(p);
  EXPECT_TRUE(p->events.empty());
  EXPECT_FALSE(p->more);
  // The last ones, in ascending order: by count, by bytes, and all of them.
  p = store_->ListRunEventPage(run.id, {.limit = 3, .last = true});
  ASSERT_OK(p);
  EXPECT_EQ(seqs(*p), (V{10, 11, 12}));
  EXPECT_TRUE(p->more);
  p = store_->ListRunEventPage(run.id, {.limit = 100, .max_bytes = 201, .last = true});
  ASSERT_OK(p);
  EXPECT_EQ(seqs(*p), (V{10, 11, 12})) << "the third from the end reaches 201";
  p = store_->ListRunEventPage(run.id, {.limit = 100, .max_bytes = 200, .last = true});
  ASSERT_OK(p);
  EXPECT_EQ(seqs(*p), (V{11, 12}));
  EXPECT_TRUE(p->more);
  p = store_->ListRunEventPage(run.id, {.after_seq = 9, .limit = 3, .last = true});
  ASSERT_OK(p);
  EXPECT_EQ(seqs(*p), (V{10, 11, 12}));
  EXPECT_FALSE(p->more) << "nothing after seq 9 is left before the page";
  p = store_->ListRunEventPage(run.id, {.limit = 2, .types = {"log"}, .last = true});
  ASSERT_OK(p);
  EXPECT_EQ(seqs(*p), (V{9, 11}));
  EXPECT_TRUE(p->more);
  EXPECT_EQ(p->events[1].data, hundred);
}

TEST_P(StoreConformance, ARunsFirstEventIsWrittenWithItAndNumberedOne) {
  Workflow wf = Apply("wf", "1");
  CreateRunRequest req;
  req.workflow_id = wf.id;
  req.first_event.type = "run.created";
  req.first_event.data = R"({"triggered_by":"api"})";
  // Rolled back with the run: no event is left behind without its run.
  std::string gone;
  {
    auto tx = store_->Begin();
    ASSERT_OK(tx);
    auto inside = store_->CreateRun(req);
    ASSERT_OK(inside);
    gone = inside->id;
    EXPECT_EQ(store_->ListRunEvents(gone, 0, 10)->size(), 1u);
  }  // not committed
  EXPECT_FALSE(store_->GetRun(gone)->has_value());
  EXPECT_EQ(store_->ListRunEvents(gone, 0, 10)->size(), 0u);
  // Outside a transaction the run and its event are still one commit.
  const auto before = store_internal::ReadSqlCounters();
  auto run = store_->CreateRun(req);
  ASSERT_OK(run);
  EXPECT_EQ(store_internal::ReadSqlCounters().commits - before.commits, 1);
  auto next = store_->AppendRunEvent(run->id, "run.enqueued", "{}");
  ASSERT_OK(next);
  EXPECT_EQ(*next, 2);
  auto events = store_->ListRunEvents(run->id, 0, 10);
  ASSERT_OK(events);
  ASSERT_EQ(events->size(), 2u);
  EXPECT_EQ((*events)[0].seq, 1);
  EXPECT_EQ((*events)[0].type, "run.created");
  EXPECT_EQ((*events)[0].data, R"({"triggered_by":"api"})");
  // Without a type, no event.
  CreateRunRequest plain;
  plain.workflow_id = wf.id;
  auto bare = store_->CreateRun(plain);
  ASSERT_OK(bare);
  EXPECT_EQ(store_->ListRunEvents(bare->id, 0, 10)->size(), 0u);
}

// A run with its first event goes to the database in one piece (on PostgreSQL one round trip
// with its COMMIT): refused, it leaves no event behind; a clash rolls both back and leaves the
// connection usable.
TEST_P(StoreConformance, ARunWithItsFirstEventIsWrittenWhollyOrNotAtAll) {
  Workflow wf = Apply("wf", "1");
  CreateRunRequest req;
  req.id = NewId();
  req.workflow_id = "nope";
  req.first_event.type = "run.created";
  EXPECT_CODE(store_->CreateRun(req), ErrorCode::kNotFound);
  EXPECT_FALSE(store_->GetRun(req.id)->has_value());
  EXPECT_EQ(store_->ListRunEvents(req.id, 0, 10)->size(), 0u);
  req.workflow_id = wf.id;
  ASSERT_OK(store_->CreateRun(req));
  EXPECT_CODE(store_->CreateRun(req), ErrorCode::kConflict);  // the same id again
  auto events = store_->ListRunEvents(req.id, 0, 10);
  ASSERT_OK(events);
  EXPECT_EQ(events->size(), 1u);
  req.id = NewId();
  auto next = store_->CreateRun(req);
  ASSERT_OK(next);
  EXPECT_EQ(store_->ListRunEvents(next->id, 0, 10)->size(), 1u);
  EXPECT_EQ(store_->ListRuns({})->runs.size(), 2u);
}

TEST_P(StoreConformance, EventsAppendedTogetherKeepTheirOrderAndTimes) {
  Workflow wf = Apply("wf", "1");
  ferry::Run run = NewRun(wf);
  ASSERT_OK(store_->AppendRunEvent(run.id, "first", "{}"));
  // 40 events: more than one statement's worth (16), numbered on from the existing one.
  std::vector<NewRunEvent> batch;
  for (int i = 0; i < 40; ++i) {
    batch.push_back(NewRunEvent{"log", R"({"i":)" + std::to_string(i) + "}", 1'000 + i});
  }
  batch.back().ts_ms = 0;  // 0: the time of writing
  auto last = store_->AppendRunEvents(run.id, batch);
  ASSERT_OK(last);
  EXPECT_EQ(*last, 41);
  auto events = store_->ListRunEvents(run.id, 0, 100);
  ASSERT_OK(events);
  ASSERT_EQ(events->size(), 41u);
  for (int i = 0; i < 40; ++i) {
    const RunEvent& e = (*events)[static_cast<size_t>(i) + 1];
    EXPECT_EQ(e.seq, i + 2);
    EXPECT_EQ(e.data, R"({"i":)" + std::to_string(i) + "}");
    if (i < 39) {
      EXPECT_EQ(e.ts_ms, 1'000 + i);
    }
  }
  EXPECT_EQ(events->back().ts_ms, clock_.NowMs());
  // Nothing to append: 0. A typeless event refuses the whole batch before writing any.
  EXPECT_EQ(*store_->AppendRunEvents(run.id, {}), 0);
  EXPECT_CODE(store_->AppendRunEvents(run.id, {{"ok", "{}", 0}, {"", "{}", 0}}),
              ErrorCode::kInvalidArgument);
  EXPECT_EQ(store_->ListRunEvents(run.id, 0, 100)->size(), 41u);
  EXPECT_CODE(store_->AppendRunEvents("01ARZ3NDEKTSV4RRFFQ69G5FAV", {{"log", "{}", 0}}),
              ErrorCode::kNotFound);
  // Inside a transaction that is not committed, none of them stays.
  {
    auto tx = store_->Begin();
    ASSERT_OK(tx);
    ASSERT_OK(store_->AppendRunEvents(run.id, batch));
    EXPECT_EQ(store_->ListRunEvents(run.id, 0, 100)->size(), 81u);
  }
  EXPECT_EQ(store_->ListRunEvents(run.id, 0, 100)->size(), 41u);
  // After a single append the numbers go on.
  EXPECT_EQ(*store_->AppendRunEvent(run.id, "last", "{}"), 42);
}

TEST_P(StoreConformance, SyncTriggersKeepsHistoryByKey) {
  Workflow wf = Apply("wf", "1");
  std::vector<TriggerSpec> specs = {
      {TriggerKind::kWebhook, "webhook", R"({"methods":["POST"]})"},
      {TriggerKind::kCron, "cron:0", R"({"schedule":"* * * * *"})"},
  };
  auto synced = store_->SyncTriggers(wf.id, specs);
  ASSERT_OK(synced);
  ASSERT_EQ(synced->size(), 2u);
  const Trigger& cron = (*synced)[0].kind == TriggerKind::kCron ? (*synced)[0] : (*synced)[1];
  EXPECT_EQ(cron.workflow_name, "wf");
  EXPECT_TRUE(cron.enabled);
  ASSERT_OK(store_->UpdateTriggerFireTimes(cron.id, 60'000, 120'000));
  ASSERT_OK(store_->UpdateTriggerFireTimes(cron.id, 30'000, 120'000));  // last only advances
  auto t = store_->GetTrigger(cron.id);
  ASSERT_OK(t);
  EXPECT_EQ((*t)->last_fire_ms, 60'000);
  EXPECT_EQ((*t)->next_fire_ms, 120'000);

  // Same specs again: nothing changes.
  ASSERT_OK(store_->SyncTriggers(wf.id, specs));
  EXPECT_EQ((*store_->GetTrigger(cron.id))->next_fire_ms, 120'000);

  // Changed schedule: same trigger id, next fire recomputed.
  specs[1].config = R"({"schedule":"*/5 * * * *"})";
  ASSERT_OK(store_->SyncTriggers(wf.id, specs));
  t = store_->GetTrigger(cron.id);
  EXPECT_EQ((*t)->config, specs[1].config);
  EXPECT_EQ((*t)->next_fire_ms, 0);
  EXPECT_EQ((*t)->last_fire_ms, 60'000);

  // Dropped: disabled, kept.
  ASSERT_OK(store_->SyncTriggers(wf.id, {specs[0]}));
  EXPECT_FALSE((*store_->GetTrigger(cron.id))->enabled);
  TriggerFilter crons;
  crons.kind = TriggerKind::kCron;
  EXPECT_EQ(store_->ListTriggers(crons)->size(), 0u);
  crons.enabled_only = false;
  EXPECT_EQ(store_->ListTriggers(crons)->size(), 1u);
  // Back again: re-enabled with the same id.
  auto back = store_->SyncTriggers(wf.id, specs);
  ASSERT_OK(back);
  EXPECT_EQ(back->size(), 2u);
  EXPECT_TRUE((*store_->GetTrigger(cron.id))->enabled);

  ASSERT_OK(store_->SetWorkflowPaused(wf.id, true));
  EXPECT_TRUE((*store_->GetTrigger(cron.id))->workflow_paused);

  EXPECT_CODE(store_->SyncTriggers("nope", specs), ErrorCode::kNotFound);
  EXPECT_CODE(store_->SyncTriggers(wf.id, {specs[0], specs[0]}), ErrorCode::kInvalidArgument);
  EXPECT_CODE(store_->UpdateTriggerFireTimes("nope", 1, 2), ErrorCode::kNotFound);
}

TEST_P(StoreConformance, CronFiresExactlyOnce) {
  Workflow wf = Apply("wf", "1");
  auto trig = store_->SyncTriggers(wf.id, {{TriggerKind::kCron, "cron:0", "{}"}});
  ASSERT_OK(trig);
  const std::string tid = (*trig)[0].id;
  CreateRunRequest req;
  req.inputs = R"({"scheduled_for":"2024-01-01T00:00:00Z"})";
  req.first_event.type = "run.created";
  req.first_event.data = R"({"triggered_by":"cron"})";
  auto first = store_->CreateCronRun(tid, 1'704'067'200'000, req);
  ASSERT_OK(first);
  ASSERT_TRUE(first->has_value());
  EXPECT_EQ((*first)->triggered_by, TriggeredBy::kCron);
  EXPECT_EQ((*first)->trigger_id, tid);
  EXPECT_EQ((*first)->workflow_id, wf.id);
  auto dup = store_->CreateCronRun(tid, 1'704'067'200'000, req);
  ASSERT_OK(dup);
  EXPECT_FALSE(dup->has_value());
  EXPECT_EQ(store_->ListRuns({})->runs.size(), 1u);
  EXPECT_EQ((*store_->GetTrigger(tid))->last_fire_ms, 1'704'067'200'000);
  // The claimed occurrence's run came with its event; the duplicate wrote none.
  auto events = store_->ListRunEvents((*first)->id, 0, 10);
  ASSERT_OK(events);
  ASSERT_EQ(events->size(), 1u);
  EXPECT_EQ((*events)[0].type, "run.created");
  EXPECT_EQ((*events)[0].data, R"({"triggered_by":"cron"})");

  auto rec = store_->RecordCronFire(tid, 5'000, "");
  ASSERT_OK(rec);
  EXPECT_TRUE(*rec);
  EXPECT_FALSE(*store_->RecordCronFire(tid, 5'000, ""));
  auto fires = store_->ListCronFires(tid, 10);
  ASSERT_OK(fires);
  ASSERT_EQ(fires->size(), 2u);
  EXPECT_EQ((*fires)[0].fire_ms, 1'704'067'200'000);  // newest first
  EXPECT_EQ((*fires)[0].run_id, (*first)->id);
  EXPECT_EQ((*fires)[1].run_id, "");
  EXPECT_CODE(store_->RecordCronFire("nope", 1, ""), ErrorCode::kNotFound);
  EXPECT_CODE(store_->CreateCronRun("nope", 1, req), ErrorCode::kNotFound);
}

TEST_P(StoreConformance, ApiTokens) {
  auto t = store_->CreateApiToken("ci", "hash-1", {"admin"});
  ASSERT_OK(t);
  EXPECT_EQ(t->name, "ci");
  EXPECT_EQ(t->last_used_ms, 0);
  EXPECT_CODE(store_->CreateApiToken("other", "hash-1", {"admin"}), ErrorCode::kConflict);
  clock_.Advance(Millis(1));  // listed by creation time
  ASSERT_OK(store_->CreateApiToken("ops", "hash-2", {"read", "secret:X"}));

  auto v = store_->VerifyApiToken("hash-1");
  ASSERT_OK(v);
  ASSERT_TRUE(v->has_value());
  EXPECT_EQ((*v)->id, t->id);
  EXPECT_EQ((*v)->last_used_ms, clock_.NowMs());
  EXPECT_FALSE(store_->VerifyApiToken("hash-3")->has_value());

  auto list = store_->ListApiTokens();
  ASSERT_OK(list);
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].last_used_ms, clock_.NowMs());
  EXPECT_EQ((*list)[0].scopes, std::vector<std::string>{"admin"});
  EXPECT_EQ((*list)[1].scopes, (std::vector<std::string>{"read", "secret:X"}));
  EXPECT_EQ((*store_->VerifyApiToken("hash-2"))->scopes,
            (std::vector<std::string>{"read", "secret:X"}));
  EXPECT_CODE(store_->CreateApiToken("none", "hash-4", {}), ErrorCode::kInvalidArgument);
  EXPECT_CODE(store_->CreateApiToken("space", "hash-5", {"read run"}), ErrorCode::kInvalidArgument);

  ASSERT_OK(store_->RevokeApiToken(t->id));
  ASSERT_OK(store_->RevokeApiToken(t->id));  // twice is a no-op
  EXPECT_FALSE(store_->VerifyApiToken("hash-1")->has_value());
  EXPECT_GT((*store_->ListApiTokens())[0].revoked_ms, 0);
  EXPECT_CODE(store_->RevokeApiToken("nope"), ErrorCode::kNotFound);
}

TEST_P(StoreConformance, ATokenWhoseLastUseCannotBeWrittenStillVerifies) {
  // Recording the last use is bookkeeping: a database held by another writer past the store's
  // timeouts must not fail the request the token came with.
  auto t = store_->CreateApiToken("ci", "hash-1", {"read"});
  ASSERT_OK(t);
  StoreOptions quick = options_;
  quick.busy_timeout = milliseconds(200);
  quick.statement_timeout = milliseconds(300);
  auto factory = MakeStoreFactory(location_, quick);
  ASSERT_TRUE(factory) << factory.error().ToString();
  auto other = (*factory)->Open();
  ASSERT_TRUE(other) << other.error().ToString();
  {
    // Holds the token's row (and, in SQLite, the file) until the end of the block.
    auto tx = store_->Begin();
    ASSERT_OK(tx);
    ASSERT_OK(store_->RevokeApiToken(t->id));
    auto v = (*other)->VerifyApiToken("hash-1");
    ASSERT_OK(v);
    ASSERT_TRUE(v->has_value());
    EXPECT_EQ((*v)->id, t->id);
    EXPECT_EQ((*v)->last_used_ms, 0);  // not written
  }
  // Rolled back: the token lives on, and its next use is recorded.
  auto v = (*other)->VerifyApiToken("hash-1");
  ASSERT_OK(v);
  ASSERT_TRUE(v->has_value());
  EXPECT_EQ((*v)->last_used_ms, clock_.NowMs());
}

TEST_P(StoreConformance, NoncesRejectReplaysUntilExpiry) {
  int64_t exp = clock_.NowMs() + 300'000;
  EXPECT_TRUE(*store_->RememberNonce("hooks/wf", "sig-1", exp));
  EXPECT_FALSE(*store_->RememberNonce("hooks/wf", "sig-1", exp));
  EXPECT_TRUE(*store_->RememberNonce("hooks/other", "sig-1", exp));
  EXPECT_TRUE(*store_->RememberNonce("hooks/wf", "sig-2", exp + 600'000));
  clock_.Advance(milliseconds(300'001));
  EXPECT_TRUE(*store_->RememberNonce("hooks/wf", "sig-1", clock_.NowMs() + 1000));
  EXPECT_FALSE(*store_->RememberNonce("hooks/wf", "sig-1", clock_.NowMs() + 1000));
  auto deleted = store_->DeleteExpiredNonces(100);
  ASSERT_OK(deleted);
  EXPECT_EQ(*deleted, 1);  // hooks/other sig-1
  EXPECT_FALSE(*store_->RememberNonce("hooks/wf", "sig-2", 0));
  EXPECT_CODE(store_->RememberNonce("s", "", exp), ErrorCode::kInvalidArgument);
}

TEST_P(StoreConformance, RetentionDeletesFinishedRunsInBatches) {
  Workflow wf = Apply("wf", "1");
  auto trig = store_->SyncTriggers(wf.id, {{TriggerKind::kCron, "c", "{}"}});
  ASSERT_OK(trig);
  std::vector<std::string> finished;
  for (int i = 0; i < 5; ++i) {
    ferry::Run r = NewRun(wf);
    ASSERT_OK(store_->MarkRunRunning(r.id, 1, "w"));
    ASSERT_OK(store_->SaveStep({r.id, "n", "succeeded", "{}", "", 1, 1, 0, 0}));
    ASSERT_OK(store_->AppendRunEvent(r.id, "log", "{}"));
    ASSERT_OK(store_->FinishRun(r.id, 1, i == 0 ? RunStatus::kFailed : RunStatus::kSucceeded, "{}",
                                "", ""));
    finished.push_back(r.id);
  }
  auto retry = store_->RetryRun(finished[0], {});
  ASSERT_OK(retry);
  ASSERT_OK(store_->RecordCronFire((*trig)[0].id, 1, finished[1]));
  ferry::Run live = NewRun(wf);
  ASSERT_OK(store_->MarkRunRunning(live.id, 1, "w"));
  clock_.Advance(seconds(5));
  int64_t cutoff = clock_.NowMs();

  auto first = store_->DeleteFinishedRunsBefore(cutoff, 2);
  ASSERT_OK(first);
  EXPECT_EQ(*first, 2);
  auto second = store_->DeleteFinishedRunsBefore(cutoff, 10);
  ASSERT_OK(second);
  EXPECT_EQ(*second, 3);
  EXPECT_EQ(*store_->DeleteFinishedRunsBefore(cutoff, 10), 0);

  for (const auto& id : finished) {
    EXPECT_FALSE(store_->GetRun(id)->has_value());
    EXPECT_EQ(store_->ListSteps(id)->size(), 0u);
    EXPECT_EQ(store_->ListRunEvents(id, 0, 10)->size(), 0u);
  }
  auto kept = store_->GetRun(retry->id);
  ASSERT_OK(kept);
  ASSERT_TRUE(kept->has_value());
  EXPECT_EQ((*kept)->retry_of, "");
  EXPECT_TRUE(store_->GetRun(live.id)->has_value());
  auto fires = store_->ListCronFires((*trig)[0].id, 10);
  ASSERT_EQ(fires->size(), 1u);
  EXPECT_EQ((*fires)[0].run_id, "");

  clock_.Advance(seconds(1));
  EXPECT_EQ(*store_->DeleteCronFiresBefore(clock_.NowMs(), 10), 1);
}

TEST_P(StoreConformance, TransactionsRollBackUnlessCommitted) {
  Workflow wf = Apply("wf", "1");
  std::string dropped;
  {
    auto tx = store_->Begin();
    ASSERT_OK(tx);
    EXPECT_CODE(store_->Begin(), ErrorCode::kInvalidArgument);
    dropped = NewRun(wf).id;
    ASSERT_TRUE(store_->GetRun(dropped)->has_value());  // visible inside
  }
  EXPECT_FALSE(store_->GetRun(dropped)->has_value());

  ferry::Run done = NewRun(wf);
  ASSERT_OK(store_->MarkRunRunning(done.id, 1, "w"));
  ASSERT_OK(store_->FinishRun(done.id, 1, RunStatus::kSucceeded, "{}", "", ""));
  std::string kept;
  {
    auto tx = store_->Begin();
    ASSERT_OK(tx);
    kept = NewRun(wf).id;
    // A failed condition inside leaves the transaction usable.
    EXPECT_CODE(store_->MarkRunRunning(done.id, 2, "w"), ErrorCode::kConflict);
    ASSERT_OK(store_->AppendRunEvent(kept, "created", "{}"));
    ASSERT_OK((*tx)->Commit());
    EXPECT_CODE((*tx)->Commit(), ErrorCode::kInvalidArgument);
  }
  EXPECT_TRUE(store_->GetRun(kept)->has_value());
  EXPECT_EQ(store_->ListRunEvents(kept, 0, 10)->size(), 1u);
  // Another connection sees the committed run.
  auto other = Open();
  ASSERT_NE(other, nullptr);
  EXPECT_TRUE(other->GetRun(kept)->has_value());
}

// A run created "only if the version is still current" is refused, writing nothing, once
// another version was applied; without the condition an older version may still be run.
TEST_P(StoreConformance, ARunForAVersionNoLongerCurrentIsRefusedWhenAsked) {
  Workflow wf = Apply("wf", "1");
  CreateRunRequest req;
  req.workflow_id = wf.id;
  req.version = 1;
  req.only_if_current = true;
  req.first_event.type = "run.created";
  auto ok = store_->CreateRun(req);
  ASSERT_OK(ok);
  EXPECT_EQ(ok->version, 1);
  Apply("wf", "2");
  auto refused = store_->CreateRun(req);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, ErrorCode::kConflict) << refused.error().message;
  EXPECT_NE(refused.error().message.find("no longer its current one"), std::string::npos)
      << refused.error().message;
  EXPECT_EQ(store_->ListRuns({})->runs.size(), 1u);
  req.version = 2;
  auto current = store_->CreateRun(req);
  ASSERT_OK(current);
  EXPECT_EQ(current->version, 2);
  req.version = 1;
  req.only_if_current = false;
  auto old = store_->CreateRun(req);
  ASSERT_OK(old);
  EXPECT_EQ(old->version, 1);
  req.version = 7;  // no such version: not found, as without the condition
  req.only_if_current = true;
  EXPECT_CODE(store_->CreateRun(req), ErrorCode::kNotFound);
}

// A statement that fails inside a user's transaction (here a duplicate run id) undoes only
// itself, however often: the transaction goes on and commits the rest. On PostgreSQL the
// savepoint that makes this so travels with the statement (SqlConn::Defer).
TEST_P(StoreConformance, AStatementFailingInsideATransactionUndoesOnlyItself) {
  Workflow wf = Apply("wf", "1");
  ferry::Run first = NewRun(wf);
  CreateRunRequest dup;
  dup.workflow_id = wf.id;
  dup.id = first.id;
  std::string kept;
  {
    auto tx = store_->Begin();
    ASSERT_OK(tx);
    EXPECT_CODE(store_->CreateRun(dup), ErrorCode::kConflict);
    kept = NewRun(wf).id;
    EXPECT_CODE(store_->CreateRun(dup), ErrorCode::kConflict);
    ASSERT_OK(store_->AppendRunEvent(kept, "created", "{}"));
    ASSERT_OK((*tx)->Commit());
  }
  EXPECT_TRUE(store_->GetRun(kept)->has_value());
  EXPECT_EQ(store_->ListRunEvents(kept, 0, 10)->size(), 1u);
  EXPECT_EQ(store_->ListRuns({})->runs.size(), 2u);
  // Transactions that end before any statement: rolled back, and committed empty. The store
  // is usable after each.
  {
    auto tx = store_->Begin();
    ASSERT_OK(tx);
  }
  {
    auto tx = store_->Begin();
    ASSERT_OK(tx);
    ASSERT_OK((*tx)->Commit());
  }
  ferry::Run after = NewRun(wf);
  EXPECT_TRUE(store_->GetRun(after.id)->has_value());
}

// --- races: each thread has its own connection; exactly one may win each race.

template <typename F>
int Race(StoreFactory& factory, int threads, F body) {
  std::vector<std::unique_ptr<Store>> stores;
  for (int i = 0; i < threads; ++i) {
    auto s = factory.Open();
    if (!s) {
      ADD_FAILURE() << s.error().ToString();
      return -1;
    }
    stores.push_back(std::move(*s));
  }
  std::latch start(threads);
  std::atomic<int> wins{0};
  std::vector<std::thread> ts;
  for (int i = 0; i < threads; ++i) {
    ts.emplace_back([&, i] {
      start.arrive_and_wait();
      if (body(*stores[static_cast<size_t>(i)], i)) ++wins;
    });
  }
  for (auto& t : ts) t.join();
  return wins.load();
}

TEST_P(StoreConformance, RaceMarkRunningOneWins) {
  Workflow wf = Apply("wf", "1");
  for (int round = 0; round < 15; ++round) {
    ferry::Run run = NewRun(wf);
    std::atomic<int> unexpected{0};
    int wins = Race(*factory_, 2, [&](Store& s, int i) {
      auto r = s.MarkRunRunning(run.id, 1, "w" + std::to_string(i));
      if (!r && r.error().code != ErrorCode::kConflict) {
        ++unexpected;
        ADD_FAILURE() << r.error().ToString();
      }
      return r.has_value();
    });
    EXPECT_EQ(wins, 1) << "round " << round;
    EXPECT_EQ(unexpected.load(), 0);
    EXPECT_EQ((*store_->GetRun(run.id))->attempt, 1);
  }
}

TEST_P(StoreConformance, RaceFinishRunOneWins) {
  Workflow wf = Apply("wf", "1");
  for (int round = 0; round < 15; ++round) {
    ferry::Run run = NewRun(wf);
    ASSERT_OK(store_->MarkRunRunning(run.id, 3, "w"));
    int wins = Race(*factory_, 2, [&](Store& s, int i) {
      auto status = i == 0 ? RunStatus::kSucceeded : RunStatus::kFailed;
      auto r = s.FinishRun(run.id, 3, status, "{}", i == 0 ? "" : "x", "");
      if (!r && r.error().code != ErrorCode::kConflict) ADD_FAILURE() << r.error().ToString();
      return r.has_value();
    });
    EXPECT_EQ(wins, 1) << "round " << round;
  }
}

TEST_P(StoreConformance, RaceCronFireOneWins) {
  Workflow wf = Apply("wf", "1");
  auto trig = store_->SyncTriggers(wf.id, {{TriggerKind::kCron, "c", "{}"}});
  ASSERT_OK(trig);
  std::string tid = (*trig)[0].id;
  for (int round = 0; round < 15; ++round) {
    int64_t fire = 60'000 * (round + 1);
    int wins = Race(*factory_, 3, [&](Store& s, int) {
      auto r = s.CreateCronRun(tid, fire, {});
      if (!r) ADD_FAILURE() << r.error().ToString();
      return r && r->has_value();
    });
    EXPECT_EQ(wins, 1) << "round " << round;
    int recorded = Race(*factory_, 2, [&](Store& s, int) {
      auto r = s.RecordCronFire(tid, fire + 1, "");
      if (!r) ADD_FAILURE() << r.error().ToString();
      return r && *r;
    });
    EXPECT_EQ(recorded, 1) << "round " << round;
  }
  EXPECT_EQ(store_->ListRuns({})->runs.size(), 15u);
}

TEST_P(StoreConformance, RaceNonceOneWins) {
  for (int round = 0; round < 15; ++round) {
    std::string nonce = "sig-" + std::to_string(round);
    int wins = Race(*factory_, 3, [&](Store& s, int) {
      auto r = s.RememberNonce("hooks/wf", nonce, clock_.NowMs() + 60'000);
      if (!r) ADD_FAILURE() << r.error().ToString();
      return r && *r;
    });
    EXPECT_EQ(wins, 1) << "round " << round;
  }
}

// A run created with a webhook's nonce remembers it in the run's own commit: a second run with
// it is refused (nothing written) until it expires; a run refused for another reason leaves it
// unused; inside a user's transaction a rollback forgets it with the run.
TEST_P(StoreConformance, ARunsNonceIsRememberedWithItAndOnlyWithIt) {
  Workflow wf = Apply("wf", "1");
  CreateRunRequest req;
  req.workflow_id = wf.id;
  req.first_event.type = "run.created";
  req.nonce.scope = "webhook:" + wf.id;
  req.nonce.value = "sig-1";
  req.nonce.expires_ms = clock_.NowMs() + 60'000;
  auto first = store_->CreateRun(req);
  ASSERT_OK(first);
  EXPECT_EQ(store_->ListRunEvents(first->id, 0, 10)->size(), 1u);
  req.id = NewId();
  auto again = store_->CreateRun(req);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, ErrorCode::kConflict) << again.error().ToString();
  EXPECT_NE(again.error().message.find("already used"), std::string::npos) << again.error().message;
  EXPECT_FALSE(store_->GetRun(req.id)->has_value());
  EXPECT_EQ(store_->ListRunEvents(req.id, 0, 10)->size(), 0u);
  // Without a first event the nonce still goes with the run.
  req.first_event.type.clear();
  EXPECT_CODE(store_->CreateRun(req), ErrorCode::kConflict);
  req.first_event.type = "run.created";
  // Refused for its workflow's version: the nonce stays unused.
  req.nonce.value = "sig-2";
  req.version = 7;
  EXPECT_CODE(store_->CreateRun(req), ErrorCode::kNotFound);
  req.version = 0;
  ASSERT_OK(store_->CreateRun(req));
  // Inside a transaction that rolls back, the nonce goes with the run.
  req.id.clear();
  req.nonce.value = "sig-3";
  {
    auto tx = store_->Begin();
    ASSERT_OK(tx);
    ASSERT_OK(store_->CreateRun(req));
    EXPECT_CODE(store_->CreateRun(req), ErrorCode::kConflict);  // the same nonce, inside
  }
  ASSERT_OK(store_->CreateRun(req));
  // An expired nonce is taken over.
  req.nonce.value = "sig-1";
  EXPECT_CODE(store_->CreateRun(req), ErrorCode::kConflict);
  clock_.Advance(milliseconds(60'001));
  req.nonce.expires_ms = clock_.NowMs() + 60'000;
  ASSERT_OK(store_->CreateRun(req));
  EXPECT_EQ(store_->ListRuns({})->runs.size(), 4u);
  // A record that names no run (RememberNonce's, or one from before migration 005) is a replay
  // all the same.
  ASSERT_TRUE(*store_->RememberNonce(req.nonce.scope, "sig-4", clock_.NowMs() + 60'000));
  req.nonce.value = "sig-4";
  EXPECT_CODE(store_->CreateRun(req), ErrorCode::kConflict);
  EXPECT_EQ(store_->ListRuns({})->runs.size(), 4u);
  req.nonce.scope.clear();
  EXPECT_CODE(store_->CreateRun(req), ErrorCode::kInvalidArgument);
}

// Deliveries of one nonce racing on separate connections start one run between them.
TEST_P(StoreConformance, RaceRunsWithOneNonceOneWins) {
  Workflow wf = Apply("wf", "1");
  for (int round = 0; round < 15; ++round) {
    const std::string nonce = "sig-" + std::to_string(round);
    int wins = Race(*factory_, 3, [&](Store& s, int) {
      CreateRunRequest req;
      req.workflow_id = wf.id;
      req.first_event.type = "run.created";
      req.nonce.scope = "webhook:" + wf.id;
      req.nonce.value = nonce;
      req.nonce.expires_ms = clock_.NowMs() + 60'000;
      auto r = s.CreateRun(req);
      if (!r && (r.error().code != ErrorCode::kConflict ||
                 r.error().message.find("already used") == std::string::npos)) {
        ADD_FAILURE() << r.error().ToString();  // a loser is refused for the nonce, nothing else
      }
      return r.has_value();
    });
    EXPECT_EQ(wins, 1) << "round " << round;
  }
  EXPECT_EQ(store_->ListRuns({})->runs.size(), 15u);
}

TEST_P(StoreConformance, ConcurrentEventAppendsGetDistinctSeqs) {
  Workflow wf = Apply("wf", "1");
  ferry::Run run = NewRun(wf);
  std::mutex mu;
  std::set<int64_t> seqs;
  Race(*factory_, 3, [&](Store& s, int) {
    for (int i = 0; i < 20; ++i) {
      auto r = s.AppendRunEvent(run.id, "log", "{}");
      if (!r) {
        ADD_FAILURE() << r.error().ToString();
        return false;
      }
      std::lock_guard lock(mu);
      seqs.insert(*r);
    }
    return true;
  });
  EXPECT_EQ(seqs.size(), 60u);
  EXPECT_EQ(*seqs.begin(), 1);
  EXPECT_EQ(*seqs.rbegin(), 60);
}

}  // namespace
}  // namespace ferry::testing
