
/*
 * Copyright (C) ngx_ai_relay authors
 *
 * The Redis side of the relay.  Every script touches the keys of one
 * hash tag only ({cfg} for routing, {u<id>} for one user), so they run
 * unchanged on Redis Cluster.  The key layout is documented in README.
 *
 * Money is integer micro-USD and is only ever changed with HINCRBY, so
 * Lua's doubles never round a balance.
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_ai_relay_lua.h"


/*
 * ROUTE: resolve a model alias chain and return the channels and price.
 *
 * KEYS[1] ar:{cfg}:version
 * ARGV[1] model name as the client sent it
 * ARGV[2] longest alias chain allowed
 *
 * -> {"ok", resolved, version, priced_as, {price k, v, ...},
 *     {id, provider, base_url, keys, priority, weight, status, upstream
 *      model}, ...}
 *  | {"unknown", name, version}
 *  | {"broken"|"cycle"|"deep", "a -> b -> ...", version}
 */

static char  ngx_ai_relay_script_route[] =
"local p = 'ar:{cfg}:'\n"
"local version = redis.call('GET', KEYS[1]) or '0'\n"
"local name = ARGV[1]\n"
"local depth = tonumber(ARGV[2])\n"
"local chain = {name}\n"
"local m\n"
"while true do\n"
"  m = redis.call('HMGET', p .. 'model:' .. name, 'alias', 'channels')\n"
"  if not m[1] and not m[2] then\n"
"    if #chain == 1 then return {'unknown', name, version} end\n"
"    return {'broken', table.concat(chain, ' -> '), version}\n"
"  end\n"
"  if not m[1] or m[1] == '' then break end\n"
"  name = m[1]\n"
"  for _, seen in ipairs(chain) do\n"
"    if seen == name then\n"
"      chain[#chain + 1] = name\n"
"      return {'cycle', table.concat(chain, ' -> '), version}\n"
"    end\n"
"  end\n"
"  chain[#chain + 1] = name\n"
"  if #chain > depth + 1 then\n"
"    return {'deep', table.concat(chain, ' -> '), version}\n"
"  end\n"
"end\n"
"local priced, price = '', {}\n"
"for _, n in ipairs(chain) do\n"
"  price = redis.call('HGETALL', p .. 'price:' .. n)\n"
"  if #price > 0 then priced = n break end\n"
"end\n"
"local out = {'ok', name, version, priced,\n"
"             price}\n"
"for id in string.gmatch(m[2] or '', '[^,%s]+') do\n"
"  local c = redis.call('HMGET', p .. 'channel:' .. id, 'provider',\n"
"                      'base_url', 'keys', 'priority', 'weight',\n"
"                      'status', 'map:' .. name)\n"
"  if c[1] then\n"
"    out[#out + 1] = {id, c[1], c[2] or '', c[3] or '', c[4] or '0',\n"
"                     c[5] or '1', c[6] or 'enabled', c[7] or name}\n"
"  end\n"
"end\n"
"return out\n";


/*
 * AUTH: check a key and its owner, count the request, reserve money.
 *
 * KEYS[1] ar:{u<id>}:user        KEYS[2] ar:{u<id>}:key:<sha256>
 * KEYS[3] ar:{u<id>}:res
 * ARGV[1] "reserve" or "check"   ARGV[2] request id
 * ARGV[3] unix time, seconds     ARGV[4] model as the client sent it
 * ARGV[5] reservation, micro-USD ARGV[6] reservation TTL, seconds
 * ARGV[7] sha256 of the key      ARGV[8] "ar:{u<id>}:"
 *
 * A request its worker gave up on may be released before its AUTH runs:
 * RELEASE then left "ar:{u<id>}:gone:<request id>" and AUTH reserves
 * nothing ({'gone'}).
 *
 * A reservation is res[request id] = "<deadline>|<uUSD>|<uUSD of the
 * key's quota>|<sha256>".  Those past their deadline (their worker died)
 * are refunded here, looked for at most every min(TTL, 60) seconds.
 * The key hash keeps this minute's counters: rl_m, rl_r, rl_t.
 *
 * -> {status, detail, key id, allowed models, unlimited, expires, fast}
 *    fast = "1": the key has no rate limit and no budget of its own, so a
 *    worker may admit its requests against a lease (see LEASE)
 */

