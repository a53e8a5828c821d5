-- register_queue: adds queues' names to the set of queues, unless that would pass the limit on
-- their number. Sent with EVAL (it runs once per new queue and connection, after the queues'
-- streams are made), on the one global key: unlike the scripts of Script, it touches no queue.
-- Mode "all" (a submit, a batch: the call fails whole) adds every name or none, so a refused
-- call never lists a queue that a concurrent reader could then make again; mode "each" (a
-- worker's queues) adds those that fit, in order.
--
-- KEYS[1]  "<prefix>:queues"
-- ARGV     max_queues, mode ("all" | "each"), then the queue names
-- Returns  per name: 1 when it was in the set, 2 when this call added it; -n when n queues exist
--          and the limit refused it.
local queues = KEYS[1]
local max = tonumber(ARGV[1])
local refuse_all = false
if ARGV[2] == 'all' then
  local missing = 0
  for i = 3, #ARGV do
    if redis.call('SISMEMBER', queues, ARGV[i]) == 0 then missing = missing + 1 end
  end
  refuse_all = redis.call('SCARD', queues) + missing > max
end
local out = {}
for i = 3, #ARGV do
  local n = redis.call('SCARD', queues)
  if redis.call('SISMEMBER', queues, ARGV[i]) == 1 then
    out[#out + 1] = 1
  elseif refuse_all or n >= max then
    out[#out + 1] = -n
  else
    redis.call('SADD', queues, ARGV[i])
    out[#out + 1] = 2
  end
end
return out
