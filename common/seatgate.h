/*
 * libseatgate: the shared core of seatgate.
 *
 * Everything that decides or validates lives here, once: the decision model
 * (executed atomically in Redis by the embedded Lua scripts), the key schema,
 * identity validation, Redis URL parsing and connection, the config file.
 * The nginx module, the PAM module and seatctl only wrap it.
 *
 * This header has no nginx or PAM types. Functions that talk to Redis come in
 * two forms: a command builder plus a reply parser (for the nginx module's
 * non-blocking adapter) and a blocking call with timeouts (PAM, seatctl).
 */
#ifndef SEATGATE_H
#define SEATGATE_H

#include <stddef.h>
#include <stdint.h>

struct redisReply;
struct redisContext;

#define SG_VERSION "0.2.0"

/* ---- limits -------------------------------------------------------------- */
#define SG_IDENT_MAX 256   /* bytes in a user, group or session id */
#define SG_POOL_MAX 64     /* bytes in a pool or feature name */
#define SG_ERR_MAX 256     /* size of every error buffer */
#define SG_KEY_MAX (SG_POOL_MAX + SG_IDENT_MAX + 32)
#define SG_DEFAULT_REDIS "redis://127.0.0.1:6379"
#define SG_DEFAULT_CONF "/etc/security/seatgate.conf"
#define SG_DEFAULT_TIMEOUT_MS 1000
#define SG_DEFAULT_IDLE_S 900
#define SG_REVOKE_CHANNEL "seatgate:revoke"
/* the session a request without a session id holds (the web tier's): decide.lua uses it too */
#define SG_WEB_SESSION "-"

/* ---- decisions ------------------------------------------------------------ */
typedef enum {
    SG_GRANTED_NAMED = 0,
    SG_GRANTED_FLOATING,
    SG_GRANTED_FREE,
    SG_DENIED_UNASSIGNED,
    SG_DENIED_EXHAUSTED,
    SG_DENIED_EXCLUDED,
    SG_DENIED_FEATURE,
    SG_DENIED_MULTIPLEXING,
    SG_DENIED_DISABLED,
    SG_ERROR_BACKEND,
    SG_RESULT_COUNT
} sg_result;

typedef enum { SG_SEAT_NONE = 0, SG_SEAT_NAMED, SG_SEAT_FLOATING, SG_SEAT_FREE } sg_seat;

typedef enum { SG_OP_CHECK = 0, SG_OP_ACQUIRE } sg_op;

/* What a caller asks. Strings are borrowed; NULL or "" means absent. */
typedef struct {
    sg_op op;
    const char *pool;
    const char *user;         /* the authenticated identity */
    const char *on_behalf_of; /* human a service account acts for */
    const char *feature;      /* required exclusive module */
    const char *session;      /* session id; NULL = the user's default lease */
    const char *via;          /* "nginx", "pam", "cli" */
    const char *host;         /* host name for audit and session leases */
    const char *client;       /* client address for audit */
    long pid;                 /* process holding the session (PAM), 0 if none */
    unsigned long long pstart; /* that process's start time (sg_proc_start), 0 if none */
    long ttl_s;               /* lease asked for; 0 = the pool's idle timeout. The pool's
                                 max_lease caps it. */
} sg_request;

/* What the core answers. Strings are owned by the struct (fixed buffers). */
typedef struct {
    sg_result result;
    sg_seat seat;
    char reason[64];        /* machine-readable reason, e.g. "all_floating_in_use" */
    char user[SG_IDENT_MAX + 1]; /* effective identity (the human for a service account) */
    long long in_use;       /* floating seats held after the decision */
    long long floating;     /* floating seats bought */
    long long capacity;     /* floating + overdraft */
    long long named;        /* named seats bought */
    long long expires_ms;   /* lease expiry (server time, ms since epoch); 0 if none */
    long long ttl_ms;       /* lease length granted */
    int overdraft;          /* 1 if this grant went into overdraft */
    long long now_ms;       /* server time of the decision (ms since epoch) */
    char err[SG_ERR_MAX];   /* set for SG_ERROR_BACKEND */
} sg_decision;

const char *sg_result_name(sg_result r);
int sg_result_parse(const char *s, sg_result *out); /* 0 ok, -1 unknown */
const char *sg_seat_name(sg_seat s);
int sg_result_granted(sg_result r);

/* ---- validation -------------------------------------------------------------
 * All return 0 when valid, else -1 with a one-line reason in err (may be NULL).
 */
int sg_valid_ident(const char *s, char *err, size_t errlen);   /* user, session */
int sg_valid_group(const char *s, char *err, size_t errlen);   /* ident minus , = */
/* A client address or host name as stored (audit, sessions): printable
 * ASCII without spaces, at most SG_TEXT_MAX bytes. sg_clean_text copies in
 * to out with every other byte as '?' and cuts it to size; 1 when it had to. */
#define SG_TEXT_MAX 255
int sg_clean_text(const char *in, char *out, size_t outlen);
int sg_valid_name(const char *s, char *err, size_t errlen);    /* pool, feature */

/* This host's name for audit entries and session leases ("localhost" if unknown). */
void sg_hostname(char *buf, size_t len);

/* "900", "90s", "15m", "2h", "1d" -> seconds, at most 365 days; -1 on error. */
long sg_parse_duration(const char *s);
/* The same with another upper bound (seconds). */
long sg_parse_duration_upto(const char *s, long max_s);
/* strict decimal integer in [min,max]; 0 ok, -1 error */
int sg_parse_long(const char *s, long min, long max, long *out);

