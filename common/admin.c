/* Administration: pools, assignments, users, holders and sessions. */
#include "seatgate.h"
#include "internal.h"

#include <hiredis/hiredis.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <signal.h>
#include <unistd.h>

#define seterr sg_err_rc

static redisReply *cmdv(sg_conn *c, char *err, size_t errlen, int argc, const char **argv)
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

/* Copy the global user registry into a new pool's mirror. */
static int mirror_users(sg_conn *c, const char *pool, char *err, size_t errlen)
{
    char key[SG_KEY_MAX];
    sg_keyname(SG_K_USERS, pool, key, sizeof(key));
    const char *av[] = {"HGETALL", SG_KEY_USERS};
    redisReply *r = cmdv(c, err, errlen, 2, av);
    if (r == NULL)
        return -1;
    int rc = 0;
    for (size_t i = 0; i + 1 < r->elements && rc == 0; i += 2) {
        const char *hv[] = {"HSETNX", key, r->element[i]->str, r->element[i + 1]->str};
        redisReply *x = cmdv(c, err, errlen, 4, hv);
        if (x == NULL)
            rc = -1;
        else
            freeReplyObject(x);
    }
    freeReplyObject(r);
    return rc;
}

int sg_pool_set(sg_conn *c, const sg_pool *p, const char *via, char *err, size_t errlen)
{
    char e[SG_ERR_MAX];
    if (sg_valid_name(p->name, e, sizeof(e)) != 0)
        return seterr(err, errlen, SG_EINPUT, "pool: %s", e);
    char features[1100], include[1100], exclude[1100], reserve[1100], cap[1100];
    if (list_field(p->features, sg_valid_name, features, sizeof(features), e, sizeof(e)))
        return seterr(err, errlen, SG_EINPUT, "--features: %s", e);
    if (list_field(p->include, sg_valid_group, include, sizeof(include), e, sizeof(e)))
        return seterr(err, errlen, SG_EINPUT, "--include: %s", e);
    if (list_field(p->exclude, sg_valid_group, exclude, sizeof(exclude), e, sizeof(e)))
        return seterr(err, errlen, SG_EINPUT, "--exclude: %s", e);
    if (gk_field(p->reserve, p->nreserve, reserve, sizeof(reserve), e, sizeof(e)))
        return seterr(err, errlen, SG_EINPUT, "--reserve: %s", e);
    if (gk_field(p->cap, p->ncap, cap, sizeof(cap), e, sizeof(e)))
        return seterr(err, errlen, SG_EINPUT, "--cap: %s", e);

    char k_conf[SG_KEY_MAX], k_named[SG_KEY_MAX], k_audit[SG_KEY_MAX], host[256];
    sg_keyname(SG_K_CONF, p->name, k_conf, sizeof(k_conf));
    sg_keyname(SG_K_NAMED, p->name, k_named, sizeof(k_named));
    sg_keyname(SG_K_AUDIT, p->name, k_audit, sizeof(k_audit));
    sg_hostname(host, sizeof(host));
    char nums[6][24];
    const char *av[40];
    int n = 0;
    av[n++] = k_conf;
    av[n++] = k_named;
    av[n++] = k_audit;
    av[n++] = p->name;
    av[n++] = via ? via : "cli";
    av[n++] = host;
#define NUM(flag, field, val, i)                                                                   \
    if (p->set_mask & (flag)) {                                                                    \
        snprintf(nums[i], sizeof(nums[i]), "%ld", (val));                                          \
        av[n++] = field;                                                                           \
        av[n++] = nums[i];                                                                         \
    }
    NUM(SG_PSET_NAMED, "named", p->named, 0)
    NUM(SG_PSET_FLOATING, "floating", p->floating, 1)
    NUM(SG_PSET_IDLE, "idle", p->idle_s, 2)
    NUM(SG_PSET_OVERDRAFT, "overdraft", p->overdraft_pct, 3)
    NUM(SG_PSET_MUX_LIMIT, "mux_limit", p->mux_limit, 4)
    NUM(SG_PSET_MUX_WINDOW, "mux_window", p->mux_window_s, 5)
#undef NUM
#define STR(flag, field, val)                                                                      \
    if (p->set_mask & (flag)) {                                                                    \
        av[n++] = field;                                                                           \
        av[n++] = val;                                                                             \
    }
    STR(SG_PSET_FEATURES, "features", features)
    STR(SG_PSET_INCLUDE, "include", include)
    STR(SG_PSET_EXCLUDE, "exclude", exclude)
    STR(SG_PSET_RESERVE, "reserve", reserve)
    STR(SG_PSET_CAP, "cap", cap)
#undef STR
    /* new pools see every user already registered */
    const char *ex[] = {"EXISTS", k_conf};
    redisReply *x = cmdv(c, err, errlen, 2, ex);
    if (x == NULL)
        return SG_EBACKEND;
    int exists = x->type == REDIS_REPLY_INTEGER && x->integer == 1;
    freeReplyObject(x);
    if (!exists && mirror_users(c, p->name, err, errlen) != 0)
        return SG_EBACKEND;

    redisReply *r = sg_script_run(c, SG_SCRIPT_POOL_SET, 3, n, av, err, errlen);
    if (r == NULL)
        return SG_EBACKEND;
    int rc = SG_OK;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2)
        rc = seterr(err, errlen, SG_EBACKEND, "redis: unexpected reply to pool set");
    else if (strcmp(r->element[0]->str, "refused") == 0)
        rc = seterr(err, errlen, SG_EDENIED, "%s", r->element[1]->str);
    freeReplyObject(r);
    if (rc != SG_OK) {
        if (!exists) { /* a refused create leaves nothing behind */
            char ku[SG_KEY_MAX], e2[SG_ERR_MAX];
            sg_keyname(SG_K_USERS, p->name, ku, sizeof(ku));
            const char *dl[] = {"DEL", ku};
            x = cmdv(c, e2, sizeof(e2), 2, dl);
            if (x)
                freeReplyObject(x);
        }
        return rc;
    }
    const char *sa[] = {"SADD", SG_KEY_POOLS, p->name};
    x = cmdv(c, err, errlen, 3, sa);
    if (x == NULL)
        return SG_EBACKEND;
    freeReplyObject(x);
    return SG_OK;
}

