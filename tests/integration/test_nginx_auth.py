"""nginx module: authorization strictly after authentication.

The seat check runs in the PRECONTENT phase: only a request that passed every
access handler (auth_basic, auth_request, a Lua/JWT access handler, allow/deny)
reaches it, whatever the module load order and the satisfy mode. A request
that fails authentication never takes or renews a seat.
"""
import pytest

from helpers import EX_OK, leases
from nginx_fixtures import LUA_MODULES, SG_HEADER, nginx, sg  # noqa: F401

SERVERS = """
server {
    listen 127.0.0.1:{port};
    %(sg)s
    seatgate tech;

    location /basic/ {
        auth_basic "seatgate";
        auth_basic_user_file {htpasswd};
        alias {prefix}/html/;
    }

    # either an address of 10/8 or a password: from 127.0.0.1 the password
    location /any/ {
        satisfy any;
        allow 10.0.0.0/8;
        deny all;
        auth_basic "seatgate";
        auth_basic_user_file {htpasswd};
        seatgate_user $remote_user;   # under satisfy any it must be set on purpose
        alias {prefix}/html/;
    }

    # let in by address: the seat check still runs
    location /any-ip/ {
        satisfy any;
        allow 127.0.0.1;
        deny all;
        auth_basic "seatgate";
        auth_basic_user_file {htpasswd};
        seatgate_user $http_x_sso_user;
        alias {prefix}/html/;
    }

    # SSO through auth_request: the identity comes from the auth service
    location /sso/ {
        auth_request /_auth;
        auth_request_set $sso_user $upstream_http_x_user;
        seatgate_user $sso_user;
        alias {prefix}/html/;
    }

    # both an auth_request and a password, satisfy any
    location /sso-any/ {
        satisfy any;
        auth_request /_auth;
        auth_basic "seatgate";
        auth_basic_user_file {htpasswd};
        seatgate_user $remote_user;
        alias {prefix}/html/;
    }

    location = /_auth {
        internal;
        proxy_pass http://127.0.0.1:{backend}/auth;
        proxy_pass_request_body off;
        proxy_set_header Content-Length "";
        proxy_set_header X-Token $http_x_token;
    }
    %(lua)s
}
""" % {"sg": SG_HEADER, "lua": "{lua}"}

LUA_LOCATION = """
    # a JWT-style bearer check in Lua's access phase
    location /jwt/ {
        set $jwt_sub "";
        access_by_lua_block {
            local h = ngx.var.http_authorization or ""
            local sub = h:match("^Bearer good%-(%w+)$")
            if not sub then return ngx.exit(ngx.HTTP_UNAUTHORIZED) end
            ngx.var.jwt_sub = sub
        }
        seatgate_user $jwt_sub;
        alias {prefix}/html/;
    }
"""


def servers(lua=False):
    return SERVERS.replace("{lua}", LUA_LOCATION if lua else "")


def setup_pool(seatctl):
    seatctl("pool", "set", "tech", "--named", "1", "--floating", "5", check=EX_OK)
    seatctl("pool", "set", "tech", "--exclude", "blocked", check=EX_OK)
    seatctl("user", "set", "mallory", "--groups", "blocked", check=EX_OK)


def nothing_taken(rdb, before):
    """No lease, and no audit entry besides the setup ones."""
    return leases(rdb, "tech") == {} and rdb.xlen("sg:{tech}:audit") == before


def test_wrong_password_takes_no_seat(seatctl, rdb, nginx):
    setup_pool(seatctl)
    ng = nginx(servers())
    before = rdb.xlen("sg:{tech}:audit")
    for _ in range(3):
        r = ng.get("/basic/index.html", "bob", password="wrong")
        assert r.status_code == 401
        assert "X-Seatgate-Reason" not in r.headers
    assert ng.get("/basic/index.html").status_code == 401  # no credentials at all
    assert nothing_taken(rdb, before)
    r = ng.get("/basic/index.html", "bob")
    assert r.status_code == 200 and sg(r)["result"] == "granted_floating"
    assert set(leases(rdb, "tech")) == {"bob"}


