
/*
 * Copyright (C) ngx_ai_relay authors
 *
 * The channel's key reaches the proxied request only.  A relay
 * location's content handler (proxy_pass's) is wrapped: the key header is
 * added to the request headers just before proxy_pass builds the
 * upstream request, which it does before it returns, and taken out right
 * after.  So $http_authorization, mirror subrequests (made earlier, in
 * the PRECONTENT phase), error_page targets and the log phase never see
 * it; nor does anything that runs before the relay chose the channel.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_ai_relay_module.h"
#include "ngx_ai_relay_upstream.h"


static ngx_int_t ngx_ai_relay_upstream_handler(ngx_http_request_t *r);
static ngx_table_elt_t *ngx_ai_relay_upstream_key_header(
    ngx_http_request_t *r, ngx_ai_relay_ctx_t *ctx);
static void ngx_ai_relay_upstream_free_peer(ngx_peer_connection_t *pc,
    void *data, ngx_uint_t state);


/* at merge time: the location's content handler is set by proxy_pass */

char *
ngx_ai_relay_upstream_wrap(ngx_conf_t *cf, ngx_ai_relay_loc_conf_t *arlcf)
{
    ngx_http_core_loc_conf_t  *clcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    if (arlcf->style == NGX_AI_RELAY_STYLE_OFF || clcf->handler == NULL
        || clcf->handler == ngx_ai_relay_upstream_handler)
    {
        return NGX_CONF_OK;
    }

    arlcf->content_handler = clcf->handler;
    clcf->handler = ngx_ai_relay_upstream_handler;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_ai_relay_upstream_handler(ngx_http_request_t *r)
{
    ngx_int_t                 rc;
    ngx_ai_relay_ctx_t       *ctx;
    ngx_table_elt_t          *h;
    ngx_list_part_t          *last;
    ngx_ai_relay_loc_conf_t  *arlcf;

    arlcf = ngx_http_get_module_loc_conf(r, ngx_ai_relay_module);

    if (arlcf->content_handler == NULL) {
        return NGX_DECLINED;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_ai_relay_module);

    if (r != r->main || ctx == NULL || ctx->route.channel == NULL
        || ctx->route.upstream_key.len == 0)
    {
        return arlcf->content_handler(r);
    }

    h = ngx_ai_relay_upstream_key_header(r, ctx);
    if (h == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* proxy_pass reads the headers into the upstream request now */

    rc = arlcf->content_handler(r);

    if (ctx->body.form_split && r->upstream && r->upstream->peer.free
        && r->upstream->peer.free != ngx_ai_relay_upstream_free_peer)
    {
        ctx->body.form_peer_free = r->upstream->peer.free;
        r->upstream->peer.free = ngx_ai_relay_upstream_free_peer;
    }

    /* the header was pushed last: drop it from its part */

    for (last = &r->headers_in.headers.part; last->next; last = last->next) {
        /* void */
    }

    if (last->nelts && (ngx_table_elt_t *) last->elts + last->nelts - 1 == h)
    {
        last->nelts--;

    } else {
        /* not where it was put: at least hide it and blank its value */
        h->hash = 0;
        ngx_memzero(h->value.data, h->value.len);
    }

    if (r->headers_in.authorization == h) {
        r->headers_in.authorization = NULL;
    }

    return rc;
}


/* the header the channel's provider expects its key in */

static ngx_table_elt_t *
ngx_ai_relay_upstream_key_header(ngx_http_request_t *r,
    ngx_ai_relay_ctx_t *ctx)
{
    u_char           *p;
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_in.headers);
    if (h == NULL) {
        return NULL;
    }

    h->hash = 1;
#if (nginx_version >= 1023000)
    h->next = NULL;
#endif

    switch (ctx->route.channel->provider) {

    case NGX_AI_RELAY_PROVIDER_ANTHROPIC:
        ngx_str_set(&h->key, "x-api-key");
        h->value = ctx->route.upstream_key;
        break;

    case NGX_AI_RELAY_PROVIDER_GEMINI:
        ngx_str_set(&h->key, "x-goog-api-key");
        h->value = ctx->route.upstream_key;
        break;

    default: /* NGX_AI_RELAY_PROVIDER_OPENAI */
        ngx_str_set(&h->key, "Authorization");

        h->value.len = sizeof("Bearer ") - 1 + ctx->route.upstream_key.len;
        h->value.data = ngx_pnalloc(r->pool, h->value.len);
        if (h->value.data == NULL) {
            return NULL;
        }

        p = ngx_cpymem(h->value.data, "Bearer ", sizeof("Bearer ") - 1);
        ngx_memcpy(p, ctx->route.upstream_key.data,
                   ctx->route.upstream_key.len);

        r->headers_in.authorization = h;
        break;
    }

    h->lowcase_key = ngx_pnalloc(r->pool, h->key.len);
    if (h->lowcase_key == NULL) {
        return NULL;
    }

    ngx_strlow(h->lowcase_key, h->key.data, h->key.len);

    return h;
}


/*
 * A multipart body whose file ranges have a gap (form.c) is not sent
 * again by nginx once it was sent: ngx_http_upstream_reinit() would
 * restart the second range where the first ended.  Before it was sent
 * (a refused connection) nginx still tries the next server; after, the
 * answer goes to the relay's failover, which rebuilds the body.
 */

static void
ngx_ai_relay_upstream_free_peer(ngx_peer_connection_t *pc, void *data,
    ngx_uint_t state)
{
    ngx_http_request_t   *r;
    ngx_ai_relay_ctx_t   *ctx;
    ngx_http_log_ctx_t   *lctx;
    ngx_http_upstream_t  *u;

    /* the peer is u->peer; u->peer.log is the request's (its log ctx) */

    u = (ngx_http_upstream_t *) ((u_char *) pc
                                 - offsetof(ngx_http_upstream_t, peer));
    lctx = pc->log->data;
    r = lctx->request;

    ctx = ngx_http_get_module_ctx(r, ngx_ai_relay_module);

    ctx->body.form_peer_free(pc, data, state);

    if (u->request_sent && ctx->body.form_split) {
        ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "ai relay: multipart body with file ranges sent, "
                       "no retry by nginx");
        pc->tries = 0;
    }
}
