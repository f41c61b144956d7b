-- enqueue-6: stores a delivery, logs it and puts it in its lane by its place (see lib/lanes.lua):
-- behind every entry placed lower or equal, in front of those placed higher, but never in front of a
-- head already attempted or leased. An event placed 'a' (a change to an earlier message, or a replay)
-- goes after everything queued before it. Log entries past the retention horizon are trimmed on the way.
-- When the entry becomes the lane's head, the lane's schedule is set to when that head may be sent.
-- KEYS[1]  delivery hash            KEYS[2]  lane list
-- KEYS[3]  endpoint schedule zset   KEYS[4]  endpoint log zset
-- KEYS[5]  endpoint lease hash      KEYS[6]  lane high-water key
-- ARGV[1]  delivery id              ARGV[2]  data JSON
-- ARGV[3]  state JSON               ARGV[4]  lane name
-- ARGV[5]  now (ms)                 ARGV[6]  log floor: entries below this id are past the horizon
-- ARGV[7]  place in the lane: the seq, or 'a' for after everything queued before it
-- ARGV[8]  held back until (ms) while it does not continue the lane
-- ARGV[9]  key prefix of the endpoint's delivery hashes (same slot)
-- Returns  the lane length after the insert.
-- uses lib/lanes.lua
local id, lane, now, dprefix = ARGV[1], ARGV[4], tonumber(ARGV[5]), ARGV[9]
local length = redis.call('LLEN', KEYS[2])
local place = ARGV[7]
if place == 'a' then
  place = tostring(lane_after(KEYS[2], KEYS[6], dprefix))
end
redis.call('HSET', KEYS[1], 'data', ARGV[2], 'state', ARGV[3], 'k', place, 'h', ARGV[8])
redis.call('ZREMRANGEBYLEX', KEYS[4], '-', '(' .. ARGV[6])
redis.call('ZADD', KEYS[4], 0, id)
-- How many entries stay in front of the new one; walked from the back, where a new event belongs.
local before = length
if length > 0 then
  local seq = tonumber(place)
  local pinned = redis.call('HEXISTS', KEYS[5], lane) == 1
  local steps = 0
  while before > 0 and steps < 10000 do
    -- Indexed from the back: a list is walked from the end its index counts from.
    local other = redis.call('LINDEX', KEYS[2], before - 1 - length)
    local f = redis.call('HMGET', dprefix .. other, 'k', 't')
    local key = tonumber(f[1] or '')
    if key == nil or key <= seq then
      break
    end
    if before == 1 and (pinned or f[2]) then
      break
    end
    before = before - 1
    steps = steps + 1
  end
end
if before == length then
  redis.call('RPUSH', KEYS[2], id)
elseif before == 0 then
  redis.call('LPUSH', KEYS[2], id)
else
  redis.call('LINSERT', KEYS[2], 'AFTER', redis.call('LINDEX', KEYS[2], before - 1 - length), id)
end
if before == 0 and redis.call('HEXISTS', KEYS[5], lane) == 0 then
  -- A new head (of an empty lane, or in front of one not yet attempted): schedule it afresh.
  redis.call('ZADD', KEYS[3], lane_head_due(KEYS[2], KEYS[6], dprefix, now), lane)
end
return length + 1
