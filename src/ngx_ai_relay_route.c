
/*
 * Copyright (C) ngx_ai_relay authors
 *
 * From the route script's answer to a proxied request: the channel (the
 * highest priority tier with an enabled channel, weighted random inside
 * it), the upstream key (in rotation), the upstream URL, and the client's
 * key headers replaced by the channel's.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_ai_relay_module.h"
#include "ngx_ai_relay_route.h"
#include "ngx_ai_relay_body.h"
#include "ngx_ai_relay_error.h"
#include "ngx_ai_relay_billing.h"
#include "ngx_ai_relay_key.h"
#include "ngx_ai_relay_health.h"
#include "ngx_ai_relay_ctx.h"


/* sent to Anthropic channels for clients of other APIs */
#define NGX_AI_RELAY_ANTHROPIC_VERSION  "2023-06-01"


static ngx_int_t ngx_ai_relay_price_parse(ngx_http_request_t *r,
    ngx_ai_relay_ctx_t *ctx, redisReply *flat);
static ngx_int_t ngx_ai_relay_channels_parse(ngx_http_request_t *r,
    ngx_ai_relay_ctx_t *ctx, redisReply **e, size_t n);
static ngx_ai_relay_channel_t *ngx_ai_relay_channel_pick(
    ngx_http_request_t *r, ngx_ai_relay_ctx_t *ctx);
static ngx_uint_t ngx_ai_relay_channel_nkeys(ngx_ai_relay_channel_t *ch);
static ngx_int_t ngx_ai_relay_route_use(ngx_http_request_t *r,
    ngx_ai_relay_ctx_t *ctx, ngx_ai_relay_channel_t *ch);
static ngx_int_t ngx_ai_relay_upstream_key(ngx_http_request_t *r,
    ngx_ai_relay_ctx_t *ctx, ngx_ai_relay_channel_t *ch);
static ngx_uint_t ngx_ai_relay_version_segment(u_char *p, u_char *last);
static ngx_uint_t ngx_ai_relay_base_has_version(ngx_str_t *base);
static ngx_int_t ngx_ai_relay_upstream_url(ngx_http_request_t *r,
    ngx_ai_relay_ctx_t *ctx, ngx_ai_relay_channel_t *ch);
static ngx_int_t ngx_ai_relay_upstream_headers(ngx_http_request_t *r,
    ngx_ai_relay_ctx_t *ctx, ngx_ai_relay_channel_t *ch);
static ngx_uint_t ngx_ai_relay_is_key_header(ngx_str_t *name);
static ngx_uint_t ngx_ai_relay_has_header(ngx_http_request_t *r,
    const char *name);


/*
 * {"ok", resolved, version, priced_as, {price k, v, ...}, channel, ...}
 * or {status, detail} when the model does not route
 */

ngx_int_t
ngx_ai_relay_route_parse(ngx_http_request_t *r, ngx_ai_relay_ctx_t *ctx,
    redisReply *reply)
{
    ngx_str_t                  status, priced_as;
    redisReply               **e;
    ngx_ai_relay_loc_conf_t   *arlcf;

    arlcf = ngx_http_get_module_loc_conf(r, ngx_ai_relay_module);

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 2) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "ai relay: unexpected reply of the route script");
        return NGX_ERROR;
    }

    e = reply->element;

    if (ngx_ai_relay_reply_string(r, e[0], &status) != NGX_OK
        || ngx_ai_relay_reply_string(r, e[1], &ctx->route.detail)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (reply->elements > 2
        && ngx_ai_relay_reply_string(r, e[2], &ctx->route.version)
           == NGX_ERROR)
    {
        return NGX_ERROR;
    }

    if (status.len != 2 || ngx_strncmp(status.data, "ok", 2) != 0) {
        ctx->route.failed = 1;
        ctx->route.status = status;
        return NGX_OK;
    }

    if (reply->elements < 5 || e[4]->type != REDIS_REPLY_ARRAY) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "ai relay: unexpected reply of the route script");
        return NGX_ERROR;
    }

    ctx->body.resolved_model = ctx->route.detail;

    if (ngx_ai_relay_reply_string(r, e[3], &priced_as) == NGX_ERROR) {
        return NGX_ERROR;
    }

    if (priced_as.len == 0 && !arlcf->allow_unpriced) {
        ctx->route.failed = 1;
        ngx_str_set(&ctx->route.status, "unpriced");
        return NGX_OK;
    }

    if (ngx_ai_relay_price_parse(r, ctx, e[4]) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_ai_relay_channels_parse(r, ctx, e + 5, reply->elements - 5)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ctx->route.nenabled == 0) {
        ctx->route.failed = 1;
        ngx_str_set(&ctx->route.status, "nochannel");
        return NGX_OK;
    }

    if (ngx_ai_relay_body_xlate_prepare(r, ctx) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_ai_relay_reserve_estimate(r, ctx);
}


