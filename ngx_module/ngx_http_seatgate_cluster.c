
/*
 * seatgate: Redis Cluster on the non-blocking adapter (redis+cluster://).
 *
 * The worker's command link becomes a front: operations submitted to it are
 * routed by their slot (every key of a pool is one slot) to a link per
 * master, each an ordinary link of ngx_http_seatgate_redis.c. The slot map
 * comes from CLUSTER SLOTS, asked of any node that is up: at start, when a
 * node link goes down (a failover), after a MOVED reply, and every
 * NGX_HTTP_SEATGATE_CLUSTER_REFRESH ms. Replies are looked at before the
 * operation sees them: MOVED moves the slot and sends the operation again
 * to its new master, ASK sends ASKING and the operation once to the node it
 * names, TRYAGAIN (a pool's keys half migrated) sends it again a little
 * later, within the link's dead time. Operations submitted before the first
 * map wait for it, as for a link that is connecting.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include "ngx_http_seatgate.h"


#define NGX_HTTP_SEATGATE_CLUSTER_SLOTS     16384
#define NGX_HTTP_SEATGATE_CLUSTER_NODES     64
#define NGX_HTTP_SEATGATE_CLUSTER_REFRESH   5000
#define NGX_HTTP_SEATGATE_CLUSTER_REDIRECTS 5
#define NGX_HTTP_SEATGATE_CLUSTER_AGAIN     10


typedef struct {
    ngx_http_seatgate_redis_t        link;
    ngx_http_seatgate_redis_conf_t   conf;
    ngx_http_seatgate_cluster_t     *cluster;
    u_char                           name[NGX_INET6_ADDRSTRLEN + 8];
} ngx_http_seatgate_cnode_t;


struct ngx_http_seatgate_cluster_s {
    ngx_http_seatgate_redis_t       *front;
    ngx_log_t                       *log;
    ngx_http_seatgate_cnode_t       *nodes;
    ngx_uint_t                       nnodes;
    int16_t                          slots[NGX_HTTP_SEATGATE_CLUSTER_SLOTS];
    ngx_uint_t                       mapped;
    ngx_uint_t                       asking;     /* a CLUSTER SLOTS on its way */
    ngx_uint_t                       covered;    /* slots the map gave a node */
    ngx_uint_t                       started;
    ngx_uint_t                       exiting;
    ngx_http_seatgate_redis_op_t     map_op;
    ngx_http_seatgate_cnode_t       *map_node;
    ngx_event_t                      refresh;
    ngx_queue_t                      waiting;    /* before the first map */
    ngx_queue_t                      again;      /* TRYAGAIN, sent later */
    ngx_event_t                      again_ev;
};


static ngx_http_seatgate_cnode_t *ngx_http_seatgate_cluster_node(
    ngx_http_seatgate_cluster_t *cl, const char *ip, size_t len, int port);
static void ngx_http_seatgate_cluster_ask_map(ngx_http_seatgate_cluster_t *cl);
static ngx_int_t ngx_http_seatgate_cluster_map_send(
    ngx_http_seatgate_redis_t *rd, ngx_http_seatgate_redis_op_t *op);
static void ngx_http_seatgate_cluster_map_done(ngx_http_seatgate_redis_t *rd,
    ngx_http_seatgate_redis_op_t *op, redisReply *reply);
static void ngx_http_seatgate_cluster_range(void *ud, int lo, int hi,
    const char *host, size_t hostlen, int port);
static void ngx_http_seatgate_cluster_node_ready(ngx_http_seatgate_redis_t *rd);
static void ngx_http_seatgate_cluster_node_down(ngx_http_seatgate_redis_t *rd);
static void ngx_http_seatgate_cluster_refresh_handler(ngx_event_t *ev);
static void ngx_http_seatgate_cluster_again_handler(ngx_event_t *ev);
static void ngx_http_seatgate_cluster_flush(ngx_http_seatgate_cluster_t *cl);
static ngx_int_t ngx_http_seatgate_cluster_route(
    ngx_http_seatgate_cluster_t *cl, ngx_http_seatgate_redis_op_t *op);
static ngx_int_t ngx_http_seatgate_cluster_asking(
    ngx_http_seatgate_redis_op_t *op);


