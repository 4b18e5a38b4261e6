"""nginx module: every decision result, the deny responses, the variables."""
import json

import requests

from helpers import EX_OK, audit_entries, leases
from nginx_fixtures import SG_HEADER, nginx, sg, wait_for  # noqa: F401

SERVERS = """
server {
    listen 127.0.0.1:{port};
    auth_basic "seatgate";
    auth_basic_user_file {htpasswd};
    seatgate_retry_after 45s;
    %(sg)s

    location /app/ { seatgate tech; alias {prefix}/html/; }
    location /cmdb/ { seatgate tech; seatgate_feature cmdb; alias {prefix}/html/; }
    location /named/ { seatgate namedonly; alias {prefix}/html/; }
    location /portal/ { seatgate off; alias {prefix}/html/; }
    location /api/ {
        seatgate tech;
        seatgate_on_behalf_of $http_x_on_behalf_of;
        proxy_set_header X-Seatgate-User $seatgate_user;
        proxy_set_header X-Seatgate-On-Behalf-Of $seatgate_on_behalf_of;
        proxy_set_header X-Seatgate-Result $seatgate_result;
        proxy_set_header X-Seatgate-Seat $seatgate_seat;
        proxy_pass http://127.0.0.1:{backend};
    }
    location /sso/ {
        auth_basic off;
        seatgate tech;
        seatgate_user $http_x_user;
        alias {prefix}/html/;
    }
    location = /metrics { auth_basic off; seatgate_metrics; }
}
""" % {"sg": SG_HEADER}


def setup_pools(seatctl, floating=2):
    seatctl("pool", "set", "tech", "--named", "2", "--floating", str(floating),
            "--idle-timeout", "10m", check=EX_OK)
    seatctl("pool", "set", "namedonly", "--named", "1", check=EX_OK)
    seatctl("assign", "tech", "alice", check=EX_OK)


def test_granted_named_then_cached(seatctl, rdb, nginx):
    setup_pools(seatctl)
    ng = nginx(SERVERS)
    r = ng.get("/app/index.html", "alice")
    assert r.status_code == 200 and r.text == "protected content\n"
    v = sg(r)
    assert v == {"result": "granted_named", "reason": "named_seat", "user": "alice",
                 "seat": "named", "pool": "tech", "on_behalf_of": "", "identity": "alice",
                 "cache": "MISS"}
    # the grant is cached: no second round trip
    r = ng.get("/app/index.html", "alice")
    assert r.status_code == 200
    assert sg(r)["cache"] == "HIT" and sg(r)["result"] == "granted_named"
    # the audit says who came through nginx, from where
    ev = [e for e in audit_entries(rdb, "tech") if e["user"] == "alice" and e["ev"] != "assign"]
    assert ev and ev[0]["via"] == "nginx" and ev[0]["client"] == "127.0.0.1"


def test_granted_floating_takes_a_lease(seatctl, rdb, nginx):
    setup_pools(seatctl)
    ng = nginx(SERVERS)
    r = ng.get("/app/index.html", "bob")
    assert r.status_code == 200
    v = sg(r)
    assert (v["result"], v["reason"], v["seat"], v["user"]) == (
        "granted_floating", "floating_seat", "floating", "bob")
    assert set(leases(rdb, "tech")) == {"bob"}


def test_granted_free_is_identified_and_touches_nothing(seatctl, rdb, nginx):
    setup_pools(seatctl)
    ng = nginx(SERVERS)
    before = rdb.xlen("sg:{tech}:audit")
    r = ng.get("/portal/index.html", "carol")
    assert r.status_code == 200
    v = sg(r)
    assert (v["result"], v["reason"], v["seat"], v["user"], v["identity"]) == (
        "granted_free", "free_tier", "free", "carol", "carol")
    assert leases(rdb, "tech") == {}
    assert rdb.xlen("sg:{tech}:audit") == before

    def logged():
        with open(ng.access_log) as f:
            return "carol 200 granted_free free_tier carol free" in f.read()

    assert wait_for(logged)


def test_denied_unassigned_is_403(seatctl, nginx):
    setup_pools(seatctl)
    ng = nginx(SERVERS)
    r = ng.get("/named/index.html", "bob")
    assert r.status_code == 403
    assert r.headers["X-Seatgate-Reason"] == "no_named_seat"
    assert "Retry-After" not in r.headers
    v = sg(r)
    assert (v["result"], v["seat"], v["user"]) == ("denied_unassigned", "none", "bob")
    assert "text/html" in r.headers["Content-Type"]
    assert "namedonly" in r.text and "protected content" not in r.text


