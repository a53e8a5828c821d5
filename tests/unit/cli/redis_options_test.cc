// The Redis connection settings beyond the URL: flag > env > default, and clear errors when they
// do not fit the URL.
#include <gtest/gtest.h>

#include <fstream>
#include <map>

#include "cli/options.h"

namespace ferry::cli {
namespace {

EnvLookup Env(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](const std::string& name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end() || it->second.empty()) return std::nullopt;
    return it->second;
  };
}

// A readable file for the TLS settings (they are checked at start-up).
std::string SomeFile() {
  static const std::string path = [] {
    std::string p = ::testing::TempDir() + "ferry-redis-options-test.pem";
    std::ofstream(p) << "not checked here\n";
    return p;
  }();
  return path;
}

TEST(RedisOptions, DefaultsAreOffAndVerifying) {
  auto cfg = ResolveClientConfig({}, Env({}));
  ASSERT_TRUE(cfg) << cfg.error().message;
  EXPECT_TRUE(cfg->broker.redis.tls.verify);
  EXPECT_TRUE(cfg->broker.redis.username.empty());
  EXPECT_EQ(cfg->broker.wait_replicas, 0);
  EXPECT_EQ(cfg->broker.wait_timeout, std::chrono::seconds(1));
}

TEST(RedisOptions, FlagsBeatEnvironment) {
  GlobalFlags g;
  g.redis_url = "rediss://redis.example.com:6380";
  g.redis_username = "ferry";
  g.redis_tls_ca = SomeFile();
  g.redis_wait_replicas = "1";
  auto cfg = ResolveClientConfig(g, Env({{"FERRY_REDIS_USERNAME", "other"},
                                         {"FERRY_REDIS_TLS_SERVER_NAME", "redis.internal"},
                                         {"FERRY_REDIS_TLS_VERIFY", "no"},
                                         {"FERRY_REDIS_WAIT_REPLICAS", "2"},
                                         {"FERRY_REDIS_WAIT_TIMEOUT", "250ms"}}));
  ASSERT_TRUE(cfg) << cfg.error().message;
  const auto& r = cfg->broker.redis;
  EXPECT_EQ(r.username, "ferry");
  EXPECT_EQ(r.tls.ca_file, SomeFile());
  EXPECT_EQ(r.tls.server_name, "redis.internal");
  EXPECT_FALSE(r.tls.verify);
  EXPECT_EQ(cfg->broker.wait_replicas, 1);
  EXPECT_EQ(cfg->broker.wait_timeout, std::chrono::milliseconds(250));
}

TEST(RedisOptions, TlsSettingsNeedARedissUrl) {
  GlobalFlags g;
  g.redis_url = "redis://127.0.0.1:6379";
  g.redis_tls_ca = SomeFile();
  auto cfg = ResolveClientConfig(g, Env({}));
  ASSERT_FALSE(cfg);
  EXPECT_NE(cfg.error().message.find("rediss://"), std::string::npos) << cfg.error().message;
  g.redis_url = "rediss://127.0.0.1:6379";
  EXPECT_TRUE(ResolveClientConfig(g, Env({})));
}

TEST(RedisOptions, CertificateNeedsItsKey) {
  GlobalFlags g;
  g.redis_url = "rediss://127.0.0.1:6379";
  g.redis_tls_cert = SomeFile();
  auto cfg = ResolveClientConfig(g, Env({}));
  ASSERT_FALSE(cfg);
  EXPECT_NE(cfg.error().message.find("key"), std::string::npos);
  g.redis_tls_key = SomeFile();
  EXPECT_TRUE(ResolveClientConfig(g, Env({})));
}

TEST(RedisOptions, MissingFilesAreNamed) {
  GlobalFlags g;
  g.redis_url = "rediss://127.0.0.1:6379";
  g.redis_tls_ca = "/nonexistent/ca.pem";
  auto cfg = ResolveClientConfig(g, Env({}));
  ASSERT_FALSE(cfg);
  EXPECT_NE(cfg.error().message.find("--redis-tls-ca"), std::string::npos);
  EXPECT_NE(cfg.error().message.find("/nonexistent/ca.pem"), std::string::npos);
}

TEST(RedisOptions, BadValuesNameTheirSource) {
  GlobalFlags g;
  g.redis_url = "rediss://127.0.0.1:6379";
  auto verify = ResolveClientConfig(g, Env({{"FERRY_REDIS_TLS_VERIFY", "maybe"}}));
  ASSERT_FALSE(verify);
  EXPECT_NE(verify.error().message.find("FERRY_REDIS_TLS_VERIFY"), std::string::npos);
  // 0..100 replicas: one past each end fails.
  EXPECT_FALSE(ResolveClientConfig(g, Env({{"FERRY_REDIS_WAIT_REPLICAS", "-1"}})));
  EXPECT_FALSE(ResolveClientConfig(g, Env({{"FERRY_REDIS_WAIT_REPLICAS", "101"}})));
  EXPECT_TRUE(ResolveClientConfig(g, Env({{"FERRY_REDIS_WAIT_REPLICAS", "100"}})));
  EXPECT_FALSE(ResolveClientConfig(g, Env({{"FERRY_REDIS_WAIT_TIMEOUT", "0s"}})));
}

TEST(RedisOptions, UsernamesMustAgree) {
  GlobalFlags g;
  g.redis_url = "redis://alice:pw@127.0.0.1:6379";
  g.redis_username = "bob";
  auto cfg = ResolveClientConfig(g, Env({}));
  ASSERT_FALSE(cfg);
  EXPECT_NE(cfg.error().message.find("alice"), std::string::npos);
  EXPECT_EQ(cfg.error().message.find("pw@"), std::string::npos);  // no password in messages
  g.redis_username = "alice";
  EXPECT_TRUE(ResolveClientConfig(g, Env({})));
}

TEST(RedisOptions, SentinelCredentialsNeedASentinelUrl) {
  GlobalFlags g;
  g.redis_sentinel_password = "s3cret";
  EXPECT_FALSE(ResolveClientConfig(g, Env({})));
  g.redis_url = "redis+sentinel://127.0.0.1:26379/mymaster";
  EXPECT_TRUE(ResolveClientConfig(g, Env({})));
}

}  // namespace
}  // namespace ferry::cli
