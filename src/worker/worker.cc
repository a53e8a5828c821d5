// The worker runtime. Threads and what they own:
//   claim loop       its connection; claims up to free capacity (concurrency + prefetch)
//   slots            run handlers, one task each; never touch Redis
//   completion loop  its connection; batches finished results into pipelined Complete calls and
//                    writes handler events (the hot path: one round trip per batch, not per task)
//   control loop     its connection; heartbeat, lease renewal, cancel polling, reclaim, promotion
//   watchdog         no connection; requests stop on tasks past their deadline, so timeouts hold
//                    even while Redis is unreachable
//   supervisor       waits for Stop() and runs the drain phases in order
// State shared between them lives in WorkerImpl under mu_ (tasks) and done_mu_ (outbox).
#include "worker/worker.h"

#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>

#include "core/backoff.h"
#include "core/ids.h"
#include "core/redis_url.h"
#include "core/sleep.h"
#include "core/time_util.h"
#include "core/utf8.h"
#include "worker/connection.h"
#include "worker/health.h"
#include "worker/seconds_text.h"

namespace ferry {
namespace {

using SteadyClock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// Why a handler's stop was requested. The first reason wins: it decides how the task ends.
enum class StopReason : int { kNone, kCancel, kTimeout, kLeaseLost, kDrain };

// How often the control loop asks Redis which held tasks have a cancel request.
constexpr milliseconds kCancelPollEvery(300);

int64_t SteadyMs() {
  return std::chrono::duration_cast<milliseconds>(SteadyClock::now().time_since_epoch()).count();
}

std::string Hostname() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0) return "unknown";
  return buf;
}

// Raises the calling thread's niceness to `nice` (Linux sets it per thread when given a thread
// id), never lowering it: a process started nicer than that stays so.
void LowerThreadPriority(int nice) {
  if (nice <= 0) return;
  const auto tid = static_cast<id_t>(::gettid());
  errno = 0;
  const int now = ::getpriority(PRIO_PROCESS, tid);
  if (errno == 0 && now >= nice) return;
  if (::setpriority(PRIO_PROCESS, tid, nice) != 0) {
    spdlog::warn("worker: cannot set this thread's nice to {}: {}", nice, std::strerror(errno));
  }
}

std::string Join(const std::vector<std::string>& items, const char* sep) {
  std::string out;
  for (const auto& s : items) {
    if (!out.empty()) out += sep;
    out += s;
  }
  return out;
}

// `result` as the JSON text a task's record keeps, into `out`; or why it cannot be kept (past
// kMaxResultBytes, as exec and http handlers' results are: their max_stdout_bytes and
// max_response_bytes).
std::optional<std::string> DumpResult(const Json& result, std::string& out) {
  // Dumped, a deeper one would recurse as deep (a stack overflow); read back, it is refused.
  if (const int depth = JsonDepth(result); depth > kMaxJsonDepth) {
    return "the handler's result nests " + std::to_string(depth) +
           " levels deep, more than the limit of " + std::to_string(kMaxJsonDepth);
  }
  // Kept as text and read back: what the text cannot hold would come back as something else.
  if (auto why = UnkeptJsonValue(result)) return "the handler's result cannot be kept: " + *why;
  out = DumpJson(result);
  if (out.size() <= kMaxResultBytes) return std::nullopt;
  const size_t size = out.size();
  out.clear();
  return "the handler's result is " + std::to_string(size) +
         " bytes of JSON, more than the limit of " + std::to_string(kMaxResultBytes);
}

// What a task's record keeps of an in-process handler's error message (exec keeps its stderr's
// last 500 bytes): the record is read whole by every listing, the `failed` event and the log
// line carry it again. The start is kept, which is where a message says what went wrong.
constexpr size_t kMaxErrorBytes = 16 * 1024;

std::string KeptError(std::string message) {
  if (message.size() <= kMaxErrorBytes) return message;
  const std::string_view head(message.data(), kMaxErrorBytes);
  const size_t kept = head.size() - Utf8UnfinishedTail(head);
  const size_t dropped = message.size() - kept;
  message.resize(kept);
  return message + " [" + std::to_string(dropped) + " more bytes not kept]";
}

// One claimed task, from claim until its completion is applied (or its lease is lost).
struct TaskState {
  explicit TaskState(ClaimedTask t) : task(std::move(t)) {}

  // Requests the handler's stop; returns true if this call set the reason.
  bool RequestStop(StopReason r) {
    StopReason expected = StopReason::kNone;
    bool first = reason.compare_exchange_strong(expected, r);
    if (first) stop_asked_ms.store(SteadyMs());
    stop.request_stop();
    return first;
  }

  // Guarded by WorkerImpl::mu_ (epoch and entry_id change when we reclaim our own task).
  ClaimedTask task;
  int slot = -1;  // running on this slot; -1 while buffered or after it ran
  SteadyClock::time_point buffered_at = SteadyClock::now();
  bool finished = false;  // a completion was queued (or deliberately dropped): no second one
  SteadyClock::time_point deadline = SteadyClock::time_point::max();
  milliseconds timeout{0};

  // Thread-safe.
  std::stop_source stop;
  std::atomic<StopReason> reason{StopReason::kNone};
  std::atomic<int64_t> stop_asked_ms{0};  // SteadyMs() when the reason was set
};
using TaskPtr = std::shared_ptr<TaskState>;

struct PendingCompletion {
  TaskPtr state;
  Completion completion;
};

struct PendingEvent {
  std::string queue;
  std::string id;
  std::string type;
  Json data;
  size_t bytes = 0;  // HeldBytes of type and data
};

// A handler told to stop (timeout, cancel) that has not returned this long after is left running
// on its slot: its attempt is ended without it (a thread cannot be killed as a process can).
constexpr milliseconds kIgnoredStopGrace{5000};

// The task outbox's bounds: a handler emitting without pause while Redis is slow must not grow
// the worker's memory (the task's event stream is capped by MAXLEN anyway), and one call to
// Redis carries about kEventCallBytes of one task's events (an event larger goes alone).
constexpr size_t kMaxBufferedEvents = 20000;
constexpr size_t kMaxBufferedEventBytes = size_t{32} << 20;
constexpr size_t kEventCallBytes = size_t{1} << 20;

// About the bytes a JSON value holds: its strings and keys, and a few per value. Counted without
// dumping it, on the handler's thread.
size_t HeldBytes(const Json& j) {
  size_t n = 0;
  std::vector<const Json*> todo{&j};
  while (!todo.empty()) {
    const Json* v = todo.back();
    todo.pop_back();
    n += 8;
    if (v->is_string()) {
      n += v->get_ref<const std::string&>().size();
    } else if (v->is_object()) {
      for (auto it = v->begin(); it != v->end(); ++it) {
        n += it.key().size();
        todo.push_back(&it.value());
      }
    } else if (v->is_array()) {
      for (const auto& child : *v) todo.push_back(&child);
    }
  }
  return n;
}

// Blocks SIGTERM/SIGINT in this thread while alive, so threads created meanwhile inherit the
// mask: termination signals then reach only the process's signal thread, never a worker thread.
class ScopedSignalBlock {
 public:
  ScopedSignalBlock() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    ::pthread_sigmask(SIG_BLOCK, &set, &old_);
  }
  ~ScopedSignalBlock() { ::pthread_sigmask(SIG_SETMASK, &old_, nullptr); }
  ScopedSignalBlock(const ScopedSignalBlock&) = delete;
  ScopedSignalBlock& operator=(const ScopedSignalBlock&) = delete;

 private:
  sigset_t old_;
};

