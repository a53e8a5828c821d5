#include "cli/options.h"

#include <gtest/gtest.h>

#include <map>

#include "fake_env.h"

namespace ferry::cli {
namespace {

using std::chrono::milliseconds;

using ferry::testing::FakeEnv;

TEST(OptionsTest, DefaultsWhenNothingIsGiven) {
  auto cfg = ResolveWorkerConfig({}, {}, FakeEnv({}));
  ASSERT_TRUE(cfg) << cfg.error().message;
  WorkerOptions defaults;
  EXPECT_EQ(cfg->worker.broker.redis_url, "redis://127.0.0.1:6379");
  EXPECT_EQ(cfg->worker.broker.prefix, "ferry");
  EXPECT_EQ(cfg->worker.queues, std::vector<std::string>{"default"});
  EXPECT_EQ(cfg->worker.concurrency, defaults.concurrency);
  EXPECT_EQ(cfg->worker.lease, defaults.lease);
  EXPECT_EQ(cfg->worker.drain_timeout, defaults.drain_timeout);
  EXPECT_EQ(cfg->worker.health_port, defaults.health_port);
  EXPECT_EQ(cfg->log.level, "info");
  EXPECT_EQ(cfg->log.format, LogFormat::kText);
}

TEST(OptionsTest, EnvOverridesDefaults) {
  auto env = FakeEnv({{"FERRY_REDIS_URL", "redis://:secret@10.0.0.5:6380/2"},
                      {"FERRY_QUEUES", "high, default,low"},
                      {"FERRY_CONCURRENCY", "8"},
                      {"FERRY_PREFETCH", "16"},
                      {"FERRY_WORKER_ID", "w-env"},
                      {"FERRY_LEASE", "45s"},
                      {"FERRY_DRAIN_TIMEOUT", "2m"},
                      {"FERRY_DEFAULT_TIMEOUT", "0"},
                      {"FERRY_HEALTH_PORT", "9100"},
                      {"FERRY_LOG_LEVEL", "debug"},
                      {"FERRY_LOG_FORMAT", "json"},
                      {"FERRY_PREFIX", "envpfx"}});
  auto cfg = ResolveWorkerConfig({}, {}, env);
  ASSERT_TRUE(cfg) << cfg.error().message;
  const WorkerOptions& w = cfg->worker;
  EXPECT_EQ(w.broker.redis_url, "redis://:secret@10.0.0.5:6380/2");
  EXPECT_EQ(w.broker.prefix, "envpfx");
  EXPECT_EQ(w.queues, (std::vector<std::string>{"high", "default", "low"}));
  EXPECT_EQ(w.concurrency, 8);
  EXPECT_EQ(w.prefetch, 16);
  EXPECT_EQ(w.worker_id, "w-env");
  EXPECT_EQ(w.lease, milliseconds(45'000));
  EXPECT_EQ(w.drain_timeout, milliseconds(120'000));
  EXPECT_EQ(w.default_timeout, milliseconds(0));
  EXPECT_EQ(w.health_port, 9100);
  EXPECT_EQ(cfg->log.level, "debug");
  EXPECT_EQ(cfg->log.format, LogFormat::kJson);
}

// An empty --worker-id was taken for none and a generated id used; 200 characters is the most.
TEST(OptionsTest, AWorkerIdIsOneToTwoHundredCharacters) {
  auto with = [](const std::string& id) {
    WorkerFlags f;
    f.worker_id = id;
    return ResolveWorkerConfig({}, f, FakeEnv({}));
  };
  auto empty = with("");
  ASSERT_FALSE(empty);
  EXPECT_EQ(empty.error().message.rfind("--worker-id: worker id must be 1 to 200 characters", 0),
            0u)
      << empty.error().message;
  EXPECT_FALSE(with(std::string(201, 'w')));
  EXPECT_FALSE(with("a b"));
  auto longest = with(std::string(200, 'w'));
  ASSERT_TRUE(longest) << longest.error().message;
  EXPECT_EQ(longest->worker.worker_id, std::string(200, 'w'));
  auto one = with("w");
  ASSERT_TRUE(one) << one.error().message;
  EXPECT_EQ(one->worker.worker_id, "w");
}

TEST(OptionsTest, FlagsOverrideEnv) {
  auto env = FakeEnv({{"FERRY_REDIS_URL", "redis://env:1"},
                      {"FERRY_CONCURRENCY", "8"},
                      {"FERRY_LEASE", "45s"},
                      {"FERRY_QUEUES", "a"},
                      {"FERRY_PREFIX", "envpfx"}});
  GlobalFlags g;
  g.redis_url = "redis://flag:2";
  g.prefix = "flagpfx";
  WorkerFlags f;
  f.concurrency = "3";
  f.lease = "2s";
  auto cfg = ResolveWorkerConfig(g, f, env);
  ASSERT_TRUE(cfg) << cfg.error().message;
  EXPECT_EQ(cfg->worker.broker.redis_url, "redis://flag:2");
  EXPECT_EQ(cfg->worker.broker.prefix, "flagpfx");
  EXPECT_EQ(cfg->worker.concurrency, 3);
  EXPECT_EQ(cfg->worker.lease, milliseconds(2000));
  EXPECT_EQ(cfg->worker.queues, std::vector<std::string>{"a"});  // env, no flag given
}

TEST(OptionsTest, EmptyEnvCountsAsUnset) {
  auto cfg = ResolveClientConfig({}, FakeEnv({{"FERRY_REDIS_URL", ""}}));
  ASSERT_TRUE(cfg);
  EXPECT_EQ(cfg->broker.redis_url, "redis://127.0.0.1:6379");
  EXPECT_EQ(cfg->log.level, "warn");  // one-shot commands keep stderr quiet
}

TEST(OptionsTest, HandlerFlagsReplaceTheEnvironmentsDeclarations) {
  auto env = FakeEnv({{"FERRY_HANDLERS", "a=exec:/bin/true; b=http://h/x"},
                      {"FERRY_HANDLER_SECRET", "0123456789abcdef"}});
  auto from_env = ResolveWorkerConfig({}, {}, env);
  ASSERT_TRUE(from_env) << from_env.error().message;
  ASSERT_EQ(from_env->handlers.specs.size(), 2u);
  EXPECT_EQ(from_env->handlers.specs[1].url, "http://h/x");
  EXPECT_EQ(from_env->handlers.secret, "0123456789abcdef");

  WorkerFlags f;
  f.handlers = {"c=exec:/bin/true"};
  auto from_flag = ResolveWorkerConfig({}, f, env);
  ASSERT_TRUE(from_flag);
  ASSERT_EQ(from_flag->handlers.specs.size(), 1u);
  EXPECT_EQ(from_flag->handlers.specs[0].kind, "c");

  // One declaration per flag: a ';' would silently start a second one.
  f.handlers = {"c=exec:/bin/true;d=exec:/bin/true"};
  auto joined = ResolveWorkerConfig({}, f, env);
  ASSERT_FALSE(joined);
  EXPECT_NE(joined.error().message.find("one declaration per flag"), std::string::npos);
  // An empty flag declares nothing: said, not skipped (the worker started without it).
  for (const char* empty : {"", "  "}) {
    f.handlers = {"c=exec:/bin/true", empty};
    auto none = ResolveWorkerConfig({}, f, env);
    ASSERT_FALSE(none) << "'" << empty << "'";
    EXPECT_EQ(none.error().message, "--handler: empty; declare KIND=TARGET (docs/handlers.md)");
  }

  auto bad = ResolveWorkerConfig({}, {}, FakeEnv({{"FERRY_HANDLERS", "echo=exec:/bin/true"}}));
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("FERRY_HANDLERS"), std::string::npos);
  EXPECT_NE(bad.error().message.find("built in"), std::string::npos);
}

TEST(OptionsTest, ErrorsNameTheirSource) {
  auto from_env = ResolveWorkerConfig({}, {}, FakeEnv({{"FERRY_CONCURRENCY", "many"}}));
  ASSERT_FALSE(from_env);
  EXPECT_EQ(from_env.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(from_env.error().message.find("FERRY_CONCURRENCY"), std::string::npos);

  WorkerFlags f;
  f.concurrency = "0";
  auto from_flag = ResolveWorkerConfig({}, f, FakeEnv({}));
  ASSERT_FALSE(from_flag);
  EXPECT_NE(from_flag.error().message.find("--concurrency"), std::string::npos);

  for (const char* nice : {"20", "-1", "ten"}) {
    auto bad_nice = ResolveWorkerConfig({}, {}, FakeEnv({{"FERRY_NICE", nice}}));
    ASSERT_FALSE(bad_nice) << nice;
    EXPECT_NE(bad_nice.error().message.find("FERRY_NICE"), std::string::npos);
  }
  auto nicest = ResolveWorkerConfig({}, {}, FakeEnv({{"FERRY_NICE", "19"}}));
  ASSERT_TRUE(nicest) << nicest.error().message;
  EXPECT_EQ(nicest->worker.nice, 19);

  f = {};
  f.lease = "10 parsecs";
  auto bad_lease = ResolveWorkerConfig({}, f, FakeEnv({}));
  ASSERT_FALSE(bad_lease);
  EXPECT_NE(bad_lease.error().message.find("--lease"), std::string::npos);

  GlobalFlags g;
  g.redis_url = "http://nope";
  auto bad_url = ResolveClientConfig(g, FakeEnv({}));
  ASSERT_FALSE(bad_url);
  EXPECT_NE(bad_url.error().message.find("--redis-url"), std::string::npos);

  g = {};
  g.log_format = "xml";
  EXPECT_FALSE(ResolveClientConfig(g, FakeEnv({})));
  g = {};
  g.log_level = "loud";
  EXPECT_FALSE(ResolveClientConfig(g, FakeEnv({})));
}

// Seed deployments' environment files: REDIS_URL and Python-style log level names.
TEST(OptionsTest, SeedEnvironmentFilesWork) {
  auto cfg = ResolveClientConfig(
      {}, FakeEnv({{"REDIS_URL", "redis://10.0.0.7:6379/1"}, {"FERRY_LOG_LEVEL", "WARNING"}}));
  ASSERT_TRUE(cfg) << cfg.error().message;
  EXPECT_EQ(cfg->broker.redis_url, "redis://10.0.0.7:6379/1");
  EXPECT_EQ(cfg->log.level, "warn");
  // Ferry's own variable wins over REDIS_URL, and a bad REDIS_URL is named as such.
  cfg = ResolveClientConfig({}, FakeEnv({{"REDIS_URL", "redis://10.0.0.7:6379/1"},
                                         {"FERRY_REDIS_URL", "redis://10.0.0.8:6379"}}));
  ASSERT_TRUE(cfg);
  EXPECT_EQ(cfg->broker.redis_url, "redis://10.0.0.8:6379");
  auto bad = ResolveClientConfig({}, FakeEnv({{"REDIS_URL", "http://10.0.0.7"}}));
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().message.rfind("REDIS_URL: ", 0), 0u) << bad.error().message;

  for (const auto& [given, want] :
       std::vector<std::pair<std::string, std::string>>{{"INFO", "info"},
                                                        {"Debug", "debug"},
                                                        {"warning", "warn"},
                                                        {"FATAL", "critical"},
                                                        {"ERROR", "error"},
                                                        {"off", "off"}}) {
    auto level = ParseLogLevelName(given);
    ASSERT_TRUE(level) << given;
    EXPECT_EQ(*level, want) << given;
  }
  for (const char* bad_level : {"", "warn ", "warnings", "verbose", "INFO2"}) {
    EXPECT_FALSE(ParseLogLevelName(bad_level)) << bad_level;
  }
}

TEST(OptionsTest, RetentionSettings) {
  auto cfg = ResolveClientConfig({}, FakeEnv({{"FERRY_TASK_RETENTION", "6h"},
                                              {"FERRY_DEAD_RETENTION", "2d"},
                                              {"FERRY_EVENT_STREAM_LENGTH", "200"}}));
  ASSERT_TRUE(cfg) << cfg.error().message;
  EXPECT_EQ(cfg->broker.retention, std::chrono::hours(6));
  EXPECT_EQ(cfg->broker.dead_retention, std::chrono::hours(48));
  EXPECT_EQ(cfg->broker.events_maxlen, 200);
  GlobalFlags g;
  g.event_stream_length = "9";  // one under the floor
  auto low = ResolveClientConfig(g, FakeEnv({}));
  ASSERT_FALSE(low);
  EXPECT_NE(low.error().message.find("--event-stream-length"), std::string::npos);
  g.event_stream_length = "10";
  EXPECT_TRUE(ResolveClientConfig(g, FakeEnv({})));
  g = {};
  g.task_retention = "0";
  EXPECT_FALSE(ResolveClientConfig(g, FakeEnv({})));
  EXPECT_FALSE(ResolveClientConfig({}, FakeEnv({{"FERRY_DEAD_RETENTION", "forever"}})));
}

TEST(OptionsTest, MaxQueuesIsBoundedOnBothSides) {
  auto dflt = ResolveClientConfig({}, FakeEnv({}));
  ASSERT_TRUE(dflt);
  EXPECT_EQ(dflt->broker.max_queues, 1000);
  auto cfg = ResolveClientConfig({}, FakeEnv({{"FERRY_MAX_QUEUES", "1"}}));
  ASSERT_TRUE(cfg) << cfg.error().message;
  EXPECT_EQ(cfg->broker.max_queues, 1);
  for (const char* bad : {"0", "1000001", "-5", "ten", "99999999999999999999", ""}) {
    GlobalFlags g;
    g.max_queues = bad;
    auto refused = ResolveClientConfig(g, FakeEnv({}));
    ASSERT_FALSE(refused) << bad;
    EXPECT_EQ(refused.error().code, ErrorCode::kInvalidArgument) << bad;
    EXPECT_NE(refused.error().message.find("--max-queues"), std::string::npos) << bad;
  }
  GlobalFlags g;
  g.max_queues = "1000000";
  auto top = ResolveClientConfig(g, FakeEnv({}));
  ASSERT_TRUE(top);
  EXPECT_EQ(top->broker.max_queues, 1000000);
}

TEST(OptionsTest, ALeaseUnderTheWorkersMinimumIsRefusedNamingTheSetting) {
  // The worker refuses it too (MakeWorker), but only after the store was opened and without
  // saying which setting: here it is a bad setting like any other.
  WorkerFlags f;
  f.lease = "99ms";
  auto short_flag = ResolveWorkerConfig({}, f, FakeEnv({}));
  ASSERT_FALSE(short_flag);
  EXPECT_EQ(short_flag.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(short_flag.error().message, "--lease: must be at least 100ms, not '99ms'");
  auto short_env = ResolveWorkerConfig({}, {}, FakeEnv({{"FERRY_LEASE", "0.05"}}));
  ASSERT_FALSE(short_env);
  EXPECT_EQ(short_env.error().message, "FERRY_LEASE: must be at least 100ms, not '0.05'");
  f.lease = "100ms";  // the minimum itself
  auto at_minimum = ResolveWorkerConfig({}, f, FakeEnv({}));
  ASSERT_TRUE(at_minimum) << at_minimum.error().message;
  EXPECT_EQ(at_minimum->worker.lease, kMinTaskLease);
}

TEST(OptionsTest, BadFlagValueWinsOverGoodEnv) {
  // flag > env holds for errors too: a bad flag is reported, not silently replaced by the env.
  WorkerFlags f;
  f.health_port = "70000";
  auto cfg = ResolveWorkerConfig({}, f, FakeEnv({{"FERRY_HEALTH_PORT", "9000"}}));
  ASSERT_FALSE(cfg);
  EXPECT_NE(cfg.error().message.find("--health-port"), std::string::npos);
}

TEST(OptionsTest, QueueList) {
  EXPECT_EQ(*ParseQueueList("a"), std::vector<std::string>{"a"});
  EXPECT_EQ(*ParseQueueList(" high , low "), (std::vector<std::string>{"high", "low"}));
  EXPECT_FALSE(ParseQueueList(""));
  EXPECT_FALSE(ParseQueueList("a,,b"));
  EXPECT_FALSE(ParseQueueList("a,a"));
  EXPECT_FALSE(ParseQueueList("bad queue"));
}

TEST(OptionsTest, Iso8601) {
  EXPECT_EQ(*ParseIso8601("1970-01-01T00:00:00Z"), 0);
  EXPECT_EQ(*ParseIso8601("2026-02-17T10:30:15Z"), 1771324215000);
  EXPECT_EQ(*ParseIso8601("2026-02-17T10:30:15.250Z"), 1771324215250);
  EXPECT_EQ(*ParseIso8601("2026-02-17T12:30:15+02:00"), 1771324215000);
  EXPECT_EQ(*ParseIso8601("2026-02-17 05:30:15-0500"), 1771324215000);
  EXPECT_EQ(*ParseIso8601("2026-02-17T10:30Z"), 1771324200000);
  EXPECT_EQ(*ParseIso8601("2028-02-29T00:00:00Z"), 1835395200000);  // a leap day
  EXPECT_EQ(*ParseIso8601("2027-01-01T00:00:59+23:59"), 1798675319000);
  EXPECT_FALSE(ParseIso8601("2026-02-17T10:30:15"));  // no zone: ambiguous
  EXPECT_FALSE(ParseIso8601("2026-02-17"));           // nor a date alone
  EXPECT_FALSE(ParseIso8601("tomorrow"));
  EXPECT_FALSE(ParseIso8601("2026-13-01T00:00:00Z"));
  EXPECT_FALSE(ParseIso8601("2026-02-17T10:30:15Zjunk"));
}

// Each a step past what exists: refused, never moved to the nearest time that does (2027-02-30
// was taken as 2027-03-02, an offset of +99:99 as 4 days and 3 hours).
TEST(OptionsTest, Iso8601RefusesTimesThatDoNotExist) {
  for (const char* text :
       {"2027-02-30T10:00:00Z", "2027-02-29T00:00:00Z", "2026-04-31T00:00:00Z",
        "2027-01-01T24:00:00Z", "2027-01-01T00:60:00Z", "2027-01-01T00:00:60Z",
        "2027-01-01T00:00:00+24:00", "2027-01-01T00:00:00+23:60", "2027-01-01T00:00:00+99:99"}) {
    auto t = ParseIso8601(text);
    ASSERT_FALSE(t) << text << " taken as " << *t;
    EXPECT_NE(t.error().message.find(std::string("bad time '") + text + "'"), std::string::npos)
        << t.error().message;
  }
}

TEST(OptionsTest, Iso8601NeedsAZoneAndItsExamplesHaveOne) {
  // --eta is an instant: a time without a zone is refused, and the examples the message gives
  // are forms it takes (they were the scheduler's, with zone-less ones it then refused).
  for (const char* text : {"2027-03-08T01:30", "2027-03-08", "yesterday"}) {
    auto t = ParseIso8601(text);
    ASSERT_FALSE(t) << text;
    EXPECT_NE(
        t.error().message.find("(expected e.g. 2026-03-08T01:30:00Z or 2026-03-08T01:30:00-05:00)"),
        std::string::npos)
        << t.error().message;
  }
  EXPECT_NE(ParseIso8601("2027-03-08").error().message.find("needs a time with a zone"),
            std::string::npos);
  auto zoned = ParseIso8601("2027-03-08T01:30:00Z");
  ASSERT_TRUE(zoned) << zoned.error().message;
  EXPECT_EQ(*zoned, 1804469400000);
}

}  // namespace
}  // namespace ferry::cli
