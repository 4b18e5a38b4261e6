#!/bin/sh
# make bench, PAM rows: logins through libpam (under pam_wrapper) and
# pam_seatgate.so against the local Redis of tests/bench/run.sh, beside
# pam_permit (the floor: libpam and the stack doing nothing) and the
# sysadmin's peer (pam_exec running redis-cli with the same scripts), in one
# run. One login is account + session open + session close (a check, a seat
# taken, the seat released: three decisions; account and open share one
# connection, open sends its host index entry with the decision and close
# its removal with the release). Sequential, one process: the latency one
# user sees. Rows over TCP and over the Unix socket (a local Redis).
# Targets (issue 11): p99 <= 2.5x the floor's p99, p50 <= 3x the floor's
# p50, logins/s >= 50x the peer's. Redis server time per login (INFO
# commandstats) is printed beside them: it bounds what any client can reach.
# Env from run.sh: REDIS_URL, REDIS_PORT, REDIS_SOCK, SEATGATE_BUILD (pool
# "bench", 100 floating seats).
set -eu
B=${SEATGATE_BUILD:?}
SECS=${BENCH_SECONDS:-3}
ROUNDS=${BENCH_ROUNDS:-3}
if [ ! -x "$B/bench_pam" ] || [ ! -f "$B/pam_seatgate.so" ]; then
    echo "pam_seatgate: $B/bench_pam or pam_seatgate.so not built; skipped"
    exit 0
fi
if ! /sbin/ldconfig -p 2>/dev/null | grep -q libpam_wrapper.so &&
    [ ! -e /usr/lib/x86_64-linux-gnu/libpam_wrapper.so ]; then
    echo "pam_seatgate: libpam_wrapper.so missing (make deps); skipped"
    exit 0
fi
DIR=$(mktemp -d)
trap 'rm -rf "$DIR"' EXIT INT TERM
mkdir "$DIR/pam.d"
# The bench users exist (nss_wrapper), as a user logging in through sshd
# does: without them every login would pay NSS's search for an unknown user
# (nss-systemd probing userdb directories), which no real login pays.
NSSW=
for d in /usr/lib/x86_64-linux-gnu /usr/lib64 /usr/lib; do
    [ -e "$d/libnss_wrapper.so" ] && NSSW="$d/libnss_wrapper.so" && break
done
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$DIR/passwd"
for i in $(seq 0 49); do printf 'bench%d:x:%d:2000::/tmp:/bin/sh\n' "$i" $((2000 + i)) >>"$DIR/passwd"; done
printf 'root:x:0:\nbench:x:2000:\n' >"$DIR/group"
: >"$DIR/pam.d/other"
: >"$DIR/empty.conf"
service() { # $1 name, $2 redis URL
    line="$B/pam_seatgate.so pool=bench redis=$2 timeout=1000 conf=$DIR/empty.conf"
    printf 'account required %s\nsession required %s\n' "$line" "$line" >"$DIR/pam.d/$1"
}
service bench "$REDIS_URL"
[ -n "${REDIS_SOCK:-}" ] && service benchunix "unix://$REDIS_SOCK"
# the functions the module calls (the library seatctl pool set loaded)
DECIDE=$(sed -n 's/^    "\(sg_[0-9a-f]\{12\}_decide\)",$/\1/p' "$B/gen/scripts.c")
RELEASE=$(sed -n 's/^    "\(sg_[0-9a-f]\{12\}_release\)",$/\1/p' "$B/gen/scripts.c")
PEER="$(cd "$(dirname "$0")" && pwd)/peer-pam-exec.sh"
PEER="$PEER $REDIS_URL bench $DECIDE $RELEASE"
printf 'account required pam_exec.so quiet %s\nsession required pam_exec.so quiet %s\n' \
    "$PEER" "$PEER" >"$DIR/pam.d/peer"
