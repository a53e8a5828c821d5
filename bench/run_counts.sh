#!/bin/bash
# run_counts.sh: what counting runs by status costs as the store keeps more runs. Builds a store
# of N runs (1 in 50 failed, 1 in 1,000 pending, the rest succeeded) from Ferry's own migrations,
# then times the full count by status (CountRunsByStatus: every run is read) against the count
# of pending and running runs (CountActiveRuns: their partial indexes), three times each.
#   bench/run_counts.sh [N]                 SQLite, in a temporary file (N default 2,000,000)
#   FERRY_COUNT_PG=URL bench/run_counts.sh  also PostgreSQL: URL of an empty database psql can
#                                           open (its tables are created there)
set -euo pipefail
N=${1:-2000000}
[[ "$N" =~ ^[0-9]+$ ]] && [ "$N" -ge 1 ] && [ "$N" -le 50000000 ] || { echo "N: 1..50000000" >&2; exit 2; }
HERE=$(cd "$(dirname "$0")/.." && pwd)
STATUS="CASE WHEN i % 50 = 0 THEN 'failed' WHEN i % 1000 = 1 THEN 'pending' ELSE 'succeeded' END"
FULL="SELECT status, COUNT(*) FROM runs GROUP BY status"
ACTIVE="SELECT (SELECT COUNT(*) FROM runs WHERE status = 'pending'), (SELECT COUNT(*) FROM runs WHERE status = 'running')"

DIR=$(mktemp -d)
trap 'rm -rf "$DIR"' EXIT
DB=$DIR/runs.db
for f in "$HERE"/src/store/sqlite/migrations/*.sql; do sqlite3 "$DB" < "$f"; done
sqlite3 "$DB" "INSERT INTO workflows (id, name, created_ms, updated_ms) VALUES ('wf', 'wf', 0, 0);
INSERT INTO workflow_versions (workflow_id, version, source, format, graph, checksum, created_ms)
  VALUES ('wf', 1, '', 'yaml', '', 'x', 0);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $N)
INSERT INTO runs (id, workflow_id, version, status, triggered_by, created_ms, updated_ms, finished_ms)
SELECT printf('%026d', i), 'wf', 1, $STATUS, 'api', i, i, i FROM n;"
echo "SQLite, $N runs ($(du -h "$DB" | cut -f1)):"
for q in "$FULL" "$ACTIVE"; do
  for _ in 1 2 3; do
    printf '.timer on\n%s;\n' "$q" | sqlite3 "$DB" | grep -o 'real [0-9.]*' | sed "s/^/  ${q:0:40}... /"
  done
done

if [ -n "${FERRY_COUNT_PG:-}" ]; then
  PSQL="psql -X -q -v ON_ERROR_STOP=1 $FERRY_COUNT_PG"
  for f in "$HERE"/src/store/postgres/migrations/*.sql; do $PSQL -f "$f" >/dev/null; done
  $PSQL -c "INSERT INTO workflows (id, name, created_ms, updated_ms) VALUES ('wf', 'wf', 0, 0)" \
    -c "INSERT INTO workflow_versions (workflow_id, version, source, format, graph, checksum, created_ms)
        VALUES ('wf', 1, '', 'yaml', '', 'x', 0)" \
    -c "INSERT INTO runs (id, workflow_id, version, status, triggered_by, created_ms, updated_ms, finished_ms)
        SELECT lpad(i::text, 26, '0'), 'wf', 1, $STATUS, 'api', i, i, i FROM generate_series(1, $N) i" \
    -c "VACUUM ANALYZE runs"
  echo "PostgreSQL, $N runs ($($PSQL -At -c "SELECT pg_size_pretty(pg_table_size('runs'))")):"
  for q in "$FULL" "$ACTIVE"; do
    for _ in 1 2 3; do
      $PSQL -At -c "EXPLAIN ANALYZE $q" | grep 'Execution Time' | sed "s/^/  ${q:0:40}... /"
    done
  done
fi
