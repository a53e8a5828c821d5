#include "ops/config.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "cli/options.h"
#include "fake_env.h"

namespace ferry::ops {
namespace {

using ferry::testing::FakeEnv;

std::shared_ptr<const ConfigFile> File(const std::string& text) {
  auto f = ParseConfigText(text, "ferry.conf");
  EXPECT_TRUE(f) << (f ? "" : f.error().message);
  return std::make_shared<const ConfigFile>(*f);
}

TEST(ConfigFile, ParsesKeyValueYamlCommentsAndQuotes) {
  auto f = ParseConfigText(
      "# comment\n\nredis-url = redis://:p@h:1/0\nlease: 10s\n"
      "log_format = \"json\"  # trailing\nprefix='a b'\n--queues = high,default\n",
      "x.conf");
  ASSERT_TRUE(f) << f.error().message;
  EXPECT_EQ(f->values.at("redis-url").value, "redis://:p@h:1/0");
  EXPECT_EQ(f->values.at("lease").value, "10s");
  EXPECT_EQ(f->values.at("lease").line, 4);
  EXPECT_EQ(f->values.at("log-format").value, "json");
  EXPECT_EQ(f->values.at("prefix").value, "a b");
  EXPECT_EQ(f->values.at("queues").value, "high,default");
  EXPECT_TRUE(f->unknown_keys.empty());
}

// A file saved with a byte order mark: the mark is not part of the first key.
TEST(ConfigFile, AByteOrderMarkIsNotPartOfTheFirstKey) {
  auto cfg = ParseConfigText(
      "\xEF\xBB\xBF"
      "concurrency = 2\nlease = 30s\n",
      "c.conf");
  ASSERT_TRUE(cfg) << cfg.error().message;
  EXPECT_EQ(cfg->values.at("concurrency").value, "2");
  EXPECT_TRUE(cfg->unknown_keys.empty());
  // Only at the very start: elsewhere it is a byte of a key, and reported as such.
  auto later = ParseConfigText(
      "lease = 30s\n\xEF\xBB\xBF"
      "concurrency = 2\n",
      "c.conf");
  ASSERT_TRUE(later) << later.error().message;
  EXPECT_EQ(later->values.count("concurrency"), 0u);
}

TEST(ConfigFile, ErrorsNameTheLine) {
  auto f = ParseConfigText("lease = 1s\njust words\n", "x.conf");
  ASSERT_FALSE(f);
  EXPECT_NE(f.error().message.find("x.conf:2"), std::string::npos) << f.error().message;
  auto twice = ParseConfigText("lease = 1s\nlease = 2s\n", "x.conf");
  ASSERT_FALSE(twice);
  EXPECT_NE(twice.error().message.find("set twice"), std::string::npos);
  auto quote = ParseConfigText("prefix = \"abc\n", "x.conf");
  ASSERT_FALSE(quote);
}

// A key or value that is not text would be echoed (an escape sequence in a warning) or
// replaced (U+FFFD in JSON): the line is refused, naming the byte.
TEST(ConfigFile, ALineThatIsNotTextIsRefusedNamingTheByte) {
  const std::pair<std::string, std::string> cases[] = {
      {std::string("lease = 1s\nk\xff"
                   "ey = v\n"),
       "x.conf:2: byte 2 is not UTF-8 text"},
      {std::string("lease = 1s\n\x1b]0;t\x07k = v\n"),
       "x.conf:2: byte 1 is the control character U+001B"},
      {std::string("prefix = a\0b\n", 13), "x.conf:1: byte 11 is the control character U+0000"},
      {std::string("prefix = a\x7f\n"), "x.conf:1: byte 11 is the control character U+007F"},
      {std::string("prefix = \xc3\x28\n"), "x.conf:1: byte 10 is not UTF-8 text"},
  };
  for (const auto& [text, message] : cases) {
    auto f = ParseConfigText(text, "x.conf");
    ASSERT_FALSE(f) << message;
    EXPECT_EQ(f.error().code, ErrorCode::kInvalidArgument);
    EXPECT_EQ(f.error().message, message);
  }
  // The near misses: a tab, a CRLF line end, and UTF-8 beyond ASCII are text.
  auto ok = ParseConfigText("prefix =\t'caf\xc3\xa9 \xe2\x82\xac'\r\nlease = 1s\r\n", "x.conf");
  ASSERT_TRUE(ok) << ok.error().message;
  EXPECT_EQ(ok->values.at("prefix").value, "caf\xc3\xa9 \xe2\x82\xac");
  EXPECT_EQ(ok->values.at("lease").value, "1s");
}

// A mistyped setting's variable is named, with the setting meant; what is near no setting's
// (a script's own variable) and what Ferry reads besides its settings are not.
TEST(ConfigFile, AMistypedVariableIsNamedWithTheSettingMeant) {
  EXPECT_EQ(MistypedVariables({"FERRY_REDIS_ULR", "FERRY_CONCURENCY", "FERRY_LEASE_", "PATH",
                               "FERRY_REDIS_URL", "FERRY_API_THREADS", "FERRY_SERVER",
                               "FERRY_TOKEN_FILE", "FERRY_SECRET_GITHUB_HOOK", "FERRY_TASK_ID",
                               "FERRY_EVENTS_FD", "FERRY_BIN", "FERRY_BUILD_DIR", "FERRY_WERROR",
                               "FERRY_SCREENSHOTS", "ferry_redis_url"}),
            (std::vector<std::string>{
                "FERRY_REDIS_ULR is not a Ferry setting and is ignored; did you mean "
                "FERRY_REDIS_URL?",
                "FERRY_CONCURENCY is not a Ferry setting and is ignored; did you mean "
                "FERRY_CONCURRENCY?",
                "FERRY_LEASE_ is not a Ferry setting and is ignored; did you mean FERRY_LEASE?"}));
  EXPECT_EQ(NearestKey("lese"), "lease");
  EXPECT_EQ(NearestKey("redis_ulr"), "redis-url");
  EXPECT_EQ(NearestKey("zzz"), "");
}

TEST(ConfigFile, UnknownKeysAreReportedNotFatal) {
  auto f = ParseConfigText("lese = 1s\n", "x.conf");
  ASSERT_TRUE(f);
  ASSERT_EQ(f->unknown_keys.size(), 1u);
  EXPECT_EQ(f->unknown_keys[0], "lese");
}

TEST(ConfigFile, AMissingFileIsABadSetting) {
  auto f = LoadConfigFrom(std::string("/nonexistent/ferry.conf"), FakeEnv({}));
  ASSERT_FALSE(f);
  EXPECT_EQ(f.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(f.error().message.find("--config"), std::string::npos);
  auto from_env =
      LoadConfigFrom(std::nullopt, FakeEnv({{"FERRY_CONFIG", "/nonexistent/ferry.conf"}}));
  ASSERT_FALSE(from_env);
  EXPECT_EQ(from_env.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(from_env.error().message.find("FERRY_CONFIG"), std::string::npos);
  auto none = LoadConfigFrom(std::nullopt, FakeEnv({}));
  ASSERT_TRUE(none);
  EXPECT_EQ(*none, nullptr);
}

// What is not a page of settings is refused naming why, before it can take memory: a directory,
// a device that never ends, a file one byte over the cap (the cap itself is read), an empty
// --config.
TEST(ConfigFile, WhatIsNotASmallFileIsRefused) {
  const std::string dir = ::testing::TempDir() + "ferry-config-test";
  std::filesystem::create_directories(dir);
  auto refused = [](const std::optional<std::string>& flag) {
    auto f = LoadConfigFrom(flag, FakeEnv({}));
    EXPECT_FALSE(f) << flag.value_or("(none)");
    if (f) return std::string();
    EXPECT_EQ(f.error().code, ErrorCode::kInvalidArgument);
    return f.error().message;
  };
  EXPECT_EQ(refused(dir), "--config: config file " + dir + ": is a directory");
  EXPECT_EQ(refused(std::string("/dev/zero")),
            "--config: config file /dev/zero: larger than 1048576 bytes");
  EXPECT_EQ(refused(std::string("")), "--config is empty: name a file or leave it out");
  const std::string at_cap = dir + "/at-cap.conf";
  const std::string over = dir + "/over.conf";
  {
    std::string comments(kMaxConfigFileBytes - 11, '#');
    std::ofstream(at_cap) << "lease = 1s\n" << comments;
    std::ofstream(over) << "lease = 1s\n" << comments << "#";
  }
  ASSERT_EQ(std::filesystem::file_size(at_cap), kMaxConfigFileBytes);
  auto read = LoadConfigFrom(at_cap, FakeEnv({}));
  ASSERT_TRUE(read) << read.error().message;
  EXPECT_EQ((*read)->values.at("lease").value, "1s");
  EXPECT_EQ(refused(over), "--config: config file " + over + ": larger than 1048576 bytes");
  std::filesystem::remove_all(dir);
}

TEST(ConfigFile, EnvNames) {
  EXPECT_EQ(EnvNameForKey("redis-url"), "FERRY_REDIS_URL");
  EXPECT_EQ(EnvNameOf("threads"), "FERRY_API_THREADS");
  EXPECT_EQ(EnvNameOf("alert-wait-time"), "FERRY_ALERT_WAIT_TIME");
}

// flag > env > file > default, through the CLI's own resolution.
TEST(ConfigPrecedence, FlagBeatsEnvBeatsFileBeatsDefault) {
  auto file = File("lease = 11s\nconcurrency = 3\nprefix = fromfile\nqueues = a,b\n");
  auto env = LayeredEnv(FakeEnv({{"FERRY_LEASE", "22s"}, {"FERRY_PREFIX", "fromenv"}}), file);
  cli::GlobalFlags g;
  cli::WorkerFlags wf;
  wf.lease = "33s";
  auto cfg = cli::ResolveWorkerConfig(g, wf, env);
  ASSERT_TRUE(cfg) << cfg.error().message;
  EXPECT_EQ(cfg->worker.lease, std::chrono::seconds(33));  // flag
  EXPECT_EQ(cfg->worker.broker.prefix, "fromenv");         // env over file
  EXPECT_EQ(cfg->worker.concurrency, 3);                   // file
  EXPECT_EQ(cfg->worker.queues, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(cfg->worker.drain_timeout, std::chrono::seconds(30));  // default

  wf.lease.reset();
  cfg = cli::ResolveWorkerConfig(g, wf, env);
  ASSERT_TRUE(cfg);
  EXPECT_EQ(cfg->worker.lease, std::chrono::seconds(22));  // env beats file
  auto file_only = LayeredEnv(FakeEnv({}), file);
  cfg = cli::ResolveWorkerConfig(g, wf, file_only);
  ASSERT_TRUE(cfg);
  EXPECT_EQ(cfg->worker.lease, std::chrono::seconds(11));  // file beats default
}

TEST(ConfigPrecedence, BadFileValueIsRejected) {
  auto env = LayeredEnv(FakeEnv({}), File("concurrency = lots\n"));
  auto cfg = cli::ResolveWorkerConfig(cli::GlobalFlags{}, cli::WorkerFlags{}, env);
  ASSERT_FALSE(cfg);
  EXPECT_NE(cfg.error().message.find("FERRY_CONCURRENCY"), std::string::npos);
}

TEST(EffectiveSettings, SourcesAndMasking) {
  auto file = File(
      "redis-url = redis://:filepw@h:6379\nalert-webhook-secret = s3cr3t\n"
      "store = postgresql://u:dbpw@db/ferry\n");
  auto settings =
      EffectiveSettings({{"prefix", "p"}}, FakeEnv({{"FERRY_LEASE", "5s"}}), file.get());
  std::map<std::string, EffectiveSetting> by;
  for (auto& s : settings) by[s.info.key] = s;
  EXPECT_EQ(by["prefix"].source, Source::kFlag);
  EXPECT_EQ(by["prefix"].origin, "--prefix");
  EXPECT_EQ(by["lease"].source, Source::kEnv);
  EXPECT_EQ(by["lease"].origin, "FERRY_LEASE");
  EXPECT_EQ(by["redis-url"].source, Source::kFile);
  EXPECT_EQ(by["redis-url"].origin, "ferry.conf:1");
  EXPECT_EQ(by["redis-url"].value, "redis://:****@h:6379");
  EXPECT_EQ(by["alert-webhook-secret"].value, "********");
  EXPECT_EQ(by["store"].value, "postgresql://u:****@db/ferry");
  EXPECT_EQ(by["concurrency"].source, Source::kDefault);
  for (const auto& s : settings) {
    EXPECT_EQ(s.value.find("filepw"), std::string::npos);
    EXPECT_EQ(s.value.find("s3cr3t"), std::string::npos);
    EXPECT_EQ(s.value.find("dbpw"), std::string::npos);
  }
}

TEST(EffectiveSettings, CredentialsInsideUrlsAreMaskedWhateverTheSetting) {
  auto file = File(
      "store = postgresql://db/ferry?user=u&password=qpw1\n"
      "alert-webhook-url = http://user:urlpw2@hooks.example/x?token=tok3&team=ops\n");
  auto settings = EffectiveSettings({}, FakeEnv({}), file.get());
  std::map<std::string, EffectiveSetting> by;
  for (auto& s : settings) by[s.info.key] = s;
  EXPECT_EQ(by["store"].value, "postgresql://db/ferry?user=u&password=****");
  EXPECT_EQ(by["alert-webhook-url"].value, "http://user:****@hooks.example/x?token=****&team=ops");
  for (const auto& s : settings) {
    for (const char* secret : {"qpw1", "urlpw2", "tok3"}) {
      EXPECT_EQ(s.value.find(secret), std::string::npos) << s.info.key << ": " << s.value;
    }
  }
}

TEST(MaskSecret, Forms) {
  EXPECT_EQ(MaskSecret("redis-url", "redis://secret@h:1"), "redis://****@h:1");
  EXPECT_EQ(MaskSecret("redis-url", "redis://h:1"), "redis://h:1");
  EXPECT_EQ(MaskSecret("store", "/var/lib/ferry/ferry.db"), "/var/lib/ferry/ferry.db");
  EXPECT_EQ(MaskSecret("store", "host=db password=x user=u"), "host=db password=**** user=u");
  EXPECT_EQ(MaskSecret("alert-webhook-secret", ""), "");
}

}  // namespace
}  // namespace ferry::ops
