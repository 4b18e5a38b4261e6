"""pam_seatgate through real libpam, without root and without /etc/pam.d.

Two drivers, both under pam_wrapper (LD_PRELOAD=libpam_wrapper.so, service
files in a temporary directory):

- the cmocka + libpamtest suite build/tests/test_pam_seatgate
  (tests/pam/test_pam_seatgate.c), run once with the services it expects;
- pamtester, driven from here: every module argument, every decision result
  with the message the user sees, Redis stopped and stalled, bad arguments,
  the exempt group (with nss_wrapper), reap of a dead session, and a few
  transactions under valgrind.

pam_wrapper sends the module's syslog lines to stderr when
PAM_WRAPPER_DEBUGLEVEL is set ("PWRAP_...: SYSLOG(prio): text"); the tests
read them to check what the module logs.
"""
import glob
import os
import re
import shutil
import subprocess
import threading
import time
from collections import namedtuple

import pytest

import helpers

PAM_SO = os.path.join(helpers.BUILD, "pam_seatgate.so")
PAM_TEST_BIN = os.path.join(helpers.BUILD, "tests", "test_pam_seatgate")
PAMTESTER = shutil.which("pamtester") or "/usr/bin/pamtester"
VALGRIND = shutil.which("valgrind") or "/usr/bin/valgrind"
VALGRIND_SUPP = os.path.join(helpers.REPO, "tests", "pam", "valgrind.supp")
DEFAULT_CONF = "/etc/security/seatgate.conf"

# pam_strerror() texts pamtester prints
MSG = {
    "PAM_SUCCESS": None,
    "PAM_PERM_DENIED": "Permission denied",
    "PAM_SERVICE_ERR": "Error in service module",
    "PAM_SESSION_ERR": "Cannot make/remove an entry for the specified session",
}
UNAVAILABLE = "the license service is unavailable; try again later"

Res = namedtuple("Res", "rc out err secs log")


def _find_lib(name):
    for d in ("/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/lib", "/lib/x86_64-linux-gnu"):
        p = os.path.join(d, name)
        if os.path.exists(p):
            return p
    return None


PAM_WRAPPER = _find_lib("libpam_wrapper.so")
NSS_WRAPPER = _find_lib("libnss_wrapper.so")
# make SANITIZE=1: the module (and the cmocka binary) carry ASan+UBSan, whose
# runtime must be loaded first in an uninstrumented pamtester
SANITIZE = os.environ.get("SEATGATE_SANITIZE") == "1"


def _asan_runtime():
    if not SANITIZE or not os.path.exists(PAM_SO):
        return []
    out = subprocess.run(["ldd", PAM_SO], stdout=subprocess.PIPE, text=True).stdout
    m = re.search(r"libasan\.so\S* => (\S+)", out)
    return [m.group(1)] if m else []


ASAN_PRELOAD = _asan_runtime()


@pytest.fixture(scope="module", autouse=True)
def _pam_prereqs():
    missing = [what for what, ok in (
        (PAM_SO, os.path.exists(PAM_SO)),
        ("pamtester", os.access(PAMTESTER, os.X_OK)),
        ("libpam_wrapper.so (libpam-wrapper)", PAM_WRAPPER),
    ) if not ok]
    if missing:
        pytest.fail("missing for the PAM tests: %s (make deps; make)" % ", ".join(missing))


class Pam:
    """Service files in a directory of their own, and pamtester runs on them."""

    def __init__(self, root, url):
        self.root = str(root)
        self.dir = os.path.join(self.root, "pam.d")
        os.makedirs(self.dir, exist_ok=True)
        # an empty "other" keeps libpam from complaining about a missing default
        open(os.path.join(self.dir, "other"), "w").close()
        self.url = url
        self.empty_conf = os.path.join(self.root, "empty.conf")
        with open(self.empty_conf, "w") as f:
            f.write("# nothing: the PAM lines say it all\n")

    def args(self, *args, url=True):
        a = list(args)
        if url and not any(x.startswith("redis=") for x in a):
            a.append("redis=%s" % (url if isinstance(url, str) else self.url))
        # never let a real /etc/security/seatgate.conf leak into the tests
        if os.path.exists(DEFAULT_CONF) and not any(x.startswith("conf=") for x in a):
            a.append("conf=%s" % self.empty_conf)
        return a

    def service(self, name, *args, url=True, raw=None):
        """Write DIR/name with an account and a session line (or raw text)."""
        line = " ".join([PAM_SO] + self.args(*args, url=url))
        text = raw if raw is not None else (
            "account required %s\nsession required %s\n" % (line, line))
        with open(os.path.join(self.dir, name), "w") as f:
            f.write(text)
        return name

    def stacked(self, name, *args, url=True):
        """A service as Debian's common-* files stack it: pam_seatgate, then
        pam_permit standing for pam_unix. An exempt user is PAM_IGNORE to
        pam_seatgate, so the stack's other modules decide."""
        line = " ".join([PAM_SO] + self.args(*args, url=url))
        return self.service(name, raw="account required %s\naccount required pam_permit.so\n"
                            "session required %s\nsession required pam_permit.so\n"
                            % (line, line))

    def env(self, nss=None, debuglevel=2):
        env = helpers.seatctl_env()
        preload = ASAN_PRELOAD + [PAM_WRAPPER]
        if ASAN_PRELOAD:
            # pamtester and libpam are not ours: report only errors, and
            # leaks only through valgrind (which a sanitizer build skips)
            env.setdefault("ASAN_OPTIONS", "detect_leaks=0")
        if nss:
            preload.append(NSS_WRAPPER)
            env["NSS_WRAPPER_PASSWD"], env["NSS_WRAPPER_GROUP"] = nss
        env.update({
            "LD_PRELOAD": ":".join(preload),
            "PAM_WRAPPER": "1",
            "PAM_WRAPPER_SERVICE_DIR": self.dir,
            "PAM_WRAPPER_DEBUGLEVEL": str(debuglevel),
        })
        return env

    def run(self, service, user, *ops, nss=None, valgrind=None, timeout=60, wait=True,
            items=()):
        """pamtester -v [-I item=value...] SERVICE USER OPS... -> Res(rc, out, err, secs, log)."""
        argv = [PAMTESTER, "-v"] + ["-I%s" % i for i in items] + [service, user] + list(ops)
        env = self.env(nss)
        if valgrind is not None:
            argv = valgrind + argv
            env["PAM_WRAPPER_DISABLE_DEEPBIND"] = "1"
        t0 = time.monotonic()
        p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        if not wait:
            return p
        out, err = p.communicate(timeout=timeout)
        secs = time.monotonic() - t0
        if valgrind is not None:
            _clean_pam_wrapper_dirs(p.pid)
        out, err = out.decode("utf-8", "replace"), err.decode("utf-8", "replace")
        log = "\n".join(m.group(1) for m in re.finditer(r"SYSLOG\(\d\): (.*)", err))
        return Res(p.returncode, out, err, secs, log)


