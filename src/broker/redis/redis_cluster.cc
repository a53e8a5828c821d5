#include "broker/redis/redis_cluster.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <map>
#include <set>
#include <thread>

namespace ferry::redis_broker {
namespace {

using SteadyClock = std::chrono::steady_clock;

// A command is redirected at most this often before its last reply is returned as it is.
constexpr int kMaxRedirects = 16;
// Pause between tries while a slot is being migrated (ASK on a script, TRYAGAIN).
constexpr std::chrono::milliseconds kMigrationPause{20};

// CRC16/XMODEM (polynomial 0x1021), the checksum Redis Cluster hashes keys with.
constexpr std::array<uint16_t, 256> MakeCrcTable() {
  std::array<uint16_t, 256> t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t crc = i << 8;
    for (int b = 0; b < 8; ++b) crc = (crc & 0x8000) != 0 ? (crc << 1) ^ 0x1021 : crc << 1;
    t[i] = static_cast<uint16_t>(crc);
  }
  return t;
}
constexpr std::array<uint16_t, 256> kCrcTable = MakeCrcTable();

uint16_t Crc16(std::string_view s) {
  uint16_t crc = 0;
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    crc = static_cast<uint16_t>((crc << 8) ^ kCrcTable[((crc >> 8) ^ c) & 0xff]);
  }
  return crc;
}

bool NameIs(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return (x | 0x20) == (y | 0x20);
         });
}

bool IsScript(const Args& args) {
  return NameIs(args.name(), "EVALSHA") || NameIs(args.name(), "EVAL");
}

// "MOVED 3999 127.0.0.1:6381" / "ASK ..." -> slot and address.
bool ParseRedirect(std::string_view text, int& slot, Address& to) {
  auto sp1 = text.find(' ');
  if (sp1 == std::string_view::npos) return false;
  auto sp2 = text.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos) return false;
  std::string_view s = text.substr(sp1 + 1, sp2 - sp1 - 1);
  std::string_view addr = text.substr(sp2 + 1);
  auto colon = addr.rfind(':');
  if (colon == std::string_view::npos) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), slot);
  if (ec != std::errc() || slot < 0 || slot >= kClusterSlots) return false;
  int port = 0;
  std::string_view ps = addr.substr(colon + 1);
  auto [p2, ec2] = std::from_chars(ps.data(), ps.data() + ps.size(), port);
  if (ec2 != std::errc() || port <= 0 || port > 65535) return false;
  std::string_view host = addr.substr(0, colon);
  if (host.size() > 1 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  to = Address{std::string(host), port, ""};
  return true;
}

class ClusterClient final : public Client {
 public:
  explicit ClusterClient(std::shared_ptr<const ClientSetup> setup) : setup_(std::move(setup)) {
    slots_.fill(nullptr);
  }

  Status Ready() override {
    if (!stale_) return {};
    return Refresh();
  }

  uint64_t generation() const override {
    uint64_t g = refreshes_;
    for (const auto& [_, conn] : nodes_) g += conn->generation();
    return g;
  }

  std::string where() const override {
    std::string out = "cluster ";
    const auto& hosts = setup_->endpoint.hosts;
    for (size_t i = 0; i < hosts.size(); ++i) {
      out += (i ? "," : "") + Address{hosts[i].host, hosts[i].port, ""}.ToString();
    }
    return out;
  }

  bool clustered() const override { return true; }

  Result<ReplyPtr> Command(const Args& args, std::chrono::milliseconds extra) override {
    if (auto st = Ready(); !st) return Fail(st.error());
    auto r = Execute(args, extra);
    if (!r) return Fail(r.error());
    if (IsError(**r)) return Fail(ReplyError(**r));
    return r;
  }

