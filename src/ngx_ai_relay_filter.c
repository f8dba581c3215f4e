
/*
 * Copyright (C) ngx_ai_relay authors
 *
 * The response path on relay locations.
 *
 * Header filter: nginx's own error pages become JSON errors in the
 * client's API style; upstream 401/403 (the channel's key was refused)
 * become a 502 that says so without echoing the upstream body; an event
 * stream gets an SSE parser, any other answer is copied (up to
 * ai_relay_response_max) for its usage.
 *
 * Body filter: observes streams in place and passes every buffer on
 * untouched, except when the relay itself asked the upstream for
 * stream_options.include_usage: then complete events are forwarded one
 * by one and the usage-only chunk the client did not ask for is left
 * out; and with ai_relay_response_model client, where each event (or
 * the start of a JSON answer, up to its "model") is held until its
 * "model" can be given the client's name.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_ai_relay_module.h"
#include "ngx_ai_relay_filter.h"
#include "ngx_ai_relay_error.h"
#include "ngx_ai_relay_billing.h"
#include "ngx_ai_relay_ctx.h"
#include "ngx_ai_relay_health.h"
#include "ngx_ai_relay_failover.h"
#include "ngx_ai_relay_metrics.h"
#include "ngx_ai_relay_rename.h"


/* an event larger than this is forwarded before it ends (never usage) */
#define NGX_AI_RELAY_HOLD_MAX      65536

/* upstream error bodies kept for the request record */
#define NGX_AI_RELAY_ERROR_KEEP    4096


static void ngx_ai_relay_health_outcome(ngx_http_request_t *r,
    ngx_ai_relay_ctx_t *ctx, ngx_uint_t status);
static ngx_msec_int_t ngx_ai_relay_retry_after(ngx_http_request_t *r);
static ngx_table_elt_t *ngx_ai_relay_header_out(ngx_http_request_t *r,
    ngx_table_elt_t *after, u_char *name, size_t len);
static ngx_int_t ngx_ai_relay_request_id_header(ngx_http_request_t *r,
    ngx_ai_relay_ctx_t *ctx);
static ngx_int_t ngx_ai_relay_header_filter(ngx_http_request_t *r);
static ngx_int_t ngx_ai_relay_pass(ngx_http_request_t *r,
    ngx_ai_relay_ctx_t *ctx, ngx_chain_t *out);
static ngx_int_t ngx_ai_relay_body_filter(ngx_http_request_t *r,
    ngx_chain_t *in);
static ngx_int_t ngx_ai_relay_replace_header(ngx_http_request_t *r,
    ngx_ai_relay_ctx_t *ctx, ngx_uint_t status, const char *code,
    const char *message);
static ngx_int_t ngx_ai_relay_replace_body(ngx_http_request_t *r,
    ngx_ai_relay_ctx_t *ctx, ngx_chain_t *in);
static void ngx_ai_relay_observe(ngx_http_request_t *r,
    ngx_ai_relay_ctx_t *ctx, ngx_chain_t *in);
static ngx_int_t ngx_ai_relay_drop_usage(ngx_http_request_t *r,
    ngx_ai_relay_ctx_t *ctx, ngx_chain_t *in);
static ngx_int_t ngx_ai_relay_hold(ngx_http_request_t *r,
    ngx_ai_relay_ctx_t *ctx, u_char *p, size_t len);
static ngx_int_t ngx_ai_relay_emit(ngx_http_request_t *r,
    ngx_ai_relay_ctx_t *ctx, ngx_chain_t ***ll);
static ngx_int_t ngx_ai_relay_send_events(ngx_http_request_t *r,
    ngx_ai_relay_ctx_t *ctx, ngx_chain_t **out, ngx_chain_t **ll,
    ngx_uint_t last);
static void ngx_ai_relay_collect(ngx_http_request_t *r,
    ngx_ai_relay_ctx_t *ctx, ngx_chain_t *in);
static ngx_uint_t ngx_ai_relay_renames(ngx_http_request_t *r,
    ngx_ai_relay_ctx_t *ctx, ngx_uint_t sse);
static ngx_int_t ngx_ai_relay_rename_body(ngx_http_request_t *r,
    ngx_ai_relay_ctx_t *ctx, ngx_chain_t *in);
static void *ngx_ai_relay_pool_alloc(void *data, size_t size);
static ngx_int_t ngx_ai_relay_xlate_start(ngx_http_request_t *r,
    ngx_ai_relay_ctx_t *ctx);
static ngx_int_t ngx_ai_relay_xlate_stream(ngx_http_request_t *r,
    ngx_ai_relay_ctx_t *ctx, ngx_chain_t *in);
static ngx_int_t ngx_ai_relay_xlate_event(ngx_http_request_t *r,
    ngx_ai_relay_ctx_t *ctx, ngx_chain_t ***ll);
static ngx_int_t ngx_ai_relay_xlate_whole(ngx_http_request_t *r,
    ngx_ai_relay_ctx_t *ctx, ngx_chain_t *in);
static ngx_int_t ngx_ai_relay_xlate_broken(ngx_http_request_t *r,
    ngx_ai_relay_ctx_t *ctx, ngx_chain_t ***ll);
static void ngx_ai_relay_event(ngx_http_request_t *r,
    ngx_ai_relay_ctx_t *ctx, ngx_int_t *rc);


static ngx_http_output_header_filter_pt  ngx_http_next_header_filter;
static ngx_http_output_body_filter_pt    ngx_http_next_body_filter;


ngx_int_t
ngx_ai_relay_filter_init(ngx_conf_t *cf)
{
    ngx_http_next_header_filter = ngx_http_top_header_filter;
    ngx_http_top_header_filter = ngx_ai_relay_header_filter;

    ngx_http_next_body_filter = ngx_http_top_body_filter;
    ngx_http_top_body_filter = ngx_ai_relay_body_filter;

    return NGX_OK;
}


/*
 * x-request-id on every answer of a relay location, errors included: the
 * id of the request's record ($request_id), which support asks for.  An
 * id the upstream sent is kept as x-upstream-request-id.
 */

