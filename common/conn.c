/* Blocking Redis connection with timeouts (PAM, seatctl): TCP, unix socket,
 * Sentinel master discovery, AUTH (password or ACL user) and SELECT. */
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

struct sg_conn {
    redisContext *ctx;
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
        if (gai_cancel(&q->cb) == EAI_CANCELED) {
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
    if (deadline && redisSetTimeout(ctx, tv_of(t)) != REDIS_OK) {
        seterr(err, errlen, "redis: cannot set timeout");
        return -1;
    }
    return 0;
}

static sg_conn *open_impl(const sg_redis_url *u, int timeout_ms, long long deadline, char *err,
                          size_t errlen)
{
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
    if (u->password[0]) {
        if (rebound(ctx, deadline, timeout_ms, err, errlen) != 0) {
            redisFree(ctx);
            return NULL;
        }
        const char *av[3] = {"AUTH", u->user[0] ? u->user : u->password, u->password};
        if (run_simple(ctx, where, u->user[0] ? 3 : 2, av, err, errlen) != 0) {
            redisFree(ctx);
            return NULL;
        }
    }
    if (u->db) {
        char db[16];
        snprintf(db, sizeof(db), "%d", u->db);
        const char *av[2] = {"SELECT", db};
        if (rebound(ctx, deadline, timeout_ms, err, errlen) != 0) {
            redisFree(ctx);
            return NULL;
        }
        if (run_simple(ctx, where, 2, av, err, errlen) != 0) {
            redisFree(ctx);
            return NULL;
        }
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
    return c;
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

void sg_conn_close(sg_conn *c)
{
    if (c == NULL)
        return;
    if (c->ctx)
        redisFree(c->ctx);
    free(c);
}

struct redisContext *sg_conn_ctx(sg_conn *c)
{
    return c->ctx;
}

struct redisReply *sg_conn_cmd(sg_conn *c, int argc, const char **argv, const size_t *argvlen,
                               char *err, size_t errlen)
{
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
    if (c->ctx->err)
        return -1;
    return redisAppendCommandArgv(c->ctx, argc, argv, argvlen) == REDIS_OK ? 0 : -1;
}

struct redisReply *sg_conn_reply(sg_conn *c, char *err, size_t errlen)
{
    if (c->ctx->err) {
        seterr(err, errlen, "redis: %s", c->ctx->errstr);
        return NULL;
    }
    if (rebound(c->ctx, c->deadline, c->timeout_ms, err, errlen) != 0)
        return NULL;
    void *r = NULL;
    if (redisGetReply(c->ctx, &r) != REDIS_OK || r == NULL) {
        if (c->ctx->err == REDIS_ERR_IO && strstr(c->ctx->errstr, "temporarily unavailable"))
            seterr(err, errlen, "redis: no answer within %d ms", c->timeout_ms);
        else
            seterr(err, errlen, "redis: %s", c->ctx->errstr[0] ? c->ctx->errstr : "I/O error");
        return NULL;
    }
    return r;
}

int sg_conn_timeout_ms(const sg_conn *c)
{
    return c->timeout_ms;
}
