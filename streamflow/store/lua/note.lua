-- Appends an event of note (a ChildStarted) to a running workflow's log, at most once by
-- its idempotency key. It is no decision: nothing follows from it, and a fold that does
-- not have it yet is still a prefix of the log.
--
-- KEYS[1] log stream, KEYS[2] idx hash, KEYS[3] archive string
-- ARGV[1] idempotency key   ARGV[2] encoded event
--
-- Returns {OK, n} (appended as n) | {DUP} (the key was taken) | {TERMINAL} (it has
-- ended) | {GONE} (archived, or no log) | {REBUILD}.
local log, idx = KEYS[1], KEYS[2]
local n, err = live_length(log, idx, KEYS[3])
if err then return {err} end
if n == 0 then return {REPLY_GONE} end
if redis.call('HEXISTS', idx, ARGV[1]) == 1 then return {REPLY_DUP} end
if is_terminal(redis.call('HGET', idx, STATUS)) then return {REPLY_TERMINAL} end
n = n + 1
local id = redis.call('XADD', log, 'NOMKSTREAM', '*', EVENT_FIELD, ARGV[2], SEQ_FIELD, n)
redis.call('HSET', idx, ARGV[1], id, LENGTH, n)
return {REPLY_OK, n}
