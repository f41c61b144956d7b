-- step-2: one handoff transition that does not end a handoff (request, assign, a close with no
-- handoff, the resume marker served, an idle timer moved or forgotten), applied only if the
-- conversation is still the one the caller decided on; with its idle release timer in the same step.
-- KEYS[1]  conversation hash (the store's)
-- KEYS[2]  the partition's handoff due zset (same hash tag)
-- ARGV[1]  the conversation doc as read     ARGV[2]  the new doc ('' = leave it)
-- ARGV[3]  updatedAt ISO                    ARGV[4]  timer: 'set', 'clear' or 'keep'
-- ARGV[5]  due time (ms) for 'set'          ARGV[6]  conversation id
-- Returns  1 when applied, 0 when the doc had changed (or the conversation is gone): decide again.
-- uses lib/doc.lua
if not doc_is(KEYS[1], ARGV[1]) then
  return 0
end
if ARGV[2] ~= '' then
  redis.call('HSET', KEYS[1], 'doc', ARGV[2], 'updatedAt', ARGV[3])
end
if ARGV[4] == 'set' then
  redis.call('ZADD', KEYS[2], ARGV[5], ARGV[6])
elseif ARGV[4] == 'clear' then
  redis.call('ZREM', KEYS[2], ARGV[6])
end
return 1
