#include "broker/redis/redis_client.h"

#include "broker/redis/redis_cluster.h"

namespace ferry::redis_broker {
namespace {

// One connection: to the URL's server, or under Sentinel to the master the sentinels name when
// the connection is (re)made. The connection closes itself on an I/O error or a READONLY reply,
// so the next call's Ready() asks the sentinels again.
class SingleClient final : public Client {
 public:
  explicit SingleClient(std::shared_ptr<const ClientSetup> setup)
      : setup_(std::move(setup)), conn_(FirstAddress(setup_->endpoint), setup_->data) {}

  Status Ready() override {
    if (conn_.connected()) return {};
    if (setup_->endpoint.topology == RedisTopology::kSentinel) {
      auto master = LocateMaster();
      if (!master) return Fail(master.error());
      conn_.Retarget(std::move(*master));
    }
    return conn_.Connect();
  }

  uint64_t generation() const override { return conn_.generation(); }
  std::string where() const override { return conn_.where(); }

  Result<ReplyPtr> Command(const Args& args, std::chrono::milliseconds extra) override {
    if (auto st = Ready(); !st) return Fail(st.error());
    return conn_.Command(args, extra);
  }

  Result<std::vector<ReplyPtr>> Pipeline(const std::vector<Args>& commands) override {
    if (auto st = Ready(); !st) return Fail(st.error());
    return conn_.Pipeline(commands);
  }

  Status WaitForReplicas(int replicas, std::chrono::milliseconds timeout) override {
    if (!conn_.connected()) {
      return Fail(ErrorCode::kUnavailable,
                  "the connection to Redis at " + conn_.where() +
                      " broke after the write, before its replication was confirmed");
    }
    auto r = conn_.Command(Args{"WAIT", std::to_string(replicas), std::to_string(timeout.count())},
                           timeout);
    if (!r) return Fail(r.error());
    int64_t acked = ReplyInt(**r);
    if (acked < replicas) {
      return Fail(ErrorCode::kUnavailable,
                  "written on the Redis master at " + conn_.where() + " but only " +
                      std::to_string(acked) + " of " + std::to_string(replicas) +
                      " replica(s) confirmed it within " + std::to_string(timeout.count()) +
                      "ms (WAIT); a failover now could lose it");
    }
    return {};
  }

  Result<std::vector<std::pair<std::string, ReplyPtr>>> OnEveryMaster(const Args& args) override {
    auto r = Command(args, {});
    if (!r) return Fail(r.error());
    std::vector<std::pair<std::string, ReplyPtr>> out;
    out.emplace_back(conn_.where(), std::move(*r));
    return out;
  }

  Result<std::map<std::string, std::string>> TopologyFacts() override {
    if (auto st = Ready(); !st) return Fail(st.error());
    std::map<std::string, std::string> facts;
    const RedisEndpoint& ep = setup_->endpoint;
    facts["topology"] = ep.topology == RedisTopology::kSentinel ? "sentinel" : "single";
    facts["tls"] = !setup_->data->tls            ? "off"
                   : setup_->data->tls->verify() ? "verified"
                                                 : "unverified";
    if (conn_.tls_cert_expires_ms() > 0) {
      facts["tls_cert_expires_ms"] = std::to_string(conn_.tls_cert_expires_ms());
    }
    facts["server"] = conn_.where();
    if (ep.topology != RedisTopology::kSentinel) return facts;
    facts["master"] = conn_.where();
    facts["master_name"] = ep.master_name;
    int answered = 0;
    std::string quorum;
    for (const auto& h : ep.hosts) {
      Connection s(Address{h.host, h.port, ""}, setup_->sentinel);
      auto r = s.Command(Args{"SENTINEL", "CKQUORUM", ep.master_name});
      if (!r) {
        if (quorum.empty() && r.error().message.find("NOQUORUM") != std::string::npos) {
          ++answered;
          quorum = r.error().message;
        }
        continue;
      }
      ++answered;
      if (quorum.empty()) quorum = std::string(ReplyText(**r));
    }
    facts["sentinels"] =
        std::to_string(answered) + " of " + std::to_string(ep.hosts.size()) + " answered";
    facts["sentinels_answered"] = std::to_string(answered);
    facts["sentinels_total"] = std::to_string(ep.hosts.size());
    facts["sentinel_quorum"] = quorum;
    return facts;
  }