static ngx_int_t
ngx_ai_relay_request_id_header(ngx_http_request_t *r, ngx_ai_relay_ctx_t *ctx)
{
    ngx_str_t                   id;
    ngx_table_elt_t            *h;
    ngx_http_variable_value_t  *vv;
    ngx_ai_relay_main_conf_t   *armcf;

    if (ctx == NULL) {
        ctx = ngx_ai_relay_find_ctx(r);
    }

    if (ctx && ctx->request_id.len) {
        id = ctx->request_id;

    } else {
        /* refused before the relay saw it: nginx's own $request_id */

        armcf = ngx_http_get_module_main_conf(r, ngx_ai_relay_module);

        vv = ngx_http_get_indexed_variable(r, armcf->request_id_index);
        if (vv == NULL || vv->not_found) {
            return NGX_OK;
        }

        id.data = vv->data;
        id.len = vv->len;
    }

    for (h = ngx_ai_relay_header_out(r, NULL, (u_char *) "x-request-id",
                                     sizeof("x-request-id") - 1);
         h;
         h = ngx_ai_relay_header_out(r, h, (u_char *) "x-request-id",
                                     sizeof("x-request-id") - 1))
    {
        if (h->value.len == id.len
            && ngx_strncmp(h->value.data, id.data, id.len) == 0)
        {
            /* ours, from a response started before */
            return NGX_OK;
        }

        ngx_str_set(&h->key, "x-upstream-request-id");
        h->lowcase_key = (u_char *) "x-upstream-request-id";
    }

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
#if (nginx_version >= 1023000)
    h->next = NULL;
#endif
    ngx_str_set(&h->key, "x-request-id");
    h->value = id;

    return NGX_OK;
}


/* what the upstream's status says of the channel key it was sent with */

static void
ngx_ai_relay_health_outcome(ngx_http_request_t *r, ngx_ai_relay_ctx_t *ctx,
    ngx_uint_t status)
{
    ngx_uint_t  outcome;

    if (status == NGX_HTTP_TOO_MANY_REQUESTS) {
        ngx_ai_relay_health_report(r, ctx, NGX_AI_RELAY_OUTCOME_RATE, status,
                                   ngx_ai_relay_retry_after(r));
        return;
    }

    if (status == NGX_HTTP_UNAUTHORIZED || status == NGX_HTTP_FORBIDDEN
        || status == 402)
    {
        outcome = NGX_AI_RELAY_OUTCOME_AUTH;

    } else if (status >= NGX_HTTP_INTERNAL_SERVER_ERROR) {
        outcome = NGX_AI_RELAY_OUTCOME_FAIL;

    } else {
        /* an answer, or the client's own mistake: the key is fine */
        outcome = NGX_AI_RELAY_OUTCOME_OK;
    }

    ngx_ai_relay_health_report(r, ctx, outcome, status, -1);
}


/* Retry-After in seconds (an HTTP date counts as none), -1 if absent */

static ngx_msec_int_t
ngx_ai_relay_retry_after(ngx_http_request_t *r)
{
    ngx_int_t         n;
    ngx_table_elt_t  *h;

    h = ngx_ai_relay_header_out(r, NULL, (u_char *) "Retry-After",
                                sizeof("Retry-After") - 1);
    if (h == NULL) {
        return -1;
    }

    n = ngx_atoi(h->value.data, h->value.len);

    if (n == NGX_ERROR || n > 86400) {
        return -1;
    }

    return (ngx_msec_int_t) n * 1000;
}


/* the answer's header of that name, after the one given (NULL: the first) */

static ngx_table_elt_t *
ngx_ai_relay_header_out(ngx_http_request_t *r, ngx_table_elt_t *after,
    u_char *name, size_t len)
{
    ngx_uint_t        i, seen;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    seen = (after == NULL);
    part = &r->headers_out.headers.part;
    h = part->elts;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                return NULL;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (!seen) {
            seen = (&h[i] == after);
            continue;
        }

        if (h[i].hash && h[i].key.len == len
            && ngx_strncasecmp(h[i].key.data, name, len) == 0)
        {
            return &h[i];
        }
    }
}