static ngx_int_t
ngx_ai_relay_price_parse(ngx_http_request_t *r, ngx_ai_relay_ctx_t *ctx,
    redisReply *flat)
{
    off_t         v;
    size_t        i;
    ngx_str_t     k;
    redisReply  **e;

    ngx_ai_relay_price_init(&ctx->route.price);

    e = flat->element;

    for (i = 0; i + 1 < flat->elements; i += 2) {

        if (e[i]->type != REDIS_REPLY_STRING
            || e[i + 1]->type != REDIS_REPLY_STRING)
        {
            continue;
        }

        k.data = (u_char *) e[i]->str;
        k.len = e[i]->len;

        v = ngx_atoof((u_char *) e[i + 1]->str, e[i + 1]->len);

        if (v == NGX_ERROR) {
            ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                          "ai relay: price \"%V\" of \"%V\" is not a "
                          "whole number of micro-USD, ignored",
                          &k, &ctx->body.resolved_model);
            continue;
        }

#define ngx_ai_relay_is(s)                                                    \
        (k.len == sizeof(s) - 1 && ngx_strncmp(k.data, s, k.len) == 0)

        if (ngx_ai_relay_is("input")) {
            ctx->route.price.input = v;

        } else if (ngx_ai_relay_is("cached_input")) {
            ctx->route.price.cached_input = v;

        } else if (ngx_ai_relay_is("cache_write")) {
            ctx->route.price.cache_write_5m = v;

        } else if (ngx_ai_relay_is("cache_write_1h")) {
            ctx->route.price.cache_write_1h = v;

        } else if (ngx_ai_relay_is("output")) {
            ctx->route.price.output = v;

        } else if (ngx_ai_relay_is("request")) {
            ctx->route.price.per_request = v;

        } else if (ngx_ai_relay_is("image")) {
            ctx->route.price.per_image = v;

        } else if (ngx_ai_relay_is("character")) {
            ctx->route.price.per_char = v;

        } else if (ngx_ai_relay_is("second")) {
            ctx->route.price.per_second = v;

        } else if (k.len > 6 && ngx_strncmp(k.data, "image:", 6) == 0) {
            (void) ngx_ai_relay_price_add_image(&ctx->route.price,
                                                (char *) k.data + 6,
                                                k.len - 6, v);

        } else if (k.len > 7 && ngx_strncmp(k.data, "second:", 7) == 0) {
            (void) ngx_ai_relay_price_add_second(&ctx->route.price,
                                                 (char *) k.data + 7,
                                                 k.len - 7, v);
        }

#undef ngx_ai_relay_is
    }

    return NGX_OK;
}


static ngx_int_t
ngx_ai_relay_channels_parse(ngx_http_request_t *r, ngx_ai_relay_ctx_t *ctx,
    redisReply **e, size_t n)
{
    size_t                   i, j;
    ngx_str_t                f[9];
    ngx_int_t                v;
    ngx_ai_relay_channel_t  *ch;

    ctx->route.channels = ngx_pcalloc(r->pool,
                                (n ? n : 1) * sizeof(ngx_ai_relay_channel_t));
    if (ctx->route.channels == NULL) {
        return NGX_ERROR;
    }

    for (i = 0; i < n; i++) {

        if (e[i]->type != REDIS_REPLY_ARRAY || e[i]->elements != 9) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "ai relay: unexpected channel in route reply");
            return NGX_ERROR;
        }

        for (j = 0; j < 9; j++) {
            if (ngx_ai_relay_reply_string(r, e[i]->element[j], &f[j])
                == NGX_ERROR)
            {
                return NGX_ERROR;
            }
        }

        ch = &ctx->route.channels[ctx->route.nchannels];

        ch->id = f[0];
        ch->base_url = f[2];
        ch->keys = f[3];
        ch->upstream_model = f[7];
        ch->name = f[8];

        if (f[1].len == 6 && ngx_strncmp(f[1].data, "openai", 6) == 0) {
            ch->provider = NGX_AI_RELAY_PROVIDER_OPENAI;

        } else if (f[1].len == 17
                   && ngx_strncmp(f[1].data, "openai-compatible", 17) == 0)
        {
            /* OpenAI's API, and any other a client speaks: passed on */
            ch->provider = NGX_AI_RELAY_PROVIDER_OPENAI;
            ch->compatible = 1;

        } else if (f[1].len == 9
                   && ngx_strncmp(f[1].data, "anthropic", 9) == 0)
        {
            ch->provider = NGX_AI_RELAY_PROVIDER_ANTHROPIC;

        } else if (f[1].len == 6 && ngx_strncmp(f[1].data, "gemini", 6) == 0)
        {
            ch->provider = NGX_AI_RELAY_PROVIDER_GEMINI;

        } else {
            ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                          "ai relay: channel %V has an unknown provider "
                          "\"%V\", skipped", &f[0], &f[1]);
            continue;
        }

        if (ch->base_url.len == 0) {
            ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                          "ai relay: channel %V has no base_url, skipped",
                          &f[0]);
            continue;
        }

        while (ch->base_url.len
               && ch->base_url.data[ch->base_url.len - 1] == '/')
        {
            ch->base_url.len--;
        }

        v = ngx_atoi(f[4].data[0] == '-' ? f[4].data + 1 : f[4].data,
                     f[4].data[0] == '-' ? f[4].len - 1 : f[4].len);
        ch->priority = (v == NGX_ERROR) ? 0
                       : (f[4].data[0] == '-' ? -v : v);

        v = ngx_atoi(f[5].data, f[5].len);
        ch->weight = (v == NGX_ERROR) ? 1 : (ngx_uint_t) v;

        ch->enabled = (f[6].len == 7
                       && ngx_strncmp(f[6].data, "enabled", 7) == 0)
                      || (f[6].len == 1 && f[6].data[0] == '1');

        if (ch->enabled) {
            ctx->route.nenabled++;
        }

        ctx->route.nchannels++;
    }

    return NGX_OK;
}


