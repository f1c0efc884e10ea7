-- A schedule's tick was submitted (or passed over by its overlap policy): no longer
-- pending, and counted.
--
-- KEYS[1] the schedule's hash   KEYS[2] its pending ticks
-- ARGV[1] the tick   ARGV[2] the workflow it submitted ('' none: passed over)
-- ARGV[3] the tick's time in ms ('' a manual trigger)
-- ARGV[4] with no workflow, the count to add one to ('overlapped' or 'failed')
--
-- Returns 1 if it was pending, 0 if another process finished it first.
if redis.call('ZREM', KEYS[2], ARGV[1]) == 0 then
  return 0
end
if ARGV[2] == '' then
  redis.call('HINCRBY', KEYS[1], ARGV[4], 1)
  return 1
end
redis.call('HINCRBY', KEYS[1], 'fired', 1)
redis.call('HSET', KEYS[1], 'last_workflow_id', ARGV[2], 'last_fired_ms', now_ms())
if ARGV[3] ~= '' then
  redis.call('HSET', KEYS[1], 'last_tick_ms', ARGV[3])
end
return 1
