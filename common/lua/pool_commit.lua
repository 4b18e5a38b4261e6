-- pool_commit: create a pool or change its settings.
-- KEYS: the pool's conf named leases sess sessidx sessinfo gcount hg lastused users
-- A: pool via host desc, then only the settings that change:
--    numbers: named floating idle max_lease overdraft mux_limit mux_window
--             audit_retention deny_fold usage_bucket usage_retention
--             test_clock (ms; 0 = the server's time)
--    lists (",a,b,"): features include exclude (replace the list),
--             features_del include_del exclude_del (remove items),
--             reserve_set cap_set (",group=k," merged in), reserve_del cap_del
--    projected (",g," groups whose members the caller has just projected),
--    flags ('1' once the caller projected disabled users and service accounts),
--    projected_count (user records projected, for the audit entry)
-- Reply: status created|updated|refused|project, message, groups (project:
--        the groups to project first), flags (project: '1' to project the
--        flags too), revoked and unassigned (users who lost a seat to a shrink)
-- Groups that a rule names must be projected into the pool before the rule
-- takes effect, and a new pool must see every disabled user and service
-- account before its first decision: such a call stages the pool (a new pool
-- exists in state "creating", which decisions treat as unknown) and answers
-- "project"; the caller projects and calls again.
local c = conf()
local creating = (not c) or c.state == 'creating'
local cur = c or {}

local function pairs_list(s)  -- ",g=k," -> ordered {g, k}
    local t = {}
    for g, k in string.gmatch(s or ',', '([^,=]+)=(%d+)') do t[#t + 1] = {g, tonumber(k)} end
    return t
end
local function gk_apply(s, set, del, zero_removes)
    local t = pairs_list(s)
    for _, gk in ipairs(pairs_list(set)) do
        local found = false
        for _, x in ipairs(t) do if x[1] == gk[1] then x[2] = gk[2] found = true end end
        if not found then t[#t + 1] = gk end
    end
    local out = ','
    for _, x in ipairs(t) do
        if not has(del, x[1]) and not (zero_removes and x[2] == 0) then
            out = out .. x[1] .. '=' .. x[2] .. ','
        end
    end
    return out
end
local function list_apply(s, repl, del)
    local out = ','
    for g in string.gmatch(repl or s or ',', '[^,]+') do
        if not has(del, g) and not has(out, g) then out = out .. g .. ',' end
    end
    return out
end

local v = {}
local defaults = {named = 0, floating = 0, idle = 900, max_lease = 43200, overdraft = 0,
    mux_limit = 0, mux_window = 3600, audit_retention = 34560000, deny_fold = 60,
    usage_bucket = 300, usage_retention = 34560000, test_clock = 0}
for f, d in pairs(defaults) do v[f] = tonumber(A[f] or cur[f]) or d end
v.features = list_apply(cur.features, A.features, A.features_del)
v.include = list_apply(cur.include, A.include, A.include_del)
v.exclude = list_apply(cur.exclude, A.exclude, A.exclude_del)
v.reserve = gk_apply(cur.reserve, A.reserve_set, A.reserve_del, true)
v.cap = gk_apply(cur.cap, A.cap_set, A.cap_del, false)

local reserved = 0
for _, gk in ipairs(pairs_list(v.reserve)) do reserved = reserved + gk[2] end
if reserved > v.floating then
    if c and creating and A.flags == '1' then
        redis.call('DEL', K('conf'), K('users'))  -- a refused create leaves nothing
    end
    return reply({status = 'refused', message = 'pool ' .. POOL .. ': reservations (' ..
        reserved .. ') exceed the floating seats (' .. v.floating .. ')'})
end

local need, countg = ',', ','
for _, l in ipairs({v.include, v.exclude}) do need = list_apply(need, nil, nil) .. string.sub(l, 2) end
for _, l in ipairs({v.reserve, v.cap}) do
    for g in string.gmatch(l, '([^,=]+)=') do
        if not has(countg, g) then countg = countg .. g .. ',' end
        if not has(need, g) then need = need .. g .. ',' end
    end
end
need = list_apply(need, nil, nil)
local tracked = cur.tracked or ','
local projected = A.projected or ','
local missing = ','
for g in string.gmatch(need, '[^,]+') do
    if not has(tracked, g) and not has(projected, g) then missing = missing .. g .. ',' end
end
if missing ~= ',' or (creating and A.flags ~= '1') then
    local pending = list_apply(cur.pending, nil, nil)
    for g in string.gmatch(missing, '[^,]+') do
        if not has(pending, g) then pending = pending .. g .. ',' end
    end
    if not c then
        redis.call('HSET', K('conf'), 'state', 'creating', 'created', math.floor(now() / 1000),
            'tracked', ',', 'countg', ',', 'pending', pending)
        conf_pack()
    else
        redis.call('HSET', K('conf'), 'pending', pending)
    end
    -- a group being added may already be half projected: project all of need
    local todo = ','
    for g in string.gmatch(need, '[^,]+') do
        if not has(tracked, g) then todo = todo .. g .. ',' end
    end
    return reply({status = 'project', groups = todo, flags = creating and '1' or '0'})
end

-- apply
local pending = ','
for g in string.gmatch(cur.pending or ',', '[^,]+') do
    if not has(projected, g) then pending = pending .. g .. ',' end
end
local desc = A.desc or ''
if num(A.projected_count, 0) > 0 then
    desc = desc .. (desc ~= '' and ' ' or '') .. 'users_projected=' .. A.projected_count
end
local fields = {'state', 'ready', 'tracked', need, 'countg', countg, 'pending', pending,
    'updated', math.floor(now() / 1000)}
for f, _ in pairs(defaults) do fields[#fields + 1] = f fields[#fields + 1] = v[f] end
for _, f in ipairs({'features', 'include', 'exclude', 'reserve', 'cap'}) do
    fields[#fields + 1] = f
    fields[#fields + 1] = v[f]
end
if creating then
    fields[#fields + 1] = 'created'
    fields[#fields + 1] = cur.created or math.floor(now() / 1000)
end
redis.call('HSET', K('conf'), unpack(fields))
conf_pack()
epoch_bump()
CONF = nil

-- live group counts follow the rules: recount when the counted groups change
if countg ~= (cur.countg or ',') then
    redis.call('DEL', K('gcount'), K('hg'))
    for _, u in ipairs(redis.call('ZRANGEBYSCORE', K('leases'), '(' .. now(), '+inf')) do
        count_in(u, urec(redis.call('HGET', K('users'), u)).groups)
    end
end

-- a shrink is enforced at once: the named seats least recently used and the
-- floating seats whose leases end soonest go first (audited, reason pool_shrunk)
local unassigned, revoked = {}, {}
local assigned = redis.call('SCARD', K('named'))
if assigned > v.named then
    local members = redis.call('SMEMBERS', K('named'))
    local order = {}
    for i = 1, #members, 1000 do
        local chunk = {unpack(members, i, math.min(i + 999, #members))}
        local used = redis.call('HMGET', K('lastused'), unpack(chunk))
        for j, u in ipairs(chunk) do order[#order + 1] = {u, tonumber(used[j]) or 0} end
    end
    table.sort(order, function(a, b)
        if a[2] ~= b[2] then return a[2] < b[2] end
        return a[1] < b[1]
    end)
    for i = 1, assigned - v.named do
        local u = order[i][1]
        redis.call('SREM', K('named'), u)
        audit('unassign', {user = u, reason = 'pool_shrunk', seat = 'named', pid = ''})
        publish_revoke(u)
        unassigned[#unassigned + 1] = u
    end
end
local capacity = v.floating + math.floor(v.floating * v.overdraft / 100)
local live = redis.call('ZCOUNT', K('leases'), '(' .. now(), '+inf')
if live > capacity then
    local victims = redis.call('ZRANGEBYSCORE', K('leases'), '(' .. now(), '+inf',
        'LIMIT', 0, live - capacity)
    for _, u in ipairs(victims) do
        drop_sessions(u)
        seat_drop(u, 'revoke', {result = 'denied_exhausted', reason = 'pool_shrunk', pid = ''})
        revoked[#revoked + 1] = u
    end
end

local status = creating and 'created' or 'updated'
audit('pool_' .. status, {reason = desc, pid = ''})
publish_revoke('')
return reply({status = status, message = '', revoked = table.concat(revoked, '\n'),
    unassigned = table.concat(unassigned, '\n')})
