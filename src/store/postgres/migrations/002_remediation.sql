-- Ferry store schema, version 2 (PostgreSQL): remediation candidates of failed runs and their
-- attempts (docs/remediation.md). Keep in step with sqlite/migrations/002_remediation.sql.

-- One row per distinct failure (fingerprint) while it is open; later failures with the same
-- fingerprint attach to it (occurrences, last_seen_ms) through the partial unique index below.
-- run_id names the failed run that opened it; runs may be deleted by retention, so it is no
-- foreign key. context, error and the sources are redacted before they are stored.
CREATE TABLE remediations (
  seq               BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
  id                TEXT PRIMARY KEY,
  fingerprint       TEXT NOT NULL,
  workflow_id       TEXT NOT NULL REFERENCES workflows(id) ON DELETE CASCADE,
  version           INTEGER NOT NULL,
  run_id            TEXT NOT NULL,
  last_run_id       TEXT NOT NULL,
  failed_node       TEXT NOT NULL DEFAULT '',
  error             TEXT NOT NULL DEFAULT '',
  error_normalized  TEXT NOT NULL DEFAULT '',
  context           TEXT NOT NULL DEFAULT '{}',
  status            TEXT NOT NULL CHECK (status IN
                    ('pending', 'claimed', 'fixed', 'note_only', 'failed', 'dismissed')),
  occurrences       BIGINT NOT NULL DEFAULT 1,
  attempts          INTEGER NOT NULL DEFAULT 0,
  attempt_base      INTEGER NOT NULL DEFAULT 0,
  next_attempt_ms   BIGINT NOT NULL DEFAULT 0,
  claim_owner       TEXT NOT NULL DEFAULT '',
  claim_deadline_ms BIGINT NOT NULL DEFAULT 0,
  classification    TEXT NOT NULL DEFAULT '',
  summary           TEXT NOT NULL DEFAULT '',
  confidence        TEXT NOT NULL DEFAULT '',
  note              TEXT NOT NULL DEFAULT '',
  reason            TEXT NOT NULL DEFAULT '',
  result            TEXT NOT NULL DEFAULT '{}',
  base_source       TEXT NOT NULL DEFAULT '',
  proposed_source   TEXT NOT NULL DEFAULT '',
  fixed_version     INTEGER NOT NULL DEFAULT 0,
  retry_run_id      TEXT NOT NULL DEFAULT '',
  retry_error       TEXT NOT NULL DEFAULT '',
  first_seen_ms     BIGINT NOT NULL,
  last_seen_ms      BIGINT NOT NULL,
  created_ms        BIGINT NOT NULL,
  updated_ms        BIGINT NOT NULL
);
-- The deduplication guarantee: one open candidate per fingerprint.
CREATE UNIQUE INDEX remediations_open_fingerprint ON remediations(fingerprint)
  WHERE status IN ('pending', 'claimed', 'failed');
CREATE INDEX remediations_status ON remediations(status, next_attempt_ms);
CREATE INDEX remediations_workflow ON remediations(workflow_id, seq);

-- One row per claim of a candidate. attempts counts claims ever made (the attempt number is the
-- claim's fencing token and this table's key); attempt_base is its value at the last reopen, so
-- the attempt cap counts attempts - attempt_base. A claim released at shutdown is deleted here
-- and not counted.
CREATE TABLE remediation_attempts (
  remediation_id TEXT NOT NULL REFERENCES remediations(id) ON DELETE CASCADE,
  attempt        INTEGER NOT NULL,
  workflow_id    TEXT NOT NULL,
  owner          TEXT NOT NULL,
  outcome        TEXT NOT NULL DEFAULT 'running' CHECK (outcome IN
                 ('running', 'fixed', 'note_only', 'failed', 'expired', 'dismissed')),
  detail         TEXT NOT NULL DEFAULT '',
  agent_ms       BIGINT NOT NULL DEFAULT -1,
  started_ms     BIGINT NOT NULL,
  finished_ms    BIGINT NOT NULL DEFAULT 0,
  PRIMARY KEY (remediation_id, attempt)
);
CREATE INDEX remediation_attempts_workflow ON remediation_attempts(workflow_id, started_ms);

-- A single row every claim updates first: in PostgreSQL its row lock serializes claimers, so the
-- max-concurrent and per-workflow daily caps are counted without a race (SQLite's BEGIN
-- IMMEDIATE serializes writers already).
CREATE TABLE remediation_gate (
  id     INTEGER PRIMARY KEY,
  claims INTEGER NOT NULL DEFAULT 0
);
INSERT INTO remediation_gate (id, claims) VALUES (1, 0);
