#!/bin/sh
# make deb-check (root): install the three packages of make deb into this
# machine, check them as an operator would, then purge them.
#   1. dpkg -i; the module is enabled through its snippet, nginx -t passes
#      (the system config, and one using the module's directives)
#   2. a pamtester transaction through the installed pam_seatgate.so and a
#      service in /etc/pam.d, against a throw-away Redis, seats checked with
#      the installed seatctl
#   3. systemd-analyze verify of the reap timer and service
#   4. make demo's walk-through against the installed binaries
#   5. apt-get purge: nothing of the packages is left
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
DEB=${1:-$ROOT/build/deb}
[ "$(id -u)" = 0 ] || { echo "deb-check: run as root (it installs packages)"; exit 1; }
MULTIARCH=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
PKGS="libnginx-mod-http-seatgate libpam-seatgate seatgate-tools"
TMP=$(mktemp -d)
SERVICE=/etc/pam.d/seatgate-deb-check
PORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cleanup() {
    rm -f "$SERVICE"
    redis-cli -p "$PORT" shutdown nosave >/dev/null 2>&1 || true
    DEBIAN_FRONTEND=noninteractive apt-get purge -y -q $PKGS >/dev/null 2>&1 || true
    rm -rf "$TMP"
}
trap cleanup EXIT INT TERM
ok() { echo "deb-check: ok: $*"; }
fail() { echo "deb-check: FAIL: $*"; exit 1; }

# 1. install
for p in $PKGS; do
    set -- "$DEB/${p}"_*.deb
    [ -f "$1" ] || fail "no $p package in $DEB (make deb)"
done
dpkg -i "$DEB"/libnginx-mod-http-seatgate_*.deb "$DEB"/libpam-seatgate_*.deb \
    "$DEB"/seatgate-tools_*.deb
for p in $PKGS; do
    [ "$(dpkg-query -W -f='${Status}' "$p")" = "install ok installed" ] || fail "$p not installed"
done
ok "dpkg -i $PKGS"
[ -f /usr/share/nginx/modules-available/mod-http-seatgate.conf ] || fail "no module snippet"
[ -L /etc/nginx/modules-enabled/50-mod-http-seatgate.conf ] || fail "the module is not enabled"
[ "$(stat -c %a:%U /etc/security/seatgate.conf)" = "600:root" ] || fail "seatgate.conf not 0600 root"
[ -f "/lib/$MULTIARCH/security/pam_seatgate.so" ] || fail "pam_seatgate.so not in /lib/$MULTIARCH/security"
nginx -t 2>"$TMP/t.log" || { cat "$TMP/t.log"; fail "nginx -t with the module enabled"; }
ok "nginx -t: the system config, the module loaded through modules-enabled"
cat >"$TMP/nginx.conf" <<CONF
include /etc/nginx/modules-enabled/50-mod-http-seatgate.conf;
events {}
http {
    seatgate_redis redis://127.0.0.1:$PORT timeout=300ms;
    seatgate_zone sg:1m;
    server { listen 127.0.0.1:1; seatgate technicians; location / { return 204; } }
}
CONF
nginx -t -c "$TMP/nginx.conf" -e stderr 2>"$TMP/t.log" ||
    { cat "$TMP/t.log"; fail "nginx -t with seatgate directives"; }
ok "nginx -t: a config with seatgate_redis, seatgate_zone, seatgate"

# 2. PAM through /etc/pam.d
redis-server --port "$PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$TMP" \
    --daemonize yes --logfile "$TMP/redis.log"
for _ in 1 2 3 4 5 6 7 8 9 10; do redis-cli -p "$PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
URL=redis://127.0.0.1:$PORT
seatctl --redis "$URL" pool set techs --floating 1 >/dev/null
printf 'account required pam_seatgate.so pool=techs redis=%s conf=/dev/null\nsession required pam_seatgate.so pool=techs redis=%s conf=/dev/null\n' \
    "$URL" "$URL" >"$SERVICE"
pamtester -v seatgate-deb-check deb-check-alice acct_mgmt open_session >"$TMP/p.log" 2>&1 ||
    { cat "$TMP/p.log"; fail "pamtester: alice's login"; }
seatctl --redis "$URL" --json pool show techs | grep -q '"in_use":1' || fail "alice holds no seat"
if pamtester -v seatgate-deb-check deb-check-bob acct_mgmt >"$TMP/p2.log" 2>&1; then
    fail "bob was let in with every seat taken"
fi
grep -q "floating seat" "$TMP/p2.log" || { cat "$TMP/p2.log"; fail "bob was not told why"; }
ok "pamtester: alice gets the floating seat, bob is refused and told why"

# 3. the reap timer
systemd-analyze verify /lib/systemd/system/seatgate-reap.timer \
    /lib/systemd/system/seatgate-reap.service || fail "systemd-analyze verify"
ok "systemd-analyze verify seatgate-reap.timer seatgate-reap.service"

# 4. the demo against the installed binaries
mkdir "$TMP/installed"
ln -s /usr/bin/seatctl "$TMP/installed/seatctl"
ln -s /usr/lib/nginx/modules/ngx_http_seatgate_module.so "$TMP/installed/"
ln -s "/lib/$MULTIARCH/security/pam_seatgate.so" "$TMP/installed/"
SEATGATE_BUILD="$TMP/installed" sh "$ROOT/tests/demo.sh" >"$TMP/demo.log" 2>&1 ||
    { tail -40 "$TMP/demo.log"; fail "the demo against the installed binaries"; }
ok "make demo's walk-through against /usr/bin/seatctl and the installed modules"

# 5. purge
rm -f "$SERVICE"
DEBIAN_FRONTEND=noninteractive apt-get purge -y -q $PKGS >/dev/null
for f in /etc/security/seatgate.conf /etc/nginx/modules-enabled/50-mod-http-seatgate.conf \
    /usr/bin/seatctl "/lib/$MULTIARCH/security/pam_seatgate.so" \
    /usr/share/pam-configs/seatgate; do
    [ ! -e "$f" ] && [ ! -L "$f" ] || fail "$f is left after purge"
done
nginx -t 2>/dev/null || fail "nginx -t after purge"
ok "apt-get purge: nothing left, nginx -t still passes"
