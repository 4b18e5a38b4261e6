/*
 * pam_seatgate through real libpam: libpamtest + pam_wrapper + cmocka.
 *
 * Run by tests/integration/test_pam.py, which starts Redis, writes the PAM
 * service files and runs this binary with
 *
 *   LD_PRELOAD=libpam_wrapper.so PAM_WRAPPER=1 PAM_WRAPPER_SERVICE_DIR=DIR
 *   SEATGATE_TEST_REDIS=redis://127.0.0.1:PORT   the Redis the services use
 *   SEATGATE_TEST_SEATCTL=/path/to/build/seatctl  (for the reap test)
 *
 * The service files (written by test_pam.py, see PAM_SERVICES there) each
 * carry "account" and "session" lines for build/pam_seatgate.so:
 *
 *   sg                   pool=technicians redis=URL
 *   sg_named             pool=namedonly redis=URL
 *   sg_nopool            pool=nosuchpool redis=URL
 *   sg_feature_ok        pool=technicians redis=URL feature=cmdb
 *   sg_feature_no        pool=technicians redis=URL feature=change-advanced
 *   sg_lease             pool=technicians redis=URL lease=90s
 *   sg_down_closed       pool=technicians redis=CLOSED-PORT fail=closed timeout=300
 *   sg_down_open         pool=technicians redis=CLOSED-PORT fail=open timeout=300
 *   sg_conf              conf=good.conf (pool, redis, feature=change-advanced)
 *   sg_conf_override     conf=good.conf feature=cmdb
 *   sg_bad_unknown       ... bogus=1
 *   sg_bad_fail          ... fail=maybe
 *   sg_bad_timeout       ... timeout=abc
 *   sg_bad_nopool        redis=URL (no pool)
 *   sg_bad_conf_missing  conf=missing.conf
 *   sg_bad_conf_line     conf=bad.conf (a line that does not parse)
 *
 * Every test starts from an empty Redis and this state (made with libseatgate,
 * the core seatctl wraps):
 *   pool technicians: 1 named, 3 floating, features cmdb, exclude contractors
 *   pool namedonly:   1 named, 0 floating
 *   alice assigned to technicians; carol dave erin frank in group agents;
 *   eve in contractors; dan disabled; bob registered, assigned nowhere.
 */
#include "seatgate.h"

#include <hiredis/hiredis.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <libpamtest.h>
#include <security/pam_appl.h>

static sg_conn *g_conn;
static const char *g_seatctl;

/* ---- Redis helpers -------------------------------------------------------- */

static redisReply *cmd(const char *a0, const char *a1, const char *a2, const char *a3)
{
    const char *argv[4] = {a0, a1, a2, a3};
    int argc = a3 ? 4 : a2 ? 3 : a1 ? 2 : 1;
    char err[SG_ERR_MAX];
    redisReply *r = sg_conn_cmd(g_conn, argc, argv, NULL, err, sizeof(err));
    if (r == NULL)
        fail_msg("redis %s: %s", a0, err);
    return r;
}

static void pool_set(const char *name, long named, long floating, const char *features,
                     const char *exclude)
{
    sg_pool p;
    memset(&p, 0, sizeof(p));
    snprintf(p.name, sizeof(p.name), "%s", name);
    p.named = named;
    p.floating = floating;
    p.idle_s = 900;
    p.set_mask = SG_PSET_NAMED | SG_PSET_FLOATING | SG_PSET_IDLE;
    if (features) {
        snprintf(p.features, sizeof(p.features), "%s", features);
        p.set_mask |= SG_PSET_FEATURES;
    }
    if (exclude) {
        snprintf(p.exclude, sizeof(p.exclude), "%s", exclude);
        p.set_mask |= SG_PSET_EXCLUDE;
    }
    char err[SG_ERR_MAX];
    int rc = sg_pool_set(g_conn, &p, "cli", NULL, err, sizeof(err));
    if (rc != SG_OK)
        fail_msg("pool set %s: %s", name, err);
}