static ngx_int_t
ngx_ai_relay_header_filter(ngx_http_request_t *r)
{
    size_t                    size;
    ngx_str_t                *type;
    ngx_uint_t                status;
    ngx_ai_relay_ctx_t       *ctx;
    ngx_ai_relay_loc_conf_t  *arlcf;

    arlcf = ngx_http_get_module_loc_conf(r, ngx_ai_relay_module);

    if (arlcf->style == NGX_AI_RELAY_STYLE_OFF || r != r->main) {
        return ngx_http_next_header_filter(r);
    }

    ctx = ngx_http_get_module_ctx(r, ngx_ai_relay_module);

    if (ngx_ai_relay_request_id_header(r, ctx) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ctx && ctx->err.own) {
        return ngx_http_next_header_filter(r);
    }

    status = r->headers_out.status;

    if (r->err_status) {

        /* nginx's own error page: say it in JSON */

        if (ctx == NULL) {
            ctx = ngx_ai_relay_get_ctx(r);
            if (ctx == NULL) {
                return NGX_ERROR;
            }
        }

        if ((status == NGX_HTTP_BAD_GATEWAY
             || status == NGX_HTTP_GATEWAY_TIME_OUT)
            && ctx->state == NGX_AI_RELAY_STATE_DONE
            && ctx->status == NGX_DECLINED && !ctx->stream.header_seen)
        {
            /* the channel's upstream could not be reached, or was silent */
            ngx_ai_relay_health_report(r, ctx, NGX_AI_RELAY_OUTCOME_FAIL,
                                       status, -1);

            if (ngx_ai_relay_failover(r, ctx, status, 0) == NGX_OK) {

                /*
                 * the request is sent again: nginx's error page is not;
                 * header_only stops it here and NGX_DONE ends this
                 * response without ending the request
                 */

                r->header_only = 1;
                return NGX_DONE;
            }
        }

        switch (status) {
        case NGX_HTTP_BAD_GATEWAY:
            return ngx_ai_relay_replace_header(r, ctx, status, "bad_gateway",
                       "The upstream server could not be reached or sent "
                       "an invalid answer.");
        case NGX_HTTP_GATEWAY_TIME_OUT:
            return ngx_ai_relay_replace_header(r, ctx, status,
                       "upstream_timeout", "The upstream server timed out.");
        case NGX_HTTP_REQUEST_ENTITY_TOO_LARGE:
            return ngx_ai_relay_replace_header(r, ctx, status,
                       "request_too_large", "The request body is too large.");
        case NGX_HTTP_BAD_REQUEST:
            return ngx_ai_relay_replace_header(r, ctx, status,
                       "invalid_request", "The request is malformed.");
        case NGX_HTTP_NOT_FOUND:
            return ngx_ai_relay_replace_header(r, ctx, status, "not_found",
                       "Not found.");
        case NGX_HTTP_REQUEST_TIME_OUT:
            return ngx_ai_relay_replace_header(r, ctx, status,
                       "request_timeout",
                       "The client sent the request too slowly.");
        default:
            return ngx_ai_relay_replace_header(r, ctx, status, "",
                       status >= 500 ? "The relay failed to serve the "
                                       "request."
                                     : "The request was refused.");
        }
    }

    if (ctx == NULL || !ctx->relay || ctx->state != NGX_AI_RELAY_STATE_DONE
        || ctx->status != NGX_DECLINED || ctx->stream.header_seen)
    {
        return ngx_http_next_header_filter(r);
    }

    /* the upstream's answer */

    ctx->stream.header_seen = 1;
    ctx->stream.upstream_ok = (status >= 200 && status < 300);

    ngx_ai_relay_health_outcome(r, ctx, status);

    if (status >= NGX_HTTP_BAD_REQUEST
        && ngx_ai_relay_failover(r, ctx, status, 1) == NGX_OK)
    {
        /* the upstream's finalization sees it was cleaned up: no error */
        return NGX_ERROR;
    }

    if (status == NGX_HTTP_UNAUTHORIZED || status == NGX_HTTP_FORBIDDEN) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "ai relay: channel %V refused its key #%ui with "
                      "status %ui", &ctx->route.channel->id,
                      ctx->route.upstream_key_index, status);

        ctx->stream.upstream_ok = 0;

        /* its body may quote the channel's key: never pass it on */

        return ngx_ai_relay_replace_header(r, ctx, NGX_HTTP_BAD_GATEWAY,
                   "upstream_auth_failed",
                   "The upstream refused the relay's credentials for this "
                   "model; the relay's operator has been told.");
    }

    if (r->headers_out.content_encoding
        && r->headers_out.content_encoding->value.len
        && ctx->xlate.to)
    {
        /* the translator reads JSON text: nothing to give the client */

        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "ai relay: the answer of channel %V is compressed "
                      "(\"%V\") and cannot be translated",
                      &ctx->route.channel->id,
                      &r->headers_out.content_encoding->value);

        ctx->stream.upstream_ok = 0;

        return ngx_ai_relay_replace_header(r, ctx, NGX_HTTP_BAD_GATEWAY,
                   "bad_gateway",
                   "The upstream's answer could not be translated to this "
                   "API's format.");
    }

    if (r->headers_out.content_encoding
        && r->headers_out.content_encoding->value.len)
    {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "ai relay: upstream answer is compressed (\"%V\"), "
                      "usage will be estimated",
                      &r->headers_out.content_encoding->value);
        return ngx_http_next_header_filter(r);
    }

    ctx->stream.usage = ngx_palloc(r->pool, sizeof(ngx_ai_relay_usage_t));
    if (ctx->stream.usage == NULL) {
        return NGX_ERROR;
    }

    /* billed from the upstream's own usage, in the upstream's format */

    ngx_ai_relay_usage_init(ctx->stream.usage,
                            ctx->xlate.to
                            ? (ngx_ai_relay_format_e) ctx->xlate.to
                            : ctx->body.usage_format);

    type = &r->headers_out.content_type;

    if (type->len >= sizeof("text/event-stream") - 1
        && ngx_strncasecmp(type->data, (u_char *) "text/event-stream",
                           sizeof("text/event-stream") - 1) == 0)
    {
        ctx->stream.sse = ngx_palloc(r->pool, sizeof(ngx_ai_relay_sse_t));
        if (ctx->stream.sse == NULL) {
            return NGX_ERROR;
        }

        ngx_ai_relay_sse_init(ctx->stream.sse, ngx_ai_relay_pool_alloc, r->pool,
                              arlcf->max_event);

        r->filter_need_in_memory = 1;

        ngx_ai_relay_metrics_stream_start(r, ctx);

        /*
         * streams stay streams even under "proxy_buffering on": this
         * runs before the upstream module picks its buffering mode
         */

        if (r->upstream) {
            r->upstream->buffering = 0;
        }

        if (ctx->xlate.to) {
            if (ngx_ai_relay_xlate_start(r, ctx) != NGX_OK) {
                return NGX_ERROR;
            }

        } else {
            ctx->stream.rename = ngx_ai_relay_renames(r, ctx, 1);
        }

        if (!ctx->xlate.to
            && (ctx->stream.injected_usage || ctx->stream.rename))
        {
            /* we will change bytes: the length is no longer known */
            ctx->stream.drop = 1;
            ngx_http_clear_content_length(r);
            ngx_http_clear_accept_ranges(r);
        }

        return ngx_http_next_header_filter(r);
    }

    /* a whole JSON answer: keep a copy for its usage */

    size = ctx->stream.upstream_ok ? arlcf->response_max
                                   : NGX_AI_RELAY_ERROR_KEEP;

    if (r->headers_out.content_length_n > 0
        && (size_t) r->headers_out.content_length_n < size)
    {
        size = (size_t) r->headers_out.content_length_n;
    }

    ctx->stream.copy_cap = size;
    ctx->stream.collect = 1;
    r->filter_need_in_memory = 1;

    if (ctx->xlate.to) {

        /*
         * translated whole: the header waits for the body, as the image
         * filter's does, so that its status and length are the
         * translation's; the translation is renamed, not the upstream's
         * answer
         */

        ctx->xlate.whole = 1;
        ctx->xlate.rename = ngx_ai_relay_renames(r, ctx, 0);
        return NGX_OK;
    }

    if (ngx_ai_relay_renames(r, ctx, 0)) {
        ctx->stream.rename = 1;
        ngx_http_clear_content_length(r);
        ngx_http_clear_accept_ranges(r);
    }

    return ngx_http_next_header_filter(r);
}


