
/*
 * Copyright (C) ngx_ai_relay authors
 */


#ifndef _NGX_AI_RELAY_MODULE_H_INCLUDED_
#define _NGX_AI_RELAY_MODULE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_ai_relay_redis.h"
#include "ngx_ai_relay_cache.h"
#include "ngx_ai_relay_json_scan.h"
#include "ngx_ai_relay_sse.h"
#include "ngx_ai_relay_usage.h"
#include "ngx_ai_relay_price.h"
#include "ngx_ai_relay_breaker.h"
#include "ngx_ai_relay_schema.h"
#include "ngx_ai_relay_xlate.h"
#include "ngx_ai_relay_endpoint.h"
#include "ngx_ai_relay_multipart.h"


#define NGX_AI_RELAY_UNSET          -1

/* API style of a relay location: how keys arrive and how errors look */
#define NGX_AI_RELAY_STYLE_OFF        0
#define NGX_AI_RELAY_STYLE_OPENAI     1
#define NGX_AI_RELAY_STYLE_ANTHROPIC  2
#define NGX_AI_RELAY_STYLE_GEMINI     3

/* provider style of a channel: which header carries its key */
#define NGX_AI_RELAY_PROVIDER_OPENAI     1
#define NGX_AI_RELAY_PROVIDER_ANTHROPIC  2
#define NGX_AI_RELAY_PROVIDER_GEMINI     3

/* where the request handler is */
#define NGX_AI_RELAY_STATE_START      0
#define NGX_AI_RELAY_STATE_BODY       1
#define NGX_AI_RELAY_STATE_LOOKUP     2
#define NGX_AI_RELAY_STATE_RESERVE    3
#define NGX_AI_RELAY_STATE_DONE       4
#define NGX_AI_RELAY_STATE_SENT       5

/* how the usage of a request was found */
#define NGX_AI_RELAY_USAGE_NONE       0
#define NGX_AI_RELAY_USAGE_UPSTREAM   1
#define NGX_AI_RELAY_USAGE_ESTIMATED  2
#define NGX_AI_RELAY_USAGE_REQUEST    3   /* counted in the request */

#define NGX_AI_RELAY_MAX_CMDS         4
#define NGX_AI_RELAY_ROTATION_SLOTS   256


typedef struct ngx_ai_relay_wallet_s  ngx_ai_relay_wallet_t;
typedef struct ngx_ai_relay_main_conf_s  ngx_ai_relay_main_conf_t;
typedef struct ngx_ai_relay_worker_s  ngx_ai_relay_worker_t;
typedef struct ngx_ai_relay_metrics_slot_s  ngx_ai_relay_metrics_slot_t;


/*
 * A worker's run-time state, apart from the configuration: set up by
 * ngx_ai_relay_worker.c on the worker's first need of it, torn down at
 * its exit.  The files below it use the fields and never set it up.
 */

struct ngx_ai_relay_worker_s {
    ngx_ai_relay_redis_t         *redis;         /* the link */
    ngx_flag_t                    initialized;
    ngx_flag_t                    started;       /* set up and usable */
    ngx_queue_t                   journal_queue;
    ngx_uint_t                    journal_n;
    ngx_flag_t                    journal_unwritable;
    ngx_queue_t                   journal_files; /* claimed, not yet done */
    ngx_uint_t                    journal_seq;   /* file names */
    ngx_event_t                   journal_retry; /* error replies: again */
    ngx_msec_t                    journal_backoff;
    ngx_event_t                   journal_scan;  /* files of exited workers */
    time_t                        journal_mtime;
    ngx_queue_t                   release_queue; /* RELEASEs waiting for */
    ngx_uint_t                    release_n;     /* the link to be back */
    ngx_event_t                   release_retry;
    ngx_queue_t                   settle_queue;  /* finished requests */
    ngx_uint_t                    settle_n;
    ngx_event_t                   settle_timer;
    time_t                        settle_epoch;  /* batch ids: pid.epoch.n */
    ngx_uint_t                    settle_seq;
    uint64_t                      id_seed;       /* request ids */
    uint64_t                      id_seq;
    ngx_ai_relay_cache_t          key_cache;     /* sha256 -> user id */
    ngx_ai_relay_cache_t          route_cache;   /* model -> route */
    ngx_ai_relay_cache_t          keyconf_cache; /* sha256 -> AUTH said */
    ngx_ai_relay_wallet_t       **wallets;       /* leases, per user */
    ngx_uint_t                    nwallets;
    ngx_uint_t                    lease_seq;
    ngx_event_t                   lease_timer;
    ngx_flag_t                    settle_zone_full;
    void                        (*on_pending_item)(
                                      ngx_ai_relay_main_conf_t *armcf,
                                      void *p);
    ngx_ai_relay_metrics_slot_t  *metrics_slot;  /* in the metrics zone */
    u_char                        version[32];   /* configuration */
    size_t                        version_len;

