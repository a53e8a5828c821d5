// Workflow-layer benchmark: signed webhook -> 202 latency at a steady rate, webhook -> run
// succeeded latency, and one-node runs per second on SQLite and on PostgreSQL, with a breakdown of
// where StartRun spends its time. Everything runs in this process against a private redis-server
// (AOF on, as in production), a SQLite store in a temporary directory and, for the PostgreSQL
// phase, the test harness's PostgreSQL server. Prints Markdown tables for docs/benchmarks.md.
// Every phase is bounded in count and in time. The PostgreSQL server is the harness's (fsync and
// synchronous_commit off), so its figures are an upper bound for a durable production setup.
//
//   build/default/bench/run_bench [--quick] [--only webhook|latency|sqlite|postgres]
#include <fmt/format.h>
#include <httplib.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <numeric>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "api/http_util.h"
#include "api/server.h"
#include "bench_util.h"
#include "broker/broker.h"
#include "core/ids.h"
#include "core/json.h"
#include "engine/definition.h"
#include "engine/http_client.h"
#include "engine/ingest.h"
#include "engine/secrets.h"
#include "harness.h"
#include "postgres.h"
#include "runs/apply.h"
#include "runs/handler.h"
#include "runs/runs.h"
#include "store/sql_counters.h"
#include "store/store.h"
#include "worker/handler.h"
#include "worker/worker.h"

namespace ferry::bench {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// One lua node returning a constant (no process spawn), started by an hmac-signed webhook.
constexpr std::string_view kWorkflowName = "bench";

[[noreturn]] void Die(const std::string& what, const Error& e) {
  std::fprintf(stderr, "run_bench: %s: %s\n", what.c_str(), e.ToString().c_str());
  std::exit(1);
}

template <typename T>
T Must(Result<T> r, const std::string& what) {
  if (!r) Die(what, r.error());
  return std::move(*r);
}

double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

double Ms(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

double Mean(const std::vector<double>& v) {
  return v.empty() ? -1 : std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
}

// CPU time of this process (user + system), seconds.
double ProcessCpuSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  auto sec = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
  };
  return sec(u.ru_utime) + sec(u.ru_stime);
}

// What the CPUs did between construction and Describe(): this process's cores in use and how
// busy the whole machine was.
class CpuMeter {
 public:
  CpuMeter() : t0_(Clock::now()), cpu0_(ProcessCpuSeconds()), machine0_(MachineJiffies()) {}
  // With `runs` > 0, also the CPU milliseconds per run: this process's, and the whole machine's.
  std::string Describe(int64_t runs = 0) const {
    const double wall = std::chrono::duration<double>(Clock::now() - t0_).count();
    const double cpu = ProcessCpuSeconds() - cpu0_;
    auto m = MachineJiffies();
    const double total = m.second - machine0_.second;
    const double busy = total > 0 ? (m.first - machine0_.first) / total : -1;
    std::string out = fmt::format("this process {:.2f} cores, machine {:.0f}% busy ({} cores)",
                                  cpu / wall, 100 * busy, std::thread::hardware_concurrency());
    if (runs > 0) {
      const double machine_cpu = busy * wall * std::thread::hardware_concurrency();
      out += fmt::format("; CPU per run {:.2f} ms in this process, {:.2f} ms machine-wide",
                         1000 * cpu / static_cast<double>(runs),
                         1000 * machine_cpu / static_cast<double>(runs));
    }
    return out;
  }

 private:
  Clock::time_point t0_;
  double cpu0_;
  std::pair<double, double> machine0_;
};

struct Row {
  std::string what;
  std::string value;
  std::string target;
};

// The in-process stack of one phase: a store, the workflow applied, a worker running `ferry.run`
// and, when asked, the HTTP API. Torn down in reverse order by the destructor.
class Stack {
 public:
  struct Options {
    std::string store_url;
    std::string redis_url;
    int concurrency = 4;
    int prefetch = -1;
    bool api = false;
  };

