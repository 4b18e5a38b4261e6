/* make bench only: the least a Redis-backed PAM module can do for a login,
 * to print beside pam_seatgate.so (tests/bench/run-pam.sh). It keeps the
 * shape of a seat-taking login and drops everything else: no config, no
 * identity, no decision logic. Each hook that talks to Redis sends one
 * EVALSHA and reads the reply: of sha= (a trivial script, `return 1`), or
 * per hook of check=, open= and close= (run-pam.sh passes the least each
 * decision can send, the commands of bench_model.py's LEAST rows).
 *
 *   account  required pam_floor.so sock=PATH|port=N sha=SHA [skip=account]
 *   session  required pam_floor.so sock=PATH|port=N sha=SHA
 *
 * Account and session open share one connection, kept in the handle and
 * closed after open; close connects again (a logout comes hours later, on a
 * connection of its own), as pam_seatgate.so does. With "skip=account" the
 * account hook sends nothing: a design that only takes the seat at open and
 * frees it at close (two round trips, the least a seat can cost).
 */
#include <hiredis/hiredis.h>
#include <stdlib.h>
#include <string.h>

#define PAM_SM_ACCOUNT
#define PAM_SM_SESSION
#include <security/pam_modules.h>

#define DATA "pam_floor_conn"

typedef struct {
    const char *sock, *sha, *check, *open, *close;
    int port, skip_account;
} args_t;

static void parse(int argc, const char **argv, args_t *a)
{
    memset(a, 0, sizeof(*a));
    for (int i = 0; i < argc; i++) {
        if (strncmp(argv[i], "sock=", 5) == 0)
            a->sock = argv[i] + 5;
        else if (strncmp(argv[i], "port=", 5) == 0)
            a->port = atoi(argv[i] + 5);
        else if (strncmp(argv[i], "sha=", 4) == 0)
            a->sha = argv[i] + 4;
        else if (strncmp(argv[i], "check=", 6) == 0)
            a->check = argv[i] + 6;
        else if (strncmp(argv[i], "open=", 5) == 0)
            a->open = argv[i] + 5;
        else if (strncmp(argv[i], "close=", 6) == 0)
            a->close = argv[i] + 6;
        else if (strcmp(argv[i], "skip=account") == 0)
            a->skip_account = 1;
    }
}

static redisContext *connect_to(const args_t *a)
{
    struct timeval tv = {1, 0};
    redisContext *c = a->sock ? redisConnectUnixWithTimeout(a->sock, tv)
                              : redisConnectWithTimeout("127.0.0.1", a->port, tv);
    if (c == NULL || c->err) {
        if (c)
            redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, tv);
    return c;
}

static int call(redisContext *c, const args_t *a, const char *sha)
{
    sha = sha ? sha : a->sha;
    redisReply *r = redisCommand(c, "EVALSHA %s 0", sha ? sha : "");
    int ok = r != NULL && r->type == REDIS_REPLY_INTEGER;
    freeReplyObject(r);
    return ok ? PAM_SUCCESS : PAM_SERVICE_ERR;
}

static void conn_free(pam_handle_t *pamh, void *data, int status)
{
    (void)pamh;
    (void)status;
    redisFree(data);
}

PAM_EXTERN int pam_sm_acct_mgmt(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
    (void)flags;
    args_t a;
    parse(argc, argv, &a);
    if (a.skip_account)
        return PAM_SUCCESS;
    redisContext *c = connect_to(&a);
    if (c == NULL)
        return PAM_SERVICE_ERR;
    int rc = call(c, &a, a.check);
    if (pam_set_data(pamh, DATA, c, conn_free) != PAM_SUCCESS)
        redisFree(c);
    return rc;
}

PAM_EXTERN int pam_sm_open_session(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
    (void)flags;
    args_t a;
    parse(argc, argv, &a);
    const void *d = NULL;
    redisContext *c = NULL;
    if (pam_get_data(pamh, DATA, &d) == PAM_SUCCESS && d)
        c = (redisContext *)d;
    int own = c == NULL;
    if (own && (c = connect_to(&a)) == NULL)
        return PAM_SESSION_ERR;
    int rc = call(c, &a, a.open);
    if (own)
        redisFree(c);
    else
        pam_set_data(pamh, DATA, NULL, NULL); /* frees it: no idle connection */
    return rc == PAM_SUCCESS ? PAM_SUCCESS : PAM_SESSION_ERR;
}

PAM_EXTERN int pam_sm_close_session(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
    (void)pamh;
    (void)flags;
    args_t a;
    parse(argc, argv, &a);
    redisContext *c = connect_to(&a);
    if (c == NULL)
        return PAM_SESSION_ERR;
    int rc = call(c, &a, a.close);
    redisFree(c);
    return rc == PAM_SUCCESS ? PAM_SUCCESS : PAM_SESSION_ERR;
}
