/* Key schema, decision and release commands, reply parsing, script runner. */
#include "seatgate.h"

#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const key_suffix[SG_K_COUNT] = {
    "conf", "named", "leases", "sess", "sessidx", "sessinfo", "users", "audit", "lastused", "stats",
};

int sg_keyname(sg_key k, const char *pool, char *buf, size_t len)
{
    if ((int)k < 0 || k >= SG_K_COUNT)
        return -1;
    int n = snprintf(buf, len, "sg:{%s}:%s", pool, key_suffix[k]);
    return (n < 0 || (size_t)n >= len) ? -1 : 0;
}

int sg_key_mux(const char *pool, const char *sa, char *buf, size_t len)
{
    int n = snprintf(buf, len, "sg:{%s}:mux:%s", pool, sa ? sa : "");
    return (n < 0 || (size_t)n >= len) ? -1 : 0;
}

/* ---- command building ---------------------------------------------------- */

static void cmd_init(sg_cmd *cmd)
{
    cmd->argc = 0;
    cmd->used = 0;
}

static int cmd_arg(sg_cmd *cmd, const char *s, size_t n)
{
    if (cmd->argc >= SG_CMD_ARGS || cmd->used + n + 1 > sizeof(cmd->buf))
        return -1;
    char *dst = cmd->buf + cmd->used;
    memcpy(dst, s, n);
    dst[n] = '\0';
    cmd->argv[cmd->argc] = dst;
    cmd->argvlen[cmd->argc] = n;
    cmd->argc++;
    cmd->used += n + 1;
    return 0;
}

static int cmd_str(sg_cmd *cmd, const char *s)
{
    if (s == NULL)
        s = "";
    return cmd_arg(cmd, s, strlen(s));
}

/* Script bodies are not copied into the buffer. */
static int cmd_static(sg_cmd *cmd, const char *s)
{
    if (cmd->argc >= SG_CMD_ARGS)
        return -1;
    cmd->argv[cmd->argc] = s;
    cmd->argvlen[cmd->argc] = strlen(s);
    cmd->argc++;
    return 0;
}

static int cmd_long(sg_cmd *cmd, long v)
{
    char tmp[32];
    int n = snprintf(tmp, sizeof(tmp), "%ld", v);
    return cmd_arg(cmd, tmp, (size_t)n);
}

static int cmd_script(sg_cmd *cmd, sg_script s, int use_eval, int nkeys)
{
    cmd_init(cmd);
    if (use_eval) {
        if (cmd_static(cmd, "EVAL") || cmd_static(cmd, sg_script_body(s)))
            return -1;
    } else {
        if (cmd_static(cmd, "EVALSHA") || cmd_static(cmd, sg_script_sha(s)))
            return -1;
    }
    return cmd_long(cmd, nkeys);
}

/* The eleven keys shared by decide and release. */
static int cmd_pool_keys(sg_cmd *cmd, const char *pool, const char *sa)
{
    char k[SG_KEY_MAX];
    for (int i = 0; i < SG_K_COUNT; i++) {
        if (sg_keyname((sg_key)i, pool, k, sizeof(k)) || cmd_str(cmd, k))
            return -1;
    }
    if (sg_key_mux(pool, sa, k, sizeof(k)) || cmd_str(cmd, k))
        return -1;
    return 0;
}

static int empty(const char *s)
{
    return s == NULL || *s == '\0';
}

int sg_request_validate(const sg_request *rq, char *err, size_t errlen)
{
    char e[SG_ERR_MAX];
    if (sg_valid_name(rq->pool, e, sizeof(e)) != 0) {
        snprintf(err, errlen, "pool: %s", e);
        return -1;
    }
    if (sg_valid_ident(rq->user, e, sizeof(e)) != 0) {
        snprintf(err, errlen, "user: %s", e);
        return -1;
    }
    if (!empty(rq->on_behalf_of) && sg_valid_ident(rq->on_behalf_of, e, sizeof(e)) != 0) {
        snprintf(err, errlen, "on-behalf-of: %s", e);
        return -1;
    }
    if (!empty(rq->feature) && sg_valid_name(rq->feature, e, sizeof(e)) != 0) {
        snprintf(err, errlen, "feature: %s", e);
        return -1;
    }
    if (!empty(rq->session) && sg_valid_ident(rq->session, e, sizeof(e)) != 0) {
        snprintf(err, errlen, "session: %s", e);
        return -1;
    }
    if (rq->ttl_s < 0 || rq->ttl_s > 365L * 86400) {
        snprintf(err, errlen, "lease length out of range");
        return -1;
    }
    return 0;
}

