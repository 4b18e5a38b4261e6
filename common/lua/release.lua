-- seatgate: release a seat (logout, session close, admin force release).
-- KEYS: as decide.lua (1 conf 2 named 3 leases 4 sess 5 sessidx 6 sessinfo
--       7 users 8 audit 9 lastused 10 stats 11 mux placeholder)
-- ARGV: 1 user  2 session ('' = every session of the user)  3 via  4 host  5 pool
-- Returns {sessions_released, seat_released(0|1)}. Other sessions of the same
-- user keep the floating seat.
local user, session, via, host, pool = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local audit_max = tonumber(redis.call('HGET', KEYS[1], 'audit_max')) or 100000

local function del(m)
    redis.call('ZREM', KEYS[4], m)
    redis.call('ZREM', KEYS[5], m)
    return redis.call('HDEL', KEYS[6], m)
end

local lo, hi = '[' .. user .. '\0', '(' .. user .. '\1'
local n, seat = 0, 0
if session == '' then
    for _, m in ipairs(redis.call('ZRANGEBYLEX', KEYS[5], lo, hi)) do n = n + del(m) end
    seat = redis.call('ZREM', KEYS[3], user)
else
    n = del(user .. '\0' .. session)
    local live = 0
    for _, m in ipairs(redis.call('ZRANGEBYLEX', KEYS[5], lo, hi)) do
        local e = redis.call('ZSCORE', KEYS[4], m)
        if e and tonumber(e) > now then live = live + 1 end
    end
    if live == 0 then seat = redis.call('ZREM', KEYS[3], user) end
end
if n > 0 or seat > 0 then
    local reason = 'session_closed'
    if seat > 0 then reason = 'seat_released' end
    redis.call('XADD', KEYS[8], 'MAXLEN', '~', audit_max, '*',
        'ev', 'release', 'pool', pool, 'user', user, 'obo', '', 'via', via, 'host', host,
        'pid', '', 'client', '', 'result', 'released', 'reason', reason,
        'seat', seat > 0 and 'floating' or 'none', 'session', session)
    if seat > 0 then redis.call('PUBLISH', 'seatgate:revoke', pool .. '\t' .. user) end
end
return {n, seat}
