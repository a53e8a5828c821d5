#include "ops/alerts.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <memory>
#include <set>
#include <sstream>
#include <stop_token>
#include <string_view>

#include "core/crypto.h"
#include "core/decimal.h"
#include "core/time_util.h"
#include "engine/http_client.h"

namespace ferry::ops {
namespace {

constexpr const char* kStateName = "alerts";
constexpr size_t kMaxSamples = 64;

struct Raw {
  std::string text;
  std::string source;
};

std::optional<Raw> Pick(const std::map<std::string, std::string>& flags, const EnvLookup& env,
                        const std::string& key) {
  if (auto it = flags.find(key); it != flags.end()) return Raw{it->second, "--" + key};
  const std::string name = EnvNameOf(key);
  if (auto v = env(name)) return Raw{*v, name};
  return std::nullopt;
}

Result<int64_t> ParseCount(const Raw& r) {
  int64_t v = 0;
  auto [p, ec] = std::from_chars(r.text.data(), r.text.data() + r.text.size(), v);
  if (r.text.empty() || ec != std::errc() || p != r.text.data() + r.text.size() || v < 0) {
    return Fail(ErrorCode::kInvalidArgument,
                r.source + ": expected a non-negative integer, not '" + r.text + "'");
  }
  return v;
}

std::string Fmt(double v) {
  if (std::floor(v) == v && std::fabs(v) < 1e15) return std::to_string(static_cast<int64_t>(v));
  return fmt::format("{:.3g}", v);
}

int64_t ToInt(const std::string& s) {
  int64_t v = 0;
  std::from_chars(s.data(), s.data() + s.size(), v);
  return v;
}

Json AlertJson(const Alert& a) {
  Json j = Json::object();
  j["name"] = a.name;
  j["key"] = a.Key();
  j["severity"] = a.severity;
  if (!a.queue.empty()) j["queue"] = a.queue;
  j["value"] = a.value;
  j["threshold"] = a.threshold;
  j["summary"] = a.summary;
  if (a.since_ms > 0) {
    j["since_ms"] = a.since_ms;
    j["since"] = FormatIsoMs(a.since_ms);
  }
  return j;
}

}  // namespace

Result<AlertSettings> ResolveAlertSettings(const std::map<std::string, std::string>& flags,
                                           const EnvLookup& env) {
  AlertSettings settings;
  AlertThresholds& t = settings.thresholds;
  auto count = [&](const std::string& key, int64_t& dest) -> Status {
    if (auto r = Pick(flags, env, key)) {
      auto v = ParseCount(*r);
      if (!v) return Fail(v.error());
      dest = *v;
    }
    return {};
  };
  auto dur = [&](const std::string& key, std::chrono::milliseconds& dest) -> Status {
    if (auto r = Pick(flags, env, key)) {
      auto d = ParseDuration(r->text);
      if (!d) return Fail(ErrorCode::kInvalidArgument, r->source + ": " + d.error().message);
      if (d->count() <= 0) {
        return Fail(ErrorCode::kInvalidArgument, r->source + ": must be greater than zero");
      }
      dest = *d;
    }
    return {};
  };
  if (auto st = count("alert-queue-depth-warning", t.queue_depth_warning); !st) {
    return Fail(st.error());
  }
  if (auto st = count("alert-queue-depth-critical", t.queue_depth_critical); !st) {
    return Fail(st.error());
  }
  if (auto st = count("alert-failure-min-volume", t.failure_min_volume); !st) {
    return Fail(st.error());
  }
  if (auto st = dur("alert-failure-window", t.failure_window); !st) return Fail(st.error());
  if (auto st = dur("alert-wait-time", t.wait_time); !st) return Fail(st.error());
  if (auto st = dur("alert-pending-run-age", t.pending_run_age); !st) return Fail(st.error());
  if (auto st = dur("alert-interval", settings.interval); !st) return Fail(st.error());
  if (auto r = Pick(flags, env, "alert-webhook-url")) settings.webhook.url = r->text;
  if (auto r = Pick(flags, env, "alert-webhook-secret")) settings.webhook.secret = r->text;
  if (auto r = Pick(flags, env, "alert-failure-rate")) {
    // "0.1", "10%": a plain decimal, so "nan" (which would switch the rule off, every
    // comparison with it being false), " 0.5" or "0x1p-3" are refused as "inf" is.
    std::string_view text = r->text;
    const bool percent = !text.empty() && text.back() == '%';
    if (percent) text.remove_suffix(1);
    std::optional<double> rate = ParseDecimal(text);
    if (rate && percent) *rate /= 100;
    if (!rate || *rate > 1) {
      return Fail(
          ErrorCode::kInvalidArgument,
          r->source + ": expected a fraction from 0 to 1 or a percentage, not '" + r->text + "'");
    }
    t.failure_rate = *rate;
  }
  if (t.queue_depth_critical < t.queue_depth_warning) {
    return Fail(ErrorCode::kInvalidArgument,
                "alert-queue-depth-critical must not be below alert-queue-depth-warning");
  }
  return settings;
}

std::vector<Alert> EvaluateRules(const ClusterSnapshot& s, const AlertThresholds& t,
                                 const SampleHistory& history) {
  std::vector<Alert> out;
  if (s.workers_alive == 0) {
    out.push_back(Alert{"NoLiveWorkers", "critical", "", 0, 0,
                        "no live workers: nothing is being processed", 0});
  }
  for (const auto& q : s.queues) {
    const double depth = static_cast<double>(q.pending);
    if (q.pending > t.queue_depth_critical) {
      out.push_back(Alert{"QueueDepthCritical", "critical", q.queue, depth,
                          static_cast<double>(t.queue_depth_critical),
                          "queue " + q.queue + " has " + Fmt(depth) + " waiting tasks (> " +
                              std::to_string(t.queue_depth_critical) + ")",
                          0});
    } else if (q.pending > t.queue_depth_warning) {
      out.push_back(Alert{"QueueDepthHigh", "warning", q.queue, depth,
                          static_cast<double>(t.queue_depth_warning),
                          "queue " + q.queue + " has " + Fmt(depth) + " waiting tasks (> " +
                              std::to_string(t.queue_depth_warning) + ")",
                          0});
    }
    if (q.oldest_pending_ms > 0) {
      const int64_t age = s.now_ms - q.oldest_pending_ms;
      if (age > t.wait_time.count()) {
        out.push_back(Alert{"TaskWaitTimeHigh", "warning", q.queue,
                            static_cast<double>(age) / 1000.0,
                            static_cast<double>(t.wait_time.count()) / 1000.0,
                            "oldest waiting task of queue " + q.queue + " has waited " +
                                FormatDuration(std::chrono::milliseconds(age)) + " (> " +
                                FormatDuration(t.wait_time) + ")",
                            0});
      }
    }
    // Failure rate over the window: the newest sample at least a window old is the base; with
    // none that old yet, the oldest sample (a partial window, right after start-up).
    auto h = history.find(q.queue);
    if (h != history.end() && !h->second.empty()) {
      const CounterSample* base = &h->second.front();
      for (const auto& smp : h->second) {
        if (smp.t_ms <= s.now_ms - t.failure_window.count()) base = &smp;
      }
      auto get = [&](const char* k) {
        auto it = q.counters.find(k);
        return it == q.counters.end() ? int64_t{0} : it->second;
      };
      const int64_t ds = get("succeeded") - base->succeeded;
      const int64_t df = get("failed") - base->failed;
      if (ds >= 0 && df >= 0 && ds + df >= std::max<int64_t>(1, t.failure_min_volume)) {
        const double rate = static_cast<double>(df) / static_cast<double>(ds + df);
        if (rate > t.failure_rate) {
          out.push_back(Alert{"TaskFailureRateHigh", "warning", q.queue, rate, t.failure_rate,
                              fmt::format("queue {}: {:.1f}% of {} attempts failed over the last "
                                          "{} (> {:.1f}%)",
                                          q.queue, rate * 100, ds + df,
                                          FormatDuration(t.failure_window), t.failure_rate * 100),
                              0});
        }
      }
    }
  }
  if (s.stale_pending_runs && *s.stale_pending_runs > 0) {
    out.push_back(Alert{"PendingRunsStale", "warning", "",
                        static_cast<double>(*s.stale_pending_runs), 0,
                        std::to_string(*s.stale_pending_runs) +
                            " workflow run(s) pending for "
                            "longer than " +
                            FormatDuration(t.pending_run_age),
                        0});
  }
  return out;
}

std::string EncodeSamples(const std::vector<CounterSample>& samples) {
  std::string out;
  for (const auto& s : samples) {
    if (!out.empty()) out += ';';
    out +=
        std::to_string(s.t_ms) + "," + std::to_string(s.succeeded) + "," + std::to_string(s.failed);
  }
  return out;
}

std::vector<CounterSample> DecodeSamples(const std::string& text) {
  std::vector<CounterSample> out;
  std::istringstream in(text);
  std::string item;
  while (std::getline(in, item, ';')) {
    size_t a = item.find(',');
    size_t b = a == std::string::npos ? a : item.find(',', a + 1);
    if (b == std::string::npos) continue;
    out.push_back(CounterSample{ToInt(item.substr(0, a)), ToInt(item.substr(a + 1, b - a - 1)),
                                ToInt(item.substr(b + 1))});
  }
  std::sort(out.begin(), out.end(),
            [](const CounterSample& x, const CounterSample& y) { return x.t_ms < y.t_ms; });
  return out;
}

Json AlertReportJson(const AlertReport& r) {
  Json j = Json::object();
  j["evaluated_at"] = FormatIsoMs(r.evaluated_ms);
  j["evaluated_ms"] = r.evaluated_ms;
  Json firing = Json::array();
  for (const auto& a : r.firing) firing.push_back(AlertJson(a));
  j["firing"] = std::move(firing);
  Json resolved = Json::array();
  for (const auto& a : r.resolved) resolved.push_back(AlertJson(a));
  j["resolved"] = std::move(resolved);
  j["store_checked"] = r.store_checked;
  Json t = Json::object();
  t["queue_depth_warning"] = r.thresholds.queue_depth_warning;
  t["queue_depth_critical"] = r.thresholds.queue_depth_critical;
  t["failure_rate"] = r.thresholds.failure_rate;
  t["failure_window_s"] = r.thresholds.failure_window.count() / 1000;
  t["failure_min_volume"] = r.thresholds.failure_min_volume;
  t["wait_time_s"] = r.thresholds.wait_time.count() / 1000;
  t["pending_run_age_s"] = r.thresholds.pending_run_age.count() / 1000;
  j["thresholds"] = std::move(t);
  return j;
}

Result<ClusterSnapshot> AlertEvaluator::Snapshot(Broker& broker, Store* store) const {
  ClusterSnapshot s;
  auto queues = broker.ListQueues();
  if (!queues) return Fail(queues.error());
  for (const auto& q : *queues) {
    auto st = broker.GetQueueStats(q);
    if (!st) return Fail(st.error());
    s.queues.push_back(std::move(*st));
  }
  auto workers = broker.ListWorkers();
  if (!workers) return Fail(workers.error());
  s.workers_alive =
      std::count_if(workers->begin(), workers->end(), [](const WorkerInfo& w) { return w.alive; });
  if (store != nullptr) {
    auto n = store->CountPendingOlderThan(thresholds_.pending_run_age);
    if (!n) return Fail(n.error());
    s.stale_pending_runs = *n;
  }
  s.now_ms = WallNowMs();
  return s;
}

Result<Json> AlertEvaluator::EvaluateJson(Broker& broker, Store* store) const {
  auto report = Evaluate(broker, store);
  if (!report) return Fail(report.error());
  return AlertReportJson(*report);
}

Result<AlertReport> AlertEvaluator::Evaluate(Broker& broker, Store* store) const {
  auto snap = Snapshot(broker, store);
  if (!snap) return Fail(snap.error());
  auto state = broker.GetOpsState(kStateName);
  if (!state) return Fail(state.error());

  SampleHistory history;
  for (const auto& q : snap->queues) {
    auto it = state->find("samples:" + q.queue);
    if (it != state->end()) history[q.queue] = DecodeSamples(it->second);
  }

  AlertReport report;
  report.evaluated_ms = snap->now_ms;
  report.store_checked = store != nullptr;
  report.thresholds = thresholds_;
  report.firing = EvaluateRules(*snap, thresholds_, history);

  std::map<std::string, std::string> set;
  std::map<std::string, std::string> set_if_absent;
  std::vector<std::string> remove;
  std::set<std::string> firing_keys;
  for (auto& a : report.firing) {
    const std::string field = "since:" + a.Key();
    firing_keys.insert(field);
    auto it = state->find(field);
    if (it != state->end()) {
      a.since_ms = ToInt(it->second);
    } else {
      a.since_ms = snap->now_ms;
      set_if_absent[field] = std::to_string(snap->now_ms);
      if (record_) {
        spdlog::warn("alert.firing name={} severity={} queue={} value={} summary=\"{}\"", a.name,
                     a.severity, a.queue, Fmt(a.value), a.summary);
      }
    }
  }
  for (const auto& [field, value] : *state) {
    if (field.rfind("since:", 0) != 0 || firing_keys.count(field) != 0) continue;
    // A store-based rule is not judged without a store: leave its state alone.
    const std::string key = field.substr(6);
    if (store == nullptr && key.rfind("PendingRunsStale", 0) == 0) continue;
    Alert a;
    size_t colon = key.find(':');
    a.name = key.substr(0, colon);
    if (colon != std::string::npos) a.queue = key.substr(colon + 1);
    a.since_ms = ToInt(value);
    a.summary = "resolved";
    report.resolved.push_back(a);
    remove.push_back(field);
    if (record_) {
      spdlog::info("alert.resolved name={} queue={} fired_for_ms={}", a.name, a.queue,
                   snap->now_ms - a.since_ms);
    }
  }

  // One sample per queue every window/10 (at least 10s), keeping a bit over a window of them.
  const int64_t every = std::max<int64_t>(10000, thresholds_.failure_window.count() / 10);
  for (const auto& q : snap->queues) {
    auto& h = history[q.queue];
    if (!h.empty() && snap->now_ms - h.back().t_ms < every) continue;
    auto get = [&](const char* k) {
      auto it = q.counters.find(k);
      return it == q.counters.end() ? int64_t{0} : it->second;
    };
    h.push_back(CounterSample{snap->now_ms, get("succeeded"), get("failed")});
    const int64_t keep_after = snap->now_ms - 2 * thresholds_.failure_window.count();
    std::erase_if(h, [&](const CounterSample& c) { return c.t_ms < keep_after; });
    if (h.size() > kMaxSamples) h.erase(h.begin(), h.end() - kMaxSamples);
    set["samples:" + q.queue] = EncodeSamples(h);
  }
  if (!record_) {
    set.clear();
    set_if_absent.clear();
    remove.clear();
  } else if (auto st = broker.UpdateOpsState(kStateName, set, set_if_absent, remove); !st) {
    return Fail(st.error());
  }
  // Another process may have recorded an earlier since between our read and HSETNX: re-read.
  if (!set_if_absent.empty()) {
    if (auto again = broker.GetOpsState(kStateName)) {
      for (auto& a : report.firing) {
        auto it = again->find("since:" + a.Key());
        if (it != again->end()) a.since_ms = ToInt(it->second);
      }
    }
  }
  std::sort(report.firing.begin(), report.firing.end(), [](const Alert& x, const Alert& y) {
    if (x.severity != y.severity) return x.severity == "critical";
    return x.Key() < y.Key();
  });
  return report;
}

std::string AlertSignature(const std::string& secret, const std::string& timestamp,
                           const std::string& body) {
  return HmacSha256Hex(secret, timestamp + "." + body);
}

Result<int> AlertNotifier::Deliver(Broker& broker, const AlertReport& report) const {
  if (options_.url.empty()) return 0;
  auto state = broker.GetOpsState(kStateName);
  if (!state) return Fail(state.error());

  auto post = [&](const Json& body_json) -> Status {
    const std::string body = DumpJson(body_json);
    const std::string ts = std::to_string(WallNowMs() / 1000);
    engine::HttpRequest req;
    req.method = "POST";
    req.url = options_.url;
    req.headers = {{"Content-Type", "application/json"}, {"X-Ferry-Timestamp", ts}};
    if (!options_.secret.empty()) {
      req.headers.emplace_back("X-Ferry-Signature",
                               "sha256=" + AlertSignature(options_.secret, ts, body));
    }
    req.body = body;
    req.has_body = true;
    req.timeout = options_.timeout;
    req.on_body = [](std::string_view) { return true; };  // the answer's body is not needed
    auto res = engine::PerformHttp(req, std::stop_token{});
    if (!res) {
      std::string why = res.error().message;
      if (why.rfind("http: ", 0) == 0) why.erase(0, 6);  // the client's own prefix
      return Fail(ErrorCode::kUnavailable, "alert webhook: " + why);
    }
    if (res->status < 200 || res->status >= 300) {
      return Fail(ErrorCode::kUnavailable,
                  "alert webhook answered HTTP " + std::to_string(res->status));
    }
    return {};
  };

  int delivered = 0;
  std::map<std::string, std::string> set;
  std::vector<std::string> remove;
  std::set<std::string> firing;
  for (const auto& a : report.firing) {
    const std::string field = "notified:" + a.Key();
    firing.insert(field);
    if (state->count(field) != 0) continue;
    Json body = Json::object();
    body["status"] = "firing";
    body["alert"] = AlertJson(a);
    if (auto st = post(body); !st) {
      spdlog::warn("alert.delivery_failed name={} queue={}: {}", a.name, a.queue,
                   st.error().message);
      continue;
    }
    ++delivered;
    set[field] = DumpJson(AlertJson(a));
  }
  for (const auto& [field, value] : *state) {
    if (field.rfind("notified:", 0) != 0 || firing.count(field) != 0) continue;
    Json body = Json::object();
    body["status"] = "resolved";
    auto alert = ParseJson(value);
    body["alert"] = alert ? *alert : Json::object();
    body["resolved_at"] = FormatIsoMs(report.evaluated_ms);
    if (auto st = post(body); !st) {
      spdlog::warn("alert.delivery_failed key={}: {}", field.substr(9), st.error().message);
      continue;
    }
    ++delivered;
    remove.push_back(field);
  }
  if (auto st = broker.UpdateOpsState(kStateName, set, {}, remove); !st) return Fail(st.error());
  return delivered;
}

}  // namespace ferry::ops
