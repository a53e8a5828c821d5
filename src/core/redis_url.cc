#include "core/redis_url.h"

#include <charconv>

namespace ferry {
namespace {

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

}  // namespace

Result<RedisEndpoint> ParseRedisUrl(const std::string& url) {
  RedisEndpoint ep;
  auto bad = [&](const std::string& why) {
    return Fail(ErrorCode::kInvalidArgument,
                "bad Redis URL '" + MaskRedisUrl(url) + "': " + why +
                    " (expected redis://[:password@]host[:port][/db] or unix:///path)");
  };
  if (url.rfind("unix://", 0) == 0) {
    std::string rest = url.substr(7);
    auto q = rest.find('?');
    ep.unix_socket = rest.substr(0, q);
    if (q != std::string::npos) {
      std::string query = rest.substr(q + 1);
      if (query.rfind("db=", 0) != 0 || !ParseInt(query.substr(3), ep.db)) return bad("bad db");
    }
    if (ep.unix_socket.empty()) return bad("empty socket path");
    return ep;
  }
  if (url.rfind("redis://", 0) != 0) return bad("unsupported scheme");
  std::string rest = url.substr(8);
  auto slash = rest.find('/');
  std::string authority = rest.substr(0, slash);
  if (slash != std::string::npos) {
    std::string db = rest.substr(slash + 1);
    if (!db.empty() && !ParseInt(db, ep.db)) return bad("database must be a number");
  }
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
  auto colon = authority.rfind(':');
  if (colon != std::string::npos && authority.find(']') == std::string::npos) {
    if (!ParseInt(authority.substr(colon + 1), ep.port) || ep.port <= 0 || ep.port > 65535) {
      return bad("bad port");
    }
    authority = authority.substr(0, colon);
  }
  if (!authority.empty()) ep.host = authority;
  if (ep.db < 0) return bad("negative database");
  return ep;
}

std::string MaskRedisUrl(const std::string& url) {
  auto scheme = url.find("://");
  if (scheme == std::string::npos) return url;
  auto start = scheme + 3;
  auto at = url.find('@', start);
  auto slash = url.find('/', start);
  if (at == std::string::npos || (slash != std::string::npos && slash < at)) return url;
  std::string userinfo = url.substr(start, at - start);
  auto colon = userinfo.find(':');
  std::string masked = colon == std::string::npos ? "****" : userinfo.substr(0, colon) + ":****";
  return url.substr(0, start) + masked + url.substr(at);
}

}  // namespace ferry
