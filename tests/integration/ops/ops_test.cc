// Operations end to end: /metrics of each process through promtool, JSON log lines, alert rules
// firing and clearing against a real Redis, alert webhook delivery, doctor, the deploy files
// (promtool rules, systemd-analyze verify, compose/Dockerfile static checks).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "broker/broker.h"
#include "core/time_util.h"
#include "harness.h"
#include "ops/alerts.h"
#include "ops/config.h"

namespace ferry {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::CommandResult;
using testing::Eventually;
using testing::FerryBinary;
using testing::FreePort;
using testing::Process;
using testing::RedisServer;
using testing::RunCommand;
using testing::TempDir;
namespace fs = std::filesystem;

const fs::path kSource = FERRY_SOURCE_DIR;

Process::Options Proc(std::vector<std::string> argv, std::map<std::string, std::string> env) {
  Process::Options o;
  o.argv = std::move(argv);
  o.env = std::move(env);
  return o;
}

bool Have(const std::string& tool) {
  return RunCommand({"sh", "-c", "command -v " + tool}, seconds(5)).exit_code == 0;
}

std::string Curl(const std::string& url, const std::string& token = "") {
  std::vector<std::string> argv = {"curl", "-sS", "--max-time", "5"};
  if (!token.empty()) {
    argv.push_back("-H");
    argv.push_back("Authorization: Bearer " + token);
  }
  argv.push_back(url);
  return RunCommand(argv, seconds(10)).out;
}

// promtool check metrics reads stdin: pass the scrape through a file.
CommandResult PromtoolCheckMetrics(const std::string& text, const TempDir& dir) {
  const fs::path f = dir.path() / "scrape.txt";
  std::ofstream(f) << text;
  return RunCommand({"sh", "-c", "promtool check metrics < '" + f.string() + "'"}, seconds(20));
}

std::map<std::string, std::string> Env(const RedisServer& redis) {
  return {{"FERRY_REDIS_URL", redis.url()}, {"FERRY_PREFIX", "opstest"}};
}

CommandResult Ferry(const std::vector<std::string>& args,
                    const std::map<std::string, std::string>& env) {
  std::vector<std::string> argv = {FerryBinary()};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCommand(argv, seconds(30), env);
}

nlohmann::json AlertsJson(const std::map<std::string, std::string>& env) {
  auto r = Ferry({"alerts", "--json"}, env);
  EXPECT_TRUE(r.exit_code == 0 || r.exit_code == 1) << r.err;
  return nlohmann::json::parse(r.out);
}

std::set<std::string> FiringKeys(const nlohmann::json& j) {
  std::set<std::string> out;
  for (const auto& a : j["firing"]) out.insert(a["key"].get<std::string>());
  return out;
}

void SubmitNoops(const RedisServer& redis, const std::string& queue, int n) {
  BrokerOptions o;
  o.redis_url = redis.url();
  o.prefix = "opstest";
  auto broker = MakeRedisBrokerFactory(o)->Open();
  ASSERT_TRUE(broker) << broker.error().message;
  std::vector<SubmitRequest> batch(static_cast<size_t>(n));
  for (auto& r : batch) {
    r.kind = "noop";
    r.queue = queue;
  }
  auto ids = (*broker)->SubmitBatch(batch);
  ASSERT_TRUE(ids) << ids.error().message;
}

// A port another process listens on (here: the test), until destroyed or Release()d.
class HeldPort {
 public:
  HeldPort() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), len) != 0 ||
        ::listen(fd_, 1) != 0 ||
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      throw std::runtime_error("cannot hold a port");
    }
    port_ = ntohs(addr.sin_port);
  }
  ~HeldPort() { Release(); }
  HeldPort(const HeldPort&) = delete;
  HeldPort& operator=(const HeldPort&) = delete;
  int port() const { return port_; }
  void Release() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
  int port_ = 0;
};

// A listener that cannot start is not Redis being unreachable: each process that listens says
// which address it could not have, without the Redis wording, and exits 1 (3 is Redis, the
// store or the server being unreachable; docs/cli.md "Exit codes").
TEST(OpsListeners, APortThatIsTakenExitsOneNamingTheAddressNotRedis) {
  RedisServer redis;
  TempDir dir;
  auto env = Env(redis);
  env["FERRY_STORE"] = (dir.path() / "ferry.db").string();
  HeldPort held;
  const std::string port = std::to_string(held.port());
  const std::string taken =
      "ferry: cannot listen on 127.0.0.1:" + port + ": Address already in use\n";
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"worker", "start", "--health-port", port},
           {"scheduler", "start", "--metrics-port", port},
           {"server", "start", "--listen", "127.0.0.1:" + port},
           {"dev", "--listen", "127.0.0.1:" + port, "--data-dir", (dir.path() / "dev").string()}}) {
    auto r = Ferry(args, env);
    EXPECT_EQ(r.exit_code, 1) << args[0] << ": " << r.err;
    EXPECT_NE(r.err.find(taken), std::string::npos) << args[0] << ": " << r.err;
    EXPECT_EQ(r.err.find("cannot connect to Redis"), std::string::npos) << args[0] << ": " << r.err;
  }

  // A health host that names no address (a label longer than DNS allows: refused without asking
  // a name server).
  auto nowhere = env;
  nowhere["FERRY_HEALTH_HOST"] = std::string(64, 'a') + ".invalid";
  nowhere["FERRY_HEALTH_PORT"] = "0";
  auto unresolved = Ferry({"worker", "start"}, nowhere);
  EXPECT_EQ(unresolved.exit_code, 1) << unresolved.err;
  EXPECT_NE(
      unresolved.err.find("ferry: cannot resolve listen host " + nowhere["FERRY_HEALTH_HOST"]),
      std::string::npos)
      << unresolved.err;
  EXPECT_EQ(unresolved.err.find("cannot connect to Redis"), std::string::npos) << unresolved.err;

  // The near miss: the same port, once free, serves the worker's health.
  held.Release();
  Process worker(Proc({FerryBinary(), "worker", "start", "--health-port", port}, env));
  ASSERT_TRUE(Eventually(
      [&] {
        return Curl("http://127.0.0.1:" + port + "/healthz").find("\"ok\"") != std::string::npos;
      },
      seconds(15)))
      << worker.Stderr();
  worker.Signal(SIGTERM);
  EXPECT_EQ(worker.Wait(seconds(20)), 0) << worker.Stderr();
}

