-- ring-1: rings the doorbell that blocked workers BLPOP, keeping at most ARGV[1] rings so a doorbell
-- nobody listens to stays small.
-- KEYS[1]  doorbell list
-- ARGV[1]  cap
-- Returns  1.
redis.call('RPUSH', KEYS[1], '1')
redis.call('LTRIM', KEYS[1], -tonumber(ARGV[1]), -1)
return 1
