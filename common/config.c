/* The seatgate config file and PAM-style key=value arguments: one parser for
 * the PAM module, seatctl and the demo. Errors go through a log callback. */
#include "seatgate.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

enum {
    SEEN_REDIS = 1u << 0,
    SEEN_POOL = 1u << 1,
    SEEN_FEATURE = 1u << 2,
    SEEN_FAIL = 1u << 3,
    SEEN_TIMEOUT = 1u << 4,
    SEEN_EXEMPT = 1u << 5,
    SEEN_DEBUG = 1u << 6,
    SEEN_LEASE = 1u << 7,
    SEEN_HOST_ID = 1u << 8,
    SEEN_EXEMPT_ROOT = 1u << 9,
};

void sg_config_init(sg_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    snprintf(cfg->redis, sizeof(cfg->redis), "%s", SG_DEFAULT_REDIS);
    cfg->timeout_ms = SG_DEFAULT_TIMEOUT_MS;
    cfg->exempt_root = 1;
}

/* yes/no flags: 1, 0, or -1 for anything else */
static int yes_no(const char *v)
{
    if (strcmp(v, "1") == 0 || strcmp(v, "yes") == 0 || strcmp(v, "on") == 0)
        return 1;
    if (strcmp(v, "0") == 0 || strcmp(v, "no") == 0 || strcmp(v, "off") == 0)
        return 0;
    return -1;
}

static int copy(char *dst, size_t len, const char *v)
{
    size_t n = strlen(v);
    if (n >= len)
        return -1;
    memcpy(dst, v, n + 1);
    return 0;
}

int sg_config_apply(sg_config *cfg, const char *kv, sg_log_fn log, void *ud)
{
    char err[SG_ERR_MAX];
    const char *eq = strchr(kv, '=');
    size_t klen = eq ? (size_t)(eq - kv) : strlen(kv);
    const char *v = eq ? eq + 1 : NULL;
#define KEY(s) (klen == sizeof(s) - 1 && strncmp(kv, s, klen) == 0)
    if (KEY("debug")) {
        if (v && strcmp(v, "1") != 0 && strcmp(v, "yes") != 0 && strcmp(v, "0") != 0 &&
            strcmp(v, "no") != 0) {
            log(ud, SG_LOG_ERR, "debug takes no value or yes/no, not '%s'", v);
            return -1;
        }
        cfg->debug = !v || strcmp(v, "1") == 0 || strcmp(v, "yes") == 0;
        cfg->seen |= SEEN_DEBUG;
        return 0;
    }
    if (v == NULL) {
        log(ud, SG_LOG_ERR, "unknown option '%s'", kv);
        return -1;
    }
    if (KEY("redis")) {
        sg_redis_url u;
        if (sg_url_parse(v, &u, err, sizeof(err)) != 0 || copy(cfg->redis, sizeof(cfg->redis), v)) {
            log(ud, SG_LOG_ERR, "redis: %s", err);
            return -1;
        }
        cfg->seen |= SEEN_REDIS;
    } else if (KEY("pool")) {
        if (sg_valid_name(v, err, sizeof(err)) != 0 || copy(cfg->pool, sizeof(cfg->pool), v)) {
            log(ud, SG_LOG_ERR, "pool: %s", err);
            return -1;
        }
        cfg->seen |= SEEN_POOL;
    } else if (KEY("feature")) {
        if (sg_valid_name(v, err, sizeof(err)) != 0 ||
            copy(cfg->feature, sizeof(cfg->feature), v)) {
            log(ud, SG_LOG_ERR, "feature: %s", err);
            return -1;
        }
        cfg->seen |= SEEN_FEATURE;
    } else if (KEY("fail")) {
        if (strcmp(v, "open") == 0)
            cfg->fail_open = 1;
        else if (strcmp(v, "closed") == 0)
            cfg->fail_open = 0;
        else {
            log(ud, SG_LOG_ERR, "fail must be 'open' or 'closed', not '%s'", v);
            return -1;
        }
        cfg->seen |= SEEN_FAIL;
    } else if (KEY("timeout")) {
        long ms;
        if (sg_parse_long(v, 1, 60000, &ms) != 0) {
            log(ud, SG_LOG_ERR, "timeout must be milliseconds 1..60000, not '%s'", v);
            return -1;
        }
        cfg->timeout_ms = (int)ms;
        cfg->seen |= SEEN_TIMEOUT;
    } else if (KEY("exempt_group")) {
        if (sg_valid_group(v, err, sizeof(err)) != 0 ||
            copy(cfg->exempt_group, sizeof(cfg->exempt_group), v)) {
            log(ud, SG_LOG_ERR, "exempt_group: %s", err);
            return -1;
        }
        cfg->seen |= SEEN_EXEMPT;
    } else if (KEY("exempt_root")) {
        int b = yes_no(v);
        if (b < 0) {
            log(ud, SG_LOG_ERR, "exempt_root must be yes or no, not '%s'", v);
            return -1;
        }
        cfg->exempt_root = b;
        cfg->seen |= SEEN_EXEMPT_ROOT;
    } else if (KEY("lease")) {
        long s = sg_parse_duration(v);
        if (s <= 0) {
            log(ud, SG_LOG_ERR, "lease must be a duration like 12h, not '%s'", v);
            return -1;
        }
        cfg->lease_s = s;
        cfg->seen |= SEEN_LEASE;
    } else if (KEY("host_id")) {
        char id[80];
        if (sg_host_id(v, id, sizeof(id), err, sizeof(err)) != 0 ||
            copy(cfg->host_id, sizeof(cfg->host_id), id)) {
            log(ud, SG_LOG_ERR, "host_id: %s", err);
            return -1;
        }
        cfg->seen |= SEEN_HOST_ID;
    } else {
        log(ud, SG_LOG_ERR, "unknown option '%.*s'", (int)klen, kv);
        return -1;
    }
#undef KEY
    return 0;
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' || s[n - 1] == '\r'))
        s[--n] = '\0';
    return s;
}

