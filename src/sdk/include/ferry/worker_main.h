// A worker binary of one's own: everything `ferry worker start` has (its flags, FERRY_*
// environment and --config file, the built-in kinds, --handler declarations, drain on
// SIGTERM/SIGINT, /healthz and /metrics, the ferry.run handler of workflow runs), plus the kinds
// in `registry`. Part of the installed SDK (find_package(Ferry), target Ferry::worker).
//
//   int main(int argc, char** argv) {
//     ferry::HandlerRegistry registry;
//     registry.Register("resize", Resize);
//     return ferry::RunWorkerMain(argc, argv, registry);
//   }
//
// REQUIRES: called from main() before any thread is started (it blocks SIGTERM/SIGINT for its
// signal thread); `registry` is not changed while it runs.
#pragma once

#include "ferry/handler.h"

namespace ferry {

// argv holds `ferry worker start`'s flags (e.g. --queues, --concurrency, --redis-url); returns
// the exit code: 0 after a drain, 2 for a usage error, 3 when Redis is unreachable.
int RunWorkerMain(int argc, char** argv, const HandlerRegistry& registry);

}  // namespace ferry
