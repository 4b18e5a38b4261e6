/* Administration: pools, assignments, users, holders and sessions. */
#include "seatgate.h"
#include "internal.h"

#include <hiredis/hiredis.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <errno.h>
#include <unistd.h>

#define seterr sg_err_rc
#define cmdv sg_cmdv

struct redisReply *sg_cmdv(sg_conn *c, char *err, size_t errlen, int argc, const char **argv)
{
    redisReply *r = sg_conn_cmd(c, argc, argv, NULL, err, errlen);
    if (r && r->type == REDIS_REPLY_ERROR) {
        seterr(err, errlen, 0, "redis: %s", r->str);
        freeReplyObject(r);
        return NULL;
    }
    return r;
}

long long sg_server_time_ms(sg_conn *c)
{
    char err[SG_ERR_MAX];
    const char *av[] = {"TIME"};
    redisReply *r = cmdv(c, err, sizeof(err), 1, av);
    long long ms = -1;
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2)
        ms = strtoll(r->element[0]->str, NULL, 10) * 1000 +
             strtoll(r->element[1]->str, NULL, 10) / 1000;
    if (r)
        freeReplyObject(r);
    return ms;
}

/* ",a,b," from "a,b" after validating each item with fn. */
static int list_field(const char *in, int (*fn)(const char *, char *, size_t), char *out,
                      size_t outlen, char *err, size_t errlen)
{
    size_t o = 0;
    out[o++] = ',';
    out[o] = '\0';
    if (in == NULL)
        return 0;
    const char *p = in;
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        char item[SG_IDENT_MAX + 2];
        if (n == 0 || n > SG_IDENT_MAX)
            return seterr(err, errlen, -1, "empty or too long item in list '%s'", in);
        memcpy(item, p, n);
        item[n] = '\0';
        char e[SG_ERR_MAX];
        if (fn(item, e, sizeof(e)) != 0)
            return seterr(err, errlen, -1, "%s", e);
        /* skip duplicates */
        char probe[SG_IDENT_MAX + 8];
        snprintf(probe, sizeof(probe), ",%s,", item);
        if (strstr(out, probe) == NULL) {
            if (o + n + 2 > outlen)
                return seterr(err, errlen, -1, "list '%s' is too long", in);
            memcpy(out + o, item, n);
            o += n;
            out[o++] = ',';
            out[o] = '\0';
        }
        if (!comma)
            break;
        p = comma + 1;
        if (*p == '\0')
            return seterr(err, errlen, -1, "list '%s' ends with a comma", in);
    }
    return 0;
}

static int gk_field(const sg_group_k *v, int n, char *out, size_t outlen, char *err,
                    size_t errlen)
{
    size_t o = 0;
    out[o++] = ',';
    out[o] = '\0';
    for (int i = 0; i < n; i++) {
        char e[SG_ERR_MAX];
        if (sg_valid_group(v[i].group, e, sizeof(e)) != 0)
            return seterr(err, errlen, -1, "%s", e);
        if (v[i].k < 0)
            return seterr(err, errlen, -1, "group %s: count must not be negative", v[i].group);
        for (int j = 0; j < i; j++)
            if (strcmp(v[i].group, v[j].group) == 0)
                return seterr(err, errlen, -1, "group %s given twice", v[i].group);
        int w = snprintf(out + o, outlen - o, "%s=%ld,", v[i].group, v[i].k);
        if (w < 0 || (size_t)w >= outlen - o)
            return seterr(err, errlen, -1, "too many groups");
        o += (size_t)w;
    }
    return 0;
}


struct redisReply *sg_script_kv(sg_conn *c, sg_script s, const char **keys, int nkeys,
                                const char **kv, int nkv, char *err, size_t errlen)
{
    const char **av = malloc(sizeof(*av) * (size_t)(nkeys + nkv + 1));
    if (av == NULL) {
        seterr(err, errlen, 0, "out of memory");
        return NULL;
    }
    for (int i = 0; i < nkeys; i++)
        av[i] = keys[i];
    for (int i = 0; i < nkv; i++)
        av[nkeys + i] = kv[i];
    redisReply *r = sg_script_run(c, s, nkeys, nkeys + nkv, av, err, errlen);
    free(av);
    return r;
}

/* The named keys of a pool, as strings and as an argv. */
typedef struct {
    char k[SG_K_COUNT][SG_KEY_MAX];
    const char *v[SG_K_COUNT];
    int n;
} keyset;

static void keyset_of(keyset *ks, const char *pool, const sg_key *which, int n)
{
    ks->n = n;
    for (int i = 0; i < n; i++) {
        sg_keyname(which[i], pool, ks->k[i], SG_KEY_MAX);
        ks->v[i] = ks->k[i];
    }
}

const char *sg_reply_str0(const redisReply *r, const char *name)
{
    const char *v = sg_reply_str(r, name);
    return v ? v : "";
}

/* Split "\n"-separated text into a malloc'd vector (NULL/"" -> none). */
int sg_split_lines(const char *s, char ***out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (s == NULL || *s == '\0')
        return 0;
    size_t cap = 1;
    for (const char *p = s; *p; p++)
        cap += *p == '\n';
    char **v = calloc(cap, sizeof(*v));
    if (v == NULL)
        return -1;
    size_t k = 0;
    const char *p = s;
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        if (len) {
            v[k] = strndup(p, len);
            if (v[k] == NULL) {
                sg_strv_free(v, k);
                return -1;
            }
            k++;
        }
        if (!nl)
            break;
        p = nl + 1;
    }
    *out = v;
    *n = k;
    return 0;
}

/* what the provisioning role (seatgate-sync) may write: the settings (read
 * only to it) and the audit stream (write only) are addressed by name */
const sg_key sg_user_apply_keys[SG_USER_APPLY_NKEYS] = {
    SG_K_USERS, SG_K_LEASES, SG_K_SESS, SG_K_SESSIDX, SG_K_SESSINFO, SG_K_GCOUNT, SG_K_HG};
const sg_key sg_assign_keys[SG_ASSIGN_NKEYS] = {
    SG_K_NAMED, SG_K_LEASES, SG_K_SESS, SG_K_SESSIDX, SG_K_GCOUNT, SG_K_HG};

/* ---- user records -----------------------------------------------------------
 * A record is "D" "S" version ",g1,g2," (see common/lua/lib.lua). A user
 * matters to a pool when the record is disabled or a service account, or
 * names a group the pool watches (tracked or pending groups). */
int sg_rec_matters(const char *rec, const char *watch)
{
    if (rec == NULL || strlen(rec) < 3)
        return 0;
    if (rec[0] == '1' || rec[1] == '1')
        return 1;
    const char *g = strchr(rec + 2, ',');
    if (g == NULL || watch == NULL)
        return 0;
    for (const char *p = g + 1; *p;) {
        const char *e = strchr(p, ',');
        if (e == NULL)
            break;
        char probe[SG_IDENT_MAX + 3];
        size_t len = (size_t)(e - p);
        if (len > 0 && len <= SG_IDENT_MAX) {
            probe[0] = ',';
            memcpy(probe + 1, p, len);
            probe[len + 1] = ',';
            probe[len + 2] = '\0';
            if (strstr(watch, probe))
                return 1;
        }
        p = e + 1;
    }
    return 0;
}

typedef struct {
    char *user;
    char *old; /* the record the pool may hold ("" none) */
    char *rec; /* the record to apply ("" none) */
} urow;

static void urows_free(urow *v, size_t n)
{
    if (v == NULL)
        return;
    for (size_t i = 0; i < n; i++) {
        free(v[i].user);
        free(v[i].old);
        free(v[i].rec);
    }
    free(v);
}

#define APPLY_BATCH 1000

int sg_registry_records(sg_conn *c, char *const *users, size_t n, char **recs, char *err,
                        size_t errlen)
{
    return sg_hmget_all(c, SG_KEY_USERS, users, NULL, n, recs, err, errlen);
}

/* Read the registry records of rows[].user into rows[].rec ("" when none). */
static int read_records(sg_conn *c, urow *rows, size_t n, char *err, size_t errlen)
{
    char **names = calloc(n + 1, sizeof(*names));
    char **recs = calloc(n + 1, sizeof(*recs));
    int rc = SG_OK;
    if (names == NULL || recs == NULL)
        rc = seterr(err, errlen, SG_EBACKEND, "out of memory");
    for (size_t i = 0; rc == SG_OK && i < n; i++)
        names[i] = rows[i].user;
    if (rc == SG_OK)
        rc = sg_hmget_all(c, SG_KEY_USERS, names, NULL, n, recs, err, errlen);
    for (size_t i = 0; rc == SG_OK && i < n; i++) {
        free(rows[i].rec);
        rows[i].rec = recs[i] ? recs[i] : strdup(""); /* an unknown user: "" */
        recs[i] = NULL;
        if (rows[i].rec == NULL)
            rc = seterr(err, errlen, SG_EBACKEND, "out of memory");
    }
    sg_strv_free(recs, n);
    free(names);
    return rc;
}

/* Apply rows[] (user, rec) to one pool's projection, in batches. */
static int apply_pool(sg_conn *c, const char *pool, urow *const *rows, size_t n,
                      const char *via, const char *desc, int quiet, long *revoked, char *err,
                      size_t errlen)
{
    keyset ks;
    keyset_of(&ks, pool, sg_user_apply_keys, SG_USER_APPLY_NKEYS);
    char host[256];
    sg_hostname(host, sizeof(host));
    for (size_t i = 0; i < n; i += APPLY_BATCH) {
        size_t k = n - i < APPLY_BATCH ? n - i : APPLY_BATCH;
        sg_buf b = {0};
        for (size_t j = 0; j < k; j++) {
            if (sg_buf_str(&b, rows[i + j]->user) || sg_buf_add(&b, "\t", 1) ||
                sg_buf_str(&b, rows[i + j]->rec) || sg_buf_add(&b, "\n", 1)) {
                sg_buf_free(&b);
                return seterr(err, errlen, SG_EBACKEND, "out of memory");
            }
        }
        const char *kv[] = {"pool", pool, "via", via ? via : "cli", "host", host,
                            "desc", desc, "records", b.p ? b.p : "", "quiet", quiet ? "1" : "0"};
        redisReply *r = sg_script_kv(c, SG_SCRIPT_USER_APPLY, ks.v, ks.n, kv, 12, err, errlen);
        sg_buf_free(&b);
        if (r == NULL)
            return SG_EBACKEND;
        if (revoked)
            *revoked += (long)sg_reply_ll(r, "revoked");
        freeReplyObject(r);
    }
    return SG_OK;
}

/* Describe a record change for the audit entries of the pools. */
void sg_rec_desc(const char *old, const char *rec, char *buf, size_t len)
{
    const char *og = (old && strlen(old) >= 3) ? strchr(old + 2, ',') : NULL;
    const char *ng = (rec && strlen(rec) >= 3) ? strchr(rec + 2, ',') : NULL;
    snprintf(buf, len, "disabled=%c service_account=%c groups=%s%s%s",
             rec && rec[0] == '1' ? '1' : '0', rec && rec[0] && rec[1] == '1' ? '1' : '0',
             ng ? ng : ",", og && ng && strcmp(og, ng) != 0 ? " was " : "",
             og && ng && strcmp(og, ng) != 0 ? og : "");
}