    /* upstream key rotation counters, per channel id slot */
    ngx_uint_t                    rotation[NGX_AI_RELAY_ROTATION_SLOTS];
};


struct ngx_ai_relay_main_conf_s {
    ngx_str_t                     addr;          /* ai_relay_redis */
    ngx_str_t                     host;          /* numeric IP, NUL ended */
    ngx_int_t                     port;
    ngx_str_t                     unix_path;     /* NUL ended, or empty */
    ngx_array_t                  *seeds;         /* cluster: slot nodes */
    ngx_flag_t                    cluster;       /* ai_relay_redis ...
                                                    cluster */
    ngx_str_t                     sentinel_name; /* ai_relay_redis_sentinel */
    ngx_array_t                  *sentinels;     /* slot nodes */
    ngx_str_t                     password;      /* ai_relay_redis_password */
    ngx_int_t                     db;            /* ai_relay_redis_db */
    ngx_msec_t                    connect_timeout;
    ngx_msec_t                    timeout;       /* ai_relay_redis_timeout */
    time_t                        reservation_ttl;
    ngx_uint_t                    records_max;   /* ai_relay_records_max */
    ngx_str_t                     journal;       /* ai_relay_journal */
    ngx_uint_t                    journal_max;
    ngx_path_t                   *journal_path;  /* the default's folder */
    size_t                        settle_zone_size;
    ngx_shm_zone_t               *settle_zone;   /* unacknowledged, shared */
    size_t                        health_zone_size;
    ngx_shm_zone_t               *health_zone;   /* breakers, shared */
    ngx_int_t                     health_failures;
    ngx_msec_t                    health_cooldown;
    ngx_msec_t                    health_cooldown_max;
    ngx_ai_relay_breaker_conf_t   breaker;       /* made of the three */
    size_t                        metrics_zone_size;
    ngx_shm_zone_t               *metrics_zone;  /* ai_relay_metrics_zone */
    ngx_flag_t                    metrics;       /* an ai_relay_metrics */

    ngx_flag_t                    enabled;       /* any relay location */
    ngx_int_t                     request_id_index;

    ngx_msec_t                    settle_delay;  /* ai_relay_settle_delay */
    ngx_msec_t                    cache_ttl;     /* ai_relay_cache_ttl */
    ngx_uint_t                    cache_size;    /* ai_relay_cache_size */

    ngx_ai_relay_worker_t        *worker;        /* run-time state */
};


typedef struct {
    ngx_uint_t                    style;         /* ai_relay */
    ngx_int_t                     default_max_tokens;
    ngx_uint_t                    max_alias_depth;
    ngx_flag_t                    inject_usage;  /* ai_relay_stream_usage */
    ngx_flag_t                    allow_unpriced;
    size_t                        max_event;     /* ai_relay_sse_max_event */
    size_t                        response_max;  /* ai_relay_response_max */
    ngx_uint_t                    max_depth;     /* ai_relay_json_max_depth */
    ngx_http_handler_pt           content_handler; /* proxy_pass's */
    ngx_uint_t                    next_upstream; /* NGX_AI_RELAY_NEXT_* */
    ngx_uint_t                    next_upstream_tries;
    ngx_msec_t                    next_upstream_timeout;
    ngx_str_t                     passthrough;   /* its model, or empty */
    ngx_array_t                  *passthrough_paths;   /* of ngx_str_t */
    ngx_uint_t                    passthrough_methods; /* NGX_HTTP_GET... */
    ngx_uint_t                    response_model;/* 1: the client's name */
} ngx_ai_relay_loc_conf_t;


/* one upstream channel able to serve the requested model */
typedef struct {
    ngx_str_t                     id;
    ngx_str_t                     name;          /* the operator's label */
    ngx_uint_t                    provider;
    ngx_str_t                     base_url;
    ngx_str_t                     keys;          /* newline separated */
    ngx_int_t                     priority;
    ngx_uint_t                    weight;
    ngx_str_t                     upstream_model;
    ngx_uint_t                    nkeys;         /* counted when picked */
    uint32_t                      tried_keys;    /* this request's tries */
    unsigned                      enabled:1;
    unsigned                      counted:1;     /* nkeys is set */
    unsigned                      excluded:1;    /* no key left to try,
                                                  * or cannot express the
                                                  * request */
    unsigned                      compatible:1;  /* openai-compatible: no
                                                  * translation */
} ngx_ai_relay_channel_t;


typedef struct ngx_ai_relay_ctx_s  ngx_ai_relay_ctx_t;

/* what a request does once AUTH checked its key (models, balance, tasks) */
typedef void (*ngx_ai_relay_checked_pt)(ngx_http_request_t *r,
    ngx_ai_relay_ctx_t *ctx);


