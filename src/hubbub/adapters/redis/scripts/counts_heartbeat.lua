-- ARGV: P, iid, ttl_ms. Returns 1 when the heartbeat key was there, 0 when it was missing
-- (first beat, Redis restarted, or this instance stalled past its TTL): then resync.
local P, iid, ttl = ARGV[1], ARGV[2], ARGV[3]
redis.call('SADD', P .. 'inst:all', iid)
if redis.call('SET', P .. 'inst:alive:' .. iid, '1', 'PX', ttl, 'XX') then return 1 end
redis.call('SET', P .. 'inst:alive:' .. iid, '1', 'PX', ttl)
return 0
