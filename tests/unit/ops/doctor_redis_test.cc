// `ferry doctor`'s Redis deployment checks (TLS, ACL, Sentinel, Cluster, durability) from the
// facts ServerInfo reports. No servers.
#include <gtest/gtest.h>

#include "ops/doctor.h"

namespace ferry::ops {
namespace {

const CheckResult* Find(const std::vector<CheckResult>& rs, const std::string& name) {
  for (const auto& r : rs) {
    if (r.name == name) return &r;
  }
  return nullptr;
}

constexpr int64_t kDay = 24 * 3600 * 1000;
constexpr int64_t kNow = int64_t{1'800'000'000'000};

TEST(DoctorRedisTls, VerifiedCertificateAndItsExpiry) {
  std::map<std::string, std::string> info = {
      {"ferry_topology", "single"},
      {"ferry_tls", "verified"},
      {"ferry_tls_cert_expires_ms", std::to_string(kNow + 90 * kDay)}};
  auto rs = CheckRedisDeployment(info, "rediss://r.example.com:6380", kNow);
  ASSERT_NE(Find(rs, "redis.tls"), nullptr);
  EXPECT_EQ(Find(rs, "redis.tls")->level, CheckLevel::kOk);
  EXPECT_NE(Find(rs, "redis.tls")->message.find("expires in 90 days"), std::string::npos);
  // 30 days is fine, 29 warns.
  info["ferry_tls_cert_expires_ms"] = std::to_string(kNow + 30 * kDay);
  EXPECT_EQ(Find(CheckRedisDeployment(info, "rediss://h", kNow), "redis.tls")->level,
            CheckLevel::kOk);
  info["ferry_tls_cert_expires_ms"] = std::to_string(kNow + 29 * kDay + 1000);
  EXPECT_EQ(Find(CheckRedisDeployment(info, "rediss://h", kNow), "redis.tls")->level,
            CheckLevel::kWarn);
}

TEST(DoctorRedisTls, UnverifiedAndRemotePlainWarn) {
  auto unverified = CheckRedisDeployment(
      {{"ferry_topology", "single"}, {"ferry_tls", "unverified"}}, "rediss://h", kNow);
  EXPECT_EQ(Find(unverified, "redis.tls")->level, CheckLevel::kWarn);
  EXPECT_NE(Find(unverified, "redis.tls")->fix.find("--redis-tls-ca"), std::string::npos);
  auto local = CheckRedisDeployment({{"ferry_topology", "single"}, {"ferry_tls", "off"}},
                                    "redis://127.0.0.1:6379", kNow);
  EXPECT_EQ(Find(local, "redis.tls")->level, CheckLevel::kOk);
  auto remote = CheckRedisDeployment({{"ferry_topology", "single"}, {"ferry_tls", "off"}},
                                     "redis://10.0.0.5:6379", kNow);
  EXPECT_EQ(Find(remote, "redis.tls")->level, CheckLevel::kWarn);
  EXPECT_NE(Find(remote, "redis.tls")->fix.find("rediss://"), std::string::npos);
}

TEST(DoctorRedisSentinel, QuorumSentinelsAndReplicas) {
  std::map<std::string, std::string> info = {{"ferry_topology", "sentinel"},
                                             {"ferry_tls", "off"},
                                             {"ferry_master", "127.0.0.1:6379"},
                                             {"ferry_master_name", "mymaster"},
                                             {"ferry_sentinels", "3 of 3 answered"},
                                             {"ferry_sentinels_answered", "3"},
                                             {"ferry_sentinels_total", "3"},
                                             {"ferry_sentinel_quorum", "OK 3 usable Sentinels"},
                                             {"connected_slaves", "1"}};
  auto ok = CheckRedisDeployment(info, "redis+sentinel://127.0.0.1:26379/mymaster", kNow);
  EXPECT_EQ(Find(ok, "redis.sentinel")->level, CheckLevel::kOk);
  info["ferry_sentinels_answered"] = "2";
  EXPECT_EQ(Find(CheckRedisDeployment(info, "redis+sentinel://h/m", kNow), "redis.sentinel")->level,
            CheckLevel::kWarn);
  info["ferry_sentinels_answered"] = "3";
  info["connected_slaves"] = "0";
  auto lonely = CheckRedisDeployment(info, "redis+sentinel://h/m", kNow);
  EXPECT_EQ(Find(lonely, "redis.sentinel")->level, CheckLevel::kWarn);
  EXPECT_NE(Find(lonely, "redis.sentinel")->message.find("no replica"), std::string::npos);
  info["ferry_sentinel_quorum"] = "NOQUORUM 1 usable Sentinels";
  EXPECT_EQ(Find(CheckRedisDeployment(info, "redis+sentinel://h/m", kNow), "redis.sentinel")->level,
            CheckLevel::kFail);
}

TEST(DoctorRedisCluster, StateSlotsAndReplicas) {
  std::map<std::string, std::string> info = {
      {"ferry_topology", "cluster"},  {"ferry_tls", "off"},
      {"ferry_cluster_state", "ok"},  {"ferry_cluster_slots_assigned", "16384"},
      {"ferry_cluster_masters", "3"}, {"ferry_masters_without_replicas", ""},
      {"connected_slaves", "1"}};
  EXPECT_EQ(Find(CheckRedisDeployment(info, "redis+cluster://h", kNow), "redis.cluster")->level,
            CheckLevel::kOk);
  info["ferry_masters_without_replicas"] = "127.0.0.1:7002";
  EXPECT_EQ(Find(CheckRedisDeployment(info, "redis+cluster://h", kNow), "redis.cluster")->level,
            CheckLevel::kWarn);
  info["ferry_cluster_slots_assigned"] = "16383";  // one slot short
  EXPECT_EQ(Find(CheckRedisDeployment(info, "redis+cluster://h", kNow), "redis.cluster")->level,
            CheckLevel::kFail);
  info["ferry_cluster_slots_assigned"] = "16384";
  info["ferry_cluster_state"] = "fail";
  EXPECT_EQ(Find(CheckRedisDeployment(info, "redis+cluster://h", kNow), "redis.cluster")->level,
            CheckLevel::kFail);
}

TEST(DoctorRedisDurability, WaitMustFitTheReplicas) {
  std::map<std::string, std::string> info = {
      {"ferry_topology", "sentinel"}, {"ferry_wait_replicas", "1"}, {"connected_slaves", "1"}};
  EXPECT_EQ(
      Find(CheckRedisDeployment(info, "redis+sentinel://h/m", kNow), "redis.durability")->level,
      CheckLevel::kOk);
  info["ferry_wait_replicas"] = "2";  // one more than there are
  auto bad = CheckRedisDeployment(info, "redis+sentinel://h/m", kNow);
  EXPECT_EQ(Find(bad, "redis.durability")->level, CheckLevel::kFail);
  info["ferry_wait_replicas"] = "0";
  auto off = CheckRedisDeployment(info, "redis+sentinel://h/m", kNow);
  EXPECT_EQ(Find(off, "redis.durability")->level, CheckLevel::kOk);
  EXPECT_NE(Find(off, "redis.durability")->message.find("asynchronous"), std::string::npos);
}

TEST(DoctorRedisAcl, NamesTheUserAndTheFix) {
  Result<std::vector<std::string>> none = std::vector<std::string>{};
  EXPECT_EQ(CheckRedisAcl(none, "redis://ferry:pw@h", "").level, CheckLevel::kOk);
  Result<std::vector<std::string>> some =
      std::vector<std::string>{"xautoclaim", "wait", "hset on ferry:* keys"};
  CheckResult r = CheckRedisAcl(some, "redis://:pw@h", "ferry");
  EXPECT_EQ(r.level, CheckLevel::kFail);
  EXPECT_NE(r.message.find("'ferry'"), std::string::npos);
  EXPECT_NE(r.fix.find("ACL SETUSER ferry +xautoclaim +wait"), std::string::npos);
  EXPECT_NE(r.fix.find("deploy/redis/ferry-user.acl"), std::string::npos);
  Result<std::vector<std::string>> failed = Fail(ErrorCode::kUnavailable, "gone");
  EXPECT_EQ(CheckRedisAcl(failed, "redis://h", "").level, CheckLevel::kWarn);
  EXPECT_NE(CheckRedisAcl(failed, "redis://h", "").message.find("'default'"), std::string::npos);
}

}  // namespace
}  // namespace ferry::ops
