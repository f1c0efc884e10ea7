-- Shared helpers, prepended by scripts.py to every script that names them.
-- Return codes are strings; scripts.py maps them to the Reply enum.

-- The live log's length according to the index, or an error code:
-- 'GONE' (archived: never write again), 'REBUILD' (index does not match the log).
local function live_length(log, idx, archive)
  if redis.call('EXISTS', archive) == 1 then return nil, 'GONE' end
  local n = tonumber(redis.call('HGET', idx, 'n') or '0')
  if redis.call('XLEN', log) ~= n then return nil, 'REBUILD' end
  return n, nil
end

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function is_terminal(status)
  return status == 'completed' or status == 'failed' or status == 'cancelled'
end

-- Appends decisions, 8 ARGV slots each from position pos:
--   kind ('E' enqueue, 'F' enqueue of a finalizer, 'D' decrement, 'R' release,
--   'T' terminal), idempotency key,
--   encoded event, node (status for 'T', barrier for 'D'), attempt, index into KEYS of the
--   queue stream
--   (its delayed set follows it in KEYS), queue message, due time in ms (0: now; else
--   added to due_base; a due time already past goes to the queue at once).
-- Each is appended at most once, by its idempotency key; after a terminal event only
-- finalizer enqueues ('F') are appended. A terminal event also records the workflow in
-- ended_set (id -> 'status submitted_ms ended_ms events'). Returns n, d, ended.
local function append_decisions(log, idx, active, ended_set, wf, pos, count, n, d, due_base)
  local ended = false
  local now = nil
  for i = 0, count - 1 do
    local b = pos + i * 8
    local kind, key = ARGV[b], ARGV[b + 1]
    if (not ended or kind == 'F') and redis.call('HEXISTS', idx, key) == 0 then
      n = n + 1
      local id = redis.call('XADD', log, 'NOMKSTREAM', '*', 'e', ARGV[b + 2], 's', n)
      redis.call('HSET', idx, key, id)
      if kind == 'E' or kind == 'F' then
        local node = ARGV[b + 3]
        redis.call('HSET', idx, 'a:' .. node, ARGV[b + 4])
        redis.call('HDEL', idx, 'm:' .. node, 'c:' .. node)
        local queue, due = tonumber(ARGV[b + 5]), tonumber(ARGV[b + 7])
        if due > 0 then due = due + due_base end
        if due > 0 and now == nil then now = now_ms() end
        if due > 0 and due > now then
          redis.call('ZADD', KEYS[queue + 1], due, ARGV[b + 6])
        else
          redis.call('XADD', KEYS[queue], '*', 'm', ARGV[b + 6])
        end
        d = n
      elseif kind == 'D' then
        redis.call('HINCRBY', idx, 'bc:' .. ARGV[b + 3], 1)
      elseif kind == 'R' then
        d = n
      elseif kind == 'T' then
        redis.call('HSET', idx, 'st', ARGV[b + 3])
        redis.call('SREM', active, wf)
        if now == nil then now = now_ms() end
        local submitted = string.match(redis.call('HGET', idx, 'sub') or '0', '^(%d+)')
        redis.call('HSET', ended_set, wf, ARGV[b + 3] .. ' ' .. submitted .. ' ' .. now .. ' ' .. n)
        d = n
        ended = true
      end
    end
  end
  redis.call('HSET', idx, 'n', n, 'd', d)
  return n, d, ended
end

-- Registers a workflow archived just now for removal after its retention (idx 'ret').
local function schedule_expiry(idx, expiry, wf)
  local ret = tonumber(redis.call('HGET', idx, 'ret') or '0')
  redis.call('ZADD', expiry, now_ms() + ret, wf)
end

-- The summary an archive starts with, for listings (GETRANGE 0 15): byte 0x53 ('S',
-- never a codec header), then big-endian the status (1 byte: 1 completed, 2 failed,
-- 3 cancelled), the submission's ms (6 bytes), ms from it to the end (4 bytes) and the
-- log's length at the end (4 bytes). It moves the workflow's line out of ended_set ('',
-- and the line stays, if there is none or it does not parse).
local SUMMARY_STATUS = {completed = 1, failed = 2, cancelled = 3}
local function archive_summary(ended_set, wf)
  local line = redis.call('HGET', ended_set, wf)
  if not line then return '' end
  local status, submitted, ended, events = string.match(line, '^(%a+) (%d+) (%d+) (%d+)$')
  if not SUMMARY_STATUS[status or ''] then return '' end
  redis.call('HDEL', ended_set, wf)
  submitted, ended = tonumber(submitted), tonumber(ended)
  local took = math.min(math.max(ended - submitted, 0), 4294967295)
  return struct.pack(">BBI6I4I4", 0x53, SUMMARY_STATUS[status], submitted, took, tonumber(events))
end

-- Replaces a finished workflow's (short) log and index by its archive: its summary (see
-- archive_summary), then behind codec header 0x12 (version 1, written by a script) the
-- layout-2 array {2, first entry's milliseconds, then per entry: milliseconds after the
-- first, stream id sequence part, encoded event} packed by cmsgpack (sequence numbers
-- are dense from 1: implied).
local function archive_log(log, idx, archive, active, expiry, ended_set, wf)
  local flat = {2, 0}
  local base = nil
  for i, entry in ipairs(redis.call('XRANGE', log, '-', '+')) do
    local ms, part = string.match(entry[1], '^(%d+)-(%d+)$')
    ms = tonumber(ms)
    if base == nil then base = ms; flat[2] = ms end
    flat[3 * i] = ms - base
    flat[3 * i + 1] = tonumber(part)
    flat[3 * i + 2] = entry[2][2]
  end
  local summary = archive_summary(ended_set, wf)
  redis.call('SET', archive, summary .. string.char(0x12) .. cmsgpack.pack(flat))
  schedule_expiry(idx, expiry, wf)
  redis.call('DEL', log, idx)
  redis.call('SREM', active, wf)
end
