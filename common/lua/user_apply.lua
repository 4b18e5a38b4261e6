-- user_apply: bring the pool's projection of user records up to date.
-- KEYS: the pool's users leases sess sessidx sessinfo gcount hg (conf, epoch and
--       audit by name)
-- A: pool via host desc records = lines "user\trecord" (global records),
--    quiet ('1': a projection for rules being added or a pool being created:
--    one summary instead of an audit entry and a cache revocation per user;
--    seats taken back are still audited and published)
-- Reply: applied (records that changed the projection), revoked (seats taken)
-- The projection keeps, per user, only what this pool's rules read: the
-- disabled and service-account flags and the groups the pool tracks (those
-- of its include, exclude, reserve and cap rules, and groups being added).
-- A user with nothing of that has no entry. A record older than the one in
-- place is ignored, so applies racing each other end on the newest.
local c = conf()
if not c then return reply({applied = 0, revoked = 0, missing = 1}) end
local watch = (c.tracked or ',') .. string.sub(c.pending or ',', 2)
local applied, revoked = 0, 0
for _, l in ipairs(lines(A.records)) do
    local u, rec = string.match(l, '^([^\t]+)\t(.*)$')
    if not u then return redis.error_reply('ERR malformed record: ' .. l) end
    local r = urec(rec ~= '' and rec or nil)
    local oldrec = redis.call('HGET', K('users'), u)
    local o = urec(oldrec)
    if not (oldrec and o.ver > r.ver) then
        local pg = ','
        for g in string.gmatch(r.groups, '[^,]+') do
            if has(watch, g) and not has(pg, g) then pg = pg .. g .. ',' end
        end
        local p = {dis = r.dis, svc = r.svc, ver = r.ver, groups = pg}
        if not p.dis and not p.svc and pg == ',' then
            if oldrec then redis.call('HDEL', K('users'), u) end
        else
            redis.call('HSET', K('users'), u, urec_str(p))
        end
        if p.dis ~= o.dis or p.svc ~= o.svc or pg ~= o.groups then
            applied = applied + 1
            if A.quiet ~= '1' then
                audit('user_set', {user = u, reason = A.desc or '', pid = ''})
            end
            local held = num(redis.call('ZSCORE', K('leases'), u), 0) > 0
            local why = (p.dis and 'user_disabled') or excluded_reason(c, pg) or
                (p.svc and 'service_account')
            if held and why then
                drop_sessions(u)
                seat_drop(u, 'revoke', {result = p.dis and 'denied_disabled' or
                    'denied_excluded', reason = why, pid = ''})
                revoked = revoked + 1
            elseif held then
                count_out(u)
                count_in(u, pg)
            end
            if A.quiet ~= '1' then publish_revoke(u) end
        end
    end
end
if applied > 0 and A.quiet ~= '1' then epoch_bump() end
return reply({applied = applied, revoked = revoked})
