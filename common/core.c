/* Key schema, decision and release commands, reply parsing, script runner. */
#include "seatgate.h"
#include "internal.h"

#include <hiredis/hiredis.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const key_suffix[SG_K_COUNT] = {
    "conf", "named", "users", "leases", "sess", "sessidx", "sessinfo", "gcount", "hg",
    "fold", "audit", "lastused", "stats", "epoch",
};

int sg_keyname(sg_key k, const char *pool, char *buf, size_t len)
{
    if ((int)k < 0 || k >= SG_K_COUNT)
        return -1;
    int n = snprintf(buf, len, "sg:{%s}:%s", pool, key_suffix[k]);
    return (n < 0 || (size_t)n >= len) ? -1 : 0;
}

int sg_key_pool_of(const char *key, const char *name, char *pool, size_t len)
{
    const char *o = strchr(key, '{');
    const char *e = o ? strchr(o, '}') : NULL;
    size_t pl = e ? (size_t)(e - o - 1) : 0;
    if (strncmp(key, "sg:{", 4) != 0 || o != key + 3 || e == NULL || pl == 0 ||
        pl > SG_POOL_MAX || pl >= len || e[1] != ':' || strcmp(e + 2, name) != 0)
        return -1;
    memcpy(pool, o + 1, pl);
    pool[pl] = '\0';
    return 0;
}

int sg_key_mux(const char *pool, const char *sa, char *buf, size_t len)
{
    int n = snprintf(buf, len, "sg:{%s}:mux:%s", pool, sa ? sa : "");
    return (n < 0 || (size_t)n >= len) ? -1 : 0;
}

/* The keys a decision or release declares, in this order: the ones the
 * decision role may read and write (docs/redis-schema.md). */
const sg_key sg_decide_keys[SG_DECIDE_NKEYS - 1] = {
    SG_K_LEASES, SG_K_SESS, SG_K_SESSIDX, SG_K_SESSINFO, SG_K_GCOUNT,
    SG_K_HG,     SG_K_FOLD, SG_K_LASTUSED, SG_K_STATS,
};

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

const char *sg_script_verb(int how)
{
    return how == SG_CALL_FCALL ? "FCALL" : how == SG_CALL_EVAL ? "EVAL" : "EVALSHA";
}

const char *sg_script_ref(sg_script s, int how)
{
    return how == SG_CALL_FCALL  ? sg_script_fname(s)
           : how == SG_CALL_EVAL ? sg_script_body(s)
                                 : sg_script_sha(s);
}

static int cmd_script(sg_cmd *cmd, sg_script s, int use_eval, int nkeys)
{
    cmd_init(cmd);
    if (cmd_static(cmd, sg_script_verb(use_eval)) || cmd_static(cmd, sg_script_ref(s, use_eval)))
        return -1;
    return cmd_long(cmd, nkeys);
}

/* ---- how scripts are called ------------------------------------------------ */

/* Until when (CLOCK_MONOTONIC ms) calls start at EVALSHA: set by a call
 * that found the library missing. One per process (an nginx worker, a PAM
 * login's process, seatctl). */
#define SG_FCALL_RETRY_MS 60000
static _Atomic long long fcall_miss_until;

static long long mono_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int sg_script_call_first(void)
{
    long long until = atomic_load_explicit(&fcall_miss_until, memory_order_relaxed);
    return until != 0 && mono_now_ms() < until ? SG_CALL_EVALSHA : SG_CALL_FCALL;
}

/* The library is missing: not loaded ("Function not found"), a Redis
 * without Functions ("unknown command"), or a role without +fcall. */
static int fcall_missing(const redisReply *r)
{
    if (r == NULL || r->type != REDIS_REPLY_ERROR || r->str == NULL)
        return 0;
    return strncmp(r->str, "ERR Function not found", 22) == 0 ||
           strncmp(r->str, "ERR unknown command", 19) == 0 ||
           (strncmp(r->str, "NOPERM", 6) == 0 && strstr(r->str, "fcall") != NULL);
}

