
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
#include "ngx_ai_relay_body.h"
#include "ngx_ai_relay_route.h"
#include "ngx_ai_relay_models.h"
#include "ngx_ai_relay_error.h"
#include "ngx_ai_relay_billing.h"
#include "ngx_ai_relay_lua.h"
#include "ngx_ai_relay_key.h"
#include "ngx_ai_relay_cache.h"
#include "ngx_ai_relay_lease.h"
#include "ngx_ai_relay_release.h"


static ngx_int_t ngx_ai_relay_start(ngx_http_request_t *r,
    ngx_ai_relay_ctx_t *ctx);
static ngx_int_t ngx_ai_relay_find_key(ngx_http_request_t *r,
    ngx_str_t *key);
static void ngx_ai_relay_body_handler(ngx_http_request_t *r);
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
static void ngx_ai_relay_timeout_handler(ngx_event_t *ev);
static void ngx_ai_relay_cleanup(void *data);
static void ngx_ai_relay_ctx_anchor(void *data);
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

    cln->handler = ngx_ai_relay_cleanup;
    cln->data = ctx;

    ctx->timeout.handler = ngx_ai_relay_timeout_handler;
    ctx->timeout.data = r;
    ctx->timeout.log = r->connection->log;

    ctx->ttft = (ngx_msec_t) NGX_AI_RELAY_UNSET;

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


static ngx_int_t
ngx_ai_relay_start(ngx_http_request_t *r, ngx_ai_relay_ctx_t *ctx)
{
    ngx_int_t                  rc;
    ngx_str_t                  key;
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

        ngx_ai_relay_request_id(armcf->id_seed, armcf->id_seq++, vv->data);

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

    ctx->models_list = ngx_ai_relay_models_request(r, ctx);

    if (!ctx->models_list && r->method != NGX_HTTP_POST) {
        ngx_ai_relay_set_error(r, NGX_HTTP_NOT_ALLOWED, "method_not_allowed",
                               "%V is not supported on this endpoint, "
                               "use POST", &r->method_name);
        return ngx_ai_relay_handler(r);
    }

    rc = ngx_ai_relay_find_key(r, &key);

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

    if (ngx_ai_relay_client_key(r, &key, ctx) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (key.data >= r->args.data && key.data < r->args.data + r->args.len) {
        /*
         * ?key=: the request line, $request_uri and $args share these
         * bytes; blank the middle of the key so no log ever shows it
         */
        (void) ngx_ai_relay_key_blank(key.data, key.len);
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

    r->request_body_in_single_buf = 1;

    rc = ngx_http_read_client_request_body(r, ngx_ai_relay_body_handler);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        ctx->state = NGX_AI_RELAY_STATE_SENT;
        return rc;
    }

    ngx_http_finalize_request(r, NGX_DONE);
    return NGX_DONE;
}


/*
 * The client key, in the styles clients use: Authorization: Bearer,
 * x-api-key (Anthropic), x-goog-api-key or ?key= (Gemini).
 */

static ngx_int_t
ngx_ai_relay_find_key(ngx_http_request_t *r, ngx_str_t *key)
{
    ngx_str_t         *v;
    ngx_uint_t         i;
    ngx_list_part_t   *part;
    ngx_table_elt_t   *h;

    if (r->headers_in.authorization) {
        v = &r->headers_in.authorization->value;

        if (v->len > 7 && ngx_strncasecmp(v->data, (u_char *) "Bearer ", 7)
                          == 0)
        {
            key->data = v->data + 7;
            key->len = v->len - 7;

            while (key->len && key->data[0] == ' ') {
                key->data++;
                key->len--;
            }

            if (key->len) {
                return NGX_OK;
            }
        }
    }

    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].value.len == 0) {
            continue;
        }

        if ((h[i].key.len == sizeof("x-api-key") - 1
             && ngx_strncasecmp(h[i].key.data, (u_char *) "x-api-key",
                                h[i].key.len) == 0)
            || (h[i].key.len == sizeof("x-goog-api-key") - 1
                && ngx_strncasecmp(h[i].key.data,
                                   (u_char *) "x-goog-api-key",
                                   h[i].key.len) == 0))
        {
            *key = h[i].value;
            return NGX_OK;
        }
    }

    if (r->args.len && ngx_http_arg(r, (u_char *) "key", 3, key) == NGX_OK
        && key->len)
    {
        return NGX_OK;
    }

    return NGX_DECLINED;
}


