-- REFUND: an async task (a video) its upstream says failed: what it was
-- charged goes back, once.  The task's hash says whether it was.
--
-- KEYS[1] ar:{u<id>}:user        KEYS[2] ar:{u<id>}:task:<task id>
-- KEYS[3] ar:{u<id>}:log         KEYS[4] ar:{u<id>}:stats:<yyyymmdd>
-- ARGV[1] "ar:{u<id>}:"          ARGV[2] records kept
-- ARGV[3] the refund's record, a JSON object without its end: the script
--         adds the cost (negative) and the closing brace
--
-- The task hash (written when the upstream accepted the task): key
-- (sha256), key_id, model, cost (micro-USD, metered), charged (what left
-- the balance: 0 for unlimited users and keys), refunded.
--
-- -> the micro-USD given back, 0 if the task was refunded before or is
--    unknown

local t = redis.call('HMGET', KEYS[2], 'cost', 'charged', 'refunded', 'key',
                     'key_id', 'model')
if not t[1] or t[3] == '1' then return 0 end
local cost = tonumber(t[1]) or 0
local charged = tonumber(t[2]) or 0
redis.call('HSET', KEYS[2], 'refunded', '1', 'status', 'failed')
if charged > 0 then
  redis.call('HINCRBY', KEYS[1], 'balance', charged)
end
if cost > 0 then
  redis.call('HINCRBY', KEYS[1], 'used', -cost)
  local kk = ARGV[1] .. RKEY_U_KEY .. (t[4] or '')
  if t[4] and redis.call('EXISTS', kk) == 1 then
    redis.call('HINCRBY', kk, 'used', -cost)
    local q = tonumber(redis.call('HGET', kk, 'quota') or '-1') or -1
    if q >= 0 and charged > 0 then
      redis.call('HINCRBY', kk, 'quota', charged)
    end
  end
  redis.call('HINCRBY', KEYS[4], 'cost', -cost)
  redis.call('HINCRBY', KEYS[4], 'key:' .. (t[5] or '') .. ':cost', -cost)
  redis.call('HINCRBY', KEYS[4], 'model:' .. (t[6] or '') .. ':cost', -cost)
  redis.call('EXPIRE', KEYS[4], 34560000)
end
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[2], '*', 'r',
           ARGV[3] .. tostring(-cost) .. '}')
return charged
