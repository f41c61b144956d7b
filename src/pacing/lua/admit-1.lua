-- admit-1: may a caller send to the breaker's target now? Hands out the one half-open trial.
-- uses now.lua
-- KEYS[1]  the breaker (<p>:{<p>:pace:<key>}:b), a hash: f (consecutive failures), open (open until,
--          ms on the Redis clock; absent while closed), trial (the trial's expiry, while one runs)
-- ARGV[1]  trial TTL in ms: a trial whose holder died frees itself after this
-- Returns  {0} closed; {1, ms} open for ms more; {2} half-open and the caller holds the trial;
--          {3, ms} half-open with another caller's trial under way (it expires in ms at the latest)
local open = redis.call('HGET', KEYS[1], 'open')
if not open then return {0} end
local now = now_ms()
open = tonumber(open)
if now < open then return {1, math.ceil(open - now)} end
local trial = tonumber(redis.call('HGET', KEYS[1], 'trial') or '0')
if now < trial then return {3, math.ceil(trial - now)} end
redis.call('HSET', KEYS[1], 'trial', now + tonumber(ARGV[1]))
return {2}
