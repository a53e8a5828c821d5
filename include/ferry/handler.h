// The C++ API for task handlers: register a function per task kind; the worker calls it with the
// task's payload, its fencing epoch, a stop token and an event emitter.
//
// A handler returns a JSON result or a HandlerError that says whether a retry may help.
// A handler that throws fails its task (retryable), never the worker. A handler must watch
// `stop`: it is requested when the task is cancelled, times out, loses its lease, or the
// worker's drain deadline passes.
//
// Thread-safety: HandlerRegistry is filled before the worker starts and read-only after;
// handlers run concurrently on the worker's slot threads.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <stop_token>
#include <string>
#include <utility>
#include <vector>

#include "ferry/json.h"
#include "ferry/result.h"

namespace ferry {

// The largest event a handler may emit: its type and its data as JSON text together (an exec
// handler's event line, docs/handlers.md, has the same limit).
inline constexpr size_t kMaxEventBytes = size_t{16} << 10;
// What one attempt's events may add to its task's event stream, counted as kMaxEventBytes counts
// them: a task's stream is stored in Redis, and a handler emitting without end must not fill it.
inline constexpr size_t kMaxAttemptEventBytes = size_t{1} << 20;
// The largest result a handler may return, as JSON text: it is kept in the task's record, which
// every listing reads whole (exec and http handlers' results have the same limit). A larger one
// fails the attempt for good, naming its size.
inline constexpr size_t kMaxResultBytes = size_t{1} << 20;

// Sends progress or log events to the task's event stream (`ferry task events ID --follow`).
// Thread-safe; events are buffered and written by the worker, so emitting does not block on I/O.
// Best effort: while Redis is slow or away, the worker holds at most 20,000 unsent events or
// 32 MiB of them and drops the rest (it logs how many); the stream keeps the last events_maxlen.
class EventEmitter {
 public:
  virtual ~EventEmitter() = default;
  // Dropped, with one warning per attempt for each reason: an event whose `type` is one of the
  // task's own events (`submitted`, `cancel_requested` or a status name such as `succeeded`), and
  // one larger than kMaxEventBytes. Once an attempt's events reach kMaxAttemptEventBytes, later
  // ones are dropped too, and when the attempt ends one "log" event says how many.
  virtual void Emit(const std::string& type, Json data) = 0;
};

struct TaskContext {
  std::string id;
  std::string queue;
  std::string kind;
  Json payload;
  int64_t epoch = 0;  // fencing token: pass it along to anything that must reject stale writers
  int attempt = 1;    // 1 for the first execution
  int max_attempts = 1;
  // Wall-clock milliseconds since the epoch at which the worker stops this attempt (its
  // timeout); 0 when it has none.
  int64_t deadline_ms = 0;
  std::stop_token stop;
  EventEmitter* events = nullptr;  // never null while the handler runs
  // Whether other tasks wait in this worker for a slot (claimed ahead, in its prefetch buffer):
  // a handler left with nothing to do but wait should give its slot back (Snooze) sooner rather
  // than later. Thread-safe and cheap; empty when the caller does not tell (take it as false).
  std::function<bool()> slot_wanted{};
};

struct HandlerError {
  HandlerError() = default;
  HandlerError(std::string message_in, bool retryable_in = true,
               std::optional<std::chrono::milliseconds> retry_after_in = std::nullopt)
      : message(std::move(message_in)), retryable(retryable_in), retry_after(retry_after_in) {}

  std::string message;
  bool retryable = true;
  // When set, the next attempt waits this long instead of the worker's backoff (an HTTP
  // handler's Retry-After). The worker caps it at its backoff cap.
  std::optional<std::chrono::milliseconds> retry_after;
  // Set by Snooze (below): not a failure.
  std::optional<std::chrono::milliseconds> snooze;
};

// The longest Snooze: a task may be scheduled at most this far ahead (a longer wait snoozes
// again when it comes back).
inline constexpr std::chrono::milliseconds kMaxSnooze = std::chrono::hours(24 * 366);

// What a handler returns to wait `wait` for a known time without holding its worker's slot (a
// workflow run in a long delay, a rate limit's window): the task is scheduled again that far
// ahead (at least 1 ms, at most kMaxSnooze) and runs again from the start, with a new epoch and
// the same attempt number: a snooze is not an attempt. The handler keeps what it has done
// elsewhere. A cancel requested meanwhile ends the task as cancelled; a snooze returned after a
// cancel request, a timeout or a lost lease counts as what ended the attempt.
inline HandlerError Snooze(std::chrono::milliseconds wait) {
  HandlerError e("snoozed", true);
  e.snooze = wait;
  return e;
}

using HandlerResult = tl::expected<Json, HandlerError>;
using Handler = std::function<HandlerResult(TaskContext&)>;

class HandlerRegistry {
 public:
  // Replaces any handler already registered for `kind`.
  void Register(std::string kind, Handler handler) {
    handlers_[std::move(kind)] = std::move(handler);
  }
  const Handler* Find(const std::string& kind) const {
    auto it = handlers_.find(kind);
    return it == handlers_.end() ? nullptr : &it->second;
  }
  std::vector<std::string> Kinds() const {
    std::vector<std::string> out;
    for (auto& [k, _] : handlers_) out.push_back(k);
    return out;
  }

 private:
  std::map<std::string, Handler> handlers_;
};

// Registers noop, echo, sleep, fail and shell (docs/cli.md "ferry worker start" has their
// payloads).
void RegisterBuiltinHandlers(HandlerRegistry& registry);

}  // namespace ferry
