// exec and http handlers end to end: `ferry worker start --handler ...` (the real binary) against
// a real redis-server, running a Python 3 program (exec_fixture.py) and a Node HTTP service
// (http_fixture.js). Each test has its own Redis server and key prefix.
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "core/crypto.h"
#include "harness.h"

namespace ferry::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using Json = nlohmann::json;

constexpr const char* kSecret = "test-secret-0123456789abcdef";

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

std::string Fixture(const std::string& name) {
  return std::string(FERRY_SOURCE_DIR) + "/tests/integration/handlers/" + name;
}

// A process is gone once it no longer exists or is a zombie nobody reaped yet (PID 1 of a
// container may not reap).
bool ProcessGone(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  if (!stat) return true;
  std::string text;
  std::getline(stat, text);
  size_t paren = text.rfind(')');
  return paren != std::string::npos && paren + 2 < text.size() && text[paren + 2] == 'Z';
}

// The Node fixture on a free port.
class NodeService {
 public:
  NodeService() {
    proc_ = std::make_unique<Process>(Process::Options{
        {"node", Fixture("http_fixture.js")}, {{"HANDLER_SECRET", kSecret}}, "", ""});
    EXPECT_TRUE(proc_->WaitForOutput("listening ", seconds(20))) << proc_->Stderr();
    std::string out = proc_->Stdout();
    port_ = std::stoi(out.substr(out.find("listening ") + 10));
    gate_port_ = std::stoi(out.substr(out.find(" gate ") + 6));
  }
  std::string url(const std::string& path = "/task") const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  // The fixture's gate: holds what is sent to it until ReleaseGate().
  std::string gate_url() const {
    return "http://127.0.0.1:" + std::to_string(gate_port_) + "/task";
  }
  bool ReleaseGate() const {
    httplib::Client c("127.0.0.1", port_);
    auto r = c.Post("/gate/release", "", "application/json");
    return r && r->status == 200;
  }
  Json Stats() const {
    httplib::Client c("127.0.0.1", port_);
    auto r = c.Get("/stats");
    if (!r || r->status != 200) return Json::object();
    return Json::parse(r->body);
  }
  // Sends a captured delivery again, with its headers as recorded (optionally changed).
  int Replay(const Json& delivery, const std::string& signature) const {
    httplib::Client c("127.0.0.1", port_);
    httplib::Headers h;
    for (const char* name :
         {"x-ferry-task-id", "x-ferry-attempt", "x-ferry-epoch", "x-ferry-timestamp"}) {
      h.emplace(name, delivery["headers"][name].get<std::string>());
    }
    h.emplace("x-ferry-signature", signature);
    auto r = c.Post("/task", h, delivery["body"].get<std::string>(), "application/json");
    return r ? r->status : -1;
  }
  std::string Stderr() const { return proc_->Stderr(); }

 private:
  std::unique_ptr<Process> proc_;
  int port_ = 0;
  int gate_port_ = 0;
};

class HandlersTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    prefix_ = std::string("handlers-") + info->name();
    redis_ = std::make_unique<RedisServer>(RedisServer::Options{"", false});
  }

  std::vector<std::string> Argv(const std::vector<std::string>& args) const {
    std::vector<std::string> argv = {FerryBinary(), "--redis-url", redis_->url(), "--prefix",
                                     prefix_};
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
  }
  CommandResult Run(const std::vector<std::string>& args,
                    const std::map<std::string, std::string>& env = {}) const {
    auto e = env;
    e["NO_COLOR"] = "1";
    return RunCommand(Argv(args), seconds(30), e);
  }
  Json RunJson(const std::vector<std::string>& args) const {
    std::vector<std::string> a = {"--json"};
    a.insert(a.end(), args.begin(), args.end());
    auto r = Run(a);
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    Json j = Json::parse(r.out, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << r.out;
    return j;
  }
  std::string Submit(const std::string& kind, const Json& payload,
                     const std::vector<std::string>& extra = {}) const {
    std::vector<std::string> a = {"task", "submit", kind, "--payload", payload.dump()};
    a.insert(a.end(), extra.begin(), extra.end());
    auto r = Run(a);
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    return Trim(r.out);
  }
  Json Task(const std::string& id) const { return RunJson({"task", "status", id})["task"]; }
  // Waits until the task reaches a final status and returns its record.
  Json WaitEnd(const std::string& id, milliseconds timeout = seconds(30)) const {
    Json t;
    Eventually(
        [&] {
          t = Task(id);
          std::string s = t.value("status", "");
          return s == "succeeded" || s == "failed" || s == "cancelled";
        },
        timeout);
    return t;
  }
  std::vector<Json> Events(const std::string& id) const {
    auto r = Run({"--json", "task", "events", id});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    std::vector<Json> out;
    std::istringstream in(r.out);
    std::string line;
    while (std::getline(in, line)) {
      if (!line.empty()) out.push_back(Json::parse(line));
    }
    return out;
  }
  std::unique_ptr<Process> StartWorker(const std::vector<std::string>& handlers,
                                       const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args = {"worker", "start", "--store", Store()};
    // Defaults unless the test gives its own (a flag may be given once).
    for (auto [flag, value] :
         {std::pair<std::string, std::string>{"--concurrency", "2"}, {"--backoff-base", "100ms"}}) {
      if (std::find(extra.begin(), extra.end(), flag) == extra.end()) {
        args.push_back(flag);
        args.push_back(value);
      }
    }
    for (const auto& h : handlers) {
      args.push_back("--handler");
      args.push_back(h);
    }
    args.insert(args.end(), extra.begin(), extra.end());
    // A secret of the worker's own that no handler may see.
    auto w = std::make_unique<Process>(Process::Options{
        Argv(args),
        {{"NO_COLOR", "1"}, {"FERRY_HANDLER_SECRET", kSecret}, {"FERRY_SECRET_CANARY", "x"}},
        "",
        ""});
    EXPECT_TRUE(w->WaitForOutput("worker.started", seconds(20))) << w->Stderr();
    return w;
  }
  std::string Store() const { return (tmp_.path() / "ferry.db").string(); }
  std::string PyHandler() const { return "py=exec:/usr/bin/python3 " + Fixture("exec_fixture.py"); }

  std::string prefix_;
  std::unique_ptr<RedisServer> redis_;
  TempDir tmp_;
};

// --- exec -----------------------------------------------------------------------------------

TEST_F(HandlersTest, ExecSucceedsWithEnvelopeEventsAndCleanEnvironment) {
  auto worker = StartWorker({PyHandler()});
  std::string id = Submit("py", {{"mode", "ok"}, {"n", 7}}, {"--timeout", "60s"});
  Json t = WaitEnd(id);
  ASSERT_EQ(t["status"], "succeeded") << t.dump() << worker->Stderr();
  const Json& env = t["result"]["envelope"];
  EXPECT_EQ(env["id"], id);
  EXPECT_EQ(env["kind"], "py");
  EXPECT_EQ(env["queue"], "default");
  EXPECT_EQ(env["attempt"], 1);
  EXPECT_EQ(env["epoch"], 1);
  EXPECT_TRUE(env["deadline_ms"].is_number_integer()) << env.dump();
  EXPECT_EQ(env["payload"], Json({{"mode", "ok"}, {"n", 7}}));

  // Only the documented variables: the worker's own (FERRY_SECRET_CANARY, FERRY_HANDLER_SECRET,
  // NO_COLOR) stay out.
  static const std::set<std::string> kAllowed = {"PATH",
                                                 "HOME",
                                                 "LANG",
                                                 "LC_ALL",
                                                 "TZ",
                                                 "TMPDIR",
                                                 "FERRY_TASK_ID",
                                                 "FERRY_TASK_KIND",
                                                 "FERRY_TASK_QUEUE",
                                                 "FERRY_TASK_ATTEMPT",
                                                 "FERRY_TASK_MAX_ATTEMPTS",
                                                 "FERRY_TASK_EPOCH",
                                                 "FERRY_TASK_DEADLINE_MS",
                                                 "FERRY_EVENTS_FD"};
  std::set<std::string> seen;
  for (const auto& name : t["result"]["env"]) {
    seen.insert(name.get<std::string>());
    EXPECT_TRUE(kAllowed.count(name.get<std::string>())) << "leaked: " << name;
  }
  EXPECT_TRUE(seen.count("FERRY_TASK_ID"));
  EXPECT_TRUE(seen.count("FERRY_EVENTS_FD"));

  // fd 3 lines became progress events, the stderr line a log event.
  std::vector<int> percents;
  bool logged = false;
  for (const Json& e : Events(id)) {
    if (e["type"] == "progress") percents.push_back(e["data"]["percent"].get<int>());
    if (e["type"] == "log" && e["data"]["line"] == "halfway") logged = true;
  }
  EXPECT_EQ(percents, (std::vector<int>{50, 100}));
  EXPECT_TRUE(logged);
}

