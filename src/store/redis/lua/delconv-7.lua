-- delconv-7: erases a conversation with its messages and queue, and takes its pending messages off
-- the partition's count. Dedupe keys are left to expire: nothing can be accepted into a deleted
-- conversation.
-- KEYS[1]  conversation hash         KEYS[2]  messages hash
-- KEYS[3]  seq index zset            KEYS[4]  conversation queue list
-- KEYS[5]  partition schedule zset   KEYS[6]  partition lease hash
-- KEYS[7]  partition pending counter
-- ARGV[1]  conversation id
-- ARGV[2]  '1': only while no message was ever stored in it
-- Returns  1 when deleted, 0 when there was no such conversation, -1 when it was not empty.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
if ARGV[2] == '1' and tonumber(redis.call('HGET', KEYS[1], 'seq') or '0') > 0 then
  return -1
end
local n = redis.call('LLEN', KEYS[4])
if n > 0 then
  redis.call('DECRBY', KEYS[7], n)
end
redis.call('UNLINK', KEYS[1], KEYS[2], KEYS[3], KEYS[4])
redis.call('ZREM', KEYS[5], ARGV[1])
redis.call('HDEL', KEYS[6], ARGV[1])
return 1
