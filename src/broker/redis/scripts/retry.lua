-- retry: re-runs a dead-lettered (failed) or cancelled task with fresh attempts.
-- Guarantees: those of lib/retry_task.lua (one step; the epoch is kept). A task another waits
-- for (a workflow run's task node's) is not retried: its run owns its end, and a retry would run
-- it again outside its run.
--
-- KEYS[1]  queue key prefix "<prefix>:{<queue>}".
-- ARGV     task_id, now_ms, retention_ms, events_maxlen
-- Returns  {"ok"}, {"notfound"}, {"conflict", status} or {"owned", waiter}.
local qp = KEYS[1]
local id, retention, maxlen = ARGV[1], ARGV[3], ARGV[4]
local t = redis.call('HMGET', qp .. ':task:' .. id, 'status', 'waiter')
local status = t[1]
if not status then return {'notfound'} end
if status ~= 'failed' and status ~= 'cancelled' then return {'conflict', status} end
if t[2] then return {'owned', t[2]} end

-- @include lib/open_events.lua
-- @include lib/retry_task.lua
retry_task(qp, id, status, retention, maxlen)
redis.call('HINCRBY', qp .. ':stats', 'requeued', 1)
return {'ok'}
