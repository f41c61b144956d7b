-- txn-1: applies one contacts operation (resolve, attach, merge, unmerge, patch, erase) atomically:
-- every check first, then every write, or nothing at all. The operation was planned from reads made
-- before the call; a check that no longer holds means another operation came in between, and the
-- caller reads again and plans anew. All contact keys share one hash tag, so this runs in one slot.
-- KEYS[1]  the contacts hash; its name, less the trailing `c`, is the base of every key below
-- ARGV[1]  JSON { checks: [...], ops: [...] }, key names relative to the base:
--          checks  ["h", key, field, expected or false (absent)]  |  ["n", key, count] (zcard)
--          ops     ["hset", key, field, value] | ["hdel", key, field] | ["zadd", key, score, member]
--                  | ["zrem", key, member] | ["del", key]
-- Returns  0 when applied, otherwise the 1-based number of the first check that failed.
local base = string.sub(KEYS[1], 1, -2)
local t = cjson.decode(ARGV[1])
for i, c in ipairs(t.checks) do
  local key = base .. c[2]
  if c[1] == 'h' then
    local v = redis.call('HGET', key, c[3])
    if c[4] == false then
      if v ~= false then return i end
    elseif v ~= c[4] then
      return i
    end
  elseif c[1] == 'n' then
    if redis.call('ZCARD', key) ~= tonumber(c[3]) then return i end
  end
end
for _, o in ipairs(t.ops) do
  local key = base .. o[2]
  if o[1] == 'hset' then
    redis.call('HSET', key, o[3], o[4])
  elseif o[1] == 'hdel' then
    redis.call('HDEL', key, o[3])
  elseif o[1] == 'zadd' then
    redis.call('ZADD', key, o[3], o[4])
  elseif o[1] == 'zrem' then
    redis.call('ZREM', key, o[3])
  elseif o[1] == 'del' then
    redis.call('UNLINK', key)
  end
end
return 0
