-- SETTLE: a batch of finished requests of one user: refund their
-- reservations, charge their actual costs, write their records and the
-- counters, in one atomic script.  Idempotent by batch id: a replay from
-- the journal finds the "done" marker and changes nothing.  The worker
-- sums the batch per key, per lease and per key and model, so Redis works
-- per request only to refund a reservation and to add the record.
--
-- KEYS[1] ar:{u<id>}:user        KEYS[2] ar:{u<id>}:res
-- KEYS[3] ar:{u<id>}:done:<batch id>
-- KEYS[4] ar:{u<id>}:log         KEYS[5] ar:{u<id>}:stats:<yyyymmdd>
-- KEYS[6..] ar:{u<id>}:key:<sha256>, each key of the batch once
-- ARGV[1] batch id    ARGV[2] unix time, seconds   ARGV[3] records kept
-- ARGV[4] R, requests with their own reservation   ARGV[5] L, leases
-- ARGV[6] G, key and model pairs
-- then per key of KEYS[6..]: cost (micro-USD), requests, tokens
-- then R times: request id, key (1 for KEYS[6]...), cost
-- then L times: lease id, key, cost: it comes out of the lease (and is
-- added to what the lease counts as charged), or out of the balance
-- once the lease is gone
-- then G times: key id, model, requests, errors, prompt tokens,
-- completion tokens, cost (the daily counters)
-- then the records, one per request: JSON objects, added as one stream
-- entry with an "r" field per record (one XADD for the batch costs Redis
-- a fraction of one per request); the stream is capped at about ARGV[3]
-- records, counted in entries of this batch's size
--
-- Unlimited users and keys are metered, not charged.  Every argument is
-- checked before anything is written: a malformed batch (a journal from
-- another version) changes nothing.
--
-- A record with "task" (a task the upstream accepted) also keeps the
-- task: ar:{u<id>}:task:<id> (channel, model, key, key_id, cost, charged,
-- request, created, api, seconds, remix_of; 30 days), in this user's slot,
-- and
-- puts it in ar:{u<id>}:tasks:open (scored by now) unless REFUND has
-- recorded its end already.
--
-- -> the number of requests settled now, 0 if the batch was settled

if redis.call('EXISTS', KEYS[3]) == 1 then return 0 end
local function int(v) return string.format('%.0f', v) end
local function bad(i)
  return redis.error_reply('malformed settlement at argument ' .. i)
end
local function num(v)
  if type(v) == 'string' and string.match(v, '^%-?%d+$') then
    return tonumber(v)
  end
  return nil
end
local now = num(ARGV[2])
local nk = #KEYS - 5
local nres, nlease, ngrp = num(ARGV[4]), num(ARGV[5]), num(ARGV[6])
if not (now and num(ARGV[3]) and nres and nlease and ngrp) then
  return bad(2)
