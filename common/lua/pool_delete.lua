-- seatgate: delete a pool and every seat in it. The audit stream stays.
-- KEYS: 1 conf 2 named 3 leases 4 sess 5 sessidx 6 sessinfo 7 users 8 audit 9 lastused 10 stats
-- ARGV: 1 pool  2 via  3 host
-- Returns 1 if the pool existed, else 0.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local audit_max = redis.call('HGET', KEYS[1], 'audit_max') or 100000
local holders = redis.call('ZCARD', KEYS[3])
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[9], KEYS[10])
redis.call('XADD', KEYS[8], 'MAXLEN', '~', audit_max, '*',
    'ev', 'pool_deleted', 'pool', ARGV[1], 'user', '', 'obo', '', 'via', ARGV[2],
    'host', ARGV[3], 'pid', '', 'client', '', 'result', 'ok',
    'reason', holders .. ' floating seats released', 'seat', 'none', 'session', '')
redis.call('PUBLISH', 'seatgate:revoke', ARGV[1] .. '\t')
return 1
