/* Unit tests: Redis URL parsing and redaction (common/url.c), PRODUCT.md section 5. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "seatgate.h"
#include "internal.h"

static sg_redis_url parse_ok(const char *s)
{
    sg_redis_url u;
    char err[SG_ERR_MAX] = "";
    if (sg_url_parse(s, &u, err, sizeof(err)) != 0)
        fail_msg("sg_url_parse(\"%s\") failed: %s", s, err);
    return u;
}

/* Rejects s; the error must mention want (if given) and must not contain secret. */
static void parse_bad(const char *s, const char *want, const char *secret)
{
    sg_redis_url u;
    char err[SG_ERR_MAX] = "";
    if (sg_url_parse(s, &u, err, sizeof(err)) != -1)
        fail_msg("sg_url_parse(\"%s\") accepted", s ? s : "(null)");
    if (err[0] == '\0')
        fail_msg("sg_url_parse(\"%s\"): no error message", s ? s : "(null)");
    if (want && strstr(err, want) == NULL)
        fail_msg("sg_url_parse(\"%s\"): error '%s' does not mention '%s'", s, err, want);
    if (secret && strstr(err, secret) != NULL)
        fail_msg("sg_url_parse(\"%s\"): error '%s' shows the password", s, err);
}

static void redacted_is(const char *s, const char *want)
{
    sg_redis_url u = parse_ok(s);
    char buf[2048];
    sg_url_redacted(&u, buf, sizeof(buf));
    if (strcmp(buf, want) != 0)
        fail_msg("sg_url_redacted(\"%s\") = \"%s\", want \"%s\"", s, buf, want);
}

/* ---- redis:// ------------------------------------------------------------------ */

static void test_tcp_basic(void **state)
{
    (void)state;
    sg_redis_url u = parse_ok("redis://127.0.0.1:6379");
    assert_int_equal(u.kind, SG_URL_TCP);
    assert_string_equal(u.host, "127.0.0.1");
    assert_int_equal(u.port, 6379);
    assert_int_equal(u.db, 0);
    assert_string_equal(u.user, "");
    assert_string_equal(u.password, "");
    assert_int_equal(u.nsentinels, 0);

    u = parse_ok("redis://redis.example.com:6380");
    assert_string_equal(u.host, "redis.example.com");
    assert_int_equal(u.port, 6380);

    u = parse_ok("redis://my_redis-1.internal:1");
    assert_string_equal(u.host, "my_redis-1.internal");
    assert_int_equal(u.port, 1);

    u = parse_ok("redis://h:65535");
    assert_int_equal(u.port, 65535);

    assert_string_equal(SG_DEFAULT_REDIS, "redis://127.0.0.1:6379");
    u = parse_ok(SG_DEFAULT_REDIS);
    assert_int_equal(u.port, 6379);
}

static void test_tcp_default_port(void **state)
{
    (void)state;
    sg_redis_url u = parse_ok("redis://localhost");
    assert_string_equal(u.host, "localhost");
    assert_int_equal(u.port, 6379);
    assert_int_equal(u.db, 0);

    u = parse_ok("redis://localhost/4");
    assert_int_equal(u.port, 6379);
    assert_int_equal(u.db, 4);

    u = parse_ok("redis://:pw@localhost");
    assert_int_equal(u.port, 6379);
    assert_string_equal(u.password, "pw");
}

static void test_tcp_db(void **state)
{
    (void)state;
    sg_redis_url u = parse_ok("redis://h:6379/3");
    assert_int_equal(u.db, 3);
    u = parse_ok("redis://h:6379/0");
    assert_int_equal(u.db, 0);
    u = parse_ok("redis://h:6379/");
    assert_int_equal(u.db, 0);
    u = parse_ok("redis://h:6379/15");
    assert_int_equal(u.db, 15);
    parse_bad("redis://h:6379/x", "database", NULL);
    parse_bad("redis://h:6379/-1", "database", NULL);
    parse_bad("redis://h:6379/1x", "database", NULL);
    parse_bad("redis://h:6379/1/2", "database", NULL);
    parse_bad("redis://h:6379/1000001", "database", NULL);
    parse_bad("redis://h:6379/99999999999999999999", "database", NULL);
}

