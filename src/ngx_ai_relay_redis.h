
/*
 * Copyright (C) ngx_ai_relay authors
 */


#ifndef _NGX_AI_RELAY_REDIS_H_INCLUDED_
#define _NGX_AI_RELAY_REDIS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include <hiredis/hiredis.h>
#include <hiredis/async.h>

#include "ngx_ai_relay_prom.h"
#include "ngx_ai_relay_slot.h"


#define NGX_AI_RELAY_REDIS_DISCONNECTED  0
#define NGX_AI_RELAY_REDIS_CONNECTING    1
#define NGX_AI_RELAY_REDIS_READY         2

#define NGX_AI_RELAY_REDIS_MAX_SCRIPTS   16


/*
 * Called once per command: with the reply, or with NULL when the
 * connection failed before a reply came.  The reply is freed by hiredis
 * as soon as the handler returns.
 */
typedef void (*ngx_ai_relay_redis_handler_pt)(void *data, redisReply *reply);


typedef struct ngx_ai_relay_redis_cmd_s  ngx_ai_relay_redis_cmd_t;

/* privdata of one queued command; ngx_alloc()ed, outlives requests */
struct ngx_ai_relay_redis_cmd_s {
    ngx_ai_relay_redis_handler_pt   handler;    /* NULL: detached */
    void                           *data;
    struct ngx_ai_relay_redis_s    *redis;
    ngx_msec_t                      sent;
    unsigned                        critical:1; /* holds worker exit */

    /*
     * Redis Cluster: a command of the worker's routing link, sent on a
     * node's link as node_cmd; kept, to follow MOVED and ASK
     */
    unsigned                        redirects:3;
    unsigned                        noscript:1; /* sent again once */
    unsigned                        replied:1;  /* held for "after" */
    u_char                         *buf;
    size_t                          len;
    struct ngx_ai_relay_redis_s    *link;       /* the node it went to */
    ngx_ai_relay_redis_cmd_t       *node_cmd;   /* NULL once answered */
    ngx_ai_relay_redis_cmd_t       *after;      /* handled before this */
    ngx_ai_relay_redis_cmd_t       *next;       /* handled after this */
    redisReply                     *held;       /* our copy, until then */
};


/* what the link did, for the metrics: a worker's slot in their zone */
typedef struct {
    uint64_t                        errors;     /* error replies, commands
                                                   unanswered or unsent */
    uint64_t                        reconnects; /* attempts after the
                                                   first */
    ngx_ai_relay_prom_hist_t        latency;    /* ms, per reply */
} ngx_ai_relay_redis_stats_t;


typedef struct ngx_ai_relay_redis_s  ngx_ai_relay_redis_t;


/* Redis Sentinel: where the worker's link learns its master's address */
typedef struct {
    ngx_str_t                       name;       /* the master's, NUL ended */
    ngx_ai_relay_slot_node_t       *addrs;      /* the sentinels */
    ngx_uint_t                      naddrs;
    ngx_ai_relay_redis_t           *link[NGX_AI_RELAY_SLOT_MAX_NODES];
    ngx_ai_relay_redis_t           *sub;        /* +switch-master */
    ngx_uint_t                      next;       /* the sentinel to ask */
    ngx_uint_t                      sub_next;
    ngx_event_t                     retry;
    char                            host[NGX_AI_RELAY_SLOT_HOST_LEN];
    unsigned                        asking:1;
    unsigned                        known:1;    /* host, port: current */
} ngx_ai_relay_redis_sentinel_t;


/* Redis Cluster: the slot map and a link per node, of one worker */
typedef struct {
    ngx_ai_relay_slot_map_t         map;
    ngx_ai_relay_redis_t           *node[NGX_AI_RELAY_SLOT_MAX_NODES];
    ngx_uint_t                      nseeds;     /* map.nodes[0..] */
    ngx_event_t                     refresh;
    ngx_msec_t                      last_refresh;
    ngx_uint_t                      next;       /* the node to ask next */
    unsigned                        asking:1;   /* CLUSTER SLOTS out */
    unsigned                        again:1;
    unsigned                        loaded:1;
    unsigned                        closing:1;
} ngx_ai_relay_redis_cluster_t;

