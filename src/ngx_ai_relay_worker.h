
/*
 * Copyright (C) ngx_ai_relay authors
 */


#ifndef _NGX_AI_RELAY_WORKER_H_INCLUDED_
#define _NGX_AI_RELAY_WORKER_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_ai_relay_module.h"


char *ngx_ai_relay_worker_conf(ngx_conf_t *cf,
    ngx_ai_relay_main_conf_t *armcf);
ngx_int_t ngx_ai_relay_worker_init(ngx_ai_relay_main_conf_t *armcf);
void ngx_ai_relay_worker_exit(ngx_ai_relay_main_conf_t *armcf);


#endif /* _NGX_AI_RELAY_WORKER_H_INCLUDED_ */