/* The groups a pool watches: tracked and pending, as ",a,b,". */
static int pool_watch(sg_conn *c, char **pools, size_t np, char ***watch, char *err,
                      size_t errlen)
{
    char **w = calloc(np + 1, sizeof(*w));
    if (w == NULL)
        return seterr(err, errlen, SG_EBACKEND, "out of memory");
    char k[SG_KEY_MAX];
    for (size_t i = 0; i < np; i++) {
        sg_keyname(SG_K_CONF, pools[i], k, sizeof(k));
        const char *av[] = {"HMGET", k, "tracked", "pending"};
        if (sg_conn_append(c, 4, av, NULL) != 0) {
            sg_strv_free(w, np);
            return seterr(err, errlen, SG_EBACKEND, "redis: cannot queue a command");
        }
    }
    int rc = SG_OK;
    for (size_t i = 0; i < np; i++) {
        redisReply *r = sg_conn_reply(c, err, errlen);
        if (r == NULL) {
            rc = SG_EBACKEND;
            break; /* the connection is unusable now */
        }
        sg_buf b = {0};
        sg_buf_str(&b, ",");
        for (size_t j = 0; r->type == REDIS_REPLY_ARRAY && j < r->elements; j++)
            if (r->element[j]->type == REDIS_REPLY_STRING && r->element[j]->len > 1)
                sg_buf_str(&b, r->element[j]->str + 1);
        w[i] = b.p ? b.p : strdup(",");
        freeReplyObject(r);
    }
    if (rc != SG_OK) {
        sg_strv_free(w, np);
        return rc;
    }
    *watch = w;
    return SG_OK;
}

/* After records changed in the registry: apply them to every pool they
 * matter to (as they are now or as they were), then read the registry again
 * and re-apply what another writer changed meanwhile, so that racing writers
 * end with every pool holding the newest record. */
static int apply_everywhere(sg_conn *c, urow *rows, size_t n, const char *via, long *revoked,
                            char *err, size_t errlen)
{
    if (n == 0)
        return SG_OK;
    char **pools = NULL, **watch = NULL;
    size_t np = 0;
    int rc = sg_pool_list(c, &pools, &np, err, errlen);
    if (rc != SG_OK)
        return rc;
    if (np == 0) {
        sg_strv_free(pools, np);
        return SG_OK;
    }
    rc = pool_watch(c, pools, np, &watch, err, errlen);
    urow **sel = rc == SG_OK ? malloc(sizeof(*sel) * n) : NULL;
    if (rc == SG_OK && sel == NULL)
        rc = seterr(err, errlen, SG_EBACKEND, "out of memory");
    for (int round = 0; rc == SG_OK && round < 8; round++) {
        for (size_t p = 0; p < np && rc == SG_OK; p++) {
            size_t k = 0;
            for (size_t i = 0; i < n; i++)
                if (rows[i].rec && (sg_rec_matters(rows[i].old, watch[p]) ||
                                    sg_rec_matters(rows[i].rec, watch[p])))
                    sel[k++] = &rows[i];
            char desc[SG_ERR_MAX] = "";
            if (k == 1)
                sg_rec_desc(sel[0]->old, sel[0]->rec, desc, sizeof(desc));
            else if (k > 1)
                snprintf(desc, sizeof(desc), "user records changed (%zu users)", k);
            if (k)
                rc = apply_pool(c, pools[p], sel, k, via, desc, 0, revoked, err, errlen);
        }
        if (rc != SG_OK)
            break;
        /* what we applied becomes "old"; the registry's records are read again */
        size_t moved = 0;
        for (size_t i = 0; i < n; i++) {
            if (rows[i].rec) {
                free(rows[i].old);
                rows[i].old = rows[i].rec;
                rows[i].rec = NULL;
            }
        }
        rc = read_records(c, rows, n, err, errlen);
        for (size_t i = 0; rc == SG_OK && i < n; i++) {
            if (rows[i].rec && strcmp(rows[i].rec, rows[i].old ? rows[i].old : "") == 0) {
                free(rows[i].rec);
                rows[i].rec = NULL; /* unchanged: nothing more to do */
            } else {
                moved++;
            }
        }
        if (moved == 0)
            break;
    }
    free(sel);
    sg_strv_free(watch, np);
    sg_strv_free(pools, np);
    return rc;
}

/* ---- pools ------------------------------------------------------------------ */

static int strcmp_p(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Members of the registry sets named (SMEMBERS each), sorted and unique. */
static int collect_members(sg_conn *c, const char **keys, size_t nk, char ***out, size_t *n,
                           char *err, size_t errlen)
{
    char **v = NULL;
    size_t k = 0, cap = 0;
    for (size_t i = 0; i < nk; i++) {
        const char *av[] = {"SMEMBERS", keys[i]};
        redisReply *r = cmdv(c, err, errlen, 2, av);
        if (r == NULL) {
            sg_strv_free(v, k);
            return SG_EBACKEND;
        }
        if (k + r->elements + 1 > cap) {
            cap = (k + r->elements + 1) * 2;
            char **nv = realloc(v, sizeof(*v) * cap);
            if (nv == NULL) {
                freeReplyObject(r);
                sg_strv_free(v, k);
                return seterr(err, errlen, SG_EBACKEND, "out of memory");
            }
            v = nv;
        }
        for (size_t j = 0; j < r->elements; j++) {
            v[k] = strdup(r->element[j]->str);
            if (v[k] == NULL) {
                freeReplyObject(r);
                sg_strv_free(v, k);
                return seterr(err, errlen, SG_EBACKEND, "out of memory");
            }
            k++;
        }
        freeReplyObject(r);
    }
    if (k > 1) {
        qsort(v, k, sizeof(*v), strcmp_p);
        size_t w = 1;
        for (size_t i = 1; i < k; i++) {
            if (strcmp(v[i], v[w - 1]) == 0)
                free(v[i]);
            else
                v[w++] = v[i];
        }
        k = w;
    }
    *out = v;
    *n = k;
    return SG_OK;
}

/* The users a pool's projection may hold: members of the groups (",a,b,"),
 * and with flags every disabled user and service account; sorted, unique. */
static int watched_members(sg_conn *c, const char *groups, int flags, char ***out, size_t *n,
                           char *err, size_t errlen)
{
    size_t ng = 0;
    for (const char *p = groups; *p; p++)
        ng += *p == ',';
    char(*gk)[SG_KEY_MAX] = calloc(ng + 3, sizeof(*gk));
    const char **keys = calloc(ng + 3, sizeof(*keys));
    if (gk == NULL || keys == NULL) {
        free(gk);
        free(keys);
        return seterr(err, errlen, SG_EBACKEND, "out of memory");
    }
    size_t nk = 0;
    if (flags) {
        keys[nk++] = SG_KEY_DISABLED;
        keys[nk++] = SG_KEY_SVC;
    }
    for (const char *p = groups; *p;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len > 0 && len <= SG_IDENT_MAX) {
            snprintf(gk[nk], SG_KEY_MAX, "%s%.*s", SG_KEY_GROUP_PREFIX, (int)len, p);
            keys[nk] = gk[nk];
            nk++;
        }
        if (!e)
            break;
        p = e + 1;
    }
    int rc = collect_members(c, keys, nk, out, n, err, errlen);
    free(gk);
    free(keys);
    return rc;
}

/* Project into a pool the records its rules need: members of the groups
 * (",a,b,"), and with flags every disabled user and service account. */
