#!/bin/sh
# make bench, nginx rows: requests/s through one nginx worker, side by side in
# one run, with wrk on loopback (keepalive connections):
#   plain     auth_basic + a small static file, no seat check (the baseline)
#   cached    the same + `seatgate bench;` with a seatgate_zone: a user who
#             holds a seat is answered from the shared-memory cache
#   uncached  the same + `seatgate bench;` without a zone: every request asks
#             Redis (FCALL decide, pipelined on the worker's link)
#   lua       the same check in access_by_lua with resty.redis (keepalive
#             pool): FCALL of the same decide function with the same 10 KEYS
#             and named ARGV as the module's acquire (sg_decide_cmd), 403/503 unless
#             granted
# Every row uses the same identity (auth_basic, BENCH_NGINX_USERS users
# bench0.. taken in turn by tests/bench/wrk-users.lua, default 2,000) and the
# seat rows the pool "benchweb", whose floating seats serve all but
# BENCH_NGINX_DENIED percent of them (default 25): a realistic mix where a
# quarter of the requests are denied (503), as a busy portal sees. wrk asks
# for /index.html itself: "/" would be an internal redirect by the index
# module, after which every access and precontent check (auth_basic, the seat
# check, access_by_lua) runs a second time.
# Each nginx has worker_processes 1 and is pinned to CPU 1, wrk to CPU 0 (on
# 2+ cores). The rounds interleave the rows (in a turning order, every other
# round backwards) so that drift hits all of them alike; the table shows
# medians over the rounds, and each ratio is the median of the per-round
# ratios. Any non-2xx answer fails the run.
# Env from run.sh: REDIS_URL, REDIS_PORT, SEATGATE_BUILD (pool "bench").
# BENCH_SECONDS (default 3) and BENCH_ROUNDS (default 6) set the length
# (about 4 x ROUNDS x SECONDS + 10 s).
set -eu
B=${SEATGATE_BUILD:?}
PORT=${REDIS_PORT:?}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SECS=${BENCH_SECONDS:-3}
ROUNDS=${BENCH_ROUNDS:-6}
CONNS=${BENCH_CONNECTIONS:-32}
USERS=${BENCH_NGINX_USERS:-2000}
DENIED=${BENCH_NGINX_DENIED:-25}
SEATS=$((USERS * (100 - DENIED) / 100))
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
MODULE=${SEATGATE_NGX_MODULE:-$B/ngx_http_seatgate_module.so}
LUA_MODS="/usr/lib/nginx/modules/ndk_http_module.so /usr/lib/nginx/modules/ngx_http_lua_module.so"
WRK_SCRIPT=$ROOT/tests/bench/wrk-users.lua

for need in "$NGINX" wrk curl; do
    if ! command -v "$need" >/dev/null 2>&1; then
        echo "nginx: $need missing (make deps); skipped"
        exit 0
    fi
done
if [ ! -f "$MODULE" ]; then
    echo "nginx: $MODULE not built (make ngx-module); skipped"
    exit 0
fi
LUA=1
for f in $LUA_MODS; do [ -f "$f" ] || LUA=0; done
RESTY=
for f in /usr/share/lua/5.1/resty/redis.lua /usr/share/lua/5.1/nginx/redis.lua; do
    if [ -f "$f" ]; then
        RESTY=$(echo "$f" | sed 's|^/usr/share/lua/5.1/||; s|\.lua$||; s|/|.|g')
        break
    fi
done
[ -n "$RESTY" ] || LUA=0
ROWS="plain cached uncached"
[ "$LUA" = 1 ] && ROWS="$ROWS lua"

# the SHA1 the module sends (decide is the first script of build/gen/scripts.c)
if [ ! -f "$B/gen/scripts.c" ]; then
    echo "nginx: $B/gen/scripts.c missing (make); skipped"
    exit 0
