// Where Redis is and how to reach it: the URL, and the connection settings a URL cannot carry
// (TLS files, an ACL user given apart from the URL, the sentinels' own credentials).
//
//   redis://[[user]:password@]host[:port][/db]        one server over TCP (port 6379)
//   rediss://...                                      the same over TLS
//   unix:///path/redis.sock[?db=N]                    one server over a Unix socket
//   redis+sentinel://[[user]:password@]h1[:26379][,h2[:port]...]/master-name[/db]
//                                                     the master a set of sentinels names
//   redis+cluster://[[user]:password@]h1[:6379][,h2[:port]...]
//                                                     a Redis Cluster, learnt from any node
//   rediss+sentinel://, rediss+cluster://             the same over TLS (sentinels included)
//
// The user and password in a URL are the data nodes' (the master's, every cluster node's).
// Pure functions: no I/O, thread-safe.
#pragma once

#include <string>
#include <vector>

#include "core/result.h"

namespace ferry {

enum class RedisTopology {
  kSingle,    // one server (host:port or a Unix socket)
  kSentinel,  // the current master of `master_name`, asked of the sentinels in `hosts`
  kCluster,   // a Redis Cluster; `hosts` are the nodes the slot map is first asked of
};

struct RedisHost {
  std::string host;
  int port = 0;
};

struct RedisEndpoint {
  RedisTopology topology = RedisTopology::kSingle;
  bool tls = false;  // rediss: every connection (sentinels included) is TLS
  // kSingle: the server. For the other topologies, the first of `hosts`.
  std::string host = "127.0.0.1";
  int port = 6379;
  std::string unix_socket;       // kSingle: connect to this socket instead of host:port
  std::vector<RedisHost> hosts;  // every host of the URL, in order (one for kSingle over TCP)
  std::string master_name;       // kSentinel
  std::string username;          // ACL user; empty means the default user
  std::string password;          // empty means no AUTH
  int db = 0;                    // always 0 for kCluster
};

Result<RedisEndpoint> ParseRedisUrl(const std::string& url);
// The URL with any password replaced by "****", for banners and logs.
std::string MaskRedisUrl(const std::string& url);

// TLS settings for rediss:// URLs. Verification is on unless `verify` is turned off.
struct RedisTlsOptions {
  // PEM file of the CA certificates that sign the server's certificate. Empty: the system's
  // trust store (/etc/ssl/certs), which is right for managed Redis services.
  std::string ca_file;
  // Client certificate and its key (PEM), for servers started with tls-auth-clients yes.
  std::string cert_file;
  std::string key_file;
  // The name sent as SNI and checked against the server's certificate. Empty: the host of the
  // URL (or the address a sentinel or the cluster map names).
  std::string server_name;
  // false: accept any certificate (encryption without authentication; tests and emergencies).
  bool verify = true;
};

// How to connect, beyond the URL.
struct RedisConnectOptions {
  // ACL user for the data nodes when the URL names none (redis://:password@host). A URL that
  // names another user is an error, not a silent choice.
  std::string username;
  RedisTlsOptions tls;
  // The sentinels' own ACL user and password (Sentinel's requirepass / user), when they differ
  // from the data nodes'. Empty password: sentinels are asked without AUTH.
  std::string sentinel_username;
  std::string sentinel_password;
};

// Checks that the options fit the URL (TLS files need rediss://, a client key needs its
// certificate, sentinel credentials need a sentinel URL, usernames agree) and applies
// `options.username` to the endpoint. kInvalidArgument naming the problem.
Result<RedisEndpoint> ResolveRedisEndpoint(const std::string& url,
                                           const RedisConnectOptions& options);

}  // namespace ferry