/* ---- Redis URL --------------------------------------------------------------
 * redis://[user:password@]host:port[/db]
 * unix:///path/to/redis.sock[?db=N]
 * sentinel://host:port[,host:port...]/master-name
 * redis+cluster://[user[:password]@]host:port[,host:port...]   (seed nodes of a
 *     Redis Cluster, in sentinels[]; the client learns the slot map and
 *     follows MOVED and ASK)
 */
#define SG_SENTINELS_MAX 8
typedef enum { SG_URL_TCP = 0, SG_URL_UNIX, SG_URL_SENTINEL, SG_URL_CLUSTER } sg_url_kind;

typedef struct {
    char host[256];
    int port;
} sg_hostport;

typedef struct {
    sg_url_kind kind;
    char host[256]; /* tcp */
    int port;
    char path[256]; /* unix */
    char user[128]; /* ACL user, "" = default */
    char password[256];
    int db;
    sg_hostport sentinels[SG_SENTINELS_MAX]; /* sentinels, or a cluster's seed nodes */
    int nsentinels;
    char master[128];
} sg_redis_url;

int sg_url_parse(const char *url, sg_redis_url *out, char *err, size_t errlen);
/* The URL with the password replaced by "***", for logs. */
void sg_url_redacted(const sg_redis_url *u, char *buf, size_t len);

/* ---- blocking connection (PAM, seatctl) ----------------------------------- */
typedef struct sg_conn sg_conn;

/* Connects (following Sentinel), authenticates and selects the db; every
 * later command is bounded by timeout_ms. NULL on failure with err set. */
sg_conn *sg_conn_open(const sg_redis_url *url, int timeout_ms, char *err, size_t errlen);
/* As sg_conn_open, but budget_ms bounds the whole life of the connection:
 * connect, sentinel discovery, AUTH and every later command share it (PAM:
 * a login is never delayed past the timeout). */
sg_conn *sg_conn_open_bounded(const sg_redis_url *url, int budget_ms, char *err, size_t errlen);
/* A new budget for what is left of an operation: every later command of
 * the connection shares budget_ms from now (PAM: account then session). */
void sg_conn_set_budget(sg_conn *c, int budget_ms);
void sg_conn_close(sg_conn *c);
struct redisContext *sg_conn_ctx(sg_conn *c);
/* Runs one command; NULL on I/O error or timeout (err set). An error reply is
 * returned as a reply of type REDIS_REPLY_ERROR. Caller frees with freeReplyObject. */
struct redisReply *sg_conn_cmd(sg_conn *c, int argc, const char **argv, const size_t *argvlen,
                               char *err, size_t errlen);

/* Pipelining: queue commands, then read their replies in order (each read
 * bounded like sg_conn_cmd). append: 0 ok, -1 error. */
int sg_conn_append(sg_conn *c, int argc, const char **argv, const size_t *argvlen);
struct redisReply *sg_conn_reply(sg_conn *c, char *err, size_t errlen);
/* Redis Cluster slots: every key of pool P ("sg:{P}:...") is in slot
 * sg_pool_slot(P); sg_cmd_slot is the slot of a command's first key (-1: a
 * command without keys). */
int sg_pool_slot(const char *pool);
int sg_cmd_slot(int argc, const char **argv, const size_t *argvlen);
/* The per-command timeout the connection was opened with (ms). */
int sg_conn_timeout_ms(const sg_conn *c);

/* ---- Redis Cluster replies (the blocking client and nginx's share them) ---- */
/* "MOVED 3999 10.0.0.2:6381" or "ASK ...": 0 with *ask, *slot, host and
 * *port; -1 for anything else (or a node without an address). */
int sg_cluster_redirect(const char *msg, int *ask, int *slot, char *host, size_t hostlen,
                        int *port);
/* Each slot range of a CLUSTER SLOTS reply with its master: fn(ud, lo, hi,
 * host, hostlen, port), lo..hi within 0..16383; hostlen 0 means the node
 * that answered. -1 when r is not a slot map. */
typedef void (*sg_slots_fn)(void *ud, int lo, int hi, const char *host, size_t hostlen,
                            int port);
int sg_cluster_slots_each(const struct redisReply *r, sg_slots_fn fn, void *ud);

/* ---- scripts ------------------------------------------------------------- */
typedef enum {
    SG_SCRIPT_DECIDE = 0,
    SG_SCRIPT_RELEASE,
    SG_SCRIPT_POOL_COMMIT,
    SG_SCRIPT_POOL_DELETE,
    SG_SCRIPT_ASSIGN,
    SG_SCRIPT_USER_PUT,
    SG_SCRIPT_USER_APPLY,
    SG_SCRIPT_FSCK,
    SG_SCRIPT_USAGE,
    SG_SCRIPT_SCIM,
    SG_SCRIPT_COUNT
} sg_script;

const char *sg_script_body(sg_script s);
const char *sg_script_sha(sg_script s);
/* The same scripts as one Redis Function library (Redis >= 7): its source
 * for FUNCTION LOAD, its name (seatgate_<hash of the sources>) and each
 * script's function name for FCALL. */
const char *sg_script_fname(sg_script s);
const char *sg_library_body(void);
const char *sg_library_name(void);

/* How a script is called. FCALL runs the loaded library (its helpers are
 * built once, at FUNCTION LOAD: the cheapest call); where the library is
 * missing (not loaded yet, Redis 6, an ACL without +fcall) the call falls
 * back to EVALSHA, and on NOSCRIPT to EVAL, and remembers the miss for a
 * while so that later calls start at EVALSHA. */