struct ngx_ai_relay_redis_s {
    redisAsyncContext              *ac;         /* NULL: disconnected */
    ngx_connection_t               *conn;       /* wraps ac->c.fd */
    ngx_uint_t                      state;

    ngx_event_t                     reconnect;
    ngx_event_t                     connect_timer;
    ngx_event_t                     watchdog;
    ngx_event_t                     flush;      /* posted: write out */
    unsigned                        flushing:1;
    ngx_msec_t                      backoff;

    ngx_uint_t                      pending;    /* commands in flight */
    ngx_uint_t                      critical;   /* settlements in flight */
    ngx_msec_t                      last_reply;
    ngx_msec_t                      last_attempt;

    /* configuration, copied from the main conf */
    char                           *host;
    int                             port;
    char                           *unix_path;
    ngx_str_t                       password;
    ngx_int_t                       db;
    ngx_msec_t                      connect_timeout;
    ngx_msec_t                      timeout;

    /* script SHA1s, hex */
    u_char                          sha[NGX_AI_RELAY_REDIS_MAX_SCRIPTS][40];
    ngx_str_t                      *script_sha;
    ngx_str_t                      *script_src;
    ngx_uint_t                      nscripts;

    /* called after every successful (re)connect */
    void                          (*on_ready)(ngx_ai_relay_redis_t *rds);
    void                           *data;

    ngx_ai_relay_redis_stats_t     *stats;      /* never NULL once
                                                   initialized */
    ngx_log_t                      *log;

    /*
     * Redis Cluster: the worker's link routes each command to a node's
     * link (cluster set, no connection of its own); a node's link knows
     * the worker's (top) and its index in the map
     */
    ngx_ai_relay_redis_cluster_t   *cluster;
    ngx_ai_relay_redis_t           *top;
    ngx_uint_t                      index;

    /* Redis Sentinel: the worker's link; a sentinel's link knows it */
    ngx_ai_relay_redis_sentinel_t  *sentinel;
    ngx_ai_relay_redis_t           *sentinel_of;
};


extern const ngx_ai_relay_prom_bounds_t  ngx_ai_relay_redis_latency_bounds;


ngx_int_t ngx_ai_relay_redis_init(ngx_ai_relay_redis_t *rds, ngx_log_t *log);
void ngx_ai_relay_redis_connect(ngx_ai_relay_redis_t *rds);
void ngx_ai_relay_redis_close(ngx_ai_relay_redis_t *rds);

ngx_ai_relay_redis_cmd_t *ngx_ai_relay_redis_send(ngx_ai_relay_redis_t *rds,
    ngx_ai_relay_redis_handler_pt handler, void *data, int argc,
    const char **argv, const size_t *argvlen);
ngx_ai_relay_redis_cmd_t *ngx_ai_relay_redis_send_after(
    ngx_ai_relay_redis_t *rds, ngx_ai_relay_redis_cmd_t *prev,
    ngx_ai_relay_redis_handler_pt handler, void *data, int argc,
    const char **argv, const size_t *argvlen);
ngx_ai_relay_redis_cmd_t *ngx_ai_relay_redis_send_formatted(
    ngx_ai_relay_redis_t *rds, ngx_ai_relay_redis_handler_pt handler,
    void *data, u_char *cmd, size_t len);
void ngx_ai_relay_redis_detach(ngx_ai_relay_redis_cmd_t *cmd);
void ngx_ai_relay_redis_reattach(ngx_ai_relay_redis_cmd_t *cmd,
    ngx_ai_relay_redis_handler_pt handler, void *data);
void ngx_ai_relay_redis_set_critical(ngx_ai_relay_redis_cmd_t *cmd);
void ngx_ai_relay_redis_timed_out(ngx_ai_relay_redis_t *rds);


#endif /* _NGX_AI_RELAY_REDIS_H_INCLUDED_ */
