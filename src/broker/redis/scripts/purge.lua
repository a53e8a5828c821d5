-- purge: deletes dead-lettered tasks of a queue for good, oldest first, at most `count` per call
-- (the caller repeats until fewer come back, so one call never blocks Redis for long).
-- Guarantees: only tasks whose record says failed are deleted (record, event stream and the
-- unique key while it still names the task); an id whose record is already gone (expired) just
-- leaves the set; a task retried meanwhile is no longer in the set, so it is never touched.
-- Tasks dead-lettered after `up_to_ms` stay, so a purge deletes what its caller saw.
--
-- KEYS[1]  queue key prefix "<prefix>:{<queue>}".
-- ARGV     count, up_to_ms
-- Returns  {purged, examined}.
local qp = KEYS[1]
local count, up_to = tonumber(ARGV[1]), ARGV[2]
local dead = qp .. ':dead'
local ids = redis.call('ZRANGEBYSCORE', dead, '-inf', up_to, 'LIMIT', 0, count)
local purged = 0
for _, id in ipairs(ids) do
  local tkey = qp .. ':task:' .. id
  local fields = redis.call('HMGET', tkey, 'status', 'unique_key')
  if fields[1] == 'failed' then
    local ukey = fields[2]
    if ukey and ukey ~= '' then
      local uname = qp .. ':unique:' .. ukey
      if redis.call('GET', uname) == id then redis.call('DEL', uname) end
    end
    redis.call('DEL', tkey, qp .. ':events:' .. id)
    purged = purged + 1
  end
  redis.call('ZREM', dead, id)
end
if purged > 0 then redis.call('HINCRBY', qp .. ':stats', 'purged', purged) end
return {purged, #ids}
