/* Redis URL parsing: redis://, unix://, sentinel://, redis+cluster://. */
#include "seatgate.h"
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define fail(err, errlen, ...) sg_err_rc(err, errlen, -1, __VA_ARGS__)

static int hex(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decode [s, s+n) into out (size outlen). */
static int pct_decode(const char *s, size_t n, char *out, size_t outlen)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)s[i];
        if (c == '%') {
            if (i + 2 >= n)
                return -1;
            int h = hex(s[i + 1]), l = hex(s[i + 2]);
            if (h < 0 || l < 0)
                return -1;
            c = h * 16 + l;
            i += 2;
        }
        if (c == 0 || o + 1 >= outlen)
            return -1;
        out[o++] = (char)c;
    }
    out[o] = '\0';
    return 0;
}

static int parse_port(const char *s, size_t n, int *port)
{
    if (n == 0 || n > 5)
        return -1;
    long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    if (v < 1 || v > 65535)
        return -1;
    *port = (int)v;
    return 0;
}

/* host[:port] or [v6]:port in [s, s+n) */
static int parse_hostport(const char *s, size_t n, sg_hostport *hp, int defport)
{
    const char *colon = NULL;
    size_t hlen;
    const char *h = s;
    if (n > 0 && s[0] == '[') {
        const char *rb = memchr(s, ']', n);
        if (!rb)
            return -1;
        h = s + 1;
        hlen = (size_t)(rb - s - 1);
        if (rb + 1 < s + n) {
            if (rb[1] != ':')
                return -1;
            colon = rb + 1;
        }
    } else {
        colon = memchr(s, ':', n);
        hlen = colon ? (size_t)(colon - s) : n;
    }
    if (hlen == 0 || hlen >= sizeof(hp->host))
        return -1;
    for (size_t i = 0; i < hlen; i++) {
        char c = h[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '-' || c == ':' || c == '_'))
            return -1;
    }
    memcpy(hp->host, h, hlen);
    hp->host[hlen] = '\0';
    hp->port = defport;
    if (colon && parse_port(colon + 1, (size_t)(s + n - colon - 1), &hp->port) != 0)
        return -1;
    return 0;
}

static int parse_db(const char *s, int *db)
{
    long v;
    if (sg_parse_long(s, 0, 1000000, &v) != 0)
        return -1;
    *db = (int)v;
    return 0;
}

static int parse_userinfo(const char *s, size_t n, sg_redis_url *u)
{
    const char *colon = memchr(s, ':', n);
    if (!colon)
        return pct_decode(s, n, u->password, sizeof(u->password)); /* bare password */
    if (pct_decode(s, (size_t)(colon - s), u->user, sizeof(u->user)) != 0)
        return -1;
    return pct_decode(colon + 1, (size_t)(s + n - colon - 1), u->password, sizeof(u->password));
}

/* The URL as error messages show it: the user and password, and every query
 * value but db, replaced by "***" (errors end up in syslog and nginx -t
 * output), and cut to a readable length so the reason after it survives. */
static void shown_url(const char *url, char *out, size_t outlen)
{
    char tmp[1100];
    size_t o = 0;
#define PUT(s, n)                                                                                  \
    do {                                                                                           \
        size_t n_ = (n);                                                                           \
        if (o + n_ < sizeof(tmp)) {                                                                \
            memcpy(tmp + o, (s), n_);                                                              \
            o += n_;                                                                               \
        }                                                                                          \
    } while (0)
    const char *p = strstr(url, "://");
    p = p ? p + 3 : url;
    PUT(url, (size_t)(p - url));
    const char *at = strrchr(p, '@');
    if (at) {
        PUT("***", 3);
        p = at;
    }
    const char *q = strchr(p, '?');
    PUT(p, q ? (size_t)(q - p) : strlen(p));
    while (q) {
        PUT(q, 1); /* '?' or '&' */
        const char *kv = q + 1;
        q = strchr(kv, '&');
        size_t kn = q ? (size_t)(q - kv) : strlen(kv);
        const char *eq = memchr(kv, '=', kn);
        if (eq && !(eq - kv == 2 && strncmp(kv, "db", 2) == 0)) {
            PUT(kv, (size_t)(eq - kv) + 1);
            PUT("***", 3);
        } else {
            PUT(kv, kn);
        }
    }
#undef PUT
    tmp[o] = '\0';
    if (o > 120)
        snprintf(out, outlen, "%.117s...", tmp);
    else
        snprintf(out, outlen, "%.120s", tmp);
}

/* "user:password@" before end (the last '@' ends it), parsed into u and
 * skipped: 0, or -1 when malformed */
