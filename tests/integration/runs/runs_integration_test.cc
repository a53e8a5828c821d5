// Workflow runs end to end in-process: real redis-server, SQLite (and PostgreSQL for one test),
// the real worker runtime with the ferry.run handler, StartRun, the sweeper and recovery.
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>

#include "core/time_util.h"
#include "engine/ingest.h"
#include "gate.h"
#include "harness.h"
#include "last_waited_task.h"
#include "postgres.h"
#include "runs/handler.h"
#include "runs/recovery.h"
#include "runs/runs.h"
#include "store/sql_counters.h"
#include "store/store.h"
#include "worker/worker.h"
#include "wrapping_store_factory.h"

namespace ferry::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

std::string ReadAll(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

int CountLines(const std::filesystem::path& p, const std::string& line) {
  std::istringstream in(ReadAll(p));
  int n = 0;
  for (std::string l; std::getline(in, l);) n += l == line ? 1 : 0;
  return n;
}

class NullEmitter : public EventEmitter {
 public:
  void Emit(const std::string&, Json) override {}
};

// Keeps the types of the events a handler sends to its task's stream.
class RecordingEmitter : public EventEmitter {
 public:
  void Emit(const std::string& type, Json) override {
    std::lock_guard lock(mu);
    types.push_back(type);
  }
  std::mutex mu;
  std::vector<std::string> types;
};

// A workflow of one Lua node, the cheapest whole run.
constexpr const char* kOneLuaNode =
    "name: one\nnodes:\n  only:\n    kind: lua\n    script: return {n = 1}\n";

// One Redis, one store, a broker factory with a unique prefix, and helpers.
class RunsTest : public ::testing::Test {
 protected:
  void SetUp() override { OpenStore(dir_.path() / "ferry.db"); }

  void OpenStore(const std::string& location) {
    auto f = MakeStoreFactory(location);
    ASSERT_TRUE(f) << f.error().message;
    stores_ = std::move(*f);
    auto s = stores_->Open();
    ASSERT_TRUE(s) << s.error().message;
    store_ = std::move(*s);
    BrokerOptions bo;
    bo.redis_url = redis_.url();
    bo.prefix = "runs-" + std::to_string(::getpid());
    brokers_ = MakeRedisBrokerFactory(bo);
    auto b = brokers_->Open();
    ASSERT_TRUE(b) << b.error().message;
    broker_ = std::move(*b);
  }

  void TearDown() override { StopWorker(); }

  static std::unique_ptr<Store> OpenStoreAt(const std::string& location) {
    auto s = ferry::OpenStore(location);
    EXPECT_TRUE(s) << (s ? "" : s.error().message);
    return s ? std::move(*s) : nullptr;
  }

  // Stores `yaml` as a workflow's new version in `store`; the workflow's id ("" on failure,
  // which has failed the test).
  static std::string ApplyTo(Store& store, const std::string& yaml) {
    auto ing = engine::Ingest(yaml);
    EXPECT_TRUE(ing) << (ing ? "" : engine::FormatDiagnostics(ing.error()));
    if (!ing) return "";
    ApplyWorkflowRequest req;
    req.name = ing->workflow.name;
    req.source = yaml;
    req.graph = DumpJson(ing->canonical);
    req.checksum = ing->checksum;
    auto r = store.ApplyWorkflow(req);
    EXPECT_TRUE(r) << (r ? "" : r.error().message);
    return r ? r->workflow.id : "";
  }

  void Apply(const std::string& yaml) { ApplyTo(*store_, yaml); }

  void StartWorker(const engine::SecretResolver* secrets = nullptr, int concurrency = 4,
                   milliseconds event_flush = milliseconds(100),
                   milliseconds cancel_poll = milliseconds(100)) {
    runs::RunHandlerOptions ho;
    ho.secrets = secrets;
    ho.cancel_poll = cancel_poll;
    ho.event_flush = event_flush;
    ho.give_back_waits_over = give_back_waits_over_;
    runs::RegisterRunHandler(registry_, *stores_, *brokers_, ho);
    RegisterBuiltinHandlers(registry_);
    WorkerOptions wo;
    wo.broker = brokers_->options();
    wo.concurrency = concurrency;
    wo.lease = seconds(2);
    wo.block = milliseconds(100);
    wo.drain_timeout = seconds(2);
    auto w = MakeWorker(wo, registry_, MakeRedisBrokerFactory(wo.broker));
    ASSERT_TRUE(w) << w.error().message;
    worker_ = std::move(*w);
    ASSERT_TRUE(worker_->Start());
  }

  void StopWorker() {
    if (!worker_) return;
    worker_->Stop();
    worker_->Wait();
    worker_.reset();
  }

  runs::StartRunResult Start(const std::string& wf, Json inputs = Json::object()) {
    runs::StartRunRequest req;
    req.workflow = wf;
    req.inputs = std::move(inputs);
    auto r = runs::StartRun(*store_, *broker_, req);
    EXPECT_TRUE(r) << (r ? "" : r.error().message);
    return r ? *r : runs::StartRunResult{};
  }

  ferry::Run WaitEnd(const std::string& id, milliseconds timeout = seconds(20)) {
    ferry::Run last;
    bool ended = Eventually(
        [&] {
          auto r = store_->GetRun(id);
          if (r && *r) last = **r;
          return r && *r && IsTerminal((*r)->status);
        },
        timeout);
    EXPECT_TRUE(ended) << "run " << id << " still " << RunStatusName(last.status);
    return last;
  }

  // The tasks of `queue` once there are `count` and all are cancelled (a run's handler cancels
  // the tasks its task nodes left a moment after its end is committed), or as they stand after
  // 10 s.
  std::vector<TaskRecord> WaitTasksCancelled(const std::string& queue, size_t count) {
    TaskListFilter f;
    f.queue = queue;
    std::vector<TaskRecord> tasks;
    (void)Eventually(
        [&] {
          auto list = broker_->ListTasks(f);
          if (list) tasks = list->tasks;
          return tasks.size() == count &&
                 std::all_of(tasks.begin(), tasks.end(), [](const TaskRecord& t) {
                   return t.status == TaskStatus::kCancelled;
                 });
        },
        seconds(10));
    return tasks;
  }

  std::string Path(const std::string& name) const { return (dir_.path() / name).string(); }

  // The types of a run's history, in order.
  // How many node.started and node.finished events the run's history holds per node
  // ("node.started one" -> 1).
  std::map<std::string, int> NodeEventCounts(const std::string& run_id) {
    std::map<std::string, int> counts;
    auto events = store_->ListRunEvents(run_id, 0, 1000);
    EXPECT_TRUE(events);
    if (!events) return counts;
    for (const auto& e : *events) {
      if (e.type != "node.started" && e.type != "node.finished") continue;
      auto data = ParseJson(e.data);
      EXPECT_TRUE(data) << e.data;
      if (data) ++counts[e.type + " " + (*data)["node"].get<std::string>()];
    }
    return counts;
  }

  std::vector<std::string> EventTypes(const std::string& run_id) {
    auto events = store_->ListRunEvents(run_id, 0, 1000);
    EXPECT_TRUE(events) << (events ? "" : events.error().message);
    std::vector<std::string> types;
    if (events) {
      for (const auto& e : *events) types.push_back(e.type);
    }
    return types;
  }

  // What one more run of `wf` costs this process's stores, start to finish. A first run opens
  // the worker's store connection (its schema check, its statements prepared) and shows this
  // process the workflow; the second is measured up to its task's end in Redis, which comes after
  // the run's last commit: waiting on it reads nothing from the store, so the counts are exact.
  store_internal::SqlCounters CostOfAnotherRun(const std::string& wf,
                                               runs::StartRunResult& started) {
    // The first run is over once its task is: the run's row ends before its handler returns and
    // counts what the finish cost, and that count must not fall into the second run's.
    const auto task_ended = [&](const std::string& task_id) {
      return Eventually(
          [&] {
            auto t = broker_->GetTask(task_id);
            return t && *t && IsTerminal((*t)->status);
          },
          seconds(20));
    };
    const auto first = Start(wf);
    EXPECT_EQ(WaitEnd(first.run.id).status, RunStatus::kSucceeded);
    EXPECT_TRUE(task_ended(first.task_id));
    const auto before = store_internal::ReadSqlCounters();
    started = Start(wf);
    EXPECT_TRUE(task_ended(started.task_id));
    const auto after = store_internal::ReadSqlCounters();
    return {after.statements - before.statements, after.commits - before.commits,
            after.round_trips - before.round_trips};
  }

  // Waits until node `node` of run `id` has its step row (its checkpoint). A node's own side
  // effect (a line in a file) comes a few milliseconds before the row; an execution that takes
  // the run over in between legitimately runs the node again.
  bool WaitCheckpoint(const std::string& id, const std::string& node) {
    return Eventually(
        [&] {
          auto steps = store_->ListSteps(id);
          if (!steps) return false;
          for (const auto& s : *steps) {
            if (s.node_id == node && s.status != kStepWaiting) return true;
          }
          return false;
        },
        seconds(10));
  }

  RedisServer redis_;
  TempDir dir_;
  std::unique_ptr<StoreFactory> stores_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<BrokerFactory> brokers_;
  std::unique_ptr<Broker> broker_;
  // The worker's RunHandlerOptions::give_back_waits_over (its default unless a test says).
  milliseconds give_back_waits_over_ = runs::RunHandlerOptions{}.give_back_waits_over;
  HandlerRegistry registry_;
  std::unique_ptr<Worker> worker_;
};

// What a worker hands the run handler for generation 0 of `run_id`'s task.
TaskContext RunTaskContext(const std::string& run_id, const std::string& task_id, int64_t epoch,
                           EventEmitter* events) {
  TaskContext ctx;
  ctx.id = task_id;
  ctx.kind = "ferry.run";
  ctx.payload = runs::RunTaskPayload(run_id, 0);
  ctx.epoch = epoch;
  ctx.events = events;
  return ctx;
}

// ThreeNodes' history when each node ran once.
const std::map<std::string, int> kEachNodeOfThreeOnce = {
    {"node.finished one", 1}, {"node.finished three", 1}, {"node.finished wait", 1},
    {"node.started one", 1},  {"node.started three", 1},  {"node.started wait", 1}};

std::string ThreeNodes(const std::string& file, const std::string& delay) {
  return "name: three\nnodes:\n"
         "  one:\n    kind: shell\n    argv: [sh, -c, 'echo one >> " +
         file +
         "']\n"
         "  wait:\n    kind: delay\n    needs: [one]\n    duration: " +
         delay +
         "\n"
         "  three:\n    kind: shell\n    needs: [wait]\n    argv: [sh, -c, 'echo three >> " +
         file + "']\n";
}

TEST_F(RunsTest, StartRunExecutesAndStoresSteps) {
  Apply(
      "name: hello\ninputs:\n  who:\n    type: string\n    default: World\nnodes:\n"
      "  greet:\n    kind: shell\n    argv: [echo, 'Hello, {{ inputs.who }}!']\n"
      "  shout:\n    kind: lua\n    needs: [greet]\n"
      "    script: return string.upper(nodes.greet.output.stdout)\n");
  StartWorker();
  auto started = Start("hello", {{"who", "Ada"}});
  EXPECT_TRUE(started.enqueued);
  ferry::Run run = WaitEnd(started.run.id);
  ASSERT_EQ(run.status, RunStatus::kSucceeded) << run.error;
  EXPECT_NE(run.output.find("HELLO, ADA!"), std::string::npos) << run.output;
  auto steps = store_->ListSteps(run.id);
  ASSERT_TRUE(steps);
  ASSERT_EQ(steps->size(), 2u);
  EXPECT_EQ((*steps)[0].node_id, "greet");
  EXPECT_EQ((*steps)[0].status, "succeeded");
  auto events = store_->ListRunEvents(run.id, 0, 1000);
  ASSERT_TRUE(events);
  // run.created names the task StartRun then submitted (no run.enqueued of its own), and the
  // task that ran the run is that one; the events are in the order things happened.
  std::vector<std::string> types;
  for (const auto& e : *events) types.push_back(e.type);
  ASSERT_FALSE(types.empty());
  EXPECT_EQ(types.front(), "run.created");
  EXPECT_EQ(std::count(types.begin(), types.end(), "run.enqueued"), 0);
  auto created = ParseJson(events->front().data);
  ASSERT_TRUE(created);
  EXPECT_EQ((*created)["task_id"], started.task_id);
  EXPECT_EQ((*created)["generation"], 0);
  // The task the run.created event names is the one that ran the run (it is acknowledged just
  // after the run's end is committed).
  EXPECT_TRUE(Eventually(
      [&] {
        auto task = broker_->GetTask(started.task_id);
        return task && *task && (*task)->status == TaskStatus::kSucceeded;
      },
      seconds(10)));
  EXPECT_NE(std::find(types.begin(), types.end(), "run.started"), types.end());
  EXPECT_EQ(std::count(types.begin(), types.end(), "node.finished"), 2);
  EXPECT_EQ(types.back(), "run.finished");
  // Redelivering the finished run's task is a no-op.
  auto again = runs::EnsureRunTask(*store_, *broker_, run);
  ASSERT_TRUE(again);
}

// A run's writes are grouped: it is created with its "created" event (which names its task), it
// goes running with its "started" event, and its last node's checkpoint, the node's start and end
// events and the run's end with its "finished" event are one commit: three commits in all. The
// events wait for the next write here (event_flush longer than the run), so no timed write comes
// between and the count is exact.
TEST_F(RunsTest, AOneNodeRunIsThreeCommitsAndKeepsEveryEvent) {
  Apply(kOneLuaNode);
  // No cancel polls (each is a read) however long the run takes on a loaded machine.
  StartWorker(nullptr, 4, seconds(60), std::chrono::hours(1));
  runs::StartRunResult started;
  const auto cost = CostOfAnotherRun("one", started);
  ferry::Run run = WaitEnd(started.run.id);
  ASSERT_EQ(run.status, RunStatus::kSucceeded) << run.error;
  EXPECT_EQ(cost.commits, 3);
  // Start: the run with its event (the workflow's id and current version were seen by the first
  // start: the insert checks the version is still current). Worker: running with its event (no
  // run row read first, no version, no trigger for an API run), the checkpoints, then the step,
  // the finish and its events.
  EXPECT_EQ(cost.statements, 8);
  auto steps = store_->ListSteps(run.id);
  ASSERT_TRUE(steps);
  ASSERT_EQ(steps->size(), 1u) << "the last node is checkpointed in the run's end commit";
  EXPECT_EQ((*steps)[0].node_id, "only");
  EXPECT_EQ((*steps)[0].output, R"({"n":1})");
  auto events = store_->ListRunEvents(run.id, 0, 100);
  ASSERT_TRUE(events);
  std::vector<std::string> types;
  int64_t started_at = 0;
  int64_t finished_at = 0;
  for (const auto& e : *events) {
    types.push_back(e.type);
    if (e.type == "node.started") started_at = e.ts_ms;
    if (e.type == "node.finished") finished_at = e.ts_ms;
  }
  EXPECT_EQ(types, (std::vector<std::string>{"run.created", "run.started", "node.started",
                                             "node.finished", "run.finished"}));
  // Held until the checkpoint, the node's events keep the times they happened at.
  EXPECT_GT(started_at, 0);
  EXPECT_LE(started_at, finished_at);
  EXPECT_LE(finished_at, run.finished_ms);
}

// The same run on PostgreSQL, counted in round trips and statements: transaction control travels
// with the statements (docs/store.md). Start: [BEGIN, the run with its event (one statement),
// COMMIT]. Worker:
// [BEGIN, running with its event (one statement), the checkpoints read, COMMIT]; [BEGIN, the
// finish with its checkpoint and its events (one statement), COMMIT].
TEST_F(RunsTest, AOneNodeRunOnPostgresIsOneRoundTripPerCommit) {
  if (!PostgresServer::Available()) GTEST_SKIP() << "PostgreSQL not installed";
  PostgresServer pg;
  OpenStore(pg.CreateDatabase());
  Apply(kOneLuaNode);
  StartWorker(nullptr, 4, seconds(60), std::chrono::hours(1));
  runs::StartRunResult started;
  const auto cost = CostOfAnotherRun("one", started);
  EXPECT_EQ(WaitEnd(started.run.id).status, RunStatus::kSucceeded);
  StopWorker();
  EXPECT_EQ(cost.commits, 3);
  EXPECT_EQ(cost.statements, 4);
  EXPECT_EQ(cost.round_trips, 3);
  EXPECT_EQ(EventTypes(started.run.id),
            (std::vector<std::string>{"run.created", "run.started", "node.started", "node.finished",
                                      "run.finished"}));
}

// Counts the connections the run handler opens through it.
class CountingStoreFactory final : public StoreFactory {
 public:
  explicit CountingStoreFactory(std::unique_ptr<StoreFactory> inner) : inner_(std::move(inner)) {}
  Result<std::unique_ptr<Store>> Open() override {
    ++opened;
    return inner_->Open();
  }
  std::string_view Backend() const override { return inner_->Backend(); }
  std::string Describe() const override { return inner_->Describe(); }
  std::atomic<int> opened{0};

 private:
  std::unique_ptr<StoreFactory> inner_;
};

// A busy worker keeps the store connections its slots opened: three waves of twelve runs at
// once through twelve slots open at most twelve (with eight kept, as before, four were closed
// after each wave and opened again for the next: a PostgreSQL connection is a process and an
// authentication).
TEST_F(RunsTest, ABusyWorkerReusesItsStoreConnectionsInsteadOfOpeningNewOnes) {
  Apply("name: nap\nnodes:\n  only:\n    kind: delay\n    duration: 300ms\n");
  auto owned = std::make_unique<CountingStoreFactory>(std::move(stores_));
  CountingStoreFactory* counting = owned.get();
  stores_ = std::move(owned);
  constexpr int kSlots = 12;
  StartWorker(nullptr, kSlots);
  for (int wave = 0; wave < 3; ++wave) {
    std::vector<std::string> ids;
    for (int i = 0; i < kSlots; ++i) ids.push_back(Start("nap").run.id);
    for (const auto& id : ids) ASSERT_EQ(WaitEnd(id).status, RunStatus::kSucceeded);
  }
  StopWorker();
  EXPECT_GE(counting->opened.load(), 1);
  EXPECT_LE(counting->opened.load(), kSlots);
}

// Marking a run running commits its "started" event with it; when that event's number clashes
// with another writer's at the COMMIT (a trigger raises the unique violation once, as a sweep's
// "enqueued" taking the number at the same moment would), the same claim marks the run again at
// once: the task's one attempt runs it, and the history has one "started".
TEST_F(RunsTest, AStartedEventsNumberClashIsTriedAgainWithinTheAttempt) {
  if (!PostgresServer::Available()) GTEST_SKIP() << "PostgreSQL not installed";
  PostgresServer pg;
  OpenStore(pg.CreateDatabase("clash"));
  pg.Psql(
      "CREATE SEQUENCE clashes; CREATE FUNCTION clash() RETURNS trigger LANGUAGE plpgsql AS $$ "
      "BEGIN IF NEW.type = 'run.started' AND nextval('clashes') = 1 THEN RAISE EXCEPTION USING "
      "ERRCODE = 'unique_violation', MESSAGE = 'number taken (the test)'; END IF; RETURN NEW; "
      "END $$; CREATE TRIGGER clash BEFORE INSERT ON run_events FOR EACH ROW EXECUTE FUNCTION "
      "clash();",
      "clash");
  Apply(kOneLuaNode);
  StartWorker();
  auto started = Start("one");
  ferry::Run run = WaitEnd(started.run.id);
  StopWorker();
  EXPECT_EQ(run.status, RunStatus::kSucceeded) << run.error;
  EXPECT_EQ(run.attempt, 1);
  EXPECT_EQ(pg.Psql("SELECT last_value FROM clashes", "clash"), "2") << "the clash never happened";
  auto task = broker_->GetTask(started.task_id);
  ASSERT_TRUE(task && *task);
  EXPECT_EQ((*task)->attempts, 1);
  const auto types = EventTypes(run.id);
  EXPECT_EQ(std::count(types.begin(), types.end(), "run.started"), 1);
}

// A start does not read a workflow this process has seen; when another process has applied a
// new version since, the insert (only while the seen version is current) finds out, and the
// start reads the workflow and runs the new version.
TEST_F(RunsTest, AStartRunsTheVersionAppliedElsewhereSinceItLastLooked) {
  Apply("name: v\nnodes:\n  only:\n    kind: lua\n    script: return {v = 1}\n");
  auto first = Start("v");
  EXPECT_EQ(first.run.version, 1);
  // Another process's apply: straight to the store, so this process's memory is not told.
  auto other = stores_->Open();
  ASSERT_TRUE(other);
  auto ing =
      engine::Ingest("name: v\nnodes:\n  only:\n    kind: lua\n    script: return {v = 2}\n");
  ASSERT_TRUE(ing);
  ApplyWorkflowRequest req;
  req.name = "v";
  req.source = "v2";
  req.graph = DumpJson(ing->canonical);
  req.checksum = ing->checksum;
  ASSERT_TRUE((*other)->ApplyWorkflow(req));
  auto second = Start("v");
  EXPECT_EQ(second.run.version, 2);
  auto third = Start("v");  // remembered now
  EXPECT_EQ(third.run.version, 2);
  auto events = store_->ListRunEvents(second.run.id, 0, 10);
  ASSERT_TRUE(events);
  ASSERT_EQ(events->size(), 1u);
  EXPECT_EQ(ParseJson((*events)[0].data)->at("version"), 2);
  EXPECT_EQ(store_->ListRuns({})->runs.size(), 3u) << "the refused insert wrote nothing";
}

// What a start remembers of a name is the process's, not a database's: a process that uses two
// databases, each with a workflow of that name, starts each run from its own database's.
TEST_F(RunsTest, AStartInAnotherDatabaseFindsThatDatabasesWorkflow) {
  const std::string yaml = "name: same\nnodes:\n  only:\n    kind: lua\n    script: return {}\n";
  Apply(yaml);
  auto here = Start("same");
  ASSERT_FALSE(here.run.id.empty());
  auto other = OpenStoreAt((dir_.path() / "other.db").string());
  ASSERT_NE(other, nullptr);
  const std::string other_id = ApplyTo(*other, yaml);
  ASSERT_FALSE(other_id.empty());
  for (int i = 0; i < 2; ++i) {  // the second time, from what the first remembered
    runs::StartRunRequest start;
    start.workflow = "same";
    auto there = runs::StartRun(*other, *broker_, start);
    ASSERT_TRUE(there) << there.error().message;
    EXPECT_EQ(there->run.workflow_id, other_id);
  }
  auto again = Start("same");  // and back
  EXPECT_EQ(again.run.workflow_id, here.run.workflow_id);
}

// A webhook's delivery reaches the nodes as `trigger` (kept in "run.created" and read by the
// worker); a run started otherwise has none, and its worker does not look for one.
TEST_F(RunsTest, AWebhookRunsTriggerReachesItsNodes) {
  Apply(
      "name: hooked\nnodes:\n  say:\n    kind: shell\n    argv: [printf, '%s', "
      "\"{{ trigger.body.who }}\"]\n");
  StartWorker();
  auto printed = [&](const std::string& run_id) -> Json {
    EXPECT_EQ(WaitEnd(run_id).status, RunStatus::kSucceeded);
    auto steps = store_->ListSteps(run_id);
    if (!steps || steps->size() != 1) return "(not one step)";
    return ParseJson((*steps)[0].output).value()["stdout"];
  };
  runs::StartRunRequest req;
  req.workflow = "hooked";
  req.triggered_by = TriggeredBy::kWebhook;
  req.trigger = Json{{"body", {{"who", "Ada"}}}};
  auto hooked = runs::StartRun(*store_, *broker_, req);
  ASSERT_TRUE(hooked) << hooked.error().message;
  EXPECT_EQ(printed(hooked->run.id), "Ada");

  EXPECT_EQ(printed(Start("hooked").run.id), "") << "an API run has no trigger";

  // A body as deep as the door takes (kMaxJsonDepth) is kept two levels deeper, under
  // "run.created"'s {"trigger": {"body": ...}}, and read back whole: the worker read no trigger
  // at all when it read that event under the door's limit.
  const int levels = kMaxJsonDepth - 1;  // under {"who": ...}: the body is kMaxJsonDepth deep
  const std::string nested = std::string(levels, '[') + std::string(levels, ']');
  req.trigger = Json{{"body", {{"who", ParseJson(nested).value()}}}};
  auto deep = runs::StartRun(*store_, *broker_, req);
  ASSERT_TRUE(deep) << deep.error().message;
  EXPECT_EQ(printed(deep->run.id), nested);

  // A trigger context offered for a kind that keeps none is refused, not dropped.
  req.triggered_by = TriggeredBy::kApi;
  auto refused = runs::StartRun(*store_, *broker_, req);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, ErrorCode::kInvalidArgument) << refused.error().message;
}

