#!/usr/bin/env bash
# Quick start, step 2: installs what is missing, builds, and runs the whole test suite
# (unit tests, then integration tests that start real redis-server and PostgreSQL processes).
# FERRY_CONTAINER_TESTS=1 then also builds the container image and runs the compose stack with
# podman (deploy/docker/test.sh; 35 minutes the first time on a busy 2-core machine, 2 to 5 on
# later runs: README).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
if [ "${CI:-}" = "true" ]; then export FERRY_WERROR=ON; fi
./scripts/build.sh
./scripts/check-format.sh
cd build/default
# Integration tests bind free loopback ports and private key prefixes, so they can run in parallel.
ctest --output-on-failure --timeout 300 -j "${FERRY_TEST_JOBS:-2}" "$@"
if [ "${FERRY_CONTAINER_TESTS:-}" = 1 ]; then
  ../../deploy/docker/test.sh
fi
