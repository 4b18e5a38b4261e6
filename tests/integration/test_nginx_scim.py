"""Issue 13: the live SCIM 2.0 endpoint (nginx `seatgate_scim`).

Conversations as Okta's and Entra ID's provisioning clients send them (create,
filter lookup, replace, patch active false, reactivate, delete) against a real
nginx on the provisioning Redis role (seatgate-sync), each answer checked
against RFC 7643/7644; bad tokens get 401, malformed bodies 400 with a
scimType and change nothing; a deprovisioned user loses a cached nginx grant
(on another nginx, the portal, on the decision role) within 2 s, the held
floating seat is released and audited, and a PAM account check refuses."""
import json
import os
import re
import time
import urllib.parse

import pytest
import redis
import requests

import helpers
from helpers import EX_OK
from nginx_fixtures import SG_HEADER, nginx, sg  # noqa: F401

MAP = os.path.join(helpers.REPO, "conf", "sync-map.conf")
TOKEN = "okta-scim-token-0123456789abcdef"
CORE = "urn:ietf:params:scim:schemas:core:2.0:User"
ENT = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PATCHOP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
LIST = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")

SCIM_SERVER = """
server {
    listen 127.0.0.1:{port};
    location /scim/v2/ {
        client_body_buffer_size 16k;
        seatgate_scim map=%(map)s token_file=%(token)s name=okta timeout=5s;
    }
}
"""

PORTAL = """
server {
    listen 127.0.0.1:{port};
    %(sg)s
    seatgate_user $http_x_user;
    location /app/ { seatgate technicians; alias {prefix}/html/; }
}
""" % {"sg": SG_HEADER}


@pytest.fixture
def shop(seatctl):
    """technicians: 2 named, 3 floating (the map gives its named seats)."""
    seatctl("pool", "set", "technicians", "--named", "2", "--floating", "3", check=EX_OK)
    return seatctl


@pytest.fixture
def scim(nginx, redis_server, tmp_path, shop):
    tok = tmp_path / "scim.token"
    tok.write_text(TOKEN + "\n")
    os.chmod(tok, 0o600)
    ng = nginx(SCIM_SERVER % {"map": MAP, "token": tok}, redis_url=redis_server.sync_url,
               zone=None)
    return Client(ng)


class Client:
    """A SCIM client on the endpoint, with the bearer token."""

    def __init__(self, ng, token=TOKEN):
        self.ng = ng
        self.token = token
        self.base = "http://127.0.0.1:%d/scim/v2" % ng.port

    def req(self, method, path, body=None, token=None, raw=None, ctype="application/scim+json"):
        h = {"Accept": "application/scim+json"}
        tok = self.token if token is None else token
        if tok:
            h["Authorization"] = "Bearer " + tok
        data = raw if raw is not None else (json.dumps(body) if body is not None else None)
        if data is not None:
            h["Content-Type"] = ctype
        return requests.request(method, self.base + path, data=data, headers=h, timeout=10)

    def get(self, path, **kw):
        return self.req("GET", path, **kw)

    def post(self, body, **kw):
        return self.req("POST", "/Users", body, **kw)

    def put(self, uid, body, **kw):
        return self.req("PUT", "/Users/" + uid, body, **kw)

    def patch(self, uid, ops, **kw):
        return self.req("PATCH", "/Users/" + uid, {"schemas": [PATCHOP], "Operations": ops}, **kw)

    def delete(self, uid, **kw):
        return self.req("DELETE", "/Users/" + uid, **kw)

    def find(self, user, attr="userName"):
        q = urllib.parse.quote('%s eq "%s"' % (attr, user))
        return self.get("/Users?filter=%s&startIndex=1&count=100" % q)


# ---- RFC 7643 / 7644 checks --------------------------------------------------

def scim_json(r):
    assert r.headers["Content-Type"].startswith("application/scim+json"), r.headers
    return r.json()


def check_user(r, status, base, user=None):
    assert r.status_code == status, (r.status_code, r.text)
    u = scim_json(r)
    assert CORE in u["schemas"]
    assert isinstance(u["id"], str) and u["id"]
    if user:
        assert u["userName"] == user
    m = u["meta"]
    assert m["resourceType"] == "User"
    assert m["location"] == "%s/Users/%s" % (base, u["id"])
    assert RFC3339.match(m["created"]) and RFC3339.match(m["lastModified"])
    assert m["version"].startswith('W/"') and r.headers["ETag"] == m["version"]
    assert "password" not in u
    if status == 201:
        assert r.headers["Location"] == m["location"]
    return u


