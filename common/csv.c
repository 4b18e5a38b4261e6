/* User import CSV, CSV field quoting, RFC 3339 times: see sg_csv.h. */
#include "seatgate.h"
#include "internal.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define fail(err, errlen, ...) sg_err_rc(err, errlen, -1, __VA_ARGS__)

enum { COL_USER = 0, COL_GROUPS, COL_DISABLED, COL_SERVICE, NCOLS };

static const char *const col_names[NCOLS] = {"user", "groups", "disabled", "service_account"};

#define COLUMNS "user,groups,disabled,service_account"

/* "line L, field F: reason", or "line L: reason" when field is NULL. */
__attribute__((format(printf, 5, 6))) static int at_fail(char *err, size_t errlen, long line,
                                                         const char *field, const char *fmt, ...)
{
    if (err == NULL || errlen == 0)
        return -1;
    int k = field ? snprintf(err, errlen, "line %ld, field %s: ", line, field)
                  : snprintf(err, errlen, "line %ld: ", line);
    if (k >= 0 && (size_t)k < errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err + k, errlen - (size_t)k, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* A short, printable copy of s[0..n) for an error message: control bytes
 * become '?', at most EXCERPT_MAX bytes (not cutting a UTF-8 sequence), then
 * "...". out has EXCERPT_MAX + 4 bytes. */
#define EXCERPT_MAX 40
static const char *excerpt(const char *s, size_t n, char out[EXCERPT_MAX + 4])
{
    size_t k = n;
    if (k > EXCERPT_MAX) {
        k = EXCERPT_MAX;
        while (k > 0 && ((unsigned char)s[k] & 0xc0) == 0x80)
            k--;
    }
    for (size_t i = 0; i < k; i++) {
        unsigned char c = (unsigned char)s[i];
        out[i] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    if (k < n)
        memcpy(out + k, "...", 4);
    else
        out[k] = '\0';
    return out;
}

/* ---- reader ---------------------------------------------------------------- */

typedef struct {
    const char *p, *end;
    long line;  /* line of the input at p */
    long start; /* line where the current record starts */
    char *text; /* the current record's first `keep` fields, each NUL terminated */
    size_t cap, used;
    size_t *off;   /* where each kept field starts in text */
    size_t *flen;  /* and its length (a NUL byte inside shows as strlen < flen) */
    size_t fcap;   /* room in off and flen */
    size_t keep;   /* fields kept per record; those past it are only counted */
    size_t nfields; /* fields in the record, also those past keep */
    const char *const *names; /* field position -> column name, for errors */
    size_t nnames;
} reader;

/* room for field i in off and flen */
static int field_room(reader *r, size_t i)
{
    if (i < r->fcap)
        return 0;
    size_t n = r->fcap ? r->fcap * 2 : 16;
    while (n <= i)
        n *= 2;
    size_t *o = realloc(r->off, n * sizeof(*o));
    if (o == NULL)
        return -1;
    r->off = o;
    size_t *l = realloc(r->flen, n * sizeof(*l));
    if (l == NULL)
        return -1;
    r->flen = l;
    r->fcap = n;
    return 0;
}

static void reader_free(reader *r)
{
    free(r->text);
    free(r->off);
    free(r->flen);
}

static int put(reader *r, char c)
{
    if (r->used == r->cap) {
        size_t ncap = r->cap ? r->cap * 2 : 256;
        char *t = realloc(r->text, ncap);
        if (t == NULL)
            return -1;
        r->text = t;
        r->cap = ncap;
    }
    r->text[r->used++] = c;
    return 0;
}

static int is_end(char c)
{
    return c == ',' || c == '\n' || c == '\r';
}

/* Reads the next record, skipping blank lines (r->names, if set, names the
 * field positions in errors). 1 a record, 0 end of input, -1 error. */
static int read_record(reader *r, char *err, size_t errlen)
{
    for (;;) {
        if (r->p == r->end)
            return 0;
        if (*r->p == '\n') {
            r->p++;
            r->line++;
        } else if (*r->p == '\r' && r->end - r->p > 1 && r->p[1] == '\n') {
            r->p += 2;
            r->line++;
        } else {
            break;
        }
    }
    r->start = r->line;
    r->used = 0;
    r->nfields = 0;
    for (;;) {
        size_t i = r->nfields++;
        int keep = i < r->keep;
        const char *name = (r->names && i < r->nnames) ? r->names[i] : NULL;
        if (keep && field_room(r, i) != 0)
            return at_fail(err, errlen, r->start, NULL, "out of memory");
        if (keep)
            r->off[i] = r->used;
        if (r->p < r->end && *r->p == '"') {
            long opened = r->line;
            r->p++;
            for (;;) {
                if (r->p == r->end)
                    return at_fail(err, errlen, opened, name, "quoted field is not closed");
                char c = *r->p++;
                if (c == '"') {
                    if (r->p == r->end || *r->p != '"')
                        break;
                    r->p++;
                } else if (c == '\n') {
                    r->line++;
                }
                if (keep && put(r, c) != 0)
                    return at_fail(err, errlen, r->start, NULL, "out of memory");
            }
            if (r->p < r->end && !is_end(*r->p))
                return at_fail(err, errlen, r->line, name,
                               "text after the closing quote (write a quote inside a quoted "
                               "field as \"\")");
        } else {
            for (; r->p < r->end && !is_end(*r->p); r->p++) {
                if (*r->p == '"')
                    return at_fail(err, errlen, r->line, name,
                                   "quote in an unquoted field (quote the whole field and "
                                   "double the quote)");
                if (keep && put(r, *r->p) != 0)
                    return at_fail(err, errlen, r->start, NULL, "out of memory");
            }
        }
        if (keep) {
            r->flen[i] = r->used - r->off[i];
            if (put(r, '\0') != 0)
                return at_fail(err, errlen, r->start, NULL, "out of memory");
        }
        if (r->p == r->end)
            return 1;
        char c = *r->p++;
        if (c == ',')
            continue;
        if (c == '\n') {
            r->line++;
            return 1;
        }
        if (r->p < r->end && *r->p == '\n') {
            r->p++;
            r->line++;
            return 1;
        }
        return at_fail(err, errlen, r->line, name, "carriage return not followed by a line feed");
    }
}

/* ---- header and rows ------------------------------------------------------- */

static int ascii_case_eq(const char *a, const char *b)
{
    for (; *a && *b; a++, b++) {
        char x = (*a >= 'A' && *a <= 'Z') ? (char)(*a - 'A' + 'a') : *a;
        char y = (*b >= 'A' && *b <= 'Z') ? (char)(*b - 'A' + 'a') : *b;
        if (x != y)
            return 0;
    }
    return *a == *b;
}

/* Reads the header; colmap[i] = the column of field position i. */
static int parse_header(reader *r, int colmap[NCOLS], char *err, size_t errlen)
{
    int rc = read_record(r, err, errlen);
    if (rc < 0)
        return -1;
    if (rc == 0)
        return at_fail(err, errlen, r->line, NULL, "no header: the first line must be " COLUMNS);
    long line = r->start;
    int pos[NCOLS] = {-1, -1, -1, -1};
    char ex[EXCERPT_MAX + 4];
    for (size_t i = 0; i < r->nfields && i < NCOLS; i++) {
        char *name = r->text + r->off[i];
        size_t n = r->flen[i];
        while (n > 0 && (name[0] == ' ' || name[0] == '\t'))
            name++, n--;
        while (n > 0 && (name[n - 1] == ' ' || name[n - 1] == '\t'))
            n--;
        name[n] = '\0';
        if (n == 0)
            return at_fail(err, errlen, line, NULL,
                           "header field %zu is empty: the columns are " COLUMNS, i + 1);
        int k = 0;
        while (k < NCOLS && (strlen(name) != n || !ascii_case_eq(name, col_names[k])))
            k++;
        if (k == NCOLS)
            return at_fail(err, errlen, line, NULL, "unknown column '%s': the columns are " COLUMNS,
                           excerpt(name, n, ex));
        if (pos[k] >= 0)
            return at_fail(err, errlen, line, NULL, "column '%s' appears twice in the header",
                           col_names[k]);
        pos[k] = (int)i;
        colmap[i] = k;
    }
    if (r->nfields > NCOLS) {
        /* name the first column past ours */
        char *name = r->text + r->off[NCOLS];
        size_t n = r->flen[NCOLS];
        while (n > 0 && (name[0] == ' ' || name[0] == '\t'))
            name++, n--;
        while (n > 0 && (name[n - 1] == ' ' || name[n - 1] == '\t'))
            n--;
        name[n] = '\0';
        for (int k = 0; k < NCOLS; k++)
            if (ascii_case_eq(name, col_names[k]))
                return at_fail(err, errlen, line, NULL, "column '%s' appears twice in the header",
                               col_names[k]);
        return at_fail(err, errlen, line, NULL,
                       "unknown column '%s': the header has %zu columns, expected " COLUMNS,
                       excerpt(name, n, ex), r->nfields);
    }
    for (int k = 0; k < NCOLS; k++)
        if (pos[k] < 0)
            return at_fail(err, errlen, line, NULL,
                           "missing column '%s' in the header (" COLUMNS ")", col_names[k]);
    return 0;
}

static int parse_flag(const char *v, size_t n, int *out)
{
    if (n == 0 || (n == 1 && v[0] == '0')) {
        *out = 0;
        return 0;
    }
    if (n == 1 && v[0] == '1') {
        *out = 1;
        return 0;
    }
    return -1;
}

/* "g1;g2" -> row->groups "g1,g2", repeats dropped. */
static int parse_groups(const char *v, size_t vlen, sg_user_row *row, char *err, size_t errlen)
{
    long line = row->line;
    size_t goff[SG_CSV_GROUPS_MAX], glen[SG_CSV_GROUPS_MAX];
    size_t ng = 0, used = 0;
    char one[SG_IDENT_MAX + 1], e[SG_ERR_MAX], ex[EXCERPT_MAX + 4];
    row->groups[0] = '\0';
    if (vlen == 0)
        return 0;
    for (const char *g = v;;) {
        const char *semi = strchr(g, ';');
        size_t n = semi ? (size_t)(semi - g) : strlen(g);
        if (n == 0)
            return at_fail(err, errlen, line, "groups",
                           "empty group name (a ';' at either end or two in a row)");
        if (n > SG_IDENT_MAX)
            return at_fail(err, errlen, line, "groups", "group '%s' is longer than %d bytes",
                           excerpt(g, n, ex), SG_IDENT_MAX);
        memcpy(one, g, n);
        one[n] = '\0';
        if (sg_valid_group(one, e, sizeof(e)) != 0)
            return at_fail(err, errlen, line, "groups", "'%s': %s", excerpt(one, n, ex), e);
        size_t k = 0;
        while (k < ng && !(glen[k] == n && memcmp(row->groups + goff[k], one, n) == 0))
            k++;
        if (k == ng) {
            if (ng == SG_CSV_GROUPS_MAX)
                return at_fail(err, errlen, line, "groups", "more than %d groups",
                               SG_CSV_GROUPS_MAX);
            size_t at = used + (ng ? 1 : 0);
            if (at + n + 1 > sizeof(row->groups))
                return at_fail(err, errlen, line, "groups",
                               "the groups take more than %zu bytes together",
                               sizeof(row->groups) - 1);
            if (ng)
                row->groups[used] = ',';
            memcpy(row->groups + at, one, n + 1);
            goff[ng] = at;
            glen[ng] = n;
            ng++;
            used = at + n;
        }
        if (semi == NULL)
            return 0;
        g = semi + 1;
    }
}

/* Validates the record in r into row. */
static int parse_row(const reader *r, const int *colmap, sg_user_row *row, char *err, size_t errlen)
{
    long line = r->start;
    memset(row, 0, sizeof(*row)); /* no stray bytes after the strings */
    row->line = line;
    if (r->nfields != NCOLS)
        return at_fail(err, errlen, line, NULL, "%zu field%s, expected %d (" COLUMNS ")",
                       r->nfields, r->nfields == 1 ? "" : "s", NCOLS);
    const char *v[NCOLS];
    size_t vlen[NCOLS];
    for (int i = 0; i < NCOLS; i++) {
        v[colmap[i]] = r->text + r->off[i];
        vlen[colmap[i]] = r->flen[i];
    }
    for (int k = 0; k < NCOLS; k++)
        if (strlen(v[k]) != vlen[k])
            return at_fail(err, errlen, line, col_names[k], "contains a NUL byte");

    char e[SG_ERR_MAX], ex[EXCERPT_MAX + 4];
    if (sg_valid_ident(v[COL_USER], e, sizeof(e)) != 0)
        return at_fail(err, errlen, line, "user", "%s", e);
    memcpy(row->user, v[COL_USER], vlen[COL_USER] + 1);
    if (parse_groups(v[COL_GROUPS], vlen[COL_GROUPS], row, err, errlen) != 0)
        return -1;
    if (parse_flag(v[COL_DISABLED], vlen[COL_DISABLED], &row->disabled) != 0)
        return at_fail(err, errlen, line, "disabled", "'%s' is not 0 or 1",
                       excerpt(v[COL_DISABLED], vlen[COL_DISABLED], ex));
    if (parse_flag(v[COL_SERVICE], vlen[COL_SERVICE], &row->service) != 0)
        return at_fail(err, errlen, line, "service_account", "'%s' is not 0 or 1",
                       excerpt(v[COL_SERVICE], vlen[COL_SERVICE], ex));
    return 0;
}

static int row_cmp(const void *a, const void *b)
{
    const sg_user_row *x = *(const sg_user_row *const *)a;
    const sg_user_row *y = *(const sg_user_row *const *)b;
    int c = strcmp(x->user, y->user);
    if (c)
        return c;
    return (x->line > y->line) - (x->line < y->line);
}

/* The repeated user whose second row comes first in the file: 1 found (*first,
 * *second set), 0 none, -1 out of memory. O(n log n). */
static int find_duplicate(const sg_user_row *rows, size_t n, const sg_user_row **first,
                          const sg_user_row **second)
{
    if (n < 2)
        return 0;
    const sg_user_row **v = malloc(n * sizeof(*v));
    if (v == NULL)
        return -1;
    for (size_t i = 0; i < n; i++)
        v[i] = &rows[i];
    qsort(v, n, sizeof(*v), row_cmp);
    int found = 0;
    for (size_t i = 1; i < n; i++) {
        if (strcmp(v[i - 1]->user, v[i]->user) == 0 && (!found || v[i]->line < (*second)->line)) {
            *first = v[i - 1];
            *second = v[i];
            found = 1;
        }
    }
    free(v);
    return found;
}

static void duplicate_error(const sg_user_row *first, const sg_user_row *second, char *err,
                            size_t errlen)
{
    char ex[EXCERPT_MAX + 4];
    at_fail(err, errlen, second->line, "user", "user '%s' is already on line %ld",
            excerpt(second->user, strlen(second->user), ex), first->line);
}

int sg_user_csv_parse(const char *buf, size_t len, sg_user_row **rows, size_t *n, char *err,
                      size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    if (rows == NULL || n == NULL)
        return fail(err, errlen, "no output given");
    *rows = NULL;
    *n = 0;
    if (buf == NULL)
        buf = "";
    /* one field past ours is kept, to name an extra column of the header */
    reader r = {.p = buf, .end = buf + len, .line = 1, .keep = NCOLS + 1};
    if (len >= 3 && memcmp(buf, "\xef\xbb\xbf", 3) == 0)
        r.p += 3;

    sg_user_row *out = NULL;
    size_t cnt = 0, cap = 0;
    int colmap[NCOLS];
    const char *pos_names[NCOLS];
    int rc = -1;
    const sg_user_row *first, *second;
    if (parse_header(&r, colmap, err, errlen) != 0)
        goto done;
    for (int i = 0; i < NCOLS; i++)
        pos_names[i] = col_names[colmap[i]];
    r.names = pos_names;
    r.nnames = NCOLS;
    for (;;) {
        int k = read_record(&r, err, errlen);
        if (k == 0)
            break;
        if (k < 0)
            goto bad_row;
        if (cnt == cap) {
            size_t ncap = cap ? cap * 2 : 64;
            sg_user_row *t = ncap <= SIZE_MAX / sizeof(*t) ? realloc(out, ncap * sizeof(*t)) : NULL;
            if (t == NULL) {
                at_fail(err, errlen, r.start, NULL, "out of memory");
                goto done;
            }
            out = t;
            cap = ncap;
        }
        if (parse_row(&r, colmap, &out[cnt], err, errlen) != 0)
            goto bad_row;
        cnt++;
    }
    int d = find_duplicate(out, cnt, &first, &second);
    if (d != 0) {
        if (d > 0)
            duplicate_error(first, second, err, errlen);
        else
            at_fail(err, errlen, r.line, NULL, "out of memory");
        goto done;
    }
    if (cnt == 0) {
        out = malloc(sizeof(*out)); /* *rows is never NULL on success */
        if (out == NULL) {
            at_fail(err, errlen, r.line, NULL, "out of memory");
            goto done;
        }
    } else if (cnt < cap) {
        sg_user_row *t = realloc(out, cnt * sizeof(*t));
        if (t)
            out = t;
    }
    *rows = out;
    *n = cnt;
    out = NULL;
    rc = 0;
    goto done;

bad_row:
    /* errors come in file order: a user repeated before this line wins */
    if (find_duplicate(out, cnt, &first, &second) > 0)
        duplicate_error(first, second, err, errlen);
done:
    free(out);
    reader_free(&r);
    return rc;
}

/* ---- any CSV with a header (seatctl sync) ------------------------------------ */

static char *trimmed_copy(const char *s, size_t n)
{
    while (n > 0 && (s[0] == ' ' || s[0] == '\t'))
        s++, n--;
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    char *c = malloc(n + 1);
    if (c) {
        memcpy(c, s, n);
        c[n] = '\0';
    }
    return c;
}

void sg_csv_table_free(sg_csv_table *t)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < t->ncols; i++)
        free(t->cols[i]);
    free(t->cols);
    for (size_t i = 0; i < t->nrows; i++) {
        for (size_t j = 0; t->rows[i] && j < t->ncols; j++)
            free(t->rows[i][j]);
        free(t->rows[i]);
    }
    free(t->rows);
    free(t->lines);
    memset(t, 0, sizeof(*t));
}

int sg_csv_table_parse(const char *buf, size_t len, sg_csv_table *t, char *err, size_t errlen)
{
    memset(t, 0, sizeof(*t));
    if (err && errlen)
        err[0] = '\0';
    if (buf == NULL)
        buf = "";
    reader r = {.p = buf, .end = buf + len, .line = 1, .keep = SIZE_MAX};
    if (len >= 3 && memcmp(buf, "\xef\xbb\xbf", 3) == 0)
        r.p += 3;
    char ex[EXCERPT_MAX + 4];
    int rc = read_record(&r, err, errlen);
    if (rc <= 0) {
        if (rc == 0)
            at_fail(err, errlen, r.line, NULL, "no header line");
        goto bad;
    }
    t->cols = calloc(r.nfields, sizeof(char *));
    if (t->cols == NULL)
        goto oom;
    for (size_t i = 0; i < r.nfields; i++) {
        t->cols[i] = trimmed_copy(r.text + r.off[i], r.flen[i]);
        if (t->cols[i] == NULL)
            goto oom;
        t->ncols = i + 1;
        if (t->cols[i][0] == '\0' || memchr(r.text + r.off[i], '\0', r.flen[i])) {
            at_fail(err, errlen, r.start, NULL, "header field %zu is empty or holds a NUL byte",
                    i + 1);
            goto bad;
        }
        for (size_t k = 0; k < i; k++)
            if (ascii_case_eq(t->cols[k], t->cols[i])) {
                at_fail(err, errlen, r.start, NULL, "column '%s' appears twice in the header",
                        excerpt(t->cols[i], strlen(t->cols[i]), ex));
                goto bad;
            }
    }
    r.names = (const char *const *)t->cols;
    r.nnames = t->ncols;
    size_t cap = 0;
    for (;;) {
        int k = read_record(&r, err, errlen);
        if (k == 0)
            break;
        if (k < 0)
            goto bad;
        if (r.nfields != t->ncols) {
            at_fail(err, errlen, r.start, NULL, "%zu field%s, the header has %zu", r.nfields,
                    r.nfields == 1 ? "" : "s", t->ncols);
            goto bad;
        }
        if (t->nrows == cap) {
            size_t ncap = cap ? cap * 2 : 64;
            char ***rows = realloc(t->rows, ncap * sizeof(*rows));
            if (rows == NULL)
                goto oom;
            t->rows = rows;
            long *lines = realloc(t->lines, ncap * sizeof(*lines));
            if (lines == NULL)
                goto oom;
            t->lines = lines;
            cap = ncap;
        }
        char **row = calloc(t->ncols, sizeof(char *));
        if (row == NULL)
            goto oom;
        t->rows[t->nrows] = row;
        t->lines[t->nrows++] = r.start;
        for (size_t j = 0; j < t->ncols; j++) {
            if (strlen(r.text + r.off[j]) != r.flen[j]) {
                at_fail(err, errlen, r.start, t->cols[j], "contains a NUL byte");
                goto bad;
            }
            row[j] = strdup(r.text + r.off[j]);
            if (row[j] == NULL)
                goto oom;
        }
    }
    reader_free(&r);
    return 0;
oom:
    at_fail(err, errlen, r.start, NULL, "out of memory");
bad:
    reader_free(&r);
    sg_csv_table_free(t);
    return -1;
}

long sg_csv_table_col(const sg_csv_table *t, const char *name)
{
    for (size_t i = 0; i < t->ncols; i++)
        if (ascii_case_eq(t->cols[i], name))
            return (long)i;
    return -1;
}

/* ---- CSV output ------------------------------------------------------------ */

void sg_csv_field(FILE *f, const char *s)
{
    if (s == NULL)
        s = "";
    size_t n = strlen(s);
    int guard = n > 0 && strchr("=+-@\t\r", s[0]) != NULL;
    int quote = guard || strpbrk(s, ",\"\r\n") != NULL ||
                (n > 0 && (s[0] == ' ' || s[0] == '\t' || s[n - 1] == ' ' || s[n - 1] == '\t'));
    if (!quote) {
        fwrite(s, 1, n, f);
        return;
    }
    fputc('"', f);
    if (guard)
        fputc('\'', f);
    for (const char *q; (q = strchr(s, '"')) != NULL; s = q + 1) {
        fwrite(s, 1, (size_t)(q - s) + 1, f);
        fputc('"', f); /* the quote, doubled */
    }
    fputs(s, f);
    fputc('"', f);
}

/* ---- times ------------------------------------------------------------------ */

#define MAX_MS 253402300799999LL /* 9999-12-31T23:59:59.999Z */

/* Exactly n decimal digits at s (never reads past a NUL). */
static int fixed_digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

static int month_days(int y, int m)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return days[m - 1] + (m == 2 && leap);
}

