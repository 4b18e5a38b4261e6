"""nginx module: reloads. The shared zones are reused, old workers leave
cleanly (their Redis links and timers do not hold them), new ones reconnect."""
import time

from helpers import EX_OK, leases
from nginx_fixtures import SG_HEADER, nginx, sg  # noqa: F401

SERVERS = """
server {
    listen 127.0.0.1:{port};
    %(sg)s
    seatgate_user $http_x_user;
    location /app/ { seatgate tech; alias {prefix}/html/; }
    location = /metrics { seatgate_metrics; }
    %(more)s
}
"""


def servers(more=""):
    return SERVERS % {"sg": SG_HEADER, "more": more}


def get(ng, name, path="/app/index.html"):
    return ng.get(path, headers={"X-User": name})


def test_reload_reuses_zones_and_reconnects(seatctl, rdb, nginx):
    seatctl("pool", "set", "tech", "--named", "1", "--floating", "3", check=EX_OK)
    seatctl("pool", "set", "other", "--floating", "1", check=EX_OK)
    seatctl("assign", "tech", "alice", check=EX_OK)
    ng = nginx(servers(), workers=2, zone="sg:1m ttl=5m")
    assert get(ng, "alice").status_code == 200
    assert get(ng, "bob").status_code == 200
    before = ng.metrics()
    # reload with one more pool
    ng.servers = servers("location /other/ { seatgate other; alias {prefix}/html/; }")
    ng.reload()
    # a grant cached before the reload is served while the new workers' revocation
    # subscriptions could not have missed anything (about a second), then asked again
    r = get(ng, "alice")
    assert r.status_code == 200
    after = ng.metrics()
    # counters live in shared memory: the reload kept them
    assert (after['seatgate_decisions_total{result="granted_named"}']
            >= before['seatgate_decisions_total{result="granted_named"}'] + 1)
    assert after["seatgate_cache_misses_total"] >= before["seatgate_cache_misses_total"]
    # the new pool works and has its metrics
    assert get(ng, "carol", "/other/index.html").status_code == 200
    assert get(ng, "dave", "/other/index.html").status_code == 503
    m = ng.metrics()
    assert m['seatgate_seats_in_use{pool="other"}'] == 1
    assert m['seatgate_pool_decisions_total{pool="other",result="denied_exhausted"}'] == 1
    # revocation still reaches the new workers
    for _ in range(4):
        assert get(ng, "bob").status_code == 200
    seatctl("user", "set", "bob", "--disabled", check=EX_OK)
    time.sleep(0.3)
    for _ in range(6):
        assert get(ng, "bob").status_code == 403
    assert set(leases(rdb, "tech")) == set()
    assert "open socket" not in ng.log()


def test_reload_with_a_resized_zone(seatctl, nginx):
    seatctl("pool", "set", "tech", "--floating", "3", check=EX_OK)
    ng = nginx(servers(), zone="sg:1m")
    assert get(ng, "bob").status_code == 200
    ng.zone = "sg:2m ttl=1m"
    ng.reload()
    r = get(ng, "bob")
    assert r.status_code == 200 and sg(r)["cache"] == "MISS"
    assert sg(get(ng, "bob"))["cache"] == "HIT"
