-- Installs an index rebuilt from the log (by the pure fold), by a compare-and-set on the
-- log length.
--
-- KEYS[1] log stream, KEYS[2] idx hash, KEYS[3] archive string
-- ARGV[1] log length the rebuilt index reflects, ARGV[2..] field, value pairs
--
-- Returns {OK} | {GONE} | {CONFLICT} (the log changed meanwhile: fold again).
if redis.call('EXISTS', KEYS[3]) == 1 then return {REPLY_GONE} end
if redis.call('XLEN', KEYS[1]) ~= tonumber(ARGV[1]) then return {REPLY_CONFLICT} end
redis.call('DEL', KEYS[2])
for i = 2, #ARGV, 2 do
  redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
end
return {REPLY_OK}
