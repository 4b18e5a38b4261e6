"""Reservation, cap, include/exclude, features, disabled users, service
accounts and multiplexing."""
import pytest

from helpers import EX_DENIED, EX_OK, audit_entries, leases


def decide(seatctl_json, *args):
    rc, d, _ = seatctl_json(*args)
    return rc, d["result"], d["reason"]


def test_free_tier_not_in_seatctl():
    pytest.skip("free tier (granted_free) is decided by the nginx/PAM configuration, "
                "not by seatctl; covered by the nginx and PAM suites")


# ---- reservation and cap ------------------------------------------------------

def test_reservation_keeps_seats_for_group(seatctl, seatctl_json, rdb):
    seatctl("user", "set", "o1", "--groups", "ops", check=EX_OK)  # before the pool exists
    seatctl("pool", "set", "p", "--floating", "3", "--reserve", "ops=2", check=EX_OK)
    seatctl("user", "set", "o2", "--groups", "staff,ops", check=EX_OK)  # after
    seatctl("user", "set", "o3", "--groups", "ops", check=EX_OK)
    assert decide(seatctl_json, "acquire", "p", "x1") == (EX_OK, "granted_floating",
                                                          "floating_seat")
    # 1 in use + 2 kept for ops: x2 may not take them
    assert decide(seatctl_json, "acquire", "p", "x2") == (EX_DENIED, "denied_exhausted",
                                                          "reserved_for_group")
    assert decide(seatctl_json, "check", "p", "x2")[2] == "reserved_for_group"
    # group members still get them
    assert decide(seatctl_json, "acquire", "p", "o1")[:2] == (EX_OK, "granted_floating")
    assert decide(seatctl_json, "acquire", "p", "x2")[2] == "reserved_for_group"
    assert decide(seatctl_json, "acquire", "p", "o2")[:2] == (EX_OK, "granted_floating")
    assert decide(seatctl_json, "acquire", "p", "o3") == (EX_DENIED, "denied_exhausted",
                                                          "all_floating_in_use")
    assert set(leases(rdb, "p")) == {"x1", "o1", "o2"}


def test_reservation_met_frees_the_rest(seatctl, seatctl_json):
    seatctl("pool", "set", "p", "--floating", "3", "--reserve", "ops=1", check=EX_OK)
    seatctl("user", "set", "o1", "--groups", "ops", check=EX_OK)
    seatctl("acquire", "p", "o1", check=EX_OK)
    # ops holds its one reserved seat: the other two are open to all
    assert decide(seatctl_json, "acquire", "p", "x1")[0] == EX_OK
    assert decide(seatctl_json, "acquire", "p", "x2")[0] == EX_OK
    assert decide(seatctl_json, "acquire", "p", "x3")[2] == "all_floating_in_use"


def test_cap_limits_group(seatctl, seatctl_json, rdb):
    seatctl("pool", "set", "p", "--floating", "4", "--cap", "contractors=1", check=EX_OK)
    seatctl("user", "set", "c1", "--groups", "contractors", check=EX_OK)
    seatctl("user", "set", "c2", "--groups", "contractors", check=EX_OK)
    assert decide(seatctl_json, "acquire", "p", "c1")[:2] == (EX_OK, "granted_floating")
    assert decide(seatctl_json, "acquire", "p", "c2") == (EX_DENIED, "denied_exhausted",
                                                          "group_cap_reached")
    # the others are not affected
    assert decide(seatctl_json, "acquire", "p", "s1")[0] == EX_OK
    assert decide(seatctl_json, "acquire", "p", "s2")[0] == EX_OK
    assert set(leases(rdb, "p")) == {"c1", "s1", "s2"}
    # when c1 leaves, c2 may come in
    seatctl("release", "p", "c1", check=EX_OK)
    assert decide(seatctl_json, "acquire", "p", "c2")[0] == EX_OK


# ---- include / exclude ----------------------------------------------------------

def test_include_groups(seatctl, seatctl_json):
    seatctl("pool", "set", "p", "--floating", "5", "--include", "staff", "--include", "ops",
            check=EX_OK)
    seatctl("user", "set", "s1", "--groups", "staff", check=EX_OK)
    seatctl("user", "set", "o1", "--groups", "x,ops", check=EX_OK)
    seatctl("user", "set", "e1", "--groups", "externals", check=EX_OK)
    assert decide(seatctl_json, "acquire", "p", "s1")[0] == EX_OK
    assert decide(seatctl_json, "acquire", "p", "o1")[0] == EX_OK
    assert decide(seatctl_json, "acquire", "p", "e1") == (EX_DENIED, "denied_excluded",
                                                          "not_in_included_group")
    assert decide(seatctl_json, "acquire", "p", "nogroups")[1] == "denied_excluded"
    # group names are matched whole, not as substrings
    seatctl("user", "set", "s2", "--groups", "staffing", check=EX_OK)
    assert decide(seatctl_json, "acquire", "p", "s2")[1] == "denied_excluded"


