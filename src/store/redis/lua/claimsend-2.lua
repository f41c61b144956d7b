-- claimsend-2: the right to hand one message to the provider, granted exactly once.
-- KEYS[1]  conversation hash
-- KEYS[2]  messages hash
-- ARGV[1]  message id
-- Returns  1 for the first caller, 0 afterwards or when the conversation does not exist.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
return redis.call('HSETNX', KEYS[2], ARGV[1] .. ':s', '1')
