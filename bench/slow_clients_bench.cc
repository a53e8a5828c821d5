// Front-door benchmark: signed webhook -> 202 latency at a steady rate while the API server holds
// many idle and trickling connections, or while producers start runs flat out, against a
// baseline with neither.
//
// It starts the real stack as separate processes of a given `ferry` binary (default: the one
// built with this tree): a private redis-server on a free loopback port, a SQLite store in a
// temporary directory (--store postgres: a database of a private PostgreSQL server), `ferry
// workflow apply`, `ferry server start` on 127.0.0.1 and `ferry worker start`. Then, per phase:
//
//   baseline  webhooks at --rate for --seconds, /healthz probed 10 times a second;
//   slow      the same while --idle connections sit idle (half send nothing, half one complete
//             keep-alive GET /healthz first) and --trickle connections send a request head one
//             line every --trickle-every, never finishing it. Connections the server closes are
//             reopened at once, so the counts stay held; each close is counted with the last
//             status the server sent on that connection (408 for an unfinished head; none, or
//             the keep-alive request's 200, for an idle close) and its time;
//   runs      the same while --run-producers keep-alive clients post POST /api/v1/runs as fast
//             as the answers come back (the worker, --concurrency 4, runs them): the webhook's
//             answer while the same stack starts and runs workflow runs flat out;
//   backlog   the same while the worker runs --backlog runs queued before the phase (the workers
//             are stopped, the runs started through POST /api/v1/runs, the workers started
//             again): the webhook's answer while the stack runs workflow runs flat out and
//             starts nothing else. The phase reports how many were still queued at its end (none
//             left: the backlog ran out and the phase does not count).
//
// --worker-nice N starts the worker under `nice -n N` (as a systemd unit's Nice= does).
//
// Latency is measured from each request's scheduled send time (no coordinated omission), with
// --senders keep-alive client connections (TCP_NODELAY) taking requests in turn. Every request
// has a client timeout (--timeout); a request that times out or gets no answer counts in the
// percentiles at the time it gave up. Requests that no sender could start before the phase's
// deadline are counted as not sent. Everything is on 127.0.0.1; every loop is bounded in count
// and time. Prints Markdown tables for docs/benchmarks.md.
//
//   build/default/bench/slow_clients_bench [--ferry PATH] [--seconds 30] [--rate 50]
//       [--idle 1000] [--trickle 200] [--trickle-every 2000] [--timeout 5000] [--senders 8]
//       [--run-producers 4] [--backlog 30000] [--worker-nice 0] [--store sqlite|postgres]
//       [--only baseline|slow|runs|backlog]
#include <fcntl.h>
#include <fmt/format.h>
#include <httplib.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.h"
#include "cli/limits.h"
#include "core/ids.h"
#include "ferry_stack.h"
#include "harness.h"

namespace ferry::bench {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using std::chrono::seconds;

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "slow_clients_bench: %s\n", what.c_str());
  std::exit(1);
}

