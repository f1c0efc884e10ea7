-- Sets aside a message of a paused actor (or queue): out of its queue, into the parked
-- set unpark.lua puts it back from, atomically. A message no longer pending in the
-- workers' group (acknowledged meanwhile) is left alone.
--
-- KEYS[1] queue stream   KEYS[2] parked sorted set   KEYS[3] the shard's parked index
-- ARGV[1] message id   ARGV[2] the message   ARGV[3] its index entry (queue:actor)
--
-- Returns 1 if parked, 0 if it was no longer pending.
if redis.call('XACK', KEYS[1], WORKER_GROUP, ARGV[1]) == 0 then return 0 end
redis.call('ZADD', KEYS[2], now_ms(), ARGV[2])
redis.call('SADD', KEYS[3], ARGV[3])
redis.call('XDEL', KEYS[1], ARGV[1])
return 1
