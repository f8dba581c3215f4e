
/*
 * Copyright (C) ngx_ai_relay authors
 *
 * hiredis' async API driven by nginx's event loop: one connection per
 * worker, level-triggered events (hiredis reads at most 16k per call),
 * hiredis owns the fd, every queued command gets exactly one callback.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include <openssl/evp.h>

#include "ngx_ai_relay_redis.h"


#define NGX_AI_RELAY_REDIS_BACKOFF_MIN  100
#define NGX_AI_RELAY_REDIS_BACKOFF_MAX  3000

/* a request finding no link tries to connect, at most this often */
#define NGX_AI_RELAY_REDIS_RETRY        10

/* Redis Cluster: slot map requests at most this often, in ms */
#define NGX_AI_RELAY_CLUSTER_REFRESH    100
/*
 * ms: a master the sentinels still name after it refused a write; the
 * longest pause between rounds of sentinels not answering
 */
#define NGX_AI_RELAY_SENTINEL_RO_MIN    100
#define NGX_AI_RELAY_SENTINEL_RO_MAX    3000

/* redirections followed per command */
#define NGX_AI_RELAY_CLUSTER_REDIRECTS  5


static void ngx_ai_relay_redis_add_read(void *privdata);
static void ngx_ai_relay_redis_del_read(void *privdata);
static void ngx_ai_relay_redis_add_write(void *privdata);
static void ngx_ai_relay_redis_del_write(void *privdata);
static void ngx_ai_relay_redis_cleanup(void *privdata);
static void ngx_ai_relay_redis_read_handler(ngx_event_t *rev);
static void ngx_ai_relay_redis_write_handler(ngx_event_t *wev);
static void ngx_ai_relay_redis_on_connect(const redisAsyncContext *ac,
    int status);
static void ngx_ai_relay_redis_on_disconnect(const redisAsyncContext *ac,
    int status);
static void ngx_ai_relay_redis_drop(ngx_ai_relay_redis_t *rds,
    const char *why);
static void ngx_ai_relay_redis_schedule(ngx_ai_relay_redis_t *rds);
static void ngx_ai_relay_redis_reconnect_handler(ngx_event_t *ev);
static void ngx_ai_relay_redis_connect_timer_handler(ngx_event_t *ev);
static void ngx_ai_relay_redis_watchdog_handler(ngx_event_t *ev);
static void ngx_ai_relay_redis_arm_watchdog(ngx_ai_relay_redis_t *rds);
static void ngx_ai_relay_redis_flush_handler(ngx_event_t *ev);
static void ngx_ai_relay_redis_reply(redisAsyncContext *ac, void *r,
    void *privdata);
static void ngx_ai_relay_redis_setup_reply(redisAsyncContext *ac, void *r,
    void *privdata);
static void ngx_ai_relay_redis_load_scripts(ngx_ai_relay_redis_t *rds);
static ngx_ai_relay_redis_cmd_t *ngx_ai_relay_redis_prepare(
    ngx_ai_relay_redis_t *rds, ngx_ai_relay_redis_handler_pt handler,
    void *data);
static void ngx_ai_relay_redis_sent(ngx_ai_relay_redis_t *rds,
    ngx_ai_relay_redis_cmd_t *cmd);
static void ngx_ai_relay_redis_init_link(ngx_ai_relay_redis_t *rds,
    ngx_log_t *log);

static ngx_ai_relay_redis_cmd_t *ngx_ai_relay_cluster_send(
    ngx_ai_relay_redis_t *top, ngx_ai_relay_redis_cmd_t *prev,
    ngx_ai_relay_redis_handler_pt handler, void *data, int slot,
    u_char *buf, size_t len);
static ngx_int_t ngx_ai_relay_cluster_resend(ngx_ai_relay_redis_cmd_t *cmd,
    ngx_ai_relay_redis_t *node);
static void ngx_ai_relay_cluster_reply(void *data, redisReply *reply);
static void ngx_ai_relay_cluster_deliver(ngx_ai_relay_redis_cmd_t *cmd,
    redisReply *reply);
static ngx_ai_relay_redis_t *ngx_ai_relay_cluster_node(
    ngx_ai_relay_redis_t *top, ngx_uint_t idx);
static ngx_uint_t ngx_ai_relay_cluster_wanted(ngx_ai_relay_redis_t *node);
static void ngx_ai_relay_cluster_refresh(ngx_ai_relay_redis_t *top);
static void ngx_ai_relay_cluster_refresh_handler(ngx_event_t *ev);
static void ngx_ai_relay_cluster_slots_reply(void *data, redisReply *reply);
static void ngx_ai_relay_cluster_node_ready(ngx_ai_relay_redis_t *node);
static void ngx_ai_relay_cluster_close(ngx_ai_relay_redis_t *top);
static redisReply *ngx_ai_relay_redis_reply_copy(const redisReply *r);

static ngx_ai_relay_redis_t *ngx_ai_relay_sentinel_link(
    ngx_ai_relay_redis_t *top, ngx_uint_t idx);
static void ngx_ai_relay_sentinel_ask(ngx_ai_relay_redis_t *top);
static void ngx_ai_relay_sentinel_retry_handler(ngx_event_t *ev);
static void ngx_ai_relay_sentinel_later(ngx_ai_relay_redis_sentinel_t *s);
static void ngx_ai_relay_sentinel_reply(void *data, redisReply *reply);
static void ngx_ai_relay_sentinel_master(ngx_ai_relay_redis_t *top,
    const char *host, size_t len, const char *port, size_t plen);
static void ngx_ai_relay_sentinel_subscribe(ngx_ai_relay_redis_t *sub);
static void ngx_ai_relay_sentinel_switch(redisAsyncContext *ac, void *r,
    void *privdata);
static void ngx_ai_relay_sentinel_close(ngx_ai_relay_redis_t *top);


/* a reply's latency, in ms (nginx's cached clock) */
static const uint64_t  ngx_ai_relay_redis_latency_le[] = {
    1, 2, 5, 10, 25, 50, 100, 250, 500, 1000
};


const ngx_ai_relay_prom_bounds_t  ngx_ai_relay_redis_latency_bounds = {
    sizeof(ngx_ai_relay_redis_latency_le) / sizeof(uint64_t),
    ngx_ai_relay_redis_latency_le, 3
};


/* counted nowhere: a worker without the metrics' zone */
static ngx_ai_relay_redis_stats_t  ngx_ai_relay_redis_no_stats;


ngx_int_t
ngx_ai_relay_redis_init(ngx_ai_relay_redis_t *rds, ngx_log_t *log)
{
    ngx_uint_t     i;
    unsigned int   n;
    unsigned char  md[EVP_MAX_MD_SIZE];

    ngx_ai_relay_redis_init_link(rds, log);

    if (rds->sentinel) {
        rds->sentinel->retry.handler = ngx_ai_relay_sentinel_retry_handler;
        rds->sentinel->retry.data = rds;
        rds->sentinel->retry.log = log;
        rds->sentinel->retry.cancelable = 1;
    }

    if (rds->cluster) {
        rds->cluster->refresh.handler = ngx_ai_relay_cluster_refresh_handler;
        rds->cluster->refresh.data = rds;
        rds->cluster->refresh.log = log;
        rds->cluster->refresh.cancelable = 1;
    }

    if (rds->nscripts > NGX_AI_RELAY_REDIS_MAX_SCRIPTS) {
        return NGX_ERROR;
    }

    for (i = 0; i < rds->nscripts; i++) {
        if (EVP_Digest(rds->script_src[i].data, rds->script_src[i].len, md,
                       &n, EVP_sha1(), NULL)
            != 1)
        {
            ngx_log_error(NGX_LOG_ALERT, log, 0,
                          "ai relay: EVP_Digest(sha1) failed");
            return NGX_ERROR;
        }

        rds->script_sha[i].data = rds->sha[i];
        ngx_hex_dump(rds->script_sha[i].data, md, n);
        rds->script_sha[i].len = 2 * n;
    }

    return NGX_OK;
}


