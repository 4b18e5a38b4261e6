-- scim: the SCIM 2.0 User resources of the live endpoint (nginx
-- seatgate_scim), kept in the registry's slot {_} beside the user records
-- they drive. The C side (common/scim.c) parses and builds the JSON; this
-- script stores it, keeps the indexes, and changes the user record and the
-- change log in the same atomic step.
-- KEYS: 1 sg:{_}:scim (id -> resource JSON)  2 sg:{_}:scim:name (lowered
--       userName -> id)  3 sg:{_}:scim:ext (externalId -> id)  4 sg:{_}:scim:ids
--       (zset, score 0: ids in order, for paging)  5 sg:{_}:scim:key (id ->
--       "name TAB ext TAB user TAB version": what the indexes hold for it)
--       (the registry's users, uver, disabled, svc, grp:*, synced, audit and
--       pools keys are in the same slot)
-- A: op = get | find | list | put | delete, via host by
--   get:    id name                     -> status ok|missing, resource, user, ver,
--           owner (the id that has userName name, '' none)
--   find:   attr (name|ext|id) value    -> status ok|missing, resource, id
--   list:   start (0-based) count       -> total, resources (LF-separated)
--   put:    id resource name ext user ver expect (the version the change was
--           made from: another one in place -> status retry) create (1: POST) changes (user change
--           lines, lib.lua user_change) rules seats (lines "give|take TAB
--           pool TAB user": named seats this request gave or took) -> status ok|missing|conflict, changed (lines "user TAB
--           old TAB new"), pools (LF-separated), was (the user it had)
--   delete: id expect changes rules seats -> status ok|missing|retry, changed, pools, was
POOL = '_'
local op = A.op

local function sorted_groups(groups)
    local t = {}
    for g in string.gmatch(groups or ',', '[^,]+') do t[#t + 1] = g end
    table.sort(t)
    return #t > 0 and table.concat(t, ',') or '-'
end

local function rec_text(rec)
    if not rec or rec == '' then return '-' end
    local r = urec(rec)
    return 'disabled=' .. (r.dis and 1 or 0) .. ' service_account=' .. (r.svc and 1 or 0) ..
        ' groups=' .. sorted_groups(r.groups)
end

-- one entry of the change log: who asked (by), the map's rules, before, after
local function change_log(u, before, after, seat)
    local keep = 34560000 * 1000
    redis.call('XADD', 'sg:{_}:audit', 'MINID', '~', math.max(0, now() - keep), '*',
        'ev', 'scim', 'at', now(), 'pool', '_', 'user', u, 'via', 'scim', 'host', A.host or '',
        'by', A.by or '', 'result', 'ok', 'reason', (A.rules or '') ~= '' and A.rules or 'no_rule',
        'seat', seat, 'before', before, 'after', after)
end

-- apply the record changes and log them (and the named seats given or taken)
local function apply_changes()
    local out = {}
    for _, l in ipairs(lines(A.changes)) do
        local changed, e = user_change(l)
        if e then return nil, e end
        if changed then
            out[#out + 1] = changed
            local u, old, new = string.match(changed, '^([^\t]+)\t([^\t]*)\t(.*)$')
            change_log(u, rec_text(old), rec_text(new), 'none')
        end
    end
    for _, l in ipairs(lines(A.seats)) do
        local how, pool, u = string.match(l, '^(%a+)\t([^\t]+)\t(.+)$')
        if how == 'give' then
            change_log(u, '-', 'named seat of ' .. pool, 'named')
        elseif how == 'take' then
            change_log(u, 'named seat of ' .. pool, '-', 'named')
        end
    end
    return table.concat(out, '\n')
end

local function pools()
    return table.concat(redis.call('SMEMBERS', 'sg:{_}:pools'), '\n')
end

local function user_of(id)
    local k = redis.call('HGET', KEYS[5], id)
    if not k then return nil end
    local name, ext, user, ver = string.match(k, '^([^\t]*)\t([^\t]*)\t([^\t]*)\t?(.*)$')
    return {name = name, ext = ext, user = user, ver = ver}
end

if op == 'get' then
    local owner = (A.name or '') ~= '' and redis.call('HGET', KEYS[2], A.name) or ''
    local res = (A.id or '') ~= '' and redis.call('HGET', KEYS[1], A.id)
    if not res then return reply({status = 'missing', owner = owner or ''}) end
    local k = user_of(A.id)
    return reply({status = 'ok', resource = res, user = k and k.user or '', ver = k and k.ver or '',
        owner = owner or ''})

elseif op == 'find' then
    local id = A.value
    if A.attr == 'name' then id = redis.call('HGET', KEYS[2], A.value)
    elseif A.attr == 'ext' then id = redis.call('HGET', KEYS[3], A.value) end
    local res = id and redis.call('HGET', KEYS[1], id)
    if not res then return reply({status = 'missing'}) end
    return reply({status = 'ok', resource = res, id = id})

elseif op == 'list' then
    local start, count = num(A.start, 0), num(A.count, 100)
    local total = redis.call('ZCARD', KEYS[4])
    local out = {}
    if count > 0 and start < total then
        local ids = redis.call('ZRANGE', KEYS[4], start, start + count - 1)
        if #ids > 0 then
            for _, r in ipairs(redis.call('HMGET', KEYS[1], unpack(ids))) do
                if r then out[#out + 1] = r end
            end
        end
    end
    return reply({total = total, resources = table.concat(out, '\n')})

elseif op == 'put' then
    local was = user_of(A.id)
    if A.create == '1' then
        if was then return reply({status = 'conflict', message = 'id in use'}) end
    elseif not was then
        return reply({status = 'missing'})
    elseif (A.expect or '') ~= '' and was.ver ~= A.expect then
        return reply({status = 'retry'})  -- changed since it was read: read it again
    end
    local owner = redis.call('HGET', KEYS[2], A.name)
    if owner and owner ~= A.id then
        return reply({status = 'conflict', message = 'userName is already taken'})
    end
    local changed, e = apply_changes()
    if e then return redis.error_reply(e) end
    if was then
        if was.name ~= A.name then redis.call('HDEL', KEYS[2], was.name) end
        if was.ext ~= '' and was.ext ~= A.ext and redis.call('HGET', KEYS[3], was.ext) == A.id then
            redis.call('HDEL', KEYS[3], was.ext)
        end
    end
    redis.call('HSET', KEYS[1], A.id, A.resource)
    redis.call('HSET', KEYS[2], A.name, A.id)
    if A.ext ~= '' then redis.call('HSET', KEYS[3], A.ext, A.id) end
    redis.call('ZADD', KEYS[4], 0, A.id)
    redis.call('HSET', KEYS[5], A.id, A.name .. '\t' .. A.ext .. '\t' .. A.user .. '\t' .. A.ver)
    redis.call('SADD', 'sg:{_}:synced', A.user)
    if was and was.user ~= A.user then redis.call('SREM', 'sg:{_}:synced', was.user) end
    return reply({status = 'ok', changed = changed, pools = pools(), was = was and was.user or ''})

elseif op == 'delete' then
    local was = user_of(A.id)
    if not was then return reply({status = 'missing'}) end
    if (A.expect or '') ~= '' and was.ver ~= A.expect then return reply({status = 'retry'}) end
    local changed, e = apply_changes()
    if e then return redis.error_reply(e) end
    redis.call('HDEL', KEYS[1], A.id)
    redis.call('HDEL', KEYS[5], A.id)
    if redis.call('HGET', KEYS[2], was.name) == A.id then redis.call('HDEL', KEYS[2], was.name) end
    if was.ext ~= '' and redis.call('HGET', KEYS[3], was.ext) == A.id then
        redis.call('HDEL', KEYS[3], was.ext)
    end
    redis.call('ZREM', KEYS[4], A.id)
    return reply({status = 'ok', changed = changed, pools = pools(), was = was.user})
end
return redis.error_reply('ERR unknown scim op: ' .. tostring(op))
