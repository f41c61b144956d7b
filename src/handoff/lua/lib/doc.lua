-- The conversation-record check the handoff steps share. A script that has the line
-- "-- uses lib/doc.lua" gets this file put in front of it when it is loaded.

-- True when the conversation's doc is still the one the caller decided on (it exists, unchanged).
local function doc_is(conv, expected)
  return redis.call('HGET', conv, 'doc') == expected
end
