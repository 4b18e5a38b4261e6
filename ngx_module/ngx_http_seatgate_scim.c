
/*
 * ngx_http_seatgate_module: the SCIM 2.0 endpoint (seatgate_scim), a
 * content handler. The request's body is read, a bearer token checked, and
 * the request handed to libseatgate's SCIM state machine (common/scim.c),
 * whose Redis commands go out on the worker's non-blocking link, a batch at
 * a time. The request waits at most timeout=; a request whose client left or
 * timed out still runs to its end, so a user change is never left half done.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_seatgate.h"


typedef struct ngx_http_seatgate_scim_job_s  ngx_http_seatgate_scim_job_t;

typedef struct {
    ngx_http_seatgate_redis_op_t     op;
    ngx_http_seatgate_scim_job_t    *job;
    ngx_int_t                        index;
} ngx_http_seatgate_scim_op_t;


struct ngx_http_seatgate_scim_job_s {
    ngx_http_request_t              *request;  /* NULL: answered or gone */
    ngx_pool_cleanup_t              *cleanup;
    sg_scim                         *scim;
    ngx_http_seatgate_scim_op_t     *ops;
    ngx_uint_t                       nops;
    ngx_uint_t                       outstanding;
    ngx_event_t                      deadline;
    ngx_log_t                       *log;
    unsigned                         submitting:1;
    unsigned                         answered:1;
};


static void ngx_http_seatgate_scim_body(ngx_http_request_t *r);
static ngx_int_t ngx_http_seatgate_scim_auth(ngx_http_request_t *r,
    ngx_http_seatgate_scim_conf_t *sc);
static ngx_int_t ngx_http_seatgate_scim_error(ngx_http_request_t *r,
    ngx_uint_t status, const char *detail);
static ngx_int_t ngx_http_seatgate_scim_slot(
    ngx_http_seatgate_scim_job_t *job, int i);
static void ngx_http_seatgate_scim_pump(ngx_http_seatgate_scim_job_t *job,
    int n);
static ngx_int_t ngx_http_seatgate_scim_send(ngx_http_seatgate_redis_t *rd,
    ngx_http_seatgate_redis_op_t *op);
static void ngx_http_seatgate_scim_done(ngx_http_seatgate_redis_t *rd,
    ngx_http_seatgate_redis_op_t *op, redisReply *reply);
static void ngx_http_seatgate_scim_answer(ngx_http_seatgate_scim_job_t *job);
static void ngx_http_seatgate_scim_timeout(ngx_event_t *ev);
static void ngx_http_seatgate_scim_cleanup(void *data);
static void ngx_http_seatgate_scim_free(ngx_http_seatgate_scim_job_t *job);
static ngx_int_t ngx_http_seatgate_scim_output(ngx_http_request_t *r,
    ngx_uint_t status, u_char *body, size_t len, const char *location,
    const char *etag);
static char *ngx_http_seatgate_scim_read(ngx_conf_t *cf, ngx_str_t *name,
    ngx_str_t *out, ngx_uint_t secret);
static void ngx_http_seatgate_scim_map_free(void *data);


ngx_int_t
ngx_http_seatgate_scim_handler(ngx_http_request_t *r)
{
    ngx_int_t                       rc;
    ngx_http_core_loc_conf_t       *clcf;
    ngx_http_seatgate_loc_conf_t   *slcf;

    slcf = ngx_http_get_module_loc_conf(r, ngx_http_seatgate_module);

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_POST|NGX_HTTP_PUT
                       |NGX_HTTP_PATCH|NGX_HTTP_DELETE)))
    {
        return ngx_http_seatgate_scim_error(r, NGX_HTTP_NOT_ALLOWED,
                                            "the method is not allowed");
    }

    rc = ngx_http_seatgate_scim_auth(r, slcf->scim);

    if (rc != NGX_OK) {
        return ngx_http_seatgate_scim_error(r, NGX_HTTP_UNAUTHORIZED,
                                            rc == NGX_DECLINED
                                            ? "a bearer token is required"
                                            : "the bearer token is not valid");
    }

    /* the body is read from memory only: one that would not fit in
     * client_body_buffer_size would go to a temporary file, and reading it
     * back would block the worker */

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    if (r->headers_in.content_length_n > (off_t) clcf->client_body_buffer_size) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "seatgate: SCIM body of %O bytes refused: larger than "
                      "client_body_buffer_size (%uz)",
                      r->headers_in.content_length_n,
                      clcf->client_body_buffer_size);
        return ngx_http_seatgate_scim_error(r,
                   NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                   "the body is larger than this endpoint reads "
                   "(client_body_buffer_size)");
    }

    r->request_body_in_single_buf = 1;

    rc = ngx_http_read_client_request_body(r, ngx_http_seatgate_scim_body);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;
}


