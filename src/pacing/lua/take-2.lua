-- take-2: slots of a key's concurrency limit, behind its circuit breaker, in one step: nothing is
-- granted while the breaker is open, and in half-open state one slot (the trial) is granted only once
-- no slot is held anywhere. Both keys share the key's hash tag (one Cluster slot).
-- uses now.lua
-- KEYS[1]  the key's leases (<p>:{<p>:pace:<key>}:c), as in acquire-1
-- KEYS[2]  the key's breaker (<p>:{<p>:pace:<key>}:b), as in admit-1
-- ARGV[1]  limit
-- ARGV[2]  want
-- ARGV[3]  lease TTL in ms
-- ARGV[4]  lease id stem; the leases granted are <stem>.1, <stem>.2, ...
-- ARGV[5]  trial TTL in ms
-- Returns  {0, n} closed, n leases granted (maybe 0: every slot is held);
--          {1, ms} open for ms more; {3, ms} another caller's trial is under way (ms at the latest);
--          {2, n} half-open: n = 1 is the trial's lease, n = 0 means slots are still held (try later)
local now = now_ms()
local mode = 0
local open = redis.call('HGET', KEYS[2], 'open')
if open then
  open = tonumber(open)
  if now < open then return {1, math.ceil(open - now)} end
  local trial = tonumber(redis.call('HGET', KEYS[2], 'trial') or '0')
  if now < trial then return {3, math.ceil(trial - now)} end
  mode = 2
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local held = redis.call('ZCARD', KEYS[1])
local n = math.min(tonumber(ARGV[2]), tonumber(ARGV[1]) - held)
if mode == 2 then
  if held > 0 then return {2, 0} end
  n = math.min(n, 1)
end
if n <= 0 then return {mode, 0} end
local ttl = tonumber(ARGV[3])
for i = 1, n do
  redis.call('ZADD', KEYS[1], now + ttl, ARGV[4] .. '.' .. i)
end
redis.call('PEXPIRE', KEYS[1], math.ceil(ttl) + 1000)
if mode == 2 then redis.call('HSET', KEYS[2], 'trial', now + tonumber(ARGV[5])) end
return {mode, n}
