
/*
 * Copyright (C) ngx_ai_relay authors
 *
 * $ai_relay_* variables: the upstream URL for proxy_pass, and what a
 * log_format needs to answer a support ticket.  Usage and cost are known
 * in the LOG phase, where the relay's handler runs first.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_ai_relay_module.h"
#include "ngx_ai_relay_variables.h"
#include "ngx_ai_relay_ctx.h"


#define NGX_AI_RELAY_VAR_UPSTREAM_URL      0
#define NGX_AI_RELAY_VAR_MODEL             1
#define NGX_AI_RELAY_VAR_UPSTREAM_MODEL    2
#define NGX_AI_RELAY_VAR_CHANNEL           3
#define NGX_AI_RELAY_VAR_KEY               4
#define NGX_AI_RELAY_VAR_KEY_ID            5
#define NGX_AI_RELAY_VAR_USER              6
#define NGX_AI_RELAY_VAR_STREAM            7
#define NGX_AI_RELAY_VAR_ERROR             8
#define NGX_AI_RELAY_VAR_PROMPT            9
#define NGX_AI_RELAY_VAR_COMPLETION       10
#define NGX_AI_RELAY_VAR_CACHED           11
#define NGX_AI_RELAY_VAR_REASONING        12
#define NGX_AI_RELAY_VAR_COST             13
#define NGX_AI_RELAY_VAR_TTFT             14
#define NGX_AI_RELAY_VAR_USAGE_SOURCE     15
#define NGX_AI_RELAY_VAR_STATUS           16
#define NGX_AI_RELAY_VAR_TRIES            17
#define NGX_AI_RELAY_VAR_CHANNEL_NAME     18


static ngx_int_t ngx_ai_relay_variable_str(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_ai_relay_variable_num(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_ai_relay_variable_journal(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);


ngx_str_t  ngx_ai_relay_request_id_name = ngx_string("request_id");


static ngx_http_variable_t  ngx_ai_relay_vars[] = {

    { ngx_string("ai_relay_upstream_url"), NULL,
      ngx_ai_relay_variable_str, NGX_AI_RELAY_VAR_UPSTREAM_URL,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ai_relay_model"), NULL,
      ngx_ai_relay_variable_str, NGX_AI_RELAY_VAR_MODEL,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ai_relay_upstream_model"), NULL,
      ngx_ai_relay_variable_str, NGX_AI_RELAY_VAR_UPSTREAM_MODEL,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ai_relay_channel"), NULL,
      ngx_ai_relay_variable_str, NGX_AI_RELAY_VAR_CHANNEL,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ai_relay_key"), NULL,
      ngx_ai_relay_variable_str, NGX_AI_RELAY_VAR_KEY,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ai_relay_key_id"), NULL,
      ngx_ai_relay_variable_str, NGX_AI_RELAY_VAR_KEY_ID,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ai_relay_user"), NULL,
      ngx_ai_relay_variable_str, NGX_AI_RELAY_VAR_USER,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ai_relay_stream"), NULL,
      ngx_ai_relay_variable_num, NGX_AI_RELAY_VAR_STREAM,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ai_relay_error"), NULL,
      ngx_ai_relay_variable_str, NGX_AI_RELAY_VAR_ERROR,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ai_relay_prompt_tokens"), NULL,
      ngx_ai_relay_variable_num, NGX_AI_RELAY_VAR_PROMPT,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ai_relay_completion_tokens"), NULL,
      ngx_ai_relay_variable_num, NGX_AI_RELAY_VAR_COMPLETION,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ai_relay_cached_tokens"), NULL,
      ngx_ai_relay_variable_num, NGX_AI_RELAY_VAR_CACHED,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ai_relay_reasoning_tokens"), NULL,
      ngx_ai_relay_variable_num, NGX_AI_RELAY_VAR_REASONING,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ai_relay_cost"), NULL,
      ngx_ai_relay_variable_num, NGX_AI_RELAY_VAR_COST,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ai_relay_ttft"), NULL,
      ngx_ai_relay_variable_num, NGX_AI_RELAY_VAR_TTFT,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ai_relay_usage_source"), NULL,
      ngx_ai_relay_variable_str, NGX_AI_RELAY_VAR_USAGE_SOURCE,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ai_relay_status"), NULL,
      ngx_ai_relay_variable_num, NGX_AI_RELAY_VAR_STATUS,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ai_relay_tries"), NULL,
      ngx_ai_relay_variable_num, NGX_AI_RELAY_VAR_TRIES,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ai_relay_channel_name"), NULL,
      ngx_ai_relay_variable_str, NGX_AI_RELAY_VAR_CHANNEL_NAME,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ai_relay_journal_state"), NULL,
      ngx_ai_relay_variable_journal, 0,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

      ngx_http_null_variable
};


ngx_int_t
ngx_ai_relay_add_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var, *v;

    for (v = ngx_ai_relay_vars; v->name.len; v++) {
        var = ngx_http_add_variable(cf, &v->name, v->flags);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = v->get_handler;
        var->data = v->data;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_ai_relay_variable_str(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_str_t            *s;
    ngx_ai_relay_ctx_t   *ctx;
    static ngx_str_t      sources[] = {
        ngx_string("none"), ngx_string("upstream"), ngx_string("estimated"),
        ngx_string("request")
    };

    ctx = ngx_ai_relay_find_ctx(r->main);

    if (ctx == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }

    switch (data) {
    case NGX_AI_RELAY_VAR_UPSTREAM_URL:
        s = &ctx->route.upstream_url;
        break;
    case NGX_AI_RELAY_VAR_MODEL:
        s = &ctx->body.model;
        break;
    case NGX_AI_RELAY_VAR_UPSTREAM_MODEL:
        s = &ctx->body.upstream_model;
        break;
    case NGX_AI_RELAY_VAR_CHANNEL:
        s = ctx->route.channel ? &ctx->route.channel->id : &ctx->none;
        break;
    case NGX_AI_RELAY_VAR_KEY:
        s = &ctx->key.masked;
        break;
    case NGX_AI_RELAY_VAR_KEY_ID:
        s = &ctx->key.id;
        break;
    case NGX_AI_RELAY_VAR_USER:
        s = &ctx->key.user_id;
        break;
    case NGX_AI_RELAY_VAR_CHANNEL_NAME:
        s = ctx->route.channel ? &ctx->route.channel->name : &ctx->none;
        break;
    case NGX_AI_RELAY_VAR_ERROR:
        /* the record's, once settled: the upstream's error included */
        s = ctx->bill.usage_done ? &ctx->bill.error : &ctx->err.message;
        break;
    default: /* NGX_AI_RELAY_VAR_USAGE_SOURCE */
        if (!ctx->bill.usage_done) {
            v->not_found = 1;
            return NGX_OK;
        }

        s = &sources[ctx->bill.usage_source];
    }

    if (s->len == 0) {
        v->not_found = 1;
        return NGX_OK;
    }

    v->len = s->len;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;
    v->data = s->data;

    return NGX_OK;
}