def check_error(r, status, scim_type=None):
    assert r.status_code == status, (r.status_code, r.text)
    e = scim_json(r)
    assert e["schemas"] == [ERROR]
    assert e["status"] == str(status)           # a string (RFC 7644 3.12)
    assert isinstance(e["detail"], str) and e["detail"]
    if scim_type:
        assert e.get("scimType") == scim_type, e
    else:
        assert "scimType" not in e, e
    return e


def check_list(r, total, start=1):
    assert r.status_code == 200, r.text
    l = scim_json(r)
    assert l["schemas"] == [LIST]
    assert l["totalResults"] == total
    assert l["startIndex"] == start
    assert l["itemsPerPage"] == len(l["Resources"])
    return l


def record(rdb, user):
    """The registry record: (disabled, service account, [groups])."""
    rec = rdb.hget("sg:{_}:users", user)
    if rec is None:
        return None
    groups = rec[rec.index(",", 2):] if "," in rec[2:] else ","
    return rec[0] == "1", rec[1] == "1", sorted(g for g in groups.split(",") if g)


def named(rdb):
    return sorted(rdb.smembers("sg:{technicians}:named"))


# ---- conversations -----------------------------------------------------------

def okta_user(user, title, active=True):
    """A user as Okta's SCIM 2.0 app sends it (Okta's SCIM guide)."""
    return {
        "schemas": [CORE],
        "userName": user,
        "name": {"givenName": "Jane", "familyName": "Doe"},
        "emails": [{"primary": True, "value": user + "@example.com", "type": "work"}],
        "displayName": "Jane Doe",
        "locale": "en-US",
        "externalId": "00u" + user,
        "groups": [],
        "password": "never-stored-1!",
        "title": title,
        "active": active,
    }


def test_okta_conversation(scim, rdb, seatctl, seatctl_json):
    c = scim
    # Okta looks the user up first
    check_list(c.find("jdoe"), 0)
    r = c.post(okta_user("jdoe", "ITSM-L3"))
    u = check_user(r, 201, c.base, "jdoe")
    uid = u["id"]
    created = u["meta"]["created"]
    assert re.match(r"^[0-9a-f-]{36}$", uid)
    assert u["active"] is True and u["name"]["givenName"] == "Jane"
    # the map: senior-agents gives technicians + senior and a named seat
    assert record(rdb, "jdoe") == (False, False, ["senior", "technicians"])
    assert named(rdb) == ["jdoe"]
    assert b"never-stored" not in rdb.hget("sg:{_}:scim", uid).encode()
    # seatctl explain answers why, from the change log
    ex = seatctl_json("explain", "jdoe", check=EX_OK).out
    assert ex["record_from_sync"]["ev"] == "scim"
    assert ex["record_from_sync"]["by"] == "okta@127.0.0.1"
    assert ex["record_from_sync"]["reason"] == "senior-agents"
    assert ex["holds"][0]["given_by_sync"]["ev"] == "scim"
    txt = seatctl("explain", "jdoe", check=EX_OK).out
    assert "record from scim at" in txt and "by okta@127.0.0.1, rules senior-agents" in txt
    assert "named     given by scim at" in txt
    # lookups
    check_user(c.get("/Users/" + uid), 200, c.base, "jdoe")
    l = check_list(c.find("JDOE"), 1)                 # userName is caseExact false
    assert l["Resources"][0]["id"] == uid
    check_list(c.find("00ujdoe", "externalId"), 1)
    # a profile change (Okta sends PUT): the title no longer gives a named seat
    body = okta_user("jdoe", "ITSM-L1")
    body["id"] = uid
    u = check_user(c.put(uid, body), 200, c.base, "jdoe")
    assert u["title"] == "ITSM-L1" and u["meta"]["created"] == created == \
        json.loads(rdb.hget("sg:{_}:scim", uid))["meta"]["created"]
    assert record(rdb, "jdoe") == (False, False, ["technicians"])
    assert named(rdb) == []
    # deactivation: Okta's PATCH without a path
    r = c.patch(uid, [{"op": "replace", "value": {"active": False}}])
    assert check_user(r, 200, c.base)["active"] is False
    assert record(rdb, "jdoe")[0] is True
    # reactivation
    r = c.patch(uid, [{"op": "replace", "value": {"active": True}}])
    assert check_user(r, 200, c.base)["active"] is True
    assert record(rdb, "jdoe")[0] is False
    # delete: the resource goes, the person is disabled (not deleted)
    r = c.delete(uid)
    assert r.status_code == 204 and r.text == ""
    check_error(c.get("/Users/" + uid), 404)
    check_list(c.find("jdoe"), 0)
    assert record(rdb, "jdoe")[0] is True
    # the change log: who asked, which rule, before and after
    log = [e for e in helpers.audit_entries(rdb, "_") if e["ev"] == "scim"]
    assert log and all(e["by"] == "okta@127.0.0.1" and e["via"] == "scim" for e in log)
    first = log[0]
    assert first["user"] == "jdoe" and first["reason"] == "senior-agents"
    assert first["before"] == "-"
    assert first["after"] == "disabled=0 service_account=0 groups=senior,technicians"
    seat = [e for e in log if e["seat"] == "named"]
    assert [(e["before"], e["after"]) for e in seat] == [
        ("-", "named seat of technicians"), ("named seat of technicians", "-")]


