-- Renews the leases of messages this consumer still owns (idle time 0), or hands them
-- back (a large idle time: any worker's next claim takes them). A message another
-- consumer has claimed meanwhile (its lease ran out) is left alone, never taken back.
--
-- KEYS[1] queue stream (consumer group WORKER_GROUP)
-- ARGV[1] this consumer   ARGV[2] idle time to set, in ms   ARGV[3..] message ids
--
-- Returns how many were renewed.
local renewed = 0
for i = 3, #ARGV do
  local pending = redis.call('XPENDING', KEYS[1], WORKER_GROUP, ARGV[i], ARGV[i], 1)[1]
  if pending and pending[2] == ARGV[1] then
    -- JUSTID: resets the idle time without counting a delivery.
    redis.call('XCLAIM', KEYS[1], WORKER_GROUP, ARGV[1], 0, ARGV[i], 'IDLE', ARGV[2], 'JUSTID')
    renewed = renewed + 1
  end
end
return renewed
