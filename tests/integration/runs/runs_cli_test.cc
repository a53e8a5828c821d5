// `ferry workflow ...`, `ferry run ...` and `ferry worker start` as real processes: apply,
// validation errors, kill -9 of a worker during a delay node, run recover.
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "harness.h"
#include "last_waited_task.h"
#include "store/store.h"

namespace ferry::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using Json = nlohmann::json;

// Defined below, with the workflows these tests apply.
std::string ThreeNodes(const std::string& file, const std::string& delay);

std::string Slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

int Count(const std::filesystem::path& p, const std::string& line) {
  std::istringstream in(Slurp(p));
  int n = 0;
  for (std::string l; std::getline(in, l);) n += l == line ? 1 : 0;
  return n;
}

class RunsCliTest : public ::testing::Test {
 protected:
  std::vector<std::string> Argv(const std::vector<std::string>& args) const {
    std::vector<std::string> argv = {FerryBinary(), "--redis-url", redis_.url(), "--prefix",
                                     "cli-runs"};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.push_back("--store");
    argv.push_back(Store());
    return argv;
  }
  CommandResult Ferry(const std::vector<std::string>& args, milliseconds timeout = seconds(30)) {
    return RunCommand(Argv(args), timeout, {{"NO_COLOR", "1"}});
  }
  std::string Store() const { return (dir_.path() / "ferry.db").string(); }
  std::string File(const std::string& name, const std::string& text = "") const {
    auto p = dir_.path() / name;
    if (!text.empty()) std::ofstream(p) << text;
    return p.string();
  }
  std::unique_ptr<Process> StartWorker(const std::string& id,
                                       const std::vector<std::string>& extra = {},
                                       int concurrency = 2) {
    Process::Options o;
    std::vector<std::string> args = {
        "worker",      "start", "--lease",       "2s",
        "--worker-id", id,      "--concurrency", std::to_string(concurrency)};
    args.insert(args.end(), extra.begin(), extra.end());
    o.argv = Argv(args);
    o.env = {{"NO_COLOR", "1"}};
    auto p = std::make_unique<Process>(o);
    EXPECT_TRUE(p->WaitForOutput(id, seconds(10))) << p->Stderr();
    return p;
  }
  // Waits until node `node` of run `id` has its step row (its checkpoint). Only then does a
  // worker that takes the run over skip the node: the node's own side effect (a line in a file)
  // comes a few milliseconds before the row, and a kill in between legitimately runs it again.
  bool WaitCheckpoint(const std::string& id, const std::string& node) {
    auto store = OpenStore(Store());
    EXPECT_TRUE(store) << store.error().message;
    if (!store) return false;
    return Eventually(
        [&] {
          auto steps = (*store)->ListSteps(id);
          if (!steps) return false;
          for (const auto& s : *steps) {
            if (s.node_id == node && s.status != kStepWaiting) return true;
          }
          return false;
        },
        seconds(15));
  }
  // Applies the three-node workflow (a 1 s delay in the middle) and starts a run of it with no
  // worker serving its queue: the run's id ("" when either fails).
  std::string PendingThreeNodeRun() {
    const std::string count = File("count.txt");
    auto applied = Ferry({"workflow", "apply", File("three.yaml", ThreeNodes(count, "1s"))});
    EXPECT_EQ(applied.exit_code, 0) << applied.err;
    auto started = Ferry({"--json", "workflow", "run", "three"});
    EXPECT_EQ(started.exit_code, 0) << started.err;
    Json j = Json::parse(started.out, nullptr, false);
    return j.is_object() ? j["run"].value("id", "") : "";
  }

  Json ShowRun(const std::string& id) {
    auto r = Ferry({"--json", "run", "show", id});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    Json shown = Json::parse(r.out, nullptr, false);
    return shown.is_object() ? shown["run"] : shown;
  }

  RedisServer redis_;
  TempDir dir_;
};

// One task node whose task goes to a queue no worker of these tests serves: it waits until told.
constexpr const char* kParentOfATaskElsewhere =
    "name: parent\nnodes:\n  child:\n    kind: task\n    task: {kind: echo, queue: elsewhere}\n";

