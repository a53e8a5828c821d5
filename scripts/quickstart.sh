#!/usr/bin/env bash
# Quick start, step 1: installs what is missing, builds, and runs Ferry's main job on its embedded
# defaults: a private redis-server on a free loopback port, an in-process worker, a SQLite store
# in a temporary directory and the HTTP API, which a signed webhook request starts a run through.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
./scripts/build.sh ferry   # the binary only; scripts/test.sh builds the rest
exec ./build/default/apps/ferry/ferry demo "$@"
