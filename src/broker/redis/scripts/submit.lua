-- submit: creates task records for a batch of tasks of one queue and queues them.
-- Guarantees: each record exists with status pending (in the stream) or scheduled (in the
-- delayed set) the moment the call returns; a unique key maps to exactly one task id while it
-- lives (SET NX), so a repeated submission returns the first id instead of a second task.
-- No event stream is created here: "submitted" is derived from the record (see ReadEvents).
-- Nothing is written when the queue's stream does not exist (the queue was deleted, or Redis
-- lost its data, under a producer that had made it): the caller makes the queue again and
-- repeats the call. The first task's own XADD (NOMKSTREAM) is that check, so it costs no command
-- of its own; only a call whose first task is scheduled checks with EXISTS.
--
-- KEYS[1]  queue key prefix "<prefix>:{<queue>}"; every key below is derived from it, so all
--          of them share the queue's hash tag (one cluster slot).
-- ARGV     now_ms, retention_ms, queue, then 9 values per task:
--          id, kind, payload, max_attempts, timeout_ms, eta_ms (0 = now), unique_key,
--          unique_ttl_ms, waiter ("<queue>/<id>" of the task waiting for this one, or '')
-- Returns  a flat array: id, existing (0|1) per task, in order; or {"nostream"}.
local qp = KEYS[1]
local now_s = ARGV[1]
local now = tonumber(now_s)
local retention = tonumber(ARGV[2])
local queue = ARGV[3]
local stream = qp .. ':stream'
local index = qp .. ':index'
-- The index only serves listings; entries older than the retention point at records that are
-- gone (or soon will be), so each append trims them (approximately: only whole stream nodes
-- go, which costs nothing while there are none) and the index stays bounded without a sweeper.
local index_min = (now - retention) .. '-0'
local out = {}

-- The stream entry of the first task, added before anything else is written (see above).
local first_entry = nil
if #ARGV >= 12 then
  if tonumber(ARGV[9]) > now then
    if redis.call('EXISTS', stream) == 0 then return {'nostream'} end
  else
    first_entry = redis.call('XADD', stream, 'NOMKSTREAM', '*', 'id', ARGV[4])
    if not first_entry then return {'nostream'} end
  end
end

for i = 4, #ARGV, 9 do
  local id, kind, payload = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local max_attempts, timeout, eta = ARGV[i + 3], ARGV[i + 4], ARGV[i + 5]
  local ukey, uttl, waiter = ARGV[i + 6], ARGV[i + 7], ARGV[i + 8]
  local existing = false
  if ukey ~= '' then
    local ukey_name = qp .. ':unique:' .. ukey
    if not redis.call('SET', ukey_name, id, 'NX', 'PX', uttl) then
      existing = redis.call('GET', ukey_name)
    end
  end
  if existing then
    -- A repeated submission: the entry added for it above goes again, unseen by any reader.
    if i == 4 and first_entry then redis.call('XDEL', stream, first_entry) end
    -- One that names a waiter (a run's task, after recovery gave the run a new one) is the task
    -- to wake from now on, while the task has not ended (its end wakes the waiter it names).
    if waiter ~= '' then
      local etkey = qp .. ':task:' .. existing
      local st = redis.call('HGET', etkey, 'status')
      if st and st ~= 'succeeded' and st ~= 'failed' and st ~= 'cancelled' then
        redis.call('HSET', etkey, 'waiter', waiter)
      end
    end
    out[#out + 1] = existing
    out[#out + 1] = 1
  else
    local tkey = qp .. ':task:' .. id
    if tonumber(eta) > now then
      redis.call('ZADD', qp .. ':delayed', eta, id)
      redis.call('HSET', tkey, 'queue', queue, 'kind', kind, 'payload', payload,
                 'status', 'scheduled', 'max_attempts', max_attempts, 'timeout_ms', timeout,
                 'created_ms', now_s, 'eta_ms', eta, 'unique_key', ukey)
    else
      local entry = first_entry
      if i ~= 4 then entry = redis.call('XADD', stream, '*', 'id', id) end
      redis.call('HSET', tkey, 'queue', queue, 'kind', kind, 'payload', payload,
                 'status', 'pending', 'max_attempts', max_attempts, 'timeout_ms', timeout,
                 'created_ms', now_s, 'entry', entry, 'unique_key', ukey)
    end
    if waiter ~= '' then redis.call('HSET', tkey, 'waiter', waiter) end
    -- One index entry per task made: the index's entries-added is the queue's `submitted` count
    -- (GetQueueStats), so no counter is written here.
    redis.call('XADD', index, 'MINID', '~', index_min, '*', 'id', id)
    out[#out + 1] = id
    out[#out + 1] = 0
  end
end

return out
