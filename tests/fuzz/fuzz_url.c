/* libFuzzer target: Redis URL parsing and redaction (common/url.c).
 * Checks, beyond "no crash, no UB": a parsed URL is well-formed, its redacted
 * form never depends on the password and parses back to the same address, and
 * an error message never echoes the user-info part of the input. */
#include "seatgate.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "fuzz_url: check failed: %s (line %d)\n", #c, __LINE__);               \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#define TERMINATED(a) CHECK(memchr((a), '\0', sizeof(a)) != NULL)

static void check_parsed(const sg_redis_url *u)
{
    TERMINATED(u->host);
    TERMINATED(u->path);
    TERMINATED(u->user);
    TERMINATED(u->password);
    TERMINATED(u->master);
    CHECK(u->db >= 0);
    switch (u->kind) {
    case SG_URL_TCP:
        CHECK(u->host[0] != '\0');
        CHECK(u->port >= 1 && u->port <= 65535);
        CHECK(u->nsentinels == 0);
        break;
    case SG_URL_UNIX:
        CHECK(u->path[0] == '/');
        break;
    case SG_URL_SENTINEL:
        CHECK(u->nsentinels >= 1 && u->nsentinels <= SG_SENTINELS_MAX);
        for (int i = 0; i < u->nsentinels; i++) {
            TERMINATED(u->sentinels[i].host);
            CHECK(u->sentinels[i].host[0] != '\0');
            CHECK(u->sentinels[i].port >= 1 && u->sentinels[i].port <= 65535);
        }
        CHECK(sg_valid_name(u->master, NULL, 0) == 0);
        break;
    case SG_URL_CLUSTER: /* seed nodes in sentinels[], the first as host:port */
        CHECK(u->nsentinels >= 1 && u->nsentinels <= SG_SENTINELS_MAX);
        for (int i = 0; i < u->nsentinels; i++) {
            TERMINATED(u->sentinels[i].host);
            CHECK(u->sentinels[i].host[0] != '\0');
            CHECK(u->sentinels[i].port >= 1 && u->sentinels[i].port <= 65535);
        }
        CHECK(strcmp(u->host, u->sentinels[0].host) == 0 && u->port == u->sentinels[0].port);
        CHECK(u->db == 0 && u->master[0] == '\0');
        break;
    default:
        CHECK(0);
    }
}

static void check_redacted(const sg_redis_url *u, size_t size)
{
    char a[4096], b[4096];
    sg_url_redacted(u, a, sizeof(a));
    CHECK(strlen(a) < sizeof(a) - 1);

    /* the password does not show: another password gives the same text */
    sg_redis_url v = *u;
    if (v.password[0]) {
        memset(v.password, 0, sizeof(v.password));
        v.password[0] = 'x';
    }
    sg_url_redacted(&v, b, sizeof(b));
    CHECK(strcmp(a, b) == 0);

    /* what is logged parses back to the same address (a user name is printed
     * decoded, so only without one; a unix path likewise only when it decodes
     * to nothing that needs encoding) */
    int plain_path = 1;
    for (const unsigned char *p = (const unsigned char *)u->path; *p; p++)
        if (*p <= 0x20 || *p == 0x7f || *p == '%' || *p == '?' || *p == '&')
            plain_path = 0;
    if (u->user[0] == '\0' && (u->kind != SG_URL_UNIX || plain_path)) {
        sg_redis_url w;
        char err[SG_ERR_MAX];
        CHECK(sg_url_parse(a, &w, err, sizeof(err)) == 0);
        CHECK(w.kind == u->kind);
        CHECK(strcmp(w.host, u->host) == 0 && w.port == u->port);
        CHECK(strcmp(w.path, u->path) == 0);
        CHECK(w.nsentinels == u->nsentinels);
        for (int i = 0; i < u->nsentinels; i++)
            CHECK(strcmp(w.sentinels[i].host, u->sentinels[i].host) == 0 &&
                  w.sentinels[i].port == u->sentinels[i].port);
        CHECK(strcmp(w.master, u->master) == 0);
        if (u->kind != SG_URL_SENTINEL)
            CHECK(w.db == u->db);
    }

    /* a short buffer is cut, never overrun (ASan watches the exact size) */
    size_t len = size % 80;
    char *small = malloc(len ? len : 1);
    if (small) {
        sg_url_redacted(u, small, len);
        if (len)
            CHECK(memchr(small, '\0', len) != NULL);
        free(small);
    }
}

/* The user-info of the input: after "://", up to the last '@'. */
static int userinfo(const char *s, const char **ui, size_t *n)
{
    const char *p = strstr(s, "://");
    if (!p)
        return 0;
    p += 3;
    const char *at = strrchr(p, '@');
    if (!at)
        return 0;
    *ui = p;
    *n = (size_t)(at - p);
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    char *s = malloc(size + 1);
    if (s == NULL)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';

    sg_redis_url u;
    char err[SG_ERR_MAX];
    err[0] = '\0';
    int rc = sg_url_parse(s, &u, err, sizeof(err));
    CHECK(rc == 0 || rc == -1);
    if (rc == 0) {
        check_parsed(&u);
        check_redacted(&u, size);
    } else {
        CHECK(err[0] != '\0');
        CHECK(strlen(err) < sizeof(err));
        /* an error never shows the user-info (it may hold the password); only
         * checked when that text is distinctive enough to look for */
        const char *ui;
        size_t n;
        if (userinfo(s, &ui, &n) && n >= 6 && n < 100) {
            char needle[100];
            memcpy(needle, ui, n);
            needle[n] = '\0';
            /* the URL shown in "redis URL '...': reason" */
            const char *q1 = strchr(err, '\'');
            const char *q2 = q1 ? strstr(q1 + 1, "': ") : NULL;
            /* a needle with '*' or '.' can be completed by what the
             * redaction itself writes ("***", "...") */
            if (q2 && strstr(s, needle) == ui && strstr(ui + 1, needle) == NULL &&
                strpbrk(needle, "*.") == NULL) {
                char shown[SG_ERR_MAX];
                snprintf(shown, sizeof(shown), "%.*s", (int)(q2 - q1 - 1), q1 + 1);
                /* a cut URL ends in "...", which is not from the URL (and
                 * could complete a needle that itself ends in dots) */
                size_t sl = strlen(shown);
                if (sl >= 3 && strcmp(shown + sl - 3, "...") == 0)
                    shown[sl - 3] = '\0';
                CHECK(strstr(shown, needle) == NULL);
            }
        }
    }

    /* tiny error buffers, exactly sized */
    size_t errlen = size % 9;
    char *e = malloc(errlen ? errlen : 1);
    if (e) {
        sg_redis_url u2;
        CHECK(sg_url_parse(s, &u2, errlen ? e : NULL, errlen) == rc);
        if (rc != 0 && errlen)
            CHECK(memchr(e, '\0', errlen) != NULL);
        free(e);
    }
    free(s);
    return 0;
}
