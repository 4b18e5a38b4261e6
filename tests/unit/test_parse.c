/* Unit tests: durations, integers, result and seat names (common/util.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "seatgate.h"

#define YEAR_S (365L * 86400)

static void dur_ok(const char *s, long want)
{
    long got = sg_parse_duration(s);
    if (got != want)
        fail_msg("sg_parse_duration(\"%s\") = %ld, want %ld", s, got, want);
}

static void dur_bad(const char *s)
{
    long got = sg_parse_duration(s);
    if (got != -1)
        fail_msg("sg_parse_duration(\"%s\") = %ld, want -1", s ? s : "(null)", got);
}

static void test_duration_forms(void **state)
{
    (void)state;
    dur_ok("900", 900);
    dur_ok("90s", 90);
    dur_ok("15m", 900);
    dur_ok("2h", 7200);
    dur_ok("1d", 86400);
    dur_ok("1", 1);
    dur_ok("1s", 1);
    dur_ok("1m", 60);
    dur_ok("1h", 3600);
    dur_ok("12h", 43200);
    dur_ok("30d", 30 * 86400);
    dur_ok("0", 0);
    dur_ok("0s", 0);
    dur_ok("0d", 0);
    dur_ok("0900", 900); /* leading zeros are decimal, not octal */
    dur_ok("010m", 600);
}

static void test_duration_limits(void **state)
{
    (void)state;
    char s[32];
    /* a year is the longest duration, in every unit */
    snprintf(s, sizeof(s), "%ld", YEAR_S);
    dur_ok(s, YEAR_S);
    snprintf(s, sizeof(s), "%ld", YEAR_S + 1);
    dur_bad(s);
    snprintf(s, sizeof(s), "%lds", YEAR_S);
    dur_ok(s, YEAR_S);
    dur_ok("525600m", YEAR_S);
    dur_bad("525601m");
    dur_ok("8760h", YEAR_S);
    dur_bad("8761h");
    dur_ok("365d", YEAR_S);
    dur_bad("366d");
}

static void test_duration_rejects(void **state)
{
    (void)state;
    dur_bad(NULL);
    dur_bad("");
    dur_bad("-1");
    dur_bad("-1s");
    dur_bad("-0");
    dur_bad("+1");
    dur_bad("1x");
    dur_bad("1w");
    dur_bad("1y");
    dur_bad("1ms");
    dur_bad("1S");
    dur_bad("1M");
    dur_bad("1H");
    dur_bad("s");
    dur_bad("m");
    dur_bad("h");
    dur_bad("d");
    dur_bad("x");
    dur_bad("1ss");
    dur_bad("1hm");
    dur_bad("1h30m");
    dur_bad("1.5h");
    dur_bad("1,5h");
    dur_bad("0x10");
    dur_bad("1e3");
    dur_bad(" 1");
    dur_bad("1 ");
    dur_bad("1 s");
    dur_bad("\t1");
    dur_bad("1\n");
    dur_bad("abc");
}

