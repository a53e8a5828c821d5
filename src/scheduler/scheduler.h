// The scheduler process (`ferry scheduler start`, and in-process in `ferry dev`): several may run
// against one Redis and one store; one leads.
//
// Two threads, each with its own connections:
//  - the lease thread competes for the Redis leader lease (broker/leader.h): a follower tries to
//    acquire it every `renew_interval`; the leader renews it every `renew_interval`. A renew that
//    fails or finds another holder ends leadership at once, as does a lease not renewed within
//    `lease` (the local deadline covers a stuck Redis call). Stop() releases the lease so a
//    follower takes over without waiting for the TTL.
//  - the work thread, while leader, runs a cron dispatch tick every `tick` (dispatch.h) and the
//    other duties at their intervals (duties.h): promotion of delayed tasks, run recovery
//    (runs::RecoverRuns), retention cleanup and the hooks. Between triggers it checks it still
//    leads under the same fencing token, so a deposed leader stops within one trigger.
//
// The lease only avoids wasted work: exactly-once comes from the store's unique (trigger, fire
// time) record, so two schedulers that both think they lead (a paused process waking up) still
// create each occurrence's run once. docs/scheduler.md.
//
// Thread-safety: Start/Stop from one thread. IsLeader/token/stats from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "broker/broker.h"
#include "broker/leader.h"
#include "core/clock.h"
#include "core/result.h"
#include "runs/recovery.h"
#include "scheduler/dispatch.h"
#include "scheduler/duties.h"
#include "store/store.h"

namespace ferry::scheduler {

// The shortest dispatch tick Start() accepts. Each tick reads every cron trigger from the store
// and plans its occurrences, which are whole seconds apart at the finest: a 100ms tick already
// fires each within a tenth of a second, and a faster one adds store load and no accuracy.
inline constexpr std::chrono::milliseconds kMinTick{100};
// The shortest leader lease Start() accepts: renewed every lease/5 over Redis, a shorter one
// would lapse at the first slow round trip.
inline constexpr std::chrono::milliseconds kMinLease{500};

struct SchedulerOptions {
  // This scheduler's id in the lease (and logs). Default: <hostname>-<pid>-<random>.
  std::string id;
  // Cron dispatch interval. At least kMinTick.
  std::chrono::milliseconds tick = std::chrono::seconds(1);
  // Leader lease TTL: a dead leader is replaced within about this long. At least kMinLease.
  std::chrono::milliseconds lease = std::chrono::seconds(5);
  // How often the leader renews and followers retry. 0 = lease / 5.
  std::chrono::milliseconds renew_interval{0};
  // Cron dispatch settings (misfire grace, run queue). keep_going and fencing_token are set by
  // the scheduler.
  DispatchOptions dispatch;
  // Duty intervals; 0 switches a duty off.
  std::chrono::milliseconds promote_interval = std::chrono::seconds(1);
  std::chrono::milliseconds recovery_interval = std::chrono::seconds(5);
  std::chrono::milliseconds retention_interval = std::chrono::minutes(1);
  runs::RecoveryOptions recovery;
  RetentionOptions retention;
  std::vector<PeriodicHook> hooks;
  // Time for cron, retention and promotion. Not owned.
  const Clock* clock = &SystemClock::Instance();
  // Makes the lease. Empty: the Redis lease on the broker factory's Redis URL and prefix.
  std::function<Result<std::unique_ptr<LeaderLease>>(const std::string& holder_id,
                                                     std::chrono::milliseconds ttl)>
      make_lease;
  // false: lead without a lease (a single in-process scheduler in tests).
  bool use_lease = true;
};

struct SchedulerStats {
  int64_t ticks = 0;         // dispatch ticks run as leader
  int64_t fired = 0;         // runs created
  int64_t duplicates = 0;    // occurrences someone else had recorded
  int64_t errors = 0;        // failed ticks, duties and occurrences
  int64_t acquisitions = 0;  // times this scheduler became leader
  int64_t promoted = 0;      // delayed tasks promoted
  int64_t recovered = 0;     // runs re-enqueued, failed or cancelled by recovery
};

class Scheduler {
 public:
  // The factories are not owned and must outlive the scheduler.
  Scheduler(StoreFactory& stores, BrokerFactory& brokers, SchedulerOptions options);
  ~Scheduler();  // Stop()
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Checks the options, opens the first connections (so a wrong URL fails here) and starts the
  // threads. kInvalidArgument, kUnavailable, kUnauthenticated.
  Status Start();
  // Stops both threads (within one store/Redis call) and releases the lease if held. Idempotent.
  void Stop();

  const std::string& id() const { return options_.id; }
  bool IsLeader() const { return leader_.load(); }
  // The fencing token of the current leadership; 0 when not leading.
  int64_t token() const { return token_.load(); }
  SchedulerStats stats() const;
  // How long ago Redis last answered a lease request (an acquire or a renew, held or not), from
  // Start(). A scheduler that hears nothing back can neither lead nor follow: its health probe
  // says so past one lease. Without a lease (use_lease false): zero.
  std::chrono::milliseconds SinceRedisAnswered() const;

 private:
  void LeaseLoop(std::stop_token st);
  void WorkLoop(std::stop_token st);
  void LoseLeadership(const std::string& why);
  bool StillLeading(int64_t token) const;
  // Sleeps until `d` passed or stop was requested; false on stop.
  bool SleepFor(std::stop_token st, std::chrono::milliseconds d);

  // Constant after construction.
  StoreFactory& stores_;
  BrokerFactory& brokers_;
  SchedulerOptions options_;

  std::unique_ptr<LeaderLease> lease_;  // lease thread only
  std::unique_ptr<Store> store_;        // work thread only
  std::unique_ptr<Broker> broker_;      // work thread only
  RejectedVersions rejected_versions_;  // work thread only
  std::string recovery_after_;          // work thread only: RecoveryOptions::running_after

  std::atomic<bool> leader_{false};
  std::atomic<int64_t> token_{0};
  // steady_clock deadline (ns since epoch) of the current lease, as last renewed.
  std::atomic<int64_t> lease_deadline_ns_{0};
  // steady_clock time (ns since epoch) of Redis' last answer to a lease request.
  std::atomic<int64_t> lease_answered_ns_{0};

  mutable std::mutex mu_;
  std::condition_variable_any cv_;
  SchedulerStats stats_;  // Guarded by mu_

  std::jthread lease_thread_;
  std::jthread work_thread_;
};

// "<hostname>-<pid>-<6 hex>".
std::string DefaultSchedulerId();

}  // namespace ferry::scheduler
