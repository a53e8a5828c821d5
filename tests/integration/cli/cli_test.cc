// The `ferry` binary end to end: real redis-server (tests/support), real worker processes, every
// command's output and exit code. Each test uses its own key prefix and Redis server.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "harness.h"

namespace ferry::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using Json = nlohmann::json;
using SteadyClock = std::chrono::steady_clock;

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

Json ParseOrFail(const std::string& text) {
  Json j = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  EXPECT_FALSE(j.is_discarded()) << "not JSON:\n" << text;
  return j;
}

// Runs `ferry` against one Redis server and key prefix.
class FerryCli {
 public:
  FerryCli(std::string url, std::string prefix)
      : url_(std::move(url)), prefix_(std::move(prefix)) {}

  std::vector<std::string> Argv(const std::vector<std::string>& args) const {
    std::vector<std::string> argv = {FerryBinary(), "--redis-url", url_, "--prefix", prefix_};
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
  }
  CommandResult Run(const std::vector<std::string>& args,
                    milliseconds timeout = seconds(20)) const {
    return RunCommand(Argv(args), timeout, {{"NO_COLOR", "1"}});
  }
  Json RunJson(const std::vector<std::string>& args) const {
    std::vector<std::string> a = {"--json"};
    a.insert(a.end(), args.begin(), args.end());
    auto r = Run(a);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return ParseOrFail(r.out);
  }
  // A list command's items: every --json list is {"<plural>": [...], "next_cursor": ...}.
  Json List(const std::vector<std::string>& args, const std::string& plural) const {
    Json j = RunJson(args);
    bool shaped =
        j.is_object() && j.contains(plural) && j[plural].is_array() && j.contains("next_cursor");
    EXPECT_TRUE(shaped) << j.dump();
    return shaped ? j[plural] : Json::array();
  }
  std::string Submit(const std::vector<std::string>& args) const {
    std::vector<std::string> a = {"task", "submit"};
    a.insert(a.end(), args.begin(), args.end());
    auto r = Run(a);
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    return Trim(r.out);
  }
  Json Task(const std::string& id) const { return RunJson({"task", "status", id})["task"]; }
  std::string Status(const std::string& id) const {
    Json t = Task(id);
    return t.is_object() && t.contains("status") ? t["status"].get<std::string>() : "";
  }
  bool WaitStatus(const std::string& id, const std::string& status, milliseconds timeout) const {
    return Eventually([&] { return Status(id) == status; }, timeout);
  }
  std::unique_ptr<Process> StartWorker(const std::string& worker_id,
                                       const std::vector<std::string>& extra = {}) const {
    std::vector<std::string> args = {"worker",  "start",         "--worker-id",
                                     worker_id, "--concurrency", "2"};
    args.insert(args.end(), extra.begin(), extra.end());
    return std::make_unique<Process>(Process::Options{Argv(args), {{"NO_COLOR", "1"}}, "", ""});
  }
  // The same as another user (setpriv; root only): what that user's programs may see of it.
  std::unique_ptr<Process> StartWorkerAsNobody(const std::string& worker_id,
                                               std::map<std::string, std::string> env) const {
    std::vector<std::string> argv = {"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"};
    for (const auto& a :
         Argv({"worker", "start", "--worker-id", worker_id, "--concurrency", "1"})) {
      argv.push_back(a);
    }
    env["NO_COLOR"] = "1";
    return std::make_unique<Process>(Process::Options{argv, env, "/tmp", ""});
  }
  const std::string& url() const { return url_; }

 private:
  std::string url_;
  std::string prefix_;
};

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    prefix_ = std::string("clitest-") + info->name();
    redis_ = std::make_unique<RedisServer>(RedisServer::Options{"", false});
    ferry_ = std::make_unique<FerryCli>(redis_->url(), prefix_);
  }
  FerryCli& ferry() { return *ferry_; }

  std::string prefix_;
  std::unique_ptr<RedisServer> redis_;
  std::unique_ptr<FerryCli> ferry_;
};

TEST_F(CliTest, SubmittedTaskRunsOnWorkerAndStatusShowsSucceeded) {
  auto worker = ferry().StartWorker("w-basic");
  std::string id = ferry().Submit({"echo", "--payload", R"({"hello":"world"})"});
  ASSERT_EQ(id.size(), 26u) << id;
  ASSERT_TRUE(ferry().WaitStatus(id, "succeeded", seconds(15))) << worker->Stderr();
  Json t = ferry().Task(id);
  EXPECT_EQ(t["result"], Json::parse(R"({"hello":"world"})"));
  EXPECT_EQ(t["worker"], "w-basic");
  EXPECT_EQ(t["attempts"], 1);

  auto human = ferry().Run({"task", "status", id});
  EXPECT_EQ(human.exit_code, 0);
  EXPECT_TRUE(Contains(human.out, "succeeded")) << human.out;
  EXPECT_TRUE(Contains(human.out, id));
  EXPECT_TRUE(Contains(human.out, "w-basic"));

  // --wait exits 0 for a success and 1 for a failure.
  auto ok = ferry().Run(
      {"task", "submit", "echo", "--payload", "[1,2]", "--wait", "--wait-timeout", "15s"});
  EXPECT_EQ(ok.exit_code, 0) << ok.out << ok.err;
  EXPECT_TRUE(Contains(ok.out, "succeeded")) << ok.out;
  auto bad = ferry().Run({"task", "submit", "fail", "--payload", R"({"retryable":false})", "--wait",
                          "--wait-timeout", "15s"});
  EXPECT_EQ(bad.exit_code, 1) << bad.out << bad.err;
  EXPECT_TRUE(Contains(bad.out, "failed")) << bad.out;
}

