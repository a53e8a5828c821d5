#include "broker/redis/redis_acl.h"

#include <algorithm>
#include <cctype>
#include <map>

namespace ferry::redis_broker {

namespace scripts {
extern const std::string_view k_acl_probe;
}  // namespace scripts

namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// The probe keys: one hash tag, so the probe script may touch them all under Cluster.
struct ProbeKeys {
  explicit ProbeKeys(const std::string& prefix) : base(prefix + ":{ferry-doctor}") {}
  std::string base;
  std::string Stream() const { return base + ":stream"; }
  std::string Hash() const { return base + ":hash"; }
  std::string Zset() const { return base + ":zset"; }
  std::string Str() const { return base + ":string"; }
  std::string Counter() const { return base + ":counter"; }
  std::string Set() const { return base + ":set"; }
  std::vector<std::string> All() const {
    return {Stream(), Hash(), Zset(), Str(), Counter(), Set()};
  }
};

constexpr std::string_view kGroup = "ferry-doctor";

// One harmless instance of each command the scripts run, with the right arity (Redis checks
// arity before the ACL, and the ACL before running anything).
std::vector<std::vector<std::string>> ScriptProbes(const ProbeKeys& k) {
  const std::string g(kGroup);
  return {
      {"DEL", k.Str()},
      {"EXISTS", k.Str()},
      {"GET", k.Str()},
      {"HDEL", k.Hash(), "f"},
      {"HGET", k.Hash(), "f"},
      {"HINCRBY", k.Hash(), "n", "0"},
      {"HMGET", k.Hash(), "f"},
      {"HSET", k.Hash(), "f", "v"},
      {"INCR", k.Counter()},
      {"PERSIST", k.Hash()},
      {"PEXPIRE", k.Hash(), "60000"},
      {"PTTL", k.Hash()},
      {"SADD", k.Set(), "m"},
      {"SCARD", k.Set()},
      {"SET", k.Str(), "v", "NX", "PX", "60000"},
      {"SISMEMBER", k.Set(), "m"},
      {"XACK", k.Stream(), g, "0-1"},
      {"XADD", k.Stream(), "MAXLEN", "~", "10", "*", "type", "probe"},
      {"XAUTOCLAIM", k.Stream(), g, "c", "0", "0-0", "COUNT", "1"},
      {"XCLAIM", k.Stream(), g, "c", "0", "0-1", "JUSTID"},
      {"XDEL", k.Stream(), "0-1"},
      {"XLEN", k.Stream()},
      {"XPENDING", k.Stream(), g, "0-1", "0-1", "1"},
      {"XREADGROUP", "GROUP", g, "c", "COUNT", "1", "STREAMS", k.Stream(), ">"},
      {"ZADD", k.Zset(), "0", "m"},
      {"ZCARD", k.Zset()},
      {"ZRANGEBYSCORE", k.Zset(), "-inf", "0", "LIMIT", "0", "1"},
      {"ZREM", k.Zset(), "m"},
      {"ZREMRANGEBYRANK", k.Zset(), "0", "-1000"},
      {"ZREMRANGEBYSCORE", k.Zset(), "-inf", "(0"},
  };
}

std::vector<Args> DirectProbes(const ProbeKeys& k, RedisTopology topology) {
  const std::string g(kGroup);
  std::vector<Args> out = {
      Args{"SCRIPT", "LOAD", "return 1"},
      Args{"EVAL", "return 1", "1", k.base},
      Args{"XGROUP", "CREATE", k.Stream(), g, "$", "MKSTREAM"},
      Args{"XREADGROUP", "GROUP", g, "c", "COUNT", "1", "STREAMS", k.Stream(), ">"},
      Args{"XREAD", "COUNT", "1", "STREAMS", k.Stream(), "0"},
      Args{"XRANGE", k.Stream(), "-", "+", "COUNT", "1"},
      Args{"XREVRANGE", k.Stream(), "+", "-", "COUNT", "1"},
      Args{"XLEN", k.Stream()},
      Args{"XINFO", "GROUPS", k.Stream()},
      Args{"SADD", k.Set(), "m"},
      Args{"SMEMBERS", k.Set()},
      Args{"SISMEMBER", k.Set(), "m"},
      Args{"SREM", k.Set(), "m"},
      Args{"HSET", k.Hash(), "f", "v"},
      Args{"HSETNX", k.Hash(), "g", "v"},
      Args{"HGET", k.Hash(), "f"},
      Args{"HGETALL", k.Hash()},
      Args{"HDEL", k.Hash(), "g"},
      Args{"PEXPIRE", k.Hash(), "60000"},
      Args{"EXISTS", k.Hash(), k.Str()},
      Args{"ZADD", k.Zset(), "0", "m"},
      Args{"ZCARD", k.Zset()},
      Args{"ZREVRANGE", k.Zset(), "0", "0"},
      Args{"ZREMRANGEBYSCORE", k.Zset(), "-inf", "(0"},
      Args{"ZREM", k.Zset(), "m"},
      Args{"GET", k.Str()},
      Args{"PTTL", k.Str()},
      Args{"PING"},
      Args{"INFO", "server"},
      Args{"TIME"},
      Args{"WAIT", "0", "1"},
  };
  if (topology == RedisTopology::kSentinel) out.push_back(Args{"ROLE"});
  if (topology == RedisTopology::kCluster) {
    out.push_back(Args{"CLUSTER", "SLOTS"});
    out.push_back(Args{"CLUSTER", "INFO"});
    out.push_back(Args{"ASKING"});
  }
  return out;
}

// "NOPERM this user has no permissions to run the 'xautoclaim' command" -> "xautoclaim";
// a refused key -> "hset on <prefix>:* keys".
std::string Describe(std::string_view command, std::string_view error, const std::string& prefix) {
  std::string name = Lower(command);
  if (error.find("key") != std::string_view::npos) return name + " on " + prefix + ":* keys";
  return name;
}

}  // namespace