TEST_F(HandlersTest, ExecRetriesThenSucceeds) {
  auto worker = StartWorker({PyHandler()});
  std::string id = Submit("py", {{"mode", "flaky"}}, {"--max-attempts", "3"});
  Json t = WaitEnd(id);
  ASSERT_EQ(t["status"], "succeeded") << t.dump();
  EXPECT_EQ(t["attempts"], 2);
  EXPECT_EQ(t["result"]["attempt"], 2);
  EXPECT_EQ(t["result"]["epoch"], 2);  // a new claim, a new fencing epoch
}

TEST_F(HandlersTest, ExecExit65IsPermanentAndItsNeighboursAreRetried) {
  auto worker = StartWorker({PyHandler()});
  std::string permanent = Submit("py", {{"mode", "exit"}, {"code", 65}}, {"--max-attempts", "3"});
  std::string below = Submit("py", {{"mode", "exit"}, {"code", 64}}, {"--max-attempts", "2"});
  std::string above = Submit("py", {{"mode", "exit"}, {"code", 66}}, {"--max-attempts", "2"});
  Json p = WaitEnd(permanent);
  EXPECT_EQ(p["status"], "failed");
  EXPECT_EQ(p["attempts"], 1) << p.dump();
  EXPECT_TRUE(Contains(p["error"], "exit code 65 (permanent failure)")) << p.dump();
  EXPECT_TRUE(Contains(p["error"], "exiting with 65")) << p.dump();  // stderr's tail
  for (const auto& id : {below, above}) {
    Json t = WaitEnd(id);
    EXPECT_EQ(t["status"], "failed");
    EXPECT_EQ(t["attempts"], 2) << t.dump();
  }
}

TEST_F(HandlersTest, ExecTimeoutKillsTheProcessGroup) {
  auto worker = StartWorker({PyHandler()});
  std::string pidfile = (tmp_.path() / "pids").string();
  std::string id = Submit("py", {{"mode", "hang"}, {"pidfile", pidfile}}, {"--timeout", "2s"});
  ASSERT_TRUE(Eventually([&] { return std::ifstream(pidfile).good(); }, seconds(20)));
  pid_t parent = 0, child = 0;
  ASSERT_TRUE(Eventually(
      [&] {
        std::ifstream f(pidfile);
        return static_cast<bool>(f >> parent >> child);
      },
      seconds(5)));
  Json t = WaitEnd(id);
  EXPECT_EQ(t["status"], "failed") << t.dump();
  EXPECT_TRUE(Contains(t["error"], "timed out")) << t.dump();
  EXPECT_TRUE(Eventually([&] { return ProcessGone(parent) && ProcessGone(child); }, seconds(10)));
}

TEST_F(HandlersTest, ExecCancelKillsTheProcessGroup) {
  auto worker = StartWorker({PyHandler()});
  std::string pidfile = (tmp_.path() / "pids").string();
  std::string id = Submit("py", {{"mode", "hang"}, {"pidfile", pidfile}});
  pid_t parent = 0, child = 0;
  ASSERT_TRUE(Eventually(
      [&] {
        std::ifstream f(pidfile);
        return static_cast<bool>(f >> parent >> child);
      },
      seconds(20)));
  EXPECT_FALSE(ProcessGone(child));
  auto c = Run({"task", "cancel", id});
  EXPECT_EQ(c.exit_code, 0) << c.out << c.err;
  Json t = WaitEnd(id);
  EXPECT_EQ(t["status"], "cancelled") << t.dump();
  EXPECT_TRUE(Eventually([&] { return ProcessGone(parent) && ProcessGone(child); }, seconds(10)));
}

