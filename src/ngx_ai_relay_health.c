
/*
 * Copyright (C) ngx_ai_relay authors
 *
 * The health of every channel key, shared by all workers and kept across
 * reloads: a breaker (breaker.c) per channel key in a shared zone.  Route
 * picks only keys whose breaker lets a request through; the header filter
 * reports how each attempt went.  Keys come back by themselves through a
 * probe; a channel the operator disabled is not this file's business.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_ai_relay_module.h"
#include "ngx_ai_relay_shm.h"
#include "ngx_ai_relay_health.h"


#define NGX_AI_RELAY_HEALTH_ID_LEN  64


typedef struct {
    uint32_t                      hash;          /* 0: a free slot */
    uint32_t                      key_index;
    u_char                        channel[NGX_AI_RELAY_HEALTH_ID_LEN];
    size_t                        channel_len;
    ngx_ai_relay_breaker_t        breaker;
} ngx_ai_relay_health_node_t;


typedef struct {
    ngx_atomic_t                  dirty;         /* breakers not at rest */
    ngx_uint_t                    n;             /* slots */
    ngx_uint_t                    used;
    ngx_uint_t                    full;          /* lookups that found none */
    ngx_ai_relay_health_node_t    nodes[1];
} ngx_ai_relay_health_sh_t;


static ngx_int_t ngx_ai_relay_health_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static ngx_ai_relay_health_node_t *ngx_ai_relay_health_node(
    ngx_ai_relay_health_sh_t *sh, ngx_str_t *channel, ngx_uint_t key_index,
    ngx_uint_t create);
static int64_t ngx_ai_relay_health_now(void);
static void ngx_ai_relay_health_dirty(ngx_ai_relay_health_sh_t *sh,
    ngx_uint_t was, ngx_ai_relay_breaker_t *b);


/* a breaker at rest: closed, no failure counted */
#define ngx_ai_relay_health_rest(b)                                          \
    ((b)->state == NGX_AI_RELAY_BREAKER_CLOSED && (b)->failures == 0)


static ngx_str_t  ngx_ai_relay_health_name = ngx_string("ai_relay_health");


char *
ngx_ai_relay_health_conf(ngx_conf_t *cf, ngx_ai_relay_main_conf_t *armcf)
{
    if (!armcf->enabled || armcf->health_zone_size == 0) {
        return NGX_CONF_OK;
    }

    armcf->health_zone = ngx_ai_relay_shm_add(cf, &ngx_ai_relay_health_name,
                                       "ai_relay_health_zone",
                                       armcf->health_zone_size,
                                       8 * ngx_pagesize,
                                       ngx_ai_relay_health_init_zone,
                                       &ngx_ai_relay_module);

    return armcf->health_zone ? NGX_CONF_OK : NGX_CONF_ERROR;
}


/* a reload finds the zone of the cycle before: the breakers stay */

static ngx_int_t
ngx_ai_relay_health_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    size_t                     size;
    ngx_slab_pool_t           *shpool;
    ngx_ai_relay_health_sh_t  *sh;

    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;
    sh = NULL;

    if (ngx_ai_relay_shm_reuse(shm_zone, data) == NGX_OK) {
        return NGX_OK;
    }

    /*
     * one table as large as the zone allows (a node is ~130 bytes): what
     * the slab pool's own pages leave of the zone is found by trying
     */

    shpool->log_nomem = 0;

    for (size = shm_zone->shm.size - 2 * ngx_pagesize;
         size >= 4 * ngx_pagesize;
         size -= ngx_pagesize)
    {
        sh = ngx_slab_alloc(shpool, size);
        if (sh) {
            break;
        }
    }

    if (sh == NULL) {
        return NGX_ERROR;
    }

    ngx_memzero(sh, size);

    sh->n = (size - sizeof(ngx_ai_relay_health_sh_t))
            / sizeof(ngx_ai_relay_health_node_t) + 1;

    shpool->data = sh;
    shm_zone->data = sh;

    return NGX_OK;
}


