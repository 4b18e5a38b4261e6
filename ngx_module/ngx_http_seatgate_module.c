
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


#include "ngx_http_seatgate.h"


static ngx_int_t ngx_http_seatgate_handler(ngx_http_request_t *r);
static ngx_http_seatgate_pending_t *ngx_http_seatgate_flight_find(u_char *key,
    size_t len);
static void ngx_http_seatgate_flight_add(ngx_http_seatgate_pending_t *p);
static void ngx_http_seatgate_flight_remove(ngx_http_seatgate_pending_t *p);
static ngx_int_t ngx_http_seatgate_finish(ngx_http_request_t *r,
    ngx_http_seatgate_ctx_t *ctx, ngx_http_seatgate_loc_conf_t *slcf);
static ngx_int_t ngx_http_seatgate_release_handler(ngx_http_request_t *r,
    ngx_http_seatgate_loc_conf_t *slcf);
static ngx_uint_t ngx_http_seatgate_str_eq(ngx_str_t *a, ngx_str_t *b);
static ngx_int_t ngx_http_seatgate_user(ngx_http_request_t *r,
    ngx_http_seatgate_loc_conf_t *slcf, ngx_http_seatgate_ctx_t *ctx,
    char **why);
static ngx_int_t ngx_http_seatgate_time_param(ngx_conf_t *cf,
    ngx_command_t *cmd, ngx_str_t *v, char *name, ngx_uint_t zero_ok,
    ngx_msec_t *ms);
static ngx_http_seatgate_ctx_t *ngx_http_seatgate_get_ctx(
    ngx_http_request_t *r, ngx_uint_t *redirected);
static ngx_int_t ngx_http_seatgate_identity(ngx_http_request_t *r,
    ngx_http_complex_value_t *cv, ngx_str_t *value);
static ngx_int_t ngx_http_seatgate_send(ngx_http_seatgate_redis_t *rd,
    ngx_http_seatgate_redis_op_t *op);
static void ngx_http_seatgate_done(ngx_http_seatgate_redis_t *rd,
    ngx_http_seatgate_redis_op_t *op, redisReply *reply);
static void ngx_http_seatgate_apply(ngx_http_seatgate_ctx_t *ctx,
    sg_decision *d);
static void ngx_http_seatgate_wake(ngx_http_seatgate_ctx_t *ctx);
static void ngx_http_seatgate_wake_handler(ngx_event_t *ev);
static void ngx_http_seatgate_detach(ngx_http_seatgate_ctx_t *ctx);
static void ngx_http_seatgate_cleanup(void *data);
static void ngx_http_seatgate_set_result(ngx_http_seatgate_ctx_t *ctx,
    sg_result result, const char *reason);
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
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE12,
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

    { ngx_string("seatgate_scim"),
      NGX_HTTP_LOC_CONF|NGX_CONF_2MORE,
      ngx_http_seatgate_scim,
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
uint64_t  ngx_http_seatgate_latency_us[NGX_HTTP_SEATGATE_LATENCIES] = {
    250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000,
    500000, 1000000
};


ngx_http_seatgate_worker_t  *ngx_http_seatgate_worker;
ngx_http_seatgate_stats_t   *ngx_http_seatgate_stats;


/* ---- the seat check ----------------------------------------------------- */

static ngx_int_t
ngx_http_seatgate_handler(ngx_http_request_t *r)
{
    char                           *why;
    size_t                          len;
    ngx_int_t                       rc;
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

    rc = ngx_http_seatgate_user(r, slcf, ctx, &why);

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (slcf->mode == NGX_HTTP_SEATGATE_OFF) {

        /* free tier: no seat, no Redis; identified (if valid) for the logs */

        ngx_http_seatgate_set_result(ctx, SG_GRANTED_FREE, "free_tier");
        ctx->seat = SG_SEAT_FREE;
        ngx_http_seatgate_count(SG_GRANTED_FREE, -1);

        if (slcf->pool_stats) {
            ngx_http_seatgate_count_free(slcf->pool_stats->slot);
        }

        return NGX_DECLINED;
    }

    if (rc == NGX_DECLINED) {
        ngx_http_seatgate_set_result(ctx, SG_DENIED_UNASSIGNED, why);
        ngx_http_seatgate_count(SG_DENIED_UNASSIGNED,
                                slcf->pool_stats->slot);
        return ngx_http_seatgate_finish(r, ctx, slcf);
    }

    user = ctx->identity;

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
    char                           *why;
    u_char                         *last;
    ngx_int_t                       rc;
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

        rc = ngx_http_seatgate_user(r, slcf, ctx, &why);

        if (rc == NGX_ERROR) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (rc == NGX_DECLINED) {
            ngx_http_seatgate_set_result(ctx, SG_DENIED_UNASSIGNED, why);
            return ngx_http_seatgate_deny(r, ctx, slcf);
        }

        user = ctx->identity;

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
                            : ngx_strcmp(ctx->reason.data, "session_closed") == 0
                              ? "Signed out here; your other sessions keep "
                                "your seat."
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


ngx_http_seatgate_ctx_t *
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


/*
 * The request's identity (seatgate_user): NGX_OK with ctx->identity and
 * ctx->user set, NGX_DECLINED when it is empty or invalid (*why says which),
 * NGX_ERROR when out of memory.
 */

static ngx_int_t
ngx_http_seatgate_user(ngx_http_request_t *r,
    ngx_http_seatgate_loc_conf_t *slcf, ngx_http_seatgate_ctx_t *ctx,
    char **why)
{
    ngx_str_t  user;

    if (ngx_http_seatgate_identity(r, slcf->user, &user) != NGX_OK) {
        return NGX_ERROR;
    }

    if (user.len == 0 || sg_valid_ident((char *) user.data, NULL, 0) != 0) {
        *why = user.len ? "invalid_identity" : "no_identity";
        return NGX_DECLINED;
    }

    ctx->identity = user;
    ctx->user = user;

    return NGX_OK;
}


ngx_http_seatgate_pending_t *
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
    p->op.slot = -1;
    ngx_queue_init(&p->followers);
    p->kind = kind;
    p->slot = slot;
    p->how = sg_script_call_first();

    ngx_cpystrn((u_char *) p->pool, pool->data,
                ngx_min(pool->len, SG_POOL_MAX) + 1);
    p->op.slot = sg_pool_slot(p->pool);
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


ngx_int_t
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
                            p->host, (int) p->how, &cmd);

    } else {
        rc = sg_decide_cmd(&p->rq, (int) p->how, &cmd);
    }

    if (rc != 0) {
        return NGX_ERROR;
    }

    return ngx_http_seatgate_send_counted(rd, op, &cmd);
}


