-- usage: add to a pool's usage records what happened outside any decision.
-- KEYS: the pool's stats key (its slot)
-- A: pool, free (requests of the free tier since the last call)
-- Reply: ok 1
local n = tonumber(A.free) or 0
if n > 0 and conf() then usage_count('f:', nil, nil, n) end
return reply({ok = 1})