static void test_tcp_userinfo(void **state)
{
    (void)state;
    sg_redis_url u = parse_ok("redis://alice:s3cret@h:6379/2");
    assert_string_equal(u.user, "alice");
    assert_string_equal(u.password, "s3cret");
    assert_string_equal(u.host, "h");
    assert_int_equal(u.port, 6379);
    assert_int_equal(u.db, 2);

    /* password only: bare userinfo, or an empty user */
    u = parse_ok("redis://s3cret@h:6379");
    assert_string_equal(u.user, "");
    assert_string_equal(u.password, "s3cret");
    u = parse_ok("redis://:s3cret@h:6379");
    assert_string_equal(u.user, "");
    assert_string_equal(u.password, "s3cret");

    /* percent-encoded password, with every reserved character */
    u = parse_ok("redis://seatgate:p%40ss%3Aw%2Fo%25rd%20%23%3F@h:6379/1");
    assert_string_equal(u.user, "seatgate");
    assert_string_equal(u.password, "p@ss:w/o%rd #?");
    assert_string_equal(u.host, "h");
    assert_int_equal(u.db, 1);
    u = parse_ok("redis://u%3Ax:%c3%A9@h");
    assert_string_equal(u.user, "u:x");
    assert_string_equal(u.password, "\xc3\xa9");

    /* an unencoded '@' in the password: the last '@' ends the userinfo */
    u = parse_ok("redis://u:a@b@h:6379");
    assert_string_equal(u.password, "a@b");
    assert_string_equal(u.host, "h");

    /* a ':' in the password after the user separator */
    u = parse_ok("redis://u:a:b@h");
    assert_string_equal(u.user, "u");
    assert_string_equal(u.password, "a:b");

    parse_bad("redis://u:%zz@h:6379", "password", "%zz");
    parse_bad("redis://u:abc%4@h:6379", "password", "abc%4");
    parse_bad("redis://u:abc%@h:6379", "password", "abc%");
    parse_bad("redis://u:a%00b@h:6379", "password", "a%00b");
}

static void test_tcp_userinfo_limits(void **state)
{
    (void)state;
    char url[1100], pw[300];
    /* password buffer is 256: 255 bytes fit, 256 do not */
    memset(pw, 'p', 255);
    pw[255] = '\0';
    snprintf(url, sizeof(url), "redis://:%s@h", pw);
    sg_redis_url u = parse_ok(url);
    assert_string_equal(u.password, pw);
    memset(pw, 'p', 256);
    pw[256] = '\0';
    snprintf(url, sizeof(url), "redis://:%s@h", pw);
    parse_bad(url, "password", pw);
    /* user buffer is 128 */
    char user[200];
    memset(user, 'u', 127);
    user[127] = '\0';
    snprintf(url, sizeof(url), "redis://%s:x@h", user);
    u = parse_ok(url);
    assert_string_equal(u.user, user);
    memset(user, 'u', 128);
    user[128] = '\0';
    snprintf(url, sizeof(url), "redis://%s:x@h", user);
    parse_bad(url, "user", NULL);
}

static void test_tcp_ipv6(void **state)
{
    (void)state;
    sg_redis_url u = parse_ok("redis://[::1]:6379");
    assert_string_equal(u.host, "::1");
    assert_int_equal(u.port, 6379);
    u = parse_ok("redis://[::1]");
    assert_string_equal(u.host, "::1");
    assert_int_equal(u.port, 6379);
    u = parse_ok("redis://u:p@[2001:db8::42]:7000/5");
    assert_string_equal(u.host, "2001:db8::42");
    assert_int_equal(u.port, 7000);
    assert_int_equal(u.db, 5);
    assert_string_equal(u.password, "p");
    parse_bad("redis://[::1:6379", "host", NULL);
    parse_bad("redis://[::1]6379", "host", NULL);
    parse_bad("redis://[::1]:", "host", NULL);
    parse_bad("redis://[]:6379", "host", NULL);
    parse_bad("redis://::1:6379", "host", NULL);
}

