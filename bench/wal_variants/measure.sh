#!/bin/bash
# measure.sh VARIANT [N=200] [WARMUP=200] [FPW=off] [REP=1] [BATCH=1]
# BATCH > 1: the measured runs go B creates, B starts, B finishes at a time (a backlog).
# Fresh database, schema + variant, warm-up runs, CHECKPOINT, then N runs measured:
# WAL bytes (pg_current_wal_insert_lsn difference), pg_get_wal_stats per record kind, n_tup_*
# deltas. Run by run.sh, which starts the server it talks to.
set -euo pipefail
V=$1; N=${2:-200}; W=${3:-200}; FPW=${4:-off}; REP=${5:-1}; BATCH=${6:-1}; TAG=$V; [ "$BATCH" -gt 1 ] && TAG=${V}_b$BATCH
D=${FERRY_WAL_DIR:-/tmp/ferry-wal-variants}
HERE=$(cd "$(dirname "$0")" && pwd)
PORT=$(cat $D/port)
OUT=$D/results/$TAG.fpw$FPW.r$REP
mkdir -p $D/results $D/sql
chown -R postgres $D/results $D/sql
PSQL="runuser -u postgres -- /usr/lib/postgresql/15/bin/psql -X -q -h $D/sock -p $PORT -v ON_ERROR_STOP=1"
DB=walexp_$V

python3 "$HERE/gen.py" schema $V > $D/sql/schema_$V.sql
python3 "$HERE/gen.py" setup $V > $D/sql/setup_$V.sql
python3 "$HERE/gen.py" runs $V $W 0 > $D/sql/warmup_$V.sql
python3 "$HERE/gen.py" runs $V $N 100000 $BATCH > $D/sql/runs_$TAG.sql

$PSQL -d postgres -c "ALTER SYSTEM SET full_page_writes = $FPW" -c "SELECT pg_reload_conf()" >/dev/null
$PSQL -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB" >/dev/null
$PSQL -d $DB -f $D/sql/schema_$V.sql >/dev/null
$PSQL -d $DB -f $D/sql/setup_$V.sql >/dev/null
if [ "$W" -gt 0 ]; then $PSQL -d $DB -f $D/sql/warmup_$V.sql >/dev/null; fi
sleep 1.2  # let the backend's table statistics reach shared memory
STAT="SELECT relname, n_tup_ins, n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE relname IN ('runs','run_events','run_steps','runs_open') ORDER BY relname"
$PSQL -d $DB -At -F' ' -c "$STAT" > $OUT.stat0
$PSQL -d $DB -c "CHECKPOINT" >/dev/null
LSN0=$($PSQL -d $DB -At -c "SELECT pg_current_wal_insert_lsn()")
$PSQL -d $DB -f $D/sql/runs_$TAG.sql >/dev/null
LSN1=$($PSQL -d $DB -At -c "SELECT pg_current_wal_insert_lsn()")
$PSQL -d $DB -c "CHECKPOINT" >/dev/null   # flushes the WAL so pg_walinspect can read it
sleep 1.2
$PSQL -d $DB -At -F' ' -c "$STAT" > $OUT.stat1
BYTES=$($PSQL -d postgres -At -c "SELECT pg_wal_lsn_diff('$LSN1', '$LSN0')")
echo "$TAG fpw=$FPW lsn $LSN0 -> $LSN1 bytes $BYTES per_run $(python3 -c "print(round($BYTES/$N,1))")" > $OUT.summary
$PSQL -d postgres -At -F'|' -c "SELECT \"resource_manager/record_type\", count, record_size, fpi_size, combined_size FROM pg_get_wal_stats('$LSN0', '$LSN1', true) WHERE count > 0 ORDER BY combined_size DESC" > $OUT.walstats
$PSQL -d $DB -At -c "SELECT indexrelname FROM pg_stat_user_indexes WHERE relname IN ('runs','run_events','run_steps','runs_open') ORDER BY 1" | tr '\n' ' ' > $OUT.indexes
# The dead row versions these runs left are reclaimed later by (auto)vacuum, which also writes WAL:
# a plain VACUUM of the three tables now (all 1,000 + N runs, never vacuumed; autovacuum is off;
# nothing has read the tables since the measured runs, so no page was pruned in between).
VL0=$($PSQL -d $DB -At -c "SELECT pg_current_wal_insert_lsn()")
TABLES=$($PSQL -d $DB -At -c "SELECT string_agg(relname, ', ' ORDER BY relname) FROM pg_stat_user_tables WHERE relname IN ('runs','run_events','run_steps','runs_open')")
$PSQL -d $DB -c "VACUUM $TABLES" >/dev/null
VL1=$($PSQL -d $DB -At -c "SELECT pg_current_wal_insert_lsn()")
$PSQL -d $DB -c "CHECKPOINT" >/dev/null
VBYTES=$($PSQL -d postgres -At -c "SELECT pg_wal_lsn_diff('$VL1', '$VL0')")
echo "vacuum_bytes $VBYTES runs_in_tables $((W + N))" >> $OUT.summary
$PSQL -d postgres -At -F'|' -c "SELECT \"resource_manager/record_type\", count, record_size, fpi_size, combined_size FROM pg_get_wal_stats('$VL0', '$VL1', true) WHERE count > 0 ORDER BY combined_size DESC" > $OUT.vacstats
$PSQL -d $DB -At -F' ' -c "SELECT relname, pg_table_size(relid), pg_indexes_size(relid) FROM pg_stat_user_tables WHERE relname IN ('runs','run_events','run_steps','runs_open') ORDER BY 1" > $OUT.sizes
# (read after the VACUUM: a scan of runs prunes its pages, which would move WAL out of the window)
$PSQL -d $DB -At -F' ' -c "SELECT (SELECT count(*) FROM runs), (SELECT count(*) FROM runs WHERE status='succeeded'), (SELECT count(*) FROM run_events), (SELECT count(*) FROM run_steps)" > $OUT.counts
cat $OUT.summary