def entra_user(user):
    """A user as Entra ID's provisioning service sends it (Microsoft's SCIM
    guide): the enterprise extension, a work email, meta given."""
    return {
        "schemas": [CORE, ENT],
        "externalId": "e-" + user,
        "userName": user,
        "active": True,
        "addresses": [{"primary": False, "type": "work", "streetAddress": "1 Main St"}],
        "displayName": "Ada L",
        "emails": [{"primary": True, "type": "work", "value": user + "@contoso.com"}],
        "meta": {"resourceType": "User"},
        "name": {"formatted": "Ada L", "familyName": "L", "givenName": "Ada"},
        "title": "ITSM-L2",
        ENT: {"department": "Integration", "employeeNumber": "42"},
    }


def test_entra_conversation(scim, rdb):
    c = scim
    # Entra's connection test: a filter for a user that does not exist
    check_list(c.find("7c6a1b3e-non-existent"), 0)
    u = check_user(c.post(entra_user("ada")), 201, c.base, "ada")
    uid = u["id"]
    assert u[ENT]["department"] == "Integration"
    # service-desk (technicians) and integrations (a service account)
    assert record(rdb, "ada") == (False, True, ["technicians"])
    # Entra's PATCH: "Replace" with a path, and "False" as a string
    r = c.patch(uid, [{"op": "Replace", "path": "active", "value": "False"}])
    assert check_user(r, 200, c.base)["active"] is False
    assert record(rdb, "ada")[0] is True
    r = c.patch(uid, [{"op": "Replace", "path": "active", "value": "True"}])
    assert check_user(r, 200, c.base)["active"] is True
    # attribute changes as Entra sends them
    r = c.patch(uid, [
        {"op": "Add", "path": 'emails[type eq "work"].value', "value": "ada2@contoso.com"},
        {"op": "Replace", "path": ENT + ":department", "value": "Service Desk"},
        {"op": "Add", "path": "name.givenName", "value": "Augusta"},
        {"op": "Replace", "path": 'phoneNumbers[type eq "mobile"].value', "value": "+1 555"},
        {"op": "Remove", "path": "addresses"},
    ])
    u = check_user(r, 200, c.base)
    assert u["emails"] == [{"primary": True, "type": "work", "value": "ada2@contoso.com"}]
    assert u[ENT]["department"] == "Service Desk" and u["name"]["givenName"] == "Augusta"
    assert u["phoneNumbers"] == [{"type": "mobile", "value": "+1 555"}]
    assert "addresses" not in u
    # no longer in Integration: no longer a service account
    assert record(rdb, "ada") == (False, False, ["technicians"])
    r = c.delete(uid)
    assert r.status_code == 204
    assert record(rdb, "ada")[0] is True


