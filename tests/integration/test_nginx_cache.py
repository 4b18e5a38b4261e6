"""nginx module: the shared decision cache, background lease renewal, and
revocation reaching every worker of every instance within about a second."""
import os
import time

from helpers import EX_OK, leases
from nginx_fixtures import SG_HEADER, nginx, own_redis, sg, wait_for  # noqa: F401

SERVERS = """
server {
    listen 127.0.0.1:{port};
    %(sg)s
    seatgate_user $http_x_user;
    location /app/ { seatgate tech; alias {prefix}/html/; }
    location /cmdb/ { seatgate tech; seatgate_feature cmdb; alias {prefix}/html/; }
    location = /metrics { seatgate_metrics; }
}
""" % {"sg": SG_HEADER}

BOUND = 1.0  # the documented revocation bound, seconds


def get(ng, name, path="/app/index.html"):
    return ng.get(path, headers={"X-User": name})


def time_until(pred, timeout=5.0, interval=0.02):
    """Seconds until pred() holds (None if it never did)."""
    t = time.monotonic()
    while time.monotonic() - t < timeout:
        if pred():
            return time.monotonic() - t
        time.sleep(interval)
    return None


def test_a_seat_holder_costs_no_round_trip_per_request(seatctl, nginx):
    seatctl("pool", "set", "tech", "--named", "1", "--floating", "5", check=EX_OK)
    seatctl("assign", "tech", "alice", check=EX_OK)
    ng = nginx(SERVERS, workers=2)
    assert sg(get(ng, "alice"))["cache"] == "MISS"
    assert sg(get(ng, "bob"))["cache"] == "MISS"
    before = ng.metrics()
    for _ in range(30):
        for u in ("alice", "bob"):
            r = get(ng, u)
            assert r.status_code == 200 and sg(r)["cache"] == "HIT"
    after = ng.metrics()
    # the zone is shared: whichever worker answers, it is a hit
    assert after["seatgate_cache_hits_total"] - before["seatgate_cache_hits_total"] == 60
    assert after["seatgate_cache_misses_total"] == before["seatgate_cache_misses_total"]
    # no decision went to Redis (only the scrape's own read-only probe)
    assert (after["seatgate_redis_commands_total"]
            - before["seatgate_redis_commands_total"]) <= 1
    # denials are cached briefly (deny_ttl, 2 s by default)
    seatctl("pool", "set", "tech", "--floating", "1", check=EX_OK)
    assert get(ng, "carol").status_code == 503
    r = get(ng, "carol")
    assert r.status_code == 503 and sg(r)["cache"] == "HIT"
    assert r.headers["X-Seatgate-Reason"] == "all_floating_in_use"


def test_leases_are_renewed_in_the_background_of_traffic(seatctl, rdb, nginx):
    seatctl("pool", "set", "tech", "--floating", "2", "--idle-timeout", "2s", check=EX_OK)
    ng = nginx(SERVERS, zone="sg:1m ttl=30s")
    assert get(ng, "bob").status_code == 200
    first = leases(rdb, "tech")["bob"]
    before = ng.metrics()
    t = time.monotonic()
    n = 0
    while time.monotonic() - t < 4.5:
        r = get(ng, "bob")
        assert r.status_code == 200 and sg(r)["cache"] == "HIT", sg(r)
        n += 1
        time.sleep(0.05)
    after = ng.metrics()
    # the lease (2 s) was kept alive far beyond its length, by a few renewals
    assert leases(rdb, "tech")["bob"] > first + 3000
    renewals = after["seatgate_lease_renewals_total"] - before["seatgate_lease_renewals_total"]
    assert 3 <= renewals <= 8, renewals
    assert n > 40
    # once traffic stops the lease runs out by itself: the seat is free again
    assert wait_for(lambda: "bob" not in leases(rdb, "tech"), timeout=4)


def test_unassign_reaches_every_worker_of_every_instance(seatctl, nginx):
    seatctl("pool", "set", "tech", "--named", "2", check=EX_OK)
    seatctl("assign", "tech", "alice", check=EX_OK)
    instances = [nginx(SERVERS, workers=2, zone="sg%d:1m ttl=5m" % i) for i in range(2)]
    for ng in instances:
        for _ in range(6):  # warm the cache from every worker
            r = get(ng, "alice")
            assert r.status_code == 200
        assert sg(get(ng, "alice"))["cache"] == "HIT"
    seatctl("unassign", "tech", "alice", check=EX_OK)
    t = time.monotonic()
    for ng in instances:
        took = time_until(lambda: all(get(ng, "alice").status_code == 403 for _ in range(4)))
        assert took is not None
    assert time.monotonic() - t < BOUND
    # and it stays revoked, whichever worker answers
    for ng in instances:
        for _ in range(8):
            assert get(ng, "alice").status_code == 403


