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

-- @include lib/open_events.lua
open_events(tkey, ekey)
local n = 0
for i = 4, #ARGV, 2 do
  redis.call('XADD', ekey, 'MAXLEN', '~', maxlen, '*', 'type', ARGV[i], 'data', ARGV[i + 1])
  n = n + 1
end
if redis.call('PTTL', ekey) == -1 then redis.call('PEXPIRE', ekey, retention) end
return n