// Events of a node that runs longer than event_flush reach the store while it runs: a page
// following the run sees "node.started" before the node ends. The run's watcher, which writes
// them, starts with the first of its turns: here the flush's (50 ms), not the cancel poll's (an
// hour).
TEST_F(RunsTest, ANodesEventsAreWrittenWhileItRuns) {
  const std::string gate = Path("gate");
  Apply("name: slow\nnodes:\n  wait:\n    kind: shell\n    argv: [sh, -c, 'while [ ! -f " + gate +
        " ]; do sleep 0.05; done']\n    timeout: 60s\n");
  StartWorker(nullptr, 4, milliseconds(50), std::chrono::hours(1));
  auto started = Start("slow");
  EXPECT_TRUE(Eventually(
      [&] {
        auto events = store_->ListRunEvents(started.run.id, 0, 100);
        if (!events) return false;
        for (const auto& e : *events) {
          if (e.type == "node.started") return true;
        }
        return false;
      },
      seconds(20)));
  auto steps = store_->ListSteps(started.run.id);
  ASSERT_TRUE(steps);
  EXPECT_TRUE(steps->empty());  // the node is still running
  std::FILE* f = std::fopen(gate.c_str(), "w");
  ASSERT_NE(f, nullptr);
  std::fclose(f);
  EXPECT_EQ(WaitEnd(started.run.id).status, RunStatus::kSucceeded);
}

