-- user_put: change user records in the global registry (slot {_}).
-- KEYS: 1 sg:{_}:users  2 sg:{_}:uver  3 sg:{_}:disabled  4 sg:{_}:svc
--       (group member sets sg:{_}:grp:<group> are in the same slot)
-- A: via host changes = lines "user\tD\tS\tG\tgroups": D and S are '-' (unchanged),
--    '0' or '1'; G is '-' (groups unchanged) or '=' (groups become the
--    comma-separated list that follows, possibly empty)
-- Reply: changed = lines "user\told\tnew" for each user whose record changed
--        (old '' when the user was not registered); unchanged = a count.
-- The merge happens here, so no client reads a record and writes it back.
-- Each change is audited in the registry's own stream sg:{_}:audit.
POOL = '_'
local out, same = {}, 0
for _, l in ipairs(lines(A.changes)) do
    local u, d, s, gm, gl = string.match(l, '^([^\t]+)\t([-01])\t([-01])\t([-=])\t?(.*)$')
    if not u then return redis.error_reply('ERR malformed user change: ' .. l) end
    local old = redis.call('HGET', KEYS[1], u)
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
        same = same + 1
    else
        new.ver = redis.call('INCR', KEYS[2])
        local rec = urec_str(new)
        redis.call('HSET', KEYS[1], u, rec)
        if new.dis then redis.call('SADD', KEYS[3], u) else redis.call('SREM', KEYS[3], u) end
        if new.svc then redis.call('SADD', KEYS[4], u) else redis.call('SREM', KEYS[4], u) end
        for g in string.gmatch(r.groups, '[^,]+') do
            if not has(new.groups, g) then redis.call('SREM', 'sg:{_}:grp:' .. g, u) end
        end
        for g in string.gmatch(new.groups, '[^,]+') do
            if not has(r.groups, g) then redis.call('SADD', 'sg:{_}:grp:' .. g, u) end
        end
        out[#out + 1] = u .. '\t' .. (old or '') .. '\t' .. rec
        audit('user_set', {user = u, pid = '', reason = 'disabled=' .. (new.dis and 1 or 0) ..
            ' service_account=' .. (new.svc and 1 or 0) .. ' groups=' .. new.groups})
    end
end
return reply({changed = table.concat(out, '\n'), unchanged = same})
