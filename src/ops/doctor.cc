#include "ops/doctor.h"

#include <algorithm>
#include <charconv>
#include <cstdlib>

#include "core/redis_url.h"
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
        "appendonly is off" +
            (Get(info, "ferry_aof_off_on").empty() ? std::string()
                                                   : " on " + Get(info, "ferry_aof_off_on")) +
            ": a Redis restart loses queued and running tasks since the last RDB snapshot",
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
            (Get(info, "ferry_evicting_on").empty() ? std::string()
                                                    : " (" + Get(info, "ferry_evicting_on") + ")") +
            ": under memory pressure Redis silently evicts task records and queue streams",
        "redis-cli CONFIG SET maxmemory-policy noeviction && redis-cli CONFIG REWRITE (and "
        "'maxmemory-policy noeviction' in redis.conf); submissions then fail loudly when full"));
  }
  return out;
}

std::vector<CheckResult> CheckRedisDeployment(const std::map<std::string, std::string>& info,
                                              const std::string& redis_url, int64_t now_ms) {
  std::vector<CheckResult> out;
  const std::string topology = Get(info, "ferry_topology");
  const std::string tls = Get(info, "ferry_tls");
  if (tls == "verified") {
    const std::string t = Get(info, "ferry_tls_cert_expires_ms");
    int64_t expires = 0;
    std::from_chars(t.data(), t.data() + t.size(), expires);
    const int64_t days = expires > 0 ? (expires - now_ms) / (24 * 3600 * 1000) : -1;
    if (expires > 0 && days < 30) {
      out.push_back(Problem(
          CheckLevel::kWarn, "redis.tls",
          "TLS, certificate verified, but it expires in " + std::to_string(days) + " day(s)",
          "renew the Redis server certificate (tls-cert-file) before it expires: "
          "Ferry then refuses the connection"));
    } else {
      out.push_back(
          Ok("redis.tls",
             "TLS, server certificate verified" +
                 (days >= 0 ? ", expires in " + std::to_string(days) + " days" : std::string())));
    }
  } else if (tls == "unverified") {
    out.push_back(Problem(CheckLevel::kWarn, "redis.tls",
                          "TLS without certificate verification (--redis-tls-verify no): "
                          "encrypted, but anyone in the path can pose as Redis",
                          "give the CA that signs the server's certificate (--redis-tls-ca FILE) "
                          "and drop --redis-tls-verify no"));
  } else if (tls == "off") {
    auto ep = ParseRedisUrl(redis_url);
    bool local = true;
    if (ep && ep->unix_socket.empty()) {
      for (const auto& h : ep->hosts) {
        if (h.host != "127.0.0.1" && h.host != "localhost" && h.host != "::1") local = false;
      }
    }
    if (local) {
      out.push_back(Ok("redis.tls", "plain TCP on this machine"));
    } else {
      out.push_back(Problem(CheckLevel::kWarn, "redis.tls",
                            "plain TCP to another host: the password and every task payload "
                            "cross the network unencrypted",
                            "enable TLS on Redis (tls-port) and use a rediss:// URL "
                            "(docs/runbook.md \"Redis over TLS\")"));
    }
  }

  const int64_t replicas = [&] {
    int64_t v = 0;
    const std::string r = Get(info, "connected_slaves");
    std::from_chars(r.data(), r.data() + r.size(), v);
    return v;
  }();
  if (topology == "sentinel") {
    const std::string sentinels = Get(info, "ferry_sentinels");
    const std::string quorum = Get(info, "ferry_sentinel_quorum");
    const std::string where = "master '" + Get(info, "ferry_master_name") + "' at " +
                              Get(info, "ferry_master") + ", sentinels: " + sentinels;
    const bool all = !Get(info, "ferry_sentinels_answered").empty() &&
                     Get(info, "ferry_sentinels_answered") == Get(info, "ferry_sentinels_total");
    if (quorum.rfind("OK", 0) != 0) {
      out.push_back(Problem(CheckLevel::kFail, "redis.sentinel",
                            where + "; no failover is possible: " + quorum,
                            "start the missing sentinels (redis-sentinel) so a majority of them "
                            "can authorize a failover"));
    } else if (!all || replicas == 0) {
      out.push_back(Problem(
          CheckLevel::kWarn, "redis.sentinel",
          where + (replicas == 0 ? "; the master has no replica, so a failover has nothing to "
                                   "promote"
                                 : "; some sentinels did not answer"),
          replicas == 0 ? "add a replica (replicaof <master> <port>)"
                        : "check the sentinels Ferry's URL lists (they may have moved)"));
    } else {
      out.push_back(
          Ok("redis.sentinel", where + ", " + std::to_string(replicas) + " replica(s), " + quorum));
    }
  }
  if (topology == "cluster") {
    const std::string state = Get(info, "ferry_cluster_state");
    const std::string slots = Get(info, "ferry_cluster_slots_assigned");
    const std::string lonely = Get(info, "ferry_masters_without_replicas");
    const std::string what = Get(info, "ferry_cluster_masters") + " master(s), state " + state +
                             ", " + slots + " of 16384 slots assigned";
    if (state != "ok" || slots != "16384") {
      out.push_back(Problem(CheckLevel::kFail, "redis.cluster", what,
                            "redis-cli --cluster check <node> and --cluster fix; every slot needs "
                            "a master"));
    } else if (!lonely.empty()) {
      out.push_back(Problem(CheckLevel::kWarn, "redis.cluster",
                            what + "; masters without a replica: " + lonely,
                            "add a replica to each (redis-cli --cluster add-node <new> <any> "
                            "--cluster-slave): a master that fails without one takes its queues "
                            "down"));
    } else {
      out.push_back(Ok("redis.cluster", what + ", every master has a replica"));
    }
  }

  int64_t wait = 0;
  const std::string w = Get(info, "ferry_wait_replicas");
  std::from_chars(w.data(), w.data() + w.size(), wait);
  if (wait > 0 && replicas < wait) {
    out.push_back(Problem(CheckLevel::kFail, "redis.durability",
                          "--redis-wait-replicas " + std::to_string(wait) + " but only " +
                              std::to_string(replicas) +
                              " replica(s) are connected: every submit and completion fails",
                          "add replicas or lower --redis-wait-replicas"));
  } else if (wait > 0) {
    out.push_back(Ok("redis.durability", "writes wait for " + std::to_string(wait) + " of " +
                                             std::to_string(replicas) +
                                             " replica(s) (WAIT) before they are acknowledged"));
  } else if (topology == "sentinel" || topology == "cluster" || replicas > 0) {
    out.push_back(Ok("redis.durability",
                     "writes are acknowledged by the master alone; replication is asynchronous, "
                     "so a failover may lose the last ones (--redis-wait-replicas 1 waits for a "
                     "replica; docs/broker.md \"Durability\")"));
  }
  return out;
}