static void
ngx_http_seatgate_done(ngx_http_seatgate_redis_t *rd,
    ngx_http_seatgate_redis_op_t *op, redisReply *reply)
{
    int                              how;
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

    if (reply && (how = sg_script_call_next(reply, (int) p->how)) >= 0) {

        /* the library is not loaded (FCALL: try EVALSHA), or the script
         * cache was flushed (a restarted Redis: send the body) */

        p->how = how;

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


void
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


/*
 * A "name=TIME" parameter of a directive: NGX_OK with *ms set, NGX_DECLINED
 * when the parameter is another one, NGX_ERROR (logged) when invalid.
 */

static ngx_int_t
ngx_http_seatgate_time_param(ngx_conf_t *cf, ngx_command_t *cmd, ngx_str_t *v,
    char *name, ngx_uint_t zero_ok, ngx_msec_t *ms)
{
    size_t     n;
    ngx_int_t  t;
    ngx_str_t  s;

    n = ngx_strlen(name);

    if (v->len <= n || ngx_strncmp(v->data, name, n) != 0 || v->data[n] != '=')
    {
        return NGX_DECLINED;
    }

    s.len = v->len - n - 1;
    s.data = v->data + n + 1;

    t = ngx_parse_time(&s, 0);

    if (t == NGX_ERROR || (t == 0 && !zero_ok)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid %s \"%V\" in \"%V\" directive",
                           name, v, &cmd->name);
        return NGX_ERROR;
    }

    *ms = (ngx_msec_t) t;

    return NGX_OK;
}


static char *
ngx_http_seatgate_redis(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_seatgate_main_conf_t *smcf = conf;

    char                            *rv;
    ngx_str_t                       *value, name;
    ngx_int_t                        rc_param;
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

        rc_param = ngx_http_seatgate_time_param(cf, cmd, &value[i], "timeout",
                                                0, &rc->timeout);
        if (rc_param == NGX_ERROR) {
            return NGX_CONF_ERROR;
        }

        if (rc_param == NGX_OK) {
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
    ngx_int_t                  rc_param;
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

        rc_param = ngx_http_seatgate_time_param(cf, cmd, &value[i], "deny_ttl",
                                                1, &z->deny_ttl);
        if (rc_param == NGX_ERROR) {
            return NGX_CONF_ERROR;
        }

        if (rc_param == NGX_OK) {
            continue;
        }

        rc_param = ngx_http_seatgate_time_param(cf, cmd, &value[i], "ttl",
                                                0, &z->ttl);
        if (rc_param == NGX_ERROR) {
            return NGX_CONF_ERROR;
        }

        if (rc_param == NGX_OK) {
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

        if (cf->args->nelts == 2) {
            return NGX_CONF_OK;
        }

        /* "seatgate off pool=NAME": the free tier of pool NAME, counted in
         * its usage records (seatctl report) without taking a seat */

        if (ngx_strncmp(value[2].data, "pool=", 5) != 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\"", &value[2]);
            return NGX_CONF_ERROR;
        }

        value[2].data += 5;
        value[2].len -= 5;

        if (sg_valid_name((char *) value[2].data, err, sizeof(err)) != 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid pool \"%V\" in \"%V off\": %s",
                               &value[2], &cmd->name, err);
            return NGX_CONF_ERROR;
        }

        slcf->pool = value[2];
        slcf->pool_stats = ngx_http_seatgate_add_pool(cf, &value[2]);

        return slcf->pool_stats ? NGX_CONF_OK : NGX_CONF_ERROR;
    }

    if (cf->args->nelts > 2) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\" (only \"%V off\" takes "
                           "pool=)", &value[2], &cmd->name);
        return NGX_CONF_ERROR;
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

    return ngx_http_seatgate_filter_init(cf);
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

    if (smcf->redis->url.kind == SG_URL_CLUSTER
        && ngx_http_seatgate_cluster_init(&w->cmd, cycle->pool) != NGX_OK)
    {
        return NGX_ERROR;
    }

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