fi
SHA=$(sed -n 's/^    "\([0-9a-f]\{40\}\)",$/\1/p' "$B/gen/scripts.c" | head -1)
# the function the module calls (the library is loaded by seatctl pool set)
FN=$(sed -n 's/^    "\(sg_[0-9a-f]\{12\}_decide\)",$/\1/p' "$B/gen/scripts.c" | head -1)
# the decide script as embedded: the shared library, then decide.lua
DECIDE=$(mktemp)
cat "$ROOT/common/lua/lib.lua" "$ROOT/common/lua/decide.lua" >"$DECIDE"
if [ "$(sha1sum "$DECIDE" | cut -d' ' -f1)" != "$SHA" ]; then
    echo "nginx: $DECIDE does not match $B/gen/scripts.c (rebuild); aborted" >&2
    exit 1
fi

if [ "$(nproc)" -ge 2 ]; then
    PIN_NGINX="taskset -c 1"
    PIN_WRK="taskset -c 0"
    PINNED="nginx on CPU 1, wrk on CPU 0"
else
    PIN_NGINX=
    PIN_WRK=
    PINNED="not pinned (1 CPU)"
fi

DIR=$(mktemp -d)
chmod 755 "$DIR"
# a zombie (a daemonized master not yet reaped by init) counts as gone
alive() {
    st=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
    case $st in Z*) return 1 ;; esac
}
stop_all() {
    pids=""
    for pidf in "$DIR"/*/nginx.pid; do
        [ -f "$pidf" ] || continue
        pid=$(cat "$pidf" 2>/dev/null) || continue
        kill -QUIT "$pid" 2>/dev/null && pids="$pids $pid"
    done
    for pid in $pids; do
        n=0
        while alive "$pid" && [ $n -lt 50 ]; do sleep 0.1; n=$((n + 1)); done
        if alive "$pid"; then
            pkill -KILL -P "$pid" 2>/dev/null || true
            kill -KILL "$pid" 2>/dev/null || true
        fi
    done
}
cleanup() { stop_all; rm -rf "$DIR" "$DECIDE"; }
trap cleanup EXIT
trap 'exit 130' INT TERM HUP PIPE

free_port() {
    /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# the protected content, the users (bench<i>:pw<i>)
mkdir "$DIR/html" "$DIR/lua"
echo "protected content" >"$DIR/html/index.html"
i=0
while [ $i -lt $USERS ]; do
    echo "bench$i:{PLAIN}pw$i"
    i=$((i + 1))
done >"$DIR/htpasswd"

# the Lua peer: the module's acquire, argument for argument (common/core.c
# sg_decide_cmd: the ten keys of sg_decide_keys and mux with an empty service
# account, then the named arguments that are set; the reply is read by name)
cat >"$DIR/lua/sgbench.lua" <<EOF
local redis = require "$RESTY"
redis.add_commands("fcall")
local M = {}
local SHA = "$SHA"
local FN = "$FN"
local POOL = "benchweb"
local HOST = "$(hostname 2>/dev/null || uname -n)"
local K = "sg:{" .. POOL .. "}:"
local f = assert(io.open("$DECIDE"))
local BODY = f:read("*a")
f:close()

local function call(red, cmd, script, user, client)
    return red[cmd](red, script, 10,
        K .. "leases", K .. "sess", K .. "sessidx", K .. "sessinfo", K .. "gcount",
        K .. "hg", K .. "fold", K .. "lastused", K .. "stats", K .. "mux:",
        "op", "acquire", "pool", POOL, "user", user, "via", "nginx", "host", HOST,
        "client", client)
end

function M.check()
    local user = ngx.var.remote_user
    if not user or user == "" then
        return ngx.exit(403)
    end
    local red = redis:new()
    red:set_timeout(1000)
    local ok, err = red:connect("127.0.0.1", $PORT)
    if not ok then
        ngx.log(ngx.ERR, "redis: ", err)
        return ngx.exit(503)
    end
    local client = ngx.var.remote_addr
    local res
    res, err = call(red, "fcall", FN, user, client)
    if not res and err and err:find("Function not found", 1, true) then
        res, err = call(red, "evalsha", SHA, user, client)
    end
    if not res and err and err:find("NOSCRIPT", 1, true) then
        res, err = call(red, "eval", BODY, user, client)
    end
    if not res then
        ngx.log(ngx.ERR, "redis: ", err)
        red:close()
        return ngx.exit(503)
    end
    red:set_keepalive(60000, 64)
    local r = {}
    for i = 1, #res - 1, 2 do r[res[i]] = res[i + 1] end
    local result = r.result
    if type(result) == "string" and result:sub(1, 8) == "granted_" then
        return
    end
    ngx.header["X-Seatgate-Reason"] = r.reason
    return ngx.exit(result == "denied_exhausted" and 503 or 403)
end

return M
EOF

# $1 = row: writes $DIR/$1/nginx.conf, starts it pinned, sets PORT_<row>
start_nginx() {
    row=$1
    d=$DIR/$row
    mkdir -p "$d/logs"
    p=$(free_port)
    eval "PORT_$row=$p"
    loads=""; http=""; loc=""; extra=""
    case $row in
    cached)
        loads="load_module $MODULE;"
        http="seatgate_redis $REDIS_URL timeout=1s; seatgate_zone sgbench:4m ttl=30s;"
        loc="seatgate benchweb;"
        extra="location = /metrics { auth_basic off; seatgate_metrics; }"
        ;;
    uncached)
        loads="load_module $MODULE;"
        http="seatgate_redis $REDIS_URL timeout=1s;"
        loc="seatgate benchweb;"
        extra="location = /metrics { auth_basic off; seatgate_metrics; }"
        ;;
    lua)
        for m in $LUA_MODS; do loads="$loads load_module $m;"; done
        http="lua_package_path \"$DIR/lua/?.lua;/usr/share/lua/5.1/?.lua;;\";"
        loc="access_by_lua_block { require(\"sgbench\").check() }"
        ;;
    esac
    user=""
    [ "$(id -u)" = 0 ] && user="user root;"
    cat >"$d/nginx.conf" <<EOF
$loads
$user
worker_processes 1;
pid $d/nginx.pid;
error_log $d/logs/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    keepalive_requests 1000000;
    keepalive_timeout 60s;
    default_type text/plain;
    client_body_temp_path $d/client_body;
    proxy_temp_path $d/proxy;
    fastcgi_temp_path $d/fastcgi;
    uwsgi_temp_path $d/uwsgi;
    scgi_temp_path $d/scgi;
    $http
    server {
        listen 127.0.0.1:$p;
        root $DIR/html;
        auth_basic bench;
        auth_basic_user_file $DIR/htpasswd;
        location / {
            $loc
        }
        $extra
    }
}
EOF
    if ! $PIN_NGINX "$NGINX" -p "$d" -c "$d/nginx.conf" -e "$d/logs/error.log" 2>"$d/logs/start.log"; then
        echo "nginx ($row) did not start:" >&2
        cat "$d/logs/start.log" "$d/logs/error.log" >&2 2>/dev/null || true
        exit 1
    fi
    n=0
    until curl -s -o /dev/null "http://127.0.0.1:$p/"; do
        n=$((n + 1))
        if [ $n -ge 100 ]; then
            echo "nginx ($row) does not answer on port $p:" >&2
            cat "$d/logs/error.log" >&2 2>/dev/null || true
            exit 1
        fi
        sleep 0.05
    done
    # the worker, for its CPU time (/proc/PID/schedstat: ns on a CPU)
    w=$(pgrep -P "$(cat "$d/nginx.pid")" | head -1)
    eval "WORKER_$row=$w"
    # one request: granted, with a body
    code=$(curl -s -o "$d/probe" -w '%{http_code}' -u bench0:pw0 "http://127.0.0.1:$p/index.html")
    if [ "$code" != 200 ] || ! grep -q "protected content" "$d/probe"; then
        echo "nginx ($row): probe answered $code:" >&2
        cat "$d/probe" "$d/logs/error.log" >&2 2>/dev/null || true
        exit 1
    fi
}

# Redis server time of the scripts so far, microseconds
redis_us() {
    redis-cli -p "$PORT" info commandstats | tr -d '\r' | awk -F'[=,:]' '
        /^cmdstat_(fcall|evalsha|eval):/ { for (i = 2; i < NF; i += 2) if ($i == "usec") u += $(i + 1) }
        END { printf "%d\n", u }'
}

# $1 = row, $2 = seconds: one wrk run; sets RPS P50 P99 (ms) DENIED_SHARE
# RUS (Redis us per request); fails on errors
run_wrk() {
    eval "p=\$PORT_$1 w=\$WORKER_$1"
    cpu0=$(cut -d' ' -f1 "/proc/$w/schedstat" 2>/dev/null || echo 0)
    rus0=$(redis_us)
    out=$($PIN_WRK wrk -t1 -c"$CONNS" -d"$2"s --latency -s "$WRK_SCRIPT" \
        "http://127.0.0.1:$p/index.html" -- "$USERS" 2>&1) || {
        echo "wrk ($1) failed:" >&2
        echo "$out" >&2
        exit 1
    }
    bad=$(echo "$out" | sed -n 's/.*Non-2xx or 3xx responses: *\([0-9]*\).*/\1/p')
    [ -n "$bad" ] || bad=0
    # plain nginx answers everyone; a seat row denies about DENIED percent
    if [ "$1" = plain ] && [ "$bad" != 0 ]; then
        echo "FAIL: nginx ($1): $bad of the answers were not 2xx; wrk said:" >&2
        echo "$out" >&2
        tail -20 "$DIR/$1/logs/error.log" >&2 2>/dev/null || true
        exit 1
    fi
    if echo "$out" | grep -q "Socket errors"; then
        echo "warning: nginx ($1): $(echo "$out" | grep 'Socket errors')" >&2
    fi
    RPS=$(echo "$out" | awk '/^Requests\/sec:/ {printf "%.0f", $2}')
    REQS=$(echo "$out" | awk '$2 == "requests" && $3 == "in" {print $1}')
    DENIED_SHARE=$(awk -v b="$bad" -v n="$REQS" 'BEGIN { printf "%.3f", (n > 0) ? b / n : 0 }')
    RUS=$(awk -v a="$rus0" -v b="$(redis_us)" -v n="$REQS" 'BEGIN { printf "%.2f", (n > 0) ? (b - a) / n : 0 }')
    cpu1=$(cut -d' ' -f1 "/proc/$w/schedstat" 2>/dev/null || echo 0)
    CPU=$(awk -v a="$cpu0" -v b="$cpu1" -v n="$REQS" 'BEGIN { printf "%.2f", (n > 0) ? (b - a) / 1000 / n : 0 }')
    P50=$(echo "$out" | awk '$1 == "50%" {print $2}' | to_ms)
    P99=$(echo "$out" | awk '$1 == "99%" {print $2}' | to_ms)
    if [ -z "$RPS" ] || [ "$RPS" = 0 ]; then
        echo "FAIL: nginx ($1): no requests/s in wrk's output:" >&2
        echo "$out" >&2
        exit 1
    fi
}
to_ms() {
    awk '{ v = $1; u = v; sub(/^[0-9.]+/, "", u); v += 0;
           if (u == "us") v /= 1000; else if (u == "s") v *= 1000; else if (u == "m") v *= 60000;
           printf "%.3f\n", v }'
}
median() { sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else printf "%.3f\n", (a[NR/2]+a[NR/2+1])/2}'; }

