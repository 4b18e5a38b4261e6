/* Blocking Redis connection with timeouts (PAM, seatctl): TCP, unix socket,
 * Sentinel master discovery, Redis Cluster (slot map, MOVED, ASK), AUTH
 * (password or ACL user) and SELECT. */
#include "seatgate.h"
#include "internal.h"

#include <arpa/inet.h>
#include <hiredis/hiredis.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#define CLUSTER_SLOTS 16384
#define CLUSTER_NODES 64
#define CLUSTER_REDIRECTS 5

typedef struct {
    char host[256];
    int port;
    redisContext *ctx; /* NULL until used */
} cnode;

/* a command of a cluster pipeline: sent and answered when appended (each
 * one with its redirections followed, so replies never cross between nodes
 * or commands), its reply kept until the caller reads it in order */
typedef struct {
    redisReply *reply;
    char err[SG_ERR_MAX];
} qentry;

typedef struct {
    sg_redis_url url;
    cnode nodes[CLUSTER_NODES];
    int nnodes;
    short slots[CLUSTER_SLOTS]; /* node index, -1 unknown */
    int mapped;                 /* the slot map was read */
    qentry *q;
    size_t qhead, qn, qcap;
} cluster_t;

struct sg_conn {
    redisContext *ctx;  /* one server (NULL for a cluster) */
    cluster_t *cl;      /* a Redis Cluster */
    sg_redis_url *sentinel_url; /* Sentinel: to find the master again */
    int timeout_ms;
    long long deadline; /* monotonic ms; 0 = each command gets timeout_ms */
};

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* What is left of the budget (at least 1 ms so hiredis gets a real timeout). */
static int left_ms(long long deadline, int timeout_ms)
{
    if (deadline == 0)
        return timeout_ms;
    long long l = deadline - mono_ms();
    return l < 1 ? 0 : (int)(l > timeout_ms ? timeout_ms : l);
}

#define seterr(err, errlen, ...) ((void)sg_err_rc(err, errlen, -1, __VA_ARGS__))

static struct timeval tv_of(int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    return tv;
}

/*
 * Name resolution within the budget. getaddrinfo() has no timeout (a silent
 * resolver holds it for resolv.conf's timeout x attempts x servers, 20 s and
 * more), so a name goes to glibc's getaddrinfo_a() and is waited for with
 * gai_suspend() no longer than what is left. A request still running at the
 * deadline is cancelled; if the resolver thread cannot let go of it, its few
 * hundred bytes are left to that thread (freeing them would be a
 * use-after-free), which happens only when the resolver stalls.
 * A numeric address needs no resolver and is used as it is.
 */
typedef struct {
    struct gaicb cb;
    struct addrinfo hints;
    char name[256];
    char service[8];
} lookup_t;

static int resolve(const char *host, int port, long long deadline, struct addrinfo **out,
                   char *err, size_t errlen)
{
    lookup_t *q = calloc(1, sizeof(*q));
    if (q == NULL)
        return seterr(err, errlen, "redis %s:%d: out of memory", host, port), -1;
    snprintf(q->name, sizeof(q->name), "%s", host);
    snprintf(q->service, sizeof(q->service), "%d", port);
    q->hints.ai_family = AF_UNSPEC;
    q->hints.ai_socktype = SOCK_STREAM;
    q->cb.ar_name = q->name;
    q->cb.ar_service = q->service;
    q->cb.ar_request = &q->hints;
    struct gaicb *list[1] = {&q->cb};
    struct sigevent sev = {.sigev_notify = SIGEV_NONE};
    int rc = getaddrinfo_a(GAI_NOWAIT, list, 1, &sev);
    if (rc != 0) {
        free(q);
        return seterr(err, errlen, "redis %s:%d: cannot resolve: %s", host, port,
                      gai_strerror(rc)), -1;
    }
    for (;;) {
        rc = gai_error(&q->cb);
        if (rc != EAI_INPROGRESS)
            break;
        long long left = deadline - mono_ms();
        if (left <= 0)
            break;
        struct timespec ts = {left / 1000, (left % 1000) * 1000000};
        const struct gaicb *wait[1] = {&q->cb};
        gai_suspend(wait, 1, &ts); /* EAI_AGAIN (timeout), EAI_INTR: look again */
    }
    if (rc == EAI_INPROGRESS) {
        int cr = gai_cancel(&q->cb);
        if (cr == EAI_ALLDONE && gai_error(&q->cb) == 0 && q->cb.ar_result)
            freeaddrinfo(q->cb.ar_result); /* it finished meanwhile: too late */
        if (cr == EAI_CANCELED || cr == EAI_ALLDONE) {
            free(q);
        } /* else EAI_NOTCANCELED: the resolver thread still owns q */
        return seterr(err, errlen, "redis %s:%d: name resolution took longer than the timeout",
                      host, port), -1;
    }
    if (rc != 0) {
        free(q);
        return seterr(err, errlen, "redis %s:%d: cannot resolve: %s", host, port,
                      gai_strerror(rc)), -1;
    }
    *out = q->cb.ar_result;
    free(q);
    return 0;
}