def _clean_pam_wrapper_dirs(pid):
    """pam_wrapper keeps its copy of the service files in /tmp/pam.X with a pid
    file. Under valgrind the launcher (same pid, then exec) leaves it behind;
    remove the ones of this pid only, once it is gone."""
    for d in glob.glob("/tmp/pam.?"):
        try:
            with open(os.path.join(d, "pid")) as f:
                if int(f.read().strip() or 0) == pid:
                    shutil.rmtree(d, ignore_errors=True)
        except (OSError, ValueError):
            pass


def expect(res, rc_name, message=None):
    """pamtester exit and the PAM code it reports, and the message the user saw."""
    text = res.out + res.err
    if rc_name == "PAM_SUCCESS":
        assert res.rc == 0, "pamtester failed:\n%s" % text
        assert "license" not in res.err and "pool" not in _user_lines(res.err), text
    else:
        assert res.rc == 1, "pamtester passed, wanted %s:\n%s" % (rc_name, text)
        assert "pamtester: %s" % MSG[rc_name] in res.err, text
    if message is not None:
        assert message in _user_lines(res.err), "no %r in:\n%s" % (message, text)


def _user_lines(err):
    """What the user saw through the conversation: stderr without pamtester's
    own lines and pam_wrapper's log."""
    return "\n".join(l for l in err.splitlines()
                     if not l.startswith("pamtester:") and not l.startswith("PWRAP_"))


@pytest.fixture
def pam(tmp_path, redis_server, rdb):
    return Pam(tmp_path, redis_server.decide_url)


@pytest.fixture
def seats(seatctl):
    """The shop of most tests: technicians (1 named, 3 floating, cmdb,
    contractors excluded), namedonly (1 named, no floating)."""
    seatctl("pool", "set", "technicians", "--named", "1", "--floating", "3",
            "--idle-timeout", "15m", "--features", "cmdb", "--exclude", "contractors", check=0)
    seatctl("pool", "set", "namedonly", "--named", "1", "--floating", "0", check=0)
    for u in ("alice", "bob", "carol", "dave", "erin", "frank"):
        seatctl("user", "set", u, "--groups", "agents", check=0)
    seatctl("user", "set", "eve", "--groups", "contractors", check=0)
    seatctl("user", "set", "dan", "--groups", "agents", "--disabled", check=0)
    seatctl("assign", "technicians", "alice", check=0)
    return seatctl


def sessions(seatctl_json, pool):
    res = seatctl_json("sessions", pool, check=0)
    return res.out["sessions"]


def in_use(seatctl_json, pool):
    return seatctl_json("pool", "show", pool, check=0).out["in_use"]


def snapshot(redis_server):
    c = redis_server.client(decode=False)
    try:
        return helpers.db_snapshot(c)
    finally:
        c.close()


# ---- the cmocka + libpamtest suite ------------------------------------------

PAM_SERVICES = {
    # name: arguments (redis=URL added unless given); see tests/pam/test_pam_seatgate.c
    "sg": ["pool=technicians"],
    "sg_named": ["pool=namedonly"],
    "sg_nopool": ["pool=nosuchpool"],
    "sg_feature_ok": ["pool=technicians", "feature=cmdb"],
    "sg_feature_no": ["pool=technicians", "feature=change-advanced"],
    "sg_lease": ["pool=technicians", "lease=90s"],
    "sg_down_closed": ["pool=technicians", "redis={down}", "fail=closed", "timeout=300"],
    "sg_down_open": ["pool=technicians", "redis={down}", "fail=open", "timeout=300"],
    "sg_conf": ["conf={good}"],
    "sg_conf_override": ["conf={good}", "feature=cmdb"],
    "sg_bad_unknown": ["pool=technicians", "bogus=1"],
    "sg_bad_fail": ["pool=technicians", "fail=maybe"],
    "sg_bad_timeout": ["pool=technicians", "timeout=abc"],
    "sg_bad_nopool": [],
    "sg_bad_conf_missing": ["conf={missing}"],
    "sg_bad_conf_line": ["conf={bad}"],
}


def write_confs(pam):
    good = os.path.join(pam.root, "good.conf")
    with open(good, "w") as f:
        f.write("# seatgate test config\npool = technicians\nredis = %s\n"
                "feature = change-advanced\ntimeout = 1000\n" % pam.url)
    bad = os.path.join(pam.root, "bad.conf")
    with open(bad, "w") as f:
        f.write("pool = technicians\nthis line is not a setting\n")
    return {"good": good, "bad": bad, "missing": os.path.join(pam.root, "missing.conf"),
            "down": "redis://127.0.0.1:%d" % helpers.closed_port()}


def test_libpamtest_suite(pam, redis_server, seatctl_bin):
    """tests/pam/test_pam_seatgate.c: decisions, messages, return codes,
    sessions from several processes, reap, bad arguments, conf=, lease=."""
    if not os.access(PAM_TEST_BIN, os.X_OK):
        pytest.fail("%s not built (make integration builds it)" % PAM_TEST_BIN)
    fill = write_confs(pam)
    for name, args in PAM_SERVICES.items():
        pam.service(name, *[a.format(**fill) for a in args])
    env = pam.env(debuglevel=0)
    env["SEATGATE_TEST_REDIS"] = redis_server.url
    env["SEATGATE_TEST_SEATCTL"] = seatctl_bin
    p = subprocess.run([PAM_TEST_BIN], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       env=env, timeout=120)
    out = p.stdout.decode("utf-8", "replace")
    assert p.returncode == 0, out
    assert "[  PASSED  ] 15 test(s)." in out, out


# ---- decisions, messages, return codes (pamtester) ---------------------------

def take(seatctl, *users):
    for u in users:
        seatctl("acquire", "technicians", u, check=0)


