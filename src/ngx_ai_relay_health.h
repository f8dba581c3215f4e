
/*
 * Copyright (C) ngx_ai_relay authors
 */


#ifndef _NGX_AI_RELAY_HEALTH_H_INCLUDED_
#define _NGX_AI_RELAY_HEALTH_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_ai_relay_module.h"
#include "ngx_ai_relay_breaker.h"


/* called with the zone locked, for each channel key the zone knows */
typedef void (*ngx_ai_relay_health_each_pt)(void *data, ngx_str_t *channel,
    ngx_uint_t key_index, const ngx_ai_relay_breaker_t *b);


char *ngx_ai_relay_health_conf(ngx_conf_t *cf,
    ngx_ai_relay_main_conf_t *armcf);

/* is any key of the channel ready now (no state changes) */
ngx_uint_t ngx_ai_relay_health_channel_ready(ngx_ai_relay_main_conf_t *armcf,
    ngx_ai_relay_channel_t *ch, ngx_uint_t nkeys);

/* a request takes the key (maybe as the probe): 1 if it may */
ngx_uint_t ngx_ai_relay_health_take(ngx_ai_relay_main_conf_t *armcf,
    ngx_str_t *channel, ngx_uint_t key_index);

void ngx_ai_relay_health_report(ngx_http_request_t *r,
    ngx_ai_relay_ctx_t *ctx, ngx_uint_t outcome, ngx_uint_t status,
    ngx_msec_int_t retry_after_ms);

void ngx_ai_relay_health_each(ngx_ai_relay_main_conf_t *armcf,
    ngx_ai_relay_health_each_pt handler, void *data);


#endif /* _NGX_AI_RELAY_HEALTH_H_INCLUDED_ */
