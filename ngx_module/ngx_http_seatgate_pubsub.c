
/*
 * ngx_http_seatgate_module: the revocation subscription.
 *
 * Each worker subscribes to seatgate:revoke on its own Redis link; a
 * message "POOL\tUSER" makes the matching cached decisions stale. A
 * heartbeat re-SUBSCRIBE proves the subscription alive; without it cached
 * grants are served for at most a second.
 */


#include "ngx_http_seatgate.h"


static void ngx_http_seatgate_message_cb(redisAsyncContext *ac, void *r,
    void *data);


/* was this worker subscribed to revocations all the time since "since"? */

ngx_uint_t
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

void
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


void
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


void
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

    /* the free tier's requests of every worker go to the usage records */
    ngx_http_seatgate_flush_free();

    ngx_add_timer(ev, NGX_HTTP_SEATGATE_HEARTBEAT);
}