DECISIONS = [
    # (id, setup, service args, user, result, account rc, message)
    ("granted_named", None, ["pool=technicians"], "alice", "granted_named",
     "PAM_SUCCESS", None),
    ("granted_floating", None, ["pool=technicians"], "carol", "granted_floating",
     "PAM_SUCCESS", None),
    ("denied_unassigned", None, ["pool=namedonly"], "bob", "denied_unassigned",
     "PAM_PERM_DENIED", "you have no seat in pool namedonly; ask your license administrator"),
    ("denied_exhausted", ("carol", "dave", "erin"), ["pool=technicians"], "frank",
     "denied_exhausted", "PAM_PERM_DENIED",
     "all 3 floating seats of pool technicians are in use; try again later"),
    ("denied_excluded", None, ["pool=technicians"], "eve", "denied_excluded",
     "PAM_PERM_DENIED", "your account may not use pool technicians"),
    ("denied_feature", None, ["pool=technicians", "feature=change-advanced"], "carol",
     "denied_feature", "PAM_PERM_DENIED",
     "pool technicians does not include the module change-advanced"),
    ("denied_disabled", None, ["pool=technicians"], "dan", "denied_disabled",
     "PAM_PERM_DENIED", "your account is disabled for pool technicians"),
]


@pytest.mark.parametrize("case", DECISIONS, ids=[d[0] for d in DECISIONS])
def test_decision(pam, seats, seatctl_json, case):
    _, setup, args, user, result, rc, message = case
    if setup:
        take(seats, *setup)
    svc = pam.service("sgtest", *(args + ["debug"]))
    before = in_use(seatctl_json, args[0].split("=")[1])

    res = pam.run(svc, user, "acct_mgmt")
    expect(res, rc, message)
    # syslog says which result, with the reason
    assert re.search(r"account %s service sgtest pool \S+.*: %s \(" % (user, result),
                     res.log), res.log

    res = pam.run(svc, user, "open_session", "close_session")
    if rc == "PAM_SUCCESS":
        expect(res, "PAM_SUCCESS")
        assert "session closed" in res.log or "seat released" in res.log, res.log
    else:
        expect(res, "PAM_SESSION_ERR", message)
    pool = args[0].split("=")[1]
    assert in_use(seatctl_json, pool) == before
    assert [s for s in sessions(seatctl_json, pool) if s["user"] == user] == []


def test_decision_matches_seatctl_check(pam, seats, seatctl_json):
    """What PAM decides is what `seatctl check` explains."""
    take(seats, "carol", "dave", "erin")
    svc = pam.service("sgtest", "pool=technicians")
    for user in ("alice", "carol", "frank", "eve", "dan"):
        chk = seatctl_json("check", "technicians", user)
        res = pam.run(svc, user, "acct_mgmt")
        assert (res.rc == 0) == chk.out["result"].startswith("granted"), (user, chk.out, res)


# ---- module arguments --------------------------------------------------------

def test_arg_pool(pam, seats):
    """pool= picks the pool: bob has no seat in namedonly, a floating one in
    technicians."""
    expect(pam.run(pam.service("a", "pool=technicians"), "bob", "acct_mgmt"), "PAM_SUCCESS")
    expect(pam.run(pam.service("b", "pool=namedonly"), "bob", "acct_mgmt"), "PAM_PERM_DENIED",
           "you have no seat in pool namedonly")


def test_arg_redis(pam, seats):
    """redis= is where the seats are: a Redis without the pool denies."""
    expect(pam.run(pam.service("a", "pool=technicians"), "carol", "acct_mgmt"), "PAM_SUCCESS")
    with helpers.RedisServer() as other:
        svc = pam.service("b", "pool=technicians", url=other.url)
        expect(pam.run(svc, "carol", "acct_mgmt"), "PAM_PERM_DENIED",
               "pool technicians does not exist")


def test_arg_feature(pam, seats):
    expect(pam.run(pam.service("a", "pool=technicians", "feature=cmdb"), "carol",
                   "acct_mgmt"), "PAM_SUCCESS")
    expect(pam.run(pam.service("b", "pool=technicians", "feature=change-advanced"), "carol",
                   "acct_mgmt"), "PAM_PERM_DENIED",
           "pool technicians does not include the module change-advanced")


def test_arg_lease(pam, seats, seatctl_json):
    """lease= is the session lease; the default is 12 hours (not the pool's 15m)."""
    pam.run(pam.service("a", "pool=technicians"), "carol", "open_session")
    pam.run(pam.service("b", "pool=technicians", "lease=90s"), "dave", "open_session")
    pam.run(pam.service("c", "pool=technicians", "lease=2h"), "erin", "open_session")
    got = {s["user"]: s["expires_ms"] - s["started_ms"]
           for s in sessions(seatctl_json, "technicians")}
    assert 12 * 3600e3 - 2000 <= got["carol"] <= 12 * 3600e3
    assert 90e3 - 2000 <= got["dave"] <= 90e3
    assert 2 * 3600e3 - 2000 <= got["erin"] <= 2 * 3600e3


def test_arg_debug(pam, seats):
    """debug logs grants and session closes; without it a grant is silent."""
    res = pam.run(pam.service("a", "pool=technicians"), "carol",
                  "acct_mgmt", "open_session", "close_session")
    expect(res, "PAM_SUCCESS")
    assert "seatgate" not in res.log, res.log
    res = pam.run(pam.service("b", "pool=technicians", "debug"), "carol",
                  "acct_mgmt", "open_session", "close_session")
    expect(res, "PAM_SUCCESS")
    assert "account carol service b pool technicians: granted_floating" in res.log
    assert "open carol service b pool technicians: granted_floating" in res.log
    assert re.search(r"close carol session pam-[0-9a-f]+-\d+-\d+ in pool technicians: "
                     r"seat released", res.log), res.log
    # denials are logged with or without debug
    seats("user", "set", "carol", "--disabled", check=0)
    res = pam.run("a", "carol", "acct_mgmt")
    assert "denied_disabled (user_disabled)" in res.log, res.log


def test_arg_conf(pam, seats, tmp_path):
    """conf= is read first, the PAM line overrides it."""
    conf = tmp_path / "site.conf"
    conf.write_text("# site defaults\npool = namedonly\nredis = %s\n"
                    "fail = closed\ntimeout = 500\n" % pam.url)
    expect(pam.run(pam.service("a", "conf=%s" % conf, url=False), "bob", "acct_mgmt"),
           "PAM_PERM_DENIED", "you have no seat in pool namedonly")
    expect(pam.run(pam.service("b", "conf=%s" % conf, "pool=technicians", url=False), "bob",
                   "acct_mgmt"), "PAM_SUCCESS")
    # the order on the line does not matter: conf= is always read first
    expect(pam.run(pam.service("c", "pool=technicians", "conf=%s" % conf, url=False), "bob",
                   "acct_mgmt"), "PAM_SUCCESS")


