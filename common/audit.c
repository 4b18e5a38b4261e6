/* Audit export: every pool's audit stream, filtered and merged in time order,
 * and optionally followed as new entries arrive (seatctl audit). */
#include "seatgate.h"
#include "internal.h"

#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define seterr sg_err_rc
#define CHUNK "500"

typedef struct {
    char key[SG_KEY_MAX];
    char pool[SG_POOL_MAX + 1];
    char last[48];     /* id of the last entry read */
    redisReply *batch; /* XRANGE reply being consumed */
    size_t next;
    int done;
} stream_t;

static void id_parse(const char *id, unsigned long long *ms, unsigned long long *seq)
{
    char *end;
    *ms = strtoull(id, &end, 10);
    *seq = *end == '-' ? strtoull(end + 1, NULL, 10) : 0;
}

static int id_cmp(const char *a, const char *b)
{
    unsigned long long am, as, bm, bs;
    id_parse(a, &am, &as);
    id_parse(b, &bm, &bs);
    if (am != bm)
        return am < bm ? -1 : 1;
    return as < bs ? -1 : as > bs;
}

/* the streams to read: one pool's, or every sg:{*}:audit (deleted pools too) */
static int find_streams(sg_conn *c, const char *pool, stream_t **out, size_t *n, char *err,
                        size_t errlen)
{
    *out = NULL;
    *n = 0;
    if (pool) {
        char e[SG_ERR_MAX];
        if (strcmp(pool, "_") != 0 && sg_valid_name(pool, e, sizeof(e)) != 0)
            return seterr(err, errlen, SG_EINPUT, "--pool: %s (or _ for the user registry)", e);
        stream_t *s = calloc(1, sizeof(*s));
        if (s == NULL)
            return seterr(err, errlen, SG_EBACKEND, "out of memory");
        sg_keyname(SG_K_AUDIT, pool, s->key, sizeof(s->key));
        snprintf(s->pool, sizeof(s->pool), "%s", pool);
        *out = s;
        *n = 1;
        return SG_OK;
    }
    char **keys = NULL;
    size_t nk = 0;
    int rc = sg_scan_keys(c, "sg:{*}:audit", &keys, &nk, err, errlen);
    if (rc != SG_OK)
        return rc;
    stream_t *v = calloc(nk + 1, sizeof(*v));
    if (v == NULL) {
        sg_strv_free(keys, nk);
        return seterr(err, errlen, SG_EBACKEND, "out of memory");
    }
    size_t k = 0;
    for (size_t i = 0; i < nk; i++) {
        if (sg_key_pool_of(keys[i], "audit", v[k].pool, sizeof(v[k].pool)) != 0)
            continue;
        snprintf(v[k].key, sizeof(v[k].key), "%s", keys[i]);
        k++;
    }
    sg_strv_free(keys, nk);
    *out = v;
    *n = k;
    return SG_OK;
}

/* refill a stream's batch from last (exclusive) up to until */
static int refill(sg_conn *c, stream_t *s, const char *until, char *err, size_t errlen)
{
    if (s->batch) {
        freeReplyObject(s->batch);
        s->batch = NULL;
    }
    char start[64];
    snprintf(start, sizeof(start), "(%s", s->last);
    const char *av[] = {"XRANGE", s->key, start, until, "COUNT", CHUNK};
    redisReply *r = sg_cmdv(c, err, errlen, 6, av);
    if (r == NULL)
        return SG_EBACKEND;
    if (r->type != REDIS_REPLY_ARRAY || r->elements == 0) {
        freeReplyObject(r);
        s->done = 1;
        return SG_OK;
    }
    s->batch = r;
    s->next = 0;
    return SG_OK;
}

static int user_matches(const sg_audit_entry *e, const char *user)
{
    if (user == NULL)
        return 1;
    for (int i = 0; i < e->nfields; i++)
        if ((strcmp(e->name[i], "user") == 0 || strcmp(e->name[i], "obo") == 0) &&
            strcmp(e->value[i], user) == 0)
            return 1;
    return 0;
}

