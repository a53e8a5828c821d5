-- Included by the scripts that write non-routine events (cmake/FerryEmbed.cmake expands
-- "-- @include lib/open_events.lua"; EVAL scripts cannot import each other).
--
-- Opens a task's event stream at its first event the record cannot tell, beginning it with the
-- routine events so far under the ids ReadEvents derives for them (<created_ms>-1 submitted,
-- <started_ms>-2 running), so a follower's resume point stays valid. Call before the record
-- changes.
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