/* YYYY-MM-DD[Thh:mm:ss[.f]{Z|+hh:mm|-hh:mm}] -> ms; -1 on error. */
static int parse_rfc3339(const char *s, long long *out)
{
    int y, mo, d, h = 0, mi = 0, sec = 0, ms = 0, off = 0;
    const char *p = s;
    if (fixed_digits(p, 4, &y) || p[4] != '-' || fixed_digits(p + 5, 2, &mo) || p[7] != '-' ||
        fixed_digits(p + 8, 2, &d))
        return -1;
    p += 10;
    if (mo < 1 || mo > 12 || d < 1 || d > month_days(y, mo))
        return -1;
    if (*p != '\0') {
        if (*p != 'T' && *p != 't')
            return -1;
        p++;
        if (fixed_digits(p, 2, &h) || p[2] != ':' || fixed_digits(p + 3, 2, &mi) || p[5] != ':' ||
            fixed_digits(p + 6, 2, &sec))
            return -1;
        p += 8;
        if (h > 23 || mi > 59 || sec > 59)
            return -1;
        if (*p == '.') {
            int nd = 0;
            for (p++; *p >= '0' && *p <= '9'; p++, nd++)
                if (nd < 3)
                    ms = ms * 10 + (*p - '0');
            if (nd == 0 || nd > 9)
                return -1;
            for (; nd < 3; nd++)
                ms *= 10;
        }
        if (*p == 'Z' || *p == 'z') {
            p++;
        } else if (*p == '+' || *p == '-') {
            int oh, om;
            if (fixed_digits(p + 1, 2, &oh) || p[3] != ':' || fixed_digits(p + 4, 2, &om) ||
                oh > 23 || om > 59)
                return -1;
            off = (*p == '-' ? -1 : 1) * (oh * 60 + om);
            p += 6;
        } else {
            return -1;
        }
        if (*p != '\0')
            return -1;
    }
    struct tm tm = {0};
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    time_t t = timegm(&tm);
    if (t == (time_t)-1)
        return -1; /* 1969-12-31T23:59:59Z, before the range anyway */
    *out = (long long)t * 1000 + ms - (long long)off * 60000;
    return 0;
}

