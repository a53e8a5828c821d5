#include "remediation/runner.h"

#include <spdlog/spdlog.h>

#include "core/sleep.h"

namespace ferry::remediation {

using std::chrono::milliseconds;

struct Runner::Job {
  Remediation claimed;
  std::atomic<bool> done{false};
  std::jthread thread;
};

Runner::Runner(StoreFactory& stores, BrokerFactory& brokers, RunnerOptions options)
    : stores_(stores), brokers_(brokers), options_(std::move(options)) {}

Runner::~Runner() { Stop(); }

scheduler::PeriodicHook Runner::Duty() {
  return scheduler::PeriodicHook{"remediation", options_.attempt.settings.scan_interval,
                                 [this](Store& store, Broker& broker, const Clock&) -> Status {
                                   auto r = ScanAndStart(store, broker);
                                   if (!r) return Fail(r.error());
                                   return {};
                                 }};
}

Result<ScanResult> Runner::ScanAndStart(Store& store, Broker& broker) {
  Reap();
  {
    std::lock_guard lock(mu_);
    if (stopped_) return ScanResult{"stopped", "the scheduler is stopping", {}, {}};
  }
  ScanRequest req;
  req.settings = options_.attempt.settings;
  req.owner = options_.attempt.owner;
  req.run_queue = options_.attempt.run_queue;
  req.load = options_.load;
  auto scanned = Scan(store, broker, req);
  if (!scanned) return scanned;
  std::lock_guard lock(mu_);
  for (const auto& m : scanned->claimed) {
    auto job = std::make_unique<Job>();
    job->claimed = m;
    Job* raw = job.get();
    ++active_;
    job->thread = std::jthread([this, raw](std::stop_token st) { Work(*raw, st); });
    jobs_.push_back(std::move(job));
  }
  return scanned;
}

void Runner::Work(Job& job, std::stop_token stop) {
  const Remediation& m = job.claimed;
  const AttemptOptions& o = options_.attempt;
  std::stop_source agent_stop;
  std::stop_callback forward(stop, [&agent_stop] { agent_stop.request_stop(); });
  std::atomic<bool> lost{false};
  // Renews the claim on its own connection while the attempt runs.
  std::jthread renewer([&](std::stop_token st) {
    std::unique_ptr<Store> store;
    const milliseconds every = std::max(milliseconds(200), o.settings.claim_lease / 3);
    while (SleepFor(st, every)) {
      if (!store) {
        auto s = stores_.Open();
        if (!s) {
          spdlog::warn("remediation {}: cannot renew the claim: {}", m.id, s.error().message);
          continue;
        }
        store = std::move(*s);
      }
      auto r = store->RenewRemediationClaim(m.id, o.owner, m.attempts, o.settings.claim_lease);
      if (r) continue;
      if (r.error().code == ErrorCode::kConflict || r.error().code == ErrorCode::kNotFound) {
        spdlog::warn("remediation.lost id={} attempt={}: {}; stopping the agent", m.id, m.attempts,
                     r.error().message);
        lost = true;
        agent_stop.request_stop();
        return;
      }
      spdlog::warn("remediation {}: renewing the claim failed: {}", m.id, r.error().message);
      store.reset();
    }
  });

  auto store = stores_.Open();
  auto broker = store ? brokers_.Open() : Result<std::unique_ptr<Broker>>(Fail(store.error()));
  if (!store || !broker) {
    const Error& e = !store ? store.error() : broker.error();
    spdlog::warn(
        "remediation {}: cannot start the attempt ({}); the claim expires and is "
        "taken over",
        m.id, e.message);
  } else {
    auto r = RunAttempt(**store, **broker, m, o, agent_stop.get_token());
    renewer.request_stop();
    renewer.join();
    if (!r) {
      spdlog::warn(
          "remediation {}: attempt {} ended with an error ({}); the claim expires and "
          "is taken over",
          m.id, m.attempts, r.error().message);
    } else if (r->stopped && !lost) {
      FinishRemediationRequest release;
      release.id = m.id;
      release.owner = o.owner;
      release.attempt = m.attempts;
      release.status = RemediationStatus::kPending;
      if (auto rel = (*store)->FinishRemediation(release); !rel) {
        spdlog::warn("remediation {}: releasing the claim failed: {}", m.id, rel.error().message);
      } else {
        spdlog::info("remediation {}: stopped; claim released", m.id);
      }
    }
  }
  --active_;
  job.done = true;
}

void Runner::Reap() {
  std::list<std::unique_ptr<Job>> finished;
  {
    std::lock_guard lock(mu_);
    for (auto it = jobs_.begin(); it != jobs_.end();) {
      if ((*it)->done) {
        finished.push_back(std::move(*it));
        it = jobs_.erase(it);
      } else {
        ++it;
      }
    }
  }
  // jthread destructors join (the threads have finished their work).
}

void Runner::Stop() {
  std::list<std::unique_ptr<Job>> all;
  {
    std::lock_guard lock(mu_);
    stopped_ = true;
    all.swap(jobs_);
  }
  for (auto& j : all) j->thread.request_stop();
  all.clear();  // joins
}

}  // namespace ferry::remediation
