
/*
 * seatgate: hiredis's asynchronous API driven by nginx's event loop.
 *
 * One ngx_http_seatgate_redis_t is one Redis link of one worker: a hiredis
 * async context whose socket is wrapped in an nginx connection (read/write
 * events, nginx timers), pipelined, reconnected with exponential backoff,
 * following Sentinel.  Callers queue operations; a link that is down answers
 * at once (NGX_DECLINED) instead of connecting per request.
 */


#ifndef _NGX_HTTP_SEATGATE_REDIS_H_INCLUDED_
#define _NGX_HTTP_SEATGATE_REDIS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include <hiredis/hiredis.h>
#include <hiredis/async.h>

#include <seatgate.h>


/* reads of 16 KB at most per event loop turn (1 MB) */
#define NGX_HTTP_SEATGATE_REDIS_READS  64


#define NGX_HTTP_SEATGATE_REDIS_DOWN        0
#define NGX_HTTP_SEATGATE_REDIS_CONNECTING  1
#define NGX_HTTP_SEATGATE_REDIS_HANDSHAKE   2
#define NGX_HTTP_SEATGATE_REDIS_READY       3


typedef struct ngx_http_seatgate_redis_s     ngx_http_seatgate_redis_t;
typedef struct ngx_http_seatgate_redis_op_s  ngx_http_seatgate_redis_op_t;
typedef struct ngx_http_seatgate_cluster_s   ngx_http_seatgate_cluster_t;

/* Writes the operation's command with ngx_http_seatgate_redis_command(). */
typedef ngx_int_t (*ngx_http_seatgate_redis_send_pt)(
    ngx_http_seatgate_redis_t *rd, ngx_http_seatgate_redis_op_t *op);

/*
 * Called once per sent command with its reply, or with NULL when the link
 * failed before a reply came (hiredis frees the reply after the call).
 * Called with NULL too for an operation that was waiting for the link.
 */
typedef void (*ngx_http_seatgate_redis_done_pt)(
    ngx_http_seatgate_redis_t *rd, ngx_http_seatgate_redis_op_t *op,
    redisReply *reply);

typedef void (*ngx_http_seatgate_redis_event_pt)(
    ngx_http_seatgate_redis_t *rd);


struct ngx_http_seatgate_redis_op_s {
    ngx_queue_t                        queue;
    ngx_msec_t                         sent;
    ngx_uint_t                         queued;    /* 1 waiting, 2 in flight */
    ngx_int_t                          slot;      /* Redis Cluster: the slot */
                                                  /* of its keys, -1 none */
    ngx_uint_t                         redirects; /* MOVED, ASK followed */
    ngx_http_seatgate_redis_t         *ask;       /* sent there after ASKING */
    ngx_msec_t                         first;     /* first sent (TRYAGAIN) */
    ngx_http_seatgate_redis_send_pt    send;
    ngx_http_seatgate_redis_done_pt    done;
    void                              *data;
};


typedef struct {
    u_char                             ip[NGX_INET6_ADDRSTRLEN + 1];
    int                                port;
} ngx_http_seatgate_redis_addr_t;


/* One Redis endpoint of the http block, resolved at configuration time. */
typedef struct {
    sg_redis_url                       url;
    ngx_str_t                          name;      /* redacted, for logs */
    ngx_http_seatgate_redis_addr_t     addr;      /* redis:// */
    ngx_http_seatgate_redis_addr_t    *sentinels; /* sentinel:// */
    ngx_uint_t                         nsentinels;
    ngx_msec_t                         timeout;
    ngx_msec_t                         dead;      /* no reply that long: */
                                                  /* reconnect */
    ngx_msec_t                         backoff_min;
    ngx_msec_t                         backoff_max;
} ngx_http_seatgate_redis_conf_t;


struct ngx_http_seatgate_redis_s {
    ngx_http_seatgate_redis_conf_t    *conf;
    ngx_log_t                         *log;
    char                              *label;     /* "command", "subscriber" */

    redisAsyncContext                 *ac;
    ngx_connection_t                  *conn;
    ngx_uint_t                         state;

