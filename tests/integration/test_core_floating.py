"""Floating seats: first use, per-user counting, sessions, leases, overdraft."""
import time

from helpers import EX_DENIED, EX_OK, audit_entries, leases


def test_floating_taken_on_first_use(seatctl, seatctl_json, rdb):
    seatctl("pool", "set", "p", "--floating", "2", check=EX_OK)
    assert leases(rdb, "p") == {}
    rc, d, _ = seatctl_json("acquire", "p", "alice", check=EX_OK)
    assert (d["result"], d["reason"], d["seat"]) == ("granted_floating", "floating_seat",
                                                      "floating")
    assert d["in_use"] == 1 and d["floating"] == 2 and d["overdraft"] is False
    assert d["expires_ms"] > 0
    assert set(leases(rdb, "p")) == {"alice"}
    # renewal of a held seat
    rc, d, _ = seatctl_json("acquire", "p", "alice", check=EX_OK)
    assert (d["result"], d["reason"]) == ("granted_floating", "holds_seat")
    assert d["in_use"] == 1
    seatctl("acquire", "p", "bob", check=EX_OK)
    rc, d, _ = seatctl_json("acquire", "p", "carol")
    assert rc == EX_DENIED
    assert (d["result"], d["reason"], d["seat"]) == ("denied_exhausted", "all_floating_in_use",
                                                      "none")
    assert set(leases(rdb, "p")) == {"alice", "bob"}
    # a holder is never refused its own seat while full
    assert seatctl_json("acquire", "p", "alice")[1]["result"] == "granted_floating"


def test_one_user_several_sessions_holds_one_seat(seatctl, seatctl_json, rdb):
    seatctl("pool", "set", "p", "--floating", "2", check=EX_OK)
    for s in ("web-1", "ssh-2", "ssh-3"):
        rc, d, _ = seatctl_json("acquire", "p", "alice", "--session", s, check=EX_OK)
        assert d["in_use"] == 1, s
    _, show, _ = seatctl_json("pool", "show", "p")
    assert (show["in_use"], show["sessions"]) == (1, 3)
    _, ss, _ = seatctl_json("sessions", "p", check=EX_OK)
    assert sorted(x["session"] for x in ss["sessions"]) == ["ssh-2", "ssh-3", "web-1"]
    assert {x["via"] for x in ss["sessions"]} == {"cli"}
    # another user still gets the second seat; a third does not
    seatctl("acquire", "p", "bob", check=EX_OK)
    assert seatctl("acquire", "p", "carol").rc == EX_DENIED

    # closing one session keeps the seat while the others live
    rc, r, _ = seatctl_json("release", "p", "alice", "--session", "web-1", check=EX_OK)
    assert r["released"] is True and r["seat_released"] is False
    assert "alice" in leases(rdb, "p")
    assert seatctl("acquire", "p", "carol").rc == EX_DENIED
    rc, r, _ = seatctl_json("release", "p", "alice", "--session", "ssh-2", check=EX_OK)
    assert r["seat_released"] is False
    assert "alice" in leases(rdb, "p")
    # closing the last one frees it
    rc, r, _ = seatctl_json("release", "p", "alice", "--session", "ssh-3", check=EX_OK)
    assert r["released"] is True and r["seat_released"] is True
    assert "alice" not in leases(rdb, "p")
    assert seatctl_json("pool", "show", "p")[1]["sessions"] == 1  # bob's
    assert seatctl_json("acquire", "p", "carol")[1]["result"] == "granted_floating"


def test_release_without_session_frees_every_session(seatctl, seatctl_json, rdb):
    seatctl("pool", "set", "p", "--floating", "1", check=EX_OK)
    seatctl("acquire", "p", "alice", "--session", "a", check=EX_OK)
    seatctl("acquire", "p", "alice", "--session", "b", check=EX_OK)
    seatctl("acquire", "p", "alice", check=EX_OK)
    rc, r, _ = seatctl_json("release", "p", "alice", check=EX_OK)
    assert r["seat_released"] is True
    assert leases(rdb, "p") == {}
    assert rdb.zcard("sg:{p}:sess") == 0 and rdb.zcard("sg:{p}:sessidx") == 0
    assert rdb.hlen("sg:{p}:sessinfo") == 0
    # releasing again holds nothing
    rc, r, _ = seatctl_json("release", "p", "alice", check=EX_OK)
    assert r["released"] is False and r["seat_released"] is False
    assert seatctl_json("acquire", "p", "bob")[1]["result"] == "granted_floating"


def test_release_of_other_user_leaves_seat(seatctl, rdb):
    """Per-user session ranges do not leak: 'al' is not a prefix match of 'alice'."""
    seatctl("pool", "set", "p", "--floating", "3", check=EX_OK)
    seatctl("acquire", "p", "alice", "--session", "x", check=EX_OK)
    seatctl("acquire", "p", "al", "--session", "x", check=EX_OK)
    seatctl("release", "p", "al", check=EX_OK)
    assert set(leases(rdb, "p")) == {"alice"}
    assert rdb.zcard("sg:{p}:sess") == 1


