-- ARGV: P, ns, uid, iid, limit (-1: none). Returns the user's new total, or -1 when the
-- limit was reached (nothing counted).
--! include live_total.lua
local P, ns, uid, iid, limit = ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
local hkey = P .. ns .. ':u:' .. uid
local total = live_total(hkey, iid, P .. 'inst:alive:')
if limit >= 0 and total >= limit then return -1 end
redis.call('HINCRBY', hkey, iid, 1)
redis.call('SADD', P .. ns .. ':i:' .. iid, uid)
return total + 1
