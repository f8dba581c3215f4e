
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
 * KEYS[1] ar:{u<id>}:user       KEYS[2] ar:{u<id>}:key:<sha256>
 * KEYS[3] ar:{u<id>}:rl:<sha256> KEYS[4] ar:{u<id>}:res
 * KEYS[5] ar:{u<id>}:resq
 * ARGV[1] "reserve" or "check"   ARGV[2] request id
 * ARGV[3] unix time, seconds     ARGV[4] model as the client sent it
 * ARGV[5] reservation, micro-USD ARGV[6] reservation TTL, seconds
 * ARGV[7] "ar:{u<id>}:"          ARGV[8] sha256 of the key
 *
 * -> {status, detail, key id, allowed models, unlimited}
 */

static char  ngx_ai_relay_script_auth[] =
"local now = tonumber(ARGV[3])\n"
"local pre = ARGV[7]\n"
"local old = redis.call('ZRANGEBYSCORE', KEYS[5], '-inf', now,\n"
"                       'LIMIT', 0, 32)\n"
"for _, id in ipairs(old) do\n"
"  local v = redis.call('HGET', KEYS[4], id)\n"
"  if v then\n"
"    local amt, kamt, h = string.match(v, '^(%d+)|(%d+)|(%x*)$')\n"
"    if amt and amt ~= '0' then\n"
"      redis.call('HINCRBY', KEYS[1], 'balance', amt)\n"
"    end\n"
"    if kamt and kamt ~= '0'\n"
"       and redis.call('EXISTS', pre .. 'key:' .. h) == 1 then\n"
"      redis.call('HINCRBY', pre .. 'key:' .. h, 'quota', kamt)\n"
"    end\n"
"    redis.call('HDEL', KEYS[4], id)\n"
"  end\n"
"  redis.call('ZREM', KEYS[5], id)\n"
"end\n"
"local k = redis.call('HMGET', KEYS[2], 'id', 'status', 'expires',\n"
"                     'models', 'rpm', 'tpm', 'quota', 'unlimited')\n"
"if not k[1] then return {'unknown_key', ''} end\n"
"local u = redis.call('HMGET', KEYS[1], 'status', 'balance', 'unlimited')\n"
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
"if ARGV[1] == 'check' then\n"
"  return {'ok', '', k[1], models, unlimited and '1' or '0'}\n"
"end\n"
"if models ~= '' and not string.find(',' .. models .. ',',\n"
"                                    ',' .. ARGV[4] .. ',', 1, true) then\n"
"  return {'model_not_allowed', '', k[1]}\n"
"end\n"
"local minute = math.floor(now / 60)\n"
"local rl = redis.call('HMGET', KEYS[3], 'm', 'r', 't')\n"
"local r, t = 0, 0\n"
"if tonumber(rl[1]) == minute then\n"
"  r = tonumber(rl[2]) or 0\n"
"  t = tonumber(rl[3]) or 0\n"
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
"  redis.call('HSET', KEYS[4], ARGV[2], est .. '|' .. kamt .. '|' .. ARGV[8])\n"
"  redis.call('ZADD', KEYS[5], now + tonumber(ARGV[6]), ARGV[2])\n"
"end\n"
"redis.call('HSET', KEYS[3], 'm', minute, 'r', r + 1, 't', t)\n"
"redis.call('EXPIRE', KEYS[3], 120)\n"
"return {'ok', '', k[1], models, unlimited and '1' or '0'}\n";


/*
 * SETTLE: charge the actual cost, refund the reservation, write the
 * record and the counters.  Idempotent by request id: a replay from the
 * journal finds the "done" marker and changes nothing.
 *
 * KEYS[1] ar:{u<id>}:user        KEYS[2] ar:{u<id>}:key:<sha256>
 * KEYS[3] ar:{u<id>}:rl:<sha256> KEYS[4] ar:{u<id>}:res
 * KEYS[5] ar:{u<id>}:resq        KEYS[6] ar:{u<id>}:done:<request id>
 * KEYS[7] ar:{u<id>}:log         KEYS[8] ar:{u<id>}:stats:<yyyymmdd>
 * ARGV[1] request id   ARGV[2] cost, micro-USD  ARGV[3] prompt tokens
 * ARGV[4] completion tokens       ARGV[5] unix time, seconds
 * ARGV[6] records kept ARGV[7] key id           ARGV[8] model
 * ARGV[9] status       ARGV[10..] record fields and values
 *
 * -> 1 settled now, 0 already settled
 */

