-- seatgate: assign or unassign named seats, all users or none.
-- KEYS: 1 conf  2 named  3 audit
-- ARGV: 1 pool  2 via  3 host  4 mode (assign|unassign)  5.. users
-- Returns {status, count, message}: 'ok' with the number changed, 'refused'
-- when the named seats bought would be exceeded, 'no_pool'.
local pool, via, host, mode = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
if redis.call('EXISTS', KEYS[1]) == 0 then return {'no_pool', 0, 'no such pool: ' .. pool} end
local named = tonumber(redis.call('HGET', KEYS[1], 'named')) or 0
local audit_max = redis.call('HGET', KEYS[1], 'audit_max') or 100000
local changed = 0
if mode == 'assign' then
    local new = {}
    local seen = {}
    for i = 5, #ARGV do
        local u = ARGV[i]
        if not seen[u] and redis.call('SISMEMBER', KEYS[2], u) == 0 then new[#new + 1] = u end
        seen[u] = true
    end
    local have = redis.call('SCARD', KEYS[2])
    if have + #new > named then
        return {'refused', 0, 'pool ' .. pool .. ' has ' .. named .. ' named seats, ' .. have ..
            ' assigned; assigning ' .. #new .. ' more would exceed them'}
    end
    for _, u in ipairs(new) do
        redis.call('SADD', KEYS[2], u)
        redis.call('XADD', KEYS[3], 'MAXLEN', '~', audit_max, '*', 'ev', 'assign', 'pool', pool,
            'user', u, 'obo', '', 'via', via, 'host', host, 'pid', '', 'client', '',
            'result', 'ok', 'reason', 'named_seat_assigned', 'seat', 'named', 'session', '')
        changed = changed + 1
    end
else
    for i = 5, #ARGV do
        local u = ARGV[i]
        if redis.call('SREM', KEYS[2], u) == 1 then
            redis.call('XADD', KEYS[3], 'MAXLEN', '~', audit_max, '*', 'ev', 'unassign',
                'pool', pool, 'user', u, 'obo', '', 'via', via, 'host', host, 'pid', '',
                'client', '', 'result', 'ok', 'reason', 'named_seat_revoked', 'seat', 'named',
                'session', '')
            redis.call('PUBLISH', 'seatgate:revoke', pool .. '\t' .. u)
            changed = changed + 1
        end
    end
end
if changed > 0 then redis.call('HINCRBY', KEYS[1], 'epoch', 1) end
return {'ok', changed, ''}
