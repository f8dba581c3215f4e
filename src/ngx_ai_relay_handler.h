
/*
 * Copyright (C) ngx_ai_relay authors
 */


#ifndef _NGX_AI_RELAY_HANDLER_H_INCLUDED_
#define _NGX_AI_RELAY_HANDLER_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_ai_relay_module.h"


ngx_int_t ngx_ai_relay_handler(ngx_http_request_t *r);
void ngx_ai_relay_resume(ngx_http_request_t *r);
ngx_int_t ngx_ai_relay_wait(ngx_http_request_t *r, ngx_ai_relay_ctx_t *ctx,
    ngx_ai_relay_redis_handler_pt handler, int argc, const char **argv,
    const size_t *argvlen);
ngx_ai_relay_ctx_t *ngx_ai_relay_reply_ctx(ngx_http_request_t *r,
    redisReply *reply);
ngx_int_t ngx_ai_relay_reply_string(ngx_http_request_t *r,
    redisReply *reply, ngx_str_t *s);
ngx_int_t ngx_ai_relay_auth_send(ngx_http_request_t *r,
    ngx_ai_relay_ctx_t *ctx, ngx_ai_relay_redis_handler_pt handler,
    const char *mode);
ngx_int_t ngx_ai_relay_auth_result(ngx_http_request_t *r,
    ngx_ai_relay_ctx_t *ctx, redisReply *reply);


#endif /* _NGX_AI_RELAY_HANDLER_H_INCLUDED_ */
