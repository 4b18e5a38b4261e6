"""seatctl sync (issue 13): an HR export through a map file into user
records and named seats; dry-run changes nothing, a second run changes
nothing, bad input applies nothing, over-assignment is refused."""
import json
import os

import helpers
from helpers import EX_OK

MAP = os.path.join(helpers.REPO, "conf", "sync-map.conf")
HEADER = "login,employment_status,account_type,job_code,department,ad_groups\n"
EXPORT = HEADER + (
    "ana,active,person,ITSM-L3,IT,CMDB-Admins;Staff\n"
    "bo,active,person,ITSM-L1,IT,Staff\n"
    "cy,terminated,person,ITSM-LEAD,IT,Staff\n"
    "dee,on_leave,person,ITSM-LEAD,IT,\n"
    "bridge,active,service,,Integration,\n"
    "eve,active,person,HR-1,HR,Staff\n")


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def registry(rdb):
    return {k: v for k, v in rdb.hgetall("sg:{_}:users").items()}


def test_sync_plan_apply_and_rerun(seatctl, seatctl_json, rdb, redis_server, tmp_path):
    seatctl("pool", "set", "technicians", "--named", "3", "--floating", "5", check=EX_OK)
    seatctl("assign", "technicians", "zed", check=EX_OK)          # by hand: stays
    export = write(tmp_path, "hr.csv", EXPORT)
    before = helpers.db_snapshot(redis_server.client())
    res = seatctl_json("sync", "--from", export, "--map", MAP, "--dry-run", check=EX_OK)
    plan = res.out
    assert plan["applied"] is False and plan["people"] == 6
    recs = {r["user"]: r for r in plan["records"]}
    assert recs["ana"]["groups"] == "cmdb,senior,technicians"
    assert recs["ana"]["rules"] == "senior-agents,cmdb-admins"
    assert recs["bo"]["groups"] == "technicians" and not recs["bo"]["disabled"]
    assert recs["cy"]["disabled"] is True
    assert recs["dee"]["disabled"] is False and recs["dee"]["groups"] == "senior,technicians"
    assert recs["bridge"]["service_account"] is True
    assert recs["eve"]["groups"] == "" and recs["eve"]["rules"] == ""
    assert recs["ana"]["was"] is None
    [pool] = plan["named"]
    assert (pool["pool"], pool["bought"], pool["assigned_before"], pool["assigned_after"]) == \
        ("technicians", 3, 1, 3)
    assert pool["assign"] == ["ana", "dee"] and pool["unassign"] == []
    # a dry run changes nothing but the change log it writes to the audit
    after = helpers.db_snapshot(redis_server.client())
    assert {k: v for k, v in after.items() if k != "sg:{_}:audit"} == \
        {k: v for k, v in before.items() if k != "sg:{_}:audit"}
    entries = [e for e in helpers.audit_entries(rdb, "_") if e["ev"] == "sync_plan"]
    ana = [e for e in entries if e["user"] == "ana"]
    assert [(e["reason"], e["before"], e["after"], e["via"]) for e in ana] == [
        ("senior-agents,cmdb-admins", "-",
         "disabled=0 service_account=0 groups=cmdb,senior,technicians", "sync"),
        ("senior-agents,cmdb-admins", "-", "named seat of technicians", "sync")]
    assert all(e["by"] for e in entries)
    # seatctl audit shows the change log (who asked, before, after)
    log = [json.loads(ln) for ln in seatctl("audit", "--pool", "_", check=EX_OK).out.splitlines()]
    assert {"by", "before", "after"} <= set(log[-1])
    # applied
    res = seatctl_json("sync", "--from", export, "--map", MAP, check=EX_OK)
    assert res.out["applied"] is True
    applied = [e for e in helpers.audit_entries(rdb, "_") if e["ev"] == "sync"]
    assert {e["user"] for e in applied} == {"ana", "bo", "cy", "dee", "bridge", "eve"}
    named = set(rdb.smembers("sg:{technicians}:named"))
    assert named == {"zed", "ana", "dee"}
    show = seatctl_json("user", "show", "cy", check=EX_OK).out
    assert show["disabled"] is True
    assert seatctl("check", "technicians", "cy").rc == 1           # disabled: denied
    assert seatctl("check", "technicians", "ana").rc == 0
    # why does ana have what she has: one command
    assert seatctl("acquire", "technicians", "ana", "--session", "s1").rc == 0
    ex = seatctl_json("explain", "ana", check=EX_OK).out
    assert ex["groups"] == "cmdb,senior,technicians" and ex["disabled"] is False
    assert ex["record_from_sync"]["reason"] == "senior-agents,cmdb-admins"
    assert ex["record_from_sync"]["after"] == \
        "disabled=0 service_account=0 groups=cmdb,senior,technicians"
    [held] = ex["holds"]
    assert (held["pool"], held["seat"], held["sessions"]) == ("technicians", "named", 1)
    assert held["given_by_sync"]["reason"] == "senior-agents,cmdb-admins"
    assert held["given_by_sync"]["via"] == "sync"
    assert [e["ev"] for e in ex["last"]][-2:] == ["assign", "grant"]
    txt = seatctl("explain", "ana", check=EX_OK).out
    assert "record from sync at" in txt and "rules senior-agents,cmdb-admins" in txt
    assert "technicians          named     given by sync" in txt
    # a second run changes nothing
    snap = helpers.db_snapshot(redis_server.client())
    res = seatctl_json("sync", "--from", export, "--map", MAP, check=EX_OK)
    assert res.out["records"] == [] and res.out["named"][0]["assign"] == []
    assert res.out["named"][0]["unassign"] == []
    after = helpers.db_snapshot(redis_server.client())
    assert after == snap                       # not even a change log: nothing changed
    # dee leaves: her seat goes back; --full disables bo, who is gone
    export2 = write(tmp_path, "hr2.csv", EXPORT.replace("dee,on_leave", "dee,terminated")
                    .replace("bo,active,person,ITSM-L1,IT,Staff\n", ""))
    res = seatctl_json("sync", "--from", export2, "--map", MAP, "--full", check=EX_OK)
    assert res.out["named"][0]["unassign"] == ["dee"]
    assert res.out["disable"] == ["bo"]
    assert set(rdb.smembers("sg:{technicians}:named")) == {"zed", "ana"}
    assert seatctl_json("user", "show", "bo", check=EX_OK).out["disabled"] is True
    # the disable is in the change log, with the record before it
    [gone] = [e for e in helpers.audit_entries(rdb, "_")
              if e["ev"] == "sync" and e["user"] == "bo" and e["reason"] == "absent_from_export"]
    assert gone["before"] == "disabled=0 service_account=0 groups=technicians", gone
    assert gone["after"] == "disabled=1 service_account=0 groups=technicians", gone
    # and bo, disabled already, is not listed (or logged) again run after run
    n = len(helpers.audit_entries(rdb, "_"))
    res = seatctl_json("sync", "--from", export2, "--map", MAP, "--full", check=EX_OK)
    assert res.out["disable"] == [] and res.out["records"] == []
    assert len(helpers.audit_entries(rdb, "_")) == n


