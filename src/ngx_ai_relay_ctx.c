
/*
 * Copyright (C) ngx_ai_relay authors
 *
 * A request's state (the ctx) and its waits on Redis.  The ctx is made
 * once per request and found again after an internal redirect; a command
 * sent for the request suspends it until the reply resumes it, within
 * one deadline.  If the request ends first, its pending commands are
 * detached, so their replies touch nothing (an AUTH that may have
 * reserved money is released instead).
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_ai_relay_module.h"
#include "ngx_ai_relay_ctx.h"
#include "ngx_ai_relay_error.h"
#include "ngx_ai_relay_release.h"


static void ngx_ai_relay_ctx_anchor(void *data);
static void ngx_ai_relay_timeout_handler(ngx_event_t *ev);


ngx_ai_relay_ctx_t *
ngx_ai_relay_get_ctx(ngx_http_request_t *r)
{
    ngx_pool_cleanup_t  *anchor;
    ngx_http_cleanup_t  *cln;
    ngx_ai_relay_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_ai_relay_module);
    if (ctx) {
        return ctx;
    }

    if (r->internal) {

        /* a failover's internal redirect: the request goes on with it */

        ctx = ngx_ai_relay_find_ctx(r);

        if (ctx && ctx->route.failover) {
            ctx->route.failover = 0;
            ngx_http_set_ctx(r, ctx, ngx_ai_relay_module);
            return ctx;
        }
    }

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_ai_relay_ctx_t));
    if (ctx == NULL) {
        return NULL;
    }

    cln = ngx_http_cleanup_add(r, 0);
    if (cln == NULL) {
        return NULL;
    }

    anchor = ngx_pool_cleanup_add(r->pool, 0);
    if (anchor == NULL) {
        return NULL;
    }

    anchor->handler = ngx_ai_relay_ctx_anchor;
    anchor->data = ctx;

    cln->handler = ngx_ai_relay_ctx_cleanup;
    cln->data = ctx;

    ctx->timeout.handler = ngx_ai_relay_timeout_handler;
    ctx->timeout.data = r;
    ctx->timeout.log = r->connection->log;

    ctx->stream.ttft = (ngx_msec_t) NGX_AI_RELAY_UNSET;

    ngx_http_set_ctx(r, ctx, ngx_ai_relay_module);

    return ctx;
}


/*
 * The ctx after an internal redirect (error_page, or proxy_intercept_errors)
 * cleared r->ctx: a pool cleanup that does nothing holds it (the request's
 * own cleanups are run and dropped before the LOG phase), so the request
 * is settled and logged exactly once.
 */

ngx_ai_relay_ctx_t *
ngx_ai_relay_find_ctx(ngx_http_request_t *r)
{
    ngx_pool_cleanup_t  *cln;
    ngx_ai_relay_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_ai_relay_module);

    if (ctx) {
        return ctx;
    }

    for (cln = r->pool->cleanup; cln; cln = cln->next) {
        if (cln->handler == ngx_ai_relay_ctx_anchor) {
            ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                           "ai relay: ctx found again after a redirect");
            return cln->data;
        }
    }

    return NULL;
}


static void
ngx_ai_relay_ctx_anchor(void *data)
{
    /* void */
}


/*
 * Queue one Redis command for the request.  Commands queued back to back
 * are pipelined; their replies arrive in order and share one deadline.
 * Returns NGX_AGAIN, or NGX_ERROR with the client's error set.
 */

ngx_int_t
ngx_ai_relay_wait(ngx_http_request_t *r, ngx_ai_relay_ctx_t *ctx,
    ngx_ai_relay_redis_handler_pt handler, int argc, const char **argv,
    const size_t *argvlen)
{
    ngx_ai_relay_redis_t      *rds;
    ngx_ai_relay_redis_cmd_t  *cmd;
    ngx_ai_relay_main_conf_t  *armcf;

    armcf = ngx_http_get_module_main_conf(r, ngx_ai_relay_module);

    if (ctx->nsent == NGX_AI_RELAY_MAX_CMDS) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "ai relay: too many redis commands");
        goto failed;
    }

    rds = ngx_ai_relay_redis_link(armcf);
    if (rds == NULL) {
        goto failed;
    }

    /* its handler runs after the one of the command sent before */

    cmd = ngx_ai_relay_redis_send_after(rds,
                                        ctx->nsent ? ctx->cmds[ctx->nsent - 1]
                                                   : NULL,
                                        handler, r, argc, argv, argvlen);

    if (cmd == NULL) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "ai relay: redis is not connected");
        goto failed;
    }

    ctx->cmds[ctx->nsent++] = cmd;

    if (!ctx->timeout.timer_set) {
        ngx_add_timer(&ctx->timeout, armcf->timeout);
    }

    /* a client that goes away now terminates the request */

    r->read_event_handler = ngx_http_test_reading;
    r->write_event_handler = ngx_http_request_empty_handler;

    return NGX_AGAIN;

failed:

    ngx_ai_relay_ctx_cleanup(ngx_http_get_module_ctx(r, ngx_ai_relay_module));

    ngx_ai_relay_set_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                           "service_unavailable",
                           "The relay's state store is unavailable, "
                           "please retry shortly.");
    return NGX_ERROR;
}


