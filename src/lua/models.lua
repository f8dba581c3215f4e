-- MODELS: the models GET /v1/models may list.
--
-- KEYS[1] ar:{cfg}:models
-- -> {{name, owned_by, created}, ...} sorted by name

local names = redis.call('SMEMBERS', KEYS[1])
table.sort(names)
local out = {}
for _, n in ipairs(names) do
  local m = redis.call('HMGET', RKEY_MODEL .. n, 'owned_by', 'created',
                      'hidden')
  if m[3] ~= '1' then
    out[#out + 1] = {n, m[1] or 'ai-relay', m[2] or '0'}
  end
end
return out
