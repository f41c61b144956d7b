-- complete-4: pops the leased head message and frees the conversation, only while the token still
-- owns the lease (fencing). If more messages wait, the conversation is claimable at once.
-- KEYS[1]  partition schedule zset   KEYS[2]  partition lease hash
-- KEYS[3]  partition pending counter KEYS[4]  conversation queue list
-- ARGV[1]  conversation id           ARGV[2]  token
-- ARGV[3]  id of the claimed message
-- Returns  0 when the lease was lost, 1 when done and the queue is empty, 2 when done and more
--          messages wait (the caller rings the doorbell).
if redis.call('HGET', KEYS[2], ARGV[1]) ~= ARGV[2] then
  return 0
end
redis.call('HDEL', KEYS[2], ARGV[1])
if redis.call('LINDEX', KEYS[4], 0) == ARGV[3] then
  redis.call('LPOP', KEYS[4])
  redis.call('DECR', KEYS[3])
end
if redis.call('LLEN', KEYS[4]) > 0 then
  local t = redis.call('TIME')
  redis.call('ZADD', KEYS[1], tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000), ARGV[1])
  return 2
end
redis.call('ZREM', KEYS[1], ARGV[1])
return 1