class WorkerImpl;

// Buffers one attempt's events in the worker's outbox; the completion loop writes them. Keeps
// them within the limits of one event and of one attempt (WorkerOptions), which bound what a
// handler can store in Redis for its task.
class TaskEmitter final : public EventEmitter {
 public:
  TaskEmitter(WorkerImpl& worker, const WorkerOptions& options, std::string queue, std::string id)
      : worker_(worker),
        max_event_bytes_(options.max_event_bytes),
        max_attempt_bytes_(options.max_attempt_event_bytes),
        queue_(std::move(queue)),
        id_(std::move(id)) {}
  void Emit(const std::string& type, Json data) override;
  // Call once the handler returned: says, in one "log" event, how many events the attempt's
  // budget dropped.
  void Finish();

 private:
  WorkerImpl& worker_;
  // Constant after construction
  const size_t max_event_bytes_;
  const size_t max_attempt_bytes_;
  const std::string queue_;
  const std::string id_;

  std::atomic<bool> refused_{false};   // a type was refused (warned once per attempt)
  std::atomic<bool> oversize_{false};  // an event was too large (warned once per attempt)
  std::mutex mu_;
  // Guarded by mu_
  size_t attempt_bytes_ = 0;  // of the events kept
  int64_t over_budget_ = 0;   // events dropped since the budget was reached
};

class WorkerImpl final : public Worker {
 public:
  WorkerImpl(WorkerOptions options, const HandlerRegistry& registry,
             std::unique_ptr<BrokerFactory> brokers)
      : options_(std::move(options)),
        registry_(registry),
        id_(options_.worker_id.empty() ? DefaultWorkerId() : options_.worker_id),
        hostname_(Hostname()),
        capacity_(options_.concurrency +
                  (options_.prefetch < 0 ? options_.concurrency : options_.prefetch)),
        kinds_text_(Join(registry.Kinds(), ", ")),
        factory_(std::move(brokers)),
        in_handler_(static_cast<size_t>(options_.concurrency)) {
    slots_.resize(static_cast<size_t>(options_.concurrency));
  }

  ~WorkerImpl() override {
    Stop();
    Wait();
  }

  Status Start() override;
  void Stop() override;
  void Wait() override;
  int WaitUntilDrained() override;
  const std::string& id() const override { return id_; }
  int health_port() const override { return health_port_; }

  void PushEvent(const std::string& queue, const std::string& id, const std::string& type,
                 Json data);

 private:
  void ClaimLoop(std::stop_token st);
  void SlotLoop(int slot);
  // `epoch` is read under mu_ by the caller (a self-reclaim may change the task's epoch).
  void Execute(int slot, const TaskPtr& s, int64_t epoch);
  void CompletionLoop();
  void ControlLoop(std::stop_token st);
  void WatchdogLoop(std::stop_token st);
  void Supervise();

  // Takes claimed (or reclaimed) tasks into the buffer.
  void Accept(std::vector<ClaimedTask> tasks);
  void QueueCompletion(const TaskPtr& s, Completion c);
  void EndIgnoredStops();
  Completion MakeCompletion(const TaskPtr& s, Completion::Kind kind) const;
  // REQUIRES: mu_ held. Removes a buffered task from the buffer; false if it is not buffered.
  bool TakeFromBufferLocked(const TaskPtr& s);
  int RunningLocked() const;
  // Running tasks whose attempt has not ended: what a drain waits for. A handler that ignored its
  // stop past the grace holds its slot, but its task's attempt has ended without it.
  int UnfinishedLocked() const;

  // Control-loop steps; each returns false after recording a failed call on `conn`.
  bool SendHeartbeat(Broker& b, Connection& conn);
  bool RenewLeases(Broker& b, Connection& conn);
  bool PollCancels(Broker& b, Connection& conn);
  bool AwaitCancelPollIfStale(const TaskPtr& s);
  bool ReclaimExpired(Broker& b, Connection& conn);
  bool PromoteDue(Broker& b, Connection& conn);
  std::vector<LeaseRef> HeldLeases();
  WorkerInfo Info();

  void FlushEvents(Connection& conn, std::vector<PendingEvent>& events);
  void FlushCompletions(Connection& conn, std::vector<PendingCompletion>& batch);
  void WakeControl();

  // Constant after construction (and after Start for health_port_ / started_ms_).
  const WorkerOptions options_;
  const HandlerRegistry& registry_;
  const std::string id_;
  const std::string hostname_;
  const int capacity_;
  const std::string kinds_text_;
  std::unique_ptr<BrokerFactory> factory_;
  int health_port_ = -1;
  int64_t started_ms_ = 0;

  std::mutex mu_;
  // Guarded by mu_:
  std::unordered_map<std::string, TaskPtr> held_;  // every task whose lease we hold
  std::deque<TaskPtr> buffer_;                     // claimed, waiting for a slot
  std::vector<TaskPtr> slots_;                     // the task each slot runs (null = idle)
  // Per slot, not under mu_: true while its thread is inside a handler. Sized once in the
  // constructor, never resized.
  std::vector<std::atomic<bool>> in_handler_;
  int active_ = 0;           // buffered + running: what capacity limits
  bool slots_exit_ = false;  // draining: slots end when the buffer is empty
  bool claim_waiting_ = false;
  bool draining_ = false;
  std::string status_ = "running";
  std::condition_variable work_cv_;       // slots: buffer_ gained a task, or slots_exit_
  uint64_t cancel_polls_begun_ = 0;       // cancel polls begun (PollCancels; one at a time)
  uint64_t cancel_polls_done_ = 0;        // and those of them done
  std::condition_variable polled_cv_;     // slots: cancel_polls_ moved on, or slots_exit_
  std::condition_variable_any space_cv_;  // claim loop / supervisor: a slot or buffer place freed

  std::mutex done_mu_;
  // Guarded by done_mu_ (the outbox the completion loop drains):
  std::vector<PendingCompletion> completions_;
  std::vector<PendingEvent> events_;
  size_t events_bytes_ = 0;  // the sum of events_' bytes
  int64_t dropped_events_ = 0;
  bool completion_idle_ = false;
  bool outbox_closing_ = false;  // the supervisor is done producing: flush and end
  std::condition_variable done_cv_;

  std::mutex control_mu_;
  // Guarded by control_mu_:
  bool control_wake_ = false;
  bool cancel_poll_wanted_ = false;  // a slot waits for a fresh cancel poll (SlotLoop)
  std::condition_variable_any control_cv_;

  std::mutex stop_mu_;
  // Guarded by stop_mu_:
  bool stop_requested_ = false;
  bool started_ = false;
  bool waited_ = false;
  bool drained_ = false;  // the supervisor has done all but join handlers ignoring their stop
  int abandoned_ = 0;     // those handlers' threads
  std::condition_variable stop_cv_;

  // Thread-safe.
  std::atomic<int64_t> processed_{0};
  std::atomic<int64_t> failed_{0};
  std::atomic<int64_t> last_claim_ok_ms_{0};  // steady-clock ms of the claim loop's last reply