def test_expired_lease_is_free_again(seatctl, seatctl_json, rdb):
    seatctl("pool", "set", "p", "--floating", "1", "--idle-timeout", "1s", check=EX_OK)
    rc, d, _ = seatctl_json("acquire", "p", "alice", check=EX_OK)
    assert seatctl("acquire", "p", "bob").rc == EX_DENIED
    time.sleep(1.3)
    # nobody released anything: the lease ran out
    assert seatctl_json("pool", "show", "p")[1]["in_use"] == 0
    # check (which purges nothing) already sees the seat as free
    rc, d, _ = seatctl_json("check", "p", "bob", check=EX_OK)
    assert d["result"] == "granted_floating" and d["in_use"] == 0
    rc, d, _ = seatctl_json("acquire", "p", "bob", check=EX_OK)
    assert d["result"] == "granted_floating"
    assert set(leases(rdb, "p")) == {"bob"}
    rc, d, _ = seatctl_json("check", "p", "alice")
    assert rc == EX_DENIED and d["result"] == "denied_exhausted"
    ev = [(e["ev"], e["user"], e["reason"]) for e in audit_entries(rdb, "p")]
    assert ("expire", "alice", "lease_expired") in ev


def test_renewed_lease_is_not_freed(seatctl, seatctl_json, rdb):
    seatctl("pool", "set", "p", "--floating", "1", "--idle-timeout", "1s", check=EX_OK)
    t0 = time.monotonic()
    rc, d0, _ = seatctl_json("acquire", "p", "alice", check=EX_OK)
    time.sleep(max(0, 0.6 - (time.monotonic() - t0)))
    rc, d1, _ = seatctl_json("acquire", "p", "alice", check=EX_OK)
    assert d1["expires_ms"] > d0["expires_ms"], "renewal did not extend the lease"
    time.sleep(max(0, 1.3 - (time.monotonic() - t0)))
    # 1.3 s after the first grant: the first lease would have run out, the renewed one not
    rc, d, _ = seatctl_json("check", "p", "alice", check=EX_OK)
    assert (d["result"], d["reason"]) == ("granted_floating", "holds_seat")
    rc, d, _ = seatctl_json("acquire", "p", "bob")
    assert rc == EX_DENIED and d["result"] == "denied_exhausted"
    assert set(leases(rdb, "p")) == {"alice"}


def test_lease_option_shortens_one_grant(seatctl, seatctl_json, rdb):
    seatctl("pool", "set", "p", "--floating", "1", "--idle-timeout", "1h", check=EX_OK)
    seatctl("acquire", "p", "alice", "--lease", "1s", check=EX_OK)
    assert seatctl("acquire", "p", "bob").rc == EX_DENIED
    time.sleep(1.3)
    assert seatctl_json("acquire", "p", "bob")[1]["result"] == "granted_floating"


def test_overdraft(seatctl, seatctl_json, rdb):
    seatctl("pool", "set", "p", "--floating", "2", "--overdraft", "50", check=EX_OK)
    for u in ("u1", "u2"):
        rc, d, _ = seatctl_json("acquire", "p", u, check=EX_OK)
        assert d["overdraft"] is False
    n = len(audit_entries(rdb, "p"))
    rc, d, _ = seatctl_json("acquire", "p", "u3", check=EX_OK)
    assert d["result"] == "granted_floating" and d["overdraft"] is True
    assert d["capacity"] == 3 and d["in_use"] == 3
    new = audit_entries(rdb, "p")[n:]
    assert any(e["user"] == "u3" and e["reason"] == "overdraft" and
               e["result"] == "granted_floating" for e in new), new
    assert int(rdb.hget("sg:{p}:stats", "n:overdraft")) == 1
    rc, d, _ = seatctl_json("acquire", "p", "u4")
    assert rc == EX_DENIED and d["result"] == "denied_exhausted"
    assert d["overdraft"] is False
    assert len(leases(rdb, "p")) == 3
    # the human-readable output says it too
    seatctl("release", "p", "u3", check=EX_OK)
    out = seatctl("acquire", "p", "u5", check=EX_OK).out
    assert "overdraft" in out


def test_no_overdraft_without_declaring_it(seatctl, rdb):
    seatctl("pool", "set", "p", "--floating", "2", check=EX_OK)
    rcs = [seatctl("acquire", "p", "u%d" % i).rc for i in range(4)]
    assert rcs == [EX_OK, EX_OK, EX_DENIED, EX_DENIED]
    assert len(leases(rdb, "p")) == 2