TEST_F(RunsTest, FailingNodeFailsTheRunWithNodeAndError) {
  Apply(
      "name: broken\nnodes:\n  ok:\n    kind: shell\n    argv: ['true']\n"
      "  bad:\n    kind: fail\n    needs: [ok]\n    message: 'boom {{ run.id }}'\n"
      "  never:\n    kind: shell\n    needs: [bad]\n    argv: ['true']\n");
  StartWorker();
  ferry::Run run = WaitEnd(Start("broken").run.id);
  EXPECT_EQ(run.status, RunStatus::kFailed);
  EXPECT_EQ(run.failed_node, "bad");
  EXPECT_NE(run.error.find("boom"), std::string::npos) << run.error;
}

TEST_F(RunsTest, EnqueueFailureLeavesPendingRunThatTheSweeperEnqueues) {
  Apply(ThreeNodes(Path("count.txt"), "10ms"));
  redis_.Stop();
  runs::StartRunRequest req;
  req.workflow = "three";
  auto started = runs::StartRun(*store_, *broker_, req);
  ASSERT_TRUE(started) << started.error().message;  // never an error once the run is stored
  EXPECT_FALSE(started->enqueued);
  EXPECT_FALSE(started->enqueue_error.empty());
  EXPECT_EQ(started->run.status, RunStatus::kPending);
  redis_.Start();
  auto b = brokers_->Open();
  ASSERT_TRUE(b);
  broker_ = std::move(*b);
  StartWorker();
  runs::RunSweeperOptions so;
  so.recovery.pending_age = milliseconds(200);
  so.interval = milliseconds(200);
  runs::RunSweeper sweeper(*stores_, *brokers_, so);
  sweeper.Start();
  ferry::Run run = WaitEnd(started->run.id);
  sweeper.Stop();
  EXPECT_EQ(run.status, RunStatus::kSucceeded) << run.error;
  EXPECT_EQ(CountLines(Path("count.txt"), "one"), 1);
}

// A started run's first task, named in run.created, has no unique key (nothing could submit it
// twice under its id); recovery finds it by that id all the same: alive, nothing more submitted.
TEST_F(RunsTest, AStartedRunsTaskIsFoundByItsIdWithoutAUniqueKey) {
  Apply(ThreeNodes(Path("count.txt"), "10ms"));
  auto started = Start("three");  // no worker: its task stays pending
  auto task = broker_->GetTask(started.task_id);
  ASSERT_TRUE(task && *task);
  EXPECT_EQ((*task)->unique_key, "");
  EXPECT_EQ(redis_.Cli({"KEYS", "*:unique:*"}), "");
  runs::RecoveryOptions ro;
  ro.pending_age = milliseconds(0);
  ro.check_running = false;
  auto report = runs::RecoverRuns(*store_, *broker_, ro);
  ASSERT_TRUE(report) << report.error().message;
  ASSERT_EQ(report->runs.size(), 1u);
  EXPECT_EQ(report->runs[0].action, runs::RunRecovery::Action::kAlive) << report->runs[0].detail;
  TaskListFilter f;
  f.queue = "default";
  auto list = broker_->ListTasks(f);
  ASSERT_TRUE(list) << list.error().message;
  ASSERT_EQ(list->tasks.size(), 1u);
  EXPECT_EQ(list->tasks[0].id, started.task_id);
}

// Two executions of one run at once, driven by hand: B takes over while A sits in the delay.
// The fenced MarkRunRunning / SaveStep let exactly one finish; A never overwrites B.
TEST_F(RunsTest, RacingExecutionsProduceOneOutcome) {
  Apply(ThreeNodes(Path("count.txt"), "1500ms"));
  auto started = Start("three");  // its task sits in Redis; no worker runs it
  auto handler = runs::MakeRunHandler(*stores_, *brokers_, {});
  NullEmitter emitter;
  auto make_ctx = [&](const std::string& id, int64_t epoch) {
    return RunTaskContext(started.run.id, id, epoch, &emitter);
  };
  HandlerResult a_result, b_result;
  std::thread a([&] {
    TaskContext ctx = make_ctx("task-a", 1);
    a_result = handler(ctx);
  });
  ASSERT_TRUE(WaitCheckpoint(started.run.id, "one"));  // A is in its delay node
  std::thread b([&] {
    TaskContext ctx = make_ctx("task-b", 2);  // a reclaim: newer epoch
    b_result = handler(ctx);
  });
  // A loser with the same epoch as the winner (a duplicate delivery) is turned away at once.
  {
    ASSERT_TRUE(Eventually(
        [&] {
          auto r = store_->GetRun(started.run.id);
          return r && *r && (*r)->epoch == runs::RunFencingToken(0, 2);
        },
        seconds(10)))
        << "B never marked the run running under epoch 2";
    TaskContext ctx = make_ctx("task-c", 2);
    auto c = handler(ctx);
    ASSERT_FALSE(c);
    EXPECT_NE(c.error().message.find("superseded"), std::string::npos) << c.error().message;
    EXPECT_FALSE(c.error().retryable);
  }
  a.join();
  b.join();
  ASSERT_TRUE(b_result) << b_result.error().message;
  EXPECT_EQ((*b_result)["status"], "succeeded");
  ASSERT_FALSE(a_result);
  EXPECT_NE(a_result.error().message.find("superseded"), std::string::npos);
  auto run = store_->GetRun(started.run.id);
  ASSERT_TRUE(run && *run);
  EXPECT_EQ((*run)->status, RunStatus::kSucceeded);
  EXPECT_EQ((*run)->epoch, runs::RunFencingToken(0, 2));
  EXPECT_EQ(CountLines(Path("count.txt"), "one"), 1);    // B resumed from A's checkpoint
  EXPECT_EQ(CountLines(Path("count.txt"), "three"), 1);  // only the owner ran it
}

// A run started max_run_attempts times (each taker died or lost it) is failed at its next start,
// not run again, whichever task generation brings it; the start before that still runs it.
TEST_F(RunsTest, ARunStartedMoreThanItsMostAttemptsIsFailedNotRunAgain) {
  Apply(ThreeNodes(Path("count.txt"), "10ms"));
  auto started = Start("three");  // its task sits in Redis; no worker runs it
  runs::RunHandlerOptions options;
  options.max_run_attempts = 3;
  auto handler = runs::MakeRunHandler(*stores_, *brokers_, options);
  // Three takers marked the run and vanished (as a worker killed mid-run does).
  for (int64_t epoch = 1; epoch <= 3; ++epoch) {
    ASSERT_TRUE(store_->MarkRunRunning(started.run.id, runs::RunFencingToken(0, epoch), "gone"));
  }
  NullEmitter emitter;
  TaskContext ctx = RunTaskContext(started.run.id, "task-4", 4, &emitter);
  auto result = handler(ctx);
  ASSERT_TRUE(result) << result.error().message;
  EXPECT_EQ((*result)["status"], "failed");
  auto run = store_->GetRun(started.run.id);
  ASSERT_TRUE(run && *run);
  EXPECT_EQ((*run)->status, RunStatus::kFailed);
  EXPECT_EQ((*run)->attempt, 4);
  EXPECT_NE((*run)->error.find("run abandoned: started 4 times, more than max_run_attempts (3)"),
            std::string::npos)
      << (*run)->error;
  EXPECT_EQ(CountLines(Path("count.txt"), "one"), 0);  // no node ran

  // The near miss: started exactly max_run_attempts times, it runs.
  auto second = Start("three");
  for (int64_t epoch = 1; epoch <= 2; ++epoch) {
    ASSERT_TRUE(store_->MarkRunRunning(second.run.id, runs::RunFencingToken(0, epoch), "gone"));
  }
  ctx = RunTaskContext(second.run.id, "task-3", 3, &emitter);
  auto ran = handler(ctx);
  ASSERT_TRUE(ran) << ran.error().message;
  EXPECT_EQ((*ran)["status"], "succeeded");
  EXPECT_EQ(CountLines(Path("count.txt"), "three"), 1);
}

