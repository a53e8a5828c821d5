#!/usr/bin/env python3
"""Generates the SQL of Ferry one-node runs for the WAL experiment.

  gen.py schema VARIANT            -> DDL: migrations 001-005 + the variant's changes
  gen.py setup VARIANT             -> the workflow and workflow_versions rows (FK targets)
  gen.py runs VARIANT N OFFSET     -> PREPAREs + N one-node runs (3 transactions each)

The base statements are the ones src/store/sql_store_runs.cc builds on PostgreSQL outside a
caller's transaction (RunWithFirstEventInsert, MarkStartedStatement + StepsSelect,
FinishStatement), copied text for text, with int8/text parameter types as pg_conn.cc sends them.
Event data is what runs.cc / handler.cc / executor.cc emit for the bench workflow (one lua node
"one" returning {ok = true}), as nlohmann::json dumps it (keys sorted).

Variants:
  base  schema as migrations 001-005
  v1    packed events: one run_events row per commit (first_seq, n, data = JSON array)
  v2    no FKs run_events->runs, run_steps->runs, runs->workflows, runs->workflow_versions
        (v2wf: only runs' two; v2ev: only run_events' and run_steps')
  v3    HOT: drop runs' indexes that mention status, fillfactor 70
  v4    v1 + v2 + v3
  v5    v4 + the node's checkpoint in the finish's event row (no run_steps row)
  v5r   v4 + the node's checkpoint in the runs row (runs.steps, no run_steps row)
  v6    v5 + run_events keyed by runs.seq (BIGINT) instead of run_id TEXT
  v7    v6 + runs' columns reordered (what never changes first, then what each update changes)
  v8    v7 + run.created's data kept in the runs row (no run_events row for it)
  v7nohot, v8nohot   v7 and v8 keeping every status index of runs
  v9    v8 + runs_open, a table of the unfinished runs' seq (inserted with the run, deleted by
        its finish) for the recovery lookups; v3open: v3 + runs_open
  v10   v9 with the status in runs_open too (the start updates it)
  (FEATURES below has the rest: single changes on top of base, fillfactor 90 and 100.)

Run it through run.sh, which starts the PostgreSQL it measures on. The statements are a copy:
after a change to how the store writes a run, check that `base` still writes what
`run_bench --only postgres` reports per run (4,046 against 4,055 bytes when this was written).
"""
import json
import os
import random
import re
import sys

MIGRATIONS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "src", "store",
                          "postgres", "migrations")
MIG_FILES = ["001_init.sql", "002_remediation.sql", "003_token_scopes.sql",
             "004_run_indexes.sql", "005_nonce_run.sql"]
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
WORKFLOW_ID = "01JEG4B2Q8ZC3M5N7P9R1T3V5X"  # NewId() shape: 26 Crockford chars
VERSION = 1
BASE_MS = 1764968400000  # 2025-12-05 21:00 UTC
WORKER_ID = "vm-48213-9f3c2a1b"  # DefaultWorkerId(): hostname-pid-hex4
BENCH_SOURCE = """name: bench
description: One lua node returning a constant; the benchmarks' workload.
triggers:
  webhook:
    methods: [POST]
    auth: hmac
    secret: BENCH_WEBHOOK
    tolerance: 5m
    max_body_bytes: 65536
nodes:
  one:
    kind: lua
    script: return { ok = true }
"""

