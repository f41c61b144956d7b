-- ready-1: lists the claimable conversations of one partition by the Redis clock, so processes with
-- skewed clocks agree on lease expiry.
-- KEYS[1]  partition schedule zset
-- ARGV[1]  at most this many
-- Returns  conversation ids, longest-waiting first.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
