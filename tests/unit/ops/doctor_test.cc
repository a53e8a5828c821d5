#include "ops/doctor.h"

#include <gtest/gtest.h>

namespace ferry::ops {
namespace {

const CheckResult* Find(const std::vector<CheckResult>& rs, const std::string& name) {
  for (const auto& r : rs) {
    if (r.name == name) return &r;
  }
  return nullptr;
}

TEST(Doctor, HealthyRedis) {
  auto rs = CheckRedisInfo(
      {{"redis_version", "7.0.15"}, {"aof_enabled", "1"}, {"maxmemory_policy", "noeviction"}});
  EXPECT_EQ(WorstLevel(rs), CheckLevel::kOk);
}

TEST(Doctor, AofOffWarnsWithTheFix) {
  auto rs = CheckRedisInfo(
      {{"redis_version", "7.2.4"}, {"aof_enabled", "0"}, {"maxmemory_policy", "noeviction"}});
  const auto* aof = Find(rs, "redis.aof");
  ASSERT_NE(aof, nullptr);
  EXPECT_EQ(aof->level, CheckLevel::kWarn);
  EXPECT_NE(aof->fix.find("appendonly yes"), std::string::npos);
  EXPECT_EQ(WorstLevel(rs), CheckLevel::kWarn);
}

TEST(Doctor, OldRedisAndEvictionFail) {
  auto rs = CheckRedisInfo(
      {{"redis_version", "6.2.1"}, {"aof_enabled", "1"}, {"maxmemory_policy", "allkeys-lru"}});
  EXPECT_EQ(Find(rs, "redis.version")->level, CheckLevel::kFail);
  EXPECT_EQ(Find(rs, "redis.maxmemory-policy")->level, CheckLevel::kFail);
  EXPECT_NE(Find(rs, "redis.maxmemory-policy")->fix.find("noeviction"), std::string::npos);
}

TEST(Doctor, ClockSkew) {
  DoctorOptions o;
  EXPECT_EQ(CheckClockSkew(10'000, 10'500, o).level, CheckLevel::kOk);
  auto warn = CheckClockSkew(10'000, 12'500, o);
  EXPECT_EQ(warn.level, CheckLevel::kWarn);
  EXPECT_NE(warn.message.find("behind"), std::string::npos);
  EXPECT_EQ(CheckClockSkew(30'000, 10'000, o).level, CheckLevel::kFail);
}

TEST(Doctor, WorkerClockAheadAndNoWorkers) {
  DoctorOptions o;
  WorkerInfo w;
  w.id = "w1";
  w.hostname = "h1";
  w.alive = true;
  w.status = "running";
  w.last_heartbeat_ms = 100'000 + 3'000;  // 3 s in Redis' future
  auto rs = CheckWorkers({w}, 100'000, o);
  const auto* c = Find(rs, "clock.worker");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->level, CheckLevel::kWarn);
  EXPECT_NE(c->message.find("w1"), std::string::npos);
  w.status = "stopped";  // a stopped worker's record lingers until its TTL: listed, not live
  w.alive = false;       // as Broker::ListWorkers reports it
  rs = CheckWorkers({w}, 100'000, o);
  EXPECT_EQ(Find(rs, "workers")->level, CheckLevel::kWarn);
}

TEST(Doctor, Json) {
  auto j = DoctorJson({CheckResult{"a", CheckLevel::kOk, "fine", ""},
                       CheckResult{"b", CheckLevel::kFail, "bad", "fix it"}});
  EXPECT_EQ(j["status"], "FAIL");
  EXPECT_EQ(j["checks"][1]["fix"], "fix it");
}

}  // namespace
}  // namespace ferry::ops
