-- Records the one outcome of a task attempt (first wins) and, for a success, the
-- BarrierDecremented its definition implies, so that fan-in outcomes never conflict.
-- Schedules a recovery wake-up, removed by the projection that follows (apply.lua).
--
-- KEYS[1] log stream, KEYS[2] idx hash, KEYS[3] archive string, KEYS[4] wake-due set,
-- KEYS[5] out-of-line results hash
-- ARGV[1] node   ARGV[2] attempt   ARGV[3] encoded TaskSucceeded / TaskFailed
-- ARGV[4] '1' success, '0' failure to retry, 'F' final failure
-- ARGV[5] decrement key ('' none: the outcome decrements no barrier)
-- ARGV[6], ARGV[11] the encoded BarrierDecremented before and after its cause, which is
-- the outcome's sequence number (known only here)
-- ARGV[7] wake-up member   ARGV[8] grace in ms
-- ARGV[9] catch-up: return log entries after this stream id ('' none)   ARGV[10] at most
-- ARGV[12] '1' if the node is a finalizer (a callback, which may run after the end)
-- ARGV[13], ARGV[14] field and encoded result, for a result too large for the log
-- ('' none); written with the outcome, so a rejected outcome leaves nothing behind
--
-- Returns {'OK', seq, stream id, entries, the decrement's stream id or ''} | {'STALE'} (not the current attempt, outcome
-- exists, workflow ended or gone) | {'REBUILD'}.
local log, idx, archive, wake_due = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local node, attempt = ARGV[1], ARGV[2]
local n, err = live_length(log, idx, archive)
if err == 'GONE' then return {'STALE'} end
if err then return {err} end
local out_key = 'out:' .. node .. ':' .. attempt
local current = redis.call('HMGET', idx, 'st', 'a:' .. node, out_key)
local open = current[1] == 'running' or (ARGV[12] == '1' and is_terminal(current[1]))
if not open or current[2] ~= attempt or current[3] then return {'STALE'} end
n = n + 1
local seq = n
local id = redis.call('XADD', log, 'NOMKSTREAM', '*', 'e', ARGV[3], 's', n)
redis.call('HSET', idx, out_key, id)
if ARGV[13] ~= '' then redis.call('HSET', KEYS[5], ARGV[13], ARGV[14]) end
if ARGV[4] == '1' then
  redis.call('HSET', idx, 'ok:' .. node, id)
elseif ARGV[4] == 'F' then
  redis.call('HSET', idx, 'ko:' .. node, id)
end
local dec_id = ''
if ARGV[5] ~= '' and redis.call('HEXISTS', idx, ARGV[5]) == 0 then
  n = n + 1
  local payload = ARGV[6] .. cmsgpack.pack(seq) .. ARGV[11]
  dec_id = redis.call('XADD', log, 'NOMKSTREAM', '*', 'e', payload, 's', n)
  redis.call('HSET', idx, ARGV[5], dec_id)
end
redis.call('HSET', idx, 'n', n)
redis.call('ZADD', wake_due, now_ms() + tonumber(ARGV[8]), ARGV[7])
local entries = {}
if ARGV[9] ~= '' then
  entries = redis.call('XRANGE', log, '(' .. ARGV[9], '+', 'COUNT', tonumber(ARGV[10]))
end
return {'OK', seq, id, entries, dec_id}