static void
ngx_ai_relay_redis_init_link(ngx_ai_relay_redis_t *rds, ngx_log_t *log)
{
    rds->log = log;
    rds->state = NGX_AI_RELAY_REDIS_DISCONNECTED;
    rds->backoff = NGX_AI_RELAY_REDIS_BACKOFF_MIN;

    if (rds->stats == NULL) {
        rds->stats = &ngx_ai_relay_redis_no_stats;
    }

    rds->reconnect.handler = ngx_ai_relay_redis_reconnect_handler;
    rds->reconnect.data = rds;
    rds->reconnect.log = log;
    rds->reconnect.cancelable = 1;

    rds->connect_timer.handler = ngx_ai_relay_redis_connect_timer_handler;
    rds->connect_timer.data = rds;
    rds->connect_timer.log = log;
    rds->connect_timer.cancelable = 1;

    rds->flush.handler = ngx_ai_relay_redis_flush_handler;
    rds->flush.data = rds;
    rds->flush.log = log;

    rds->watchdog.handler = ngx_ai_relay_redis_watchdog_handler;
    rds->watchdog.data = rds;
    rds->watchdog.log = log;
    rds->watchdog.cancelable = 1;
}


void
ngx_ai_relay_redis_connect(ngx_ai_relay_redis_t *rds)
{
    ngx_connection_t   *c;
    redisAsyncContext  *ac;

    if (rds->ac || ngx_exiting || ngx_quit || ngx_terminate) {
        return;
    }

    if (rds->cluster) {
        /* the nodes' links come with the slot map */
        ngx_ai_relay_cluster_refresh(rds);
        return;
    }

    if (rds->sentinel && !rds->sentinel->known) {
        /* the sentinels' answer connects */
        ngx_ai_relay_sentinel_ask(rds);
        return;
    }

    if (rds->reconnect.timer_set) {
        ngx_del_timer(&rds->reconnect);
    }

    if (rds->last_attempt) {
        rds->stats->reconnects++;
    }

    rds->last_attempt = ngx_current_msec;

    if (rds->unix_path) {
        ac = redisAsyncConnectUnix(rds->unix_path);

    } else {
        ac = redisAsyncConnect(rds->host, rds->port);
    }

    if (ac == NULL) {
        ngx_log_error(NGX_LOG_ERR, rds->log, 0,
                      "ai relay: redis connect failed: out of memory");
        ngx_ai_relay_redis_schedule(rds);
        return;
    }

    if (ac->err) {
        ngx_log_error(NGX_LOG_ERR, rds->log, 0,
                      "ai relay: redis connect to %s:%d failed: %s",
                      rds->unix_path ? rds->unix_path : rds->host,
                      rds->unix_path ? 0 : rds->port, ac->errstr);
        redisAsyncFree(ac);
        ngx_ai_relay_redis_schedule(rds);
        return;
    }

    c = ngx_get_connection(ac->c.fd, rds->log);
    if (c == NULL) {
        redisAsyncFree(ac);
        ngx_ai_relay_redis_schedule(rds);
        return;
    }

    /* ngx_get_connection() zeroes the events; epoll logs through ev->log */

    c->log = rds->log;
    c->read->log = rds->log;
    c->write->log = rds->log;
    c->read->handler = ngx_ai_relay_redis_read_handler;
    c->write->handler = ngx_ai_relay_redis_write_handler;
    c->data = ac;

    ac->data = rds;
    ac->ev.data = c;
    ac->ev.addRead = ngx_ai_relay_redis_add_read;
    ac->ev.delRead = ngx_ai_relay_redis_del_read;
    ac->ev.addWrite = ngx_ai_relay_redis_add_write;
    ac->ev.delWrite = ngx_ai_relay_redis_del_write;
    ac->ev.cleanup = ngx_ai_relay_redis_cleanup;

    rds->ac = ac;
    rds->conn = c;
    rds->state = NGX_AI_RELAY_REDIS_CONNECTING;

    /* the hooks must be set first: this arms the write event */

    redisAsyncSetConnectCallback(ac, ngx_ai_relay_redis_on_connect);
    redisAsyncSetDisconnectCallback(ac, ngx_ai_relay_redis_on_disconnect);

    ngx_add_timer(&rds->connect_timer, rds->connect_timeout);

    ngx_log_debug0(NGX_LOG_DEBUG_HTTP, rds->log, 0,
                   "ai relay: redis connecting");

    /* queued before anything else, so they run first on this link */

    if (rds->password.len) {
        redisAsyncCommand(ac, ngx_ai_relay_redis_setup_reply, "AUTH",
                          "AUTH %b", rds->password.data,
                          rds->password.len);
    }

    if (rds->db) {
        redisAsyncCommand(ac, ngx_ai_relay_redis_setup_reply, "SELECT",
                          "SELECT %d", (int) rds->db);
    }

    ngx_ai_relay_redis_load_scripts(rds);
}


void
ngx_ai_relay_redis_close(ngx_ai_relay_redis_t *rds)
{
    if (rds->cluster) {
        ngx_ai_relay_cluster_close(rds);
        return;
    }

    if (rds->reconnect.timer_set) {
        ngx_del_timer(&rds->reconnect);
    }

    if (rds->watchdog.timer_set) {
        ngx_del_timer(&rds->watchdog);
    }

    if (rds->connect_timer.timer_set) {
        ngx_del_timer(&rds->connect_timer);
    }

    if (rds->ac) {
        ngx_ai_relay_redis_drop(rds, NULL);
    }

    if (rds->sentinel) {
        ngx_ai_relay_sentinel_close(rds);
    }
}


/*
 * The command in the Redis protocol, written by us: hiredis' own
 * formatting (sds strings, one allocation per argument) was the largest
 * part of the relay's CPU in the benchmark.
 */

ngx_ai_relay_redis_cmd_t *
ngx_ai_relay_redis_send(ngx_ai_relay_redis_t *rds,
    ngx_ai_relay_redis_handler_pt handler, void *data, int argc,
    const char **argv, const size_t *argvlen)
{
    return ngx_ai_relay_redis_send_after(rds, NULL, handler, data, argc,
                                         argv, argvlen);
}


/*
 * prev: a command of the same sender still unanswered, whose handler is
 * to run first.  One link answers in order anyway; commands of a request
 * that go to two nodes of a Redis Cluster are answered in their order
 * too, the later one's reply held (a copy) until the earlier one's came.
 */

