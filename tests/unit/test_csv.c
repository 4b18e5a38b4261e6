/* Unit tests: user import CSV, CSV quoting, RFC 3339 times (common/csv.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "seatgate.h"

#define HDR "user,groups,disabled,service_account\n"

/* Parses buf[0..len) and fails the test on an error. */
static sg_user_row *parse_len(const char *buf, size_t len, size_t *n)
{
    sg_user_row *rows = NULL;
    char err[SG_ERR_MAX] = "";
    if (sg_user_csv_parse(buf, len, &rows, n, err, sizeof(err)) != 0)
        fail_msg("rejected: %s", err);
    assert_non_null(rows);
    return rows;
}

static sg_user_row *parse(const char *csv, size_t *n)
{
    return parse_len(csv, strlen(csv), n);
}

/* Asserts that buf[0..len) is rejected with an error containing want1 and
 * want2 (either may be NULL), nothing returned. */
static void rejects_len(const char *buf, size_t len, const char *want1, const char *want2)
{
    sg_user_row *rows = (sg_user_row *)&rows; /* not NULL: the parser must clear it */
    size_t n = 99;
    char err[SG_ERR_MAX] = "";
    if (sg_user_csv_parse(buf, len, &rows, &n, err, sizeof(err)) != -1)
        fail_msg("accepted: %.*s", (int)len, buf);
    assert_null(rows);
    assert_int_equal(n, 0);
    assert_true(err[0] != '\0');
    assert_null(strchr(err, '\n'));
    if (want1 && strstr(err, want1) == NULL)
        fail_msg("error '%s' does not mention '%s'", err, want1);
    if (want2 && strstr(err, want2) == NULL)
        fail_msg("error '%s' does not mention '%s'", err, want2);
}

static void rejects(const char *csv, const char *want1, const char *want2)
{
    rejects_len(csv, strlen(csv), want1, want2);
}

/* ---- the format ------------------------------------------------------------ */

static void test_basic(void **state)
{
    (void)state;
    size_t n;
    sg_user_row *r = parse(HDR "alice,eng;ops,0,0\n"
                               "bob,,1,0\n"
                               "svc-build,ci,,1\n",
                           &n);
    assert_int_equal(n, 3);
    assert_string_equal(r[0].user, "alice");
    assert_string_equal(r[0].groups, "eng,ops");
    assert_int_equal(r[0].disabled, 0);
    assert_int_equal(r[0].service, 0);
    assert_int_equal(r[0].line, 2);
    assert_string_equal(r[1].user, "bob");
    assert_string_equal(r[1].groups, "");
    assert_int_equal(r[1].disabled, 1);
    assert_int_equal(r[1].line, 3);
    assert_string_equal(r[2].user, "svc-build");
    assert_string_equal(r[2].groups, "ci");
    assert_int_equal(r[2].disabled, 0);
    assert_int_equal(r[2].service, 1);
    assert_int_equal(r[2].line, 4);
    free(r);
}

static void test_header_only(void **state)
{
    (void)state;
    size_t n = 99;
    sg_user_row *r = parse(HDR, &n);
    assert_int_equal(n, 0);
    free(r);
    r = parse("user,groups,disabled,service_account", &n); /* no line end */
    assert_int_equal(n, 0);
    free(r);
}

static void test_header_order_case_spaces(void **state)
{
    (void)state;
    size_t n;
    sg_user_row *r = parse(" Service_Account ,USER,\tGroups\t, disabled\n"
                           "1,carol,g1,0\n",
                           &n);
    assert_int_equal(n, 1);
    assert_string_equal(r[0].user, "carol");
    assert_string_equal(r[0].groups, "g1");
    assert_int_equal(r[0].service, 1);
    assert_int_equal(r[0].disabled, 0);
    free(r);
    /* quoted header fields, trimmed inside the quotes too */
    r = parse("\"user\",\" groups \",\"disabled\",\"service_account\"\ndave,,0,0\n", &n);
    assert_int_equal(n, 1);
    assert_string_equal(r[0].user, "dave");
    free(r);
    /* error field names follow the header's order */
    rejects("disabled,user,groups,service_account\nyes,erin,,0\n", "line 2, field disabled",
            "'yes'");
    rejects("groups,user,disabled,service_account\n,,0,0\n", "line 2, field user", "empty");
}

