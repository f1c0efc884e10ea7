-- Decides what to do with one delivered task message (DESIGN §8) and, for RUN, records
-- TaskStarted and returns the task's arguments.
--
-- KEYS[1] log stream, KEYS[2] idx hash, KEYS[3] archive string, KEYS[4] the message's
-- queue stream
-- ARGV[1] node   ARGV[2] attempt   ARGV[3] queue message id   ARGV[4] encoded TaskStarted
-- ARGV[5] '1' if the node is a finalizer (a callback, which may run after the end)
-- ARGV[6] catch-up: for RUN, also return log entries after this stream id ('' none)
-- ARGV[7] at most this many   ARGV[8] the TaskStarted encoded with takeover=True
--
-- Returns {RUN, seq, deliveries, arguments or false, entries, retry base} - first start of this
-- attempt, the same message redelivered, or a takeover (the message that started the
-- attempt is pending nowhere: it was lost before an outcome, and this one was re-sent);
-- (the retry base: attempts the node had before its workflow was last resumed);
-- {DUP} - another message owns this attempt and is still pending;
-- {STALE} - superseded, never enqueued, workflow ended or gone;
-- {ALREADY_DONE} - the attempt has its outcome (re-project, then acknowledge);
-- {REBUILD} - the index does not match the log.
local log, idx, archive = KEYS[1], KEYS[2], KEYS[3]
local node, attempt, msg_id = ARGV[1], ARGV[2], ARGV[3]
local n, err = live_length(log, idx, archive)
if err == REPLY_GONE then return {REPLY_STALE} end
if err then return {err} end
if n == 0 then return {REPLY_STALE} end
local current = redis.call('HMGET', idx, STATUS, ATTEMPT .. node, OWNER .. node, OUTCOME .. node .. ':' .. attempt, RETRY_BASE .. node)
local open = current[1] == RUNNING or (flag(ARGV[5]) and is_terminal(current[1]))
if not open or current[2] ~= attempt then return {REPLY_STALE} end
if current[4] then return {REPLY_ALREADY_DONE} end
local takeover = false
if current[3] and current[3] ~= msg_id then
  if #redis.call('XPENDING', KEYS[4], WORKER_GROUP, current[3], current[3], 1) > 0 then
    return {REPLY_DUP}
  end
  takeover = true
end
n = n + 1
redis.call('XADD', log, 'NOMKSTREAM', '*', EVENT_FIELD, takeover and ARGV[8] or ARGV[4], SEQ_FIELD, n)
if takeover or not current[3] then redis.call('HSET', idx, OWNER .. node, msg_id) end
local deliveries = redis.call('HINCRBY', idx, DELIVERIES .. node, 1)
redis.call('HSET', idx, LENGTH, n)
local entries = {}
if ARGV[6] ~= '' then
  entries = redis.call('XRANGE', log, '(' .. ARGV[6], '+', 'COUNT', tonumber(ARGV[7]))
end
return {REPLY_RUN, n, deliveries, redis.call('HGET', idx, ARGS .. node), entries, current[5] or 0}
