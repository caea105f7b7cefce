-- ARGV: P, ns, iid, report (1/0), uid1, n1, uid2, n2... Replaces the instance's counts
-- with these. With `report`, and when the survivors had reaped this instance (it stalled
-- past its TTL, or lost Redis while they kept it), returns the users it counts who had no
-- connection on another live instance: the survivors announced them offline.
--! include live_total.lua
local P, ns, iid, report = ARGV[1], ARGV[2], ARGV[3], ARGV[4] == '1'
local alive = P .. 'inst:alive:'
local reaped = report and redis.call('DEL', P .. 'inst:reaped:' .. iid) == 1
local skey = P .. ns .. ':i:' .. iid
for _, uid in ipairs(redis.call('SMEMBERS', skey)) do
  redis.call('HDEL', P .. ns .. ':u:' .. uid, iid)
end
redis.call('DEL', skey)
local revived = {}
for i = 5, #ARGV, 2 do
  local hkey = P .. ns .. ':u:' .. ARGV[i]
  if reaped and live_total(hkey, '', alive) == 0 then revived[#revived + 1] = ARGV[i] end
  redis.call('HSET', hkey, iid, ARGV[i + 1])
  redis.call('SADD', skey, ARGV[i])
end
return revived
