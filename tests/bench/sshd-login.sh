#!/bin/bash
# sshd-login.sh: what pam_seatgate.so costs a real OpenSSH login.
#
# Runs two private sshd (the Debian /usr/sbin/sshd, each on its own loopback
# port, with its own sshd_config and host key in a temp dir) that differ
# only in their PAM service: "sshd-sgoff" is a copy of Debian's
# /etc/pam.d/sshd, "sshd-sgon" is the same copy plus
#   account required pam_seatgate.so ...   (after @include common-account)
#   session required pam_seatgate.so ...   (after @include common-session)
# against a private Redis (pool "technicians", 100 floating seats). sshd
# takes its PAM service name from the name it is run as (__progname), so
# each sshd is started through a symlink of that name.
#
# It first checks that the "on" sshd really goes through the module (the
# audit log shows a grant via pam for the test user; with --floating 0 the
# "on" login is refused while the "off" one still works), then times LOGINS
# public-key logins `ssh user@127.0.0.1 true` to each, interleaved
# off, on, off, on, ... after WARMUP discarded pairs, each login alone (the
# next one starts when sshd's per-connection process of the previous one
# has exited). Printed: median, p90, p99 of
#   - client: the login as the user sees it (ssh started .. ssh exited);
#     the session close hook runs in sshd after the client has gone;
#   - server: ssh started .. sshd's per-connection process exited (so it
#     includes pam_close_session and the seat release);
# the differences (on - off) in ms and the ratios, a bootstrap 95% interval
# of the added p50 and p90, PASS/FAIL for the target "the module adds < 5 ms
# per login (median, client)" (PASS needs the interval below 5 ms too), and
# the Redis server time per "on" login (INFO commandstats: evalsha/eval/
# hset/hdel usec). The samples are in $TMP/samples.csv while it runs.
#
# Run (as root; needs openssh-server, openssh-client, redis-server,
# redis-tools and python3; `apt-get install -y openssh-server
# openssh-client`; the system ssh service is neither needed nor touched):
#   cp -a build /tmp/sshbench-build        # never benchmark a build in flux
#   SEATGATE_BUILD=/tmp/sshbench-build LOGINS=200 tests/bench/sshd-login.sh
# Env: SEATGATE_BUILD (default /tmp/sshbench-build, else ./build),
# LOGINS (200 per sshd), WARMUP (10 pairs), SG_USER (sgbench).
#
# It creates, and removes at exit (also on failure or ^C): a temp dir with
# the Redis, sshd configs, keys and logs; /etc/pam.d/sshd-sgoff and
# /etc/pam.d/sshd-sgon; the user SG_USER (only if it did not exist; if it
# did, its authorized_keys is restored); /run/sshd (sshd's privilege
# separation dir, only if missing); and, if the host has no syslog socket,
# a catcher on /dev/log so that the module's syslog lines can be read
# (they are printed at the end: warnings and errors quoted). Everything
# listens on 127.0.0.1 on free ports.
#
# The PAM stacks are Debian's sshd stack unchanged in both (pam_systemd,
# pam_loginuid, pam_motd, pam_limits... as installed): whatever they cost or
# fail at on this host, they do in both alike.
# SSH_OPTS adds client options to every login of both, e.g.
#   SSH_OPTS="-o KexAlgorithms=curve25519-sha256"
# (OpenSSH 9's default sntrup761 key exchange costs ~100 ms of client CPU on
# a slow core, which widens the spread but is the same on both sides).
set -eu

if [ "$(id -u)" != 0 ]; then echo "sshd-login.sh: needs root" >&2; exit 2; fi
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
B=${SEATGATE_BUILD:-/tmp/sshbench-build}
[ -d "$B" ] || B=$ROOT/build
LOGINS=${LOGINS:-200}
WARMUP=${WARMUP:-10}
SGUSER=${SG_USER:-sgbench}
SSH_OPTS=${SSH_OPTS:-}
SSHD=/usr/sbin/sshd
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
for f in "$SSHD" "$(command -v ssh || true)" "$(command -v ssh-keygen || true)" \
    "$(command -v redis-server || true)" "$(command -v redis-cli || true)"; do
    if [ -z "$f" ] || [ ! -x "$f" ]; then
        echo "sshd-login.sh: missing ${f:-a tool}: apt-get install -y openssh-server openssh-client redis-server redis-tools" >&2
        exit 2
    fi
