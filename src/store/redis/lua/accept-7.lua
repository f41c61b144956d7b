-- accept-7: the atomic ingest step (SPEC §4.1-4.2): dedupe, roll the session, assign seq, store,
-- enqueue and schedule, or nothing at all.
-- KEYS[1]  conversation hash
-- KEYS[2]  messages hash
-- KEYS[3]  seq index zset
-- KEYS[4]  conversation queue list
-- KEYS[5]  partition schedule zset
-- KEYS[6]  partition pending counter
-- KEYS[7]  dedupe key
-- ARGV[1]  conversation id          ARGV[2]  message id
-- ARGV[3]  message JSON without seq and sessionId (an object literal, spliced below)
-- ARGV[4]  processing JSON           ARGV[5]  dedupe TTL (s)
-- ARGV[6]  session idle time (ms)    ARGV[7]  now (ms, caller clock; session arithmetic)
-- ARGV[8]  now ISO                   ARGV[9]  id for a new session, used when the session rolls
-- ARGV[10] '1' to store without queueing
-- ARGV[11] pending limit of this partition
-- ARGV[12] '1' when someone waits for the outcome: the message gets a <id>:w marker, which complete-7
--          reports and removes
-- Returns  {'missing'} when the conversation does not exist;
--          {'full'} when the partition is at its pending limit (nothing written);
--          {'dup', body, processing|false, replyIds|false} for a known dedupe key (nothing written,
--          except the :w marker on the original while it is unfinished, and the dedupe key's own TTL
--          set again unchanged);
--          {'ok', seq, sessionId, endedSessionId|'', ready} where ready = 1 when the conversation
--          just became claimable (the caller rings the doorbell).
-- uses lib/messages.lua
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {'missing'}
end
local original = redis.call('GET', KEYS[7])
if original then
  local m = redis.call('HMGET', KEYS[2], original, original .. ':p', original .. ':r')
  -- A dedupe key whose message was deleted no longer counts.
  if m[1] then
    if ARGV[12] == '1' and m[2] then
      local state = cjson.decode(m[2]).state
      if state == 'queued' or state == 'processing' then
        redis.call('HSET', KEYS[2], original .. ':w', '1')
      end
    end
    -- A write that changes nothing, so a WAIT after this script also covers the original, which the
    -- request that stored it may have left unconfirmed.
    local ttl = redis.call('PTTL', KEYS[7])
    if ttl > 0 then
      redis.call('PEXPIRE', KEYS[7], ttl)
    end
    return {'dup', m[1], m[2], m[3]}
  end
end
local queued = ARGV[10] ~= '1'
if queued and tonumber(redis.call('GET', KEYS[6]) or '0') >= tonumber(ARGV[11]) then
  return {'full'}
end
local ended = ''
local last = redis.call('HGET', KEYS[1], 'lastMessageMs')
if last and tonumber(ARGV[7]) - tonumber(last) > tonumber(ARGV[6]) then
  ended = redis.call('HGET', KEYS[1], 'sessionId')
  redis.call('HSET', KEYS[1], 'sessionId', ARGV[9], 'sessionStartedAt', ARGV[8], 'sessionState', '{}')
end
local sid = redis.call('HGET', KEYS[1], 'sessionId')
local id = ARGV[2]
local seq = store_message(KEYS[1], KEYS[2], KEYS[3], id, sid, ARGV[3])
touch(KEYS[1], ARGV[8], ARGV[7])
redis.call('SET', KEYS[7], id, 'EX', ARGV[5])
local ready = 0
if queued then
  redis.call('HSET', KEYS[2], id .. ':p', ARGV[4])
  if ARGV[12] == '1' then
    redis.call('HSET', KEYS[2], id .. ':w', '1')
  end
  redis.call('INCR', KEYS[6])
  if redis.call('RPUSH', KEYS[4], id) == 1 then
    local t = redis.call('TIME')
    redis.call('ZADD', KEYS[5], tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000), ARGV[1])
    ready = 1
  end
end
return {'ok', seq, sid, ended, ready}
