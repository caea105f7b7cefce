-- ARGV: P, ns, iid, uid... Returns 1/0 per user: has a connection on a live instance.
--! include live_total.lua
local P, ns, iid = ARGV[1], ARGV[2], ARGV[3]
local result = {}
for i = 4, #ARGV do
  local total = live_total(P .. ns .. ':u:' .. ARGV[i], iid, P .. 'inst:alive:')
  if total > 0 then result[#result + 1] = 1 else result[#result + 1] = 0 end
end
return result