// A data directory that cannot be made is this machine's matter, not a service to retry: exit
// 1 naming the path and why, not 3. Nothing else is started.
TEST(OpsListeners, ADataDirectoryThatCannotBeMadeExitsOneNamingIt) {
  TempDir dir;
  const fs::path file = dir.path() / "a-file";
  std::ofstream(file) << "x";
  const std::string under_file = (file / "data").string();
  auto r = Ferry({"dev", "--listen", "127.0.0.1:0", "--data-dir", under_file}, {});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("ferry: cannot create data directory " + under_file + ": Not a directory"),
            std::string::npos)
      << r.err;
  EXPECT_FALSE(fs::exists(file / "data"));
  // The near miss: the directory beside the file is made, and `dev` goes on to its store, which
  // refuses (a loopback port nothing listens on): that is the exit 3.
  auto next = Ferry({"dev", "--listen", "127.0.0.1:0", "--data-dir", (dir.path() / "data").string(),
                     "--store", "postgresql://127.0.0.1:1/ferry"},
                    {});
  EXPECT_EQ(next.exit_code, 3) << next.err;
  EXPECT_NE(next.err.find("cannot open the store"), std::string::npos) << next.err;
  EXPECT_TRUE(fs::is_directory(dir.path() / "data"));
}

TEST(OpsMetrics, WorkerScrapePassesPromtoolAndLogsAreJson) {
  if (!Have("promtool")) GTEST_SKIP() << "promtool not installed (Debian: prometheus)";
  RedisServer redis;
  TempDir dir;
  auto env = Env(redis);
  SubmitNoops(redis, "default", 5);
  ASSERT_EQ(Ferry({"task", "submit", "fail", "--max-attempts", "1"}, env).exit_code, 0);
  const int port = FreePort();
  auto worker_env = env;
  worker_env["FERRY_STORE"] = (dir.path() / "ferry.db").string();
  Process worker(Proc({FerryBinary(), "worker", "start", "--health-port", std::to_string(port),
                       "--log-format", "json", "--worker-id", "w-ops", "--concurrency", "2"},
                      worker_env));
  std::string text;
  ASSERT_TRUE(Eventually(
      [&] {
        text = Curl("http://127.0.0.1:" + std::to_string(port) + "/metrics");
        return text.find(R"(outcome="succeeded",queue="default"} 5)") != std::string::npos &&
               text.find(R"(kind="fail",outcome="failed")") != std::string::npos;
      },
      seconds(15)))
      << text << worker.Stderr();
  auto check = PromtoolCheckMetrics(text, dir);
  EXPECT_EQ(check.exit_code, 0) << check.out << check.err << text;
  EXPECT_NE(text.find("ferry_task_duration_seconds_bucket"), std::string::npos);
  EXPECT_NE(text.find("ferry_task_wait_seconds_bucket"), std::string::npos);

  worker.Signal(SIGTERM);
  ASSERT_TRUE(worker.Wait(seconds(20)).has_value());
  // Every stderr line is one JSON object with ts/level/msg; event lines are there.
  std::istringstream lines(worker.Stderr());
  std::string line;
  int parsed = 0;
  bool started = false, succeeded = false, failed = false, stopped = false;
  while (std::getline(lines, line)) {
    if (line.empty()) continue;
    nlohmann::json j;
    ASSERT_NO_THROW(j = nlohmann::json::parse(line)) << line;
    ASSERT_TRUE(j.contains("ts") && j.contains("level") && j.contains("msg")) << line;
    const std::string msg = j["msg"];
    started |= msg.rfind("worker.started id=w-ops", 0) == 0;
    succeeded |=
        msg.rfind("task.succeeded id=", 0) == 0 && msg.find("duration_ms=") != std::string::npos;
    failed |= msg.rfind("task.failed id=", 0) == 0;
    stopped |= msg.rfind("worker.stopped id=w-ops", 0) == 0;
    ++parsed;
  }
  EXPECT_GE(parsed, 8);
  EXPECT_TRUE(started && succeeded && failed && stopped) << worker.Stderr();
  // Secrets never logged: the URL carries no password here, but the store path is logged masked.
}

// The datagrams a process sends to $NOTIFY_SOCKET, as systemd's Type=notify reads them.
class NotifySocket {
 public:
  explicit NotifySocket(const TempDir& dir) : path_((dir.path() / "notify").string()) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) throw std::runtime_error("socket");
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path_.c_str());
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      throw std::runtime_error("bind " + path_);
    }
    timeval tv{0, 200'000};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  ~NotifySocket() { ::close(fd_); }
  const std::string& path() const { return path_; }
  // The next datagram that starts with `prefix`, within `timeout`; "" if none came.
  std::string Next(const std::string& prefix, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    char buf[512];
    while (std::chrono::steady_clock::now() < deadline) {
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) continue;
      std::string msg(buf, static_cast<size_t>(n));
      if (msg.rfind(prefix, 0) == 0) return msg;
    }
    return "";
  }

 private:
  std::string path_;
  int fd_ = -1;
};