def test_a_sync_that_stops_part_way_logs_what_it_applied(seatctl, seatctl_json, rdb,
                                                          redis_server, tmp_path):
    """The records are applied, the named seats are refused (a role that may
    not write them): the change log has the records as applied and the seats
    as not applied, the error says so, and a second run finishes the rest."""
    seatctl("pool", "set", "technicians", "--named", "3", "--floating", "5", check=EX_OK)
    acl = open(os.path.join(helpers.REPO, "conf", "redis-acl.conf")).read()
    line = [ln for ln in acl.splitlines() if ln.startswith("user seatgate-sync ")][0]
    rules = line.split(" ", 2)[2].replace(">CHANGE-ME-sync", ">partial-pw").replace(
        " ~sg:{[^_]*}:named", " %R~sg:{[^_]*}:named")
    rdb.execute_command("ACL", "SETUSER", "partial", "reset", *rules.split())
    try:
        url = "redis://partial:partial-pw@127.0.0.1:%d" % redis_server.port
        export = write(tmp_path, "hr.csv", EXPORT)
        res = helpers.run_seatctl(url, "sync", "--from", export, "--map", MAP,
                                  env=helpers.seatctl_env())
        assert res.rc == helpers.EX_BACKEND, res
        assert "sync stopped part way: user records, seats taken back were applied" in res.err, \
            res.err
        assert "NOPERM" in res.err or "no permissions" in res.err, res.err
        log = [e for e in helpers.audit_entries(rdb, "_") if e["ev"] in ("sync", "sync_plan")]
        recs = [e for e in log if e["seat"] == "none"]
        seats = [e for e in log if e["seat"] == "named"]
        assert {e["user"] for e in recs} == {"ana", "bo", "cy", "dee", "bridge", "eve"}
        assert all(e["ev"] == "sync" and e["result"] == "ok" for e in recs), recs
        assert sorted(e["user"] for e in seats) == ["ana", "dee"]
        assert all(e["ev"] == "sync_plan" and e["result"] == "not_applied" for e in seats)
        assert rdb.scard("sg:{technicians}:named") == 0
        assert seatctl_json("user", "show", "cy", check=EX_OK).out["disabled"] is True
    finally:
        rdb.execute_command("ACL", "DELUSER", "partial")
    res = seatctl_json("sync", "--from", export, "--map", MAP, check=EX_OK)
    assert res.out["records"] == [] and res.out["named"][0]["assign"] == ["ana", "dee"]
    assert set(rdb.smembers("sg:{technicians}:named")) == {"ana", "dee"}


