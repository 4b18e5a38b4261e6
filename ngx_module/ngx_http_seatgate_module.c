
/*
 * ngx_http_seatgate_module: license seats for nginx locations.
 *
 * A thin wrapper of libseatgate (common/): the module evaluates the
 * identity, asks the core's decision script in Redis through the
 * non-blocking adapter (ngx_http_seatgate_redis.c), caches grants in a
 * shared memory zone, and answers denials.  Every seat rule lives in the
 * core's Lua scripts; the commands are built with sg_decide_cmd() and
 * sg_release_cmd() and the replies parsed with sg_decision_parse().
 *
 * Phase.  The check runs in the PRECONTENT phase, not in the ACCESS phase:
 *
 *   - with "satisfy any" the access phase ends at the first handler that
 *     returns NGX_OK (ngx_http_core_access_phase() jumps to the next phase),
 *     so a seat handler in the access phase would either be skipped after
 *     auth_basic passed, or, running first, let a request with a seat but no
 *     valid password through;
 *   - access handlers run in reverse order of registration, and a dynamic
 *     module is registered after the static ones, so in the access phase the
 *     seat check would run before auth_basic/auth_request and take a seat
 *     for a request whose password is wrong;
 *   - PRECONTENT starts only after POST_ACCESS has let the request through,
 *     i.e. after every access handler (auth_basic, auth_request, a JWT or
 *     Lua access handler, allow/deny) has passed under either satisfy mode,
 *     whatever the module load order.  A request that fails authentication
 *     never reaches this module: it never takes nor renews a seat.
 *
 * Among PRECONTENT handlers this one runs first (last registered), before
 * try_files and mirror, so nothing is mirrored for a denied request.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <time.h>

#include "ngx_http_seatgate_redis.h"


#define NGX_HTTP_SEATGATE_NONE        0
#define NGX_HTTP_SEATGATE_OFF         1
#define NGX_HTTP_SEATGATE_ON          2

#define NGX_HTTP_SEATGATE_FAIL_CLOSED 0
#define NGX_HTTP_SEATGATE_FAIL_OPEN   1

#define NGX_HTTP_SEATGATE_NEW         0
#define NGX_HTTP_SEATGATE_WAITING     1
#define NGX_HTTP_SEATGATE_DONE        2

#define NGX_HTTP_SEATGATE_DECIDE      0
#define NGX_HTTP_SEATGATE_RENEW       1
#define NGX_HTTP_SEATGATE_RELEASE     2
#define NGX_HTTP_SEATGATE_PROBE       3

/* without a live revocation subscription a cached grant lives this long */
#define NGX_HTTP_SEATGATE_UNCOVERED   1000
/* the subscription is confirmed every heartbeat; silent longer: not live */
#define NGX_HTTP_SEATGATE_HEARTBEAT   400
#define NGX_HTTP_SEATGATE_SUB_SILENT  1200

#define NGX_HTTP_SEATGATE_POOLS_MAX   256
#define NGX_HTTP_SEATGATE_LATENCIES   12
#define NGX_HTTP_SEATGATE_EVICT_MAX   64
#define NGX_HTTP_SEATGATE_POOL_GENS   256        /* a power of 2 */
#define NGX_HTTP_SEATGATE_FLIGHTS     256        /* a power of 2 */
#define NGX_HTTP_SEATGATE_STATS_SIZE  (256 * 1024)
#define NGX_HTTP_SEATGATE_KEY_MAX     (2 * SG_POOL_MAX + 2 * SG_IDENT_MAX + 4)

/* a user name that only ever runs the read-only "check" (metrics) */
#define NGX_HTTP_SEATGATE_PROBE_USER  "seatgate-metrics-probe"


typedef struct {
    ngx_str_t                        name;
    ngx_int_t                        slot;      /* in the stats zone */
} ngx_http_seatgate_pool_t;


typedef struct {
    u_char                           name[SG_POOL_MAX + 1];
    ngx_atomic_t                     in_use;
    ngx_atomic_t                     floating;
    ngx_atomic_t                     capacity;
    ngx_atomic_t                     named;
    ngx_atomic_t                     known;
    ngx_atomic_t                     decisions[SG_RESULT_COUNT];
} ngx_http_seatgate_pool_stats_t;


typedef struct {
    ngx_atomic_t                     decisions[SG_RESULT_COUNT];
    ngx_atomic_t                     cache_hits;
    ngx_atomic_t                     cache_misses;
    ngx_atomic_t                     renewals;
    ngx_atomic_t                     revocations;
    ngx_atomic_t                     shared_flights; /* misses that shared a call */
    ngx_atomic_t                     releases;
    ngx_atomic_t                     redis_commands;
    ngx_atomic_t                     redis_errors;
    ngx_atomic_t                     redis_timeouts;
    ngx_atomic_t                     latency[NGX_HTTP_SEATGATE_LATENCIES + 1];
    ngx_atomic_t                     latency_sum_us;
    ngx_atomic_t                     latency_count;
    ngx_atomic_t                     npools;
    ngx_http_seatgate_pool_stats_t   pools[NGX_HTTP_SEATGATE_POOLS_MAX];
} ngx_http_seatgate_stats_t;


/*
 * Revocation generations: a counter per pool (and per pool for freed seats)
 * and per hashed (pool, user) slot. A cached decision records the counters
 * of its pool and of its two users (the identity and the effective user) as
 * they were when Redis was asked; a revocation only increments a counter
 * (O(1), no lock, no walk), and an entry whose counters moved is stale. A
 * hash collision only makes an unrelated entry ask Redis again.
 */
typedef struct {
    uint32_t                         slot[3];   /* pool, identity, effective */
    uint32_t                         gen[4];    /* the same, then freed seats */
} ngx_http_seatgate_gens_t;


/* a cached decision; the key is "POOL\0USER\0ON_BEHALF_OF\0FEATURE" */
typedef struct {
    u_char                           color;
    u_char                           result;
    u_char                           seat;
    u_char                           negative;  /* a denial, cached briefly */
    u_short                          len;       /* key */
    u_short                          eff_len;   /* effective user */
    u_char                           reason_len;
    ngx_queue_t                      queue;
    ngx_msec_t                       confirmed; /* when Redis was asked */
    ngx_msec_t                       expires;
    ngx_msec_t                       refresh;
    ngx_msec_t                       refreshing;
    ngx_http_seatgate_gens_t         gens;
    u_char                           data[1];   /* key, effective, reason */
} ngx_http_seatgate_node_t;


typedef struct {
    ngx_rbtree_t                     rbtree;
    ngx_rbtree_node_t                sentinel;
    ngx_queue_t                      queue;
    ngx_uint_t                       user_mask;    /* user slots - 1 */
    ngx_atomic_t                     pool_gen[NGX_HTTP_SEATGATE_POOL_GENS];
    ngx_atomic_t                     free_gen[NGX_HTTP_SEATGATE_POOL_GENS];
    ngx_atomic_t                     user_gen[1];  /* user_mask + 1 of them */
} ngx_http_seatgate_shctx_t;


typedef struct {
    ngx_http_seatgate_shctx_t       *sh;
    ngx_slab_pool_t                 *shpool;
    ngx_shm_zone_t                  *shm_zone;
    ngx_msec_t                       ttl;
    ngx_msec_t                       deny_ttl;      /* 0: denials not cached */
    ngx_msec_t                       full_logged;   /* this worker's */
    ngx_uint_t                       full_misses;
} ngx_http_seatgate_zone_t;


typedef struct {
    ngx_http_seatgate_redis_conf_t  *redis;
    ngx_uint_t                       metrics;    /* a seatgate_metrics */
    ngx_shm_zone_t                  *zone;       /* decision cache */
    ngx_shm_zone_t                  *stats_zone;
    ngx_http_seatgate_stats_t       *stats;
    ngx_array_t                      pools;      /* pool pointers */
} ngx_http_seatgate_main_conf_t;


typedef struct {
    ngx_int_t                        mode;
    ngx_str_t                        pool;
    ngx_http_seatgate_pool_t        *pool_stats;
    ngx_http_complex_value_t        *user;
    ngx_flag_t                       user_default;   /* $remote_user, not set */
    ngx_http_complex_value_t        *on_behalf_of;
    ngx_str_t                        feature;
    ngx_uint_t                       fail;
    time_t                           retry_after;
    ngx_str_t                        release;
    ngx_http_seatgate_pool_t        *release_stats;
    ngx_flag_t                       metrics;
} ngx_http_seatgate_loc_conf_t;


typedef struct ngx_http_seatgate_ctx_s  ngx_http_seatgate_ctx_t;

typedef void (*ngx_http_seatgate_resume_pt)(ngx_http_request_t *r);


struct ngx_http_seatgate_ctx_s {
    ngx_http_request_t              *request;
    ngx_queue_t                      pending;
    ngx_uint_t                       waiting;
    void                            *leader;    /* single flight: the op */
    ngx_queue_t                      follow;    /* in the leader's followers */
    ngx_event_t                      wake;      /* timeout, then resume */
    ngx_http_seatgate_resume_pt      resume;
    ngx_uint_t                       state;

    sg_result                        result;
    sg_seat                          seat;
    ngx_str_t                        reason;
    ngx_str_t                        user;      /* effective identity */
    ngx_str_t                        identity;  /* authenticated identity */
    ngx_str_t                        on_behalf_of;
    ngx_str_t                        pool;
    ngx_str_t                        feature;   /* what was decided for */
    ngx_int_t                        slot;
    long long                        floating;

    unsigned                         released:1;
    unsigned                         metrics:1;
    unsigned                         cached:1;
};


typedef struct {
    ngx_http_seatgate_redis_op_t     op;
    ngx_queue_t                      link;      /* in ctx->pending */
    ngx_http_seatgate_ctx_t         *ctx;       /* NULL: detached */
    ngx_uint_t                       kind;
    ngx_uint_t                       eval;
    ngx_int_t                        slot;
    ngx_msec_t                       asked;
    uint64_t                         start_us;
    ngx_http_seatgate_gens_t         gens;      /* when Redis was asked */
    ngx_queue_t                      followers; /* ctxs waiting on this op */
    ngx_queue_t                      flight;    /* in the worker's index */
    ngx_uint_t                       in_flight;
    sg_request                       rq;
    size_t                           key_len;
    u_char                           key[NGX_HTTP_SEATGATE_KEY_MAX];
    char                             pool[SG_POOL_MAX + 1];
    char                             user[SG_IDENT_MAX + 1];
    char                             obo[SG_IDENT_MAX + 1];
    char                             feature[SG_POOL_MAX + 1];
    char                             host[NGX_MAXHOSTNAMELEN + 1];
    char                             client[NGX_SOCKADDR_STRLEN + 1];
} ngx_http_seatgate_pending_t;


/* per worker process */
typedef struct {
    ngx_http_seatgate_main_conf_t   *smcf;
    ngx_http_seatgate_redis_t        cmd;
    ngx_http_seatgate_redis_t        sub;
    ngx_event_t                      heartbeat;
    ngx_msec_t                       sub_since;
    ngx_msec_t                       sub_seen;
    ngx_uint_t                       sub_live;
    ngx_uint_t                       exiting;
    /* decisions on their way to Redis, by key (single flight) */
    ngx_queue_t                      flights[NGX_HTTP_SEATGATE_FLIGHTS];
} ngx_http_seatgate_worker_t;


static ngx_int_t ngx_http_seatgate_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_seatgate_finish(ngx_http_request_t *r,
    ngx_http_seatgate_ctx_t *ctx, ngx_http_seatgate_loc_conf_t *slcf);
static ngx_int_t ngx_http_seatgate_release_handler(ngx_http_request_t *r,
    ngx_http_seatgate_loc_conf_t *slcf);
static ngx_int_t ngx_http_seatgate_metrics_handler(ngx_http_request_t *r);
static void ngx_http_seatgate_metrics_resume(ngx_http_request_t *r);
static ngx_uint_t ngx_http_seatgate_str_eq(ngx_str_t *a, ngx_str_t *b);
static ngx_http_seatgate_pending_t *ngx_http_seatgate_flight_find(u_char *key,
    size_t len);
static void ngx_http_seatgate_flight_add(ngx_http_seatgate_pending_t *p);
static void ngx_http_seatgate_flight_remove(ngx_http_seatgate_pending_t *p);
static ngx_http_seatgate_ctx_t *ngx_http_seatgate_get_ctx(
    ngx_http_request_t *r, ngx_uint_t *redirected);
static ngx_http_seatgate_ctx_t *ngx_http_seatgate_create_ctx(
    ngx_http_request_t *r);
static ngx_int_t ngx_http_seatgate_identity(ngx_http_request_t *r,
    ngx_http_complex_value_t *cv, ngx_str_t *value);
static ngx_http_seatgate_pending_t *ngx_http_seatgate_pending(
    ngx_http_request_t *r, ngx_http_seatgate_ctx_t *ctx, ngx_uint_t kind,
    ngx_str_t *pool, ngx_str_t *user, ngx_str_t *obo, ngx_str_t *feature,
    ngx_int_t slot);
static ngx_int_t ngx_http_seatgate_submit(ngx_http_seatgate_ctx_t *ctx,
    ngx_http_seatgate_pending_t *p);
static ngx_int_t ngx_http_seatgate_send(ngx_http_seatgate_redis_t *rd,
    ngx_http_seatgate_redis_op_t *op);
static void ngx_http_seatgate_done(ngx_http_seatgate_redis_t *rd,
    ngx_http_seatgate_redis_op_t *op, redisReply *reply);
static void ngx_http_seatgate_apply(ngx_http_seatgate_ctx_t *ctx,
    sg_decision *d);
static void ngx_http_seatgate_wait(ngx_http_request_t *r,
    ngx_http_seatgate_ctx_t *ctx, ngx_http_seatgate_resume_pt resume);
static void ngx_http_seatgate_wake(ngx_http_seatgate_ctx_t *ctx);
static void ngx_http_seatgate_wake_handler(ngx_event_t *ev);
static void ngx_http_seatgate_detach(ngx_http_seatgate_ctx_t *ctx);
static void ngx_http_seatgate_cleanup(void *data);
static void ngx_http_seatgate_set_result(ngx_http_seatgate_ctx_t *ctx,
    sg_result result, const char *reason);
static ngx_int_t ngx_http_seatgate_deny(ngx_http_request_t *r,
    ngx_http_seatgate_ctx_t *ctx, ngx_http_seatgate_loc_conf_t *slcf);