# The least a Redis-backed module can do for a login of this shape
# (tests/bench/pam_floor.c): one trivial script a phase, account and open on
# one connection, close on its own; "2 round trips" sends nothing at account
# (a seat taken at open and freed at close, the least a seat can cost).
FLOOR_MOD=
if [ -f "$B/pam_floor.so" ]; then
    FLOOR_MOD=$B/pam_floor.so
    SHA1=$(redis-cli -p "$REDIS_PORT" script load 'return 1')
    fl() { # $1 service, $2 where, $3 extra argument for account
        printf 'account required %s %s sha=%s %s\nsession required %s %s sha=%s\n' \
            "$FLOOR_MOD" "$2" "$SHA1" "$3" "$FLOOR_MOD" "$2" "$SHA1" >"$DIR/pam.d/$1"
    }
    fl floortcp "port=$REDIS_PORT" ""
    if [ -n "${REDIS_SOCK:-}" ]; then
        fl floorunix "sock=$REDIS_SOCK" ""
        fl floorunix2 "sock=$REDIS_SOCK" skip=account
        # the least each of the login's decisions can send (no logic; the
        # state in one HMGET): check 3 calls, open 7 (a grant, audited),
        # close 5 (a release, audited)
        L="sg:{least}"
        redis-cli -p "$REDIS_PORT" hset "$L:h" conf "$(printf 'ready\t0\t100')" u 00,a, n 0 >/dev/null
        HEAD="local t = redis.call('TIME') "
        LC=$(redis-cli -p "$REDIS_PORT" script load "$HEAD redis.call('HMGET', '$L:h', 'conf', 'u', 'n') redis.call('ZCOUNT', '$L:l', t[1], '+inf') return 1")
        LO=$(redis-cli -p "$REDIS_PORT" script load "$HEAD redis.call('HMGET', '$L:h', 'conf', 'u', 'n') redis.call('ZCOUNT', '$L:l', t[1], '+inf') redis.call('ZADD', '$L:s', t[1], 'u') redis.call('ZADD', '$L:l', t[1], 'u') redis.call('HSET', '$L:i', 'u', 'host=h pid=1') redis.call('XADD', '$L:a', 'MAXLEN', '~', '1000', '*', 'ev', 'grant', 'user', 'u') return 1")
        LR=$(redis-cli -p "$REDIS_PORT" script load "$HEAD redis.call('ZREM', '$L:s', 'u') redis.call('ZREM', '$L:l', 'u') redis.call('HDEL', '$L:i', 'u') redis.call('XADD', '$L:a', 'MAXLEN', '~', '1000', '*', 'ev', 'release', 'user', 'u') return 1")
        printf 'account required %s %s check=%s\nsession required %s %s open=%s close=%s\n' \
            "$FLOOR_MOD" "sock=$REDIS_SOCK" "$LC" "$FLOOR_MOD" "sock=$REDIS_SOCK" "$LO" "$LR" \
            >"$DIR/pam.d/leastunix"
    fi
fi

median() { sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else printf "%.3f\n", (a[NR/2]+a[NR/2+1])/2}'; }
# $1 = service; sets RATE LP50 LP99 AP50 AP99 (medians over the rounds)
measure() {
    svc=$1; secs=${2:-$SECS}; r=""; l50=""; l99=""; a50=""; a99=""
    for _ in $(seq "$ROUNDS"); do
        out=$(LD_PRELOAD="libpam_wrapper.so${NSSW:+ $NSSW}" PAM_WRAPPER=1 \
            PAM_WRAPPER_SERVICE_DIR="$DIR/pam.d" NSS_WRAPPER_PASSWD="$DIR/passwd" \
            NSS_WRAPPER_GROUP="$DIR/group" \
            "$B/bench_pam" "$svc" 50 "$secs") || { echo "bench_pam $svc failed" >&2; exit 1; }
        set -- $out
        r="$r $1"; l50="$l50 $2"; l99="$l99 $3"; a50="$a50 $4"; a99="$a99 $5"
    done
    RATE=$(echo $r | tr ' ' '\n' | median); RATE=${RATE%.*}
    LP50=$(echo $l50 | tr ' ' '\n' | median); LP99=$(echo $l99 | tr ' ' '\n' | median)
    AP50=$(echo $a50 | tr ' ' '\n' | median); AP99=$(echo $a99 | tr ' ' '\n' | median)
}
row() { printf '%-44s %14s %10s %10s\n' "$@"; }

