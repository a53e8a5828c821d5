// `ferry doctor`: checks the deployment and says what to fix. Each check yields OK, WARN or FAIL
// with a one-line finding and, unless OK, the fix.
//
//   redis       reachable (FAIL), version >= 7.0 (FAIL), AOF on (WARN: a restart loses every
//               queued task), maxmemory-policy noeviction (FAIL: eviction silently deletes task
//               records and streams)
//   clock       this host vs Redis TIME (WARN > 1s, FAIL > 10s: leases, ETAs and "alive" use
//               wall clocks); each live worker's last heartbeat vs Redis time (a heartbeat from
//               the future means that worker's clock is ahead)
//   redis.tls   rediss:// with the certificate verified (OK; WARN within 30 days of its expiry),
//               without verification (WARN), plain TCP to a host that is not this machine (WARN)
//   redis.acl   the Redis user may run every command Ferry's scripts and calls need on its keys
//               (FAIL naming each missing one, with the ACL SETUSER fix)
//   redis.sentinel  every sentinel answered and agrees a failover is possible (CKQUORUM), the
//               master has a replica to promote (WARN otherwise)
//   redis.cluster   cluster_state ok with all 16384 slots assigned (FAIL), every master has a
//               replica (WARN)
//   redis.durability  --redis-wait-replicas fits the replicas connected (FAIL when it cannot be
//               met: every submit would fail); what the setting guarantees
//   workers     at least one live worker (WARN)
//   store       reachable, schema version (FAIL when it cannot be opened without migrating)
//   remediation.sandbox  bubblewrap installed and able to make a sandbox here (WARN otherwise:
//               a remediation agent would run without filesystem isolation)
//
// Thread-safety: RunDoctor uses its own connections; call from one thread.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "broker/broker.h"
#include "core/json.h"
#include "remediation/sandbox.h"
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
// The deployment facts ServerInfo() reports under "ferry_" keys (TLS, Sentinel, Cluster,
// durability); `redis_url` tells whether a plain connection leaves this host.
std::vector<CheckResult> CheckRedisDeployment(const std::map<std::string, std::string>& info,
                                              const std::string& redis_url, int64_t now_ms);
// The result of Broker::MissingPermissions for the user of `redis_url`.
CheckResult CheckRedisAcl(const Result<std::vector<std::string>>& missing,
                          const std::string& redis_url, const std::string& username);
// Local wall time vs Redis time.
CheckResult CheckClockSkew(int64_t local_ms, int64_t redis_ms, const DoctorOptions& options);
// Live workers' heartbeats vs Redis time.
std::vector<CheckResult> CheckWorkers(const std::vector<WorkerInfo>& workers, int64_t redis_ms,
                                      const DoctorOptions& options);

// bubblewrap for the remediation agent (remediation::ProbeSandbox()).
CheckResult CheckRemediationSandbox(const remediation::SandboxProbe& probe);

// Runs every check. `stores` may be null (no store configured: that check is skipped).
std::vector<CheckResult> RunDoctor(BrokerFactory& brokers, StoreFactory* stores,
                                   const DoctorOptions& options = {});

// Worst level among `results`.
CheckLevel WorstLevel(const std::vector<CheckResult>& results);
Json DoctorJson(const std::vector<CheckResult>& results);

}  // namespace ferry::ops