FEATURES = {
    "base": set(),
    "v1": {"pack"},
    "v2": {"nofk"},
    "v2wf": {"nofk_wf"},  # v2's runs -> workflows, workflow_versions half
    "v2ev": {"nofk_ev"},  # v2's run_events, run_steps -> runs half
    "v3": {"hot"},
    "v4": {"pack", "nofk", "hot"},
    "v5": {"pack", "nofk", "hot", "step_in_event"},
    "v5r": {"pack", "nofk", "hot", "step_in_run"},
    "v6": {"pack", "nofk", "hot", "step_in_event", "seqkey"},
    # extras (single changes on top of base, to isolate)
    "v1v2": {"pack", "nofk"},
    "v3fk": {"hot"},  # same as v3 (alias kept for clarity)
    "base_seqkey": {"seqkey_unpacked"},
    # runs' columns reordered so that an update's changed bytes are contiguous (prefix/suffix
    # compression of same-page updates): immutable first, then the finish's, then both
    # transitions' (status, updated_ms), then the start's.
    "v5o": {"pack", "nofk", "hot", "step_in_event", "reorder"},
    "v7": {"pack", "nofk", "hot", "step_in_event", "seqkey", "reorder"},
    "base_reorder": {"reorder"},
    "v7ff100": {"pack", "nofk", "hot", "step_in_event", "seqkey", "reorder", "ff100"},
    "v7ff90": {"pack", "nofk", "hot", "step_in_event", "seqkey", "reorder", "ff90"},
    # v7 + the run.created event's data kept in the runs row (event 1, no run_events row)
    "v8": {"pack", "nofk", "hot", "step_in_event", "seqkey", "reorder", "created_in_run"},
    # v7 / v8 keeping every status index of runs (no HOT, fillfactor 100)
    "v7nohot": {"pack", "nofk", "step_in_event", "seqkey", "reorder"},
    "v8nohot": {"pack", "nofk", "step_in_event", "seqkey", "reorder", "created_in_run"},
    # v8 / v3 + a table of the unfinished runs (runs_open: a row from the create to the finish),
    # which the recovery lookups join instead of reading runs' status indexes
    "v9": {"pack", "nofk", "hot", "step_in_event", "seqkey", "reorder", "created_in_run", "open"},
    "v3open": {"hot", "open"},
    # v9 with the run's status kept in runs_open too (set by the start, a HOT update there), so
    # the lookups filter runs_open before they read runs: fast with a backlog of pending runs
    "v10": {"pack", "nofk", "hot", "step_in_event", "seqkey", "reorder", "created_in_run", "open",
            "open_status"},
}

RUNS_REORDERED = """CREATE TABLE runs (
  seq          BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
  id           TEXT PRIMARY KEY,
  workflow_id  TEXT NOT NULL REFERENCES workflows(id) ON DELETE CASCADE,
  version      INTEGER NOT NULL,
  triggered_by TEXT NOT NULL
               CHECK (triggered_by IN ('api', 'cli', 'webhook', 'cron', 'retry', 'remediation')),
  trigger_id   TEXT NOT NULL DEFAULT '',
  retry_of     TEXT UNIQUE REFERENCES runs(id) ON DELETE SET NULL,
  inputs       TEXT NOT NULL DEFAULT '{}',
  created_ms   BIGINT NOT NULL,
  output       TEXT NOT NULL DEFAULT '',
  error        TEXT NOT NULL DEFAULT '',
  failed_node  TEXT NOT NULL DEFAULT '',
  finished_ms  BIGINT NOT NULL DEFAULT 0,
  status       TEXT NOT NULL
               CHECK (status IN ('pending', 'running', 'succeeded', 'failed', 'cancelled')),
  updated_ms   BIGINT NOT NULL,
  attempt      INTEGER NOT NULL DEFAULT 0,
  epoch        BIGINT NOT NULL DEFAULT 0,
  worker       TEXT NOT NULL DEFAULT '',
  started_ms   BIGINT NOT NULL DEFAULT 0,
  FOREIGN KEY (workflow_id, version) REFERENCES workflow_versions(workflow_id, version)
);"""


def q(s):
    """SQL literal."""
    if s is None:
        return "NULL"
    return "'" + s.replace("'", "''") + "'"


def new_id(rng, now_ms):
    out = []
    t = now_ms
    head = []
    for _ in range(10):
        head.append(CROCKFORD[t & 31])
        t >>= 5
    out = "".join(reversed(head))
    return out + "".join(rng.choice(CROCKFORD) for _ in range(16))


def dump(obj):
    # nlohmann::json::dump(): keys sorted, no spaces.
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def pg_array(items):
    # PgArray in sql_store_runs.cc: each item quoted, quotes and backslashes escaped.
    out = []
    for it in items:
        s = str(it)
        out.append('"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"')
    return "{" + ",".join(out) + "}"


# ------------------------------------------------------------------ schema