def test_arg_fail_and_timeout_redis_stopped(pam, seats):
    """Redis stopped: fail=closed denies (a named user too), fail=open lets in;
    session close never fails a logout."""
    srv = helpers.RedisServer().start()
    try:
        helpers.run_seatctl(srv.url, "pool", "set", "technicians", "--floating", "3", check=0)
        closed = pam.service("closed", "pool=technicians", "fail=closed", "timeout=500",
                             url=srv.url)
        opened = pam.service("open", "pool=technicians", "fail=open", "timeout=500",
                             url=srv.url)
        default = pam.service("default", "pool=technicians", "timeout=500", url=srv.url)
        expect(pam.run(closed, "carol", "acct_mgmt", "open_session", "close_session"),
               "PAM_SUCCESS")
    finally:
        srv.stop()
    for svc in (closed, default):  # fail=closed is the default
        res = pam.run(svc, "carol", "acct_mgmt")
        expect(res, "PAM_PERM_DENIED", UNAVAILABLE)
        assert "fail=closed denies carol" in res.log, res.log
        expect(pam.run(svc, "carol", "open_session"), "PAM_SESSION_ERR", UNAVAILABLE)
        res = pam.run(svc, "carol", "close_session")
        expect(res, "PAM_SUCCESS")
        assert "without release" in res.log, res.log
    res = pam.run(opened, "carol", "acct_mgmt", "open_session", "close_session")
    expect(res, "PAM_SUCCESS")
    assert "fail=open lets carol in without a seat" in res.log, res.log


@pytest.mark.parametrize("how", ["sigstop", "debug_sleep"])
def test_arg_timeout_stalled_redis(pam, how):
    """A Redis that accepts but does not answer costs a login at most the
    timeout (timeout=300: well under 2 s), then fail= decides."""
    srv = helpers.RedisServer(extra_args=["--enable-debug-command", "yes"]).start()
    sleeper = None
    try:
        helpers.run_seatctl(srv.url, "pool", "set", "technicians", "--floating", "3", check=0)
        closed = pam.service("closed", "pool=technicians", "timeout=300", "fail=closed",
                             url=srv.url)
        opened = pam.service("open", "pool=technicians", "timeout=300", "fail=open",
                             url=srv.url)
        expect(pam.run(closed, "carol", "acct_mgmt"), "PAM_SUCCESS")
        if how == "sigstop":
            srv.pause()
        else:
            def sleep():
                c = srv.client(socket_timeout=30)
                try:
                    c.execute_command("DEBUG", "SLEEP", "3")
                finally:
                    c.close()
            sleeper = threading.Thread(target=sleep)
            sleeper.start()
            time.sleep(0.3)  # the sleep has begun
        res = pam.run(closed, "carol", "acct_mgmt")
        assert res.secs < 2.0, "account took %.2fs" % res.secs
        expect(res, "PAM_PERM_DENIED", UNAVAILABLE)
        res = pam.run(opened, "carol", "acct_mgmt", "open_session")
        assert res.secs < 2.0, "account+open took %.2fs" % res.secs
        expect(res, "PAM_SUCCESS")
        res = pam.run(closed, "carol", "close_session")
        assert res.secs < 2.0, "close took %.2fs" % res.secs
        expect(res, "PAM_SUCCESS")
    finally:
        if how == "sigstop":
            srv.resume()
        if sleeper:
            sleeper.join(10)
        srv.stop()


@pytest.mark.parametrize("fail", ["open", "closed"])
def test_one_budget_per_login_on_a_stalled_redis(pam, fail):
    """issue 11 finding 2: each Redis call of a login had its own timeout=,
    so with Redis stalled and fail=open a login waited 2-3 times it. Now
    account and session-open share one connection and one budget: the whole
    login ends within timeout= (plus 50 ms, plus what pamtester itself costs,
    measured on a healthy Redis in the same test)."""
    srv = helpers.RedisServer().start()
    try:
        helpers.run_seatctl(srv.url, "pool", "set", "technicians", "--floating", "3", check=0)
        svc = pam.service("s", "pool=technicians", "timeout=300", "fail=%s" % fail,
                          url=srv.url)
        base = min(pam.run(svc, "carol", "acct_mgmt", "open_session").secs for _ in range(3))
        srv.pause()
        res = pam.run(svc, "carol", "acct_mgmt", "open_session")
        if fail == "open":
            expect(res, "PAM_SUCCESS")
            assert res.log.count("fail=open lets carol in") == 2, res.log
            assert "used up timeout=300" in res.log, res.log
        else:
            expect(res, "PAM_PERM_DENIED", UNAVAILABLE)
        assert res.secs < 0.300 + 0.050 + base, "login took %.3fs (base %.3fs)" % (res.secs, base)
        res = pam.run(svc, "carol", "open_session")
        expect(res, "PAM_SUCCESS" if fail == "open" else "PAM_SESSION_ERR")
        assert res.secs < 0.300 + 0.050 + base, "open took %.3fs" % res.secs
    finally:
        srv.resume()
        srv.stop()


def test_a_silent_resolver_is_bounded_by_the_timeout(pam, tmp_path):
    """issue 11 finding 1: redis= with a host name went through the blocking
    resolver (20 s with timeout=500 and a resolver that never answers). In a
    mount namespace whose resolv.conf names a UDP port that never answers,
    a login with timeout=300 now ends within 400 ms, fail=closed denies and
    the log says why; the silent server did get the question."""
    if os.geteuid() != 0 or not shutil.which("unshare"):
        pytest.skip("needs root for a mount namespace and port 53")
    import socket
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        silent.bind(("127.0.0.77", 53))
    except OSError as e:
        pytest.skip("cannot bind 127.0.0.77:53: %s" % e)
    silent.settimeout(0)
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("nameserver 127.0.0.77\noptions timeout:5 attempts:3\n")
    svc = pam.service("dns", "pool=technicians", "timeout=300", "fail=closed",
                      url="redis://redis-stall.seatgate-test.example.org:6379")
    env = pam.env()
    env["SG_PRELOAD"] = env.pop("LD_PRELOAD")
    script = 'mount --bind "$1" /etc/resolv.conf && shift && exec env LD_PRELOAD="$SG_PRELOAD" "$@"'
    argv = ["unshare", "--mount", "--", "sh", "-c", script, "sh", str(resolv),
            PAMTESTER, "-v", svc, "carol", "acct_mgmt"]
    try:
        t0 = time.monotonic()
        p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                           timeout=60)
        secs = time.monotonic() - t0
        asked = 0
        while True:
            try:
                silent.recv(512)
                asked += 1
            except (BlockingIOError, socket.timeout):
                break
    finally:
        silent.close()
    err = p.stderr.decode("utf-8", "replace")
    assert asked >= 1, "the resolver was never asked:\n" + err
    assert p.returncode == 1 and "Permission denied" in err, err
    assert "name resolution took longer than the timeout" in err, err
    assert secs < 0.400, "the login took %.3fs" % secs