/* Connects to host:port within timeout_ms, resolution included: each
 * address in turn with what is left of the time. */
static redisContext *dial_tcp(const char *host, int port, int timeout_ms, char *err,
                              size_t errlen)
{
    long long deadline = mono_ms() + timeout_ms;
    unsigned char bin[sizeof(struct in6_addr)];
    redisContext *ctx = NULL;
    if (inet_pton(AF_INET, host, bin) == 1 || inet_pton(AF_INET6, host, bin) == 1) {
        ctx = redisConnectWithTimeout(host, port, tv_of(timeout_ms));
    } else {
        struct addrinfo *ai = NULL;
        if (resolve(host, port, deadline, &ai, err, errlen) != 0)
            return NULL;
        for (struct addrinfo *a = ai; a; a = a->ai_next) {
            char num[INET6_ADDRSTRLEN];
            long long left = deadline - mono_ms();
            if (left <= 0)
                break;
            if (getnameinfo(a->ai_addr, a->ai_addrlen, num, sizeof(num), NULL, 0,
                            NI_NUMERICHOST) != 0)
                continue;
            if (ctx)
                redisFree(ctx);
            ctx = redisConnectWithTimeout(num, port, tv_of((int)left));
            if (ctx && !ctx->err)
                break;
        }
        freeaddrinfo(ai);
        if (ctx == NULL && mono_ms() >= deadline) {
            seterr(err, errlen, "redis %s:%d: timed out after %d ms", host, port, timeout_ms);
            return NULL;
        }
    }
    if (ctx == NULL) {
        seterr(err, errlen, "redis %s:%d: out of memory", host, port);
        return NULL;
    }
    if (ctx->err) {
        seterr(err, errlen, "redis %s:%d: %s", host, port, ctx->errstr);
        redisFree(ctx);
        return NULL;
    }
    if (redisSetTimeout(ctx, tv_of(timeout_ms)) != REDIS_OK) {
        seterr(err, errlen, "redis %s:%d: cannot set timeout", host, port);
        redisFree(ctx);
        return NULL;
    }
    return ctx;
}

static int run_simple(redisContext *ctx, const char *where, int argc, const char **argv,
                      char *err, size_t errlen)
{
    redisReply *r = redisCommandArgv(ctx, argc, argv, NULL);
    if (r == NULL) {
        seterr(err, errlen, "redis %s: %s", where, ctx->errstr[0] ? ctx->errstr : "no reply");
        return -1;
    }
    int rc = 0;
    if (r->type == REDIS_REPLY_ERROR) {
        seterr(err, errlen, "redis %s: %s %s", where, argv[0], r->str);
        rc = -1;
    }
    freeReplyObject(r);
    return rc;
}

/* Ask each sentinel in turn for the master's address. */
static int sentinel_master(const sg_redis_url *u, int timeout_ms, long long deadline, char *host,
                           size_t hostlen, int *port, char *err, size_t errlen)
{
    char last[SG_ERR_MAX] = "no sentinel answered";
    for (int i = 0; i < u->nsentinels; i++) {
        int t = left_ms(deadline, timeout_ms);
        if (t == 0) {
            snprintf(last, sizeof(last), "timed out asking the sentinels");
            break;
        }
        redisContext *s = dial_tcp(u->sentinels[i].host, u->sentinels[i].port, t, last, sizeof(last));
        if (s == NULL)
            continue;
        redisReply *r =
            redisCommand(s, "SENTINEL get-master-addr-by-name %s", u->master);
        if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
            r->element[0]->type == REDIS_REPLY_STRING &&
            r->element[1]->type == REDIS_REPLY_STRING) {
            snprintf(host, hostlen, "%s", r->element[0]->str);
            long p;
            int ok = sg_parse_long(r->element[1]->str, 1, 65535, &p) == 0;
            freeReplyObject(r);
            redisFree(s);
            if (ok) {
                *port = (int)p;
                return 0;
            }
            snprintf(last, sizeof(last), "sentinel gave a bad port");
            continue;
        }
        if (r && r->type == REDIS_REPLY_ERROR)
            snprintf(last, sizeof(last), "sentinel %s:%d: %s", u->sentinels[i].host,
                     u->sentinels[i].port, r->str);
        else if (r)
            snprintf(last, sizeof(last), "sentinel %s:%d does not know master '%s'",
                     u->sentinels[i].host, u->sentinels[i].port, u->master);
        else
            snprintf(last, sizeof(last), "sentinel %s:%d: %s", u->sentinels[i].host,
                     u->sentinels[i].port, s->errstr);
        if (r)
            freeReplyObject(r);
        redisFree(s);
    }
    seterr(err, errlen, "%s", last);
    return -1;
}

