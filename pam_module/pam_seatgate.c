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
 * read first (conf=, default /etc/security/seatgate.conf) and the arguments
 * on the PAM line are applied over it. Any unknown or malformed argument
 * denies (fail closed) and is logged.
 *
 * All decisions are made by libseatgate (common/); this file is the PAM
 * wrapper: arguments, identity, conversation and return codes.
 */
#include "seatgate.h"

#include <grp.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#define PAM_SM_ACCOUNT
#define PAM_SM_SESSION
#include <security/pam_ext.h>
#include <security/pam_modules.h>

#define SESSION_DATA "pam_seatgate_session"
#define PAM_DEFAULT_LEASE_S (12 * 3600)

typedef enum { HOOK_ACCOUNT, HOOK_OPEN, HOOK_CLOSE } hook_t;

typedef struct {
    pam_handle_t *pamh;
    sg_config cfg;
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

/* conf= first, then every other argument over it. */
static int parse_args(ctx_t *c, int argc, const char **argv)
{
    sg_config_init(&c->cfg);
    const char *conf = NULL;
    for (int i = 0; i < argc; i++)
        if (strncmp(argv[i], "conf=", 5) == 0)
            conf = argv[i] + 5;
    if (conf != NULL && *conf == '\0') {
        pam_syslog(c->pamh, LOG_ERR, "seatgate: conf= needs a path");
        return -1;
    }
    if (sg_config_read(&c->cfg, conf ? conf : SG_DEFAULT_CONF, conf == NULL, pam_log, c->pamh) !=
        0)
        return -1;
    for (int i = 0; i < argc; i++) {
        if (strncmp(argv[i], "conf=", 5) == 0)
            continue;
        if (sg_config_apply(&c->cfg, argv[i], pam_log, c->pamh) != 0)
            return -1;
    }
    if (c->cfg.pool[0] == '\0') {
        pam_syslog(c->pamh, LOG_ERR, "seatgate: no pool= given (on the PAM line or in %s)",
                   conf ? conf : SG_DEFAULT_CONF);
        return -1;
    }
    return 0;
}

static void tell(pam_handle_t *pamh, int style, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void tell(pam_handle_t *pamh, int style, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    pam_prompt(pamh, style, NULL, "%s", msg);
}

/* Is the user in the break-glass group? (primary or supplementary) */
static int in_group(pam_handle_t *pamh, const char *user, const char *group)
{
    struct passwd pwbuf, *pw = NULL;
    struct group grbuf, *gr = NULL;
    char buf[16384];
    if (getgrnam_r(group, &grbuf, buf, sizeof(buf), &gr) != 0 || gr == NULL)
        return 0;
    gid_t gid = gr->gr_gid;
    for (char **m = gr->gr_mem; m && *m; m++)
        if (strcmp(*m, user) == 0)
            return 1;
    char pbuf[16384];
    if (getpwnam_r(user, &pwbuf, pbuf, sizeof(pbuf), &pw) != 0 || pw == NULL)
        return 0;
    if (pw->pw_gid == gid)
        return 1;
    int ng = 64;
    gid_t groups[64];
    if (getgrouplist(user, pw->pw_gid, groups, &ng) < 0) {
        pam_syslog(pamh, LOG_WARNING, "seatgate: %s is in more than 64 groups", user);
        return 0;
    }
    for (int i = 0; i < ng; i++)
        if (groups[i] == gid)
            return 1;
    return 0;
}

static void free_data(pam_handle_t *pamh, void *data, int status)
{
    (void)pamh;
    (void)status;
    free(data);
}

static int backend_failed(ctx_t *c, hook_t hook, const char *user, const char *why)
{
    if (hook == HOOK_CLOSE) { /* a logout never fails on the seat */
        pam_syslog(c->pamh, LOG_WARNING,
                   "seatgate: pool %s: %s; closing %s's session without release (its lease "
                   "runs out)",
                   c->cfg.pool, why, user);
        return PAM_SUCCESS;
    }
    if (c->cfg.fail_open) {
        pam_syslog(c->pamh, LOG_WARNING,
                   "seatgate: pool %s: %s; fail=open lets %s in without a seat", c->cfg.pool, why,
                   user);
        return PAM_SUCCESS;
    }
    pam_syslog(c->pamh, LOG_ERR, "seatgate: pool %s: %s; fail=closed denies %s", c->cfg.pool,
               why, user);
    tell(c->pamh, PAM_ERROR_MSG, "the license service is unavailable; try again later");
    return hook == HOOK_ACCOUNT ? PAM_PERM_DENIED : PAM_SESSION_ERR;
}

static int run_hook(pam_handle_t *pamh, hook_t hook, int argc, const char **argv)
{
    ctx_t c = {.pamh = pamh};
    sg_conn *conn = NULL;
    int ret;
    char err[SG_ERR_MAX];
    const char *hookname = hook == HOOK_ACCOUNT ? "account" : hook == HOOK_OPEN ? "open" : "close";

    if (parse_args(&c, argc, argv) != 0) {
        pam_syslog(pamh, LOG_ERR, "seatgate: bad configuration; denying (fail closed)");
        ret = hook == HOOK_ACCOUNT ? PAM_SERVICE_ERR : PAM_SESSION_ERR;
        goto out;
    }
    const char *user = NULL;
    if (pam_get_user(pamh, &user, NULL) != PAM_SUCCESS || user == NULL) {
        pam_syslog(pamh, LOG_ERR, "seatgate: cannot get the user name");
        ret = hook == HOOK_ACCOUNT ? PAM_USER_UNKNOWN : PAM_SESSION_ERR;
        goto out;
    }
    if (sg_valid_ident(user, err, sizeof(err)) != 0) {
        pam_syslog(pamh, LOG_ERR, "seatgate: rejecting user name: %s", err);
        ret = hook == HOOK_ACCOUNT ? PAM_USER_UNKNOWN : PAM_SESSION_ERR;
        goto out;
    }
    if (c.cfg.exempt_group[0] && in_group(pamh, user, c.cfg.exempt_group)) {
        pam_syslog(pamh, LOG_NOTICE, "seatgate: %s %s: member of exempt group %s, no seat taken",
                   hookname, user, c.cfg.exempt_group);
        ret = PAM_SUCCESS;
        goto out;
    }

    char host[256];
    sg_hostname(host, sizeof(host));
    const void *rhost = NULL;
    const void *service = NULL;
    pam_get_item(pamh, PAM_RHOST, &rhost);
    pam_get_item(pamh, PAM_SERVICE, &service);

    /* the session id names this host (host_id, else /etc/machine-id) and the
     * process with its start time, so it cannot collide with another host's
     * or with a later process that reuses the pid. Kept from open to close in
     * the handle, else rebuilt from the pid. */
    char hid[80], sid[160], boot[40] = "";
    if (sg_host_id_or_name(c.cfg.host_id, hid, sizeof(hid), err, sizeof(err)) != 0)
        pam_syslog(pamh, LOG_WARNING, "seatgate: %s; using the host name", err);
    unsigned long long pstart = 0;
    long pid = (long)getpid();
    sg_proc_start(pid, &pstart);
    sg_boot_id(boot, sizeof(boot));
    const void *kept = NULL;
    if (hook == HOOK_CLOSE && pam_get_data(pamh, SESSION_DATA, &kept) == PAM_SUCCESS && kept)
        snprintf(sid, sizeof(sid), "%s", (const char *)kept);
    else
        sg_pam_session_id(hid, pid, pstart, sid, sizeof(sid));

    sg_redis_url url;
    if (sg_url_parse(c.cfg.redis, &url, err, sizeof(err)) != 0) {
        pam_syslog(pamh, LOG_ERR, "seatgate: redis: %s", err);
        ret = hook == HOOK_ACCOUNT ? PAM_SERVICE_ERR : PAM_SESSION_ERR;
        goto out;
    }
    conn = sg_conn_open_bounded(&url, c.cfg.timeout_ms, err, sizeof(err));
    if (conn == NULL) {
        ret = backend_failed(&c, hook, user, err);
        goto out;
    }

    if (hook == HOOK_CLOSE) {
        long n = sg_release(conn, c.cfg.pool, user, sid, "pam", host, err, sizeof(err));
        if (n < 0) {
            /* the lease runs out anyway; a logout never fails on the seat */
            pam_syslog(pamh, LOG_WARNING, "seatgate: close %s session %s: %s", user, sid, err);
        } else if (c.cfg.debug) {
            pam_syslog(pamh, LOG_DEBUG, "seatgate: close %s session %s in pool %s: %s", user, sid,
                       c.cfg.pool,
                       n == 2   ? "seat released"
                       : n == 1 ? "session closed, seat kept"
                                : "nothing held");
        }
        if (n >= 0 && sg_host_untrack(conn, hid, c.cfg.pool, user, sid, err, sizeof(err)) != 0)
            pam_syslog(pamh, LOG_WARNING, "seatgate: close %s session %s: %s", user, sid, err);
        ret = PAM_SUCCESS;
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
        .client = rhost ? (const char *)rhost : "",
        .pid = hook == HOOK_OPEN ? pid : 0,
        .pstart = hook == HOOK_OPEN ? pstart : 0,
        .ttl_s = c.cfg.lease_s ? c.cfg.lease_s : PAM_DEFAULT_LEASE_S,
    };
    sg_decision d;
    if (sg_decide(conn, &rq, &d) != 0) {
        ret = backend_failed(&c, hook, user, d.err);
        goto out;
    }
    char msg[512];
    sg_decision_message(&d, c.cfg.pool, c.cfg.feature, msg, sizeof(msg));
    if (sg_result_granted(d.result)) {
        if (c.cfg.debug)
            pam_syslog(pamh, LOG_DEBUG, "seatgate: %s %s service %s pool %s: %s (%s), %lld/%lld",
                       hookname, user, service ? (const char *)service : "?", c.cfg.pool,
                       sg_result_name(d.result), d.reason, d.in_use, d.capacity);
        if (hook == HOOK_OPEN) {
            /* this host's index of sessions, which reap reads */
            sg_host_session hs = {.pid = pid, .pstart = pstart,
                                  .lease_s = d.ttl_ms / 1000, .renewed_ms = d.now_ms};
            snprintf(hs.pool, sizeof(hs.pool), "%s", c.cfg.pool);
            snprintf(hs.user, sizeof(hs.user), "%s", d.user[0] ? d.user : user);
            snprintf(hs.session, sizeof(hs.session), "%s", sid);
            snprintf(hs.boot, sizeof(hs.boot), "%s", boot);
            if (sg_host_track(conn, hid, &hs, err, sizeof(err)) != 0)
                pam_syslog(pamh, LOG_WARNING, "seatgate: session %s: %s (reap will not see it; "
                           "its lease still ends)", sid, err);
            char *keep = strdup(sid);
            if (keep == NULL || pam_set_data(pamh, SESSION_DATA, keep, free_data) != PAM_SUCCESS) {
                free(keep);
                pam_syslog(pamh, LOG_WARNING, "seatgate: cannot keep the session id");
            }
        }
        ret = PAM_SUCCESS;
        goto out;
    }
    pam_syslog(pamh, LOG_NOTICE, "seatgate: %s %s service %s pool %s from %s: %s (%s), %lld/%lld",
               hookname, user, service ? (const char *)service : "?", c.cfg.pool,
               rhost ? (const char *)rhost : "local", sg_result_name(d.result), d.reason, d.in_use,
               d.capacity);
    tell(pamh, PAM_ERROR_MSG, "%s", msg);
    /* pam_sm_open_session(3) knows only PAM_SUCCESS and PAM_SESSION_ERR */
    ret = hook == HOOK_ACCOUNT ? PAM_PERM_DENIED : PAM_SESSION_ERR;
out:
    sg_conn_close(conn);
    if (hook == HOOK_CLOSE && ret != PAM_SUCCESS) {
        /* a logout never fails on the seat: the lease runs out anyway */
        pam_syslog(pamh, LOG_WARNING, "seatgate: close: %s; the logout goes on",
                   pam_strerror(pamh, ret));
        ret = PAM_SUCCESS;
    }
    return ret;
}

PAM_EXTERN int pam_sm_acct_mgmt(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
    (void)flags;
    return run_hook(pamh, HOOK_ACCOUNT, argc, argv);
}

PAM_EXTERN int pam_sm_open_session(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
    (void)flags;
    return run_hook(pamh, HOOK_OPEN, argc, argv);
}

PAM_EXTERN int pam_sm_close_session(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
    (void)flags;
    return run_hook(pamh, HOOK_CLOSE, argc, argv);
}