static void test_tcp_bad_port(void **state)
{
    (void)state;
    parse_bad("redis://h:0", "port", NULL);
    parse_bad("redis://h:65536", "port", NULL);
    parse_bad("redis://h:99999", "port", NULL);
    parse_bad("redis://h:abc", "port", NULL);
    parse_bad("redis://h:", "port", NULL);
    parse_bad("redis://h:-1", "port", NULL);
    parse_bad("redis://h:+1", "port", NULL);
    parse_bad("redis://h:6379x", "port", NULL);
    parse_bad("redis://h:1234567", "port", NULL);
    parse_bad("redis://h:63:79", "port", NULL);
    parse_bad("redis://u:s3cret@h:0", "port", "s3cret");
    parse_bad("redis://u:s3cret@h:abc/1", "port", "s3cret");
}

static void test_tcp_bad_host(void **state)
{
    (void)state;
    parse_bad("redis://", "host", NULL);
    parse_bad("redis://:6379", "host", NULL);
    parse_bad("redis:///0", "host", NULL);
    parse_bad("redis://u:p@", "host", NULL);
    parse_bad("redis://u:p@:6379", "host", NULL);
    parse_bad("redis://h!:6379", "host", NULL);
    parse_bad("redis://h,i:6379", "host", NULL);
    parse_bad("redis://h\xc3\xa9:6379", "host", NULL);
    parse_bad("redis://h%41:6379", "host", NULL);
    char url[400];
    char host[300];
    memset(host, 'h', 256);
    host[256] = '\0';
    snprintf(url, sizeof(url), "redis://%s:6379", host);
    parse_bad(url, "host", NULL);
    host[255] = '\0';
    snprintf(url, sizeof(url), "redis://%s:6379", host);
    sg_redis_url u = parse_ok(url);
    assert_int_equal(strlen(u.host), 255);
}

static void test_empty_password_at(void **state)
{
    (void)state;
    /* "redis://@h": an empty userinfo means no password */
    sg_redis_url u;
    char err[SG_ERR_MAX];
    if (sg_url_parse("redis://@h", &u, err, sizeof(err)) == 0) {
        assert_string_equal(u.password, "");
        assert_string_equal(u.host, "h");
    }
}

/* ---- unix:// ----------------------------------------------------------------- */

static void test_unix(void **state)
{
    (void)state;
    sg_redis_url u = parse_ok("unix:///var/run/redis/redis-server.sock");
    assert_int_equal(u.kind, SG_URL_UNIX);
    assert_string_equal(u.path, "/var/run/redis/redis-server.sock");
    assert_int_equal(u.db, 0);
    assert_string_equal(u.password, "");

    u = parse_ok("unix:///tmp/redis.sock?db=3");
    assert_string_equal(u.path, "/tmp/redis.sock");
    assert_int_equal(u.db, 3);

    u = parse_ok("unix:///tmp/redis.sock?db=2&user=seatgate&password=p%26w");
    assert_int_equal(u.db, 2);
    assert_string_equal(u.user, "seatgate");
    assert_string_equal(u.password, "p&w");

    u = parse_ok("unix:///tmp/my%20redis.sock");
    assert_string_equal(u.path, "/tmp/my redis.sock");

    parse_bad("unix://", "absolute", NULL);
    parse_bad("unix://tmp/redis.sock", "absolute", NULL);
    parse_bad("unix://?db=1", "absolute", NULL);
    parse_bad("unix:///tmp/r.sock?db=x", "database", NULL);
    parse_bad("unix:///tmp/r.sock?db=", "database", NULL);
    parse_bad("unix:///tmp/r.sock?db=-1", "database", NULL);
    parse_bad("unix:///tmp/r.sock?", "parameter", NULL);
    parse_bad("unix:///tmp/r.sock?db=1&", "parameter", NULL);
    parse_bad("unix:///tmp/r.sock?timeout=5", "parameter", NULL);
    parse_bad("unix:///tmp/r.sock?password=%zz", "password", "%zz");
    parse_bad("unix:///tmp/r%00.sock", "path", NULL);
    parse_bad("unix:///tmp/r.sock?db=x&password=s3cret", "database", "s3cret");
    parse_bad("unix:///tmp/r.sock?passwd=s3cret", "parameter", "s3cret");

    char url[400], path[300];
    path[0] = '/';
    memset(path + 1, 'p', 255);
    path[256] = '\0';
    snprintf(url, sizeof(url), "unix://%s", path);
    parse_bad(url, "too long", NULL);
    path[255] = '\0';
    snprintf(url, sizeof(url), "unix://%s", path);
    u = parse_ok(url);
    assert_string_equal(u.path, path);
}