static char  ngx_ai_relay_script_auth[] =
"local now = tonumber(ARGV[3])\n"
"local ttl = tonumber(ARGV[6])\n"
"local uf = {'status', 'balance', 'unlimited', 'reclaim_at'}\n"
"local kf = {'id', 'status', 'expires', 'models', 'rpm', 'tpm', 'quota',\n"
"            'unlimited', 'rl_m', 'rl_r', 'rl_t'}\n"
"if ARGV[1] == 'reserve'\n"
"   and redis.call('EXISTS', ARGV[8] .. 'gone:' .. ARGV[2]) == 1 then\n"
"  return {'gone', ''}\n"
"end\n"
"local u = redis.call('HMGET', KEYS[1], unpack(uf))\n"
"if (tonumber(u[4]) or 0) <= now then\n"
"  local res = redis.call('HGETALL', KEYS[3])\n"
"  for i = 1, #res, 2 do\n"
"    local d, amt, kamt, h =\n"
"      string.match(res[i + 1], '^(%d+)|(%-?%d+)|(%d+)|(%x*)$')\n"
"    if d and tonumber(d) <= now then\n"
"      if amt ~= '0' then\n"
"        redis.call('HINCRBY', KEYS[1], 'balance', amt)\n"
"      end\n"
"      local kk = ARGV[8] .. 'key:' .. h\n"
"      if kamt ~= '0' and redis.call('EXISTS', kk) == 1 then\n"
"        redis.call('HINCRBY', kk, 'quota', kamt)\n"
"      end\n"
"      redis.call('HDEL', KEYS[3], res[i])\n"
"    end\n"
"  end\n"
"  redis.call('HSET', KEYS[1], 'reclaim_at', now + math.min(ttl, 60))\n"
"  u = redis.call('HMGET', KEYS[1], unpack(uf))\n"
"end\n"
"local k = redis.call('HMGET', KEYS[2], unpack(kf))\n"
"if not k[1] then return {'unknown_key', ''} end\n"
"if not u[1] and not u[2] then return {'unknown_key', ''} end\n"
"if k[2] == 'disabled' then return {'key_disabled', '', k[1]} end\n"
"local exp = tonumber(k[3] or '0') or 0\n"
"if k[2] == 'expired' or (exp > 0 and now >= exp) then\n"
"  return {'key_expired', '', k[1]}\n"
"end\n"
"if u[1] == 'disabled' then return {'user_disabled', '', k[1]} end\n"
"if k[2] == 'exhausted' and ARGV[1] ~= 'check' then\n"
"  return {'key_quota', '0', k[1]}\n"
"end\n"
"local models = k[4] or ''\n"
"local unlimited = (u[3] == '1' or k[8] == '1')\n"
"local fast = ((tonumber(k[5] or '0') or 0) == 0\n"
"             and (tonumber(k[6] or '0') or 0) == 0\n"
"             and (tonumber(k[7] or '-1') or -1) < 0) and '1' or '0'\n"
"if ARGV[1] == 'check' then\n"
"  return {'ok', '', k[1], models, unlimited and '1' or '0', tostring(exp),\n"
"          fast}\n"
"end\n"
"if models ~= '' and not string.find(',' .. models .. ',',\n"
"                                    ',' .. ARGV[4] .. ',', 1, true) then\n"
"  return {'model_not_allowed', '', k[1]}\n"
"end\n"
"local minute = math.floor(now / 60)\n"
"local r, t = 0, 0\n"
"if tonumber(k[9]) == minute then\n"
"  r = tonumber(k[10]) or 0\n"
"  t = tonumber(k[11]) or 0\n"
"end\n"
"local retry = tostring(60 - now % 60)\n"
"local rpm = tonumber(k[5] or '0') or 0\n"
"local tpm = tonumber(k[6] or '0') or 0\n"
"if rpm > 0 and r >= rpm then return {'rpm', retry, k[1]} end\n"
"if tpm > 0 and t >= tpm then return {'tpm', retry, k[1]} end\n"
"local est = ARGV[5]\n"
"local kamt = '0'\n"
"if unlimited then\n"
"  est = '0'\n"
"else\n"
"  local bal = tonumber(u[2] or '0') or 0\n"
"  if bal <= 0 then return {'quota', u[2] or '0', k[1]} end\n"
"  if bal < tonumber(est) then return {'quota_short', u[2], k[1]} end\n"
"  local kq = tonumber(k[7] or '-1') or -1\n"
"  if kq >= 0 then\n"
"    if kq <= 0 then return {'key_quota', k[7], k[1]} end\n"
"    if kq < tonumber(est) then return {'key_quota_short', k[7], k[1]} end\n"
"    kamt = est\n"
"  end\n"
"end\n"
"if est ~= '0' then\n"
"  redis.call('HINCRBY', KEYS[1], 'balance', '-' .. est)\n"
"  if kamt ~= '0' then\n"
"    redis.call('HINCRBY', KEYS[2], 'quota', '-' .. kamt)\n"
"  end\n"
"  redis.call('HSET', KEYS[3], ARGV[2],\n"
"             (now + ttl) .. '|' .. est .. '|' .. kamt .. '|' .. ARGV[7])\n"
"end\n"
"redis.call('HSET', KEYS[2], 'rl_m', minute, 'rl_r', r + 1, 'rl_t', t)\n"
"return {'ok', '', k[1], models, unlimited and '1' or '0', tostring(exp),\n"
"        fast}\n";