static int rebound(redisContext *ctx, long long deadline, int timeout_ms, char *err, size_t errlen)
{
    int t = left_ms(deadline, timeout_ms);
    if (t == 0) {
        seterr(err, errlen, "redis: timed out after %d ms", timeout_ms);
        return -1;
    }
    /* always: a step bounded by a deadline may have shortened it before */
    if (redisSetTimeout(ctx, tv_of(t)) != REDIS_OK) {
        seterr(err, errlen, "redis: cannot set timeout");
        return -1;
    }
    return 0;
}

/* AUTH and SELECT of a fresh connection */
static int handshake(redisContext *ctx, const sg_redis_url *u, const char *where, long long deadline,
                     int timeout_ms, char *err, size_t errlen)
{
    if (u->password[0]) {
        if (rebound(ctx, deadline, timeout_ms, err, errlen) != 0)
            return -1;
        const char *av[3] = {"AUTH", u->user[0] ? u->user : u->password, u->password};
        if (run_simple(ctx, where, u->user[0] ? 3 : 2, av, err, errlen) != 0)
            return -1;
    }
    if (u->db) {
        char db[16];
        snprintf(db, sizeof(db), "%d", u->db);
        const char *av[2] = {"SELECT", db};
        if (rebound(ctx, deadline, timeout_ms, err, errlen) != 0)
            return -1;
        if (run_simple(ctx, where, 2, av, err, errlen) != 0)
            return -1;
    }
    return 0;
}

static sg_conn *cluster_open(const sg_redis_url *u, int timeout_ms, long long deadline, char *err,
                             size_t errlen);

static sg_conn *open_impl(const sg_redis_url *u, int timeout_ms, long long deadline, char *err,
                          size_t errlen)
{
    if (u->kind == SG_URL_CLUSTER)
        return cluster_open(u, timeout_ms, deadline, err, errlen);
    redisContext *ctx = NULL;
    char where[300];
    if (u->kind == SG_URL_UNIX) {
        snprintf(where, sizeof(where), "%s", u->path);
        ctx = redisConnectUnixWithTimeout(u->path, tv_of(left_ms(deadline, timeout_ms)));
        if (ctx == NULL || ctx->err) {
            seterr(err, errlen, "redis %s: %s", u->path, ctx ? ctx->errstr : "out of memory");
            if (ctx)
                redisFree(ctx);
            return NULL;
        }
        if (redisSetTimeout(ctx, tv_of(timeout_ms)) != REDIS_OK) {
            seterr(err, errlen, "redis %s: cannot set timeout", u->path);
            redisFree(ctx);
            return NULL;
        }
    } else {
        char host[256];
        int port;
        if (u->kind == SG_URL_SENTINEL) {
            if (sentinel_master(u, timeout_ms, deadline, host, sizeof(host), &port, err, errlen) !=
                0)
                return NULL;
        } else {
            snprintf(host, sizeof(host), "%s", u->host);
            port = u->port;
        }
        snprintf(where, sizeof(where), "%s:%d", host, port);
        int t = left_ms(deadline, timeout_ms);
        if (t == 0) {
            seterr(err, errlen, "redis %s: timed out after %d ms", where, timeout_ms);
            return NULL;
        }
        ctx = dial_tcp(host, port, t, err, errlen);
        if (ctx == NULL)
            return NULL;
    }
    if (handshake(ctx, u, where, deadline, timeout_ms, err, errlen) != 0) {
        redisFree(ctx);
        return NULL;
    }
    if (u->kind == SG_URL_SENTINEL) {
        /* make sure the sentinel's answer is really a master (failover in progress) */
        if (rebound(ctx, deadline, timeout_ms, err, errlen) != 0) {
            redisFree(ctx);
            return NULL;
        }
        redisReply *r = redisCommand(ctx, "ROLE");
        int ok = r && r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
                 r->element[0]->type == REDIS_REPLY_STRING &&
                 strcmp(r->element[0]->str, "master") == 0;
        if (r)
            freeReplyObject(r);
        if (!ok) {
            seterr(err, errlen, "redis %s: sentinel named it master of '%s' but it is not", where,
                   u->master);
            redisFree(ctx);
            return NULL;
        }
    }
    sg_conn *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        seterr(err, errlen, "out of memory");
        redisFree(ctx);
        return NULL;
    }
    c->ctx = ctx;
    c->timeout_ms = timeout_ms;
    c->deadline = deadline;
    if (u->kind == SG_URL_SENTINEL) {
        c->sentinel_url = malloc(sizeof(*u));
        if (c->sentinel_url)
            *c->sentinel_url = *u;
    }
    return c;
}

int sg_conn_has_budget(const sg_conn *c)
{
    return c->deadline != 0;
}