def test_denied_exhausted_is_503_with_retry_after(seatctl, rdb, nginx):
    setup_pools(seatctl)
    ng = nginx(SERVERS)
    assert ng.get("/app/index.html", "bob").status_code == 200
    assert ng.get("/app/index.html", "carol").status_code == 200
    r = ng.get("/app/index.html", "dave")
    assert r.status_code == 503
    assert r.headers["X-Seatgate-Reason"] == "all_floating_in_use"
    assert r.headers["Retry-After"] == "45"
    assert sg(r)["result"] == "denied_exhausted"
    assert "All 2 floating seats of pool tech are in use" in r.text
    assert r.text.lstrip().startswith("<html>")
    # the same denial as JSON for an API client
    r = ng.get("/app/index.html", "dave", headers={"Accept": "application/json"})
    assert r.status_code == 503 and r.headers["Content-Type"].startswith("application/json")
    body = json.loads(r.text)
    assert body["result"] == "denied_exhausted" and body["reason"] == "all_floating_in_use"
    assert body["pool"] == "tech" and body["user"] == "dave" and body["seat"] == "none"
    assert "try again later" in body["message"]
    # a named seat is never "maxed out"
    assert ng.get("/app/index.html", "alice").status_code == 200
    assert set(leases(rdb, "tech")) == {"bob", "carol"}


def test_denied_excluded(seatctl, nginx):
    setup_pools(seatctl)
    seatctl("pool", "set", "tech", "--exclude", "contractors", check=EX_OK)
    seatctl("user", "set", "erin", "--groups", "contractors", check=EX_OK)
    ng = nginx(SERVERS)
    r = ng.get("/app/index.html", "erin")
    assert r.status_code == 403
    assert sg(r)["result"] == "denied_excluded"
    assert r.headers["X-Seatgate-Reason"] == "excluded_group"


def test_denied_feature_and_granted_with_feature(seatctl, nginx):
    setup_pools(seatctl)
    ng = nginx(SERVERS)
    r = ng.get("/cmdb/index.html", "alice")
    assert r.status_code == 403
    assert sg(r)["result"] == "denied_feature"
    assert r.headers["X-Seatgate-Reason"] == "feature_not_licensed"
    assert ng.get("/app/index.html", "alice").status_code == 200  # the pool itself is fine
    seatctl("pool", "set", "tech", "--features", "cmdb", check=EX_OK)
    r = ng.get("/cmdb/index.html", "alice")
    assert r.status_code == 200 and sg(r)["result"] == "granted_named"


def test_denied_disabled(seatctl, nginx):
    setup_pools(seatctl)
    seatctl("user", "set", "frank", "--disabled", check=EX_OK)
    ng = nginx(SERVERS)
    r = ng.get("/app/index.html", "frank")
    assert r.status_code == 403
    assert sg(r)["result"] == "denied_disabled"
    assert r.headers["X-Seatgate-Reason"] == "user_disabled"
    assert "disabled" in r.text


def test_on_behalf_of_stamps_both_ids_upstream(seatctl, rdb, nginx):
    setup_pools(seatctl)
    seatctl("user", "set", "hub", "--service-account", check=EX_OK)
    ng = nginx(SERVERS)
    r = ng.get("/api/ticket", "hub", headers={"X-On-Behalf-Of": "alice"})
    assert r.status_code == 200, r.text
    assert r.text == ("backend user=alice obo=alice result=granted_named seat=named "
                      "uri=/api/ticket\n")
    v = sg(r)
    assert (v["user"], v["on_behalf_of"], v["identity"]) == ("alice", "alice", "hub")
    # a human acting for nobody goes through as himself
    r = ng.get("/api/ticket", "bob")
    assert r.status_code == 200
    assert r.text.startswith("backend user=bob obo= result=granted_floating seat=floating")
    # the service account alone holds no seat for human work
    r = ng.get("/api/ticket", "hub")
    assert r.status_code == 403
    assert r.headers["X-Seatgate-Reason"] == "service_account_needs_on_behalf_of"
    ev = [e for e in audit_entries(rdb, "tech") if e.get("obo") == "alice"]
    assert ev and ev[0]["user"] == "hub"


def test_denied_multiplexing(seatctl, nginx):
    setup_pools(seatctl)
    seatctl("pool", "set", "tech", "--mux-limit", "1", "--mux-window", "1h", check=EX_OK)
    seatctl("user", "set", "hub", "--service-account", check=EX_OK)
    ng = nginx(SERVERS)
    assert ng.get("/api/x", "hub", headers={"X-On-Behalf-Of": "alice"}).status_code == 200
    r = ng.get("/api/x", "hub", headers={"X-On-Behalf-Of": "bob"})
    assert r.status_code == 403
    assert sg(r)["result"] == "denied_multiplexing"
    assert r.headers["X-Seatgate-Reason"] == "multiplexing_limit"
    # the human already counted still goes through
    assert ng.get("/api/x", "hub", headers={"X-On-Behalf-Of": "alice"}).status_code == 200


