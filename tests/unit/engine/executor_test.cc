#include "engine/executor.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <set>
#include <thread>

#include "core/time_util.h"
#include "engine/ingest.h"

namespace ferry::engine {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;

struct SavedStep {
  std::string node;
  StepStatus status;
  Json output;
  std::string error;
  int attempt;
};

// Records everything; `task` nodes run `on_task`.
class FakeSink : public RunSink {
 public:
  Status SaveStep(const std::string& node, StepStatus status, const Json& output,
                  const std::string& error, int attempt) override {
    std::lock_guard lock(mu);
    if (fail_saves) return Fail(ErrorCode::kConflict, "stale epoch");
    steps.push_back(SavedStep{node, status, output, error, attempt});
    return {};
  }
  // Saved like the others (the default), but which node came as the last one is recorded.
  Status SaveLastStep(const std::string& node, StepStatus status, const Json& output,
                      const std::string& error, int attempt) override {
    {
      std::lock_guard lock(mu);
      last_steps.push_back(node);
    }
    return RunSink::SaveLastStep(node, status, output, error, attempt);
  }
  void Emit(const std::string& type, const Json& data) override {
    std::lock_guard lock(mu);
    events.emplace_back(type, data);
  }
  Result<TaskNodeProgress> SubmitOrCheck(const TaskNodeRequest& req) override {
    {
      std::lock_guard lock(mu);
      task_calls[req.node_id]++;
      requests.push_back(req);
    }
    if (on_check) return on_check(req);
    Result<Json> r = on_task ? on_task(req) : Result<Json>(Json{{"echo", req.payload}});
    if (!r) return Fail(r.error());
    return TaskNodeProgress{"T-" + req.node_id, std::move(*r)};
  }
  // A stored deadline from `stored_deadlines` (as a resumed run finds it), else now + duration,
  // stored there as the store keeps it.
  Result<int64_t> DelayDeadline(const std::string& node, int attempt,
                                std::chrono::milliseconds duration) override {
    std::lock_guard lock(mu);
    deadline_calls.emplace_back(node, attempt);
    if (fail_deadlines) return Fail(ErrorCode::kUnavailable, "store down");
    return stored_deadlines.try_emplace(node, WallNowMs() + duration.count()).first->second;
  }

  std::optional<StoredWait> StoredWaitOf(const std::string& node) override {
    std::lock_guard lock(mu);
    auto it = stored_waits.find(node);
    if (it == stored_waits.end()) return std::nullopt;
    return it->second;
  }

  std::vector<std::string> Order() {
    std::lock_guard lock(mu);
    std::vector<std::string> out;
    for (const auto& s : steps) out.push_back(s.node);
    return out;
  }
  const SavedStep* Step(const std::string& id) {
    std::lock_guard lock(mu);
    for (const auto& s : steps) {
      if (s.node == id) return &s;
    }
    return nullptr;
  }
  std::string AllText() {
    std::lock_guard lock(mu);
    std::string out;
    for (const auto& s : steps) out += s.output.dump() + s.error;
    for (const auto& [t, d] : events) out += t + d.dump();
    return out;
  }

  std::mutex mu;
  std::vector<SavedStep> steps;
  std::vector<std::string> last_steps;  // SaveLastStep's nodes
  std::vector<std::pair<std::string, Json>> events;
  std::map<std::string, int> task_calls;
  std::vector<TaskNodeRequest> requests;
  bool fail_saves = false;
  bool fail_deadlines = false;
  std::map<std::string, int64_t> stored_deadlines;
  std::map<std::string, StoredWait> stored_waits;
  std::vector<std::pair<std::string, int>> deadline_calls;
  std::function<Result<Json>(const TaskNodeRequest&)> on_task;  // a task that ends at once
  std::function<Result<TaskNodeProgress>(const TaskNodeRequest&)> on_check;  // or any progress
};

struct Harness {
  explicit Harness(const std::string& yaml) {
    auto r = IngestWorkflow(yaml);
    if (!r)
      ADD_FAILURE() << r.error().message;
    else
      ingested = std::move(*r);
    options.backoff_scale = 0;
  }
  RunOutcome Run(std::map<std::string, StepRecord> checkpoints = {}, std::stop_token stop = {}) {
    RunExecutor ex(ingested.workflow, options);
    return ex.Run(ctx, checkpoints, sink, std::move(stop));
  }
  Ingested ingested;
  ExecutorOptions options;
  RunContext ctx{"RUN1", "wf", "api", Json::object(), Json::object()};
  FakeSink sink;
};

TEST(Executor, RunsInDependencyOrderAndPassesOutputs) {
  Harness h(R"(name: chain
inputs: {n: {type: number, default: 2}}
nodes:
  c:
    kind: lua
    needs: [b]
    script: return nodes.b.output.v * 10
  a:
    kind: lua
    script: return { v = inputs.n + 1 }
  b:
    kind: lua
    needs: [a]
    script: return { v = nodes.a.output.v * 2 }
)");
  h.ctx.inputs = Json{{"n", 2}};
  auto out = h.Run();
  ASSERT_EQ(out.kind, RunOutcome::Kind::kSucceeded) << out.error;
  EXPECT_EQ(h.sink.Order(), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(out.outputs["c"], Json(60));
  EXPECT_EQ(h.sink.Step("b")->output, (Json{{"v", 6}}));
}

// A node's output and the run's outputs in all have byte limits: a node past either fails once
// (no retry: it would return the same), naming the limit. The outputs resumed from checkpoints
// count. Lua strings of a chosen length make outputs of known sizes: "q" * n dumps to n + 2.
TEST(Executor, NodeOutputsAreBoundedPerNodeAndPerRun) {
  const char* yaml = R"(name: big
inputs: {n: {type: number}}
nodes:
  a: {kind: lua, script: 'return string.rep("q", inputs.n)', retry: {max_attempts: 3}}
)";
  {
    Harness h(yaml);
    h.options.max_node_output_bytes = 100;
    h.ctx.inputs = Json{{"n", 98}};  // exactly 100 bytes
    EXPECT_EQ(h.Run().kind, RunOutcome::Kind::kSucceeded);
  }
  {
    Harness h(yaml);
    h.options.max_node_output_bytes = 100;
    h.ctx.inputs = Json{{"n", 99}};  // one past
    auto out = h.Run();
    ASSERT_EQ(out.kind, RunOutcome::Kind::kFailed);
    EXPECT_EQ(out.error, "output of 101 bytes is over the limit of 100 bytes for a node");
    EXPECT_EQ(h.sink.Step("a")->attempt, 1);
  }
  const char* three = R"(name: many
nodes:
  a: {kind: lua, script: 'return string.rep("q", 38)'}
  b: {kind: lua, needs: [a], script: 'return string.rep("q", 38)'}
  c: {kind: lua, needs: [b], script: 'return string.rep("q", 38)'}
)";
  {
    Harness h(three);
    h.options.max_run_output_bytes = 120;  // exactly three outputs of 40
    EXPECT_EQ(h.Run().kind, RunOutcome::Kind::kSucceeded);
  }
  {
    Harness h(three);
    h.options.max_run_output_bytes = 119;
    auto out = h.Run();
    ASSERT_EQ(out.kind, RunOutcome::Kind::kFailed);
    EXPECT_EQ(out.failed_node, "c");
    EXPECT_EQ(
        out.error,
        "output of 40 bytes would take the run's node outputs to 120 bytes, over its limit of "
        "119");
  }
  {
    // Resumed after a and b: their stored outputs count.
    Harness h(three);
    h.options.max_run_output_bytes = 119;
    std::map<std::string, StepRecord> done = {
        {"a", StepRecord{StepStatus::kSucceeded, Json(std::string(38, 'q')), "", 1}},
        {"b", StepRecord{StepStatus::kSucceeded, Json(std::string(38, 'q')), "", 1}}};
    auto out = h.Run(done);
    ASSERT_EQ(out.kind, RunOutcome::Kind::kFailed);
    EXPECT_EQ(out.failed_node, "c");
  }
}

