#!/usr/bin/python3
"""make bench, usage record rows (issue 12): what recording usage adds to a
decision (two pools in one Redis, alike but for --usage-bucket off, server
time from INFO commandstats), and seatctl report over a year of records
(time and the report's peak memory), with the records' size per 1,000
users and month.

The year is written straight into Redis in the format of
docs/redis-schema.md (ua records appended and uc counters per pool and day,
one session a person and weekday), not replayed through decisions (that
would take hours): it measures reading and computing the report. Environment: BENCH_REPORT_POOLS (100), BENCH_REPORT_USERS (10000,
spread over the pools), BENCH_CALLS (3000 decisions per row).
"""
import os
import random
import subprocess
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "bench"))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))

import helpers  # noqa: E402
from bench_model import Bench, row  # noqa: E402

POOLS = int(os.environ.get("BENCH_REPORT_POOLS", "100"))
USERS = int(os.environ.get("BENCH_REPORT_USERS", "10000"))
CALLS = int(os.environ.get("BENCH_CALLS", "3000"))
DAY = 86400000
RELEASE = None


def pair_us(b, pool, n, prefix):
    """Server time of n new seats with a session (the decision), then of
    their release (where the session's span is written): (grant, release)."""
    global RELEASE
    if RELEASE is None:
        RELEASE = b.r.script_load(helpers.script_body("release"))
    out = []
    for step in ("grant", "release"):
        b.r.config_resetstat()
        for i in range(0, n, 500):
            p = b.r.pipeline(transaction=False)
            for k in range(i, min(n, i + 500)):
                user = "%s%d" % (prefix, k)
                if step == "grant":
                    keys, args = helpers.decide_call(pool, user, session="s")
                    p.evalsha(b.sha, len(keys), *(keys + args))
                else:
                    keys, _ = helpers.decide_call(pool, user)
                    p.evalsha(RELEASE, len(keys), *(keys + ["pool", pool, "user", user,
                                                            "session", "s", "via", "cli",
                                                            "host", "b"]))
            p.execute()
        out.append(b.r.info("commandstats")["cmdstat_evalsha"]["usec_per_call"])
    return out


