
/*
 * ngx_http_seatgate_module: denials, metrics and counters.
 *
 * A denial answers 403 or 503 with Retry-After and X-Seatgate-Reason
 * through nginx's own error pages: an error_page for the status, or
 * nginx's short page, whose body a filter replaces with the reason in
 * HTML or JSON; seatgate_metrics answers in Prometheus text from the counters
 * the workers share.
 */


#include "ngx_http_seatgate.h"


static ngx_http_output_header_filter_pt  ngx_http_next_header_filter;
static ngx_http_output_body_filter_pt    ngx_http_next_body_filter;


static void ngx_http_seatgate_metrics_resume(ngx_http_request_t *r);
static ngx_int_t ngx_http_seatgate_header_filter(ngx_http_request_t *r);
static ngx_int_t ngx_http_seatgate_body_filter(ngx_http_request_t *r,
    ngx_chain_t *in);
static ngx_int_t ngx_http_seatgate_denial_body(ngx_http_request_t *r,
    ngx_http_seatgate_ctx_t *ctx, ngx_uint_t json);
static u_char *ngx_http_seatgate_message(u_char *p, u_char *last,
    ngx_http_seatgate_ctx_t *ctx);


ngx_int_t
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
    static const struct {
        const char  *name;
        const char  *help;
        size_t       offset;
    } gauges[] = {
        { "seats_in_use", "Floating seats held, by pool.",
          offsetof(ngx_http_seatgate_pool_stats_t, in_use) },
        { "seats_floating", "Floating seats bought, by pool.",
          offsetof(ngx_http_seatgate_pool_stats_t, floating) },
        { "seats_capacity", "Floating seats with overdraft, by pool.",
          offsetof(ngx_http_seatgate_pool_stats_t, capacity) },
        { "seats_named", "Named seats bought, by pool.",
          offsetof(ngx_http_seatgate_pool_stats_t, named) },
    };

    static const struct {
        const char  *name;
        const char  *help;
        size_t       offset;
    } counters[] = {
        { "cache_hits_total", "Decisions answered from the shared cache.",
          offsetof(ngx_http_seatgate_stats_t, cache_hits) },
        { "cache_misses_total", "Decisions that had to ask Redis.",
          offsetof(ngx_http_seatgate_stats_t, cache_misses) },
        { "shared_flights_total",
          "Cache misses answered by a call another request made (single flight).",
          offsetof(ngx_http_seatgate_stats_t, shared_flights) },
        { "lease_renewals_total", "Background renewals of cached leases.",
          offsetof(ngx_http_seatgate_stats_t, renewals) },
        { "revocations_total",
          "Revocation messages received (summed over workers).",
          offsetof(ngx_http_seatgate_stats_t, revocations) },
        { "releases_total", "Seats released by logout.",
          offsetof(ngx_http_seatgate_stats_t, releases) },
        { "redis_commands_total", "Redis commands sent.",
          offsetof(ngx_http_seatgate_stats_t, redis_commands) },
        { "redis_errors_total",
          "Redis failures: link down, lost reply, error reply, timeout.",
          offsetof(ngx_http_seatgate_stats_t, redis_errors) },
        { "redis_timeouts_total",
          "Requests that waited their whole timeout for Redis.",
          offsetof(ngx_http_seatgate_stats_t, redis_timeouts) },
        { "redis_cluster_redirects_total",
          "Redis Cluster: MOVED, ASK and TRYAGAIN replies followed.",
          offsetof(ngx_http_seatgate_stats_t, cluster_redirects) },
        { "redis_cluster_maps_total",
          "Redis Cluster: slot maps read (start, failover, MOVED, every 5 s).",
          offsetof(ngx_http_seatgate_stats_t, cluster_maps) },
    };

    u_char                          *p;
    size_t                           size;
    ngx_str_t                        body;
    ngx_buf_t                       *b;
    ngx_uint_t                       i, j, k, up, sub, npools;
    ngx_http_seatgate_redis_t       *cmd;
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

    for (k = 0; k < sizeof(gauges) / sizeof(gauges[0]); k++) {
        p = ngx_sprintf(p, "# HELP seatgate_%s %s\n# TYPE seatgate_%s gauge\n",
                        gauges[k].name, gauges[k].help, gauges[k].name);

        for (j = 0; j < npools; j++) {
            ps = &st->pools[j];
            if (ps->known) {
                p = ngx_sprintf(p, "seatgate_%s{pool=\"%s\"} %uA\n",
                                gauges[k].name, ps->name,
                                *(ngx_atomic_t *) ((u_char *) ps
                                                   + gauges[k].offset));
            }
        }
    }

    for (k = 0; k < sizeof(counters) / sizeof(counters[0]); k++) {
        p = ngx_sprintf(p, "# HELP seatgate_%s %s\n# TYPE seatgate_%s counter\n"
                           "seatgate_%s %uA\n",
                        counters[k].name, counters[k].help, counters[k].name,
                        counters[k].name,
                        *(ngx_atomic_t *) ((u_char *) st + counters[k].offset));
    }

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
        cmd = &ngx_http_seatgate_worker->cmd;
        up = cmd->cluster ? ngx_http_seatgate_cluster_up(cmd->cluster)
                          : (cmd->state == NGX_HTTP_SEATGATE_REDIS_READY);
        sub = ngx_http_seatgate_covered(ngx_current_msec);
    }

    SG_HELP("redis_up", "gauge",
            "1 when the answering worker's Redis link is up (Cluster: a "
            "map of every slot and a link to each of its masters).");
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