/* a translated stream: its events are rewritten as they complete */

static ngx_int_t
ngx_ai_relay_xlate_start(ngx_http_request_t *r, ngx_ai_relay_ctx_t *ctx)
{
    ctx->xlate.sse = ngx_palloc(r->pool, sizeof(ngx_ai_relay_xlate_sse_t));
    if (ctx->xlate.sse == NULL) {
        return NGX_ERROR;
    }

    ngx_ai_relay_xlate_sse_init(ctx->xlate.sse, ctx->xlate.to,
                                ctx->body.usage_format,
                                ngx_ai_relay_pool_alloc, r->pool);

    ctx->xlate.sse->created = ngx_time();

    ctx->xlate.sse->include_usage = ctx->xlate.include_usage;

    /*
     * ai_relay_response_model client: the translation names the client's
     * model in every event it writes (each OpenAI chunk, Anthropic's
     * message_start), rather than the upstream's
     */

    if (ngx_ai_relay_renames(r, ctx, 1)) {
        ngx_ai_relay_xlate_sse_model(ctx->xlate.sse, ctx->body.model.data,
                                     ctx->body.model.len);
    }

    ctx->stream.drop = 0;

    ngx_http_clear_content_length(r);
    ngx_http_clear_accept_ranges(r);

    return NGX_OK;
}


/*
 * ai_relay_response_model client renames a 2xx answer of an endpoint whose
 * answer names its model the OpenAI or Anthropic way, when it is SSE or
 * application/json: not audio, not Gemini's (modelVersion, and its
 * unsplit streams), not what a pass-through brings back.
 */

static ngx_uint_t
ngx_ai_relay_renames(ngx_http_request_t *r, ngx_ai_relay_ctx_t *ctx,
    ngx_uint_t sse)
{
    ngx_str_t                *type;
    ngx_ai_relay_loc_conf_t  *arlcf;

    arlcf = ngx_http_get_module_loc_conf(r, ngx_ai_relay_module);

    if (!arlcf->response_model || !ctx->stream.upstream_ok
        || ctx->endpoint == NULL || ctx->body.model.len == 0)
    {
        return 0;
    }

    switch (ctx->endpoint->id) {

    case NGX_AI_RELAY_EP_CHAT:
    case NGX_AI_RELAY_EP_COMPLETIONS:
    case NGX_AI_RELAY_EP_EMBEDDINGS:
    case NGX_AI_RELAY_EP_RESPONSES:
    case NGX_AI_RELAY_EP_MESSAGES:
    case NGX_AI_RELAY_EP_MODERATIONS:
    case NGX_AI_RELAY_EP_IMAGES:
    case NGX_AI_RELAY_EP_IMAGES_EDIT:
    case NGX_AI_RELAY_EP_IMAGES_VARIATION:
    case NGX_AI_RELAY_EP_TRANSCRIPTION:
    case NGX_AI_RELAY_EP_TRANSLATION:
    case NGX_AI_RELAY_EP_VIDEO_CREATE:
    case NGX_AI_RELAY_EP_VIDEO_REMIX:
        break;

    default:
        return 0;
    }

    if (sse) {
        return 1;
    }

    type = &r->headers_out.content_type;

    return type->len >= sizeof("application/json") - 1
           && ngx_strncasecmp(type->data, (u_char *) "application/json",
                              sizeof("application/json") - 1) == 0;
}


static ngx_int_t
ngx_ai_relay_replace_header(ngx_http_request_t *r, ngx_ai_relay_ctx_t *ctx,
    ngx_uint_t status, const char *code, const char *message)
{
    ngx_str_t                 msg;
    ngx_ai_relay_loc_conf_t  *arlcf;

    arlcf = ngx_http_get_module_loc_conf(r, ngx_ai_relay_module);

    msg.data = (u_char *) message;
    msg.len = ngx_strlen(message);

    ctx->err.replace = ngx_ai_relay_error_body(r, arlcf->style, status, code,
                                           &msg);
    if (ctx->err.replace == NULL) {
        return NGX_ERROR;
    }

    if (ctx->err.message.len == 0) {
        ctx->err.message = msg;
        ctx->err.status = status;
    }

    ctx->err.replace_body = 1;

    r->headers_out.status = status;
    r->headers_out.status_line.len = 0;
    r->headers_out.content_length_n = ctx->err.replace->last
                                      - ctx->err.replace->pos;
    ngx_str_set(&r->headers_out.content_type, "application/json");
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_type_lowcase = NULL;

    if (r->headers_out.content_encoding) {
        r->headers_out.content_encoding->hash = 0;
        r->headers_out.content_encoding = NULL;
    }

    if (r->headers_out.content_length) {
        r->headers_out.content_length->hash = 0;
        r->headers_out.content_length = NULL;
    }

    ngx_http_clear_accept_ranges(r);
    ngx_http_clear_last_modified(r);
    ngx_http_clear_etag(r);

    return ngx_http_next_header_filter(r);
}


