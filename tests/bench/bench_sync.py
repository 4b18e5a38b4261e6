#!/usr/bin/python3
"""make bench, identity sync rows (issue 13): seatctl sync of an HR export
of BENCH_SYNC_PEOPLE (100,000) people through conf/sync-map.conf into a
local Redis: the first run (records, named seats, change log), its peak
memory, and a re-run of the same export (target: under 5 s, changing
nothing)."""
import os
import random
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "bench"))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))

from bench_model import Bench, row  # noqa: E402

PEOPLE = int(os.environ.get("BENCH_SYNC_PEOPLE", "100000"))


def sync(b, export):
    t = time.monotonic()
    p = subprocess.run(["/usr/bin/time", "-f", "%M", os.path.join(b.build, "seatctl"),
                        "--redis", b.url, "--timeout", "60000", "--json", "sync", "--from",
                        export, "--map", os.path.join(ROOT, "conf", "sync-map.conf")],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    secs = time.monotonic() - t
    if p.returncode != 0:
        raise RuntimeError("seatctl sync: " + p.stderr[-500:])
    return secs, int(p.stderr.strip().splitlines()[-1]), p.stdout


def main():
    build = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build")
    b = Bench(build)
    tmp = tempfile.mkdtemp(prefix="sg-bench-sync-")
    try:
        rnd = random.Random(3)
        jobs = ["ITSM-L1", "ITSM-L2", "ITSM-L3", "ITSM-LEAD", "HR-1"]
        export = os.path.join(tmp, "hr.csv")
        with open(export, "w") as f:
            f.write("login,employment_status,account_type,job_code,department,ad_groups\n")
            for i in range(PEOPLE):
                f.write("u%06d,%s,person,%s,IT,%s\n" % (
                    i, "active" if rnd.random() < 0.95 else "terminated", rnd.choice(jobs),
                    "CMDB-Admins;Staff" if rnd.random() < 0.1 else "Staff"))
        b.seatctl("pool", "set", "technicians", "--named", str(PEOPLE // 2), "--floating", "100")
        print("identity sync: %d people from CSV (conf/sync-map.conf)" % PEOPLE)
        secs, kb, _ = sync(b, export)
        row("seatctl sync, first run (records, seats, change log)", "%.1f" % secs, "s",
            "peak memory %.0f MB" % (kb / 1024))
        secs, kb, out = sync(b, export)
        quiet = '"records":[]' in out
        row("seatctl sync, the same export again", "%.2f" % secs, "s",
            "(target < 5 s, nothing changed: %s)" % ("yes" if quiet else "NO"), secs < 5 and quiet)
    finally:
        b.close()
        subprocess.run(["rm", "-rf", tmp])


if __name__ == "__main__":
    main()