// A task's error is what its program wrote: shown, it must not act on the terminal (set its
// title, move the cursor, colour or hide text); with --json it is the JSON escape, as written.
TEST_F(CliTest, HostileTextIsShownNotActedOn) {
  auto worker = ferry().StartWorker("w-hostile");
  const std::string hostile =
      "\x1b]0;pwned\x07\x1b[2Jfake\rline\xe2\x80\xae boom \x1b[31mred\x1b[0m \x1b[8mhidden";
  auto submitted = ferry().Run({"--json", "task", "submit", "fail", "--payload",
                                Json{{"message", hostile}, {"retryable", false}}.dump(), "--wait",
                                "--wait-timeout", "15s"});
  EXPECT_EQ(submitted.exit_code, 1) << submitted.err;  // the task failed, as asked
  Json done = ParseOrFail(submitted.out);
  ASSERT_TRUE(done.contains("id")) << done.dump();
  const std::string id = done["id"];
  auto human = ferry().Run({"task", "status", id});
  EXPECT_EQ(human.exit_code, 0) << human.err;
  EXPECT_TRUE(Contains(human.out, "␛]0;pwned␇␛[2Jfake␍line<U+202E> boom ␛[31mred␛[0m ␛[8mhidden"))
      << human.out;
  EXPECT_FALSE(Contains(human.out, "\x1b")) << human.out;
  EXPECT_FALSE(Contains(human.out, "\r")) << human.out;
  Json shown = ferry().RunJson({"task", "status", id});
  EXPECT_EQ(shown["task"]["error"], hostile) << shown.dump();
}

