-- Removes a finished workflow whose retention has passed: its archive (or the log of one
-- that ended unreadable, never archived) and out-of-line results; leaves a tombstone
-- (with a TTL) so that reads say "expired", not "unknown", and a retried submit of the
-- same id is refused.
--
-- KEYS[1] archive string, KEYS[2] out-of-line results hash, KEYS[3] tombstone,
-- KEYS[4] expiry sorted set, KEYS[5] log stream, KEYS[6] ended hash, KEYS[7] idx hash
-- ARGV[1] workflow id   ARGV[2] tombstone lifetime in ms
--
-- Returns {OK} | {RUNNING} (a live log of a workflow not ended: never remove it).
if redis.call('EXISTS', KEYS[5]) == 1 and not is_terminal(redis.call('HGET', KEYS[7], STATUS)) then
  redis.call('ZREM', KEYS[4], ARGV[1])
  return {REPLY_RUNNING}
end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[5], KEYS[7])
redis.call('SET', KEYS[3], '1', 'PX', ARGV[2])
redis.call('ZREM', KEYS[4], ARGV[1])
redis.call('HDEL', KEYS[6], ARGV[1])
return {REPLY_OK}
