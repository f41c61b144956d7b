-- renew-1: extends a holder's leases of one key; leases that already expired are not brought back.
-- uses now.lua
-- KEYS[1]  the key's leases (<p>:{<p>:pace:<key>}:c)
-- ARGV[1]  lease TTL in ms
-- ARGV[2..] the lease ids
-- Returns  how many were renewed
local now = now_ms()
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local ttl = tonumber(ARGV[1])
local renewed = 0
for i = 2, #ARGV do
  renewed = renewed + redis.call('ZADD', KEYS[1], 'XX', 'CH', now + ttl, ARGV[i])
end
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('PEXPIRE', KEYS[1], math.ceil(ttl) + 1000) end
return renewed
