#include "ops/doctor.h"

#include <algorithm>
#include <charconv>
#include <cstdlib>

#include "core/time_util.h"
#include "ops/alerts.h"

namespace ferry::ops {
namespace {

CheckResult Ok(std::string name, std::string message) {
  return CheckResult{std::move(name), CheckLevel::kOk, std::move(message), ""};
}

CheckResult Problem(CheckLevel level, std::string name, std::string message, std::string fix) {
  return CheckResult{std::move(name), level, std::move(message), std::move(fix)};
}

std::string Get(const std::map<std::string, std::string>& m, const std::string& k) {
  auto it = m.find(k);
  return it == m.end() ? "" : it->second;
}

// "7.0.15" -> {7, 0}.
std::pair<int, int> MajorMinor(const std::string& v) {
  int major = 0;
  int minor = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), major);
  if (ec == std::errc() && p < v.data() + v.size() && *p == '.') {
    std::from_chars(p + 1, v.data() + v.size(), minor);
  }
  return {major, minor};
}

std::string Ms(int64_t ms) { return FormatDuration(std::chrono::milliseconds(std::llabs(ms))); }

}  // namespace

std::string_view CheckLevelName(CheckLevel level) {
  switch (level) {
    case CheckLevel::kOk:
      return "OK";
    case CheckLevel::kWarn:
      return "WARN";
    case CheckLevel::kFail:
      return "FAIL";
  }
  return "FAIL";
}

std::vector<CheckResult> CheckRedisInfo(const std::map<std::string, std::string>& info) {
  std::vector<CheckResult> out;
  const std::string version = Get(info, "redis_version");
  auto [major, minor] = MajorMinor(version);
  if (major > 7 || (major == 7 && minor >= 0)) {
    out.push_back(Ok("redis.version", "Redis " + version));
  } else {
    out.push_back(Problem(
        CheckLevel::kFail, "redis.version",
        "Redis " + (version.empty() ? std::string("(unknown)") : version) + " is older than 7.0",
        "upgrade to Redis 7.0 or newer (Debian 12: apt install redis-server)"));
  }
  if (Get(info, "aof_enabled") == "1") {
    out.push_back(Ok("redis.aof", "appendonly yes"));
  } else {
    out.push_back(Problem(
        CheckLevel::kWarn, "redis.aof",
        "appendonly is off: a Redis restart loses queued and running tasks since the last RDB "
        "snapshot",
        "redis-cli CONFIG SET appendonly yes && redis-cli CONFIG REWRITE (or set "
        "'appendonly yes' and 'appendfsync everysec' in redis.conf and restart)"));
  }
  const std::string policy = Get(info, "maxmemory_policy");
  if (policy == "noeviction") {
    out.push_back(Ok("redis.maxmemory-policy", "maxmemory-policy noeviction"));
  } else {
    out.push_back(Problem(
        CheckLevel::kFail, "redis.maxmemory-policy",
        "maxmemory-policy is " + (policy.empty() ? std::string("(unknown)") : policy) +
            ": under memory pressure Redis silently evicts task records and queue streams",
        "redis-cli CONFIG SET maxmemory-policy noeviction && redis-cli CONFIG REWRITE (and "
        "'maxmemory-policy noeviction' in redis.conf); submissions then fail loudly when full"));
  }
  return out;
}

CheckResult CheckClockSkew(int64_t local_ms, int64_t redis_ms, const DoctorOptions& o) {
  const int64_t skew = local_ms - redis_ms;
  const std::string what =
      "this host's clock is " + Ms(skew) + (skew >= 0 ? " ahead of" : " behind") + " Redis' clock";
  const int64_t a = std::llabs(skew);
  if (a <= o.skew_warn.count()) return Ok("clock.redis", "within " + Ms(skew) + " of Redis");
  return Problem(a > o.skew_fail.count() ? CheckLevel::kFail : CheckLevel::kWarn, "clock.redis",
                 what,
                 "run NTP on this host and the Redis host (timedatectl set-ntp true; chronyc "
                 "tracking): leases, ETAs and worker liveness compare wall clocks");
}

