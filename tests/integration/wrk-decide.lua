-- wrk script for tests/integration/test_cluster.py: requests by USERS users
-- in turn (X-User), counting the statuses and the decisions that found no
-- Redis (error_backend in X-SG); done() prints one line:
--   statuses 200=N 503=M ... backend_errors K max_ms X
-- usage: wrk -s wrk-decide.lua URL -- USERS
local users, i, threads = 10, 0, {}

function setup(thread)
    table.insert(threads, thread)
end

function init(args)
    users = tonumber(args[1]) or 10
    codes, backend = {}, 0
end

function request()
    i = i + 1
    return wrk.format("GET", nil, {["X-User"] = "wrk" .. (i % users)})
end

function response(status, headers, body)
    codes[status] = (codes[status] or 0) + 1
    local sg = headers["X-SG"] or ""
    if sg:find("error_backend", 1, true) then backend = backend + 1 end
end

function done(summary, latency, requests)
    local all, errs = {}, 0
    for _, t in ipairs(threads) do
        for k, v in pairs(t:get("codes")) do all[k] = (all[k] or 0) + v end
        errs = errs + t:get("backend")
    end
    local out = {}
    for k, v in pairs(all) do out[#out + 1] = k .. "=" .. v end
    io.write(string.format("statuses %s backend_errors %d max_ms %.1f\n",
        table.concat(out, " "), errs, latency.max / 1000))
end
