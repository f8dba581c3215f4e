
/*
 * Copyright (C) ngx_ai_relay authors
 *
 * A task of the key's own user, on the channel that accepted it: polls,
 * downloads and deletes (GET /v1/videos/{id}, .../content, DELETE, GET
 * /v1/video/generations/{id}, GET /api/v1/tasks/{id}), and the remix of a
 * video (POST /v1/videos/{id}/remix).  The task's hash is looked for under
 * the asking user's own keys ({u<uid>}), so another user's key finds
 * nothing and gets 404; the key is checked by AUTH ("check": nothing
 * reserved, nothing billed) in the same round trip.  A poll then routes
 * the task's model (ROUTE) and goes to the channel that has the task and
 * no other (route.c); a remix goes on as a new task of that model, its
 * seconds and size, reserved by AUTH like any other (handler.c).
 * billing.c keeps a task when the upstream accepts it, and refunds it when
 * a poll says it ended without its video.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_ai_relay_module.h"
#include "ngx_ai_relay_task.h"
#include "ngx_ai_relay_ctx.h"
#include "ngx_ai_relay_auth.h"
#include "ngx_ai_relay_route.h"
#include "ngx_ai_relay_error.h"
#include "ngx_ai_relay_lua.h"


static void ngx_ai_relay_task_reply(void *data, redisReply *reply);
static void ngx_ai_relay_task_next(ngx_http_request_t *r,
    ngx_ai_relay_ctx_t *ctx);
static void ngx_ai_relay_task_route_reply(void *data, redisReply *reply);


ngx_int_t
ngx_ai_relay_task_send(ngx_http_request_t *r, ngx_ai_relay_ctx_t *ctx,
    ngx_ai_relay_checked_pt found)
{
    u_char      *p;
    size_t       argvlen[7];
    const char  *argv[7];

    ctx->task_found = found;

    if (ngx_ai_relay_auth_check(r, ctx, ngx_ai_relay_task_next)
        != NGX_AGAIN)
    {
        return NGX_ERROR;
    }

    p = ngx_pnalloc(r->pool, sizeof(NGX_AI_RELAY_RKEY_U("")) - 1
                             + ctx->key.user_id.len
                             + sizeof(NGX_AI_RELAY_RKEY_U_TASK("")) - 1
                             + ctx->task_id.len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    argv[0] = "HMGET";
    argvlen[0] = 5;
    argv[1] = (const char *) p;
    argvlen[1] = ngx_sprintf(p, NGX_AI_RELAY_RKEY_U("%V")
                             NGX_AI_RELAY_RKEY_U_TASK("%V"),
                             &ctx->key.user_id, &ctx->task_id)
                 - p;
    argv[2] = "model";
    argvlen[2] = 5;
    argv[3] = "channel";
    argvlen[3] = 7;
    argv[4] = "seconds";
    argvlen[4] = 7;
    argv[5] = "size";
    argvlen[5] = 4;
    argv[6] = "quality";
    argvlen[6] = 7;

    return ngx_ai_relay_wait(r, ctx, ngx_ai_relay_task_reply, 7, argv,
                             argvlen);
}


static void
ngx_ai_relay_task_reply(void *data, redisReply *reply)
{
    ngx_http_request_t  *r = data;

    ngx_int_t            n;
    ngx_ai_relay_ctx_t  *ctx;

    ctx = ngx_ai_relay_reply_ctx(r, reply);

    if (ctx->state != NGX_AI_RELAY_STATE_DONE && reply
        && reply->type == REDIS_REPLY_ARRAY && reply->elements == 5
        && reply->element[0]->type == REDIS_REPLY_STRING
        && reply->element[1]->type == REDIS_REPLY_STRING)
    {
        if (ngx_ai_relay_reply_string(r, reply->element[0], &ctx->body.model)
            != NGX_OK
            || ngx_ai_relay_reply_string(r, reply->element[1],
                                         &ctx->task_channel)
               != NGX_OK
            || (reply->element[3]->type == REDIS_REPLY_STRING
                && ngx_ai_relay_reply_string(r, reply->element[3],
                                             &ctx->body.image_size)
                   != NGX_OK)
            || (reply->element[4]->type == REDIS_REPLY_STRING
                && ngx_ai_relay_reply_string(r, reply->element[4],
                                             &ctx->body.image_quality)
                   != NGX_OK))
        {
            ngx_ai_relay_set_error(r, NGX_HTTP_INTERNAL_SERVER_ERROR, "",
                                   "internal error");
        }

        /* a remix is as long as its video (tasks kept before: 4 s) */

        n = (reply->element[2]->type == REDIS_REPLY_STRING)
            ? ngx_atoi((u_char *) reply->element[2]->str,
                       reply->element[2]->len)
            : NGX_ERROR;

        ctx->body.seconds = (n > 0 && n <= 3600) ? n : 4;
    }

    if (ctx->nsent == 0) {
        ngx_ai_relay_task_next(r, ctx);
    }
}


