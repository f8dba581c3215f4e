
/*
 * Copyright (C) ngx_ai_relay authors
 *
 * The request path, as one PRECONTENT phase handler that re-enters
 * through ctx->state (auth_request style):
 *
 *   START    find the client key (401 without one), read the body
 *   BODY     body read: validate and scan it (400)
 *   LOOKUP   Redis: key index + route script, pipelined
 *   RESERVE  Redis: AUTH script (key, owner, limits, reservation)
 *   DONE     rewrite body and headers, NGX_DECLINED: proxy_pass runs
 *
 * A request waiting for Redis returns NGX_AGAIN; the reply callback
 * resumes it.  If the client goes away first, the request cleanup
 * detaches the pending commands so their replies touch nothing.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_ai_relay_module.h"
#include "ngx_ai_relay_handler.h"
#include "ngx_ai_relay_worker.h"
#include "ngx_ai_relay_ctx.h"
#include "ngx_ai_relay_auth.h"
#include "ngx_ai_relay_body.h"
#include "ngx_ai_relay_route.h"
#include "ngx_ai_relay_models.h"
#include "ngx_ai_relay_dashboard.h"
#include "ngx_ai_relay_form.h"
#include "ngx_ai_relay_task.h"
#include "ngx_ai_relay_error.h"
#include "ngx_ai_relay_billing.h"
#include "ngx_ai_relay_lua.h"
#include "ngx_ai_relay_key.h"
#include "ngx_ai_relay_cache.h"
#include "ngx_ai_relay_lease.h"
#include "ngx_ai_relay_release.h"


static ngx_int_t ngx_ai_relay_start(ngx_http_request_t *r,
    ngx_ai_relay_ctx_t *ctx);
static ngx_int_t ngx_ai_relay_endpoint(ngx_http_request_t *r,
    ngx_ai_relay_ctx_t *ctx);
static void ngx_ai_relay_body_handler(ngx_http_request_t *r);
/* a remix whose video (model, channel) is not looked up yet (task.c) */
#define ngx_ai_relay_remix_pending(ctx)                                       \
    ((ctx)->body.task_model && (ctx)->task_channel.len == 0)

static void ngx_ai_relay_lookup_task(ngx_http_request_t *r,
    ngx_ai_relay_ctx_t *ctx);
static ngx_int_t ngx_ai_relay_lookup(ngx_http_request_t *r,
    ngx_ai_relay_ctx_t *ctx);
static void ngx_ai_relay_keyidx_reply(void *data, redisReply *reply);
static void ngx_ai_relay_route_reply(void *data, redisReply *reply);
static ngx_int_t ngx_ai_relay_lookup_done(ngx_http_request_t *r,
    ngx_ai_relay_ctx_t *ctx);
static void ngx_ai_relay_lookup_continue(ngx_http_request_t *r,
    ngx_ai_relay_ctx_t *ctx);
static void ngx_ai_relay_version_reply(void *data, redisReply *reply);
static void ngx_ai_relay_key_remember(ngx_http_request_t *r,
    ngx_ai_relay_ctx_t *ctx);
static void ngx_ai_relay_auth_reply(void *data, redisReply *reply);
static ngx_int_t ngx_ai_relay_send_response(ngx_http_request_t *r,
    ngx_ai_relay_ctx_t *ctx);


ngx_int_t
ngx_ai_relay_handler(ngx_http_request_t *r)
{
    ngx_ai_relay_ctx_t       *ctx;
    ngx_ai_relay_loc_conf_t  *arlcf;

    arlcf = ngx_http_get_module_loc_conf(r, ngx_ai_relay_module);

    if (arlcf->style == NGX_AI_RELAY_STYLE_OFF || r != r->main) {
        return NGX_DECLINED;
    }

    ctx = ngx_ai_relay_get_ctx(r);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    switch (ctx->state) {

    case NGX_AI_RELAY_STATE_START:
        return ngx_ai_relay_start(r, ctx);

    case NGX_AI_RELAY_STATE_DONE:

        if (ctx->status == NGX_DECLINED) {
            return NGX_DECLINED;
        }

        ctx->state = NGX_AI_RELAY_STATE_SENT;
        ngx_http_finalize_request(r, ngx_ai_relay_send_response(r, ctx));
        return NGX_DONE;

    case NGX_AI_RELAY_STATE_SENT:
        return NGX_DONE;

    default:
        /* a Redis reply or the body is still on its way */
        return NGX_AGAIN;
    }
}


