
/*
 * ngx_http_seatgate_module: what its files share (types, the module
 * object, the worker and statistics globals, and the functions one file
 * calls in another).  The files, by concern:
 *
 *   ngx_http_seatgate_module.c    directives, the phase handler, the
 *                                 request context, decisions and release
 *   ngx_http_seatgate_cache.c     the shared decision cache, revocation
 *   ngx_http_seatgate_pubsub.c    the revocation subscription
 *   ngx_http_seatgate_response.c  denials, metrics and counters
 *   ngx_http_seatgate_redis.c     the non-blocking Redis adapter
 *   ngx_http_seatgate_scim.c      the SCIM 2.0 endpoint (seatgate_scim)
 *   ngx_http_seatgate_cluster.c   Redis Cluster on the adapter
 */


#ifndef _NGX_HTTP_SEATGATE_H_INCLUDED_
#define _NGX_HTTP_SEATGATE_H_INCLUDED_

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

/*
 * The layout of what the module keeps in shared memory. A reload keeps the
 * zones, and a reload may load another build of the module: a zone made by
 * a build with another layout is refused (restart nginx, or rename the
 * zone). Bump the version when a shared structure changes.
 */
#define NGX_HTTP_SEATGATE_LAYOUT                                              \
    ((uint64_t) 3 << 48 | (uint64_t) sizeof(ngx_http_seatgate_node_t) << 32  \
     | (uint64_t) sizeof(ngx_http_seatgate_shctx_t) << 16                     \
     | (sizeof(ngx_http_seatgate_stats_t) & 0xffff))
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
    ngx_atomic_t                     free;      /* free tier, not yet sent */
} ngx_http_seatgate_pool_stats_t;


typedef struct {
    uint64_t                         layout;    /* NGX_HTTP_SEATGATE_LAYOUT */
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
    ngx_atomic_t                     cluster_redirects;
    ngx_atomic_t                     cluster_maps;
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
    uint32_t                         floating;  /* for a denial's sentence */
    ngx_queue_t                      queue;
    ngx_msec_t                       confirmed; /* when Redis was asked */
    ngx_msec_t                       expires;
    ngx_msec_t                       refresh;
    ngx_msec_t                       refreshing;
    ngx_http_seatgate_gens_t         gens;
    u_char                           data[1];   /* key, effective, reason */
} ngx_http_seatgate_node_t;


typedef struct {
    uint64_t                         layout;       /* NGX_HTTP_SEATGATE_LAYOUT */
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


/* seatgate_scim: the map, the token, how long a request may wait */
typedef struct {
    sg_sync_map                     *map;
    ngx_str_t                        token;     /* empty: auth=nginx */
    ngx_str_t                        prefix;    /* the endpoint's URI */
    ngx_str_t                        name;      /* who asks, in the log */
    ngx_msec_t                       timeout;
} ngx_http_seatgate_scim_conf_t;


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
    ngx_http_seatgate_scim_conf_t   *scim;
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
    ngx_uint_t                       status;    /* of a denial, else 0 */
    ngx_uint_t                       uri_changes;  /* at the denial */
    ngx_str_t                        body;      /* a denial's, once built */

    unsigned                         replace:1; /* nginx's page by body */
    unsigned                         released:1;
    unsigned                         metrics:1;
    unsigned                         cached:1;
};


