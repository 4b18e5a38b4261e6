"""Fixtures for the seatgate integration tests.

- redis_server (session): a real redis-server on a free loopback port.
- rdb: a client (str replies) on a freshly FLUSHALLed Redis, one per test.
- seatctl(*args, check=None) -> (rc, stdout, stderr) against that Redis.
- seatctl_json(*args, check=None) -> (rc, parsed JSON, stderr), adds --json.
"""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

import helpers  # noqa: E402


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: takes more than a few seconds")


@pytest.fixture(scope="session")
def seatctl_bin():
    if not os.access(helpers.SEATCTL, os.X_OK):
        pytest.fail("%s not built (run make, or set SEATGATE_BUILD)" % helpers.SEATCTL)
    return helpers.SEATCTL


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    # the shipped ACL: every seatctl, nginx and PAM call of the suite runs as
    # the decision or the admin role (helpers.DECISION_COMMANDS)
    srv = helpers.RedisServer(tmpdir=str(tmp_path_factory.mktemp("redis")), acl=True)
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def seatctl_conf(tmp_path_factory):
    """An empty config file, so /etc/security/seatgate.conf never leaks in."""
    p = tmp_path_factory.mktemp("conf") / "seatgate.conf"
    p.write_text("# empty: the tests pass --redis\n")
    return str(p)


@pytest.fixture
def rdb(redis_server):
    c = redis_server.client()
    c.flushall()
    yield c
    c.close()


@pytest.fixture
def seatctl(redis_server, rdb, seatctl_bin, seatctl_conf):
    env = helpers.seatctl_env(seatctl_conf)

    def run(*args, check=None, **kw):
        kw.setdefault("env", env)
        return helpers.run_seatctl(redis_server.url_for(args), *args, check=check, **kw)

    return run


@pytest.fixture
def seatctl_json(redis_server, rdb, seatctl_bin, seatctl_conf):
    env = helpers.seatctl_env(seatctl_conf)

    def run(*args, check=None, **kw):
        kw.setdefault("env", env)
        return helpers.run_seatctl_json(redis_server.url_for(args), *args, check=check, **kw)

    return run