// Task nodes that meet at a barrier: they show how many nodes ran at once.
struct Barrier {
  std::mutex mu;
  std::condition_variable cv;
  int arrived = 0;  // never decreases, so every waiter sees the last arrival
  int inside = 0;
  int max_inside = 0;
  Result<Json> Enter(int want, std::chrono::milliseconds wait) {
    std::unique_lock lock(mu);
    ++arrived;
    ++inside;
    max_inside = std::max(max_inside, inside);
    cv.notify_all();
    cv.wait_for(lock, wait, [&] { return arrived >= want; });
    --inside;
    return Json(true);
  }
};

const char* kParallel = R"(name: par
nodes:
  a: {kind: task, task: {kind: k}}
  b: {kind: task, task: {kind: k}}
  c: {kind: task, task: {kind: k}}
  join: {kind: task, needs: [a, b, c], task: {kind: k}}
)";

TEST(Executor, IndependentNodesRunInParallel) {
  Harness h(kParallel);
  Barrier barrier;
  h.sink.on_task = [&](const TaskNodeRequest& r) -> Result<Json> {
    if (r.node_id == "join") return Json(true);
    return barrier.Enter(3, 5s);
  };
  auto out = h.Run();
  ASSERT_EQ(out.kind, RunOutcome::Kind::kSucceeded) << out.error;
  EXPECT_EQ(barrier.max_inside, 3);
  EXPECT_EQ(h.sink.Order().back(), "join");
}

// A node that runs alone (a one-node run, each link of a chain) runs on the thread that runs the
// run, which would otherwise only wait for it: no thread is started per node.
TEST(Executor, ALoneNodeRunsOnTheCallersThread) {
  Harness h(R"(name: chain
nodes:
  a: {kind: task, task: {kind: k}}
  b: {kind: task, needs: [a], task: {kind: k}}
)");
  std::vector<std::thread::id> ran_on;
  h.sink.on_task = [&](const TaskNodeRequest&) -> Result<Json> {
    ran_on.push_back(std::this_thread::get_id());
    return Json(true);
  };
  auto out = h.Run();
  ASSERT_EQ(out.kind, RunOutcome::Kind::kSucceeded) << out.error;
  EXPECT_EQ(ran_on,
            (std::vector<std::thread::id>{std::this_thread::get_id(), std::this_thread::get_id()}));
}

TEST(Executor, ParallelismIsBounded) {
  Harness h(kParallel);
  h.options.max_parallelism = 2;
  Barrier barrier;
  h.sink.on_task = [&](const TaskNodeRequest& r) -> Result<Json> {
    if (r.node_id == "join") return Json(true);
    return barrier.Enter(3, 100ms);
  };
  auto out = h.Run();
  ASSERT_EQ(out.kind, RunOutcome::Kind::kSucceeded);
  EXPECT_EQ(barrier.max_inside, 2);
}

TEST(Executor, WhenFalseSkipsTheNodeAndItsDependents) {
  Harness h(R"(name: w
inputs: {deploy: {type: boolean, default: false}}
nodes:
  build: {kind: lua, script: return 1}
  ship: {kind: task, needs: [build], when: "{{ inputs.deploy }}", task: {kind: k}}
  notify: {kind: task, needs: [ship], task: {kind: k}}
  report: {kind: lua, needs: [build], when: "nodes.build.output == 1", script: return 2}
)");
  h.ctx.inputs = Json{{"deploy", false}};
  auto out = h.Run();
  ASSERT_EQ(out.kind, RunOutcome::Kind::kSucceeded) << out.error;
  EXPECT_EQ(h.sink.Step("ship")->status, StepStatus::kSkipped);
  EXPECT_EQ(h.sink.Step("notify")->status, StepStatus::kSkipped);
  EXPECT_EQ(h.sink.Step("report")->status, StepStatus::kSucceeded);
  EXPECT_EQ(h.sink.task_calls.size(), 0u);
  EXPECT_EQ(h.sink.steps.size(), 4u);
}

TEST(Executor, RetriesPerPolicy) {
  Harness h(R"(name: r
nodes:
  flaky: {kind: task, retry: {max_attempts: 3, backoff: 10ms}, task: {kind: k}}
)");
  std::atomic<int> calls{0};
  h.sink.on_task = [&](const TaskNodeRequest& r) -> Result<Json> {
    if (++calls < 3) return Fail(ErrorCode::kUnavailable, "try again " + r.unique_key);
    return Json("ok");
  };
  auto out = h.Run();
  ASSERT_EQ(out.kind, RunOutcome::Kind::kSucceeded) << out.error;
  EXPECT_EQ(calls.load(), 3);
  EXPECT_EQ(h.sink.Step("flaky")->attempt, 3);
  // Each attempt submits under its own unique key.
  EXPECT_EQ(h.sink.requests[0].unique_key, "ferry.run:RUN1:flaky:1");
  EXPECT_EQ(h.sink.requests[2].unique_key, "ferry.run:RUN1:flaky:3");
  int retrying = 0;
  for (const auto& [t, d] : h.sink.events) retrying += t == "node.retrying";
  EXPECT_EQ(retrying, 2);
}

TEST(Executor, RetriesRunOutThenTheRunFails) {
  Harness h(R"(name: r
nodes:
  bad: {kind: task, retry: 2, task: {kind: k}}
  after: {kind: lua, needs: [bad], script: return 1}
)");
  h.sink.on_task = [](const TaskNodeRequest&) -> Result<Json> {
    return Fail(ErrorCode::kUnavailable, "down");
  };
  auto out = h.Run();
  EXPECT_EQ(out.kind, RunOutcome::Kind::kFailed);
  EXPECT_EQ(out.failed_node, "bad");
  EXPECT_THAT(out.error, HasSubstr("down"));
  EXPECT_EQ(h.sink.task_calls["bad"], 2);
  EXPECT_EQ(h.sink.Step("after"), nullptr);
}

TEST(Executor, FailNodesAreNotRetried) {
  Harness h(R"(name: f
inputs: {why: {type: string, default: nope}}
nodes:
  stop: {kind: fail, retry: 5, message: "refused: {{ inputs.why }}"}
)");
  h.ctx.inputs = Json{{"why", "nope"}};
  auto out = h.Run();
  EXPECT_EQ(out.kind, RunOutcome::Kind::kFailed);
  EXPECT_EQ(out.error, "refused: nope");
  EXPECT_EQ(h.sink.Step("stop")->attempt, 1);
}