/*
 * Why a model does not route, as the route script says it.  The log line
 * is for the operator (the alias chain, or the model at its end); the
 * message is for the client.
 */

typedef struct {
    ngx_str_t     status;
    ngx_uint_t    level;
    const char   *log;       /* one %V: chain or resolved model */
    ngx_uint_t    http;
    const char   *code;
    const char   *message;   /* one %V: chain or the client's model */
    unsigned      chain:1;   /* the %Vs are the alias chain */
} ngx_ai_relay_route_failure_t;


static ngx_ai_relay_route_failure_t  ngx_ai_relay_route_failures[] = {

    { ngx_string("cycle"), NGX_LOG_ERR,
      "ai relay: model alias cycle: %V",
      NGX_HTTP_INTERNAL_SERVER_ERROR, "model_alias_cycle",
      "The model alias chain %V is a cycle; the relay's operator must "
      "fix it.", 1 },

    { ngx_string("deep"), NGX_LOG_ERR,
      "ai relay: model alias chain too long: %V",
      NGX_HTTP_INTERNAL_SERVER_ERROR, "model_alias_too_deep",
      "The model alias chain %V is too long; the relay's operator must "
      "fix it.", 1 },

    { ngx_string("broken"), NGX_LOG_ERR,
      "ai relay: model alias points nowhere: %V",
      NGX_HTTP_INTERNAL_SERVER_ERROR, "model_alias_broken",
      "The model alias chain %V ends at a model that does not exist; "
      "the relay's operator must fix it.", 1 },

    { ngx_string("unpriced"), NGX_LOG_ERR,
      "ai relay: model \"%V\" has no price",
      NGX_HTTP_SERVICE_UNAVAILABLE, "model_not_priced",
      "The model `%V` is not available: it has no price configured.", 0 },

    { ngx_string("nochannel"), NGX_LOG_ERR,
      "ai relay: no enabled channel for model \"%V\"",
      NGX_HTTP_SERVICE_UNAVAILABLE, "service_unavailable",
      "No available channel for model `%V`, please retry later.", 0 },

    { ngx_null_string, 0, NULL, 0, NULL, NULL, 0 }
};


void
ngx_ai_relay_model_not_found(ngx_http_request_t *r, ngx_ai_relay_ctx_t *ctx)
{
    ngx_ai_relay_set_error(r, NGX_HTTP_NOT_FOUND, "model_not_found",
                           "The model `%V` does not exist or you do not "
                           "have access to it.", &ctx->body.model);
}


void
ngx_ai_relay_route_error(ngx_http_request_t *r, ngx_ai_relay_ctx_t *ctx)
{
    ngx_ai_relay_route_failure_t  *f;

    if (ctx->xlate.failed) {
        /* the key is fine: the request cannot go to the model's channel */
        ngx_ai_relay_set_error(r, NGX_HTTP_BAD_REQUEST,
                               "unsupported_parameter", "%V",
                               &ctx->xlate.error);
        return;
    }

    for (f = ngx_ai_relay_route_failures; f->status.len; f++) {
        if (f->status.len == ctx->route.status.len
            && ngx_strncmp(f->status.data, ctx->route.status.data,
                           f->status.len) == 0)
        {
            ngx_log_error(f->level, r->connection->log, 0, f->log,
                          f->chain ? &ctx->route.detail
                                   : &ctx->body.resolved_model);

            ngx_ai_relay_set_error(r, f->http, f->code, f->message,
                                   f->chain ? &ctx->route.detail
                                            : &ctx->body.model);
            return;
        }
    }

    /* "unknown" */

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "ai relay: unknown model \"%V\"", &ctx->body.model);

    ngx_ai_relay_model_not_found(r, ctx);
}