/*
 * SETTLE: a batch of finished requests of one user: refund their
 * reservations, charge their actual costs, write their records and the
 * counters, in one atomic script.  Idempotent by batch id: a replay from
 * the journal finds the "done" marker and changes nothing.  The worker
 * sums the batch per key, per lease and per key and model, so Redis works
 * per request only to refund a reservation and to add the record.
 *
 * KEYS[1] ar:{u<id>}:user        KEYS[2] ar:{u<id>}:res
 * KEYS[3] ar:{u<id>}:done:<batch id>
 * KEYS[4] ar:{u<id>}:log         KEYS[5] ar:{u<id>}:stats:<yyyymmdd>
 * KEYS[6..] ar:{u<id>}:key:<sha256>, each key of the batch once
 * ARGV[1] batch id    ARGV[2] unix time, seconds   ARGV[3] records kept
 * ARGV[4] R, requests with their own reservation   ARGV[5] L, leases
 * ARGV[6] G, key and model pairs
 * then per key of KEYS[6..]: cost (micro-USD), requests, tokens
 * then R times: request id, key (1 for KEYS[6]...), cost
 * then L times: lease id, key, cost: it comes out of the lease, or out
 * of the balance once the lease is gone
 * then G times: key id, model, requests, errors, prompt tokens,
 * completion tokens, cost (the daily counters)
 * then the records, one per request: JSON objects, added as one stream
 * entry with an "r" field per record (one XADD for the batch costs Redis
 * a fraction of one per request); the stream is capped at about ARGV[3]
 * records, counted in entries of this batch's size
 *
 * Unlimited users and keys are metered, not charged.  Every argument is
 * checked before anything is written: a malformed batch (a journal from
 * another version) changes nothing.
 *
 * -> the number of requests settled now, 0 if the batch was settled
 */

