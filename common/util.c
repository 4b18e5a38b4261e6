/* Identity validation, number and duration parsing, result names. */
#include "seatgate.h"
#include "internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const result_names[SG_RESULT_COUNT] = {
    "granted_named",       "granted_floating", "granted_free",    "denied_unassigned",
    "denied_exhausted",    "denied_excluded",  "denied_feature",  "denied_multiplexing",
    "denied_disabled",     "error_backend",
};

const char *sg_result_name(sg_result r)
{
    if ((int)r < 0 || r >= SG_RESULT_COUNT)
        return "error_backend";
    return result_names[r];
}

int sg_result_parse(const char *s, sg_result *out)
{
    for (int i = 0; i < SG_RESULT_COUNT; i++) {
        if (strcmp(s, result_names[i]) == 0) {
            *out = (sg_result)i;
            return 0;
        }
    }
    return -1;
}

int sg_result_granted(sg_result r)
{
    return r == SG_GRANTED_NAMED || r == SG_GRANTED_FLOATING || r == SG_GRANTED_FREE;
}

const char *sg_seat_name(sg_seat s)
{
    switch (s) {
    case SG_SEAT_NAMED:
        return "named";
    case SG_SEAT_FLOATING:
        return "floating";
    case SG_SEAT_FREE:
        return "free";
    default:
        return "none";
    }
}

int sg_err_rc(char *err, size_t errlen, int rc, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return rc;
}

#define fail(err, errlen, ...) sg_err_rc(err, errlen, -1, __VA_ARGS__)

/* Length of the UTF-8 sequence at s, 0 if invalid (overlong, surrogate, >U+10FFFF). */
static size_t utf8_len(const unsigned char *s)
{
    unsigned c = s[0];
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        return (s[1] & 0xc0) == 0x80 ? 2 : 0;
    if (c >= 0xe0 && c <= 0xef) {
        if ((s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80)
            return 0;
        if (c == 0xe0 && s[1] < 0xa0)
            return 0;
        if (c == 0xed && s[1] >= 0xa0)
            return 0;
        return 3;
    }
    if (c >= 0xf0 && c <= 0xf4) {
        if ((s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80 || (s[3] & 0xc0) != 0x80)
            return 0;
        if (c == 0xf0 && s[1] < 0x90)
            return 0;
        if (c == 0xf4 && s[1] >= 0x90)
            return 0;
        return 4;
    }
    return 0;
}

static int valid_text(const char *what, const char *s, size_t max, const char *forbid, char *err,
                      size_t errlen)
{
    if (s == NULL || *s == '\0')
        return fail(err, errlen, "%s is empty", what);
    size_t n = strlen(s);
    if (n > max)
        return fail(err, errlen, "%s is longer than %zu bytes", what, max);
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        if (p[i] < 0x20 || p[i] == 0x7f)
            return fail(err, errlen, "%s contains a control character at byte %zu", what, i);
        if (forbid && p[i] < 0x80 && strchr(forbid, p[i]))
            return fail(err, errlen, "%s contains '%c', which is not allowed", what, p[i]);
        size_t l = utf8_len(p + i);
        if (l == 0)
            return fail(err, errlen, "%s is not valid UTF-8 at byte %zu", what, i);
        i += l;
    }
    if (s[0] == ' ' || s[n - 1] == ' ')
        return fail(err, errlen, "%s starts or ends with a space", what);
    return 0;
}

int sg_clean_text(const char *in, char *out, size_t outlen)
{
    int changed = 0;
    size_t k = 0;
    if (outlen == 0)
        return 1;
    for (const unsigned char *p = (const unsigned char *)(in ? in : ""); *p; p++) {
        if (k + 1 >= outlen || k >= SG_TEXT_MAX) {
            changed = 1;
            break;
        }
        int ok = *p > 0x20 && *p < 0x7f;
        out[k++] = ok ? (char)*p : '?';
        changed |= !ok;
    }
    out[k] = '\0';
    return changed;
}

int sg_valid_ident(const char *s, char *err, size_t errlen)
{
    return valid_text("identity", s, SG_IDENT_MAX, NULL, err, errlen);
}

int sg_valid_group(const char *s, char *err, size_t errlen)
{
    return valid_text("group", s, SG_IDENT_MAX, ",=", err, errlen);
}

int sg_valid_name(const char *s, char *err, size_t errlen)
{
    if (s == NULL || *s == '\0')
        return fail(err, errlen, "name is empty");
    size_t n = strlen(s);
    if (n > SG_POOL_MAX)
        return fail(err, errlen, "name '%.64s...' is longer than %d bytes", s, SG_POOL_MAX);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 (i > 0 && (c == '-' || c == '_' || c == '.'));
        if (!ok)
            return fail(err, errlen,
                        "name '%s' is not allowed: use letters, digits, '-', '_' and '.', "
                        "starting with a letter or digit",
                        s);
    }
    return 0;
}

