-- register_queue: adds a queue's name to the set of queues, unless that would pass the limit
-- on their number. Sent with EVAL (it runs once per queue and connection, after the queue's
-- stream is made), on the one global key: unlike the scripts of Script, it touches no queue.
--
-- KEYS[1]  "<prefix>:queues"
-- ARGV     queue, max_queues
-- Returns  1 when the queue was in the set, 2 when this call added it; -n when n queues exist
--          and the limit refused it.
local queues = KEYS[1]
if redis.call('SISMEMBER', queues, ARGV[1]) == 1 then return 1 end
local n = redis.call('SCARD', queues)
if n >= tonumber(ARGV[2]) then return -n end
redis.call('SADD', queues, ARGV[1])
return 2