ngx_int_t
ngx_ai_relay_route_apply(ngx_http_request_t *r, ngx_ai_relay_ctx_t *ctx)
{
    ngx_uint_t               i, found;
    ngx_ai_relay_channel_t  *ch;

    if (ctx->task_channel.len) {

        /* a task's poll or remix: the channel that has it, and no other */

        found = 0;

        for (i = 0; i < ctx->route.nchannels; i++) {
            ch = &ctx->route.channels[i];

            if (ch->id.len == ctx->task_channel.len
                && ngx_strncmp(ch->id.data, ctx->task_channel.data,
                               ch->id.len) == 0)
            {
                found = 1;

            } else {
                ch->excluded = 1;
            }
        }

        if (!found) {
            ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                          "ai relay: channel %V of task \"%V\" no longer "
                          "serves model \"%V\"", &ctx->task_channel,
                          &ctx->task_id, &ctx->body.model);
            ngx_ai_relay_set_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                   "service_unavailable",
                                   "The channel of video '%V' is not "
                                   "available.", &ctx->task_id);
            return NGX_ERROR;
        }
    }

    for ( ;; ) {
        ch = ngx_ai_relay_channel_pick(r, ctx);

        if (ch == NULL) {
            ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                          "ai relay: no channel of model \"%V\" may take "
                          "a request now", &ctx->body.resolved_model);

            ctx->route.unavailable = 1;
            ctx->err.retry_after = 1;

            ngx_ai_relay_set_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                   "service_unavailable",
                                   "No upstream channel for the model "
                                   "\"%V\" is available now; they failed "
                                   "recently and are being retried. Please "
                                   "retry shortly.", &ctx->body.model);
            return NGX_ERROR;
        }

        if (ngx_ai_relay_upstream_key(r, ctx, ch) == NGX_OK) {
            break;
        }

        ch->excluded = 1;
    }

    if (ngx_ai_relay_route_use(r, ctx, ch) != NGX_OK) {
        ngx_ai_relay_set_error(r, NGX_HTTP_INTERNAL_SERVER_ERROR, "",
                               "internal error");
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * Failover: the next key of the same channel, then the next channel as
 * route_apply picks it, never a key this request tried.  NGX_DECLINED
 * when none is left (no error is set: the failed answer stands).
 */

ngx_int_t
ngx_ai_relay_route_next(ngx_http_request_t *r, ngx_ai_relay_ctx_t *ctx)
{
    ngx_ai_relay_channel_t  *ch;

    ch = ctx->route.channel;

    if (ch == NULL || ngx_ai_relay_upstream_key(r, ctx, ch) != NGX_OK) {

        if (ch) {
            ch->excluded = 1;
        }

        for ( ;; ) {
            ch = ngx_ai_relay_channel_pick(r, ctx);

            if (ch == NULL) {
                return NGX_DECLINED;
            }

            if (ngx_ai_relay_upstream_key(r, ctx, ch) == NGX_OK) {
                break;
            }

            ch->excluded = 1;
        }
    }

    return ngx_ai_relay_route_use(r, ctx, ch) == NGX_OK ? NGX_OK
                                                        : NGX_DECLINED;
}


/* the request goes to this channel with the key just picked */

static ngx_int_t
ngx_ai_relay_route_use(ngx_http_request_t *r, ngx_ai_relay_ctx_t *ctx,
    ngx_ai_relay_channel_t *ch)
{
    ctx->route.channel = ch;
    ctx->route.reported = 0;
    ctx->route.tries++;
    ctx->body.upstream_model = ch->upstream_model.len
                               ? ch->upstream_model : ctx->body.resolved_model;

    if (ngx_ai_relay_body_rewrite(r, ctx) != NGX_OK
        || ngx_ai_relay_upstream_url(r, ctx, ch) != NGX_OK
        || ngx_ai_relay_upstream_headers(r, ctx, ch) != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_log_debug4(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "ai relay: model \"%V\" -> \"%V\" via channel %V, %V",
                   &ctx->body.model, &ctx->body.upstream_model, &ch->id,
                   &ctx->route.upstream_url);

    return NGX_OK;
}


/*
 * Among the enabled channels with a key left to try whose health lets a
 * request through: the highest priority tier, then a draw by weight.
 */

static ngx_ai_relay_channel_t *
ngx_ai_relay_channel_pick(ngx_http_request_t *r, ngx_ai_relay_ctx_t *ctx)
{
    ngx_int_t                  best;
    ngx_uint_t                 i, total, count, pick, found;
    ngx_ai_relay_channel_t    *ch;
    ngx_ai_relay_main_conf_t  *armcf;

    armcf = ngx_http_get_module_main_conf(r, ngx_ai_relay_module);

    best = NGX_MAX_INT_T_VALUE;
    found = 0;

    for (i = 0; i < ctx->route.nchannels; i++) {
        ch = &ctx->route.channels[i];

        if (!ch->enabled || ch->excluded) {
            continue;
        }

        if (!ch->counted) {
            ch->nkeys = ngx_ai_relay_channel_nkeys(ch);
            ch->counted = 1;
        }

        if (!ngx_ai_relay_health_channel_ready(armcf, ch, ch->nkeys)) {
            ch->excluded = 1;
            continue;
        }

        if (!found || ch->priority > best) {
            best = ch->priority;
            found = 1;
        }
    }

    if (!found) {
        return NULL;
    }

    total = 0;
    count = 0;

    for (i = 0; i < ctx->route.nchannels; i++) {
        ch = &ctx->route.channels[i];

        if (ch->enabled && !ch->excluded && ch->priority == best) {
            total += ch->weight;
            count++;
        }
    }

    /* all weights 0: plain round of the dice */

    pick = (ngx_uint_t) ngx_random() % (total ? total : count);

    for (i = 0; i < ctx->route.nchannels; i++) {
        ch = &ctx->route.channels[i];

        if (!ch->enabled || ch->excluded || ch->priority != best) {
            continue;
        }

        if (total == 0) {
            if (pick-- == 0) {
                return ch;
            }

            continue;
        }

        if (pick < ch->weight) {
            return ch;
        }

        pick -= ch->weight;
    }

    return NULL;
}


/*
 * The channel's keys in rotation, from the next one on: the first not
 * tried by this request whose health lets it through.  NGX_DECLINED when
 * none is left.
 */

static ngx_int_t
ngx_ai_relay_upstream_key(ngx_http_request_t *r, ngx_ai_relay_ctx_t *ctx,
    ngx_ai_relay_channel_t *ch)
{
    u_char                    *p, *last, *start, *end;
    ngx_uint_t                 i, n, want, first;
    ngx_ai_relay_main_conf_t  *armcf;

    armcf = ngx_http_get_module_main_conf(r, ngx_ai_relay_module);

    ngx_str_null(&ctx->route.upstream_key);
    ctx->route.upstream_key_index = 0;

    if (ch->nkeys == 0) {

        /* an upstream that needs no key */

        if (ch->tried_keys & 1
            || !ngx_ai_relay_health_take(armcf, &ch->id, 0))
        {
            return NGX_DECLINED;
        }

        ch->tried_keys |= 1;
        return NGX_OK;
    }

    first = armcf->worker->rotation[ngx_hash_key(ch->id.data, ch->id.len)
                                    % NGX_AI_RELAY_ROTATION_SLOTS]++;

    for (i = 0; i < ch->nkeys; i++) {
        want = (first + i) % ch->nkeys;

        if (want < 32 && (ch->tried_keys & ((uint32_t) 1 << want))) {
            continue;
        }

        if (!ngx_ai_relay_health_take(armcf, &ch->id, want)) {
            continue;
        }

        /* the want-th key: lines, blanks around them and blank lines
         * do not count */

        n = 0;
        last = ch->keys.data + ch->keys.len;

        for (p = ch->keys.data; p < last; p = end + 1) {
            end = ngx_strlchr(p, last, '\n');
            if (end == NULL) {
                end = last;
            }

            for (start = p; start < end && *start <= ' '; start++) {
                /* void */
            }

            for (p = end; p > start && p[-1] <= ' '; p--) {
                /* void */
            }

            if (p == start) {
                continue;
            }

            if (n++ == want) {
                ctx->route.upstream_key.data = start;
                ctx->route.upstream_key.len = p - start;
                ctx->route.upstream_key_index = want;

                if (want < 32) {
                    ch->tried_keys |= (uint32_t) 1 << want;
                }

                return NGX_OK;
            }
        }
    }

    return NGX_DECLINED;
}


static ngx_uint_t
ngx_ai_relay_channel_nkeys(ngx_ai_relay_channel_t *ch)
{
    u_char      *p, *last, *end;
    ngx_uint_t   n, blank;

    n = 0;
    last = ch->keys.data + ch->keys.len;

    for (p = ch->keys.data; p < last; p = end + 1) {
        end = ngx_strlchr(p, last, '\n');
        if (end == NULL) {
            end = last;
        }

        for (blank = 1; p < end; p++) {
            if (*p > ' ') {
                blank = 0;
                break;
            }
        }

        n += !blank;
    }

    return n;
}


/*
 * A path segment that names an API version: "v1", "v1beta", "v4",
 * "v1alpha" ('v', digits, then letters or digits).
 */

static ngx_uint_t
ngx_ai_relay_version_segment(u_char *p, u_char *last)
{
    if (last - p < 2 || p[0] != 'v' || p[1] < '0' || p[1] > '9') {
        return 0;
    }

    for (p += 2; p < last; p++) {
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z'))) {
            return 0;
        }
    }

    return 1;
}


/*
 * Whether the base URL's path names the API version itself
 * (https://generativelanguage.googleapis.com/v1beta/openai,
 * https://api.deepseek.com/v1, .../api/paas/v4): then it is the API
 * root, and the client's path goes after it without its own version
 * segment.  A base URL without a path, or whose path has no version
 * segment (https://api.deepseek.com/anthropic, an nginx location), gets
 * the client's whole path.
 */

static ngx_uint_t
ngx_ai_relay_base_has_version(ngx_str_t *base)
{
    u_char  *p, *last, *seg;

    last = base->data + base->len;

    p = ngx_strlcasestrn(base->data, last, (u_char *) "://", 3 - 1);
    p = (p == NULL) ? base->data : p + 3;

    p = ngx_strlchr(p, last, '/');

    while (p && p < last) {
        seg = p + 1;
        p = ngx_strlchr(seg, last, '/');

        if (ngx_ai_relay_version_segment(seg, p ? p : last)) {
            return 1;
        }
    }

    return 0;
}


/*
 * base_url + the client's path (Gemini: with the upstream model) + the
 * query string without the client's "key" argument; a base URL whose
 * path has a version segment replaces the client's
 */

static ngx_int_t
ngx_ai_relay_upstream_url(ngx_http_request_t *r, ngx_ai_relay_ctx_t *ctx,
    ngx_ai_relay_channel_t *ch)
{
    u_char     *p, *q, *path, *path_end, *args, *args_end, *last, *seg,
               *seg_end;
    size_t      len;
    ngx_uint_t  escape, first;

    path = r->unparsed_uri.data;
    path_end = r->args_start ? r->args_start - 1
                             : r->unparsed_uri.data + r->unparsed_uri.len;

    if (path_end < path || r->unparsed_uri.len == 0
        || r->complex_uri || r->quoted_uri || !r->valid_unparsed_uri)
    {
        /*
         * the path the endpoint was found in, not the client's bytes:
         * "/v1/messages%2Fcount_tokens" or ".../count_tokens#/../../x"
         * must reach the upstream as the endpoint it was priced as
         */

        len = ngx_escape_uri(NULL, r->uri.data, r->uri.len, NGX_ESCAPE_URI);

        path = ngx_pnalloc(r->pool, r->uri.len + 2 * len);
        if (path == NULL) {
            return NGX_ERROR;
        }

        path_end = (u_char *) ngx_escape_uri(path, r->uri.data, r->uri.len,
                                             NGX_ESCAPE_URI);
    }

    args = r->args.data;
    args_end = r->args.data + r->args.len;

    if (ctx->xlate.to) {

        /* the endpoint of the channel's own API, without the client's
         * query string (Anthropic clients add ?beta=true) */

        if (ctx->xlate.to == NGX_AI_RELAY_FMT_ANTHROPIC_MESSAGES) {
            path = (u_char *) "/v1/messages";
            path_end = path + ngx_strlen(path);
            args_end = args;

        } else if (ctx->xlate.to == NGX_AI_RELAY_FMT_GEMINI) {
            len = sizeof("/v1beta/models/:streamGenerateContent") - 1
                  + ctx->body.upstream_model.len
                  + 2 * ngx_escape_uri(NULL, ctx->body.upstream_model.data,
                                       ctx->body.upstream_model.len,
                                       NGX_ESCAPE_URI_COMPONENT);

            path = ngx_pnalloc(r->pool, len);
            if (path == NULL) {
                return NGX_ERROR;
            }

            p = ngx_cpymem(path, "/v1beta/models/",
                           sizeof("/v1beta/models/") - 1);
            p = (u_char *) ngx_escape_uri(p, ctx->body.upstream_model.data,
                                          ctx->body.upstream_model.len,
                                          NGX_ESCAPE_URI_COMPONENT);

            if (ctx->body.stream) {
                p = ngx_cpymem(p, ":streamGenerateContent",
                               sizeof(":streamGenerateContent") - 1);
                args = (u_char *) "alt=sse";

            } else {
                p = ngx_cpymem(p, ":generateContent",
                               sizeof(":generateContent") - 1);
                args = (u_char *) "";
            }

            path_end = p;
            args_end = args + ngx_strlen(args);

        } else {
            path = (u_char *) "/v1/chat/completions";
            path_end = path + ngx_strlen(path);
            args_end = args;
        }
    }

    if (ngx_ai_relay_base_has_version(&ch->base_url)
        && path_end - path > 1 && path[0] == '/')
    {
        p = ngx_strlchr(path + 1, path_end, '/');

        if (p && ngx_ai_relay_version_segment(path + 1, p)) {
            path = p;
        }
    }

    /* Gemini: the model segment of the path */

    seg = NULL;
    seg_end = NULL;
    escape = 0;

    if (ctx->body.gemini_path && !ctx->xlate.to) {
        for (p = path; p + 8 <= path_end; p++) {
            if (ngx_strncmp(p, "/models/", 8) == 0) {
                seg = p + 8;
            }
        }

        if (seg) {
            for (seg_end = seg;
                 seg_end < path_end && *seg_end != ':' && *seg_end != '/';
                 seg_end++)
            { /* void */ }

            escape = 2 * ngx_escape_uri(NULL, ctx->body.upstream_model.data,
                                        ctx->body.upstream_model.len,
                                        NGX_ESCAPE_URI_COMPONENT);
        }
    }

    len = ch->base_url.len + (path_end - path) + 1 + (args_end - args)
          + ctx->body.upstream_model.len + escape;

    ctx->route.upstream_url.data = ngx_pnalloc(r->pool, len);
    if (ctx->route.upstream_url.data == NULL) {
        return NGX_ERROR;
    }

    p = ngx_cpymem(ctx->route.upstream_url.data, ch->base_url.data,
                   ch->base_url.len);

    if (seg) {
        p = ngx_cpymem(p, path, seg - path);
        p = (u_char *) ngx_escape_uri(p, ctx->body.upstream_model.data,
                                      ctx->body.upstream_model.len,
                                      NGX_ESCAPE_URI_COMPONENT);
        p = ngx_cpymem(p, seg_end, path_end - seg_end);

    } else {
        p = ngx_cpymem(p, path, path_end - path);
    }

    /* the query string, minus key=... */

    first = 1;

    for (q = args; q < args_end; q = last + 1) {
        last = ngx_strlchr(q, args_end, '&');
        if (last == NULL) {
            last = args_end;
        }

        if (last - q >= 4 && ngx_strncmp(q, "key=", 4) == 0) {
            continue;
        }

        if (last == q) {
            continue;
        }

        *p++ = first ? '?' : '&';
        first = 0;
        p = ngx_cpymem(p, q, last - q);
    }

    ctx->route.upstream_url.len = p - ctx->route.upstream_url.data;

    return NGX_OK;
}


static ngx_uint_t
ngx_ai_relay_has_header(ngx_http_request_t *r, const char *name)
{
    size_t            len;
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    len = ngx_strlen(name);
    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                return 0;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len == len
            && ngx_strncasecmp(h[i].key.data, (u_char *) name, len) == 0)
        {
            return 1;
        }
    }
}


