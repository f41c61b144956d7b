-- delmsg-2: erases one message. The seq counter is untouched, so other messages keep their seq; a
-- queued message stays in its queue list and is skipped by the next claim.
-- KEYS[1]  messages hash
-- KEYS[2]  seq index zset
-- ARGV[1]  message id
-- Returns  1 when deleted, 0 when there was no such message.
local id = ARGV[1]
if redis.call('HDEL', KEYS[1], id) == 0 then
  return 0
end
redis.call('HDEL', KEYS[1], id .. ':p', id .. ':r', id .. ':d', id .. ':s', id .. ':w', id .. ':c')
redis.call('ZREM', KEYS[2], id)
return 1
