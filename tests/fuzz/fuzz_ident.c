/* libFuzzer target: identity, group and name validation and duration parsing
 * (common/util.c), each checked against a plain reference implementation. */
#include "seatgate.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "fuzz_ident: check failed: %s (line %d)\n", #c, __LINE__);             \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* Reference: decode UTF-8 by code point arithmetic. */
static int ref_utf8_ok(const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        unsigned c = s[i];
        size_t len;
        unsigned long cp, min;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            len = 2, cp = c & 0x1f, min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            len = 3, cp = c & 0x0f, min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            len = 4, cp = c & 0x07, min = 0x10000;
        } else {
            return 0;
        }
        if (i + len > n)
            return 0;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return 0;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        i += len;
    }
    return 1;
}

static int ref_text(const char *s, size_t max, const char *forbid)
{
    size_t n = strlen(s);
    if (n == 0 || n > max)
        return -1;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f)
            return -1;
        if (forbid && strchr(forbid, c))
            return -1;
    }
    if (!ref_utf8_ok((const unsigned char *)s, n))
        return -1;
    if (s[0] == ' ' || s[n - 1] == ' ')
        return -1;
    return 0;
}

static int ref_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > SG_POOL_MAX)
        return -1;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        int alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!alnum && !(i > 0 && (c == '-' || c == '_' || c == '.')))
            return -1;
    }
    return 0;
}

/* Reference: DIGITS[s|m|h|d], at most 16 bytes, at most a year. */
static long ref_duration(const char *s)
{
    const long year = 365L * 86400;
    size_t n = strlen(s);
    if (n == 0 || n > 16)
        return -1;
    long mult = 1;
    switch (s[n - 1]) {
    case 's':
        mult = 1;
        n--;
        break;
    case 'm':
        mult = 60;
        n--;
        break;
    case 'h':
        mult = 3600;
        n--;
        break;
    case 'd':
        mult = 86400;
        n--;
        break;
    default:
        break;
    }
    if (n == 0)
        return -1;
    long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
        if (v > year)
            return -1;
    }
    return v * mult <= year ? v * mult : -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 2048)
        return 0;
    char *s = malloc(size + 1);
    if (s == NULL)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';

    char err[SG_ERR_MAX];
    int ident = sg_valid_ident(s, err, sizeof(err));
    CHECK(ident == 0 || (ident == -1 && err[0] != '\0'));
    int group = sg_valid_group(s, err, sizeof(err));
    CHECK(group == 0 || (group == -1 && err[0] != '\0'));
    int name = sg_valid_name(s, err, sizeof(err));
    CHECK(name == 0 || (name == -1 && err[0] != '\0'));
    CHECK(ident == ref_text(s, SG_IDENT_MAX, NULL));
    CHECK(group == ref_text(s, SG_IDENT_MAX, ",="));
    CHECK(name == ref_name(s));
    /* a valid group or name is a valid identity */
    CHECK(group != 0 || ident == 0);
    CHECK(name != 0 || ident == 0);

    /* tiny, exactly sized error buffers */
    size_t errlen = size % 7;
    char *e = malloc(errlen ? errlen : 1);
    if (e) {
        CHECK(sg_valid_ident(s, errlen ? e : NULL, errlen) == ident);
        CHECK(sg_valid_group(s, errlen ? e : NULL, errlen) == group);
        CHECK(sg_valid_name(s, errlen ? e : NULL, errlen) == name);
        free(e);
    }

    long d = sg_parse_duration(s);
    CHECK(d == ref_duration(s));
    CHECK(d >= -1 && d <= 365L * 86400);

    long v = -7;
    if (sg_parse_long(s, -1000, 1000, &v) == 0)
        CHECK(v >= -1000 && v <= 1000);
    else
        CHECK(v == -7);

    sg_result r;
    if (sg_result_parse(s, &r) == 0)
        CHECK(strcmp(sg_result_name(r), s) == 0);

    free(s);
    return 0;
}
