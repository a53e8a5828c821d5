-- retry: re-runs a dead-lettered (failed) or cancelled task with fresh attempts.
-- Guarantees: the task leaves the dead set, its record stops expiring and it gets a new stream
-- entry in one step; the epoch is kept (never reset), so completions of any earlier execution
-- stay stale.
--
-- KEYS[1]  queue key prefix "<prefix>:{<queue>}".
-- ARGV     task_id, now_ms, retention_ms, events_maxlen
-- Returns  {"ok"}, {"notfound"} or {"conflict", status}.
local qp = KEYS[1]
local id, now, retention, maxlen = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local tkey = qp .. ':task:' .. id
local ekey = qp .. ':events:' .. id
local status = redis.call('HGET', tkey, 'status')
if not status then return {'notfound'} end
if status ~= 'failed' and status ~= 'cancelled' then return {'conflict', status} end

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
local entry = redis.call('XADD', qp .. ':stream', '*', 'id', id)
redis.call('HSET', tkey, 'status', 'pending', 'entry', entry, 'attempts', 0, 'reclaims', 0,
           'cancel_requested', 0)
redis.call('HDEL', tkey, 'finished_ms', 'result')
redis.call('PERSIST', tkey)
redis.call('ZREM', qp .. ':dead', id)
redis.call('XADD', ekey, 'MAXLEN', '~', maxlen, '*', 'type', 'pending', 'data',
           cjson.encode({reason = 'retry', previous = status}))
redis.call('PEXPIRE', ekey, retention)
redis.call('HINCRBY', qp .. ':stats', 'requeued', 1)
return {'ok'}