/* the key is fine (or its error is set); the task is known or not */

static void
ngx_ai_relay_task_next(ngx_http_request_t *r, ngx_ai_relay_ctx_t *ctx)
{
    u_char                   *depth;
    size_t                    argvlen[6];
    const char               *argv[6];
    ngx_ai_relay_loc_conf_t  *arlcf;

    if (ctx->state == NGX_AI_RELAY_STATE_DONE) {
        ngx_ai_relay_resume(r);
        return;
    }

    if (ctx->body.model.len == 0 || ctx->task_channel.len == 0) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "ai relay: no video \"%V\" of key %V", &ctx->task_id,
                      &ctx->key.masked);
        ngx_ai_relay_set_error(r, NGX_HTTP_NOT_FOUND, "not_found",
                               "Video with id '%V' not found.",
                               &ctx->task_id);
        ngx_ai_relay_resume(r);
        return;
    }

    if (ctx->endpoint->id == NGX_AI_RELAY_EP_VIDEO_REMIX) {

        /* a new task of the video's model: routed, reserved, sent */

        ctx->task_found(r, ctx);
        return;
    }

    arlcf = ngx_http_get_module_loc_conf(r, ngx_ai_relay_module);

    depth = ngx_pnalloc(r->pool, NGX_INT_T_LEN);
    if (depth == NULL) {
        goto failed;
    }

    argv[0] = "EVALSHA";
    argvlen[0] = 7;
    argv[1] = ngx_ai_relay_script_sha(r, NGX_AI_RELAY_SCRIPT_ROUTE,
                                      &argvlen[1]);
    argv[2] = "1";
    argvlen[2] = 1;
    argv[3] = NGX_AI_RELAY_RKEY_VERSION;
    argvlen[3] = sizeof(NGX_AI_RELAY_RKEY_VERSION) - 1;
    argv[4] = (const char *) ctx->body.model.data;
    argvlen[4] = ctx->body.model.len;
    argv[5] = (const char *) depth;
    argvlen[5] = ngx_sprintf(depth, "%ui", arlcf->max_alias_depth) - depth;

    if (ngx_ai_relay_wait(r, ctx, ngx_ai_relay_task_route_reply, 6, argv,
                          argvlen)
        == NGX_AGAIN)
    {
        return;
    }

failed:

    ngx_ai_relay_set_error(r, NGX_HTTP_INTERNAL_SERVER_ERROR, "",
                           "internal error");
    ngx_ai_relay_resume(r);
}


static void
ngx_ai_relay_task_route_reply(void *data, redisReply *reply)
{
    ngx_http_request_t  *r = data;

    ngx_ai_relay_ctx_t  *ctx;

    ctx = ngx_ai_relay_reply_ctx(r, reply);

    if (ctx->state != NGX_AI_RELAY_STATE_DONE) {
        if (reply == NULL || ngx_ai_relay_route_parse(r, ctx, reply) != NGX_OK)
        {
            ngx_ai_relay_set_error(r, NGX_HTTP_INTERNAL_SERVER_ERROR, "",
                                   "internal error");

        } else if (ctx->route.failed) {
            ngx_ai_relay_route_error(r, ctx);

        } else if (ngx_ai_relay_route_apply(r, ctx) == NGX_OK) {

            /* the channel that has the task, and no other (route.c) */

            ctx->state = NGX_AI_RELAY_STATE_DONE;
            ctx->status = NGX_DECLINED;
        }
    }

    ngx_ai_relay_resume(r);
}
