/* Unit tests: identity, group and name validation (common/util.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "seatgate.h"

typedef int (*validator)(const char *, char *, size_t);

/* A string of n copies of c. */
static const char *rep(char *buf, size_t n, char c)
{
    memset(buf, c, n);
    buf[n] = '\0';
    return buf;
}

/* Asserts that v rejects s with a non-empty error message containing want. */
static void rejects(validator v, const char *s, const char *want)
{
    char err[SG_ERR_MAX];
    err[0] = '\0';
    int rc = v(s, err, sizeof(err));
    if (rc != -1)
        fail_msg("accepted '%s'", s ? s : "(null)");
    assert_true(err[0] != '\0');
    if (want && strstr(err, want) == NULL)
        fail_msg("error for '%s' is '%s', expected it to mention '%s'", s ? s : "(null)", err,
                 want);
}

static void accepts(validator v, const char *s)
{
    char err[SG_ERR_MAX] = "";
    if (v(s, err, sizeof(err)) != 0)
        fail_msg("rejected '%s': %s", s, err);
}

/* ---- sg_valid_ident -------------------------------------------------------- */

static void test_ident_empty(void **state)
{
    (void)state;
    rejects(sg_valid_ident, "", "empty");
    rejects(sg_valid_ident, NULL, "empty");
}

static void test_ident_length(void **state)
{
    (void)state;
    char buf[SG_IDENT_MAX + 8];
    accepts(sg_valid_ident, rep(buf, SG_IDENT_MAX, 'a'));
    rejects(sg_valid_ident, rep(buf, SG_IDENT_MAX + 1, 'a'), "longer");
    accepts(sg_valid_ident, "a");
    /* multibyte: the limit is in bytes, not characters */
    char mb[SG_IDENT_MAX + 8];
    for (size_t i = 0; i < SG_IDENT_MAX; i += 2)
        memcpy(mb + i, "\xc3\xa9", 2); /* é */
    mb[SG_IDENT_MAX] = '\0';
    accepts(sg_valid_ident, mb);
    memcpy(mb + SG_IDENT_MAX, "\xe2\x82\xac", 4); /* + € makes it 259 bytes */
    rejects(sg_valid_ident, mb, "longer");
    /* a multibyte character that straddles the limit */
    rep(mb, SG_IDENT_MAX - 2, 'a');
    memcpy(mb + SG_IDENT_MAX - 2, "\xc3\xa9", 3); /* exactly 256 bytes */
    accepts(sg_valid_ident, mb);
    rep(mb, SG_IDENT_MAX - 1, 'a');
    memcpy(mb + SG_IDENT_MAX - 1, "\xc3\xa9", 3); /* 257 bytes */
    rejects(sg_valid_ident, mb, "longer");
}

static void test_ident_control(void **state)
{
    (void)state;
    char s[4] = "a?b";
    for (int c = 1; c < 0x20; c++) {
        s[1] = (char)c;
        rejects(sg_valid_ident, s, "control");
    }
    rejects(sg_valid_ident, "alice\r\n", "control");
    rejects(sg_valid_ident, "alice\nbob", "control");
    rejects(sg_valid_ident, "al\rice", "control");
    rejects(sg_valid_ident, "\talice", "control");
    rejects(sg_valid_ident,
            "ali\x7f"
            "ce",
            "control");
    rejects(sg_valid_ident, "\x7f", "control");
    /* the byte position is reported */
    char err[SG_ERR_MAX];
    assert_int_equal(sg_valid_ident("abc\ndef", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "byte 3"));
}

static void test_ident_utf8_invalid(void **state)
{
    (void)state;
    rejects(sg_valid_ident, "a\x80", "UTF-8"); /* lone continuation byte */
    rejects(sg_valid_ident,
            "a\xbf"
            "b",
            "UTF-8");
    rejects(sg_valid_ident, "\xc3", "UTF-8"); /* truncated 2-byte */
    rejects(sg_valid_ident,
            "\xc3"
            "a",
            "UTF-8");
    rejects(sg_valid_ident, "\xe2\x82", "UTF-8");     /* truncated 3-byte */
    rejects(sg_valid_ident, "\xf0\x9f\x98", "UTF-8"); /* truncated 4-byte */
    rejects(sg_valid_ident, "\xfe", "UTF-8");
    rejects(sg_valid_ident, "\xff", "UTF-8");
    rejects(sg_valid_ident, "\xf5\x80\x80\x80", "UTF-8");     /* > U+10FFFF lead */
    rejects(sg_valid_ident, "\xf4\x90\x80\x80", "UTF-8");     /* U+110000 */
    rejects(sg_valid_ident, "\xf8\x88\x80\x80\x80", "UTF-8"); /* 5-byte form */
}

