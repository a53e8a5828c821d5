// Pieces the workflow benchmarks share: percentiles, machine CPU, and signed webhook deliveries
// made the way a sender makes them. Header-only; no state.
#pragma once

#include <algorithm>
#include <cstddef>
#include <fstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "api/webhook_auth.h"
#include "core/crypto.h"
#include "core/ids.h"
#include "core/time_util.h"

namespace ferry::bench {

// The benchmarks' workflow: one Lua node returning a constant, started by a signed webhook.
constexpr std::string_view kWorkflow = R"(name: bench
description: One lua node returning a constant; the benchmarks' workload.
triggers:
  webhook:
    methods: [POST]
    auth: hmac
    secret: BENCH_WEBHOOK
    tolerance: 5m
    max_body_bytes: 65536
nodes:
  one:
    kind: lua
    script: return { ok = true }
)";

// Nearest-rank percentile of an unsorted sample; -1 when empty.
inline double Pct(std::vector<double> v, double p) {
  if (v.empty()) return -1;
  std::sort(v.begin(), v.end());
  return v[static_cast<size_t>(p * static_cast<double>(v.size() - 1))];
}

// Machine-wide busy and total jiffies from /proc/stat (every process, other users' too).
inline std::pair<double, double> MachineJiffies() {
  std::ifstream f("/proc/stat");
  std::string cpu;
  double user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0;
  f >> cpu >> user >> nice >> system >> idle >> iowait >> irq >> softirq >> steal;
  double busy = user + nice + system + irq + softirq + steal;
  return {busy, busy + idle + iowait};
}

// A signed webhook delivery: HMAC-SHA256 over "<unix seconds>.<raw body>". The body carries a
// sequence number and a nonce so that two deliveries within one second differ (the signature is
// the replay nonce).
struct Delivery {
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

inline Delivery Sign(const std::string& secret, int seq) {
  Delivery d;
  d.body = R"({"seq":)" + std::to_string(seq) + R"(,"nonce":")" + RandomHex(8) + R"("})";
  std::string ts = std::to_string(WallNowMs() / 1000);
  d.headers = {
      {"X-Ferry-Timestamp", ts},
      {"X-Ferry-Signature", "sha256=" + HmacSha256Hex(secret, api::SignedPayload(ts, d.body))}};
  return d;
}

}  // namespace ferry::bench
