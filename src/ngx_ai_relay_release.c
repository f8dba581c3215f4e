
/*
 * Copyright (C) ngx_ai_relay authors
 *
 * A reservation nobody will settle: the request stopped waiting for its
 * AUTH reply (the Redis timeout answered 503, or the client left), but
 * Redis may still run AUTH and reserve the money.  The pending command
 * is handed to a reply handler that outlives the request: if AUTH did
 * reserve, RELEASE gives the money back at once instead of after
 * ai_relay_reservation_ttl.  If the link drops first (a Redis too slow
 * to answer is dropped by the watchdog), nobody knows whether AUTH ran:
 * RELEASE goes out when the link is back, and leaves a tombstone
 * ("ar:{u<id>}:gone:<request id>", for the TTL) that makes an AUTH still
 * on its way reserve nothing.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_ai_relay_module.h"
#include "ngx_ai_relay_release.h"
#include "ngx_ai_relay_lua.h"


#define NGX_AI_RELAY_RELEASE_MAX  10000


typedef struct {
    ngx_queue_t                queue;
    ngx_ai_relay_main_conf_t  *armcf;
    ngx_str_t                  user_id;
    ngx_str_t                  request_id;
} ngx_ai_relay_release_t;


static void ngx_ai_relay_release_auth_reply(void *data, redisReply *reply);
static void ngx_ai_relay_release_lease_reply(void *data, redisReply *reply);
static void ngx_ai_relay_release_reply(void *data, redisReply *reply);
static void ngx_ai_relay_release_send(ngx_ai_relay_release_t *rl);
static void ngx_ai_relay_release_later(ngx_ai_relay_release_t *rl);


static ngx_ai_relay_release_t *
ngx_ai_relay_release_create(ngx_http_request_t *r, ngx_ai_relay_ctx_t *ctx)
{
    u_char                  *p;
    ngx_ai_relay_release_t  *rl;

    rl = ngx_alloc(sizeof(ngx_ai_relay_release_t) + ctx->key.user_id.len
                   + ctx->request_id.len, r->connection->log);

    if (rl == NULL) {
        return NULL;
    }

    rl->armcf = ngx_http_get_module_main_conf(r, ngx_ai_relay_module);

    p = (u_char *) (rl + 1);
    rl->user_id.data = p;
    rl->user_id.len = ctx->key.user_id.len;
    p = ngx_cpymem(p, ctx->key.user_id.data, ctx->key.user_id.len);
    rl->request_id.data = p;
    rl->request_id.len = ctx->request_id.len;
    ngx_memcpy(p, ctx->request_id.data, ctx->request_id.len);

    return rl;
}


void
ngx_ai_relay_release_late(ngx_http_request_t *r, ngx_ai_relay_ctx_t *ctx,
    ngx_ai_relay_redis_cmd_t *cmd)
{
    ngx_ai_relay_release_t  *rl;

    rl = ngx_ai_relay_release_create(r, ctx);

    if (rl == NULL) {
        /* the reservation's TTL still refunds it */
        ngx_ai_relay_redis_detach(cmd);
        return;
    }

    ngx_ai_relay_redis_reattach(cmd, ngx_ai_relay_release_auth_reply, rl);
}


/*
 * A lease Redis may hold that its worker has let go: its LEASE went
 * unanswered (the link was lost; nobody spent from it), or the RELEASE
 * cmd that gives back what is left does not get through.  Released
 * whole (settlements still on their way charge the balance instead) when
 * the link is back, as a request's reservation is.
 */

void
ngx_ai_relay_release_id(ngx_ai_relay_main_conf_t *armcf, ngx_str_t *user_id,
    ngx_str_t *id, ngx_ai_relay_redis_cmd_t *cmd)
{
    u_char                  *p;
    ngx_ai_relay_release_t  *rl;

    rl = ngx_alloc(sizeof(ngx_ai_relay_release_t) + user_id->len + id->len,
                   ngx_cycle->log);
    if (rl == NULL) {
        /* the lease's TTL still refunds it */
        return;
    }

    rl->armcf = armcf;

    p = (u_char *) (rl + 1);
    rl->user_id.data = p;
    rl->user_id.len = user_id->len;
    p = ngx_cpymem(p, user_id->data, user_id->len);
    rl->request_id.data = p;
    rl->request_id.len = id->len;
    ngx_memcpy(p, id->data, id->len);

    if (cmd) {
        /* its reply, NULL if the link goes first, says whether it did */
        ngx_ai_relay_redis_reattach(cmd, ngx_ai_relay_release_lease_reply,
                                    rl);
        return;
    }

    ngx_ai_relay_release_send(rl);
}