static ngx_int_t ngx_http_seatgate_respond(ngx_http_request_t *r,
    ngx_uint_t status, ngx_str_t *body, ngx_uint_t json);
static ngx_uint_t ngx_http_seatgate_wants_json(ngx_http_request_t *r);
static ngx_int_t ngx_http_seatgate_add_header(ngx_http_request_t *r,
    char *name, ngx_str_t *value);
static u_char *ngx_http_seatgate_message(u_char *p, u_char *last,
    ngx_http_seatgate_ctx_t *ctx);
static void ngx_http_seatgate_count(sg_result result, ngx_int_t slot);
static uint64_t ngx_http_seatgate_now_us(void);

static size_t ngx_http_seatgate_key(u_char *buf, ngx_str_t *pool,
    ngx_str_t *user, ngx_str_t *obo, ngx_str_t *feature);
static ngx_int_t ngx_http_seatgate_cache_lookup(ngx_http_seatgate_zone_t *z,
    u_char *key, size_t len, ngx_http_seatgate_ctx_t *ctx,
    ngx_http_request_t *r, ngx_uint_t *renew);
static void ngx_http_seatgate_cache_store(ngx_http_seatgate_zone_t *z,
    ngx_http_seatgate_pending_t *p, sg_decision *d);
static void ngx_http_seatgate_cache_drop(ngx_http_seatgate_zone_t *z,
    u_char *key, size_t len, ngx_uint_t unmark);
static void ngx_http_seatgate_gens_read(ngx_http_seatgate_zone_t *z,
    ngx_http_seatgate_pending_t *p);
static ngx_uint_t ngx_http_seatgate_gens_fresh(ngx_http_seatgate_zone_t *z,
    ngx_http_seatgate_node_t *sn);
static uint32_t ngx_http_seatgate_user_slot(ngx_http_seatgate_zone_t *z,
    u_char *pool, size_t pool_len, u_char *user, size_t user_len);
static void ngx_http_seatgate_cache_revoke(ngx_http_seatgate_zone_t *z,
    u_char *pool, size_t pool_len, u_char *user, size_t user_len);
static ngx_http_seatgate_node_t *ngx_http_seatgate_cache_find(
    ngx_http_seatgate_zone_t *z, uint32_t hash, u_char *key, size_t len);
static void ngx_http_seatgate_cache_delete(ngx_http_seatgate_zone_t *z,
    ngx_http_seatgate_node_t *sn);
static void ngx_http_seatgate_cache_expire(ngx_http_seatgate_zone_t *z,
    ngx_uint_t force);
static void ngx_http_seatgate_rbtree_insert_value(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel);
static ngx_uint_t ngx_http_seatgate_covered(ngx_msec_t confirmed);

static void ngx_http_seatgate_subscribe(ngx_http_seatgate_redis_t *rd);
static void ngx_http_seatgate_unsubscribed(ngx_http_seatgate_redis_t *rd);
static void ngx_http_seatgate_message_cb(redisAsyncContext *ac, void *r,
    void *data);
static void ngx_http_seatgate_heartbeat(ngx_event_t *ev);

