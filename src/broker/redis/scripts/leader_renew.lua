-- Leader lease: renew, only while the caller still holds it.
-- KEYS[1] = lease key, KEYS[2] = token counter; ARGV[1] = holder id, ARGV[2] = ttl ms
-- Returns {held (0|1), token, current holder ("" when free), remaining ttl ms}.
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return {1, tonumber(redis.call('GET', KEYS[2]) or '0'), holder, tonumber(ARGV[2])}
end
if holder then
  return {0, 0, holder, redis.call('PTTL', KEYS[1])}
end
return {0, 0, '', 0}
