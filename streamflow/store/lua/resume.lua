-- Resumes a failed workflow: reopens it (from its archive, if it was archived: the log
-- and the index restored as they were), then appends WorkflowResumed and what it
-- decides (the re-run nodes' enqueues) like the apply script.
--
-- KEYS[1] log stream, KEYS[2] idx hash, KEYS[3] archive string, KEYS[4] active set,
-- KEYS[5] expiry sorted set, KEYS[6] ended hash, KEYS[7..] queue streams, each followed
-- by its delayed set, named by decisions
-- ARGV[1] workflow id   ARGV[2] SHA-1 of the archive read ('' : the log was live)
-- ARGV[3] last decision seq the caller folded   ARGV[4], ARGV[5] sequence number and
-- stream id of the last event it folded (live log: it must still be the last)
-- ARGV[6] the workflow's member of the expiry set ('' none)
-- ARGV[7] r, then r triples: stream id, encoded event, sequence number (the archived
-- log, restored as it was; r = 0 for a live log)
-- then f, then f index field-value pairs (the index of the restored log)
-- then m, then m pairs: node re-run, the attempts it had (its retries count from there)
-- then k, then 8k decision slots (see append_decisions); the first is WorkflowResumed
--
-- Returns {OK, n, d, 0, ended} | {CONFLICT, -1} (the workflow changed since it was read:
-- read it again) | {TERMINAL} (it is not failed) | {REBUILD} | {GONE}.
local log, idx, archive = KEYS[1], KEYS[2], KEYS[3]
local wf = ARGV[1]
local pos = 7
local r = tonumber(ARGV[pos])
if ARGV[2] ~= '' then
  local stored = redis.call('GET', archive)
  if not stored or redis.sha1hex(stored) ~= ARGV[2] then return {REPLY_CONFLICT, -1} end
  if redis.call('EXISTS', log) == 1 then return {REPLY_CONFLICT, -1} end
  for i = 0, r - 1 do
    local b = pos + 1 + i * 3
    redis.call('XADD', log, ARGV[b], EVENT_FIELD, ARGV[b + 1], SEQ_FIELD, ARGV[b + 2])
  end
  pos = pos + 1 + 3 * r
  local f = tonumber(ARGV[pos])
  local fields = {}
  for i = 1, 2 * f do fields[i] = ARGV[pos + i] end
  redis.call('DEL', idx)
  hset_all(idx, fields)
  pos = pos + 1 + 2 * f
  redis.call('DEL', archive)
else
  local n, err = live_length(log, idx, archive)
  if err then return {err} end
  if redis.call('HGET', idx, STATUS) ~= FAILED then return {REPLY_TERMINAL} end
  if tonumber(redis.call('HGET', idx, LAST_DECISION) or '0') > tonumber(ARGV[3]) then
    return {REPLY_CONFLICT, -1}
  end
  local last = redis.call('XREVRANGE', log, '+', '-', 'COUNT', 1)[1]
  if not last or last[1] ~= ARGV[5] or last[2][4] ~= ARGV[4] then return {REPLY_CONFLICT, -1} end
  pos = pos + 1
  pos = pos + 1 + 2 * tonumber(ARGV[pos])
end
if ARGV[6] ~= '' then redis.call('ZREM', KEYS[5], ARGV[6]) end
redis.call('HSET', idx, STATUS, RUNNING)
redis.call('HDEL', idx, END)
redis.call('SADD', KEYS[4], wf)
redis.call('HDEL', KEYS[6], wf)
local m = tonumber(ARGV[pos])
for i = 0, m - 1 do
  local node, base = ARGV[pos + 1 + 2 * i], ARGV[pos + 2 + 2 * i]
  redis.call('HDEL', idx, FAILURE .. node)
  redis.call('HSET', idx, RETRY_BASE .. node, base)
end
pos = pos + 1 + 2 * m
local n = tonumber(redis.call('HGET', idx, LENGTH) or '0')
local d = tonumber(redis.call('HGET', idx, LAST_DECISION) or '0')
local ended
n, d, ended = append_decisions(log, idx, KEYS[4], KEYS[6], wf, pos + 1, tonumber(ARGV[pos]), n, d, 0, 6, false)
return {REPLY_OK, n, d, 0, ended and 1 or 0}
