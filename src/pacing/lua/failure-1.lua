-- failure-1: counts a failed attempt; opens the breaker at the threshold, or again after a failed trial.
-- uses now.lua
-- KEYS[1]  the breaker (<p>:{<p>:pace:<key>}:b), as in admit-1
-- ARGV[1]  threshold (consecutive failures that open it)
-- ARGV[2]  cooldown in ms
-- ARGV[3]  how long an idle breaker is kept (ms): failures older than this are forgotten
-- Returns  1 when the breaker is open after this failure, else 0
local failures = redis.call('HINCRBY', KEYS[1], 'f', 1)
local result = 0
-- Already open (a failed trial, or an attempt that started before it opened) or the threshold hit.
if redis.call('HEXISTS', KEYS[1], 'open') == 1 or failures >= tonumber(ARGV[1]) then
  redis.call('HSET', KEYS[1], 'open', now_ms() + tonumber(ARGV[2]))
  redis.call('HDEL', KEYS[1], 'trial')
  result = 1
end
redis.call('PEXPIRE', KEYS[1], math.ceil(tonumber(ARGV[2]) + tonumber(ARGV[3])))
return result