static int take_userinfo(const char **s, const char *end, sg_redis_url *u)
{
    const char *at = NULL;
    for (const char *p = *s; p < end; p++)
        if (*p == '@')
            at = p;
    if (at == NULL)
        return 0;
    if (parse_userinfo(*s, (size_t)(at - *s), u) != 0)
        return -1;
    *s = at + 1;
    return 0;
}

int sg_url_parse(const char *url, sg_redis_url *u, char *err, size_t errlen)
{
    memset(u, 0, sizeof(*u));
    if (url == NULL || *url == '\0')
        return fail(err, errlen, "redis URL is empty");
    if (strlen(url) > 1000)
        return fail(err, errlen, "redis URL is too long");
    for (const char *p = url; *p; p++)
        if ((unsigned char)*p <= 0x20 || *p == 0x7f)
            return fail(err, errlen, "redis URL contains a space or control character");
    char shown[128];
    shown_url(url, shown, sizeof(shown));

    if (strncmp(url, "redis://", 8) == 0) {
        u->kind = SG_URL_TCP;
        const char *s = url + 8;
        const char *slash = strchr(s, '/');
        const char *end = slash ? slash : s + strlen(s);
        if (take_userinfo(&s, end, u) != 0)
            return fail(err, errlen, "redis URL '%s': bad user or password", shown);
        sg_hostport hp;
        if (parse_hostport(s, (size_t)(end - s), &hp, 6379) != 0)
            return fail(err, errlen, "redis URL '%s': bad host or port", shown);
        memcpy(u->host, hp.host, sizeof(u->host));
        u->port = hp.port;
        if (slash && slash[1] != '\0' && parse_db(slash + 1, &u->db) != 0)
            return fail(err, errlen, "redis URL '%s': bad database number", shown);
        return 0;
    }
    if (strncmp(url, "unix://", 7) == 0) {
        u->kind = SG_URL_UNIX;
        const char *s = url + 7;
        const char *q = strchr(s, '?');
        size_t n = q ? (size_t)(q - s) : strlen(s);
        if (n == 0 || s[0] != '/')
            return fail(err, errlen, "redis URL '%s': unix socket path must be absolute", shown);
        if (n >= sizeof(u->path))
            return fail(err, errlen, "redis URL '%s': socket path too long", shown);
        if (pct_decode(s, n, u->path, sizeof(u->path)) != 0)
            return fail(err, errlen, "redis URL '%s': bad socket path", shown);
        while (q) {
            const char *kv = q + 1;
            q = strchr(kv, '&');
            size_t kn = q ? (size_t)(q - kv) : strlen(kv);
            char tmp[300];
            if (kn >= sizeof(tmp))
                return fail(err, errlen, "redis URL '%s': bad query", shown);
            memcpy(tmp, kv, kn);
            tmp[kn] = '\0';
            if (strncmp(tmp, "db=", 3) == 0) {
                if (parse_db(tmp + 3, &u->db) != 0)
                    return fail(err, errlen, "redis URL '%s': bad database number", shown);
            } else if (strncmp(tmp, "password=", 9) == 0) {
                if (pct_decode(tmp + 9, kn - 9, u->password, sizeof(u->password)) != 0)
                    return fail(err, errlen, "redis URL '%s': bad password", shown);
            } else if (strncmp(tmp, "user=", 5) == 0) {
                if (pct_decode(tmp + 5, kn - 5, u->user, sizeof(u->user)) != 0)
                    return fail(err, errlen, "redis URL '%s': bad user", shown);
            } else {
                return fail(err, errlen, "redis URL '%s': unknown parameter '%.*s'", shown,
                            (int)strcspn(tmp, "="), tmp);
            }
        }
        return 0;
    }
    if (strncmp(url, "sentinel://", 11) == 0) {
        u->kind = SG_URL_SENTINEL;
        const char *s = url + 11;
        const char *at = strchr(s, '@');
        const char *slash = strchr(s, '/');
        if (at && (!slash || at < slash)) {
            if (parse_userinfo(s, (size_t)(at - s), u) != 0)
                return fail(err, errlen, "redis URL '%s': bad user or password", shown);
            s = at + 1;
        }
        slash = strchr(s, '/');
        if (!slash || slash[1] == '\0')
            return fail(err, errlen, "redis URL '%s': sentinel URL needs /master-name", shown);
        const char *p = s;
        while (p < slash) {
            const char *comma = memchr(p, ',', (size_t)(slash - p));
            const char *e = comma ? comma : slash;
            if (u->nsentinels == SG_SENTINELS_MAX)
                return fail(err, errlen, "redis URL '%s': more than %d sentinels", shown,
                            SG_SENTINELS_MAX);
            if (parse_hostport(p, (size_t)(e - p), &u->sentinels[u->nsentinels], 26379) != 0)
                return fail(err, errlen, "redis URL '%s': bad sentinel address", shown);
            u->nsentinels++;
            if (comma && comma + 1 == slash) /* "h1,/m": an empty last address */
                return fail(err, errlen, "redis URL '%s': bad sentinel address", shown);
            p = comma ? comma + 1 : slash;
        }
        if (u->nsentinels == 0)
            return fail(err, errlen, "redis URL '%s': no sentinel address", shown);
        const char *m = slash + 1;
        const char *mslash = strchr(m, '/');
        size_t mn = mslash ? (size_t)(mslash - m) : strlen(m);
        if (mn == 0 || mn >= sizeof(u->master))
            return fail(err, errlen, "redis URL '%s': bad master name", shown);
        memcpy(u->master, m, mn);
        u->master[mn] = '\0';
        char e2[SG_ERR_MAX];
        if (sg_valid_name(u->master, e2, sizeof(e2)) != 0)
            return fail(err, errlen, "redis URL '%s': bad master name", shown);
        if (mslash && mslash[1] != '\0' && parse_db(mslash + 1, &u->db) != 0)
            return fail(err, errlen, "redis URL '%s': bad database number", shown);
        return 0;
    }
    if (strncmp(url, "redis+cluster://", 16) == 0) {
        u->kind = SG_URL_CLUSTER;
        const char *s = url + 16;
        const char *slash = strchr(s, '/');
        const char *end = slash ? slash : s + strlen(s);
        if (take_userinfo(&s, end, u) != 0)
            return fail(err, errlen, "redis URL '%s': bad user or password", shown);
        for (const char *p = s; p < end;) {
            const char *comma = memchr(p, ',', (size_t)(end - p));
            const char *e = comma ? comma : end;
            if (u->nsentinels == SG_SENTINELS_MAX)
                return fail(err, errlen, "redis URL '%s': more than %d seed nodes", shown,
                            SG_SENTINELS_MAX);
            if (parse_hostport(p, (size_t)(e - p), &u->sentinels[u->nsentinels], 6379) != 0 ||
                (comma && comma + 1 == end))
                return fail(err, errlen, "redis URL '%s': bad node address", shown);
            u->nsentinels++;
            p = comma ? comma + 1 : end;
        }
        if (u->nsentinels == 0)
            return fail(err, errlen, "redis URL '%s': no node address", shown);
        memcpy(u->host, u->sentinels[0].host, sizeof(u->host));
        u->port = u->sentinels[0].port;
        if (slash && slash[1] != '\0' && strcmp(slash, "/0") != 0)
            return fail(err, errlen, "redis URL '%s': a cluster has only database 0", shown);
        return 0;
    }
    return fail(err, errlen,
                "redis URL '%s': expected redis://, unix://, sentinel:// or redis+cluster://",
                shown);
}

