// Every client command in both modes against one stack: local (Redis and the store directly)
// and remote (--server, through `ferry server`'s HTTP API with a token). The --json answers, the
// exit codes and the error messages must be the same, since both go through one service
// (src/service). Real redis-server, a real SQLite store, the real binary.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "harness.h"
#include "silent_server.h"

namespace ferry::testing {
namespace {

using std::chrono::seconds;
using ::testing::HasSubstr;
using ::testing::Not;
using Json = nlohmann::json;

// Fields that differ between two reads whatever the mode: ages computed at the moment of the
// read, and a live worker's heartbeat.
void DropVolatile(Json& j) {
  if (j.is_object()) {
    // last_used_at: the remote call itself may be the token's first use in a minute.
    for (const char* key :
         {"heartbeat_age_ms", "last_heartbeat_at", "oldest_pending_age_ms", "last_used_at"}) {
      j.erase(key);
    }
    for (auto& [key, value] : j.items()) DropVolatile(value);
  } else if (j.is_array()) {
    for (auto& value : j) DropVolatile(value);
  }
}

class CliModesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    local_env_ = {{"FERRY_REDIS_URL", redis_.url()},
                  {"FERRY_PREFIX", std::string("modes-") + info->name()},
                  {"FERRY_STORE", (dir_.path() / "ferry.db").string()},
                  {"NO_COLOR", "1"}};
    auto token = Local({"--json", "token", "create", "modes", "--scopes", "admin"});
    ASSERT_EQ(token.exit_code, 0) << token.err;
    secret_ = Json::parse(token.out)["token"].get<std::string>();
    const int port = FreePort();
    server_ = std::make_unique<Process>(Process::Options{
        {FerryBinary(), "server", "start", "--listen", "127.0.0.1:" + std::to_string(port)},
        local_env_,
        "",
        ""});
    remote_env_ = {{"FERRY_SERVER", "http://127.0.0.1:" + std::to_string(port)},
                   {"FERRY_TOKEN", secret_},
                   {"NO_COLOR", "1"}};
    ASSERT_TRUE(Eventually(
        [&] {
          return Remote({"queue", "list"}).exit_code == 0;
        },
        seconds(30)))
        << server_->Stderr();
  }

  // The test's working directory has no .ferry: a remote command that wrongly went local would
  // fail to find Redis (nothing listens on 6379 in the test) rather than pass by accident.
  CommandResult Local(std::vector<std::string> args) {
    args.insert(args.begin(), FerryBinary());
    return RunCommand(args, seconds(60), local_env_);
  }
  CommandResult Remote(std::vector<std::string> args) {
    args.insert(args.begin(), FerryBinary());
    return RunCommand(args, seconds(60), remote_env_);
  }

  // Runs `args --json` in both modes and expects the same exit code, the same JSON on stdout
  // and the same message on stderr. Returns the local answer.
  Json Same(const std::vector<std::string>& args, int exit_code = 0) {
    std::vector<std::string> json_args = {"--json"};
    json_args.insert(json_args.end(), args.begin(), args.end());
    auto local = Local(json_args);
    auto remote = Remote(json_args);
    std::string what;
    for (const auto& a : args) what += a + " ";
    EXPECT_EQ(local.exit_code, exit_code) << what << local.out << local.err;
    EXPECT_EQ(remote.exit_code, exit_code) << what << remote.out << remote.err;
    Json l = Json::parse(local.out, nullptr, false);
    Json r = Json::parse(remote.out, nullptr, false);
    EXPECT_FALSE(l.is_discarded()) << what << local.out;
    EXPECT_FALSE(r.is_discarded()) << what << remote.out;
    DropVolatile(l);
    DropVolatile(r);
    EXPECT_EQ(l, r) << what << "\nlocal:  " << l.dump() << "\nremote: " << r.dump();
    EXPECT_EQ(local.err, remote.err) << what;
    return l;
  }

  // The same for JSON-lines output (events).
  void SameLines(const std::vector<std::string>& args) {
    std::vector<std::string> json_args = {"--json"};
    json_args.insert(json_args.end(), args.begin(), args.end());
    auto local = Local(json_args);
    auto remote = Remote(json_args);
    EXPECT_EQ(local.exit_code, 0) << local.err;
    EXPECT_EQ(remote.exit_code, 0) << remote.err;
    EXPECT_EQ(local.out, remote.out);
    EXPECT_FALSE(local.out.empty());
  }

  std::unique_ptr<Process> StartWorker() {
    return std::make_unique<Process>(Process::Options{
        {FerryBinary(), "worker", "start", "--worker-id", "w-modes", "--concurrency", "2"},
        local_env_,
        "",
        ""});
  }

  RedisServer redis_;
  TempDir dir_;
  std::map<std::string, std::string> local_env_;
  std::map<std::string, std::string> remote_env_;
  std::string secret_;
  std::unique_ptr<Process> server_;
};

