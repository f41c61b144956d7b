-- finish-6: applies the outcome of an attempt to a leased lane head, only while the token still
-- owns the lease (fencing). `retry` and `release` keep the head (marked as attempted, so nothing
-- queued later goes in front of it) and schedule the lane at ARGV[6]; `done` and `dead` pop it,
-- raise the lane's high-water mark to its seq, let the finished delivery expire after ARGV[7] ms and
-- schedule the next head for when it may be sent (see lib/lanes.lua); `dead` also indexes it in the
-- dead-letter zset (dropping entries past retention).
-- KEYS[1]  endpoint schedule zset   KEYS[2]  endpoint lease hash
-- KEYS[3]  lane list                KEYS[4]  delivery hash
-- KEYS[5]  endpoint dead-letter zset
-- KEYS[6]  lane high-water key
-- ARGV[1]  lane name                ARGV[2]  token
-- ARGV[3]  delivery id              ARGV[4]  action: done | dead | retry | release
-- ARGV[5]  new state JSON ('' keeps the stored one)
-- ARGV[6]  when the lane is due again (retry, release; ms)
-- ARGV[7]  retention of a finished delivery (ms)
-- ARGV[8]  now (ms)
-- ARGV[9]  key prefix of the endpoint's delivery hashes (same slot)
-- ARGV[10] how long the high-water mark of an idle lane is kept (ms)
-- Returns  1 when applied, 0 when the lease was lost or the head changed (nothing applied).
-- uses lib/lanes.lua
local now, dprefix = tonumber(ARGV[8]), ARGV[9]
if redis.call('HGET', KEYS[2], ARGV[1]) ~= ARGV[2] then
  return 0
end
redis.call('HDEL', KEYS[2], ARGV[1])
local function schedule_head()
  local due = lane_head_due(KEYS[3], KEYS[6], dprefix, now)
  if due then
    redis.call('ZADD', KEYS[1], due, ARGV[1])
  else
    redis.call('ZREM', KEYS[1], ARGV[1])
  end
end
if redis.call('LINDEX', KEYS[3], 0) ~= ARGV[3] then
  schedule_head()
  return 0
end
if ARGV[5] ~= '' then
  redis.call('HSET', KEYS[4], 'state', ARGV[5])
end
if ARGV[4] == 'retry' or ARGV[4] == 'release' then
  redis.call('HSET', KEYS[4], 't', '1')
  redis.call('ZADD', KEYS[1], ARGV[6], ARGV[1])
  return 1
end
redis.call('LPOP', KEYS[3])
local key = redis.call('HGET', KEYS[4], 'k')
redis.call('PEXPIRE', KEYS[4], ARGV[7])
if key and tonumber(key) then
  local hw = tonumber(redis.call('GET', KEYS[6]) or '0') or 0
  redis.call('SET', KEYS[6], math.max(hw, tonumber(key)), 'PX', ARGV[10])
end
if ARGV[4] == 'dead' then
  redis.call('ZADD', KEYS[5], ARGV[8], ARGV[3])
  redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', '(' .. (tonumber(ARGV[8]) - tonumber(ARGV[7])))
end
schedule_head()
return 1