static int project(sg_conn *c, const char *pool, const char *groups, int flags,
                   const char *via, long *count, char *err, size_t errlen)
{
    char **users = NULL;
    size_t n = 0;
    int rc = watched_members(c, groups, flags, &users, &n, err, errlen);
    if (rc != SG_OK)
        return rc;
    urow *rows = calloc(n + 1, sizeof(*rows));
    if (rows == NULL) {
        sg_strv_free(users, n);
        return seterr(err, errlen, SG_EBACKEND, "out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        rows[i].user = users[i]; /* moved */
        if ((rows[i].old = strdup("")) == NULL)
            rc = seterr(err, errlen, SG_EBACKEND, "out of memory");
    }
    free(users);
    if (rc == SG_OK)
        rc = read_records(c, rows, n, err, errlen);
    urow **sel = rc == SG_OK ? malloc(sizeof(*sel) * (n + 1)) : NULL;
    if (rc == SG_OK && sel == NULL)
        rc = seterr(err, errlen, SG_EBACKEND, "out of memory");
    /* apply, then read again until nothing moved (a racing user change) */
    for (int round = 0; rc == SG_OK && round < 8; round++) {
        size_t k = 0;
        for (size_t i = 0; i < n; i++)
            if (rows[i].rec)
                sel[k++] = &rows[i];
        if (k == 0)
            break;
        rc = apply_pool(c, pool, sel, k, via, "projected for the pool's rules", 1, NULL, err,
                        errlen);
        for (size_t i = 0; rc == SG_OK && i < n; i++) {
            if (rows[i].rec) {
                free(rows[i].old);
                rows[i].old = rows[i].rec;
                rows[i].rec = NULL;
            }
        }
        if (rc == SG_OK)
            rc = read_records(c, rows, n, err, errlen);
        for (size_t i = 0; rc == SG_OK && i < n; i++) {
            if (rows[i].rec && strcmp(rows[i].rec, rows[i].old) == 0) {
                free(rows[i].rec);
                rows[i].rec = NULL;
            }
        }
    }
    free(sel);
    if (count)
        *count += (long)n;
    urows_free(rows, n);
    return rc;
}

void sg_pool_outcome_free(sg_pool_outcome *o)
{
    if (o == NULL)
        return;
    sg_strv_free(o->revoked, o->nrevoked);
    sg_strv_free(o->unassigned, o->nunassigned);
    o->revoked = o->unassigned = NULL;
    o->nrevoked = o->nunassigned = 0;
}

int sg_pool_set(sg_conn *c, const sg_pool *p, const char *via, sg_pool_outcome *out, char *err,
                size_t errlen)
{
    char e[SG_ERR_MAX];
    if (out)
        memset(out, 0, sizeof(*out));
    if (sg_valid_name(p->name, e, sizeof(e)) != 0)
        return seterr(err, errlen, SG_EINPUT, "pool: %s", e);
    char features[1100], include[1100], exclude[1100], reserve[1100], cap[1100];
    char fdel[1100], idel[1100], xdel[1100], rdel[1100], cdel[1100];
    if (list_field(p->features, sg_valid_name, features, sizeof(features), e, sizeof(e)))
        return seterr(err, errlen, SG_EINPUT, "--features: %s", e);
    if (list_field(p->include, sg_valid_group, include, sizeof(include), e, sizeof(e)))
        return seterr(err, errlen, SG_EINPUT, "--include: %s", e);
    if (list_field(p->exclude, sg_valid_group, exclude, sizeof(exclude), e, sizeof(e)))
        return seterr(err, errlen, SG_EINPUT, "--exclude: %s", e);
    if (list_field(p->features_del[0] ? p->features_del : NULL, sg_valid_name, fdel,
                   sizeof(fdel), e, sizeof(e)))
        return seterr(err, errlen, SG_EINPUT, "--no-feature: %s", e);
    if (list_field(p->include_del[0] ? p->include_del : NULL, sg_valid_group, idel,
                   sizeof(idel), e, sizeof(e)))
        return seterr(err, errlen, SG_EINPUT, "--no-include: %s", e);
    if (list_field(p->exclude_del[0] ? p->exclude_del : NULL, sg_valid_group, xdel,
                   sizeof(xdel), e, sizeof(e)))
        return seterr(err, errlen, SG_EINPUT, "--no-exclude: %s", e);
    if (list_field(p->reserve_del[0] ? p->reserve_del : NULL, sg_valid_group, rdel,
                   sizeof(rdel), e, sizeof(e)))
        return seterr(err, errlen, SG_EINPUT, "--no-reserve: %s", e);
    if (list_field(p->cap_del[0] ? p->cap_del : NULL, sg_valid_group, cdel, sizeof(cdel), e,
                   sizeof(e)))
        return seterr(err, errlen, SG_EINPUT, "--no-cap: %s", e);
    if (gk_field(p->reserve, p->nreserve, reserve, sizeof(reserve), e, sizeof(e)))
        return seterr(err, errlen, SG_EINPUT, "--reserve: %s", e);
    if (gk_field(p->cap, p->ncap, cap, sizeof(cap), e, sizeof(e)))
        return seterr(err, errlen, SG_EINPUT, "--cap: %s", e);
    if ((p->set_mask & SG_PSET_MAX_LEASE) && p->max_lease_s < 1)
        return seterr(err, errlen, SG_EINPUT, "--max-lease must be at least 1s");
    if ((p->set_mask & SG_PSET_IDLE) && p->idle_s < 1)
        return seterr(err, errlen, SG_EINPUT, "--idle-timeout must be at least 1s");
    if ((p->set_mask & SG_PSET_USAGE_BUCKET) && p->usage_bucket_s != 0 &&
        (p->usage_bucket_s < 60 || p->usage_bucket_s > 86400 || 86400 % p->usage_bucket_s != 0))
        return seterr(err, errlen, SG_EINPUT,
                      "--usage-bucket must divide a day and be at least 60s (60s, 5m, 15m, 1h)");
    if ((p->set_mask & SG_PSET_USAGE_RETENTION) && p->usage_retention_s < 86400)
        return seterr(err, errlen, SG_EINPUT, "--usage-retention must be at least 1d");

    static const sg_key which[] = {SG_K_CONF,    SG_K_NAMED,  SG_K_LEASES, SG_K_SESS,
                                   SG_K_SESSIDX, SG_K_SESSINFO, SG_K_GCOUNT, SG_K_HG,
                                   SG_K_LASTUSED, SG_K_USERS, SG_K_AUDIT};
    keyset ks;
    keyset_of(&ks, p->name, which, 11);
    char host[256];
    sg_hostname(host, sizeof(host));
    char nums[12][24];
    const char *kv[80];
    int n = 0;
    sg_buf desc = {0};
    kv[n++] = "pool";
    kv[n++] = p->name;
    kv[n++] = "via";
    kv[n++] = via ? via : "cli";
    kv[n++] = "host";
    kv[n++] = host;
#define NUM(flag, field, val, i)                                                                   \
    if (p->set_mask & (flag)) {                                                                    \
        snprintf(nums[i], sizeof(nums[i]), "%ld", (val));                                          \
        kv[n++] = field;                                                                           \
        kv[n++] = nums[i];                                                                         \
        sg_buf_fmt(&desc, "%s%s=%s", desc.len ? " " : "", field, nums[i]);                         \
    }
    NUM(SG_PSET_NAMED, "named", p->named, 0)
    NUM(SG_PSET_FLOATING, "floating", p->floating, 1)
    NUM(SG_PSET_IDLE, "idle", p->idle_s, 2)
    NUM(SG_PSET_OVERDRAFT, "overdraft", p->overdraft_pct, 3)
    NUM(SG_PSET_MUX_LIMIT, "mux_limit", p->mux_limit, 4)
    NUM(SG_PSET_MUX_WINDOW, "mux_window", p->mux_window_s, 5)
    NUM(SG_PSET_MAX_LEASE, "max_lease", p->max_lease_s, 6)
    NUM(SG_PSET_AUDIT_RETENTION, "audit_retention", p->audit_retention_s, 7)
    NUM(SG_PSET_DENY_FOLD, "deny_fold", p->deny_fold_s, 8)
    NUM(SG_PSET_USAGE_BUCKET, "usage_bucket", p->usage_bucket_s, 9)
    NUM(SG_PSET_USAGE_RETENTION, "usage_retention", p->usage_retention_s, 10)
    NUM(SG_PSET_TEST_CLOCK, "test_clock", (long)p->test_clock_ms, 11)
#undef NUM
#define STR(cond, field, val)                                                                      \
    if (cond) {                                                                                    \
        kv[n++] = field;                                                                           \
        kv[n++] = val;                                                                             \
        sg_buf_fmt(&desc, "%s%s=%s", desc.len ? " " : "", field, val);                             \
    }
    STR(p->set_mask & SG_PSET_FEATURES, "features", features)
    STR(p->set_mask & SG_PSET_INCLUDE, "include", include)
    STR(p->set_mask & SG_PSET_EXCLUDE, "exclude", exclude)
    STR(p->features_del[0], "features_del", fdel)
    STR(p->include_del[0], "include_del", idel)
    STR(p->exclude_del[0], "exclude_del", xdel)
    STR(p->nreserve > 0, "reserve_set", reserve)
    STR(p->ncap > 0, "cap_set", cap)
    STR(p->reserve_del[0], "reserve_del", rdel)
    STR(p->cap_del[0], "cap_del", cdel)
#undef STR
    kv[n++] = "desc";
    kv[n++] = desc.p ? desc.p : "";
    int base = n;

    /* the index first: a user change racing this creation sees the pool */
    const char *sa[] = {"SADD", SG_KEY_POOLS, p->name};
    redisReply *x = cmdv(c, err, errlen, 3, sa);
    if (x == NULL) {
        sg_buf_free(&desc);
        return SG_EBACKEND;
    }
    int added = x->type == REDIS_REPLY_INTEGER && x->integer == 1;
    freeReplyObject(x);

    char projected[4096] = ",";
    int flags_done = 0, rc = SG_EBACKEND;
    long count = 0;
    seterr(err, errlen, 0, "pool %s: its rules kept changing while it was being set", p->name);
    for (int attempt = 0; attempt < 6; attempt++) {
        n = base;
        kv[n++] = "projected";
        kv[n++] = projected;
        kv[n++] = "flags";
        kv[n++] = flags_done ? "1" : "0";
        char pc[24];
        snprintf(pc, sizeof(pc), "%ld", count);
        kv[n++] = "projected_count";
        kv[n++] = pc;
        redisReply *r = sg_script_kv(c, SG_SCRIPT_POOL_COMMIT, ks.v, ks.n, kv, n, err, errlen);
        if (r == NULL) {
            rc = SG_EBACKEND;
            break;
        }
        const char *status = sg_reply_str0(r, "status");
        if (strcmp(status, "refused") == 0) {
            rc = seterr(err, errlen, SG_EDENIED, "%s", sg_reply_str0(r, "message"));
            freeReplyObject(r);
            if (added) { /* a refused create leaves nothing behind */
                const char *ex[] = {"EXISTS", ks.k[0]};
                x = cmdv(c, e, sizeof(e), 2, ex);
                if (x && x->integer == 0) {
                    const char *sr[] = {"SREM", SG_KEY_POOLS, p->name};
                    freeReplyObject(x);
                    x = cmdv(c, e, sizeof(e), 3, sr);
                }
                if (x)
                    freeReplyObject(x);
            }
            break;
        }
        if (strcmp(status, "project") == 0) {
            int flags = strcmp(sg_reply_str0(r, "flags"), "1") == 0;
            char groups[4096];
            snprintf(groups, sizeof(groups), "%s", sg_reply_str0(r, "groups"));
            freeReplyObject(r);
            rc = project(c, p->name, groups, flags, via, &count, err, errlen);
            if (rc != SG_OK)
                break;
            snprintf(projected, sizeof(projected), "%s", groups);
            flags_done = flags_done || flags;
            rc = SG_EBACKEND;
            continue;
        }
        if (strcmp(status, "created") == 0 || strcmp(status, "updated") == 0) {
            rc = SG_OK;
            if (out) {
                out->created = strcmp(status, "created") == 0;
                if (sg_split_lines(sg_reply_str0(r, "revoked"), &out->revoked, &out->nrevoked) != 0 ||
                    sg_split_lines(sg_reply_str0(r, "unassigned"), &out->unassigned, &out->nunassigned) !=
                        0)
                    rc = seterr(err, errlen, SG_EBACKEND,
                                "out of memory (the pool was set nevertheless)");
                out->projected = count;
            }
        } else {
            rc = seterr(err, errlen, SG_EBACKEND, "redis: unexpected reply to pool set");
        }
        freeReplyObject(r);
        break;
    }
    sg_buf_free(&desc);
    return rc;
}

int sg_pool_list(sg_conn *c, char ***names, size_t *n, char *err, size_t errlen)
{
    const char *keys[] = {SG_KEY_POOLS};
    return collect_members(c, keys, 1, names, n, err, errlen);
}

/* "a,b" from ",a,b," */
static void unlist(const char *in, char *out, size_t len)
{
    if (in == NULL || strlen(in) < 2) {
        out[0] = '\0';
        return;
    }
    snprintf(out, len, "%s", in + 1);
    size_t n = strlen(out);
    if (n && out[n - 1] == ',')
        out[n - 1] = '\0';
}

/* Validate the pool name and read the server clock as a ZCOUNT/ZRANGEBYSCORE
 * lower bound "(now": what is live is strictly after now. */
static int live_bound(sg_conn *c, const char *pool, char *bound, size_t blen, char *err,
                      size_t errlen)
{
    char e[SG_ERR_MAX];
    if (sg_valid_name(pool, e, sizeof(e)) != 0)
        return seterr(err, errlen, SG_EINPUT, "pool: %s", e);
    long long now = sg_pool_now_ms(c, pool);
    if (now < 0)
        return seterr(err, errlen, SG_EBACKEND, "redis: TIME failed");
    snprintf(bound, blen, "(%lld", now);
    return SG_OK;
}

long long sg_pool_now_ms(sg_conn *c, const char *pool)
{
    char kc[SG_KEY_MAX], err[SG_ERR_MAX];
    sg_keyname(SG_K_CONF, pool, kc, sizeof(kc));
    const char *av[] = {"HGET", kc, "test_clock"};
    redisReply *r = cmdv(c, err, sizeof(err), 3, av);
    long long t = 0;
    if (r && r->type == REDIS_REPLY_STRING)
        t = atoll(r->str);
    if (r)
        freeReplyObject(r);
    return t > 0 ? t : sg_server_time_ms(c);
}

/* One field of a pool's conf hash into sg_pool_info (unknown fields are skipped). */
static void conf_field(sg_pool_info *out, const char *f, const char *v)
{
    static const struct {
        const char *name;
        size_t off;
    } longs[] = {
        {"named", offsetof(sg_pool_info, named)},
        {"floating", offsetof(sg_pool_info, floating)},
        {"idle", offsetof(sg_pool_info, idle_s)},
        {"max_lease", offsetof(sg_pool_info, max_lease_s)},
        {"overdraft", offsetof(sg_pool_info, overdraft_pct)},
        {"mux_limit", offsetof(sg_pool_info, mux_limit)},
        {"mux_window", offsetof(sg_pool_info, mux_window_s)},
        {"audit_retention", offsetof(sg_pool_info, audit_retention_s)},
        {"deny_fold", offsetof(sg_pool_info, deny_fold_s)},
        {"usage_bucket", offsetof(sg_pool_info, usage_bucket_s)},
        {"usage_retention", offsetof(sg_pool_info, usage_retention_s)},
    },
      lists[] = {
          {"features", offsetof(sg_pool_info, features)},
          {"include", offsetof(sg_pool_info, include)},
          {"exclude", offsetof(sg_pool_info, exclude)},
          {"reserve", offsetof(sg_pool_info, reserve)},
          {"cap", offsetof(sg_pool_info, cap)},
      };
    for (size_t i = 0; i < sizeof(longs) / sizeof(longs[0]); i++)
        if (strcmp(f, longs[i].name) == 0) {
            *(long *)((char *)out + longs[i].off) = atol(v);
            return;
        }
    for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++)
        if (strcmp(f, lists[i].name) == 0) {
            unlist(v, (char *)out + lists[i].off, sizeof(out->features));
            return;
        }
    if (strcmp(f, "test_clock") == 0)
        out->test_clock_ms = atoll(v);
    else if (strcmp(f, "state") == 0)
        snprintf(out->state, sizeof(out->state), "%s", v);
}