// A store that is away at a run's start.
class StartUnavailableStore : public OwningStoreWrapper {
 public:
  using OwningStoreWrapper::OwningStoreWrapper;
  Result<StartedRun> MarkRunStarted(const std::string&, int64_t, const std::string&,
                                    const NewRunEvent&) override {
    return Fail(ErrorCode::kUnavailable, "the database is restarting (the test)");
  }
};

// While the store is away, a run's attempt fails retryably and asks to be tried again 5 s later
// for each attempt so far, so its task's attempts span a database restart instead of being spent
// within the worker's first seconds of backoff.
TEST_F(RunsTest, AStoreThatIsAwayDelaysTheNextAttemptMoreEachTime) {
  Apply(ThreeNodes(Path("count.txt"), "10ms"));
  auto started = Start("three");  // its task sits in Redis; no worker runs it
  WrappingStoreFactory away(*stores_, [](std::unique_ptr<Store> s) -> std::unique_ptr<Store> {
    return std::make_unique<StartUnavailableStore>(std::move(s));
  });
  auto handler = runs::MakeRunHandler(away, *brokers_, {});
  NullEmitter emitter;
  for (const auto& [attempt, wait] : std::vector<std::pair<int, seconds>>{
           {1, seconds(5)}, {2, seconds(10)}, {5, seconds(25)}, {40, seconds(60)}}) {
    TaskContext ctx =
        RunTaskContext(started.run.id, "task-" + std::to_string(attempt), attempt, &emitter);
    ctx.attempt = attempt;
    auto r = handler(ctx);
    ASSERT_FALSE(r);
    EXPECT_TRUE(r.error().retryable);
    EXPECT_NE(r.error().message.find("the database is restarting"), std::string::npos);
    ASSERT_TRUE(r.error().retry_after.has_value()) << attempt;
    EXPECT_EQ(*r.error().retry_after, wait) << attempt;
  }
  EXPECT_EQ((**store_->GetRun(started.run.id)).status, RunStatus::kPending);
}

// A store that cannot take a run's events the first `failures` times (a statement timeout, a
// restart), and takes them afterwards.
class EventsAwayStore : public OwningStoreWrapper {
 public:
  EventsAwayStore(std::unique_ptr<Store> target, std::atomic<int>& failures)
      : OwningStoreWrapper(std::move(target)), failures_(failures) {}
  Result<int64_t> AppendRunEvents(const std::string& run_id,
                                  const std::vector<NewRunEvent>& events) override {
    if (failures_.fetch_sub(1) > 0) {
      return Fail(ErrorCode::kUnavailable, "canceling statement due to statement timeout (test)");
    }
    return OwningStoreWrapper::AppendRunEvents(run_id, events);
  }

 private:
  std::atomic<int>& failures_;
};

// Events the store could not take just now wait for the next write: the run's history keeps
// every node's start and end (they were dropped, with a debug line only).
TEST_F(RunsTest, EventsTheStoreCouldNotTakeGoInTheNextWrite) {
  Apply(ThreeNodes(Path("count.txt"), "10ms"));
  auto started = Start("three");  // its task sits in Redis; no worker runs it
  std::atomic<int> failures{2};
  WrappingStoreFactory away(*stores_, [&](std::unique_ptr<Store> s) -> std::unique_ptr<Store> {
    return std::make_unique<EventsAwayStore>(std::move(s), failures);
  });
  auto handler = runs::MakeRunHandler(away, *brokers_, {});
  NullEmitter emitter;
  TaskContext ctx = RunTaskContext(started.run.id, "task-1", 1, &emitter);
  auto r = handler(ctx);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_LE(failures.load(), 0);  // both failures were met
  EXPECT_EQ(WaitEnd(started.run.id).status, RunStatus::kSucceeded);
  EXPECT_EQ(NodeEventCounts(started.run.id), kEachNodeOfThreeOnce);
}

// A store that cannot take a delay's deadline while `away` is set (a statement timeout each
// time), nor the first `deadline_failures` deadlines, `save_failures` checkpoints and
// `finish_failures` run ends (a restart). Shared by every store the handler opens.
struct StoreOutage {
  std::atomic<bool> away{false};
  std::atomic<int> deadline_failures{0};
  std::atomic<int> save_failures{0};
  std::atomic<int> finish_failures{0};
};
class OutageStore : public OwningStoreWrapper {
 public:
  OutageStore(std::unique_ptr<Store> target, StoreOutage& outage)
      : OwningStoreWrapper(std::move(target)), outage_(outage) {}
  Result<SaveStepOutcome> SaveStep(const RunStep& step) override {
    if (step.status == kStepWaiting
            ? outage_.away.load() || outage_.deadline_failures.fetch_sub(1) > 0
            : outage_.save_failures.fetch_sub(1) > 0) {
      return Fail(ErrorCode::kUnavailable, "canceling statement due to statement timeout (test)");
    }
    return OwningStoreWrapper::SaveStep(step);
  }
  Result<Run> FinishRun(const std::string& run_id, int64_t epoch, RunStatus status,
                        const std::string& output, const std::string& error,
                        const std::string& failed_node, const std::vector<NewRunEvent>& events,
                        const std::vector<RunStep>& steps) override {
    if (outage_.finish_failures.fetch_sub(1) > 0) {
      return Fail(ErrorCode::kUnavailable, "server closed the connection unexpectedly (test)");
    }
    return OwningStoreWrapper::FinishRun(run_id, epoch, status, output, error, failed_node, events,
                                         steps);
  }

 private:
  StoreOutage& outage_;
};

// A delay whose deadline cannot be stored (for longer than the handler's store_patience) is no
// failure of the delay: the run stops, as for a checkpoint not saved, and its task's next attempt
// runs it to the end (it failed the run for good: the delay's one attempt was spent on the
// store's outage).
TEST_F(RunsTest, ADelayWhoseDeadlineCannotBeStoredStopsTheRunInsteadOfFailingIt) {
  Apply(ThreeNodes(Path("count.txt"), "10ms"));
  auto started = Start("three");  // its task sits in Redis; no worker runs it
  StoreOutage outage;
  outage.away = true;
  WrappingStoreFactory flaky(*stores_, [&](std::unique_ptr<Store> s) -> std::unique_ptr<Store> {
    return std::make_unique<OutageStore>(std::move(s), outage);
  });
  runs::RunHandlerOptions options;
  options.store_patience = milliseconds(300);
  auto handler = runs::MakeRunHandler(flaky, *brokers_, options);
  NullEmitter emitter;
  TaskContext first = RunTaskContext(started.run.id, "task-1", 1, &emitter);
  auto r = handler(first);
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().retryable) << r.error().message;
  EXPECT_NE(r.error().message.find("statement timeout"), std::string::npos) << r.error().message;
  EXPECT_EQ((**store_->GetRun(started.run.id)).status, RunStatus::kRunning);
  // The task's next attempt (the store answers again): the run resumes after "one".
  outage.away = false;
  TaskContext second = RunTaskContext(started.run.id, "task-1", 2, &emitter);
  second.attempt = 2;
  auto again = handler(second);
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_EQ(WaitEnd(started.run.id).status, RunStatus::kSucceeded);
  EXPECT_EQ(CountLines(Path("count.txt"), "one"), 1);  // resumed from its checkpoint
  EXPECT_EQ(CountLines(Path("count.txt"), "three"), 1);
}

// A store away for a moment (a restart) as nodes end is waited for: a checkpoint, a delay's
// deadline and the run's end are each tried again, so the run ends in its first attempt with
// every node run once and its history whole. (A failed checkpoint stopped the attempt, and the
// next one ran the node again.)
TEST_F(RunsTest, ACheckpointOrEndTheStoreMissesForAMomentIsSavedInTheSameAttempt) {
  Apply(ThreeNodes(Path("count.txt"), "10ms"));
  StoreOutage outage;
  WrappingStoreFactory flaky(*stores_, [&](std::unique_ptr<Store> s) -> std::unique_ptr<Store> {
    return std::make_unique<OutageStore>(std::move(s), outage);
  });
  auto handler = runs::MakeRunHandler(flaky, *brokers_, {});
  NullEmitter emitter;
  for (const char* when : {"checkpoint", "deadline", "end"}) {
    SCOPED_TRACE(when);
    std::filesystem::remove(Path("count.txt"));
    auto started = Start("three");  // its task sits in Redis; no worker runs it
    outage.save_failures = std::string(when) == "checkpoint" ? 3 : 0;
    outage.finish_failures = std::string(when) == "end" ? 3 : 0;
    outage.deadline_failures = std::string(when) == "deadline" ? 3 : 0;
    TaskContext ctx = RunTaskContext(started.run.id, "task-1", 1, &emitter);
    auto r = handler(ctx);
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_LE(outage.deadline_failures.load(), 0);  // each failure was met
    EXPECT_LE(outage.save_failures.load(), 0);
    EXPECT_LE(outage.finish_failures.load(), 0);
    EXPECT_EQ(WaitEnd(started.run.id).status, RunStatus::kSucceeded);
    EXPECT_EQ(CountLines(Path("count.txt"), "one"), 1);
    EXPECT_EQ(CountLines(Path("count.txt"), "three"), 1);
    EXPECT_EQ(NodeEventCounts(started.run.id), kEachNodeOfThreeOnce);
  }
}

// A store whose reads of a running run take `hold` (a lock held on the runs table, waited out
// up to the statement timeout): the run handler's watcher reads the run so.
class SlowRunReadStore : public OwningStoreWrapper {
 public:
  SlowRunReadStore(std::unique_ptr<Store> target, milliseconds hold)
      : OwningStoreWrapper(std::move(target)), hold_(hold) {}
  Result<std::optional<ferry::Run>> GetRun(const std::string& id) override {
    auto run = OwningStoreWrapper::GetRun(id);
    if (run && *run && (**run).status == RunStatus::kRunning) std::this_thread::sleep_for(hold_);
    return run;
  }

 private:
  milliseconds hold_;
};

// A node's log line does not wait for the store: while the watcher's read of the run waits (6 s
// here), a node that prints and ends within its 3 s timeout succeeds. Its output went through
// the store's lock, and the node, stuck in its log line, was timed out although its program
// had ended.
TEST_F(RunsTest, ANodesLogLineDoesNotWaitForTheStore) {
  Apply(
      "name: chatty\nnodes:\n  s:\n    kind: shell\n    timeout: 3s\n"
      "    argv: [sh, -c, 'sleep 1; echo B']\n");
  auto started = Start("chatty");  // its task sits in Redis; no worker runs it
  WrappingStoreFactory slow(*stores_, [](std::unique_ptr<Store> s) -> std::unique_ptr<Store> {
    return std::make_unique<SlowRunReadStore>(std::move(s), seconds(6));
  });
  runs::RunHandlerOptions options;
  options.cancel_poll = milliseconds(100);  // the watcher's read begins before the line
  auto handler = runs::MakeRunHandler(slow, *brokers_, options);
  NullEmitter emitter;
  TaskContext ctx = RunTaskContext(started.run.id, "task-1", 1, &emitter);
  auto r = handler(ctx);
  ASSERT_TRUE(r) << r.error().message;
  ferry::Run run = WaitEnd(started.run.id);
  EXPECT_EQ(run.status, RunStatus::kSucceeded) << run.error;
}