static ngx_int_t ngx_http_seatgate_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_seatgate_add_variables(ngx_conf_t *cf);
static void *ngx_http_seatgate_create_main_conf(ngx_conf_t *cf);
static void *ngx_http_seatgate_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_seatgate_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static char *ngx_http_seatgate_redis(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_seatgate_zone(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_seatgate(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_seatgate_variable_slot(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_seatgate_feature(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_seatgate_fail(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_seatgate_release(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_seatgate_metrics(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_http_seatgate_pool_t *ngx_http_seatgate_add_pool(ngx_conf_t *cf,
    ngx_str_t *name);
static ngx_int_t ngx_http_seatgate_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static ngx_int_t ngx_http_seatgate_init_stats_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static ngx_int_t ngx_http_seatgate_init(ngx_conf_t *cf);
static ngx_int_t ngx_http_seatgate_init_process(ngx_cycle_t *cycle);
static void ngx_http_seatgate_exit_process(ngx_cycle_t *cycle);


static ngx_command_t  ngx_http_seatgate_commands[] = {

    { ngx_string("seatgate_redis"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE12,
      ngx_http_seatgate_redis,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("seatgate_zone"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE123,
      ngx_http_seatgate_zone,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("seatgate"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_seatgate,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("seatgate_user"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_seatgate_variable_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_seatgate_loc_conf_t, user),
      NULL },

    { ngx_string("seatgate_on_behalf_of"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_seatgate_variable_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_seatgate_loc_conf_t, on_behalf_of),
      NULL },

    { ngx_string("seatgate_feature"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_seatgate_feature,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("seatgate_fail"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_seatgate_fail,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("seatgate_retry_after"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_seatgate_loc_conf_t, retry_after),
      NULL },

    { ngx_string("seatgate_release"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_seatgate_release,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("seatgate_metrics"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_seatgate_metrics,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_seatgate_module_ctx = {
    ngx_http_seatgate_add_variables,       /* preconfiguration */
    ngx_http_seatgate_init,                /* postconfiguration */

    ngx_http_seatgate_create_main_conf,    /* create main configuration */
    NULL,                                  /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_seatgate_create_loc_conf,     /* create location configuration */
    ngx_http_seatgate_merge_loc_conf       /* merge location configuration */
};


ngx_module_t  ngx_http_seatgate_module = {
    NGX_MODULE_V1,
    &ngx_http_seatgate_module_ctx,         /* module context */
    ngx_http_seatgate_commands,            /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_http_seatgate_init_process,        /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_seatgate_exit_process,        /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


#define NGX_HTTP_SEATGATE_VAR_RESULT        0
#define NGX_HTTP_SEATGATE_VAR_REASON        1
#define NGX_HTTP_SEATGATE_VAR_USER          2
#define NGX_HTTP_SEATGATE_VAR_ON_BEHALF_OF  3
#define NGX_HTTP_SEATGATE_VAR_POOL          4
#define NGX_HTTP_SEATGATE_VAR_SEAT          5
#define NGX_HTTP_SEATGATE_VAR_IDENTITY      6
#define NGX_HTTP_SEATGATE_VAR_CACHE         7


static ngx_http_variable_t  ngx_http_seatgate_vars[] = {

    { ngx_string("seatgate_result"), NULL, ngx_http_seatgate_variable,
      NGX_HTTP_SEATGATE_VAR_RESULT, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("seatgate_reason"), NULL, ngx_http_seatgate_variable,
      NGX_HTTP_SEATGATE_VAR_REASON, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("seatgate_user"), NULL, ngx_http_seatgate_variable,
      NGX_HTTP_SEATGATE_VAR_USER, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("seatgate_on_behalf_of"), NULL, ngx_http_seatgate_variable,
      NGX_HTTP_SEATGATE_VAR_ON_BEHALF_OF, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("seatgate_pool"), NULL, ngx_http_seatgate_variable,
      NGX_HTTP_SEATGATE_VAR_POOL, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("seatgate_seat"), NULL, ngx_http_seatgate_variable,
      NGX_HTTP_SEATGATE_VAR_SEAT, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("seatgate_identity"), NULL, ngx_http_seatgate_variable,
      NGX_HTTP_SEATGATE_VAR_IDENTITY, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("seatgate_cache"), NULL, ngx_http_seatgate_variable,
      NGX_HTTP_SEATGATE_VAR_CACHE, NGX_HTTP_VAR_NOCACHEABLE, 0 },

      ngx_http_null_variable
};


/* latency histogram bounds, microseconds */
static uint64_t  ngx_http_seatgate_latency_us[NGX_HTTP_SEATGATE_LATENCIES] = {
    250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000,
    500000, 1000000
};


static ngx_http_seatgate_worker_t  *ngx_http_seatgate_worker;
static ngx_http_seatgate_stats_t   *ngx_http_seatgate_stats;


/* ---- the seat check ----------------------------------------------------- */

static ngx_int_t
ngx_http_seatgate_handler(ngx_http_request_t *r)
{
    size_t                          len;
    ngx_str_t                       user, obo;
    ngx_uint_t                      renew, redirected;
    ngx_http_seatgate_ctx_t        *ctx;
    ngx_http_seatgate_zone_t       *z;
    ngx_http_seatgate_pending_t    *p;
    ngx_http_seatgate_loc_conf_t   *slcf;
    ngx_http_seatgate_main_conf_t  *smcf;
    u_char                          key[NGX_HTTP_SEATGATE_KEY_MAX];

    /* subrequests are covered by their main request, as in the access phase */

    if (r != r->main) {
        return NGX_DECLINED;
    }

    slcf = ngx_http_get_module_loc_conf(r, ngx_http_seatgate_module);

    if (slcf->release.len) {
        return ngx_http_seatgate_release_handler(r, slcf);
    }

    if (slcf->mode == NGX_HTTP_SEATGATE_NONE || slcf->metrics) {
        return NGX_DECLINED;
    }

    ctx = ngx_http_seatgate_get_ctx(r, &redirected);

    if (ctx && !redirected) {
        if (ctx->state == NGX_HTTP_SEATGATE_WAITING) {
            return NGX_AGAIN;
        }

        return ngx_http_seatgate_finish(r, ctx, slcf);
    }

    if (ctx) {

        /*
         * An internal redirect (index, try_files, error_page, rewrite ...
         * last) of a request already decided: one request, one decision.
         * A denial being answered by its error_page, a free location, or
         * the same pool and feature keep the decision (and what the log
         * variables say); only another pool or feature is decided anew.
         */

        if (ctx->state == NGX_HTTP_SEATGATE_WAITING) {
            return NGX_AGAIN;
        }

        if (!sg_result_granted(ctx->result)
            || slcf->mode == NGX_HTTP_SEATGATE_OFF
            || (ctx->seat != SG_SEAT_FREE
                && ngx_http_seatgate_str_eq(&ctx->pool, &slcf->pool)
                && ngx_http_seatgate_str_eq(&ctx->feature, &slcf->feature)))
        {
            return NGX_DECLINED;
        }

        ctx->result = SG_GRANTED_FREE;
        ctx->seat = SG_SEAT_NONE;
        ngx_str_set(&ctx->reason, "");
        ctx->cached = 0;

    } else {
        ctx = ngx_http_seatgate_create_ctx(r);
        if (ctx == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    ctx->pool = slcf->pool;
    ctx->feature = slcf->feature;
    ctx->slot = slcf->pool_stats ? slcf->pool_stats->slot : -1;
    ctx->state = NGX_HTTP_SEATGATE_DONE;

    if (ngx_http_seatgate_identity(r, slcf->user, &user) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (slcf->mode == NGX_HTTP_SEATGATE_OFF) {

        /* free tier: no seat, no Redis; identified for the logs */

        ngx_http_seatgate_set_result(ctx, SG_GRANTED_FREE, "free_tier");
        ctx->seat = SG_SEAT_FREE;

        if (user.len && sg_valid_ident((char *) user.data, NULL, 0) == 0) {
            ctx->identity = user;
            ctx->user = user;
        }

        ngx_http_seatgate_count(SG_GRANTED_FREE, -1);

        return NGX_DECLINED;
    }

    if (user.len == 0
        || sg_valid_ident((char *) user.data, NULL, 0) != 0)
    {
        ngx_http_seatgate_set_result(ctx, SG_DENIED_UNASSIGNED,
                                     user.len ? "invalid_identity"
                                              : "no_identity");
        ngx_http_seatgate_count(SG_DENIED_UNASSIGNED,
                                slcf->pool_stats->slot);
        return ngx_http_seatgate_finish(r, ctx, slcf);
    }

    ctx->identity = user;
    ctx->user = user;

    ngx_str_null(&obo);

    if (slcf->on_behalf_of) {
        if (ngx_http_seatgate_identity(r, slcf->on_behalf_of, &obo)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (obo.len && sg_valid_ident((char *) obo.data, NULL, 0) != 0) {
            ngx_http_seatgate_set_result(ctx, SG_DENIED_UNASSIGNED,
                                         "invalid_on_behalf_of");
            ngx_http_seatgate_count(SG_DENIED_UNASSIGNED,
                                    slcf->pool_stats->slot);
            return ngx_http_seatgate_finish(r, ctx, slcf);
        }

        ctx->on_behalf_of = obo;
    }

    smcf = ngx_http_get_module_main_conf(r, ngx_http_seatgate_module);

    len = ngx_http_seatgate_key(key, &slcf->pool, &user, &obo,
                                &slcf->feature);

    renew = 0;

    if (smcf->zone) {
        z = smcf->zone->data;

        if (ngx_http_seatgate_cache_lookup(z, key, len, ctx, r, &renew)
            == NGX_OK)
        {
            (void) ngx_atomic_fetch_add(&ngx_http_seatgate_stats->cache_hits,
                                        1);
            ngx_http_seatgate_count(ctx->result, slcf->pool_stats->slot);

            if (renew) {
                p = ngx_http_seatgate_pending(r, NULL, NGX_HTTP_SEATGATE_RENEW,
                                              &slcf->pool, &user, &obo,
                                              &slcf->feature,
                                              slcf->pool_stats->slot);
                if (p) {
                    (void) ngx_atomic_fetch_add(
                                        &ngx_http_seatgate_stats->renewals, 1);

                    if (ngx_http_seatgate_submit(NULL, p) != NGX_OK) {
                        ngx_http_seatgate_cache_drop(z, p->key, p->key_len,
                                                     1);
                        ngx_free(p);
                    }
                }
            }

            return ngx_http_seatgate_finish(r, ctx, slcf);
        }

        (void) ngx_atomic_fetch_add(&ngx_http_seatgate_stats->cache_misses, 1);
    }

    /* single flight: the same question already on its way is shared */

    p = ngx_http_seatgate_flight_find(key, len);

    if (p) {
        ctx->leader = p;
        ngx_queue_insert_tail(&p->followers, &ctx->follow);
        (void) ngx_atomic_fetch_add(&ngx_http_seatgate_stats->shared_flights,
                                    1);
        ngx_http_seatgate_wait(r, ctx, ngx_http_core_run_phases);
        return NGX_AGAIN;
    }

    p = ngx_http_seatgate_pending(r, ctx, NGX_HTTP_SEATGATE_DECIDE,
                                  &slcf->pool, &user, &obo, &slcf->feature,
                                  slcf->pool_stats->slot);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (sg_request_validate(&p->rq, NULL, 0) != 0) {
        ngx_free(p);
        ngx_http_seatgate_set_result(ctx, SG_DENIED_UNASSIGNED,
                                     "invalid_input");
        ngx_http_seatgate_count(SG_DENIED_UNASSIGNED, slcf->pool_stats->slot);
        return ngx_http_seatgate_finish(r, ctx, slcf);
    }

    if (ngx_http_seatgate_submit(ctx, p) != NGX_OK) {
        ngx_free(p);
        ngx_http_seatgate_set_result(ctx, SG_ERROR_BACKEND,
                                     "backend_unavailable");
        ngx_http_seatgate_count(SG_ERROR_BACKEND, slcf->pool_stats->slot);
        return ngx_http_seatgate_finish(r, ctx, slcf);
    }

    ngx_http_seatgate_flight_add(p);

    ngx_http_seatgate_wait(r, ctx, ngx_http_core_run_phases);

    return NGX_AGAIN;
}


/* the worker's index of decisions on their way to Redis (single flight) */

static ngx_http_seatgate_pending_t *
ngx_http_seatgate_flight_find(u_char *key, size_t len)
{
    ngx_queue_t                  *b, *q;
    ngx_http_seatgate_pending_t  *p;

    if (ngx_http_seatgate_worker == NULL) {
        return NULL;
    }

    b = &ngx_http_seatgate_worker->flights[ngx_crc32_short(key, len)
                                           & (NGX_HTTP_SEATGATE_FLIGHTS - 1)];

    for (q = ngx_queue_head(b); q != ngx_queue_sentinel(b);
         q = ngx_queue_next(q))
    {
        p = ngx_queue_data(q, ngx_http_seatgate_pending_t, flight);

        if (p->key_len == len && ngx_memcmp(p->key, key, len) == 0) {
            return p;
        }
    }

    return NULL;
}


static void
ngx_http_seatgate_flight_add(ngx_http_seatgate_pending_t *p)
{
    ngx_queue_t  *b;

    b = &ngx_http_seatgate_worker->flights[ngx_crc32_short(p->key, p->key_len)
                                           & (NGX_HTTP_SEATGATE_FLIGHTS - 1)];
    ngx_queue_insert_tail(b, &p->flight);
    p->in_flight = 1;
}


static void
ngx_http_seatgate_flight_remove(ngx_http_seatgate_pending_t *p)
{
    if (p->in_flight) {
        ngx_queue_remove(&p->flight);
        p->in_flight = 0;
    }
}


static ngx_int_t
ngx_http_seatgate_finish(ngx_http_request_t *r, ngx_http_seatgate_ctx_t *ctx,
    ngx_http_seatgate_loc_conf_t *slcf)
{
    if (sg_result_granted(ctx->result)) {
        return NGX_DECLINED;
    }

    if (ctx->result == SG_ERROR_BACKEND
        && slcf->fail == NGX_HTTP_SEATGATE_FAIL_OPEN)
    {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "seatgate: pool \"%V\" user \"%V\": %V, failing open",
                      &ctx->pool, &ctx->identity, &ctx->reason);
        return NGX_DECLINED;
    }

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "seatgate: pool \"%V\" user \"%V\" denied: %s (%V)",
                  &ctx->pool, &ctx->identity, sg_result_name(ctx->result),
                  &ctx->reason);

    return ngx_http_seatgate_deny(r, ctx, slcf);
}


static ngx_int_t
ngx_http_seatgate_release_handler(ngx_http_request_t *r,
    ngx_http_seatgate_loc_conf_t *slcf)
{
    u_char                         *last;
    ngx_str_t                       user, empty, body;
    ngx_uint_t                      json;
    ngx_http_seatgate_ctx_t        *ctx;
    ngx_http_seatgate_pending_t    *p;
    ngx_http_core_loc_conf_t       *clcf;
    ngx_http_seatgate_main_conf_t  *smcf;
    u_char                          buf[1024];

    ctx = ngx_http_get_module_ctx(r, ngx_http_seatgate_module);

    if (ctx == NULL) {
        ctx = ngx_http_seatgate_create_ctx(r);
        if (ctx == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ctx->pool = slcf->release;
        ctx->released = 1;
        ctx->state = NGX_HTTP_SEATGATE_DONE;

        if (ngx_http_seatgate_identity(r, slcf->user, &user) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (user.len == 0
            || sg_valid_ident((char *) user.data, NULL, 0) != 0)
        {
            ngx_http_seatgate_set_result(ctx, SG_DENIED_UNASSIGNED,
                                         user.len ? "invalid_identity"
                                                  : "no_identity");
            return ngx_http_seatgate_deny(r, ctx, slcf);
        }

        ctx->identity = user;
        ctx->user = user;

        smcf = ngx_http_get_module_main_conf(r, ngx_http_seatgate_module);

        /* this instance forgets the grant now, the others on the message */

        if (smcf->zone) {
            ngx_http_seatgate_cache_revoke(smcf->zone->data,
                                           slcf->release.data,
                                           slcf->release.len,
                                           user.data, user.len);
        }

        ngx_str_null(&empty);

        p = ngx_http_seatgate_pending(r, ctx, NGX_HTTP_SEATGATE_RELEASE,
                                      &slcf->release, &user, &empty, &empty,
                                      slcf->release_stats->slot);
        if (p == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (ngx_http_seatgate_submit(ctx, p) != NGX_OK) {
            ngx_free(p);
            ngx_http_seatgate_set_result(ctx, SG_ERROR_BACKEND,
                                         "backend_unavailable");

        } else {
            ngx_http_seatgate_wait(r, ctx, ngx_http_core_run_phases);
            return NGX_AGAIN;
        }
    }

    if (ctx->state == NGX_HTTP_SEATGATE_WAITING) {
        return NGX_AGAIN;
    }

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    if (ctx->result == SG_ERROR_BACKEND) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "seatgate: release of \"%V\" in pool \"%V\" failed: %V",
                      &ctx->identity, &ctx->pool, &ctx->reason);

        if (clcf->handler) {
            /* the logout goes on; the lease runs out by itself */
            return NGX_DECLINED;
        }

        return ngx_http_seatgate_deny(r, ctx, slcf);
    }

    if (ctx->result != SG_GRANTED_FREE) {
        /* a denial answered before Redis (bad identity) */
        return ngx_http_seatgate_deny(r, ctx, slcf);
    }

    if (clcf->handler) {
        /* proxy_pass and friends: the upstream's logout answers */
        return NGX_DECLINED;
    }

    json = ngx_http_seatgate_wants_json(r);

    if (json) {
        last = ngx_snprintf(buf, sizeof(buf),
                            "{\"released\":%s,\"pool\":\"%V\","
                            "\"reason\":\"%V\"}\n",
                            ngx_strcmp(ctx->reason.data, "seat_released") == 0
                            ? "true" : "false",
                            &ctx->pool, &ctx->reason);

    } else {
        last = ngx_snprintf(buf, sizeof(buf),
                            "<html>\n<head><title>Signed out</title></head>\n"
                            "<body>\n<h1>Signed out</h1>\n<p>%s</p>\n"
                            "</body>\n</html>\n",
                            ngx_strcmp(ctx->reason.data, "seat_released") == 0
                            ? "Your seat is free for a colleague."
                            : "You held no seat.");
    }

    body.len = last - buf;
    body.data = ngx_pnalloc(r->pool, body.len);
    if (body.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memcpy(body.data, buf, body.len);

    if (ngx_http_seatgate_add_header(r, "X-Seatgate-Reason", &ctx->reason)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_finalize_request(r, ngx_http_seatgate_respond(r, NGX_HTTP_OK,
                                                           &body, json));
    return NGX_DONE;
}


static ngx_int_t
ngx_http_seatgate_metrics_handler(ngx_http_request_t *r)
{
    ngx_uint_t                      i;
    ngx_str_t                       pool, user, empty;
    ngx_http_seatgate_ctx_t        *ctx;
    ngx_http_seatgate_pool_t      **pools;
    ngx_http_seatgate_pending_t    *p;
    ngx_http_seatgate_main_conf_t  *smcf;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    if (ngx_http_discard_request_body(r) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx = ngx_http_seatgate_create_ctx(r);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->metrics = 1;

    smcf = ngx_http_get_module_main_conf(r, ngx_http_seatgate_module);

    /*
     * Seats in use come from the core itself: a read-only "check" per pool
     * (it takes nothing and writes no audit) answers the live lease count.
     */

    pools = smcf->pools.elts;
    ngx_str_set(&user, NGX_HTTP_SEATGATE_PROBE_USER);
    ngx_str_null(&empty);

    for (i = 0; i < smcf->pools.nelts; i++) {
        if (pools[i]->slot < 0) {
            continue;
        }

        pool = pools[i]->name;

        p = ngx_http_seatgate_pending(r, ctx, NGX_HTTP_SEATGATE_PROBE, &pool,
                                      &user, &empty, &empty, pools[i]->slot);
        if (p == NULL) {
            break;
        }

        p->rq.op = SG_OP_CHECK;

        if (ngx_http_seatgate_submit(ctx, p) != NGX_OK) {
            ngx_free(p);
            break;
        }
    }

    r->main->count++;

    if (ctx->waiting) {
        ngx_http_seatgate_wait(r, ctx, ngx_http_seatgate_metrics_resume);

    } else {
        ngx_http_seatgate_metrics_resume(r);
    }

    return NGX_DONE;
}


static void
ngx_http_seatgate_metrics_resume(ngx_http_request_t *r)
{
    u_char                          *p;
    size_t                           size;
    ngx_str_t                        body;
    ngx_buf_t                       *b;
    ngx_uint_t                       i, j, up, sub, npools;
    ngx_atomic_uint_t                cum;
    ngx_http_seatgate_stats_t       *st;
    ngx_http_seatgate_pool_stats_t  *ps;

    st = ngx_http_seatgate_stats;

    /* a reload may add pools meanwhile: one snapshot sizes and bounds all */

    npools = ngx_min(st->npools, NGX_HTTP_SEATGATE_POOLS_MAX);

    size = 8192 + npools * (SG_RESULT_COUNT + 6) * (SG_POOL_MAX + 128);

    b = ngx_create_temp_buf(r->pool, size);
    if (b == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    p = b->last;

#define SG_HELP(name, type, help)                                             \
    p = ngx_sprintf(p, "# HELP seatgate_" name " " help "\n"                  \
                       "# TYPE seatgate_" name " " type "\n")

    SG_HELP("decisions_total", "counter",
            "Seat decisions by result (cached ones included).");

    for (i = 0; i < SG_RESULT_COUNT; i++) {
        p = ngx_sprintf(p, "seatgate_decisions_total{result=\"%s\"} %uA\n",
                        sg_result_name((sg_result) i), st->decisions[i]);
    }

    SG_HELP("pool_decisions_total", "counter",
            "Seat decisions by pool and result.");

    for (j = 0; j < npools; j++) {
        ps = &st->pools[j];

        for (i = 0; i < SG_RESULT_COUNT; i++) {
            p = ngx_sprintf(p, "seatgate_pool_decisions_total"
                               "{pool=\"%s\",result=\"%s\"} %uA\n",
                            ps->name, sg_result_name((sg_result) i),
                            ps->decisions[i]);
        }
    }

    SG_HELP("seats_in_use", "gauge", "Floating seats held, by pool.");

    for (j = 0; j < npools; j++) {
        ps = &st->pools[j];
        if (ps->known) {
            p = ngx_sprintf(p, "seatgate_seats_in_use{pool=\"%s\"} %uA\n",
                            ps->name, ps->in_use);
        }
    }

    SG_HELP("seats_floating", "gauge", "Floating seats bought, by pool.");

    for (j = 0; j < npools; j++) {
        ps = &st->pools[j];
        if (ps->known) {
            p = ngx_sprintf(p, "seatgate_seats_floating{pool=\"%s\"} %uA\n",
                            ps->name, ps->floating);
        }
    }

    SG_HELP("seats_capacity", "gauge",
            "Floating seats with overdraft, by pool.");

    for (j = 0; j < npools; j++) {
        ps = &st->pools[j];
        if (ps->known) {
            p = ngx_sprintf(p, "seatgate_seats_capacity{pool=\"%s\"} %uA\n",
                            ps->name, ps->capacity);
        }
    }

    SG_HELP("seats_named", "gauge", "Named seats bought, by pool.");

    for (j = 0; j < npools; j++) {
        ps = &st->pools[j];
        if (ps->known) {
            p = ngx_sprintf(p, "seatgate_seats_named{pool=\"%s\"} %uA\n",
                            ps->name, ps->named);
        }
    }

    SG_HELP("cache_hits_total", "counter",
            "Decisions answered from the shared cache.");
    p = ngx_sprintf(p, "seatgate_cache_hits_total %uA\n", st->cache_hits);

    SG_HELP("cache_misses_total", "counter",
            "Decisions that had to ask Redis.");
    p = ngx_sprintf(p, "seatgate_cache_misses_total %uA\n", st->cache_misses);

    SG_HELP("lease_renewals_total", "counter",
            "Background renewals of cached leases.");
    p = ngx_sprintf(p, "seatgate_lease_renewals_total %uA\n", st->renewals);

    SG_HELP("revocations_total", "counter",
            "Revocation messages received (summed over workers).");
    p = ngx_sprintf(p, "seatgate_revocations_total %uA\n", st->revocations);

    SG_HELP("releases_total", "counter", "Seats released by logout.");
    p = ngx_sprintf(p, "seatgate_releases_total %uA\n", st->releases);

    SG_HELP("redis_commands_total", "counter", "Redis commands sent.");
    p = ngx_sprintf(p, "seatgate_redis_commands_total %uA\n",
                    st->redis_commands);

    SG_HELP("redis_errors_total", "counter",
            "Redis failures: link down, lost reply, error reply, timeout.");
    p = ngx_sprintf(p, "seatgate_redis_errors_total %uA\n", st->redis_errors);

    SG_HELP("redis_timeouts_total", "counter",
            "Requests that waited their whole timeout for Redis.");
    p = ngx_sprintf(p, "seatgate_redis_timeouts_total %uA\n",
                    st->redis_timeouts);

    SG_HELP("redis_latency_seconds", "histogram",
            "Round trip of a Redis command.");

    cum = 0;

    for (i = 0; i < NGX_HTTP_SEATGATE_LATENCIES; i++) {
        cum += st->latency[i];
        p = ngx_sprintf(p, "seatgate_redis_latency_seconds_bucket"
                           "{le=\"%uL.%06uL\"} %uA\n",
                        ngx_http_seatgate_latency_us[i] / 1000000,
                        ngx_http_seatgate_latency_us[i] % 1000000, cum);
    }

    cum += st->latency[NGX_HTTP_SEATGATE_LATENCIES];

    p = ngx_sprintf(p, "seatgate_redis_latency_seconds_bucket{le=\"+Inf\"} "
                       "%uA\n"
                       "seatgate_redis_latency_seconds_sum %uA.%06uA\n"
                       "seatgate_redis_latency_seconds_count %uA\n",
                    cum, st->latency_sum_us / 1000000,
                    st->latency_sum_us % 1000000, st->latency_count);

    up = 0;
    sub = 0;

    if (ngx_http_seatgate_worker) {
        up = (ngx_http_seatgate_worker->cmd.state
              == NGX_HTTP_SEATGATE_REDIS_READY);
        sub = ngx_http_seatgate_covered(ngx_current_msec);
    }

    SG_HELP("redis_up", "gauge",
            "1 when the answering worker's Redis link is up.");
    p = ngx_sprintf(p, "seatgate_redis_up %ui\n", up);

    SG_HELP("revocation_subscription_up", "gauge",
            "1 when the answering worker's revocation subscription is live.");
    p = ngx_sprintf(p, "seatgate_revocation_subscription_up %ui\n", sub);

#undef SG_HELP

    b->last = p;

    body.data = b->pos;
    body.len = b->last - b->pos;

    ngx_http_finalize_request(r, ngx_http_seatgate_respond(r, NGX_HTTP_OK,
                                                           &body, 2));
}


static ngx_uint_t
ngx_http_seatgate_str_eq(ngx_str_t *a, ngx_str_t *b)
{
    return a->len == b->len
           && (a->len == 0 || ngx_strncmp(a->data, b->data, a->len) == 0);
}


/*
 * The request's context, also after an internal redirect: nginx clears the
 * modules' contexts then, so it is found again through the pool cleanup
 * that holds it (the technique of ngx_http_realip_module).
 */

static ngx_http_seatgate_ctx_t *
ngx_http_seatgate_get_ctx(ngx_http_request_t *r, ngx_uint_t *redirected)
{
    ngx_pool_cleanup_t       *cln;
    ngx_http_seatgate_ctx_t  *ctx;

    *redirected = 0;

    ctx = ngx_http_get_module_ctx(r, ngx_http_seatgate_module);

    if (ctx || !(r->internal || r->filter_finalize)) {
        return ctx;
    }

    for (cln = r->pool->cleanup; cln; cln = cln->next) {
        if (cln->handler == ngx_http_seatgate_cleanup) {
            ctx = cln->data;
            ngx_http_set_ctx(r, ctx, ngx_http_seatgate_module);
            *redirected = 1;
            return ctx;
        }
    }

    return NULL;
}


static ngx_http_seatgate_ctx_t *
ngx_http_seatgate_create_ctx(ngx_http_request_t *r)
{
    ngx_pool_cleanup_t       *cln;
    ngx_http_seatgate_ctx_t  *ctx;

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_seatgate_ctx_t));
    if (ctx == NULL) {
        return NULL;
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NULL;
    }

    ctx->request = r;
    ngx_queue_init(&ctx->pending);
    ctx->result = SG_GRANTED_FREE;
    ctx->seat = SG_SEAT_NONE;
    ngx_str_set(&ctx->reason, "");

    ctx->wake.handler = ngx_http_seatgate_wake_handler;
    ctx->wake.data = ctx;
    ctx->wake.log = r->connection->log;

    cln->handler = ngx_http_seatgate_cleanup;
    cln->data = ctx;

    ngx_http_set_ctx(r, ctx, ngx_http_seatgate_module);

    return ctx;
}


/* evaluates an identity into a NUL-terminated string */

static ngx_int_t
ngx_http_seatgate_identity(ngx_http_request_t *r,
    ngx_http_complex_value_t *cv, ngx_str_t *value)
{
    u_char     *p;
    ngx_str_t   v;

    if (ngx_http_complex_value(r, cv, &v) != NGX_OK) {
        return NGX_ERROR;
    }

    if (v.len > SG_IDENT_MAX) {
        /* too long: sg_valid_ident() says so on a shortened copy */
        v.len = SG_IDENT_MAX + 1;
    }

    p = ngx_pnalloc(r->pool, v.len + 1);
    if (p == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(p, v.data, v.len);
    p[v.len] = '\0';

    if (ngx_strlen(p) != v.len) {
        /* an embedded NUL is a control character */
        p[0] = '\x01';
    }

    value->data = p;
    value->len = v.len;

    return NGX_OK;
}


static ngx_http_seatgate_pending_t *
ngx_http_seatgate_pending(ngx_http_request_t *r, ngx_http_seatgate_ctx_t *ctx,
    ngx_uint_t kind, ngx_str_t *pool, ngx_str_t *user, ngx_str_t *obo,
    ngx_str_t *feature, ngx_int_t slot)
{
    ngx_str_t                     *host;
    ngx_http_seatgate_pending_t   *p;

    p = ngx_alloc(sizeof(ngx_http_seatgate_pending_t), r->connection->log);
    if (p == NULL) {
        return NULL;
    }

    ngx_memzero(p, offsetof(ngx_http_seatgate_pending_t, key));

    p->op.send = ngx_http_seatgate_send;
    p->op.done = ngx_http_seatgate_done;
    p->op.data = p;
    ngx_queue_init(&p->followers);
    p->kind = kind;
    p->slot = slot;

    ngx_cpystrn((u_char *) p->pool, pool->data,
                ngx_min(pool->len, SG_POOL_MAX) + 1);
    ngx_cpystrn((u_char *) p->user, user->data,
                ngx_min(user->len, SG_IDENT_MAX) + 1);
    ngx_cpystrn((u_char *) p->obo, obo->len ? obo->data : (u_char *) "",
                ngx_min(obo->len, SG_IDENT_MAX) + 1);
    ngx_cpystrn((u_char *) p->feature,
                feature->len ? feature->data : (u_char *) "",
                ngx_min(feature->len, SG_POOL_MAX) + 1);

    host = (ngx_str_t *) &ngx_cycle->hostname;
    ngx_cpystrn((u_char *) p->host, host->data,
                ngx_min(host->len, NGX_MAXHOSTNAMELEN) + 1);

    ngx_cpystrn((u_char *) p->client, r->connection->addr_text.data,
                ngx_min(r->connection->addr_text.len, NGX_SOCKADDR_STRLEN)
                + 1);

    p->key_len = ngx_http_seatgate_key(p->key, pool, user, obo, feature);

    p->rq.op = SG_OP_ACQUIRE;
    p->rq.pool = p->pool;
    p->rq.user = p->user;
    p->rq.on_behalf_of = p->obo;
    p->rq.feature = p->feature;
    p->rq.session = NULL;
    p->rq.via = "nginx";
    p->rq.host = p->host;
    p->rq.client = p->client;
    p->rq.pid = 0;
    p->rq.ttl_s = 0;

    p->ctx = ctx;

    return p;
}


static ngx_int_t
ngx_http_seatgate_submit(ngx_http_seatgate_ctx_t *ctx,
    ngx_http_seatgate_pending_t *p)
{
    ngx_int_t                    rc;
    ngx_http_seatgate_zone_t    *z;
    ngx_http_seatgate_worker_t  *w;

    w = ngx_http_seatgate_worker;

    if (w == NULL || w->exiting) {
        return NGX_DECLINED;
    }

    p->asked = ngx_current_msec;
    p->start_us = ngx_http_seatgate_now_us();

    if (w->smcf->zone) {
        z = w->smcf->zone->data;
        ngx_http_seatgate_gens_read(z, p);
    }

    p->ctx = ctx;

    rc = ngx_http_seatgate_redis_submit(&w->cmd, &p->op);

    if (rc != NGX_OK) {
        (void) ngx_atomic_fetch_add(&ngx_http_seatgate_stats->redis_errors, 1);
        return rc;
    }

    if (ctx) {
        ngx_queue_insert_tail(&ctx->pending, &p->link);
        ctx->waiting++;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_seatgate_send(ngx_http_seatgate_redis_t *rd,
    ngx_http_seatgate_redis_op_t *op)
{
    ngx_int_t                     rc;
    ngx_http_seatgate_pending_t  *p = op->data;

    static sg_cmd                 cmd;

    if (p->kind == NGX_HTTP_SEATGATE_RELEASE) {
        /* the portal logout ends the web session only: the user's other
         * sessions (a PAM login) keep the seat */

        rc = sg_release_cmd(p->pool, p->user, SG_WEB_SESSION, "nginx",
                            p->host, (int) p->eval, &cmd);

    } else {
        rc = sg_decide_cmd(&p->rq, (int) p->eval, &cmd);
    }

    if (rc != 0) {
        return NGX_ERROR;
    }

    (void) ngx_atomic_fetch_add(&ngx_http_seatgate_stats->redis_commands, 1);

    return ngx_http_seatgate_redis_command(rd, op, cmd.argc, cmd.argv,
                                           cmd.argvlen);
}


static void
ngx_http_seatgate_done(ngx_http_seatgate_redis_t *rd,
    ngx_http_seatgate_redis_op_t *op, redisReply *reply)
{
    long                             sessions, seat;
    uint64_t                         us;
    ngx_uint_t                       i;
    sg_decision                      d;
    ngx_queue_t                     *q;
    ngx_http_seatgate_ctx_t         *ctx;
    ngx_http_seatgate_zone_t        *z;
    ngx_http_seatgate_stats_t       *st;
    ngx_http_seatgate_pending_t     *p = op->data;
    ngx_http_seatgate_pool_stats_t  *ps;

    st = ngx_http_seatgate_stats;

    if (reply && reply->type == REDIS_REPLY_ERROR
        && ngx_strncmp(reply->str, "READONLY", 8) == 0)
    {
        /* a demoted master (failover): find the new one */
        ngx_http_seatgate_redis_close(rd, "the server became a replica");
    }

    if (reply && !p->eval && sg_reply_is_noscript(reply)) {

        /* the script cache was flushed (a restarted Redis): send the body */

        p->eval = 1;

        if (ngx_http_seatgate_redis_submit(rd, op) == NGX_OK) {
            return;
        }

        reply = NULL;
    }

    if (reply) {
        us = ngx_http_seatgate_now_us() - p->start_us;

        for (i = 0; i < NGX_HTTP_SEATGATE_LATENCIES; i++) {
            if (us <= ngx_http_seatgate_latency_us[i]) {
                break;
            }
        }

        (void) ngx_atomic_fetch_add(&st->latency[i], 1);
        (void) ngx_atomic_fetch_add(&st->latency_sum_us, us);
        (void) ngx_atomic_fetch_add(&st->latency_count, 1);
    }

    z = (ngx_http_seatgate_worker && ngx_http_seatgate_worker->smcf->zone)
        ? ngx_http_seatgate_worker->smcf->zone->data : NULL;

    if (p->kind == NGX_HTTP_SEATGATE_RELEASE) {
        if (reply && sg_release_parse(reply, &sessions, &seat) == 0) {
            ngx_memzero(&d, sizeof(sg_decision));
            d.result = SG_GRANTED_FREE;
            d.seat = SG_SEAT_NONE;
            ngx_cpystrn((u_char *) d.reason,
                        (u_char *) (seat > 0 ? "seat_released"
                                    : sessions > 0 ? "session_closed"
                                    : "nothing_held"),
                        sizeof(d.reason));
            ngx_cpystrn((u_char *) d.user, (u_char *) p->user,
                        sizeof(d.user));

            if (seat > 0) {
                (void) ngx_atomic_fetch_add(&st->releases, 1);
            }

        } else {
            sg_decision_error(&d, reply && reply->type == REDIS_REPLY_ERROR
                                  ? reply->str : "no reply");
            (void) ngx_atomic_fetch_add(&st->redis_errors, 1);
        }

        goto apply;
    }

    if (reply == NULL) {
        sg_decision_error(&d, "redis link lost");
        (void) ngx_atomic_fetch_add(&st->redis_errors, 1);

    } else if (sg_decision_parse(reply, &d) != 0) {
        (void) ngx_atomic_fetch_add(&st->redis_errors, 1);
        ngx_log_error(NGX_LOG_ERR, rd->log, 0,
                      "seatgate: pool \"%s\": %s", p->pool, d.err);
    }

    if (p->slot >= 0 && d.result != SG_ERROR_BACKEND) {
        ps = &st->pools[p->slot];
        ps->in_use = (ngx_atomic_uint_t) d.in_use;
        ps->floating = (ngx_atomic_uint_t) d.floating;
        ps->capacity = (ngx_atomic_uint_t) d.capacity;
        ps->named = (ngx_atomic_uint_t) d.named;
        ps->known = 1;
    }

    if (p->kind == NGX_HTTP_SEATGATE_PROBE) {
        goto apply;
    }

    if (p->kind == NGX_HTTP_SEATGATE_DECIDE && p->ctx) {
        ngx_http_seatgate_count(d.result, p->slot);
    }

    if (z) {
        if (sg_result_granted(d.result)
            || (d.result != SG_ERROR_BACKEND && z->deny_ttl))
        {
            /* a grant, or a denial for a short while (negative cache) */
            ngx_http_seatgate_cache_store(z, p, &d);

        } else {
            /* a denial forgets the grant; an error lets another renew */
            ngx_http_seatgate_cache_drop(z, p->key, p->key_len,
                                         d.result == SG_ERROR_BACKEND);
        }
    }

apply:

    ngx_http_seatgate_flight_remove(p);

    ctx = p->ctx;

    if (ctx && ngx_http_seatgate_worker
        && !ngx_http_seatgate_worker->exiting)
    {
        ngx_queue_remove(&p->link);

        if (p->kind != NGX_HTTP_SEATGATE_PROBE) {
            ngx_http_seatgate_apply(ctx, &d);
        }

        if (--ctx->waiting == 0) {
            ngx_http_seatgate_wake(ctx);
        }
    }

    /* the requests that shared this question get the same answer */

    while (!ngx_queue_empty(&p->followers)) {
        q = ngx_queue_head(&p->followers);
        ngx_queue_remove(q);

        ctx = ngx_queue_data(q, ngx_http_seatgate_ctx_t, follow);
        ctx->leader = NULL;

        if (ngx_http_seatgate_worker && !ngx_http_seatgate_worker->exiting) {
            ngx_http_seatgate_count(d.result, p->slot);
            ngx_http_seatgate_apply(ctx, &d);
            ngx_http_seatgate_wake(ctx);
        }
    }

    ngx_free(p);
}


static void
ngx_http_seatgate_apply(ngx_http_seatgate_ctx_t *ctx, sg_decision *d)
{
    size_t               len;
    ngx_http_request_t  *r;

    r = ctx->request;

    ctx->result = d->result;
    ctx->seat = d->seat;
    ctx->floating = d->floating;

    len = ngx_strlen(d->reason);
    ctx->reason.data = ngx_pnalloc(r->pool, len + 1);
    if (ctx->reason.data) {
        ngx_memcpy(ctx->reason.data, d->reason, len + 1);
        ctx->reason.len = len;

    } else {
        ngx_str_set(&ctx->reason, "");
    }

    len = ngx_strlen(d->user);

    if (len && (ctx->user.len != len
                || ngx_strncmp(ctx->user.data, d->user, len) != 0))
    {
        ctx->user.data = ngx_pnalloc(r->pool, len + 1);
        if (ctx->user.data) {
            ngx_memcpy(ctx->user.data, d->user, len + 1);
            ctx->user.len = len;

        } else {
            ctx->user = ctx->identity;
        }
    }

    if (d->result == SG_ERROR_BACKEND) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "seatgate: pool \"%V\": %s", &ctx->pool, d->err);
    }
}


static void
ngx_http_seatgate_wait(ngx_http_request_t *r, ngx_http_seatgate_ctx_t *ctx,
    ngx_http_seatgate_resume_pt resume)
{
    ngx_http_seatgate_main_conf_t  *smcf;

    smcf = ngx_http_get_module_main_conf(r, ngx_http_seatgate_module);

    ctx->state = NGX_HTTP_SEATGATE_WAITING;
    ctx->resume = resume;

    /* a stalled Redis costs this request its timeout, nothing more */

    ngx_add_timer(&ctx->wake, smcf->redis->timeout);

    /*
     * parked as limit_req parks a delayed request: only the wake event
     * resumes the phases (a write event on the client connection in the
     * meantime must not run them, nor run them a second time between the
     * reply and the posted wake event)
     */

    if (resume == ngx_http_core_run_phases) {
        r->read_event_handler = ngx_http_test_reading;
        r->write_event_handler = ngx_http_request_empty_handler;
    }
}


static void
ngx_http_seatgate_wake(ngx_http_seatgate_ctx_t *ctx)
{
    if (ctx->state != NGX_HTTP_SEATGATE_WAITING) {
        return;
    }

    ctx->state = NGX_HTTP_SEATGATE_DONE;

    if (ctx->wake.timer_set) {
        ngx_del_timer(&ctx->wake);
    }

    /* resume from the event loop, never from inside a hiredis callback */

    ngx_post_event(&ctx->wake, &ngx_posted_events);
}


static void
ngx_http_seatgate_wake_handler(ngx_event_t *ev)
{
    ngx_connection_t         *c;
    ngx_http_request_t       *r;
    ngx_http_seatgate_ctx_t  *ctx;

    ctx = ev->data;
    r = ctx->request;
    c = r->connection;

    if (ev->timedout) {
        ev->timedout = 0;

        if (ctx->state != NGX_HTTP_SEATGATE_WAITING) {
            return;
        }

        ctx->state = NGX_HTTP_SEATGATE_DONE;

        ngx_http_seatgate_detach(ctx);

        (void) ngx_atomic_fetch_add(&ngx_http_seatgate_stats->redis_timeouts,
                                    1);

        if (ctx->resume == ngx_http_core_run_phases) {
            ngx_http_seatgate_set_result(ctx, SG_ERROR_BACKEND,
                                         "backend_timeout");

            if (!ctx->released) {
                ngx_http_seatgate_count(SG_ERROR_BACKEND, ctx->slot);
            }
        }

        ngx_log_error(NGX_LOG_WARN, c->log, 0,
                      "seatgate: redis did not answer in time");
    }

    if (ctx->state != NGX_HTTP_SEATGATE_DONE) {
        return;
    }

    if (ctx->resume == ngx_http_core_run_phases) {
        r->read_event_handler = ngx_http_block_reading;
        r->write_event_handler = ngx_http_core_run_phases;
    }

    ngx_http_set_log_request(c->log, r);

    ctx->resume(r);

    ngx_http_run_posted_requests(c);
}


static void
ngx_http_seatgate_detach(ngx_http_seatgate_ctx_t *ctx)
{
    ngx_queue_t                  *q;
    ngx_http_seatgate_pending_t  *p;

    if (ctx->leader) {
        ngx_queue_remove(&ctx->follow);
        ctx->leader = NULL;
    }

    while (!ngx_queue_empty(&ctx->pending)) {
        q = ngx_queue_head(&ctx->pending);
        ngx_queue_remove(q);

        p = ngx_queue_data(q, ngx_http_seatgate_pending_t, link);
        p->ctx = NULL;

        /*
         * not sent yet: never send it (unless other requests share it);
         * sent: its reply still feeds the cache and the sharers
         */

        if (ngx_queue_empty(&p->followers)
            && ngx_http_seatgate_worker
            && ngx_http_seatgate_redis_cancel(&ngx_http_seatgate_worker->cmd,
                                              &p->op)
               == NGX_OK)
        {
            ngx_http_seatgate_flight_remove(p);
            ngx_free(p);
        }
    }

    ctx->waiting = 0;
}


static void
ngx_http_seatgate_cleanup(void *data)
{
    ngx_http_seatgate_ctx_t  *ctx = data;

    /* the request goes away: a late reply must not find it */

    if (ctx->wake.timer_set) {
        ngx_del_timer(&ctx->wake);
    }

    if (ctx->wake.posted) {
        ngx_delete_posted_event(&ctx->wake);
    }

    ngx_http_seatgate_detach(ctx);
}


static void
ngx_http_seatgate_set_result(ngx_http_seatgate_ctx_t *ctx, sg_result result,
    const char *reason)
{
    ctx->result = result;
    ctx->seat = SG_SEAT_NONE;
    ctx->reason.data = (u_char *) reason;
    ctx->reason.len = ngx_strlen(reason);
}


static ngx_int_t
ngx_http_seatgate_deny(ngx_http_request_t *r, ngx_http_seatgate_ctx_t *ctx,
    ngx_http_seatgate_loc_conf_t *slcf)
{
    u_char                    *p, *last, *msg, *msg_end;
    size_t                     len;
    ngx_str_t                  body, value;
    ngx_uint_t                 i, status, json;
    ngx_http_err_page_t       *err_page;
    ngx_http_core_loc_conf_t  *clcf;
    u_char                     text[512];

    status = (ctx->result == SG_DENIED_EXHAUSTED
              || ctx->result == SG_ERROR_BACKEND)
             ? NGX_HTTP_SERVICE_UNAVAILABLE : NGX_HTTP_FORBIDDEN;

    if (ngx_http_seatgate_add_header(r, "X-Seatgate-Reason", &ctx->reason)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (status == NGX_HTTP_SERVICE_UNAVAILABLE) {

        /* the header is sent after this returns (an error_page answers
         * later): its value lives in the request's pool */

        value.data = ngx_pnalloc(r->pool, NGX_TIME_T_LEN);
        if (value.data == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        value.len = ngx_sprintf(value.data, "%T",
                                ctx->result == SG_ERROR_BACKEND
                                ? ngx_min(slcf->retry_after, 5)
                                : slcf->retry_after)
                    - value.data;

        if (ngx_http_seatgate_add_header(r, "Retry-After", &value) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    /*
     * an error_page for the status takes over the body: nginx's own
     * special response handler decides, on the same conditions it uses
     * (not inside an error_page unless recursive_error_pages, and while
     * the request may still change its URI)
     */

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    if (!r->error_page && clcf->error_pages && r->uri_changes != 0) {
        err_page = clcf->error_pages->elts;

        for (i = 0; i < clcf->error_pages->nelts; i++) {
            if (err_page[i].status == (ngx_int_t) status) {
                return status;
            }
        }
    }

    msg = text;
    msg_end = ngx_http_seatgate_message(text, text + sizeof(text), ctx);

    json = ngx_http_seatgate_wants_json(r);

    if (json) {
        len = sizeof("{\"result\":\"\",\"reason\":\"\",\"pool\":\"\","
                     "\"user\":\"\",\"seat\":\"none\",\"message\":\"\"}\n")
              + 64 + ctx->reason.len
              + ngx_escape_json(NULL, ctx->pool.data, ctx->pool.len)
              + ctx->pool.len
              + ngx_escape_json(NULL, ctx->user.data, ctx->user.len)
              + ctx->user.len
              + ngx_escape_json(NULL, msg, msg_end - msg) + (msg_end - msg);

        p = ngx_pnalloc(r->pool, len);
        if (p == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        body.data = p;

        p = ngx_sprintf(p, "{\"result\":\"%s\",\"reason\":\"%V\",\"pool\":\"",
                        sg_result_name(ctx->result), &ctx->reason);
        p = (u_char *) ngx_escape_json(p, ctx->pool.data, ctx->pool.len);
        p = ngx_cpymem(p, "\",\"user\":\"", sizeof("\",\"user\":\"") - 1);
        p = (u_char *) ngx_escape_json(p, ctx->user.data, ctx->user.len);
        p = ngx_cpymem(p, "\",\"seat\":\"none\",\"message\":\"",
                       sizeof("\",\"seat\":\"none\",\"message\":\"") - 1);
        p = (u_char *) ngx_escape_json(p, msg, msg_end - msg);
        last = ngx_cpymem(p, "\"}\n", 3);

    } else {
        len = sizeof("<html>\n<head><title></title></head>\n<body>\n"
                     "<h1></h1>\n<p></p>\n<p><small></small></p>\n"
                     "</body>\n</html>\n")
              + 2 * 64 + ctx->reason.len
              + (msg_end - msg)
              + ngx_escape_html(NULL, msg, msg_end - msg);

        p = ngx_pnalloc(r->pool, len);
        if (p == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        body.data = p;

        p = ngx_sprintf(p, "<html>\n<head><title>%s</title></head>\n<body>\n"
                           "<h1>%s</h1>\n<p>",
                        status == NGX_HTTP_FORBIDDEN
                        ? "403 No seat" : "503 No seat available",
                        status == NGX_HTTP_FORBIDDEN
                        ? "No seat" : "No seat available");
        p = (u_char *) ngx_escape_html(p, msg, msg_end - msg);
        last = ngx_sprintf(p, "</p>\n<p><small>%V</small></p>\n"
                              "</body>\n</html>\n", &ctx->reason);
    }

    body.len = last - body.data;

    ngx_http_finalize_request(r, ngx_http_seatgate_respond(r, status, &body,
                                                           json));
    return NGX_DONE;
}


static ngx_int_t
ngx_http_seatgate_respond(ngx_http_request_t *r, ngx_uint_t status,
    ngx_str_t *body, ngx_uint_t json)
{
    ngx_int_t     rc;
    ngx_buf_t    *b;
    ngx_str_t     cc;
    ngx_chain_t   out;

    rc = ngx_http_discard_request_body(r);

    if (rc != NGX_OK) {
        return rc;
    }

    r->headers_out.status = status;
    r->headers_out.content_length_n = body->len;

    if (json == 2) {
        ngx_str_set(&r->headers_out.content_type,
                    "text/plain; version=0.0.4; charset=utf-8");

    } else if (json) {
        ngx_str_set(&r->headers_out.content_type, "application/json");

    } else {
        ngx_str_set(&r->headers_out.content_type, "text/html; charset=utf-8");
    }

    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_type_lowcase = NULL;

    ngx_str_set(&cc, "no-store");

    if (ngx_http_seatgate_add_header(r, "Cache-Control", &cc) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->pos = body->data;
    b->last = body->data + body->len;
    b->memory = body->len ? 1 : 0;
    b->last_buf = 1;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    return ngx_http_output_filter(r, &out);
}


static ngx_uint_t
ngx_http_seatgate_wants_json(ngx_http_request_t *r)
{
    u_char           *json, *html;
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */ ; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len != sizeof("Accept") - 1
            || ngx_strncasecmp(h[i].key.data, (u_char *) "Accept",
                               sizeof("Accept") - 1) != 0)
        {
            continue;
        }

        json = ngx_strlcasestrn(h[i].value.data,
                                h[i].value.data + h[i].value.len,
                                (u_char *) "json", 4 - 1);
        if (json == NULL) {
            return 0;
        }

        html = ngx_strlcasestrn(h[i].value.data,
                                h[i].value.data + h[i].value.len,
                                (u_char *) "html", 4 - 1);

        return html == NULL || json < html;
    }

    return 0;
}


static ngx_int_t
ngx_http_seatgate_add_header(ngx_http_request_t *r, char *name,
    ngx_str_t *value)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    h->key.data = (u_char *) name;
    h->key.len = ngx_strlen(name);
    h->value = *value;
#if (nginx_version >= 1023000)
    h->next = NULL;
#endif

    return NGX_OK;
}


static u_char *
ngx_http_seatgate_message(u_char *p, u_char *last,
    ngx_http_seatgate_ctx_t *ctx)
{
    size_t                         n;
    sg_decision                    d;
    ngx_http_seatgate_loc_conf_t  *slcf;
    char                           pool[SG_POOL_MAX + 1];
    char                           feature[SG_POOL_MAX + 1];

    /* the sentence comes from the core, as in the PAM conversation */

    slcf = ngx_http_get_module_loc_conf(ctx->request, ngx_http_seatgate_module);

    ngx_memzero(&d, sizeof(sg_decision));
    d.result = ctx->result;
    d.floating = ctx->floating;
    d.capacity = ctx->floating;

    /* an unset ngx_str_t has data == NULL: copy only what is there */

    n = ngx_min(ctx->reason.len, sizeof(d.reason) - 1);
    if (n) {
        ngx_memcpy(d.reason, ctx->reason.data, n);
    }

    n = ngx_min(ctx->pool.len, SG_POOL_MAX);
    if (n) {
        ngx_memcpy(pool, ctx->pool.data, n);
    }
    pool[n] = '\0';

    n = ngx_min(slcf->feature.len, SG_POOL_MAX);
    if (n) {
        ngx_memcpy(feature, slcf->feature.data, n);
    }
    feature[n] = '\0';

    if (last - p < 2) {
        return p;
    }

    sg_decision_message(&d, pool, feature, (char *) p, last - p);

    *p = ngx_toupper(*p);

    return p + ngx_strlen(p);
}


static void
ngx_http_seatgate_count(sg_result result, ngx_int_t slot)
{
    ngx_http_seatgate_stats_t  *st;

    st = ngx_http_seatgate_stats;

    if (st == NULL || (int) result < 0 || result >= SG_RESULT_COUNT) {
        return;
    }

    (void) ngx_atomic_fetch_add(&st->decisions[result], 1);

    if (slot >= 0 && slot < NGX_HTTP_SEATGATE_POOLS_MAX) {
        (void) ngx_atomic_fetch_add(&st->pools[slot].decisions[result], 1);
    }
}


static uint64_t
ngx_http_seatgate_now_us(void)
{
    struct timespec  ts;

    (void) clock_gettime(CLOCK_MONOTONIC, &ts);

    return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}


/* ---- the decision cache ------------------------------------------------- */

static size_t
ngx_http_seatgate_key(u_char *buf, ngx_str_t *pool, ngx_str_t *user,
    ngx_str_t *obo, ngx_str_t *feature)
{
    u_char  *p;

    p = ngx_cpymem(buf, pool->data, ngx_min(pool->len, SG_POOL_MAX));
    *p++ = '\0';
    p = ngx_cpymem(p, user->data, ngx_min(user->len, SG_IDENT_MAX));
    *p++ = '\0';

    if (obo->len) {
        p = ngx_cpymem(p, obo->data, ngx_min(obo->len, SG_IDENT_MAX));
    }

    *p++ = '\0';

    if (feature->len) {
        p = ngx_cpymem(p, feature->data, ngx_min(feature->len, SG_POOL_MAX));
    }

    return p - buf;
}


/*
 * A cached grant is served while
 *   - it is younger than the zone's ttl and than the lease it was given, and
 *   - this worker's revocation subscription has been live since the grant
 *     was asked for (so any revocation since would have removed it), or the
 *     grant is younger than NGX_HTTP_SEATGATE_UNCOVERED.
 * Past half its life (or past half the uncovered bound) one request starts a
 * background renewal; the request itself never waits for it.
 */

static ngx_int_t
ngx_http_seatgate_cache_lookup(ngx_http_seatgate_zone_t *z, u_char *key,
    size_t len, ngx_http_seatgate_ctx_t *ctx, ngx_http_request_t *r,
    ngx_uint_t *renew)
{
    u_char                    *p;
    uint32_t                   hash;
    ngx_msec_t                 now, age;
    ngx_uint_t                 covered;
    ngx_http_seatgate_node_t  *sn;

    now = ngx_current_msec;
    hash = ngx_crc32_short(key, len);

    ngx_shmtx_lock(&z->shpool->mutex);

    sn = ngx_http_seatgate_cache_find(z, hash, key, len);

    if (sn == NULL) {
        ngx_shmtx_unlock(&z->shpool->mutex);
        return NGX_DECLINED;
    }

    if ((ngx_msec_int_t) (sn->expires - now) <= 0) {
        ngx_http_seatgate_cache_delete(z, sn);
        ngx_shmtx_unlock(&z->shpool->mutex);
        return NGX_DECLINED;
    }

    if (!ngx_http_seatgate_gens_fresh(z, sn)) {

        /* revoked (or, for a denial, a seat was freed in the pool) */

        ngx_http_seatgate_cache_delete(z, sn);
        ngx_shmtx_unlock(&z->shpool->mutex);
        return NGX_DECLINED;
    }

    age = now - sn->confirmed;
    covered = ngx_http_seatgate_covered(sn->confirmed);

    if (!covered && age >= NGX_HTTP_SEATGATE_UNCOVERED) {
        ngx_shmtx_unlock(&z->shpool->mutex);
        return NGX_DECLINED;
    }

    ngx_queue_remove(&sn->queue);
    ngx_queue_insert_head(&z->sh->queue, &sn->queue);

    ctx->result = (sg_result) sn->result;
    ctx->seat = (sg_seat) sn->seat;
    ctx->cached = 1;

    p = ngx_pnalloc(r->pool, sn->eff_len + sn->reason_len + 2);

    if (p) {
        ctx->user.data = p;
        ctx->user.len = sn->eff_len;
        p = ngx_cpymem(p, sn->data + sn->len, sn->eff_len);
        *p++ = '\0';

        ctx->reason.data = p;
        ctx->reason.len = sn->reason_len;
        p = ngx_cpymem(p, sn->data + sn->len + sn->eff_len, sn->reason_len);
        *p = '\0';
    }

    if (!sn->negative
        && ((ngx_msec_int_t) (now - sn->refresh) >= 0
            || (!covered && age >= NGX_HTTP_SEATGATE_UNCOVERED / 2))
        && (sn->refreshing == 0 || now - sn->refreshing > 10000))
    {
        sn->refreshing = now ? now : 1;
        *renew = 1;
    }

    ngx_shmtx_unlock(&z->shpool->mutex);

    return NGX_OK;
}


static void
ngx_http_seatgate_cache_store(ngx_http_seatgate_zone_t *z,
    ngx_http_seatgate_pending_t *p, sg_decision *d)
{
    size_t                     size, eff_len, reason_len;
    uint32_t                   hash;
    ngx_uint_t                 n;
    ngx_msec_t                 life;
    ngx_rbtree_node_t         *node;
    ngx_http_seatgate_node_t  *sn;

    eff_len = ngx_strlen(d->user);
    reason_len = ngx_min(ngx_strlen(d->reason), 255);

    life = sg_result_granted(d->result) ? z->ttl : z->deny_ttl;

    if (d->ttl_ms > 0 && (ngx_msec_t) d->ttl_ms < life) {
        life = (ngx_msec_t) d->ttl_ms;
    }

    hash = ngx_crc32_short(p->key, p->key_len);

    size = offsetof(ngx_rbtree_node_t, color)
           + offsetof(ngx_http_seatgate_node_t, data)
           + p->key_len + eff_len + reason_len;

    ngx_shmtx_lock(&z->shpool->mutex);

    sn = ngx_http_seatgate_cache_find(z, hash, p->key, p->key_len);

    if (sn) {
        if ((ngx_msec_int_t) (sn->confirmed - p->asked) > 0) {
            /* a fresher answer is already there */
            ngx_shmtx_unlock(&z->shpool->mutex);
            return;
        }

        ngx_http_seatgate_cache_delete(z, sn);
    }

    ngx_http_seatgate_cache_expire(z, 0);

    node = ngx_slab_alloc_locked(z->shpool, size);

    /*
     * A full zone: the least recently used entries go until the new one
     * fits. One eviction is not always enough: the slab allocator keeps
     * pages per size class, so freeing an entry of another size frees no
     * room for this one until its page empties.
     */

    for (n = 0; node == NULL && n < NGX_HTTP_SEATGATE_EVICT_MAX; n++) {

        if (ngx_queue_empty(&z->sh->queue)) {
            break;
        }

        ngx_http_seatgate_cache_expire(z, 1);
        node = ngx_slab_alloc_locked(z->shpool, size);
    }

    if (node == NULL) {
        ngx_shmtx_unlock(&z->shpool->mutex);

        /* said at most once a minute per worker, with the count since */

        z->full_misses++;

        if (ngx_current_msec - z->full_logged >= 60000 || z->full_logged == 0) {
            ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                          "seatgate zone \"%V\" is full: %ui decisions could not "
                          "be cached; make it larger", &z->shm_zone->shm.name,
                          z->full_misses);
            z->full_logged = ngx_current_msec ? ngx_current_msec : 1;
            z->full_misses = 0;
        }

        return;
    }

    sn = (ngx_http_seatgate_node_t *) &node->color;

    node->key = hash;
    sn->result = (u_char) d->result;
    sn->seat = (u_char) d->seat;
    sn->negative = !sg_result_granted(d->result);
    sn->gens = p->gens;
    sn->len = (u_short) p->key_len;
    sn->eff_len = (u_short) eff_len;
    sn->reason_len = (u_char) reason_len;
    sn->confirmed = p->asked;
    sn->expires = p->asked + life;
    sn->refresh = p->asked + life / 2;
    sn->refreshing = 0;

    ngx_memcpy(sn->data, p->key, p->key_len);
    ngx_memcpy(sn->data + p->key_len, d->user, eff_len);
    ngx_memcpy(sn->data + p->key_len + eff_len, d->reason, reason_len);

    ngx_rbtree_insert(&z->sh->rbtree, node);
    ngx_queue_insert_head(&z->sh->queue, &sn->queue);

    ngx_shmtx_unlock(&z->shpool->mutex);
}


static void
ngx_http_seatgate_cache_drop(ngx_http_seatgate_zone_t *z, u_char *key,
    size_t len, ngx_uint_t unmark)
{
    ngx_http_seatgate_node_t  *sn;

    ngx_shmtx_lock(&z->shpool->mutex);

    sn = ngx_http_seatgate_cache_find(z, ngx_crc32_short(key, len), key, len);

    if (sn) {
        if (unmark) {
            sn->refreshing = 0;

        } else {
            ngx_http_seatgate_cache_delete(z, sn);
        }
    }

    ngx_shmtx_unlock(&z->shpool->mutex);
}


/* "POOL\tUSER" drops USER's grants (as user or effective user) in POOL */

static uint32_t
ngx_http_seatgate_pool_slot(u_char *pool, size_t pool_len)
{
    return ngx_crc32_short(pool, pool_len) & (NGX_HTTP_SEATGATE_POOL_GENS - 1);
}


static uint32_t
ngx_http_seatgate_user_slot(ngx_http_seatgate_zone_t *z, u_char *pool,
    size_t pool_len, u_char *user, size_t user_len)
{
    uint32_t  crc;

    ngx_crc32_init(crc);
    ngx_crc32_update(&crc, pool, pool_len);
    ngx_crc32_update(&crc, (u_char *) "", 1);
    ngx_crc32_update(&crc, user, user_len);
    ngx_crc32_final(crc);

    return crc & z->sh->user_mask;
}


/* the counters a decision about to be asked of Redis depends on */

static void
ngx_http_seatgate_gens_read(ngx_http_seatgate_zone_t *z,
    ngx_http_seatgate_pending_t *p)
{
    size_t                      pool_len, user_len, obo_len;
    ngx_http_seatgate_gens_t   *g;
    ngx_http_seatgate_shctx_t  *sh;

    sh = z->sh;
    g = &p->gens;

    pool_len = ngx_strlen(p->pool);
    user_len = ngx_strlen(p->user);
    obo_len = ngx_strlen(p->obo);

    g->slot[0] = ngx_http_seatgate_pool_slot((u_char *) p->pool, pool_len);
    g->slot[1] = ngx_http_seatgate_user_slot(z, (u_char *) p->pool, pool_len,
                                             (u_char *) p->user, user_len);
    g->slot[2] = obo_len
                 ? ngx_http_seatgate_user_slot(z, (u_char *) p->pool, pool_len,
                                               (u_char *) p->obo, obo_len)
                 : g->slot[1];

    g->gen[0] = (uint32_t) sh->pool_gen[g->slot[0]];
    g->gen[1] = (uint32_t) sh->user_gen[g->slot[1]];
    g->gen[2] = (uint32_t) sh->user_gen[g->slot[2]];
    g->gen[3] = (uint32_t) sh->free_gen[g->slot[0]];
}


static ngx_uint_t
ngx_http_seatgate_gens_fresh(ngx_http_seatgate_zone_t *z,
    ngx_http_seatgate_node_t *sn)
{
    ngx_http_seatgate_gens_t   *g;
    ngx_http_seatgate_shctx_t  *sh;

    sh = z->sh;
    g = &sn->gens;

    return g->gen[0] == (uint32_t) sh->pool_gen[g->slot[0]]
           && g->gen[1] == (uint32_t) sh->user_gen[g->slot[1]]
           && g->gen[2] == (uint32_t) sh->user_gen[g->slot[2]]
           && (!sn->negative
               || g->gen[3] == (uint32_t) sh->free_gen[g->slot[0]]);
}


/*
 * A revocation for a user (or, user_len 0, the whole pool) of a pool: the
 * decisions that depend on it become stale, and so do the pool's cached
 * denials (a revocation frees a seat). O(1): counters only.
 */

static void
ngx_http_seatgate_cache_revoke(ngx_http_seatgate_zone_t *z, u_char *pool,
    size_t pool_len, u_char *user, size_t user_len)
{
    uint32_t                    ps;
    ngx_http_seatgate_shctx_t  *sh;

    sh = z->sh;
    ps = ngx_http_seatgate_pool_slot(pool, pool_len);

    if (user_len) {
        (void) ngx_atomic_fetch_add(
            &sh->user_gen[ngx_http_seatgate_user_slot(z, pool, pool_len,
                                                      user, user_len)], 1);

    } else {
        (void) ngx_atomic_fetch_add(&sh->pool_gen[ps], 1);
    }

    (void) ngx_atomic_fetch_add(&sh->free_gen[ps], 1);
}


static ngx_http_seatgate_node_t *
ngx_http_seatgate_cache_find(ngx_http_seatgate_zone_t *z, uint32_t hash,
    u_char *key, size_t len)
{
    ngx_int_t                  rc;
    ngx_rbtree_node_t         *node, *sentinel;
    ngx_http_seatgate_node_t  *sn;

    node = z->sh->rbtree.root;
    sentinel = z->sh->rbtree.sentinel;

    while (node != sentinel) {

        if (hash < node->key) {
            node = node->left;
            continue;
        }

        if (hash > node->key) {
            node = node->right;
            continue;
        }

        /* hash == node->key */

        sn = (ngx_http_seatgate_node_t *) &node->color;

        rc = ngx_memn2cmp(key, sn->data, len, (size_t) sn->len);

        if (rc == 0) {
            return sn;
        }

        node = (rc < 0) ? node->left : node->right;
    }

    return NULL;
}


static void
ngx_http_seatgate_cache_delete(ngx_http_seatgate_zone_t *z,
    ngx_http_seatgate_node_t *sn)
{
    ngx_rbtree_node_t  *node;

    node = (ngx_rbtree_node_t *)
               ((u_char *) sn - offsetof(ngx_rbtree_node_t, color));

    ngx_queue_remove(&sn->queue);
    ngx_rbtree_delete(&z->sh->rbtree, node);
    ngx_slab_free_locked(z->shpool, node);
}


/* drops up to two expired entries; force: the oldest one in any case */

static void
ngx_http_seatgate_cache_expire(ngx_http_seatgate_zone_t *z, ngx_uint_t force)
{
    ngx_uint_t                 n;
    ngx_queue_t               *q;
    ngx_http_seatgate_node_t  *sn;

    for (n = 0; n < 3; n++) {

        if (ngx_queue_empty(&z->sh->queue)) {
            return;
        }

        q = ngx_queue_last(&z->sh->queue);
        sn = ngx_queue_data(q, ngx_http_seatgate_node_t, queue);

        if (!force && (ngx_msec_int_t) (sn->expires - ngx_current_msec) > 0) {
            return;
        }

        force = 0;

        ngx_http_seatgate_cache_delete(z, sn);
    }
}


static void
ngx_http_seatgate_rbtree_insert_value(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel)
{
    ngx_rbtree_node_t         **p;
    ngx_http_seatgate_node_t   *sn, *snt;

    for ( ;; ) {

        if (node->key < temp->key) {

            p = &temp->left;

        } else if (node->key > temp->key) {

            p = &temp->right;

        } else { /* node->key == temp->key */

            sn = (ngx_http_seatgate_node_t *) &node->color;
            snt = (ngx_http_seatgate_node_t *) &temp->color;

            p = (ngx_memn2cmp(sn->data, snt->data, sn->len, snt->len) < 0)
                ? &temp->left : &temp->right;
        }

        if (*p == sentinel) {
            break;
        }

        temp = *p;
    }

    *p = node;
    node->parent = temp;
    node->left = sentinel;
    node->right = sentinel;
    ngx_rbt_red(node);
}


/* was this worker subscribed to revocations all the time since "since"? */

static ngx_uint_t
ngx_http_seatgate_covered(ngx_msec_t since)
{
    ngx_http_seatgate_worker_t  *w;

    w = ngx_http_seatgate_worker;

    return w != NULL
           && w->sub_live
           && ngx_current_msec - w->sub_seen < NGX_HTTP_SEATGATE_SUB_SILENT
           && (ngx_msec_int_t) (since - w->sub_since) >= 0;
}


/* ---- revocations -------------------------------------------------------- */

static void
ngx_http_seatgate_subscribe(ngx_http_seatgate_redis_t *rd)
{
    const char  *argv[2];

    argv[0] = "SUBSCRIBE";
    argv[1] = SG_REVOKE_CHANNEL;

    if (ngx_http_seatgate_redis_raw(rd, ngx_http_seatgate_message_cb, NULL,
                                    2, argv)
        != NGX_OK)
    {
        ngx_http_seatgate_redis_close(rd, "cannot subscribe");
    }
}


static void
ngx_http_seatgate_unsubscribed(ngx_http_seatgate_redis_t *rd)
{
    if (ngx_http_seatgate_worker) {
        ngx_http_seatgate_worker->sub_live = 0;
    }
}


static void
ngx_http_seatgate_message_cb(redisAsyncContext *ac, void *r, void *data)
{
    u_char                      *msg, *tab;
    size_t                       len;
    redisReply                  *reply = r;
    ngx_http_seatgate_worker_t  *w;

    w = ngx_http_seatgate_worker;

    if (w == NULL) {
        return;
    }

    if (reply == NULL) {
        w->sub_live = 0;
        return;
    }

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 3
        || reply->element[0]->type != REDIS_REPLY_STRING)
    {
        return;
    }

    w->sub_seen = ngx_current_msec;

    if (ngx_strcmp(reply->element[0]->str, "subscribe") == 0) {
        if (!w->sub_live) {
            /* live from now on; earlier grants stay capped */
            w->sub_live = 1;
            w->sub_since = ngx_current_msec;
        }

        return;
    }

    if (ngx_strcmp(reply->element[0]->str, "message") != 0
        || reply->element[2]->type != REDIS_REPLY_STRING)
    {
        return;
    }

    msg = (u_char *) reply->element[2]->str;
    len = reply->element[2]->len;

    tab = ngx_strlchr(msg, msg + len, '\t');
    if (tab == NULL) {
        return;
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, w->sub.log, 0,
                   "seatgate: revoke \"%*s\"", len, msg);

    (void) ngx_atomic_fetch_add(&ngx_http_seatgate_stats->revocations, 1);

    if (w->smcf->zone) {
        ngx_http_seatgate_cache_revoke(w->smcf->zone->data, msg, tab - msg,
                                       tab + 1, msg + len - tab - 1);
    }
}


static void
ngx_http_seatgate_heartbeat(ngx_event_t *ev)
{
    ngx_http_seatgate_worker_t  *w = ev->data;

    if (w->exiting || ngx_exiting || ngx_quit || ngx_terminate) {
        return;
    }

    if (w->sub.state == NGX_HTTP_SEATGATE_REDIS_READY) {

        if (w->sub_live
            && ngx_current_msec - w->sub_seen > w->smcf->redis->dead)
        {
            ngx_http_seatgate_redis_close(&w->sub, "subscription is silent");

        } else {
            /* every SUBSCRIBE is confirmed: a cheap proof of life */
            ngx_http_seatgate_subscribe(&w->sub);
        }
    }

    ngx_add_timer(ev, NGX_HTTP_SEATGATE_HEARTBEAT);
}


/* ---- variables ---------------------------------------------------------- */

static ngx_int_t
ngx_http_seatgate_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    const char               *s;
    ngx_str_t                 value;
    ngx_uint_t                redirected;
    ngx_http_seatgate_ctx_t  *ctx;

    ctx = ngx_http_seatgate_get_ctx(r->main, &redirected);

    if (ctx == NULL || ctx->state == NGX_HTTP_SEATGATE_NEW || ctx->metrics) {
        v->not_found = 1;
        return NGX_OK;
    }

    switch (data) {

    case NGX_HTTP_SEATGATE_VAR_RESULT:
        if (ctx->released && ctx->result == SG_GRANTED_FREE) {
            s = "released";

        } else if (ctx->state == NGX_HTTP_SEATGATE_WAITING) {
            s = "";

        } else {
            s = sg_result_name(ctx->result);
        }

        value.data = (u_char *) s;
        value.len = ngx_strlen(s);
        break;

    case NGX_HTTP_SEATGATE_VAR_REASON:
        value = ctx->reason;
        break;

    case NGX_HTTP_SEATGATE_VAR_USER:
        value = ctx->user;
        break;

    case NGX_HTTP_SEATGATE_VAR_ON_BEHALF_OF:
        value = ctx->on_behalf_of;
        break;

    case NGX_HTTP_SEATGATE_VAR_POOL:
        value = ctx->pool;
        break;

    case NGX_HTTP_SEATGATE_VAR_SEAT:
        s = sg_seat_name(ctx->seat);
        value.data = (u_char *) s;
        value.len = ngx_strlen(s);
        break;

    case NGX_HTTP_SEATGATE_VAR_IDENTITY:
        value = ctx->identity;
        break;

    default: /* NGX_HTTP_SEATGATE_VAR_CACHE */
        if (ctx->cached) {
            ngx_str_set(&value, "HIT");

        } else {
            ngx_str_set(&value, "MISS");
        }

        break;
    }

    v->len = value.len;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;
    v->data = value.data;

    return NGX_OK;
}


static ngx_int_t
ngx_http_seatgate_add_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var, *v;

    for (v = ngx_http_seatgate_vars; v->name.len; v++) {
        var = ngx_http_add_variable(cf, &v->name, v->flags);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = v->get_handler;
        var->data = v->data;
    }

    return NGX_OK;
}


/* ---- configuration ------------------------------------------------------ */

static void *
ngx_http_seatgate_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_seatgate_main_conf_t  *smcf;

    smcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_seatgate_main_conf_t));
    if (smcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     smcf->redis = NULL;
     *     smcf->zone = NULL;
     *     smcf->stats_zone = NULL;
     *     smcf->stats = NULL;
     */

    if (ngx_array_init(&smcf->pools, cf->pool, 4,
                       sizeof(ngx_http_seatgate_pool_t *))
        != NGX_OK)
    {
        return NULL;
    }

    return smcf;
}


static void *
ngx_http_seatgate_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_seatgate_loc_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool, sizeof(ngx_http_seatgate_loc_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     conf->pool = { 0, NULL };
     *     conf->pool_stats = NULL;
     *     conf->feature = { 0, NULL };
     *     conf->release = { 0, NULL };
     *     conf->release_stats = NULL;
     */

    conf->mode = NGX_CONF_UNSET;
    conf->user = NGX_CONF_UNSET_PTR;
    conf->user_default = NGX_CONF_UNSET;
    conf->on_behalf_of = NGX_CONF_UNSET_PTR;
    conf->fail = NGX_CONF_UNSET_UINT;
    conf->retry_after = NGX_CONF_UNSET;
    conf->metrics = NGX_CONF_UNSET;
    conf->feature.len = (size_t) NGX_CONF_UNSET;

    return conf;
}


static char *
ngx_http_seatgate_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_seatgate_loc_conf_t *prev = parent;
    ngx_http_seatgate_loc_conf_t *conf = child;

    ngx_str_t                          remote_user;
    ngx_http_core_loc_conf_t          *clcf;
    ngx_http_compile_complex_value_t   ccv;

    /* a logout takes no seat: "seatgate POOL" beside it is a mistake */

    if (conf->release.len && conf->mode == NGX_HTTP_SEATGATE_ON) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"seatgate %V\" and \"seatgate_release %V\" in one "
                           "location: a logout takes no seat; remove \"seatgate\"",
                           &conf->pool, &conf->release);
        return NGX_CONF_ERROR;
    }

    if (conf->mode == NGX_CONF_UNSET) {
        conf->mode = prev->mode;
        conf->pool = prev->pool;
        conf->pool_stats = prev->pool_stats;
    }

    if (conf->mode == NGX_CONF_UNSET) {
        conf->mode = NGX_HTTP_SEATGATE_NONE;
    }

    if (conf->user != NGX_CONF_UNSET_PTR) {
        conf->user_default = 0;

    } else if (prev->user != NGX_CONF_UNSET_PTR && prev->user != NULL) {
        conf->user_default = prev->user_default;
    }

    ngx_conf_merge_ptr_value(conf->user, prev->user, NULL);

    if (conf->user == NULL) {

        /* the default identity: $remote_user, set by auth_basic */

        conf->user = ngx_palloc(cf->pool, sizeof(ngx_http_complex_value_t));
        if (conf->user == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_str_set(&remote_user, "$remote_user");

        ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));

        ccv.cf = cf;
        ccv.value = &remote_user;
        ccv.complex_value = conf->user;

        if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
            return NGX_CONF_ERROR;
        }

        conf->user_default = 1;

        if (prev->user == NGX_CONF_UNSET_PTR || prev->user == NULL) {
            prev->user = conf->user;
            prev->user_default = 1;
        }
    }

    /*
     * "satisfy any" lets a request in through any one access handler: one let
     * in by "allow" has passed no authentication, and $remote_user is then
     * whatever the client wrote in its Authorization header. A seat taken
     * under such a name is a seat anyone can take, so the default identity
     * is refused there: seatgate_user must be set on purpose.
     */

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    if (conf->mode == NGX_HTTP_SEATGATE_ON && conf->user_default == 1
        && clcf->satisfy == NGX_HTTP_SATISFY_ANY)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"seatgate\" under \"satisfy any\" with the default "
                           "identity $remote_user: a request let in by "
                           "another access rule has no verified user; set "
                           "\"seatgate_user\" to an identity that only "
                           "authentication sets (location \"%V\")",
                           &clcf->name);
        return NGX_CONF_ERROR;
    }

    ngx_conf_merge_ptr_value(conf->on_behalf_of, prev->on_behalf_of, NULL);

    if (conf->feature.len == (size_t) NGX_CONF_UNSET) {
        conf->feature = prev->feature;
    }

    if (conf->feature.len == (size_t) NGX_CONF_UNSET) {
        ngx_str_null(&conf->feature);
    }

    ngx_conf_merge_uint_value(conf->fail, prev->fail,
                              NGX_HTTP_SEATGATE_FAIL_CLOSED);
    ngx_conf_merge_sec_value(conf->retry_after, prev->retry_after, 30);
    ngx_conf_merge_value(conf->metrics, prev->metrics, 0);

    return NGX_CONF_OK;
}


static char *
ngx_http_seatgate_redis(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_seatgate_main_conf_t *smcf = conf;

    char                            *rv;
    ngx_str_t                       *value, s, name;
    ngx_int_t                        ms;
    ngx_uint_t                       i;
    ngx_http_seatgate_redis_conf_t  *rc;

    if (smcf->redis) {
        return "is duplicate";
    }

    value = cf->args->elts;

    rc = ngx_pcalloc(cf->pool, sizeof(ngx_http_seatgate_redis_conf_t));
    if (rc == NULL) {
        return NGX_CONF_ERROR;
    }

    rc->timeout = SG_DEFAULT_TIMEOUT_MS;

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "timeout=", 8) == 0) {

            s.len = value[i].len - 8;
            s.data = value[i].data + 8;

            ms = ngx_parse_time(&s, 0);
            if (ms == NGX_ERROR || ms == 0) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid timeout \"%V\" in \"%V\" directive",
                                   &value[i], &cmd->name);
                return NGX_CONF_ERROR;
            }

            rc->timeout = (ngx_msec_t) ms;
            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\" in \"%V\" directive",
                           &value[i], &cmd->name);
        return NGX_CONF_ERROR;
    }

    rv = ngx_http_seatgate_redis_parse(cf, &value[1], rc);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    rc->dead = ngx_max(3 * rc->timeout, 1000);
    rc->backoff_min = 100;
    rc->backoff_max = 2000;

    smcf->redis = rc;

    /*
     * counters shared by the workers, kept across reloads; the ':' in the
     * name keeps it apart from every zone a directive can name (NAME:SIZE)
     */

    ngx_str_set(&name, "seatgate:stats");

    smcf->stats_zone = ngx_shared_memory_add(cf, &name,
                                             NGX_HTTP_SEATGATE_STATS_SIZE,
                                             &ngx_http_seatgate_module);
    if (smcf->stats_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    smcf->stats_zone->init = ngx_http_seatgate_init_stats_zone;
    smcf->stats_zone->data = smcf;

    return NGX_CONF_OK;
}


static char *
ngx_http_seatgate_zone(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_seatgate_main_conf_t *smcf = conf;

    u_char                    *p;
    ssize_t                    size;
    ngx_str_t                 *value, name, s;
    ngx_int_t                  ms;
    ngx_uint_t                 i;
    ngx_shm_zone_t            *shm_zone;
    ngx_http_seatgate_zone_t  *z;

    if (smcf->zone) {
        return "is duplicate";
    }

    value = cf->args->elts;

    p = (u_char *) ngx_strchr(value[1].data, ':');

    if (p == NULL || p == value[1].data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid zone \"%V\" in \"%V\" directive, expected "
                           "NAME:SIZE", &value[1], &cmd->name);
        return NGX_CONF_ERROR;
    }

    name.data = value[1].data;
    name.len = p - value[1].data;

    s.data = p + 1;
    s.len = value[1].data + value[1].len - s.data;

    size = ngx_parse_size(&s);

    if (size == NGX_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid zone size \"%V\" in \"%V\" directive",
                           &value[1], &cmd->name);
        return NGX_CONF_ERROR;
    }

    if (size < (ssize_t) (8 * ngx_pagesize)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "zone \"%V\" is too small in \"%V\" directive",
                           &value[1], &cmd->name);
        return NGX_CONF_ERROR;
    }

    z = ngx_pcalloc(cf->pool, sizeof(ngx_http_seatgate_zone_t));
    if (z == NULL) {
        return NGX_CONF_ERROR;
    }

    z->ttl = 30000;
    z->deny_ttl = 2000;

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "deny_ttl=", 9) == 0) {

            s.len = value[i].len - 9;
            s.data = value[i].data + 9;

            ms = ngx_parse_time(&s, 0);
            if (ms == NGX_ERROR) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid deny_ttl \"%V\" in \"%V\" "
                                   "directive", &value[i], &cmd->name);
                return NGX_CONF_ERROR;
            }

            z->deny_ttl = (ngx_msec_t) ms;
            continue;
        }

        if (ngx_strncmp(value[i].data, "ttl=", 4) == 0) {

            s.len = value[i].len - 4;
            s.data = value[i].data + 4;

            ms = ngx_parse_time(&s, 0);
            if (ms == NGX_ERROR || ms == 0) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid ttl \"%V\" in \"%V\" directive",
                                   &value[i], &cmd->name);
                return NGX_CONF_ERROR;
            }

            z->ttl = (ngx_msec_t) ms;
            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\" in \"%V\" directive",
                           &value[i], &cmd->name);
        return NGX_CONF_ERROR;
    }

    shm_zone = ngx_shared_memory_add(cf, &name, size,
                                     &ngx_http_seatgate_module);
    if (shm_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    if (shm_zone->data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "duplicate zone \"%V\" in \"%V\" directive", &name,
                           &cmd->name);
        return NGX_CONF_ERROR;
    }

    shm_zone->init = ngx_http_seatgate_init_zone;
    shm_zone->data = z;
    z->shm_zone = shm_zone;

    smcf->zone = shm_zone;

    return NGX_CONF_OK;
}


static char *
ngx_http_seatgate(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_seatgate_loc_conf_t *slcf = conf;

    ngx_str_t  *value;
    char        err[SG_ERR_MAX];

    if (slcf->mode != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "off") == 0) {
        slcf->mode = NGX_HTTP_SEATGATE_OFF;
        return NGX_CONF_OK;
    }

    if (sg_valid_name((char *) value[1].data, err, sizeof(err)) != 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid pool \"%V\" in \"%V\" directive: %s",
                           &value[1], &cmd->name, err);
        return NGX_CONF_ERROR;
    }

    slcf->mode = NGX_HTTP_SEATGATE_ON;
    slcf->pool = value[1];

    slcf->pool_stats = ngx_http_seatgate_add_pool(cf, &value[1]);
    if (slcf->pool_stats == NULL) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_seatgate_variable_slot(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    char  *p = conf;

    ngx_str_t                          *value;
    ngx_http_complex_value_t          **cv;
    ngx_http_compile_complex_value_t    ccv;

    cv = (ngx_http_complex_value_t **) (p + cmd->offset);

    if (*cv != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "off") == 0
        && cmd->offset == offsetof(ngx_http_seatgate_loc_conf_t,
                                   on_behalf_of))
    {
        *cv = NULL;
        return NGX_CONF_OK;
    }

    *cv = ngx_palloc(cf->pool, sizeof(ngx_http_complex_value_t));
    if (*cv == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));

    ccv.cf = cf;
    ccv.value = &value[1];
    ccv.complex_value = *cv;

    if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    if ((*cv)->lengths == NULL) {
        /* a constant identity would give every request the same seat */
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" is not a variable in \"%V\" directive, "
                           "expected e.g. $remote_user",
                           &value[1], &cmd->name);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_seatgate_feature(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_seatgate_loc_conf_t *slcf = conf;

    ngx_str_t  *value;
    char        err[SG_ERR_MAX];

    if (slcf->feature.len != (size_t) NGX_CONF_UNSET) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "off") == 0) {
        ngx_str_null(&slcf->feature);
        return NGX_CONF_OK;
    }

    if (sg_valid_name((char *) value[1].data, err, sizeof(err)) != 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid feature \"%V\" in \"%V\" directive: %s",
                           &value[1], &cmd->name, err);
        return NGX_CONF_ERROR;
    }

    slcf->feature = value[1];

    return NGX_CONF_OK;
}


