#include "remediation/scan.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <fstream>

#include "core/time_util.h"

namespace ferry::remediation {
namespace {

std::string Fixed2(double d) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", d);
  return buf;
}

ScanResult Skip(ScanResult r, std::string reason, std::string detail) {
  r.skipped = std::move(reason);
  r.detail = std::move(detail);
  // A disabled remediation or an empty scan is the normal case; the rest says why work waits.
  if (r.skipped == "disabled" || r.skipped == "nothing_due") {
    spdlog::debug("remediation.skipped reason={} {}", r.skipped, r.detail);
  } else {
    spdlog::info("remediation.skipped reason={} {}", r.skipped, r.detail);
  }
  return r;
}

}  // namespace

std::optional<double> HostLoadPerCpu() {
  std::ifstream in("/proc/loadavg");
  double load = 0;
  if (!(in >> load)) return std::nullopt;
  const long cpus = ::sysconf(_SC_NPROCESSORS_ONLN);
  if (cpus <= 0) return std::nullopt;
  return load / static_cast<double>(cpus);
}

Result<ScanResult> Scan(Store& store, Broker& broker, const ScanRequest& req) {
  if (req.owner.empty()) return Fail(ErrorCode::kInvalidArgument, "a scan needs an owner");
  const Settings& s = req.settings;
  ScanResult out;
  if (!s.enabled) return Skip(std::move(out), "disabled", "(remediation-enabled is off)");

  auto expired = store.ExpireRemediationClaims(s.attempt_cap);
  if (!expired) return Fail(expired.error());
  for (const auto& m : *expired) {
    spdlog::warn("remediation.expired id={} workflow={} status={} attempts={} reason=\"{}\"", m.id,
                 m.workflow_name, RemediationStatusName(m.status), m.attempts - m.attempt_base,
                 m.status == RemediationStatus::kFailed ? m.reason : "claim lease ran out");
  }
  out.expired = std::move(*expired);

  if (s.agent_argv.empty()) {
    return Skip(std::move(out), "no_agent", "(remediation-agent is not set)");
  }
  auto active = store.CountActiveRemediationClaims();
  if (!active) return Fail(active.error());
  if (*active >= s.max_concurrent) {
    return Skip(std::move(out), "busy",
                std::to_string(*active) + " attempt(s) running, remediation-max-concurrent " +
                    std::to_string(s.max_concurrent));
  }
  auto runs = store.CountActiveRuns();
  if (!runs) return Fail(runs.error());
  const int64_t active_runs = (*runs)[RunStatus::kPending] + (*runs)[RunStatus::kRunning];
  if (active_runs > s.max_active_runs) {
    return Skip(std::move(out), "runs_active",
                std::to_string((*runs)[RunStatus::kRunning]) + " running and " +
                    std::to_string((*runs)[RunStatus::kPending]) +
                    " pending workflow run(s), remediation-max-active-runs " +
                    std::to_string(s.max_active_runs));
  }
  auto q = broker.GetQueueStats(req.run_queue);
  if (!q) return Fail(q.error());
  if (q->pending + q->running > 0) {
    return Skip(std::move(out), "queue_busy",
                "queue " + req.run_queue + " has " + std::to_string(q->pending) + " waiting and " +
                    std::to_string(q->running) + " running task(s)");
  }
  const std::optional<double> load = req.load ? req.load() : HostLoadPerCpu();
  if (!load) {
    if (s.unknown_load == UnknownLoad::kSkip) {
      return Skip(std::move(out), "load_unknown",
                  "the host load cannot be read (remediation-unknown-load skip)");
    }
  } else if (*load > s.idle_load) {
    return Skip(
        std::move(out), "load_high",
        "load per CPU " + Fixed2(*load) + " > remediation-idle-load " + Fixed2(s.idle_load));
  }

  ClaimRemediationsRequest claim;
  claim.owner = req.owner;
  claim.lease = s.claim_lease;
  claim.max_active = s.max_concurrent;
  claim.attempt_cap = s.attempt_cap;
  claim.daily_cap = s.daily_cap;
  auto claimed = store.ClaimRemediations(claim);
  if (!claimed) return Fail(claimed.error());
  for (const auto& m : claimed->claimed) {
    spdlog::info(
        "remediation.claimed id={} workflow={} version={} node={} attempt={} owner={} "
        "deadline={}",
        m.id, m.workflow_name, m.version, m.failed_node.empty() ? "-" : m.failed_node,
        m.attempts - m.attempt_base, m.claim_owner, FormatIsoMs(m.claim_deadline_ms));
  }
  out.claimed = std::move(claimed->claimed);
  if (out.claimed.empty()) {
    if (claimed->capped > 0) {
      return Skip(std::move(out), "daily_cap",
                  std::to_string(claimed->capped) +
                      " due candidate(s) wait for their workflow's remediation-daily-cap");
    }
    if (claimed->active_before >= s.max_concurrent) {
      return Skip(std::move(out), "busy", "another scheduler claimed meanwhile");
    }
    return Skip(std::move(out), "nothing_due", "(no candidate is due)");
  }
  return out;
}

}  // namespace ferry::remediation
