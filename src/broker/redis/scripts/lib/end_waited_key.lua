-- Included by the scripts that end tasks (complete, cancel, reclaim).
--
-- A task another waits for (a run's task node's) is submitted with a unique key that lives as
-- long as its waiter may wait (a month), so that a run going on after a long wait finds it
-- again. Once the task has ended the key lives no longer than the record it names: past that it
-- would name a task that is gone, and a month of such keys per task node is memory for nothing.
-- Call with the record's `waiter` and `unique_key` fields and the record's retention.
local function end_waited_key(qp, id, waiter, ukey, ttl)
  if not waiter or not ukey or ukey == '' then return end
  local uname = qp .. ':unique:' .. ukey
  if redis.call('GET', uname) == id then redis.call('PEXPIRE', uname, ttl, 'LT') end
end