  explicit Stack(const Options& o) : secrets_({{"BENCH_WEBHOOK", secret_}}) {
    stores_ = Must(MakeStoreFactory(o.store_url), "store factory");
    store_ = Must(stores_->Open(), "open store " + stores_->Describe());
    runs::ApplySourceRequest apply;
    apply.source = std::string(bench::kWorkflow);
    apply.author = "run_bench";
    Must(runs::ApplyWorkflowSource(*store_, apply, nullptr), "apply workflow");

    BrokerOptions bo;
    bo.redis_url = o.redis_url;
    bo.prefix = "bench-run-" + RandomHex(4);
    brokers_ = MakeRedisBrokerFactory(bo);
    broker_ = Must(brokers_->Open(), "open broker");

    runs::RunHandlerOptions rho;
    rho.secrets = &secrets_;
    runs::RegisterRunHandler(registry_, *stores_, *brokers_, rho);
    WorkerOptions wo;
    wo.broker = brokers_->options();
    wo.concurrency = o.concurrency;
    wo.prefetch = o.prefetch;
    wo.on_task_end = [this](const TaskObservation& t) {
      std::lock_guard lock(mu_);
      handler_ms_.push_back(static_cast<double>(t.duration_ms));
      wait_ms_.push_back(static_cast<double>(t.wait_ms));
    };
    worker_ = Must(MakeWorker(wo, registry_, MakeRedisBrokerFactory(wo.broker)), "make worker");
    if (auto st = worker_->Start(); !st) Die("start worker", st.error());

    if (o.api) {
      api::ApiServerOptions ao;
      ao.host = "127.0.0.1";
      ao.port = 0;
      ao.require_auth = false;  // webhooks never take bearer tokens; this only skips token setup
      ao.dev_mode = true;
      ao.store_factory = stores_.get();
      ao.broker_factory = brokers_.get();
      ao.secrets = &secrets_;
      server_ = std::make_unique<api::ApiServer>(ao);
      port_ = Must(server_->Start(), "start API server");
    }
  }
  ~Stack() {
    if (server_) server_->Stop();
    worker_->Stop();
    worker_->Wait();
  }
  Stack(const Stack&) = delete;
  Stack& operator=(const Stack&) = delete;

  Store& store() { return *store_; }
  Broker& broker() { return *broker_; }
  StoreFactory& stores() { return *stores_; }
  BrokerFactory& brokers() { return *brokers_; }
  const std::string& secret() const { return secret_; }
  int port() const { return port_; }

  // Runs that reached an end, by status name.
  std::map<RunStatus, int64_t> Counts() { return Must(store_->CountRunsByStatus(), "count runs"); }
  int64_t Finished() {
    auto c = Counts();
    return c[RunStatus::kSucceeded] + c[RunStatus::kFailed] + c[RunStatus::kCancelled];
  }
  // Polls until `n` runs ended or `timeout` passed; returns when that happened.
  Clock::time_point WaitFinished(int64_t n, milliseconds timeout, milliseconds poll) {
    auto deadline = Clock::now() + timeout;
    while (Finished() < n && Clock::now() < deadline) std::this_thread::sleep_for(poll);
    return Clock::now();
  }
  // Handler run time and queue wait per execution so far (ms), as the worker saw them.
  std::pair<std::vector<double>, std::vector<double>> Observations() {
    std::lock_guard lock(mu_);
    return {handler_ms_, wait_ms_};
  }

 private:
  const std::string secret_ = RandomHex(16);
  engine::MapSecretResolver secrets_;
  std::unique_ptr<StoreFactory> stores_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<BrokerFactory> brokers_;
  std::unique_ptr<Broker> broker_;
  HandlerRegistry registry_;
  std::unique_ptr<Worker> worker_;
  std::unique_ptr<api::ApiServer> server_;
  int port_ = 0;
  std::mutex mu_;
  std::vector<double> handler_ms_;  // Guarded by mu_
  std::vector<double> wait_ms_;     // Guarded by mu_
};

class Bench {
 public:
  Bench(const testing::RedisServer& redis, bool quick, std::string only)
      : redis_(redis), quick_(quick), only_(std::move(only)) {}

