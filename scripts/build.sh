#!/usr/bin/env bash
# Configures and builds Ferry in build/default (Ninja, RelWithDebInfo). Arguments name targets
# to build (e.g. `ferry`); none builds everything, tests and benchmarks included.
# FERRY_WERROR=ON (set by scripts/test.sh under CI) turns warnings into errors.
# Debug information is line tables only (-g1, CMakePresets.json): backtraces, perf profiles and
# sanitizer reports name functions, files and lines, and the build takes about a third less CPU
# than with -g. For a debugger's view of variables:
#   cmake --preset default -DCMAKE_CXX_FLAGS_RELWITHDEBINFO='-O2 -g -DNDEBUG'
#   cmake --build build/default -j2   # not this script: it configures with the preset again
set -euo pipefail
cd "$(dirname "$0")/.."
werror="${FERRY_WERROR:-OFF}"
cmake --preset default -DFERRY_WERROR="$werror" >/dev/null
jobs="${FERRY_JOBS:-$(nproc)}"
if [ $# -gt 0 ]; then
  cmake --build build/default -j "$jobs" --target "$@"
else
  cmake --build build/default -j "$jobs"
fi