  // Driving thread only.
  std::unique_ptr<HealthServer> health_;
  std::unique_ptr<Broker> first_connection_;
  std::jthread claim_thread_;
  std::vector<std::jthread> slot_threads_;
  std::jthread completion_thread_;
  std::jthread control_thread_;
  std::jthread watchdog_thread_;
  std::jthread supervisor_;
};

void TaskEmitter::Emit(const std::string& type, Json data) {
  if (auto why = HandlerEventTypeProblem(type)) {
    if (!refused_.exchange(true)) {
      spdlog::warn(
          "task {}: its handler emitted an event of type {}, which it may not ({}); "
          "dropped, and any more such",
          id_, DumpJson(Json(type.substr(0, 64))), *why);
    }
    return;
  }
  // Counted as Redis stores it (type and data as JSON text), as an exec handler's line is.
  const size_t bytes = type.size() + DumpJson(data).size();
  if (bytes > max_event_bytes_) {
    if (!oversize_.exchange(true)) {
      spdlog::warn(
          "task {}: its handler emitted an event of {} bytes (type {}), over the {} an event may "
          "take; dropped, and any more such",
          id_, bytes, DumpJson(Json(type.substr(0, 64))), max_event_bytes_);
    }
    return;
  }
  {
    // Once over, always over: the stream keeps the attempt's first events and then says how many
    // followed, rather than a selection of small ones.
    std::lock_guard lock(mu_);
    if (over_budget_ > 0 || attempt_bytes_ + bytes > max_attempt_bytes_) {
      ++over_budget_;
      return;
    }
    attempt_bytes_ += bytes;
  }
  worker_.PushEvent(queue_, id_, type, std::move(data));
}

void TaskEmitter::Finish() {
  int64_t dropped = 0;
  {
    std::lock_guard lock(mu_);
    dropped = std::exchange(over_budget_, 0);
  }
  if (dropped == 0) return;
  const std::string why = std::to_string(dropped) +
                          " further event(s) not recorded: this attempt's events reached " +
                          std::to_string(max_attempt_bytes_) + " bytes";
  spdlog::warn("task {}: {}", id_, why);
  worker_.PushEvent(queue_, id_, "log", Json{{"line", why}});
}

// ---------------------------------------------------------------------------------------------
// Start / Stop / Wait

Status WorkerImpl::Start() {
  {
    std::lock_guard lock(stop_mu_);
    if (started_) return Fail(ErrorCode::kConflict, "worker already started");
  }
  // One synchronous connection first, so a wrong URL or password fails Start with a clear error
  // instead of a loop retrying in the background. The control loop keeps it.
  auto first = factory_->Open();
  if (!first) return Fail(first.error());
  first_connection_ = std::move(*first);
  started_ms_ = WallNowMs();
  last_claim_ok_ms_ = SteadyMs();

  ScopedSignalBlock block_signals;
  if (options_.health_port >= 0) {
    health_ = std::make_unique<HealthServer>();
    auto port = health_->Start(
        options_.health_host, options_.health_port,
        [this](Json& body) {
          int64_t age = SteadyMs() - last_claim_ok_ms_.load();
          bool ok = age <= (options_.block + milliseconds(5000)).count();
          body["worker"] = id_;
          body["last_claim_ms_ago"] = age;
          std::lock_guard lock(mu_);
          body["worker_status"] = status_;
          body["running"] = RunningLocked();
          body["held"] = held_.size();
          return ok;
        },
        options_.metrics);
    if (!port) return Fail(port.error());
    health_port_ = *port;
  }
  // Registered before any task is claimed, so `worker list` shows who holds what.
  if (auto hb = first_connection_->Heartbeat(Info(), options_.heartbeat_ttl); !hb) {
    if (health_) health_->Stop();
    return Fail(hb.error());
  }

  spdlog::info(
      "worker.started id={} version={}: redis {}, queues [{}], concurrency {}, prefetch {}, "
      "lease {}, drain timeout {}, health {}, kinds [{}]",
      id_, FERRY_VERSION, MaskRedisUrl(options_.broker.redis_url), Join(options_.queues, ", "),
      options_.concurrency, capacity_ - options_.concurrency, FormatDuration(options_.lease),
      FormatDuration(options_.drain_timeout),
      health_port_ >= 0 ? options_.health_host + ":" + std::to_string(health_port_) : "off",
      kinds_text_);

  completion_thread_ = std::jthread([this] { CompletionLoop(); });
  for (int i = 0; i < options_.concurrency; ++i) {
    slot_threads_.emplace_back([this, i] { SlotLoop(i); });
  }
  watchdog_thread_ = std::jthread([this](std::stop_token st) { WatchdogLoop(st); });
  control_thread_ = std::jthread([this](std::stop_token st) { ControlLoop(st); });
  claim_thread_ = std::jthread([this](std::stop_token st) { ClaimLoop(st); });
  supervisor_ = std::jthread([this] { Supervise(); });
  std::lock_guard lock(stop_mu_);
  started_ = true;
  return {};
}

void WorkerImpl::Stop() {
  std::lock_guard lock(stop_mu_);
  stop_requested_ = true;
  stop_cv_.notify_all();
}

void WorkerImpl::Wait() {
  {
    std::lock_guard lock(stop_mu_);
    if (!started_ || waited_) return;
    waited_ = true;
  }
  supervisor_.join();
}

int WorkerImpl::WaitUntilDrained() {
  std::unique_lock lock(stop_mu_);
  if (!started_) return 0;
  stop_cv_.wait(lock, [&] { return drained_; });
  return abandoned_;
}

