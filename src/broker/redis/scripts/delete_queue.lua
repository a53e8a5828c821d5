-- delete_queue: forgets a queue's keys when it holds no task waiting, running, scheduled,
-- retrying or dead-lettered.
-- Guarantees: checked and deleted in one step, so a task submitted at the same moment either
-- came first (the queue is not empty and nothing is deleted) or comes after (its XADD makes the
-- stream again, and the next worker's read makes its consumer group again from id 0).
-- Finished tasks' records and event streams are left to expire with their retention.
--
-- KEYS[1]  queue key prefix "<prefix>:{<queue>}".
-- Returns  {"deleted"}, or {"busy", in the stream (waiting or running), delayed, dead}.
local qp = KEYS[1]
local stream, delayed, dead = qp .. ':stream', qp .. ':delayed', qp .. ':dead'
-- Acknowledged entries are deleted with their XACK, so the stream holds exactly the tasks
-- waiting and running.
local in_stream = redis.call('XLEN', stream)
local in_delayed = redis.call('ZCARD', delayed)
local in_dead = redis.call('ZCARD', dead)
if in_stream + in_delayed + in_dead > 0 then
  return {'busy', in_stream, in_delayed, in_dead}
end
redis.call('DEL', stream, delayed, dead, qp .. ':stats', qp .. ':index')
return {'deleted'}