def schema(variant):
    f = FEATURES[variant]
    parts = []
    for name in MIG_FILES:
        with open(f"{MIGRATIONS}/{name}") as fh:
            text = fh.read()
        if "reorder" in f and name == "001_init.sql":
            text, k = re.subn(r"CREATE TABLE runs \(.*?\n\);", lambda m: RUNS_REORDERED, text,
                              flags=re.S)
            assert k == 1
            if "created_in_run" in f:
                text = text.replace("  created_ms   BIGINT NOT NULL,\n  output",
                                    "  created_ms   BIGINT NOT NULL,\n"
                                    "  created_event TEXT NOT NULL DEFAULT '',  -- run.created's data\n"
                                    "  output", 1)
                assert "created_event" in text
        parts.append(f"-- {name}\n" + text)
    ddl = [f"-- variant {variant}: {sorted(f)}"]
    if "nofk" in f or "nofk_ev" in f:
        ddl += [
            "ALTER TABLE run_events DROP CONSTRAINT run_events_run_id_fkey;",
            "ALTER TABLE run_steps DROP CONSTRAINT run_steps_run_id_fkey;",
        ]
    if "nofk" in f or "nofk_wf" in f:
        ddl += [
            "ALTER TABLE runs DROP CONSTRAINT runs_workflow_id_fkey;",
            "ALTER TABLE runs DROP CONSTRAINT runs_workflow_id_version_fkey;",
        ]
    if "hot" in f:
        ddl += [
            "DROP INDEX runs_status_seq;",
            "DROP INDEX runs_pending_created;",
            "DROP INDEX runs_running_updated;",
            "DROP INDEX runs_ended_finished;",
        ]
        if "ff90" in f:
            ddl += ["ALTER TABLE runs SET (fillfactor = 90);"]
        elif "ff100" not in f:
            ddl += ["ALTER TABLE runs SET (fillfactor = 70);"]
    if "open_status" in f:
        ddl += ["-- The unfinished runs and their status: inserted with the run, updated by its\n"
                "-- start, deleted by its finish.\n"
                "CREATE TABLE runs_open (seq BIGINT PRIMARY KEY, status TEXT NOT NULL)"
                " WITH (fillfactor = 70);"]
    elif "open" in f:
        ddl += ["-- The unfinished runs: inserted with the run, deleted by its finish.\n"
                "CREATE TABLE runs_open (seq BIGINT PRIMARY KEY);"]
    if "step_in_run" in f:
        ddl += ["ALTER TABLE runs ADD COLUMN steps TEXT NOT NULL DEFAULT '';"]
    if "pack" in f:
        fk = "" if "nofk" in f else " REFERENCES runs(id) ON DELETE CASCADE"
        steps_col = "  steps     TEXT NOT NULL DEFAULT '',\n" if "step_in_event" in f else ""
        if "seqkey" in f:
            key = "  run_seq   BIGINT NOT NULL,\n"
            pk = "PRIMARY KEY (run_seq, first_seq)"
        else:
            key = f"  run_id    TEXT NOT NULL{fk},\n"
            pk = "PRIMARY KEY (run_id, first_seq)"
        ddl += [
            "DROP TABLE run_events;",
            "-- One row per commit: data is a JSON array of [ts_ms, type, data] (one per event),\n"
            "-- numbered first_seq .. first_seq + n - 1.\n"
            "CREATE TABLE run_events (\n" + key +
            "  first_seq BIGINT NOT NULL,\n"
            "  n         INTEGER NOT NULL,\n" + steps_col +
            "  data      TEXT NOT NULL,\n"
            f"  {pk}\n);",
        ]
    if "seqkey_unpacked" in f:
        ddl += [
            "DROP TABLE run_events;",
            "CREATE TABLE run_events (\n"
            "  run_seq BIGINT NOT NULL REFERENCES runs(seq) ON DELETE CASCADE,\n"
            "  seq     BIGINT NOT NULL,\n"
            "  ts_ms   BIGINT NOT NULL,\n"
            "  type    TEXT NOT NULL,\n"
            "  data    TEXT NOT NULL DEFAULT '{}',\n"
            "  PRIMARY KEY (run_seq, seq)\n);",
            "DROP TABLE run_steps;",
            "CREATE TABLE run_steps (\n"
            "  run_seq     BIGINT NOT NULL REFERENCES runs(seq) ON DELETE CASCADE,\n"
            "  node_id     TEXT NOT NULL,\n"
            "  status      TEXT NOT NULL,\n"
            "  output      TEXT NOT NULL DEFAULT '',\n"
            "  error       TEXT NOT NULL DEFAULT '',\n"
            "  attempt     INTEGER NOT NULL DEFAULT 0,\n"
            "  epoch       BIGINT NOT NULL,\n"
            "  started_ms  BIGINT NOT NULL DEFAULT 0,\n"
            "  finished_ms BIGINT NOT NULL DEFAULT 0,\n"
            "  PRIMARY KEY (run_seq, node_id)\n);",
        ]
    return "\n".join(parts) + "\n" + "\n".join(ddl) + "\n"