def test_release_disable_and_pool_change_revoke(seatctl, rdb, nginx):
    seatctl("pool", "set", "tech", "--floating", "3", check=EX_OK)
    ng = nginx(SERVERS, zone="sg:1m ttl=5m")
    assert get(ng, "bob").status_code == 200
    assert sg(get(ng, "bob"))["cache"] == "HIT"
    # an admin force release: the cached grant goes, the next request asks again
    seatctl("release", "tech", "bob", check=EX_OK)
    assert time_until(lambda: sg(get(ng, "bob"))["cache"] == "MISS") < BOUND
    assert "bob" in leases(rdb, "tech")
    # disabling the user
    assert sg(get(ng, "bob"))["cache"] == "HIT"
    seatctl("user", "set", "bob", "--disabled", check=EX_OK)
    assert time_until(lambda: get(ng, "bob").status_code == 403) < BOUND
    assert sg(get(ng, "bob"))["result"] == "denied_disabled"
    # a pool change drops the whole pool
    assert get(ng, "carol").status_code == 200
    assert sg(get(ng, "carol"))["cache"] == "HIT"
    seatctl("pool", "set", "tech", "--exclude", "contractors", check=EX_OK)
    assert time_until(lambda: sg(get(ng, "carol"))["cache"] == "MISS") < BOUND


def test_revocation_bound_holds_without_pub_sub(own_redis, nginx):
    """An ACL user that may not SUBSCRIBE: no revocation messages arrive, so
    cached grants live at most about a second."""
    c = own_redis.client()
    c.execute_command("ACL", "SETUSER", "ngx", "on", ">ngx-secret", "~*", "&*", "+@all",
                      "-subscribe", "-psubscribe", "-ssubscribe")
    own_redis.seatctl("pool", "set", "tech", "--named", "1", check=EX_OK)
    own_redis.seatctl("assign", "tech", "alice", check=EX_OK)
    ng = nginx(SERVERS, redis_url="redis://ngx:ngx-secret@127.0.0.1:%d" % own_redis.port,
               zone="sg:1m ttl=5m")
    assert get(ng, "alice").status_code == 200
    assert sg(get(ng, "alice"))["cache"] == "HIT"  # still cached, briefly
    assert ng.metrics()["seatgate_revocation_subscription_up"] == 0
    own_redis.seatctl("unassign", "tech", "alice", check=EX_OK)
    t = time.monotonic()
    assert time_until(lambda: get(ng, "alice").status_code == 403, timeout=3) is not None
    assert time.monotonic() - t < BOUND + 0.2
    # the AUTH with an ACL user worked for the decisions themselves
    assert "NOPERM" in ng.log() or "subscriber link lost" in ng.log()


def test_feature_change_reaches_cached_grants(seatctl, nginx):
    seatctl("pool", "set", "tech", "--named", "1", "--features", "cmdb", check=EX_OK)
    seatctl("assign", "tech", "alice", check=EX_OK)
    ng = nginx(SERVERS, zone="sg:1m ttl=5m")
    assert get(ng, "alice", "/cmdb/index.html").status_code == 200
    assert sg(get(ng, "alice", "/cmdb/index.html"))["cache"] == "HIT"
    seatctl("pool", "set", "tech", "--features", "change-advanced", check=EX_OK)
    assert time_until(lambda: get(ng, "alice", "/cmdb/index.html").status_code == 403) < BOUND
    assert get(ng, "alice").status_code == 200


def test_a_full_zone_keeps_caching_and_says_so(seatctl, nginx):
    """issue 10 finding 7: in a full zone, entries of a size class the full
    pages do not hold were never cached, silently. Now the least recently
    used entries make room until the new one fits, and a zone that still
    cannot hold it is logged (rate-limited)."""
    seatctl("pool", "set", "tech", "--floating", "100000", "--idle-timeout", "1h", check=EX_OK)
    ng = nginx(SERVERS, zone="sgfull:32k")
    for i in range(400):                      # short names fill the zone
        assert get(ng, "u%d" % i).status_code == 200
    cached = 0
    for i in range(6):                        # a size class of its own
        name = "probe-%d-%s" % (i, "x" * 120)
        assert get(ng, name).status_code == 200
        cached += sg(get(ng, name))["cache"] == "HIT"
    assert cached == 6
    assert "is full" not in ng.log() or "seatgate zone \"sgfull\"" in ng.log()


