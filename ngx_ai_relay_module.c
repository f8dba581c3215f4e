
/*
 * Copyright (C) ngx_ai_relay authors
 *
 * ngx_ai_relay: an OpenAI-compatible AI API relay inside nginx.
 *
 * This file holds the directives, the configuration and the module's
 * life cycle only; the work is done in src/.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_ai_relay_module.h"
#include "ngx_ai_relay_handler.h"
#include "ngx_ai_relay_filter.h"
#include "ngx_ai_relay_billing.h"
#include "ngx_ai_relay_journal.h"
#include "ngx_ai_relay_worker.h"
#include "ngx_ai_relay_upstream.h"
#include "ngx_ai_relay_logsafe.h"
#include "ngx_ai_relay_pending.h"
#include "ngx_ai_relay_health.h"
#include "ngx_ai_relay_failover.h"
#include "ngx_ai_relay_variables.h"
#include "ngx_ai_relay_lua.h"
#include "ngx_ai_relay_lease.h"
#include "ngx_ai_relay_key.h"
#include "ngx_ai_relay_metrics.h"
#include "ngx_ai_relay_form.h"
#include "ngx_ai_relay_endpoint.h"


static ngx_int_t ngx_ai_relay_preconfiguration(ngx_conf_t *cf);
static ngx_int_t ngx_ai_relay_postconfiguration(ngx_conf_t *cf);
static void *ngx_ai_relay_create_main_conf(ngx_conf_t *cf);
static char *ngx_ai_relay_init_main_conf(ngx_conf_t *cf, void *conf);
static void *ngx_ai_relay_create_loc_conf(ngx_conf_t *cf);
static char *ngx_ai_relay_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static ngx_int_t ngx_ai_relay_redis_parse_addr(ngx_conf_t *cf,
    ngx_str_t *addr, ngx_str_t *host, ngx_int_t *port);
static char *ngx_ai_relay_redis_sentinel(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_ai_relay_redis_addr(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_ai_relay(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
static char *ngx_ai_relay_passthrough(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_int_t ngx_ai_relay_init_module(ngx_cycle_t *cycle);
static ngx_int_t ngx_ai_relay_log_first(ngx_http_core_main_conf_t *cmcf,
    ngx_http_handler_pt handler);
static char *ngx_ai_relay_zone_size(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_ai_relay_health_cooldown(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_ai_relay_metrics(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_int_t ngx_ai_relay_init_process(ngx_cycle_t *cycle);
static void ngx_ai_relay_exit_process(ngx_cycle_t *cycle);
static void ngx_ai_relay_exit_master(ngx_cycle_t *cycle);


static ngx_conf_num_bounds_t  ngx_ai_relay_db_bounds = {
    ngx_conf_check_num_bounds, 0, 65535
};


static ngx_conf_num_bounds_t  ngx_ai_relay_depth_bounds = {
    ngx_conf_check_num_bounds, 1, 64
};


static ngx_conf_num_bounds_t  ngx_ai_relay_json_depth_bounds = {
    ngx_conf_check_num_bounds, 2, NGX_AI_RELAY_JSON_DEPTH_LIMIT
};


static ngx_conf_num_bounds_t  ngx_ai_relay_failures_bounds = {
    ngx_conf_check_num_bounds, 1, 1000
};


/* an internal redirect per try: nginx allows ten */
static ngx_conf_num_bounds_t  ngx_ai_relay_tries_bounds = {
    ngx_conf_check_num_bounds, 1, 8
};


static ngx_conf_bitmask_t  ngx_ai_relay_next_upstream_masks[] = {
    { ngx_string("error"), NGX_AI_RELAY_NEXT_ERROR },
    { ngx_string("timeout"), NGX_AI_RELAY_NEXT_TIMEOUT },
    { ngx_string("http_429"), NGX_AI_RELAY_NEXT_429 },
    { ngx_string("http_5xx"), NGX_AI_RELAY_NEXT_5XX },
    { ngx_string("auth"), NGX_AI_RELAY_NEXT_AUTH },
    { ngx_string("off"), NGX_AI_RELAY_NEXT_OFF },
    { ngx_null_string, 0 }
};


/* the answer's "model": what the upstream said, or the client's name */
static ngx_conf_enum_t  ngx_ai_relay_response_models[] = {
    { ngx_string("upstream"), 0 },
    { ngx_string("client"), 1 },
    { ngx_null_string, 0 }
};


