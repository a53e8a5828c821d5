-- wake: a task that another waited for ended; wakes the waiting one (a workflow run's task
-- whose task node waits for it). Guarantees: a snoozed (scheduled) waiter is queued at once, in
-- one step with leaving the delayed set, as promote.lua would at its time; a running one is
-- marked, so that the snooze it may be about to make queues it again at once instead
-- (complete.lua): a task that ends between the waiter's look and its snooze is not missed.
-- Anything else (pending, ended, gone, retrying) needs nothing.
--
-- KEYS[1]  the waiter's queue key prefix "<prefix>:{<queue>}".
-- ARGV     waiter task_id, events_maxlen
-- Returns  1 queued, 2 marked, 0 nothing to do.
local qp = KEYS[1]
local id, maxlen = ARGV[1], ARGV[2]
local tkey = qp .. ':task:' .. id
local t = redis.call('HMGET', tkey, 'status', 'events')
if t[1] == 'scheduled' then
  redis.call('ZREM', qp .. ':delayed', id)
  local entry = redis.call('XADD', qp .. ':stream', '*', 'id', id)
  redis.call('HSET', tkey, 'status', 'pending', 'entry', entry)
  if t[2] == '1' then
    redis.call('XADD', qp .. ':events:' .. id, 'MAXLEN', '~', maxlen, '*', 'type', 'pending',
               'data', cjson.encode({reason = 'woken'}))
  end
  return 1
elseif t[1] == 'running' then
  redis.call('HSET', tkey, 'woken', '1')
  return 2
end
return 0
