-- linkdoc-2: a conversation's contact link and the contact document it names, in one round trip
-- (the bot's contact, read for every message the bot answers).
-- KEYS[1]  the conversation-link hash (`conv`)
-- KEYS[2]  the contacts hash (`c`)
-- ARGV[1]  conversation id
-- ARGV[2]  contact id to read when the conversation has no link ('' for none)
-- Returns  {link JSON or false, contact JSON or false}; the contact read is the link's `contactId`
--          when there is a link, else ARGV[2].
local link = redis.call('HGET', KEYS[1], ARGV[1])
local id = ARGV[2]
if link then
  local ok, parsed = pcall(cjson.decode, link)
  if ok and type(parsed) == 'table' and type(parsed.contactId) == 'string' then id = parsed.contactId end
end
local doc = false
if id ~= '' then doc = redis.call('HGET', KEYS[2], id) end
return {link, doc}
