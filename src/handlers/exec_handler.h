// `exec` handlers: a program per task (docs/handlers.md "exec").
//
// The child gets the task envelope as JSON on stdin and a clean environment (PATH, HOME, LANG,
// LC_ALL, TZ, TMPDIR of the worker, plus FERRY_TASK_* and FERRY_EVENTS_FD), in its own process
// group; cancel, timeout, lease loss and the drain deadline kill the group (SIGTERM, then
// SIGKILL after a grace period). Its stdout is the result: one JSON value. Exit 0 succeeds,
// kExitPermanent fails without retry, any other exit or a signal fails with retry. Lines on
// descriptor 3 are events ({"type": "...", "data": ...}); lines on stderr become "log" events and
// the end of stderr is the error message of a failure.
//
// Thread-safety: the returned handler may run on many slot threads at once.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

#include "core/result.h"
#include "worker/handler.h"

namespace ferry::handlers {

// The exit status that means "do not retry" (sysexits.h EX_DATAERR: the input was bad).
inline constexpr int kExitPermanent = 65;
// Descriptor the events pipe is given as in the child.
inline constexpr int kEventsFd = 3;

struct ExecOptions {
  std::vector<std::string> argv;  // required; argv[0] looked up on PATH
  // stdout (the result) larger than this fails the attempt without retry.
  size_t max_stdout_bytes = 1 << 20;
  // stderr kept for the error message; the rest is dropped (not an error).
  size_t max_stderr_bytes = 64 << 10;
  // One line on descriptor 3 longer than this, or more than max_events lines, fails the
  // attempt without retry and stops the program; the line is judged as soon as it passes this,
  // whether or not it ever ends. The worker drops events larger than kMaxEventBytes anyway.
  size_t max_event_bytes = kMaxEventBytes;
  int max_events = 1000;
  // stderr lines recorded as "log" events; later ones are dropped (one note says how many).
  int max_log_events = 1000;
  // A longer stderr line is recorded as its first max_log_line_bytes and a note of how many
  // bytes were cut, so that its "log" event stays well within kMaxEventBytes.
  size_t max_log_line_bytes = 8 << 10;
  std::chrono::milliseconds kill_grace = std::chrono::seconds(2);
};

// Fails (kInvalidArgument) when argv[0] is not an executable file or on PATH now: a worker that
// cannot run its handler must not start.
Result<Handler> MakeExecHandler(ExecOptions options);

}  // namespace ferry::handlers