ngx_ai_relay_redis_cmd_t *
ngx_ai_relay_redis_send_after(ngx_ai_relay_redis_t *rds,
    ngx_ai_relay_redis_cmd_t *prev, ngx_ai_relay_redis_handler_pt handler,
    void *data, int argc, const char **argv, const size_t *argvlen)
{
    int                        i, k, slot;
    u_char                    *p, *buf, stack[4096];
    size_t                     len;
    ngx_ai_relay_redis_cmd_t  *cmd;

    len = sizeof("*\r\n") - 1 + NGX_INT_T_LEN;

    for (i = 0; i < argc; i++) {
        len += sizeof("$\r\n\r\n") - 1 + NGX_SIZE_T_LEN + argvlen[i];
    }

    if (len <= sizeof(stack)) {
        buf = stack;

    } else {
        buf = ngx_alloc(len, rds->log);
        if (buf == NULL) {
            return NULL;
        }
    }

    p = ngx_sprintf(buf, "*%d\r\n", argc);

    for (i = 0; i < argc; i++) {
        p = ngx_sprintf(p, "$%uz\r\n", argvlen[i]);

        if (argvlen[i]) {
            p = ngx_cpymem(p, argv[i], argvlen[i]);
        }

        *p++ = '\r';
        *p++ = '\n';
    }

    if (rds->cluster) {
        k = ngx_ai_relay_slot_key_arg(argc, argv, argvlen);
        slot = (k < 0) ? -1
                       : (int) ngx_ai_relay_slot_of((u_char *) argv[k],
                                                    argvlen[k]);

        cmd = ngx_ai_relay_cluster_send(rds, prev, handler, data, slot, buf,
                                        p - buf);

    } else {
        cmd = ngx_ai_relay_redis_send_formatted(rds, handler, data, buf,
                                                p - buf);
    }

    if (buf != stack) {
        ngx_free(buf);
    }

    return cmd;
}


ngx_ai_relay_redis_cmd_t *
ngx_ai_relay_redis_send_formatted(ngx_ai_relay_redis_t *rds,
    ngx_ai_relay_redis_handler_pt handler, void *data, u_char *buf,
    size_t len)
{
    ngx_ai_relay_redis_cmd_t  *cmd;

    cmd = ngx_ai_relay_redis_prepare(rds, handler, data);
    if (cmd == NULL) {
        return NULL;
    }

    if (redisAsyncFormattedCommand(rds->ac, ngx_ai_relay_redis_reply, cmd,
                                   (const char *) buf, len)
        != REDIS_OK)
    {
        ngx_free(cmd);
        return NULL;
    }

    ngx_ai_relay_redis_sent(rds, cmd);

    return cmd;
}


static ngx_ai_relay_redis_cmd_t *
ngx_ai_relay_redis_prepare(ngx_ai_relay_redis_t *rds,
    ngx_ai_relay_redis_handler_pt handler, void *data)
{
    ngx_ai_relay_redis_cmd_t  *cmd;

    if (rds->ac == NULL
        && ngx_current_msec - rds->last_attempt >= NGX_AI_RELAY_REDIS_RETRY)
    {
        /* on demand: recover as soon as Redis is back */
        ngx_ai_relay_redis_connect(rds);
    }

    if (rds->ac == NULL) {
        rds->stats->errors++;
        return NULL;
    }

    cmd = ngx_alloc(sizeof(ngx_ai_relay_redis_cmd_t), rds->log);
    if (cmd == NULL) {
        return NULL;
    }

    ngx_memzero(cmd, sizeof(ngx_ai_relay_redis_cmd_t));

    cmd->handler = handler;
    cmd->data = data;
    cmd->redis = rds;
    cmd->sent = ngx_current_msec;

    return cmd;
}


static void
ngx_ai_relay_redis_sent(ngx_ai_relay_redis_t *rds,
    ngx_ai_relay_redis_cmd_t *cmd)
{
    if (rds->pending++ == 0) {
        rds->last_reply = ngx_current_msec;
    }

    ngx_ai_relay_redis_arm_watchdog(rds);
}


void
ngx_ai_relay_redis_detach(ngx_ai_relay_redis_cmd_t *cmd)
{
    cmd->handler = NULL;
    cmd->data = NULL;
}


/* the reply goes to another handler, one that outlives the request */

void
ngx_ai_relay_redis_reattach(ngx_ai_relay_redis_cmd_t *cmd,
    ngx_ai_relay_redis_handler_pt handler, void *data)
{
    cmd->handler = handler;
    cmd->data = data;
}


void
ngx_ai_relay_redis_set_critical(ngx_ai_relay_redis_cmd_t *cmd)
{
    ngx_ai_relay_redis_t  *rds;

    rds = cmd->redis;

    if (cmd->critical) {
        return;
    }

    cmd->critical = 1;
    rds->critical++;

    if (rds->cluster) {
        /* the node's link holds the exit up */

        if (cmd->node_cmd) {
            ngx_ai_relay_redis_set_critical(cmd->node_cmd);
        }

        return;
    }

    /* an unanswered settlement holds up a graceful worker exit */
    rds->watchdog.cancelable = 0;
}


static void
ngx_ai_relay_redis_reply(redisAsyncContext *ac, void *r, void *privdata)
{
    redisReply                *reply;
    ngx_ai_relay_redis_t      *rds;
    ngx_ai_relay_redis_cmd_t  *cmd;

    reply = r;
    cmd = privdata;
    rds = cmd->redis;

    rds->pending--;

    if (cmd->critical) {
        if (--rds->critical == 0) {
            rds->watchdog.cancelable = 1;
        }
    }

    if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
        rds->stats->errors++;
    }

    if (reply) {
        rds->last_reply = ngx_current_msec;

        ngx_ai_relay_prom_observe(&rds->stats->latency,
                                  &ngx_ai_relay_redis_latency_bounds,
                                  ngx_current_msec - cmd->sent);

        if (reply->type == REDIS_REPLY_ERROR
            && ngx_strncmp(reply->str, "NOSCRIPT", 8) == 0
            && rds->ac == ac)
        {
            /* SCRIPT FLUSH on the server: load them again */
            ngx_log_error(NGX_LOG_WARN, rds->log, 0,
                          "ai relay: redis lost its scripts, reloading");
            ngx_ai_relay_redis_load_scripts(rds);
        }

        if (reply->type == REDIS_REPLY_ERROR && rds->sentinel
            && rds->sentinel->known && rds->ac == ac
            && ngx_strncmp(reply->str, "READONLY", 8) == 0)
        {
            /* a master demoted under us: the sentinels know the new one */

            ngx_log_error(NGX_LOG_WARN, rds->log, 0,
                          "ai relay: redis %s:%d is a replica now, "
                          "asking the sentinels", rds->host, rds->port);

            rds->sentinel->known = 0;
            rds->sentinel->readonly = 1;

            /* at once, even when a pause between asks was under way */
            ngx_add_timer(&rds->sentinel->retry, 1);
        }
    }

    if (cmd->handler) {
        cmd->handler(cmd->data, reply);
    }

    ngx_free(cmd);
}


static void
ngx_ai_relay_redis_setup_reply(redisAsyncContext *ac, void *r,
    void *privdata)
{
    redisReply            *reply;
    ngx_ai_relay_redis_t  *rds;

    reply = r;
    rds = ac->data;

    if (reply && reply->type == REDIS_REPLY_ERROR) {
        ngx_log_error(NGX_LOG_ERR, rds->log, 0,
                      "ai relay: redis %s failed: %s",
                      (char *) privdata, reply->str);
    }
}


static void
ngx_ai_relay_redis_load_scripts(ngx_ai_relay_redis_t *rds)
{
    ngx_uint_t  i;

    for (i = 0; i < rds->nscripts; i++) {
        redisAsyncCommand(rds->ac, ngx_ai_relay_redis_setup_reply,
                          "SCRIPT LOAD", "SCRIPT LOAD %b",
                          rds->script_src[i].data, rds->script_src[i].len);
    }
}