int sg_script_call_next(const redisReply *r, int how)
{
    if (how == SG_CALL_FCALL && fcall_missing(r)) {
        atomic_store_explicit(&fcall_miss_until, mono_now_ms() + SG_FCALL_RETRY_MS,
                              memory_order_relaxed);
        return SG_CALL_EVALSHA;
    }
    if (how == SG_CALL_EVALSHA && sg_reply_is_noscript(r))
        return SG_CALL_EVAL;
    return -1;
}

/* The keys a decision or release declares (sg_decide_keys, then the mux
 * key of the service account, or of nobody). */
static int cmd_decide_keys(sg_cmd *cmd, const char *pool, const char *sa)
{
    char k[SG_KEY_MAX];
    for (int i = 0; i < SG_DECIDE_NKEYS - 1; i++) {
        if (sg_keyname(sg_decide_keys[i], pool, k, sizeof(k)) || cmd_str(cmd, k))
            return -1;
    }
    if (sg_key_mux(pool, sa, k, sizeof(k)) || cmd_str(cmd, k))
        return -1;
    return 0;
}

/* One named argument: the name, then the value. */
static int cmd_kv(sg_cmd *cmd, const char *name, const char *value)
{
    return cmd_str(cmd, name) || cmd_str(cmd, value);
}

static int empty(const char *s)
{
    return s == NULL || *s == '\0';
}

/* Optional arguments are left out when empty or 0, which the scripts read
 * as absent (the same meaning): each argument costs a call about 1k
 * instructions in Redis (parsed, made an object, made a Lua string). */
static int cmd_kv_opt(sg_cmd *cmd, const char *name, const char *value)
{
    return empty(value) ? 0 : cmd_kv(cmd, name, value);
}

static int cmd_kvu_opt(sg_cmd *cmd, const char *name, unsigned long long v)
{
    char tmp[32];
    snprintf(tmp, sizeof(tmp), "%llu", v);
    return v == 0 ? 0 : cmd_kv(cmd, name, tmp);
}

static int cmd_kvl(sg_cmd *cmd, const char *name, long long v)
{
    char tmp[32];
    snprintf(tmp, sizeof(tmp), "%lld", v);
    return cmd_kv(cmd, name, tmp);
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
    char clean[SG_TEXT_MAX + 1];
    if (!empty(rq->client) && sg_clean_text(rq->client, clean, sizeof(clean)) != 0) {
        snprintf(err, errlen, "client: not a printable address (at most %d bytes)", SG_TEXT_MAX);
        return -1;
    }
    if (!empty(rq->host) && sg_clean_text(rq->host, clean, sizeof(clean)) != 0) {
        snprintf(err, errlen, "host: not a printable name (at most %d bytes)", SG_TEXT_MAX);
        return -1;
    }
    return 0;
}

int sg_decide_cmd(const sg_request *rq, int use_eval, sg_cmd *cmd)
{
    const char *sa = empty(rq->on_behalf_of) ? "" : rq->user;
    if (cmd_script(cmd, SG_SCRIPT_DECIDE, use_eval, SG_DECIDE_NKEYS) ||
        cmd_decide_keys(cmd, rq->pool, sa) ||
        cmd_kv(cmd, "op", rq->op == SG_OP_ACQUIRE ? "acquire" : "check") ||
        cmd_kv(cmd, "pool", rq->pool) || cmd_kv(cmd, "user", rq->user) ||
        cmd_kv(cmd, "via", empty(rq->via) ? "cli" : rq->via) ||
        cmd_kv_opt(cmd, "obo", rq->on_behalf_of) || cmd_kv_opt(cmd, "feature", rq->feature) ||
        cmd_kv_opt(cmd, "session", rq->session) ||
        cmd_kvu_opt(cmd, "lease", rq->ttl_s > 0 ? (unsigned long long)rq->ttl_s : 0) ||
        cmd_kv_opt(cmd, "host", rq->host) ||
        cmd_kvu_opt(cmd, "pid", rq->pid > 0 ? (unsigned long long)rq->pid : 0) ||
        cmd_kvu_opt(cmd, "pstart", rq->pstart) || cmd_kv_opt(cmd, "client", rq->client))
        return -1;
    return 0;
}

