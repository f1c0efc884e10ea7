-- Take a schedule's pending ticks whose lease is over (manual triggers are pending from
-- the start; claimed ticks, once the process that claimed them is presumed dead): each
-- taken gets a new lease, so two processes never take one at once.
--
-- KEYS[1] its pending ticks (sorted set: member -> lease end)
-- ARGV[1] lease ms   ARGV[2] at most this many
--
-- Returns the ticks taken.
local now = now_ms()
local due = redis.call('ZRANGE', KEYS[1], '-inf', now, 'BYSCORE', 'LIMIT', 0, tonumber(ARGV[2]))
for _, member in ipairs(due) do
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[1]), member)
end
return due
