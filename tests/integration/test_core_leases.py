"""Seat model v2, leases and bounds (issue 9 findings 3-7): a seat lives
exactly while one of its sessions lives, the pool caps every lease, a shrink
and an assignment are enforced at once, sessions name both identities, and a
lapsed lease is audited with its own expiry."""
import time

from helpers import EX_DENIED, EX_OK, audit_entries, leases


def server_ms(rdb):
    s, us = rdb.time()
    return s * 1000 + us // 1000


def test_release_of_one_session_recomputes_the_seat(seatctl, rdb):
    """finding 3: acquire s1 --lease 12h; acquire; release s1 -> the seat
    lasts as long as the session left (the pool's 60 s idle timeout), not 12 h."""
    seatctl("pool", "set", "p", "--floating", "2", "--idle-timeout", "60s", check=EX_OK)
    seatctl("acquire", "p", "alice", "--session", "s1", "--lease", "12h", check=EX_OK)
    seatctl("acquire", "p", "alice", check=EX_OK)
    assert leases(rdb, "p")["alice"] > server_ms(rdb) + 11 * 3600 * 1000
    seatctl("release", "p", "alice", "--session", "s1", check=EX_OK)
    left = leases(rdb, "p")["alice"] - server_ms(rdb)
    assert 0 < left <= 60 * 1000, left
    # the last session going frees the seat
    seatctl("release", "p", "alice", "--session", "-", check=EX_OK)
    assert leases(rdb, "p", live_only=False) == {}


def test_every_live_lease_has_a_live_session(seatctl, rdb):
    seatctl("pool", "set", "p", "--floating", "5", "--idle-timeout", "60s", check=EX_OK)
    for i in range(5):
        u = "u%d" % i
        seatctl("acquire", "p", u, "--session", "a", "--lease", "2h", check=EX_OK)
        seatctl("acquire", "p", u, "--session", "b", check=EX_OK)
        seatctl("release", "p", u, "--session", "a" if i % 2 else "b", check=EX_OK)
    now = server_ms(rdb)
    sess = rdb.zrangebyscore("sg:{p}:sess", "(%d" % now, "+inf", withscores=True)
    best = {}
    for m, e in sess:
        u = m.split("\0")[0]
        best[u] = max(best.get(u, 0), e)
    assert leases(rdb, "p") == best


def test_the_pool_caps_the_lease(seatctl, seatctl_json, rdb):
    """finding 4: a client asking for a year gets the pool's longest lease."""
    seatctl("pool", "set", "p", "--floating", "2", "--idle-timeout", "60s", check=EX_OK)
    rc, d, _ = seatctl_json("acquire", "p", "alice", "--lease", "365d")
    assert rc == EX_OK and d["expires_ms"] - server_ms(rdb) <= 12 * 3600 * 1000
    seatctl("pool", "set", "p", "--max-lease", "2m", check=EX_OK)
    rc, d, _ = seatctl_json("acquire", "p", "bob", "--lease", "365d")
    assert rc == EX_OK and 0 < d["expires_ms"] - server_ms(rdb) <= 120 * 1000
    assert seatctl_json("pool", "show", "p")[1]["max_lease"] == 120


def test_shrink_takes_seats_back_and_renewals_cannot_keep_them(seatctl, seatctl_json, rdb):
    """finding 5: pool set --floating 1 with 3 holders keeps 1 holder; the
    others are revoked (pool_shrunk) and their renewals are denied."""
    seatctl("pool", "set", "p", "--floating", "3", "--idle-timeout", "60s", check=EX_OK)
    for u, lease in (("a", "10m"), ("b", "30s"), ("c", "20m")):
        seatctl("acquire", "p", u, "--lease", lease, check=EX_OK)
    rc, out, _ = seatctl_json("pool", "set", "p", "--floating", "1")
    assert rc == EX_OK
    # the leases that end soonest go first
    assert out["revoked"] == ["b", "a"]
    assert set(leases(rdb, "p")) == {"c"}
    for u in ("a", "b"):
        rc, d, _ = seatctl_json("acquire", "p", u)
        assert rc == EX_DENIED and d["reason"] == "all_floating_in_use"
    seatctl("acquire", "p", "c", check=EX_OK)
    assert seatctl_json("pool", "show", "p")[1]["in_use"] == 1
    revokes = [e for e in audit_entries(rdb, "p") if e["ev"] == "revoke"]
    assert [(e["user"], e["reason"]) for e in revokes] == [("b", "pool_shrunk"), ("a", "pool_shrunk")]


def test_assign_turns_a_floating_seat_back_into_the_pool(seatctl, seatctl_json, rdb):
    """finding 6: assigning a named seat to a floating holder frees the floating seat."""
    seatctl("pool", "set", "p", "--named", "1", "--floating", "1", check=EX_OK)
    seatctl("acquire", "p", "alice", "--session", "s1", check=EX_OK)
    seatctl("acquire", "p", "bob", check=EX_DENIED)
    rc, out, _ = seatctl_json("assign", "p", "alice")
    assert rc == EX_OK and out["floating_returned"] == 1
    assert leases(rdb, "p", live_only=False) == {}
    rc, d, _ = seatctl_json("acquire", "p", "alice", "--session", "s1")
    assert d["result"] == "granted_named"
    seatctl("acquire", "p", "bob", check=EX_OK)
    conv = [e for e in audit_entries(rdb, "p") if e["ev"] == "convert"]
    assert [(e["user"], e["seat"]) for e in conv] == [("alice", "floating")]