static ngx_conf_num_bounds_t  ngx_ai_relay_max_tokens_bounds = {
    ngx_conf_check_num_bounds, 0, 10000000
};


static ngx_command_t  ngx_ai_relay_commands[] = {

    { ngx_string("ai_relay"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_ai_relay,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ai_relay_redis"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_ai_relay_redis_addr,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ai_relay_redis_sentinel"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_2MORE,
      ngx_ai_relay_redis_sentinel,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ai_relay_redis_password"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_ai_relay_main_conf_t, password),
      NULL },

    { ngx_string("ai_relay_redis_db"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_ai_relay_main_conf_t, db),
      &ngx_ai_relay_db_bounds },

    { ngx_string("ai_relay_redis_connect_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_ai_relay_main_conf_t, connect_timeout),
      NULL },

    { ngx_string("ai_relay_redis_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_ai_relay_main_conf_t, timeout),
      NULL },

    { ngx_string("ai_relay_reservation_ttl"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_ai_relay_main_conf_t, reservation_ttl),
      NULL },

    { ngx_string("ai_relay_records_max"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_ai_relay_main_conf_t, records_max),
      NULL },

    { ngx_string("ai_relay_journal"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_ai_relay_main_conf_t, journal),
      NULL },

    { ngx_string("ai_relay_settle_zone"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_ai_relay_zone_size,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_ai_relay_main_conf_t, settle_zone_size),
      NULL },

    { ngx_string("ai_relay_health_zone"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_ai_relay_zone_size,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_ai_relay_main_conf_t, health_zone_size),
      NULL },

    { ngx_string("ai_relay_health_failures"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_ai_relay_main_conf_t, health_failures),
      &ngx_ai_relay_failures_bounds },

    { ngx_string("ai_relay_health_cooldown"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE12,
      ngx_ai_relay_health_cooldown,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ai_relay_metrics_zone"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_ai_relay_zone_size,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_ai_relay_main_conf_t, metrics_zone_size),
      NULL },

    { ngx_string("ai_relay_metrics"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_ai_relay_metrics,
      0,
      0,
      NULL },

    { ngx_string("ai_relay_journal_max"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_ai_relay_main_conf_t, journal_max),
      NULL },

    { ngx_string("ai_relay_settle_delay"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_ai_relay_main_conf_t, settle_delay),
      NULL },

    { ngx_string("ai_relay_cache_ttl"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_ai_relay_main_conf_t, cache_ttl),
      NULL },

    { ngx_string("ai_relay_cache_size"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_ai_relay_main_conf_t, cache_size),
      NULL },

    { ngx_string("ai_relay_default_max_tokens"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_ai_relay_loc_conf_t, default_max_tokens),
      &ngx_ai_relay_max_tokens_bounds },

    { ngx_string("ai_relay_max_alias_depth"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_ai_relay_loc_conf_t, max_alias_depth),
      &ngx_ai_relay_depth_bounds },

    { ngx_string("ai_relay_stream_usage"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_ai_relay_loc_conf_t, inject_usage),
      NULL },

    { ngx_string("ai_relay_allow_unpriced"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_ai_relay_loc_conf_t, allow_unpriced),
      NULL },

    { ngx_string("ai_relay_response_model"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_enum_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_ai_relay_loc_conf_t, response_model),
      &ngx_ai_relay_response_models },

    { ngx_string("ai_relay_passthrough"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_ai_relay_passthrough,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ai_relay_sse_max_event"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_ai_relay_loc_conf_t, max_event),
      NULL },

    { ngx_string("ai_relay_response_max"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_ai_relay_loc_conf_t, response_max),
      NULL },

    { ngx_string("ai_relay_next_upstream"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_conf_set_bitmask_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_ai_relay_loc_conf_t, next_upstream),
      &ngx_ai_relay_next_upstream_masks },

    { ngx_string("ai_relay_next_upstream_tries"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_ai_relay_loc_conf_t, next_upstream_tries),
      &ngx_ai_relay_tries_bounds },

    { ngx_string("ai_relay_next_upstream_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_ai_relay_loc_conf_t, next_upstream_timeout),
      NULL },

    { ngx_string("ai_relay_json_max_depth"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_ai_relay_loc_conf_t, max_depth),
      &ngx_ai_relay_json_depth_bounds },

      ngx_null_command
};


static ngx_http_module_t  ngx_ai_relay_module_ctx = {
    ngx_ai_relay_preconfiguration,         /* preconfiguration */
    ngx_ai_relay_postconfiguration,        /* postconfiguration */

    ngx_ai_relay_create_main_conf,         /* create main configuration */
    ngx_ai_relay_init_main_conf,           /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_ai_relay_create_loc_conf,          /* create location configuration */
    ngx_ai_relay_merge_loc_conf            /* merge location configuration */
};


ngx_module_t  ngx_ai_relay_module = {
    NGX_MODULE_V1,
    &ngx_ai_relay_module_ctx,              /* module context */
    ngx_ai_relay_commands,                 /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    ngx_ai_relay_init_module,              /* init module */
    ngx_ai_relay_init_process,             /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_ai_relay_exit_process,             /* exit process */
    ngx_ai_relay_exit_master,              /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_conf_enum_t  ngx_ai_relay_styles[] = {
    { ngx_string("off"), NGX_AI_RELAY_STYLE_OFF },
    { ngx_string("openai"), NGX_AI_RELAY_STYLE_OPENAI },
    { ngx_string("anthropic"), NGX_AI_RELAY_STYLE_ANTHROPIC },
    { ngx_string("gemini"), NGX_AI_RELAY_STYLE_GEMINI },
    { ngx_null_string, 0 }
};


static ngx_int_t
ngx_ai_relay_preconfiguration(ngx_conf_t *cf)
{
    return ngx_ai_relay_add_variables(cf);
}


static ngx_int_t
ngx_ai_relay_postconfiguration(ngx_conf_t *cf)
{
    ngx_http_handler_pt        *h;
    ngx_ai_relay_main_conf_t   *armcf;
    ngx_http_core_main_conf_t  *cmcf;

    armcf = ngx_http_conf_get_module_main_conf(cf, ngx_ai_relay_module);

    if (!armcf->enabled) {
        /* nothing configured: cost nothing */
        return NGX_OK;
    }

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_PRECONTENT_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_ai_relay_handler;

    /* a key in ?key= out of the request line nginx logs (logsafe.c) */

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_POST_READ_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_ai_relay_logsafe_handler;

    /*
     * first in the LOG phase: the access log then sees usage and cost, and
     * the masked request line of requests nginx rejected itself
     */

    if (ngx_ai_relay_log_first(cmcf, ngx_ai_relay_log_handler) != NGX_OK
        || ngx_ai_relay_log_first(cmcf, ngx_ai_relay_logsafe_handler)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    armcf->request_id_index = ngx_http_get_variable_index(cf,
                                               &ngx_ai_relay_request_id_name);
    if (armcf->request_id_index == NGX_ERROR) {
        return NGX_ERROR;
    }

    if (ngx_ai_relay_form_init(cf) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_ai_relay_filter_init(cf);
}


static ngx_int_t
ngx_ai_relay_log_first(ngx_http_core_main_conf_t *cmcf,
    ngx_http_handler_pt handler)
{
    ngx_http_handler_pt  *h, *first;

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_LOG_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    first = cmcf->phases[NGX_HTTP_LOG_PHASE].handlers.elts;
    ngx_memmove(first + 1, first, (h - first) * sizeof(ngx_http_handler_pt));
    *first = handler;

    return NGX_OK;
}


static void *
ngx_ai_relay_create_main_conf(ngx_conf_t *cf)
{
    ngx_ai_relay_main_conf_t  *armcf;

    armcf = ngx_pcalloc(cf->pool, sizeof(ngx_ai_relay_main_conf_t));
    if (armcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     armcf->addr = { 0, NULL };
     *     armcf->password = { 0, NULL };
     *     armcf->journal = { 0, NULL };
     *     armcf->enabled = 0;
     *     armcf->metrics = 0;
     *     armcf->worker->redis = NULL;
     */

    armcf->db = NGX_CONF_UNSET;
    armcf->connect_timeout = NGX_CONF_UNSET_MSEC;
    armcf->timeout = NGX_CONF_UNSET_MSEC;
    armcf->reservation_ttl = NGX_CONF_UNSET;
    armcf->records_max = NGX_CONF_UNSET_UINT;
    armcf->journal_max = NGX_CONF_UNSET_UINT;
    armcf->settle_zone_size = NGX_CONF_UNSET_SIZE;
    armcf->health_zone_size = NGX_CONF_UNSET_SIZE;
    armcf->health_failures = NGX_CONF_UNSET;
    armcf->health_cooldown = NGX_CONF_UNSET_MSEC;
    armcf->health_cooldown_max = NGX_CONF_UNSET_MSEC;
    armcf->metrics_zone_size = NGX_CONF_UNSET_SIZE;
    armcf->cache_ttl = NGX_CONF_UNSET_MSEC;
    armcf->settle_delay = NGX_CONF_UNSET_MSEC;
    armcf->cache_size = NGX_CONF_UNSET_UINT;

    return armcf;
}


static char *
ngx_ai_relay_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_ai_relay_main_conf_t *armcf = conf;

    if (armcf->addr.len == 0) {
        ngx_str_set(&armcf->addr, "127.0.0.1:6379");
        ngx_str_set(&armcf->host, "127.0.0.1");
        armcf->port = 6379;
    }

    ngx_conf_init_value(armcf->db, 0);

    if (armcf->sentinel_name.len && armcf->cluster) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"ai_relay_redis_sentinel\" and a \"cluster\" "
                           "in \"ai_relay_redis\" exclude each other");
        return NGX_CONF_ERROR;
    }

    if (armcf->cluster && armcf->db) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "Redis Cluster has no \"ai_relay_redis_db\" "
                           "but 0");
        return NGX_CONF_ERROR;
    }

    ngx_conf_init_msec_value(armcf->connect_timeout, 1000);
    ngx_conf_init_msec_value(armcf->timeout, 1000);
    ngx_conf_init_value(armcf->reservation_ttl, 3600);
    ngx_conf_init_uint_value(armcf->records_max, 100000);
    ngx_conf_init_uint_value(armcf->journal_max, 100000);
    ngx_conf_init_msec_value(armcf->cache_ttl, 60000);
    ngx_conf_init_msec_value(armcf->settle_delay, 10);
    ngx_conf_init_uint_value(armcf->cache_size, 10000);

    ngx_conf_init_size_value(armcf->settle_zone_size, 8 * 1024 * 1024);
    ngx_conf_init_size_value(armcf->health_zone_size, 1024 * 1024);
    ngx_conf_init_value(armcf->health_failures, 3);
    ngx_conf_init_msec_value(armcf->health_cooldown, 10000);
    ngx_conf_init_msec_value(armcf->health_cooldown_max, 300000);

    armcf->breaker.failures = (uint32_t) armcf->health_failures;
    armcf->breaker.cooldown_ms = armcf->health_cooldown;
    armcf->breaker.max_ms = ngx_max(armcf->health_cooldown_max,
                                    armcf->health_cooldown);
    armcf->breaker.probe_ms = ngx_max(armcf->timeout, 60000);

    ngx_conf_init_size_value(armcf->metrics_zone_size, 1024 * 1024);

    if (ngx_ai_relay_worker_conf(cf, armcf) != NGX_CONF_OK
        || ngx_ai_relay_journal_conf(cf, armcf) != NGX_CONF_OK
        || ngx_ai_relay_pending_conf(cf, armcf) != NGX_CONF_OK
        || ngx_ai_relay_health_conf(cf, armcf) != NGX_CONF_OK
        || ngx_ai_relay_metrics_conf(cf, armcf) != NGX_CONF_OK)
    {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static void *
ngx_ai_relay_create_loc_conf(ngx_conf_t *cf)
{
    ngx_ai_relay_loc_conf_t  *arlcf;

    arlcf = ngx_pcalloc(cf->pool, sizeof(ngx_ai_relay_loc_conf_t));
    if (arlcf == NULL) {
        return NULL;
    }

    arlcf->style = NGX_CONF_UNSET_UINT;
    arlcf->default_max_tokens = NGX_CONF_UNSET;
    arlcf->max_alias_depth = NGX_CONF_UNSET_UINT;
    arlcf->inject_usage = NGX_CONF_UNSET;
    arlcf->allow_unpriced = NGX_CONF_UNSET;
    arlcf->max_event = NGX_CONF_UNSET_SIZE;
    arlcf->response_max = NGX_CONF_UNSET_SIZE;
    arlcf->max_depth = NGX_CONF_UNSET_UINT;
    arlcf->next_upstream_tries = NGX_CONF_UNSET_UINT;
    arlcf->next_upstream_timeout = NGX_CONF_UNSET_MSEC;
    arlcf->response_model = NGX_CONF_UNSET_UINT;

    /*
     * set by ngx_pcalloc():
     *
     *     arlcf->next_upstream = 0;
     *     arlcf->passthrough = { 0, NULL };
     *     arlcf->passthrough_paths = NULL;
     *     arlcf->passthrough_methods = 0;
     */

    return arlcf;
}


static char *
ngx_ai_relay_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_ai_relay_loc_conf_t *prev = parent;
    ngx_ai_relay_loc_conf_t *conf = child;

    ngx_conf_merge_uint_value(conf->style, prev->style,
                              NGX_AI_RELAY_STYLE_OFF);
    ngx_conf_merge_value(conf->default_max_tokens, prev->default_max_tokens,
                         4096);
    ngx_conf_merge_uint_value(conf->max_alias_depth, prev->max_alias_depth,
                              8);
    ngx_conf_merge_value(conf->inject_usage, prev->inject_usage, 1);
    ngx_conf_merge_value(conf->allow_unpriced, prev->allow_unpriced, 0);
    ngx_conf_merge_size_value(conf->max_event, prev->max_event,
                              1024 * 1024);
    ngx_conf_merge_size_value(conf->response_max, prev->response_max,
                              1024 * 1024);
    ngx_conf_merge_uint_value(conf->max_depth, prev->max_depth, 128);

    ngx_conf_merge_bitmask_value(conf->next_upstream, prev->next_upstream,
                                 (NGX_CONF_BITMASK_SET
                                  |NGX_AI_RELAY_NEXT_ERROR
                                  |NGX_AI_RELAY_NEXT_TIMEOUT
                                  |NGX_AI_RELAY_NEXT_429
                                  |NGX_AI_RELAY_NEXT_5XX
                                  |NGX_AI_RELAY_NEXT_AUTH));

    if (conf->next_upstream & NGX_AI_RELAY_NEXT_OFF) {
        conf->next_upstream = NGX_CONF_BITMASK_SET|NGX_AI_RELAY_NEXT_OFF;
    }

    ngx_conf_merge_uint_value(conf->next_upstream_tries,
                              prev->next_upstream_tries, 3);
    ngx_conf_merge_msec_value(conf->next_upstream_timeout,
                              prev->next_upstream_timeout, 0);

    if (conf->passthrough.data == NULL) {
        conf->passthrough = prev->passthrough;
        conf->passthrough_paths = prev->passthrough_paths;
        conf->passthrough_methods = prev->passthrough_methods;
    }

    ngx_conf_merge_uint_value(conf->response_model, prev->response_model, 0);

    return ngx_ai_relay_upstream_wrap(cf, conf);
}


/*
 * ai_relay_passthrough off | model path... [methods=GET,POST,...]: the
 * paths (prefixes, at a segment boundary) this location passes through,
 * raw, billed model's per-request price; GET and POST unless methods=
 */

static char *
ngx_ai_relay_passthrough(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_ai_relay_loc_conf_t *arlcf = conf;

    u_char                *p, *last, *end;
    size_t                 tlen, nlen;
    ngx_str_t             *value, *path;
    ngx_uint_t             i, j, m;
    const u_char          *name;

    static const struct {
        ngx_str_t   name;
        ngx_uint_t  method;
    } methods[] = {
        { ngx_string("GET"), NGX_HTTP_GET|NGX_HTTP_HEAD },
        { ngx_string("POST"), NGX_HTTP_POST },
        { ngx_string("PUT"), NGX_HTTP_PUT },
        { ngx_string("PATCH"), NGX_HTTP_PATCH },
        { ngx_string("DELETE"), NGX_HTTP_DELETE }
    };

    if (arlcf->passthrough.data) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (cf->args->nelts == 2
        && ngx_strcmp(value[1].data, "off") == 0)
    {
        arlcf->passthrough.data = (u_char *) "";
        arlcf->passthrough.len = 0;
        return NGX_CONF_OK;
    }

    if (cf->args->nelts < 3) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"ai_relay_passthrough\" needs a model and at "
                           "least one path prefix (\"/v1/files\"), "
                           "or \"off\"");
        return NGX_CONF_ERROR;
    }

    arlcf->passthrough = value[1];
    arlcf->passthrough_methods = NGX_HTTP_GET|NGX_HTTP_HEAD|NGX_HTTP_POST;

    arlcf->passthrough_paths = ngx_array_create(cf->pool, cf->args->nelts - 2,
                                                sizeof(ngx_str_t));
    if (arlcf->passthrough_paths == NULL) {
        return NGX_CONF_ERROR;
    }

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "methods=", 8) == 0) {

            m = 0;
            p = value[i].data + 8;
            last = value[i].data + value[i].len;

            for ( /* void */ ; p < last; p = end + 1) {

                end = ngx_strlchr(p, last, ',');
                if (end == NULL) {
                    end = last;
                }

                for (j = 0; j < sizeof(methods) / sizeof(methods[0]); j++) {
                    if ((size_t) (end - p) == methods[j].name.len
                        && ngx_strncmp(p, methods[j].name.data, end - p) == 0)
                    {
                        m |= methods[j].method;
                        break;
                    }
                }

                if (j == sizeof(methods) / sizeof(methods[0])) {
                    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                       "invalid method in \"%V\" (GET, "
                                       "POST, PUT, PATCH, DELETE)",
                                       &value[i]);
                    return NGX_CONF_ERROR;
                }
            }

            if (m == 0) {
                return "has an empty \"methods=\"";
            }

            arlcf->passthrough_methods = m;
            continue;
        }

        /*
         * a prefix of an API, not a whole version, and never one of the
         * relay's own endpoints
         */

        ngx_ai_relay_endpoint_tail(value[i].data, value[i].len, &tlen);

        if (value[i].data[0] != '/' || tlen == 0
            || ngx_ai_relay_endpoint_find(value[i].data, value[i].len,
                                          &name, &nlen)
            || ngx_ai_relay_endpoint_near(value[i].data, value[i].len))
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"ai_relay_passthrough\" path \"%V\" must "
                               "start with / and name an API that is no "
                               "endpoint of the relay (\"/v1/files\")",
                               &value[i]);
            return NGX_CONF_ERROR;
        }

        path = ngx_array_push(arlcf->passthrough_paths);
        if (path == NULL) {
            return NGX_CONF_ERROR;
        }

        *path = value[i];
    }

    if (arlcf->passthrough_paths->nelts == 0) {
        return "needs at least one path prefix";
    }

    return NGX_CONF_OK;
}