ngx_int_t
ngx_http_seatgate_cluster_init(ngx_http_seatgate_redis_t *front,
    ngx_pool_t *pool)
{
    ngx_uint_t                    i;
    ngx_http_seatgate_cluster_t  *cl;

    cl = ngx_pcalloc(pool, sizeof(ngx_http_seatgate_cluster_t));
    if (cl == NULL) {
        return NGX_ERROR;
    }

    cl->nodes = ngx_pcalloc(pool, NGX_HTTP_SEATGATE_CLUSTER_NODES
                                  * sizeof(ngx_http_seatgate_cnode_t));
    if (cl->nodes == NULL) {
        return NGX_ERROR;
    }

    cl->front = front;
    cl->log = front->log;

    for (i = 0; i < NGX_HTTP_SEATGATE_CLUSTER_SLOTS; i++) {
        cl->slots[i] = -1;
    }

    ngx_queue_init(&cl->waiting);
    ngx_queue_init(&cl->again);

    cl->refresh.handler = ngx_http_seatgate_cluster_refresh_handler;
    cl->refresh.data = cl;
    cl->refresh.log = cl->log;
    cl->refresh.cancelable = 1;

    cl->again_ev.handler = ngx_http_seatgate_cluster_again_handler;
    cl->again_ev.data = cl;
    cl->again_ev.log = cl->log;
    cl->again_ev.cancelable = 1;

    cl->map_op.send = ngx_http_seatgate_cluster_map_send;
    cl->map_op.done = ngx_http_seatgate_cluster_map_done;
    cl->map_op.data = cl;
    cl->map_op.slot = -1;

    front->cluster = cl;
    front->front = 1;

    return NGX_OK;
}


/* the seeds' links; the map is asked of the first one up */

void
ngx_http_seatgate_cluster_start(ngx_http_seatgate_cluster_t *cl)
{
    int                              i;
    ngx_http_seatgate_redis_conf_t  *conf;

    if (cl->started || cl->exiting) {
        return;
    }

    cl->started = 1;
    conf = cl->front->conf;
    cl->front->state = NGX_HTTP_SEATGATE_REDIS_CONNECTING;

    for (i = 0; i < (int) conf->nsentinels; i++) {
        (void) ngx_http_seatgate_cluster_node(cl,
                                       (char *) conf->sentinels[i].ip,
                                       ngx_strlen(conf->sentinels[i].ip),
                                       conf->sentinels[i].port);
    }

    ngx_add_timer(&cl->refresh, conf->timeout);
}


/* the node of ip:port, made (and connecting) when new */

static ngx_http_seatgate_cnode_t *
ngx_http_seatgate_cluster_node(ngx_http_seatgate_cluster_t *cl,
    const char *ip, size_t len, int port)
{
    ngx_uint_t                  i;
    ngx_http_seatgate_cnode_t  *n;
    u_char                      buf[sizeof(struct in6_addr)];
    u_char                      tmp[NGX_INET6_ADDRSTRLEN + 1];

    if (len == 0 || len > NGX_INET6_ADDRSTRLEN || port < 1 || port > 65535) {
        return NULL;
    }

    ngx_memcpy(tmp, ip, len);
    tmp[len] = '\0';

    for (i = 0; i < cl->nnodes; i++) {
        n = &cl->nodes[i];

        if (n->conf.addr.port == port
            && ngx_strcmp(n->conf.addr.ip, tmp) == 0)
        {
            return n;
        }
    }

    /* hiredis resolves names synchronously: numeric addresses only */

    if (inet_pton(AF_INET, (char *) tmp, buf) != 1
        && inet_pton(AF_INET6, (char *) tmp, buf) != 1)
    {
        ngx_log_error(NGX_LOG_ERR, cl->log, 0,
                      "seatgate: redis %V: cluster node \"%s\" is not a "
                      "numeric address", &cl->front->conf->name, tmp);
        return NULL;
    }

    if (cl->nnodes == NGX_HTTP_SEATGATE_CLUSTER_NODES) {
        ngx_log_error(NGX_LOG_ERR, cl->log, 0,
                      "seatgate: redis %V: more than %d cluster nodes",
                      &cl->front->conf->name,
                      NGX_HTTP_SEATGATE_CLUSTER_NODES);
        return NULL;
    }

    n = &cl->nodes[cl->nnodes++];

    /* the URL's credentials and timeouts, this node's address */

    n->conf = *cl->front->conf;
    n->conf.url.kind = SG_URL_TCP;
    n->conf.url.db = 0;
    n->conf.nsentinels = 0;
    n->conf.sentinels = NULL;
    ngx_cpystrn(n->conf.addr.ip, tmp, sizeof(n->conf.addr.ip));
    n->conf.addr.port = port;
    n->conf.name.data = n->name;
    n->conf.name.len = ngx_snprintf(n->name, sizeof(n->name), "%s:%d", tmp,
                                    port) - n->name;
    n->cluster = cl;

    (void) ngx_http_seatgate_redis_init(&n->link, &n->conf, "cluster node",
                                        cl->log);
    n->link.cluster = cl;
    n->link.data = n;
    n->link.on_ready = ngx_http_seatgate_cluster_node_ready;
    n->link.on_down = ngx_http_seatgate_cluster_node_down;

    ngx_http_seatgate_redis_connect(&n->link);

    return n;
}