TEST_F(HandlersTest, ExecOutputAndEventLimits) {
  auto worker = StartWorker({PyHandler()});
  auto expect_failed = [&](const std::string& id, const std::string& why) {
    Json t = WaitEnd(id);
    EXPECT_EQ(t["status"], "failed") << t.dump();
    EXPECT_EQ(t["attempts"], 1) << t.dump();  // permanent: retrying cannot help
    EXPECT_TRUE(Contains(t.value("error", ""), why)) << t.dump();
  };
  auto retry3 = std::vector<std::string>{"--max-attempts", "3"};
  expect_failed(Submit("py", {{"mode", "stdout"}, {"text", "not json"}}, retry3),
                "stdout is not one JSON value");
  // A JSON string of exactly 1 MiB is a result; one byte more is not.
  const size_t limit = 1 << 20;
  std::string ok_id = Submit("py", {{"mode", "string"}, {"bytes", limit}}, retry3);
  Json ok = WaitEnd(ok_id);
  EXPECT_EQ(ok["status"], "succeeded") << ok.value("error", "");
  EXPECT_EQ(ok["result"].get<std::string>().size(), limit - 2);
  expect_failed(Submit("py", {{"mode", "string"}, {"bytes", limit + 1}}, retry3),
                "stdout is larger than 1048576 bytes");

  // An event line of exactly 16 KiB is accepted; one byte more fails the attempt.
  auto event_line = [](size_t size) {
    std::string head = R"({"type":"x","data":")";
    return head + std::string(size - head.size() - 2, 'b') + "\"}";
  };
  ASSERT_EQ(event_line(16384).size(), 16384u);
  Json fine = WaitEnd(Submit("py", {{"mode", "event"}, {"line", event_line(16384) + "\n"}}));
  EXPECT_EQ(fine["status"], "succeeded") << fine.dump();
  expect_failed(Submit("py", {{"mode", "event"}, {"line", event_line(16385) + "\n"}}, retry3),
                "event line 1 is longer than 16384 bytes");
  expect_failed(Submit("py", {{"mode", "event"}, {"line", "{\"type\": 1}\n"}}, retry3),
                "must be an object with a string \"type\"");
  expect_failed(
      Submit("py", {{"mode", "event"}, {"line", "{\"type\":\"x\",\"extra\":1}\n"}}, retry3),
      "unknown field \"extra\"");
  // 1000 events are accepted, 1001 are not.
  Json thousand = WaitEnd(Submit("py", {{"mode", "events"}, {"count", 1000}}));
  EXPECT_EQ(thousand["status"], "succeeded") << thousand.dump();
  expect_failed(Submit("py", {{"mode", "events"}, {"count", 1001}}, retry3),
                "more than 1000 event lines");
}

// What one attempt can store in its task's event stream is bounded (about 1 MiB), however much
// its program writes within the protocol; one event says how many were dropped.
TEST_F(HandlersTest, ExecEventsOfOneAttemptAreBoundedInBytes) {
  auto worker = StartWorker({PyHandler()});
  Json t = WaitEnd(Submit("py", {{"mode", "flood"}}), seconds(60));
  EXPECT_EQ(t["status"], "succeeded") << t.dump();
  std::vector<Json> events;
  ASSERT_TRUE(Eventually(
      [&] {
        events = Events(t["id"].get<std::string>());
        return !events.empty() && events.back().value("type", "") == "succeeded";
      },
      seconds(20)));
  size_t handler_bytes = 0;
  std::string note;
  for (const Json& e : events) {
    const std::string type = e.value("type", "");
    if (type != "log" && type != "blob") continue;
    const std::string line = e["data"].is_object() ? e["data"].value("line", "") : "";
    if (Contains(line, "this attempt's events reached")) {
      note = line;  // the worker's own, past the budget
      continue;
    }
    handler_bytes += type.size() + e["data"].dump().size();
  }
  EXPECT_LE(handler_bytes, size_t{1} << 20) << events.size() << " events";
  EXPECT_GE(handler_bytes, size_t{1000} << 10) << events.size() << " events";
  EXPECT_TRUE(Contains(note,
                       "further event(s) not recorded: this attempt's events reached "
                       "1048576 bytes"))
      << note;
}

// --- http -----------------------------------------------------------------------------------

TEST_F(HandlersTest, HttpSucceedsSignedWithEpochAndReusesTheConnection) {
  NodeService node;
  auto worker = StartWorker({"js=" + node.url()}, {"--concurrency", "1"});
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) ids.push_back(Submit("js", {{"mode", "ok"}, {"i", i}}));
  for (int i = 0; i < 3; ++i) {
    Json t = WaitEnd(ids[static_cast<size_t>(i)]);
    ASSERT_EQ(t["status"], "succeeded") << t.dump() << node.Stderr();
    EXPECT_EQ(t["result"]["echo"]["i"], i);
    EXPECT_EQ(t["result"]["epoch"], 1);
  }
  Json stats = node.Stats();
  ASSERT_EQ(stats["deliveries"].size(), 3u) << stats.dump();
  std::set<int> sockets;
  for (const auto& d : stats["deliveries"]) sockets.insert(d["socket"].get<int>());
  EXPECT_EQ(sockets.size(), 1u) << "three tasks, one kept-alive connection: " << stats.dump();
  const Json& d = stats["deliveries"][0];
  // The signature is HMAC-SHA256 over timestamp "." body, as documented.
  std::string want =
      "sha256=" + HmacSha256Hex(kSecret, d["headers"]["x-ferry-timestamp"].get<std::string>() +
                                             "." + d["body"].get<std::string>());
  EXPECT_EQ(d["headers"]["x-ferry-signature"], want);
  EXPECT_TRUE(d["headers"].contains("x-ferry-deadline")) << d.dump();  // default timeout 30m
  EXPECT_EQ(d["headers"]["x-ferry-task-id"], ids[0]);
}

