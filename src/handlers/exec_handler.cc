#include "handlers/exec_handler.h"

#include <algorithm>
#include <cctype>
#include <mutex>
#include <utility>

#include "broker/broker.h"
#include "handlers/envelope.h"
#include "process/process.h"
#include "worker/seconds_text.h"
#include "worker/tail_text.h"

namespace ferry::handlers {
namespace {

tl::unexpected<HandlerError> Permanent(std::string message) {
  return tl::unexpected<HandlerError>(HandlerError{std::move(message), false});
}
tl::unexpected<HandlerError> Transient(std::string message) {
  return tl::unexpected<HandlerError>(HandlerError{std::move(message), true});
}

// The events of one attempt: descriptor 3's lines and stderr's "log" lines, within their limits.
// The first protocol violation is kept and stops the program.
class AttemptEvents {
 public:
  AttemptEvents(const ExecOptions& options, EventEmitter* emitter, std::stop_source& stop)
      : options_(options), emitter_(emitter), stop_(stop) {}

  // `cut`: bytes of the line past what RunProcess keeps, which only make it too long.
  void OnEventLine(const std::string& line, size_t cut) {
    std::lock_guard lock(mu_);
    if (violation_) return;
    if (line.find_first_not_of(" \t\r") == std::string::npos) return;  // blank lines
    ++lines_;
    const std::string where = "event line " + std::to_string(lines_);
    if (line.size() + cut > options_.max_event_bytes) {
      return Violate(where + " is longer than " + std::to_string(options_.max_event_bytes) +
                     " bytes");
    }
    if (lines_ > options_.max_events) {
      return Violate("more than " + std::to_string(options_.max_events) + " event lines");
    }
    auto j = ParseJson(line);
    if (!j) return Violate(where + " is not JSON: " + j.error().message);
    if (!j->is_object() || !j->contains("type") || !(*j)["type"].is_string()) {
      return Violate(where + " must be an object with a string \"type\"");
    }
    std::string type = (*j)["type"].get<std::string>();
    if (auto why = HandlerEventTypeProblem(type)) return Violate(where + ": " + *why);
    for (const auto& [key, _] : j->items()) {
      if (key != "type" && key != "data") {
        return Violate(where + ": unknown field \"" + key + "\" (expected type and data)");
      }
    }
    emitter_->Emit(type, j->contains("data") ? (*j)["data"] : Json(nullptr));
  }

  void OnStderrLine(const std::string& line) {
    std::lock_guard lock(mu_);
    if (logs_ < options_.max_log_events) {
      ++logs_;
      emitter_->Emit("log", Json{{"stream", "stderr"}, {"line", line}});
    } else {
      ++dropped_logs_;
    }
  }

  // Called after the program ended.
  void Finish() {
    std::lock_guard lock(mu_);
    if (dropped_logs_ > 0) {
      emitter_->Emit("log", Json{{"stream", "stderr"},
                                 {"line", std::to_string(dropped_logs_) +
                                              " further stderr line(s) not recorded"}});
    }
  }

  std::optional<std::string> violation() const {
    std::lock_guard lock(mu_);
    return violation_;
  }

 private:
  // REQUIRES: mu_ held.
  void Violate(std::string why) {
    violation_ = std::move(why);
    stop_.request_stop();
  }

  // Constant after construction
  const ExecOptions& options_;
  EventEmitter* emitter_;
  std::stop_source& stop_;

