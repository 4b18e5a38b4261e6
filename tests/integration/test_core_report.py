"""seatctl report (issue 12): usage recorded by the decisions themselves,
replayed over a month through the real decision path on the pool's test
clock (seatctl pool set --test-clock), and every figure of the JSON report
checked against numbers worked out by hand below."""
import time

from helpers import EX_OK, audit_entries

DAY = 86400000
NOV1 = 1793491200000  # 2026-11-01T00:00:00Z


def at(day, hour, minute=0):
    """ms of 2026-11-<day> hour:minute UTC"""
    return NOV1 + (day - 1) * DAY + hour * 3600000 + minute * 60000


class Month:
    """Drives one pool's clock and sessions, as PAM logins would."""

    def __init__(self, seatctl, pool):
        self.seatctl, self.pool = seatctl, pool

    def clock(self, ms):
        self.seatctl("pool", "set", self.pool, "--test-clock", "@%d" % ms, check=EX_OK)

    def login(self, user, session, **kw):
        args = ["acquire", self.pool, user, "--session", session]
        for k, v in kw.items():
            args += ["--" + k.replace("_", "-"), v]
        return self.seatctl(*args)

    def logout(self, user, session):
        self.seatctl("release", self.pool, user, "--session", session, check=EX_OK)


def test_a_month_of_usage_and_the_cheapest_mix(seatctl, seatctl_json):
    """heavy1 and heavy2 work 09-17 every day; mid1..mid3 09-12 on even days;
    light1 and light2 13-15 on days divisible by 5; idle holds a named seat
    and never comes; gone (disabled) is refused once, on the 10th at 10:00.
    One-hour slots, November (720 slots), budget 1 % (7 slots), prices 1 per
    named and 1.5 per floating seat.

    Demand with k named seats for the k most active (heavy1, heavy2 240
    slots each, the mids 45, the lights 12; ties by name):
      k=0: 5 in 45 slots (09-12 even days), 4 in 12 (13-15, days%5), else 2
           -> F=5, cost 7.5
      k=1: F=4 -> 7;  k=2: mids 3 in 45 -> F=3 -> 6.5
      k=3: mid2+mid3 2 in 45, lights 2 in 12 -> F=2 -> 6   <- cheapest
      k=4: lights 2 in 12 > 7 -> F=2 -> 7;  k=5: 8;  k=6: F=1 -> 7.5;  k=7: 7
    Today: heavy1 and idle named, 5 floating: cost 2 + 7.5 = 9.5, nothing
    denied (at most 4 floating wanted at once)."""
    P = "rpt"
    seatctl("pool", "set", P, "--named", "2", "--floating", "5", "--idle-timeout", "12h",
            "--usage-bucket", "1h", "--test-clock", "@%d" % at(1, 0), check=EX_OK)
    seatctl("assign", P, "heavy1", "idle", check=EX_OK)
    seatctl("user", "set", "gone", "--disabled", check=EX_OK)
    m = Month(seatctl, P)
    for day in range(1, 31):
        m.clock(at(day, 9))
        for u in ("heavy1", "heavy2") + (("mid1", "mid2", "mid3") if day % 2 == 0 else ()):
            assert m.login(u, "d%d" % day).rc == 0
        if day == 10:
            m.clock(at(day, 10))
            assert m.login("gone", "x").rc == 1
        if day % 2 == 0:
            m.clock(at(day, 12))
            for u in ("mid1", "mid2", "mid3"):
                m.logout(u, "d%d" % day)
        if day % 5 == 0:
            m.clock(at(day, 13))
            for u in ("light1", "light2"):
                assert m.login(u, "d%d" % day).rc == 0
            m.clock(at(day, 15))
            for u in ("light1", "light2"):
                m.logout(u, "d%d" % day)
        m.clock(at(day, 17))
        for u in ("heavy1", "heavy2"):
            m.logout(u, "d%d" % day)
    m.clock(at(31, 0))   # December 1st, 00:00
    res = seatctl_json("report", "--pool", P, "--since", "2026-11-01", "--until", "2026-12-01",
                       "--price-named", "1", "--price-floating", "1.5", "--denial-budget", "1",
                       check=EX_OK)
    [r] = res.out["pools"]
    assert r["pool"] == P and r["bucket_seconds"] == 3600
    assert r["since"] == "2026-11-01T00:00:00.000Z" and r["until"] == "2026-12-01T00:00:00.000Z"
    assert r["users_seen"] == 7          # heavy x2, mid x3, light x2 (idle never, gone refused)
    assert r["today"] == {"named": 2, "assigned": 2, "floating": 5, "overdraft_pct": 0,
                          "cost": 9.5, "denied_share": 0.0}
    rec = r["recommendation"]
    assert (rec["named"], rec["floating"], rec["cost"], rec["denied_share"]) == (3, 2, 6.0, 0.0)
    assert "3 people who worked the most" in rec["reasoning"]
    assert "a saving of 3.5" in rec["reasoning"]
    days = {d["day"]: d for d in r["days"]}
    assert len(days) == 30
    # every day, from the schedule: floating seats in use per hour slot are
    # heavy2 09-17, + 3 mids 09-12 on even days, + 2 lights 13-15 on days%5
    for day in range(1, 31):
        slots = [0] * 24
        for h in range(9, 17):
            slots[h] += 1
        if day % 2 == 0:
            for h in range(9, 12):
                slots[h] += 3
        if day % 5 == 0:
            for h in range(13, 15):
                slots[h] += 2
        top = sorted(slots, reverse=True)
        users = 2 + (3 if day % 2 == 0 else 0) + (2 if day % 5 == 0 else 0)
        want = {"day": "2026-11-%02d" % day, "peak": top[0], "p95": top[1],
                "mean": round(sum(slots) / 24, 6), "users": users, "named_users": 1,
                "denials": 1 if day == 10 else 0, "overdraft": 0, "free_requests": 0}
        got = dict(days[want["day"]], mean=round(days[want["day"]]["mean"], 6))
        assert got == want, (got, want)
    # the floating seats in use (heavy1 holds a named seat): see the docstring
    assert days["2026-11-01"] | {} == dict(days["2026-11-01"], peak=1, p95=1, users=2,
                                           named_users=1, denials=0)
    assert round(days["2026-11-01"]["mean"], 6) == round(8 / 24, 6)
    assert (days["2026-11-02"]["peak"], days["2026-11-02"]["p95"],
            days["2026-11-02"]["users"]) == (4, 4, 5)
    assert round(days["2026-11-02"]["mean"], 6) == round(17 / 24, 6)
    assert (days["2026-11-05"]["peak"], days["2026-11-05"]["p95"]) == (3, 3)
    assert round(days["2026-11-05"]["mean"], 6) == 0.5
    assert round(days["2026-11-10"]["mean"], 6) == round(21 / 24, 6)
    assert days["2026-11-10"]["denials"] == 1 and days["2026-11-10"]["users"] == 7
    assert r["peak_floating"] == 4
    assert r["denials"]["total"] == 1
    assert r["denials"]["by_reason"] == {"user_disabled": 1}
    assert r["denials"]["by_hour_utc"] == [0] * 10 + [1] + [0] * 13
    assert r["overdraft_days"] == 0
    # idle's named seat: never used
    assert r["named_unused_30d"] == [{"user": "idle", "last_used": None}]
    assert r["multiplexing"] == []
    # the text and the HTML say the same
    txt = seatctl("report", "--pool", P, "--since", "2026-11-01", "--until", "2026-12-01",
                  "--price-named", "1", "--price-floating", "1.5", check=EX_OK).out
    assert "recommended                       3         2" in txt
    assert "idle (last never)" in txt


