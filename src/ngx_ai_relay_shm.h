
/*
 * Copyright (C) ngx_ai_relay authors
 */


#ifndef _NGX_AI_RELAY_SHM_H_INCLUDED_
#define _NGX_AI_RELAY_SHM_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


ngx_shm_zone_t *ngx_ai_relay_shm_add(ngx_conf_t *cf, ngx_str_t *name,
    const char *directive, size_t size, size_t min,
    ngx_shm_zone_init_pt init, void *tag);
ngx_int_t ngx_ai_relay_shm_reuse(ngx_shm_zone_t *shm_zone, void *data);


#endif /* _NGX_AI_RELAY_SHM_H_INCLUDED_ */