# metrics of a module instance: "hits misses commands"
metrics() {
    eval "p=\$PORT_$1"
    curl -s "http://127.0.0.1:$p/metrics" | awk '
        /^seatgate_cache_hits_total / {h=$2} /^seatgate_cache_misses_total / {m=$2}
        /^seatgate_redis_commands_total / {c=$2} END {printf "%d %d %d\n", h, m, c}'
}

# the seat rows' pool: all but DENIED percent of the users get a seat
"$B/seatctl" --redis "${REDIS_URL:?}" pool set benchweb --floating "$SEATS" --idle-timeout 15m \
    >/dev/null

for row in $ROWS; do start_nginx "$row"; done

# warm up: every user takes (renews) its seat, caches and keepalive pools fill
for row in $ROWS; do run_wrk "$row" 1; done
set -- $(metrics cached); C0_HITS=$1; C0_MISS=$2
set -- $(metrics uncached); U0_CMDS=$3

for row in $ROWS; do : >"$DIR/res.$row"; done
NROWS=$(echo $ROWS | wc -w)
r=0
while [ $r -lt "$ROUNDS" ]; do
    # the order turns by one every two rounds, and every other round runs it
    # backwards (A B C D, D C B A, B C D A, A D C B, ...): a drift during the
    # run favours a row in one round and its neighbour in the next
    order=$(echo $ROWS $ROWS | awk -v k=$((r / 2 % NROWS)) -v n=$NROWS -v back=$((r % 2)) \
        '{ for (i = 1; i <= n; i++) printf "%s ", back ? $(n + 1 - i + k) : $(i + k) }')
    for row in $order; do
        run_wrk "$row" "$SECS"
        echo "$RPS $P50 $P99 $REQS $CPU $DENIED_SHARE $RUS" >>"$DIR/res.$row"
    done
    r=$((r + 1))
