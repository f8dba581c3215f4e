
/*
 * Copyright (C) ngx_ai_relay authors
 */


#ifndef _NGX_AI_RELAY_UPSTREAM_H_INCLUDED_
#define _NGX_AI_RELAY_UPSTREAM_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_ai_relay_module.h"


char *ngx_ai_relay_upstream_wrap(ngx_conf_t *cf,
    ngx_ai_relay_loc_conf_t *arlcf);


#endif /* _NGX_AI_RELAY_UPSTREAM_H_INCLUDED_ */