def test_paging_and_rename(scim, rdb):
    c = scim
    ids = [check_user(c.post(okta_user("p%d" % i, "ITSM-L1")), 201, c.base)["id"]
           for i in range(3)]
    l = check_list(c.get("/Users?startIndex=2&count=1"), 3, start=2)
    assert len(l["Resources"]) == 1
    assert check_list(c.get("/Users"), 3)["itemsPerPage"] == 3
    assert check_list(c.get("/Users?count=0"), 3)["Resources"] == []
    # a filter hit past startIndex: counted, not listed
    assert check_list(c.get("/Users?filter=" + urllib.parse.quote('userName eq "p1"') +
                            "&startIndex=2"), 1, start=2)["Resources"] == []
    # rename: the old name is disabled, the new one gets the record
    r = c.patch(ids[0], [{"op": "replace", "path": "userName", "value": "p0-renamed"}])
    assert check_user(r, 200, c.base, "p0-renamed")["id"] == ids[0]
    assert record(rdb, "p0")[0] is True
    assert record(rdb, "p0-renamed") == (False, False, ["technicians"])
    check_list(c.find("p0"), 0)
    check_list(c.find("p0-renamed"), 1)
    # a rename onto a taken name is refused
    r = c.patch(ids[0], [{"op": "replace", "path": "userName", "value": "p1"}])
    check_error(r, 409, "uniqueness")


def test_concurrent_patches_lose_no_update(scim, rdb):
    """A PATCH is read, change, write: the write names the version it was
    made from, and a request that lost the race reads again. Every PATCH that
    was answered 200 is in the final resource."""
    import concurrent.futures
    c = scim
    uid = check_user(c.post(okta_user("race", "ITSM-L1")), 201, c.base)["id"]

    def add(i):
        return i, c.patch(uid, [{"op": "add", "path": "phoneNumbers",
                                 "value": [{"type": "t%d" % i, "value": "%d" % i}]}])
    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        done = list(ex.map(add, range(16)))
    ok = [i for i, r in done if r.status_code == 200]
    for i, r in done:
        assert r.status_code in (200, 409), r.text
        if r.status_code == 409:
            check_error(r, 409)
    assert len(ok) >= 4, done
    final = check_user(c.get("/Users/" + uid), 200, c.base)
    have = {p["type"] for p in final["phoneNumbers"]}
    assert {"t%d" % i for i in ok} <= have
    assert record(rdb, "race") == (False, False, ["technicians"])


def test_tokens(scim, rdb):
    c = scim
    for tok in ("", "wrong-token-0123456789", TOKEN + "x", TOKEN[:-1]):
        r = c.get("/Users", token=tok)
        check_error(r, 401)
        assert r.headers["WWW-Authenticate"].startswith('Bearer realm="seatgate-scim"')
        if tok:
            assert 'error="invalid_token"' in r.headers["WWW-Authenticate"]
    before = helpers.db_snapshot(rdb)
    check_error(c.post(okta_user("mallory", "ITSM-L3"), token="nope-nope-nope-nope"), 401)
    assert helpers.db_snapshot(rdb) == before
    # Basic is not a bearer token
    r = requests.get(c.base + "/Users", auth=("okta", TOKEN), timeout=10)
    check_error(r, 401)


def test_nginx_own_authentication(nginx, redis_server, rdb, shop):
    """auth=nginx: no token; nginx's auth_basic decides, and the change log
    names the authenticated user."""
    ng = nginx("""
server {
    listen 127.0.0.1:{port};
    location /scim/v2/ {
        auth_basic "scim";
        auth_basic_user_file {htpasswd};
        seatgate_scim map=%s auth=nginx;
    }
}
""" % MAP, redis_url=redis_server.sync_url, zone=None)
    c = Client(ng, token="")
    assert c.get("/Users").status_code == 401          # nginx's own 401
    r = requests.post(c.base + "/Users", data=json.dumps(okta_user("nia", "ITSM-L1")),
                      auth=("hub", "hub-pw"), timeout=10,
                      headers={"Content-Type": "application/scim+json"})
    check_user(r, 201, c.base, "nia")
    log = [e for e in helpers.audit_entries(rdb, "_") if e["ev"] == "scim"]
    assert log and log[0]["by"] == "hub@127.0.0.1"