def test_a_zone_that_cannot_make_room_says_so_once(seatctl, nginx):
    """issue 10: "a full zone logs (rate-limited), as limit_req does". When
    the least recently used entries are spread over the slab's pages,
    evicting the bounded number of them frees no page for an entry of a new
    size: that decision is answered uncached, and the zone says it is full,
    once a minute, with the count of what it could not cache."""
    seatctl("pool", "set", "tech", "--floating", "100000", "--idle-timeout", "1h", check=EX_OK)
    # how many entries of one size the zone holds (a first instance)
    ng = nginx(SERVERS, zone="sgtiny:256k")
    names = ["u%04d" % i for i in range(3000)]
    for n in names:
        get(ng, n)
    held = 0
    for n in reversed(names):
        if sg(get(ng, n))["cache"] != "HIT":
            break
        held += 1
    assert 200 < held < 2500, held
    ng.stop()
    # a fresh zone filled past that, so no page is free; then every other
    # live entry is read first, so the oldest are spread over all pages
    ng = nginx(SERVERS, zone="sgtiny:256k")
    names = names[:held + 200]
    for n in names:
        assert get(ng, n).status_code == 200
    live = names[-(held - 4):]
    for n in live[::2] + live[1::2]:
        get(ng, n)
    for i in range(2):                        # a size class of its own
        for _ in range(2):                    # answered, never cached
            r = get(ng, "probe-%d-%s" % (i, "x" * 200))
            assert r.status_code == 200 and sg(r)["result"] == "granted_floating"
            assert sg(r)["cache"] != "HIT"
    log = ng.log()
    full = [ln for ln in log.splitlines() if 'seatgate zone "sgtiny" is full' in ln]
    assert len(full) == 1, [ln for ln in log.splitlines() if "seatgate" in ln][-20:]
    assert "[warn]" in full[0] and "could not be cached" in full[0]


def test_negative_entries_go_when_a_seat_is_freed(seatctl, rdb, nginx):
    """issue 10 finding 3: a denial is cached (the flood of a refreshing
    user costs no Redis call) and dropped within a second of a seat freed
    anywhere in the pool, so the freed seat is usable at once."""
    seatctl("pool", "set", "tech", "--floating", "1", "--idle-timeout", "1h", check=EX_OK)
    seatctl("acquire", "tech", "alice", check=EX_OK)
    ng = nginx(SERVERS, zone="sg:1m deny_ttl=30s")
    assert get(ng, "bob").status_code == 503
    rdb.config_resetstat()
    for _ in range(20):
        r = get(ng, "bob")
        assert r.status_code == 503 and sg(r)["cache"] == "HIT"
        assert r.headers["Retry-After"].isdigit()
    st = rdb.info("commandstats")
    assert not {"cmdstat_fcall", "cmdstat_evalsha", "cmdstat_eval"} & set(st), st
    seatctl("release", "tech", "alice", check=EX_OK)     # elsewhere: seatctl
    t = time_until(lambda: get(ng, "bob").status_code == 200, timeout=3)
    assert t is not None and t < BOUND, t


def test_denials_not_cached_with_deny_ttl_0(seatctl, nginx):
    seatctl("pool", "set", "tech", "--floating", "0", check=EX_OK)
    ng = nginx(SERVERS, zone="sg:1m deny_ttl=0")
    assert get(ng, "bob").status_code == 403
    assert sg(get(ng, "bob"))["cache"] == "MISS"


def test_a_revocation_flood_does_not_stall_other_requests(seatctl, rdb, nginx, redis_server):
    """issue 10 finding 4: 5,000 revocations over 5,000 cached entries; an
    unrelated cached user's requests stay fast (revocation is O(1): counters,
    no walk of the zone under its lock)."""
    import gc
    import subprocess
    import sys

    import requests

    seatctl("pool", "set", "tech", "--floating", "20000", "--idle-timeout", "1h", check=EX_OK)
    ng = nginx(SERVERS, zone="sg:8m")
    s = requests.Session()
    url = ng.url("/app/index.html")
    for i in range(5000):
        assert s.get(url, headers={"X-User": "w%d" % i}, timeout=10).status_code == 200
    assert s.get(url, headers={"X-User": "steady"}, timeout=10).status_code == 200
    code = ("import redis\n"
            "r = redis.Redis(port=%d)\n"
            "p = r.pipeline(transaction=False)\n"
            "for i in range(5000): p.publish('seatgate:revoke', 'tech\\tw%%d' %% i)\n"
            "p.execute()\n" % redis_server.port)
    # ASan and UBSan slow every request down several times over. The bound
    # is a third of what a walk of the zone per message cost (~180 ms): a
    # loaded 2-core runner showed single requests of 35-38 ms without it
    bound = 0.150 if os.environ.get("SEATGATE_SANITIZE") == "1" else 0.060

    def flood():
        """The worst latency of the steady user's requests during a flood."""
        pub = subprocess.Popen([sys.executable, "-c", code])
        worst, n = 0.0, 0
        t_end = time.monotonic() + 1.5
        gc.disable()   # no client-side pause in the measurement
        try:
            while time.monotonic() < t_end or pub.poll() is None:
                t = time.monotonic()
                r = s.get(url, headers={"X-User": "steady"}, timeout=10)
                worst = max(worst, time.monotonic() - t)
                assert r.status_code == 200
                n += 1
        finally:
            gc.enable()
        assert pub.wait(10) == 0
        return worst, n

    # one spike of this machine's scheduler is forgiven: a second flood must
    # then stay under the bound (a walk of the zone per message took ~180 ms)
    worst, n = flood()
    if worst >= bound:
        worst, n = flood()
    assert worst < bound, (worst, n)
    # the revoked users' entries are stale: they ask Redis again
    assert sg(s.get(url, headers={"X-User": "w17"}))["cache"] == "MISS"
    assert sg(s.get(url, headers={"X-User": "steady"}))["cache"] == "HIT"