static ngx_int_t
ngx_ai_relay_start(ngx_http_request_t *r, ngx_ai_relay_ctx_t *ctx)
{
    ngx_int_t                  rc;
    ngx_str_t                  key, arg;
    ngx_time_t                *tp;
    ngx_http_variable_value_t *vv;
    ngx_ai_relay_main_conf_t  *armcf;

    armcf = ngx_http_get_module_main_conf(r, ngx_ai_relay_module);

    ctx->relay = 1;

    tp = ngx_timeofday();
    ctx->start_msec = (ngx_msec_t) (tp->sec * 1000 + tp->msec);

    /*
     * $request_id, unless something asked for it already, is ours: the
     * same 32 hex digits in the record and in the access log, without
     * nginx's RAND_bytes() per request
     */

    vv = &r->variables[armcf->request_id_index];

    if (!vv->valid && !vv->not_found) {
        vv->data = ngx_pnalloc(r->pool, NGX_AI_RELAY_REQUEST_ID_LEN);
        if (vv->data == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_ai_relay_request_id(armcf->worker->id_seed,
                                armcf->worker->id_seq++, vv->data);

        vv->len = NGX_AI_RELAY_REQUEST_ID_LEN;
        vv->valid = 1;
        vv->no_cacheable = 0;
        vv->not_found = 0;
    }

    vv = ngx_http_get_indexed_variable(r, armcf->request_id_index);
    if (vv == NULL || vv->not_found) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->request_id.data = vv->data;
    ctx->request_id.len = vv->len;

    /*
     * the key first (no Redis yet): hashed, masked, and a ?key= blanked in
     * place, so that no answer, not even 404 or 405, logs it in
     * $request_uri, $args or $arg_key
     */

    rc = ngx_ai_relay_find_key(r, &key);

    if (rc == NGX_OK) {
        if (ngx_ai_relay_client_key(r, &key, ctx) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    if (r->args.len
        && ngx_http_arg(r, (u_char *) "key", 3, &arg) == NGX_OK
        && arg.len)
    {
        /*
         * ?key=: the request line, $request_uri and $args share these
         * bytes; blank the middle of the key so no log ever shows it
         * (also when the key the relay uses came in a header)
         */
        (void) ngx_ai_relay_key_blank(arg.data, arg.len);
    }

    if (ngx_ai_relay_endpoint(r, ctx) != NGX_OK) {
        return ngx_ai_relay_handler(r);
    }

    if (rc == NGX_DECLINED) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "ai relay: client sent no API key");
        ngx_ai_relay_set_error(r, NGX_HTTP_UNAUTHORIZED, "",
                               "You didn't provide an API key. You need to "
                               "provide your API key in an Authorization "
                               "header using Bearer auth (i.e. "
                               "Authorization: Bearer YOUR_KEY).");
        return ngx_ai_relay_handler(r);
    }

    if (rc != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ctx->models_list) {
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }

        ctx->state = NGX_AI_RELAY_STATE_LOOKUP;

        if (ngx_ai_relay_lookup(r, ctx) == NGX_AGAIN) {
            return NGX_AGAIN;
        }

        return ngx_ai_relay_handler(r);
    }

    ctx->state = NGX_AI_RELAY_STATE_BODY;

    rc = NGX_DECLINED;

    if (ctx->endpoint->body == NGX_AI_RELAY_EP_BODY_MULTIPART) {

        /* multipart: parsed as it is read, never joined (form.c) */

        rc = ngx_ai_relay_form_start(r, ctx);

        if (rc == NGX_ERROR) {
            return ngx_ai_relay_handler(r);
        }
    }

    if (rc == NGX_DECLINED && ctx->endpoint->body != NGX_AI_RELAY_EP_BODY_RAW)
    {
        r->request_body_in_single_buf = 1;
    }

    rc = ngx_http_read_client_request_body(r, ngx_ai_relay_body_handler);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        ctx->state = NGX_AI_RELAY_STATE_SENT;
        return rc;
    }

    ngx_http_finalize_request(r, NGX_DONE);
    return NGX_DONE;
}


