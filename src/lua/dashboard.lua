-- DASHBOARD: what a key may still spend and what it spent, for the
-- balance endpoints chat clients read (GET /v1/dashboard/billing/...).
-- Reads only.
--
-- KEYS[1] ar:{u<id>}:user        KEYS[2] ar:{u<id>}:key:<sha256>
-- KEYS[3..] ar:{u<id>}:stats:<yyyymmdd>, each day of the range
--
-- -> {balance, user unlimited, key quota (-1: none), key unlimited,
--     key expires, cost of the key over the days (micro-USD)}

local u = redis.call('HMGET', KEYS[1], 'balance', 'unlimited')
local k = redis.call('HMGET', KEYS[2], 'id', 'quota', 'unlimited', 'expires')
local cost = 0
if k[1] then
  local f = 'key:' .. k[1] .. ':cost'
  for i = 3, #KEYS do
    cost = cost + (tonumber(redis.call('HGET', KEYS[i], f)) or 0)
  end
end
return {u[1] or '0', u[2] or '0', k[2] or '-1', k[3] or '0', k[4] or '0',
        string.format('%.0f', cost)}
