"""Pools: create, update (partial), show, delete; epoch on admin changes."""
import time
import pytest

from helpers import EX_DENIED, EX_OK, EX_USAGE, audit_entries, db_snapshot


def conf(rdb, pool="p"):
    return rdb.hgetall("sg:{%s}:conf" % pool)


def epoch(rdb, pool="p"):
    return int(rdb.get("sg:{%s}:epoch" % pool) or 0)


def test_pool_create_and_show(seatctl, seatctl_json, rdb):
    rc, out, err = seatctl("pool", "set", "technicians", "--named", "3", "--floating", "5",
                           "--idle-timeout", "15m", "--features", "cmdb,change-advanced",
                           "--reserve", "ops=2", "--cap", "contractors=1",
                           "--include", "staff", "--include", "contractors",
                           "--exclude", "interns", "--overdraft", "20", "--mux-limit", "4",
                           "--mux-window", "1h", check=EX_OK)
    assert "technicians" in out
    _, show, _ = seatctl_json("pool", "show", "technicians", check=EX_OK)
    assert show["pool"] == "technicians"
    assert show["named"] == 3 and show["floating"] == 5
    assert show["idle_timeout"] == 900
    assert show["overdraft_pct"] == 20 and show["capacity"] == 6
    assert show["features"] == "cmdb,change-advanced"
    assert show["reserve"] == "ops=2" and show["cap"] == "contractors=1"
    assert show["include"] == "staff,contractors" and show["exclude"] == "interns"
    assert show["mux_limit"] == 4 and show["mux_window"] == 3600
    assert show["assigned"] == 0 and show["in_use"] == 0
    assert "technicians" in rdb.smembers("sg:{_}:pools")
    # human-readable show and the table of every pool
    rc, out, _ = seatctl("pool", "show", "technicians", check=EX_OK)
    assert "technicians" in out and "cmdb" in out
    _, allp, _ = seatctl_json("pool", "show", check=EX_OK)
    assert [p["pool"] for p in allp["pools"]] == ["technicians"]


def test_pool_durations_accepted(seatctl_json):
    for arg, secs in (("900", 900), ("90s", 90), ("15m", 900), ("2h", 7200)):
        seatctl_json("pool", "set", "p", "--idle-timeout", arg, check=EX_OK)
        _, show, _ = seatctl_json("pool", "show", "p", check=EX_OK)
        assert show["idle_timeout"] == secs, arg


def test_partial_update_keeps_other_settings(seatctl, seatctl_json, rdb):
    seatctl("pool", "set", "p", "--named", "2", "--floating", "4", "--idle-timeout", "90s",
            "--features", "cmdb", "--reserve", "ops=1", "--cap", "ext=2", "--include", "staff",
            "--exclude", "interns", "--overdraft", "25", "--mux-limit", "3", check=EX_OK)
    before = conf(rdb)
    seatctl("pool", "set", "p", "--floating", "6", check=EX_OK)
    after = conf(rdb)
    assert after["floating"] == "6"
    for field in ("named", "idle", "features", "reserve", "cap", "include", "exclude",
                  "overdraft", "mux_limit", "mux_window"):
        assert after[field] == before[field], field
    _, show, _ = seatctl_json("pool", "show", "p", check=EX_OK)
    assert (show["named"], show["floating"], show["idle_timeout"]) == (2, 6, 90)
    assert show["features"] == "cmdb" and show["reserve"] == "ops=1"
    # a list option replaces the whole list; an empty value clears it
    seatctl("pool", "set", "p", "--features", "cmdb,itom", check=EX_OK)
    assert seatctl_json("pool", "show", "p")[1]["features"] == "cmdb,itom"
    seatctl("pool", "set", "p", "--features", "", check=EX_OK)
    assert seatctl_json("pool", "show", "p")[1]["features"] == ""
    assert seatctl_json("pool", "show", "p")[1]["named"] == 2


def test_pool_set_without_options_creates_with_defaults(seatctl_json):
    seatctl_json("pool", "set", "p", check=EX_OK)
    _, show, _ = seatctl_json("pool", "show", "p", check=EX_OK)
    assert (show["named"], show["floating"], show["idle_timeout"]) == (0, 0, 900)