CheckResult CheckRedisAcl(const Result<std::vector<std::string>>& missing,
                          const std::string& redis_url, const std::string& username) {
  auto ep = ParseRedisUrl(redis_url);
  std::string user = !username.empty()             ? username
                     : ep && !ep->username.empty() ? ep->username
                                                   : "default";
  if (!missing) {
    return Problem(
        CheckLevel::kWarn, "redis.acl",
        "could not check the permissions of Redis user '" + user + "': " + missing.error().message,
        "run ferry doctor again; see docs/runbook.md \"Redis ACL user\"");
  }
  if (missing->empty()) {
    return Ok("redis.acl", "user '" + user + "' may run every command Ferry needs on its keys");
  }
  std::string list;
  std::string grant;
  for (const auto& m : *missing) {
    list += (list.empty() ? "" : ", ") + m;
    auto space = m.find(' ');
    if (space == std::string::npos) grant += " +" + m;
  }
  std::string fix = grant.empty() ? "give user '" + user + "' Ferry's keys (~<prefix>:*)"
                                  : "ACL SETUSER " + user + grant;
  return Problem(CheckLevel::kFail, "redis.acl", "user '" + user + "' may not run: " + list,
                 fix + " (the whole rule: deploy/redis/ferry-user.acl)");
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
      const BrokerOptions& bo = brokers.options();
      auto deployment = CheckRedisDeployment(*info, bo.redis_url, WallNowMs());
      out.insert(out.end(), deployment.begin(), deployment.end());
      out.push_back(
          CheckRedisAcl((*broker)->MissingPermissions(), bo.redis_url, bo.redis.username));
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
  out.push_back(CheckRemediationSandbox(remediation::ProbeSandbox()));
  return out;
}

CheckResult CheckRemediationSandbox(const remediation::SandboxProbe& probe) {
  if (probe.works) {
    return Ok("remediation.sandbox",
              (probe.version.empty() ? std::string("bubblewrap") : probe.version) +
                  " isolates the remediation agent (" + probe.program + ")");
  }
  if (probe.program.empty()) {
    return Problem(CheckLevel::kWarn, "remediation.sandbox",
                   "bubblewrap (bwrap) is not installed: a remediation agent would run without "
                   "filesystem isolation (only a clean environment and its own process group)",
                   "apt-get install bubblewrap (scripts/setup.sh installs it), or set "
                   "remediation-sandbox=none to accept that");
  }
  return Problem(CheckLevel::kWarn, "remediation.sandbox",
                 probe.detail + "; a remediation agent would run without filesystem isolation",
                 "allow unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1) "
                 "for the user running the scheduler, or set remediation-sandbox=none to accept "
                 "that");
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
