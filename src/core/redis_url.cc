#include "core/redis_url.h"

#include <charconv>
#include <string_view>

#include "core/mask.h"

namespace ferry {
namespace {

// Limits on what a URL may hold (it comes from flags, env and config files).
constexpr size_t kMaxUrlLength = 4096;
constexpr size_t kMaxHosts = 64;
constexpr size_t kMaxMasterName = 200;

std::string PercentDecode(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      int v = 0;
      auto [p, ec] = std::from_chars(s.data() + i + 1, s.data() + i + 3, v, 16);
      if (ec == std::errc() && p == s.data() + i + 3) {
        out.push_back(static_cast<char>(v));
        i += 2;
        continue;
      }
    }
    out.push_back(s[i]);
  }
  return out;
}

bool ParseInt(const std::string& s, int& out) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}

struct Scheme {
  std::string_view name;
  RedisTopology topology;
  bool tls;
  int default_port;
};

constexpr Scheme kSchemes[] = {
    {"redis://", RedisTopology::kSingle, false, 6379},
    {"rediss://", RedisTopology::kSingle, true, 6379},
    {"redis+sentinel://", RedisTopology::kSentinel, false, 26379},
    {"rediss+sentinel://", RedisTopology::kSentinel, true, 26379},
    {"redis+cluster://", RedisTopology::kCluster, false, 6379},
    {"rediss+cluster://", RedisTopology::kCluster, true, 6379},
};

// "host", "host:port", "[::1]:port" -> RedisHost; empty error text on success.
std::string ParseHost(const std::string& text, int default_port, RedisHost& out) {
  std::string host = text;
  std::string port;
  if (!host.empty() && host.front() == '[') {
    auto close = host.find(']');
    if (close == std::string::npos) return "unclosed '[' in host '" + text + "'";
    std::string rest = host.substr(close + 1);
    host = host.substr(1, close - 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return "unexpected text after ']' in '" + text + "'";
      port = rest.substr(1);
      if (port.empty()) return "bad port in '" + text + "'";
    }
  } else if (auto colon = host.rfind(':'); colon != std::string::npos) {
    port = host.substr(colon + 1);
    host = host.substr(0, colon);
    if (host.find(':') != std::string::npos) return "IPv6 addresses need brackets: [" + text + "]";
    if (port.empty()) return "bad port in '" + text + "'";
  }
  if (host.empty()) return "empty host";
  if (host.find_first_of(" \t/@?#") != std::string::npos) return "bad host '" + host + "'";
  out.host = host;
  out.port = default_port;
  if (!port.empty() && (!ParseInt(port, out.port) || out.port <= 0 || out.port > 65535)) {
    return "bad port '" + port + "'";
  }
  return "";
}

}  // namespace