std::string ThreeNodes(const std::string& file, const std::string& delay) {
  return "name: three\ndescription: one, wait, three\nnodes:\n"
         "  one:\n    kind: shell\n    argv: [sh, -c, 'echo one >> " +
         file +
         "']\n"
         "  wait:\n    kind: delay\n    needs: [one]\n    duration: " +
         delay +
         "\n"
         "  three:\n    kind: shell\n    needs: [wait]\n    argv: [sh, -c, 'echo three >> " +
         file + "']\n";
}

TEST_F(RunsCliTest, ApplyTwiceMakesOneVersionAndInvalidYamlExits2WithLine) {
  std::string wf = File("three.yaml", ThreeNodes(File("c.txt"), "1s"));
  auto a = Ferry({"workflow", "apply", wf, "--author", "ada", "--notes", "first"});
  ASSERT_EQ(a.exit_code, 0) << a.err;
  EXPECT_NE(a.out.find("created version 1"), std::string::npos) << a.out;
  auto b = Ferry({"workflow", "apply", wf});
  ASSERT_EQ(b.exit_code, 0) << b.err;
  EXPECT_NE(b.out.find("unchanged (version 1)"), std::string::npos) << b.out;
  auto v = Ferry({"--json", "workflow", "versions", "three"});
  ASSERT_EQ(v.exit_code, 0) << v.err;
  auto versions = Json::parse(v.out)["versions"];
  ASSERT_EQ(versions.size(), 1u) << v.out;
  EXPECT_EQ(versions[0]["author"], "ada");

  std::string bad = File("bad.yaml",
                         "name: bad\nnodes:\n  a:\n    kind: shell\n    argv: ['true']\n"
                         "  b:\n    kind: shell\n    needs: [nope]\n    argv: ['true']\n"
                         "    colour: red\n");
  auto c = Ferry({"workflow", "apply", bad});
  EXPECT_EQ(c.exit_code, 2);
  EXPECT_NE(c.err.find("line 8"), std::string::npos) << c.err;   // needs: [nope]
  EXPECT_NE(c.err.find("line 10"), std::string::npos) << c.err;  // unknown field
  auto l = Ferry({"workflow", "list"});
  EXPECT_EQ(l.out.find("bad"), std::string::npos);

  auto missing = Ferry({"run", "show", "01JZZZZZZZZZZZZZZZZZZZZZZZ"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.err.find("no run"), std::string::npos) << missing.err;
  auto nowf = Ferry({"workflow", "run", "nope"});
  EXPECT_EQ(nowf.exit_code, 1);
  EXPECT_NE(nowf.err.find("no workflow nope"), std::string::npos) << nowf.err;
}

// kill -9 of the worker process while the run sits in its delay node: another worker process
// reclaims the task after the lease, takes the run over and finishes it; `one` ran once.
TEST_F(RunsCliTest, KilledWorkerRunResumesOnAnotherWithoutRerunningFinishedNodes) {
  std::string count = File("count.txt");
  ASSERT_EQ(Ferry({"workflow", "apply", File("three.yaml", ThreeNodes(count, "4s"))}).exit_code, 0);
  auto first = StartWorker("worker-a");
  auto started = Ferry({"workflow", "run", "three"});
  ASSERT_EQ(started.exit_code, 0) << started.err;
  std::string id = started.out.substr(0, started.out.find('\n'));
  ASSERT_TRUE(WaitCheckpoint(id, "one"));  // so the run is in its delay node
  first->Signal(SIGKILL);
  first->Wait(seconds(5));
  EXPECT_EQ(ShowRun(id)["status"], "running");

  auto second = StartWorker("worker-b");
  auto watch = Ferry({"run", "watch", id, "--timeout", "40s"}, seconds(45));
  EXPECT_EQ(watch.exit_code, 0) << watch.out << watch.err << second->Stderr();
  EXPECT_NE(watch.out.find("run succeeded"), std::string::npos) << watch.out;
  Json run = ShowRun(id);
  EXPECT_EQ(run["status"], "succeeded");
  EXPECT_EQ(run["attempt"], 2);
  EXPECT_NE(run["worker"].get<std::string>().find("worker-b"), std::string::npos);
  EXPECT_EQ(Count(count, "one"), 1);
  EXPECT_EQ(Count(count, "three"), 1);
  auto show = Ferry({"workflow", "show", "three"});
  EXPECT_NE(show.out.find("succeeded"), std::string::npos) << show.out;
}

// kill -9 while the run waits in its delay node (in its slot: --run-slot-wait is longer): the
// worker that takes the run over waits for the deadline the first one stored when the delay
// began, not for the whole duration again.
TEST_F(RunsCliTest, KilledWorkerDelayResumesAtItsStoredDeadline) {
  std::string count = File("count.txt");
  ASSERT_EQ(Ferry({"workflow", "apply", File("three.yaml", ThreeNodes(count, "12s"))}).exit_code,
            0);
  auto first = StartWorker("worker-a", {"--run-slot-wait", "1m"});
  auto started = Ferry({"workflow", "run", "three"});
  ASSERT_EQ(started.exit_code, 0) << started.err;
  std::string id = started.out.substr(0, started.out.find('\n'));
  auto store = OpenStore(Store());
  ASSERT_TRUE(store) << store.error().message;
  auto find_step = [&](const std::string& node) -> std::optional<RunStep> {
    auto steps = (*store)->ListSteps(id);
    if (!steps) return std::nullopt;
    for (const auto& s : *steps) {
      if (s.node_id == node) return s;
    }
    return std::nullopt;
  };
  int64_t deadline = 0;
  int64_t began = 0;
  ASSERT_TRUE(Eventually(
      [&] {
        auto s = find_step("wait");
        if (!s || s->status != kStepWaiting) return false;
        deadline = Json::parse(s->output)["deadline_ms"].get<int64_t>();
        began = s->started_ms;
        return true;
      },
      seconds(15)));
  EXPECT_GT(began, 0);
  EXPECT_EQ(Json::parse(find_step("wait")->output)["duration_ms"], 12000);
  first->Signal(SIGKILL);
  first->Wait(seconds(5));

  auto second = StartWorker("worker-b");
  auto watch = Ferry({"run", "watch", id, "--timeout", "60s"}, seconds(65));
  EXPECT_EQ(watch.exit_code, 0) << watch.out << watch.err << second->Stderr();
  Json run = ShowRun(id);
  EXPECT_EQ(run["status"], "succeeded");
  EXPECT_EQ(run["attempt"], 2);
  auto wait = find_step("wait");
  ASSERT_TRUE(wait);
  EXPECT_EQ(wait->status, "succeeded");
  EXPECT_EQ(wait->epoch, run["epoch"].get<int64_t>()) << "ended by the second execution";
  Json out = Json::parse(wait->output);
  EXPECT_EQ(out["deadline_ms"], deadline) << "the stored deadline, not a new one";
  EXPECT_GE(wait->finished_ms, deadline) << "never cut short";
  EXPECT_GE(out["waited_ms"].get<int64_t>(), 12000) << "counted from the first execution";
  EXPECT_EQ(wait->started_ms, began) << "it began in the first execution, not at the resumption";
  EXPECT_EQ(Count(count, "one"), 1);
  EXPECT_EQ(Count(count, "three"), 1);
}

// With the default --run-slot-wait (5s), a run in a 15 s delay gives its only slot back: another
// run ends meanwhile, `run watch` tells the wait, and kill -9 of the worker during it changes
// nothing: a new worker resumes the run at its deadline, as its first attempt.
TEST_F(RunsCliTest, ARunInALongDelayGivesItsSlotBackAndOutlivesItsWorker) {
  std::string count = File("count.txt");
  ASSERT_EQ(Ferry({"workflow", "apply", File("three.yaml", ThreeNodes(count, "15s"))}).exit_code,
            0);
  ASSERT_EQ(Ferry({"workflow", "apply",
                   File("quick.yaml",
                        "name: quick\nnodes:\n  q:\n    kind: lua\n    script: "
                        "return 1\n")})
                .exit_code,
            0);
  auto first = StartWorker("worker-a", {}, /*concurrency=*/1);
  auto started = Ferry({"workflow", "run", "three"});
  ASSERT_EQ(started.exit_code, 0) << started.err;
  std::string id = started.out.substr(0, started.out.find('\n'));
  ASSERT_TRUE(Eventually(
      [&] {
        auto w = Ferry({"run", "watch", id, "--timeout", "1s"}, seconds(5));
        return w.out.find("run waiting until") != std::string::npos;
      },
      seconds(15)));
  auto quick = Ferry({"workflow", "run", "quick", "--wait", "--timeout", "10s"}, seconds(15));
  EXPECT_EQ(quick.exit_code, 0) << quick.out << quick.err << first->Stderr();
  EXPECT_EQ(ShowRun(id)["status"], "running") << "the quick run ended during the wait";
  auto show = Ferry({"run", "show", id});
  EXPECT_NE(show.out.find("none: waiting until 20"), std::string::npos) << show.out;
  EXPECT_NE(show.out.find("Z, out of any worker's slot"), std::string::npos) << show.out;
  Json waiting = ShowRun(id)["waiting"];
  ASSERT_TRUE(waiting.is_object()) << waiting.dump();
  EXPECT_TRUE(waiting["until"].is_string());
  EXPECT_EQ(waiting["tasks"], Json::array());
  first->Signal(SIGKILL);
  first->Wait(seconds(5));

  auto second = StartWorker("worker-b");
  auto watch = Ferry({"run", "watch", id, "--timeout", "60s"}, seconds(65));
  EXPECT_EQ(watch.exit_code, 0) << watch.out << watch.err << second->Stderr();
  EXPECT_NE(watch.out.find("wait  waiting until"), std::string::npos) << watch.out;
  Json run = ShowRun(id);
  EXPECT_EQ(run["status"], "succeeded");
  EXPECT_EQ(run["attempt"], 1);
  EXPECT_EQ(Count(count, "one"), 1);
  EXPECT_EQ(Count(count, "three"), 1);
}

// A run whose task node's task is in a queue no worker serves yet gives its slot back once it has
// waited --run-slot-wait, says what it waits for, and goes on as soon as a worker of that queue
// ends the task: its end wakes the run's task in the other queue (not the 30 s recheck).
TEST_F(RunsCliTest, ARunWaitingForATaskSaysSoAndIsWokenByItsEnd) {
  ASSERT_EQ(Ferry({"workflow", "apply",
                   File("parent.yaml",
                        "name: parent\nnodes:\n  child:\n    kind: task\n    task: {kind: echo, "
                        "queue: elsewhere, payload: {n: 42}}\n")})
                .exit_code,
            0);
  auto runs_worker = StartWorker("worker-a", {"--run-slot-wait", "1s"}, /*concurrency=*/1);
  auto started = Ferry({"workflow", "run", "parent"});
  ASSERT_EQ(started.exit_code, 0) << started.err;
  std::string id = started.out.substr(0, started.out.find('\n'));
  std::string watched;
  ASSERT_TRUE(Eventually(
      [&] {
        watched = Ferry({"run", "watch", id, "--timeout", "1s"}, seconds(5)).out;
        return watched.find("run waiting for task ") != std::string::npos;
      },
      seconds(15)))
      << watched << runs_worker->Stderr();
  EXPECT_NE(watched.find("child  waiting for task "), std::string::npos) << watched;
  auto show = Ferry({"run", "show", id});
  EXPECT_NE(show.out.find("none: waiting for task "), std::string::npos) << show.out;
  EXPECT_NE(show.out.find(", out of any worker's slot"), std::string::npos) << show.out;
  Json waiting = ShowRun(id)["waiting"];
  ASSERT_TRUE(waiting.is_object()) << waiting.dump();
  ASSERT_EQ(waiting["tasks"].size(), 1u);
  Json shown = ShowRun(id);
  EXPECT_EQ(shown["status"], "running");  // no worker serves `elsewhere` yet
  // Its task node's wait is stored, to go on in its attempt when the run does.
  ASSERT_EQ(shown["steps"].size(), 1u) << shown.dump();
  EXPECT_EQ(shown["steps"][0]["status"], "waiting");
  EXPECT_EQ(shown["steps"][0]["output"]["task"], waiting["tasks"][0]);

  auto other = StartWorker("worker-b", {"--queues", "elsewhere"});
  auto watch = Ferry({"run", "watch", id, "--timeout", "20s"}, seconds(25));
  EXPECT_EQ(watch.exit_code, 0) << watch.out << watch.err << runs_worker->Stderr();
  Json run = ShowRun(id);
  EXPECT_EQ(run["status"], "succeeded");
  EXPECT_EQ(run["attempt"], 1);
  EXPECT_EQ(run["output"]["child"]["n"], 42);
  EXPECT_TRUE(run["waiting"].is_null());
  ASSERT_EQ(run["steps"].size(), 1u);
  EXPECT_EQ(run["steps"][0]["status"], "succeeded");
  // Counted from its first look, before the run gave its slot back (after 1 s), not from the
  // resumed run's.
  EXPECT_GE(run["steps"][0]["duration_ms"].get<int64_t>(), 1000) << run["steps"].dump();
}

// `ferry run cancel` on a run out of its slot waiting for a task: the task it waits for is
// cancelled with it (no handler is there to do it), as is the run's own, and its history ends
// as a handler's would: the node interrupted, then the run cancelled (`run watch` and `run show`
// agree).
TEST_F(RunsCliTest, ACancelledRunOutOfItsSlotCancelsTheTaskItWaitsFor) {
  ASSERT_EQ(Ferry({"workflow", "apply", File("parent.yaml", kParentOfATaskElsewhere)}).exit_code,
            0);
  auto worker = StartWorker("worker-a", {"--run-slot-wait", "1s"}, /*concurrency=*/1);
  auto started = Ferry({"workflow", "run", "parent"});
  ASSERT_EQ(started.exit_code, 0) << started.err;
  std::string id = started.out.substr(0, started.out.find('\n'));
  Json waiting;
  ASSERT_TRUE(Eventually(
      [&] {
        waiting = ShowRun(id)["waiting"];
        return waiting.is_object();
      },
      seconds(15)))
      << worker->Stderr();
  ASSERT_EQ(waiting["tasks"].size(), 1u);
  const std::string child = waiting["tasks"][0];
  const auto task_status = [&](const std::string& task) {
    auto t = RunCommand({FerryBinary(), "--redis-url", redis_.url(), "--prefix", "cli-runs",
                         "--json", "task", "status", task},
                        seconds(30), {{"NO_COLOR", "1"}});
    Json j = Json::parse(t.out, nullptr, false);
    return j.is_object() ? j["task"].value("status", t.err) : t.out + t.err;
  };
  EXPECT_EQ(task_status(child), "pending");
  auto cancel = Ferry({"run", "cancel", id});
  EXPECT_EQ(cancel.exit_code, 0) << cancel.out << cancel.err;
  EXPECT_EQ(ShowRun(id)["status"], "cancelled");
  EXPECT_EQ(task_status(child), "cancelled");
  auto watch = Ferry({"run", "watch", id, "--timeout", "20s"}, seconds(25));
  const size_t interrupted = watch.out.find("  child  interrupted\n");
  EXPECT_NE(interrupted, std::string::npos) << watch.out << watch.err;
  const size_t ended = watch.out.find("  run cancelled\n");
  EXPECT_NE(ended, std::string::npos) << watch.out;
  EXPECT_GT(ended, interrupted) << watch.out;
  Json shown = ShowRun(id);
  ASSERT_EQ(shown["steps"].size(), 1u) << shown.dump();
  EXPECT_EQ(shown["steps"][0]["status"], "interrupted");
}

// `ferry run cancel` on a pending run (no worker yet): no handler will end its history, so the
// cancel does, and `run watch` tells the end as for any run.
TEST_F(RunsCliTest, ACancelledPendingRunsHistoryEndsCancelled) {
  const std::string id = PendingThreeNodeRun();
  ASSERT_FALSE(id.empty());
  EXPECT_EQ(ShowRun(id)["status"], "pending");
  auto cancel = Ferry({"run", "cancel", id});
  EXPECT_EQ(cancel.exit_code, 0) << cancel.out << cancel.err;
  auto watch = Ferry({"run", "watch", id, "--timeout", "20s"}, seconds(25));
  EXPECT_NE(watch.out.find("run cancel asked by"), std::string::npos) << watch.out;
  EXPECT_NE(watch.out.find("  run cancelled\n"), std::string::npos) << watch.out << watch.err;
  EXPECT_EQ(ShowRun(id)["status"], "cancelled");
}

// `ferry run cancel` on a run whose row still names a worker that no longer holds it (its
// handler stopped without releasing it: a drain, a lost lease, a crash) while its task waits in
// the queue for another: cancelling that task means no handler will end the run's history, so
// the cancel does, as a handler would: the node it left mid-attempt interrupted, then the end.
TEST_F(RunsCliTest, ACancelledRunItsWorkerLeftEndsItsHistory) {
  const std::string id = PendingThreeNodeRun();
  ASSERT_FALSE(id.empty());
  auto store = OpenStore(Store());
  ASSERT_TRUE(store) << store.error().message;
  // As a worker that took it and died would leave it (epoch 1, generation 0): `one` finished,
  // `wait` started and told no end.
  ASSERT_TRUE((*store)->MarkRunRunning(id, 1, "gone-worker/task"));
  for (const auto& [type, data] : std::vector<std::pair<std::string, Json>>{
           {"node.started", {{"node", "one"}, {"attempt", 1}}},
           {"node.finished", {{"node", "one"}, {"status", "succeeded"}, {"attempt", 1}}},
           {"node.started", {{"node", "wait"}, {"attempt", 1}}}}) {
    ASSERT_TRUE((*store)->AppendRunEvent(id, type, data.dump()));
  }
  EXPECT_EQ(ShowRun(id)["status"], "running");
  auto cancel = Ferry({"run", "cancel", id});
  EXPECT_EQ(cancel.exit_code, 0) << cancel.out << cancel.err;
  EXPECT_NE(cancel.out.find("cancelled (task "), std::string::npos) << cancel.out;
  auto watch = Ferry({"run", "watch", id, "--timeout", "20s"}, seconds(25));
  const size_t interrupted = watch.out.find("  wait  interrupted\n");
  EXPECT_NE(interrupted, std::string::npos) << watch.out << watch.err;
  EXPECT_EQ(watch.out.find("  one  interrupted"), std::string::npos) << watch.out;
  const size_t ended = watch.out.find("  run cancelled\n");
  EXPECT_NE(ended, std::string::npos) << watch.out << watch.err;
  EXPECT_GT(ended, interrupted) << watch.out;
}

// `ferry run cancel` on a run whose task node waits in its slot: the node, stopped mid-attempt,
// has no step row (the run's end takes none), yet `run show` lists it as interrupted, as `run
// watch` tells it, and its task is cancelled with the run.
TEST_F(RunsCliTest, ARunCancelledInItsSlotShowsItsInterruptedNode) {
  ASSERT_EQ(Ferry({"workflow", "apply", File("parent.yaml", kParentOfATaskElsewhere)}).exit_code,
            0);
  auto worker = StartWorker("worker-i", {"--run-slot-wait", "1h"});
  auto started = Ferry({"--json", "workflow", "run", "parent"});
  ASSERT_EQ(started.exit_code, 0) << started.err;
  const std::string id = Json::parse(started.out)["run"]["id"];
  auto store = OpenStore(Store());
  ASSERT_TRUE(store) << store.error().message;
  std::string child;
  ASSERT_TRUE(Eventually(
      [&] {
        child = LastWaitedTask(**store, id);
        return !child.empty();
      },
      seconds(15)))
      << worker->Stderr();
  auto cancel = Ferry({"run", "cancel", id});
  EXPECT_EQ(cancel.exit_code, 0) << cancel.out << cancel.err;
  auto watch = Ferry({"run", "watch", id, "--timeout", "20s"}, seconds(25));
  EXPECT_NE(watch.out.find("run cancelled"), std::string::npos) << watch.out << watch.err;
  Json shown;
  ASSERT_TRUE(Eventually(
      [&] {
        shown = ShowRun(id);
        return shown["steps"].is_array() && !shown["steps"].empty();
      },
      seconds(10)))
      << shown.dump();
  ASSERT_EQ(shown["steps"].size(), 1u) << shown.dump();
  EXPECT_EQ(shown["steps"][0]["node"], "child");
  EXPECT_EQ(shown["steps"][0]["status"], "interrupted");
  auto text = Ferry({"run", "show", id});
  EXPECT_NE(text.out.find("interrupted"), std::string::npos) << text.out;
  EXPECT_EQ(text.out.find("No steps finished yet"), std::string::npos) << text.out;
  // Its handler sees the cancel at its next look at the store, and cancels the task then.
  std::string last;
  EXPECT_TRUE(Eventually(
      [&] {
        auto task = RunCommand({FerryBinary(), "--redis-url", redis_.url(), "--prefix", "cli-runs",
                                "--json", "task", "status", child},
                               seconds(30), {{"NO_COLOR", "1"}});
        last = task.out + task.err;
        Json j = Json::parse(task.out, nullptr, false);
        return j.is_object() && j["task"].value("status", "") == "cancelled";
      },
      seconds(10)))
      << last;
}

// `ferry run cancel` on a run waiting out of its slot: it ends at once, its task with it, and
// its history ends with the cancelled end, so `run watch` says so and returns.
TEST_F(RunsCliTest, ARunWaitingOutOfItsSlotIsCancelledAtOnce) {
  std::string count = File("count.txt");
  ASSERT_EQ(Ferry({"workflow", "apply", File("three.yaml", ThreeNodes(count, "1h"))}).exit_code, 0);
  auto worker = StartWorker("worker-c");
  auto started = Ferry({"--json", "workflow", "run", "three"});
  ASSERT_EQ(started.exit_code, 0) << started.err;
  Json j = Json::parse(started.out);
  const std::string id = j["run"]["id"];
  const std::string task = j["task_id"];
  // `task status` takes no --store: called without it.
  const auto task_status = [&] {
    return RunCommand({FerryBinary(), "--redis-url", redis_.url(), "--prefix", "cli-runs", "--json",
                       "task", "status", task},
                      seconds(30), {{"NO_COLOR", "1"}});
  };
  std::string last;
  ASSERT_TRUE(Eventually(
      [&] {
        auto t = task_status();
        last = t.out + t.err;
        return t.exit_code == 0 && Json::parse(t.out)["task"]["status"] == "scheduled";
      },
      seconds(15)))
      << last;
  auto cancel = Ferry({"run", "cancel", id});
  EXPECT_EQ(cancel.exit_code, 0) << cancel.out << cancel.err;
  auto watch = Ferry({"run", "watch", id, "--timeout", "20s"}, seconds(25));
  EXPECT_NE(watch.out.find("run cancelled"), std::string::npos) << watch.out << watch.err;
  EXPECT_EQ(ShowRun(id)["status"], "cancelled");
  auto t = task_status();
  ASSERT_EQ(t.exit_code, 0) << t.err;
  EXPECT_EQ(Json::parse(t.out)["task"]["status"], "cancelled");
  EXPECT_EQ(Count(count, "three"), 0);
}

// A run stuck `running` whose task is gone: `run recover` says what it does and the run ends.
TEST_F(RunsCliTest, RunRecoverRequeuesRunWhoseTaskWasDeleted) {
  std::string count = File("count.txt");
  ASSERT_EQ(Ferry({"workflow", "apply", File("three.yaml", ThreeNodes(count, "3s"))}).exit_code, 0);
  auto worker = StartWorker("worker-r");
  auto started = Ferry({"--json", "workflow", "run", "three"});
  ASSERT_EQ(started.exit_code, 0) << started.err;
  Json j = Json::parse(started.out);
  std::string id = j["run"]["id"];
  std::string task = j["task_id"];
  ASSERT_TRUE(WaitCheckpoint(id, "one"));
  worker->Signal(SIGKILL);
  worker->Wait(seconds(5));
  // The task and its stream entry vanish (retention, a lost Redis): nobody can reclaim it.
  redis_.Cli({"FLUSHALL"});
  // A dry run says what it would do, and does none of it.
  auto dry = Ferry({"run", "recover", "--dry-run"});
  EXPECT_EQ(dry.exit_code, 0) << dry.out << dry.err;
  EXPECT_NE(dry.out.find("would enqueue"), std::string::npos) << dry.out;
  EXPECT_NE(dry.out.find("(dry run: nothing changed)"), std::string::npos) << dry.out;
  EXPECT_EQ(ShowRun(id)["status"], "running");
  auto rec = Ferry({"run", "recover"});
  EXPECT_EQ(rec.exit_code, 0) << rec.out << rec.err;
  EXPECT_NE(rec.out.find(id), std::string::npos) << rec.out;
  EXPECT_NE(rec.out.find("enqueued"), std::string::npos) << rec.out;
  EXPECT_NE(rec.out.find("missing"), std::string::npos) << rec.out;
  auto worker2 = StartWorker("worker-r2");
  auto watch = Ferry({"run", "watch", id, "--timeout", "30s"}, seconds(35));
  EXPECT_EQ(watch.exit_code, 0) << watch.out << watch.err;
  Json run = ShowRun(id);
  EXPECT_EQ(run["status"], "succeeded");
  EXPECT_NE(run["worker"].get<std::string>().find("worker-r2"), std::string::npos);
  EXPECT_EQ(Count(count, "one"), 1);  // resumed from its checkpoint
  EXPECT_EQ(Count(count, "three"), 1);
  auto cancel = Ferry({"run", "cancel", id});
  EXPECT_EQ(cancel.exit_code, 1);  // already ended
  EXPECT_NE(cancel.err.find("already ended"), std::string::npos) << cancel.err;
  (void)task;
}

}  // namespace
}  // namespace ferry::testing