  void Run() {
    if (Selected("webhook")) Webhook();
    if (Selected("latency")) Latency();
    if (Selected("sqlite")) {
      testing::TempDir dir;
      Throughput("SQLite", (dir.path() / "ferry.db").string(), 500, nullptr);
    }
    if (Selected("postgres")) {
      if (!testing::PostgresServer::Available()) {
        rows_.push_back({"runs/s, PostgreSQL", "skipped: no PostgreSQL here", ">= 1,000 /s"});
      } else {
        testing::PostgresServer pg;
        Throughput("PostgreSQL", pg.CreateDatabase(), 1000, &pg);
      }
    }
    std::printf("| measure | result | target |\n|---|---|---|\n");
    for (auto& r : rows_) {
      std::printf("| %s | %s | %s |\n", r.what.c_str(), r.value.c_str(), r.target.c_str());
    }
    if (!parts_.empty()) {
      std::printf(
          "\nWhere one StartRun goes (mean (p50) per call, sequential on an idle stack):\n\n");
      std::string rule = "|---|";
      for (size_t i = 0; i < part_backends_.size(); ++i) rule += "---|";
      std::printf("| part | %s |\n%s\n", Join(part_backends_, " | ").c_str(), rule.c_str());
      for (auto& [name, values] : parts_) {
        std::vector<std::string> cells;
        for (auto [mean, p50] : values) {
          cells.push_back(fmt::format("{:.0f} us ({:.0f})", mean, p50));
        }
        std::printf("| %s | %s |\n", name.c_str(), Join(cells, " | ").c_str());
      }
    }
  }

 private:
  bool Selected(const std::string& phase) const { return only_.empty() || only_ == phase; }
  int Scaled(int n) const { return quick_ ? std::max(1, n / 10) : n; }

  static std::string Join(const std::vector<std::string>& parts, const std::string& sep) {
    std::string out;
    for (const auto& p : parts) out += (out.empty() ? "" : sep) + p;
    return out;
  }

  // How a sender talks to the API.
  enum class Client {
    kKeepAliveNoDelay,  // one keep-alive connection, TCP_NODELAY (as curl and Go's net/http do)
    kKeepAliveNagle,    // one keep-alive connection, Nagle on (cpp-httplib's client default)
    kNewConnection,     // engine::PerformHttp: a libcurl handle, so a new connection, per request
  };

  // 1. Signed webhook -> 202 at a steady rate, the worker (concurrency 4) consuming the runs.
  // Latency is taken from each request's scheduled send time, so a slow answer that delays the
  // next request counts against the next one too (no coordinated omission).
  void Webhook() {
    Stack stack(
        {.store_url = SqlitePath(), .redis_url = redis_.url(), .concurrency = 4, .api = true});
    const int rate = 50;
    CpuMeter cpu;
    auto main = SteadyRate(stack, Scaled(1000), rate, Client::kKeepAliveNoDelay);
    rows_.push_back({"webhook -> 202 at 50/s, one keep-alive client with TCP_NODELAY, SQLite",
                     Describe(main), "p99 <= 5 ms"});
    rows_.push_back({"  CPU during that", cpu.Describe(), "-"});
    auto fresh = SteadyRate(stack, Scaled(500), rate, Client::kNewConnection);
    rows_.push_back({"webhook -> 202 at 50/s, new connection per request (libcurl PerformHttp)",
                     Describe(fresh), "p99 <= 5 ms"});
    auto nagle = SteadyRate(stack, Scaled(250), rate, Client::kKeepAliveNagle);
    rows_.push_back(
        {"webhook -> 202 at 50/s, one keep-alive client with Nagle on (httplib default)",
         Describe(nagle), "p99 <= 5 ms"});
    auto sent = main.accepted + fresh.accepted + nagle.accepted;
    stack.WaitFinished(sent, std::chrono::seconds(30), milliseconds(20));
    auto c = stack.Counts();
    rows_.push_back({"  runs those webhooks started (worker c=4)",
                     std::to_string(c[RunStatus::kSucceeded]) + " succeeded, " +
                         std::to_string(c[RunStatus::kFailed]) + " failed, " +
                         std::to_string(c[RunStatus::kPending] + c[RunStatus::kRunning]) +
                         " unfinished of " + std::to_string(sent),
                     "-"});
  }

