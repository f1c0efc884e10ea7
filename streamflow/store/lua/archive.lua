-- Replaces a finished workflow's log and index by one archive string (its summary, then
-- the compressed log: see _lib.lua), by a compare-and-set on the log length so that no
-- late event is lost.
--
-- KEYS[1] log stream, KEYS[2] idx hash, KEYS[3] archive string, KEYS[4] active set,
-- KEYS[5] wake-due set, KEYS[6] expiry sorted set, KEYS[7] ended hash (its line moves
-- into the archive's summary)
-- ARGV[1] workflow id   ARGV[2] log length the archive holds   ARGV[3] archive bytes
-- ARGV[4] archive wake-up member to remove
--
-- Returns {OK} | {GONE} (already archived) | {CONFLICT} (the log grew) |
-- {RUNNING} (the log has no terminal event).
local log, idx, archive = KEYS[1], KEYS[2], KEYS[3]
if redis.call('EXISTS', archive) == 1 then
  redis.call('ZREM', KEYS[5], ARGV[4])
  return {REPLY_GONE}
end
if redis.call('XLEN', log) ~= tonumber(ARGV[2]) then return {REPLY_CONFLICT} end
if not is_terminal(redis.call('HGET', idx, STATUS)) then return {REPLY_RUNNING} end
redis.call('SET', archive, archive_summary(KEYS[7], ARGV[1]) .. ARGV[3])
schedule_expiry(idx, KEYS[6], ARGV[1])
redis.call('DEL', log, idx)
redis.call('SREM', KEYS[4], ARGV[1])
redis.call('ZREM', KEYS[5], ARGV[4])
return {REPLY_OK}
