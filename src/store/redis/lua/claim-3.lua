-- claim-3: leases the head message of up to ARGV[2] claimable conversations of one partition, longest
-- waiting first, by the Redis clock (so processes with skewed clocks agree on lease expiry). Queue
-- entries whose message was deleted are dropped on the way; a conversation with nothing left to claim
-- leaves the schedule.
-- Which conversations are ready is only known in here, so their keys (queue, messages, conversation
-- hash) are built from ARGV[4], the partition's hash-tagged prefix: they share the slot of KEYS.
-- KEYS[1]  partition schedule zset
-- KEYS[2]  partition lease hash
-- KEYS[3]  partition pending counter
-- ARGV[1]  lease (ms)                ARGV[2]  at most this many claims (0: only count)
-- ARGV[3]  now ISO (processing.at)   ARGV[4]  the partition's key prefix (KeyLayout.tag)
-- ARGV[5]  token base: claim i (1-based) gets the fencing token ARGV[5] .. ':' .. i
-- Returns  {left, claim...}: left = claimable conversations still in the schedule afterwards, then
--          per claim {conversation id, token, deliveries, message body, processing JSON,
--          reply ids JSON|false, conversation fields (see CONV_FIELDS in store.ts)}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local expires = now + tonumber(ARGV[1])
local max = tonumber(ARGV[2])
local tag = ARGV[4]
local out = {0}
local claimed = 0
while claimed < max do
  local ready = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, max - claimed)
  if #ready == 0 then
    break
  end
  for _, conv in ipairs(ready) do
    local queue, msgs = tag .. ':q:' .. conv, tag .. ':msgs:' .. conv
    local head = redis.call('LINDEX', queue, 0)
    while head and redis.call('HEXISTS', msgs, head) == 0 do
      redis.call('LPOP', queue)
      redis.call('DECR', KEYS[3])
      head = redis.call('LINDEX', queue, 0)
    end
    if head then
      claimed = claimed + 1
      local token = ARGV[5] .. ':' .. claimed
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
      local c = redis.call('HMGET', tag .. ':conv:' .. conv,
        'doc', 'sessionId', 'sessionStartedAt', 'sessionState', 'updatedAt', 'lastMessageAt')
      out[#out + 1] = {conv, token, deliveries, m[1], p, m[2], c}
    else
      redis.call('ZREM', KEYS[1], conv)
      redis.call('HDEL', KEYS[2], conv)
    end
  end
end
out[1] = redis.call('ZCOUNT', KEYS[1], '-inf', now)
return out