int sg_decide_cmd(const sg_request *rq, int use_eval, sg_cmd *cmd)
{
    const char *sa = empty(rq->on_behalf_of) ? "" : rq->user;
    if (cmd_script(cmd, SG_SCRIPT_DECIDE, use_eval, SG_K_COUNT + 1) ||
        cmd_pool_keys(cmd, rq->pool, sa) ||
        cmd_str(cmd, rq->op == SG_OP_ACQUIRE ? "acquire" : "check") || cmd_str(cmd, rq->user) ||
        cmd_str(cmd, rq->on_behalf_of) || cmd_str(cmd, rq->feature) ||
        cmd_str(cmd, rq->session) || cmd_str(cmd, rq->via ? rq->via : "cli") ||
        cmd_str(cmd, rq->host) || cmd_long(cmd, rq->pid) || cmd_str(cmd, rq->client) ||
        cmd_long(cmd, rq->ttl_s) || cmd_str(cmd, rq->pool))
        return -1;
    return 0;
}

int sg_release_cmd(const char *pool, const char *user, const char *session, const char *via,
                   const char *host, int use_eval, sg_cmd *cmd)
{
    if (cmd_script(cmd, SG_SCRIPT_RELEASE, use_eval, SG_K_COUNT + 1) ||
        cmd_pool_keys(cmd, pool, "") || cmd_str(cmd, user) || cmd_str(cmd, session) ||
        cmd_str(cmd, via ? via : "cli") || cmd_str(cmd, host) || cmd_str(cmd, pool))
        return -1;
    return 0;
}

int sg_reply_is_noscript(const struct redisReply *r)
{
    return r && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOSCRIPT", 8) == 0;
}

void sg_decision_message(const sg_decision *d, const char *pool, const char *feature, char *buf,
                         size_t len)
{
    const char *r = d->reason;
    switch (d->result) {
    case SG_GRANTED_NAMED:
        snprintf(buf, len, "you hold a named seat of pool %s", pool);
        break;
    case SG_GRANTED_FLOATING:
        snprintf(buf, len, "you hold a floating seat of pool %s (%lld of %lld in use)%s", pool,
                 d->in_use, d->floating, d->overdraft ? ", in overdraft" : "");
        break;
    case SG_GRANTED_FREE:
        snprintf(buf, len, "no seat is needed here");
        break;
    case SG_DENIED_UNASSIGNED:
        if (strcmp(r, "no_identity") == 0 || strcmp(r, "invalid_identity") == 0 ||
            strcmp(r, "invalid_on_behalf_of") == 0 || strcmp(r, "invalid_input") == 0)
            snprintf(buf, len, "no valid identity came with this request");
        else if (strcmp(r, "unknown_pool") == 0)
            snprintf(buf, len, "pool %s does not exist; ask your license administrator", pool);
        else if (strcmp(r, "service_account_needs_on_behalf_of") == 0)
            snprintf(buf, len, "a service account must say on whose behalf it acts");
        else if (strcmp(r, "on_behalf_of_requires_service_account") == 0)
            snprintf(buf, len, "only a service account may act on behalf of someone else");
        else if (strcmp(r, "on_behalf_of_is_service_account") == 0)
            snprintf(buf, len, "a service account cannot act on behalf of another one");
        else
            snprintf(buf, len, "you have no seat in pool %s; ask your license administrator",
                     pool);
        break;
    case SG_DENIED_EXHAUSTED:
        if (strcmp(r, "reserved_for_group") == 0)
            snprintf(buf, len,
                     "the free floating seats of pool %s are reserved for another group; "
                     "try again later",
                     pool);
        else if (strcmp(r, "group_cap_reached") == 0)
            snprintf(buf, len,
                     "your group holds all the floating seats of pool %s it may; "
                     "try again later",
                     pool);
        else if (d->capacity == 1)
            snprintf(buf, len, "the only floating seat of pool %s is in use; try again later",
                     pool);
        else
            snprintf(buf, len, "all %lld floating seats of pool %s are in use; try again later",
                     d->capacity, pool);
        break;
    case SG_DENIED_EXCLUDED:
        snprintf(buf, len, "your account may not use pool %s", pool);
        break;
    case SG_DENIED_FEATURE:
        snprintf(buf, len, "pool %s does not include the module %s", pool,
                 feature && *feature ? feature : "required here");
        break;
    case SG_DENIED_MULTIPLEXING:
        snprintf(buf, len,
                 "this service account acts for too many people in pool %s; "
                 "ask your license administrator",
                 pool);
        break;
    case SG_DENIED_DISABLED:
        snprintf(buf, len, "your account is disabled for pool %s", pool);
        break;
    default:
        snprintf(buf, len, "the license service is unavailable; try again later");
        break;
    }
}

