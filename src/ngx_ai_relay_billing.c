
/*
 * Copyright (C) ngx_ai_relay authors
 *
 * Money for one request: the reservation estimate before proxying, and
 * the settlement in the LOG phase, which runs exactly once however the
 * request ends (success, upstream error, timeout, client abort, worker
 * shutdown).  A settlement Redis did not acknowledge goes to the journal
 * and is replayed; SETTLE is idempotent by request id.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_ai_relay_module.h"
#include "ngx_ai_relay_billing.h"
#include "ngx_ai_relay_settle.h"
#include "ngx_ai_relay_ctx.h"
#include "ngx_ai_relay_key.h"
#include "ngx_ai_relay_error.h"
#include "ngx_ai_relay_lease.h"
#include "ngx_ai_relay_metrics.h"
#include "ngx_ai_relay_lua.h"
#include "ngx_ai_relay_vtask.h"


static ngx_int_t ngx_ai_relay_settle_request(ngx_http_request_t *r,
    ngx_ai_relay_ctx_t *ctx);
static ngx_int_t ngx_ai_relay_record(ngx_http_request_t *r,
    ngx_ai_relay_ctx_t *ctx, ngx_uint_t status, ngx_msec_t now,
    ngx_msec_t latency, ngx_str_t *err, ngx_str_t *out);
static u_char *ngx_ai_relay_record_id(u_char *p, ngx_str_t *id);
static int64_t ngx_ai_relay_usage_seconds(ngx_http_request_t *r,
    ngx_ai_relay_ctx_t *ctx);
static ngx_int_t ngx_ai_relay_answer_string(ngx_http_request_t *r,
    ngx_ai_relay_ctx_t *ctx, const char *name, ngx_str_t *value);
static void ngx_ai_relay_task_remember(ngx_http_request_t *r,
    ngx_ai_relay_ctx_t *ctx);
static void ngx_ai_relay_task_status(ngx_http_request_t *r,
    ngx_ai_relay_ctx_t *ctx);
static const ngx_ai_relay_vtask_api_t *ngx_ai_relay_task_api(
    ngx_ai_relay_ctx_t *ctx, ngx_uint_t submit);


/* the most this request may cost: prompt estimate plus max_tokens */

ngx_int_t
ngx_ai_relay_reserve_estimate(ngx_http_request_t *r, ngx_ai_relay_ctx_t *ctx)
{
    int64_t                      max_out, images;
    ngx_ai_relay_loc_conf_t     *arlcf;
    ngx_ai_relay_price_usage_t   pu;

    arlcf = ngx_http_get_module_loc_conf(r, ngx_ai_relay_module);

    ngx_memzero(&pu, sizeof(ngx_ai_relay_price_usage_t));

    switch (ctx->endpoint->price) {

    case NGX_AI_RELAY_EP_PRICE_FREE:
        ctx->bill.reserve = 0;
        return NGX_OK;

    case NGX_AI_RELAY_EP_PRICE_REQUEST:
    case NGX_AI_RELAY_EP_PRICE_CHARS:
    case NGX_AI_RELAY_EP_PRICE_TASK:

        /* known exactly before the request goes */

        pu.characters = ctx->body.characters;
        pu.seconds = ctx->body.seconds;
        pu.image_size = (char *) ctx->body.image_size.data;
        pu.image_size_len = ctx->body.image_size.len;
        pu.image_quality = (char *) ctx->body.image_quality.data;
        pu.image_quality_len = ctx->body.image_quality.len;

        if (ctx->endpoint->id == NGX_AI_RELAY_EP_DS_IMAGE) {
            pu.images = ctx->body.images_requested;
        }

        if (ngx_ai_relay_price_cost(&ctx->route.price, &pu, &ctx->bill.reserve)
            != NGX_AI_RELAY_PRICE_OK)
        {
            ctx->bill.reserve = (int64_t) 1 << 61;
        }

        return NGX_OK;

    default:
        break;
    }

    max_out = ctx->body.max_tokens >= 0 ? ctx->body.max_tokens
                                   : arlcf->default_max_tokens;

    /*
     * a translated body may ask for more (or, with no channel taking the
     * body as is, other) output than the client's names: the most any
     * channel in play may be sent (ngx_ai_relay_body_xlate_prepare)
     */

    if (ctx->xlate.max_out >= 0
        && (!ctx->xlate.native || ctx->xlate.max_out > max_out))
    {
        max_out = ctx->xlate.max_out;
    }

    if (ctx->endpoint->price == NGX_AI_RELAY_EP_PRICE_INPUT) {
        max_out = 0;
    }

    if (ngx_ai_relay_price_estimate(&ctx->route.price,
                                    ctx->body.prompt_estimate, max_out,
                                    &ctx->bill.reserve)
        != NGX_AI_RELAY_PRICE_OK)
    {
        ctx->bill.reserve = (int64_t) 1 << 61;
    }

    /*
     * a transcription priced by the second: as long as its file can play
     * (the usage the upstream reports is charged in the end)
     */

    if (ctx->body.audio_seconds > 0 && ctx->route.price.per_second > 0
        && ctx->bill.reserve < ((int64_t) 1 << 61))
    {
        if (ctx->body.audio_seconds
            > (((int64_t) 1 << 61) - ctx->bill.reserve)
              / ctx->route.price.per_second)
        {
            ctx->bill.reserve = (int64_t) 1 << 61;

        } else {
            ctx->bill.reserve += ctx->body.audio_seconds
                                 * ctx->route.price.per_second;
        }
    }

    if (ctx->body.usage_format == NGX_AI_RELAY_FMT_OPENAI_IMAGES) {
        pu.images = ctx->body.images_requested;
        pu.image_size = (char *) ctx->body.image_size.data;
        pu.image_size_len = ctx->body.image_size.len;
        pu.image_quality = (char *) ctx->body.image_quality.data;
        pu.image_quality_len = ctx->body.image_quality.len;

        if (ngx_ai_relay_price_cost(&ctx->route.price, &pu, &images)
            == NGX_AI_RELAY_PRICE_OK)
        {
            ctx->bill.reserve += images;
        }
    }

    return NGX_OK;
}