static char  ngx_ai_relay_script_settle[] =
"if redis.call('EXISTS', KEYS[6]) == 1 then return 0 end\n"
"local amt, kamt = '0', '0'\n"
"local v = redis.call('HGET', KEYS[4], ARGV[1])\n"
"if v then\n"
"  amt, kamt = string.match(v, '^(%d+)|(%d+)|')\n"
"  redis.call('HDEL', KEYS[4], ARGV[1])\n"
"  redis.call('ZREM', KEYS[5], ARGV[1])\n"
"end\n"
"local cost = ARGV[2]\n"
"local u = redis.call('HMGET', KEYS[1], 'unlimited')\n"
"local k = redis.call('HMGET', KEYS[2], 'unlimited', 'quota')\n"
"local haskey = redis.call('EXISTS', KEYS[2]) == 1\n"
"local charge = not (u[1] == '1' or k[1] == '1') and cost ~= '0'\n"
"if amt ~= '0' then redis.call('HINCRBY', KEYS[1], 'balance', amt) end\n"
"if charge then redis.call('HINCRBY', KEYS[1], 'balance', '-' .. cost) end\n"
"if haskey and (tonumber(k[2] or '-1') or -1) >= 0 then\n"
"  if kamt ~= '0' then redis.call('HINCRBY', KEYS[2], 'quota', kamt) end\n"
"  if charge then\n"
"    redis.call('HINCRBY', KEYS[2], 'quota', '-' .. cost)\n"
"  end\n"
"end\n"
"redis.call('HINCRBY', KEYS[1], 'used', cost)\n"
"redis.call('HINCRBY', KEYS[1], 'requests', 1)\n"
"if haskey then\n"
"  redis.call('HINCRBY', KEYS[2], 'used', cost)\n"
"  redis.call('HINCRBY', KEYS[2], 'requests', 1)\n"
"end\n"
"local minute = math.floor(tonumber(ARGV[5]) / 60)\n"
"local tok = ARGV[3] + ARGV[4]\n"
"local rl = redis.call('HMGET', KEYS[3], 'm')\n"
"if tonumber(rl[1]) == minute then\n"
"  redis.call('HINCRBY', KEYS[3], 't', tok)\n"
"else\n"
"  redis.call('HSET', KEYS[3], 'm', minute, 'r', 0, 't', tok)\n"
"end\n"
"redis.call('EXPIRE', KEYS[3], 120)\n"
"local rec = {}\n"
"for i = 10, #ARGV do rec[#rec + 1] = ARGV[i] end\n"
"redis.call('XADD', KEYS[7], 'MAXLEN', '~', ARGV[6], '*', unpack(rec))\n"
"local err = (tonumber(ARGV[9]) or 0) >= 400 and 1 or 0\n"
"for _, f in ipairs({'', 'key:' .. ARGV[7] .. ':',\n"
"                    'model:' .. ARGV[8] .. ':'}) do\n"
"  redis.call('HINCRBY', KEYS[8], f .. 'requests', 1)\n"
"  redis.call('HINCRBY', KEYS[8], f .. 'errors', err)\n"
"  redis.call('HINCRBY', KEYS[8], f .. 'prompt_tokens', ARGV[3])\n"
"  redis.call('HINCRBY', KEYS[8], f .. 'completion_tokens', ARGV[4])\n"
"  redis.call('HINCRBY', KEYS[8], f .. 'cost', cost)\n"
"end\n"
"redis.call('EXPIRE', KEYS[8], 34560000)\n"
"redis.call('SET', KEYS[6], '1', 'EX', 604800)\n"
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
      (u_char *) ngx_ai_relay_script_models }
};