#define SG_CALL_EVALSHA 0
#define SG_CALL_EVAL 1
#define SG_CALL_FCALL 2
/* The command (FCALL, EVAL, EVALSHA) and its first argument (function
 * name, body, SHA1) of script s called the way how. */
const char *sg_script_verb(int how);
const char *sg_script_ref(sg_script s, int how);
/* The way to try first: FCALL, or EVALSHA for a minute after a miss. */
int sg_script_call_first(void);
/* After reply r to a call made the way how: the way to send it again
 * (FCALL -> EVALSHA -> EVAL), or -1 when r is not a "script missing" error. */
int sg_script_call_next(const struct redisReply *r, int how);
/* Load the library (FUNCTION LOAD, on every master of a Cluster). 0 when
 * it is loaded, -1 with err (an ACL without FUNCTION LOAD: NOPERM). */
int sg_library_load(sg_conn *c, char *err, size_t errlen);
/* 1 when this build's library is loaded (on every master), 0 when not,
 * -1 with err. */
int sg_library_loaded(sg_conn *c, char *err, size_t errlen);
/* The seatgate function libraries of other builds (on every master),
 * counted into *count and deleted when fix: 0, or -1 (err set). Older
 * binaries that call one fall back to EVALSHA once it is gone. */
int sg_library_others(sg_conn *c, int fix, long *count, char *err, size_t errlen);
/* Whether sg_script_run may load a missing library (default on; seatctl
 * doctor without --fix turns it off: it only reports). */
void sg_library_autoload(int on);

/* A Redis command as an argv vector, built into an owned buffer. */
#define SG_CMD_ARGS 64
typedef struct {
    int argc;
    const char *argv[SG_CMD_ARGS];
    size_t argvlen[SG_CMD_ARGS];
    char buf[4096];
    size_t used;
} sg_cmd;

/* Build a decision called the way use_eval says (SG_CALL_EVALSHA, _EVAL,
 * _FCALL). The request must have been validated (sg_request_validate). */
int sg_request_validate(const sg_request *rq, char *err, size_t errlen);
int sg_decide_cmd(const sg_request *rq, int use_eval, sg_cmd *cmd);
/* Release: session NULL = every session of the user. */
int sg_release_cmd(const char *pool, const char *user, const char *session, const char *via,
                   const char *host, int use_eval, sg_cmd *cmd);
/* True when the reply is a NOSCRIPT error (see sg_script_call_next). */
int sg_reply_is_noscript(const struct redisReply *r);
/* The command that adds n requests of the free tier (nginx `seatgate off
 * pool=P`) to pool P's usage records, in the current bucket. */
int sg_usage_free_cmd(const char *pool, long n, int use_eval, sg_cmd *cmd);
/* Parse a decide script reply. Returns 0, or -1 with d->result = SG_ERROR_BACKEND. */
int sg_decision_parse(const struct redisReply *r, sg_decision *d);
/* Parse a release script reply: sessions ended, seat released (0|1). 0 ok, -1 malformed. */
int sg_release_parse(const struct redisReply *r, long *sessions, long *seat);
/* Scripts reply with flat name/value arrays: the value of one name, or NULL. */
const struct redisReply *sg_reply_field(const struct redisReply *r, const char *name);
long long sg_reply_ll(const struct redisReply *r, const char *name); /* 0 if absent */
const char *sg_reply_str(const struct redisReply *r, const char *name); /* NULL if absent */
/* The sentence a person is shown for a decision (PAM conversation, nginx
 * deny body): "all 3 floating seats of pool technicians are in use; try
 * again later". */
void sg_decision_message(const sg_decision *d, const char *pool, const char *feature, char *buf,
                         size_t len);
/* Fill d as an error_backend decision with the message. */
void sg_decision_error(sg_decision *d, const char *msg);

/* Blocking wrappers: FCALL, EVALSHA or EVAL (sg_script_call_next). */
int sg_decide(sg_conn *c, const sg_request *rq, sg_decision *d);
/* 0 nothing was held, 1 a session closed (the seat stays: other sessions or a
 * named seat), 2 the floating seat was released; -1 backend error, -2 bad input */
long sg_release(sg_conn *c, const char *pool, const char *user, const char *session,
                const char *via, const char *host, char *err, size_t errlen);

/* Generic script runner used by the admin functions. Where the library is
 * missing it loads it first (the admin role may; the others fall back). */
struct redisReply *sg_script_run(sg_conn *c, sg_script s, int nkeys, int argc, const char **argv,
                                 char *err, size_t errlen);

/* ---- keys ----------------------------------------------------------------
 * Every key of a pool carries the hash tag {POOL}, so a pool is one Cluster
 * slot. User names never appear in key names except after the tag (mux keys),
 * where they cannot change the slot.
 */
