"""Audit: every grant, release, denial, assign and unassign is appended to the
pool's stream sg:{POOL}:audit with ev, pool, user, obo, via, result, reason."""
from helpers import EX_DENIED, EX_OK, audit_entries

FIELDS = ("ev", "pool", "user", "obo", "via", "result", "reason")


def new_entries(rdb, before, pool="p"):
    return audit_entries(rdb, pool)[before:]


def test_every_state_change_is_audited(seatctl, rdb):
    seatctl("pool", "set", "p", "--named", "1", "--floating", "1", "--features", "cmdb",
            check=EX_OK)
    ev = audit_entries(rdb, "p")
    assert ev and ev[0]["ev"] == "pool_created"

    def step(args, rc, want, pool="p"):
        n = len(audit_entries(rdb, pool))
        seatctl(*args, check=rc)
        new = new_entries(rdb, n, pool)
        assert len(new) >= 1, "%r appended nothing to the audit stream" % (args,)
        e = new[-1]
        for f in FIELDS:
            assert f in e, (args, f, e)
        assert e["pool"] == pool and e["via"] == "cli"
        for k, v in want.items():
            assert e[k] == v, (args, k, e)
        return e

    step(("assign", "p", "alice"), EX_OK,
         {"ev": "assign", "user": "alice", "result": "ok", "reason": "named_seat_assigned"})
    step(("acquire", "p", "bob", "--session", "s1"), EX_OK,
         {"ev": "grant", "user": "bob", "obo": "", "result": "granted_floating",
          "reason": "floating_seat"})
    step(("acquire", "p", "carol"), EX_DENIED,
         {"ev": "deny", "user": "carol", "result": "denied_exhausted",
          "reason": "all_floating_in_use"})
    step(("acquire", "p", "dave", "--feature", "itom"), EX_DENIED,
         {"ev": "deny", "user": "dave", "result": "denied_feature"})
    step(("acquire", "p", "bob", "--session", "s2"), EX_OK,
         {"ev": "join", "user": "bob", "result": "granted_floating"})
    step(("release", "p", "bob", "--session", "s1"), EX_OK,
         {"ev": "release", "user": "bob", "result": "released", "reason": "session_closed"})
    step(("release", "p", "bob"), EX_OK,
         {"ev": "release", "user": "bob", "result": "released", "reason": "seat_released"})
    step(("unassign", "p", "alice"), EX_OK,
         {"ev": "unassign", "user": "alice", "result": "ok", "reason": "named_seat_revoked"})
    # a registry change is audited in the registry's stream (pool "_"), and in
    # the pools whose rules it touches (none here: p has no group rule)
    step(("user", "set", "erin", "--groups", "ops"), EX_OK, {"ev": "user_set", "user": "erin"},
         pool="_")
    step(("pool", "set", "p", "--floating", "2"), EX_OK, {"ev": "pool_updated"})


def test_service_account_denial_audited_with_both_ids(seatctl, rdb):
    seatctl("pool", "set", "p", "--floating", "1", check=EX_OK)
    n = len(audit_entries(rdb, "p"))
    seatctl("acquire", "p", "notsvc", "--on-behalf-of", "alice", check=EX_DENIED)
    e = new_entries(rdb, n)[-1]
    assert (e["ev"], e["user"], e["obo"]) == ("deny", "notsvc", "alice")
    assert e["reason"] == "on_behalf_of_requires_service_account"


def test_renewal_does_not_flood_audit(seatctl, rdb):
    seatctl("pool", "set", "p", "--floating", "1", check=EX_OK)
    seatctl("acquire", "p", "bob", check=EX_OK)
    n = len(audit_entries(rdb, "p"))
    for _ in range(3):
        seatctl("acquire", "p", "bob", check=EX_OK)
    assert len(audit_entries(rdb, "p")) == n


def test_repeated_denials_are_folded_but_counted(seatctl, rdb):
    seatctl("pool", "set", "p", "--floating", "1", check=EX_OK)
    seatctl("acquire", "p", "bob", check=EX_OK)
    n = len(audit_entries(rdb, "p"))
    for _ in range(3):
        seatctl("acquire", "p", "carol", check=EX_DENIED)
    new = new_entries(rdb, n)
    assert [e["ev"] for e in new] == ["deny"]
    assert rdb.hget("sg:{p}:stats", "n:denied_exhausted") == "3"


def test_denials_all_audited_without_folding(seatctl, rdb):
    seatctl("pool", "set", "p", "--floating", "1", "--deny-fold", "0", check=EX_OK)
    seatctl("acquire", "p", "bob", check=EX_OK)
    n = len(audit_entries(rdb, "p"))
    for _ in range(3):
        seatctl("acquire", "p", "carol", check=EX_DENIED)
    new = new_entries(rdb, n)
    assert [e["ev"] for e in new] == ["deny"] * 3


def test_refused_assign_is_not_an_assignment(seatctl, rdb):
    seatctl("pool", "set", "p", "--named", "1", check=EX_OK)
    n = len(audit_entries(rdb, "p"))
    seatctl("assign", "p", "a", "b", check=EX_DENIED)
    assert not [e for e in new_entries(rdb, n) if e["ev"] == "assign"]
