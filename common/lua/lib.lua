-- seatgate script library. common/embed.sh puts this file in front of every
-- script, so each helper below exists once for all of them.
--
-- Boundary: ARGV holds name/value pairs (A.pool, A.user, ...); lists travel
-- as one value, items separated by "\n" and fields by "\t" (identities never
-- contain control characters: the core validates them). Replies are flat
-- name/value arrays that the C side reads by name.
--
-- Keys: every key of pool P is "sg:{P}:<name>" (one Cluster slot per pool).
-- Scripts declare in KEYS only the keys the caller's ACL role may write and
-- read; the pool's settings, named seats and user projection (read-only for
-- the decision role) and the audit stream (write-only for it) are addressed
-- by name, inside the same slot. docs/redis-schema.md explains why.
--
-- Two ways to run: common/embed.sh makes each script "this file + the
-- script" for EVAL/EVALSHA, and makes one Redis Function library of this
-- file once and every script wrapped in a function (FCALL). A library's
-- helpers are built once at FUNCTION LOAD, not on every call; its upvalues
-- outlive a call, so everything a call changes below is set again by begin().

local A, POOL = {}, ''
local CONF, NOW, NOWS  -- the pool's settings and the time, read once per call
local COLD  -- settings outside the packed ones, read this call (see conf())

local function begin(argv)
    -- made at the size of a decision's arguments (not grown one by one)
    A = {op = nil, pool = nil, user = nil, obo = nil, feature = nil, session = nil,
        lease = nil, via = nil, host = nil, pid = nil, pstart = nil, client = nil}
    for i = 1, #argv - 1, 2 do A[argv[i]] = argv[i + 1] end
    POOL = A.pool or ''
    CONF, NOW, NOWS, COLD = nil, nil, nil, nil
end
-- EVAL: this call's arguments (under FUNCTION LOAD, redis.register_function
-- exists and each function calls begin itself)
if not redis.register_function then begin(ARGV) end

-- A key's name is built once per pool and name and kept: in a loaded
-- library the cache outlives the call (at most KCACHE_MAX names a pool and
-- KCACHE_MAX pools, so per-day and per-user keys cannot grow it); under
-- EVAL it lasts one call.
local KCACHE, KCACHE_MAX, KCACHE_N = {}, 64, 0
local KPOOL, KP
local function K(name)
    if KPOOL ~= POOL then
        KPOOL, KP = POOL, KCACHE[POOL]
        if not KP then
            if KCACHE_N >= KCACHE_MAX then KCACHE, KCACHE_N = {}, 0 end
            KP = {[0] = 0}  -- [0]: how many names (names are strings)
            KCACHE[POOL], KCACHE_N = KP, KCACHE_N + 1
        end
    end
    local k = KP[name]
    if not k then
        k = 'sg:{' .. POOL .. '}:' .. name
        if KP[0] < KCACHE_MAX then KP[name], KP[0] = k, KP[0] + 1 end
    end
    return k
end

-- A number from a setting or an argument. Short strings ("900", "0") are
-- parsed once and remembered (Lua parses with strtod, ~1k instructions);
-- long ones (times) are not, so the memo stays small.
local NUMC, NUMC_N = {}, 0
local function num(v, d)
    if type(v) ~= 'string' or #v > 6 then return tonumber(v) or d end
    local n = NUMC[v]
    if n == nil then
        n = tonumber(v) or false
        if NUMC_N >= 512 then NUMC, NUMC_N = {}, 0 end
        NUMC[v], NUMC_N = n, NUMC_N + 1
    end
    if n == false then return d end
    return n
end

-- lists are stored as ",a,b," so a membership test is one plain find
local function has(list, item)
    return list and string.find(list, ',' .. item .. ',', 1, true) ~= nil or false
end