int sg_conn_reconnect(sg_conn *c, char *err, size_t errlen)
{
    if (c->sentinel_url == NULL) {
        seterr(err, errlen, "redis: not a Sentinel connection");
        return -1;
    }
    int t = left_ms(c->deadline, c->timeout_ms);
    if (t == 0) {
        seterr(err, errlen, "redis: timed out after %d ms", c->timeout_ms);
        return -1;
    }
    sg_conn *n = open_impl(c->sentinel_url, t, c->deadline ? c->deadline : mono_ms() + t, err,
                           errlen);
    if (n == NULL)
        return -1;
    redisFree(c->ctx);
    c->ctx = n->ctx;
    n->ctx = NULL;
    sg_conn_close(n);
    return 0;
}

sg_conn *sg_conn_open(const sg_redis_url *u, int timeout_ms, char *err, size_t errlen)
{
    if (timeout_ms <= 0)
        timeout_ms = SG_DEFAULT_TIMEOUT_MS;
    return open_impl(u, timeout_ms, 0, err, errlen);
}

sg_conn *sg_conn_open_bounded(const sg_redis_url *u, int budget_ms, char *err, size_t errlen)
{
    if (budget_ms <= 0)
        budget_ms = SG_DEFAULT_TIMEOUT_MS;
    return open_impl(u, budget_ms, mono_ms() + budget_ms, err, errlen);
}

void sg_conn_set_budget(sg_conn *c, int budget_ms)
{
    if (budget_ms <= 0)
        budget_ms = 1;
    c->timeout_ms = budget_ms;
    c->deadline = mono_ms() + budget_ms;
}

static void qentry_free(qentry *e)
{
    if (e->reply)
        freeReplyObject(e->reply);
    memset(e, 0, sizeof(*e));
}

void sg_conn_close(sg_conn *c)
{
    if (c == NULL)
        return;
    if (c->ctx)
        redisFree(c->ctx);
    free(c->sentinel_url);
    if (c->cl) {
        for (int i = 0; i < c->cl->nnodes; i++)
            if (c->cl->nodes[i].ctx)
                redisFree(c->cl->nodes[i].ctx);
        for (size_t i = 0; i < c->cl->qn; i++)
            qentry_free(&c->cl->q[(c->cl->qhead + i) % c->cl->qcap]);
        free(c->cl->q);
        free(c->cl);
    }
    free(c);
}

struct redisContext *sg_conn_ctx(sg_conn *c)
{
    return c->ctx;
}

static struct redisReply *cluster_cmd(sg_conn *c, int argc, const char **argv,
                                      const size_t *argvlen, char *err, size_t errlen);
static int cluster_append(sg_conn *c, int argc, const char **argv, const size_t *argvlen);
static struct redisReply *cluster_reply(sg_conn *c, char *err, size_t errlen);

struct redisReply *sg_conn_cmd(sg_conn *c, int argc, const char **argv, const size_t *argvlen,
                               char *err, size_t errlen)
{
    if (c->cl)
        return cluster_cmd(c, argc, argv, argvlen, err, errlen);
    if (c->ctx->err) {
        seterr(err, errlen, "redis: %s", c->ctx->errstr);
        return NULL;
    }
    if (rebound(c->ctx, c->deadline, c->timeout_ms, err, errlen) != 0)
        return NULL;
    redisReply *r = redisCommandArgv(c->ctx, argc, argv, argvlen);
    if (r == NULL && c->ctx->err == REDIS_ERR_IO &&
        strstr(c->ctx->errstr, "temporarily unavailable") != NULL)
        seterr(err, errlen, "redis: no answer within %d ms", c->timeout_ms);
    else if (r == NULL)
        seterr(err, errlen, "redis: %s",
               c->ctx->err == REDIS_ERR_IO && c->ctx->errstr[0] == '\0' ? "I/O error"
                                                                         : c->ctx->errstr);
    return r;
}

/* ---- pipelining -------------------------------------------------------------
 * Queue commands with sg_conn_append, then read one reply per command with
 * sg_conn_reply, in order. Reads share the connection's deadline. */
int sg_conn_append(sg_conn *c, int argc, const char **argv, const size_t *argvlen)
{
    if (c->cl)
        return cluster_append(c, argc, argv, argvlen);
    if (c->ctx->err)
        return -1;
    return redisAppendCommandArgv(c->ctx, argc, argv, argvlen) == REDIS_OK ? 0 : -1;
}

static redisReply *get_reply(sg_conn *c, redisContext *ctx, char *err, size_t errlen);

struct redisReply *sg_conn_reply(sg_conn *c, char *err, size_t errlen)
{
    if (c->cl)
        return cluster_reply(c, err, errlen);
    if (c->ctx->err) {
        seterr(err, errlen, "redis: %s", c->ctx->errstr);
        return NULL;
    }
    return get_reply(c, c->ctx, err, errlen);
}

int sg_conn_timeout_ms(const sg_conn *c)
{
    return c->timeout_ms;
}

/* ---- Redis Cluster ------------------------------------------------------------
 * The seed nodes of the URL give the slot map (CLUSTER SLOTS); each command
 * goes to the master of its key's slot (hash tags: every key of a pool is
 * one slot), on a connection per master opened when first needed, within
 * the connection's budget. A MOVED reply moves the slot in the map (and the
 * map is read again on the next command), an ASK reply sends ASKING and the
 * command once to the node it names; TRYAGAIN (a slot half migrated) waits
 * a little and asks again. Pipelines keep one queue of where each command
 * went, so replies are read in order across the nodes. */