static void user_set(const char *user, const char *groups, int disabled)
{
    sg_user_change ch = {.groups = groups, .service = -1, .disabled = disabled};
    char err[SG_ERR_MAX];
    if (sg_user_set(g_conn, user, &ch, "cli", err, sizeof(err)) != SG_OK)
        fail_msg("user set %s: %s", user, err);
}

static int reset(void **state)
{
    (void)state;
    freeReplyObject(cmd("FLUSHALL", NULL, NULL, NULL));
    pool_set("technicians", 1, 3, "cmdb", "contractors");
    pool_set("namedonly", 1, 0, NULL, NULL);
    user_set("alice", "agents", -1);
    user_set("bob", "agents", -1);
    user_set("carol", "agents", -1);
    user_set("dave", "agents", -1);
    user_set("erin", "agents", -1);
    user_set("frank", "agents", -1);
    user_set("eve", "contractors", -1);
    user_set("dan", "agents", 1);
    const char *who[] = {"alice"};
    char err[SG_ERR_MAX];
    if (sg_assign(g_conn, "technicians", 1, who, 1, "cli", NULL, err, sizeof(err)) != SG_OK)
        fail_msg("assign: %s", err);
    return 0;
}

static long in_use(const char *pool)
{
    sg_pool_info pi;
    char err[SG_ERR_MAX];
    if (sg_pool_get(g_conn, pool, &pi, err, sizeof(err)) != SG_OK)
        fail_msg("pool get %s: %s", pool, err);
    return pi.in_use;
}

/* Sessions of a user in a pool; the first one is copied to *first if given. */
static size_t sessions_of(const char *pool, const char *user, sg_session_info *first)
{
    sg_session_info *s;
    size_t n, k = 0;
    char err[SG_ERR_MAX];
    if (sg_sessions(g_conn, pool, &s, &n, err, sizeof(err)) != SG_OK)
        fail_msg("sessions %s: %s", pool, err);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(s[i].user, user) != 0)
            continue;
        if (k == 0 && first)
            *first = s[i];
        k++;
    }
    free(s);
    return k;
}

/* A field of the newest audit entry of a pool ("" when there is none). */
static void last_audit(const char *pool, const char *field, char *out, size_t len)
{
    char key[SG_KEY_MAX];
    sg_keyname(SG_K_AUDIT, pool, key, sizeof(key));
    const char *argv[] = {"XREVRANGE", key, "+", "-", "COUNT", "1"};
    char err[SG_ERR_MAX];
    redisReply *r = sg_conn_cmd(g_conn, 6, argv, NULL, err, sizeof(err));
    if (r == NULL)
        fail_msg("XREVRANGE: %s", err);
    out[0] = '\0';
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 1) {
        redisReply *f = r->element[0]->element[1];
        for (size_t i = 0; i + 1 < f->elements; i += 2)
            if (strcmp(f->element[i]->str, field) == 0)
                snprintf(out, len, "%s", f->element[i + 1]->str);
    }
    freeReplyObject(r);
}

static int cmpstr(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* FNV-1a over every key and its DUMP, in key order: equal digests mean
 * nothing in Redis changed. */
static uint64_t db_digest(void)
{
    redisReply *keys = cmd("KEYS", "*", NULL, NULL);
    char **names = calloc(keys->elements + 1, sizeof(char *));
    assert_non_null(names);
    for (size_t i = 0; i < keys->elements; i++)
        names[i] = keys->element[i]->str;
    qsort(names, keys->elements, sizeof(char *), cmpstr);
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < keys->elements; i++) {
        redisReply *d = cmd("DUMP", names[i], NULL, NULL);
        for (const char *p = names[i]; *p; p++)
            h = (h ^ (unsigned char)*p) * 1099511628211ULL;
        for (size_t j = 0; j < d->len; j++)
            h = (h ^ (unsigned char)d->str[j]) * 1099511628211ULL;
        freeReplyObject(d);
    }
    free(names);
    freeReplyObject(keys);
    return h;
}