/*
 * A denial: its headers, then the status goes back to nginx, whose own
 * error-page machinery answers (an error_page for the status, on nginx's
 * conditions, or else its short page for the status, which the filters
 * below dress with the reason).
 */

ngx_int_t
ngx_http_seatgate_deny(ngx_http_request_t *r, ngx_http_seatgate_ctx_t *ctx,
    ngx_http_seatgate_loc_conf_t *slcf)
{
    ngx_str_t   value;
    ngx_uint_t  status;

    status = (ctx->result == SG_DENIED_EXHAUSTED
              || ctx->result == SG_ERROR_BACKEND)
             ? NGX_HTTP_SERVICE_UNAVAILABLE : NGX_HTTP_FORBIDDEN;

    ngx_str_set(&value, "no-store");

    if (ngx_http_seatgate_add_header(r, "X-Seatgate-Reason", &ctx->reason)
        != NGX_OK
        || ngx_http_seatgate_add_header(r, "Cache-Control", &value) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (status == NGX_HTTP_SERVICE_UNAVAILABLE) {

        /* the header is sent after this returns: its value lives in the
         * request's pool */

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

    ctx->status = status;
    ctx->uri_changes = r->uri_changes;

    return status;
}


/*
 * The response to a denial that no error_page took over is nginx's own
 * short page for the status: same status, and no internal redirect since
 * the denial. Its body is replaced by the reason in HTML or JSON.
 */

static ngx_int_t
ngx_http_seatgate_header_filter(ngx_http_request_t *r)
{
    ngx_uint_t                json;
    ngx_http_seatgate_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_seatgate_module);

    if (ctx == NULL
        || ctx->status == 0
        || ctx->body.data
        || r->headers_out.status != ctx->status
        || r->uri_changes != ctx->uri_changes)
    {
        return ngx_http_next_header_filter(r);
    }

    json = ngx_http_seatgate_wants_json(r);

    if (ngx_http_seatgate_denial_body(r, ctx, json) != NGX_OK) {
        return NGX_ERROR;
    }

    if (json) {
        ngx_str_set(&r->headers_out.content_type, "application/json");

    } else {
        ngx_str_set(&r->headers_out.content_type, "text/html; charset=utf-8");
    }

    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_type_lowcase = NULL;

    r->headers_out.content_length_n = ctx->body.len;

    if (r->headers_out.content_length) {
        r->headers_out.content_length->hash = 0;
        r->headers_out.content_length = NULL;
    }

    ctx->replace = 1;

    return ngx_http_next_header_filter(r);
}


static ngx_int_t
ngx_http_seatgate_body_filter(ngx_http_request_t *r, ngx_chain_t *in)
{
    ngx_buf_t                *b;
    ngx_uint_t                last;
    ngx_chain_t              *cl, out;
    ngx_http_seatgate_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_seatgate_module);

    if (ctx == NULL || !ctx->replace) {
        return ngx_http_next_body_filter(r, in);
    }

    /* nginx's page is dropped; the reason goes out at its end */

    last = 0;

    for (cl = in; cl; cl = cl->next) {
        b = cl->buf;

        if (ngx_buf_in_memory(b)) {
            b->pos = b->last;
        }

        if (b->in_file) {
            b->file_pos = b->file_last;
        }

        if (b->last_buf || b->last_in_chain) {
            last = 1;
        }
    }

    if (!last) {
        return NGX_OK;
    }

    ctx->replace = 0;

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_ERROR;
    }

    b->pos = ctx->body.data;
    b->last = ctx->body.data + ctx->body.len;
    b->memory = ctx->body.len ? 1 : 0;
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    return ngx_http_next_body_filter(r, &out);
}


