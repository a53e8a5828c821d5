// ACL users: redis://user:password@ and --redis-username, the documented minimal rule
// (deploy/redis/ferry-user.acl) running everything Ferry does, and `ferry doctor` naming what a
// narrower user lacks.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "broker/leader.h"
#include "core/time_util.h"
#include "deploy_support.h"
#include "harness.h"
#include "redis_topology.h"

namespace ferry::testing {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// The documented rule for `prefix`, with `password`, as ACL SETUSER arguments.
std::vector<std::string> DocumentedRule(const std::string& user, const std::string& password,
                                        const std::string& prefix) {
  std::ifstream f(std::string(FERRY_SOURCE_DIR) + "/deploy/redis/ferry-user.acl");
  std::stringstream text;
  text << f.rdbuf();
  std::vector<std::string> words;
  std::istringstream in(text.str());
  std::string w;
  while (in >> w) words.push_back(w);
  EXPECT_GT(words.size(), 10u) << "deploy/redis/ferry-user.acl is missing";
  std::vector<std::string> out = {"ACL", "SETUSER", user};
  for (size_t i = 2; i < words.size(); ++i) {  // skip "user ferry"
    if (words[i] == ">CHANGE-ME") {
      out.push_back(">" + password);
    } else if (words[i] == "~ferry:*") {
      out.push_back("~" + prefix + ":*");
    } else {
      out.push_back(words[i]);
    }
  }
  return out;
}

class RedisAclTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { server_ = new RedisNode(RedisNode::Options{}); }
  static void TearDownTestSuite() { delete server_; }
  static std::string Url(const std::string& userinfo) {
    return "redis://" + userinfo + "@127.0.0.1:" + std::to_string(server_->port());
  }
  static RedisNode* server_;
};

RedisNode* RedisAclTest::server_ = nullptr;

TEST_F(RedisAclTest, TheDocumentedRuleRunsEverything) {
  BrokerOptions o = OptionsFor("");
  ASSERT_EQ(server_->Cli(DocumentedRule("ferry-doc", "doc-pw", o.prefix)), "OK");
  o.redis_url = Url("ferry-doc:doc-pw");
  auto broker = OpenOk(o);
  ASSERT_TRUE(broker);
  ExerciseEverything(*broker, o);

  auto missing = broker->MissingPermissions();
  ASSERT_TRUE(missing) << missing.error().ToString();
  EXPECT_THAT(*missing, IsEmpty());
}

TEST_F(RedisAclTest, UsernameFlagWithThePasswordInTheUrl) {
  BrokerOptions o = OptionsFor("");
  ASSERT_EQ(server_->Cli(DocumentedRule("ferry-flag", "flag-pw", o.prefix)), "OK");
  o.redis_url = Url(":flag-pw");
  o.redis.username = "ferry-flag";
  auto broker = OpenOk(o);
  ASSERT_TRUE(broker);
  EXPECT_FALSE(RoundTrip(*broker).empty());
  // Without the user the password is the default user's, which is wrong.
  o.redis.username.clear();
  auto b = MakeRedisBrokerFactory(o)->Open();
  ASSERT_FALSE(b);
  EXPECT_EQ(b.error().code, ErrorCode::kUnauthenticated);
}

TEST_F(RedisAclTest, WrongPasswordNamesTheUser) {
  BrokerOptions o = OptionsFor("");
  ASSERT_EQ(server_->Cli(DocumentedRule("ferry-pw", "right", o.prefix)), "OK");
  o.redis_url = Url("ferry-pw:wrong");
  auto b = MakeRedisBrokerFactory(o)->Open();
  ASSERT_FALSE(b);
  EXPECT_EQ(b.error().code, ErrorCode::kUnauthenticated);
  EXPECT_THAT(b.error().message, HasSubstr("'ferry-pw'"));
  EXPECT_THAT(b.error().message, ::testing::Not(HasSubstr("wrong")));
}

TEST_F(RedisAclTest, MissingCommandsAndKeysAreNamed) {
  BrokerOptions o = OptionsFor("");
  auto rule = DocumentedRule("ferry-narrow", "narrow", o.prefix);
  // One past the rule: take away two commands the scripts and the broker need.
  rule.push_back("-xautoclaim");
  rule.push_back("-wait");
  ASSERT_EQ(server_->Cli(rule), "OK");
  o.redis_url = Url("ferry-narrow:narrow");
  auto broker = OpenOk(o);
  ASSERT_TRUE(broker);
  auto missing = broker->MissingPermissions();
  ASSERT_TRUE(missing) << missing.error().ToString();
  EXPECT_THAT(*missing, Contains("xautoclaim"));
  EXPECT_THAT(*missing, Contains("wait"));
  EXPECT_EQ(missing->size(), 2u) << ::testing::PrintToString(*missing);
  // The reclaim script stops with a permission error, not a crash or a silent skip.
  auto r = broker->Reclaim("default", "w", std::chrono::milliseconds(0), 1);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kPermissionDenied) << r.error().ToString();

  // Keys outside the user's pattern: every probe on them is refused.
  BrokerOptions other = OptionsFor("");
  ASSERT_EQ(server_->Cli(DocumentedRule("ferry-keys", "keys", "elsewhere")), "OK");
  other.redis_url = Url("ferry-keys:keys");
  auto b2 = OpenOk(other);
  ASSERT_TRUE(b2);
  auto keys = b2->MissingPermissions();
  ASSERT_TRUE(keys);
  EXPECT_THAT(*keys, Contains("hset on " + other.prefix + ":* keys"));
}

// `ferry doctor` shows the missing permissions as a FAIL with the fix.
TEST_F(RedisAclTest, DoctorReportsMissingPermissions) {
  const std::string prefix = "t" + RandomHex(6);
  auto rule = DocumentedRule("ferry-doctor", "doc", prefix);
  rule.push_back("-xclaim");
  ASSERT_EQ(server_->Cli(rule), "OK");
  auto r = RunCommand({FerryBinary(), "doctor", "--json", "--redis-url", Url("ferry-doctor:doc"),
                       "--prefix", prefix},
                      std::chrono::seconds(60));
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  auto doc = Json::parse(r.out, nullptr, false);
  ASSERT_FALSE(doc.is_discarded()) << r.out;
  bool found = false;
  for (const auto& c : doc["checks"]) {
    if (c.value("name", "") != "redis.acl") continue;
    found = true;
    EXPECT_EQ(c.value("level", ""), "FAIL");
    EXPECT_THAT(c.value("message", ""), HasSubstr("xclaim"));
    EXPECT_THAT(c.value("fix", ""), HasSubstr("+xclaim"));
  }
  EXPECT_TRUE(found) << r.out;

  // The full rule: the check passes.
  const std::string ok_prefix = "t" + RandomHex(6);
  ASSERT_EQ(server_->Cli(DocumentedRule("ferry-doctor-ok", "ok", ok_prefix)), "OK");
  auto good = RunCommand({FerryBinary(), "doctor", "--json", "--redis-url",
                          Url("ferry-doctor-ok:ok"), "--prefix", ok_prefix},
                         std::chrono::seconds(60));
  auto gdoc = Json::parse(good.out, nullptr, false);
  ASSERT_FALSE(gdoc.is_discarded()) << good.out;
  for (const auto& c : gdoc["checks"]) {
    if (c.value("name", "") == "redis.acl") {
      EXPECT_EQ(c.value("level", ""), "OK") << good.out;
    }
  }
}

}  // namespace
}  // namespace ferry::testing