void
ngx_ai_relay_redis_timed_out(ngx_ai_relay_redis_t *rds)
{
    ngx_uint_t  i;

    if (rds->cluster) {
        for (i = 0; i < rds->cluster->map.nnodes; i++) {
            if (rds->cluster->node[i]) {
                ngx_ai_relay_redis_arm_watchdog(rds->cluster->node[i]);
            }
        }

        return;
    }

    /*
     * a single reply cannot be cancelled (replies are FIFO): the
     * watchdog drops the link when nothing comes back at all
     */
    ngx_ai_relay_redis_arm_watchdog(rds);
}


static void
ngx_ai_relay_redis_arm_watchdog(ngx_ai_relay_redis_t *rds)
{
    if (rds->pending && !rds->watchdog.timer_set) {
        ngx_add_timer(&rds->watchdog, rds->timeout);
    }
}


static void
ngx_ai_relay_redis_watchdog_handler(ngx_event_t *ev)
{
    ngx_msec_t             silent;
    ngx_ai_relay_redis_t  *rds;

    rds = ev->data;

    if (rds->pending == 0 || rds->ac == NULL) {
        return;
    }

    silent = ngx_current_msec - rds->last_reply;

    if (silent >= 2 * rds->timeout
        && rds->state == NGX_AI_RELAY_REDIS_READY)
    {
        ngx_log_error(NGX_LOG_ERR, rds->log, 0,
                      "ai relay: redis sent nothing for %M ms "
                      "with %ui commands pending, reconnecting",
                      silent, rds->pending);
        ngx_ai_relay_redis_drop(rds, "silent");
        return;
    }

    ngx_add_timer(&rds->watchdog, rds->timeout);
}


static void
ngx_ai_relay_redis_on_connect(const redisAsyncContext *ac, int status)
{
    ngx_ai_relay_redis_t  *rds;

    rds = ac->data;

    if (rds->ac != ac) {
        return;
    }

    if (rds->connect_timer.timer_set) {
        ngx_del_timer(&rds->connect_timer);
    }

    if (status != REDIS_OK) {
        ngx_log_error(NGX_LOG_ERR, rds->log, 0,
                      "ai relay: redis connect to %s:%d failed: %s",
                      rds->unix_path ? rds->unix_path : rds->host,
                      rds->unix_path ? 0 : rds->port, ac->errstr);

        /* hiredis frees the context after this callback */
        rds->ac = NULL;
        rds->state = NGX_AI_RELAY_REDIS_DISCONNECTED;
        ngx_ai_relay_redis_schedule(rds);
        return;
    }

    ngx_log_error(NGX_LOG_INFO, rds->log, 0,
                  "ai relay: redis connected to %s:%d",
                  rds->unix_path ? rds->unix_path : rds->host,
                  rds->unix_path ? 0 : rds->port);

    rds->state = NGX_AI_RELAY_REDIS_READY;
    rds->backoff = NGX_AI_RELAY_REDIS_BACKOFF_MIN;

    if (rds->on_ready) {
        rds->on_ready(rds);
    }
}


static void
ngx_ai_relay_redis_on_disconnect(const redisAsyncContext *ac, int status)
{
    ngx_ai_relay_redis_t  *rds;

    rds = ac->data;

    if (rds->ac != ac) {
        /* we dropped it ourselves */
        return;
    }

    ngx_log_error(NGX_LOG_ERR, rds->log, 0,
                  "ai relay: redis connection lost: %s",
                  ac->err ? ac->errstr : "closed");

    rds->ac = NULL;
    rds->state = NGX_AI_RELAY_REDIS_DISCONNECTED;
    ngx_ai_relay_redis_schedule(rds);
}


static void
ngx_ai_relay_redis_drop(ngx_ai_relay_redis_t *rds, const char *why)
{
    redisAsyncContext  *ac;

    ac = rds->ac;

    /* detach first: callbacks run now with NULL and may send again */

    rds->ac = NULL;
    rds->state = NGX_AI_RELAY_REDIS_DISCONNECTED;

    if (rds->connect_timer.timer_set) {
        ngx_del_timer(&rds->connect_timer);
    }

    redisAsyncFree(ac);

    if (why) {
        ngx_ai_relay_redis_schedule(rds);
    }
}


static void
ngx_ai_relay_redis_schedule(ngx_ai_relay_redis_t *rds)
{
    ngx_ai_relay_redis_sentinel_t  *s;

    if (rds->sentinel) {
        /* the master lost: ask the sentinels where it is before retrying */
        rds->sentinel->known = 0;
    }

    if (rds->sentinel_of && rds == rds->sentinel_of->sentinel->sub) {
        /* the subscription tries the next sentinel */
        s = rds->sentinel_of->sentinel;
        s->sub_next++;
        rds->host = s->addrs[s->sub_next % s->naddrs].host;
        rds->port = s->addrs[s->sub_next % s->naddrs].port;
    }
    if (rds->top) {
        /* a node's link went down: a failover may have moved its slots */

        ngx_ai_relay_cluster_refresh(rds->top);

        if (!ngx_ai_relay_cluster_wanted(rds)) {
            /* connected again on demand, should a redirection name it */
            return;
        }
    }

    if (ngx_exiting || ngx_quit || ngx_terminate
        || rds->reconnect.timer_set)
    {
        return;
    }

    ngx_add_timer(&rds->reconnect, rds->backoff);

    rds->backoff *= 2;
    if (rds->backoff > NGX_AI_RELAY_REDIS_BACKOFF_MAX) {
        rds->backoff = NGX_AI_RELAY_REDIS_BACKOFF_MAX;
    }
}


static void
ngx_ai_relay_redis_reconnect_handler(ngx_event_t *ev)
{
    ngx_ai_relay_redis_connect(ev->data);
}


static void
ngx_ai_relay_redis_connect_timer_handler(ngx_event_t *ev)
{
    ngx_ai_relay_redis_t  *rds;

    rds = ev->data;

    if (rds->ac && rds->state == NGX_AI_RELAY_REDIS_CONNECTING) {
        ngx_log_error(NGX_LOG_ERR, rds->log, NGX_ETIMEDOUT,
                      "ai relay: redis connect timed out");
        ngx_ai_relay_redis_drop(rds, "timeout");
    }
}


static void
ngx_ai_relay_redis_read_handler(ngx_event_t *rev)
{
    ngx_connection_t  *c;

    c = rev->data;

    /* may free the context and, through cleanup, this connection */

    redisAsyncHandleRead(c->data);
}


static void
ngx_ai_relay_redis_write_handler(ngx_event_t *wev)
{
    ngx_connection_t  *c;

    c = wev->data;

    redisAsyncHandleWrite(c->data);
}


static void
ngx_ai_relay_redis_add_read(void *privdata)
{
    ngx_connection_t  *c;

    c = privdata;

    if (!c->read->active) {
        if (ngx_add_event(c->read, NGX_READ_EVENT, NGX_LEVEL_EVENT)
            != NGX_OK)
        {
            ngx_log_error(NGX_LOG_ALERT, c->log, 0,
                          "ai relay: redis add read event failed");
        }
    }
}


static void
ngx_ai_relay_redis_del_read(void *privdata)
{
    ngx_connection_t  *c;

    c = privdata;

    if (c->read->active) {
        ngx_del_event(c->read, NGX_READ_EVENT, NGX_LEVEL_EVENT);
    }
}


/*
 * Commands are not written the moment they are queued: the write is
 * posted to the end of this event loop iteration, so the commands of
 * every request handled in it go out in one write(), and a connection
 * that can take them needs no write event (two epoll_ctl() calls).
 * Only what the socket does not take waits for a real write event.
 */

