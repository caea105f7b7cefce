-- domain/ratelimit.py `take`, step for step, on the state {t: tokens, u: updated_at}.
-- ARGV: rate, burst, now ('' = Redis's clock). Returns {allowed 0/1, retry_after_ms}.
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local now
if ARGV[3] ~= '' then
  now = tonumber(ARGV[3])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
end
local state = redis.call('HMGET', KEYS[1], 't', 'u')
local tokens
if state[1] then
  local elapsed = now - tonumber(state[2])
  if elapsed < 0 then elapsed = 0 end
  tokens = math.min(burst, tonumber(state[1]) + elapsed * rate)
else
  tokens = burst
end
local allowed = 0
local retry = 0
if tokens >= 1 - 1e-9 then
  tokens = math.max(0, tokens - 1)
  allowed = 1
elseif rate > 0 then
  retry = math.max(1, math.ceil((1 - tokens) / rate * 1000))
else
  retry = 3600000
end
redis.call('HSET', KEYS[1], 't', string.format('%.17g', tokens),
           'u', string.format('%.17g', now))
local ttl = 3600000
if rate > 0 then ttl = math.ceil((burst - tokens) / rate * 1000) + 1000 end
redis.call('PEXPIRE', KEYS[1], ttl)
return {allowed, retry}
