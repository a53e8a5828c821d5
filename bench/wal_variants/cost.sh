#!/bin/bash
# cost.sh: what the status lookups cost without runs' status indexes: 200,000 runs (1 in 500
# failed, 50 pending, 16 running, the rest succeeded) in base-, v7-, v9- and v10-schema
# databases, then EXPLAIN (ANALYZE, BUFFERS) of the store's queries that filter on
# status. On v9 and v10 the lookups of unfinished runs start from runs_open instead.
# FERRY_WAL_PENDING=N makes the newest N runs pending instead of 50 (a backlog; default 50).
set -euo pipefail
D=${FERRY_WAL_DIR:-/tmp/ferry-wal-variants}
HERE=$(cd "$(dirname "$0")" && pwd)
PENDING=${FERRY_WAL_PENDING:-50}
[ "$PENDING" -ge 1 ] && [ "$PENDING" -le 150000 ] || { echo "FERRY_WAL_PENDING: 1..150000" >&2; exit 2; }
PSQL="runuser -u postgres -- /usr/lib/postgresql/15/bin/psql -X -q -h $D/sock -p $(cat $D/port) -v ON_ERROR_STOP=1"
for v in base v7 v9 v10; do
  DB=cost_$v
  $PSQL -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB" 2>/dev/null
  python3 "$HERE/gen.py" schema $v | $PSQL -d $DB >/dev/null
  python3 "$HERE/gen.py" setup $v | $PSQL -d $DB >/dev/null
  $PSQL -d $DB -c "
INSERT INTO runs (id, workflow_id, version, status, inputs, output, triggered_by, worker, created_ms,
                  started_ms, finished_ms, updated_ms)
SELECT lpad(g::text, 26, '0'), '01JEG4B2Q8ZC3M5N7P9R1T3V5X', 1,
       CASE WHEN g > $((200000 - PENDING)) THEN 'pending' WHEN g > $((200000 - PENDING - 16)) THEN 'running'
            WHEN g % 500 = 0 THEN 'failed' ELSE 'succeeded' END,
       '{}', '{\"one\":{\"ok\":true}}', 'api', 'vm-48213-9f3c2a1b/01KBR51140XB2Z9XTC1XDB6GAJ',
       c, c + 2, CASE WHEN g > $((200000 - PENDING - 16)) THEN 0 ELSE c + 5 END, c + 5