int sg_pool_get(sg_conn *c, const char *pool, sg_pool_info *out, char *err, size_t errlen)
{
    char e[SG_ERR_MAX];
    memset(out, 0, sizeof(*out));
    if (sg_valid_name(pool, e, sizeof(e)) != 0)
        return seterr(err, errlen, SG_EINPUT, "pool: %s", e);
    char nowx[32];
    int rc = live_bound(c, pool, nowx, sizeof(nowx), err, errlen);
    if (rc != SG_OK)
        return rc;
    char kc[SG_KEY_MAX], kn[SG_KEY_MAX], kl[SG_KEY_MAX], ks[SG_KEY_MAX], ke[SG_KEY_MAX];
    sg_keyname(SG_K_EPOCH, pool, ke, sizeof(ke));
    sg_keyname(SG_K_CONF, pool, kc, sizeof(kc));
    sg_keyname(SG_K_NAMED, pool, kn, sizeof(kn));
    sg_keyname(SG_K_LEASES, pool, kl, sizeof(kl));
    sg_keyname(SG_K_SESS, pool, ks, sizeof(ks));
    const char *a0[] = {"HGETALL", kc};
    const char *a1[] = {"SCARD", kn};
    const char *a2[] = {"ZCOUNT", kl, nowx, "+inf"};
    const char *a3[] = {"ZCOUNT", ks, nowx, "+inf"};
    const char *a4[] = {"GET", ke};
    const char **cmds[] = {a0, a1, a2, a3, a4};
    int argcs[] = {2, 2, 4, 4, 2};
    for (int i = 0; i < 5; i++)
        if (sg_conn_append(c, argcs[i], cmds[i], NULL) != 0)
            return seterr(err, errlen, SG_EBACKEND, "redis: cannot queue a command");
    redisReply *r[5] = {0};
    rc = SG_OK;
    for (int i = 0; i < 5; i++) {
        r[i] = sg_conn_reply(c, err, errlen);
        if (r[i] == NULL) {
            rc = SG_EBACKEND;
            break;
        }
        if (r[i]->type == REDIS_REPLY_ERROR && rc == SG_OK)
            rc = seterr(err, errlen, SG_EBACKEND, "redis: %s", r[i]->str);
    }
    if (rc == SG_OK && (r[0]->type != REDIS_REPLY_ARRAY || r[0]->elements == 0))
        rc = seterr(err, errlen, SG_EINPUT, "no such pool: %s", pool);
    if (rc == SG_OK) {
        snprintf(out->name, sizeof(out->name), "%s", pool);
        out->idle_s = SG_DEFAULT_IDLE_S;
        out->mux_window_s = 3600;
        out->max_lease_s = 43200;
        out->audit_retention_s = 400L * 86400;
        out->deny_fold_s = 60;
        out->usage_bucket_s = 300;
        out->usage_retention_s = 400L * 86400;
        for (size_t i = 0; i + 1 < r[0]->elements; i += 2)
            conf_field(out, r[0]->element[i]->str, r[0]->element[i + 1]->str);
        if (strcmp(out->state, "ready") != 0)
            rc = seterr(err, errlen, SG_EINPUT, "no such pool: %s (being created)", pool);
        out->capacity = out->floating + out->floating * out->overdraft_pct / 100;
        out->assigned = (long)r[1]->integer;
        out->in_use = (long)r[2]->integer;
        out->sessions = (long)r[3]->integer;
        out->epoch = r[4]->type == REDIS_REPLY_STRING ? atoll(r[4]->str) : 0;
    }
    for (int i = 0; i < 5; i++)
        if (r[i])
            freeReplyObject(r[i]);
    return rc;
}

int sg_pool_delete(sg_conn *c, const char *pool, const char *via, char *err, size_t errlen)
{
    char e[SG_ERR_MAX];
    if (sg_valid_name(pool, e, sizeof(e)) != 0)
        return seterr(err, errlen, SG_EINPUT, "pool: %s", e);
    static const sg_key which[] = {SG_K_CONF,    SG_K_NAMED,  SG_K_USERS, SG_K_LEASES,
                                   SG_K_SESS,    SG_K_SESSIDX, SG_K_SESSINFO, SG_K_GCOUNT,
                                   SG_K_HG,      SG_K_FOLD,   SG_K_LASTUSED, SG_K_STATS,
                                   SG_K_EPOCH};
    keyset ks;
    keyset_of(&ks, pool, which, 13);
    char host[256];
    sg_hostname(host, sizeof(host));
    const char *kv[] = {"pool", pool, "via", via ? via : "cli", "host", host};
    redisReply *r = sg_script_kv(c, SG_SCRIPT_POOL_DELETE, ks.v, ks.n, kv, 6, err, errlen);
    if (r == NULL)
        return SG_EBACKEND;
    int existed = sg_reply_ll(r, "existed") == 1;
    freeReplyObject(r);
    /* the pool first, then the index: a reader may meet a listed pool that is
     * gone (and skips it), never a live pool that is not listed */
    const char *sr[] = {"SREM", SG_KEY_POOLS, pool};
    redisReply *x = cmdv(c, err, errlen, 3, sr);
    if (x == NULL)
        return SG_EBACKEND;
    freeReplyObject(x);
    if (!existed)
        return seterr(err, errlen, SG_EINPUT, "no such pool: %s", pool);
    return SG_OK;
}

/* ---- assignments ------------------------------------------------------------ */

int sg_assign(sg_conn *c, const char *pool, int assign, const char **users, size_t n,
              const char *via, long *converted, char *err, size_t errlen)
{
    char e[SG_ERR_MAX];
    if (converted)
        *converted = 0;
    if (sg_valid_name(pool, e, sizeof(e)) != 0)
        return seterr(err, errlen, SG_EINPUT, "pool: %s", e);
    if (n == 0)
        return seterr(err, errlen, SG_EINPUT, "no user given");
    sg_buf b = {0};
    for (size_t i = 0; i < n; i++) {
        if (sg_valid_ident(users[i], e, sizeof(e)) != 0) {
            sg_buf_free(&b);
            return seterr(err, errlen, SG_EINPUT, "user #%zu: %s", i + 1, e);
        }
        if (sg_buf_str(&b, users[i]) || sg_buf_add(&b, "\n", 1)) {
            sg_buf_free(&b);
            return seterr(err, errlen, SG_EBACKEND, "out of memory");
        }
    }
    keyset ks;
    keyset_of(&ks, pool, sg_assign_keys, SG_ASSIGN_NKEYS);
    char host[256];
    sg_hostname(host, sizeof(host));
    const char *kv[] = {"pool", pool, "via", via ? via : "cli", "host", host,
                        "mode", assign ? "assign" : "unassign", "users", b.p};
    redisReply *r = sg_script_kv(c, SG_SCRIPT_ASSIGN, ks.v, ks.n, kv, 10, err, errlen);
    sg_buf_free(&b);
    if (r == NULL)
        return SG_EBACKEND;
    int rc = SG_OK;
    const char *status = sg_reply_str0(r, "status");
    if (strcmp(status, "refused") == 0)
        rc = seterr(err, errlen, SG_EDENIED, "%s", sg_reply_str0(r, "message"));
    else if (strcmp(status, "no_pool") == 0)
        rc = seterr(err, errlen, SG_EINPUT, "%s", sg_reply_str0(r, "message"));
    else if (strcmp(status, "ok") != 0)
        rc = seterr(err, errlen, SG_EBACKEND, "redis: unexpected reply to assign");
    else if (converted) {
        const char *cv = sg_reply_str0(r, "converted");
        *converted = *cv ? 1 : 0;
        for (const char *p = cv; *p; p++)
            *converted += *p == '\n';
    }
    freeReplyObject(r);
    return rc;
}

/* ---- users ------------------------------------------------------------------ */

/* Send change lines to the registry (batches), collect what changed. */
static int user_put(sg_conn *c, const char *const *lines, size_t n, const char *via, urow **out,
                    size_t *nout, long *unchanged, char *err, size_t errlen)
{
    urow *rows = NULL;
    size_t k = 0, cap = 0;
    const char *keys[] = {SG_KEY_USERS, SG_KEY_UVER, SG_KEY_DISABLED, SG_KEY_SVC};
    int rc = SG_OK;
    for (size_t i = 0; i < n && rc == SG_OK; i += APPLY_BATCH) {
        size_t m = n - i < APPLY_BATCH ? n - i : APPLY_BATCH;
        sg_buf b = {0};
        for (size_t j = 0; j < m; j++)
            if (sg_buf_str(&b, lines[i + j]) || sg_buf_add(&b, "\n", 1))
                rc = seterr(err, errlen, SG_EBACKEND, "out of memory");
        if (rc != SG_OK) {
            sg_buf_free(&b);
            break;
        }
        char host[256];
        sg_hostname(host, sizeof(host));
        const char *kv[] = {"changes", b.p, "via", via ? via : "cli", "host", host};
        redisReply *r = sg_script_kv(c, SG_SCRIPT_USER_PUT, keys, 4, kv, 6, err, errlen);
        sg_buf_free(&b);
        if (r == NULL) {
            rc = SG_EBACKEND;
            break;
        }
        if (unchanged)
            *unchanged += (long)sg_reply_ll(r, "unchanged");
        char **ls;
        size_t nl;
        if (sg_split_lines(sg_reply_str0(r, "changed"), &ls, &nl) != 0) {
            freeReplyObject(r);
            rc = seterr(err, errlen, SG_EBACKEND, "out of memory");
            break;
        }
        freeReplyObject(r);
        if (k + nl > cap) {
            cap = (k + nl) * 2 + 16;
            urow *nr = realloc(rows, sizeof(*rows) * cap);
            if (nr == NULL) {
                sg_strv_free(ls, nl);
                rc = seterr(err, errlen, SG_EBACKEND, "out of memory");
                break;
            }
            rows = nr;
        }
        for (size_t j = 0; j < nl; j++) {
            char *t1 = strchr(ls[j], '\t'), *t2 = t1 ? strchr(t1 + 1, '\t') : NULL;
            if (t2 == NULL)
                continue;
            *t1 = *t2 = '\0';
            rows[k].user = strdup(ls[j]);
            rows[k].old = strdup(t1 + 1);
            rows[k].rec = strdup(t2 + 1);
            k++;
            if (!rows[k - 1].user || !rows[k - 1].old || !rows[k - 1].rec)
                rc = seterr(err, errlen, SG_EBACKEND, "out of memory");
        }
        sg_strv_free(ls, nl);
    }
    if (rc != SG_OK) {
        urows_free(rows, k);
        return rc;
    }
    *out = rows;
    *nout = k;
    return SG_OK;
}