static ngx_int_t
ngx_ai_relay_body_filter(ngx_http_request_t *r, ngx_chain_t *in)
{
    ngx_chain_t         *cl;
    ngx_time_t          *tp;
    ngx_ai_relay_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_ai_relay_module);

    if (ctx == NULL || r != r->main) {
        return ngx_http_next_body_filter(r, in);
    }

    if (ctx->err.replace_body) {
        return ngx_ai_relay_replace_body(r, ctx, in);
    }

    if (!ctx->stream.header_seen || in == NULL) {
        return ngx_http_next_body_filter(r, in);
    }

    for (cl = in; cl; cl = cl->next) {
        if (cl->buf->last_buf) {
            ctx->stream.complete = 1;
        }

        ctx->stream.body_seen += ngx_buf_size(cl->buf);
    }

    /*
     * an answer with a length is complete at its last byte, which nginx
     * may send before the empty last buffer that ends the request
     */

    if (r->headers_out.content_length_n > 0
        && ctx->stream.body_seen >= r->headers_out.content_length_n)
    {
        ctx->stream.complete = 1;
    }

    if (ctx->stream.ttft == (ngx_msec_t) NGX_AI_RELAY_UNSET) {
        for (cl = in; cl; cl = cl->next) {
            if (ngx_buf_size(cl->buf)) {
                tp = ngx_timeofday();
                ctx->stream.ttft = (ngx_msec_t) (tp->sec * 1000 + tp->msec)
                            - ctx->start_msec;
                break;
            }
        }
    }

    if (ctx->xlate.sse) {
        return ngx_ai_relay_xlate_stream(r, ctx, in);
    }

    if (ctx->xlate.whole) {
        return ngx_ai_relay_xlate_whole(r, ctx, in);
    }

    if (ctx->stream.drop) {
        return ngx_ai_relay_drop_usage(r, ctx, in);
    }

    if (ctx->stream.sse) {
        ngx_ai_relay_observe(r, ctx, in);

    } else if (ctx->stream.collect) {
        ngx_ai_relay_collect(r, ctx, in);

        if (ctx->stream.rename) {
            return ngx_ai_relay_rename_body(r, ctx, in);
        }
    }

    return ngx_ai_relay_pass(r, ctx, in);
}


/*
 * The answer's last bytes (its last buffer, or the byte that completes its
 * Content-Length): the request is settled (queued in the shared zone)
 * before they leave, so that no worker killed at any moment can
 * have answered a request in full that it did not bill.  The LOG phase
 * then finds it settled.
 */

static ngx_int_t
ngx_ai_relay_pass(ngx_http_request_t *r, ngx_ai_relay_ctx_t *ctx,
    ngx_chain_t *out)
{
    ngx_chain_t  *cl;

    for (cl = out; cl && !ctx->stream.complete; cl = cl->next) {
        if (cl->buf->last_buf) {
            ctx->stream.complete = 1;
        }
    }

    if (ctx->stream.complete) {
        ngx_ai_relay_settle_now(r, ctx);
    }

    return ngx_http_next_body_filter(r, out);
}


/* nginx's error page is swallowed; our JSON goes out once instead */

static ngx_int_t
ngx_ai_relay_replace_body(ngx_http_request_t *r, ngx_ai_relay_ctx_t *ctx,
    ngx_chain_t *in)
{
    ngx_chain_t   out, *cl;

    for (cl = in; cl; cl = cl->next) {
        cl->buf->pos = cl->buf->last;
        cl->buf->file_pos = cl->buf->file_last;
    }

    if (ctx->err.replaced) {
        return ngx_http_next_body_filter(r, NULL);
    }

    ctx->err.replaced = 1;

    out.buf = ctx->err.replace;
    out.next = NULL;

    return ngx_ai_relay_pass(r, ctx, &out);
}


static void
ngx_ai_relay_event(ngx_http_request_t *r, ngx_ai_relay_ctx_t *ctx,
    ngx_int_t *rc)
{
    ngx_ai_relay_sse_t  *sse;

    sse = ctx->stream.sse;

    if (sse->truncated) {
        *rc = 0;
        return;
    }

    *rc = ngx_ai_relay_usage_event(ctx->stream.usage, sse->event_name,
                                   sse->event_name_len, sse->data,
                                   sse->data_len);
}


/* the usual path: read the stream where it lies, change nothing */

static void
ngx_ai_relay_observe(ngx_http_request_t *r, ngx_ai_relay_ctx_t *ctx,
    ngx_chain_t *in)
{
    u_char       *p;
    size_t        len, n;
    ngx_int_t     rc;
    ngx_chain_t  *cl;

    for (cl = in; cl; cl = cl->next) {

        if (ngx_buf_in_memory(cl->buf)) {
            p = cl->buf->pos;
            len = cl->buf->last - p;

            while (len) {
                n = ngx_ai_relay_sse_feed(ctx->stream.sse, p, len);
                p += n;
                len -= n;

                if (ctx->stream.sse->event_ready) {
                    ngx_ai_relay_event(r, ctx, &rc);
                }
            }
        }

        if (cl->buf->last_buf && ngx_ai_relay_sse_finish(ctx->stream.sse)) {
            ngx_ai_relay_event(r, ctx, &rc);
        }
    }
}


/*
 * Forward complete events, leaving out the usage-only chunk that exists
 * only because the relay asked for it.  The input is consumed; what goes
 * on are copies, one buffer per event, flushed at once.
 */

static ngx_int_t
ngx_ai_relay_drop_usage(ngx_http_request_t *r, ngx_ai_relay_ctx_t *ctx,
    ngx_chain_t *in)
{
    u_char        *p;
    size_t         len, n;
    ngx_int_t      rc;
    ngx_chain_t   *cl, *out, **ll;
    ngx_uint_t     last;

    out = NULL;
    ll = &out;
    last = 0;

    for (cl = in; cl; cl = cl->next) {

        if (ngx_buf_in_memory(cl->buf)) {
            p = cl->buf->pos;
            len = cl->buf->last - p;

            while (len) {
                n = ngx_ai_relay_sse_feed(ctx->stream.sse, p, len);

                if (ngx_ai_relay_hold(r, ctx, p, n) != NGX_OK) {
                    return NGX_ERROR;
                }

                p += n;
                len -= n;

                if (ctx->stream.sse->event_ready) {
                    ngx_ai_relay_event(r, ctx, &rc);

                    if ((rc & NGX_AI_RELAY_USAGE_ONLY)
                        && ctx->stream.injected_usage)
                    {
                        ngx_log_debug0(NGX_LOG_DEBUG_HTTP,
                                       r->connection->log, 0,
                                       "ai relay: injected usage chunk "
                                       "left out");
                        ctx->stream.hold_len = 0;
                        ctx->stream.hold_early = 0;
                        continue;
                    }

                    if (ngx_ai_relay_emit(r, ctx, &ll) != NGX_OK) {
                        return NGX_ERROR;
                    }

                    ctx->stream.hold_early = 0;

                } else if (ctx->stream.hold_len > NGX_AI_RELAY_HOLD_MAX) {
                    /* too big to be a usage chunk */
                    if (ngx_ai_relay_emit(r, ctx, &ll) != NGX_OK) {
                        return NGX_ERROR;
                    }

                    ctx->stream.hold_early = 1;
                }
            }

            cl->buf->pos = cl->buf->last;
        }

        if (cl->buf->last_buf) {
            last = 1;

            if (ngx_ai_relay_sse_finish(ctx->stream.sse)) {
                ngx_ai_relay_event(r, ctx, &rc);

                if ((rc & NGX_AI_RELAY_USAGE_ONLY)
                    && ctx->stream.injected_usage)
                {
                    ctx->stream.hold_len = 0;
                }
            }

            if (ngx_ai_relay_emit(r, ctx, &ll) != NGX_OK) {
                return NGX_ERROR;
            }
        }
    }

    return ngx_ai_relay_send_events(r, ctx, &out, ll, last);
}