def test_arg_timeout_value_is_used(pam):
    """timeout=MS is the bound: 300 ms and 1200 ms against a stalled Redis."""
    srv = helpers.RedisServer().start()
    try:
        short = pam.service("short", "pool=technicians", "timeout=300", url=srv.url)
        long_ = pam.service("long", "pool=technicians", "timeout=1200", url=srv.url)
        srv.pause()
        a = pam.run(short, "carol", "acct_mgmt")
        b = pam.run(long_, "carol", "acct_mgmt")
    finally:
        srv.resume()
        srv.stop()
    expect(a, "PAM_PERM_DENIED", UNAVAILABLE)
    expect(b, "PAM_PERM_DENIED", UNAVAILABLE)
    assert a.secs < 1.1, a.secs
    assert 1.1 <= b.secs < 3.0, b.secs
    assert b.secs > a.secs + 0.5


# ---- bad arguments -------------------------------------------------------------

BAD = [
    ("unknown_option", ["pool=technicians", "bogus=1"], "unknown option 'bogus'"),
    ("bare_word", ["pool=technicians", "verbose"], "unknown option 'verbose'"),
    ("fail_maybe", ["pool=technicians", "fail=maybe"],
     "fail must be 'open' or 'closed', not 'maybe'"),
    ("timeout_abc", ["pool=technicians", "timeout=abc"],
     "timeout must be milliseconds 1..60000, not 'abc'"),
    ("timeout_zero", ["pool=technicians", "timeout=0"], "timeout must be milliseconds"),
    ("lease_bad", ["pool=technicians", "lease=forever"], "lease must be a duration"),
    ("missing_pool", [], "no pool= given"),
    ("bad_pool_name", ["pool=tech{{x}}"], "pool:"),
    ("bad_redis_url", ["pool=technicians", "redis=http://x"], "redis:"),
    ("bad_exempt_group", ["pool=technicians", "exempt_group=a,b"], "exempt_group"),
    ("conf_empty", ["pool=technicians", "conf="], "conf= needs a path"),
    ("conf_missing", ["pool=technicians", "conf={missing}"], "cannot read"),
    ("conf_bad_line", ["conf={bad}"], ":2: invalid setting"),
    ("conf_bad_value", ["conf={badval}"], "fail must be 'open' or 'closed'"),
]


@pytest.mark.parametrize("case", BAD, ids=[b[0] for b in BAD])
def test_bad_arguments_deny_and_change_nothing(pam, seats, redis_server, case):
    _, args, why = case
    files = {"missing": os.path.join(pam.root, "nope.conf"),
             "bad": os.path.join(pam.root, "bad.conf"),
             "badval": os.path.join(pam.root, "badval.conf")}
    with open(files["bad"], "w") as f:
        f.write("pool = technicians\nthis is not a setting\n")
    with open(files["badval"], "w") as f:
        f.write("pool = technicians\nredis = %s\nfail = sometimes\n" % pam.url)
    svc = pam.service("bad", *[a.format(**files) for a in args])
    before = snapshot(redis_server)
    # alice holds a named seat: only the bad argument can deny her
    res = pam.run(svc, "alice", "acct_mgmt")
    expect(res, "PAM_SERVICE_ERR")
    assert why in res.log, res.log
    assert "bad configuration; denying alice (fail closed)" in res.log, res.log
    expect(pam.run(svc, "alice", "open_session"), "PAM_SESSION_ERR")
    expect(pam.run(svc, "alice", "close_session"), "PAM_SUCCESS")
    expect(pam.run(svc, "carol", "open_session"), "PAM_SESSION_ERR")
    assert snapshot(redis_server) == before


# ---- exempt group (nss_wrapper) ------------------------------------------------

@pytest.fixture
def nss(tmp_path):
    if not NSS_WRAPPER:
        pytest.fail("libnss_wrapper.so missing (make deps)")
    passwd = tmp_path / "passwd"
    group = tmp_path / "group"
    passwd.write_text(
        "root:x:0:0:root:/root:/bin/sh\n"
        "alice:x:1001:1001:Alice:/home/alice:/bin/sh\n"
        "carol:x:1002:1002:Carol:/home/carol:/bin/sh\n"
        "boss:x:1003:1003:Boss:/home/boss:/bin/sh\n"
        "ops:x:1004:27:Ops, primary group sudo:/home/ops:/bin/sh\n")
    group.write_text(
        "root:x:0:\n"
        "sudo:x:27:boss\n"
        "alice:x:1001:\n"
        "carol:x:1002:\n"
        "boss:x:1003:\n"
        "agents:x:2000:alice,carol,boss\n")
    return str(passwd), str(group)


def test_exempt_group_passes_with_redis_stopped(pam, nss):
    """exempt_group=sudo: members (listed or by primary group) pass even with
    Redis down and fail=closed; everyone else is still checked. The module
    steps aside for them (PAM_IGNORE): alone in a stack it lets nobody in."""
    down = "redis://127.0.0.1:%d" % helpers.closed_port()
    svc = pam.stacked("ex", "pool=technicians", "fail=closed", "timeout=300",
                      "exempt_group=sudo", url=down)
    for user in ("boss", "ops"):
        res = pam.run(svc, user, "acct_mgmt", "open_session", "close_session", nss=nss)
        expect(res, "PAM_SUCCESS")
        assert "exempt as a member of group sudo, no seat taken" in res.log, res.log
    res = pam.run(svc, "carol", "acct_mgmt", nss=nss)
    expect(res, "PAM_PERM_DENIED", UNAVAILABLE)
    alone = pam.service("alone", "pool=technicians", "exempt_group=sudo", url=down)
    res = pam.run(alone, "boss", "acct_mgmt", nss=nss)
    assert res.rc == 1 and "exempt as a member of group sudo" in res.log, res.err
    # a group nobody is in exempts nobody
    svc2 = pam.stacked("ex2", "pool=technicians", "timeout=300", "exempt_group=agents-none",
                       url=down)
    expect(pam.run(svc2, "boss", "acct_mgmt", nss=nss), "PAM_PERM_DENIED", UNAVAILABLE)