done

set -- $(metrics cached); C_HITS=$(($1 - C0_HITS)); C_MISS=$(($2 - C0_MISS))
set -- $(metrics uncached); U_CMDS=$(($3 - U0_CMDS))

# $1 $2 = rows: the median over the rounds of row1/row2 (each pair measured
# in the same round, so that drift between rounds cancels out)
pratio() {
    paste -d' ' "$DIR/res.$1" "$DIR/res.$2" | awk '{ printf "%.4f\n", $1 / $(NF / 2 + 1) }' | median
}
row_fmt() { printf '%-44s %11s %8s %8s %7s %9s %7s %9s\n' "$@"; }
echo "nginx: worker_processes 1, wrk -t1 -c$CONNS keepalive, $PINNED;"
echo "auth_basic, $USERS users, $SEATS floating seats ($DENIED % of the users denied);"
echo "$ROUNDS rounds x ${SECS}s, rows interleaved; medians, ratio = median of the per-round"
echo "ratios to plain nginx; worker us = CPU time of the nginx worker per request; redis us ="
echo "Redis server time of the decision scripts per request (INFO commandstats)"
row_fmt "nginx (one worker)" "requests/s" "p50 ms" "p99 ms" "ratio" "worker us" "denied" "redis us"
for row in $ROWS; do
    RPS=$(cut -d' ' -f1 "$DIR/res.$row" | median); RPS=${RPS%.*}
    P50=$(cut -d' ' -f2 "$DIR/res.$row" | median)
    P99=$(cut -d' ' -f3 "$DIR/res.$row" | median)
    WUS=$(cut -d' ' -f5 "$DIR/res.$row" | median | awk '{ printf "%.1f", $1 }')
    DSH=$(cut -d' ' -f6 "$DIR/res.$row" | median | awk '{ printf "%.0f%%", $1 * 100 }')
    RUSM=$(cut -d' ' -f7 "$DIR/res.$row" | median | awk '{ printf "%.1f", $1 }')
    ratio=$(pratio "$row" plain | awk '{ printf "%.3f", $1 }')
    case $row in
    plain) label="plain nginx (auth_basic, static file)" ;;
    cached) label="seatgate, cached (seatgate_zone)" ;;
    uncached) label="seatgate, uncached (Redis every request)" ;;
    lua) label="nginx + Lua (resty.redis FCALL decide)" ;;
    esac
    row_fmt "$label" "$RPS" "$P50" "$P99" "$ratio" "$WUS" "$DSH" "$RUSM"
done
U_REQS=$(awk '{n += $4} END {print n}' "$DIR/res.uncached")
echo "  check: cached row $C_HITS zone hits, $C_MISS misses;" \
    "uncached row $(awk -v c="$U_CMDS" -v n="$U_REQS" 'BEGIN { printf "%.2f", c / n }') Redis commands per request"

verdict() { awk -v v="$1" -v t="$2" 'BEGIN { print ((v '"$3"' t) ? "PASS" : "FAIL") }'; }
R=$(pratio cached plain)
printf '%-60s %s\n' "target: cached / plain >= 0.90 ($(printf '%.3f' "$R"))" "$(verdict "$R" 0.90 '>=')"
if [ "$LUA" = 1 ]; then
    R=$(pratio uncached lua)
    printf '%-60s %s\n' "target: uncached >= 1.5x lua ($(printf '%.2f' "$R")x)" "$(verdict "$R" 1.5 '>=')"
else
    echo "target: uncached > lua: not measured (libnginx-mod-http-lua or lua-nginx-redis missing)"
fi
