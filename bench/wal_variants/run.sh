#!/usr/bin/env bash
# What WAL one one-node run would write on PostgreSQL under other schemas (docs/benchmarks.md,
# "What 2 KB of WAL per run would take"). gen.py replays the three transactions of a one-node run
# as src/store/sql_store_runs.cc sends them (text for text), on the schema of
# src/store/postgres/migrations plus each variant's changes (listed at the top of gen.py);
# measure.sh counts the WAL of 200 runs after 1,000 warm-up runs and a checkpoint, and breaks it
# down with pg_walinspect; summarize.py makes the table. A private PostgreSQL 15 (run as the
# `postgres` user, on a free loopback port, fsync and full_page_writes off as run_bench's) is made
# in FERRY_WAL_DIR (default /tmp/ferry-wal-variants) and stopped at the end.
#
#   bench/wal_variants/run.sh                 base v3 v4 v7 v8 v9 v10, one after another and as a backlog
#   bench/wal_variants/run.sh base v1 v2      the variants named
#   bench/wal_variants/run.sh --cost          also what the status lookups cost without runs'
#                                             status indexes (200,000 runs; cost.sh)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
export FERRY_WAL_DIR=${FERRY_WAL_DIR:-/tmp/ferry-wal-variants}
D=$FERRY_WAL_DIR
B=/usr/lib/postgresql/15/bin
cost=0
variants=()
for a in "$@"; do
  if [ "$a" = --cost ]; then cost=1; else variants+=("$a"); fi
done
[ ${#variants[@]} -eq 0 ] && variants=(base v3 v4 v7 v8 v9 v10)

mkdir -p "$D/results" "$D/sql" "$D/sock"
chown -R postgres "$D"
rm -f "$D"/results/*
if [ ! -f "$D/data/PG_VERSION" ]; then
  runuser -u postgres -- "$B/initdb" -D "$D/data" -U postgres --auth=trust >"$D/initdb.log"
fi
python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' >"$D/port"
runuser -u postgres -- "$B/pg_ctl" -D "$D/data" -l "$D/server.log" -w -o "-p $(cat "$D/port") \
  -c listen_addresses=127.0.0.1 -c unix_socket_directories=$D/sock -c fsync=off \
  -c synchronous_commit=off -c full_page_writes=off -c autovacuum=off -c shared_buffers=128MB \
  -c max_wal_size=4GB -c checkpoint_timeout=1h -c wal_keep_size=2GB" start >/dev/null
trap 'runuser -u postgres -- "$B/pg_ctl" -D "$D/data" -m fast -w stop >/dev/null' EXIT
runuser -u postgres -- "$B/psql" -X -q -h "$D/sock" -p "$(cat "$D/port")" -d postgres \
  -c "CREATE EXTENSION IF NOT EXISTS pg_walinspect"

for v in "${variants[@]}"; do
  "$HERE/measure.sh" "$v" 200 1000 off 1 1 2>&1 | grep -v NOTICE | head -1
  "$HERE/measure.sh" "$v" 200 1000 off 1 50 2>&1 | grep -v NOTICE | head -1
done
python3 "$HERE/summarize.py"
if [ "$cost" = 1 ]; then "$HERE/cost.sh"; fi