static int emit(const redisReply *item, const char *pool, const sg_audit_query *q,
                sg_audit_fn fn, void *ud)
{
    if (item->type != REDIS_REPLY_ARRAY || item->elements != 2)
        return 0;
    const redisReply *fields = item->element[1];
    sg_audit_entry e;
    memset(&e, 0, sizeof(e));
    snprintf(e.id, sizeof(e.id), "%s", item->element[0]->str);
    e.pool = pool;
    unsigned long long ms, seq;
    id_parse(e.id, &ms, &seq);
    e.at_ms = (long long)ms;
    for (size_t i = 0; i + 1 < fields->elements && e.nfields < SG_AUDIT_FIELDS; i += 2) {
        e.name[e.nfields] = fields->element[i]->str;
        e.value[e.nfields] = fields->element[i + 1]->str;
        if (strcmp(e.name[e.nfields], "at") == 0)
            e.at_ms = strtoll(e.value[e.nfields], NULL, 10);
        e.nfields++;
    }
    if (!user_matches(&e, q->user))
        return 0;
    return fn(ud, &e);
}

/* An XREAD reply: its entries emitted in order, each stream's last id kept.
 * Returns how many entries came; *stop when fn asked to stop. */
static size_t follow_reply(const redisReply *r, stream_t *s, size_t n, const sg_audit_query *q,
                           sg_audit_fn fn, void *ud, int *stop)
{
    size_t got = 0;
    for (size_t j = 0; r->type == REDIS_REPLY_ARRAY && j < r->elements && !*stop; j++) {
        const redisReply *st = r->element[j];
        if (st->type != REDIS_REPLY_ARRAY || st->elements != 2 ||
            st->element[0]->type != REDIS_REPLY_STRING ||
            st->element[1]->type != REDIS_REPLY_ARRAY)
            continue;
        stream_t *which = NULL;
        for (size_t i = 0; i < n && which == NULL; i++)
            if (strcmp(s[i].key, st->element[0]->str) == 0)
                which = &s[i];
        if (which == NULL)
            continue;
        for (size_t m = 0; m < st->element[1]->elements && !*stop; m++) {
            const redisReply *item = st->element[1]->element[m];
            if (item->type != REDIS_REPLY_ARRAY || item->elements != 2)
                continue;
            *stop = emit(item, which->pool, q, fn, ud);
            snprintf(which->last, sizeof(which->last), "%s", item->element[0]->str);
            got++;
        }
    }
    return got;
}

