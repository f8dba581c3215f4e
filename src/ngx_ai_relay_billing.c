
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
#include "ngx_ai_relay_journal.h"
#include "ngx_ai_relay_handler.h"
#include "ngx_ai_relay_key.h"
#include "ngx_ai_relay_error.h"
#include "ngx_ai_relay_lease.h"


#define NGX_AI_RELAY_KEY_BATCH_ID_LEN  (3 * NGX_INT64_LEN)


/* a batch's sums, made before SETTLE */
typedef struct {
    int64_t                       cost;
    int64_t                       requests;
    int64_t                       tokens;
} ngx_ai_relay_key_sum_t;


typedef struct {
    ngx_str_t                    *lease;
    ngx_uint_t                    key_index;
    int64_t                       cost;
} ngx_ai_relay_lease_sum_t;


typedef struct {
    ngx_str_t                    *key_id;
    ngx_str_t                    *model;
    int64_t                       requests;
    int64_t                       errors;
    int64_t                       prompt_tokens;
    int64_t                       completion_tokens;
    int64_t                       cost;
} ngx_ai_relay_group_sum_t;


static ngx_str_t *ngx_ai_relay_settle_args(ngx_ai_relay_main_conf_t *armcf,
    ngx_pool_t *pool, ngx_str_t *user, ngx_queue_t *batch,
    ngx_uint_t nitems, ngx_str_t **keys, ngx_uint_t nkeys,
    ngx_uint_t *nargs);
static ngx_int_t ngx_ai_relay_settle(ngx_http_request_t *r,
    ngx_ai_relay_ctx_t *ctx);
static ngx_int_t ngx_ai_relay_record(ngx_http_request_t *r,
    ngx_ai_relay_ctx_t *ctx, ngx_uint_t status, ngx_msec_t now,
    ngx_msec_t latency, ngx_str_t *err, ngx_str_t *out);
static u_char *ngx_ai_relay_record_id(u_char *p, ngx_str_t *id);


ngx_int_t
ngx_ai_relay_price_parse(ngx_http_request_t *r, ngx_ai_relay_ctx_t *ctx,
    redisReply *flat)
{
    off_t         v;
    size_t        i;
    ngx_str_t     k;
    redisReply  **e;

    ngx_ai_relay_price_init(&ctx->price);

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
                          &k, &ctx->resolved_model);
            continue;
        }

#define ngx_ai_relay_is(s)                                                    \
        (k.len == sizeof(s) - 1 && ngx_strncmp(k.data, s, k.len) == 0)

        if (ngx_ai_relay_is("input")) {
            ctx->price.input = v;

        } else if (ngx_ai_relay_is("cached_input")) {
            ctx->price.cached_input = v;

        } else if (ngx_ai_relay_is("cache_write")) {
            ctx->price.cache_write_5m = v;

        } else if (ngx_ai_relay_is("cache_write_1h")) {
            ctx->price.cache_write_1h = v;

        } else if (ngx_ai_relay_is("output")) {
            ctx->price.output = v;

        } else if (ngx_ai_relay_is("request")) {
            ctx->price.per_request = v;

        } else if (ngx_ai_relay_is("image")) {
            ctx->price.per_image = v;

        } else if (k.len > 6 && ngx_strncmp(k.data, "image:", 6) == 0) {
            (void) ngx_ai_relay_price_add_image(&ctx->price,
                                                (char *) k.data + 6,
                                                k.len - 6, v);
        }

#undef ngx_ai_relay_is
    }

    return NGX_OK;
}


/* the most this request may cost: prompt estimate plus max_tokens */

