-- Just before a message taken over from a consumer believed dead runs: if that consumer
-- has beaten again since (it was paused, not dead), the message goes back to it - it
-- still runs the task, and keeps its claim. A message no longer ours (acknowledged once
-- its attempt ended, or taken by another) is not run either.
--
-- KEYS[1] the queue stream   KEYS[2] the shard's beats set
-- ARGV[1] the message id   ARGV[2] its former owner   ARGV[3] the Redis time it was
-- taken over (ms)   ARGV[4] this consumer
--
-- Returns 1 (given back), 2 (no longer ours) - do not run it - or 0 (run it).
local pending = redis.call('XPENDING', KEYS[1], WORKER_GROUP, ARGV[1], ARGV[1], 1)[1]
if not pending or pending[2] ~= ARGV[4] then return 2 end
local beat = redis.call('ZSCORE', KEYS[2], ARGV[2])
if not beat or tonumber(beat) <= tonumber(ARGV[3]) then return 0 end
redis.call('XCLAIM', KEYS[1], WORKER_GROUP, ARGV[2], 0, ARGV[1], 'IDLE', 0, 'JUSTID')
return 1