    ngx_queue_t                        waiting;   /* ops before READY */
    ngx_queue_t                        inflight;  /* sent, oldest first */
    ngx_uint_t                         ninflight;
    ngx_uint_t                         handshake; /* replies still due */

    ngx_event_t                        retry;     /* reconnect backoff */
    ngx_event_t                        watchdog;  /* connect or reply */
                                                  /* overdue */
    ngx_msec_t                         backoff;
    ngx_uint_t                         failures;
    ngx_msec_t                         up_since;
    const char                        *why;       /* deferred close */

    /* Sentinel */
    ngx_uint_t                         sentinel;  /* next one to ask */
    ngx_uint_t                         tried;     /* sentinels this round */
    ngx_uint_t                         asking;    /* connected to a sentinel */
    ngx_http_seatgate_redis_addr_t     master;    /* port 0: unknown */

    ngx_http_seatgate_redis_event_pt   on_ready;
    ngx_http_seatgate_redis_event_pt   on_down;
    void                              *data;

    /* Redis Cluster: the front a module submits to routes by slot to a
     * link per master (node links point back at it) */
    ngx_http_seatgate_cluster_t       *cluster;

    unsigned                           writing:1;
    unsigned                           closing:1;
    unsigned                           exiting:1;
    unsigned                           front:1;   /* the cluster's front */
};


ngx_int_t ngx_http_seatgate_redis_init(ngx_http_seatgate_redis_t *rd,
    ngx_http_seatgate_redis_conf_t *conf, char *label, ngx_log_t *log);
void ngx_http_seatgate_redis_connect(ngx_http_seatgate_redis_t *rd);
void ngx_http_seatgate_redis_close(ngx_http_seatgate_redis_t *rd,
    const char *why);
void ngx_http_seatgate_redis_exit(ngx_http_seatgate_redis_t *rd);

/* NGX_OK sent or queued, NGX_DECLINED link down, NGX_ERROR not sent */
ngx_int_t ngx_http_seatgate_redis_submit(ngx_http_seatgate_redis_t *rd,
    ngx_http_seatgate_redis_op_t *op);
/* NGX_OK: removed before it was sent (done will not be called) */
ngx_int_t ngx_http_seatgate_redis_cancel(ngx_http_seatgate_redis_t *rd,
    ngx_http_seatgate_redis_op_t *op);
ngx_int_t ngx_http_seatgate_redis_command(ngx_http_seatgate_redis_t *rd,
    ngx_http_seatgate_redis_op_t *op, int argc, const char **argv,
    const size_t *argvlen);
/* a raw command with its own hiredis callback (pub/sub) */
ngx_int_t ngx_http_seatgate_redis_raw(ngx_http_seatgate_redis_t *rd,
    redisCallbackFn *fn, void *data, int argc, const char **argv);

char *ngx_http_seatgate_redis_parse(ngx_conf_t *cf, ngx_str_t *url,
    ngx_http_seatgate_redis_conf_t *rc);

/* ngx_http_seatgate_cluster.c */
ngx_int_t ngx_http_seatgate_cluster_init(ngx_http_seatgate_redis_t *front,
    ngx_pool_t *pool);
void ngx_http_seatgate_cluster_start(ngx_http_seatgate_cluster_t *cl);
ngx_int_t ngx_http_seatgate_cluster_submit(ngx_http_seatgate_cluster_t *cl,
    ngx_http_seatgate_redis_op_t *op);
/* NGX_OK: the reply was a redirection and the operation went on */
ngx_int_t ngx_http_seatgate_cluster_redirect(ngx_http_seatgate_redis_t *rd,
    ngx_http_seatgate_redis_op_t *op, redisReply *reply);
void ngx_http_seatgate_cluster_exit(ngx_http_seatgate_cluster_t *cl);
ngx_uint_t ngx_http_seatgate_cluster_up(ngx_http_seatgate_cluster_t *cl);


#endif /* _NGX_HTTP_SEATGATE_REDIS_H_INCLUDED_ */