int sg_usage_free_cmd(const char *pool, long n, int use_eval, sg_cmd *cmd)
{
    char k[SG_KEY_MAX];
    if (empty(pool) || n <= 0 || sg_keyname(SG_K_STATS, pool, k, sizeof(k)))
        return -1;
    if (cmd_script(cmd, SG_SCRIPT_USAGE, use_eval, 1) || cmd_str(cmd, k) ||
        cmd_kv(cmd, "pool", pool) || cmd_kvl(cmd, "free", n))
        return -1;
    return 0;
}

int sg_release_cmd(const char *pool, const char *user, const char *session, const char *via,
                   const char *host, int use_eval, sg_cmd *cmd)
{
    if (empty(pool) || empty(user))
        return -1;
    if (cmd_script(cmd, SG_SCRIPT_RELEASE, use_eval, SG_DECIDE_NKEYS) ||
        cmd_decide_keys(cmd, pool, "") || cmd_kv(cmd, "pool", pool) ||
        cmd_kv(cmd, "user", user) || cmd_kv(cmd, "via", empty(via) ? "cli" : via) ||
        cmd_kv_opt(cmd, "session", session) || cmd_kv_opt(cmd, "host", host))
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
    if (e == NULL)
        return 0;
    if (e->type == REDIS_REPLY_INTEGER)
        return e->integer;
    if (e->type == REDIS_REPLY_STRING)
        return strtoll(e->str, NULL, 10);
    return 0;
}

const struct redisReply *sg_reply_field(const struct redisReply *r, const char *name)
{
    if (r == NULL || r->type != REDIS_REPLY_ARRAY)
        return NULL;
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        const redisReply *k = r->element[i];
        if ((k->type == REDIS_REPLY_STRING || k->type == REDIS_REPLY_STATUS) &&
            strcmp(k->str, name) == 0)
            return r->element[i + 1];
    }
    return NULL;
}

long long sg_reply_ll(const struct redisReply *r, const char *name)
{
    return elem_ll(sg_reply_field(r, name));
}

const char *sg_reply_str(const struct redisReply *r, const char *name)
{
    const redisReply *e = sg_reply_field(r, name);
    if (e == NULL || (e->type != REDIS_REPLY_STRING && e->type != REDIS_REPLY_STATUS))
        return NULL;
    return e->str;
}

static int field_str(const redisReply *r, const char *name, char *buf, size_t len)
{
    const char *v = sg_reply_str(r, name);
    if (v == NULL)
        return -1;
    snprintf(buf, len, "%s", v);
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
    if (r->type != REDIS_REPLY_ARRAY || r->elements % 2 != 0 || r->elements < 8) {
        sg_decision_error(d, "redis: unexpected reply to the decision script");
        return -1;
    }
    memset(d, 0, sizeof(*d));
    char res[40], seat[16];
    if (field_str(r, "result", res, sizeof(res)) || sg_result_parse(res, &d->result) ||
        field_str(r, "reason", d->reason, sizeof(d->reason)) ||
        field_str(r, "seat", seat, sizeof(seat)) ||
        field_str(r, "user", d->user, sizeof(d->user))) {
        sg_decision_error(d, "redis: malformed decision reply");
        return -1;
    }
    d->seat = strcmp(seat, "named") == 0      ? SG_SEAT_NAMED
              : strcmp(seat, "floating") == 0 ? SG_SEAT_FLOATING
              : strcmp(seat, "free") == 0     ? SG_SEAT_FREE
                                              : SG_SEAT_NONE;
    d->in_use = sg_reply_ll(r, "in_use");
    d->floating = sg_reply_ll(r, "floating");
    d->capacity = sg_reply_ll(r, "capacity");
    d->named = sg_reply_ll(r, "named");
    d->expires_ms = sg_reply_ll(r, "expires_ms");
    d->ttl_ms = sg_reply_ll(r, "ttl_ms");
    d->overdraft = (int)sg_reply_ll(r, "overdraft");
    d->now_ms = sg_reply_ll(r, "now");
    return 0;
}