static char *
ngx_ai_relay(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_ai_relay_loc_conf_t *arlcf = conf;

    ngx_str_t                 *value;
    ngx_uint_t                 i;
    ngx_ai_relay_main_conf_t  *armcf;

    if (arlcf->style != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;

    for (i = 0; ngx_ai_relay_styles[i].name.len; i++) {
        if (ngx_strcmp(ngx_ai_relay_styles[i].name.data, value[1].data)
            == 0)
        {
            arlcf->style = ngx_ai_relay_styles[i].value;
            break;
        }
    }

    if (arlcf->style == NGX_CONF_UNSET_UINT) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid value \"%V\", it must be \"openai\", "
                           "\"anthropic\", \"gemini\" or \"off\"",
                           &value[1]);
        return NGX_CONF_ERROR;
    }

    if (arlcf->style != NGX_AI_RELAY_STYLE_OFF) {
        armcf = ngx_http_conf_get_module_main_conf(cf, ngx_ai_relay_module);
        armcf->enabled = 1;
    }

    return NGX_CONF_OK;
}


/*
 * "127.0.0.1:6379", "[::1]:6379" or "unix:/path": numeric only, since
 * hiredis resolves names with a blocking getaddrinfo(); with "cluster",
 * several (the seeds of a Redis Cluster, no "unix:")
 */