static void test_ident_utf8_overlong(void **state)
{
    (void)state;
    rejects(sg_valid_ident, "\xc0\xaf", "UTF-8"); /* '/' */
    rejects(sg_valid_ident, "\xc1\xbf", "UTF-8");
    rejects(sg_valid_ident,
            "a\xc0\x80"
            "b",
            "UTF-8"); /* modified-UTF-8 NUL */
    rejects(sg_valid_ident, "\xe0\x80\xaf", "UTF-8");
    rejects(sg_valid_ident, "\xe0\x9f\xbf", "UTF-8"); /* U+07FF as 3 bytes */
    rejects(sg_valid_ident, "\xf0\x80\x80\xaf", "UTF-8");
    rejects(sg_valid_ident, "\xf0\x8f\xbf\xbf", "UTF-8"); /* U+FFFF as 4 bytes */
}

static void test_ident_utf8_surrogates(void **state)
{
    (void)state;
    rejects(sg_valid_ident, "\xed\xa0\x80", "UTF-8");             /* U+D800 */
    rejects(sg_valid_ident, "\xed\xaf\xbf", "UTF-8");             /* U+DBFF */
    rejects(sg_valid_ident, "\xed\xb0\x80", "UTF-8");             /* U+DC00 */
    rejects(sg_valid_ident, "\xed\xbf\xbf", "UTF-8");             /* U+DFFF */
    rejects(sg_valid_ident, "\xed\xa0\xbd\xed\xb8\x80", "UTF-8"); /* CESU-8 pair */
    accepts(sg_valid_ident, "\xed\x9f\xbf");                      /* U+D7FF, just below */
    accepts(sg_valid_ident, "\xee\x80\x80");                      /* U+E000, just above */
}

static void test_ident_utf8_valid(void **state)
{
    (void)state;
    accepts(sg_valid_ident, "jos\xc3\xa9");                  /* josé */
    accepts(sg_valid_ident, "\xe5\xb1\xb1\xe7\x94\xb0");     /* 山田 */
    accepts(sg_valid_ident, "\xf0\x9f\x98\x80");             /* U+1F600 */
    accepts(sg_valid_ident, "\xf4\x8f\xbf\xbf");             /* U+10FFFF */
    accepts(sg_valid_ident, "\xc2\x80");                     /* U+0080 */
    accepts(sg_valid_ident, "\xe0\xa0\x80");                 /* U+0800 */
    accepts(sg_valid_ident, "\xf0\x90\x80\x80");             /* U+10000 */
    accepts(sg_valid_ident, "M\xc3\xbcller, J\xc3\xbcrgen"); /* comma is fine in ids */
}

static void test_ident_punctuation(void **state)
{
    (void)state;
    /* user ids only appear after the {POOL} hash tag, so braces and colons are fine */
    accepts(sg_valid_ident, "a}b:c");
    accepts(sg_valid_ident, "{x}");
    accepts(sg_valid_ident, "alice@example.com");
    accepts(sg_valid_ident, "DOMAIN\\alice");
    accepts(sg_valid_ident, "a=b,c");
    accepts(sg_valid_ident, "first last");
    accepts(sg_valid_ident, "sess-0123:4567/89");
}

static void test_ident_spaces(void **state)
{
    (void)state;
    rejects(sg_valid_ident, " alice", "space");
    rejects(sg_valid_ident, "alice ", "space");
    rejects(sg_valid_ident, " ", "space");
    rejects(sg_valid_ident, "  ", "space");
    accepts(sg_valid_ident, "a b");
    /* a non-breaking space is not ASCII space; it is valid UTF-8 */
    accepts(sg_valid_ident, "alice\xc2\xa0");
}

static void test_ident_err_optional(void **state)
{
    (void)state;
    /* err may be NULL or zero-length */
    assert_int_equal(sg_valid_ident("", NULL, 0), -1);
    assert_int_equal(sg_valid_ident("\n", NULL, 0), -1);
    assert_int_equal(sg_valid_ident("ok", NULL, 0), 0);
    char one[1] = {'x'};
    assert_int_equal(sg_valid_ident("", one, 0), -1);
    assert_int_equal(one[0], 'x');
    /* a tiny buffer is truncated, not overrun */
    char small[8];
    memset(small, 'Z', sizeof(small));
    assert_int_equal(sg_valid_ident(" padded", small, 4), -1);
    assert_int_equal(small[3], '\0');
    assert_int_equal(small[4], 'Z');
}

/* ---- sg_valid_group ---------------------------------------------------------- */