/*
 * The endpoint the path names (ngx_ai_relay_endpoint.c): a path that is
 * none gets 404 and changes nothing, unless the location passes other
 * paths through; a method the endpoint does not take gets 405.
 */

static ngx_int_t
ngx_ai_relay_endpoint(ngx_http_request_t *r, ngx_ai_relay_ctx_t *ctx)
{
    size_t                          len;
    unsigned                        method;
    ngx_str_t                      *path;
    ngx_uint_t                      i, passthrough;
    const u_char                   *name;
    ngx_ai_relay_loc_conf_t        *arlcf;
    const ngx_ai_relay_endpoint_t  *ep;

    arlcf = ngx_http_get_module_loc_conf(r, ngx_ai_relay_module);

    ep = ngx_ai_relay_endpoint_find(r->uri.data, r->uri.len, &name, &len);

    if (ep == NULL) {

        /*
         * passed through: only under a prefix the operator named, never
         * an endpoint in other letter case or with a trailing slash
         */

        passthrough = 0;

        if (arlcf->passthrough.len
            && !ngx_ai_relay_endpoint_near(r->uri.data, r->uri.len))
        {
            path = arlcf->passthrough_paths->elts;

            for (i = 0; i < arlcf->passthrough_paths->nelts; i++) {
                if (ngx_ai_relay_endpoint_prefix(r->uri.data, r->uri.len,
                                                 path[i].data, path[i].len))
                {
                    passthrough = 1;
                    break;
                }
            }
        }

        if (!passthrough) {
            ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                          "ai relay: no endpoint %V %V", &r->method_name,
                          &r->uri);

            ngx_ai_relay_set_error(r, NGX_HTTP_NOT_FOUND, "unknown_url",
                                   "Invalid URL (%V %V)", &r->method_name,
                                   &r->uri);
            return NGX_DECLINED;
        }

        if (!(r->method & arlcf->passthrough_methods)) {
            ngx_ai_relay_set_error(r, NGX_HTTP_NOT_ALLOWED,
                                   "method_not_allowed",
                                   "%V is not supported on this endpoint",
                                   &r->method_name);
            return NGX_DECLINED;
        }

        ep = &ngx_ai_relay_endpoint_passthrough;
    }

    if (r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD)) {
        method = NGX_AI_RELAY_EP_GET;

    } else if (r->method == NGX_HTTP_POST) {
        method = NGX_AI_RELAY_EP_POST;

    } else if (r->method == NGX_HTTP_DELETE) {
        method = NGX_AI_RELAY_EP_DELETE;

    } else {
        method = 0x80;
    }

    if (!(ep->methods & method)) {
        ngx_ai_relay_set_error(r, NGX_HTTP_NOT_ALLOWED, "method_not_allowed",
                               "%V is not supported on this endpoint, "
                               "use %s", &r->method_name,
                               (ep->methods & NGX_AI_RELAY_EP_POST)
                               ? "POST" : "GET");
        return NGX_DECLINED;
    }

    ctx->endpoint = ep;

    if (ep->body == NGX_AI_RELAY_EP_BODY_NONE
        || ep->body == NGX_AI_RELAY_EP_BODY_TASK)
    {
        /*
         * no body: answered here (the models, the key's balance), or a
         * task of the key's own, on the channel that has it (task.c)
         */

        ctx->models_list = 1;

        if (ep->id == NGX_AI_RELAY_EP_MODEL) {
            ctx->body.model.data = (u_char *) name;
            ctx->body.model.len = len;
        }

        if (ep->body == NGX_AI_RELAY_EP_BODY_TASK) {
            ctx->task_id.data = (u_char *) name;
            ctx->task_id.len = len;
        }
    }

    if (ep->id == NGX_AI_RELAY_EP_VIDEO_REMIX) {

        /* a new task from the key's own: its model and channel (task.c) */

        ctx->task_from.data = (u_char *) name;
        ctx->task_from.len = len;
        ctx->task_id = ctx->task_from;
    }

    return NGX_OK;
}


