"""nginx module: seatgate_release (logout) and seatgate_metrics."""
import json
import re

import requests

from helpers import EX_OK, audit_entries, leases
from nginx_fixtures import SG_HEADER, nginx, own_redis, sg  # noqa: F401

SERVERS = """
server {
    listen 127.0.0.1:{port};
    auth_basic "seatgate";
    auth_basic_user_file {htpasswd};
    %(sg)s
    location /app/ { seatgate tech; alias {prefix}/html/; }
    location /other/ { seatgate other; alias {prefix}/html/; }
    location = /logout { seatgate_release tech; }
    location = /sso-logout {
        seatgate_release tech;
        proxy_set_header X-Seatgate-Result $seatgate_result;
        proxy_pass http://127.0.0.1:{backend}/goodbye;
    }
    location = /metrics { auth_basic off; seatgate_metrics; }
}
""" % {"sg": SG_HEADER}


def make_pools(seatctl):
    seatctl("pool", "set", "tech", "--named", "1", "--floating", "2", check=EX_OK)
    seatctl("pool", "set", "other", "--floating", "3", check=EX_OK)
    seatctl("assign", "tech", "alice", check=EX_OK)


def test_logout_frees_the_floating_seat(seatctl, rdb, nginx):
    make_pools(seatctl)
    ng = nginx(SERVERS)
    assert ng.get("/app/index.html", "bob").status_code == 200
    assert ng.get("/app/index.html", "carol").status_code == 200
    assert ng.get("/app/index.html", "dave").status_code == 503
    r = ng.get("/logout", "bob")
    assert r.status_code == 200
    assert r.headers["X-Seatgate-Reason"] == "seat_released"
    assert "Signed out" in r.text
    v = sg(r)
    assert (v["result"], v["reason"], v["user"], v["pool"]) == (
        "released", "seat_released", "bob", "tech")
    assert set(leases(rdb, "tech")) == {"carol"}
    ev = [e for e in audit_entries(rdb, "tech") if e["ev"] == "release"]
    assert ev and ev[-1]["user"] == "bob" and ev[-1]["via"] == "nginx"
    # the seat went to a colleague
    assert ng.get("/app/index.html", "dave").status_code == 200
    # bob's cached grant is gone too: he asks again (and finds the pool full)
    r = ng.get("/app/index.html", "bob")
    assert r.status_code == 503 and sg(r)["cache"] == "MISS"
    # logging out twice: nothing held; JSON for an API client
    r = ng.get("/logout", "bob", headers={"Accept": "application/json"})
    assert r.status_code == 200
    assert json.loads(r.text) == {"released": False, "pool": "tech", "reason": "nothing_held"}


def test_logout_of_a_named_user_closes_the_session(seatctl, rdb, nginx):
    make_pools(seatctl)
    ng = nginx(SERVERS)
    assert ng.get("/app/index.html", "alice").status_code == 200
    r = ng.get("/logout", "alice")
    assert r.status_code == 200 and r.headers["X-Seatgate-Reason"] == "session_closed"
    assert ng.get("/app/index.html", "alice").status_code == 200


def test_logout_needs_authentication(seatctl, rdb, nginx):
    make_pools(seatctl)
    ng = nginx(SERVERS)
    assert ng.get("/app/index.html", "bob").status_code == 200
    assert ng.get("/logout", "bob", password="wrong").status_code == 401
    assert ng.get("/logout").status_code == 401
    assert set(leases(rdb, "tech")) == {"bob"}


def test_logout_then_upstream(seatctl, rdb, nginx):
    make_pools(seatctl)
    ng = nginx(SERVERS)
    assert ng.get("/app/index.html", "bob").status_code == 200
    r = ng.get("/sso-logout", "bob")
    assert r.status_code == 200
    assert r.text.startswith("backend user= obo= result=released")
    assert "uri=/goodbye" in r.text
    assert leases(rdb, "tech") == {}


def test_logout_with_redis_down(own_redis, nginx):
    own_redis.seatctl("pool", "set", "tech", "--floating", "2", check=EX_OK)
    ng = nginx(SERVERS, redis_url=own_redis.url)
    assert ng.get("/app/index.html", "bob").status_code == 200
    own_redis.kill()
    r = ng.get("/logout", "bob")
    assert r.status_code == 503
    assert r.headers["X-Seatgate-Reason"] in ("backend_unavailable", "backend_timeout")
    # the upstream logout still happens; the lease runs out by itself
    r = ng.get("/sso-logout", "bob")
    assert r.status_code == 200 and "uri=/goodbye" in r.text


