-- REFUND: what an upstream said of an async task (a video): its status is
-- recorded in the task's hash, with its history, and a task that ended
-- without its video (failed, cancelled, expired, deleted before the relay
-- saw it completed) gets what it was charged back, once.  The task's hash
-- says whether it was.  Run by the module for each poll, download and
-- delete of a task, and by `ai-relay tasks reconcile`.
--
-- KEYS[1] ar:{u<id>}:user        KEYS[2] ar:{u<id>}:task:<task id>
-- KEYS[3] ar:{u<id>}:log         KEYS[4] ar:{u<id>}:stats:<yyyymmdd>
-- KEYS[5] ar:{u<id>}:tasks:open  the user's unfinished tasks
-- ARGV[1] "ar:{u<id>}:"          ARGV[2] records kept
-- ARGV[3] the refund's record, a JSON object without its end: the script
--         adds the cost (negative) and the closing brace
-- ARGV[4] the status seen: queued, in_progress (unfinished: recorded
--         only), completed (recorded, never refunded), failed, cancelled,
--         expired, deleted (refunded unless the task was seen completed);
--         another word is recorded as unfinished
-- ARGV[5] unix time, seconds
--
-- The task hash (written when the upstream accepted the task): key
-- (sha256), key_id, model, cost (micro-USD, metered), charged (what left
-- the balance: 0 for unlimited users and keys); then status (the last
-- one seen), history ("<time>:<status>" of the last 16 changes, space
-- separated), completed (when it was first seen completed), refunded.
-- Once a task has ended (any of the statuses above but queued and
-- in_progress), an unfinished status is not recorded any more, and the
-- task leaves KEYS[5].
--
-- -> { 1 if refunded now else 0, the micro-USD given back, 1 if the
--      status changed else 0 }; {0, 0, 0} for an unknown task

local st = ARGV[4] or 'failed'
local now = tonumber(ARGV[5] or '0') or 0
if #st > 32 or not string.match(st, '^[%w_]+$') then
  return redis.error_reply('bad task status')
end
local id = string.sub(KEYS[2], #ARGV[1] + #RKEY_U_TASK + 1)
local t = redis.call('HMGET', KEYS[2], 'cost', 'charged', 'refunded', 'key',
                     'key_id', 'model', 'status', 'history', 'completed')
if not t[1] then
  if KEYS[5] then redis.call('ZREM', KEYS[5], id) end
  return {0, 0, 0}
end
local ended = {completed = true, failed = true, cancelled = true,
               expired = true, deleted = true}
local prev = t[7]
local changed = 0
if st ~= prev and (ended[st] or not ended[prev or '']) then
  local h = {}
  for e in string.gmatch(t[8] or '', '%S+') do h[#h + 1] = e end
  h[#h + 1] = string.format('%.0f', now) .. ':' .. st
  while #h > 16 do table.remove(h, 1) end
  redis.call('HSET', KEYS[2], 'status', st, 'history', table.concat(h, ' '))
  changed = 1
end
if st == 'completed' and not t[9] then
  redis.call('HSET', KEYS[2], 'completed', string.format('%.0f', now))
end
if ended[st] and KEYS[5] then
  redis.call('ZREM', KEYS[5], id)
end
if st == 'completed' or not ended[st] or t[3] == '1' or t[9] then
  return {0, 0, changed}
end
local cost = tonumber(t[1]) or 0
local charged = tonumber(t[2]) or 0
redis.call('HSET', KEYS[2], 'refunded', '1')
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
return {1, charged, changed}
