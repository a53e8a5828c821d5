-- A run's steps and events lose their foreign keys: the per-row check each key made (a row lock
-- on the run, in a trigger of its own, for every event and checkpoint) was a tenth of what a
-- one-node run cost the server (docs/benchmarks.md, "Steps and events without per-row checks").
-- What the keys guaranteed still holds:
-- - nothing is written for a run that does not exist: every statement that writes a step or an
--   event takes it from the run's row, which that statement (or its transaction, before it)
--   inserted, updated, or locked FOR KEY SHARE, so a deletion waits for the writer's commit or
--   the writer finds the run gone (src/store/sql_store_runs.cc);
-- - a deleted run's steps and events go with it, by the trigger below, in the deleting statement
--   (retention, and a workflow's runs when the workflow goes).
ALTER TABLE run_events DROP CONSTRAINT run_events_run_id_fkey;
ALTER TABLE run_steps DROP CONSTRAINT run_steps_run_id_fkey;

CREATE FUNCTION ferry_delete_run_children() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM run_steps s USING deleted_runs d WHERE s.run_id = d.id;
  DELETE FROM run_events e USING deleted_runs d WHERE e.run_id = d.id;
  RETURN NULL;
END $$;

CREATE TRIGGER runs_delete_children AFTER DELETE ON runs REFERENCING OLD TABLE AS deleted_runs
  FOR EACH STATEMENT EXECUTE FUNCTION ferry_delete_run_children();