/*
 * What the request used, and what it costs.  Usage the upstream reported
 * wins; a successful answer without usage (a provider that never sends
 * it, a cut stream, a client gone mid-stream) is estimated from the
 * prompt and the text actually streamed; a failed upstream answer costs
 * nothing unless it reported usage.
 */

void
ngx_ai_relay_usage_final(ngx_http_request_t *r, ngx_ai_relay_ctx_t *ctx)
{
    int64_t                      n;
    ngx_uint_t                   status, images_only;
    ngx_ai_relay_usage_t        *u;
    ngx_ai_relay_price_usage_t   pu;

    u = ctx->stream.usage;

    status = r->err_status ? r->err_status : r->headers_out.status;

    if (ctx->stream.header_seen && !ctx->stream.complete
        && !ctx->err.replace_body)
    {

        /* the answer ended early: who cut it */

        if (r->connection->error) {
            status = 499;
            ngx_str_set(&ctx->err.message,
                        "the client closed the connection mid-response");

        } else {
            ngx_str_set(&ctx->err.message,
                        "the upstream response was cut short");
        }
    }

    if (u) {
        if (ctx->stream.copy_len && !ctx->stream.copy_overflow) {
            (void) ngx_ai_relay_usage_body(u, ctx->stream.copy,
                                           ctx->stream.copy_len);
        }

        ngx_ai_relay_usage_finish(u);
    }

    ngx_memzero(&pu, sizeof(ngx_ai_relay_price_usage_t));

    /* an image answer without token usage still reports its images */

    images_only = (u && !u->found && u->images
                   && ctx->body.usage_format == NGX_AI_RELAY_FMT_OPENAI_IMAGES);

    if (u && (u->found || images_only)) {
        ctx->bill.usage_source = (u->estimated && !images_only)
                            ? NGX_AI_RELAY_USAGE_ESTIMATED
                            : NGX_AI_RELAY_USAGE_UPSTREAM;

        pu.prompt_tokens = u->prompt_tokens;
        pu.cached_tokens = u->cached_tokens;
        pu.cache_write_5m_tokens = u->cache_write_5m_tokens;
        pu.cache_write_1h_tokens = u->cache_write_1h_tokens;
        pu.completion_tokens = images_only ? 0 : u->completion_tokens;
        pu.images = u->images;

        if (pu.prompt_tokens == 0 && u->estimated && !images_only) {
            pu.prompt_tokens = ctx->body.prompt_estimate;
        }

    } else if (ctx->stream.upstream_ok) {
        ctx->bill.usage_source = NGX_AI_RELAY_USAGE_ESTIMATED;

        pu.prompt_tokens = ctx->body.prompt_estimate;
        pu.completion_tokens = u ? u->text_tokens : 0;

        if (u && u->images) {
            pu.images = u->images;
        }

    } else {
        ctx->bill.usage_source = NGX_AI_RELAY_USAGE_NONE;
    }

    if (ctx->body.usage_format == NGX_AI_RELAY_FMT_OPENAI_IMAGES
        && ctx->bill.usage_source != NGX_AI_RELAY_USAGE_NONE
        && pu.images == 0 && ctx->stream.upstream_ok)
    {
        pu.images = ctx->body.images_requested;
    }

    pu.image_size = (char *) ctx->body.image_size.data;
    pu.image_size_len = ctx->body.image_size.len;
    pu.image_quality = (char *) ctx->body.image_quality.data;
    pu.image_quality_len = ctx->body.image_quality.len;

    switch (ctx->endpoint->price) {

    case NGX_AI_RELAY_EP_PRICE_FREE:

        /* count_tokens: recorded, never charged, no tokens counted */

        ngx_memzero(&pu, sizeof(ngx_ai_relay_price_usage_t));
        ctx->bill.usage_source = NGX_AI_RELAY_USAGE_NONE;
        break;

    case NGX_AI_RELAY_EP_PRICE_REQUEST:
    case NGX_AI_RELAY_EP_PRICE_CHARS:
    case NGX_AI_RELAY_EP_PRICE_TASK:

        /* the request itself is the usage, if the upstream served it */

        ngx_memzero(&pu, sizeof(ngx_ai_relay_price_usage_t));

        if (ctx->stream.upstream_ok) {
            pu.characters = ctx->body.characters;
            pu.seconds = ctx->body.seconds;
            pu.image_size = (char *) ctx->body.image_size.data;
            pu.image_size_len = ctx->body.image_size.len;
            pu.image_quality = (char *) ctx->body.image_quality.data;
            pu.image_quality_len = ctx->body.image_quality.len;

            if (ctx->endpoint->id == NGX_AI_RELAY_EP_DS_IMAGE) {
                pu.images = ctx->body.images_requested;
            }

            ctx->bill.usage_source = NGX_AI_RELAY_USAGE_REQUEST;

        } else {
            ctx->bill.usage_source = NGX_AI_RELAY_USAGE_NONE;
        }

        break;

    case NGX_AI_RELAY_EP_PRICE_TOKENS:

        /* a transcription's usage may be its duration: priced by second */

        if ((ctx->endpoint->id == NGX_AI_RELAY_EP_TRANSCRIPTION
             || ctx->endpoint->id == NGX_AI_RELAY_EP_TRANSLATION)
            && ctx->stream.upstream_ok)
        {
            n = ngx_ai_relay_usage_seconds(r, ctx);

            if (n >= 0) {
                ngx_memzero(&pu, sizeof(ngx_ai_relay_price_usage_t));
                pu.seconds = n;
                ctx->bill.usage_source = NGX_AI_RELAY_USAGE_UPSTREAM;
            }
        }

        break;

    default:
        break;
    }

    ctx->bill.characters = pu.characters;
    ctx->bill.seconds = pu.seconds;

    ctx->bill.prompt_tokens = pu.prompt_tokens;
    ctx->bill.completion_tokens = pu.completion_tokens;
    ctx->bill.cached_tokens = pu.cached_tokens;
    ctx->bill.cache_write_tokens = pu.cache_write_5m_tokens
                              + pu.cache_write_1h_tokens;
    ctx->bill.reasoning_tokens = u ? u->reasoning_tokens : 0;
    ctx->bill.images = pu.images;

    if (ctx->bill.usage_source == NGX_AI_RELAY_USAGE_NONE) {
        ctx->bill.cost = 0;

    } else if (ngx_ai_relay_price_cost(&ctx->route.price, &pu, &ctx->bill.cost)
               != NGX_AI_RELAY_PRICE_OK)
    {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "ai relay: cost overflow for request %V",
                      &ctx->request_id);
    }

    if ((status == 0 || status == NGX_HTTP_CLIENT_CLOSED_REQUEST)
        && r->connection->error)
    {
        status = NGX_HTTP_CLIENT_CLOSED_REQUEST;

        if (ctx->err.message.len == 0) {
            ngx_str_set(&ctx->err.message,
                        "the client closed the connection before the "
                        "answer");
        }
    }

    /* ours, or the upstream's error passed through: $ai_relay_error too */

    ctx->bill.error = ctx->err.message;

    if (ctx->bill.error.len == 0 && u && u->has_error) {
        ctx->bill.error.data = u->error;
        ctx->bill.error.len = u->error_len;
    }

    ctx->bill.final_status = status;
    ctx->bill.usage_done = 1;
}


