
/*
 * Copyright (C) ngx_ai_relay authors
 */


#ifndef _NGX_AI_RELAY_ROUTE_H_INCLUDED_
#define _NGX_AI_RELAY_ROUTE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_ai_relay_module.h"


ngx_int_t ngx_ai_relay_route_parse(ngx_http_request_t *r,
    ngx_ai_relay_ctx_t *ctx, redisReply *reply);
void ngx_ai_relay_route_error(ngx_http_request_t *r,
    ngx_ai_relay_ctx_t *ctx);
void ngx_ai_relay_model_not_found(ngx_http_request_t *r,
    ngx_ai_relay_ctx_t *ctx);
ngx_int_t ngx_ai_relay_route_apply(ngx_http_request_t *r,
    ngx_ai_relay_ctx_t *ctx);
ngx_int_t ngx_ai_relay_route_next(ngx_http_request_t *r,
    ngx_ai_relay_ctx_t *ctx);
void ngx_ai_relay_route_save(ngx_http_request_t *r,
    ngx_ai_relay_ctx_t *ctx);
ngx_int_t ngx_ai_relay_route_load(ngx_http_request_t *r,
    ngx_ai_relay_ctx_t *ctx);


#endif /* _NGX_AI_RELAY_ROUTE_H_INCLUDED_ */