// Stores that hold FinishRun at a gate when it is called under one of the given fencing tokens.
class FinishGatedStore : public OwningStoreWrapper {
 public:
  FinishGatedStore(std::unique_ptr<Store> target, const std::map<int64_t, Gate*>& gates)
      : OwningStoreWrapper(std::move(target)), gates_(gates) {}
  Result<ferry::Run> FinishRun(const std::string& run_id, int64_t epoch, RunStatus status,
                               const std::string& output, const std::string& error,
                               const std::string& failed_node,
                               const std::vector<NewRunEvent>& events = {},
                               const std::vector<RunStep>& steps = {}) override {
    if (auto it = gates_.find(epoch); it != gates_.end()) it->second->Arrive();
    return OwningStoreWrapper::FinishRun(run_id, epoch, status, output, error, failed_node, events,
                                         steps);
  }

 private:
  const std::map<int64_t, Gate*>& gates_;
};

// FinishRun's fence end to end: execution A ran every node and pauses just before ending the run;
// B takes the run over (a reclaim: newer epoch), resumes from A's checkpoints and pauses before
// its own end. A wakes first, while B still holds the run: A's end is refused and changes
// nothing; B then ends the run. One outcome, written by the owner.
TEST_F(RunsTest, SupersededExecutionCannotEndTheRun) {
  Apply(ThreeNodes(Path("count.txt"), "10ms"));
  auto started = Start("three");  // its task sits in Redis; no worker runs it
  const int64_t epoch_a = runs::RunFencingToken(0, 1);
  const int64_t epoch_b = runs::RunFencingToken(0, 2);
  Gate gate_a, gate_b;
  const std::map<int64_t, Gate*> gates = {{epoch_a, &gate_a}, {epoch_b, &gate_b}};
  WrappingStoreFactory gated(*stores_, [&](std::unique_ptr<Store> s) -> std::unique_ptr<Store> {
    return std::make_unique<FinishGatedStore>(std::move(s), gates);
  });
  auto handler = runs::MakeRunHandler(gated, *brokers_, {});
  NullEmitter emitter;
  auto run_as = [&](const std::string& task, int64_t epoch) {
    TaskContext ctx = RunTaskContext(started.run.id, task, epoch, &emitter);
    return handler(ctx);
  };
  HandlerResult a_result, b_result;
  std::thread a([&] { a_result = run_as("task-a", 1); });
  ASSERT_TRUE(gate_a.WaitArrived(seconds(20))) << "A never reached FinishRun";
  std::thread b([&] { b_result = run_as("task-b", 2); });
  const bool b_paused = gate_b.WaitArrived(seconds(20));
  gate_a.Open();
  a.join();
  gate_b.Open();
  b.join();
  ASSERT_TRUE(b_paused) << "B never reached FinishRun";

  ASSERT_FALSE(a_result) << "the superseded execution ended the run: " << DumpJson(*a_result);
  EXPECT_NE(a_result.error().message.find("superseded"), std::string::npos)
      << a_result.error().message;
  EXPECT_FALSE(a_result.error().retryable);
  ASSERT_TRUE(b_result) << b_result.error().message;
  EXPECT_EQ((*b_result)["status"], "succeeded");
  auto run = store_->GetRun(started.run.id);
  ASSERT_TRUE(run && *run);
  EXPECT_EQ((*run)->status, RunStatus::kSucceeded);
  EXPECT_EQ((*run)->epoch, epoch_b);
  EXPECT_NE((*run)->worker.find("task-b"), std::string::npos) << (*run)->worker;
  EXPECT_EQ(CountLines(Path("count.txt"), "one"), 1);  // B resumed from A's checkpoints
  // The last node's checkpoint goes into the commit that ends the run, which A never made: B ran
  // `three` again, as it would after a crash during the node.
  EXPECT_EQ(CountLines(Path("count.txt"), "three"), 2);
  auto events = store_->ListRunEvents(started.run.id, 0, 1000);
  ASSERT_TRUE(events);
  int finished = 0;
  for (const auto& e : *events) finished += e.type == "run.finished" ? 1 : 0;
  EXPECT_EQ(finished, 1);
}

// The store's cancel is seen by the run's watcher, which starts with the first of its turns: here
// the cancel poll's (100 ms), not the event flush's (an hour).
// A run that holds its slot through its delay (a wait under give_back_waits_over), cancelled
// in the store or through its task: its handler sees it.
TEST_F(RunsTest, CancelRunningRunInStoreAndViaTask) {
  Apply(ThreeNodes(Path("count.txt"), "30s"));
  give_back_waits_over_ = std::chrono::minutes(1);
  StartWorker(nullptr, 4, std::chrono::hours(1), milliseconds(100));
  auto s1 = Start("three");
  ASSERT_TRUE(Eventually([&] { return CountLines(Path("count.txt"), "one") == 1; }, seconds(10)));
  ASSERT_TRUE(store_->CancelRun(s1.run.id));  // what `run cancel` and the API do first
  ferry::Run r1 = WaitEnd(s1.run.id, seconds(5));
  EXPECT_EQ(r1.status, RunStatus::kCancelled);
  // The task ends too, within the cancel poll.
  ASSERT_TRUE(Eventually(
      [&] {
        auto t = broker_->GetTask(s1.task_id);
        return t && *t && IsTerminal((*t)->status);
      },
      seconds(5)));

  auto s2 = Start("three");
  ASSERT_TRUE(Eventually([&] { return CountLines(Path("count.txt"), "one") == 2; }, seconds(10)));
  ASSERT_TRUE(broker_->Cancel(s2.task_id));  // `ferry task cancel` on the run's task
  ferry::Run r2 = WaitEnd(s2.run.id, seconds(5));
  EXPECT_EQ(r2.status, RunStatus::kCancelled);
  EXPECT_EQ(CountLines(Path("count.txt"), "three"), 0);
}

// A run left with only a long delay gives its slot back: a worker with one slot runs another
// run meanwhile. The waiting run's task is scheduled for the delay's end, its next start is no
// new attempt, and it ends on time with every node run once.
TEST_F(RunsTest, ARunInALongDelayGivesItsSlotBack) {
  Apply(ThreeNodes(Path("count.txt"), "3s"));
  Apply("name: quick\nnodes:\n  q:\n    kind: lua\n    script: return 7\n");
  give_back_waits_over_ = seconds(1);
  StartWorker(nullptr, /*concurrency=*/1);
  auto waiting = Start("three");
  ASSERT_TRUE(Eventually(
      [&] {
        auto t = broker_->GetTask(waiting.task_id);
        return t && *t && (*t)->status == TaskStatus::kScheduled;
      },
      seconds(10)));
  auto run = store_->GetRun(waiting.run.id);
  ASSERT_TRUE(run && *run);
  EXPECT_EQ((*run)->status, RunStatus::kRunning);
  EXPECT_EQ((*run)->worker, "") << "released: held by no worker";

  auto quick = Start("quick");
  ferry::Run q = WaitEnd(quick.run.id, seconds(10));
  EXPECT_EQ(q.status, RunStatus::kSucceeded);
  run = store_->GetRun(waiting.run.id);
  ASSERT_TRUE(run && *run);
  EXPECT_EQ((*run)->status, RunStatus::kRunning) << "the quick run ran during the wait";

  ferry::Run done = WaitEnd(waiting.run.id, seconds(20));
  EXPECT_EQ(done.status, RunStatus::kSucceeded) << done.error;
  EXPECT_EQ(done.attempt, 1) << "a wait out of the slot is no new attempt";
  EXPECT_EQ(CountLines(Path("count.txt"), "one"), 1);
  EXPECT_EQ(CountLines(Path("count.txt"), "three"), 1);
  auto steps = store_->ListSteps(waiting.run.id);
  ASSERT_TRUE(steps);
  for (const auto& s : *steps) {
    if (s.node_id != "wait") continue;
    Json out = Json::parse(s.output);
    EXPECT_GE(s.finished_ms, out["deadline_ms"].get<int64_t>()) << "never cut short";
    EXPECT_GE(out["waited_ms"].get<int64_t>(), 3000);
  }
  const auto types = EventTypes(waiting.run.id);
  EXPECT_EQ(std::count(types.begin(), types.end(), "run.waiting"), 1);
  EXPECT_EQ(std::count(types.begin(), types.end(), "run.started"), 2);
  auto task = broker_->GetTask(waiting.task_id);
  ASSERT_TRUE(task && *task);
  EXPECT_EQ((*task)->status, TaskStatus::kSucceeded);
  EXPECT_EQ((*task)->attempts, 1);
}

// A run whose task node waits for a task in its own queue, on a worker with one slot: the task
// cannot run while the run holds the slot, so the run gives the slot back once it has waited
// give_back_waits_over, the task runs, and its end wakes the run at once (not at the recheck, 30 s
// later). The run ends on its first attempt with the task's result, having waited once.
TEST_F(RunsTest, ARunWaitingForATaskOfItsOwnQueueGivesItsSlotToIt) {
  Apply(R"(name: parent
nodes:
  child:
    kind: task
    task: {kind: sleep, payload: {ms: 1500}, max_attempts: 1}
  after:
    kind: lua
    needs: [child]
    script: return nodes.child.output.slept_ms
)");
  give_back_waits_over_ = milliseconds(500);
  StartWorker(nullptr, /*concurrency=*/1);
  auto started = Start("parent");
  ferry::Run done = WaitEnd(started.run.id, seconds(20));
  ASSERT_EQ(done.status, RunStatus::kSucceeded) << done.error;
  EXPECT_EQ(done.attempt, 1);
  EXPECT_EQ(Json::parse(done.output)["after"], 1500);
  // Woken by the task's end, well before the recheck: the run ended within seconds of it.
  EXPECT_LT(done.finished_ms - done.started_ms, 15000);
  auto events = store_->ListRunEvents(started.run.id, 0, 1000);
  ASSERT_TRUE(events);
  std::vector<Json> waiting;
  for (const auto& e : *events) {
    if (e.type == "run.waiting") waiting.push_back(Json::parse(e.data));
  }
  ASSERT_GE(waiting.size(), 1u);
  ASSERT_TRUE(waiting[0].contains("tasks"));
  ASSERT_EQ(waiting[0]["tasks"].size(), 1u);
  const std::string child = waiting[0]["tasks"][0];
  // Gone on from its stored wait, the node is not told as started or waiting again, and its step
  // counts from its first look, before the run gave its slot back.
  int started_events = 0;
  int waiting_events = 0;
  int64_t released_ms = 0;
  for (const auto& e : *events) {
    if (e.type == "run.waiting" && released_ms == 0) released_ms = e.ts_ms;
    if (e.type != "node.started" && e.type != "node.waiting") continue;
    if (Json::parse(e.data).value("node", "") != "child") continue;
    (e.type == "node.started" ? started_events : waiting_events) += 1;
  }
  EXPECT_EQ(started_events, 1);
  EXPECT_EQ(waiting_events, 1);
  auto steps = store_->ListSteps(started.run.id);
  ASSERT_TRUE(steps);
  bool found = false;
  for (const auto& st : *steps) {
    if (st.node_id != "child" || st.status != "succeeded") continue;
    found = true;
    EXPECT_LT(st.started_ms, released_ms);
    EXPECT_GE(st.finished_ms - st.started_ms, 1500);
  }
  EXPECT_TRUE(found);
  auto task = broker_->GetTask(child);
  ASSERT_TRUE(task && *task);
  EXPECT_EQ((*task)->status, TaskStatus::kSucceeded);
  EXPECT_EQ((*task)->attempts, 1);
  // The run's end is stored before its task's completion reaches Redis: wait for the latter.
  TaskRecord own;
  ASSERT_TRUE(Eventually(
      [&] {
        auto t = broker_->GetTask(started.task_id);
        if (!t || !*t) return false;
        own = **t;
        return own.status == TaskStatus::kSucceeded;
      },
      seconds(10)))
      << TaskStatusName(own.status);
  EXPECT_EQ(own.attempts, 1) << "giving the slot back is no attempt";
}