/*
 * Authorization: Bearer TOKEN, compared in constant time; or nginx's own
 * authentication in front (auth=nginx). NGX_OK, or NGX_DECLINED (no token)
 * or NGX_ERROR (a wrong one) with WWW-Authenticate set.
 */

static ngx_int_t
ngx_http_seatgate_scim_auth(ngx_http_request_t *r,
    ngx_http_seatgate_scim_conf_t *sc)
{
    u_char            diff;
    size_t            i;
    ngx_str_t         given, value;
    ngx_table_elt_t  *h;

    if (sc->token.len == 0) {
        return NGX_OK;
    }

    h = r->headers_in.authorization;
    ngx_str_null(&given);

    if (h && h->value.len > 7
        && ngx_strncasecmp(h->value.data, (u_char *) "Bearer ", 7) == 0)
    {
        given.data = h->value.data + 7;
        given.len = h->value.len - 7;

        while (given.len && given.data[0] == ' ') {
            given.data++;
            given.len--;
        }
    }

    diff = (u_char) (given.len != sc->token.len);

    for (i = 0; i < sc->token.len; i++) {
        diff |= sc->token.data[i] ^ (i < given.len ? given.data[i] : 0);
    }

    if (given.len && diff == 0) {
        return NGX_OK;
    }

    if (given.len) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "seatgate: scim: a request with a wrong bearer token");
        ngx_str_set(&value, "Bearer realm=\"seatgate-scim\", "
                            "error=\"invalid_token\"");

    } else {
        ngx_str_set(&value, "Bearer realm=\"seatgate-scim\"");
    }

    (void) ngx_http_seatgate_add_header(r, "WWW-Authenticate", &value);

    return given.len ? NGX_ERROR : NGX_DECLINED;
}


