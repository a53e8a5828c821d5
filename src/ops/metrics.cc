#include "ops/metrics.h"

#include <prometheus/collectable.h>
#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>
#include <spdlog/spdlog.h>

#include <cctype>
#include <limits>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <vector>

#include "core/time_util.h"
#include "ops/alerts.h"
#include "store/run_counter.h"

namespace ferry::ops {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

constexpr size_t kMaxWorkflowLabels = 200;
constexpr size_t kMaxKindLabels = 500;

ClientMetric Value(MetricType type, double v, std::vector<ClientMetric::Label> labels = {}) {
  ClientMetric m;
  m.label = std::move(labels);
  if (type == MetricType::Counter) {
    m.counter.value = v;
  } else {
    m.gauge.value = v;
  }
  return m;
}

MetricFamily Family(std::string name, std::string help, MetricType type) {
  MetricFamily f;
  f.name = std::move(name);
  f.help = std::move(help);
  f.type = type;
  return f;
}

// Broker counter name -> metric name part; only [a-z0-9_] survive.
std::string CounterMetricName(const std::string& counter) {
  std::string out = "ferry_tasks_";
  for (char c : counter) {
    auto u = static_cast<unsigned char>(c);
    out.push_back(std::isalnum(u) ? static_cast<char>(std::tolower(u)) : '_');
  }
  return out + "_total";
}

std::string CounterHelp(const std::string& counter) {
  static const std::map<std::string, std::string> kHelp = {
      {"submitted", "Tasks submitted to the queue (cluster-wide, from the broker)."},
      {"started", "Executions started (claims, including retries and reclaims)."},
      {"succeeded", "Tasks completed successfully."},
      {"failed", "Failed attempts (each retried or dead-lettered attempt counts once)."},
      {"retried", "Failed attempts that were scheduled for another attempt."},
      {"cancelled", "Tasks cancelled."},
      {"dead_lettered", "Tasks moved to the dead-letter set (out of attempts, not retryable)."},
      {"reclaimed", "Tasks taken over from a worker whose lease expired."},
      {"stale", "Completions rejected by fencing (an older epoch)."},
      {"handed_back", "Tasks handed back to the queue by a draining worker."},
      {"snoozed", "Executions that gave their slot back to wait for a time (a workflow's delay)."},
      {"poison", "Tasks dead-lettered for exceeding the reclaim limit."},
      {"requeued", "Dead-lettered or cancelled tasks re-run by retry."},
  };
  auto it = kHelp.find(counter);
  if (it != kHelp.end()) return it->second;
  return "Broker counter '" + counter + "' (cluster-wide).";
}

// Buckets of ferry_remediation_agent_duration_seconds (an agent runs for seconds to minutes).
const std::vector<double>& RemediationAgentBuckets() {
  static const std::vector<double> kBuckets = {1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600};
  return kBuckets;
}

// Cluster-wide values, computed at scrape time with one broker connection (and one store
// connection) owned by the collector and used under its mutex.
class ClusterCollector final : public prometheus::Collectable {
 public:
  ClusterCollector(BrokerFactory* brokers, StoreFactory* stores, ClusterMetricsOptions options)
      : brokers_(brokers), stores_(stores), options_(options) {}

  std::vector<MetricFamily> Collect() const override {
    std::lock_guard lock(mu_);
    std::vector<MetricFamily> out;
    CollectBroker(out);
    if (stores_ != nullptr) CollectStore(out);
    return out;
  }

 private:
  void CollectBroker(std::vector<MetricFamily>& out) const {
    auto up = Family("ferry_redis_up", "1 when the last scrape reached Redis.", MetricType::Gauge);
    if (!broker_) {
      auto b = brokers_->Open();
      if (b) {
        broker_ = std::move(*b);
      } else {
        spdlog::warn("metrics: cannot reach Redis: {}", b.error().message);
      }
    }
    bool ok = false;
    if (broker_) ok = CollectQueues(out);
    if (!ok) broker_.reset();
    up.metric.push_back(Value(MetricType::Gauge, ok ? 1 : 0));
    out.push_back(std::move(up));
  }