typedef enum {
    SG_K_CONF = 0, /* hash: the pool's settings (admin writes; decisions read) */
    SG_K_NAMED,    /* set: users holding named seats (admin writes) */
    SG_K_USERS,    /* hash: the pool's projection of user records (admin writes) */
    SG_K_LEASES,   /* zset: floating holder -> seat expiry (ms) */
    SG_K_SESS,     /* zset: user\0session -> session expiry (ms) */
    SG_K_SESSIDX,  /* zset (score 0): user\0session, for lexical ranges per user */
    SG_K_SESSINFO, /* hash: user\0session -> k=v fields (via, host, pid, ...) */
    SG_K_GCOUNT,   /* hash: group -> floating holders counted in it */
    SG_K_HG,       /* hash: floating holder -> ",groups," it is counted in */
    SG_K_FOLD,     /* hash: user\0obo -> the open window of folded denials */
    SG_K_AUDIT,    /* stream: the audit log, retained by time */
    SG_K_LASTUSED, /* hash: user -> last grant (ms) */
    SG_K_STATS,    /* hash: counters by result, peaks by hour */
    SG_K_EPOCH,    /* counter: admin changes of the pool */
    SG_K_COUNT
} sg_key;

/* The keys decide and release declare: these nine, then the mux key. */
#define SG_DECIDE_NKEYS 10
extern const sg_key sg_decide_keys[SG_DECIDE_NKEYS - 1];

int sg_keyname(sg_key k, const char *pool, char *buf, size_t len);
int sg_key_mux(const char *pool, const char *service_account, char *buf, size_t len);
/* Global keys share the hash tag {_} (no pool can be called "_"). */
#define SG_KEY_POOLS "sg:{_}:pools"       /* set of pool names */
#define SG_KEY_USERS "sg:{_}:users"       /* hash: the user registry */
#define SG_KEY_UVER "sg:{_}:uver"         /* counter: user record versions */
#define SG_KEY_DISABLED "sg:{_}:disabled" /* set: disabled users */
#define SG_KEY_SVC "sg:{_}:svc"           /* set: service accounts */
#define SG_KEY_GROUP_PREFIX "sg:{_}:grp:" /* set per group: its members */
#define SG_KEY_REGISTRY_AUDIT "sg:{_}:audit" /* stream: the registry's audit (pool "_") */
#define SG_KEY_HOST_PREFIX "sg:host:"     /* hash per host id: its PAM sessions */

#include "sg_csv.h"  /* CSV import, CSV quoting, RFC 3339 times */
#include "sg_host.h" /* host id, process start time */

/* ---- administration (seatctl; reap is used by PAM tools too) --------------- */
#define SG_LIST_MAX 64
typedef struct {
    char group[SG_IDENT_MAX + 1];
    long k;
} sg_group_k;

/* A change to a pool: only the fields named in set_mask change. */
typedef struct {
    char name[SG_POOL_MAX + 1];
    long named, floating, idle_s, max_lease_s, overdraft_pct, mux_limit, mux_window_s;
    long audit_retention_s, deny_fold_s;
    long usage_bucket_s, usage_retention_s;
    long long test_clock_ms; /* tests only: the pool's frozen time; 0 = off */
    char features[1024]; /* comma separated: replaces the list */
    char include[1024];  /* comma separated groups: replaces the list */
    char exclude[1024];
    char features_del[1024]; /* comma separated: removed from the list */
    char include_del[1024];
    char exclude_del[1024];
    sg_group_k reserve[SG_LIST_MAX]; /* set (merged); K=0 removes a reservation */
    int nreserve;
    sg_group_k cap[SG_LIST_MAX];     /* set (merged); K=0 is a cap of zero */
    int ncap;
    char reserve_del[1024]; /* comma separated groups whose rule goes */
    char cap_del[1024];
    unsigned set_mask;
} sg_pool;

enum {
    SG_PSET_NAMED = 1u << 0,
    SG_PSET_FLOATING = 1u << 1,
    SG_PSET_IDLE = 1u << 2,
    SG_PSET_FEATURES = 1u << 3,
    SG_PSET_RESERVE = 1u << 4, /* reserve[] and/or reserve_del */
    SG_PSET_CAP = 1u << 5,     /* cap[] and/or cap_del */
    SG_PSET_INCLUDE = 1u << 6,
    SG_PSET_EXCLUDE = 1u << 7,
    SG_PSET_OVERDRAFT = 1u << 8,
    SG_PSET_MUX_LIMIT = 1u << 9,
    SG_PSET_MUX_WINDOW = 1u << 10,
    SG_PSET_MAX_LEASE = 1u << 11,
    SG_PSET_AUDIT_RETENTION = 1u << 12,
    SG_PSET_DENY_FOLD = 1u << 13,
    SG_PSET_FEATURES_DEL = 1u << 14,
    SG_PSET_INCLUDE_DEL = 1u << 15,
    SG_PSET_EXCLUDE_DEL = 1u << 16,
    SG_PSET_USAGE_BUCKET = 1u << 17,
    SG_PSET_USAGE_RETENTION = 1u << 18,
    SG_PSET_TEST_CLOCK = 1u << 19,
};

/* Return codes of the admin calls */
#define SG_OK 0
#define SG_EDENIED 1 /* refused by a rule (e.g. more users than named seats) */
#define SG_EINPUT 2  /* bad input or unknown pool; nothing changed */
#define SG_EBACKEND 3

typedef struct {
    char name[SG_POOL_MAX + 1];
    long named, floating, idle_s, max_lease_s, overdraft_pct, mux_limit, mux_window_s;
    long audit_retention_s, deny_fold_s;
    long usage_bucket_s, usage_retention_s;
    long long test_clock_ms;
    long capacity;
    char features[1024];
    char reserve[1024]; /* "g=k,g2=k" */
    char cap[1024];
    char include[1024];
    char exclude[1024];
    char state[16];   /* "ready", or "creating" while a new pool is projected */
    long long epoch;
    long assigned;    /* users with a named seat */
    long in_use;      /* live floating leases */
    long sessions;    /* live sessions */
} sg_pool_info;