int sg_parse_time(const char *s, long long now_ms, long long *out_ms)
{
    if (s == NULL || *s == '\0' || out_ms == NULL)
        return -1;
    long long v;
    int y;
    if (strcmp(s, "now") == 0) {
        v = now_ms;
    } else if (s[0] == '@') {
        size_t n = strlen(s + 1);
        if (n == 0 || n > 18 || strspn(s + 1, "0123456789") != n)
            return -1;
        v = strtoll(s + 1, NULL, 10);
    } else if (fixed_digits(s, 4, &y) == 0 && s[4] == '-') {
        if (parse_rfc3339(s, &v) != 0)
            return -1;
    } else {
        long d = sg_parse_duration(s);
        if (d < 0 || now_ms < 0)
            return -1;
        v = now_ms - (long long)d * 1000;
    }
    if (v < 0 || v > MAX_MS)
        return -1;
    *out_ms = v;
    return 0;
}

void sg_fmt_rfc3339(long long ms, char *buf, size_t len)
{
    if (buf == NULL || len == 0)
        return;
    long long sec = ms / 1000, frac = ms % 1000;
    if (frac < 0) {
        frac += 1000;
        sec--;
    }
    time_t t = (time_t)sec;
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL) {
        buf[0] = '\0';
        return;
    }
    snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)frac);
}


