// The `ferry` command line: noun-verb subcommands (DESIGN.md §7), parsed with CLI11.
// apps/ferry/main.cc calls Main() and nothing else.
#pragma once

namespace ferry::cli {

// Parses argv, runs the command and returns the process exit code: 0 ok, 1 failure, 2 usage,
// 3 Redis unreachable or refused the credentials (docs/cli.md).
int Main(int argc, char** argv);

}  // namespace ferry::cli