static char *
ngx_http_seatgate_fail(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_seatgate_loc_conf_t *slcf = conf;

    ngx_str_t  *value;

    if (slcf->fail != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "closed") == 0) {
        slcf->fail = NGX_HTTP_SEATGATE_FAIL_CLOSED;

    } else if (ngx_strcmp(value[1].data, "open") == 0) {
        slcf->fail = NGX_HTTP_SEATGATE_FAIL_OPEN;

    } else {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid value \"%V\" in \"%V\" directive, "
                           "it must be \"open\" or \"closed\"",
                           &value[1], &cmd->name);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_seatgate_release(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_seatgate_loc_conf_t *slcf = conf;

    ngx_str_t  *value;
    char        err[SG_ERR_MAX];

    if (slcf->release.len) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (sg_valid_name((char *) value[1].data, err, sizeof(err)) != 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid pool \"%V\" in \"%V\" directive: %s",
                           &value[1], &cmd->name, err);
        return NGX_CONF_ERROR;
    }

    slcf->release = value[1];

    slcf->release_stats = ngx_http_seatgate_add_pool(cf, &value[1]);
    if (slcf->release_stats == NULL) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_seatgate_metrics(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_seatgate_loc_conf_t *slcf = conf;

    ngx_http_core_loc_conf_t       *clcf;
    ngx_http_seatgate_main_conf_t  *smcf;

    if (slcf->metrics != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    slcf->metrics = 1;

    smcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_seatgate_module);
    smcf->metrics = 1;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_seatgate_metrics_handler;

    return NGX_CONF_OK;
}


