-- Removes a finished workflow whose retention has passed: its archive (or the log of one
-- that ended unreadable, never archived) and out-of-line results, and counts it out of
-- its definition's users (the last one out removes the definition); leaves a tombstone
-- for as long as its retention, so that reads say "expired", not "unknown", and a
-- retried submit of the same id is refused.
--
-- KEYS[1] archive string, KEYS[2] out-of-line results hash, KEYS[3] tombstone,
-- KEYS[4] expiry sorted set, KEYS[5] log stream, KEYS[6] ended hash, KEYS[7] idx hash,
-- KEYS[8] the shard's definitions hash, KEYS[9] the shard's submitted sorted set,
-- KEYS[10] the definition (absent if none is known)
-- ARGV[1] workflow id   ARGV[2] its expiry member   ARGV[3] tombstone lifetime in ms
-- ARGV[4] definition hash ('-': none)
--
-- Returns {OK} | {RUNNING} (a live log of a workflow not ended: never remove it).
if redis.call('EXISTS', KEYS[5]) == 1 and not is_terminal(redis.call('HGET', KEYS[7], STATUS)) then
  redis.call('ZREM', KEYS[4], ARGV[2])
  return {REPLY_RUNNING}
end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[5], KEYS[7])
redis.call('SET', KEYS[3], '1', 'PX', ARGV[3])
redis.call('HDEL', KEYS[6], ARGV[1])
redis.call('ZREM', KEYS[9], ARGV[1])
-- Counted out once: only the call that removes the member.
if redis.call('ZREM', KEYS[4], ARGV[2]) == 1 and KEYS[10] then
  local left = redis.call('HINCRBY', KEYS[8], ARGV[4], -1)
  if left <= 0 then
    redis.call('HDEL', KEYS[8], ARGV[4])
    -- Below zero: counted in by no script (an older version): others may still use it.
    if left == 0 then redis.call('DEL', KEYS[10]) end
  end
end
return {REPLY_OK}
