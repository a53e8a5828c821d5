// Task-layer benchmark: enqueue rates, drain rates, end-to-end rate, pickup latency and idle
// worker RSS, against a private redis-server on this machine (or --redis-url). Prints a Markdown
// table for docs/benchmarks.md. Every phase is bounded in task count and in time.
//
//   build/default/bench/queue_bench [--quick] [--redis-url URL]
#include <signal.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "broker/broker.h"
#include "core/ids.h"
#include "harness.h"
#include "worker/handler.h"
#include "worker/worker.h"

namespace ferry::bench {
namespace {

using Clock = std::chrono::steady_clock;

int64_t WallMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

struct Row {
  std::string what;
  std::string value;
  std::string target;
};

class Bench {
 public:
  Bench(std::string url, bool quick) : url_(std::move(url)), quick_(quick) {}

  std::unique_ptr<BrokerFactory> Factory(const std::string& prefix) {
    BrokerOptions o;
    o.redis_url = url_;
    o.prefix = prefix;
    return MakeRedisBrokerFactory(o);
  }

  std::unique_ptr<Broker> Open(BrokerFactory& f) {
    auto b = f.Open();
    if (!b) {
      std::fprintf(stderr, "cannot open broker: %s\n", b.error().ToString().c_str());
      std::exit(1);
    }
    return std::move(*b);
  }

  SubmitRequest Noop(const std::string& queue) {
    SubmitRequest r;
    r.kind = "noop";
    r.queue = queue;
    r.max_attempts = 1;
    return r;
  }

  double EnqueueSingle(int n) {
    auto f = Factory("bench-es-" + RandomHex(4));
    auto b = Open(*f);
    auto t0 = Clock::now();
    for (int i = 0; i < n; ++i) {
      if (!b->Submit(Noop("q"))) std::exit(1);
    }
    return n / Seconds(t0, Clock::now());
  }

  // Submits n no-op tasks to `queue` in batches; returns tasks per second.
  double EnqueueBatch(Broker& b, const std::string& queue, int n, int batch) {
    std::vector<SubmitRequest> reqs(static_cast<size_t>(batch), Noop(queue));
    auto t0 = Clock::now();
    for (int done = 0; done < n; done += batch) {
      auto r = b.SubmitBatch(reqs);
      if (!r) {
        std::fprintf(stderr, "batch submit: %s\n", r.error().ToString().c_str());
        std::exit(1);
      }
    }
    return n / Seconds(t0, Clock::now());
  }

  int64_t Succeeded(Broker& b, const std::string& queue) {
    auto s = b.GetQueueStats(queue);
    if (!s) return -1;
    auto it = s->counters.find("succeeded");
    return it == s->counters.end() ? 0 : it->second;
  }

  // Pre-fills a queue, then measures how fast one worker process drains it.
  double Drain(int concurrency, int n, int prefetch = -1) {
    std::string prefix = "bench-dr-" + RandomHex(4);
    auto f = Factory(prefix);
    auto b = Open(*f);
    EnqueueBatch(*b, "q", n, 1000);
    HandlerRegistry reg;
    reg.Register("noop", [](TaskContext&) -> HandlerResult { return Json(); });
    WorkerOptions o;
    o.broker = f->options();
    o.queues = {"q"};
    o.concurrency = concurrency;
    o.prefetch = prefetch;
    auto w = MakeWorker(o, reg, MakeRedisBrokerFactory(o.broker));
    if (!w) std::exit(1);
    auto t0 = Clock::now();
    if (!(*w)->Start()) std::exit(1);
    auto deadline = t0 + std::chrono::seconds(120);
    int64_t done = 0;
    while (Clock::now() < deadline && (done = Succeeded(*b, "q")) < n) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    auto t1 = Clock::now();
    (*w)->Stop();
    (*w)->Wait();
    return static_cast<double>(done) / Seconds(t0, t1);
  }

  // A producer submits in batches while a worker (concurrency 8) runs them.
  double EndToEnd(int n) {
    std::string prefix = "bench-e2e-" + RandomHex(4);
    auto f = Factory(prefix);
    auto b = Open(*f);
    HandlerRegistry reg;
    reg.Register("noop", [](TaskContext&) -> HandlerResult { return Json(); });
    WorkerOptions o;
    o.broker = f->options();
    o.queues = {"q"};
    o.concurrency = 8;
    auto w = MakeWorker(o, reg, MakeRedisBrokerFactory(o.broker));
    if (!w || !(*w)->Start()) std::exit(1);
    auto t0 = Clock::now();
    std::thread producer([&] {
      auto pb = Open(*f);
      EnqueueBatch(*pb, "q", n, 500);
    });
    auto deadline = t0 + std::chrono::seconds(120);
    int64_t done = 0;
    while (Clock::now() < deadline && (done = Succeeded(*b, "q")) < n) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    auto t1 = Clock::now();
    producer.join();
    (*w)->Stop();
    (*w)->Wait();
    return static_cast<double>(done) / Seconds(t0, t1);
  }

