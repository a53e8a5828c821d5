// The scheduler side of remediation: the scan as a periodic duty of the scheduler's leader
// (scheduler/duties.h PeriodicHook), and the attempts it claims, each on a thread of its own
// with its own Store and Broker connections so a slow agent never holds up cron dispatch.
//
// While an attempt runs, a second thread renews its claim every third of the claim lease; a
// renewal that finds the claim gone (dismissed, or expired and taken over) stops the agent. A
// scheduler that stops (SIGTERM) stops its agents and releases their claims at once, without
// counting the attempt; one that is killed leaves its claims to expire, and the next scan of
// whichever scheduler leads takes them over.
//
// Thread-safety: Duty's hook runs on the scheduler's work thread; Stop() from any one thread;
// active() from any thread.
#pragma once

#include <atomic>
#include <list>
#include <memory>
#include <mutex>
#include <thread>

#include "broker/broker.h"
#include "remediation/attempt.h"
#include "remediation/scan.h"
#include "scheduler/duties.h"
#include "store/store.h"

namespace ferry::remediation {

struct RunnerOptions {
  // settings, owner (the scheduler's id), run_queue, hide_paths, secrets.
  AttemptOptions attempt;
  // The scan's load source; empty: HostLoadPerCpu.
  std::function<std::optional<double>()> load;
};

class Runner {
 public:
  // The factories are not owned and must outlive the runner.
  Runner(StoreFactory& stores, BrokerFactory& brokers, RunnerOptions options);
  ~Runner();  // Stop()
  Runner(const Runner&) = delete;
  Runner& operator=(const Runner&) = delete;

  // The periodic duty: Scan on the leader's connections, then an attempt thread per claim.
  scheduler::PeriodicHook Duty();
  // One scan and the attempts it claimed (what Duty runs).
  Result<ScanResult> ScanAndStart(Store& store, Broker& broker);
  // Stops every attempt (their agents are killed, their claims released) and joins them.
  void Stop();
  // Attempts running in this process.
  int active() const { return active_.load(); }

 private:
  struct Job;
  void Work(Job& job, std::stop_token stop);
  void Reap();

  StoreFactory& stores_;
  BrokerFactory& brokers_;
  const RunnerOptions options_;
  std::atomic<int> active_{0};
  std::mutex mu_;
  std::list<std::unique_ptr<Job>> jobs_;  // Guarded by mu_
  bool stopped_ = false;                  // Guarded by mu_
};

}  // namespace ferry::remediation