def test_lowering_named_below_assigned_takes_back_least_recently_used(seatctl, seatctl_json,
                                                                      rdb):
    """A named shrink is enforced like a floating one: the named seats least
    recently used go (never used first), audited as pool_shrunk."""
    seatctl("pool", "set", "p", "--named", "3", check=EX_OK)
    seatctl("assign", "p", "alice", "bob", "carol", check=EX_OK)
    seatctl("acquire", "p", "alice", check=EX_OK)
    time.sleep(0.01)
    seatctl("acquire", "p", "bob", check=EX_OK)
    rc, out, _ = seatctl_json("pool", "set", "p", "--named", "1")
    assert rc == EX_OK and out["unassigned"] == ["carol", "alice"]
    assert rdb.smembers("sg:{p}:named") == {"bob"}
    shrunk = [e for e in audit_entries(rdb, "p") if e["reason"] == "pool_shrunk"]
    assert [(e["ev"], e["user"]) for e in shrunk] == [("unassign", "carol"), ("unassign", "alice")]
    assert seatctl_json("pool", "show", "p")[1]["assigned"] == 1


def test_reservations_beyond_floating_refused(seatctl, rdb):
    seatctl("pool", "set", "p", "--floating", "2", check=EX_OK)
    snap = db_snapshot(rdb)
    rc, _, err = seatctl("pool", "set", "p", "--reserve", "ops=3")
    assert rc == EX_DENIED and "reserv" in err
    assert db_snapshot(rdb) == snap


def test_refused_create_of_new_pool_changes_nothing(seatctl, rdb):
    """A `pool set` refused by a rule must not leave keys of a pool that does
    not exist (the user-registry mirror is written before the refusal)."""
    seatctl("user", "set", "bob", "--groups", "ops", check=EX_OK)
    snap = db_snapshot(rdb)
    rc, _, _ = seatctl("pool", "set", "q", "--floating", "1", "--reserve", "ops=3")
    assert rc == EX_DENIED
    assert db_snapshot(rdb) == snap, "refused pool set left keys: %s" % (
        sorted(set(db_snapshot(rdb)) - set(snap)))


def test_pool_delete(seatctl, seatctl_json, rdb):
    seatctl("pool", "set", "p", "--named", "1", "--floating", "2", check=EX_OK)
    seatctl("assign", "p", "alice", check=EX_OK)
    seatctl("acquire", "p", "bob", "--session", "s1", check=EX_OK)
    rc, obj, _ = seatctl_json("pool", "delete", "p", check=EX_OK)
    assert obj == {"pool": "p", "deleted": True}
    assert "p" not in rdb.smembers("sg:{_}:pools")
    # only the history stays: the audit stream and the usage records (both
    # expire by their retention)
    left = set(rdb.keys("sg:{p}:*"))
    assert "sg:{p}:audit" in left
    assert all(k == "sg:{p}:audit" or k.startswith(("sg:{p}:uc:", "sg:{p}:ua:", "sg:{p}:um:"))
               for k in left), left
    assert audit_entries(rdb, "p")[-1]["ev"] == "pool_deleted"
    rc, _, err = seatctl("pool", "show", "p")
    assert rc == EX_USAGE and "no such pool" in err
    rc, _, _ = seatctl("pool", "delete", "p")
    assert rc == EX_USAGE
    # an acquire against a deleted pool takes nothing
    rc, obj, _ = seatctl_json("acquire", "p", "bob")
    assert rc == EX_DENIED and obj["result"].startswith("denied_")
    assert not rdb.exists("sg:{p}:leases")
    # recreating starts fresh
    seatctl("pool", "set", "p", "--floating", "1", check=EX_OK)
    assert seatctl_json("pool", "show", "p")[1]["assigned"] == 0