static void
ngx_http_seatgate_cluster_node_ready(ngx_http_seatgate_redis_t *rd)
{
    ngx_http_seatgate_cnode_t  *n = rd->data;

    if (!n->cluster->mapped) {
        ngx_http_seatgate_cluster_ask_map(n->cluster);
    }
}


/* a master's link fell: a failover may have moved its slots */

static void
ngx_http_seatgate_cluster_node_down(ngx_http_seatgate_redis_t *rd)
{
    ngx_http_seatgate_cnode_t  *n = rd->data;

    ngx_http_seatgate_cluster_ask_map(n->cluster);
}


static void
ngx_http_seatgate_cluster_ask_map(ngx_http_seatgate_cluster_t *cl)
{
    ngx_uint_t                  i;
    ngx_http_seatgate_cnode_t  *n;

    if (cl->asking || cl->exiting) {
        return;
    }

    for (i = 0; i < cl->nnodes; i++) {
        n = &cl->nodes[i];

        if (n->link.state == NGX_HTTP_SEATGATE_REDIS_READY && !n->link.closing) {
            cl->asking = 1;
            cl->map_node = n;

            if (ngx_http_seatgate_redis_submit(&n->link, &cl->map_op)
                != NGX_OK)
            {
                cl->asking = 0;
                continue;
            }

            return;
        }
    }

    /* nobody is up yet: the next node that is asks (on_ready), or the timer */

    for (i = 0; i < cl->nnodes; i++) {
        n = &cl->nodes[i];

        if (n->link.state == NGX_HTTP_SEATGATE_REDIS_DOWN
            && !n->link.retry.timer_set && !n->link.retry.posted)
        {
            ngx_http_seatgate_redis_connect(&n->link);
        }
    }
}


/* one slot range of the map, lo..hi to the master at host:port (an empty
 * host: the node that answered) */

static void
ngx_http_seatgate_cluster_range(void *ud, int lo, int hi, const char *host,
    size_t hostlen, int port)
{
    ngx_http_seatgate_cluster_t  *cl = ud;

    int                         s;
    ngx_http_seatgate_cnode_t  *n;

    n = hostlen ? ngx_http_seatgate_cluster_node(cl, host, hostlen, port)
                : cl->map_node;

    if (n == NULL) {
        return;
    }

    for (s = lo; s <= hi; s++) {
        cl->slots[s] = (int16_t) (n - cl->nodes);
    }

    cl->covered += hi - lo + 1;
}


static ngx_int_t
ngx_http_seatgate_cluster_map_send(ngx_http_seatgate_redis_t *rd,
    ngx_http_seatgate_redis_op_t *op)
{
    static const char  *argv[] = { "CLUSTER", "SLOTS" };

    return ngx_http_seatgate_redis_command(rd, op, 2, argv, NULL);
}