static void
ngx_ai_relay_redis_add_write(void *privdata)
{
    ngx_connection_t      *c;
    redisAsyncContext     *ac;
    ngx_ai_relay_redis_t  *rds;

    c = privdata;
    ac = c->data;
    rds = ac->data;

    if (rds->state == NGX_AI_RELAY_REDIS_READY && !rds->flushing) {
        if (!rds->flush.posted) {
            ngx_post_event(&rds->flush, &ngx_posted_events);
        }

        return;
    }

    if (!c->write->active) {
        if (ngx_add_event(c->write, NGX_WRITE_EVENT, NGX_LEVEL_EVENT)
            != NGX_OK)
        {
            ngx_log_error(NGX_LOG_ALERT, c->log, 0,
                          "ai relay: redis add write event failed");
        }
    }
}


static void
ngx_ai_relay_redis_flush_handler(ngx_event_t *ev)
{
    ngx_ai_relay_redis_t  *rds;

    rds = ev->data;

    if (rds->ac == NULL) {
        return;
    }

    /* what the socket does not take now asks for a real write event */

    rds->flushing = 1;
    redisAsyncHandleWrite(rds->ac);
    rds->flushing = 0;
}


static void
ngx_ai_relay_redis_del_write(void *privdata)
{
    ngx_connection_t  *c;

    c = privdata;

    if (c->write->active) {
        ngx_del_event(c->write, NGX_WRITE_EVENT, NGX_LEVEL_EVENT);
    }
}


static void
ngx_ai_relay_redis_cleanup(void *privdata)
{
    ngx_connection_t      *c;
    redisAsyncContext     *ac;
    ngx_ai_relay_redis_t  *rds;

    c = privdata;
    ac = c->data;
    rds = ac->data;

    ngx_ai_relay_redis_del_read(c);
    ngx_ai_relay_redis_del_write(c);

    if (c->read->timer_set) {
        ngx_del_timer(c->read);
    }

    if (c->write->timer_set) {
        ngx_del_timer(c->write);
    }

    if (c->read->posted) {
        ngx_delete_posted_event(c->read);
    }

    if (rds->flush.posted) {
        ngx_delete_posted_event(&rds->flush);
    }

    if (c->write->posted) {
        ngx_delete_posted_event(c->write);
    }

    /* hiredis closes the fd itself, right after this hook */

    ngx_free_connection(c);
    c->fd = (ngx_socket_t) -1;

    if (rds->conn == c) {
        rds->conn = NULL;
    }
}


/*
 * Redis Cluster.  The worker's link (top) keeps the slot map and a link
 * per node it needs; each command goes to the link of its key's slot's
 * owner (before the map is known: the first seed, whose redirection
 * tells better) and is kept, formatted, until answered: MOVED updates the
 * slot's owner, asks for the map again and sends it there, ASK sends
 * ASKING and it there, NOSCRIPT (the node's scripts are being loaded
 * again) sends it once more.  A node's link lost, or a connect failed,
 * asks for the map again (a failover may have moved its slots), at most
 * every NGX_AI_RELAY_CLUSTER_REFRESH ms.
 */

static ngx_ai_relay_redis_cmd_t *
ngx_ai_relay_cluster_send(ngx_ai_relay_redis_t *top,
    ngx_ai_relay_redis_cmd_t *prev, ngx_ai_relay_redis_handler_pt handler,
    void *data, int slot, u_char *buf, size_t len)
{
    ngx_uint_t                     idx;
    ngx_ai_relay_redis_t          *node;
    ngx_ai_relay_redis_cmd_t      *cmd;
    ngx_ai_relay_redis_cluster_t  *cl;

    cl = top->cluster;

    if (slot >= 0 && cl->map.owner[slot]) {
        idx = cl->map.owner[slot] - 1;

    } else {
        idx = 0;
    }

    node = ngx_ai_relay_cluster_node(top, idx);
    if (node == NULL) {
        top->stats->errors++;
        return NULL;
    }

    cmd = ngx_alloc(sizeof(ngx_ai_relay_redis_cmd_t) + len, top->log);
    if (cmd == NULL) {
        return NULL;
    }

    ngx_memzero(cmd, sizeof(ngx_ai_relay_redis_cmd_t));

    cmd->handler = handler;
    cmd->data = data;
    cmd->redis = top;
    cmd->sent = ngx_current_msec;
    cmd->buf = (u_char *) cmd + sizeof(ngx_ai_relay_redis_cmd_t);
    cmd->len = len;
    ngx_memcpy(cmd->buf, buf, len);

    if (ngx_ai_relay_cluster_resend(cmd, node) != NGX_OK) {
        ngx_free(cmd);
        return NULL;
    }

    if (prev && prev->redis == top && prev->next == NULL) {
        prev->next = cmd;
        cmd->after = prev;
    }

    return cmd;
}


static ngx_int_t
ngx_ai_relay_cluster_resend(ngx_ai_relay_redis_cmd_t *cmd,
    ngx_ai_relay_redis_t *node)
{
    ngx_ai_relay_redis_cmd_t  *ncmd;

    ncmd = ngx_ai_relay_redis_send_formatted(node, ngx_ai_relay_cluster_reply,
                                             cmd, cmd->buf, cmd->len);
    if (ncmd == NULL) {
        return NGX_ERROR;
    }

    cmd->link = node;
    cmd->node_cmd = ncmd;

    if (cmd->critical) {
        ngx_ai_relay_redis_set_critical(ncmd);
    }

    return NGX_OK;
}


static void
ngx_ai_relay_cluster_reply(void *data, redisReply *reply)
{
    ngx_ai_relay_redis_cmd_t *cmd = data;

    int                            idx;
    ngx_ai_relay_redis_t          *top, *node;
    ngx_ai_relay_redis_cluster_t  *cl;
    ngx_ai_relay_slot_redirect_t   rd;

    static u_char  asking[] = "*1\r\n$6\r\nASKING\r\n";

    cmd->node_cmd = NULL;
    top = cmd->redis;
    cl = top->cluster;

    if (reply == NULL) {
        /* the node's link is gone (schedule() asked for the map) */
        ngx_ai_relay_cluster_deliver(cmd, NULL);
        return;
    }

    if (reply->type != REDIS_REPLY_ERROR
        || ngx_exiting || ngx_quit || ngx_terminate)
    {
        ngx_ai_relay_cluster_deliver(cmd, reply);
        return;
    }

    if (ngx_ai_relay_slot_redirect(reply->str, reply->len, &rd) == 1
        && cmd->redirects < NGX_AI_RELAY_CLUSTER_REDIRECTS)
    {
        cmd->redirects++;

        idx = ngx_ai_relay_slot_node(&cl->map, rd.host, rd.port);

        node = (idx < 0) ? NULL : ngx_ai_relay_cluster_node(top, idx);

        ngx_log_debug4(NGX_LOG_DEBUG_HTTP, top->log, 0,
                       "ai relay: redis %s slot %ui to %s:%d",
                       rd.ask ? "ASK" : "MOVED", (ngx_uint_t) rd.slot,
                       rd.host, rd.port);

        if (node) {
            if (!rd.ask) {
                cl->map.owner[rd.slot] = (uint8_t) (idx + 1);
                ngx_ai_relay_cluster_refresh(top);

            } else if (ngx_ai_relay_redis_send_formatted(node, NULL, NULL,
                                                         asking,
                                                         sizeof(asking) - 1)
                       == NULL)
            {
                node = NULL;
            }
        }

        if (node && ngx_ai_relay_cluster_resend(cmd, node) == NGX_OK) {
            return;
        }

        ngx_log_error(NGX_LOG_ERR, top->log, 0,
                      "ai relay: redis cluster redirection failed: %*s",
                      (size_t) reply->len, reply->str);

    } else if (reply->len >= 8
               && ngx_strncmp(reply->str, "NOSCRIPT", 8) == 0
               && !cmd->noscript && cmd->link)
    {
        /* the node loads its scripts again, ahead of this */

        cmd->noscript = 1;

        if (ngx_ai_relay_cluster_resend(cmd, cmd->link) == NGX_OK) {
            return;
        }
    }

    ngx_ai_relay_cluster_deliver(cmd, reply);
}