int sg_release_parse(const struct redisReply *r, long *sessions, long *seat)
{
    const redisReply *a = sg_reply_field(r, "sessions"), *b = sg_reply_field(r, "seat");
    if (a == NULL || b == NULL)
        return -1;
    *sessions = (long)elem_ll(a);
    *seat = (long)elem_ll(b);
    return 0;
}

/* ---- blocking calls ------------------------------------------------------ */

/* Run a built script command, and with it, in the same write, the extra
 * command xargv when xargc > 0 (its reply is read and dropped: an index
 * write beside the script). On NOSCRIPT the script is rebuilt as EVAL by
 * the callback and sent again, alone. */
static redisReply *run_once(sg_conn *c, sg_cmd *cmd, int xargc, const char **xargv, char *err,
                            size_t errlen)
{
    redisReply *r;
    if (xargc == 0) {
        r = sg_conn_cmd(c, cmd->argc, cmd->argv, cmd->argvlen, err, errlen);
    } else {
        if (sg_conn_append(c, cmd->argc, cmd->argv, cmd->argvlen) != 0) {
            snprintf(err, errlen, "redis: cannot queue the commands");
            return NULL;
        }
        if (sg_conn_append(c, xargc, xargv, NULL) != 0) {
            /* the script went: its reply is read, so the link stays in step */
            redisReply *lone = sg_conn_reply(c, err, errlen);
            if (lone)
                freeReplyObject(lone);
            snprintf(err, errlen, "redis: cannot queue the commands");
            return NULL;
        }
        r = sg_conn_reply(c, err, errlen);
        redisReply *x = r ? sg_conn_reply(c, err, errlen) : NULL;
        if (x == NULL) {
            if (r)
                freeReplyObject(r);
            return NULL;
        }
        freeReplyObject(x);
    }
    return r;
}

/* Behind Sentinel, a master demoted by a failover answers READONLY (and a
 * killed one no longer answers): the sentinels are asked again and the
 * command goes once more, to the new master, within the budget. Nothing
 * was written by a READONLY refusal, and decisions and releases are
 * idempotent for one session, so sending again is safe. */
static redisReply *run_with_fallback(sg_conn *c, sg_cmd *cmd, int how,
                                     int (*rebuild)(const void *, int, sg_cmd *), const void *ud,
                                     int xargc, const char **xargv, char *err, size_t errlen)
{
    redisReply *r = run_once(c, cmd, xargc, xargv, err, errlen);
    int readonly = r && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "READONLY", 8) == 0;
    /* a lost link is tried again only within an operation's budget (PAM's
     * login): a command whose timeout is its own (seatctl) fails instead */
    if (readonly || (r == NULL && sg_conn_has_budget(c))) {
        char e2[SG_ERR_MAX];
        if (sg_conn_reconnect(c, e2, sizeof(e2)) == 0) {
            if (r)
                freeReplyObject(r);
            r = run_once(c, cmd, xargc, xargv, err, errlen);
        }
    }
    /* the library or the script is missing: FCALL -> EVALSHA -> EVAL. The
     * index write beside it went (and was answered) with the first try. */
    while ((how = sg_script_call_next(r, how)) >= 0) {
        freeReplyObject(r);
        if (rebuild(ud, how, cmd) != 0) {
            snprintf(err, errlen, "command too large");
            return NULL;
        }
        r = sg_conn_cmd(c, cmd->argc, cmd->argv, cmd->argvlen, err, errlen);
    }
    return r;
}

static int rebuild_decide(const void *ud, int how, sg_cmd *cmd)
{
    return sg_decide_cmd((const sg_request *)ud, how, cmd);
}

int sg_decide(sg_conn *c, const sg_request *rq, sg_decision *d)
{
    return sg_decide_and(c, rq, 0, NULL, d);
}

int sg_decide_and(sg_conn *c, const sg_request *rq, int xargc, const char **xargv, sg_decision *d)
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
    int how = sg_script_call_first();
    if (sg_decide_cmd(rq, how, cmd) != 0) {
        free(cmd);
        sg_decision_error(d, "request too large");
        return -1;
    }
    redisReply *r = run_with_fallback(c, cmd, how, rebuild_decide, rq, xargc, xargv, err,
                                      sizeof(err));
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

