// Task submission from a program that is not C++: tasks/s submitted by one HTTP client (one
// keep-alive connection, a bearer token, as a real client) through POST /api/v1/tasks/batch and
// through POST /api/v1/tasks, next to the C++ API's Broker::SubmitBatch, all in one run against
// one private redis-server (AOF on, as in production). The phases alternate for --rounds rounds
// (which batch path goes first alternates), Redis is emptied before each phase and its AOF
// rewrite is off, so every phase meets the same Redis. Prints a Markdown
// table for docs/benchmarks.md. Every phase is bounded in task count.
//
//   build/default/bench/batch_bench [--quick] [--rounds N]
#include <fmt/format.h>
#include <httplib.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "api/http_util.h"
#include "api/server.h"
#include "broker/broker.h"
#include "core/crypto.h"
#include "core/ids.h"
#include "core/json.h"
#include "harness.h"
#include "service/scopes.h"
#include "service/task_submission.h"
#include "store/store.h"

namespace ferry::bench {
namespace {

using Clock = std::chrono::steady_clock;

[[noreturn]] void Die(const std::string& what, const std::string& why) {
  std::fprintf(stderr, "batch_bench: %s: %s\n", what.c_str(), why.c_str());
  std::exit(1);
}

template <typename T>
T Must(Result<T> r, const std::string& what) {
  if (!r) Die(what, r.error().ToString());
  return std::move(*r);
}

double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// CPU seconds this process used so far (every thread: the client, the API server's threads).
// Redis runs in its own process, so a phase's CPU here is what Ferry's side costs, which the
// load of a shared machine moves far less than the wall-clock rate.
double ProcessCpuSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  auto s = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
  };
  return s(u.ru_utime) + s(u.ru_stime);
}

// A phase's result: tasks per wall-clock second, and this process's CPU microseconds per task.
struct Rate {
  double per_second = 0;
  double cpu_us_per_task = 0;
};

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// The tasks every phase submits: no-op tasks with a small payload, as a producer would send.
Json TaskJson(size_t i) {
  return Json{{"kind", "noop"}, {"payload", {{"order", i}, {"note", "batch bench"}}}};
}

class Bench {
 public:
  explicit Bench(bool quick) : quick_(quick) {
    stores_ = Must(MakeStoreFactory((dir_.path() / "ferry.db").string()), "store factory");
    admin_ = Must(stores_->Open(), "open store");
    token_ = service::NewApiTokenSecret();
    if (auto st = admin_->CreateApiToken("bench", Sha256Hex(token_), {"run"}); !st) {
      Die("create token", st.error().ToString());
    }
    // AOF stays on (as in production), but its background rewrite, which forks Redis at
    // moments that fall in one phase or another, is off: each phase should meet the same Redis.
    redis_.Cli({"CONFIG", "SET", "auto-aof-rewrite-percentage", "0"});
    BrokerOptions bo;
    bo.redis_url = redis_.url();
    bo.prefix = "bench-batch";
    brokers_ = MakeRedisBrokerFactory(bo);
    broker_ = Must(brokers_->Open(), "open broker");
    api::ApiServerOptions ao;
    ao.port = 0;
    ao.store_factory = stores_.get();
    ao.broker_factory = brokers_.get();
    ao.threads = 4;
    server_ = std::make_unique<api::ApiServer>(ao);
    port_ = Must(server_->Start(), "start API server");
  }
  ~Bench() { server_->Stop(); }

  size_t batch_tasks() const { return quick_ ? 10'000 : 50'000; }
  size_t single_tasks() const { return quick_ ? 2'000 : 10'000; }

  // The C++ API: SubmitBatch with batches of service::kMaxBatchTasks.
  Rate CppBatch() {
    Flush();
    std::vector<SubmitRequest> reqs;
    for (size_t i = 0; i < service::kMaxBatchTasks; ++i) {
      SubmitRequest r;
      r.kind = "noop";
      r.payload = TaskJson(i)["payload"];
      reqs.push_back(std::move(r));
    }
    const size_t n = batch_tasks();
    const double cpu0 = ProcessCpuSeconds();
    auto t0 = Clock::now();
    for (size_t done = 0; done < n; done += reqs.size()) {
      Must(broker_->SubmitBatch(reqs), "C++ SubmitBatch");
    }
    return Done(n, t0, cpu0);
  }

  // One HTTP client, batches of service::kMaxBatchTasks through POST /api/v1/tasks/batch.
  Rate HttpBatch() {
    Flush();
    Json tasks = Json::array();
    for (size_t i = 0; i < service::kMaxBatchTasks; ++i) tasks.push_back(TaskJson(i));
    const std::string body = DumpJson(Json{{"tasks", tasks}});
    auto client = Client();
    const size_t n = batch_tasks();
    const double cpu0 = ProcessCpuSeconds();
    auto t0 = Clock::now();
    for (size_t done = 0; done < n; done += service::kMaxBatchTasks) {
      auto res = client->Post("/api/v1/tasks/batch", body, "application/json");
      if (!res || res->status != 201)
        Die("POST /api/v1/tasks/batch", res ? res->body : "no answer");
    }
    return Done(n, t0, cpu0);
  }