/* the replies of one sender's commands reach it in their order */

static void
ngx_ai_relay_cluster_deliver(ngx_ai_relay_redis_cmd_t *cmd,
    redisReply *reply)
{
    ngx_ai_relay_redis_t      *top;
    ngx_ai_relay_redis_cmd_t  *next;

    if (cmd->after) {
        cmd->held = reply ? ngx_ai_relay_redis_reply_copy(reply) : NULL;
        cmd->replied = 1;
        return;
    }

    for ( ;; ) {
        top = cmd->redis;
        next = cmd->next;

        if (cmd->critical) {
            top->critical--;
        }

        if (cmd->handler) {
            cmd->handler(cmd->data, reply);
        }

        if (cmd->held) {
            freeReplyObject(cmd->held);
        }

        ngx_free(cmd);

        if (next == NULL) {
            return;
        }

        next->after = NULL;

        if (!next->replied) {
            return;
        }

        cmd = next;
        reply = cmd->held;
    }
}


/* a reply hiredis frees when its callback returns, kept (malloc'ed) */

static redisReply *
ngx_ai_relay_redis_reply_copy(const redisReply *r)
{
    size_t       i;
    redisReply  *c;

    c = calloc(1, sizeof(redisReply));
    if (c == NULL) {
        return NULL;
    }

    c->type = r->type;
    c->integer = r->integer;

    if (r->str) {
        c->str = malloc(r->len + 1);
        if (c->str == NULL) {
            goto failed;
        }

        ngx_memcpy(c->str, r->str, r->len);
        c->str[r->len] = '\0';
        c->len = r->len;
    }

    if (r->type == REDIS_REPLY_ARRAY && r->elements) {
        c->element = calloc(r->elements, sizeof(redisReply *));
        if (c->element == NULL) {
            goto failed;
        }

        c->elements = r->elements;

        for (i = 0; i < r->elements; i++) {
            c->element[i] = ngx_ai_relay_redis_reply_copy(r->element[i]);
            if (c->element[i] == NULL) {
                goto failed;
            }
        }
    }

    return c;

failed:

    freeReplyObject(c);

    return NULL;
}


/* a node's link, made and connected on first need */

static ngx_ai_relay_redis_t *
ngx_ai_relay_cluster_node(ngx_ai_relay_redis_t *top, ngx_uint_t idx)
{
    ngx_ai_relay_redis_t          *node;
    ngx_ai_relay_redis_cluster_t  *cl;

    cl = top->cluster;

    if (idx >= cl->map.nnodes || cl->closing) {
        return NULL;
    }

    node = cl->node[idx];

    if (node == NULL) {
        node = ngx_calloc(sizeof(ngx_ai_relay_redis_t), top->log);
        if (node == NULL) {
            return NULL;
        }

        node->host = cl->map.nodes[idx].host;
        node->port = cl->map.nodes[idx].port;
        node->password = top->password;
        node->connect_timeout = top->connect_timeout;
        node->timeout = top->timeout;
        node->script_src = top->script_src;
        node->script_sha = top->script_sha;
        node->nscripts = top->nscripts;
        node->stats = top->stats;
        node->on_ready = ngx_ai_relay_cluster_node_ready;
        node->data = top->data;
        node->top = top;
        node->index = idx;

        ngx_ai_relay_redis_init_link(node, top->log);

        cl->node[idx] = node;
    }

    if (node->ac == NULL && !node->reconnect.timer_set) {
        ngx_ai_relay_redis_connect(node);
    }

    return node;
}


/* the link of a node that owns slots, or a seed, is kept up */

static ngx_uint_t
ngx_ai_relay_cluster_wanted(ngx_ai_relay_redis_t *node)
{
    ngx_uint_t                     s;
    ngx_ai_relay_redis_cluster_t  *cl;

    cl = node->top->cluster;

    if (node->index < cl->nseeds || !cl->loaded) {
        return 1;
    }

    for (s = 0; s < NGX_AI_RELAY_SLOTS; s++) {
        if (cl->map.owner[s] == node->index + 1) {
            return 1;
        }
    }

    return 0;
}


static void
ngx_ai_relay_cluster_refresh(ngx_ai_relay_redis_t *top)
{
    ngx_msec_t                     elapsed;
    ngx_ai_relay_redis_cluster_t  *cl;

    cl = top->cluster;

    if (ngx_exiting || ngx_quit || ngx_terminate) {
        return;
    }

    if (cl->asking) {
        cl->again = 1;
        return;
    }

    if (cl->refresh.timer_set) {
        return;
    }

    elapsed = ngx_current_msec - cl->last_refresh;

    /* from a timer: this may run inside a node's callbacks */

    ngx_add_timer(&cl->refresh,
                  (cl->last_refresh == 0
                   || elapsed >= NGX_AI_RELAY_CLUSTER_REFRESH)
                  ? 1 : NGX_AI_RELAY_CLUSTER_REFRESH - elapsed);
}


static void
ngx_ai_relay_cluster_refresh_handler(ngx_event_t *ev)
{
    ngx_uint_t                     i, idx;
    const char                    *argv[2];
    size_t                         lens[2];
    ngx_ai_relay_redis_t          *top, *node;
    ngx_ai_relay_redis_cluster_t  *cl;

    top = ev->data;
    cl = top->cluster;

    if (cl->asking || ngx_exiting || ngx_quit || ngx_terminate) {
        return;
    }

    cl->last_refresh = ngx_current_msec;
    if (cl->last_refresh == 0) {
        cl->last_refresh = 1;
    }

    /* a node whose link is up answers; else the next one tried */

    node = NULL;

    for (i = 0; i < cl->map.nnodes; i++) {
        idx = (cl->next + i) % cl->map.nnodes;

        if (cl->node[idx]
            && cl->node[idx]->state == NGX_AI_RELAY_REDIS_READY)
        {
            node = cl->node[idx];
            break;
        }
    }

    if (node == NULL) {
        node = ngx_ai_relay_cluster_node(top, cl->next % cl->map.nnodes);
    }

    cl->next++;

    argv[0] = "CLUSTER";
    lens[0] = sizeof("CLUSTER") - 1;
    argv[1] = "SLOTS";
    lens[1] = sizeof("SLOTS") - 1;

    if (node) {
        cl->asked = node->index;
    }

    if (node == NULL
        || ngx_ai_relay_redis_send(node, ngx_ai_relay_cluster_slots_reply,
                                   top, 2, argv, lens)
           == NULL)
    {
        ngx_ai_relay_cluster_refresh(top);
        return;
    }

    cl->asking = 1;
}


