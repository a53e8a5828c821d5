-- acl_probe: `ferry doctor`'s check that the Redis user may run what Ferry's scripts run. Each
-- command runs through redis.pcall on the probe keys (which share KEYS[1]'s hash tag); Redis
-- checks the ACL before running a command, so any other error (NOGROUP, no such key) means the
-- user may run it.
--
-- KEYS[1]  "<prefix>:{ferry-doctor}"
-- ARGV     repeated: n, then the n words of one command
-- Returns  "COMMAND: error" for each command the ACL refused.
local out = {}
local i = 1
while i <= #ARGV do
  local n = tonumber(ARGV[i])
  local cmd = {}
  for k = 1, n do cmd[k] = ARGV[i + k] end
  local r = redis.pcall(unpack(cmd))
  if type(r) == 'table' and r.err then
    local e = r.err
    if string.find(e, 'NOPERM', 1, true) or string.find(e, 'no permissions', 1, true) or
        string.find(e, 'user executing the script', 1, true) then
      out[#out + 1] = cmd[1] .. ': ' .. e
    end
  end
  i = i + n + 1
end
return out
