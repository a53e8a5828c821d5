// Producers over HTTP, one item per request, against `ferry server start` and `ferry worker start`
// running as their own processes: how the submission rate, its latency and (with workers) the
// rate at which the items are done change with the number of concurrent producers and of worker
// processes. Give --ferry twice to compare two builds in one run: the binaries alternate (which
// goes first alternates every round), each against a fresh stack of its own (FerryStack: private
// redis-server with AOF on, SQLite store), and the table gives each round's ratio B/A.
//
// Routes (--route): `tasks`, POST /api/v1/tasks with a no-op task; `runs`, POST /api/v1/runs of
// the benchmarks' one-node workflow; `healthz`, GET /healthz (no token, no Redis: the floor of
// one HTTP round trip). Each producer is one connection (keep-alive, TCP_NODELAY, as curl sets
// it; a bearer token on every request; --connection new opens one per request) and sends one
// warm-up request before the clock starts; then the producers take items from one shared counter
// until --count are sent or --seconds pass. With --workers N > 0, the phase ends when every item
// sent is done (queue counters, or run counts, read every 10 ms through the API), and "done/s"
// is items per second from the first request to that moment. "Server CPU" and "worker CPU" are
// the processes' CPU time per item over the whole phase (Redis is another process). Every phase
// is bounded in count and in time, and only 127.0.0.1 is spoken to.
//
//   build/default/bench/submit_bench [--ferry PATH [--ferry PATH]] [--rounds 3] [--count 10000]
//       [--clients 1,4,16,64] [--workers 0,1,2,4] [--worker-concurrency 8] [--seconds 60]
//       [--route tasks|runs|healthz] [--connection keep-alive|new] [--store sqlite|postgres]
//
// --store postgres: the stacks' store is a fresh database of one private PostgreSQL server (the
// test harness's: run as the `postgres` user, fsync off, so an upper bound for a durable one).
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
#include <utility>
#include <vector>

#include "bench_util.h"
#include "core/json.h"
#include "ferry_stack.h"
#include "harness.h"

namespace ferry::bench {
namespace {

using Clock = std::chrono::steady_clock;

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "submit_bench: %s\n", what.c_str());
  std::exit(1);
}

enum class Route { kTasks, kRuns, kHealthz };

struct Options {
  std::vector<std::string> ferry;
  int rounds = 3;
  int count = 10'000;
  std::vector<int> clients = {1};
  std::vector<int> workers = {0};
  int worker_concurrency = 8;
  int seconds = 60;
  Route route = Route::kTasks;
  bool new_connections = false;
  bool postgres = false;  // the store: a PostgreSQL database instead of a SQLite file
};

struct PhaseResult {
  double per_second = 0;       // submitted
  double done_per_second = 0;  // with workers: done, from the first request to the last end
  double p50_ms = 0;
  double p99_ms = 0;
  double server_cpu_us = 0;  // per item
  double worker_cpu_us = 0;  // per item, every worker process
  int sent = 0;
};

httplib::Result Send(httplib::Client& client, int i, const Options& o) {
  switch (o.route) {
    case Route::kHealthz:
      return client.Get("/healthz");
    case Route::kRuns:
      return client.Post("/api/v1/runs", R"({"workflow":"bench"})", "application/json");
    case Route::kTasks:
      break;
  }
  return client.Post(
      "/api/v1/tasks",
      fmt::format(R"({{"kind":"noop","payload":{{"order":{},"note":"submit bench"}}}})", i),
      "application/json");
}
int Expected(const Options& o) { return o.route == Route::kHealthz ? 200 : 201; }

std::unique_ptr<httplib::Client> Connect(int port, const std::string& token, const Options& o) {
  auto client = std::make_unique<httplib::Client>("127.0.0.1", port);
  client->set_keep_alive(!o.new_connections);
  client->set_tcp_nodelay(true);
  client->set_connection_timeout(5, 0);
  client->set_read_timeout(30, 0);
  client->set_bearer_token_auth(token.c_str());
  return client;
}

// Items done so far (succeeded or failed), as the API reports them.
int64_t DoneSoFar(httplib::Client& client, const Options& o) {
  const bool runs = o.route == Route::kRuns;
  auto res = client.Get(runs ? "/api/v1/runs/counts" : "/api/v1/queues/default");
  if (!res || res->status != 200) Die("reading progress: " + (res ? res->body : "no answer"));
  const Json j = Json::parse(res->body);
  const Json& c = runs ? j["counts"] : j["queue"]["counters"];
  return c["succeeded"].get<int64_t>() + c["failed"].get<int64_t>();
}