  Result<std::vector<ReplyPtr>> Pipeline(const std::vector<Args>& commands) override {
    if (auto st = Ready(); !st) return Fail(st.error());
    std::vector<ReplyPtr> replies(commands.size());
    std::vector<std::pair<Connection*, std::vector<size_t>>> groups;
    for (size_t i = 0; i < commands.size(); ++i) {
      auto conn = Route(commands[i]);
      if (!conn) return Fail(conn.error());
      auto it = std::find_if(groups.begin(), groups.end(),
                             [&](const auto& g) { return g.first == *conn; });
      if (it == groups.end()) {
        groups.emplace_back(*conn, std::vector<size_t>{i});
      } else {
        it->second.push_back(i);
      }
    }
    // Once one master answered, what it did stands whatever the next one does.
    bool answered = false;
    const auto after = [&answered](Error e) { return answered ? OutcomeUnknown(std::move(e)) : e; };
    for (auto& [conn, indices] : groups) {
      std::vector<const Args*> ptrs;
      ptrs.reserve(indices.size());
      for (size_t i : indices) ptrs.push_back(&commands[i]);
      auto part = conn->Pipeline(ptrs);
      if (!part) {
        stale_ = true;
        return Fail(after(part.error()));
      }
      answered = true;
      used_.insert(conn);
      for (size_t k = 0; k < indices.size(); ++k) replies[indices[k]] = std::move((*part)[k]);
    }
    // Redirected commands did nothing; send them again one by one, in their order.
    for (size_t i = 0; i < replies.size(); ++i) {
      const redisReply& r = *replies[i];
      if (ErrorIs(r, "MOVED") || ErrorIs(r, "ASK") || ErrorIs(r, "TRYAGAIN")) {
        auto again = Execute(commands[i], {});
        if (!again) return Fail(after(again.error()));
        replies[i] = std::move(*again);
      }
    }
    return replies;
  }

  Status WaitForReplicas(int replicas, std::chrono::milliseconds timeout) override {
    std::set<Connection*> used;
    used.swap(used_);
    for (Connection* conn : used) {
      if (!conn->connected()) {
        return Fail(ErrorCode::kUnavailable,
                    "the connection to Redis at " + conn->where() +
                        " broke after the write, before its replication was confirmed");
      }
      auto r = conn->Command(
          Args{"WAIT", std::to_string(replicas), std::to_string(timeout.count())}, timeout);
      if (!r) return Fail(r.error());
      int64_t acked = ReplyInt(**r);
      if (acked < replicas) {
        return Fail(ErrorCode::kUnavailable,
                    "written on the Redis master at " + conn->where() + " but only " +
                        std::to_string(acked) + " of " + std::to_string(replicas) +
                        " replica(s) confirmed it within " + std::to_string(timeout.count()) +
                        "ms (WAIT); a failover now could lose it");
      }
    }
    return {};
  }

  Result<std::vector<std::pair<std::string, ReplyPtr>>> OnEveryMaster(const Args& args) override {
    if (auto st = Ready(); !st) return Fail(st.error());
    std::vector<std::pair<std::string, ReplyPtr>> out;
    for (Connection* conn : Masters()) {
      auto r = conn->Pipeline(std::vector<const Args*>{&args});
      if (!r) {
        stale_ = true;
        return Fail(r.error());
      }
      out.emplace_back(conn->where(), std::move(r->front()));
    }
    return out;
  }

  Result<std::map<std::string, std::string>> TopologyFacts() override {
    if (auto st = Ready(); !st) return Fail(st.error());
    std::map<std::string, std::string> facts;
    facts["topology"] = "cluster";
    facts["tls"] = !setup_->data->tls            ? "off"
                   : setup_->data->tls->verify() ? "verified"
                                                 : "unverified";
    auto masters = Masters();
    facts["cluster_masters"] = std::to_string(masters.size());
    int64_t expires = 0;
    for (Connection* m : masters) {
      if (m->tls_cert_expires_ms() > 0 && (expires == 0 || m->tls_cert_expires_ms() < expires)) {
        expires = m->tls_cert_expires_ms();
      }
    }
    if (expires > 0) facts["tls_cert_expires_ms"] = std::to_string(expires);
    std::string lonely;
    for (const auto& [where, n] : replicas_of_) {
      if (n == 0) lonely += (lonely.empty() ? "" : ",") + where;
    }
    facts["masters_without_replicas"] = lonely;
    if (!masters.empty()) {
      auto info = masters.front()->Command(Args{"CLUSTER", "INFO"});
      if (!info) return Fail(info.error());
      std::string_view text = ReplyText(**info);
      for (std::string_view key : {"cluster_state", "cluster_slots_assigned"}) {
        auto at = text.find(std::string(key) + ":");
        if (at == std::string_view::npos) continue;
        auto begin = at + key.size() + 1;
        auto end = text.find_first_of("\r\n", begin);
        facts[std::string(key)] = std::string(text.substr(begin, end - begin));
      }
    }
    return facts;
  }

