-- Records the one outcome of a task attempt (first wins) and, for a success, the
-- BarrierDecremented its definition implies, so that fan-in outcomes never conflict.
-- Schedules a recovery wake-up, removed by the projection that follows (apply.lua).
--
-- KEYS[1] log stream, KEYS[2] idx hash, KEYS[3] archive string, KEYS[4] wake-due set,
-- KEYS[5] out-of-line results hash, KEYS[6] the task message's queue stream
-- ARGV[1] node   ARGV[2] attempt   ARGV[3] encoded TaskSucceeded / TaskFailed
-- ARGV[4] OUTCOME_SUCCESS, OUTCOME_RETRY (a failure to retry) or OUTCOME_FINAL
-- ARGV[5] decrement key ('' none: the outcome decrements no barrier)
-- ARGV[6], ARGV[11] the encoded BarrierDecremented before and after its cause, which is
-- the outcome's sequence number (known only here)
-- ARGV[7] wake-up member   ARGV[8] grace in ms
-- ARGV[9] catch-up: return log entries after this stream id ('' none)   ARGV[10] at most
-- ARGV[12] '1' if the node is a finalizer (a callback, which may run after the end)
-- ARGV[13], ARGV[14] field and encoded result, for a result too large for the log
-- ('' none); written with the outcome, so a rejected outcome leaves nothing behind
-- ARGV[15] quiet check: the count ARGV[16] reaches this many (0: no check)
-- ARGV[16] the count this outcome adds one to ('' none): the id of the barrier ARGV[5]
-- decrements, or the end's (schema.END_COUNT) for a sink of the workflow done (whose end is counted like a
-- barrier)   ARGV[17] the log length from which the history budget may decide something
-- ARGV[18] the task message's id
-- ARGV[19] an index key that refuses the outcome if present ('' none): a signal node's
-- timeout fails it only while its signal has not been received
-- An outcome is quiet when it leaves its count short of ARGV[15] while the log is below
-- ARGV[17]: nothing can follow from it, so the message is acknowledged here and no
-- projection (nor its recovery wake-up) is needed. The counts are kept in the index
-- (COUNT .. ARGV[16]).
--
-- Returns {OK, seq, stream id, entries, the decrement's stream id or '', quiet 0/1} |
-- {STALE} (not the current attempt, outcome exists, workflow ended or gone, ARGV[19]
-- present) | {REBUILD}.
local log, idx, archive, wake_due = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local node, attempt = ARGV[1], ARGV[2]
local n, err = live_length(log, idx, archive)
if err == REPLY_GONE then return {REPLY_STALE} end
if err then return {err} end
local out_key = OUTCOME .. node .. ':' .. attempt
local current = redis.call('HMGET', idx, STATUS, ATTEMPT .. node, out_key)
local open = current[1] == RUNNING or (flag(ARGV[12]) and is_terminal(current[1]))
if not open or current[2] ~= attempt or current[3] then return {REPLY_STALE} end
if ARGV[19] ~= '' and redis.call('HEXISTS', idx, ARGV[19]) == 1 then return {REPLY_STALE} end
n = n + 1
local seq = n
local id = redis.call('XADD', log, 'NOMKSTREAM', '*', EVENT_FIELD, ARGV[3], SEQ_FIELD, n)
redis.call('HSET', idx, out_key, id)
if ARGV[13] ~= '' then redis.call('HSET', KEYS[5], ARGV[13], ARGV[14]) end
if ARGV[4] == OUTCOME_SUCCESS then
  redis.call('HSET', idx, RESULT .. node, id)
elseif ARGV[4] == OUTCOME_FINAL then
  redis.call('HSET', idx, FAILURE .. node, id)
end
local dec_id = ''
local count = nil
if ARGV[5] ~= '' then
  if redis.call('HEXISTS', idx, ARGV[5]) == 0 then
    n = n + 1
    local payload = ARGV[6] .. cmsgpack.pack(seq) .. ARGV[11]
    dec_id = redis.call('XADD', log, 'NOMKSTREAM', '*', EVENT_FIELD, payload, SEQ_FIELD, n)
    redis.call('HSET', idx, ARGV[5], dec_id)
    count = redis.call('HINCRBY', idx, COUNT .. ARGV[16], 1)
  end
elseif ARGV[16] ~= '' then
  count = redis.call('HINCRBY', idx, COUNT .. ARGV[16], 1)
end
local quiet = 0
if count and count < tonumber(ARGV[15]) and n < tonumber(ARGV[17]) then quiet = 1 end
redis.call('HSET', idx, LENGTH, n)
if quiet == 1 then
  redis.call('XACK', KEYS[6], WORKER_GROUP, ARGV[18])
  redis.call('XDEL', KEYS[6], ARGV[18])
else
  redis.call('ZADD', wake_due, now_ms() + tonumber(ARGV[8]), ARGV[7])
end
local entries = {}
if ARGV[9] ~= '' then
  entries = redis.call('XRANGE', log, '(' .. ARGV[9], '+', 'COUNT', tonumber(ARGV[10]))
end
return {REPLY_OK, seq, id, entries, dec_id, quiet}