  struct RateResult {
    std::vector<double> ms;
    int64_t accepted = 0;
    int errors = 0;
    double achieved_rate = 0;
  };

  std::string Describe(const RateResult& r) {
    return fmt::format("p50 {:.2f} ms, p99 {:.2f} ms", Pct(r.ms, 0.50), Pct(r.ms, 0.99)) + " (" +
           std::to_string(r.ms.size()) + " requests, " + fmt::format("{:.1f}/s", r.achieved_rate) +
           (r.errors ? ", " + std::to_string(r.errors) + " not 202" : "") + ")";
  }

  // A sender for one Client mode. Not thread-safe (one connection).
  class Sender {
   public:
    Sender(const Stack& stack, Client how)
        : stack_(stack), how_(how), client_("127.0.0.1", stack.port()) {
      client_.set_keep_alive(true);
      client_.set_tcp_nodelay(how == Client::kKeepAliveNoDelay);
      client_.set_read_timeout(std::chrono::seconds(10));
    }
    // Posts a freshly signed delivery; returns the status (0 when no answer) and the body.
    std::pair<int, std::string> Post(int seq) {
      const std::string path = "/hooks/" + std::string(kWorkflowName);
      Delivery d = Sign(stack_.secret(), seq);
      if (how_ != Client::kNewConnection) {
        httplib::Headers h(d.headers.begin(), d.headers.end());
        auto res = client_.Post(path, h, d.body, "application/json");
        if (!res) return {0, ""};
        return {res->status, res->body};
      }
      engine::HttpRequest req;
      req.method = "POST";
      req.url = "http://127.0.0.1:" + std::to_string(stack_.port()) + path;
      req.body = d.body;
      req.has_body = true;
      req.timeout = std::chrono::seconds(10);
      req.headers = d.headers;
      req.headers.emplace_back("Content-Type", "application/json");
      auto res = engine::PerformHttp(req, {});
      if (!res) return {0, ""};
      return {static_cast<int>(res->status), res->body};
    }

   private:
    const Stack& stack_;
    Client how_;
    httplib::Client client_;
  };

  RateResult SteadyRate(Stack& stack, int n, int rate, Client how) {
    Sender sender(stack, how);
    const auto period = std::chrono::microseconds(1000000 / rate);
    const auto t0 = Clock::now();
    // Bounded: the count, and twice the nominal duration plus 10 s.
    const auto deadline = t0 + 2 * n * period + std::chrono::seconds(10);
    RateResult r;
    int i = 0;
    for (; i < n && Clock::now() < deadline; ++i) {
      const auto scheduled = t0 + i * period;
      std::this_thread::sleep_until(scheduled);
      auto [status, body] = sender.Post(seq_++);
      r.ms.push_back(Ms(scheduled, Clock::now()));
      if (status == 202) {
        ++r.accepted;
      } else {
        ++r.errors;
      }
    }
    r.achieved_rate = i / Seconds(t0, Clock::now());
    return r;
  }

  // 2. Webhook -> run succeeded, sequential: send, then poll the store every 1 ms until the run
  // ended. Once per client mode, each on a fresh stack.
  void Latency() {
    Latency(Client::kKeepAliveNoDelay, "one keep-alive client with TCP_NODELAY");
    Latency(Client::kNewConnection, "new connection per request (libcurl)");
  }

