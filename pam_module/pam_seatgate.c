/*
 * pam_seatgate: license seats at technician login.
 *
 *   account  required pam_seatgate.so pool=technicians [options]
 *   session  required pam_seatgate.so pool=technicians [options]
 *
 * account decides entitlement without taking anything; session open takes or
 * joins the user's floating seat as a lease carrying host and process id;
 * session close releases that session (the seat stays while the user has
 * other live sessions). Arguments: see pam_seatgate(8). The config file is
 * read first (conf=, default /etc/security/seatgate.conf; refused unless
 * owned by root and not writable by group or others) and the arguments on
 * the PAM line are applied over it.
 *
 * One login, one budget: the account and session-open calls of a login share
 * one Redis connection and timeout= in total (name resolution included),
 * kept in the handle with pam_set_data and closed at pam_end. A logout
 * (session close) has a budget of its own.
 *
 * Exempt users (root unless exempt_root=no, members of exempt_group) step
 * aside with PAM_IGNORE, also when the configuration is broken; for anyone
 * else a broken configuration denies.
 *
 * All decisions are made by libseatgate (common/); this file is the PAM
 * wrapper: arguments, identity, conversation and return codes.
 */
#include "seatgate.h"

#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#define PAM_SM_ACCOUNT
#define PAM_SM_SESSION
#include <security/pam_ext.h>
#include <security/pam_modules.h>
#include <security/pam_modutil.h>

#define LOGIN_DATA "pam_seatgate_login"
#define PAM_DEFAULT_LEASE_S (12 * 3600)

typedef enum { HOOK_ACCOUNT, HOOK_OPEN, HOOK_CLOSE } hook_t;

/* What one login keeps in the handle between its PAM calls. */
typedef struct {
    sg_conn *conn;    /* account -> open; closed after open and at pam_end */
    pid_t conn_pid;   /* the process conn belongs to */
    long spent_ms;    /* what account and open have waited so far */
    int group_warned; /* a missing exempt group said once */
    char sid[160];    /* the session id, open -> close */
    /* known once per login: who is exempt (for the same settings), and
     * this host and process */
    int exempt_known;
    char exempt_args[2 * SG_IDENT_MAX + 8];
    const char *exempt_why;
    int host_known;
    char hid[80], host[256], boot[40];
    unsigned long long pstart;
    long pid;
} login_t;

typedef struct {
    pam_handle_t *pamh;
    int flags;
    hook_t hook;
    const char *hookname;
    sg_config cfg;
    login_t *login;
} ctx_t;

