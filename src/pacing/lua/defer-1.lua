-- defer-1: keeps a key closed for `delay` ms from now (a Retry-After), never shortening a later slot.
-- uses now.lua
-- KEYS[1]  the key's next free slot (<p>:{<p>:pace:<key>}:r)
-- ARGV[1]  the delay in ms
-- Returns  the wait in whole ms until the key opens again
local now = now_ms()
local untilMs = math.max(now + tonumber(ARGV[1]), tonumber(redis.call('GET', KEYS[1]) or '0'))
redis.call('SET', KEYS[1], string.format('%.3f', untilMs), 'PX', math.ceil(untilMs - now) + 1000)
return math.ceil(untilMs - now)