int sg_user_set(sg_conn *c, const char *user, const sg_user_change *ch, const char *via,
                char *err, size_t errlen)
{
    char e[SG_ERR_MAX];
    if (sg_valid_ident(user, e, sizeof(e)) != 0)
        return seterr(err, errlen, SG_EINPUT, "user: %s", e);
    char groups[1100] = ",";
    if (ch->groups && list_field(ch->groups[0] ? ch->groups : NULL, sg_valid_group, groups,
                                 sizeof(groups), e, sizeof(e)) != 0)
        return seterr(err, errlen, SG_EINPUT, "--groups: %s", e);
    char line[1500];
    snprintf(line, sizeof(line), "%s\t%c\t%c\t%c\t%s", user,
             ch->disabled < 0 ? '-' : (ch->disabled ? '1' : '0'),
             ch->service < 0 ? '-' : (ch->service ? '1' : '0'), ch->groups ? '=' : '-',
             groups + 1);
    const char *lines[] = {line};
    urow *rows = NULL;
    size_t n = 0;
    int rc = user_put(c, lines, 1, via, &rows, &n, NULL, err, errlen);
    if (rc == SG_OK)
        rc = apply_everywhere(c, rows, n, via, NULL, err, errlen);
    urows_free(rows, n);
    return rc;
}

int sg_user_import(sg_conn *c, const sg_user_row *in, size_t n, const char *via, long *changed,
                   long *unchanged, char *err, size_t errlen)
{
    if (changed)
        *changed = 0;
    if (unchanged)
        *unchanged = 0;
    char **lines = calloc(n + 1, sizeof(*lines));
    if (lines == NULL)
        return seterr(err, errlen, SG_EBACKEND, "out of memory");
    int rc = SG_OK;
    for (size_t i = 0; i < n && rc == SG_OK; i++) {
        size_t len = strlen(in[i].user) + strlen(in[i].groups) + 16;
        lines[i] = malloc(len);
        if (lines[i] == NULL) {
            rc = seterr(err, errlen, SG_EBACKEND, "out of memory");
            break;
        }
        snprintf(lines[i], len, "%s\t%c\t%c\t=\t%s", in[i].user, in[i].disabled ? '1' : '0',
                 in[i].service ? '1' : '0', in[i].groups);
    }
    urow *rows = NULL;
    size_t k = 0;
    long same = 0;
    if (rc == SG_OK)
        rc = user_put(c, (const char *const *)lines, n, via, &rows, &k, &same, err, errlen);
    sg_strv_free(lines, n);
    if (rc == SG_OK)
        rc = apply_everywhere(c, rows, k, via, NULL, err, errlen);
    urows_free(rows, k);
    if (changed)
        *changed = (long)k;
    if (unchanged)
        *unchanged = same;
    return rc;
}

static void rec_parse(const char *rec, int *dis, int *svc, long long *ver, char *groups,
                      size_t glen)
{
    *dis = *svc = 0;
    *ver = 0;
    groups[0] = '\0';
    if (rec == NULL || strlen(rec) < 3)
        return;
    *dis = rec[0] == '1';
    *svc = rec[1] == '1';
    *ver = strtoll(rec + 2, NULL, 10);
    const char *g = strchr(rec + 2, ',');
    if (g)
        unlist(g, groups, glen);
}

void sg_user_info_free(sg_user_info *u)
{
    if (u == NULL)
        return;
    free(u->pools);
    u->pools = NULL;
    u->npools = 0;
}

int sg_user_get(sg_conn *c, const char *user, sg_user_info *out, char *err, size_t errlen)
{
    char e[SG_ERR_MAX];
    memset(out, 0, sizeof(*out));
    if (sg_valid_ident(user, e, sizeof(e)) != 0)
        return seterr(err, errlen, SG_EINPUT, "user: %s", e);
    snprintf(out->user, sizeof(out->user), "%s", user);
    const char *hg[] = {"HGET", SG_KEY_USERS, user};
    redisReply *r = cmdv(c, err, errlen, 3, hg);
    if (r == NULL)
        return SG_EBACKEND;
    if (r->type == REDIS_REPLY_STRING) {
        out->registered = 1;
        rec_parse(r->str, &out->disabled, &out->service, &out->version, out->groups,
                  sizeof(out->groups));
    }
    freeReplyObject(r);
    char **pools;
    size_t np;
    int rc = sg_pool_list(c, &pools, &np, err, errlen);
    if (rc != SG_OK)
        return rc;
    char nowx[32];
    long long now = sg_server_time_ms(c);
    snprintf(nowx, sizeof(nowx), "(%lld", now);
    out->pools = calloc(np + 1, sizeof(*out->pools));
    char *pending = calloc(np + 1, 1);
    if (out->pools == NULL || pending == NULL) {
        free(pending);
        sg_user_info_free(out);
        sg_strv_free(pools, np);
        return seterr(err, errlen, SG_EBACKEND, "out of memory");
    }
    /* five reads per pool, pipelined */
    char lo[SG_IDENT_MAX + 4], hi[SG_IDENT_MAX + 4];
    size_t ul = strlen(user);
    lo[0] = '[';
    memcpy(lo + 1, user, ul);
    lo[ul + 1] = '\0';
    hi[0] = '(';
    memcpy(hi + 1, user, ul);
    hi[ul + 1] = '\1';
    for (size_t i = 0; i < np; i++) {
        char k[5][SG_KEY_MAX];
        sg_keyname(SG_K_NAMED, pools[i], k[0], SG_KEY_MAX);
        sg_keyname(SG_K_LEASES, pools[i], k[1], SG_KEY_MAX);
        sg_keyname(SG_K_SESSIDX, pools[i], k[2], SG_KEY_MAX);
        sg_keyname(SG_K_LASTUSED, pools[i], k[3], SG_KEY_MAX);
        sg_keyname(SG_K_USERS, pools[i], k[4], SG_KEY_MAX);
        const char *a0[] = {"SISMEMBER", k[0], user};
        const char *a1[] = {"ZSCORE", k[1], user};
        const char *a2[] = {"ZRANGEBYLEX", k[2], lo, hi};
        size_t l2[] = {11, strlen(k[2]), ul + 2, ul + 2};
        const char *a3[] = {"HGET", k[3], user};
        const char *a4[] = {"HGET", k[4], user};
        if (sg_conn_append(c, 3, a0, NULL) || sg_conn_append(c, 3, a1, NULL) ||
            sg_conn_append(c, 4, a2, l2) || sg_conn_append(c, 3, a3, NULL) ||
            sg_conn_append(c, 3, a4, NULL)) {
            sg_strv_free(pools, np);
            free(pending);
            sg_user_info_free(out);
            return seterr(err, errlen, SG_EBACKEND, "redis: cannot queue a command");
        }
    }
    for (size_t i = 0; i < np && rc == SG_OK; i++) {
        sg_user_pool *up = &out->pools[i];
        snprintf(up->pool, sizeof(up->pool), "%s", pools[i]);
        for (int j = 0; j < 5; j++) {
            redisReply *x = sg_conn_reply(c, err, errlen);
            if (x == NULL) {
                rc = SG_EBACKEND;
                break;
            }
            if (j == 0)
                up->named = x->type == REDIS_REPLY_INTEGER && x->integer == 1;
            else if (j == 1 && x->type == REDIS_REPLY_STRING) {
                long long l = strtoll(x->str, NULL, 10);
                up->lease_ms = l > now ? l : 0;
            } else if (j == 2 && x->type == REDIS_REPLY_ARRAY && x->elements > 0) {
                /* the live ones are counted below: ZMSCORE of the members found */
                char ks[SG_KEY_MAX];
                sg_keyname(SG_K_SESS, pools[i], ks, sizeof(ks));
                const char **av = malloc(sizeof(*av) * (x->elements + 2));
                size_t *al = malloc(sizeof(*al) * (x->elements + 2));
                if (av && al) {
                    av[0] = "ZMSCORE";
                    al[0] = 7;
                    av[1] = ks;
                    al[1] = strlen(ks);
                    for (size_t m = 0; m < x->elements; m++) {
                        av[2 + m] = x->element[m]->str;
                        al[2 + m] = x->element[m]->len;
                    }
                    if (sg_conn_append(c, (int)x->elements + 2, av, al) == 0)
                        pending[i] = 1;
                }
                free(av);
                free(al);
            } else if (j == 3 && x->type == REDIS_REPLY_STRING)
                up->last_used_ms = strtoll(x->str, NULL, 10);
            else if (j == 4 && x->type == REDIS_REPLY_STRING) {
                int d, s;
                long long v;
                char g[1100];
                rec_parse(x->str, &d, &s, &v, g, sizeof(g));
                snprintf(up->projected, sizeof(up->projected), "%s%s%s%s%s",
                         d ? "disabled" : "", d && (s || *g) ? "," : "",
                         s ? "service_account" : "", s && *g ? "," : "", g);
            }
            freeReplyObject(x);
        }
        out->npools++;
    }
    /* the replies of the ZMSCOREs queued above, in pool order (they follow
     * every reply read above, so they are read after the loop, always) */
    for (size_t i = 0; i < np; i++) {
        if (!pending[i])
            continue;
        redisReply *x = sg_conn_reply(c, err, errlen);
        if (x == NULL) {
            rc = SG_EBACKEND;
            break;
        }
        for (size_t m = 0; x->type == REDIS_REPLY_ARRAY && m < x->elements; m++)
            if (x->element[m]->type == REDIS_REPLY_STRING &&
                strtoll(x->element[m]->str, NULL, 10) > now)
                out->pools[i].sessions++;
        freeReplyObject(x);
    }
    free(pending);
    sg_strv_free(pools, np);
    if (rc != SG_OK)
        sg_user_info_free(out);
    return rc;
}

/* ---- holders and sessions ------------------------------------------------ */

/* HMGET hash fields[] in pipelined batches; values[i] is a malloc'd copy or
 * NULL. lens may be NULL (C strings). */
int sg_hmget_all(sg_conn *c, const char *key, char *const *fields, const size_t *lens,
                     size_t n, char **values, char *err, size_t errlen)
{
    size_t nb = (n + APPLY_BATCH - 1) / APPLY_BATCH, queued = 0;
    int rc = SG_OK;
    for (size_t b = 0; b < nb; b++, queued++) {
        size_t from = b * APPLY_BATCH, k = n - from < APPLY_BATCH ? n - from : APPLY_BATCH;
        const char **av = malloc(sizeof(*av) * (k + 2));
        size_t *al = malloc(sizeof(*al) * (k + 2));
        if (av == NULL || al == NULL) {
            free(av);
            free(al);
            rc = seterr(err, errlen, SG_EBACKEND, "out of memory");
            break;
        }
        av[0] = "HMGET";
        al[0] = 5;
        av[1] = key;
        al[1] = strlen(key);
        for (size_t j = 0; j < k; j++) {
            av[2 + j] = fields[from + j];
            al[2 + j] = lens ? lens[from + j] : strlen(fields[from + j]);
        }
        int q = sg_conn_append(c, (int)k + 2, av, al);
        free(av);
        free(al);
        if (q != 0) {
            rc = seterr(err, errlen, SG_EBACKEND, "redis: cannot queue a command");
            break;
        }
    }
    /* the replies of every batch that went, also after a failure to queue
     * one: the link stays in step for the next command */
    for (size_t b = 0; b < queued; b++) {
        char e2[SG_ERR_MAX];
        redisReply *r = sg_conn_reply(c, e2, sizeof(e2));
        if (r == NULL) {
            if (rc == SG_OK)
                rc = seterr(err, errlen, SG_EBACKEND, "%s", e2);
            break;
        }
        if (rc != SG_OK) {
            freeReplyObject(r);
            continue;
        }
        size_t from = b * APPLY_BATCH;
        for (size_t j = 0; r->type == REDIS_REPLY_ARRAY && j < r->elements && from + j < n; j++)
            if (r->element[j]->type == REDIS_REPLY_STRING) {
                values[from + j] = strdup(r->element[j]->str);
                if (values[from + j] == NULL)
                    rc = seterr(err, errlen, SG_EBACKEND, "out of memory");
            }
        if (r->type == REDIS_REPLY_ERROR)
            rc = seterr(err, errlen, SG_EBACKEND, "redis: %s", r->str);
        freeReplyObject(r);
    }
    return rc;
}

