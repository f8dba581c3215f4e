
/*
 * Copyright (C) ngx_ai_relay authors
 *
 * Metrics in Prometheus' text format, kept in a shared memory zone
 * (ai_relay_metrics_zone) that outlives reloads, answered by the content
 * handler of "ai_relay_metrics".
 *
 * Counters are kept per label set, each a node of a hash table in the
 * zone: requests per (model, channel, API style, status), and a series
 * per (model, channel): tokens, cost, failovers, latency and
 * time-to-first-token histograms.  A request updates them under the
 * zone's lock once, and allocates only the first time a label set is
 * seen; when the zone is full, it counts into the "__other__" label set
 * and ai_relay_metrics_overflow_total.
 *
 * What a worker alone changes (its active streams, its Redis link's
 * counters) is in a slot of its own in the zone, claimed at its start:
 * a slot whose worker is gone (a reload, a crash, SIGKILL) is folded
 * into the totals (counters) or dropped (its streams) when the next
 * worker starts or the next scrape comes, so nothing a dead worker held
 * stays counted.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_ai_relay_module.h"
#include "ngx_ai_relay_shm.h"
#include "ngx_ai_relay_metrics.h"
#include "ngx_ai_relay_pending.h"
#include "ngx_ai_relay_health.h"
#include "ngx_ai_relay_prom.h"


#define NGX_AI_RELAY_METRICS_HASH       1024   /* buckets */
#define NGX_AI_RELAY_METRICS_SLOTS      256    /* workers, old and new */
#define NGX_AI_RELAY_METRICS_LABEL_MAX  255    /* longer: "__other__" */

#define NGX_AI_RELAY_METRICS_REQUESTS   0      /* node kinds */
#define NGX_AI_RELAY_METRICS_SERIES     1


typedef struct ngx_ai_relay_metrics_node_s  ngx_ai_relay_metrics_node_t;


typedef struct {
    uint64_t                      prompt_tokens;
    uint64_t                      completion_tokens;
    uint64_t                      cached_tokens;
    uint64_t                      reasoning_tokens;
    uint64_t                      cost;          /* micro-USD */
    uint64_t                      failovers;     /* tries after the first */
    ngx_ai_relay_prom_hist_t      latency;       /* ms */
    ngx_ai_relay_prom_hist_t      ttft;          /* ms, streams */
} ngx_ai_relay_metrics_series_t;


struct ngx_ai_relay_metrics_node_s {
    ngx_ai_relay_metrics_node_t    *next;        /* in its hash bucket */
    ngx_ai_relay_metrics_node_t    *link;        /* all, oldest first */
    ngx_ai_relay_metrics_series_t  *series;      /* SERIES only */
    uint64_t                        requests;    /* REQUESTS only */
    uint32_t                        hash;
    uint16_t                        status;
    uint16_t                        size;        /* bytes allocated */
    u_char                          kind;
    u_char                          style;
    u_char                          other;       /* the overflow's */
    u_char                          model_len;
    u_char                          channel_len;
    u_char                          labels[1];   /* model, then channel */
};


struct ngx_ai_relay_metrics_slot_s {
    ngx_pid_t                     pid;           /* 0: free */
    int64_t                       streams;       /* active, now */
    ngx_ai_relay_redis_stats_t    redis;
};


typedef struct {
    ngx_ai_relay_metrics_node_t  *buckets[NGX_AI_RELAY_METRICS_HASH];
    ngx_ai_relay_metrics_node_t  *first;
    ngx_ai_relay_metrics_node_t  *last;
    ngx_uint_t                    nodes;
    size_t                        bytes;         /* of all nodes */
    uint64_t                      overflow;
    ngx_ai_relay_metrics_node_t  *other[2];      /* per kind */
    ngx_ai_relay_redis_stats_t    retired;       /* workers gone */
    ngx_ai_relay_metrics_slot_t   slots[NGX_AI_RELAY_METRICS_SLOTS];
} ngx_ai_relay_metrics_sh_t;


/* a channel key's breaker, copied out of the health zone */
typedef struct {
    ngx_str_t                     channel;
    ngx_uint_t                    key;
    ngx_ai_relay_breaker_t        b;
} ngx_ai_relay_metrics_breaker_t;