static void
ngx_ai_relay_body_handler(ngx_http_request_t *r)
{
    ngx_ai_relay_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_ai_relay_module);

    if ((ctx->endpoint->body == NGX_AI_RELAY_EP_BODY_RAW
         ? ngx_ai_relay_body_passthrough(r, ctx)
         : ctx->body.form ? ngx_ai_relay_form_parse(r, ctx)
         : ngx_ai_relay_body_parse(r, ctx))
        == NGX_OK)
    {
        ctx->state = NGX_AI_RELAY_STATE_LOOKUP;

        if (ngx_ai_relay_lookup(r, ctx) == NGX_AGAIN) {
            return;
        }
    }

    /* an error is set: send it */

    ngx_ai_relay_resume(r);
}


/*
 * Round trip 1: who owns the key, and how does the model route.  Both
 * come from the worker's cache when they can, and then the first round
 * trip is the AUTH script itself.
 */

static ngx_int_t
ngx_ai_relay_lookup(ngx_http_request_t *r, ngx_ai_relay_ctx_t *ctx)
{
    u_char                    *p, *depth;
    size_t                     argvlen[6];
    ngx_str_t                  idx, uid;
    ngx_int_t                  rc;
    const char                *argv[6];
    ngx_ai_relay_loc_conf_t   *arlcf;
    ngx_ai_relay_main_conf_t  *armcf;

    arlcf = ngx_http_get_module_loc_conf(r, ngx_ai_relay_module);
    armcf = ngx_http_get_module_main_conf(r, ngx_ai_relay_module);

    if (ngx_ai_relay_worker_init(armcf) != NGX_OK) {
        goto failed;
    }

    if (ngx_ai_relay_cache_get(&armcf->worker->key_cache, ctx->key.hash.data,
                               ctx->key.hash.len, &uid)
        == NGX_OK)
    {
        ctx->key.user_id.data = ngx_pnalloc(r->pool, uid.len);
        if (ctx->key.user_id.data == NULL) {
            goto failed;
        }

        ngx_memcpy(ctx->key.user_id.data, uid.data, uid.len);
        ctx->key.user_id.len = uid.len;
        ctx->key.cached = 1;

    } else {
        idx.len = sizeof(NGX_AI_RELAY_RKEY_KEYIDX("")) - 1 + ctx->key.hash.len;
        idx.data = ngx_pnalloc(r->pool, idx.len);
        if (idx.data == NULL) {
            goto failed;
        }

        p = ngx_cpymem(idx.data, NGX_AI_RELAY_RKEY_KEYIDX(""),
                       sizeof(NGX_AI_RELAY_RKEY_KEYIDX("")) - 1);
        ngx_memcpy(p, ctx->key.hash.data, ctx->key.hash.len);

        argv[0] = "GET";
        argvlen[0] = 3;
        argv[1] = (const char *) idx.data;
        argvlen[1] = idx.len;

        if (ngx_ai_relay_wait(r, ctx, ngx_ai_relay_keyidx_reply, 2, argv,
                              argvlen)
            != NGX_AGAIN)
        {
            return NGX_ERROR;
        }
    }

    if (!ctx->models_list && !ngx_ai_relay_remix_pending(ctx)) {
        rc = ngx_ai_relay_route_load(r, ctx);

        if (rc == NGX_ERROR) {
            goto failed;
        }

        if (rc == NGX_DECLINED) {

            /* pipelined behind the GET: one round trip for both */

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
            argvlen[5] = ngx_sprintf(depth, "%ui", arlcf->max_alias_depth)
                         - depth;

            if (ngx_ai_relay_wait(r, ctx, ngx_ai_relay_route_reply, 6, argv,
                                  argvlen)
                != NGX_AGAIN)
            {
                return NGX_ERROR;
            }
        }
    }

    if (ctx->nsent == 0 && ngx_ai_relay_remix_pending(ctx)) {

        /* a remix: its video's model first (task.c) */

        return ngx_ai_relay_lookup_done(r, ctx);
    }

    if (ctx->nsent == 0) {

        /* all from the cache: maybe no Redis round trip at all */

        rc = ngx_ai_relay_lease_admit(r, ctx);

        if (rc == NGX_OK) {
            if (ngx_ai_relay_route_apply(r, ctx) == NGX_OK) {
                ctx->state = NGX_AI_RELAY_STATE_DONE;
                ctx->status = NGX_DECLINED;
            }

            return NGX_DONE;
        }

        if (rc == NGX_ERROR) {
            goto failed;
        }

        return ngx_ai_relay_lookup_done(r, ctx);
    }

    return NGX_AGAIN;

failed:

    ngx_ai_relay_ctx_cleanup(ngx_http_get_module_ctx(r, ngx_ai_relay_module));
    ngx_ai_relay_set_error(r, NGX_HTTP_INTERNAL_SERVER_ERROR, "",
                           "internal error");
    return NGX_ERROR;
}