ngx_uint_t
ngx_ai_relay_health_channel_ready(ngx_ai_relay_main_conf_t *armcf,
    ngx_ai_relay_channel_t *ch, ngx_uint_t nkeys)
{
    int64_t                      now;
    ngx_uint_t                   i, ready;
    ngx_slab_pool_t             *shpool;
    ngx_ai_relay_health_sh_t    *sh;
    ngx_ai_relay_health_node_t  *node;

    if (armcf->health_zone == NULL) {
        return 1;
    }

    sh = armcf->health_zone->data;

    if (sh->dirty == 0) {
        /* every key healthy: no lock on the common path */
        return 1;
    }

    shpool = (ngx_slab_pool_t *) armcf->health_zone->shm.addr;
    now = ngx_ai_relay_health_now();
    ready = 0;

    ngx_shmtx_lock(&shpool->mutex);

    for (i = 0; i < (nkeys ? nkeys : 1) && !ready; i++) {
        node = ngx_ai_relay_health_node(sh, &ch->id, i, 0);

        ready = (node == NULL
                 || ngx_ai_relay_breaker_ready(&node->breaker, now));
    }

    ngx_shmtx_unlock(&shpool->mutex);

    return ready;
}


ngx_uint_t
ngx_ai_relay_health_take(ngx_ai_relay_main_conf_t *armcf, ngx_str_t *channel,
    ngx_uint_t key_index)
{
    ngx_uint_t                   ok;
    ngx_slab_pool_t             *shpool;
    ngx_ai_relay_health_sh_t    *sh;
    ngx_ai_relay_health_node_t  *node;

    if (armcf->health_zone == NULL) {
        return 1;
    }

    sh = armcf->health_zone->data;

    if (sh->dirty == 0) {
        return 1;
    }

    shpool = (ngx_slab_pool_t *) armcf->health_zone->shm.addr;

    ngx_shmtx_lock(&shpool->mutex);

    /* a key never reported is healthy: no node for it yet */

    node = ngx_ai_relay_health_node(sh, channel, key_index, 0);

    ok = (node == NULL
          || ngx_ai_relay_breaker_take(&node->breaker,
                                       ngx_ai_relay_health_now(),
                                       &armcf->breaker));

    ngx_shmtx_unlock(&shpool->mutex);

    return ok;
}


void
ngx_ai_relay_health_report(ngx_http_request_t *r, ngx_ai_relay_ctx_t *ctx,
    ngx_uint_t outcome, ngx_uint_t status, ngx_msec_int_t retry_after_ms)
{
    int                          opened;
    int64_t                      now, until;
    unsigned                     reason;
    ngx_uint_t                   was;
    ngx_slab_pool_t             *shpool;
    ngx_ai_relay_health_sh_t    *sh;
    ngx_ai_relay_health_node_t  *node;
    ngx_ai_relay_main_conf_t    *armcf;

    if (ctx->route.channel == NULL || ctx->route.reported) {
        return;
    }

    ctx->route.reported = 1;

    armcf = ngx_http_get_module_main_conf(r, ngx_ai_relay_module);

    if (armcf->health_zone == NULL) {
        return;
    }

    sh = armcf->health_zone->data;

    if (outcome == NGX_AI_RELAY_OUTCOME_OK && sh->dirty == 0) {
        return;
    }

    shpool = (ngx_slab_pool_t *) armcf->health_zone->shm.addr;
    now = ngx_ai_relay_health_now();

    ngx_shmtx_lock(&shpool->mutex);

    node = ngx_ai_relay_health_node(sh, &ctx->route.channel->id,
                                    ctx->route.upstream_key_index,
                                    outcome != NGX_AI_RELAY_OUTCOME_OK);
    opened = 0;
    until = 0;
    reason = 0;

    if (node) {
        was = ngx_ai_relay_health_rest(&node->breaker);
        opened = ngx_ai_relay_breaker_report(&node->breaker, (int) outcome,
                                             (unsigned) status,
                                             retry_after_ms, now,
                                             &armcf->breaker);
        ngx_ai_relay_health_dirty(sh, was, &node->breaker);
        until = node->breaker.until_ms;
        reason = node->breaker.reason;
    }

    ngx_shmtx_unlock(&shpool->mutex);

    if (opened) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "ai relay: channel %V key #%ui benched for %L ms: "
                      "%s (status %ui)", &ctx->route.channel->id,
                      ctx->route.upstream_key_index, until - now,
                      ngx_ai_relay_breaker_reason_name(reason), status);
    }
}