PROM_LINE = re.compile(r'^[a-z_]+(\{[a-z_]+="[^"]*"(,[a-z_]+="[^"]*")*\})? [0-9.e+-]+$')


def test_metrics(seatctl, rdb, nginx):
    make_pools(seatctl)
    ng = nginx(SERVERS, workers=2)
    assert ng.get("/app/index.html", "alice").status_code == 200
    assert ng.get("/app/index.html", "alice").status_code == 200  # cached
    assert ng.get("/app/index.html", "bob").status_code == 200
    assert ng.get("/app/index.html", "carol").status_code == 200
    assert ng.get("/app/index.html", "dave").status_code == 503
    assert ng.get("/other/index.html", "dave").status_code == 200
    assert ng.get("/logout", "carol").status_code == 200
    seatctl("acquire", "other", "erin", check=EX_OK)  # a seat taken elsewhere (PAM, CLI)

    r = requests.get(ng.url("/metrics"), timeout=10)
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    for line in r.text.splitlines():
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            continue
        assert PROM_LINE.match(line), line
    assert "# TYPE seatgate_decisions_total counter" in r.text
    assert "# TYPE seatgate_redis_latency_seconds histogram" in r.text

    m = ng.metrics()
    assert m['seatgate_decisions_total{result="granted_named"}'] == 2
    assert m['seatgate_decisions_total{result="granted_floating"}'] == 3
    assert m['seatgate_decisions_total{result="denied_exhausted"}'] == 1
    assert m['seatgate_pool_decisions_total{pool="tech",result="granted_named"}'] == 2
    assert m['seatgate_pool_decisions_total{pool="other",result="granted_floating"}'] == 1
    assert m["seatgate_cache_hits_total"] == 1
    assert m["seatgate_cache_misses_total"] == 5
    assert m["seatgate_releases_total"] == 1
    assert m["seatgate_redis_errors_total"] == 0
    # seats in use per pool, live from Redis: bob in tech; dave and erin in other
    assert m['seatgate_seats_in_use{pool="tech"}'] == 1
    assert m['seatgate_seats_in_use{pool="other"}'] == 2
    assert m['seatgate_seats_floating{pool="tech"}'] == 2
    assert m['seatgate_seats_named{pool="tech"}'] == 1
    assert m['seatgate_seats_capacity{pool="other"}'] == 3
    # latency histogram: cumulative buckets, count = +Inf bucket
    assert m['seatgate_redis_latency_seconds_bucket{le="+Inf"}'] == \
        m["seatgate_redis_latency_seconds_count"] >= 7
    assert m["seatgate_redis_latency_seconds_sum"] > 0
    assert m["seatgate_redis_up"] == 1
    assert m["seatgate_revocation_subscription_up"] == 1
    assert m["seatgate_revocations_total"] >= 1  # carol's logout, seen by each worker
    # a scrape never takes a seat
    assert set(leases(rdb, "other")) == {"dave", "erin"}
    seatctl("release", "other", "erin", check=EX_OK)
    assert ng.metrics()['seatgate_seats_in_use{pool="other"}'] == 1


def test_portal_logout_leaves_the_pam_session_and_its_seat(seatctl, rdb, nginx):
    """issue 10 finding 9: the portal logout ends the web session only; the
    same user's open console (PAM) session keeps the seat, which goes when
    that session ends."""
    make_pools(seatctl)
    ng = nginx(SERVERS)
    seatctl("acquire", "tech", "bob", "--session", "pam-host1-4242-99", "--lease", "1h",
            check=EX_OK)
    assert ng.get("/app/index.html", "bob").status_code == 200
    assert ng.get("/app/index.html", "carol").status_code == 200
    r = ng.get("/logout", "bob")
    assert r.status_code == 200
    assert r.headers["X-Seatgate-Reason"] == "session_closed"
    assert "your other sessions keep your seat" in r.text
    assert set(leases(rdb, "tech")) == {"bob", "carol"}
    members = rdb.zrange("sg:{tech}:sess", 0, -1)
    assert "bob\0pam-host1-4242-99" in members and "bob\0-" not in members
    # a third user still finds the pool full: bob's console keeps his seat
    assert ng.get("/app/index.html", "dave").status_code == 503
    seatctl("release", "tech", "bob", "--session", "pam-host1-4242-99", check=EX_OK)
    assert set(leases(rdb, "tech")) == {"carol"}