TEST_F(HandlersTest, HttpHonoursRetryAfterThenSucceeds) {
  NodeService node;
  // A backoff of an hour: only the service's Retry-After: 1 can bring the retry within the test.
  auto worker = StartWorker({"js=" + node.url()}, {"--backoff-base", "1h"});
  std::string id = Submit("js", {{"mode", "flaky"}}, {"--max-attempts", "3"});
  Json t = WaitEnd(id, seconds(30));
  ASSERT_EQ(t["status"], "succeeded") << t.dump();
  EXPECT_EQ(t["attempts"], 2);
  EXPECT_EQ(t["result"]["attempt"], 2);
}

TEST_F(HandlersTest, HttpStatusClassesAndNearMisses) {
  NodeService node;
  auto worker = StartWorker({"js=" + node.url()});
  auto status_task = [&](int status) {
    return Submit("js", {{"mode", "status"}, {"status", status}}, {"--max-attempts", "2"});
  };
  // 4xx: permanent (one attempt); 408, 429 and 5xx: retried (two attempts); 3xx: permanent.
  std::vector<std::pair<int, int>> cases = {{400, 1}, {422, 1}, {499, 1}, {408, 2},
                                            {429, 2}, {500, 2}, {503, 2}, {302, 1}};
  std::vector<std::string> ids;
  for (auto [status, _] : cases) ids.push_back(status_task(status));
  for (size_t i = 0; i < cases.size(); ++i) {
    Json t = WaitEnd(ids[i]);
    EXPECT_EQ(t["status"], "failed") << cases[i].first << t.dump();
    EXPECT_EQ(t["attempts"], cases[i].second) << cases[i].first << t.dump();
    EXPECT_TRUE(Contains(t.value("error", ""), "answered " + std::to_string(cases[i].first)))
        << t.dump();
  }
  Json bad = WaitEnd(Submit("js", {{"mode", "not-json"}}, {"--max-attempts", "2"}));
  EXPECT_EQ(bad["status"], "failed");
  EXPECT_EQ(bad["attempts"], 1);
  EXPECT_TRUE(Contains(bad.value("error", ""), "not JSON")) << bad.dump();
}

// A URL's password is sent (Basic auth) but shown masked wherever the URL is: the task's error,
// stored in Redis for anyone who may read tasks, and the worker's log.
TEST_F(HandlersTest, HttpCredentialsInTheUrlAreSentButNeverShown) {
  NodeService node;
  std::string url = node.url();
  url.insert(url.find("://") + 3, "admin:S3cretPass@");
  auto worker = StartWorker({"cred=" + url});
  Json t = WaitEnd(Submit("cred", {{"mode", "status"}, {"status", 400}}));
  EXPECT_EQ(t["status"], "failed");
  const std::string error = t.value("error", "");
  EXPECT_TRUE(Contains(error, "http://admin:****@127.0.0.1:")) << error;
  EXPECT_TRUE(Contains(error, "answered 400")) << error;
  EXPECT_FALSE(Contains(error, "S3cretPass")) << error;
  EXPECT_TRUE(worker->WaitForOutput("task.failed", seconds(20))) << worker->Stderr();
  EXPECT_FALSE(Contains(worker->Stderr(), "S3cretPass")) << worker->Stderr();
  Json stats = node.Stats();
  ASSERT_EQ(stats["deliveries"].size(), 1u) << stats.dump();
  EXPECT_EQ(stats["deliveries"][0]["headers"]["authorization"],
            "Basic " + Base64Encode("admin:S3cretPass"));
}

TEST_F(HandlersTest, HttpConnectionRefusedIsRetried) {
  int port = FreePort();  // nothing listens there
  auto worker = StartWorker({"gone=http://127.0.0.1:" + std::to_string(port) + "/task"});
  Json t = WaitEnd(Submit("gone", {{"x", 1}}, {"--max-attempts", "2"}));
  EXPECT_EQ(t["status"], "failed");
  EXPECT_EQ(t["attempts"], 2) << t.dump();
}