/* Owned by root (or by whoever runs us: a test, a user's own seatctl) and
 * not writable by group or others (a directory with the sticky bit may be):
 * as sshd treats its keys. why gets the reason when it is not. */
static int trusted(const struct stat *st, int dir, char *why, size_t whylen)
{
    if (st->st_uid != 0 && st->st_uid != geteuid()) {
        snprintf(why, whylen, "owned by uid %lu, not root", (unsigned long)st->st_uid);
        return 0;
    }
    if ((st->st_mode & (S_IWGRP | S_IWOTH)) && !(dir && (st->st_mode & S_ISVTX) && st->st_uid == 0)) {
        snprintf(why, whylen, "writable by %s", (st->st_mode & S_IWOTH) ? "others" : "its group");
        return 0;
    }
    return 1;
}

/* The file (already open as fd) and every directory above it: 0 trusted,
 * -1 not (logged), 1 it is /dev/null. */
static int check_trust(int fd, const char *path, sg_log_fn log, void *ud)
{
    struct stat st;
    char why[96];
    if (fstat(fd, &st) != 0) {
        log(ud, SG_LOG_ERR, "cannot stat %s: %s", path, strerror(errno));
        return -1;
    }
    if (S_ISCHR(st.st_mode) && major(st.st_rdev) == 1 && minor(st.st_rdev) == 3)
        return 1; /* /dev/null: no settings, the usual way to say so */
    if (!S_ISREG(st.st_mode)) {
        log(ud, SG_LOG_ERR, "%s is not a regular file; ignoring it", path);
        return -1;
    }
    if (!trusted(&st, 0, why, sizeof(why))) {
        log(ud, SG_LOG_ERR, "%s is %s; refusing it (chown root and chmod 600 it)", path, why);
        return -1;
    }
    char dir[PATH_MAX];
    if (realpath(path, dir) == NULL) {
        log(ud, SG_LOG_ERR, "cannot resolve %s: %s", path, strerror(errno));
        return -1;
    }
    for (char *slash = strrchr(dir, '/'); slash != NULL; slash = strrchr(dir, '/')) {
        if (slash == dir)
            slash[1] = '\0';
        else
            *slash = '\0';
        if (stat(dir, &st) != 0) {
            log(ud, SG_LOG_ERR, "cannot stat %s: %s", dir, strerror(errno));
            return -1;
        }
        if (!trusted(&st, 1, why, sizeof(why))) {
            log(ud, SG_LOG_ERR, "%s: its directory %s is %s; refusing it", path, dir, why);
            return -1;
        }
        if (slash == dir)
            break;
    }
    return 0;
}

int sg_config_read(sg_config *cfg, const char *path, int missing_ok, sg_log_fn log, void *ud)
{
    FILE *f = fopen(path, "re");
    if (f == NULL) {
        if (missing_ok && errno == ENOENT)
            return 0;
        log(ud, SG_LOG_ERR, "cannot read %s: %s", path, strerror(errno));
        return -1;
    }
    int trust = check_trust(fileno(f), path, log, ud);
    if (trust != 0) {
        fclose(f);
        return trust > 0 ? 0 : -1;
    }
    /* Every good line is applied, also after a bad one, so that what a
     * caller must honour even in a broken file (an exemption) is known; the
     * result says the file was bad. */
    char line[2048];
    int lineno = 0, rc = 0;
    while (fgets(line, sizeof(line), f)) {
        lineno++;
        if (strchr(line, '\n') == NULL && !feof(f)) {
            log(ud, SG_LOG_ERR, "%s:%d: line too long", path, lineno);
            rc = -1;
            break;
        }
        char *s = trim(line);
        if (*s == '\0' || *s == '#')
            continue;
        /* "key = value" -> "key=value" */
        char buf[2048];
        char *eq = strchr(s, '=');
        if (eq) {
            *eq = '\0';
            snprintf(buf, sizeof(buf), "%s=%s", trim(s), trim(eq + 1));
        } else {
            snprintf(buf, sizeof(buf), "%s", s);
        }
        if (sg_config_apply(cfg, buf, log, ud) != 0) {
            log(ud, SG_LOG_ERR, "%s:%d: invalid setting", path, lineno);
            rc = -1;
        }
    }
    if (rc == 0 && ferror(f)) { /* e.g. a directory: fopen works, reading does not */
        log(ud, SG_LOG_ERR, "cannot read %s: %s", path, strerror(errno));
        rc = -1;
    }
    fclose(f);
    return rc;
}
