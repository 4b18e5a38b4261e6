-- wrk script for tests/bench/run-nginx.sh: each request is one of N users
-- (bench0 .. bench<N-1>, password pw<i>) by HTTP Basic credentials, in turn.
-- The requests are formatted once, in init; request() only picks the next.
-- usage: wrk -s wrk-users.lua URL -- [N]   (the URL's path is requested)

local reqs = {}
local i = 0

local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

local function base64(s)
    local out = {}
    for k = 1, #s, 3 do
        local a, b, c = s:byte(k, k + 2)
        local n = a * 65536 + (b or 0) * 256 + (c or 0)
        local q = {}
        for j = 3, 0, -1 do
            local v = math.floor(n / 64 ^ j) % 64
            q[#q + 1] = B64:sub(v + 1, v + 1)
        end
        if not b then q[3] = "=" end
        if not c then q[4] = "=" end
        out[#out + 1] = table.concat(q)
    end
    return table.concat(out)
end

function init(args)
    local n = tonumber(args[1]) or 50
    for k = 0, n - 1 do
        local cred = base64("bench" .. k .. ":pw" .. k)
        reqs[#reqs + 1] = wrk.format("GET", nil, {Authorization = "Basic " .. cred})
    end
end

function request()
    i = i % #reqs + 1
    return reqs[i]
end