ngx_int_t
ngx_ai_relay_log_handler(ngx_http_request_t *r)
{
    ngx_ai_relay_ctx_t  *ctx;

    ctx = ngx_ai_relay_find_ctx(r);

    if (ctx && r == r->main) {
        ngx_ai_relay_settle_now(r, ctx);

        /*
         * a poll, download or delete of a video task: its status and
         * history, and its money back if it ended without its video
         */

        if (ctx->endpoint
            && ctx->endpoint->body == NGX_AI_RELAY_EP_BODY_TASK
            && ctx->stream.upstream_ok && ctx->stream.header_seen)
        {
            ngx_ai_relay_task_status(r, ctx);
        }

        /* refused before any money was held: counted here, not settled */

        if (!ctx->bill.reserved_ok) {
            ngx_ai_relay_metrics_request(r, ctx);
        }

        ngx_ai_relay_metrics_stream_end(r, ctx);
    }

    return NGX_OK;
}


/*
 * Once per request: when the answer's last bytes are about to leave (the
 * body filter), or in the LOG phase for every other ending.
 */

void
ngx_ai_relay_settle_now(ngx_http_request_t *r, ngx_ai_relay_ctx_t *ctx)
{
    if (!ctx->bill.reserved_ok || ctx->bill.settled) {
        return;
    }

    ctx->bill.settled = 1;

    if (!ctx->bill.usage_done) {
        ngx_ai_relay_usage_final(r, ctx);
    }

    if (ctx->bill.leased) {
        ngx_ai_relay_lease_done(
            ngx_http_get_module_main_conf(r, ngx_ai_relay_module), ctx);
    }

    /*
     * a video task the upstream accepted: its id goes in the request's
     * record, and SETTLE keeps the task with the charge, atomically, from
     * the journal too if Redis is away now
     */

    if (ctx->stream.upstream_ok && ngx_ai_relay_task_api(ctx, 1)) {
        ngx_ai_relay_task_remember(r, ctx);
    }

    if (ngx_ai_relay_settle_request(r, ctx) != NGX_OK) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "ai relay: settlement of request %V could not be "
                      "prepared", &ctx->request_id);
    }

    ngx_ai_relay_metrics_request(r, ctx);
}


/*
 * {"time":..,"request_id":"..",...}: a record is one JSON value in one
 * stream field, which costs Redis a fraction of forty fields.  Ids that
 * are numbers are written as numbers.
 */

