-- ARGV: op, connection id, timeout ms, grace ms. Ops and results:
--   start  → 1 if the state started, 0 if it was refreshed
--   stop   → 1 if this ended the state
--   leave  → 1 if this ended the state (the connection was its last holder)
--   settle → ms left until the deadline, 0 if this ended it, -1 if it had been ended
--            (and announced), -2 if it was lost (nobody announced its end)
local key, op, conn = KEYS[1], ARGV[1], 'c:' .. ARGV[2]
local grace = tonumber(ARGV[4])
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function finish()
  redis.call('DEL', key)
  redis.call('HSET', key, '~ended', '1')
  redis.call('PEXPIRE', key, grace)
  return 1
end
local live = redis.call('HEXISTS', key, '~deadline') == 1
if op == 'start' then
  local timeout = tonumber(ARGV[3])
  if not live then redis.call('DEL', key) end
  redis.call('HSET', key, '~deadline', now_ms() + timeout, conn, '1')
  redis.call('PEXPIRE', key, timeout + grace)
  if live then return 0 end
  return 1
end
if op == 'settle' and not live then
  if redis.call('EXISTS', key) == 1 then return -1 end
  return -2
end
if not live then return 0 end
if op == 'stop' then return finish() end
if op == 'leave' then
  if redis.call('HDEL', key, conn) == 0 then return 0 end
  if redis.call('HLEN', key) > 1 then return 0 end
  return finish()
end
local left = tonumber(redis.call('HGET', key, '~deadline')) - now_ms()
if left > 0 then return left end
finish()
return 0