TEST_F(CliTest, JsonOutputsParse) {
  auto worker = ferry().StartWorker("w-json");
  auto sub = ferry().RunJson({"task", "submit", "noop"});
  ASSERT_TRUE(sub.contains("id"));
  std::string id = sub["id"];
  ASSERT_TRUE(ferry().WaitStatus(id, "succeeded", seconds(15)));
  ASSERT_TRUE(Eventually(
      [&] {
        return ferry().List({"worker", "list"}, "workers").size() == 1;
      },
      seconds(10)));

  EXPECT_TRUE(ferry().List({"task", "list"}, "tasks").is_array());
  EXPECT_EQ(ferry().RunJson({"task", "status", id})["task"]["id"], id);
  Json queues = ferry().List({"queue", "list"}, "queues");
  ASSERT_TRUE(queues.is_array());
  ASSERT_FALSE(queues.empty());
  EXPECT_EQ(queues[0]["queue"], "default");
  EXPECT_TRUE(ferry().RunJson({"queue", "stats", "default"})["queue"].is_object());
  EXPECT_TRUE(ferry().List({"queue", "dead", "default"}, "tasks").is_array());
  Json workers = ferry().List({"worker", "list"}, "workers");
  EXPECT_EQ(workers[0]["id"], "w-json");
  EXPECT_TRUE(ferry().RunJson({"version"}).contains("version"));

  // Global flags may also come after the subcommand; events are JSON lines.
  auto events = ferry().Run({"task", "events", id, "--json"});
  ASSERT_EQ(events.exit_code, 0) << events.err;
  size_t start = 0;
  int lines = 0;
  while (start < events.out.size()) {
    size_t nl = events.out.find('\n', start);
    std::string line = events.out.substr(start, nl - start);
    if (!line.empty()) {
      EXPECT_TRUE(ParseOrFail(line).contains("type"));
      ++lines;
    }
    if (nl == std::string::npos) break;
    start = nl + 1;
  }
  EXPECT_GE(lines, 2) << events.out;

  // Errors with --json are JSON too.
  auto missing = ferry().Run({"--json", "task", "status", "01ARZ3NDEKTSV4RRFFQ69G5FAV"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_EQ(ParseOrFail(missing.out)["error"]["code"], "not_found");
}

TEST_F(CliTest, StatusFilterIsCaseInsensitive) {
  std::string id = ferry().Submit({"noop", "--queue", "nobody-serves-this"});
  for (std::string s : {"pending", "PENDING", "Pending"}) {
    Json list = ferry().List({"task", "list", "--status", s}, "tasks");
    ASSERT_EQ(list.size(), 1u) << s << list.dump();
    EXPECT_EQ(list[0]["id"], id);
  }
  EXPECT_TRUE(ferry().List({"task", "list", "--status", "SUCCEEDED"}, "tasks").empty());
  auto human = ferry().Run({"task", "list", "--status", "Pending"});
  EXPECT_EQ(human.exit_code, 0);
  EXPECT_TRUE(Contains(human.out, id)) << human.out;

  auto bad = ferry().Run({"task", "list", "--status", "finished"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_TRUE(Contains(bad.err, "unknown status 'finished'")) << bad.err;
  EXPECT_TRUE(Contains(bad.err, "succeeded")) << bad.err;
}

TEST_F(CliTest, UnknownIdsExitOneWithAClearMessage) {
  const std::string id = "01ARZ3NDEKTSV4RRFFQ69G5FAV";
  for (const auto& verb : {"status", "cancel", "retry", "events"}) {
    auto r = ferry().Run({"task", verb, id});
    EXPECT_EQ(r.exit_code, 1) << verb << ": " << r.err;
    EXPECT_TRUE(Contains(r.err, "no task " + id)) << verb << ": " << r.err;
    // Not an id at all (lower case, one character short): a usage error naming it.
    for (const std::string& bad : {std::string("01arz3ndektsv4rrffq69g5fav"), id.substr(1)}) {
      auto m = ferry().Run({"task", verb, bad});
      EXPECT_EQ(m.exit_code, 2) << verb << " " << bad << ": " << m.err;
      EXPECT_TRUE(Contains(m.err, "malformed task id '" + bad + "'")) << verb << ": " << m.err;
    }
  }
}

TEST_F(CliTest, UsageErrorsExitTwo) {
  auto payload = ferry().Run({"task", "submit", "echo", "--payload", R"({"a": 1,})"});
  EXPECT_EQ(payload.exit_code, 2);
  EXPECT_TRUE(Contains(payload.err, "--payload is not valid JSON")) << payload.err;
  EXPECT_TRUE(Contains(payload.err, "byte 9")) << "the parse error position: " << payload.err;

  EXPECT_EQ(ferry().Run({"task", "submit", "echo", "--max-attempts", "0"}).exit_code, 2);
  EXPECT_EQ(ferry().Run({"task", "submit", "echo", "--delay", "soon"}).exit_code, 2);
  // Past the longest per-attempt timeout (7 days), named as the flag (it said "timeout must be
  // ...", the API's field).
  auto timeout = ferry().Run({"task", "submit", "echo", "--timeout", "200h"});
  EXPECT_EQ(timeout.exit_code, 2) << timeout.err;
  EXPECT_EQ(timeout.err, "ferry: --timeout: must be from 1ms to 168h00m, not '200h'\n");
  EXPECT_EQ(ferry().Run({"task", "submit", "echo", "--timeout", "0s"}).exit_code, 2);
  EXPECT_EQ(ferry().Run({"task", "submit", "echo", "--eta", "tomorrow"}).exit_code, 2);
  EXPECT_EQ(ferry().Run({"task", "submit", "echo", "--queue", "bad queue"}).exit_code, 2);
  EXPECT_EQ(ferry().Run({"task", "frobnicate"}).exit_code, 2);
  auto unknown_flag = ferry().Run({"task", "list", "--no-such-flag"});
  EXPECT_EQ(unknown_flag.exit_code, 2);
  // Usage errors read as every other error does.
  EXPECT_EQ(unknown_flag.err.rfind("ferry: ", 0), 0u) << unknown_flag.err;
  EXPECT_EQ(ferry().Run({}).exit_code, 2);
  EXPECT_EQ(ferry().Run({"worker", "start", "--concurrency", "zero"}).exit_code, 2);
  EXPECT_EQ(ferry().Run({"worker", "start", "--lease", "forever"}).exit_code, 2);
  // Every list's --limit is read as the numeric settings are, one past each end and past an int
  // alike (CLI11 said "Could not convert: --limit = 99999999999" for the last).
  for (const auto& [args, value] : std::vector<std::pair<std::vector<std::string>, std::string>>{
           {{"queue", "dead", "default", "--limit"}, "99999999999"},
           {{"queue", "dead", "default", "--limit"}, "1001"},
           {{"task", "list", "--limit"}, "0"},
           {{"run", "list", "--limit"}, "ten"},
           {{"remediation", "list", "-n"}, "2147483648"}}) {
    auto with = args;
    with.push_back(value);
    auto limit = ferry().Run(with);
    EXPECT_EQ(limit.exit_code, 2) << args[0] << " " << value << ": " << limit.err;
    EXPECT_EQ(limit.err, "ferry: --limit: expected an integer from 1 to 1000, not '" + value +
                             "'\nRun with --help for more information.\n")
        << args[0];
  }
  EXPECT_EQ(ferry().Run({"task", "list", "--limit", "1000"}).exit_code, 0);
  auto config = ferry().Run({"task", "list", "--config", "/nonexistent/ferry.conf"});
  EXPECT_EQ(config.exit_code, 2) << config.err;
  EXPECT_TRUE(Contains(config.err, "config file /nonexistent/ferry.conf: no such file"))
      << config.err;
  auto help = ferry().Run({"--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_TRUE(Contains(help.out, "task")) << help.out;
}

// A misspelt command is named, with the closest one, wherever global options stand; a missing
// one names the commands there are. A command that takes words of its own is not "misspelt".
TEST_F(CliTest, AMisspeltOrMissingCommandIsNamed) {
  for (const std::vector<std::string>& argv :
       {std::vector<std::string>{"task", "lst"}, {"--prefix", "x", "task", "--json", "lst"}}) {
    auto r = ferry().Run(argv);
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_TRUE(
        Contains(r.err,
                 "unknown command 'ferry task lst'; did you mean 'ferry task list'? (`ferry task "
                 "--help` lists them)"))
        << r.err;
  }
  auto top = ferry().Run({"tsk", "list"});
  EXPECT_EQ(top.exit_code, 2);
  EXPECT_TRUE(Contains(top.err, "unknown command 'ferry tsk'; did you mean 'ferry task'?"))
      << top.err;
  auto far = ferry().Run({"task", "zzzzzzzz"});
  EXPECT_EQ(far.exit_code, 2);
  EXPECT_TRUE(Contains(far.err, "unknown command 'ferry task zzzzzzzz' (")) << far.err;
  auto missing = ferry().Run({"queue"});
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_TRUE(Contains(missing.err,
                       "'ferry queue' needs one of its commands: list, stats, dead, "
                       "retry, purge, delete"))
      << missing.err;
  auto json = ferry().Run({"--json", "task", "lst"});
  EXPECT_EQ(json.exit_code, 2);
  EXPECT_TRUE(Contains(json.out, R"("message":"unknown command 'ferry task lst')")) << json.out;
  // An option no command on the line has is named with the command it was given to and the
  // closest option of that command or the global ones (not CLI11's "The following arguments
  // were not expected: 3 --limt", its value first).
  auto flag = ferry().Run({"task", "list", "--limt", "3"});
  EXPECT_EQ(flag.exit_code, 2);
  EXPECT_TRUE(Contains(flag.err,
                       "ferry: unknown option '--limt' for 'ferry task list'; did you "
                       "mean '--limit'? (`ferry task list --help` lists its options)"))
      << flag.err;
  auto global = ferry().Run({"--prefx", "x", "task", "list"});
  EXPECT_EQ(global.exit_code, 2);
  EXPECT_TRUE(
      Contains(global.err, "unknown option '--prefx' for 'ferry'; did you mean '--prefix'?"))
      << global.err;
  // Given as --name=value, after the command's own words and a global option's value.
  auto inline_value =
      ferry().Run({"--log-level", "warn", "workflow", "run", "hello", "--inputs={}", "--json"});
  EXPECT_EQ(inline_value.exit_code, 2);
  EXPECT_TRUE(Contains(inline_value.err,
                       "unknown option '--inputs' for 'ferry workflow run'; did you mean "
                       "'--input'?"))
      << inline_value.err;
  EXPECT_TRUE(Contains(inline_value.out, R"("message":"unknown option '--inputs')"))
      << inline_value.out;
  auto far_flag = ferry().Run({"task", "list", "--zzzzzzzz"});
  EXPECT_EQ(far_flag.exit_code, 2);
  EXPECT_TRUE(Contains(far_flag.err, "unknown option '--zzzzzzzz' for 'ferry task list' (`"))
      << far_flag.err;
}

// Input the API refuses is refused by the CLI too, with exit 2 and the reason (issue: a payload
// 64,000 levels deep used to crash `ferry task submit` with SIGSEGV).
TEST_F(CliTest, HostileInputExitsTwoNamingTheProblem) {
  const std::string deep = std::string(64000, '[') + std::string(64000, ']');
  auto r = ferry().Run({"task", "submit", "echo", "--payload", deep});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_TRUE(Contains(r.err, "nested deeper than the limit of 128 levels")) << r.err;

  // One level under the limit is accepted; the limit itself is where refusal starts.
  const std::string ok = std::string(127, '[') + std::string(127, ']');
  EXPECT_EQ(ferry().Run({"task", "submit", "echo", "--payload", ok}).exit_code, 0);
  const std::string over = std::string(129, '[') + std::string(129, ']');
  EXPECT_EQ(ferry().Run({"task", "submit", "echo", "--payload", over}).exit_code, 2);

  auto big = ferry().Run({"task", "submit", "echo", "--payload", R"({"n": 1e999})"});
  EXPECT_EQ(big.exit_code, 2) << big.err;
  EXPECT_TRUE(Contains(big.err, "out of range")) << big.err;

  auto run = ferry().Run({"task", "submit", "ferry.run"});
  EXPECT_EQ(run.exit_code, 2) << run.err;
  EXPECT_TRUE(Contains(run.err, "ferry workflow run")) << run.err;

  // Scripts that asked for --json get usage errors as JSON on stdout.
  auto usage = ferry().Run({"--json", "task", "list", "--no-such-flag"});
  EXPECT_EQ(usage.exit_code, 2);
  Json err = ParseOrFail(usage.out);
  EXPECT_EQ(err["error"]["code"], "invalid_argument") << usage.out;
  EXPECT_TRUE(Contains(err["error"]["message"].get<std::string>(), "--no-such-flag")) << usage.out;

  Json tasks = ferry().List({"task", "list"}, "tasks");
  EXPECT_EQ(tasks.size(), 1u) << "only the 127-deep payload was accepted: " << tasks.dump();
}

TEST_F(CliTest, UnreachableRedisExitsThreeQuickly) {
  int port = FreePort();  // nothing listens there
  std::string url = "redis://:hunter2@127.0.0.1:" + std::to_string(port);
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"task", "list"}, {"task", "submit", "noop"}, {"worker", "list"}, {"worker", "start"}}) {
    auto start = SteadyClock::now();
    std::vector<std::string> argv = {FerryBinary(), "--redis-url", url};
    argv.insert(argv.end(), args.begin(), args.end());
    auto r = RunCommand(argv, seconds(15));
    auto took = SteadyClock::now() - start;
    EXPECT_EQ(r.exit_code, 3) << args[0] << " " << args[1] << ": " << r.err;
    // Gives up after its few connection attempts instead of retrying until killed at 15 s.
    EXPECT_LT(took, seconds(12));
    EXPECT_TRUE(Contains(
        r.err, "cannot connect to Redis at redis://:****@127.0.0.1:" + std::to_string(port)))
        << r.err;
    EXPECT_TRUE(Contains(r.err, "Connection refused")) << r.err;
    EXPECT_FALSE(Contains(r.err + r.out, "hunter2")) << "password leaked";
  }
}

// A setting with a floor is checked with the others, before the store is opened or Redis
// dialled: refused as a usage error naming the setting, while the floor itself passes and the
// command goes on to find Redis unreachable (exit 3). The floors are what the worker and the
// scheduler enforce themselves (kMinTaskLease, scheduler::kMinTick, scheduler::kMinLease); the
// alert interval is judged alike by every command that takes it.
TEST(CliSettings, FloorsAndTheAlertIntervalAreCheckedBeforeAnythingIsOpened) {
  TempDir dir;
  const std::string store = (dir.path() / "ferry.db").string();
  const std::string unreachable = "redis://127.0.0.1:" + std::to_string(FreePort());
  auto run = [&](std::vector<std::string> args) {
    std::vector<std::string> argv = {FerryBinary(), "--redis-url", unreachable};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv, seconds(30), {{"NO_COLOR", "1"}, {"FERRY_STORE", store}});
  };
  struct Case {
    std::vector<std::string> refused;
    std::string message;
    std::vector<std::string> at_floor;
  };
  for (const Case& c : std::vector<Case>{
           {{"worker", "start", "--lease", "99ms"},
            "--lease: must be at least 100ms, not '99ms'",
            {"worker", "start", "--lease", "100ms"}},
           {{"scheduler", "start", "--tick", "99ms"},
            "--tick: must be at least 100ms, not '99ms'",
            {"scheduler", "start", "--tick", "100ms"}},
           {{"scheduler", "start", "--lease", "499ms"},
            "--lease: must be at least 500ms, not '499ms'",
            {"scheduler", "start", "--lease", "500ms"}},
           {{"scheduler", "start", "--alert-interval", "0"},
            "--alert-interval: must be greater than zero",
            {"scheduler", "start", "--alert-interval", "1ms"}},
           {{"server", "start", "--alert-interval", "0"},
            "--alert-interval: must be greater than zero",
            {"server", "start", "--alert-interval", "1ms"}},
           {{"alerts", "--alert-interval", "0"},
            "--alert-interval: must be greater than zero",
            {"alerts", "--alert-interval", "1ms"}},
       }) {
    const std::string what = c.refused[0] + " " + c.refused[c.refused.size() - 2];
    auto refused = run(c.refused);
    EXPECT_EQ(refused.exit_code, 2) << what << ": " << refused.err;
    EXPECT_TRUE(Contains(refused.err, "ferry: " + c.message + "\n")) << what << ": " << refused.err;
    EXPECT_FALSE(std::filesystem::exists(store)) << what << ": the store was opened first";
    auto at_floor = run(c.at_floor);
    EXPECT_EQ(at_floor.exit_code, 3) << what << " at its floor: " << at_floor.err;
    EXPECT_TRUE(Contains(at_floor.err, "cannot connect to Redis")) << what << ": " << at_floor.err;
    std::filesystem::remove(store);
  }
}

// The store is reached as Redis is: one it cannot reach is exit 3 too (docs/cli.md "Exit codes"),
// naming it with its password masked, from the commands that read it and the processes that
// serve from it alike.
TEST(CliStore, AnUnreachableStoreExitsThreeNamingIt) {
  const std::string port = std::to_string(FreePort());  // nothing listens there
  const std::string store = "postgresql://ferry:hunter2@127.0.0.1:" + port + "/ferry";
  for (const auto& args :
       std::vector<std::vector<std::string>>{{"run", "list"},
                                             {"workflow", "list"},
                                             {"server", "start", "--listen", "127.0.0.1:0"},
                                             {"scheduler", "start"}}) {
    std::vector<std::string> argv = {FerryBinary()};
    argv.insert(argv.end(), args.begin(), args.end());
    auto r = RunCommand(argv, seconds(30), {{"NO_COLOR", "1"}, {"FERRY_STORE", store}});
    EXPECT_EQ(r.exit_code, 3) << args[0] << ": " << r.err;
    EXPECT_TRUE(Contains(
        r.err,
        "ferry: cannot open the store at postgresql://ferry:****@127.0.0.1:" + port + "/ferry"))
        << args[0] << ": " << r.err;
    EXPECT_FALSE(Contains(r.out + r.err, "hunter2")) << args[0] << ": password leaked";
  }
}

// A command that only reads or changes what a store holds makes no store where there is none: a
// mistyped --store or FERRY_STORE is a usage error naming it (exit 2), the default location with
// nothing there yet says so (exit 1), and an empty --store is refused rather than taken for the
// default. Neither file nor data directory is left behind; `workflow apply` makes the store.
TEST(CliStore, ACommandThatOnlyReadsMakesNoStoreWhereThereIsNone) {
  TempDir dir;
  const std::string typo = (dir.path() / "fery.db").string();
  const std::string data_dir = (dir.path() / "data").string();
  auto run = [&](std::vector<std::string> args, std::map<std::string, std::string> env) {
    std::vector<std::string> argv = {FerryBinary()};
    argv.insert(argv.end(), args.begin(), args.end());
    env.emplace("NO_COLOR", "1");
    env.emplace("FERRY_DATA_DIR", data_dir);
    return RunCommand(argv, seconds(30), env);
  };
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"run", "list"}, {"workflow", "list"}, {"run", "show", "01J00000000000000000000000"}}) {
    auto with_store = [&](const std::string& store) {
      auto with = args;
      with.insert(with.end(), {"--store", store});
      return run(with, {});
    };
    auto flag = with_store(typo);
    EXPECT_EQ(flag.exit_code, 2) << args[1] << ": " << flag.err;
    EXPECT_TRUE(
        Contains(flag.err, "ferry: --store: no store at " + typo + ": nothing has made one"))
        << flag.err;
    auto env = run(args, {{"FERRY_STORE", typo}});
    EXPECT_EQ(env.exit_code, 2) << args[1] << ": " << env.err;
    EXPECT_TRUE(Contains(env.err, "ferry: FERRY_STORE: no store at " + typo)) << env.err;
    auto fallback = run(args, {});
    EXPECT_EQ(fallback.exit_code, 1) << args[1] << ": " << fallback.err;
    EXPECT_TRUE(Contains(fallback.err, "no store at " + data_dir + "/ferry.db yet"))
        << fallback.err;
    auto empty = with_store("");
    EXPECT_EQ(empty.exit_code, 2) << args[1] << ": " << empty.err;
    EXPECT_TRUE(Contains(empty.err, "ferry: --store: must not be empty")) << empty.err;
  }
  EXPECT_FALSE(std::filesystem::exists(typo));
  EXPECT_FALSE(std::filesystem::exists(data_dir));

  // An apply that is refused makes no store either, whether the flag names it or it would be
  // the data directory's, and says why in the same words as with a store there (--json too).
  const auto bad = dir.path() / "bad.yaml";
  {
    std::FILE* f = std::fopen(bad.c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fputs("name: bad\nnodes:\n  a:\n    kind: shell\n    needs: [nope]\n    argv: [x]\n", f);
    std::fclose(f);
  }
  auto refused = run({"workflow", "apply", bad.string(), "--store", typo}, {});
  EXPECT_EQ(refused.exit_code, 2) << refused.err;
  EXPECT_TRUE(Contains(refused.err, bad.string() + " is not a valid workflow (1 problem):"))
      << refused.err;
  EXPECT_TRUE(Contains(refused.err, bad.string() + ": line 5")) << refused.err;
  auto refused_json = run({"--json", "workflow", "apply", bad.string()}, {});
  EXPECT_EQ(refused_json.exit_code, 2) << refused_json.err;
  const Json answer =
      Json::parse(refused_json.out.empty() ? refused_json.err : refused_json.out, nullptr, false);
  ASSERT_FALSE(answer.is_discarded()) << refused_json.out << refused_json.err;
  EXPECT_EQ(answer["error"]["diagnostics"][0]["line"], 5) << answer.dump();
  EXPECT_FALSE(std::filesystem::exists(typo));
  EXPECT_FALSE(std::filesystem::exists(data_dir));

  const std::string hello = std::string(FERRY_SOURCE_DIR) + "/examples/hello.yaml";
  auto applied = run({"workflow", "apply", hello, "--store", typo}, {});
  EXPECT_EQ(applied.exit_code, 0) << applied.err;
  auto listed = run({"workflow", "list", "--store", typo}, {});
  EXPECT_EQ(listed.exit_code, 0) << listed.err;
  EXPECT_TRUE(Contains(listed.out, "hello")) << listed.out;
}

// A --store that names a file that is not a SQLite database is a bad value of the setting that
// named it (exit 2, naming it), not an internal error (it was exit 1): retrying cannot help. The
// commands that make a store refuse it too, and leave the file as it was.
TEST(CliStore, AFileThatIsNotADatabaseIsABadStoreSetting) {
  TempDir dir;
  const std::string text = (dir.path() / "passwd").string();
  const std::string content = "root:x:0:0:root:/root:/bin/bash\n";
  {
    std::ofstream f(text);
    f << content;
  }
  auto run = [&](std::vector<std::string> args, std::map<std::string, std::string> env) {
    std::vector<std::string> argv = {FerryBinary()};
    argv.insert(argv.end(), args.begin(), args.end());
    env.emplace("NO_COLOR", "1");
    env.emplace("FERRY_DATA_DIR", (dir.path() / "data").string());
    return RunCommand(argv, seconds(30), env);
  };
  const std::string why =
      "cannot open the store at " + text + ": the file is not a SQLite database";
  const std::string hello = std::string(FERRY_SOURCE_DIR) + "/examples/hello.yaml";
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"workflow", "list"}, {"run", "list"}, {"workflow", "apply", hello}}) {
    auto with = args;
    with.insert(with.end(), {"--store", text});
    auto flag = run(with, {});
    EXPECT_EQ(flag.exit_code, 2) << args[1] << ": " << flag.err;
    EXPECT_TRUE(Contains(flag.err, "ferry: --store: " + why + "\n")) << flag.err;
    auto env = run(args, {{"FERRY_STORE", text}});
    EXPECT_EQ(env.exit_code, 2) << args[1] << ": " << env.err;
    EXPECT_TRUE(Contains(env.err, "ferry: FERRY_STORE: " + why + "\n")) << env.err;
  }
  std::ifstream f(text);
  std::stringstream after;
  after << f.rdbuf();
  EXPECT_EQ(after.str(), content);
  // Nothing is made beside it either (a write-precedence lock, a WAL): the file is all there is.
  std::vector<std::string> beside;
  for (const auto& entry : std::filesystem::directory_iterator(dir.path())) {
    beside.push_back(entry.path().filename().string());
  }
  EXPECT_EQ(beside, std::vector<std::string>{"passwd"});
}

