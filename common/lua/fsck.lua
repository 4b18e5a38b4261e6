-- fsck: check (and with fix=1 repair) the seat state of one pool.
-- KEYS: the pool's leases sess sessidx sessinfo gcount hg fold conf users
-- A: pool fix (0|1) via host
-- Reply: lapsed (sessions and leases past their expiry), ghost_leases (a
--   live lease with no live session), lease_drift (a lease whose expiry is not
--   its latest session's), orphans (session index or info entries without a
--   session), gcount_drift (group counts that differ from the holders),
--   stale_folds (folded denials whose window has passed), hot_drift (1 when
--   the packed copy of the hot settings differs from the fields), fixed (0|1)
-- Runs in one call over every holder and session of the pool: an admin tool
-- (seatctl doctor), not a decision path.
local c = conf()
if not c then return reply({missing = 1}) end
local fix = A.fix == '1'
local out = {lapsed = 0, ghost_leases = 0, lease_drift = 0, orphans = 0, gcount_drift = 0,
    stale_folds = 0, hot_drift = 0, fixed = fix and 1 or 0}

-- the packed copy of the settings decisions read (conf_pack)
do
    local raw = redis.call('HMGET', K('conf'), 'hot', unpack(CONF_HOT))
    local want = {}
    for i = 1, #CONF_HOT do want[i] = raw[i + 1] or '' end
    if raw[1] ~= table.concat(want, '\t') then
        out.hot_drift = 1
        if fix then conf_pack() c = conf() end
    end
end

out.lapsed = redis.call('ZCOUNT', K('sess'), '-inf', now()) +
    redis.call('ZCOUNT', K('leases'), '-inf', now())
if fix then
    while redis.call('ZCOUNT', K('sess'), '-inf', now()) +
        redis.call('ZCOUNT', K('leases'), '-inf', now()) > 0 do
        purge()
    end
end

-- sessions: index and info entries must belong to a session
local sess_live = {}
for _, m in ipairs(redis.call('ZRANGE', K('sessidx'), 0, -1)) do
    if not redis.call('ZSCORE', K('sess'), m) then
        out.orphans = out.orphans + 1
        if fix then sess_del(m) end
    end
end
local info = redis.call('HKEYS', K('sessinfo'))
for _, m in ipairs(info) do
    if not redis.call('ZSCORE', K('sess'), m) then
        out.orphans = out.orphans + 1
        if fix then redis.call('HDEL', K('sessinfo'), m) end
    end
end
latest_per_user(redis.call('ZRANGEBYSCORE', K('sess'), '(' .. now(), '+inf', 'WITHSCORES'),
    sess_live)

-- leases follow sessions; group counts follow leases
local holders = redis.call('ZRANGEBYSCORE', K('leases'), '(' .. now(), '+inf', 'WITHSCORES')
local counts = {}
for i = 1, #holders, 2 do
    local u, e = holders[i], tonumber(holders[i + 1])
    if not sess_live[u] then
        out.ghost_leases = out.ghost_leases + 1
        if fix then seat_drop(u, 'revoke', {result = 'released', reason = 'no_session', pid = ''}) end
    else
        if sess_live[u] ~= e then
            out.lease_drift = out.lease_drift + 1
            if fix then redis.call('ZADD', K('leases'), 'XX', sess_live[u], u) end
        end
        local groups = urec(redis.call('HGET', K('users'), u)).groups
        for g in string.gmatch(c.countg or '', '[^,]+') do
            if has(groups, g) then counts[g] = (counts[g] or 0) + 1 end
        end
    end
end
local gc = redis.call('HGETALL', K('gcount'))
local have = {}
for i = 1, #gc, 2 do have[gc[i]] = tonumber(gc[i + 1]) end
local drift = false
for g in string.gmatch(c.countg or '', '[^,]+') do
    if (have[g] or 0) ~= (counts[g] or 0) then drift = true end
end
for g, n in pairs(have) do
    if n ~= 0 and not has(c.countg, g) then drift = true end
end
if drift then
    out.gcount_drift = 1
    if fix then
        redis.call('DEL', K('gcount'), K('hg'))
        for i = 1, #holders, 2 do
            local u = holders[i]
            if redis.call('ZSCORE', K('leases'), u) then
                count_in(u, urec(redis.call('HGET', K('users'), u)).groups)
            end
        end
    end
end

-- folded denials whose window has passed are written out
local win = num(c.deny_fold, 60) * 1000
local folds = redis.call('HGETALL', K('fold'))
for i = 1, #folds, 2 do
    local reason, result, first, n, last = string.match(folds[i + 1],
        '^([^\t]*)\t([^\t]*)\t(%d+)\t(%d+)\t(%d+)$')
    if first and now() >= tonumber(first) + win then
        out.stale_folds = out.stale_folds + 1
        if fix then
            local z = string.find(folds[i], '\0', 1, true) or (#folds[i] + 1)
            if tonumber(n) > 1 then
                audit('deny_repeat', {at = last, user = string.sub(folds[i], 1, z - 1),
                    obo = string.sub(folds[i], z + 1), result = result, reason = reason,
                    count = tonumber(n) - 1, since = first, pid = ''})
            end
            redis.call('HDEL', K('fold'), folds[i])
        end
    end
end
return reply(out)