/* ---- sentinel:// --------------------------------------------------------------- */

static void test_sentinel(void **state)
{
    (void)state;
    sg_redis_url u = parse_ok("sentinel://h1:26379,h2:26380/mymaster");
    assert_int_equal(u.kind, SG_URL_SENTINEL);
    assert_int_equal(u.nsentinels, 2);
    assert_string_equal(u.sentinels[0].host, "h1");
    assert_int_equal(u.sentinels[0].port, 26379);
    assert_string_equal(u.sentinels[1].host, "h2");
    assert_int_equal(u.sentinels[1].port, 26380);
    assert_string_equal(u.master, "mymaster");
    assert_int_equal(u.db, 0);

    u = parse_ok("sentinel://s1/mymaster");
    assert_int_equal(u.nsentinels, 1);
    assert_string_equal(u.sentinels[0].host, "s1");
    assert_int_equal(u.sentinels[0].port, 26379); /* default sentinel port */

    u = parse_ok("sentinel://:s3cret@h1:26379,[::1]:26380,10.0.0.3/seatgate-master/4");
    assert_string_equal(u.password, "s3cret");
    assert_int_equal(u.nsentinels, 3);
    assert_string_equal(u.sentinels[1].host, "::1");
    assert_int_equal(u.sentinels[1].port, 26380);
    assert_string_equal(u.sentinels[2].host, "10.0.0.3");
    assert_int_equal(u.sentinels[2].port, 26379);
    assert_string_equal(u.master, "seatgate-master");
    assert_int_equal(u.db, 4);

    u = parse_ok("sentinel://alice:pw@h/m");
    assert_string_equal(u.user, "alice");
    assert_string_equal(u.password, "pw");

    u = parse_ok("sentinel://h/m/");
    assert_int_equal(u.db, 0);
}

static void test_sentinel_errors(void **state)
{
    (void)state;
    parse_bad("sentinel://h1:26379", "master", NULL);
    parse_bad("sentinel://h1:26379,h2:26380", "master", NULL);
    parse_bad("sentinel://h1:26379/", "master", NULL);
    parse_bad("sentinel://h1:26379//", "master", NULL);
    parse_bad("sentinel://h1:26379/my}master", "master", NULL);
    parse_bad("sentinel://h1:26379/m:x", "master", NULL);
    parse_bad("sentinel:///m", "sentinel", NULL);
    parse_bad("sentinel://,h1/m", "sentinel", NULL);
    parse_bad("sentinel://h1,,h2/m", "sentinel", NULL);
    parse_bad("sentinel://h1,/m", "sentinel", NULL);
    parse_bad("sentinel://h1:0/m", "sentinel", NULL);
    parse_bad("sentinel://h1:65536/m", "sentinel", NULL);
    parse_bad("sentinel://h1:abc/m", "sentinel", NULL);
    parse_bad("sentinel://h1/m/x", "database", NULL);
    parse_bad("sentinel://:s3cret@h1:0/m", NULL, "s3cret");

    /* at most SG_SENTINELS_MAX */
    char url[512];
    int o = snprintf(url, sizeof(url), "sentinel://");
    for (int i = 0; i < SG_SENTINELS_MAX; i++)
        o += snprintf(url + o, sizeof(url) - (size_t)o, "%sh%d:%d", i ? "," : "", i, 26379 + i);
    snprintf(url + o, sizeof(url) - (size_t)o, "/m");
    sg_redis_url u = parse_ok(url);
    assert_int_equal(u.nsentinels, SG_SENTINELS_MAX);
    assert_string_equal(u.sentinels[SG_SENTINELS_MAX - 1].host, "h7");
    assert_int_equal(u.sentinels[SG_SENTINELS_MAX - 1].port, 26379 + SG_SENTINELS_MAX - 1);
    o = snprintf(url, sizeof(url), "sentinel://");
    for (int i = 0; i <= SG_SENTINELS_MAX; i++)
        o += snprintf(url + o, sizeof(url) - (size_t)o, "%sh%d", i ? "," : "", i);
    snprintf(url + o, sizeof(url) - (size_t)o, "/m");
    parse_bad(url, "sentinels", NULL);
}