def test_a_shortage_counts_who_was_refused(seatctl, seatctl_json):
    """Demand the seats could not serve is recorded too: a user refused for
    want of a seat counts in the slot of the refusal, so the report sees
    more demand than the seats that were taken."""
    P = "short"
    seatctl("pool", "set", P, "--floating", "1", "--idle-timeout", "12h", "--usage-bucket", "1h",
            "--test-clock", "@%d" % at(3, 9), check=EX_OK)
    m = Month(seatctl, P)
    assert m.login("a", "s").rc == 0
    assert m.login("b", "s").rc == 1          # all_floating_in_use
    m.clock(at(3, 10))
    m.logout("a", "s")
    m.clock(at(4, 0))
    r = seatctl_json("report", "--pool", P, "--since", "2026-11-03", "--until", "2026-11-04",
                     "--denial-budget", "0", check=EX_OK).out["pools"][0]
    assert r["users_seen"] == 2
    assert r["denials"]["by_reason"] == {"all_floating_in_use": 1}
    # with 1 floating seat the 09:00 slot (a and b) was short: 1 of 24 slots
    assert round(r["today"]["denied_share"], 6) == round(1 / 24, 6)
    # no denied time allowed: two seats (two floating cost 4, two named 2)
    assert (r["recommendation"]["named"], r["recommendation"]["floating"]) == (2, 0)
    # a range from inside one slot to inside another (08:45-10:15) touches
    # three slots (08, 09, 10), and the share is of those: 1/3 (the count
    # of slots was the range's length rounded up, 2, and gave 1/2)
    r = seatctl_json("report", "--pool", P, "--since", "2026-11-03T08:45:00Z",
                     "--until", "2026-11-03T10:15:00Z", "--denial-budget", "0",
                     check=EX_OK).out["pools"][0]
    assert round(r["today"]["denied_share"], 6) == round(1 / 3, 6), r["today"]