/* a remix, its video's model now known: round trip 1 again (task.c) */

static void
ngx_ai_relay_lookup_task(ngx_http_request_t *r, ngx_ai_relay_ctx_t *ctx)
{
    ctx->state = NGX_AI_RELAY_STATE_LOOKUP;

    if (ngx_ai_relay_lookup(r, ctx) != NGX_AGAIN) {
        ngx_ai_relay_resume(r);
    }
}


static void
ngx_ai_relay_keyidx_reply(void *data, redisReply *reply)
{
    ngx_http_request_t  *r = data;

    ngx_ai_relay_ctx_t  *ctx;

    ctx = ngx_ai_relay_reply_ctx(r, reply);

    if (reply && reply->type == REDIS_REPLY_STRING) {
        if (ngx_ai_relay_reply_string(r, reply, &ctx->key.user_id) != NGX_OK) {
            ngx_ai_relay_set_error(r, NGX_HTTP_INTERNAL_SERVER_ERROR, "",
                                   "internal error");

        } else {
            ngx_ai_relay_key_remember(r, ctx);
        }
    }

    if (ctx->nsent == 0) {
        ngx_ai_relay_lookup_continue(r, ctx);
    }
}


static void
ngx_ai_relay_route_reply(void *data, redisReply *reply)
{
    ngx_http_request_t  *r = data;

    ngx_ai_relay_ctx_t  *ctx;

    ctx = ngx_ai_relay_reply_ctx(r, reply);

    if (ctx->state != NGX_AI_RELAY_STATE_DONE) {
        if (ngx_ai_relay_route_parse(r, ctx, reply) != NGX_OK) {
            ngx_ai_relay_set_error(r, NGX_HTTP_INTERNAL_SERVER_ERROR, "",
                                   "internal error");

        } else {
            ngx_ai_relay_route_save(r, ctx);
        }
    }

    if (ctx->nsent == 0) {
        ngx_ai_relay_lookup_continue(r, ctx);
    }
}


/* the configuration version, asked with AUTH when the route was cached */

static void
ngx_ai_relay_version_reply(void *data, redisReply *reply)
{
    ngx_http_request_t  *r = data;

    ngx_ai_relay_ctx_t        *ctx;
    ngx_ai_relay_main_conf_t  *armcf;

    ctx = ngx_ai_relay_reply_ctx(r, reply);

    if (ctx->state == NGX_AI_RELAY_STATE_DONE || reply == NULL) {
        return;
    }

    armcf = ngx_http_get_module_main_conf(r, ngx_ai_relay_module);

    if (reply->type != REDIS_REPLY_STRING) {
        return;
    }

    ngx_ai_relay_lease_version(armcf, (u_char *) reply->str, reply->len);

    if ((size_t) reply->len != ctx->route.version.len
        || ngx_strncmp(reply->str, ctx->route.version.data,
                       ctx->route.version.len) != 0)
    {
        /* the operator changed something since this route was cached */

        ngx_ai_relay_cache_flush(&armcf->worker->route_cache);
        ctx->route.stale = 1;
    }
}