static void
ngx_ai_relay_cluster_slots_reply(void *data, redisReply *reply)
{
    ngx_ai_relay_redis_t *top = data;

    int                            covered;
    ngx_uint_t                     s, i, level;
    ngx_ai_relay_redis_cluster_t  *cl;
    u_char                         owns[NGX_AI_RELAY_SLOT_MAX_NODES];

    cl = top->cluster;
    cl->asking = 0;

    /*
     * a full node table gives a new master the index of a node the
     * cluster no longer names: never the seeds, the node answering, or
     * one with commands in flight
     */

    cl->map.pinned = (uint32_t) 1 << cl->asked;

    for (i = 0; i < cl->map.nnodes; i++) {
        if (i < cl->nseeds || (cl->node[i] && cl->node[i]->pending)) {
            cl->map.pinned |= (uint32_t) 1 << i;
        }
    }

    covered = ngx_ai_relay_slot_map_parse(&cl->map, reply);

    if (covered <= 0) {
        if (reply) {
            ngx_log_error(NGX_LOG_ERR, top->log, 0,
                          "ai relay: redis cluster slots: %s",
                          reply->type == REDIS_REPLY_ERROR
                          ? reply->str : "malformed or empty reply");
        }

        ngx_ai_relay_cluster_refresh(top);
        return;
    }

    if (!cl->loaded || covered != NGX_AI_RELAY_SLOTS) {
        level = (covered == NGX_AI_RELAY_SLOTS) ? NGX_LOG_INFO
                                                : NGX_LOG_WARN;

        ngx_log_error(level, top->log, 0,
                      "ai relay: redis cluster: %d of %d slots served, "
                      "%ui nodes known", covered, NGX_AI_RELAY_SLOTS,
                      (ngx_uint_t) cl->map.nnodes);
    }

    /* their address changed: the next connection goes there */

    for (i = 0; cl->map.replaced && i < cl->map.nnodes; i++) {
        if (!(cl->map.replaced & ((uint32_t) 1 << i))) {
            continue;
        }

        ngx_log_error(NGX_LOG_NOTICE, top->log, 0,
                      "ai relay: redis cluster: node %ui is %s:%d now",
                      i, cl->map.nodes[i].host, cl->map.nodes[i].port);

        if (cl->node[i] && cl->node[i]->ac) {
            ngx_ai_relay_redis_drop(cl->node[i], NULL);
        }
    }

    cl->loaded = 1;
    top->state = NGX_AI_RELAY_REDIS_READY;

    /* every master's link up now, ahead of the requests */

    ngx_memzero(owns, sizeof(owns));

    for (s = 0; s < NGX_AI_RELAY_SLOTS; s++) {
        if (cl->map.owner[s]) {
            owns[cl->map.owner[s] - 1] = 1;
        }
    }

    for (i = 0; i < cl->map.nnodes; i++) {
        if (owns[i]) {
            (void) ngx_ai_relay_cluster_node(top, i);
        }
    }

    if (cl->again) {
        cl->again = 0;
        ngx_ai_relay_cluster_refresh(top);
    }

    if (top->on_ready) {
        top->on_ready(top);
    }
}


static void
ngx_ai_relay_cluster_node_ready(ngx_ai_relay_redis_t *node)
{
    ngx_ai_relay_redis_t  *top;

    top = node->top;

    if (top->cluster->loaded && top->on_ready) {
        top->on_ready(top);
    }
}


static void
ngx_ai_relay_cluster_close(ngx_ai_relay_redis_t *top)
{
    ngx_uint_t                     i;
    ngx_ai_relay_redis_cluster_t  *cl;

    cl = top->cluster;

    if (cl->refresh.timer_set) {
        ngx_del_timer(&cl->refresh);
    }

    /* callbacks that send again find no link */
    cl->closing = 1;

    /* each unanswered command is called back with NULL */

    for (i = 0; i < NGX_AI_RELAY_SLOT_MAX_NODES; i++) {
        if (cl->node[i]) {
            ngx_ai_relay_redis_close(cl->node[i]);
            ngx_free(cl->node[i]);
            cl->node[i] = NULL;
        }
    }

    cl->loaded = 0;
    cl->asking = 0;
    cl->closing = 0;
    top->state = NGX_AI_RELAY_REDIS_DISCONNECTED;
}


/*
 * Redis Sentinel.  The worker's link connects to the address the
 * sentinels give for the master's name (SENTINEL get-master-addr-by-name,
 * asked of a sentinel whose link is up, else of the next one), and asks
 * again whenever that link is lost or a connect fails (schedule() forgets
 * the address), or a write is refused with READONLY (a master demoted
 * under a link that stayed up).  A second link, to one sentinel at a
 * time, subscribes to +switch-master and moves the link at once.
 */

static ngx_ai_relay_redis_t *
ngx_ai_relay_sentinel_link(ngx_ai_relay_redis_t *top, ngx_uint_t idx)
{
    ngx_ai_relay_redis_t           *link;
    ngx_ai_relay_redis_sentinel_t  *s;

    s = top->sentinel;

    link = ngx_calloc(sizeof(ngx_ai_relay_redis_t), top->log);
    if (link == NULL) {
        return NULL;
    }

    link->host = s->addrs[idx].host;
    link->port = s->addrs[idx].port;
    link->connect_timeout = top->connect_timeout;
    link->timeout = top->timeout;
    link->stats = &ngx_ai_relay_redis_no_stats;
    link->sentinel_of = top;

    ngx_ai_relay_redis_init_link(link, top->log);

    return link;
}


static void
ngx_ai_relay_sentinel_ask(ngx_ai_relay_redis_t *top)
{
    size_t                          lens[3];
    ngx_uint_t                      i, idx;
    const char                     *argv[3];
    ngx_ai_relay_redis_t           *link;
    ngx_ai_relay_redis_sentinel_t  *s;

    s = top->sentinel;

    if (s->asking || ngx_exiting || ngx_quit || ngx_terminate) {
        return;
    }

    if (s->sub == NULL) {
        s->sub = ngx_ai_relay_sentinel_link(top, 0);

        if (s->sub) {
            s->sub->on_ready = ngx_ai_relay_sentinel_subscribe;
            ngx_ai_relay_redis_connect(s->sub);
        }
    }

    link = NULL;

    for (i = 0; i < s->naddrs; i++) {
        idx = (s->next + i) % s->naddrs;

        if (s->link[idx] && s->link[idx]->state == NGX_AI_RELAY_REDIS_READY) {
            link = s->link[idx];
            break;
        }
    }

    if (link == NULL) {
        idx = s->next % s->naddrs;

        if (s->link[idx] == NULL) {
            s->link[idx] = ngx_ai_relay_sentinel_link(top, idx);
        }

        link = s->link[idx];
    }

    argv[0] = "SENTINEL";
    lens[0] = sizeof("SENTINEL") - 1;
    argv[1] = "get-master-addr-by-name";
    lens[1] = sizeof("get-master-addr-by-name") - 1;
    argv[2] = (const char *) s->name.data;
    lens[2] = s->name.len;

    if (link == NULL
        || ngx_ai_relay_redis_send(link, ngx_ai_relay_sentinel_reply, top,
                                   3, argv, lens)
           == NULL)
    {
        ngx_ai_relay_sentinel_later(s);
        return;
    }

    s->asking = 1;
}


static void
ngx_ai_relay_sentinel_retry_handler(ngx_event_t *ev)
{
    ngx_ai_relay_redis_t  *top;

    top = ev->data;

    if (!top->sentinel->known && top->ac) {
        /* READONLY: the link goes, the answer makes a new one */
        ngx_ai_relay_redis_drop(top, NULL);
    }

    ngx_ai_relay_sentinel_ask(top);
}