static ngx_http_seatgate_pool_t *
ngx_http_seatgate_add_pool(ngx_conf_t *cf, ngx_str_t *name)
{
    ngx_uint_t                      i;
    ngx_http_seatgate_pool_t       *pool, **pools, **pp;
    ngx_http_seatgate_main_conf_t  *smcf;

    smcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_seatgate_module);

    pools = smcf->pools.elts;

    for (i = 0; i < smcf->pools.nelts; i++) {
        if (pools[i]->name.len == name->len
            && ngx_strncmp(pools[i]->name.data, name->data, name->len) == 0)
        {
            return pools[i];
        }
    }

    pool = ngx_pcalloc(cf->pool, sizeof(ngx_http_seatgate_pool_t));
    if (pool == NULL) {
        return NULL;
    }

    pool->name = *name;
    pool->slot = -1;

    pp = ngx_array_push(&smcf->pools);
    if (pp == NULL) {
        return NULL;
    }

    *pp = pool;

    return pool;
}


static ngx_int_t
ngx_http_seatgate_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_seatgate_zone_t  *oz = data;

    size_t                     len;
    ngx_uint_t                 slots;
    ngx_http_seatgate_zone_t  *z;

    z = shm_zone->data;

    if (oz) {
        /* a reload keeps the cached decisions */
        z->sh = oz->sh;
        z->shpool = oz->shpool;
        return NGX_OK;
    }

    z->shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        z->sh = z->shpool->data;
        return NGX_OK;
    }

    /* a user slot per 64 bytes of zone, a power of 2 in [256, 65536] */

    for (slots = 256;
         slots < 65536 && slots * 64 < shm_zone->shm.size;
         slots *= 2)
    { /* void */ }

    z->sh = ngx_slab_calloc(z->shpool, sizeof(ngx_http_seatgate_shctx_t)
                                       + (slots - 1) * sizeof(ngx_atomic_t));
    if (z->sh == NULL) {
        return NGX_ERROR;
    }

    z->sh->user_mask = slots - 1;
    z->shpool->data = z->sh;

    ngx_rbtree_init(&z->sh->rbtree, &z->sh->sentinel,
                    ngx_http_seatgate_rbtree_insert_value);

    ngx_queue_init(&z->sh->queue);

    len = sizeof(" in seatgate zone \"\"") + shm_zone->shm.name.len;

    z->shpool->log_ctx = ngx_slab_alloc(z->shpool, len);
    if (z->shpool->log_ctx == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(z->shpool->log_ctx, " in seatgate zone \"%V\"%Z",
                &shm_zone->shm.name);

    z->shpool->log_nomem = 0;

    return NGX_OK;
}


