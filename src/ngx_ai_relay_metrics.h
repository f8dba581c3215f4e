
/*
 * Copyright (C) ngx_ai_relay authors
 */


#ifndef _NGX_AI_RELAY_METRICS_H_INCLUDED_
#define _NGX_AI_RELAY_METRICS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_ai_relay_module.h"


char *ngx_ai_relay_metrics_conf(ngx_conf_t *cf,
    ngx_ai_relay_main_conf_t *armcf);
void ngx_ai_relay_metrics_worker_init(ngx_ai_relay_main_conf_t *armcf);

/* once per request of a relay location, when it is settled or ends */
void ngx_ai_relay_metrics_request(ngx_http_request_t *r,
    ngx_ai_relay_ctx_t *ctx);

/* an SSE answer starts; and the request that had one ends */
void ngx_ai_relay_metrics_stream_start(ngx_http_request_t *r,
    ngx_ai_relay_ctx_t *ctx);
void ngx_ai_relay_metrics_stream_end(ngx_http_request_t *r,
    ngx_ai_relay_ctx_t *ctx);

/* the content handler of "ai_relay_metrics" */
ngx_int_t ngx_ai_relay_metrics_handler(ngx_http_request_t *r);


#endif /* _NGX_AI_RELAY_METRICS_H_INCLUDED_ */