def test_multiplexing_findings(seatctl, seatctl_json, rdb):
    """A service account acting for more people in a day than the pool's
    --mux-limit (here across two windows, so no request was refused), or
    without an on-behalf-of id, is a finding that lists the people."""
    P = "mux"
    seatctl("pool", "set", P, "--floating", "10", "--mux-limit", "2", "--mux-window", "1h",
            "--test-clock", "@%d" % at(20, 10), check=EX_OK)
    seatctl("user", "set", "bridge", "--service-account", check=EX_OK)
    m = Month(seatctl, P)
    for h in ("h1", "h2"):
        assert m.login("bridge", "w1", on_behalf_of=h).rc == 0
    m.clock(at(20, 12))
    for h in ("h3", "h4"):
        assert m.login("bridge", "w2", on_behalf_of=h).rc == 0
    assert m.login("bridge", "w3").rc == 1    # no on-behalf-of id
    m.clock(at(21, 0))
    r = seatctl_json("report", "--pool", P, "--since", "2026-11-20", "--until", "2026-11-21",
                     check=EX_OK).out["pools"][0]
    assert r["multiplexing"] == [{"day": "2026-11-20", "service_account": "bridge", "humans": 4,
                                  "people": ["h1", "h2", "h3", "h4"], "over_limit": True,
                                  "without_on_behalf_of": 1}]
    assert r["denials"]["by_reason"] == {"service_account_needs_on_behalf_of": 1}
    # the finding is in the audit log too, once, when it happened (h3)
    found = [e for e in audit_entries(rdb, P) if e["ev"] == "mux_finding"]
    assert [(e["user"], e["obo"], e["reason"], e["count"]) for e in found] == [
        ("bridge", "h3", "more_people_in_a_day_than_mux_limit", "3")], found
    txt = seatctl("report", "--pool", P, "--since", "2026-11-20", "--until", "2026-11-21",
                  check=EX_OK).out
    assert "bridge acted for 4 people (limit 2), 1 requests without an on-behalf-of id: " \
           "h1, h2, h3, h4" in txt


def test_usage_records_expire_with_their_retention(seatctl, rdb):
    """Each day's records live --usage-retention after the day; Redis
    expires them (on real time: a test clock in the past makes them old)."""
    now = int(time.time() * 1000)
    two_days_ago = now - 2 * DAY
    for pool, keep in (("short", "1d"), ("long", "400d")):
        seatctl("pool", "set", pool, "--floating", "3", "--usage-retention", keep,
                "--test-clock", "@%d" % two_days_ago, check=EX_OK)
        seatctl("acquire", pool, "u", "--session", "s", check=EX_OK)
        seatctl("release", pool, "u", "--session", "s", check=EX_OK)
    assert rdb.keys("sg:{short}:u[ac]:*") == []
    kept = sorted(rdb.keys("sg:{long}:u[ac]:*"))
    assert kept == ["sg:{long}:ua:%d" % (two_days_ago // DAY), "sg:{long}:uc:%d" % (two_days_ago // DAY)] or \
        kept == ["sg:{long}:ua:%d" % (two_days_ago // DAY)], kept
    for k in kept:
        ttl = rdb.pttl(k)
        assert 397 * DAY < ttl <= 400 * DAY, (k, ttl)


def test_report_input_errors(seatctl):
    seatctl("pool", "set", "p", "--floating", "1", check=EX_OK)
    for args, why in ((["--format", "pdf"], "--format"), (["--denial-budget", "100"], "percent"),
                      (["--price-named", "-1"], "--price-named"),
                      (["--since", "2026-11-10", "--until", "2026-11-01"], "before"),
                      (["--pool", "no such"], "--pool")):
        res = seatctl("report", *args)
        assert res.rc == 2 and why in res.err, (args, res)
    res = seatctl("pool", "set", "p", "--usage-bucket", "7m")
    assert res.rc == 2 and "divide a day" in res.err