/* Take a floating seat directly through the core (as seatctl acquire does). */
static void take(const char *user)
{
    sg_request rq = {.op = SG_OP_ACQUIRE, .pool = "technicians", .user = user, .via = "cli",
                     .host = "elsewhere"};
    sg_decision d;
    assert_int_equal(sg_decide(g_conn, &rq, &d), 0);
    assert_int_equal(d.result, SG_GRANTED_FLOATING);
}

/* ---- PAM helpers ---------------------------------------------------------- */

#define NMSG 4
typedef struct {
    char *err[NMSG + 1];
    char *info[NMSG + 1];
    char buf[2 * NMSG][PAM_MAX_MSG_SIZE];
    struct pamtest_conv_data cd;
} conv_t;

static void conv_init(conv_t *c)
{
    memset(c, 0, sizeof(*c));
    for (int i = 0; i < NMSG; i++) {
        c->err[i] = c->buf[i];
        c->info[i] = c->buf[NMSG + i];
    }
    c->cd.out_err = c->err;
    c->cd.out_info = c->info;
}

static const char *op_name(enum pamtest_ops op)
{
    switch (op) {
    case PAMTEST_ACCOUNT:
        return "acct_mgmt";
    case PAMTEST_OPEN_SESSION:
        return "open_session";
    case PAMTEST_CLOSE_SESSION:
        return "close_session";
    default:
        return "op";
    }
}

static const char *rc_name(int rc)
{
    switch (rc) {
    case PAM_SUCCESS:
        return "PAM_SUCCESS";
    case PAM_PERM_DENIED:
        return "PAM_PERM_DENIED";
    case PAM_SERVICE_ERR:
        return "PAM_SERVICE_ERR";
    case PAM_SESSION_ERR:
        return "PAM_SESSION_ERR";
    case PAM_USER_UNKNOWN:
        return "PAM_USER_UNKNOWN";
    default:
        return "other";
    }
}

/* One PAM transaction (pam_start, the cases, pam_end); every case must
 * return what it expects. */
static void run_cases(const char *svc, const char *user, conv_t *cv, struct pam_testcase *tc,
                      size_t n)
{
    conv_t local;
    if (cv == NULL) {
        conv_init(&local);
        cv = &local;
    }
    enum pamtest_err e = _pamtest(svc, user, &cv->cd, tc, n, NULL);
    if (e == PAMTEST_ERR_CASE) {
        const struct pam_testcase *f = _pamtest_failed_case(tc, n);
        fail_msg("service %s user %s: %s returned %s (%d), wanted %s (%d); message '%s'", svc,
                 user, op_name(f->pam_operation), rc_name(f->op_rv), f->op_rv,
                 rc_name(f->expected_rv), f->expected_rv, cv->err[0]);
    }
    if (e != PAMTEST_ERR_OK)
        fail_msg("service %s user %s: %s", svc, user, pamtest_strerror(e));
}

#define PAM_RUN(svc, user, cv, ...)                                                                \
    do {                                                                                           \
        struct pam_testcase tc_[] = {__VA_ARGS__};                                                 \
        run_cases(svc, user, cv, tc_, sizeof(tc_) / sizeof(tc_[0]));                               \
    } while (0)

#define ACCT(rc) pam_test(PAMTEST_ACCOUNT, rc)
#define OPEN(rc) pam_test(PAMTEST_OPEN_SESSION, rc)
#define CLOSE(rc) pam_test(PAMTEST_CLOSE_SESSION, rc)

/* A denial: account and session open refuse with the message, close passes,
 * and the only change in Redis is the denial counted and audited. */
static void expect_denied(const char *svc, const char *pool, const char *user, const char *result,
                          const char *message)
{
    conv_t cv;
    conv_init(&cv);
    long before = in_use(pool);
    PAM_RUN(svc, user, &cv, ACCT(PAM_PERM_DENIED));
    assert_string_equal(cv.err[0], message);
    assert_string_equal(cv.err[1], "");
    assert_string_equal(cv.info[0], "");

    conv_init(&cv);
    PAM_RUN(svc, user, &cv, OPEN(PAM_SESSION_ERR));
    /* (a close in a new transaction: libpam fails a close_session whose
     * open_session failed in the same handle, whatever the module says) */
    PAM_RUN(svc, user, NULL, CLOSE(PAM_SUCCESS));
    assert_string_equal(cv.err[0], message);
    char buf[64];
    last_audit(pool, "result", buf, sizeof(buf));
    assert_string_equal(buf, result);
    last_audit(pool, "ev", buf, sizeof(buf));
    assert_string_equal(buf, "deny");
    last_audit(pool, "via", buf, sizeof(buf));
    assert_string_equal(buf, "pam");
    assert_int_equal(in_use(pool), before);
    assert_int_equal(sessions_of(pool, user, NULL), 0);
}