typedef struct {
    ngx_http_seatgate_redis_op_t     op;
    ngx_queue_t                      link;      /* in ctx->pending */
    ngx_http_seatgate_ctx_t         *ctx;       /* NULL: detached */
    ngx_uint_t                       kind;
    ngx_int_t                        how;       /* SG_CALL_FCALL, ... */
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


extern ngx_module_t  ngx_http_seatgate_module;

extern ngx_http_seatgate_worker_t  *ngx_http_seatgate_worker;
extern ngx_http_seatgate_stats_t   *ngx_http_seatgate_stats;
extern uint64_t  ngx_http_seatgate_latency_us[NGX_HTTP_SEATGATE_LATENCIES];


/* ngx_http_seatgate_module.c */
ngx_http_seatgate_ctx_t *ngx_http_seatgate_create_ctx(
    ngx_http_request_t *r);
ngx_http_seatgate_pending_t *ngx_http_seatgate_pending(
    ngx_http_request_t *r, ngx_http_seatgate_ctx_t *ctx, ngx_uint_t kind,
    ngx_str_t *pool, ngx_str_t *user, ngx_str_t *obo, ngx_str_t *feature,
    ngx_int_t slot);
ngx_int_t ngx_http_seatgate_submit(ngx_http_seatgate_ctx_t *ctx,
    ngx_http_seatgate_pending_t *p);
void ngx_http_seatgate_wait(ngx_http_request_t *r,
    ngx_http_seatgate_ctx_t *ctx, ngx_http_seatgate_resume_pt resume);

/* ngx_http_seatgate_cache.c */
size_t ngx_http_seatgate_key(u_char *buf, ngx_str_t *pool,
    ngx_str_t *user, ngx_str_t *obo, ngx_str_t *feature);
ngx_int_t ngx_http_seatgate_cache_lookup(ngx_http_seatgate_zone_t *z,
    u_char *key, size_t len, ngx_http_seatgate_ctx_t *ctx,
    ngx_http_request_t *r, ngx_uint_t *renew);
void ngx_http_seatgate_cache_store(ngx_http_seatgate_zone_t *z,
    ngx_http_seatgate_pending_t *p, sg_decision *d);
void ngx_http_seatgate_cache_drop(ngx_http_seatgate_zone_t *z,
    u_char *key, size_t len, ngx_uint_t unmark);
void ngx_http_seatgate_gens_read(ngx_http_seatgate_zone_t *z,
    ngx_http_seatgate_pending_t *p);
void ngx_http_seatgate_cache_revoke(ngx_http_seatgate_zone_t *z,
    u_char *pool, size_t pool_len, u_char *user, size_t user_len);
ngx_int_t ngx_http_seatgate_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);

/* ngx_http_seatgate_scim.c */
ngx_int_t ngx_http_seatgate_scim_handler(ngx_http_request_t *r);
char *ngx_http_seatgate_scim(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);

/* ngx_http_seatgate_pubsub.c */
ngx_uint_t ngx_http_seatgate_covered(ngx_msec_t confirmed);
void ngx_http_seatgate_subscribe(ngx_http_seatgate_redis_t *rd);
void ngx_http_seatgate_unsubscribed(ngx_http_seatgate_redis_t *rd);
void ngx_http_seatgate_heartbeat(ngx_event_t *ev);

/* ngx_http_seatgate_response.c */
ngx_int_t ngx_http_seatgate_metrics_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_seatgate_deny(ngx_http_request_t *r,
    ngx_http_seatgate_ctx_t *ctx, ngx_http_seatgate_loc_conf_t *slcf);
ngx_int_t ngx_http_seatgate_respond(ngx_http_request_t *r,
    ngx_uint_t status, ngx_str_t *body, ngx_uint_t json);
ngx_uint_t ngx_http_seatgate_wants_json(ngx_http_request_t *r);
ngx_int_t ngx_http_seatgate_filter_init(ngx_conf_t *cf);
ngx_int_t ngx_http_seatgate_add_header(ngx_http_request_t *r,
    char *name, ngx_str_t *value);
void ngx_http_seatgate_count(sg_result result, ngx_int_t slot);
void ngx_http_seatgate_count_free(ngx_int_t slot);
ngx_int_t ngx_http_seatgate_send_counted(ngx_http_seatgate_redis_t *rd,
    ngx_http_seatgate_redis_op_t *op, sg_cmd *cmd);
void ngx_http_seatgate_flush_free(void);
uint64_t ngx_http_seatgate_now_us(void);
ngx_int_t ngx_http_seatgate_init_stats_zone(ngx_shm_zone_t *shm_zone,
    void *data);


#endif /* _NGX_HTTP_SEATGATE_H_INCLUDED_ */