static void test_header_errors(void **state)
{
    (void)state;
    rejects("", "line 1", "no header");
    rejects("\n\r\n\n", "no header", NULL);
    rejects("\xef\xbb\xbf", "line 1", "no header");
    rejects("user,groups,disabled\nalice,,0\n", "line 1", "missing column 'service_account'");
    rejects("user,groups,service_account\n", "line 1", "missing column 'disabled'");
    rejects("groups,disabled,service_account\n", "missing column 'user'", NULL);
    rejects("user\n", "missing column 'groups'", NULL);
    rejects("user,groups,disabled,email\n", "line 1", "unknown column 'email'");
    rejects("user,groups,disabled,service_account,email\n", "line 1", "5 columns");
    rejects("user,groups,disabled,service_account,\n", "line 1", "5 columns");
    rejects("user,user,disabled,service_account\n", "line 1", "'user' appears twice");
    rejects("user,groups,Disabled,DISABLED\n", "'disabled' appears twice", NULL);
    rejects("user,,disabled,service_account\n", "line 1", "field 2 is empty");
    rejects("user,group,disabled,service_account\n", "unknown column 'group'", NULL);
    rejects("user;groups;disabled;service_account\n", "unknown column", NULL);
    /* the header is the first non-blank line */
    rejects("\n\nuser,groups\n", "line 3", "missing column");
    /* the unknown name is quoted printable and short */
    rejects("user,groups,disabled,a\x01"
            "b\n",
            "unknown column 'a?b'", NULL);
    char big[400];
    memset(big, 'x', sizeof(big));
    memcpy(big, "user,groups,disabled,", 21);
    big[sizeof(big) - 1] = '\0';
    sg_user_row *rows;
    size_t n;
    char err[SG_ERR_MAX];
    assert_int_equal(sg_user_csv_parse(big, strlen(big), &rows, &n, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "xxx...'"));
    assert_true(strlen(err) < 150);
}

static void test_bom_and_line_ends(void **state)
{
    (void)state;
    size_t n;
    sg_user_row *r = parse("\xef\xbb\xbf" HDR "alice,,0,0\n", &n);
    assert_int_equal(n, 1);
    assert_string_equal(r[0].user, "alice");
    free(r);
    /* CRLF, blank lines (LF and CRLF) counted, last line without line end */
    r = parse("user,groups,disabled,service_account\r\n"
              "\r\n"
              "alice,a;b,0,1\r\n"
              "\n"
              "\n"
              "bob,c,1,0",
              &n);
    assert_int_equal(n, 2);
    assert_string_equal(r[0].user, "alice");
    assert_string_equal(r[0].groups, "a,b");
    assert_int_equal(r[0].service, 1);
    assert_int_equal(r[0].line, 3);
    assert_string_equal(r[1].user, "bob");
    assert_string_equal(r[1].groups, "c");
    assert_int_equal(r[1].disabled, 1);
    assert_int_equal(r[1].line, 6);
    free(r);
    /* a bare CR is not a line end */
    rejects(HDR "alice,,0,0\rbob,,0,0\n", "line 2, field service_account", "carriage return");
    rejects(HDR "alice,,0\r,0\n", "line 2, field disabled", "carriage return");
    rejects(HDR "alice,,0,0\r", "line 2", "carriage return");
    rejects("user,groups,disabled,service_account\r", "line 1", "carriage return");
    /* a BOM anywhere else is data */
    rejects(HDR "\xef\xbb\xbf" HDR, "line 2", NULL);
}

static void test_quoting(void **state)
{
    (void)state;
    size_t n;
    sg_user_row *r;
    rejects(HDR "\"smith, john\",\"eng;ops\",\"\",\"1\"\n"
                "\"\",x,0,0\n",
            "line 3, field user", "empty");
    r = parse(HDR "\"smith, john\",\"eng;ops\",\"\",\"1\"\n"
                  "\"say \"\"hi\"\"\",\"a\"\"b\",0,0\n"
                  "plain,\"\",\"0\",\n",
              &n);
    assert_int_equal(n, 3);
    assert_string_equal(r[0].user, "smith, john");
    assert_string_equal(r[0].groups, "eng,ops");
    assert_int_equal(r[0].disabled, 0);
    assert_int_equal(r[0].service, 1);
    assert_string_equal(r[1].user, "say \"hi\"");
    assert_string_equal(r[1].groups, "a\"b");
    assert_string_equal(r[2].user, "plain");
    assert_string_equal(r[2].groups, "");
    assert_int_equal(r[2].service, 0);
    free(r);
}

static void test_quoting_errors(void **state)
{
    (void)state;
    rejects(HDR "al\"ice,,0,0\n", "line 2, field user", "quote in an unquoted field");
    rejects(HDR "alice,\"g\"x,0,0\n", "line 2, field groups", "after the closing quote");
    rejects(HDR "alice,\"g\" ,0,0\n", "line 2, field groups", "after the closing quote");
    rejects(HDR "alice, \"g\",0,0\n", "line 2, field groups", "quote in an unquoted field");
    rejects(HDR "alice,,0,\"0\n", "line 2, field service_account", "not closed");
    rejects(HDR "bob,,0,0\nalice,\"a\n\nb,0,0\n", "line 3, field groups", "not closed");
    rejects("\"user,groups,disabled,service_account\n", "line 1", "not closed");
    /* a line break inside quotes is data: not valid in a user name */
    rejects(HDR "bob,,0,0\n\"ali\nce\",,0,0\n", "line 3, field user", "control character");
    rejects(HDR "\"ali\r\nce\",,0,0\n", "line 2, field user", "control character");
    /* lines are counted through quoted line breaks */
    rejects(HDR "bob,,0,0\n\"ali\nce\",,0,0,\n", "line 3:", "5 fields");
    rejects(HDR "bob,\"a\nb\nc\",0,0\"x\n", "line 4, field service_account", "quote");
    rejects(HDR "bob,\"a\nb\nc\"x,0,0\n", "line 4, field groups", "after the closing quote");
    /* the error after a multi-line field names the line where the row starts */
    rejects(HDR "bob,\"a\nb\",0,0\nx,,2,0\n", "line 2, field groups", "control");
}