static char  ngx_ai_relay_script_settle[] =
"if redis.call('EXISTS', KEYS[3]) == 1 then return 0 end\n"
"local now = tonumber(ARGV[2])\n"
"local minute = math.floor(now / 60)\n"
"local function int(v) return string.format('%.0f', v) end\n"
"local function bad(i)\n"
"  return redis.error_reply('malformed settlement at argument ' .. i)\n"
"end\n"
"local nk = #KEYS - 5\n"
"local nres, nlease, ngrp = tonumber(ARGV[4]), tonumber(ARGV[5]),\n"
"                           tonumber(ARGV[6])\n"
"if not (now and tonumber(ARGV[3]) and nres and nlease and ngrp) then\n"
"  return bad(2)\n"
"end\n"
"local kp = 7\n"
"local rp = kp + 3 * nk\n"
"local lp = rp + 3 * nres\n"
"local gp = lp + 3 * nlease\n"
"local xp = gp + 7 * ngrp\n"
"local nrec = #ARGV - xp + 1\n"
"if nrec < 1 then return bad(#ARGV) end\n"
"local keys, total = {}, 0\n"
"for i = 1, nk do\n"
"  local c, q, t = tonumber(ARGV[kp + 3 * i - 3]),\n"
"                  tonumber(ARGV[kp + 3 * i - 2]),\n"
"                  tonumber(ARGV[kp + 3 * i - 1])\n"
"  if not (c and q and t) then return bad(kp + 3 * i - 3) end\n"
"  keys[i] = {cost = c, req = q, tok = t, qd = 0}\n"
"  total = total + q\n"
"end\n"
"if total ~= nrec then return bad(kp) end\n"
"for i = rp, gp - 1, 3 do\n"
"  if not (keys[tonumber(ARGV[i + 1])] and tonumber(ARGV[i + 2])) then\n"
"    return bad(i)\n"
"  end\n"
"end\n"
"for i = gp, xp - 1, 7 do\n"
"  for j = 2, 6 do\n"
"    if not tonumber(ARGV[i + j]) then return bad(i + j) end\n"
"  end\n"
"end\n"
"local uunl = redis.call('HGET', KEYS[1], 'unlimited') == '1'\n"
"for i = 1, nk do\n"
"  local k = redis.call('HMGET', KEYS[5 + i], 'id', 'unlimited', 'quota',\n"
"                       'rl_m')\n"
"  keys[i].exists = k[1] ~= false\n"
"  keys[i].unl = uunl or k[2] == '1'\n"
"  keys[i].quota = (tonumber(k[3] or '-1') or -1) >= 0\n"
"  keys[i].same = tonumber(k[4]) == minute\n"
"end\n"
"local bal, used = 0, 0\n"
"if nres > 0 then\n"
"  local ids = {}\n"
"  for i = rp, lp - 1, 3 do ids[#ids + 1] = ARGV[i] end\n"
"  local res = redis.call('HMGET', KEYS[2], unpack(ids))\n"
"  redis.call('HDEL', KEYS[2], unpack(ids))\n"
"  for j = 1, nres do\n"
"    local i = rp + 3 * j - 3\n"
"    local k = keys[tonumber(ARGV[i + 1])]\n"
"    local charge = k.unl and 0 or tonumber(ARGV[i + 2])\n"
"    local amt, kamt = 0, 0\n"
"    if res[j] then\n"
"      local a, b = string.match(res[j], '^%d+|(%d+)|(%d+)|')\n"
"      amt, kamt = tonumber(a) or 0, tonumber(b) or 0\n"
"    end\n"
"    bal = bal + amt - charge\n"
"    if k.quota then k.qd = k.qd + kamt - charge end\n"
"  end\n"
"end\n"
"for i = lp, gp - 1, 3 do\n"
"  local k = keys[tonumber(ARGV[i + 1])]\n"
"  local spent = k.unl and 0 or tonumber(ARGV[i + 2])\n"
"  local v = redis.call('HGET', KEYS[2], ARGV[i])\n"
"  local d, rem\n"
"  if v then d, rem = string.match(v, '^(%d+)|(%-?%d+)|') end\n"
"  if d then\n"
"    redis.call('HSET', KEYS[2], ARGV[i],\n"
"               d .. '|' .. int(tonumber(rem) - spent) .. '|0|')\n"
"  else\n"
"    bal = bal - spent\n"
"  end\n"
"end\n"
"for i = 1, nk do used = used + keys[i].cost end\n"
"if bal ~= 0 then redis.call('HINCRBY', KEYS[1], 'balance', int(bal)) end\n"
"redis.call('HINCRBY', KEYS[1], 'used', int(used))\n"
"redis.call('HINCRBY', KEYS[1], 'requests', nrec)\n"
"for i = 1, nk do\n"
"  local k = keys[i]\n"
"  if k.exists and k.req > 0 then\n"
"    redis.call('HINCRBY', KEYS[5 + i], 'used', int(k.cost))\n"
"    redis.call('HINCRBY', KEYS[5 + i], 'requests', int(k.req))\n"
"    if k.quota and k.qd ~= 0 then\n"
"      redis.call('HINCRBY', KEYS[5 + i], 'quota', int(k.qd))\n"
"    end\n"
"    if k.same then\n"
"      redis.call('HINCRBY', KEYS[5 + i], 'rl_t', int(k.tok))\n"
"    else\n"
"      redis.call('HSET', KEYS[5 + i], 'rl_m', minute, 'rl_r', 0,\n"
"                 'rl_t', int(k.tok))\n"
"    end\n"
"  end\n"
"end\n"
"local stats = {}\n"
"local names = {'requests', 'errors', 'prompt_tokens',\n"
"               'completion_tokens', 'cost'}\n"
"for i = gp, xp - 1, 7 do\n"
"  for j, f in ipairs(names) do\n"
"    local v = tonumber(ARGV[i + 1 + j])\n"
"    for _, n in ipairs({f, 'key:' .. ARGV[i] .. ':' .. f,\n"
"                        'model:' .. ARGV[i + 1] .. ':' .. f}) do\n"
"      stats[n] = (stats[n] or 0) + v\n"
"    end\n"
"  end\n"
"end\n"
"for f, v in pairs(stats) do\n"
"  if v ~= 0 then redis.call('HINCRBY', KEYS[5], f, int(v)) end\n"
"end\n"
"redis.call('EXPIRE', KEYS[5], 34560000)\n"
"local cap = math.max(1, math.floor(tonumber(ARGV[3]) / nrec))\n"
"local x = {KEYS[4], 'MAXLEN', '~', cap, '*'}\n"
"for i = xp, #ARGV do\n"
"  x[#x + 1] = 'r'\n"
"  x[#x + 1] = ARGV[i]\n"
"end\n"
"redis.call('XADD', unpack(x))\n"
"redis.call('SET', KEYS[3], '1', 'EX', 604800)\n"
"return nrec\n";