static ngx_uint_t
ngx_ai_relay_is_key_header(ngx_str_t *name)
{
    switch (name->len) {

    case sizeof("authorization") - 1:
        return ngx_strncasecmp(name->data, (u_char *) "authorization",
                               name->len) == 0;

    case sizeof("x-api-key") - 1:
        return ngx_strncasecmp(name->data, (u_char *) "x-api-key",
                               name->len) == 0;

    case sizeof("x-goog-api-key") - 1:
        return ngx_strncasecmp(name->data, (u_char *) "x-goog-api-key",
                               name->len) == 0;

    case sizeof("accept-encoding") - 1:
        /* the relay reads the response: no compression upstream */
        return ngx_strncasecmp(name->data, (u_char *) "accept-encoding",
                               name->len) == 0;

    default:
        return 0;
    }
}


/*
 * The request headers as the upstream gets them: the client's key
 * headers are gone whatever the proxy configuration.
 */

static ngx_int_t
ngx_ai_relay_upstream_headers(ngx_http_request_t *r,
    ngx_ai_relay_ctx_t *ctx, ngx_ai_relay_channel_t *ch)
{
    ngx_uint_t        i, n;
    ngx_list_t        old;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h, *nh;

    old = r->headers_in.headers;

    n = 0;

    for (part = &old.part; part; part = part->next) {
        n += part->nelts;
    }

    if (ngx_list_init(&r->headers_in.headers, r->pool, n + 1,
                      sizeof(ngx_table_elt_t))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    part = &old.part;
    h = part->elts;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (ngx_ai_relay_is_key_header(&h[i].key)) {
            continue;
        }

        nh = ngx_list_push(&r->headers_in.headers);
        if (nh == NULL) {
            return NGX_ERROR;
        }

        *nh = h[i];
    }

    r->headers_in.authorization = NULL;

    if (ctx->xlate.to == NGX_AI_RELAY_FMT_ANTHROPIC_MESSAGES
        && !ngx_ai_relay_has_header(r, "anthropic-version"))
    {
        /* Anthropic's API wants its version; OpenAI clients send none */

        nh = ngx_list_push(&r->headers_in.headers);
        if (nh == NULL) {
            return NGX_ERROR;
        }

        ngx_memzero(nh, sizeof(ngx_table_elt_t));
        nh->hash = 1;
        ngx_str_set(&nh->key, "anthropic-version");
        ngx_str_set(&nh->value, NGX_AI_RELAY_ANTHROPIC_VERSION);
        nh->lowcase_key = (u_char *) "anthropic-version";
    }

    /* the channel's key is added only to the proxied request (upstream.c) */

    return NGX_OK;
}