/* CRC16-CCITT (XMODEM), the cluster's key hash: polynomial 0x1021, init 0 */
static unsigned crc16(const char *buf, size_t len)
{
    unsigned crc = 0;
    for (size_t i = 0; i < len; i++) {
        crc ^= (unsigned)(unsigned char)buf[i] << 8;
        for (int b = 0; b < 8; b++)
            crc = (crc & 0x8000) ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
    }
    return crc;
}

int sg_key_slot(const char *key, size_t len)
{
    const char *open = memchr(key, '{', len);
    if (open) {
        const char *close = memchr(open + 1, '}', len - (size_t)(open + 1 - key));
        if (close && close > open + 1)
            return (int)(crc16(open + 1, (size_t)(close - open - 1)) & (CLUSTER_SLOTS - 1));
    }
    return (int)(crc16(key, len) & (CLUSTER_SLOTS - 1));
}

int sg_pool_slot(const char *pool)
{
    return (int)(crc16(pool, strlen(pool)) & (CLUSTER_SLOTS - 1));
}

static size_t arglen(const char **argv, const size_t *argvlen, int i)
{
    return argvlen ? argvlen[i] : strlen(argv[i]);
}

static int arg_is(const char **argv, const size_t *argvlen, int i, const char *name)
{
    size_t n = strlen(name);
    return arglen(argv, argvlen, i) == n && strncasecmp(argv[i], name, n) == 0;
}

/* the slot of a command's first key, -1 for a command without keys */
int sg_cmd_slot(int argc, const char **argv, const size_t *argvlen)
{
    static const char *const keyless[] = {"TIME", "PING", "INFO", "SCAN", "ROLE", "CLUSTER",
                                          "AUTH", "SELECT", "SCRIPT", "FUNCTION", "CONFIG",
                                          "DBSIZE", "ASKING", "PUBLISH", "ACL", "HELLO"};
    if (argc < 1)
        return -1;
    for (size_t i = 0; i < sizeof(keyless) / sizeof(keyless[0]); i++)
        if (arg_is(argv, argvlen, 0, keyless[i]))
            return -1;
    if (arg_is(argv, argvlen, 0, "EVAL") || arg_is(argv, argvlen, 0, "EVALSHA") ||
        arg_is(argv, argvlen, 0, "FCALL")) {
        if (argc < 4 || arglen(argv, argvlen, 2) == 0 || argv[2][0] == '0')
            return -1;
        return sg_key_slot(argv[3], arglen(argv, argvlen, 3));
    }
    if (arg_is(argv, argvlen, 0, "XREAD")) { /* XREAD [COUNT n] [BLOCK ms] STREAMS key... */
        for (int i = 1; i + 1 < argc; i++)
            if (arg_is(argv, argvlen, i, "STREAMS"))
                return sg_key_slot(argv[i + 1], arglen(argv, argvlen, i + 1));
        return -1;
    }
    return argc > 1 ? sg_key_slot(argv[1], arglen(argv, argvlen, 1)) : -1;
}

static int node_index(cluster_t *cl, const char *host, int port)
{
    for (int i = 0; i < cl->nnodes; i++)
        if (cl->nodes[i].port == port && strcmp(cl->nodes[i].host, host) == 0)
            return i;
    if (cl->nnodes == CLUSTER_NODES)
        return -1;
    cnode *n = &cl->nodes[cl->nnodes];
    memset(n, 0, sizeof(*n));
    snprintf(n->host, sizeof(n->host), "%s", host);
    n->port = port;
    return cl->nnodes++;
}

/* the node's connection, opened (and authenticated) within the budget */
static redisContext *node_ctx(sg_conn *c, int i, char *err, size_t errlen)
{
    cnode *n = &c->cl->nodes[i];
    if (n->ctx && n->ctx->err) {
        redisFree(n->ctx);
        n->ctx = NULL;
    }
    if (n->ctx)
        return n->ctx;
    int t = left_ms(c->deadline, c->timeout_ms);
    if (t == 0) {
        seterr(err, errlen, "redis %s:%d: timed out after %d ms", n->host, n->port, c->timeout_ms);
        return NULL;
    }
    redisContext *ctx = dial_tcp(n->host, n->port, t, err, errlen);
    if (ctx == NULL)
        return NULL;
    char where[300];
    snprintf(where, sizeof(where), "%s:%d", n->host, n->port);
    if (handshake(ctx, &c->cl->url, where, c->deadline, c->timeout_ms, err, errlen) != 0) {
        redisFree(ctx);
        return NULL;
    }
    n->ctx = ctx;
    return ctx;
}

