
/*
 * Copyright (C) ngx_ai_relay authors
 *
 * Failover before the first byte.  When the channel key a request was
 * sent with fails before anything reached the client (no connection, a
 * timeout before the answer, or an answer of 429, 5xx, 401, 402 or 403),
 * and ai_relay_next_upstream allows it, the request goes to the next key
 * of the channel, then to the other channels of its priority tier, then
 * to the next tier: never to a key tried already, at most
 * ai_relay_next_upstream_tries attempts, within
 * ai_relay_next_upstream_timeout.
 *
 * The header filter sees the failure.  The next channel key is picked,
 * and the body and headers are rewritten for it, there; the failed
 * attempt is dropped (its upstream connection closed, nginx's error page
 * not sent); then, from a posted request on a clean stack, an internal
 * redirect to the same location sends the request again through
 * proxy_pass.  The request's ctx goes along (ctx.c), so the key check
 * and the reservation are not repeated and the bill stays one.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_ai_relay_module.h"
#include "ngx_ai_relay_failover.h"
#include "ngx_ai_relay_route.h"
#include "ngx_ai_relay_ctx.h"


static ngx_uint_t ngx_ai_relay_failover_wanted(ngx_ai_relay_loc_conf_t *arlcf,
    ngx_uint_t status, ngx_uint_t answered);
static ngx_int_t ngx_ai_relay_failover_note(ngx_http_request_t *r,
    ngx_ai_relay_ctx_t *ctx, ngx_uint_t status);
static void ngx_ai_relay_failover_reset(ngx_http_request_t *r,
    ngx_ai_relay_ctx_t *ctx);
static void ngx_ai_relay_failover_handler(ngx_http_request_t *r);


/*
 * Called by the header filter with nothing sent yet: NGX_OK when the
 * request will be sent again (the caller drops this response), else
 * NGX_DECLINED.  answered: the upstream sent this status (its response
 * is dropped here); otherwise it is nginx's own error page.
 */

ngx_int_t
ngx_ai_relay_failover(ngx_http_request_t *r, ngx_ai_relay_ctx_t *ctx,
    ngx_uint_t status, ngx_uint_t answered)
{
    ngx_msec_t                 now;
    ngx_time_t                *tp;
    ngx_http_upstream_t       *u;
    ngx_ai_relay_loc_conf_t   *arlcf;

    arlcf = ngx_http_get_module_loc_conf(r, ngx_ai_relay_module);

    if (!ngx_ai_relay_failover_wanted(arlcf, status, answered)
        || ctx->route.tries >= arlcf->next_upstream_tries
        || r->header_sent || r->connection->error)
    {
        return NGX_DECLINED;
    }

    if (arlcf->next_upstream_timeout) {
        tp = ngx_timeofday();
        now = (ngx_msec_t) (tp->sec * 1000 + tp->msec);

        if (now - ctx->start_msec >= arlcf->next_upstream_timeout) {
            return NGX_DECLINED;
        }
    }

    if (ngx_ai_relay_failover_note(r, ctx, status) != NGX_OK) {
        return NGX_DECLINED;
    }

    if (ngx_ai_relay_route_next(r, ctx) != NGX_OK) {
        return NGX_DECLINED;
    }

    ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                  "ai relay: status %ui from the upstream, request sent "
                  "again to channel %V key #%ui (try %ui)", status,
                  &ctx->route.channel->id, ctx->route.upstream_key_index,
                  ctx->route.tries);

    /* the failed attempt's upstream goes: its connection is closed */

    u = r->upstream;

    if (answered && u && u->cleanup) {
        r->main->count++;
        (*u->cleanup)(r);
    }

    ngx_ai_relay_failover_reset(r, ctx);

    /* the request stays alive until the posted handler has run */

    r->main->count++;

    if (ngx_http_post_request(r, NULL) != NGX_OK) {
        r->main->count--;
        return NGX_DECLINED;
    }

    r->write_event_handler = ngx_ai_relay_failover_handler;

    return NGX_OK;
}