/* What a pool change did beyond the settings: users who lost a seat to a
 * shrink (malloc'd vectors). Free with sg_pool_outcome_free. */
typedef struct {
    int created;
    char **revoked;     /* floating seats taken back (reason pool_shrunk) */
    size_t nrevoked;
    char **unassigned;  /* named seats taken back (least recently used first) */
    size_t nunassigned;
    long projected;     /* user records projected into the pool for its rules */
} sg_pool_outcome;
void sg_pool_outcome_free(sg_pool_outcome *o);

int sg_pool_set(sg_conn *c, const sg_pool *p, const char *via, sg_pool_outcome *out, char *err,
                size_t errlen);
int sg_pool_get(sg_conn *c, const char *pool, sg_pool_info *out, char *err, size_t errlen);
/* names of every pool, sorted; caller frees with sg_strv_free */
int sg_pool_list(sg_conn *c, char ***names, size_t *n, char *err, size_t errlen);
int sg_pool_delete(sg_conn *c, const char *pool, const char *via, char *err, size_t errlen);
void sg_strv_free(char **v, size_t n);

/* assign=1 assigns, 0 unassigns. Atomic over the list: either all or nothing;
 * no limit on n. converted (may be NULL): users whose floating seat went back
 * to the pool because they now hold a named one. */
int sg_assign(sg_conn *c, const char *pool, int assign, const char **users, size_t n,
              const char *via, long *converted, char *err, size_t errlen);

typedef struct {
    const char *groups; /* comma separated, NULL = unchanged, "" = none */
    int service;        /* -1 unchanged, 0/1 */
    int disabled;       /* -1 unchanged, 0/1 */
} sg_user_change;

int sg_user_set(sg_conn *c, const char *user, const sg_user_change *ch, const char *via,
                char *err, size_t errlen);

/* Bulk: every row is a whole record (groups replaced). Rows must have been
 * validated (sg_user_csv_parse does). changed/unchanged may be NULL. */
int sg_user_import(sg_conn *c, const sg_user_row *rows, size_t n, const char *via,
                   long *changed, long *unchanged, char *err, size_t errlen);

typedef struct {
    char pool[SG_POOL_MAX + 1];
    int named;              /* holds a named seat */
    long long lease_ms;     /* floating seat expiry, 0 if none */
    long sessions;          /* live sessions */
    long long last_used_ms; /* last grant in the pool */
    char projected[1200];   /* the pool's copy: "disabled,service_account,groups" or "" */
} sg_user_pool;

typedef struct {
    char user[SG_IDENT_MAX + 1];
    int registered, disabled, service;
    long long version;
    char groups[1100]; /* comma separated */
    sg_user_pool *pools;
    size_t npools;
} sg_user_info;

/* One user's record and what the user holds in every pool; free with sg_user_info_free. */
int sg_user_get(sg_conn *c, const char *user, sg_user_info *out, char *err, size_t errlen);
void sg_user_info_free(sg_user_info *u);

typedef struct {
    char user[SG_IDENT_MAX + 1];    /* the seat holder (the human for a service account) */
    char account[SG_IDENT_MAX + 1]; /* the identity that opened the session */
    char session[SG_IDENT_MAX + 1];
    char via[16];
    char host[256];
    long pid;
    unsigned long long pstart;
    long long started_ms, expires_ms;
    char obo[SG_IDENT_MAX + 1];
    char client[64];
    long ttl_s; /* lease length the session was granted */
} sg_session_info;

typedef struct {
    char user[SG_IDENT_MAX + 1];
    char kind[16]; /* "named" or "floating" */
    long long expires_ms; /* floating: lease expiry */
    long long last_used_ms;
} sg_holder;

/* Holders of a pool (named assignments and live floating leases); pipelined
 * reads, so 100,000 holders cost a few round trips. */
int sg_holders(sg_conn *c, const char *pool, sg_holder **out, size_t *n, char *err,
               size_t errlen);
int sg_sessions(sg_conn *c, const char *pool, sg_session_info **out, size_t *n, char *err,
                size_t errlen);
long long sg_server_time_ms(sg_conn *c);
/* The time of a pool: its test clock (seatctl pool set --test-clock, for
 * tests) when set, else the server's. */
long long sg_pool_now_ms(sg_conn *c, const char *pool);

/* ---- per-host session index (PAM) ----------------------------------------
 * sg:host:<host id> maps "pool\tuser\tsession" to the process that holds the
 * session (pid, start time, boot id) and its lease, so reap on a host reads
 * only its own sessions. PAM records a session after it was granted and
 * forgets it after it was released. */
typedef struct {
    char pool[SG_POOL_MAX + 1];
    char user[SG_IDENT_MAX + 1];
    char session[SG_IDENT_MAX + 1];
    long pid;
    unsigned long long pstart;
    char boot[40];
    long lease_s;
    long long renewed_ms;
} sg_host_session;

int sg_host_track(sg_conn *c, const char *host_id, const sg_host_session *s, char *err,
                  size_t errlen);
int sg_host_untrack(sg_conn *c, const char *host_id, const char *pool, const char *user,
                    const char *session, char *err, size_t errlen);

/* A PAM session: the acquire of rq (op acquire, with a session) and this
 * host's index entry for it go out in one write; after a denial the entry
 * is removed again, after a grant of another lease length corrected. As
 * sg_decide: 0 with d filled, -1 with d->err on failure. */
int sg_session_open(sg_conn *c, const sg_request *rq, const char *host_id, const char *boot,
                    sg_decision *d);
