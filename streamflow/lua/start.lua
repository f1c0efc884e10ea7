-- Decides what to do with one delivered task message (DESIGN §8) and, for RUN, records
-- TaskStarted and returns the task's arguments.
--
-- KEYS[1] log stream, KEYS[2] idx hash, KEYS[3] archive string
-- ARGV[1] node   ARGV[2] attempt   ARGV[3] queue message id   ARGV[4] encoded TaskStarted
-- ARGV[5] '1' if the node is a finalizer (a callback, which may run after the end)
-- ARGV[6] catch-up: for RUN, also return log entries after this stream id ('' none)
-- ARGV[7] at most this many
--
-- Returns {'RUN', seq, deliveries, arguments or false, entries} - first start of this
-- attempt, or the same message redelivered; {'DUP'} - another message owns this attempt;
-- {'STALE'} - superseded, never enqueued, workflow ended or gone;
-- {'ALREADY_DONE', seq} - the attempt has its outcome (re-project, then acknowledge);
-- {'REBUILD'} - the index does not match the log.
local log, idx, archive = KEYS[1], KEYS[2], KEYS[3]
local node, attempt, msg_id = ARGV[1], ARGV[2], ARGV[3]
local n, err = live_length(log, idx, archive)
if err == 'GONE' then return {'STALE'} end
if err then return {err} end
if n == 0 then return {'STALE'} end
local current = redis.call('HMGET', idx, 'st', 'a:' .. node, 'm:' .. node, 'out:' .. node .. ':' .. attempt)
local open = current[1] == 'running' or (ARGV[5] == '1' and is_terminal(current[1]))
if not open or current[2] ~= attempt then return {'STALE'} end
if current[4] then return {'ALREADY_DONE'} end
if current[3] and current[3] ~= msg_id then return {'DUP'} end
n = n + 1
redis.call('XADD', log, 'NOMKSTREAM', '*', 'e', ARGV[4], 's', n)
if not current[3] then redis.call('HSET', idx, 'm:' .. node, msg_id) end
local deliveries = redis.call('HINCRBY', idx, 'c:' .. node, 1)
redis.call('HSET', idx, 'n', n)
local entries = {}
if ARGV[6] ~= '' then
  entries = redis.call('XRANGE', log, '(' .. ARGV[6], '+', 'COUNT', tonumber(ARGV[7]))
end
return {'RUN', n, deliveries, redis.call('HGET', idx, 'x:' .. node), entries}
