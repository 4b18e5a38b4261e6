#!/usr/bin/python3
"""Instructions per decision, by version of the scripts: redis-server runs
under valgrind --tool=callgrind with instrumentation on only around each
batch of calls, so the count is the server's work for those calls alone and
repeats to the instruction (server time on a shared machine does not: runs
of the same code differ by 40%). Used to compare versions of common/lua.

usage: cg_decisions.py NAME=DIR[:eval] [NAME=DIR[:eval] ...]
       cg_decisions.py --scale
  --scale: the decisions of this build at 100 and at 100,000 holders and
  with reserve/cap/include rules (issue 9's "within 1.5x of each other"),
  counted in instructions, which server time on a shared machine cannot
  show reliably.
  DIR holds lib.lua and the scripts (common/lua, or an older one:
  mkdir /tmp/v && git archive REV common/lua | tar -x -C /tmp/v, then
  /tmp/v/common/lua). ":eval" calls the scripts with EVALSHA (lib.lua + the
  script, as the fallback does); otherwise DIR is made into a Function
  library by common/embed.sh and called with FCALL.
Env: CG_CALLS (300 calls a batch), SEATGATE_BUILD (build/, for seatctl).
Prints, per decision kind, thousands of instructions per call.
"""
import glob
import os
import re
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
from bench_model import LEAST  # noqa: E402

ORDER = ["decide", "release", "pool_commit", "pool_delete", "assign", "user_put",
         "user_apply", "fsck", "usage", "scim"]
N = int(os.environ.get("CG_CALLS", "300"))
SEATCTL = os.path.join(os.environ.get("SEATGATE_BUILD", os.path.join(ROOT, "build")), "seatctl")


def library(d, tmp):
    """(library text, hash) that common/embed.sh makes of the scripts in d."""
    out = os.path.join(tmp, "lib.c")
    subprocess.run(["sh", os.path.join(ROOT, "common", "embed.sh"), out,
                    os.path.join(d, "lib.lua")] + [os.path.join(d, n + ".lua") for n in ORDER],
                   check=True)
    src = open(out).read()
    i = src.index("static const char library[] =")
    body = src[i:src.index("    ;", i)]
    lines = re.findall(r'^    "(.*)\\n"$', body, re.M)
    txt = "\n".join(ln.replace('\\"', '"').replace("\\\\", "\\") for ln in lines) + "\n"
    return txt, re.search(r"name=seatgate_([0-9a-f]+)", txt).group(1)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def batches():
    users = ["u%d" % i for i in range(N)]
    k, _ = helpers.decide_call("t", "x")

    def pam(u, i, op="acquire"):
        return helpers.decide_call("t", u, op=op, session="pam-h-%d" % i if op != "check" else "",
                                   via="pam", host="h", pid=i, pstart=2, lease=43200)
    return [
        ("named renewal", "decide", [helpers.decide_call("t", "nm")] * N),
        ("PAM account check", "decide", [pam(u, i, "check") for i, u in enumerate(users)]),
        ("PAM session open", "decide", [pam(u, i) for i, u in enumerate(users)]),
        ("PAM session renewal", "decide", [pam(u, i) for i, u in enumerate(users)]),
        ("portal grant", "decide", [helpers.decide_call("t", "w" + u, via="nginx", host="h")
                                    for u in users]),
        ("portal renewal", "decide", [helpers.decide_call("t", "w" + u, via="nginx", host="h")
                                      for u in users]),
        ("PAM session close", "release",
         [(k, ["pool", "t", "user", u, "session", "pam-h-%d" % i, "via", "pam", "host", "h"])
          for i, u in enumerate(users)]),
    ]


