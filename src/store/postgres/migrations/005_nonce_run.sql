-- A webhook nonce names the run its delivery started. The run is inserted only where the nonce's
-- record names it, so a delivery's nonce, run and first event are written by one group of
-- statements sent together (one round trip on PostgreSQL), and a replay, which finds the
-- record naming another run, inserts nothing. Records from before keep an empty run_id.
ALTER TABLE webhook_nonces ADD COLUMN run_id TEXT NOT NULL DEFAULT '';
