/* Unit tests: the config file and PAM-style key=value settings (common/config.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "seatgate.h"

/* ---- a log callback that records what it was told -------------------------------- */

typedef struct {
    int calls;
    int errors;
    sg_log_level last_level;
    char last[1024];
    char all[8192]; /* every message, one a line */
} logbook;

static void record(void *ud, sg_log_level lvl, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void record(void *ud, sg_log_level lvl, const char *fmt, ...)
{
    logbook *lb = ud;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(lb->last, sizeof(lb->last), fmt, ap);
    va_end(ap);
    lb->calls++;
    if (lvl == SG_LOG_ERR)
        lb->errors++;
    lb->last_level = lvl;
    size_t n = strlen(lb->all);
    snprintf(lb->all + n, sizeof(lb->all) - n, "%s\n", lb->last);
}

static int apply(sg_config *cfg, const char *kv, logbook *lb)
{
    memset(lb, 0, sizeof(*lb));
    return sg_config_apply(cfg, kv, record, lb);
}

/* apply must succeed without logging an error */
static void apply_ok(sg_config *cfg, const char *kv)
{
    logbook lb;
    if (apply(cfg, kv, &lb) != 0)
        fail_msg("sg_config_apply(\"%s\") failed: %s", kv, lb.last);
    assert_int_equal(lb.errors, 0);
}

/* apply must fail, log an error mentioning want, and change nothing */
static void apply_bad(const char *kv, const char *want)
{
    sg_config cfg, before;
    sg_config_init(&cfg);
    sg_config_init(&before);
    logbook lb;
    if (apply(&cfg, kv, &lb) != -1)
        fail_msg("sg_config_apply(\"%s\") accepted", kv);
    assert_true(lb.calls >= 1);
    assert_int_equal(lb.last_level, SG_LOG_ERR);
    if (want && strstr(lb.all, want) == NULL)
        fail_msg("sg_config_apply(\"%s\") logged '%s', expected it to mention '%s'", kv, lb.all,
                 want);
    assert_memory_equal(&cfg, &before, sizeof(cfg));
}

/* ---- temp files ---------------------------------------------------------------- */

static char tmpdir[64];

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/sg_test_config.XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static const char *write_file(const char *name, const char *content, size_t len)
{
    static char path[128];
    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(content, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
    return path;
}

static const char *write_text(const char *name, const char *content)
{
    return write_file(name, content, strlen(content));
}

static int read_conf(sg_config *cfg, const char *path, int missing_ok, logbook *lb)
{
    memset(lb, 0, sizeof(*lb));
    return sg_config_read(cfg, path, missing_ok, record, lb);
}

/* ---- sg_config_init ------------------------------------------------------------- */

static void test_init_defaults(void **state)
{
    (void)state;
    sg_config cfg;
    memset(&cfg, 0x5a, sizeof(cfg));
    sg_config_init(&cfg);
    assert_string_equal(cfg.redis, SG_DEFAULT_REDIS);
    assert_string_equal(cfg.pool, "");
    assert_string_equal(cfg.feature, "");
    assert_string_equal(cfg.exempt_group, "");
    assert_int_equal(cfg.fail_open, 0); /* fail closed by default */
    assert_int_equal(cfg.timeout_ms, SG_DEFAULT_TIMEOUT_MS);
    assert_int_equal(cfg.debug, 0);
    assert_int_equal(cfg.lease_s, 0);
    assert_int_equal(cfg.seen, 0);
}

/* ---- sg_config_apply, key by key ----------------------------------------------------- */

static void test_apply_redis(void **state)
{
    (void)state;
    sg_config cfg;
    sg_config_init(&cfg);
    apply_ok(&cfg, "redis=redis://10.0.0.5:6380/2");
    assert_string_equal(cfg.redis, "redis://10.0.0.5:6380/2");
    apply_ok(&cfg, "redis=unix:///run/redis/redis.sock?db=1");
    assert_string_equal(cfg.redis, "unix:///run/redis/redis.sock?db=1");
    apply_ok(&cfg, "redis=sentinel://s1:26379,s2:26379/mymaster");
    assert_string_equal(cfg.redis, "sentinel://s1:26379,s2:26379/mymaster");
    /* only the first '=' separates key and value */
    apply_ok(&cfg, "redis=redis://:pa=ss@h");
    assert_string_equal(cfg.redis, "redis://:pa=ss@h");
    assert_true(cfg.seen != 0);

    apply_bad("redis=", "redis");
    apply_bad("redis=http://h", "redis");
    apply_bad("redis=redis://h:0", "redis");
    apply_bad("redis=redis://h :6379", "redis");
    apply_bad("redis=sentinel://h1", "redis");
    /* the password of a bad URL is not logged */
    sg_config cfg2;
    sg_config_init(&cfg2);
    logbook lb;
    assert_int_equal(apply(&cfg2, "redis=redis://u:Zq9xW2vY@h:0", &lb), -1);
    assert_null(strstr(lb.all, "Zq9xW2vY"));
}

static void test_apply_pool_feature(void **state)
{
    (void)state;
    sg_config cfg;
    sg_config_init(&cfg);
    apply_ok(&cfg, "pool=technicians");
    assert_string_equal(cfg.pool, "technicians");
    apply_ok(&cfg, "feature=change-advanced");
    assert_string_equal(cfg.feature, "change-advanced");
    char kv[128];
    snprintf(kv, sizeof(kv), "pool=%0*d", SG_POOL_MAX, 0);
    apply_ok(&cfg, kv);
    assert_int_equal(strlen(cfg.pool), SG_POOL_MAX);

    apply_bad("pool=", "pool");
    apply_bad("pool=a}b:c", "pool");
    apply_bad("pool=a b", "pool");
    apply_bad("pool=-x", "pool");
    snprintf(kv, sizeof(kv), "pool=%0*d", SG_POOL_MAX + 1, 0);
    apply_bad(kv, "pool");
    apply_bad("feature=", "feature");
    apply_bad("feature=cmdb,itsm", "feature");
    apply_bad("feature=caf\xc3\xa9", "feature");
}

static void test_apply_fail(void **state)
{
    (void)state;
    sg_config cfg;
    sg_config_init(&cfg);
    apply_ok(&cfg, "fail=open");
    assert_int_equal(cfg.fail_open, 1);
    apply_ok(&cfg, "fail=closed");
    assert_int_equal(cfg.fail_open, 0);
    apply_bad("fail=", "fail");
    apply_bad("fail=yes", "fail");
    apply_bad("fail=Open", "fail");
    apply_bad("fail=open ", "fail");
    apply_bad("fail=1", "fail");
    apply_bad("fail", NULL);
}

static void test_apply_timeout(void **state)
{
    (void)state;
    sg_config cfg;
    sg_config_init(&cfg);
    apply_ok(&cfg, "timeout=250");
    assert_int_equal(cfg.timeout_ms, 250);
    apply_ok(&cfg, "timeout=1");
    assert_int_equal(cfg.timeout_ms, 1);
    apply_ok(&cfg, "timeout=60000");
    assert_int_equal(cfg.timeout_ms, 60000);
    apply_bad("timeout=0", "timeout");
    apply_bad("timeout=60001", "timeout");
    apply_bad("timeout=-5", "timeout");
    apply_bad("timeout=", "timeout");
    apply_bad("timeout=1s", "timeout");
    apply_bad("timeout=abc", "timeout");
    apply_bad("timeout=99999999999999999999", "timeout");
}

static void test_apply_exempt_group(void **state)
{
    (void)state;
    sg_config cfg;
    sg_config_init(&cfg);
    apply_ok(&cfg, "exempt_group=wheel");
    assert_string_equal(cfg.exempt_group, "wheel");
    apply_ok(&cfg, "exempt_group=Domain Admins");
    assert_string_equal(cfg.exempt_group, "Domain Admins");
    char kv[400];
    snprintf(kv, sizeof(kv), "exempt_group=%0*d", SG_IDENT_MAX, 0);
    apply_ok(&cfg, kv);
    assert_int_equal(strlen(cfg.exempt_group), SG_IDENT_MAX);
    snprintf(kv, sizeof(kv), "exempt_group=%0*d", SG_IDENT_MAX + 1, 0);
    apply_bad(kv, "exempt_group");
    apply_bad("exempt_group=", "exempt_group");
    apply_bad("exempt_group=wheel,admins", "exempt_group");
    apply_bad("exempt_group= wheel", "exempt_group");
    apply_bad("exempt_group=\xff", "exempt_group");
}

static void test_apply_lease(void **state)
{
    (void)state;
    sg_config cfg;
    sg_config_init(&cfg);
    apply_ok(&cfg, "lease=12h");
    assert_int_equal(cfg.lease_s, 12 * 3600);
    apply_ok(&cfg, "lease=900");
    assert_int_equal(cfg.lease_s, 900);
    apply_ok(&cfg, "lease=15m");
    assert_int_equal(cfg.lease_s, 900);
    apply_ok(&cfg, "lease=1d");
    assert_int_equal(cfg.lease_s, 86400);
    apply_bad("lease=0", "lease");
    apply_bad("lease=", "lease");
    apply_bad("lease=-1", "lease");
    apply_bad("lease=12x", "lease");
    apply_bad("lease=366d", "lease");
}

static void test_apply_debug(void **state)
{
    (void)state;
    sg_config cfg;
    sg_config_init(&cfg);
    apply_ok(&cfg, "debug");
    assert_int_equal(cfg.debug, 1);
    apply_ok(&cfg, "debug=0");
    assert_int_equal(cfg.debug, 0);
    apply_ok(&cfg, "debug=1");
    assert_int_equal(cfg.debug, 1);
    apply_ok(&cfg, "debug=no");
    assert_int_equal(cfg.debug, 0);
    apply_ok(&cfg, "debug=yes");
    assert_int_equal(cfg.debug, 1);
    apply_bad("debug=", "debug");
    apply_bad("debug=maybe", "debug");
    apply_bad("debug=true", "debug");
}

static void test_apply_unknown(void **state)
{
    (void)state;
    apply_bad("colour=blue", "colour");
    apply_bad("Pool=technicians", "Pool");
    apply_bad("pool", "pool"); /* a key that needs a value */
    apply_bad("redis", "redis");
    apply_bad("", "unknown");
    apply_bad("=x", "unknown");
    apply_bad(" pool=x", "unknown"); /* apply does not trim; the file reader does */
    apply_bad("pool =x", "unknown");
    apply_bad("debugx", "debugx");
    apply_bad("poo=x", "poo");
    apply_bad("pools=x", "pools");
}

static void test_apply_seen(void **state)
{
    (void)state;
    static const char *const kvs[] = {
        "redis=redis://h", "pool=p",         "feature=f", "fail=open",
        "timeout=5",       "exempt_group=g", "debug",     "lease=1h",
    };
    unsigned all = 0;
    for (size_t i = 0; i < sizeof(kvs) / sizeof(kvs[0]); i++) {
        sg_config cfg;
        sg_config_init(&cfg);
        apply_ok(&cfg, kvs[i]);
        /* each key sets exactly one bit of its own */
        assert_int_equal(__builtin_popcount(cfg.seen), 1);
        assert_int_equal(all & cfg.seen, 0);
        all |= cfg.seen;
    }
    /* a failed setting is not marked as seen */
    sg_config cfg;
    sg_config_init(&cfg);
    logbook lb;
    assert_int_equal(apply(&cfg, "timeout=0", &lb), -1);
    assert_int_equal(cfg.seen, 0);
}

/* ---- sg_config_read --------------------------------------------------------------- */

static void test_read_every_key(void **state)
{
    (void)state;
    const char *path = write_text("full.conf", "# seatgate\n"
                                               "\n"
                                               "redis = redis://alice:pw@10.1.2.3:6390/4\n"
                                               "   pool=technicians   \n"
                                               "\tfeature\t=\tcmdb\t\n"
                                               "fail = open\n"
                                               "timeout = 750\n"
                                               "   # indented comment\n"
                                               "exempt_group = Domain Admins\n"
                                               "lease = 12h\n"
                                               "debug\n");
    sg_config cfg;
    sg_config_init(&cfg);
    logbook lb;
    assert_int_equal(read_conf(&cfg, path, 0, &lb), 0);
    assert_int_equal(lb.errors, 0);
    assert_string_equal(cfg.redis, "redis://alice:pw@10.1.2.3:6390/4");
    assert_string_equal(cfg.pool, "technicians");
    assert_string_equal(cfg.feature, "cmdb");
    assert_int_equal(cfg.fail_open, 1);
    assert_int_equal(cfg.timeout_ms, 750);
    assert_string_equal(cfg.exempt_group, "Domain Admins");
    assert_int_equal(cfg.lease_s, 12 * 3600);
    assert_int_equal(cfg.debug, 1);
    assert_int_equal(__builtin_popcount(cfg.seen), 8);
}

static void test_read_crlf_and_no_final_newline(void **state)
{
    (void)state;
    const char *path = write_text("crlf.conf", "pool = itsm\r\ntimeout = 42\r\nfail = open");
    sg_config cfg;
    sg_config_init(&cfg);
    logbook lb;
    assert_int_equal(read_conf(&cfg, path, 0, &lb), 0);
    assert_string_equal(cfg.pool, "itsm");
    assert_int_equal(cfg.timeout_ms, 42);
    assert_int_equal(cfg.fail_open, 1);
}

static void test_read_last_wins_and_keeps_defaults(void **state)
{
    (void)state;
    const char *path = write_text("twice.conf", "pool = first\npool = second\n");
    sg_config cfg;
    sg_config_init(&cfg);
    logbook lb;
    assert_int_equal(read_conf(&cfg, path, 0, &lb), 0);
    assert_string_equal(cfg.pool, "second");
    assert_string_equal(cfg.redis, SG_DEFAULT_REDIS);
    assert_int_equal(cfg.timeout_ms, SG_DEFAULT_TIMEOUT_MS);
    /* settings applied before the file survive what the file does not set */
    sg_config_init(&cfg);
    apply_ok(&cfg, "timeout=99");
    assert_int_equal(read_conf(&cfg, path, 0, &lb), 0);
    assert_int_equal(cfg.timeout_ms, 99);
}

static void test_read_empty_and_comments(void **state)
{
    (void)state;
    sg_config cfg, before;
    sg_config_init(&cfg);
    sg_config_init(&before);
    logbook lb;
    assert_int_equal(read_conf(&cfg, write_text("empty.conf", ""), 0, &lb), 0);
    assert_int_equal(read_conf(&cfg, write_text("c.conf", "# a\n#pool = x\n\n \t \n#\n"), 0, &lb),
                     0);
    assert_int_equal(lb.calls, 0);
    assert_memory_equal(&cfg, &before, sizeof(cfg));
}

static void expect_line_error(const char *name, const char *content, int line, const char *want)
{
    const char *path = write_text(name, content);
    sg_config cfg;
    sg_config_init(&cfg);
    logbook lb;
    assert_int_equal(read_conf(&cfg, path, 0, &lb), -1);
    assert_true(lb.errors >= 1);
    char where[200];
    snprintf(where, sizeof(where), "%s:%d:", path, line);
    if (strstr(lb.all, where) == NULL)
        fail_msg("reading %s logged '%s', expected '%s'", name, lb.all, where);
    if (want && strstr(lb.all, want) == NULL)
        fail_msg("reading %s logged '%s', expected it to mention '%s'", name, lb.all, want);
}

static void test_read_errors_with_line_numbers(void **state)
{
    (void)state;
    expect_line_error("unknown.conf", "pool = a\n# c\ncolour = blue\n", 3, "colour");
    expect_line_error("badpool.conf", "\n\n\n\npool = a}b\n", 5, "pool");
    expect_line_error("badfail.conf", "fail = sometimes\n", 1, "fail");
    expect_line_error("badtimeout.conf", "redis = redis://h\ntimeout = 0\n", 2, "timeout");
    expect_line_error("badlease.conf", "lease = forever\n", 1, "lease");
    expect_line_error("badredis.conf", "# r\nredis = mysql://h\n", 2, "redis");
    expect_line_error("baddebug.conf", "debug = maybe\n", 1, "debug");
    expect_line_error("badgroup.conf", "exempt_group = a,b\n", 1, "exempt_group");
    expect_line_error("barekey.conf", "pool\n", 1, "pool");
    expect_line_error("crlfbad.conf", "pool = ok\r\ncolour = x\r\n", 2, "colour");
    /* '#' only starts a comment at the beginning of a line */
    expect_line_error("inline.conf", "pool = technicians # the agents\n", 1, "pool");
    /* an empty value is an error, not "unset" */
    expect_line_error("emptyval.conf", "pool =\n", 1, "pool");
}

static void test_read_applies_good_lines_after_a_bad_one(void **state)
{
    (void)state;
    /* a bad line makes the file bad, but what follows is still applied, so a
     * caller can honour an exemption written below a typo */
    const char *path =
        write_text("stop.conf", "pool = before\ntimeout = 500ms\nexempt_group = sudo\n");
    sg_config cfg;
    sg_config_init(&cfg);
    logbook lb;
    assert_int_equal(read_conf(&cfg, path, 0, &lb), -1);
    assert_string_equal(cfg.pool, "before");
    assert_string_equal(cfg.exempt_group, "sudo");
    assert_int_equal(cfg.timeout_ms, SG_DEFAULT_TIMEOUT_MS);
    assert_non_null(strstr(lb.all, ":2: invalid setting"));
    assert_null(strstr(lb.all, ":3:"));
}

static void test_read_refuses_an_untrusted_file(void **state)
{
    (void)state;
    /* writable by others, or by the group: refused whole, nothing applied */
    static const mode_t modes[] = {0666, 0620, 0602};
    for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
        const char *path = write_text("open.conf", "pool = p\nexempt_group = users\nfail = open\n");
        assert_int_equal(chmod(path, modes[i]), 0);
        sg_config cfg;
        sg_config_init(&cfg);
        logbook lb;
        assert_int_equal(read_conf(&cfg, path, 0, &lb), -1);
        assert_string_equal(cfg.pool, "");
        assert_string_equal(cfg.exempt_group, "");
        assert_int_equal(cfg.fail_open, 0);
        assert_non_null(strstr(lb.all, "writable by"));
        assert_non_null(strstr(lb.all, "refusing it"));
    }
    /* 0600 and 0644 are fine */
    const char *path = write_text("ok.conf", "pool = p\n");
    assert_int_equal(chmod(path, 0644), 0);
    sg_config cfg;
    sg_config_init(&cfg);
    logbook lb;
    assert_int_equal(read_conf(&cfg, path, 0, &lb), 0);
    assert_string_equal(cfg.pool, "p");
    /* owned by somebody else (only root can make such a file) */
    if (geteuid() == 0) {
        assert_int_equal(chown(path, 4242, 4242), 0);
        sg_config_init(&cfg);
        assert_int_equal(read_conf(&cfg, path, 0, &lb), -1);
        assert_non_null(strstr(lb.all, "owned by uid 4242"));
        assert_string_equal(cfg.pool, "");
        assert_int_equal(chown(path, 0, 0), 0);
    }
    /* in a directory that others can write to */
    char sub[200], file[260];
    snprintf(sub, sizeof(sub), "%s/open", tmpdir);
    assert_int_equal(mkdir(sub, 0777), 0);
    assert_int_equal(chmod(sub, 0777), 0);
    snprintf(file, sizeof(file), "%s/open/x.conf", tmpdir);
    FILE *f = fopen(file, "w");
    assert_non_null(f);
    fputs("pool = p\n", f);
    fclose(f);
    sg_config_init(&cfg);
    assert_int_equal(read_conf(&cfg, file, 0, &lb), -1);
    assert_non_null(strstr(lb.all, "its directory"));
    assert_string_equal(cfg.pool, "");
    /* the sticky bit of a root-owned directory (as /tmp) protects it */
    if (geteuid() == 0) {
        assert_int_equal(chmod(sub, 01777), 0);
        sg_config_init(&cfg);
        assert_int_equal(read_conf(&cfg, file, 0, &lb), 0);
        assert_string_equal(cfg.pool, "p");
    }
    unlink(file);
    rmdir(sub);
}

static void test_apply_exempt_root(void **state)
{
    (void)state;
    sg_config cfg;
    sg_config_init(&cfg);
    assert_int_equal(cfg.exempt_root, 1); /* on unless said otherwise */
    apply_ok(&cfg, "exempt_root=no");
    assert_int_equal(cfg.exempt_root, 0);
    apply_ok(&cfg, "exempt_root=yes");
    assert_int_equal(cfg.exempt_root, 1);
    apply_bad("exempt_root=maybe", "exempt_root");
    apply_bad("exempt_root=", "exempt_root");
}

static void test_read_long_line(void **state)
{
    (void)state;
    size_t n = 5000;
    char *big = malloc(n + 64);
    assert_non_null(big);
    int o = snprintf(big, n + 64, "pool = a\npool = ");
    memset(big + o, 'x', n - (size_t)o);
    strcpy(big + n, "\npool = b\n");
    const char *path = write_text("long.conf", big);
    free(big);
    sg_config cfg;
    sg_config_init(&cfg);
    logbook lb;
    assert_int_equal(read_conf(&cfg, path, 0, &lb), -1);
    assert_non_null(strstr(lb.all, ":2:"));
    assert_non_null(strstr(lb.all, "too long"));
    assert_string_equal(cfg.pool, "a");
}

static void test_read_missing(void **state)
{
    (void)state;
    char path[128];
    snprintf(path, sizeof(path), "%s/does-not-exist.conf", tmpdir);
    sg_config cfg, before;
    sg_config_init(&cfg);
    sg_config_init(&before);
    logbook lb;
    assert_int_equal(read_conf(&cfg, path, 1, &lb), 0);
    assert_int_equal(lb.calls, 0);
    assert_memory_equal(&cfg, &before, sizeof(cfg));
    assert_int_equal(read_conf(&cfg, path, 0, &lb), -1);
    assert_int_equal(lb.errors, 1);
    assert_non_null(strstr(lb.last, "does-not-exist.conf"));
    assert_non_null(strstr(lb.last, "cannot read"));
    /* a missing directory is just as missing */
    snprintf(path, sizeof(path), "%s/nodir/seatgate.conf", tmpdir);
    assert_int_equal(read_conf(&cfg, path, 1, &lb), 0);
}

static void test_read_directory_is_an_error(void **state)
{
    (void)state;
    /* a path that exists but cannot be read as a file is an error even with missing_ok */
    sg_config cfg;
    sg_config_init(&cfg);
    logbook lb;
    assert_int_equal(read_conf(&cfg, tmpdir, 1, &lb), -1);
    assert_true(lb.errors >= 1);
    assert_int_equal(read_conf(&cfg, tmpdir, 0, &lb), -1);
}

static void test_read_nul_byte(void **state)
{
    (void)state;
    /* a NUL byte inside a line must not crash or be taken as the line's end */
    static const char content[] = "pool = a\0b\npool = c\n";
    const char *path = write_file("nul.conf", content, sizeof(content) - 1);
    sg_config cfg;
    sg_config_init(&cfg);
    logbook lb;
    int rc = read_conf(&cfg, path, 0, &lb);
    if (rc == 0)
        assert_string_not_equal(cfg.pool, "a");
}

static void test_read_shipped_example(void **state)
{
    (void)state;
    /* the example config in the repository parses (when run from the top directory) */
    if (access("conf/seatgate.conf", R_OK) != 0)
        skip();
    sg_config cfg;
    sg_config_init(&cfg);
    logbook lb;
    if (read_conf(&cfg, "conf/seatgate.conf", 0, &lb) != 0)
        fail_msg("conf/seatgate.conf: %s", lb.all);
    assert_int_equal(lb.errors, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_defaults),
        cmocka_unit_test(test_apply_redis),
        cmocka_unit_test(test_apply_pool_feature),
        cmocka_unit_test(test_apply_fail),
        cmocka_unit_test(test_apply_timeout),
        cmocka_unit_test(test_apply_exempt_group),
        cmocka_unit_test(test_apply_lease),
        cmocka_unit_test(test_apply_debug),
        cmocka_unit_test(test_apply_unknown),
        cmocka_unit_test(test_apply_seen),
        cmocka_unit_test(test_read_every_key),
        cmocka_unit_test(test_read_crlf_and_no_final_newline),
        cmocka_unit_test(test_read_last_wins_and_keeps_defaults),
        cmocka_unit_test(test_read_empty_and_comments),
        cmocka_unit_test(test_read_errors_with_line_numbers),
        cmocka_unit_test(test_read_applies_good_lines_after_a_bad_one),
        cmocka_unit_test(test_read_refuses_an_untrusted_file),
        cmocka_unit_test(test_apply_exempt_root),
        cmocka_unit_test(test_read_long_line),
        cmocka_unit_test(test_read_missing),
        cmocka_unit_test(test_read_directory_is_an_error),
        cmocka_unit_test(test_read_nul_byte),
        cmocka_unit_test(test_read_shipped_example),
    };
    return cmocka_run_group_tests_name("config", tests, setup, teardown);
}