static void test_duration_overflow(void **state)
{
    (void)state;
    dur_bad("9223372036854775807");  /* LONG_MAX */
    dur_bad("9223372036854775808");  /* LONG_MAX + 1 */
    dur_bad("99999999999999999999"); /* > 16 bytes */
    dur_bad("9999999999999999");     /* 16 bytes, in range for long, over a year */
    dur_bad("999999999999999d");     /* would overflow when multiplied */
    dur_bad("153722867280912931m");  /* LONG_MAX / 60 + 1 */
    dur_bad("2562047788015216h");
    dur_bad("106751991167301d");
    dur_bad("31536001");
    char big[64];
    memset(big, '9', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    dur_bad(big);
    big[sizeof(big) - 2] = 'd';
    dur_bad(big);
}

/* ---- sg_parse_long ----------------------------------------------------------- */

static void long_ok(const char *s, long min, long max, long want)
{
    long v = 12345;
    if (sg_parse_long(s, min, max, &v) != 0)
        fail_msg("sg_parse_long(\"%s\", %ld, %ld) failed", s, min, max);
    assert_int_equal(v, want);
}

static void long_bad(const char *s, long min, long max)
{
    long v = 12345;
    if (sg_parse_long(s, min, max, &v) != -1)
        fail_msg("sg_parse_long(\"%s\", %ld, %ld) accepted", s ? s : "(null)", min, max);
    assert_int_equal(v, 12345); /* untouched on error */
}

static void test_long(void **state)
{
    (void)state;
    long_ok("0", 0, 10, 0);
    long_ok("10", 0, 10, 10);
    long_ok("7", 7, 7, 7);
    long_ok("-5", -10, 10, -5);
    long_ok("-0", 0, 10, 0);
    long_ok("0010", 0, 100, 10);
    long_ok("60000", 1, 60000, 60000);
    long_ok("9223372036854775807", 0, LONG_MAX, LONG_MAX);
    long_ok("-9223372036854775808", LONG_MIN, 0, LONG_MIN);

    long_bad(NULL, 0, 10);
    long_bad("", 0, 10);
    long_bad("-", -10, 10);
    long_bad("--1", -10, 10);
    long_bad("+1", 0, 10);
    long_bad("11", 0, 10);
    long_bad("-1", 0, 10);
    long_bad("0", 1, 10);
    long_bad("60001", 1, 60000);
    long_bad("1x", 0, 10);
    long_bad("x1", 0, 10);
    long_bad("1.0", 0, 10);
    long_bad(" 1", 0, 10);
    long_bad("1 ", 0, 10);
    long_bad("1\n", 0, 10);
    long_bad("0x1", 0, 10);
    long_bad("1e2", 0, 1000);
    long_bad("1-", 0, 10);
    long_bad("9223372036854775808", 0, LONG_MAX);
    long_bad("-9223372036854775809", LONG_MIN, 0);
    long_bad("99999999999999999999999999", 0, LONG_MAX);
}

/* ---- result and seat names --------------------------------------------------- */

static void test_result_names(void **state)
{
    (void)state;
    static const char *const want[SG_RESULT_COUNT] = {
        "granted_named",    "granted_floating", "granted_free",   "denied_unassigned",
        "denied_exhausted", "denied_excluded",  "denied_feature", "denied_multiplexing",
        "denied_disabled",  "error_backend",
    };
    for (int i = 0; i < SG_RESULT_COUNT; i++) {
        assert_string_equal(sg_result_name((sg_result)i), want[i]);
        sg_result r = SG_RESULT_COUNT;
        assert_int_equal(sg_result_parse(want[i], &r), 0);
        assert_int_equal(r, i);
        /* round trip */
        r = SG_RESULT_COUNT;
        assert_int_equal(sg_result_parse(sg_result_name((sg_result)i), &r), 0);
        assert_int_equal(r, i);
    }
    assert_string_equal(sg_result_name(SG_RESULT_COUNT), "error_backend");
    assert_string_equal(sg_result_name((sg_result)-1), "error_backend");
    assert_string_equal(sg_result_name((sg_result)1000), "error_backend");

    sg_result r = SG_GRANTED_NAMED;
    assert_int_equal(sg_result_parse("", &r), -1);
    assert_int_equal(sg_result_parse("granted", &r), -1);
    assert_int_equal(sg_result_parse("GRANTED_NAMED", &r), -1);
    assert_int_equal(sg_result_parse("granted_named ", &r), -1);
    assert_int_equal(sg_result_parse("denied", &r), -1);
    assert_int_equal(sg_result_parse("ok", &r), -1);
    assert_int_equal(r, SG_GRANTED_NAMED);
}

static void test_result_granted(void **state)
{
    (void)state;
    for (int i = 0; i < SG_RESULT_COUNT; i++) {
        int want = i == SG_GRANTED_NAMED || i == SG_GRANTED_FLOATING || i == SG_GRANTED_FREE;
        assert_int_equal(sg_result_granted((sg_result)i) != 0, want);
        /* the name says it too */
        assert_int_equal(strncmp(sg_result_name((sg_result)i), "granted_", 8) == 0, want);
    }
    assert_false(sg_result_granted(SG_RESULT_COUNT));
}

static void test_seat_names(void **state)
{
    (void)state;
    assert_string_equal(sg_seat_name(SG_SEAT_NONE), "none");
    assert_string_equal(sg_seat_name(SG_SEAT_NAMED), "named");
    assert_string_equal(sg_seat_name(SG_SEAT_FLOATING), "floating");
    assert_string_equal(sg_seat_name(SG_SEAT_FREE), "free");
    assert_string_equal(sg_seat_name((sg_seat)99), "none");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_duration_forms),
        cmocka_unit_test(test_duration_limits),
        cmocka_unit_test(test_duration_rejects),
        cmocka_unit_test(test_duration_overflow),
        cmocka_unit_test(test_long),
        cmocka_unit_test(test_result_names),
        cmocka_unit_test(test_result_granted),
        cmocka_unit_test(test_seat_names),
    };
    return cmocka_run_group_tests_name("parse", tests, NULL, NULL);
}
