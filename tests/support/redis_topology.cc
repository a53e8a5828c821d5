#include "redis_topology.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>

namespace ferry::testing {
namespace {

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream f(path);
  f << text;
  if (!f) throw std::runtime_error("cannot write " + path);
}

void Run(const std::vector<std::string>& argv) {
  auto r = RunCommand(argv, std::chrono::seconds(60));
  if (r.exit_code != 0) {
    std::string cmd;
    for (const auto& a : argv) cmd += a + " ";
    throw std::runtime_error("command failed (" + std::to_string(r.exit_code) + "): " + cmd + "\n" +
                             r.out + r.err);
  }
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    out.push_back(line);
  }
  return out;
}

std::vector<std::string> Words(const std::string& line) {
  std::vector<std::string> out;
  std::istringstream in(line);
  std::string w;
  while (in >> w) out.push_back(w);
  return out;
}

}  // namespace

TestCerts::TestCerts() {
  const std::string d = dir_.path().string() + "/";
  auto key = [&](const std::string& name) {
    Run({"openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-out", d + name});
  };
  auto ca = [&](const std::string& stem, const std::string& cn) {
    key(stem + ".key");
    Run({"openssl", "req", "-x509", "-new", "-key", d + stem + ".key", "-out", d + stem + ".crt",
         "-days", "3650", "-subj", "/CN=" + cn, "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign"});
  };
  auto leaf = [&](const std::string& stem, const std::string& cn, const std::string& ext) {
    key(stem + ".key");
    Run({"openssl", "req", "-new", "-key", d + stem + ".key", "-out", d + stem + ".csr", "-subj",
         "/CN=" + cn});
    WriteFile(d + stem + ".ext", ext);
    Run({"openssl", "x509", "-req", "-in", d + stem + ".csr", "-CA", d + "ca.crt", "-CAkey",
         d + "ca.key", "-CAcreateserial", "-out", d + stem + ".crt", "-days", "365", "-extfile",
         d + stem + ".ext"});
  };
  ca("ca", "Ferry Test CA");
  ca("other-ca", "Some Other CA");
  leaf("server", "localhost",
       "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n");
  leaf("client", "ferry-client", "extendedKeyUsage=clientAuth\n");
}

// A free port for a cluster node: at most 55535, with its cluster bus port (+10000) free too.
static int FreeClusterPort() {
  for (int i = 0; i < 1000; ++i) {
    int p = FreePort();
    if (p > 55535) continue;
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<uint16_t>(p + 10000));
    bool free = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    ::close(fd);
    if (free) return p;
  }
  throw std::runtime_error("no free port pair for a cluster node");
}

RedisNode::RedisNode(Options options)
    : options_(std::move(options)),
      dir_(std::make_unique<TempDir>()),
      port_(options_.cluster ? FreeClusterPort() : FreePort()) {
  Start();
}

RedisNode::~RedisNode() {
  if (proc_) Kill();
}

