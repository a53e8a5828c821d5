// Helpers shared by `ferry workflow ...`, `ferry run ...` and `ferry dev` (defined in cmd_run.cc):
// opening the store, JSON and table views of runs, and waiting for a run to end.
//
// Thread-safety: used from the command's thread only.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "store/store.h"

namespace ferry::cli {

// Opens the store named by --store / FERRY_STORE / the default; errors name the (masked)
// location.
Result<std::unique_ptr<Store>> OpenCliStore(const Context& ctx, const StoreFlags& sf);

// From the run views (src/views), as the service answers them.
Table RunsTable(const Json& runs, bool unicode);
// "1.2s" between start and end (or now while running); "-" before it started.
std::string RunDuration(const Json& run);
// One human line per run event view: "10:30:15.123  greet  succeeded in 12ms".
std::string RunEventLine(const Json& event);
// `text` on one line: trailing whitespace gone (a program's stderr ends with a newline), line
// breaks inside it as spaces.
std::string OneLine(std::string text);
// How an ended run ended, on one line: "failed at node b: sh: exit code 3: bad", "cancelled",
// "succeeded".
std::string RunEndText(const Json& run);

struct WaitRunOptions {
  std::chrono::milliseconds timeout = std::chrono::hours(24 * 365);
  bool print_events = false;  // human lines (or JSON lines with --json) as they arrive
};
// Follows the run (and its events) until it ends; the run's view. kTimeout when it did not end
// in time.
Result<Json> WaitForRun(const Output& out, service::Service& svc, const std::string& id,
                        const WaitRunOptions& options);
// 0 for succeeded, 1 otherwise.
int RunExitCode(const Json& run);

}  // namespace ferry::cli
