#!/usr/bin/env bash
# Configures and builds Ferry in build/default (Ninja, RelWithDebInfo).
# FERRY_WERROR=ON (set by scripts/test.sh under CI) turns warnings into errors.
set -euo pipefail
cd "$(dirname "$0")/.."
werror="${FERRY_WERROR:-OFF}"
cmake --preset default -DFERRY_WERROR="$werror" >/dev/null
jobs="${FERRY_JOBS:-$(nproc)}"
cmake --build build/default -j "$jobs"
