// The idle scan: the scheduler leader's periodic remediation duty (runner.h wires it into the
// scheduler's hooks). One call:
//
//   1. skips when remediation is disabled;
//   2. expires claims whose deadline passed (`remediation.expired`): back to pending, or failed
//      at the attempt cap; a scheduler killed mid-attempt is taken over this way;
//   3. skips, logging why (`remediation.skipped reason=...`), when no agent is configured, when
//      max_concurrent claims are held, when more than max_active_runs workflow runs are pending
//      or running, when the run queue holds tasks, or when the host load per CPU is above
//      idle_load (or unknown, unless unknown_load is allow);
//   4. claims what is due within the caps (`remediation.claimed`).
//
// Thread-safety: Scan uses the given Store and Broker from the caller's thread only.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "broker/broker.h"
#include "core/result.h"
#include "remediation/settings.h"
#include "store/store.h"

namespace ferry::remediation {

struct ScanRequest {
  Settings settings;
  std::string owner;  // the claimant (the scheduler's id); required
  std::string run_queue = "default";
  // The 1-minute load average per CPU; nullopt when unknown. Empty: HostLoadPerCpu.
  std::function<std::optional<double>()> load;
};

struct ScanResult {
  // Why nothing was claimed: "" (something was claimed), disabled, no_agent, busy,
  // runs_active, queue_busy, load_high, load_unknown, daily_cap, nothing_due.
  std::string skipped;
  std::string detail;
  std::vector<Remediation> expired;
  std::vector<Remediation> claimed;
};

Result<ScanResult> Scan(Store& store, Broker& broker, const ScanRequest& request);

// /proc/loadavg's first field divided by the online CPUs; nullopt when unreadable.
std::optional<double> HostLoadPerCpu();

}  // namespace ferry::remediation