def test_epoch_increases_on_admin_changes(seatctl, rdb):
    seatctl("pool", "set", "p", "--named", "2", "--floating", "2", check=EX_OK)
    e = [epoch(rdb)]

    def bumped(what):
        now = epoch(rdb)
        assert now > e[-1], "epoch did not increase on " + what
        e.append(now)

    seatctl("pool", "set", "p", "--floating", "3", check=EX_OK)
    bumped("pool set")
    seatctl("assign", "p", "alice", check=EX_OK)
    bumped("assign")
    seatctl("unassign", "p", "alice", check=EX_OK)
    bumped("unassign")
    # a group change reaches the pools whose rules name the group, and only those
    seatctl("user", "set", "bob", "--groups", "ops", check=EX_OK)
    assert epoch(rdb) == e[-1]
    seatctl("pool", "set", "p", "--exclude", "ops", check=EX_OK)
    bumped("pool set --exclude")
    seatctl("user", "set", "bob", "--groups", "dev", check=EX_OK)
    bumped("user set --groups")
    seatctl("user", "set", "bob", "--disabled", check=EX_OK)
    bumped("user set --disabled")
    # decisions are not admin changes
    seatctl("acquire", "p", "carol", check=EX_OK)
    seatctl("check", "p", "carol", check=EX_OK)
    assert epoch(rdb) == e[-1]


def test_packed_settings_follow_pool_set_and_doctor_finds_hand_edits(seatctl, rdb):
    """Decisions read the settings they need from one packed field ("hot"),
    which pool set keeps; a pool without it (older versions) is read field by
    field; a hand-edited hash is drift that doctor reports and --fix packs."""
    seatctl("pool", "set", "p", "--floating", "1", check=EX_OK)
    hot = rdb.hget("sg:{p}:conf", "hot").split("\t")
    assert hot[:3] == ["ready", "0", "1"] and len(hot) == 15, hot
    assert hot[14] == rdb.hget("sg:{p}:conf", "updated")    # the stamp it was made from
    seatctl("acquire", "p", "alice", check=EX_OK)
    seatctl("acquire", "p", "bob", check=EX_DENIED)
    seatctl("pool", "set", "p", "--floating", "2", check=EX_OK)
    assert rdb.hget("sg:{p}:conf", "hot").split("\t")[2] == "2"
    seatctl("acquire", "p", "bob", check=EX_OK)
    # an older pool: no packed copy; decisions read the fields
    rdb.hdel("sg:{p}:conf", "hot")
    seatctl("acquire", "p", "carol", check=EX_DENIED)
    seatctl("release", "p", "bob", check=EX_OK)
    seatctl("acquire", "p", "carol", check=EX_OK)
    assert "hot_drift" in seatctl("doctor", check=EX_DENIED).out
    seatctl("doctor", "--fix", check=EX_OK)
    assert rdb.hget("sg:{p}:conf", "hot").split("\t")[2] == "2"
    # a hand edit of a field: the packed copy is stale until doctor --fix
    rdb.hset("sg:{p}:conf", "floating", "3")
    res = seatctl("doctor", check=EX_DENIED)
    assert "hot_drift" in res.out, res.out
    seatctl("doctor", "--fix", check=EX_OK)
    seatctl("acquire", "p", "dave", check=EX_OK)
    assert seatctl("doctor", check=EX_OK).out.strip() == "doctor: no drift found"


def test_a_settings_change_by_an_older_seatctl_counts_at_once(seatctl, rdb):
    """An older seatctl (from before the packed copy, in a rolling upgrade)
    writes the fields and the "updated" stamp, not "hot": decisions must not
    follow the stale copy (here a shrink) but the fields."""
    seatctl("pool", "set", "p", "--floating", "3", check=EX_OK)
    for u in ("alice", "bob"):
        seatctl("acquire", "p", u, check=EX_OK)
    hot = rdb.hget("sg:{p}:conf", "hot")
    # what such a seatctl's pool set --floating 2 writes
    stamp = str(int(rdb.hget("sg:{p}:conf", "updated")) + 1)
    rdb.hset("sg:{p}:conf", mapping={"floating": "2", "updated": stamp})
    assert rdb.hget("sg:{p}:conf", "hot") == hot
    res = seatctl("acquire", "p", "carol", check=EX_DENIED)     # 2 seats, both held
    assert "denied_exhausted" in res.out, res.out
    seatctl("release", "p", "bob", check=EX_OK)
    # doctor finds the copy stale and packs it again
    assert "hot_drift" in seatctl("doctor", check=EX_DENIED).out
    seatctl("doctor", "--fix", check=EX_OK)
    assert rdb.hget("sg:{p}:conf", "hot").split("\t")[2] == "2"
    seatctl("acquire", "p", "carol", check=EX_OK)
    assert "denied_exhausted" in seatctl("acquire", "p", "dave", check=EX_DENIED).out
