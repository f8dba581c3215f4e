
/*
 * Copyright (C) ngx_ai_relay authors
 */


#ifndef _NGX_AI_RELAY_RELEASE_H_INCLUDED_
#define _NGX_AI_RELAY_RELEASE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_ai_relay_module.h"


void ngx_ai_relay_release_late(ngx_http_request_t *r, ngx_ai_relay_ctx_t *ctx,
    ngx_ai_relay_redis_cmd_t *cmd);
void ngx_ai_relay_release_id(ngx_ai_relay_main_conf_t *armcf,
    ngx_str_t *user_id, ngx_str_t *id, ngx_ai_relay_redis_cmd_t *cmd);
void ngx_ai_relay_release_lost(ngx_http_request_t *r,
    ngx_ai_relay_ctx_t *ctx);
void ngx_ai_relay_release_replay(ngx_ai_relay_main_conf_t *armcf);
void ngx_ai_relay_release_retry_handler(ngx_event_t *ev);


#endif /* _NGX_AI_RELAY_RELEASE_H_INCLUDED_ */