static ngx_int_t
ngx_http_seatgate_scim_error(ngx_http_request_t *r, ngx_uint_t status,
    const char *detail)
{
    u_char  *p, *body;
    size_t   len;

    if (ngx_http_discard_request_body(r) != NGX_OK) {
        r->keepalive = 0;
    }

    len = sizeof("{\"schemas\":[\"urn:ietf:params:scim:api:messages:2.0:"
                 "Error\"],\"status\":\"\",\"detail\":\"\"}") - 1
          + NGX_INT_T_LEN + ngx_strlen(detail);

    body = ngx_pnalloc(r->pool, len);
    if (body == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_sprintf(body, "{\"schemas\":[\"urn:ietf:params:scim:api:messages:"
                    "2.0:Error\"],\"status\":\"%ui\",\"detail\":\"%s\"}",
                    status, detail);

    return ngx_http_seatgate_scim_output(r, status, body, p - body, NULL,
                                         NULL);
}


static void
ngx_http_seatgate_scim_body(ngx_http_request_t *r)
{
    u_char                         *body, *p;
    size_t                          len;
    ngx_buf_t                      *b;
    ngx_str_t                       base;
    ngx_chain_t                    *cl;
    ngx_pool_cleanup_t             *cln;
    sg_scim_request                 rq;
    ngx_http_seatgate_scim_job_t   *job;
    ngx_http_seatgate_loc_conf_t   *slcf;

    u_char  path[2048], query[4096], method[16], by[NGX_SOCKADDR_STRLEN + 320];
    u_char  url[1024], host[NGX_MAXHOSTNAMELEN + 1];

    slcf = ngx_http_get_module_loc_conf(r, ngx_http_seatgate_module);

    /* the body, from memory (a chunked body that went to a temporary file
     * is refused, as one announced too large is by the handler) */

    len = 0;

    for (cl = r->request_body ? r->request_body->bufs : NULL; cl;
         cl = cl->next)
    {
        b = cl->buf;

        if (ngx_buf_size(b) == 0) {
            continue;
        }

        /* refused before anything is allocated for it */

        if (!ngx_buf_in_memory(b)) {
            ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                          "seatgate: SCIM body refused: larger than "
                          "client_body_buffer_size");
            ngx_http_finalize_request(r,
                ngx_http_seatgate_scim_error(r,
                    NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                    "the body is larger than this endpoint reads "
                    "(client_body_buffer_size)"));
            return;
        }

        len += (size_t) (b->last - b->pos);
    }

    body = ngx_pnalloc(r->pool, len + 1);
    if (body == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    p = body;

    for (cl = r->request_body ? r->request_body->bufs : NULL; cl;
         cl = cl->next)
    {
        b = cl->buf;

        if (ngx_buf_size(b) != 0) {
            p = ngx_cpymem(p, b->pos, b->last - b->pos);
        }
    }

    *p = '\0';

    /* the path below the endpoint, the query, who asks, the base URL */

    if (r->uri.len < slcf->scim->prefix.len
        || r->uri.len - slcf->scim->prefix.len >= sizeof(path)
        || r->args.len >= sizeof(query))
    {
        ngx_http_finalize_request(r,
            ngx_http_seatgate_scim_error(r, NGX_HTTP_NOT_FOUND,
                                         "no such resource"));
        return;
    }

    p = ngx_cpymem(path, r->uri.data + slcf->scim->prefix.len,
                   r->uri.len - slcf->scim->prefix.len);
    *p = '\0';

    if (path[0] != '/' && path[0] != '\0') {
        ngx_http_finalize_request(r,
            ngx_http_seatgate_scim_error(r, NGX_HTTP_NOT_FOUND,
                                         "no such resource"));
        return;
    }

    query[0] = '\0';

    if (r->args.len) {
        *ngx_cpymem(query, r->args.data, r->args.len) = '\0';
    }
    *ngx_cpystrn(method, r->method_name.data,
                 ngx_min(r->method_name.len + 1, sizeof(method))) = '\0';

    if (r->headers_in.user.len == 0 && slcf->scim->token.len == 0) {
        (void) ngx_http_auth_basic_user(r);
    }

    p = ngx_snprintf(by, sizeof(by) - 1, "%V@%V",
                     r->headers_in.user.len ? &r->headers_in.user
                                            : &slcf->scim->name,
                     &r->connection->addr_text);
    *p = '\0';

    /* the Host header as the client sent it (nginx validated it), port
     * included, else the server's name */

    base = r->headers_in.host ? r->headers_in.host->value
                              : r->headers_in.server;

    p = ngx_snprintf(url, sizeof(url) - 1, "%s://%V%V",
#if (NGX_HTTP_SSL)
                     r->connection->ssl ? "https" : "http",
#else
                     "http",
#endif
                     &base, &slcf->scim->prefix);
    *p = '\0';

    *ngx_cpymem(host, ngx_cycle->hostname.data,
                ngx_min(ngx_cycle->hostname.len, NGX_MAXHOSTNAMELEN)) = '\0';

    ngx_memzero(&rq, sizeof(sg_scim_request));
    rq.method = (char *) method;
    rq.path = path[0] ? (char *) path : "/";
    rq.query = (char *) query;
    rq.body = (char *) body;
    rq.body_len = len;
    rq.base = (char *) url;
    rq.by = (char *) by;
    rq.host = (char *) host;
    rq.now_ms = (long long) ngx_time() * 1000 + (ngx_timeofday())->msec;

    job = ngx_calloc(sizeof(ngx_http_seatgate_scim_job_t),
                     r->connection->log);
    if (job == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    job->scim = sg_scim_new(slcf->scim->map, &rq);

    cln = ngx_pool_cleanup_add(r->pool, 0);

    if (job->scim == NULL || cln == NULL) {
        sg_scim_free(job->scim);
        ngx_free(job);
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    cln->handler = ngx_http_seatgate_scim_cleanup;
    cln->data = job;

    job->request = r;
    job->cleanup = cln;
    job->log = ngx_cycle->log;

    job->deadline.handler = ngx_http_seatgate_scim_timeout;
    job->deadline.data = job;
    job->deadline.log = ngx_cycle->log;

    if (sg_scim_pending(job->scim) > 0) {
        ngx_add_timer(&job->deadline, slcf->scim->timeout);
    }

    /*
     * The answer finalizes the request once, now or from a Redis reply; the
     * reference read_client_request_body took is the content handler's
     * NGX_DONE.
     */

    ngx_http_seatgate_scim_pump(job, sg_scim_pending(job->scim));
}


/* the Redis Cluster slot of command i of the batch */

static ngx_int_t
ngx_http_seatgate_scim_slot(ngx_http_seatgate_scim_job_t *job, int i)
{
    int             argc;
    const char    **argv;
    const size_t   *argvlen;

    sg_scim_command(job->scim, i, &argc, &argv, &argvlen);

    return sg_cmd_slot(argc, argv, argvlen);
}


/* send a batch; with nothing to send, answer */

static void
ngx_http_seatgate_scim_pump(ngx_http_seatgate_scim_job_t *job, int n)
{
    int                          i;
    ngx_int_t                    rc;
    ngx_http_seatgate_redis_t   *rd;

    for ( ;; ) {

        if (n <= 0) {
            ngx_http_seatgate_scim_answer(job);
            return;
        }

        if (job->nops < (ngx_uint_t) n) {
            if (job->ops) {
                ngx_free(job->ops);
            }

            job->ops = ngx_alloc(n * sizeof(ngx_http_seatgate_scim_op_t),
                                 job->log);

            if (job->ops == NULL) {
                job->nops = 0;

                for (i = 0; i < n; i++) {
                    sg_scim_reply(job->scim, i, NULL);
                }

                n = sg_scim_step(job->scim);
                continue;
            }

            job->nops = n;
        }

        rd = ngx_http_seatgate_worker ? &ngx_http_seatgate_worker->cmd : NULL;

        job->outstanding = n;
        job->submitting = 1;

        for (i = 0; i < n; i++) {
            ngx_memzero(&job->ops[i], sizeof(ngx_http_seatgate_scim_op_t));
            job->ops[i].job = job;
            job->ops[i].index = i;
            job->ops[i].op.send = ngx_http_seatgate_scim_send;
            job->ops[i].op.done = ngx_http_seatgate_scim_done;
            job->ops[i].op.data = &job->ops[i];
            job->ops[i].op.slot = ngx_http_seatgate_scim_slot(job, i);

            rc = rd ? ngx_http_seatgate_redis_submit(rd, &job->ops[i].op)
                    : NGX_DECLINED;

            if (rc != NGX_OK) {
                sg_scim_reply(job->scim, i, NULL);
                job->outstanding--;
            }
        }

        job->submitting = 0;

        if (job->outstanding > 0) {
            return;
        }

        n = sg_scim_step(job->scim);
    }
}


static ngx_int_t
ngx_http_seatgate_scim_send(ngx_http_seatgate_redis_t *rd,
    ngx_http_seatgate_redis_op_t *op)
{
    ngx_http_seatgate_scim_op_t  *so = op->data;

    int             argc;
    const char    **argv;
    const size_t   *argvlen;

    sg_scim_command(so->job->scim, (int) so->index, &argc, &argv, &argvlen);

    if (ngx_http_seatgate_stats) {
        (void) ngx_atomic_fetch_add(&ngx_http_seatgate_stats->redis_commands,
                                    1);
    }

    return ngx_http_seatgate_redis_command(rd, op, argc, argv, argvlen);
}


static void
ngx_http_seatgate_scim_done(ngx_http_seatgate_redis_t *rd,
    ngx_http_seatgate_redis_op_t *op, redisReply *reply)
{
    ngx_http_seatgate_scim_op_t   *so = op->data;
    ngx_http_seatgate_scim_job_t  *job;

    job = so->job;

    if (reply == NULL && ngx_http_seatgate_stats) {
        (void) ngx_atomic_fetch_add(&ngx_http_seatgate_stats->redis_errors, 1);
    }

    sg_scim_reply(job->scim, (int) so->index, reply);

    if (--job->outstanding > 0 || job->submitting) {
        return;
    }

    ngx_http_seatgate_scim_pump(job, sg_scim_step(job->scim));
}


/* the state machine has its answer: send it (if someone waits), free all */

static void
ngx_http_seatgate_scim_answer(ngx_http_seatgate_scim_job_t *job)
{
    size_t               len;
    ngx_int_t            rc;
    const char          *body, *msg;
    ngx_connection_t    *c;
    ngx_http_request_t  *r;

    r = job->request;

    msg = sg_scim_log(job->scim);

    if (msg) {
        ngx_log_error(NGX_LOG_ERR, r ? r->connection->log : job->log, 0,
                      "seatgate: scim: %s", msg);
    }

    if (r == NULL) {
        ngx_http_seatgate_scim_free(job);
        return;
    }

    job->request = NULL;
    job->cleanup->handler = NULL;
    c = r->connection;

    body = sg_scim_body(job->scim, &len);

    rc = ngx_http_seatgate_scim_output(r, sg_scim_status(job->scim),
                                       (u_char *) body, body ? len : 0,
                                       sg_scim_location(job->scim),
                                       sg_scim_etag(job->scim));

    ngx_http_seatgate_scim_free(job);

    ngx_http_finalize_request(r, rc);
    ngx_http_run_posted_requests(c);
}


static void
ngx_http_seatgate_scim_timeout(ngx_event_t *ev)
{
    ngx_connection_t              *c;
    ngx_http_request_t            *r;
    ngx_http_seatgate_scim_job_t  *job = ev->data;

    r = job->request;

    if (r == NULL) {
        return;
    }

    ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                  "seatgate: scim: the request timed out waiting for Redis; "
                  "it runs on to its end");

    job->request = NULL;
    job->cleanup->handler = NULL;
    c = r->connection;

    ngx_http_finalize_request(r,
        ngx_http_seatgate_scim_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                     "the seat store (Redis) did not answer "
                                     "in time; try again"));
    ngx_http_run_posted_requests(c);
}


/* the request goes away first: the job runs on by itself */

static void
ngx_http_seatgate_scim_cleanup(void *data)
{
    ngx_http_seatgate_scim_job_t  *job = data;

    job->request = NULL;

    if (job->deadline.timer_set) {
        ngx_del_timer(&job->deadline);
    }
}


static void
ngx_http_seatgate_scim_free(ngx_http_seatgate_scim_job_t *job)
{
    if (job->deadline.timer_set) {
        ngx_del_timer(&job->deadline);
    }

    sg_scim_free(job->scim);

    if (job->ops) {
        ngx_free(job->ops);
    }

    ngx_free(job);
}


/* a header from a C string, copied into the request's pool */

static ngx_int_t
ngx_http_seatgate_scim_header(ngx_http_request_t *r, char *name,
    const char *value)
{
    ngx_str_t  v;

    if (value == NULL) {
        return NGX_OK;
    }

    v.len = ngx_strlen(value);
    v.data = ngx_pnalloc(r->pool, v.len);

    if (v.data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(v.data, value, v.len);

    return ngx_http_seatgate_add_header(r, name, &v);
}


/* an answer (application/scim+json), its body copied into the pool */

static ngx_int_t
ngx_http_seatgate_scim_output(ngx_http_request_t *r, ngx_uint_t status,
    u_char *body, size_t len, const char *location, const char *etag)
{
    ngx_str_t  copy;

    if (ngx_http_seatgate_scim_header(r, "Location", location) != NGX_OK
        || ngx_http_seatgate_scim_header(r, "ETag", etag) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    copy.len = len;
    copy.data = ngx_pnalloc(r->pool, len + 1);

    if (copy.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (len) {
        ngx_memcpy(copy.data, body, len);
    }

    return ngx_http_seatgate_respond(r, status, &copy, 3);
}


/*
 * seatgate_scim map=FILE (token_file=FILE | auth=nginx) [timeout=TIME]
 *     [prefix=URI] [name=NAME]
 */

char *
ngx_http_seatgate_scim(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_seatgate_loc_conf_t *slcf = conf;

    char                            *rv, err[SG_ERR_MAX];
    ngx_str_t                       *value, map, token, text;
    ngx_uint_t                       i, nginx_auth;
    ngx_pool_cleanup_t              *cln;
    ngx_http_core_loc_conf_t        *clcf;
    ngx_http_seatgate_scim_conf_t   *sc;

    if (slcf->scim) {
        return "is duplicate";
    }

    sc = ngx_pcalloc(cf->pool, sizeof(ngx_http_seatgate_scim_conf_t));
    if (sc == NULL) {
        return NGX_CONF_ERROR;
    }

    value = cf->args->elts;
    ngx_str_null(&map);
    ngx_str_null(&token);
    nginx_auth = 0;
    sc->timeout = 5000;
    ngx_str_set(&sc->name, "scim");

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    sc->prefix = clcf->name;

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "map=", 4) == 0) {
            map.data = value[i].data + 4;
            map.len = value[i].len - 4;
            continue;
        }

        if (ngx_strncmp(value[i].data, "token_file=", 11) == 0) {
            token.data = value[i].data + 11;
            token.len = value[i].len - 11;
            continue;
        }

        if (ngx_strcmp(value[i].data, "auth=nginx") == 0) {
            nginx_auth = 1;
            continue;
        }

        if (ngx_strncmp(value[i].data, "prefix=", 7) == 0
            && value[i].len > 7 && value[i].data[7] == '/')
        {
            sc->prefix.data = value[i].data + 7;
            sc->prefix.len = value[i].len - 7;
            continue;
        }

        if (ngx_strncmp(value[i].data, "name=", 5) == 0 && value[i].len > 5) {
            sc->name.data = value[i].data + 5;
            sc->name.len = value[i].len - 5;
            continue;
        }

        if (ngx_strncmp(value[i].data, "timeout=", 8) == 0) {
            text.data = value[i].data + 8;
            text.len = value[i].len - 8;
            sc->timeout = ngx_parse_time(&text, 0);

            if (sc->timeout == (ngx_msec_t) NGX_ERROR || sc->timeout == 0) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid timeout \"%V\"", &text);
                return NGX_CONF_ERROR;
            }

            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\"", &value[i]);
        return NGX_CONF_ERROR;
    }

    if (map.len == 0) {
        return "needs map=FILE (the map file of seatctl sync)";
    }

    if ((token.len == 0) == (nginx_auth == 0)) {
        return "needs one of token_file=FILE or auth=nginx";
    }

    /* the prefix without its trailing slashes: "/scim/v2/" -> "/scim/v2" */

    while (sc->prefix.len && sc->prefix.data[sc->prefix.len - 1] == '/') {
        sc->prefix.len--;
    }

    if (clcf->regex && sc->prefix.data == clcf->name.data) {
        return "in a regex location needs prefix=URI";
    }

    rv = ngx_http_seatgate_scim_read(cf, &map, &text, 0);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    sc->map = ngx_pcalloc(cf->pool, sizeof(sg_sync_map));
    cln = ngx_pool_cleanup_add(cf->pool, 0);

    if (sc->map == NULL || cln == NULL) {
        return NGX_CONF_ERROR;
    }

    if (sg_sync_map_parse((char *) text.data, text.len, sc->map, err,
                          sizeof(err))
        != 0)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "map \"%V\": %s", &map, err);
        return NGX_CONF_ERROR;
    }

    cln->handler = ngx_http_seatgate_scim_map_free;
    cln->data = sc->map;

    if (token.len) {
        rv = ngx_http_seatgate_scim_read(cf, &token, &sc->token, 1);
        if (rv != NGX_CONF_OK) {
            return rv;
        }

        while (sc->token.len
               && (sc->token.data[sc->token.len - 1] == '\n'
                   || sc->token.data[sc->token.len - 1] == '\r'
                   || sc->token.data[sc->token.len - 1] == ' '))
        {
            sc->token.len--;
        }

        if (sc->token.len < 16) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "token_file \"%V\": a token of at least 16 "
                               "characters is required", &token);
            return NGX_CONF_ERROR;
        }
    }

    slcf->scim = sc;
    clcf->handler = ngx_http_seatgate_scim_handler;

    return NGX_CONF_OK;
}