double Ms(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

struct Options {
  std::string ferry;
  int seconds = 30;
  int rate = 50;
  int idle = 1000;
  int trickle = 200;
  milliseconds trickle_every{2000};
  milliseconds timeout{5000};
  int senders = 8;
  int run_producers = 4;  // the "runs" phase: keep-alive clients starting runs flat out
  int backlog = 30000;    // the "backlog" phase: runs queued before it
  int worker_nice = 0;    // > 0: the worker runs under `nice -n`
  bool postgres = false;  // the store: a PostgreSQL database instead of a SQLite file
  std::string only;
};

// --- Slow clients ------------------------------------------------------------------------------

enum class Kind { kIdleSilent, kIdleAfterRequest, kTrickle };
constexpr size_t kKinds = 3;

const char* KindName(Kind k) {
  switch (k) {
    case Kind::kIdleSilent:
      return "idle, nothing sent";
    case Kind::kIdleAfterRequest:
      return "idle after one keep-alive GET /healthz";
    case Kind::kTrickle:
      return "trickling a request head";
  }
  return "?";
}

// What happened to one class of slow connections while the measurement ran.
struct SlowReport {
  int target = 0;
  int held_min = -1;  // fewest established at once while measuring
  double held_sum = 0;
  int64_t held_samples = 0;
  std::map<int, int> closes;  // last status the server sent before closing (0 = none) -> count
  std::vector<double> lifetime_ms;  // connect -> closed by the server
  int connect_failures = 0;
};

// Holds `idle` idle and `trickle` trickling connections to 127.0.0.1:port on one thread (epoll,
// non-blocking sockets). Connections are opened over a ramp of `ramp` so that the server's
// deadlines do not close them all at once; each one the server closes is reopened at once.
// Thread-safety: Start/WaitHeld/Measure/Stop/Report from one controlling thread.
class SlowClients {
 public:
  SlowClients(int port, int idle, int trickle, milliseconds every) : port_(port), every_(every) {
    // Interleaved (exactly `trickle` trickling, spread evenly), so the ramp spreads every kind
    // over its length.
    const int64_t n = idle + trickle;
    int idle_made = 0;
    for (int64_t i = 0; i < n; ++i) {
      if ((i + 1) * trickle / n > i * trickle / n) {
        conns_.push_back(Fresh(Kind::kTrickle));
      } else {
        conns_.push_back(Fresh(idle_made++ % 2 == 0 ? Kind::kIdleSilent : Kind::kIdleAfterRequest));
      }
    }
    for (auto& c : conns_) ++Rep(c.kind).target;
  }
  ~SlowClients() { Stop(); }
  SlowClients(const SlowClients&) = delete;
  SlowClients& operator=(const SlowClients&) = delete;

  void Start(milliseconds ramp) {
    epoll_ = ::epoll_create1(EPOLL_CLOEXEC);
    if (epoll_ < 0) Die("epoll_create1 failed");
    const auto t0 = Clock::now();
    const auto n = static_cast<int64_t>(conns_.size());
    for (int64_t i = 0; i < n; ++i) {
      conns_[static_cast<size_t>(i)].retry_at = t0 + ramp * i / std::max<int64_t>(1, n);
    }
    thread_ = std::jthread([this](std::stop_token stop) { Loop(stop); });
  }

  // Waits until every connection is established (or `timeout`); returns how many are.
  int WaitHeld(milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline && established_.load() < static_cast<int>(conns_.size())) {
      std::this_thread::sleep_for(milliseconds(50));
    }
    return established_.load();
  }

  void Measure(bool on) { measuring_.store(on); }

  void Stop() {
    if (thread_.joinable()) {
      thread_.request_stop();
      thread_.join();
    }
    for (auto& c : conns_) CloseFd(c);
    if (epoll_ >= 0) ::close(epoll_);
    epoll_ = -1;
  }

  // REQUIRES: Stop() returned.
  const SlowReport& Report(Kind k) const { return Rep(k); }
  int64_t opened() const { return opened_; }

 private:
  struct Conn {
    Kind kind = Kind::kIdleSilent;
    int fd = -1;
    bool connected = false;
    Clock::time_point opened{};
    Clock::time_point retry_at{};
    Clock::time_point next_line{};
    int lines = 0;
    std::string got;
  };

  static Conn Fresh(Kind k) {
    Conn c;
    c.kind = k;
    return c;
  }
  SlowReport& Rep(Kind k) { return reports_[static_cast<size_t>(k)]; }
  const SlowReport& Rep(Kind k) const { return reports_[static_cast<size_t>(k)]; }

  // Bounds: opens in total, lines per trickling head, bytes kept of an answer.
  static constexpr int64_t kMaxOpens = 1'000'000;
  static constexpr int kMaxLines = 1000;
  static constexpr size_t kMaxKept = 512;

  void Loop(const std::stop_token& stop) {
    std::vector<epoll_event> events(512);
    while (!stop.stop_requested()) {
      const int n = ::epoll_wait(epoll_, events.data(), static_cast<int>(events.size()), 10);
      const auto now = Clock::now();
      for (int e = 0; e < n; ++e) {
        const auto& ev = events[static_cast<size_t>(e)];
        const auto i = static_cast<size_t>(ev.data.u64);
        Conn& c = conns_[i];
        if (c.fd < 0) continue;
        if (!c.connected) {
          int err = 0;
          socklen_t len = sizeof(err);
          ::getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
          if (err != 0 || (ev.events & (EPOLLERR | EPOLLHUP)) != 0) {
            Failed(c, now);
          } else {
            Connected(i, now);
          }
          continue;
        }
        Drain(c, now);
      }
      int established = 0;
      std::array<int, kKinds> held{};
      for (size_t i = 0; i < conns_.size(); ++i) {
        Conn& c = conns_[i];
        if (c.fd < 0) {
          if (now >= c.retry_at && opened_ < kMaxOpens) Open(i, now);
          continue;
        }
        if (!c.connected) {
          if (now - c.opened > seconds(5)) Failed(c, now);  // connect timeout
          continue;
        }
        ++established;
        ++held[static_cast<size_t>(c.kind)];
        if (c.kind == Kind::kTrickle && now >= c.next_line && c.lines < kMaxLines) {
          SendLine(c, now);
        }
      }
      established_.store(established);
      if (measuring_.load()) {
        for (size_t k = 0; k < kKinds; ++k) {
          SlowReport& r = reports_[k];
          const int h = held[k];
          r.held_min = r.held_min < 0 ? h : std::min(r.held_min, h);
          r.held_sum += h;
          ++r.held_samples;
        }
      }
    }
  }

  void Open(size_t i, Clock::time_point now) {
    Conn& c = conns_[i];
    c = Fresh(c.kind);
    ++opened_;
    c.fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c.fd < 0) {
      Failed(c, now);
      return;
    }
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port_));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    c.opened = now;
    epoll_event ev{};
    ev.events = EPOLLOUT;
    ev.data.u64 = i;
    if (::connect(c.fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0 &&
        errno != EINPROGRESS) {
      Failed(c, now);
      return;
    }
    ::epoll_ctl(epoll_, EPOLL_CTL_ADD, c.fd, &ev);
  }

  void Connected(size_t i, Clock::time_point now) {
    Conn& c = conns_[i];
    c.connected = true;
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLRDHUP;
    ev.data.u64 = i;
    ::epoll_ctl(epoll_, EPOLL_CTL_MOD, c.fd, &ev);
    if (c.kind == Kind::kIdleAfterRequest) {
      Send(c, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", now);
    } else if (c.kind == Kind::kTrickle) {
      Send(c, "POST /hooks/bench HTTP/1.1\r\n", now);
      c.lines = 1;
      c.next_line = now + every_;
    }
  }

  void SendLine(Conn& c, Clock::time_point now) {
    Send(c, fmt::format("X-Slow-{}: {}\r\n", c.lines, c.lines), now);
    ++c.lines;
    c.next_line += every_;
  }

  void Send(Conn& c, const std::string& data, Clock::time_point now) {
    const ssize_t n = ::send(c.fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno != EAGAIN) Closed(c, now);
  }

  // Reads what the server sent; a close (or reset) ends the connection.
  void Drain(Conn& c, Clock::time_point now) {
    char buf[4096];
    while (c.fd >= 0) {
      const ssize_t n = ::recv(c.fd, buf, sizeof(buf), 0);
      if (n > 0) {
        if (c.got.size() < kMaxKept) c.got.append(buf, static_cast<size_t>(n));
        // Only the last answer's status matters: the one before the close.
        auto last = c.got.rfind("HTTP/1.1 ");
        if (last != std::string::npos && last > 0) c.got.erase(0, last);
        continue;
      }
      if (n < 0 && (errno == EAGAIN)) return;
      Closed(c, now);
    }
  }

  void Closed(Conn& c, Clock::time_point now) {
    if (measuring_.load()) {
      SlowReport& r = Rep(c.kind);
      int status = 0;
      if (c.got.rfind("HTTP/1.1 ", 0) == 0 && c.got.size() >= 12) {
        status = std::atoi(c.got.substr(9, 3).c_str());
      }
      ++r.closes[status];
      r.lifetime_ms.push_back(Ms(c.opened, now));
    }
    CloseFd(c);
    c.retry_at = now;
  }

  void Failed(Conn& c, Clock::time_point now) {
    if (measuring_.load()) ++Rep(c.kind).connect_failures;
    CloseFd(c);
    c.retry_at = now + milliseconds(100);
  }

  void CloseFd(Conn& c) {
    if (c.fd >= 0) ::close(c.fd);  // also leaves the epoll set
    c.fd = -1;
    c.connected = false;
  }

  // Constant after construction
  const int port_;
  const milliseconds every_;
  // Owned by the loop thread while it runs
  std::vector<Conn> conns_;
  std::array<SlowReport, kKinds> reports_{};
  int64_t opened_ = 0;
  int epoll_ = -1;
  // Shared
  std::atomic<int> established_{0};
  std::atomic<bool> measuring_{false};
  std::jthread thread_;
};

