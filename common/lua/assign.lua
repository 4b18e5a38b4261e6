-- assign: give named seats to users (all or none) or take them back.
-- KEYS: the pool's named leases sess sessidx gcount hg (conf, epoch and audit
--       by name: the provisioning role reads the first, writes the last)
-- A: pool via host mode (assign|unassign) users ("\n"-separated)
-- Reply: status ok|refused|no_pool, changed, message, converted (users whose
--        floating seat went back to the pool because they now hold a named one)
local c = conf()
if not c or c.state ~= 'ready' then
    return reply({status = 'no_pool', changed = 0, message = 'no such pool: ' .. POOL})
end
local users = lines(A.users)
local changed, converted = 0, {}
if A.mode == 'assign' then
    local new, seen = {}, {}
    for _, u in ipairs(users) do
        if not seen[u] and redis.call('SISMEMBER', K('named'), u) == 0 then new[#new + 1] = u end
        seen[u] = true
    end
    local have = redis.call('SCARD', K('named'))
    local named = num(c.named, 0)
    if have + #new > named then
        return reply({status = 'refused', changed = 0, message = 'pool ' .. POOL .. ' has ' ..
            named .. ' named seats, ' .. have .. ' assigned; assigning ' .. #new ..
            ' more would exceed them'})
    end
    for _, u in ipairs(new) do
        redis.call('SADD', K('named'), u)
        audit('assign', {user = u, reason = 'named_seat_assigned', seat = 'named', pid = ''})
        -- a floating seat the user held goes back to the pool; the sessions stay
        if seat_drop(u, 'convert', {result = 'granted_named', reason = 'named_seat_assigned',
                pid = ''}) then
            converted[#converted + 1] = u
        end
        changed = changed + 1
    end
else
    for _, u in ipairs(users) do
        if redis.call('SREM', K('named'), u) == 1 then
            audit('unassign', {user = u, reason = 'named_seat_revoked', seat = 'named', pid = ''})
            publish_revoke(u)
            changed = changed + 1
        end
    end
end
if changed > 0 then epoch_bump() end
return reply({status = 'ok', changed = changed, message = '',
    converted = table.concat(converted, '\n')})