// A worker tells systemd STOPPING=1 as its drain begins (it said READY=1 only, and "claiming"
// through a drain that may last its timeout), while the task it drains still runs.
TEST(OpsNotify, AWorkerSaysStoppingAsItsDrainBegins) {
  RedisServer redis;
  TempDir dir;
  NotifySocket notify(dir);
  auto env = Env(redis);
  env["FERRY_STORE"] = (dir.path() / "ferry.db").string();
  env["NOTIFY_SOCKET"] = notify.path();
  Process worker(Proc(
      {FerryBinary(), "worker", "start", "--worker-id", "w-notify", "--concurrency", "1"}, env));
  EXPECT_EQ(notify.Next("READY=1", seconds(20)), "READY=1\nSTATUS=worker w-notify claiming")
      << worker.Stderr();
  auto submitted =
      Ferry({"--json", "task", "submit", "sleep", "--payload", R"({"ms": 20000})"}, env);
  ASSERT_EQ(submitted.exit_code, 0) << submitted.err;
  const std::string id = nlohmann::json::parse(submitted.out).at("id");
  ASSERT_TRUE(Eventually(
      [&] {
        auto st = Ferry({"--json", "task", "status", id}, env);
        auto j = nlohmann::json::parse(st.out, nullptr, false);
        return !j.is_discarded() && j["task"].value("status", "") == "running";
      },
      seconds(20)))
      << worker.Stderr();
  worker.Signal(SIGTERM);
  EXPECT_EQ(notify.Next("STOPPING=1", seconds(20)), "STOPPING=1\nSTATUS=worker w-notify draining")
      << worker.Stderr();
  EXPECT_TRUE(worker.Running());  // told as the drain began: the sleep still runs
  worker.Signal(SIGKILL);
  worker.Wait(seconds(20));
}

TEST(OpsMetrics, ServerAndSchedulerScrapesPassPromtool) {
  if (!Have("promtool")) GTEST_SKIP() << "promtool not installed (Debian: prometheus)";
  RedisServer redis;
  TempDir dir;
  auto env = Env(redis);
  env["FERRY_STORE"] = (dir.path() / "ferry.db").string();
  SubmitNoops(redis, "default", 3);
  SubmitNoops(redis, "mail", 2);

  const int api_port = FreePort();
  Process server(
      Proc({FerryBinary(), "server", "start", "--listen", "127.0.0.1:" + std::to_string(api_port)},
           env));
  const std::string base = "http://127.0.0.1:" + std::to_string(api_port);
  std::string text;
  ASSERT_TRUE(Eventually(
      [&] {
        text = Curl(base + "/metrics");
        return text.find("ferry_queue_depth") != std::string::npos;
      },
      seconds(15)))
      << server.Stderr();
  auto check = PromtoolCheckMetrics(text, dir);
  EXPECT_EQ(check.exit_code, 0) << check.out << check.err << text;
  EXPECT_NE(text.find(R"(ferry_queue_depth{queue="mail"} 2)"), std::string::npos) << text;
  EXPECT_NE(text.find(R"(ferry_tasks_submitted_total{queue="default"} 3)"), std::string::npos);
  EXPECT_NE(text.find("# TYPE ferry_tasks_submitted_total counter"), std::string::npos);
  EXPECT_NE(text.find("ferry_workers_alive 0"), std::string::npos);
  EXPECT_NE(text.find(R"(ferry_runs{status="pending"} 0)"), std::string::npos) << text;
  EXPECT_NE(text.find("ferry_runs_pending_stale 0"), std::string::npos);
  EXPECT_NE(text.find("ferry_redis_up 1"), std::string::npos);
  // Never an id as a label.
  EXPECT_EQ(text.find("id=\""), std::string::npos);

  // A webhook to an unknown workflow is counted without its (unbounded) name, and so is one the
  // server refuses before it looks the name up (a content coding it does not read: 415).
  Curl(base + "/hooks/no-such-workflow");
  auto refused =
      RunCommand({"curl", "-sS", "--max-time", "5", "-o", "/dev/null", "-w", "%{http_code}", "-H",
                  "Content-Encoding: br", "--data", "x", base + "/hooks/label-from-a-stranger"},
                 seconds(10));
  EXPECT_EQ(refused.out, "415") << refused.err;
  text = Curl(base + "/metrics");
  EXPECT_NE(text.find(R"(ferry_webhook_requests_total{code="4xx",workflow="_unknown"} 2)"),
            std::string::npos)
      << text;
  EXPECT_EQ(text.find("label-from-a-stranger"), std::string::npos) << text;

  // GET /api/v1/alerts (authenticated).
  auto tok = Ferry({"token", "create", "ops-test", "--json"}, env);
  ASSERT_EQ(tok.exit_code, 0) << tok.err;
  const std::string token = nlohmann::json::parse(tok.out)["token"];
  auto alerts = nlohmann::json::parse(Curl(base + "/api/v1/alerts", token));
  EXPECT_TRUE(FiringKeys(alerts).count("NoLiveWorkers")) << alerts.dump();
  EXPECT_EQ(alerts["store_checked"], true);
  EXPECT_NE(Curl(base + "/api/v1/alerts").find("unauthenticated"), std::string::npos);

  const int sched_port = FreePort();
  Process scheduler(Proc(
      {FerryBinary(), "scheduler", "start", "--metrics-port", std::to_string(sched_port)}, env));
  ASSERT_TRUE(Eventually(
      [&] {
        text = Curl("http://127.0.0.1:" + std::to_string(sched_port) + "/metrics");
        return text.find("ferry_scheduler_leader 1") != std::string::npos;
      },
      seconds(15)))
      << text << scheduler.Stderr();
  check = PromtoolCheckMetrics(text, dir);
  EXPECT_EQ(check.exit_code, 0) << check.out << check.err << text;
  EXPECT_NE(text.find(R"(ferry_build_info{process="scheduler")"), std::string::npos);
  EXPECT_TRUE(scheduler.WaitForOutput("scheduler.leader_acquired", seconds(5)));
}