int sg_cluster_redirect(const char *msg, int *ask, int *slot, char *host, size_t hostlen,
                        int *port)
{
    if (msg == NULL)
        return -1;
    if (strncmp(msg, "ASK ", 4) == 0)
        *ask = 1;
    else if (strncmp(msg, "MOVED ", 6) == 0)
        *ask = 0;
    else
        return -1;
    const char *sp = strchr(msg, ' ');
    char *end;
    long sl = strtol(sp + 1, &end, 10), pt;
    if (end == sp + 1 || *end != ' ' || sl < 0 || sl >= CLUSTER_SLOTS)
        return -1;
    const char *addr = end + 1, *colon = strrchr(addr, ':');
    if (colon == NULL || colon == addr || (size_t)(colon - addr) >= hostlen)
        return -1; /* an empty host: a node that does not know its own address */
    if (sg_parse_long(colon + 1, 1, 65535, &pt) != 0)
        return -1;
    snprintf(host, hostlen, "%.*s", (int)(colon - addr), addr);
    *slot = (int)sl;
    *port = (int)pt;
    return 0;
}

int sg_cluster_slots_each(const redisReply *r, sg_slots_fn fn, void *ud)
{
    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements == 0)
        return -1;
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *e = r->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements < 3 ||
            e->element[0]->type != REDIS_REPLY_INTEGER ||
            e->element[1]->type != REDIS_REPLY_INTEGER ||
            e->element[2]->type != REDIS_REPLY_ARRAY || e->element[2]->elements < 2)
            continue;
        const redisReply *m = e->element[2];
        if (m->element[0]->type != REDIS_REPLY_STRING ||
            m->element[1]->type != REDIS_REPLY_INTEGER || m->element[1]->integer < 1 ||
            m->element[1]->integer > 65535)
            continue;
        long long lo = e->element[0]->integer, hi = e->element[1]->integer;
        if (lo < 0)
            lo = 0;
        if (hi >= CLUSTER_SLOTS)
            hi = CLUSTER_SLOTS - 1;
        if (lo > hi)
            continue;
        fn(ud, (int)lo, (int)hi, m->element[0]->str, m->element[0]->len,
           (int)m->element[1]->integer);
    }
    return 0;
}

/* "MOVED 3999 127.0.0.1:6381" / "ASK ...": slot and node, or -1 */
static int parse_redirect(cluster_t *cl, const char *msg, int *slot, int *node)
{
    char host[256];
    int ask, port;
    if (sg_cluster_redirect(msg, &ask, slot, host, sizeof(host), &port) != 0)
        return -1;
    *node = node_index(cl, host, port);
    return *node < 0 ? -1 : 0;
}

struct slots_into {
    cluster_t *cl;
    const char *asked; /* the node that answered: an empty address is it */
};

static void slots_into(void *ud, int lo, int hi, const char *host, size_t hostlen, int port)
{
    struct slots_into *si = ud;
    char h[256];
    snprintf(h, sizeof(h), "%.*s", (int)hostlen, host);
    int n = node_index(si->cl, hostlen ? h : si->asked, port);
    for (int s2 = lo; n >= 0 && s2 <= hi; s2++)
        si->cl->slots[s2] = (short)n;
}

/* Read the slot map from any node that answers (the known nodes, then the
 * seeds). */
static int refresh_slots(sg_conn *c, char *err, size_t errlen)
{
    cluster_t *cl = c->cl;
    char last[SG_ERR_MAX] = "no cluster node answered";
    int tries = cl->nnodes;
    for (int k = 0; k < tries; k++) {
        redisContext *ctx = node_ctx(c, k, last, sizeof(last));
        if (ctx == NULL)
            continue;
        if (rebound(ctx, c->deadline, c->timeout_ms, last, sizeof(last)) != 0)
            break;
        redisReply *r = redisCommand(ctx, "CLUSTER SLOTS");
        if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements == 0) {
            snprintf(last, sizeof(last), "redis %s:%d: CLUSTER SLOTS: %s", cl->nodes[k].host,
                     cl->nodes[k].port,
                     r == NULL ? ctx->errstr : r->type == REDIS_REPLY_ERROR ? r->str : "no slots");
            if (r)
                freeReplyObject(r);
            continue;
        }
        for (int i = 0; i < CLUSTER_SLOTS; i++)
            cl->slots[i] = -1;
        char asked[256];
        snprintf(asked, sizeof(asked), "%s", cl->nodes[k].host);
        struct slots_into si = {cl, asked};
        sg_cluster_slots_each(r, slots_into, &si);
        freeReplyObject(r);
        cl->mapped = 1;
        return 0;
    }
    seterr(err, errlen, "%s", last);
    return -1;
}

/* One step within one timeout in all, also on a connection whose commands
 * each have their own (seatctl): a deadline is set for the step unless the
 * connection already runs under one (a login's budget). deadline_own()
 * says whether it set one; deadline_drop() takes it away again. */
static int deadline_own(sg_conn *c)
{
    if (c->deadline)
        return 0;
    c->deadline = mono_ms() + c->timeout_ms;
    return 1;
}