def test_sessions_name_the_service_account_and_the_human(seatctl, seatctl_json):
    """finding 7: a session of service account bridge acting for h1."""
    seatctl("pool", "set", "p", "--floating", "2", check=EX_OK)
    seatctl("user", "set", "bridge", "--service-account", check=EX_OK)
    seatctl("acquire", "p", "bridge", "--on-behalf-of", "h1", "--session", "chat", check=EX_OK)
    seatctl("acquire", "p", "alice", check=EX_OK)
    rc, out, _ = seatctl_json("sessions", "p")
    got = {(s["user"], s["on_behalf_of"], s["holder"], s["session"]) for s in out["sessions"]}
    assert got == {("bridge", "h1", "h1", "chat"), ("alice", "", "alice", "-")}
    rc, text, _ = seatctl("sessions", "p")
    line = [l for l in text.splitlines() if l.startswith("bridge")]
    assert line and "h1" in line[0]


def test_lapsed_lease_is_audited_with_its_own_expiry(seatctl, rdb):
    seatctl("pool", "set", "p", "--floating", "2", "--idle-timeout", "1s", check=EX_OK)
    seatctl("acquire", "p", "alice", check=EX_OK)
    expiry = leases(rdb, "p")["alice"]
    time.sleep(1.6)
    seatctl("acquire", "p", "bob", check=EX_OK)  # a new grant purges lapsed leases
    ex = [e for e in audit_entries(rdb, "p") if e["ev"] == "expire"]
    assert [e["user"] for e in ex] == ["alice"]
    assert int(ex[0]["at"]) == int(expiry)
    written = int(ex[0]["id"].split("-")[0])
    assert written - int(ex[0]["at"]) >= 500


def test_rules_can_be_removed(seatctl, seatctl_json):
    seatctl("pool", "set", "p", "--floating", "4", "--reserve", "ops=1", "--reserve", "sec=1",
            "--cap", "dev=2", "--include", "ops", "--include", "dev", "--exclude", "temps",
            "--features", "cmdb,itom", check=EX_OK)
    seatctl("pool", "set", "p", "--reserve", "ops=", "--no-cap", "dev", "--no-include", "dev",
            "--no-exclude", "temps", "--no-feature", "itom", check=EX_OK)
    show = seatctl_json("pool", "show", "p")[1]
    assert (show["reserve"], show["cap"], show["include"], show["exclude"], show["features"]) == \
        ("sec=1", "", "ops", "", "cmdb")
    # a reservation set to 0 is removed as well; a cap of 0 stays (a real cap)
    seatctl("pool", "set", "p", "--reserve", "sec=0", "--cap", "dev=0", check=EX_OK)
    show = seatctl_json("pool", "show", "p")[1]
    assert (show["reserve"], show["cap"]) == ("", "dev=0")
    seatctl("pool", "set", "p", "--no-reserve", "nosuch", check=EX_OK)


def test_group_counts_follow_grants_releases_and_expiry(seatctl, seatctl_json, rdb):
    """Reservations and caps read live per-group counts kept by the scripts."""
    seatctl("pool", "set", "p", "--floating", "3", "--reserve", "ops=1", "--cap", "dev=1",
            "--idle-timeout", "1s", check=EX_OK)
    seatctl("user", "set", "d1", "--groups", "dev", check=EX_OK)
    seatctl("user", "set", "d2", "--groups", "dev", check=EX_OK)
    seatctl("user", "set", "o1", "--groups", "ops", check=EX_OK)
    seatctl("acquire", "p", "d1", "--lease", "1h", check=EX_OK)
    rc, d, _ = seatctl_json("acquire", "p", "d2")
    assert rc == EX_DENIED and d["reason"] == "group_cap_reached"
    assert rdb.hgetall("sg:{p}:gcount") == {"dev": "1", "ops": "0"} or \
        rdb.hgetall("sg:{p}:gcount") == {"dev": "1"}
    seatctl("acquire", "p", "x", "--lease", "1h", check=EX_OK)
    rc, d, _ = seatctl_json("acquire", "p", "y")
    assert rc == EX_DENIED and d["reason"] == "reserved_for_group"
    seatctl("acquire", "p", "o1", check=EX_OK)           # 1 s lease
    assert rdb.hget("sg:{p}:gcount", "ops") == "1"
    seatctl("release", "p", "d1", check=EX_OK)
    assert rdb.hget("sg:{p}:gcount", "dev") == "0"
    seatctl("acquire", "p", "d2", "--lease", "1h", check=EX_OK)
    time.sleep(1.3)
    seatctl("acquire", "p", "z", "--lease", "1h", check=EX_DENIED)  # purges o1; ops unmet again
    assert rdb.hget("sg:{p}:gcount", "ops") == "0"
    # a user whose groups change while holding a seat is recounted
    seatctl("user", "set", "d2", "--groups", "ops", check=EX_OK)
    assert (rdb.hget("sg:{p}:gcount", "dev"), rdb.hget("sg:{p}:gcount", "ops")) == ("0", "1")
    assert seatctl("doctor")[0] == EX_OK
