"""nginx module: Redis failures. Fail closed / open, recovery without reload,
a stalled Redis never blocks the worker, a dead one is not hammered, and a
request that went away is never touched by its late reply."""
import socket
import threading
import time

import redis as redislib

import helpers
from helpers import EX_OK
from nginx_fixtures import SG_HEADER, nginx, own_redis, sg, wait_for  # noqa: F401

SERVERS = """
server {
    listen 127.0.0.1:{port};
    %(sg)s
    seatgate_user $http_x_user;

    location /app/ { seatgate tech; alias {prefix}/html/; }
    location /open/ { seatgate tech; seatgate_fail open; alias {prefix}/html/; }
    location /static/ { alias {prefix}/html/; }
    location = /metrics { seatgate_metrics; }
}
""" % {"sg": SG_HEADER}


def user(name):
    return {"X-User": name}


def make_pool(srv):
    srv.seatctl("pool", "set", "tech", "--named", "1", "--floating", "50", check=EX_OK)
    srv.seatctl("assign", "tech", "alice", check=EX_OK)


def timed_get(ng, path, name, **kw):
    t = time.monotonic()
    r = ng.get(path, headers=user(name), **kw)
    return r, time.monotonic() - t


def test_fail_closed_and_open_with_redis_stopped(own_redis, nginx):
    make_pool(own_redis)
    ng = nginx(SERVERS, redis_url=own_redis.url, timeout="1s")
    assert ng.get("/app/index.html", headers=user("bob")).status_code == 200
    own_redis.kill()
    # the link notices at once; no request waits for a dead Redis
    wait_for(lambda: "command link lost" in ng.log(), timeout=5)
    r, took = timed_get(ng, "/app/index.html", "carol")
    assert r.status_code == 503
    assert r.headers["X-Seatgate-Reason"] in ("backend_unavailable", "backend_timeout")
    assert int(r.headers["Retry-After"]) > 0
    assert sg(r)["result"] == "error_backend"
    assert "license service is unavailable" in r.text
    assert took < 0.5, took
    # fail open lets the request through, marked
    r = ng.get("/open/index.html", headers=user("carol"))
    assert r.status_code == 200 and r.text == "protected content\n"
    assert sg(r)["result"] == "error_backend"
    # a cached grant outlives the subscription by at most about a second
    time.sleep(1.2)
    assert ng.get("/app/index.html", headers=user("bob")).status_code == 503
    m = ng.metrics()
    assert m["seatgate_redis_up"] == 0
    assert m["seatgate_redis_errors_total"] >= 2
    assert m['seatgate_decisions_total{result="error_backend"}'] >= 3


def test_fail_closed_when_redis_is_down_from_the_start(own_redis, nginx):
    make_pool(own_redis)
    own_redis.kill()
    ng = nginx(SERVERS, redis_url=own_redis.url, timeout="1s")
    r, took = timed_get(ng, "/app/index.html", "alice")
    assert r.status_code == 503 and took < 1.5
    assert ng.get("/open/index.html", headers=user("alice")).status_code == 200
    assert ng.get("/static/index.html").status_code == 200


def test_recovery_after_redis_restart_without_reload(own_redis, nginx):
    make_pool(own_redis)
    ng = nginx(SERVERS, redis_url=own_redis.url, workers=2)
    workers = sorted(ng.worker_pids())
    assert ng.get("/app/index.html", headers=user("bob")).status_code == 200
    own_redis.kill()
    assert ng.get("/app/index.html", headers=user("carol")).status_code == 503
    own_redis.restart()
    make_pool(own_redis)  # a fresh, empty Redis: its script cache is empty too (NOSCRIPT)
    t = time.monotonic()
    ok = wait_for(lambda: ng.get("/app/index.html",
                                 headers=user("carol")).status_code == 200, timeout=10)
    assert ok, ng.tail()
    assert time.monotonic() - t < 5
    # every worker is back (requests spread over them), same processes
    for _ in range(10):
        assert ng.get("/app/index.html", headers=user("dave")).status_code == 200
    assert sorted(ng.worker_pids()) == workers
    assert "up again" in ng.log()
    assert ng.metrics()["seatgate_redis_up"] == 1


