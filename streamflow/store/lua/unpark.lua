-- Puts parked messages back on their queue, oldest first, atomically; an emptied parked
-- set leaves the shard's index (a message parked meanwhile adds it again: same shard,
-- so never lost between the two).
--
-- KEYS[1] parked sorted set   KEYS[2] queue stream   KEYS[3] the shard's parked index
-- ARGV[1] at most this many   ARGV[2] the set's index entry (queue:actor)
--
-- Returns how many went back.
local members = redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)
for _, member in ipairs(members) do
  redis.call('XADD', KEYS[2], '*', MESSAGE_FIELD, member)
  redis.call('ZREM', KEYS[1], member)
end
if redis.call('ZCARD', KEYS[1]) == 0 then redis.call('SREM', KEYS[3], ARGV[2]) end
return #members