  void Latency(Client how, const std::string& label) {
    Stack stack(
        {.store_url = SqlitePath(), .redis_url = redis_.url(), .concurrency = 4, .api = true});
    Sender sender(stack, how);
    const int n = Scaled(200);
    const auto deadline = Clock::now() + std::chrono::seconds(60);
    std::vector<double> done_ms, accept_ms;
    int failed = 0;
    for (int i = 0; i < n && Clock::now() < deadline; ++i) {
      const auto t0 = Clock::now();
      auto [status, answer] = sender.Post(seq_++);
      if (status != 202) {
        ++failed;
        continue;
      }
      accept_ms.push_back(Ms(t0, Clock::now()));
      auto body = ParseJson(answer);
      if (!body || !body->contains("run_id")) {
        ++failed;
        continue;
      }
      const std::string id = (*body)["run_id"].get<std::string>();
      const auto run_deadline = t0 + std::chrono::seconds(10);
      std::optional<RunStatus> end;
      while (Clock::now() < run_deadline) {
        auto run = Must(stack.store().GetRun(id), "get run");
        if (run && IsTerminal(run->status)) {
          end = run->status;
          break;
        }
        std::this_thread::sleep_for(milliseconds(1));
      }
      if (end == RunStatus::kSucceeded) {
        done_ms.push_back(Ms(t0, Clock::now()));
      } else {
        ++failed;
      }
    }
    auto [handler, wait] = stack.Observations();
    rows_.push_back(
        {"webhook -> run succeeded, one lua node, sequential, SQLite, " + label,
         fmt::format("p50 {:.2f} ms, p99 {:.2f} ms", Pct(done_ms, 0.50), Pct(done_ms, 0.99)) +
             " (" + std::to_string(done_ms.size()) + " runs" +
             (failed ? ", " + std::to_string(failed) + " failed or timed out" : "") + ")",
         "p50 <= 20 ms"});
    rows_.push_back({"  of which: 202 answer / queue wait / ferry.run handler",
                     fmt::format("p50 {:.2f} ms / ", Pct(accept_ms, 0.50)) +
                         fmt::format("p50 {:.0f} ms / p50 {:.0f} ms (worker's ms clock)",
                                     Pct(wait, 0.50), Pct(handler, 0.50)),
                     "-"});
  }

  // 3. Runs per second: producers call StartRun as fast as they can while one in-process worker
  // (concurrency 16, prefetch 16) executes; from the first submission to the last run ending.
  void Throughput(const std::string& backend, const std::string& store_url, int target,
                  const testing::PostgresServer* pg) {
    Stack stack(
        {.store_url = store_url, .redis_url = redis_.url(), .concurrency = 16, .prefetch = 16});
    Breakdown(stack, backend);
    const int n = Scaled(5000);
    const int producers = 2;
    const auto budget = std::chrono::seconds(60);
    std::atomic<int> submitted{0}, rejected{0};
    std::vector<double> producer_s(producers);
    CpuMeter cpu;
    const auto sql0 = store_internal::ReadSqlCounters();
    const auto t0 = Clock::now();
    const auto deadline = t0 + budget;
    {
      std::vector<std::jthread> threads;
      for (int p = 0; p < producers; ++p) {
        threads.emplace_back([&, p] {
          auto store = Must(stack.stores().Open(), "producer store");
          auto broker = Must(stack.brokers().Open(), "producer broker");
          runs::StartRunRequest req;
          req.workflow = std::string(kWorkflowName);
          req.triggered_by = TriggeredBy::kApi;
          const int mine = n / producers + (p < n % producers ? 1 : 0);
          for (int i = 0; i < mine && Clock::now() < deadline; ++i) {
            auto r = runs::StartRun(*store, *broker, req);
            if (r && r->enqueued) {
              ++submitted;
            } else {
              ++rejected;
            }
          }
          producer_s[static_cast<size_t>(p)] = Seconds(t0, Clock::now());
        });
      }
      // Poll while producing, so the end is seen even if it comes before the producers join.
      while (Clock::now() < deadline && (stack.Finished() < n - rejected.load())) {
        std::this_thread::sleep_for(milliseconds(20));
      }
    }
    const auto t1 = Clock::now();
    auto c = stack.Counts();
    const int64_t done = c[RunStatus::kSucceeded] + c[RunStatus::kFailed];
    const std::string cpu_used = cpu.Describe(done);
    const double submit_s = *std::max_element(producer_s.begin(), producer_s.end());
    rows_.push_back({"one-node runs/s, " + backend + " (2 producers, worker c=16 prefetch 16)",
                     fmt::format("{:.0f} /s", static_cast<double>(done) / Seconds(t0, t1)) + " (" +
                         std::to_string(c[RunStatus::kSucceeded]) + " succeeded, " +
                         std::to_string(c[RunStatus::kFailed]) + " failed of " + std::to_string(n) +
                         fmt::format(" in {:.1f} s)", Seconds(t0, t1)),
                     ">= " + std::to_string(target) + " /s"});
    rows_.push_back({"  CPU during that", cpu_used, "-"});
    if (backend == "SQLite") {
      // Commits that shared another's transaction (commit groups, store/sqlite/commit_groups.h).
      const auto sql1 = store_internal::ReadSqlCounters();
      const int64_t commits = sql1.commits - sql0.commits;
      const int64_t grouped = sql1.grouped - sql0.grouped;
      rows_.push_back(
          {"  SQLite: commits / write transactions of the file during that",
           fmt::format("{} / {} ({:.2f} commits per transaction)", commits, commits - grouped,
                       commits - grouped > 0
                           ? static_cast<double>(commits) / static_cast<double>(commits - grouped)
                           : 0.0),
           "-"});
    }
    auto [handler, wait] = stack.Observations();
    rows_.push_back(
        {"  " + backend + ": StartRun rate alone / handler mean / queue wait p50",
         fmt::format("{:.0f} /s / ", submitted.load() / submit_s) +
             fmt::format("{:.1f} ms / {:.0f} ms", Mean(handler), Pct(wait, 0.5)) +
             (rejected ? " (" + std::to_string(rejected.load()) + " not enqueued)" : ""),
         "-"});
    // After the rate, so its runs are not counted in it.
    CostPerRun(stack, backend, pg);
  }