/* ---- general errors -------------------------------------------------------------- */

static void test_cluster(void **state)
{
    (void)state;
    sg_redis_url u = parse_ok("redis+cluster://seatgate-decide:pw@10.0.0.1:7000,10.0.0.2,[::1]:7002");
    assert_int_equal(u.kind, SG_URL_CLUSTER);
    assert_int_equal(u.nsentinels, 3);
    assert_string_equal(u.sentinels[0].host, "10.0.0.1");
    assert_int_equal(u.sentinels[0].port, 7000);
    assert_int_equal(u.sentinels[1].port, 6379);
    assert_string_equal(u.sentinels[2].host, "::1");
    assert_string_equal(u.user, "seatgate-decide");
    assert_string_equal(u.password, "pw");
    char buf[512];
    sg_url_redacted(&u, buf, sizeof(buf));
    assert_string_equal(buf, "redis+cluster://seatgate-decide:***@10.0.0.1:7000,10.0.0.2:6379,[::1]:7002");
    u = parse_ok("redis+cluster://h:1/0");
    assert_int_equal(u.db, 0);
    parse_bad("redis+cluster://", "no node", NULL);
    parse_bad("redis+cluster://h:1,", "bad node", NULL);
    parse_bad("redis+cluster://u:s3cret@h:1/2", "only database 0", "s3cret");
    parse_bad("redis+cluster://h:99999", "bad node", NULL);
}

/* the Redis Cluster key hash, against the values of the Redis documentation
 * (CLUSTER KEYSLOT) and the hash tag rules */
static void test_key_slot(void **state)
{
    (void)state;
    assert_int_equal(sg_key_slot("foo", 3), 12182);
    assert_int_equal(sg_key_slot("somekey", 7), 11058);
    assert_int_equal(sg_key_slot("{user1000}.following", 20), sg_key_slot("user1000", 8));
    assert_int_equal(sg_key_slot("{}x", 3), 10595);      /* an empty tag: the whole key */
    assert_int_equal(sg_key_slot("x{y", 3), 2740);       /* no closing brace */
    assert_int_equal(sg_key_slot("a{}{b}", 6), 15033);   /* the first braces only */
    assert_int_equal(sg_key_slot("sg:{techs}:conf", 15), sg_key_slot("sg:{techs}:leases", 17));
}

static void test_bad_scheme(void **state)
{
    (void)state;
    parse_bad(NULL, "empty", NULL);
    parse_bad("", "empty", NULL);
    parse_bad("127.0.0.1:6379", "expected", NULL);
    parse_bad("localhost", "expected", NULL);
    parse_bad("http://h:6379", "expected", NULL);
    parse_bad("rediss://h:6379", "expected", NULL);
    parse_bad("redis:/h:6379", "expected", NULL);
    parse_bad("redis:h", "expected", NULL);
    parse_bad("unix:/tmp/r.sock", "expected", NULL);
    parse_bad("tcp://h", "expected", NULL);
    parse_bad("://h", "expected", NULL);
    parse_bad("http://u:s3cret@h:6379", "expected", "s3cret");
}

static void test_spaces_and_controls(void **state)
{
    (void)state;
    parse_bad(" redis://h:6379", "space", NULL);
    parse_bad("redis://h:6379 ", "space", NULL);
    parse_bad("redis://h :6379", "space", NULL);
    parse_bad("redis://h: 6379", "space", NULL);
    parse_bad("redis://u:pass word@h", "space", "pass word");
    parse_bad("redis://h:6379\n", "control", NULL);
    parse_bad("redis://h:6379\r\n", "control", NULL);
    parse_bad("redis://h\t:6379", "control", NULL);
    parse_bad("redis://h\x7f:6379", "control", NULL);
    parse_bad("unix:///tmp/my redis.sock", "space", NULL);
    parse_bad("sentinel://h1, h2/m", "space", NULL);
}