static ngx_int_t
ngx_http_seatgate_denial_body(ngx_http_request_t *r,
    ngx_http_seatgate_ctx_t *ctx, ngx_uint_t json)
{
    u_char  *p, *msg, *msg_end;
    size_t   len;
    u_char   text[512];

    msg = text;
    msg_end = ngx_http_seatgate_message(text, text + sizeof(text), ctx);

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
            return NGX_ERROR;
        }

        ctx->body.data = p;

        p = ngx_sprintf(p, "{\"result\":\"%s\",\"reason\":\"%V\",\"pool\":\"",
                        sg_result_name(ctx->result), &ctx->reason);
        p = (u_char *) ngx_escape_json(p, ctx->pool.data, ctx->pool.len);
        p = ngx_cpymem(p, "\",\"user\":\"", sizeof("\",\"user\":\"") - 1);
        p = (u_char *) ngx_escape_json(p, ctx->user.data, ctx->user.len);
        p = ngx_cpymem(p, "\",\"seat\":\"none\",\"message\":\"",
                       sizeof("\",\"seat\":\"none\",\"message\":\"") - 1);
        p = (u_char *) ngx_escape_json(p, msg, msg_end - msg);
        p = ngx_cpymem(p, "\"}\n", 3);

    } else {
        len = sizeof("<html>\n<head><title></title></head>\n<body>\n"
                     "<h1></h1>\n<p></p>\n<p><small></small></p>\n"
                     "</body>\n</html>\n")
              + 2 * 64 + ctx->reason.len
              + (msg_end - msg)
              + ngx_escape_html(NULL, msg, msg_end - msg);

        p = ngx_pnalloc(r->pool, len);
        if (p == NULL) {
            return NGX_ERROR;
        }

        ctx->body.data = p;

        p = ngx_sprintf(p, "<html>\n<head><title>%s</title></head>\n<body>\n"
                           "<h1>%s</h1>\n<p>",
                        ctx->status == NGX_HTTP_FORBIDDEN
                        ? "403 No seat" : "503 No seat available",
                        ctx->status == NGX_HTTP_FORBIDDEN
                        ? "No seat" : "No seat available");
        p = (u_char *) ngx_escape_html(p, msg, msg_end - msg);
        p = ngx_sprintf(p, "</p>\n<p><small>%V</small></p>\n"
                           "</body>\n</html>\n", &ctx->reason);
    }

    ctx->body.len = p - ctx->body.data;

    return NGX_OK;
}