// The same with a timeout on the task node (its own, or the workflow's default): the run gives
// its slot to its task rather than hold it until that timeout and fail.
TEST_F(RunsTest, ATaskNodeWithATimeoutGivesItsSlotToItsTask) {
  Apply(R"(name: parent
defaults: {timeout: 8s}
nodes:
  child:
    kind: task
    task: {kind: sleep, payload: {ms: 500}, max_attempts: 1}
)");
  give_back_waits_over_ = milliseconds(300);
  StartWorker(nullptr, /*concurrency=*/1);
  auto started = Start("parent");
  ferry::Run done = WaitEnd(started.run.id, seconds(20));
  ASSERT_EQ(done.status, RunStatus::kSucceeded) << done.error;
  EXPECT_EQ(Json::parse(done.output)["child"]["slept_ms"], 500);
}

// Several runs and their tasks in one queue, one slot, each task node with a timeout shorter
// than --run-slot-wait: a run waiting for its task gives the slot back as soon as work waits for
// it in the worker (the next run, or its own task, prefetched), so every task gets a slot in
// time and every run succeeds.
TEST_F(RunsTest, RunsWaitingForTasksGiveTheirSlotToWorkWaitingForIt) {
  Apply(R"(name: parent
nodes:
  child:
    kind: task
    timeout: 4s
    task: {kind: sleep, payload: {ms: 300}, max_attempts: 1}
)");
  StartWorker(nullptr, /*concurrency=*/1);  // --run-slot-wait: the default 5 s
  std::vector<std::string> ids;
  for (int i = 0; i < 4; ++i) ids.push_back(Start("parent").run.id);
  for (const auto& id : ids) {
    ferry::Run done = WaitEnd(id, seconds(60));
    EXPECT_EQ(done.status, RunStatus::kSucceeded) << id << ": " << done.error;
  }
}

TaskListFilter SleepTasks() {
  TaskListFilter f;
  f.queue = "default";
  f.kind = "sleep";
  return f;
}

// Redis out of reach while a task node looks at its task (restarting) is no failure of the node:
// it looks again, and the run ends with the task's result, its one task submitted once.
TEST_F(RunsTest, ATaskNodeOutlivesARedisRestartWhileItWaits) {
  Apply(R"(name: parent
nodes:
  child:
    kind: task
    task: {kind: sleep, payload: {ms: 2500}, max_attempts: 1}
)");
  give_back_waits_over_ = std::chrono::hours(1);  // it waits in its slot, looking all along
  StartWorker(nullptr, /*concurrency=*/2);
  auto started = Start("parent");
  std::string child;
  ASSERT_TRUE(Eventually(
      [&] {
        auto list = broker_->ListTasks(SleepTasks());
        if (!list || list->tasks.empty() || list->tasks[0].status != TaskStatus::kRunning) {
          return false;
        }
        child = list->tasks[0].id;
        return true;
      },
      seconds(10)));
  redis_.Stop();
  SleepMs(1000);  // several of its looks (every 100 ms) meet no Redis
  redis_.Start();
  ferry::Run done = WaitEnd(started.run.id, seconds(30));
  ASSERT_EQ(done.status, RunStatus::kSucceeded) << done.error;
  EXPECT_EQ(Json::parse(done.output)["child"]["slept_ms"], 2500);
  Result<TaskPage> list = Fail(ErrorCode::kInternal, "not listed");
  // This test's own connection met the restart too: the first call may report it.
  ASSERT_TRUE(Eventually(
      [&] {
        list = broker_->ListTasks(SleepTasks());
        return list.has_value();
      },
      seconds(10)));
  ASSERT_EQ(list->tasks.size(), 1u) << "one task, submitted once";
  EXPECT_EQ(list->tasks[0].id, child);
}

// A run that ends while a task its task node submitted is still going (here a node beside it
// fails the run) cancels that task: nobody waits for it any more.
TEST_F(RunsTest, ARunThatEndsCancelsTheTasksItLeftGoing) {
  Apply(R"(name: parent
nodes:
  child:
    kind: task
    task: {kind: echo, queue: nobody-serves-this}
  boom:
    kind: shell
    argv: [sh, -c, 'sleep 0.5; exit 3']
)");
  StartWorker();
  auto started = Start("parent");
  ferry::Run done = WaitEnd(started.run.id, seconds(20));
  ASSERT_EQ(done.status, RunStatus::kFailed) << done.error;
  EXPECT_EQ(done.failed_node, "boom");
  auto tasks = WaitTasksCancelled("nobody-serves-this", 1);
  ASSERT_EQ(tasks.size(), 1u);
  EXPECT_EQ(tasks[0].status, TaskStatus::kCancelled);
}

// A run that gave its slot back finds its task node's task by the id its stored wait names, not
// by the submission's unique key: with the key gone (expired), the run goes on with that task's
// result instead of waiting for a second task.
TEST_F(RunsTest, AReleasedRunFindsItsTaskByTheStoredIdWithoutItsKey) {
  Apply(R"(name: parent
nodes:
  child:
    kind: task
    task: {kind: echo, queue: served-by-the-test}
)");
  give_back_waits_over_ = milliseconds(300);
  StartWorker();
  auto started = Start("parent");
  std::string child;
  ASSERT_TRUE(Eventually(
      [&] {
        child = TaskOfLastRelease(*store_, started.run.id);
        return !child.empty();
      },
      seconds(20)));
  const std::string keys = redis_.Cli({"KEYS", "*:unique:ferry.run:*"});
  ASSERT_FALSE(keys.empty());
  std::istringstream lines(keys);
  for (std::string key; std::getline(lines, key);) {
    if (!key.empty()) redis_.Cli({"DEL", key});
  }
  auto claimed = broker_->Claim({"served-by-the-test"}, "test-worker", 1, milliseconds(2000));
  ASSERT_TRUE(claimed) << claimed.error().message;
  ASSERT_EQ(claimed->size(), 1u);
  ASSERT_EQ((*claimed)[0].id, child);
  Completion done_child;
  done_child.id = child;
  done_child.queue = "served-by-the-test";
  done_child.entry_id = (*claimed)[0].entry_id;
  done_child.epoch = (*claimed)[0].epoch;
  done_child.result = R"({"made_by": "the test"})";
  done_child.worker = "test-worker";
  auto outcome = broker_->Complete({done_child});
  ASSERT_TRUE(outcome) << outcome.error().message;
  ferry::Run done = WaitEnd(started.run.id, seconds(20));
  ASSERT_EQ(done.status, RunStatus::kSucceeded) << done.error;
  EXPECT_EQ(Json::parse(done.output)["child"]["made_by"], "the test");
  TaskListFilter f;
  f.queue = "served-by-the-test";
  auto list = broker_->ListTasks(f);
  ASSERT_TRUE(list) << list.error().message;
  // Ended, it was looked at by its id alone: nothing submitted again under its key.
  ASSERT_EQ(list->tasks.size(), 1u) << "one task, submitted once";
  EXPECT_EQ(list->tasks[0].id, child);

  // A stored wait whose task has gone altogether (away longer than the task layer keeps a
  // record): the node submits anew, and the run goes on with that task.
  auto again = Start("parent");
  std::string lost;
  ASSERT_TRUE(Eventually(
      [&] {
        lost = TaskOfLastRelease(*store_, again.run.id);
        return !lost.empty();
      },
      seconds(20)));
  // Its record and key go, as retention takes them (its stream entry, left, is skipped).
  const std::string gone = redis_.Cli({"KEYS", "*:task:" + lost});
  redis_.Cli({"DEL", gone.substr(0, gone.find('\n'))});
  const std::string gone_keys = redis_.Cli({"KEYS", "*:unique:ferry.run:" + again.run.id + "*"});
  std::istringstream gone_lines(gone_keys);
  for (std::string key; std::getline(gone_lines, key);) {
    if (!key.empty()) redis_.Cli({"DEL", key});
  }
  // The run's task comes back (as its recheck would, later).
  ASSERT_TRUE(broker_->PromoteDue("default", WallNowMs() + 3'600'000, 10));
  std::vector<ClaimedTask> anew;
  ASSERT_TRUE(Eventually(
      [&] {
        auto c = broker_->Claim({"served-by-the-test"}, "test-worker", 1, milliseconds(100));
        if (c && !c->empty()) anew = *c;
        return !anew.empty();
      },
      seconds(20)));
  EXPECT_NE(anew[0].id, lost);
  done_child.id = anew[0].id;
  done_child.entry_id = anew[0].entry_id;
  done_child.epoch = anew[0].epoch;
  ASSERT_TRUE(broker_->Complete({done_child}));
  ferry::Run resumed = WaitEnd(again.run.id, seconds(20));
  ASSERT_EQ(resumed.status, RunStatus::kSucceeded) << resumed.error;
  EXPECT_EQ(Json::parse(resumed.output)["child"]["made_by"], "the test");
}

// A task node's attempt that times out leaves its task to nobody: the next attempt cancels it
// before submitting its own, instead of both running on until the run's end.
TEST_F(RunsTest, ATimedOutAttemptsTaskIsCancelledByTheNextAttempt) {
  Apply(R"(name: parent
nodes:
  child:
    kind: task
    task: {kind: echo, queue: nobody-serves-this}
    timeout: 2s
    retry: {max_attempts: 3, backoff: 100ms}
)");
  StartWorker();
  auto started = Start("parent");
  TaskListFilter f;
  f.queue = "nobody-serves-this";
  Result<TaskPage> list = Fail(ErrorCode::kInternal, "not listed");
  ASSERT_TRUE(Eventually(
      [&] {
        list = broker_->ListTasks(f);
        return list && list->tasks.size() >= 2;
      },
      seconds(20)));
  int pending = 0;
  int cancelled = 0;
  for (const auto& t : list->tasks) {
    pending += t.status == TaskStatus::kPending ? 1 : 0;
    cancelled += t.status == TaskStatus::kCancelled ? 1 : 0;
  }
  EXPECT_LE(pending, 1) << "the first attempt's task still waits beside the second's";
  EXPECT_GE(cancelled, 1);
  ferry::Run done = WaitEnd(started.run.id, seconds(30));
  ASSERT_EQ(done.status, RunStatus::kFailed) << done.error;
  EXPECT_EQ(done.failed_node, "child");
  auto tasks = WaitTasksCancelled("nobody-serves-this", 3);
  ASSERT_EQ(tasks.size(), 3u);
  for (const auto& t : tasks) EXPECT_EQ(t.status, TaskStatus::kCancelled) << t.id;
}