static char *
ngx_ai_relay_redis_addr(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_ai_relay_main_conf_t *armcf = conf;

    ngx_str_t                 *value, host;
    ngx_int_t                  port;
    ngx_uint_t                 i, n;
    ngx_ai_relay_slot_node_t  *seed;

    if (armcf->addr.len) {
        return "is duplicate";
    }

    value = cf->args->elts;
    n = cf->args->nelts;

    if (n > 2 && value[n - 1].len == 7
        && ngx_strncmp(value[n - 1].data, "cluster", 7) == 0)
    {
        armcf->cluster = 1;
        n--;
    }

    if (n > 2 && !armcf->cluster) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "several redis addresses need \"cluster\"");
        return NGX_CONF_ERROR;
    }

    if (n - 1 > NGX_AI_RELAY_SLOT_MAX_NODES) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "at most %d redis cluster seeds",
                           NGX_AI_RELAY_SLOT_MAX_NODES);
        return NGX_CONF_ERROR;
    }

    armcf->addr = value[1];

    if (!armcf->cluster
        && value[1].len > 5 && ngx_strncmp(value[1].data, "unix:", 5) == 0)
    {
        armcf->unix_path.len = value[1].len - 5;
        armcf->unix_path.data = value[1].data + 5;   /* NUL ended */
        return NGX_CONF_OK;
    }

    if (armcf->cluster) {
        armcf->seeds = ngx_array_create(cf->pool, n - 1,
                                        sizeof(ngx_ai_relay_slot_node_t));
        if (armcf->seeds == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    for (i = 1; i < n; i++) {
        if (value[i].len > 5 && ngx_strncmp(value[i].data, "unix:", 5) == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "a Redis Cluster's nodes have IP addresses, "
                               "not \"%V\"", &value[i]);
            return NGX_CONF_ERROR;
        }

        if (ngx_ai_relay_redis_parse_addr(cf, &value[i], &host, &port)
            != NGX_OK)
        {
            return NGX_CONF_ERROR;
        }

        if (i == 1) {
            armcf->host.data = ngx_pnalloc(cf->pool, host.len + 1);
            if (armcf->host.data == NULL) {
                return NGX_CONF_ERROR;
            }

            ngx_memcpy(armcf->host.data, host.data, host.len);
            armcf->host.data[host.len] = '\0';
            armcf->host.len = host.len;
            armcf->port = port;
        }

        if (armcf->seeds) {
            seed = ngx_array_push(armcf->seeds);
            if (seed == NULL) {
                return NGX_CONF_ERROR;
            }

            ngx_memcpy(seed->host, host.data, host.len);
            seed->host[host.len] = '\0';
            seed->port = (int) port;
        }
    }

    return NGX_CONF_OK;
}