/* Its end: the release and the removal of the index entry in one write.
 * As sg_release: 2 seat released, 1 session closed (seat kept), 0 nothing
 * held, -1 Redis failure, -2 bad input; err set on failure. */
long sg_session_close(sg_conn *c, const char *pool, const char *user, const char *session,
                      const char *via, const char *host, const char *host_id, char *err,
                      size_t errlen);

/* Reap on this host (host_id: sg_host_id): release the sessions whose process
 * is gone or is now another process (start time or boot differs), and renew
 * those whose process lives and whose lease is past half its length. fn (may
 * be NULL) is told of each session released (renewed=0) or renewed (1). */
typedef void (*sg_reap_fn)(void *ud, const sg_host_session *s, int renewed);
int sg_reap(sg_conn *c, const char *host_id, const char *host, sg_reap_fn fn, void *ud,
            long *reaped, long *renewed, char *err, size_t errlen);

/* ---- the license report (seatctl report) -----------------------------------
 * What a pool's usage records say over [since, until), and the cheapest mix
 * of named and floating seats that would have served that usage with at most
 * the given share of denied time. See common/report.c for the model. */
typedef struct {
    char reason[64];
    long count;
} sg_report_reason;

typedef struct {
    long long day_ms;     /* 00:00 UTC */
    long peak, p95;       /* floating seats in use (sessions of floating holders) */
    double avg;           /* time-weighted */
    long users;           /* distinct users with a session */
    long named_users;     /* of them with a named seat */
    long denials, overdraft, free_requests;
} sg_report_day;

typedef struct {
    long long day_ms;
    char account[SG_IDENT_MAX + 1]; /* the service account */
    long nhumans;                   /* distinct people it acted for that day */
    char **humans;                  /* sorted */
    long without_obo;               /* requests without an on-behalf-of id */
    int over_limit;                 /* nhumans > the pool's --mux-limit */
} sg_report_mux;

typedef struct {
    char user[SG_IDENT_MAX + 1];
    long long lastused; /* ms; 0 = never */
} sg_report_idle;

typedef struct {
    char pool[SG_POOL_MAX + 1];
    long long since_ms, until_ms, now_ms;
    long bucket_s, nbuckets;
    long named, floating, overdraft_pct, assigned, mux_limit;
    long users_seen;
    sg_report_day *days;
    size_t ndays;
    sg_report_reason *reasons; /* most first */
    size_t nreasons;
    long denials_total, denials_by_hour[24], overdraft_days, free_total, peak_floating;
    sg_report_idle *idle; /* named seats unused for 30 days or more */
    size_t nidle;
    sg_report_mux *mux;   /* findings only */
    size_t nmux;
    double price_named, price_floating, budget;
    long rec_named, rec_floating;
    double rec_denied_share; /* of the range's time, with the recommended mix */
    double now_denied_share; /* with today's seats and assignments */
    double cost_now, cost_rec;
} sg_report;

typedef struct {
    long long since_ms, until_ms; /* 0: 30 days before until; 0: now */
    double price_named, price_floating;
    double budget;                /* share of time (0..1) */
} sg_report_query;

int sg_report_pool(sg_conn *c, const char *pool, const sg_report_query *q, sg_report *out,
                   char *err, size_t errlen);
void sg_report_free(sg_report *r);

/* ---- identity sync (seatctl sync) ------------------------------------------
 * A map file (docs/sync.md) turns the records of an HR export (CSV) into
 * user records (groups, disabled, service account) and named seats. The
 * plan is made against Redis first; it is applied only when whole. */
#define SG_KEY_SYNCED "sg:{_}:synced" /* set: the people the sync manages */

typedef struct {
    char name[64];
    char csv[128];  /* the CSV column */
    char scim[128]; /* the SCIM attribute */
} sg_sync_attr;

typedef struct {
    char attr[64];
    char values[1024]; /* ",v1,v2," lowered */
} sg_sync_cond;

typedef struct {
    char name[64];
    sg_sync_cond *conds; /* all must hold */
    size_t nconds;
    char groups[1024];   /* ",g1,g2," */
    char named[1024];    /* ",pool1,pool2," */
    int service;
    long line;
} sg_sync_rule;

typedef struct {
    char user_col[128], active_col[128], service_col[128];
    char active_values[1024], service_values[1024]; /* ",v1,v2," lowered */
    sg_sync_attr *attrs;
    size_t nattrs;
    sg_sync_rule *rules;
    size_t nrules;
} sg_sync_map;

int sg_sync_map_parse(const char *buf, size_t len, sg_sync_map *m, char *err, size_t errlen);
void sg_sync_map_free(sg_sync_map *m);

typedef struct {
    char user[SG_IDENT_MAX + 1];
    int active, service;
    char **vals; /* one per map attribute, lowered ("a;b" for a list) */
    size_t nvals;
    long line;
} sg_sync_person;

/* The people of a CSV export; errors "line L, field F: reason". */
int sg_sync_people_csv(const sg_sync_map *m, const char *buf, size_t len, sg_sync_person **out,
                       size_t *n, char *err, size_t errlen);
/* The people of SCIM 2.0 User resources: a ListResponse (Resources), one
 * resource, or one resource a line. userName is the user, active (true,
 * false; absent: true) the status; an attribute is read from the map's
 * "scim NAME = ATTRIBUTE" (else an attribute of its own name): a core
 * attribute, one of the enterprise extension, or groups (display names).
 * Errors: "resource N, field F: reason". */