 private:
  static Address FirstAddress(const RedisEndpoint& ep) {
    if (!ep.unix_socket.empty()) return Address{"", 0, ep.unix_socket};
    return Address{ep.host, ep.port, ""};
  }

  // Asks the sentinels, starting with the one that answered last, for the master's address.
  Result<Address> LocateMaster() {
    const RedisEndpoint& ep = setup_->endpoint;
    std::string errors;
    for (size_t k = 0; k < ep.hosts.size(); ++k) {
      size_t i = (next_sentinel_ + k) % ep.hosts.size();
      Connection s(Address{ep.hosts[i].host, ep.hosts[i].port, ""}, setup_->sentinel);
      auto r = s.Command(Args{"SENTINEL", "GET-MASTER-ADDR-BY-NAME", ep.master_name});
      std::string why;
      if (!r) {
        why = r.error().message;
      } else if ((*r)->type != REDIS_REPLY_ARRAY || (*r)->elements != 2) {
        why = "sentinel at " + s.where() + " does not know master '" + ep.master_name + "'";
      } else {
        const int64_t port = ReplyInt(*(*r)->element[1]);
        std::string host(ReplyText(*(*r)->element[0]));
        if (!host.empty() && port > 0 && port <= 65535) {
          next_sentinel_ = i;
          return Address{host, static_cast<int>(port), ""};
        }
        why = "sentinel at " + s.where() + " answered an unusable address";
      }
      // A wrong sentinel password is the operator's to fix, not a reason to keep trying.
      if (!r && r.error().code == ErrorCode::kUnauthenticated) return Fail(r.error());
      errors += (errors.empty() ? "" : "; ") + why;
    }
    return Fail(ErrorCode::kUnavailable,
                "no sentinel named the master '" + ep.master_name + "': " + errors);
  }

  // Constant after construction.
  const std::shared_ptr<const ClientSetup> setup_;

  Connection conn_;
  size_t next_sentinel_ = 0;
};

}  // namespace

Result<std::shared_ptr<const ClientSetup>> MakeClientSetup(const std::string& url,
                                                           const RedisConnectOptions& options,
                                                           std::chrono::milliseconds io_timeout,
                                                           bool load_scripts) {
  auto ep = ResolveRedisEndpoint(url, options);
  if (!ep) return Fail(ep.error());
  if (io_timeout.count() <= 0) {
    return Fail(ErrorCode::kInvalidArgument, "Redis I/O timeout must be > 0");
  }
  std::shared_ptr<const TlsContext> tls;
  if (ep->tls) {
    auto ctx = TlsContext::Make(options.tls);
    if (!ctx) return Fail(ctx.error());
    tls = std::move(*ctx);
  }
  auto setup = std::make_shared<ClientSetup>();
  auto data = std::make_shared<ConnectionSettings>();
  data->username = ep->username;
  data->password = ep->password;
  data->db = ep->db;
  data->io_timeout = io_timeout;
  data->tls = tls;
  data->load_scripts = load_scripts;
  data->require_master = ep->topology == RedisTopology::kSentinel;
  setup->data = std::move(data);
  if (ep->topology == RedisTopology::kSentinel) {
    auto sentinel = std::make_shared<ConnectionSettings>();
    sentinel->username = options.sentinel_username;
    sentinel->password = options.sentinel_password;
    sentinel->io_timeout = io_timeout;
    sentinel->tls = tls;
    sentinel->load_scripts = false;
    sentinel->kind = "sentinel";
    setup->sentinel = std::move(sentinel);
  }
  setup->endpoint = std::move(*ep);
  return std::shared_ptr<const ClientSetup>(std::move(setup));
}

std::unique_ptr<Client> NewClient(std::shared_ptr<const ClientSetup> setup) {
  if (setup->endpoint.topology == RedisTopology::kCluster)
    return NewClusterClient(std::move(setup));
  return std::make_unique<SingleClient>(std::move(setup));
}

}  // namespace ferry::redis_broker