  // Redis commands the server has run so far (INFO commandstats), by command.
  std::map<std::string, int64_t> RedisCalls() const {
    std::map<std::string, int64_t> out;
    std::istringstream in(redis_.Cli({"INFO", "commandstats"}));
    for (std::string line; std::getline(in, line);) {
      // cmdstat_xadd:calls=12,usec=...
      const auto colon = line.find(':');
      const auto calls = line.find("calls=");
      if (line.rfind("cmdstat_", 0) != 0 || colon == std::string::npos ||
          calls == std::string::npos)
        continue;
      out[line.substr(8, colon - 8)] = std::atoll(line.c_str() + calls + 6);
    }
    return out;
  }

  // What one run costs the databases, start to finish: `n` one-node runs started by StartRun
  // and run by the stack's worker, with no store or Redis polling of the bench's own while they
  // run (the end is seen in the worker's task observations). SQL statements and commits are
  // this process's (store/sql_counters.h: producer and worker alike); Redis commands are the
  // server's, so the worker's idle claims and heartbeats in that window count too; WAL bytes
  // come from PostgreSQL's own position (pg_current_wal_lsn), for the whole server.
  void CostPerRun(Stack& stack, const std::string& backend, const testing::PostgresServer* pg) {
    const int n = Scaled(200);
    const auto ended0 = stack.Observations().first.size();
    const auto sql0 = store_internal::ReadSqlCounters();
    const auto redis0 = RedisCalls();
    const auto wal = [&] {
      return std::stoll(pg->Psql("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint"));
    };
    const int64_t wal0 = pg != nullptr ? wal() : 0;
    const std::string lsn0 = pg != nullptr ? pg->Psql("SELECT pg_current_wal_lsn()") : "";
    runs::StartRunRequest req;
    req.workflow = std::string(kWorkflowName);
    req.triggered_by = TriggeredBy::kApi;
    for (int i = 0; i < n; ++i)
      Must(runs::StartRun(stack.store(), stack.broker(), req), "start run");
    const auto deadline = Clock::now() + std::chrono::seconds(60);
    while (stack.Observations().first.size() < ended0 + static_cast<size_t>(n) &&
           Clock::now() < deadline) {
      std::this_thread::sleep_for(milliseconds(5));
    }
    const auto ended = stack.Observations().first.size() - ended0;
    const auto sql1 = store_internal::ReadSqlCounters();
    const auto redis1 = RedisCalls();
    const int64_t wal1 = pg != nullptr ? wal() : 0;
    const std::string lsn1 = pg != nullptr ? pg->Psql("SELECT pg_current_wal_lsn()") : "";
    const double runs = static_cast<double>(n);
    int64_t redis_total = 0;
    std::vector<std::pair<int64_t, std::string>> by_command;
    for (const auto& [cmd, calls] : redis1) {
      auto it = redis0.find(cmd);
      const int64_t d = calls - (it == redis0.end() ? 0 : it->second);
      // INFO itself (and the bench's other Cli calls) are not the run's.
      if (d <= 0 || cmd == "info") continue;
      redis_total += d;
      by_command.emplace_back(d, cmd);
    }
    std::sort(by_command.rbegin(), by_command.rend());
    // Every command that ran at least once in twenty runs (the rest: the worker's idle work).
    std::string top;
    for (const auto& [calls, cmd] : by_command) {
      const double per_run = static_cast<double>(calls) / runs;
      if (per_run < 0.05) continue;
      top += fmt::format("{}{} {:.1f}", top.empty() ? "" : ", ", cmd, per_run);
    }
    std::string value =
        fmt::format("{:.1f} SQL statements, {:.1f} commits, {:.1f} Redis commands ({})",
                    static_cast<double>(sql1.statements - sql0.statements) / runs,
                    static_cast<double>(sql1.commits - sql0.commits) / runs,
                    static_cast<double>(redis_total) / runs, top);
    if (pg != nullptr) {
      value += fmt::format(", {:.1f} round trips to PostgreSQL, {:.0f} bytes of WAL",
                           static_cast<double>(sql1.round_trips - sql0.round_trips) / runs,
                           static_cast<double>(wal1 - wal0) / runs);
    }
    value += fmt::format(" ({} runs, {} ended)", n, ended);
    rows_.push_back({"  " + backend + ": per one-node run, start to finish", value,
                     "<= 3 commits, <= 12 Redis commands, WAL <= 2 KB"});
    if (pg != nullptr) {
      rows_.push_back({"  " + backend + ": WAL per run by record kind",
                       WalByRecord(*pg, lsn0, lsn1, runs), "-"});
    }
  }

