-- Removes a finished workflow whose retention has passed: its archive and out-of-line
-- results; leaves a tombstone (with a TTL) so that reads say "expired", not "unknown",
-- and a retried submit of the same id is refused.
--
-- KEYS[1] archive string, KEYS[2] out-of-line results hash, KEYS[3] tombstone,
-- KEYS[4] expiry sorted set, KEYS[5] log stream, KEYS[6] ended hash
-- ARGV[1] workflow id   ARGV[2] tombstone lifetime in ms
--
-- Returns {OK} | {RUNNING} (a live log exists: never remove a running workflow).
if redis.call('EXISTS', KEYS[5]) == 1 then
  redis.call('ZREM', KEYS[4], ARGV[1])
  return {REPLY_RUNNING}
end
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('SET', KEYS[3], '1', 'PX', ARGV[2])
redis.call('ZREM', KEYS[4], ARGV[1])
redis.call('HDEL', KEYS[6], ARGV[1])
return {REPLY_OK}