static ngx_int_t
ngx_ai_relay_variable_num(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    u_char              *p;
    int64_t              n;
    ngx_ai_relay_ctx_t  *ctx;

    ctx = ngx_ai_relay_find_ctx(r->main);

    if (ctx == NULL
        || (!ctx->bill.usage_done && data != NGX_AI_RELAY_VAR_STREAM
            && data != NGX_AI_RELAY_VAR_TTFT
            && data != NGX_AI_RELAY_VAR_TRIES))
    {
        v->not_found = 1;
        return NGX_OK;
    }

    switch (data) {
    case NGX_AI_RELAY_VAR_STREAM:
        n = ctx->body.stream;
        break;
    case NGX_AI_RELAY_VAR_PROMPT:
        n = ctx->bill.prompt_tokens;
        break;
    case NGX_AI_RELAY_VAR_COMPLETION:
        n = ctx->bill.completion_tokens;
        break;
    case NGX_AI_RELAY_VAR_CACHED:
        n = ctx->bill.cached_tokens;
        break;
    case NGX_AI_RELAY_VAR_REASONING:
        n = ctx->bill.reasoning_tokens;
        break;
    case NGX_AI_RELAY_VAR_COST:
        n = ctx->bill.cost;
        break;
    case NGX_AI_RELAY_VAR_STATUS:
        n = ctx->bill.final_status;
        break;
    case NGX_AI_RELAY_VAR_TRIES:
        n = ctx->route.tries;
        break;
    default: /* NGX_AI_RELAY_VAR_TTFT */
        if (ctx->stream.ttft == (ngx_msec_t) NGX_AI_RELAY_UNSET) {
            v->not_found = 1;
            return NGX_OK;
        }

        n = (int64_t) ctx->stream.ttft;
    }

    p = ngx_pnalloc(r->pool, NGX_INT64_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    v->len = ngx_sprintf(p, "%L", n) - p;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;
    v->data = p;

    return NGX_OK;
}


/* "ok", or "unwritable" when this worker could not create its journal */

static ngx_int_t
ngx_ai_relay_variable_journal(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_ai_relay_main_conf_t  *armcf;

    armcf = ngx_http_get_module_main_conf(r, ngx_ai_relay_module);

    if (!armcf->enabled) {
        v->not_found = 1;
        return NGX_OK;
    }

    if (armcf->worker->journal_unwritable) {
        v->len = sizeof("unwritable") - 1;
        v->data = (u_char *) "unwritable";

    } else {
        v->len = sizeof("ok") - 1;
        v->data = (u_char *) "ok";
    }

    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    return NGX_OK;
}
