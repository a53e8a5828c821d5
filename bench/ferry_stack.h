// The real stack as separate processes of a given `ferry` binary, for benchmarks that compare
// builds (any commit's `ferry`, --ferry PATH): a private redis-server on a free loopback port, a
// SQLite store in a temporary directory (or a fresh database of a given PostgreSQL server), the
// benchmarks' workflow applied, `ferry server start` on 127.0.0.1 and, when asked, `ferry worker
// start` processes. Only command-line flags and FERRY_* variables that every build since the batch
// route understands are used. Torn down (SIGKILL) by the destructor. Header-only; any failure ends
// the benchmark with a message.
#pragma once

#include <httplib.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "bench_util.h"
#include "core/ids.h"
#include "harness.h"
#include "postgres.h"

namespace ferry::bench {

// CPU seconds (user + system) a process used so far; -1 when unreadable.
inline double ProcessCpuSeconds(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(f, line);
  // Fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15.
  const auto close = line.rfind(')');
  if (close == std::string::npos) return -1;
  std::istringstream rest(line.substr(close + 2));
  std::string field;
  double utime = 0, stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) utime = std::atof(field.c_str());
    if (i == 15) stime = std::atof(field.c_str());
  }
  return (utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

class FerryStack {
 public:
  struct Options {
    std::string ferry;           // the binary
    int workers = 0;             // `ferry worker start` processes
    int worker_concurrency = 4;  // each one's --concurrency
    // > 0: the workers run under `nice -n worker_nice`, as a systemd unit's Nice= starts them
    // (every thread inherits it); any build's worker can be started so.
    int worker_nice = 0;
    // Not owned; null = a SQLite file. Else the store is a new database of this server.
    testing::PostgresServer* postgres = nullptr;
  };

  explicit FerryStack(const Options& o)
      : ferry_(o.ferry), worker_concurrency_(o.worker_concurrency), worker_nice_(o.worker_nice) {
    if (::access(ferry_.c_str(), X_OK) != 0) Fail("no executable ferry binary at " + ferry_);
    const std::string store =
        o.postgres != nullptr ? o.postgres->CreateDatabase() : (dir_.path() / "ferry.db").string();
    env_ = {{"FERRY_REDIS_URL", redis_.url()},
            {"FERRY_STORE", store},
            {"FERRY_SECRET_BENCH_WEBHOOK", secret_},
            {"FERRY_LOG_LEVEL", "warn"}};
    // AOF stays on (as in production), but its background rewrite, which forks Redis at moments
    // that fall in one phase or another, is off: each phase should meet the same Redis.
    redis_.Cli({"CONFIG", "SET", "auto-aof-rewrite-percentage", "0"});
    const std::string file = (dir_.path() / "bench.yaml").string();
    std::ofstream(file) << kWorkflow;
    Check(testing::RunCommand({ferry_, "workflow", "apply", file}, std::chrono::seconds(60), env_),
          "workflow apply");

    port_ = testing::FreePort();
    testing::Process::Options server;
    server.argv = {ferry_, "server", "start", "--listen", "127.0.0.1:" + std::to_string(port_)};
    server.env = env_;
    server_ = std::make_unique<testing::Process>(server);
    StartWorkers(o.workers);
    const bool up = testing::Eventually(
        [&] {
          httplib::Client c("127.0.0.1", port_);
          c.set_connection_timeout(1, 0);
          c.set_read_timeout(1, 0);
          auto r = c.Get("/healthz");
          return r && r->status == 200;
        },
        std::chrono::seconds(20));
    if (!up) Fail("the server did not answer /healthz within 20 s: " + server_->Stderr());
  }

  int port() const { return port_; }
  const std::string& secret() const { return secret_; }
  bool Running() {
    for (auto& w : workers_) {
      if (!w->Running()) return false;
    }
    return server_->Running();
  }
  std::string Stderr() const {
    std::string out = server_->Stderr();
    for (const auto& w : workers_) out += w->Stderr();
    return out;
  }
  // Starts `n` more `ferry worker start` processes.
  void StartWorkers(int n) {
    for (int i = 0; i < n; ++i) {
      testing::Process::Options worker;
      if (worker_nice_ > 0) worker.argv = {"nice", "-n", std::to_string(worker_nice_)};
      for (std::string a : {ferry_, std::string("worker"), std::string("start"),
                            std::string("--concurrency"), std::to_string(worker_concurrency_)}) {
        worker.argv.push_back(a);
      }
      worker.env = env_;
      workers_.push_back(std::make_unique<testing::Process>(worker));
    }
  }
  // Stops every worker as an operator does (SIGTERM: it hands unstarted work back and exits),
  // waiting up to 30 s for each; one that has not exited by then is killed.
  void StopWorkers() {
    for (auto& w : workers_) w->Signal(SIGTERM);
    for (auto& w : workers_) {
      if (!w->Wait(std::chrono::seconds(30))) {
        // Killed by the destructor: its leased tasks come back when their leases run out.
        std::fprintf(stderr, "benchmark stack: a worker did not stop within 30 s:\n%s\n",
                     w->Stderr().c_str());
      }
    }
    workers_.clear();
  }
  int workers() const { return static_cast<int>(workers_.size()); }
  double ServerCpuSeconds() const { return ProcessCpuSeconds(server_->pid()); }
  // Every worker process's CPU seconds so far, summed.
  double WorkerCpuSeconds() const {
    double sum = 0;
    for (const auto& w : workers_) sum += ProcessCpuSeconds(w->pid());
    return sum;
  }
  const testing::RedisServer& redis() const { return redis_; }

  // A new API token with the given scopes (`ferry token create`), its secret.
  std::string CreateToken(const std::string& name, const std::string& scopes) {
    auto r = testing::RunCommand({ferry_, "token", "create", name, "--scopes", scopes},
                                 std::chrono::seconds(60), env_);
    Check(r, "token create");
    std::string secret = r.out;
    while (!secret.empty() && (secret.back() == '\n' || secret.back() == ' ')) secret.pop_back();
    return secret;
  }

 private:
  // std::exit runs no destructors: what this stack started is stopped here first, so a failed
  // benchmark leaves no redis-server or ferry process behind.
  [[noreturn]] void Fail(const std::string& what) {
    std::fprintf(stderr, "benchmark stack: %s\n", what.c_str());
    workers_.clear();
    server_.reset();
    redis_.Stop();
    std::exit(1);
  }
  void Check(const testing::CommandResult& r, const std::string& what) {
    if (r.exit_code != 0) Fail(what + ": " + r.out + r.err);
  }

  const std::string ferry_;
  const int worker_concurrency_;
  const int worker_nice_;
  testing::TempDir dir_;
  testing::RedisServer redis_;
  const std::string secret_ = RandomHex(16);
  std::map<std::string, std::string> env_;
  int port_ = 0;
  std::unique_ptr<testing::Process> server_;
  std::vector<std::unique_ptr<testing::Process>> workers_;
};

}  // namespace ferry::bench