def setup(variant):
    graph = dump({"nodes": [{"id": "one", "kind": "lua"}]})
    return (
        "INSERT INTO workflows (id, name, description, current_version, paused, created_ms, "
        f"updated_ms) VALUES ({q(WORKFLOW_ID)}, 'bench', 'One lua node returning a constant; the "
        f"benchmarks'' workload.', 0, false, {BASE_MS - 60000}, {BASE_MS - 60000});\n"
        "INSERT INTO workflow_versions (workflow_id, version, source, format, graph, checksum, "
        f"author, notes, created_ms) VALUES ({q(WORKFLOW_ID)}, {VERSION}, {q(BENCH_SOURCE)}, "
        f"'yaml', {q(graph)}, 'sha256:{'ab' * 32}', 'run_bench', '', {BASE_MS - 60000});\n"
        f"UPDATE workflows SET current_version = {VERSION}, updated_ms = {BASE_MS - 60000} "
        f"WHERE id = {q(WORKFLOW_ID)};\n"
    )


# ------------------------------------------------------------------ statements

RUN_RETURNING = (
    " RETURNING id, workflow_id, (SELECT name FROM workflows WHERE workflows.id = "
    "runs.workflow_id), version, status, attempt, epoch, inputs, output, error, failed_node, "
    "triggered_by, trigger_id, retry_of, worker, created_ms, started_ms, finished_ms, updated_ms, "
    "seq")
STEP_COLS = "run_id, node_id, status, output, error, attempt, epoch, started_ms, finished_ms"
STEP_ON_CONFLICT = (
    " ON CONFLICT (run_id, node_id) DO UPDATE SET status = excluded.status, "
    "output = excluded.output, error = excluded.error, "
    "attempt = excluded.attempt, epoch = excluded.epoch, "
    "started_ms = excluded.started_ms, finished_ms = excluded.finished_ms "
    "WHERE run_steps.status = 'waiting'")
STEPS_ARRAYS = (
    "unnest(CAST($8 AS TEXT[]), CAST($9 AS TEXT[]), CAST($10 AS TEXT[]), CAST($11 AS TEXT[]), "
    "CAST($12 AS BIGINT[]), CAST($13 AS BIGINT[]), CAST($14 AS BIGINT[]), "
    "CAST($15 AS BIGINT[])) AS v(node, status, output, error, attempt, epoch, started, "
    "finished)")

RUN_INSERT = (
    "INSERT INTO runs (id, workflow_id, version, status, inputs, triggered_by, "
    "trigger_id, retry_of, created_ms, updated_ms) SELECT $1, w.id, v.version, "
    "'pending', $4, $5, $6, $7, $8, $8 FROM workflows w JOIN workflow_versions v ON "
    "v.workflow_id = w.id WHERE w.id = $2 AND v.version = CASE WHEN $3 = 0 THEN "
    "w.current_version ELSE $3 END AND ($9 = 0 OR v.version = w.current_version)" + RUN_RETURNING)

MARK_RUNNING = (
    "UPDATE runs SET status = 'running', epoch = $2, worker = $3, attempt = attempt + 1, "
    "started_ms = CASE WHEN started_ms = 0 THEN $4 ELSE started_ms END, updated_ms = $4 "
    "WHERE id = $1 AND (status = 'pending' OR (status = 'running' AND epoch < $2))" + RUN_RETURNING)


def finish_update(also, set_steps=""):
    return ("UPDATE runs SET status = $3, output = $4, error = $5, failed_node = $6, "
            "finished_ms = $7, updated_ms = $7" + set_steps + " WHERE id = $1 AND status = "
            "'running' AND epoch = $2" + also + RUN_RETURNING)


