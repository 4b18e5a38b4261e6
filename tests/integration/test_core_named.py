"""Named seats, assignments, hybrid pools and revocation."""
from helpers import EX_DENIED, EX_OK, EX_USAGE, audit_entries, db_snapshot, leases


def test_named_user_granted_even_when_floating_full(seatctl, seatctl_json, rdb):
    seatctl("pool", "set", "p", "--named", "1", "--floating", "1", check=EX_OK)
    seatctl("assign", "p", "alice", check=EX_OK)
    seatctl("acquire", "p", "bob", check=EX_OK)
    rc, d, _ = seatctl_json("acquire", "p", "carol")
    assert rc == EX_DENIED and d["result"] == "denied_exhausted"
    for _ in range(3):
        rc, d, _ = seatctl_json("acquire", "p", "alice", check=EX_OK)
        assert d["result"] == "granted_named" and d["seat"] == "named"
    rc, d, _ = seatctl_json("check", "p", "alice", check=EX_OK)
    assert d["result"] == "granted_named"
    # a named holder never takes a floating seat
    assert set(leases(rdb, "p")) == {"bob"}


def test_named_only_pool_denies_unassigned(seatctl, seatctl_json):
    seatctl("pool", "set", "p", "--named", "2", check=EX_OK)
    seatctl("assign", "p", "alice", check=EX_OK)
    rc, d, _ = seatctl_json("acquire", "p", "bob")
    assert rc == EX_DENIED
    assert (d["result"], d["seat"]) == ("denied_unassigned", "none")
    assert seatctl_json("acquire", "p", "alice")[1]["result"] == "granted_named"


def test_assign_refuses_beyond_named_seats(seatctl, seatctl_json, rdb):
    seatctl("pool", "set", "p", "--named", "2", check=EX_OK)
    snap = db_snapshot(rdb)
    rc, out, err = seatctl("assign", "p", "a", "b", "c")
    assert rc == EX_DENIED and "named seats" in err
    assert db_snapshot(rdb) == snap, "a refused assign changed Redis"
    assert rdb.smembers("sg:{p}:named") == set()

    seatctl("assign", "p", "a", check=EX_OK)
    snap = db_snapshot(rdb)
    rc, _, _ = seatctl("assign", "p", "b", "c")
    assert rc == EX_DENIED
    assert db_snapshot(rdb) == snap
    assert rdb.smembers("sg:{p}:named") == {"a"}
    # re-assigning a holder and duplicates do not use up seats
    seatctl("assign", "p", "a", "b", "b", check=EX_OK)
    assert rdb.smembers("sg:{p}:named") == {"a", "b"}
    rc, _, _ = seatctl("assign", "p", "c")
    assert rc == EX_DENIED
    _, show, _ = seatctl_json("pool", "show", "p")
    assert (show["named"], show["assigned"]) == (2, 2)


def test_assign_to_unknown_pool_is_input_error(seatctl, rdb):
    snap = db_snapshot(rdb)
    rc, _, err = seatctl("assign", "nope", "alice")
    assert rc == EX_USAGE and "no such pool" in err
    assert db_snapshot(rdb) == snap


def test_unassign_takes_effect_and_revokes(seatctl, seatctl_json, rdb):
    seatctl("pool", "set", "p", "--named", "1", "--floating", "0", check=EX_OK)
    seatctl("assign", "p", "alice", check=EX_OK)
    assert seatctl_json("acquire", "p", "alice")[1]["result"] == "granted_named"
    ps = rdb.pubsub()
    ps.subscribe("seatgate:revoke")
    ps.get_message(timeout=1)  # subscribe confirmation
    seatctl("unassign", "p", "alice", check=EX_OK)
    rc, d, _ = seatctl_json("check", "p", "alice")
    assert rc == EX_DENIED and d["result"] != "granted_named"
    assert d["result"] == "denied_unassigned"
    rc, d, _ = seatctl_json("acquire", "p", "alice")
    assert rc == EX_DENIED and d["result"] == "denied_unassigned"
    # hosts are told at once
    msg = ps.get_message(timeout=2)
    assert msg and msg["type"] == "message" and msg["data"] == "p\talice"
    ps.close()
    # the seat is free for someone else
    seatctl("assign", "p", "bob", check=EX_OK)
    assert seatctl_json("acquire", "p", "bob")[1]["result"] == "granted_named"


def test_unassigned_named_user_falls_back_to_floating(seatctl, seatctl_json):
    seatctl("pool", "set", "p", "--named", "1", "--floating", "1", check=EX_OK)
    seatctl("assign", "p", "alice", check=EX_OK)
    seatctl("unassign", "p", "alice", check=EX_OK)
    rc, d, _ = seatctl_json("check", "p", "alice")
    assert d["result"] == "granted_floating" and d["seat"] == "floating"


def test_hybrid_pool(seatctl, seatctl_json, rdb):
    seatctl("pool", "set", "p", "--named", "2", "--floating", "2", check=EX_OK)
    seatctl("assign", "p", "n1", "n2", check=EX_OK)
    got = {}
    for u in ("n1", "f1", "n2", "f2", "f3"):
        rc, d, _ = seatctl_json("acquire", "p", u)
        got[u] = (rc, d["result"], d["seat"])
    assert got["n1"] == (EX_OK, "granted_named", "named")
    assert got["n2"] == (EX_OK, "granted_named", "named")
    assert got["f1"] == (EX_OK, "granted_floating", "floating")
    assert got["f2"] == (EX_OK, "granted_floating", "floating")
    assert got["f3"] == (EX_DENIED, "denied_exhausted", "none")
    assert set(leases(rdb, "p")) == {"f1", "f2"}
    _, show, _ = seatctl_json("pool", "show", "p")
    assert (show["assigned"], show["in_use"]) == (2, 2)
    _, st, _ = seatctl_json("status", "p", check=EX_OK)
    holders = {(h["user"], h["seat"]) for h in st["pools"][0]["holders"]}
    assert holders == {("n1", "named"), ("n2", "named"), ("f1", "floating"),
                       ("f2", "floating")}
    # a floating seat released goes to the next user; named are untouched
    seatctl("release", "p", "f1", check=EX_OK)
    assert seatctl_json("acquire", "p", "f3")[0] == EX_OK
    assert seatctl_json("acquire", "p", "n1")[1]["result"] == "granted_named"


def test_named_grant_is_audited(seatctl, rdb):
    seatctl("pool", "set", "p", "--named", "1", check=EX_OK)
    seatctl("assign", "p", "alice", check=EX_OK)
    n = len(audit_entries(rdb, "p"))
    seatctl("acquire", "p", "alice", check=EX_OK)
    new = audit_entries(rdb, "p")[n:]
    assert any(e["user"] == "alice" and e["result"] == "granted_named" for e in new), new