std::vector<CheckResult> CheckWorkers(const std::vector<WorkerInfo>& workers, int64_t redis_ms,
                                      const DoctorOptions& o) {
  std::vector<CheckResult> out;
  int64_t alive = 0;
  for (const auto& w : workers) {
    if (!w.alive) continue;
    ++alive;
    // A live worker heartbeats every ttl/3, so its last heartbeat is at most that old. One from
    // the future (beyond the warn bound) means the worker's clock runs ahead.
    const int64_t ahead = w.last_heartbeat_ms - redis_ms;
    if (ahead > o.skew_warn.count()) {
      out.push_back(Problem(ahead > o.skew_fail.count() ? CheckLevel::kFail : CheckLevel::kWarn,
                            "clock.worker",
                            "worker " + w.id + " on " + w.hostname + ": clock about " + Ms(ahead) +
                                " ahead of Redis (heartbeat from the future)",
                            "run NTP on " + w.hostname + " (timedatectl set-ntp true)"));
    }
  }
  if (alive == 0) {
    out.push_back(Problem(CheckLevel::kWarn, "workers", "no live workers",
                          "start one: systemctl start ferry-worker@1 (or ferry worker start)"));
  } else {
    out.push_back(Ok("workers", std::to_string(alive) + " live worker(s); heartbeats agree with "
                                                        "Redis' clock"));
  }
  return out;
}

std::vector<CheckResult> RunDoctor(BrokerFactory& brokers, StoreFactory* stores,
                                   const DoctorOptions& options) {
  std::vector<CheckResult> out;
  auto broker = brokers.Open();
  if (!broker) {
    out.push_back(
        Problem(CheckLevel::kFail, "redis.reachable", broker.error().message,
                "start Redis or fix --redis-url / FERRY_REDIS_URL (password, host, port)"));
  } else {
    const int64_t before = WallNowMs();
    auto info = (*broker)->ServerInfo();
    const int64_t after = WallNowMs();
    if (!info) {
      out.push_back(Problem(CheckLevel::kFail, "redis.reachable", info.error().message,
                            "check that the Redis user may run INFO and TIME"));
    } else {
      out.push_back(
          Ok("redis.reachable", "connected, " + std::to_string(after - before) + "ms round trip"));
      auto more = CheckRedisInfo(*info);
      out.insert(out.end(), more.begin(), more.end());
      int64_t redis_ms = 0;
      const std::string t = Get(*info, "server_time_ms");
      std::from_chars(t.data(), t.data() + t.size(), redis_ms);
      if (redis_ms > 0) {
        // Compare with the middle of the round trip.
        out.push_back(CheckClockSkew(before + (after - before) / 2, redis_ms, options));
        auto workers = (*broker)->ListWorkers();
        if (workers) {
          auto w = CheckWorkers(*workers, redis_ms, options);
          out.insert(out.end(), w.begin(), w.end());
        } else {
          out.push_back(
              Problem(CheckLevel::kFail, "workers", workers.error().message, "check Redis"));
        }
      }
    }
  }
  if (stores != nullptr) {
    auto store = stores->Open();
    if (!store) {
      out.push_back(Problem(
          CheckLevel::kFail, "store", stores->Describe() + ": " + store.error().message,
          "check --store / FERRY_STORE; a schema behind this binary is migrated by starting "
          "`ferry server start` once"));
    } else if (auto v = (*store)->SchemaVersion(); !v) {
      out.push_back(Problem(CheckLevel::kFail, "store", v.error().message, "check the database"));
    } else {
      out.push_back(Ok("store", std::string((*store)->Backend()) + " " + stores->Describe() +
                                    ", schema version " + std::to_string(*v)));
    }
  }
  return out;
}

CheckLevel WorstLevel(const std::vector<CheckResult>& results) {
  CheckLevel worst = CheckLevel::kOk;
  for (const auto& r : results) worst = std::max(worst, r.level);
  return worst;
}

Json DoctorJson(const std::vector<CheckResult>& results) {
  Json checks = Json::array();
  for (const auto& r : results) {
    Json c = Json::object();
    c["name"] = r.name;
    c["level"] = std::string(CheckLevelName(r.level));
    c["message"] = r.message;
    if (!r.fix.empty()) c["fix"] = r.fix;
    checks.push_back(std::move(c));
  }
  Json j = Json::object();
  j["status"] = std::string(CheckLevelName(WorstLevel(results)));
  j["checks"] = std::move(checks);
  return j;
}

}  // namespace ferry::ops
