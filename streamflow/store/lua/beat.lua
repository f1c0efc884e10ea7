-- A worker process's heartbeat: its consumer name scored by the Redis time, so that
-- others tell a dead consumer from a live one in one clock. Beats older than ARGV[2] ms
-- (consumers long gone) are dropped on the way.
--
-- KEYS[1] the shard's beats sorted set
-- ARGV[1] this consumer   ARGV[2] forget beats older than this many ms ('' keep all)
-- ARGV[3] '1': leave instead (the worker stops)
--
-- Returns the Redis time of the beat, in ms.
local now = now_ms()
if flag(ARGV[3]) then
  redis.call('ZREM', KEYS[1], ARGV[1])
  return now
end
redis.call('ZADD', KEYS[1], now, ARGV[1])
if ARGV[2] ~= '' then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. (now - tonumber(ARGV[2])))
end
return now
