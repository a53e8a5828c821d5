-- cancel: cancels one task in whatever state it is.
-- Guarantees: a pending task leaves the stream (XACK+XDEL of its entry, so a worker that already
-- read it skips it) and a scheduled or retrying one leaves the delayed set in the same step as
-- its status becomes cancelled. A running task only gets cancel_requested=1: its worker stops the
-- handler and completes it as cancelled, so the result of a finishing handler is never lost.
--
-- KEYS[1]  queue key prefix "<prefix>:{<queue>}".
-- ARGV     task_id, now_ms, retention_ms, events_maxlen
-- Returns  {"ok", status} (status "running" means cancel requested), {"notfound"} or
--          {"conflict", status}.
local qp = KEYS[1]
local id, now, retention, maxlen = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local stream = qp .. ':stream'
local tkey = qp .. ':task:' .. id
local ekey = qp .. ':events:' .. id
local t = redis.call('HMGET', tkey, 'status', 'entry')
local status = t[1]
if not status then return {'notfound'} end

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
if status == 'running' then
  open_events(tkey, ekey)
  redis.call('HSET', tkey, 'cancel_requested', '1')
  redis.call('XADD', ekey, 'MAXLEN', '~', maxlen, '*', 'type', 'cancel_requested', 'data', '{}')
  return {'ok', 'running'}
end
if status == 'pending' then
  if t[2] then
    redis.call('XACK', stream, 'ferry', t[2])
    redis.call('XDEL', stream, t[2])
  end
elseif status == 'scheduled' or status == 'retrying' then
  redis.call('ZREM', qp .. ':delayed', id)
else
  return {'conflict', status}
end
open_events(tkey, ekey)
redis.call('HSET', tkey, 'status', 'cancelled', 'finished_ms', now, 'error', 'cancelled')
redis.call('PEXPIRE', tkey, retention)
redis.call('XADD', ekey, 'MAXLEN', '~', maxlen, '*', 'type', 'cancelled', 'data',
           cjson.encode({previous = status}))
redis.call('PEXPIRE', ekey, retention)
redis.call('HINCRBY', qp .. ':stats', 'cancelled', 1)
return {'ok', 'cancelled'}