/* what a scrape shows, copied out of the zone under its lock */
typedef struct {
    ngx_ai_relay_metrics_node_t **nodes;
    ngx_uint_t                    nnodes;
    uint64_t                      overflow;
    int64_t                       streams;
    ngx_ai_relay_redis_stats_t    redis;
    ngx_uint_t                    pending;
    ngx_array_t                   breakers;
} ngx_ai_relay_metrics_snap_t;


static ngx_int_t ngx_ai_relay_metrics_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static ngx_ai_relay_metrics_node_t *ngx_ai_relay_metrics_node_alloc(
    ngx_slab_pool_t *shpool, ngx_ai_relay_metrics_sh_t *sh, ngx_uint_t kind,
    ngx_str_t *model, ngx_str_t *channel, ngx_uint_t status,
    ngx_uint_t style, uint32_t hash);
static ngx_ai_relay_metrics_node_t *ngx_ai_relay_metrics_node(
    ngx_slab_pool_t *shpool, ngx_ai_relay_metrics_sh_t *sh, ngx_uint_t kind,
    ngx_str_t *model, ngx_str_t *channel, ngx_uint_t status,
    ngx_uint_t style, uint32_t labels);
static void ngx_ai_relay_metrics_reap(ngx_ai_relay_metrics_sh_t *sh);
static void ngx_ai_relay_metrics_fold(ngx_ai_relay_redis_stats_t *dst,
    ngx_ai_relay_redis_stats_t *src);
static ngx_int_t ngx_ai_relay_metrics_snapshot(ngx_http_request_t *r,
    ngx_ai_relay_main_conf_t *armcf, ngx_ai_relay_metrics_snap_t *snap);
static void ngx_ai_relay_metrics_breaker(void *data, ngx_str_t *channel,
    ngx_uint_t key_index, const ngx_ai_relay_breaker_t *b);
static void ngx_ai_relay_metrics_write(ngx_ai_relay_prom_out_t *out,
    ngx_ai_relay_metrics_snap_t *snap);
static size_t ngx_ai_relay_metrics_labels(ngx_ai_relay_metrics_node_t *node,
    ngx_ai_relay_prom_label_t *l, u_char *status);


static ngx_str_t  ngx_ai_relay_metrics_name = ngx_string("ai_relay_metrics");

static ngx_str_t  ngx_ai_relay_metrics_other = ngx_string("__other__");

static const char  *ngx_ai_relay_metrics_styles[] = {
    "none", "openai", "anthropic", "gemini"
};


/* a request's latency and a stream's time to first token, in ms */
static const uint64_t  ngx_ai_relay_metrics_le[] = {
    5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000,
    120000, 300000
};

static const ngx_ai_relay_prom_bounds_t  ngx_ai_relay_metrics_bounds = {
    sizeof(ngx_ai_relay_metrics_le) / sizeof(uint64_t),
    ngx_ai_relay_metrics_le, 3
};


char *
ngx_ai_relay_metrics_conf(ngx_conf_t *cf, ngx_ai_relay_main_conf_t *armcf)
{
    if ((!armcf->enabled && !armcf->metrics)
        || armcf->metrics_zone_size == 0)
    {
        return NGX_CONF_OK;
    }

    armcf->metrics_zone = ngx_ai_relay_shm_add(cf, &ngx_ai_relay_metrics_name,
                                       "ai_relay_metrics_zone",
                                       armcf->metrics_zone_size,
                                       sizeof(ngx_ai_relay_metrics_sh_t)
                                       + 8 * ngx_pagesize,
                                       ngx_ai_relay_metrics_init_zone,
                                       &ngx_ai_relay_module);

    return armcf->metrics_zone ? NGX_CONF_OK : NGX_CONF_ERROR;
}


/* a reload finds the zone of the cycle before: the counters go on */

static ngx_int_t
ngx_ai_relay_metrics_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_slab_pool_t            *shpool;
    ngx_ai_relay_metrics_sh_t  *sh;

    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (ngx_ai_relay_shm_reuse(shm_zone, data) == NGX_OK) {
        return NGX_OK;
    }

    sh = ngx_slab_calloc(shpool, sizeof(ngx_ai_relay_metrics_sh_t));
    if (sh == NULL) {
        return NGX_ERROR;
    }

    shpool->data = sh;
    shm_zone->data = sh;

    /* where requests go when the zone is full */

    sh->other[NGX_AI_RELAY_METRICS_REQUESTS] =
        ngx_ai_relay_metrics_node_alloc(shpool, sh,
                                        NGX_AI_RELAY_METRICS_REQUESTS,
                                        &ngx_ai_relay_metrics_other,
                                        &ngx_ai_relay_metrics_other, 0, 0, 0);
    sh->other[NGX_AI_RELAY_METRICS_SERIES] =
        ngx_ai_relay_metrics_node_alloc(shpool, sh,
                                        NGX_AI_RELAY_METRICS_SERIES,
                                        &ngx_ai_relay_metrics_other,
                                        &ngx_ai_relay_metrics_other, 0, 0, 0);

    if (sh->other[0] == NULL || sh->other[1] == NULL) {
        return NGX_ERROR;
    }

    sh->other[0]->other = 1;
    sh->other[1]->other = 1;

    shpool->log_nomem = 0;

    return NGX_OK;
}