TEST_F(HandlersTest, HttpTimeoutAndCancelAbortTheRequest) {
  NodeService node;
  auto worker = StartWorker({"js=" + node.url()});
  std::string timed = Submit("js", {{"mode", "hang"}}, {"--timeout", "2s", "--max-attempts", "1"});
  Json t = WaitEnd(timed);
  EXPECT_EQ(t["status"], "failed") << t.dump();
  EXPECT_TRUE(Contains(t.value("error", ""), "timed out")) << t.dump();

  std::string cancelled = Submit("js", {{"mode", "hang"}});
  ASSERT_TRUE(Eventually(
      [&] {
        Json stats = node.Stats();  // the loop must not run over a destroyed temporary
        for (const auto& d : stats["deliveries"]) {
          if (d["id"] == cancelled) return true;
        }
        return false;
      },
      seconds(20)))
      << worker->Stderr() << node.Stats().dump();
  EXPECT_EQ(Run({"task", "cancel", cancelled}).exit_code, 0);
  Json c = WaitEnd(cancelled);
  EXPECT_EQ(c["status"], "cancelled") << c.dump();
  // The service saw both requests go away unanswered.
  EXPECT_TRUE(Eventually(
      [&] {
        Json aborted = node.Stats()["aborted"];
        std::set<std::string> ids;
        for (const auto& a : aborted) ids.insert(a.get<std::string>());
        return ids.count(timed) == 1 && ids.count(cancelled) == 1;
      },
      seconds(10)))
      << node.Stats()["aborted"].dump();
}

TEST_F(HandlersTest, HttpReceiverRejectsAFlippedNibbleAndAReplayedOlderEpoch) {
  NodeService node;
  auto worker = StartWorker({"js=" + node.url()});
  std::string id = Submit("js", {{"mode", "flaky"}}, {"--max-attempts", "3"});
  ASSERT_EQ(WaitEnd(id)["status"], "succeeded");
  Json deliveries = node.Stats()["deliveries"];
  ASSERT_EQ(deliveries.size(), 2u) << deliveries.dump();
  const Json& first = deliveries[0];
  const Json& second = deliveries[1];
  EXPECT_EQ(first["epoch"], 1);
  EXPECT_EQ(second["epoch"], 2);

  // The current delivery again, signed as sent: accepted (deliveries are at least once).
  std::string sig = second["headers"]["x-ferry-signature"];
  EXPECT_EQ(node.Replay(second, sig), 200);
  // One nibble of the signature flipped: rejected.
  std::string flipped = sig;
  flipped.back() = flipped.back() == '0' ? '1' : '0';
  EXPECT_EQ(node.Replay(second, flipped), 401);
  // The earlier delivery, correctly signed but with an epoch one behind: rejected as stale.
  EXPECT_EQ(node.Replay(first, first["headers"]["x-ferry-signature"]), 409);
}

// The case the epoch header exists for: worker A claims the task (epoch 1) and sends it, but the
// request is held up (the fixture's gate) and A stalls (SIGSTOP) so its lease runs out. Worker B
// reclaims the task (epoch 2) and the service runs it. Then A's delivery arrives: the service
// refuses it by its epoch, and A, resumed, cannot overwrite B's result (the broker's fence).
TEST_F(HandlersTest, HttpDeliveryFromAWorkerThatLostTheTaskIsRefusedAndFenced) {
  NodeService node;
  auto a = StartWorker({"js=" + node.gate_url()}, {"--concurrency", "1", "--lease", "2s"});
  std::string id = Submit("js", {{"mode", "ok"}}, {"--max-attempts", "3"});
  ASSERT_TRUE(Eventually([&] { return node.Stats()["gate"].value("complete_requests", 0) == 1; },
                         seconds(20)))
      << node.Stats().dump() << a->Stderr();
  a->Signal(SIGSTOP);
  auto b = StartWorker({"js=" + node.url()}, {"--concurrency", "1", "--lease", "2s"});
  Json t = WaitEnd(id, seconds(30));
  ASSERT_EQ(t["status"], "succeeded") << t.dump() << b->Stderr();
  EXPECT_EQ(t["result"]["epoch"], 2) << t.dump();
  EXPECT_EQ(t["reclaims"], 1) << t.dump();  // taken over: the same attempt, a new epoch

  // A's epoch-1 delivery reaches the service now: refused, and never run.
  ASSERT_TRUE(node.ReleaseGate());
  ASSERT_TRUE(Eventually([&] { return node.Stats()["rejected"].size() == 1; }, seconds(20)))
      << node.Stats().dump();
  Json stats = node.Stats();
  EXPECT_EQ(stats["rejected"][0]["id"], id);
  EXPECT_EQ(stats["rejected"][0]["epoch"], 1);
  ASSERT_EQ(stats["deliveries"].size(), 1u) << stats.dump();
  EXPECT_EQ(stats["deliveries"][0]["epoch"], 2);

  // A resumes: it learns it lost the task, and whatever it reports is refused by epoch.
  a->Signal(SIGCONT);
  ASSERT_TRUE(Eventually(
      [&] {
        std::string err = a->Stderr();
        return Contains(err, "task.lease_lost id=" + id) ||
               Contains(err, "task " + id + ": completion rejected");
      },
      seconds(20)))
      << a->Stderr();
  // Whichever A saw first (the 409 answer or the lost lease), the record is still B's.
  Json after = Task(id);
  EXPECT_EQ(after["status"], "succeeded") << after.dump();
  EXPECT_EQ(after["result"]["epoch"], 2) << after.dump();
  EXPECT_EQ(after["error"], nullptr) << after.dump();
}