int sg_audit_read(sg_conn *c, const sg_audit_query *q, sg_audit_fn fn, void *ud, char *err,
                  size_t errlen)
{
    stream_t *s = NULL;
    size_t n = 0;
    int rc = find_streams(c, q->pool, &s, &n, err, errlen);
    if (rc != SG_OK)
        return rc;
    char until[48] = "+";
    if (q->until_ms > 0)
        snprintf(until, sizeof(until), "%lld-18446744073709551615", q->until_ms);
    for (size_t i = 0; i < n; i++) {
        /* "(" of an id just below since_ms: the first id at since_ms is included */
        if (q->since_ms > 0)
            snprintf(s[i].last, sizeof(s[i].last), "%lld-18446744073709551615", q->since_ms - 1);
        else
            snprintf(s[i].last, sizeof(s[i].last), "0-0");
    }
    /* history: a k-way merge of the streams in id order */
    for (size_t i = 0; i < n && rc == SG_OK; i++)
        rc = refill(c, &s[i], until, err, errlen);
    int stop = 0;
    while (rc == SG_OK && !stop) {
        stream_t *best = NULL;
        for (size_t i = 0; i < n; i++) {
            if (s[i].done)
                continue;
            const char *id = s[i].batch->element[s[i].next]->element[0]->str;
            if (best == NULL || id_cmp(id, best->batch->element[best->next]->element[0]->str) < 0)
                best = &s[i];
        }
        if (best == NULL)
            break;
        const redisReply *item = best->batch->element[best->next];
        stop = emit(item, best->pool, q, fn, ud);
        snprintf(best->last, sizeof(best->last), "%s", item->element[0]->str);
        if (++best->next >= best->batch->elements)
            rc = refill(c, best, until, err, errlen);
    }
    /* follow: new entries of the same streams as they come (Redis Cluster:
     * polled stream by stream, see below) */
    int cluster = 0;
    if (rc == SG_OK && !stop && q->follow) {
        int *masters = NULL;
        int nmasters = sg_conn_masters(c, &masters, err, errlen);
        free(masters);
        if (nmasters < 0)
            rc = SG_EBACKEND;
        cluster = nmasters > 0;
    }
    int block = sg_conn_timeout_ms(c) / 2;
    if (block < 50)
        block = 50;
    char blk[16];
    snprintf(blk, sizeof(blk), "%d", block);
    struct timespec last_scan;
    clock_gettime(CLOCK_MONOTONIC, &last_scan);
    while (rc == SG_OK && !stop && q->follow) {
        /* every pool's stream: pick up the streams of pools created since */
        struct timespec nowts;
        clock_gettime(CLOCK_MONOTONIC, &nowts);
        if (q->pool == NULL && (n == 0 || nowts.tv_sec - last_scan.tv_sec >= 2)) {
            last_scan = nowts;
            stream_t *more = NULL;
            size_t nm = 0;
            rc = find_streams(c, NULL, &more, &nm, err, errlen);
            if (rc != SG_OK)
                break;
            size_t add = 0;
            for (size_t j = 0; j < nm; j++) {
                int known = 0;
                for (size_t i = 0; i < n && !known; i++)
                    known = strcmp(s[i].key, more[j].key) == 0;
                if (!known)
                    more[add++] = more[j];
            }
            if (add) {
                stream_t *ns = realloc(s, sizeof(*s) * (n + add));
                if (ns == NULL) {
                    free(more);
                    rc = seterr(err, errlen, SG_EBACKEND, "out of memory");
                    break;
                }
                s = ns;
                for (size_t j = 0; j < add; j++) {
                    s[n + j] = more[j];
                    snprintf(s[n + j].last, sizeof(s[n + j].last), "0-0");
                }
                n += add;
            }
            free(more);
        }
        if (n == 0) {
            struct timespec pause = {0, (long)block * 1000000L};
            nanosleep(&pause, NULL);
            continue;
        }
        if (cluster) {
            /* one XREAD may name the streams of one slot only, and each
             * pool is a slot of its own: every stream is asked in turn,
             * without blocking, and the pause comes when none had news */
            size_t got = 0;
            for (size_t i = 0; i < n && rc == SG_OK && !stop; i++) {
                const char *av[] = {"XREAD", "COUNT", "1000", "STREAMS", s[i].key, s[i].last};
                redisReply *r = sg_cmdv(c, err, errlen, 6, av);
                if (r == NULL) {
                    rc = SG_EBACKEND;
                    break;
                }
                got += follow_reply(r, s, n, q, fn, ud, &stop);
                freeReplyObject(r);
            }
            if (rc == SG_OK && !stop && got == 0) {
                struct timespec pause = {block / 1000, (long)(block % 1000) * 1000000L};
                nanosleep(&pause, NULL);
            }
            continue;
        }
        const char **av = malloc(sizeof(*av) * (2 * n + 6));
        if (av == NULL) {
            rc = seterr(err, errlen, SG_EBACKEND, "out of memory");
            break;
        }
        int k = 0;
        av[k++] = "XREAD";
        av[k++] = "BLOCK";
        av[k++] = blk;
        av[k++] = "STREAMS";
        for (size_t i = 0; i < n; i++)
            av[k++] = s[i].key;
        for (size_t i = 0; i < n; i++)
            av[k++] = s[i].last;
        redisReply *r = sg_cmdv(c, err, errlen, k, av);
        free(av);
        if (r == NULL) {
            rc = SG_EBACKEND;
            break;
        }
        (void)follow_reply(r, s, n, q, fn, ud, &stop);
        freeReplyObject(r);
    }
    for (size_t i = 0; i < n; i++)
        if (s[i].batch)
            freeReplyObject(s[i].batch);
    free(s);
    return rc;
}

const char *sg_audit_field(const sg_audit_entry *e, const char *name)
{
    for (int i = 0; i < e->nfields; i++)
        if (strcmp(e->name[i], name) == 0)
            return e->value[i];
    return "";
}

/* ---- explain ------------------------------------------------------------------- */

const char *const sg_explain_fields[SG_EXPLAIN_KEEP] = {
    "ev", "pool", "user", "obo", "via", "host", "result", "reason", "seat", "by", "before",
    "after"};

