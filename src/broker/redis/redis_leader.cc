// The Redis LeaderLease (broker/leader.h). Scripts are sent with EVAL: they are tiny and run once
// a second, and EVAL needs no reload logic after a Redis restart or SCRIPT FLUSH.
#include <string_view>

#include "broker/leader.h"
#include "broker/redis/redis_client.h"

namespace ferry {
namespace redis_leader::scripts {
extern const std::string_view k_leader_acquire;
extern const std::string_view k_leader_renew;
extern const std::string_view k_leader_release;
}  // namespace redis_leader::scripts

namespace {

using redis_broker::Args;
using redis_broker::Client;
using redis_broker::ReplyInt;
using redis_broker::ReplyPtr;
using redis_broker::ReplyText;

class RedisLeaderLease final : public LeaderLease {
 public:
  RedisLeaderLease(std::shared_ptr<const redis_broker::ClientSetup> setup,
                   const BrokerOptions& redis, LeaderLeaseOptions options)
      : LeaderLease(std::move(options)),
        conn_(redis_broker::NewClient(std::move(setup))),
        lease_key_(redis.prefix + ":{" + options_.name + "}:leader"),
        token_key_(redis.prefix + ":{" + options_.name + "}:token"),
        ttl_ms_(std::to_string(options_.ttl.count())),
        wait_replicas_(redis.wait_replicas),
        wait_timeout_(redis.wait_timeout) {}

  Result<LeaseState> TryAcquire() override {
    auto s = Eval(redis_leader::scripts::k_leader_acquire, "acquiring");
    if (!s || !s->held || s->token == last_token_ || wait_replicas_ <= 0) return s;
    // A new token must survive a failover: a replica promoted without it would hand the same
    // token to the next leader.
    if (auto st = conn_->WaitForReplicas(wait_replicas_, wait_timeout_); !st) {
      return Fail(Describe(st.error(), "acquiring"));
    }
    last_token_ = s->token;
    return s;
  }
  Result<LeaseState> Renew() override {
    return Eval(redis_leader::scripts::k_leader_renew, "renewing");
  }

  Status Release() override {
    auto r = conn_->Command(
        Args{"EVAL", redis_leader::scripts::k_leader_release, "1", lease_key_, options_.holder_id});
    if (!r) return Fail(Describe(r.error(), "releasing"));
    return {};
  }

  Result<LeaseState> Inspect() override {
    auto r = conn_->Pipeline({Args{"GET", lease_key_}, Args{"PTTL", lease_key_}});
    if (!r) return Fail(Describe(r.error(), "inspecting"));
    for (const auto& reply : *r) {
      if (redis_broker::IsError(*reply)) {
        return Fail(Describe(redis_broker::ReplyError(*reply), "inspecting"));
      }
    }
    LeaseState s;
    s.holder = std::string(ReplyText(*(*r)[0]));
    int64_t pttl = ReplyInt(*(*r)[1]);
    s.remaining = std::chrono::milliseconds(pttl > 0 ? pttl : 0);
    s.held = !s.holder.empty() && s.holder == options_.holder_id;
    return s;
  }

 private:
  Result<LeaseState> Eval(std::string_view script, std::string_view what) {
    auto r = conn_->Command(
        Args{"EVAL", script, "2", lease_key_, token_key_, options_.holder_id, ttl_ms_});
    if (!r) return Fail(Describe(r.error(), what));
    const redisReply& reply = **r;
    if (reply.type != REDIS_REPLY_ARRAY || reply.elements != 4) {
      return Fail(ErrorCode::kInternal,
                  "unexpected reply " + std::string(what) + " the " + options_.name + " lease");
    }
    LeaseState s;
    s.held = ReplyInt(*reply.element[0]) == 1;
    s.token = ReplyInt(*reply.element[1]);
    s.holder = std::string(ReplyText(*reply.element[2]));
    int64_t pttl = ReplyInt(*reply.element[3]);
    s.remaining = std::chrono::milliseconds(pttl > 0 ? pttl : 0);
    return s;
  }

  Error Describe(Error e, std::string_view what) const {
    e.message = std::string(what) + " the " + options_.name + " lease: " + e.message;
    return e;
  }

  // Constant after construction.
  const std::unique_ptr<Client> conn_;
  const std::string lease_key_;
  const std::string token_key_;
  const std::string ttl_ms_;
  const int wait_replicas_;
  const std::chrono::milliseconds wait_timeout_;

  int64_t last_token_ = 0;  // the token whose replication was last confirmed
};

}  // namespace

Result<std::unique_ptr<LeaderLease>> MakeRedisLeaderLease(const BrokerOptions& redis,
                                                          LeaderLeaseOptions options) {
  if (options.holder_id.empty()) {
    return Fail(ErrorCode::kInvalidArgument, "a leader lease needs a holder id");
  }
  if (options.name.empty()) return Fail(ErrorCode::kInvalidArgument, "a lease needs a name");
  if (options.ttl < std::chrono::milliseconds(100)) {
    return Fail(ErrorCode::kInvalidArgument, "a lease ttl must be at least 100ms");
  }
  // The lease's keys share the hash tag {<name>}, so under Redis Cluster both live in one slot
  // and the scripts may touch them together.
  auto setup = redis_broker::MakeClientSetup(redis.redis_url, redis.redis, redis.io_timeout,
                                             /*load_scripts=*/false);
  if (!setup) return Fail(setup.error());
  return std::unique_ptr<LeaderLease>(
      std::make_unique<RedisLeaderLease>(std::move(*setup), redis, std::move(options)));
}

}  // namespace ferry