done
for f in "$B/pam_seatgate.so" "$B/seatctl"; do
    [ -f "$f" ] || { echo "sshd-login.sh: $f not built" >&2; exit 2; }
done
case "$B" in /*) ;; *) B=$(cd "$B" && pwd) ;; esac

TMP=$(mktemp -d /tmp/sshbench.XXXXXX)
REDIS_PORT="" SSHD_OFF_PID="" SSHD_ON_PID="" SYSLOG_PID=""
MADE_USER=0 MADE_RUNSSHD=0 MADE_DEVLOG=0 AK_SAVED=0 HOME_DIR=""
PAMFILES=""
cleanup() {
    rc=$?
    set +e
    if [ "$rc" != 0 ] && [ -d "$TMP" ]; then # what went wrong, before it goes
        for f in "$TMP/sshd-on.log" "$TMP/sshd-off.log" "$TMP/syslog.log"; do
            [ -s "$f" ] && { echo "--- tail of $f"; tail -15 "$f"; }
        done >&2
    fi
    for p in $SSHD_OFF_PID $SSHD_ON_PID; do kill "$p" 2>/dev/null; done
    for p in $SSHD_OFF_PID $SSHD_ON_PID; do wait "$p" 2>/dev/null; done
    [ -n "$REDIS_PORT" ] && redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1
    for f in $PAMFILES; do rm -f "$f"; done
    if [ "$MADE_USER" = 1 ]; then
        # per-connection sshd may still be closing its session
        for _ in $(seq 50); do pgrep -u "$SGUSER" >/dev/null 2>&1 || break; sleep 0.1; done
        userdel -r "$SGUSER" 2>/dev/null
    elif [ "$AK_SAVED" = 1 ]; then
        cp -p "$TMP/authorized_keys.orig" "$HOME_DIR/.ssh/authorized_keys"
    elif [ "$AK_SAVED" = 2 ]; then
        rm -f "$HOME_DIR/.ssh/authorized_keys"
    fi
    [ "$MADE_RUNSSHD" = 1 ] && rmdir /run/sshd 2>/dev/null
    if [ -n "$SYSLOG_PID" ]; then kill "$SYSLOG_PID" 2>/dev/null; wait "$SYSLOG_PID" 2>/dev/null; fi
    [ "$MADE_DEVLOG" = 1 ] && rm -f /dev/log
    rm -rf "$TMP"
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

freeport() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# --- syslog: the module logs through pam_syslog(3) -> /dev/log -----------
if [ ! -S /dev/log ] && [ ! -e /dev/log ]; then
    "$PY" - "$TMP/syslog.log" <<'EOF' &
import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind("/dev/log")
os.chmod("/dev/log", 0o666)
with open(sys.argv[1], "ab", buffering=0) as out:
    while True:
        out.write(s.recv(65536).rstrip(b"\0\n") + b"\n")
EOF
    SYSLOG_PID=$!
    for _ in $(seq 50); do [ -S /dev/log ] && break; sleep 0.02; done
    [ -S /dev/log ] && MADE_DEVLOG=1
    SYSLOG="$TMP/syslog.log"
else
    SYSLOG=""   # the host's own syslog; searched in /var/log at the end
fi

# --- Redis and the pool ---------------------------------------------------
REDIS_PORT=$(freeport)
URL=redis://127.0.0.1:$REDIS_PORT
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
    --daemonize yes --dir "$TMP" --logfile "$TMP/redis.log" --pidfile "$TMP/redis.pid"
for _ in $(seq 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
SC() { "$B/seatctl" --redis "$URL" "$@"; }
SC pool set technicians --floating 100 --idle-timeout 15m >/dev/null

# --- the test user and its key --------------------------------------------
if ! id "$SGUSER" >/dev/null 2>&1; then
    useradd -m -s /bin/sh "$SGUSER"
    MADE_USER=1
fi
HOME_DIR=$(getent passwd "$SGUSER" | cut -d: -f6)
GRP=$(id -gn "$SGUSER")
install -d -m 700 -o "$SGUSER" -g "$GRP" "$HOME_DIR/.ssh"
if [ "$MADE_USER" = 0 ]; then
    if [ -e "$HOME_DIR/.ssh/authorized_keys" ]; then
        cp -p "$HOME_DIR/.ssh/authorized_keys" "$TMP/authorized_keys.orig"; AK_SAVED=1
    else
        AK_SAVED=2
    fi
fi
ssh-keygen -q -t ed25519 -N '' -C sshbench -f "$TMP/id_ed25519"
cat "$TMP/id_ed25519.pub" >>"$HOME_DIR/.ssh/authorized_keys"
chown "$SGUSER:$GRP" "$HOME_DIR/.ssh/authorized_keys"
chmod 600 "$HOME_DIR/.ssh/authorized_keys"

# --- PAM services: Debian's sshd stack, twice -----------------------------
: >"$TMP/empty.conf"
chmod 600 "$TMP/empty.conf"
MODLINE="$B/pam_seatgate.so pool=technicians redis=$URL timeout=500 conf=$TMP/empty.conf"
for svc in sshd-sgoff sshd-sgon; do
    [ -e "/etc/pam.d/$svc" ] && { echo "sshd-login.sh: /etc/pam.d/$svc exists; not touching it" >&2; exit 2; }
done
PAMFILES="/etc/pam.d/sshd-sgoff"
cp /etc/pam.d/sshd /etc/pam.d/sshd-sgoff
PAMFILES="$PAMFILES /etc/pam.d/sshd-sgon"
awk -v m="$MODLINE" '
    { print }
    /^@include[ \t]+common-account([ \t]|$)/ { print "account    required     " m }
    /^@include[ \t]+common-session([ \t]|$)/ { print "session    required     " m }
' /etc/pam.d/sshd >/etc/pam.d/sshd-sgon
n=$(grep -c pam_seatgate /etc/pam.d/sshd-sgon || true)
[ "$n" = 2 ] || { echo "sshd-login.sh: expected 2 pam_seatgate lines in sshd-sgon, got $n" >&2; exit 1; }
if [ "$(grep -v pam_seatgate /etc/pam.d/sshd-sgon)" != "$(cat /etc/pam.d/sshd-sgoff)" ]; then
    echo "sshd-login.sh: sshd-sgon is not sshd-sgoff plus the module" >&2; exit 1
fi

# --- two private sshd -----------------------------------------------------
if [ ! -d /run/sshd ]; then mkdir -m 755 /run/sshd; MADE_RUNSSHD=1; fi
ssh-keygen -q -t ed25519 -N '' -f "$TMP/hostkey"
start_sshd() { # $1 off|on, $2 port -> pid on stdout
    cat >"$TMP/sshd_config_$1" <<EOF
ListenAddress 127.0.0.1
Port $2
HostKey $TMP/hostkey
PidFile $TMP/sshd-$1.pid
UsePAM yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
AuthorizedKeysFile .ssh/authorized_keys
AllowUsers $SGUSER
UseDNS no
StrictModes yes
PrintMotd no
PrintLastLog no
X11Forwarding no
AcceptEnv none
LogLevel INFO
EOF
    ln -s "$SSHD" "$TMP/sshd-sg$1"
    "$TMP/sshd-sg$1" -t -f "$TMP/sshd_config_$1"
    "$TMP/sshd-sg$1" -D -f "$TMP/sshd_config_$1" -E "$TMP/sshd-$1.log" &
    echo $! >"$TMP/pid-$1"
}
OFF_PORT=$(freeport); ON_PORT=$(freeport)
while [ "$ON_PORT" = "$OFF_PORT" ]; do ON_PORT=$(freeport); done
start_sshd off "$OFF_PORT"; SSHD_OFF_PID=$(cat "$TMP/pid-off")
start_sshd on "$ON_PORT"; SSHD_ON_PID=$(cat "$TMP/pid-on")
for port in "$OFF_PORT" "$ON_PORT"; do
    for _ in $(seq 100); do
        "$PY" -c 'import socket,sys; socket.create_connection(("127.0.0.1",int(sys.argv[1])),0.2).close()' "$port" 2>/dev/null && break
        sleep 0.05
    done
done
# SSH_OPTS first: ssh keeps the first value it is given for an option
SSH="ssh -F /dev/null $SSH_OPTS -i $TMP/id_ed25519 -o IdentitiesOnly=yes -o IdentityAgent=none
 -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes
 -o ControlMaster=no -o ControlPath=none -o LogLevel=ERROR"
login() { $SSH -p "$1" "$SGUSER@127.0.0.1" true; }
# wait until the listener $1 has no per-connection child left
drain() {
    for _ in $(seq 500); do
        [ -z "$(cat "/proc/$1/task/$1/children" 2>/dev/null)" ] && return 0
        sleep 0.01
    done
    return 1
}

echo "sshd-login bench: $(nproc) cores, $($SSHD -V 2>&1 | head -1), redis $(redis-server --version | awk '{print $3}' | sed 's/v=//')"
echo "  sshd-sgoff on 127.0.0.1:$OFF_PORT (Debian's sshd PAM stack), sshd-sgon on 127.0.0.1:$ON_PORT (same + pam_seatgate.so)"
echo "  module: $MODLINE"
[ -n "$SSH_OPTS" ] && echo "  ssh client options added to every login: $SSH_OPTS"
echo

# --- checks: the "on" sshd really goes through the module -----------------
echo "checks"
FAILS=0
check() { # $1 text, $2 0|1
    if [ "$2" = 1 ]; then echo "  ok    $1"; else echo "  FAIL  $1"; FAILS=$((FAILS + 1)); fi
}
r=0; login "$OFF_PORT" 2>"$TMP/err" || r=$?
check "login to sshd-sgoff succeeds" $([ $r = 0 ] && echo 1 || echo 0)
[ $r = 0 ] || sed 's/^/        /' "$TMP/err"
drain "$SSHD_OFF_PID" || true
r=0; login "$ON_PORT" 2>"$TMP/err" || r=$?
check "login to sshd-sgon succeeds" $([ $r = 0 ] && echo 1 || echo 0)
[ $r = 0 ] || sed 's/^/        /' "$TMP/err"
drain "$SSHD_ON_PID" || true
AUD=$(SC audit --pool technicians --format jsonl 2>&1 || true)
echo "$AUD" | grep "\"$SGUSER\"" | sed 's/^/        audit: /' | head -5
n=$(echo "$AUD" | grep "\"$SGUSER\"" | grep '"pam"' | grep -c grant || true)
check "audit shows a grant via pam for $SGUSER after the sshd-sgon login ($n)" $([ "$n" -ge 1 ] && echo 1 || echo 0)
n=$(echo "$AUD" | grep "\"$SGUSER\"" | grep -c release || true)
check "audit shows the seat released at logout ($n)" $([ "$n" -ge 1 ] && echo 1 || echo 0)
SC pool set technicians --floating 0 >/dev/null
r=0; login "$ON_PORT" 2>"$TMP/err" || r=$?
check "with --floating 0, login to sshd-sgon is refused (ssh exit $r)" $([ $r != 0 ] && echo 1 || echo 0)
sed 's/^/        ssh: /' "$TMP/err" | head -3
drain "$SSHD_ON_PID" || true
r=0; login "$OFF_PORT" 2>"$TMP/err" || r=$?
check "with --floating 0, login to sshd-sgoff still works" $([ $r = 0 ] && echo 1 || echo 0)
drain "$SSHD_OFF_PID" || true
SC pool set technicians --floating 100 >/dev/null
r=0; login "$ON_PORT" 2>"$TMP/err" || r=$?
check "with --floating 100 again, login to sshd-sgon succeeds" $([ $r = 0 ] && echo 1 || echo 0)
drain "$SSHD_ON_PID" || true
if [ "$FAILS" != 0 ]; then
    echo "sshd-login.sh: $FAILS check(s) failed; sshd logs:" >&2
    tail -20 "$TMP/sshd-on.log" "$TMP/sshd-off.log" >&2
    exit 1
fi
echo

# --- the measurement --------------------------------------------------------
usec() { redis-cli -p "$REDIS_PORT" info commandstats |
    awk -F'[=,]' '/^cmdstat_(evalsha|eval|hset|hdel):/ { s += $4 } END { print s + 0 }'; }
export TMP OFF_PORT ON_PORT SSHD_OFF_PID SSHD_ON_PID LOGINS WARMUP SGUSER REDIS_PORT
"$PY" - "$SSH" <<'EOF' >"$TMP/table"
import os, subprocess, sys, time
ssh = sys.argv[1].split()
tmp = os.environ["TMP"]
n, warm, user = int(os.environ["LOGINS"]), int(os.environ["WARMUP"]), os.environ["SGUSER"]
side = {"off": (os.environ["OFF_PORT"], os.environ["SSHD_OFF_PID"]),
        "on": (os.environ["ON_PORT"], os.environ["SSHD_ON_PID"])}
rport = os.environ["REDIS_PORT"]

def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return f.read().split()
    except OSError:
        return []

def drain(pid, deadline=5.0):
    t = time.monotonic()
    while children(pid):
        if time.monotonic() - t > deadline:
            sys.exit(f"sshd {pid}: a connection did not end within {deadline}s")
        time.sleep(0.0002)

def one(which):
    port, pid = side[which]
    drain(pid)
    t0 = time.monotonic_ns()
    r = subprocess.run(ssh + ["-p", port, f"{user}@127.0.0.1", "true"],
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE)
    t1 = time.monotonic_ns()
    if r.returncode != 0:
        drain(pid)  # let sshd finish and log why
        sys.exit(f"login to sshd-sg{which} failed ({r.returncode}): {r.stderr.decode().strip()}")
    drain(pid)
    t2 = time.monotonic_ns()
    return (t1 - t0) / 1e6, (t2 - t0) / 1e6

def usec():
    out = subprocess.run(["redis-cli", "-p", rport, "info", "commandstats"],
                         capture_output=True, text=True).stdout
    s = 0
    for line in out.splitlines():
        name = line.split(":")[0]
        if name in ("cmdstat_evalsha", "cmdstat_eval", "cmdstat_hset", "cmdstat_hdel"):
            s += int(line.split("usec=")[1].split(",")[0])
    return s

for _ in range(warm):
    one("off"); one("on")
u0 = usec()
res = {"off": [], "on": []}
for _ in range(n):
    for w in ("off", "on"):
        res[w].append(one(w))
u1 = usec()

def pct(xs, p):  # linear interpolation between closest ranks
    xs = sorted(xs)
    k = (len(xs) - 1) * p / 100
    f = int(k)
    c = min(f + 1, len(xs) - 1)
    return xs[f] + (xs[c] - xs[f]) * (k - f)

with open(os.path.join(tmp, "samples.csv"), "w") as f:
    f.write("i,off_client_ms,off_server_ms,on_client_ms,on_server_ms\n")
    for i in range(n):
        f.write("%d,%.3f,%.3f,%.3f,%.3f\n" % ((i,) + res["off"][i] + res["on"][i]))

row = "%-46s %9s %9s %9s"
print(row % (f"{n} logins each, interleaved ({warm} warmup pairs)", "p50 ms", "p90 ms", "p99 ms"))
stats = {}
for j, what in ((0, "client: ssh start .. ssh exit"), (1, "server: ssh start .. sshd conn. exit")):
    print(what)
    for w, label in (("off", "  sshd-sgoff (Debian PAM stack)"), ("on", "  sshd-sgon  (+ pam_seatgate.so)")):
        xs = [r[j] for r in res[w]]
        stats[(j, w)] = [pct(xs, p) for p in (50, 90, 99)]
        print(row % ((label,) + tuple("%.2f" % v for v in stats[(j, w)])))
    d = [stats[(j, "on")][i] - stats[(j, "off")][i] for i in range(3)]
    print(row % (("  added by the module (on - off)",) + tuple("%+.2f" % v for v in d)))
    print(row % (("  ratio on / off",) + tuple("%.3fx" % (stats[(j, "on")][i] / stats[(j, "off")][i]) for i in range(3))))
# How far the added time can be trusted: bootstrap over the pairs (login i
# of each side resampled together, which keeps the drift they share), 95%
# interval of (on - off) for p50 and p90.
import random
rnd = random.Random(1)
boots = {50: [], 90: []}
for _ in range(2000):
    idx = [rnd.randrange(n) for _ in range(n)]
    on = [res["on"][i][0] for i in idx]
    off = [res["off"][i][0] for i in idx]
    for p in boots:
        boots[p].append(pct(on, p) - pct(off, p))
ci = {p: (pct(v, 2.5), pct(v, 97.5)) for p, v in boots.items()}
print(row % ("95% interval of the added p50 / p90, client",
             "%+.1f..%+.1f" % ci[50], "%+.1f..%+.1f" % ci[90], ""))
print()
added = stats[(0, "on")][0] - stats[(0, "off")][0]
added90 = stats[(0, "on")][1] - stats[(0, "off")][1]
print("Redis server time per sshd-sgon login (evalsha/eval/hset/hdel): %.0f us" % ((u1 - u0) / n))
verdict = ("FAIL" if added >= 5 else "PASS" if ci[50][1] < 5 else
           "PASS on the estimate, but the 95% interval reaches 5 ms (more LOGINS)")
print("target: the module adds < 5 ms per login (median, client): %+.2f ms, 95%% interval %+.1f..%+.1f ms -> %s"
      % (added, ci[50][0], ci[50][1], verdict))
print("        added p90 (p90 on - p90 off), client: %+.2f ms, 95%% interval %+.1f..%+.1f ms"
      % (added90, ci[90][0], ci[90][1]))
if added < 0:
    print("        (a negative added time is noise: the module cannot make a login faster)")
EOF
cat "$TMP/table"
echo

# --- after the run: leaks, logs ---------------------------------------------
left=$(SC sessions technicians --json 2>/dev/null | "$PY" -c '
import json, sys
d = json.load(sys.stdin)
s = d.get("sessions", d) if isinstance(d, dict) else d
print(len(s))' 2>/dev/null || echo "?")
echo "sessions still open in pool technicians after the run: $left (expect 0)"
echo "sshd-sgon log: $(grep -c 'Accepted publickey' "$TMP/sshd-on.log") logins accepted, $(grep -ci 'pam_seatgate' "$TMP/sshd-on.log" || true) pam_seatgate lines"
grep -i 'pam_seatgate' "$TMP/sshd-on.log" | sort | uniq -c | sort -rn | head -10 | sed 's/^/    /'
echo "sshd logs, lines other than Accepted/Received disconnect/Disconnected/session opened/closed"
echo "(the readiness probes of the two ports show as kex_exchange_identification and Connection closed):"
cat "$TMP/sshd-off.log" "$TMP/sshd-on.log" |
    grep -Ev 'Accepted publickey|Received disconnect|Disconnected from|Server listening|session (opened|closed)' |
    sed 's/^[A-Z][a-z][a-z] *[0-9]* [0-9:.]* //; s/\[[0-9]*\]//; s/ port [0-9]*/ port N/' | sort | uniq -c | sort -rn | head -15 | sed 's/^/    /'
if [ -n "$SYSLOG" ]; then
    sleep 0.2
    echo "syslog (caught on /dev/log) lines from pam_seatgate: $(grep -c pam_seatgate "$SYSLOG" || true)"
    grep pam_seatgate "$SYSLOG" | sed 's/^<[0-9]*>//; s/^[A-Z][a-z][a-z] [ 0-9]* [0-9:]* //; s/\[[0-9]*\]//' |
        sort | uniq -c | sort -rn | head -15 | sed 's/^/    /'
    echo "syslog lines from other modules (both sshd):"
    grep -v pam_seatgate "$SYSLOG" | sed 's/^<[0-9]*>//; s/^[A-Z][a-z][a-z] [ 0-9]* [0-9:]* //; s/\[[0-9]*\]//' |
        sort | uniq -c | sort -rn | head -15 | sed 's/^/    /'
else
    echo "last pam_seatgate lines in /var/log (the host's syslog):"
    grep -rh pam_seatgate /var/log/auth.log /var/log/syslog /var/log/messages 2>/dev/null | tail -15 | sed 's/^/    /'
fi
