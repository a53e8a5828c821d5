-- Fewer index entries per run (docs/benchmarks.md, "What one run costs the databases"). A run's
-- row is written three times (pending, running, finished) and every version of it went into
-- every index of `runs`. The three lookups by age each concern runs in one status, so their
-- indexes now hold only those rows (the queries name the status exactly as the index does,
-- which SQLite needs to use a partial index; status leads each key so that the planner prefers
-- them to runs_status_seq, which PostgreSQL's planner does without): a run enters each once.
-- (retry_of's UNIQUE stays the table's own: SQLite cannot drop it without copying the table.)
DROP INDEX runs_status_created;
CREATE INDEX runs_pending_created ON runs(status, created_ms) WHERE status = 'pending';
DROP INDEX runs_status_updated;
CREATE INDEX runs_running_updated ON runs(status, updated_ms) WHERE status = 'running';
DROP INDEX runs_status_finished;
CREATE INDEX runs_ended_finished ON runs(status, finished_ms)
  WHERE status IN ('succeeded', 'failed', 'cancelled');
