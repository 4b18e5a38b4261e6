"""Shared helpers for the seatgate integration tests.

Nothing here is specific to one test file: the nginx and PAM suites import the
same Redis starter and seatctl runner.

- RedisServer: a real redis-server on a free loopback port, in its own
  temporary directory, no persistence.
- run_seatctl / run_seatctl_json: run the real build/seatctl binary.
- db_snapshot, audit_entries, pool_keys: read Redis state for assertions.
"""
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections import namedtuple

import redis
from redis.crc import key_slot

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.path.abspath(os.environ.get("SEATGATE_BUILD") or os.path.join(REPO, "build"))
SEATCTL = os.path.join(BUILD, "seatctl")
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"

# Exit codes of seatctl (PRODUCT.md section 5)
EX_OK, EX_DENIED, EX_USAGE, EX_BACKEND = 0, 1, 2, 3

Result = namedtuple("Result", "rc out err")


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago (bind port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def closed_port():
    """A loopback port nothing listens on (bound, then closed)."""
    return free_port()


ACL_FILE = os.path.join(REPO, "conf", "redis-acl.conf")
DECIDE_PASSWORD = "test-decide-pw"
ADMIN_PASSWORD = "test-admin-pw"
SYNC_PASSWORD = "test-sync-pw"

# seatctl commands the decision role (nginx, PAM hosts) runs; the rest are admin's
DECISION_COMMANDS = {"check", "acquire", "release", "reap", "status", "sessions"}
ADMIN_COMMANDS = {"pool", "assign", "unassign", "user", "doctor", "audit", "sync", "report",
                  "explain"}


def acl_text():
    """conf/redis-acl.conf as shipped, with test passwords, and a passwordless
    default user for the harness itself (FLUSHALL, inspection)."""
    out = []
    with open(ACL_FILE) as f:
        for line in f:
            line = line.replace(">CHANGE-ME-decide", ">" + DECIDE_PASSWORD)
            line = line.replace(">CHANGE-ME-admin", ">" + ADMIN_PASSWORD)
            line = line.replace(">CHANGE-ME-sync", ">" + SYNC_PASSWORD)
            if line.startswith("user default "):
                line = "user default on nopass ~* &* +@all\n"
            out.append(line)
    return "".join(out)


class RedisServer:
    """A throw-away redis-server on 127.0.0.1.

    With acl=True it loads conf/redis-acl.conf (test passwords): decide_url
    and admin_url connect as the shipped roles, url as the harness's
    unrestricted default user.

    Usage:
        with RedisServer() as srv:
            srv.client().ping()
    """

    def __init__(self, extra_args=(), tmpdir=None, acl=False):
        self.acl = acl
        self.extra_args = list(extra_args)
        self._own_tmp = tmpdir is None
        self.tmpdir = tmpdir or tempfile.mkdtemp(prefix="seatgate-redis-")
        self.port = None
        self.proc = None

    @property
    def url(self):
        return "redis://127.0.0.1:%d" % self.port

    @property
    def decide_url(self):
        if not self.acl:
            return self.url
        return "redis://seatgate-decide:%s@127.0.0.1:%d" % (DECIDE_PASSWORD, self.port)

    @property
    def admin_url(self):
        if not self.acl:
            return self.url
        return "redis://seatgate-admin:%s@127.0.0.1:%d" % (ADMIN_PASSWORD, self.port)

    @property
    def sync_url(self):
        """The provisioning role (SCIM endpoint): user records and named seats,
        never a pool's settings."""
        if not self.acl:
            return self.url
        return "redis://seatgate-sync:%s@127.0.0.1:%d" % (SYNC_PASSWORD, self.port)

    def url_for(self, args):
        """The role a seatctl command line runs as."""
        for a in args:
            if a in DECISION_COMMANDS:
                return self.decide_url
            if isinstance(a, str) and not a.startswith("-") and a not in ("--json",):
                if a in ADMIN_COMMANDS:
                    return self.admin_url
        return self.admin_url

    def start(self, attempts=5):
        last = None
        for _ in range(attempts):
            self.port = free_port()
            log = open(os.path.join(self.tmpdir, "redis-%d.log" % self.port), "wb")
            acl_args = []
            if self.acl:
                path = os.path.join(self.tmpdir, "acl-%d.conf" % self.port)
                with open(path, "w") as f:
                    f.write(acl_text())
                acl_args = ["--aclfile", path]
            self.proc = subprocess.Popen(
                [REDIS_SERVER, "--bind", "127.0.0.1", "--port", str(self.port),
                 "--save", "", "--appendonly", "no", "--dir", self.tmpdir,
                 "--daemonize", "no", "--protected-mode", "no"] + acl_args + self.extra_args,
                stdout=log, stderr=subprocess.STDOUT, cwd=self.tmpdir)
            log.close()
            try:
                self._wait_ready()
                return self
            except RuntimeError as e:  # port taken meanwhile, or a slow start
                last = e
                self._kill()
        raise RuntimeError("redis-server did not start: %s" % last)

    def _wait_ready(self, timeout=10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("redis-server exited with %s" % self.proc.returncode)
            try:
                if redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=0.5).ping():
                    return
            except redis.exceptions.RedisError:
                pass
            time.sleep(0.02)
        raise RuntimeError("redis-server on port %d did not answer PING" % self.port)

    def client(self, decode=True, **kw):
        return redis.Redis(host="127.0.0.1", port=self.port, decode_responses=decode, **kw)

    def pause(self):
        """SIGSTOP: the kernel still accepts connections, nothing answers."""
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self):
        os.kill(self.proc.pid, signal.SIGCONT)

    def _kill(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def stop(self):
        self._kill()
        if self._own_tmp:
            shutil.rmtree(self.tmpdir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def seatctl_env(conf_path=None):
    """Environment for seatctl: no stray $SEATGATE_REDIS, a known config file."""
    env = dict(os.environ)
    env.pop("SEATGATE_REDIS", None)
    if conf_path:
        env["SEATGATE_CONF"] = conf_path
    env.setdefault("LC_ALL", "C.UTF-8")
    return env


def run_seatctl(url, *args, check=None, timeout=30, env=None, redis_opt=True):
    """Run seatctl [--redis URL] ARGS...; returns Result(rc, out, err).

    Arguments may be str or bytes (bytes for invalid UTF-8). With check=N
    the exit code must be N (AssertionError with the output otherwise).
    """
    argv = [SEATCTL]
    if redis_opt and url:
        argv += ["--redis", url]
    argv += [a if isinstance(a, bytes) else str(a) for a in args]
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=timeout, env=env if env is not None else seatctl_env())
    res = Result(p.returncode, p.stdout.decode("utf-8", "replace"),
                 p.stderr.decode("utf-8", "replace"))
    if check is not None:
        assert res.rc == check, "seatctl %r: exit %d, wanted %d\nstdout: %s\nstderr: %s" % (
            args, res.rc, check, res.out, res.err)
    return res


def run_seatctl_json(url, *args, check=None, **kw):
    """Like run_seatctl with --json; returns Result(rc, parsed object, err)."""
    res = run_seatctl(url, "--json", *args, check=check, **kw)
    try:
        obj = json.loads(res.out) if res.out.strip() else None
    except ValueError as e:
        raise AssertionError("seatctl %r printed no JSON (%s): %r / %r" % (
            args, e, res.out, res.err))
    return Result(res.rc, obj, res.err)


# ---- reading Redis state -----------------------------------------------------

def db_snapshot(client):
    """Every key with its DUMP (type, content) and TTL flag: equality means
    nothing changed."""
    snap = {}
    for k in client.scan_iter(count=1000):
        snap[k] = (client.type(k), client.dump(k), client.pttl(k) > 0)
    return snap


class RedisCluster:
    """A throw-away Redis Cluster on loopback: MASTERS masters with REPLICAS
    replicas each (redis-cli --cluster create), every node with the shipped
    ACL (test passwords), a node timeout of 1 s so that a killed master's
    replica takes over quickly."""

    def __init__(self, tmpdir, masters=3, replicas=1, acl=True):
        self.tmpdir = tmpdir
        self.masters = masters
        self.replicas = replicas
        self.acl = acl
        self.nodes = []

    def start(self):
        for i in range(self.masters * (1 + self.replicas)):
            d = os.path.join(self.tmpdir, "node%d" % i)
            os.makedirs(d, exist_ok=True)
            srv = RedisServer(tmpdir=d, acl=self.acl, extra_args=[
                "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                "--cluster-node-timeout", "1000", "--cluster-replica-validity-factor", "0",
                "--repl-diskless-sync-delay", "0"])
            srv.start()
            self.nodes.append(srv)
        addrs = ["127.0.0.1:%d" % n.port for n in self.nodes]
        p = subprocess.run(["redis-cli", "--cluster", "create"] + addrs +
                           ["--cluster-replicas", str(self.replicas), "--cluster-yes"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=60)
        if p.returncode != 0:
            raise RuntimeError("redis-cli --cluster create: " + p.stdout[-2000:])
        self.wait_ok()
        self.wait_replicas()
        return self

    def wait_replicas(self, timeout=30):
        """Every replica's link to its master is up (a full sync done)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            links = []
            for n in self.live():
                c = n.client()
                try:
                    info = c.info("replication")
                    if info["role"] == "slave":
                        links.append(info.get("master_link_status") == "up")
                finally:
                    c.close()
            if links and all(links):
                return
            time.sleep(0.1)
        raise RuntimeError("the replicas did not sync")

    def wait_ok(self, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if all(not self.alive(n) or self.state_ok(n) for n in self.nodes) and \
                        self.slots_covered():
                    return
            except redis.exceptions.RedisError:
                pass
            time.sleep(0.1)
        raise RuntimeError("the cluster did not reach cluster_state:ok")

    @staticmethod
    def state_ok(n):
        c = n.client()
        try:
            return "cluster_state:ok" in c.execute_command("CLUSTER", "INFO")
        finally:
            c.close()

    @staticmethod
    def alive(n):
        return n.proc is not None and n.proc.poll() is None

    def live(self):
        return [n for n in self.nodes if self.alive(n)]

    def slots_covered(self):
        total = 0
        for lo, hi, *_ in self.slot_ranges():
            total += hi - lo + 1
        return total == 16384

    def slot_ranges(self):
        """[(lo, hi, master port, master id)]"""
        c = self.live()[0].client(decode=False)
        try:
            return [(r[0], r[1], r[2][1], r[2][2].decode())
                    for r in c.execute_command("CLUSTER", "SLOTS")]
        finally:
            c.close()

    def master_of_slot(self, slot):
        for lo, hi, port, nid in self.slot_ranges():
            if lo <= slot <= hi:
                return port, nid
        return None, None

    def node(self, port):
        return [n for n in self.nodes if n.port == port][0]

    def url(self, role="admin"):
        user, pw = {"admin": ("seatgate-admin", ADMIN_PASSWORD),
                    "decide": ("seatgate-decide", DECIDE_PASSWORD),
                    "sync": ("seatgate-sync", SYNC_PASSWORD)}[role]
        seeds = ",".join("127.0.0.1:%d" % n.port for n in self.nodes[:3])
        return "redis+cluster://%s:%s@%s" % (user, pw, seeds)

    def flush(self):
        for n in self.live():
            c = n.client()
            try:
                if c.execute_command("ROLE")[0] == "master":
                    c.flushall()
            finally:
                c.close()

    def stop(self):
        for n in self.nodes:
            n.stop()


def audit_entries(client, pool):
    """The pool's audit stream as a list of field dicts (with 'id')."""
    out = []
    for eid, fields in client.xrange("sg:{%s}:audit" % pool):
        d = dict(fields)
        d["id"] = eid
        out.append(d)
    return out


def pool_keys(client, pool):
    """Keys of the pool, found by scanning for the hash tag."""
    return sorted(client.scan_iter(match="sg:{%s}:*" % pool.replace("[", "\\["), count=1000))


def slot(key):
    return key_slot(key.encode() if isinstance(key, str) else key)


def leases(client, pool, live_only=True):
    """Holders of floating seats -> lease expiry (ms)."""
    now_s, now_us = client.time()
    now = now_s * 1000 + now_us // 1000
    z = client.zrange("sg:{%s}:leases" % pool, 0, -1, withscores=True)
    return {u: s for u, s in z if not live_only or s > now}


# ---- the decision script, called the way the core calls it ---------------------
DECIDE_KEYS = ("leases", "sess", "sessidx", "sessinfo", "gcount", "hg", "fold", "lastused",
               "stats")


def script_body(name):
    """common/lua/lib.lua followed by common/lua/NAME.lua, as embedded."""
    with open(os.path.join(REPO, "common", "lua", "lib.lua")) as f:
        lib = f.read()
    with open(os.path.join(REPO, "common", "lua", name + ".lua")) as f:
        return lib + f.read()


def decide_call(pool, user, op="acquire", obo="", session="", lease=0, via="cli", host="test",
                pid=0, pstart=0, client="", feature=""):
    """(keys, args) of one decision, as sg_decide_cmd builds them."""
    keys = ["sg:{%s}:%s" % (pool, k) for k in DECIDE_KEYS]
    keys.append("sg:{%s}:mux:%s" % (pool, user if obo else ""))
    args = ["op", op, "pool", pool, "user", user, "via", via or "cli"]
    for name, v in (("obo", obo), ("feature", feature), ("session", session),
                    ("lease", lease), ("host", host), ("pid", pid), ("pstart", pstart),
                    ("client", client)):
        if v not in ("", 0, None):    # left out when empty or 0, as the core does
            args += [name, str(v)]
    return keys, args


def reply_dict(reply):
    """A script's flat name/value reply as a dict."""
    return {reply[i]: reply[i + 1] for i in range(0, len(reply), 2)}


def read_until(proc, pred, deadline):
    """Lines of proc's stdout until pred(parsed line) holds or the deadline."""
    buf, seen = b"", []
    fd = proc.stdout.fileno()
    while time.monotonic() < deadline:
        r, _, _ = select.select([fd], [], [], 0.2)
        if not r:
            if proc.poll() is not None:
                break
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            e = json.loads(line)
            seen.append(e)
            if pred(e):
                return seen, True
    return seen, False
