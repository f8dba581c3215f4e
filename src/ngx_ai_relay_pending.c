
/*
 * Copyright (C) ngx_ai_relay authors
 *
 * Settlements Redis has not acknowledged yet, kept in a shared memory zone
 * (ai_relay_settle_zone) as well as in the worker that owns them.  A
 * worker killed outright (SIGKILL, a crash) takes nothing with it: the
 * others look at the zone once a second and take over the settlements of
 * owners that are gone, as does each new worker at start.  The zone
 * outlives reloads (same name and size).  A worker that exits normally
 * writes what it still holds to its journal file and takes it out of the
 * zone; when the zone is full, a settlement lives in its worker alone, as
 * before.  A finished request is in the zone from the moment it is queued
 * for settlement (an item); its batch replaces it there in one step.
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_ai_relay_module.h"
#include "ngx_ai_relay_shm.h"
#include "ngx_ai_relay_pending.h"


typedef struct {
    ngx_queue_t                  queue;
    ngx_uint_t                   n;
} ngx_ai_relay_pending_sh_t;


static ngx_int_t ngx_ai_relay_pending_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);


static ngx_str_t  ngx_ai_relay_pending_name = ngx_string("ai_relay_settle");


char *
ngx_ai_relay_pending_conf(ngx_conf_t *cf, ngx_ai_relay_main_conf_t *armcf)
{
    if (!armcf->enabled || armcf->settle_zone_size == 0) {
        return NGX_CONF_OK;
    }

    armcf->settle_zone = ngx_ai_relay_shm_add(cf, &ngx_ai_relay_pending_name,
                                       "ai_relay_settle_zone",
                                       armcf->settle_zone_size,
                                       8 * ngx_pagesize,
                                       ngx_ai_relay_pending_init_zone,
                                       &ngx_ai_relay_module);

    return armcf->settle_zone ? NGX_CONF_OK : NGX_CONF_ERROR;
}


/* a reload finds the zone of the cycle before: what it holds stays */

static ngx_int_t
ngx_ai_relay_pending_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_slab_pool_t            *shpool;
    ngx_ai_relay_pending_sh_t  *sh;

    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (ngx_ai_relay_shm_reuse(shm_zone, data) == NGX_OK) {
        return NGX_OK;
    }

    sh = ngx_slab_alloc(shpool, sizeof(ngx_ai_relay_pending_sh_t));
    if (sh == NULL) {
        return NGX_ERROR;
    }

    ngx_queue_init(&sh->queue);
    sh->n = 0;

    shpool->data = sh;
    shm_zone->data = sh;

    shpool->log_nomem = 0;

    return NGX_OK;
}


/*
 * Room for one settlement of len bytes, owned by this worker, not yet in
 * the zone's list (no other worker sees it until it is linked); or NULL.
 */

ngx_ai_relay_pending_t *
ngx_ai_relay_pending_alloc(ngx_ai_relay_main_conf_t *armcf, ngx_uint_t kind,
    size_t len)
{
    ngx_slab_pool_t         *shpool;
    ngx_ai_relay_pending_t  *p;

    if (armcf->settle_zone == NULL) {
        return NULL;
    }

    shpool = (ngx_slab_pool_t *) armcf->settle_zone->shm.addr;

    p = ngx_slab_alloc(shpool, offsetof(ngx_ai_relay_pending_t, data) + len);

    if (p == NULL) {
        if (!armcf->worker->settle_zone_full) {
            armcf->worker->settle_zone_full = 1;
            ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                          "ai relay: \"ai_relay_settle_zone\" is full: "
                          "settlements are kept by their workers alone");
        }

        return NULL;
    }

    armcf->worker->settle_zone_full = 0;

    p->owner = ngx_pid;
    p->kind = kind;
    p->len = len;

    return p;
}


/*
 * In one step, for other workers: p (filled in) joins the list, and the
 * entries it replaces (the requests a batch settles) leave it, so a
 * worker killed at any moment leaves each request in the zone once.
 */

void
ngx_ai_relay_pending_link(ngx_ai_relay_main_conf_t *armcf,
    ngx_ai_relay_pending_t *p, ngx_ai_relay_pending_t **drop,
    ngx_uint_t ndrop)
{
    ngx_uint_t                  i;
    ngx_slab_pool_t            *shpool;
    ngx_ai_relay_pending_sh_t  *sh;

    shpool = (ngx_slab_pool_t *) armcf->settle_zone->shm.addr;
    sh = armcf->settle_zone->data;

    ngx_shmtx_lock(&shpool->mutex);

    if (p) {
        ngx_queue_insert_tail(&sh->queue, &p->queue);
        sh->n++;
    }

    for (i = 0; i < ndrop; i++) {
        ngx_queue_remove(&drop[i]->queue);
        sh->n--;
        ngx_slab_free_locked(shpool, drop[i]);
    }

    ngx_shmtx_unlock(&shpool->mutex);
}


void
ngx_ai_relay_pending_remove(ngx_ai_relay_main_conf_t *armcf,
    ngx_ai_relay_pending_t *p)
{
    ngx_slab_pool_t            *shpool;
    ngx_ai_relay_pending_sh_t  *sh;

    shpool = (ngx_slab_pool_t *) armcf->settle_zone->shm.addr;
    sh = armcf->settle_zone->data;

    ngx_shmtx_lock(&shpool->mutex);

    ngx_queue_remove(&p->queue);
    sh->n--;
    ngx_slab_free_locked(shpool, p);

    ngx_shmtx_unlock(&shpool->mutex);
}


/*
 * The settlements of owners that are gone become ours; batch() or item()
 * gets each, under the zone's lock (they must not add to or remove from
 * the zone): the entry stays in the zone, owned by us, until it is
 * removed.  Returns how many.
 */

ngx_uint_t
ngx_ai_relay_pending_claim(ngx_ai_relay_main_conf_t *armcf,
    ngx_ai_relay_pending_found_pt batch, ngx_ai_relay_pending_found_pt item)
{
    ngx_uint_t                  n;
    ngx_queue_t                *q;
    ngx_slab_pool_t            *shpool;
    ngx_ai_relay_pending_t     *p;
    ngx_ai_relay_pending_sh_t  *sh;

    if (armcf->settle_zone == NULL) {
        return 0;
    }

    shpool = (ngx_slab_pool_t *) armcf->settle_zone->shm.addr;
    sh = armcf->settle_zone->data;

    n = 0;

    ngx_shmtx_lock(&shpool->mutex);

    for (q = ngx_queue_head(&sh->queue);
         q != ngx_queue_sentinel(&sh->queue);
         q = ngx_queue_next(q))
    {
        p = ngx_queue_data(q, ngx_ai_relay_pending_t, queue);

        if (p->owner == ngx_pid
            || kill(p->owner, 0) == 0 || ngx_errno != NGX_ESRCH)
        {
            continue;
        }

        p->owner = ngx_pid;
        n++;

        if (p->kind == NGX_AI_RELAY_PENDING_ITEM) {
            item(armcf, p);

        } else {
            batch(armcf, p);
        }
    }

    ngx_shmtx_unlock(&shpool->mutex);

    return n;
}


/* settlements in the zone now (one word, read without the lock) */

ngx_uint_t
ngx_ai_relay_pending_count(ngx_ai_relay_main_conf_t *armcf)
{
    ngx_ai_relay_pending_sh_t  *sh;

    if (armcf->settle_zone == NULL || armcf->settle_zone->data == NULL) {
        return 0;
    }

    sh = armcf->settle_zone->data;

    return *(volatile ngx_uint_t *) &sh->n;
}
