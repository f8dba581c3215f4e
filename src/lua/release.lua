-- RELEASE: a worker gives back what is left of a lease, or of a request's
-- reservation whose request gave up before AUTH answered.  Sent after the
-- settlements of the lease's requests on the same connection, so they
-- are applied first.
--
-- KEYS[1] ar:{u<id>}:user        KEYS[2] ar:{u<id>}:res
-- ARGV[1] lease or request id
-- for a lease:   ARGV[2] micro-USD its worker took out of it in all
--                (requests that ended, and what running ones hold); less
--                what settlements charged to the lease so far (its third
--                field), that much stays in the lease for the settlements
--                still on their way (what they do not take is refunded at
--                the deadline)
-- for a request: ARGV[2] "ar:{u<id>}:" (a reservation's key quota part
--                goes back to that key); ARGV[3] seconds to keep
--                "ar:{u<id>}:gone:<request id>", which makes an AUTH still
--                on its way reserve nothing
--
-- -> 1, or 0 if there was no such lease or reservation

local v = redis.call('HGET', KEYS[2], ARGV[1])
local owed = tonumber(ARGV[2])
if not v then
  if ARGV[3] and not owed then
    redis.call('SET', ARGV[2] .. RKEY_U_GONE .. ARGV[1], '1', 'EX', ARGV[3])
  end
  return 0
end
local d, rem, kamt, h = string.match(v, RES_PATTERN)
if not d then return 0 end
rem = tonumber(rem)
if owed then
  if h ~= '' then return 0 end
  owed = owed - tonumber(kamt)
  if owed < 0 then owed = 0 end
  if rem > owed then
    redis.call('HINCRBY', KEYS[1], 'balance', string.format('%.0f', rem - owed))
    rem = owed
  end
  if rem ~= 0 then
    redis.call('HSET', KEYS[2], ARGV[1],
               string.format(RES_FORMAT, d, string.format('%.0f', rem), kamt,
                             ''))
    return 1
  end
  redis.call('HDEL', KEYS[2], ARGV[1])
  return 1
end
if rem ~= 0 then
  redis.call('HINCRBY', KEYS[1], 'balance', string.format('%.0f', rem))
end
if kamt ~= '0' and h ~= '' then
  local kk = ARGV[2] .. RKEY_U_KEY .. h
  if redis.call('EXISTS', kk) == 1 then
    redis.call('HINCRBY', kk, 'quota', kamt)
  end
end
redis.call('HDEL', KEYS[2], ARGV[1])
return 1