int sg_sync_people_scim(const sg_sync_map *m, const char *buf, size_t len, sg_sync_person **out,
                        size_t *n, char *err, size_t errlen);
void sg_sync_people_free(sg_sync_person *p, size_t n);
/* every "if" of rule r holds for person p */
int sg_sync_rule_matches(const sg_sync_map *m, const sg_sync_rule *r, const sg_sync_person *p);
/* What the map's rules say about person p: the user record (row), the rules
 * that matched ("r1,r2", cut with "..."), and, when named is given, the
 * pools whose named seats those rules give (",a,b,"; none when inactive).
 * -1 with err when the groups would not fit a user record (as user import:
 * SG_CSV_GROUPS_MAX groups, SG_CSV_GROUPS_LEN bytes) or the pools not fit
 * named: refused, never cut. */
int sg_sync_person_row(const sg_sync_map *m, const sg_sync_person *p, sg_user_row *row,
                       char *rules, size_t rlen, char *named, size_t nlen, char *err,
                       size_t errlen);
/* item in a ",a,b," list */
int sg_sync_in_list(const char *list, const char *item);

typedef struct {
    char user[SG_IDENT_MAX + 1];
    char rules[256];    /* the rules that matched, "r1,r2" (cut with "...") */
    int record;         /* the user record changes */
    int managed;        /* an earlier sync managed this person already */
    int existed, was_disabled, was_service;
    char *old_groups;   /* the groups before ("g1,g2"), malloc'd */
    char *named;        /* ",p1,p2,": the pools whose named seats the rules give,
                           malloc'd; NULL for none */
} sg_sync_change;

typedef struct {
    char pool[SG_POOL_MAX + 1];
    long bought, before, after;
    char **assign, **unassign;
    size_t nassign, nunassign;
    int took_back, gave; /* sg_sync_apply did this pool's unassign, assign (each
                          * one script: all or nothing) */
} sg_sync_pool;

typedef struct {
    sg_user_row *rows;       /* every person's record as the map wants it */
    sg_sync_change *changes; /* and what changes, the same order */
    size_t nrows, nrecords;  /* nrecords: records that change */
    sg_sync_pool *pools;     /* named seats of each pool a rule names */
    size_t npools;
    char **disable;          /* --full: managed people absent from the export, */
    char **disable_was;      /* not disabled yet, and their records now */
    size_t ndisable;
} sg_sync_plan;

/* What sg_sync_apply has done, stage by stage (it stops at the first
 * failure, and running the sync again finishes the rest). The records go in
 * batches, so a records stage that stopped may be in part; the named seats
 * go one pool at a time, each pool whole (sg_sync_pool.took_back, .gave). */
#define SG_SYNC_RECORDS 1  /* user records, the --full disables included */
#define SG_SYNC_UNASSIGN 2 /* named seats taken back */
#define SG_SYNC_ASSIGN 4   /* named seats given */
#define SG_SYNC_ALL 7

/* SG_OK, SG_EDENIED (more named seats than bought; err says where), or an
 * error; nothing is written. */
int sg_sync_plan_make(sg_conn *c, const sg_sync_map *m, const sg_sync_person *people, size_t n,
                      int full, sg_sync_plan *pl, char *err, size_t errlen);
/* *done: the SG_SYNC_* stages applied, also when it fails part way. */
int sg_sync_apply(sg_conn *c, sg_sync_plan *pl, const char *via, int *done, char *err,
                  size_t errlen);
void sg_sync_plan_free(sg_sync_plan *pl);
/* The plan as a reviewable change log in the registry's audit stream (pool
 * "_"): one entry per change, the --full disables included, with who asked
 * (by), the rules (reason), before and after; ev "sync" for a change that
 * was applied (its stage in done, its pool's flag), else "sync_plan" (a dry
 * run: done 0); when a sync that was to apply (attempted) stopped, a change
 * it did not make has result "not_applied", and a record of the stage that
 * stopped "unknown" (its batches may have gone in part). */
int sg_sync_log(sg_conn *c, const sg_sync_plan *pl, int done, int attempted, const char *by,
                char *err, size_t errlen);

/* ---- the SCIM 2.0 endpoint (nginx seatgate_scim) ----------------------------
 * One request is a state machine: sg_scim_new answers at once (discovery
 * documents, bad input) or queues the first Redis commands; the caller (nginx) sends
 * the sg_scim_pending() commands (pipelined, any order of sending), gives
 * every reply to sg_scim_reply (NULL: the link failed), then calls
 * sg_scim_step for the next batch, until it returns 0: the answer is ready
 * (status, body, Location, ETag). The same map file as seatctl sync turns a
 * User resource into the user record and named seats; writes change the
 * record, the seats and the change log (ev "scim", by) and reach every pool
 * the record matters to (revoking cached grants and held seats). */
typedef struct sg_scim sg_scim;
typedef struct {
    const char *method; /* GET POST PUT PATCH DELETE */
    const char *path;   /* below the endpoint: "/Users", "/Users/ID", "/Schemas" ... */
    const char *query;  /* without '?', NULL: none */
    const char *body;
    size_t body_len;
    const char *base;   /* the endpoint's URL, for meta.location ("https://h/scim/v2") */
    const char *by;     /* who asked, for the change log */
    const char *host;   /* this host, for the audit */
    long long now_ms;
} sg_scim_request;