def test_missing_exempt_group_is_logged_once(pam, nss):
    """issue 11 finding 3: exempt_group=wheel on a host without wheel (Debian
    12) exempted nobody and said nothing. Now it is logged, once per login,
    and its members are not assumed."""
    down = "redis://127.0.0.1:%d" % helpers.closed_port()
    svc = pam.stacked("ex", "pool=technicians", "fail=closed", "timeout=300",
                      "exempt_group=wheel-nowhere", url=down)
    res = pam.run(svc, "boss", "acct_mgmt", "open_session", nss=nss)
    expect(res, "PAM_PERM_DENIED", UNAVAILABLE)
    said = [ln for ln in res.log.splitlines() if "exempt_group wheel-nowhere does not exist" in ln]
    assert len(said) == 1, res.log


def test_root_is_exempt_unless_said_otherwise(pam, nss):
    """issue 11 finding 3: root was never exempt. exempt_root (on by
    default, by uid 0) lets root through with Redis down and fail=closed;
    exempt_root=no checks root like anyone."""
    down = "redis://127.0.0.1:%d" % helpers.closed_port()
    svc = pam.stacked("r", "pool=technicians", "fail=closed", "timeout=300", url=down)
    res = pam.run(svc, "root", "acct_mgmt", "open_session", "close_session", nss=nss)
    expect(res, "PAM_SUCCESS")
    assert "exempt as root, no seat taken" in res.log, res.log
    svc2 = pam.stacked("r2", "pool=technicians", "fail=closed", "timeout=300",
                       "exempt_root=no", url=down)
    expect(pam.run(svc2, "root", "acct_mgmt", nss=nss), "PAM_PERM_DENIED", UNAVAILABLE)


@pytest.mark.parametrize("broken", ["timeout = 500ms", "fail = sometimes", "bogus"])
def test_exempt_users_pass_a_broken_config(pam, nss, tmp_path, broken):
    """issue 11 finding 3: a typo in the config denied exempt admins and root
    alike, even with fail=open. Now the exemptions that could be read hold
    (root's by default, exempt_group from the good lines), and everyone
    else is denied (fail closed) with the error logged."""
    conf = tmp_path / "broken.conf"
    conf.write_text("pool = technicians\n%s\nexempt_group = sudo\nfail = open\n" % broken)
    conf.chmod(0o600)
    svc = pam.stacked("b", "conf=%s" % conf, url=False)
    for user in ("root", "boss"):
        res = pam.run(svc, user, "acct_mgmt", "open_session", "close_session", nss=nss)
        expect(res, "PAM_SUCCESS")
        assert "(the configuration is broken: see above)" in res.log, res.log
        assert ":2: invalid setting" in res.log, res.log
    res = pam.run(svc, "carol", "acct_mgmt", nss=nss)
    expect(res, "PAM_SERVICE_ERR")
    assert "bad configuration; denying carol (fail closed)" in res.log, res.log


def test_insecure_config_is_refused(pam, seats, nss, tmp_path):
    """issue 11 finding 4: a user-owned 0666 config with fail=open was
    honoured. Now a config file writable by group or others, not owned by
    root, or in a directory others can write, is refused as a whole (its
    exempt_group and fail=open included): a config error, logged."""
    down = "redis://127.0.0.1:%d" % helpers.closed_port()
    conf = tmp_path / "seatgate.conf"
    conf.write_text("pool = technicians\nredis = %s\nfail = open\nexempt_group = agents\n"
                    % down)
    for mode in (0o666, 0o664, 0o646):
        conf.chmod(mode)
        svc = pam.stacked("i", "conf=%s" % conf, url=False)
        res = pam.run(svc, "carol", "acct_mgmt", "open_session", nss=nss)
        expect(res, "PAM_SERVICE_ERR")
        assert "refusing it" in res.log and "writable by" in res.log, res.log
    if os.geteuid() == 0:
        conf.chmod(0o600)
        os.chown(str(conf), 4242, 4242)
        res = pam.run(svc, "carol", "acct_mgmt", nss=nss)
        expect(res, "PAM_SERVICE_ERR")
        assert "owned by uid 4242, not root" in res.log, res.log
        os.chown(str(conf), 0, 0)
    # 0600, root's: honoured (fail=open lets carol in with Redis down)
    conf.chmod(0o600)
    expect(pam.run(svc, "carol", "acct_mgmt", nss=nss), "PAM_SUCCESS")


def test_pam_silent_suppresses_the_message(pam, seats):
    """issue 11 finding 6: PAM_SILENT was ignored. With it the user sees
    nothing (the denial is still logged and still a denial)."""
    svc = pam.service("s", "pool=namedonly")
    loud = pam.run(svc, "carol", "acct_mgmt")
    expect(loud, "PAM_PERM_DENIED", "pool namedonly")
    quiet = pam.run(svc, "carol", "acct_mgmt(PAM_SILENT)")
    expect(quiet, "PAM_PERM_DENIED")
    assert "namedonly" not in _user_lines(quiet.err), quiet.err
    assert "denied_unassigned" in quiet.log, quiet.log
    down = pam.service("d", "pool=technicians", "timeout=200",
                       url="redis://127.0.0.1:%d" % helpers.closed_port())
    res = pam.run(down, "carol", "open_session(PAM_SILENT)")
    expect(res, "PAM_SESSION_ERR")
    assert UNAVAILABLE not in _user_lines(res.err), res.err


def test_exempt_group_takes_no_seat(pam, seats, seatctl_json, nss):
    """An exempt user bypasses the check entirely: even a disabled one gets
    in, and no seat or session is recorded."""
    seats("user", "set", "boss", "--disabled", check=0)
    svc = pam.stacked("ex", "pool=technicians", "exempt_group=sudo")
    expect(pam.run(svc, "boss", "acct_mgmt", "open_session", nss=nss), "PAM_SUCCESS")
    assert sessions(seatctl_json, "technicians") == []
    assert in_use(seatctl_json, "technicians") == 0
    # without the exemption the same user is denied
    svc2 = pam.service("noex", "pool=technicians")
    expect(pam.run(svc2, "boss", "acct_mgmt", nss=nss), "PAM_PERM_DENIED",
           "your account is disabled for pool technicians")


