-- Ferry store schema, version 1 (SQLite). Times are epoch milliseconds (0 = not yet); JSON is
-- TEXT stored verbatim; "" means none. Keep in step with postgres/migrations/001_init.sql.

CREATE TABLE workflows (
  id              TEXT PRIMARY KEY,
  name            TEXT NOT NULL UNIQUE,
  description     TEXT NOT NULL DEFAULT '',
  current_version INTEGER NOT NULL DEFAULT 0,
  paused          INTEGER NOT NULL DEFAULT 0,
  created_ms      INTEGER NOT NULL,
  updated_ms      INTEGER NOT NULL
);

CREATE TABLE workflow_versions (
  workflow_id TEXT NOT NULL REFERENCES workflows(id) ON DELETE CASCADE,
  version     INTEGER NOT NULL,
  source      TEXT NOT NULL,
  format      TEXT NOT NULL CHECK (format IN ('yaml', 'json')),
  graph       TEXT NOT NULL,
  checksum    TEXT NOT NULL,
  author      TEXT NOT NULL DEFAULT '',
  notes       TEXT NOT NULL DEFAULT '',
  created_ms  INTEGER NOT NULL,
  PRIMARY KEY (workflow_id, version)
);
CREATE INDEX workflow_versions_checksum ON workflow_versions(workflow_id, checksum);

-- seq gives listings a total, insertion-ordered key for newest-first keyset paging.
CREATE TABLE runs (
  seq          INTEGER PRIMARY KEY AUTOINCREMENT,
  id           TEXT NOT NULL UNIQUE,
  workflow_id  TEXT NOT NULL REFERENCES workflows(id) ON DELETE CASCADE,
  version      INTEGER NOT NULL,
  status       TEXT NOT NULL
               CHECK (status IN ('pending', 'running', 'succeeded', 'failed', 'cancelled')),
  attempt      INTEGER NOT NULL DEFAULT 0,
  epoch        INTEGER NOT NULL DEFAULT 0,
  inputs       TEXT NOT NULL DEFAULT '{}',
  output       TEXT NOT NULL DEFAULT '',
  error        TEXT NOT NULL DEFAULT '',
  failed_node  TEXT NOT NULL DEFAULT '',
  triggered_by TEXT NOT NULL
               CHECK (triggered_by IN ('api', 'cli', 'webhook', 'cron', 'retry', 'remediation')),
  trigger_id   TEXT NOT NULL DEFAULT '',
  retry_of     TEXT UNIQUE REFERENCES runs(id) ON DELETE SET NULL,
  worker       TEXT NOT NULL DEFAULT '',
  created_ms   INTEGER NOT NULL,
  started_ms   INTEGER NOT NULL DEFAULT 0,
  finished_ms  INTEGER NOT NULL DEFAULT 0,
  updated_ms   INTEGER NOT NULL,
  FOREIGN KEY (workflow_id, version) REFERENCES workflow_versions(workflow_id, version)
);
CREATE INDEX runs_workflow ON runs(workflow_id, seq);
CREATE INDEX runs_status_seq ON runs(status, seq);
CREATE INDEX runs_status_created ON runs(status, created_ms);
CREATE INDEX runs_status_updated ON runs(status, updated_ms);
CREATE INDEX runs_status_finished ON runs(status, finished_ms);

CREATE TABLE run_steps (
  run_id      TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  node_id     TEXT NOT NULL,
  status      TEXT NOT NULL,
  output      TEXT NOT NULL DEFAULT '',
  error       TEXT NOT NULL DEFAULT '',
  attempt     INTEGER NOT NULL DEFAULT 0,
  epoch       INTEGER NOT NULL,
  started_ms  INTEGER NOT NULL DEFAULT 0,
  finished_ms INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (run_id, node_id)
);

CREATE TABLE run_events (
  run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  seq    INTEGER NOT NULL,
  ts_ms  INTEGER NOT NULL,
  type   TEXT NOT NULL,
  data   TEXT NOT NULL DEFAULT '{}',
  PRIMARY KEY (run_id, seq)
);

CREATE TABLE triggers (
  id           TEXT PRIMARY KEY,
  workflow_id  TEXT NOT NULL REFERENCES workflows(id) ON DELETE CASCADE,
  kind         TEXT NOT NULL CHECK (kind IN ('webhook', 'cron')),
  key          TEXT NOT NULL,
  config       TEXT NOT NULL DEFAULT '{}',
  enabled      INTEGER NOT NULL DEFAULT 1,
  last_fire_ms INTEGER NOT NULL DEFAULT 0,
  next_fire_ms INTEGER NOT NULL DEFAULT 0,
  created_ms   INTEGER NOT NULL,
  updated_ms   INTEGER NOT NULL,
  UNIQUE (workflow_id, key)
);
CREATE INDEX triggers_kind ON triggers(kind, enabled);

-- The primary key is the exactly-once guarantee for cron occurrences.
CREATE TABLE cron_fires (
  trigger_id TEXT NOT NULL REFERENCES triggers(id) ON DELETE CASCADE,
  fire_ms    INTEGER NOT NULL,
  run_id     TEXT REFERENCES runs(id) ON DELETE SET NULL,
  created_ms INTEGER NOT NULL,
  PRIMARY KEY (trigger_id, fire_ms)
);
CREATE INDEX cron_fires_run ON cron_fires(run_id);
CREATE INDEX cron_fires_created ON cron_fires(created_ms);

CREATE TABLE api_tokens (
  id           TEXT PRIMARY KEY,
  name         TEXT NOT NULL,
  token_hash   TEXT NOT NULL UNIQUE,
  created_ms   INTEGER NOT NULL,
  last_used_ms INTEGER NOT NULL DEFAULT 0,
  revoked_ms   INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE webhook_nonces (
  scope      TEXT NOT NULL,
  nonce      TEXT NOT NULL,
  expires_ms INTEGER NOT NULL,
  PRIMARY KEY (scope, nonce)
);
CREATE INDEX webhook_nonces_expires ON webhook_nonces(expires_ms);
