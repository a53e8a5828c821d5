#include "scheduler/scheduler.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>

#include "core/ids.h"
#include "core/time_util.h"

namespace ferry::scheduler {
namespace {

using std::chrono::milliseconds;
using SteadyClock = std::chrono::steady_clock;

int64_t SteadyNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(SteadyClock::now().time_since_epoch())
      .count();
}

bool Reconnectable(const Error& e) {
  return e.code == ErrorCode::kUnavailable || e.code == ErrorCode::kTimeout;
}

}  // namespace

std::string DefaultSchedulerId() {
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) != 0) host[0] = '\0';
  std::string h = host[0] != '\0' ? host : "host";
  return h + "-" + std::to_string(getpid()) + "-" + RandomHex(3);
}

Scheduler::Scheduler(StoreFactory& stores, BrokerFactory& brokers, SchedulerOptions options)
    : stores_(stores), brokers_(brokers), options_(std::move(options)) {
  if (options_.id.empty()) options_.id = DefaultSchedulerId();
  if (options_.renew_interval.count() <= 0) {
    options_.renew_interval = std::max(milliseconds(100), options_.lease / 5);
  }
}

Scheduler::~Scheduler() { Stop(); }

Status Scheduler::Start() {
  if (options_.tick < kMinTick) {
    return Fail(ErrorCode::kInvalidArgument,
                "the scheduler tick must be at least " + FormatDuration(kMinTick));
  }
  if (options_.use_lease && options_.lease < kMinLease) {
    return Fail(ErrorCode::kInvalidArgument,
                "the scheduler lease must be at least " + FormatDuration(kMinLease));
  }
  if (options_.use_lease && options_.renew_interval >= options_.lease) {
    return Fail(ErrorCode::kInvalidArgument,
                "the lease renew interval must be shorter than the lease");
  }
  auto store = stores_.Open();
  if (!store) return Fail(store.error());
  auto broker = brokers_.Open();
  if (!broker) return Fail(broker.error());
  store_ = std::move(*store);
  broker_ = std::move(*broker);
  if (options_.use_lease) {
    Result<std::unique_ptr<LeaderLease>> lease =
        options_.make_lease
            ? options_.make_lease(options_.id, options_.lease)
            : MakeRedisLeaderLease(brokers_.options(),
                                   LeaderLeaseOptions{"scheduler", options_.id, options_.lease});
    if (!lease) return Fail(lease.error());
    lease_ = std::move(*lease);
    lease_answered_ns_ = SteadyNs();  // the connections just opened
  } else {
    token_ = 1;
    leader_ = true;
    std::lock_guard lock(mu_);
    ++stats_.acquisitions;
  }
  spdlog::info("scheduler {} started: store {} ({}), tick {}, lease {}, misfire grace {}",
               options_.id, stores_.Describe(), stores_.Backend(), FormatDuration(options_.tick),
               options_.use_lease ? FormatDuration(options_.lease) : std::string("off"),
               FormatDuration(options_.dispatch.misfire_grace));
  if (options_.use_lease) {
    lease_thread_ = std::jthread([this](std::stop_token st) { LeaseLoop(st); });
  }
  work_thread_ = std::jthread([this](std::stop_token st) { WorkLoop(st); });
  return {};
}

void Scheduler::Stop() {
  if (work_thread_.joinable()) {
    work_thread_.request_stop();
    cv_.notify_all();
    work_thread_.join();
  }
  if (lease_thread_.joinable()) {
    lease_thread_.request_stop();
    cv_.notify_all();
    lease_thread_.join();  // releases the lease on its way out
  }
}

SchedulerStats Scheduler::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

milliseconds Scheduler::SinceRedisAnswered() const {
  if (!options_.use_lease) return milliseconds(0);
  return std::chrono::duration_cast<milliseconds>(
      std::chrono::nanoseconds(SteadyNs() - lease_answered_ns_.load()));
}

bool Scheduler::SleepFor(std::stop_token st, milliseconds d) {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, st, d, [] { return false; });
  return !st.stop_requested();
}

void Scheduler::LoseLeadership(const std::string& why) {
  if (!leader_.exchange(false)) return;
  spdlog::warn("scheduler.leader_lost id={} token={}: {}", options_.id, token_.load(), why);
  token_ = 0;
}

bool Scheduler::StillLeading(int64_t token) const {
  if (!leader_.load() || token_.load() != token) return false;
  if (!options_.use_lease) return true;
  return SteadyNs() < lease_deadline_ns_.load();
}

