#!/usr/bin/python3
"""make bench, seat model rows (issue 9): Redis server time per decision,
beside a trivial script in the same Redis; the same decisions at 100 and at
100,000 holders and with reservation/cap rules; memory for 100,000 users
and 1,000 pools; `seatctl user import` of 100,000 users; `seatctl reap` with
1,000 pools and 50,000 sessions of other hosts.

Redis runs with the encoding limits of conf/redis-seatgate.conf (the
settings the docs ship). Server time comes from INFO commandstats (usec_per_call of FCALL, the way
nginx, PAM and seatctl call the scripts once seatctl has loaded the function
library; EVALSHA, their fallback, for comparison), so the client's speed
does not enter it. Targets are printed beside the figures;
nothing here fails the build.

Environment: BENCH_USERS (100000), BENCH_POOLS (1000), BENCH_OTHER_SESSIONS
(50000), BENCH_CALLS (5000 decisions per row).
"""
import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))

import redis  # noqa: E402

import helpers  # noqa: E402

USERS = int(os.environ.get("BENCH_USERS", "100000"))
POOLS = int(os.environ.get("BENCH_POOLS", "1000"))
OTHER = int(os.environ.get("BENCH_OTHER_SESSIONS", "50000"))
CALLS = int(os.environ.get("BENCH_CALLS", "5000"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def shipped_settings():
    """The encoding limits of conf/redis-seatgate.conf (what the docs tell
    operators to run with), as redis-server arguments."""
    args = []
    with open(os.path.join(ROOT, "conf", "redis-seatgate.conf")) as f:
        for line in f:
            w = line.split()
            if len(w) == 2 and w[0].endswith("-max-listpack-entries"):
                args += ["--" + w[0], w[1]]
    return args


class Bench:
    def __init__(self, build):
        self.build = build
        self.tmp = tempfile.mkdtemp(prefix="sg-bench-model-")
        self.port = free_port()
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.tmp] + shipped_settings(),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.r = redis.Redis(port=self.port, decode_responses=True)
        for _ in range(100):
            try:
                self.r.ping()
                break
            except redis.exceptions.ConnectionError:
                time.sleep(0.05)
        self.url = "redis://127.0.0.1:%d" % self.port
        self.sha = self.r.script_load(helpers.script_body("decide"))
        self.trivial = self.r.script_load("return 1")
        # the function library, as seatctl loads it for the admin
        self.seatctl("pool", "set", "bench-load", "--floating", "1")
        libs = [dict(zip(lib[::2], lib[1::2]))["library_name"] for lib in self.r.function_list()]
        h = [n for n in libs if n.startswith("seatgate_")][0][len("seatgate_"):]
        self.fdecide = "sg_%s_decide" % h
        self.r.function_load("#!lua name=bench_trivial\n"
                             "redis.register_function('bench_trivial', function() return 1 end)",
                             replace=True)

    def close(self):
        self.proc.terminate()
        self.proc.wait()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def seatctl(self, *args, stdin=None, env=None):
        t = time.monotonic()
        p = subprocess.run([os.path.join(self.build, "seatctl"), "--redis", self.url,
                            "--timeout", "60000"] + list(args),
                           input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           env=env, check=False)
        if p.returncode != 0:
            raise RuntimeError("seatctl %s: %s" % (" ".join(args[:3]), p.stderr.decode()))
        return time.monotonic() - t, p.stdout.decode()

    def evalsha_us(self, calls, sha=None, rounds=1, fcall=None):
        """Server time per call of a list of (keys, args), in microseconds
        (the best of rounds runs: the rows that are idempotent repeat):
        EVALSHA of sha, or FCALL of the function fcall."""
        sha = sha or self.sha
        best = None
        for _ in range(rounds):
            self.r.config_resetstat()
            for i in range(0, len(calls), 1000):
                p = self.r.pipeline(transaction=False)
                for keys, args in calls[i:i + 1000]:
                    if fcall:
                        p.execute_command("FCALL", fcall, len(keys), *(keys + args))
                    else:
                        p.evalsha(sha, len(keys), *(keys + args))
                last = p.execute()
            st = self.r.info("commandstats")["cmdstat_" + ("fcall" if fcall else "evalsha")]
            assert st.get("failed_calls", 0) == 0, st
            us = st["usec_per_call"]
            best = us if best is None else min(best, us)
        mine = fcall == self.fdecide if fcall else sha == self.sha
        return best, helpers.reply_dict(last[-1]) if mine else {}

    def decide_us(self, calls, rounds=1):
        """A decision as the clients run it: FCALL of the library."""
        return self.evalsha_us(calls, rounds=rounds, fcall=self.fdecide)

    def fill_holders(self, pool, n, prefix):
        calls = [helpers.decide_call(pool, "%s%d" % (prefix, i), lease=3600) for i in range(n)]
        for i in range(0, n, 2000):
            p = self.r.pipeline(transaction=False)
            for keys, args in calls[i:i + 2000]:
                p.evalsha(self.sha, len(keys), *(keys + args))
            p.execute()


def row(label, value, unit, target=None, ok=None):
    t = target or ""
    if target and ok is not None:
        t = "%s %s" % (target, "PASS" if ok else "FAIL")
    print("%-52s %12s %-8s %s" % (label, value, unit, t))


def decision_rows(b):
    print("server time per decision (INFO commandstats usec_per_call; decisions as FCALL of the "
          "library, %d calls)" % CALLS)
    b.seatctl("pool", "set", "t", "--named", "5", "--floating", str(CALLS * 2),
              "--idle-timeout", "1h")
    b.seatctl("assign", "t", "nm")
    keys, args = helpers.decide_call("t", "nm")
    triv1, _ = b.evalsha_us([(["sg:{t}:leases"], [])] * CALLS, b.trivial, 3)
    trivn, _ = b.evalsha_us([(keys, args)] * CALLS, b.trivial, 3)
    trivf, _ = b.evalsha_us([(keys, args)] * CALLS, rounds=3, fcall="bench_trivial")
    row("trivial 'return 1' (EVALSHA), 1 key, no arguments", "%.2f" % triv1, "us")
    row("trivial 'return 1' (EVALSHA), a decision's 10 keys, 24 args", "%.2f" % trivn, "us")
    row("trivial function (FCALL), a decision's keys and args", "%.2f" % trivf, "us")
    named, _ = b.decide_us([helpers.decide_call("t", "nm")] * CALLS, rounds=3)
    named_sha, _ = b.evalsha_us([helpers.decide_call("t", "nm")] * CALLS, rounds=3)
    grant = None
    for rnd in range(3):    # new users each round: the best of three
        us, d = b.decide_us([helpers.decide_call("t", "g%d_%d" % (rnd, i))
                             for i in range(CALLS // 3)])
        assert d["result"] == "granted_floating", d
        grant = us if grant is None else min(grant, us)
    renew, d = b.decide_us([helpers.decide_call("t", "g0_%d" % i) for i in range(CALLS // 3)],
                           rounds=3)
    assert d["reason"] == "holds_seat", d
    b.seatctl("pool", "set", "t", "--floating", str(3 * (CALLS // 3)))
    deny, d = b.decide_us([helpers.decide_call("t", "x%d" % (i % 100)) for i in range(CALLS)],
                          rounds=3)
    assert d["result"] == "denied_exhausted", d
    for label, v, k in (("named renewal", named, 3), ("floating renewal", renew, 3),
                        ("new floating grant", grant, 5), ("denial (all seats in use)", deny, 3)):
        row(label, "%.2f" % v, "us", "%.1fx trivial (target <= %dx)" % (v / triv1, k),
            v <= k * triv1)
    row("named renewal as EVALSHA (the fallback)", "%.2f" % named_sha, "us",
        "FCALL saves %.0f%%" % (100 * (1 - named / named_sha)))
    n = b.r.xlen("sg:{t}:audit")
    size = b.r.memory_usage("sg:{t}:audit", samples=0)
    row("audit stream: bytes per entry (%d entries)" % n, "%.0f" % (size / n), "bytes")
    print("  (beside the trivial function with the same keys and arguments: named %.1fx, "
          "floating renewal %.1fx, new grant %.1fx, denial %.1fx)" % (
              named / trivf, renew / trivf, grant / trivf, deny / trivf))
    return {"named": named, "renew": renew, "grant": grant, "deny": deny}


MINIMAL_RENEWAL = r"""
local A = {}
for i = 1, #ARGV - 1, 2 do A[ARGV[i]] = ARGV[i + 1] end
local P = 'sg:{' .. A.pool .. '}:'
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HMGET', P .. 'conf', 'state', 'named', 'floating', 'idle', 'max_lease', 'epoch')
redis.call('HGET', P .. 'users', A.user)
redis.call('SISMEMBER', P .. 'named', A.user)
local m = A.user .. '\0-'
redis.call('ZSCORE', P .. 'sess', m)
redis.call('ZADD', P .. 'sess', now + 900000, m)
redis.call('HSET', P .. 'lastused', A.user, now)
redis.call('HINCRBY', P .. 'stats', 'n:granted_named', 1)
return {'result', 'granted_named', 'in_use', redis.call('ZCOUNT', P .. 'leases', '(' .. now, '+inf')}
"""


LEAST_HEAD = "local t = redis.call('TIME') local s = redis.call('HMGET', KEYS[1], 'conf', 'u', 'n') "
LEAST = (
    ("renewal: time, state, session expiry (3 calls)", 3,
     LEAST_HEAD + "redis.call('ZADD', KEYS[1] .. 's', t[1], 'u') return 1"),
    ("floating renewal: + seat expiry (4 calls)", 3,
     LEAST_HEAD + "redis.call('ZADD', KEYS[1] .. 's', t[1], 'u') "
     "redis.call('ZADD', KEYS[1] .. 'l', t[1], 'u') return 1"),
    ("denial: + seats in use, a fold count (4 calls)", 3,
     LEAST_HEAD + "redis.call('ZCOUNT', KEYS[1] .. 'l', t[1], '+inf') "
     "redis.call('HINCRBY', KEYS[1] .. 'f', 'u', 1) return 1"),
    ("grant: + seat, session, record, audit (7 calls)", 5,
     LEAST_HEAD + "redis.call('ZCOUNT', KEYS[1] .. 'l', t[1], '+inf') "
     "redis.call('ZADD', KEYS[1] .. 's', t[1], 'u') redis.call('ZADD', KEYS[1] .. 'l', t[1], 'u') "
     "redis.call('HSET', KEYS[1] .. 'i', 'u', 'host=h pid=1') "
     "redis.call('XADD', KEYS[1] .. 'a', 'MAXLEN', '~', '1000', '*', 'ev', 'grant', 'user', 'u') "
     "return 1"),
)


def floor_rows(b):
    """What scripting costs on this Redis, beside the decide script: one
    redis.call from Lua, and a named renewal written with only the nine
    calls it needs and none of the shared library."""
    keys, args = helpers.decide_call("t", "nm")
    hundred = b.r.script_load("for i = 1, 100 do redis.call('TIME') end return 1")
    us, _ = b.evalsha_us([(["sg:{t}:leases"], [])] * 1000, hundred, 3)
    row("100 redis.call('TIME') in one script, per call", "%.2f" % (us / 100), "us")
    minimal = b.r.script_load(MINIMAL_RENEWAL)
    us, _ = b.evalsha_us([(keys, args)] * CALLS, minimal, 3)
    row("a named renewal with only its 9 calls (no library)", "%.2f" % us, "us")
    # The least each decision can send, whatever the schema: no logic, every
    # piece of state a decision needs in one hash read, and the writes that
    # no correct decision can skip. A target below one of these rows is below
    # what Lua scripting costs on this Redis.
    triv1, _ = b.evalsha_us([(["sg:{t}:leases"], [])] * CALLS, b.trivial, 3)
    b.r.hset("sg:{t}:least", mapping={"conf": b.r.hget("sg:{t}:conf", "hot") or "x" * 60,
                                      "u": "00,a,b,", "n": "1"})
    print("  the least a decision can send (no logic; settings, user and seat in one HMGET):")
    for label, k, body in LEAST:
        sha = b.r.script_load(body)
        us, _ = b.evalsha_us([(["sg:{t}:least"], [])] * CALLS, sha, 3)
        row("  " + label, "%.2f" % us, "us", "%.1fx trivial (target <= %dx)" % (us / triv1, k),
            us <= k * triv1)


def scale_rows(b):
    print()
    print("the same decisions with 100 and with 100,000 holders, and with rules "
          "(target: within 1.5x; pools interleaved, best of 5 rounds)")
    big = 100000
    rounds = 5
    per = CALLS // rounds
    pools = (("small", 100, ()), ("large", big, ()),
             ("ruled", big, ("--reserve", "g1=10", "--cap", "g2=%d" % big,
                             "--include", "g1", "--include", "g2", "--include", "all")))
    for pool, holders, rules in pools:
        b.seatctl("pool", "set", pool, "--named", "5", "--floating", str(holders + CALLS * 2),
                  "--idle-timeout", "1h", *rules)
        b.seatctl("assign", pool, "nm")
        if rules:
            # everyone in group all; every tenth in g1 and g2
            lines = ["user,groups,disabled,service_account"]
            for i in range(holders):
                lines.append("%s%d,all%s,0,0" % (pool, i, ";g1;g2" if i % 10 == 0 else ""))
            for i in range(CALLS):
                lines.append("n%s%d,all%s,0,0" % (pool, i, ";g2" if i % 2 else ""))
            for u in ("nm", "zz"):
                lines.append("%s,all,0,0" % u)
            b.seatctl("user", "import", "-", stdin=("\n".join(lines) + "\n").encode())
        b.fill_holders(pool, holders, pool)
    best = {}

    def note(pool, kind, us):
        best[(pool, kind)] = min(best.get((pool, kind), us), us)

    for rnd in range(rounds):
        order = pools[rnd % 3:] + pools[:rnd % 3]
        for pool, holders, _ in order:
            us, _ = b.decide_us([helpers.decide_call(pool, "nm")] * per)
            note(pool, 0, us)
            us, d = b.decide_us([helpers.decide_call(pool, "%s%d" % (pool, (rnd * per + i) % holders))
                                  for i in range(per)])
            assert d["reason"] == "holds_seat", d
            note(pool, 1, us)
            us, d = b.decide_us([helpers.decide_call(pool, "n%s%d" % (pool, rnd * per + i))
                                  for i in range(per)])
            assert d["result"] == "granted_floating", d
            note(pool, 2, us)
    for pool, holders, _ in pools:   # now full: the same user is denied
        b.seatctl("pool", "set", pool, "--floating", str(holders + rounds * per))
    for rnd in range(rounds):
        order = pools[rnd % 3:] + pools[:rnd % 3]
        for pool, holders, _ in order:
            us, d = b.decide_us([helpers.decide_call(pool, "zz")] * per)
            assert d["result"] == "denied_exhausted", d
            note(pool, 3, us)
    for pool, holders, rules in pools:
        row("%s: %d holders%s" % (pool, holders, ", reserve+cap+include" if rules else ""),
            "%.1f/%.1f/%.1f/%.1f" % tuple(best[(pool, k)] for k in range(4)), "us",
            "named/renew/grant/deny")
    for i, what in enumerate(("named renewal", "floating renewal", "new grant", "denial")):
        lo = min(best[(p[0], i)] for p in pools)
        hi = max(best[(p[0], i)] for p in pools)
        row("  %s: largest / smallest" % what, "%.2f" % (hi / lo), "x", "<= 1.5x", hi / lo <= 1.5)


def population_rows(b):
    print()
    print("memory, import and reap at %d users and %d pools" % (USERS, POOLS))
    b.r.flushall()
    base = b.r.info("memory")["used_memory"]
    csv = ["user,groups,disabled,service_account"]
    for i in range(USERS):
        # groups of 1,000; 0.5% disabled; 50 service accounts
        csv.append("u%d,grp%d;dept%d,%d,%d" % (i, i % 100, i % 7, 1 if i % 200 == 0 else 0,
                                               1 if i < 50 else 0))
    data = ("\n".join(csv) + "\n").encode()
    secs, out = b.seatctl("user", "import", "-", stdin=data)
    row("seatctl user import of %d users" % USERS, "%.0f" % (USERS / secs), "users/s",
        "(target >= 20000)", USERS / secs >= 20000)
    users_mem = b.r.info("memory")["used_memory"] - base
    t = time.monotonic()
    for i in range(POOLS):
        rules = []
        if i % 10 == 0:  # one pool in ten has a group rule
            rules = ["--include", "grp%d" % (i // 10 % 100)]
        b.seatctl("pool", "set", "pool%d" % i, "--named", "20", "--floating", "50", *rules)
    pool_secs = time.monotonic() - t
    total = b.r.info("memory")["used_memory"] - base
    row("registry: %d users (records, group sets)" % USERS, "%.1f" % (users_mem / 2**20), "MB")
    row("+ %d pools (%d with a group rule)" % (POOLS, (POOLS + 9) // 10), "%.1f" % ((total - users_mem) / 2**20),
        "MB", "(pool set %.1f ms each)" % (pool_secs * 1000 / POOLS))
    row("total for %d users and %d pools" % (USERS, POOLS), "%.1f" % (total / 2**20), "MB",
        "(target < 256 MB)", total < 256 * 2**20)
    per_user = users_mem / USERS
    row("  per user in the registry", "%.0f" % per_user, "bytes")

    # 50,000 sessions of other hosts spread over the pools, and ten of ours
    calls, idx = [], {}
    for i in range(OTHER):
        host = "other%d" % (i % 200)
        pool = "pool%d" % (i % POOLS)
        sid = "pam-%s-%d-1" % (host, i)
        calls.append(helpers.decide_call(pool, "u%d" % (1000 + i % 50000), session=sid,
                                         lease=43200, via="pam", host=host, pid=i + 2, pstart=1))
        idx.setdefault(host, {})["%s\tu%d\t%s" % (pool, 1000 + i % 50000, sid)] = \
            "pid=%d\tpstart=1\tboot=x\tlease=43200\trenewed=%d" % (i + 2, time.time() * 1000)
    for i in range(0, len(calls), 2000):
        p = b.r.pipeline(transaction=False)
        for keys, args in calls[i:i + 2000]:
            p.evalsha(b.sha, len(keys), *(keys + args))
        p.execute()
    p = b.r.pipeline(transaction=False)
    for host, fields in idx.items():
        p.hset("sg:host:" + host, mapping=fields)
    p.execute()
    me = "benchhost"
    sleeper = subprocess.Popen(["sleep", "120"])
    try:
        with open("/proc/%d/stat" % sleeper.pid) as f:
            pstart = int(f.read().rsplit(")", 1)[1].split()[19])
        for i in range(10):
            pool = "pool%d" % i
            sid = "pam-%s-%d-%d" % (me, sleeper.pid, i)
            keys, args = helpers.decide_call(pool, "u%d" % (60000 + i), session=sid,
                                             lease=43200, via="pam", host=me,
                                             pid=sleeper.pid, pstart=pstart)
            b.r.evalsha(b.sha, len(keys), *(keys + args))
            b.r.hset("sg:host:" + me, "%s\tu%d\t%s" % (pool, 60000 + i, sid),
                     "pid=%d\tpstart=%d\tboot=\tlease=43200\trenewed=%d" % (
                         sleeper.pid, pstart, time.time() * 1000))
        conf = os.path.join(b.tmp, "seatgate.conf")
        with open(conf, "w") as f:
            f.write("host_id = %s\n" % me)
        times = []
        for _ in range(5):
            b.r.config_resetstat()
            secs, _ = b.seatctl("--config", conf, "reap")
            times.append(secs)
        cmds = sum(v["calls"] for k, v in b.r.info("commandstats").items()
                   if not k.startswith("cmdstat_config"))
        times.sort()
        row("seatctl reap: %d pools, %d other hosts' sessions" % (POOLS, OTHER),
            "%.1f" % (times[2] * 1000), "ms", "(target < 100 ms; %d commands)" % cmds,
            times[2] < 0.1)
    finally:
        sleeper.kill()
        sleeper.wait()
    # status and sessions of a large pool
    b.seatctl("pool", "set", "wide", "--floating", "200000", "--idle-timeout", "1h")
    b.fill_holders("wide", 100000, "w")
    secs, _ = b.seatctl("status", "wide")
    row("seatctl status of a pool with 100,000 holders", "%.0f" % (secs * 1000), "ms")
    secs, _ = b.seatctl("sessions", "wide")
    row("seatctl sessions of a pool with 100,000 sessions", "%.0f" % (secs * 1000), "ms")
    row("memory in the end", "%.1f" % ((b.r.info("memory")["used_memory"] - base) / 2**20),
        "MB")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    a = ap.parse_args()
    b = Bench(a.build)
    try:
        print("seat model (redis %s)" % b.r.info("server")["redis_version"])
        decision_rows(b)
        floor_rows(b)
        scale_rows(b)
        population_rows(b)
    finally:
        b.close()


if __name__ == "__main__":
    main()