def test_malformed_requests_are_400_and_change_nothing(scim, rdb):
    c = scim
    uid = check_user(c.post(okta_user("bob", "ITSM-L1")), 201, c.base)["id"]
    before = helpers.db_snapshot(rdb)
    bad_users = [
        ('{"schemas": [', "invalidSyntax"),
        ("[]", "invalidSyntax"),
        ('{"userName": "x"} trailing', "invalidSyntax"),
        (json.dumps({"userName": "noschemas"}), "invalidSyntax"),
        (json.dumps({"schemas": [CORE]}), "invalidValue"),
        (json.dumps({"schemas": [CORE], "userName": 7}), "invalidValue"),
        (json.dumps({"schemas": [CORE], "userName": "tab\tname"}), "invalidValue"),
        (json.dumps({"schemas": [CORE], "userName": "x", "active": "maybe"}), "invalidValue"),
        (json.dumps({"schemas": [CORE], "userName": "x", "externalId": 5}), "invalidValue"),
        (json.dumps({"schemas": [CORE], "userName": "x", "title": ["a"]}), "invalidValue"),
        (json.dumps({"schemas": [CORE], "userName": "x", "groups": "CMDB"}), "invalidValue"),
    ]
    for body, kind in bad_users:
        check_error(c.req("POST", "/Users", raw=body), 400, kind)
        check_error(c.req("PUT", "/Users/" + uid, raw=body), 400, kind)
    bad_patches = [
        ({"Operations": [{"op": "replace", "value": {"active": False}}]}, "invalidSyntax"),
        ({"schemas": [PATCHOP]}, "invalidSyntax"),
        ({"schemas": [PATCHOP], "Operations": []}, "invalidSyntax"),
        ({"schemas": [PATCHOP], "Operations": [{"path": "active"}]}, "invalidSyntax"),
        ({"schemas": [PATCHOP], "Operations": [{"op": "move", "path": "x", "value": 1}]},
         "invalidSyntax"),
        ({"schemas": [PATCHOP], "Operations": [{"op": "remove"}]}, "noTarget"),
        ({"schemas": [PATCHOP], "Operations": [{"op": "replace", "path": "emails[type",
                                                "value": 1}]}, "invalidPath"),
        ({"schemas": [PATCHOP], "Operations": [{"op": "replace", "path": "id",
                                                "value": "x"}]}, "mutability"),
        ({"schemas": [PATCHOP], "Operations": [{"op": "replace", "path": "active",
                                                "value": "sometimes"}]}, "invalidValue"),
        ({"schemas": [PATCHOP], "Operations": [{"op": "replace", "path": "userName",
                                                "value": "x" * 300}]}, "invalidValue"),
        ({"schemas": [PATCHOP], "Operations": [{"op": "replace", "value": 3}]},
         "invalidValue"),
    ]
    for body, kind in bad_patches:
        check_error(c.req("PATCH", "/Users/" + uid, raw=json.dumps(body)), 400, kind)
    for f in ('displayName co "x"', 'userName eq "a" and active eq true', "userName eq x",
              'userName gt "a"', "", 'userName eq "a'):
        check_error(c.get("/Users?filter=" + urllib.parse.quote(f)), 400, "invalidFilter")
    # a userName taken (without case)
    check_error(c.post(okta_user("BOB", "ITSM-L1")), 409, "uniqueness")
    # unknown ids and paths
    check_error(c.get("/Users/no-such-id"), 404)
    check_error(c.get("/Users/bad$id"), 404)
    check_error(c.patch("no-such-id", [{"op": "replace", "value": {"active": False}}]), 404)
    check_error(c.delete("no-such-id"), 404)
    check_error(c.get("/Groups"), 404)
    check_error(c.req("DELETE", "/Users"), 405)
    check_error(c.req("POST", "/ServiceProviderConfig", {}), 405)
    assert helpers.db_snapshot(rdb) == before


def test_discovery_documents(scim):
    c = scim
    r = c.get("/ServiceProviderConfig")
    spc = scim_json(r)
    assert spc["schemas"] == ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"]
    assert spc["patch"]["supported"] is True and spc["filter"]["supported"] is True
    assert spc["filter"]["maxResults"] == 200 and spc["bulk"]["supported"] is False
    assert spc["authenticationSchemes"][0]["type"] == "oauthbearertoken"
    assert spc["meta"]["location"] == c.base + "/ServiceProviderConfig"
    l = check_list(c.get("/ResourceTypes"), 1)
    rt = l["Resources"][0]
    assert rt["id"] == "User" and rt["endpoint"] == "/Users" and rt["schema"] == CORE
    assert rt["schemaExtensions"] == [{"schema": ENT, "required": False}]
    assert scim_json(c.get("/ResourceTypes/User"))["name"] == "User"
    l = check_list(c.get("/Schemas"), 2)
    assert [s["id"] for s in l["Resources"]] == [CORE, ENT]
    names = [a["name"] for a in l["Resources"][0]["attributes"]]
    assert "userName" in names and "active" in names and "emails" in names
    assert scim_json(c.get("/Schemas/" + ENT))["id"] == ENT
    check_error(c.get("/Schemas/urn:nope"), 404)


