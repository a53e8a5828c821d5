// The settings catalogue (ops::Settings()) is the one declaration of every setting: the flags
// are declared from it (cli/flags.h), values are resolved by its keys (cli/options.h), and the
// defaults it states are the ones in force.
#include <gtest/gtest.h>

#include <map>
#include <stdexcept>

#include "api/server.h"
#include "cli/cli.h"
#include "cli/options.h"
#include "core/time_util.h"
#include "fake_env.h"
#include "ops/config.h"
#include "runs/handler.h"
#include "scheduler/scheduler.h"

namespace ferry::cli {
namespace {

using std::chrono::milliseconds;

using ferry::testing::FakeEnv;

// The catalogue's default up to its first space ("-1 (off)" -> "-1").
std::string Stated(const std::string& key) {
  const ops::SettingInfo* s = ops::FindSetting(key);
  if (s == nullptr) throw std::logic_error("no setting " + key);
  return s->default_text.substr(0, s->default_text.find(' '));
}

milliseconds StatedDuration(const std::string& key) {
  auto d = ParseDuration(Stated(key));
  if (!d) throw std::logic_error(key + ": default is not a duration: " + Stated(key));
  return *d;
}

TEST(SettingsCatalogue, KeysAreUniqueAndEveryFlagsHelpNamesItsVariableAndDefault) {
  std::map<std::string, int> seen;
  for (const auto& s : ops::Settings()) {
    EXPECT_EQ(++seen[s.key], 1) << s.key << " is catalogued twice";
    EXPECT_FALSE(s.help.empty()) << s.key;
    const std::string help = ops::FlagHelp(s);
    EXPECT_NE(help.find("env " + ops::EnvNameOf(s.key)), std::string::npos) << help;
    if (!s.default_text.empty()) {
      EXPECT_NE(help.find("default " + s.default_text), std::string::npos) << help;
    }
  }
  EXPECT_EQ(ops::FlagOf(*ops::FindSetting("scheduler-tick")), "--tick");
  EXPECT_EQ(ops::FlagOf(*ops::FindSetting("handlers")), "--handler");
  EXPECT_EQ(ops::FlagOf(*ops::FindSetting("handler-secret")), "") << "a secret has no flag";
  EXPECT_EQ(ops::EnvNameOf("threads"), "FERRY_API_THREADS");
  EXPECT_EQ(ops::FindSetting("no-such-setting"), nullptr);
}

// Building the whole command line declares every setting flag by its key: a key missing from
// the catalogue would throw here, before any command runs.
TEST(SettingsCatalogue, EveryCommandsSettingFlagsAreCatalogued) {
  char ferry[] = "ferry";
  char version[] = "version";
  char* argv[] = {ferry, version, nullptr};
  int code = -1;
  EXPECT_NO_THROW(code = Main(2, argv, nullptr));
  EXPECT_EQ(code, 0);
}

TEST(SettingsCatalogue, StatedDefaultsAreTheDefaultsInForce) {
  auto worker = ResolveWorkerConfig({}, {}, FakeEnv({}));
  ASSERT_TRUE(worker) << worker.error().message;
  const WorkerOptions& w = worker->worker;
  EXPECT_EQ(Stated("redis-url"), w.broker.redis_url);
  EXPECT_EQ(Stated("prefix"), w.broker.prefix);
  EXPECT_EQ(StatedDuration("io-timeout"), w.broker.io_timeout);
  EXPECT_EQ(Stated("redis-wait-replicas"), std::to_string(w.broker.wait_replicas));
  EXPECT_EQ(StatedDuration("redis-wait-timeout"), w.broker.wait_timeout);
  EXPECT_EQ(StatedDuration("task-retention"), w.broker.retention);
  EXPECT_EQ(StatedDuration("dead-retention"), w.broker.dead_retention);
  EXPECT_EQ(Stated("event-stream-length"), std::to_string(w.broker.events_maxlen));
  EXPECT_EQ(Stated("max-queues"), std::to_string(w.broker.max_queues));
  auto log_format = ParseLogFormat(Stated("log-format"));
  ASSERT_TRUE(log_format) << log_format.error().message;
  EXPECT_EQ(*log_format, worker->log.format);
  EXPECT_EQ(Stated("queues"), w.queues.at(0));
  EXPECT_EQ(Stated("concurrency"), std::to_string(w.concurrency));
  EXPECT_EQ(Stated("prefetch"), std::to_string(w.prefetch));
  EXPECT_EQ(Stated("nice"), std::to_string(w.nice));
  EXPECT_EQ(StatedDuration("lease"), w.lease);
  EXPECT_EQ(StatedDuration("drain-timeout"), w.drain_timeout);
  EXPECT_EQ(StatedDuration("default-timeout"), w.default_timeout);
  EXPECT_EQ(Stated("health-port"), std::to_string(w.health_port));
  EXPECT_EQ(Stated("health-host"), w.health_host);
  EXPECT_EQ(StatedDuration("backoff-base"), w.backoff_base);
  EXPECT_EQ(StatedDuration("heartbeat-ttl"), w.heartbeat_ttl);
  EXPECT_EQ(Stated("run-task-events") == "yes", worker->run_task_events);
  EXPECT_EQ(worker->run_task_events, runs::RunHandlerOptions{}.task_events);
  EXPECT_EQ(StatedDuration("run-slot-wait"), worker->run_slot_wait);
  EXPECT_EQ(worker->run_slot_wait, runs::RunHandlerOptions{}.give_back_waits_over);
  auto every = ResolveWorkerConfig({}, {}, FakeEnv({{"FERRY_RUN_SLOT_WAIT", "0"}}));
  ASSERT_TRUE(every) << every.error().message;
  EXPECT_EQ(every->run_slot_wait.count(), 0);
  auto bad_wait = ResolveWorkerConfig({}, {}, FakeEnv({{"FERRY_RUN_SLOT_WAIT", "-1s"}}));
  ASSERT_FALSE(bad_wait);
  EXPECT_NE(bad_wait.error().message.find("FERRY_RUN_SLOT_WAIT"), std::string::npos)
      << bad_wait.error().message;
  auto mirrored = ResolveWorkerConfig({}, {}, FakeEnv({{"FERRY_RUN_TASK_EVENTS", "yes"}}));
  ASSERT_TRUE(mirrored) << mirrored.error().message;
  EXPECT_TRUE(mirrored->run_task_events);
  auto bad = ResolveWorkerConfig({}, {}, FakeEnv({{"FERRY_RUN_TASK_EVENTS", "maybe"}}));
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().message, "FERRY_RUN_TASK_EVENTS: expected yes or no, not 'maybe'");

