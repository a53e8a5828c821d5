#!/usr/bin/env bash
# Builds the libFuzzer targets (the `fuzz` CMake preset: clang 14, ASan + UBSan) and runs them
# (docs/fuzzing.md).
#
#   scripts/fuzz.sh smoke [target...]   each target for FERRY_FUZZ_SECONDS (default 30) seconds
#   scripts/fuzz.sh long [target...]    each target for 2,000,000 executions or 15 minutes,
#                                       whichever comes first
#   scripts/fuzz.sh list                the targets
#   scripts/fuzz.sh build               only installs what is missing and builds the targets
#
# Any crash, sanitizer report, timeout (one input over 10 s) or out-of-memory fails the script;
# the input is saved under build/fuzz/artifacts/<target>/ and the log under
# build/fuzz/logs/<mode>/<target>.log.
# New inputs the fuzzer finds go to build/fuzz/corpus/<target>/; the checked-in seeds in
# fuzz/corpus/<target>/ are only read. FERRY_FUZZ_JOBS (1 or 2, default 1) runs that many
# targets at once; FERRY_BUILD_JOBS (default 2) is the build's parallelism.
set -euo pipefail
cd "$(dirname "$0")/.."

# Each target with its longest useful input and its dictionary.
declare -A max_len=(
  [cron_fuzz]=256
  [workflow_fuzz]=16384
  [template_fuzz]=1024
  [api_request_fuzz]=4096
  [webhook_fuzz]=4096
  [redis_reply_fuzz]=4096
  [config_fuzz]=4096
  [http_request_fuzz]=4096
)
declare -A dict=(
  [cron_fuzz]=cron
  [workflow_fuzz]=workflow
  [template_fuzz]=template
  [api_request_fuzz]=json
  [webhook_fuzz]=webhook
  [redis_reply_fuzz]=redis
  [config_fuzz]=config
  [http_request_fuzz]=http
)
all_targets=(cron_fuzz workflow_fuzz template_fuzz api_request_fuzz webhook_fuzz redis_reply_fuzz
  config_fuzz http_request_fuzz)

usage() {
  echo "usage: scripts/fuzz.sh smoke|long|list|build [target...]" >&2
  exit 2
}

mode="${1:-}"
[ $# -gt 0 ] && shift
case "$mode" in
  smoke | long | build) ;;
  list)
    printf '%s\n' "${all_targets[@]}"
    exit 0
    ;;
  *) usage ;;
esac
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=("${all_targets[@]}")
for t in "${targets[@]}"; do
  if [ -z "${max_len[$t]:-}" ]; then
    echo "fuzz: unknown target $t (scripts/fuzz.sh list)" >&2
    exit 2
  fi
done

./scripts/setup.sh fuzz
cmake --preset fuzz >/dev/null
cmake --build --preset fuzz -j "${FERRY_BUILD_JOBS:-2}"
[ "$mode" = build ] && exit 0

out=build/fuzz
logs="$out/logs/$mode"
mkdir -p "$logs"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
if [ -x /usr/bin/llvm-symbolizer-14 ]; then
  export ASAN_SYMBOLIZER_PATH=/usr/bin/llvm-symbolizer-14
fi

if [ "$mode" = smoke ]; then
  limits=(-max_total_time="${FERRY_FUZZ_SECONDS:-30}")
else
  limits=(-runs=2000000 -max_total_time=900)
fi

# Runs one target; its summary line goes to $logs/<target>.summary.
run_one() {
  local t=$1
  local log="$logs/$t.log"
  mkdir -p "$out/corpus/$t" "$out/artifacts/$t"
  local start end rc=0
  start=$(date +%s)
  "$out/fuzz/$t" "$out/corpus/$t" "fuzz/corpus/$t" "${limits[@]}" \
    -max_len="${max_len[$t]}" -dict="fuzz/dict/${dict[$t]}.dict" -rss_limit_mb=2048 -timeout=10 \
    -artifact_prefix="$out/artifacts/$t/" -print_final_stats=1 >"$log" 2>&1 || rc=$?
  end=$(date +%s)
  local execs files verdict=ok
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  files=$(find "$out/corpus/$t" -type f | wc -l)
  if [ "$rc" -ne 0 ]; then verdict="FAILED (exit $rc; log $log)"; fi
  printf '%-18s %10s execs %5s s  corpus %5s files  %s\n' "$t" "${execs:-?}" \
    "$((end - start))" "$files" "$verdict" | tee "$logs/$t.summary"
  return "$rc"
}

jobs="${FERRY_FUZZ_JOBS:-1}"
if [ "$jobs" != 1 ] && [ "$jobs" != 2 ]; then
  echo "fuzz: FERRY_FUZZ_JOBS must be 1 or 2" >&2
  exit 2
fi
failed=0
running=0
for t in "${targets[@]}"; do
  if [ "$running" -ge "$jobs" ]; then
    wait -n || failed=1
    running=$((running - 1))
  fi
  run_one "$t" &
  running=$((running + 1))
done
while [ "$running" -gt 0 ]; do
  wait -n || failed=1
  running=$((running - 1))
done

echo "--- $mode run"
for t in "${targets[@]}"; do cat "$logs/$t.summary"; done
if [ "$failed" -ne 0 ]; then
  echo "fuzz: a target failed; the crashing inputs are in $out/artifacts/" >&2
  exit 1
fi