static void test_group(void **state)
{
    (void)state;
    char buf[SG_IDENT_MAX + 8];
    accepts(sg_valid_group, "wheel");
    accepts(sg_valid_group, "Domain Admins");
    accepts(sg_valid_group, "it-ops_2.eu");
    accepts(sg_valid_group, "a}b:c");
    accepts(sg_valid_group, "gr\xc3\xbcn");
    accepts(sg_valid_group, rep(buf, SG_IDENT_MAX, 'g'));
    rejects(sg_valid_group, rep(buf, SG_IDENT_MAX + 1, 'g'), "longer");
    rejects(sg_valid_group, "", "empty");
    rejects(sg_valid_group, NULL, "empty");
    /* ',' and '=' separate lists and GROUP=K pairs */
    rejects(sg_valid_group, "a,b", "','");
    rejects(sg_valid_group, ",", "','");
    rejects(sg_valid_group, "a=1", "'='");
    rejects(sg_valid_group, "=", "'='");
    rejects(sg_valid_group, "ops\n", "control");
    rejects(sg_valid_group, "ops\r", "control");
    rejects(sg_valid_group, "o\x7fps", "control");
    rejects(sg_valid_group, " ops", "space");
    rejects(sg_valid_group, "ops ", "space");
    rejects(sg_valid_group, "\xc0\xac", "UTF-8"); /* overlong ',' must not sneak through */
    rejects(sg_valid_group, "\xed\xa0\x80", "UTF-8");
    rejects(sg_valid_group, "\xff", "UTF-8");
}

/* ---- sg_valid_name (pools and features) ---------------------------------------- */

static void test_name(void **state)
{
    (void)state;
    char buf[SG_POOL_MAX + 8];
    accepts(sg_valid_name, "technicians");
    accepts(sg_valid_name, "change-advanced");
    accepts(sg_valid_name, "cmdb");
    accepts(sg_valid_name, "Pool_2.eu-west");
    accepts(sg_valid_name, "0");
    accepts(sg_valid_name, "9lives");
    accepts(sg_valid_name, "a-");
    accepts(sg_valid_name, rep(buf, SG_POOL_MAX, 'p'));
    rejects(sg_valid_name, rep(buf, SG_POOL_MAX + 1, 'p'), "longer");
    rejects(sg_valid_name, "", "empty");
    rejects(sg_valid_name, NULL, "empty");
    /* a pool name sits inside the {POOL} hash tag: no braces, colons, spaces */
    rejects(sg_valid_name, "a}b:c", "not allowed");
    rejects(sg_valid_name, "a{b", "not allowed");
    rejects(sg_valid_name, "a}b", "not allowed");
    rejects(sg_valid_name, "a:b", "not allowed");
    rejects(sg_valid_name, "a b", "not allowed");
    rejects(sg_valid_name, " a", "not allowed");
    rejects(sg_valid_name, "a ", "not allowed");
    rejects(sg_valid_name, "a,b", "not allowed");
    rejects(sg_valid_name, "a=b", "not allowed");
    rejects(sg_valid_name, "a/b", "not allowed");
    rejects(sg_valid_name, "a*", "not allowed");
    /* must start with a letter or digit */
    rejects(sg_valid_name, "-a", "not allowed");
    rejects(sg_valid_name, "_a", "not allowed");
    rejects(sg_valid_name, ".a", "not allowed");
    rejects(sg_valid_name, "..", "not allowed");
    rejects(sg_valid_name, "tech\n", "not allowed");
    rejects(sg_valid_name, "tech\r", "not allowed");
    rejects(sg_valid_name,
            "te\x7f"
            "ch",
            "not allowed");
    rejects(sg_valid_name, "\x01", "not allowed");
    /* names are ASCII only */
    rejects(sg_valid_name, "caf\xc3\xa9", "not allowed");
    rejects(sg_valid_name, "\xed\xa0\x80", "not allowed");
    rejects(sg_valid_name, "\xc0\xaf", "not allowed");
}

static void test_name_long_error_is_bounded(void **state)
{
    (void)state;
    char buf[2000];
    rep(buf, sizeof(buf) - 1, 'x');
    char err[SG_ERR_MAX];
    assert_int_equal(sg_valid_name(buf, err, sizeof(err)), -1);
    assert_true(strlen(err) < sizeof(err));
    assert_null(strstr(err, buf + sizeof(buf) - 1 - 100)); /* not the whole name */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ident_empty),
        cmocka_unit_test(test_ident_length),
        cmocka_unit_test(test_ident_control),
        cmocka_unit_test(test_ident_utf8_invalid),
        cmocka_unit_test(test_ident_utf8_overlong),
        cmocka_unit_test(test_ident_utf8_surrogates),
        cmocka_unit_test(test_ident_utf8_valid),
        cmocka_unit_test(test_ident_punctuation),
        cmocka_unit_test(test_ident_spaces),
        cmocka_unit_test(test_ident_err_optional),
        cmocka_unit_test(test_group),
        cmocka_unit_test(test_name),
        cmocka_unit_test(test_name_long_error_is_bounded),
    };
    return cmocka_run_group_tests_name("ident", tests, NULL, NULL);
}
