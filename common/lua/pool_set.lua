-- seatgate: create or update a pool.
-- KEYS: 1 conf  2 named  3 audit
-- ARGV: 1 pool  2 via  3 host  then field/value pairs (only the fields given change)
-- Returns {status, message}: status 'created', 'updated' or 'refused'.
local pool, via, host = ARGV[1], ARGV[2], ARGV[3]
local t = redis.call('TIME')
local exists = redis.call('EXISTS', KEYS[1]) == 1
local changes = {}
for i = 4, #ARGV, 2 do changes[ARGV[i]] = ARGV[i + 1] end
if changes.named then
    local assigned = redis.call('SCARD', KEYS[2])
    if tonumber(changes.named) < assigned then
        return {'refused', 'pool ' .. pool .. ' has ' .. assigned ..
            ' users assigned to named seats; unassign some before lowering --named to ' ..
            changes.named}
    end
end
local floating = tonumber(changes.floating or redis.call('HGET', KEYS[1], 'floating')) or 0
local reserved = 0
for _, k in string.gmatch(changes.reserve or redis.call('HGET', KEYS[1], 'reserve') or '',
        '([^,=]+)=(%d+)') do
    reserved = reserved + tonumber(k)
end
if reserved > floating then
    return {'refused', 'pool ' .. pool .. ': reservations (' .. reserved ..
        ') exceed the floating seats (' .. floating .. ')'}
end
if not exists then
    redis.call('HSET', KEYS[1], 'named', 0, 'floating', 0, 'idle', 900, 'overdraft', 0,
        'features', ',', 'include', ',', 'exclude', ',', 'reserve', ',', 'cap', ',',
        'mux_limit', 0, 'mux_window', 3600, 'audit_max', 100000, 'epoch', 0,
        'created', t[1])
end
local desc = {}
for i = 4, #ARGV, 2 do
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
    desc[#desc + 1] = ARGV[i] .. '=' .. ARGV[i + 1]
end
redis.call('HSET', KEYS[1], 'updated', t[1])
redis.call('HINCRBY', KEYS[1], 'epoch', 1)
local status = exists and 'updated' or 'created'
redis.call('XADD', KEYS[3], 'MAXLEN', '~', redis.call('HGET', KEYS[1], 'audit_max'), '*',
    'ev', 'pool_' .. status, 'pool', pool, 'user', '', 'obo', '', 'via', via, 'host', host,
    'pid', '', 'client', '', 'result', 'ok', 'reason', table.concat(desc, ' '), 'seat', 'none',
    'session', '')
redis.call('PUBLISH', 'seatgate:revoke', pool .. '\t')
return {status, ''}