// The scheduler's /healthz says whether Redis answers it: without Redis it neither leads nor can
// take over (it said ok while Redis was down). 503 within about a lease of Redis stopping; ok
// again once Redis is back.
TEST(OpsHealth, TheSchedulersHealthSaysWhenRedisStopsAnswering) {
  RedisServer redis;
  TempDir dir;
  auto env = Env(redis);
  env["FERRY_STORE"] = (dir.path() / "ferry.db").string();
  const std::string port = std::to_string(FreePort());
  const std::string url = "http://127.0.0.1:" + port + "/healthz";
  Process scheduler(Proc({FerryBinary(), "scheduler", "start", "--metrics-port", port}, env));
  const auto code = [&] {
    return RunCommand(
               {"curl", "-sS", "--max-time", "5", "-o", "/dev/null", "-w", "%{http_code}", url},
               seconds(10))
        .out;
  };
  nlohmann::json health;
  ASSERT_TRUE(Eventually(
      [&] {
        health = nlohmann::json::parse(Curl(url), nullptr, false);
        return health.is_object() && health.value("leader", false);
      },
      seconds(15)))
      << health.dump() << scheduler.Stderr();
  EXPECT_EQ(health["status"], "ok");
  EXPECT_EQ(code(), "200");
  EXPECT_LE(health["redis_answered_ms_ago"].get<int64_t>(), 5000);

  redis.Stop();
  ASSERT_TRUE(Eventually([&] { return code() == "503"; }, seconds(30))) << scheduler.Stderr();
  health = nlohmann::json::parse(Curl(url), nullptr, false);
  EXPECT_EQ(health["status"], "unavailable") << health.dump();
  EXPECT_GT(health["redis_answered_ms_ago"].get<int64_t>(), 5000) << health.dump();
  EXPECT_EQ(health["leader"], false) << health.dump();

  redis.Start();
  ASSERT_TRUE(Eventually([&] { return code() == "200"; }, seconds(30))) << scheduler.Stderr();
  scheduler.Signal(SIGTERM);
  EXPECT_EQ(scheduler.Wait(seconds(20)), 0) << scheduler.Stderr();
}

TEST(OpsAlerts, QueueDepthAndWorkerAlertsFireAndClear) {
  RedisServer redis;
  auto env = Env(redis);
  SubmitNoops(redis, "default", 150);

  auto first = AlertsJson(env);
  EXPECT_EQ(FiringKeys(first), (std::set<std::string>{"NoLiveWorkers", "QueueDepthHigh:default"}))
      << first.dump();
  const int64_t since = first["firing"][1]["since_ms"];
  // A later evaluation, at a later time (so a firing-since recomputed from "now" would differ).
  ASSERT_TRUE(testing::Eventually([&] { return WallNowMs() > since; }, std::chrono::seconds(5)));
  auto again = AlertsJson(env);
  // The firing-since time is shared state: a second evaluation keeps it.
  for (const auto& a : again["firing"]) {
    if (a["key"] == "QueueDepthHigh:default") {
      EXPECT_EQ(a["since_ms"].get<int64_t>(), since);
    }
  }
  // A what-if look with a threshold given as a flag does not see it, and does not resolve it.
  auto look = Ferry({"alerts", "--json", "--alert-queue-depth-warning", "1000",
                     "--alert-queue-depth-critical", "2000"},
                    env);
  EXPECT_FALSE(FiringKeys(nlohmann::json::parse(look.out)).count("QueueDepthHigh:default"))
      << look.out;
  for (const auto& a : AlertsJson(env)["firing"]) {
    if (a["key"] == "QueueDepthHigh:default") {
      EXPECT_EQ(a["since_ms"].get<int64_t>(), since);
    }
  }
  // A lower threshold from the environment makes it critical.
  auto crit_env = env;
  crit_env["FERRY_ALERT_QUEUE_DEPTH_CRITICAL"] = "120";
  auto crit = AlertsJson(crit_env);
  EXPECT_TRUE(FiringKeys(crit).count("QueueDepthCritical:default")) << crit.dump();

  Process worker(
      Proc({FerryBinary(), "worker", "start", "--concurrency", "8", "--worker-id", "w-al"}, env));
  nlohmann::json now;
  ASSERT_TRUE(Eventually(
      [&] {
        now = AlertsJson(env);
        return FiringKeys(now).empty();
      },
      seconds(20)))
      << now.dump() << worker.Stderr();
  auto cleared = Ferry({"alerts"}, env);
  EXPECT_EQ(cleared.exit_code, 0);
  EXPECT_NE(cleared.out.find("No alerts firing"), std::string::npos);

  worker.Signal(SIGTERM);
  ASSERT_TRUE(worker.Wait(seconds(20)).has_value());
  auto after = AlertsJson(env);
  EXPECT_EQ(FiringKeys(after), (std::set<std::string>{"NoLiveWorkers"})) << after.dump();
  auto human = Ferry({"alerts"}, env);
  EXPECT_EQ(human.exit_code, 1);
  EXPECT_NE(human.out.find("critical"), std::string::npos) << human.out;
}

