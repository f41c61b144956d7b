-- put-1: stores the bot configuration document as its next version, when the caller's expected
-- version is still the stored one (optimistic concurrency: a stale If-Match changes nothing).
-- KEYS[1]  hash  doc (JSON), v (version), at (ISO time of the write)
-- ARGV[1]  expected version, or '' for whatever is stored
-- ARGV[2]  the document (JSON)
-- ARGV[3]  the time of the write (ISO 8601)
-- Returns  {1, new version} when stored; {0, stored version} when the expected version was stale.
local v = tonumber(redis.call('HGET', KEYS[1], 'v') or '0')
if ARGV[1] ~= '' and tonumber(ARGV[1]) ~= v then
  return {0, v}
end
v = v + 1
redis.call('HSET', KEYS[1], 'doc', ARGV[2], 'v', v, 'at', ARGV[3])
return {1, v}
