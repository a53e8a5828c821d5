-- renew: extends the leases a worker holds on entries of one queue.
-- Guarantees: a lease is renewed (XCLAIM with min-idle 0 and JUSTID resets the entry's idle
-- time without counting a delivery) only while the PEL says this worker owns the entry and the
-- task is running under the same epoch. Everything else is reported lost.
--
-- KEYS[1]  queue key prefix "<prefix>:{<queue>}".
-- ARGV     worker, then 3 values per lease: task_id, entry_id, epoch
-- Returns  the ids whose lease is lost.
local qp = KEYS[1]
local worker = ARGV[1]
local stream = qp .. ':stream'
local lost = {}
for i = 2, #ARGV, 3 do
  local id, entry, epoch = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local kept = false
  -- A malformed entry id would make XPENDING raise and fail the whole batch.
  local p = {}
  if string.match(entry, '^%d+%-%d+$') then
    p = redis.call('XPENDING', stream, 'ferry', entry, entry, 1)
  end
  if p[1] and p[1][2] == worker then
    local t = redis.call('HMGET', qp .. ':task:' .. id, 'status', 'epoch')
    if t[1] == 'running' and t[2] == epoch then
      redis.call('XCLAIM', stream, 'ferry', worker, 0, entry, 'JUSTID')
      kept = true
    end
  end
  if not kept then lost[#lost + 1] = id end
end
return lost