int sg_holders(sg_conn *c, const char *pool, sg_holder **out, size_t *n, char *err,
               size_t errlen)
{
    *out = NULL;
    *n = 0;
    char kn[SG_KEY_MAX], kl[SG_KEY_MAX], ku[SG_KEY_MAX], nowx[32];
    int lb = live_bound(c, pool, nowx, sizeof(nowx), err, errlen);
    if (lb != SG_OK)
        return lb;
    sg_keyname(SG_K_NAMED, pool, kn, sizeof(kn));
    sg_keyname(SG_K_LEASES, pool, kl, sizeof(kl));
    sg_keyname(SG_K_LASTUSED, pool, ku, sizeof(ku));
    const char *a1[] = {"SMEMBERS", kn};
    const char *a2[] = {"ZRANGEBYSCORE", kl, nowx, "+inf", "WITHSCORES"};
    redisReply *named = cmdv(c, err, errlen, 2, a1);
    if (named == NULL)
        return SG_EBACKEND;
    redisReply *fl = cmdv(c, err, errlen, 5, a2);
    if (fl == NULL) {
        freeReplyObject(named);
        return SG_EBACKEND;
    }
    size_t total = named->elements + fl->elements / 2;
    sg_holder *h = calloc(total + 1, sizeof(*h));
    char **names = calloc(total + 1, sizeof(*names));
    char **used = calloc(total + 1, sizeof(*used));
    int rc = SG_OK;
    if (h == NULL || names == NULL || used == NULL) {
        rc = seterr(err, errlen, SG_EBACKEND, "out of memory");
        goto done;
    }
    size_t k = 0;
    for (size_t i = 0; i < named->elements; i++, k++) {
        snprintf(h[k].user, sizeof(h[k].user), "%s", named->element[i]->str);
        snprintf(h[k].kind, sizeof(h[k].kind), "named");
        names[k] = h[k].user;
    }
    for (size_t i = 0; i + 1 < fl->elements; i += 2, k++) {
        snprintf(h[k].user, sizeof(h[k].user), "%s", fl->element[i]->str);
        snprintf(h[k].kind, sizeof(h[k].kind), "floating");
        h[k].expires_ms = strtoll(fl->element[i + 1]->str, NULL, 10);
        names[k] = h[k].user;
    }
    rc = sg_hmget_all(c, ku, names, NULL, k, used, err, errlen);
    for (size_t i = 0; i < k; i++)
        if (used[i])
            h[i].last_used_ms = strtoll(used[i], NULL, 10);
    if (rc == SG_OK) {
        *out = h;
        *n = k;
        h = NULL;
    }
    sg_strv_free(used, k);
    used = NULL;
done:
    free(h);
    free(names);
    free(used);
    freeReplyObject(named);
    freeReplyObject(fl);
    return rc;
}

/* "k=v\tk=v" -> the value of one key, copied into buf ("" if absent) */
static void kv_get(const char *s, const char *key, char *buf, size_t len)
{
    size_t kl = strlen(key);
    buf[0] = '\0';
    for (const char *p = s; p && *p;) {
        const char *tab = strchr(p, '\t');
        size_t fl = tab ? (size_t)(tab - p) : strlen(p);
        if (fl > kl && strncmp(p, key, kl) == 0 && p[kl] == '=') {
            size_t vl = fl - kl - 1;
            if (vl >= len)
                vl = len - 1;
            memcpy(buf, p + kl + 1, vl);
            buf[vl] = '\0';
            return;
        }
        p = tab ? tab + 1 : NULL;
    }
}

int sg_sessions(sg_conn *c, const char *pool, sg_session_info **out, size_t *n, char *err,
                size_t errlen)
{
    *out = NULL;
    *n = 0;
    char ks[SG_KEY_MAX], ki[SG_KEY_MAX], nowx[32];
    int lb = live_bound(c, pool, nowx, sizeof(nowx), err, errlen);
    if (lb != SG_OK)
        return lb;
    sg_keyname(SG_K_SESS, pool, ks, sizeof(ks));
    sg_keyname(SG_K_SESSINFO, pool, ki, sizeof(ki));
    const char *a1[] = {"ZRANGEBYSCORE", ks, nowx, "+inf", "WITHSCORES"};
    redisReply *r = cmdv(c, err, errlen, 5, a1);
    if (r == NULL)
        return SG_EBACKEND;
    size_t cnt = r->elements / 2;
    sg_session_info *s = calloc(cnt + 1, sizeof(*s));
    char **mem = calloc(cnt + 1, sizeof(*mem));
    size_t *mlen = calloc(cnt + 1, sizeof(*mlen));
    char **info = calloc(cnt + 1, sizeof(*info));
    int rc = SG_OK;
    if (s == NULL || mem == NULL || mlen == NULL || info == NULL) {
        rc = seterr(err, errlen, SG_EBACKEND, "out of memory");
        goto done;
    }
    size_t k = 0;
    for (size_t j = 0; j < cnt; j++) {
        redisReply *m = r->element[2 * j];
        const char *nul = memchr(m->str, '\0', m->len);
        if (nul == NULL)
            continue; /* not written by seatgate: skip it */
        snprintf(s[k].user, sizeof(s[k].user), "%s", m->str);
        snprintf(s[k].session, sizeof(s[k].session), "%.*s", (int)(m->str + m->len - nul - 1),
                 nul + 1);
        s[k].expires_ms = strtoll(r->element[2 * j + 1]->str, NULL, 10);
        mem[k] = m->str;
        mlen[k] = m->len;
        k++;
    }
    rc = sg_hmget_all(c, ki, mem, mlen, k, info, err, errlen);
    for (size_t i = 0; rc == SG_OK && i < k; i++) {
        if (info[i] == NULL)
            continue;
        char v[64];
        kv_get(info[i], "via", s[i].via, sizeof(s[i].via));
        kv_get(info[i], "host", s[i].host, sizeof(s[i].host));
        kv_get(info[i], "pid", v, sizeof(v));
        s[i].pid = atol(v);
        kv_get(info[i], "pstart", v, sizeof(v));
        s[i].pstart = strtoull(v, NULL, 10);
        kv_get(info[i], "started", v, sizeof(v));
        s[i].started_ms = atoll(v);
        kv_get(info[i], "account", s[i].account, sizeof(s[i].account));
        kv_get(info[i], "obo", s[i].obo, sizeof(s[i].obo));
        kv_get(info[i], "client", s[i].client, sizeof(s[i].client));
        kv_get(info[i], "lease", v, sizeof(v));
        s[i].ttl_s = atol(v);
    }
    for (size_t i = 0; i < k; i++)
        if (s[i].account[0] == '\0')
            snprintf(s[i].account, sizeof(s[i].account), "%s", s[i].user);
    if (rc == SG_OK) {
        *out = s;
        *n = k;
        s = NULL;
    }
    sg_strv_free(info, k);
    info = NULL;
done:
    free(s);
    free(mem);
    free(mlen);
    free(info);
    freeReplyObject(r);
    return rc;
}

/* ---- per-host session index and reap ----------------------------------------- */

static int host_key(const char *host_id, char *buf, size_t len, char *err, size_t errlen)
{
    if (host_id == NULL || *host_id == '\0' || strlen(host_id) > 64)
        return seterr(err, errlen, SG_EINPUT, "host id: empty or longer than 64 bytes");
    for (const char *p = host_id; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '.' || *p == '_' || *p == '-'))
            return seterr(err, errlen, SG_EINPUT, "host id: only A-Z a-z 0-9 . _ - allowed");
    snprintf(buf, len, "%s%s", SG_KEY_HOST_PREFIX, host_id);
    return SG_OK;
}

static int host_field(const char *pool, const char *user, const char *session, char *buf,
                      size_t len, char *err, size_t errlen)
{
    char e[SG_ERR_MAX];
    if (sg_valid_name(pool, e, sizeof(e)) || sg_valid_ident(user, e, sizeof(e)) ||
        sg_valid_ident(session, e, sizeof(e)))
        return seterr(err, errlen, SG_EINPUT, "%s", e);
    snprintf(buf, len, "%s\t%s\t%s", pool, user, session);
    return SG_OK;
}

static void host_value(const sg_host_session *s, char *val, size_t len)
{
    snprintf(val, len, "pid=%ld\tpstart=%llu\tboot=%s\tlease=%ld\trenewed=%lld", s->pid,
             s->pstart, s->boot, s->lease_s, s->renewed_ms);
}

int sg_host_track(sg_conn *c, const char *host_id, const sg_host_session *s, char *err,
                  size_t errlen)
{
    char key[SG_KEY_MAX], field[SG_POOL_MAX + 2 * SG_IDENT_MAX + 8], val[256];
    int rc = host_key(host_id, key, sizeof(key), err, errlen);
    if (rc == SG_OK)
        rc = host_field(s->pool, s->user, s->session, field, sizeof(field), err, errlen);
    if (rc != SG_OK)
        return rc;
    host_value(s, val, sizeof(val));
    const char *av[] = {"HSET", key, field, val};
    redisReply *r = cmdv(c, err, errlen, 4, av);
    if (r == NULL)
        return SG_EBACKEND;
    freeReplyObject(r);
    return SG_OK;
}

int sg_host_untrack(sg_conn *c, const char *host_id, const char *pool, const char *user,
                    const char *session, char *err, size_t errlen)
{
    char key[SG_KEY_MAX], field[SG_POOL_MAX + 2 * SG_IDENT_MAX + 8];
    int rc = host_key(host_id, key, sizeof(key), err, errlen);
    if (rc == SG_OK)
        rc = host_field(pool, user, session, field, sizeof(field), err, errlen);
    if (rc != SG_OK)
        return rc;
    const char *av[] = {"HDEL", key, field};
    redisReply *r = cmdv(c, err, errlen, 3, av);
    if (r == NULL)
        return SG_EBACKEND;
    freeReplyObject(r);
    return SG_OK;
}

/* ---- a PAM session: its decision and its host index entry, one round trip -- */

static int empty_str(const char *s)
{
    return s == NULL || *s == '\0';
}

int sg_session_open(sg_conn *c, const sg_request *rq, const char *host_id, const char *boot,
                    sg_decision *d)
{
    char err[SG_ERR_MAX], key[SG_KEY_MAX], field[SG_POOL_MAX + 2 * SG_IDENT_MAX + 8], val[256];
    if (rq->op != SG_OP_ACQUIRE || empty_str(rq->session)) {
        sg_decision_error(d, "a session open takes a seat for a named session");
        return -1;
    }
    if (sg_request_validate(rq, err, sizeof(err)) != 0 ||
        host_key(host_id, key, sizeof(key), err, sizeof(err)) != SG_OK ||
        host_field(rq->pool, empty_str(rq->on_behalf_of) ? rq->user : rq->on_behalf_of,
                   rq->session, field, sizeof(field), err, sizeof(err)) != SG_OK) {
        sg_decision_error(d, err);
        snprintf(d->reason, sizeof(d->reason), "invalid_input");
        return -1;
    }
    /* the entry goes with the decision, with the lease asked for and this
     * host's clock; it is corrected after a grant of another length and
     * removed after a denial (reap would drop it too: no such session) */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    sg_host_session hs = {.pid = rq->pid, .pstart = rq->pstart, .lease_s = rq->ttl_s,
                          .renewed_ms = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000};
    snprintf(hs.boot, sizeof(hs.boot), "%s", boot ? boot : "");
    host_value(&hs, val, sizeof(val));
    const char *hv[] = {"HSET", key, field, val};
    int rc = sg_decide_and(c, rq, 4, hv, d);
    if (rc != 0)
        return rc;
    redisReply *x = NULL;
    if (!sg_result_granted(d->result)) {
        const char *dv[] = {"HDEL", key, field};
        x = cmdv(c, err, sizeof(err), 3, dv);
    } else if (d->ttl_ms / 1000 != rq->ttl_s) {
        hs.lease_s = d->ttl_ms / 1000;
        hs.renewed_ms = d->now_ms;
        host_value(&hs, val, sizeof(val));
        x = cmdv(c, err, sizeof(err), 4, hv);
    }
    if (x)
        freeReplyObject(x);
    return 0; /* the decision stands; a failed index write only costs reap its view */
}

