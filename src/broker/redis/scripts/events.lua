-- events: appends handler events (progress, logs) to a task's event stream.
-- Guarantees: nothing is written for a task whose record is gone, so a late or bogus append
-- cannot create an event stream that never expires; the stream stays bounded by MAXLEN ~ and
-- always carries a TTL.
--
-- KEYS[1]  queue key prefix "<prefix>:{<queue>}".
-- ARGV     task_id, events_maxlen, retention_ms, then pairs: type, data (JSON text)
-- Returns  the number appended, or -1 when the task is unknown.
local qp = KEYS[1]
local id, maxlen, retention = ARGV[1], ARGV[2], ARGV[3]
local tkey = qp .. ':task:' .. id
if redis.call('EXISTS', tkey) == 0 then return -1 end
local ekey = qp .. ':events:' .. id

-- Opens a task's event stream at its first event the record cannot tell, beginning it with the
-- routine events so far under the ids ReadEvents derives for them (<created_ms>-1 submitted,
-- <started_ms>-2 running), so a follower's resume point stays valid. Call before the record
-- changes. (Shared by the scripts that write non-routine events; Lua scripts cannot import.)
local function open_events(tkey, ekey)
  local f = redis.call('HMGET', tkey, 'events', 'created_ms', 'started_ms', 'worker', 'attempts',
                       'epoch')
  if f[1] == '1' then return end
  redis.call('HSET', tkey, 'events', '1')
  local created = tonumber(f[2] or '0')
  local started = tonumber(f[3] or '0')
  if created > 0 then
    redis.pcall('XADD', ekey, created .. '-1', 'type', 'submitted', 'data', '{}')
    if started > 0 then
      redis.pcall('XADD', ekey, math.max(started, created) .. '-2', 'type', 'running', 'data',
                  cjson.encode({worker = f[4] or '', attempt = tonumber(f[5] or '0'),
                                epoch = tonumber(f[6] or '0')}))
    end
  end
end
open_events(tkey, ekey)
local n = 0
for i = 4, #ARGV, 2 do
  redis.call('XADD', ekey, 'MAXLEN', '~', maxlen, '*', 'type', ARGV[i], 'data', ARGV[i + 1])
  n = n + 1
end
if redis.call('PTTL', ekey) == -1 then redis.call('PEXPIRE', ekey, retention) end
return n