static void
ngx_ai_relay_key_remember(ngx_http_request_t *r, ngx_ai_relay_ctx_t *ctx)
{
    ngx_ai_relay_main_conf_t  *armcf;

    armcf = ngx_http_get_module_main_conf(r, ngx_ai_relay_module);

    (void) ngx_ai_relay_cache_put(&armcf->worker->key_cache, ctx->key.hash.data,
                                  ctx->key.hash.len, ctx->key.user_id.data,
                                  ctx->key.user_id.len);
}


static void
ngx_ai_relay_lookup_continue(ngx_http_request_t *r, ngx_ai_relay_ctx_t *ctx)
{
    if (ngx_ai_relay_lookup_done(r, ctx) != NGX_AGAIN) {
        ngx_ai_relay_resume(r);
    }
}


static ngx_int_t
ngx_ai_relay_lookup_done(ngx_http_request_t *r, ngx_ai_relay_ctx_t *ctx)
{
    size_t       argvlen[2];
    ngx_int_t    rc;
    const char  *argv[2];

    if (ctx->state == NGX_AI_RELAY_STATE_DONE) {
        return NGX_DONE;
    }

    if (ctx->key.user_id.len == 0) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "ai relay: unknown API key %V", &ctx->key.masked);

        ngx_ai_relay_set_error(r, NGX_HTTP_UNAUTHORIZED, "",
                               "Incorrect API key provided: %V.",
                               &ctx->key.masked);
        return NGX_DONE;
    }

    ctx->state = NGX_AI_RELAY_STATE_RESERVE;

    if (ngx_ai_relay_remix_pending(ctx)) {
        return ngx_ai_relay_task_send(r, ctx, ngx_ai_relay_lookup_task);
    }

    if (ctx->models_list) {
        if (ctx->endpoint->id == NGX_AI_RELAY_EP_SUBSCRIPTION
            || ctx->endpoint->id == NGX_AI_RELAY_EP_USAGE)
        {
            return ngx_ai_relay_dashboard_send(r, ctx);
        }

        if (ctx->endpoint->body == NGX_AI_RELAY_EP_BODY_TASK) {
            return ngx_ai_relay_task_send(r, ctx, NULL);
        }

        return ngx_ai_relay_models_send(r, ctx);
    }

    if (ctx->bill.reserved_ok) {

        /* reserved with a stale route, now fetched again: go on */

        if (ctx->route.failed || ctx->xlate.failed) {
            ngx_ai_relay_route_error(r, ctx);

        } else if (ngx_ai_relay_route_apply(r, ctx) == NGX_OK) {
            ctx->state = NGX_AI_RELAY_STATE_DONE;
            ctx->status = NGX_DECLINED;
        }

        return NGX_DONE;
    }

    if (ctx->route.cached) {

        /* is the cached route still current?  asked in the same trip */

        argv[0] = "GET";
        argvlen[0] = 3;
        argv[1] = NGX_AI_RELAY_RKEY_VERSION;
        argvlen[1] = sizeof(NGX_AI_RELAY_RKEY_VERSION) - 1;

        if (ngx_ai_relay_wait(r, ctx, ngx_ai_relay_version_reply, 2, argv,
                              argvlen)
            != NGX_AGAIN)
        {
            return NGX_ERROR;
        }
    }

    /*
     * a route that failed (unknown model, alias cycle) is reported only
     * after the key checks pass: a bad key learns nothing about models
     */

    ctx->bill.auth_reserve = !ctx->route.failed && !ctx->xlate.failed;

    rc = ngx_ai_relay_auth_send(r, ctx, ngx_ai_relay_auth_reply,
                                ctx->bill.auth_reserve ? "reserve" : "check");

    if (rc == NGX_AGAIN && ctx->bill.auth_reserve) {
        /* a request that stops waiting releases what this reserves */
        ctx->auth_cmd = ctx->cmds[ctx->nsent - 1];
    }

    return rc;
}