def test_a_missing_function_library_falls_back_to_scripts(own_redis, nginx):
    """Decisions run as FCALL of the library seatctl loaded; with the
    library and the script cache flushed they go on as EVALSHA/EVAL, and the
    worker's decision role never loads the library itself."""
    make_pool(own_redis)
    c = redislib.Redis(host="127.0.0.1", port=own_redis.port, decode_responses=True)
    assert len(c.function_list()) == 1      # loaded by seatctl pool set
    ng = nginx(SERVERS, redis_url=own_redis.url, workers=1, zone=None)
    c.config_resetstat()
    assert ng.get("/app/index.html", headers=user("bob")).status_code == 200
    st = c.info("commandstats")
    assert st["cmdstat_fcall"]["calls"] == 1 and "cmdstat_evalsha" not in st, st
    c.function_flush()
    c.script_flush()
    c.config_resetstat()
    for u in ("carol", "dave", "bob"):
        r = ng.get("/app/index.html", headers=user(u))
        assert r.status_code == 200 and sg(r)["result"] == "granted_floating", ng.tail()
    st = c.info("commandstats")
    assert st["cmdstat_fcall"]["calls"] == st["cmdstat_fcall"]["failed_calls"] == 1, st
    assert st["cmdstat_eval"]["calls"] == 1 and st["cmdstat_evalsha"]["calls"] == 3, st
    assert c.function_list() == []
    assert set(helpers.leases(c, "tech")) == {"bob", "carol", "dave"}
    c.close()


def test_stalled_redis_does_not_block_the_worker(own_redis, nginx):
    make_pool(own_redis)
    ng = nginx(SERVERS, redis_url=own_redis.url, workers=1, timeout="1s")
    assert ng.get("/app/index.html", headers=user("bob")).status_code == 200

    def stall():
        c = redislib.Redis(host="127.0.0.1", port=own_redis.port, socket_timeout=10)
        c.execute_command("DEBUG", "SLEEP", "2.5")

    staller = threading.Thread(target=stall)
    staller.start()
    time.sleep(0.2)

    results = {}

    def protected():
        results["protected"] = timed_get(ng, "/app/index.html", "carol")

    def impatient(i):
        # clients that give up while their reply is pending
        try:
            ng.get("/app/index.html", headers=user("gone%d" % i), timeout=0.15)
        except Exception:
            pass

    t = threading.Thread(target=protected)
    t.start()
    gone = [threading.Thread(target=impatient, args=(i,)) for i in range(5)]
    for g in gone:
        g.start()
    time.sleep(0.2)
    # the same (only) worker answers an unprotected location at once
    for _ in range(5):
        t0 = time.monotonic()
        r = ng.get("/static/index.html")
        took = time.monotonic() - t0
        assert r.status_code == 200 and took < 0.2, took
    t.join()
    for g in gone:
        g.join()
    r, took = results["protected"]
    assert r.status_code == 503, r.text
    assert r.headers["X-Seatgate-Reason"] == "backend_timeout"
    assert 0.8 < took < 2.0, took
    staller.join()
    # Redis is back: the late replies were absorbed, the worker is fine
    assert wait_for(lambda: ng.get("/app/index.html",
                                   headers=user("carol")).status_code == 200, timeout=8)
    assert ng.metrics()["seatgate_redis_timeouts_total"] >= 1


def test_frozen_redis_is_detected_and_recovered(own_redis, nginx):
    make_pool(own_redis)
    ng = nginx(SERVERS, redis_url=own_redis.url, timeout="300ms")
    assert ng.get("/app/index.html", headers=user("bob")).status_code == 200
    own_redis.pause()  # SIGSTOP: connections accepted by the kernel, no answer
    try:
        r, took = timed_get(ng, "/app/index.html", "carol")
        assert r.status_code == 503 and took < 1.0, took
        # the link is declared dead and dropped, requests fail fast meanwhile
        assert wait_for(lambda: "no reply for" in ng.log(), timeout=5), ng.tail()
        for _ in range(5):
            r, took = timed_get(ng, "/app/index.html", "carol")
            assert r.status_code == 503 and took < 0.5, took
    finally:
        own_redis.resume()
    assert wait_for(lambda: ng.get("/app/index.html",
                                   headers=user("carol")).status_code == 200, timeout=10)


