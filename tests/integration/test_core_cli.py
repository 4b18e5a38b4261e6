"""seatctl as a contract: check takes nothing, exit codes, --json, bad input
changes nothing, awkward user names are just user names."""
import pytest

from helpers import (EX_DENIED, EX_OK, EX_USAGE, db_snapshot, leases, pool_keys,
                     slot)


def setup_pool(seatctl):
    seatctl("pool", "set", "p", "--named", "1", "--floating", "2", check=EX_OK)
    seatctl("assign", "p", "alice", check=EX_OK)
    seatctl("acquire", "p", "bob", "--session", "s1", check=EX_OK)


# ---- check ------------------------------------------------------------------------

def test_check_takes_nothing(seatctl, seatctl_json, rdb):
    setup_pool(seatctl)
    snap = db_snapshot(rdb)
    for u in ("carol", "dave", "alice", "bob"):
        rc, d, _ = seatctl_json("check", "p", u, check=EX_OK)
        assert d["in_use"] == 1
    seatctl("check", "p", "hub", "--on-behalf-of", "x")
    seatctl("check", "p", "carol", "--feature", "cmdb")
    seatctl("check", "p", "carol", "--session", "zz")
    assert db_snapshot(rdb) == snap, "check changed Redis"
    assert seatctl_json("pool", "show", "p")[1]["in_use"] == 1
    # the seat it said was free is really free
    seatctl("acquire", "p", "carol", check=EX_OK)
    rc, d, _ = seatctl_json("check", "p", "dave")
    assert rc == EX_DENIED and d["result"] == "denied_exhausted"
    snap = db_snapshot(rdb)
    seatctl("check", "p", "dave", check=EX_DENIED)
    assert db_snapshot(rdb) == snap, "a denied check changed Redis (audit?)"


def test_check_does_not_renew(seatctl, seatctl_json, rdb):
    seatctl("pool", "set", "p", "--floating", "1", check=EX_OK)
    seatctl("acquire", "p", "bob", check=EX_OK)
    before = leases(rdb, "p")["bob"]
    seatctl("check", "p", "bob", check=EX_OK)
    assert leases(rdb, "p")["bob"] == before


# ---- exit codes and JSON -------------------------------------------------------------

def test_exit_codes_and_json_shape(seatctl, seatctl_json):
    setup_pool(seatctl)
    cases = [
        (("acquire", "p", "alice"), EX_OK, "granted_named", "named"),
        (("acquire", "p", "carol"), EX_OK, "granted_floating", "floating"),
        (("acquire", "p", "dave"), EX_DENIED, "denied_exhausted", "none"),
        (("check", "p", "dave"), EX_DENIED, "denied_exhausted", "none"),
        (("check", "p", "alice"), EX_OK, "granted_named", "named"),
    ]
    for args, rc_want, result, seat in cases:
        rc, d, _ = seatctl_json(*args)
        assert rc == rc_want, args
        for k in ("result", "pool", "user", "seat", "reason"):
            assert k in d, (args, k)
        assert (d["result"], d["pool"], d["user"], d["seat"]) == (result, "p", args[2], seat)
    # exactly one JSON object on stdout
    out = seatctl("--json", "check", "p", "alice").out
    assert out.count("\n") == 1


def test_text_output(seatctl):
    setup_pool(seatctl)
    rc, out, _ = seatctl("acquire", "p", "alice", check=EX_OK)
    assert "granted_named" in out and "alice" in out
    rc, out, _ = seatctl("acquire", "p", "x1", check=EX_OK)
    rc, out, _ = seatctl("acquire", "p", "x2", check=EX_DENIED)
    assert "denied_exhausted" in out and "2 of 2" in out


def test_help_and_version(seatctl):
    rc, out, _ = seatctl("--help", check=EX_OK)
    assert "acquire" in out and "Exit codes" in out
    for cmd in (("pool", "set"), ("assign",), ("check",), ("acquire",), ("release",),
                ("user", "set"), ("status",), ("sessions",), ("reap",)):
        rc, out, _ = seatctl(*cmd, "--help", check=EX_OK)
        assert "usage: seatctl " + cmd[0] in out
    assert seatctl("--version", check=EX_OK).out.startswith("seatctl ")


