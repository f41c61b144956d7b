-- Message storage shared by the scripts that write messages. A script that has the line
-- "-- uses lib/messages.lua" gets this file put in front of it when it is loaded (scripts.ts).

-- The seq fence. A conversation records, in its 'epoch' field, the replication id of the master that
-- last gave out one of its seqs. A master has a new replication id when it was promoted from a replica
-- (a failover) or restarted, which is exactly when the seqs it inherited may lag behind ones the
-- former master gave out in writes that never reached it. The first seq given out under a new id then
-- jumps SEQ_FENCE_GAP past the counter, so a lost message's seq is never given to another one, and
-- every seq anyone saw stays below every later one (docs/replication.md).
local SEQ_FENCE_GAP = 1000
local current_epoch = nil

local function master_epoch()
  if not current_epoch then
    local info = redis.call('INFO', 'replication')
    current_epoch = string.match(info, 'master_replid:(%w+)') or ''
  end
  return current_epoch
end

-- Stores one message under the conversation's next seq and indexes it; returns the seq.
-- body is the message JSON object without seq and sessionId, which are spliced in first.
local function store_message(conv, msgs, seqidx, id, sid, body)
  local epoch = master_epoch()
  local seen = redis.call('HGET', conv, 'epoch')
  if seen ~= epoch then
    -- No epoch yet: a conversation written before the fence existed; nothing to jump over known.
    if seen then
      redis.call('HINCRBY', conv, 'seq', SEQ_FENCE_GAP)
    end
    redis.call('HSET', conv, 'epoch', epoch)
  end
  local seq = redis.call('HINCRBY', conv, 'seq', 1)
  redis.call('HSET', msgs, id, '{"seq":' .. seq .. ',"sessionId":' .. cjson.encode(sid) .. ',' .. string.sub(body, 2))
  redis.call('ZADD', seqidx, seq, id)
  return seq
end

-- Records activity on the conversation (what ends a session after SESSION_IDLE_S).
local function touch(conv, iso, ms)
  redis.call('HSET', conv, 'lastMessageAt', iso, 'lastMessageMs', ms, 'updatedAt', iso)
end

-- Appends the messages in ARGV[first..] (their ids in the JSON array ids_json) to the current session.
-- With a guard (the id of the inbound message they answer) they are its replies, recorded once: when
-- replies to it were recorded before, nothing is written and {'dup', reply ids JSON} is returned.
-- Otherwise returns {'ok', sessionId, seq1, seq2, ...}.
local function append_messages(conv, msgs, seqidx, guard, ids_json, first, iso, ms)
  if guard ~= '' then
    local prior = redis.call('HGET', msgs, guard .. ':r')
    if prior then
      -- Written again unchanged, so a WAIT after the script covers the replies recorded before.
      redis.call('HSET', msgs, guard .. ':r', prior)
      return {'dup', prior}
    end
  end
  local sid = redis.call('HGET', conv, 'sessionId')
  local ids = cjson.decode(ids_json)
  local out = {'ok', sid}
  for i = first, #ARGV do
    out[#out + 1] = store_message(conv, msgs, seqidx, ids[i - first + 1], sid, ARGV[i])
  end
  if guard ~= '' then
    redis.call('HSET', msgs, guard .. ':r', ids_json)
  end
  if #ARGV >= first then
    touch(conv, iso, ms)
  end
  return out
end

