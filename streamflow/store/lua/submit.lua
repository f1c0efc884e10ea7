-- Creates a workflow: appends WorkflowSubmitted and the roots' TaskEnqueued events,
-- adds their queue messages and registers the workflow as active. Idempotent: a retried
-- submit of the same id answers EXISTS and writes nothing.
--
-- KEYS[1] log stream, KEYS[2] idx hash, KEYS[3] archive string, KEYS[4] active set,
-- KEYS[5] wake-due sorted set, KEYS[6] expiry sorted set, KEYS[7] tombstone,
-- KEYS[8] ended hash, KEYS[9] the definition (it must be stored: a Redis that lost its
-- data must not get a workflow no worker can read), KEYS[10] the shard's definitions
-- hash (the new workflow is counted in), KEYS[11] the shard's submitted sorted set (for
-- listings), KEYS[12..] queue streams, each followed by its delayed set, named by
-- decisions
-- ARGV[1] workflow id        ARGV[2] encoded WorkflowSubmitted   ARGV[3] definition hash
-- ARGV[4] recovery wake-up member ('' none: every decision is in this call)
-- ARGV[5] recovery grace in ms      ARGV[6] channel to publish on if it ends at once
-- ARGV[7] retention in ms (how long it is kept once finished)
-- ARGV[8] the definition's bytes, to store if it is not ('': the caller knows it is)
-- ARGV[9] number of argument fields a   ARGV[10 .. 9+2a] node, encoded arguments (pairs)
-- then: decision count k, then 8 slots per decision (see append_decisions)
--
-- Due times of decisions are relative to the submission (its stream id's time).
--
-- Returns {OK, n, d, submission stream id}, {EXISTS} (nothing written), or {NODEF,
-- tracked} (no bytes given and the definition is not stored: nothing written; tracked 1:
-- it was removed, unused; 0: Redis lost it).
local log, idx, archive, active, wake_due = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
-- One look in the common case: none of these exists. An index alone is a leftover (of
-- a log lost with Redis's data): it is cleared.
if redis.call('EXISTS', log, archive, KEYS[7], idx) > 0 then
  if redis.call('EXISTS', log, archive, KEYS[7]) > 0 then return {REPLY_EXISTS} end
  redis.call('DEL', idx)
end
-- The count of workflows using the definition tells whether it must be looked for: a
-- count above one means it is stored (the first of them stored or found it, and only
-- the last one out deletes it).
local users = redis.call('HINCRBY', KEYS[10], ARGV[3], 1)
if ARGV[8] ~= '' then
  redis.call('SET', KEYS[9], ARGV[8], 'NX')
  redis.call('HSET', KEYS[10], TRACKED, 1)
elseif users == 1 and redis.call('EXISTS', KEYS[9]) == 0 then
  redis.call('HDEL', KEYS[10], ARGV[3])
  return {REPLY_NODEF, redis.call('HEXISTS', KEYS[10], TRACKED)}
end
local id = redis.call('XADD', log, '*', EVENT_FIELD, ARGV[2], SEQ_FIELD, 1)
local fields = {SUBMITTED, id, DEFINITION, ARGV[3], STATUS, RUNNING, RETENTION, ARGV[7]}
local a = tonumber(ARGV[9])
for i = 0, a - 1 do
  fields[#fields + 1] = ARGS .. ARGV[10 + 2 * i]
  fields[#fields + 1] = ARGV[11 + 2 * i]
end
redis.call('SADD', active, ARGV[1])
redis.call('ZADD', KEYS[11], tonumber(string.match(id, '^(%d+)')), ARGV[1])
if ARGV[4] ~= '' then
  redis.call('ZADD', wake_due, now_ms() + tonumber(ARGV[5]), ARGV[4])
end
local pos = 10 + 2 * a
local base = tonumber(string.match(id, '^(%d+)'))
-- (The index's length and last decision are written by append_decisions.)
local n, d, ended = append_decisions(log, idx, active, KEYS[8], ARGV[1], pos + 1, tonumber(ARGV[pos]), 1, 0, base, 11, fields)
if ended then
  -- Nothing to run (an empty canvas): archive the few events at once.
  archive_log(log, idx, archive, active, KEYS[6], KEYS[8], ARGV[1])
  redis.call('PUBLISH', ARGV[6], n)
end
return {REPLY_OK, n, d, id}