-- the pool's settings; false when the pool is absent. The fields that
-- decisions read (CONF_HOT) are also kept packed in the field "hot" (tab-
-- separated, in CONF_HOT order; written by conf_pack() in the scripts that
-- change them) and read with the stamp "updated" in one HMGET: each field of
-- a hash costs a decision a lookup and a conversion into Lua (~0.4 us), the
-- packed copy one. A pool without "hot" (older versions), or whose stamp
-- moved since it was packed (a settings change by an older seatctl), is
-- read field by field; a hash edited by hand without moving the stamp is
-- found by doctor (hot_drift). The other fields are read on first use (one
-- HGET each) and remembered for the rest of the call.
local CONF_HOT = {'state', 'named', 'floating', 'overdraft', 'idle', 'max_lease', 'include',
    'exclude', 'test_clock', 'countg', 'deny_fold', 'audit_retention', 'usage_bucket',
    'usage_retention', 'updated'}
-- one capture a field of CONF_HOT (a library's top level may call no global)
local F = '([^\t]*)\t'
local HOT_PATTERN = '^' .. F .. F .. F .. F .. F .. F .. F .. F .. F .. F .. F .. F .. F ..
    F .. '([^\t]*)$'
-- The hot settings of a pool, parsed, are kept across calls of a loaded
-- library (at most CONFC_MAX pools), keyed by the packed string itself: a
-- call whose HGET returns the same string (Lua compares interned strings by
-- address) reuses the table. The cached table is never written: a setting
-- outside the packed ones is looked up once a call into COLD, which begin()
-- empties, and reads as false when the hash has none.
local CONFC, CONFC_N, CONFC_MAX = {}, 0, 1024
local CONF_MT = {__index = function(t, f)
    if not COLD then COLD = {} end
    local v = COLD[f]
    if v == nil then
        v = redis.call('HGET', K('conf'), f) or false
        COLD[f] = v
    end
    return v or nil
end}
local function hot(v) return v ~= '' and v end
local function conf()
    if POOL == '_' then return false end  -- the registry has no settings
    if CONF == nil then
        COLD = nil
        -- the packed copy holds the "updated" stamp it was made from: a
        -- settings change that did not pack (a seatctl from before the packed
        -- copy, in a rolling upgrade) moves the stamp, and the copy is passed
        -- over for the fields themselves
        local got = redis.call('HMGET', K('conf'), 'hot', 'updated')
        local packed, upd = got[1], got[2] or ''
        local e = packed and CONFC[POOL]
        if e and e[1] == packed and e[3] == upd then
            CONF = e[2]
            return CONF
        end
        local st, nm, fl, od, id, ml, inc, exc, tc, cg, df, ar, ub, ur, pu
        if packed then
            st, nm, fl, od, id, ml, inc, exc, tc, cg, df, ar, ub, ur, pu =
                string.match(packed, HOT_PATTERN)
            if pu ~= upd then st = nil end
        end
        if not st then
            packed = nil  -- not packed, or stale: read field by field, not kept
            local raw = redis.call('HMGET', K('conf'), unpack(CONF_HOT))
            for i = 1, #CONF_HOT do raw[i] = raw[i] or '' end
            st, nm, fl, od, id, ml, inc, exc, tc, cg, df, ar, ub, ur = unpack(raw)
        end
        if st == '' then
            CONF = false
        else
            -- one constructor: the table is made at its size, not grown
            CONF = setmetatable({state = st, named = hot(nm), floating = hot(fl),
                overdraft = hot(od), idle = hot(id), max_lease = hot(ml), include = hot(inc),
                exclude = hot(exc), test_clock = hot(tc), countg = hot(cg), deny_fold = hot(df),
                audit_retention = hot(ar), usage_bucket = hot(ub), usage_retention = hot(ur)},
                CONF_MT)
            if packed then
                if not CONFC[POOL] then
                    if CONFC_N >= CONFC_MAX then CONFC, CONFC_N = {}, 0 end
                    CONFC_N = CONFC_N + 1
                end
                CONFC[POOL] = {packed, CONF, upd}
            end
        end
    end
    return CONF
end

-- after the settings changed: the packed copy follows (empty = absent)
local function conf_pack()
    local raw = redis.call('HMGET', K('conf'), unpack(CONF_HOT))
    if not raw[1] then return end
    for i = 1, #CONF_HOT do raw[i] = raw[i] or '' end
    redis.call('HSET', K('conf'), 'hot', table.concat(raw, '\t', 1, #CONF_HOT))
    CONF = nil
end

-- The time (ms). A pool whose test_clock is set (seatctl pool set
-- --test-clock, for tests that replay weeks of usage through the real
-- decisions) runs on that frozen time instead of the server's. nows() is
-- the same time as a string, made from TIME's digits: a number given to
-- redis.call or to '..' is formatted with sprintf("%.17g"), which costs a
-- decision about 0.5 us each time.
local function now()
    if not NOW then
        local c = (POOL ~= '_' and POOL ~= '') and conf()
        if c and num(c.test_clock, 0) > 0 then
            NOWS = c.test_clock
        else
            local t = redis.call('TIME')
            NOWS = t[1] .. string.sub('00000' .. t[2], -6, -4)
        end
        NOW = tonumber(NOWS)
    end
    return NOW
end

local function nows()
    if not NOWS then now() end
    return NOWS
end

-- an integer as a string, with "%d" (redis.call formats a Lua number with
-- "%.17g", several times the work)
local function istr(n) return string.format('%d', n) end

-- A user record (global registry and pool projection alike): byte 1 '1' when
-- disabled, byte 2 '1' for a service account, then the record's version
-- (digits), then the groups as ",g1,g2,". An absent record is the default:
-- enabled, a human, no group, version 0.
local function urec(rec)
    if not rec then return {dis = false, svc = false, ver = 0, groups = ','} end
    local comma = string.find(rec, ',', 3, true) or (#rec + 1)
    return {dis = string.byte(rec, 1) == 49, svc = string.byte(rec, 2) == 49,
            ver = tonumber(string.sub(rec, 3, comma - 1)) or 0,
            groups = (comma <= #rec) and string.sub(rec, comma) or ','}
end

local function urec_str(r)
    return (r.dis and '1' or '0') .. (r.svc and '1' or '0') .. r.ver .. r.groups
end

-- one audit entry. Its stream id is the time it was written; "at" is the
-- time the event happened (a lapsed lease is stamped with its own expiry).
-- Retention is by time: entries older than the pool's audit_retention go.
local function audit(ev, f)
    local c = conf()
    local keep = num(c and c.audit_retention, 34560000) * 1000
    local args = {K('audit'), 'MINID', '~', istr(math.max(0, now() - keep)), '*',
        'ev', ev, 'at', f.at or nows(), 'pool', POOL, 'user', f.user or '',
        'obo', f.obo or '', 'via', A.via or 'cli', 'host', A.host or '', 'pid', f.pid or A.pid or '',
        'client', A.client or '', 'result', f.result or 'ok', 'reason', f.reason or '',
        'seat', f.seat or 'none', 'session', f.session or '', 'count', f.count or '1'}
    if f.since then
        args[#args + 1] = 'since'
        args[#args + 1] = f.since
    end
    redis.call('XADD', unpack(args))
end

-- nginx caches drop what they hold for the pool (user '' = the whole pool)
local function publish_revoke(u)
    redis.call('PUBLISH', 'seatgate:revoke', POOL .. '\t' .. (u or ''))
end

-- ---- sessions and seats ---------------------------------------------------
-- sess: "user\0session" -> expiry (ms); sessidx: the same members, score 0,
-- for the sessions of one user; sessinfo: "user\0session" -> k=v fields.
-- leases: floating holder -> seat expiry, always the latest expiry of the
-- holder's live sessions. gcount: group -> floating holders counted in it
-- (groups with a reservation or cap); hg: holder -> ",groups," it counts in.

-- ---- usage records ---------------------------------------------------------
-- Per pool and UTC day D (ms / 86400000), kept usage_retention after the day:
--   ua:D  string of records "user TAB from TAB to TAB kind LF": a session
--         held from..to (ms into the day; kind n named, f floating), or a
--         refusal for want of a seat at from (kind w)
--   uc:D  counters: bs (bucket s), d:B:REASON denials, o:B new floating
--         seats in overdraft, x:B:SVC a service account without on-behalf-of,
--         m:B:SVC a service account acted for someone (index of um:D:SVC),
--         f:B requests of the free tier (nginx)
--   um:D:SVC  the humans a service account acted for that day
-- A session's span is written when it ends (renewals write nothing); the
-- report adds the sessions still open.
local DAY = 86400000

-- the bucket (ms); 0 when the pool records no usage (--usage-bucket off)
local function usage_bucket()
    local c = conf()
    local bs = num(c and c.usage_bucket, 300)
    if bs == 0 then return 0 end
    if bs < 60 or DAY % (bs * 1000) ~= 0 then bs = 300 end
    return bs * 1000
end

-- a write that created field f of day d's key: the key lives the retention
local function usage_keep(key, d)
    local c = conf()
    redis.call('PEXPIREAT', key, (d + 1) * DAY + num(c and c.usage_retention, 34560000) * 1000)
end

-- counter PREFIX..B..SUFFIX of this bucket (B) + (by or 1); mx: instead
-- the field becomes max(field, mx). The first write of a day names its bucket.
local function usage_count(prefix, suffix, mx, by)
    local bs = usage_bucket()
    if bs == 0 then return end
    local d = math.floor(now() / DAY)
    local key = K('uc:' .. d)
    local f = prefix .. math.floor((now() - d * DAY) / bs) .. (suffix or '')
    local first
    if mx then
        local cur = redis.call('HGET', key, f)
        if cur and tonumber(cur) >= mx then return end
        first = redis.call('HSET', key, f, mx) == 1 and not cur
    else
        by = by or 1
        first = redis.call('HINCRBY', key, f, by) == by
    end
    if first and redis.call('HSETNX', key, 'bs', bs / 1000) == 1 then usage_keep(key, d) end
end

-- user u held a session from t0 to t1 (ms) with a seat of kind n or f (nil:
-- looked up), or (kind w) was refused a seat at t0: one record a day it touched (at most the retention's days back),
-- appended to ua:D as "user TAB from TAB to TAB kind LF" (ms into the day;
-- kind n named, f floating, w refused for want of a seat). Append only: no
-- read, no rewrite.
local function usage_span(u, t0, t1, kind)
    local c = conf()
    if not c or usage_bucket() == 0 then return end
    t1 = math.max(t1, t0 + 1)
    t0 = math.max(t0, t1 - num(c.usage_retention, 34560000) * 1000)
    if kind ~= 'n' and kind ~= 'f' and kind ~= 'w' then
        kind = redis.call('SISMEMBER', K('named'), u) == 1 and 'n' or 'f'
    end
    for d = math.floor(t0 / DAY), math.floor((t1 - 1) / DAY) do
        local key = K('ua:' .. d)
        local rec = u .. '\t' .. (math.max(t0, d * DAY) - d * DAY) .. '\t' ..
            (math.min(t1, (d + 1) * DAY) - d * DAY) .. '\t' .. kind .. '\n'
        if redis.call('APPEND', key, rec) == #rec then usage_keep(key, d) end
    end
end

-- a session ends at time t (default now), or at its own expiry e when that
-- was earlier (e: its score when the caller has it): its span goes to the
-- usage records
local function sess_del(m, t, e)
    local info = usage_bucket() > 0 and redis.call('HGET', K('sessinfo'), m)
    local z = string.find(m, '\0', 1, true)
    if info and z then
        local started = tonumber(string.match(info, 'started=(%d+)'))
        e = e or tonumber(redis.call('ZSCORE', K('sess'), m) or 0)
        t = t or now()
        if e > 0 and e < t then t = e end
        if started then
            usage_span(string.sub(m, 1, z - 1), started, t, string.match(info, 'seat=(%a)'))
        end
    end
    redis.call('ZREM', K('sess'), m)
    redis.call('ZREM', K('sessidx'), m)
    redis.call('HDEL', K('sessinfo'), m)
end

local function sessions_of(u)
    return redis.call('ZRANGEBYLEX', K('sessidx'), '[' .. u .. '\0', '(' .. u .. '\1')
end

local function drop_sessions(u)
    local ms = sessions_of(u)
    for _, m in ipairs(ms) do sess_del(m) end
    return #ms
end

-- count a new floating holder in the groups that carry a reservation or cap
local function count_in(u, groups)
    local c = conf()
    local hg = ','
    for g in string.gmatch(c.countg or '', '[^,]+') do
        if has(groups, g) then
            redis.call('HINCRBY', K('gcount'), g, 1)
            hg = hg .. g .. ','
        end
    end
    if hg ~= ',' then redis.call('HSET', K('hg'), u, hg) end
end

local function count_out(u)
    -- a pool whose rules count no group has no hg entries (a change of the
    -- counted groups rebuilds them, and doctor checks them)
    local c = conf()
    if c and (c.countg or ',') == ',' then return end
    local hg = redis.call('HGET', K('hg'), u)
    if hg then
        for g in string.gmatch(hg, '[^,]+') do redis.call('HINCRBY', K('gcount'), g, -1) end
        redis.call('HDEL', K('hg'), u)
    end
end

-- Frees u's floating seat, if any, and audits it as ev with the fields f.
-- Returns the lease's expiry, or false when u held no floating seat. score:
-- the lease's score when the caller has just read it (saves the read).
local function seat_drop(u, ev, f, score)
    score = score or redis.call('ZSCORE', K('leases'), u)
    if not score then return false end
    redis.call('ZREM', K('leases'), u)
    count_out(u)
    f.user = f.user or u
    f.seat = 'floating'
    if ev == 'expire' then f.at = f.at or score end
    audit(ev, f)
    publish_revoke(u)
    return tonumber(score)
end

-- The seat follows the sessions: after a session of u ended, the seat's
-- expiry becomes the latest expiry of u's live sessions, or the seat goes.
-- Lapsed sessions met on the way are removed. f: audit fields if it goes;
-- score: the lease's score when the caller has just read it.
local function seat_recompute(u, ev, f, score)
    local best = 0
    for _, m in ipairs(sessions_of(u)) do
        local e = tonumber(redis.call('ZSCORE', K('sess'), m) or 0)
        if e > now() then
            if e > best then best = e end
        else
            if e > (f.at or 0) then f.at = e end
            sess_del(m, e, e)
        end
    end
    if best > 0 then
        redis.call('ZADD', K('leases'), 'XX', istr(best), u)
        return best
    end
    score = score or redis.call('ZSCORE', K('leases'), u)
    if ev == 'expire' then
        local sc = tonumber(score or 0)
        if sc > now() then f.at = now() elseif sc > 0 then f.at = sc end
    end
    seat_drop(u, ev, f, score)
    return 0
end

-- Lapsed sessions and leases are removed a bounded number at a time
-- (PURGE_MAX per call), so a burst of expiries never makes one decision
-- slow; counts that matter (seats in use) never include a lapsed lease.
-- live: the caller counted the live leases; then lapsed ones are looked
-- for only when some exist (ZCOUNT: cheaper than the ranged read).
local PURGE_MAX = '16'

-- The latest score of each user in a WITHSCORES list of "user\0session"
-- members, into the table t (made when nil).
local function latest_per_user(list, t)
    t = t or {}
    for i = 1, #list, 2 do
        local z = string.find(list[i], '\0', 1, true)
        if z then
            local u, e = string.sub(list[i], 1, z - 1), tonumber(list[i + 1])
            if not t[u] or t[u] < e then t[u] = e end
        end
    end
    return t
end

local function purge(live)
    local gone = redis.call('ZRANGEBYSCORE', K('sess'), '-inf', nows(), 'WITHSCORES',
        'LIMIT', '0', PURGE_MAX)
    for i = 1, #gone, 2 do
        sess_del(gone[i], tonumber(gone[i + 1]), tonumber(gone[i + 1]))
    end
    for u, at in pairs(latest_per_user(gone)) do
        seat_recompute(u, 'expire', {at = at, result = 'released', reason = 'lease_expired',
            pid = ''})
    end
    if #gone == 0 and live and redis.call('ZCOUNT', K('leases'), '-inf', nows()) == 0 then
        return
    end
    local lapsed = redis.call('ZRANGEBYSCORE', K('leases'), '-inf', nows(), 'WITHSCORES',
        'LIMIT', '0', PURGE_MAX)
    for i = 1, #lapsed, 2 do
        drop_sessions(lapsed[i])
        seat_drop(lapsed[i], 'expire', {at = lapsed[i + 1], result = 'released',
            reason = 'lease_expired', pid = ''})
    end
end

-- is a user with projected groups g allowed by the pool's include/exclude?
local function excluded_reason(c, groups)
    for g in string.gmatch(c.exclude or '', '[^,]+') do
        if has(groups, g) then return 'excluded_group' end
    end
    local inc = c.include or ','
    if inc ~= ',' and inc ~= '' then
        for g in string.gmatch(inc, '[^,]+') do
            if has(groups, g) then return false end
        end
        return 'not_in_included_group'
    end
    return false
end

-- flatten a table of name/value pairs into a reply
local function reply(t)
    local out = {}
    for k, v in pairs(t) do
        out[#out + 1] = k
        out[#out + 1] = v
    end
    return out
end

-- "\n"-separated items of a list argument
local function lines(s)
    local t = {}
    for l in string.gmatch(s or '', '[^\n]+') do t[#t + 1] = l end
    return t
end

-- Change one user record in the global registry (slot {_}) from a change
-- line "user TAB D TAB S TAB G TAB groups": D and S are '-' (unchanged), '0'
-- or '1'; G is '-' (groups unchanged) or '=' (the groups become the comma-
-- separated list that follows). The merge happens here, so no client reads
-- a record and writes it back. Returns "user TAB old TAB new" when the
-- record changed (old '' for a new user), else nil; audits the change.
local function user_change(l)
    local u, d, s, gm, gl = string.match(l, '^([^\t]+)\t([-01])\t([-01])\t([-=])\t?(.*)$')
    if not u then return nil, 'ERR malformed user change: ' .. l end
    local old = redis.call('HGET', 'sg:{_}:users', u)
    local r = urec(old)
    local new = {dis = r.dis, svc = r.svc, ver = r.ver, groups = r.groups}
    if d ~= '-' then new.dis = (d == '1') end
    if s ~= '-' then new.svc = (s == '1') end
    if gm == '=' then
        new.groups = ','
        for g in string.gmatch(gl, '[^,]+') do
            if not has(new.groups, g) then new.groups = new.groups .. g .. ',' end
        end
    end
    if old and new.dis == r.dis and new.svc == r.svc and new.groups == r.groups then
        return nil
    end
    new.ver = redis.call('INCR', 'sg:{_}:uver')
    local rec = urec_str(new)
    redis.call('HSET', 'sg:{_}:users', u, rec)
    if new.dis then redis.call('SADD', 'sg:{_}:disabled', u)
    else redis.call('SREM', 'sg:{_}:disabled', u) end
    if new.svc then redis.call('SADD', 'sg:{_}:svc', u) else redis.call('SREM', 'sg:{_}:svc', u) end
    for g in string.gmatch(r.groups, '[^,]+') do
        if not has(new.groups, g) then redis.call('SREM', 'sg:{_}:grp:' .. g, u) end
    end
    for g in string.gmatch(new.groups, '[^,]+') do
        if not has(r.groups, g) then redis.call('SADD', 'sg:{_}:grp:' .. g, u) end
    end
    audit('user_set', {user = u, pid = '', reason = 'disabled=' .. (new.dis and 1 or 0) ..
        ' service_account=' .. (new.svc and 1 or 0) .. ' groups=' .. new.groups})
    return u .. '\t' .. (old or '') .. '\t' .. rec
end

-- The pool's epoch counts its admin changes (settings, named seats, user
-- records). It is a key of its own, not a field of the settings, so the
-- provisioning role can move it without being able to change (buy) seats.
local function epoch_bump() redis.call('INCR', K('epoch')) end