static ngx_int_t
ngx_ai_relay_record(ngx_http_request_t *r, ngx_ai_relay_ctx_t *ctx,
    ngx_uint_t status, ngx_msec_t now, ngx_msec_t latency, ngx_str_t *err,
    ngx_str_t *out)
{
    u_char     *p, *q;
    size_t      len;
    ngx_str_t  *channel, *name, path;

    static ngx_str_t  sources[] = {
        ngx_string("none"), ngx_string("upstream"), ngx_string("estimated"),
        ngx_string("request")
    };

    channel = ctx->route.channel ? &ctx->route.channel->id : &ctx->none;
    name = ctx->route.channel ? &ctx->route.channel->name : &ctx->none;

    /* the path the client asked for, before any internal redirect */

    path = r->unparsed_uri;
    q = ngx_strlchr(path.data, path.data + path.len, '?');

    if (q) {
        path.len = q - path.data;
    }

    len = sizeof("{\"time\":,\"request_id\":\"\",\"key_id\":,\"key\":\"\","
                 "\"user\":,\"model\":\"\",\"upstream_model\":\"\","
                 "\"channel\":,\"stream\":,\"status\":,\"error\":\"\","
                 "\"latency_ms\":,\"ttft_ms\":,\"prompt_tokens\":,"
                 "\"cached_tokens\":,\"cache_write_tokens\":,"
                 "\"completion_tokens\":,\"reasoning_tokens\":,\"cost\":,"
                 "\"usage_source\":\"estimated\",\"channel_name\":\"\","
                 "\"path\":\"\",\"host\":\"\",\"client\":\"\","
                 "\"tries\":,\"attempts\":\"#:\",\"images\":,"
                 "\"characters\":,\"seconds\":,\"task\":\"\","
                 "\"task_api\":\"generation\",\"remix_of\":\"\"}")
          + 20 * NGX_INT64_LEN
          + ngx_ai_relay_json_escape_len(ctx->task_id.data, ctx->task_id.len)
          + ngx_ai_relay_json_escape_len(ctx->task_from.data,
                                         ctx->task_from.len)
          + ngx_ai_relay_json_escape_len(ctx->request_id.data,
                                         ctx->request_id.len)
          + 2 + ngx_ai_relay_json_escape_len(ctx->key.id.data,
                                             ctx->key.id.len)
          + ngx_ai_relay_json_escape_len(ctx->key.masked.data,
                                         ctx->key.masked.len)
          + 2 + ngx_ai_relay_json_escape_len(ctx->key.user_id.data,
                                             ctx->key.user_id.len)
          + ngx_ai_relay_json_escape_len(ctx->body.model.data,
                                         ctx->body.model.len)
          + ngx_ai_relay_json_escape_len(ctx->body.upstream_model.data,
                                         ctx->body.upstream_model.len)
          + 2 + ngx_ai_relay_json_escape_len(channel->data, channel->len)
          + ngx_ai_relay_json_escape_len(err->data, err->len)
          + ngx_ai_relay_json_escape_len(name->data, name->len)
          + ngx_ai_relay_json_escape_len(ctx->route.attempts.data,
                                         ctx->route.attempts.len)
          + ngx_ai_relay_json_escape_len(channel->data, channel->len)
          + ngx_ai_relay_json_escape_len(path.data, path.len)
          + ngx_ai_relay_json_escape_len(r->headers_in.server.data,
                                         r->headers_in.server.len)
          + ngx_ai_relay_json_escape_len(r->connection->addr_text.data,
                                         r->connection->addr_text.len);

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    out->data = p;

#define ngx_ai_relay_lit(s)  p = ngx_cpymem(p, s, sizeof(s) - 1)

    p = ngx_sprintf(p, "{\"time\":%M,\"request_id\":\"", now);
    p = ngx_ai_relay_json_escape(p, ctx->request_id.data,
                                 ctx->request_id.len);
    ngx_ai_relay_lit("\",\"key_id\":");
    p = ngx_ai_relay_record_id(p, &ctx->key.id);
    ngx_ai_relay_lit(",\"key\":\"");
    p = ngx_ai_relay_json_escape(p, ctx->key.masked.data,
                                 ctx->key.masked.len);
    ngx_ai_relay_lit("\",\"user\":");
    p = ngx_ai_relay_record_id(p, &ctx->key.user_id);
    ngx_ai_relay_lit(",\"model\":\"");
    p = ngx_ai_relay_json_escape(p, ctx->body.model.data, ctx->body.model.len);
    ngx_ai_relay_lit("\",\"upstream_model\":\"");
    p = ngx_ai_relay_json_escape(p, ctx->body.upstream_model.data,
                                 ctx->body.upstream_model.len);
    ngx_ai_relay_lit("\",\"channel\":");
    p = ngx_ai_relay_record_id(p, channel);
    p = ngx_sprintf(p, ",\"stream\":%d,\"status\":%ui,\"error\":\"",
                    (int) ctx->body.stream, status);
    p = ngx_ai_relay_json_escape(p, err->data, err->len);
    p = ngx_sprintf(p, "\",\"latency_ms\":%M,\"ttft_ms\":", latency);

    if (ctx->stream.ttft == (ngx_msec_t) NGX_AI_RELAY_UNSET) {
        ngx_ai_relay_lit("null");

    } else {
        p = ngx_sprintf(p, "%M", ctx->stream.ttft);
    }

#undef ngx_ai_relay_lit

    p = ngx_sprintf(p, ",\"prompt_tokens\":%L,\"cached_tokens\":%L,"
                    "\"cache_write_tokens\":%L,\"completion_tokens\":%L,"
                    "\"reasoning_tokens\":%L,\"cost\":%L,"
                    "\"usage_source\":\"%V\",\"images\":%L,"
                    "\"characters\":%L,\"seconds\":%L,\"tries\":%ui,"
                    "\"channel_name\":\"",
                    ctx->bill.prompt_tokens, ctx->bill.cached_tokens,
                    ctx->bill.cache_write_tokens, ctx->bill.completion_tokens,
                    ctx->bill.reasoning_tokens, ctx->bill.cost,
                    &sources[ctx->bill.usage_source], ctx->bill.images,
                    ctx->bill.characters, ctx->bill.seconds,
                    ctx->route.tries);
    p = ngx_ai_relay_json_escape(p, name->data, name->len);
    p = ngx_cpymem(p, "\",\"path\":\"", sizeof("\",\"path\":\"") - 1);
    p = ngx_ai_relay_json_escape(p, path.data, path.len);
    p = ngx_cpymem(p, "\",\"host\":\"", sizeof("\",\"host\":\"") - 1);
    p = ngx_ai_relay_json_escape(p, r->headers_in.server.data,
                                 r->headers_in.server.len);
    p = ngx_cpymem(p, "\",\"client\":\"", sizeof("\",\"client\":\"") - 1);
    p = ngx_ai_relay_json_escape(p, r->connection->addr_text.data,
                                 r->connection->addr_text.len);
    p = ngx_cpymem(p, "\",\"attempts\":\"",
                   sizeof("\",\"attempts\":\"") - 1);

    /* the failed tries, then this one: "channel#key:status,..." */

    p = ngx_ai_relay_json_escape(p, ctx->route.attempts.data,
                                 ctx->route.attempts.len);

    if (ctx->route.channel) {
        p = ngx_ai_relay_json_escape(p, channel->data, channel->len);
        p = ngx_sprintf(p, "#%ui:%ui", ctx->route.upstream_key_index,
                        status);
    }

    *p++ = '"';

    /* a video task the upstream accepted: SETTLE keeps it */

    if (ctx->task_kept) {
        p = ngx_cpymem(p, ",\"task\":\"", sizeof(",\"task\":\"") - 1);
        p = ngx_ai_relay_json_escape(p, ctx->task_id.data, ctx->task_id.len);
        p = ngx_sprintf(p, "\",\"task_api\":\"%s\"",
                        ngx_ai_relay_task_api(ctx, 1)->name);

        if (ctx->task_from.len) {
            p = ngx_cpymem(p, ",\"remix_of\":\"",
                           sizeof(",\"remix_of\":\"") - 1);
            p = ngx_ai_relay_json_escape(p, ctx->task_from.data,
                                         ctx->task_from.len);
            *p++ = '"';
        }
    }

    *p++ = '}';

    out->len = p - out->data;

    return NGX_OK;
}


