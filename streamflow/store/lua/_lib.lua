-- Shared helpers, prepended to every script. Upper-case names (STATUS, REPLY_OK, ...) are
-- those of streamflow.model.schema and the Reply enum, written in as strings when the
-- script is loaded.

-- The live log's length according to the index, or an error code:
-- REPLY_GONE (archived: never write again), REPLY_REBUILD (index does not match the log).
local function live_length(log, idx, archive)
  if redis.call('EXISTS', archive) == 1 then return nil, REPLY_GONE end
  local n = tonumber(redis.call('HGET', idx, LENGTH) or '0')
  if redis.call('XLEN', log) ~= n then return nil, REPLY_REBUILD end
  return n, nil
end

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function is_terminal(status)
  return status == COMPLETED or status == FAILED or status == CANCELLED
end

-- HSET of a flat field-value list of any length (unpack's limit is a few thousand).
local function hset_all(key, fields)
  for i = 1, #fields, 1000 do
    redis.call('HSET', key, unpack(fields, i, math.min(i + 999, #fields)))
  end
end

-- An ARGV flag: '1' true, anything else false.
local function flag(value)
  return value == '1'
end

-- Appends decisions, 8 ARGV slots each from position pos:
--   kind (a DECISION_* constant), idempotency key, encoded event, node (status for a
--   terminal, barrier for a decrement), attempt, position of the queue stream among the
--   KEYS after KEYS[queues] (its delayed set follows it), queue message ('' none: a
--   signal node without a timeout; for a decided outcome, the count it adds one to or
--   ''), due time in ms (0: now; else added to due_base; a due time already past goes to
--   the queue at once).
-- Each is appended at most once, by its idempotency key; after a terminal event only
-- finalizer enqueues are appended. A terminal event also records the workflow in
-- ended_set (id -> 'status submitted_ms ended_ms events'). fresh: nil, or (a submit)
-- the new index's fields not written yet, as a flat list: no key is looked up, no field
-- cleared, and every field goes into the index in one HSET. Returns n, d, ended.
local function append_decisions(log, idx, active, ended_set, wf, pos, count, n, d, due_base, queues, fresh)
  local ended = false
  local now = nil
  local function put(...)
    if fresh then
      for _, v in ipairs({...}) do fresh[#fresh + 1] = v end
    else
      redis.call('HSET', idx, ...)
    end
  end
  for i = 0, count - 1 do
    local b = pos + i * 8
    local kind, key = ARGV[b], ARGV[b + 1]
    local finalizer = kind == DECISION_ENQUEUE_FINALIZER
    if (not ended or finalizer) and (fresh or redis.call('HEXISTS', idx, key) == 0) then
      n = n + 1
      local id = redis.call('XADD', log, 'NOMKSTREAM', '*', EVENT_FIELD, ARGV[b + 2], SEQ_FIELD, n)
      if kind == DECISION_ENQUEUE or finalizer then
        local node = ARGV[b + 3]
        put(key, id, ATTEMPT .. node, ARGV[b + 4])
        if not fresh then redis.call('HDEL', idx, OWNER .. node, DELIVERIES .. node) end
        local queue, due = queues + tonumber(ARGV[b + 5]), tonumber(ARGV[b + 7])
        if due > 0 then due = due + due_base end
        if due > 0 and now == nil then now = now_ms() end
        if ARGV[b + 6] == '' then
          -- no message: a signal node without a timeout
        elseif due > 0 and due > now then
          redis.call('ZADD', KEYS[queue + 1], due, ARGV[b + 6])
        else
          redis.call('XADD', KEYS[queue], '*', MESSAGE_FIELD, ARGV[b + 6])
        end
        d = n
      elseif kind == DECISION_OUTCOME then
        put(key, id, RESULT .. ARGV[b + 3], id)
      else
        put(key, id)
      end
      if kind == DECISION_DECREMENT then
        if fresh then hset_all(idx, fresh); fresh = {} end
        redis.call('HINCRBY', idx, COUNT .. ARGV[b + 3], 1)
      elseif kind == DECISION_OUTCOME and ARGV[b + 6] ~= '' then
        if fresh then hset_all(idx, fresh); fresh = {} end
        redis.call('HINCRBY', idx, COUNT .. ARGV[b + 6], 1)
      elseif kind == DECISION_RELEASE or kind == DECISION_SIGNAL or kind == DECISION_RESUME then
        d = n
      elseif kind == DECISION_TERMINAL then
        if fresh then hset_all(idx, fresh); fresh = {} end
        redis.call('HSET', idx, STATUS, ARGV[b + 3])
        redis.call('SREM', active, wf)
        if now == nil then now = now_ms() end
        local submitted = string.match(redis.call('HGET', idx, SUBMITTED) or '0', '^(%d+)')
        redis.call('HSET', ended_set, wf, ARGV[b + 3] .. ' ' .. submitted .. ' ' .. now .. ' ' .. n)
        d = n
        ended = true
      end
    end
  end
  put(LENGTH, n, LAST_DECISION, d)
  if fresh then hset_all(idx, fresh) end
  return n, d, ended
end

-- Registers a workflow archived at ``now`` for removal after its retention (``ret`` ms;
-- schedule_expiry reads it and ``def`` from the index). Its member names what the
-- removal needs once the index is gone: 'id definition-hash retention-ms'
-- (schema.expiry_member; '-' for no definition).
local function expire_after(expiry, wf, now, ret, def)
  ret = tonumber(ret or '0') or 0
  redis.call('ZADD', expiry, now + ret, wf .. ' ' .. (def or '-') .. ' ' .. ret)
end

local function schedule_expiry(idx, expiry, wf)
  local fields = redis.call('HMGET', idx, RETENTION, DEFINITION)
  expire_after(expiry, wf, now_ms(), fields[1], fields[2])
end

-- The summary an archive starts with, for listings (GETRANGE 0 15): byte 0x53 ('S',
-- never a codec header), then big-endian the status (1 byte: SUMMARY_STATUS), the
-- submission's ms (6 bytes), ms from it to the end (4 bytes) and the
-- log's length at the end (4 bytes). It moves the workflow's line out of ended_set ('',
-- and the line stays, if there is none or it does not parse).
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
-- The layout-2 array of log entries as XRANGE returns them, its first entry's ms, and
-- the last entry's id (ms, sequence part); lone.lua appends to it.
local function archive_flat(entries)
  local flat, base, ms, part = {2, 0}, nil, nil, nil
  for i, entry in ipairs(entries) do
    ms, part = string.match(entry[1], '^(%d+)-(%d+)$')
    ms, part = tonumber(ms), tonumber(part)
    if base == nil then base = ms; flat[2] = ms end
    flat[3 * i], flat[3 * i + 1], flat[3 * i + 2] = ms - base, part, entry[2][2]
  end
  return flat, base, ms, part
end

local function archive_log(log, idx, archive, active, expiry, ended_set, wf)
  local flat = archive_flat(redis.call('XRANGE', log, '-', '+'))
  local summary = archive_summary(ended_set, wf)
  redis.call('SET', archive, summary .. string.char(0x12) .. cmsgpack.pack(flat))
  schedule_expiry(idx, expiry, wf)
  redis.call('DEL', log, idx)
  redis.call('SREM', active, wf)
end
