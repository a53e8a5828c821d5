-- claim: delivers new entries of one queue to a worker and starts their tasks.
-- Guarantees: a task is started (status running, attempts+1, epoch+1, worker set) only when
-- its record says pending under this very stream entry; anything else (cancelled, vanished,
-- a superseded entry) is acknowledged and deleted, so it is never delivered again.
--
-- KEYS[1]  queue key prefix "<prefix>:{<queue>}".
-- ARGV     worker, now_ms, count, events_maxlen, mode, then for mode "given": pairs of
--          entry_id, task_id already delivered to this worker by a blocking XREADGROUP.
--          Mode "read" reads up to count new entries here (XREADGROUP without BLOCK).
-- Returns  a flat array, 10 values per started task: id, entry, kind, payload, epoch,
--          attempt, max_attempts, timeout_ms, created_ms, started_ms.
local qp = KEYS[1]
local worker, now, count, maxlen, mode = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4], ARGV[5]
local stream = qp .. ':stream'
local out = {}
local started = 0
local drop = {}

local function start(entry, id)
  local tkey = qp .. ':task:' .. id
  local t = redis.call('HMGET', tkey, 'status', 'entry', 'kind', 'payload', 'max_attempts',
                       'timeout_ms', 'created_ms', 'attempts', 'epoch', 'events', 'woken')
  if t[1] ~= 'pending' or t[2] ~= entry then
    drop[#drop + 1] = entry
    return
  end
  local attempt = tonumber(t[8] or '0') + 1
  local epoch = tonumber(t[9] or '0') + 1
  redis.call('HSET', tkey, 'status', 'running', 'worker', worker, 'started_ms', now,
             'attempts', attempt, 'epoch', epoch)
  -- A wake for an earlier execution (wake.lua): this one looks at what it waits for anyway.
  if t[11] == '1' then redis.call('HDEL', tkey, 'woken') end
  -- Routine event: only tasks that already have an event stream get it written (the record
  -- tells the rest; see docs/broker.md "Events").
  if t[10] == '1' then
    redis.call('XADD', qp .. ':events:' .. id, 'MAXLEN', '~', maxlen, '*', 'type', 'running',
               'data', cjson.encode({worker = worker, attempt = attempt, epoch = epoch}))
  end
  local n = #out
  out[n + 1] = id
  out[n + 2] = entry
  out[n + 3] = t[3] or ''
  out[n + 4] = t[4] or '{}'
  out[n + 5] = epoch
  out[n + 6] = attempt
  out[n + 7] = t[5] or '1'
  out[n + 8] = t[6] or '0'
  out[n + 9] = t[7] or '0'
  out[n + 10] = now
  started = started + 1
end

if mode == 'read' then
  -- Skipped entries do not count, so read again (bounded) until count tasks started or the
  -- stream has nothing new.
  for _ = 1, 4 do
    local want = count - started
    if want <= 0 then break end
    local r = redis.call('XREADGROUP', 'GROUP', 'ferry', worker, 'COUNT', want, 'STREAMS',
                         stream, '>')
    if not r then break end
    local entries = r[1][2]
    for _, e in ipairs(entries) do start(e[1], e[2][2]) end
    if #entries < want then break end
  end
else
  for i = 6, #ARGV, 2 do start(ARGV[i], ARGV[i + 1]) end
end

if #drop > 0 then
  redis.call('XACK', stream, 'ferry', unpack(drop))
  redis.call('XDEL', stream, unpack(drop))
end
if started > 0 then redis.call('HINCRBY', qp .. ':stats', 'started', started) end
return out
