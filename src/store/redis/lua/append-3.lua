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
-- uses lib/messages.lua
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {'missing'}
end
return append_messages(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2], 5, ARGV[4], ARGV[3])