/* ---- decisions ------------------------------------------------------------ */

static void test_granted_named(void **state)
{
    (void)state;
    conv_t cv;
    conv_init(&cv);
    pam_handle_t *ph;
    struct pam_testcase tc[] = {ACCT(PAM_SUCCESS), OPEN(PAM_SUCCESS),
                                pam_test(PAMTEST_KEEPHANDLE, 0)};
    assert_int_equal(run_pamtest("sg", "alice", &cv.cd, tc, NULL), PAMTEST_ERR_OK);
    ph = tc[2].case_out.ph;
    assert_string_equal(cv.err[0], ""); /* a grant says nothing */

    sg_session_info si;
    assert_int_equal(sessions_of("technicians", "alice", &si), 1);
    assert_string_equal(si.via, "pam");
    assert_int_equal(si.pid, (long)getpid());
    char host[256];
    gethostname(host, sizeof(host));
    assert_string_equal(si.host, host);
    assert_int_equal(in_use("technicians"), 0); /* a named seat takes no floating one */
    char buf[64];
    last_audit("technicians", "result", buf, sizeof(buf));
    assert_string_equal(buf, "granted_named");

    struct pam_testcase tc2[] = {CLOSE(PAM_SUCCESS)};
    assert_int_equal(run_pamtest("sg", "alice", &cv.cd, tc2, ph), PAMTEST_ERR_OK);
    assert_int_equal(sessions_of("technicians", "alice", NULL), 0);
}

static void test_granted_floating(void **state)
{
    (void)state;
    conv_t cv;
    conv_init(&cv);
    pam_handle_t *ph;
    struct pam_testcase tc[] = {ACCT(PAM_SUCCESS), OPEN(PAM_SUCCESS),
                                pam_test(PAMTEST_KEEPHANDLE, 0)};
    assert_int_equal(run_pamtest("sg", "carol", &cv.cd, tc, NULL), PAMTEST_ERR_OK);
    ph = tc[2].case_out.ph;
    assert_string_equal(cv.err[0], "");
    assert_int_equal(in_use("technicians"), 1);
    assert_int_equal(sessions_of("technicians", "carol", NULL), 1);
    char buf[64];
    last_audit("technicians", "result", buf, sizeof(buf));
    assert_string_equal(buf, "granted_floating");
    last_audit("technicians", "ev", buf, sizeof(buf));
    assert_string_equal(buf, "grant");

    /* account alone takes nothing */
    PAM_RUN("sg", "dave", NULL, ACCT(PAM_SUCCESS));
    assert_int_equal(in_use("technicians"), 1);

    struct pam_testcase tc2[] = {CLOSE(PAM_SUCCESS)};
    assert_int_equal(run_pamtest("sg", "carol", &cv.cd, tc2, ph), PAMTEST_ERR_OK);
    assert_int_equal(in_use("technicians"), 0);
    last_audit("technicians", "reason", buf, sizeof(buf));
    assert_string_equal(buf, "seat_released");
}

static void test_denied_exhausted(void **state)
{
    (void)state;
    take("carol");
    take("dave");
    take("erin");
    expect_denied("sg", "technicians", "frank", "denied_exhausted",
                  "all 3 floating seats of pool technicians are in use; try again later");
    /* a named seat is never "maxed out" */
    PAM_RUN("sg", "alice", NULL, ACCT(PAM_SUCCESS), OPEN(PAM_SUCCESS), CLOSE(PAM_SUCCESS));
    /* and a holder of a floating seat gets in again */
    PAM_RUN("sg", "dave", NULL, ACCT(PAM_SUCCESS), OPEN(PAM_SUCCESS), CLOSE(PAM_SUCCESS));
    assert_int_equal(in_use("technicians"), 3);
}