static void test_field_counts(void **state)
{
    (void)state;
    rejects(HDR "alice,,0,0\nbob,,0\n", "line 3:", "3 fields, expected 4");
    rejects(HDR "alice,,0,0,\n", "line 2:", "5 fields, expected 4");
    rejects(HDR "alice,,0,0,x,y\n", "line 2:", "6 fields");
    rejects(HDR "alice\n", "line 2:", "1 field,");
    rejects(HDR " \n", "line 2:", "1 field,");
    rejects(HDR "\"\"\n", "line 2:", "1 field,");
    rejects(HDR ",,,,\n", "line 2:", "5 fields");
}

static void test_user(void **state)
{
    (void)state;
    rejects(HDR "alice,,0,0\n,,0,0\n", "line 3, field user", "empty");
    rejects(HDR " alice,,0,0\n", "line 2, field user", "space");
    rejects(HDR "alice ,,0,0\n", "line 2, field user", "space");
    rejects(HDR "al\tice,,0,0\n", "line 2, field user", "control character");
    rejects(HDR "al\x7f"
                "ice,,0,0\n",
            "line 2, field user", "control character");
    rejects(HDR "al\xc3ice,,0,0\n", "line 2, field user", "UTF-8");
    char buf[SG_IDENT_MAX + 100];
    char user[SG_IDENT_MAX + 2];
    memset(user, 'u', SG_IDENT_MAX);
    user[SG_IDENT_MAX] = '\0';
    snprintf(buf, sizeof(buf), HDR "%s,,0,0\n", user);
    size_t n;
    sg_user_row *r = parse(buf, &n);
    assert_int_equal(n, 1);
    assert_string_equal(r[0].user, user);
    free(r);
    strcat(user, "u");
    snprintf(buf, sizeof(buf), HDR "%s,,0,0\n", user);
    rejects(buf, "line 2, field user", "longer than 256");
    /* names are case-sensitive and may hold commas, quotes, UTF-8 */
    r = parse(HDR "Alice,,0,0\nalice,,0,0\n\"a,b\",,0,0\ncaf\xc3\xa9,,0,0\n", &n);
    assert_int_equal(n, 4);
    assert_string_equal(r[2].user, "a,b");
    assert_string_equal(r[3].user, "caf\xc3\xa9");
    free(r);
}

static void test_nul_byte(void **state)
{
    (void)state;
    static const char a[] = HDR "al\0ice,,0,0\n";
    rejects_len(a, sizeof(a) - 1, "line 2, field user", "NUL");
    static const char b[] = HDR "alice,g\0,0,0\n";
    rejects_len(b, sizeof(b) - 1, "line 2, field groups", "NUL");
    static const char c[] = HDR "alice,,0,\"0\0\"\n";
    rejects_len(c, sizeof(c) - 1, "line 2, field service_account", "NUL");
    static const char d[] = "user,groups,disabled,service_account\0\n";
    rejects_len(d, sizeof(d) - 1, "line 1", "unknown column 'service_account?'");
    /* a buffer with the bytes after len is not read past len */
    static const char e[] = HDR "alice,,0,0\nbob,,0,X";
    size_t n;
    sg_user_row *r = parse_len(e, sizeof(e) - 2, &n);
    assert_int_equal(n, 2);
    assert_string_equal(r[1].user, "bob");
    assert_int_equal(r[1].service, 0);
    free(r);
}

static void test_groups(void **state)
{
    (void)state;
    size_t n;
    sg_user_row *r = parse(HDR "alice,b;a;b;a;c,0,0\n"
                               "bob,caf\xc3\xa9;x y,0,0\n",
                           &n);
    assert_string_equal(r[0].groups, "b,a,c");
    assert_string_equal(r[1].groups, "caf\xc3\xa9,x y");
    free(r);
    rejects(HDR "alice,a;;b,0,0\n", "line 2, field groups", "empty group");
    rejects(HDR "alice,a;,0,0\n", "line 2, field groups", "empty group");
    rejects(HDR "alice,;a,0,0\n", "line 2, field groups", "empty group");
    rejects(HDR "alice,;,0,0\n", "line 2, field groups", "empty group");
    rejects(HDR "alice,a=b,0,0\n", "line 2, field groups", "'='");
    rejects(HDR "alice,\"a,b\",0,0\n", "line 2, field groups", "','");
    rejects(HDR "alice,a; b,0,0\n", "line 2, field groups", "' b'");
    rejects(HDR "alice,a;b\tc,0,0\n", "line 2, field groups", "control");
    rejects(HDR "alice,a;\xff,0,0\n", "line 2, field groups", "UTF-8");
}