// --- Webhooks and /healthz ----------------------------------------------------------------------

struct LoadResult {
  int scheduled = 0;
  int accepted = 0;   // 202 (webhooks) or 200 (/healthz)
  int other = 0;      // another status
  int timed_out = 0;  // no answer within the client timeout
  int errors = 0;     // connection refused, reset, closed without an answer
  int not_sent = 0;   // no sender free before the deadline
  std::map<int, int> statuses;
  std::vector<double> ms;  // every request that was sent, answered or not

  int failures() const { return other + timed_out + errors + not_sent; }
};

std::unique_ptr<httplib::Client> NewClient(int port, milliseconds timeout) {
  auto c = std::make_unique<httplib::Client>("127.0.0.1", port);
  c->set_keep_alive(true);
  c->set_tcp_nodelay(true);
  const auto s = static_cast<time_t>(timeout.count() / 1000);
  const auto us = static_cast<time_t>((timeout.count() % 1000) * 1000);
  c->set_connection_timeout(s, us);
  c->set_read_timeout(s, us);
  c->set_write_timeout(s, us);
  return c;
}

// Sends n requests, request i due at t0 + i/rate, from `senders` threads with one keep-alive
// connection each. `send` performs one request on a client and returns its result.
LoadResult SteadyRate(int port, int n, int rate, int senders, milliseconds timeout,
                      const std::function<httplib::Result(httplib::Client&, int)>& send,
                      int ok_status) {
  const auto period = std::chrono::microseconds(1'000'000 / rate);
  const auto t0 = Clock::now();
  // No request starts after the last one's due time plus one timeout.
  const auto last_start = t0 + n * period + timeout;
  std::atomic<int> next{0};
  std::mutex mu;
  LoadResult r;
  r.scheduled = n;
  {
    std::vector<std::jthread> threads;
    for (int s = 0; s < senders; ++s) {
      threads.emplace_back([&] {
        auto client = NewClient(port, timeout);
        for (int i = next++; i < n; i = next++) {
          const auto due = t0 + i * period;
          std::this_thread::sleep_until(due);
          if (Clock::now() > last_start) {
            std::lock_guard lock(mu);
            ++r.not_sent;
            continue;
          }
          const auto begin = Clock::now();
          auto res = send(*client, i);
          const auto end = Clock::now();
          std::lock_guard lock(mu);
          r.ms.push_back(Ms(due, end));
          if (res) {
            ++r.statuses[res->status];
            if (res->status == ok_status) {
              ++r.accepted;
            } else {
              ++r.other;
            }
          } else if (end - begin >= timeout - milliseconds(50)) {
            ++r.timed_out;
          } else {
            ++r.errors;
          }
          if (!res) client = NewClient(port, timeout);
        }
      });
    }
  }
  return r;
}

