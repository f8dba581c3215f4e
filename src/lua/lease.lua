-- LEASE: move money from a busy user's balance to a worker, which then
-- admits the user's requests against it without asking Redis each time.
-- A lease is kept in the reservations hash like a reservation, so a
-- worker that dies has its lease refunded after the reservation TTL.
-- Every LEASE moves the lease's deadline; a LEASE of 0 does only that.
--
-- KEYS[1] ar:{u<id>}:user        KEYS[2] ar:{u<id>}:res
-- ARGV[1] lease id   ARGV[2] micro-USD wanted   ARGV[3] unix time
-- ARGV[4] TTL, seconds   ARGV[5] micro-USD below which a grant is not
-- worth it   ARGV[6] "1" if the worker holds this lease already
-- ARGV[7] "ar:{u<id>}:"
--
-- A lease its worker gave up on (the link dropped while LEASE was on its
-- way) is released under a tombstone, "ar:{u<id>}:gone:<lease id>": a
-- LEASE that reaches Redis after that RELEASE grants nothing.
--
-- At most half the balance is lent: what stays serves the user's requests
-- elsewhere (other workers, other nodes) through AUTH, exactly.
--
-- -> micro-USD granted (added to the lease), 0 if none, -1 if the worker
--    thought it held the lease but it is gone (reclaimed): it must stop
--    spending it

if redis.call('EXISTS', ARGV[7] .. RKEY_U_GONE .. ARGV[1]) == 1 then
  return 0
end
local v = redis.call('HGET', KEYS[2], ARGV[1])
if ARGV[6] == '1' and not v then return -1 end
local rem, charged = 0, '0'
if v then
  local _, amt, c = string.match(v, RES_PATTERN)
  rem, charged = tonumber(amt) or 0, c or '0'
end
local deadline = tonumber(ARGV[3]) + tonumber(ARGV[4])
local function keep(amount)
  redis.call('HSET', KEYS[2], ARGV[1], string.format(RES_FORMAT, deadline,
             string.format('%.0f', amount), charged, ''))
end
local u = redis.call('HMGET', KEYS[1], 'status', 'balance', 'unlimited')
local grant = 0
if u[1] ~= 'disabled' and u[3] ~= '1' then
  local bal = tonumber(u[2] or '0') or 0
  grant = math.min(tonumber(ARGV[2]), math.floor(bal / 2))
  if grant < tonumber(ARGV[5]) or tonumber(ARGV[2]) == 0 then grant = 0 end
  if grant > 0 then
    redis.call('HSET', KEYS[1], 'balance', string.format('%.0f', bal - grant))
  end
end
if grant > 0 or v then keep(rem + grant) end
return grant
