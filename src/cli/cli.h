// The `ferry` command line: noun-verb subcommands (DESIGN.md §7), parsed with CLI11.
// apps/ferry/main.cc calls Main() and nothing else.
#pragma once

#include "ferry/handler.h"

namespace ferry::cli {

// Parses argv, runs the command and returns the process exit code: 0 ok, 1 failure, 2 usage,
// 3 Redis unreachable or refused the credentials (docs/cli.md). `extra` (optional): kinds that
// `worker start` serves besides the built-in and declared (--handler) ones.
int Main(int argc, char** argv, const HandlerRegistry* extra = nullptr);

// `ferry worker start` with `registry`'s kinds added, for a user's own binary
// (ferry::RunWorkerMain, include/ferry/worker_main.h): argv holds worker start's flags only.
int RunWorkerMain(int argc, char** argv, const HandlerRegistry& registry);

}  // namespace ferry::cli