/*
 * {"usage":{"type":"duration","seconds":9.2}} of a transcription: the
 * whole seconds, rounded up, or -1 if the answer has none.
 */

static int64_t
ngx_ai_relay_usage_seconds(ngx_http_request_t *r, ngx_ai_relay_ctx_t *ctx)
{
    int64_t                      n;
    ngx_ai_relay_json_scan_t     scan;
    ngx_ai_relay_json_member_t   members[16], *usage, secs;

    if (ctx->stream.copy_len == 0 || ctx->stream.copy_overflow) {
        return -1;
    }

    ngx_ai_relay_json_scan_init(&scan, members, 16);

    if (ngx_ai_relay_json_scan(&scan, ctx->stream.copy, ctx->stream.copy_len)
        != NGX_AI_RELAY_JSON_OK)
    {
        return -1;
    }

    usage = ngx_ai_relay_json_find(&scan, ctx->stream.copy, "usage", 5);

    if (usage == NULL || usage->type != NGX_AI_RELAY_JSON_OBJECT
        || !ngx_ai_relay_json_object_find(ctx->stream.copy, usage, "seconds",
                                          7, &secs)
        || secs.type != NGX_AI_RELAY_JSON_NUMBER)
    {
        return -1;
    }

    /* digits, then maybe a fraction: any fraction is one more second */

    if (ngx_ai_relay_json_whole(ctx->stream.copy + secs.value_start,
                                secs.value_end - secs.value_start, &n)
        != 0
        || n > NGX_MAX_INT32_VALUE)
    {
        /* a sign or an exponent: not a duration we bill */
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "ai relay: transcription usage seconds not understood");
        return -1;
    }

    return n;
}


/*
 * A string of the (copied) JSON answer, at most 128 bytes: a top-level
 * member, or "outer.inner" one level down
 */

static ngx_int_t
ngx_ai_relay_answer_string(ngx_http_request_t *r, ngx_ai_relay_ctx_t *ctx,
    const char *name, ngx_str_t *value)
{
    size_t                       len;
    const char                  *dot;
    ngx_ai_relay_json_scan_t     scan;
    ngx_ai_relay_json_member_t   members[32], *m, in;

    if (ctx->stream.copy_len == 0 || ctx->stream.copy_overflow) {
        return NGX_DECLINED;
    }

    ngx_ai_relay_json_scan_init(&scan, members, 32);

    if (ngx_ai_relay_json_scan(&scan, ctx->stream.copy, ctx->stream.copy_len)
        != NGX_AI_RELAY_JSON_OK)
    {
        return NGX_DECLINED;
    }

    value->data = ngx_pnalloc(r->pool, 128);
    if (value->data == NULL) {
        return NGX_ERROR;
    }

    dot = ngx_strchr(name, '.');

    if (dot == NULL) {
        m = ngx_ai_relay_json_find(&scan, ctx->stream.copy, name,
                                   ngx_strlen(name));

    } else {
        m = ngx_ai_relay_json_find(&scan, ctx->stream.copy, name, dot - name);

        if (m && m->type == NGX_AI_RELAY_JSON_OBJECT
            && ngx_ai_relay_json_object_find(ctx->stream.copy, m, dot + 1,
                                             ngx_strlen(dot + 1), &in))
        {
            m = &in;

        } else {
            m = NULL;
        }
    }

    if (ngx_ai_relay_json_member_string(ctx->stream.copy, m, value->data,
                                        128, &len)
        != NGX_AI_RELAY_JSON_GET_OK)
    {
        return NGX_DECLINED;
    }

    value->len = len;

    return NGX_OK;
}


/*
 * The task API of the request's endpoint: of a submit (submit: 1; a remix
 * is one of OpenAI's videos), or of a poll; NULL if it is neither
 */

static const ngx_ai_relay_vtask_api_t *
ngx_ai_relay_task_api(ngx_ai_relay_ctx_t *ctx, ngx_uint_t submit)
{
    ngx_uint_t  api;

    if (ctx->endpoint == NULL) {
        return NULL;
    }

    switch (ctx->endpoint->id) {

    case NGX_AI_RELAY_EP_VIDEO_CREATE:
    case NGX_AI_RELAY_EP_VIDEO_REMIX:
        if (!submit) {
            return NULL;
        }

        api = NGX_AI_RELAY_VTASK_VIDEO;
        break;

    case NGX_AI_RELAY_EP_VGEN_CREATE:
        if (!submit) {
            return NULL;
        }

        api = NGX_AI_RELAY_VTASK_GENERATION;
        break;

    case NGX_AI_RELAY_EP_DS_IMAGE:
    case NGX_AI_RELAY_EP_DS_VIDEO:
        if (!submit) {
            return NULL;
        }

        api = NGX_AI_RELAY_VTASK_DASHSCOPE;
        break;

    case NGX_AI_RELAY_EP_VIDEO_GET:
    case NGX_AI_RELAY_EP_VIDEO_CONTENT:
        if (submit) {
            return NULL;
        }

        api = NGX_AI_RELAY_VTASK_VIDEO;
        break;

    case NGX_AI_RELAY_EP_VGEN_GET:
        if (submit) {
            return NULL;
        }

        api = NGX_AI_RELAY_VTASK_GENERATION;
        break;

    case NGX_AI_RELAY_EP_DS_TASK:
        if (submit) {
            return NULL;
        }

        api = NGX_AI_RELAY_VTASK_DASHSCOPE;
        break;

    default:
        return NULL;
    }

    return &ngx_ai_relay_vtask_apis[api];
}


/* an id safe in a key name and a record: letters, digits, '-', '_' */