/* "HDR" + one row alice with the given groups field */
static char *groups_row(const char *groups)
{
    size_t len = strlen(HDR) + strlen(groups) + 32;
    char *b = malloc(len);
    assert_non_null(b);
    snprintf(b, len, HDR "alice,%s,0,0\n", groups);
    return b;
}

static void test_groups_limits(void **state)
{
    (void)state;
    char g[4096];
    size_t n;
    /* 64 groups, each repeated: fine */
    g[0] = '\0';
    for (int i = 0; i < 64; i++)
        snprintf(g + strlen(g), sizeof(g) - strlen(g), "%sg%d;g%d", i ? ";" : "", i, i);
    char *b = groups_row(g);
    sg_user_row *r = parse(b, &n);
    assert_int_equal(n, 1);
    assert_non_null(strstr(r[0].groups, "g0,g1,g2,"));
    assert_non_null(strstr(r[0].groups, ",g63"));
    free(r);
    free(b);
    /* a 65th distinct one is not */
    strcat(g, ";g64");
    b = groups_row(g);
    rejects(b, "line 2, field groups", "more than 64 groups");
    free(b);

    /* the joined list holds 1099 bytes */
    char big[SG_IDENT_MAX + 1];
    g[0] = '\0';
    for (int i = 0; i < 4; i++) {
        memset(big, 'a' + i, SG_IDENT_MAX);
        big[SG_IDENT_MAX] = '\0';
        snprintf(g + strlen(g), sizeof(g) - strlen(g), "%s%s", i ? ";" : "", big);
    }
    /* 4 * 256 + 3 commas = 1027; + ',' + 71 bytes = 1099 */
    memset(big, 'z', 71);
    big[71] = '\0';
    size_t at = strlen(g);
    snprintf(g + at, sizeof(g) - at, ";%s", big);
    b = groups_row(g);
    r = parse(b, &n);
    assert_int_equal(strlen(r[0].groups), 1099);
    assert_int_equal(strlen(r[0].groups), sizeof(r[0].groups) - 1);
    free(r);
    free(b);
    strcat(g, "z"); /* 1100 */
    b = groups_row(g);
    rejects(b, "line 2, field groups", "more than 1099 bytes");
    free(b);

    /* a single group of 257 bytes */
    memset(big, 'q', SG_IDENT_MAX);
    big[SG_IDENT_MAX] = '\0';
    b = groups_row(big);
    r = parse(b, &n);
    assert_int_equal(strlen(r[0].groups), SG_IDENT_MAX);
    free(r);
    free(b);
    char big2[SG_IDENT_MAX + 2];
    memset(big2, 'q', SG_IDENT_MAX + 1);
    big2[SG_IDENT_MAX + 1] = '\0';
    b = groups_row(big2);
    rejects(b, "line 2, field groups", "longer than 256 bytes");
    free(b);
}

static void test_flags(void **state)
{
    (void)state;
    size_t n;
    sg_user_row *r = parse(HDR "a,,,\nb,,1,1\nc,,0,\nd,,,1\n", &n);
    assert_int_equal(n, 4);
    assert_int_equal(r[0].disabled + r[0].service, 0);
    assert_int_equal(r[1].disabled + r[1].service, 2);
    assert_int_equal(r[2].disabled + r[2].service, 0);
    assert_int_equal(r[3].disabled, 0);
    assert_int_equal(r[3].service, 1);
    free(r);
    static const char *const bad[] = {"2", "yes", "true", "01", " 1", "1 ", "-1", "0x1", "10"};
    char buf[256];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(buf, sizeof(buf), HDR "a,,0,0\nb,,1,0\nc,,%s,0\n", bad[i]);
        rejects(buf, "line 4, field disabled", "is not 0 or 1");
        snprintf(buf, sizeof(buf), HDR "a,,0,0\nb,,1,0\nc,,0,%s\n", bad[i]);
        rejects(buf, "line 4, field service_account", "is not 0 or 1");
    }
    rejects(HDR "a,,\"a\nb\",0\n", "line 2, field disabled", "'a?b'");
}

static void test_duplicates(void **state)
{
    (void)state;
    rejects(HDR "alice,,0,0\nbob,,0,0\ncarol,,0,0\nalice,g,1,0\n", "line 5, field user",
            "'alice' is already on line 2");
    /* the first repeat in file order is reported */
    rejects(HDR "x,,0,0\ny,,0,0\n\ny,,0,0\nx,,0,0\n", "line 5", "'y' is already on line 3");
    rejects(HDR "b,,0,0\na,,0,0\nb,,0,0\na,,0,0\nb,,0,0\n", "line 4", "'b' is already on line 2");
    /* errors come in file order: a repeat before a bad line wins ... */
    rejects(HDR "alice,,0,0\nalice,,0,0\nbob,,7,0\n", "line 3, field user", "line 2");
    rejects(HDR "alice,,0,0\nalice,,0,0\n\"bob\n", "line 3, field user", "line 2");
    /* ... and a bad line before a repeat too */
    rejects(HDR "alice,,0,0\nbob,,7,0\nalice,,0,0\n", "line 3, field disabled", NULL);
}

