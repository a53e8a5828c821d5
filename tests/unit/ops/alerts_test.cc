#include "ops/alerts.h"

#include <gtest/gtest.h>

namespace ferry::ops {
namespace {

QueueStats Queue(const std::string& name, int64_t pending, int64_t oldest_ms = 0,
                 int64_t succeeded = 0, int64_t failed = 0) {
  QueueStats q;
  q.queue = name;
  q.pending = pending;
  q.oldest_pending_ms = oldest_ms;
  q.counters["succeeded"] = succeeded;
  q.counters["failed"] = failed;
  return q;
}

std::vector<std::string> Keys(const std::vector<Alert>& alerts) {
  std::vector<std::string> out;
  for (const auto& a : alerts) out.push_back(a.Key() + "/" + a.severity);
  return out;
}

constexpr int64_t kNow = 1'000'000'000;

TEST(AlertRules, QuietClusterFiresNothing) {
  ClusterSnapshot s{kNow, {Queue("default", 5)}, 2, int64_t{0}};
  EXPECT_TRUE(EvaluateRules(s, AlertThresholds{}, {}).empty());
}

TEST(AlertRules, QueueDepthWarningThenCritical) {
  AlertThresholds t;
  ClusterSnapshot s{kNow, {Queue("a", 100), Queue("b", 101), Queue("c", 501)}, 1, std::nullopt};
  EXPECT_EQ(
      Keys(EvaluateRules(s, t, {})),
      (std::vector<std::string>{"QueueDepthHigh:b/warning", "QueueDepthCritical:c/critical"}));
}

TEST(AlertRules, ZeroWorkersIsCritical) {
  ClusterSnapshot s{kNow, {}, 0, std::nullopt};
  EXPECT_EQ(Keys(EvaluateRules(s, AlertThresholds{}, {})),
            (std::vector<std::string>{"NoLiveWorkers/critical"}));
}

TEST(AlertRules, WaitTime) {
  ClusterSnapshot s{
      kNow, {Queue("a", 1, kNow - 60'000), Queue("b", 1, kNow - 61'000)}, 1, std::nullopt};
  EXPECT_EQ(Keys(EvaluateRules(s, AlertThresholds{}, {})),
            (std::vector<std::string>{"TaskWaitTimeHigh:b/warning"}));
}

TEST(AlertRules, PendingRunsOnlyWithStore) {
  ClusterSnapshot s{kNow, {}, 1, int64_t{3}};
  EXPECT_EQ(Keys(EvaluateRules(s, AlertThresholds{}, {})),
            (std::vector<std::string>{"PendingRunsStale/warning"}));
  s.stale_pending_runs.reset();
  EXPECT_TRUE(EvaluateRules(s, AlertThresholds{}, {}).empty());
}

TEST(AlertRules, FailureRateOverTheWindowWithMinimumVolume) {
  AlertThresholds t;  // 10 %, 5m, >= 20 attempts
  SampleHistory h;
  // 6 minutes ago: 100 ok / 10 failed; 4 minutes ago (inside the window): 150 / 10.
  h["q"] = {{kNow - 360'000, 100, 10}, {kNow - 240'000, 150, 10}};
  // Now 170 ok, 14 failed: the window base is the 6-minute-old sample: 70 ok, 4 failed = 5.4 %.
  ClusterSnapshot s{kNow, {Queue("q", 0, 0, 170, 14)}, 1, std::nullopt};
  EXPECT_TRUE(EvaluateRules(s, t, h).empty());
  // 170 ok, 30 failed: 70 ok, 20 failed in the window = 22 %.
  s.queues = {Queue("q", 0, 0, 170, 30)};
  auto fired = EvaluateRules(s, t, h);
  ASSERT_EQ(Keys(fired), (std::vector<std::string>{"TaskFailureRateHigh:q/warning"}));
  EXPECT_NEAR(fired[0].value, 20.0 / 90.0, 1e-9);
  // Too little volume: 5 attempts, all failed.
  h["q"] = {{kNow - 360'000, 100, 10}};
  s.queues = {Queue("q", 0, 0, 100, 15)};
  EXPECT_TRUE(EvaluateRules(s, t, h).empty());
  // A counter reset (Redis flushed) is not judged.
  s.queues = {Queue("q", 0, 0, 0, 50)};
  EXPECT_TRUE(EvaluateRules(s, t, h).empty());
}

TEST(AlertRules, ThresholdsFromFlagsAndEnv) {
  auto env = [](const std::string& n) -> std::optional<std::string> {
    if (n == "FERRY_ALERT_WAIT_TIME") return "30s";
    if (n == "FERRY_ALERT_FAILURE_RATE") return "25%";
    return std::nullopt;
  };
  auto s = ResolveAlertSettings({{"alert-queue-depth-warning", "7"}}, env);
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_EQ(s->thresholds.queue_depth_warning, 7);
  EXPECT_EQ(s->thresholds.wait_time, std::chrono::seconds(30));
  EXPECT_DOUBLE_EQ(s->thresholds.failure_rate, 0.25);
  EXPECT_EQ(s->interval, std::chrono::seconds(15));
  EXPECT_EQ(s->webhook.url, "");
  auto bad = ResolveAlertSettings({{"alert-failure-rate", "2"}}, env);
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("--alert-failure-rate"), std::string::npos);
  auto inverted = ResolveAlertSettings(
      {{"alert-queue-depth-warning", "600"}, {"alert-queue-depth-critical", "500"}}, env);
  EXPECT_FALSE(inverted);
}

std::optional<std::string> NoEnv(const std::string&) { return std::nullopt; }

TEST(AlertRules, TheFailureRateIsAPlainDecimalInRange) {
  auto rate = [](const std::string& text) {
    return ResolveAlertSettings({{"alert-failure-rate", text}}, NoEnv);
  };
  for (const auto& [text, want] : std::vector<std::pair<std::string, double>>{{"0", 0},
                                                                              {"1", 1},
                                                                              {"0.5", 0.5},
                                                                              {".5", 0.5},
                                                                              {"0%", 0},
                                                                              {"100%", 1},
                                                                              {"12.5%", 0.125}}) {
    auto s = rate(text);
    ASSERT_TRUE(s) << text << ": " << s.error().message;
    EXPECT_DOUBLE_EQ(s->thresholds.failure_rate, want) << text;
  }
  // NaN would pass any range check and switch the rule off; the rest are strtod's extras. The
  // near misses: one past each end of the range.
  for (const std::string text : {"nan", "NAN", "nan%", "inf", "-0", " 0.5", "0.5 ", "0x1p-3",
                                 "1e-1", "+0.5", "1.0001", "100.1%", "%", "", "0.5 %"}) {
    auto s = rate(text);
    ASSERT_FALSE(s) << "'" << text << "' accepted as " << s->thresholds.failure_rate;
    EXPECT_EQ(s.error().code, ErrorCode::kInvalidArgument);
    EXPECT_EQ(s.error().message,
              "--alert-failure-rate: expected a fraction from 0 to 1 or a "
              "percentage, not '" +
                  text + "'");
  }
  // From the environment, the message names the variable.
  auto env = [](const std::string& n) -> std::optional<std::string> {
    if (n == "FERRY_ALERT_FAILURE_RATE") return "nan";
    return std::nullopt;
  };
  auto from_env = ResolveAlertSettings({}, env);
  ASSERT_FALSE(from_env);
  EXPECT_EQ(from_env.error().message.rfind("FERRY_ALERT_FAILURE_RATE: ", 0), 0u)
      << from_env.error().message;
}

TEST(AlertRules, TheIntervalAndWebhookAreResolvedWithTheThresholds) {
  auto s = ResolveAlertSettings(
      {{"alert-interval", "1ms"}, {"alert-webhook-url", "http://127.0.0.1:9/hook"}}, NoEnv);
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_EQ(s->interval, std::chrono::milliseconds(1));
  EXPECT_EQ(s->webhook.url, "http://127.0.0.1:9/hook");
  for (const char* text : {"0", "0s", "soon"}) {
    auto bad = ResolveAlertSettings({{"alert-interval", text}}, NoEnv);
    ASSERT_FALSE(bad) << text;
    EXPECT_EQ(bad.error().message.rfind("--alert-interval: ", 0), 0u) << bad.error().message;
  }
}

TEST(AlertSamples, RoundTrip) {
  std::vector<CounterSample> in = {{2, 5, 6}, {1, 3, 4}};
  auto out = DecodeSamples(EncodeSamples(in));
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].t_ms, 1);  // sorted
  EXPECT_EQ(out[1].failed, 6);
  EXPECT_TRUE(DecodeSamples("garbage;;1,2").empty());
}

TEST(AlertSignature, KnownVector) {
  // echo -n '1700000000.{"a":1}' | openssl dgst -sha256 -hmac key
  EXPECT_EQ(AlertSignature("key", "1700000000", "{\"a\":1}"),
            "a438e398bfafc57e4396bb7fc2304422f0f768e965d073ca313cb52e22e6ad03");
}

}  // namespace
}  // namespace ferry::ops
