// The worker runtime (`ferry worker start`): claims tasks from queues in strict priority order,
// runs them on `concurrency` slots, keeps leases and a heartbeat alive, reclaims tasks of dead
// workers, enforces timeouts, and drains gracefully on SIGTERM/SIGINT.
//
// Threads: a claim loop, a completion loop and a control loop (heartbeat, leases, cancels,
// reclaim, delayed promotion), each with its own Redis connection; one thread per slot; the
// health server. Worker is driven from one thread: Start(), then Stop()/Wait().
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "broker/broker.h"
#include "core/result.h"
#include "worker/handler.h"

namespace ferry {

// One finished execution, as the worker saw it (WorkerOptions::on_task_end; ops/ metrics).
struct TaskObservation {
  std::string queue;
  std::string kind;
  // succeeded, retried (failed, another attempt follows), failed (no attempt left or not
  // retryable: dead-lettered), cancelled, handed_back (drain), snoozed (Snooze), lost
  // (lease lost mid-run).
  std::string outcome;
  int64_t wait_ms = 0;      // submission to this attempt's start (includes any delay/backoff)
  int64_t duration_ms = 0;  // the handler's run time
  int attempt = 0;
  bool reclaimed = false;  // this attempt took the task over from an expired lease
};

// The shortest task lease MakeWorker accepts: leases are renewed every lease/3 over Redis, and
// a lease much shorter than a round trip or two would lapse under a busy worker.
inline constexpr std::chrono::milliseconds kMinTaskLease{100};

struct WorkerOptions {
  BrokerOptions broker;
  // Queues in strict priority order: a later queue is served only when earlier ones are empty.
  std::vector<std::string> queues = {"default"};
  // Tasks run at once by this process. Must be > 0.
  int concurrency = 1;
  // Extra tasks claimed ahead and held locally so slots never wait for a round trip.
  // -1 means "same as concurrency".
  int prefetch = -1;
  // Default "{hostname}-{pid}-{random8}".
  std::string worker_id;
  // A claimed task's lease; another worker may reclaim it once this long without renewal.
  // At least kMinTaskLease.
  std::chrono::milliseconds lease = std::chrono::seconds(30);
  // On SIGTERM: how long running tasks may finish before they are stopped and handed back.
  std::chrono::milliseconds drain_timeout = std::chrono::seconds(30);
  // Used when a task sets no timeout of its own. 0 = none.
  std::chrono::milliseconds default_timeout = std::chrono::minutes(30);
  // The heartbeat record's TTL; it is refreshed every ttl/3.
  std::chrono::milliseconds heartbeat_ttl = std::chrono::seconds(30);
  // Claim loop BLOCK time; also bounds how fast the loop notices a stop.
  std::chrono::milliseconds block = std::chrono::seconds(1);
  // -1 = no health server; 0 = any free port. /healthz answers 200 while the claim loop reached
  // Redis recently.
  int health_port = -1;
  std::string health_host = "127.0.0.1";
  // Retry backoff for failed attempts.
  std::chrono::milliseconds backoff_base = std::chrono::seconds(1);
  std::chrono::milliseconds backoff_cap = std::chrono::minutes(10);
  // Niceness, 0-19, of the threads that run tasks: the slots, and the claim and completion loops
  // that feed them (exec and shell handlers' processes inherit it). 0 = the process's own. On a
  // machine shared with `ferry server` or the database, 10 lets the front door's answers go ahead
  // of task and run execution (docs/operations.md). Only ever lowers these threads' priority.
  int nice = 0;
  // A handler's event larger than this (its type and its data as JSON text) is dropped, with one
  // warning per attempt. Must be > 0.
  size_t max_event_bytes = kMaxEventBytes;
  // What one attempt's events may add to its task's event stream; later events are dropped and
  // one "log" event says how many. Must be >= max_event_bytes.
  size_t max_attempt_event_bytes = kMaxAttemptEventBytes;
  // Optional: called on a slot thread after each execution ends (before its completion is
  // sent). Must be thread-safe and fast (it delays the slot's next task).
  std::function<void(const TaskObservation&)> on_task_end;
  // Optional: the body of GET /metrics on the health port (Prometheus text format). Called on
  // the health server's threads; must be thread-safe. Empty: /metrics answers 404.
  std::function<std::string()> metrics;
};

class Worker {
 public:
  virtual ~Worker() = default;
  // Connects and starts every loop. Errors: Redis unreachable, bad options, health port taken.
  virtual Status Start() = 0;
  // Begins a graceful drain (safe to call from any thread, more than once).
  virtual void Stop() = 0;
  // Blocks until the drain is complete and every loop has ended. A handler that ignores its
  // stop holds this (and the destructor) until it returns: see WaitUntilDrained.
  virtual void Wait() = 0;
  // Blocks until the drain is complete: every task finished or handed back, every loop ended
  // but the slot threads whose handler ignores its stop. Returns how many of those still run
  // (0: Wait() returns at once). A thread cannot be stopped from outside; a process that has
  // to end ends without them (RunWorkerUntilSignal does).
  virtual int WaitUntilDrained() = 0;
  virtual const std::string& id() const = 0;
  // The bound health port (options.health_port 0 means "any"; -1 when there is none).
  virtual int health_port() const = 0;
};

// `registry` must outlive the worker. `brokers` opens the connections of the worker's loops:
// MakeRedisBrokerFactory(options.broker) in Ferry's commands (the worker itself knows no broker
// implementation); it is not used before Start().
Result<std::unique_ptr<Worker>> MakeWorker(WorkerOptions options, const HandlerRegistry& registry,
                                           std::unique_ptr<BrokerFactory> brokers);

// "{hostname}-{pid}-{random8}".
std::string DefaultWorkerId();

// Blocks SIGTERM and SIGINT in the calling thread; threads it creates afterwards inherit that.
// Call first thing in main(), before any thread exists, when using RunWorkerUntilSignal.
// (Worker::Start blocks them in the worker's own threads regardless.)
void BlockTerminationSignals();

// Waits for SIGTERM/SIGINT on a dedicated signal thread (sigtimedwait, no signal handler) and
// turns the first one into worker.Stop(); returns when the drain is complete (worker.Wait()).
// Returns the signal received, or 0 when the worker stopped for another reason. When a handler
// ignored its stop (its task was handed back, but its thread still runs), it ends the process
// with exit status 1 instead of waiting for that thread without end (kExitHandlersAbandoned).
// `on_stop`, when given, is called on the signal thread as the first signal begins the drain
// (`ferry worker start` tells systemd STOPPING=1 there, as the drain may take its timeout).
// REQUIRES: `worker` started; SIGTERM/SIGINT blocked in every other thread of the process
// (BlockTerminationSignals() at the top of main does that), or the default action kills it.
inline constexpr int kExitHandlersAbandoned = 1;
int RunWorkerUntilSignal(Worker& worker, const std::function<void()>& on_stop = {});

// Submits and waits: the producer side of the C++ API. Not thread-safe (one connection).
class TaskClient {
 public:
  explicit TaskClient(std::unique_ptr<Broker> broker) : broker_(std::move(broker)) {}
  Result<SubmitResult> Submit(const SubmitRequest& request) { return broker_->Submit(request); }
  // Waits until the task ends (or `timeout` passes: kTimeout) and returns its final record.
  Result<TaskRecord> Wait(const std::string& id, std::chrono::milliseconds timeout);
  Broker& broker() { return *broker_; }

 private:
  std::unique_ptr<Broker> broker_;
};

}  // namespace ferry