TEST_F(CliTest, WrongPasswordExitsThree) {
  RedisServer secured(RedisServer::Options{"right-password", false});
  std::string url = "redis://:not-it@127.0.0.1:" + std::to_string(secured.port());
  auto r = RunCommand({FerryBinary(), "--redis-url", url, "task", "list"}, seconds(15));
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_TRUE(Contains(Lower(r.err), "password")) << r.err;
  EXPECT_FALSE(Contains(r.err, "not-it")) << "password leaked: " << r.err;

  auto ok = RunCommand({FerryBinary(), "--redis-url", secured.url(), "task", "list"}, seconds(15));
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
}

// A URL whose database index the server does not have (16 by default, 0-15) is a bad value of
// the setting that gave it (exit 2, naming it and the index), not an internal error (exit 1).
TEST_F(CliTest, ADatabaseIndexRedisDoesNotHaveIsABadRedisUrl) {
  const std::string where = "127.0.0.1:" + std::to_string(redis_->port());
  const std::string why = "the URL's database index 99 is out of range for Redis at " + where;
  auto flag = RunCommand({FerryBinary(), "--redis-url", redis_->url() + "/99", "task", "list"},
                         seconds(15), {{"NO_COLOR", "1"}});
  EXPECT_EQ(flag.exit_code, 2) << flag.err;
  EXPECT_TRUE(Contains(flag.err, "ferry: --redis-url: " + why)) << flag.err;
  auto env = RunCommand({FerryBinary(), "queue", "list"}, seconds(15),
                        {{"NO_COLOR", "1"}, {"FERRY_REDIS_URL", redis_->url() + "/99"}});
  EXPECT_EQ(env.exit_code, 2) << env.err;
  EXPECT_TRUE(Contains(env.err, "ferry: FERRY_REDIS_URL: " + why)) << env.err;
  auto last = RunCommand({FerryBinary(), "--redis-url", redis_->url() + "/15", "task", "list"},
                         seconds(15), {{"NO_COLOR", "1"}});
  EXPECT_EQ(last.exit_code, 0) << last.err;
}

