-- Ends a workflow of one task in one step, once its task ran quickly without its start
-- recorded (the worker's way for a lone task, as `send()` makes): nothing is appended to
-- the log; it is replaced at once by its archive, which holds the log's two entries (the
-- submission and the enqueue) and the three that complete it: TaskStarted, the outcome
-- and the end. Only while the log is exactly those two entries and the workflow runs;
-- anything else (a start recorded, a cancel, an index being rebuilt) answers CONFLICT,
-- and the worker goes the ordinary way (start, then outcome).
--
-- KEYS[1] log stream, KEYS[2] idx hash, KEYS[3] archive string, KEYS[4] active set,
-- KEYS[5] expiry sorted set, KEYS[6] the task message's queue stream
-- ARGV[1] workflow id   ARGV[2] encoded TaskStarted   ARGV[3] encoded outcome
-- ARGV[4] encoded end   ARGV[5] its status   ARGV[6] ms the task ran
-- ARGV[7] the task message's id   ARGV[8] channel to publish the end on
--
-- Returns {OK} | {CONFLICT}.
local log, idx, archive = KEYS[1], KEYS[2], KEYS[3]
local current = redis.call('HMGET', idx, STATUS, LENGTH, RETENTION, DEFINITION)
if current[1] ~= RUNNING or current[2] ~= '2' then return {REPLY_CONFLICT} end
local entries = redis.call('XRANGE', log, '-', '+')
if #entries ~= 2 then return {REPLY_CONFLICT} end
local flat, base, ms, part = archive_flat(entries)
-- The three new entries get ids after the last one: the start as long before now as
-- the task ran, the outcome and the end now.
local now = now_ms()
local times = {now - tonumber(ARGV[6]), now, now}
for k = 1, 3 do
  if times[k] > ms then ms, part = times[k], 0 else part = part + 1 end
  local i = 2 + k
  flat[3 * i], flat[3 * i + 1], flat[3 * i + 2] = ms - base, part, ARGV[1 + k]
end
local took = math.min(math.max(ms - base, 0), 4294967295)
local summary = struct.pack('>BBI6I4I4', 0x53, SUMMARY_STATUS[ARGV[5]], base, took, 5)
redis.call('SET', archive, summary .. string.char(0x12) .. cmsgpack.pack(flat))
expire_after(KEYS[5], ARGV[1], now, current[3], current[4])
redis.call('DEL', log, idx)
redis.call('SREM', KEYS[4], ARGV[1])
redis.call('XACK', KEYS[6], WORKER_GROUP, ARGV[7])
redis.call('XDEL', KEYS[6], ARGV[7])
redis.call('PUBLISH', ARGV[8], 5)
return {REPLY_OK}