/* a node, linked last (not into a hash bucket); the lock is held */

static ngx_ai_relay_metrics_node_t *
ngx_ai_relay_metrics_node_alloc(ngx_slab_pool_t *shpool,
    ngx_ai_relay_metrics_sh_t *sh, ngx_uint_t kind, ngx_str_t *model,
    ngx_str_t *channel, ngx_uint_t status, ngx_uint_t style, uint32_t hash)
{
    size_t                        size, labels;
    ngx_ai_relay_metrics_node_t  *node;

    /* a multiple of 8: a scrape copies the nodes one after another */

    labels = ngx_align(offsetof(ngx_ai_relay_metrics_node_t, labels)
                       + model->len + channel->len, sizeof(uint64_t));
    size = labels;

    if (kind == NGX_AI_RELAY_METRICS_SERIES) {
        size += sizeof(ngx_ai_relay_metrics_series_t);
    }

    node = ngx_slab_calloc_locked(shpool, size);
    if (node == NULL) {
        return NULL;
    }

    if (kind == NGX_AI_RELAY_METRICS_SERIES) {
        node->series = (ngx_ai_relay_metrics_series_t *)
                           ((u_char *) node + labels);
    }

    node->hash = hash;
    node->status = (uint16_t) status;
    node->size = (uint16_t) size;
    node->kind = (u_char) kind;
    node->style = (u_char) style;
    node->model_len = (u_char) model->len;
    node->channel_len = (u_char) channel->len;

    /* an empty label's data may be NULL: memcpy() must not see it */

    if (model->len) {
        ngx_memcpy(node->labels, model->data, model->len);
    }

    if (channel->len) {
        ngx_memcpy(node->labels + model->len, channel->data, channel->len);
    }

    if (sh->last) {
        sh->last->link = node;

    } else {
        sh->first = node;
    }

    sh->last = node;
    sh->nodes++;
    sh->bytes += size;

    return node;
}


/*
 * The node of a label set: found, made, or the overflow's; lock held.
 * labels: the CRC32 of model and channel, computed once per request.
 */

static ngx_ai_relay_metrics_node_t *
ngx_ai_relay_metrics_node(ngx_slab_pool_t *shpool,
    ngx_ai_relay_metrics_sh_t *sh, ngx_uint_t kind, ngx_str_t *model,
    ngx_str_t *channel, ngx_uint_t status, ngx_uint_t style, uint32_t labels)
{
    uint32_t                      hash;
    ngx_ai_relay_metrics_node_t  *node;

    if (model->len > NGX_AI_RELAY_METRICS_LABEL_MAX
        || channel->len > NGX_AI_RELAY_METRICS_LABEL_MAX)
    {
        goto other;
    }

    hash = labels ^ (uint32_t) ((kind << 24 | style << 16 | status)
                                * 2654435761u);

    for (node = sh->buckets[hash % NGX_AI_RELAY_METRICS_HASH];
         node;
         node = node->next)
    {
        if (node->hash == hash
            && node->kind == kind
            && node->status == status
            && node->style == style
            && node->model_len == model->len
            && node->channel_len == channel->len
            && (model->len == 0
                || ngx_memcmp(node->labels, model->data, model->len) == 0)
            && (channel->len == 0
                || ngx_memcmp(node->labels + model->len, channel->data,
                              channel->len)
                   == 0))
        {
            return node;
        }
    }

    node = ngx_ai_relay_metrics_node_alloc(shpool, sh, kind, model, channel,
                                           status, style, hash);
    if (node == NULL) {
        goto other;
    }

    node->next = sh->buckets[hash % NGX_AI_RELAY_METRICS_HASH];
    sh->buckets[hash % NGX_AI_RELAY_METRICS_HASH] = node;

    return node;

other:

    /* counted once per request: with its request counter */

    if (kind == NGX_AI_RELAY_METRICS_REQUESTS) {
        sh->overflow++;
    }

    return sh->other[kind];
}