static ngx_uint_t
ngx_ai_relay_task_id_valid(ngx_str_t *id)
{
    size_t  i;

    if (id->len == 0 || id->len > 128) {
        return 0;
    }

    for (i = 0; i < id->len; i++) {
        if (!((id->data[i] >= 'a' && id->data[i] <= 'z')
              || (id->data[i] >= 'A' && id->data[i] <= 'Z')
              || (id->data[i] >= '0' && id->data[i] <= '9')
              || id->data[i] == '-' || id->data[i] == '_'))
        {
            return 0;
        }
    }

    return 1;
}


/*
 * The upstream accepted a video task: which user, key, channel and model
 * it belongs to, and what it cost, in the user's task hash (30 days).
 * Written at once, so that a poll right after finds it, and again by the
 * SETTLE script that charges it (the id is in the request's record), so
 * that a settlement retried or replayed from the journal keeps it even if
 * this write was lost.  Polls of other users' keys find nothing there.
 */

static void
ngx_ai_relay_task_remember(ngx_http_request_t *r, ngx_ai_relay_ctx_t *ctx)
{
    u_char                          *p;
    size_t                           lens[30], n;
    ngx_str_t                        id, key, cost, charged, now, secs;
    const char                      *argv[30];
    ngx_ai_relay_redis_t            *rds;
    ngx_ai_relay_main_conf_t        *armcf;
    const ngx_ai_relay_vtask_api_t  *api;

    armcf = ngx_http_get_module_main_conf(r, ngx_ai_relay_module);
    rds = ngx_ai_relay_redis_link(armcf);
    api = ngx_ai_relay_task_api(ctx, 1);

    if (ngx_ai_relay_answer_string(r, ctx, api->id, &id) != NGX_OK
        || !ngx_ai_relay_task_id_valid(&id) || ctx->route.channel == NULL)
    {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "ai relay: task of request %V has no id the relay "
                      "can keep (\"%s\")", &ctx->request_id, api->id);
        return;
    }

    ctx->task_id = id;
    ctx->task_kept = 1;

    if (rds == NULL) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "ai relay: video task \"%V\" not kept: no Redis link",
                      &id);
        return;
    }

    key.len = sizeof(NGX_AI_RELAY_RKEY_U("")) - 1 + ctx->key.user_id.len
              + sizeof(NGX_AI_RELAY_RKEY_U_TASK("")) - 1 + id.len;

    p = ngx_pnalloc(r->pool, key.len + 4 * NGX_INT64_LEN);
    if (p == NULL) {
        return;
    }

    key.data = p;
    p = ngx_sprintf(p, NGX_AI_RELAY_RKEY_U("%V") NGX_AI_RELAY_RKEY_U_TASK("%V"),
                    &ctx->key.user_id, &id);

    cost.data = p;
    p = ngx_sprintf(p, "%L", ctx->bill.cost);
    cost.len = p - cost.data;

    charged.data = p;
    p = ngx_sprintf(p, "%L", ctx->key.unlimited ? (int64_t) 0 : ctx->bill.cost);
    charged.len = p - charged.data;

    now.data = p;
    p = ngx_sprintf(p, "%T", ngx_time());
    now.len = p - now.data;

    secs.data = p;
    p = ngx_sprintf(p, "%L", ctx->body.seconds);
    secs.len = p - secs.data;

#define ngx_ai_relay_arg(i, s, l)  argv[i] = (const char *) (s); lens[i] = (l)

    ngx_ai_relay_arg(0, "HSET", 4);
    ngx_ai_relay_arg(1, key.data, key.len);
    ngx_ai_relay_arg(2, "channel", 7);
    ngx_ai_relay_arg(3, ctx->route.channel->id.data, ctx->route.channel->id.len);
    ngx_ai_relay_arg(4, "model", 5);
    ngx_ai_relay_arg(5, ctx->body.model.data, ctx->body.model.len);
    ngx_ai_relay_arg(6, "key", 3);
    ngx_ai_relay_arg(7, ctx->key.hash.data, ctx->key.hash.len);
    ngx_ai_relay_arg(8, "key_id", 6);
    ngx_ai_relay_arg(9, ctx->key.id.data, ctx->key.id.len);
    ngx_ai_relay_arg(10, "cost", 4);
    ngx_ai_relay_arg(11, cost.data, cost.len);
    ngx_ai_relay_arg(12, "charged", 7);
    ngx_ai_relay_arg(13, charged.data, charged.len);
    ngx_ai_relay_arg(14, "request", 7);
    ngx_ai_relay_arg(15, ctx->request_id.data, ctx->request_id.len);
    ngx_ai_relay_arg(16, "created", 7);
    ngx_ai_relay_arg(17, now.data, now.len);
    ngx_ai_relay_arg(18, "api", 3);
    ngx_ai_relay_arg(19, api->name, ngx_strlen(api->name));
    n = 20;

    /* what a remix of it will be priced as */

    if (ctx->body.seconds > 0) {
        ngx_ai_relay_arg(n, "seconds", 7);
        ngx_ai_relay_arg(n + 1, secs.data, secs.len);
        n += 2;
    }

    if (ctx->body.image_size.len) {
        ngx_ai_relay_arg(n, "size", 4);
        ngx_ai_relay_arg(n + 1, ctx->body.image_size.data,
                         ctx->body.image_size.len);
        n += 2;
    }

    if (ctx->body.image_quality.len) {
        ngx_ai_relay_arg(n, "quality", 7);
        ngx_ai_relay_arg(n + 1, ctx->body.image_quality.data,
                         ctx->body.image_quality.len);
        n += 2;
    }

    if (ctx->task_from.len) {
        ngx_ai_relay_arg(n, "remix_of", 8);
        ngx_ai_relay_arg(n + 1, ctx->task_from.data, ctx->task_from.len);
        n += 2;
    }

    (void) ngx_ai_relay_redis_send(rds, NULL, NULL, n, argv, lens);

    ngx_ai_relay_arg(0, "EXPIRE", 6);
    ngx_ai_relay_arg(2, "2592000", 7);

    (void) ngx_ai_relay_redis_send(rds, NULL, NULL, 3, argv, lens);

    /* unfinished: `ai-relay tasks reconcile` polls it if nobody does */

    p = ngx_pnalloc(r->pool, sizeof(NGX_AI_RELAY_RKEY_U("")) - 1
                             + ctx->key.user_id.len
                             + sizeof(NGX_AI_RELAY_RKEY_U_TASKS_OPEN) - 1);
    if (p == NULL) {
        return;
    }

    ngx_ai_relay_arg(0, "ZADD", 4);
    ngx_ai_relay_arg(1, p, ngx_sprintf(p, NGX_AI_RELAY_RKEY_U("%V")
                                       NGX_AI_RELAY_RKEY_U_TASKS_OPEN,
                                       &ctx->key.user_id)
                           - p);
    ngx_ai_relay_arg(2, now.data, now.len);
    ngx_ai_relay_arg(3, id.data, id.len);

    (void) ngx_ai_relay_redis_send(rds, NULL, NULL, 4, argv, lens);

