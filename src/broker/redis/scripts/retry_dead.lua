-- retry_dead: re-runs a queue's dead-lettered tasks, oldest first, at most `count` per call (the
-- caller repeats until fewer come back, so one call never blocks Redis for long).
-- Guarantees: each task as lib/retry_task.lua retries one. Only tasks whose record says failed
-- are retried; an id whose record is gone (expired or purged) or says otherwise just leaves the
-- set. Tasks dead-lettered after `up_to_ms` stay, so the tasks of one call's later failures
-- (a retried task that fails again at once) are not retried again by the same request.
--
-- KEYS[1]  queue key prefix "<prefix>:{<queue>}".
-- ARGV     count, up_to_ms, retention_ms, events_maxlen
-- Returns  {retried, examined}.
local qp = KEYS[1]
local count, up_to, retention, maxlen = tonumber(ARGV[1]), ARGV[2], ARGV[3], ARGV[4]
local dead = qp .. ':dead'

-- @include lib/open_events.lua
-- @include lib/retry_task.lua
local ids = redis.call('ZRANGEBYSCORE', dead, '-inf', up_to, 'LIMIT', 0, count)
local retried = 0
for _, id in ipairs(ids) do
  if redis.call('HGET', qp .. ':task:' .. id, 'status') == 'failed' then
    retry_task(qp, id, 'failed', retention, maxlen)
    retried = retried + 1
  else
    redis.call('ZREM', dead, id)
  end
end
if retried > 0 then redis.call('HINCRBY', qp .. ':stats', 'requeued', retried) end
return {retried, #ids}
