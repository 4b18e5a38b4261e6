-- pool_delete: delete a pool and every seat in it. The audit stream stays
-- (with an entry saying so) and ages out by its retention.
-- KEYS: the pool's conf named users leases sess sessidx sessinfo gcount hg
--       fold lastused stats
-- A: pool via host
-- Reply: existed (0|1), released (floating seats that were held)
if not conf() then return reply({existed = 0, released = 0}) end
local held = redis.call('ZCOUNT', K('leases'), '(' .. now(), '+inf')
audit('pool_deleted', {reason = held .. ' floating seats released', pid = ''})
redis.call('DEL', unpack(KEYS))
publish_revoke('')
return reply({existed = 1, released = held})
