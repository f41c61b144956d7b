-- reserve-1: reserves a key's next send slot, `interval` after the slot reserved before it.
-- uses now.lua
-- KEYS[1]  the key's next free slot (<p>:{<p>:pace:<key>}:r), ms on the Redis clock
-- ARGV[1]  the interval in ms (may be fractional: 80 a second is 12.5)
-- Returns  the wait in whole ms until the reserved slot (0 when it is free now)
local now = now_ms()
local interval = tonumber(ARGV[1])
local slot = math.max(now, tonumber(redis.call('GET', KEYS[1]) or '0'))
local after = slot + interval
-- The key lives until its slot has passed, so idle keys leave nothing behind.
redis.call('SET', KEYS[1], string.format('%.3f', after), 'PX', math.ceil(after - now) + 1000)
return math.ceil(slot - now)
