-- Moves due members of a delayed set (delayed tasks, retries, recovery wake-ups) into
-- their stream, atomically.
--
-- KEYS[1] delayed sorted set (score = due time in ms)   KEYS[2] target stream
-- ARGV[1] at most this many per call
--
-- Returns {moved, next due time in ms or -1}.
local now = now_ms()
local due = redis.call('ZRANGE', KEYS[1], '-inf', now, 'BYSCORE', 'LIMIT', 0, tonumber(ARGV[1]))
for _, member in ipairs(due) do
  redis.call('XADD', KEYS[2], '*', MESSAGE_FIELD, member)
  redis.call('ZREM', KEYS[1], member)
end
local nxt = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if nxt[2] then return {#due, tonumber(nxt[2])} end
return {#due, -1}
