// Redis connection URLs: redis://[[user]:password@]host[:port][/db] and unix:///path.sock[?db=N].
#pragma once

#include <string>

#include "core/result.h"

namespace ferry {

struct RedisEndpoint {
  std::string host = "127.0.0.1";
  int port = 6379;
  std::string unix_socket;  // non-empty: connect to this socket instead of host:port
  std::string username;     // ACL user; empty means the default user
  std::string password;     // empty means no AUTH
  int db = 0;
};

Result<RedisEndpoint> ParseRedisUrl(const std::string& url);
// The URL with any password replaced by "****", for banners and logs.
std::string MaskRedisUrl(const std::string& url);

}  // namespace ferry