static void
ngx_ai_relay_body_handler(ngx_http_request_t *r)
{
    ngx_ai_relay_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_ai_relay_module);

    if (ngx_ai_relay_body_parse(r, ctx) == NGX_OK) {
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

    if (ngx_ai_relay_worker_redis(armcf) == NULL) {
        goto failed;
    }

    if (ngx_ai_relay_cache_get(&armcf->key_cache, ctx->key_hash.data,
                               ctx->key_hash.len, &uid)
        == NGX_OK)
    {
        ctx->user_id.data = ngx_pnalloc(r->pool, uid.len);
        if (ctx->user_id.data == NULL) {
            goto failed;
        }

        ngx_memcpy(ctx->user_id.data, uid.data, uid.len);
        ctx->user_id.len = uid.len;
        ctx->key_cached = 1;

    } else {
        idx.len = sizeof("ar:keyidx:") - 1 + ctx->key_hash.len;
        idx.data = ngx_pnalloc(r->pool, idx.len);
        if (idx.data == NULL) {
            goto failed;
        }

        p = ngx_cpymem(idx.data, "ar:keyidx:", sizeof("ar:keyidx:") - 1);
        ngx_memcpy(p, ctx->key_hash.data, ctx->key_hash.len);

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

    if (!ctx->models_list) {
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
            argv[3] = "ar:{cfg}:version";
            argvlen[3] = sizeof("ar:{cfg}:version") - 1;
            argv[4] = (const char *) ctx->model.data;
            argvlen[4] = ctx->model.len;
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

    ngx_ai_relay_cleanup(ngx_http_get_module_ctx(r, ngx_ai_relay_module));
    ngx_ai_relay_set_error(r, NGX_HTTP_INTERNAL_SERVER_ERROR, "",
                           "internal error");
    return NGX_ERROR;
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

    rds = ngx_ai_relay_worker_redis(armcf);
    if (rds == NULL) {
        goto failed;
    }

    cmd = ngx_ai_relay_redis_send(rds, handler, r, argc, argv, argvlen);

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

    ngx_ai_relay_cleanup(ngx_http_get_module_ctx(r, ngx_ai_relay_module));

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


static void
ngx_ai_relay_keyidx_reply(void *data, redisReply *reply)
{
    ngx_http_request_t  *r = data;

    ngx_ai_relay_ctx_t  *ctx;

    ctx = ngx_ai_relay_reply_ctx(r, reply);

    if (reply && reply->type == REDIS_REPLY_STRING) {
        if (ngx_ai_relay_reply_string(r, reply, &ctx->user_id) != NGX_OK) {
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

    if ((size_t) reply->len != ctx->route_version.len
        || ngx_strncmp(reply->str, ctx->route_version.data,
                       ctx->route_version.len) != 0)
    {
        /* the operator changed something since this route was cached */

        ngx_ai_relay_cache_flush(&armcf->route_cache);
        ctx->route_stale = 1;
    }
}


static void
ngx_ai_relay_key_remember(ngx_http_request_t *r, ngx_ai_relay_ctx_t *ctx)
{
    ngx_ai_relay_main_conf_t  *armcf;

    armcf = ngx_http_get_module_main_conf(r, ngx_ai_relay_module);

    (void) ngx_ai_relay_cache_put(&armcf->key_cache, ctx->key_hash.data,
                                  ctx->key_hash.len, ctx->user_id.data,
                                  ctx->user_id.len);
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

    if (ctx->user_id.len == 0) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "ai relay: unknown API key %V", &ctx->key_masked);

        ngx_ai_relay_set_error(r, NGX_HTTP_UNAUTHORIZED, "",
                               "Incorrect API key provided: %V.",
                               &ctx->key_masked);
        return NGX_DONE;
    }

    ctx->state = NGX_AI_RELAY_STATE_RESERVE;

    if (ctx->models_list) {
        return ngx_ai_relay_models_send(r, ctx);
    }

    if (ctx->reserved_ok) {

        /* reserved with a stale route, now fetched again: go on */

        if (ctx->route_failed) {
            ngx_ai_relay_route_error(r, ctx);

        } else if (ngx_ai_relay_route_apply(r, ctx) == NGX_OK) {
            ctx->state = NGX_AI_RELAY_STATE_DONE;
            ctx->status = NGX_DECLINED;
        }

        return NGX_DONE;
    }

    if (ctx->route_cached) {

        /* is the cached route still current?  asked in the same trip */

        argv[0] = "GET";
        argvlen[0] = 3;
        argv[1] = "ar:{cfg}:version";
        argvlen[1] = sizeof("ar:{cfg}:version") - 1;

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

    ctx->auth_reserve = !ctx->route_failed;

    rc = ngx_ai_relay_auth_send(r, ctx, ngx_ai_relay_auth_reply,
                                ctx->auth_reserve ? "reserve" : "check");

    if (rc == NGX_AGAIN && ctx->auth_reserve) {
        /* a request that stops waiting releases what this reserves */
        ctx->auth_cmd = ctx->cmds[ctx->nsent - 1];
    }

    return rc;
}


/* round trip 2: key and owner checks, limits, reservation */

ngx_int_t
ngx_ai_relay_auth_send(ngx_http_request_t *r, ngx_ai_relay_ctx_t *ctx,
    ngx_ai_relay_redis_handler_pt handler, const char *mode)
{
    u_char                    *p, *last;
    size_t                     len, argvlen[14];
    ngx_str_t                  pre;
    const char                *argv[14];
    ngx_ai_relay_main_conf_t  *armcf;

    armcf = ngx_http_get_module_main_conf(r, ngx_ai_relay_module);

    /* "ar:{u<id>}:" and the five keys of the script */

    pre.len = sizeof("ar:{u}:") - 1 + ctx->user_id.len;
    len = 4 * (pre.len + sizeof("key:") + ctx->key_hash.len)
          + 4 * NGX_INT64_LEN;

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    last = p + len;

    pre.data = p;
    p = ngx_sprintf(p, "ar:{u%V}:", &ctx->user_id);

#define ngx_ai_relay_arg(i, start, end)                                       \
    argv[i] = (const char *) (start);                                         \
    argvlen[i] = (end) - (start)

    argv[0] = "EVALSHA";
    argvlen[0] = 7;
    argv[1] = ngx_ai_relay_script_sha(r, NGX_AI_RELAY_SCRIPT_AUTH,
                                      &argvlen[1]);
    argv[2] = "3";
    argvlen[2] = 1;

    ngx_ai_relay_arg(3, p, ngx_sprintf(p, "%Vuser", &pre));
    p += argvlen[3];
    ngx_ai_relay_arg(4, p, ngx_sprintf(p, "%Vkey:%V", &pre, &ctx->key_hash));
    p += argvlen[4];
    ngx_ai_relay_arg(5, p, ngx_sprintf(p, "%Vres", &pre));
    p += argvlen[5];

    argv[6] = mode;
    argvlen[6] = ngx_strlen(mode);
    argv[7] = (const char *) ctx->request_id.data;
    argvlen[7] = ctx->request_id.len;
    ngx_ai_relay_arg(8, p, ngx_sprintf(p, "%T", ngx_time()));
    p += argvlen[8];
    argv[9] = (const char *) ctx->model.data;
    argvlen[9] = ctx->model.len;
    ngx_ai_relay_arg(10, p, ngx_sprintf(p, "%L", ctx->reserve));
    p += argvlen[10];
    ngx_ai_relay_arg(11, p, ngx_sprintf(p, "%T",
                                        (time_t) armcf->reservation_ttl));
    p += argvlen[11];
    argv[12] = (const char *) ctx->key_hash.data;
    argvlen[12] = ctx->key_hash.len;
    argv[13] = (const char *) pre.data;
    argvlen[13] = pre.len;

#undef ngx_ai_relay_arg

    if (p > last) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "ai relay: auth arguments overflow");
        return NGX_ERROR;
    }

    return ngx_ai_relay_wait(r, ctx, handler, 14, argv, argvlen);
}


/* {status, detail, key id, allowed models, unlimited} */

ngx_int_t
ngx_ai_relay_auth_result(ngx_http_request_t *r, ngx_ai_relay_ctx_t *ctx,
    redisReply *reply)
{
    time_t                     expires;
    ngx_str_t                  status, detail;
    redisReply               **e;
    ngx_ai_relay_main_conf_t  *armcf;

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 2) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "ai relay: unexpected reply of the auth script");
        ngx_ai_relay_set_error(r, NGX_HTTP_INTERNAL_SERVER_ERROR, "",
                               "internal error");
        return NGX_ERROR;
    }

    e = reply->element;

    if (ngx_ai_relay_reply_string(r, e[0], &status) != NGX_OK
        || ngx_ai_relay_reply_string(r, e[1], &detail) == NGX_ERROR)
    {
        return NGX_ERROR;
    }

    if (reply->elements > 2
        && ngx_ai_relay_reply_string(r, e[2], &ctx->key_id) == NGX_ERROR)
    {
        return NGX_ERROR;
    }

    if (reply->elements > 4) {
        if (ngx_ai_relay_reply_string(r, e[3], &ctx->allowed_models)
            == NGX_ERROR)
        {
            return NGX_ERROR;
        }

        ctx->unlimited = (e[4]->type == REDIS_REPLY_STRING
                          && e[4]->len == 1 && e[4]->str[0] == '1');
    }

