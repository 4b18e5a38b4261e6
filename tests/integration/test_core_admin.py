"""Administration through seatctl, black box against a real Redis: user import
(CSV), assign --from, user show, the audit export (JSON lines, CSV, filters,
--follow) and doctor [--fix]. Assertions read the command output and the
Redis state; nothing here reads the C code's internals."""
import csv
import datetime
import io
import json
import re
import subprocess
import time

import pytest

import helpers
from helpers import EX_DENIED, EX_OK, EX_USAGE, db_snapshot, leases, read_until

RFC3339_MS_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
CSV_COLUMNS = ["time", "at", "pool", "ev", "user", "obo", "via", "host", "pid", "client",
               "result", "reason", "seat", "session", "count", "since", "id", "by", "before",
               "after"]
BOM = b"\xef\xbb\xbf"


# ---- helpers ----------------------------------------------------------------------

@pytest.fixture
def seatctl_stdin(redis_server, rdb, seatctl_bin, seatctl_conf):
    """Like the seatctl fixture, with bytes fed to seatctl's standard input."""
    env = helpers.seatctl_env(seatctl_conf)

    def run(data, *args, check=None):
        argv = [helpers.SEATCTL, "--redis", redis_server.url_for(args)] + [str(a) for a in args]
        p = subprocess.run(argv, input=data, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=120, env=env)
        res = helpers.Result(p.returncode, p.stdout.decode("utf-8", "replace"),
                             p.stderr.decode("utf-8", "replace"))
        if check is not None:
            assert res.rc == check, "seatctl %r < stdin: exit %d, wanted %d\n%s\n%s" % (
                args, res.rc, check, res.out, res.err)
        return res

    return run


def write(tmp_path, name, data):
    p = tmp_path / name
    p.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    return str(p)


def server_ms(rdb):
    s, us = rdb.time()
    return s * 1000 + us // 1000


