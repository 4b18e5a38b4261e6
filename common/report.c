/* The license report (seatctl report): what the usage records of a pool say
 * over a time range, and the cheapest mix of named and floating seats that
 * would have served it. Presentation (text, JSON, HTML) is seatctl's.
 *
 * Data: per UTC day, ua:D (records of the sessions held and the refusals
 * for want of a seat), uc:D (counters per bucket), um:D:SVC (the humans a
 * service account acted for); the sessions still open are added from sess
 * and sessinfo. See docs/redis-schema.md.
 *
 * The recommendation. Time is cut into the pool's buckets; a user is active
 * in a bucket when one of their sessions was live in it. With k named seats
 * given to the k most active users, the floating demand of a bucket is the
 * number of its other active users; F floating seats serve a bucket when its
 * demand is at most F. The denied time of (k, F) is the share of buckets
 * whose demand exceeds F. For every k the smallest F within the denial
 * budget is found from a histogram of demands, and the (k, F) of least cost
 * k x price_named + F x price_floating wins (ties: fewer seats). Every k is
 * tried exactly up to 400 users; above that on a grid refined around the
 * best point. */
#include "seatgate.h"
#include "internal.h"

#include <hiredis/hiredis.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define seterr sg_err_rc
#define DAY_MS 86400000LL
#define EXACT_K 400

typedef struct {
    char *name;
    int named_now;        /* assigned a named seat today */
    long long lastused;   /* ms, 0 = never */
    long active;          /* buckets active in the range */
    long rank;            /* by activity, 0 = most active */
} user_t;

typedef struct {
    long day;             /* index of the day in the range */
    long user;            /* index into users */
    char kind;            /* 'n' or 'f' ('w': only refused that day) */
    unsigned char *bits;  /* (nb + 7) / 8 bytes: held a session */
    unsigned char *want;  /* refused for want of a seat, or NULL */
} uday_t;

typedef struct {
    long user;
    long long t0, t1;     /* ms, inside the range */
} span_t;

typedef struct {
    user_t *u;
    size_t nu, cap;
    sg_strset index; /* name -> index into u (the names are u[i].name) */
} users_t;

/* the index of a user, added when add and new; -1 absent, -2 out of memory */
static long user_find(users_t *us, const char *name, int add)
{
    long i = us->index.cap ? sg_strset_get(&us->index, name) : -1;
    if (i >= 0 || !add)
        return i;
    if (us->index.cap == 0 && sg_strset_init(&us->index, 1024) != 0)
        return -2;
    if (us->nu == us->cap) {
        size_t c = us->cap ? us->cap * 2 : 256;
        user_t *u = realloc(us->u, c * sizeof(*u));
        if (u == NULL)
            return -2;
        us->u = u;
        us->cap = c;
    }
    user_t *u = &us->u[us->nu];
    memset(u, 0, sizeof(*u));
    u->name = strdup(name);
    if (u->name == NULL)
        return -2;
    if (sg_strset_put(&us->index, u->name, (long)us->nu) != 0) {
        free(u->name);
        return -2;
    }
    return (long)us->nu++;
}

static void users_free(users_t *us)
{
    for (size_t i = 0; i < us->nu; i++)
        free(us->u[i].name);
    free(us->u);
    sg_strset_free(&us->index);
}