#define ngx_ai_relay_is(s)                                                    \
    (status.len == sizeof(s) - 1 && ngx_strncmp(status.data, s, status.len) \
                                    == 0)

    if (ngx_ai_relay_is("ok")) {
        if (reply->elements > 6 && e[5]->type == REDIS_REPLY_STRING
            && e[6]->type == REDIS_REPLY_STRING)
        {
            expires = ngx_atotm((u_char *) e[5]->str, e[5]->len);

            ngx_ai_relay_lease_remember(r, ctx,
                                        expires == NGX_ERROR ? 1 : expires,
                                        e[6]->len == 1 && e[6]->str[0] == '1');
        }

        return NGX_OK;
    }

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "ai relay: key %V (id %V) refused: %V %V",
                  &ctx->key_masked, &ctx->key_id, &status, &detail);

    ngx_ai_relay_lease_forget(r, ctx);

    if (ngx_ai_relay_is("unknown_key")) {
        armcf = ngx_http_get_module_main_conf(r, ngx_ai_relay_module);
        ngx_ai_relay_cache_delete(&armcf->key_cache, ctx->key_hash.data,
                                  ctx->key_hash.len);

        ngx_ai_relay_set_error(r, NGX_HTTP_UNAUTHORIZED, "",
                               "Incorrect API key provided: %V.",
                               &ctx->key_masked);

    } else if (ngx_ai_relay_is("key_disabled")) {
        ngx_ai_relay_set_error(r, NGX_HTTP_UNAUTHORIZED, "",
                               "The API key %V has been disabled.",
                               &ctx->key_masked);

    } else if (ngx_ai_relay_is("key_expired")) {
        ngx_ai_relay_set_error(r, NGX_HTTP_UNAUTHORIZED, "",
                               "The API key %V has expired.",
                               &ctx->key_masked);

    } else if (ngx_ai_relay_is("user_disabled")) {
        ngx_ai_relay_set_error(r, NGX_HTTP_UNAUTHORIZED, "",
                               "The account that owns the API key %V "
                               "is disabled.", &ctx->key_masked);

    } else if (ngx_ai_relay_is("model_not_allowed")) {
        ngx_ai_relay_model_not_found(r, ctx);

    } else if (ngx_ai_relay_is("rpm") || ngx_ai_relay_is("tpm")) {
        ctx->retry_after = ngx_atoi(detail.data, detail.len);

        ngx_ai_relay_set_error(r, NGX_HTTP_TOO_MANY_REQUESTS,
                               status.data[0] == 't' ? "tokens" : "requests",
                               "Rate limit reached for %s per minute on "
                               "the API key %V. Please try again in %Vs.",
                               status.data[0] == 't' ? "tokens" : "requests",
                               &ctx->key_masked, &detail);

    } else if (ngx_ai_relay_is("quota_short")
               || ngx_ai_relay_is("key_quota_short"))
    {
        ngx_ai_relay_set_error(r, 402, "insufficient_quota",
                               "Insufficient quota for this request: it "
                               "reserves up to %L micro-USD (prompt "
                               "estimate and max_tokens) and the %s has "
                               "%V left. Lower max_tokens or top up.",
                               ctx->reserve,
                               status.data[0] == 'k' ? "key" : "account",
                               &detail);

    } else if (ngx_ai_relay_is("quota") || ngx_ai_relay_is("key_quota")) {
        ngx_ai_relay_set_error(r, 402, "insufficient_quota",
                               "You exceeded your current quota: the %s "
                               "has no balance left. Please top up.",
                               status.data[0] == 'k' ? "API key" : "account");

    } else {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "ai relay: unexpected auth status \"%V\"", &status);
        ngx_ai_relay_set_error(r, NGX_HTTP_INTERNAL_SERVER_ERROR, "",
                               "internal error");
    }