TEST_F(CliTest, QueueDeadListsANonRetryableFailure) {
  auto worker = ferry().StartWorker("w-dead");
  std::string id = ferry().Submit(
      {"fail", "--payload", R"({"message":"boom","retryable":false})", "--max-attempts", "3"});
  ASSERT_TRUE(ferry().WaitStatus(id, "failed", seconds(15)));
  Json t = ferry().Task(id);
  EXPECT_EQ(t["attempts"], 1);  // not retried
  EXPECT_TRUE(Contains(t["error"].get<std::string>(), "boom")) << t.dump();

  Json dead = ferry().List({"queue", "dead", "default"}, "tasks");
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0]["id"], id);
  auto human = ferry().Run({"queue", "dead", "default"});
  EXPECT_TRUE(Contains(human.out, id)) << human.out;
  EXPECT_TRUE(Contains(human.out, "boom")) << human.out;
  Json stats = ferry().RunJson({"queue", "stats", "default"})["queue"];
  EXPECT_EQ(stats["dead"], 1);

  // retry re-runs it: it fails again, and is dead once more.
  auto retry = ferry().Run({"task", "retry", id});
  EXPECT_EQ(retry.exit_code, 0) << retry.err;
  ASSERT_TRUE(Eventually(
      [&] {
        return ferry().Task(id)["attempts"] == 1 && ferry().Status(id) == "failed" &&
               ferry().Task(id)["epoch"].get<int>() >= 2;
      },
      seconds(15)))
      << ferry().Task(id).dump();
}