// A look (`ferry alerts`, record=false) with thresholds of its own neither resolves what the
// deployment's evaluators see firing nor records what only it sees.
TEST(OpsAlerts, ALookWithOtherThresholdsLeavesTheSharedStateAlone) {
  RedisServer redis;
  BrokerOptions o;
  o.redis_url = redis.url();
  o.prefix = "opslook";
  auto broker = MakeRedisBrokerFactory(o)->Open();
  ASSERT_TRUE(broker);
  SubmitRequest r;
  r.kind = "noop";
  r.queue = "q";
  ASSERT_TRUE((*broker)->Submit(r));
  ops::AlertThresholds one;
  one.queue_depth_warning = 0;  // one waiting task is over it
  ops::AlertEvaluator recorder(one);
  ops::AlertEvaluator look(ops::AlertThresholds{}, /*record=*/false);
  auto keys = [](const ops::AlertReport& rep) {
    std::set<std::string> k;
    for (const auto& a : rep.firing) k.insert(a.Key());
    return k;
  };
  auto first = recorder.Evaluate(**broker, nullptr);
  ASSERT_TRUE(first) << first.error().message;
  ASSERT_EQ(keys(*first), (std::set<std::string>{"NoLiveWorkers", "QueueDepthHigh:q"}));
  int64_t since = 0;
  for (const auto& a : first->firing) since = a.Key() == "QueueDepthHigh:q" ? a.since_ms : since;
  ASSERT_GT(since, 0);

  // The look does not see the depth alert: it reports it resolved, but the state keeps it.
  auto looked = look.Evaluate(**broker, nullptr);
  ASSERT_TRUE(looked);
  EXPECT_EQ(keys(*looked), (std::set<std::string>{"NoLiveWorkers"}));
  auto again = recorder.Evaluate(**broker, nullptr);
  ASSERT_TRUE(again);
  for (const auto& a : again->firing) {
    if (a.Key() == "QueueDepthHigh:q") {
      EXPECT_EQ(a.since_ms, since);
    }
  }
  EXPECT_TRUE(again->resolved.empty());

  // What only a look sees firing is not recorded: a lower depth threshold, on a second queue.
  r.queue = "p";
  ASSERT_TRUE((*broker)->Submit(r));
  ops::AlertEvaluator low_look(one, /*record=*/false);
  auto low = low_look.Evaluate(**broker, nullptr);
  ASSERT_TRUE(low);
  EXPECT_TRUE(keys(*low).count("QueueDepthHigh:p"));
  auto state = (*broker)->GetOpsState("alerts");
  ASSERT_TRUE(state);
  EXPECT_EQ(state->count("since:QueueDepthHigh:p"), 0u);
  EXPECT_EQ(state->count("since:QueueDepthHigh:q"), 1u);
}

TEST(OpsAlerts, WebhookDeliveryIsSignedAndDeduplicated) {
  RedisServer redis;
  httplib::Server hook;
  std::mutex mu;
  std::vector<std::pair<nlohmann::json, std::string>> got;  // body, signature ok?
  hook.Post("/alerts", [&](const httplib::Request& req, httplib::Response& res) {
    const std::string ts = req.get_header_value("X-Ferry-Timestamp");
    const std::string sig = req.get_header_value("X-Ferry-Signature");
    const bool ok = sig == "sha256=" + ops::AlertSignature("hook-secret", ts, req.body);
    std::lock_guard lock(mu);
    got.emplace_back(nlohmann::json::parse(req.body), ok ? "ok" : "bad:" + sig);
    res.status = 204;
  });
  const int port = hook.bind_to_any_port("127.0.0.1");
  std::thread t([&] { hook.listen_after_bind(); });
  struct Joiner {
    httplib::Server& s;
    std::thread& t;
    ~Joiner() {
      s.stop();
      if (t.joinable()) t.join();
    }
  } joiner{hook, t};

  BrokerOptions o;
  o.redis_url = redis.url();
  o.prefix = "opstest";
  auto broker = MakeRedisBrokerFactory(o)->Open();
  ASSERT_TRUE(broker);
  ops::AlertEvaluator evaluator{ops::AlertThresholds{}};
  ops::AlertNotifier notifier(
      {"http://127.0.0.1:" + std::to_string(port) + "/alerts", "hook-secret", seconds(5)});

  auto report = evaluator.Evaluate(**broker, nullptr);  // no workers: NoLiveWorkers
  ASSERT_TRUE(report);
  auto sent = notifier.Deliver(**broker, *report);
  ASSERT_TRUE(sent) << sent.error().message;
  EXPECT_EQ(*sent, 1);
  report = evaluator.Evaluate(**broker, nullptr);
  sent = notifier.Deliver(**broker, *report);
  ASSERT_TRUE(sent);
  EXPECT_EQ(*sent, 0);  // already announced

  WorkerInfo w;
  w.id = "w1";
  w.status = "running";
  w.alive = true;
  w.last_heartbeat_ms = WallNowMs();
  ASSERT_TRUE((*broker)->Heartbeat(w, seconds(30)));
  report = evaluator.Evaluate(**broker, nullptr);
  ASSERT_TRUE(report);
  EXPECT_TRUE(report->firing.empty());
  ASSERT_EQ(report->resolved.size(), 1u);
  sent = notifier.Deliver(**broker, *report);
  ASSERT_TRUE(sent);
  EXPECT_EQ(*sent, 1);

  hook.stop();
  t.join();
  std::lock_guard lock(mu);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].first["status"], "firing");
  EXPECT_EQ(got[0].first["alert"]["name"], "NoLiveWorkers");
  EXPECT_EQ(got[0].second, "ok");
  EXPECT_EQ(got[1].first["status"], "resolved");
  EXPECT_EQ(got[1].second, "ok");
}

