// Runs a child program without a shell: argv[0] is looked up on PATH, arguments are passed as
// they are. The child gets its own process group; on stop (cancel, timeout) the whole group gets
// SIGTERM, then SIGKILL after a grace period. If the calling process dies (kill -9, the OOM
// killer), the whole group gets SIGKILL, so nothing the child started outlives it (a process that
// leaves the group with setsid does). stdout/stderr are captured up to a limit each.
//
// Thread-safety: RunProcess may be called from many threads at once.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace ferry {

struct ProcessSpec {
  std::vector<std::string> argv;           // required, argv[0] non-empty
  std::map<std::string, std::string> env;  // added to (or replacing) the inherited environment
  // Start from an empty environment but PATH, HOME, LANG, LC_ALL, TZ and TMPDIR.
  bool clear_env = false;
  std::string cwd;                       // empty: inherit
  std::string stdin_data;                // written to the child's stdin, then closed
  std::chrono::milliseconds timeout{0};  // 0: none
  std::chrono::milliseconds kill_grace = std::chrono::seconds(2);  // SIGTERM -> SIGKILL
  size_t max_output_bytes = 1 << 20;  // per stream; the rest is dropped and flagged
  // Stop the program (as a stop request does) once its stdout passes max_output_bytes: for a
  // caller that reads stdout whole, the attempt is over then, and the program may never end.
  bool stop_when_stdout_full = false;
  // Called with each line of stdout/stderr as it arrives (may be empty), without its newline
  // or the CR of a CRLF. A line longer than max_line_bytes arrives once, when it ends, as its
  // first max_line_bytes bytes; `cut` says how many more it had (0 for a whole line).
  std::function<void(bool is_stderr, const std::string& line, size_t cut)> on_line;
  // When set, the child gets the write end of a pipe as descriptor 3 and this is called with
  // each line written to it (exec handlers' events), cut as on_line's are, with one difference:
  // a line longer than max_line_bytes arrives the moment it passes that limit (`cut` >= 1 then
  // counts the bytes past it read so far), so a reader can refuse it before it ends, which may be
  // never; the rest of that line is dropped unseen. Nothing of that stream is kept otherwise.
  std::function<void(const std::string& line, size_t cut)> on_fd3_line;
  // The longest line on_line gets, so output without newlines holds bounded memory (at least 1).
  size_t max_line_bytes = 64 << 10;
  // The same for on_fd3_line: a line longer than this arrives as soon as it passes it.
  size_t max_fd3_line_bytes = 64 << 10;
};

struct ProcessResult {
  int exit_code = -1;      // the child's exit status, or -1 when killed by a signal
  int signal = 0;          // the signal that ended it, 0 if it exited
  bool timed_out = false;  // the spec's timeout passed and Ferry stopped it
  bool stopped = false;    // the stop token was requested and Ferry stopped it
  std::string stdout_text;
  std::string stderr_text;
  bool stdout_truncated = false;
  bool stderr_truncated = false;
  std::chrono::milliseconds duration{0};
};

// Where RunProcess would find `name` with this process's PATH: the path of an executable file,
// or nullopt.
std::optional<std::string> FindProgram(const std::string& name);

// `line` as a log shows it: at most `max` bytes (of `line`), then " ... (N more bytes cut)" when
// anything was cut, N counting `already_cut` bytes that never reached `line` too, and the bytes
// of a UTF-8 character the cut would split.
std::string CutLine(std::string line, size_t max, size_t already_cut);

// Why an environment variable cannot be called `name` (the kernel reads each entry as
// NAME=VALUE, a C string): "is empty", "holds '='" or "holds a NUL byte"; nullopt when it can.
// RunProcess refuses such a name; ingestion checks a shell node's env names with it.
std::optional<std::string> EnvNameProblem(std::string_view name);

// Errors only when the program cannot be started (kInvalidArgument for an empty argv,
// kNotFound when argv[0] is not found or not executable, kInternal for fork/pipe failures).
Result<ProcessResult> RunProcess(const ProcessSpec& spec, std::stop_token stop);

}  // namespace ferry
