-- release: end one session of a user, or all of them (logout, PAM close,
-- reap, admin force release).
-- KEYS: as decide (leases sess sessidx sessinfo gcount hg fold lastused stats mux)
-- A: pool user via, and session (absent = every session of the user) host
-- Reply: sessions (ended), seat (1 when the floating seat went)
-- The seat is held exactly while one of the user's sessions is live: ending
-- one session recomputes the seat's expiry from the sessions left.
local user, session = A.user, A.session or ''
local n, seat = 0, 0
local f = {result = 'released', reason = 'seat_released', session = session, pid = ''}
if session == '' then
    n = drop_sessions(user)
    if seat_drop(user, 'release', f) then seat = 1 end
else
    local m = user .. '\0' .. session
    local e = redis.call('ZSCORE', K('sess'), m)
    if e then
        sess_del(m, nil, tonumber(e))
        n = 1
    end
    local score = redis.call('ZSCORE', K('leases'), user)
    if score then
        if seat_recompute(user, 'release', f, score) == 0 then seat = 1 end
    end
end
if n > 0 and seat == 0 then
    audit('release', {user = user, result = 'released', reason = 'session_closed',
        session = session, pid = ''})
end
return reply({sessions = n, seat = seat})
