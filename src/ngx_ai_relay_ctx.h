
/*
 * Copyright (C) ngx_ai_relay authors
 */


#ifndef _NGX_AI_RELAY_CTX_H_INCLUDED_
#define _NGX_AI_RELAY_CTX_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_ai_relay_module.h"


ngx_ai_relay_ctx_t *ngx_ai_relay_get_ctx(ngx_http_request_t *r);
ngx_ai_relay_ctx_t *ngx_ai_relay_find_ctx(ngx_http_request_t *r);
void ngx_ai_relay_ctx_cleanup(void *data);

ngx_int_t ngx_ai_relay_wait(ngx_http_request_t *r, ngx_ai_relay_ctx_t *ctx,
    ngx_ai_relay_redis_handler_pt handler, int argc, const char **argv,
    const size_t *argvlen);
ngx_ai_relay_ctx_t *ngx_ai_relay_reply_ctx(ngx_http_request_t *r,
    redisReply *reply);
ngx_int_t ngx_ai_relay_reply_string(ngx_http_request_t *r,
    redisReply *reply, ngx_str_t *s);
void ngx_ai_relay_resume(ngx_http_request_t *r);
const char *ngx_ai_relay_script_sha(ngx_http_request_t *r, ngx_uint_t n,
    size_t *len);


#endif /* _NGX_AI_RELAY_CTX_H_INCLUDED_ */
