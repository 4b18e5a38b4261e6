"""Seat model v2 at the edges (issue 9 findings 1, 8, 9, 10): the registry
race, the denial flood, reap by host and process identity, and least
privilege under conf/redis-acl.conf."""
import os
import subprocess
import threading
import time

import pytest
import redis

import helpers
from helpers import EX_BACKEND, EX_DENIED, EX_OK, audit_entries, db_snapshot, reply_dict


def decide_client(redis_server):
    return redis.Redis(host="127.0.0.1", port=redis_server.port, decode_responses=True,
                       username="seatgate-decide", password=helpers.DECIDE_PASSWORD)


# ---- finding 8: a denial flood cannot evict grants ----------------------------

def test_denial_flood_is_folded_and_keeps_the_grants(seatctl, rdb, redis_server):
    """10,000 denials of one user leave a handful of audit entries; every
    earlier grant stays, and the denials are still counted."""
    seatctl("pool", "set", "p", "--floating", "2", check=EX_OK)
    seatctl("acquire", "p", "alice", check=EX_OK)
    seatctl("acquire", "p", "bob", check=EX_OK)
    before = audit_entries(rdb, "p")
    grants = [e for e in before if e["ev"] == "grant"]
    assert [e["user"] for e in grants] == ["alice", "bob"]
    dc = decide_client(redis_server)
    sha = rdb.script_load(helpers.script_body("decide"))
    keys, args = helpers.decide_call("p", "carol")
    for _ in range(10):
        pipe = dc.pipeline(transaction=False)
        for _ in range(1000):
            pipe.evalsha(sha, len(keys), *(keys + args))
        for r in pipe.execute():
            assert reply_dict(r)["result"] == "denied_exhausted"
    after = audit_entries(rdb, "p")
    new = after[len(before):]
    assert len(new) <= 3, [e["ev"] for e in new]
    assert [e["ev"] for e in new] == ["deny"]
    assert [e for e in after if e["ev"] == "grant"] == grants
    assert rdb.hget("sg:{p}:stats", "n:denied_exhausted") == "10000"
    # the folded count is written when the window has passed: at the next
    # denial after it, or by doctor --fix
    seatctl("pool", "set", "p", "--deny-fold", "1s", check=EX_OK)
    time.sleep(1.1)
    seatctl("acquire", "p", "carol", check=EX_DENIED)
    rep = [e for e in audit_entries(rdb, "p") if e["ev"] == "deny_repeat"]
    assert len(rep) == 1 and rep[0]["user"] == "carol" and rep[0]["count"] == "9999"
    assert int(rep[0]["since"]) <= int(rep[0]["at"])


def test_audit_is_retained_by_time(seatctl, rdb):
    """Entries older than --audit-retention go as new ones are written
    (XADD MINID ~). "~" trims whole stream nodes only, so the nodes are made
    one entry long for the test; the default is documented in the schema."""
    old_node = rdb.config_get("stream-node-max-entries")["stream-node-max-entries"]
    rdb.config_set("stream-node-max-entries", 1)
    try:
        seatctl("pool", "set", "p", "--floating", "5", "--audit-retention", "2s", check=EX_OK)
        seatctl("acquire", "p", "old", check=EX_OK)
        assert "old" in [e["user"] for e in audit_entries(rdb, "p")]
        time.sleep(2.5)
        for u in ("n1", "n2", "n3"):
            seatctl("acquire", "p", u, check=EX_OK)
        users = [e["user"] for e in audit_entries(rdb, "p") if e["ev"] == "grant"]
        assert users == ["n1", "n2", "n3"], users
    finally:
        rdb.config_set("stream-node-max-entries", old_node)


# ---- finding 1: the registry race ----------------------------------------------