TEST(OpsDoctor, AofOffWarnsWithTheFix) {
  RedisServer::Options ro;
  ro.appendonly = false;
  RedisServer redis(ro);
  auto env = Env(redis);
  auto r = Ferry({"doctor"}, env);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;  // a WARN is not a failure
  EXPECT_NE(r.out.find("WARN redis.aof"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("fix: redis-cli CONFIG SET appendonly yes"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("OK   redis.version"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("OK   clock.redis"), std::string::npos) << r.out;

  redis.Cli({"CONFIG", "SET", "maxmemory-policy", "allkeys-lru"});
  auto j = Ferry({"doctor", "--json"}, env);
  EXPECT_EQ(j.exit_code, 1);
  auto doc = nlohmann::json::parse(j.out);
  EXPECT_EQ(doc["status"], "FAIL");

  auto down = Ferry({"doctor"}, {{"FERRY_REDIS_URL", "redis://127.0.0.1:1"}});
  EXPECT_EQ(down.exit_code, 1);
  EXPECT_NE(down.out.find("FAIL redis.reachable"), std::string::npos) << down.out;
}

TEST(OpsConfig, ShowNamesSourcesAndMasksSecrets) {
  TempDir dir;
  const fs::path conf = dir.path() / "ferry.conf";
  std::ofstream(conf) << "redis-url = redis://:file-pass@127.0.0.1:6390\nlease = 12s\n"
                         "alert-webhook-secret = hush\n";
  auto r = Ferry({"--config", conf.string(), "config", "show", "--json"},
                 {{"FERRY_LEASE", "7s"}, {"FERRY_REDIS_URL", ""}});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.find("file-pass"), std::string::npos);
  EXPECT_EQ(r.out.find("hush"), std::string::npos);
  auto doc = nlohmann::json::parse(r.out);
  std::map<std::string, nlohmann::json> by;
  for (const auto& s : doc["settings"]) by[s["key"]] = s;
  EXPECT_EQ(by["lease"]["source"], "env");
  EXPECT_EQ(by["redis-url"]["source"], "file");
  EXPECT_EQ(by["redis-url"]["origin"], conf.string() + ":1");
  EXPECT_EQ(by["queues"]["source"], "default");
  // REDIS_URL, read when neither FERRY_REDIS_URL nor the file sets the URL, is shown as what is
  // used (it showed the default, while commands connected to it); the file still comes first.
  auto fallback_of = [&](const std::vector<std::string>& args) {
    auto shown = Ferry(args, {{"FERRY_REDIS_URL", ""}, {"REDIS_URL", "redis://127.0.0.1:6391"}});
    EXPECT_EQ(shown.exit_code, 0) << shown.err;
    const auto shown_doc = nlohmann::json::parse(shown.out);
    for (const auto& s : shown_doc["settings"]) {
      if (s["key"] == "redis-url") return s;
    }
    return nlohmann::json();
  };
  auto from_env = fallback_of({"config", "show", "--json"});
  EXPECT_EQ(from_env["value"], "redis://127.0.0.1:6391") << from_env;
  EXPECT_EQ(from_env["origin"], "REDIS_URL") << from_env;
  EXPECT_EQ(from_env["source"], "env") << from_env;
  EXPECT_EQ(fallback_of({"--config", conf.string(), "config", "show", "--json"})["origin"],
            conf.string() + ":1");
  auto missing = Ferry({"--config", "/nonexistent.conf", "config", "show"}, {});
  EXPECT_NE(missing.exit_code, 0);
}

// A slip in a key or a variable's name is said at start-up, with the setting meant; a line that
// is not text is refused, naming the byte.
TEST(OpsConfig, MistypedNamesAreSaidAndALineThatIsNotTextIsRefused) {
  TempDir dir;
  const fs::path conf = dir.path() / "ferry.conf";
  std::ofstream(conf) << "lese = 12s\n";
  auto r = Ferry({"--config", conf.string(), "config", "show"}, {{"FERRY_REDIS_ULR", "x"}});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("unknown key 'lese' (did you mean 'lease'?)"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("FERRY_REDIS_ULR is not a Ferry setting and is ignored; did you mean "
                       "FERRY_REDIS_URL?"),
            std::string::npos)
      << r.err;

  std::ofstream(conf) << "lease = 12s\n\x1b]0;title\x07x = 1\n";
  auto bad = Ferry({"--config", conf.string(), "config", "show"}, {});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find(conf.string() + ":2: byte 1 is the control character U+001B"),
            std::string::npos)
      << bad.err;
  EXPECT_EQ(bad.err.find('\x1b'), std::string::npos);
}

TEST(OpsDeploy, PrometheusRulesPassPromtool) {
  if (!Have("promtool")) GTEST_SKIP() << "promtool not installed";
  auto r = RunCommand(
      {"promtool", "check", "rules", (kSource / "deploy/prometheus/ferry-alerts.yml").string()},
      seconds(20));
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("SUCCESS"), std::string::npos);
  // What the rules decide, on series as servers report them (ferry-alerts.test.yml).
  auto t = RunCommand(
      {"promtool", "test", "rules", (kSource / "deploy/prometheus/ferry-alerts.test.yml").string()},
      seconds(20));
  EXPECT_EQ(t.exit_code, 0) << t.out << t.err;
  EXPECT_NE(t.out.find("SUCCESS"), std::string::npos) << t.out;
}