class Grind:
    """redis-server under callgrind, instrumentation off but around batches."""

    def __init__(self):
        self.tmp = tempfile.mkdtemp(prefix="sg-cg-")
        self.port = free_port()
        self.proc = subprocess.Popen(
            ["valgrind", "--tool=callgrind", "--instr-atstart=no",
             "--callgrind-out-file=%s/cg.%%p" % self.tmp, "redis-server", "--port",
             str(self.port), "--save", "", "--appendonly", "no", "--dir", self.tmp]
            + os.environ.get("CG_REDIS_ARGS", "").split(),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.r = redis.Redis(port=self.port, decode_responses=True)
        for _ in range(300):
            try:
                self.r.ping()
                break
            except redis.exceptions.ConnectionError:
                time.sleep(0.1)
        self.url = "redis://127.0.0.1:%d" % self.port

    def seatctl(self, *args, stdin=None):
        subprocess.run([SEATCTL, "--redis", self.url, "--timeout", "60000"] + list(args),
                       input=stdin, check=True, stdout=subprocess.DEVNULL)

    def ctl(self, *a):
        subprocess.run(["callgrind_control"] + list(a) + [str(self.proc.pid)],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)

    def run(self, cmd, name, calls, measure=True):
        """k instructions per call of the batch (None when not measured)."""
        if measure:
            self.ctl("-z")
            self.ctl("-i", "on")
        out = []
        for i in range(0, len(calls), 2000):
            p = self.r.pipeline(transaction=False)
            for keys, args in calls[i:i + 2000]:
                p.execute_command(cmd, name, len(keys), *(keys + args))
            out += p.execute()
        for x in out:
            assert not isinstance(x, Exception), x
        if not measure:
            return None, out
        self.ctl("-i", "off")
        before = set(glob.glob(self.tmp + "/cg.*"))
        self.ctl("-d")
        total = None
        for _ in range(50):
            for f in sorted(set(glob.glob(self.tmp + "/cg.*")) - before):
                for ln in open(f):
                    if ln.startswith(("summary:", "totals:")):
                        total = int(ln.split()[1])
            if total is not None:
                break
            time.sleep(0.1)
        return total / len(calls) / 1000.0, out

    def close(self):
        try:
            self.r.execute_command("SHUTDOWN", "NOSAVE")
        except redis.exceptions.ConnectionError:
            pass
        self.proc.wait()
        shutil.rmtree(self.tmp, ignore_errors=True)


def scale():
    """Issue 9: the same decisions at 100 and 100,000 holders and with rules."""
    big = int(os.environ.get("CG_HOLDERS", "100000"))
    g = Grind()
    try:
        g.seatctl("pool", "set", "cg-load", "--floating", "1")   # loads the library
        libs = [dict(zip(x[::2], x[1::2]))["library_name"] for x in g.r.function_list()]
        fn = "sg_%s_decide" % [n for n in libs if n.startswith("seatgate_")][0][9:]
        pools = (("small", 100, ()), ("large", big, ()),
                 ("ruled", big, ("--reserve", "g1=10", "--cap", "g2=%d" % big,
                                 "--include", "g1", "--include", "g2", "--include", "all")))
        res = {}
        for pool, holders, rules in pools:
            g.seatctl("pool", "set", pool, "--named", "5", "--floating",
                      str(holders + 2 * N), "--idle-timeout", "1h", *rules)
            g.seatctl("assign", pool, "nm")
            if rules:  # everyone in group all; every tenth in g1 and g2
                lines = ["user,groups,disabled,service_account"]
                lines += ["%s%d,all%s,0,0" % (pool, i, ";g1;g2" if i % 10 == 0 else "")
                          for i in range(holders)]
                lines += ["n%s%d,all%s,0,0" % (pool, i, ";g2" if i % 2 else "")
                          for i in range(N)]
                lines += ["nm,all,0,0", "zz,all,0,0"]
                g.seatctl("user", "import", "-", stdin=("\n".join(lines) + "\n").encode())
            g.run("FCALL", fn, [helpers.decide_call(pool, "%s%d" % (pool, i), lease=3600)
                                for i in range(holders)], measure=False)
            res[(pool, 0)], _ = g.run("FCALL", fn, [helpers.decide_call(pool, "nm")] * N)
            res[(pool, 1)], out = g.run("FCALL", fn, [
                helpers.decide_call(pool, "%s%d" % (pool, (i * 7919) % holders))
                for i in range(N)])
            assert helpers.reply_dict(out[-1])["reason"] == "holds_seat", out[-1]
            res[(pool, 2)], out = g.run("FCALL", fn, [
                helpers.decide_call(pool, "n%s%d" % (pool, i)) for i in range(N)])
            assert helpers.reply_dict(out[-1])["result"] == "granted_floating", out[-1]
            g.seatctl("pool", "set", pool, "--floating", str(holders + N))
            res[(pool, 3)], out = g.run("FCALL", fn, [helpers.decide_call(pool, "zz")] * N)
            assert helpers.reply_dict(out[-1])["result"] == "denied_exhausted", out[-1]
        # issue 9's yardstick, in the same Redis: a trivial script, 1 key
        triv = g.r.script_load("return 1")
        trivial, _ = g.run("EVALSHA", triv, [(["sg:{small}:leases"], [])] * N)
        # the least each decision can send, whatever the schema (bench_model.py)
        g.r.hset("sg:{small}:least", mapping={"conf": g.r.hget("sg:{small}:conf", "hot"),
                                              "u": "00,a,b,", "n": "1"})
        least = []
        for label, bound, body in LEAST:
            k, _ = g.run("EVALSHA", g.r.script_load(body), [(["sg:{small}:least"], [])] * N)
            least.append((label, bound, k))
    finally:
        g.close()
    print("instructions per decision (redis-server under callgrind, %d calls a batch)" % N)
    print("%-44s %10s %10s %10s %10s" % ("", "named", "renewal", "grant", "denial"))
    for pool, holders, rules in pools:
        print("%-44s %9.1fk %9.1fk %9.1fk %9.1fk" % (
            "%s: %d holders%s" % (pool, holders, ", reserve+cap+include" if rules else ""),
            *(res[(pool, k)] for k in range(4))))
    print("%-44s %9.1fk" % ("trivial 'return 1' (EVALSHA, 1 key)", trivial))
    for k, (what, bound) in enumerate((("named renewal", 3), ("floating renewal", 3),
                                       ("new grant", 5), ("denial", 3))):
        worst = max(res[(p[0], k)] for p in pools)
        print("  %-42s %9.1fx  <= %dx %s" % (what + ": worst pool / trivial", worst / trivial,
                                             bound, "PASS" if worst <= bound * trivial
                                             else "FAIL"))
    print("the least a decision can send (no logic; settings, user and seat in one HMGET):")
    for label, bound, k in least:
        print("  %-48s %7.1fk %5.1fx  <= %dx %s" % (label, k, k / trivial, bound,
                                                   "PASS" if k <= bound * trivial else "FAIL"))
    ok = True
    for k, what in enumerate(("named renewal", "floating renewal", "new grant", "denial")):
        vals = [res[(p[0], k)] for p in pools]
        ratio = max(vals) / min(vals)
        ok &= ratio <= 1.5
        print("  %-42s %9.2fx  <= 1.5x %s" % (what + ": largest / smallest", ratio,
                                             "PASS" if ratio <= 1.5 else "FAIL"))
    return ok


def measure(name, spec):
    """k instructions per call of each batch, with the scripts in spec."""
    evalmode = spec.endswith(":eval")
    d = spec[:-5] if evalmode else spec
    g = Grind()
    out = {}
    try:
        if evalmode:
            lib = open(os.path.join(d, "lib.lua")).read()
            names = {s: g.r.script_load(lib + open(os.path.join(d, s + ".lua")).read())
                     for s in ("decide", "release")}
            cmd = "EVALSHA"
        else:
            txt, h = library(d, g.tmp)
            g.r.function_load(txt, replace=True)
            names = {s: "sg_%s_%s" % (h, s) for s in ("decide", "release")}
            cmd = "FCALL"
        g.seatctl("pool", "set", "t", "--named", "5", "--floating", "1000000",
                  "--idle-timeout", "1h")
        g.seatctl("assign", "t", "nm")
        for label, script, calls in batches():
            out[label], _ = g.run(cmd, names[script], calls)
    finally:
        g.close()
    return out


def main():
    if sys.argv[1:] == ["--scale"]:
        scale()
        return
    specs = [a.split("=", 1) for a in sys.argv[1:]]
    if not specs or any(len(s) != 2 for s in specs):
        sys.exit(__doc__)
    res = {name: measure(name, spec) for name, spec in specs}
    first = specs[0][0]
    print("%-22s" % "k instructions a call" + "".join("%16s" % n for n, _ in specs))
    for label, _, _ in batches():
        row = "%-22s" % label
        for n, _ in specs:
            v = res[n][label]
            row += "%16s" % ("%.1f" % v if n == first else
                             "%.1f (%+.0f%%)" % (v, 100 * (v / res[first][label] - 1)))
        print(row)


if __name__ == "__main__":
    main()