void WorkerImpl::Supervise() {
  {
    std::unique_lock lock(stop_mu_);
    stop_cv_.wait(lock, [&] { return stop_requested_; });
  }
  // The drain timeout counts from Stop(), not from when claiming has wound down.
  const auto drain_deadline = SteadyClock::now() + options_.drain_timeout;
  int running = 0;
  {
    std::lock_guard lock(mu_);
    draining_ = true;
    status_ = "draining";
    running = RunningLocked();
  }
  spdlog::info("worker.draining id={}: stopped claiming; {} task(s) running, up to {} to finish",
               id_, running, FormatDuration(options_.drain_timeout));
  WakeControl();  // heartbeat "draining" now
  claim_thread_.request_stop();
  space_cv_.notify_all();
  claim_thread_.join();

  // Prefetched tasks never started: back to the queue at once, without counting an attempt.
  std::vector<TaskPtr> prefetched;
  {
    std::lock_guard lock(mu_);
    slots_exit_ = true;
    prefetched.assign(buffer_.begin(), buffer_.end());
    buffer_.clear();
    active_ -= static_cast<int>(prefetched.size());
    for (auto& s : prefetched) s->finished = true;
  }
  work_cv_.notify_all();
  polled_cv_.notify_all();
  for (auto& s : prefetched) QueueCompletion(s, MakeCompletion(s, Completion::Kind::kHandBack));
  if (!prefetched.empty()) {
    spdlog::info("worker {}: handed back {} prefetched task(s)", id_, prefetched.size());
  }

  std::vector<TaskPtr> remaining;
  {
    std::unique_lock lock(mu_);
    space_cv_.wait_until(lock, drain_deadline, [&] { return UnfinishedLocked() == 0; });
    for (auto& s : slots_) {
      if (s && !s->finished) remaining.push_back(s);
    }
  }
  if (!remaining.empty()) {
    spdlog::warn(
        "worker {}: drain timeout passed; stopping {} running task(s) and handing them back", id_,
        remaining.size());
    for (auto& s : remaining) s->RequestStop(StopReason::kDrain);
    // Handlers that honour their stop token hand their task back as they return; give them a
    // moment (a shell child gets SIGTERM, then SIGKILL after its grace), then hand back the rest
    // regardless so the queue does not wait for a lease to expire.
    std::vector<TaskPtr> stuck;
    {
      std::unique_lock lock(mu_);
      space_cv_.wait_for(lock, milliseconds(3000), [&] { return UnfinishedLocked() == 0; });
      for (auto& s : slots_) {
        if (s && !s->finished) {
          s->finished = true;
          stuck.push_back(s);
        }
      }
    }
    for (auto& s : stuck) {
      spdlog::warn("worker {}: task {} ignores its stop token; handed back while it still runs",
                   id_, s->task.id);
      QueueCompletion(s, MakeCompletion(s, Completion::Kind::kHandBack));
    }
  }

  // Every task has ended or been handed back. A slot thread still inside its handler ignores
  // its stop (here or earlier, after a timeout or cancel): joining it now could wait without
  // end, so the rest of the worker shuts down first and it is joined last.
  std::vector<size_t> deaf;
  for (size_t i = 0; i < slot_threads_.size(); ++i) {
    if (in_handler_[i].load()) {
      deaf.push_back(i);
    } else {
      slot_threads_[i].join();
    }
  }
  {
    std::lock_guard lock(done_mu_);
    outbox_closing_ = true;
  }
  done_cv_.notify_all();
  completion_thread_.join();
  watchdog_thread_.request_stop();
  watchdog_thread_.join();
  {
    std::lock_guard lock(mu_);
    status_ = "stopped";
  }
  control_thread_.request_stop();  // sends the final "stopped" heartbeat on its way out
  control_thread_.join();
  if (health_) health_->Stop();
  spdlog::info("worker.stopped id={} processed={} failed={}", id_, processed_.load(),
               failed_.load());
  {
    std::lock_guard lock(stop_mu_);
    drained_ = true;
    abandoned_ = static_cast<int>(deaf.size());
  }
  stop_cv_.notify_all();
  if (!deaf.empty()) {
    spdlog::warn("worker {}: {} handler thread(s) ignore their stop and still run", id_,
                 deaf.size());
  }
  for (size_t i : deaf) slot_threads_[i].join();
}

// ---------------------------------------------------------------------------------------------
// Claiming and dispatch

void WorkerImpl::ClaimLoop(std::stop_token st) {
  LowerThreadPriority(options_.nice);
  Connection conn(*factory_, "claim");
  while (!st.stop_requested()) {
    int want = 0;
    {
      std::unique_lock lock(mu_);
      claim_waiting_ = true;
      space_cv_.wait_for(lock, st, options_.block, [&] { return active_ < capacity_; });
      claim_waiting_ = false;
      if (st.stop_requested()) break;
      want = capacity_ - active_;
    }
    Broker* b = conn.Get();
    if (b == nullptr) {
      if (!conn.Backoff(st)) break;
      continue;
    }
    if (want <= 0) {
      // Every slot busy: nothing to claim, but health reports whether this path could reach
      // Redis, so a worker busy with long tasks stays healthy while Redis is.
      auto pong = b->Ping();
      if (!pong) {
        conn.Failed(pong.error());
        if (!conn.Backoff(st)) break;
        continue;
      }
      conn.Ok();
      last_claim_ok_ms_ = SteadyMs();
      continue;
    }
    auto claimed = b->Claim(options_.queues, id_, want, options_.block);
    if (!claimed) {
      conn.Failed(claimed.error());
      if (!conn.Backoff(st)) break;
      continue;
    }
    conn.Ok();
    last_claim_ok_ms_ = SteadyMs();
    if (!claimed->empty()) Accept(std::move(*claimed));
  }
}

void WorkerImpl::Accept(std::vector<ClaimedTask> tasks) {
  std::vector<TaskPtr> hand_back;
  size_t added = 0;
  {
    std::lock_guard lock(mu_);
    for (auto& t : tasks) {
      auto it = held_.find(t.id);
      // A fresh claim of a task whose execution here has ended is its next execution, claimed
      // before that end's completion came back (a snooze woken at once, in complete.lua): it
      // replaces the ended one, whose completion, when it comes back, leaves it alone.
      const bool next_execution = it != held_.end() && it->second->finished && !t.reclaimed;
      if (it != held_.end() && !next_execution) {
        // We reclaimed a task we still hold (our renewals lapsed, e.g. during a Redis outage,
        // and nobody else took it): keep the execution we have and finish under the new epoch.
        it->second->task.epoch = t.epoch;
        it->second->task.entry_id = t.entry_id;
        continue;
      }
      auto s = std::make_shared<TaskState>(std::move(t));
      held_.insert_or_assign(s->task.id, s);
      if (slots_exit_) {
        // Arrived after the drain began (a reclaim in flight): never start it.
        s->finished = true;
        hand_back.push_back(std::move(s));
        continue;
      }
      buffer_.push_back(std::move(s));
      ++active_;
      ++added;
    }
  }
  if (added == 1) {
    work_cv_.notify_one();
  } else if (added > 1) {
    work_cv_.notify_all();
  }
  for (auto& s : hand_back) QueueCompletion(s, MakeCompletion(s, Completion::Kind::kHandBack));
}

void WorkerImpl::SlotLoop(int slot) {
  LowerThreadPriority(options_.nice);
  const auto idx = static_cast<size_t>(slot);
  while (true) {
    TaskPtr s;
    int64_t epoch = 0;
    {
      std::unique_lock lock(mu_);
      work_cv_.wait(lock, [&] { return !buffer_.empty() || slots_exit_; });
      if (buffer_.empty()) return;
      s = std::move(buffer_.front());
      buffer_.pop_front();
      s->slot = slot;
      slots_[idx] = s;
    }
    if (!AwaitCancelPollIfStale(s)) {
      // The drain began while it waited for that poll: never started, it goes back as the
      // buffer's tasks did.
      bool notify_space = false;
      {
        std::lock_guard lock(mu_);
        notify_space = claim_waiting_ || draining_;
        slots_[idx] = nullptr;
        s->slot = -1;
        --active_;
        s->finished = true;
      }
      if (notify_space) space_cv_.notify_all();
      QueueCompletion(s, MakeCompletion(s, Completion::Kind::kHandBack));
      continue;
    }
    {
      std::lock_guard lock(mu_);
      s->timeout =
          s->task.timeout_ms > 0 ? milliseconds(s->task.timeout_ms) : options_.default_timeout;
      if (s->timeout.count() > 0) s->deadline = SteadyClock::now() + s->timeout;
      epoch = s->task.epoch;
    }
    Execute(slot, s, epoch);
  }
}

// A task that waited in the buffer longer than a cancel poll's period may have been cancelled
// since the last poll, just as its slot came free (a run that ends cancels the task its task node
// left waiting here, and its end is what frees the slot): it starts only after a poll that began
// after now, which stops it first if so. Bounded: with Redis away it starts as it would have.
// Tasks taken from the buffer within the period, as any busy queue's are, wait for nothing.
// False when the drain began meanwhile: the task is not to start.
bool WorkerImpl::AwaitCancelPollIfStale(const TaskPtr& s) {
  if (SteadyClock::now() - s->buffered_at < kCancelPollEvery) return true;
  uint64_t next = 0;  // the first poll to begin after this point
  {
    std::lock_guard lock(mu_);
    next = cancel_polls_begun_ + 1;
  }
  {
    std::lock_guard lock(control_mu_);
    cancel_poll_wanted_ = true;
  }
  control_cv_.notify_all();
  std::unique_lock lock(mu_);
  polled_cv_.wait_for(lock, 4 * kCancelPollEvery,
                      [&] { return cancel_polls_done_ >= next || slots_exit_; });
  return !slots_exit_;
}