int sg_parse_long(const char *s, long min, long max, long *out)
{
    if (s == NULL || *s == '\0')
        return -1;
    for (const char *p = (*s == '-') ? s + 1 : s; *p; p++)
        if (*p < '0' || *p > '9')
            return -1;
    if (*s == '-' && s[1] == '\0')
        return -1;
    errno = 0;
    char *end;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

void sg_hostname(char *buf, size_t len)
{
    if (len == 0)
        return;
    if (gethostname(buf, len) != 0)
        snprintf(buf, len, "localhost");
    buf[len - 1] = '\0';
}

long sg_parse_duration(const char *s)
{
    return sg_parse_duration_upto(s, 365L * 86400);
}

long sg_parse_duration_upto(const char *s, long max_s)
{
    if (s == NULL || *s == '\0')
        return -1;
    size_t n = strlen(s);
    if (n > 16)
        return -1;
    char num[17];
    memcpy(num, s, n + 1);
    long mult = 1;
    switch (num[n - 1]) {
    case 's':
        mult = 1;
        num[--n] = '\0';
        break;
    case 'm':
        mult = 60;
        num[--n] = '\0';
        break;
    case 'h':
        mult = 3600;
        num[--n] = '\0';
        break;
    case 'd':
        mult = 86400;
        num[--n] = '\0';
        break;
    default:
        break;
    }
    long v;
    if (n == 0 || num[0] == '-' || sg_parse_long(num, 0, max_s, &v) != 0)
        return -1;
    if (v > max_s / mult)
        return -1;
    return v * mult;
}

/* ---- growable buffer (internal.h) ------------------------------------------ */
int sg_buf_add(sg_buf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (p == NULL)
            return -1;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

int sg_buf_str(sg_buf *b, const char *s)
{
    return sg_buf_add(b, s, strlen(s));
}

int sg_buf_fmt(sg_buf *b, const char *fmt, ...)
{
    char tmp[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0)
        return -1;
    if ((size_t)n < sizeof(tmp))
        return sg_buf_add(b, tmp, (size_t)n);
    char *big = malloc((size_t)n + 1);
    if (big == NULL)
        return -1;
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    int rc = sg_buf_add(b, big, (size_t)n);
    free(big);
    return rc;
}

void sg_buf_free(sg_buf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

void sg_strv_free(char **v, size_t n)
{
    if (v == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/* ---- a set of strings (open addressing, FNV-1a) ---------------------------- */

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

int sg_strset_init(sg_strset *set, size_t expect)
{
    size_t n = 16;
    while (n < expect * 2 + 1)
        n *= 2;
    set->slot = calloc(n, sizeof(*set->slot));
    set->cap = set->slot ? n : 0;
    set->n = 0;
    return set->slot ? 0 : -1;
}

void sg_strset_free(sg_strset *set)
{
    free(set->slot);
    memset(set, 0, sizeof(*set));
}

/* the slot of s: where it is, or where it would go */
static size_t strset_find(const sg_strset *set, const char *s)
{
    size_t i = (size_t)fnv1a(s) & (set->cap - 1);
    while (set->slot[i].key && strcmp(set->slot[i].key, s) != 0)
        i = (i + 1) & (set->cap - 1);
    return i;
}

long sg_strset_get(const sg_strset *set, const char *s)
{
    if (set->cap == 0)
        return -1;
    size_t i = strset_find(set, s);
    return set->slot[i].key ? set->slot[i].value : -1;
}

int sg_strset_put(sg_strset *set, const char *s, long value)
{
    if ((set->n + 1) * 2 > set->cap) {
        sg_strset bigger;
        if (sg_strset_init(&bigger, set->cap ? set->cap : 8) != 0)
            return -1;
        for (size_t i = 0; i < set->cap; i++)
            if (set->slot[i].key) {
                size_t j = strset_find(&bigger, set->slot[i].key);
                bigger.slot[j] = set->slot[i];
                bigger.n++;
            }
        free(set->slot);
        *set = bigger;
    }
    size_t i = strset_find(set, s);
    if (set->slot[i].key == NULL) {
        set->slot[i].key = s;
        set->n++;
    }
    set->slot[i].value = value;
    return 0;
}
