-- Renews the leases of messages this consumer still owns: a message another consumer
-- has claimed meanwhile (its lease ran out) is left alone, never taken back.
--
-- KEYS[1] queue stream
-- ARGV[1] consumer group   ARGV[2] this consumer   ARGV[3..] message ids
--
-- Returns how many were renewed.
local renewed = 0
for i = 3, #ARGV do
  local pending = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1)[1]
  if pending and pending[2] == ARGV[2] then
    -- JUSTID: resets the idle time without counting a delivery.
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'JUSTID')
    renewed = renewed + 1
  end
end
return renewed
