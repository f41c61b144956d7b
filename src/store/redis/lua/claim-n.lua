-- claim-n: leases the head message of up to ARGV[2] candidate conversations of one partition.
-- Candidates come from ready-1 and are re-checked here, since another process may have claimed them
-- in between. Queue entries whose message was deleted are dropped on the way.
-- KEYS[1]  partition schedule zset
-- KEYS[2]  partition lease hash
-- KEYS[3]  partition pending counter
-- KEYS[2+2i], KEYS[3+2i]  candidate i's queue list and messages hash (i = 1..n)
-- ARGV[1]  lease (ms)                ARGV[2]  at most this many claims
-- ARGV[3]  now ISO (processing.at)
-- ARGV[2+2i], ARGV[3+2i]  candidate i's conversation id and the fencing token to give it
-- Returns  a flat list of 6-tuples, one per claim: conversation id, token, deliveries,
--          message body, processing JSON, reply ids JSON|false.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local expires = now + tonumber(ARGV[1])
local max = tonumber(ARGV[2])
local out = {}
local claimed = 0
for i = 1, (#KEYS - 3) / 2 do
  if claimed >= max then
    break
  end
  local conv, token = ARGV[2 + 2 * i], ARGV[3 + 2 * i]
  local queue, msgs = KEYS[2 + 2 * i], KEYS[3 + 2 * i]
  local score = redis.call('ZSCORE', KEYS[1], conv)
  if score and tonumber(score) <= now then
    local head = redis.call('LINDEX', queue, 0)
    while head and redis.call('HEXISTS', msgs, head) == 0 do
      redis.call('LPOP', queue)
      redis.call('DECR', KEYS[3])
      head = redis.call('LINDEX', queue, 0)
    end
    if head then
      redis.call('ZADD', KEYS[1], expires, conv)
      redis.call('HSET', KEYS[2], conv, token)
      local deliveries = redis.call('HINCRBY', msgs, head .. ':d', 1)
      local p = redis.call('HGET', msgs, head .. ':p')
      -- processing holds only scalars and the error object (reply ids live in :r), so a cjson round
      -- trip cannot turn an empty array into an object.
      local proc = p and cjson.decode(p) or {attempts = 0}
      proc.state = 'processing'
      proc.attempts = (tonumber(proc.attempts) or 0) + 1
      proc.at = ARGV[3]
      p = cjson.encode(proc)
      redis.call('HSET', msgs, head .. ':p', p)
      local m = redis.call('HMGET', msgs, head, head .. ':r')
      out[#out + 1] = conv
      out[#out + 1] = token
      out[#out + 1] = deliveries
      out[#out + 1] = m[1]
      out[#out + 1] = p
      out[#out + 1] = m[2]
      claimed = claimed + 1
    else
      redis.call('ZREM', KEYS[1], conv)
      redis.call('HDEL', KEYS[2], conv)
    end
  end
end
return out