 private:
  Connection* Node(const Address& address) {
    std::string key = address.ToString();
    auto it = nodes_.find(key);
    if (it != nodes_.end()) return it->second.get();
    auto conn = std::make_unique<Connection>(address, setup_->data);
    Connection* raw = conn.get();
    nodes_.emplace(std::move(key), std::move(conn));
    return raw;
  }

  std::vector<Connection*> Masters() const {
    std::vector<Connection*> out;
    for (Connection* c : slots_) {
      if (c != nullptr && std::find(out.begin(), out.end(), c) == out.end()) out.push_back(c);
    }
    return out;
  }

  // Learns the slot map from the first node that answers: known masters first (connected ones
  // before the others), then the URL's hosts.
  Status Refresh() {
    std::vector<Address> candidates;
    auto add = [&](const Address& a) {
      if (std::find(candidates.begin(), candidates.end(), a) == candidates.end()) {
        candidates.push_back(a);
      }
    };
    for (Connection* c : Masters()) {
      if (c->connected()) add(c->address());
    }
    for (Connection* c : Masters()) add(c->address());
    for (const auto& h : setup_->endpoint.hosts) add(Address{h.host, h.port, ""});
    std::string errors;
    for (const Address& a : candidates) {
      Connection* conn = Node(a);
      auto r = conn->Command(Args{"CLUSTER", "SLOTS"});
      if (!r) {
        if (r.error().code == ErrorCode::kUnauthenticated) return Fail(r.error());
        if (r.error().message.find("cluster support disabled") != std::string::npos) {
          return Fail(ErrorCode::kInvalidArgument,
                      "Redis at " + conn->where() +
                          " is not a cluster node: use redis:// (or redis+sentinel://) for it");
        }
        errors += (errors.empty() ? "" : "; ") + r.error().message;
        continue;
      }
      if (Apply(**r, a)) return {};
      errors += (errors.empty() ? "" : "; ") + conn->where() + " answered an empty slot map";
    }
    return Fail(ErrorCode::kUnavailable,
                "cannot learn the Redis Cluster slot map (" + where() + "): " + errors);
  }

  // Installs a CLUSTER SLOTS reply; false when it covers no slot.
  bool Apply(const redisReply& r, const Address& asked) {
    if (r.type != REDIS_REPLY_ARRAY) return false;
    std::array<Connection*, kClusterSlots> slots{};
    slots.fill(nullptr);
    std::map<std::string, int> replicas;
    bool any = false;
    for (size_t i = 0; i < r.elements; ++i) {
      const redisReply& range = *r.element[i];
      if (range.type != REDIS_REPLY_ARRAY || range.elements < 3) continue;
      int64_t from = ReplyInt(*range.element[0]);
      int64_t to = ReplyInt(*range.element[1]);
      const redisReply& master = *range.element[2];
      if (from < 0 || to >= kClusterSlots || from > to || master.type != REDIS_REPLY_ARRAY ||
          master.elements < 2) {
        continue;
      }
      std::string host(ReplyText(*master.element[0]));
      // An empty or "?" endpoint means "the address you asked me on".
      if (host.empty() || host == "?") host = asked.host;
      const int64_t port = ReplyInt(*master.element[1]);
      if (port <= 0 || port > 65535) continue;
      Connection* conn = Node(Address{host, static_cast<int>(port), ""});
      for (int64_t s = from; s <= to; ++s) slots[static_cast<size_t>(s)] = conn;
      int& n = replicas[conn->where()];
      n = std::max(n, static_cast<int>(range.elements - 3));
      any = true;
    }
    if (!any) return false;
    slots_ = slots;
    replicas_of_ = std::move(replicas);
    stale_ = false;
    ++refreshes_;
    return true;
  }

  // The master for `args`: its key's slot owner, or any master for a command without keys.
  Result<Connection*> Route(const Args& args) {
    auto key = RoutingKey(args);
    for (int round = 0; round < 2; ++round) {
      if (key) {
        int slot = KeySlot(*key);
        if (Connection* c = slots_[static_cast<size_t>(slot)]; c != nullptr) return c;
      } else {
        for (Connection* c : slots_) {
          if (c != nullptr) return c;
        }
      }
      if (round == 0) {
        if (auto st = Refresh(); !st) return Fail(st.error());
      }
    }
    return Fail(ErrorCode::kUnavailable, key ? "no Redis Cluster master serves hash slot " +
                                                   std::to_string(KeySlot(*key)) +
                                                   " (the cluster is down or not fully set up)"
                                             : std::string("no Redis Cluster master known"));
  }

