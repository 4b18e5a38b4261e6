-- seatgate: one seat decision, atomically.
--
-- KEYS (all carry the hash tag {POOL}, so the call lands in one Cluster slot):
--  1 conf  2 named  3 leases  4 sess  5 sessidx  6 sessinfo  7 users
--  8 audit  9 lastused  10 stats  11 mux (the service account's window; a
--  placeholder key of the pool when there is no service account)
-- ARGV:
--  1 op (check|acquire)  2 user  3 on-behalf-of  4 feature  5 session
--  6 via  7 host  8 pid  9 client  10 ttl seconds (0 = pool idle timeout)
--  11 pool
-- Returns {result, reason, seat, in_use, floating, capacity, named,
--          expires_ms, ttl_ms, epoch, overdraft, effective_user}
-- "check" reads only; "acquire" takes or renews the seat, purges expired
-- leases, and appends every state change and every denial to the audit stream.

local op, user, obo, feature, session = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local via, host, pid, client = ARGV[6], ARGV[7], ARGV[8], ARGV[9]
local ttl_s, pool = tonumber(ARGV[10]) or 0, ARGV[11]
local acquire = (op == 'acquire')

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

local raw = redis.call('HGETALL', KEYS[1])
if #raw == 0 then
    return {'denied_unassigned', 'unknown_pool', 'none', 0, 0, 0, 0, 0, 0, 0, 0, user}
end
local c = {}
for i = 1, #raw, 2 do c[raw[i]] = raw[i + 1] end
local named_n = tonumber(c.named) or 0
local floating = tonumber(c.floating) or 0
local idle = tonumber(c.idle) or 900
local od = tonumber(c.overdraft) or 0
local capacity = floating + math.floor(floating * od / 100)
local epoch = tonumber(c.epoch) or 0
local audit_max = tonumber(c.audit_max) or 100000
if ttl_s <= 0 then ttl_s = idle end
local ttl_ms = ttl_s * 1000

local function in_list(list, item)
    return list ~= nil and string.find(list, ',' .. item .. ',', 1, true) ~= nil
end

-- user record: flag disabled, flag service account, then ",g1,g2,"
local function user_rec(u)
    local rec = redis.call('HGET', KEYS[7], u)
    if not rec then return false, false, ',' end
    return string.sub(rec, 1, 1) == '1', string.sub(rec, 2, 2) == '1', string.sub(rec, 3)
end

local function audit(ev, result, reason, seat, u, ob, sess)
    redis.call('XADD', KEYS[8], 'MAXLEN', '~', audit_max, '*',
        'ev', ev, 'pool', pool, 'user', u, 'obo', ob, 'via', via, 'host', host,
        'pid', pid, 'client', client, 'result', result, 'reason', reason,
        'seat', seat, 'session', sess)
end

local function drop_sessions(u)
    local ids = redis.call('ZRANGEBYLEX', KEYS[5], '[' .. u .. '\0', '(' .. u .. '\1')
    for _, m in ipairs(ids) do
        redis.call('ZREM', KEYS[4], m)
        redis.call('ZREM', KEYS[5], m)
        redis.call('HDEL', KEYS[6], m)
    end
    return #ids
end

local function live_count()
    return redis.call('ZCOUNT', KEYS[3], '(' .. now, '+inf')
end

if acquire then
    -- leases that ran out free their seat (a crashed client never leaks one)
    local gone = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now, 'LIMIT', 0, 1000)
    for _, u in ipairs(gone) do
        redis.call('ZREM', KEYS[3], u)
        drop_sessions(u)
        audit('expire', 'released', 'lease_expired', 'floating', u, '', '')
    end
    local sx = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', now, 'LIMIT', 0, 1000)
    for _, m in ipairs(sx) do
        redis.call('ZREM', KEYS[4], m)
        redis.call('ZREM', KEYS[5], m)
        redis.call('HDEL', KEYS[6], m)
    end
end

local eff = user
local function answer(result, reason, seat, in_use, expires, od_flag)
    return {result, reason, seat, in_use, floating, capacity, named_n, expires,
            ttl_ms, epoch, od_flag, eff}
end

local function deny(result, reason, revoke)
    if acquire then
        if revoke and redis.call('ZREM', KEYS[3], eff) == 1 then
            drop_sessions(eff)
            audit('revoke', result, reason, 'floating', eff, '', '')
            redis.call('PUBLISH', 'seatgate:revoke', pool .. '\t' .. eff)
        end
        audit('deny', result, reason, 'none', user, obo, session)
        redis.call('HINCRBY', KEYS[10], 'n:' .. result, 1)
    end
    return answer(result, reason, 'none', live_count(), 0, 0)
end

-- who is asking: a service account must say for whom, and only it may
local dis, svc, groups = user_rec(user)
local mux_limit = tonumber(c.mux_limit) or 0
local mux_window = (tonumber(c.mux_window) or 3600) * 1000
if obo ~= '' then
    if not svc then return deny('denied_unassigned', 'on_behalf_of_requires_service_account') end
    if dis then return deny('denied_disabled', 'service_account_disabled') end
    local last = redis.call('ZSCORE', KEYS[11], obo)
    if mux_limit > 0 and not (last and tonumber(last) > now - mux_window) then
        local distinct = redis.call('ZCOUNT', KEYS[11], '(' .. (now - mux_window), '+inf')
        if distinct >= mux_limit then return deny('denied_multiplexing', 'multiplexing_limit') end
    end
    eff = obo
    dis, svc, groups = user_rec(obo)
    if svc then return deny('denied_unassigned', 'on_behalf_of_is_service_account') end