end
local minute = math.floor(now / 60)
local kp = 7
local rp = kp + 3 * nk
local lp = rp + 3 * nres
local gp = lp + 3 * nlease
local xp = gp + 7 * ngrp
local nrec = #ARGV - xp + 1
if nrec < 1 then return bad(#ARGV) end
local keys, total = {}, 0
for i = 1, nk do
  local c, q, t = num(ARGV[kp + 3 * i - 3]),
                  num(ARGV[kp + 3 * i - 2]),
                  num(ARGV[kp + 3 * i - 1])
  if not (c and q and t) then return bad(kp + 3 * i - 3) end
  keys[i] = {cost = c, req = q, tok = t, qd = 0}
  total = total + q
end
if total ~= nrec then return bad(kp) end
for i = rp, gp - 1, 3 do
  if not (keys[num(ARGV[i + 1])] and num(ARGV[i + 2])) then
    return bad(i)
  end
end
for i = gp, xp - 1, 7 do
  for j = 2, 6 do
    if not num(ARGV[i + j]) then return bad(i + j) end
  end
end
local uunl = redis.call('HGET', KEYS[1], 'unlimited') == '1'
for i = 1, nk do
  local k = redis.call('HMGET', KEYS[5 + i], 'id', 'unlimited', 'quota',
                       'rl_m')
  keys[i].exists = k[1] ~= false
  keys[i].id = k[1]
  keys[i].unl = uunl or k[2] == '1'
  keys[i].quota = (tonumber(k[3] or '-1') or -1) >= 0
  keys[i].same = tonumber(k[4]) == minute
end
local bal, used = 0, 0
if nres > 0 then
  local ids = {}
  for i = rp, lp - 1, 3 do ids[#ids + 1] = ARGV[i] end
  local res = redis.call('HMGET', KEYS[2], unpack(ids))
  redis.call('HDEL', KEYS[2], unpack(ids))
  for j = 1, nres do
    local i = rp + 3 * j - 3
    local k = keys[tonumber(ARGV[i + 1])]
    local charge = k.unl and 0 or tonumber(ARGV[i + 2])
    local amt, kamt = 0, 0
    if res[j] then
      local _, a, b = string.match(res[j], RES_PATTERN)
      amt, kamt = tonumber(a) or 0, tonumber(b) or 0
    end
    bal = bal + amt - charge
    if k.quota then k.qd = k.qd + kamt - charge end
  end
end
for i = lp, gp - 1, 3 do
  local k = keys[tonumber(ARGV[i + 1])]
  local spent = k.unl and 0 or tonumber(ARGV[i + 2])
  local v = redis.call('HGET', KEYS[2], ARGV[i])
  local d, rem, charged, h
  if v then d, rem, charged, h = string.match(v, RES_PATTERN) end
  if d and h == '' then
    -- what the worker counted as spent, charged or not (RELEASE needs it)
    redis.call('HSET', KEYS[2], ARGV[i],
               string.format(RES_FORMAT, d, int(tonumber(rem) - spent),
                             int(tonumber(charged) + tonumber(ARGV[i + 2])),
                             ''))
  else
    bal = bal - spent
  end
end
for i = 1, nk do used = used + keys[i].cost end
if bal ~= 0 then redis.call('HINCRBY', KEYS[1], 'balance', int(bal)) end
redis.call('HINCRBY', KEYS[1], 'used', int(used))
redis.call('HINCRBY', KEYS[1], 'requests', nrec)
for i = 1, nk do
  local k = keys[i]
  if k.exists and k.req > 0 then
    redis.call('HINCRBY', KEYS[5 + i], 'used', int(k.cost))
    redis.call('HINCRBY', KEYS[5 + i], 'requests', int(k.req))
    if k.quota and k.qd ~= 0 then
      redis.call('HINCRBY', KEYS[5 + i], 'quota', int(k.qd))
    end
    if k.same then
      redis.call('HINCRBY', KEYS[5 + i], 'rl_t', int(k.tok))
    else
      redis.call('HSET', KEYS[5 + i], 'rl_m', minute, 'rl_r', 0,
                 'rl_t', int(k.tok))
    end
  end
end
local stats = {}
local names = {'requests', 'errors', 'prompt_tokens',
               'completion_tokens', 'cost'}
for i = gp, xp - 1, 7 do
  for j, f in ipairs(names) do
    local v = tonumber(ARGV[i + 1 + j])
    for _, n in ipairs({f, 'key:' .. ARGV[i] .. ':' .. f,
                        'model:' .. ARGV[i + 1] .. ':' .. f}) do
      stats[n] = (stats[n] or 0) + v
    end
  end
end
for f, v in pairs(stats) do
  if v ~= 0 then redis.call('HINCRBY', KEYS[5], f, int(v)) end
end
redis.call('EXPIRE', KEYS[5], 34560000)
local cap = math.max(1, math.floor(tonumber(ARGV[3]) / nrec))
local x = {KEYS[4], 'MAXLEN', '~', cap, '*'}
for i = xp, #ARGV do
  x[#x + 1] = 'r'
  x[#x + 1] = ARGV[i]
end
redis.call('XADD', unpack(x))
-- a video task the upstream accepted ("task" in its record): kept with
-- its charge, for polls and refunds (REFUND), 30 days
local function idstr(v)
  if type(v) == 'number' then return int(v) end
  return tostring(v or '')
end
local upre = string.sub(KEYS[1], 1, #KEYS[1] - #RKEY_U_USER)
for i = xp, #ARGV do
  if string.find(ARGV[i], '"task":"', 1, true) then
    local ok, rec = pcall(cjson.decode, ARGV[i])
    if ok and type(rec) == 'table' and type(rec.task) == 'string'
       and string.match(rec.task, '^[%w_-]+$') then
      local kh, unl = '', false
      for j = 1, nk do
        if keys[j].id and keys[j].id == idstr(rec.key_id) then
          kh = string.sub(KEYS[5 + j], #upre + #RKEY_U_KEY + 1)
          unl = keys[j].unl
        end
      end
      local cost = tonumber(rec.cost) or 0
      local tk = upre .. RKEY_U_TASK .. rec.task
      redis.call('HSET', tk, 'channel', idstr(rec.channel),
                 'model', idstr(rec.model), 'key', kh,
                 'key_id', idstr(rec.key_id), 'cost', int(cost),
                 'charged', unl and '0' or int(cost),
                 'request', idstr(rec.request_id), 'created', int(now),
                 'api', idstr(rec.task_api or 'video'))
      if (tonumber(rec.seconds) or 0) > 0 then
        redis.call('HSET', tk, 'seconds', int(tonumber(rec.seconds)))
      end
      if type(rec.remix_of) == 'string' then
        redis.call('HSET', tk, 'remix_of', rec.remix_of)
      end
      redis.call('EXPIRE', tk, 2592000)
      -- unfinished until REFUND hears otherwise (ai-relay tasks reconcile
      -- polls these)
      local d = redis.call('HMGET', tk, 'status', 'refunded', 'completed')
      if not (d[2] or d[3] or d[1] == 'failed' or d[1] == 'cancelled'
              or d[1] == 'expired' or d[1] == 'deleted') then
        redis.call('ZADD', upre .. RKEY_U_TASKS_OPEN, int(now), rec.task)
      end
    end
  end
end
redis.call('SET', KEYS[3], '1', 'EX', 604800)
return nrec