static void
ngx_ai_relay_sentinel_reply(void *data, redisReply *reply)
{
    ngx_ai_relay_redis_t *top = data;

    ngx_ai_relay_redis_sentinel_t  *s;

    s = top->sentinel;
    s->asking = 0;

    if (reply) {
        /* a sentinel answered */
        s->fails = 0;
    }

    if (reply && reply->type == REDIS_REPLY_ARRAY && reply->elements == 2
        && reply->element[0]->type == REDIS_REPLY_STRING
        && reply->element[1]->type == REDIS_REPLY_STRING)
    {
        ngx_ai_relay_sentinel_master(top, reply->element[0]->str,
                                     reply->element[0]->len,
                                     reply->element[1]->str,
                                     reply->element[1]->len);
        if (s->known) {
            return;
        }

    } else if (reply) {
        ngx_log_error(NGX_LOG_ERR, top->log, 0,
                      "ai relay: redis sentinel knows no master \"%V\"%s%s",
                      &s->name,
                      reply->type == REDIS_REPLY_ERROR ? ": " : "",
                      reply->type == REDIS_REPLY_ERROR ? reply->str : "");
    }

    /* unreachable, or no answer: the next sentinel, a little later */

    ngx_ai_relay_sentinel_later(s);
}


/*
 * The next sentinel in 100 ms; once every one was asked in vain, the
 * pause doubles each round, up to 3 s, until one answers.
 */

static void
ngx_ai_relay_sentinel_later(ngx_ai_relay_redis_sentinel_t *s)
{
    ngx_uint_t  rounds;
    ngx_msec_t  delay;

    s->next++;
    s->fails++;

    rounds = s->fails / s->naddrs;
    delay = NGX_AI_RELAY_CLUSTER_REFRESH;

    while (rounds-- && delay < NGX_AI_RELAY_SENTINEL_RO_MAX) {
        delay *= 2;
    }

    delay = ngx_min(delay, NGX_AI_RELAY_SENTINEL_RO_MAX);

    if (!s->retry.timer_set && !ngx_exiting && !ngx_quit && !ngx_terminate) {
        ngx_add_timer(&s->retry, delay);
    }
}


/* the master is at host:port: the link goes there */

static void
ngx_ai_relay_sentinel_master(ngx_ai_relay_redis_t *top, const char *host,
    size_t len, const char *port, size_t plen)
{
    ngx_int_t                       n;
    ngx_ai_relay_redis_sentinel_t  *s;

    s = top->sentinel;

    n = ngx_atoi((u_char *) port, plen);

    if (n < 1 || n > 65535 || len == 0 || len >= NGX_AI_RELAY_SLOT_HOST_LEN
        || (ngx_inet_addr((u_char *) host, len) == INADDR_NONE
#if (NGX_HAVE_INET6)
            && ngx_inet6_addr((u_char *) host, len, NULL) != NGX_OK
#endif
           ))
    {
        ngx_log_error(NGX_LOG_ERR, top->log, 0,
                      "ai relay: redis sentinel gave \"%*s:%*s\" for \"%V\", "
                      "not a numeric address", len, host, plen, port,
                      &s->name);
        return;
    }

    if (top->port != n || ngx_strlen(s->host) != len
        || ngx_strncmp(s->host, host, len) != 0)
    {
        ngx_log_error(NGX_LOG_NOTICE, top->log, 0,
                      "ai relay: redis sentinel: master \"%V\" is at %*s:%i",
                      &s->name, len, host, n);

        ngx_memcpy(s->host, host, len);
        s->host[len] = '\0';
        top->port = (int) n;
        s->known = 1;
        s->readonly = 0;
        s->ro_backoff = 0;

        /* the callbacks this runs may connect again: to the new address */

        if (top->ac) {
            ngx_ai_relay_redis_drop(top, NULL);
        }
    }

    s->known = 1;

    if (s->readonly && top->ac == NULL) {

        /*
         * the sentinels still name the node that refused a write (they
         * have not seen it demoted yet): connect again after a pause
         * that grows, not at once and again for every refused write
         */

        s->readonly = 0;
        s->ro_backoff = s->ro_backoff ? ngx_min(2 * s->ro_backoff,
                                               NGX_AI_RELAY_SENTINEL_RO_MAX)
                                      : NGX_AI_RELAY_SENTINEL_RO_MIN;

        ngx_log_error(NGX_LOG_WARN, top->log, 0,
                      "ai relay: redis sentinel still names %s:%d, which "
                      "refused a write, as master \"%V\": connecting "
                      "again in %M ms", s->host, top->port, &s->name,
                      s->ro_backoff);

        if (!top->reconnect.timer_set) {
            ngx_add_timer(&top->reconnect, s->ro_backoff);
        }

        return;
    }

    if (top->ac == NULL) {
        ngx_ai_relay_redis_connect(top);
    }
}


static void
ngx_ai_relay_sentinel_subscribe(ngx_ai_relay_redis_t *sub)
{
    if (redisAsyncCommand(sub->ac, ngx_ai_relay_sentinel_switch,
                          sub->sentinel_of, "SUBSCRIBE +switch-master")
        != REDIS_OK)
    {
        ngx_log_error(NGX_LOG_ERR, sub->log, 0,
                      "ai relay: redis sentinel subscribe failed");
    }
}


/* "+switch-master" "<name> <old ip> <old port> <new ip> <new port>" */

static void
ngx_ai_relay_sentinel_switch(redisAsyncContext *ac, void *r, void *privdata)
{
    char                           *p, *end, *f[5];
    size_t                          flen[5];
    ngx_uint_t                      n;
    redisReply                     *reply;
    ngx_ai_relay_redis_t           *top;
    ngx_ai_relay_redis_sentinel_t  *s;

    reply = r;
    top = privdata;
    s = top->sentinel;

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY
        || reply->elements != 3
        || reply->element[0]->type != REDIS_REPLY_STRING
        || ngx_strcmp(reply->element[0]->str, "message") != 0
        || reply->element[2]->type != REDIS_REPLY_STRING)
    {
        return;
    }

    p = reply->element[2]->str;
    end = p + reply->element[2]->len;

    for (n = 0; n < 5 && p < end; n++) {
        f[n] = p;

        while (p < end && *p != ' ') {
            p++;
        }

        flen[n] = p - f[n];
        p++;
    }

    if (n != 5 || flen[0] != s->name.len
        || ngx_strncmp(f[0], s->name.data, flen[0]) != 0)
    {
        return;
    }

    ngx_log_error(NGX_LOG_NOTICE, top->log, 0,
                  "ai relay: redis sentinel: +switch-master %*s",
                  (size_t) reply->element[2]->len, reply->element[2]->str);

    ngx_ai_relay_sentinel_master(top, f[3], flen[3], f[4], flen[4]);
}


static void
ngx_ai_relay_sentinel_close(ngx_ai_relay_redis_t *top)
{
    ngx_uint_t                      i;
    ngx_ai_relay_redis_sentinel_t  *s;

    s = top->sentinel;

    if (s->retry.timer_set) {
        ngx_del_timer(&s->retry);
    }

    for (i = 0; i < NGX_AI_RELAY_SLOT_MAX_NODES; i++) {
        if (s->link[i]) {
            ngx_ai_relay_redis_close(s->link[i]);
            ngx_free(s->link[i]);
            s->link[i] = NULL;
        }
    }

    if (s->sub) {
        ngx_ai_relay_redis_close(s->sub);
        ngx_free(s->sub);
        s->sub = NULL;
    }

    s->asking = 0;
    s->known = 0;
}