ngx_int_t
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

    if (json == 3) {
        ngx_str_set(&r->headers_out.content_type,
                    "application/scim+json; charset=utf-8");

    } else if (json == 2) {
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


ngx_uint_t
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


ngx_int_t
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


void
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


uint64_t
ngx_http_seatgate_now_us(void)
{
    struct timespec  ts;

    (void) clock_gettime(CLOCK_MONOTONIC, &ts);

    return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}


ngx_int_t
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

    if (osmcf || shm_zone->shm.exists) {
        st = osmcf ? osmcf->stats : shpool->data;

        if (st->layout != NGX_HTTP_SEATGATE_LAYOUT) {
            ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                          "seatgate zone \"%V\" was made by another build "
                          "of the module: restart nginx to use this one",
                          &shm_zone->shm.name);
            return NGX_ERROR;
        }

    } else {
        st = ngx_slab_calloc(shpool, sizeof(ngx_http_seatgate_stats_t));
        if (st == NULL) {
            return NGX_ERROR;
        }

        st->layout = NGX_HTTP_SEATGATE_LAYOUT;
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


ngx_int_t
ngx_http_seatgate_filter_init(ngx_conf_t *cf)
{
    ngx_http_next_header_filter = ngx_http_top_header_filter;
    ngx_http_top_header_filter = ngx_http_seatgate_header_filter;

    ngx_http_next_body_filter = ngx_http_top_body_filter;
    ngx_http_top_body_filter = ngx_http_seatgate_body_filter;

    return NGX_OK;
}


/*
 * The free tier ("seatgate off pool=NAME"): requests are counted in the
 * stats zone, and whichever worker's heartbeat comes first sends the count
 * to the pool's usage records (sg_usage_free_cmd), on its command link.
 */

typedef struct {
    ngx_http_seatgate_redis_op_t   op;
    ngx_int_t                      how;
    long                           n;
    char                           pool[SG_POOL_MAX + 1];
} ngx_http_seatgate_free_t;


/* a built command goes out on the link, counted in the statistics */

ngx_int_t
ngx_http_seatgate_send_counted(ngx_http_seatgate_redis_t *rd,
    ngx_http_seatgate_redis_op_t *op, sg_cmd *cmd)
{
    (void) ngx_atomic_fetch_add(&ngx_http_seatgate_stats->redis_commands, 1);

    return ngx_http_seatgate_redis_command(rd, op, cmd->argc, cmd->argv,
                                           cmd->argvlen);
}


void
ngx_http_seatgate_count_free(ngx_int_t slot)
{
    if (ngx_http_seatgate_stats && slot >= 0) {
        (void) ngx_atomic_fetch_add(&ngx_http_seatgate_stats->pools[slot].free,
                                    1);
    }
}


static ngx_int_t
ngx_http_seatgate_free_send(ngx_http_seatgate_redis_t *rd,
    ngx_http_seatgate_redis_op_t *op)
{
    ngx_http_seatgate_free_t  *f = op->data;

    static sg_cmd              cmd;

    if (sg_usage_free_cmd(f->pool, f->n, (int) f->how, &cmd) != 0) {
        return NGX_ERROR;
    }

    return ngx_http_seatgate_send_counted(rd, op, &cmd);
}


static void
ngx_http_seatgate_free_done(ngx_http_seatgate_redis_t *rd,
    ngx_http_seatgate_redis_op_t *op, redisReply *reply)
{
    int                        how;
    ngx_http_seatgate_free_t  *f = op->data;

    if (reply && (how = sg_script_call_next(reply, (int) f->how)) >= 0) {
        f->how = how;

        if (ngx_http_seatgate_redis_submit(rd, op) == NGX_OK) {
            return;
        }
    }

    if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "seatgate: %l free-tier requests of pool \"%s\" not "
                      "recorded: %s", f->n, f->pool,
                      reply ? reply->str : "no answer");
    }

    ngx_free(f);
}


void
ngx_http_seatgate_flush_free(void)
{
    ngx_uint_t                       i;
    ngx_atomic_uint_t                n;
    ngx_http_seatgate_free_t        *f;
    ngx_http_seatgate_worker_t      *w;
    ngx_http_seatgate_pool_stats_t  *ps;

    w = ngx_http_seatgate_worker;

    if (w == NULL || ngx_http_seatgate_stats == NULL || w->exiting) {
        return;
    }

    for (i = 0; i < NGX_HTTP_SEATGATE_POOLS_MAX; i++) {
        ps = &ngx_http_seatgate_stats->pools[i];

        if (ps->name[0] == '\0') {
            break;
        }

        n = ps->free;

        if (n == 0 || !ngx_atomic_cmp_set(&ps->free, n, 0)) {
            continue;
        }

        f = ngx_alloc(sizeof(ngx_http_seatgate_free_t), ngx_cycle->log);
        if (f == NULL) {
            (void) ngx_atomic_fetch_add(&ps->free, n);
            return;
        }

        ngx_memzero(f, sizeof(ngx_http_seatgate_free_t));
        f->op.send = ngx_http_seatgate_free_send;
        f->op.done = ngx_http_seatgate_free_done;
        f->op.data = f;
        f->how = sg_script_call_first();
        f->n = (long) n;
        ngx_cpystrn((u_char *) f->pool, ps->name, sizeof(f->pool));
        f->op.slot = sg_pool_slot(f->pool);

        if (ngx_http_seatgate_redis_submit(&w->cmd, &f->op) != NGX_OK) {
            (void) ngx_atomic_fetch_add(&ps->free, n);  /* next time */
            ngx_free(f);
        }
    }
}
