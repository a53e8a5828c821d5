// Redis deployments for integration tests and benchmarks, all real processes on free loopback
// ports: a server with TLS (certificates made by the openssl CLI), a Sentinel group (master,
// replicas, sentinels) and a Redis Cluster. Everything is stopped and removed on destruction.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "harness.h"

namespace ferry::testing {

// A test CA, a server certificate for 127.0.0.1 / localhost and a client certificate signed by
// it, and a second CA that signed nothing here (the "wrong CA").
class TestCerts {
 public:
  TestCerts();
  TestCerts(const TestCerts&) = delete;
  TestCerts& operator=(const TestCerts&) = delete;

  std::string ca() const { return Path("ca.crt"); }
  std::string server_cert() const { return Path("server.crt"); }
  std::string server_key() const { return Path("server.key"); }
  std::string client_cert() const { return Path("client.crt"); }
  std::string client_key() const { return Path("client.key"); }
  std::string other_ca() const { return Path("other-ca.crt"); }
  std::string Path(const std::string& name) const { return (dir_.path() / name).string(); }

 private:
  TempDir dir_;
};

// One redis-server process. With `tls`, it listens only on a TLS port.
class RedisNode {
 public:
  struct Options {
    std::string password;            // requirepass (and masterauth) when non-empty
    const TestCerts* tls = nullptr;  // TLS-only port when set
    bool tls_auth_clients = false;   // require a client certificate
    bool cluster = false;            // cluster-enabled yes
    std::chrono::milliseconds cluster_node_timeout{2000};
    int replica_of_port = 0;  // replicaof 127.0.0.1 <port>
    bool appendonly = true;
    std::vector<std::string> extra;  // more redis-server arguments
  };
  explicit RedisNode(Options options);
  ~RedisNode();
  RedisNode(const RedisNode&) = delete;
  RedisNode& operator=(const RedisNode&) = delete;

  int port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  // redis-cli against this node (TLS and password as needed); stdout, trimmed.
  std::string Cli(const std::vector<std::string>& args) const;
  // A field of INFO ("role", "master_link_status", ...); "" when absent.
  std::string Info(const std::string& field) const;
  void Start();
  void Kill();  // SIGKILL: no shutdown, no final save
  bool running() const { return proc_ != nullptr; }
  pid_t pid() const { return proc_ ? proc_->pid() : -1; }

 private:
  Options options_;
  std::unique_ptr<TempDir> dir_;
  std::unique_ptr<Process> proc_;
  int port_ = 0;
};

// A master, replicas and sentinels that monitor it as "mymaster".
class SentinelGroup {
 public:
  struct Options {
    int replicas = 1;
    int sentinels = 3;
    std::string password;  // data nodes' requirepass (sentinels get auth-pass)
    std::chrono::milliseconds down_after{1000};
    std::chrono::milliseconds failover_timeout{3000};
  };
  explicit SentinelGroup(Options options);
  ~SentinelGroup();

  // redis+sentinel://[:password@]127.0.0.1:s1,...,127.0.0.1:sN/mymaster
  std::string url() const;
  // The data nodes; node 0 was the master at start.
  RedisNode& node(size_t i) { return *nodes_[i]; }
  size_t nodes() const { return nodes_.size(); }
  // The master's port as the first answering sentinel says now; 0 if none answers.
  int MasterPort() const;
  // Waits until the sentinels name a master other than `old_port`.
  bool WaitForNewMaster(int old_port, std::chrono::milliseconds timeout) const;
  std::string SentinelCli(size_t i, const std::vector<std::string>& args) const;

 private:
  Options options_;
  std::vector<std::unique_ptr<RedisNode>> nodes_;
  std::unique_ptr<TempDir> dir_;
  std::vector<int> sentinel_ports_;
  std::vector<std::unique_ptr<Process>> sentinels_;
};

// A Redis Cluster of `masters` masters with `replicas` replicas each. Created with
// `redis-cli --cluster create` (which needs at least 3 masters) or, for 1 or 2 masters, by hand
// (CLUSTER MEET, ADDSLOTSRANGE, REPLICATE), with the slots split evenly.
class RedisCluster {
 public:
  struct Options {
    int masters = 3;
    int replicas = 1;
    std::chrono::milliseconds node_timeout{2000};
    bool use_redis_cli_create = true;  // ignored below 3 masters
    bool appendonly = true;
  };
  explicit RedisCluster(Options options);
  ~RedisCluster();

  // redis+cluster://127.0.0.1:p1,127.0.0.1:p2 (the first two nodes)
  std::string url() const;
  RedisNode& node(size_t i) { return *nodes_[i]; }
  size_t nodes() const { return nodes_.size(); }
  std::string NodeId(size_t i) const;
  // Index of the node serving `slot` as master, as node `ask` sees it; -1 if none.
  int MasterOfSlot(int slot, size_t ask = 0) const;
  // The master index of every slot (-1 where none), from one CLUSTER NODES.
  std::vector<int> SlotOwners(size_t ask = 0) const;
  // Indices of the nodes that are masters now, as node `ask` sees it.
  std::vector<size_t> Masters(size_t ask = 0) const;
  // Moves `slots` slots from node `from` to node `to` (redis-cli --cluster reshard).
  CommandResult Reshard(size_t from, size_t to, int slots) const;
  // A slot migration by hand, in the steps redis-cli's resharding takes, so a test can act
  // between them: mark the slot importing on `to` and migrating on `from`; move up to `count`
  // of its keys (MIGRATE); give the slot to `to` on every master.
  void BeginSlotMove(int slot, size_t from, size_t to) const;
  int MoveSlotKeys(int slot, size_t from, size_t to, int count) const;
  void EndSlotMove(int slot, size_t to) const;
  // Waits until every running node reports cluster_state:ok and agrees on the slot owners.
  bool WaitForOk(std::chrono::milliseconds timeout) const;

 private:
  Options options_;
  std::vector<std::unique_ptr<RedisNode>> nodes_;
};

// The hash slot of a key (CRC16 with hash tags), as Redis Cluster computes it.
int TestKeySlot(const std::string& key);

}  // namespace ferry::testing
