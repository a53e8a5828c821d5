// The deployment examples under deploy/redis/ stay true: each ferry.env names a URL and settings
// Ferry accepts together, and the ACL rule loads as Redis' own aclfile.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <sstream>

#include "core/redis_url.h"
#include "deploy_support.h"
#include "harness.h"
#include "redis_topology.h"

namespace ferry::testing {
namespace {

std::string Source(const std::string& path) { return std::string(FERRY_SOURCE_DIR) + "/" + path; }

// KEY=value lines of an env file (comments and blank lines skipped).
std::map<std::string, std::string> EnvFile(const std::string& path) {
  std::map<std::string, std::string> out;
  std::ifstream f(path);
  EXPECT_TRUE(f) << "cannot read " << path;
  std::string line;
  while (std::getline(f, line)) {
    if (line.empty() || line[0] == '#') continue;
    auto eq = line.find('=');
    if (eq != std::string::npos) out[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return out;
}

class DeployExample : public ::testing::TestWithParam<std::string> {};

TEST_P(DeployExample, SettingsFitTheUrl) {
  auto env = EnvFile(Source("deploy/redis/" + GetParam() + "/ferry.env"));
  ASSERT_TRUE(env.count("FERRY_REDIS_URL"));
  RedisConnectOptions o;
  o.tls.ca_file = env["FERRY_REDIS_TLS_CA"];
  o.tls.cert_file = env["FERRY_REDIS_TLS_CERT"];
  o.tls.key_file = env["FERRY_REDIS_TLS_KEY"];
  o.sentinel_password = env["FERRY_REDIS_SENTINEL_PASSWORD"];
  o.username = env["FERRY_REDIS_USERNAME"];
  auto ep = ResolveRedisEndpoint(env["FERRY_REDIS_URL"], o);
  ASSERT_TRUE(ep) << ep.error().message;
  const std::map<std::string, RedisTopology> kWant = {{"tls", RedisTopology::kSingle},
                                                      {"sentinel", RedisTopology::kSentinel},
                                                      {"cluster", RedisTopology::kCluster}};
  EXPECT_EQ(ep->topology, kWant.at(GetParam()));
  EXPECT_EQ(ep->tls, GetParam() == "tls");
}

INSTANTIATE_TEST_SUITE_P(Redis, DeployExample, ::testing::Values("tls", "sentinel", "cluster"));

TEST(DeployExampleAcl, LoadsAsAnAclFileAndRunsFerry) {
  TempDir dir;
  std::ifstream in(Source("deploy/redis/ferry-user.acl"));
  std::stringstream text;
  text << in.rdbuf();
  std::string rule = text.str();
  rule.replace(rule.find(">CHANGE-ME"), 10, ">acl-file-test");
  const std::string path = (dir.path() / "users.acl").string();
  std::ofstream(path) << rule;
  RedisNode::Options o;
  o.extra = {"--aclfile", path};
  RedisNode server(o);
  BrokerOptions b = OptionsFor("redis://ferry:acl-file-test@" + server.address());
  b.prefix = "ferry";  // the rule's key pattern
  auto broker = OpenOk(b);
  ASSERT_TRUE(broker);
  EXPECT_FALSE(RoundTrip(*broker).empty());
  auto missing = broker->MissingPermissions();
  ASSERT_TRUE(missing) << missing.error().ToString();
  EXPECT_TRUE(missing->empty()) << ::testing::PrintToString(*missing);
}

}  // namespace
}  // namespace ferry::testing
