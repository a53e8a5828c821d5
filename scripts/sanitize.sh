#!/usr/bin/env bash
# Builds Ferry with AddressSanitizer + UndefinedBehaviorSanitizer (the `asan` preset, build/asan)
# and runs the unit tests under them; any report fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake --preset asan >/dev/null
cmake --build build/asan -j "${FERRY_JOBS:-$(nproc)}"
cd build/asan
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
ctest -L unit --output-on-failure --timeout 300 -j "${FERRY_TEST_JOBS:-2}"