  bool CollectQueues(std::vector<MetricFamily>& out) const {
    auto queues = broker_->ListQueues();
    if (!queues) return false;
    std::vector<QueueStats> stats;
    for (const auto& q : *queues) {
      auto s = broker_->GetQueueStats(q);
      if (!s) return false;
      stats.push_back(std::move(*s));
    }
    auto workers = broker_->ListWorkers();
    if (!workers) return false;

    const int64_t now = WallNowMs();
    auto depth = Family("ferry_queue_depth", "Tasks waiting in the queue, not yet claimed.",
                        MetricType::Gauge);
    auto running =
        Family("ferry_queue_running", "Tasks claimed and not yet acknowledged.", MetricType::Gauge);
    auto scheduled = Family("ferry_queue_scheduled",
                            "Tasks waiting for their ETA or retry backoff.", MetricType::Gauge);
    auto dead = Family("ferry_queue_dead", "Tasks in the dead-letter set.", MetricType::Gauge);
    auto age = Family("ferry_queue_oldest_pending_age_seconds",
                      "Age of the oldest unclaimed task (0 when none waits).", MetricType::Gauge);
    std::map<std::string, MetricFamily> counters;
    for (const auto& s : stats) {
      std::vector<ClientMetric::Label> q = {{"queue", s.queue}};
      depth.metric.push_back(Value(MetricType::Gauge, static_cast<double>(s.pending), q));
      running.metric.push_back(Value(MetricType::Gauge, static_cast<double>(s.running), q));
      scheduled.metric.push_back(Value(MetricType::Gauge, static_cast<double>(s.scheduled), q));
      dead.metric.push_back(Value(MetricType::Gauge, static_cast<double>(s.dead), q));
      double a = s.oldest_pending_ms > 0
                     ? static_cast<double>(std::max<int64_t>(0, now - s.oldest_pending_ms)) / 1000.0
                     : 0.0;
      age.metric.push_back(Value(MetricType::Gauge, a, q));
      // The well-known counters appear for every queue (0 until first used), so rate() and
      // alert expressions never see a series appear mid-way.
      std::map<std::string, int64_t> values = {
          {"submitted", 0},   {"started", 0},   {"succeeded", 0},     {"failed", 0},
          {"retried", 0},     {"cancelled", 0}, {"dead_lettered", 0}, {"reclaimed", 0},
          {"handed_back", 0}, {"snoozed", 0}};
      for (const auto& [k, v] : s.counters) values[k] = v;
      for (const auto& [k, v] : values) {
        std::string name = CounterMetricName(k);
        auto it = counters.find(name);
        if (it == counters.end()) {
          it = counters.emplace(name, Family(name, CounterHelp(k), MetricType::Counter)).first;
        }
        it->second.metric.push_back(Value(MetricType::Counter, static_cast<double>(v), q));
      }
    }
    out.push_back(std::move(depth));
    out.push_back(std::move(running));
    out.push_back(std::move(scheduled));
    out.push_back(std::move(dead));
    out.push_back(std::move(age));
    for (auto& [name, f] : counters) out.push_back(std::move(f));

    int64_t alive = 0;
    std::map<std::string, int64_t> by_status = {{"running", 0}, {"draining", 0}};
    int64_t slots = 0;
    int64_t busy = 0;
    for (const auto& w : *workers) {
      if (!w.alive) continue;
      ++alive;
      ++by_status[w.status];
      slots += w.concurrency;
      busy += static_cast<int64_t>(w.current_tasks.size());
    }
    auto wa = Family("ferry_workers_alive",
                     "Workers whose heartbeat is younger than its TTL and that have not stopped.",
                     MetricType::Gauge);
    wa.metric.push_back(Value(MetricType::Gauge, static_cast<double>(alive)));
    out.push_back(std::move(wa));
    auto ws = Family("ferry_workers", "Live workers by status.", MetricType::Gauge);
    for (const auto& [st, n] : by_status) {
      ws.metric.push_back(Value(MetricType::Gauge, static_cast<double>(n), {{"status", st}}));
    }
    out.push_back(std::move(ws));
    auto sl = Family("ferry_worker_slots", "Task slots of live workers (sum of concurrency).",
                     MetricType::Gauge);
    sl.metric.push_back(Value(MetricType::Gauge, static_cast<double>(slots)));
    out.push_back(std::move(sl));
    auto bs = Family("ferry_worker_slots_busy", "Slots of live workers running a task.",
                     MetricType::Gauge);
    bs.metric.push_back(Value(MetricType::Gauge, static_cast<double>(busy)));
    out.push_back(std::move(bs));
    return true;
  }