/* ai_relay_redis_sentinel <master name> <sentinel address>... */

static char *
ngx_ai_relay_redis_sentinel(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_ai_relay_main_conf_t *armcf = conf;

    ngx_str_t                 *value, host;
    ngx_int_t                  port;
    ngx_uint_t                 i;
    ngx_ai_relay_slot_node_t  *addr;

    if (armcf->sentinel_name.len) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (cf->args->nelts - 2 > NGX_AI_RELAY_SLOT_MAX_NODES) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "at most %d sentinels",
                           NGX_AI_RELAY_SLOT_MAX_NODES);
        return NGX_CONF_ERROR;
    }

    armcf->sentinel_name = value[1];   /* NUL ended */

    armcf->sentinels = ngx_array_create(cf->pool, cf->args->nelts - 2,
                                        sizeof(ngx_ai_relay_slot_node_t));
    if (armcf->sentinels == NULL) {
        return NGX_CONF_ERROR;
    }

    for (i = 2; i < cf->args->nelts; i++) {
        if (ngx_ai_relay_redis_parse_addr(cf, &value[i], &host, &port)
            != NGX_OK)
        {
            return NGX_CONF_ERROR;
        }

        addr = ngx_array_push(armcf->sentinels);
        if (addr == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_memcpy(addr->host, host.data, host.len);
        addr->host[host.len] = '\0';
        addr->port = (int) port;
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_ai_relay_redis_parse_addr(ngx_conf_t *cf, ngx_str_t *addr,
    ngx_str_t *host, ngx_int_t *port)
{
    u_char  *p, *colon;

    colon = NULL;

    for (p = addr->data + addr->len; p > addr->data; p--) {
        if (p[-1] == ':') {
            colon = p - 1;
            break;
        }

        if (p[-1] == ']') {
            break;
        }
    }

    if (colon == NULL) {
        *host = *addr;
        *port = 6379;

    } else {
        host->data = addr->data;
        host->len = colon - addr->data;
        *port = ngx_atoi(colon + 1, addr->data + addr->len - colon - 1);
    }

    if (host->len > 2 && host->data[0] == '['
        && host->data[host->len - 1] == ']')
    {
        host->data++;
        host->len -= 2;
    }

    if (*port < 1 || *port > 65535) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid redis port in \"%V\"", addr);
        return NGX_ERROR;
    }

    if (host->len >= NGX_AI_RELAY_SLOT_HOST_LEN
        || (ngx_inet_addr(host->data, host->len) == INADDR_NONE
#if (NGX_HAVE_INET6)
            && ngx_inet6_addr(host->data, host->len, NULL) != NGX_OK
#endif
           ))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "redis address \"%V\" must be a numeric IP "
                           "address or a \"unix:\" path, names would be "
                           "resolved with a blocking call", addr);
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* ai_relay_settle_zone, _health_zone, _metrics_zone: size | off */