  // Where the WAL went between two positions, per run, largest first (pg_walinspect, PostgreSQL
  // 15; the whole server's WAL, as the byte count above), full-page images shown apart.
  static std::string WalByRecord(const testing::PostgresServer& pg, const std::string& from,
                                 const std::string& to, double runs) {
    pg.Psql("CREATE EXTENSION IF NOT EXISTS pg_walinspect");
    // Records can be read only once flushed (the bench server runs with synchronous_commit off:
    // the WAL writer flushes within wal_writer_delay).
    const auto flushed = [&] {
      return pg.Psql(fmt::format("SELECT pg_current_wal_flush_lsn() >= '{}'", to)) == "t";
    };
    const auto until = Clock::now() + std::chrono::seconds(10);
    while (!flushed() && Clock::now() < until) pg.Psql("SELECT pg_switch_wal()");
    const std::string rows = pg.Psql(fmt::format(
        "SELECT \"resource_manager/record_type\" || ' ' || count || ' ' || record_size || "
        "' ' || fpi_size FROM pg_get_wal_stats('{}', '{}', true) WHERE count > 0 "
        "ORDER BY combined_size DESC LIMIT 8",
        from, to));
    std::string out;
    std::istringstream lines(rows);
    for (std::string line; std::getline(lines, line);) {
      std::istringstream f(line);
      std::string kind;
      double count = 0, bytes = 0, fpi = 0;
      if (!(f >> kind >> count >> bytes >> fpi)) continue;
      out += fmt::format("{}{} {:.1f} x, {:.0f} B", out.empty() ? "" : "; ", kind, count / runs,
                         bytes / runs);
      if (fpi > 0) out += fmt::format(" + {:.0f} B page images", fpi / runs);
    }
    return out.empty() ? "none" : out;
  }