static ngx_int_t
ngx_http_seatgate_init_stats_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_seatgate_main_conf_t *osmcf = data;

    ngx_uint_t                      i, j;
    ngx_slab_pool_t                *shpool;
    ngx_http_seatgate_stats_t      *st;
    ngx_http_seatgate_pool_t      **pools;
    ngx_http_seatgate_main_conf_t  *smcf;

    smcf = shm_zone->data;
    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (osmcf) {
        st = osmcf->stats;

    } else if (shm_zone->shm.exists) {
        st = shpool->data;

    } else {
        st = ngx_slab_calloc(shpool, sizeof(ngx_http_seatgate_stats_t));
        if (st == NULL) {
            return NGX_ERROR;
        }

        shpool->data = st;
    }

    smcf->stats = st;

    /* each pool keeps its slot (and its counters) across reloads */

    pools = smcf->pools.elts;

    for (i = 0; i < smcf->pools.nelts; i++) {

        for (j = 0; j < st->npools; j++) {
            if (ngx_strlen(st->pools[j].name) == pools[i]->name.len
                && ngx_strncmp(st->pools[j].name, pools[i]->name.data,
                               pools[i]->name.len)
                   == 0)
            {
                break;
            }
        }

        if (j == st->npools) {
            if (j == NGX_HTTP_SEATGATE_POOLS_MAX) {
                ngx_log_error(NGX_LOG_WARN, shm_zone->shm.log, 0,
                              "seatgate: no metrics for pool \"%V\": "
                              "more than %d pools", &pools[i]->name,
                              NGX_HTTP_SEATGATE_POOLS_MAX);
                continue;
            }

            ngx_cpystrn(st->pools[j].name, pools[i]->name.data,
                        pools[i]->name.len + 1);

            /* running workers (of the old cycle) read npools, then names */
            ngx_memory_barrier();

            st->npools++;
        }

        pools[i]->slot = j;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_seatgate_init(ngx_conf_t *cf)
{
    ngx_uint_t                      i;
    ngx_http_handler_pt            *h;
    ngx_http_seatgate_pool_t      **pools;
    ngx_http_core_main_conf_t      *cmcf;
    ngx_http_seatgate_main_conf_t  *smcf;

    smcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_seatgate_module);

    if (smcf->redis == NULL) {
        pools = smcf->pools.elts;

        for (i = 0; i < smcf->pools.nelts; i++) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"seatgate %V\" needs \"seatgate_redis\" "
                               "in the http block", &pools[i]->name);
            return NGX_ERROR;
        }

        if (smcf->zone || smcf->metrics) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"%s\" needs \"seatgate_redis\" "
                               "in the http block",
                               smcf->zone ? "seatgate_zone"
                                          : "seatgate_metrics");
            return NGX_ERROR;
        }
    }

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    /* PRECONTENT: after every access handler passed (see the top comment) */

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_PRECONTENT_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_seatgate_handler;

    return NGX_OK;
}


