#!/bin/sh
# make bench: decisions per second through the shared core against a local
# Redis, beside redis-benchmark running the same script (the ceiling).
# Later sections (nginx, PAM) append their rows when their parts are built.
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
B=${SEATGATE_BUILD:-$ROOT/build}
SECS=${BENCH_SECONDS:-3}
ROUNDS=${BENCH_ROUNDS:-3}
TMP=$(mktemp -d)
PORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cleanup() { redis-cli -p "$PORT" shutdown nosave >/dev/null 2>&1 || true; rm -rf "$TMP"; }
trap cleanup EXIT INT TERM
redis-server --port "$PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$TMP" \
    --unixsocket "$TMP/redis.sock" --unixsocketperm 700 \
    --daemonize yes --logfile "$TMP/redis.log" --pidfile "$TMP/redis.pid"
for _ in 1 2 3 4 5 6 7 8 9 10; do redis-cli -p "$PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
URL=redis://127.0.0.1:$PORT
"$B/seatctl" --redis "$URL" pool set bench --floating 100 --idle-timeout 15m >/dev/null
# pool set (the admin) loaded this build's function library, which
# redis-benchmark's FCALL below calls, whatever bench_core was built from

median() { sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else printf "%.0f\n", (a[NR/2]+a[NR/2+1])/2}'; }

echo "seatgate bench: $(nproc) cores, redis $(redis-server --version | awk '{print $3}' | sed 's/v=//'), ${ROUNDS} rounds x ${SECS}s, medians"
echo
seqs=""; pips=""
for _ in $(seq "$ROUNDS"); do
    set -- $("$B/bench_core" "$URL" bench 50 "$SECS" 32)
    seqs="$seqs $1"; pips="$pips $2"
done
SEQ=$(echo $seqs | tr ' ' '\n' | median)
PIP=$(echo $pips | tr ' ' '\n' | median)

# redis-benchmark: the same decide function for one user (a renewal), FCALL
# (the library was loaded by seatctl pool set above), as libseatgate calls it
FN=$(sed -n 's/^    "\(sg_[0-9a-f]\{12\}_decide\)",$/\1/p' "$B/gen/scripts.c" | head -1)
K="sg:{bench}"
ARGS="FCALL $FN 10 $K:leases $K:sess $K:sessidx $K:sessinfo $K:gcount $K:hg $K:fold $K:lastused $K:stats $K:mux: op acquire pool bench user bench0 via bench host bench"
rb() { # $1 = pipeline depth
    vals=""
    for _ in $(seq "$ROUNDS"); do
        v=$(eval redis-benchmark -p "$PORT" -c 1 -P "$1" -n $((SECS * 8000 * $1 / ($1 > 1 ? 4 : 1))) --csv $ARGS 2>/dev/null |
            tail -1 | awk -F'"' '{print $4}')
        vals="$vals ${v%.*}"
    done
    echo $vals | tr ' ' '\n' | median
}
RB1=$(rb 1)
RB32=$(rb 32)
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
printf '%-44s %14s %10s\n' "core decisions (acquire, 50 users)" "decisions/s" "ratio"
printf '%-44s %14s %10s\n' "redis-benchmark FCALL decide, 1 conn" "$RB1" "1.00"
printf '%-44s %14s %10s\n' "libseatgate sg_decide, 1 conn" "$SEQ" "$(ratio "$SEQ" "$RB1")"
printf '%-44s %14s %10s\n' "redis-benchmark FCALL decide, -P 32" "$RB32" "1.00"
printf '%-44s %14s %10s\n' "libseatgate pipelined, depth 32" "$PIP" "$(ratio "$PIP" "$RB32")"

echo
/usr/bin/python3 "$ROOT/tests/bench/bench_model.py" --build "$B" || echo "model bench failed"
echo
/usr/bin/python3 "$ROOT/tests/bench/bench_usage.py" "$B" || echo "usage bench failed"
echo
/usr/bin/python3 "$ROOT/tests/bench/bench_sync.py" "$B" || echo "sync bench failed"
echo
/usr/bin/python3 "$ROOT/tests/bench/bench_scim.py" "$B" || echo "SCIM bench failed"

echo
# the same decisions at 100 and 100,000 holders in instructions (server time
# on a shared machine is too noisy for a 1.5x bound), with the Redis
# settings of conf/redis-seatgate.conf
if command -v valgrind >/dev/null && command -v callgrind_control >/dev/null; then
    CG_REDIS_ARGS="--hash-max-listpack-entries 16 --zset-max-listpack-entries 16" \
        SEATGATE_BUILD=$B /usr/bin/python3 "$ROOT/tests/bench/cg_decisions.py" --scale ||
        echo "callgrind scale bench failed"
else
    echo "callgrind scale bench: valgrind missing; skipped"
fi

for extra in "$ROOT"/tests/bench/run-*.sh; do
    [ -f "$extra" ] || continue
    echo
    REDIS_URL=$URL REDIS_PORT=$PORT REDIS_SOCK=$TMP/redis.sock SEATGATE_BUILD=$B sh "$extra"
done