  mutable std::mutex mu_;
  // Guarded by mu_
  int lines_ = 0;
  int logs_ = 0;
  int dropped_logs_ = 0;
  std::optional<std::string> violation_;
};

HandlerResult RunExec(const ExecOptions& options, TaskContext& ctx) {
  const std::string name = options.argv[0];
  ProcessSpec spec;
  spec.argv = options.argv;
  spec.clear_env = true;  // the worker's environment holds secrets and connection URLs
  spec.env = {{"FERRY_TASK_ID", ctx.id},
              {"FERRY_TASK_KIND", ctx.kind},
              {"FERRY_TASK_QUEUE", ctx.queue},
              {"FERRY_TASK_ATTEMPT", std::to_string(ctx.attempt)},
              {"FERRY_TASK_MAX_ATTEMPTS", std::to_string(ctx.max_attempts)},
              {"FERRY_TASK_EPOCH", std::to_string(ctx.epoch)},
              {"FERRY_EVENTS_FD", std::to_string(kEventsFd)}};
  if (ctx.deadline_ms > 0) spec.env["FERRY_TASK_DEADLINE_MS"] = std::to_string(ctx.deadline_ms);
  spec.stdin_data = DumpJson(TaskEnvelope(ctx)) + "\n";
  spec.kill_grace = options.kill_grace;
  spec.max_output_bytes = std::max(options.max_stdout_bytes, options.max_stderr_bytes);
  spec.stop_when_stdout_full = true;  // a result past the limit fails the attempt: end it now
  // An event line reaches OnEventLine whole when it is within the limit, and as soon as it passes
  // it otherwise (with `cut` >= 1), to be refused then, newline or not.
  spec.max_fd3_line_bytes = options.max_event_bytes;

  // Stopped by the worker (cancel, timeout, lease lost, drain) or by a protocol violation.
  std::stop_source stop;
  std::stop_callback forward(ctx.stop, [&stop] { stop.request_stop(); });
  AttemptEvents events(options, ctx.events, stop);
  spec.on_line = [&events, &options](bool is_stderr, const std::string& line, size_t cut) {
    if (is_stderr) events.OnStderrLine(CutLine(line, options.max_log_line_bytes, cut));
  };
  spec.on_fd3_line = [&events](const std::string& line, size_t cut) {
    events.OnEventLine(line, cut);
  };

  auto run = RunProcess(spec, stop.get_token());
  events.Finish();
  if (!run) return Transient("exec " + name + ": " + run.error().message);
  const ProcessResult& r = *run;
  if (auto v = events.violation()) return Permanent("exec " + name + ": " + *v);
  // Before the signal that stopped it: a program whose stdout passed the limit was stopped for it.
  if (r.stdout_truncated || r.stdout_text.size() > options.max_stdout_bytes) {
    return Permanent("exec " + name + ": stdout is larger than " +
                     std::to_string(options.max_stdout_bytes) + " bytes (the result must fit)");
  }
  if (r.stopped) return Transient("stopped");
  std::string tail = TailText(r.stderr_text.substr(0, options.max_stderr_bytes), 500);
  auto with_tail = [&](std::string why) { return tail.empty() ? why : why + ": " + tail; };
  if (r.signal != 0) {
    return Transient(with_tail("exec " + name + ": killed by signal " + std::to_string(r.signal)));
  }
  if (r.exit_code == kExitPermanent) {
    return Permanent(with_tail("exec " + name + ": exit code " + std::to_string(r.exit_code) +
                               " (permanent failure)"));
  }
  if (r.exit_code != 0) {
    return Transient(with_tail("exec " + name + ": exit code " + std::to_string(r.exit_code)));
  }
  if (r.stdout_text.find_first_not_of(" \t\r\n") == std::string::npos) return Json(nullptr);
  auto result = ParseJson(r.stdout_text);
  if (!result) {
    return Permanent("exec " + name + ": stdout is not one JSON value: " + result.error().message);
  }
  return std::move(*result);
}

}  // namespace

Result<Handler> MakeExecHandler(ExecOptions options) {
  if (options.argv.empty() || options.argv[0].empty()) {
    return Fail(ErrorCode::kInvalidArgument, "exec: no program given");
  }
  // A declaration naming a program that cannot run is a bad declaration: a usage error (exit 2),
  // as a malformed one is.
  if (!FindProgram(options.argv[0])) {
    return Fail(ErrorCode::kInvalidArgument,
                "exec: program '" + options.argv[0] + "' not found or not executable");
  }
  auto shared = std::make_shared<const ExecOptions>(std::move(options));
  return Handler([shared](TaskContext& ctx) { return RunExec(*shared, ctx); });
}

}  // namespace ferry::handlers