static void pam_log(void *ud, sg_log_level lvl, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void pam_log(void *ud, sg_log_level lvl, const char *fmt, ...)
{
    pam_handle_t *pamh = ud;
    int prio = lvl == SG_LOG_ERR    ? LOG_ERR
               : lvl == SG_LOG_WARN ? LOG_WARNING
               : lvl == SG_LOG_INFO ? LOG_INFO
                                    : LOG_DEBUG;
    va_list ap;
    va_start(ap, fmt);
    pam_vsyslog(pamh, prio, fmt, ap);
    va_end(ap);
}

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* conf= first, then every other argument over it. Every good setting is
 * applied, also after a bad one, so exemptions hold in a broken config;
 * -1 when anything was bad (logged). */
static int parse_args(ctx_t *c, int argc, const char **argv)
{
    int rc = 0;
    sg_config_init(&c->cfg);
    const char *conf = NULL;
    for (int i = 0; i < argc; i++)
        if (strncmp(argv[i], "conf=", 5) == 0)
            conf = argv[i] + 5;
    if (conf != NULL && *conf == '\0') {
        pam_syslog(c->pamh, LOG_ERR, "conf= needs a path");
        rc = -1;
    } else if (sg_config_read(&c->cfg, conf ? conf : SG_DEFAULT_CONF, conf == NULL, pam_log,
                              c->pamh) != 0) {
        rc = -1;
    }
    for (int i = 0; i < argc; i++) {
        if (strncmp(argv[i], "conf=", 5) == 0)
            continue;
        if (sg_config_apply(&c->cfg, argv[i], pam_log, c->pamh) != 0)
            rc = -1;
    }
    if (c->cfg.pool[0] == '\0') {
        pam_syslog(c->pamh, LOG_ERR, "no pool= given (on the PAM line or in %s)",
                   conf ? conf : SG_DEFAULT_CONF);
        rc = -1;
    }
    return rc;
}

/* A message to the user, unless the application asked for silence. */
static void tell(ctx_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void tell(ctx_t *c, const char *fmt, ...)
{
    if (c->flags & PAM_SILENT)
        return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    pam_prompt(c->pamh, PAM_ERROR_MSG, NULL, "%s", msg);
}

static void login_free(pam_handle_t *pamh, void *data, int status)
{
    (void)pamh;
    (void)status;
    login_t *l = data;
    sg_conn_close(l->conn);
    free(l);
}

/* This login's state, made on first use; NULL only when out of memory. */
static login_t *login_of(pam_handle_t *pamh)
{
    const void *d = NULL;
    if (pam_get_data(pamh, LOGIN_DATA, &d) == PAM_SUCCESS && d)
        return (login_t *)d;
    login_t *l = calloc(1, sizeof(*l));
    if (l == NULL)
        return NULL;
    if (pam_set_data(pamh, LOGIN_DATA, l, login_free) != PAM_SUCCESS) {
        free(l);
        return NULL;
    }
    return l;
}

static void drop_conn(login_t *l)
{
    sg_conn_close(l->conn);
    l->conn = NULL;
}

/* Root (exempt_root, by uid 0) or a member of exempt_group: the module has
 * nothing to say about them. A group this host does not know is logged
 * once per login. */
static const char *exempt_lookup(ctx_t *c, const char *user)
{
    if (c->cfg.exempt_root) {
        struct passwd *pw = pam_modutil_getpwnam(c->pamh, user);
        if ((pw && pw->pw_uid == 0) || (pw == NULL && strcmp(user, "root") == 0))
            return "root";
    }
    if (c->cfg.exempt_group[0] == '\0')
        return NULL;
    if (pam_modutil_getgrnam(c->pamh, c->cfg.exempt_group) == NULL) {
        if (c->login == NULL || !c->login->group_warned)
            pam_syslog(c->pamh, LOG_WARNING,
                       "exempt_group %s does not exist on this host; nobody is exempt through it",
                       c->cfg.exempt_group);
        if (c->login)
            c->login->group_warned = 1;
        return NULL;
    }
    if (pam_modutil_user_in_group_nam_nam(c->pamh, user, c->cfg.exempt_group))
        return "a member of group ";
    return NULL;
}

static const char *exempt(ctx_t *c, const char *user)
{
    login_t *l = c->login;
    char args[sizeof(l->exempt_args)];
    /* the answer holds for this user and these settings */
    snprintf(args, sizeof(args), "%d %s %s", c->cfg.exempt_root, c->cfg.exempt_group, user);
    if (l && l->exempt_known && strcmp(l->exempt_args, args) == 0)
        return l->exempt_why;
    const char *why = exempt_lookup(c, user);
    if (l) {
        l->exempt_known = 1;
        l->exempt_why = why;
        snprintf(l->exempt_args, sizeof(l->exempt_args), "%s", args);
    }
    return why;
}

/* This host's id and name and this process's start, once per login. */
static void host_of(ctx_t *c, login_t *scratch)
{
    login_t *l = c->login ? c->login : scratch;
    long pid = (long)getpid();
    if (l->host_known && l->pid == pid)
        return;
    char err[SG_ERR_MAX];
    if (sg_host_id_or_name(c->cfg.host_id, l->hid, sizeof(l->hid), err, sizeof(err)) != 0)
        pam_syslog(c->pamh, LOG_WARNING, "%s; using the host name", err);
    sg_hostname(l->host, sizeof(l->host));
    l->pstart = 0;
    sg_proc_start(pid, &l->pstart);
    l->boot[0] = '\0';
    sg_boot_id(l->boot, sizeof(l->boot));
    l->pid = pid;
    l->host_known = 1;
}

static int denied_code(hook_t hook)
{
    /* pam_sm_open_session(3) knows only PAM_SUCCESS and PAM_SESSION_ERR */
    return hook == HOOK_ACCOUNT ? PAM_PERM_DENIED : PAM_SESSION_ERR;
}

static int backend_failed(ctx_t *c, const char *user, const char *why)
{
    if (c->hook == HOOK_CLOSE) { /* a logout never fails on the seat */
        pam_syslog(c->pamh, LOG_WARNING,
                   "pool %s: %s; closing %s's session without release (its lease runs out)",
                   c->cfg.pool, why, user);
        return PAM_SUCCESS;
    }
    if (c->cfg.fail_open) {
        pam_syslog(c->pamh, LOG_WARNING, "pool %s: %s; fail=open lets %s in without a seat",
                   c->cfg.pool, why, user);
        return PAM_SUCCESS;
    }
    pam_syslog(c->pamh, LOG_ERR, "pool %s: %s; fail=closed denies %s", c->cfg.pool, why, user);
    tell(c, "the license service is unavailable; try again later");
    return denied_code(c->hook);
}

/* The connection for this call, within what is left of the login's budget
 * (a logout: a budget of its own). NULL with why set when there is none. */
static sg_conn *connect_for(ctx_t *c, char *why, size_t whylen)
{
    login_t *l = c->login;
    int left = c->cfg.timeout_ms;
    if (c->hook != HOOK_CLOSE && l) {
        left = (int)(c->cfg.timeout_ms - l->spent_ms);
        if (left <= 0) {
            snprintf(why, whylen, "this login has used up timeout=%d ms", c->cfg.timeout_ms);
            return NULL;
        }
        if (l->conn && l->conn_pid == getpid()) {
            sg_conn_set_budget(l->conn, left);
            return l->conn;
        }
        drop_conn(l); /* another process's (after a fork): not ours to use */
    }
    sg_redis_url url;
    if (sg_url_parse(c->cfg.redis, &url, why, whylen) != 0)
        return NULL;
    sg_conn *conn = sg_conn_open_bounded(&url, left, why, whylen);
    if (conn && c->hook != HOOK_CLOSE && l) {
        l->conn = conn;
        l->conn_pid = getpid();
    }
    return conn;
}

static int close_session(ctx_t *c, sg_conn *conn, const char *user, const char *hid,
                         const char *sid, const char *host)
{
    char err[SG_ERR_MAX];
    long n = sg_session_close(conn, c->cfg.pool, user, sid, "pam", host, hid, err, sizeof(err));
    if (n < 0) {
        /* the lease runs out anyway; a logout never fails on the seat */
        pam_syslog(c->pamh, LOG_WARNING, "close %s session %s: %s", user, sid, err);
        return PAM_SUCCESS;
    }
    if (c->cfg.debug)
        pam_syslog(c->pamh, LOG_DEBUG, "close %s session %s in pool %s: %s", user, sid,
                   c->cfg.pool,
                   n == 2   ? "seat released"
                   : n == 1 ? "session closed, seat kept"
                            : "nothing held");
    return PAM_SUCCESS;
}

static int run_hook(pam_handle_t *pamh, int flags, hook_t hook, int argc, const char **argv)
{
    long long t0 = mono_ms();
    ctx_t c = {.pamh = pamh, .flags = flags, .hook = hook};
    c.hookname = hook == HOOK_ACCOUNT ? "account" : hook == HOOK_OPEN ? "open" : "close";
    sg_conn *conn = NULL;
    int ret;
    char err[SG_ERR_MAX];

    int bad = parse_args(&c, argc, argv);
    c.login = login_of(pamh);
    const char *user = NULL;
    if (pam_get_user(pamh, &user, NULL) != PAM_SUCCESS || user == NULL) {
        pam_syslog(pamh, LOG_ERR, "cannot get the user name");
        ret = hook == HOOK_ACCOUNT ? PAM_USER_UNKNOWN : PAM_SESSION_ERR;
        goto out;
    }
    const char *why_exempt = exempt(&c, user);
    if (why_exempt) {
        pam_syslog(pamh, bad ? LOG_WARNING : LOG_INFO, "%s %s: exempt as %s%s, no seat taken%s",
                   c.hookname, user, why_exempt, why_exempt[0] == 'r' ? "" : c.cfg.exempt_group,
                   bad ? " (the configuration is broken: see above)" : "");
        ret = PAM_IGNORE;
        goto out;
    }
    if (bad) {
        pam_syslog(pamh, LOG_ERR, "bad configuration; denying %s (fail closed)", user);
        ret = hook == HOOK_ACCOUNT ? PAM_SERVICE_ERR : PAM_SESSION_ERR;
        goto out;
    }
    if (sg_valid_ident(user, err, sizeof(err)) != 0) {
        pam_syslog(pamh, LOG_ERR, "rejecting user name: %s", err);
        ret = hook == HOOK_ACCOUNT ? PAM_USER_UNKNOWN : PAM_SESSION_ERR;
        goto out;
    }

    login_t scratch = {0};
    host_of(&c, &scratch);
    const login_t *h = c.login ? c.login : &scratch;
    const char *host = h->host, *hid = h->hid;
    long pid = h->pid;
    unsigned long long pstart = h->pstart;
    const void *item = NULL;
    char rhost[SG_TEXT_MAX + 1] = "";
    if (pam_get_item(pamh, PAM_RHOST, &item) == PAM_SUCCESS && item &&
        sg_clean_text(item, rhost, sizeof(rhost)) != 0)
        pam_syslog(pamh, LOG_WARNING, "remote host name is not printable; recorded as %s", rhost);
    const void *service = NULL;
    pam_get_item(pamh, PAM_SERVICE, &service);

    /* the session id names this host (host_id, else /etc/machine-id) and the
     * process with its start time, so it cannot collide with another host's
     * or with a later process that reuses the pid. Kept from open to close in
     * the handle, else rebuilt from the pid. */
    char sid[160];
    if (hook == HOOK_CLOSE && c.login && c.login->sid[0])
        snprintf(sid, sizeof(sid), "%s", c.login->sid);
    else
        sg_pam_session_id(hid, pid, pstart, sid, sizeof(sid));

    conn = connect_for(&c, err, sizeof(err));
    if (conn == NULL) {
        ret = backend_failed(&c, user, err);
        goto out;
    }
    if (hook == HOOK_CLOSE) {
        ret = close_session(&c, conn, user, hid, sid, host);
        goto out;
    }

    sg_request rq = {
        .op = hook == HOOK_OPEN ? SG_OP_ACQUIRE : SG_OP_CHECK,
        .pool = c.cfg.pool,
        .user = user,
        .feature = c.cfg.feature[0] ? c.cfg.feature : NULL,
        .session = hook == HOOK_OPEN ? sid : NULL,
        .via = "pam",
        .host = host,
        .client = rhost,
        .pid = hook == HOOK_OPEN ? pid : 0,
        .pstart = hook == HOOK_OPEN ? pstart : 0,
        .ttl_s = c.cfg.lease_s ? c.cfg.lease_s : PAM_DEFAULT_LEASE_S,
    };
    sg_decision d;
    int rc = hook == HOOK_OPEN ? sg_session_open(conn, &rq, hid, h->boot, &d)
                               : sg_decide(conn, &rq, &d);
    if (rc != 0) {
        if (c.login && conn == c.login->conn)
            drop_conn(c.login); /* a reply may still be on its way: unusable */
        conn = NULL;
        ret = backend_failed(&c, user, d.err);
        goto out;
    }
    char msg[512];
    sg_decision_message(&d, c.cfg.pool, c.cfg.feature, msg, sizeof(msg));
    if (sg_result_granted(d.result)) {
        if (c.cfg.debug)
            pam_syslog(pamh, LOG_DEBUG, "%s %s service %s pool %s: %s (%s), %lld/%lld",
                       c.hookname, user, service ? (const char *)service : "?", c.cfg.pool,
                       sg_result_name(d.result), d.reason, d.in_use, d.capacity);
        if (hook == HOOK_OPEN && c.login)
            snprintf(c.login->sid, sizeof(c.login->sid), "%s", sid); /* for close */
        ret = PAM_SUCCESS;
        goto out;
    }
    pam_syslog(pamh, LOG_NOTICE, "%s %s service %s pool %s from %s: %s (%s), %lld/%lld",
               c.hookname, user, service ? (const char *)service : "?", c.cfg.pool,
               rhost[0] ? rhost : "local", sg_result_name(d.result), d.reason, d.in_use,
               d.capacity);
    tell(&c, "%s", msg);
    ret = denied_code(hook);
out:
    if (c.login && hook != HOOK_CLOSE) {
        c.login->spent_ms += (long)(mono_ms() - t0);
        if (hook == HOOK_OPEN)
            drop_conn(c.login); /* the login's last call: no idle connection */
    } else {
        sg_conn_close(conn); /* a logout's own, or one no login state could keep */
    }
    if (hook == HOOK_CLOSE && ret != PAM_SUCCESS && ret != PAM_IGNORE) {
        /* a logout never fails on the seat: the lease runs out anyway */
        pam_syslog(pamh, LOG_WARNING, "close: %s; the logout goes on", pam_strerror(pamh, ret));
        ret = PAM_SUCCESS;
    }
    return ret;
}

PAM_EXTERN int pam_sm_acct_mgmt(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
    return run_hook(pamh, flags, HOOK_ACCOUNT, argc, argv);
}

PAM_EXTERN int pam_sm_open_session(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
    return run_hook(pamh, flags, HOOK_OPEN, argc, argv);
}

PAM_EXTERN int pam_sm_close_session(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
    return run_hook(pamh, flags, HOOK_CLOSE, argc, argv);
}
