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
    local changed, e = user_change(l)
    if e then return redis.error_reply(e) end
    if changed then out[#out + 1] = changed else same = same + 1 end
end
return reply({changed = table.concat(out, '\n'), unchanged = same})