long sg_session_close(sg_conn *c, const char *pool, const char *user, const char *session,
                      const char *via, const char *host, const char *host_id, char *err,
                      size_t errlen)
{
    char key[SG_KEY_MAX], field[SG_POOL_MAX + 2 * SG_IDENT_MAX + 8];
    if (host_key(host_id, key, sizeof(key), err, errlen) != SG_OK ||
        host_field(pool, user, session, field, sizeof(field), err, errlen) != SG_OK)
        return -2;
    const char *dv[] = {"HDEL", key, field};
    return sg_release_and(c, pool, user, session, via, host, 3, dv, err, errlen);
}

static int host_parse(const char *field, const char *val, sg_host_session *s)
{
    memset(s, 0, sizeof(*s));
    const char *t1 = strchr(field, '\t'), *t2 = t1 ? strchr(t1 + 1, '\t') : NULL;
    if (t2 == NULL || (size_t)(t1 - field) > SG_POOL_MAX || (size_t)(t2 - t1 - 1) > SG_IDENT_MAX ||
        strlen(t2 + 1) > SG_IDENT_MAX)
        return -1;
    snprintf(s->pool, sizeof(s->pool), "%.*s", (int)(t1 - field), field);
    snprintf(s->user, sizeof(s->user), "%.*s", (int)(t2 - t1 - 1), t1 + 1);
    snprintf(s->session, sizeof(s->session), "%s", t2 + 1);
    char v[64];
    kv_get(val, "pid", v, sizeof(v));
    s->pid = atol(v);
    kv_get(val, "pstart", v, sizeof(v));
    s->pstart = strtoull(v, NULL, 10);
    kv_get(val, "boot", s->boot, sizeof(s->boot));
    kv_get(val, "lease", v, sizeof(v));
    s->lease_s = atol(v);
    kv_get(val, "renewed", v, sizeof(v));
    s->renewed_ms = atoll(v);
    return 0;
}

/* ZSCORE of a host index entry's session in its pool ("user\0session" in
 * sess): a nil reply when the session is gone. NULL on a Redis failure. */
static redisReply *session_score(sg_conn *c, const sg_host_session *s, char *err, size_t errlen)
{
    char ks[SG_KEY_MAX], m[2 * SG_IDENT_MAX + 2];
    sg_keyname(SG_K_SESS, s->pool, ks, sizeof(ks));
    size_t ul = strlen(s->user), sl = strlen(s->session);
    memcpy(m, s->user, ul);
    m[ul] = '\0';
    memcpy(m + ul + 1, s->session, sl);
    const char *zv[] = {"ZSCORE", ks, m};
    size_t zl[] = {6, strlen(ks), ul + 1 + sl};
    return sg_conn_cmd(c, 3, zv, zl, err, errlen);
}

int sg_reap(sg_conn *c, const char *host_id, const char *host, sg_reap_fn fn, void *ud,
            long *reaped, long *renewed, char *err, size_t errlen)
{
    *reaped = *renewed = 0;
    char key[SG_KEY_MAX];
    int rc = host_key(host_id, key, sizeof(key), err, errlen);
    if (rc != SG_OK)
        return rc;
    const char *av[] = {"HGETALL", key};
    redisReply *r = cmdv(c, err, errlen, 2, av);
    if (r == NULL)
        return SG_EBACKEND;
    long long now = sg_server_time_ms(c);
    char boot[40] = "";
    sg_boot_id(boot, sizeof(boot));
    for (size_t i = 0; i + 1 < r->elements && rc == SG_OK; i += 2) {
        const char *field = r->element[i]->str;
        sg_host_session s;
        if (host_parse(field, r->element[i + 1]->str, &s) != 0 ||
            sg_valid_name(s.pool, NULL, 0) != 0 || sg_valid_ident(s.user, NULL, 0) != 0 ||
            sg_valid_ident(s.session, NULL, 0) != 0) {
            /* not written by seatgate: drop it, go on with the others */
            const char *dv[] = {"HDEL", key, field};
            redisReply *x = cmdv(c, err, errlen, 3, dv);
            if (x)
                freeReplyObject(x);
            continue;
        }
        int same = s.pid > 0 ? sg_proc_same(s.pid, s.pstart, s.boot[0] ? s.boot : NULL) : 0;
        if (same == 0) {
            long rel = sg_release(c, s.pool, s.user, s.session, "reap", host, err, errlen);
            if (rel == -1) {
                rc = SG_EBACKEND;
                break;
            }
            rc = sg_host_untrack(c, host_id, s.pool, s.user, s.session, err, errlen);
            (*reaped)++;
            if (fn)
                fn(ud, &s, 0);
            continue;
        }
        /* alive (or cannot tell): renew past half the lease, if the session
         * still exists (an admin may have released it) */
        if (s.lease_s <= 0 || now < 0 || now - s.renewed_ms < s.lease_s * 1000 / 2)
            continue;
        redisReply *x = session_score(c, &s, err, errlen);
        if (x == NULL) {
            rc = SG_EBACKEND;
            break;
        }
        int exists = x->type == REDIS_REPLY_STRING && strtoll(x->str, NULL, 10) > now;
        freeReplyObject(x);
        if (!exists) {
            rc = sg_host_untrack(c, host_id, s.pool, s.user, s.session, err, errlen);
            continue;
        }
        sg_request rq = {.op = SG_OP_ACQUIRE, .pool = s.pool, .user = s.user,
                         .session = s.session, .via = "reap", .host = host, .client = "",
                         .pid = s.pid, .pstart = s.pstart, .ttl_s = s.lease_s};
        sg_decision d;
        if (sg_decide(c, &rq, &d) != 0) {
            rc = seterr(err, errlen, SG_EBACKEND, "%s", d.err);
            break;
        }
        if (sg_result_granted(d.result)) {
            s.renewed_ms = now;
            rc = sg_host_track(c, host_id, &s, err, errlen);
            (*renewed)++;
            if (fn)
                fn(ud, &s, 1);
        }
    }
    freeReplyObject(r);
    return rc;
}

/* ---- doctor ------------------------------------------------------------------ */

/* every key matching pattern (SCAN; on every master of a cluster), malloc'd */
struct scan_keys {
    const char *pattern;
    char **v;
    size_t k, cap;
};

static int scan_keys_on(sg_conn *c, int node, void *ud, char *err, size_t errlen)
{
    struct scan_keys *st = ud;
    char cursor[32] = "0";
    int rc = SG_OK;
    do {
        const char *av[] = {"SCAN", cursor, "MATCH", st->pattern, "COUNT", "1000"};
        redisReply *r = sg_conn_cmd_at(c, node, 6, av, err, errlen);
        if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
            if (r && r->type == REDIS_REPLY_ERROR)
                seterr(err, errlen, SG_EBACKEND, "redis: %s", r->str);
            if (r)
                freeReplyObject(r);
            return SG_EBACKEND;
        }
        snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
        redisReply *keys = r->element[1];
        for (size_t i = 0; rc == SG_OK && i < keys->elements; i++) {
            if (st->k + 1 >= st->cap) {
                size_t cap = st->cap ? st->cap * 2 : 64;
                char **nv = realloc(st->v, sizeof(*nv) * cap);
                if (nv == NULL) {
                    rc = seterr(err, errlen, SG_EBACKEND, "out of memory");
                    break;
                }
                st->v = nv;
                st->cap = cap;
            }
            if ((st->v[st->k] = strndup(keys->element[i]->str, keys->element[i]->len)) == NULL)
                rc = seterr(err, errlen, SG_EBACKEND, "out of memory");
            else
                st->k++;
        }
        freeReplyObject(r);
    } while (rc == SG_OK && strcmp(cursor, "0") != 0);
    return rc;
}

int sg_scan_keys(sg_conn *c, const char *pattern, char ***out, size_t *n, char *err,
                 size_t errlen)
{
    struct scan_keys st = {pattern, NULL, 0, 0};
    int rc = sg_each_master(c, scan_keys_on, SG_OK, &st, err, errlen);
    if (rc != SG_OK) {
        sg_strv_free(st.v, st.k);
        return rc < 0 ? SG_EBACKEND : rc;
    }
    *out = st.v;
    *n = st.k;
    return SG_OK;
}

static int in_sorted(char **v, size_t n, const char *s)
{
    return n && bsearch(&s, v, n, sizeof(*v), strcmp_p) != NULL;
}

/* the projection a pool should hold for a registry record ("" = none) */
static void expected_projection(const char *rec, const char *tracked, char *buf, size_t len)
{
    buf[0] = '\0';
    if (rec == NULL || strlen(rec) < 3)
        return;
    int dis = rec[0] == '1', svc = rec[1] == '1';
    sg_buf g = {0};
    sg_buf_str(&g, ",");
    const char *groups = strchr(rec + 2, ',');
    for (const char *p = groups ? groups + 1 : ""; *p;) {
        const char *e = strchr(p, ',');
        if (e == NULL)
            break;
        char probe[SG_IDENT_MAX + 3];
        size_t l = (size_t)(e - p);
        if (l > 0 && l <= SG_IDENT_MAX) {
            snprintf(probe, sizeof(probe), ",%.*s,", (int)l, p);
            if (strstr(tracked, probe))
                sg_buf_add(&g, probe + 1, l + 1);
        }
        p = e + 1;
    }
    if (dis || svc || g.len > 1)
        snprintf(buf, len, "%c%c%s", dis ? '1' : '0', svc ? '1' : '0', g.p);
    sg_buf_free(&g);
}

/* flags and tracked groups of a projection, without the version, in the
 * form expected_projection gives ("" for a record that projects to nothing:
 * groups a rule no longer names are left in place and are not drift) */
static void projection_core(const char *rec, const char *tracked, char *buf, size_t len)
{
    expected_projection(rec, tracked, buf, len);
}