elseif svc then
    return deny('denied_unassigned', 'service_account_needs_on_behalf_of')
end

if dis then return deny('denied_disabled', 'user_disabled', true) end
for g in string.gmatch(c.exclude or '', '[^,]+') do
    if in_list(groups, g) then return deny('denied_excluded', 'excluded_group', true) end
end
if (c.include or ',') ~= ',' and c.include ~= '' then
    local ok = false
    for g in string.gmatch(c.include, '[^,]+') do
        if in_list(groups, g) then ok = true break end
    end
    if not ok then return deny('denied_excluded', 'not_in_included_group', true) end
end
if feature ~= '' and not in_list(c.features, feature) then
    return deny('denied_feature', 'feature_not_licensed')
end

local function grant(result, reason, seat, od_flag)
    local expires = 0
    if acquire then
        local sid = session
        if sid == '' then sid = '-' end
        local m = eff .. '\0' .. sid
        local exp = now + ttl_ms
        local fresh = redis.call('ZSCORE', KEYS[4], m) == false
        redis.call('ZADD', KEYS[4], exp, m)
        redis.call('ZADD', KEYS[5], 0, m)
        if fresh then
            redis.call('HSET', KEYS[6], m, via .. '\t' .. host .. '\t' .. pid .. '\t' .. now ..
                '\t' .. obo .. '\t' .. client .. '\t' .. ttl_s)
        end
        local ev = nil
        if seat == 'floating' then
            local cur = redis.call('ZSCORE', KEYS[3], eff)
            if not cur then
                ev = 'grant'
            elseif fresh then
                ev = 'join'
            end
            if not cur or tonumber(cur) < exp then
                redis.call('ZADD', KEYS[3], exp, eff)
            end
            expires = math.max(exp, tonumber(cur or 0))
        elseif fresh then
            ev = 'grant'
        end
        if ev then audit(ev, result, reason, seat, user, obo, session) end
        if obo ~= '' then
            redis.call('ZADD', KEYS[11], now, obo)
            redis.call('ZREMRANGEBYSCORE', KEYS[11], '-inf', now - mux_window)
            redis.call('PEXPIRE', KEYS[11], mux_window)
        end
        redis.call('HSET', KEYS[9], eff, now)
        redis.call('HINCRBY', KEYS[10], 'n:' .. result, 1)
        if od_flag == 1 then redis.call('HINCRBY', KEYS[10], 'n:overdraft', 1) end
        local in_use = live_count()
        local pk = 'peak:' .. math.floor(now / 3600000)
        if in_use > (tonumber(redis.call('HGET', KEYS[10], pk)) or 0) then
            redis.call('HSET', KEYS[10], pk, in_use)
        end
    else
        local cur = redis.call('ZSCORE', KEYS[3], eff)
        if cur and tonumber(cur) > now then expires = tonumber(cur) end
    end
    return answer(result, reason, seat, live_count(), expires, od_flag)
end

if redis.call('SISMEMBER', KEYS[2], eff) == 1 then
    return grant('granted_named', 'named_seat', 'named', 0)
end
if capacity <= 0 then
    return deny('denied_unassigned', 'no_named_seat')
end
local held = redis.call('ZSCORE', KEYS[3], eff)
if held and tonumber(held) > now then
    return grant('granted_floating', 'holds_seat', 'floating', 0)
end

-- reservations and caps need the groups of the live holders
local need = {}
local reserve, cap = {}, {}
for g, k in string.gmatch(c.reserve or '', '([^,=]+)=(%d+)') do reserve[g] = tonumber(k) need[g] = true end
for g, k in string.gmatch(c.cap or '', '([^,=]+)=(%d+)') do cap[g] = tonumber(k) need[g] = true end
local holds = {}
if next(need) ~= nil then
    local holders = redis.call('ZRANGEBYSCORE', KEYS[3], '(' .. now, '+inf')
    for _, h in ipairs(holders) do
        local _, _, hg = user_rec(h)
        for g, _ in pairs(need) do
            if in_list(hg, g) then holds[g] = (holds[g] or 0) + 1 end
        end
    end
end
for g, k in pairs(cap) do
    if in_list(groups, g) and (holds[g] or 0) >= k then
        return deny('denied_exhausted', 'group_cap_reached')
    end
end
local unmet = 0
for g, k in pairs(reserve) do
    if not in_list(groups, g) then unmet = unmet + math.max(0, k - (holds[g] or 0)) end
end
local in_use = live_count()
if in_use + unmet < floating then
    return grant('granted_floating', 'floating_seat', 'floating', 0)
end
if in_use + unmet < capacity then
    return grant('granted_floating', 'overdraft', 'floating', 1)
end
if in_use < capacity then
    return deny('denied_exhausted', 'reserved_for_group')
end
return deny('denied_exhausted', 'all_floating_in_use')
