-- due-1: claims the idle release timers of one partition that are due by the Redis clock (so
-- processes with skewed clocks agree), moving each ARGV[2] ms later: the release clears it, and a
-- claimer that dies first leaves it to whoever polls next.
-- KEYS[1]  the partition's handoff due zset
-- ARGV[1]  at most this many          ARGV[2]  retry delay (ms)
-- Returns  the conversation ids claimed.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
for _, id in ipairs(due) do
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), id)
end
return due