  api::ApiServerOptions server;
  EXPECT_EQ(Stated("threads"), std::to_string(server.threads));
  EXPECT_EQ(Stated("max-sse-clients"), std::to_string(server.max_sse_clients));
  EXPECT_EQ(Stated("max-connections"), std::to_string(server.http.max_connections));
  EXPECT_EQ(Stated("max-connections-per-client"),
            std::to_string(server.http.max_connections_per_client));
  EXPECT_EQ(Stated("listen"), server.host + ":" + std::to_string(server.port));

  scheduler::SchedulerOptions sched;
  EXPECT_EQ(StatedDuration("scheduler-tick"), sched.tick);
  EXPECT_EQ(StatedDuration("scheduler-lease"), sched.lease);
  EXPECT_EQ(StatedDuration("misfire-grace"), sched.dispatch.misfire_grace);
  EXPECT_EQ(Stated("run-queue"), sched.dispatch.queue);
  // A leader killed mid-dispatch is replaced within about a lease and a tick; with the defaults,
  // the occurrences it left are still on time for the next leader, not dropped as misfires.
  EXPECT_GT(sched.dispatch.misfire_grace, sched.lease + sched.tick);
}

TEST(SettingsCatalogue, ValuesAreFoundByKeyAndErrorsNameTheFlagOrVariable) {
  auto env = FakeEnv({{"FERRY_SCHEDULER_TICK", "3s"}, {"FERRY_API_THREADS", "1025"}});
  auto tick = PickSetting(std::nullopt, "scheduler-tick", env);
  ASSERT_TRUE(tick);
  EXPECT_EQ(tick->text, "3s");
  EXPECT_EQ(tick->source, "FERRY_SCHEDULER_TICK");
  auto flag = PickSetting(std::string("2s"), "scheduler-tick", env);
  ASSERT_TRUE(flag);
  EXPECT_EQ(flag->source, "--tick") << "the flag wins, and is named as the command spells it";
  EXPECT_FALSE(PickSetting(std::nullopt, "scheduler-lease", env));
  EXPECT_THROW(PickSetting(std::nullopt, "no-such-setting", env), std::logic_error);

  // One past the limit is refused, naming where it came from; the limit itself is fine.
  auto threads = PickSetting(std::nullopt, "threads", env);
  ASSERT_TRUE(threads);
  auto over = ParseIntSetting(*threads, 1, 1024);
  ASSERT_FALSE(over);
  EXPECT_EQ(over.error().message,
            "FERRY_API_THREADS: expected an integer from 1 to 1024, not '1025'");
  auto at_limit = ParseIntSetting(SettingText{"1024", "--threads"}, 1, 1024);
  ASSERT_TRUE(at_limit);
  EXPECT_EQ(*at_limit, 1024);
  auto zero = ParseDurationSetting(SettingText{"0s", "--tick"}, /*allow_zero=*/false);
  ASSERT_FALSE(zero);
  EXPECT_EQ(zero.error().message, "--tick: must be greater than zero");
}

TEST(SettingsCatalogue, ADurationWithAFloorRefusesOnePastItAndKeepsTheDefaultWhenUnset) {
  auto env = FakeEnv({{"FERRY_SCHEDULER_TICK", "99ms"}});
  auto tick = std::chrono::milliseconds(1000);
  auto under = PickDurationAtLeast(std::nullopt, "scheduler-tick", env, scheduler::kMinTick, tick);
  ASSERT_FALSE(under);
  EXPECT_EQ(under.error().message, "FERRY_SCHEDULER_TICK: must be at least 100ms, not '99ms'");
  EXPECT_EQ(tick, std::chrono::milliseconds(1000)) << "left as it was";
  ASSERT_TRUE(
      PickDurationAtLeast(std::string("100ms"), "scheduler-tick", env, scheduler::kMinTick, tick));
  EXPECT_EQ(tick, scheduler::kMinTick);
  auto lease = std::chrono::milliseconds(5000);
  auto short_lease = PickDurationAtLeast(std::string("499ms"), "scheduler-lease", env,
                                         scheduler::kMinLease, lease);
  ASSERT_FALSE(short_lease);
  EXPECT_EQ(short_lease.error().message, "--lease: must be at least 500ms, not '499ms'");
  ASSERT_TRUE(
      PickDurationAtLeast(std::nullopt, "scheduler-lease", env, scheduler::kMinLease, lease));
  EXPECT_EQ(lease, std::chrono::milliseconds(5000)) << "unset: the default stays";
  auto bad =
      PickDurationAtLeast(std::string("soon"), "scheduler-lease", env, scheduler::kMinLease, lease);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().message.rfind("--lease: bad duration 'soon'", 0), 0u)
      << bad.error().message;
}

}  // namespace
}  // namespace ferry::cli