// Nodes launched in the same pass as one that fails at once: none starts after that failure is
// told. Each either started before it (and may have run) or never started, and a node whose
// program ran was told started. Before, their threads told their starts and ran their programs
// after the failure, and the run listed them as succeeded or interrupted. 20 rounds: a start
// racing the failure is what this catches.
TEST(Executor, NoNodeStartsAfterANodeFailedTheRun) {
  for (int round = 0; round < 20; ++round) {
    const std::string dir = ::testing::TempDir() + "/after-failure-" + std::to_string(round) + "-" +
                            std::to_string(WallNowMs());
    Harness h(
        "name: f\nnodes:\n  first: {kind: fail, message: stop}\n"
        "  b: {kind: shell, argv: [touch, " +
        dir +
        "-b]}\n"
        "  c: {kind: shell, argv: [touch, " +
        dir + "-c]}\n");
    auto out = h.Run();
    ASSERT_EQ(out.kind, RunOutcome::Kind::kFailed) << out.error;
    ASSERT_EQ(out.failed_node, "first");
    bool failed_told = false;
    std::set<std::string> started;
    for (const auto& [type, data] : h.sink.events) {
      const std::string node = data.value("node", "");
      if (type == "node.finished" && node == "first") failed_told = true;
      if (type == "node.started" && node != "first") {
        EXPECT_FALSE(failed_told) << "round " << round << ": " << node
                                  << " started after the failure: " << h.sink.AllText();
        started.insert(node);
      }
    }
    for (const std::string node : {"b", "c"}) {
      const std::string marker = dir + "-" + node;
      if (std::filesystem::exists(marker)) {
        EXPECT_EQ(started.count(node), 1u) << node << " ran untold";
        std::filesystem::remove(marker);
      }
    }
  }
}

// A node a failure stops before it goes on is told interrupted when it had begun: one resuming
// a stored wait (launched with the failing node; 20 rounds, as the two race), and one waiting
// out its retry backoff. Each node's history then ends, as `run show` lists it.
TEST(Executor, ANodeStoppedBeforeItGoesOnIsToldInterruptedIfItHadBegun) {
  for (int round = 0; round < 20; ++round) {
    Harness h(
        "name: t\nnodes:\n  first: {kind: fail, message: stop}\n"
        "  wait: {kind: delay, duration: 30s}\n");
    const int64_t began = WallNowMs() - 30'000;  // its deadline passed while the run was away
    h.sink.stored_deadlines["wait"] = began + 30'000;
    h.sink.stored_waits["wait"] = RunSink::StoredWait{1, began};
    auto out = h.Run();
    ASSERT_EQ(out.kind, RunOutcome::Kind::kFailed) << out.error;
    int ends = 0;
    for (const auto& [type, data] : h.sink.events) {
      ends += type == "node.finished" && data.value("node", "") == "wait";
    }
    EXPECT_EQ(ends, 1) << "round " << round << ": " << h.sink.AllText();
  }

  Harness backoff(R"(name: t
nodes:
  flaky: {kind: lua, script: 'error("not yet")', retry: {max_attempts: 3, backoff: 10s}}
  first: {kind: shell, argv: [sh, -c, 'sleep 0.3; exit 1']}
)");
  backoff.options.backoff_scale = 1;
  auto out = backoff.Run();
  ASSERT_EQ(out.kind, RunOutcome::Kind::kFailed) << out.error;
  EXPECT_EQ(out.failed_node, "first");
  std::vector<Json> flaky_ends;
  for (const auto& [type, data] : backoff.sink.events) {
    if (type == "node.finished" && data.value("node", "") == "flaky") flaky_ends.push_back(data);
  }
  ASSERT_EQ(flaky_ends.size(), 1u) << backoff.sink.AllText();
  EXPECT_EQ(flaky_ends[0]["status"], "interrupted");
  EXPECT_EQ(flaky_ends[0]["attempt"], 1);
}

TEST(Executor, NodeTimeoutStopsTheAttempt) {
  Harness h(R"(name: t
nodes:
  slow: {kind: delay, duration: 30s, timeout: 100ms}
)");
  auto start = std::chrono::steady_clock::now();
  auto out = h.Run();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 15s);  // not the 30 s delay
  EXPECT_EQ(out.kind, RunOutcome::Kind::kFailed);
  EXPECT_THAT(out.error, HasSubstr("timed out after 100ms"));
  // Waiting in its own thread (its timeout is shorter than its wait), it still tells its wait.
  const Json* waiting = nullptr;
  for (const auto& [t, d] : h.sink.events) {
    if (t == "node.waiting") waiting = &d;
  }
  ASSERT_NE(waiting, nullptr);
  EXPECT_EQ((*waiting)["deadline_ms"], h.sink.stored_deadlines.at("slow"));
}

TEST(Executor, DelayWaitsOnlyUntilItsStoredDeadline) {
  Harness h(R"(name: t
nodes:
  wait: {kind: delay, duration: 30s}
)");
  // A run resumed after a crash: the deadline stored by the first execution has just passed.
  const int64_t deadline = WallNowMs() - 1;
  h.sink.stored_deadlines["wait"] = deadline;
  auto out = h.Run();
  ASSERT_EQ(out.kind, RunOutcome::Kind::kSucceeded) << out.error;
  ASSERT_EQ(h.sink.deadline_calls.size(), 1u);
  EXPECT_EQ(h.sink.deadline_calls[0], (std::pair<std::string, int>{"wait", 1}));
  const Json& step = h.sink.Step("wait")->output;
  EXPECT_EQ(step["deadline_ms"], deadline);
  // Counted from when the first execution began the delay, 30 s before the deadline.
  EXPECT_GT(step["waited_ms"].get<int64_t>(), 30000);
}

// A run left with only a wait longer than give_back_waits_over ends as kWaiting at its
// deadline, with the deadline stored and nothing saved for the node; at or under it, the
// executor waits itself and the run goes on.
TEST(Executor, ARunLeftWithOnlyALongWaitEndsAsWaiting) {
  const std::string yaml = R"(name: t
nodes:
  first: {kind: lua, script: return 1}
  wait: {kind: delay, needs: [first], duration: 400ms}
  after: {kind: lua, needs: [wait], script: return 2}
)";
  {
    Harness h(yaml);
    h.options.give_back_waits_over = 100ms;
    const int64_t before = WallNowMs();
    auto out = h.Run();
    ASSERT_EQ(out.kind, RunOutcome::Kind::kWaiting) << out.error;
    EXPECT_EQ(out.resume_at_ms, h.sink.stored_deadlines.at("wait"));
    EXPECT_GE(out.resume_at_ms, before + 400);
    EXPECT_EQ(h.sink.Order(), (std::vector<std::string>{"first"}));
    std::vector<std::string> types;
    for (const auto& [t, d] : h.sink.events) types.push_back(t);
    EXPECT_EQ(types.back(), "node.waiting");
    EXPECT_EQ(h.sink.events.back().second["deadline_ms"], out.resume_at_ms);
    // Resumed from its checkpoint after the deadline, it goes on at once.
    std::map<std::string, StepRecord> cp{{"first", StepRecord{StepStatus::kSucceeded, 1, "", 1}}};
    while (WallNowMs() < out.resume_at_ms) std::this_thread::sleep_for(10ms);
    auto resumed = h.Run(cp);
    ASSERT_EQ(resumed.kind, RunOutcome::Kind::kSucceeded) << resumed.error;
    EXPECT_EQ(resumed.outputs["wait"]["deadline_ms"], out.resume_at_ms);
  }
  {
    // The whole wait is no more than give_back_waits_over: the executor waits itself.
    Harness h(yaml);
    h.options.give_back_waits_over = 400ms;
    auto out = h.Run();
    ASSERT_EQ(out.kind, RunOutcome::Kind::kSucceeded) << out.error;
    EXPECT_EQ(h.sink.Order(), (std::vector<std::string>{"first", "wait", "after"}));
    EXPECT_GE(h.sink.Step("wait")->output["waited_ms"].get<int64_t>(), 400);
    // Waited on the coordinator's clock: one node.started for the delay, not one per wake.
    int started = 0;
    for (const auto& [t, d] : h.sink.events) started += t == "node.started" && d["node"] == "wait";
    EXPECT_EQ(started, 1);
  }
}