@pytest.mark.parametrize("round_", range(3))
def test_user_disabled_while_pools_are_created_is_denied_everywhere(seatctl, rdb, round_):
    pools = ["r%d_%d" % (round_, i) for i in range(24)]
    seatctl("user", "set", "mallory", "--groups", "ops", check=EX_OK)
    errors = []

    def create():
        for p in pools:
            rc = seatctl("pool", "set", p, "--floating", "5", "--include", "ops")[0]
            if rc != EX_OK:
                errors.append((p, rc))

    t = threading.Thread(target=create)
    t.start()
    time.sleep(0.05 * (round_ + 1))
    seatctl("user", "set", "mallory", "--disabled", check=EX_OK)
    t.join()
    assert not errors
    for p in pools:
        rc, out, _ = seatctl("check", p, "mallory")
        assert rc == EX_DENIED and "denied_disabled" in out, (p, out)
    assert seatctl("doctor")[0] == EX_OK


def test_group_added_to_a_rule_after_users_exist(seatctl, seatctl_json):
    """A rule that names a group projects the group's members before it takes effect."""
    for i in range(50):
        seatctl("user", "set", "o%d" % i, "--groups", "ops", check=EX_OK)
    seatctl("pool", "set", "p", "--floating", "60", check=EX_OK)
    seatctl("pool", "set", "p", "--exclude", "ops", check=EX_OK)
    rc, d, _ = seatctl_json("check", "p", "o17")
    assert rc == EX_DENIED and d["reason"] == "excluded_group"
    seatctl("acquire", "p", "someone", check=EX_OK)


# ---- finding 9: reap by host and by process identity ---------------------------

def proc_start(pid):
    with open("/proc/%d/stat" % pid) as f:
        return int(f.read().rsplit(")", 1)[1].split()[19])


def boot_id():
    with open("/proc/sys/kernel/random/boot_id") as f:
        return f.read().strip()


def open_session(rdb, redis_server, host_id, user, pid, pstart, pool="p"):
    """What pam_seatgate does at session open: a decision with pid and start
    time, then an entry in the host's session index."""
    dc = decide_client(redis_server)
    sid = "pam-%s-%d-%d" % (host_id, pid, pstart)
    keys, args = helpers.decide_call(pool, user, session=sid, lease=3600, via="pam",
                                     host=host_id, pid=pid, pstart=pstart)
    r = reply_dict(dc.eval(helpers.script_body("decide"), len(keys), *(keys + args)))
    assert r["result"].startswith("granted_"), r
    dc.hset("sg:host:" + host_id, "%s\t%s\t%s" % (pool, user, sid),
            "pid=%d\tpstart=%d\tboot=%s\tlease=3600\trenewed=%d" % (
                pid, pstart, boot_id(), int(time.time() * 1000)))
    return sid


def reap_as(seatctl, tmp_path, host_id):
    conf = tmp_path / ("seatgate-%s.conf" % host_id)
    conf.write_text("host_id = %s\n" % host_id)
    return seatctl("--config", str(conf), "--json", "reap", check=EX_OK)


def test_reap_frees_a_reused_pid(seatctl, seatctl_json, rdb, redis_server, tmp_path):
    """A session whose pid now belongs to another process (other start time)
    is freed; one whose process is the same lives on."""
    seatctl("pool", "set", "p", "--floating", "3", check=EX_OK)
    live = subprocess.Popen(["sleep", "60"])
    try:
        open_session(rdb, redis_server, "hosta", "alice", live.pid, proc_start(live.pid))
        # bob's login process was pid live.pid too, long ago: same pid, other start
        open_session(rdb, redis_server, "hosta", "bob", live.pid, proc_start(live.pid) - 5000)
        out = reap_as(seatctl, tmp_path, "hosta")[1]
        import json
        res = json.loads(out)
        assert [x["user"] for x in res["reaped"]] == ["bob"]
        users = {s["user"] for s in seatctl_json("sessions", "p")[1]["sessions"]}
        assert users == {"alice"}
        assert set(helpers.leases(rdb, "p")) == {"alice"}
    finally:
        live.kill()
        live.wait()
    res = reap_as(seatctl, tmp_path, "hosta")
    assert "alice" in res[1]
    assert helpers.leases(rdb, "p") == {}


