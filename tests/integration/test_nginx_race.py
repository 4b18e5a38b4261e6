"""nginx module: no overselling. Two nginx instances (two workers each) share
one Redis; 200 users race for 20 floating seats."""
import threading
from collections import Counter

import requests

from helpers import EX_OK, leases
from nginx_fixtures import SG_HEADER, nginx, sg  # noqa: F401

SERVERS = """
server {
    listen 127.0.0.1:{port};
    %(sg)s
    seatgate_user $http_x_user;
    location /app/ { seatgate tech; alias {prefix}/html/; }
    location = /metrics { seatgate_metrics; }
}
""" % {"sg": SG_HEADER}

USERS = 200
SEATS = 20


def race(instances, names):
    barrier = threading.Barrier(len(names))
    out = {}

    def one(i, name):
        ng = instances[i % len(instances)]
        barrier.wait()
        try:
            r = requests.get(ng.url("/app/index.html"), headers={"X-User": name}, timeout=20)
            out[name] = (r.status_code, r.headers.get("X-Seatgate-Reason"))
        except Exception as e:  # pragma: no cover - reported by the assert below
            out[name] = (None, repr(e))

    threads = [threading.Thread(target=one, args=(i, n)) for i, n in enumerate(names)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def test_200_users_race_for_20_seats_on_two_instances(seatctl, rdb, nginx):
    seatctl("pool", "set", "tech", "--floating", str(SEATS), check=EX_OK)
    instances = [nginx(SERVERS, workers=2, timeout="5s", zone="race%d:1m" % i)
                 for i in range(2)]
    names = ["user%03d" % i for i in range(USERS)]
    out = race(instances, names)
    codes = Counter(c for c, _ in out.values())
    assert codes == {200: SEATS, 503: USERS - SEATS}, codes
    granted = {n for n, (c, _) in out.items() if c == 200}
    assert {reason for c, reason in out.values() if c == 503} == {"all_floating_in_use"}
    # the holders in Redis are exactly the users that got in
    assert set(leases(rdb, "tech")) == granted
    # a second wave of the losers changes nothing
    losers = sorted(set(names) - granted)
    out = race(instances, losers)
    assert Counter(c for c, _ in out.values()) == {503: len(losers)}
    assert set(leases(rdb, "tech")) == granted
    # the winners keep their seat, from either instance
    for i, n in enumerate(sorted(granted)):
        r = instances[i % 2].get("/app/index.html", headers={"X-User": n})
        assert r.status_code == 200 and sg(r)["result"] == "granted_floating"
    total = sum(ng.metrics()['seatgate_decisions_total{result="granted_floating"}']
                for ng in instances)
    assert total >= SEATS