/*
 * LEASE: move money from a busy user's balance to a worker, which then
 * admits the user's requests against it without asking Redis each time.
 * A lease is kept in the reservations hash like a reservation, so a
 * worker that dies has its lease refunded after the reservation TTL.
 * Every LEASE moves the lease's deadline; a LEASE of 0 does only that.
 *
 * KEYS[1] ar:{u<id>}:user        KEYS[2] ar:{u<id>}:res
 * ARGV[1] lease id   ARGV[2] micro-USD wanted   ARGV[3] unix time
 * ARGV[4] TTL, seconds   ARGV[5] micro-USD below which a grant is not
 * worth it   ARGV[6] "1" if the worker holds this lease already
 *
 * At most half the balance is lent: what stays serves the user's requests
 * elsewhere (other workers, other nodes) through AUTH, exactly.
 *
 * -> micro-USD granted (added to the lease), 0 if none, -1 if the worker
 *    thought it held the lease but it is gone (reclaimed): it must stop
 *    spending it
 */

static char  ngx_ai_relay_script_lease[] =
"local v = redis.call('HGET', KEYS[2], ARGV[1])\n"
"if ARGV[6] == '1' and not v then return -1 end\n"
"local rem = v and tonumber(string.match(v, '^%d+|(%-?%d+)|')) or 0\n"
"local deadline = tonumber(ARGV[3]) + tonumber(ARGV[4])\n"
"local function keep(amount)\n"
"  redis.call('HSET', KEYS[2], ARGV[1],\n"
"             deadline .. '|' .. string.format('%.0f', amount) .. '|0|')\n"
"end\n"
"local u = redis.call('HMGET', KEYS[1], 'status', 'balance', 'unlimited')\n"
"local grant = 0\n"
"if u[1] ~= 'disabled' and u[3] ~= '1' then\n"
"  local bal = tonumber(u[2] or '0') or 0\n"
"  grant = math.min(tonumber(ARGV[2]), math.floor(bal / 2))\n"
"  if grant < tonumber(ARGV[5]) or tonumber(ARGV[2]) == 0 then grant = 0 end\n"
"  if grant > 0 then\n"
"    redis.call('HSET', KEYS[1], 'balance', string.format('%.0f', bal - grant))\n"
"  end\n"
"end\n"
"if grant > 0 or v then keep(rem + grant) end\n"
"return grant\n";


