#!/bin/sh
# make bench, PAM row: logins through libpam (under pam_wrapper) and
# pam_seatgate.so against the local Redis of tests/bench/run.sh. One login is
# account + session open + session close (a check, a seat taken, the seat
# released: three decisions, each on its own bounded connection, as in a
# real login). Sequential, one process: the latency one user sees.
# Env from run.sh: REDIS_URL, SEATGATE_BUILD (pool "bench", 100 floating seats).
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
: >"$DIR/pam.d/other"
LINE="$B/pam_seatgate.so pool=bench redis=$REDIS_URL timeout=1000 conf=$DIR/empty.conf"
: >"$DIR/empty.conf"
printf 'account required %s\nsession required %s\n' "$LINE" "$LINE" >"$DIR/pam.d/bench"

median() { sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else printf "%.3f\n", (a[NR/2]+a[NR/2+1])/2}'; }
# $1 = service; sets RATE LP50 LP99 AP50 AP99 (medians over the rounds)
measure() {
    svc=$1; r=""; l50=""; l99=""; a50=""; a99=""
    for _ in $(seq "$ROUNDS"); do
        out=$(LD_PRELOAD=libpam_wrapper.so PAM_WRAPPER=1 PAM_WRAPPER_SERVICE_DIR="$DIR/pam.d" \
            "$B/bench_pam" "$svc" 50 "$SECS") || { echo "bench_pam $svc failed" >&2; exit 1; }
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
row "PAM logins (acct+open+close), 1 process" "logins/s" "p50 ms" "p99 ms"
measure permit
row "libpam + pam_permit.so (baseline)" "$RATE" "$LP50" "$LP99"
measure bench
row "libpam + pam_seatgate.so, 50 users" "$RATE" "$LP50" "$LP99"
row "  decisions/s (3 per login: check,take,release)" "$((RATE * 3))" "" ""
row "  pam_acct_mgmt alone (one decision)" "-" "$AP50" "$AP99"
