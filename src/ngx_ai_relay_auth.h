
/*
 * Copyright (C) ngx_ai_relay authors
 */


#ifndef _NGX_AI_RELAY_AUTH_H_INCLUDED_
#define _NGX_AI_RELAY_AUTH_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_ai_relay_module.h"


ngx_int_t ngx_ai_relay_find_key(ngx_http_request_t *r, ngx_str_t *key);
ngx_int_t ngx_ai_relay_client_key(ngx_http_request_t *r, ngx_str_t *key,
    ngx_ai_relay_ctx_t *ctx);
ngx_int_t ngx_ai_relay_auth_send(ngx_http_request_t *r,
    ngx_ai_relay_ctx_t *ctx, ngx_ai_relay_redis_handler_pt handler,
    const char *mode);
ngx_int_t ngx_ai_relay_auth_check(ngx_http_request_t *r,
    ngx_ai_relay_ctx_t *ctx, ngx_ai_relay_checked_pt done);
ngx_int_t ngx_ai_relay_auth_result(ngx_http_request_t *r,
    ngx_ai_relay_ctx_t *ctx, redisReply *reply);
ngx_uint_t ngx_ai_relay_auth_short(redisReply *reply);


#endif /* _NGX_AI_RELAY_AUTH_H_INCLUDED_ */
