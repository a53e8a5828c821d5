-- reclaim: takes over entries of one queue whose owner stopped renewing its lease.
-- Guarantees: XAUTOCLAIM moves each entry idle for min_idle_ms to the new worker and the task's
-- epoch is bumped in the same script, so the previous owner's completion is rejected as stale.
-- A task taken over more than max_reclaims times is dead-lettered as a poison pill (and not
-- returned); a running task whose cancellation was requested ends as cancelled instead. Either
-- end wakes the task's waiter, as complete.lua's would (the caller runs wake.lua).
--
-- KEYS[1]  queue key prefix "<prefix>:{<queue>}".
-- ARGV     worker, now_ms, min_idle_ms, count, max_reclaims, retention_ms, dead_retention_ms,
--          events_maxlen, dead_max
-- Returns  {started, waiters}: a flat array of 10 values per started task as in claim.lua, and
--          the waiters ("<queue>/<id>") of the tasks that ended here, to wake.
local qp = KEYS[1]
local worker, now, min_idle = ARGV[1], ARGV[2], ARGV[3]
local count, max_reclaims = tonumber(ARGV[4]), tonumber(ARGV[5])
local retention, dead_retention, maxlen, dead_max = ARGV[6], ARGV[7], ARGV[8], tonumber(ARGV[9])
local stream = qp .. ':stream'
local stats = qp .. ':stats'
local out = {}
local n = 0
local drop = {}
local waiters = {}
local counts = {reclaimed = 0, poison = 0, dead_lettered = 0, cancelled = 0, started = 0}

-- @include lib/open_events.lua
-- @include lib/waited_task_ended.lua
-- @include lib/dead_letter.lua
local function event(ekey, type, data)
  redis.call('XADD', ekey, 'MAXLEN', '~', maxlen, '*', 'type', type, 'data', cjson.encode(data))
end

local function take(entry, id)
  local tkey = qp .. ':task:' .. id
  local ekey = qp .. ':events:' .. id
  local t = redis.call('HMGET', tkey, 'status', 'entry', 'kind', 'payload', 'max_attempts',
                       'timeout_ms', 'created_ms', 'attempts', 'cancel_requested', 'worker',
                       'epoch', 'events', 'waiter', 'unique_key')
  local status = t[1]
  if (status ~= 'running' and status ~= 'pending') or t[2] ~= entry then
    drop[#drop + 1] = entry
    return
  end
  local previous = t[10] or ''
  local attempt = tonumber(t[8] or '0')
  local epoch = tonumber(t[11] or '0') + 1
  if status == 'pending' then
    -- Delivered by a blocking read whose worker died before starting it: a first start.
    attempt = attempt + 1
    redis.call('HSET', tkey, 'status', 'running', 'worker', worker, 'started_ms', now,
               'attempts', attempt, 'epoch', epoch)
    if t[12] == '1' then
      event(ekey, 'running', {worker = worker, attempt = attempt, epoch = epoch})
    end
    counts.started = counts.started + 1
  else
    if t[9] == '1' then
      drop[#drop + 1] = entry
      local err = 'cancelled (its worker ' .. previous .. ' stopped renewing its lease)'
      open_events(tkey, ekey)
      redis.call('HSET', tkey, 'status', 'cancelled', 'finished_ms', now, 'error', err)
      redis.call('PEXPIRE', tkey, retention)
      event(ekey, 'cancelled', {worker = previous, error = err})
      redis.call('PEXPIRE', ekey, retention)
      counts.cancelled = counts.cancelled + 1
      waited_task_ended(qp, id, t[13], t[14], retention, waiters)
      return
    end
    local reclaims = redis.call('HINCRBY', tkey, 'reclaims', 1)
    counts.reclaimed = counts.reclaimed + 1
    open_events(tkey, ekey)
    if reclaims > max_reclaims then
      drop[#drop + 1] = entry
      local err = 'poison pill: reclaimed ' .. reclaims .. ' times'
      redis.call('HSET', tkey, 'status', 'failed', 'finished_ms', now, 'error', err)
      redis.call('PEXPIRE', tkey, dead_retention)
      if not t[13] then
        dead_letter(qp, id, now, dead_retention, dead_max)
        counts.dead_lettered = counts.dead_lettered + 1
      end
      event(ekey, 'failed', {error = err, poison = true, worker = previous})
      redis.call('PEXPIRE', ekey, dead_retention)
      counts.poison = counts.poison + 1
      waited_task_ended(qp, id, t[13], t[14], dead_retention, waiters)
      return
    end
    redis.call('HSET', tkey, 'status', 'running', 'worker', worker, 'started_ms', now,
               'epoch', epoch)
    event(ekey, 'running', {worker = worker, attempt = attempt, epoch = epoch,
                            reclaimed_from = previous})
  end
  out[#out + 1] = id
  out[#out + 1] = entry
  out[#out + 1] = t[3] or ''
  out[#out + 1] = t[4] or '{}'
  out[#out + 1] = epoch
  out[#out + 1] = attempt
  out[#out + 1] = t[5] or '1'
  out[#out + 1] = t[6] or '0'
  out[#out + 1] = t[7] or '0'
  out[#out + 1] = now
  n = n + 1
end

-- XAUTOCLAIM scans at most 10 * COUNT PEL entries per call; a few rounds cover a long PEL
-- without letting one call run unbounded.
local cursor = '0-0'
for _ = 1, 8 do
  local want = count - n
  if want <= 0 then break end
  local r = redis.call('XAUTOCLAIM', stream, 'ferry', worker, min_idle, cursor, 'COUNT', want)
  cursor = r[1]
  for _, e in ipairs(r[2]) do
    if type(e) == 'table' and type(e[2]) == 'table' then take(e[1], e[2][2]) end
  end
  if cursor == '0-0' then break end
end

if #drop > 0 then
  redis.call('XACK', stream, 'ferry', unpack(drop))
  redis.call('XDEL', stream, unpack(drop))
end
for k, v in pairs(counts) do
  if v > 0 then redis.call('HINCRBY', stats, k, v) end
end
return {out, waiters}
