-- cancel: cancels one task in whatever state it is.
-- Guarantees: a pending task leaves the stream (XACK+XDEL of its entry, so a worker that already
-- read it skips it) and a scheduled or retrying one leaves the delayed set in the same step as
-- its status becomes cancelled. A running task only gets cancel_requested=1: its worker stops the
-- handler and completes it as cancelled, so the result of a finishing handler is never lost.
--
-- KEYS[1]  queue key prefix "<prefix>:{<queue>}".
-- ARGV     task_id, now_ms, retention_ms, events_maxlen
-- Returns  {"ok", status} (status "running" means cancel requested), {"notfound"} or
--          {"conflict", status}.
local qp = KEYS[1]
local id, now, retention, maxlen = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local stream = qp .. ':stream'
local tkey = qp .. ':task:' .. id
local ekey = qp .. ':events:' .. id
local t = redis.call('HMGET', tkey, 'status', 'entry')
local status = t[1]
if not status then return {'notfound'} end

-- @include lib/open_events.lua
if status == 'running' then
  open_events(tkey, ekey)
  redis.call('HSET', tkey, 'cancel_requested', '1')
  redis.call('XADD', ekey, 'MAXLEN', '~', maxlen, '*', 'type', 'cancel_requested', 'data', '{}')
  return {'ok', 'running'}
end
if status == 'pending' then
  if t[2] then
    redis.call('XACK', stream, 'ferry', t[2])
    redis.call('XDEL', stream, t[2])
  end
elseif status == 'scheduled' or status == 'retrying' then
  redis.call('ZREM', qp .. ':delayed', id)
else
  return {'conflict', status}
end
open_events(tkey, ekey)
redis.call('HSET', tkey, 'status', 'cancelled', 'finished_ms', now, 'error', 'cancelled')
redis.call('PEXPIRE', tkey, retention)
redis.call('XADD', ekey, 'MAXLEN', '~', maxlen, '*', 'type', 'cancelled', 'data',
           cjson.encode({previous = status}))
redis.call('PEXPIRE', ekey, retention)
redis.call('HINCRBY', qp .. ':stats', 'cancelled', 1)
return {'ok', 'cancelled'}
