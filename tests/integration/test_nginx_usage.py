"""nginx module, issue 12: the free tier in the usage records. Requests to a
`seatgate off pool=NAME` location take no seat and ask Redis nothing on
their way; the workers send their count to the pool's usage records about
every 400 ms, and seatctl report shows it."""
import time

from helpers import EX_OK
from nginx_fixtures import SG_HEADER, nginx  # noqa: F401

SERVERS = """
server {
    listen 127.0.0.1:{port};
    %(sg)s
    seatgate_user $http_x_user;
    location /portal/ { seatgate off pool=tech; alias {prefix}/html/; }
    location /other/ { seatgate off; alias {prefix}/html/; }
    location /app/ { seatgate tech; alias {prefix}/html/; }
}
""" % {"sg": SG_HEADER}


def free_requests(seatctl_json):
    r = seatctl_json("report", "--pool", "tech", "--since", "1d", check=EX_OK).out["pools"][0]
    return r["free_requests"], r


def test_free_tier_requests_are_counted_per_pool(seatctl, seatctl_json, rdb, nginx):
    seatctl("pool", "set", "tech", "--floating", "2", check=EX_OK)
    ng = nginx(SERVERS, workers=2)
    for i in range(25):
        r = ng.get("/portal/index.html", headers={"X-User": "req%d" % (i % 5)})
        assert r.status_code == 200
    for _ in range(7):                        # not counted: no pool named
        assert ng.get("/other/index.html", headers={"X-User": "x"}).status_code == 200
    assert ng.get("/app/index.html", headers={"X-User": "tech1"}).status_code == 200
    t0 = time.monotonic()
    n = 0
    while time.monotonic() - t0 < 5:
        n, r = free_requests(seatctl_json)
        if n >= 25:
            break
        time.sleep(0.2)
    assert n == 25, n
    assert sum(d["free_requests"] for d in r["days"]) == 25
    # no seat was taken by the free tier: only tech1 holds one
    assert rdb.zrange("sg:{tech}:leases", 0, -1) == ["tech1"]
    time.sleep(1)                             # nothing counted twice
    assert free_requests(seatctl_json)[0] == 25


def test_seatgate_off_pool_is_validated(nginx):
    for bad, why in (("seatgate off pool=;", "invalid pool"),
                     ("seatgate off size=3;", 'invalid parameter "size=3"'),
                     ("seatgate tech pool=x;", 'only "seatgate off" takes pool=')):
        servers = SERVERS.replace("seatgate off pool=tech;", bad)
        rc, out = nginx(servers, start=False).test_config()
        assert rc != 0 and why in out, (bad, out)