// A run waiting out of its slot is cancelled as any run is: through the API's path (the store,
// then its task) it ends at once and never runs its next node; through `ferry task cancel` on
// its task alone, the next recovery pass cancels it rather than resume it.
TEST_F(RunsTest, ARunWaitingOutOfItsSlotIsCancelled) {
  Apply(ThreeNodes(Path("count.txt"), "1h"));
  give_back_waits_over_ = seconds(1);
  StartWorker();
  auto released = [&](const runs::StartRunResult& s) {
    return Eventually(
        [&] {
          auto t = broker_->GetTask(s.task_id);
          return t && *t && (*t)->status == TaskStatus::kScheduled;
        },
        seconds(10));
  };
  auto s1 = Start("three");
  ASSERT_TRUE(released(s1));
  ASSERT_TRUE(store_->CancelRun(s1.run.id));
  auto c1 = broker_->Cancel(s1.task_id);
  ASSERT_TRUE(c1) << c1.error().message;
  EXPECT_EQ(*c1, TaskStatus::kCancelled);
  EXPECT_EQ(WaitEnd(s1.run.id, seconds(5)).status, RunStatus::kCancelled);

  auto s2 = Start("three");
  ASSERT_TRUE(released(s2));
  ASSERT_TRUE(broker_->Cancel(s2.task_id));  // `ferry task cancel` on the run's task
  runs::RecoveryOptions ro;
  ro.pending_age = milliseconds(-1);
  auto report = runs::RecoverRuns(*store_, *broker_, ro);
  ASSERT_TRUE(report) << report.error().message;
  bool seen = false;
  for (const auto& r : report->runs) {
    if (r.run_id != s2.run.id) continue;
    seen = true;
    EXPECT_EQ(r.action, runs::RunRecovery::Action::kCancelled) << r.detail;
  }
  EXPECT_TRUE(seen);
  EXPECT_EQ(WaitEnd(s2.run.id, seconds(5)).status, RunStatus::kCancelled);
  const auto types = EventTypes(s2.run.id);
  EXPECT_EQ(types.back(), "run.finished");
  EXPECT_EQ(CountLines(Path("count.txt"), "three"), 0);
  EXPECT_EQ(CountLines(Path("count.txt"), "one"), 2);
}

// Node events go to the run's history always, and to the task's own event stream only when the
// worker is asked to (run-task-events): the copy costs a one-node run a third of its Redis calls.
TEST_F(RunsTest, NodeEventsReachTheTasksStreamOnlyWhenAsked) {
  Apply("name: mirrored\nnodes:\n  one:\n    kind: lua\n    script: return 1\n");
  for (const bool mirror : {false, true}) {
    SCOPED_TRACE(mirror ? "task_events on" : "task_events off (default)");
    auto started = Start("mirrored");
    runs::RunHandlerOptions ho;
    if (mirror) ho.task_events = true;
    auto handler = runs::MakeRunHandler(*stores_, *brokers_, ho);
    RecordingEmitter emitter;
    TaskContext ctx = RunTaskContext(started.run.id, "task-mirrored", 1, &emitter);
    auto result = handler(ctx);
    ASSERT_TRUE(result) << result.error().message;
    EXPECT_EQ((*result)["status"], "succeeded") << DumpJson(*result);
    std::lock_guard lock(emitter.mu);
    if (mirror) {
      EXPECT_EQ(emitter.types, (std::vector<std::string>{"node.started", "node.finished"}));
    } else {
      EXPECT_TRUE(emitter.types.empty()) << emitter.types.front();
    }
    EXPECT_EQ(EventTypes(started.run.id),
              (std::vector<std::string>{"run.created", "run.started", "node.started",
                                        "node.finished", "run.finished"}));
  }
}

// A cancel the watcher has not seen yet (its poll is an hour here) refuses what the run writes
// next: the checkpoint of a node with another after it, or, when the node was the last, the
// run's end (which carries that node's checkpoint). Either way the run ends as cancelled with
// its history closed by one run.finished, and its task succeeds, rather than failing as
// superseded and landing in the dead letters (a stress round saw exactly that).
TEST_F(RunsTest, ACancelThatRefusesACheckpointEndsTheRunAsCancelled) {
  const std::string gate = Path("gate");
  const std::string hold = "  hold:\n    kind: shell\n    argv: [sh, -c, 'touch " +
                           Path("started") + "; while [ ! -e " + gate +
                           " ]; do sleep 0.01; done']\n";
  Apply("name: held\nnodes:\n" + hold + "  after:\n    kind: lua\n    needs: [hold]\n" +
        "    script: return 1\n");
  Apply("name: heldlast\nnodes:\n" + hold);
  for (const char* workflow : {"held", "heldlast"}) {
    SCOPED_TRACE(workflow);
    std::filesystem::remove(Path("started"));
    std::filesystem::remove(gate);
    auto started = Start(workflow);  // its task sits in Redis; no worker runs it
    runs::RunHandlerOptions ho;
    ho.cancel_poll = std::chrono::hours(1);
    auto handler = runs::MakeRunHandler(*stores_, *brokers_, ho);
    NullEmitter emitter;
    TaskContext ctx = RunTaskContext(started.run.id, "task-" + std::string(workflow), 1, &emitter);
    HandlerResult result;
    std::thread run([&] { result = handler(ctx); });
    const bool node_started =
        Eventually([&] { return std::filesystem::exists(Path("started")); }, seconds(20));
    ASSERT_TRUE(store_->CancelRun(started.run.id));
    { std::ofstream(gate).put('\n'); }
    run.join();
    ASSERT_TRUE(node_started);
    ASSERT_TRUE(result) << result.error().message;
    EXPECT_EQ((*result)["status"], "cancelled") << DumpJson(*result);
    auto now = store_->GetRun(started.run.id);
    ASSERT_TRUE(now && *now);
    EXPECT_EQ((*now)->status, RunStatus::kCancelled);
    auto steps = store_->ListSteps(started.run.id);
    ASSERT_TRUE(steps);
    EXPECT_TRUE(steps->empty());  // the refused write stored no checkpoint
    auto events = store_->ListRunEvents(started.run.id, 0, 1000);
    ASSERT_TRUE(events);
    std::vector<std::string> finished;
    bool node_finished = false;
    for (const auto& e : *events) {
      if (e.type == "run.finished") finished.push_back(e.data);
      node_finished = node_finished || e.type == "node.finished";
    }
    ASSERT_EQ(finished.size(), 1u);
    EXPECT_NE(finished[0].find("\"cancelled\""), std::string::npos) << finished[0];
    // A refused end keeps what the last node said; a refused checkpoint drops its batch (a run
    // that lost its write stops there, SaveWithEvents).
    if (std::string(workflow) == "heldlast") {
      EXPECT_TRUE(node_finished) << "node events kept";
    }
  }
}

TEST_F(RunsTest, SecretsNeverReachTheStoreOrLogs) {
  const std::string secret = "tok-9f8e7d6c5b4a-SECRET";
  std::ostringstream logs;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(logs);
  spdlog::default_logger()->sinks().push_back(sink);
  spdlog::set_level(spdlog::level::debug);
  engine::MapSecretResolver secrets({{"TOKEN", secret}});
  Apply(
      "name: secretive\nsecrets: [TOKEN]\nnodes:\n"
      "  echo:\n    kind: shell\n    argv: [echo, 'token={{ secrets.TOKEN }}']\n"
      "  echo2:\n    kind: shell\n    needs: [echo]\n"
      "    argv: [sh, -c, 'echo $0 >&2; exit 3', '{{ secrets.TOKEN }}']\n");
  StartWorker(&secrets);
  ferry::Run run = WaitEnd(Start("secretive").run.id);
  StopWorker();
  spdlog::default_logger()->sinks().pop_back();
  EXPECT_EQ(run.status, RunStatus::kFailed);  // exit 3, with the secret on stderr
  std::string everything = run.output + run.error + run.inputs;
  auto steps = store_->ListSteps(run.id);
  ASSERT_TRUE(steps);
  ASSERT_EQ(steps->size(), 2u);
  for (const auto& s : *steps) everything += s.output + s.error;
  auto events = store_->ListRunEvents(run.id, 0, 10000);
  ASSERT_TRUE(events);
  for (const auto& e : *events) everything += e.data;
  EXPECT_NE(everything.find("token=***"), std::string::npos) << everything;
  EXPECT_EQ(everything.find(secret), std::string::npos) << everything;
  // Every byte the database wrote, every table: the files themselves.
  store_.reset();
  for (const auto& f : std::filesystem::directory_iterator(dir_.path())) {
    EXPECT_EQ(ReadAll(f.path()).find(secret), std::string::npos) << f.path();
  }
  EXPECT_FALSE(logs.str().empty());
  EXPECT_EQ(logs.str().find(secret), std::string::npos) << logs.str();
}

TEST_F(RunsTest, RecoverRunWhoseTaskWasDeleted) {
  Apply(ThreeNodes(Path("count.txt"), "10ms"));
  auto started = Start("three");
  // A worker marked it running (generation 0, epoch 1), ran node one, then vanished, and the
  // task record is gone (retention, FLUSH, a lost Redis).
  ASSERT_TRUE(store_->MarkRunRunning(started.run.id, runs::RunFencingToken(0, 1), "ghost/x"));
  RunStep step;
  step.run_id = started.run.id;
  step.node_id = "one";
  step.status = "succeeded";
  step.output = "{\"stdout\":\"\",\"stderr\":\"\",\"exit_code\":0}";
  step.epoch = runs::RunFencingToken(0, 1);
  step.attempt = 1;
  ASSERT_TRUE(store_->SaveStep(step));
  redis_.Cli({"FLUSHALL"});

  runs::RecoveryOptions ro;
  auto report = runs::RecoverRuns(*store_, *broker_, ro);
  ASSERT_TRUE(report) << report.error().message;
  ASSERT_EQ(report->runs.size(), 1u);
  EXPECT_EQ(report->runs[0].action, runs::RunRecovery::Action::kEnqueued) << report->runs[0].detail;
  EXPECT_EQ(report->runs[0].generation, 1);
  // A second pass sees the new task alive and does nothing.
  auto again = runs::RecoverRuns(*store_, *broker_, ro);
  ASSERT_TRUE(again);
  ASSERT_EQ(again->runs.size(), 1u);
  EXPECT_EQ(again->runs[0].action, runs::RunRecovery::Action::kAlive);

  StartWorker();
  ferry::Run run = WaitEnd(started.run.id);
  EXPECT_EQ(run.status, RunStatus::kSucceeded) << run.error;
  EXPECT_EQ(CountLines(Path("count.txt"), "one"), 0);  // checkpointed: not run again
  EXPECT_EQ(CountLines(Path("count.txt"), "three"), 1);
  EXPECT_EQ(runs::RunGeneration(run.epoch), 1);
}

