-- ARGV: P, ns, uid, iid. Returns the user's remaining total.
--! include live_total.lua
local P, ns, uid, iid = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local hkey = P .. ns .. ':u:' .. uid
if redis.call('HINCRBY', hkey, iid, -1) <= 0 then
  redis.call('HDEL', hkey, iid)
  redis.call('SREM', P .. ns .. ':i:' .. iid, uid)
end
return live_total(hkey, iid, P .. 'inst:alive:')