ngx_int_t
ngx_ai_relay_reserve_estimate(ngx_http_request_t *r, ngx_ai_relay_ctx_t *ctx)
{
    int64_t                      max_out, images;
    ngx_ai_relay_loc_conf_t     *arlcf;
    ngx_ai_relay_price_usage_t   pu;

    arlcf = ngx_http_get_module_loc_conf(r, ngx_ai_relay_module);

    max_out = ctx->max_tokens >= 0 ? ctx->max_tokens
                                   : arlcf->default_max_tokens;

    if (ctx->usage_format == NGX_AI_RELAY_FMT_OPENAI_EMBEDDINGS) {
        max_out = 0;
    }

    if (ngx_ai_relay_price_estimate(&ctx->price, ctx->prompt_estimate,
                                    max_out, &ctx->reserve)
        != NGX_AI_RELAY_PRICE_OK)
    {
        ctx->reserve = (int64_t) 1 << 61;
    }

    if (ctx->usage_format == NGX_AI_RELAY_FMT_OPENAI_IMAGES) {
        ngx_memzero(&pu, sizeof(ngx_ai_relay_price_usage_t));

        pu.images = ctx->images_requested;
        pu.image_size = (char *) ctx->image_size.data;
        pu.image_size_len = ctx->image_size.len;
        pu.image_quality = (char *) ctx->image_quality.data;
        pu.image_quality_len = ctx->image_quality.len;

        if (ngx_ai_relay_price_cost(&ctx->price, &pu, &images)
            == NGX_AI_RELAY_PRICE_OK)
        {
            ctx->reserve += images;
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
    ngx_uint_t                   status, images_only;
    ngx_ai_relay_usage_t        *u;
    ngx_ai_relay_price_usage_t   pu;

    u = ctx->usage;

    status = r->err_status ? r->err_status : r->headers_out.status;

    if (ctx->header_seen && !ctx->complete && !ctx->replace_body) {

        /* the answer ended early: who cut it */

        if (r->connection->error) {
            status = 499;
            ngx_str_set(&ctx->err_message,
                        "the client closed the connection mid-response");

        } else {
            ngx_str_set(&ctx->err_message,
                        "the upstream response was cut short");
        }
    }

    if (u) {
        if (ctx->resp_len && !ctx->resp_overflow) {
            (void) ngx_ai_relay_usage_body(u, ctx->resp, ctx->resp_len);
        }

        ngx_ai_relay_usage_finish(u);
    }

    ngx_memzero(&pu, sizeof(ngx_ai_relay_price_usage_t));

    /* an image answer without token usage still reports its images */

    images_only = (u && !u->found && u->images
                   && ctx->usage_format == NGX_AI_RELAY_FMT_OPENAI_IMAGES);

    if (u && (u->found || images_only)) {
        ctx->usage_source = (u->estimated && !images_only)
                            ? NGX_AI_RELAY_USAGE_ESTIMATED
                            : NGX_AI_RELAY_USAGE_UPSTREAM;

        pu.prompt_tokens = u->prompt_tokens;
        pu.cached_tokens = u->cached_tokens;
        pu.cache_write_5m_tokens = u->cache_write_5m_tokens;
        pu.cache_write_1h_tokens = u->cache_write_1h_tokens;
        pu.completion_tokens = images_only ? 0 : u->completion_tokens;
        pu.images = u->images;

        if (pu.prompt_tokens == 0 && u->estimated && !images_only) {
            pu.prompt_tokens = ctx->prompt_estimate;
        }

    } else if (ctx->upstream_ok) {
        ctx->usage_source = NGX_AI_RELAY_USAGE_ESTIMATED;

        pu.prompt_tokens = ctx->prompt_estimate;
        pu.completion_tokens = u ? u->text_tokens : 0;

        if (u && u->images) {
            pu.images = u->images;
        }

    } else {
        ctx->usage_source = NGX_AI_RELAY_USAGE_NONE;
    }

    if (ctx->usage_format == NGX_AI_RELAY_FMT_OPENAI_IMAGES
        && ctx->usage_source != NGX_AI_RELAY_USAGE_NONE
        && pu.images == 0 && ctx->upstream_ok)
    {
        pu.images = ctx->images_requested;
    }

    pu.image_size = (char *) ctx->image_size.data;
    pu.image_size_len = ctx->image_size.len;
    pu.image_quality = (char *) ctx->image_quality.data;
    pu.image_quality_len = ctx->image_quality.len;

    ctx->prompt_tokens = pu.prompt_tokens;
    ctx->completion_tokens = pu.completion_tokens;
    ctx->cached_tokens = pu.cached_tokens;
    ctx->cache_write_tokens = pu.cache_write_5m_tokens
                              + pu.cache_write_1h_tokens;
    ctx->reasoning_tokens = u ? u->reasoning_tokens : 0;

    if (ctx->usage_source == NGX_AI_RELAY_USAGE_NONE) {
        ctx->cost = 0;

    } else if (ngx_ai_relay_price_cost(&ctx->price, &pu, &ctx->cost)
               != NGX_AI_RELAY_PRICE_OK)
    {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "ai relay: cost overflow for request %V",
                      &ctx->request_id);
    }

    ctx->final_status = status;
    ctx->usage_done = 1;
}


ngx_int_t
ngx_ai_relay_log_handler(ngx_http_request_t *r)
{
    ngx_ai_relay_ctx_t  *ctx;

    ctx = ngx_ai_relay_find_ctx(r);

    if (ctx && r == r->main) {
        ngx_ai_relay_settle_now(r, ctx);
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
    if (!ctx->reserved_ok || ctx->settled) {
        return;
    }

    ctx->settled = 1;

    if (!ctx->usage_done) {
        ngx_ai_relay_usage_final(r, ctx);
    }

    if (ctx->leased) {
        ngx_ai_relay_lease_done(
            ngx_http_get_module_main_conf(r, ngx_ai_relay_module), ctx);
    }

    if (ngx_ai_relay_settle(r, ctx) != NGX_OK) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "ai relay: settlement of request %V could not be "
                      "prepared", &ctx->request_id);
    }
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
    u_char     *p;
    size_t      len;
    ngx_str_t  *channel;

    static ngx_str_t  sources[] = {
        ngx_string("none"), ngx_string("upstream"), ngx_string("estimated")
    };

    channel = ctx->channel ? &ctx->channel->id : &ctx->none;

    len = sizeof("{\"time\":,\"request_id\":\"\",\"key_id\":,\"key\":\"\","
                 "\"user\":,\"model\":\"\",\"upstream_model\":\"\","
                 "\"channel\":,\"stream\":,\"status\":,\"error\":\"\","
                 "\"latency_ms\":,\"ttft_ms\":,\"prompt_tokens\":,"
                 "\"cached_tokens\":,\"cache_write_tokens\":,"
                 "\"completion_tokens\":,\"reasoning_tokens\":,\"cost\":,"
                 "\"usage_source\":\"estimated\"}")
          + 14 * NGX_INT64_LEN
          + ngx_ai_relay_json_escape_len(ctx->request_id.data,
                                         ctx->request_id.len)
          + 2 + ngx_ai_relay_json_escape_len(ctx->key_id.data,
                                             ctx->key_id.len)
          + ngx_ai_relay_json_escape_len(ctx->key_masked.data,
                                         ctx->key_masked.len)
          + 2 + ngx_ai_relay_json_escape_len(ctx->user_id.data,
                                             ctx->user_id.len)
          + ngx_ai_relay_json_escape_len(ctx->model.data, ctx->model.len)
          + ngx_ai_relay_json_escape_len(ctx->upstream_model.data,
                                         ctx->upstream_model.len)
          + 2 + ngx_ai_relay_json_escape_len(channel->data, channel->len)
          + ngx_ai_relay_json_escape_len(err->data, err->len);

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
    p = ngx_ai_relay_record_id(p, &ctx->key_id);
    ngx_ai_relay_lit(",\"key\":\"");
    p = ngx_ai_relay_json_escape(p, ctx->key_masked.data,
                                 ctx->key_masked.len);
    ngx_ai_relay_lit("\",\"user\":");
    p = ngx_ai_relay_record_id(p, &ctx->user_id);
    ngx_ai_relay_lit(",\"model\":\"");
    p = ngx_ai_relay_json_escape(p, ctx->model.data, ctx->model.len);
    ngx_ai_relay_lit("\",\"upstream_model\":\"");
    p = ngx_ai_relay_json_escape(p, ctx->upstream_model.data,
                                 ctx->upstream_model.len);
    ngx_ai_relay_lit("\",\"channel\":");
    p = ngx_ai_relay_record_id(p, channel);
    p = ngx_sprintf(p, ",\"stream\":%d,\"status\":%ui,\"error\":\"",
                    (int) ctx->stream, status);
    p = ngx_ai_relay_json_escape(p, err->data, err->len);
    p = ngx_sprintf(p, "\",\"latency_ms\":%M,\"ttft_ms\":", latency);

    if (ctx->ttft == (ngx_msec_t) NGX_AI_RELAY_UNSET) {
        ngx_ai_relay_lit("null");

    } else {
        p = ngx_sprintf(p, "%M", ctx->ttft);
    }

#undef ngx_ai_relay_lit

    p = ngx_sprintf(p, ",\"prompt_tokens\":%L,\"cached_tokens\":%L,"
                    "\"cache_write_tokens\":%L,\"completion_tokens\":%L,"
                    "\"reasoning_tokens\":%L,\"cost\":%L,"
                    "\"usage_source\":\"%V\"}",
                    ctx->prompt_tokens, ctx->cached_tokens,
                    ctx->cache_write_tokens, ctx->completion_tokens,
                    ctx->reasoning_tokens, ctx->cost,
                    &sources[ctx->usage_source]);

    out->len = p - out->data;

    return NGX_OK;
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
ngx_ai_relay_settle(ngx_http_request_t *r, ngx_ai_relay_ctx_t *ctx)
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

    status = ctx->final_status;

    if (status == 0 && r->connection->error) {
        status = 499;
    }

    err = ctx->err_message;

    if (err.len == 0 && ctx->usage && ctx->usage->has_error) {
        err.data = ctx->usage->error;
        err.len = ctx->usage->error_len;
    }

    /* the request record: one JSON object, one stream field */

    if (ngx_ai_relay_record(r, ctx, status, now, latency, &err, &record)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_log_debug5(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "ai relay: settle %V: cost %L, prompt %L, "
                   "completion %L, status %ui", &ctx->request_id,
                   ctx->cost, ctx->prompt_tokens, ctx->completion_tokens,
                   status);

    /* one allocation that outlives the request */

    len = sizeof(ngx_ai_relay_settle_item_t) + ctx->user_id.len
          + ctx->key_hash.len + ctx->request_id.len + ctx->key_id.len
          + ctx->model.len + ctx->lease.len + record.len;

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

#define ngx_ai_relay_keep(field, s)                                           \
    item->field.data = p;                                                     \
    item->field.len = (s).len;                                                \
    p = ngx_cpymem(p, (s).data, (s).len)

    ngx_ai_relay_keep(user, ctx->user_id);
    ngx_ai_relay_keep(key_hash, ctx->key_hash);
    ngx_ai_relay_keep(request_id, ctx->request_id);
    ngx_ai_relay_keep(key_id, ctx->key_id);
    ngx_ai_relay_keep(model, ctx->model);
    ngx_ai_relay_keep(lease, ctx->lease);
    ngx_ai_relay_keep(record, record);

#undef ngx_ai_relay_keep

    item->cost = ctx->cost;
    item->prompt_tokens = ctx->prompt_tokens;
    item->completion_tokens = ctx->completion_tokens;
    item->status = status;
    item->key_index = 0;

    if (node) {
        ngx_ai_relay_pending_link(armcf, node, NULL, 0);
    }

    ngx_ai_relay_settle_queue(armcf, item);

    return NGX_OK;
}


void
ngx_ai_relay_settle_queue(ngx_ai_relay_main_conf_t *armcf,
    ngx_ai_relay_settle_item_t *item)
{
    ngx_queue_insert_tail(&armcf->settle_queue, &item->queue);
    armcf->settle_n++;

    if (armcf->settle_delay == 0
        || armcf->settle_n >= NGX_AI_RELAY_SETTLE_BATCH)
    {
        ngx_ai_relay_settle_flush(armcf);
        return;
    }

    if (!armcf->settle_timer.timer_set) {
        ngx_add_timer(&armcf->settle_timer, armcf->settle_delay);
    }
}


/*
 * A finished request a killed worker left in the shared zone: settled by
 * this worker, in a batch of its own (called with the zone locked).
 */

void
ngx_ai_relay_settle_adopt(ngx_ai_relay_main_conf_t *armcf, void *p)
{
    ngx_ai_relay_pending_t      *node = p;
    ngx_ai_relay_settle_item_t  *item;

    item = (ngx_ai_relay_settle_item_t *) node->data;
    item->node = node;

    ngx_queue_insert_tail(&armcf->settle_queue, &item->queue);
    armcf->settle_n++;

    /* it waited long enough already */

    if (!armcf->settle_timer.timer_set) {
        ngx_add_timer(&armcf->settle_timer, 1);
    }
}


void
ngx_ai_relay_settle_timer_handler(ngx_event_t *ev)
{
    ngx_ai_relay_settle_flush(ev->data);
}


/*
 * Send what waits, one SETTLE per user (and per NGX_AI_RELAY_SETTLE_BATCH
 * requests).  Each becomes a journal entry: kept until Redis answers.
 */

void
ngx_ai_relay_settle_flush(ngx_ai_relay_main_conf_t *armcf)
{
    ngx_str_t                     *args, *keys[NGX_AI_RELAY_SETTLE_BATCH];
    ngx_uint_t                     k, n, nkeys, nitems, ndrop;
    ngx_ai_relay_pending_t        *drop[NGX_AI_RELAY_SETTLE_BATCH];
    ngx_pool_t                    *pool;
    ngx_queue_t                   *q, *next, batch;
    ngx_ai_relay_settle_item_t    *first, *item;
    ngx_ai_relay_journal_entry_t  *entry;

    if (armcf->settle_timer.timer_set) {
        ngx_del_timer(&armcf->settle_timer);
    }

    while (!ngx_queue_empty(&armcf->settle_queue)) {

        first = ngx_queue_data(ngx_queue_head(&armcf->settle_queue),
                               ngx_ai_relay_settle_item_t, queue);

        /* this user's requests, and their distinct keys */

        ngx_queue_init(&batch);
        nitems = 0;
        nkeys = 0;

        for (q = ngx_queue_head(&armcf->settle_queue);
             q != ngx_queue_sentinel(&armcf->settle_queue)
             && nitems < NGX_AI_RELAY_SETTLE_BATCH;
             q = next)
        {
            next = ngx_queue_next(q);
            item = ngx_queue_data(q, ngx_ai_relay_settle_item_t, queue);

            if (item->user.len != first->user.len
                || ngx_strncmp(item->user.data, first->user.data,
                               item->user.len) != 0)
            {
                continue;
            }

            ngx_queue_remove(q);
            ngx_queue_insert_tail(&batch, q);
            armcf->settle_n--;
            nitems++;

            for (k = 0; k < nkeys; k++) {
                if (keys[k]->len == item->key_hash.len
                    && ngx_strncmp(keys[k]->data, item->key_hash.data,
                                   item->key_hash.len) == 0)
                {
                    break;
                }
            }

            item->key_index = k + 1;

            if (k == nkeys) {
                keys[nkeys++] = &item->key_hash;
            }
        }

        pool = ngx_create_pool(4096, ngx_cycle->log);
        if (pool == NULL) {
            goto failed;
        }

        args = ngx_ai_relay_settle_args(armcf, pool, &first->user, &batch,
                                        nitems, keys, nkeys, &n);
        if (args == NULL) {
            ngx_destroy_pool(pool);
            goto failed;
        }

        entry = ngx_ai_relay_journal_entry(ngx_cycle->log, args, n);

        ngx_destroy_pool(pool);

        if (entry == NULL) {
            goto failed;
        }

        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                       "ai relay: settling %ui requests of user %V",
                       nitems, &first->user);

        ndrop = 0;

        while (!ngx_queue_empty(&batch)) {
            q = ngx_queue_head(&batch);
            ngx_queue_remove(q);
            item = ngx_queue_data(q, ngx_ai_relay_settle_item_t, queue);

            if (item->node) {
                /* leaves the zone as the batch joins it */
                drop[ndrop++] = item->node;

            } else {
                ngx_free(item);
            }
        }

        ngx_ai_relay_journal_send_batch(armcf, entry, drop, ndrop);

        continue;

    failed:

        /* out of memory: they wait for the next flush */

        while (!ngx_queue_empty(&batch)) {
            q = ngx_queue_head(&batch);
            ngx_queue_remove(q);
            ngx_queue_insert_tail(&armcf->settle_queue, q);
            armcf->settle_n++;
        }

        if (!armcf->settle_timer.timer_set) {
            ngx_add_timer(&armcf->settle_timer, 100);
        }

        return;
    }
}


