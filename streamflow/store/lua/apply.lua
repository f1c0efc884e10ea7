-- Applies the closure of decisions for one cause, adds their queue messages, and
-- acknowledges the trigger (the task message whose outcome caused them) in the last chunk.
--
-- KEYS[1] log stream, KEYS[2] idx hash, KEYS[3] archive string, KEYS[4] active set,
-- KEYS[5] wake-due sorted set, KEYS[6] trigger's queue stream (any key if none),
-- KEYS[7] expiry sorted set, KEYS[8] ended hash,
-- KEYS[9..] queue streams, each followed by its delayed set, named by decisions
-- ARGV[1] workflow id   ARGV[2] last decision seq the caller folded (CONFLICT if newer)
-- ARGV[3] trigger message id ('' none)   ARGV[4] wake-up member to remove ('' none)
-- ARGV[5] channel to publish on when the workflow ends   ARGV[6] archive grace in ms
-- ARGV[7] archive wake-up member   ARGV[8] decision count k   ARGV[9] log size limit
-- ARGV[10] '1': once these decisions are in, the workflow has ended and no callback may
-- still run - archive it   ARGV[11], ARGV[12] sequence number and stream id of the last
-- event the caller folded (its fold must be a prefix of this log: after a failover or a
-- lost write it may not be; then CONFLICT -1; a batch holding a signal must come right
-- after that event, else {CONFLICT, -4, n, stream id of event n}: where the log ends)
-- ARGV[13], ARGV[14], ARGV[15] guard ('' none): decisions made ahead of their cause,
-- sent in the same pipeline as the outcome script; they hold only if that outcome was
-- recorded under index key ARGV[13] at sequence number ARGV[14] with the encoded event
-- whose SHA-1 is ARGV[15] (another run of the same attempt may have recorded its own
-- first); else CONFLICT -2, nothing done, not even the acknowledgement. Their due times
-- are then relative to the outcome's time.
-- ARGV[16..] 8 slots per decision (see append_decisions); a decided outcome whose
-- idempotency key is taken already (a worker recorded the attempt's outcome) makes the
-- call CONFLICT -3, nothing done
--
-- Once the workflow has ended only finalizer enqueues are accepted.
--
-- A finished workflow (ARGV[10]) is archived at once if its log holds at most ARGV[9]
-- entries (uncompressed; see codec.py, flag 0x02); a longer log is left to the caller.
--
-- Returns {OK, n, d, archived, ended by this call} | {CONFLICT, d or -1 or -2 or -3} |
-- {CONFLICT, -4, n, id} |
-- {REBUILD} | {GONE} | {TERMINAL}; GONE and TERMINAL still acknowledge the trigger
-- (nothing more can follow from it).
local log, idx, archive, active, wake_due = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local function ack()
  if ARGV[3] ~= '' then
    redis.call('XACK', KEYS[6], WORKER_GROUP, ARGV[3])
    redis.call('XDEL', KEYS[6], ARGV[3])
  end
  if ARGV[4] ~= '' then redis.call('ZREM', wake_due, ARGV[4]) end
end
local n, err = live_length(log, idx, archive)
local due_base = 0
if ARGV[13] ~= '' then
  -- Checked first: a speculation whose outcome was not recorded must not even acknowledge.
  local gid = (not err) and redis.call('HGET', idx, ARGV[13])
  local g = gid and redis.call('XRANGE', log, gid, gid)[1]
  if not g or g[2][4] ~= ARGV[14] or redis.sha1hex(g[2][2]) ~= ARGV[15] then
    return {REPLY_CONFLICT, -2}
  end
  due_base = tonumber(string.match(gid, '^(%d+)'))
end
if err == REPLY_GONE then ack() return {err} end
if err then return {err} end
if is_terminal(redis.call('HGET', idx, STATUS)) then
  for i = 0, tonumber(ARGV[8]) - 1 do
    if ARGV[16 + i * 8] ~= DECISION_ENQUEUE_FINALIZER then ack() return {REPLY_TERMINAL} end
  end
end
local d = tonumber(redis.call('HGET', idx, LAST_DECISION) or '0')
if d > tonumber(ARGV[2]) then return {REPLY_CONFLICT, d} end
local minted = false
for i = 0, tonumber(ARGV[8]) - 1 do
  -- A decided outcome (a signal node's success) holds only if no worker recorded one.
  local b = 16 + i * 8
  if ARGV[b] == DECISION_OUTCOME and redis.call('HEXISTS', idx, ARGV[b + 1]) == 1 then
    return {REPLY_CONFLICT, -3}
  end
  minted = minted or ARGV[b] == DECISION_SIGNAL
end
if ARGV[12] ~= '0-0' then
  local last = redis.call('XRANGE', log, ARGV[12], ARGV[12])[1]
  if not last or last[2][4] ~= ARGV[11] then return {REPLY_CONFLICT, -1} end
  -- A signal's decisions name it by the sequence number the caller gave it, the one
  -- after its fold: an event that came since (a TaskStarted, an outcome, a
  -- ChildStarted; no decision, or LAST_DECISION would have said so) moves it. The
  -- caller is told where the log ends, to number them again.
  if minted and n ~= tonumber(ARGV[11]) then
    local tip = redis.call('XREVRANGE', log, '+', '-', 'COUNT', 1)[1]
    return {REPLY_CONFLICT, -4, n, tip[1]}
  end
end
local ended
n, d, ended = append_decisions(log, idx, active, KEYS[8], ARGV[1], 16, tonumber(ARGV[8]), n, d, due_base, 8, false)
ack()
local archived = 0
if ended then redis.call('PUBLISH', ARGV[5], n) end
if flag(ARGV[10]) and is_terminal(redis.call('HGET', idx, STATUS)) then
  if n <= tonumber(ARGV[9]) then
    archive_log(log, idx, archive, active, KEYS[7], KEYS[8], ARGV[1])
    archived = 1
  else
    redis.call('ZADD', wake_due, now_ms() + tonumber(ARGV[6]), ARGV[7])
  end
end
return {REPLY_OK, n, d, archived, ended and 1 or 0}