def statements(variant):
    """(create, start, steps_select, finish) PREPARE texts."""
    create, start, steps, finish = schema_statements(variant)
    f = FEATURES[variant]
    if "open" in f:
        # The create also inserts the run's seq into runs_open (v10: and its status, which the
        # start updates); the finish deletes it.
        add = (", o AS (INSERT INTO runs_open (seq, status) SELECT r.seq, 'pending' FROM r) "
               "SELECT * FROM r" if "open_status" in f else
               ", o AS (INSERT INTO runs_open (seq) SELECT r.seq FROM r) SELECT * FROM r")
        if create.endswith(") SELECT * FROM r"):
            create = create[:-len(" SELECT * FROM r")] + add
        else:  # a bare INSERT ... RETURNING (run.created in the runs row)
            head, insert = create.split(" AS INSERT ", 1)
            create = head + " AS WITH r AS (INSERT " + insert + ")" + add
        assert finish.endswith(") SELECT * FROM f")
        finish = (finish[:-len(" SELECT * FROM f")] +
                  ", o AS (DELETE FROM runs_open o USING f WHERE o.seq = f.seq) SELECT * FROM f")
        if "open_status" in f:
            assert start.endswith(") SELECT * FROM u")
            start = (start[:-len(" SELECT * FROM u")] + ", o AS (UPDATE runs_open o SET status = "
                     "'running' FROM u WHERE o.seq = u.seq) SELECT * FROM u")
    return create, start, steps, finish


