// One task per request: tasks/s through POST /api/v1/tasks from N concurrent HTTP clients, each
// on its own keep-alive connection (TCP_NODELAY, as curl sets it; a bearer token on every
// request), against `ferry server start` running as its own process. Give --ferry twice to
// compare two builds in one run: the two binaries alternate phase by phase (which goes first
// alternates every round), each against its own fresh stack (FerryStack: private redis-server
// with AOF on, SQLite store), and the table gives each round's ratio B/A.
//
// Per phase: each client sends one request first (the connection is then open, as a long-lived
// producer's is), then the clients take tasks from one shared counter until --tasks are sent or
// --seconds pass. Latency is each request's round trip; "server CPU" is the `ferry server`
// process's CPU time per task (Redis is another process). Every phase is bounded in count and in
// time, and only 127.0.0.1 is spoken to.
//
//   build/default/bench/submit_bench [--ferry PATH [--ferry PATH]] [--rounds 3] [--tasks 10000]
//       [--clients 1,4,16,64] [--seconds 60] [--route tasks|healthz] [--connection keep-alive|new]
//
// --route healthz sends GET /healthz instead (no token check, no Redis): the floor of one HTTP
// round trip on this machine. --connection new opens a connection per request, as a client
// without keep-alive does.
#include <fmt/format.h>
#include <httplib.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.h"
#include "ferry_stack.h"
#include "harness.h"

namespace ferry::bench {
namespace {

using Clock = std::chrono::steady_clock;

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "submit_bench: %s\n", what.c_str());
  std::exit(1);
}

struct Options {
  std::vector<std::string> ferry;
  int rounds = 3;
  int tasks = 10'000;
  std::vector<int> clients = {1};
  int seconds = 60;
  bool healthz = false;          // GET /healthz instead: the server's HTTP floor, no Redis
  bool new_connections = false;  // a connection per request, as a client without keep-alive
};

struct PhaseResult {
  double per_second = 0;
  double p50_ms = 0;
  double p99_ms = 0;
  double server_cpu_us = 0;  // per task
  int sent = 0;
};

// The body every request sends: a no-op task with a small payload, as a producer would send.
std::string TaskBody(int i) {
  return fmt::format(R"({{"kind":"noop","payload":{{"order":{},"note":"submit bench"}}}})", i);
}

httplib::Result Send(httplib::Client& client, int i, const Options& o) {
  if (o.healthz) return client.Get("/healthz");
  return client.Post("/api/v1/tasks", TaskBody(i), "application/json");
}
int Expected(const Options& o) { return o.healthz ? 200 : 201; }