#undef ngx_ai_relay_arg

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "ai relay: video task \"%V\" kept, cost %L", &id,
                   ctx->bill.cost);
}


/*
 * What the upstream said of the key's own video task, to REFUND: a poll's
 * "status" (queued, in_progress, completed, failed, ...), "completed" for
 * a download it served, "deleted" for a delete it accepted (OpenAI's
 * {"id","object":"video.deleted","deleted":true}), or the "status" of a
 * delete that answered with the task.  REFUND records a new status in the
 * task's history, takes an ended task out of the unfinished ones, and
 * gives the charge of one that ended without its video back, once.
 */

static void
ngx_ai_relay_task_status(ngx_http_request_t *r, ngx_ai_relay_ctx_t *ctx)
{
    int                        deleted;
    size_t                     lens[13], n;
    u_char                    *p;
    ngx_str_t                  status, pre;
    ngx_tm_t                   tm;
    const char                *argv[13];
    ngx_ai_relay_redis_t      *rds;
    ngx_ai_relay_main_conf_t  *armcf;
    ngx_ai_relay_json_scan_t   scan;
    ngx_ai_relay_json_member_t members[32];

    if (!ngx_ai_relay_task_id_valid(&ctx->task_id)) {
        return;
    }

    if (ctx->endpoint->id == NGX_AI_RELAY_EP_VIDEO_CONTENT) {
        if (r->method != NGX_HTTP_GET) {
            return;
        }

        ngx_str_set(&status, "completed");

    } else if (ngx_ai_relay_answer_string(r, ctx,
                                          ngx_ai_relay_task_api(ctx, 0)
                                              ->status,
                                          &status)
               == NGX_OK)
    {
        /* in the relay's words: DashScope's SUCCEEDED is completed */

        status.len = ngx_ai_relay_vtask_normal(status.data, status.len,
                                               status.data);
        if (status.len == 0) {
            return;
        }

    } else if (r->method == NGX_HTTP_DELETE) {
        ngx_ai_relay_json_scan_init(&scan, members, 32);

        if (ctx->stream.copy_len == 0 || ctx->stream.copy_overflow
            || ngx_ai_relay_json_scan(&scan, ctx->stream.copy,
                                      ctx->stream.copy_len)
               != NGX_AI_RELAY_JSON_OK
            || ngx_ai_relay_json_get_bool(&scan, ctx->stream.copy, "deleted",
                                          7, &deleted)
               != NGX_AI_RELAY_JSON_GET_OK
            || !deleted)
        {
            return;
        }

        ngx_str_set(&status, "deleted");

    } else {
        return;
    }

    armcf = ngx_http_get_module_main_conf(r, ngx_ai_relay_module);
    rds = ngx_ai_relay_redis_link(armcf);

    if (rds == NULL) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "ai relay: status \"%V\" of video task \"%V\" not "
                      "recorded: no Redis link", &status, &ctx->task_id);
        return;
    }

    pre.len = sizeof(NGX_AI_RELAY_RKEY_U("")) - 1 + ctx->key.user_id.len;

    /* the prefix, then five keys that start with it */

    n = 6 * pre.len + ctx->task_id.len + 64 + 3 * NGX_INT64_LEN
        + sizeof(NGX_AI_RELAY_RKEY_U_TASKS_OPEN)
        + ctx->request_id.len + ctx->task_id.len + status.len
        + ngx_ai_relay_json_escape_len(ctx->body.model.data,
                                       ctx->body.model.len)
        + 256;

    p = ngx_pnalloc(r->pool, n);
    if (p == NULL) {
        return;
    }

    pre.data = p;
    p = ngx_sprintf(p, NGX_AI_RELAY_RKEY_U("%V"), &ctx->key.user_id);

    argv[0] = "EVALSHA";
    lens[0] = 7;
    argv[1] = (const char *) rds->script_sha[NGX_AI_RELAY_SCRIPT_REFUND].data;
    lens[1] = rds->script_sha[NGX_AI_RELAY_SCRIPT_REFUND].len;
    argv[2] = "5";
    lens[2] = 1;

    argv[3] = (const char *) p;
    p = ngx_sprintf(p, "%V" NGX_AI_RELAY_RKEY_U_USER, &pre);
    lens[3] = p - (u_char *) argv[3];

    argv[4] = (const char *) p;
    p = ngx_sprintf(p, "%V" NGX_AI_RELAY_RKEY_U_TASK("%V"), &pre,
                    &ctx->task_id);
    lens[4] = p - (u_char *) argv[4];

    argv[5] = (const char *) p;
    p = ngx_sprintf(p, "%V" NGX_AI_RELAY_RKEY_U_LOG, &pre);
    lens[5] = p - (u_char *) argv[5];

    ngx_gmtime(ngx_time(), &tm);

    argv[6] = (const char *) p;
    p = ngx_sprintf(p, "%V" NGX_AI_RELAY_RKEY_U_STATS("%04d%02d%02d"), &pre,
                    tm.ngx_tm_year, tm.ngx_tm_mon, tm.ngx_tm_mday);
    lens[6] = p - (u_char *) argv[6];

    argv[7] = (const char *) p;
    p = ngx_sprintf(p, "%V" NGX_AI_RELAY_RKEY_U_TASKS_OPEN, &pre);
    lens[7] = p - (u_char *) argv[7];

    argv[8] = (const char *) pre.data;
    lens[8] = pre.len;

    argv[9] = (const char *) p;
    p = ngx_sprintf(p, "%ui", armcf->records_max);
    lens[9] = p - (u_char *) argv[9];

    /* the refund's record, without its cost: REFUND adds it */

    argv[10] = (const char *) p;
    p = ngx_sprintf(p, "{\"time\":%T000,\"request_id\":\"%V\","
                    "\"task\":\"%V\",\"task_status\":\"%V\",\"status\":200,"
                    "\"usage_source\":\"refund\",\"model\":\"",
                    ngx_time(), &ctx->request_id, &ctx->task_id, &status);
    p = ngx_ai_relay_json_escape(p, ctx->body.model.data, ctx->body.model.len);
    p = ngx_cpymem(p, "\",\"cost\":", sizeof("\",\"cost\":") - 1);
    lens[10] = p - (u_char *) argv[10];

    argv[11] = (const char *) status.data;
    lens[11] = status.len;

    argv[12] = (const char *) p;
    p = ngx_sprintf(p, "%T", ngx_time());
    lens[12] = p - (u_char *) argv[12];

    (void) ngx_ai_relay_redis_send(rds, NULL, NULL, 13, argv, lens);

    if (ngx_ai_relay_vtask_end(status.data, status.len)
        == NGX_AI_RELAY_VTASK_LOST)
    {
        ngx_log_error(NGX_LOG_NOTICE, r->connection->log, 0,
                      "ai relay: video task \"%V\" %V upstream: its charge "
                      "is refunded (once) unless it was seen completed",
                      &ctx->task_id, &status);

    } else {
        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "ai relay: video task \"%V\" %V upstream",
                       &ctx->task_id, &status);
    }
}