  void CollectStore(std::vector<MetricFamily>& out) const {
    const auto now = std::chrono::steady_clock::now();
    if (!cached_ || now - cached_at_ >= options_.store_cache) Refresh();
    auto up = Family("ferry_store_up", "1 when the last store query succeeded.", MetricType::Gauge);
    up.metric.push_back(Value(MetricType::Gauge, cached_ ? 1 : 0));
    out.push_back(std::move(up));
    if (!cached_) return;
    auto runs = Family("ferry_runs", "Workflow runs by status (store).", MetricType::Gauge);
    for (const auto& [st, n] : runs_by_status_) {
      runs.metric.push_back(Value(MetricType::Gauge, static_cast<double>(n), {{"status", st}}));
    }
    out.push_back(std::move(runs));
    auto stale = Family("ferry_runs_pending_stale",
                        "Runs still pending longer than the pending-run age (default 5m).",
                        MetricType::Gauge);
    stale.metric.push_back(Value(MetricType::Gauge, static_cast<double>(pending_stale_)));
    out.push_back(std::move(stale));
    CollectRemediation(out);
  }

  // Remediation candidates and attempts (src/remediation), from the same cached store read.
  void CollectRemediation(std::vector<MetricFamily>& out) const {
    if (!remediation_) return;
    const RemediationStats& r = *remediation_;
    auto cands = Family("ferry_remediations", "Remediation candidates by status (store).",
                        MetricType::Gauge);
    for (const auto& [st, n] : r.by_status) {
      cands.metric.push_back(Value(MetricType::Gauge, static_cast<double>(n),
                                   {{"status", std::string(RemediationStatusName(st))}}));
    }
    out.push_back(std::move(cands));
    auto attempts = Family("ferry_remediation_attempts_total",
                           "Remediation attempts by outcome (running, fixed, note_only, failed, "
                           "expired, dismissed; store).",
                           MetricType::Counter);
    for (const char* o : {"running", "fixed", "note_only", "failed", "expired", "dismissed"}) {
      auto it = r.attempts_by_outcome.find(o);
      const double n = it == r.attempts_by_outcome.end() ? 0 : static_cast<double>(it->second);
      attempts.metric.push_back(Value(MetricType::Counter, n, {{"outcome", o}}));
    }
    out.push_back(std::move(attempts));
    auto agent = Family("ferry_remediation_agent_duration_seconds",
                        "How long remediation agents ran (finished attempts; store).",
                        MetricType::Histogram);
    ClientMetric h;
    h.histogram.sample_count = static_cast<std::uint64_t>(r.agent_count);
    h.histogram.sample_sum = r.agent_seconds_sum;
    const auto& bounds = RemediationAgentBuckets();
    for (size_t i = 0; i < bounds.size() && i < r.agent_buckets.size(); ++i) {
      ClientMetric::Bucket b;
      b.upper_bound = bounds[i];
      b.cumulative_count = static_cast<std::uint64_t>(r.agent_buckets[i]);
      h.histogram.bucket.push_back(b);
    }
    ClientMetric::Bucket inf;
    inf.upper_bound = std::numeric_limits<double>::infinity();
    inf.cumulative_count = static_cast<std::uint64_t>(r.agent_count);
    h.histogram.bucket.push_back(inf);
    agent.metric.push_back(std::move(h));
    out.push_back(std::move(agent));
  }

