-- promote: moves due scheduled/retrying tasks of one queue from the delayed set into the stream.
-- Guarantees: removal from the delayed set, the new stream entry and status pending happen in
-- one step, so concurrent promoters (several workers, schedulers) never queue a task twice.
-- Ids whose record is gone or no longer scheduled/retrying are just dropped from the set.
--
-- KEYS[1]  queue key prefix "<prefix>:{<queue>}".
-- ARGV     now_ms, limit, events_maxlen
-- Returns  how many tasks moved.
local qp = KEYS[1]
local now, limit, maxlen = ARGV[1], ARGV[2], ARGV[3]
local delayed = qp .. ':delayed'
local stream = qp .. ':stream'
local ids = redis.call('ZRANGEBYSCORE', delayed, '-inf', now, 'LIMIT', 0, limit)
local moved = 0
for _, id in ipairs(ids) do
  redis.call('ZREM', delayed, id)
  local tkey = qp .. ':task:' .. id
  local t = redis.call('HMGET', tkey, 'status', 'events')
  if t[1] == 'scheduled' or t[1] == 'retrying' then
    local entry = redis.call('XADD', stream, '*', 'id', id)
    redis.call('HSET', tkey, 'status', 'pending', 'entry', entry)
    -- Routine event: written only when the task already has an event stream.
    if t[2] == '1' then
      redis.call('XADD', qp .. ':events:' .. id, 'MAXLEN', '~', maxlen, '*', 'type', 'pending',
                 'data', cjson.encode({reason = t[1] == 'scheduled' and 'due' or 'retry'}))
    end
    moved = moved + 1
  end
end
return moved