// A task node does not block while its task runs: it is looked at again at the time the sink
// names, and meanwhile the run's other nodes go on. Told once as waiting (with its task), and
// started once.
TEST(Executor, ATaskNodeIsLookedAtAgainUntilItsTaskEnds) {
  Harness h(R"(name: t
nodes:
  child: {kind: task, task: {kind: k}}
  beside: {kind: lua, script: return 7}
)");
  std::atomic<int> looks{0};
  h.sink.on_check = [&](const TaskNodeRequest&) -> Result<TaskNodeProgress> {
    // Ends at the 4th look, or later once `beside` is saved (a loaded machine may take longer
    // than three looks to run it); a `beside` waiting behind the task would never be saved,
    // and the 500th look ends the task regardless.
    const int n = ++looks;
    if (n < 4 || (!h.sink.Step("beside") && n < 500)) {
      return TaskNodeProgress{"T1", std::nullopt, WallNowMs() + 20};
    }
    return TaskNodeProgress{"T1", Json("done"), 0};
  };
  auto out = h.Run();
  ASSERT_EQ(out.kind, RunOutcome::Kind::kSucceeded) << out.error;
  EXPECT_GE(looks.load(), 4);
  EXPECT_LT(looks.load(), 500);
  EXPECT_EQ(out.outputs["child"], "done");
  EXPECT_EQ(h.sink.Order().front(), "beside");  // it did not wait behind the task
  int started = 0;
  std::vector<Json> waiting;
  for (const auto& [t, d] : h.sink.events) {
    if (d.value("node", "") != "child") continue;
    started += t == "node.started";
    if (t == "node.waiting") waiting.push_back(d);
  }
  EXPECT_EQ(started, 1);
  ASSERT_EQ(waiting.size(), 1u);
  EXPECT_EQ(waiting[0]["task"], "T1");
  EXPECT_FALSE(waiting[0].contains("deadline_ms"));
}