Completion WorkerImpl::MakeCompletion(const TaskPtr& s, Completion::Kind kind) const {
  Completion c;
  c.kind = kind;
  c.id = s->task.id;
  c.queue = s->task.queue;
  c.worker = id_;
  return c;  // epoch and entry_id are filled in when sent: a self-reclaim may change them
}

void WorkerImpl::Execute(int slot, const TaskPtr& s, int64_t epoch) {
  const auto exec_start = SteadyClock::now();
  HandlerResult result;
  const bool stopped_first = s->reason.load() != StopReason::kNone;
  if (stopped_first) {
    result = tl::unexpected<HandlerError>(HandlerError{"stopped before it started", true});
  } else if (const Handler* handler = registry_.Find(s->task.kind)) {
    auto payload = ParseJson(s->task.payload);
    if (!payload) {
      result = tl::unexpected<HandlerError>(
          HandlerError{"payload is not valid JSON: " + payload.error().message, false});
    } else {
      TaskEmitter emitter(*this, options_, s->task.queue, s->task.id);
      TaskContext ctx;
      ctx.id = s->task.id;
      ctx.queue = s->task.queue;
      ctx.kind = s->task.kind;
      ctx.payload = std::move(*payload);
      ctx.epoch = epoch;
      ctx.attempt = s->task.attempt;
      ctx.max_attempts = s->task.max_attempts;
      if (s->timeout.count() > 0) {
        ctx.deadline_ms =
            WallNowMs() +
            std::chrono::duration_cast<milliseconds>(s->deadline - SteadyClock::now()).count();
      }
      ctx.stop = s->stop.get_token();
      ctx.events = &emitter;
      ctx.slot_wanted = [this] {
        std::lock_guard lock(mu_);
        return !buffer_.empty();
      };
      // A handler that throws fails its task, never the worker.
      const auto idx = static_cast<size_t>(slot);
      in_handler_[idx] = true;
      try {
        result = (*handler)(ctx);
      } catch (const std::exception& e) {
        result = tl::unexpected<HandlerError>(HandlerError{e.what(), true});
      } catch (...) {
        result = tl::unexpected<HandlerError>(HandlerError{"handler threw a non-exception", true});
      }
      in_handler_[idx] = false;
      emitter.Finish();  // before the completion, so the note precedes the terminal event
    }
  } else {
    result = tl::unexpected<HandlerError>(HandlerError{
        "no handler for kind '" + s->task.kind + "' (this worker knows: " + kinds_text_ + ")",
        false});
  }

  const StopReason reason = s->reason.load();
  bool ended_without_it = false;
  {
    std::lock_guard lock(mu_);
    ended_without_it = s->finished;
  }
  bool drop = false;
  Completion c = MakeCompletion(s, Completion::Kind::kSucceeded);
  if (reason == StopReason::kLeaseLost) {
    // Another worker owns the task now (or it ended); its fencing would reject us anyway.
    drop = true;
  } else if (ended_without_it) {
    // The watchdog (a stop ignored) or a drain ended this attempt while the handler still ran.
    drop = true;
    spdlog::warn(
        "task.late_return id={} queue={} kind={} after_ms={}: its attempt had already "
        "ended; what the handler returned ({}) is discarded",
        s->task.id, s->task.queue, s->task.kind,
        std::chrono::duration_cast<milliseconds>(SteadyClock::now() - exec_start).count(),
        result ? "a result" : "an error");
  } else if (result) {
    // A result that cannot be kept fails the attempt for good: the handler would return it again.
    if (auto refused = DumpResult(*result, c.result)) {
      c.kind = Completion::Kind::kFailed;
      c.error = std::move(*refused);
      c.retryable = false;
    }
  } else if (result.error().snooze &&
             (reason == StopReason::kNone || reason == StopReason::kDrain)) {
    // Waiting for a time: a drain has nothing to hand back sooner.
    c.kind = Completion::Kind::kSnooze;
    c.backoff_ms = std::clamp<int64_t>(result.error().snooze->count(), 1, kMaxSnooze.count());
  } else if (reason == StopReason::kCancel) {
    c.kind = Completion::Kind::kCancelled;
    c.error = stopped_first ? "cancelled before it started" : "cancelled while running";
  } else if (reason == StopReason::kDrain) {
    c.kind = Completion::Kind::kHandBack;
  } else {
    c.kind = Completion::Kind::kFailed;
    if (reason == StopReason::kTimeout) {
      c.error = "timed out after " + SecondsText(s->timeout);
      c.retryable = true;
    } else {
      c.error = KeptError(std::move(result.error().message));
      c.retryable = result.error().retryable;
    }
    if (c.retryable && s->task.attempt < s->task.max_attempts) {
      BackoffPolicy policy{options_.backoff_base, options_.backoff_cap};
      c.backoff_ms = BackoffDelay(policy, std::max(1, s->task.attempt)).count();
      // The handler knows better (a Retry-After), within the same cap.
      if (!result && reason == StopReason::kNone && result.error().retry_after) {
        c.backoff_ms = std::clamp<int64_t>(result.error().retry_after->count(), 0,
                                           options_.backoff_cap.count());
      }
    }
  }

  if (c.kind == Completion::Kind::kFailed && !drop) {
    ++failed_;
    const bool again = c.retryable && s->task.attempt < s->task.max_attempts;
    spdlog::info("{} id={} queue={} kind={} attempt={}/{} retryable={} error=\"{}\"",
                 again ? "task.retrying" : "task.failed", s->task.id, s->task.queue, s->task.kind,
                 s->task.attempt, s->task.max_attempts, c.retryable, c.error);
  } else if (c.kind == Completion::Kind::kCancelled && !drop) {
    spdlog::info("task.cancelled id={} queue={} kind={}", s->task.id, s->task.queue, s->task.kind);
  } else if (c.kind == Completion::Kind::kHandBack && !drop) {
    spdlog::info("task.handed_back id={} queue={} kind={} reason=drain", s->task.id, s->task.queue,
                 s->task.kind);
  } else if (c.kind == Completion::Kind::kSnooze && !drop) {
    spdlog::info("task.snoozed id={} queue={} kind={} attempt={} for_ms={}", s->task.id,
                 s->task.queue, s->task.kind, s->task.attempt, c.backoff_ms);
  }
  // Seed 004's "Tasks" column: successfully completed tasks; failures have their own counter.
  if (!drop && c.kind == Completion::Kind::kSucceeded) ++processed_;
  const int64_t duration_ms =
      std::chrono::duration_cast<milliseconds>(SteadyClock::now() - exec_start).count();
  if (c.kind == Completion::Kind::kSucceeded && !drop) {
    spdlog::info("task.succeeded id={} queue={} kind={} attempt={} duration_ms={}", s->task.id,
                 s->task.queue, s->task.kind, s->task.attempt, duration_ms);
  }
  if (options_.on_task_end) {
    TaskObservation o;
    o.queue = s->task.queue;
    o.kind = s->task.kind;
    if (drop) {
      o.outcome = "lost";
    } else if (c.kind == Completion::Kind::kSucceeded) {
      o.outcome = "succeeded";
    } else if (c.kind == Completion::Kind::kCancelled) {
      o.outcome = "cancelled";
    } else if (c.kind == Completion::Kind::kHandBack) {
      o.outcome = "handed_back";
    } else if (c.kind == Completion::Kind::kSnooze) {
      o.outcome = "snoozed";
    } else {
      o.outcome = c.retryable && s->task.attempt < s->task.max_attempts ? "retried" : "failed";
    }
    o.wait_ms = std::max<int64_t>(0, s->task.started_ms - s->task.created_ms);
    o.duration_ms = duration_ms;
    o.attempt = s->task.attempt;
    o.reclaimed = s->task.reclaimed;
    options_.on_task_end(o);
  }

  bool send = false;
  bool notify_space = false;
  {
    std::lock_guard lock(mu_);
    notify_space = claim_waiting_ || draining_;
    slots_[static_cast<size_t>(slot)] = nullptr;
    s->slot = -1;
    --active_;
    send = !s->finished && !drop;
    s->finished = true;
    if (drop) {
      auto it = held_.find(s->task.id);
      if (it != held_.end() && it->second == s) held_.erase(it);
    }
  }
  if (notify_space) space_cv_.notify_all();
  if (send) QueueCompletion(s, std::move(c));
}