/* the events that say what happened to a person's seats and record */
static const char *const explain_events[] = {"grant",  "join",    "deny",   "deny_repeat",
                                             "expire", "release", "revoke", "convert",
                                             "assign", "unassign", "user_set", "mux_finding"};

static void event_clear(sg_explain_event *ev)
{
    for (int i = 0; i < SG_EXPLAIN_KEEP; i++)
        free(ev->field[i]);
    memset(ev, 0, sizeof(*ev));
}

static int event_set(sg_explain_event *ev, const sg_audit_entry *e)
{
    event_clear(ev);
    ev->at_ms = e->at_ms;
    for (int i = 0; i < SG_EXPLAIN_KEEP; i++) {
        const char *v = i == 1 ? (e->pool ? e->pool : "") : sg_audit_field(e, sg_explain_fields[i]);
        if ((ev->field[i] = strdup(v)) == NULL)
            return -1;
    }
    return 0;
}

const char *sg_explain_field(const sg_explain_event *ev, const char *name)
{
    for (int i = 0; i < SG_EXPLAIN_KEEP; i++)
        if (strcmp(sg_explain_fields[i], name) == 0)
            return ev->field[i] ? ev->field[i] : "";
    return "";
}

struct explain_scan {
    sg_explain *x;
    int oom;
};

static int explain_entry(void *ud, const sg_audit_entry *e)
{
    struct explain_scan *sc = ud;
    sg_explain *x = sc->x;
    const char *ev = sg_audit_field(e, "ev");
    if (strcmp(ev, "sync") == 0 || strcmp(ev, "scim") == 0) { /* a file, or live SCIM */
        /* the latest of each: the record, and each pool's named seat */
        const char *after = sg_audit_field(e, "after"), *before = sg_audit_field(e, "before");
        const char *seat = strncmp(after, "named seat of ", 14) == 0    ? after + 14
                           : strncmp(before, "named seat of ", 14) == 0 ? before + 14
                                                                          : NULL;
        if (seat == NULL) {
            sc->oom |= event_set(&x->record, e);
            return 0;
        }
        for (size_t i = 0; i < x->user.npools; i++)
            if (strcmp(x->user.pools[i].pool, seat) == 0)
                sc->oom |= event_set(&x->named[i], e);
        return 0;
    }
    for (size_t i = 0; i < sizeof(explain_events) / sizeof(explain_events[0]); i++)
        if (strcmp(ev, explain_events[i]) == 0) {
            if (x->nlast == SG_EXPLAIN_LAST) { /* a ring: the oldest goes */
                event_clear(&x->last[0]);
                memmove(&x->last[0], &x->last[1], sizeof(x->last[0]) * (SG_EXPLAIN_LAST - 1));
                memset(&x->last[SG_EXPLAIN_LAST - 1], 0, sizeof(x->last[0]));
                x->nlast--;
            }
            sc->oom |= event_set(&x->last[x->nlast++], e);
            break;
        }
    return 0;
}

int sg_explain_get(sg_conn *c, const char *user, sg_explain *x, char *err, size_t errlen)
{
    memset(x, 0, sizeof(*x));
    int rc = sg_user_get(c, user, &x->user, err, errlen);
    if (rc != SG_OK)
        return rc;
    x->named = calloc(x->user.npools + 1, sizeof(*x->named));
    if (x->named == NULL) {
        sg_explain_free(x);
        return seterr(err, errlen, SG_EBACKEND, "out of memory");
    }
    struct explain_scan sc = {x, 0};
    sg_audit_query q = {.user = user};
    rc = sg_audit_read(c, &q, explain_entry, &sc, err, errlen);
    if (rc == SG_OK && sc.oom)
        rc = seterr(err, errlen, SG_EBACKEND, "out of memory");
    if (rc != SG_OK)
        sg_explain_free(x);
    return rc;
}

void sg_explain_free(sg_explain *x)
{
    event_clear(&x->record);
    for (size_t i = 0; x->named && i < x->user.npools; i++)
        event_clear(&x->named[i]);
    free(x->named);
    for (size_t i = 0; i < x->nlast; i++)
        event_clear(&x->last[i]);
    sg_user_info_free(&x->user);
    memset(x, 0, sizeof(*x));
}