# ---- sessions, reap --------------------------------------------------------------

def test_session_open_close_accounting(pam, seats, seatctl_json, rdb):
    """open takes the seat (audited with host and pid), close in the same
    transaction frees it."""
    svc = pam.service("s", "pool=technicians", "debug")
    p = pam.run(svc, "carol", "acct_mgmt", "open_session", "close_session", wait=False)
    out, err = p.communicate(timeout=30)
    assert p.returncode == 0, err
    assert in_use(seatctl_json, "technicians") == 0
    assert sessions(seatctl_json, "technicians") == []
    ev = [(e["ev"], e["via"], e["result"], e["reason"]) for e in
          helpers.audit_entries(rdb, "technicians") if e["via"] == "pam"]
    assert ev == [("grant", "pam", "granted_floating", "floating_seat"),
                  ("release", "pam", "released", "seat_released")], ev
    grant = [e for e in helpers.audit_entries(rdb, "technicians") if e["ev"] == "grant"][0]
    assert grant["host"] == os.uname().nodename
    assert grant["pid"] == str(p.pid)
    # the session id names the host (machine id) and the process with its start time
    assert re.fullmatch(r"pam-[0-9a-f]{32}-%d-\d+" % p.pid, grant["session"]), grant["session"]


def test_reap_dead_session(pam, seats, seatctl_json):
    """Two logins whose processes died without close_session: sessions --json
    shows host and pid; seatctl reap frees them and the seat."""
    svc = pam.service("s", "pool=technicians")
    pids = []
    for _ in range(2):
        p = pam.run(svc, "carol", "open_session", wait=False)
        out, err = p.communicate(timeout=30)
        assert p.returncode == 0, err
        pids.append(p.pid)
    host = os.uname().nodename
    got = sorted((s["user"], s["via"], s["host"], s["pid"])
                 for s in sessions(seatctl_json, "technicians"))
    assert got == sorted(("carol", "pam", host, pid) for pid in pids)
    assert in_use(seatctl_json, "technicians") == 1  # two sessions, one seat
    res = seatctl_json("reap", check=0)
    assert sorted(x["pid"] for x in res.out["reaped"]) == sorted(pids)
    assert sessions(seatctl_json, "technicians") == []
    assert in_use(seatctl_json, "technicians") == 0
    assert seatctl_json("reap", check=0).out["reaped"] == []


def _in_container(pam, tmp_path, name, machine_id, svc, user, *ops):
    """pamtester as pid 1 of new pid, UTS and mount namespaces, with a
    machine id and host name of its own: a container on this host."""
    mid = tmp_path / ("machine-id-" + name)
    mid.write_text(machine_id + "\n")
    env = pam.env()
    env["SG_PRELOAD"] = env.pop("LD_PRELOAD")
    script = ('hostname "$1" && mount --bind "$2" /etc/machine-id && shift 2 && '
              'exec env LD_PRELOAD="$SG_PRELOAD" "$@"')
    argv = ["unshare", "--pid", "--fork", "--uts", "--mount", "--mount-proc", "--",
            "sh", "-c", script, "sh", name, str(mid), PAMTESTER, "-v", svc, user] + list(ops)
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                       timeout=60)
    assert p.returncode == 0, p.stderr.decode("utf-8", "replace")


def test_two_hosts_with_the_same_pid_keep_their_own_sessions(pam, seats, seatctl_json, tmp_path):
    """issue 11 finding 5: session ids were pam-<pid>, so host B's logout of
    its pid 1 (a container) released host A's session of pid 1. Now the id
    carries the host's machine id and the process start time."""
    if os.geteuid() != 0 or not shutil.which("unshare"):
        pytest.skip("needs root for pid, UTS and mount namespaces")
    svc = pam.service("c", "pool=technicians")
    a, b = "a" * 32, "b" * 32
    _in_container(pam, tmp_path, "hosta", a, svc, "carol", "open_session")
    got = sessions(seatctl_json, "technicians")
    assert [(x["user"], x["pid"], x["host"]) for x in got] == [("carol", 1, "hosta")], got
    assert got[0]["session"].startswith("pam-%s-1-" % a), got
    # host B: the same user, also pid 1, logs in and out
    _in_container(pam, tmp_path, "hostb", b, svc, "carol", "open_session", "close_session")
    got = sessions(seatctl_json, "technicians")
    assert [(x["user"], x["pid"], x["host"]) for x in got] == [("carol", 1, "hosta")], got
    assert in_use(seatctl_json, "technicians") == 1


def proc_start(pid):
    """Field 22 of /proc/PID/stat: the process's start time in clock ticks."""
    with open("/proc/%d/stat" % pid) as f:
        return int(f.read().rsplit(")", 1)[1].split()[19])


def host_index(rdb):
    with open("/etc/machine-id") as f:
        return "sg:host:" + f.read().strip()


def pretend_process(rdb, user, pid):
    """Make the host index say that user's session belongs to process pid
    (with its real start time), as if the login shell were that process."""
    key = host_index(rdb)
    field = [f for f in rdb.hkeys(key) if f.split("\t")[1] == user][0]
    kv = dict(x.split("=", 1) for x in rdb.hget(key, field).split("\t"))
    kv["pid"], kv["pstart"] = str(pid), str(proc_start(pid))
    value = "\t".join("%s=%s" % (k, v) for k, v in kv.items())
    rdb.hset(key, field, value)
    return value


def test_reap_spares_live_process(pam, seats, seatctl_json, rdb):
    """A session whose process still runs on this host is not reaped."""
    svc = pam.service("s", "pool=technicians")
    for user in ("carol", "dave"):
        p = pam.run(svc, user, "open_session", wait=False)
        p.communicate(timeout=30)
        assert p.returncode == 0
    dead = {s["user"]: s["pid"] for s in sessions(seatctl_json, "technicians")}["dave"]
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        # carol's login process is, say, a shell that is still running
        pretend_process(rdb, "carol", sleeper.pid)
        res = seatctl_json("reap", check=0)
        assert [(x["user"], x["pid"]) for x in res.out["reaped"]] == [("dave", dead)]
        assert [s["user"] for s in sessions(seatctl_json, "technicians")] == ["carol"]
        assert in_use(seatctl_json, "technicians") == 1
    finally:
        sleeper.kill()
        sleeper.wait()
    res = seatctl_json("reap", check=0)
    assert [x["user"] for x in res.out["reaped"]] == ["carol"]
    assert in_use(seatctl_json, "technicians") == 0