TEST_F(CliTest, CancelSaysWhatHappenedInEachState) {
  // pending: nobody serves the queue.
  std::string pending = ferry().Submit({"noop", "--queue", "idle"});
  auto r = ferry().Run({"task", "cancel", pending});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Trim(r.out), pending + ": cancelled");
  EXPECT_EQ(ferry().Status(pending), "cancelled");

  // scheduled
  std::string scheduled = ferry().Submit({"noop", "--delay", "1h"});
  EXPECT_EQ(ferry().Status(scheduled), "scheduled");
  r = ferry().Run({"task", "cancel", scheduled});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Trim(r.out), scheduled + ": cancelled");

  // running: the worker stops the handler.
  auto worker = ferry().StartWorker("w-cancel", {"--backoff-base", "1h"});
  std::string running = ferry().Submit({"sleep", "--payload", R"({"ms":20000})"});
  ASSERT_TRUE(ferry().WaitStatus(running, "running", seconds(10)));
  r = ferry().Run({"task", "cancel", running});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Trim(r.out), running + ": cancel requested; the worker will stop it");
  EXPECT_TRUE(ferry().WaitStatus(running, "cancelled", seconds(5))) << ferry().Task(running);

  // retrying: waiting out its backoff (an hour here) in the delayed set.
  std::string retrying =
      ferry().Submit({"fail", "--payload", R"({"retryable":true})", "--max-attempts", "3"});
  ASSERT_TRUE(ferry().WaitStatus(retrying, "retrying", seconds(10)));
  r = ferry().Run({"task", "cancel", retrying});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Trim(r.out), retrying + ": cancelled");
  EXPECT_EQ(ferry().Status(retrying), "cancelled");

  // ended: a conflict, exit 1.
  r = ferry().Run({"task", "cancel", pending});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(Contains(r.err, "cannot cancel task " + pending)) << r.err;
  std::string done = ferry().Submit({"noop"});
  ASSERT_TRUE(ferry().WaitStatus(done, "succeeded", seconds(10)));
  r = ferry().Run({"task", "cancel", done});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(Contains(r.err, "cannot cancel task " + done)) << r.err;
  EXPECT_TRUE(Contains(r.err, "succeeded")) << r.err;
}

