-- ARGV: P, report_ns, ns... Removes every dead instance's counts in every namespace and
-- returns the users of `report_ns` who have no connection left on a live instance.
--! include live_total.lua
local P, report = ARGV[1], ARGV[2]
local alive = P .. 'inst:alive:'
local gone = {}
for _, dead in ipairs(redis.call('SMEMBERS', P .. 'inst:all')) do
  if redis.call('EXISTS', alive .. dead) == 0 then
    for j = 3, #ARGV do
      local ns = ARGV[j]
      local skey = P .. ns .. ':i:' .. dead
      for _, uid in ipairs(redis.call('SMEMBERS', skey)) do
        local hkey = P .. ns .. ':u:' .. uid
        if redis.call('HDEL', hkey, dead) == 1 and ns == report
           and live_total(hkey, '', alive) == 0 then
          gone[#gone + 1] = uid
        end
      end
      redis.call('DEL', skey)
    end
    redis.call('SREM', P .. 'inst:all', dead)
    -- If it was only stalled, it will find this mark when it resyncs (a day at most).
    redis.call('SET', P .. 'inst:reaped:' .. dead, '1', 'PX', 86400000)
  end
end
return gone