void
ngx_ai_relay_health_each(ngx_ai_relay_main_conf_t *armcf,
    ngx_ai_relay_health_each_pt handler, void *data)
{
    ngx_str_t                    channel;
    ngx_uint_t                   i;
    ngx_slab_pool_t             *shpool;
    ngx_ai_relay_health_sh_t    *sh;
    ngx_ai_relay_health_node_t  *node;

    if (armcf->health_zone == NULL) {
        return;
    }

    shpool = (ngx_slab_pool_t *) armcf->health_zone->shm.addr;
    sh = armcf->health_zone->data;

    ngx_shmtx_lock(&shpool->mutex);

    for (i = 0; i < sh->n; i++) {
        node = &sh->nodes[i];

        if (node->hash == 0) {
            continue;
        }

        channel.data = node->channel;
        channel.len = node->channel_len;

        handler(data, &channel, node->key_index, &node->breaker);
    }

    ngx_shmtx_unlock(&shpool->mutex);
}


/* open addressing; nodes are never removed (channel keys are few) */

static ngx_ai_relay_health_node_t *
ngx_ai_relay_health_node(ngx_ai_relay_health_sh_t *sh, ngx_str_t *channel,
    ngx_uint_t key_index, ngx_uint_t create)
{
    uint32_t                     hash;
    ngx_uint_t                   i, n;
    ngx_ai_relay_health_node_t  *node;

    if (channel->len > NGX_AI_RELAY_HEALTH_ID_LEN) {
        return NULL;
    }

    hash = ngx_crc32_short(channel->data, channel->len)
           ^ (uint32_t) (key_index * 0x9e3779b1);

    if (hash == 0) {
        hash = 1;
    }

    for (n = 0, i = hash % sh->n; n < sh->n; n++, i = (i + 1) % sh->n) {
        node = &sh->nodes[i];

        if (node->hash == 0) {
            if (!create || sh->used + 1 >= sh->n) {
                sh->full += create;
                return NULL;
            }

            node->hash = hash;
            node->key_index = (uint32_t) key_index;
            node->channel_len = channel->len;
            ngx_memcpy(node->channel, channel->data, channel->len);
            ngx_memzero(&node->breaker, sizeof(ngx_ai_relay_breaker_t));
            sh->used++;

            return node;
        }

        if (node->hash == hash && node->key_index == key_index
            && node->channel_len == channel->len
            && ngx_memcmp(node->channel, channel->data, channel->len) == 0)
        {
            return node;
        }
    }

    return NULL;
}


static int64_t
ngx_ai_relay_health_now(void)
{
    ngx_time_t  *tp;

    tp = ngx_timeofday();

    return (int64_t) tp->sec * 1000 + tp->msec;
}


/* the count of breakers not at rest, which lets healthy traffic skip
 * the lock; changed under the lock */

static void
ngx_ai_relay_health_dirty(ngx_ai_relay_health_sh_t *sh, ngx_uint_t was,
    ngx_ai_relay_breaker_t *b)
{
    ngx_uint_t  rest;

    rest = ngx_ai_relay_health_rest(b);

    if (was && !rest) {
        sh->dirty++;

    } else if (!was && rest) {
        sh->dirty--;
    }
}