static int doctor_projection(sg_conn *c, const char *pool, int fix, sg_doctor_fn fn, void *ud,
                             long *findings, char *err, size_t errlen)
{
    char kc[SG_KEY_MAX], ku[SG_KEY_MAX];
    sg_keyname(SG_K_CONF, pool, kc, sizeof(kc));
    sg_keyname(SG_K_USERS, pool, ku, sizeof(ku));
    const char *av[] = {"HGET", kc, "tracked"};
    redisReply *r = cmdv(c, err, errlen, 3, av);
    if (r == NULL)
        return SG_EBACKEND;
    char tracked[4096];
    snprintf(tracked, sizeof(tracked), "%s", r->type == REDIS_REPLY_STRING ? r->str : ",");
    freeReplyObject(r);
    /* who should be there: disabled users, service accounts, tracked groups' members */
    char **want = NULL;
    size_t nwant = 0;
    int rc = watched_members(c, tracked, 1, &want, &nwant, err, errlen);
    if (rc != SG_OK)
        return rc;
    /* who is there */
    const char *hk[] = {"HKEYS", ku};
    r = cmdv(c, err, errlen, 2, hk);
    if (r == NULL) {
        sg_strv_free(want, nwant);
        return SG_EBACKEND;
    }
    /* the union, sorted */
    size_t nall = nwant + r->elements;
    urow *rows = calloc(nall + 1, sizeof(*rows));
    if (rows == NULL) {
        freeReplyObject(r);
        sg_strv_free(want, nwant);
        return seterr(err, errlen, SG_EBACKEND, "out of memory");
    }
    size_t k = 0;
    for (size_t i = 0; rc == SG_OK && i < nwant; i++)
        if ((rows[k++].user = strdup(want[i])) == NULL)
            rc = seterr(err, errlen, SG_EBACKEND, "out of memory");
    for (size_t i = 0; rc == SG_OK && i < r->elements; i++)
        if (!in_sorted(want, nwant, r->element[i]->str) &&
            (rows[k++].user = strdup(r->element[i]->str)) == NULL)
            rc = seterr(err, errlen, SG_EBACKEND, "out of memory");
    freeReplyObject(r);
    sg_strv_free(want, nwant);
    char **names = calloc(k + 1, sizeof(*names));
    char **have = calloc(k + 1, sizeof(*have));
    if (names == NULL || have == NULL)
        rc = seterr(err, errlen, SG_EBACKEND, "out of memory");
    for (size_t i = 0; rc == SG_OK && i < k; i++)
        names[i] = rows[i].user;
    if (rc == SG_OK)
        rc = read_records(c, rows, k, err, errlen);
    if (rc == SG_OK)
        rc = sg_hmget_all(c, ku, names, NULL, k, have, err, errlen);
    long drift = 0;
    urow **sel = rc == SG_OK ? calloc(k + 1, sizeof(*sel)) : NULL;
    if (rc == SG_OK && sel == NULL)
        rc = seterr(err, errlen, SG_EBACKEND, "out of memory");
    for (size_t i = 0; rc == SG_OK && i < k; i++) {
        char a[1200], b[1200];
        expected_projection(rows[i].rec, tracked, a, sizeof(a));
        projection_core(have[i], tracked, b, sizeof(b));
        if (strcmp(a, b) != 0) {
            if (drift < 5 && fn) {
                char d[SG_ERR_MAX + 64];
                snprintf(d, sizeof(d), "user %s: pool has '%s', registry says '%s'",
                         rows[i].user, b[0] ? b : "-", a[0] ? a : "-");
                fn(ud, pool, "projection_drift", d, 1);
            }
            sel[drift++] = &rows[i];
        }
    }
    if (drift) {
        *findings += drift;
        if (fn && drift > 5) {
            char d[64];
            snprintf(d, sizeof(d), "%ld users in all", drift);
            fn(ud, pool, "projection_drift", d, drift);
        }
        if (fix) {
            /* a record the pool holds that is newer than the registry's
             * cannot be: the registry is the truth, so drop the pool's first */
            for (long i = 0; i < drift; i++) {
                const char *dv[] = {"HDEL", ku, sel[i]->user};
                redisReply *x = cmdv(c, err, errlen, 3, dv);
                if (x)
                    freeReplyObject(x);
            }
            rc = apply_pool(c, pool, sel, (size_t)drift, "doctor", "repaired by seatctl doctor",
                            0, NULL, err, errlen);
        }
    }
    free(sel);
    sg_strv_free(have, k);
    free(names);
    urows_free(rows, k);
    return rc;
}

int sg_doctor(sg_conn *c, int fix, sg_doctor_fn fn, void *ud, long *findings, char *err,
              size_t errlen)
{
    *findings = 0;
    /* this build's function library (the scripts fall back without it) */
    sg_library_autoload(fix);
    int loaded = sg_library_loaded(c, err, errlen);
    if (loaded < 0)
        return SG_EBACKEND;
    if (loaded == 0) {
        (*findings)++;
        if (fn)
            fn(ud, "", "library_missing",
               "the function library of this build is not loaded (scripts run as EVAL, "
               "slower); loaded with --fix",
               1);
        if (fix && sg_library_load(c, err, errlen) != 0)
            return SG_EBACKEND;
    }
    /* libraries of other builds: an older build's binaries still call theirs
     * in a rolling upgrade (and fall back to EVALSHA once it is gone) */
    long others = 0;
    if (sg_library_others(c, fix, &others, err, errlen) != 0)
        return SG_EBACKEND;
    if (others > 0) {
        (*findings)++;
        if (fn)
            fn(ud, "", "library_old",
               "function libraries of other builds (older binaries call them until they are "
               "upgraded, then nothing does); deleted with --fix, after which older binaries "
               "run the scripts as EVALSHA",
               others);
    }
    char **confs = NULL, **pools = NULL;
    size_t nconf = 0, np = 0;
    int rc = sg_scan_keys(c, "sg:{*}:conf", &confs, &nconf, err, errlen);
    if (rc == SG_OK)
        rc = sg_pool_list(c, &pools, &np, err, errlen);
    if (rc != SG_OK) {
        sg_strv_free(confs, nconf);
        return rc;
    }
    /* the pools index against the pools that exist */
    char **existing = calloc(nconf + 1, sizeof(*existing));
    size_t ne = 0;
    char pool[SG_POOL_MAX + 1];
    for (size_t i = 0; existing && i < nconf; i++)
        if (sg_key_pool_of(confs[i], "conf", pool, sizeof(pool)) == 0 &&
            (existing[ne] = strdup(pool)) != NULL)
            ne++;
    sg_strv_free(confs, nconf);
    if (existing == NULL) {
        sg_strv_free(pools, np);
        return seterr(err, errlen, SG_EBACKEND, "out of memory");
    }
    qsort(existing, ne, sizeof(*existing), strcmp_p);
    for (size_t i = 0; i < ne && rc == SG_OK; i++) {
        char kc[SG_KEY_MAX];
        sg_keyname(SG_K_CONF, existing[i], kc, sizeof(kc));
        const char *av[] = {"HGET", kc, "state"};
        redisReply *r = cmdv(c, err, errlen, 3, av);
        if (r == NULL) {
            rc = SG_EBACKEND;
            break;
        }
        int ready = r->type == REDIS_REPLY_STRING && strcmp(r->str, "ready") == 0;
        freeReplyObject(r);
        if (!ready) {
            (*findings)++;
            if (fn)
                fn(ud, existing[i], "stuck_creating",
                   "a pool creation stopped half way (its pool set failed); removed with --fix, "
                   "run pool set again",
                   1);
            if (fix) {
                char ku[SG_KEY_MAX];
                sg_keyname(SG_K_USERS, existing[i], ku, sizeof(ku));
                const char *dv[] = {"DEL", kc, ku};
                const char *sv[] = {"SREM", SG_KEY_POOLS, existing[i]};
                redisReply *x = cmdv(c, err, errlen, 3, dv);
                if (x)
                    freeReplyObject(x);
                x = cmdv(c, err, errlen, 3, sv);
                if (x)
                    freeReplyObject(x);
            }
            continue;
        }
        if (!in_sorted(pools, np, existing[i])) {
            (*findings)++;
            if (fn)
                fn(ud, existing[i], "index_missing", "the pool is missing from the pools index",
                   1);
            if (fix) {
                const char *sv[] = {"SADD", SG_KEY_POOLS, existing[i]};
                redisReply *x = cmdv(c, err, errlen, 3, sv);
                if (x)
                    freeReplyObject(x);
            }
        }
        rc = doctor_projection(c, existing[i], fix, fn, ud, findings, err, errlen);
        if (rc != SG_OK)
            break;
        static const sg_key which[] = {SG_K_LEASES, SG_K_SESS, SG_K_SESSIDX, SG_K_SESSINFO,
                                       SG_K_GCOUNT, SG_K_HG,   SG_K_FOLD,    SG_K_CONF,
                                       SG_K_USERS,  SG_K_AUDIT};
        keyset ks;
        keyset_of(&ks, existing[i], which, 10);
        char host[256];
        sg_hostname(host, sizeof(host));
        const char *kv[] = {"pool", existing[i], "fix", fix ? "1" : "0", "via", "doctor",
                            "host", host};
        r = sg_script_kv(c, SG_SCRIPT_FSCK, ks.v, ks.n, kv, 8, err, errlen);
        if (r == NULL) {
            rc = SG_EBACKEND;
            break;
        }
        static const char *const kinds[][2] = {
            {"lapsed", "sessions or leases past their expiry, not yet removed"},
            {"ghost_leases", "floating seats held with no live session"},
            {"lease_drift", "seat expiries that differ from the latest session's"},
            {"orphans", "session index or info entries without a session"},
            {"gcount_drift", "group counts that differ from the holders"},
            {"stale_folds", "folded denials whose window has passed, not yet written"},
            {"hot_drift", "the packed copy of the settings decisions read (field hot of the "
                          "pool's conf) differs from the fields: the hash was edited by hand"},
        };
        for (size_t j = 0; j < sizeof(kinds) / sizeof(kinds[0]); j++) {
            long long v = sg_reply_ll(r, kinds[j][0]);
            if (v > 0) {
                /* lapsed leases and folds whose window passed are the normal
                 * course of time (the next decisions clean them): reported,
                 * repaired by --fix, but not drift */
                if (j != 0 && j != 5)
                    *findings += v;
                if (fn)
                    fn(ud, existing[i], kinds[j][0], kinds[j][1], (long)v);
            }
        }
        freeReplyObject(r);
    }
    for (size_t i = 0; i < np && rc == SG_OK; i++) {
        if (!in_sorted(existing, ne, pools[i])) {
            (*findings)++;
            if (fn)
                fn(ud, pools[i], "index_stale", "the pools index lists a pool that is gone", 1);
            if (fix) {
                const char *sv[] = {"SREM", SG_KEY_POOLS, pools[i]};
                redisReply *x = cmdv(c, err, errlen, 3, sv);
                if (x)
                    freeReplyObject(x);
            }
        }
    }
    /* host indexes: entries whose session is gone */
    char **hosts = NULL;
    size_t nh = 0;
    if (rc == SG_OK)
        rc = sg_scan_keys(c, SG_KEY_HOST_PREFIX "*", &hosts, &nh, err, errlen);
    for (size_t h = 0; h < nh && rc == SG_OK; h++) {
        const char *av[] = {"HGETALL", hosts[h]};
        redisReply *r = cmdv(c, err, errlen, 2, av);
        if (r == NULL) {
            rc = SG_EBACKEND;
            break;
        }
        long stale = 0;
        for (size_t i = 0; i + 1 < r->elements; i += 2) {
            sg_host_session s;
            int gone = host_parse(r->element[i]->str, r->element[i + 1]->str, &s) != 0;
            if (!gone) {
                redisReply *x = session_score(c, &s, err, errlen);
                gone = x && x->type == REDIS_REPLY_NIL;
                if (x)
                    freeReplyObject(x);
            }
            if (gone) {
                stale++;
                if (fix) {
                    const char *dv[] = {"HDEL", hosts[h], r->element[i]->str};
                    redisReply *x = cmdv(c, err, errlen, 3, dv);
                    if (x)
                        freeReplyObject(x);
                }
            }
        }
        freeReplyObject(r);
        if (stale) {
            *findings += stale;
            if (fn)
                fn(ud, hosts[h] + strlen(SG_KEY_HOST_PREFIX), "host_index_stale",
                   "host session index entries whose session is gone", stale);
        }
    }
    sg_strv_free(hosts, nh);
    sg_strv_free(existing, ne);
    sg_strv_free(pools, np);
    return rc;
}