/*
 * A translated stream: every complete upstream event is billed from (its
 * usage, in the upstream's format) and translated; what the translation
 * gives goes out at once, one buffer per source event.
 */

static ngx_int_t
ngx_ai_relay_xlate_stream(ngx_http_request_t *r, ngx_ai_relay_ctx_t *ctx,
    ngx_chain_t *in)
{
    u_char                    *p;
    size_t                     len, n;
    ngx_chain_t               *cl, *out, **ll;
    ngx_uint_t                 last;
    ngx_ai_relay_sse_t        *sse;
    ngx_ai_relay_xlate_sse_t  *x;

    sse = ctx->stream.sse;
    x = ctx->xlate.sse;

    out = NULL;
    ll = &out;
    last = 0;

    for (cl = in; cl; cl = cl->next) {

        if (ngx_buf_in_memory(cl->buf)) {
            p = cl->buf->pos;
            len = cl->buf->last - p;

            while (len) {
                n = ngx_ai_relay_sse_feed(sse, p, len);
                p += n;
                len -= n;

                if (sse->event_ready
                    && ngx_ai_relay_xlate_event(r, ctx, &ll) != NGX_OK)
                {
                    return NGX_ERROR;
                }
            }

            cl->buf->pos = cl->buf->last;
        }

        if (cl->buf->last_buf) {
            last = 1;

            if (ngx_ai_relay_sse_finish(sse)
                && ngx_ai_relay_xlate_event(r, ctx, &ll) != NGX_OK)
            {
                return NGX_ERROR;
            }

            if (ctx->xlate.broken) {
                x->out.len = 0;

            } else if (ngx_ai_relay_xlate_sse_finish(x)
                       != NGX_AI_RELAY_XLATE_OK
                || ngx_ai_relay_hold(r, ctx, x->out.buf, x->out.len)
                   != NGX_OK
                || ngx_ai_relay_emit(r, ctx, &ll) != NGX_OK)
            {
                return NGX_ERROR;
            }

            x->out.len = 0;
        }
    }

    if (out == NULL && !last) {
        return NGX_OK;
    }

    return ngx_ai_relay_send_events(r, ctx, &out, ll, last);
}


/*
 * A translated stream that cannot go on (an event too large to be read
 * whole): an error event in the client's format ends what the client
 * gets; the upstream's events are still observed for the bill.
 */

static ngx_int_t
ngx_ai_relay_xlate_broken(ngx_http_request_t *r, ngx_ai_relay_ctx_t *ctx,
    ngx_chain_t ***ll)
{
    size_t                    len;
    ngx_str_t                 msg;
    ngx_buf_t                *b;
    ngx_ai_relay_loc_conf_t  *arlcf;

    arlcf = ngx_http_get_module_loc_conf(r, ngx_ai_relay_module);

    ctx->xlate.broken = 1;

    ngx_str_set(&msg, "The upstream's stream could not be translated to "
                      "this API's format.");

    b = ngx_ai_relay_error_body(r, arlcf->style, NGX_HTTP_BAD_GATEWAY,
                                "bad_gateway", &msg);
    if (b == NULL) {
        return NGX_ERROR;
    }

    ctx->err.message = msg;

    len = b->last - b->pos;

    while (len && (b->pos[len - 1] == '\n' || b->pos[len - 1] == '\r')) {
        len--;
    }

    if (ctx->body.usage_format == NGX_AI_RELAY_FMT_ANTHROPIC_MESSAGES) {
        if (ngx_ai_relay_hold(r, ctx, (u_char *) "event: error\n",
                              sizeof("event: error\n") - 1)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    if (ngx_ai_relay_hold(r, ctx, (u_char *) "data: ", sizeof("data: ") - 1)
        != NGX_OK
        || ngx_ai_relay_hold(r, ctx, b->pos, len) != NGX_OK
        || ngx_ai_relay_hold(r, ctx, (u_char *) "\n\n", 2) != NGX_OK)
    {
        return NGX_ERROR;
    }

    ctx->xlate.sse->out.len = 0;

    return ngx_ai_relay_emit(r, ctx, ll);
}


static ngx_int_t
ngx_ai_relay_xlate_event(ngx_http_request_t *r, ngx_ai_relay_ctx_t *ctx,
    ngx_chain_t ***ll)
{
    ngx_int_t                  rc;
    ngx_ai_relay_sse_t        *sse;
    ngx_ai_relay_xlate_sse_t  *x;

    sse = ctx->stream.sse;
    x = ctx->xlate.sse;

    ngx_ai_relay_event(r, ctx, &rc);

    if (ctx->xlate.broken) {
        /* still observed for the bill, no longer translated */
        return NGX_OK;
    }

    if (sse->truncated) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "ai relay: an event of channel %V larger than "
                      "ai_relay_sse_max_event cannot be translated: the "
                      "client's stream ends with an error event",
                      &ctx->route.channel->id);

        return ngx_ai_relay_xlate_broken(r, ctx, ll);
    }

    if (ngx_ai_relay_xlate_sse_event(x, sse->event_name, sse->event_name_len,
                                     sse->data, sse->data_len)
        != NGX_AI_RELAY_XLATE_OK)
    {
        return NGX_ERROR;
    }

    if (x->out.len == 0) {
        return NGX_OK;
    }

    if (ngx_ai_relay_hold(r, ctx, x->out.buf, x->out.len) != NGX_OK) {
        return NGX_ERROR;
    }

    x->out.len = 0;

    return ngx_ai_relay_emit(r, ctx, ll);
}


