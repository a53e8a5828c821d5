#!/usr/bin/env bash
# Builds the unit tests with AddressSanitizer + UndefinedBehaviorSanitizer (the `asan` preset,
# build/asan) and runs them under both; any report fails the run. Only the unit-test executables
# (and what they link) are built: the integration tests run against the default build.
# `--build-only` builds them and runs nothing (.ci/run builds them beside the test suite).
set -euo pipefail
cd "$(dirname "$0")/.."
cmake --preset asan -DFERRY_BUILD_BENCH=OFF >/dev/null
mapfile -t targets < <(sed -n 's/^add_executable(\([a-z_]*unit_tests\).*/\1/p' tests/unit/*/CMakeLists.txt)
cmake --build build/asan -j "${FERRY_JOBS:-$(nproc)}" --target "${targets[@]}"
[ "${1:-}" = --build-only ] && exit 0
cd build/asan
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
ctest -L unit --output-on-failure --timeout 300 -j "${FERRY_TEST_JOBS:-2}"