// --- declarations, workflows ----------------------------------------------------------------

TEST_F(HandlersTest, BadDeclarationsStopTheWorkerWithAClearError) {
  struct Case {
    std::vector<std::string> args;
    std::map<std::string, std::string> env;
    std::string message;
  };
  std::vector<Case> cases = {
      {{"--handler", "shell=exec:true"}, {}, "kind 'shell' is built in"},
      {{"--handler", "ferry.x=exec:true"}, {}, "kinds starting with 'ferry.' are reserved"},
      {{"--handler", "x=exec:"}, {}, "names no program"},
      {{"--handler", "x=ftp://host/"}, {}, "must start with exec:, http:// or https://"},
      {{"--handler", "x=exec:true", "--handler", "x=exec:false"}, {}, "declared twice"},
      {{"--handler", "x=exec:true;y=exec:true"}, {}, "one declaration per flag"},
      {{}, {{"FERRY_HANDLERS", "bad kind=exec:true"}}, "FERRY_HANDLERS"},
      {{"--handler", "x=http://127.0.0.1:1/"},
       {{"FERRY_HANDLER_SECRET", "fifteen-bytes!!"}},
       "at least 16 bytes"},
      {{"--handler", "x=http://127.0.0.1:1/"}, {}, "no signing secret: set FERRY_HANDLER_SECRET"},
      // The declaration or URL quoted in an error has its password masked.
      {{"--handler", "x=https://user:pass@127.0.0.1:9/"},
       {},
       "http handler https://user:****@127.0.0.1:9/: no signing secret"},
      {{"--handler", "x=https://user:pass@127.0.0.1:9/ bogus"},
       {},
       "handler 'x=https://user:****@127.0.0.1:9/ bogus': unknown option 'bogus'"},
      {{"--handler", "x=https://user:pass@127.0.0.1:9/;y=exec:true"},
       {},
       "'x=https://user:****@127.0.0.1:9/;y=exec:true' holds a ';'"},
  };
  for (const auto& c : cases) {
    std::vector<std::string> args = {"worker", "start"};
    args.insert(args.end(), c.args.begin(), c.args.end());
    auto r = Run(args, c.env);
    EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
    EXPECT_TRUE(Contains(r.err, c.message)) << c.message << "\n" << r.err;
    EXPECT_FALSE(Contains(r.err, ":pass@")) << r.err;
  }
  // A program that does not exist is a bad declaration too (exit 2), as is one not executable;
  // the near miss, one that exists, starts (ExecSucceeds... above).
  for (const std::string& program :
       std::vector<std::string>{"/nonexistent/handler", Fixture("http_fixture.js")}) {
    auto missing = Run({"worker", "start", "--handler", "x=exec:" + program});
    EXPECT_EQ(missing.exit_code, 2) << missing.err;
    EXPECT_TRUE(Contains(missing.err, "ferry: --handler: handler 'x': exec: program '" + program +
                                          "' not found or not executable"))
        << missing.err;
  }
  // Declared in the environment, the error names the variable, as a malformed entry's does.
  auto from_env = Run({"worker", "start"}, {{"FERRY_HANDLERS", "k=exec:/nonexistent/handler"}});
  EXPECT_EQ(from_env.exit_code, 2) << from_env.err;
  EXPECT_TRUE(Contains(from_env.err,
                       "ferry: FERRY_HANDLERS: handler 'k': exec: program "
                       "'/nonexistent/handler' not found or not executable"))
      << from_env.err;
}

