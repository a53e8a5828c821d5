-- Fewer index entries per run (docs/benchmarks.md, "What one run costs the databases"). A run's
-- row is written three times (pending, running, finished) and every version of it went into all
-- eight indexes of `runs`. The three lookups by age each concern runs in one status, so their
-- indexes now hold only those rows (the queries name the status literally, which lets the
-- planner use them; status leads each, as on SQLite, where the planner needs it to prefer them
-- to runs_status_seq): a run enters each once. A run that retries no other has no entry in the
-- retry_of index (unique, as before, for the rows that have one).
DROP INDEX runs_status_created;
CREATE INDEX runs_pending_created ON runs(status, created_ms) WHERE status = 'pending';
DROP INDEX runs_status_updated;
CREATE INDEX runs_running_updated ON runs(status, updated_ms) WHERE status = 'running';
DROP INDEX runs_status_finished;
CREATE INDEX runs_ended_finished ON runs(status, finished_ms)
  WHERE status IN ('succeeded', 'failed', 'cancelled');
ALTER TABLE runs DROP CONSTRAINT runs_retry_of_key;
CREATE UNIQUE INDEX runs_retry_of ON runs(retry_of) WHERE retry_of IS NOT NULL;
