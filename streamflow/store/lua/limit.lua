-- Takes a slot of a rate limiter, if one is free: a sorted set of holders scored by a
-- time, from which members scored before a cutoff are dropped first. A concurrent
-- limiter scores each holder by its lease's end (a crashed holder's slot frees itself);
-- a window limiter scores each by when it was taken; a bucket limiter too, and drops
-- what was taken before the current bucket (Redis time divided in buckets of ARGV[6]).
--
-- KEYS[1] the limiter's sorted set
-- ARGV[1] limit   ARGV[2] token   ARGV[3] score = Redis time + this many ms
-- ARGV[4] drop members scored before Redis time + this many ms   ARGV[5] key lifetime in ms
-- ARGV[6] bucket length in ms (0: none; then ARGV[4] is not used)
--
-- Returns 1 (taken) or 0 (exceeded).
local now = now_ms()
local cutoff = now + tonumber(ARGV[4])
local bucket = tonumber(ARGV[6])
if bucket > 0 then cutoff = now - now % bucket end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. cutoff)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1