static ngx_int_t
ngx_http_seatgate_init_process(ngx_cycle_t *cycle)
{
    ngx_uint_t                      i;
    ngx_http_seatgate_worker_t     *w;
    ngx_http_seatgate_main_conf_t  *smcf;

    smcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_seatgate_module);

    if (smcf == NULL || smcf->redis == NULL) {
        return NGX_OK;
    }

    ngx_http_seatgate_stats = smcf->stats;

    if (ngx_process != NGX_PROCESS_WORKER
        && ngx_process != NGX_PROCESS_SINGLE)
    {
        return NGX_OK;
    }

    w = ngx_pcalloc(cycle->pool, sizeof(ngx_http_seatgate_worker_t));
    if (w == NULL) {
        return NGX_ERROR;
    }

    w->smcf = smcf;

    for (i = 0; i < NGX_HTTP_SEATGATE_FLIGHTS; i++) {
        ngx_queue_init(&w->flights[i]);
    }

    ngx_http_seatgate_worker = w;

    /* one pipelined link for decisions, one for revocations */

    (void) ngx_http_seatgate_redis_init(&w->cmd, smcf->redis, "command",
                                        cycle->log);
    ngx_http_seatgate_redis_connect(&w->cmd);

    if (smcf->zone) {
        (void) ngx_http_seatgate_redis_init(&w->sub, smcf->redis,
                                            "subscriber", cycle->log);
        w->sub.on_ready = ngx_http_seatgate_subscribe;
        w->sub.on_down = ngx_http_seatgate_unsubscribed;
        w->sub.data = w;

        ngx_http_seatgate_redis_connect(&w->sub);

        w->heartbeat.handler = ngx_http_seatgate_heartbeat;
        w->heartbeat.data = w;
        w->heartbeat.log = cycle->log;
        w->heartbeat.cancelable = 1;

        ngx_add_timer(&w->heartbeat, NGX_HTTP_SEATGATE_HEARTBEAT);
    }

    return NGX_OK;
}


static void
ngx_http_seatgate_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_seatgate_worker_t  *w;

    w = ngx_http_seatgate_worker;

    if (w == NULL) {
        return;
    }

    w->exiting = 1;

    if (w->heartbeat.timer_set) {
        ngx_del_timer(&w->heartbeat);
    }

    ngx_http_seatgate_redis_exit(&w->cmd);

    if (w->smcf->zone) {
        ngx_http_seatgate_redis_exit(&w->sub);
    }

    ngx_http_seatgate_worker = NULL;
}
