-- Message storage shared by the scripts that write messages. A script that has the line
-- "-- uses lib/messages.lua" gets this file put in front of it when it is loaded (scripts.ts).

-- Stores one message under the conversation's next seq and indexes it; returns the seq.
-- body is the message JSON object without seq and sessionId, which are spliced in first.
local function store_message(conv, msgs, seqidx, id, sid, body)
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

