// Ferry's own alert rules (seed 004's, plus stale pending runs), evaluated from the same data the
// metrics come from: queue stats and workers from Redis, run counts from the store. The same
// rules ship as Prometheus alerting rules (deploy/prometheus/ferry-alerts.yml); docs/operations.md
// describes both and why they agree.
//
// Rules (thresholds configurable, see AlertThresholds):
//   QueueDepthHigh      warning   a queue's undelivered tasks > 100 (and <= the critical level)
//   QueueDepthCritical  critical  a queue's undelivered tasks > 500
//   TaskFailureRateHigh warning   failed / (succeeded + failed) attempts over the last 5m > 10 %,
//                                 judged only with >= 20 finished attempts in that window
//   NoLiveWorkers       critical  no worker heartbeat is younger than its TTL
//   TaskWaitTimeHigh    warning   a queue's oldest undelivered task waits > 60s
//   PendingRunsStale    warning   workflow runs pending for longer than 5m exist
//
// Shared state (Redis hash "<prefix>:ops:alerts", Broker::GetOpsState): the time each alert was
// first seen firing ("since:<key>", HSETNX, so every evaluating process agrees), counter samples
// for the failure-rate window ("samples:<queue>"), and what the webhook notifier last delivered
// ("notified:<key>"). An alert's `since` is therefore the first evaluation that saw it, by any
// process: the scheduler leader evaluates every alert-interval (15s), so it is accurate to that.
//
// Thread-safety: EvaluateRules is pure. AlertEvaluator and AlertNotifier are immutable after
// construction; their methods use only the connections passed in (one thread per connection).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "broker/broker.h"
#include "core/json.h"
#include "core/result.h"
#include "ops/config.h"
#include "store/store.h"

namespace ferry::ops {

struct AlertThresholds {
  int64_t queue_depth_warning = 100;
  int64_t queue_depth_critical = 500;
  double failure_rate = 0.10;
  std::chrono::milliseconds failure_window = std::chrono::minutes(5);
  int64_t failure_min_volume = 20;
  std::chrono::milliseconds wait_time = std::chrono::seconds(60);
  std::chrono::milliseconds pending_run_age = std::chrono::minutes(5);
};

struct Alert {
  std::string name;      // QueueDepthHigh, ...
  std::string severity;  // warning, critical
  std::string queue;     // the queue it concerns; "" for cluster-wide rules
  double value = 0;
  double threshold = 0;
  std::string summary;   // one line for people
  int64_t since_ms = 0;  // first seen firing (shared state); 0 when unknown

  // "QueueDepthHigh:default", "NoLiveWorkers".
  std::string Key() const { return queue.empty() ? name : name + ":" + queue; }
};

// What the rules look at.
struct ClusterSnapshot {
  int64_t now_ms = 0;
  std::vector<QueueStats> queues;
  int64_t workers_alive = 0;
  std::optional<int64_t> stale_pending_runs;  // nullopt: no store, rule not evaluated
};

struct CounterSample {
  int64_t t_ms = 0;
  int64_t succeeded = 0;
  int64_t failed = 0;
};
using SampleHistory = std::map<std::string, std::vector<CounterSample>>;  // queue -> oldest first

// Which rules hold for `snapshot`. `history` holds earlier samples per queue for the failure rate.
std::vector<Alert> EvaluateRules(const ClusterSnapshot& snapshot, const AlertThresholds& t,
                                 const SampleHistory& history);

// "t,s,f;t,s,f" <-> samples (the shared-state encoding).
std::string EncodeSamples(const std::vector<CounterSample>& samples);
std::vector<CounterSample> DecodeSamples(const std::string& text);

struct AlertReport {
  int64_t evaluated_ms = 0;
  std::vector<Alert> firing;
  std::vector<Alert> resolved;  // stopped firing at this evaluation
  bool store_checked = false;
  AlertThresholds thresholds;
};
Json AlertReportJson(const AlertReport& report);

class AlertEvaluator {
 public:
  // `record`: whether evaluations write the shared state (since-times, resolutions, samples).
  // All do but `ferry alerts` given thresholds as flags: a what-if look cannot resolve, or
  // restart, what the deployment's evaluators see firing.
  explicit AlertEvaluator(AlertThresholds thresholds, bool record = true)
      : thresholds_(thresholds), record_(record) {}
  const AlertThresholds& thresholds() const { return thresholds_; }

  // Takes a snapshot through `broker` (and `store`, may be null), updates the shared state (when
  // recording) and returns what fires with since-times (the shared state's; now for an alert no
  // recording evaluation has seen yet). O(queues) Redis calls plus two store counts.
  Result<AlertReport> Evaluate(Broker& broker, Store* store) const;
  // Evaluate, as AlertReportJson: what the service's Alerts() answers.
  Result<Json> EvaluateJson(Broker& broker, Store* store) const;
  // The snapshot alone (also used by doctor).
  Result<ClusterSnapshot> Snapshot(Broker& broker, Store* store) const;

 private:
  const AlertThresholds thresholds_;
  const bool record_;
};

// Delivers alert changes to a webhook: POST JSON {"status":"firing"|"resolved","alert":{...}}
// with X-Ferry-Timestamp (unix seconds) and, when a secret is set,
// X-Ferry-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>.
// Deduplicated through the shared state: an alert is announced once per firing episode and its
// resolution once. Run it in one place (the scheduler leader) so announcements are not repeated.
struct NotifierOptions {
  std::string url;
  std::string secret;
  std::chrono::milliseconds timeout = std::chrono::seconds(5);
};

// Every alert-* setting. Each command that takes the --alert-* flags (alerts, server, scheduler)
// or reads FERRY_ALERT_* (dev) resolves all of them here, so a value is judged by one rule
// wherever it is given: a server refuses --alert-interval 0 as the scheduler does, though only
// the scheduler evaluates on an interval.
struct AlertSettings {
  AlertThresholds thresholds;
  // How often the scheduler's leader evaluates the rules and delivers changes. > 0.
  std::chrono::milliseconds interval = std::chrono::seconds(15);
  NotifierOptions webhook;  // url "" = no webhook
};

// From flags (key -> text, e.g. {"alert-wait-time", "30s"}) > env (FERRY_ALERT_*, which
// LayeredEnv backs with the config file) > defaults. Errors (kInvalidArgument) name the source.
Result<AlertSettings> ResolveAlertSettings(const std::map<std::string, std::string>& flags,
                                           const EnvLookup& env);

class AlertNotifier {
 public:
  explicit AlertNotifier(NotifierOptions options) : options_(std::move(options)) {}
  // Announces new firings and resolutions in `report`; returns how many POSTs succeeded. A failed
  // POST is retried at the next call (its state is not written).
  Result<int> Deliver(Broker& broker, const AlertReport& report) const;

 private:
  const NotifierOptions options_;
};

// Hex HMAC-SHA256 of `timestamp + "." + body` (the X-Ferry-Signature value without "sha256=").
std::string AlertSignature(const std::string& secret, const std::string& timestamp,
                           const std::string& body);

}  // namespace ferry::ops
