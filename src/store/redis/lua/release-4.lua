-- release-4: hands a leased head message back unprocessed (graceful shutdown): the lease ends, the
-- message's processing state returns to 'queued' and the conversation is claimable at once.
-- KEYS[1]  partition schedule zset   KEYS[2]  partition lease hash
-- KEYS[3]  conversation queue list   KEYS[4]  messages hash
-- ARGV[1]  conversation id           ARGV[2]  token
-- ARGV[3]  id of the claimed message ARGV[4]  now ISO
-- ARGV[5]  '1' to undo the claim as well: it never reached a worker (its replicas did not confirm it),
--          so it is not counted as a delivery or an attempt
-- Returns  1 when released with work waiting (the caller rings the doorbell), 0 otherwise.
if redis.call('HGET', KEYS[2], ARGV[1]) ~= ARGV[2] then
  return 0
end
redis.call('HDEL', KEYS[2], ARGV[1])
local field = ARGV[3] .. ':p'
local p = redis.call('HGET', KEYS[4], field)
if p then
  local proc = cjson.decode(p)
  proc.state = 'queued'
  proc.at = ARGV[4]
  if ARGV[5] == '1' then
    proc.attempts = math.max(0, (tonumber(proc.attempts) or 1) - 1)
    if tonumber(redis.call('HGET', KEYS[4], ARGV[3] .. ':d') or '0') > 0 then
      redis.call('HINCRBY', KEYS[4], ARGV[3] .. ':d', -1)
    end
  end
  redis.call('HSET', KEYS[4], field, cjson.encode(proc))
end
if redis.call('LLEN', KEYS[3]) > 0 then
  local t = redis.call('TIME')
  redis.call('ZADD', KEYS[1], tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000), ARGV[1])
  return 1
end
redis.call('ZREM', KEYS[1], ARGV[1])
return 0
