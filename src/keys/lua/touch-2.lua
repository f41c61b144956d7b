-- touch-2: records when a managed API key was last used, only while the key exists, so a use racing
-- its revocation leaves nothing behind. Both keys share the room's hash tag (one Cluster slot).
-- KEYS[1]  the key's record (<p>:{<p>:key}:k:<id>)
-- KEYS[2]  the last-use hash (<p>:{<p>:key}:used)
-- ARGV[1]  the key id
-- ARGV[2]  the time of the use (ISO 8601)
-- Returns  1 when recorded, 0 when the key is gone.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return 1