int WorkerImpl::RunningLocked() const {
  return static_cast<int>(
      std::count_if(slots_.begin(), slots_.end(), [](const TaskPtr& s) { return s != nullptr; }));
}

int WorkerImpl::UnfinishedLocked() const {
  return static_cast<int>(std::count_if(slots_.begin(), slots_.end(),
                                        [](const TaskPtr& s) { return s && !s->finished; }));
}

bool WorkerImpl::TakeFromBufferLocked(const TaskPtr& s) {
  auto it = std::find(buffer_.begin(), buffer_.end(), s);
  if (it == buffer_.end()) return false;
  buffer_.erase(it);
  --active_;
  return true;
}

// ---------------------------------------------------------------------------------------------
// Outbox: completions and events

void WorkerImpl::QueueCompletion(const TaskPtr& s, Completion c) {
  bool wake = false;
  {
    std::lock_guard lock(done_mu_);
    completions_.push_back(PendingCompletion{s, std::move(c)});
    wake = completion_idle_;
    completion_idle_ = false;
  }
  if (wake) done_cv_.notify_one();
}

void WorkerImpl::PushEvent(const std::string& queue, const std::string& id, const std::string& type,
                           Json data) {
  const size_t bytes = type.size() + HeldBytes(data);
  bool wake = false;
  {
    std::lock_guard lock(done_mu_);
    if (events_.size() >= kMaxBufferedEvents || events_bytes_ + bytes > kMaxBufferedEventBytes) {
      ++dropped_events_;
      return;
    }
    events_bytes_ += bytes;
    events_.push_back(PendingEvent{queue, id, type, std::move(data), bytes});
    wake = completion_idle_;
    completion_idle_ = false;
  }
  if (wake) done_cv_.notify_one();
}

void WorkerImpl::CompletionLoop() {
  LowerThreadPriority(options_.nice);
  Connection conn(*factory_, "completion");
  std::vector<PendingCompletion> batch;
  std::vector<PendingEvent> events;
  while (true) {
    int64_t dropped = 0;
    {
      std::unique_lock lock(done_mu_);
      completion_idle_ = true;
      done_cv_.wait(lock,
                    [&] { return !completions_.empty() || !events_.empty() || outbox_closing_; });
      completion_idle_ = false;
      if (completions_.empty() && events_.empty()) break;  // closing and nothing left
      batch.swap(completions_);
      events.swap(events_);
      events_bytes_ = 0;
      dropped = std::exchange(dropped_events_, 0);
    }
    if (dropped > 0) {
      spdlog::warn(
          "dropped {} task event(s): the events not yet sent to Redis reached {} or {} MiB",
          dropped, kMaxBufferedEvents, kMaxBufferedEventBytes >> 20);
    }
    // Events first, so a task's log lines precede its terminal event.
    if (!events.empty()) FlushEvents(conn, events);
    if (!batch.empty()) FlushCompletions(conn, batch);
    events.clear();
    batch.clear();
  }
}

void WorkerImpl::FlushEvents(Connection& conn, std::vector<PendingEvent>& events) {
  // Best effort: events are progress, not state. One retry after a reconnect, then drop.
  size_t i = 0;
  std::vector<std::pair<std::string, Json>> group;
  while (i < events.size()) {
    size_t j = i;
    size_t bytes = 0;
    group.clear();
    while (j < events.size() && events[j].id == events[i].id &&
           (group.empty() || bytes + events[j].bytes <= kEventCallBytes)) {
      bytes += events[j].bytes;
      group.emplace_back(std::move(events[j].type), std::move(events[j].data));
      ++j;
    }
    for (int attempt = 0; attempt < 2; ++attempt) {
      Broker* b = conn.Get();
      if (b == nullptr) break;
      auto st = b->AppendEvents(events[i].queue, events[i].id, group);
      if (st) {
        conn.Ok();
        break;
      }
      conn.Failed(st.error());
    }
    i = j;
  }
}

void WorkerImpl::FlushCompletions(Connection& conn, std::vector<PendingCompletion>& batch) {
  std::vector<Completion> cs;
  cs.reserve(batch.size());
  {
    std::lock_guard lock(mu_);
    for (auto& p : batch) {
      p.completion.epoch = p.state->task.epoch;
      p.completion.entry_id = p.state->task.entry_id;
      cs.push_back(std::move(p.completion));
    }
  }
  // Retried until applied: Complete is idempotent (a repeat reports kDuplicate), and the held
  // leases keep being renewed meanwhile. Only a drain that cannot reach Redis gives up, after
  // a bound; those tasks' leases then expire and another worker reclaims them.
  std::optional<SteadyClock::time_point> give_up_at;
  std::stop_source never;
  while (true) {
    Broker* b = conn.Get();
    if (b != nullptr) {
      auto outcomes = b->Complete(cs);
      if (outcomes) {
        conn.Ok();
        for (size_t i = 0; i < outcomes->size() && i < cs.size(); ++i) {
          if ((*outcomes)[i] == CompletionOutcome::kStale) {
            spdlog::warn("task {}: completion rejected, another worker owns it now (epoch {})",
                         cs[i].id, cs[i].epoch);
          } else if ((*outcomes)[i] == CompletionOutcome::kMissing) {
            spdlog::warn("task {}: completion for a record that no longer exists", cs[i].id);
          }
        }
        break;
      }
      conn.Failed(outcomes.error());
    }
    bool closing = false;
    {
      std::lock_guard lock(done_mu_);
      closing = outbox_closing_;
    }
    if (closing) {
      if (!give_up_at) give_up_at = SteadyClock::now() + milliseconds(30000);
      if (SteadyClock::now() >= *give_up_at) {
        spdlog::error(
            "giving up on {} completion(s) at shutdown: Redis unreachable; their leases will "
            "expire and the tasks will run again elsewhere",
            cs.size());
        break;
      }
    }
    conn.Backoff(never.get_token());
  }
  std::lock_guard lock(mu_);
  for (auto& p : batch) {
    auto it = held_.find(p.state->task.id);
    if (it != held_.end() && it->second == p.state) held_.erase(it);
  }
}