/*
 * The link dropped while the request waited for AUTH: Redis may have run
 * it (a kill after the AOF write, before the reply left), and the request
 * now fails without settling.  As for a reply that outlived its request:
 * RELEASE when the link is back, with a tombstone.
 */

void
ngx_ai_relay_release_lost(ngx_http_request_t *r, ngx_ai_relay_ctx_t *ctx)
{
    ngx_ai_relay_release_t  *rl;

    rl = ngx_ai_relay_release_create(r, ctx);

    if (rl != NULL) {
        ngx_ai_relay_release_later(rl);
    }
}


/* AUTH's reply, after its request gave up on it */

static void
ngx_ai_relay_release_auth_reply(void *data, redisReply *reply)
{
    ngx_ai_relay_release_t *rl = data;

    if (reply == NULL) {
        /* did AUTH run?  RELEASE when the link is back, with a tombstone */
        ngx_ai_relay_release_later(rl);
        return;
    }

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements == 0
        || reply->element[0]->type != REDIS_REPLY_STRING
        || reply->element[0]->len != 2
        || ngx_strncmp(reply->element[0]->str, "ok", 2) != 0)
    {
        /* refused, or an error: nothing was reserved */
        ngx_free(rl);
        return;
    }

    ngx_ai_relay_release_send(rl);
}


/*
 * A lease's RELEASE answered: an integer, it ran.  An error (TRYAGAIN
 * while its slot migrates, READONLY from a demoted master, CLUSTERDOWN,
 * LOADING, too many redirections) ran nothing: released whole later, as
 * when the link goes first.
 */

static void
ngx_ai_relay_release_lease_reply(void *data, redisReply *reply)
{
    ngx_ai_relay_release_t *rl = data;

    ngx_event_t  *retry;

    if (reply != NULL && reply->type == REDIS_REPLY_INTEGER) {
        ngx_free(rl);
        return;
    }

    retry = &rl->armcf->worker->release_retry;

    if (reply != NULL) {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "ai relay: releasing lease %V failed (%*s), trying "
                      "again", &rl->request_id,
                      (size_t) (reply->type == REDIS_REPLY_ERROR
                                ? reply->len : 0),
                      reply->type == REDIS_REPLY_ERROR ? reply->str : "");
    }

    /* rl may be freed here */
    ngx_ai_relay_release_later(rl);

    if (reply != NULL && !retry->timer_set) {
        ngx_add_timer(retry, 500);
    }
}


/*
 * EVALSHA RELEASE 2 ar:{u<id>}:user ar:{u<id>}:res <request id>
 *         ar:{u<id>}: <tombstone TTL>
 */

