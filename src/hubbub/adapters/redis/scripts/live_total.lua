-- Included by the counting scripts (`--! include live_total.lua`): the user's connections
-- on live instances. Fields of dead instances are removed on the way (their users' totals
-- no longer include them).
local function live_total(hkey, self_iid, alive)
  local flat = redis.call('HGETALL', hkey)
  local total = 0
  for i = 1, #flat, 2 do
    local iid = flat[i]
    if iid == self_iid or redis.call('EXISTS', alive .. iid) == 1 then
      total = total + tonumber(flat[i + 1])
    else
      redis.call('HDEL', hkey, iid)
    end
  end
  return total
end
