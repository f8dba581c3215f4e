
/*
 * Copyright (C) ngx_ai_relay authors
 */


#ifndef _NGX_AI_RELAY_BODY_H_INCLUDED_
#define _NGX_AI_RELAY_BODY_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_ai_relay_module.h"


ngx_int_t ngx_ai_relay_body_parse(ngx_http_request_t *r,
    ngx_ai_relay_ctx_t *ctx);
ngx_int_t ngx_ai_relay_body_passthrough(ngx_http_request_t *r,
    ngx_ai_relay_ctx_t *ctx);
ngx_int_t ngx_ai_relay_body_rewrite(ngx_http_request_t *r,
    ngx_ai_relay_ctx_t *ctx);
ngx_uint_t ngx_ai_relay_body_xlate_target(ngx_ai_relay_ctx_t *ctx,
    ngx_ai_relay_channel_t *ch);
ngx_int_t ngx_ai_relay_body_xlate_prepare(ngx_http_request_t *r,
    ngx_ai_relay_ctx_t *ctx);


#endif /* _NGX_AI_RELAY_BODY_H_INCLUDED_ */
