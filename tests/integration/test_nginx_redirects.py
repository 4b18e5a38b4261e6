"""nginx module, issue 10 finding 2: one request, one decision, whatever
index, try_files, error_page or rewrite ... last do. Counted in Redis
(INFO commandstats), not only in the module's metrics; the access log shows
the real decision."""
import time

from helpers import EX_OK
from nginx_fixtures import SG_HEADER, nginx  # noqa: F401

SERVERS = """
server {
    listen 127.0.0.1:{port};
    %(sg)s
    seatgate_user $http_x_user;
    error_page 503 /busy.html;
    error_page 403 /free/denied.html;
    location = /busy.html { seatgate tech; internal; return 503 'busy $seatgate_reason\\n'; }
    location /free/ { seatgate off; alias {prefix}/html/; }
    location = /free/denied.html { seatgate off; internal; return 403 'denied $seatgate_reason\n'; }
    location /app/ { seatgate tech; alias {prefix}/html/; }
    location /try/ { seatgate tech; try_files /nothing-here /app/index.html; }
    location /rw/ { seatgate tech; rewrite ^/rw/(.*)$ /app/$1 last; }
    location /other/ { seatgate other; alias {prefix}/html/; }
    location /to-other/ { seatgate tech; try_files /nothing-here /other/index.html; }
    location /free-to-app/ { seatgate off; rewrite ^ /app/index.html last; }
}
""" % {"sg": SG_HEADER}


def decisions(rdb):
    """Scripts Redis ran (a NOSCRIPT answer, resent as EVAL, is not one)."""
    st = rdb.info("commandstats")
    return sum(st.get(k, {}).get("calls", 0) - st.get(k, {}).get("failed_calls", 0)
               for k in ("cmdstat_fcall", "cmdstat_evalsha", "cmdstat_eval"))


def get(ng, path, user):
    return ng.get(path, headers={"X-User": user})


def access_lines(ng, n):
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        with open(ng.access_log) as f:
            lines = f.read().splitlines()
        if len(lines) >= n:
            return lines
        time.sleep(0.02)
    return lines


def counted(rdb, fn):
    rdb.config_resetstat()
    r = fn()
    return r, decisions(rdb)


def test_one_decision_per_request_through_redirects(seatctl, rdb, nginx):
    seatctl("pool", "set", "tech", "--floating", "1", check=EX_OK)
    seatctl("pool", "set", "other", "--floating", "5", check=EX_OK)
    ng = nginx(SERVERS, zone=None)   # no cache: every decision goes to Redis
    for path in ("/app/", "/try/x", "/rw/index.html"):
        r, n = counted(rdb, lambda: get(ng, path, "alice"))
        assert r.status_code == 200 and n == 1, (path, r.status_code, n)
        assert r.headers["X-SG"].startswith("granted_floating|"), r.headers["X-SG"]
    # a denial answered by an error_page in a protected location: one decision
    r, n = counted(rdb, lambda: get(ng, "/app/index.html", "bob"))
    assert r.status_code == 503 and "busy all_floating_in_use" in r.text and n == 1
    assert r.headers["X-SG"].startswith("denied_exhausted|all_floating_in_use|bob|")
    # ... and by an error_page in a free location: still the denial, not granted_free
    seatctl("pool", "set", "tech", "--floating", "0", check=EX_OK)
    r, n = counted(rdb, lambda: get(ng, "/app/index.html", "carol"))
    assert r.status_code == 403 and n == 1, (r.status_code, n)
    assert "denied no_named_seat" in r.text
    assert r.headers["X-SG"].startswith("denied_unassigned|no_named_seat|carol|")
    lines = access_lines(ng, 5)
    assert "denied_unassigned no_named_seat" in lines[-1], lines[-1]
    assert "granted_free" not in lines[-1]


def test_another_pool_after_a_redirect_is_decided_too(seatctl, rdb, nginx):
    seatctl("pool", "set", "tech", "--floating", "5", check=EX_OK)
    seatctl("pool", "set", "other", "--floating", "0", check=EX_OK)
    ng = nginx(SERVERS, zone=None)
    # try_files lands in pool other: that pool is decided too, and denies
    # (pool tech may have been decided first, as try_files shares its phase)
    r, n = counted(rdb, lambda: get(ng, "/to-other/", "dave"))
    assert 1 <= n <= 2 and r.status_code == 403, (n, r.status_code)
    assert "denied no_named_seat" in r.text
    # a free location rewritten to a protected one is decided there
    r, n = counted(rdb, lambda: get(ng, "/free-to-app/", "erin"))
    assert n == 1 and r.status_code == 200
    assert r.headers["X-SG"].startswith("granted_floating|")
