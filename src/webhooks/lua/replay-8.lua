-- replay-8: queues a replay of a finished delivery at the back of its lane, unless the delivery was
-- replayed already: then nothing is queued and that replay is returned, except with ARGV[10] once
-- that replay has finished. One step, so that replay requests racing queue one replay between them.
-- Records the replay on the original (state.replayedBy, state.updatedAt) and drops the original from
-- the dead-letter index.
-- KEYS[1]  original delivery hash   KEYS[2]  replay delivery hash
-- KEYS[3]  lane list                KEYS[4]  endpoint schedule zset
-- KEYS[5]  endpoint log zset        KEYS[6]  endpoint lease hash
-- KEYS[7]  endpoint dead-letter zset KEYS[8]  lane high-water key
-- ARGV[1]  original id              ARGV[2]  replay id
-- ARGV[3]  replay data JSON         ARGV[4]  replay state JSON
-- ARGV[5]  lane name                ARGV[6]  now (ms)
-- ARGV[7]  now ISO                  ARGV[8]  log floor: entries below this id are past the horizon
-- ARGV[9]  key prefix of the endpoint's delivery hashes (same slot)
-- ARGV[10] '1': replay again if the latest replay has finished ('' never replays twice)
-- Returns  {1, replay id} when queued; {0, id of the earlier replay} when not; {-1} when the
--          original is gone, {-2, status} when it is itself still pending or retrying.
-- uses lib/lanes.lua
local raw = redis.call('HGET', KEYS[1], 'state')
if not raw then
  return {-1}
end
local state = cjson.decode(raw)
if state.status == 'pending' or state.status == 'retrying' then
  return {-2, state.status}
end
local previous = state.replayedBy
if type(previous) == 'string' then
  local p = redis.call('HGET', ARGV[9] .. previous, 'state')
  if p then
    local status = cjson.decode(p).status
    if status == 'pending' or status == 'retrying' or ARGV[10] ~= '1' then
      return {0, previous}
    end
  end
end
local place = lane_after(KEYS[3], KEYS[8], ARGV[9])
redis.call('HSET', KEYS[2], 'data', ARGV[3], 'state', ARGV[4], 'k', tostring(place), 'h', ARGV[6])
redis.call('ZREMRANGEBYLEX', KEYS[5], '-', '(' .. ARGV[8])
redis.call('ZADD', KEYS[5], 0, ARGV[2])
if redis.call('RPUSH', KEYS[3], ARGV[2]) == 1 and redis.call('HEXISTS', KEYS[6], ARGV[5]) == 0 then
  redis.call('ZADD', KEYS[4], ARGV[6], ARGV[5])
end
state.replayedBy = ARGV[2]
state.updatedAt = ARGV[7]
redis.call('HSET', KEYS[1], 'state', cjson.encode(state))
redis.call('ZREM', KEYS[7], ARGV[1])
return {1, ARGV[2]}
