-- wrk script for tests/bench/bench_scim.py: SCIM requests with the bearer
-- token, over N users made beforehand (ids in a file, one "id user" a line).
-- usage: wrk -s wrk-scim.lua URL -- MODE TOKEN IDFILE
--   MODE filter: GET /Users?filter=userName eq "USER" (random users)
--   MODE patch:  PATCH /Users/ID active false, then true (random users)
--   MODE static: GET URL itself (the ceiling: a static file)
local reqs = {}
local i = 0

function init(args)
    local mode, token, file = args[1], args[2], args[3]
    local base = wrk.path
    local users = {}
    for line in io.lines(file) do
        local id, user = line:match("^(%S+) (%S+)$")
        if id then users[#users + 1] = {id = id, user = user} end
    end
    math.randomseed(os.time() + (tonumber(tostring({}):match("0x(%x+)"), 16) or 0) % 100000)
    local h = {["Authorization"] = "Bearer " .. token, ["Accept"] = "application/scim+json"}
    for k = 1, 2000 do
        local u = users[math.random(#users)]
        if mode == "static" then
            reqs[k] = wrk.format("GET", base, h)
        elseif mode == "filter" then
            reqs[k] = wrk.format("GET", base .. "Users?filter=userName%20eq%20%22" .. u.user ..
                "%22&startIndex=1&count=100", h)
        else
            local hp = {["Authorization"] = h["Authorization"], ["Accept"] = h["Accept"],
                        ["Content-Type"] = "application/scim+json"}
            local body = '{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],' ..
                '"Operations":[{"op":"replace","value":{"active":' ..
                ((k % 2 == 0) and "true" or "false") .. '}}]}'
            reqs[k] = wrk.format("PATCH", base .. "Users/" .. u.id, hp, body)
        end
    end
end

function request()
    i = i % #reqs + 1
    return reqs[i]
end

function done(summary, latency, requests)
    io.write(string.format("non2xx %d\n", summary.errors.status))
end