static void deadline_drop(sg_conn *c, int own)
{
    if (own)
        c->deadline = 0;
}

/* the map read within one timeout: every node asked shares it */
static int refresh_bounded(sg_conn *c, char *err, size_t errlen)
{
    int own = deadline_own(c);
    int rc = refresh_slots(c, err, errlen);
    deadline_drop(c, own);
    return rc;
}

static int route(sg_conn *c, int argc, const char **argv, const size_t *argvlen, char *err,
                 size_t errlen)
{
    cluster_t *cl = c->cl;
    if (!cl->mapped && refresh_bounded(c, err, errlen) != 0)
        return -1;
    int slot = sg_cmd_slot(argc, argv, argvlen);
    if (slot >= 0 && cl->slots[slot] >= 0)
        return cl->slots[slot];
    for (int i = 0; i < CLUSTER_SLOTS; i++) /* keyless (or unmapped): a master */
        if (cl->slots[i] >= 0)
            return cl->slots[i];
    return 0;
}

static redisReply *get_reply(sg_conn *c, redisContext *ctx, char *err, size_t errlen)
{
    if (rebound(ctx, c->deadline, c->timeout_ms, err, errlen) != 0)
        return NULL;
    void *r = NULL;
    if (redisGetReply(ctx, &r) != REDIS_OK || r == NULL) {
        if (ctx->err == REDIS_ERR_IO && strstr(ctx->errstr, "temporarily unavailable"))
            seterr(err, errlen, "redis: no answer within %d ms", c->timeout_ms);
        else
            seterr(err, errlen, "redis: %s", ctx->errstr[0] ? ctx->errstr : "I/O error");
        return NULL;
    }
    return r;
}

static int starts(const redisReply *r, const char *word)
{
    size_t n = strlen(word);
    return r->type == REDIS_REPLY_ERROR && r->len > n && strncmp(r->str, word, n) == 0 &&
           r->str[n] == ' ';
}

/* the reply r of a command sent to node, redirections followed: MOVED and
 * ASK a few hops; TRYAGAIN (the keys of a script are half migrated) is asked
 * again, ASKING kept, until the command's time is up */
static redisReply *follow(sg_conn *c, int node, int argc, const char **argv,
                          const size_t *argvlen, redisReply *r, char *err, size_t errlen)
{
    cluster_t *cl = c->cl;
    long long until = c->deadline ? c->deadline : mono_ms() + c->timeout_ms;
    int hops = 0, asking = 0;
    while (r) {
        int slot, to = node, ask = starts(r, "ASK");
        if (starts(r, "TRYAGAIN")) {
            if (mono_ms() + 10 >= until)
                return r;
            struct timespec ts = {0, 10 * 1000000};
            nanosleep(&ts, NULL);
            ask = asking; /* the same node, the same way */
        } else if (!(starts(r, "MOVED") || ask) || ++hops > CLUSTER_REDIRECTS ||
                   parse_redirect(cl, r->str, &slot, &to) != 0) {
            return r;
        } else if (!ask) {
            cl->slots[slot] = (short)to;
            cl->mapped = 0; /* read the whole map again before the next command */
        }
        freeReplyObject(r);
        r = NULL;
        redisContext *ctx = node_ctx(c, to, err, errlen);
        if (ctx == NULL)
            return NULL;
        if ((ask && redisAppendCommand(ctx, "ASKING") != REDIS_OK) ||
            redisAppendCommandArgv(ctx, argc, argv, argvlen) != REDIS_OK) {
            seterr(err, errlen, "redis: cannot queue a command");
            return NULL;
        }
        if (ask) {
            redisReply *ok = get_reply(c, ctx, err, errlen);
            if (ok == NULL)
                return NULL;
            freeReplyObject(ok);
        }
        node = to;
        asking = ask;
        r = get_reply(c, ctx, err, errlen);
    }
    return r;
}

static redisReply *cluster_exec_in(sg_conn *c, int argc, const char **argv,
                                   const size_t *argvlen, char *err, size_t errlen);

/* one command within one timeout in all (redirections, dials and the map
 * included), also for a connection whose commands each have their own
 * (seatctl) */
static redisReply *cluster_exec(sg_conn *c, int argc, const char **argv, const size_t *argvlen,
                                char *err, size_t errlen)
{
    int own = deadline_own(c);
    redisReply *r = cluster_exec_in(c, argc, argv, argvlen, err, errlen);
    deadline_drop(c, own);
    return r;
}

/* one command to the master of its slot, its redirections followed */
static redisReply *cluster_exec_in(sg_conn *c, int argc, const char **argv,
                                   const size_t *argvlen, char *err, size_t errlen)
{
    int n = route(c, argc, argv, argvlen, err, errlen);
    redisContext *ctx = n >= 0 ? node_ctx(c, n, err, errlen) : NULL;
    redisReply *r = NULL;
    if (ctx && redisAppendCommandArgv(ctx, argc, argv, argvlen) != REDIS_OK)
        seterr(err, errlen, "redis: cannot queue a command");
    else if (ctx)
        r = get_reply(c, ctx, err, errlen);
    if (r)
        r = follow(c, n, argc, argv, argvlen, r, err, errlen);
    if (r == NULL)
        c->cl->mapped = 0; /* a node failed: a failover may follow, read the map again */
    return r;
}