/*
 * The worker's slot: its own again (a reload in a single process), a
 * free one, or the slot of a worker gone.
 */

void
ngx_ai_relay_metrics_worker_init(ngx_ai_relay_main_conf_t *armcf)
{
    ngx_uint_t                    i;
    ngx_slab_pool_t              *shpool;
    ngx_ai_relay_metrics_sh_t    *sh;
    ngx_ai_relay_metrics_slot_t  *slot;

    if (armcf->metrics_zone == NULL) {
        return;
    }

    shpool = (ngx_slab_pool_t *) armcf->metrics_zone->shm.addr;
    sh = armcf->metrics_zone->data;

    slot = NULL;

    ngx_shmtx_lock(&shpool->mutex);

    ngx_ai_relay_metrics_reap(sh);

    for (i = 0; i < NGX_AI_RELAY_METRICS_SLOTS; i++) {
        if (sh->slots[i].pid == ngx_pid) {
            slot = &sh->slots[i];
            break;
        }

        if (slot == NULL && sh->slots[i].pid == 0) {
            slot = &sh->slots[i];
        }
    }

    if (slot && slot->pid != ngx_pid) {
        ngx_memzero(slot, sizeof(ngx_ai_relay_metrics_slot_t));
        slot->pid = ngx_pid;
    }

    ngx_shmtx_unlock(&shpool->mutex);

    if (slot == NULL) {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "ai relay: no metrics slot left for this worker, "
                      "its streams and Redis counters are not shown");
        return;
    }

    armcf->worker->metrics_slot = slot;
    armcf->worker->redis->stats = &slot->redis;
}


/* slots of workers gone: counters kept in the totals, gauges dropped */

static void
ngx_ai_relay_metrics_reap(ngx_ai_relay_metrics_sh_t *sh)
{
    ngx_uint_t                    i;
    ngx_ai_relay_metrics_slot_t  *slot;

    for (i = 0; i < NGX_AI_RELAY_METRICS_SLOTS; i++) {
        slot = &sh->slots[i];

        if (slot->pid == 0 || slot->pid == ngx_pid
            || kill(slot->pid, 0) == 0 || ngx_errno != NGX_ESRCH)
        {
            continue;
        }

        ngx_ai_relay_metrics_fold(&sh->retired, &slot->redis);
        ngx_memzero(slot, sizeof(ngx_ai_relay_metrics_slot_t));
    }
}


static void
ngx_ai_relay_metrics_fold(ngx_ai_relay_redis_stats_t *dst,
    ngx_ai_relay_redis_stats_t *src)
{
    dst->errors += src->errors;
    dst->reconnects += src->reconnects;
    ngx_ai_relay_prom_hist_add(&dst->latency, &src->latency);
}


