-- complete-7: finishes the leased head message, only while the token still owns the lease (fencing):
-- records its final processing state and, when given, its bot replies (exactly once, as append-3 with
-- a guard does), pops it and takes it off the pending count. Then, when asked to
-- continue and more messages wait, leases the next head message under a new token (like claim-3);
-- otherwise frees the conversation, which stays scheduled (claimable at once) if messages wait.
-- KEYS[1]  partition schedule zset   KEYS[2]  partition lease hash
-- KEYS[3]  partition pending counter KEYS[4]  conversation queue list
-- KEYS[5]  messages hash             KEYS[6]  conversation hash
-- KEYS[7]  seq index zset
-- ARGV[1]  conversation id           ARGV[2]  token
-- ARGV[3]  id of the claimed message
-- ARGV[4]  processing JSON to record, without reply ids ('' leaves processing as it is)
-- ARGV[5]  token for the next message ('' frees the conversation instead)
-- ARGV[6]  lease of the next message (ms)
-- ARGV[7]  now ISO (processing.at of the next message, lastMessageAt when replies are recorded)
-- ARGV[8]  JSON array of the reply ids ('' records no replies)
-- ARGV[9]  now (ms)
-- ARGV[10] id of this completion, the same on every try of it (kept as <id>:c)
-- ARGV[11..] reply JSON objects without seq and sessionId, one per id
-- A retry of a completion that did land (its replicas confirmed too late, or its answer was lost in a
-- failover) finds the lease gone or moved on, the message off the head and this completion's id on
-- it: it changes nothing and answers as the first try did, except that notify is 0 (told once) and recorded replies come back as
-- {'again', replyIdsJSON}; the next message is reported again while ARGV[5] still holds its lease.
-- Returns  {0} when the lease was lost (nothing written); otherwise {code, notify, next, replies} where
--          replies is false when none were given, {'ok', sessionId, seq1, ...} when they were recorded
--          now, and {'dup', replyIdsJSON} when replies to this message were recorded before (nothing
--          appended); code is
--          1 when the conversation was freed with an empty queue, 2 when it was freed with messages
--          waiting (the caller rings the doorbell), 3 when the next message was leased; notify is 1
--          when an accept asked to be told about the message; next is, for code 3, the claim as a
--          claim-3 tuple {conversation id, token, deliveries, body, processing, reply ids|false,
--          conversation fields}, and false otherwise.
-- uses lib/messages.lua
local id = ARGV[3]
local holder = redis.call('HGET', KEYS[2], ARGV[1])
if holder ~= ARGV[2] then
  if redis.call('HGET', KEYS[5], id .. ':c') ~= ARGV[10] or redis.call('LINDEX', KEYS[4], 0) == id then
    return {0}
  end
  -- Written again unchanged, so the WAIT after this script covers the first try even on a connection
  -- that has written nothing since (a reconnect): WAIT counts a connection's own writes.
  redis.call('HSET', KEYS[5], id .. ':c', ARGV[10])
  local again = false
  if ARGV[8] ~= '' then
    local prior = redis.call('HGET', KEYS[5], id .. ':r')
    if prior then
      again = {'again', prior}
    end
  end
  if ARGV[5] ~= '' and holder == ARGV[5] then
    local head = redis.call('LINDEX', KEYS[4], 0)
    if head then
      local m = redis.call('HMGET', KEYS[5], head, head .. ':r', head .. ':p', head .. ':d')
      local c = redis.call('HMGET', KEYS[6],
        'doc', 'sessionId', 'sessionStartedAt', 'sessionState', 'updatedAt', 'lastMessageAt')
      return {3, 0, {ARGV[1], ARGV[5], tonumber(m[4]), m[1], m[3], m[2], c}, again}
    end
  end
  if not holder and redis.call('LLEN', KEYS[4]) > 0 then
    return {2, 0, false, again}
  end
  return {1, 0, false, again}
end
local replies = false
if ARGV[8] ~= '' then
  replies = append_messages(KEYS[6], KEYS[5], KEYS[7], id, ARGV[8], 11, ARGV[7], ARGV[9])
end
if redis.call('HEXISTS', KEYS[5], id) == 1 then
  redis.call('HSET', KEYS[5], id .. ':c', ARGV[10])
end
if ARGV[4] ~= '' and redis.call('HEXISTS', KEYS[5], id) == 1 then
  redis.call('HSET', KEYS[5], id .. ':p', ARGV[4])
end
local notify = redis.call('HDEL', KEYS[5], id .. ':w')
if redis.call('LINDEX', KEYS[4], 0) == id then
  redis.call('LPOP', KEYS[4])
  redis.call('DECR', KEYS[3])
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if ARGV[5] ~= '' then
  local head = redis.call('LINDEX', KEYS[4], 0)
  while head and redis.call('HEXISTS', KEYS[5], head) == 0 do
    redis.call('LPOP', KEYS[4])
    redis.call('DECR', KEYS[3])
    head = redis.call('LINDEX', KEYS[4], 0)
  end
  if head then
    redis.call('ZADD', KEYS[1], now + tonumber(ARGV[6]), ARGV[1])
    redis.call('HSET', KEYS[2], ARGV[1], ARGV[5])
    local deliveries = redis.call('HINCRBY', KEYS[5], head .. ':d', 1)
    local p = redis.call('HGET', KEYS[5], head .. ':p')
    local proc = p and cjson.decode(p) or {attempts = 0}
    proc.state = 'processing'
    proc.attempts = (tonumber(proc.attempts) or 0) + 1
    proc.at = ARGV[7]
    p = cjson.encode(proc)
    redis.call('HSET', KEYS[5], head .. ':p', p)
    local m = redis.call('HMGET', KEYS[5], head, head .. ':r')
    local c = redis.call('HMGET', KEYS[6],
      'doc', 'sessionId', 'sessionStartedAt', 'sessionState', 'updatedAt', 'lastMessageAt')
    return {3, notify, {ARGV[1], ARGV[5], deliveries, m[1], p, m[2], c}, replies}
  end
end
redis.call('HDEL', KEYS[2], ARGV[1])
if redis.call('LLEN', KEYS[4]) > 0 then
  redis.call('ZADD', KEYS[1], now, ARGV[1])
  return {2, notify, false, replies}
end
redis.call('ZREM', KEYS[1], ARGV[1])
return {1, notify, false, replies}