def schema_statements(variant):
    """statements() without runs_open."""
    f = FEATURES[variant]
    T12 = "(text, text, bigint, text, text, text, text, bigint, bigint, bigint, text, text)"
    if "pack" not in f and "seqkey_unpacked" not in f:
        create = (f"PREPARE create_run {T12} AS WITH r AS (" + RUN_INSERT +
                  "), e AS (INSERT INTO run_events (run_id, seq, ts_ms, type, data) SELECT r.id, 1, "
                  "$10, $11, $12 FROM r) SELECT * FROM r")
        start = ("PREPARE start_run (text, bigint, text, bigint, bigint, text, text) AS "
                 "WITH u AS (" + MARK_RUNNING + "), e AS (" +
                 "INSERT INTO run_events (run_id, seq, ts_ms, type, data) SELECT r.id, (SELECT "
                 "COALESCE(MAX(seq), 0) + 1 FROM run_events WHERE run_id = $1), $5, $6, "
                 "CAST($7 AS TEXT) || CAST(r.attempt AS TEXT) || '}' FROM u r"
                 ") SELECT * FROM u")
        steps = ("PREPARE steps_run (text) AS SELECT " + STEP_COLS +
                 " FROM run_steps WHERE run_id = $1 ORDER BY finished_ms, node_id")
        also = (" AND NOT EXISTS (SELECT 1 FROM run_steps s, " + STEPS_ARRAYS +
                " WHERE s.run_id = $1 AND s.node_id = v.node AND s.status <> 'waiting' AND NOT "
                "(s.epoch = $2 AND s.status = v.status AND s.output = v.output AND s.error = "
                "v.error))")
        finish = ("PREPARE finish_run (text, bigint, text, text, text, text, bigint, " +
                  ", ".join(["text"] * 11) + ") AS " +
                  "WITH f AS (" + finish_update(also) + "), s AS (INSERT INTO run_steps (" +
                  STEP_COLS + ") " +
                  "SELECT f.id, v.node, v.status, v.output, v.error, v.attempt, v.epoch, "
                  "v.started, v.finished FROM f, " + STEPS_ARRAYS + STEP_ON_CONFLICT +
                  "), e AS (INSERT INTO run_events (run_id, seq, ts_ms, type, data) SELECT f.id, "
                  "b.m + v.k, v.ts, v.type, v.data FROM f, (SELECT COALESCE(MAX(seq), 0) AS m FROM "
                  "run_events WHERE run_id = $1) b, unnest(CAST($16 AS BIGINT[]), CAST($17 AS "
                  "TEXT[]), CAST($18 AS TEXT[])) WITH ORDINALITY AS v(ts, type, data, k)) "
                  "SELECT * FROM f")
        return create, start, steps, finish

    if "seqkey_unpacked" in f:
        # base statements, run_events / run_steps keyed by runs.seq (from the RETURNING row).
        create = (f"PREPARE create_run {T12} AS WITH r AS (" + RUN_INSERT +
                  "), e AS (INSERT INTO run_events (run_seq, seq, ts_ms, type, data) SELECT "
                  "r.seq, 1, $10, $11, $12 FROM r) SELECT * FROM r")
        start = ("PREPARE start_run (text, bigint, text, bigint, bigint, text, text) AS "
                 "WITH u AS (" + MARK_RUNNING + "), e AS (" +
                 "INSERT INTO run_events (run_seq, seq, ts_ms, type, data) SELECT r.seq, (SELECT "
                 "COALESCE(MAX(seq), 0) + 1 FROM run_events WHERE run_seq = r.seq), $5, $6, "
                 "CAST($7 AS TEXT) || CAST(r.attempt AS TEXT) || '}' FROM u r"
                 ") SELECT * FROM u")
        steps = ("PREPARE steps_run (text) AS SELECT s.node_id, s.status, s.output, s.error, "
                 "s.attempt, s.epoch, s.started_ms, s.finished_ms FROM run_steps s JOIN runs r ON "
                 "r.seq = s.run_seq WHERE r.id = $1 ORDER BY s.finished_ms, s.node_id")
        also = (" AND NOT EXISTS (SELECT 1 FROM run_steps s, " + STEPS_ARRAYS +
                " WHERE s.run_seq = runs.seq AND s.node_id = v.node AND s.status <> 'waiting' AND "
                "NOT (s.epoch = $2 AND s.status = v.status AND s.output = v.output AND s.error = "
                "v.error))")
        finish = ("PREPARE finish_run (text, bigint, text, text, text, text, bigint, " +
                  ", ".join(["text"] * 11) + ") AS " +
                  "WITH f AS (" + finish_update(also) + "), s AS (INSERT INTO run_steps (run_seq, "
                  "node_id, status, output, error, attempt, epoch, started_ms, finished_ms) "
                  "SELECT f.seq, v.node, v.status, v.output, v.error, v.attempt, v.epoch, "
                  "v.started, v.finished FROM f, " + STEPS_ARRAYS +
                  STEP_ON_CONFLICT.replace("(run_id, node_id)", "(run_seq, node_id)") +
                  "), e AS (INSERT INTO run_events (run_seq, seq, ts_ms, type, data) SELECT f.seq, "
                  "b.m + v.k, v.ts, v.type, v.data FROM f, LATERAL (SELECT COALESCE(MAX(seq), 0) "
                  "AS m FROM run_events WHERE run_seq = f.seq) b, unnest(CAST($16 AS BIGINT[]), "
                  "CAST($17 AS TEXT[]), CAST($18 AS TEXT[])) WITH ORDINALITY AS v(ts, type, data, "
                  "k)) SELECT * FROM f")
        return create, start, steps, finish

    # Packed events: one row per commit. $10 = the event row's data (a JSON array), $11 = n.
    seqkey = "seqkey" in f
    kcol = "run_seq" if seqkey else "run_id"
    kval_r = "r.seq" if seqkey else "r.id"
    created_in_run = "created_in_run" in f
    base_seq = "1" if created_in_run else "0"  # event 1 (run.created) lives in the runs row
    if created_in_run:
        # $10: the run.created event's data; its number is 1 and its ts the run's created_ms.
        create = ("PREPARE create_run (text, text, bigint, text, text, text, text, bigint, bigint, "
                  "text) AS " + RUN_INSERT.replace(
                      "created_ms, updated_ms) SELECT", "created_ms, updated_ms, created_event) "
                      "SELECT").replace("$8, $8 FROM", "$8, $8, $10 FROM"))
    else:
        create = (f"PREPARE create_run (text, text, bigint, text, text, text, text, bigint, bigint, "
                  f"text) AS WITH r AS (" + RUN_INSERT +
                  f"), e AS (INSERT INTO run_events ({kcol}, first_seq, n, data) SELECT {kval_r}, 1, "
                  "1, $10 FROM r) SELECT * FROM r")
    # The started event's row: head ($6) is '[[ts,"run.started",{...,"attempt":' and the
    # statement appends the attempt it counted, as the base statement does.
    last_of = (f"(SELECT COALESCE(MAX(first_seq + n - 1), {base_seq}) + 1 FROM run_events WHERE "
               f"{kcol} = " + ("r.seq" if seqkey else "$1") + ")")
    start = ("PREPARE start_run (text, bigint, text, bigint, text) AS "
             "WITH u AS (" + MARK_RUNNING + f"), e AS (INSERT INTO run_events ({kcol}, first_seq, "
             f"n, data) SELECT {kval_r}, " + last_of + ", 1, CAST($5 AS TEXT) || "
             "CAST(r.attempt AS TEXT) || '}]]' FROM u r) SELECT * FROM u")
    step_in_event = "step_in_event" in f
    step_in_run = "step_in_run" in f
    if step_in_event:
        # Checkpoints are the steps of the run's event rows (rows with steps <> '').
        steps = (f"PREPARE steps_run (text) AS SELECT e.steps FROM run_events e " +
                 ("JOIN runs r ON r.seq = e.run_seq WHERE r.id = $1" if seqkey
                  else "WHERE e.run_id = $1") +
                 " AND e.steps <> '' ORDER BY e.first_seq")
    elif step_in_run:
        steps = "PREPARE steps_run (text) AS SELECT steps FROM runs WHERE id = $1"
    else:
        steps = ("PREPARE steps_run (text) AS SELECT " + STEP_COLS +
                 " FROM run_steps WHERE run_id = $1 ORDER BY finished_ms, node_id")
    # finish: $8..$15 the steps' arrays as in the base statement (for the fence), $16 the events
    # row's data, $17 its n, $18 (v5/v6) the steps as one JSON array for the event/run row.
    if step_in_event or step_in_run:
        # The fence (no node already checkpointed differently) against stored checkpoints: here
        # the run's previous rows with steps; the one-node run has none, so it reads and writes
        # nothing more. Kept so the statement does the same reads.
        src = ("run_events s WHERE s." + kcol + " = " + ("runs.seq" if seqkey else "$1") +
               " AND s.steps <> ''") if step_in_event else "(SELECT 1) s WHERE runs.steps <> ''"
        also = (" AND NOT EXISTS (SELECT 1 FROM " + src + " AND $18 <> '' AND position($18 in " +
                ("s.steps" if step_in_event else "runs.steps") + ") = 0)")
    else:
        also = (" AND NOT EXISTS (SELECT 1 FROM run_steps s, " + STEPS_ARRAYS +
                " WHERE s.run_id = $1 AND s.node_id = v.node AND s.status <> 'waiting' AND NOT "
                "(s.epoch = $2 AND s.status = v.status AND s.output = v.output AND s.error = "
                "v.error))")
    types = ("(text, bigint, text, text, text, text, bigint, " + ", ".join(["text"] * 8) +
             ", text, bigint, text)")
    fin = "PREPARE finish_run " + types + " AS WITH f AS (" + finish_update(
        also, ", steps = $18" if step_in_run else "") + ")"
    if not (step_in_event or step_in_run):
        fin += (", s AS (INSERT INTO run_steps (" + STEP_COLS + ") SELECT f.id, v.node, v.status, "
                "v.output, v.error, v.attempt, v.epoch, v.started, v.finished FROM f, " +
                STEPS_ARRAYS + STEP_ON_CONFLICT + ")")
    kval_f = "f.seq" if seqkey else "f.id"
    last_f = (f"(SELECT COALESCE(MAX(first_seq + n - 1), {base_seq}) FROM run_events WHERE {kcol} = " +
              ("f.seq" if seqkey else "$1") + ")")
    if step_in_event:
        fin += (f", e AS (INSERT INTO run_events ({kcol}, first_seq, n, steps, data) SELECT "
                f"{kval_f}, {last_f} + 1, $17, $18, $16 FROM f) SELECT * FROM f")
    else:
        fin += (f", e AS (INSERT INTO run_events ({kcol}, first_seq, n, data) SELECT "
                f"{kval_f}, {last_f} + 1, $17, $16 FROM f) SELECT * FROM f")
    # $8..$15 are unused by v5/v5r's statement text; PostgreSQL needs every parameter typed,
    # so they stay declared and are sent (as the application would not: they cost no WAL).
    return create, start, steps, fin


