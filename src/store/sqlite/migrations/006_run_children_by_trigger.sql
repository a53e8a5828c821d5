-- Nothing changes here. PostgreSQL's migration 6 replaces the foreign keys of run_steps and
-- run_events with row locks and a delete trigger, because there each key's check was a trigger
-- and a row lock per written row. SQLite checks a key with one in-process index lookup, and has
-- one writer at a time, so its keys stay. The number keeps both schemas at one version.
SELECT 1;