/* ---- user lists ---------------------------------------------------------- */

int sg_user_list_parse(const char *buf, size_t len, char ***users, size_t *n, char *err,
                       size_t errlen)
{
    *users = NULL;
    *n = 0;
    if (memchr(buf, '\0', len)) {
        snprintf(err, errlen, "the file holds a NUL byte");
        return -1;
    }
    const char *p = buf, *end = buf + len;
    if (len >= 3 && memcmp(buf, "\xef\xbb\xbf", 3) == 0)
        p += 3; /* a UTF-8 byte order mark */
    size_t cap = 16, k = 0;
    char **v = malloc(sizeof(*v) * cap);
    long line = 0;
    while (v && p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t l = nl ? (size_t)(nl - p) : (size_t)(end - p);
        line++;
        if (l && p[l - 1] == '\r')
            l--;
        if (l && p[0] != '#') {
            char one[SG_IDENT_MAX + 2], e[SG_ERR_MAX];
            size_t cl = l > SG_IDENT_MAX + 1 ? SG_IDENT_MAX + 1 : l;
            memcpy(one, p, cl); /* one byte too long is enough to be refused */
            one[cl] = '\0';
            if (sg_valid_ident(one, e, sizeof(e)) != 0) {
                snprintf(err, errlen, "line %ld: %s", line, e);
                sg_strv_free(v, k);
                return -1;
            }
            if (k == cap) {
                char **nv = realloc(v, sizeof(*v) * cap * 2);
                if (nv == NULL)
                    break;
                v = nv;
                cap *= 2;
            }
            if ((v[k] = strdup(one)) == NULL)
                break;
            k++;
        }
        p = nl ? nl + 1 : end;
    }
    if (v == NULL || p < end) {
        snprintf(err, errlen, "out of memory");
        sg_strv_free(v, k);
        return -1;
    }
    if (k == 0) {
        snprintf(err, errlen, "no user in it");
        free(v);
        return -1;
    }
    *users = v;
    *n = k;
    return 0;
}