def test_reap_frees_a_session_whose_pid_was_reused(pam, seats, seatctl_json, rdb):
    """issue 11 finding 5: reap trusted kill(pid, 0), so a pid reused by
    another process kept a dead login's seat for ever. The process start
    time recorded at open tells them apart."""
    svc = pam.service("s", "pool=technicians")
    p = pam.run(svc, "carol", "open_session", wait=False)
    p.communicate(timeout=30)
    assert p.returncode == 0
    time.sleep(0.05)                         # a later start, in clock ticks
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        # the login's pid now belongs to another, later process
        key = host_index(rdb)
        field = [f for f in rdb.hkeys(key) if f.split("\t")[1] == "carol"][0]
        kv = dict(x.split("=", 1) for x in rdb.hget(key, field).split("\t"))
        assert int(kv["pstart"]) != proc_start(sleeper.pid)
        kv["pid"] = str(sleeper.pid)
        rdb.hset(key, field, "\t".join("%s=%s" % x for x in kv.items()))
        res = seatctl_json("reap", check=0)
        assert [(x["user"], x["pid"]) for x in res.out["reaped"]] == [("carol", sleeper.pid)]
        assert sessions(seatctl_json, "technicians") == []
        assert in_use(seatctl_json, "technicians") == 0
    finally:
        sleeper.kill()
        sleeper.wait()


def test_a_tab_in_rhost_does_not_stop_reap(pam, seats, seatctl_json):
    """issue 11 finding 5: one record with a tab in PAM_RHOST stopped
    seatctl reap for every other session. The remote host is made printable
    before it is stored (and said so in the log), and reap frees both."""
    svc = pam.service("s", "pool=technicians")
    res = pam.run(svc, "carol", "open_session", items=["rhost=evil\thost\x1b[31m"])
    expect(res, "PAM_SUCCESS")
    assert "remote host name is not printable; recorded as evil?host?[31m" in res.log, res.log
    expect(pam.run(svc, "dave", "open_session", items=["rhost=10.0.0.7"]), "PAM_SUCCESS")
    got = {x["user"]: x.get("client") for x in sessions(seatctl_json, "technicians")}
    assert got == {"carol": "evil?host?[31m", "dave": "10.0.0.7"}, got
    res = seatctl_json("reap", check=0)
    assert sorted(x["user"] for x in res.out["reaped"]) == ["carol", "dave"]
    assert in_use(seatctl_json, "technicians") == 0


def test_reap_renews_live_session_past_half_its_lease(pam, seats, seatctl_json, rdb):
    """A login longer than its lease keeps its seat while reap runs: reap
    renews a live session once half of its lease has passed, and leaves a
    fresh one alone."""
    svc = pam.service("s", "pool=technicians", "lease=2s")
    p = pam.run(svc, "carol", "open_session", wait=False)
    p.communicate(timeout=30)
    assert p.returncode == 0
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        entry = pretend_process(rdb, "carol", sleeper.pid)
        assert "\tlease=2\t" in entry  # the lease length travels with the session
        first = sessions(seatctl_json, "technicians")[0]["expires_ms"]
        res = seatctl_json("reap", check=0)          # fresh: nothing to do
        assert res.out["renewed"] == [] and res.out["reaped"] == []
        time.sleep(1.2)
        res = seatctl_json("reap", check=0)          # past half: renewed
        assert [x["user"] for x in res.out["renewed"]] == ["carol"]
        again = sessions(seatctl_json, "technicians")[0]["expires_ms"]
        assert again >= first + 1000
        time.sleep(1.2)                              # the first lease is over now
        assert in_use(seatctl_json, "technicians") == 1
    finally:
        sleeper.kill()
        sleeper.wait()
    time.sleep(2.1)                                  # no reap: the lease runs out
    assert in_use(seatctl_json, "technicians") == 0


# ---- valgrind -----------------------------------------------------------------------

VALGRIND_RUNS = [
    # (id, service args, user, ops, pamtester exit)
    ("granted", ["pool=technicians", "debug"], "carol",
     ["acct_mgmt", "open_session", "close_session"], 0),
    ("named", ["pool=technicians"], "alice", ["acct_mgmt", "open_session", "close_session"], 0),
    ("denied", ["pool=technicians"], "eve", ["acct_mgmt"], 1),
    ("denied_session", ["pool=technicians"], "dan", ["open_session"], 1),
    ("backend_down", ["pool=technicians", "redis={down}", "timeout=300"], "carol",
     ["acct_mgmt"], 1),
    ("backend_down_open", ["pool=technicians", "redis={down}", "timeout=300", "fail=open"],
     "carol", ["acct_mgmt", "open_session", "close_session"], 0),
    ("bad_args", ["pool=technicians", "fail=maybe"], "carol", ["acct_mgmt"], 1),
    ("bad_conf", ["conf={bad}"], "carol", ["open_session"], 1),
    ("session_open_only", ["pool=technicians"], "dave", ["open_session"], 0),
]


@pytest.mark.slow
@pytest.mark.parametrize("case", VALGRIND_RUNS, ids=[v[0] for v in VALGRIND_RUNS])
def test_valgrind_clean(pam, seats, case):
    if SANITIZE:
        pytest.skip("valgrind and ASan do not mix; run without SANITIZE=1")
    if not os.access(VALGRIND, os.X_OK):
        pytest.fail("valgrind missing (make deps)")
    _, args, user, ops, want = case
    bad = os.path.join(pam.root, "bad.conf")
    with open(bad, "w") as f:
        f.write("pool = technicians\nnot a setting\n")
    fill = {"down": "redis://127.0.0.1:%d" % helpers.closed_port(), "bad": bad}
    svc = pam.service("vg", *[a.format(**fill) for a in args])
    vg = [VALGRIND, "--leak-check=full", "--errors-for-leak-kinds=definite,indirect",
          "--error-exitcode=99", "--num-callers=30",
          # the module is dlclose()d at pam_end: keep its symbols for the report
          "--keep-debuginfo=yes"]
    if os.path.exists(VALGRIND_SUPP):
        vg.append("--suppressions=%s" % VALGRIND_SUPP)
    res = pam.run(svc, user, *ops, valgrind=vg, timeout=180)
    assert "HEAP SUMMARY" in res.err or "All heap blocks were freed" in res.err, res.err
    assert res.rc != 99, "valgrind found errors:\n%s" % res.err
    assert res.rc == want, res.err
