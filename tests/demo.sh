#!/bin/sh
# make demo: a walk-through of seatgate on loopback ports. Starts its own Redis
# (and, in tests/demo.d/, nginx and PAM parts), shows grants and denials, and
# stops everything it started.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
B=${SEATGATE_BUILD:-$ROOT/build}
export DEMO_TMP=$(mktemp -d /tmp/seatgate-demo.XXXXXX)
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PORT=$(free_port)
export REDIS_PORT=$PORT REDIS_URL=redis://127.0.0.1:$PORT SEATGATE_BUILD=$B
cleanup() {
    for f in "$DEMO_TMP"/*.stop; do [ -f "$f" ] && sh "$f" >/dev/null 2>&1 || true; done
    redis-cli -p "$PORT" shutdown nosave >/dev/null 2>&1 || true
    rm -rf "$DEMO_TMP"
}
trap cleanup EXIT INT TERM
# the listpack limits of conf/redis-seatgate.conf (no persistence: a demo)
redis-server --port "$PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$DEMO_TMP" \
    --hash-max-listpack-entries 16 --zset-max-listpack-entries 16 \
    --daemonize yes --logfile "$DEMO_TMP/redis.log" --pidfile "$DEMO_TMP/redis.pid"
for _ in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
    redis-cli -p "$PORT" ping >/dev/null 2>&1 && break; sleep 0.1
done

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { # show the command, run it, show the exit code
    printf '$ seatctl %s\n' "$*"
    set +e; "$B/seatctl" --redis "$REDIS_URL" "$@"; rc=$?; set -e
    printf '  -> exit %s\n' "$rc"
}

say "Redis on 127.0.0.1:$PORT. A pool 'technicians': 2 named + 2 floating seats, module cmdb"
run pool set technicians --named 2 --floating 2 --idle-timeout 15m --features cmdb \
    --exclude contractors --reserve nightshift=1
run user set alice --groups agents
run user set bob --groups agents
run user set carol --groups agents
run user set dave --groups agents
run user set nina --groups agents,nightshift
run user set eve --groups contractors
run user set hub --service-account
run assign technicians alice bob

say "Named: alice holds a named seat"
run acquire technicians alice
say "Floating: carol takes a floating seat (1 of 2; the other is reserved for nightshift)"
run acquire technicians carol
say "Reserved: dave is not in nightshift, so the last seat stays free for it"
run acquire technicians dave
say "Reserved: nina is in nightshift and gets it"
run acquire technicians nina
say "Exhausted: every floating seat is in use"
run acquire technicians dave
say "Named users are never 'maxed out', even now"
run acquire technicians bob
say "Feature: the pool carries cmdb, not change-advanced"
run check technicians alice --feature cmdb
run check technicians alice --feature change-advanced
say "Excluded: contractors never may use the pool"
run check technicians eve
say "Service account: the hub acts on behalf of alice (both ids audited)"
run acquire technicians hub --on-behalf-of alice
run acquire technicians hub
say "Release: carol logs out, dave can get in"
run release technicians carol
run acquire technicians dave
say "Who holds what"
run status technicians
say "Assigning more users than the named seats bought is refused"
run assign technicians frank

for part in "$ROOT"/tests/demo.d/*.sh; do
    [ -f "$part" ] || continue
    . "$part"
done
say "Done; stopping what the demo started."
