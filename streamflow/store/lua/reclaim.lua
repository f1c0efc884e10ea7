-- Takes over the pending messages of a consumer that stopped beating: the consumer is
-- dead if its last beat is older than ARGV[4] (a Redis time the caller derives from its
-- own beats, so that a pause of Redis itself kills no one). Checked here, with the
-- claim, in one step. A dead consumer left with nothing pending is removed from the group.
--
-- KEYS[1] the stream (a queue or a wake-up stream)   KEYS[2] the shard's beats set
-- ARGV[1] the stream's consumer group   ARGV[2] the suspect   ARGV[3] this consumer
-- ARGV[4] dead if its last beat is before this Redis time (ms)   ARGV[5] at most this many
--
-- Returns {Redis time, entries claimed (id, fields)}; no entries if the suspect is alive.
local now = now_ms()
local beat = redis.call('ZSCORE', KEYS[2], ARGV[2])
if beat and tonumber(beat) >= tonumber(ARGV[4]) then return {now, {}} end
local pending = redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', tonumber(ARGV[5]), ARGV[2])
local ids = {}
for i, entry in ipairs(pending) do ids[i] = entry[1] end
local claimed = {}
if #ids > 0 then
  claimed = redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[3], 0, unpack(ids))
end
if #pending < tonumber(ARGV[5]) then
  redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
end
return {now, claimed}
