-- claim-2: leases up to N lanes whose head is due: each lane's schedule moves to the lease expiry
-- (a process that dies mid-attempt thereby hands the lane back) and its fencing token is recorded.
-- KEYS[1]  endpoint schedule zset   KEYS[2]  endpoint lease hash
-- ARGV[1]  now (ms)                 ARGV[2]  lease expiry (ms)
-- ARGV[3]  most lanes to claim      ARGV[4]  token prefix (unique per call)
-- Returns  { earliest schedule score after the claim or false, lane1, token1, lane2, token2, ... }
local lanes = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
local out = { false }
for i, lane in ipairs(lanes) do
  local token = ARGV[4] .. i
  redis.call('ZADD', KEYS[1], ARGV[2], lane)
  redis.call('HSET', KEYS[2], lane, token)
  out[#out + 1] = lane
  out[#out + 1] = token
end
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if first[2] then
  out[1] = first[2]
end
return out
