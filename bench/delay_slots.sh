#!/bin/bash
# delay_slots.sh: how long N workflow runs that each wait take on a worker with few slots, with
# the slot given back during long waits (the default --run-slot-wait 5s) and with it held
# (--run-slot-wait 1h, as every wait did before runs gave their slot back). Starts a private
# redis-server and, for each setting, `ferry worker start --concurrency SLOTS` on a fresh SQLite
# store, starts RUNS runs of a workflow that waits DELAY then runs `echo`, and prints the time
# from the first start to the last run's end, with each run's attempt count. WAIT is what the
# run waits for: `delay` (a delay node) or `task` (a task node whose task, in the run's own
# queue, sleeps DELAY: while runs hold every slot, their tasks cannot run). Runs not ended
# WATCH_TIMEOUT seconds (120) after the first start are counted as such, not waited for.
#   bench/delay_slots.sh [FERRY_BINARY] [RUNS] [SLOTS] [DELAY] [WAIT]
#   (defaults: build/default/apps/ferry/ferry, 20 runs, 4 slots, 8s, delay)
set -euo pipefail
HERE=$(cd "$(dirname "$0")/.." && pwd)
FERRY=${1:-$HERE/build/default/apps/ferry/ferry}
RUNS=${2:-20}
SLOTS=${3:-4}
DELAY=${4:-8s}
WAIT=${5:-delay}
WATCH_TIMEOUT=${WATCH_TIMEOUT:-120}
case "$DELAY" in *s) ;; *) echo "DELAY must be in seconds, e.g. 8s" >&2; exit 2 ;; esac
[ -x "$FERRY" ] || { echo "no ferry binary at $FERRY" >&2; exit 2; }
DIR=$(mktemp -d)
WORKER=
cleanup() {
  [ -n "$WORKER" ] && kill "$WORKER" 2>/dev/null && wait "$WORKER" 2>/dev/null
  [ -f "$DIR/redis.pid" ] && kill "$(cat "$DIR/redis.pid")" 2>/dev/null
  rm -rf "$DIR"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
REDIS_PORT=$(free_port)
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
  --pidfile "$DIR/redis.pid" --dir "$DIR" >/dev/null
export FERRY_REDIS_URL=redis://127.0.0.1:$REDIS_PORT NO_COLOR=1
if [ "$WAIT" = delay ]; then
  HOLD="kind: delay
    duration: $DELAY"
elif [ "$WAIT" = task ]; then
  HOLD="kind: task
    task: {kind: sleep, payload: {ms: $(python3 -c "print(int(float('${DELAY%s}') * 1000))")}}"
else
  echo "WAIT must be delay or task" >&2
  exit 2
fi
cat >"$DIR/wait.yaml" <<EOF
name: wait
nodes:
  hold:
    $HOLD
  after:
    kind: shell
    needs: [hold]
    argv: [echo, done]
EOF

for SLOT_WAIT in 5s 1h; do
  export FERRY_STORE=$DIR/ferry-$SLOT_WAIT.db
  "$FERRY" workflow apply "$DIR/wait.yaml" >/dev/null
  "$FERRY" worker start --concurrency "$SLOTS" --run-slot-wait "$SLOT_WAIT" --health-port -1 \
    >"$DIR/worker-$SLOT_WAIT.log" 2>&1 &
  WORKER=$!
  START=$(date +%s.%N)
  IDS=()
  for _ in $(seq 1 "$RUNS"); do IDS+=("$("$FERRY" workflow run wait)"); done
  STUCK=0
  DEADLINE=$(($(date +%s) + WATCH_TIMEOUT))
  for ID in "${IDS[@]}"; do
    # Each run's end, bounded: a run that does not end in time is counted, not waited for.
    LEFT=$((DEADLINE - $(date +%s)))
    [ "$LEFT" -ge 1 ] || LEFT=1
    "$FERRY" run watch "$ID" --timeout "${LEFT}s" >/dev/null 2>&1 || STUCK=$((STUCK + 1))
  done
  END=$(date +%s.%N)
  ATTEMPTS=$("$FERRY" --json run list --limit "$RUNS" |
    python3 -c 'import json,sys; print(sorted({r["attempt"] for r in json.load(sys.stdin)["runs"]}))')
  if [ "$STUCK" -eq 0 ]; then
    ENDED=$(printf 'all ended %.1f s after the first start' "$(python3 -c "print($END - $START)")")
  else
    ENDED="$STUCK not ended ${WATCH_TIMEOUT} s after the first start"
  fi
  printf 'run-slot-wait %-3s  %d runs waiting %s (%s), %d slots: %s (attempts %s)\n' \
    "$SLOT_WAIT" "$RUNS" "$DELAY" "$WAIT" "$SLOTS" "$ENDED" "$ATTEMPTS"
  kill "$WORKER"
  wait "$WORKER" 2>/dev/null || true
  WORKER=
done