static int rebuild_release(const void *ud, int how, sg_cmd *cmd)
{
    const struct release_args *a = ud;
    return sg_release_cmd(a->pool, a->user, a->session, a->via, a->host, how, cmd);
}

long sg_release(sg_conn *c, const char *pool, const char *user, const char *session,
                const char *via, const char *host, char *err, size_t errlen)
{
    return sg_release_and(c, pool, user, session, via, host, 0, NULL, err, errlen);
}

long sg_release_and(sg_conn *c, const char *pool, const char *user, const char *session,
                    const char *via, const char *host, int xargc, const char **xargv, char *err,
                    size_t errlen)
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
    int how = sg_script_call_first();
    if (sg_release_cmd(pool, user, a.session, via, host, how, cmd) != 0) {
        free(cmd);
        snprintf(err, errlen, "request too large");
        return -2;
    }
    redisReply *r =
        run_with_fallback(c, cmd, how, rebuild_release, &a, xargc, xargv, err, errlen);
    free(cmd);
    if (r == NULL)
        return -1;
    long n = -1, sessions, seat;
    if (sg_release_parse(r, &sessions, &seat) == 0)
        n = seat > 0 ? 2 : (sessions > 0 ? 1 : 0);
    else if (r->type == REDIS_REPLY_ERROR)
        snprintf(err, errlen, "redis: %s", r->str);
    else
        snprintf(err, errlen, "redis: unexpected reply to release");
    freeReplyObject(r);
    return n;
}

/* Generic runner: argv holds keys then args (argc counts both). A missing
 * library is loaded once per process where the role may (the admin's
 * seatctl); elsewhere the call falls back to EVALSHA and EVAL. */
static int library_tried;

void sg_library_autoload(int on)
{
    library_tried = !on;
}

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
    av[2] = nk;
    for (int i = 0; i < argc; i++)
        av[i + 3] = argv[i];
    int how = sg_script_call_first();
    redisReply *r = NULL;
    for (;;) {
        av[0] = sg_script_verb(how);
        av[1] = sg_script_ref(s, how);
        r = sg_conn_cmd(c, total, av, NULL, err, errlen);
        if (how == SG_CALL_FCALL && !library_tried && r && r->type == REDIS_REPLY_ERROR &&
            strncmp(r->str, "ERR Function not found", 22) == 0) {
            library_tried = 1;
            char e2[SG_ERR_MAX];
            if (sg_library_load(c, e2, sizeof(e2)) == 0) {
                freeReplyObject(r);
                continue; /* FCALL again, now that it is there */
            }
        }
        int next = sg_script_call_next(r, how);
        if (next < 0)
            break;
        freeReplyObject(r);
        how = next;
    }
    free(av);
    if (r && r->type == REDIS_REPLY_ERROR) {
        snprintf(err, errlen, "redis: %s", r->str);
        freeReplyObject(r);
        return NULL;
    }
    return r;
}

struct redisReply *sg_conn_cmd_at(sg_conn *c, int node, int argc, const char **argv, char *err,
                                  size_t errlen)
{
    return node < 0 ? sg_conn_cmd(c, argc, argv, NULL, err, errlen)
                    : sg_conn_cmd_node(c, node, argc, argv, err, errlen);
}

/* FUNCTION LOAD on one node (-1: the connection's own); a library already
 * there ("already exists") is loaded. */
static int library_load_on(sg_conn *c, int node, void *ud, char *err, size_t errlen)
{
    (void)ud;
    const char *av[] = {"FUNCTION", "LOAD", sg_library_body()};
    redisReply *r = sg_conn_cmd_at(c, node, 3, av, err, errlen);
    if (r == NULL)
        return -1;
    int rc = 0;
    if (r->type == REDIS_REPLY_ERROR && strstr(r->str, "already exists") == NULL) {
        snprintf(err, errlen, "redis: %s", r->str);
        rc = -1;
    }
    freeReplyObject(r);
    return rc;
}

