-- complete: applies the ends of executions of one queue's tasks.
-- Guarantees (fencing): a completion changes a task only when the task is running under the
-- epoch the completion presents. An older epoch means another worker owns the task now: the
-- completion is rejected as stale and counted. The same epoch on a task that already left
-- running with exactly the status this completion would produce is a retried call: duplicate,
-- nothing changes. A cancel request turns a failure, a hand-back or a snooze into cancelled.
-- A snooze (a handler that waits for a time, such as a workflow run in a long delay) puts the
-- task in the delayed set until now + backoff_ms, as scheduled: its slot is free meanwhile, and
-- like a hand-back it does not count as an attempt. A task that waits for others (a run's task
-- node) is queued again at once instead when one of them ended while it ran (wake.lua).
--
-- KEYS[1]  queue key prefix "<prefix>:{<queue>}".
-- ARGV     now_ms, retention_ms, dead_retention_ms, events_maxlen, dead_max, then 8 values per
--          completion: kind (s=succeeded f=failed c=cancelled h=hand back z=snooze), task_id,
--          entry_id,
--          epoch, worker, text (result or error), retryable (0|1), backoff_ms
-- Returns  {outcomes, waiters}: one outcome per completion (0 applied, 1 duplicate, 2 stale,
--          3 missing), and the waiters ("<queue>/<id>") of the tasks that ended, to wake.
local qp = KEYS[1]
local now_s, retention, dead_retention, maxlen = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local now = tonumber(now_s)
local dead_max = tonumber(ARGV[5])
local stream = qp .. ':stream'
local out = {}
local waiters = {}
local acks = {}
local counts = {succeeded = 0, failed = 0, retried = 0, cancelled = 0, dead_lettered = 0,
                stale = 0, handed_back = 0, snoozed = 0}

-- @include lib/open_events.lua
-- @include lib/waited_task_ended.lua
-- @include lib/dead_letter.lua
-- The ends that wake a task's waiter (a retry is none).
local function ends(target)
  return target == 'succeeded' or target == 'cancelled' or target == 'failed'
end
-- Whether a task no longer running, under the epoch a completion presents, stands where that
-- completion put it: with that status, or queued since (a snooze or a retry is queued at its time
-- by promote.lua, or at once by a wake). Then the completion is a repeat, not a stale one.
local function landed(target, status)
  return status == target or
         (status == 'pending' and (target == 'scheduled' or target == 'retrying'))
end
local function event(ekey, type, data)
  redis.call('XADD', ekey, 'MAXLEN', '~', maxlen, '*', 'type', type, 'data', cjson.encode(data))
end