# ---- bad input: exit 2, nothing changed --------------------------------------------

BAD = [
    ("user with newline", ("acquire", "p", "bo\nb")),
    ("user with control char", ("acquire", "p", "bo\x01b")),
    ("user with DEL", ("acquire", "p", "bo\x7fb")),
    ("user with tab", ("check", "p", "bo\tb")),
    ("user invalid utf-8", ("acquire", "p", b"bo\xffb")),
    ("user overlong utf-8", ("acquire", "p", b"\xc0\xafx")),
    ("user leading space", ("acquire", "p", " bob")),
    ("user too long", ("acquire", "p", "u" * 257)),
    ("session with newline", ("acquire", "p", "bob", "--session", "s\n1")),
    ("obo with control char", ("acquire", "p", "hub", "--on-behalf-of", "al\x1bice")),
    ("feature with space", ("acquire", "p", "bob", "--feature", "cm db")),
    ("pool with space", ("acquire", "my pool", "bob")),
    ("pool with brace", ("acquire", "p}x", "bob")),
    ("pool with colon", ("pool", "set", "a:b", "--floating", "1")),
    ("pool set pool with space", ("pool", "set", "my pool", "--floating", "1")),
    ("pool too long", ("pool", "set", "p" * 65)),
    ("bad duration", ("pool", "set", "p", "--idle-timeout", "5x")),
    ("negative duration", ("pool", "set", "p", "--idle-timeout", "-5")),
    ("zero duration", ("pool", "set", "p", "--idle-timeout", "0")),
    ("empty duration", ("pool", "set", "p", "--idle-timeout", "")),
    ("bad lease", ("acquire", "p", "bob", "--lease", "soon")),
    ("bad count", ("pool", "set", "p", "--floating", "many")),
    ("negative count", ("pool", "set", "p", "--named", "-1")),
    ("overdraft too big", ("pool", "set", "p", "--overdraft", "5000")),
    ("reserve without =", ("pool", "set", "p", "--reserve", "ops")),
    ("reserve bad count", ("pool", "set", "p", "--reserve", "ops=x")),
    ("cap bad count", ("pool", "set", "p", "--cap", "ops=-1")),
    ("features bad name", ("pool", "set", "p", "--features", "cmdb,bad name")),
    ("features trailing comma", ("pool", "set", "p", "--features", "cmdb,")),
    ("include with comma in group", ("pool", "set", "p", "--include", "a,,b")),
    ("unknown option", ("pool", "set", "p", "--bogus", "1")),
    ("unknown global option", ("--frobnicate", "status")),
    ("option of another command", ("check", "p", "bob", "--named", "3")),
    ("option twice", ("acquire", "p", "bob", "--session", "a", "--session", "b")),
    ("missing value", ("acquire", "p", "bob", "--session")),
    ("unknown command", ("frobnicate",)),
    ("missing subcommand", ("pool",)),
    ("too few args", ("acquire", "p")),
    ("too many args", ("check", "p", "bob", "carol")),
    ("assign bad user", ("assign", "p", "ok", "bad\nuser")),
    ("unassign bad user", ("unassign", "p", "alice", "bad\x02")),
    ("user set bad user", ("user", "set", "bad\nuser", "--groups", "ops")),
    ("user set bad group", ("user", "set", "bob", "--groups", "a=b")),
    ("user set nothing", ("user", "set", "bob")),
    ("user set both flags", ("user", "set", "bob", "--disabled", "--enabled")),
    ("release bad user", ("release", "p", "bo\nb")),
    ("release bad session", ("release", "p", "bob", "--session", "x\ny")),
    ("bad timeout", ("--timeout", "0", "status")),
    ("bad redis url", ("--redis", "http://x", "status")),
]


