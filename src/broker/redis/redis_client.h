// The connection layer every Ferry process talks to Redis through (broker, leader lease, and so
// worker, server, scheduler and CLI): one Client per thread, for any of the three deployments.
//
//   single    one Connection (TCP, Unix socket or TLS) to one server.
//   sentinel  one Connection to the master the sentinels name; re-asked whenever the connection
//             breaks or the server answers READONLY (it became a replica after a failover), and
//             refused when its ROLE is not master.
//   cluster   one Connection per master, commands routed by their key's hash slot, MOVED and
//             ASK followed, TRYAGAIN retried, the slot map refreshed after a redirect or a
//             broken connection (redis_cluster.h).
//
// Thread-safety: a Client is not thread-safe (REQUIRES: external synchronization); a ClientSetup
// is immutable and shared by every client of a factory.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "broker/redis/redis_connection.h"
#include "core/redis_url.h"
#include "core/result.h"

namespace ferry::redis_broker {

// Everything a client needs, resolved once per factory (the TLS context loads its files here).
struct ClientSetup {
  RedisEndpoint endpoint;
  std::shared_ptr<const ConnectionSettings> data;      // masters / the server
  std::shared_ptr<const ConnectionSettings> sentinel;  // the sentinels (kSentinel only)
};

// kInvalidArgument for a bad URL, options that do not fit it, or unreadable TLS files.
Result<std::shared_ptr<const ClientSetup>> MakeClientSetup(const std::string& url,
                                                           const RedisConnectOptions& options,
                                                           std::chrono::milliseconds io_timeout,
                                                           bool load_scripts = true);

class Client {
 public:
  virtual ~Client() = default;
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Connects (or reconnects after an error; under Sentinel asks the sentinels first, under
  // Cluster learns the slot map). No-op while connected.
  virtual Status Ready() = 0;
  // Changes whenever a connection was (re)established or the slot map changed: callers drop
  // what they cached about the server (consumer groups may be gone after a restart).
  virtual uint64_t generation() const = 0;
  // Where this client is connected, for messages.
  virtual std::string where() const = 0;
  virtual bool clustered() const { return false; }

  // One command; an error reply becomes an Error. `extra` is added to the socket timeout (the
  // BLOCK time of a blocking read).
  virtual Result<ReplyPtr> Command(const Args& args, std::chrono::milliseconds extra = {}) = 0;
  // Every command's reply in order, error replies as replies. Under Cluster the commands may
  // go to several masters; only commands of one slot keep their relative order.
  virtual Result<std::vector<ReplyPtr>> Pipeline(const std::vector<Args>& commands) = 0;
  // Waits until `replicas` replicas acknowledged every write this client sent on the
  // connections it used since the last call (Redis WAIT). kUnavailable saying how many did when
  // fewer did within `timeout`, or when the connection broke since the write (its fate is then
  // unknown).
  virtual Status WaitForReplicas(int replicas, std::chrono::milliseconds timeout) = 0;
  // Sends `args` to every master (one for single and sentinel); (where, reply) pairs.
  virtual Result<std::vector<std::pair<std::string, ReplyPtr>>> OnEveryMaster(const Args& args) = 0;
  // Deployment facts for `ferry doctor`: "topology", "tls", "tls_cert_expires_ms", and for
  // Sentinel "master", "sentinels", "sentinel_quorum", for Cluster "cluster_state",
  // "cluster_slots_assigned", "cluster_masters", "masters_without_replicas".
  virtual Result<std::map<std::string, std::string>> TopologyFacts() = 0;

 protected:
  Client() = default;
};

// A client for `setup`; does not connect (the first call does).
std::unique_ptr<Client> NewClient(std::shared_ptr<const ClientSetup> setup);

}  // namespace ferry::redis_broker
