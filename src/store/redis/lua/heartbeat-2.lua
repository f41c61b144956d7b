-- heartbeat-2: extends a lease while its fencing token still owns it.
-- KEYS[1]  partition schedule zset
-- KEYS[2]  partition lease hash
-- ARGV[1]  conversation id           ARGV[2]  token
-- ARGV[3]  lease (ms)
-- Returns  1 when extended, 0 when the lease was taken over or the conversation is gone.
if redis.call('HGET', KEYS[2], ARGV[1]) ~= ARGV[2] then
  return 0
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[3]), ARGV[1])
return 1
