
/*
 * Copyright (C) ngx_ai_relay authors
 *
 * The module's shared memory zones (settlements, health, metrics): how
 * each is added at configuration time and found again after a reload.
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_ai_relay_shm.h"


/* a zone of at least min bytes; NULL with an [emerg] said */

ngx_shm_zone_t *
ngx_ai_relay_shm_add(ngx_conf_t *cf, ngx_str_t *name, const char *directive,
    size_t size, size_t min, ngx_shm_zone_init_pt init, void *tag)
{
    ngx_shm_zone_t  *shm_zone;

    if (size < min) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%s\" is too small, it must be at least %uzk",
                           directive, (min + 1023) / 1024);
        return NULL;
    }

    shm_zone = ngx_shared_memory_add(cf, name, size, tag);
    if (shm_zone == NULL) {
        return NULL;
    }

    shm_zone->init = init;
    shm_zone->data = NULL;

    return shm_zone;
}


/*
 * In a zone's init: NGX_OK when the zone kept its data (a reload passes
 * the cycle before's, a new worker of a running master finds it in the
 * slab pool), NGX_DECLINED when the caller must make it.
 */

ngx_int_t
ngx_ai_relay_shm_reuse(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_slab_pool_t  *shpool;

    if (data) {
        shm_zone->data = data;
        return NGX_OK;
    }

    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        shm_zone->data = shpool->data;
        return NGX_OK;
    }

    return NGX_DECLINED;
}