  void Refresh() const {
    cached_ = false;
    if (!store_) {
      auto s = stores_->Open();
      if (!s) {
        spdlog::warn("metrics: cannot open the store: {}", s.error().message);
        return;
      }
      store_ = std::move(*s);
    }
    auto counts = run_counter_.Count(*store_);
    auto stale = counts ? store_->CountPendingOlderThan(options_.pending_run_age)
                        : Result<int64_t>(Fail(counts.error()));
    if (!counts || !stale) {
      spdlog::warn("metrics: store query failed: {}",
                   (!counts ? counts.error() : stale.error()).message);
      store_.reset();
      return;
    }
    runs_by_status_.clear();
    for (RunStatus st : {RunStatus::kPending, RunStatus::kRunning, RunStatus::kSucceeded,
                         RunStatus::kFailed, RunStatus::kCancelled}) {
      runs_by_status_[std::string(RunStatusName(st))] = 0;
    }
    for (const auto& [st, n] : *counts) runs_by_status_[std::string(RunStatusName(st))] = n;
    pending_stale_ = *stale;
    // Remediation's tables are optional to the scrape: a failure here drops only its metrics.
    if (auto rs = store_->GetRemediationStats(RemediationAgentBuckets())) {
      remediation_ = std::move(*rs);
    } else {
      spdlog::warn("metrics: remediation stats: {}", rs.error().message);
      remediation_.reset();
    }
    cached_ = true;
    cached_at_ = std::chrono::steady_clock::now();
  }

  BrokerFactory* const brokers_;
  StoreFactory* const stores_;
  const ClusterMetricsOptions options_;

  mutable std::mutex mu_;
  // Guarded by mu_:
  mutable std::unique_ptr<Broker> broker_;
  mutable std::unique_ptr<Store> store_;
  mutable RunCounter run_counter_{options_.ended_runs_every};
  mutable bool cached_ = false;
  mutable std::chrono::steady_clock::time_point cached_at_;
  mutable std::map<std::string, int64_t> runs_by_status_;
  mutable int64_t pending_stale_ = 0;
  mutable std::optional<RemediationStats> remediation_;
};

// Scrape-time values from callbacks (scheduler stats, ...).
class CallbackCollector final : public prometheus::Collectable {
 public:
  void Add(std::string name, std::string help, MetricType type, std::function<double()> fn) {
    std::lock_guard lock(mu_);
    entries_.push_back(Entry{std::move(name), std::move(help), type, std::move(fn)});
  }
  std::vector<MetricFamily> Collect() const override {
    std::lock_guard lock(mu_);
    std::vector<MetricFamily> out;
    for (const auto& e : entries_) {
      auto f = Family(e.name, e.help, e.type);
      f.metric.push_back(Value(e.type, e.fn()));
      out.push_back(std::move(f));
    }
    return out;
  }

 private:
  struct Entry {
    std::string name;
    std::string help;
    MetricType type;
    std::function<double()> fn;
  };
  mutable std::mutex mu_;
  std::vector<Entry> entries_;  // guarded by mu_
};

std::string StatusClass(int status) {
  if (status >= 200 && status < 600) return std::to_string(status / 100) + "xx";
  return "other";
}

}  // namespace

const std::vector<double>& TaskSecondsBuckets() {
  static const std::vector<double> kBuckets = {
      0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600};
  return kBuckets;
}

struct Metrics::Impl {
  explicit Impl(std::string p)
      : process(std::move(p)),
        registry(std::make_shared<prometheus::Registry>()),
        callbacks(std::make_shared<CallbackCollector>()),
        tasks(prometheus::BuildCounter()
                  .Name("ferry_worker_tasks_total")
                  .Help("Executions this worker process finished, by queue, kind and outcome "
                        "(succeeded, retried, failed, cancelled, handed_back, snoozed, lost).")
                  .Register(*registry)),
        duration(prometheus::BuildHistogram()
                     .Name("ferry_task_duration_seconds")
                     .Help("Handler run time of executions this worker finished.")
                     .Register(*registry)),
        wait(prometheus::BuildHistogram()
                 .Name("ferry_task_wait_seconds")
                 .Help("Time from submission to the start of an attempt (includes delays and "
                       "retry backoff), for attempts this worker started.")
                 .Register(*registry)),
        webhooks(prometheus::BuildCounter()
                     .Name("ferry_webhook_requests_total")
                     .Help("Webhook requests by workflow and status class.")
                     .Register(*registry)),
        webhook_latency(prometheus::BuildHistogram()
                            .Name("ferry_webhook_duration_seconds")
                            .Help("Webhook request handling time, by workflow.")
                            .Register(*registry)) {
    prometheus::BuildGauge()
        .Name("ferry_build_info")
        .Help("Always 1; labels name the version and the process kind.")
        .Register(*registry)
        .Add({{"version", FERRY_VERSION}, {"process", process}})
        .Set(1);
    prometheus::BuildGauge()
        .Name("ferry_process_start_time_seconds")
        .Help("Start time of this process, seconds since the epoch.")
        .Register(*registry)
        .Add({})
        .Set(static_cast<double>(WallNowMs()) / 1000.0);
  }