/* the reply for the oldest pending command of this request */

ngx_ai_relay_ctx_t *
ngx_ai_relay_reply_ctx(ngx_http_request_t *r, redisReply *reply)
{
    ngx_ai_relay_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_ai_relay_module);

    ctx->cmds[ctx->nreplied++] = NULL;

    if (ctx->nreplied == ctx->nsent) {
        ctx->nsent = 0;
        ctx->nreplied = 0;

        if (ctx->timeout.timer_set) {
            ngx_del_timer(&ctx->timeout);
        }
    }

    if (reply == NULL) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "ai relay: redis connection failed while waiting");

        if (ctx->state != NGX_AI_RELAY_STATE_DONE) {
            ngx_ai_relay_set_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                   "service_unavailable",
                                   "The relay's state store is unavailable, "
                                   "please retry shortly.");
        }

    } else if (reply->type == REDIS_REPLY_ERROR) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "ai relay: redis error: %*s",
                      (size_t) reply->len, reply->str);

        if (ctx->state != NGX_AI_RELAY_STATE_DONE) {
            ngx_ai_relay_set_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                   "service_unavailable",
                                   "The relay's state store failed, "
                                   "please retry shortly.");
        }
    }

    return ctx;
}


ngx_int_t
ngx_ai_relay_reply_string(ngx_http_request_t *r, redisReply *reply,
    ngx_str_t *s)
{
    if (reply == NULL
        || (reply->type != REDIS_REPLY_STRING
            && reply->type != REDIS_REPLY_STATUS
            && reply->type != REDIS_REPLY_INTEGER))
    {
        ngx_str_null(s);
        return NGX_DECLINED;
    }

    if (reply->type == REDIS_REPLY_INTEGER) {
        s->data = ngx_pnalloc(r->pool, NGX_INT64_LEN);
        if (s->data == NULL) {
            return NGX_ERROR;
        }

        s->len = ngx_sprintf(s->data, "%L", (int64_t) reply->integer)
                 - s->data;
        return NGX_OK;
    }

    s->len = reply->len;
    s->data = ngx_pnalloc(r->pool, reply->len + 1);
    if (s->data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(s->data, reply->str, reply->len);
    s->data[s->len] = '\0';

    return NGX_OK;
}


void
ngx_ai_relay_resume(ngx_http_request_t *r)
{
    ngx_connection_t  *c;

    c = r->connection;

    ngx_http_set_log_request(c->log, r);

    r->read_event_handler = ngx_http_block_reading;
    r->write_event_handler = ngx_http_core_run_phases;

    ngx_http_core_run_phases(r);
    ngx_http_run_posted_requests(c);
}


static void
ngx_ai_relay_timeout_handler(ngx_event_t *ev)
{
    ngx_http_request_t        *r;
    ngx_ai_relay_main_conf_t  *armcf;

    r = ev->data;

    armcf = ngx_http_get_module_main_conf(r, ngx_ai_relay_module);

    ngx_log_error(NGX_LOG_ERR, r->connection->log, NGX_ETIMEDOUT,
                  "ai relay: redis did not answer within %M ms",
                  armcf->timeout);

    ngx_ai_relay_ctx_cleanup(ngx_http_get_module_ctx(r, ngx_ai_relay_module));
    ngx_ai_relay_redis_timed_out(armcf->worker->redis);

    ngx_ai_relay_set_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                           "service_unavailable",
                           "The relay's state store did not answer in "
                           "time, please retry shortly.");
    ngx_ai_relay_resume(r);
}


/* the request ends (or gives up waiting): replies must not touch it */

void
ngx_ai_relay_ctx_cleanup(void *data)
{
    ngx_ai_relay_ctx_t  *ctx = data;

    ngx_uint_t           i;
    ngx_http_request_t  *r;

    if (ctx == NULL) {
        return;
    }

    r = ctx->timeout.data;

    for (i = ctx->nreplied; i < ctx->nsent; i++) {
        if (ctx->cmds[i]) {
            ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                           "ai relay: redis reply no longer awaited");

            if (ctx->cmds[i] == ctx->auth_cmd) {
                ngx_ai_relay_release_late(r, ctx, ctx->cmds[i]);

            } else {
                ngx_ai_relay_redis_detach(ctx->cmds[i]);
            }

            ctx->cmds[i] = NULL;
        }
    }

    ctx->auth_cmd = NULL;

    ctx->nsent = 0;
    ctx->nreplied = 0;

    if (ctx->timeout.timer_set) {
        ngx_del_timer(&ctx->timeout);
    }
}


const char *
ngx_ai_relay_script_sha(ngx_http_request_t *r, ngx_uint_t n, size_t *len)
{
    ngx_ai_relay_main_conf_t  *armcf;

    armcf = ngx_http_get_module_main_conf(r, ngx_ai_relay_module);

    *len = armcf->worker->redis->script_sha[n].len;

    return (const char *) armcf->worker->redis->script_sha[n].data;
}