def test_named_seats_beyond_bought_are_refused_whole(scim, rdb):
    c = scim
    for u in ("s1", "s2"):
        check_user(c.post(okta_user(u, "ITSM-LEAD")), 201, c.base)
    assert named(rdb) == ["s1", "s2"]
    before = helpers.db_snapshot(rdb)
    e = check_error(c.post(okta_user("s3", "ITSM-LEAD")), 409)
    assert "2 named seats" in e["detail"] and "nothing was changed" in e["detail"]
    assert helpers.db_snapshot(rdb) == before
    check_list(c.find("s3"), 0)
    # an existing user promoted past the limit: refused, the record unchanged
    uid = check_user(c.post(okta_user("s4", "ITSM-L1")), 201, c.base)["id"]
    before = helpers.db_snapshot(rdb)
    body = okta_user("s4", "ITSM-L3")
    check_error(c.put(uid, body), 409)
    assert helpers.db_snapshot(rdb) == before


def test_the_provisioning_role_cannot_buy_seats(scim, redis_server, rdb):
    """nginx's SCIM link runs as seatgate-sync: user records and named seats,
    never a pool's settings."""
    r = redis.Redis(host="127.0.0.1", port=redis_server.port, username="seatgate-sync",
                    password=helpers.SYNC_PASSWORD, decode_responses=True)
    with pytest.raises(redis.exceptions.NoPermissionError):
        r.hset("sg:{technicians}:conf", "floating", 1000)
    with pytest.raises(redis.exceptions.NoPermissionError):
        r.sadd("sg:{_}:pools", "free-seats")
    assert rdb.hget("sg:{technicians}:conf", "floating") == "3"
    r.close()


def test_deprovisioning_evicts_a_cached_grant_and_refuses_pam(scim, nginx, redis_server,
                                                              rdb, tmp_path, seatctl_json):
    """A floating seat held through the portal (another nginx, decision role,
    with a decision cache); SCIM deactivates the user: the portal refuses
    within 2 s, the seat is released and audited, PAM refuses."""
    c = scim
    uid = check_user(c.post(okta_user("carl", "ITSM-L1")), 201, c.base)["id"]
    portal = nginx(PORTAL, zone="sg:1m")
    r = portal.get("/app/index.html", headers={"X-User": "carl"})
    assert r.status_code == 200 and sg(r)["seat"] == "floating"
    r = portal.get("/app/index.html", headers={"X-User": "carl"})
    assert sg(r)["cache"] == "HIT"
    assert rdb.zrange("sg:{technicians}:leases", 0, -1) == ["carl"]
    t0 = time.monotonic()
    check_user(c.patch(uid, [{"op": "replace", "value": {"active": False}}]), 200, c.base)
    while True:
        r = portal.get("/app/index.html", headers={"X-User": "carl"})
        if r.status_code == 403:
            break
        assert time.monotonic() - t0 < 2.0, "the cached grant outlived the revocation bound"
        time.sleep(0.05)
    assert sg(r)["reason"] == "user_disabled"
    assert rdb.zrange("sg:{technicians}:leases", 0, -1) == []
    revoked = [e for e in helpers.audit_entries(rdb, "technicians")
               if e["ev"] == "revoke" and e["user"] == "carl"]
    assert revoked and revoked[0]["via"] == "scim" and revoked[0]["reason"] == "user_disabled"
    # PAM refuses the account check (pamtester through pam_wrapper)
    from test_pam import Pam, expect
    pam = Pam(tmp_path, redis_server.decide_url)
    res = pam.run(pam.service("sshd", "pool=technicians"), "carl", "acct_mgmt")
    expect(res, "PAM_PERM_DENIED")
    # reactivated: the portal grants again
    check_user(c.patch(uid, [{"op": "replace", "value": {"active": True}}]), 200, c.base)
    t0 = time.monotonic()
    while portal.get("/app/index.html", headers={"X-User": "carl"}).status_code != 200:
        assert time.monotonic() - t0 < 2.0
        time.sleep(0.05)


