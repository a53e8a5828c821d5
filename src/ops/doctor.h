// `ferry doctor`: checks the deployment and says what to fix. Each check yields OK, WARN or FAIL
// with a one-line finding and, unless OK, the fix.
//
//   redis       reachable (FAIL), version >= 7.0 (FAIL), AOF on (WARN: a restart loses every
//               queued task), maxmemory-policy noeviction (FAIL: eviction silently deletes task
//               records and streams)
//   clock       this host vs Redis TIME (WARN > 1s, FAIL > 10s: leases, ETAs and "alive" use
//               wall clocks); each live worker's last heartbeat vs Redis time (a heartbeat from
//               the future means that worker's clock is ahead)
//   workers     at least one live worker (WARN)
//   store       reachable, schema version (FAIL when it cannot be opened without migrating)
//
// Thread-safety: RunDoctor uses its own connections; call from one thread.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "broker/broker.h"
#include "core/json.h"
#include "store/store.h"

namespace ferry::ops {

enum class CheckLevel { kOk, kWarn, kFail };
std::string_view CheckLevelName(CheckLevel level);  // "OK", "WARN", "FAIL"

struct CheckResult {
  std::string name;  // "redis.aof", "clock.redis", ...
  CheckLevel level = CheckLevel::kOk;
  std::string message;  // what was found
  std::string fix;      // what to do (empty when OK)
};

struct DoctorOptions {
  std::chrono::milliseconds skew_warn = std::chrono::seconds(1);
  std::chrono::milliseconds skew_fail = std::chrono::seconds(10);
};

// Checks pure facts (exposed for unit tests): INFO fields -> redis checks.
std::vector<CheckResult> CheckRedisInfo(const std::map<std::string, std::string>& info);
// Local wall time vs Redis time.
CheckResult CheckClockSkew(int64_t local_ms, int64_t redis_ms, const DoctorOptions& options);
// Live workers' heartbeats vs Redis time.
std::vector<CheckResult> CheckWorkers(const std::vector<WorkerInfo>& workers, int64_t redis_ms,
                                      const DoctorOptions& options);

// Runs every check. `stores` may be null (no store configured: that check is skipped).
std::vector<CheckResult> RunDoctor(BrokerFactory& brokers, StoreFactory* stores,
                                   const DoctorOptions& options = {});

// Worst level among `results`.
CheckLevel WorstLevel(const std::vector<CheckResult>& results);
Json DoctorJson(const std::vector<CheckResult>& results);

}  // namespace ferry::ops
