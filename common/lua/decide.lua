-- decide: one seat decision, atomically.
-- KEYS: the pool's leases sess sessidx sessinfo gcount hg fold lastused stats
--       and mux (the service account's window, or a placeholder of the pool)
-- A: op (check|acquire) pool user via, and when they apply obo feature
--    session lease (s; absent = the pool's idle timeout) host pid pstart
--    client (the C side leaves out the empty ones and the zeros)
-- Reply: result reason seat user (effective) in_use floating capacity named
--        expires_ms ttl_ms overdraft now (server time, ms)
-- "check" writes nothing. "acquire" takes or renews the seat; state changes
-- are audited, denials folded per user and reason (deny_fold window).

local acquire = (A.op == 'acquire')
local user, obo, feature = A.user, A.obo or '', A.feature or ''
local session = A.session or ''
if session == '' then session = '-' end
local c = conf()
local eff = user

if not c or c.state ~= 'ready' then
    return reply({result = 'denied_unassigned', reason = 'unknown_pool', seat = 'none',
        user = user})
end

local named_n = num(c.named, 0)
local floating = num(c.floating, 0)
local capacity = floating + math.floor(floating * num(c.overdraft, 0) / 100)
local max_lease = num(c.max_lease, 43200)
local ttl_s = num(A.lease, 0)
if ttl_s <= 0 then ttl_s = num(c.idle, 900) end
if ttl_s > max_lease then ttl_s = max_lease end
local ttl_ms = ttl_s * 1000

-- IN_USE: the live floating seats, when the decision has already counted them
local IN_USE
local function answer(result, reason, seat, expires, od)
    return {'result', result, 'reason', reason, 'seat', seat, 'user', eff,
        'in_use', IN_USE or redis.call('ZCOUNT', K('leases'), '(' .. nows(), '+inf'),
        'floating', floating, 'capacity', capacity, 'named', named_n, 'expires_ms', expires,
        'ttl_ms', ttl_ms, 'overdraft', od, 'now', now()}
end

-- denials of one identity for one reason are folded: the first of a window
-- is an audit entry, the repeats only count, and the count is written when
-- the window has passed (next denial or next grant of the identity).
local fold_key = user .. '\0' .. obo
local function fold_flush(f)
    if not f then return end
    local reason, result, first, n, last = string.match(f, '^([^\t]*)\t([^\t]*)\t(%d+)\t(%d+)\t(%d+)$')
    if n and tonumber(n) > 1 then
        audit('deny_repeat', {at = last, user = user, obo = obo, result = result,
            reason = reason, count = tonumber(n) - 1, since = first})
    end
end

local function deny(result, reason, revoke)
    if acquire then
        if revoke and redis.call('ZSCORE', K('leases'), eff) then
            drop_sessions(eff)
            seat_drop(eff, 'revoke', {result = result, reason = reason})
        end
        local win = num(c.deny_fold, 60) * 1000
        local f = redis.call('HGET', K('fold'), fold_key)
        local fr, first, n, last = nil, 0, 0, 0
        if f then
            fr, first, n, last = string.match(f, '^([^\t]*)\t[^\t]*\t(%d+)\t(%d+)\t(%d+)$')
        end
        local repeated = fr == reason and now() < tonumber(first) + win
        if repeated then
            redis.call('HSET', K('fold'), fold_key, reason .. '\t' .. result .. '\t' .. first ..
                '\t' .. (tonumber(n) + 1) .. '\t' .. nows())
        else
            fold_flush(f)
            audit('deny', {user = user, obo = obo, result = result, reason = reason,
                session = A.session or ''})
            if win > 0 then
                redis.call('HSET', K('fold'), fold_key, reason .. '\t' .. result .. '\t' ..
                    nows() .. '\t1\t' .. nows())
            end
        end
        redis.call('HINCRBY', K('stats'), 'n:' .. result, '1')
        -- usage records count a denial once per identity, reason and bucket
        -- (a repeat in the same bucket, seen through the fold, costs nothing);
        -- a refusal for want of a seat is demand the report must see
        local bs = usage_bucket()
        if bs > 0 and not (repeated and math.floor(tonumber(last) / bs) == math.floor(now() / bs)) then
            usage_count('d:', ':' .. reason)
            if result == 'denied_exhausted' then usage_span(eff, now(), now(), 'w') end
        end
        if reason == 'service_account_needs_on_behalf_of' then
            usage_count('x:', ':' .. user)
        end
    end
    return answer(result, reason, 'none', 0, 0)
end

-- who is asking: a service account must say for whom, and only it may
local who = urec(redis.call('HGET', K('users'), user))
if obo ~= '' then
    if not who.svc then return deny('denied_unassigned', 'on_behalf_of_requires_service_account') end
    if who.dis then return deny('denied_disabled', 'service_account_disabled') end
    local mux_limit = num(c.mux_limit, 0)
    if mux_limit > 0 then
        local win = num(c.mux_window, 3600) * 1000
        local last = redis.call('ZSCORE', KEYS[10], obo)
        if not (last and tonumber(last) > now() - win) and
            redis.call('ZCOUNT', KEYS[10], '(' .. (now() - win), '+inf') >= mux_limit then
            return deny('denied_multiplexing', 'multiplexing_limit')
        end
    end
    eff = obo
    who = urec(redis.call('HGET', K('users'), obo))
    if who.svc then return deny('denied_unassigned', 'on_behalf_of_is_service_account') end
elseif who.svc then
    return deny('denied_unassigned', 'service_account_needs_on_behalf_of')
end

if who.dis then return deny('denied_disabled', 'user_disabled', true) end
local ex = excluded_reason(c, who.groups)
if ex then return deny('denied_excluded', ex, true) end
if feature ~= '' and not has(c.features, feature) then
    return deny('denied_feature', 'feature_not_licensed')
end

local function grant(result, reason, seat, od, held)
    if not acquire then
        local exp = 0
        if seat == 'floating' then exp = held or num(redis.call('ZSCORE', K('leases'), eff), 0) end
        return answer(result, reason, seat, exp, od)
    end
    local m = eff .. '\0' .. session
    local exp = now() + ttl_ms
    local exps = istr(exp)
    local old = num(redis.call('ZSCORE', K('sess'), m), 0)
    local fresh = old <= now()
    redis.call('ZADD', K('sess'), exps, m)
    if fresh then
        redis.call('ZADD', K('sessidx'), '0', m)
        redis.call('HSET', K('sessinfo'), m, 'via=' .. (A.via or '') .. '\thost=' ..
            (A.host or '') .. '\tpid=' .. (A.pid or '0') .. '\tpstart=' .. (A.pstart or '0') ..
            '\tstarted=' .. nows() .. '\taccount=' .. user .. '\tobo=' .. obo .. '\tclient=' ..
            (A.client or '') .. '\tlease=' .. ttl_s .. '\tseat=' .. (seat == 'named' and 'n' or 'f'))
    end
    local ev, expires = nil, 0
    if seat == 'floating' then
        local cur = held or num(redis.call('ZSCORE', K('leases'), eff), 0)
        if cur <= now() then
            if cur > 0 then  -- a lapsed lease not purged yet: close it first
                seat_drop(eff, 'expire', {at = cur, result = 'released', reason = 'lease_expired',
                    pid = ''})
            end
            ev = 'grant'
            count_in(eff, who.groups)
            redis.call('ZADD', K('leases'), exps, eff)
            expires = exp
        else
            if fresh then ev = 'join' end
            if exp > cur then
                redis.call('ZADD', K('leases'), exps, eff)
                expires = exp
            elseif old == cur and exp < old then
                expires = seat_recompute(eff, 'release', {})  -- this session was the longest
            else
                expires = cur
            end
        end
    elseif fresh then
        ev = 'grant'
    end
    if ev then
        if ev == 'grant' then
            local f = redis.call('HGET', K('fold'), fold_key)
            if f then
                fold_flush(f)
                redis.call('HDEL', K('fold'), fold_key)
            end
        end
        audit(ev, {user = user, obo = obo, result = result, reason = reason, seat = seat,
            session = A.session or ''})
    end
    if obo ~= '' and usage_bucket() > 0 then
        local d = math.floor(now() / DAY)
        local mk = K('um:' .. d .. ':' .. user)
        if redis.call('SADD', mk, obo) == 1 then
            usage_keep(mk, d)
            usage_count('m:', ':' .. user, 1)  -- the day's index of service accounts
            -- a multiplexing finding: more people in a day than the pool allows
            -- at once (audited once a day, when it first happens)
            local lim = num(c.mux_limit, 0)
            if lim > 0 and redis.call('SCARD', mk) == lim + 1 then
                audit('mux_finding', {user = user, obo = obo, result = 'granted_floating',
                    reason = 'more_people_in_a_day_than_mux_limit', count = lim + 1,
                    session = A.session or ''})
            end
        end
    end
    if obo ~= '' then
        local win = num(c.mux_window, 3600) * 1000
        redis.call('ZADD', KEYS[10], now(), obo)
        redis.call('ZREMRANGEBYSCORE', KEYS[10], '-inf', now() - win)
        redis.call('PEXPIRE', KEYS[10], win)
    end
    redis.call('HSET', K('lastused'), eff, nows())
    redis.call('HINCRBY', K('stats'), 'n:' .. result, '1')
    if od == 1 then redis.call('HINCRBY', K('stats'), 'n:overdraft', '1') end
    if ev == 'grant' and seat == 'floating' then
        IN_USE = IN_USE and IN_USE + 1 or redis.call('ZCOUNT', K('leases'), '(' .. nows(), '+inf')
        local pk = 'peak:' .. math.floor(now() / 3600000)
        if IN_USE > num(redis.call('HGET', K('stats'), pk), 0) then
            redis.call('HSET', K('stats'), pk, IN_USE)
        end
        if od == 1 then usage_count('o:') end
    end
    return answer(result, reason, seat, expires, od)
end

if redis.call('SISMEMBER', K('named'), eff) == 1 then
    return grant('granted_named', 'named_seat', 'named', 0)
end
if capacity <= 0 then
    return deny('denied_unassigned', 'no_named_seat')
end
local held = num(redis.call('ZSCORE', K('leases'), eff), 0)
if held > now() then
    return grant('granted_floating', 'holds_seat', 'floating', 0, held)
end

-- a new floating seat. A full pool denies at once: the live count never
-- includes a lapsed lease, so nothing else needs reading. Otherwise the
-- group rules read their live counts (O(1) per rule, whatever the holders)
-- after lapsed leases went (a bounded number: a lapsed holder still counts
-- in its groups until purged); without group rules a purge is needed only
-- before a seat is taken.
local in_use = redis.call('ZCOUNT', K('leases'), '(' .. nows(), '+inf')
IN_USE = in_use
if in_use >= capacity then
    return deny('denied_exhausted', 'all_floating_in_use')
end
local rules = (c.countg or ',') ~= ','
if acquire then purge(in_use) end
local unmet = 0
if rules then
    for g, k in string.gmatch(c.cap or '', '([^,=]+)=(%d+)') do
        if has(who.groups, g) and num(redis.call('HGET', K('gcount'), g), 0) >= tonumber(k) then
            return deny('denied_exhausted', 'group_cap_reached')
        end
    end
    for g, k in string.gmatch(c.reserve or '', '([^,=]+)=(%d+)') do
        if not has(who.groups, g) then
            unmet = unmet + math.max(0, tonumber(k) - num(redis.call('HGET', K('gcount'), g), 0))
        end
    end
end
-- held: this user's lapsed lease (or 0), read above; a purge that dropped
-- it since is met by seat_drop's own read
if in_use + unmet < floating then
    return grant('granted_floating', 'floating_seat', 'floating', 0, held)
end
if in_use + unmet < capacity then
    return grant('granted_floating', 'overdraft', 'floating', 1, held)
end
return deny('denied_exhausted', 'reserved_for_group')
