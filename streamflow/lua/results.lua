-- Reads the encoded TaskSucceeded events of some task nodes (a chunk of a piped input).
--
-- KEYS[1] log stream, KEYS[2] idx hash
-- ARGV[1..] task node ids
--
-- Returns one entry per node: the encoded event, or false if it has no result.
local out = {}
for i = 1, #ARGV do
  local id = redis.call('HGET', KEYS[2], 'ok:' .. ARGV[i])
  local payload = false
  if id then
    local entry = redis.call('XRANGE', KEYS[1], id, id)[1]
    if entry then payload = entry[2][2] end
  end
  out[i] = payload
end
return out
