
/*
 * seatgate: hiredis's asynchronous API driven by nginx's event loop.
 *
 * hiredis 0.14 gives an async context with five hooks (add/del read/write,
 * cleanup); this file implements them on an nginx connection made with
 * ngx_get_connection() around the context's socket, like hiredis's own
 * adapters/libevent.h does for libevent.  What hiredis 0.14 lacks is done
 * here with nginx means:
 *
 *   - no timeouts: the connect, the handshake and every reply are watched by
 *     an nginx timer (the watchdog); a link whose oldest command has waited
 *     conf->dead is closed and reconnected;
 *   - synchronous name resolution: addresses are resolved when the
 *     configuration is read, hiredis only ever sees numeric addresses;
 *   - at most 16 KB read per redisAsyncHandleRead(): under edge-triggered
 *     epoll the read handler loops while FIONREAD reports unread bytes;
 *   - no reconnection: a link that goes down retries with exponential
 *     backoff from a timer, so a dead Redis is neither hammered nor waited
 *     for (operations submitted meanwhile are refused at once).
 *
 * Commands are pipelined: every command of an event loop iteration is
 * appended to hiredis's output buffer and written by one posted write event.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include <sys/ioctl.h>
#include <hiredis/sds.h>

#include "ngx_http_seatgate_redis.h"


static void ngx_http_seatgate_redis_read_handler(ngx_event_t *rev);
static void ngx_http_seatgate_redis_write_handler(ngx_event_t *wev);
static void ngx_http_seatgate_redis_add_read(void *data);
static void ngx_http_seatgate_redis_del_read(void *data);
static void ngx_http_seatgate_redis_add_write(void *data);
static void ngx_http_seatgate_redis_del_write(void *data);
static void ngx_http_seatgate_redis_cleanup(void *data);
static void ngx_http_seatgate_redis_connected(const redisAsyncContext *ac,
    int status);
static void ngx_http_seatgate_redis_disconnected(const redisAsyncContext *ac,
    int status);
static void ngx_http_seatgate_redis_handshake(redisAsyncContext *ac,
    void *r, void *data);
static void ngx_http_seatgate_redis_sentinel(redisAsyncContext *ac,
    void *r, void *data);
static void ngx_http_seatgate_redis_ready(ngx_http_seatgate_redis_t *rd);
static void ngx_http_seatgate_redis_down(ngx_http_seatgate_redis_t *rd,
    const char *err);
static void ngx_http_seatgate_redis_reply(redisAsyncContext *ac, void *r,
    void *data);
static void ngx_http_seatgate_redis_retry_handler(ngx_event_t *ev);
static void ngx_http_seatgate_redis_watchdog_handler(ngx_event_t *ev);
static ngx_int_t ngx_http_seatgate_redis_resolve(ngx_conf_t *cf,
    const char *host, int port, ngx_http_seatgate_redis_addr_t *addr);


ngx_int_t
ngx_http_seatgate_redis_init(ngx_http_seatgate_redis_t *rd,
    ngx_http_seatgate_redis_conf_t *conf, char *label, ngx_log_t *log)
{
    ngx_memzero(rd, sizeof(ngx_http_seatgate_redis_t));

    rd->conf = conf;
    rd->log = log;
    rd->label = label;
    rd->state = NGX_HTTP_SEATGATE_REDIS_DOWN;
    rd->backoff = conf->backoff_min;

    ngx_queue_init(&rd->waiting);
    ngx_queue_init(&rd->inflight);

    rd->retry.handler = ngx_http_seatgate_redis_retry_handler;
    rd->retry.data = rd;
    rd->retry.log = log;
    rd->retry.cancelable = 1;

    rd->watchdog.handler = ngx_http_seatgate_redis_watchdog_handler;
    rd->watchdog.data = rd;
    rd->watchdog.log = log;
    rd->watchdog.cancelable = 1;

    return NGX_OK;
}


void
ngx_http_seatgate_redis_connect(ngx_http_seatgate_redis_t *rd)
{
    int                              fd;
    ngx_connection_t                *c;
    redisAsyncContext               *ac;
    ngx_http_seatgate_redis_addr_t  *a;
    ngx_http_seatgate_redis_conf_t  *conf;

    if (rd->ac != NULL || rd->exiting) {
        return;
    }

    if (rd->front) {
        ngx_http_seatgate_cluster_start(rd->cluster);
        return;
    }

    conf = rd->conf;
    rd->asking = 0;

    if (conf->url.kind == SG_URL_UNIX) {
        ac = redisAsyncConnectUnix(conf->url.path);

    } else {
        if (conf->url.kind == SG_URL_SENTINEL && rd->master.port == 0) {
            a = &conf->sentinels[rd->sentinel % conf->nsentinels];
            rd->asking = 1;

        } else if (conf->url.kind == SG_URL_SENTINEL) {
            a = &rd->master;

        } else if (conf->url.kind == SG_URL_CLUSTER) {
            /* a link to any node (pub/sub): the seeds in turn */
            a = &conf->sentinels[rd->sentinel % conf->nsentinels];

        } else {
            a = &conf->addr;
        }

        ac = redisAsyncConnect((char *) a->ip, a->port);
    }


    if (ac == NULL) {
        ngx_log_error(NGX_LOG_ERR, rd->log, 0,
                      "seatgate: redis %V: cannot allocate a context",
                      &conf->name);
        ngx_http_seatgate_redis_down(rd, NULL);
        return;
    }

    if (ac->err) {
        if (rd->failures == 0) {
            ngx_log_error(NGX_LOG_ERR, rd->log, 0,
                          "seatgate: redis %V%s: connect failed: %s",
                          &conf->name, rd->asking ? " (sentinel)" : "",
                          ac->errstr);
        }

        redisAsyncFree(ac);
        ngx_http_seatgate_redis_down(rd, NULL);
        return;
    }

    fd = ac->c.fd;

    c = ngx_get_connection(fd, rd->log);
    if (c == NULL) {
        redisAsyncFree(ac);
        ngx_http_seatgate_redis_down(rd, NULL);
        return;
    }

    c->data = rd;
    c->log = rd->log;
    c->read->log = rd->log;
    c->write->log = rd->log;
    c->read->handler = ngx_http_seatgate_redis_read_handler;
    c->write->handler = ngx_http_seatgate_redis_write_handler;
    c->number = ngx_atomic_fetch_add(ngx_connection_counter, 1);

    rd->ac = ac;
    rd->conn = c;
    rd->state = NGX_HTTP_SEATGATE_REDIS_CONNECTING;

    ac->data = rd;
    ac->ev.data = rd;
    ac->ev.addRead = ngx_http_seatgate_redis_add_read;
    ac->ev.delRead = ngx_http_seatgate_redis_del_read;
    ac->ev.addWrite = ngx_http_seatgate_redis_add_write;
    ac->ev.delWrite = ngx_http_seatgate_redis_del_write;
    ac->ev.cleanup = ngx_http_seatgate_redis_cleanup;

    redisAsyncSetConnectCallback(ac, ngx_http_seatgate_redis_connected);
    redisAsyncSetDisconnectCallback(ac, ngx_http_seatgate_redis_disconnected);

    if (ngx_add_conn && (ngx_event_flags & NGX_USE_CLEAR_EVENT)) {
        if (ngx_add_conn(c) != NGX_OK) {
            ngx_http_seatgate_redis_close(rd, "cannot add events");
            return;
        }

    } else {
        if (ngx_add_event(c->read, NGX_READ_EVENT,
                          (ngx_event_flags & NGX_USE_CLEAR_EVENT)
                          ? NGX_CLEAR_EVENT : NGX_LEVEL_EVENT)
            != NGX_OK
            || ngx_add_event(c->write, NGX_WRITE_EVENT,
                             (ngx_event_flags & NGX_USE_CLEAR_EVENT)
                             ? NGX_CLEAR_EVENT : NGX_LEVEL_EVENT)
               != NGX_OK)
        {
            ngx_http_seatgate_redis_close(rd, "cannot add events");
            return;
        }
    }

    ngx_add_timer(&rd->watchdog, conf->timeout);

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, rd->log, 0,
                   "seatgate: redis %s link connecting fd:%d%s",
                   rd->label, fd, rd->asking ? " (sentinel)" : "");
}


