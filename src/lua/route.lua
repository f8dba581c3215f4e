-- ROUTE: resolve a model alias chain and return the channels and price.
--
-- KEYS[1] ar:{cfg}:version
-- ARGV[1] model name as the client sent it
-- ARGV[2] longest alias chain allowed
--
-- -> {"ok", resolved, version, priced_as, {price k, v, ...},
--     {id, provider, base_url, keys, priority, weight, status, upstream
--      model, name}, ...}
--  | {"unknown", name, version}
--  | {"broken"|"cycle"|"deep", "a -> b -> ...", version}

local version = redis.call('GET', KEYS[1]) or '0'
local name = ARGV[1]
local depth = tonumber(ARGV[2])
local chain = {name}
local m
while true do
  m = redis.call('HMGET', RKEY_MODEL .. name, 'alias', 'channels')
  if not m[1] and not m[2] then
    if #chain == 1 then return {'unknown', name, version} end
    return {'broken', table.concat(chain, ' -> '), version}
  end
  if not m[1] or m[1] == '' then break end
  name = m[1]
  for _, seen in ipairs(chain) do
    if seen == name then
      chain[#chain + 1] = name
      return {'cycle', table.concat(chain, ' -> '), version}
    end
  end
  chain[#chain + 1] = name
  if #chain > depth + 1 then
    return {'deep', table.concat(chain, ' -> '), version}
  end
end
local priced, price = '', {}
for _, n in ipairs(chain) do
  price = redis.call('HGETALL', RKEY_PRICE .. n)
  if #price > 0 then priced = n break end
end
local out = {'ok', name, version, priced,
             price}
for id in string.gmatch(m[2] or '', '[^,%s]+') do
  local c = redis.call('HMGET', RKEY_CHANNEL .. id, 'provider',
                      'base_url', 'keys', 'priority', 'weight',
                      'status', 'map:' .. name, 'name')
  if c[1] then
    out[#out + 1] = {id, c[1], c[2] or '', c[3] or '', c[4] or '0',
                     c[5] or '1', c[6] or 'enabled', c[7] or name,
                     c[8] or ''}
  end
end
return out