// A pending run whose task was cancelled (`ferry task cancel` before any worker took it) is
// cancelled with it, not given a new task; one whose task is alive is left alone.
TEST_F(RunsTest, APendingRunWhoseTaskWasCancelledIsCancelled) {
  Apply(ThreeNodes(Path("count.txt"), "1s"));
  auto cancelled = Start("three");  // no worker: the tasks stay pending
  auto alive = Start("three");
  ASSERT_TRUE(broker_->Cancel(cancelled.task_id));
  runs::RecoveryOptions ro;
  ro.pending_age = milliseconds(0);
  ro.check_running = false;
  auto report = runs::RecoverRuns(*store_, *broker_, ro);
  ASSERT_TRUE(report) << report.error().message;
  std::map<std::string, runs::RunRecovery::Action> actions;
  for (const auto& r : report->runs) actions[r.run_id] = r.action;
  EXPECT_EQ(actions[cancelled.run.id], runs::RunRecovery::Action::kCancelled);
  EXPECT_EQ(actions[alive.run.id], runs::RunRecovery::Action::kAlive);
  EXPECT_EQ(WaitEnd(cancelled.run.id, seconds(5)).status, RunStatus::kCancelled);
  EXPECT_EQ(EventTypes(cancelled.run.id).back(), "run.finished");
  auto run = store_->GetRun(alive.run.id);
  ASSERT_TRUE(run && *run);
  EXPECT_EQ((*run)->status, RunStatus::kPending);
}

// A run cancelled while its worker was dead: the store says cancelled, but the handler that held
// it never wrote its end, and its task ends cancelled with no handler (the broker's reclaim).
// Recovery writes the end once the task has ended; while the task goes on, the handler may
// still write it, and it waits. (Its history never got run.finished.)
TEST_F(RunsTest, ARunCancelledWhileItsWorkerWasDeadGetsItsEnd) {
  Apply(ThreeNodes(Path("count.txt"), "1s"));
  auto started = Start("three");  // no worker: its task stays pending
  // A worker took it (epoch 1) and died; the cancel finds the row held, so leaves the end to
  // that worker's handler.
  ASSERT_TRUE(store_->MarkRunRunning(started.run.id, runs::RunFencingToken(0, 1), "ghost/x"));
  ASSERT_TRUE(store_->CancelRun(started.run.id));
  runs::RecoveryOptions ro;
  ro.pending_age = milliseconds(-1);
  ro.check_running = false;

  // Its task not ended yet: left alone.
  auto waiting = runs::RecoverRuns(*store_, *broker_, ro);
  ASSERT_TRUE(waiting) << waiting.error().message;
  ASSERT_EQ(waiting->runs.size(), 1u);
  EXPECT_EQ(waiting->runs[0].action, runs::RunRecovery::Action::kAlive) << waiting->runs[0].detail;
  EXPECT_NE(EventTypes(started.run.id).back(), "run.finished");

  ASSERT_TRUE(broker_->Cancel(started.task_id));  // as the reclaim of a cancel-requested task
  ro.dry_run = true;
  auto look = runs::RecoverRuns(*store_, *broker_, ro);
  ASSERT_TRUE(look);
  ASSERT_EQ(look->runs.size(), 1u);
  EXPECT_EQ(look->runs[0].action, runs::RunRecovery::Action::kEnded);
  EXPECT_NE(EventTypes(started.run.id).back(), "run.finished");  // a dry run writes nothing

  ro.dry_run = false;
  auto ended = runs::RecoverRuns(*store_, *broker_, ro);
  ASSERT_TRUE(ended);
  ASSERT_EQ(ended->runs.size(), 1u);
  EXPECT_EQ(ended->runs[0].action, runs::RunRecovery::Action::kEnded) << ended->runs[0].detail;
  auto events = store_->ListRunEvents(started.run.id, 0, 1000);
  ASSERT_TRUE(events && !events->empty());
  EXPECT_EQ(events->back().type, "run.finished");
  EXPECT_EQ((*ParseJson(events->back().data))["status"], "cancelled");
  // Once: the next pass finds its end.
  auto again = runs::RecoverRuns(*store_, *broker_, ro);
  ASSERT_TRUE(again);
  EXPECT_TRUE(again->runs.empty());
}

// A released run whose task was lost (a Redis that lost its data) is taken over by a task
// scheduled for the end of its wait, not one that would run at once only to hold a slot or be
// released again.
TEST_F(RunsTest, ALostTaskOfAReleasedRunIsReplacedForTheEndOfItsWait) {
  Apply(ThreeNodes(Path("count.txt"), "1h"));
  give_back_waits_over_ = seconds(1);
  StartWorker();
  auto s = Start("three");
  ASSERT_TRUE(Eventually(
      [&] {
        auto t = broker_->GetTask(s.task_id);
        return t && *t && (*t)->status == TaskStatus::kScheduled;
      },
      seconds(10)));
  StopWorker();
  auto waiting =
      store_->ListRunEventPage(s.run.id, {.limit = 1, .types = {"run.waiting"}, .last = true});
  ASSERT_TRUE(waiting && waiting->events.size() == 1u);
  const int64_t until = Json::parse(waiting->events[0].data)["until_ms"].get<int64_t>();
  redis_.Cli({"FLUSHALL"});

  runs::RecoveryOptions ro;
  ro.pending_age = milliseconds(-1);
  // On its last allowed attempt: going on after a wait counts none, so it is not given up.
  ro.max_run_attempts = 1;
  auto report = runs::RecoverRuns(*store_, *broker_, ro);
  ASSERT_TRUE(report) << report.error().message;
  ASSERT_EQ(report->runs.size(), 1u);
  const auto& r = report->runs[0];
  EXPECT_EQ(r.action, runs::RunRecovery::Action::kEnqueued) << r.detail;
  EXPECT_NE(r.detail.find("when its wait ends"), std::string::npos) << r.detail;
  auto task = broker_->GetTask(r.task_id);
  ASSERT_TRUE(task && *task);
  EXPECT_EQ((*task)->status, TaskStatus::kScheduled);
  EXPECT_EQ((*task)->eta_ms, until);
}

// A run recovery gives up on (its task lost on its last attempt) cancels the tasks its task
// nodes left going: no execution of it will look at them again.
TEST_F(RunsTest, ARunRecoveryGivesUpOnCancelsItsTaskNodesTasks) {
  Apply(R"(name: parent
nodes:
  child:
    kind: task
    task: {kind: echo, queue: nobody-serves-this}
)");
  give_back_waits_over_ = std::chrono::hours(1);  // it waits in its slot
  StartWorker();
  auto s = Start("parent");
  std::string child;
  ASSERT_TRUE(Eventually(
      [&] {
        child = LastWaitedTask(*store_, s.run.id);
        return !child.empty();
      },
      seconds(10)));
  StopWorker();
  const std::string keys = redis_.Cli({"KEYS", "*:task:" + s.task_id});
  ASSERT_FALSE(keys.empty());
  redis_.Cli({"DEL", keys.substr(0, keys.find('\n'))});

  runs::RecoveryOptions ro;
  ro.pending_age = milliseconds(-1);
  ro.max_run_attempts = 1;
  auto report = runs::RecoverRuns(*store_, *broker_, ro);
  ASSERT_TRUE(report) << report.error().message;
  ASSERT_EQ(report->runs.size(), 1u);
  EXPECT_EQ(report->runs[0].action, runs::RunRecovery::Action::kFailed) << report->runs[0].detail;
  auto task = broker_->GetTask(child);
  ASSERT_TRUE(task && *task);
  EXPECT_EQ((*task)->status, TaskStatus::kCancelled);
}

// Recovery looks at running runs a limited number at a time, each pass after the last one
// the previous pass looked at, so all of them are looked at however many there are (runs
// waiting for delays out of any slot are running too, and could otherwise hide a stuck one).
TEST_F(RunsTest, RecoveryPassesGoOnWhereTheLastStopped) {
  Apply(ThreeNodes(Path("count.txt"), "1s"));
  std::vector<std::string> ids;
  for (int i = 0; i < 2; ++i) {
    auto s = Start("three");  // no worker: its task stays pending, alive
    ASSERT_TRUE(store_->MarkRunRunning(s.run.id, runs::RunFencingToken(0, 1), "w/x"));
    ids.push_back(s.run.id);
  }
  std::sort(ids.begin(), ids.end());
  runs::RecoveryOptions ro;
  ro.pending_age = milliseconds(-1);
  ro.limit = 1;
  std::vector<std::string> seen;
  for (int pass = 0; pass < 3; ++pass) {
    auto report = runs::RecoverRuns(*store_, *broker_, ro);
    ASSERT_TRUE(report) << report.error().message;
    for (const auto& r : report->runs) {
      EXPECT_EQ(r.action, runs::RunRecovery::Action::kAlive) << r.detail;
      seen.push_back(r.run_id);
    }
    ro.running_after = report->running_next;
  }
  // The first, the second, then none (the end: the next pass begins from the first again).
  EXPECT_EQ(seen, ids);
  EXPECT_EQ(ro.running_after, "");
}

TEST(RunsPostgresTest, RunSucceedsOnPostgres) {
  if (!PostgresServer::Available()) GTEST_SKIP() << "PostgreSQL not installed";
  PostgresServer pg;
  RedisServer redis;
  TempDir dir;
  auto stores = MakeStoreFactory(pg.CreateDatabase());
  ASSERT_TRUE(stores);
  auto store = (*stores)->Open();
  ASSERT_TRUE(store) << store.error().message;
  BrokerOptions bo;
  bo.redis_url = redis.url();
  auto brokers = MakeRedisBrokerFactory(bo);
  auto broker = brokers->Open();
  ASSERT_TRUE(broker);
  std::string yaml = ThreeNodes((dir.path() / "count.txt").string(), "10ms");
  auto ing = engine::Ingest(yaml);
  ASSERT_TRUE(ing);
  ApplyWorkflowRequest ar;
  ar.name = "three";
  ar.source = yaml;
  ar.graph = DumpJson(ing->canonical);
  ar.checksum = ing->checksum;
  ASSERT_TRUE((*store)->ApplyWorkflow(ar));
  HandlerRegistry registry;
  runs::RegisterRunHandler(registry, **stores, *brokers, {});
  WorkerOptions wo;
  wo.broker = bo;
  wo.block = milliseconds(100);
  auto worker = MakeWorker(wo, registry, MakeRedisBrokerFactory(wo.broker));
  ASSERT_TRUE(worker && (*worker)->Start());
  runs::StartRunRequest req;
  req.workflow = "three";
  auto started = runs::StartRun(**store, **broker, req);
  ASSERT_TRUE(started);
  RunStatus status = RunStatus::kPending;
  EXPECT_TRUE(Eventually(
      [&] {
        auto r = (*store)->GetRun(started->run.id);
        if (r && *r) status = (*r)->status;
        return IsTerminal(status);
      },
      seconds(20)));
  (*worker)->Stop();
  (*worker)->Wait();
  EXPECT_EQ(status, RunStatus::kSucceeded);
  auto steps = (*store)->ListSteps(started->run.id);
  ASSERT_TRUE(steps);
  EXPECT_EQ(steps->size(), 3u);
}

}  // namespace
}  // namespace ferry::testing
