-- AUTH: check a key and its owner, count the request, reserve money.
--
-- KEYS[1] ar:{u<id>}:user        KEYS[2] ar:{u<id>}:key:<sha256>
-- KEYS[3] ar:{u<id>}:res
-- ARGV[1] "reserve" or "check"   ARGV[2] request id
-- ARGV[3] unix time, seconds     ARGV[4] model as the client sent it
-- ARGV[5] reservation, micro-USD ARGV[6] reservation TTL, seconds
-- ARGV[7] sha256 of the key      ARGV[8] "ar:{u<id>}:"
--
-- A request its worker gave up on may be released before its AUTH runs:
-- RELEASE then left "ar:{u<id>}:gone:<request id>" and AUTH reserves
-- nothing ({'gone'}).
--
-- A reservation is res[request id] = "<deadline>|<uUSD>|<uUSD of the
-- key's quota>|<sha256>".  Those past their deadline (their worker died)
-- are refunded here, looked for at most every min(TTL, 60) seconds.
-- The key hash keeps this minute's counters: rl_m, rl_r, rl_t.
--
-- -> {status, detail, key id, allowed models, unlimited, expires, fast}
--    fast = "1": the key has no rate limit and no budget of its own, so a
--    worker may admit its requests against a lease (see LEASE)

local now = tonumber(ARGV[3])
local ttl = tonumber(ARGV[6])
local uf = {'status', 'balance', 'unlimited', 'reclaim_at'}
local kf = {'id', 'status', 'expires', 'models', 'rpm', 'tpm', 'quota',
            'unlimited', 'rl_m', 'rl_r', 'rl_t'}
if ARGV[1] == 'reserve'
   and redis.call('EXISTS', ARGV[8] .. RKEY_U_GONE .. ARGV[2]) == 1 then
  return {'gone', ''}
end
local u = redis.call('HMGET', KEYS[1], unpack(uf))
if (u[1] or u[2]) and (tonumber(u[4]) or 0) <= now then
  local res = redis.call('HGETALL', KEYS[3])
  for i = 1, #res, 2 do
    local d, amt, kamt, h = string.match(res[i + 1], RES_PATTERN)
    if d and tonumber(d) <= now then
      if amt ~= '0' then
        redis.call('HINCRBY', KEYS[1], 'balance', amt)
      end
      local kk = ARGV[8] .. RKEY_U_KEY .. h
      if kamt ~= '0' and h ~= '' and redis.call('EXISTS', kk) == 1 then
        redis.call('HINCRBY', kk, 'quota', kamt)
      end
      redis.call('HDEL', KEYS[3], res[i])
    end
  end
  redis.call('HSET', KEYS[1], 'reclaim_at', now + math.min(ttl, 60))
  u = redis.call('HMGET', KEYS[1], unpack(uf))
end
local k = redis.call('HMGET', KEYS[2], unpack(kf))
if not k[1] then return {'unknown_key', ''} end
if not u[1] and not u[2] then return {'unknown_key', ''} end
if k[2] == 'disabled' then return {'key_disabled', '', k[1]} end
local exp = tonumber(k[3] or '0') or 0
if k[2] == 'expired' or (exp > 0 and now >= exp) then
  return {'key_expired', '', k[1]}
end
if u[1] == 'disabled' then return {'user_disabled', '', k[1]} end
if k[2] == 'exhausted' and ARGV[1] ~= 'check' then
  return {'key_quota', '0', k[1]}
end
local models = k[4] or ''
local unlimited = (u[3] == '1' or k[8] == '1')
local fast = ((tonumber(k[5] or '0') or 0) == 0
             and (tonumber(k[6] or '0') or 0) == 0
             and (tonumber(k[7] or '-1') or -1) < 0) and '1' or '0'
if ARGV[1] == 'check' then
  return {'ok', '', k[1], models, unlimited and '1' or '0', tostring(exp),
          fast}
end
if models ~= '' and not string.find(',' .. models .. ',',
                                    ',' .. ARGV[4] .. ',', 1, true) then
  return {'model_not_allowed', '', k[1]}
end
local minute = math.floor(now / 60)
local r, t = 0, 0
if tonumber(k[9]) == minute then
  r = tonumber(k[10]) or 0
  t = tonumber(k[11]) or 0
end
local retry = tostring(60 - now % 60)
local rpm = tonumber(k[5] or '0') or 0
local tpm = tonumber(k[6] or '0') or 0
if rpm > 0 and r >= rpm then return {'rpm', retry, k[1]} end
if tpm > 0 and t >= tpm then return {'tpm', retry, k[1]} end
local est = ARGV[5]
local kamt = '0'
if unlimited then
  est = '0'
else
  local bal = tonumber(u[2] or '0') or 0
  if bal <= 0 then return {'quota', u[2] or '0', k[1]} end
  if bal < tonumber(est) then return {'quota_short', u[2], k[1]} end
  local kq = tonumber(k[7] or '-1') or -1
  if kq >= 0 then
    if kq <= 0 then return {'key_quota', k[7], k[1]} end
    if kq < tonumber(est) then return {'key_quota_short', k[7], k[1]} end
    kamt = est
  end
end
if est ~= '0' then
  redis.call('HINCRBY', KEYS[1], 'balance', '-' .. est)
  if kamt ~= '0' then
    redis.call('HINCRBY', KEYS[2], 'quota', '-' .. kamt)
  end
  redis.call('HSET', KEYS[3], ARGV[2],
             string.format(RES_FORMAT, now + ttl, est, kamt, ARGV[7]))
end
redis.call('HSET', KEYS[2], 'rl_m', minute, 'rl_r', r + 1, 'rl_t', t)
return {'ok', '', k[1], models, unlimited and '1' or '0', tostring(exp),
        fast}
