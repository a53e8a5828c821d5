-- Included by retry.lua and retry_dead.lua, after lib/open_events.lua (cmake/FerryEmbed.cmake
-- expands "-- @include"; EVAL scripts cannot import each other).
--
-- Re-runs an ended (failed or cancelled) task: it leaves the dead set, its record stops expiring
-- and it gets a new stream entry in one step; the epoch is kept (never reset), so completions
-- of any earlier execution stay stale. `status` is the record's status, already checked.
local function retry_task(qp, id, status, retention, maxlen)
  local tkey = qp .. ':task:' .. id
  local ekey = qp .. ':events:' .. id
  open_events(tkey, ekey)
  local entry = redis.call('XADD', qp .. ':stream', '*', 'id', id)
  redis.call('HSET', tkey, 'status', 'pending', 'entry', entry, 'attempts', 0, 'reclaims', 0,
             'cancel_requested', 0)
  -- It is ready now: a time it once waited for (cancelled while scheduled) is no longer when.
  redis.call('HDEL', tkey, 'finished_ms', 'result', 'eta_ms')
  redis.call('PERSIST', tkey)
  redis.call('ZREM', qp .. ':dead', id)
  redis.call('XADD', ekey, 'MAXLEN', '~', maxlen, '*', 'type', 'pending', 'data',
             cjson.encode({reason = 'retry', previous = status}))
  redis.call('PEXPIRE', ekey, retention)
end