TEST_F(CliModesTest, EveryClientCommandAnswersTheSameInBothModes) {
  auto worker = StartWorker();
  const std::string hello = std::string(FERRY_SOURCE_DIR) + "/examples/hello.yaml";
  ASSERT_EQ(Local({"workflow", "apply", hello}).exit_code, 0);
  // Applying it again is a no-op in either mode, with the same answer.
  Json applied = Same({"workflow", "apply", hello});
  EXPECT_EQ(applied["created"], false);
  EXPECT_EQ(applied["version"]["version"], 1);

  // A task submitted once; the same unique key answers with the same id in both modes.
  auto first = Local({"task", "submit", "echo", "--payload", R"({"x":1})", "--unique-key", "k1"});
  ASSERT_EQ(first.exit_code, 0) << first.err;
  Json again = Same({"task", "submit", "echo", "--payload", R"({"x":1})", "--unique-key", "k1"});
  EXPECT_EQ(again["existing"], true);
  const std::string task = again["id"];
  ASSERT_TRUE(Eventually(
      [&] {
        auto r = Remote({"--json", "task", "status", task});
        return r.exit_code == 0 && Json::parse(r.out)["task"]["status"] == "succeeded";
      },
      seconds(30)));

  // A failing task, dead-lettered after one attempt.
  auto failing = Local({"task", "submit", "fail", "--max-attempts", "1"});
  ASSERT_EQ(failing.exit_code, 0);
  std::string dead = failing.out.substr(0, 26);
  ASSERT_TRUE(Eventually(
      [&] {
        auto r = Local({"--json", "task", "status", dead});
        return r.exit_code == 0 && Json::parse(r.out)["task"]["status"] == "failed";
      },
      seconds(30)));

  // A run, started and watched remotely.
  auto run = Remote({"--json", "workflow", "run", "hello", "--input", R"({"who":"Ada"})", "--wait",
                     "--timeout", "60s"});
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err << server_->Stderr();
  Json started = Json::parse(run.out);
  ASSERT_EQ(started["run"]["status"], "succeeded") << run.out;
  const std::string run_id = started["run"]["id"];

  Same({"task", "status", task});
  Same({"task", "list"});
  Same({"task", "list", "--status", "failed", "--queue", "default", "--limit", "5"});
  // A page's end says how to list the next, and that page is the same in both modes.
  auto first_page = Remote({"task", "list", "--limit", "1"});
  ASSERT_EQ(first_page.exit_code, 0) << first_page.err;
  const size_t more = first_page.out.find("More: add --cursor ");
  ASSERT_NE(more, std::string::npos) << first_page.out;
  const std::string cursor =
      first_page.out.substr(more + 19, first_page.out.find('\n', more) - more - 19);
  Json second_page = Same({"task", "list", "--limit", "1", "--cursor", cursor});
  ASSERT_EQ(second_page["tasks"].size(), 1u) << second_page.dump();
  EXPECT_EQ(first_page.out.find(second_page["tasks"][0]["id"].get<std::string>()),
            std::string::npos);
  Same({"task", "list", "--cursor", "default~x"}, 2);
  // --kind filters on the side that holds the tasks, alike in both modes.
  Json echoes = Same({"task", "list", "--kind", "echo"});
  ASSERT_FALSE(echoes["tasks"].empty()) << echoes.dump();
  for (const auto& t : echoes["tasks"]) EXPECT_EQ(t["kind"], "echo") << echoes.dump();
  SameLines({"task", "events", task});
  Same({"queue", "list"});
  Same({"queue", "stats", "default"});
  Json dead_letters = Same({"queue", "dead", "default"});
  ASSERT_EQ(dead_letters["tasks"].size(), 1u);
  // The worker reports its counters with its heartbeat: wait until it has reported the three
  // tasks (echo and the run processed, fail failed), or the two calls may straddle a heartbeat.
  std::string workers;
  ASSERT_TRUE(Eventually(
      [&] {
        auto r = Local({"--json", "worker", "list"});
        workers = r.out;
        if (r.exit_code != 0) return false;
        Json w = Json::parse(r.out)["workers"];
        return w.size() == 1 && w[0]["tasks_processed"] == 2 && w[0]["tasks_failed"] == 1 &&
               w[0]["current_tasks"].empty();
      },
      seconds(30)))
      << workers;
  Same({"worker", "list"});
  Same({"workflow", "list"});
  Same({"workflow", "show", "hello"});
  Same({"workflow", "versions", "hello"});
  // An empty name or id (an unset shell variable) is a mistake named in both modes alike: not
  // "no workflow " here, nor "no route /api/v1/runs/" (exit 1) through the server.
  for (const std::vector<std::string>& empty : {std::vector<std::string>{"workflow", "show", ""},
                                                {"workflow", "versions", ""},
                                                {"schedule", "pause", ""},
                                                {"schedule", "resume", ""},
                                                {"task", "status", ""},
                                                {"task", "cancel", ""},
                                                {"task", "retry", ""},
                                                {"task", "events", ""},
                                                {"run", "show", ""},
                                                {"run", "cancel", ""},
                                                {"run", "retry", ""},
                                                {"queue", "stats", ""},
                                                {"queue", "dead", ""},
                                                {"queue", "purge", ""},
                                                {"remediation", "show", ""},
                                                {"remediation", "diff", ""},
                                                {"remediation", "reopen", ""},
                                                {"token", "revoke", ""}}) {
    Same(empty, 2);
  }
  Same({"run", "list"});
  Same({"run", "list", "--workflow", "hello", "--status", "succeeded"});
  // Runs page as tasks do: a second run, then pages of one.
  auto second_run = Remote({"--json", "workflow", "run", "hello", "--input", R"({"who":"Bo"})",
                            "--wait", "--timeout", "60s"});
  ASSERT_EQ(second_run.exit_code, 0) << second_run.out << second_run.err;
  auto newest = Remote({"run", "list", "--limit", "1"});
  ASSERT_EQ(newest.exit_code, 0) << newest.err;
  const size_t run_more = newest.out.find("More: add --cursor ");
  ASSERT_NE(run_more, std::string::npos) << newest.out;
  const std::string run_cursor =
      newest.out.substr(run_more + 19, newest.out.find('\n', run_more) - run_more - 19);
  Json older = Same({"run", "list", "--limit", "1", "--cursor", run_cursor});
  ASSERT_EQ(older["runs"].size(), 1u) << older.dump();
  EXPECT_EQ(older["runs"][0]["id"], run_id);  // the first run, on the second page
  EXPECT_EQ(newest.out.find(run_id), std::string::npos) << newest.out;
  Same({"run", "list", "--cursor", "x"}, 2);
  // Alerts: evaluated by the server remotely, here locally, with the same (default) thresholds
  // and the same shared state. Values such as ages move between the two reads; what fires and
  // with which thresholds does not.
  {
    auto local = Local({"--json", "alerts"});
    auto remote = Remote({"--json", "alerts"});
    EXPECT_TRUE(local.exit_code == 0 || local.exit_code == 1) << local.err;
    EXPECT_EQ(local.exit_code, remote.exit_code) << local.out << remote.out << remote.err;
    Json l = Json::parse(local.out, nullptr, false);
    Json r = Json::parse(remote.out, nullptr, false);
    ASSERT_TRUE(l.is_object() && r.is_object()) << local.out << remote.out;
    auto keys = [](const Json& report) {
      std::set<std::string> out;
      for (const auto& a : report["firing"]) out.insert(a["key"].get<std::string>());
      return out;
    };
    EXPECT_EQ(keys(l), keys(r)) << l.dump() << "\n" << r.dump();
    EXPECT_EQ(l["thresholds"], r["thresholds"]);
    EXPECT_EQ(l["store_checked"], true);
    EXPECT_EQ(r["store_checked"], true);
    // Thresholds are the server's: a flag with --server is refused, not ignored.
    auto flagged = Remote({"alerts", "--alert-queue-depth-warning", "5"});
    EXPECT_EQ(flagged.exit_code, 2) << flagged.err;
    EXPECT_NE(flagged.err.find("--alert-queue-depth-warning: alert thresholds are the server's"),
              std::string::npos)
        << flagged.err;
    // A threshold in this shell's environment is for a server started from it, not read here:
    // even one that does not parse leaves the remote call alone, and locally it is refused.
    auto env = remote_env_;
    env["FERRY_ALERT_QUEUE_DEPTH_WARNING"] = "lots";
    auto remote_env = RunCommand({FerryBinary(), "--json", "alerts"}, seconds(60), env);
    EXPECT_EQ(remote_env.exit_code, remote.exit_code) << remote_env.out << remote_env.err;
    EXPECT_EQ(Json::parse(remote_env.out, nullptr, false)["thresholds"], r["thresholds"])
        << remote_env.out;
    auto local_with_env = local_env_;
    local_with_env["FERRY_ALERT_QUEUE_DEPTH_WARNING"] = "lots";
    auto local_env = RunCommand({FerryBinary(), "alerts"}, seconds(60), local_with_env);
    EXPECT_EQ(local_env.exit_code, 2) << local_env.out << local_env.err;
    EXPECT_NE(local_env.err.find("lots"), std::string::npos) << local_env.err;
  }
  // Doctor: remotely the server runs the checks against its own Redis and store.
  {
    auto remote = Remote({"--json", "doctor"});
    EXPECT_TRUE(remote.exit_code == 0 || remote.exit_code == 1) << remote.err;
    Json r = Json::parse(remote.out, nullptr, false);
    ASSERT_TRUE(r.is_object()) << remote.out << remote.err;
    std::map<std::string, std::string> levels;
    for (const auto& c : r["checks"]) levels[c["name"]] = c["level"];
    EXPECT_EQ(r["checks"][0]["name"], "server.reachable") << r.dump();
    EXPECT_EQ(levels["server.reachable"], "OK") << r.dump();
    EXPECT_EQ(levels["redis.reachable"], "OK") << r.dump();
    EXPECT_EQ(levels["store"], "OK") << r.dump();  // the server always has its store
    // A server that does not answer is a FAIL finding, exit 1.
    auto env = remote_env_;
    env["FERRY_SERVER"] = "http://127.0.0.1:" + std::to_string(FreePort());
    auto down = RunCommand({FerryBinary(), "doctor"}, seconds(60), env);
    EXPECT_EQ(down.exit_code, 1) << down.out << down.err;
    EXPECT_NE(down.out.find("FAIL server.reachable"), std::string::npos) << down.out;
  }
  Json counts = Same({"run", "counts"});
  EXPECT_EQ(counts["counts"]["succeeded"], 2) << counts.dump();  // the two runs above
  EXPECT_EQ(counts["total"], 2) << counts.dump();
  Json shown = Same({"run", "show", run_id});
  EXPECT_EQ(shown["run"]["steps"].size(), 3u);
  SameLines({"run", "watch", run_id});

  // Schedules: listed with their zone's fire times; paused and resumed from either side.
  const auto yearly = dir_.path() / "yearly.yaml";
  {
    std::FILE* f = std::fopen(yearly.c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fputs(
        "name: yearly\ntriggers:\n  cron: {schedule: \"0 3 1 1 *\", timezone: Asia/Tokyo}\n"
        "nodes:\n  one: {kind: lua, script: return 1}\n",
        f);
    std::fclose(f);
  }
  ASSERT_EQ(Local({"workflow", "apply", yearly.string()}).exit_code, 0);
  Json schedules = Same({"schedule", "list"});
  ASSERT_EQ(schedules["schedules"].size(), 1u) << schedules.dump();
  EXPECT_EQ(schedules["schedules"][0]["next_fire_times"][0].get<std::string>().substr(10),
            "T03:00:00+09:00");
  EXPECT_EQ(Same({"schedule", "pause", "yearly"})["paused"], true);
  EXPECT_EQ(Same({"schedule", "list"})["schedules"][0]["paused"], true);
  EXPECT_EQ(Same({"schedule", "resume", "yearly"})["paused"], false);
  // The table, too, is the same in both modes.
  EXPECT_EQ(Local({"schedule", "list"}).out, Remote({"schedule", "list"}).out);

  // Tokens: made through the server (the secret printed once), listed and revoked alike.
  auto made = Remote({"--json", "token", "create", "ci", "--scopes", "read,run"});
  ASSERT_EQ(made.exit_code, 0) << made.err;
  Json token = Json::parse(made.out);
  EXPECT_EQ(token["scopes"], (Json{"read", "run"}));
  EXPECT_EQ(token["token"].get<std::string>().rfind("fy_", 0), 0u);
  // Each says where the token went: only a server on that store accepts it.
  auto by_server = Remote({"token", "create", "ci-human", "--scopes", "read"});
  ASSERT_EQ(by_server.exit_code, 0) << by_server.err;
  EXPECT_NE(by_server.err.find(") created by the server; this is the only time"), std::string::npos)
      << by_server.err;
  auto here = Local({"token", "create", "local-human", "--scopes", "read"});
  ASSERT_EQ(here.exit_code, 0) << here.err;
  EXPECT_NE(here.err.find(") created in the store at " + (dir_.path() / "ferry.db").string() +
                          " (only a server using this store accepts it)"),
            std::string::npos)
      << here.err;
  for (const auto* made_here : {&by_server, &here}) {
    auto id = made_here->err.substr(made_here->err.find("token ") + 6, 26);
    ASSERT_EQ(Local({"token", "revoke", id}).exit_code, 0) << made_here->err;
  }
  Json tokens = Same({"token", "list"});
  EXPECT_EQ(tokens["tokens"].size(), 4u);
  EXPECT_EQ(tokens.dump().find(token["token"].get<std::string>()), std::string::npos);
  Same({"token", "revoke",
        token["id"].get<std::string>()});  // twice (local, then remote): not an error

  // Errors: the same message and exit code (1 not found, 2 bad input, 1 conflict).
  Same({"schedule", "pause", "nope"}, 1);
  // A workflow without a cron trigger has no schedule to pause or resume (it said "schedules
  // resumed", exit 0).
  EXPECT_THAT(Same({"schedule", "resume", "hello"}, 1).dump(),
              HasSubstr("workflow hello has no cron trigger, so no schedule to resume"));
  EXPECT_THAT(Same({"schedule", "pause", "hello"}, 1).dump(),
              HasSubstr("workflow hello has no cron trigger, so no schedule to pause"));
  // An empty name (an unset shell variable) names no workflow there could be: bad input, not a
  // missing workflow.
  EXPECT_THAT(Same({"workflow", "run", ""}, 2).dump(),
              HasSubstr("workflow must not be empty: name the workflow to run"));
  Json bad_scope = Same({"token", "create", "x", "--scopes", "root"}, 2);
  EXPECT_NE(bad_scope.dump().find("unknown scope 'root'"), std::string::npos) << bad_scope.dump();
  Same({"token", "create", "", "--scopes", "run"}, 2);
  EXPECT_THAT(Same({"token", "create", "x", "--scopes", "read,,run"}, 2).dump(),
              HasSubstr("scopes: scope 2 of 'read,,run' is empty: drop the extra comma"));
  Same({"token", "revoke", "01ARZ3NDEKTSV4RRFFQ69G5FAV"}, 1);
  Same({"task", "status", "01ARZ3NDEKTSV4RRFFQ69G5FAV"}, 1);
  Same({"run", "show", "01ARZ3NDEKTSV4RRFFQ69G5FAV"}, 1);
  // Following and revoking check the id as the other commands do: one that is not an id is the
  // caller's mistake (exit 2, named), a well-formed id of nothing is missing (exit 1). The near
  // misses: the id in lower case, and one character short.
  const std::string unknown = "01ARZ3NDEKTSV4RRFFQ69G5FAV";
  for (const std::string& bad :
       {std::string("x"), std::string("01arz3ndektsv4rrffq69g5fav"), unknown.substr(1)}) {
    for (const auto& [args, kind] : std::vector<std::pair<std::vector<std::string>, std::string>>{
             {{"run", "watch", bad}, "run"},
             {{"task", "events", bad, "--follow"}, "task"},
             {{"token", "revoke", bad}, "token"}}) {
      Json refused = Same(args, 2);
      EXPECT_THAT(refused.dump(), HasSubstr("malformed " + kind + " id '" + bad + "'"))
          << args[0] << " " << args[1];
    }
  }
  EXPECT_THAT(Same({"run", "watch", unknown}, 1).dump(), HasSubstr("no run " + unknown));
  EXPECT_THAT(Same({"task", "events", unknown, "--follow"}, 1).dump(),
              HasSubstr("no task " + unknown));
  Same({"remediation", "list"});
  Same({"remediation", "list", "--status", "sideways"}, 2);
  // Given empty is a mistake named, as `run list` names it, not "any status" or "any workflow".
  Same({"remediation", "list", "--status", ""}, 2);
  Same({"remediation", "list", "--workflow", ""}, 2);
  Same({"run", "list", "--status", ""}, 2);
  Same({"remediation", "show", "01ARZ3NDEKTSV4RRFFQ69G5FAV"}, 1);
  Same({"remediation", "dismiss", "01ARZ3NDEKTSV4RRFFQ69G5FAV", "--reason", "x"}, 1);
  Same({"remediation", "reopen", "01ARZ3NDEKTSV4RRFFQ69G5FAV"}, 1);
  Same({"remediation", "diff", "01ARZ3NDEKTSV4RRFFQ69G5FAV"}, 1);
  Same({"workflow", "show", "nope"}, 1);
  Same({"task", "list", "--status", "bogus"}, 2);
  Same({"task", "list", "--kind", std::string(129, 'k')}, 2);
  Same({"run", "list", "--status", "bogus"}, 2);
  Same({"queue", "stats", "bad queue!"}, 2);
  // A queue that does not exist is not found (not shown empty), alike in both modes.
  for (const char* verb : {"stats", "dead", "retry", "purge"}) {
    Json missing = Same({"queue", verb, "nosuch"}, 1);
    EXPECT_NE(missing.dump().find("no queue nosuch"), std::string::npos) << verb << missing.dump();
  }
  Same({"task", "submit", "echo", "--timeout", "0s"}, 2);
  Same({"task", "cancel", task}, 1);
  Same({"task", "retry", task}, 1);
  Same({"run", "cancel", run_id}, 1);

  // Retrying every dead letter of a queue, through the server: the one dead task runs again
  // (and, failing always, is dead-lettered again); then locally, with none dead since, none.
  auto retried = Remote({"queue", "retry", "default"});
  ASSERT_EQ(retried.exit_code, 0) << retried.err;
  EXPECT_EQ(retried.out, "Retried 1 dead-lettered task of queue default.\n");
  ASSERT_TRUE(Eventually(
      [&] {
        auto r = Local({"--json", "task", "status", dead});
        return r.exit_code == 0 && Json::parse(r.out)["task"]["status"] == "failed";
      },
      seconds(30)));
  EXPECT_EQ(Same({"task", "status", dead})["task"]["attempts"], 1);
  EXPECT_EQ(Same({"queue", "stats", "default"})["queue"]["counters"]["requeued"], 1);

  // Purging dead letters: without --yes both modes refuse alike and say how many would go.
  Same({"queue", "purge", "default"}, 2);
  auto refused = Remote({"queue", "purge", "default"});
  EXPECT_NE(refused.err.find("deletes the 1 dead-lettered task of queue default"),
            std::string::npos)
      << refused.err;
  auto purged = Remote({"--json", "queue", "purge", "default", "--yes"});
  ASSERT_EQ(purged.exit_code, 0) << purged.err;
  EXPECT_EQ(Json::parse(purged.out), (Json{{"queue", "default"}, {"purged", 1}}));
  Json none = Same({"queue", "purge", "default", "--yes"});
  EXPECT_EQ(none["purged"], 0);
  Same({"task", "status", dead}, 1);
  EXPECT_EQ(Same({"queue", "stats", "default"})["queue"]["dead"], 0);

  // Deleting queues: one a live worker serves is refused naming it, alike in both modes; an
  // emptied one no worker serves goes (remotely here) and is gone for the local client too.
  Same({"queue", "delete", "default"}, 1);
  auto served = Local({"queue", "delete", "default"});
  EXPECT_THAT(served.err, HasSubstr("queue default is served by 1 live worker (w-modes)"));
  Same({"queue", "delete", "nowhere"}, 1);
  Same({"queue", "delete", "bad queue!"}, 2);
  auto spare = Local({"task", "submit", "echo", "--queue", "spare"});
  ASSERT_EQ(spare.exit_code, 0) << spare.err;
  ASSERT_EQ(Local({"task", "cancel", spare.out.substr(0, 26)}).exit_code, 0);
  auto deleted = Remote({"queue", "delete", "spare"});
  ASSERT_EQ(deleted.exit_code, 0) << deleted.err;
  EXPECT_EQ(deleted.out, "Deleted queue spare.\n");
  auto listed = Local({"--json", "queue", "list"});
  ASSERT_EQ(listed.exit_code, 0);
  EXPECT_THAT(listed.out, Not(HasSubstr("spare")));
}

// One limit, one message: a definition over 1 MiB is refused by `ferry workflow apply` in
// ingestion's words, whether the file is just past the limit or far past it, locally and through
// the server alike (the file is never sent).
TEST_F(CliModesTest, ADefinitionOverOneMiBIsRefusedInOneMessage) {
  constexpr size_t kOneMiB = size_t{1} << 20;  // docs/workflows.md
  const std::string head = "name: big\nnodes: {a: {kind: fail}}\n#";
  for (const size_t size : {kOneMiB + 1, size_t{10} << 20}) {
    const auto path = dir_.path() / ("big-" + std::to_string(size) + ".yaml");
    {
      std::ofstream f(path, std::ios::binary);
      f << head << std::string(size - head.size() - 1, 'x') << "\n";
    }
    ASSERT_EQ(std::filesystem::file_size(path), size);
    auto local = Local({"workflow", "apply", path.string()});
    auto remote = Remote({"workflow", "apply", path.string()});
    EXPECT_EQ(local.exit_code, 2) << local.err;
    EXPECT_EQ(remote.exit_code, 2) << remote.err;
    EXPECT_NE(local.err.find(path.string() + ": definition larger than 1048576 bytes (1 MiB)"),
              std::string::npos)
        << local.err;
    EXPECT_EQ(local.err, remote.err);
  }
  // At the limit the file is read and ingested.
  const auto at_limit = dir_.path() / "at-limit.yaml";
  {
    std::ofstream f(at_limit, std::ios::binary);
    f << head << std::string(kOneMiB - head.size() - 1, 'x') << "\n";
  }
  EXPECT_EQ(Local({"workflow", "apply", at_limit.string()}).exit_code, 0);
}

TEST_F(CliModesTest, ActionsThroughTheServerChangeTheStack) {
  auto worker = StartWorker();
  // Submit remotely, see it locally.
  auto submitted = Remote({"--json", "task", "submit", "sleep", "--payload", R"({"ms":60000})"});
  ASSERT_EQ(submitted.exit_code, 0) << submitted.err;
  const std::string id = Json::parse(submitted.out)["id"];
  ASSERT_TRUE(Eventually(
      [&] {
        auto r = Local({"--json", "task", "status", id});
        return r.exit_code == 0 && Json::parse(r.out)["task"]["status"] == "running";
      },
      seconds(30)));
  // Cancel remotely: the worker stops it.
  auto cancelled = Remote({"--json", "task", "cancel", id});
  ASSERT_EQ(cancelled.exit_code, 0) << cancelled.err;
  EXPECT_EQ(Json::parse(cancelled.out)["outcome"], "cancel_requested");
  ASSERT_TRUE(Eventually(
      [&] {
        auto r = Local({"--json", "task", "status", id});
        return r.exit_code == 0 && Json::parse(r.out)["task"]["status"] == "cancelled";
      },
      seconds(30)));
  // Retry remotely: it is pending or running again.
  auto retried = Remote({"--json", "task", "retry", id});
  ASSERT_EQ(retried.exit_code, 0) << retried.err;
  EXPECT_EQ(Json::parse(retried.out)["outcome"], "requeued");
  // Follow its events remotely (SSE) until it ends: once the retry's "pending" event has
  // arrived, cancel it again from the other side.
  Process follow({{FerryBinary(), "--json", "task", "events", id, "--follow", "--timeout", "60s"},
                  remote_env_,
                  "",
                  ""});
  ASSERT_TRUE(follow.WaitForOutput("\"type\":\"pending\"", seconds(30))) << follow.Stderr();
  ASSERT_EQ(Local({"task", "cancel", id}).exit_code, 0);
  EXPECT_EQ(follow.Wait(seconds(30)), 0) << follow.Stderr();
  EXPECT_NE(follow.Stdout().find("\"type\":\"cancelled\""), std::string::npos) << follow.Stdout();
}

// `task submit --batch` goes through POST /api/v1/tasks/batch remotely: a file submitted here
// and then through the server names the same tasks (unique keys), the second time as existing.
TEST_F(CliModesTest, BatchSubmissionWorksInBothModes) {
  const auto file = dir_.path() / "tasks.jsonl";
  {
    std::FILE* f = std::fopen(file.c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fputs(
        "{\"kind\":\"echo\",\"unique_key\":\"b-1\"}\n\n"
        "{\"kind\":\"echo\",\"unique_key\":\"b-2\",\"queue\":\"other\"}\n",
        f);
    std::fclose(f);
  }
  auto local = Local({"--json", "task", "submit", "--batch", file.string()});
  ASSERT_EQ(local.exit_code, 0) << local.err;
  Json made = Json::parse(local.out);
  EXPECT_EQ(made["created"], 2) << made.dump();
  auto remote = Remote({"--json", "task", "submit", "--batch", file.string()});
  ASSERT_EQ(remote.exit_code, 0) << remote.err << server_->Stderr();
  Json again = Json::parse(remote.out);
  EXPECT_EQ(again["created"], 0) << again.dump();
  EXPECT_EQ(again["existing"], 2) << again.dump();
  ASSERT_EQ(again["tasks"].size(), 2u);
  for (size_t i = 0; i < 2; ++i) EXPECT_EQ(again["tasks"][i]["id"], made["tasks"][i]["id"]);
  EXPECT_EQ(Json::parse(Remote({"--json", "queue", "stats", "other"}).out)["queue"]["pending"], 1);
  // A bad line is refused before anything is sent, in both modes with the same words.
  const auto bad = dir_.path() / "bad.jsonl";
  {
    std::FILE* f = std::fopen(bad.c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fputs(
        "{\"kind\":\"echo\",\"unique_key\":\"b-3\"}\n{\"kind\":\"echo\",\"max_attempts\":0}\n", f);
    std::fclose(f);
  }
  Json refused = Same({"task", "submit", "--batch", bad.string()}, 2);
  EXPECT_NE(refused.dump().find("line 2"), std::string::npos) << refused.dump();
  auto b3 = Remote({"--json", "task", "list", "--queue", "default"});
  EXPECT_EQ(b3.out.find("b-3"), std::string::npos) << b3.out;
}

// A submit whose answer the server lost (its Redis stopped mid-call, past the server's
// --io-timeout) exits 4, not the 3 of a Redis that was never reached: a script that retries on 3
// would make an unkeyed task twice. The --json error carries "outcome", and once Redis goes on
// the advised retry with the same unique_key finds the task.
TEST_F(CliModesTest, ASubmitWhoseAnswerIsLostExitsFour) {
  const std::string url = "http://127.0.0.1:" + std::to_string(FreePort());
  Process server(
      Process::Options{{FerryBinary(), "server", "start", "--listen",
                        url.substr(std::string("http://").size()), "--io-timeout", "300ms"},
                       local_env_,
                       "",
                       ""});
  auto env = remote_env_;
  env["FERRY_SERVER"] = url;
  const auto submit = [&](const std::string& key) {
    return RunCommand(
        {FerryBinary(), "--json", "task", "submit", "noop", "--queue", "lost", "--unique-key", key},
        seconds(60), env);
  };
  // The server's connection is open and the queue known: what follows sends only the submit.
  ASSERT_TRUE(Eventually([&] { return submit("warm").exit_code == 0; }, seconds(30)))
      << server.Stderr();
  const pid_t redis = redis_.pid();
  ASSERT_GT(redis, 0);
  ASSERT_EQ(::kill(redis, SIGSTOP), 0);
  auto lost = submit("once");
  ASSERT_EQ(::kill(redis, SIGCONT), 0);
  EXPECT_EQ(lost.exit_code, 4) << lost.out << lost.err;
  EXPECT_THAT(lost.err, HasSubstr("so the task may exist; a submit with the same unique_key "
                                  "finds it instead of making it twice"));
  Json body = Json::parse(lost.out, nullptr, false);
  ASSERT_TRUE(body.is_object()) << lost.out;
  EXPECT_EQ(body["error"]["outcome"], "unknown") << lost.out;
  EXPECT_EQ(body["error"]["code"], "unavailable") << lost.out;
  // The submit had reached Redis: the retry finds its task.
  auto again = submit("once");
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(Json::parse(again.out)["existing"], true) << again.out;
}

// The same through the HTTP hop: a server that takes the request and closes without an answer.
// A change exits 4 saying it may have been done; a read exits 3.
TEST_F(CliModesTest, ARequestWhoseHttpAnswerIsLostExitsFourOnlyForAChange) {
  SilentServer silent(false);
  const std::string url = "http://127.0.0.1:" + std::to_string(silent.port());
  const std::map<std::string, std::string> env = {
      {"FERRY_SERVER", url}, {"FERRY_TOKEN", secret_}, {"NO_COLOR", "1"}};
  auto submit = RunCommand({FerryBinary(), "--json", "task", "submit", "noop"}, seconds(60), env);
  EXPECT_EQ(submit.exit_code, 4) << submit.out << submit.err;
  EXPECT_THAT(submit.err, HasSubstr("no answer came from the Ferry server at " + url +
                                    " after the request was sent, so what it asked may have been "
                                    "done"));
  Json body = Json::parse(submit.out, nullptr, false);
  ASSERT_TRUE(body.is_object()) << submit.out;
  EXPECT_EQ(body["error"]["outcome"], "unknown");
  auto list = RunCommand({FerryBinary(), "task", "list"}, seconds(60), env);
  EXPECT_EQ(list.exit_code, 3) << list.err;
  EXPECT_THAT(list.err, HasSubstr("cannot reach the Ferry server at " + url));
  EXPECT_GE(silent.requests(), 2);
}

TEST_F(CliModesTest, IoTimeoutBoundsEachRequestToTheServer) {
  // A server that takes requests and never answers: with --io-timeout the command gives up
  // after it, not after the 30 s it would wait otherwise (the harness's own limit is 20 s).
  SilentServer silent(true);
  const std::string url = "http://127.0.0.1:" + std::to_string(silent.port());
  const std::map<std::string, std::string> env = {
      {"FERRY_SERVER", url}, {"FERRY_TOKEN", secret_}, {"NO_COLOR", "1"}};
  auto list =
      RunCommand({FerryBinary(), "--io-timeout", "300ms", "task", "list"}, seconds(20), env);
  EXPECT_EQ(list.exit_code, 1) << list.out << list.err;
  EXPECT_THAT(list.err, HasSubstr("the Ferry server at " + url +
                                  " did not answer within 300ms (--io-timeout)"));
  auto from_env =
      RunCommand({FerryBinary(), "queue", "list"}, seconds(20),
                 {{"FERRY_SERVER", url}, {"FERRY_TOKEN", secret_}, {"FERRY_IO_TIMEOUT", "300ms"}});
  EXPECT_EQ(from_env.exit_code, 1) << from_env.out << from_env.err;
  auto bad = RunCommand({FerryBinary(), "--io-timeout", "soon", "task", "list"}, seconds(20), env);
  EXPECT_EQ(bad.exit_code, 2) << bad.err;
  EXPECT_THAT(bad.err, HasSubstr("--io-timeout"));
}

TEST_F(CliModesTest, RemoteModeNeedsNoRedisAndNamesItsProblems) {
  // A wrong token: 401 from the server, exit 3 like any refused credentials.
  auto bad = RunCommand({FerryBinary(), "queue", "list"}, seconds(30),
                        {{"FERRY_SERVER", remote_env_["FERRY_SERVER"]},
                         {"FERRY_TOKEN", secret_.substr(0, secret_.size() - 1) +
                                             (secret_.back() == '0' ? "1" : "0")}});
  EXPECT_EQ(bad.exit_code, 3) << bad.out << bad.err;
  EXPECT_NE(bad.err.find("invalid or revoked token"), std::string::npos) << bad.err;
  // No token at all.
  auto none = RunCommand({FerryBinary(), "queue", "list"}, seconds(30),
                         {{"FERRY_SERVER", remote_env_["FERRY_SERVER"]}});
  EXPECT_EQ(none.exit_code, 3) << none.err;
  EXPECT_NE(none.err.find("missing bearer token"), std::string::npos) << none.err;
  // A token file works like the variable.
  const auto file = dir_.path() / "token";
  {
    std::FILE* f = std::fopen(file.c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fputs((secret_ + "\n").c_str(), f);
    std::fclose(f);
  }
  auto from_file = RunCommand({FerryBinary(), "--server", remote_env_["FERRY_SERVER"],
                               "--token-file", file.string(), "queue", "list"},
                              seconds(30), {});
  EXPECT_EQ(from_file.exit_code, 0) << from_file.err;
  // Nothing listening: exit 3 naming the server.
  const std::string gone = "http://127.0.0.1:" + std::to_string(FreePort());
  auto away = RunCommand({FerryBinary(), "--server", gone, "--token", secret_, "queue", "list"},
                         seconds(30), {});
  EXPECT_EQ(away.exit_code, 3) << away.err;
  EXPECT_NE(away.err.find("cannot reach the Ferry server at " + gone), std::string::npos)
      << away.err;
  // Not a URL, and a command that needs direct access: exit 2 saying so.
  auto not_url =
      RunCommand({FerryBinary(), "--server", "127.0.0.1:8080", "queue", "list"}, seconds(30), {});
  EXPECT_EQ(not_url.exit_code, 2) << not_url.err;
  EXPECT_NE(not_url.err.find("http:// or https://"), std::string::npos) << not_url.err;
  // The API's own path, a query or a fragment would make routes that are not: refused with
  // what to give instead; a prefix of the server's own (behind a proxy) is kept.
  for (const std::string& given :
       {remote_env_["FERRY_SERVER"] + "/api/v1", remote_env_["FERRY_SERVER"] + "/api/v1//",
        remote_env_["FERRY_SERVER"] + "/?x=1", remote_env_["FERRY_SERVER"] + "#top"}) {
    auto r = RunCommand({FerryBinary(), "--server", given, "--token", secret_, "queue", "list"},
                        seconds(30), {});
    EXPECT_EQ(r.exit_code, 2) << given << ": " << r.err;
    EXPECT_NE(r.err.find("--server"), std::string::npos) << r.err;
  }
  auto prefixed = RunCommand({FerryBinary(), "--server", remote_env_["FERRY_SERVER"] + "/ferry",
                              "--token", secret_, "queue", "list"},
                             seconds(30), {});
  EXPECT_NE(prefixed.err.find("/ferry/api/v1/queues"), std::string::npos)
      << "a prefix is kept: " << prefixed.err;
  auto direct = RunCommand({FerryBinary(), "--server", remote_env_["FERRY_SERVER"], "--token",
                            secret_, "run", "recover"},
                           seconds(30), {});
  EXPECT_EQ(direct.exit_code, 2) << direct.err;
  EXPECT_NE(direct.err.find("does not work with --server"), std::string::npos) << direct.err;
  // What needs neither a server nor Redis runs with --server too, even one that is not there.
  for (std::vector<std::string> args :
       {std::vector<std::string>{"schedule", "next", "@hourly", "--from", "2026-01-01T00:30:00Z"},
        {"version"}}) {
    args.insert(args.begin(), {FerryBinary(), "--server", gone});
    auto r = RunCommand(args, seconds(30), {});
    EXPECT_EQ(r.exit_code, 0) << args.back() << ": " << r.err;
    if (args[3] == "schedule") {
      EXPECT_NE(r.out.find("2026-01-01T01:00:00"), std::string::npos) << r.out;
    }
  }
  // An invalid workflow: the server's diagnostics, printed as locally (file, line, column).
  const auto bad_wf = dir_.path() / "bad.yaml";
  {
    std::FILE* f = std::fopen(bad_wf.c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fputs("name: bad\nnodes:\n  a:\n    kind: shell\n    needs: [nope]\n    argv: [x]\n", f);
    std::fclose(f);
  }
  auto local = Local({"workflow", "apply", bad_wf.string()});
  auto remote = Remote({"workflow", "apply", bad_wf.string()});
  EXPECT_EQ(local.exit_code, 2);
  EXPECT_EQ(remote.exit_code, 2);
  EXPECT_NE(remote.err.find("line 5"), std::string::npos) << remote.err;
  EXPECT_EQ(local.err, remote.err);
}

}  // namespace
}  // namespace ferry::testing
