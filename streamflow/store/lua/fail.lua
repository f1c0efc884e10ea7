-- Ends a workflow that cannot go on as failed: its log or its definition cannot be read,
-- so no fold decides for it. Appends the WorkflowFailed given (its error names what was
-- unreadable) after the log's last entry, marks the index, and schedules the workflow's
-- removal after its retention like an archived one (it is never archived: the log stays
-- as it is, for an operator to look at).
--
-- KEYS[1] log stream, KEYS[2] idx hash, KEYS[3] archive string, KEYS[4] active set,
-- KEYS[5] ended hash, KEYS[6] expiry sorted set
-- ARGV[1] workflow id   ARGV[2] encoded WorkflowFailed   ARGV[3] channel to publish on
--
-- Returns {OK, n} | {TERMINAL} (it had ended) | {GONE} (archived, or no log).
local log, idx, archive = KEYS[1], KEYS[2], KEYS[3]
if redis.call('EXISTS', archive) == 1 then return {REPLY_GONE} end
if is_terminal(redis.call('HGET', idx, STATUS)) then return {REPLY_TERMINAL} end
local n = redis.call('XLEN', log)
if n == 0 then return {REPLY_GONE} end
n = n + 1
local id = redis.call('XADD', log, 'NOMKSTREAM', '*', EVENT_FIELD, ARGV[2], SEQ_FIELD, n)
redis.call('HSET', idx, LENGTH, n, LAST_DECISION, n, STATUS, FAILED, END, id)
redis.call('SREM', KEYS[4], ARGV[1])
local now = now_ms()
local submitted = string.match(redis.call('HGET', idx, SUBMITTED) or '0', '^(%d+)')
redis.call('HSET', KEYS[5], ARGV[1], FAILED .. ' ' .. submitted .. ' ' .. now .. ' ' .. n)
schedule_expiry(idx, KEYS[6], ARGV[1])
redis.call('PUBLISH', ARGV[3], n)
return {REPLY_OK, n}