sg_scim *sg_scim_new(const sg_sync_map *m, const sg_scim_request *rq); /* NULL: no memory */
int sg_scim_pending(const sg_scim *s);
void sg_scim_command(const sg_scim *s, int i, int *argc, const char ***argv,
                     const size_t **argvlen);
void sg_scim_reply(sg_scim *s, int i, const struct redisReply *r);
int sg_scim_step(sg_scim *s);
int sg_scim_status(const sg_scim *s);
const char *sg_scim_body(const sg_scim *s, size_t *len); /* NULL: no body (204) */
const char *sg_scim_location(const sg_scim *s);           /* 201's Location, or NULL */
const char *sg_scim_etag(const sg_scim *s);               /* or NULL */
const char *sg_scim_log(const sg_scim *s);                /* for the error log, or NULL */
void sg_scim_free(sg_scim *s);

/* ---- doctor -----------------------------------------------------------------
 * Finds drift between the registry, the pools' projections, the pools index,
 * the seat bookkeeping and the host indexes; fix=1 repairs it (idempotent).
 * fn is told of each finding (what: a short kind, detail: a sentence). */
typedef void (*sg_doctor_fn)(void *ud, const char *pool, const char *what, const char *detail,
                             long count);
int sg_doctor(sg_conn *c, int fix, sg_doctor_fn fn, void *ud, long *findings, char *err,
              size_t errlen);

/* ---- audit export -------------------------------------------------------- */
#define SG_AUDIT_FIELDS 17
typedef struct {
    char id[48];      /* stream id: when it was written */
    long long at_ms;  /* when it happened */
    const char *pool;
    /* name/value pairs as stored (ev, at, pool, user, obo, via, host, pid,
     * client, result, reason, seat, session, count, since) */
    const char *name[SG_AUDIT_FIELDS];
    const char *value[SG_AUDIT_FIELDS];
    int nfields;
} sg_audit_entry;

/* 0 goes on, non-zero stops */
typedef int (*sg_audit_fn)(void *ud, const sg_audit_entry *e);
typedef struct {
    const char *pool;  /* NULL: every pool */
    const char *user;  /* NULL: everyone (matches user or obo) */
    long long since_ms, until_ms; /* 0: open */
    int follow;        /* after the history, wait for new entries (XREAD BLOCK) */
} sg_audit_query;

/* Calls fn for each entry in time order (merged across pools). */
int sg_audit_read(sg_conn *c, const sg_audit_query *q, sg_audit_fn fn, void *ud, char *err,
                  size_t errlen);
/* The value of field name of an entry ("" when it has none). */
const char *sg_audit_field(const sg_audit_entry *e, const char *name);

/* ---- explain: why a person has what they have --------------------------------
 * The user record and the seats in every pool (sg_user_get), the sync or
 * SCIM change that set the record and the one that gave each named seat,
 * and the person's last SG_EXPLAIN_LAST events (grants, denials, releases,
 * assignments, record changes), all from the audit log. */
#define SG_EXPLAIN_LAST 10
#define SG_EXPLAIN_KEEP 12
typedef struct {
    long long at_ms; /* 0: none */
    /* ev pool user obo via host result reason seat by before after (owned;
     * "" when the entry has none) */
    char *field[SG_EXPLAIN_KEEP];
} sg_explain_event;
extern const char *const sg_explain_fields[SG_EXPLAIN_KEEP];

typedef struct {
    sg_user_info user;
    sg_explain_event record;  /* the sync that set the record (at_ms 0: none) */
    sg_explain_event *named;  /* per user.pools[i]: the sync that gave its named seat */
    sg_explain_event last[SG_EXPLAIN_LAST]; /* oldest first */
    size_t nlast;
} sg_explain;
int sg_explain_get(sg_conn *c, const char *user, sg_explain *x, char *err, size_t errlen);
void sg_explain_free(sg_explain *x);
/* field name of an event ("" when absent) */
const char *sg_explain_field(const sg_explain_event *ev, const char *name);

/* ---- config file ---------------------------------------------------------
 * key = value lines, '#' comments. Shared by PAM, seatctl and the demo.
 */
typedef enum { SG_LOG_ERR = 0, SG_LOG_WARN, SG_LOG_INFO, SG_LOG_DEBUG } sg_log_level;
typedef void (*sg_log_fn)(void *ud, sg_log_level lvl, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

typedef struct {
    char redis[1024];
    char pool[SG_POOL_MAX + 1];
    char feature[SG_POOL_MAX + 1];
    int fail_open;    /* 0 closed (default), 1 open */
    int timeout_ms;
    char exempt_group[SG_IDENT_MAX + 1];
    int exempt_root;  /* root passes without a seat (default 1) */
    int debug;
    long lease_s;     /* PAM session lease; 0 = pool idle timeout */
    char host_id[65]; /* this host's id for sessions and reap; "" = /etc/machine-id */
    unsigned seen;    /* which keys were set */
} sg_config;

void sg_config_init(sg_config *cfg);
/* Applies one "key=value" (or bare "debug") setting. 0 ok, -1 error (logged). */
int sg_config_apply(sg_config *cfg, const char *kv, sg_log_fn log, void *ud);
/* Reads a file. missing_ok: a missing file is not an error. 0 ok, -1 error.
 * A file not owned by root (or the caller) or writable by group or others,
 * or in such a directory, is refused whole. Otherwise every good line is
 * applied, also after a bad one (reported, and the result is -1), so a
 * caller can still honour what must hold in a broken file (exemptions). */
int sg_config_read(sg_config *cfg, const char *path, int missing_ok, sg_log_fn log, void *ud);

#endif