static void test_denied_unassigned(void **state)
{
    (void)state;
    expect_denied("sg_named", "namedonly", "bob", "denied_unassigned",
                  "you have no seat in pool namedonly; ask your license administrator");
    /* an unknown pool denies too, and creates nothing */
    uint64_t before = db_digest();
    conv_t cv;
    conv_init(&cv);
    PAM_RUN("sg_nopool", "carol", &cv, ACCT(PAM_PERM_DENIED));
    assert_string_equal(cv.err[0],
                        "pool nosuchpool does not exist; ask your license administrator");
    PAM_RUN("sg_nopool", "carol", NULL, OPEN(PAM_SESSION_ERR));
    PAM_RUN("sg_nopool", "carol", NULL, CLOSE(PAM_SUCCESS));
    assert_true(db_digest() == before);
}

static void test_denied_excluded(void **state)
{
    (void)state;
    expect_denied("sg", "technicians", "eve", "denied_excluded",
                  "your account may not use pool technicians");
}

static void test_denied_feature(void **state)
{
    (void)state;
    expect_denied("sg_feature_no", "technicians", "carol", "denied_feature",
                  "pool technicians does not include the module change-advanced");
    PAM_RUN("sg_feature_ok", "carol", NULL, ACCT(PAM_SUCCESS), OPEN(PAM_SUCCESS),
            CLOSE(PAM_SUCCESS));
    char buf[64];
    last_audit("technicians", "reason", buf, sizeof(buf));
    assert_string_equal(buf, "seat_released");
}

static void test_denied_disabled(void **state)
{
    (void)state;
    expect_denied("sg", "technicians", "dan", "denied_disabled",
                  "your account is disabled for pool technicians");
}

/* ---- backend down, bad configuration ----------------------------------------- */

static void test_backend_down_fail_closed(void **state)
{
    (void)state;
    conv_t cv;
    conv_init(&cv);
    PAM_RUN("sg_down_closed", "carol", &cv, ACCT(PAM_PERM_DENIED));
    assert_string_equal(cv.err[0], "the license service is unavailable; try again later");
    conv_init(&cv);
    PAM_RUN("sg_down_closed", "carol", &cv, OPEN(PAM_SESSION_ERR));
    /* session close never fails a logout, even with Redis down */
    PAM_RUN("sg_down_closed", "carol", NULL, CLOSE(PAM_SUCCESS));
    assert_string_equal(cv.err[0], "the license service is unavailable; try again later");
    /* a named user is no exception: the seat cannot be checked */
    PAM_RUN("sg_down_closed", "alice", NULL, ACCT(PAM_PERM_DENIED));
}

static void test_backend_down_fail_open(void **state)
{
    (void)state;
    conv_t cv;
    conv_init(&cv);
    PAM_RUN("sg_down_open", "carol", &cv, ACCT(PAM_SUCCESS), OPEN(PAM_SUCCESS),
            CLOSE(PAM_SUCCESS));
    assert_string_equal(cv.err[0], "");
    /* fail=open lets in even someone the pool would deny */
    PAM_RUN("sg_down_open", "eve", NULL, ACCT(PAM_SUCCESS), OPEN(PAM_SUCCESS));
}

static void test_bad_configuration(void **state)
{
    (void)state;
    static const char *svcs[] = {"sg_bad_unknown",      "sg_bad_fail",
                                 "sg_bad_timeout",      "sg_bad_nopool",
                                 "sg_bad_conf_missing", "sg_bad_conf_line"};
    uint64_t before = db_digest();
    for (size_t i = 0; i < sizeof(svcs) / sizeof(svcs[0]); i++) {
        conv_t cv;
        conv_init(&cv);
        /* alice holds a named seat: only the bad argument can deny her */
        PAM_RUN(svcs[i], "alice", &cv, ACCT(PAM_SERVICE_ERR));
        PAM_RUN(svcs[i], "alice", &cv, OPEN(PAM_SESSION_ERR));
        PAM_RUN(svcs[i], "alice", &cv, CLOSE(PAM_SUCCESS));
        PAM_RUN(svcs[i], "carol", &cv, OPEN(PAM_SESSION_ERR));
        /* the reason goes to syslog; the user is told nothing about it */
        assert_string_equal(cv.err[0], "");
    }
    assert_true(db_digest() == before);
}

