-- cas-1: compare-and-set on hash fields, for read-modify-write updates done in the caller (meta
-- merges, delivery steps) without parsing JSON in Lua.
-- KEYS[1]  hash
-- ARGV[1]  number of checks n
-- ARGV[2 .. 2n+1]  field, expected value pairs; all must match
-- ARGV[2n+2 ..]    field, value pairs to set
-- Returns  1 when set, 0 when a checked field had changed (or was gone).
local n = tonumber(ARGV[1])
for i = 0, n - 1 do
  if redis.call('HGET', KEYS[1], ARGV[2 + 2 * i]) ~= ARGV[3 + 2 * i] then
    return 0
  end
end
redis.call('HSET', KEYS[1], unpack(ARGV, 2 * n + 2))
return 1
