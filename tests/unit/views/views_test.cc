// Every record view follows the conventions of views/views.h: `*_at` is an ISO 8601 string or
// null, `*_ms` an integer or null, absent text null (never ""), stored JSON embedded as JSON.
#include "views/views.h"

#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <regex>

namespace ferry::views {
namespace {

constexpr int64_t kT = 1764740000123;  // 2025-12-03T05:33:20.123Z

// Checks the conventions on every key of `j` (recursively for nested views such as last_run).
// `fresh`: a default-constructed record, whose identity fields (id, kind, name) are "" as no real
// record's are; there every time must be null instead.
void ExpectConventions(const Json& j, const std::string& where, bool fresh) {
  static const std::regex iso(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)");
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& key = it.key();
    const Json& v = it.value();
    const std::string at = where + "." + key;
    if (key.size() > 3 && key.compare(key.size() - 3, 3, "_at") == 0) {
      EXPECT_TRUE(v.is_null() || (v.is_string() && std::regex_match(v.get<std::string>(), iso)))
          << at << " = " << v.dump();
    }
    if (key.size() > 3 && key.compare(key.size() - 3, 3, "_ms") == 0) {
      EXPECT_TRUE(v.is_null() || v.is_number_integer()) << at << " = " << v.dump();
    }
    if (fresh) {
      if (key.size() > 3 && key.compare(key.size() - 3, 3, "_at") == 0) {
        EXPECT_TRUE(v.is_null()) << at << " = " << v.dump();
      }
    } else {
      EXPECT_FALSE(v.is_string() && v.get<std::string>().empty()) << at << " is \"\", not null";
    }
  }
}

struct Case {
  std::string name;
  std::function<Json()> full;   // every field set
  std::function<Json()> empty;  // a fresh record: nothing set
  std::vector<std::string> keys;
};

std::vector<Case> Cases() {
  TaskRecord task;
  task.id = "01T";
  task.queue = "default";
  task.kind = "echo";
  task.payload = R"({"a":1})";
  task.worker = "w1";
  task.unique_key = "u";
  task.created_ms = task.eta_ms = task.started_ms = task.finished_ms = kT;
  task.result = R"({"ok":true})";
  task.error = "boom";
  WorkerInfo worker;
  worker.id = "w1";
  worker.status = "running";
  worker.hostname = "web01";
  worker.version = "0.1.0";
  worker.alive = true;
  worker.started_ms = kT - 5000;
  worker.last_heartbeat_ms = kT - 1000;
  QueueStats queue;
  queue.queue = "default";
  queue.oldest_pending_ms = kT - 2000;
  queue.counters = {{"submitted", 3}};
  ferry::Workflow wf{"01W", "hello", "greets", 2, false, kT, kT};
  WorkflowVersion version;
  version.workflow_id = "01W";
  version.version = 2;
  version.source = "name: hello";
  version.graph = R"({"nodes":[]})";
  version.author = "ada";
  version.format = "yaml";
  version.checksum = "ab12";
  version.created_ms = kT;
  ferry::Run run;
  run.id = "01R";
  run.workflow_id = "01W";
  run.workflow_name = "hello";
  run.failed_node = "greet";
  run.trigger_id = "t1";
  run.retry_of = "01Q";
  run.worker = "w1";
  run.inputs = R"({"who":"Ada"})";
  run.output = R"({"x":1})";
  run.error = "e";
  run.created_ms = run.started_ms = kT - 100;
  run.finished_ms = run.updated_ms = kT;
  RunStep step;
  step.node_id = "greet";
  step.status = "succeeded";
  step.output = R"({"stdout":"hi"})";
  step.started_ms = kT - 12;
  step.finished_ms = kT;
  ferry::RunEvent event{"01R", 3, kT, "node.finished", R"({"node":"greet"})"};
  ferry::TaskEvent task_event{"1-0", kT, "succeeded", Json{{"attempt", 1}}};
  ApiToken token;
  token.id = "01K";
  token.name = "ci";
  token.scopes = {"run"};
  token.created_ms = token.last_used_ms = kT;

  return {
      {"task",
       [=] { return Task(task); },
       [] { return Task({}); },
       {"id", "payload", "created_at", "eta_at", "started_at", "finished_at", "result", "error",
        "worker", "timeout_ms"}},
      {"task_event",
       [=] { return TaskEvent(task_event); },
       [] { return TaskEvent({}); },
       {"id", "at", "type", "data"}},
      {"worker",
       [=] { return Worker(worker, kT); },
       [] { return Worker({}, kT); },
       {"id", "status", "started_at", "last_heartbeat_at", "heartbeat_age_ms"}},
      {"queue",
       [=] { return Queue(queue, kT); },
       [] { return Queue({}, kT); },
       {"queue", "oldest_pending_at", "oldest_pending_age_ms", "counters"}},
      {"workflow",
       [=] { return Workflow(wf); },
       [] { return Workflow({}); },
       {"id", "name", "description", "current_version", "created_at", "updated_at"}},
      {"version",
       [=] { return Version(version, true); },
       [] { return Version({}, true); },
       {"version", "author", "created_at", "source", "graph"}},
      {"run",
       [=] { return Run(run); },
       [] { return Run({}); },
       {"id", "inputs", "output", "error", "created_at", "started_at", "finished_at", "updated_at",
        "duration_ms"}},
      {"step",
       [=] { return Step(step, RunStatus::kSucceeded); },
       [] { return Step({}, RunStatus::kPending); },
       {"node", "output", "started_at", "finished_at", "duration_ms"}},
      {"run_event",
       [=] { return RunEvent(event); },
       [] { return RunEvent({}); },
       {"seq", "at", "type", "data"}},
      {"token",
       [=] { return Token(token); },
       [] { return Token({}); },
       {"id", "scopes", "created_at", "last_used_at", "revoked_at", "revoked"}},
  };
}

TEST(Views, EveryRecordFollowsTheConventionsFullAndEmpty) {
  for (const auto& c : Cases()) {
    Json full = c.full();
    Json empty = c.empty();
    ASSERT_TRUE(full.is_object()) << c.name;
    ExpectConventions(full, c.name, false);
    ExpectConventions(empty, c.name + "(empty)", true);
    for (const auto& key : c.keys) {
      EXPECT_TRUE(full.contains(key)) << c.name << " lacks " << key;
    }
    // The same keys whether or not a field is set: clients never test for presence.
    std::vector<std::string> a, b;
    for (auto it = full.begin(); it != full.end(); ++it) a.push_back(it.key());
    for (auto it = empty.begin(); it != empty.end(); ++it) b.push_back(it.key());
    EXPECT_EQ(a, b) << c.name;
  }
}

TEST(Views, ValuesAreRenderedNotCopied) {
  auto cases = Cases();
  Json task = cases[0].full();
  EXPECT_EQ(task["created_at"], "2025-12-03T05:33:20.123Z");
  EXPECT_EQ(task["payload"], Json::parse(R"({"a":1})")) << "stored JSON is embedded";
  EXPECT_TRUE(cases[0].empty()["worker"].is_null());
  Json worker = cases[2].full();
  EXPECT_EQ(worker["heartbeat_age_ms"], 1000);
  WorkerInfo lapsed;
  lapsed.status = "running";
  lapsed.alive = false;
  EXPECT_EQ(Worker(lapsed, kT)["status"], "dead");
  EXPECT_EQ(Worker(lapsed, kT)["reported_status"], "running");
  WorkerInfo stopped;  // a clean shutdown's last record: not alive, and not dead either
  stopped.status = "stopped";
  stopped.alive = false;
  EXPECT_EQ(Worker(stopped, kT)["status"], "stopped");
  EXPECT_FALSE(Worker(stopped, kT)["alive"].get<bool>());
  EXPECT_EQ(cases[7].full()["duration_ms"], 12);
  EXPECT_TRUE(cases[7].empty()["duration_ms"].is_null());
  ferry::Run running;
  running.started_ms = kT;  // not finished: no duration yet
  EXPECT_TRUE(views::Run(running)["duration_ms"].is_null());
  running.id = "01R";
  Json r = views::Run(running);
  for (const char* optional :
       {"output", "error", "failed_node", "trigger_id", "retry_of", "worker", "finished_at"}) {
    EXPECT_TRUE(r[optional].is_null()) << optional << " = " << r[optional].dump();
  }
  // A delay's wait is shown waiting while its run goes on, and interrupted once the run ended
  // during it; other steps as stored.
  RunStep wait;
  wait.status = std::string(kStepWaiting);
  EXPECT_EQ(Step(wait, RunStatus::kRunning)["status"], "waiting");
  EXPECT_EQ(Step(wait, RunStatus::kCancelled)["status"], "interrupted");
  EXPECT_EQ(Step(wait, RunStatus::kFailed)["status"], "interrupted");
  RunStep done;
  done.status = "succeeded";
  EXPECT_EQ(Step(done, RunStatus::kCancelled)["status"], "succeeded");
  EXPECT_EQ(Embedded("not json"), "not json");
  EXPECT_EQ(Page("runs", Json::array(), "")["next_cursor"], nullptr);
  EXPECT_EQ(Page("runs", Json::array(), "c1")["next_cursor"], "c1");
}

}  // namespace
}  // namespace ferry::views
