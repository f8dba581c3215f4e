
/*
 * Copyright (C) ngx_ai_relay authors
 *
 * A worker's life: the state a worker keeps apart from the configuration
 * (ngx_ai_relay_worker_t: the Redis link, caches, settlement and release
 * queues, the journal, leases, timers) is made here, set up on the
 * worker's first need of it and torn down at its exit.  The files that
 * use the state are below this one: they never call up into it, the
 * hooks they call back through are set here.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_ai_relay_module.h"
#include "ngx_ai_relay_worker.h"
#include "ngx_ai_relay_settle.h"
#include "ngx_ai_relay_journal.h"
#include "ngx_ai_relay_release.h"
#include "ngx_ai_relay_lease.h"
#include "ngx_ai_relay_lua.h"
#include "ngx_ai_relay_key.h"
#include "ngx_ai_relay_metrics.h"


static void ngx_ai_relay_worker_ready(ngx_ai_relay_redis_t *rds);


/* at configuration time: the state, and the link's settings */

char *
ngx_ai_relay_worker_conf(ngx_conf_t *cf, ngx_ai_relay_main_conf_t *armcf)
{
    ngx_uint_t                 i;
    ngx_ai_relay_redis_t      *rds;
    ngx_ai_relay_worker_t     *wk;
    ngx_ai_relay_slot_node_t  *seed;

    wk = ngx_pcalloc(cf->pool, sizeof(ngx_ai_relay_worker_t));
    if (wk == NULL) {
        return NGX_CONF_ERROR;
    }

    rds = ngx_pcalloc(cf->pool, sizeof(ngx_ai_relay_redis_t));
    if (rds == NULL) {
        return NGX_CONF_ERROR;
    }

    rds->host = (char *) armcf->host.data;
    rds->port = (int) armcf->port;
    rds->unix_path = armcf->unix_path.len ? (char *) armcf->unix_path.data
                                          : NULL;
    rds->password = armcf->password;
    rds->db = armcf->db;
    rds->connect_timeout = armcf->connect_timeout;
    rds->timeout = armcf->timeout;
    rds->script_src = ngx_ai_relay_scripts;
    rds->nscripts = NGX_AI_RELAY_NSCRIPTS;
    rds->script_sha = ngx_pcalloc(cf->pool,
                                  NGX_AI_RELAY_NSCRIPTS * sizeof(ngx_str_t));
    if (rds->script_sha == NULL) {
        return NGX_CONF_ERROR;
    }

    rds->on_ready = ngx_ai_relay_worker_ready;
    rds->data = armcf;

    if (armcf->cluster) {
        rds->cluster = ngx_pcalloc(cf->pool,
                                   sizeof(ngx_ai_relay_redis_cluster_t));
        if (rds->cluster == NULL) {
            return NGX_CONF_ERROR;
        }

        seed = armcf->seeds->elts;

        for (i = 0; i < armcf->seeds->nelts; i++) {
            if (ngx_ai_relay_slot_node(&rds->cluster->map, seed[i].host,
                                       seed[i].port)
                < 0)
            {
                return NGX_CONF_ERROR;
            }
        }

        rds->cluster->nseeds = rds->cluster->map.nnodes;
    }

    if (armcf->sentinel_name.len) {
        rds->sentinel = ngx_pcalloc(cf->pool,
                                    sizeof(ngx_ai_relay_redis_sentinel_t));
        if (rds->sentinel == NULL) {
            return NGX_CONF_ERROR;
        }

        rds->sentinel->name = armcf->sentinel_name;
        rds->sentinel->addrs = armcf->sentinels->elts;
        rds->sentinel->naddrs = armcf->sentinels->nelts;

        /* the address the sentinels give */
        rds->host = rds->sentinel->host;
        rds->port = 0;
        rds->unix_path = NULL;
    }

    ngx_queue_init(&wk->journal_queue);
    ngx_queue_init(&wk->settle_queue);

    wk->redis = rds;
    armcf->worker = wk;

    return NGX_CONF_OK;
}


/*
 * Once per worker: from init_process, and on first use (after a HUP
 * reload in single process mode, where init_process does not run again).
 */

ngx_int_t
ngx_ai_relay_worker_init(ngx_ai_relay_main_conf_t *armcf)
{
    ngx_ai_relay_worker_t  *wk;

    wk = armcf->worker;

    if (wk->initialized) {
        return wk->started ? NGX_OK : NGX_ERROR;
    }

    wk->initialized = 1;

    if (ngx_ai_relay_redis_init(wk->redis, ngx_cycle->log) != NGX_OK) {
        return NGX_ERROR;
    }

    if (armcf->cache_ttl && armcf->cache_size) {
        if (ngx_ai_relay_cache_init(&wk->key_cache, armcf->cache_size,
                                    armcf->cache_ttl, ngx_cycle->log)
            != NGX_OK
            || ngx_ai_relay_cache_init(&wk->route_cache, armcf->cache_size,
                                       armcf->cache_ttl, ngx_cycle->log)
               != NGX_OK
            || ngx_ai_relay_cache_init(&wk->keyconf_cache, armcf->cache_size,
                                       armcf->cache_ttl, ngx_cycle->log)
               != NGX_OK
            || ngx_ai_relay_lease_init(armcf) != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    /* a settlement timer holds up a graceful exit until it fired */

    wk->settle_timer.handler = ngx_ai_relay_settle_timer_handler;
    wk->settle_timer.data = armcf;
    wk->settle_timer.log = ngx_cycle->log;
    wk->settle_epoch = ngx_time();

    if (ngx_ai_relay_request_id_seed(&wk->id_seed) != 0) {
        wk->id_seed = ((uint64_t) ngx_random() << 32)
                      ^ ((uint64_t) ngx_pid << 16) ^ ngx_random();
    }

    ngx_queue_init(&wk->release_queue);
    wk->release_n = 0;
    wk->release_retry.handler = ngx_ai_relay_release_retry_handler;
    wk->release_retry.data = armcf;
    wk->release_retry.log = ngx_cycle->log;
    wk->release_retry.cancelable = 1;
    wk->on_pending_item = ngx_ai_relay_settle_adopt;

    ngx_ai_relay_metrics_worker_init(armcf);

    wk->started = 1;

    ngx_ai_relay_journal_probe(armcf);
    ngx_ai_relay_journal_load(armcf);
    ngx_ai_relay_redis_connect(wk->redis);

    return NGX_OK;
}


/* the Redis link is (back) up: what waited for it goes out */

static void
ngx_ai_relay_worker_ready(ngx_ai_relay_redis_t *rds)
{
    ngx_ai_relay_release_replay(rds->data);
    ngx_ai_relay_journal_replay(rds);
}


void
ngx_ai_relay_worker_exit(ngx_ai_relay_main_conf_t *armcf)
{
    ngx_ai_relay_worker_t  *wk;

    wk = armcf->worker;

    if (!wk->initialized) {
        return;
    }

    /* unanswered settlements come back with NULL and go to the journal */

    ngx_ai_relay_settle_flush(armcf);
    ngx_ai_relay_lease_exit(armcf);
    ngx_ai_relay_redis_close(wk->redis);
    ngx_ai_relay_journal_save(armcf);

    ngx_ai_relay_cache_free(&wk->key_cache);
    ngx_ai_relay_cache_free(&wk->route_cache);
    ngx_ai_relay_cache_free(&wk->keyconf_cache);
}