def test_exclude_groups(seatctl, seatctl_json, rdb):
    seatctl("pool", "set", "p", "--named", "1", "--floating", "5", "--exclude", "interns",
            check=EX_OK)
    seatctl("user", "set", "i1", "--groups", "staff,interns", check=EX_OK)
    seatctl("assign", "p", "i2", check=EX_OK)
    seatctl("user", "set", "i2", "--groups", "interns", check=EX_OK)
    assert decide(seatctl_json, "acquire", "p", "i1") == (EX_DENIED, "denied_excluded",
                                                          "excluded_group")
    # exclusion wins over a named seat
    assert decide(seatctl_json, "acquire", "p", "i2")[1] == "denied_excluded"
    assert decide(seatctl_json, "acquire", "p", "someone")[0] == EX_OK
    assert "i1" not in leases(rdb, "p")


def test_exclude_wins_over_include(seatctl, seatctl_json):
    seatctl("pool", "set", "p", "--floating", "5", "--include", "staff", "--exclude", "interns",
            check=EX_OK)
    seatctl("user", "set", "u", "--groups", "staff,interns", check=EX_OK)
    assert decide(seatctl_json, "acquire", "p", "u")[2] == "excluded_group"


def test_excluded_holder_loses_seat_on_next_use(seatctl, seatctl_json, rdb):
    seatctl("pool", "set", "p", "--floating", "1", check=EX_OK)
    seatctl("acquire", "p", "u", check=EX_OK)
    seatctl("user", "set", "u", "--groups", "interns", check=EX_OK)
    seatctl("pool", "set", "p", "--exclude", "interns", check=EX_OK)
    assert decide(seatctl_json, "acquire", "p", "u")[1] == "denied_excluded"
    assert leases(rdb, "p") == {}
    assert decide(seatctl_json, "acquire", "p", "v")[0] == EX_OK


# ---- features ---------------------------------------------------------------------

def test_features(seatctl, seatctl_json):
    seatctl("pool", "set", "p", "--named", "1", "--floating", "2",
            "--features", "cmdb,change-advanced", check=EX_OK)
    seatctl("pool", "set", "basic", "--floating", "2", check=EX_OK)
    seatctl("assign", "p", "alice", check=EX_OK)
    assert decide(seatctl_json, "acquire", "p", "bob", "--feature", "cmdb")[:2] == (
        EX_OK, "granted_floating")
    assert decide(seatctl_json, "acquire", "p", "bob", "--feature", "change-advanced")[0] == EX_OK
    assert decide(seatctl_json, "acquire", "p", "carol", "--feature", "itom") == (
        EX_DENIED, "denied_feature", "feature_not_licensed")
    # a named seat does not bring a feature the pool lacks
    assert decide(seatctl_json, "check", "p", "alice", "--feature", "itom")[1] == "denied_feature"
    assert decide(seatctl_json, "check", "p", "alice", "--feature", "cmdb")[1] == "granted_named"
    # a pool without the feature
    assert decide(seatctl_json, "acquire", "basic", "bob", "--feature", "cmdb")[1] == \
        "denied_feature"
    assert decide(seatctl_json, "acquire", "basic", "bob")[0] == EX_OK
    # "cmdb" must not match a substring of another feature
    seatctl("pool", "set", "basic", "--features", "cmdb-lite", check=EX_OK)
    assert decide(seatctl_json, "check", "basic", "bob", "--feature", "cmdb")[1] == \
        "denied_feature"


# ---- disabled users ---------------------------------------------------------------

def test_disabled_user_denied(seatctl, seatctl_json):
    seatctl("pool", "set", "p", "--named", "1", "--floating", "2", check=EX_OK)
    seatctl("assign", "p", "alice", check=EX_OK)
    seatctl("user", "set", "alice", "--disabled", check=EX_OK)
    seatctl("user", "set", "bob", "--disabled", check=EX_OK)
    assert decide(seatctl_json, "acquire", "p", "alice") == (EX_DENIED, "denied_disabled",
                                                             "user_disabled")
    assert decide(seatctl_json, "acquire", "p", "bob")[1] == "denied_disabled"
    assert decide(seatctl_json, "check", "p", "bob")[1] == "denied_disabled"
    seatctl("user", "set", "alice", "--enabled", check=EX_OK)
    assert decide(seatctl_json, "acquire", "p", "alice")[1] == "granted_named"