// A run left waiting only for a task it has waited for give_back_waits_over ends as kWaiting,
// naming the task, to run again task_wait_recheck later at the latest (the task's end wakes it
// sooner). Under give_back_waits_over it keeps looking itself.
TEST(Executor, ARunLeftWaitingLongForATaskEndsAsWaiting) {
  const std::string yaml = R"(name: t
nodes:
  first: {kind: lua, script: return 1}
  child: {kind: task, needs: [first], task: {kind: k}}
)";
  Harness h(yaml);
  h.options.give_back_waits_over = 150ms;
  h.options.task_wait_recheck = 30s;
  std::atomic<int> looks{0};
  h.sink.on_check = [&](const TaskNodeRequest&) -> Result<TaskNodeProgress> {
    ++looks;
    return TaskNodeProgress{"T1", std::nullopt, WallNowMs() + 10};
  };
  const int64_t before = WallNowMs();
  auto out = h.Run();
  const int64_t after = WallNowMs();
  ASSERT_EQ(out.kind, RunOutcome::Kind::kWaiting) << out.error;
  ASSERT_EQ(out.waiting_tasks.size(), 1u);
  EXPECT_EQ(out.waiting_tasks[0].task_id, "T1");
  EXPECT_EQ(out.waiting_tasks[0].node_id, "child");
  EXPECT_EQ(out.waiting_tasks[0].attempt, 1);
  EXPECT_GE(out.waiting_tasks[0].began_ms, before);
  EXPECT_GE(after - before, 150);  // it looked for give_back_waits_over before giving back
  EXPECT_GT(looks.load(), 1);
  EXPECT_GE(out.resume_at_ms, before + 150 + 30000);
  EXPECT_LE(out.resume_at_ms, after + 30000);
  EXPECT_EQ(h.sink.Order(), (std::vector<std::string>{"first"}));

  // Given back beside a delay: it runs again at the nearer of the two.
  Harness both(R"(name: t
nodes:
  child: {kind: task, task: {kind: k}}
  pause: {kind: delay, duration: 10s}
)");
  both.options.give_back_waits_over = 100ms;
  both.options.task_wait_recheck = 60s;
  both.sink.on_check = h.sink.on_check;
  auto waiting = both.Run();
  ASSERT_EQ(waiting.kind, RunOutcome::Kind::kWaiting) << waiting.error;
  EXPECT_EQ(waiting.resume_at_ms, both.sink.stored_deadlines.at("pause"));
  ASSERT_EQ(waiting.waiting_tasks.size(), 1u);
  EXPECT_EQ(waiting.waiting_tasks[0].task_id, "T1");

  // The recheck grows with the task's age, from task_wait_recheck to 20 times it: a task 100 s
  // old is looked at again in 100 s, one a day old in 10 minutes (when no wake comes sooner).
  for (const auto& [age, expected] :
       std::vector<std::pair<int64_t, int64_t>>{{100'000, 100'000}, {86'400'000, 600'000}}) {
    Harness aged(yaml);
    aged.options.give_back_waits_over = 50ms;
    aged.options.task_wait_recheck = 30s;
    const int64_t created = WallNowMs() - age;
    aged.sink.on_check = [created](const TaskNodeRequest&) -> Result<TaskNodeProgress> {
      return TaskNodeProgress{"T1", std::nullopt, WallNowMs() + 10, created};
    };
    const int64_t from = WallNowMs();
    auto later = aged.Run();
    const int64_t to = WallNowMs();
    ASSERT_EQ(later.kind, RunOutcome::Kind::kWaiting) << later.error;
    EXPECT_GE(later.resume_at_ms, from + expected) << "age " << age;
    EXPECT_LE(later.resume_at_ms, to + expected + (to - from)) << "age " << age;
  }
}

// Looking again at its task does not restart a task node's own timeout.
TEST(Executor, ATaskNodesOwnTimeoutCountsAcrossItsLooks) {
  Harness h(R"(name: t
nodes:
  child: {kind: task, timeout: 300ms, task: {kind: k}}
)");
  h.options.give_back_waits_over = std::chrono::hours(1);  // it looks in its slot all along
  h.sink.on_check = [&](const TaskNodeRequest&) -> Result<TaskNodeProgress> {
    return TaskNodeProgress{"T1", std::nullopt, WallNowMs() + 20};
  };
  const int64_t before = WallNowMs();
  auto out = h.Run();
  ASSERT_EQ(out.kind, RunOutcome::Kind::kFailed) << out.error;
  EXPECT_THAT(out.error, HasSubstr("timed out after 300ms"));
  EXPECT_GE(WallNowMs() - before, 300);
  EXPECT_LT(h.sink.task_calls["child"], 100);  // looked every 20 ms, not for ever
}

// A task node with a timeout of its own gives the slot back as any task node does (holding it
// could starve its own task), to come back by its timeout at the latest; resumed after that, its
// attempt times out at once, counted from when it began, not from the resume.
TEST(Executor, ATaskNodeWithATimeoutGivesItsSlotBackUntilItsTimeout) {
  const std::string yaml = R"(name: t
nodes:
  child: {kind: task, timeout: 10s, task: {kind: k}}
)";
  Harness h(yaml);
  h.options.give_back_waits_over = 50ms;
  h.options.task_wait_recheck = 30s;
  h.sink.on_check = [&](const TaskNodeRequest&) -> Result<TaskNodeProgress> {
    return TaskNodeProgress{"T1", std::nullopt, WallNowMs() + 10};
  };
  const int64_t before = WallNowMs();
  auto out = h.Run();
  ASSERT_EQ(out.kind, RunOutcome::Kind::kWaiting) << out.error;
  ASSERT_EQ(out.waiting_tasks.size(), 1u);
  const int64_t began = out.waiting_tasks[0].began_ms;
  EXPECT_GE(began, before);
  EXPECT_EQ(out.resume_at_ms, began + 10'000) << "its timeout, before the 30 s recheck";

  Harness later(yaml);
  later.sink.on_check = h.sink.on_check;
  later.sink.stored_waits["child"] = RunSink::StoredWait{1, WallNowMs() - 10'001};
  auto resumed = later.Run();
  ASSERT_EQ(resumed.kind, RunOutcome::Kind::kFailed) << resumed.error;
  EXPECT_THAT(resumed.error, HasSubstr("timed out"));
  EXPECT_EQ(later.sink.task_calls["child"], 1) << "one look, then timed out";

  // Its task ended before the run could look (no slot for it in time): that end counts.
  Harness ended(yaml);
  ended.sink.on_check = [](const TaskNodeRequest&) -> Result<TaskNodeProgress> {
    return TaskNodeProgress{"T1", Json("done"), 0};
  };
  ended.sink.stored_waits["child"] = RunSink::StoredWait{1, WallNowMs() - 10'001};
  auto done = ended.Run();
  ASSERT_EQ(done.kind, RunOutcome::Kind::kSucceeded) << done.error;
  EXPECT_EQ(done.outputs["child"], "done");
}

// Told that work waits for its slot (its own task, prefetched behind it), a run left with only
// waits gives the slot back after a short look (slot_wanted_give_back) instead of after
// give_back_waits_over; a delay too, even one it would otherwise wait out in its slot. Not told,
// it keeps looking in its slot. A change of mind while it sleeps is seen within that look.
TEST(Executor, WorkWaitingForTheSlotMakesARunGiveItBackSooner) {
  std::atomic<bool> wanted{true};
  const auto looking = [](const TaskNodeRequest&) -> Result<TaskNodeProgress> {
    return TaskNodeProgress{"T1", std::nullopt, WallNowMs() + 20};
  };
  Harness task(R"(name: t
nodes:
  child: {kind: task, task: {kind: k}}
)");
  task.options.give_back_waits_over = 8s;
  task.options.slot_wanted_give_back = 100ms;
  task.ctx.slot_wanted = [&] { return wanted.load(); };
  task.sink.on_check = looking;
  auto out = task.Run();
  ASSERT_EQ(out.kind, RunOutcome::Kind::kWaiting) << out.error;
  ASSERT_EQ(out.waiting_tasks.size(), 1u);
  const int64_t looked = WallNowMs() - out.waiting_tasks[0].began_ms;
  EXPECT_GE(looked, 100);
  EXPECT_LT(looked, 8000) << "it held the slot for give_back_waits_over";

  const std::string delay = R"(name: d
nodes:
  pause: {kind: delay, duration: 3s}
)";
  Harness held(delay);  // nobody wants the slot: the 3 s delay is waited out in it
  held.options.give_back_waits_over = 5s;
  held.ctx.slot_wanted = [] { return false; };
  const int64_t before = WallNowMs();
  ASSERT_EQ(held.Run().kind, RunOutcome::Kind::kSucceeded);
  EXPECT_GE(WallNowMs() - before, 3000);

  Harness given(delay);  // wanted a moment into the delay: given back then, not after 3 s
  given.options.give_back_waits_over = 5s;
  given.options.slot_wanted_give_back = 100ms;
  wanted = false;
  given.ctx.slot_wanted = [&] { return wanted.load(); };
  std::thread want([&] {
    std::this_thread::sleep_for(300ms);  // the run is in its delay by then (it starts at once)
    wanted = true;
  });
  const int64_t from = WallNowMs();
  auto released = given.Run();
  want.join();
  ASSERT_EQ(released.kind, RunOutcome::Kind::kWaiting) << released.error;
  EXPECT_LT(WallNowMs() - from, 3000) << "it held the slot for the whole delay";
  EXPECT_EQ(released.resume_at_ms, given.sink.stored_deadlines.at("pause"));
}

// A delay beside a longer node: the delay's dependent starts when the delay ends, not when the
// longer node does. `long` succeeds only once `after` has made its file, so the run succeeding
// is the proof: had `after` waited for `long`, `long` would have failed after its 20 s. Which of
// the two is saved first is not: `long` sees the file within 10 ms of `after` making it, and
// may be saved before `after` on a loaded machine.
TEST(Executor, AWaitEndsOnTimeBesideARunningNode) {
  const std::string dir = ::testing::TempDir() + "/beside-" + std::to_string(WallNowMs());
  const std::string yaml =
      "name: t\nnodes:\n"
      "  long: {kind: shell, argv: [sh, -c, 'i=0; while [ ! -e " +
      dir + " ] && [ $i -lt 2000 ]; do sleep 0.01; i=$((i+1)); done; test -e " + dir +
      "']}\n"
      "  wait: {kind: delay, duration: 200ms}\n"
      "  after: {kind: shell, needs: [wait], argv: [touch, " +
      dir + "]}\n";
  Harness h(yaml);
  h.options.give_back_waits_over = 100ms;  // never reached: `long` runs meanwhile
  auto out = h.Run();
  ASSERT_EQ(out.kind, RunOutcome::Kind::kSucceeded) << out.error;
  const auto order = h.sink.Order();
  ASSERT_EQ(order.size(), 3u);
  EXPECT_EQ(order[0], "wait");
  EXPECT_EQ(h.sink.Step("long")->status, StepStatus::kSucceeded);
  std::remove(dir.c_str());
}

// The same when the longer node is the next link of a chain, which would otherwise run on the
// coordinator's own thread (the lone node running) and keep it from starting the delay's
// dependent until it ends.
TEST(Executor, AWaitEndsOnTimeBesideAChainsNextLink) {
  const std::string dir = ::testing::TempDir() + "/chain-" + std::to_string(WallNowMs());
  const std::string yaml =
      "name: t\nnodes:\n"
      "  first: {kind: shell, argv: [sh, -c, 'sleep 0.05']}\n"
      "  long: {kind: shell, needs: [first], argv: [sh, -c, 'i=0; while [ ! -e " +
      dir + " ] && [ $i -lt 2000 ]; do sleep 0.01; i=$((i+1)); done; test -e " + dir +
      "']}\n"
      "  wait: {kind: delay, duration: 300ms}\n"
      "  after: {kind: shell, needs: [wait], argv: [touch, " +
      dir + "]}\n";
  Harness h(yaml);
  auto out = h.Run();
  ASSERT_EQ(out.kind, RunOutcome::Kind::kSucceeded) << out.error;
  std::remove(dir.c_str());
}

// A wait an earlier execution stored goes on in the attempt it waits in (a first attempt whose
// deadline could not be stored, then a second that stored it), and its duration counts from
// when it began: the deadline is not drawn again.
TEST(Executor, AStoredWaitGoesOnInItsAttempt) {
  Harness h(R"(name: t
nodes:
  wait: {kind: delay, duration: 30s, retry: {max_attempts: 3}}
)");
  const int64_t began = WallNowMs() - 30'000;
  h.sink.stored_deadlines["wait"] = began + 30'000;
  h.sink.stored_waits["wait"] = RunSink::StoredWait{2, began};
  auto out = h.Run();
  ASSERT_EQ(out.kind, RunOutcome::Kind::kSucceeded) << out.error;
  ASSERT_EQ(h.sink.deadline_calls.size(), 1u);
  EXPECT_EQ(h.sink.deadline_calls[0], (std::pair<std::string, int>{"wait", 2}));
  EXPECT_EQ(h.sink.Step("wait")->attempt, 2);
  for (const auto& [type, data] : h.sink.events) {
    if (type == "node.finished") {
      EXPECT_GE(data["duration_ms"].get<int64_t>(), 30'000) << data;
    }
  }
}

// A task node's wait that an earlier execution stored (the run gave its slot back in attempt 2)
// goes on in that attempt, under that attempt's key, its duration counted from when it began.
TEST(Executor, AStoredTaskWaitGoesOnInItsAttempt) {
  Harness h(R"(name: t
nodes:
  child: {kind: task, retry: {max_attempts: 3}, task: {kind: k}}
)");
  const int64_t began = WallNowMs() - 20'000;
  h.sink.stored_waits["child"] = RunSink::StoredWait{2, began};
  auto out = h.Run();
  ASSERT_EQ(out.kind, RunOutcome::Kind::kSucceeded) << out.error;
  ASSERT_EQ(h.sink.requests.size(), 1u);
  EXPECT_EQ(h.sink.requests[0].unique_key, "ferry.run:RUN1:child:2");
  EXPECT_EQ(h.sink.requests[0].attempt, 2);
  EXPECT_EQ(h.sink.Step("child")->attempt, 2);
  for (const auto& [type, data] : h.sink.events) {
    // It goes on: not told as started or waiting again.
    EXPECT_NE(type, "node.started") << data;
    EXPECT_NE(type, "node.waiting") << data;
    if (type == "node.finished") {
      EXPECT_GE(data["duration_ms"].get<int64_t>(), 20'000) << data;
    }
  }
}

// A delay with a timeout longer than its wait, resumed late (a backlog held its run's task past
// both its deadline and its timeout counted from when it began): it ends at once, not timed out.
TEST(Executor, ADelayResumedLateIsNotTimedOutByTheTimeItWaited) {
  Harness h(R"(name: t
nodes:
  wait: {kind: delay, duration: 30s, timeout: 40s}
)");
  const int64_t began = WallNowMs() - 60'000;
  h.sink.stored_deadlines["wait"] = began + 30'000;
  h.sink.stored_waits["wait"] = RunSink::StoredWait{1, began};
  auto out = h.Run();
  ASSERT_EQ(out.kind, RunOutcome::Kind::kSucceeded) << out.error;
  EXPECT_EQ(h.sink.Step("wait")->attempt, 1);
}

// A wait beside a node that ends first: the run gives back only once that node is saved.
TEST(Executor, ARunGivesItsWaitBackOnlyOnceItsOtherNodesEnded) {
  Harness h(R"(name: t
nodes:
  quick: {kind: shell, argv: [sh, -c, 'sleep 0.2']}
  wait: {kind: delay, duration: 30s}
)");
  h.options.give_back_waits_over = 1s;
  auto out = h.Run();
  ASSERT_EQ(out.kind, RunOutcome::Kind::kWaiting) << out.error;
  EXPECT_EQ(h.sink.Order(), (std::vector<std::string>{"quick"}));
}

// A stop while the executor waits itself ends the run as cancelled at once, the wait told as
// interrupted and nothing saved for it.
TEST(Executor, AStopEndsAWaitTheExecutorHolds) {
  Harness h(R"(name: t
nodes:
  wait: {kind: delay, duration: 30s}
)");
  std::stop_source stop;
  std::jthread canceller([&] {
    for (int i = 0; i < 1000; ++i) {
      {
        std::lock_guard lock(h.sink.mu);
        if (!h.sink.events.empty() && h.sink.events.back().first == "node.waiting") break;
      }
      std::this_thread::sleep_for(5ms);
    }
    stop.request_stop();
  });
  auto out = h.Run({}, stop.get_token());
  EXPECT_EQ(out.kind, RunOutcome::Kind::kCancelled);
  EXPECT_EQ(h.sink.Step("wait"), nullptr);
  ASSERT_FALSE(h.sink.events.empty());
  EXPECT_EQ(h.sink.events.back().first, "node.finished");
  EXPECT_EQ(h.sink.events.back().second["status"], "interrupted");
}

// A deadline the store cannot keep is the store's outage, not the delay's failure: the run
// aborts (its task runs it again, as after a checkpoint not saved) without spending the node's
// attempts, and the node is told interrupted.
TEST(Executor, DelayWhoseDeadlineCannotBeStoredAbortsTheRun) {
  Harness h(R"(name: t
nodes:
  wait: {kind: delay, duration: 30s, retry: {max_attempts: 2}}
)");
  h.sink.fail_deadlines = true;
  auto out = h.Run();
  EXPECT_EQ(out.kind, RunOutcome::Kind::kAborted);
  EXPECT_THAT(out.error, HasSubstr("node 'wait' could not record its progress"));
  EXPECT_THAT(out.error, HasSubstr("store down"));
  EXPECT_EQ(h.sink.deadline_calls.size(), 1u);  // no second attempt
  EXPECT_EQ(h.sink.Step("wait"), nullptr);      // nothing recorded as its end
  ASSERT_FALSE(h.sink.events.empty());
  EXPECT_EQ(h.sink.events.back().first, "node.finished");
  EXPECT_EQ(h.sink.events.back().second["status"], "interrupted");
}

TEST(Executor, LuaTimeoutInterruptsALoop) {
  Harness h(R"(name: t
nodes:
  spin: {kind: lua, timeout: 100ms, script: "while true do end"}
)");
  h.options.lua.max_instructions = UINT64_MAX;
  auto out = h.Run();
  EXPECT_EQ(out.kind, RunOutcome::Kind::kFailed);
  EXPECT_THAT(out.error, HasSubstr("timed out"));
}

TEST(Executor, CheckpointedNodesNeverRunAgain) {
  Harness h(R"(name: resume
nodes:
  a: {kind: task, task: {kind: k}}
  b: {kind: task, needs: [a], task: {kind: k, payload: {from_a: "{{ nodes.a.output.v }}"}}}
  c: {kind: task, needs: [b], task: {kind: k}}
)");
  std::map<std::string, StepRecord> checkpoints;
  checkpoints["a"] = StepRecord{StepStatus::kSucceeded, Json{{"v", 41}}, "", 1};
  auto out = h.Run(checkpoints);
  ASSERT_EQ(out.kind, RunOutcome::Kind::kSucceeded) << out.error;
  EXPECT_EQ(h.sink.task_calls.count("a"), 0u);
  EXPECT_EQ(h.sink.task_calls["b"], 1);
  EXPECT_EQ(h.sink.task_calls["c"], 1);
  EXPECT_EQ(h.sink.requests[0].payload, (Json{{"from_a", 41}}));
  EXPECT_EQ(h.sink.Order(), (std::vector<std::string>{"b", "c"}));  // a is not saved again
  EXPECT_EQ(out.outputs["a"], (Json{{"v", 41}}));
}

// Only the node after which nothing runs comes through SaveLastStep (a sink may hold it for the
// run's end): the last of a chain, a resumed run's last, a one-node run's failure; never a node
// that fails while others are left, nor one of two parallel nodes but the later.
TEST(Executor, OnlyTheRunsLastNodeIsSavedAsTheLast) {
  Harness chain(
      "name: c\nnodes:\n  a: {kind: lua, script: return 1}\n"
      "  b: {kind: lua, needs: [a], script: return 2}\n");
  ASSERT_EQ(chain.Run().kind, RunOutcome::Kind::kSucceeded);
  EXPECT_EQ(chain.sink.last_steps, std::vector<std::string>{"b"});
  EXPECT_EQ(chain.sink.Order(), (std::vector<std::string>{"a", "b"}));

  Harness resumed(
      "name: c\nnodes:\n  a: {kind: lua, script: return 1}\n"
      "  b: {kind: lua, needs: [a], script: return 2}\n");
  std::map<std::string, StepRecord> cp{{"a", StepRecord{StepStatus::kSucceeded, Json(1), "", 1}}};
  ASSERT_EQ(resumed.Run(cp).kind, RunOutcome::Kind::kSucceeded);
  EXPECT_EQ(resumed.sink.last_steps, std::vector<std::string>{"b"});

  Harness one("name: o\nnodes:\n  only: {kind: fail, message: boom}\n");
  ASSERT_EQ(one.Run().kind, RunOutcome::Kind::kFailed);
  EXPECT_EQ(one.sink.last_steps, std::vector<std::string>{"only"});

  Harness early(
      "name: e\nnodes:\n  a: {kind: fail, message: boom}\n"
      "  b: {kind: lua, needs: [a], script: return 2}\n");
  ASSERT_EQ(early.Run().kind, RunOutcome::Kind::kFailed);
  EXPECT_TRUE(early.sink.last_steps.empty()) << "b was left: a was not the last node";
  EXPECT_EQ(early.sink.Order(), std::vector<std::string>{"a"});

  Harness parallel(
      "name: p\nnodes:\n  a: {kind: lua, script: return 1}\n"
      "  b: {kind: lua, script: return 2}\n");
  ASSERT_EQ(parallel.Run().kind, RunOutcome::Kind::kSucceeded);
  ASSERT_EQ(parallel.sink.last_steps.size(), 1u);
  EXPECT_EQ(parallel.sink.last_steps[0], parallel.sink.Order().back());
}

TEST(Executor, FailedCheckpointEndsTheRun) {
  Harness h(
      "name: x\nnodes:\n  a: {kind: task, task: {kind: k}}\n  b: {kind: task, needs: [a], task: "
      "{kind: k}}\n");
  std::map<std::string, StepRecord> cp{{"a", StepRecord{StepStatus::kFailed, nullptr, "broke", 2}}};
  auto out = h.Run(cp);
  EXPECT_EQ(out.kind, RunOutcome::Kind::kFailed);
  EXPECT_EQ(out.failed_node, "a");
  EXPECT_EQ(out.error, "broke");
  EXPECT_TRUE(h.sink.task_calls.empty());
}

TEST(Executor, CancelDuringADelayLeavesItUnsaved) {
  Harness h(R"(name: c
nodes:
  first: {kind: lua, script: return 1}
  wait: {kind: delay, needs: [first], duration: 30s}
)");
  std::stop_source stop;
  std::jthread canceller([&] {
    for (int i = 0; i < 500 && h.sink.Step("first") == nullptr; ++i)
      std::this_thread::sleep_for(5ms);
    std::this_thread::sleep_for(50ms);
    stop.request_stop();
  });
  auto start = std::chrono::steady_clock::now();
  auto out = h.Run({}, stop.get_token());
  EXPECT_LT(std::chrono::steady_clock::now() - start, 15s);  // not the 30 s delay
  EXPECT_EQ(out.kind, RunOutcome::Kind::kCancelled);
  EXPECT_NE(h.sink.Step("first"), nullptr);
  EXPECT_EQ(h.sink.Step("wait"), nullptr);
}

TEST(Executor, FailedSaveAbortsTheRun) {
  Harness h(
      "name: x\nnodes:\n  a: {kind: lua, script: return 1}\n  b: {kind: lua, needs: [a], script: "
      "return 2}\n");
  h.sink.fail_saves = true;
  auto out = h.Run();
  EXPECT_EQ(out.kind, RunOutcome::Kind::kAborted);
  EXPECT_THAT(out.error, HasSubstr("stale epoch"));
}

TEST(Executor, ShellArgvIsNeverInterpretedByAShell) {
  Harness h(R"(name: sh
inputs: {evil: {type: string}}
nodes:
  echo:
    kind: shell
    argv: [echo, "{{ inputs.evil }}"]
  json:
    kind: shell
    argv: [printf, '{"a": %s}', "{{ inputs.evil | length }}"]
  env:
    kind: shell
    argv: [sh, -c, 'printf "%s" "$GREETING"']
    env: {GREETING: "hi {{ inputs.evil | length }}"}
)");
  h.ctx.inputs = Json{{"evil", "x; rm -rf / $(id)"}};
  auto out = h.Run();
  ASSERT_EQ(out.kind, RunOutcome::Kind::kSucceeded) << out.error;
  EXPECT_EQ(out.outputs["echo"]["stdout"], Json("x; rm -rf / $(id)\n"));
  EXPECT_EQ(out.outputs["echo"]["exit_code"], Json(0));
  EXPECT_EQ(out.outputs["json"]["json"], (Json{{"a", 17}}));
  EXPECT_EQ(out.outputs["env"]["stdout"], Json("hi 17"));
}

TEST(Executor, ShellNonZeroExitFailsWithItsOutput) {
  Harness h(R"(name: sh
nodes:
  bad: {kind: shell, argv: [sh, -c, "echo oops >&2; exit 3"]}
)");
  auto out = h.Run();
  EXPECT_EQ(out.kind, RunOutcome::Kind::kFailed);
  EXPECT_THAT(out.error, HasSubstr("exit code 3"));
  EXPECT_THAT(out.error, HasSubstr("oops"));
  EXPECT_EQ(h.sink.Step("bad")->output["exit_code"], Json(3));
}

// argv has two elements; the first one rendered empty, and the message says so.
TEST(Executor, AProgramThatRendersEmptyIsNamed) {
  Harness h(R"(name: sh
inputs: {prog: string}
nodes:
  a: {kind: shell, argv: ["{{ inputs.prog }}", x], retry: 3}
)");
  h.ctx.inputs = Json{{"prog", ""}};
  auto out = h.Run();
  EXPECT_EQ(out.kind, RunOutcome::Kind::kFailed);
  EXPECT_THAT(out.error, HasSubstr("argv[0] ('{{ inputs.prog }}') rendered empty"));
  EXPECT_EQ(h.sink.Step("a")->attempt, 1);  // the same inputs would render it empty again
  h.ctx.inputs = Json{{"prog", "true"}};
  h.sink.steps.clear();
  EXPECT_EQ(h.Run().kind, RunOutcome::Kind::kSucceeded);
}

TEST(Executor, ShellDoesNotInheritTheWorkersSecrets) {
  ::setenv("FERRY_SECRET_LEAKY", "leaked-value", 1);
  Harness h("name: sh\nnodes:\n  env: {kind: shell, argv: [env]}\n");
  auto out = h.Run();
  ASSERT_EQ(out.kind, RunOutcome::Kind::kSucceeded) << out.error;
  EXPECT_THAT(out.outputs["env"]["stdout"].get<std::string>(),
              ::testing::Not(HasSubstr("leaked-value")));
}

TEST(Executor, SecretsAreRedactedBeforeTheSink) {
  Harness h(R"(name: sec
nodes:
  show:
    kind: shell
    argv: [echo, "token={{ secrets.API_TOKEN }}"]
  lua:
    kind: lua
    needs: [show]
    args: {t: "{{ secrets.API_TOKEN }}"}
    script: |
      log("the token is " .. args.t)
      return { again = args.t, prev = nodes.show.output.stdout }
  boom:
    kind: fail
    needs: [lua]
    message: "failed with {{ secrets.API_TOKEN }}"
secrets: [API_TOKEN]
)");
  MapSecretResolver secrets(std::map<std::string, std::string>{{"API_TOKEN", "tok-123456"}});
  h.options.secrets = &secrets;
  auto out = h.Run();
  EXPECT_EQ(out.kind, RunOutcome::Kind::kFailed);
  EXPECT_EQ(out.error, "failed with ***");
  EXPECT_EQ(h.sink.Step("show")->output["stdout"], Json("token=***\n"));
  EXPECT_EQ(h.sink.Step("lua")->output["again"], Json("***"));
  std::string all = h.sink.AllText();
  EXPECT_EQ(all.find("tok-123456"), std::string::npos) << all;
  EXPECT_NE(all.find("the token is ***"), std::string::npos);
}

TEST(Executor, MissingSecretFailsTheNode) {
  Harness h(
      "name: s\nsecrets: [NOPE]\nnodes:\n  a: {kind: shell, argv: [echo, '{{ secrets.NOPE }}'], "
      "retry: 3}\n");
  auto out = h.Run();
  EXPECT_EQ(out.kind, RunOutcome::Kind::kFailed);
  EXPECT_THAT(out.error, HasSubstr("secret 'NOPE' is not set"));
  EXPECT_EQ(h.sink.Step("a")->attempt, 1);  // template errors are not retried
}

TEST(Executor, EventsDescribeTheRun) {
  Harness h("name: e\nnodes:\n  a: {kind: lua, script: \"log('x') return 1\"}\n");
  auto out = h.Run();
  ASSERT_EQ(out.kind, RunOutcome::Kind::kSucceeded);
  std::vector<std::string> types;
  for (const auto& [t, d] : h.sink.events) types.push_back(t);
  EXPECT_EQ(types, (std::vector<std::string>{"node.started", "node.log", "node.finished"}));
  EXPECT_EQ(h.sink.events[2].second["status"], Json("succeeded"));
}

// A node's log is bounded in lines and in bytes, and a long line is cut saying by how much:
// every event is stored, streamed and paged whole, so one node must not write a gigabyte.
TEST(Executor, LogLinesAreCutAndTheirTotalIsBounded) {
  Harness h(R"(name: logs
nodes:
  a:
    kind: lua
    script: |
      for i = 1, 10 do log(string.rep("x", 25)) end
      return 1
)");
  h.options.max_log_line_bytes = 10;
  h.options.max_log_bytes_per_node = 100;  // the cut lines are 34 bytes: two fit, not three
  auto out = h.Run();
  ASSERT_EQ(out.kind, RunOutcome::Kind::kSucceeded) << out.error;
  std::vector<std::string> logs;
  for (const auto& [type, data] : h.sink.events) {
    if (type == "node.log") logs.push_back(data["message"]);
  }
  ASSERT_EQ(logs.size(), 3u) << h.sink.AllText();
  EXPECT_EQ(logs[0], "xxxxxxxxxx ... (15 more bytes cut)");
  EXPECT_EQ(logs[1], logs[0]);
  EXPECT_EQ(logs[2], "(further log lines dropped)");
}

// A shell line far past the process's line limit is one node.log event, whose count covers the
// bytes the process never kept (docs/workflows.md: a line over 16 KiB is cut, saying by how much).
TEST(Executor, AShellLineOfAnyLengthIsOneLogEventCountingAllItsBytes) {
  Harness h(R"(name: long
nodes:
  a:
    kind: shell
    argv: [sh, -c, "head -c 200000 /dev/zero | tr '\\0' x; echo; echo after"]
)");
  auto out = h.Run();
  ASSERT_EQ(out.kind, RunOutcome::Kind::kSucceeded) << out.error;
  std::vector<std::string> logs;
  for (const auto& [type, data] : h.sink.events) {
    if (type == "node.log") logs.push_back(data["message"]);
  }
  ASSERT_EQ(logs.size(), 2u) << h.sink.AllText().substr(0, 2000);
  EXPECT_EQ(logs[0], std::string(16384, 'x') + " ... (183616 more bytes cut)");
  EXPECT_EQ(logs[1], "after");
}

// A lua node's args follow the template rule a task's payload does (docs/workflows.md): a string
// that is one whole `{{ expr }}` passes the value itself, a list stays a list, a YAML number is a
// number, and text around a template stays text.
TEST(Executor, LuaArgsPassValuesNotTheirText) {
  Harness h(R"(name: args
inputs: {arr: {type: array, default: [1, 2]}}
nodes:
  a:
    kind: lua
    script: return { list = {5, 6, 7} }
  b:
    kind: lua
    needs: [a]
    args:
      list: "{{ nodes.a.output.list }}"
      arr: "{{ inputs.arr }}"
      n: "{{ 42 }}"
      plain: 7
      quoted: "7"
      nested: {xs: [1, "{{ nodes.a.output.list[0] }}"]}
      text: "first {{ nodes.a.output.list[0] }}"
    script: |
      return { list = type(args.list), len = #args.list, arr = #args.arr, n = args.n + 0,
               n_type = math.type(args.n), plain = type(args.plain), quoted = type(args.quoted),
               nested = args.nested.xs[2], text = args.text }
)");
  h.ctx.inputs = Json{{"arr", {1, 2}}};
  auto out = h.Run();
  ASSERT_EQ(out.kind, RunOutcome::Kind::kSucceeded) << out.error;
  EXPECT_EQ(out.outputs["b"], Json::parse(R"({"list": "table", "len": 3, "arr": 2, "n": 42,
      "n_type": "integer", "plain": "number", "quoted": "string", "nested": 5,
      "text": "first 5"})"));
}

TEST(Executor, RunAndTriggerAreVisibleToTemplates) {
  Harness h(R"(name: ctx
nodes:
  a: {kind: task, task: {kind: k, payload: {run: "{{ run.id }}", by: "{{ run.triggered_by }}", body: "{{ trigger.body }}"}}}
)");
  h.ctx.trigger = Json{{"body", {{"x", 1}}}};
  auto out = h.Run();
  ASSERT_EQ(out.kind, RunOutcome::Kind::kSucceeded);
  EXPECT_EQ(h.sink.requests[0].payload,
            Json::parse(R"({"run": "RUN1", "by": "api", "body": {"x": 1}})"));
}

}  // namespace
}  // namespace ferry::engine