  // One HTTP client, one task per POST /api/v1/tasks, on one keep-alive connection.
  Rate HttpSingle() {
    Flush();
    const std::string body = DumpJson(TaskJson(1));
    auto client = Client();
    const size_t n = single_tasks();
    const double cpu0 = ProcessCpuSeconds();
    auto t0 = Clock::now();
    for (size_t i = 0; i < n; ++i) {
      auto res = client->Post("/api/v1/tasks", body, "application/json");
      if (!res || res->status != 201) Die("POST /api/v1/tasks", res ? res->body : "no answer");
    }
    return Done(n, t0, cpu0);
  }

 private:
  static Rate Done(size_t n, Clock::time_point t0, double cpu0) {
    const double wall = Seconds(t0, Clock::now());
    const double tasks = static_cast<double>(n);
    return Rate{tasks / wall, (ProcessCpuSeconds() - cpu0) * 1e6 / tasks};
  }

  std::unique_ptr<httplib::Client> Client() {
    auto c = std::make_unique<httplib::Client>("127.0.0.1", port_);
    c->set_keep_alive(true);
    // As curl and most clients do: without it, the request body waits for the ACK of the head
    // (Nagle) and the server's delayed ACK adds ~40 ms to every request.
    c->set_tcp_nodelay(true);
    c->set_read_timeout(30, 0);
    c->set_bearer_token_auth(token_.c_str());
    return c;
  }
  void Flush() { redis_.Cli({"FLUSHALL"}); }

  const bool quick_;
  testing::TempDir dir_;
  testing::RedisServer redis_;
  std::unique_ptr<StoreFactory> stores_;
  std::unique_ptr<Store> admin_;
  std::string token_;
  std::unique_ptr<BrokerFactory> brokers_;
  std::unique_ptr<Broker> broker_;
  std::unique_ptr<api::ApiServer> server_;
  int port_ = 0;
};

}  // namespace
}  // namespace ferry::bench

int main(int argc, char** argv) {
  using namespace ferry::bench;
  bool quick = false;
  int rounds = 3;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--quick") == 0) {
      quick = true;
    } else if (std::strcmp(argv[i], "--rounds") == 0 && i + 1 < argc) {
      rounds = std::max(1, std::min(20, std::atoi(argv[++i])));
    } else {
      std::fprintf(stderr, "usage: batch_bench [--quick] [--rounds N (1-20)]\n");
      return 2;
    }
  }
  spdlog::set_level(spdlog::level::warn);
  Bench bench(quick);
  std::vector<Rate> cpp, batch, single;
  for (int r = 0; r < rounds; ++r) {
    // Alternate which batch path goes first, so neither always meets a warmer machine.
    if (r % 2 == 0) {
      cpp.push_back(bench.CppBatch());
      batch.push_back(bench.HttpBatch());
    } else {
      batch.push_back(bench.HttpBatch());
      cpp.push_back(bench.CppBatch());
    }
    single.push_back(bench.HttpSingle());
    std::fprintf(stderr, "round %d: C++ batch %.0f/s, HTTP batch %.0f/s, HTTP single %.0f/s\n",
                 r + 1, cpp.back().per_second, batch.back().per_second, single.back().per_second);
  }
  auto rates = [](const std::vector<Rate>& v) {
    std::vector<double> out;
    for (const auto& x : v) out.push_back(x.per_second);
    return out;
  };
  auto cpu = [](const std::vector<Rate>& v) {
    std::vector<double> out;
    for (const auto& x : v) out.push_back(x.cpu_us_per_task);
    return Median(out);
  };
  auto all = [](const std::vector<double>& v) {
    std::string s;
    for (double x : v) s += (s.empty() ? "" : ", ") + fmt::format("{:.0f}", x);
    return s;
  };
  std::vector<double> ratios;
  for (size_t i = 0; i < cpp.size(); ++i) {
    ratios.push_back(100 * batch[i].per_second / cpp[i].per_second);
  }
  const double c = Median(rates(cpp)), b = Median(rates(batch)), s = Median(rates(single));
  std::printf(
      "| submission path (one client; %zu tasks per batch phase, %zu single) | tasks/s, median "
      "of %d | each round | Ferry-side CPU per task (median) |\n|---|---|---|---|\n",
      bench.batch_tasks(), bench.single_tasks(), rounds);
  std::printf("| C++ API, `Broker::SubmitBatch`, batches of %zu | %.0f | %s | %.1f µs |\n",
              ferry::service::kMaxBatchTasks, c, all(rates(cpp)).c_str(), cpu(cpp));
  std::printf("| HTTP, `POST /api/v1/tasks/batch`, batches of %zu | %.0f | %s | %.1f µs |\n",
              ferry::service::kMaxBatchTasks, b, all(rates(batch)).c_str(), cpu(batch));
  std::printf("| HTTP, `POST /api/v1/tasks`, one keep-alive connection | %.0f | %s | %.1f µs |\n",
              s, all(rates(single)).c_str(), cpu(single));
  std::printf("\nHTTP batch / C++ batch, round by round: %s %% (median %.0f %%)\n",
              all(ratios).c_str(), Median(ratios));
  return 0;
}
