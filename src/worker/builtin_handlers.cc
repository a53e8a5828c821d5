// Built-in task kinds. Payloads:
//   noop   anything                 -> null
//   echo   anything                 -> the payload
//   sleep  {"ms": N}                -> {"slept_ms": N}; stops early (error "stopped") on stop
//   fail   {"message": "...", "retryable": true|false}  -> always an error
//   shell  {"argv": [...], "env": {...}, "cwd": "...", "timeout_ms": N, "stdin": "...",
//          "max_output_bytes": N}
//          -> {"exit_code", "stdout", "stderr", "truncated", "duration_ms"} (and
//          stdout_base64 / stderr_base64 for a stream that is not UTF-8); never via /bin/sh.
// A malformed payload is a non-retryable error that names the field: retrying cannot fix it.
#include <algorithm>
#include <condition_variable>
#include <mutex>

#include "core/crypto.h"
#include "core/json.h"
#include "core/task_kinds.h"
#include "core/utf8.h"
#include "process/process.h"
#include "worker/handler.h"
#include "worker/seconds_text.h"
#include "worker/tail_text.h"

namespace ferry {
namespace {

constexpr int64_t kMaxShellLogLines = 1000;

tl::unexpected<HandlerError> Permanent(std::string message) {
  return tl::unexpected<HandlerError>(HandlerError{std::move(message), false});
}
tl::unexpected<HandlerError> Transient(std::string message) {
  return tl::unexpected<HandlerError>(HandlerError{std::move(message), true});
}

// Reads an optional non-negative integer field; nullopt when absent.
Result<std::optional<int64_t>> OptionalCount(const Json& payload, const char* field) {
  if (!payload.is_object() || !payload.contains(field)) return std::optional<int64_t>();
  const Json& v = payload[field];
  if (!v.is_number_integer() || v.get<int64_t>() < 0) {
    return Fail(ErrorCode::kInvalidArgument,
                std::string("field '") + field + "' must be a non-negative integer");
  }
  return std::optional<int64_t>(v.get<int64_t>());
}

HandlerResult Sleep(TaskContext& ctx) {
  if (!ctx.payload.is_object()) return Permanent("sleep: payload must be an object {\"ms\": N}");
  auto ms = OptionalCount(ctx.payload, "ms");
  if (!ms) return Permanent("sleep: " + ms.error().message);
  if (!ms->has_value()) return Permanent("sleep: field 'ms' is required");
  std::mutex mu;
  std::condition_variable_any cv;
  std::unique_lock lock(mu);
  bool stopped = cv.wait_for(lock, ctx.stop, std::chrono::milliseconds(**ms), [] { return false; });
  (void)stopped;
  if (ctx.stop.stop_requested()) return Transient("stopped");
  return Json{{"slept_ms", **ms}};
}

HandlerResult FailOnPurpose(TaskContext& ctx) {
  std::string message = "failed on purpose";
  bool retryable = true;
  if (ctx.payload.is_object()) {
    if (ctx.payload.contains("message")) {
      if (!ctx.payload["message"].is_string()) {
        return Permanent("fail: field 'message' must be a string");
      }
      message = ctx.payload["message"].get<std::string>();
    }
    if (ctx.payload.contains("retryable")) {
      if (!ctx.payload["retryable"].is_boolean()) {
        return Permanent("fail: field 'retryable' must be true or false");
      }
      retryable = ctx.payload["retryable"].get<bool>();
    }
  }
  return tl::unexpected<HandlerError>(HandlerError{message, retryable});
}

// One captured stream into a shell task's result: as text, and when it is not UTF-8 throughout
// (a program printing Latin-1 or binary), that text shows each byte that is not as U+FFFD and
// `<name>_base64` holds the exact bytes. A result string that is not UTF-8 cannot be kept (the
// worker refuses it), which failed a task whose program had succeeded.
void PutStream(Json& result, const std::string& name, const std::string& bytes) {
  if (!Utf8FirstInvalid(bytes)) {
    result[name] = bytes;
    return;
  }
  result[name] = Utf8Shown(bytes);
  result[name + "_base64"] = Base64Encode(bytes);
}

// A shell task's result: {exit_code, stdout, stderr, truncated, duration_ms} (PutStream's
// `_base64` fields too, for a stream that is not UTF-8), made to fit kMaxResultBytes. Each
// stream is captured up to max_output_bytes, but both together, and JSON's escapes (a newline
// is two bytes, a control byte six), made a program that succeeded a failed task, its output
// lost. Past the limit the longer stream is cut further, its first bytes kept as the capture
// keeps them and never within a character, and `truncated` says so.
Json ShellResult(const ProcessResult& r) {
  std::string out = r.stdout_text;
  std::string err = r.stderr_text;
  bool truncated = r.stdout_truncated || r.stderr_truncated;
  for (;;) {
    Json result{
        {"exit_code", r.exit_code}, {"truncated", truncated}, {"duration_ms", r.duration.count()}};
    PutStream(result, "stdout", out);
    PutStream(result, "stderr", err);
    const size_t size = DumpJson(result).size();
    if (size <= kMaxResultBytes) return result;
    truncated = true;
    std::string& longer = out.size() >= err.size() ? out : err;
    // The bytes to cut, from how much this stream grows in the result (at least 1 per byte),
    // with room for `truncated` turning true; a further round takes what an uneven stream left.
    Json alone = Json::object();
    PutStream(alone, "s", longer);
    const size_t dumped = DumpJson(alone).size();
    const size_t over = size - kMaxResultBytes + 16;
    const size_t cut =
        std::min(longer.size(), over * longer.size() / std::max<size_t>(dumped, 1) + 1);
    size_t keep = longer.size() - cut;
    keep -= Utf8UnfinishedTail(std::string_view(longer).substr(0, keep));
    longer.resize(keep);
  }
}

HandlerResult Shell(TaskContext& ctx) {
  const Json& p = ctx.payload;
  if (!p.is_object()) return Permanent("shell: payload must be an object with an 'argv' array");
  ProcessSpec spec;
  if (!p.contains("argv") || !p["argv"].is_array() || p["argv"].empty()) {
    return Permanent("shell: field 'argv' must be a non-empty array of strings");
  }
  for (const Json& a : p["argv"]) {
    if (!a.is_string()) return Permanent("shell: field 'argv' must hold only strings");
    spec.argv.push_back(a.get<std::string>());
  }
  if (spec.argv[0].empty()) return Permanent("shell: field 'argv' must not start with \"\"");
  // The worker's environment holds FERRY_SECRET_* values and connection URLs: a task gets only
  // the neutral basics (ProcessSpec::clear_env) and what its payload's env gives.
  spec.clear_env = true;
  if (p.contains("env")) {
    if (!p["env"].is_object()) return Permanent("shell: field 'env' must be an object of strings");
    for (const auto& [k, v] : p["env"].items()) {
      if (!v.is_string() || k.empty() || k.find('=') != std::string::npos) {
        return Permanent("shell: field 'env' must map names (without '=') to strings; bad entry '" +
                         k + "'");
      }
      spec.env[k] = v.get<std::string>();
    }
  }
  if (p.contains("cwd")) {
    if (!p["cwd"].is_string()) return Permanent("shell: field 'cwd' must be a string");
    spec.cwd = p["cwd"].get<std::string>();
  }
  auto timeout = OptionalCount(p, "timeout_ms");
  if (!timeout) return Permanent("shell: " + timeout.error().message);
  if (timeout->has_value()) spec.timeout = std::chrono::milliseconds(**timeout);
  auto max_out = OptionalCount(p, "max_output_bytes");
  if (!max_out) return Permanent("shell: " + max_out.error().message);
  if (max_out->has_value()) spec.max_output_bytes = static_cast<size_t>(**max_out);
  if (p.contains("stdin")) {
    if (!p["stdin"].is_string()) return Permanent("shell: field 'stdin' must be a string");
    spec.stdin_data = p["stdin"].get<std::string>();
  }
  // Each output line is a "log" event, up to kMaxShellLogLines per attempt (an exec handler's
  // bound): past that one more says how many were not recorded, so a chatty program neither
  // writes to Redis per line without end nor pushes the task's own events out of its stream.
  EventEmitter* events = ctx.events;
  int64_t lines = 0;
  spec.on_line = [events, &lines](bool is_stderr, const std::string& line, size_t cut) {
    if (events != nullptr && ++lines <= kMaxShellLogLines) {
      events->Emit("log", Json{{"stream", is_stderr ? "stderr" : "stdout"},
                               {"line", CutLine(line, line.size(), cut)}});
    }
  };

  auto run = RunProcess(spec, ctx.stop);
  if (events != nullptr && lines > kMaxShellLogLines) {
    events->Emit("log", Json{{"line", std::to_string(lines - kMaxShellLogLines) +
                                          " further output line(s) not recorded"}});
  }
  if (!run) {
    // A missing program or directory will not appear by retrying the same payload.
    bool permanent =
        run.error().code == ErrorCode::kNotFound || run.error().code == ErrorCode::kInvalidArgument;
    return tl::unexpected<HandlerError>(HandlerError{"shell: " + run.error().message, !permanent});
  }
  const ProcessResult& r = *run;
  if (r.stopped) return Transient("stopped");
  if (r.timed_out) {
    return Transient("shell: timed out after " + SecondsText(spec.timeout));
  }
  if (r.exit_code != 0) {
    std::string why = r.signal != 0 ? "killed by signal " + std::to_string(r.signal)
                                    : "exit code " + std::to_string(r.exit_code);
    std::string tail = TailText(r.stderr_text, 500);
    return Transient("shell: " + spec.argv[0] + ": " + why + (tail.empty() ? "" : ": " + tail));
  }
  return ShellResult(r);
}

}  // namespace

void RegisterBuiltinHandlers(HandlerRegistry& registry) {
  registry.Register("noop", [](TaskContext&) -> HandlerResult { return Json(nullptr); });
  registry.Register("echo", [](TaskContext& ctx) -> HandlerResult { return ctx.payload; });
  registry.Register("sleep", Sleep);
  registry.Register("fail", FailOnPurpose);
  registry.Register(std::string(kShellTaskKind), Shell);
}

}  // namespace ferry
