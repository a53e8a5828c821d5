#!/usr/bin/env bash
# Runs the integration suites ROUNDS times in a row (default 20) while `stress-ng --cpu N` (N =
# the machine's CPUs) keeps every core busy, to catch tests that pass only on an idle machine.
# Stops at the end, not at the first failure, so one run says how often each test failed.
# Logs: build/default/stress/round-K.txt and build/default/stress/summary. Exit 1 if any round
# failed. About 5 minutes a round on a quiet 2-core machine, so 20 rounds take near 100 minutes:
# opt-in, never part of CI.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-20}"
if ! [[ "$rounds" =~ ^[0-9]+$ ]] || [ "$rounds" -lt 1 ] || [ "$rounds" -gt 1000 ]; then
  echo "usage: scripts/stress.sh [ROUNDS (1-1000, default 20)]" >&2
  exit 2
fi
./scripts/setup.sh stress
./scripts/build.sh
log=build/default/stress
mkdir -p "$log"
stress-ng --cpu "$(nproc)" --timeout "$((rounds * 20))m" >"$log/stress-ng.txt" 2>&1 &
hog=$!
trap 'kill "$hog" 2>/dev/null || true' EXIT
start=$(date +%s)
echo "start $(date -u +%FT%TZ) commit $(git rev-parse --short HEAD) rounds $rounds" >"$log/summary"
failed=0
for i in $(seq 1 "$rounds"); do
  t0=$(date +%s)
  rc=0
  (cd build/default && ctest -L integration --timeout 300 -j "${FERRY_TEST_JOBS:-3}" \
    --output-on-failure) >"$log/round-$i.txt" 2>&1 || rc=$?
  [ "$rc" -eq 0 ] || failed=$((failed + 1))
  line="round $i rc=$rc secs=$(($(date +%s) - t0)) $(grep -E 'tests passed|tests failed' "$log/round-$i.txt" | tail -1)"
  echo "$line" | tee -a "$log/summary"
  grep -E '^\s+[0-9]+ - .*\((Failed|Timeout|SEGFAULT|Subprocess aborted)\)' "$log/round-$i.txt" |
    tee -a "$log/summary" || true
done
echo "total secs=$(($(date +%s) - start)) rounds=$rounds failed_rounds=$failed" | tee -a "$log/summary"
[ "$failed" -eq 0 ]