// ---------------------------------------------------------------------------------------------
// Control loop: heartbeat, leases, cancels, reclaim, promotion

void WorkerImpl::WakeControl() {
  {
    std::lock_guard lock(control_mu_);
    control_wake_ = true;
  }
  control_cv_.notify_all();
}

WorkerInfo WorkerImpl::Info() {
  WorkerInfo info;
  info.id = id_;
  info.hostname = hostname_;
  info.pid = static_cast<int64_t>(::getpid());
  info.version = FERRY_VERSION;
  info.queues = options_.queues;
  info.concurrency = options_.concurrency;
  info.tasks_processed = processed_.load();
  info.tasks_failed = failed_.load();
  info.started_ms = started_ms_;
  info.last_heartbeat_ms = WallNowMs();
  info.alive = true;
  std::lock_guard lock(mu_);
  info.status = status_;
  // The tasks its slots run that it still holds: a slot whose handler ignores its stop keeps
  // running a task already handed back (a drain) or ended (its timeout), which is not this
  // worker's any more.
  for (const auto& s : slots_) {
    if (s && held_.count(s->task.id) != 0) info.current_tasks.push_back(s->task.id);
  }
  return info;
}

std::vector<LeaseRef> WorkerImpl::HeldLeases() {
  std::vector<LeaseRef> leases;
  std::lock_guard lock(mu_);
  leases.reserve(held_.size());
  for (const auto& [id, s] : held_) {
    leases.push_back(LeaseRef{id, s->task.queue, s->task.entry_id, s->task.epoch});
  }
  return leases;
}

bool WorkerImpl::SendHeartbeat(Broker& b, Connection& conn) {
  auto st = b.Heartbeat(Info(), options_.heartbeat_ttl);
  if (!st) conn.Failed(st.error());
  return static_cast<bool>(st);
}

bool WorkerImpl::RenewLeases(Broker& b, Connection& conn) {
  auto leases = HeldLeases();
  if (leases.empty()) return true;
  auto lost = b.RenewLeases(id_, leases);
  if (!lost) {
    conn.Failed(lost.error());
    return false;
  }
  std::vector<TaskPtr> to_stop;
  {
    std::lock_guard lock(mu_);
    for (const auto& id : *lost) {
      auto it = held_.find(id);
      if (it == held_.end()) continue;
      TaskPtr s = it->second;
      if (s->finished) continue;  // its completion is on its way; the broker decides
      if (TakeFromBufferLocked(s)) {
        s->finished = true;
        held_.erase(it);
      } else if (s->slot >= 0) {
        to_stop.push_back(s);
      }
    }
  }
  for (auto& s : to_stop) {
    if (s->RequestStop(StopReason::kLeaseLost)) {
      spdlog::warn(
          "task.lease_lost id={} queue={} kind={}: another worker took it over; stopping its "
          "handler",
          s->task.id, s->task.queue, s->task.kind);
    }
  }
  return true;
}

bool WorkerImpl::PollCancels(Broker& b, Connection& conn) {
  uint64_t poll = 0;
  {
    std::lock_guard lock(mu_);
    poll = ++cancel_polls_begun_;
  }
  auto leases = HeldLeases();
  Result<std::vector<std::string>> cancelled = std::vector<std::string>{};
  if (!leases.empty()) cancelled = b.CancelRequested(leases);
  if (!cancelled) {
    conn.Failed(cancelled.error());
    return false;
  }
  std::vector<TaskPtr> to_stop;
  std::vector<TaskPtr> never_started;
  {
    std::lock_guard lock(mu_);
    cancel_polls_done_ = poll;  // told below, once the cancelled tasks are marked
    for (const auto& id : *cancelled) {
      auto it = held_.find(id);
      if (it == held_.end() || it->second->finished) continue;
      TaskPtr s = it->second;
      if (TakeFromBufferLocked(s)) {
        s->finished = true;
        never_started.push_back(s);
      } else if (s->slot >= 0) {
        to_stop.push_back(s);
      }
    }
  }
  for (auto& s : to_stop) {
    if (s->RequestStop(StopReason::kCancel)) {
      spdlog::info("task {}: cancel requested; stopping its handler", s->task.id);
    }
  }
  for (auto& s : never_started) {
    Completion c = MakeCompletion(s, Completion::Kind::kCancelled);
    c.error = "cancelled before it started";
    QueueCompletion(s, std::move(c));
  }
  if (!never_started.empty()) space_cv_.notify_all();
  polled_cv_.notify_all();
  return true;
}

bool WorkerImpl::ReclaimExpired(Broker& b, Connection& conn) {
  for (const auto& queue : options_.queues) {
    int want = 0;
    {
      std::lock_guard lock(mu_);
      want = capacity_ - active_;
    }
    if (want <= 0) return true;  // busy: idle workers will take them
    auto taken = b.Reclaim(queue, id_, options_.lease, want);
    if (!taken) {
      conn.Failed(taken.error());
      return false;
    }
    if (!taken->empty()) {
      for (const auto& t : *taken) {
        spdlog::info("task.reclaimed id={} queue={} kind={} attempt={} worker={}", t.id, t.queue,
                     t.kind, t.attempt, id_);
      }
      Accept(std::move(*taken));
    }
  }
  return true;
}

bool WorkerImpl::PromoteDue(Broker& b, Connection& conn) {
  for (const auto& queue : options_.queues) {
    auto moved = b.PromoteDue(queue, WallNowMs(), 1000);
    if (!moved) {
      conn.Failed(moved.error());
      return false;
    }
  }
  return true;
}

void WorkerImpl::ControlLoop(std::stop_token st) {
  Connection conn(*factory_, "control", std::move(first_connection_));
  const milliseconds heartbeat_every = std::max(options_.heartbeat_ttl / 3, milliseconds(100));
  const milliseconds renew_every = std::max(options_.lease / 3, milliseconds(50));
  const milliseconds cancel_every = kCancelPollEvery;
  const milliseconds reclaim_every = std::max(options_.lease / 2, milliseconds(100));
  const milliseconds promote_every(200);
  auto now = SteadyClock::now();
  auto next_heartbeat = now + heartbeat_every;  // Start() sent the first one
  auto next_renew = now + renew_every;
  auto next_cancel = now + cancel_every;
  auto next_reclaim = now;  // tasks of workers that died before we started
  auto next_promote = now;

  while (!st.stop_requested()) {
    Broker* b = conn.Get();
    if (b == nullptr) {
      conn.Backoff(st);
      continue;
    }
    bool draining = false;
    {
      std::lock_guard lock(mu_);
      draining = draining_;
    }
    bool woken = false;
    bool poll_now = false;
    {
      std::lock_guard lock(control_mu_);
      woken = std::exchange(control_wake_, false);
      poll_now = std::exchange(cancel_poll_wanted_, false);
    }
    now = SteadyClock::now();
    bool ok = true;
    if (woken || now >= next_heartbeat) {
      ok = SendHeartbeat(*b, conn);
      if (ok) next_heartbeat = now + heartbeat_every;
    }
    if (ok && now >= next_renew) {
      ok = RenewLeases(*b, conn);
      if (ok) next_renew = now + renew_every;
    }
    if (ok && (poll_now || now >= next_cancel)) {
      ok = PollCancels(*b, conn);
      if (ok) next_cancel = now + cancel_every;
    }
    // A draining worker takes no new work: no reclaim; promotion is left to the others.
    if (ok && !draining && now >= next_reclaim) {
      ok = ReclaimExpired(*b, conn);
      if (ok) next_reclaim = now + reclaim_every;
    }
    if (ok && !draining && now >= next_promote) {
      ok = PromoteDue(*b, conn);
      if (ok) next_promote = now + promote_every;
    }
    if (!ok) {
      conn.Backoff(st);
      continue;
    }
    conn.Ok();
    auto next = std::min({next_heartbeat, next_renew, next_cancel});
    if (!draining) next = std::min({next, next_reclaim, next_promote});
    std::unique_lock lock(control_mu_);
    control_cv_.wait_until(lock, st, next, [&] { return control_wake_ || cancel_poll_wanted_; });
  }

  // Final heartbeat: the record stays, marked stopped, until its TTL runs out, so `worker list`
  // shows how this worker ended.
  for (int attempt = 0; attempt < 3; ++attempt) {
    Broker* b = conn.Get();
    if (b != nullptr && SendHeartbeat(*b, conn)) break;
    SleepFor(std::stop_token{}, milliseconds(200));
  }
}