/* the client's key and its owner: never kept in plaintext (auth.c) */
typedef struct {
    ngx_ai_relay_checked_pt       checked;       /* after a "check" */
    ngx_str_t                     hash;          /* 64 hex digits */
    ngx_str_t                     masked;        /* sk-ab...wxyz */
    ngx_str_t                     id;            /* the key's id */
    ngx_str_t                     user_id;
    ngx_str_t                     allowed_models;

    unsigned                      valid:1;       /* looks like a key */
    unsigned                      cached:1;      /* owner from the cache */
    unsigned                      unlimited:1;
} ngx_ai_relay_ctx_key_t;


/* the client's body and what was read of it (body.c) */
typedef struct {
    ngx_str_t                     raw;           /* contiguous */
    ngx_ai_relay_json_scan_t     *scan;
    ngx_str_t                     model;         /* as the client sent it */
    ngx_str_t                     resolved_model;/* end of the alias chain */
    ngx_str_t                     upstream_model;/* what the upstream sees */
    ngx_uint_t                    usage_format;
    int64_t                       max_tokens;    /* -1: not given */
    int64_t                       prompt_estimate;
    int64_t                       images_requested;
    int64_t                       characters;    /* audio/speech input */
    int64_t                       seconds;       /* of a video asked for */
    int64_t                       audio_seconds; /* the file plays at most */
    ngx_str_t                     image_size;
    ngx_str_t                     image_quality;
    ngx_ai_relay_mp_t            *form;          /* multipart (form.c) */
    ngx_chain_t                  *form_bufs;     /* as the client sent it */
    ngx_event_free_peer_pt        form_peer_free; /* upstream.c wraps it */

    unsigned                      stream:1;      /* asked for SSE */
    unsigned                      form_read:1;
    unsigned                      form_split:1;  /* file ranges with gaps */
    unsigned                      gemini_path:1; /* model in the path */
    unsigned                      task_model:1;  /* the remixed task's */
} ngx_ai_relay_ctx_body_t;


/* where the model goes: its price and channel (route.c) */
typedef struct {
    ngx_str_t                     version;       /* of the configuration */
    ngx_str_t                     status;        /* ROUTE's, when not ok */
    ngx_str_t                     detail;
    ngx_ai_relay_price_t          price;
    ngx_ai_relay_channel_t       *channels;
    ngx_uint_t                    nchannels;
    ngx_uint_t                    nenabled;
    ngx_ai_relay_channel_t       *channel;       /* picked */
    ngx_str_t                     upstream_url;
    ngx_str_t                     upstream_key;
    ngx_uint_t                    upstream_key_index;
    ngx_uint_t                    tries;         /* upstream attempts */
    ngx_str_t                     attempts;      /* "ch#key:status," */

    unsigned                      failed:1;      /* does not route */
    unsigned                      cached:1;      /* from the worker cache */
    unsigned                      stale:1;       /* cached, outdated */
    unsigned                      reported:1;    /* health told */
    unsigned                      unavailable:1; /* all keys benched */
    unsigned                      failover:1;    /* redirected to retry */
} ngx_ai_relay_ctx_route_t;


/* the money: reservation, usage found, settlement (billing.c) */
typedef struct {
    int64_t                       reserve;       /* micro-USD */
    ngx_str_t                     lease;         /* admitted against */
    ngx_uint_t                    usage_source;
    ngx_uint_t                    final_status;
    int64_t                       cost;          /* micro-USD */
    int64_t                       prompt_tokens;
    int64_t                       completion_tokens;
    int64_t                       cached_tokens;
    int64_t                       cache_write_tokens;
    int64_t                       reasoning_tokens;
    int64_t                       images;
    int64_t                       characters;    /* audio/speech input */
    int64_t                       seconds;       /* of transcribed audio */
    ngx_str_t                     error;         /* the record's */

    unsigned                      auth_reserve:1;/* AUTH was to reserve */
    unsigned                      reserved_ok:1; /* money is held: settle */
    unsigned                      leased:1;      /* no AUTH was needed */
    unsigned                      lease_given_back:1;
    unsigned                      usage_done:1;
    unsigned                      settled:1;
} ngx_ai_relay_ctx_bill_t;


