"""Redis unreachable or stalled: exit 3 with a one-line error, within about
the timeout."""
import json
import threading
import time

import pytest

import helpers
from helpers import EX_BACKEND, EX_OK


@pytest.fixture
def env(seatctl_conf):
    return helpers.seatctl_env(seatctl_conf)


def one_line(err):
    lines = [l for l in err.splitlines() if l.strip()]
    assert len(lines) == 1, "wanted a one-line error, got %r" % err
    return lines[0]


@pytest.mark.parametrize("args", [
    ("check", "p", "bob"),
    ("acquire", "p", "bob"),
    ("release", "p", "bob"),
    ("pool", "set", "p", "--floating", "1"),
    ("pool", "show"),
    ("assign", "p", "bob"),
    ("status",),
])
def test_closed_port_exits_3(env, args):
    url = "redis://127.0.0.1:%d" % helpers.closed_port()
    t0 = time.monotonic()
    rc, out, err = helpers.run_seatctl(url, *args, env=env)
    assert rc == EX_BACKEND, (rc, out, err)
    line = one_line(err)
    assert line.startswith("seatctl:") and "127.0.0.1" in line
    assert time.monotonic() - t0 < 2


def test_closed_port_json(env):
    url = "redis://127.0.0.1:%d" % helpers.closed_port()
    rc, out, err = helpers.run_seatctl(url, "--json", "check", "p", "bob", env=env)
    assert rc == EX_BACKEND
    assert json.loads(out)["result"] == "error_backend"


def test_redis_from_environment(env, redis_server, rdb, seatctl):
    seatctl("pool", "set", "p", "--floating", "1", check=EX_OK)
    e = dict(env, SEATGATE_REDIS=redis_server.url)
    rc, out, err = helpers.run_seatctl(None, "check", "p", "bob", env=e, redis_opt=False)
    assert rc == EX_OK, err
    e = dict(env, SEATGATE_REDIS="redis://127.0.0.1:%d" % helpers.closed_port())
    rc, out, err = helpers.run_seatctl(None, "check", "p", "bob", env=e, redis_opt=False)
    assert rc == EX_BACKEND


@pytest.fixture(scope="module")
def stall_server(tmp_path_factory):
    srv = helpers.RedisServer(["--enable-debug-command", "yes"],
                              tmpdir=str(tmp_path_factory.mktemp("stall")))
    srv.start()
    yield srv
    srv.stop()


@pytest.mark.parametrize("args", [("acquire", "p", "bob"), ("check", "p", "bob"),
                                  ("pool", "set", "p", "--floating", "1"),
                                  ("release", "p", "bob")])
def test_stopped_redis_exits_3_within_timeout(env, stall_server, args):
    stall_server.pause()
    try:
        t0 = time.monotonic()
        rc, out, err = helpers.run_seatctl(stall_server.url, "--timeout", "300", *args, env=env,
                                           timeout=20)
        elapsed = time.monotonic() - t0
    finally:
        stall_server.resume()
    assert rc == EX_BACKEND, (rc, out, err)
    one_line(err)
    assert elapsed < 2, "took %.2fs with --timeout 300" % elapsed


def test_sleeping_redis_exits_3_within_timeout(env, stall_server):
    c = stall_server.client()
    c.ping()
    t = threading.Thread(target=lambda: stall_server.client().execute_command("DEBUG", "SLEEP",
                                                                                "3"))
    t.start()
    try:
        time.sleep(0.2)  # let the DEBUG SLEEP start
        t0 = time.monotonic()
        rc, out, err = helpers.run_seatctl(stall_server.url, "--timeout", "300", "acquire", "p",
                                           "bob", env=env, timeout=20)
        elapsed = time.monotonic() - t0
    finally:
        t.join()
    assert rc == EX_BACKEND, (rc, out, err)
    one_line(err)
    assert elapsed < 2, "took %.2fs with --timeout 300" % elapsed
    # and it works again once Redis answers
    rc, out, err = helpers.run_seatctl(stall_server.url, "--timeout", "300", "pool", "show",
                                       env=env)
    assert rc == EX_OK, err