#undef ngx_ai_relay_is

    return NGX_DECLINED;
}


/* AUTH refused for want of balance (not of the key's own quota) */

static ngx_uint_t
ngx_ai_relay_auth_short(redisReply *reply)
{
    redisReply  *s;

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY
        || reply->elements == 0)
    {
        return 0;
    }

    s = reply->element[0];

    return s->type == REDIS_REPLY_STRING
           && ((s->len == 5 && ngx_strncmp(s->str, "quota", 5) == 0)
               || (s->len == 11
                   && ngx_strncmp(s->str, "quota_short", 11) == 0));
}


static void
ngx_ai_relay_auth_reply(void *data, redisReply *reply)
{
    ngx_http_request_t  *r = data;

    ngx_int_t            rc;
    ngx_ai_relay_ctx_t  *ctx;

    ctx = ngx_ai_relay_reply_ctx(r, reply);
    ctx->auth_cmd = NULL;

    if (ctx->state == NGX_AI_RELAY_STATE_DONE) {
        ngx_ai_relay_resume(r);
        return;
    }

    if (ngx_ai_relay_auth_short(reply) && !ctx->lease_given_back
        && ngx_ai_relay_lease_give_back(
               ngx_http_get_module_main_conf(r, ngx_ai_relay_module),
               &ctx->user_id)
           == NGX_OK)
    {
        /* money this worker held for the user is back: ask again */

        ctx->lease_given_back = 1;

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

    ctx->reserved_ok = ctx->auth_reserve;

    if (ctx->route_stale) {

        /* the cached route was outdated: fetch it, then carry on */

        ctx->route_stale = 0;
        ctx->route_cached = 0;
        ctx->route_failed = 0;
        ctx->nchannels = 0;
        ctx->nenabled = 0;
        ctx->state = NGX_AI_RELAY_STATE_LOOKUP;

        if (ngx_ai_relay_lookup(r, ctx) != NGX_AGAIN) {
            ngx_ai_relay_resume(r);
        }

        return;
    }

    if (ctx->route_failed) {
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


static ngx_int_t
ngx_ai_relay_send_response(ngx_http_request_t *r, ngx_ai_relay_ctx_t *ctx)
{
    ngx_table_elt_t  *h;

    if (ctx->response && ctx->err_status == 0) {
        return ngx_ai_relay_send_json(r, NGX_HTTP_OK, ctx->response);
    }

    if (ctx->retry_after > 0) {
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

        h->value.len = ngx_sprintf(h->value.data, "%i", ctx->retry_after)
                       - h->value.data;
    }

    if (ctx->err_status == 0) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_ai_relay_send_error(r, ctx->err_status, ctx->err_code,
                                   &ctx->err_message);
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

    ngx_ai_relay_cleanup(ngx_http_get_module_ctx(r, ngx_ai_relay_module));
    ngx_ai_relay_redis_timed_out(armcf->redis);

    ngx_ai_relay_set_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                           "service_unavailable",
                           "The relay's state store did not answer in "
                           "time, please retry shortly.");
    ngx_ai_relay_resume(r);
}


/* the request ends (or gives up waiting): replies must not touch it */

static void
ngx_ai_relay_cleanup(void *data)
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