TEST(OpsDeploy, SystemdUnitsVerify) {
  if (!Have("systemd-analyze")) GTEST_SKIP() << "systemd-analyze not installed";
  TempDir dir;
  // ExecStart must exist: point the units at the built binary.
  std::vector<std::string> argv = {"systemd-analyze", "verify"};
  for (const char* name :
       {"ferry-server.service", "ferry-scheduler.service", "ferry-worker@.service"}) {
    std::ifstream in(kSource / "deploy/systemd" / name);
    std::stringstream ss;
    ss << in.rdbuf();
    std::string text = ss.str();
    const std::string from = "/usr/local/bin/ferry";
    ASSERT_NE(text.find(from), std::string::npos) << name;
    for (size_t p; (p = text.find(from)) != std::string::npos;) {
      text.replace(p, from.size(), FerryBinary());
    }
    std::string out_name = name;
    if (out_name == "ferry-worker@.service") out_name = "ferry-worker@1.service";  // an instance
    std::ofstream(dir.path() / out_name) << text;
    argv.push_back((dir.path() / out_name).string());
  }
  auto r = RunCommand(argv, seconds(30));
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  // Unknown keys and other complaints are warnings with exit 0: demand silence.
  EXPECT_EQ(r.err, "") << r.err;
  EXPECT_EQ(r.out, "") << r.out;
}

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Compose durations as this file writes them: "45s", "2m".
int ComposeSeconds(const std::string& d) {
  const int n = std::stoi(d.substr(0, d.size() - 1));
  return d.back() == 'm' ? n * 60 : n;
}

TEST(OpsDeploy, ComposeAndDockerfileStaticChecks) {
  // What can be checked without a container engine (deploy/docker/test.sh runs them for real
  // under FERRY_CONTAINER_TESTS=1): the compose file's shape and what it references.
  YAML::Node compose = YAML::LoadFile((kSource / "deploy/docker/compose.yaml").string());
  auto services = compose["services"];
  for (const char* s : {"redis", "postgres", "server", "worker", "scheduler"}) {
    EXPECT_TRUE(services[s]) << s;
  }
  EXPECT_EQ(services["worker"]["deploy"]["replicas"].as<int>(), 2);
  std::string redis_cmd;
  for (const auto& part : services["redis"]["command"]) redis_cmd += part.as<std::string>() + " ";
  EXPECT_NE(redis_cmd.find("--appendonly yes"), std::string::npos);
  EXPECT_NE(redis_cmd.find("--maxmemory-policy noeviction"), std::string::npos);
  // yaml-cpp resolves aliases but not "<<" merge keys: look in the merged mapping too.
  auto field = [](const YAML::Node& n, const std::string& key) {
    return n[key] ? n[key] : n["<<"][key];
  };
  EXPECT_EQ(field(services["server"], "env_file").as<std::string>(), "ferry.env");
  EXPECT_TRUE(fs::exists(kSource / "deploy/docker/ferry.env"));
  EXPECT_EQ(field(services["worker"], "build")["dockerfile"].as<std::string>(),
            "deploy/docker/Dockerfile");
  // Every Ferry process has a health check, so `depends_on: service_healthy` and operators see it.
  for (const char* s : {"redis", "postgres", "server", "worker", "scheduler"}) {
    EXPECT_TRUE(services[s]["healthcheck"]["test"]) << s;
  }

  // The worker's stop grace period outlasts its drain timeout (ferry.env), or a stop would kill
  // tasks that were still allowed to finish.
  const std::string env = ReadFile(kSource / "deploy/docker/ferry.env");
  const auto at = env.find("FERRY_DRAIN_TIMEOUT=");
  ASSERT_NE(at, std::string::npos);
  const std::string drain = env.substr(at + 20, env.find('\n', at) - at - 20);
  const std::string grace = services["worker"]["stop_grace_period"].as<std::string>();
  EXPECT_GT(ComposeSeconds(grace), ComposeSeconds(drain)) << grace << " vs " << drain;
  EXPECT_EQ(services["worker"]["stop_signal"].as<std::string>(), "SIGTERM");

  // The image: built through scripts/setup.sh's build group, stripped, runtime packages derived
  // from the binary, non-root, a health check, SIGTERM.
  const std::string dockerfile = ReadFile(kSource / "deploy/docker/Dockerfile");
  for (const char* line : {"FROM debian:12 AS build", "scripts/setup.sh build", "strip ",
                           "deploy/docker/runtime-packages.sh /ferry > /runtime-packages",
                           "$(cat /tmp/runtime-packages)", "FROM debian:12-slim",
                           "USER 10001:10001", "HEALTHCHECK ", "STOPSIGNAL SIGTERM"}) {
    EXPECT_NE(dockerfile.find(line), std::string::npos) << line;
  }
  EXPECT_TRUE(fs::exists(kSource / "scripts/setup.sh"));
  // The stand-ins and the workflows deploy/docker/test.sh uses exist.
  for (const char* f :
       {"deploy/docker/test/redis/Dockerfile", "deploy/docker/test/postgres/Dockerfile",
        "deploy/docker/test/compose.test.yaml", "deploy/docker/test/slow.yaml",
        "examples/hello.yaml"}) {
    EXPECT_TRUE(fs::exists(kSource / f)) << f;
  }
}

// deploy/ferry.env is where an operator of the services looks for a setting: every one the
// server, workers and scheduler read is there (set, or commented with its default). Only the
// client's (`--server`, tokens) and `ferry dev`'s own are not.
TEST(OpsDeploy, TheServicesEnvironmentFileNamesEverySetting) {
  const std::string env = ReadFile(kSource / "deploy/ferry.env");
  int checked = 0;
  for (const auto& s : ops::Settings()) {
    if (s.used_by == "client commands" || s.used_by == "dev") continue;
    const std::string name = ops::EnvNameOf(s.key);
    const bool named = env.find("\n" + name + "=") != std::string::npos ||
                       env.find("\n#" + name + "=") != std::string::npos;
    EXPECT_TRUE(named) << name << " (" << s.key << ", used by " << s.used_by << ")";
    ++checked;
  }
  EXPECT_GT(checked, 60);
}