/* ---- conf=, lease= ------------------------------------------------------------ */

static void test_conf_file(void **state)
{
    (void)state;
    /* good.conf requires change-advanced, which the pool lacks */
    expect_denied("sg_conf", "technicians", "carol", "denied_feature",
                  "pool technicians does not include the module change-advanced");
    /* the PAM line overrides the file: feature=cmdb */
    PAM_RUN("sg_conf_override", "carol", NULL, ACCT(PAM_SUCCESS), OPEN(PAM_SUCCESS));
    assert_int_equal(in_use("technicians"), 1);
}

static long long lease_ms(const char *svc, const char *user)
{
    PAM_RUN(svc, user, NULL, OPEN(PAM_SUCCESS));
    sg_session_info si;
    assert_int_equal(sessions_of("technicians", user, &si), 1);
    return si.expires_ms - si.started_ms;
}

static void test_lease(void **state)
{
    (void)state;
    long long def = lease_ms("sg", "carol");
    assert_in_range(def, 12LL * 3600 * 1000 - 2000, 12LL * 3600 * 1000);
    long long short_ = lease_ms("sg_lease", "dave");
    assert_in_range(short_, 90 * 1000 - 2000, 90 * 1000);
}

/* ---- sessions from several processes ------------------------------------------ */

typedef struct {
    pid_t pid;
    int cmd;  /* parent -> child */
    int done; /* child -> parent */
} child_t;

/* A child process opens a session and waits; on a byte from the parent it
 * closes the session ('c') or leaves without closing ('x'). */
static child_t session_child(const char *svc, const char *user)
{
    int down[2], up[2];
    assert_int_equal(pipe(down), 0);
    assert_int_equal(pipe(up), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(down[1]);
        close(up[0]);
        conv_t cv;
        conv_init(&cv);
        struct pam_testcase tc[] = {OPEN(PAM_SUCCESS), pam_test(PAMTEST_KEEPHANDLE, 0)};
        char r = run_pamtest(svc, user, &cv.cd, tc, NULL) == PAMTEST_ERR_OK ? 'o' : 'E';
        if (write(up[1], &r, 1) != 1 || r != 'o')
            _exit(1);
        char c;
        if (read(down[0], &c, 1) != 1)
            _exit(1);
        if (c == 'x') /* die with the session open, as a killed sshd would */
            _exit(0);
        struct pam_testcase tc2[] = {CLOSE(PAM_SUCCESS)};
        r = run_pamtest(svc, user, &cv.cd, tc2, tc[1].case_out.ph) == PAMTEST_ERR_OK ? 'c' : 'E';
        if (write(up[1], &r, 1) != 1)
            _exit(1);
        _exit(r == 'c' ? 0 : 1); /* _exit: pam_wrapper's directory belongs to the parent */
    }
    close(down[0]);
    close(up[1]);
    child_t ch = {.pid = pid, .cmd = down[1], .done = up[0]};
    char r;
    assert_int_equal(read(ch.done, &r, 1), 1);
    assert_int_equal(r, 'o');
    return ch;
}

