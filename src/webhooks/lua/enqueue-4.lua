-- enqueue-4: stores a delivery, logs it and appends it to its lane; an empty lane becomes due. Log
-- entries past the retention horizon are trimmed on the way (their deliveries have expired).
-- KEYS[1]  delivery hash            KEYS[2]  lane list
-- KEYS[3]  endpoint schedule zset   KEYS[4]  endpoint log zset
-- ARGV[1]  delivery id              ARGV[2]  data JSON
-- ARGV[3]  state JSON               ARGV[4]  lane name
-- ARGV[5]  due time (ms)             ARGV[6]  log floor: entries below this id are past the horizon
-- Returns  the lane length after the append.
redis.call('HSET', KEYS[1], 'data', ARGV[2], 'state', ARGV[3])
redis.call('ZREMRANGEBYLEX', KEYS[4], '-', '(' .. ARGV[6])
redis.call('ZADD', KEYS[4], 0, ARGV[1])
local length = redis.call('RPUSH', KEYS[2], ARGV[1])
if length == 1 then
  redis.call('ZADD', KEYS[3], 'NX', ARGV[5], ARGV[4])
end
return length
