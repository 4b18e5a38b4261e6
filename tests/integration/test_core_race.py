"""Never oversell: many separate seatctl processes race for the seats of one
pool; each round exactly the capacity is granted and Redis holds exactly that
many leases. Named users are granted every time while floating is full."""
import subprocess
import tempfile
import time

import pytest

import helpers
from helpers import EX_DENIED, EX_OK, leases

ROUNDS = 10
RACERS = 200
FLOATING = 20
NAMED = 5


def spawn(url, env, args):
    # stderr to a file, not a pipe: 200 pipes nobody reads could block
    err = tempfile.TemporaryFile()
    p = subprocess.Popen([helpers.SEATCTL, "--redis", url] + list(args),
                         stdout=subprocess.DEVNULL, stderr=err, env=env)
    return p, err


def collect(procs):
    rcs = []
    for p, err in procs:
        rc = p.wait(60)
        if rc not in (EX_OK, EX_DENIED):
            err.seek(0)
            raise AssertionError("seatctl exited %d: %s" % (rc, err.read().decode()))
        err.close()
        rcs.append(rc)
    return rcs


@pytest.mark.slow
def test_never_oversell(redis_server, seatctl, rdb, seatctl_conf):
    env = helpers.seatctl_env(seatctl_conf)
    named = ["named%d" % i for i in range(NAMED)]
    for rnd in range(ROUNDS):
        seatctl("pool", "set", "p", "--named", str(NAMED), "--floating", str(FLOATING),
                check=EX_OK)
        seatctl("assign", "p", *named, check=EX_OK)
        users = ["r%d-u%03d" % (rnd, i) for i in range(RACERS)]
        # Even rounds: Redis is stopped while every process connects and sends,
        # then all requests land at once. Odd rounds: free-running.
        burst = rnd % 2 == 0
        if burst:
            redis_server.pause()
        try:
            procs = [spawn(redis_server.url, env, ("--timeout", "30000", "acquire", "p", u))
                     for u in users]
            # named users race too, in the middle of the crowd
            named_procs = [spawn(redis_server.url, env,
                                 ("--timeout", "30000", "acquire", "p", u, "--session",
                                  "r%d" % rnd))
                           for u in named]
            if burst:
                time.sleep(0.2)
        finally:
            if burst:
                redis_server.resume()
        rcs = collect(procs)
        nrcs = collect(named_procs)
        granted = sum(1 for rc in rcs if rc == EX_OK)
        assert granted == FLOATING, "round %d: %d floating grants for %d seats" % (
            rnd, granted, FLOATING)
        held = leases(rdb, "p")
        assert len(held) == FLOATING, "round %d: %d leases in Redis" % (rnd, len(held))
        winners = {u for u, rc in zip(users, rcs) if rc == EX_OK}
        assert set(held) == winners, "round %d: leases do not match the grants" % rnd
        assert nrcs == [EX_OK] * NAMED, "round %d: a named user was denied" % rnd
        # floating is full: named users still get in, others not
        for u in named[:2]:
            seatctl("acquire", "p", u, check=EX_OK)
        seatctl("acquire", "p", "late-%d" % rnd, check=EX_DENIED)
        if rnd % 2:
            seatctl("pool", "delete", "p", check=EX_OK)
        else:
            # release every winner through the CLI, concurrently
            procs = [spawn(redis_server.url, env, ("release", "p", u)) for u in winners]
            assert collect(procs) == [EX_OK] * len(winners)
            assert leases(rdb, "p") == {}