void WorkerImpl::WatchdogLoop(std::stop_token st) {
  // 50 ms granularity is plenty for task timeouts; the loop touches no I/O.
  while (SleepFor(st, milliseconds(50))) {
    std::vector<TaskPtr> expired;
    auto now = SteadyClock::now();
    {
      std::lock_guard lock(mu_);
      for (const auto& s : slots_) {
        if (s && now >= s->deadline && s->reason.load() == StopReason::kNone) expired.push_back(s);
      }
    }
    for (auto& s : expired) {
      if (s->RequestStop(StopReason::kTimeout)) {
        spdlog::info("task.timeout id={} queue={} kind={} after={}: stopping its handler",
                     s->task.id, s->task.queue, s->task.kind, SecondsText(s->timeout));
      }
    }
    EndIgnoredStops();
  }
}

// A handler that ignores its stop keeps its slot (its thread cannot be killed), but not its task:
// the attempt ends without it, as the process of an exec handler would have been killed by now.
// A timed-out one is failed without a retry: a retry would run beside the handler still working.
void WorkerImpl::EndIgnoredStops() {
  const int64_t now = SteadyMs();
  std::vector<std::pair<TaskPtr, StopReason>> ignored;
  {
    std::lock_guard lock(mu_);
    for (const auto& s : slots_) {
      if (!s || s->finished) continue;
      const StopReason r = s->reason.load();
      if ((r == StopReason::kTimeout || r == StopReason::kCancel) &&
          now - s->stop_asked_ms.load() >= kIgnoredStopGrace.count()) {
        s->finished = true;
        ignored.emplace_back(s, r);
      }
    }
  }
  if (!ignored.empty()) space_cv_.notify_all();  // a drain waits for unfinished attempts only
  for (auto& [s, r] : ignored) {
    const std::string ignored_for =
        " (its handler ignored the stop for " + SecondsText(kIgnoredStopGrace) + " and still runs)";
    Completion c = MakeCompletion(s, Completion::Kind::kCancelled);
    if (r == StopReason::kCancel) {
      c.error = "cancelled while running" + ignored_for;
    } else {
      c.kind = Completion::Kind::kFailed;
      c.error = "timed out after " + SecondsText(s->timeout) + ignored_for +
                "; not retried while it may still be working";
      c.retryable = false;
      ++failed_;
    }
    spdlog::warn("task.stop_ignored id={} queue={} kind={}: {}", s->task.id, s->task.queue,
                 s->task.kind, c.error);
    QueueCompletion(s, std::move(c));
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------------

Result<std::unique_ptr<Worker>> MakeWorker(WorkerOptions options, const HandlerRegistry& registry,
                                           std::unique_ptr<BrokerFactory> brokers) {
  if (!brokers) return Fail(ErrorCode::kInvalidArgument, "no broker factory given");
  if (options.concurrency <= 0) {
    return Fail(ErrorCode::kInvalidArgument, "concurrency must be greater than 0");
  }
  if (options.queues.empty()) return Fail(ErrorCode::kInvalidArgument, "no queues given");
  if (options.max_event_bytes == 0 || options.max_attempt_event_bytes < options.max_event_bytes) {
    return Fail(ErrorCode::kInvalidArgument,
                "max_event_bytes must be > 0 and max_attempt_event_bytes at least as large, not " +
                    std::to_string(options.max_event_bytes) + " and " +
                    std::to_string(options.max_attempt_event_bytes));
  }
  for (const auto& q : options.queues) {
    if (auto st = ValidateQueueName(q); !st) return Fail(st.error());
  }
  if (options.lease < kMinTaskLease) {
    return Fail(ErrorCode::kInvalidArgument,
                "lease must be at least " + FormatDuration(kMinTaskLease));
  }
  if (options.heartbeat_ttl < milliseconds(300)) {
    return Fail(ErrorCode::kInvalidArgument, "heartbeat TTL must be at least 300ms");
  }
  if (options.block <= milliseconds(0)) {
    return Fail(ErrorCode::kInvalidArgument, "claim block time must be positive");
  }
  if (options.drain_timeout < milliseconds(0) || options.default_timeout < milliseconds(0)) {
    return Fail(ErrorCode::kInvalidArgument, "timeouts must not be negative");
  }
  if (options.nice < 0 || options.nice > 19) {
    return Fail(ErrorCode::kInvalidArgument,
                "nice must be 0-19, not " + std::to_string(options.nice));
  }
  if (options.health_port > 65535) {
    return Fail(ErrorCode::kInvalidArgument, "health port must be -1, 0 or a port number");
  }
  if (auto url = ParseRedisUrl(options.broker.redis_url); !url) return Fail(url.error());
  return std::unique_ptr<Worker>(
      std::make_unique<WorkerImpl>(std::move(options), registry, std::move(brokers)));
}

std::string DefaultWorkerId() {
  return Hostname() + "-" + std::to_string(::getpid()) + "-" + RandomHex(4);
}

Result<TaskRecord> TaskClient::Wait(const std::string& id, std::chrono::milliseconds timeout) {
  const auto deadline = SteadyClock::now() + timeout;
  std::string after = "0";
  while (true) {
    auto rec = broker_->GetTask(id);
    if (!rec) return Fail(rec.error());
    if (!*rec) return Fail(ErrorCode::kNotFound, "no task with id " + id);
    if (IsTerminal((*rec)->status)) return std::move(**rec);
    auto left = std::chrono::duration_cast<milliseconds>(deadline - SteadyClock::now());
    if (left <= milliseconds(0)) {
      return Fail(ErrorCode::kTimeout, "task " + id + " still " +
                                           std::string(TaskStatusName((*rec)->status)) + " after " +
                                           FormatDuration(timeout));
    }
    // Every transition appends an event, so blocking on the event stream wakes us when the task
    // changes; the bound keeps us polling even if an event is missed.
    auto events = broker_->ReadEvents(id, after, 100, std::min(left, milliseconds(500)));
    if (events && !events->empty()) {
      after = events->back().id;
    } else if (!events) {
      std::this_thread::sleep_for(std::min(left, milliseconds(50)));
    }
  }
}

}  // namespace ferry
