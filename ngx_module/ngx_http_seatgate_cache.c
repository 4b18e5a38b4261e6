
/*
 * ngx_http_seatgate_module: the shared decision cache.
 *
 * Decisions live in a shared memory zone (rbtree by key, LRU queue),
 * kept across reloads. Revocation is O(1): generation counters per pool
 * and per hashed user slot, read when Redis is asked and compared on
 * lookup; a full zone evicts until a new entry fits and says so.
 */


#include "ngx_http_seatgate.h"


static uint32_t ngx_http_seatgate_user_slot(ngx_http_seatgate_zone_t *z,
    u_char *pool, size_t pool_len, u_char *user, size_t user_len);
static ngx_uint_t ngx_http_seatgate_gens_fresh(ngx_http_seatgate_zone_t *z,
    ngx_http_seatgate_node_t *sn);
static ngx_http_seatgate_node_t *ngx_http_seatgate_cache_find(
    ngx_http_seatgate_zone_t *z, uint32_t hash, u_char *key, size_t len);
static void ngx_http_seatgate_cache_delete(ngx_http_seatgate_zone_t *z,
    ngx_http_seatgate_node_t *sn);
static void ngx_http_seatgate_cache_expire(ngx_http_seatgate_zone_t *z,
    ngx_uint_t force);
static void ngx_http_seatgate_rbtree_insert_value(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel);


/* ---- the decision cache ------------------------------------------------- */

size_t
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

ngx_int_t
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
    ctx->floating = sn->floating;
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


void
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
    sn->floating = (uint32_t) ngx_max(d->floating, 0);
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


void
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

void
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

void
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


ngx_int_t
ngx_http_seatgate_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_seatgate_zone_t  *oz = data;

    size_t                     len;
    ngx_uint_t                 slots;
    ngx_http_seatgate_zone_t  *z;

    z = shm_zone->data;

    if (oz || shm_zone->shm.exists) {
        /* a reload keeps the cached decisions, if this build reads them */
        z->shpool = oz ? oz->shpool : (ngx_slab_pool_t *) shm_zone->shm.addr;
        z->sh = oz ? oz->sh : z->shpool->data;

        if (z->sh->layout != NGX_HTTP_SEATGATE_LAYOUT) {
            ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                          "seatgate zone \"%V\" was made by another build "
                          "of the module: restart nginx (or rename the "
                          "zone) to use this one", &shm_zone->shm.name);
            return NGX_ERROR;
        }

        return NGX_OK;
    }

    z->shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

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

    z->sh->layout = NGX_HTTP_SEATGATE_LAYOUT;
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