Result<RedisEndpoint> ParseRedisUrl(const std::string& url) {
  RedisEndpoint ep;
  auto bad = [&](const std::string& why) {
    return Fail(ErrorCode::kInvalidArgument,
                "bad Redis URL '" + MaskRedisUrl(url.substr(0, 200)) + "': " + why +
                    " (expected redis://[[user]:password@]host[:port][/db], rediss://..., "
                    "redis+sentinel://host1:26379,host2:26379/master, "
                    "redis+cluster://host1:6379,host2:6379 or unix:///path)");
  };
  if (url.size() > kMaxUrlLength) return bad("longer than 4096 characters");
  if (url.rfind("unix://", 0) == 0) {
    std::string rest = url.substr(7);
    auto q = rest.find('?');
    ep.unix_socket = rest.substr(0, q);
    if (q != std::string::npos) {
      std::string query = rest.substr(q + 1);
      if (query.rfind("db=", 0) != 0 || !ParseInt(query.substr(3), ep.db)) return bad("bad db");
    }
    if (ep.unix_socket.empty()) return bad("empty socket path");
    if (ep.db < 0) return bad("negative database");
    return ep;
  }
  const Scheme* scheme = nullptr;
  for (const auto& s : kSchemes) {
    if (url.rfind(s.name, 0) == 0) scheme = &s;
  }
  if (scheme == nullptr) return bad("unsupported scheme");
  ep.topology = scheme->topology;
  ep.tls = scheme->tls;
  std::string rest = url.substr(scheme->name.size());
  auto slash = rest.find('/');
  std::string authority = rest.substr(0, slash);
  std::string path = slash == std::string::npos ? "" : rest.substr(slash + 1);

  auto at = authority.rfind('@');
  if (at != std::string::npos) {
    std::string userinfo = authority.substr(0, at);
    authority = authority.substr(at + 1);
    auto colon = userinfo.find(':');
    if (colon == std::string::npos) {
      ep.password = PercentDecode(userinfo);
    } else {
      ep.username = PercentDecode(userinfo.substr(0, colon));
      ep.password = PercentDecode(userinfo.substr(colon + 1));
    }
  }

  // The host list; a single server may leave the host out (redis:// means 127.0.0.1:6379).
  if (authority.empty()) {
    if (ep.topology != RedisTopology::kSingle) return bad("no hosts");
    ep.hosts.push_back(RedisHost{ep.host, ep.port});
  } else {
    size_t start = 0;
    while (true) {
      auto comma = authority.find(',', start);
      std::string item =
          authority.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
      RedisHost h;
      if (auto why = ParseHost(item, scheme->default_port, h); !why.empty()) return bad(why);
      ep.hosts.push_back(std::move(h));
      if (ep.hosts.size() > kMaxHosts) return bad("more than 64 hosts");
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
    if (ep.topology == RedisTopology::kSingle && ep.hosts.size() > 1) {
      return bad("several hosts need redis+sentinel:// or redis+cluster://");
    }
    ep.host = ep.hosts.front().host;
    ep.port = ep.hosts.front().port;
  }

  std::string db;
  switch (ep.topology) {
    case RedisTopology::kSingle:
      db = path;
      break;
    case RedisTopology::kSentinel: {
      auto next = path.find('/');
      ep.master_name = PercentDecode(path.substr(0, next));
      if (next != std::string::npos) db = path.substr(next + 1);
      if (ep.master_name.empty()) return bad("no master name (redis+sentinel://host:26379/NAME)");
      if (ep.master_name.size() > kMaxMasterName ||
          ep.master_name.find_first_of(" \t\r\n") != std::string::npos) {
        return bad("bad master name");
      }
      break;
    }
    case RedisTopology::kCluster:
      db = path;
      break;
  }
  if (!db.empty() && !ParseInt(db, ep.db)) return bad("database must be a number");
  if (ep.db < 0) return bad("negative database");
  if (ep.topology == RedisTopology::kCluster && ep.db != 0) {
    return bad("Redis Cluster has only database 0");
  }
  return ep;
}

std::string MaskRedisUrl(const std::string& url) {
  return MaskCredentials(url, /*userinfo_is_secret=*/true);
}

Result<RedisEndpoint> ResolveRedisEndpoint(const std::string& url,
                                           const RedisConnectOptions& options) {
  auto ep = ParseRedisUrl(url);
  if (!ep) return ep;
  auto bad = [](const std::string& why) { return Fail(ErrorCode::kInvalidArgument, why); };
  const RedisTlsOptions& tls = options.tls;
  const bool tls_files = !tls.ca_file.empty() || !tls.cert_file.empty() || !tls.key_file.empty() ||
                         !tls.server_name.empty() || !tls.verify;
  if (tls_files && !ep->tls) {
    return bad(
        "TLS settings (CA file, client certificate, server name, verification) need a "
        "rediss:// URL; '" +
        MaskRedisUrl(url) + "' is plain TCP");
  }
  if (tls.cert_file.empty() != tls.key_file.empty()) {
    return bad(
        "a TLS client certificate needs its key and a key its certificate "
        "(--redis-tls-cert and --redis-tls-key)");
  }
  if ((!options.sentinel_password.empty() || !options.sentinel_username.empty()) &&
      ep->topology != RedisTopology::kSentinel) {
    return bad("sentinel credentials need a redis+sentinel:// URL");
  }
  if (!options.username.empty()) {
    if (!ep->username.empty() && ep->username != options.username) {
      return bad("the Redis URL names user '" + ep->username + "' but --redis-username says '" +
                 options.username + "'");
    }
    ep->username = options.username;
  }
  return ep;
}

}  // namespace ferry