/*
 * The route of a model, flattened for the per-worker cache:
 * strings are (size_t length, bytes), numbers are copied as they are.
 */

#define ngx_ai_relay_put_num(p, v)                                            \
    p = ngx_cpymem(p, &(v), sizeof(v))

/* an empty string's data may be NULL: memcpy() must not see it */
#define ngx_ai_relay_put_str(p, s)                                            \
    p = ngx_cpymem(p, &(s).len, sizeof(size_t));                              \
    p = (s).len ? ngx_cpymem(p, (s).data, (s).len) : p


void
ngx_ai_relay_route_save(ngx_http_request_t *r, ngx_ai_relay_ctx_t *ctx)
{
    u_char                    *p, *blob;
    size_t                     size;
    ngx_uint_t                 i, failed;
    ngx_ai_relay_channel_t    *ch;
    ngx_ai_relay_main_conf_t  *armcf;

    armcf = ngx_http_get_module_main_conf(r, ngx_ai_relay_module);

    if (armcf->worker->route_cache.max == 0) {
        return;
    }

    size = 5 * sizeof(size_t) + ctx->route.status.len
           + ctx->route.detail.len + ctx->body.resolved_model.len
           + ctx->route.version.len
           + sizeof(ngx_uint_t) * 3 + sizeof(ngx_ai_relay_price_t);

    for (i = 0; i < ctx->route.nchannels; i++) {
        ch = &ctx->route.channels[i];
        size += 5 * sizeof(size_t) + ch->id.len + ch->base_url.len
                + ch->keys.len + ch->upstream_model.len + ch->name.len
                + sizeof(ngx_uint_t) * 3 + sizeof(ngx_int_t);
    }

    blob = ngx_pnalloc(r->pool, size);
    if (blob == NULL) {
        return;
    }

    failed = ctx->route.failed;

    p = blob;
    ngx_ai_relay_put_num(p, failed);
    ngx_ai_relay_put_str(p, ctx->route.status);
    ngx_ai_relay_put_str(p, ctx->route.detail);
    ngx_ai_relay_put_str(p, ctx->body.resolved_model);
    ngx_ai_relay_put_str(p, ctx->route.version);
    ngx_ai_relay_put_num(p, ctx->route.price);
    ngx_ai_relay_put_num(p, ctx->route.nchannels);
    ngx_ai_relay_put_num(p, ctx->route.nenabled);

    for (i = 0; i < ctx->route.nchannels; i++) {
        ch = &ctx->route.channels[i];
        failed = ch->enabled | (ch->compatible << 1);

        ngx_ai_relay_put_str(p, ch->id);
        ngx_ai_relay_put_str(p, ch->base_url);
        ngx_ai_relay_put_str(p, ch->keys);
        ngx_ai_relay_put_str(p, ch->upstream_model);
        ngx_ai_relay_put_str(p, ch->name);
        ngx_ai_relay_put_num(p, ch->provider);
        ngx_ai_relay_put_num(p, ch->priority);
        ngx_ai_relay_put_num(p, ch->weight);
        ngx_ai_relay_put_num(p, failed);
    }

    (void) ngx_ai_relay_cache_put(&armcf->worker->route_cache,
                                  ctx->body.model.data, ctx->body.model.len,
                                  blob, p - blob);
}