// An idle worker, and one that has run a task, maps none of the libraries Ferry loads on first
// use (`ferry --json version` lists them): libpq, libcurl, libcrypto, libssl stay out of a worker
// that does not need them (docs/benchmarks.md, idle worker memory). A digest at start-up, for
// one, would bring libcrypto back.
TEST_F(CliTest, AWorkerMapsNoLibraryItLoadsOnDemandUntilItNeedsIt) {
  Json version = ferry().RunJson({"version"});
  ASSERT_TRUE(version.contains("loads_on_demand")) << version.dump();
  std::vector<std::string> on_demand;
  for (const auto& l : version["loads_on_demand"]) on_demand.push_back(l["library"]);
  ASSERT_GE(on_demand.size(), 4u) << version.dump();
  auto worker = ferry().StartWorker("w-lean");
  ASSERT_TRUE(worker->WaitForOutput("worker.started", seconds(10))) << worker->Stderr();
  std::string id = ferry().Submit({"echo", "--payload", R"({"lean":true})"});
  ASSERT_TRUE(ferry().WaitStatus(id, "succeeded", seconds(10)));
  std::ifstream maps("/proc/" + std::to_string(worker->pid()) + "/maps");
  ASSERT_TRUE(maps.good());
  std::stringstream text;
  text << maps.rdbuf();
  ASSERT_TRUE(Contains(text.str(), "libc.so.6")) << text.str();  // the read itself works
  for (const auto& lib : on_demand) EXPECT_FALSE(Contains(text.str(), lib)) << lib;
}

