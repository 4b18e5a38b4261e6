"""nginx module: Redis through Sentinel, following a failover without a
reload."""
import subprocess
import time

import pytest
import redis as redislib

import helpers
from helpers import EX_OK
from nginx_fixtures import SG_HEADER, OwnRedis, nginx, sg, wait_for  # noqa: F401

SERVERS = """
server {
    listen 127.0.0.1:{port};
    %(sg)s
    seatgate_user $http_x_user;
    location /app/ { seatgate tech; alias {prefix}/html/; }
}
""" % {"sg": SG_HEADER}


def start_sentinel(tmp_path, master_port):
    port = helpers.free_port()
    conf = tmp_path / "sentinel.conf"
    conf.write_text("port %d\nbind 127.0.0.1\ndir %s\n"
                    "sentinel monitor mymaster 127.0.0.1 %d 1\n"
                    "sentinel down-after-milliseconds mymaster 1000\n"
                    "sentinel failover-timeout mymaster 10000\n" % (port, tmp_path, master_port))
    proc = subprocess.Popen([helpers.REDIS_SERVER, str(conf), "--sentinel"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            cwd=str(tmp_path))
    c = redislib.Redis(port=port, decode_responses=True)
    assert wait_for(lambda: _ping(c), timeout=10)
    return proc, c, port


def _ping(c):
    try:
        return c.ping()
    except redislib.exceptions.RedisError:
        return False


@pytest.mark.slow
def test_sentinel_and_failover(tmp_path, nginx):
    (tmp_path / "m").mkdir()
    (tmp_path / "r").mkdir()
    (tmp_path / "s").mkdir()
    master = OwnRedis(tmp_path / "m").start()
    replica = OwnRedis(tmp_path / "r", ["--replicaof", "127.0.0.1", "0"])
    replica.extra_args[-1] = str(master.port)
    replica.start()
    proc = None
    try:
        assert wait_for(lambda: replica.client().info("replication")
                        ["master_link_status"] == "up", timeout=10)
        master.seatctl("pool", "set", "tech", "--floating", "5", check=EX_OK)
        proc, s, sport = start_sentinel(tmp_path / "s", master.port)
        assert wait_for(lambda: len(s.execute_command("SENTINEL", "REPLICAS", "mymaster")) == 1,
                        timeout=15)
        url = "sentinel://127.0.0.1:%d,127.0.0.1:%d/mymaster" % (helpers.closed_port(), sport)
        ng = nginx(SERVERS, redis_url=url, timeout="500ms")
        r = ng.get("/app/index.html", headers={"X-User": "bob"})
        assert r.status_code == 200, (r.text, ng.tail())
        assert sg(r)["result"] == "granted_floating"
        # failover: the replica becomes the master, the old master a replica
        s.execute_command("SENTINEL", "FAILOVER", "mymaster")
        assert wait_for(lambda: s.execute_command(
            "SENTINEL", "GET-MASTER-ADDR-BY-NAME", "mymaster")[1] == str(replica.port),
            timeout=15)
        # until sentinel demotes the old master, it still takes writes (Redis's
        # own failover window); once demoted, its clients are disconnected,
        # this test's own polling client among them (then it asks again)
        def demoted():
            try:
                return master.client().info("replication")["role"] == "slave"
            except redislib.exceptions.ConnectionError:
                return False
        assert wait_for(demoted, timeout=30)
        assert wait_for(lambda: ng.get("/app/index.html",
                                       headers={"X-User": "carol"}).status_code == 200,
                        timeout=15), ng.tail()
        # the seat went to the new master
        now = int(time.time() * 1000)
        holders = replica.client().zrangebyscore("sg:{tech}:leases", now, "+inf")
        assert "carol" in holders
        assert "master is 127.0.0.1:%d" % replica.port in ng.log()
    finally:
        if proc:
            proc.terminate()
            proc.wait(5)
        replica.stop()
        master.stop()