static void
ngx_ai_relay_release_send(ngx_ai_relay_release_t *rl)
{
    u_char                    *p;
    size_t                     lens[8];
    const char                *argv[8];
    ngx_ai_relay_redis_t      *rds;
    ngx_ai_relay_redis_cmd_t  *cmd;

    rds = rl->armcf->worker->redis;

    if (rds->state != NGX_AI_RELAY_REDIS_READY) {
        ngx_ai_relay_release_later(rl);
        return;
    }

    p = ngx_alloc(3 * (sizeof(NGX_AI_RELAY_RKEY_USER("")) + rl->user_id.len)
                  + NGX_TIME_T_LEN, ngx_cycle->log);
    if (p == NULL) {
        ngx_free(rl);
        return;
    }

    argv[0] = "EVALSHA";
    lens[0] = sizeof("EVALSHA") - 1;
    argv[1] = (const char *) rds->script_sha[NGX_AI_RELAY_SCRIPT_RELEASE].data;
    lens[1] = rds->script_sha[NGX_AI_RELAY_SCRIPT_RELEASE].len;
    argv[2] = "2";
    lens[2] = 1;
    argv[3] = (const char *) p;
    lens[3] = ngx_sprintf(p, NGX_AI_RELAY_RKEY_USER("%V"), &rl->user_id) - p;
    argv[4] = argv[3] + lens[3];
    lens[4] = ngx_sprintf((u_char *) argv[4], NGX_AI_RELAY_RKEY_RES("%V"),
                          &rl->user_id)
              - (u_char *) argv[4];
    argv[5] = (const char *) rl->request_id.data;
    lens[5] = rl->request_id.len;
    argv[6] = argv[4] + lens[4];
    lens[6] = ngx_sprintf((u_char *) argv[6], NGX_AI_RELAY_RKEY_U("%V"),
                          &rl->user_id)
              - (u_char *) argv[6];
    argv[7] = argv[6] + lens[6];
    lens[7] = ngx_sprintf((u_char *) argv[7], "%T",
                          rl->armcf->reservation_ttl)
              - (u_char *) argv[7];

    cmd = ngx_ai_relay_redis_send(rds, ngx_ai_relay_release_reply, rl, 8,
                                  argv, lens);
    ngx_free(p);

    if (cmd == NULL) {
        ngx_ai_relay_release_later(rl);
        return;
    }

    ngx_ai_relay_redis_set_critical(cmd);
}


static void
ngx_ai_relay_release_later(ngx_ai_relay_release_t *rl)
{
    ngx_ai_relay_main_conf_t  *armcf;

    armcf = rl->armcf;

    if (armcf->worker->release_n >= NGX_AI_RELAY_RELEASE_MAX) {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "ai relay: too many releases waiting for redis; the "
                      "reservation of request %V, if any, is refunded after "
                      "its TTL", &rl->request_id);
        ngx_free(rl);
        return;
    }

    ngx_log_error(NGX_LOG_NOTICE, ngx_cycle->log, 0,
                  "ai relay: the reservation of request %V is released "
                  "when redis takes it", &rl->request_id);

    ngx_queue_insert_tail(&armcf->worker->release_queue, &rl->queue);
    armcf->worker->release_n++;
}


/* a release Redis refused: its timer */

void
ngx_ai_relay_release_retry_handler(ngx_event_t *ev)
{
    ngx_ai_relay_main_conf_t  *armcf;

    armcf = ev->data;

    if (armcf->worker->redis->state == NGX_AI_RELAY_REDIS_READY) {
        ngx_ai_relay_release_replay(armcf);
    }
}


/* the link is (back) up: the releases that waited for it */

void
ngx_ai_relay_release_replay(ngx_ai_relay_main_conf_t *armcf)
{
    ngx_queue_t              pending, *q;
    ngx_ai_relay_release_t  *rl;

    if (ngx_queue_empty(&armcf->worker->release_queue)) {
        return;
    }

    ngx_queue_init(&pending);
    ngx_queue_add(&pending, &armcf->worker->release_queue);
    ngx_queue_init(&armcf->worker->release_queue);
    armcf->worker->release_n = 0;

    while (!ngx_queue_empty(&pending)) {
        q = ngx_queue_head(&pending);
        ngx_queue_remove(q);

        rl = ngx_queue_data(q, ngx_ai_relay_release_t, queue);
        ngx_ai_relay_release_send(rl);
    }
}


static void
ngx_ai_relay_release_reply(void *data, redisReply *reply)
{
    ngx_ai_relay_release_t *rl = data;

    ngx_event_t  *retry;

    if (reply == NULL) {
        ngx_ai_relay_release_later(rl);
        return;
    }

    if (reply->type == REDIS_REPLY_ERROR) {

        /* LOADING after a restart, OOM, ...: again, after a pause */

        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "ai relay: releasing the reservation of request %V "
                      "failed (%s), trying again", &rl->request_id,
                      reply->str);

        retry = &rl->armcf->worker->release_retry;

        /* rl may be freed here */
        ngx_ai_relay_release_later(rl);

        if (!retry->timer_set) {
            ngx_add_timer(retry, 500);
        }

        return;

    } else {
        ngx_log_error(NGX_LOG_NOTICE, ngx_cycle->log, 0,
                      "ai relay: reservation of request %V released: the "
                      "request gave up before AUTH answered",
                      &rl->request_id);
    }

    ngx_free(rl);
}