void sg_decision_error(sg_decision *d, const char *msg)
{
    memset(d, 0, sizeof(*d));
    d->result = SG_ERROR_BACKEND;
    d->seat = SG_SEAT_NONE;
    snprintf(d->reason, sizeof(d->reason), "backend_unavailable");
    snprintf(d->err, sizeof(d->err), "%s", msg ? msg : "backend error");
}

static long long elem_ll(const redisReply *e)
{
    if (e->type == REDIS_REPLY_INTEGER)
        return e->integer;
    if (e->type == REDIS_REPLY_STRING)
        return strtoll(e->str, NULL, 10);
    return 0;
}

static int elem_str(const redisReply *e, char *buf, size_t len)
{
    if (e->type != REDIS_REPLY_STRING && e->type != REDIS_REPLY_STATUS)
        return -1;
    snprintf(buf, len, "%s", e->str);
    return 0;
}

int sg_decision_parse(const struct redisReply *r, sg_decision *d)
{
    if (r == NULL) {
        sg_decision_error(d, "no reply from redis");
        return -1;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        char msg[SG_ERR_MAX];
        snprintf(msg, sizeof(msg), "redis: %s", r->str);
        sg_decision_error(d, msg);
        return -1;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 12) {
        sg_decision_error(d, "redis: unexpected reply to the decision script");
        return -1;
    }
    memset(d, 0, sizeof(*d));
    char res[40], seat[16];
    if (elem_str(r->element[0], res, sizeof(res)) || sg_result_parse(res, &d->result) ||
        elem_str(r->element[1], d->reason, sizeof(d->reason)) ||
        elem_str(r->element[2], seat, sizeof(seat)) ||
        elem_str(r->element[11], d->user, sizeof(d->user))) {
        sg_decision_error(d, "redis: malformed decision reply");
        return -1;
    }
    d->seat = strcmp(seat, "named") == 0      ? SG_SEAT_NAMED
              : strcmp(seat, "floating") == 0 ? SG_SEAT_FLOATING
              : strcmp(seat, "free") == 0     ? SG_SEAT_FREE
                                              : SG_SEAT_NONE;
    d->in_use = elem_ll(r->element[3]);
    d->floating = elem_ll(r->element[4]);
    d->capacity = elem_ll(r->element[5]);
    d->named = elem_ll(r->element[6]);
    d->expires_ms = elem_ll(r->element[7]);
    d->ttl_ms = elem_ll(r->element[8]);
    d->epoch = elem_ll(r->element[9]);
    d->overdraft = (int)elem_ll(r->element[10]);
    return 0;
}

/* ---- blocking calls ------------------------------------------------------ */

/* Run a built script command; on NOSCRIPT rebuild with EVAL via the callback. */
static redisReply *run_with_fallback(sg_conn *c, sg_cmd *cmd, int (*rebuild)(void *, sg_cmd *),
                                     void *ud, char *err, size_t errlen)
{
    redisReply *r = sg_conn_cmd(c, cmd->argc, cmd->argv, cmd->argvlen, err, errlen);
    if (sg_reply_is_noscript(r)) {
        freeReplyObject(r);
        if (rebuild(ud, cmd) != 0) {
            snprintf(err, errlen, "command too large");
            return NULL;
        }
        r = sg_conn_cmd(c, cmd->argc, cmd->argv, cmd->argvlen, err, errlen);
    }
    return r;
}