/*
 * A translated whole answer: kept (up to ai_relay_response_max) until its
 * end, then translated, and sent with its header.  An upstream error is
 * sent in the client's format with the upstream's status.
 */

static ngx_int_t
ngx_ai_relay_xlate_whole(ngx_http_request_t *r, ngx_ai_relay_ctx_t *ctx,
    ngx_chain_t *in)
{
    size_t                     a, z, qlen;
    u_char                    *p, *q;
    ngx_int_t                  rc;
    ngx_str_t                  msg;
    ngx_buf_t                 *b;
    ngx_uint_t                 status, last;
    ngx_chain_t               *cl, out;
    ngx_ai_relay_jw_t          w;
    ngx_ai_relay_loc_conf_t   *arlcf;

    ngx_ai_relay_collect(r, ctx, in);

    last = 0;

    for (cl = in; cl; cl = cl->next) {
        if (cl->buf->last_buf) {
            last = 1;
        }

        cl->buf->pos = cl->buf->last;
        cl->buf->file_pos = cl->buf->file_last;
    }

    if (!last) {
        return NGX_OK;
    }

    ctx->xlate.whole = 0;

    arlcf = ngx_http_get_module_loc_conf(r, ngx_ai_relay_module);
    status = r->headers_out.status;

    ngx_ai_relay_jw_init(&w, ngx_ai_relay_pool_alloc, r->pool);

    if (status >= 200 && status < 300) {

        if (ctx->stream.copy_overflow
            || ngx_ai_relay_xlate_response(ctx->xlate.to,
                                           ctx->body.usage_format,
                                           ctx->stream.copy,
                                           ctx->stream.copy_len, ngx_time(),
                                           &w)
               != NGX_AI_RELAY_XLATE_OK)
        {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "ai relay: the answer of channel %V could not be "
                          "translated%s", &ctx->route.channel->id,
                          ctx->stream.copy_overflow
                          ? " (larger than ai_relay_response_max)" : "");

            ngx_str_set(&msg, "The upstream's answer could not be "
                              "translated to this API's format.");

            b = ngx_ai_relay_error_body(r, arlcf->style,
                                        NGX_HTTP_BAD_GATEWAY, "bad_gateway",
                                        &msg);
            if (b == NULL) {
                return NGX_ERROR;
            }

            ctx->err.message = msg;
            ctx->err.status = NGX_HTTP_BAD_GATEWAY;
            r->headers_out.status = NGX_HTTP_BAD_GATEWAY;

            /*
             * the client gets no answer: it is not billed for one (the
             * upstream's usage is not read, the record says 502, cost 0)
             */

            ctx->stream.upstream_ok = 0;
            ctx->stream.usage = NULL;

            w.buf = b->pos;
            w.len = b->last - b->pos;
        }

    } else {
        ngx_ai_relay_xlate_error(ctx->xlate.to, ctx->body.usage_format,
                                 status, ctx->stream.copy,
                                 ctx->stream.copy_len, &w);
    }

    if (w.failed) {
        return NGX_ERROR;
    }

    /*
     * ai_relay_response_model client: the translation's model (the
     * upstream's, written first after its id) becomes the client's
     */

    if (ctx->xlate.rename && r->headers_out.status < 300
        && ngx_ai_relay_rename_find(w.buf, w.len, &a, &z))
    {
        qlen = ngx_ai_relay_json_quote_len(ctx->body.model.data,
                                           ctx->body.model.len);

        p = ngx_pnalloc(r->pool, w.len - (z - a) + qlen);
        if (p == NULL) {
            return NGX_ERROR;
        }

        q = ngx_cpymem(p, w.buf, a);
        q = ngx_ai_relay_json_quote(q, ctx->body.model.data,
                                    ctx->body.model.len);
        q = ngx_cpymem(q, w.buf + z, w.len - z);

        w.buf = p;
        w.len = q - p;
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_ERROR;
    }

    b->pos = w.buf;
    b->last = w.buf + w.len;
    b->start = b->pos;
    b->end = b->last;
    b->memory = 1;
    b->last_buf = 1;

    r->headers_out.status_line.len = 0;
    r->headers_out.content_length_n = w.len;

    if (r->headers_out.content_length) {
        r->headers_out.content_length->hash = 0;
        r->headers_out.content_length = NULL;
    }

    ngx_str_set(&r->headers_out.content_type, "application/json");
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_type_lowcase = NULL;
    ngx_http_clear_accept_ranges(r);

    rc = ngx_http_next_header_filter(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    out.buf = b;
    out.next = NULL;

    return ngx_ai_relay_pass(r, ctx, &out);
}


static ngx_int_t
ngx_ai_relay_hold(ngx_http_request_t *r, ngx_ai_relay_ctx_t *ctx, u_char *p,
    size_t len)
{
    u_char  *nb;
    size_t   cap;

    if (ctx->stream.hold_len + len > ctx->stream.hold_cap) {
        cap = ctx->stream.hold_cap ? ctx->stream.hold_cap : 512;

        while (cap < ctx->stream.hold_len + len) {
            cap *= 2;
        }

        nb = ngx_palloc(r->pool, cap);
        if (nb == NULL) {
            return NGX_ERROR;
        }

        if (ctx->stream.hold_len) {
            ngx_memcpy(nb, ctx->stream.hold, ctx->stream.hold_len);
        }

        ctx->stream.hold = nb;
        ctx->stream.hold_cap = cap;
    }

    ngx_memcpy(ctx->stream.hold + ctx->stream.hold_len, p, len);
    ctx->stream.hold_len += len;

    return NGX_OK;
}