def rfc3339(ms, offset_min=0):
    """ms since the epoch as RFC 3339 with milliseconds, Z or +HH:MM."""
    tz = datetime.timezone(datetime.timedelta(minutes=offset_min))
    t = datetime.datetime.fromtimestamp(ms // 1000, tz)
    s = t.strftime("%Y-%m-%dT%H:%M:%S") + ".%03d" % (ms % 1000)
    if offset_min == 0:
        return s + "Z"
    sign = "+" if offset_min > 0 else "-"
    return s + "%s%02d:%02d" % (sign, abs(offset_min) // 60, abs(offset_min) % 60)


def jsonl(out):
    return [json.loads(l) for l in out.splitlines() if l.strip()]


def stream_ids(rdb, *pools):
    """Ids of every entry of the pools' audit streams, merged in id order."""
    ids = []
    for p in pools:
        ids += [eid for eid, _ in rdb.xrange("sg:{%s}:audit" % p)]
    return sorted(ids, key=lambda i: tuple(int(x) for x in i.split("-")))


def all_streams(rdb):
    return sorted(k[len("sg:{"):-len("}:audit")] for k in rdb.scan_iter(match="sg:{*}:audit"))


def user_show(seatctl_json, user):
    rc, d, err = seatctl_json("user", "show", user)
    assert rc == EX_OK, err
    return d


def decide(seatctl_json, *args):
    rc, d, _ = seatctl_json(*args)
    return rc, d["result"], d["reason"]


def csv_guarded(v):
    """What sg_csv_field writes for v, as a CSV reader reads it back: a value
    starting with = + - @ TAB or CR gets a single quote in front."""
    return "'" + v if v and v[0] in "=+-@\t\r" else v


# ---- user import ------------------------------------------------------------------

IMPORT_CSV = (BOM + (
    "user,groups,disabled,service_account\r\n"
    "alice,ops;dev,0,0\r\n"
    "\"doe, \"\"jj\"\"\",ops,0,0\r\n"      # a quoted user with a comma and quotes
    "dan,,1,0\r\n"                          # disabled
    "bridge,,0,1\r\n"                       # a service account
    "erin,\"dev;dev\",,\r\n"                # repeats dropped, empty flags are 0
    "\r\n"                                  # blank lines are skipped
    "zo\u00eb,\"ops;sec\",0,0"             # non-ASCII, no line end at the end
).encode("utf-8"))

IMPORTED = {
    "alice": (["ops", "dev"], False, False),
    'doe, "jj"': (["ops"], False, False),
    "dan": ([], True, False),
    "bridge": ([], False, True),
    "erin": (["dev"], False, False),
    "zo\u00eb": (["ops", "sec"], False, False),
}


def assert_imported(seatctl_json):
    for user, (groups, disabled, svc) in IMPORTED.items():
        d = user_show(seatctl_json, user)
        assert d["user"] == user and d["registered"] is True, d
        assert sorted(d["groups"]) == sorted(groups), (user, d)
        assert (d["disabled"], d["service_account"]) == (disabled, svc), (user, d)


def test_user_import_file_then_decisions_follow(seatctl, seatctl_json, rdb, tmp_path):
    """import FILE (BOM, CRLF, quoted fields with commas and quotes, blank line,
    no final line end): user show reports groups and flags, and pools both
    existing (open) and created later (--include ops) decide by them."""
    seatctl("pool", "set", "open", "--floating", "5", check=EX_OK)  # before the import
    path = write(tmp_path, "users.csv", IMPORT_CSV)
    rc, d, err = seatctl_json("user", "import", path)
    assert rc == EX_OK, err
    assert d == {"users": 6, "changed": 6, "unchanged": 0}
    assert rdb.hlen("sg:{_}:users") == 6
    assert_imported(seatctl_json)
    assert user_show(seatctl_json, "nobody")["registered"] is False

    seatctl("pool", "set", "p", "--floating", "5", "--include", "ops", check=EX_OK)  # after
    for pool in ("open", "p"):
        # a disabled imported user is denied
        assert decide(seatctl_json, "acquire", pool, "dan") == \
            (EX_DENIED, "denied_disabled", "user_disabled")
        # a service account must say for whom
        assert decide(seatctl_json, "acquire", pool, "bridge") == \
            (EX_DENIED, "denied_unassigned", "service_account_needs_on_behalf_of")
        rc, res, _ = decide(seatctl_json, "acquire", pool, "bridge", "--on-behalf-of", "alice")
        assert (rc, res) == (EX_OK, "granted_floating"), pool
    # --include ops admits only members of ops
    for user in ("alice", 'doe, "jj"', "zo\u00eb"):
        rc, res, _ = decide(seatctl_json, "acquire", "p", user)
        assert (rc, res) == (EX_OK, "granted_floating"), user
    for user in ("erin", "nobody"):
        assert decide(seatctl_json, "acquire", "p", user) == \
            (EX_DENIED, "denied_excluded", "not_in_included_group"), user
    assert decide(seatctl_json, "acquire", "p", "bridge", "--on-behalf-of", "erin")[:2] == \
        (EX_DENIED, "denied_excluded")
    # the open pool has no rule: erin is fine there
    assert decide(seatctl_json, "acquire", "open", "erin")[0] == EX_OK
    assert set(leases(rdb, "p")) == {"alice", 'doe, "jj"', "zo\u00eb"}


def test_user_import_stdin_and_reimport_is_unchanged(seatctl, seatctl_json, seatctl_stdin,
                                                     rdb):
    """import - reads standard input; importing the same file again reports
    every user unchanged and writes nothing."""
    seatctl("pool", "set", "p", "--floating", "2", "--include", "ops", check=EX_OK)
    res = seatctl_stdin(IMPORT_CSV, "user", "import", "-", check=EX_OK)
    assert "imported 6 users: 6 changed, 0 unchanged" in res.out
    assert_imported(seatctl_json)
    snap = db_snapshot(rdb)
    res = seatctl_stdin(IMPORT_CSV, "user", "import", "-", check=EX_OK)
    assert "imported 6 users: 0 changed, 6 unchanged" in res.out
    res = seatctl_stdin(IMPORT_CSV, "--json", "user", "import", "-", check=EX_OK)
    assert json.loads(res.out) == {"users": 6, "changed": 0, "unchanged": 6}
    assert db_snapshot(rdb) == snap, "an import that changed nothing wrote to Redis"
    # columns in another order, names in any case with spaces around: one change
    res = seatctl_stdin(b"Service_Account , USER,disabled,groups\n0,alice,1,ops;dev\n",
                        "--json", "user", "import", check=EX_OK)
    assert json.loads(res.out) == {"users": 1, "changed": 1, "unchanged": 0}
    d = user_show(seatctl_json, "alice")
    assert (d["disabled"], sorted(d["groups"])) == (True, ["dev", "ops"])
    assert decide(seatctl_json, "acquire", "p", "alice")[1] == "denied_disabled"


def test_user_import_replaces_records_and_takes_seats_back(seatctl, seatctl_json, seatctl_stdin,
                                                           rdb):
    """Each row replaces the user's record: a holder whose import row drops the
    included group, or disables the user, loses the floating seat at once."""
    seatctl("pool", "set", "p", "--floating", "3", "--include", "ops", check=EX_OK)
    head = b"user,groups,disabled,service_account\n"
    seatctl_stdin(head + b"alice,ops,0,0\nbob,ops;dev,0,0\ncid,ops,0,0\n", "user", "import",
                  check=EX_OK)
    for u in ("alice", "bob", "cid"):
        seatctl("acquire", "p", u, check=EX_OK)
    res = seatctl_stdin(head + b"alice,,0,0\nbob,ops;dev,1,0\ncid,ops,0,0\n", "--json", "user",
                        "import", check=EX_OK)
    assert json.loads(res.out) == {"users": 3, "changed": 2, "unchanged": 1}
    assert set(leases(rdb, "p")) == {"cid"}
    assert user_show(seatctl_json, "alice")["groups"] == []
    assert decide(seatctl_json, "acquire", "p", "alice") == \
        (EX_DENIED, "denied_excluded", "not_in_included_group")
    assert decide(seatctl_json, "acquire", "p", "bob")[1] == "denied_disabled"
    revokes = {e["user"]: e["reason"] for e in helpers.audit_entries(rdb, "p")
               if e["ev"] == "revoke"}
    assert revokes == {"alice": "not_in_included_group", "bob": "user_disabled"}


GOOD_HEAD = "user,groups,disabled,service_account\n"

BAD_IMPORTS = {
    # name: (file, words stderr must hold)
    "bad_flag_line_3": (GOOD_HEAD + "newbie,ops,0,0\nalice,ops,yes,0\n",
                        ["line 3", "disabled", "yes"]),
    "bad_service_flag": (GOOD_HEAD + "newbie,ops,0,0\nalice,ops,0,2\n",
                         ["line 3", "service_account"]),
    "unknown_column": ("user,groups,disabled,email\nnewbie,ops,0,x@y\n",
                       ["line 1", "email"]),
    "duplicate_user": (GOOD_HEAD + "newbie,,0,0\nalice,ops,1,0\n\nnewbie,dev,0,0\n",
                       ["line 5", "user", "newbie", "line 2"]),
    "bad_group_name": (GOOD_HEAD + "newbie,ops,0,0\nalice,ops;a=b,0,0\n",
                       ["line 3", "groups", "a=b"]),
    "empty_group": (GOOD_HEAD + "newbie,ops;,0,0\n", ["line 2", "groups"]),
    "bad_user": (GOOD_HEAD + "newbie,ops,0,0\n\" alice\",ops,0,0\n", ["line 3", "user"]),
    "too_few_fields": (GOOD_HEAD + "newbie,ops,0,0\nalice,ops,0\n", ["line 3"]),
    "unclosed_quote": (GOOD_HEAD + "newbie,ops,0,0\n\"alice,ops,0,0\n", ["line 3"]),
    # BOM, CRLF and blank lines: the line numbers are still the file's
    "bom_crlf_line_5": ("\ufeff" + GOOD_HEAD.replace("\n", "\r\n") +
                        "newbie,ops,0,0\r\n\r\n\r\nalice,ops,0,x\r\n",
                        ["line 5", "service_account"]),
    "lone_cr": (GOOD_HEAD + "newbie,ops,0,0\ralice,ops,0,0\n", ["line 2", "carriage return"]),
    # errors in file order: a repeated user before a bad line wins, and after
    "duplicate_before_bad_flag": (GOOD_HEAD + "newbie,,0,0\nnewbie,,0,0\nalice,,x,0\n",
                                  ["line 3", "user", "line 2"]),
    "bad_flag_before_duplicate": (GOOD_HEAD + "newbie,,0,0\nalice,,x,0\nnewbie,,0,0\n",
                                  ["line 3", "disabled"]),
}


@pytest.mark.parametrize("case", sorted(BAD_IMPORTS))
def test_user_import_malformed_changes_nothing(seatctl, seatctl_json, rdb, tmp_path, case):
    """A malformed file exits 2, stderr names the line and the field, and
    nothing at all is applied (the valid rows before the bad one neither)."""
    seatctl("pool", "set", "p", "--floating", "2", "--include", "ops", check=EX_OK)
    seatctl("user", "set", "alice", "--groups", "dev", check=EX_OK)
    text, words = BAD_IMPORTS[case]
    path = write(tmp_path, "bad.csv", text)
    snap = db_snapshot(rdb)
    res = seatctl("user", "import", path)
    assert res.rc == EX_USAGE, res
    for w in words:
        assert w in res.err, (case, w, res.err)
    assert res.out == ""
    assert db_snapshot(rdb) == snap, "a malformed import changed Redis"
    assert user_show(seatctl_json, "newbie")["registered"] is False


def test_user_import_extra_unknown_column_is_named(seatctl, rdb, tmp_path):
    """The common export shape: the four columns and one more (email). The
    error should name the unknown column, as it does in the first four."""
    path = write(tmp_path, "extra.csv", GOOD_HEAD.rstrip("\n") + ",email\nnewbie,ops,0,0,x@y\n")
    snap = db_snapshot(rdb)
    res = seatctl("user", "import", path)
    assert res.rc == EX_USAGE
    assert db_snapshot(rdb) == snap
    assert "line 1" in res.err and "email" in res.err, res.err


def test_user_import_20000_users_in_one_call(seatctl, seatctl_json, rdb, tmp_path):
    """20,000 generated users (some disabled, some service accounts, groups
    g0..g9) import in one call; a pool including g3 admits exactly them."""
    seatctl("pool", "set", "p", "--floating", "10", "--include", "g3", check=EX_OK)
    lines = ["user,groups,disabled,service_account"]
    for i in range(20000):
        lines.append("u%05d,g%d;all,%d,%d" % (i, i % 10, int(i % 97 == 0), int(i % 101 == 0)))
    path = write(tmp_path, "many.csv", "\r\n".join(lines) + "\r\n")
    rc, d, err = seatctl_json("user", "import", path, timeout=300)
    assert rc == EX_OK, err
    assert d == {"users": 20000, "changed": 20000, "unchanged": 0}
    assert rdb.hlen("sg:{_}:users") == 20000
    assert rdb.scard("sg:{_}:grp:all") == 20000
    assert rdb.scard("sg:{_}:grp:g3") == 2000
    assert rdb.scard("sg:{_}:disabled") == len([i for i in range(20000) if i % 97 == 0])
    assert rdb.scard("sg:{_}:svc") == len([i for i in range(20000) if i % 101 == 0])
    for i in (0, 1, 97, 101, 12345, 19999):
        u = user_show(seatctl_json, "u%05d" % i)
        assert u["registered"] and sorted(u["groups"]) == sorted(["g%d" % (i % 10), "all"])
        assert (u["disabled"], u["service_account"]) == (i % 97 == 0, i % 101 == 0), i
    assert decide(seatctl_json, "acquire", "p", "u00003")[0] == EX_OK
    assert decide(seatctl_json, "acquire", "p", "u00004")[1] == "denied_excluded"
    assert decide(seatctl_json, "acquire", "p", "u00097")[1] == "denied_disabled"


# ---- assign --from ----------------------------------------------------------------

def users_file(users, extra_top=""):
    body = ["# named seats for the service desk", ""]
    for i, u in enumerate(users):
        body.append(u)
        if i % 1000 == 0:
            body += ["", "# batch %d" % i, ""]
    return extra_top + "\n".join(body) + "\n"


def test_assign_from_file_5000_users_atomically(seatctl, seatctl_json, rdb, tmp_path):
    """5,000 users from a file (comments and blank lines skipped, CRLF
    accepted) are all assigned in one call; unassign --from takes them back."""
    users = ["tech%04d" % i for i in range(5000)]
    text = users_file(users).replace("\n", "\r\n")
    path = write(tmp_path, "techs.txt", text)
    seatctl("pool", "set", "p", "--named", "5000", check=EX_OK)
    rc, d, err = seatctl_json("assign", "p", "--from", path)
    assert rc == EX_OK, err
    assert len(d["assigned"]) == 5000
    assert rdb.scard("sg:{p}:named") == 5000
    assert rdb.smembers("sg:{p}:named") == set(users)
    assert decide(seatctl_json, "acquire", "p", "tech4999")[1] == "granted_named"
    assigns = [e for e in helpers.audit_entries(rdb, "p") if e["ev"] == "assign"]
    assert len(assigns) == 5000
    # take back the first 1000 from a file, the rest from standard input below
    back = write(tmp_path, "back.txt", users_file(users[:1000]))
    seatctl("unassign", "p", "--from", back, check=EX_OK)
    assert rdb.scard("sg:{p}:named") == 4000
    assert not rdb.sismember("sg:{p}:named", "tech0000")
    assert decide(seatctl_json, "acquire", "p", "tech0000")[1] == "denied_unassigned"


def test_assign_and_unassign_from_stdin(seatctl, seatctl_stdin, rdb):
    """--from - reads the users from standard input."""
    seatctl("pool", "set", "p", "--named", "3", check=EX_OK)
    seatctl_stdin(b"# who\nann\n\nbea\r\ncid", "assign", "p", "--from", "-", check=EX_OK)
    assert rdb.smembers("sg:{p}:named") == {"ann", "bea", "cid"}
    seatctl_stdin(b"ann\ncid\n", "unassign", "p", "--from", "-", check=EX_OK)
    assert rdb.smembers("sg:{p}:named") == {"bea"}


def test_assign_from_more_than_the_named_seats_assigns_none(seatctl, rdb, tmp_path):
    """One user more than the named seats left: exit 1 and nobody assigned."""
    seatctl("pool", "set", "p", "--named", "5000", check=EX_OK)
    seatctl("assign", "p", "boss", check=EX_OK)
    users = ["tech%04d" % i for i in range(5000)]
    path = write(tmp_path, "techs.txt", users_file(users))
    snap = db_snapshot(rdb)
    res = seatctl("assign", "p", "--from", path)
    assert res.rc == EX_DENIED, res
    assert "5000" in res.err
    assert rdb.smembers("sg:{p}:named") == {"boss"}
    assert db_snapshot(rdb) == snap


def test_assign_from_bad_user_names_the_line(seatctl, rdb, tmp_path):
    """A bad user name on line N (blank and comment lines count) exits 2
    naming line N; nobody is assigned."""
    seatctl("pool", "set", "p", "--named", "100", check=EX_OK)
    # lines: 1 comment, 2 ann, 3 blank, 4 comment, 5 bea, 6 " bad" (leading space)
    text = "# techs\nann\n\n# more\nbea\n bad\ncid\n"
    path = write(tmp_path, "bad.txt", text)
    snap = db_snapshot(rdb)
    res = seatctl("assign", "p", "--from", path)
    assert res.rc == EX_USAGE, res
    assert "line 6" in res.err, res.err
    assert db_snapshot(rdb) == snap
    # a control character on line 3
    path = write(tmp_path, "bad2.txt", "ann\nbea\nc\x01d\n")
    res = seatctl("assign", "p", "--from", path)
    assert res.rc == EX_USAGE and "line 3" in res.err, res
    assert db_snapshot(rdb) == snap


def test_assign_from_file_with_byte_order_mark(seatctl, seatctl_json, rdb, tmp_path):
    """A user list saved by a Windows editor starts with a UTF-8 BOM (user
    import skips it); the first user must be 'ann', not U+FEFF 'ann'."""
    seatctl("pool", "set", "p", "--named", "2", check=EX_OK)
    path = write(tmp_path, "bom.txt", BOM + b"ann\r\nbea\r\n")
    seatctl("assign", "p", "--from", path, check=EX_OK)
    assert rdb.smembers("sg:{p}:named") == {"ann", "bea"}
    assert decide(seatctl_json, "acquire", "p", "ann")[1] == "granted_named"


def test_assign_users_and_from_together_is_usage_error(seatctl, rdb, tmp_path):
    """Users on the command line and --from together: exit 2, nothing changes."""
    seatctl("pool", "set", "p", "--named", "10", check=EX_OK)
    path = write(tmp_path, "u.txt", "ann\nbea\n")
    snap = db_snapshot(rdb)
    for cmd in ("assign", "unassign"):
        res = seatctl(cmd, "p", "cid", "--from", path)
        assert res.rc == EX_USAGE, res
        assert "not both" in res.err
    assert db_snapshot(rdb) == snap
    # a file with no user in it is an input error too
    empty = write(tmp_path, "empty.txt", "# nobody\n\n")
    assert seatctl("assign", "p", "--from", empty).rc == EX_USAGE
    assert db_snapshot(rdb) == snap


# ---- user show --------------------------------------------------------------------

def test_user_show_seat_per_pool(seatctl, seatctl_json, rdb):
    """A named seat in a, a floating seat with two sessions in b, nothing in c:
    user show reports each pool's seat, sessions and last use."""
    for pool, opts in (("a", ("--named", "1")), ("b", ("--floating", "2")),
                       ("c", ("--floating", "2"))):
        seatctl("pool", "set", pool, *opts, check=EX_OK)
    seatctl("user", "set", "u", "--groups", "ops,dev", check=EX_OK)
    seatctl("assign", "a", "u", check=EX_OK)
    t0 = server_ms(rdb)
    seatctl("acquire", "a", "u", "--session", "s1", check=EX_OK)
    seatctl("acquire", "b", "u", "--session", "x", check=EX_OK)
    seatctl("acquire", "b", "u", "--session", "y", check=EX_OK)
    d = user_show(seatctl_json, "u")
    assert d["registered"] is True and sorted(d["groups"]) == ["dev", "ops"]
    assert (d["disabled"], d["service_account"]) == (False, False)
    pools = {p["pool"]: p for p in d["pools"]}
    assert set(pools) == {"a", "b", "c"}
    a, b, c = pools["a"], pools["b"], pools["c"]
    assert (a["seat"], a["sessions"], a["lease_expires_ms"]) == ("named", 1, 0)
    assert a["last_used_ms"] >= t0
    assert (b["seat"], b["sessions"]) == ("floating", 2)
    assert b["lease_expires_ms"] == leases(rdb, "b")["u"] > server_ms(rdb)
    assert b["last_used_ms"] >= t0
    assert (c["seat"], c["sessions"], c["lease_expires_ms"], c["last_used_ms"]) == \
        ("none", 0, 0, 0)
    # the text form
    rc, out, _ = seatctl("user", "show", "u")
    assert rc == EX_OK
    rows = {l.split()[0]: l.split() for l in out.splitlines() if l[:2] in ("a ", "b ", "c ")}
    assert rows["a"][1] == "named" and rows["b"][1] == "floating" and rows["c"][1] == "-"
    # after release the floating seat and its sessions are gone, last use stays
    seatctl("release", "b", "u", check=EX_OK)
    b2 = {p["pool"]: p for p in user_show(seatctl_json, "u")["pools"]}["b"]
    assert (b2["seat"], b2["sessions"], b2["lease_expires_ms"]) == ("none", 0, 0)
    assert b2["last_used_ms"] == b["last_used_ms"]


def test_user_show_unregistered_user(seatctl, seatctl_json):
    """A user never set nor imported: registered false, defaults, no seat."""
    seatctl("pool", "set", "p", "--floating", "1", check=EX_OK)
    d = user_show(seatctl_json, "stranger")
    assert d["user"] == "stranger" and d["registered"] is False
    assert (d["disabled"], d["service_account"], d["groups"]) == (False, False, [])
    assert [(p["pool"], p["seat"], p["sessions"]) for p in d["pools"]] == [("p", "none", 0)]
    rc, out, _ = seatctl("user", "show", "stranger")
    assert rc == EX_OK and "not registered" in out
    # an unregistered user who holds a seat is still unregistered
    seatctl("acquire", "p", "stranger", check=EX_OK)
    d = user_show(seatctl_json, "stranger")
    assert d["registered"] is False and d["pools"][0]["seat"] == "floating"
    assert seatctl("user", "show", " bad").rc == EX_USAGE


def test_user_show_counts_only_live_sessions(seatctl, seatctl_json, rdb):
    """A session whose lease lapsed is no session: user show must agree with
    the seat it shows (none) and with pool show (0 live sessions)."""
    seatctl("pool", "set", "p", "--floating", "2", "--idle-timeout", "1s", check=EX_OK)
    seatctl("acquire", "p", "u", "--session", "s1", check=EX_OK)
    assert {p["pool"]: p for p in user_show(seatctl_json, "u")["pools"]}["p"]["sessions"] == 1
    time.sleep(1.3)
    assert seatctl_json("pool", "show", "p")[1]["sessions"] == 0
    p = {p["pool"]: p for p in user_show(seatctl_json, "u")["pools"]}["p"]
    assert p["seat"] == "none" and p["lease_expires_ms"] == 0
    assert p["sessions"] == 0, p


# ---- audit ------------------------------------------------------------------------

def scripted_sequence(seatctl, rdb):
    """Grants, denials and releases alternating between pools p1 and p2;
    returns (expected events in order, a server time between steps 4 and 5)."""
    seatctl("pool", "set", "p1", "--floating", "1", check=EX_OK)
    seatctl("pool", "set", "p2", "--floating", "1", check=EX_OK)
    seatctl("user", "set", "bridge", "--service-account", check=EX_OK)
    steps = [
        (("acquire", "p1", "alice"), EX_OK,
         ("p1", "grant", "alice", "", "granted_floating", "floating_seat")),
        (("acquire", "p2", "bob"), EX_OK,
         ("p2", "grant", "bob", "", "granted_floating", "floating_seat")),
        (("acquire", "p1", "carol"), EX_DENIED,
         ("p1", "deny", "carol", "", "denied_exhausted", "all_floating_in_use")),
        (("acquire", "p2", "bridge", "--on-behalf-of", "dave"), EX_DENIED,
         ("p2", "deny", "bridge", "dave", "denied_exhausted", "all_floating_in_use")),
        None,  # the middle
        (("release", "p1", "alice"), EX_OK,
         ("p1", "release", "alice", "", "released", "seat_released")),
        (("acquire", "p1", "bridge", "--on-behalf-of", "dave"), EX_OK,
         ("p1", "grant", "bridge", "dave", "granted_floating", "floating_seat")),
        (("release", "p2", "bob"), EX_OK,
         ("p2", "release", "bob", "", "released", "seat_released")),
    ]
    want, mid = [], None
    for s in steps:
        time.sleep(0.01)  # entries of different pools never share a millisecond
        if s is None:
            mid = server_ms(rdb)
            continue
        args, rc, ev = s
        seatctl(*args, check=rc)
        want.append(ev)
    time.sleep(0.01)
    return want, mid


def decisions(entries):
    return [(e["pool"], e["ev"], e["user"], e.get("obo", ""), e["result"], e["reason"])
            for e in entries if e["ev"] in ("grant", "deny", "release")]


def test_audit_jsonl_in_time_order_across_pools(seatctl, rdb):
    """Default output: one JSON object a line, every stream merged in time
    order, each entry with time (RFC 3339 UTC, Z), pool, ev, user, result, reason."""
    want, _ = scripted_sequence(seatctl, rdb)
    rc, out, err = seatctl("audit")
    assert rc == EX_OK, err
    got = jsonl(out)
    assert [e["id"] for e in got] == stream_ids(rdb, *all_streams(rdb))
    assert {"p1", "p2", "_"} <= set(all_streams(rdb))
    assert decisions(got) == want
    prev = ""
    for e in got:
        for k in ("time", "at", "pool", "ev", "user", "result", "id"):
            assert k in e, (k, e)
        assert RFC3339_MS_Z.match(e["time"]), e
        assert RFC3339_MS_Z.match(e["at"]), e
        assert e["time"] == rfc3339(int(e["id"].split("-")[0])), e
        assert e["time"] >= prev, "out of time order: %r" % e
        prev = e["time"]
    for e in got:
        if e["ev"] in ("grant", "deny", "release", "pool_created", "user_set"):
            assert e.get("reason"), e


def test_audit_filters_pool_user_since_until(seatctl, rdb):
    """--pool, --user (the user or on whose behalf), --since and --until with
    RFC 3339 times (Z or an offset) and with durations ago."""
    want, mid = scripted_sequence(seatctl, rdb)
    every = jsonl(seatctl("audit", check=EX_OK).out)

    p1 = jsonl(seatctl("audit", "--pool", "p1", check=EX_OK).out)
    assert [e["id"] for e in p1] == stream_ids(rdb, "p1")
    assert {e["pool"] for e in p1} == {"p1"}
    assert decisions(p1) == [w for w in want if w[0] == "p1"]

    dave = jsonl(seatctl("audit", "--user", "dave", check=EX_OK).out)
    assert dave and dave == [e for e in every if "dave" in (e["user"], e.get("obo"))]
    assert decisions(dave) == [w for w in want if w[3] == "dave"]
    bridge = jsonl(seatctl("audit", "--user", "bridge", check=EX_OK).out)
    assert [e for e in bridge if e["pool"] == "_"], "the registry change of bridge"
    assert decisions(bridge) == [w for w in want if w[2] == "bridge"]
    bob_p2 = jsonl(seatctl("audit", "--pool", "p2", "--user", "bob", check=EX_OK).out)
    assert [(e["ev"], e["pool"]) for e in bob_p2] == [("grant", "p2"), ("release", "p2")]
    assert seatctl("audit", "--user", "nobody", check=EX_OK).out == ""

    after = [e for e in every if int(e["id"].split("-")[0]) >= mid]
    before = [e for e in every if int(e["id"].split("-")[0]) <= mid]
    assert decisions(after) == want[4:] and decisions(before) == want[:4]
    for t in (rfc3339(mid), rfc3339(mid, 120), rfc3339(mid, -330), "@%d" % mid):
        assert jsonl(seatctl("audit", "--since", t, check=EX_OK).out) == after, t
        assert jsonl(seatctl("audit", "--until", t, check=EX_OK).out) == before, t
    both = jsonl(seatctl("audit", "--pool", "p1", "--since", rfc3339(mid), "--until", "now",
                         check=EX_OK).out)
    assert decisions(both) == [w for w in want[4:] if w[0] == "p1"]

    # durations ago: everything was written within the hour, nothing before it
    assert jsonl(seatctl("audit", "--since", "1h", check=EX_OK).out) == every
    assert jsonl(seatctl("audit", "--since", "3600", check=EX_OK).out) == every
    assert seatctl("audit", "--until", "1h", check=EX_OK).out == ""
    assert seatctl("audit", "--until", "2000-01-01T00:00:00Z", check=EX_OK).out == ""
    assert jsonl(seatctl("audit", "--since", "2000-01-01", check=EX_OK).out) == every


def test_audit_merges_long_streams(seatctl_stdin, seatctl, rdb):
    """Streams longer than one read (thousands of entries, written in bursts
    within one millisecond) merge completely and in id order; --since/--until
    at a millisecond inside a burst cut there."""
    for pool in ("p1", "p2"):
        seatctl("pool", "set", pool, "--named", "5000", check=EX_OK)
    for k in range(3):
        for pool, n in (("p1", 1200), ("p2", 700)):
            users = "\n".join("%s_%d_%d" % (pool, k, i) for i in range(n)).encode()
            seatctl_stdin(users, "assign", pool, "--from", "-", check=EX_OK)
    want = stream_ids(rdb, "p1", "p2")
    assert len(want) == 3 * 1900 + 2
    got = [e["id"] for e in jsonl(seatctl("audit", check=EX_OK).out)]
    assert got == want
    rows = list(csv.reader(io.StringIO(seatctl("audit", "--format", "csv", check=EX_OK).out,
                                       newline="")))
    assert [r[CSV_COLUMNS.index("id")] for r in rows[1:]] == want
    mid = int(want[len(want) // 2].split("-")[0])
    ms = lambda i: int(i.split("-")[0])  # noqa: E731
    got = [e["id"] for e in jsonl(seatctl("audit", "--since", "@%d" % mid, check=EX_OK).out)]
    assert got == [i for i in want if ms(i) >= mid]
    got = [e["id"] for e in jsonl(seatctl("audit", "--until", "@%d" % mid, check=EX_OK).out)]
    assert got == [i for i in want if ms(i) <= mid]


@pytest.mark.parametrize("args", [
    ("--since", "yesterday"), ("--since", "1h ago"), ("--since", "2026-02-30T00:00:00Z"),
    ("--since", "2026-11-29T24:00:00Z"), ("--since", "2026-11-29T10:00:00"),
    ("--since", "2026-11-29 10:00:00Z"), ("--until", "-5m"), ("--since", ""),
    ("--since", "1h", "--until", "2h"), ("--format", "xml"), ("--user", " bob"),
    ("--pool", "no/such"),
])
def test_audit_bad_arguments_exit_2(seatctl, rdb, args):
    """Bad times, --until before --since, an unknown format: exit 2, no output."""
    seatctl("pool", "set", "p", "--floating", "1", check=EX_OK)
    res = seatctl("audit", *args)
    assert res.rc == EX_USAGE, res
    assert res.out == ""


def test_audit_csv_matches_jsonl(seatctl, rdb):
    """--format csv: the header line, then the same entries as the JSON lines,
    read back with Python's csv module."""
    scripted_sequence(seatctl, rdb)
    js = jsonl(seatctl("audit", check=EX_OK).out)
    out = seatctl("audit", "--format", "csv", check=EX_OK).out
    assert out.split("\r\n")[0] == ",".join(CSV_COLUMNS)
    rows = list(csv.reader(io.StringIO(out, newline="")))
    assert rows[0] == CSV_COLUMNS
    body = [dict(zip(CSV_COLUMNS, r)) for r in rows[1:]]
    assert all(len(r) == len(CSV_COLUMNS) for r in rows[1:])
    assert len(body) == len(js)
    for c, j in zip(body, js):
        for col in CSV_COLUMNS:
            v = j.get(col, "")
            assert c[col] == csv_guarded(str(v)), (col, c, j)


AWKWARD = ['doe, "jj"', "=1+2", "=HYPERLINK(\"http://x\",\"y\")", "+cmd", "@SUM(A1)", "-2",
           "J\u00f6rg \u00dcnl\u00fc", "\u540d\u524d", "sp ace", "quote\"only", "trailing,"]


def test_audit_csv_awkward_user_names_round_trip(seatctl, rdb, tmp_path):
    """User names with commas, quotes, a leading = + - @ (formula injection) and
    non-ASCII come back from the CSV as written, the formula-like ones with
    the single quote sg_csv_field documents in front; JSON lines carry them as
    they are. (The names go in with assign --from: a name starting with '-'
    cannot be a command-line argument.)"""
    n = str(len(AWKWARD))
    seatctl("pool", "set", "p", "--named", n, "--floating", n, check=EX_OK)
    seatctl("assign", "p", "--from", write(tmp_path, "u.txt", "\n".join(AWKWARD) + "\n"),
            check=EX_OK)
    grantable = [u for u in AWKWARD if not u.startswith("-")]
    for u in grantable:
        seatctl("acquire", "p", u, check=EX_OK)
    js = jsonl(seatctl("audit", "--pool", "p", check=EX_OK).out)
    assert [e["user"] for e in js if e["ev"] == "assign"] == AWKWARD
    assert [e["user"] for e in js if e["ev"] == "grant"] == grantable
    out = seatctl("audit", "--pool", "p", "--format", "csv", check=EX_OK).out
    rows = [dict(zip(CSV_COLUMNS, r)) for r in csv.reader(io.StringIO(out, newline=""))][1:]
    assert len(rows) == len(js)
    for ev, names in (("assign", AWKWARD), ("grant", grantable)):
        assert [r["user"] for r in rows if r["ev"] == ev] == [csv_guarded(u) for u in names]
    assert "'=1+2" in [r["user"] for r in rows]
    assert "'-2" in [r["user"] for r in rows]
    # no cell of the file starts with a formula character
    for r in rows:
        for col, v in r.items():
            assert not v or v[0] not in "=+-@", (col, v)
    # --user finds each of them
    for u in AWKWARD:
        got = jsonl(seatctl("audit", "--pool", "p", "--user", u, check=EX_OK).out)
        assert [e["ev"] for e in got] == ["assign"] + (["grant"] if u in grantable else []), u


def test_audit_registry_stream_has_pool_underscore(seatctl, rdb):
    """user set changes are audited in the registry's own stream, shown with
    pool "_"."""
    seatctl("user", "set", "erin", "--groups", "ops", check=EX_OK)
    seatctl("user", "set", "erin", "--disabled", check=EX_OK)
    got = jsonl(seatctl("audit", check=EX_OK).out)
    reg = [e for e in got if e["pool"] == "_"]
    assert [(e["ev"], e["user"]) for e in reg] == [("user_set", "erin"), ("user_set", "erin")]
    assert "groups=,ops," in reg[0]["reason"] and "disabled=1" in reg[1]["reason"]
    assert jsonl(seatctl("audit", "--user", "erin", check=EX_OK).out) == reg


class Follower:
    """seatctl audit --follow ARGS as a subprocess (admin role), killed on exit."""

    def __init__(self, redis_server, seatctl_conf, *args):
        self.proc = subprocess.Popen(
            [helpers.SEATCTL, "--redis", redis_server.admin_url, "audit", "--follow"] +
            list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=helpers.seatctl_env(seatctl_conf))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(5)
        self.proc.stdout.close()
        self.proc.stderr.close()

    def until(self, pred, deadline):
        return read_until(self.proc, pred, deadline)


def test_audit_follow_prints_new_entries(seatctl, rdb, redis_server, seatctl_conf):
    """--follow --pool p prints the history, then new entries of p as they come."""
    seatctl("pool", "set", "p", "--floating", "2", check=EX_OK)
    seatctl("pool", "set", "other", "--floating", "2", check=EX_OK)
    with Follower(redis_server, seatctl_conf, "--pool", "p") as f:
        deadline = time.monotonic() + 10
        seen, ok = f.until(lambda e: e["ev"] == "pool_created", deadline)
        assert ok, (seen, f.proc.poll())
        seatctl("acquire", "other", "zed", check=EX_OK)  # another pool: not followed
        seatctl("acquire", "p", "alice", "--session", "s1", check=EX_OK)
        more, ok = f.until(lambda e: e["ev"] == "grant", deadline)
        assert ok, (seen + more, f.proc.poll())
        assert f.proc.poll() is None, "--follow stopped by itself"
        g = more[-1]
        assert (g["pool"], g["user"], g["session"], g["result"]) == \
            ("p", "alice", "s1", "granted_floating")
        assert RFC3339_MS_Z.match(g["time"])
        assert all(e["pool"] == "p" for e in seen + more)
        # and a second one, to show it keeps following
        seatctl("release", "p", "alice", check=EX_OK)
        more, ok = f.until(lambda e: e["ev"] == "release", deadline)
        assert ok and more[-1]["user"] == "alice"


def test_audit_follow_with_user_filter(seatctl, rdb, redis_server, seatctl_conf):
    """--follow --user dave prints only entries of dave (as user or on whose
    behalf), from every pool."""
    seatctl("pool", "set", "p", "--floating", "2", check=EX_OK)
    seatctl("pool", "set", "q", "--floating", "2", check=EX_OK)
    seatctl("user", "set", "bridge", "--service-account", check=EX_OK)
    with Follower(redis_server, seatctl_conf, "--user", "dave") as f:
        deadline = time.monotonic() + 10
        seatctl("acquire", "p", "erin", check=EX_OK)
        seatctl("acquire", "p", "dave", check=EX_OK)
        seatctl("acquire", "q", "bridge", "--on-behalf-of", "dave", check=EX_OK)
        seen, ok = f.until(lambda e: e["pool"] == "q", deadline)
        assert ok, seen
        assert [(e["pool"], e["ev"], e["user"], e.get("obo", "")) for e in seen] == \
            [("p", "grant", "dave", ""), ("q", "grant", "bridge", "dave")]


def test_audit_follow_sees_a_pool_created_later(seatctl, rdb, redis_server, seatctl_conf):
    """A SIEM feed started before a pool was created must see that pool's entries."""
    seatctl("pool", "set", "p", "--floating", "2", check=EX_OK)
    with Follower(redis_server, seatctl_conf) as f:
        deadline = time.monotonic() + 5
        seen, ok = f.until(lambda e: e["ev"] == "pool_created", deadline)
        assert ok, seen
        seatctl("pool", "set", "q", "--floating", "2", check=EX_OK)
        seatctl("acquire", "q", "alice", check=EX_OK)
        seatctl("acquire", "p", "bob", check=EX_OK)  # p is followed: this one shows
        seen, ok = f.until(lambda e: e["pool"] == "q" and e["ev"] == "grant", deadline)
        assert ok, [(e["pool"], e["ev"], e["user"]) for e in seen]


def test_audit_follow_on_an_empty_database_keeps_running(seatctl, rdb, redis_server,
                                                         seatctl_conf):
    """Started on a fresh install, --follow waits for the first entries."""
    with Follower(redis_server, seatctl_conf) as f:
        time.sleep(0.5)
        assert f.proc.poll() is None, "exited with %s" % f.proc.returncode
        seatctl("pool", "set", "p", "--floating", "2", check=EX_OK)
        seen, ok = f.until(lambda e: e["ev"] == "pool_created", time.monotonic() + 5)
        assert ok, seen


# ---- doctor -----------------------------------------------------------------------

FINDINGS = {"projection_drift", "gcount_drift", "ghost_leases", "index_missing",
            "host_index_stale"}


def test_doctor_finds_and_fixes_drift(seatctl, seatctl_json, rdb):
    """Induced drift of five kinds is reported (exit 1), --fix repairs it
    (exit 0), a second doctor finds nothing, and decisions are right again."""
    rc, out, _ = seatctl("doctor")
    assert (rc, out.strip()) == (EX_OK, "doctor: no drift found")

    seatctl("pool", "set", "p", "--floating", "3", "--reserve", "ops=1", check=EX_OK)
    seatctl("pool", "set", "q", "--floating", "1", check=EX_OK)
    seatctl("user", "set", "dis", "--disabled", check=EX_OK)
    seatctl("user", "set", "o1", "--groups", "ops", check=EX_OK)
    seatctl("acquire", "p", "o1", "--lease", "1h", check=EX_OK)
    assert rdb.hget("sg:{p}:gcount", "ops") == "1"
    rc, out, _ = seatctl("doctor")
    assert (rc, out.strip()) == (EX_OK, "doctor: no drift found")
    rc, d, _ = seatctl_json("doctor")
    assert (rc, d["findings"], d["count"]) == (EX_OK, [], 0)

    # (a) the pool lost its copy of a disabled user's record
    assert rdb.hdel("sg:{p}:users", "dis") == 1
    # the drift is real: the disabled user gets a seat
    assert decide(seatctl_json, "acquire", "p", "dis")[:2] == (EX_OK, "granted_floating")
    # (b) a wrong group count
    rdb.hset("sg:{p}:gcount", "ops", 5)
    # (c) a lease with no session
    rdb.zadd("sg:{p}:leases", {"ghost": server_ms(rdb) + 600000})
    # (d) a pool missing from the index
    assert rdb.srem("sg:{_}:pools", "q") == 1
    # (e) a host index entry for a session that does not exist
    rdb.hset("sg:host:someid", "p\tnobody\ts1",
             "pid=4242\tpstart=1\tboot=x\tlease=60\trenewed=0")

    snap = db_snapshot(rdb)
    rc, d, err = seatctl_json("doctor")
    assert rc == EX_DENIED, err
    kinds = {(f["pool"], f["finding"]) for f in d["findings"]}
    assert kinds == {("p", "projection_drift"), ("p", "gcount_drift"), ("p", "ghost_leases"),
                     ("q", "index_missing"), ("someid", "host_index_stale")}, d
    assert d["count"] == 5 and d["fixed"] is False
    proj = [f for f in d["findings"] if f["finding"] == "projection_drift"]
    assert "dis" in proj[0]["detail"]
    rc, out, _ = seatctl("doctor")
    assert rc == EX_DENIED and "doctor --fix" in out
    for k in FINDINGS:
        assert k in out
    assert db_snapshot(rdb) == snap, "doctor without --fix changed Redis"

    rc, out, err = seatctl("doctor", "--fix")
    assert rc == EX_OK, (out, err)
    assert "(fixed)" in out
    rc, d, _ = seatctl_json("doctor")
    assert (rc, d["findings"], d["count"]) == (EX_OK, [], 0)
    rc, out, _ = seatctl("doctor")
    assert (rc, out.strip()) == (EX_OK, "doctor: no drift found")

    # the repaired state behaves
    assert decide(seatctl_json, "acquire", "p", "dis") == \
        (EX_DENIED, "denied_disabled", "user_disabled")
    assert rdb.zscore("sg:{p}:leases", "ghost") is None
    assert set(leases(rdb, "p")) == {"o1"}  # the disabled user's seat was taken back
    assert rdb.hget("sg:{p}:gcount", "ops") == "1"
    assert rdb.sismember("sg:{_}:pools", "q")
    assert "q" in {p["pool"] for p in seatctl_json("pool", "show")[1]["pools"]}
    assert rdb.hlen("sg:host:someid") == 0
    revokes = [e for e in helpers.audit_entries(rdb, "p") if e["ev"] == "revoke"]
    assert sorted((e["user"], e["reason"]) for e in revokes) == \
        [("dis", "user_disabled"), ("ghost", "no_session")]
    # seats: 3 floating, o1 holds one, ops reservation met: two more for anyone
    assert decide(seatctl_json, "acquire", "p", "x1")[0] == EX_OK
    assert decide(seatctl_json, "acquire", "p", "x2")[0] == EX_OK
    assert decide(seatctl_json, "acquire", "p", "x3")[1] == "denied_exhausted"
    # --fix on a clean state is harmless
    snap = db_snapshot(rdb)
    assert seatctl("doctor", "--fix").rc == EX_OK
    assert seatctl("doctor").rc == EX_OK


def test_doctor_projection_drift_both_ways(seatctl, seatctl_json, rdb):
    """A pool with --include ops: a member missing from its copy, a record the
    registry does not have, a stale record of a now-disabled user. doctor names
    each user; --fix makes the pool decide as the registry says."""
    seatctl("pool", "set", "p", "--floating", "3", "--include", "ops", check=EX_OK)
    seatctl("user", "set", "alice", "--groups", "ops,dev", check=EX_OK)
    seatctl("user", "set", "dis", "--disabled", "--groups", "ops", check=EX_OK)
    assert seatctl("doctor").rc == EX_OK
    rdb.hdel("sg:{p}:users", "alice")
    rdb.hset("sg:{p}:users", "mallory", "1099,")       # disabled, unknown to the registry
    rdb.hset("sg:{p}:users", "dis", "0099,ops,")       # enabled, newer than the registry
    assert decide(seatctl_json, "acquire", "p", "alice")[1] == "denied_excluded"
    assert decide(seatctl_json, "acquire", "p", "mallory")[1] == "denied_disabled"
    assert decide(seatctl_json, "acquire", "p", "dis")[1] == "granted_floating"
    rc, d, _ = seatctl_json("doctor")
    assert rc == EX_DENIED and d["count"] == 3
    assert {f["finding"] for f in d["findings"]} == {"projection_drift"}
    named = " ".join(f["detail"] for f in d["findings"])
    for u in ("alice", "mallory", "dis"):
        assert "user %s:" % u in named, named
    assert seatctl("doctor", "--fix").rc == EX_OK
    rc, d, _ = seatctl_json("doctor")
    assert (rc, d["count"]) == (EX_OK, 0)
    assert leases(rdb, "p") == {}  # dis lost the seat the drift gave
    assert decide(seatctl_json, "acquire", "p", "alice")[1] == "granted_floating"
    assert decide(seatctl_json, "acquire", "p", "mallory")[1] == "denied_excluded"
    assert decide(seatctl_json, "acquire", "p", "dis")[1] == "denied_disabled"
