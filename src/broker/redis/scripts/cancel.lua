-- cancel: cancels one task in whatever state it is.
-- Guarantees: a pending task leaves the stream (XACK+XDEL of its entry, so a worker that already
-- read it skips it) and a scheduled or retrying one leaves the delayed set in the same step as
-- its status becomes cancelled. A running task only gets cancel_requested=1: its worker stops the
-- handler and completes it as cancelled, so the result of a finishing handler is never lost.
-- Unless its worker is gone: the caller names a worker whose heartbeat has lapsed, and when the
-- task is still that worker's and its entry has not been renewed for gone_idle_ms, nobody is
-- left to stop it (a reclaim would, but only by a live worker of this queue), so it ends here.
-- Its entry leaves the PEL, so the dead worker's late completion or renewal is refused.
--
-- KEYS[1]  queue key prefix "<prefix>:{<queue>}".
-- ARGV     task_id, now_ms, retention_ms, events_maxlen, gone_worker ('' = none),
--          gone_idle_ms
-- Returns  {"ok", status} (status "running" means cancel requested, then the third value is
--          the task's worker; "cancelled" is followed by '' and the task's waiter, "<queue>/<id>"
--          or '', to wake), {"notfound"} or {"conflict", status}.
local qp = KEYS[1]
local id, now, retention, maxlen = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local gone, gone_idle = ARGV[5] or '', ARGV[6] or '0'
local stream = qp .. ':stream'
local tkey = qp .. ':task:' .. id
local ekey = qp .. ':events:' .. id
local t = redis.call('HMGET', tkey, 'status', 'entry', 'worker', 'waiter', 'unique_key')
local status = t[1]
if not status then return {'notfound'} end

-- True when the running task's entry is still the gone worker's and idle long enough.
local function owner_gone()
  if gone == '' or t[3] ~= gone or not t[2] or not string.match(t[2], '^%d+%-%d+$') then
    return false
  end
  local p = redis.call('XPENDING', stream, 'ferry', 'IDLE', gone_idle, t[2], t[2], 1)
  return p[1] ~= nil and p[1][2] == gone
end

-- @include lib/open_events.lua
-- @include lib/waited_task_ended.lua
local error_text = 'cancelled'
if status == 'running' then
  if not owner_gone() then
    open_events(tkey, ekey)
    redis.call('HSET', tkey, 'cancel_requested', '1')
    redis.call('XADD', ekey, 'MAXLEN', '~', maxlen, '*', 'type', 'cancel_requested', 'data', '{}')
    return {'ok', 'running', t[3] or ''}
  end
  redis.call('XACK', stream, 'ferry', t[2])
  redis.call('XDEL', stream, t[2])
  error_text = 'cancelled (its worker ' .. gone .. ' stopped heartbeating)'
elseif status == 'pending' then
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
redis.call('HSET', tkey, 'status', 'cancelled', 'finished_ms', now, 'error', error_text)
redis.call('PEXPIRE', tkey, retention)
local waiters = {}
waited_task_ended(qp, id, t[4], t[5], retention, waiters)
local data = {previous = status}
if error_text ~= 'cancelled' then data.error = error_text end
redis.call('XADD', ekey, 'MAXLEN', '~', maxlen, '*', 'type', 'cancelled', 'data',
           cjson.encode(data))
redis.call('PEXPIRE', ekey, retention)
redis.call('HINCRBY', qp .. ':stats', 'cancelled', 1)
return {'ok', 'cancelled', '', waiters[1] or ''}
