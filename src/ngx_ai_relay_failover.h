
/*
 * Copyright (C) ngx_ai_relay authors
 */


#ifndef _NGX_AI_RELAY_FAILOVER_H_INCLUDED_
#define _NGX_AI_RELAY_FAILOVER_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_ai_relay_module.h"


/* ai_relay_next_upstream: when a request goes to another channel key */
#define NGX_AI_RELAY_NEXT_ERROR    0x01    /* no connection, bad answer */
#define NGX_AI_RELAY_NEXT_TIMEOUT  0x02    /* nothing before the timeout */
#define NGX_AI_RELAY_NEXT_429      0x04
#define NGX_AI_RELAY_NEXT_5XX      0x08
#define NGX_AI_RELAY_NEXT_AUTH     0x10    /* 401, 402, 403: the key */
#define NGX_AI_RELAY_NEXT_OFF      0x80


ngx_int_t ngx_ai_relay_failover(ngx_http_request_t *r,
    ngx_ai_relay_ctx_t *ctx, ngx_uint_t status, ngx_uint_t answered);


#endif /* _NGX_AI_RELAY_FAILOVER_H_INCLUDED_ */