static void test_errors_bounded(void **state)
{
    (void)state;
    sg_user_row *rows = NULL;
    size_t n = 5;
    const char *bad = HDR "alice,,7,0\n";
    assert_int_equal(sg_user_csv_parse(bad, strlen(bad), &rows, &n, NULL, 0), -1);
    assert_null(rows);
    char small[8];
    assert_int_equal(sg_user_csv_parse(bad, strlen(bad), &rows, &n, small, sizeof(small)), -1);
    assert_string_equal(small, "line 2,");
    char one[1];
    assert_int_equal(sg_user_csv_parse(bad, strlen(bad), &rows, &n, one, sizeof(one)), -1);
    assert_int_equal(one[0], '\0');
    /* NULL buffer is empty input */
    char err[SG_ERR_MAX];
    assert_int_equal(sg_user_csv_parse(NULL, 0, &rows, &n, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "no header"));
    /* a huge bad value is cut short in the message */
    size_t len = strlen(HDR) + 100000;
    char *big = malloc(len + 1);
    assert_non_null(big);
    strcpy(big, HDR "a,,");
    memset(big + strlen(big), '9', len - strlen(big));
    memcpy(big + len - 3, ",0\n", 3);
    big[len] = '\0';
    rejects(big, "line 2, field disabled", "'9999999999");
    assert_int_equal(sg_user_csv_parse(big, len, &rows, &n, err, sizeof(err)), -1);
    assert_true(strlen(err) < 120);
    free(big);
}

/* 100,000 rows: duplicate detection must not be quadratic. */
#define BIG_ROWS 100000
static char *build_big(size_t *len, int dup)
{
    size_t cap = strlen(HDR) + (size_t)BIG_ROWS * 64;
    char *b = malloc(cap);
    assert_non_null(b);
    size_t at = (size_t)snprintf(b, cap, HDR);
    for (int i = 0; i < BIG_ROWS; i++) {
        int u = (dup && i == BIG_ROWS - 1) ? 4242 : i;
        at += (size_t)snprintf(b + at, cap - at, "user%07d,g%d;staff,%d,%d\r\n", u, i % 100,
                               i % 7 == 0, i % 11 == 0);
    }
    *len = at;
    return b;
}

static void test_big(void **state)
{
    (void)state;
    size_t len, n;
    char *b = build_big(&len, 0);
    sg_user_row *r = parse_len(b, len, &n);
    assert_int_equal(n, BIG_ROWS);
    assert_string_equal(r[0].user, "user0000000");
    assert_string_equal(r[BIG_ROWS - 1].user, "user0099999");
    assert_string_equal(r[BIG_ROWS - 1].groups, "g99,staff");
    assert_int_equal(r[BIG_ROWS - 1].line, BIG_ROWS + 1);
    assert_int_equal(r[77].disabled, 1);
    assert_int_equal(r[77].service, 1);
    assert_int_equal(r[78].disabled, 0);
    free(r);
    free(b);

    b = build_big(&len, 1);
    rejects_len(b, len, "line 100001, field user", "'user0004242' is already on line 4244");
    free(b);
}

/* ---- sg_csv_field ------------------------------------------------------------ */

/* What sg_csv_field writes for s. */
static char *field(const char *s)
{
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    assert_non_null(f);
    sg_csv_field(f, s);
    assert_int_equal(fclose(f), 0);
    return out;
}

static void field_is(const char *s, const char *want)
{
    char *got = field(s);
    if (strcmp(got, want) != 0)
        fail_msg("sg_csv_field('%s') wrote [%s], expected [%s]", s ? s : "(null)", got, want);
    free(got);
}

static void test_field_quoting(void **state)
{
    (void)state;
    field_is("alice", "alice");
    field_is("", "");
    field_is(NULL, "");
    field_is("caf\xc3\xa9", "caf\xc3\xa9");
    field_is("a b", "a b");
    field_is("a,b", "\"a,b\"");
    field_is("say \"hi\"", "\"say \"\"hi\"\"\"");
    field_is("\"", "\"\"\"\"");
    field_is("\"\"", "\"\"\"\"\"\"");
    field_is("a\nb", "\"a\nb\"");
    field_is("a\rb", "\"a\rb\"");
    field_is("a\r\nb", "\"a\r\nb\"");
    field_is(" a", "\" a\"");
    field_is("a ", "\"a \"");
    field_is("a\t", "\"a\t\"");
    field_is(" ", "\" \"");
    field_is("a-b", "a-b");
    field_is("a=b", "a=b");
    field_is("x@y", "x@y");
}

static void test_field_formula_guard(void **state)
{
    (void)state;
    field_is("=1+2", "\"'=1+2\"");
    field_is("=HYPERLINK(\"http://x\",\"y\")", "\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\"");
    field_is("+1", "\"'+1\"");
    field_is("-1", "\"'-1\"");
    field_is("@SUM(A1)", "\"'@SUM(A1)\"");
    field_is("\tx", "\"'\tx\"");
    field_is("\rx", "\"'\rx\"");
    field_is("=", "\"'=\"");
    field_is("-", "\"'-\"");
    field_is("'=1", "'=1"); /* already text */
}