static void test_too_long(void **state)
{
    (void)state;
    char url[1100];
    int o = snprintf(url, sizeof(url), "unix:///");
    memset(url + o, 'x', sizeof(url) - (size_t)o - 1);
    url[sizeof(url) - 1] = '\0';
    parse_bad(url, "too long", NULL);
}

static void test_parse_clears_output(void **state)
{
    (void)state;
    sg_redis_url u;
    memset(&u, 0xa5, sizeof(u));
    char err[SG_ERR_MAX];
    assert_int_equal(sg_url_parse("redis://h", &u, err, sizeof(err)), 0);
    assert_string_equal(u.user, "");
    assert_string_equal(u.password, "");
    assert_int_equal(u.nsentinels, 0);
    assert_string_equal(u.master, "");
    /* err may be NULL */
    assert_int_equal(sg_url_parse("bogus", &u, NULL, 0), -1);
    assert_int_equal(sg_url_parse("redis://h", &u, NULL, 0), 0);
}

/* ---- sg_url_redacted ---------------------------------------------------------------- */

static void test_redacted_forms(void **state)
{
    (void)state;
    redacted_is("redis://127.0.0.1:6379", "redis://127.0.0.1:6379/0");
    redacted_is("redis://h", "redis://h:6379/0");
    redacted_is("redis://h:6380/3", "redis://h:6380/3");
    redacted_is("redis://:s3cret@h:6379/1", "redis://***@h:6379/1");
    redacted_is("redis://s3cret@h:6379/1", "redis://***@h:6379/1");
    redacted_is("redis://alice:s3cret@h:6379", "redis://alice:***@h:6379/0");
    redacted_is("unix:///tmp/r.sock", "unix:///tmp/r.sock?db=0");
    redacted_is("unix:///tmp/r.sock?db=2&password=s3cret", "unix:///tmp/r.sock?db=2");
    redacted_is("sentinel://h1:26379,h2:26380/mymaster", "sentinel://h1:26379,h2:26380/mymaster");
    redacted_is("sentinel://:s3cret@h1/m", "sentinel://h1:26379/m");
}

static void test_redacted_ipv6(void **state)
{
    (void)state;
    /* an IPv6 address keeps its brackets, so host and port stay apart */
    redacted_is("redis://[::1]:6379", "redis://[::1]:6379/0");
    redacted_is("redis://:pw@[2001:db8::1]:7000/2", "redis://***@[2001:db8::1]:7000/2");
    redacted_is("sentinel://[::1]:26379,h2/m", "sentinel://[::1]:26379,h2:26379/m");
}

static void test_redacted_user_only(void **state)
{
    (void)state;
    /* a user with an empty password must not read back as a password */
    redacted_is("redis://alice:@h", "redis://alice:@h:6379/0");
}

static void test_redacted_roundtrip(void **state)
{
    (void)state;
    /* what is logged parses back to the same address (the password aside) */
    static const char *const urls[] = {
        "redis://127.0.0.1:6379",     "redis://h:6380/3",          "redis://[::1]:6379/2",
        "redis://alice:s3cret@h:1/1", "redis://:s3cret@[fe80::1]", "unix:///tmp/r.sock?db=4",
        "sentinel://a:1,[::2]:3/m/0",
    };
    for (size_t i = 0; i < sizeof(urls) / sizeof(urls[0]); i++) {
        sg_redis_url a = parse_ok(urls[i]);
        char buf[2048];
        sg_url_redacted(&a, buf, sizeof(buf));
        sg_redis_url b = parse_ok(buf);
        assert_int_equal(a.kind, b.kind);
        assert_string_equal(a.host, b.host);
        assert_int_equal(a.port, b.port);
        assert_string_equal(a.path, b.path);
        assert_string_equal(a.user, b.user);
        assert_int_equal(a.nsentinels, b.nsentinels);
        for (int k = 0; k < a.nsentinels; k++) {
            assert_string_equal(a.sentinels[k].host, b.sentinels[k].host);
            assert_int_equal(a.sentinels[k].port, b.sentinels[k].port);
        }
        assert_string_equal(a.master, b.master);
        if (a.kind != SG_URL_SENTINEL)
            assert_int_equal(a.db, b.db);
    }
}

