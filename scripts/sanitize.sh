#!/usr/bin/env bash
# Builds the unit tests with AddressSanitizer + UndefinedBehaviorSanitizer (the `asan` preset,
# build/asan) and runs them under both; any report fails the run. Only the unit-test executables
# (and what they link) are built, and the HTTP server's tests (real loopback sockets, no outside
# server); the other integration tests run against the default build.
#
#   scripts/sanitize.sh          every unit-test executable (about 15 minutes to build on 2 cores)
#   scripts/sanitize.sh smoke    those of the parts that read outside input or hold C handles
#                                (JSON, workflows and templates, the Redis protocol, cron, the
#                                store, the HTTP server, the API's request reading and webhook
#                                signatures, processes, handlers, the worker, runs, views, the
#                                console) without the orchestration above them (cli, ops,
#                                service, remediation, the scheduler's dispatch), which link
#                                nearly all of src/: CI runs this (a third less to build); run
#                                the whole set before resolving a change to those parts
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t targets < <(sed -n 's/^add_executable(\([a-z_]*unit_tests\).*/\1/p' tests/unit/*/CMakeLists.txt)
case "${1:-}" in
  "") ;;
  smoke)
    skip=" cli_unit_tests ops_unit_tests service_unit_tests remediation_unit_tests scheduler_dispatch_unit_tests "
    kept=()
    for t in "${targets[@]}"; do [[ "$skip" == *" $t "* ]] || kept+=("$t"); done
    targets=("${kept[@]}")
    ;;
  *)
    echo "usage: scripts/sanitize.sh [smoke]" >&2
    exit 2
    ;;
esac
targets+=(http_server_tests)
cmake --preset asan -DFERRY_BUILD_BENCH=OFF >/dev/null
cmake --build build/asan -j "${FERRY_JOBS:-$(nproc)}" --target "${targets[@]}"
cd build/asan
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
# Only the executables built above have tests here (one not built has none with the unit label).
ctest -L unit --output-on-failure --timeout 300 -j "${FERRY_TEST_JOBS:-2}"
ctest -R '^HttpServerTest[.]' --output-on-failure --timeout 300 -j "${FERRY_TEST_JOBS:-2}"