static void test_field_round_trip(void **state)
{
    (void)state;
    static const char *const users[] = {
        "alice", "smith, john", "say \"hi\"", "\"", "a,\"b\",c", "caf\xc3\xa9", "x y", "a;b", "'q",
    };
    static const char *const groups[] = {"", "eng;ops", "a\"b;c d", "x", "\xc3\xa9",
                                         "", "",        "",         ""};
    size_t nu = sizeof(users) / sizeof(users[0]);
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    assert_non_null(f);
    sg_csv_field(f, "user");
    fputc(',', f);
    sg_csv_field(f, "groups");
    fputs(",disabled,service_account\r\n", f);
    for (size_t i = 0; i < nu; i++) {
        sg_csv_field(f, users[i]);
        fputc(',', f);
        sg_csv_field(f, groups[i]);
        fprintf(f, ",%d,%d\r\n", (int)(i & 1), (int)((i >> 1) & 1));
    }
    assert_int_equal(fclose(f), 0);
    size_t n;
    sg_user_row *r = parse_len(out, len, &n);
    assert_int_equal(n, nu);
    for (size_t i = 0; i < nu; i++) {
        assert_string_equal(r[i].user, users[i]);
        char want[64];
        snprintf(want, sizeof(want), "%s", groups[i]);
        for (char *p = want; *p; p++)
            if (*p == ';')
                *p = ',';
        assert_string_equal(r[i].groups, want);
        assert_int_equal(r[i].disabled, (int)(i & 1));
        assert_int_equal(r[i].service, (int)((i >> 1) & 1));
    }
    free(r);
    free(out);
}

/* ---- times ------------------------------------------------------------------ */

#define NOW 1795946448964LL /* 2026-11-29T10:00:48.964Z */

static void time_is(const char *s, long long want)
{
    long long got = -12345;
    if (sg_parse_time(s, NOW, &got) != 0)
        fail_msg("sg_parse_time('%s') failed", s);
    if (got != want)
        fail_msg("sg_parse_time('%s') = %lld, expected %lld", s, got, want);
}

static void time_bad(const char *s)
{
    long long got = -12345;
    if (sg_parse_time(s, NOW, &got) != -1)
        fail_msg("sg_parse_time('%s') accepted: %lld", s ? s : "(null)", got);
    assert_int_equal(got, -12345); /* untouched */
}

static void test_time_accepts(void **state)
{
    (void)state;
    time_is("2026-11-29T10:00:00Z", 1795946400000LL);
    time_is("2026-11-29t10:00:00z", 1795946400000LL);
    time_is("2026-11-29T10:00:00+00:00", 1795946400000LL);
    time_is("2026-11-29T10:00:00-00:00", 1795946400000LL);
    time_is("2026-11-29T10:00:00.250+02:00", 1795939200250LL);
    time_is("2026-11-29T10:00:00.2+02:00", 1795939200200LL);
    time_is("2026-11-29T10:00:00.25Z", 1795946400250LL);
    time_is("2026-11-29T10:00:00.999999999Z", 1795946400999LL);
    time_is("2026-11-29T10:00:00.000Z", 1795946400000LL);
    time_is("2024-02-29T23:59:59.999-05:30", 1709270999999LL);
    time_is("2000-02-29T12:00:00Z", 951825600000LL);
    time_is("2026-11-29", 1795910400000LL);
    time_is("1970-01-01", 0);
    time_is("1970-01-01T00:00:00Z", 0);
    time_is("1970-01-01T01:00:00+01:00", 0);
    time_is("9999-12-31T23:59:59.999Z", 253402300799999LL);
    time_is("now", NOW);
    time_is("@1795946448964", 1795946448964LL);
    time_is("@0", 0);
    time_is("@000123", 123);
    time_is("90s", NOW - 90000);
    time_is("15m", NOW - 15 * 60000LL);
    time_is("2h", NOW - 2 * 3600000LL);
    time_is("7d", NOW - 7 * 86400000LL);
    time_is("900", NOW - 900000);
    time_is("0", NOW);
    time_is("2026", NOW - 2026000); /* a bare number is seconds, not a year */
}