/* the upstream's answer on its way to the client (filter.c) */
typedef struct {
    ngx_ai_relay_sse_t           *sse;
    ngx_ai_relay_usage_t         *usage;
    u_char                       *copy;          /* non-stream body copy */
    size_t                        copy_len;
    size_t                        copy_cap;
    u_char                       *hold;          /* drop mode: bytes of */
    size_t                        hold_len;      /*   the current event */
    size_t                        hold_cap;
    ngx_chain_t                  *free;
    ngx_chain_t                  *busy;
    ngx_msec_t                    ttft;          /* NGX_AI_RELAY_UNSET */
    off_t                         body_seen;     /* answer bytes so far */

    unsigned                      injected_usage:1;
    unsigned                      header_seen:1;
    unsigned                      upstream_ok:1;
    unsigned                      complete:1;    /* last_buf went out */
    unsigned                      collect:1;
    unsigned                      copy_overflow:1;
    unsigned                      drop:1;
    unsigned                      hold_early:1;
    unsigned                      metered:1;     /* an active stream */
    unsigned                      rename:1;      /* the client's model */
    unsigned                      renamed:1;
} ngx_ai_relay_ctx_stream_t;


/*
 * format translation, when the channel speaks another API than the
 * client (body.c makes the requests, filter.c translates the answer)
 */
typedef struct {
    ngx_str_t                     rest[NGX_AI_RELAY_FMT_GEMINI + 1];
                                                 /* the translated body
                                                  * after its model, per
                                                  * upstream format */
    ngx_uint_t                    to;            /* this attempt's upstream
                                                  * format, 0: as is */
    ngx_str_t                     error;         /* why it cannot be */
    int64_t                       max_out;       /* the most output a
                                                  * translated channel may
                                                  * be asked for, -1 */
    ngx_ai_relay_xlate_sse_t     *sse;
    ngx_chain_t                  *free;

    unsigned                      include_usage:1; /* the client asked */
    unsigned                      failed:1;      /* a 400, after AUTH */
    unsigned                      whole:1;       /* answer held whole */
    unsigned                      broken:1;      /* the stream ended for
                                                  * the client */
    unsigned                      native:1;      /* a channel in play
                                                  * takes the body as is */
    unsigned                      rename:1;      /* ..and names the
                                                  * client's model */
} ngx_ai_relay_ctx_xlate_t;


/* an error of ours, sent instead of proxying or of nginx's page */
typedef struct {
    ngx_uint_t                    status;
    ngx_str_t                     message;
    const char                   *code;
    ngx_int_t                     retry_after;
    ngx_buf_t                    *replace;       /* instead of nginx's page */

    unsigned                      own:1;
    unsigned                      replace_body:1;
    unsigned                      replaced:1;
} ngx_ai_relay_ctx_err_t;


/* a relay request's state: one sub-struct per stage */
struct ngx_ai_relay_ctx_s {
    ngx_uint_t                    state;
    ngx_int_t                     status;        /* handler's final result */
    ngx_str_t                     request_id;
    ngx_msec_t                    start_msec;
    const ngx_ai_relay_endpoint_t *endpoint;     /* what the path asks */
    ngx_str_t                     task_id;       /* videos/{id} (task.c) */
    ngx_str_t                     task_channel;  /* the channel that has it */
    ngx_str_t                     task_from;     /* a remix's source task */
    ngx_ai_relay_checked_pt       task_found;    /* a remix goes on */

    /* pending Redis replies, oldest first, and their deadline (ctx.c) */
    ngx_ai_relay_redis_cmd_t     *cmds[NGX_AI_RELAY_MAX_CMDS];
    ngx_uint_t                    nsent;
    ngx_uint_t                    nreplied;
    ngx_event_t                   timeout;
    ngx_ai_relay_redis_cmd_t     *auth_cmd;      /* may reserve money */

    ngx_ai_relay_ctx_key_t        key;
    ngx_ai_relay_ctx_body_t       body;
    ngx_ai_relay_ctx_route_t      route;
    ngx_ai_relay_ctx_bill_t       bill;
    ngx_ai_relay_ctx_stream_t     stream;
    ngx_ai_relay_ctx_err_t        err;
    ngx_ai_relay_ctx_xlate_t      xlate;

    /* our own answer to GET /v1/models (models.c) */
    ngx_buf_t                    *response;
    ngx_uint_t                    found;

    ngx_str_t                     none;          /* always empty */

    unsigned                      relay:1;
    unsigned                      models_list:1;
    unsigned                      id_sent:1;     /* x-request-id */
    unsigned                      task_kept:1;   /* task_id: a new task */
};


ngx_ai_relay_ctx_t *ngx_ai_relay_get_ctx(ngx_http_request_t *r);
ngx_ai_relay_ctx_t *ngx_ai_relay_find_ctx(ngx_http_request_t *r);

/* the worker's Redis link, or NULL if the worker could not set it up */

static ngx_inline ngx_ai_relay_redis_t *
ngx_ai_relay_redis_link(ngx_ai_relay_main_conf_t *armcf)
{
    return armcf->worker->started ? armcf->worker->redis : NULL;
}


extern ngx_module_t  ngx_ai_relay_module;


#endif /* _NGX_AI_RELAY_MODULE_H_INCLUDED_ */
