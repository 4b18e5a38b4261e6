"""Redis address forms of PRODUCT.md section 5, against real servers:
TCP with db, password (requirepass), ACL user, unix socket, Sentinel master
discovery, and the precedence --redis > $SEATGATE_REDIS > config file."""
import os
import subprocess
import time

import pytest
import redis

import helpers
from helpers import EX_OK, EX_BACKEND, EX_USAGE


def show(url, env=None):
    return helpers.run_seatctl(url, "pool", "show", "--json", env=env or helpers.seatctl_env("/dev/null"))


def make_pool(url, name="p1"):
    helpers.run_seatctl(url, "pool", "set", name, "--floating", "1",
                        env=helpers.seatctl_env("/dev/null"), check=EX_OK)


def test_db_number_selects_that_db(redis_server, rdb):
    make_pool(redis_server.url + "/3", "indb3")
    c3 = redis.Redis(port=redis_server.port, db=3, decode_responses=True)
    assert c3.exists("sg:{indb3}:conf") == 1
    assert rdb.exists("sg:{indb3}:conf") == 0
    assert "indb3" in show(redis_server.url + "/3").out
    assert "indb3" not in show(redis_server.url).out
    c3.flushdb()


def test_password_and_acl_user(tmp_path):
    with helpers.RedisServer(tmpdir=str(tmp_path)) as srv:
        srv.client().config_set("requirepass", "pw0")
        base = "127.0.0.1:%d" % srv.port
        assert show("redis://pw0@" + base).rc == EX_OK            # password only
        assert show("redis://default:pw0@" + base).rc == EX_OK    # ACL default user
        r = show("redis://" + base)                                # no password
        assert r.rc == EX_BACKEND and "NOAUTH" in r.err
        c = redis.Redis(port=srv.port, password="pw0", decode_responses=True)
        c.execute_command("ACL", "SETUSER", "seatgate", "on", ">s%40cret", "~sg:*",
                          "&seatgate:revoke", "+@all")
        # percent-encoded '@' in the password
        ok = helpers.run_seatctl("redis://seatgate:s%2540cret@" + base, "pool", "set", "acl",
                                 "--floating", "2", env=helpers.seatctl_env("/dev/null"))
        assert ok.rc == EX_OK, ok.err
        assert c.hget("sg:{acl}:conf", "floating") == "2"
        bad = show("redis://seatgate:wrong@" + base)
        assert bad.rc == EX_BACKEND
        assert "WRONGPASS" in bad.err and "wrong" not in bad.err.replace("WRONGPASS", "")


def test_unix_socket_with_db(tmp_path):
    sock = str(tmp_path / "r.sock")
    with helpers.RedisServer(extra_args=["--unixsocket", sock, "--unixsocketperm", "700"],
                             tmpdir=str(tmp_path)) as srv:
        make_pool("unix://%s?db=2" % sock, "sockpool")
        c2 = redis.Redis(port=srv.port, db=2, decode_responses=True)
        assert c2.exists("sg:{sockpool}:conf") == 1
        missing = show("unix://%s/nope.sock" % tmp_path)
        assert missing.rc == EX_BACKEND and missing.err.count("\n") == 1


def test_sentinel_finds_the_master(redis_server, rdb, tmp_path):
    port = helpers.free_port()
    conf = tmp_path / "sentinel.conf"
    conf.write_text("port %d\nbind 127.0.0.1\nsentinel monitor mymaster 127.0.0.1 %d 1\n"
                    % (port, redis_server.port))
    proc = subprocess.Popen([helpers.REDIS_SERVER, str(conf), "--sentinel"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=str(tmp_path))
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                if redis.Redis(port=port).ping():
                    break
            except redis.exceptions.RedisError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        url = "sentinel://127.0.0.1:%d,127.0.0.1:%d/mymaster" % (helpers.closed_port(), port)
        make_pool(url, "viasentinel")            # first sentinel is down: the second answers
        assert rdb.exists("sg:{viasentinel}:conf") == 1
        r = show("sentinel://127.0.0.1:%d/othermaster" % port)
        assert r.rc == EX_BACKEND and "othermaster" in r.err
    finally:
        proc.terminate()
        proc.wait(5)


def test_address_precedence(redis_server, rdb, tmp_path):
    make_pool(redis_server.url, "here")
    dead = "redis://127.0.0.1:%d" % helpers.closed_port()
    conf = tmp_path / "seatgate.conf"
    conf.write_text("redis = %s\n" % redis_server.url)
    env = helpers.seatctl_env(str(conf))
    # config file used when nothing else is given
    r = helpers.run_seatctl(None, "pool", "show", env=env, redis_opt=False)
    assert r.rc == EX_OK and "here" in r.out
    # $SEATGATE_REDIS beats the config file
    env2 = dict(env, SEATGATE_REDIS=dead)
    assert helpers.run_seatctl(None, "pool", "show", env=env2, redis_opt=False).rc == EX_BACKEND
    # --redis beats both
    r = helpers.run_seatctl(redis_server.url, "pool", "show", env=env2)
    assert r.rc == EX_OK and "here" in r.out
    # a bad config file is an input error
    conf.write_text("redis = ftp://nope\n")
    assert helpers.run_seatctl(None, "pool", "show", env=env, redis_opt=False).rc == EX_USAGE


@pytest.mark.parametrize("url", ["http://x", "redis://", "redis://h:0", "redis://h:99999",
                                 "unix://relative.sock", "sentinel://h:1", "redis://h/x"])
def test_bad_url_is_usage_error(url):
    r = show(url)
    assert r.rc == EX_USAGE, (url, r)