static void
ngx_http_seatgate_cluster_map_done(ngx_http_seatgate_redis_t *rd,
    ngx_http_seatgate_redis_op_t *op, redisReply *reply)
{
    ngx_http_seatgate_cluster_t  *cl = op->data;

    ngx_int_t                   s;
    ngx_uint_t                  had, covered, level;

    cl->asking = 0;

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY
        || reply->elements == 0)
    {
        ngx_log_error(NGX_LOG_ERR, cl->log, 0,
                      "seatgate: redis %V: CLUSTER SLOTS failed: %s",
                      &cl->front->conf->name,
                      reply == NULL ? "no answer"
                      : reply->type == REDIS_REPLY_ERROR ? reply->str
                                                          : "no slots");

        if (!cl->mapped) {
            /* operations waiting for the first map are answered now */
            ngx_http_seatgate_cluster_flush(cl);
        }

        return;
    }

    for (s = 0; s < NGX_HTTP_SEATGATE_CLUSTER_SLOTS; s++) {
        cl->slots[s] = -1;
    }

    cl->covered = 0;
    (void) sg_cluster_slots_each(reply, ngx_http_seatgate_cluster_range, cl);
    covered = cl->covered;

    if (ngx_http_seatgate_stats) {
        (void) ngx_atomic_fetch_add(&ngx_http_seatgate_stats->cluster_maps, 1);
    }

    had = cl->mapped;
    cl->mapped = 1;
    cl->front->state = NGX_HTTP_SEATGATE_REDIS_READY;
    level = (covered < NGX_HTTP_SEATGATE_CLUSTER_SLOTS) ? NGX_LOG_WARN
                                                         : NGX_LOG_INFO;

    if (!had || level == NGX_LOG_WARN) {
        ngx_log_error(level, cl->log, 0,
                      "seatgate: redis %V: slot map of %ui nodes, %ui of "
                      "%d slots served", &cl->front->conf->name, cl->nnodes,
                      covered, NGX_HTTP_SEATGATE_CLUSTER_SLOTS);
    }

    ngx_http_seatgate_cluster_flush(cl);
}


/* the operations that waited for a map go to their masters (or fail) */

static void
ngx_http_seatgate_cluster_flush(ngx_http_seatgate_cluster_t *cl)
{
    ngx_queue_t                   *q;
    ngx_http_seatgate_redis_op_t  *op;

    while (!ngx_queue_empty(&cl->waiting)) {
        q = ngx_queue_head(&cl->waiting);
        ngx_queue_remove(q);
        op = ngx_queue_data(q, ngx_http_seatgate_redis_op_t, queue);
        op->queued = 0;

        if (!cl->mapped
            || ngx_http_seatgate_cluster_route(cl, op) != NGX_OK)
        {
            op->done(cl->front, op, NULL);
        }
    }
}


ngx_int_t
ngx_http_seatgate_cluster_submit(ngx_http_seatgate_cluster_t *cl,
    ngx_http_seatgate_redis_op_t *op)
{
    if (cl->exiting) {
        return NGX_DECLINED;
    }

    op->redirects = 0;
    op->first = ngx_current_msec;
    op->ask = NULL;

    if (!cl->mapped) {
        if (!cl->started) {
            ngx_http_seatgate_cluster_start(cl);
        }

        ngx_queue_insert_tail(&cl->waiting, &op->queue);
        op->queued = 1;
        ngx_http_seatgate_cluster_ask_map(cl);
        return NGX_OK;
    }

    return ngx_http_seatgate_cluster_route(cl, op);
}


static ngx_int_t
ngx_http_seatgate_cluster_route(ngx_http_seatgate_cluster_t *cl,
    ngx_http_seatgate_redis_op_t *op)
{
    ngx_int_t                   i, rc;
    ngx_http_seatgate_cnode_t  *n;

    i = -1;

    if (op->slot >= 0 && op->slot < NGX_HTTP_SEATGATE_CLUSTER_SLOTS) {
        i = cl->slots[op->slot];
    }

    for (n = cl->nodes; i < 0 && n < cl->nodes + cl->nnodes; n++) {
        if (n->link.state == NGX_HTTP_SEATGATE_REDIS_READY) {
            i = n - cl->nodes;
        }
    }

    if (i < 0) {
        ngx_http_seatgate_cluster_ask_map(cl);
        return NGX_DECLINED;
    }

    rc = ngx_http_seatgate_redis_submit(&cl->nodes[i].link, op);

    if (rc == NGX_DECLINED) {
        /* its master is down: a failover may be under way */
        ngx_http_seatgate_cluster_ask_map(cl);
    }

    return rc;
}


