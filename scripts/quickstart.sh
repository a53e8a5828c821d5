#!/usr/bin/env bash
# Quick start, step 1: installs what is missing, builds, and runs Ferry's main job on its embedded
# defaults (a private redis-server on a free loopback port, an in-process worker).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
./scripts/build.sh
exec ./build/default/apps/ferry/ferry demo "$@"