TEST_F(HandlersTest, ConfigFileDeclaresHandlers) {
  std::string conf = (tmp_.path() / "ferry.conf").string();
  std::ofstream(conf) << "handlers = " << PyHandler() << "\n";
  auto w = std::make_unique<Process>(
      Process::Options{Argv({"--config", conf, "worker", "start"}), {{"NO_COLOR", "1"}}, "", ""});
  ASSERT_TRUE(w->WaitForOutput("worker.started", seconds(20))) << w->Stderr();
  Json t = WaitEnd(Submit("py", {{"mode", "ok"}}));
  EXPECT_EQ(t["status"], "succeeded") << t.dump() << w->Stderr();
}

// `ferry dev --handler`: the one-process stack runs a declared kind; client commands in its
// folder reach it with no flags; a bad declaration stops it before anything starts.
TEST_F(HandlersTest, DevRunsDeclaredKinds) {
  NodeService node;
  TempDir folder;
  std::map<std::string, std::string> env = {{"NO_COLOR", "1"}, {"FERRY_HANDLER_SECRET", kSecret}};
  std::vector<std::string> dev_argv = {
      FerryBinary(), "dev",       "--listen",  "127.0.0.1:" + std::to_string(FreePort()),
      "--handler",   PyHandler(), "--handler", "js=" + node.url()};
  Process dev({dev_argv, env, folder.path().string(), ""});
  ASSERT_TRUE(dev.WaitForOutput("Press Ctrl-C to stop.", seconds(60))) << dev.Stderr();
  EXPECT_TRUE(Contains(dev.Stdout(), "Handlers:   py (exec), js (http)")) << dev.Stdout();

  // Client commands find the stack through its data directory (FERRY_DATA_DIR, docs/cli.md).
  auto client_env = env;
  client_env["FERRY_DATA_DIR"] = (folder.path() / ".ferry").string();
  auto client = [&](const std::vector<std::string>& args) {
    std::vector<std::string> argv = {FerryBinary()};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv, seconds(30), client_env);
  };
  for (const std::string kind : {"py", "js"}) {
    auto submitted = client({"task", "submit", kind, "--payload", R"({"mode": "ok"})"});
    ASSERT_EQ(submitted.exit_code, 0) << submitted.out << submitted.err;
    std::string id = Trim(submitted.out);
    Json t;
    ASSERT_TRUE(Eventually(
        [&] {
          auto r = client({"--json", "task", "status", id});
          if (r.exit_code != 0) return false;
          t = Json::parse(r.out, nullptr, false)["task"];
          return t.value("status", "") == "succeeded";
        },
        seconds(30)))
        << kind << " " << t.dump() << dev.Stderr();
    // Each handler's answer, as its fixture builds it.
    Json epoch = kind == "py" ? t["result"]["envelope"]["epoch"] : t["result"]["epoch"];
    EXPECT_EQ(epoch, 1) << t.dump();
  }
  dev.Signal(SIGTERM);
  EXPECT_EQ(dev.Wait(seconds(30)), 0) << dev.Stderr();

  // A declaration that is wrong: exit 2 naming it, and no stack left behind.
  auto bad = RunCommand({FerryBinary(), "dev", "--data-dir", (folder.path() / "bad").string(),
                         "--listen", "127.0.0.1:0", "--handler", "echo=exec:true"},
                        seconds(30), env);
  EXPECT_EQ(bad.exit_code, 2) << bad.out << bad.err;
  EXPECT_TRUE(Contains(bad.err, "kind 'echo' is built in")) << bad.err;
}

TEST_F(HandlersTest, WorkflowTaskNodeUsesADeclaredKind) {
  NodeService node;
  std::string store = Store();
  auto worker = StartWorker({PyHandler(), "js=" + node.url()});
  std::string wf = (tmp_.path() / "wf.yaml").string();
  std::ofstream(wf) << R"(name: polyglot
nodes:
  py:
    kind: task
    task: {kind: py, payload: {mode: flaky}, max_attempts: 3}
  js:
    kind: task
    needs: [py]
    task: {kind: js, payload: {mode: ok, from_py: "{{ nodes.py.output.attempt }}"}}
)";
  auto apply = Run({"workflow", "apply", wf, "--store", store});
  ASSERT_EQ(apply.exit_code, 0) << apply.out << apply.err;
  auto run = Run(
      {"--json", "workflow", "run", "polyglot", "--wait", "--timeout", "60s", "--store", store});
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err << worker->Stderr();
  Json deliveries = node.Stats()["deliveries"];
  ASSERT_EQ(deliveries.size(), 1u);
  Json body = Json::parse(deliveries[0]["body"].get<std::string>());
  EXPECT_EQ(body["payload"]["from_py"], 2);  // the exec node's output fed the http node
}

}  // namespace
}  // namespace ferry::testing