@pytest.mark.parametrize("args", [b[1] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_input_exits_2_and_changes_nothing(seatctl, rdb, args):
    setup_pool(seatctl)
    seatctl("user", "set", "hub", "--service-account", check=EX_OK)
    snap = db_snapshot(rdb)
    size = rdb.dbsize()
    rc, out, err = seatctl(*args)
    assert rc == EX_USAGE, (rc, out, err)
    assert err.strip(), "no error message"
    assert rdb.dbsize() == size
    assert db_snapshot(rdb) == snap


def test_unicode_and_inner_spaces_are_valid(seatctl_json):
    seatctl_json("pool", "set", "p", "--floating", "3", check=EX_OK)
    for u in ("jürgen.müller", "山田 太郎", "o'brien@example.com"):
        rc, d, _ = seatctl_json("acquire", "p", u, check=EX_OK)
        assert d["user"] == u


# ---- key safety --------------------------------------------------------------------

AWKWARD = ["a}b:c", "x{y}z", "{p}", "st*r?q", "sp ace d", "[br]ack\\et", "ünï©ødé✓", "-",
           "a\\0b", "%s%n"]


def test_awkward_user_names_are_just_users(seatctl, seatctl_json, rdb):
    n = len(AWKWARD)
    seatctl("pool", "set", "p", "--named", "3", "--floating", str(n), check=EX_OK)
    seatctl("assign", "p", AWKWARD[0], AWKWARD[1], AWKWARD[4], check=EX_OK)
    assert rdb.smembers("sg:{p}:named") == {AWKWARD[0], AWKWARD[1], AWKWARD[4]}
    for u in AWKWARD:
        rc, d, _ = seatctl_json("acquire", "p", u, "--session", "s-" + u, check=EX_OK)
        assert d["user"] == u and d["result"].startswith("granted_")
        rc, d, _ = seatctl_json("check", "p", u, check=EX_OK)
    floating = set(AWKWARD) - {AWKWARD[0], AWKWARD[1], AWKWARD[4]}
    assert set(leases(rdb, "p")) == floating
    # sessions come back with the right user and session
    _, ss, _ = seatctl_json("sessions", "p", check=EX_OK)
    assert {(x["user"], x["session"]) for x in ss["sessions"]} == \
        {(u, "s-" + u) for u in AWKWARD}
    # groups, service accounts (mux key), unassign and release
    seatctl("user", "set", "a}b:c", "--groups", "g{1},g*2", check=EX_OK)
    seatctl("user", "set", "x{y}z", "--service-account", check=EX_OK)
    seatctl("pool", "set", "p", "--mux-limit", "5", check=EX_OK)
    seatctl("acquire", "p", "x{y}z", "--on-behalf-of", "ünï©ødé✓", check=EX_OK)
    seatctl("unassign", "p", "a}b:c", check=EX_OK)
    assert rdb.smembers("sg:{p}:named") == {AWKWARD[1], AWKWARD[4]}
    for u in floating:
        rc, r, _ = seatctl_json("release", "p", u, check=EX_OK)
        assert r["seat_released"] is True, u
    assert leases(rdb, "p") == {}
    # a pattern-like user releases nothing but itself
    seatctl("acquire", "p", "plain", check=EX_OK)
    seatctl("release", "p", "*", check=EX_OK)
    assert set(leases(rdb, "p")) == {"plain"}

    # every key of the pool carries the tag {p} and lands in one Cluster slot
    keys = pool_keys(rdb, "p")
    assert any(":mux:" in k for k in keys), keys
    all_keys = set(rdb.keys("*"))
    # the rest are the registry's keys, all in the slot of the hash tag {_}
    rest = all_keys - set(keys)
    assert rest and all(k.startswith("sg:{_}:") for k in rest), rest
    assert len({slot(k) for k in rest}) == 1
    for k in keys:
        assert k.startswith("sg:{p}:"), k
    assert {slot(k) for k in keys} == {slot("p")}


def test_pool_keys_share_one_slot_for_many_pool_names(seatctl, rdb):
    for pool in ("technicians", "a.b-c_d", "X9"):
        seatctl("pool", "set", pool, "--named", "1", "--floating", "1", check=EX_OK)
        seatctl("assign", pool, "n", check=EX_OK)
        seatctl("user", "set", "hub", "--service-account", check=EX_OK)
        seatctl("acquire", pool, "hub", "--on-behalf-of", "h", check=EX_OK)
        seatctl("acquire", pool, "n", "--session", "1", check=EX_OK)
        keys = pool_keys(rdb, pool)
        assert len(keys) >= 8, keys
        assert {slot(k) for k in keys} == {slot(pool)}, pool