def test_sync_refuses_more_named_seats_than_bought(seatctl, rdb, redis_server, tmp_path):
    seatctl("pool", "set", "technicians", "--named", "1", "--floating", "5", check=EX_OK)
    export = write(tmp_path, "hr.csv", EXPORT)
    before = helpers.db_snapshot(redis_server.client())
    res = seatctl("sync", "--from", export, "--map", MAP)
    assert res.rc == 1, res
    assert "pool technicians: the plan assigns 2 named seats, the pool has bought 1" in res.err
    assert helpers.db_snapshot(redis_server.client()) == before


def test_sync_bad_input_applies_nothing(seatctl, redis_server, tmp_path):
    seatctl("pool", "set", "technicians", "--named", "5", "--floating", "5", check=EX_OK)
    good_map = open(MAP).read()
    cases = [
        (EXPORT.replace("login,", "name,"), good_map, "map's user column 'login' is not in the header"),
        (EXPORT + ",active,person,,,\n", good_map, "line 8, field login"),
        (EXPORT + "ana,active,person,,,\n", good_map, "line 8, field login: 'ana' is already on line 2"),
        (EXPORT + "x,active\n", good_map, "line 8: 2 fields, the header has 6"),
        (EXPORT, good_map.replace("[rule cmdb-admins]", "[rule cmdb admins]"), "map line"),
        (EXPORT, good_map + "\n[rule x]\nif colour = red\n", "tests 'colour'"),
        (EXPORT, good_map + "\n[rule y]\nnamed = nosuchpool\n", "pool nosuchpool, which does not exist"),
        (EXPORT, good_map + "\n[rule z]\ngroups = a,b=c\n", "map line"),
        (EXPORT, good_map.replace("user = login", "usr = login"), "unknown setting 'usr'"),
    ]
    before = helpers.db_snapshot(redis_server.client())
    for i, (export, mp, why) in enumerate(cases):
        e = write(tmp_path, "e%d.csv" % i, export)
        m = write(tmp_path, "m%d.conf" % i, mp)
        res = seatctl("sync", "--from", e, "--map", m)
        assert res.rc == 2 and why in res.err, (i, res)
        assert helpers.db_snapshot(redis_server.client()) == before, i


ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


def scim_user(name, title, dept, groups=(), active=True):
    return {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": name,
            "active": active, "title": title, ENTERPRISE: {"department": dept},
            "groups": [{"value": "g-" + g, "display": g} for g in groups]}


