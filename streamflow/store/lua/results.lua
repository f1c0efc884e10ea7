-- Reads what a task receives besides its own arguments: the events (or raw index
-- values) its inputs name - piped results, a callback's subject, a workflow's failure.
--
-- KEYS[1] log stream, KEYS[2] idx hash
-- ARGV[1..] index fields: RESULT .. node (its TaskSucceeded, else its final TaskFailed),
--   FAILURE .. node (its final TaskFailed), END (the terminal event), ARGS .. node (its
--   encoded arguments, returned as they are)
--
-- Returns one entry per field: the encoded event or value, or false if absent.
local out = {}
for i = 1, #ARGV do
  local field = ARGV[i]
  local value = redis.call('HGET', KEYS[2], field)
  if not value and string.sub(field, 1, #RESULT) == RESULT then
    value = redis.call('HGET', KEYS[2], FAILURE .. string.sub(field, #RESULT + 1))
  end
  if value and string.sub(field, 1, #ARGS) ~= ARGS then
    local entry = redis.call('XRANGE', KEYS[1], value, value)[1]
    value = entry and entry[2][2] or false
  end
  out[i] = value or false
end
return out
