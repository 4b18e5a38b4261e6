-- seatgate: mirror one user's record into a pool; a disabled user loses a
-- floating seat at once.
-- KEYS: 1 conf 2 named 3 leases 4 sess 5 sessidx 6 sessinfo 7 users 8 audit
-- ARGV: 1 pool  2 via  3 host  4 user  5 record (flags disabled, service, ",groups,")
--       6 change description
-- Returns 1 when a floating seat was revoked.
local pool, via, host, user, rec = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local old = redis.call('HGET', KEYS[7], user)
redis.call('HSET', KEYS[7], user, rec)
if old == rec then return 0 end
local audit_max = redis.call('HGET', KEYS[1], 'audit_max') or 100000
redis.call('HINCRBY', KEYS[1], 'epoch', 1)
redis.call('XADD', KEYS[8], 'MAXLEN', '~', audit_max, '*', 'ev', 'user_set', 'pool', pool,
    'user', user, 'obo', '', 'via', via, 'host', host, 'pid', '', 'client', '', 'result', 'ok',
    'reason', ARGV[6], 'seat', 'none', 'session', '')
local revoked = 0
if string.sub(rec, 1, 1) == '1' and redis.call('ZREM', KEYS[3], user) == 1 then
    for _, m in ipairs(redis.call('ZRANGEBYLEX', KEYS[5], '[' .. user .. '\0', '(' .. user .. '\1')) do
        redis.call('ZREM', KEYS[4], m)
        redis.call('ZREM', KEYS[5], m)
        redis.call('HDEL', KEYS[6], m)
    end
    redis.call('XADD', KEYS[8], 'MAXLEN', '~', audit_max, '*', 'ev', 'revoke', 'pool', pool,
        'user', user, 'obo', '', 'via', via, 'host', host, 'pid', '', 'client', '',
        'result', 'denied_disabled', 'reason', 'user_disabled', 'seat', 'floating', 'session', '')
    revoked = 1
end
redis.call('PUBLISH', 'seatgate:revoke', pool .. '\t' .. user)
return revoked