void sg_url_redacted(const sg_redis_url *u, char *buf, size_t len)
{
    /* "user:***@", "***@", "user:@" (an empty password stays one on re-parse) */
    const char *colon = u->user[0] ? ":" : "";
    const char *pw = u->password[0] ? "***" : "";
    const char *at = u->user[0] || u->password[0] ? "@" : "";
    switch (u->kind) {
    case SG_URL_TCP: {
        int v6 = strchr(u->host, ':') != NULL; /* keep [v6]:port apart */
        snprintf(buf, len, "redis://%s%s%s%s%s%s%s:%d/%d", u->user, colon, pw, at, v6 ? "[" : "",
                 u->host, v6 ? "]" : "", u->port, u->db);
        break;
    }
    case SG_URL_UNIX:
        snprintf(buf, len, "unix://%s?db=%d", u->path, u->db);
        break;
    default: {
        int cl = u->kind == SG_URL_CLUSTER;
        size_t o = cl ? (size_t)snprintf(buf, len, "redis+cluster://%s%s%s%s", u->user, colon,
                                         pw, at)
                      : (size_t)snprintf(buf, len, "sentinel://");
        for (int i = 0; i < u->nsentinels && o < len; i++) {
            int v6 = strchr(u->sentinels[i].host, ':') != NULL;
            o += (size_t)snprintf(buf + o, len - o, "%s%s%s%s:%d", i ? "," : "", v6 ? "[" : "",
                                  u->sentinels[i].host, v6 ? "]" : "", u->sentinels[i].port);
        }
        if (o < len && !cl)
            snprintf(buf + o, len - o, "/%s", u->master);
    }
    }
}