void Scheduler::LeaseLoop(std::stop_token st) {
  // The local deadline trusts 90% of the TTL from the moment the request was sent.
  const int64_t valid_ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(options_.lease).count() / 10 * 9;
  bool warned = false;
  while (!st.stop_requested()) {
    const int64_t sent = SteadyNs();
    if (!leader_.load()) {
      auto r = lease_->TryAcquire();
      if (r) lease_answered_ns_ = SteadyNs();
      if (!r) {
        if (!warned) spdlog::warn("scheduler {}: {}", options_.id, r.error().message);
        warned = true;
      } else {
        warned = false;
        if (r->held) {
          lease_deadline_ns_ = sent + valid_ns;
          token_ = r->token;
          leader_ = true;
          {
            std::lock_guard lock(mu_);
            ++stats_.acquisitions;
          }
          spdlog::info("scheduler.leader_acquired id={} token={}: leading (fencing token {})",
                       options_.id, r->token, r->token);
          cv_.notify_all();
        }
      }
    } else {
      auto r = lease_->Renew();
      if (r) lease_answered_ns_ = SteadyNs();
      if (!r) {
        LoseLeadership("renewing the lease failed: " + r.error().message);
      } else if (!r->held) {
        LoseLeadership(r->holder.empty() ? "the lease expired"
                                         : "the lease now belongs to " + r->holder);
      } else if (r->token != token_.load()) {
        LoseLeadership("the lease was re-acquired under token " + std::to_string(r->token));
      } else {
        lease_deadline_ns_ = sent + valid_ns;
      }
    }
    if (!SleepFor(st, options_.renew_interval)) break;
  }
  if (leader_.exchange(false)) {
    token_ = 0;
    if (auto s = lease_->Release(); !s) {
      spdlog::warn("scheduler {}: could not release the lease: {}", options_.id, s.error().message);
    } else {
      spdlog::info("scheduler {}: released the lease", options_.id);
    }
  }
}

void Scheduler::WorkLoop(std::stop_token st) {
  const Clock& clock = *options_.clock;
  auto now = SteadyClock::now();
  auto next_promote = now, next_recovery = now, next_retention = now;
  std::vector<SteadyClock::time_point> next_hook(options_.hooks.size(), now);

  auto failed = [&](std::string_view what, const Error& e) {
    spdlog::warn("scheduler {}: {} failed: {}", options_.id, what, e.message);
    {
      std::lock_guard lock(mu_);
      ++stats_.errors;
    }
    if (Reconnectable(e)) {
      store_.reset();
      broker_.reset();
    }
  };

  while (!st.stop_requested()) {
    const auto tick_start = SteadyClock::now();
    const int64_t token = token_.load();
    if (!StillLeading(token)) {
      if (!SleepFor(st, std::min(options_.tick, milliseconds(200)))) break;
      continue;
    }
    if (!store_) {
      auto s = stores_.Open();
      if (!s) {
        failed("opening the store", s.error());
        SleepFor(st, options_.tick);
        continue;
      }
      store_ = std::move(*s);
    }
    if (!broker_) {
      auto b = brokers_.Open();
      if (!b) {
        failed("connecting to Redis", b.error());
        SleepFor(st, options_.tick);
        continue;
      }
      broker_ = std::move(*b);
    }

    DispatchOptions d = options_.dispatch;
    d.fencing_token = token;
    d.rejected_versions = &rejected_versions_;
    d.keep_going = [&] { return !st.stop_requested() && StillLeading(token); };
    auto report = DispatchCron(*store_, *broker_, clock, d);
    if (!report) {
      failed("cron dispatch", report.error());
    } else {
      std::lock_guard lock(mu_);
      ++stats_.ticks;
      stats_.fired += report->Count(FireOutcome::Action::kFired);
      stats_.duplicates += report->Count(FireOutcome::Action::kDuplicate);
      stats_.errors += report->Count(FireOutcome::Action::kError);
    }

    now = SteadyClock::now();
    auto due = [&](SteadyClock::time_point& next, milliseconds interval) {
      if (interval.count() <= 0 || now < next || !store_ || !broker_ || !d.keep_going()) {
        return false;
      }
      next = now + interval;
      return true;
    };
    if (due(next_promote, options_.promote_interval)) {
      auto n = PromoteDelayedTasks(*broker_, clock);
      if (!n) {
        failed("promoting delayed tasks", n.error());
      } else if (*n > 0) {
        std::lock_guard lock(mu_);
        stats_.promoted += *n;
      }
    }
    if (due(next_recovery, options_.recovery_interval)) {
      runs::RecoveryOptions pass = options_.recovery;
      pass.running_after = recovery_after_;
      auto r = runs::RecoverRuns(*store_, *broker_, pass);
      if (!r) {
        failed("run recovery", r.error());
      } else {
        recovery_after_ = r->running_next;
        int64_t acted = r->Count(runs::RunRecovery::Action::kEnqueued) +
                        r->Count(runs::RunRecovery::Action::kFailed) +
                        r->Count(runs::RunRecovery::Action::kCancelled) +
                        r->Count(runs::RunRecovery::Action::kEnded);
        std::lock_guard lock(mu_);
        stats_.recovered += acted;
      }
    }
    if (due(next_retention, options_.retention_interval)) {
      auto r = CleanupRetention(*store_, clock, options_.retention);
      if (!r) failed("retention cleanup", r.error());
    }
    for (size_t i = 0; i < options_.hooks.size(); ++i) {
      const PeriodicHook& h = options_.hooks[i];
      if (!h.run || !due(next_hook[i], h.interval)) continue;
      if (auto s = h.run(*store_, *broker_, clock); !s) failed("hook " + h.name, s.error());
    }

    auto elapsed = std::chrono::duration_cast<milliseconds>(SteadyClock::now() - tick_start);
    if (!SleepFor(st, std::max(milliseconds(0), options_.tick - elapsed))) break;
  }
}

}  // namespace ferry::scheduler