void
ngx_http_seatgate_redis_close(ngx_http_seatgate_redis_t *rd, const char *why)
{
    if (rd->ac == NULL || rd->closing) {
        return;
    }

    if (why) {
        ngx_log_error(NGX_LOG_ERR, rd->log, 0,
                      "seatgate: redis %V: %s link: %s, reconnecting",
                      &rd->conf->name, rd->label, why);
    }

    /*
     * Inside one of this context's callbacks hiredis defers the free to the
     * end of the callback; otherwise pending callbacks run now with a NULL
     * reply, then the cleanup hook takes the link down.
     */

    rd->closing = 1;
    redisAsyncFree(rd->ac);
}


void
ngx_http_seatgate_redis_exit(ngx_http_seatgate_redis_t *rd)
{
    rd->exiting = 1;

    if (rd->front) {
        ngx_http_seatgate_cluster_exit(rd->cluster);
        return;
    }

    if (rd->retry.timer_set) {
        ngx_del_timer(&rd->retry);
    }

    if (rd->retry.posted) {
        ngx_delete_posted_event(&rd->retry);
    }

    if (rd->ac) {
        rd->closing = 1;
        redisAsyncFree(rd->ac);
    }
}


ngx_int_t
ngx_http_seatgate_redis_submit(ngx_http_seatgate_redis_t *rd,
    ngx_http_seatgate_redis_op_t *op)
{
    if (rd->front) {
        return ngx_http_seatgate_cluster_submit(rd->cluster, op);
    }

    switch (rd->state) {

    case NGX_HTTP_SEATGATE_REDIS_READY:
        if (rd->closing) {
            return NGX_DECLINED;
        }

        return op->send(rd, op);

    case NGX_HTTP_SEATGATE_REDIS_CONNECTING:
    case NGX_HTTP_SEATGATE_REDIS_HANDSHAKE:
        if (rd->closing) {
            return NGX_DECLINED;
        }

        ngx_queue_insert_tail(&rd->waiting, &op->queue);
        op->queued = 1;
        return NGX_OK;

    default:
        return NGX_DECLINED;
    }
}