def test_wrong_password_never_renews_a_held_seat(seatctl, rdb, nginx):
    setup_pool(seatctl)
    seatctl("pool", "set", "tech", "--idle-timeout", "30s", check=EX_OK)
    ng = nginx(servers(), zone=None)  # no cache: every request would ask Redis
    assert ng.get("/basic/index.html", "bob").status_code == 200
    lease = leases(rdb, "tech")["bob"]
    audited = rdb.xlen("sg:{tech}:audit")
    for _ in range(3):
        assert ng.get("/basic/index.html", "bob", password="wrong").status_code == 401
    assert leases(rdb, "tech")["bob"] == lease
    assert rdb.xlen("sg:{tech}:audit") == audited


def test_satisfy_any_wrong_password_takes_no_seat(seatctl, rdb, nginx):
    setup_pool(seatctl)
    ng = nginx(servers())
    before = rdb.xlen("sg:{tech}:audit")
    r = ng.get("/any/index.html", "bob", password="wrong")
    assert r.status_code == 401
    assert nothing_taken(rdb, before)


def test_satisfy_any_does_not_skip_the_check(seatctl, rdb, nginx):
    setup_pool(seatctl)
    ng = nginx(servers())
    # auth_basic passed and ended the access phase: the seat check still runs
    r = ng.get("/any/index.html", "mallory")
    assert r.status_code == 403 and sg(r)["result"] == "denied_excluded"
    r = ng.get("/any/index.html", "bob")
    assert r.status_code == 200 and sg(r)["result"] == "granted_floating"
    # let in by address: no identity, no seat
    r = ng.get("/any-ip/index.html")
    assert r.status_code == 403 and r.headers["X-Seatgate-Reason"] == "no_identity"
    r = ng.get("/any-ip/index.html", headers={"X-SSO-User": "mallory"})
    assert r.status_code == 403 and sg(r)["result"] == "denied_excluded"
    r = ng.get("/any-ip/index.html", headers={"X-SSO-User": "carol"})
    assert r.status_code == 200 and sg(r)["user"] == "carol"


def test_auth_request_failure_takes_no_seat(seatctl, rdb, nginx):
    setup_pool(seatctl)
    ng = nginx(servers())
    before = rdb.xlen("sg:{tech}:audit")
    r = ng.get("/sso/index.html", headers={"X-Token": "forged"})
    assert r.status_code == 401
    assert nothing_taken(rdb, before)
    r = ng.get("/sso/index.html", headers={"X-Token": "good-bob"})
    assert r.status_code == 200
    assert (sg(r)["user"], sg(r)["result"]) == ("bob", "granted_floating")
    assert set(leases(rdb, "tech")) == {"bob"}
    r = ng.get("/sso/index.html", headers={"X-Token": "good-mallory"})
    assert r.status_code == 403 and sg(r)["result"] == "denied_excluded"


def test_satisfy_any_with_two_authentications(seatctl, rdb, nginx):
    setup_pool(seatctl)
    ng = nginx(servers())
    before = rdb.xlen("sg:{tech}:audit")
    # neither the token nor the password: 401, nothing taken
    r = ng.get("/sso-any/index.html", "bob", password="wrong",
               headers={"X-Token": "forged"})
    assert r.status_code == 401
    assert nothing_taken(rdb, before)
    # the password alone is enough, and the check still runs
    r = ng.get("/sso-any/index.html", "bob", headers={"X-Token": "forged"})
    assert r.status_code == 200 and sg(r)["result"] == "granted_floating"
    r = ng.get("/sso-any/index.html", "mallory", headers={"X-Token": "forged"})
    assert r.status_code == 403


@pytest.mark.parametrize("order", ["lua-first", "seatgate-first"])
def test_lua_access_handler_any_load_order(seatctl, rdb, nginx, order):
    setup_pool(seatctl)
    kw = {"load_before": LUA_MODULES} if order == "lua-first" else {"load_after": LUA_MODULES}
    ng = nginx(servers(lua=True), **kw)
    before = rdb.xlen("sg:{tech}:audit")
    for h in ({}, {"Authorization": "Bearer forged"}, {"Authorization": "Bearer good-"}):
        assert ng.get("/jwt/index.html", headers=h).status_code == 401
    assert nothing_taken(rdb, before)
    r = ng.get("/jwt/index.html", headers={"Authorization": "Bearer good-dave"})
    assert r.status_code == 200
    assert (sg(r)["user"], sg(r)["result"]) == ("dave", "granted_floating")
    r = ng.get("/jwt/index.html", headers={"Authorization": "Bearer good-mallory"})
    assert r.status_code == 403
    assert set(leases(rdb, "tech")) == {"dave"}