def cost_rows(b, rounds=9):
    """Each row: the two pools measured back to back in each round (in
    turn, the order flipping every round), and the median of the per-round
    ratios (this machine's timing drifts by tens of percent within a run;
    pairing the two measurements of a round cancels most of it)."""
    print("usage recording: server time per decision, recording on vs off (target <= 1.10x; "
          "median of %d paired rounds)" % rounds)
    for pool, bucket in (("uon", "5m"), ("uoff", "off")):
        b.seatctl("pool", "set", pool, "--named", "5", "--floating", str(CALLS * 10),
                  "--idle-timeout", "1h", "--usage-bucket", bucket)
        b.seatctl("assign", pool, "nm")
        b.evalsha_us([helpers.decide_call(pool, "f%d" % i) for i in range(CALLS)])
    got = {}

    def pair(what, fn):
        for r in range(rounds):
            res = {}
            for pool in (("uon", "uoff") if r % 2 == 0 else ("uoff", "uon")):
                res[pool] = fn(pool, r)
            got.setdefault(what, []).append((res["uon"], res["uoff"]))

    pair("named renewal",
         lambda pool, r: b.evalsha_us([helpers.decide_call(pool, "nm")] * CALLS)[0])
    pair("floating renewal",
         lambda pool, r: b.evalsha_us([helpers.decide_call(pool, "f%d" % i)
                                       for i in range(CALLS)])[0])
    ends = {}

    def grant(pool, r):
        g, rel = pair_us(b, pool, CALLS // 3, "p%d_" % r)
        ends.setdefault(r, {})[pool] = rel
        return g

    pair("new floating seat with a session", grant)
    for pool in ("uon", "uoff"):     # a full pool: every call a denial
        b.seatctl("pool", "set", pool, "--floating", str(CALLS))
    pair("denial (all seats in use)",
         lambda pool, r: b.evalsha_us([helpers.decide_call(pool, "x%d" % (i % 50))
                                       for i in range(CALLS)])[0])
    got["session end (release; not a decision: where the span is written)"] = [
        (e["uon"], e["uoff"]) for _, e in sorted(ends.items())]
    for what, pairs in got.items():
        ratios = sorted(on / off for on, off in pairs)
        ons = sorted(on for on, _ in pairs)
        offs = sorted(off for _, off in pairs)
        k = len(pairs) // 2
        target = "session end" not in what
        row(what, "%.2f / %.2f" % (ons[k], offs[k]), "us",
            "%.2fx%s" % (ratios[k], " (target <= 1.10x)" if target else ""),
            ratios[k] <= 1.10 if target else None)


def write_year(b):
    """A year of weekday sessions: USERS spread over POOLS, each working a
    block of 4 to 9 hours most weekdays, in 5-minute buckets."""
    rnd = random.Random(12)
    now = int(time.time() * 1000)
    today = now // DAY
    per = max(1, USERS // POOLS)
    base = b.r.info("memory")["used_memory"]
    fields = 0
    for pi in range(POOLS):
        pool = "y%03d" % pi
        b.seatctl("pool", "set", pool, "--named", str(per // 5), "--floating", str(per // 2))
        b.r.sadd("sg:{%s}:named" % pool, *["u%d_%d" % (pi, k) for k in range(per // 5)])
        p = b.r.pipeline(transaction=False)
        for d in range(today - 365, today):
            if (d + 4) % 7 in (5, 6):          # 1970-01-01 was a Thursday
                continue
            recs = []
            for k in range(per):
                if rnd.random() < 0.15:
                    continue
                start = rnd.randrange(84, 120) * 300000      # 07:00 to 10:00
                length = rnd.randrange(48, 108) * 300000     # 4 to 9 hours
                recs.append("u%d_%d\t%d\t%d\t%s\n" % (pi, k, start,
                                                        min(DAY, start + length),
                                                        "n" if k < per // 5 else "f"))
            for rec in recs:                                 # as the scripts do
                p.append("sg:{%s}:ua:%d" % (pool, d), rec)
            p.hset("sg:{%s}:uc:%d" % (pool, d), mapping={"bs": 300, "g:100": len(recs),
                                                         "d:110:all_floating_in_use": 3})
            fields += len(recs)
        p.execute()
    used = b.r.info("memory")["used_memory"] - base
    return fields, used


def report_rows(b):
    print()
    print("seatctl report over a year: %d users in %d pools (weekdays, 5-minute buckets)"
          % (USERS, POOLS))
    t = time.monotonic()
    fields, used = write_year(b)
    row("records written (user-days)", "%d" % fields, "", "in %.0f s" % (time.monotonic() - t))
    months = 12
    row("usage records per 1,000 users and month", "%.2f" % (used / (USERS / 1000) / months
                                                             / 2**20), "MB",
        "(%.0f bytes per user-day)" % (used / fields))
    since = time.strftime("%Y-%m-%d", time.gmtime(time.time() - 366 * 86400))
    t = time.monotonic()
    p = subprocess.run(["/usr/bin/time", "-f", "%M", os.path.join(b.build, "seatctl"),
                        "--redis", b.url, "--timeout", "60000", "report", "--since", since,
                        "--format", "json", "--out", "/dev/null"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    secs = time.monotonic() - t
    if p.returncode != 0:
        raise RuntimeError("seatctl report: " + p.stderr)
    peak_kb = int(p.stderr.strip().splitlines()[-1])
    row("seatctl report, every pool, 366 days", "%.1f" % secs, "s",
        "%.0f ms per pool" % (secs * 1000 / POOLS))
    row("  its peak memory (maximum resident set)", "%.1f" % (peak_kb / 1024), "MB")
    t = time.monotonic()
    p = subprocess.run([os.path.join(b.build, "seatctl"), "--redis", b.url, "report", "--pool",
                        "y000", "--since", since, "--format", "html", "--out", "/dev/null"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    row("seatctl report --format html, one pool, 366 days", "%.0f" % (
        (time.monotonic() - t) * 1000), "ms")


def main():
    build = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build")
    b = Bench(build)
    try:
        cost_rows(b)
        report_rows(b)
    finally:
        b.close()


if __name__ == "__main__":
    main()