for i = 6, #ARGV, 8 do
  local kind, id, entry, epoch = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local worker, text, retryable, backoff = ARGV[i + 4], ARGV[i + 5], ARGV[i + 6], ARGV[i + 7]
  local tkey = qp .. ':task:' .. id
  local t = redis.call('HMGET', tkey, 'status', 'epoch', 'attempts', 'max_attempts',
                       'cancel_requested', 'entry', 'events', 'waiter', 'woken', 'unique_key')
  if not t[1] then
    -- Retention removed the record; the entry must not stay in the PEL forever. (A malformed
    -- id would make XACK raise and abort the batch halfway, so only well-formed ones.)
    if string.match(entry, '^%d+%-%d+$') then acks[#acks + 1] = entry end
    out[#out + 1] = 3
  elseif t[2] ~= epoch then
    counts.stale = counts.stale + 1
    out[#out + 1] = 2
  else
    local cancel = t[5] == '1'
    local attempts = tonumber(t[3] or '0')
    local target
    if kind == 's' then
      target = 'succeeded'
    elseif kind == 'c' or cancel then
      target = 'cancelled'
    elseif kind == 'h' then
      target = 'pending'
    elseif kind == 'z' then
      target = 'scheduled'
    elseif retryable == '1' and attempts < tonumber(t[4] or '1') then
      target = 'retrying'
    else
      target = 'failed'
    end
    if t[1] ~= 'running' then
      if landed(target, t[1]) then
        -- A repeat of a call whose answer was lost: its waiter may not have been woken.
        if t[8] and ends(target) then
          waiters[#waiters + 1] = t[8]
        end
        out[#out + 1] = 1
      else
        counts.stale = counts.stale + 1
        out[#out + 1] = 2
      end
    else
      acks[#acks + 1] = t[6] or entry
      local ekey = qp .. ':events:' .. id
      if target == 'succeeded' then
        redis.call('HSET', tkey, 'status', 'succeeded', 'result', text, 'finished_ms', now_s)
        redis.call('PEXPIRE', tkey, retention)
        if t[7] == '1' then
          event(ekey, 'succeeded', {worker = worker, attempt = attempts})
          redis.call('PEXPIRE', ekey, retention)
        end
        counts.succeeded = counts.succeeded + 1
      elseif target == 'cancelled' then
        if text == '' then text = 'cancelled' end
        open_events(tkey, ekey)
        redis.call('HSET', tkey, 'status', 'cancelled', 'error', text, 'finished_ms', now_s)
        redis.call('PEXPIRE', tkey, retention)
        event(ekey, 'cancelled', {worker = worker, error = text})
        redis.call('PEXPIRE', ekey, retention)
        counts.cancelled = counts.cancelled + 1
      elseif target == 'pending' then
        open_events(tkey, ekey)
        local fresh = redis.call('XADD', stream, '*', 'id', id)
        redis.call('HSET', tkey, 'status', 'pending', 'entry', fresh, 'attempts', attempts - 1)
        event(ekey, 'pending', {worker = worker, reason = 'handed back'})
        counts.handed_back = counts.handed_back + 1
      elseif target == 'scheduled' and t[9] == '1' then
        -- A task it waits for ended while it ran: what it would wait for may be there already.
        open_events(tkey, ekey)
        redis.call('HDEL', tkey, 'woken')
        local fresh = redis.call('XADD', stream, '*', 'id', id)
        redis.call('HSET', tkey, 'status', 'pending', 'entry', fresh, 'attempts', attempts - 1)
        event(ekey, 'pending', {worker = worker, reason = 'woken'})
        counts.snoozed = counts.snoozed + 1
      elseif target == 'scheduled' then
        local eta = now + tonumber(backoff)
        -- Told in the task's events (the record alone would read as still running): a snooze
        -- is rare beside the task's routine transitions.
        open_events(tkey, ekey)
        redis.call('HSET', tkey, 'status', 'scheduled', 'eta_ms', eta, 'attempts', attempts - 1)
        redis.call('ZADD', qp .. ':delayed', eta, id)
        event(ekey, 'scheduled', {worker = worker, reason = 'snoozed', eta_ms = eta})
        counts.snoozed = counts.snoozed + 1
      elseif target == 'retrying' then
        local eta = now + tonumber(backoff)
        open_events(tkey, ekey)
        redis.call('HSET', tkey, 'status', 'retrying', 'error', text, 'eta_ms', eta)
        redis.call('ZADD', qp .. ':delayed', eta, id)
        event(ekey, 'retrying', {worker = worker, error = text, attempt = attempts,
                                 backoff_ms = tonumber(backoff)})
        counts.failed = counts.failed + 1
        counts.retried = counts.retried + 1
      else
        open_events(tkey, ekey)
        redis.call('HSET', tkey, 'status', 'failed', 'error', text, 'finished_ms', now_s)
        redis.call('PEXPIRE', tkey, dead_retention)
        if not t[8] then
          dead_letter(qp, id, now_s, dead_retention, dead_max)
          counts.dead_lettered = counts.dead_lettered + 1
        end
        event(ekey, 'failed', {worker = worker, error = text, attempt = attempts})
        redis.call('PEXPIRE', ekey, dead_retention)
        counts.failed = counts.failed + 1
      end
      if ends(target) then
        waited_task_ended(qp, id, t[8], t[10], target == 'failed' and dead_retention or retention,
                          waiters)
      end
      out[#out + 1] = 0
    end
  end
end

if #acks > 0 then
  redis.call('XACK', stream, 'ferry', unpack(acks))
  redis.call('XDEL', stream, unpack(acks))
end
for k, v in pairs(counts) do
  if v > 0 then redis.call('HINCRBY', qp .. ':stats', k, v) end
end
return {out, waiters}