// The runbook's `ferry doctor` line reads /etc/ferry/ferry.env as systemd does: run as written
// (the file's path swapped, `env` for `ferry doctor`) on the shipped file with every setting
// uncommented, each value arrives whole: FERRY_HANDLERS with its ';', the agent command with its
// space (sourcing the file with `.` cut the one and ran '{workspace}' as a command).
TEST(OpsDeploy, TheRunbooksDoctorLineReadsTheEnvironmentFileAsSystemdDoes) {
  const std::string runbook = ReadFile(kSource / "docs/runbook.md");
  const std::string prefix = "sudo sh -c '";
  const size_t at = runbook.find(prefix + "while IFS= read -r line;");
  ASSERT_NE(at, std::string::npos) << "the runbook's doctor line moved";
  const size_t end = runbook.find('\n', at);
  std::string script = runbook.substr(at + prefix.size(), end - at - prefix.size() - 1);
  TempDir dir;
  const fs::path env_file = dir.path() / "ferry.env";
  {
    std::ofstream out(env_file);
    std::istringstream lines(ReadFile(kSource / "deploy/ferry.env"));
    std::string line;
    while (std::getline(lines, line))
      out << (line.rfind("#FERRY_", 0) == 0 ? line.substr(1) : line) << "\n";
  }
  for (const auto& [from, to] : std::vector<std::pair<std::string, std::string>>{
           {"/etc/ferry/ferry.env", env_file.string()}, {"exec ferry doctor", "exec env"}}) {
    const size_t p = script.find(from);
    ASSERT_NE(p, std::string::npos) << from << " not in: " << script;
    script.replace(p, from.size(), to);
  }
  auto r = RunCommand({"sh", "-c", script}, seconds(20));
  ASSERT_EQ(r.exit_code, 0) << script << "\n" << r.err;
  EXPECT_NE(r.out.find("\nFERRY_HANDLERS=resize=exec:/opt/ferry/resize.py;charge=https://"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("\nFERRY_REMEDIATION_AGENT=/opt/ferry/agent.sh {workspace}\n"),
            std::string::npos)
      << r.out;
  EXPECT_EQ(r.err, "");
}

TEST(OpsDeploy, ContainerTestScriptsParse) {
  // The opt-in container test and the stand-ins' entrypoints at least parse in every run.
  for (const char* f : {"deploy/docker/test.sh", "deploy/docker/runtime-packages.sh",
                        "deploy/docker/test/postgres/postgres-entrypoint.sh"}) {
    auto r = RunCommand({"bash", "-n", (kSource / f).string()}, seconds(10));
    EXPECT_EQ(r.exit_code, 0) << f << ": " << r.err;
  }
  auto r =
      RunCommand({"sh", "-n", (kSource / "deploy/docker/test/redis/redis-entrypoint.sh").string()},
                 seconds(10));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  YAML::Node extra = YAML::LoadFile((kSource / "deploy/docker/test/compose.test.yaml").string());
  EXPECT_TRUE(extra["services"]["server"]["environment"]["FERRY_SECRET_HELLO_WEBHOOK"]);
}

TEST(OpsDeploy, RuntimePackagesOfTheBinary) {
  // The image's runtime stage installs what deploy/docker/runtime-packages.sh prints for the
  // built binary: every library it loads must map to an installed Debian package.
  if (!Have("dpkg-query") || !Have("ldd")) GTEST_SKIP() << "not a Debian system";
  const std::string script = (kSource / "deploy/docker/runtime-packages.sh").string();
  auto r = RunCommand({script, FerryBinary()}, seconds(60));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::set<std::string> pkgs;
  std::istringstream lines(r.out);
  for (std::string p; std::getline(lines, p);) pkgs.insert(p);
  for (const char* p : {"libc6", "libhiredis0.14", "libpq5", "libsqlite3-0", "libcurl4",
                        "libyaml-cpp0.7", "liblua5.4-0", "libssl3"}) {
    EXPECT_EQ(pkgs.count(p), 1u) << p << " missing from:\n" << r.out;
  }
  std::vector<std::string> query = {"dpkg-query", "-W", "-f=${Package} ${Status}\n"};
  for (const auto& p : pkgs) {
    EXPECT_EQ(p.find(':'), std::string::npos) << "architecture suffix left on " << p;
    query.push_back(p);
  }
  auto status = RunCommand(query, seconds(60));
  EXPECT_EQ(status.exit_code, 0) << status.err;
  for (const auto& p : pkgs) {
    EXPECT_NE(status.out.find(p + " install ok installed\n"), std::string::npos) << p;
  }

  // A library that no package owns (a copy the loader finds first) fails, naming it.
  TempDir dir;
  auto where =
      RunCommand({"sh", "-c", "ldd '" + FerryBinary() + "' | awk '$1 ~ /^libhiredis/ {print $3}'"},
                 seconds(10));
  const std::string lib = where.out.substr(0, where.out.find('\n'));
  ASSERT_FALSE(lib.empty()) << "ferry does not load libhiredis";
  const fs::path copy = dir.path() / fs::path(lib).filename();
  fs::copy_file(lib, copy);
  auto orphan =
      RunCommand({script, FerryBinary()}, seconds(60), {{"LD_LIBRARY_PATH", dir.path().string()}});
  EXPECT_EQ(orphan.exit_code, 1) << orphan.out;
  EXPECT_NE(orphan.err.find(copy.string()), std::string::npos) << orphan.err;

  // Usage errors.
  EXPECT_EQ(RunCommand({script}, seconds(10)).exit_code, 2);
  EXPECT_EQ(RunCommand({script, (dir.path() / "absent").string()}, seconds(10)).exit_code, 2);
}

}  // namespace
}  // namespace ferry
