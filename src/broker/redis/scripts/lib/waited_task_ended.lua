-- Included by the scripts that end tasks (complete, cancel, reclaim): what the end of a task
-- another waits for (a run's task node's) does, said once.
--
-- Its waiter ("<queue>/<id>") is added to `waiters`, which the script returns: the caller runs
-- wake.lua for each, so the run goes on at once instead of at its next look.
--
-- Such a task is submitted with a unique key that lives as long as its waiter may wait (a
-- month), so that a run going on after a long wait finds it again. Once the task has ended the
-- key lives no longer than the record it names (`ttl`, the record's retention): past that it
-- would name a task that is gone, and a month of such keys per task node is memory for nothing.
-- Call with the record's `waiter` and `unique_key` fields; a task nobody waits for is left alone.
local function waited_task_ended(qp, id, waiter, ukey, ttl, waiters)
  if not waiter then return end
  waiters[#waiters + 1] = waiter
  if not ukey or ukey == '' then return end
  local uname = qp .. ':unique:' .. ukey
  if redis.call('GET', uname) == id then redis.call('PEXPIRE', uname, ttl, 'LT') end
end