std::string Cell(const LoadResult& r) {
  return fmt::format("p50 {:.2f} / p95 {:.2f} / p99 {:.2f} / max {:.2f} ms", Pct(r.ms, 0.50),
                     Pct(r.ms, 0.95), Pct(r.ms, 0.99), Pct(r.ms, 1.0));
}

std::string Failures(const LoadResult& r) {
  if (r.failures() == 0) return "0";
  std::vector<std::string> parts;
  if (r.other) {
    std::string s = std::to_string(r.other) + " other status (";
    bool first = true;
    for (auto [status, count] : r.statuses) {
      if (count == 0) continue;
      s += fmt::format("{}{}: {}", first ? "" : ", ", status, count);
      first = false;
    }
    parts.push_back(s + ")");
  }
  if (r.timed_out) parts.push_back(std::to_string(r.timed_out) + " timed out");
  if (r.errors) parts.push_back(std::to_string(r.errors) + " connection errors");
  if (r.not_sent) parts.push_back(std::to_string(r.not_sent) + " not sent in time");
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : ", ") + p;
  return std::to_string(r.failures()) + ": " + out;
}

struct PhaseResult {
  std::string name;
  LoadResult hooks;
  LoadResult health;
  double machine_busy = 0;
  double server_cores = 0;
  double seconds = 0;
  std::optional<std::array<SlowReport, kKinds>> slow;
  int held_at_start = 0;
  int64_t slow_opens = 0;
};

