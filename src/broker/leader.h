// A leader lease with a fencing token: several processes (schedulers) compete for one named
// lease; at most one holds it at a time, and each acquisition hands out a strictly larger token,
// so anything the leader writes can be ordered against a newer leader's writes.
//
// The lease expires `ttl` after its last acquisition or renewal unless renewed, so a holder that
// dies (kill -9, partition) is replaced within `ttl` plus the followers' retry interval. A holder
// must treat a failed or negative Renew() as "no longer leader" at once: the lease may already
// belong to someone else.
//
// The Redis implementation (broker/redis/redis_leader.cc) keeps the holder id in
// `<prefix>:{<name>}:leader` (SET NX PX) and the token counter in `<prefix>:{<name>}:token`
// (INCR on every acquisition); renew and release are Lua scripts that check the holder first.
// docs/scheduler.md explains how the scheduler uses it.
//
// Thread-safety: a LeaderLease owns one connection and is NOT thread-safe (REQUIRES: external
// synchronization). Use one instance per thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "broker/broker.h"
#include "core/result.h"

namespace ferry {

struct LeaderLeaseOptions {
  // Names the lease (and its keys); every competitor must use the same name and prefix.
  std::string name = "scheduler";
  // This competitor's id; must be unique among competitors (host-pid-random).
  std::string holder_id;
  // The lease lapses this long after the last acquire/renew. Must be >= 100ms.
  std::chrono::milliseconds ttl = std::chrono::seconds(5);
};

struct LeaseState {
  bool held = false;   // this holder owns the lease now
  int64_t token = 0;   // when held: the fencing token of this holder's acquisition
  std::string holder;  // the current holder ("" when nobody holds it)
  std::chrono::milliseconds remaining{0};  // time left on the lease (when someone holds it)
};

class LeaderLease {
 public:
  virtual ~LeaderLease() = default;
  LeaderLease(const LeaderLease&) = delete;
  LeaderLease& operator=(const LeaderLease&) = delete;

  // Takes the lease when nobody holds it (a new, larger token), or extends it when this holder
  // already does (same token). held = false when another holder has it.
  virtual Result<LeaseState> TryAcquire() = 0;
  // Extends the lease only if this holder still owns it. held = false means it was lost (it
  // expired, and possibly someone else took it): stop acting as leader.
  virtual Result<LeaseState> Renew() = 0;
  // Gives the lease up if this holder owns it (so a follower takes over at once). No-op
  // otherwise.
  virtual Status Release() = 0;
  // Who holds it, without changing anything.
  virtual Result<LeaseState> Inspect() = 0;

  const LeaderLeaseOptions& options() const { return options_; }

 protected:
  explicit LeaderLease(LeaderLeaseOptions options) : options_(std::move(options)) {}
  const LeaderLeaseOptions options_;
};

// The Redis implementation, using the broker's URL, prefix and io_timeout. Does not connect; the
// first call does (and every call after an I/O error reconnects). kInvalidArgument for a bad URL,
// an empty holder id or a ttl under 100ms.
Result<std::unique_ptr<LeaderLease>> MakeRedisLeaderLease(const BrokerOptions& redis,
                                                          LeaderLeaseOptions options);

}  // namespace ferry