  // Submit-to-handler-start latency at a low steady rate (100 tasks/s) with an idle worker.
  std::pair<double, double> PickupLatency(int n) {
    std::string prefix = "bench-lat-" + RandomHex(4);
    auto f = Factory(prefix);
    auto b = Open(*f);
    std::mutex mu;
    std::vector<double> lat_ms;
    HandlerRegistry reg;
    reg.Register("stamp", [&](TaskContext& ctx) -> HandlerResult {
      int64_t now = WallMicros();
      int64_t sent = ctx.payload.value("us", int64_t{0});
      std::lock_guard lock(mu);
      lat_ms.push_back(static_cast<double>(now - sent) / 1000.0);
      return Json();
    });
    WorkerOptions o;
    o.broker = f->options();
    o.queues = {"q"};
    o.concurrency = 8;
    auto w = MakeWorker(o, reg, MakeRedisBrokerFactory(o.broker));
    if (!w || !(*w)->Start()) std::exit(1);
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    for (int i = 0; i < n; ++i) {
      SubmitRequest r;
      r.kind = "stamp";
      r.queue = "q";
      r.payload = {{"us", WallMicros()}};
      if (!b->Submit(r)) std::exit(1);
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    auto deadline = Clock::now() + std::chrono::seconds(10);
    while (Clock::now() < deadline) {
      {
        std::lock_guard lock(mu);
        if (static_cast<int>(lat_ms.size()) >= n) break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    (*w)->Stop();
    (*w)->Wait();
    std::lock_guard lock(mu);
    std::sort(lat_ms.begin(), lat_ms.end());
    if (lat_ms.empty()) return {-1, -1};
    auto pct = [&](double p) {
      size_t i = static_cast<size_t>(p * static_cast<double>(lat_ms.size() - 1));
      return lat_ms[i];
    };
    return {pct(0.50), pct(0.99)};
  }

  // Resident memory of an idle `ferry worker start` process after it settled.
  std::optional<long> IdleWorkerRssKb(int concurrency) {
    std::string bin = testing::FerryBinary();
    testing::Process p(
        {{bin, "worker", "start", "--redis-url", url_, "--concurrency", std::to_string(concurrency),
          "--prefix", "bench-rss-" + RandomHex(4), "--queues", "q"},
         {},
         "",
         ""});
    std::this_thread::sleep_for(std::chrono::seconds(3));
    if (!p.Running()) {
      std::fprintf(stderr, "worker exited: %s\n", p.Stderr().c_str());
      return std::nullopt;
    }
    std::ifstream status("/proc/" + std::to_string(p.pid()) + "/status");
    std::string line;
    std::optional<long> kb;
    while (std::getline(status, line)) {
      if (line.rfind("VmRSS:", 0) == 0) kb = std::stol(line.substr(6));
    }
    p.Signal(SIGTERM);
    p.Wait(std::chrono::seconds(10));
    return kb;
  }

  void Run() {
    int scale = quick_ ? 10 : 1;
    std::vector<Row> rows;
    char buf[64];
    auto num = [&](double v) {
      std::snprintf(buf, sizeof buf, "%.0f /s", v);
      return std::string(buf);
    };
    rows.push_back(
        {"enqueue, one at a time (1 connection)", num(EnqueueSingle(20000 / scale)), "-"});
    {
      auto f = Factory("bench-eb-" + RandomHex(4));
      auto b = Open(*f);
      rows.push_back({"enqueue, batches of 1000", num(EnqueueBatch(*b, "q", 200000 / scale, 1000)),
                      ">= 80,000 /s"});
    }
    for (int c : {1, 8, 64}) {
      std::string name = "drain, 1 worker, concurrency " + std::to_string(c);
      rows.push_back({name + " (default prefetch)", num(Drain(c, 100000 / scale)), ">= 40,000 /s"});
      rows.push_back(
          {name + ", --prefetch 256", num(Drain(c, 200000 / scale, 256)), ">= 40,000 /s"});
    }
    rows.push_back({"end to end (producer + worker c=8)", num(EndToEnd(100000 / scale)), "-"});
    auto [p50, p99] = PickupLatency(quick_ ? 200 : 2000);
    std::snprintf(buf, sizeof buf, "p50 %.2f ms, p99 %.2f ms", p50, p99);
    rows.push_back({"pickup latency at 100 tasks/s", buf, "p99 <= 2 ms"});
    for (int c : {1, 64}) {
      auto kb = IdleWorkerRssKb(c);
      std::snprintf(buf, sizeof buf, "%.1f MB", kb ? static_cast<double>(*kb) / 1024.0 : -1.0);
      rows.push_back({"idle worker RSS, concurrency " + std::to_string(c), buf, "<= 10 MB"});
    }
    std::printf("| measure | result | target |\n|---|---|---|\n");
    for (auto& r : rows)
      std::printf("| %s | %s | %s |\n", r.what.c_str(), r.value.c_str(), r.target.c_str());
  }

 private:
  std::string url_;
  bool quick_;
};

}  // namespace
}  // namespace ferry::bench

int main(int argc, char** argv) {
  bool quick = false;
  std::string url;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--quick")
      quick = true;
    else if (a == "--redis-url" && i + 1 < argc)
      url = argv[++i];
    else {
      std::fprintf(stderr, "usage: queue_bench [--quick] [--redis-url URL]\n");
      return 2;
    }
  }
  // Per-task info logs would measure the terminal, not Ferry.
  spdlog::set_level(spdlog::level::warn);
  std::unique_ptr<ferry::testing::RedisServer> server;
  if (url.empty()) {
    // Persistence as recommended for production (AOF, fsync every second).
    server = std::make_unique<ferry::testing::RedisServer>();
    url = server->url();
  }
  ferry::bench::Bench(url, quick).Run();
  return 0;
}