FROM generate_series(1, 200000) g, LATERAL (SELECT 1764968400000 - (200000 - g) * 3000 AS c) t;
UPDATE runs SET status = 'pending', started_ms = 0 WHERE seq IN (100, 50000, 150000);" >/dev/null
  case $v in
    v9) $PSQL -d $DB -c "INSERT INTO runs_open SELECT seq FROM runs WHERE status IN ('pending', 'running')" -c "VACUUM ANALYZE runs_open" >/dev/null ;;
    v10) $PSQL -d $DB -c "INSERT INTO runs_open SELECT seq, status FROM runs WHERE status IN ('pending', 'running')" -c "VACUUM ANALYZE runs_open" >/dev/null ;;
  esac
  $PSQL -d $DB -c "VACUUM ANALYZE runs" >/dev/null
  NOW=1764968400000
  COLS="r.id, r.workflow_id, w.name, r.version, r.status, r.attempt, r.epoch, r.inputs, r.output, r.error, r.failed_node, r.triggered_by, r.trigger_id, r.retry_of, r.worker, r.created_ms, r.started_ms, r.finished_ms, r.updated_ms, r.seq"
  SEL="SELECT $COLS FROM runs r JOIN workflows w ON w.id = r.workflow_id "
  OSEL="SELECT $COLS FROM runs_open o JOIN runs r ON r.seq = o.seq JOIN workflows w ON w.id = r.workflow_id "
  # The lookups of unfinished runs: the store's own on base and v7; from runs_open on v9 (then
  # filtered by the run's status), and by runs_open's own status on v10 (pending oldest first
  # by seq, the order runs are created in).
  PENDING_Q="$SEL WHERE r.status = 'pending' AND r.created_ms <= $((NOW-30000)) ORDER BY r.created_ms, r.seq LIMIT 100"
  RUNNING_Q="$SEL WHERE r.status = 'running' AND r.updated_ms <= $((NOW-60000)) ORDER BY r.updated_ms, r.seq LIMIT 100"
  COUNT_Q="SELECT COUNT(*) FROM runs WHERE status = 'pending' AND created_ms <= $((NOW-300000))"
  LIST_Q="$SEL WHERE r.status = 'pending' ORDER BY r.seq DESC LIMIT 51"
  case $v in
    v9)
      PENDING_Q="$OSEL WHERE r.status = 'pending' AND r.created_ms <= $((NOW-30000)) ORDER BY r.created_ms, r.seq LIMIT 100"
      RUNNING_Q="$OSEL WHERE r.status = 'running' AND r.updated_ms <= $((NOW-60000)) ORDER BY r.updated_ms, r.seq LIMIT 100"
      COUNT_Q="SELECT COUNT(*) FROM runs_open o JOIN runs USING (seq) WHERE status = 'pending' AND created_ms <= $((NOW-300000))"
      LIST_Q="$OSEL WHERE r.status = 'pending' ORDER BY r.seq DESC LIMIT 51" ;;
    v10)
      PENDING_Q="$OSEL WHERE o.status = 'pending' AND r.created_ms <= $((NOW-30000)) ORDER BY o.seq LIMIT 100"
      RUNNING_Q="$OSEL WHERE o.status = 'running' AND r.updated_ms <= $((NOW-60000)) ORDER BY r.updated_ms, r.seq LIMIT 100"
      COUNT_Q="SELECT COUNT(*) FROM runs_open o JOIN runs r USING (seq) WHERE o.status = 'pending' AND r.created_ms <= $((NOW-300000))"
      LIST_Q="$OSEL WHERE o.status = 'pending' ORDER BY o.seq DESC LIMIT 51" ;;
  esac
  echo "=== $v: $($PSQL -d $DB -At -c "SELECT pg_size_pretty(pg_table_size('runs'))") heap, indexes: $($PSQL -d $DB -At -c "SELECT string_agg(indexrelname, ' ' ORDER BY indexrelname) FROM pg_stat_user_indexes WHERE relname = 'runs'")"
  for q in \
    "recovery, every 5 s: ListPendingRunsOlderThan|$PENDING_Q" \
    "recovery, every 5 s: ListRunningRuns|$RUNNING_Q" \
    "alerts/metrics: CountPendingOlderThan|$COUNT_Q" \
    "retention, every minute: DeleteFinishedRunsBefore (its SELECT)|SELECT id FROM runs WHERE status IN ('succeeded', 'failed', 'cancelled') AND finished_ms < $((NOW-500000*1000/2)) ORDER BY finished_ms LIMIT 1000" \
    "API: ListRuns status=failed|$SEL WHERE r.status = 'failed' ORDER BY r.seq DESC LIMIT 51" \
    "API: ListRuns status=pending|$LIST_Q" \
    "metrics: CountRunsByStatus|SELECT status, COUNT(*) FROM runs GROUP BY status"; do
    name=${q%%|*}; sql=${q#*|}
    $PSQL -d $DB -At -c "EXPLAIN (ANALYZE, BUFFERS) $sql" > $D/results/cost_${v}_plan.tmp
    # three more runs for a warm-cache timing
    t=$(for i in 1 2 3; do $PSQL -d $DB -At -c "EXPLAIN (ANALYZE, BUFFERS) $sql" | grep "Execution Time" | awk '{print $3}'; done | sort -n | sed -n 2p)
    first=$(grep -m1 -E "Scan|Aggregate|Limit|Sort" $D/results/cost_${v}_plan.tmp | sed 's/  (cost.*//; s/^ *//')
    bufs=$(grep -m1 "Buffers" $D/results/cost_${v}_plan.tmp | sed 's/^ *//')
    scan=$(grep -E "Scan" $D/results/cost_${v}_plan.tmp | sed 's/  (cost.*//; s/^ *-> *//' | tr '\n' ';')
    echo "$v | $name | median of 3: $t ms | $scan | $bufs"
    { echo "--- $v: $name"; echo "$sql"; cat $D/results/cost_${v}_plan.tmp; } >> $D/results/cost_plans.txt
  done
done