static void child_finish(child_t *ch, char how)
{
    assert_int_equal(write(ch->cmd, &how, 1), 1);
    if (how == 'c') {
        char r;
        assert_int_equal(read(ch->done, &r, 1), 1);
        assert_int_equal(r, 'c');
    }
    int st;
    assert_int_equal(waitpid(ch->pid, &st, 0), ch->pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    close(ch->cmd);
    close(ch->done);
}

static void test_two_sessions_one_seat(void **state)
{
    (void)state;
    child_t a = session_child("sg", "carol");
    child_t b = session_child("sg", "carol");
    assert_int_equal(sessions_of("technicians", "carol", NULL), 2);
    assert_int_equal(in_use("technicians"), 1); /* one user, one seat */

    child_finish(&a, 'c');
    assert_int_equal(sessions_of("technicians", "carol", NULL), 1);
    assert_int_equal(in_use("technicians"), 1); /* the other session keeps it */
    char buf[64];
    last_audit("technicians", "reason", buf, sizeof(buf));
    assert_string_equal(buf, "session_closed");

    child_finish(&b, 'c');
    assert_int_equal(sessions_of("technicians", "carol", NULL), 0);
    assert_int_equal(in_use("technicians"), 0);
    last_audit("technicians", "reason", buf, sizeof(buf));
    assert_string_equal(buf, "seat_released");
}

static void test_reap_dead_session(void **state)
{
    (void)state;
    if (g_seatctl == NULL)
        skip();
    child_t a = session_child("sg", "erin");
    pid_t dead = a.pid;
    child_finish(&a, 'x');
    sg_session_info si;
    assert_int_equal(sessions_of("technicians", "erin", &si), 1);
    assert_int_equal(si.pid, (long)dead);
    assert_int_equal(in_use("technicians"), 1);

    char cmdline[1024];
    snprintf(cmdline, sizeof(cmdline), "'%s' --redis '%s' reap >/dev/null", g_seatctl,
             getenv("SEATGATE_TEST_REDIS"));
    assert_int_equal(system(cmdline), 0);
    assert_int_equal(sessions_of("technicians", "erin", NULL), 0);
    assert_int_equal(in_use("technicians"), 0);
}

static void test_close_without_open(void **state)
{
    (void)state;
    take("carol");
    uint64_t before = db_digest();
    /* a stray close (another process, nothing opened) releases nothing */
    PAM_RUN("sg", "carol", NULL, CLOSE(PAM_SUCCESS));
    PAM_RUN("sg", "nobody", NULL, CLOSE(PAM_SUCCESS));
    assert_true(db_digest() == before);
    assert_int_equal(in_use("technicians"), 1);
}

int main(void)
{
    const char *url = getenv("SEATGATE_TEST_REDIS");
    if (url == NULL || getenv("PAM_WRAPPER_SERVICE_DIR") == NULL) {
        fprintf(stderr, "set SEATGATE_TEST_REDIS and run under pam_wrapper "
                        "(see tests/integration/test_pam.py)\n");
        return 2;
    }
    g_seatctl = getenv("SEATGATE_TEST_SEATCTL");
    sg_redis_url u;
    char err[SG_ERR_MAX];
    if (sg_url_parse(url, &u, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return 2;
    }
    g_conn = sg_conn_open(&u, 5000, err, sizeof(err));
    if (g_conn == NULL) {
        fprintf(stderr, "%s: %s\n", url, err);
        return 2;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_granted_named, reset),
        cmocka_unit_test_setup(test_granted_floating, reset),
        cmocka_unit_test_setup(test_denied_exhausted, reset),
        cmocka_unit_test_setup(test_denied_unassigned, reset),
        cmocka_unit_test_setup(test_denied_excluded, reset),
        cmocka_unit_test_setup(test_denied_feature, reset),
        cmocka_unit_test_setup(test_denied_disabled, reset),
        cmocka_unit_test_setup(test_backend_down_fail_closed, reset),
        cmocka_unit_test_setup(test_backend_down_fail_open, reset),
        cmocka_unit_test_setup(test_bad_configuration, reset),
        cmocka_unit_test_setup(test_conf_file, reset),
        cmocka_unit_test_setup(test_lease, reset),
        cmocka_unit_test_setup(test_two_sessions_one_seat, reset),
        cmocka_unit_test_setup(test_reap_dead_session, reset),
        cmocka_unit_test_setup(test_close_without_open, reset),
    };
    int failed = cmocka_run_group_tests_name("pam_seatgate", tests, NULL, NULL);
    sg_conn_close(g_conn);
    return failed;
}