static void test_time_rejects(void **state)
{
    (void)state;
    time_bad(NULL);
    time_bad("");
    time_bad("2026-02-30");
    time_bad("2026-02-29");
    time_bad("2100-02-29");
    time_bad("2026-04-31");
    time_bad("2026-13-01");
    time_bad("2026-00-10");
    time_bad("2026-01-00");
    time_bad("2026-01-32");
    time_bad("2026-1-5");
    time_bad("2026-11-29T24:00:00Z");
    time_bad("2026-11-29T10:60:00Z");
    time_bad("2026-11-29T10:00:60Z");
    time_bad("2026-11-29T10:00:00");
    time_bad("2026-11-29T10:00Z");
    time_bad("2026-11-29T1:00:00Z");
    time_bad("2026-11-29 10:00:00Z");
    time_bad("2026-11-29T");
    time_bad("2026-11-29T10:00:00ZZ");
    time_bad("2026-11-29T10:00:00Z ");
    time_bad(" 2026-11-29");
    time_bad("2026-11-29x");
    time_bad("2026-11-29T10:00:00.Z");
    time_bad("2026-11-29T10:00:00.1234567890Z");
    time_bad("2026-11-29T10:00:00+2:00");
    time_bad("2026-11-29T10:00:00+02");
    time_bad("2026-11-29T10:00:00+0200");
    time_bad("2026-11-29T10:00:00+24:00");
    time_bad("2026-11-29T10:00:00+02:60");
    time_bad("2026-11-29T10:00:00+02:00x");
    time_bad("1969-12-31");
    time_bad("1969-12-31T23:59:59Z");
    time_bad("1970-01-01T00:00:00+00:01");
    time_bad("9999-12-31T23:59:59-00:01");
    time_bad("10000-01-01");
    time_bad("now ");
    time_bad("NOW");
    time_bad("Now");
    time_bad("@");
    time_bad("@-5");
    time_bad("@+5");
    time_bad("@12a");
    time_bad("@ 12");
    time_bad("@253402300800000"); /* year 10000 */
    time_bad("@9999999999999999999");
    time_bad("-5m");
    time_bad("5y");
    time_bad("5 m");
    time_bad("m");
    time_bad("366d");
    time_bad("1e3");
    time_bad("yesterday");
    /* relative times before the epoch */
    long long got = 7;
    assert_int_equal(sg_parse_time("2s", 1000, &got), -1);
    assert_int_equal(sg_parse_time("1s", 1000, &got), 0);
    assert_int_equal(got, 0);
    assert_int_equal(sg_parse_time("now", -1, &got), -1);
    assert_int_equal(sg_parse_time("now", 5, NULL), -1);
}

static void fmt_is(long long ms, const char *want)
{
    char buf[SG_RFC3339_LEN];
    sg_fmt_rfc3339(ms, buf, sizeof(buf));
    assert_string_equal(buf, want);
}

static void test_time_format(void **state)
{
    (void)state;
    fmt_is(0, "1970-01-01T00:00:00.000Z");
    fmt_is(1795946400000LL, "2026-11-29T10:00:00.000Z");
    fmt_is(1795946448964LL, "2026-11-29T10:00:48.964Z");
    fmt_is(1709270999999LL, "2024-03-01T05:29:59.999Z");
    fmt_is(951825600001LL, "2000-02-29T12:00:00.001Z");
    fmt_is(253402300799999LL, "9999-12-31T23:59:59.999Z");
    fmt_is(-1, "1969-12-31T23:59:59.999Z");
    /* truncated to the buffer */
    char small[11];
    sg_fmt_rfc3339(0, small, sizeof(small));
    assert_string_equal(small, "1970-01-01");
    sg_fmt_rfc3339(0, small, 0);
    sg_fmt_rfc3339(0, NULL, 10);
    assert_int_equal(strlen("2026-11-29T10:00:48.964Z") + 1, SG_RFC3339_LEN);
}

static void test_time_round_trip(void **state)
{
    (void)state;
    unsigned long long x = 88172645463325252ULL; /* xorshift64 */
    for (int i = 0; i < 20000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        long long ms = (long long)(x % 253402300800000ULL);
        if (i < 3)
            ms = i == 0 ? 0 : i == 1 ? 253402300799999LL : 951782400000LL; /* 2000-02-29 */
        char buf[SG_RFC3339_LEN];
        sg_fmt_rfc3339(ms, buf, sizeof(buf));
        long long back = -1;
        if (sg_parse_time(buf, NOW, &back) != 0 || back != ms)
            fail_msg("%lld -> %s -> %lld", ms, buf, back);
        /* and a whole day is a date */
        if (ms % 86400000 == 0) {
            buf[10] = '\0';
            assert_int_equal(sg_parse_time(buf, NOW, &back), 0);
            assert_int_equal(back, ms);
        }
    }
}

/* ---- user lists (assign --from) ------------------------------------------ */

static void list_bad(const char *in, size_t len, const char *want)
{
    char **v = (char **)1, err[SG_ERR_MAX] = "";
    size_t n = 7;
    assert_int_equal(sg_user_list_parse(in, len, &v, &n, err, sizeof(err)), -1);
    assert_null(v);
    assert_int_equal(n, 0);
    if (strstr(err, want) == NULL)
        fail_msg("error '%s' does not mention '%s'", err, want);
}

static void test_user_list(void **state)
{
    (void)state;
    const char in[] = "\xef\xbb\xbf" "ann\r\n\n# a comment\nbea\nc d\nj\xc3\xb6rg";
    char **v, err[SG_ERR_MAX];
    size_t n;
    assert_int_equal(sg_user_list_parse(in, sizeof(in) - 1, &v, &n, err, sizeof(err)), 0);
    assert_int_equal(n, 4);
    assert_string_equal(v[0], "ann");
    assert_string_equal(v[1], "bea");
    assert_string_equal(v[2], "c d");
    assert_string_equal(v[3], "j\xc3\xb6rg");
    sg_strv_free(v, n);
}