/* a number if it is one, a JSON string otherwise */

static u_char *
ngx_ai_relay_record_id(u_char *p, ngx_str_t *id)
{
    size_t  i;

    for (i = 0; i < id->len; i++) {
        if (id->data[i] < '0' || id->data[i] > '9') {
            break;
        }
    }

    if (id->len && i == id->len && (id->data[0] != '0' || id->len == 1)) {
        return ngx_cpymem(p, id->data, id->len);
    }

    *p++ = '"';
    p = ngx_ai_relay_json_escape(p, id->data, id->len);
    *p++ = '"';

    return p;
}


/*
 * The request's part of a settlement: queued in the worker, sent with the
 * other finished requests of its user within ai_relay_settle_delay.
 */

static ngx_int_t
ngx_ai_relay_settle_request(ngx_http_request_t *r, ngx_ai_relay_ctx_t *ctx)
{
    u_char                     *p;
    size_t                      len;
    ngx_str_t                   record, err;
    ngx_uint_t                  status;
    ngx_time_t                 *tp;
    ngx_msec_t                  now, latency;
    ngx_ai_relay_pending_t     *node;
    ngx_ai_relay_settle_item_t *item;
    ngx_ai_relay_main_conf_t   *armcf;

    armcf = ngx_http_get_module_main_conf(r, ngx_ai_relay_module);

    tp = ngx_timeofday();
    now = (ngx_msec_t) (tp->sec * 1000 + tp->msec);
    latency = now - ctx->start_msec;

    status = ctx->bill.final_status;
    err = ctx->bill.error;

    /* the request record: one JSON object, one stream field */

    if (ngx_ai_relay_record(r, ctx, status, now, latency, &err, &record)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_log_debug5(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "ai relay: settle %V: cost %L, prompt %L, "
                   "completion %L, status %ui", &ctx->request_id,
                   ctx->bill.cost, ctx->bill.prompt_tokens,
                   ctx->bill.completion_tokens, status);

    /* one allocation that outlives the request */

    len = sizeof(ngx_ai_relay_settle_item_t) + ctx->key.user_id.len
          + ctx->key.hash.len + ctx->request_id.len + ctx->key.id.len
          + ctx->body.model.len + ctx->bill.lease.len + record.len;

    /* in the shared zone, when it has room: a killed worker loses nothing */

    node = ngx_ai_relay_pending_alloc(armcf, NGX_AI_RELAY_PENDING_ITEM, len);

    if (node) {
        item = (ngx_ai_relay_settle_item_t *) node->data;

    } else {
        item = ngx_alloc(len, r->connection->log);
        if (item == NULL) {
            return NGX_ERROR;
        }
    }

    item->node = node;

    p = (u_char *) (item + 1);

/* an empty string's data may be NULL: memcpy() must not see it */
#define ngx_ai_relay_keep(field, s)                                           \
    item->field.data = p;                                                     \
    item->field.len = (s).len;                                                \
    p = (s).len ? ngx_cpymem(p, (s).data, (s).len) : p

    ngx_ai_relay_keep(user, ctx->key.user_id);
    ngx_ai_relay_keep(key_hash, ctx->key.hash);
    ngx_ai_relay_keep(request_id, ctx->request_id);
    ngx_ai_relay_keep(key_id, ctx->key.id);
    ngx_ai_relay_keep(model, ctx->body.model);
    ngx_ai_relay_keep(lease, ctx->bill.lease);
    ngx_ai_relay_keep(record, record);

#undef ngx_ai_relay_keep

    item->cost = ctx->bill.cost;
    item->prompt_tokens = ctx->bill.prompt_tokens;
    item->completion_tokens = ctx->bill.completion_tokens;
    item->status = status;
    item->key_index = 0;

    if (node) {
        ngx_ai_relay_pending_link(armcf, node, NULL, 0);
    }

    ngx_ai_relay_settle_queue(armcf, item);

    return NGX_OK;
}