# libpam itself (pam_wrapper, module load, the stack) with a module that does nothing
printf 'account required pam_permit.so\nsession required pam_permit.so\n' >"$DIR/pam.d/permit"
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
verdict() { awk -v a="$1" -v b="$2" -v k="$3" 'BEGIN { print (a <= k * b) ? "PASS" : "FAIL" }'; }
# Redis server time (us) of the commands a login sends, and the scripts run
usec() { redis-cli -p "$REDIS_PORT" info commandstats |
    awk -F'[=,]' '/^cmdstat_(fcall|evalsha|eval|hset|hdel):/ { s += $4 }
                  /^cmdstat_(fcall|evalsha|eval):/ { n += $2 } END { print s + 0, n + 0 }'; }

row "PAM logins (acct+open+close), 1 process" "logins/s" "p50 ms" "p99 ms"
measure permit
FR=$RATE; F50=$LP50; F99=$LP99
row "libpam + pam_permit.so (the floor)" "$RATE" "$LP50" "$LP99"
set -- $(usec); u0=$1; n0=$2
measure bench
set -- $(usec); u1=$1; n1=$2
T50=$LP50; T99=$LP99; TR=$RATE
row "libpam + pam_seatgate.so, TCP, 50 users" "$RATE" "$LP50" "$LP99"
row "  pam_acct_mgmt alone (one decision)" "-" "$AP50" "$AP99"
if [ -n "${REDIS_SOCK:-}" ]; then
    measure benchunix
    U50=$LP50; U99=$LP99; UR=$RATE
    row "libpam + pam_seatgate.so, Unix socket" "$RATE" "$LP50" "$LP99"
    row "  pam_acct_mgmt alone (one decision)" "-" "$AP50" "$AP99"
else
    U50=$T50; U99=$T99; UR=$TR
fi
if [ -n "$FLOOR_MOD" ]; then
    measure floortcp
    M3T50=$LP50; M3T99=$LP99
    row "least Redis module, 3 trivial calls, TCP" "$RATE" "$LP50" "$LP99"
    if [ -n "${REDIS_SOCK:-}" ]; then
        measure floorunix
        M3U50=$LP50; M3U99=$LP99
        row "least Redis module, 3 trivial calls, Unix" "$RATE" "$LP50" "$LP99"
        measure floorunix2
        M2U50=$LP50; M2U99=$LP99
        row "least Redis module, 2 trivial calls, Unix" "$RATE" "$LP50" "$LP99"
        measure leastunix
        MLU50=$LP50; MLU99=$LP99
        row "least module + least decisions, Unix" "$RATE" "$LP50" "$LP99"
    fi
fi
measure peer 1
PR=$RATE
row "libpam + pam_exec + redis-cli (the peer)" "$RATE" "$LP50" "$LP99"
echo
row "Redis server time per login (3 scripts)" "$(awk -v u=$((u1 - u0)) -v n=$((n1 - n0)) 'BEGIN { printf "%.0f us", 3 * u / n }')" "" ""
echo "  (Redis alone spends $(awk -v u=$((u1 - u0)) -v n=$((n1 - n0)) -v f="$F50" 'BEGIN { printf "%.1f", 3 * u / n / 1000 / f }')x the floor's p50 on each login)"
echo "  seatgate p50 / floor p50: TCP $(ratio "$T50" "$F50")x, Unix $(ratio "$U50" "$F50")x (target <= 3x: $(verdict "$U50" "$F50" 3))"
echo "  seatgate p99 / floor p99: TCP $(ratio "$T99" "$F99")x, Unix $(ratio "$U99" "$F99")x (target <= 2.5x: $(verdict "$U99" "$F99" 2.5))"
if [ -n "${M2U50:-}" ]; then
    echo "  least Redis module / floor, p50: TCP 3 calls $(ratio "$M3T50" "$F50")x, Unix 3 calls $(ratio "$M3U50" "$F50")x, Unix 2 calls $(ratio "$M2U50" "$F50")x"
    echo "  least Redis module / floor, p99: TCP 3 calls $(ratio "$M3T99" "$F99")x, Unix 3 calls $(ratio "$M3U99" "$F99")x, Unix 2 calls $(ratio "$M2U99" "$F99")x"
    echo "  (round trips and connections alone, with scripts that do nothing: what no design of this shape can beat here)"
    echo "  least module with the least decisions (check 3 calls, open 7, close 5) / floor: p50 $(ratio "$MLU50" "$F50")x (target <= 3x: $(verdict "$MLU50" "$F50" 3)), p99 $(ratio "$MLU99" "$F99")x (target <= 2.5x: $(verdict "$MLU99" "$F99" 2.5))"
fi
echo "  seatgate logins/s / peer: TCP $(ratio "$TR" "$PR")x, Unix $(ratio "$UR" "$PR")x (target >= 50x: $(awk -v a="$UR" -v b="$PR" 'BEGIN { print (a >= 50 * b) ? "PASS" : "FAIL" }'))"
