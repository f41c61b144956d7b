-- append-3: stores messages with the next seqs, without queueing them (API messages, outbound
-- messages, bot replies). With a guard it records the replies to an inbound message exactly once.
-- KEYS[1]  conversation hash
-- KEYS[2]  messages hash
-- KEYS[3]  seq index zset
-- ARGV[1]  guard: id of the inbound message these replies answer, or '' for a plain append
-- ARGV[2]  JSON array of the new message ids (stored as the guard's reply ids)
-- ARGV[3]  now (ms)                  ARGV[4]  now ISO
-- ARGV[5..] message JSON objects without seq and sessionId, one per message
-- Returns  {'missing'} when the conversation does not exist;
--          {'dup', replyIdsJSON} when the guard's replies were recorded before (nothing written);
--          {'ok', sessionId, seq1, seq2, ...}.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {'missing'}
end
local guard = ARGV[1]
if guard ~= '' then
  local prior = redis.call('HGET', KEYS[2], guard .. ':r')
  if prior then
    return {'dup', prior}
  end
end
local sid = redis.call('HGET', KEYS[1], 'sessionId')
local splice = ',"sessionId":' .. cjson.encode(sid) .. ','
local ids = cjson.decode(ARGV[2])
local out = {'ok', sid}
for i = 5, #ARGV do
  local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
  local id = ids[i - 4]
  redis.call('HSET', KEYS[2], id, '{"seq":' .. seq .. splice .. string.sub(ARGV[i], 2))
  redis.call('ZADD', KEYS[3], seq, id)
  out[#out + 1] = seq
end
if guard ~= '' then
  redis.call('HSET', KEYS[2], guard .. ':r', ARGV[2])
end
if #ARGV >= 5 then
  redis.call('HSET', KEYS[1], 'lastMessageAt', ARGV[4], 'lastMessageMs', ARGV[3], 'updatedAt', ARGV[4])
end
return out