static int cmp_long_desc(const void *a, const void *b)
{
    long x = *(const long *)a, y = *(const long *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* ---- reading ----------------------------------------------------------------- */

typedef struct {
    sg_conn *c;
    const char *pool;
    long nb;              /* buckets per day */
    long long bs_ms;
    long ndays;
    long long day0;       /* the first day (ms / DAY_MS) */
    users_t users;
    uday_t *ud;
    size_t nud, capud;
    span_t *open;         /* sessions still open */
    size_t nopen;
    sg_report *out;
    char *err;
    size_t errlen;
} ctx_t;

/* the bitmap of (day, user); days are read in order, so an entry of the
 * current day is among the last ones */
static uday_t *uday_of(ctx_t *x, long day, long user, char kind)
{
    for (size_t i = x->nud; i > 0 && x->ud[i - 1].day == day; i--)
        if (x->ud[i - 1].user == user) {
            if (kind == 'n' || (kind == 'f' && x->ud[i - 1].kind == 'w'))
                x->ud[i - 1].kind = kind;
            return &x->ud[i - 1];
        }
    if (x->nud == x->capud) {
        size_t c = x->capud ? x->capud * 2 : 1024;
        uday_t *u = realloc(x->ud, c * sizeof(*u));
        if (u == NULL)
            return NULL;
        x->ud = u;
        x->capud = c;
    }
    unsigned char *bits = calloc((size_t)(x->nb + 7) / 8, 1);
    if (bits == NULL)
        return NULL;
    x->ud[x->nud++] = (uday_t){.day = day, .user = user, .kind = kind, .bits = bits};
    return &x->ud[x->nud - 1];
}

static unsigned char *uday_bits(ctx_t *x, long day, long user, char kind)
{
    uday_t *u = uday_of(x, day, user, kind);
    if (u == NULL)
        return NULL;
    if (kind == 'w') {
        if (u->want == NULL)
            u->want = calloc((size_t)(x->nb + 7) / 8, 1);
        return u->want;
    }
    return u->bits;
}

static int bit(const unsigned char *bits, long b)
{
    return (bits[b / 8] >> (b % 8)) & 1;
}

/* active in bucket b: held a session, or was refused for want of a seat */
static int active(const uday_t *u, long b)
{
    return bit(u->bits, b) || (u->want && bit(u->want, b));
}

static void set_bits(unsigned char *bits, long b0, long b1)
{
    for (long b = b0; b <= b1; b++)
        bits[b / 8] |= (unsigned char)(1u << (b % 8));
}

static int oom(ctx_t *x)
{
    return seterr(x->err, x->errlen, SG_EBACKEND, "out of memory");
}

static redisReply *cmd(ctx_t *x, int argc, const char **argv)
{
    redisReply *r = sg_cmdv(x->c, x->err, x->errlen, argc, argv);
    if (r && r->type == REDIS_REPLY_ERROR) {
        seterr(x->err, x->errlen, SG_EBACKEND, "redis: %s", r->str);
        freeReplyObject(r);
        return NULL;
    }
    return r;
}

static int add_reason(sg_report *r, const char *reason, long n)
{
    for (size_t i = 0; i < r->nreasons; i++)
        if (strcmp(r->reasons[i].reason, reason) == 0) {
            r->reasons[i].count += n;
            return 0;
        }
    sg_report_reason *v = realloc(r->reasons, (r->nreasons + 1) * sizeof(*v));
    if (v == NULL)
        return -1;
    r->reasons = v;
    snprintf(v[r->nreasons].reason, sizeof(v[r->nreasons].reason), "%s", reason);
    v[r->nreasons++].count = n;
    return 0;
}

static int add_mux(ctx_t *x, long day, const char *svc, int no_obo, long count)
{
    sg_report *r = x->out;
    long long dms = (x->day0 + day) * DAY_MS;
    for (size_t i = 0; i < r->nmux; i++)
        if (r->mux[i].day_ms == dms && strcmp(r->mux[i].account, svc) == 0) {
            if (no_obo)
                r->mux[i].without_obo += count;
            return 0;
        }
    sg_report_mux *m = realloc(r->mux, (r->nmux + 1) * sizeof(*m));
    if (m == NULL)
        return -1;
    r->mux = m;
    memset(&m[r->nmux], 0, sizeof(*m));
    m[r->nmux].day_ms = dms;
    snprintf(m[r->nmux].account, sizeof(m[r->nmux].account), "%s", svc);
    if (no_obo)
        m[r->nmux].without_obo = count;
    r->nmux++;
    return 0;
}

/* one day's counters, only the buckets in [b_lo, b_hi); *bs_rec gets the
 * bucket size the day was recorded with */
static int read_counters(ctx_t *x, long day, long b_lo, long b_hi, long long *bs_rec)
{
    sg_report *r = x->out;
    char key[SG_KEY_MAX + 32];
    snprintf(key, sizeof(key), "sg:{%s}:uc:%lld", x->pool, x->day0 + day);
    const char *av[] = {"HGETALL", key};
    redisReply *h = cmd(x, 2, av);
    if (h == NULL)
        return SG_EBACKEND;
    *bs_rec = x->bs_ms;
    for (size_t i = 0; i + 1 < h->elements; i += 2)
        if (strcmp(h->element[i]->str, "bs") == 0 && atol(h->element[i + 1]->str) >= 60)
            *bs_rec = atol(h->element[i + 1]->str) * 1000LL;
    sg_report_day *d = &r->days[day];
    int rc = SG_OK;
    for (size_t i = 0; i + 1 < h->elements && rc == SG_OK; i += 2) {
        const char *f = h->element[i]->str;
        long v = atol(h->element[i + 1]->str);
        if (f[0] == '\0' || f[1] != ':')
            continue;
        char *rest;
        long brec = strtol(f + 2, &rest, 10);
        if (brec < 0 || rest == f + 2)
            continue; /* a damaged field */
        long long off = brec * *bs_rec; /* ms into the day */
        long b = (long)(off / x->bs_ms);
        if (b < b_lo || b >= b_hi)
            continue;
        switch (f[0]) {
        case 'd':
            if (*rest == ':') {
                d->denials += v;
                r->denials_total += v;
                r->denials_by_hour[off / 3600000] += v;
                if (add_reason(r, rest + 1, v) != 0)
                    rc = oom(x);
            }
            break;
        case 'o':
            d->overdraft += v;
            break;
        case 'f':
            d->free_requests += v;
            r->free_total += v;
            break;
        case 'x':
        case 'm':
            if (*rest == ':' && add_mux(x, day, rest + 1, f[0] == 'x', v) != 0)
                rc = oom(x);
            break;
        default:
            break;
        }
    }
    freeReplyObject(h);
    return rc;
}

/* one day's activity, recorded with buckets of bs_rec, in the report's
 * buckets, cut to [b_lo, b_hi); then the open sessions of that day */
/* one day's records "user TAB from TAB to TAB kind LF" (ms into the day) in
 * the report's buckets, cut to [b_lo, b_hi); a malformed record is skipped */
static int read_records(ctx_t *x, long day, long b_lo, long b_hi)
{
    char key[SG_KEY_MAX + 32];
    snprintf(key, sizeof(key), "sg:{%s}:ua:%lld", x->pool, x->day0 + day);
    const char *av[] = {"GET", key};
    redisReply *h = cmd(x, 2, av);
    if (h == NULL)
        return SG_EBACKEND;
    int rc = SG_OK;
    const char *p = h->type == REDIS_REPLY_STRING ? h->str : "";
    const char *end = p + (h->type == REDIS_REPLY_STRING ? h->len : 0);
    while (p < end && rc == SG_OK) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (nl == NULL)
            break;
        char line[SG_IDENT_MAX + 64], user[SG_IDENT_MAX + 1], kind;
        long long from, to;
        size_t len = (size_t)(nl - p);
        int ok = 0;
        if (len < sizeof(line)) {
            memcpy(line, p, len);
            line[len] = '\0';
            char *t1 = strchr(line, '\t'), *t2 = t1 ? strchr(t1 + 1, '\t') : NULL,
                 *t3 = t2 ? strchr(t2 + 1, '\t') : NULL;
            if (t3 && t3[1] && !t3[2]) {
                *t1 = *t2 = *t3 = '\0';
                char *e1, *e2;
                from = strtoll(t1 + 1, &e1, 10);
                to = strtoll(t2 + 1, &e2, 10);
                kind = t3[1];
                size_t ul = strlen(line);
                if (ul > SG_IDENT_MAX)
                    ul = 0; /* not an identity: skipped below */
                memcpy(user, line, ul);
                user[ul] = '\0';
                ok = ul > 0 && !*e1 && !*e2 && from >= 0 && to > from && to <= DAY_MS &&
                     (kind == 'n' || kind == 'f' || kind == 'w') &&
                     sg_valid_ident(user, NULL, 0) == 0;
            }
        }
        p = nl + 1;
        if (!ok)
            continue;
        long b0 = (long)(from / x->bs_ms), b1 = (long)((to - 1) / x->bs_ms);
        if (b0 < b_lo)
            b0 = b_lo;
        if (b1 >= b_hi)
            b1 = b_hi - 1;
        if (b0 > b1)
            continue;
        long u = user_find(&x->users, user, 1);
        unsigned char *bits = u < 0 ? NULL : uday_bits(x, day, u, kind);
        if (bits == NULL) {
            rc = oom(x);
            break;
        }
        set_bits(bits, b0, b1);
    }
    freeReplyObject(h);
    return rc;
}

static int read_activity(ctx_t *x, long day, long b_lo, long b_hi)
{
    int rc = read_records(x, day, b_lo, b_hi);
    long long ds = (x->day0 + day) * DAY_MS;
    for (size_t i = 0; i < x->nopen && rc == SG_OK; i++) {
        span_t *sp = &x->open[i];
        long long t0 = sp->t0 > ds ? sp->t0 : ds, t1 = sp->t1 < ds + DAY_MS ? sp->t1 : ds + DAY_MS;
        if (t0 >= t1)
            continue;
        unsigned char *bits =
            uday_bits(x, day, sp->user, x->users.u[sp->user].named_now ? 'n' : 'f');
        if (bits == NULL)
            return oom(x);
        set_bits(bits, (long)((t0 - ds) / x->bs_ms), (long)((t1 - 1 - ds) / x->bs_ms));
    }
    return rc;
}

/* the sessions not ended yet: live from their start until now, or until
 * their expiry when they lapsed and were not purged yet */
static int read_open_sessions(ctx_t *x, long long now, long long since, long long until)
{
    char ks[SG_KEY_MAX], ki[SG_KEY_MAX];
    sg_keyname(SG_K_SESS, x->pool, ks, sizeof(ks));
    sg_keyname(SG_K_SESSINFO, x->pool, ki, sizeof(ki));
    const char *av[] = {"ZRANGEBYSCORE", ks, "-inf", "+inf", "WITHSCORES"};
    redisReply *m = cmd(x, 5, av);
    if (m == NULL)
        return SG_EBACKEND;
    /* their start times, in pipelined batches (not one round trip each) */
    size_t n = m->elements / 2;
    char **mem = calloc(n + 1, sizeof(*mem)), **info = calloc(n + 1, sizeof(*info));
    size_t *mlen = calloc(n + 1, sizeof(*mlen));
    int rc = mem && info && mlen ? SG_OK : oom(x);
    for (size_t i = 0; rc == SG_OK && i < n; i++) {
        mem[i] = m->element[2 * i]->str;
        mlen[i] = m->element[2 * i]->len;
    }
    if (rc == SG_OK)
        rc = sg_hmget_all(x->c, ki, mem, mlen, n, info, x->err, x->errlen);
    for (size_t i = 0; rc == SG_OK && i < n; i++) {
        const char *member = mem[i];
        size_t ml = mlen[i], ul = strnlen(member, ml);
        long long expiry = atoll(m->element[2 * i + 1]->str);
        const char *st = info[i] ? strstr(info[i], "started=") : NULL;
        long long started = st ? atoll(st + 8) : 0;
        if (started <= 0 || ul == ml || ul > SG_IDENT_MAX)
            continue;
        char user[SG_IDENT_MAX + 1];
        snprintf(user, sizeof(user), "%.*s", (int)ul, member);
        long long t0 = started > since ? started : since, t1 = now < until ? now : until;
        if (expiry < t1)
            t1 = expiry;
        if (t0 >= t1)
            continue;
        long u = user_find(&x->users, user, 1);
        span_t *o = u < 0 ? NULL : realloc(x->open, (x->nopen + 1) * sizeof(*o));
        if (o == NULL) {
            rc = oom(x);
            break;
        }
        x->open = o;
        o[x->nopen++] = (span_t){.user = u, .t0 = t0, .t1 = t1};
    }
    if (info)
        sg_strv_free(info, n);
    free(mem);
    free(mlen);
    freeReplyObject(m);
    return rc;
}

/* the named seats and when their users last used the pool */
static int read_named(ctx_t *x)
{
    char kn[SG_KEY_MAX], kl[SG_KEY_MAX];
    sg_keyname(SG_K_NAMED, x->pool, kn, sizeof(kn));
    sg_keyname(SG_K_LASTUSED, x->pool, kl, sizeof(kl));
    const char *av[] = {"SMEMBERS", kn};
    redisReply *m = cmd(x, 2, av);
    if (m == NULL)
        return SG_EBACKEND;
    size_t n = m->elements;
    char **names = calloc(n + 1, sizeof(*names)), **used = calloc(n + 1, sizeof(*used));
    int rc = names && used ? SG_OK : oom(x);
    for (size_t i = 0; rc == SG_OK && i < n; i++)
        names[i] = m->element[i]->str;
    if (rc == SG_OK)
        rc = sg_hmget_all(x->c, kl, names, NULL, n, used, x->err, x->errlen);
    for (size_t i = 0; rc == SG_OK && i < n; i++) {
        long u = user_find(&x->users, names[i], 1);
        if (u < 0) {
            rc = oom(x);
            break;
        }
        x->users.u[u].named_now = 1;
        if (used[i])
            x->users.u[u].lastused = atoll(used[i]);
    }
    if (used)
        sg_strv_free(used, n);
    free(names);
    freeReplyObject(m);
    return rc;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* the findings among the service accounts: the humans of each */
static int read_mux(ctx_t *x)
{
    sg_report *r = x->out;
    size_t keep = 0;
    int rc = SG_OK;
    for (size_t i = 0; i < r->nmux && rc == SG_OK; i++) {
        sg_report_mux *m = &r->mux[i];
        char key[SG_KEY_MAX + SG_IDENT_MAX + 32];
        snprintf(key, sizeof(key), "sg:{%s}:um:%lld:%s", x->pool, m->day_ms / DAY_MS, m->account);
        const char *av[] = {"SMEMBERS", key};
        redisReply *h = cmd(x, 2, av);
        if (h == NULL) {
            rc = SG_EBACKEND;
            break;
        }
        m->nhumans = (long)h->elements;
        m->over_limit = r->mux_limit > 0 && m->nhumans > r->mux_limit;
        if (m->over_limit || m->without_obo > 0) {
            m->humans = calloc(h->elements + 1, sizeof(char *));
            for (size_t k = 0; m->humans && k < h->elements; k++)
                if ((m->humans[k] = strdup(h->element[k]->str)) == NULL)
                    rc = oom(x);
            if (m->humans == NULL)
                rc = oom(x);
            else if (rc == SG_OK)
                qsort(m->humans, h->elements, sizeof(char *), cmp_str);
            /* a finding moves down to its place; the slot it leaves owns
             * nothing (so a failure later frees each list once) */
            r->mux[keep++] = *m;
            if (&r->mux[keep - 1] != m)
                m->humans = NULL;
        }
        freeReplyObject(h);
    }
    /* only the findings stay (on a failure: those read so far, freed by the
     * caller) */
    r->nmux = keep;
    return rc;
}

/* ---- analysis ---------------------------------------------------------------- */

static int cmp_rank(const void *a, const void *b)
{
    const user_t *x = *(const user_t *const *)a, *y = *(const user_t *const *)b;
    if (x->active != y->active)
        return x->active < y->active ? 1 : -1;
    return strcmp(x->name, y->name);
}

static int cmp_ud_user(const void *a, const void *b)
{
    const uday_t *x = a, *y = b;
    if (x->user != y->user)
        return x->user < y->user ? -1 : 1;
    return x->day < y->day ? -1 : x->day > y->day;
}

static int cmp_reason(const void *a, const void *b)
{
    const sg_report_reason *x = a, *y = b;
    if (x->count != y->count)
        return x->count < y->count ? 1 : -1;
    return strcmp(x->reason, y->reason);
}

/* per day: the floating seats in use (peak, p95, time-weighted mean), the
 * distinct users; over the range: the modelled denied time with today's
 * seats and assignments */
static int analyse_days(ctx_t *x, long *demand)
{
    sg_report *r = x->out;
    long nb = x->nb;
    long *fl = calloc((size_t)nb, sizeof(long)), *sorted = calloc((size_t)nb, sizeof(long));
    if (fl == NULL || sorted == NULL) {
        free(fl);
        free(sorted);
        return oom(x);
    }
    long capacity = r->floating + r->floating * r->overdraft_pct / 100, denied = 0;
    size_t i = 0;
    for (long d = 0; d < x->ndays; d++) {
        memset(fl, 0, (size_t)nb * sizeof(long));
        sg_report_day *day = &r->days[d];
        for (; i < x->nud && x->ud[i].day == d; i++) {
            uday_t *u = &x->ud[i];
            int any = 0;
            int named_now = x->users.u[u->user].named_now;
            for (long b = 0; b < nb; b++) {
                if (!named_now && active(u, b))
                    demand[d * nb + b]++;
                if (!bit(u->bits, b))
                    continue;
                any = 1;
                if (u->kind == 'f')
                    fl[b]++;
            }
            if (any) {
                day->users++;
                if (u->kind == 'n')
                    day->named_users++;
            }
        }
        /* the day's part of the range */
        long long ds = (x->day0 + d) * DAY_MS;
        long b_lo = ds < r->since_ms ? (long)((r->since_ms - ds) / x->bs_ms) : 0;
        long long end = r->until_ms < ds + DAY_MS ? r->until_ms : ds + DAY_MS;
        long b_hi = (long)((end - ds + x->bs_ms - 1) / x->bs_ms);
        long n = 0;
        double sum = 0;
        for (long b = b_lo; b < b_hi; b++) {
            sorted[n++] = fl[b];
            sum += (double)fl[b];
            if (fl[b] > day->peak)
                day->peak = fl[b];
            if (demand[d * nb + b] > capacity)
                denied++;
        }
        if (n > 0) {
            qsort(sorted, (size_t)n, sizeof(long), cmp_long_desc);
            day->p95 = sorted[(long)floor((double)n * 0.05)];
            day->avg = sum / (double)n;
        }
        if (day->peak > r->peak_floating)
            r->peak_floating = day->peak;
        if (day->overdraft > 0)
            r->overdraft_days++;
    }
    r->now_denied_share = r->nbuckets ? (double)denied / (double)r->nbuckets : 0;
    free(fl);
    free(sorted);
    return SG_OK;
}

/* the cheapest (named, floating) within the budget: see the top comment */
static int recommend(ctx_t *x)
{
    sg_report *r = x->out;
    long nbk = x->ndays * x->nb;
    long *demand = calloc((size_t)nbk, sizeof(long));
    int *inrange = calloc((size_t)nbk, sizeof(int));
    user_t **order = calloc(x->users.nu + 1, sizeof(*order));
    if (demand == NULL || inrange == NULL || order == NULL) {
        free(demand);
        free(inrange);
        free(order);
        return oom(x);
    }
    for (long d = 0; d < x->ndays; d++) {
        long long ds = (x->day0 + d) * DAY_MS;
        for (long b = 0; b < x->nb; b++) {
            long long t = ds + b * x->bs_ms;
            inrange[d * x->nb + b] = t + x->bs_ms > r->since_ms && t < r->until_ms;
        }
    }
    /* activity per user, then everyone's demand */
    long maxd = 0;
    for (size_t i = 0; i < x->nud; i++)
        for (long b = 0; b < x->nb; b++)
            if (active(&x->ud[i], b)) {
                x->users.u[x->ud[i].user].active++;
                long v = ++demand[x->ud[i].day * x->nb + b];
                if (v > maxd)
                    maxd = v;
            }
    for (size_t i = 0; i < x->users.nu; i++)
        order[i] = &x->users.u[i];
    qsort(order, x->users.nu, sizeof(*order), cmp_rank);
    long seen = 0;
    for (size_t i = 0; i < x->users.nu; i++) {
        order[i]->rank = (long)i;
        if (order[i]->active > 0)
            seen++;
    }
    r->users_seen = seen;
    long *hist = calloc((size_t)maxd + 2, sizeof(long));
    if (hist == NULL) {
        free(demand);
        free(inrange);
        free(order);
        return oom(x);
    }
    for (long b = 0; b < nbk; b++)
        if (inrange[b])
            hist[demand[b]]++;
    long allowed = (long)floor(r->budget * (double)r->nbuckets + 1e-9);
    long F = maxd, above = 0;
#define LOWER()                                                                                    \
    while (F > 0 && above + hist[F] <= allowed) {                                                  \
        above += hist[F];                                                                          \
        F--;                                                                                       \
    }
    LOWER();
    /* each user's days, in rank order */
    qsort(x->ud, x->nud, sizeof(*x->ud), cmp_ud_user);
    size_t *first = calloc(x->users.nu + 1, sizeof(size_t));
    if (first == NULL) {
        free(hist);
        free(demand);
        free(inrange);
        free(order);
        return oom(x);
    }
    for (size_t i = x->nud; i > 0; i--)
        first[x->ud[i - 1].user] = i; /* 1-based index of the user's first entry */
    double best = -1;
    long best_k = 0, best_f = 0, best_above = 0;
    for (long k = 0; k <= seen; k++) {
        double cost = (double)k * r->price_named + (double)F * r->price_floating;
        if (best < 0 || cost < best - 1e-9 ||
            (fabs(cost - best) < 1e-9 && k + F < best_k + best_f)) {
            best = cost;
            best_k = k;
            best_f = F;
            best_above = above;
        }
        if (k == seen)
            break;
        /* user of rank k takes a named seat: out of the floating demand */
        long u = (long)(order[k] - x->users.u);
        for (size_t i = first[u]; i > 0 && i - 1 < x->nud && x->ud[i - 1].user == u; i++) {
            uday_t *e = &x->ud[i - 1];
            for (long b = 0; b < x->nb; b++) {
                long g = e->day * x->nb + b;
                if (!active(e, b) || !inrange[g])
                    continue;
                long v = demand[g]--;
                hist[v]--;
                hist[v - 1]++;
                if (v == F + 1)
                    above--;
            }
        }
        LOWER();
    }
#undef LOWER
    r->rec_named = best_k;
    r->rec_floating = best_f;
    r->rec_denied_share = r->nbuckets ? (double)best_above / (double)r->nbuckets : 0;
    r->cost_rec = best;
    r->cost_now = (double)r->named * r->price_named + (double)r->floating * r->price_floating;
    free(first);
    free(hist);
    free(demand);
    free(inrange);
    free(order);
    return SG_OK;
}

/* ---- the report of one pool ---------------------------------------------------- */

void sg_report_free(sg_report *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->nmux; i++) {
        for (long k = 0; r->mux[i].humans && k < r->mux[i].nhumans; k++)
            free(r->mux[i].humans[k]);
        free(r->mux[i].humans);
    }
    free(r->mux);
    free(r->days);
    free(r->reasons);
    free(r->idle);
    memset(r, 0, sizeof(*r));
}

int sg_report_pool(sg_conn *c, const char *pool, const sg_report_query *q, sg_report *out,
                   char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    sg_pool_info pi;
    int rc = sg_pool_get(c, pool, &pi, err, errlen);
    if (rc != SG_OK)
        return rc;
    long long now = sg_pool_now_ms(c, pool);
    if (now < 0)
        return seterr(err, errlen, SG_EBACKEND, "redis: TIME failed");
    long long until = q->until_ms > 0 && q->until_ms < now ? q->until_ms : now;
    long long since = q->since_ms > 0 ? q->since_ms : until - 30 * DAY_MS;
    if (since >= until)
        return seterr(err, errlen, SG_EINPUT, "--since must be before --until (and now)");
    if (until - since > 3700 * DAY_MS)
        return seterr(err, errlen, SG_EINPUT, "the range is longer than ten years");
    if (q->budget < 0 || q->budget >= 1 || q->price_named < 0 || q->price_floating < 0)
        return seterr(err, errlen, SG_EINPUT, "prices must be >= 0 and the budget under 100%%");
    snprintf(out->pool, sizeof(out->pool), "%s", pool);
    out->since_ms = since;
    out->until_ms = until;
    out->now_ms = now;
    out->bucket_s = pi.usage_bucket_s > 0 ? pi.usage_bucket_s : 300;
    out->named = pi.named;
    out->floating = pi.floating;
    out->overdraft_pct = pi.overdraft_pct;
    out->assigned = pi.assigned;
    out->mux_limit = pi.mux_limit;
    out->price_named = q->price_named;
    out->price_floating = q->price_floating;
    out->budget = q->budget;

    ctx_t x = {.c = c, .pool = pool, .out = out, .err = err, .errlen = errlen};
    x.bs_ms = out->bucket_s * 1000LL;
    x.nb = (long)(DAY_MS / x.bs_ms);
    x.day0 = since / DAY_MS;
    x.ndays = (long)((until - 1) / DAY_MS - x.day0 + 1);
    /* the buckets the range touches (days start on a bucket boundary): a
     * range that starts or ends inside a bucket counts it, as the figures
     * that read the buckets do */
    out->nbuckets = (long)((until + x.bs_ms - 1) / x.bs_ms - since / x.bs_ms);
    out->ndays = (size_t)x.ndays;
    out->days = calloc(out->ndays, sizeof(*out->days));
    if (out->days == NULL)
        return seterr(err, errlen, SG_EBACKEND, "out of memory");
    for (long d = 0; d < x.ndays; d++)
        out->days[d].day_ms = (x.day0 + d) * DAY_MS;

    rc = read_named(&x);
    if (rc == SG_OK)
        rc = read_open_sessions(&x, now, since, until);
    for (long d = 0; d < x.ndays && rc == SG_OK; d++) {
        long long ds = (x.day0 + d) * DAY_MS;
        long b_lo = ds < since ? (long)((since - ds) / x.bs_ms) : 0;
        long long end = until < ds + DAY_MS ? until : ds + DAY_MS;
        long b_hi = (long)((end - ds + x.bs_ms - 1) / x.bs_ms);
        long long bs_rec;
        rc = read_counters(&x, d, b_lo, b_hi, &bs_rec);
        if (rc == SG_OK)
            rc = read_activity(&x, d, b_lo, b_hi);
    }
    if (rc == SG_OK)
        rc = read_mux(&x);
    long *demand = rc == SG_OK ? calloc((size_t)(x.ndays * x.nb), sizeof(long)) : NULL;
    if (rc == SG_OK && demand == NULL)
        rc = oom(&x);
    if (rc == SG_OK)
        rc = analyse_days(&x, demand);
    free(demand);
    if (rc == SG_OK)
        rc = recommend(&x);
    if (rc == SG_OK && out->nreasons > 1)
        qsort(out->reasons, out->nreasons, sizeof(*out->reasons), cmp_reason);
    /* named seats nobody used for 30 days (or ever) up to the range's end */
    for (size_t i = 0; i < x.users.nu && rc == SG_OK; i++) {
        user_t *u = &x.users.u[i];
        if (!u->named_now || u->lastused > until - 30 * DAY_MS)
            continue;
        sg_report_idle *v = realloc(out->idle, (out->nidle + 1) * sizeof(*v));
        if (v == NULL) {
            rc = oom(&x);
            break;
        }
        out->idle = v;
        snprintf(v[out->nidle].user, sizeof(v[out->nidle].user), "%s", u->name);
        v[out->nidle++].lastused = u->lastused;
    }
    for (size_t i = 0; i < x.nud; i++)
    {
        free(x.ud[i].bits);
        free(x.ud[i].want);
    }
    free(x.ud);
    free(x.open);
    users_free(&x.users);
    if (rc != SG_OK)
        sg_report_free(out);
    return rc;
}
