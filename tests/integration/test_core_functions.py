"""The scripts as one Redis Function library (FCALL): loaded by the admin's
seatctl, called by every role, and never required: where it is missing
(flushed, not loaded yet, an ACL without +fcall) the call falls back to
EVALSHA and EVAL, and the roles that decide cannot load or replace it."""
import pytest
import redis

import helpers
from helpers import EX_OK


def libraries(rdb):
    """FUNCTION LIST as {library: [function names]} (RESP2 flat pairs)."""
    out = {}
    for lib in rdb.function_list():
        d = dict(zip(lib[::2], lib[1::2]))
        out[d["library_name"]] = [dict(zip(f[::2], f[1::2]))["name"] for f in d["functions"]]
    return out


def lib_names(rdb):
    return [n for n in libraries(rdb) if n.startswith("seatgate_")]


def calls(rdb):
    st = rdb.info("commandstats")
    return {k[len("cmdstat_"):]: (v["calls"], v.get("failed_calls", 0)) for k, v in st.items()
            if k in ("cmdstat_fcall", "cmdstat_evalsha", "cmdstat_eval")}


def test_seatctl_loads_the_library_and_decisions_use_it(seatctl, rdb):
    rdb.function_flush()
    assert lib_names(rdb) == []
    seatctl("pool", "set", "p", "--floating", "2", check=EX_OK)  # the admin role
    names = lib_names(rdb)
    assert len(names) == 1 and len(names[0]) == len("seatgate_") + 12, names
    funcs = set(libraries(rdb)[names[0]])
    assert {"sg_%s_%s" % (names[0][9:], s) for s in ("decide", "release", "pool_commit")} <= funcs
    rdb.config_resetstat()
    seatctl("acquire", "p", "alice", check=EX_OK)        # the decision role
    seatctl("check", "p", "alice", check=EX_OK)
    seatctl("release", "p", "alice", check=EX_OK)
    st = calls(rdb)
    assert st.get("fcall") == (3, 0) and "evalsha" not in st and "eval" not in st, st


def test_a_missing_library_falls_back_and_the_decision_role_cannot_load_it(
        seatctl, rdb, redis_server):
    seatctl("pool", "set", "p", "--floating", "1", check=EX_OK)
    rdb.function_flush()
    snap_libs = lib_names(rdb)
    rdb.script_flush()
    rdb.config_resetstat()
    # the decision role decides as before: FCALL misses, EVALSHA misses, EVAL
    seatctl("acquire", "p", "alice", check=EX_OK)
    seatctl("acquire", "p", "bob", check=helpers.EX_DENIED)
    seatctl("release", "p", "alice", check=EX_OK)
    st = calls(rdb)
    assert st["fcall"][0] == st["fcall"][1] >= 1, st   # tried, and missing
    assert st["eval"][0] >= 1 and st["eval"][1] == 0, st
    assert lib_names(rdb) == snap_libs == []            # the decision role loaded nothing
    assert helpers.leases(rdb, "p") == {}
    # seatctl as the admin loads it again
    seatctl("pool", "set", "p", "--floating", "2", check=EX_OK)
    assert len(lib_names(rdb)) == 1


@pytest.mark.parametrize("role", ["decide", "sync"])
def test_other_roles_cannot_manage_functions(seatctl, rdb, redis_server, role):
    seatctl("pool", "set", "p", "--floating", "1", check=EX_OK)
    name = lib_names(rdb)[0]
    url = redis_server.decide_url if role == "decide" else redis_server.sync_url
    c = redis.Redis.from_url(url, decode_responses=True)
    evil = ("#!lua name=%s\nredis.register_function('sg_%s_pool_commit', "
            "function(k, a) return redis.call('HSET', 'sg:{p}:conf', 'floating', 1000) end)"
            % (name, name[9:]))
    attacks = [
        lambda: c.function_load(evil, replace=True),
        lambda: c.function_load(evil.replace(name, "mine")),
        lambda: c.function_delete(name),
        lambda: c.function_flush(),
        lambda: c.function_restore(rdb.function_dump(), "REPLACE"),
        lambda: c.execute_command("FCALL", "sg_%s_pool_commit" % name[9:], 1, "sg:{p}:conf",
                                  "pool", "p", "floating", "1000"),
    ]
    for i, attack in enumerate(attacks):
        with pytest.raises(redis.exceptions.ResponseError) as e:
            attack()
        msg = str(e.value)
        assert "no permissions" in msg or "can't access" in msg, (i, msg)
    assert lib_names(rdb) == [name]
    assert rdb.hget("sg:{p}:conf", "floating") == "1"
    c.close()