PhaseResult Phase(FerryStack& stack, const std::string& token, int clients, const Options& o) {
  stack.redis().Cli({"FLUSHALL"});
  std::vector<std::unique_ptr<httplib::Client>> conns;
  for (int c = 0; c < clients; ++c) {
    auto client = std::make_unique<httplib::Client>("127.0.0.1", stack.port());
    client->set_keep_alive(!o.new_connections);
    client->set_tcp_nodelay(true);
    client->set_connection_timeout(5, 0);
    client->set_read_timeout(30, 0);
    client->set_bearer_token_auth(token.c_str());
    auto warm = Send(*client, -1, o);
    if (!warm || warm->status != Expected(o)) Die("warm-up request: " + stack.Stderr());
    conns.push_back(std::move(client));
  }
  std::atomic<int> next{0};
  std::mutex mu;
  std::vector<double> latencies;
  std::string failure;
  const auto deadline = Clock::now() + std::chrono::seconds(o.seconds);
  const double cpu0 = stack.ServerCpuSeconds();
  const auto t0 = Clock::now();
  {
    std::vector<std::jthread> threads;
    for (auto& conn : conns) {
      threads.emplace_back([&] {
        std::vector<double> mine;
        for (int i = next++; i < o.tasks && Clock::now() < deadline; i = next++) {
          const auto a = Clock::now();
          auto res = Send(*conn, i, o);
          mine.push_back(std::chrono::duration<double, std::milli>(Clock::now() - a).count());
          if (!res || res->status != Expected(o)) {
            std::lock_guard lock(mu);
            failure = res ? fmt::format("{}: {}", res->status, res->body)
                          : httplib::to_string(res.error());
            break;
          }
        }
        std::lock_guard lock(mu);
        latencies.insert(latencies.end(), mine.begin(), mine.end());
      });
    }
  }
  const double wall = std::chrono::duration<double>(Clock::now() - t0).count();
  if (!failure.empty()) Die("a request failed: " + failure);
  PhaseResult r;
  r.sent = static_cast<int>(latencies.size());
  r.per_second = r.sent / wall;
  r.p50_ms = Pct(latencies, 0.50);
  r.p99_ms = Pct(latencies, 0.99);
  r.server_cpu_us = (stack.ServerCpuSeconds() - cpu0) * 1e6 / r.sent;
  return r;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

std::string Each(const std::vector<double>& v, const char* format) {
  std::string s;
  for (double x : v) s += (s.empty() ? "" : ", ") + fmt::format(fmt::runtime(format), x);
  return s;
}

void Run(const Options& o) {
  // results[binary][clients] = one PhaseResult per round
  std::vector<std::map<int, std::vector<PhaseResult>>> results(o.ferry.size());
  for (int round = 0; round < o.rounds; ++round) {
    for (size_t k = 0; k < o.ferry.size(); ++k) {
      const size_t b = round % 2 == 0 ? k : o.ferry.size() - 1 - k;
      FerryStack stack({.ferry = o.ferry[b], .worker_concurrency = 0});
      const std::string token = stack.CreateToken("bench", "run");
      for (int clients : o.clients) {
        auto r = Phase(stack, token, clients, o);
        std::fprintf(stderr,
                     "round %d, %c, %d client(s): %.0f tasks/s, p50 %.2f ms, p99 %.2f ms, server "
                     "CPU %.0f µs/task (%d sent)\n",
                     round + 1, static_cast<char>('A' + b), clients, r.per_second, r.p50_ms,
                     r.p99_ms, r.server_cpu_us, r.sent);
        results[b][clients].push_back(r);
      }
      if (!stack.Running()) Die("the server exited: " + stack.Stderr());
    }
  }
  for (size_t b = 0; b < o.ferry.size(); ++b) {
    std::printf("%c: %s\n", static_cast<char>('A' + b), o.ferry[b].c_str());
  }
  std::printf("requests: %s, %s\n", o.healthz ? "GET /healthz" : "POST /api/v1/tasks",
              o.new_connections ? "a new connection per request" : "keep-alive connections");
  std::printf(
      "\n| build | clients | tasks/s, median of %d | each round | p50 ms | p99 ms | server CPU per "
      "task |\n|---|---|---|---|---|---|---|\n",
      o.rounds);
  auto pick = [](const std::vector<PhaseResult>& v, double PhaseResult::*field) {
    std::vector<double> out;
    for (const auto& r : v) out.push_back(r.*field);
    return out;
  };
  for (int clients : o.clients) {
    for (size_t b = 0; b < o.ferry.size(); ++b) {
      const auto& v = results[b][clients];
      const auto rates = pick(v, &PhaseResult::per_second);
      std::printf("| %c | %d | %.0f | %s | %.2f | %.2f | %.0f µs |\n", static_cast<char>('A' + b),
                  clients, Median(rates), Each(rates, "{:.0f}").c_str(),
                  Median(pick(v, &PhaseResult::p50_ms)), Median(pick(v, &PhaseResult::p99_ms)),
                  Median(pick(v, &PhaseResult::server_cpu_us)));
    }
  }
  if (o.ferry.size() == 2) {
    std::printf("\nB / A, tasks/s, round by round:\n");
    for (int clients : o.clients) {
      std::vector<double> ratios;
      for (size_t r = 0; r < results[0][clients].size(); ++r) {
        ratios.push_back(results[1][clients][r].per_second / results[0][clients][r].per_second);
      }
      std::printf("- %d client(s): %s (median %.2fx)\n", clients, Each(ratios, "{:.2f}x").c_str(),
                  Median(ratios));
    }
  }
}

}  // namespace
}  // namespace ferry::bench

int main(int argc, char** argv) {
  auto usage = [] {
    std::fprintf(stderr,
                 "usage: submit_bench [--ferry PATH [--ferry PATH]] [--rounds N (1-20)] "
                 "[--tasks N (1-1000000)] [--clients N,N,... (1-256 each)] [--seconds N "
                 "(1-600)] [--route tasks|healthz] [--connection keep-alive|new]\n");
    return 2;
  };
  ferry::bench::Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (i + 1 >= argc) return usage();
    const std::string v = argv[++i];
    auto number = [&](const std::string& text, int lo, int hi) {
      char* end = nullptr;
      const long n = std::strtol(text.c_str(), &end, 10);
      if (text.empty() || *end != '\0' || n < lo || n > hi) std::exit(usage());
      return static_cast<int>(n);
    };
    if (a == "--ferry") {
      if (o.ferry.size() == 2) return usage();
      o.ferry.push_back(v);
    } else if (a == "--rounds") {
      o.rounds = number(v, 1, 20);
    } else if (a == "--tasks") {
      o.tasks = number(v, 1, 1'000'000);
    } else if (a == "--seconds") {
      o.seconds = number(v, 1, 600);
    } else if (a == "--route") {
      if (v != "tasks" && v != "healthz") return usage();
      o.healthz = v == "healthz";
    } else if (a == "--connection") {
      if (v != "keep-alive" && v != "new") return usage();
      o.new_connections = v == "new";
    } else if (a == "--clients") {
      o.clients.clear();
      size_t start = 0;
      while (start <= v.size()) {
        const size_t comma = std::min(v.find(',', start), v.size());
        o.clients.push_back(number(v.substr(start, comma - start), 1, 256));
        start = comma + 1;
      }
    } else {
      return usage();
    }
  }
  if (o.ferry.empty()) o.ferry.push_back(ferry::testing::FerryBinary());
  spdlog::set_level(spdlog::level::warn);
  ferry::bench::Run(o);
  return 0;
}