def test_reap_only_touches_its_own_host(seatctl, rdb, redis_server, tmp_path):
    """Two hosts whose pids collide: reap on B never frees A's session, and
    session ids differ because they name the host."""
    seatctl("pool", "set", "p", "--floating", "3", check=EX_OK)
    dead = subprocess.Popen(["true"])
    dead.wait()
    sa = open_session(rdb, redis_server, "hosta", "alice", dead.pid, 777)
    sb = open_session(rdb, redis_server, "hostb", "bob", dead.pid, 777)
    assert sa != sb
    reap_as(seatctl, tmp_path, "hostb")
    assert set(helpers.leases(rdb, "p")) == {"alice"}
    assert rdb.hlen("sg:host:hostb") == 0 and rdb.hlen("sg:host:hosta") == 1
    reap_as(seatctl, tmp_path, "hosta")
    assert helpers.leases(rdb, "p") == {}


def test_reap_reads_only_its_host_index(seatctl, rdb, redis_server, tmp_path):
    """Reap of a host with no sessions costs a constant number of commands,
    however many pools and other hosts' sessions exist."""
    for i in range(20):
        seatctl("pool", "set", "q%d" % i, "--floating", "5", check=EX_OK)
    for i in range(20):
        rdb.hset("sg:host:other", "q%d\tu%d\ts" % (i, i), "pid=1\tpstart=1\tboot=x\tlease=60")
    rdb.config_resetstat()
    reap_as(seatctl, tmp_path, "quiet")
    stats = rdb.info("commandstats")
    calls = sum(v["calls"] for k, v in stats.items() if not k.startswith("cmdstat_info"))
    assert calls <= 6, stats


# ---- finding 10: least privilege ------------------------------------------------

def test_decision_role_cannot_buy_assign_or_delete(seatctl, rdb, redis_server):
    seatctl("pool", "set", "p", "--named", "1", "--floating", "1", check=EX_OK)
    seatctl("assign", "p", "alice", check=EX_OK)
    snap = db_snapshot(rdb)
    env = helpers.seatctl_env()
    d = redis_server.decide_url
    for args in (("pool", "set", "p", "--floating", "1000"), ("assign", "p", "mallory"),
                 ("unassign", "p", "alice"), ("pool", "delete", "p"),
                 ("user", "set", "alice", "--disabled"), ("audit",), ("doctor", "--fix")):
        res = helpers.run_seatctl(d, *args, env=env)
        assert res.rc == EX_BACKEND and "NOPERM" in res.err, (args, res)
    dc = decide_client(redis_server)
    attacks = [
        lambda: dc.hset("sg:{p}:conf", "floating", 1000),
        lambda: dc.sadd("sg:{p}:named", "mallory"),
        lambda: dc.delete("sg:{p}:conf"),
        lambda: dc.hset("sg:{p}:users", "alice", "10" + "9" * 5 + ","),
        lambda: dc.xrange("sg:{p}:audit"),
        lambda: dc.eval("return redis.call('HSET', 'sg:{p}:conf', 'floating', 1000)", 1,
                        "sg:{p}:leases"),
        lambda: dc.eval("return redis.call('SADD', 'sg:{p}:named', 'mallory')", 1,
                        "sg:{p}:leases"),
        lambda: dc.eval(helpers.script_body("pool_commit"), 1, "sg:{p}:conf", "pool", "p",
                        "floating", "1000"),
        lambda: dc.sadd("sg:{_}:grp:x:leases", "mallory"),
        lambda: dc.hset("sg:{_}:users", "mallory", "00,ops,"),
        lambda: dc.flushall(),
        lambda: dc.config_set("maxmemory", "1"),
    ]
    for i, attack in enumerate(attacks):
        with pytest.raises(redis.exceptions.ResponseError) as e:
            attack()
        msg = str(e.value)
        assert "no permissions" in msg or "can't access" in msg or "can't run" in msg, (i, msg)
    assert db_snapshot(rdb) == snap
    # and the decision paths all work as that role
    seatctl("acquire", "p", "bob", check=EX_OK)
    seatctl("check", "p", "alice", check=EX_OK)
    seatctl("release", "p", "bob", check=EX_OK)


def test_default_user_is_off_in_the_shipped_acl():
    with open(helpers.ACL_FILE) as f:
        lines = [l for l in f if l.strip()]
    assert any(l.split()[:3] == ["user", "default", "off"] for l in lines)
    assert all("CHANGE-ME" in l for l in lines if l.startswith("user seatgate"))