def test_disabling_holder_frees_seat_at_once(seatctl, seatctl_json, rdb):
    seatctl("pool", "set", "p", "--floating", "1", check=EX_OK)
    seatctl("pool", "set", "other", "--floating", "1", check=EX_OK)
    seatctl("acquire", "p", "bob", "--session", "s1", check=EX_OK)
    seatctl("acquire", "other", "bob", check=EX_OK)
    assert seatctl("acquire", "p", "carol").rc == EX_DENIED
    seatctl("user", "set", "bob", "--disabled", check=EX_OK)
    # freed without any further request from bob, in every pool
    assert leases(rdb, "p") == {} and leases(rdb, "other") == {}
    assert seatctl_json("pool", "show", "p")[1]["sessions"] == 0
    revokes = [e for e in audit_entries(rdb, "p") if e["ev"] == "revoke"]
    assert revokes and revokes[-1]["user"] == "bob"
    assert revokes[-1]["result"] == "denied_disabled"
    assert decide(seatctl_json, "acquire", "p", "carol")[0] == EX_OK


def test_disabled_flag_reaches_pools_created_later(seatctl, seatctl_json):
    seatctl("user", "set", "bob", "--disabled", check=EX_OK)
    seatctl("pool", "set", "p", "--floating", "1", check=EX_OK)
    assert decide(seatctl_json, "acquire", "p", "bob")[1] == "denied_disabled"


# ---- service accounts ------------------------------------------------------------

def test_service_account_needs_on_behalf_of(seatctl, seatctl_json, rdb):
    seatctl("pool", "set", "p", "--named", "1", "--floating", "2", check=EX_OK)
    seatctl("user", "set", "hub", "--service-account", check=EX_OK)
    rc, d, _ = seatctl_json("acquire", "p", "hub")
    assert rc == EX_DENIED and d["result"] == "denied_unassigned"
    assert d["reason"] == "service_account_needs_on_behalf_of"
    # even with a named seat of its own
    seatctl("assign", "p", "hub", check=EX_OK)
    assert seatctl_json("acquire", "p", "hub")[0] == EX_DENIED
    assert leases(rdb, "p") == {}


def test_service_account_human_must_be_entitled(seatctl, seatctl_json, rdb):
    seatctl("pool", "set", "p", "--named", "1", "--floating", "0", check=EX_OK)
    seatctl("user", "set", "hub", "--service-account", check=EX_OK)
    seatctl("assign", "p", "alice", check=EX_OK)
    rc, d, _ = seatctl_json("acquire", "p", "hub", "--on-behalf-of", "alice", check=EX_OK)
    assert d["result"] == "granted_named"
    assert d["user"] == "hub" and d["effective_user"] == "alice"
    assert d["on_behalf_of"] == "alice"
    rc, d, _ = seatctl_json("acquire", "p", "hub", "--on-behalf-of", "bob")
    assert rc == EX_DENIED and d["result"] == "denied_unassigned"
    assert d["effective_user"] == "bob"
    # the human's own state counts: a disabled human is denied through the hub
    seatctl("user", "set", "alice", "--disabled", check=EX_OK)
    assert decide(seatctl_json, "acquire", "p", "hub", "--on-behalf-of", "alice")[1] == \
        "denied_disabled"


def test_service_account_floating_seat_is_the_humans(seatctl, seatctl_json, rdb):
    seatctl("pool", "set", "p", "--floating", "2", check=EX_OK)
    seatctl("user", "set", "hub", "--service-account", check=EX_OK)
    seatctl("acquire", "p", "hub", "--on-behalf-of", "alice", check=EX_OK)
    seatctl("acquire", "p", "hub", "--on-behalf-of", "bob", check=EX_OK)
    assert set(leases(rdb, "p")) == {"alice", "bob"}
    # the hub holds no seat of its own; the third human is refused
    assert decide(seatctl_json, "acquire", "p", "hub", "--on-behalf-of", "carol")[1] == \
        "denied_exhausted"
    # alice directly holds the same seat
    assert decide(seatctl_json, "acquire", "p", "alice")[2] == "holds_seat"


