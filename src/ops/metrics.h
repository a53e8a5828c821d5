// Prometheus metrics for every Ferry process, served through Ferry's own HTTP servers (the API
// server's /metrics, the worker's health port, the scheduler's metrics port) as the text
// exposition format. prometheus-cpp's core registry holds the process-local metrics; cluster-wide
// values are computed at scrape time. docs/operations.md lists every metric.
//
// Two kinds of metrics, kept apart so that sums over several processes stay right:
//  - process-local: what this process did (tasks a worker ran by queue/kind/outcome, task
//    duration and wait histograms, webhook requests and latency, build info). Summed across
//    processes.
//  - cluster-wide (EnableCluster): the broker's per-queue counters (Redis hash kept by the Lua
//    scripts, the source of truth for submitted/succeeded/failed/...), queue depths and
//    oldest-pending age, live workers, runs by status and stale pending runs. Every process
//    exporting them reports the same values: aggregate with max(), not sum().
//    A scrape costs O(queues) Redis round trips (one pipelined GetQueueStats per queue) plus
//    one ListWorkers, never O(tasks); the store counts are cached for `store_cache`, and the
//    ended runs (a read of every run) are counted at most every `ended_runs_every`.
//
// Labels are bounded: queue, kind, outcome, status, workflow name (capped at
// max_workflow_labels, then "_other"). Never a task or run id.
//
// Thread-safety: every method is thread-safe (scrapes arrive on server pool threads, task
// observations on worker slot threads).
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "broker/broker.h"
#include "store/store.h"
#include "worker/worker.h"

namespace ferry::ops {

struct ClusterMetricsOptions {
  // Store counts (runs by status, stale pending runs) are cached this long between scrapes.
  std::chrono::milliseconds store_cache = std::chrono::seconds(5);
  // ... but the runs in ended statuses (the whole history: a read of every run) are counted at
  // most this often (RunCounter).
  std::chrono::milliseconds ended_runs_every = std::chrono::seconds(15);
  // A pending run older than this counts in ferry_runs_pending_stale.
  std::chrono::milliseconds pending_run_age = std::chrono::minutes(5);
};

class Metrics {
 public:
  // `process`: "server", "worker", "scheduler" or "dev" (the ferry_build_info label).
  explicit Metrics(std::string process);
  ~Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // Adds the cluster-wide metrics. The factories are not owned and must outlive this object;
  // `stores` may be null (no run metrics). Call before the first scrape.
  void EnableCluster(BrokerFactory* brokers, StoreFactory* stores,
                     ClusterMetricsOptions options = {});

  // Worker: one finished execution (WorkerOptions::on_task_end).
  void ObserveTask(const TaskObservation& o);
  // API server: one webhook request. `workflow` empty when the path named no known workflow.
  void ObserveWebhook(std::string_view workflow, int http_status, double seconds);
  // A gauge evaluated at scrape time (scheduler leadership, ...). `name` must be a valid metric
  // name; register before the first scrape.
  void AddGauge(const std::string& name, const std::string& help, std::function<double()> value);
  // Same, exported with TYPE counter (the callback returns a monotonic total).
  void AddCounter(const std::string& name, const std::string& help, std::function<double()> value);

  // The /metrics body (text format 0.0.4).
  std::string Render();
  static constexpr const char* kContentType = "text/plain; version=0.0.4; charset=utf-8";

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Buckets of ferry_task_duration_seconds and ferry_task_wait_seconds (seconds).
const std::vector<double>& TaskSecondsBuckets();

}  // namespace ferry::ops
