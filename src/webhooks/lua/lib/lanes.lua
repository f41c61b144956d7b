-- lib/lanes.lua: a lane's order and when its head may be sent (see docs/webhooks-ordering.md).
-- Each delivery hash holds, besides data and state: k, its place in the lane (the event's seq for an
-- event that adds to the conversation; for one reporting a change to an earlier message, and for a
-- replay, the highest place in the lane when it was queued, see lane_after); h, until when (ms) it is held
-- back while an earlier event of its conversation may still be on its way to the queue; t, set once an
-- attempt at it was started (no later-queued event may go in front of it after that). A lane's
-- high-water key holds the highest seq that left the lane (sent or dead-lettered).

-- When the head of `queue` may be claimed: at once when it continues the lane (its place at most one
-- past the high-water mark) or was attempted already; otherwise once its hold is over.
-- Returns false when the lane is empty.
local function lane_head_due(queue, hwkey, dprefix, now)
  local head = redis.call('LINDEX', queue, 0)
  if not head then
    return false
  end
  local f = redis.call('HMGET', dprefix .. head, 'k', 'h', 't')
  local k, h, tried = f[1], f[2], f[3]
  if tried or not k or not h then
    return now
  end
  local hw = tonumber(redis.call('GET', hwkey) or '0') or 0
  if tonumber(k) <= hw + 1 then
    return now
  end
  return math.max(now, tonumber(h))
end

-- The place of an entry queued "after everything queued before it": the place of the lane's last
-- entry, or the high-water mark when higher (or when the lane is empty).
local function lane_after(queue, hwkey, dprefix)
  local highest = tonumber(redis.call('GET', hwkey) or '0') or 0
  local tail = redis.call('LINDEX', queue, -1)
  if tail then
    local key = tonumber(redis.call('HGET', dprefix .. tail, 'k') or '')
    if key and key > highest then
      highest = key
    end
  end
  return highest
end
