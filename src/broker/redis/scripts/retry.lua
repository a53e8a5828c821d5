-- retry: re-runs a dead-lettered (failed) or cancelled task with fresh attempts.
-- Guarantees: the task leaves the dead set, its record stops expiring and it gets a new stream
-- entry in one step; the epoch is kept (never reset), so completions of any earlier execution
-- stay stale.
--
-- KEYS[1]  queue key prefix "<prefix>:{<queue>}".
-- ARGV     task_id, now_ms, retention_ms, events_maxlen
-- Returns  {"ok"}, {"notfound"} or {"conflict", status}.
local qp = KEYS[1]
local id, now, retention, maxlen = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local tkey = qp .. ':task:' .. id
local ekey = qp .. ':events:' .. id
local status = redis.call('HGET', tkey, 'status')
if not status then return {'notfound'} end
if status ~= 'failed' and status ~= 'cancelled' then return {'conflict', status} end

-- @include lib/open_events.lua
open_events(tkey, ekey)
local entry = redis.call('XADD', qp .. ':stream', '*', 'id', id)
redis.call('HSET', tkey, 'status', 'pending', 'entry', entry, 'attempts', 0, 'reclaims', 0,
           'cancel_requested', 0)
redis.call('HDEL', tkey, 'finished_ms', 'result')
redis.call('PERSIST', tkey)
redis.call('ZREM', qp .. ':dead', id)
redis.call('XADD', ekey, 'MAXLEN', '~', maxlen, '*', 'type', 'pending', 'data',
           cjson.encode({reason = 'retry', previous = status}))
redis.call('PEXPIRE', ekey, retention)
redis.call('HINCRBY', qp .. ':stats', 'requeued', 1)
return {'ok'}
