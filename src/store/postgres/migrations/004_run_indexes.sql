-- Fewer index entries per run (docs/benchmarks.md, "What one run costs the databases"). A run's
-- row is written three times (pending, running, finished) and every version of it went into all
-- eight indexes of `runs`. The three lookups by age each concern runs in one status, so their
-- indexes now hold only those rows (the queries name the status literally, which lets the
-- planner use them; retention reads its index in finished_ms order): a run enters each once. A
-- run that retries no other has no entry in the retry_of index (unique, as before, for the rows
-- that have one).
--
-- The new indexes are built first, under a lock that still lets readers in; the old ones are
-- dropped last, so the exclusive lock that takes is held only for the moment before the commit.
CREATE INDEX runs_pending_created ON runs(created_ms) WHERE status = 'pending';
CREATE INDEX runs_running_updated ON runs(updated_ms) WHERE status = 'running';
CREATE INDEX runs_ended_finished ON runs(finished_ms)
  WHERE status IN ('succeeded', 'failed', 'cancelled');
CREATE UNIQUE INDEX runs_retry_of ON runs(retry_of) WHERE retry_of IS NOT NULL;
DROP INDEX runs_status_created;
DROP INDEX runs_status_updated;
DROP INDEX runs_status_finished;
ALTER TABLE runs DROP CONSTRAINT runs_retry_of_key;
