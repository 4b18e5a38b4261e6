/* libFuzzer target: the user import CSV parser, sg_csv_field and time parsing
 * (common/csv.c). Checks what every result must satisfy, and that a value
 * written by sg_csv_field reads back. */
#include "seatgate.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "fuzz_csv: check failed: %s (line %d)\n", #c, __LINE__);               \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#define MAX_MS 253402300799999LL

/* Every accepted row is valid, rows come in line order, users are unique. */
static void check_rows(const sg_user_row *rows, size_t n)
{
    char err[SG_ERR_MAX];
    for (size_t i = 0; i < n; i++) {
        const sg_user_row *r = &rows[i];
        CHECK(sg_valid_ident(r->user, err, sizeof(err)) == 0);
        CHECK(r->disabled == 0 || r->disabled == 1);
        CHECK(r->service == 0 || r->service == 1);
        CHECK(r->line >= 2);
        CHECK(i == 0 || r->line > rows[i - 1].line);
        size_t glen = strnlen(r->groups, sizeof(r->groups));
        CHECK(glen < sizeof(r->groups));
        if (glen) {
            char g[sizeof(r->groups)];
            memcpy(g, r->groups, glen + 1);
            int count = 0;
            for (char *save = NULL, *t = strtok_r(g, ",", &save); t;
                 t = strtok_r(NULL, ",", &save)) {
                CHECK(sg_valid_group(t, err, sizeof(err)) == 0);
                count++;
            }
            CHECK(count >= 1 && count <= SG_CSV_GROUPS_MAX);
            CHECK(r->groups[0] != ',' && r->groups[glen - 1] != ',' && !strstr(r->groups, ",,"));
        }
        if (n <= 2000)
            for (size_t j = 0; j < i; j++)
                CHECK(strcmp(rows[j].user, r->user) != 0);
    }
}

static void parse_buf(const char *buf, size_t len, size_t errlen)
{
    sg_user_row *rows = (sg_user_row *)&rows;
    size_t n = 12345;
    char err[SG_ERR_MAX];
    memset(err, 'x', sizeof(err));
    int rc = sg_user_csv_parse(buf, len, &rows, &n, errlen ? err : NULL, errlen);
    if (rc == 0) {
        CHECK(rows != NULL);
        check_rows(rows, n);
        free(rows);
    } else {
        CHECK(rc == -1);
        CHECK(rows == NULL && n == 0);
        if (errlen) {
            CHECK(memchr(err, '\0', errlen) != NULL);
            CHECK(strchr(err, '\n') == NULL && strchr(err, '\r') == NULL);
            if (errlen >= 6)
                CHECK(strncmp(err, "line ", 5) == 0);
        }
    }
}

/* assign --from lists: every user accepted is a valid identity */
static void parse_list(const char *buf, size_t len)
{
    char **v = (char **)&v, err[SG_ERR_MAX];
    size_t n = 12345;
    if (sg_user_list_parse(buf, len, &v, &n, err, sizeof(err)) == 0) {
        CHECK(v != NULL && n >= 1);
        for (size_t i = 0; i < n; i++)
            CHECK(sg_valid_ident(v[i], NULL, 0) == 0);
        sg_strv_free(v, n);
    } else {
        CHECK(v == NULL && n == 0 && err[0] != '\0');
    }
}

/* any CSV with a header (sync): a table, or an error and nothing */
static void parse_table(const char *buf, size_t len)
{
    sg_csv_table t;
    char err[SG_ERR_MAX];
    if (sg_csv_table_parse(buf, len, &t, err, sizeof(err)) == 0) {
        CHECK(t.ncols >= 1 && t.cols != NULL);
        for (size_t j = 0; j < t.ncols; j++) {
            CHECK(t.cols[j][0] != '\0');
            CHECK(sg_csv_table_col(&t, t.cols[j]) == (long)j);
        }
        for (size_t i = 0; i < t.nrows; i++) {
            CHECK(t.lines[i] >= 2 && (i == 0 || t.lines[i] > t.lines[i - 1]));
            for (size_t j = 0; j < t.ncols; j++)
                CHECK(t.rows[i][j] != NULL);
        }
        sg_csv_table_free(&t);
    } else {
        CHECK(t.ncols == 0 && t.nrows == 0 && t.rows == NULL && err[0] != '\0');
    }
}

/* s written as the user field by sg_csv_field reads back as s ("'" + s when
 * the formula guard applies) when that is a valid identity. */
static void check_field(const char *s)
{
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    if (f == NULL)
        return;
    fputs("user,groups,disabled,service_account\n", f);
    sg_csv_field(f, s);
    fputs(",,0,0\n", f);
    if (fclose(f) != 0) {
        free(out);
        return;
    }
    int guard = s[0] && strchr("=+-@\t\r", s[0]) != NULL;
    char *want = malloc(strlen(s) + 2);
    CHECK(want != NULL);
    snprintf(want, strlen(s) + 2, "%s%s", guard ? "'" : "", s);
    sg_user_row *rows;
    size_t n;
    char err[SG_ERR_MAX];
    int rc = sg_user_csv_parse(out, len, &rows, &n, err, sizeof(err));
    if (s[0] == '\0') {
        CHECK(rc == -1); /* the row ",,0,0" has no user */
    } else if (sg_valid_ident(want, NULL, 0) == 0) {
        CHECK(rc == 0 && n == 1);
        CHECK(strcmp(rows[0].user, want) == 0);
        free(rows);
    } else {
        CHECK(rc == -1);
    }
    free(want);
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65536)
        return 0;
    /* the bytes as they are (with NULs, without a terminator) */
    parse_buf((const char *)data, size, SG_ERR_MAX);
    parse_list((const char *)data, size);
    parse_table((const char *)data, size);
    parse_buf((const char *)data, size, size % 9);
    /* with a valid header in front: the fuzzer reaches the rows more often */
    static const char hdr[] = "user,groups,disabled,service_account\n";
    char *b = malloc(sizeof(hdr) + size);
    if (b == NULL)
        return 0;
    memcpy(b, hdr, sizeof(hdr) - 1);
    memcpy(b + sizeof(hdr) - 1, data, size);
    parse_buf(b, sizeof(hdr) - 1 + size, SG_ERR_MAX);
    free(b);

    char *s = malloc(size + 1);
    if (s == NULL)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';

    long long now = 1795946448964LL, ms = -7;
    if (sg_parse_time(s, now, &ms) == 0) {
        CHECK(ms >= 0 && ms <= MAX_MS);
        char buf[SG_RFC3339_LEN];
        sg_fmt_rfc3339(ms, buf, sizeof(buf));
        CHECK(strlen(buf) == SG_RFC3339_LEN - 1);
        long long back = -1;
        CHECK(sg_parse_time(buf, now, &back) == 0 && back == ms);
    } else {
        CHECK(ms == -7);
    }
    if (size <= 1024)
        check_field(s);
    free(s);
    return 0;
}