  static bool Pause(SteadyClock::time_point deadline) {
    if (SteadyClock::now() + kMigrationPause >= deadline) return false;
    std::this_thread::sleep_for(kMigrationPause);
    return true;
  }

  // One command with redirects followed; the final reply as it is (errors included).
  Result<ReplyPtr> Execute(const Args& args, std::chrono::milliseconds extra) {
    const auto deadline = SteadyClock::now() + setup_->data->io_timeout;
    std::optional<Address> ask;
    static const Args kAsking{"ASKING"};
    for (int redirects = 0;;) {
      Connection* conn = nullptr;
      if (ask) {
        conn = Node(*ask);
      } else {
        auto routed = Route(args);
        if (!routed) return Fail(routed.error());
        conn = *routed;
      }
      auto replies = ask ? conn->Pipeline(std::vector<const Args*>{&kAsking, &args}, extra)
                         : conn->Pipeline(std::vector<const Args*>{&args}, extra);
      if (!replies) {
        stale_ = true;
        return Fail(replies.error());
      }
      used_.insert(conn);
      ReplyPtr r = std::move(replies->back());
      ask.reset();
      int slot = 0;
      Address to;
      if (ErrorIs(*r, "MOVED") && ParseRedirect(ReplyText(*r), slot, to)) {
        slots_[static_cast<size_t>(slot)] = Node(to);
        stale_ = true;  // others moved too, most likely: relearn the map before the next call
        if (++redirects > kMaxRedirects) return r;
        continue;
      }
      if (ErrorIs(*r, "ASK") && ParseRedirect(ReplyText(*r), slot, to)) {
        if (IsScript(args)) {
          if (!Pause(deadline)) return r;
          continue;
        }
        ask = to;
        if (++redirects > kMaxRedirects) return r;
        continue;
      }
      if (ErrorIs(*r, "TRYAGAIN")) {
        if (!Pause(deadline)) return r;
        continue;
      }
      if (ErrorIs(*r, "CLUSTERDOWN")) stale_ = true;
      return r;
    }
  }

  // Constant after construction.
  const std::shared_ptr<const ClientSetup> setup_;

  std::map<std::string, std::unique_ptr<Connection>> nodes_;  // by address; never shrinks
  std::array<Connection*, kClusterSlots> slots_;              // owner of each slot; null unknown
  std::map<std::string, int> replicas_of_;                    // master -> replicas, last map
  std::set<Connection*> used_;  // connections used since the last WaitForReplicas
  bool stale_ = true;
  uint64_t refreshes_ = 0;
};

}  // namespace

int KeySlot(std::string_view key) {
  auto open = key.find('{');
  if (open != std::string_view::npos) {
    auto close = key.find('}', open + 1);
    if (close != std::string_view::npos && close > open + 1) {
      key = key.substr(open + 1, close - open - 1);
    }
  }
  return Crc16(key) & (kClusterSlots - 1);
}

std::optional<std::string_view> RoutingKey(const Args& args) {
  if (args.size() < 2) return std::nullopt;
  std::string_view name = args.name();
  static constexpr std::string_view kKeyless[] = {
      "PING",  "INFO",   "TIME",   "WAIT",    "SCRIPT",  "ROLE",    "CLUSTER",
      "ACL",   "AUTH",   "SELECT", "CONFIG",  "COMMAND", "DBSIZE",  "ASKING",
      "HELLO", "CLIENT", "MEMORY", "LATENCY", "SLOWLOG", "SENTINEL"};
  for (auto k : kKeyless) {
    if (NameIs(name, k)) return std::nullopt;
  }
  if (IsScript(args)) {
    if (args.size() < 4 || args.at(2) == "0") return std::nullopt;
    return args.at(3);
  }
  if (NameIs(name, "XREADGROUP") || NameIs(name, "XREAD")) {
    for (size_t i = 1; i + 1 < args.size(); ++i) {
      if (NameIs(args.at(i), "STREAMS")) return args.at(i + 1);
    }
    return std::nullopt;
  }
  if (NameIs(name, "XGROUP") || NameIs(name, "XINFO") || NameIs(name, "OBJECT")) {
    if (args.size() < 3) return std::nullopt;
    return args.at(2);
  }
  return args.at(1);
}

std::unique_ptr<Client> NewClusterClient(std::shared_ptr<const ClientSetup> setup) {
  return std::make_unique<ClusterClient>(std::move(setup));
}

}  // namespace ferry::redis_broker