/* The name of one library of a FUNCTION LIST reply, or NULL. */
static const char *library_name_of(const redisReply *lib)
{
    for (size_t j = 0; lib->type == REDIS_REPLY_ARRAY && j + 1 < lib->elements; j += 2)
        if (lib->element[j]->type == REDIS_REPLY_STRING &&
            strcmp(lib->element[j]->str, "library_name") == 0 &&
            lib->element[j + 1]->type == REDIS_REPLY_STRING)
            return lib->element[j + 1]->str;
    return NULL;
}

/* Is this build's library on one node (-1: the connection's own)? */
static int library_on(sg_conn *c, int node, void *ud, char *err, size_t errlen)
{
    (void)ud;
    const char *av[] = {"FUNCTION", "LIST", "LIBRARYNAME", sg_library_name()};
    redisReply *r = sg_conn_cmd_at(c, node, 4, av, err, errlen);
    if (r == NULL)
        return -1;
    int rc = -1;
    if (r->type == REDIS_REPLY_ARRAY) {
        /* LIBRARYNAME is a pattern: the name must match exactly */
        rc = 0;
        for (size_t i = 0; i < r->elements; i++) {
            const char *name = library_name_of(r->element[i]);
            if (name && strcmp(name, sg_library_name()) == 0)
                rc = 1;
        }
    } else {
        snprintf(err, errlen, "redis: %s", r->type == REDIS_REPLY_ERROR ? r->str : "bad reply");
    }
    freeReplyObject(r);
    return rc;
}

int sg_each_master(sg_conn *c, int (*fn)(sg_conn *, int, void *, char *, size_t), int ok,
                   void *ud, char *err, size_t errlen)
{
    int *masters = NULL;
    int nm = sg_conn_masters(c, &masters, err, errlen);
    if (nm < 0)
        return -1;
    int rc = fn(c, nm ? masters[0] : -1, ud, err, errlen);
    for (int m = 1; rc == ok && m < nm; m++)
        rc = fn(c, masters[m], ud, err, errlen);
    free(masters);
    return rc;
}

int sg_library_loaded(sg_conn *c, char *err, size_t errlen)
{
    return sg_each_master(c, library_on, 1, NULL, err, errlen);
}

int sg_library_load(sg_conn *c, char *err, size_t errlen)
{
    return sg_each_master(c, library_load_on, 0, NULL, err, errlen);
}

/* The seatgate libraries of other builds on one node (-1: the connection's
 * own): counted, and deleted when fix. */
struct others {
    int fix;
    long count;
};

static int libraries_other_on(sg_conn *c, int node, void *ud, char *err, size_t errlen)
{
    struct others *o = ud;
    const char *av[] = {"FUNCTION", "LIST", "LIBRARYNAME", "seatgate_*"};
    redisReply *r = sg_conn_cmd_at(c, node, 4, av, err, errlen);
    if (r == NULL)
        return -1;
    int rc = 0;
    if (r->type != REDIS_REPLY_ARRAY) {
        snprintf(err, errlen, "redis: %s", r->type == REDIS_REPLY_ERROR ? r->str : "bad reply");
        rc = -1;
    }
    for (size_t i = 0; rc == 0 && i < r->elements; i++) {
        const char *name = library_name_of(r->element[i]);
        /* LIBRARYNAME is a glob: ours are seatgate_ and 12 hex digits */
        if (name == NULL || strncmp(name, "seatgate_", 9) != 0 || strlen(name) != 21 ||
            strspn(name + 9, "0123456789abcdef") != 12 || strcmp(name, sg_library_name()) == 0)
            continue;
        o->count++;
        if (!o->fix)
            continue;
        const char *dv[] = {"FUNCTION", "DELETE", name};
        redisReply *d = sg_conn_cmd_at(c, node, 3, dv, err, errlen);
        if (d == NULL || d->type == REDIS_REPLY_ERROR) {
            if (d)
                snprintf(err, errlen, "redis: FUNCTION DELETE %s: %s", name, d->str);
            rc = -1;
        }
        freeReplyObject(d);
    }
    freeReplyObject(r);
    return rc;
}

int sg_library_others(sg_conn *c, int fix, long *count, char *err, size_t errlen)
{
    struct others o = {fix, 0};
    int rc = sg_each_master(c, libraries_other_on, 0, &o, err, errlen);
    *count = o.count;
    return rc;
}