void RedisNode::Start() {
  const std::string p = std::to_string(port_);
  std::vector<std::string> argv = {"redis-server",
                                   "--bind",
                                   "127.0.0.1",
                                   "--dir",
                                   dir_->path().string(),
                                   "--save",
                                   "",
                                   "--daemonize",
                                   "no",
                                   "--appendonly",
                                   options_.appendonly ? "yes" : "no",
                                   "--appendfsync",
                                   "everysec",
                                   "--maxmemory-policy",
                                   "noeviction"};
  if (options_.tls != nullptr) {
    const TestCerts& c = *options_.tls;
    argv.insert(argv.end(), {"--port", "0", "--tls-port", p, "--tls-cert-file", c.server_cert(),
                             "--tls-key-file", c.server_key(), "--tls-ca-cert-file", c.ca(),
                             "--tls-auth-clients", options_.tls_auth_clients ? "yes" : "no",
                             "--tls-replication", "yes", "--tls-cluster", "yes"});
  } else {
    argv.insert(argv.end(), {"--port", p});
  }
  if (!options_.password.empty()) {
    argv.insert(argv.end(),
                {"--requirepass", options_.password, "--masterauth", options_.password});
  }
  if (options_.replica_of_port > 0) {
    argv.insert(argv.end(), {"--replicaof", "127.0.0.1", std::to_string(options_.replica_of_port)});
  }
  if (options_.cluster) {
    argv.insert(argv.end(),
                {"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                 "--cluster-node-timeout", std::to_string(options_.cluster_node_timeout.count())});
  }
  argv.insert(argv.end(), options_.extra.begin(), options_.extra.end());
  proc_ = std::make_unique<Process>(Process::Options{argv, {}, "", ""});
  bool up = Eventually([&] { return Cli({"PING"}) == "PONG"; }, std::chrono::seconds(10));
  if (!up) throw std::runtime_error("redis-server did not start: " + proc_->Stdout());
}

void RedisNode::Kill() {
  if (!proc_) return;
  proc_->Signal(SIGKILL);
  proc_->Wait(std::chrono::seconds(10));
  proc_.reset();
}

std::string RedisNode::Cli(const std::vector<std::string>& args) const {
  std::vector<std::string> argv = {"redis-cli", "-h", "127.0.0.1", "-p", std::to_string(port_)};
  if (options_.tls != nullptr) {
    argv.insert(argv.end(), {"--tls", "--cacert", options_.tls->ca(), "--cert",
                             options_.tls->client_cert(), "--key", options_.tls->client_key()});
  }
  if (!options_.password.empty()) {
    argv.insert(argv.end(), {"--no-auth-warning", "-a", options_.password});
  }
  argv.insert(argv.end(), args.begin(), args.end());
  auto r = RunCommand(argv, std::chrono::seconds(20));
  std::string out = r.out;
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out;
}

std::string RedisNode::Info(const std::string& field) const {
  for (const auto& line : Lines(Cli({"INFO"}))) {
    if (line.rfind(field + ":", 0) == 0) return line.substr(field.size() + 1);
  }
  return "";
}

// ---------------------------------------------------------------------------------------------

SentinelGroup::SentinelGroup(Options options)
    : options_(std::move(options)), dir_(std::make_unique<TempDir>()) {
  RedisNode::Options master;
  master.password = options_.password;
  nodes_.push_back(std::make_unique<RedisNode>(master));
  for (int i = 0; i < options_.replicas; ++i) {
    RedisNode::Options r = master;
    r.replica_of_port = nodes_[0]->port();
    nodes_.push_back(std::make_unique<RedisNode>(r));
  }
  for (size_t i = 1; i < nodes_.size(); ++i) {
    if (!Eventually([&] { return nodes_[i]->Info("master_link_status") == "up"; },
                    std::chrono::seconds(20))) {
      throw std::runtime_error("replica did not sync with the master");
    }
  }
  for (int i = 0; i < options_.sentinels; ++i) {
    int port = FreePort();
    sentinel_ports_.push_back(port);
    std::string conf = dir_->path().string() + "/sentinel-" + std::to_string(i) + ".conf";
    std::string text = "port " + std::to_string(port) + "\nbind 127.0.0.1\ndaemonize no\n" +
                       "dir " + dir_->path().string() + "\nsentinel resolve-hostnames no\n" +
                       "sentinel monitor mymaster 127.0.0.1 " + std::to_string(nodes_[0]->port()) +
                       " 2\nsentinel down-after-milliseconds mymaster " +
                       std::to_string(options_.down_after.count()) +
                       "\nsentinel failover-timeout mymaster " +
                       std::to_string(options_.failover_timeout.count()) +
                       "\nsentinel parallel-syncs mymaster 1\n";
    if (!options_.password.empty())
      text += "sentinel auth-pass mymaster " + options_.password + "\n";
    WriteFile(conf, text);
    sentinels_.push_back(std::make_unique<Process>(
        Process::Options{{"redis-server", conf, "--sentinel"}, {}, "", ""}));
  }
  // Failover needs every sentinel to know the replica and the other sentinels.
  for (size_t i = 0; i < sentinels_.size(); ++i) {
    bool ready = Eventually(
        [&] {
          auto lines = Lines(SentinelCli(i, {"SENTINEL", "MASTER", "mymaster"}));
          std::map<std::string, std::string> f;
          for (size_t k = 0; k + 1 < lines.size(); k += 2) f[lines[k]] = lines[k + 1];
          return f["num-slaves"] == std::to_string(options_.replicas) &&
                 f["num-other-sentinels"] == std::to_string(options_.sentinels - 1);
        },
        std::chrono::seconds(30));
    if (!ready) throw std::runtime_error("sentinels did not discover each other");
  }
}

SentinelGroup::~SentinelGroup() {
  sentinels_.clear();
  nodes_.clear();
}

std::string SentinelGroup::url() const {
  std::string out = "redis+sentinel://";
  if (!options_.password.empty()) out += ":" + options_.password + "@";
  for (size_t i = 0; i < sentinel_ports_.size(); ++i) {
    out += (i ? "," : "") + std::string("127.0.0.1:") + std::to_string(sentinel_ports_[i]);
  }
  return out + "/mymaster";
}

std::string SentinelGroup::SentinelCli(size_t i, const std::vector<std::string>& args) const {
  std::vector<std::string> argv = {"redis-cli", "-h", "127.0.0.1", "-p",
                                   std::to_string(sentinel_ports_[i])};
  argv.insert(argv.end(), args.begin(), args.end());
  auto r = RunCommand(argv, std::chrono::seconds(10));
  std::string out = r.out;
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out;
}

int SentinelGroup::MasterPort() const {
  for (size_t i = 0; i < sentinel_ports_.size(); ++i) {
    auto lines = Lines(SentinelCli(i, {"SENTINEL", "GET-MASTER-ADDR-BY-NAME", "mymaster"}));
    if (lines.size() >= 2) {
      try {
        return std::stoi(lines[1]);
      } catch (...) {
      }
    }
  }
  return 0;
}

bool SentinelGroup::WaitForNewMaster(int old_port, std::chrono::milliseconds timeout) const {
  return Eventually(
      [&] {
        int p = MasterPort();
        return p != 0 && p != old_port;
      },
      timeout);
}

// ---------------------------------------------------------------------------------------------

RedisCluster::RedisCluster(Options options) : options_(std::move(options)) {
  const int total = options_.masters * (1 + options_.replicas);
  RedisNode::Options o;
  o.cluster = true;
  o.cluster_node_timeout = options_.node_timeout;
  o.appendonly = options_.appendonly;
  for (int i = 0; i < total; ++i) nodes_.push_back(std::make_unique<RedisNode>(o));
  if (options_.use_redis_cli_create && options_.masters >= 3) {
    std::vector<std::string> argv = {"redis-cli", "--cluster", "create"};
    for (const auto& n : nodes_) argv.push_back(n->address());
    argv.insert(argv.end(),
                {"--cluster-replicas", std::to_string(options_.replicas), "--cluster-yes"});
    Run(argv);
  } else {
    for (size_t i = 1; i < nodes_.size(); ++i) {
      nodes_[0]->Cli({"CLUSTER", "MEET", "127.0.0.1", std::to_string(nodes_[i]->port())});
    }
    const int m = options_.masters;
    for (int i = 0; i < m; ++i) {
      int from = 16384 * i / m;
      int to = 16384 * (i + 1) / m - 1;
      nodes_[static_cast<size_t>(i)]->Cli(
          {"CLUSTER", "ADDSLOTSRANGE", std::to_string(from), std::to_string(to)});
    }
    bool met = Eventually(
        [&] {
          for (const auto& n : nodes_) {
            auto info = n->Cli({"CLUSTER", "INFO"});
            if (info.find("cluster_known_nodes:" + std::to_string(total)) == std::string::npos) {
              return false;
            }
          }
          return true;
        },
        std::chrono::seconds(30));
    if (!met) throw std::runtime_error("cluster nodes did not meet");
    for (int i = m; i < total; ++i) {
      size_t master = static_cast<size_t>((i - m) % m);
      std::string id = NodeId(master);
      bool ok = Eventually(
          [&] {
            return nodes_[static_cast<size_t>(i)]->Cli({"CLUSTER", "REPLICATE", id}) == "OK";
          },
          std::chrono::seconds(20));
      if (!ok) throw std::runtime_error("CLUSTER REPLICATE failed");
    }
  }
  if (!WaitForOk(std::chrono::seconds(60))) throw std::runtime_error("cluster did not become ok");
  for (size_t i = 0; i < nodes_.size(); ++i) {
    if (nodes_[i]->Info("role") != "slave") continue;
    if (!Eventually([&] { return nodes_[i]->Info("master_link_status") == "up"; },
                    std::chrono::seconds(30))) {
      throw std::runtime_error("cluster replica did not sync");
    }
  }
}

RedisCluster::~RedisCluster() { nodes_.clear(); }

std::string RedisCluster::url() const {
  std::string out = "redis+cluster://" + nodes_[0]->address();
  if (nodes_.size() > 1) out += "," + nodes_[1]->address();
  return out;
}

std::string RedisCluster::NodeId(size_t i) const { return nodes_[i]->Cli({"CLUSTER", "MYID"}); }

std::vector<size_t> RedisCluster::Masters(size_t ask) const {
  std::vector<size_t> out;
  for (const auto& line : Lines(nodes_[ask]->Cli({"CLUSTER", "NODES"}))) {
    auto w = Words(line);
    if (w.size() < 8) continue;
    if (w[2].find("master") == std::string::npos || w[2].find("fail") != std::string::npos) {
      continue;
    }
    std::string port = w[1].substr(w[1].find(':') + 1);
    port = port.substr(0, port.find('@'));
    for (size_t i = 0; i < nodes_.size(); ++i) {
      if (std::to_string(nodes_[i]->port()) == port) out.push_back(i);
    }
  }
  return out;
}

std::vector<int> RedisCluster::SlotOwners(size_t ask) const {
  std::vector<int> owners(16384, -1);
  for (const auto& line : Lines(nodes_[ask]->Cli({"CLUSTER", "NODES"}))) {
    auto w = Words(line);
    if (w.size() < 9 || w[2].find("master") == std::string::npos) continue;
    if (w[2].find("fail") != std::string::npos) continue;
    std::string port = w[1].substr(w[1].find(':') + 1);
    port = port.substr(0, port.find('@'));
    int index = -1;
    for (size_t i = 0; i < nodes_.size(); ++i) {
      if (std::to_string(nodes_[i]->port()) == port) index = static_cast<int>(i);
    }
    for (size_t k = 8; k < w.size(); ++k) {
      if (w[k].empty() || w[k][0] == '[') continue;  // a migration marker
      auto dash = w[k].find('-');
      int from = std::stoi(w[k].substr(0, dash));
      int to = dash == std::string::npos ? from : std::stoi(w[k].substr(dash + 1));
      for (int s = from; s <= to && s < 16384; ++s) owners[static_cast<size_t>(s)] = index;
    }
  }
  return owners;
}

int RedisCluster::MasterOfSlot(int slot, size_t ask) const {
  return SlotOwners(ask)[static_cast<size_t>(slot)];
}

CommandResult RedisCluster::Reshard(size_t from, size_t to, int slots) const {
  return RunCommand(
      {"redis-cli", "--cluster", "reshard", nodes_[from]->address(), "--cluster-from", NodeId(from),
       "--cluster-to", NodeId(to), "--cluster-slots", std::to_string(slots), "--cluster-yes"},
      std::chrono::seconds(300));
}

void RedisCluster::BeginSlotMove(int slot, size_t from, size_t to) const {
  const std::string s = std::to_string(slot);
  nodes_[to]->Cli({"CLUSTER", "SETSLOT", s, "IMPORTING", NodeId(from)});
  nodes_[from]->Cli({"CLUSTER", "SETSLOT", s, "MIGRATING", NodeId(to)});
}

int RedisCluster::MoveSlotKeys(int slot, size_t from, size_t to, int count) const {
  auto keys = Lines(
      nodes_[from]->Cli({"CLUSTER", "GETKEYSINSLOT", std::to_string(slot), std::to_string(count)}));
  std::vector<std::string> args = {
      "MIGRATE", "127.0.0.1", std::to_string(nodes_[to]->port()), "", "0", "5000", "KEYS"};
  int n = 0;
  for (const auto& k : keys) {
    if (k.empty()) continue;
    args.push_back(k);
    ++n;
  }
  if (n > 0) nodes_[from]->Cli(args);
  return n;
}

void RedisCluster::EndSlotMove(int slot, size_t to) const {
  const std::string s = std::to_string(slot);
  const std::string id = NodeId(to);
  nodes_[to]->Cli({"CLUSTER", "SETSLOT", s, "NODE", id});
  for (size_t i = 0; i < nodes_.size(); ++i) {
    if (i != to && nodes_[i]->running()) nodes_[i]->Cli({"CLUSTER", "SETSLOT", s, "NODE", id});
  }
}

bool RedisCluster::WaitForOk(std::chrono::milliseconds timeout) const {
  return Eventually(
      [&] {
        for (const auto& n : nodes_) {
          if (!n->running()) continue;
          auto info = n->Cli({"CLUSTER", "INFO"});
          if (info.find("cluster_state:ok") == std::string::npos ||
              info.find("cluster_slots_ok:16384") == std::string::npos) {
            return false;
          }
        }
        return true;
      },
      timeout);
}

int TestKeySlot(const std::string& key) {
  std::string k = key;
  auto open = k.find('{');
  if (open != std::string::npos) {
    auto close = k.find('}', open + 1);
    if (close != std::string::npos && close > open + 1) k = k.substr(open + 1, close - open - 1);
  }
  uint16_t crc = 0;
  for (char ch : k) {
    crc = static_cast<uint16_t>(crc ^ (static_cast<unsigned char>(ch) << 8));
    for (int b = 0; b < 8; ++b) {
      crc = static_cast<uint16_t>((crc & 0x8000) != 0 ? (crc << 1) ^ 0x1021 : crc << 1);
    }
  }
  return crc % 16384;
}

}  // namespace ferry::testing