def test_dead_redis_is_not_hammered(nginx):
    """A 'Redis' that accepts and hangs up: connect attempts back off, and no
    request makes its own connection."""
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(128)
    port = lsock.getsockname()[1]
    accepted = []
    stop = threading.Event()

    def accept_loop():
        lsock.settimeout(0.1)
        while not stop.is_set():
            try:
                c, _ = lsock.accept()
            except socket.timeout:
                continue
            accepted.append(time.monotonic())
            c.close()

    th = threading.Thread(target=accept_loop)
    th.start()
    try:
        ng = nginx(SERVERS, redis_url="redis://127.0.0.1:%d" % port, workers=1)
        t0 = time.monotonic()
        n = 0
        while time.monotonic() - t0 < 3.0:
            r = ng.get("/app/index.html", headers=user("u%d" % n))
            assert r.status_code == 503
            n += 1
        # two links (decisions, revocations), backoff 0.1 s doubling to 2 s
        assert n >= 50
        assert len(accepted) <= 16, (len(accepted), n)
    finally:
        stop.set()
        th.join()
        lsock.close()


def test_unix_socket_with_password_and_db(tmp_path, nginx):
    from nginx_fixtures import OwnRedis
    sock = str(tmp_path / "redis.sock")
    d = tmp_path / "r"
    d.mkdir()
    srv = OwnRedis(d, ["--unixsocket", sock, "--unixsocketperm", "777"]).start()
    try:
        srv.client().config_set("requirepass", "s3cret")
        url = "unix://%s?db=3&password=s3cret" % sock
        helpers.run_seatctl(url, "pool", "set", "tech", "--floating", "2", check=EX_OK)
        ng = nginx(SERVERS, redis_url=url)
        r = ng.get("/app/index.html", headers=user("bob"))
        assert r.status_code == 200 and sg(r)["result"] == "granted_floating"
        c = redislib.Redis(unix_socket_path=sock, password="s3cret", db=3,
                           decode_responses=True)
        assert c.zscore("sg:{tech}:leases", "bob") is not None
        # a wrong password is a clear error in the log, and fail closed
        ng2 = nginx(SERVERS, redis_url="unix://%s?password=wrong" % sock)
        r = ng2.get("/app/index.html", headers=user("bob"))
        assert r.status_code == 503
        assert wait_for(lambda: "AUTH failed" in ng2.log()), ng2.tail()
    finally:
        srv.stop()


def test_concurrent_misses_share_one_redis_call(own_redis, nginx):
    """issue 10 finding 3 (single flight): requests of one user and pool
    that miss the cache while the question is on its way to Redis share
    that one call and get its answer (counted in Redis)."""
    make_pool(own_redis)
    ng = nginx(SERVERS, redis_url=own_redis.url, workers=1, timeout="3s", zone=None)
    assert ng.get("/app/index.html", headers=user("bob")).status_code == 200  # connected
    c = redislib.Redis(host="127.0.0.1", port=own_redis.port, decode_responses=True)

    def scripts():
        st = c.info("commandstats")
        return sum(st.get(k, {}).get("calls", 0) for k in ("cmdstat_fcall", "cmdstat_evalsha", "cmdstat_eval"))

    before = scripts()

    def stall():
        redislib.Redis(host="127.0.0.1", port=own_redis.port,
                       socket_timeout=10).execute_command("DEBUG", "SLEEP", "0.5")

    staller = threading.Thread(target=stall)
    staller.start()
    time.sleep(0.1)
    results = []

    def one():
        results.append(ng.get("/app/index.html", headers=user("carol")).status_code)

    threads = [threading.Thread(target=one) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    staller.join(10)
    assert results == [200] * 8
    assert scripts() - before == 1