ngx_int_t
ngx_http_seatgate_redis_cancel(ngx_http_seatgate_redis_t *rd,
    ngx_http_seatgate_redis_op_t *op)
{
    if (op->queued != 1) {
        return NGX_DECLINED;
    }

    ngx_queue_remove(&op->queue);
    op->queued = 0;

    return NGX_OK;
}


ngx_int_t
ngx_http_seatgate_redis_command(ngx_http_seatgate_redis_t *rd,
    ngx_http_seatgate_redis_op_t *op, int argc, const char **argv,
    const size_t *argvlen)
{
    if (rd->ac == NULL || rd->closing) {
        return NGX_ERROR;
    }

    if (redisAsyncCommandArgv(rd->ac, ngx_http_seatgate_redis_reply, op,
                              argc, argv, argvlen)
        != REDIS_OK)
    {
        return NGX_ERROR;
    }

    op->sent = ngx_current_msec;
    op->queued = 2;
    ngx_queue_insert_tail(&rd->inflight, &op->queue);
    rd->ninflight++;

    if (!rd->watchdog.timer_set) {
        ngx_add_timer(&rd->watchdog, rd->conf->dead);
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_seatgate_redis_raw(ngx_http_seatgate_redis_t *rd,
    redisCallbackFn *fn, void *data, int argc, const char **argv)
{
    if (rd->ac == NULL || rd->closing) {
        return NGX_ERROR;
    }

    if (redisAsyncCommandArgv(rd->ac, fn, data, argc, argv, NULL)
        != REDIS_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


static void
ngx_http_seatgate_redis_reply(redisAsyncContext *ac, void *r, void *data)
{
    ngx_http_seatgate_redis_op_t  *op = data;

    ngx_http_seatgate_redis_t  *rd;

    rd = ac->data;

    if (op->queued == 2) {
        ngx_queue_remove(&op->queue);
        rd->ninflight--;
    }

    op->queued = 0;

    if (ngx_queue_empty(&rd->inflight)
        && rd->state == NGX_HTTP_SEATGATE_REDIS_READY
        && rd->watchdog.timer_set)
    {
        ngx_del_timer(&rd->watchdog);
    }

    if (rd->cluster && r
        && ngx_http_seatgate_cluster_redirect(rd, op, r) == NGX_OK)
    {
        return;
    }

    op->done(rd, op, r);
}


/* ---- connection life cycle ---------------------------------------------- */

static void
ngx_http_seatgate_redis_connected(const redisAsyncContext *cac, int status)
{
    int                              n;
    const char                      *argv[3];
    redisAsyncContext               *ac;
    ngx_http_seatgate_redis_t       *rd;
    ngx_http_seatgate_redis_conf_t  *conf;

    ac = (redisAsyncContext *) cac;
    rd = ac->data;
    conf = rd->conf;

    if (status != REDIS_OK) {
        if (rd->failures == 0) {
            ngx_log_error(NGX_LOG_ERR, rd->log, 0,
                          "seatgate: redis %V%s: connect failed: %s",
                          &conf->name, rd->asking ? " (sentinel)" : "",
                          ac->errstr ? ac->errstr : "error");
        }

        /* hiredis frees the context next; the cleanup hook follows */
        return;
    }

    rd->state = NGX_HTTP_SEATGATE_REDIS_HANDSHAKE;
    rd->handshake = 0;

    if (rd->asking) {
        argv[0] = "SENTINEL";
        argv[1] = "get-master-addr-by-name";
        argv[2] = conf->url.master;

        if (redisAsyncCommandArgv(ac, ngx_http_seatgate_redis_sentinel, rd,
                                  3, argv, NULL)
            != REDIS_OK)
        {
            goto failed;
        }

        return;
    }

    if (conf->url.password[0]) {
        n = 0;
        argv[n++] = "AUTH";

        if (conf->url.user[0]) {
            argv[n++] = conf->url.user;
        }

        argv[n++] = conf->url.password;

        if (redisAsyncCommandArgv(ac, ngx_http_seatgate_redis_handshake,
                                  "AUTH", n, argv, NULL)
            != REDIS_OK)
        {
            goto failed;
        }

        rd->handshake++;
    }

    if (conf->url.db) {
        if (redisAsyncCommand(ac, ngx_http_seatgate_redis_handshake,
                              "SELECT", "SELECT %d", conf->url.db)
            != REDIS_OK)
        {
            goto failed;
        }

        rd->handshake++;
    }

    /* ROLE proves a Sentinel-given address is still the master */

    if (redisAsyncCommand(ac, ngx_http_seatgate_redis_handshake,
                          (conf->url.kind == SG_URL_SENTINEL) ? "ROLE" : "PING",
                          (conf->url.kind == SG_URL_SENTINEL) ? "ROLE" : "PING")
        != REDIS_OK)
    {
        goto failed;
    }

    rd->handshake++;

    return;

failed:

    /* not from here: hiredis goes on using the context after this callback */

    rd->why = "cannot send the handshake";

    if (rd->watchdog.timer_set) {
        ngx_del_timer(&rd->watchdog);
    }

    ngx_post_event(&rd->watchdog, &ngx_posted_events);
}


static void
ngx_http_seatgate_redis_handshake(redisAsyncContext *ac, void *r, void *data)
{
    char  *cmd = data;

    ngx_uint_t                  level;
    redisReply                 *reply = r;
    ngx_http_seatgate_redis_t  *rd;

    rd = ac->data;

    if (reply == NULL || rd->closing) {
        return;
    }

    if (reply->type == REDIS_REPLY_ERROR) {
        /* logged once per series of attempts, like a refused connect */
        level = rd->failures ? NGX_LOG_INFO : NGX_LOG_ERR;

        ngx_log_error(level, rd->log, 0,
                      "seatgate: redis %V: %s failed: %s",
                      &rd->conf->name, cmd, reply->str);
        rd->master.port = 0;
        ngx_http_seatgate_redis_close(rd, NULL);
        return;
    }

    if (ngx_strcmp(cmd, "ROLE") == 0
        && (reply->type != REDIS_REPLY_ARRAY || reply->elements < 1
            || reply->element[0]->type != REDIS_REPLY_STRING
            || ngx_strcmp(reply->element[0]->str, "master") != 0))
    {
        ngx_log_error(NGX_LOG_ERR, rd->log, 0,
                      "seatgate: redis %V: %s:%d is not the master, "
                      "asking the sentinels again",
                      &rd->conf->name, rd->master.ip, rd->master.port);
        rd->master.port = 0;
        ngx_http_seatgate_redis_close(rd, NULL);
        return;
    }

    if (--rd->handshake == 0) {
        ngx_http_seatgate_redis_ready(rd);
    }
}


static void
ngx_http_seatgate_redis_sentinel(redisAsyncContext *ac, void *r, void *data)
{
    ngx_http_seatgate_redis_t  *rd = data;

    ngx_int_t                        port;
    redisReply                      *reply = r;
    ngx_http_seatgate_redis_addr_t  *a;
    u_char                           buf[sizeof(struct in6_addr)];

    if (reply == NULL || rd->closing) {
        return;
    }

    a = &rd->conf->sentinels[rd->sentinel % rd->conf->nsentinels];

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2
        || reply->element[0]->type != REDIS_REPLY_STRING
        || reply->element[1]->type != REDIS_REPLY_STRING)
    {
        ngx_log_error(NGX_LOG_ERR, rd->log, 0,
                      "seatgate: redis %V: sentinel %s:%d does not know "
                      "master \"%s\"", &rd->conf->name, a->ip, a->port,
                      rd->conf->url.master);
        ngx_http_seatgate_redis_close(rd, NULL);
        return;
    }

    port = ngx_atoi((u_char *) reply->element[1]->str,
                    reply->element[1]->len);

    /* hiredis resolves names synchronously: only numeric addresses */

    if (port < 1 || port > 65535
        || reply->element[0]->len > NGX_INET6_ADDRSTRLEN
        || (inet_pton(AF_INET, reply->element[0]->str, buf) != 1
            && inet_pton(AF_INET6, reply->element[0]->str, buf) != 1))
    {
        ngx_log_error(NGX_LOG_ERR, rd->log, 0,
                      "seatgate: redis %V: sentinel gave \"%s:%s\", "
                      "not a numeric address", &rd->conf->name,
                      reply->element[0]->str, reply->element[1]->str);
        ngx_http_seatgate_redis_close(rd, NULL);
        return;
    }

    ngx_cpystrn(rd->master.ip, (u_char *) reply->element[0]->str,
                sizeof(rd->master.ip));
    rd->master.port = (int) port;

    ngx_log_error(NGX_LOG_INFO, rd->log, 0,
                  "seatgate: redis %V: master is %s:%d",
                  &rd->conf->name, rd->master.ip, rd->master.port);

    ngx_http_seatgate_redis_close(rd, NULL);
}


static void
ngx_http_seatgate_redis_ready(ngx_http_seatgate_redis_t *rd)
{
    ngx_queue_t                   *q;
    ngx_http_seatgate_redis_op_t  *op;

    if (rd->watchdog.timer_set) {
        ngx_del_timer(&rd->watchdog);
    }

    if (rd->failures) {
        ngx_log_error(NGX_LOG_NOTICE, rd->log, 0,
                      "seatgate: redis %V: %s link up again after "
                      "%ui failed attempts",
                      &rd->conf->name, rd->label, rd->failures);
    }

    rd->state = NGX_HTTP_SEATGATE_REDIS_READY;
    rd->up_since = ngx_current_msec;

    while (!ngx_queue_empty(&rd->waiting)) {
        q = ngx_queue_head(&rd->waiting);
        ngx_queue_remove(q);

        op = ngx_queue_data(q, ngx_http_seatgate_redis_op_t, queue);
        op->queued = 0;

        if (op->send(rd, op) != NGX_OK) {
            op->done(rd, op, NULL);
        }

        if (rd->ac == NULL || rd->closing) {
            break;
        }
    }

    if (rd->on_ready && rd->ac && !rd->closing) {
        rd->on_ready(rd);
    }
}


static void
ngx_http_seatgate_redis_disconnected(const redisAsyncContext *ac, int status)
{
    /* the cleanup hook, called just before, took the link down */
}


static void
ngx_http_seatgate_redis_cleanup(void *data)
{
    ngx_http_seatgate_redis_t  *rd = data;

    ngx_connection_t  *c;

    c = rd->conn;

    if (c == NULL) {
        return;
    }

    rd->conn = NULL;

    if (c->read->timer_set) {
        ngx_del_timer(c->read);
    }

    if (c->write->timer_set) {
        ngx_del_timer(c->write);
    }

    if (c->read->posted) {
        ngx_delete_posted_event(c->read);
    }

    if (c->write->posted) {
        ngx_delete_posted_event(c->write);
    }

    /* hiredis closes the socket right after this hook */

    if (ngx_del_conn) {
        ngx_del_conn(c, NGX_CLOSE_EVENT);

    } else {
        if (c->read->active || c->read->disabled) {
            ngx_del_event(c->read, NGX_READ_EVENT, NGX_CLOSE_EVENT);
        }

        if (c->write->active || c->write->disabled) {
            ngx_del_event(c->write, NGX_WRITE_EVENT, NGX_CLOSE_EVENT);
        }
    }

    ngx_free_connection(c);
    c->fd = (ngx_socket_t) -1;

    ngx_http_seatgate_redis_down(rd, (rd->ac && rd->ac->err && rd->ac->errstr)
                                     ? rd->ac->errstr : NULL);
}


static void
ngx_http_seatgate_redis_down(ngx_http_seatgate_redis_t *rd, const char *err)
{
    ngx_uint_t                     was, flapping, level;
    ngx_msec_t                     delay;
    ngx_queue_t                   *q;
    ngx_http_seatgate_redis_op_t  *op;

    was = rd->state;

    /* a link that falls as soon as it is up keeps backing off */
    flapping = (was == NGX_HTTP_SEATGATE_REDIS_READY
                && ngx_current_msec - rd->up_since < 2000);

    rd->state = NGX_HTTP_SEATGATE_REDIS_DOWN;
    rd->ac = NULL;
    rd->closing = 0;
    rd->handshake = 0;
    rd->why = NULL;

    if (rd->watchdog.timer_set) {
        ngx_del_timer(&rd->watchdog);
    }

    if (rd->watchdog.posted) {
        ngx_delete_posted_event(&rd->watchdog);
    }

    /* hiredis ran the in-flight callbacks already; this is a safety net */

    while (!ngx_queue_empty(&rd->inflight)) {
        q = ngx_queue_head(&rd->inflight);
        ngx_queue_remove(q);
        op = ngx_queue_data(q, ngx_http_seatgate_redis_op_t, queue);
        op->queued = 0;
        op->done(rd, op, NULL);
    }

    rd->ninflight = 0;

    if (was == NGX_HTTP_SEATGATE_REDIS_READY) {
        if (!rd->exiting) {
            level = (flapping && rd->failures) ? NGX_LOG_INFO : NGX_LOG_ERR;

            ngx_log_error(level, rd->log, 0,
                          "seatgate: redis %V: %s link lost%s%s",
                          &rd->conf->name, rd->label,
                          err ? ": " : "", err ? err : "");
        }

        if (rd->on_down) {
            rd->on_down(rd);
        }
    }

    delay = 0;

    if (rd->exiting) {
        goto failed;
    }

    if (rd->asking) {

        if (rd->master.port) {
            /* the sentinel named the master: connect to it now */
            rd->tried = 0;

        } else if (++rd->tried < rd->conf->nsentinels) {
            /* this sentinel failed: ask the next one now */
            rd->sentinel++;

        } else {
            /* every sentinel failed: back off */
            rd->sentinel++;
            rd->tried = 0;
            rd->failures++;
            delay = rd->backoff;
        }

    } else {
        if (rd->conf->url.kind == SG_URL_SENTINEL) {
            /* a lost master link asks the sentinels again (failover) */
            rd->master.port = 0;
        }

        if (rd->conf->url.kind == SG_URL_CLUSTER) {
            /* a node link of a cluster's seeds: the next seed */
            rd->sentinel++;
        }

        if (was != NGX_HTTP_SEATGATE_REDIS_READY || flapping) {
            rd->failures++;
            delay = rd->backoff;

        } else {
            /* a link that was up for a while: a new series of attempts */
            rd->failures = 0;
            rd->backoff = rd->conf->backoff_min;
            delay = (rd->conf->url.kind == SG_URL_SENTINEL)
                    ? 0 : rd->conf->backoff_min;
        }
    }

    if (delay) {
        rd->backoff = ngx_min(rd->backoff * 2, rd->conf->backoff_max);
    }

    if (rd->retry.timer_set || rd->retry.posted) {
        goto failed;
    }

    if (delay == 0) {
        /*
         * Reconnecting at once (the next sentinel, the master it named):
         * operations keep waiting for the link, as while connecting.
         */
        rd->state = NGX_HTTP_SEATGATE_REDIS_CONNECTING;
        ngx_post_event(&rd->retry, &ngx_posted_events);
        return;
    }

    ngx_add_timer(&rd->retry, delay);

failed:

    while (!ngx_queue_empty(&rd->waiting)) {
        q = ngx_queue_head(&rd->waiting);
        ngx_queue_remove(q);
        op = ngx_queue_data(q, ngx_http_seatgate_redis_op_t, queue);
        op->queued = 0;
        op->done(rd, op, NULL);
    }
}


static void
ngx_http_seatgate_redis_retry_handler(ngx_event_t *ev)
{
    ngx_http_seatgate_redis_t  *rd = ev->data;

    ev->timedout = 0;

    if (rd->exiting || ngx_exiting || ngx_terminate || ngx_quit) {
        return;
    }

    ngx_http_seatgate_redis_connect(rd);
}


static void
ngx_http_seatgate_redis_watchdog_handler(ngx_event_t *ev)
{
    ngx_http_seatgate_redis_t  *rd = ev->data;

    ngx_msec_t                     elapsed;
    ngx_http_seatgate_redis_op_t  *op;

    ev->timedout = 0;

    if (rd->ac == NULL) {
        return;
    }

    if (rd->why) {
        ngx_http_seatgate_redis_close(rd, rd->why);
        return;
    }

    if (rd->state != NGX_HTTP_SEATGATE_REDIS_READY) {
        if (rd->failures == 0) {
            ngx_log_error(NGX_LOG_ERR, rd->log, 0,
                          "seatgate: redis %V%s: connect timed out",
                          &rd->conf->name, rd->asking ? " (sentinel)" : "");
        }

        ngx_http_seatgate_redis_close(rd, NULL);
        return;
    }

    if (ngx_queue_empty(&rd->inflight)) {
        return;
    }

    op = ngx_queue_data(ngx_queue_head(&rd->inflight),
                        ngx_http_seatgate_redis_op_t, queue);

    elapsed = ngx_current_msec - op->sent;

    if (elapsed >= rd->conf->dead) {
        ngx_log_error(NGX_LOG_ERR, rd->log, 0,
                      "seatgate: redis %V: no reply for %M ms "
                      "(%ui commands waiting), reconnecting",
                      &rd->conf->name, elapsed, rd->ninflight);
        ngx_http_seatgate_redis_close(rd, NULL);
        return;
    }

    ngx_add_timer(ev, rd->conf->dead - elapsed);
}


/* ---- event hooks -------------------------------------------------------- */

static void
ngx_http_seatgate_redis_read_handler(ngx_event_t *rev)
{
    int                         n;
    ngx_uint_t                  i;
    ngx_connection_t           *c;
    ngx_http_seatgate_redis_t  *rd;

    c = rev->data;
    rd = c->data;

    /*
     * redisAsyncHandleRead() reads at most 16 KB: under edge-triggered
     * events drain the socket while it reports unread bytes, and read once
     * more after a pending EOF so that a closed peer is noticed now. A
     * flood (of revocation messages, say) is read a bounded amount per
     * event loop turn: the rest comes after the other events of the turn.
     */

    for (i = 0; /* void */; i++) {
        redisAsyncHandleRead(rd->ac);

        if (rd->conn != c || rd->ac == NULL) {
            /* the context was freed in a callback */
            return;
        }

        if (!(ngx_event_flags & NGX_USE_CLEAR_EVENT)) {
            return;
        }

        if (ioctl(c->fd, FIONREAD, &n) == -1) {
            n = 0;
        }

        if (n > 0) {
            if (i + 1 >= NGX_HTTP_SEATGATE_REDIS_READS) {
                ngx_post_event(rev, &ngx_posted_events);
                return;
            }

            continue;
        }

#if (NGX_HAVE_EPOLLRDHUP)
        if (rev->pending_eof) {
            rev->pending_eof = 0;
            continue;
        }
#endif

        return;
    }
}


static void
ngx_http_seatgate_redis_write_handler(ngx_event_t *wev)
{
    ngx_connection_t           *c;
    ngx_http_seatgate_redis_t  *rd;

    c = wev->data;
    rd = c->data;

    rd->writing = 1;

    redisAsyncHandleWrite(rd->ac);

    /*
     * rd outlives its connections: whether or not the write freed the
     * context (an error closes it), the flag goes, or the next connection's
     * writes would never be posted
     */

    rd->writing = 0;

    if (rd->conn != c || rd->ac == NULL) {
        return;
    }

    /*
     * A partial write leaves bytes in hiredis's buffer: under edge-triggered
     * events the next write event comes when the socket drains.
     */
}


static void
ngx_http_seatgate_redis_add_read(void *data)
{
    ngx_http_seatgate_redis_t  *rd = data;

    ngx_connection_t  *c;

    c = rd->conn;

    if (c == NULL || (ngx_event_flags & NGX_USE_CLEAR_EVENT)) {
        return;
    }

    if (!c->read->active) {
        (void) ngx_add_event(c->read, NGX_READ_EVENT, NGX_LEVEL_EVENT);
    }
}


static void
ngx_http_seatgate_redis_del_read(void *data)
{
    /* replies and pub/sub messages are always read */
}


static void
ngx_http_seatgate_redis_add_write(void *data)
{
    ngx_http_seatgate_redis_t  *rd = data;

    ngx_connection_t  *c;

    c = rd->conn;

    if (c == NULL || rd->ac == NULL) {
        return;
    }

    if (!(ngx_event_flags & NGX_USE_CLEAR_EVENT)) {
        if (!c->write->active) {
            (void) ngx_add_event(c->write, NGX_WRITE_EVENT, NGX_LEVEL_EVENT);
        }

        return;
    }

    /*
     * Edge-triggered: the socket is already writable, no event will come.
     * Write from a posted event, once per loop iteration (pipelining).  Not
     * before the connect completes (its write event comes by itself), nor
     * from within the write handler (a partial write waits for the socket).
     */

    if (rd->writing || !(rd->ac->c.flags & REDIS_CONNECTED)) {
        return;
    }

    if (!c->write->posted) {
        ngx_post_event(c->write, &ngx_posted_events);
    }
}


static void
ngx_http_seatgate_redis_del_write(void *data)
{
    ngx_http_seatgate_redis_t  *rd = data;

    ngx_connection_t  *c;

    c = rd->conn;

    if (c == NULL || (ngx_event_flags & NGX_USE_CLEAR_EVENT)) {
        return;
    }

    if (c->write->active) {
        (void) ngx_del_event(c->write, NGX_WRITE_EVENT, 0);
    }
}


/* ---- configuration ------------------------------------------------------ */

char *
ngx_http_seatgate_redis_parse(ngx_conf_t *cf, ngx_str_t *url,
    ngx_http_seatgate_redis_conf_t *rc)
{
    int    i;
    char   err[SG_ERR_MAX], buf[1024];
    u_char *p;

    if (url->len >= sizeof(buf)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "redis URL \"%V\" is too long in "
                           "\"seatgate_redis\" directive", url);
        return NGX_CONF_ERROR;
    }

    ngx_memcpy(buf, url->data, url->len);
    buf[url->len] = '\0';

    if (sg_url_parse(buf, &rc->url, err, sizeof(err)) != 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid redis URL \"%V\" in \"seatgate_redis\" "
                           "directive: %s", url, err);
        return NGX_CONF_ERROR;
    }

    sg_url_redacted(&rc->url, buf, sizeof(buf));

    rc->name.len = ngx_strlen(buf);
    rc->name.data = ngx_pnalloc(cf->pool, rc->name.len + 1);
    if (rc->name.data == NULL) {
        return NGX_CONF_ERROR;
    }

    p = ngx_cpymem(rc->name.data, buf, rc->name.len);
    *p = '\0';

    switch (rc->url.kind) {

    case SG_URL_TCP:
        if (ngx_http_seatgate_redis_resolve(cf, rc->url.host, rc->url.port,
                                            &rc->addr)
            != NGX_OK)
        {
            return NGX_CONF_ERROR;
        }

        break;

    case SG_URL_SENTINEL:
    case SG_URL_CLUSTER:
        rc->nsentinels = rc->url.nsentinels;
        rc->sentinels = ngx_pcalloc(cf->pool,
                                    rc->nsentinels
                                    * sizeof(ngx_http_seatgate_redis_addr_t));
        if (rc->sentinels == NULL) {
            return NGX_CONF_ERROR;
        }

        for (i = 0; i < rc->url.nsentinels; i++) {
            if (ngx_http_seatgate_redis_resolve(cf, rc->url.sentinels[i].host,
                                                rc->url.sentinels[i].port,
                                                &rc->sentinels[i])
                != NGX_OK)
            {
                return NGX_CONF_ERROR;
            }
        }

        break;

    default: /* SG_URL_UNIX */
        break;
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_seatgate_redis_resolve(ngx_conf_t *cf, const char *host, int port,
    ngx_http_seatgate_redis_addr_t *addr)
{
    size_t     len;
    u_char    *p;
    ngx_url_t  u;

    /* hiredis resolves host names synchronously: resolve them here, once */

    ngx_memzero(&u, sizeof(ngx_url_t));

    len = ngx_strlen(host);

    if (ngx_strchr(host, ':') != NULL && host[0] != '[') {
        /* a bare IPv6 address */
        p = ngx_pnalloc(cf->pool, len + 2);
        if (p == NULL) {
            return NGX_ERROR;
        }

        p[0] = '[';
        ngx_memcpy(p + 1, host, len);
        p[len + 1] = ']';

        u.url.len = len + 2;
        u.url.data = p;

    } else {
        u.url.len = len;
        u.url.data = (u_char *) host;
    }

    u.default_port = (in_port_t) port;
    u.no_port = 1;

    if (ngx_parse_url(cf->pool, &u) != NGX_OK || u.naddrs == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "cannot resolve redis host \"%s\" in "
                           "\"seatgate_redis\" directive%s%s", host,
                           u.err ? ": " : "", u.err ? u.err : "");
        return NGX_ERROR;
    }

    len = ngx_sock_ntop(u.addrs[0].sockaddr, u.addrs[0].socklen, addr->ip,
                        NGX_INET6_ADDRSTRLEN, 0);
    addr->ip[len] = '\0';
    addr->port = port;

    return NGX_OK;
}