static int cluster_append(sg_conn *c, int argc, const char **argv, const size_t *argvlen)
{
    cluster_t *cl = c->cl;
    if (cl->qn == cl->qcap) {
        size_t cap = cl->qcap ? cl->qcap * 2 : 16;
        qentry *q = calloc(cap, sizeof(*q));
        if (q == NULL)
            return -1;
        for (size_t i = 0; i < cl->qn; i++)
            q[i] = cl->q[(cl->qhead + i) % cl->qcap];
        free(cl->q);
        cl->q = q;
        cl->qcap = cap;
        cl->qhead = 0;
    }
    qentry *e = &cl->q[(cl->qhead + cl->qn) % cl->qcap];
    memset(e, 0, sizeof(*e));
    e->reply = cluster_exec(c, argc, argv, argvlen, e->err, sizeof(e->err));
    cl->qn++;
    return 0;
}

static redisReply *cluster_reply(sg_conn *c, char *err, size_t errlen)
{
    cluster_t *cl = c->cl;
    if (cl->qn == 0) {
        seterr(err, errlen, "redis: no command waits for a reply");
        return NULL;
    }
    qentry *e = &cl->q[cl->qhead];
    redisReply *r = e->reply;
    e->reply = NULL;
    if (r == NULL)
        seterr(err, errlen, "%s", e->err);
    qentry_free(e);
    cl->qhead = (cl->qhead + 1) % cl->qcap;
    cl->qn--;
    return r;
}

static redisReply *cluster_cmd(sg_conn *c, int argc, const char **argv, const size_t *argvlen,
                               char *err, size_t errlen)
{
    if (c->cl->qn) {
        seterr(err, errlen, "redis: a command while a pipeline waits for replies");
        return NULL;
    }
    return cluster_exec(c, argc, argv, argvlen, err, errlen);
}

static sg_conn *cluster_open(const sg_redis_url *u, int timeout_ms, long long deadline, char *err,
                             size_t errlen)
{
    sg_conn *c = calloc(1, sizeof(*c));
    cluster_t *cl = calloc(1, sizeof(*cl));
    if (c == NULL || cl == NULL) {
        free(c);
        free(cl);
        seterr(err, errlen, "out of memory");
        return NULL;
    }
    c->cl = cl;
    c->timeout_ms = timeout_ms;
    c->deadline = deadline;
    cl->url = *u;
    for (int i = 0; i < CLUSTER_SLOTS; i++)
        cl->slots[i] = -1;
    for (int i = 0; i < u->nsentinels; i++)
        (void)node_index(cl, u->sentinels[i].host, u->sentinels[i].port);
    /* the map now: a cluster that cannot be reached fails here, as a
     * server would */
    long long until = deadline ? deadline : mono_ms() + timeout_ms;
    long long saved = c->deadline;
    c->deadline = until;
    int rc = refresh_slots(c, err, errlen);
    c->deadline = saved;
    if (rc != 0) {
        sg_conn_close(c);
        return NULL;
    }
    return c;
}

int sg_conn_masters(sg_conn *c, int **out, char *err, size_t errlen)
{
    *out = NULL;
    if (c->cl == NULL)
        return 0;
    if (!c->cl->mapped && refresh_bounded(c, err, errlen) != 0)
        return -1;
    int *v = calloc(CLUSTER_NODES, sizeof(int)), n = 0;
    if (v == NULL) {
        seterr(err, errlen, "out of memory");
        return -1;
    }
    for (int i = 0; i < CLUSTER_SLOTS; i++) {
        int k = c->cl->slots[i], seen = 0;
        for (int j = 0; k >= 0 && j < n; j++)
            seen |= v[j] == k;
        if (k >= 0 && !seen)
            v[n++] = k;
    }
    *out = v;
    return n;
}

static redisReply *cmd_node_in(sg_conn *c, int node, int argc, const char **argv, char *err,
                               size_t errlen)
{
    redisContext *ctx = node_ctx(c, node, err, errlen);
    if (ctx == NULL)
        return NULL;
    if (redisAppendCommandArgv(ctx, argc, argv, NULL) != REDIS_OK) {
        seterr(err, errlen, "redis: cannot queue a command");
        return NULL;
    }
    return get_reply(c, ctx, err, errlen);
}

/* one command to one node, dial included, within one timeout */
struct redisReply *sg_conn_cmd_node(sg_conn *c, int node, int argc, const char **argv,
                                    char *err, size_t errlen)
{
    int own = deadline_own(c);
    redisReply *r = cmd_node_in(c, node, argc, argv, err, errlen);
    deadline_drop(c, own);
    return r;
}
