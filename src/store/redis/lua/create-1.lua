-- create-1: creates a conversation unless it already exists (idempotent, so a half-done
-- resolveConversation heals on the next call).
-- KEYS[1]  conversation hash
-- ARGV[1]  conversation doc JSON (the fields no script changes)
-- ARGV[2]  creation time ISO (also updatedAt and sessionStartedAt)
-- ARGV[3]  id of the conversation's first session
-- Returns  1 when created, 0 when it already existed.
-- The conversation starts in the current master's epoch (the seq fence of lib/messages.lua).
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
local epoch = string.match(redis.call('INFO', 'replication'), 'master_replid:(%w+)') or ''
redis.call('HSET', KEYS[1], 'doc', ARGV[1], 'updatedAt', ARGV[2], 'sessionId', ARGV[3],
  'sessionStartedAt', ARGV[2], 'sessionState', '{}', 'seq', 0, 'epoch', epoch)
return 1
