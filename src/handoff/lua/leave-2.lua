-- leave-2: ends a handoff (release, idle release, close): writes the new doc with the resume marker
-- spliced in, whose afterSeq is the conversation's last seq read here, so a message accepted before
-- this step is muted and one accepted after it goes to the bot; and clears the idle timer.
-- KEYS[1]  conversation hash (the store's)
-- KEYS[2]  the partition's handoff due zset (same hash tag)
-- ARGV[1]  the conversation doc as read
-- ARGV[2]  the new doc, a JSON object without handoffResume (spliced in front)
-- ARGV[3]  updatedAt ISO, also the marker's `at`     ARGV[4]  conversation id
-- Returns  {1, afterSeq} when applied, {0} when the doc had changed or is gone: decide again.
-- uses lib/doc.lua
if not doc_is(KEYS[1], ARGV[1]) then
  return {0}
end
local seq = tonumber(redis.call('HGET', KEYS[1], 'seq') or '0')
local doc = '{"handoffResume":{"afterSeq":' .. seq .. ',"at":' .. cjson.encode(ARGV[3]) .. '},' .. string.sub(ARGV[2], 2)
redis.call('HSET', KEYS[1], 'doc', doc, 'updatedAt', ARGV[3])
redis.call('ZREM', KEYS[2], ARGV[4])
return {1, seq}