def test_bad_or_missing_identity_is_403_without_redis(seatctl, rdb, nginx):
    setup_pools(seatctl)
    ng = nginx(SERVERS)
    sent = ng.metrics()["seatgate_redis_commands_total"]
    audited = rdb.xlen("sg:{tech}:audit")
    r = ng.get("/sso/index.html")
    assert r.status_code == 403
    assert r.headers["X-Seatgate-Reason"] == "no_identity"
    assert sg(r)["result"] == "denied_unassigned"
    r = ng.get("/sso/index.html", headers={"X-User": "x" * 300})
    assert r.status_code == 403 and r.headers["X-Seatgate-Reason"] == "invalid_identity"
    r = ng.get("/sso/index.html", headers={"X-User": b"caf\xe9"})  # not UTF-8
    assert r.status_code == 403 and r.headers["X-Seatgate-Reason"] == "invalid_identity"
    r = ng.get("/api/x", "bob", headers={"X-On-Behalf-Of": "y" * 300})
    assert r.status_code == 403 and r.headers["X-Seatgate-Reason"] == "invalid_on_behalf_of"
    # only the second scrape's own probes (one read-only check per pool) went out
    assert ng.metrics()["seatgate_redis_commands_total"] == sent + 2
    assert rdb.xlen("sg:{tech}:audit") == audited
    # a good trusted-header identity goes through
    r = ng.get("/sso/index.html", headers={"X-User": "bob"})
    assert r.status_code == 200 and sg(r)["user"] == "bob"


def test_unknown_pool_is_denied(seatctl, nginx):
    ng = nginx(SERVERS)  # no pool defined at all
    r = ng.get("/app/index.html", "alice")
    assert r.status_code == 403
    assert r.headers["X-Seatgate-Reason"] == "unknown_pool"


def test_error_page_takes_over_the_body(seatctl, nginx):
    setup_pools(seatctl, floating=0)
    servers = SERVERS.replace("location /app/ {",
                              "error_page 403 /denied.html;\n"
                              "    location = /denied.html { internal; auth_basic off;"
                              " return 403 'custom page $seatgate_reason\\n'; }\n"
                              "    location /app/ {")
    ng = nginx(servers)
    r = ng.get("/app/index.html", "bob")
    assert r.status_code == 403
    assert "custom page" in r.text
    assert r.headers["X-Seatgate-Reason"] == "no_named_seat"


def test_nginx_answers_a_denial_on_its_own_error_page_rules(seatctl, nginx):
    """issue 10: the module returns the status and nginx's error-page
    machinery answers: an error_page for another status leaves the reason's
    own body; a named location takes over (with its status under "="); a
    HEAD gets the headers and the length of the body it would have got."""
    setup_pools(seatctl, floating=1)
    servers = SERVERS.replace("location /app/ {",
                              "error_page 404 /nf.html;\n"
                              "    location /app2/ { seatgate tech; alias {prefix}/html/;"
                              " error_page 503 = @busy; }\n"
                              "    location @busy { auth_basic off; return 200 'fallback\\n'; }\n"
                              "    location /app/ {")
    ng = nginx(servers)
    assert ng.get("/app/index.html", "bob").status_code == 200
    r = ng.get("/app/index.html", "carol")
    assert r.status_code == 503 and r.headers["Retry-After"] == "45"
    assert "only floating seat of pool tech" in r.text and r.text.lstrip().startswith("<html>")
    assert r.headers["Cache-Control"] == "no-store"
    assert int(r.headers["Content-Length"]) == len(r.content)
    assert "nginx" not in r.text                  # not nginx's stock page
    h = requests.head(ng.url("/app/index.html"), auth=("carol", "carol-pw"), timeout=10)
    assert h.status_code == 503 and h.headers["X-Seatgate-Reason"] == "all_floating_in_use"
    assert int(h.headers["Content-Length"]) == len(r.content)
    r = ng.get("/app2/index.html", "carol")
    assert (r.status_code, r.text) == (200, "fallback\n")
    assert r.headers["X-Seatgate-Reason"] == "all_floating_in_use"
    r = ng.get("/app/index.html", "carol", headers={"Accept": "application/json"})
    assert r.status_code == 503 and json.loads(r.text)["reason"] == "all_floating_in_use"


def test_retry_after_survives_an_error_page(seatctl, nginx):
    """issue 10 finding 1: with an error_page for 503 the Retry-After header
    is sent after the deny handler returned; its value must live in request
    memory, not in the handler's stack frame (under SANITIZE=1 nginx runs
    with detect_stack_use_after_return=1, which aborts on the old code)."""
    setup_pools(seatctl, floating=1)
    servers = SERVERS.replace("location /app/ {",
                              "error_page 503 /busy.html;\n"
                              "    location = /busy.html { internal; auth_basic off;"
                              " return 503 'busy $seatgate_reason\\n'; }\n"
                              "    location /app/ {")
    ng = nginx(servers)
    assert ng.get("/app/index.html", "bob").status_code == 200
    for _ in range(20):
        r = ng.get("/app/index.html", "carol")
        assert r.status_code == 503 and "busy" in r.text
        assert r.headers.get("Retry-After", "").isdigit(), r.headers
        assert r.headers["X-Seatgate-Reason"] == "all_floating_in_use"