# ------------------------------------------------------------------ runs

def runs(variant, n, offset, batch=1):
    f = FEATURES[variant]
    rng = random.Random(1000 + offset)
    out = ["\\set ON_ERROR_STOP on", "\\pset pager off", "SET client_min_messages = warning;"]
    out += [s + ";" for s in statements(variant)]
    groups = []  # per run: [create stmts, start stmts, finish stmts]
    for i in range(offset, offset + n):
        g = [[], [], []]
        groups.append(g)
        now = BASE_MS + i * 7
        run_id = new_id(rng, now)
        task_id = new_id(rng, now)
        created = dump({"generation": 0, "queue": "default", "task_id": task_id,
                        "triggered_by": "api", "version": VERSION})
        # 1: create (RunWithFirstEventInsert): $1 id, $2 workflow, $3 version, $4 inputs,
        # $5 triggered_by, $6 trigger_id, $7 retry_of (NULL), $8 now, $9 only_if_current,
        # $10 ts, $11 type, $12 data.
        args = [q(run_id), q(WORKFLOW_ID), str(VERSION), q("{}"), q("api"), q(""), "NULL",
                str(now), "1"]
        if "created_in_run" in f:
            args += [q(created)]
        elif "pack" in f:
            args += [q(dump([[now, "run.created", json.loads(created)]]))]
        else:
            args += [str(now), q("run.created"), q(created)]
        g[0].append(f"EXECUTE create_run({', '.join(args)});")
        # 2: start (MarkStartedStatement + StepsSelect), one transaction.
        t_start = now + 2
        epoch = 1  # RunFencingToken(generation 0, task epoch 1)
        worker = WORKER_ID + "/" + task_id
        started = dump({"epoch": epoch, "generation": 0, "queue": "default", "task_id": task_id,
                        "worker": WORKER_ID})
        head = started[:-1] + ',"attempt":'  # StartedEventHead
        if "pack" in f:
            phead = '[[' + str(t_start) + ',"run.started",' + head
            sargs = [q(run_id), str(epoch), q(worker), str(t_start), q(phead)]
        else:
            sargs = [q(run_id), str(epoch), q(worker), str(t_start), str(t_start),
                     q("run.started"), q(head)]
        g[1] += ["BEGIN;", f"EXECUTE start_run({', '.join(sargs)});",
                 f"EXECUTE steps_run({q(run_id)});", "COMMIT;"]
        # 3: finish (FinishStatement): the node's checkpoint, the run's end, and the events
        # node.started, node.finished, run.finished.
        t_node0 = now + 3
        t_node1 = now + 4
        t_end = now + 5
        step_output = dump({"ok": True})
        run_output = dump({"one": {"ok": True}})
        events = [
            (t_node0, "node.started", dump({"attempt": 1, "kind": "lua", "node": "one"})),
            (t_node1, "node.finished", dump({"attempt": 1, "duration_ms": 1, "node": "one",
                                             "status": "succeeded"})),
            (t_end, "run.finished", dump({"duration_ms": t_end - t_start,
                                          "status": "succeeded"})),
        ]
        fargs = [q(run_id), str(epoch), q("succeeded"), q(run_output), q(""), q(""), str(t_end)]
        step_arrays = [pg_array(["one"]), pg_array(["succeeded"]), pg_array([step_output]),
                       pg_array([""]), pg_array([1]), pg_array([epoch]), pg_array([t_node0]),
                       pg_array([t_node1])]
        fargs += [q(a) for a in step_arrays]
        if "pack" in f:
            data = dump([[ts, ty, json.loads(d)] for ts, ty, d in events])
            steps_json = ""
            if "step_in_event" in f or "step_in_run" in f:
                # [node, status, output, error, attempt, epoch, started_ms, finished_ms]
                steps_json = dump([["one", "succeeded", {"ok": True}, "", 1, epoch, t_node0,
                                    t_node1]])
            fargs += [q(data), str(len(events)), q(steps_json)]
        else:
            fargs += [q(pg_array([e[0] for e in events])), q(pg_array([e[1] for e in events])),
                      q(pg_array([e[2] for e in events]))]
        g[2].append(f"EXECUTE finish_run({', '.join(fargs)});")
    # batch 1: run after run. batch B: B creates, then their B starts, then their B finishes
    # (a backlog: the runs' rows share pages with runs created after them before they update).
    for b in range(0, len(groups), batch):
        chunk = groups[b:b + batch]
        for phase in range(3):
            for g in chunk:
                out += g[phase]
    return "\n".join(out) + "\n"


def main():
    cmd, variant = sys.argv[1], sys.argv[2]
    if cmd == "schema":
        sys.stdout.write(schema(variant))
    elif cmd == "setup":
        sys.stdout.write(setup(variant))
    elif cmd == "runs":
        batch = int(sys.argv[5]) if len(sys.argv) > 5 else 1
        sys.stdout.write(runs(variant, int(sys.argv[3]), int(sys.argv[4]), batch))
    elif cmd == "statements":
        for s in statements(variant):
            print(s + ";\n")
    else:
        sys.exit("unknown command")


if __name__ == "__main__":
    main()