  // Times StartRun's parts one by one (the same calls StartRun makes, in its order), plus whole
  // StartRun calls, on the stack's own connections. The broker part submits to a queue no worker
  // reads, with the run id as unique key like a run task.
  void Breakdown(Stack& stack, const std::string& backend) {
    const int n = Scaled(200);
    Store& store = stack.store();
    Broker& broker = stack.broker();
    std::map<std::string, std::vector<double>> us;
    auto timed = [&](const std::string& name, auto&& fn) {
      auto t = Clock::now();
      auto r = fn();
      us[name].push_back(Ms(t, Clock::now()) * 1000);
      return r;
    };
    const std::string wf_name(kWorkflowName);
    for (int i = 0; i < n; ++i) {
      auto wf = *Must(timed("1 GetWorkflow", [&] { return store.GetWorkflow(wf_name); }), "get wf");
      auto version =
          *Must(timed("2 GetWorkflowVersion", [&] { return store.GetWorkflowVersion(wf.id, 0); }),
                "get version");
      auto ingested = Must(
          timed("3 IngestWorkflow(graph)", [&] { return engine::IngestWorkflow(version.graph); }),
          "ingest");
      auto inputs =
          Must(timed("4 ResolveInputs",
                     [&] { return engine::ResolveInputs(ingested.workflow, Json::object()); }),
               "inputs");
      CreateRunRequest create;
      create.workflow_id = wf.id;
      create.version = version.version;
      create.inputs = DumpJson(inputs);
      create.first_event.type = std::string(runs::kEventCreated);
      create.first_event.data = R"({"v":1})";
      auto run =
          Must(timed("5 CreateRun (with run.created)", [&] { return store.CreateRun(create); }),
               "create");
      SubmitRequest task;
      task.kind = std::string(runs::kRunTaskKind);
      task.queue = "bench-idle";
      task.payload = runs::RunTaskPayload(run.id, 0);
      task.unique_key = runs::RunTaskUniqueKey(run.id, 0);
      task.id = NewId();
      Must(timed("6 broker Submit", [&] { return broker.Submit(task); }), "submit");
    }
    // Whole StartRun calls into the idle queue too, so nothing runs meanwhile.
    runs::StartRunRequest req;
    req.workflow = wf_name;
    req.queue = "bench-idle";
    for (int i = 0; i < n; ++i) {
      Must(timed("StartRun (whole)", [&] { return runs::StartRun(store, broker, req); }),
           "start run");
    }
    part_backends_.push_back(backend);
    for (auto& [name, v] : us) parts_[name].push_back({Mean(v), Pct(v, 0.5)});
  }

  std::string SqlitePath() {
    dirs_.push_back(std::make_unique<testing::TempDir>());
    return (dirs_.back()->path() / "ferry.db").string();
  }

  const testing::RedisServer& redis_;
  bool quick_;
  std::string only_;
  int seq_ = 0;
  std::vector<Row> rows_;
  std::vector<std::string> part_backends_;
  // part -> {mean, p50} in us, per backend in part_backends_ order
  std::map<std::string, std::vector<std::pair<double, double>>> parts_;
  std::vector<std::unique_ptr<testing::TempDir>> dirs_;
};

}  // namespace
}  // namespace ferry::bench

int main(int argc, char** argv) {
  auto usage = [] {
    std::fprintf(stderr, "usage: run_bench [--quick] [--only webhook|latency|sqlite|postgres]\n");
    return 2;
  };
  bool quick = false;
  std::string only;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--quick") {
      quick = true;
    } else if (a == "--only" && i + 1 < argc) {
      only = argv[++i];
      if (only != "webhook" && only != "latency" && only != "sqlite" && only != "postgres") {
        return usage();
      }
    } else {
      return usage();
    }
  }
  // Per-run info logs (worker, handler, API) would cost more than the runs themselves.
  spdlog::set_level(spdlog::level::warn);
  // Persistence as recommended for production (AOF, fsync every second).
  ferry::testing::RedisServer redis;
  ferry::bench::Bench(redis, quick, only).Run();
  return 0;
}
