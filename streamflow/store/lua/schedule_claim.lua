-- A look at a schedule claims the ticks it found due: the cursor moves from what the
-- look read to the last tick dealt with, and the ticks to submit are kept as pending
-- (with a lease) until they are, so a process that dies before submitting them leaves
-- them to another. Another process that moved the cursor first wins; this look's ticks
-- are then not claimed (they were, by it).
--
-- KEYS[1] the schedule's hash   KEYS[2] its pending ticks (sorted set: member -> lease end)
-- ARGV[1] the cursor the look read   ARGV[2] the new cursor   ARGV[3] ticks skipped
-- ARGV[4] lease ms   ARGV[5..] the ticks to submit
--
-- Returns 1 if claimed, 0 if the cursor had moved.
if redis.call('HGET', KEYS[1], 'cursor_ms') ~= ARGV[1] then
  return 0
end
redis.call('HSET', KEYS[1], 'cursor_ms', ARGV[2])
if tonumber(ARGV[3]) > 0 then
  redis.call('HINCRBY', KEYS[1], 'skipped', ARGV[3])
end
local lease_end = now_ms() + tonumber(ARGV[4])
for i = 5, #ARGV do
  redis.call('ZADD', KEYS[2], lease_end, ARGV[i])
end
return 1