def test_doctor_reports_and_loads_a_missing_library(seatctl, seatctl_json, rdb):
    seatctl("pool", "set", "p", "--floating", "1", check=EX_OK)
    assert seatctl("doctor", check=EX_OK).out.strip() == "doctor: no drift found"
    rdb.function_flush()
    res = seatctl("doctor", check=helpers.EX_DENIED)
    assert "library_missing" in res.out, res.out
    assert lib_names(rdb) == []                  # doctor without --fix changes nothing
    rc, j, _ = seatctl_json("doctor")
    assert rc == helpers.EX_DENIED
    assert [(f["pool"], f["finding"]) for f in j["findings"]] == [("", "library_missing")], j
    seatctl("doctor", "--fix", check=EX_OK)
    assert len(lib_names(rdb)) == 1
    assert seatctl("doctor", check=EX_OK).out.strip() == "doctor: no drift found"


def test_doctor_deletes_the_libraries_of_other_builds(seatctl, seatctl_json, rdb):
    """An upgrade leaves the older build's library behind (its binaries call
    it until they are upgraded): doctor reports it, --fix deletes it (and
    only seatgate libraries of other builds), decisions go on."""
    seatctl("pool", "set", "p", "--floating", "2", check=EX_OK)
    ours = lib_names(rdb)
    old = "seatgate_0123456789ab"
    rdb.function_load("#!lua name=%s\nredis.register_function('sg_0123456789ab_decide', "
                      "function() return 1 end)" % old)
    rdb.function_load("#!lua name=seatgate_mine\nredis.register_function('mine', "
                      "function() return 1 end)")           # not one of ours
    rdb.function_load("#!lua name=other\nredis.register_function('other', "
                      "function() return 1 end)")
    rc, j, _ = seatctl_json("doctor")
    assert rc == helpers.EX_DENIED
    assert [(f["finding"], f["count"]) for f in j["findings"]] == [("library_old", 1)], j
    assert old in libraries(rdb)                  # doctor without --fix changes nothing
    seatctl("doctor", "--fix", check=EX_OK)
    assert sorted(libraries(rdb)) == sorted(ours + ["seatgate_mine", "other"])
    assert seatctl("doctor", check=EX_OK).out.strip() == "doctor: no drift found"
    seatctl("acquire", "p", "alice", check=EX_OK)


def test_the_library_sees_every_settings_change_at_once(seatctl, rdb):
    """The loaded library keeps a pool's parsed hot settings between calls,
    keyed by their packed string: a pool set changes the string and the next
    decision sees it; two pools never share theirs; settings outside the
    packed ones (features here) are read on every call, so even a hand edit
    of them counts at once."""
    seatctl("pool", "set", "p", "--floating", "1", check=EX_OK)
    seatctl("pool", "set", "q", "--floating", "4", check=EX_OK)
    for u in ("alice", "bob", "carol"):
        seatctl("acquire", "q", u, check=EX_OK)
    seatctl("acquire", "p", "alice", check=EX_OK)
    res = seatctl("acquire", "p", "bob", check=helpers.EX_DENIED)
    assert "all_floating_in_use" in res.out, res
    seatctl("pool", "set", "p", "--floating", "2", check=EX_OK)
    seatctl("acquire", "p", "bob", check=EX_OK)
    # q's own settings (4 seats, 3 taken), not p's (2 seats, both taken)
    seatctl("acquire", "q", "dave", check=EX_OK)
    res = seatctl("acquire", "p", "carol", "--feature", "f1", check=helpers.EX_DENIED)
    assert "feature_not_licensed" in res.out, res
    rdb.hset("sg:{p}:conf", "features", ",f1,")
    seatctl("pool", "set", "p", "--floating", "3", check=EX_OK)
    seatctl("acquire", "p", "carol", "--feature", "f1", check=EX_OK)
    seatctl("release", "p", "carol", check=EX_OK)              # room: only the feature refuses
    rdb.hset("sg:{p}:conf", "features", ",")                   # by hand: no repack
    res = seatctl("acquire", "p", "dave", "--feature", "f1", check=helpers.EX_DENIED)
    assert "feature_not_licensed" in res.out, res