const std::vector<std::string_view>& ScriptCommands() {
  static const std::vector<std::string_view> kNames = [] {
    std::vector<std::string_view> out;
    ProbeKeys k("x");
    static const auto probes = ScriptProbes(k);
    for (const auto& p : probes) out.push_back(p.front());
    return out;
  }();
  return kNames;
}

std::vector<std::string_view> DirectCommands(RedisTopology topology) {
  std::vector<std::string_view> out;
  static const ProbeKeys k("x");
  static const std::map<RedisTopology, std::vector<Args>> kProbes = {
      {RedisTopology::kSingle, DirectProbes(k, RedisTopology::kSingle)},
      {RedisTopology::kSentinel, DirectProbes(k, RedisTopology::kSentinel)},
      {RedisTopology::kCluster, DirectProbes(k, RedisTopology::kCluster)},
  };
  for (const auto& a : kProbes.at(topology)) {
    if (std::find(out.begin(), out.end(), a.name()) == out.end()) out.push_back(a.name());
  }
  out.push_back("EVALSHA");
  return out;
}

Result<std::vector<std::string>> ProbePermissions(Client& client, const std::string& prefix,
                                                  RedisTopology topology) {
  ProbeKeys keys(prefix);
  std::vector<std::string> missing;
  auto note = [&](std::string what) {
    if (std::find(missing.begin(), missing.end(), what) == missing.end()) {
      missing.push_back(std::move(what));
    }
  };

  auto direct = DirectProbes(keys, topology);
  auto replies = client.Pipeline(direct);
  if (!replies) return Fail(replies.error());
  for (size_t i = 0; i < replies->size(); ++i) {
    if (ErrorIs(*(*replies)[i], "NOPERM")) {
      std::string word = std::string(direct[i].name());
      if (word == "SCRIPT" || word == "XGROUP" || word == "XINFO" || word == "CLUSTER") {
        word += "|" + Lower(direct[i].at(1));
      }
      note(Describe(word, ReplyText(*(*replies)[i]), prefix));
    }
  }

  // The scripts' commands, from inside a script as the broker runs them (EVALSHA).
  // Loaded on every master: under Cluster the probe key's slot decides where it runs.
  Args load{"SCRIPT", "LOAD", scripts::k_acl_probe};
  auto loaded = client.OnEveryMaster(load);
  if (!loaded) return Fail(loaded.error());
  std::string sha;
  for (const auto& [where, reply] : *loaded) {
    if (IsError(*reply)) return Fail(ReplyError(*reply));
    sha = std::string(ReplyText(*reply));
  }
  Args eval{"EVALSHA", sha, "1", keys.base};
  for (const auto& p : ScriptProbes(keys)) {
    eval.Add(static_cast<int64_t>(p.size()));
    for (const auto& w : p) eval.Add(w);
  }
  auto inner = client.Pipeline({eval});
  if (!inner) return Fail(inner.error());
  const redisReply& r = *inner->front();
  if (ErrorIs(r, "NOPERM")) {
    note(Describe("EVALSHA", ReplyText(r), prefix));
  } else if (IsError(r)) {
    return Fail(ReplyError(r));
  } else if (r.type == REDIS_REPLY_ARRAY) {
    for (size_t i = 0; i < r.elements; ++i) {
      std::string_view line = ReplyText(*r.element[i]);
      auto colon = line.find(':');
      note(Describe(line.substr(0, colon), line.substr(colon + 1), prefix));
    }
  }

  Args del{"DEL"};
  for (const auto& k : keys.All()) del.Add(k);
  auto cleaned = client.Pipeline({del});
  if (!cleaned) return Fail(cleaned.error());
  return missing;
}

}  // namespace ferry::redis_broker