TEST_F(CliTest, EventsFollowUntilTheTaskEnds) {
  std::string id = ferry().Submit({"sleep", "--payload", R"({"ms":1500})"});
  Process follow(Process::Options{
      ferry().Argv({"task", "events", id, "--follow", "--timeout", "20s"}), {}, "", ""});
  // The follower has read the pending task's history before any worker exists: what it prints
  // later (running, succeeded) it can only have followed.
  ASSERT_TRUE(follow.WaitForOutput("submitted", seconds(10))) << follow.Stderr();
  EXPECT_FALSE(Contains(follow.Stdout(), "running")) << follow.Stdout();
  auto worker = ferry().StartWorker("w-events");
  auto code = follow.Wait(seconds(15));
  ASSERT_TRUE(code.has_value()) << follow.Stdout();
  EXPECT_EQ(*code, 0) << follow.Stderr();
  std::string out = follow.Stdout();
  EXPECT_TRUE(Contains(out, "running")) << out;
  EXPECT_TRUE(Contains(out, "succeeded")) << out;
  EXPECT_EQ(ferry().Status(id), "succeeded");

  // --timeout bounds --follow on a task that does not end.
  std::string stuck = ferry().Submit({"noop", "--queue", "idle"});
  auto start = SteadyClock::now();
  auto r = ferry().Run({"task", "events", stuck, "--follow", "--timeout", "1s"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(Contains(r.err, "timed out following task " + stuck)) << r.err;
  // Ended by its 1 s timeout, not by the harness killing it after a minute.
  EXPECT_LT(SteadyClock::now() - start, seconds(30));
}

TEST_F(CliTest, WorkerListShowsAStartedWorkerAndItsHeartbeat) {
  auto worker = ferry().StartWorker("w-list", {"--queues", "high,default"});
  Json me;
  ASSERT_TRUE(Eventually(
      [&] {
        for (const auto& w : ferry().List({"worker", "list"}, "workers")) {
          if (w["id"] == "w-list") me = w;
        }
        return me.is_object();
      },
      seconds(10)))
      << worker->Stderr();
  EXPECT_EQ(me["status"], "running");
  EXPECT_EQ(me["concurrency"], 2);
  EXPECT_EQ(me["queues"], Json::parse(R"(["high","default"])"));
  EXPECT_FALSE(me["last_heartbeat_at"].is_null());

  auto human = ferry().Run({"worker", "list"});
  EXPECT_EQ(human.exit_code, 0);
  for (const char* col : {"Worker ID", "Status", "Hostname", "Tasks", "Failed", "Current Task(s)",
                          "Concurrency", "Last Heartbeat", "w-list", "running", " UTC"}) {
    EXPECT_TRUE(Contains(human.out, col)) << col << "\n" << human.out;
  }
  // Banner on stderr, password-free.
  EXPECT_TRUE(Contains(worker->Stderr(), "w-list")) << worker->Stderr();
}

TEST_F(CliTest, KilledWorkersTaskCompletesOnAnotherAfterTheLease) {
  auto a = ferry().StartWorker("worker-a", {"--lease", "2s", "--heartbeat-ttl", "2s"});
  std::string id = ferry().Submit({"sleep", "--payload", R"({"ms":4000})"});
  ASSERT_TRUE(Eventually(
      [&] {
        Json t = ferry().Task(id);
        return t["status"] == "running" && t["worker"] == "worker-a";
      },
      seconds(10)));
  // The heartbeat names the task the slot runs.
  EXPECT_TRUE(Eventually(
      [&] {
        Json w = ferry().List({"worker", "list"}, "workers");
        return w.size() == 1 && w[0]["current_tasks"] == Json::array({id});
      },
      seconds(3)))
      << ferry().List({"worker", "list"}, "workers").dump();
  a->Signal(SIGKILL);
  ASSERT_TRUE(a->Wait(seconds(5)).has_value());
  auto killed_at = SteadyClock::now();

  auto b = ferry().StartWorker("worker-b", {"--lease", "2s"});
  ASSERT_TRUE(ferry().WaitStatus(id, "succeeded", seconds(20))) << b->Stderr();
  EXPECT_GT(SteadyClock::now() - killed_at, milliseconds(1500)) << "reclaimed before the lease";
  Json t = ferry().Task(id);
  EXPECT_EQ(t["worker"], "worker-b");
  EXPECT_EQ(t["epoch"], 2);
  EXPECT_EQ(t["reclaims"], 1);
  Json stats = ferry().RunJson({"queue", "stats", "default"})["queue"];
  EXPECT_EQ(stats["counters"]["succeeded"], 1) << stats.dump();
  EXPECT_EQ(stats["counters"]["reclaimed"], 1) << stats.dump();
  // Nothing ran twice to completion: one "succeeded" event.
  auto events = ferry().Run({"task", "events", id});
  size_t succeeded = 0;
  for (size_t p = events.out.find("succeeded"); p != std::string::npos;
       p = events.out.find("succeeded", p + 1)) {
    ++succeeded;
  }
  EXPECT_EQ(succeeded, 1u) << events.out;

  // The killed worker stays listed, as dead, once its heartbeat is older than its TTL.
  EXPECT_TRUE(Eventually(
      [&] {
        for (const auto& w : ferry().List({"worker", "list"}, "workers")) {
          if (w["id"] == "worker-a") return w["status"] == "dead";
        }
        return false;
      },
      seconds(5)))
      << ferry().List({"worker", "list"}, "workers").dump();
  auto table = ferry().Run({"worker", "list"});
  EXPECT_TRUE(Contains(table.out, "dead")) << table.out;
}

// A program a worker runs (here a shell task) runs as the worker's user, but cannot read the
// worker's environment, where FERRY_SECRET_* and connection URLs are: Ferry marks itself
// non-dumpable (docs/api.md). Without that, /proc/<worker>/environ is readable by the same user.
TEST_F(CliTest, AProgramTheWorkerRunsCannotReadTheWorkersEnvironment) {
  if (geteuid() != 0 || access("/usr/bin/setpriv", X_OK) != 0) {
    GTEST_SKIP() << "needs root and setpriv to run the worker as another user";
  }
  auto worker = ferry().StartWorkerAsNobody("w-nobody", {{"FERRY_SECRET_CANARY", "canary-7f3"}});
  ASSERT_TRUE(worker->WaitForOutput("worker.started", seconds(20))) << worker->Stderr();
  const std::string script =
      "tr '\\0' ' ' < /proc/$PPID/cmdline; echo; id -u; "
      "if cat /proc/$PPID/environ > /dev/null 2>&1; then echo ENV-READ; "
      "tr '\\0' '\\n' < /proc/$PPID/environ; else echo ENV-DENIED; fi";
  const Json payload = {{"argv", {"sh", "-c", script}}, {"cwd", "/tmp"}};
  std::string id = ferry().Submit({"shell", "--max-attempts", "1", "--payload", payload.dump()});
  ASSERT_TRUE(ferry().WaitStatus(id, "succeeded", seconds(30)))
      << ferry().Task(id).dump() << worker->Stderr();
  const std::string out = ferry().Task(id)["result"]["stdout"].get<std::string>();
  EXPECT_NE(out.find("worker start --worker-id w-nobody"), std::string::npos)
      << "the program's parent is the worker: " << out;
  EXPECT_NE(out.find("\n65534\n"), std::string::npos) << "it runs as the worker's user: " << out;
  EXPECT_NE(out.find("ENV-DENIED"), std::string::npos) << out;
  EXPECT_EQ(out.find("canary-7f3"), std::string::npos) << out;
}

TEST_F(CliTest, SigtermDrainsAndHandsTheTaskBackAtOnce) {
  auto a = ferry().StartWorker("drain-a", {"--drain-timeout", "1s", "--lease", "30s"});
  std::string id = ferry().Submit({"sleep", "--payload", R"({"ms":10000})"});
  ASSERT_TRUE(ferry().WaitStatus(id, "running", seconds(10)));
  a->Signal(SIGTERM);
  auto code = a->Wait(seconds(8));
  ASSERT_TRUE(code.has_value()) << "worker did not exit after SIGTERM: " << a->Stderr();
  EXPECT_EQ(*code, 0) << a->Stderr();
  // The drain deadline ended it: a worker that waited for the 10 s sleep would have finished the
  // task. Handed back at once: pending now, not after the 30 s lease.
  Json t = ferry().Task(id);
  EXPECT_EQ(t["status"], "pending") << t.dump();
  EXPECT_EQ(t["attempts"], 0) << t.dump();
  // It shut down cleanly: listed as stopped, not dead (which says the process crashed or stalled).
  Json listed;
  for (const auto& w : ferry().List({"worker", "list"}, "workers")) {
    if (w["id"] == "drain-a") listed = w;
  }
  EXPECT_EQ(listed["status"], "stopped") << listed.dump();
  EXPECT_EQ(listed["alive"], false) << listed.dump();
  EXPECT_FALSE(Contains(ferry().Run({"worker", "list"}).out, "dead"));

  auto b = ferry().StartWorker("drain-b", {"--lease", "30s"});
  ASSERT_TRUE(ferry().WaitStatus(id, "succeeded", seconds(30))) << b->Stderr();
  EXPECT_EQ(ferry().Task(id)["worker"], "drain-b");
}

TEST_F(CliTest, DemoRunsAndPrintsOutcomes) {
  auto r = RunCommand({FerryBinary(), "demo", "--ascii"}, seconds(60), {{"NO_COLOR", "1"}});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(Contains(r.out, "succeeded")) << r.out;
  EXPECT_TRUE(Contains(r.out, "failed")) << r.out;
  EXPECT_TRUE(Contains(r.out, "existing")) << r.out;
  EXPECT_TRUE(Contains(r.out, "Worker ID")) << r.out;
  // Part 2: a signed webhook started the hello workflow and the run reached succeeded.
  EXPECT_TRUE(Contains(r.out, "(HMAC-SHA256 signed) -> 202")) << r.out;
  EXPECT_TRUE(Contains(r.out, "(triggered by webhook): succeeded")) << r.out;
  for (const char* node : {"greet", "shape", "report"}) {
    EXPECT_TRUE(Contains(r.out, node)) << r.out;
  }
}

TEST_F(CliTest, DemoJsonReportsBothParts) {
  auto r = RunCommand({FerryBinary(), "demo", "--json"}, seconds(60));
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  std::vector<Json> docs;
  std::istringstream lines(r.out);
  for (std::string line; std::getline(lines, line);) {
    if (!line.empty()) docs.push_back(Json::parse(line));
  }
  ASSERT_EQ(docs.size(), 2u) << r.out;
  EXPECT_TRUE(docs[0]["as_expected"].get<bool>());
  EXPECT_EQ(docs[1]["webhook_status"], 202);
  EXPECT_EQ(docs[1]["run_status"], "succeeded");
  EXPECT_EQ(docs[1]["steps"].size(), 3u);
}

}  // namespace
}  // namespace ferry::testing
