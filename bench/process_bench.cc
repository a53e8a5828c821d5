// process_bench: what starting one program costs through RunProcess, the path of every shell and
// exec task and every workflow shell node. Runs `true` (a program that does nothing) N times on
// each of T threads and prints starts per second and the p50 / p99 / max latency of one start to
// its end. `--ballast MB` first touches that much heap, so fork copies the page tables of a
// process the size of a busy worker. docs/benchmarks.md has the figures and the command.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "process/process.h"

namespace {

using Clock = std::chrono::steady_clock;

double Pct(std::vector<double> v, double p) {
  if (v.empty()) return -1;
  std::sort(v.begin(), v.end());
  return v[static_cast<size_t>(p * static_cast<double>(v.size() - 1))];
}

int Usage() {
  std::fprintf(stderr,
               "usage: process_bench [--runs N (per thread, 1-100000)] [--threads T (1-64)]"
               " [--ballast MB (0-4096)]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  long runs = 500;
  long threads = 1;
  long ballast_mb = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (i + 1 >= argc) return Usage();
    char* end = nullptr;
    const long value = std::strtol(argv[++i], &end, 10);
    if (end == argv[i] || *end != '\0') return Usage();
    if (arg == "--runs" && value >= 1 && value <= 100000) {
      runs = value;
    } else if (arg == "--threads" && value >= 1 && value <= 64) {
      threads = value;
    } else if (arg == "--ballast" && value >= 0 && value <= 4096) {
      ballast_mb = value;
    } else {
      return Usage();
    }
  }
  std::vector<char> ballast(static_cast<size_t>(ballast_mb) << 20);
  std::memset(ballast.data(), 1, ballast.size());

  std::mutex mu;
  std::vector<double> latencies_ms;
  int failures = 0;
  const auto started = Clock::now();
  std::vector<std::thread> pool;
  for (long t = 0; t < threads; ++t) {
    pool.emplace_back([&] {
      std::vector<double> mine;
      int failed = 0;
      for (long i = 0; i < runs; ++i) {
        ferry::ProcessSpec spec;
        spec.argv = {"true"};
        const auto t0 = Clock::now();
        auto r = ferry::RunProcess(spec, {});
        const auto t1 = Clock::now();
        if (!r || r->exit_code != 0) ++failed;
        mine.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
      }
      std::lock_guard lock(mu);
      latencies_ms.insert(latencies_ms.end(), mine.begin(), mine.end());
      failures += failed;
    });
  }
  for (auto& th : pool) th.join();
  const double seconds = std::chrono::duration<double>(Clock::now() - started).count();
  std::printf(
      "threads %ld, runs %zu, ballast %ld MB: %.0f starts/s; start to end p50 %.2f ms, "
      "p99 %.2f ms, max %.2f ms; failures %d\n",
      threads, latencies_ms.size(), ballast_mb, static_cast<double>(latencies_ms.size()) / seconds,
      Pct(latencies_ms, 0.5), Pct(latencies_ms, 0.99), Pct(latencies_ms, 1.0), failures);
  return failures == 0 ? 0 : 1;
}