/* a whole file, at configuration time; a secret must not be world-readable */

static char *
ngx_http_seatgate_scim_read(ngx_conf_t *cf, ngx_str_t *name, ngx_str_t *out,
    ngx_uint_t secret)
{
    ssize_t          n;
    ngx_fd_t         fd;
    ngx_str_t        full;
    ngx_file_info_t  fi;

    full = *name;

    if (ngx_conf_full_name(cf->cycle, &full, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    fd = ngx_open_file(full.data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);

    if (fd == NGX_INVALID_FILE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           ngx_open_file_n " \"%V\" failed", &full);
        return NGX_CONF_ERROR;
    }

    if (ngx_fd_info(fd, &fi) == NGX_FILE_ERROR
        || ngx_file_size(&fi) > 1024 * 1024)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\": cannot stat, or larger than 1 MB", &full);
        (void) ngx_close_file(fd);
        return NGX_CONF_ERROR;
    }

    if (secret && (fi.st_mode & (S_IROTH|S_IWOTH|S_IWGRP))) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" holds a secret and is readable by others "
                           "or writable by its group: chmod 0600 or 0640",
                           &full);
        (void) ngx_close_file(fd);
        return NGX_CONF_ERROR;
    }

    out->len = ngx_file_size(&fi);
    out->data = ngx_pnalloc(cf->pool, out->len + 1);

    if (out->data == NULL) {
        (void) ngx_close_file(fd);
        return NGX_CONF_ERROR;
    }

    n = ngx_read_fd(fd, out->data, out->len);
    (void) ngx_close_file(fd);

    if (n != (ssize_t) out->len) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "reading \"%V\" failed", &full);
        return NGX_CONF_ERROR;
    }

    out->data[out->len] = '\0';

    return NGX_CONF_OK;
}


static void
ngx_http_seatgate_scim_map_free(void *data)
{
    sg_sync_map_free(data);
}
