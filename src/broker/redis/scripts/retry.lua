-- retry: re-runs a dead-lettered (failed) or cancelled task with fresh attempts.
-- Guarantees: those of lib/retry_task.lua (one step; the epoch is kept).
--
-- KEYS[1]  queue key prefix "<prefix>:{<queue>}".
-- ARGV     task_id, now_ms, retention_ms, events_maxlen
-- Returns  {"ok"}, {"notfound"} or {"conflict", status}.
local qp = KEYS[1]
local id, retention, maxlen = ARGV[1], ARGV[3], ARGV[4]
local status = redis.call('HGET', qp .. ':task:' .. id, 'status')
if not status then return {'notfound'} end
if status ~= 'failed' and status ~= 'cancelled' then return {'conflict', status} end

-- @include lib/open_events.lua
-- @include lib/retry_task.lua
retry_task(qp, id, status, retention, maxlen)
redis.call('HINCRBY', qp .. ':stats', 'requeued', 1)
return {'ok'}