/*
 * A reply from a node: MOVED, ASK and TRYAGAIN are the cluster's, not the
 * operation's.
 */

ngx_int_t
ngx_http_seatgate_cluster_redirect(ngx_http_seatgate_redis_t *rd,
    ngx_http_seatgate_redis_op_t *op, redisReply *reply)
{
    int                           slot, port, ask;
    char                          host[256];
    ngx_http_seatgate_cnode_t    *n;
    ngx_http_seatgate_cluster_t  *cl;

    cl = rd->cluster;

    if (reply->type != REDIS_REPLY_ERROR || op == &cl->map_op || cl->exiting) {
        return NGX_DECLINED;
    }

    if (ngx_http_seatgate_stats
        && (ngx_strncmp(reply->str, "TRYAGAIN ", 9) == 0
            || ngx_strncmp(reply->str, "ASK ", 4) == 0
            || ngx_strncmp(reply->str, "MOVED ", 6) == 0))
    {
        (void) ngx_atomic_fetch_add(
                            &ngx_http_seatgate_stats->cluster_redirects, 1);
    }

    if (ngx_strncmp(reply->str, "TRYAGAIN ", 9) == 0) {
        if (ngx_current_msec - op->first + NGX_HTTP_SEATGATE_CLUSTER_AGAIN
            >= rd->conf->timeout)
        {
            return NGX_DECLINED;
        }

        ngx_queue_insert_tail(&cl->again, &op->queue);
        op->queued = 1;

        if (!cl->again_ev.timer_set) {
            ngx_add_timer(&cl->again_ev, NGX_HTTP_SEATGATE_CLUSTER_AGAIN);
        }

        return NGX_OK;
    }

    /* "MOVED 3999 127.0.0.1:6381", "ASK ..." (parsed as the blocking
     * client parses them) */

    if (sg_cluster_redirect(reply->str, &ask, &slot, host, sizeof(host), &port)
        != 0)
    {
        return NGX_DECLINED;
    }

    if (++op->redirects > NGX_HTTP_SEATGATE_CLUSTER_REDIRECTS) {
        return NGX_DECLINED;
    }

    n = ngx_http_seatgate_cluster_node(cl, host, ngx_strlen(host), port);

    if (n == NULL) {
        return NGX_DECLINED;
    }

    if (!ask) {
        op->ask = NULL;
        cl->slots[slot] = (int16_t) (n - cl->nodes);
        ngx_http_seatgate_cluster_ask_map(cl);

        return ngx_http_seatgate_redis_submit(&n->link, op) == NGX_OK
               ? NGX_OK : NGX_DECLINED;
    }

    /* ASK: this one command, there, after ASKING */

    op->ask = &n->link;

    if (ngx_http_seatgate_cluster_asking(op) == NGX_OK) {
        return NGX_OK;
    }

    /* not connected yet: ask again a little later */

    ngx_queue_insert_tail(&cl->again, &op->queue);
    op->queued = 1;

    if (!cl->again_ev.timer_set) {
        ngx_add_timer(&cl->again_ev, NGX_HTTP_SEATGATE_CLUSTER_AGAIN);
    }

    return NGX_OK;
}


/* ASKING, then the operation, on the node an ASK reply named */

static ngx_int_t
ngx_http_seatgate_cluster_asking(ngx_http_seatgate_redis_op_t *op)
{
    ngx_http_seatgate_redis_t  *rd = op->ask;

    static const char          *asking[] = { "ASKING" };

    if (rd->state != NGX_HTTP_SEATGATE_REDIS_READY || rd->closing
        || ngx_http_seatgate_redis_raw(rd, NULL, NULL, 1, asking) != NGX_OK)
    {
        return NGX_DECLINED;
    }

    return op->send(rd, op);
}