class Bench {
 public:
  explicit Bench(Options o) : o_(std::move(o)) {}

  void Run() {
    std::unique_ptr<testing::PostgresServer> pg;
    if (o_.postgres) pg = std::make_unique<testing::PostgresServer>();
    FerryStack stack({.ferry = o_.ferry,
                      .workers = 1,
                      .worker_concurrency = 4,
                      .worker_nice = o_.worker_nice,
                      .postgres = pg.get()});
    if (o_.only.empty() || o_.only == "baseline") {
      phases_.push_back(Phase(stack, "no slow clients", Load::kNone));
    }
    if (o_.only.empty() || o_.only == "slow") {
      phases_.push_back(
          Phase(stack, fmt::format("{} idle + {} trickling", o_.idle, o_.trickle), Load::kSlow));
    }
    if (o_.only.empty() || o_.only == "runs") {
      phases_.push_back(Phase(stack, "", Load::kRuns));
    }
    if (o_.only.empty() || o_.only == "backlog") {
      phases_.push_back(Phase(stack, "", Load::kBacklog));
    }
    if (!stack.Running())
      std::fprintf(stderr, "server or worker exited:\n%s\n", stack.Stderr().c_str());
    Print();
  }

 private:
  // What else the server gets during a phase: nothing, slow clients, or producers starting runs
  // (POST /api/v1/runs) as fast as the answers come back, which the worker then runs.
  // kBacklog: only the worker, running a backlog of runs queued before the phase.
  enum class Load { kNone, kSlow, kRuns, kBacklog };

  // `n` keep-alive clients posting POST /api/v1/runs as fast as the answers come back, until
  // `stop` is set or `limit` runs in all were started (each loop is bounded by count too).
  std::vector<std::jthread> Producers(FerryStack& stack, int n, const std::atomic<bool>& stop,
                                      std::atomic<int>& started, int limit) {
    const std::string token = stack.CreateToken("bench-runs", "run");
    std::vector<std::jthread> producers;
    for (int i = 0; i < n; ++i) {
      producers.emplace_back([&, token, limit] {
        auto c = NewClient(stack.port(), o_.timeout);
        c->set_bearer_token_auth(token.c_str());
        for (int k = 0; k < 1'000'000 && !stop.load() && started.load() < limit; ++k) {
          auto res = c->Post("/api/v1/runs", R"({"workflow":"bench"})", "application/json");
          if (res && res->status == 201) {
            started.fetch_add(1);
          } else if (!res) {
            c = NewClient(stack.port(), o_.timeout);
            c->set_bearer_token_auth(token.c_str());
          }
        }
      });
    }
    return producers;
  }

  // Runs queued for the worker and not yet finished by it (entries of the run tasks' queue).
  static int64_t QueuedRuns(FerryStack& stack) {
    return std::atoll(stack.redis().Cli({"XLEN", "ferry:{default}:stream"}).c_str());
  }