def test_redis_down_is_503_and_config_is_checked(nginx, redis_server, tmp_path, shop):
    tok = tmp_path / "t"
    tok.write_text(TOKEN)
    os.chmod(tok, 0o600)
    ng = nginx(SCIM_SERVER % {"map": MAP, "token": tok},
               redis_url="redis://127.0.0.1:%d" % helpers.closed_port(), zone=None)
    c = Client(ng)
    check_error(c.get("/Users"), 503)
    check_error(c.post(okta_user("x", "ITSM-L1")), 503)
    assert c.get("/ServiceProviderConfig").status_code == 200
    # configuration errors
    os.chmod(tok, 0o644)
    rc, out = nginx(SCIM_SERVER % {"map": MAP, "token": tok}, start=False).test_config()
    assert rc != 0 and "readable by others" in out, out
    os.chmod(tok, 0o600)
    short = tmp_path / "short"
    short.write_text("abc")
    os.chmod(short, 0o600)
    badmap = tmp_path / "bad.map"
    badmap.write_text("[source]\nuser = login\n[rule x]\nif nope = 1\n")
    for conf, why in (
            (SCIM_SERVER % {"map": MAP, "token": short}, "at least 16"),
            (SCIM_SERVER % {"map": badmap, "token": tok}, "nope"),
            ((SCIM_SERVER % {"map": MAP, "token": tok}).replace("name=okta", "size=1"),
             'invalid parameter "size=1"'),
            ((SCIM_SERVER % {"map": MAP, "token": tok}).replace("token_file=%s" % tok, ""),
             "needs one of token_file=FILE or auth=nginx")):
        rc, out = nginx(conf, start=False).test_config()
        assert rc != 0 and why in out, out


def test_an_attribute_too_long_to_read_whole_is_refused(scim, rdb):
    """A mapped attribute is read whole or refused (400 invalidValue), never
    cut: a cut list of groups could drop the one a rule matches."""
    c = scim
    before = helpers.db_snapshot(rdb)
    body = okta_user("longtitle", "ITSM-L3" + " " * 5000)
    e = check_error(c.post(body), 400, "invalidValue")
    assert "title" in e["detail"] and "longer than" in e["detail"], e
    body = okta_user("manygroups", "ITSM-L1")
    body["groups"] = [{"value": "g%d" % i, "display": "Group-%04d-%s" % (i, "x" * 60)}
                      for i in range(80)]
    e = check_error(c.post(body), 400, "invalidValue")
    assert "groups" in e["detail"] and "longer than" in e["detail"], e
    assert helpers.db_snapshot(rdb) == before
    check_list(c.find("longtitle"), 0)


def test_attribute_names_are_case_insensitive(scim, rdb):
    """RFC 7643 2.1: "Title" is title. A POST that spells it so, and a PATCH
    without a path that does, reach the map (the rule on job titles), and
    the resource is stored under the RFC's spelling."""
    c = scim
    body = okta_user("casey", "x")
    del body["title"]
    body["Title"] = "ITSM-L3"
    uid = check_user(c.post(body), 201, c.base, "casey")["id"]
    assert record(rdb, "casey") == (False, False, ["senior", "technicians"])
    assert "casey" in named(rdb)
    u = check_user(c.patch(uid, [{"op": "replace", "value": {"TITLE": "ITSM-L1"}}]), 200,
                   c.base, "casey")
    assert record(rdb, "casey") == (False, False, ["technicians"])
    assert "casey" not in named(rdb)
    titles = [k for k in u if k.lower() == "title"]
    assert titles == ["title"] and u["title"] == "ITSM-L1", u   # stored as RFC 7643 spells it


def test_a_body_larger_than_the_buffer_is_refused_not_read_from_disk(scim, rdb):
    """The endpoint reads bodies from memory only (reading a temporary file
    back would block the worker): a body over client_body_buffer_size (16k
    here) is 413, announced or chunked, and changes nothing."""
    c = scim
    before = helpers.db_snapshot(rdb)
    big = okta_user("bigbody", "ITSM-L1")
    big["nickName"] = "n" * 20000
    r = c.post(big)
    e = check_error(r, 413)
    assert "client_body_buffer_size" in e["detail"], e
    data = json.dumps(big).encode()
    chunks = iter([data[i:i + 4096] for i in range(0, len(data), 4096)])
    r = requests.post(c.base + "/Users", data=chunks, timeout=10,
                      headers={"Authorization": "Bearer " + TOKEN,
                               "Content-Type": "application/scim+json"})
    check_error(r, 413)
    assert helpers.db_snapshot(rdb) == before
    # a body that fits is read as before
    small = okta_user("smallbody", "ITSM-L1")
    small["nickName"] = "n" * 8000
    check_user(c.post(small), 201, c.base, "smallbody")