/*
 * RELEASE: a worker gives back what is left of a lease, or of a request's
 * reservation whose request gave up before AUTH answered.  Sent after the
 * settlements of the lease's requests on the same connection, so they
 * are applied first.
 *
 * KEYS[1] ar:{u<id>}:user        KEYS[2] ar:{u<id>}:res
 * ARGV[1] lease or request id
 * for a lease:   ARGV[2] micro-USD its worker spent but Redis has not
 *                settled yet: that much stays in the lease for those
 *                settlements (what they do not take is refunded at the
 *                deadline)
 * for a request: ARGV[2] "ar:{u<id>}:" (a reservation's key quota part
 *                goes back to that key); ARGV[3] seconds to keep
 *                "ar:{u<id>}:gone:<request id>", which makes an AUTH still
 *                on its way reserve nothing
 *
 * -> 1, or 0 if there was no such lease or reservation
 */

static char  ngx_ai_relay_script_release[] =
"local v = redis.call('HGET', KEYS[2], ARGV[1])\n"
"local owed = tonumber(ARGV[2])\n"
"if not v then\n"
"  if ARGV[3] and not owed then\n"
"    redis.call('SET', ARGV[2] .. 'gone:' .. ARGV[1], '1', 'EX', ARGV[3])\n"
"  end\n"
"  return 0\n"
"end\n"
"local d, rem, kamt, h = string.match(v, '^(%d+)|(%-?%d+)|(%d*)|(%x*)$')\n"
"if not d then return 0 end\n"
"rem = tonumber(rem)\n"
"if owed then\n"
"  if owed < 0 then owed = 0 end\n"
"  if rem > owed then\n"
"    redis.call('HINCRBY', KEYS[1], 'balance', string.format('%.0f', rem - owed))\n"
"    rem = owed\n"
"  end\n"
"  if rem ~= 0 then\n"
"    redis.call('HSET', KEYS[2], ARGV[1],\n"
"               d .. '|' .. string.format('%.0f', rem) .. '|0|')\n"
"    return 1\n"
"  end\n"
"  redis.call('HDEL', KEYS[2], ARGV[1])\n"
"  return 1\n"
"end\n"
"if rem ~= 0 then\n"
"  redis.call('HINCRBY', KEYS[1], 'balance', string.format('%.0f', rem))\n"
"end\n"
"if kamt ~= '' and kamt ~= '0' and h ~= '' then\n"
"  local kk = ARGV[2] .. 'key:' .. h\n"
"  if redis.call('EXISTS', kk) == 1 then\n"
"    redis.call('HINCRBY', kk, 'quota', kamt)\n"
"  end\n"
"end\n"
"redis.call('HDEL', KEYS[2], ARGV[1])\n"
"return 1\n";


/*
 * MODELS: the models GET /v1/models may list.
 *
 * KEYS[1] ar:{cfg}:models
 * -> {{name, owned_by, created}, ...} sorted by name
 */

static char  ngx_ai_relay_script_models[] =
"local names = redis.call('SMEMBERS', KEYS[1])\n"
"table.sort(names)\n"
"local out = {}\n"
"for _, n in ipairs(names) do\n"
"  local m = redis.call('HMGET', 'ar:{cfg}:model:' .. n, 'owned_by',\n"
"                      'created', 'hidden')\n"
"  if m[3] ~= '1' then\n"
"    out[#out + 1] = {n, m[1] or 'ai-relay', m[2] or '0'}\n"
"  end\n"
"end\n"
"return out\n";


ngx_str_t  ngx_ai_relay_scripts[NGX_AI_RELAY_NSCRIPTS] = {
    { sizeof(ngx_ai_relay_script_route) - 1,
      (u_char *) ngx_ai_relay_script_route },
    { sizeof(ngx_ai_relay_script_auth) - 1,
      (u_char *) ngx_ai_relay_script_auth },
    { sizeof(ngx_ai_relay_script_settle) - 1,
      (u_char *) ngx_ai_relay_script_settle },
    { sizeof(ngx_ai_relay_script_models) - 1,
      (u_char *) ngx_ai_relay_script_models },
    { sizeof(ngx_ai_relay_script_lease) - 1,
      (u_char *) ngx_ai_relay_script_lease },
    { sizeof(ngx_ai_relay_script_release) - 1,
      (u_char *) ngx_ai_relay_script_release }
};