  PhaseResult Phase(FerryStack& stack, const std::string& name, Load load) {
    PhaseResult p;
    p.name = name;
    std::unique_ptr<SlowClients> clients;
    std::atomic<bool> stop_producing{false};
    std::atomic<int> runs_started{0};
    std::vector<std::jthread> producers;
    if (load == Load::kRuns) {
      producers = Producers(stack, o_.run_producers, stop_producing, runs_started, 1'000'000'000);
    }
    int64_t backlog_at_start = 0;
    if (load == Load::kBacklog) {
      // The backlog is queued while no worker runs, then the worker starts on it: during the
      // measurement the stack runs workflow runs flat out and nothing else.
      const int workers = stack.workers();
      stack.StopWorkers();
      {
        auto fill = Producers(stack, o_.run_producers, stop_producing, runs_started, o_.backlog);
      }  // joins: every producer stopped at the count
      backlog_at_start = QueuedRuns(stack);
      stack.StartWorkers(workers);
      // The clock starts once the worker is at work (bounded: a worker that never starts is
      // reported by the stack's check after the phase).
      testing::Eventually([&] { return QueuedRuns(stack) < backlog_at_start; }, seconds(30));
      backlog_at_start = QueuedRuns(stack);
    }
    if (load == Load::kSlow) {
      clients = std::make_unique<SlowClients>(stack.port(), o_.idle, o_.trickle, o_.trickle_every);
      clients->Start(milliseconds(5000));
      p.held_at_start = clients->WaitHeld(seconds(30));
      // One more trickle period, so that the server's deadlines have started closing some.
      std::this_thread::sleep_for(o_.trickle_every);
      clients->Measure(true);
    }
    const auto machine0 = MachineJiffies();
    const double server0 = stack.ServerCpuSeconds();
    const auto t0 = Clock::now();
    const int n = o_.rate * o_.seconds;
    std::jthread health([&] {
      p.health = SteadyRate(
          stack.port(), 10 * o_.seconds, 10, 1, o_.timeout,
          [](httplib::Client& c, int) { return c.Get("/healthz"); }, 200);
    });
    p.hooks = SteadyRate(
        stack.port(), n, o_.rate, o_.senders, o_.timeout,
        [&](httplib::Client& c, int i) {
          Delivery d = Sign(stack.secret(), seq_base_ + i);
          httplib::Headers h(d.headers.begin(), d.headers.end());
          return c.Post("/hooks/bench", h, d.body, "application/json");
        },
        202);
    health.join();
    seq_base_ += n;
    p.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    stop_producing = true;
    producers.clear();  // joins
    if (load == Load::kRuns) {
      p.name = fmt::format("{} producers starting runs flat out ({} runs, {:.0f}/s)",
                           o_.run_producers, runs_started.load(), runs_started.load() / p.seconds);
    }
    if (load == Load::kBacklog) {
      // The webhooks' runs join the same queue behind the backlog, and a worker's claimed tasks
      // stay queued until they end: fewer than kBacklogLeft left means the backlog ran out.
      constexpr int64_t kBacklogLeft = 100;
      const int64_t left = QueuedRuns(stack);
      const int64_t ran = backlog_at_start + p.hooks.accepted - left;
      p.name = fmt::format(
          "the worker{} running a backlog of {} runs flat out (about {} ran during the phase, "
          "{:.0f}/s; {} still queued at its end{})",
          o_.worker_nice > 0 ? fmt::format(" (nice {})", o_.worker_nice) : "", backlog_at_start,
          ran, static_cast<double>(ran) / p.seconds, left,
          left < kBacklogLeft ? ": the backlog ran out, this phase does not count" : "");
    }
    const auto machine1 = MachineJiffies();
    const double total = machine1.second - machine0.second;
    p.machine_busy = total > 0 ? (machine1.first - machine0.first) / total : -1;
    p.server_cores = (stack.ServerCpuSeconds() - server0) / p.seconds;
    if (clients) {
      clients->Measure(false);
      clients->Stop();
      std::array<SlowReport, kKinds> reports;
      for (size_t k = 0; k < kKinds; ++k) reports[k] = clients->Report(static_cast<Kind>(k));
      p.slow = reports;
      p.slow_opens = clients->opened();
    }
    return p;
  }

  void Print() {
    std::printf("ferry binary: %s\n\n", o_.ferry.c_str());
    std::printf(
        "| held connections | webhooks -> 202 (%d/s, %d s) | failures | /healthz (10/s) | "
        "server CPU | machine busy |\n|---|---|---|---|---|---|\n",
        o_.rate, o_.seconds);
    for (const auto& p : phases_) {
      std::printf("| %s | %s (%d of %d) | %s | %s%s | %.2f cores | %.0f %% |\n", p.name.c_str(),
                  Cell(p.hooks).c_str(), p.hooks.accepted, p.hooks.scheduled,
                  Failures(p.hooks).c_str(),
                  fmt::format("p50 {:.2f} / p99 {:.2f} / max {:.2f} ms", Pct(p.health.ms, 0.5),
                              Pct(p.health.ms, 0.99), Pct(p.health.ms, 1.0))
                      .c_str(),
                  p.health.failures() ? (", failures " + Failures(p.health)).c_str() : "",
                  p.server_cores, 100 * p.machine_busy);
    }
    for (const auto& p : phases_) {
      if (!p.slow) continue;
      std::printf(
          "\nSlow connections during the measurement (%d of %d established before it began; "
          "%lld opened in all, reopens included):\n\n",
          p.held_at_start, o_.idle + o_.trickle, static_cast<long long>(p.slow_opens));
      std::printf(
          "| connections | held (min / mean) | closed by the server (last status it sent: count) | "
          "connect -> close (p50, min - max) | connect failures |\n|---|---|---|---|---|\n");
      for (size_t k = 0; k < kKinds; ++k) {
        const SlowReport& r = (*p.slow)[k];
        if (r.target == 0) continue;
        std::string closes;
        int total = 0;
        for (auto [status, count] : r.closes) {
          closes += fmt::format("{}{}: {}", closes.empty() ? "" : ", ",
                                status == 0 ? std::string("none") : std::to_string(status), count);
          total += count;
        }
        const double mean = r.held_samples ? r.held_sum / static_cast<double>(r.held_samples) : 0;
        std::printf("| %d %s | %d / %.0f | %d%s | %s | %d |\n", r.target,
                    KindName(static_cast<Kind>(k)), r.held_min, mean, total,
                    total ? (" (" + closes + ")").c_str() : "",
                    r.lifetime_ms.empty()
                        ? "-"
                        : fmt::format("{:.1f} s, {:.1f} - {:.1f} s", Pct(r.lifetime_ms, 0.5) / 1000,
                                      Pct(r.lifetime_ms, 0) / 1000, Pct(r.lifetime_ms, 1) / 1000)
                              .c_str(),
                    r.connect_failures);
      }
    }
  }

  Options o_;
  int seq_base_ = 0;
  std::vector<PhaseResult> phases_;
};

}  // namespace
}  // namespace ferry::bench