static char *
ngx_ai_relay_zone_size(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    char  *p = conf;

    size_t     *size;
    ngx_str_t  *value;

    size = (size_t *) (p + cmd->offset);

    if (*size != NGX_CONF_UNSET_SIZE) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "off") == 0) {
        *size = 0;
        return NGX_CONF_OK;
    }

    *size = ngx_parse_size(&value[1]);

    if (*size == (size_t) NGX_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid size \"%V\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* ai_relay_health_cooldown time [max] */

static char *
ngx_ai_relay_health_cooldown(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_ai_relay_main_conf_t *armcf = conf;

    ngx_str_t  *value;

    if (armcf->health_cooldown != NGX_CONF_UNSET_MSEC) {
        return "is duplicate";
    }

    value = cf->args->elts;

    armcf->health_cooldown = ngx_parse_time(&value[1], 0);

    if (armcf->health_cooldown == (ngx_msec_t) NGX_ERROR
        || armcf->health_cooldown == 0)
    {
        return "has an invalid time";
    }

    if (cf->args->nelts == 3) {
        armcf->health_cooldown_max = ngx_parse_time(&value[2], 0);

        if (armcf->health_cooldown_max == (ngx_msec_t) NGX_ERROR
            || armcf->health_cooldown_max < armcf->health_cooldown)
        {
            return "has an invalid maximum time";
        }
    }

    return NGX_CONF_OK;
}


/* ai_relay_metrics: this location answers the metrics */

static char *
ngx_ai_relay_metrics(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_ai_relay_main_conf_t  *armcf;
    ngx_http_core_loc_conf_t  *clcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_ai_relay_metrics_handler;

    armcf = ngx_http_conf_get_module_main_conf(cf, ngx_ai_relay_module);
    armcf->metrics = 1;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_ai_relay_init_module(ngx_cycle_t *cycle)
{
    ngx_ai_relay_main_conf_t  *armcf;

    if (cycle->conf_ctx[ngx_http_module.index] == NULL) {
        return NGX_OK;
    }

    armcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_ai_relay_module);

    if (armcf == NULL) {
        return NGX_OK;
    }

    return ngx_ai_relay_journal_check(cycle, armcf);
}


static ngx_int_t
ngx_ai_relay_init_process(ngx_cycle_t *cycle)
{
    ngx_ai_relay_main_conf_t  *armcf;

    if (cycle->conf_ctx[ngx_http_module.index] == NULL) {
        return NGX_OK;
    }

    armcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_ai_relay_module);

    if (armcf == NULL || !armcf->enabled) {
        return NGX_OK;
    }

    return ngx_ai_relay_worker_init(armcf);
}


static void
ngx_ai_relay_exit_process(ngx_cycle_t *cycle)
{
    ngx_ai_relay_main_conf_t  *armcf;

    ngx_ai_relay_key_cleanup();

    if (cycle->conf_ctx[ngx_http_module.index] == NULL) {
        return;
    }

    armcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_ai_relay_module);

    if (armcf == NULL || armcf->worker == NULL) {
        return;
    }

    ngx_ai_relay_worker_exit(armcf);
}


/* what the master (or nginx -t, or a single process) hashed */

static void
ngx_ai_relay_exit_master(ngx_cycle_t *cycle)
{
    ngx_ai_relay_key_cleanup();
}
