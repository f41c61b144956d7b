-- now.lua (shared): the Redis server's clock in ms, so every process paces by one clock.
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
end