def test_sync_from_scim_resources(seatctl, seatctl_json, rdb, tmp_path):
    """The same map drives SCIM 2.0 User resources (as Okta or Entra ID
    export them): a ListResponse or one resource a line; active false
    disables; title, the enterprise department and the groups' display
    names feed the rules."""
    seatctl("pool", "set", "technicians", "--named", "3", "--floating", "5", check=EX_OK)
    users = [scim_user("ana", "ITSM-L3", "IT", ["CMDB-Admins"]),
             scim_user("bo", "ITSM-L1", "IT"),
             scim_user("cy", "ITSM-LEAD", "IT", active=False)]
    lst = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
           "totalResults": 3, "Resources": users}
    f = write(tmp_path, "users.json", json.dumps(lst, indent=2))
    res = seatctl_json("sync", "--from", f, "--map", MAP, "--format", "scim", check=EX_OK)
    recs = {r["user"]: r for r in res.out["records"]}
    assert recs["ana"]["groups"] == "cmdb,senior,technicians"
    assert recs["bo"]["groups"] == "technicians"
    assert recs["cy"]["disabled"] is True
    assert res.out["named"][0]["assign"] == ["ana"]
    assert set(rdb.smembers("sg:{technicians}:named")) == {"ana"}
    # one resource a line: the same people, nothing changes
    nd = write(tmp_path, "users.ndjson", "\n".join(json.dumps(u) for u in users) + "\n")
    res = seatctl_json("sync", "--from", nd, "--map", MAP, "--format", "scim", check=EX_OK)
    assert res.out["records"] == [] and res.out["named"][0]["assign"] == []
    # malformed resources apply nothing
    for bad, why in ((json.dumps({"Resources": [{"active": True}]}), "resource 1, field userName"),
                     (json.dumps({"Resources": [{"userName": "x", "active": "yes"}]}),
                      "resource 1, field active"),
                     (json.dumps({"Resources": {"userName": "x"}}), "Resources: not an array"),
                     ('{"userName": "a"}\n{"userName": \n', "line 2: not one JSON resource"),
                     (json.dumps({"Resources": [{"userName": "a", "title": 5}]}),
                      "resource 1, field title")):
        g = write(tmp_path, "bad.json", bad)
        r = seatctl("sync", "--from", g, "--map", MAP, "--format", "scim")
        assert r.rc == 2 and why in r.err, (bad, r)


def test_long_values_are_read_whole_or_refused_never_cut(seatctl, seatctl_json, rdb,
                                                           redis_server, tmp_path):
    """A list value longer than any buffer is matched whole (the matching
    group at its end counts); more groups than a user record holds, or an
    over-long status, refuse the whole file with the person and the field
    named, and change nothing."""
    seatctl("pool", "set", "technicians", "--named", "3", "--floating", "5", check=EX_OK)
    many = ";".join("Team-%04d-%s" % (i, "x" * 40) for i in range(120)) + ";CMDB-Admins"
    assert len(many) > 5000
    export = write(tmp_path, "long.csv", HEADER + "ana,active,person,ITSM-L1,IT,%s\n" % many)
    res = seatctl_json("sync", "--from", export, "--map", MAP, "--dry-run", check=EX_OK)
    [rec] = res.out["records"]
    assert rec["groups"] == "cmdb,technicians", rec
    # a map whose rules give one person more groups than a record holds
    rules = "".join("[rule r%d]\nif job = ITSM-L1\ngroups = %s\n" % (
        i, ", ".join("g%d_%d" % (i, k) for k in range(10))) for i in range(7))
    big_map = write(tmp_path, "big.map", open(MAP).read() + rules)
    before = helpers.db_snapshot(redis_server.client())
    res = seatctl("sync", "--from", export, "--map", big_map)
    assert res.rc == helpers.EX_USAGE, res
    assert "ana" in res.err and "more groups than a user record holds" in res.err, res.err
    # an over-long status value
    long_status = write(tmp_path, "status.csv",
                        HEADER + "bo,%s,person,ITSM-L1,IT,Staff\n" % ("active" + "y" * 300))
    res = seatctl("sync", "--from", long_status, "--map", MAP)
    assert res.rc == helpers.EX_USAGE and \
        "line 2, field employment_status: longer than" in res.err, res.err
    assert helpers.db_snapshot(redis_server.client()) == before