static void
ngx_ai_relay_auth_reply(void *data, redisReply *reply)
{
    ngx_http_request_t  *r = data;

    ngx_int_t            rc;
    ngx_ai_relay_ctx_t  *ctx;

    ctx = ngx_ai_relay_reply_ctx(r, reply);
    ctx->auth_cmd = NULL;

    if (reply == NULL && ctx->bill.auth_reserve) {
        /* the link dropped: AUTH may have reserved all the same */
        ngx_ai_relay_release_lost(r, ctx);
    }

    if (ctx->state == NGX_AI_RELAY_STATE_DONE) {
        ngx_ai_relay_resume(r);
        return;
    }

    if (ngx_ai_relay_auth_short(reply) && !ctx->bill.lease_given_back
        && ngx_ai_relay_lease_give_back(
               ngx_http_get_module_main_conf(r, ngx_ai_relay_module),
               &ctx->key.user_id)
           == NGX_OK)
    {
        /* money this worker held for the user is back: ask again */

        ctx->bill.lease_given_back = 1;

        rc = ngx_ai_relay_auth_send(r, ctx, ngx_ai_relay_auth_reply,
                                    "reserve");
        if (rc == NGX_AGAIN) {
            ctx->auth_cmd = ctx->cmds[ctx->nsent - 1];
            return;
        }

        ngx_ai_relay_resume(r);
        return;
    }

    if (ngx_ai_relay_auth_result(r, ctx, reply) != NGX_OK) {
        ngx_ai_relay_resume(r);
        return;
    }

    ctx->bill.reserved_ok = ctx->bill.auth_reserve;

    if (ctx->route.stale) {

        /* the cached route was outdated: fetch it, then carry on */

        ctx->route.stale = 0;
        ctx->route.cached = 0;
        ctx->route.failed = 0;
        ctx->route.nchannels = 0;
        ctx->route.nenabled = 0;
        ctx->state = NGX_AI_RELAY_STATE_LOOKUP;

        if (ngx_ai_relay_lookup(r, ctx) != NGX_AGAIN) {
            ngx_ai_relay_resume(r);
        }

        return;
    }

    if (ctx->route.failed || ctx->xlate.failed) {
        /* the key is fine: now the route's own error */
        ngx_ai_relay_route_error(r, ctx);
        ngx_ai_relay_resume(r);
        return;
    }

    if (ngx_ai_relay_route_apply(r, ctx) == NGX_OK) {
        ctx->state = NGX_AI_RELAY_STATE_DONE;
        ctx->status = NGX_DECLINED;
    }

    ngx_ai_relay_resume(r);
}


static ngx_int_t
ngx_ai_relay_send_response(ngx_http_request_t *r, ngx_ai_relay_ctx_t *ctx)
{
    ngx_table_elt_t  *h;

    if (ctx->response && ctx->err.status == 0) {
        return ngx_ai_relay_send_json(r, NGX_HTTP_OK, ctx->response);
    }

    if (ctx->err.retry_after > 0) {
        h = ngx_list_push(&r->headers_out.headers);
        if (h == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        h->hash = 1;
#if (nginx_version >= 1023000)
        h->next = NULL;
#endif
        ngx_str_set(&h->key, "Retry-After");
        h->value.data = ngx_pnalloc(r->pool, NGX_INT_T_LEN);
        if (h->value.data == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        h->value.len = ngx_sprintf(h->value.data, "%i", ctx->err.retry_after)
                       - h->value.data;
    }

    if (ctx->err.status == 0) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_ai_relay_send_error(r, ctx->err.status, ctx->err.code,
                                   &ctx->err.message);
}


