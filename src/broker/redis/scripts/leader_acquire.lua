-- Leader lease: acquire (or extend when already held by the caller).
-- KEYS[1] = lease key (holder id), KEYS[2] = token counter
-- ARGV[1] = holder id, ARGV[2] = ttl in milliseconds
-- Returns {held (0|1), token, current holder, remaining ttl ms}.
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return {1, tonumber(redis.call('GET', KEYS[2]) or '0'), holder, tonumber(ARGV[2])}
end
if holder then
  return {0, 0, holder, redis.call('PTTL', KEYS[1])}
end
-- Free: SET NX PX takes it; every acquisition bumps the fencing token.
redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2])
local token = redis.call('INCR', KEYS[2])
return {1, token, ARGV[1], tonumber(ARGV[2])}
