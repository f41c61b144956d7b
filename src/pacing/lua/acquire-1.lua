-- acquire-1: takes up to `want` of a key's `limit` slots as leases that expire unless renewed.
-- uses now.lua
-- KEYS[1]  the key's leases (<p>:{<p>:pace:<key>}:c), a sorted set: lease id -> expiry (ms, Redis clock)
-- ARGV[1]  limit
-- ARGV[2]  want
-- ARGV[3]  lease TTL in ms
-- ARGV[4]  lease id stem; the leases granted are <stem>.1, <stem>.2, ...
-- Returns  how many leases were granted (0 when the key is at its limit)
local now = now_ms()
-- Leases of a process that died (or stopped renewing) have expired: their slots are free again.
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local free = tonumber(ARGV[1]) - redis.call('ZCARD', KEYS[1])
local n = math.min(tonumber(ARGV[2]), free)
if n <= 0 then return 0 end
local ttl = tonumber(ARGV[3])
for i = 1, n do
  redis.call('ZADD', KEYS[1], now + ttl, ARGV[4] .. '.' .. i)
end
redis.call('PEXPIRE', KEYS[1], math.ceil(ttl) + 1000)
return n