def test_non_service_user_cannot_act_for_others(seatctl, seatctl_json, rdb):
    seatctl("pool", "set", "p", "--named", "1", "--floating", "2", check=EX_OK)
    seatctl("assign", "p", "alice", check=EX_OK)
    rc, d, _ = seatctl_json("acquire", "p", "mallory", "--on-behalf-of", "alice")
    assert rc == EX_DENIED and d["result"] == "denied_unassigned"
    assert d["reason"] == "on_behalf_of_requires_service_account"
    assert leases(rdb, "p") == {}
    # a service account cannot act for another service account
    seatctl("user", "set", "hub", "--service-account", check=EX_OK)
    seatctl("user", "set", "bridge", "--service-account", check=EX_OK)
    assert decide(seatctl_json, "acquire", "p", "hub", "--on-behalf-of", "bridge")[0] == \
        EX_DENIED


def test_service_account_ids_in_audit(seatctl, rdb):
    seatctl("pool", "set", "p", "--floating", "1", check=EX_OK)
    seatctl("user", "set", "hub", "--service-account", check=EX_OK)
    seatctl("acquire", "p", "hub", "--on-behalf-of", "alice", check=EX_OK)
    seatctl("acquire", "p", "hub", "--on-behalf-of", "bob", check=EX_DENIED)
    ev = audit_entries(rdb, "p")
    grant = [e for e in ev if e["result"] == "granted_floating"]
    deny = [e for e in ev if e["result"] == "denied_exhausted"]
    assert grant and grant[-1]["user"] == "hub" and grant[-1]["obo"] == "alice"
    assert deny and deny[-1]["user"] == "hub" and deny[-1]["obo"] == "bob"
    assert grant[-1]["via"] == "cli"


def test_disabled_service_account(seatctl, seatctl_json):
    seatctl("pool", "set", "p", "--floating", "2", check=EX_OK)
    seatctl("user", "set", "hub", "--service-account", "--disabled", check=EX_OK)
    assert decide(seatctl_json, "acquire", "p", "hub", "--on-behalf-of", "alice")[1] == \
        "denied_disabled"


# ---- multiplexing -----------------------------------------------------------------

@pytest.mark.parametrize("limit", [1, 3])
def test_multiplexing_limit(seatctl, seatctl_json, rdb, limit):
    seatctl("pool", "set", "p", "--floating", "10", "--mux-limit", str(limit), check=EX_OK)
    seatctl("user", "set", "hub", "--service-account", check=EX_OK)
    humans = ["h%d" % i for i in range(limit)]
    for h in humans:
        assert decide(seatctl_json, "acquire", "p", "hub", "--on-behalf-of", h)[0] == EX_OK
    rc, res, reason = decide(seatctl_json, "acquire", "p", "hub", "--on-behalf-of", "extra")
    assert (rc, res) == (EX_DENIED, "denied_multiplexing")
    assert "extra" not in leases(rdb, "p")
    # humans already seen in the window still pass
    assert decide(seatctl_json, "acquire", "p", "hub", "--on-behalf-of", humans[0])[0] == EX_OK
    # the human directly (not through the hub) is not affected
    assert decide(seatctl_json, "acquire", "p", "extra")[0] == EX_OK
    # another service account has its own count
    seatctl("user", "set", "bridge", "--service-account", check=EX_OK)
    assert decide(seatctl_json, "acquire", "p", "bridge", "--on-behalf-of", "extra")[0] == EX_OK
    deny = [e for e in audit_entries(rdb, "p") if e["result"] == "denied_multiplexing"]
    assert deny and deny[-1]["user"] == "hub" and deny[-1]["obo"] == "extra"


def test_multiplexing_unlimited_by_default(seatctl):
    seatctl("pool", "set", "p", "--floating", "10", check=EX_OK)
    seatctl("user", "set", "hub", "--service-account", check=EX_OK)
    for i in range(6):
        seatctl("acquire", "p", "hub", "--on-behalf-of", "h%d" % i, check=EX_OK)


def test_check_does_not_count_toward_multiplexing(seatctl, seatctl_json):
    seatctl("pool", "set", "p", "--floating", "10", "--mux-limit", "1", check=EX_OK)
    seatctl("user", "set", "hub", "--service-account", check=EX_OK)
    for h in ("a", "b", "c"):
        seatctl("check", "p", "hub", "--on-behalf-of", h, check=EX_OK)
    assert decide(seatctl_json, "acquire", "p", "hub", "--on-behalf-of", "c")[0] == EX_OK