int main(int argc, char** argv) {
  auto usage = [] {
    std::fprintf(stderr,
                 "usage: slow_clients_bench [--ferry PATH] [--seconds N] [--rate N] [--idle N] "
                 "[--trickle N] [--trickle-every MS] [--timeout MS] [--senders N] "
                 "[--run-producers N] [--backlog N] [--worker-nice N] [--store sqlite|postgres] "
                 "[--only baseline|slow|runs|backlog]\n");
    return 2;
  };
  ferry::bench::Options o;
  o.ferry = ferry::testing::FerryBinary();
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (i + 1 >= argc) return usage();
    const std::string v = argv[++i];
    auto number = [&](int lo, int hi) {
      const int n = std::atoi(v.c_str());
      if (n < lo || n > hi) std::exit(usage());
      return n;
    };
    if (a == "--ferry") {
      o.ferry = v;
    } else if (a == "--seconds") {
      o.seconds = number(1, 3600);
    } else if (a == "--rate") {
      o.rate = number(1, 10000);
    } else if (a == "--idle") {
      o.idle = number(0, 20000);
    } else if (a == "--trickle") {
      o.trickle = number(0, 20000);
    } else if (a == "--trickle-every") {
      o.trickle_every = std::chrono::milliseconds(number(10, 60000));
    } else if (a == "--timeout") {
      o.timeout = std::chrono::milliseconds(number(100, 60000));
    } else if (a == "--senders") {
      o.senders = number(1, 256);
    } else if (a == "--run-producers") {
      o.run_producers = number(1, 256);
    } else if (a == "--backlog") {
      o.backlog = number(1, 10'000'000);
    } else if (a == "--worker-nice") {
      o.worker_nice = number(0, 19);
    } else if (a == "--store") {
      if (v != "sqlite" && v != "postgres") return usage();
      o.postgres = v == "postgres";
    } else if (a == "--only") {
      o.only = v;
      if (o.only != "baseline" && o.only != "slow" && o.only != "runs" && o.only != "backlog") {
        return usage();
      }
    } else {
      return usage();
    }
  }
  // The slow connections are descriptors here, and the server inherits the limit too.
  ferry::cli::RaiseOpenFileLimit();
  ferry::bench::Bench(o).Run();
  return 0;
}