/*
 * SETTLE's arguments for a batch (see src/lua/settle.lua): the sums per
 * key, per lease and per key and model are made here, so that Redis does
 * per request no more than refund a reservation and add a record.
 */

static ngx_str_t *
ngx_ai_relay_settle_args(ngx_ai_relay_main_conf_t *armcf, ngx_pool_t *pool,
    ngx_str_t *user, ngx_queue_t *batch, ngx_uint_t nitems, ngx_str_t **keys,
    ngx_uint_t nkeys, ngx_uint_t *nargs)
{
    u_char                      *p;
    ngx_tm_t                     tm;
    ngx_str_t                   *args, pre;
    ngx_uint_t                   i, n, nres, nleases, ngroups;
    ngx_queue_t                 *q;
    ngx_ai_relay_key_sum_t      *ks, *kv;
    ngx_ai_relay_lease_sum_t    *ls, *lv;
    ngx_ai_relay_group_sum_t    *gs, *gv;
    ngx_ai_relay_settle_item_t  *item;

    ks = ngx_pcalloc(pool, nkeys * sizeof(ngx_ai_relay_key_sum_t));
    ls = ngx_pcalloc(pool, nitems * sizeof(ngx_ai_relay_lease_sum_t));
    gs = ngx_pcalloc(pool, nitems * sizeof(ngx_ai_relay_group_sum_t));

    args = ngx_palloc(pool, (16 + 4 * nkeys + 14 * nitems)
                            * sizeof(ngx_str_t));

    p = ngx_pnalloc(pool, 8 * (sizeof("ar:{u}:stats:") + user->len
                               + NGX_AI_RELAY_KEY_BATCH_ID_LEN)
                          + nkeys * (sizeof("ar:{u}:key:") + user->len + 64)
                          + (10 + 3 * nkeys + 9 * nitems) * NGX_INT64_LEN);

    if (ks == NULL || ls == NULL || gs == NULL || args == NULL || p == NULL) {
        return NULL;
    }

    /* the sums; a batch is at most NGX_AI_RELAY_SETTLE_BATCH long */

    nres = 0;
    nleases = 0;
    ngroups = 0;

    for (q = ngx_queue_head(batch);
         q != ngx_queue_sentinel(batch);
         q = ngx_queue_next(q))
    {
        item = ngx_queue_data(q, ngx_ai_relay_settle_item_t, queue);

        kv = &ks[item->key_index - 1];
        kv->cost += item->cost;
        kv->requests++;
        kv->tokens += item->prompt_tokens + item->completion_tokens;

        if (item->lease.len == 0) {
            nres++;

        } else {
            for (i = 0; i < nleases; i++) {
                lv = &ls[i];

                if (lv->key_index == item->key_index
                    && lv->lease->len == item->lease.len
                    && ngx_strncmp(lv->lease->data, item->lease.data,
                                   item->lease.len) == 0)
                {
                    break;
                }
            }

            lv = &ls[i];

            if (i == nleases) {
                lv->lease = &item->lease;
                lv->key_index = item->key_index;
                nleases++;
            }

            lv->cost += item->cost;
        }

        for (i = 0; i < ngroups; i++) {
            gv = &gs[i];

            if (gv->key_id->len == item->key_id.len
                && gv->model->len == item->model.len
                && ngx_strncmp(gv->key_id->data, item->key_id.data,
                               item->key_id.len) == 0
                && ngx_strncmp(gv->model->data, item->model.data,
                               item->model.len) == 0)
            {
                break;
            }
        }

        gv = &gs[i];

        if (i == ngroups) {
            gv->key_id = &item->key_id;
            gv->model = &item->model;
            ngroups++;
        }

        gv->requests++;
        gv->errors += (item->status >= 400);
        gv->prompt_tokens += item->prompt_tokens;
        gv->completion_tokens += item->completion_tokens;
        gv->cost += item->cost;
    }

#define ngx_ai_relay_fmt(...)                                                 \
    args[n].data = p; p = ngx_sprintf(p, __VA_ARGS__);                        \
    args[n].len = p - args[n].data; n++

    n = 0;

    ngx_gmtime(ngx_time(), &tm);

    pre.data = p;
    p = ngx_sprintf(p, "ar:{u%V}:", user);
    pre.len = p - pre.data;

    ngx_ai_relay_fmt("%ui", 5 + nkeys);
    ngx_ai_relay_fmt("%Vuser", &pre);
    ngx_ai_relay_fmt("%Vres", &pre);
    ngx_ai_relay_fmt("%Vdone:%P.%T.%ui", &pre, ngx_pid, armcf->settle_epoch,
                     armcf->settle_seq);
    ngx_ai_relay_fmt("%Vlog", &pre);
    ngx_ai_relay_fmt("%Vstats:%04d%02d%02d", &pre, tm.ngx_tm_year,
                     tm.ngx_tm_mon, tm.ngx_tm_mday);

    for (i = 0; i < nkeys; i++) {
        ngx_ai_relay_fmt("%Vkey:%V", &pre, keys[i]);
    }

    ngx_ai_relay_fmt("%P.%T.%ui", ngx_pid, armcf->settle_epoch,
                     armcf->settle_seq);
    ngx_ai_relay_fmt("%T", ngx_time());
    ngx_ai_relay_fmt("%ui", armcf->records_max);
    ngx_ai_relay_fmt("%ui", nres);
    ngx_ai_relay_fmt("%ui", nleases);
    ngx_ai_relay_fmt("%ui", ngroups);

    armcf->settle_seq++;

    for (i = 0; i < nkeys; i++) {
        ngx_ai_relay_fmt("%L", ks[i].cost);
        ngx_ai_relay_fmt("%L", ks[i].requests);
        ngx_ai_relay_fmt("%L", ks[i].tokens);
    }

    for (q = ngx_queue_head(batch);
         q != ngx_queue_sentinel(batch);
         q = ngx_queue_next(q))
    {
        item = ngx_queue_data(q, ngx_ai_relay_settle_item_t, queue);

        if (item->lease.len == 0) {
            args[n++] = item->request_id;
            ngx_ai_relay_fmt("%ui", item->key_index);
            ngx_ai_relay_fmt("%L", item->cost);
        }
    }

    for (i = 0; i < nleases; i++) {
        args[n++] = *ls[i].lease;
        ngx_ai_relay_fmt("%ui", ls[i].key_index);
        ngx_ai_relay_fmt("%L", ls[i].cost);
    }

    for (i = 0; i < ngroups; i++) {
        args[n++] = *gs[i].key_id;
        args[n++] = *gs[i].model;
        ngx_ai_relay_fmt("%L", gs[i].requests);
        ngx_ai_relay_fmt("%L", gs[i].errors);
        ngx_ai_relay_fmt("%L", gs[i].prompt_tokens);
        ngx_ai_relay_fmt("%L", gs[i].completion_tokens);
        ngx_ai_relay_fmt("%L", gs[i].cost);
    }

#undef ngx_ai_relay_fmt

    for (q = ngx_queue_head(batch);
         q != ngx_queue_sentinel(batch);
         q = ngx_queue_next(q))
    {
        item = ngx_queue_data(q, ngx_ai_relay_settle_item_t, queue);
        args[n++] = item->record;
    }

    *nargs = n;

    return args;
}