#define ngx_ai_relay_get_num(p, v)                                            \
    ngx_memcpy(&(v), p, sizeof(v)); p += sizeof(v)

#define ngx_ai_relay_get_str(p, s)                                            \
    ngx_memcpy(&(s).len, p, sizeof(size_t)); p += sizeof(size_t);             \
    (s).data = p; p += (s).len


/* NGX_OK: the cached route is in ctx (its strings in the pool) */

ngx_int_t
ngx_ai_relay_route_load(ngx_http_request_t *r, ngx_ai_relay_ctx_t *ctx)
{
    u_char                    *p, *copy;
    ngx_str_t                  blob;
    ngx_uint_t                 i, flag;
    ngx_ai_relay_channel_t    *ch;
    ngx_ai_relay_main_conf_t  *armcf;

    armcf = ngx_http_get_module_main_conf(r, ngx_ai_relay_module);

    if (ngx_ai_relay_cache_get(&armcf->worker->route_cache,
                               ctx->body.model.data, ctx->body.model.len,
                               &blob)
        != NGX_OK)
    {
        return NGX_DECLINED;
    }

    /* the entry may be evicted before this request ends: copy it */

    copy = ngx_pnalloc(r->pool, blob.len);
    if (copy == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(copy, blob.data, blob.len);
    p = copy;

    ngx_ai_relay_get_num(p, flag);
    ctx->route.failed = flag ? 1 : 0;
    ngx_ai_relay_get_str(p, ctx->route.status);
    ngx_ai_relay_get_str(p, ctx->route.detail);
    ngx_ai_relay_get_str(p, ctx->body.resolved_model);
    ngx_ai_relay_get_str(p, ctx->route.version);
    ngx_ai_relay_get_num(p, ctx->route.price);
    ngx_ai_relay_get_num(p, ctx->route.nchannels);
    ngx_ai_relay_get_num(p, ctx->route.nenabled);

    ctx->route.channels = ngx_pcalloc(r->pool,
                                      (ctx->route.nchannels
                                       ? ctx->route.nchannels : 1)
                                      * sizeof(ngx_ai_relay_channel_t));
    if (ctx->route.channels == NULL) {
        return NGX_ERROR;
    }

    for (i = 0; i < ctx->route.nchannels; i++) {
        ch = &ctx->route.channels[i];

        ngx_ai_relay_get_str(p, ch->id);
        ngx_ai_relay_get_str(p, ch->base_url);
        ngx_ai_relay_get_str(p, ch->keys);
        ngx_ai_relay_get_str(p, ch->upstream_model);
        ngx_ai_relay_get_str(p, ch->name);
        ngx_ai_relay_get_num(p, ch->provider);
        ngx_ai_relay_get_num(p, ch->priority);
        ngx_ai_relay_get_num(p, ch->weight);
        ngx_ai_relay_get_num(p, flag);
        ch->enabled = (flag & 1) ? 1 : 0;
        ch->compatible = (flag & 2) ? 1 : 0;
    }

    ctx->route.cached = 1;

    if (!ctx->route.failed) {
        if (ngx_ai_relay_body_xlate_prepare(r, ctx) != NGX_OK) {
            return NGX_ERROR;
        }

        return ngx_ai_relay_reserve_estimate(r, ctx);
    }

    return NGX_OK;
}