static void test_redacted_never_shows_password(void **state)
{
    (void)state;
    static const char *const urls[] = {
        "redis://alice:Zq9xW2vY@h:6379/2",
        "redis://Zq9xW2vY@h",
        "redis://:Zq9xW2vY@[::1]",
        "redis://u:Zq9x%57%32vY@h", /* decodes to Zq9xW2vY */
        "unix:///tmp/r.sock?password=Zq9xW2vY",
        "unix:///tmp/r.sock?user=u&password=Zq9xW2vY&db=1",
        "sentinel://:Zq9xW2vY@h1,h2/m",
        "sentinel://u:Zq9xW2vY@h1/m/3",
    };
    for (size_t i = 0; i < sizeof(urls) / sizeof(urls[0]); i++) {
        sg_redis_url u = parse_ok(urls[i]);
        assert_string_equal(u.password, "Zq9xW2vY");
        char buf[2048];
        sg_url_redacted(&u, buf, sizeof(buf));
        if (strstr(buf, "Zq9x") || strstr(buf, "W2vY"))
            fail_msg("sg_url_redacted(\"%s\") = \"%s\" shows the password", urls[i], buf);
        /* nor does any truncation of it */
        for (size_t len = 0; len <= strlen(buf) + 1; len++) {
            char small[2048];
            memset(small, 'Q', sizeof(small));
            sg_url_redacted(&u, small, len);
            if (len > 0) {
                assert_non_null(memchr(small, '\0', len));
                assert_null(strstr(small, "Zq9x"));
            }
            assert_int_equal(small[len], 'Q'); /* nothing written past len */
        }
    }
}

static void test_redacted_small_buffers(void **state)
{
    (void)state;
    /* sentinel output is built piecewise: check it never overruns */
    sg_redis_url u = parse_ok("sentinel://aaaaaaaa:1,bbbbbbbb:2,cccccccc:3,dddddddd:4/master-name");
    char full[512];
    sg_url_redacted(&u, full, sizeof(full));
    assert_string_equal(full, "sentinel://aaaaaaaa:1,bbbbbbbb:2,cccccccc:3,dddddddd:4/master-name");
    for (size_t len = 0; len <= strlen(full) + 1; len++) {
        char buf[600];
        memset(buf, 'Q', sizeof(buf));
        sg_url_redacted(&u, buf, len);
        if (len > 0) {
            assert_int_equal(strlen(buf), len - 1 < strlen(full) ? len - 1 : strlen(full));
            assert_memory_equal(buf, full, strlen(buf));
        }
        assert_int_equal(buf[len], 'Q');
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tcp_basic),
        cmocka_unit_test(test_tcp_default_port),
        cmocka_unit_test(test_tcp_db),
        cmocka_unit_test(test_tcp_userinfo),
        cmocka_unit_test(test_tcp_userinfo_limits),
        cmocka_unit_test(test_tcp_ipv6),
        cmocka_unit_test(test_tcp_bad_port),
        cmocka_unit_test(test_tcp_bad_host),
        cmocka_unit_test(test_empty_password_at),
        cmocka_unit_test(test_unix),
        cmocka_unit_test(test_sentinel),
        cmocka_unit_test(test_sentinel_errors),
        cmocka_unit_test(test_cluster),
        cmocka_unit_test(test_key_slot),
        cmocka_unit_test(test_bad_scheme),
        cmocka_unit_test(test_spaces_and_controls),
        cmocka_unit_test(test_too_long),
        cmocka_unit_test(test_parse_clears_output),
        cmocka_unit_test(test_redacted_forms),
        cmocka_unit_test(test_redacted_ipv6),
        cmocka_unit_test(test_redacted_user_only),
        cmocka_unit_test(test_redacted_roundtrip),
        cmocka_unit_test(test_redacted_never_shows_password),
        cmocka_unit_test(test_redacted_small_buffers),
    };
    return cmocka_run_group_tests_name("url", tests, NULL, NULL);
}