static ngx_uint_t
ngx_ai_relay_failover_wanted(ngx_ai_relay_loc_conf_t *arlcf,
    ngx_uint_t status, ngx_uint_t answered)
{
    ngx_uint_t  mask;

    if (!answered) {
        mask = (status == NGX_HTTP_GATEWAY_TIME_OUT)
               ? NGX_AI_RELAY_NEXT_TIMEOUT : NGX_AI_RELAY_NEXT_ERROR;

    } else if (status == NGX_HTTP_TOO_MANY_REQUESTS) {
        mask = NGX_AI_RELAY_NEXT_429;

    } else if (status >= NGX_HTTP_INTERNAL_SERVER_ERROR) {
        mask = NGX_AI_RELAY_NEXT_5XX;

    } else if (status == NGX_HTTP_UNAUTHORIZED || status == 402
               || status == NGX_HTTP_FORBIDDEN)
    {
        mask = NGX_AI_RELAY_NEXT_AUTH;

    } else {
        return 0;
    }

    return (arlcf->next_upstream & mask) != 0;
}


/* "channel#key:status," for the record: every try is in it */

static ngx_int_t
ngx_ai_relay_failover_note(ngx_http_request_t *r, ngx_ai_relay_ctx_t *ctx,
    ngx_uint_t status)
{
    u_char     *p;
    size_t      len;
    ngx_str_t  *id;

    id = &ctx->route.channel->id;

    len = ctx->route.attempts.len + id->len + 2 * NGX_INT_T_LEN + 3;

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    ctx->route.attempts.len = ngx_sprintf(p, "%V%V#%ui:%ui,",
                                          &ctx->route.attempts, id,
                                          ctx->route.upstream_key_index,
                                          status)
                              - p;
    ctx->route.attempts.data = p;

    return NGX_OK;
}


/* what the failed attempt left in the request and the ctx */

static void
ngx_ai_relay_failover_reset(ngx_http_request_t *r, ngx_ai_relay_ctx_t *ctx)
{
    ngx_memzero(&ctx->stream, sizeof(ngx_ai_relay_ctx_stream_t));
    ctx->stream.ttft = (ngx_msec_t) NGX_AI_RELAY_UNSET;

    ngx_memzero(&ctx->err, sizeof(ngx_ai_relay_ctx_err_t));
    ctx->id_sent = 0;
}


static void
ngx_ai_relay_failover_handler(ngx_http_request_t *r)
{
    ngx_ai_relay_ctx_t  *ctx;

    ctx = ngx_ai_relay_find_ctx(r);

    r->write_event_handler = ngx_http_request_empty_handler;

    if (ctx == NULL || r->connection->error) {
        ngx_http_finalize_request(r, NGX_HTTP_CLIENT_CLOSED_REQUEST);
        return;
    }

    /* as nginx's ngx_http_clean_header(): a new answer, a new header */

    ngx_memzero(&r->headers_out.status,
                sizeof(ngx_http_headers_out_t)
                - offsetof(ngx_http_headers_out_t, status));

    r->headers_out.headers.part.nelts = 0;
    r->headers_out.headers.part.next = NULL;
    r->headers_out.headers.last = &r->headers_out.headers.part;

    r->headers_out.trailers.part.nelts = 0;
    r->headers_out.trailers.part.next = NULL;
    r->headers_out.trailers.last = &r->headers_out.trailers.part;

    r->headers_out.content_length_n = -1;
    r->headers_out.last_modified_time = -1;

    r->err_status = 0;
    r->header_only = 0;
    r->filter_need_in_memory = 0;

    ctx->route.failover = 1;

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "ai relay: failover to %V", &ctx->route.upstream_url);

    (void) ngx_http_internal_redirect(r, &r->uri, &r->args);

    ngx_http_finalize_request(r, NGX_DONE);
}