void
ngx_ai_relay_metrics_request(ngx_http_request_t *r, ngx_ai_relay_ctx_t *ctx)
{
    uint32_t                        labels;
    ngx_str_t                       model, channel;
    ngx_uint_t                      status, style;
    ngx_time_t                     *tp;
    ngx_msec_t                      now;
    ngx_slab_pool_t                *shpool;
    ngx_ai_relay_loc_conf_t        *arlcf;
    ngx_ai_relay_main_conf_t       *armcf;
    ngx_ai_relay_metrics_sh_t      *sh;
    ngx_ai_relay_metrics_node_t    *node;
    ngx_ai_relay_metrics_series_t  *s;

    armcf = ngx_http_get_module_main_conf(r, ngx_ai_relay_module);

    if (armcf->metrics_zone == NULL) {
        return;
    }

    arlcf = ngx_http_get_module_loc_conf(r, ngx_ai_relay_module);

    style = arlcf->style < 4 ? arlcf->style : 0;

    if (ctx->bill.usage_done) {
        status = ctx->bill.final_status;

    } else {
        status = r->err_status ? r->err_status : r->headers_out.status;

        if (r->connection->error
            && (status == 0 || status == NGX_HTTP_CLIENT_CLOSED_REQUEST))
        {
            status = NGX_HTTP_CLIENT_CLOSED_REQUEST;
        }
    }

    if (status > 999) {
        status = 0;
    }

    /*
     * a model is named once it routed to a channel: the operator's
     * models only, so clients cannot make label sets up
     */

    if (ctx->route.channel) {
        model = ctx->body.model;
        channel = ctx->route.channel->id;

    } else {
        ngx_str_null(&model);
        ngx_str_null(&channel);
    }

    ngx_crc32_init(labels);
    ngx_crc32_update(&labels, model.data, model.len);
    ngx_crc32_update(&labels, channel.data, channel.len);
    ngx_crc32_final(labels);

    tp = ngx_timeofday();
    now = (ngx_msec_t) (tp->sec * 1000 + tp->msec);

    shpool = (ngx_slab_pool_t *) armcf->metrics_zone->shm.addr;
    sh = armcf->metrics_zone->data;

    ngx_shmtx_lock(&shpool->mutex);

    node = ngx_ai_relay_metrics_node(shpool, sh,
                                     NGX_AI_RELAY_METRICS_REQUESTS, &model,
                                     &channel, status, style, labels);
    node->requests++;

    /* what the upstream was asked for: requests that held money */

    if (ctx->route.channel && ctx->bill.reserved_ok) {
        node = ngx_ai_relay_metrics_node(shpool, sh,
                                         NGX_AI_RELAY_METRICS_SERIES, &model,
                                         &channel, 0, 0, labels);
        s = node->series;

        s->prompt_tokens += ctx->bill.prompt_tokens > 0
                            ? ctx->bill.prompt_tokens : 0;
        s->completion_tokens += ctx->bill.completion_tokens > 0
                                ? ctx->bill.completion_tokens : 0;
        s->cached_tokens += ctx->bill.cached_tokens > 0
                            ? ctx->bill.cached_tokens : 0;
        s->reasoning_tokens += ctx->bill.reasoning_tokens > 0
                               ? ctx->bill.reasoning_tokens : 0;
        s->cost += ctx->bill.cost > 0 ? ctx->bill.cost : 0;

        if (ctx->route.tries > 1) {
            s->failovers += ctx->route.tries - 1;
        }

        ngx_ai_relay_prom_observe(&s->latency, &ngx_ai_relay_metrics_bounds,
                                  now - ctx->start_msec);

        if (ctx->stream.sse
            && ctx->stream.ttft != (ngx_msec_t) NGX_AI_RELAY_UNSET)
        {
            ngx_ai_relay_prom_observe(&s->ttft, &ngx_ai_relay_metrics_bounds,
                                      ctx->stream.ttft);
        }
    }

    ngx_shmtx_unlock(&shpool->mutex);
}


/* only the worker changes its slot: no lock */

void
ngx_ai_relay_metrics_stream_start(ngx_http_request_t *r,
    ngx_ai_relay_ctx_t *ctx)
{
    ngx_ai_relay_main_conf_t  *armcf;

    armcf = ngx_http_get_module_main_conf(r, ngx_ai_relay_module);

    if (armcf->worker->metrics_slot == NULL || ctx->stream.metered) {
        return;
    }

    ctx->stream.metered = 1;
    armcf->worker->metrics_slot->streams++;
}


void
ngx_ai_relay_metrics_stream_end(ngx_http_request_t *r,
    ngx_ai_relay_ctx_t *ctx)
{
    ngx_ai_relay_main_conf_t  *armcf;

    if (!ctx->stream.metered) {
        return;
    }

    armcf = ngx_http_get_module_main_conf(r, ngx_ai_relay_module);

    ctx->stream.metered = 0;
    armcf->worker->metrics_slot->streams--;
}