static void test_user_list_errors(void **state)
{
    (void)state;
    list_bad("a\nb\n\tc\n", 7, "line 3");
    list_bad("a\n b \n", 5, "line 2");
    list_bad("a\0b\n", 4, "NUL");
    list_bad("# only a comment\n\n", 18, "no user");
    list_bad("", 0, "no user");
    char big[400];
    memset(big, 'x', sizeof(big));
    list_bad(big, sizeof(big), "line 1: identity is longer than 256 bytes");
}

/* ---- any CSV with a header (sg_csv_table_parse) ------------------------------- */

static void table_bad(const char *csv, size_t len, const char *want)
{
    sg_csv_table t;
    char err[256];
    memset(&t, 0x5a, sizeof(t));
    if (sg_csv_table_parse(csv, len, &t, err, sizeof(err)) != -1)
        fail_msg("accepted: %s", csv);
    if (strstr(err, want) == NULL)
        fail_msg("error '%s' does not say '%s'", err, want);
    assert_int_equal(t.ncols, 0);
    assert_int_equal(t.nrows, 0);
    assert_null(t.rows);
}

static void test_table(void **state)
{
    (void)state;
    const char *csv = "\xef\xbb\xbf login , job_code,Status\r\nana,ITSM-L2,active\r\n"
                      "\"bo, jr\",\"multi\nline\",\"say \"\"hi\"\"\"\n\n"
                      "cy,,\n";
    sg_csv_table t;
    char err[256];
    assert_int_equal(sg_csv_table_parse(csv, strlen(csv), &t, err, sizeof(err)), 0);
    assert_int_equal(t.ncols, 3);
    assert_string_equal(t.cols[0], "login");
    assert_string_equal(t.cols[1], "job_code");
    assert_int_equal(sg_csv_table_col(&t, "STATUS"), 2);
    assert_int_equal(sg_csv_table_col(&t, "dept"), -1);
    assert_int_equal(t.nrows, 3);
    assert_string_equal(t.rows[0][0], "ana");
    assert_string_equal(t.rows[1][0], "bo, jr");
    assert_string_equal(t.rows[1][1], "multi\nline");
    assert_string_equal(t.rows[1][2], "say \"hi\"");
    assert_string_equal(t.rows[2][1], "");
    assert_int_equal(t.lines[0], 2);
    assert_int_equal(t.lines[1], 3);
    assert_int_equal(t.lines[2], 6);
    sg_csv_table_free(&t);
    /* a header alone is an empty table */
    assert_int_equal(sg_csv_table_parse("a,b\n", 4, &t, err, sizeof(err)), 0);
    assert_int_equal(t.nrows, 0);
    sg_csv_table_free(&t);

    table_bad("", 0, "no header");
    table_bad("a,,b\n1,2,3\n", 11, "header field 2 is empty");
    table_bad("a,B,b\n", 6, "column 'b' appears twice");
    table_bad("a,b\n1,2\n3\n", 10, "line 3: 1 field, the header has 2");
    table_bad("a,b\n1,2,3\n", 10, "line 2: 3 fields");
    table_bad("a,b\n1,\"x\n", 9, "line 2, field b: quoted field is not closed");
    table_bad("a,b\n1,x\"y\n", 10, "line 2, field b: quote in an unquoted field");
    table_bad("a,b\n1,x\0y\n", 10, "line 2, field b: contains a NUL byte");
    table_bad("a,b\r1,2\n", 8, "carriage return");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic),
        cmocka_unit_test(test_user_list),
        cmocka_unit_test(test_user_list_errors),
        cmocka_unit_test(test_header_only),
        cmocka_unit_test(test_header_order_case_spaces),
        cmocka_unit_test(test_header_errors),
        cmocka_unit_test(test_bom_and_line_ends),
        cmocka_unit_test(test_quoting),
        cmocka_unit_test(test_quoting_errors),
        cmocka_unit_test(test_field_counts),
        cmocka_unit_test(test_user),
        cmocka_unit_test(test_nul_byte),
        cmocka_unit_test(test_groups),
        cmocka_unit_test(test_groups_limits),
        cmocka_unit_test(test_flags),
        cmocka_unit_test(test_duplicates),
        cmocka_unit_test(test_errors_bounded),
        cmocka_unit_test(test_big),
        cmocka_unit_test(test_field_quoting),
        cmocka_unit_test(test_field_formula_guard),
        cmocka_unit_test(test_field_round_trip),
        cmocka_unit_test(test_time_accepts),
        cmocka_unit_test(test_time_rejects),
        cmocka_unit_test(test_time_format),
        cmocka_unit_test(test_time_round_trip),
        cmocka_unit_test(test_table),
    };
    return cmocka_run_group_tests_name("csv", tests, NULL, NULL);
}