static void
ngx_http_seatgate_cluster_again_handler(ngx_event_t *ev)
{
    ngx_http_seatgate_cluster_t  *cl = ev->data;

    ngx_queue_t                    again, *q;
    ngx_http_seatgate_redis_op_t  *op;

    ev->timedout = 0;

    /* what comes back while these are sent waits for the next turn */

    ngx_queue_init(&again);

    if (!ngx_queue_empty(&cl->again)) {
        again = cl->again;
        again.next->prev = &again;
        again.prev->next = &again;
        ngx_queue_init(&cl->again);
    }

    while (!ngx_queue_empty(&again)) {
        q = ngx_queue_head(&again);
        ngx_queue_remove(q);
        op = ngx_queue_data(q, ngx_http_seatgate_redis_op_t, queue);
        op->queued = 0;

        /* a half-migrated slot (TRYAGAIN after ASK) is asked of the same
         * node the same way; anything else is routed again */

        if (cl->exiting) {
            op->done(cl->front, op, NULL);

        } else if (op->ask && ngx_http_seatgate_cluster_asking(op) == NGX_OK) {
            continue;

        } else {
            op->ask = NULL;

            if (ngx_http_seatgate_cluster_route(cl, op) != NGX_OK) {
                op->done(cl->front, op, NULL);
            }
        }
    }
}


static void
ngx_http_seatgate_cluster_refresh_handler(ngx_event_t *ev)
{
    ngx_http_seatgate_cluster_t  *cl = ev->data;

    ngx_queue_t                   *q, *next;
    ngx_http_seatgate_redis_op_t  *op;

    ev->timedout = 0;

    if (cl->exiting) {
        return;
    }

    /* no map yet (no seed answers): what waited its timeout for one fails,
     * as it would on a link that cannot connect */

    for (q = ngx_queue_head(&cl->waiting);
         !cl->mapped && q != ngx_queue_sentinel(&cl->waiting);
         q = next)
    {
        next = ngx_queue_next(q);
        op = ngx_queue_data(q, ngx_http_seatgate_redis_op_t, queue);

        if (ngx_current_msec - op->first >= cl->front->conf->timeout) {
            ngx_queue_remove(q);
            op->queued = 0;
            op->done(cl->front, op, NULL);
        }
    }

    ngx_http_seatgate_cluster_ask_map(cl);
    ngx_add_timer(ev, cl->mapped ? NGX_HTTP_SEATGATE_CLUSTER_REFRESH
                                 : cl->front->conf->timeout);
}


/* up: a slot map that serves every slot, and a ready link to each master
 * of it (a master whose link is down fails the decisions of its slots) */

ngx_uint_t
ngx_http_seatgate_cluster_up(ngx_http_seatgate_cluster_t *cl)
{
    ngx_int_t   s, n;
    u_char      checked[NGX_HTTP_SEATGATE_CLUSTER_NODES];

    if (!cl->mapped || cl->covered < NGX_HTTP_SEATGATE_CLUSTER_SLOTS) {
        return 0;
    }

    ngx_memzero(checked, sizeof(checked));

    for (s = 0; s < NGX_HTTP_SEATGATE_CLUSTER_SLOTS; s++) {
        n = cl->slots[s];

        if (n < 0 || (ngx_uint_t) n >= cl->nnodes) {
            return 0;
        }

        if (checked[n]) {
            continue;
        }

        if (cl->nodes[n].link.state != NGX_HTTP_SEATGATE_REDIS_READY) {
            return 0;
        }

        checked[n] = 1;
    }

    return 1;
}


void
ngx_http_seatgate_cluster_exit(ngx_http_seatgate_cluster_t *cl)
{
    ngx_uint_t                     i;
    ngx_queue_t                   *q;
    ngx_http_seatgate_redis_op_t  *op;

    cl->exiting = 1;

    if (cl->refresh.timer_set) {
        ngx_del_timer(&cl->refresh);
    }

    if (cl->again_ev.timer_set) {
        ngx_del_timer(&cl->again_ev);
    }

    while (!ngx_queue_empty(&cl->again)) {
        q = ngx_queue_head(&cl->again);
        ngx_queue_remove(q);
        op = ngx_queue_data(q, ngx_http_seatgate_redis_op_t, queue);
        op->queued = 0;
        op->done(cl->front, op, NULL);
    }

    cl->mapped = 0;
    ngx_http_seatgate_cluster_flush(cl);

    for (i = 0; i < cl->nnodes; i++) {
        ngx_http_seatgate_redis_exit(&cl->nodes[i].link);
    }
}
