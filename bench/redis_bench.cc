// Redis deployment benchmark: the drain rate with TLS against plain TCP, and with 1, 2 and 3
// Redis Cluster shards, each measured back to back in alternating rounds on private servers of
// this machine (tests/support). Prints Markdown tables for docs/benchmarks.md, with the CPU
// each part used.
//
//   build/default/bench/redis_bench [--only tls|shards] [--rounds N] [--tasks N]
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "broker/broker.h"
#include "core/ids.h"
#include "harness.h"
#include "redis_topology.h"
#include "worker/handler.h"
#include "worker/worker.h"

namespace ferry::bench {
namespace {

using Clock = std::chrono::steady_clock;
using testing::RedisCluster;
using testing::RedisNode;
using testing::TestCerts;

double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// CPU seconds (user + system) of a process, from /proc/<pid>/stat.
double ProcessCpu(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string text;
  std::getline(f, text);
  auto close = text.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream in(text.substr(close + 2));
  std::string field;
  double ticks = 0;
  for (int i = 3; i <= 15 && in >> field; ++i) {
    if (i == 14 || i == 15) ticks += std::stod(field);  // utime, stime
  }
  return ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
}

double SelfCpu() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

// Busy and total jiffies of the whole machine (/proc/stat "cpu").
std::pair<double, double> MachineJiffies() {
  std::ifstream f("/proc/stat");
  std::string cpu;
  f >> cpu;
  double v[8] = {};
  for (double& x : v) f >> x;
  double idle = v[3] + v[4];
  double total = 0;
  for (double x : v) total += x;
  return {total - idle, total};
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

struct DrainResult {
  double rate = 0;       // tasks per second
  double redis_cpu = 0;  // cores used by the redis-server processes
  double ferry_cpu = 0;  // cores used by this process (workers, producer)
  double machine = 0;    // share of the machine busy, 0..1
};

// Pre-fills `queues` with `n` no-op tasks in total, then starts one worker per queue list in
// `workers` (concurrency 8, prefetch 256) and measures how fast they drain it all.
DrainResult Drain(const BrokerOptions& base, const std::vector<std::string>& queues,
                  const std::vector<std::vector<std::string>>& workers, int n,
                  const std::vector<pid_t>& redis_pids) {
  BrokerOptions o = base;
  o.prefix = "bench-" + RandomHex(4);
  auto factory = MakeRedisBrokerFactory(o);
  auto broker = factory->Open();
  if (!broker) {
    std::fprintf(stderr, "cannot open broker: %s\n", broker.error().ToString().c_str());
    std::exit(1);
  }
  for (int done = 0; done < n;) {
    std::vector<SubmitRequest> batch;
    for (int i = 0; i < 1000 && done < n; ++i, ++done) {
      SubmitRequest r;
      r.kind = "noop";
      r.queue = queues[static_cast<size_t>(done) % queues.size()];
      r.max_attempts = 1;
      batch.push_back(std::move(r));
    }
    if (auto s = (*broker)->SubmitBatch(batch); !s) {
      std::fprintf(stderr, "submit: %s\n", s.error().ToString().c_str());
      std::exit(1);
    }
  }
  HandlerRegistry reg;
  reg.Register("noop", [](TaskContext&) -> HandlerResult { return Json(); });
  std::vector<std::unique_ptr<Worker>> running;
  double redis0 = 0;
  for (pid_t p : redis_pids) redis0 += ProcessCpu(p);
  const double self0 = SelfCpu();
  const auto machine0 = MachineJiffies();
  const auto t0 = Clock::now();
  for (const auto& qs : workers) {
    WorkerOptions wo;
    wo.broker = o;
    wo.queues = qs;
    wo.concurrency = 8;
    wo.prefetch = 256;
    auto w = MakeWorker(wo, reg, MakeRedisBrokerFactory(wo.broker));
    if (!w || !(*w)->Start()) std::exit(1);
    running.push_back(std::move(*w));
  }
  auto succeeded = [&] {
    int64_t total = 0;
    for (const auto& q : queues) {
      auto s = (*broker)->GetQueueStats(q);
      if (s) total += s->counters["succeeded"];
    }
    return total;
  };
  const auto deadline = t0 + std::chrono::seconds(120);
  int64_t done = 0;
  while (Clock::now() < deadline && (done = succeeded()) < n) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  const auto t1 = Clock::now();
  const double wall = Seconds(t0, t1);
  DrainResult r;
  r.rate = static_cast<double>(done) / wall;
  double redis1 = 0;
  for (pid_t p : redis_pids) redis1 += ProcessCpu(p);
  r.redis_cpu = (redis1 - redis0) / wall;
  r.ferry_cpu = (SelfCpu() - self0) / wall;
  const auto machine1 = MachineJiffies();
  r.machine = (machine1.first - machine0.first) / std::max(1.0, machine1.second - machine0.second);
  for (auto& w : running) w->Stop();
  for (auto& w : running) w->Wait();
  return r;
}

std::string Row(const std::string& what, const std::vector<DrainResult>& rs) {
  std::vector<double> rate, redis, ferry, machine;
  for (const auto& r : rs) {
    rate.push_back(r.rate);
    redis.push_back(r.redis_cpu);
    ferry.push_back(r.ferry_cpu);
    machine.push_back(r.machine);
  }
  std::string all;
  for (double x : rate) all += (all.empty() ? "" : ", ") + std::to_string(static_cast<int>(x));
  char buf[512];
  std::snprintf(buf, sizeof buf, "| %s | %.0f /s | %s | %.2f | %.2f | %.0f %% |", what.c_str(),
                Median(rate), all.c_str(), Median(redis), Median(ferry), 100 * Median(machine));
  return buf;
}

void Tls(int rounds, int tasks) {
  TestCerts certs;
  RedisNode::Options po;
  RedisNode plain(po);
  RedisNode::Options to;
  to.tls = &certs;
  RedisNode tls(to);
  BrokerOptions p;
  p.redis_url = "redis://" + plain.address();
  BrokerOptions t;
  t.redis_url = "rediss://" + tls.address();
  t.redis.tls.ca_file = certs.ca();
  std::vector<DrainResult> plain_rs, tls_rs;
  for (int i = 0; i < rounds; ++i) {
    plain_rs.push_back(Drain(p, {"q"}, {{"q"}}, tasks, {plain.pid()}));
    tls_rs.push_back(Drain(t, {"q"}, {{"q"}}, tasks, {tls.pid()}));
  }
  std::printf(
      "\n%d tasks per round, %d alternating rounds, one worker (concurrency 8, prefetch "
      "256); median and every round:\n\n",
      tasks, rounds);
  std::printf(
      "| connection | drain rate (median) | each round | redis-server cores | Ferry "
      "cores | machine busy |\n|---|---|---|---|---|---|\n");
  std::printf("%s\n%s\n", Row("plain TCP", plain_rs).c_str(), Row("TLS", tls_rs).c_str());
  std::vector<double> pr, tr;
  for (auto& r : plain_rs) pr.push_back(r.rate);
  for (auto& r : tls_rs) tr.push_back(r.rate);
  std::printf("\nTLS / plain: %.2f\n", Median(tr) / Median(pr));
}

void Shards(int rounds, int tasks) {
  // Three queues, one worker each; the shards they live on are the only difference.
  std::vector<std::string> rows;
  std::vector<double> medians;
  std::vector<std::unique_ptr<RedisCluster>> clusters;
  std::vector<std::vector<std::string>> queue_sets;
  for (int shards = 1; shards <= 3; ++shards) {
    RedisCluster::Options o;
    o.masters = shards;
    o.replicas = 0;
    o.use_redis_cli_create = false;
    clusters.push_back(std::make_unique<RedisCluster>(o));
    auto owners = clusters.back()->SlotOwners();
    auto masters = clusters.back()->Masters();
    std::vector<std::string> qs;
    for (int k = 0; k < 3; ++k) {
      int want = static_cast<int>(masters[static_cast<size_t>(k % shards)]);
      for (int i = 0;; ++i) {
        std::string q = "s" + std::to_string(k) + "-" + std::to_string(i);
        if (owners[static_cast<size_t>(testing::TestKeySlot(q))] == want) {
          qs.push_back(q);
          break;
        }
      }
    }
    queue_sets.push_back(qs);
  }
  std::vector<std::vector<DrainResult>> results(3);
  for (int i = 0; i < rounds; ++i) {
    for (int s = 0; s < 3; ++s) {
      BrokerOptions b;
      b.redis_url = clusters[static_cast<size_t>(s)]->url();
      std::vector<pid_t> pids;
      for (size_t n = 0; n < clusters[static_cast<size_t>(s)]->nodes(); ++n) {
        pids.push_back(clusters[static_cast<size_t>(s)]->node(n).pid());
      }
      const auto& qs = queue_sets[static_cast<size_t>(s)];
      results[static_cast<size_t>(s)].push_back(
          Drain(b, qs, {{qs[0]}, {qs[1]}, {qs[2]}}, tasks, pids));
    }
  }
  std::printf(
      "\n%d tasks per round over 3 queues (3 workers, one per queue, concurrency 8, "
      "prefetch 256), %d alternating rounds:\n\n",
      tasks, rounds);
  std::printf(
      "| Redis Cluster masters | drain rate (median) | each round | redis-server cores | "
      "Ferry cores | machine busy |\n|---|---|---|---|---|---|\n");
  for (int s = 0; s < 3; ++s) {
    std::printf("%s\n", Row(std::to_string(s + 1), results[static_cast<size_t>(s)]).c_str());
  }
  BrokerOptions single;
  RedisNode plain(RedisNode::Options{});
  single.redis_url = "redis://" + plain.address();
  std::vector<DrainResult> one;
  for (int i = 0; i < rounds; ++i) {
    one.push_back(
        Drain(single, {"s0", "s1", "s2"}, {{"s0"}, {"s1"}, {"s2"}}, tasks, {plain.pid()}));
  }
  std::printf("%s\n", Row("(no cluster: one server, redis://)", one).c_str());
}

}  // namespace
}  // namespace ferry::bench

int main(int argc, char** argv) {
  std::string only;
  int rounds = 3;
  int tasks = 30000;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--only" && i + 1 < argc) {
      only = argv[++i];
    } else if (a == "--rounds" && i + 1 < argc) {
      rounds = std::max(1, std::atoi(argv[++i]));
    } else if (a == "--tasks" && i + 1 < argc) {
      tasks = std::max(100, std::atoi(argv[++i]));
    } else {
      std::fprintf(stderr, "usage: redis_bench [--only tls|shards] [--rounds N] [--tasks N]\n");
      return 2;
    }
  }
  spdlog::set_level(spdlog::level::warn);
  if (only.empty() || only == "tls") ferry::bench::Tls(rounds, tasks);
  if (only.empty() || only == "shards") ferry::bench::Shards(rounds, tasks);
  return 0;
}