  // Caps label cardinality: past `cap` distinct values, new ones become "_other".
  std::string Bounded(std::set<std::string>& seen, std::string_view value, size_t cap) {
    std::string v(value);
    if (seen.count(v) != 0) return v;
    if (seen.size() >= cap) return "_other";
    seen.insert(v);
    return v;
  }

  const std::string process;
  std::shared_ptr<prometheus::Registry> registry;
  std::shared_ptr<CallbackCollector> callbacks;
  std::shared_ptr<ClusterCollector> cluster;  // set once, before the first scrape
  prometheus::Family<prometheus::Counter>& tasks;
  prometheus::Family<prometheus::Histogram>& duration;
  prometheus::Family<prometheus::Histogram>& wait;
  prometheus::Family<prometheus::Counter>& webhooks;
  prometheus::Family<prometheus::Histogram>& webhook_latency;

  std::mutex labels_mu;
  // Guarded by labels_mu:
  std::set<std::string> kinds;
  std::set<std::string> workflows;
};

Metrics::Metrics(std::string process) : impl_(std::make_unique<Impl>(std::move(process))) {}

Metrics::~Metrics() = default;

void Metrics::EnableCluster(BrokerFactory* brokers, StoreFactory* stores,
                            ClusterMetricsOptions options) {
  if (brokers == nullptr) return;
  impl_->cluster = std::make_shared<ClusterCollector>(brokers, stores, options);
}

void Metrics::ObserveTask(const TaskObservation& o) {
  std::string kind;
  {
    std::lock_guard lock(impl_->labels_mu);
    kind = impl_->Bounded(impl_->kinds, o.kind, kMaxKindLabels);
  }
  impl_->tasks.Add({{"queue", o.queue}, {"kind", kind}, {"outcome", o.outcome}}).Increment();
  if (o.outcome != "lost" && o.outcome != "handed_back" && o.outcome != "snoozed") {
    impl_->duration.Add({{"queue", o.queue}, {"kind", kind}}, TaskSecondsBuckets())
        .Observe(static_cast<double>(o.duration_ms) / 1000.0);
  }
  impl_->wait.Add({{"queue", o.queue}}, TaskSecondsBuckets())
      .Observe(static_cast<double>(o.wait_ms) / 1000.0);
}

void Metrics::ObserveWebhook(std::string_view workflow, int http_status, double seconds) {
  std::string wf;
  {
    std::lock_guard lock(impl_->labels_mu);
    wf = workflow.empty() ? "_unknown"
                          : impl_->Bounded(impl_->workflows, workflow, kMaxWorkflowLabels);
  }
  impl_->webhooks.Add({{"workflow", wf}, {"code", StatusClass(http_status)}}).Increment();
  static const std::vector<double> kLatency = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                               0.1,   0.25,   0.5,   1,    2.5,   5};
  impl_->webhook_latency.Add({{"workflow", wf}}, kLatency).Observe(seconds);
}

void Metrics::AddGauge(const std::string& name, const std::string& help,
                       std::function<double()> value) {
  impl_->callbacks->Add(name, help, MetricType::Gauge, std::move(value));
}

void Metrics::AddCounter(const std::string& name, const std::string& help,
                         std::function<double()> value) {
  impl_->callbacks->Add(name, help, MetricType::Counter, std::move(value));
}

std::string Metrics::Render() {
  std::vector<MetricFamily> families = impl_->registry->Collect();
  auto more = impl_->callbacks->Collect();
  families.insert(families.end(), more.begin(), more.end());
  if (impl_->cluster) {
    auto c = impl_->cluster->Collect();
    families.insert(families.end(), c.begin(), c.end());
  }
  // A family without samples is noise to scrapers (and promtool flags HELP without samples).
  std::erase_if(families, [](const MetricFamily& f) { return f.metric.empty(); });
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, families);
  return out.str();
}

}  // namespace ferry::ops