PhaseResult Phase(FerryStack& stack, const std::string& token, int clients, int workers,
                  const Options& o) {
  // Without workers, each phase starts from an empty Redis (tasks pile up otherwise); a worker's
  // consumer group must survive, so with workers the counts are read as deltas.
  if (workers == 0 && o.route == Route::kTasks) stack.redis().Cli({"FLUSHALL"});
  auto progress = Connect(stack.port(), token, o);
  progress->set_keep_alive(true);
  const bool wait_done = workers > 0 && o.route != Route::kHealthz;
  const int64_t done0 = wait_done ? DoneSoFar(*progress, o) : 0;
  std::vector<std::unique_ptr<httplib::Client>> conns;
  for (int c = 0; c < clients; ++c) {
    auto client = Connect(stack.port(), token, o);
    auto warm = Send(*client, -1, o);
    if (!warm || warm->status != Expected(o)) Die("warm-up request: " + stack.Stderr());
    conns.push_back(std::move(client));
  }
  std::atomic<int> next{0};
  std::mutex mu;
  std::vector<double> latencies;
  std::string failure;
  const auto deadline = Clock::now() + std::chrono::seconds(o.seconds);
  const double server0 = stack.ServerCpuSeconds(), workers0 = stack.WorkerCpuSeconds();
  const auto t0 = Clock::now();
  {
    std::vector<std::jthread> threads;
    for (auto& conn : conns) {
      threads.emplace_back([&] {
        std::vector<double> mine;
        for (int i = next++; i < o.count && Clock::now() < deadline; i = next++) {
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
  const auto sent_at = Clock::now();
  if (!failure.empty()) Die("a request failed: " + failure);
  PhaseResult r;
  r.sent = static_cast<int>(latencies.size());
  r.per_second = r.sent / std::chrono::duration<double>(sent_at - t0).count();
  r.p50_ms = Pct(latencies, 0.50);
  r.p99_ms = Pct(latencies, 0.99);
  if (wait_done) {
    const int64_t expected = r.sent + clients;  // the warm-up requests too
    int64_t done = 0;
    while ((done = DoneSoFar(*progress, o) - done0) < expected && Clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (done < expected) {
      Die(fmt::format("only {} of {} items done within {} s", done, expected, o.seconds));
    }
    r.done_per_second =
        static_cast<double>(expected) / std::chrono::duration<double>(Clock::now() - t0).count();
  }
  r.server_cpu_us = (stack.ServerCpuSeconds() - server0) * 1e6 / r.sent;
  r.worker_cpu_us = (stack.WorkerCpuSeconds() - workers0) * 1e6 / r.sent;
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

const char* RouteName(Route r) {
  switch (r) {
    case Route::kHealthz:
      return "GET /healthz";
    case Route::kRuns:
      return "POST /api/v1/runs (one-node workflow)";
    case Route::kTasks:
      break;
  }
  return "POST /api/v1/tasks (no-op task)";
}

void Run(const Options& o) {
  std::unique_ptr<testing::PostgresServer> pg;
  if (o.postgres) {
    if (!testing::PostgresServer::Available()) Die("no PostgreSQL server binaries or user here");
    pg = std::make_unique<testing::PostgresServer>();
  }
  // results[binary][{workers, clients}] = one PhaseResult per round
  using Key = std::pair<int, int>;
  std::vector<std::map<Key, std::vector<PhaseResult>>> results(o.ferry.size());
  for (int round = 0; round < o.rounds; ++round) {
    for (int workers : o.workers) {
      for (size_t k = 0; k < o.ferry.size(); ++k) {
        const size_t b = round % 2 == 0 ? k : o.ferry.size() - 1 - k;
        FerryStack stack({.ferry = o.ferry[b],
                          .workers = workers,
                          .worker_concurrency = o.worker_concurrency,
                          .postgres = pg.get()});
        const std::string token = stack.CreateToken("bench", "run,read");
        for (int clients : o.clients) {
          auto r = Phase(stack, token, clients, workers, o);
          std::fprintf(stderr,
                       "round %d, %c, %d worker(s), %d client(s): %.0f/s sent, %.0f/s done, p50 "
                       "%.2f ms, p99 %.2f ms, server CPU %.0f µs, workers' CPU %.0f µs per item "
                       "(%d sent)\n",
                       round + 1, static_cast<char>('A' + b), workers, clients, r.per_second,
                       r.done_per_second, r.p50_ms, r.p99_ms, r.server_cpu_us, r.worker_cpu_us,
                       r.sent);
          results[b][{workers, clients}].push_back(r);
        }
        if (!stack.Running()) Die("a server or worker exited: " + stack.Stderr());
      }
    }
  }
  for (size_t b = 0; b < o.ferry.size(); ++b) {
    std::printf("%c: %s\n", static_cast<char>('A' + b), o.ferry[b].c_str());
  }
  std::printf("requests: %s, %s; workers with --concurrency %d; store: %s\n", RouteName(o.route),
              o.new_connections ? "a new connection per request" : "keep-alive connections",
              o.worker_concurrency, o.postgres ? "PostgreSQL (fsync off)" : "SQLite");
  std::printf(
      "\n| build | worker processes | producers | sent/s, median of %d | each round | done/s | "
      "p50 ms | p99 ms | server CPU per item | workers' CPU per item |\n"
      "|---|---|---|---|---|---|---|---|---|---|\n",
      o.rounds);
  auto pick = [](const std::vector<PhaseResult>& v, double PhaseResult::*field) {
    std::vector<double> out;
    for (const auto& r : v) out.push_back(r.*field);
    return out;
  };
  for (int workers : o.workers) {
    for (int clients : o.clients) {
      for (size_t b = 0; b < o.ferry.size(); ++b) {
        const auto& v = results[b][{workers, clients}];
        const auto rates = pick(v, &PhaseResult::per_second);
        const std::string done =
            workers > 0 ? fmt::format("{:.0f}", Median(pick(v, &PhaseResult::done_per_second)))
                        : "-";
        std::printf("| %c | %d | %d | %.0f | %s | %s | %.2f | %.2f | %.0f µs | %.0f µs |\n",
                    static_cast<char>('A' + b), workers, clients, Median(rates),
                    Each(rates, "{:.0f}").c_str(), done.c_str(),
                    Median(pick(v, &PhaseResult::p50_ms)), Median(pick(v, &PhaseResult::p99_ms)),
                    Median(pick(v, &PhaseResult::server_cpu_us)),
                    Median(pick(v, &PhaseResult::worker_cpu_us)));
      }
    }
  }
  if (o.ferry.size() == 2) {
    std::printf("\nB / A, round by round (sent/s; done/s with workers):\n");
    for (int workers : o.workers) {
      for (int clients : o.clients) {
        const auto& a = results[0][{workers, clients}];
        const auto& bb = results[1][{workers, clients}];
        std::vector<double> ratios;
        for (size_t r = 0; r < a.size() && r < bb.size(); ++r) {
          ratios.push_back(workers > 0 ? bb[r].done_per_second / a[r].done_per_second
                                       : bb[r].per_second / a[r].per_second);
        }
        std::printf("- %d worker(s), %d producer(s): %s (median %.2fx)\n", workers, clients,
                    Each(ratios, "{:.2f}x").c_str(), Median(ratios));
      }
    }
  }
}

}  // namespace
}  // namespace ferry::bench

int main(int argc, char** argv) {
  auto usage = [] {
    std::fprintf(stderr,
                 "usage: submit_bench [--ferry PATH [--ferry PATH]] [--rounds N (1-20)] [--count "
                 "N (1-1000000)] [--clients N,N,... (1-256 each)] [--workers N,N,... (0-16 each)] "
                 "[--worker-concurrency N (1-256)] [--seconds N (1-600)] [--route "
                 "tasks|runs|healthz] [--connection keep-alive|new] [--store sqlite|postgres]\n");
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
    auto list = [&](int lo, int hi) {
      std::vector<int> out;
      size_t start = 0;
      while (start <= v.size()) {
        const size_t comma = std::min(v.find(',', start), v.size());
        out.push_back(number(v.substr(start, comma - start), lo, hi));
        start = comma + 1;
      }
      return out;
    };
    if (a == "--ferry") {
      if (o.ferry.size() == 2) return usage();
      o.ferry.push_back(v);
    } else if (a == "--rounds") {
      o.rounds = number(v, 1, 20);
    } else if (a == "--count") {
      o.count = number(v, 1, 1'000'000);
    } else if (a == "--seconds") {
      o.seconds = number(v, 1, 600);
    } else if (a == "--clients") {
      o.clients = list(1, 256);
    } else if (a == "--workers") {
      o.workers = list(0, 16);
    } else if (a == "--worker-concurrency") {
      o.worker_concurrency = number(v, 1, 256);
    } else if (a == "--route") {
      using ferry::bench::Route;
      if (v == "tasks") {
        o.route = Route::kTasks;
      } else if (v == "runs") {
        o.route = Route::kRuns;
      } else if (v == "healthz") {
        o.route = Route::kHealthz;
      } else {
        return usage();
      }
    } else if (a == "--store") {
      if (v != "sqlite" && v != "postgres") return usage();
      o.postgres = v == "postgres";
    } else if (a == "--connection") {
      if (v != "keep-alive" && v != "new") return usage();
      o.new_connections = v == "new";
    } else {
      return usage();
    }
  }
  if (o.ferry.empty()) o.ferry.push_back(ferry::testing::FerryBinary());
  spdlog::set_level(spdlog::level::warn);
  ferry::bench::Run(o);
  return 0;
}