static int strcmp_p(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void sg_strv_free(char **v, size_t n)
{
    if (v == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

int sg_pool_list(sg_conn *c, char ***names, size_t *n, char *err, size_t errlen)
{
    *names = NULL;
    *n = 0;
    const char *av[] = {"SMEMBERS", SG_KEY_POOLS};
    redisReply *r = cmdv(c, err, errlen, 2, av);
    if (r == NULL)
        return SG_EBACKEND;
    char **v = calloc(r->elements + 1, sizeof(*v));
    if (v == NULL) {
        freeReplyObject(r);
        return seterr(err, errlen, SG_EBACKEND, "out of memory");
    }
    size_t k = 0;
    for (size_t i = 0; i < r->elements; i++) {
        v[k] = strdup(r->element[i]->str);
        if (v[k] == NULL) {
            sg_strv_free(v, k);
            freeReplyObject(r);
            return seterr(err, errlen, SG_EBACKEND, "out of memory");
        }
        k++;
    }
    freeReplyObject(r);
    qsort(v, k, sizeof(*v), strcmp_p);
    *names = v;
    *n = k;
    return SG_OK;
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
    long long now = sg_server_time_ms(c);
    if (now < 0)
        return seterr(err, errlen, SG_EBACKEND, "redis: TIME failed");
    snprintf(bound, blen, "(%lld", now);
    return SG_OK;
}

int sg_pool_get(sg_conn *c, const char *pool, sg_pool_info *out, char *err, size_t errlen)
{
    char e[SG_ERR_MAX];
    memset(out, 0, sizeof(*out));
    if (sg_valid_name(pool, e, sizeof(e)) != 0)
        return seterr(err, errlen, SG_EINPUT, "pool: %s", e);
    char k[SG_KEY_MAX];
    sg_keyname(SG_K_CONF, pool, k, sizeof(k));
    const char *av[] = {"HGETALL", k};
    redisReply *r = cmdv(c, err, errlen, 2, av);
    if (r == NULL)
        return SG_EBACKEND;
    if (r->elements == 0) {
        freeReplyObject(r);
        return seterr(err, errlen, SG_EINPUT, "no such pool: %s", pool);
    }
    snprintf(out->name, sizeof(out->name), "%s", pool);
    out->idle_s = SG_DEFAULT_IDLE_S;
    out->mux_window_s = 3600;
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        const char *f = r->element[i]->str, *v = r->element[i + 1]->str;
        if (strcmp(f, "named") == 0)
            out->named = atol(v);
        else if (strcmp(f, "floating") == 0)
            out->floating = atol(v);
        else if (strcmp(f, "idle") == 0)
            out->idle_s = atol(v);
        else if (strcmp(f, "overdraft") == 0)
            out->overdraft_pct = atol(v);
        else if (strcmp(f, "mux_limit") == 0)
            out->mux_limit = atol(v);
        else if (strcmp(f, "mux_window") == 0)
            out->mux_window_s = atol(v);
        else if (strcmp(f, "epoch") == 0)
            out->epoch = atoll(v);
        else if (strcmp(f, "features") == 0)
            unlist(v, out->features, sizeof(out->features));
        else if (strcmp(f, "include") == 0)
            unlist(v, out->include, sizeof(out->include));
        else if (strcmp(f, "exclude") == 0)
            unlist(v, out->exclude, sizeof(out->exclude));
        else if (strcmp(f, "reserve") == 0)
            unlist(v, out->reserve, sizeof(out->reserve));
        else if (strcmp(f, "cap") == 0)
            unlist(v, out->cap, sizeof(out->cap));
    }
    freeReplyObject(r);
    out->capacity = out->floating + out->floating * out->overdraft_pct / 100;

    char nowx[32];
    int rc = live_bound(c, pool, nowx, sizeof(nowx), err, errlen);
    if (rc != SG_OK)
        return rc;
    char kn[SG_KEY_MAX], kl[SG_KEY_MAX], ks[SG_KEY_MAX];
    sg_keyname(SG_K_NAMED, pool, kn, sizeof(kn));
    sg_keyname(SG_K_LEASES, pool, kl, sizeof(kl));
    sg_keyname(SG_K_SESS, pool, ks, sizeof(ks));
    const char *a1[] = {"SCARD", kn};
    const char *a2[] = {"ZCOUNT", kl, nowx, "+inf"};
    const char *a3[] = {"ZCOUNT", ks, nowx, "+inf"};
    long *dst[] = {&out->assigned, &out->in_use, &out->sessions};
    const char **cmds[] = {a1, a2, a3};
    int argcs[] = {2, 4, 4};
    for (int i = 0; i < 3; i++) {
        redisReply *x = cmdv(c, err, errlen, argcs[i], cmds[i]);
        if (x == NULL)
            return SG_EBACKEND;
        *dst[i] = (long)x->integer;
        freeReplyObject(x);
    }
    return SG_OK;
}

static int pool_keys(const char *pool, char keys[SG_K_COUNT][SG_KEY_MAX])
{
    for (int i = 0; i < SG_K_COUNT; i++)
        if (sg_keyname((sg_key)i, pool, keys[i], SG_KEY_MAX) != 0)
            return -1;
    return 0;
}

int sg_pool_delete(sg_conn *c, const char *pool, const char *via, char *err, size_t errlen)
{
    char e[SG_ERR_MAX];
    if (sg_valid_name(pool, e, sizeof(e)) != 0)
        return seterr(err, errlen, SG_EINPUT, "pool: %s", e);
    char keys[SG_K_COUNT][SG_KEY_MAX], host[256];
    pool_keys(pool, keys);
    sg_hostname(host, sizeof(host));
    const char *av[SG_K_COUNT + 3];
    for (int i = 0; i < SG_K_COUNT; i++)
        av[i] = keys[i];
    av[SG_K_COUNT] = pool;
    av[SG_K_COUNT + 1] = via ? via : "cli";
    av[SG_K_COUNT + 2] = host;
    redisReply *r = sg_script_run(c, SG_SCRIPT_POOL_DELETE, SG_K_COUNT, SG_K_COUNT + 3, av, err,
                                  errlen);
    if (r == NULL)
        return SG_EBACKEND;
    int existed = r->type == REDIS_REPLY_INTEGER && r->integer == 1;
    freeReplyObject(r);
    const char *sr[] = {"SREM", SG_KEY_POOLS, pool};
    redisReply *x = cmdv(c, err, errlen, 3, sr);
    if (x == NULL)
        return SG_EBACKEND;
    freeReplyObject(x);
    if (!existed)
        return seterr(err, errlen, SG_EINPUT, "no such pool: %s", pool);
    return SG_OK;
}

int sg_assign(sg_conn *c, const char *pool, int assign, const char **users, size_t n,
              const char *via, char *err, size_t errlen)
{
    char e[SG_ERR_MAX];
    if (sg_valid_name(pool, e, sizeof(e)) != 0)
        return seterr(err, errlen, SG_EINPUT, "pool: %s", e);
    if (n == 0)
        return seterr(err, errlen, SG_EINPUT, "no user given");
    for (size_t i = 0; i < n; i++)
        if (sg_valid_ident(users[i], e, sizeof(e)) != 0)
            return seterr(err, errlen, SG_EINPUT, "user #%zu: %s", i + 1, e);
    char k_conf[SG_KEY_MAX], k_named[SG_KEY_MAX], k_audit[SG_KEY_MAX], host[256];
    sg_keyname(SG_K_CONF, pool, k_conf, sizeof(k_conf));
    sg_keyname(SG_K_NAMED, pool, k_named, sizeof(k_named));
    sg_keyname(SG_K_AUDIT, pool, k_audit, sizeof(k_audit));
    sg_hostname(host, sizeof(host));
    const char **av = malloc(sizeof(*av) * (n + 7));
    if (av == NULL)
        return seterr(err, errlen, SG_EBACKEND, "out of memory");
    int k = 0;
    av[k++] = k_conf;
    av[k++] = k_named;
    av[k++] = k_audit;
    av[k++] = pool;
    av[k++] = via ? via : "cli";
    av[k++] = host;
    av[k++] = assign ? "assign" : "unassign";
    for (size_t i = 0; i < n; i++)
        av[k++] = users[i];
    redisReply *r = sg_script_run(c, SG_SCRIPT_ASSIGN, 3, k, av, err, errlen);
    free(av);
    if (r == NULL)
        return SG_EBACKEND;
    int rc = SG_OK;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 3)
        rc = seterr(err, errlen, SG_EBACKEND, "redis: unexpected reply to assign");
    else if (strcmp(r->element[0]->str, "refused") == 0)
        rc = seterr(err, errlen, SG_EDENIED, "%s", r->element[2]->str);
    else if (strcmp(r->element[0]->str, "no_pool") == 0)
        rc = seterr(err, errlen, SG_EINPUT, "%s", r->element[2]->str);
    freeReplyObject(r);
    return rc;
}

int sg_user_set(sg_conn *c, const char *user, const sg_user_change *ch, const char *via,
                char *err, size_t errlen)
{
    char e[SG_ERR_MAX];
    if (sg_valid_ident(user, e, sizeof(e)) != 0)
        return seterr(err, errlen, SG_EINPUT, "user: %s", e);
    char groups[1100];
    if (ch->groups && list_field(ch->groups[0] ? ch->groups : NULL, sg_valid_group, groups,
                                 sizeof(groups), e, sizeof(e)) != 0)
        return seterr(err, errlen, SG_EINPUT, "--groups: %s", e);

    const char *hg[] = {"HGET", SG_KEY_USERS, user};
    redisReply *r = cmdv(c, err, errlen, 3, hg);
    if (r == NULL)
        return SG_EBACKEND;
    char rec[1200] = "00,";
    if (r->type == REDIS_REPLY_STRING && r->len >= 3 && r->len < sizeof(rec))
        memcpy(rec, r->str, r->len + 1);
    freeReplyObject(r);
    char desc[1300];
    size_t dl = 0;
    desc[0] = '\0';
    if (ch->disabled >= 0) {
        rec[0] = ch->disabled ? '1' : '0';
        dl += (size_t)snprintf(desc + dl, sizeof(desc) - dl, "%s ",
                               ch->disabled ? "disabled" : "enabled");
    }
    if (ch->service >= 0) {
        rec[1] = ch->service ? '1' : '0';
        dl += (size_t)snprintf(desc + dl, sizeof(desc) - dl, "service_account=%d ", ch->service);
    }
    if (ch->groups) {
        snprintf(rec + 2, sizeof(rec) - 2, "%s", groups);
        snprintf(desc + dl, sizeof(desc) - dl, "groups=%s", groups);
    }
    const char *hs[] = {"HSET", SG_KEY_USERS, user, rec};
    r = cmdv(c, err, errlen, 4, hs);
    if (r == NULL)
        return SG_EBACKEND;
    freeReplyObject(r);

    char **pools;
    size_t np;
    int rc = sg_pool_list(c, &pools, &np, err, errlen);
    if (rc != SG_OK)
        return rc;
    char host[256];
    sg_hostname(host, sizeof(host));
    for (size_t i = 0; i < np && rc == SG_OK; i++) {
        char keys[SG_K_COUNT][SG_KEY_MAX];
        pool_keys(pools[i], keys);
        const char *av[] = {keys[0], keys[1], keys[2], keys[3], keys[4], keys[5], keys[6],
                            keys[7], pools[i], via ? via : "cli", host, user, rec, desc};
        redisReply *x = sg_script_run(c, SG_SCRIPT_USER_SET, 8, 14, av, err, errlen);
        if (x == NULL)
            rc = SG_EBACKEND;
        else
            freeReplyObject(x);
    }
    sg_strv_free(pools, np);
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
    int rc = SG_OK;
    if (h == NULL) {
        rc = seterr(err, errlen, SG_EBACKEND, "out of memory");
        goto done;
    }
    size_t k = 0;
    for (size_t i = 0; i < named->elements; i++, k++) {
        snprintf(h[k].user, sizeof(h[k].user), "%s", named->element[i]->str);
        snprintf(h[k].kind, sizeof(h[k].kind), "named");
    }
    for (size_t i = 0; i + 1 < fl->elements; i += 2, k++) {
        snprintf(h[k].user, sizeof(h[k].user), "%s", fl->element[i]->str);
        snprintf(h[k].kind, sizeof(h[k].kind), "floating");
        h[k].expires_ms = strtoll(fl->element[i + 1]->str, NULL, 10);
    }
    for (size_t i = 0; i < k; i++) {
        const char *a3[] = {"HGET", ku, h[i].user};
        redisReply *x = cmdv(c, err, errlen, 3, a3);
        if (x == NULL) {
            rc = SG_EBACKEND;
            free(h);
            goto done;
        }
        if (x->type == REDIS_REPLY_STRING)
            h[i].last_used_ms = strtoll(x->str, NULL, 10);
        freeReplyObject(x);
    }
    *out = h;
    *n = k;
done:
    freeReplyObject(named);
    freeReplyObject(fl);
    return rc;
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
    if (s == NULL) {
        freeReplyObject(r);
        return seterr(err, errlen, SG_EBACKEND, "out of memory");
    }
    size_t k = 0;
    for (size_t j = 0; j < cnt; j++) {
        redisReply *m = r->element[2 * j];
        const char *nul = memchr(m->str, '\0', m->len);
        if (nul == NULL)
            continue; /* not written by seatgate: skip it */
        size_t i = k++;
        snprintf(s[i].user, sizeof(s[i].user), "%s", m->str);
        snprintf(s[i].session, sizeof(s[i].session), "%.*s", (int)(m->str + m->len - nul - 1),
                 nul + 1);
        s[i].expires_ms = strtoll(r->element[2 * j + 1]->str, NULL, 10);
        const char *a2[] = {"HGET", ki, m->str};
        size_t l2[] = {4, strlen(ki), m->len};
        redisReply *x = sg_conn_cmd(c, 3, a2, l2, err, errlen);
        if (x == NULL) {
            free(s);
            freeReplyObject(r);
            return SG_EBACKEND;
        }
        if (x->type == REDIS_REPLY_STRING) {
            /* via \t host \t pid \t started \t obo \t client \t ttl */
            char *fields[7] = {0};
            char *save = NULL, *dup = strdup(x->str);
            if (dup) {
                char *p = dup;
                for (int f = 0; f < 7 && p; f++) {
                    fields[f] = p;
                    char *tab = strchr(p, '\t');
                    if (tab)
                        *tab = '\0';
                    p = tab ? tab + 1 : NULL;
                }
                (void)save;
                if (fields[0])
                    snprintf(s[i].via, sizeof(s[i].via), "%s", fields[0]);
                if (fields[1])
                    snprintf(s[i].host, sizeof(s[i].host), "%s", fields[1]);
                if (fields[2])
                    s[i].pid = atol(fields[2]);
                if (fields[3])
                    s[i].started_ms = atoll(fields[3]);
                if (fields[4])
                    snprintf(s[i].obo, sizeof(s[i].obo), "%s", fields[4]);
                if (fields[5])
                    snprintf(s[i].client, sizeof(s[i].client), "%s", fields[5]);
                if (fields[6])
                    s[i].ttl_s = atol(fields[6]);
                free(dup);
            }
        }
        freeReplyObject(x);
    }
    freeReplyObject(r);
    *out = s;
    *n = k;
    return SG_OK;
}

static int pid_alive(long pid)
{
    return kill((pid_t)pid, 0) == 0 || errno == EPERM;
}

int sg_reap(sg_conn *c, const char *host, sg_reap_fn fn, void *ud, long *reaped, long *renewed,
            char *err, size_t errlen)
{
    *reaped = *renewed = 0;
    char **names;
    size_t np;
    int rc = sg_pool_list(c, &names, &np, err, errlen);
    if (rc != SG_OK)
        return rc;
    for (size_t p = 0; p < np && rc == SG_OK; p++) {
        sg_session_info *s;
        size_t n;
        rc = sg_sessions(c, names[p], &s, &n, err, errlen);
        if (rc == SG_EINPUT) { /* a pool deleted meanwhile */
            rc = SG_OK;
            continue;
        }
        if (rc != SG_OK)
            break;
        long long now = sg_server_time_ms(c);
        for (size_t i = 0; i < n && rc == SG_OK; i++) {
            if (s[i].pid <= 0 || strcmp(s[i].host, host) != 0)
                continue;
            if (!pid_alive(s[i].pid)) {
                long r = sg_release(c, names[p], s[i].user, s[i].session, "reap", host, err,
                                    errlen);
                if (r < 0) {
                    rc = SG_EBACKEND;
                    break;
                }
                (*reaped)++;
                if (fn)
                    fn(ud, names[p], &s[i], 0);
                continue;
            }
            if (s[i].ttl_s <= 0 || s[i].obo[0] || now < 0 ||
                s[i].expires_ms - now > s[i].ttl_s * 1000 / 2)
                continue;
            sg_request rq = {.op = SG_OP_ACQUIRE, .pool = names[p], .user = s[i].user,
                             .session = s[i].session, .via = "reap", .host = host,
                             .client = s[i].client, .pid = s[i].pid, .ttl_s = s[i].ttl_s};
            sg_decision d;
            if (sg_decide(c, &rq, &d) != 0) {
                rc = seterr(err, errlen, SG_EBACKEND, "%s", d.err);
                break;
            }
            if (sg_result_granted(d.result)) {
                (*renewed)++;
                if (fn)
                    fn(ud, names[p], &s[i], 1);
            }
        }
        free(s);
    }
    sg_strv_free(names, np);
    return rc;
}