static ngx_int_t
ngx_ai_relay_emit(ngx_http_request_t *r, ngx_ai_relay_ctx_t *ctx,
    ngx_chain_t ***ll)
{
    u_char       *start, *end, *p;
    size_t        a, z, len, qlen;
    ngx_buf_t    *b;
    ngx_chain_t  *cl;

    if (ctx->stream.hold_len == 0) {
        return NGX_OK;
    }

    /*
     * ai_relay_response_model client: the answer's model, the client's,
     * written straight into the buffer that goes (nothing else is
     * allocated per event: the buffers come back through the free list)
     */

    len = ctx->stream.hold_len;
    qlen = 0;

    if (ctx->stream.rename
        && ngx_ai_relay_rename_find(ctx->stream.hold, ctx->stream.hold_len,
                                    &a, &z))
    {
        qlen = ngx_ai_relay_json_quote_len(ctx->body.model.data,
                                           ctx->body.model.len);
        len = ctx->stream.hold_len - (z - a) + qlen;

    } else {
        a = z = 0;
    }

    cl = ngx_chain_get_free_buf(r->pool, &ctx->stream.free);
    if (cl == NULL) {
        return NGX_ERROR;
    }

    b = cl->buf;

    start = b->start;
    end = b->end;

    ngx_memzero(b, sizeof(ngx_buf_t));

    if (start == NULL || (size_t) (end - start) < len) {
        start = ngx_palloc(r->pool, ngx_max(len, 256));
        if (start == NULL) {
            return NGX_ERROR;
        }

        end = start + ngx_max(len, 256);
    }

    b->start = start;
    b->end = end;
    b->pos = start;

    if (qlen) {
        p = ngx_cpymem(start, ctx->stream.hold, a);
        ngx_ai_relay_json_quote(p, ctx->body.model.data, ctx->body.model.len);
        b->last = ngx_cpymem(p + qlen, ctx->stream.hold + z,
                             ctx->stream.hold_len - z);

    } else {
        b->last = ngx_cpymem(start, ctx->stream.hold, ctx->stream.hold_len);
    }

    b->temporary = 1;
    b->flush = 1;
    b->tag = (ngx_buf_tag_t) &ngx_ai_relay_module;

    ctx->stream.hold_len = 0;

    **ll = cl;
    *ll = &cl->next;

    return NGX_OK;
}


/*
 * the events in *out (ll: where the chain ends), then the last buffer if
 * the answer ended: sent on
 */

static ngx_int_t
ngx_ai_relay_send_events(ngx_http_request_t *r, ngx_ai_relay_ctx_t *ctx,
    ngx_chain_t **out, ngx_chain_t **ll, ngx_uint_t last)
{
    ngx_int_t     rc;
    ngx_buf_t    *b;
    ngx_chain_t  *cl;

    if (last) {
        cl = ngx_chain_get_free_buf(r->pool, &ctx->stream.free);
        if (cl == NULL) {
            return NGX_ERROR;
        }

        b = cl->buf;
        ngx_memzero(b, sizeof(ngx_buf_t));
        b->tag = (ngx_buf_tag_t) &ngx_ai_relay_module;
        b->last_buf = 1;

        *ll = cl;
        ll = &cl->next;
    }

    *ll = NULL;

    rc = ngx_ai_relay_pass(r, ctx, *out);

    ngx_chain_update_chains(r->pool, &ctx->stream.free, &ctx->stream.busy, out,
                            (ngx_buf_tag_t) &ngx_ai_relay_module);

    return rc;
}


static void
ngx_ai_relay_collect(ngx_http_request_t *r, ngx_ai_relay_ctx_t *ctx,
    ngx_chain_t *in)
{
    size_t        len;
    ngx_chain_t  *cl;

    for (cl = in; cl; cl = cl->next) {

        if (!ngx_buf_in_memory(cl->buf) || ctx->stream.copy_overflow) {
            continue;
        }

        len = cl->buf->last - cl->buf->pos;

        if (len == 0) {
            continue;
        }

        if (ctx->stream.copy == NULL) {
            ctx->stream.copy = ngx_palloc(r->pool, ctx->stream.copy_cap);
            if (ctx->stream.copy == NULL) {
                ctx->stream.copy_overflow = 1;
                continue;
            }
        }

        if (ctx->stream.copy_len + len > ctx->stream.copy_cap) {
            if (ctx->stream.upstream_ok) {
                ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                              "ai relay: answer larger than "
                              "ai_relay_response_max, usage will be "
                              "estimated");
                ctx->stream.copy_overflow = 1;
                continue;
            }

            len = ctx->stream.copy_cap - ctx->stream.copy_len;
        }

        ngx_memcpy(ctx->stream.copy + ctx->stream.copy_len, cl->buf->pos, len);
        ctx->stream.copy_len += len;
    }
}


/*
 * A JSON answer under ai_relay_response_model client: held until its
 * "model" is complete (or it ends, or passes NGX_AI_RELAY_HOLD_MAX
 * without one), sent with the client's name, then passed as it comes.
 */

static ngx_int_t
ngx_ai_relay_rename_body(ngx_http_request_t *r, ngx_ai_relay_ctx_t *ctx,
    ngx_chain_t *in)
{
    size_t        a, z;
    ngx_uint_t    last;
    ngx_chain_t  *cl, *out, **ll;

    if (ctx->stream.renamed) {
        return ngx_ai_relay_pass(r, ctx, in);
    }

    last = 0;

    for (cl = in; cl; cl = cl->next) {
        if (ngx_buf_in_memory(cl->buf)) {
            if (ngx_ai_relay_hold(r, ctx, cl->buf->pos,
                                  cl->buf->last - cl->buf->pos)
                != NGX_OK)
            {
                return NGX_ERROR;
            }

            cl->buf->pos = cl->buf->last;
        }

        if (cl->buf->last_buf) {
            last = 1;
        }
    }

    if (!last && ctx->stream.hold_len <= NGX_AI_RELAY_HOLD_MAX
        && !ngx_ai_relay_rename_find(ctx->stream.hold, ctx->stream.hold_len,
                                     &a, &z))
    {
        /* not yet: what came is held, nothing goes */
        return NGX_OK;
    }

    ctx->stream.renamed = 1;

    out = NULL;
    ll = &out;

    if (ngx_ai_relay_emit(r, ctx, &ll) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_ai_relay_send_events(r, ctx, &out, ll, last);
}


static void *
ngx_ai_relay_pool_alloc(void *data, size_t size)
{
    return ngx_palloc(data, size);
}
