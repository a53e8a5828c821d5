-- Included by the scripts that fail tasks for good (complete, reclaim).
--
-- Puts a task that failed for good in its queue's dead-letter set; entries older than
-- dead_retention, and the oldest past dead_max, leave it. Not for a task another waits for (a
-- run's task node's): its run owns that failure (the node's next attempt or the run's end
-- answers it), and a retry from the set would run it again outside its run.
local function dead_letter(qp, id, now, dead_retention, dead_max)
  local dead = qp .. ':dead'
  redis.call('ZADD', dead, now, id)
  redis.call('ZREMRANGEBYSCORE', dead, '-inf', '(' .. (tonumber(now) - tonumber(dead_retention)))
  redis.call('ZREMRANGEBYRANK', dead, 0, -dead_max - 1)
end