ngx_int_t
ngx_ai_relay_metrics_handler(ngx_http_request_t *r)
{
    ngx_int_t                     rc;
    ngx_buf_t                    *b;
    ngx_chain_t                   out;
    ngx_ai_relay_prom_out_t       po;
    ngx_ai_relay_main_conf_t     *armcf;
    ngx_ai_relay_metrics_snap_t   snap;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);

    if (rc != NGX_OK) {
        return rc;
    }

    armcf = ngx_http_get_module_main_conf(r, ngx_ai_relay_module);

    if (ngx_ai_relay_metrics_snapshot(r, armcf, &snap) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* measure, then fill */

    po.pos = NULL;
    po.len = 0;
    ngx_ai_relay_metrics_write(&po, &snap);

    b = ngx_create_temp_buf(r->pool, po.len);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    po.pos = b->last;
    po.len = 0;
    ngx_ai_relay_metrics_write(&po, &snap);

    b->last = po.pos;
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    ngx_str_set(&r->headers_out.content_type, "text/plain; version=0.0.4");
    r->headers_out.content_type_len = sizeof("text/plain") - 1;
    r->headers_out.content_type_lowcase = NULL;
    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = b->last - b->pos;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


static ngx_int_t
ngx_ai_relay_metrics_snapshot(ngx_http_request_t *r,
    ngx_ai_relay_main_conf_t *armcf, ngx_ai_relay_metrics_snap_t *snap)
{
    u_char                       *p;
    ngx_uint_t                    i;
    ngx_slab_pool_t              *shpool;
    ngx_ai_relay_metrics_sh_t    *sh;
    ngx_ai_relay_metrics_node_t  *node, *copy;

    ngx_memzero(snap, sizeof(ngx_ai_relay_metrics_snap_t));

    if (ngx_array_init(&snap->breakers, r->pool, 8,
                       sizeof(ngx_ai_relay_metrics_breaker_t))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    snap->pending = ngx_ai_relay_pending_count(armcf);

    if (armcf->enabled) {
        ngx_ai_relay_health_each(armcf, ngx_ai_relay_metrics_breaker, snap);
    }

    if (armcf->metrics_zone == NULL) {
        return NGX_OK;
    }

    shpool = (ngx_slab_pool_t *) armcf->metrics_zone->shm.addr;
    sh = armcf->metrics_zone->data;

    ngx_shmtx_lock(&shpool->mutex);

    ngx_ai_relay_metrics_reap(sh);

    snap->nodes = ngx_palloc(r->pool, sh->nodes * sizeof(void *));
    p = ngx_palloc(r->pool, sh->bytes);

    if (snap->nodes == NULL || p == NULL) {
        ngx_shmtx_unlock(&shpool->mutex);
        return NGX_ERROR;
    }

    for (node = sh->first; node; node = node->link) {
        copy = (ngx_ai_relay_metrics_node_t *) p;
        ngx_memcpy(copy, node, node->size);

        if (node->series) {
            copy->series = (ngx_ai_relay_metrics_series_t *)
                               (p + ((u_char *) node->series
                                     - (u_char *) node));
        }

        snap->nodes[snap->nnodes++] = copy;
        p += node->size;
    }

    snap->overflow = sh->overflow;
    snap->redis = sh->retired;

    for (i = 0; i < NGX_AI_RELAY_METRICS_SLOTS; i++) {
        if (sh->slots[i].pid) {
            snap->streams += sh->slots[i].streams;
            ngx_ai_relay_metrics_fold(&snap->redis, &sh->slots[i].redis);
        }
    }

    ngx_shmtx_unlock(&shpool->mutex);

    return NGX_OK;
}


/* called with the health zone locked: copies only */

static void
ngx_ai_relay_metrics_breaker(void *data, ngx_str_t *channel,
    ngx_uint_t key_index, const ngx_ai_relay_breaker_t *b)
{
    ngx_ai_relay_metrics_snap_t *snap = data;

    ngx_ai_relay_metrics_breaker_t  *mb;

    mb = ngx_array_push(&snap->breakers);
    if (mb == NULL) {
        return;
    }

    mb->channel.data = ngx_pnalloc(snap->breakers.pool, channel->len);
    if (mb->channel.data == NULL) {
        snap->breakers.nelts--;
        return;
    }

    ngx_memcpy(mb->channel.data, channel->data, channel->len);
    mb->channel.len = channel->len;
    mb->key = key_index;
    mb->b = *b;
}


#define ngx_ai_relay_metrics_family(name, type, help)                         \
    ngx_ai_relay_prom_family(out, "ai_relay_" name, type, help)


static void
ngx_ai_relay_metrics_write(ngx_ai_relay_prom_out_t *out,
    ngx_ai_relay_metrics_snap_t *snap)
{
    u_char                           status[NGX_INT_T_LEN];
    u_char                           key[NGX_INT_T_LEN];
    char                             num[NGX_AI_RELAY_PROM_NUM_LEN];
    size_t                           n;
    uint64_t                         v;
    ngx_uint_t                       i, f;
    ngx_ai_relay_prom_label_t        l[4];
    ngx_ai_relay_metrics_node_t     *node;
    ngx_ai_relay_metrics_series_t   *s;
    ngx_ai_relay_metrics_breaker_t  *mb;

    static const struct {
        const char  *name;
        const char  *help;
        size_t       offset;
    } counters[] = {
        { "ai_relay_prompt_tokens_total",
          "Prompt (input) tokens billed, cached ones included.",
          offsetof(ngx_ai_relay_metrics_series_t, prompt_tokens) },
        { "ai_relay_completion_tokens_total",
          "Completion (output) tokens billed, reasoning ones included.",
          offsetof(ngx_ai_relay_metrics_series_t, completion_tokens) },
        { "ai_relay_cached_tokens_total",
          "Prompt tokens read from the provider's cache.",
          offsetof(ngx_ai_relay_metrics_series_t, cached_tokens) },
        { "ai_relay_reasoning_tokens_total",
          "Completion tokens spent on reasoning.",
          offsetof(ngx_ai_relay_metrics_series_t, reasoning_tokens) },
        { "ai_relay_failovers_total",
          "Upstream attempts after the first one of a request.",
          offsetof(ngx_ai_relay_metrics_series_t, failovers) },
    };

    /* in this order: the switch below reads the breaker's fields */

    static const struct {
        const char  *name;
        const char  *type;
        const char  *help;
    } breakers[] = {
        { "ai_relay_breaker_state", "gauge",
          "Circuit breaker of a channel key: 0 closed, 1 open, "
          "2 half-open." },
        { "ai_relay_breaker_consecutive_failures", "gauge",
          "Failures of a channel key in a row." },
        { "ai_relay_breaker_consecutive_opens", "gauge",
          "Openings of a channel key's breaker in a row." },
        { "ai_relay_key_failures_total", "counter",
          "Upstream attempts of a channel key that failed." },
    };

    /* requests */

    ngx_ai_relay_metrics_family("requests_total", "counter",
        "Requests of relay locations by model, channel, API style and "
        "status (model and channel empty before routing).");

    for (i = 0; i < snap->nnodes; i++) {
        node = snap->nodes[i];

        if (node->kind != NGX_AI_RELAY_METRICS_REQUESTS) {
            continue;
        }

        n = ngx_ai_relay_metrics_labels(node, l, status);
        ngx_ai_relay_prom_sample_uint(out, "ai_relay_requests_total", l, n,
                                      node->requests);
    }

    /* per model and channel */

    for (f = 0; f < sizeof(counters) / sizeof(counters[0]); f++) {
        ngx_ai_relay_prom_family(out, counters[f].name, "counter",
                                 counters[f].help);

        for (i = 0; i < snap->nnodes; i++) {
            node = snap->nodes[i];

            if (node->kind != NGX_AI_RELAY_METRICS_SERIES) {
                continue;
            }

            v = *(uint64_t *) ((u_char *) node->series + counters[f].offset);

            n = ngx_ai_relay_metrics_labels(node, l, status);
            ngx_ai_relay_prom_sample_uint(out, counters[f].name, l, n, v);
        }
    }

    ngx_ai_relay_metrics_family("cost_usd_total", "counter",
        "Cost billed to clients, in USD (exact: micro-USD).");

    for (i = 0; i < snap->nnodes; i++) {
        node = snap->nodes[i];

        if (node->kind != NGX_AI_RELAY_METRICS_SERIES) {
            continue;
        }

        n = ngx_ai_relay_metrics_labels(node, l, status);
        (void) ngx_ai_relay_prom_fixed(num, (int64_t) node->series->cost, 6);
        ngx_ai_relay_prom_sample(out, "ai_relay_cost_usd_total", NULL, l, n,
                                 num);
    }

    ngx_ai_relay_metrics_family("upstream_latency_seconds", "histogram",
        "Time from a routed request's arrival to the end of its answer.");

    for (i = 0; i < snap->nnodes; i++) {
        node = snap->nodes[i];

        if (node->kind == NGX_AI_RELAY_METRICS_SERIES) {
            n = ngx_ai_relay_metrics_labels(node, l, status);
            ngx_ai_relay_prom_histogram(out,
                                        "ai_relay_upstream_latency_seconds",
                                        l, n, &node->series->latency,
                                        &ngx_ai_relay_metrics_bounds);
        }
    }

    ngx_ai_relay_metrics_family("time_to_first_token_seconds", "histogram",
        "Time from a streamed request's arrival to its first answer "
        "byte.");

    for (i = 0; i < snap->nnodes; i++) {
        node = snap->nodes[i];

        if (node->kind == NGX_AI_RELAY_METRICS_SERIES) {
            s = node->series;
            n = ngx_ai_relay_metrics_labels(node, l, status);
            ngx_ai_relay_prom_histogram(out,
                                        "ai_relay_time_to_first_token_seconds",
                                        l, n, &s->ttft,
                                        &ngx_ai_relay_metrics_bounds);
        }
    }

    /* now */

    ngx_ai_relay_metrics_family("active_streams", "gauge",
        "SSE answers being sent now.");
    (void) ngx_ai_relay_prom_int(num, snap->streams);
    ngx_ai_relay_prom_sample(out, "ai_relay_active_streams", NULL, NULL, 0,
                             num);

    ngx_ai_relay_metrics_family("settlements_pending", "gauge",
        "Entries of ai_relay_settle_zone: finished requests not yet in a "
        "batch, and batches Redis has not acknowledged.");
    ngx_ai_relay_prom_sample_uint(out, "ai_relay_settlements_pending", NULL,
                                  0, snap->pending);

    /* channel keys */

    mb = snap->breakers.elts;

    for (f = 0; f < sizeof(breakers) / sizeof(breakers[0]); f++) {
        ngx_ai_relay_prom_family(out, breakers[f].name, breakers[f].type,
                                 breakers[f].help);

        for (i = 0; i < snap->breakers.nelts; i++) {
            l[0].name = "channel";
            l[0].value = mb[i].channel.data;
            l[0].len = mb[i].channel.len;
            l[1].name = "key";
            l[1].value = key;
            l[1].len = ngx_sprintf(key, "%ui", mb[i].key) - key;

            switch (f) {

            case 0:
                v = mb[i].b.state;
                break;

            case 1:
                v = mb[i].b.failures;
                break;

            case 2:
                v = mb[i].b.opens;
                break;

            default:
                v = mb[i].b.failed;
            }

            ngx_ai_relay_prom_sample_uint(out, breakers[f].name, l, 2, v);
        }
    }

    /* Redis */

    ngx_ai_relay_metrics_family("redis_errors_total", "counter",
        "Redis commands answered with an error, unanswered (the link "
        "failed) or not sent (no link).");
    ngx_ai_relay_prom_sample_uint(out, "ai_relay_redis_errors_total", NULL, 0,
                                  snap->redis.errors);

    ngx_ai_relay_metrics_family("redis_reconnects_total", "counter",
        "Connection attempts to Redis after a worker's first one.");
    ngx_ai_relay_prom_sample_uint(out, "ai_relay_redis_reconnects_total",
                                  NULL, 0, snap->redis.reconnects);

    ngx_ai_relay_metrics_family("redis_command_duration_seconds",
        "histogram", "Time from a Redis command's sending to its reply "
        "(millisecond resolution).");
    ngx_ai_relay_prom_histogram(out, "ai_relay_redis_command_duration_seconds",
                                NULL, 0, &snap->redis.latency,
                                &ngx_ai_relay_redis_latency_bounds);

    ngx_ai_relay_metrics_family("metrics_overflow_total", "counter",
        "Requests counted in the __other__ label set: "
        "ai_relay_metrics_zone was full.");
    ngx_ai_relay_prom_sample_uint(out, "ai_relay_metrics_overflow_total",
                                  NULL, 0, snap->overflow);
}


/* model, channel; and API style, status for a request counter */

static size_t
ngx_ai_relay_metrics_labels(ngx_ai_relay_metrics_node_t *node,
    ngx_ai_relay_prom_label_t *l, u_char *status)
{
    l[0].name = "model";
    l[0].value = node->labels;
    l[0].len = node->model_len;
    l[1].name = "channel";
    l[1].value = node->labels + node->model_len;
    l[1].len = node->channel_len;

    if (node->kind != NGX_AI_RELAY_METRICS_REQUESTS) {
        return 2;
    }

    l[2].name = "style";
    l[3].name = "status";

    if (node->other) {
        l[2].value = (u_char *) "other";
        l[2].len = 5;
        l[3].value = (u_char *) "other";
        l[3].len = 5;

    } else {
        l[2].value = (u_char *) ngx_ai_relay_metrics_styles[node->style];
        l[2].len = ngx_strlen(l[2].value);
        l[3].value = status;
        l[3].len = ngx_sprintf(status, "%ui", (ngx_uint_t) node->status)
                   - status;
    }

    return 4;
}