static int rebuild_decide(void *ud, sg_cmd *cmd)
{
    return sg_decide_cmd((const sg_request *)ud, 1, cmd);
}

int sg_decide(sg_conn *c, const sg_request *rq, sg_decision *d)
{
    char err[SG_ERR_MAX];
    if (sg_request_validate(rq, err, sizeof(err)) != 0) {
        sg_decision_error(d, err);
        snprintf(d->reason, sizeof(d->reason), "invalid_input");
        return -1;
    }
    sg_cmd *cmd = malloc(sizeof(*cmd));
    if (cmd == NULL) {
        sg_decision_error(d, "out of memory");
        return -1;
    }
    if (sg_decide_cmd(rq, 0, cmd) != 0) {
        free(cmd);
        sg_decision_error(d, "request too large");
        return -1;
    }
    redisReply *r = run_with_fallback(c, cmd, rebuild_decide, (void *)rq, err, sizeof(err));
    free(cmd);
    if (r == NULL) {
        sg_decision_error(d, err);
        return -1;
    }
    int rc = sg_decision_parse(r, d);
    freeReplyObject(r);
    return rc;
}

struct release_args {
    const char *pool, *user, *session, *via, *host;
};

static int rebuild_release(void *ud, sg_cmd *cmd)
{
    struct release_args *a = ud;
    return sg_release_cmd(a->pool, a->user, a->session, a->via, a->host, 1, cmd);
}

long sg_release(sg_conn *c, const char *pool, const char *user, const char *session,
                const char *via, const char *host, char *err, size_t errlen)
{
    char e[SG_ERR_MAX];
    if (sg_valid_name(pool, e, sizeof(e)) || sg_valid_ident(user, e, sizeof(e)) ||
        (!empty(session) && sg_valid_ident(session, e, sizeof(e)))) {
        snprintf(err, errlen, "%s", e);
        return -2;
    }
    struct release_args a = {pool, user, session ? session : "", via, host};
    sg_cmd *cmd = malloc(sizeof(*cmd));
    if (cmd == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (sg_release_cmd(pool, user, a.session, via, host, 0, cmd) != 0) {
        free(cmd);
        snprintf(err, errlen, "request too large");
        return -2;
    }
    redisReply *r = run_with_fallback(c, cmd, rebuild_release, &a, err, errlen);
    free(cmd);
    if (r == NULL)
        return -1;
    long n = -1;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 2)
        n = elem_ll(r->element[1]) > 0 ? 2 : (elem_ll(r->element[0]) > 0 ? 1 : 0);
    else if (r->type == REDIS_REPLY_ERROR)
        snprintf(err, errlen, "redis: %s", r->str);
    else
        snprintf(err, errlen, "redis: unexpected reply to release");
    freeReplyObject(r);
    return n;
}

/* Generic runner: argv holds keys then args (argc counts both). */
struct redisReply *sg_script_run(sg_conn *c, sg_script s, int nkeys, int argc, const char **argv,
                                 char *err, size_t errlen)
{
    int total = argc + 3;
    const char **av = malloc(sizeof(*av) * (size_t)total);
    if (av == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    char nk[16];
    snprintf(nk, sizeof(nk), "%d", nkeys);
    av[0] = "EVALSHA";
    av[1] = sg_script_sha(s);
    av[2] = nk;
    for (int i = 0; i < argc; i++)
        av[i + 3] = argv[i];
    redisReply *r = sg_conn_cmd(c, total, av, NULL, err, errlen);
    if (sg_reply_is_noscript(r)) {
        freeReplyObject(r);
        av[0] = "EVAL";
        av[1] = sg_script_body(s);
        r = sg_conn_cmd(c, total, av, NULL, err, errlen);
    }
    free(av);
    if (r && r->type == REDIS_REPLY_ERROR) {
        snprintf(err, errlen, "redis: %s", r->str);
        freeReplyObject(r);
        return NULL;
    }
    return r;
}
