-- ARGV: P, iid, ns... A clean shutdown: the instance's counts and heartbeat go at once.
local P, iid = ARGV[1], ARGV[2]
for j = 3, #ARGV do
  local ns = ARGV[j]
  local skey = P .. ns .. ':i:' .. iid
  for _, uid in ipairs(redis.call('SMEMBERS', skey)) do
    redis.call('HDEL', P .. ns .. ':u:' .. uid, iid)
  end
  redis.call('DEL', skey)
end
redis.call('DEL', P .. 'inst:alive:' .. iid)
redis.call('SREM', P .. 'inst:all', iid)
return 1
