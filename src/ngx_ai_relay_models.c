
/*
 * Copyright (C) ngx_ai_relay authors
 *
 * GET /v1/models and GET /v1/models/{id}: the models this key may use,
 * in OpenAI's format.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_ai_relay_module.h"
#include "ngx_ai_relay_models.h"
#include "ngx_ai_relay_ctx.h"
#include "ngx_ai_relay_auth.h"
#include "ngx_ai_relay_route.h"
#include "ngx_ai_relay_error.h"
#include "ngx_ai_relay_lua.h"


static void ngx_ai_relay_models_auth_reply(void *data, redisReply *reply);
static void ngx_ai_relay_models_list_reply(void *data, redisReply *reply);
static void ngx_ai_relay_models_done(ngx_http_request_t *r,
    ngx_ai_relay_ctx_t *ctx);
static ngx_uint_t ngx_ai_relay_model_allowed(ngx_str_t *allowed,
    u_char *name, size_t len);


ngx_uint_t
ngx_ai_relay_models_request(ngx_http_request_t *r, ngx_ai_relay_ctx_t *ctx)
{
    u_char  *p, *last;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return 0;
    }

    last = r->uri.data + r->uri.len;

    if (r->uri.len >= 7 && ngx_strncmp(last - 7, "/models", 7) == 0) {
        return 1;
    }

    for (p = last - 1; p > r->uri.data; p--) {
        if (*p == '/') {
            break;
        }
    }

    if (p - r->uri.data >= 7 && ngx_strncmp(p - 7, "/models/", 8) == 0
        && last - p > 1)
    {
        ctx->body.model.data = p + 1;
        ctx->body.model.len = last - p - 1;
        return 1;
    }

    return 0;
}


ngx_int_t
ngx_ai_relay_models_send(ngx_http_request_t *r, ngx_ai_relay_ctx_t *ctx)
{
    size_t       argvlen[4];
    const char  *argv[4];

    if (ngx_ai_relay_auth_send(r, ctx, ngx_ai_relay_models_auth_reply,
                               "check")
        != NGX_AGAIN)
    {
        return NGX_ERROR;
    }

    argv[0] = "EVALSHA";
    argvlen[0] = 7;
    argv[1] = ngx_ai_relay_script_sha(r, NGX_AI_RELAY_SCRIPT_MODELS,
                                      &argvlen[1]);
    argv[2] = "1";
    argvlen[2] = 1;
    argv[3] = NGX_AI_RELAY_RKEY_MODELS;
    argvlen[3] = sizeof(NGX_AI_RELAY_RKEY_MODELS) - 1;

    return ngx_ai_relay_wait(r, ctx, ngx_ai_relay_models_list_reply, 4,
                             argv, argvlen);
}


static void
ngx_ai_relay_models_auth_reply(void *data, redisReply *reply)
{
    ngx_http_request_t  *r = data;

    ngx_ai_relay_ctx_t  *ctx;

    ctx = ngx_ai_relay_reply_ctx(r, reply);

    if (ctx->state != NGX_AI_RELAY_STATE_DONE) {
        (void) ngx_ai_relay_auth_result(r, ctx, reply);
    }

    if (ctx->nsent == 0) {
        ngx_ai_relay_models_done(r, ctx);
    }
}


static void
ngx_ai_relay_models_list_reply(void *data, redisReply *reply)
{
    ngx_http_request_t  *r = data;

    size_t               i, len;
    u_char              *p;
    redisReply          *m, **e;
    ngx_ai_relay_ctx_t  *ctx;

    ctx = ngx_ai_relay_reply_ctx(r, reply);

    if (ctx->state == NGX_AI_RELAY_STATE_DONE
        || reply->type != REDIS_REPLY_ARRAY)
    {
        goto done;
    }

    /* {"object":"list","data":[{"id":..,"object":"model",..},..]} */

    len = sizeof("{\"object\":\"list\",\"data\":[]}\n");
    e = reply->element;

    for (i = 0; i < reply->elements; i++) {
        m = e[i];

        if (m->type != REDIS_REPLY_ARRAY || m->elements != 3) {
            continue;
        }

        len += sizeof(",{\"id\":\"\",\"object\":\"model\",\"created\":,"
                      "\"owned_by\":\"\"}") + NGX_INT64_LEN
               + ngx_ai_relay_json_escape_len((u_char *) m->element[0]->str,
                                              m->element[0]->len)
               + ngx_ai_relay_json_escape_len((u_char *) m->element[1]->str,
                                              m->element[1]->len);
    }

    ctx->response = ngx_create_temp_buf(r->pool, len);
    if (ctx->response == NULL) {
        goto done;
    }

    p = ctx->response->last;

    if (ctx->body.model.len == 0) {
        p = ngx_cpymem(p, "{\"object\":\"list\",\"data\":[",
                       sizeof("{\"object\":\"list\",\"data\":[") - 1);
    }

    ctx->found = 0;

    for (i = 0; i < reply->elements; i++) {
        m = e[i];

        if (m->type != REDIS_REPLY_ARRAY || m->elements != 3
            || m->element[0]->type != REDIS_REPLY_STRING
            || m->element[1]->type != REDIS_REPLY_STRING
            || m->element[2]->type != REDIS_REPLY_STRING)
        {
            continue;
        }

        if (!ngx_ai_relay_model_allowed(&ctx->key.allowed_models,
                                        (u_char *) m->element[0]->str,
                                        m->element[0]->len))
        {
            continue;
        }

        if (ctx->body.model.len
            && (ctx->body.model.len != m->element[0]->len
                || ngx_strncmp(ctx->body.model.data, m->element[0]->str,
                               ctx->body.model.len) != 0))
        {
            continue;
        }

        if (ctx->found++ && ctx->body.model.len == 0) {
            *p++ = ',';
        }

        p = ngx_cpymem(p, "{\"id\":\"", sizeof("{\"id\":\"") - 1);
        p = ngx_ai_relay_json_escape(p, (u_char *) m->element[0]->str,
                                     m->element[0]->len);
        p = ngx_sprintf(p, "\",\"object\":\"model\",\"created\":%L,"
                        "\"owned_by\":\"",
                        (int64_t) ngx_atoof((u_char *) m->element[2]->str,
                                            m->element[2]->len));
        p = ngx_ai_relay_json_escape(p, (u_char *) m->element[1]->str,
                                     m->element[1]->len);
        p = ngx_cpymem(p, "\"}", 2);

        if (ctx->body.model.len) {
            break;
        }
    }

    if (ctx->body.model.len == 0) {
        p = ngx_cpymem(p, "]}", 2);
    }

    *p++ = '\n';

    ctx->response->last = p;
    ctx->response->last_buf = 1;
    ctx->response->last_in_chain = 1;

done:

    if (ctx->nsent == 0) {
        ngx_ai_relay_models_done(r, ctx);
    }
}


static void
ngx_ai_relay_models_done(ngx_http_request_t *r, ngx_ai_relay_ctx_t *ctx)
{
    if (ctx->state != NGX_AI_RELAY_STATE_DONE) {

        if (ctx->response == NULL) {
            ngx_ai_relay_set_error(r, NGX_HTTP_INTERNAL_SERVER_ERROR, "",
                                   "internal error");

        } else if (ctx->body.model.len && ctx->found == 0) {
            ngx_ai_relay_model_not_found(r, ctx);

        } else {
            ctx->state = NGX_AI_RELAY_STATE_DONE;
            ctx->status = NGX_OK;
        }
    }

    ngx_ai_relay_resume(r);
}


/* allowed: comma separated names, empty means every model */

static ngx_uint_t
ngx_ai_relay_model_allowed(ngx_str_t *allowed, u_char *name, size_t len)
{
    u_char  *p, *last, *comma;

    if (allowed->len == 0) {
        return 1;
    }

    last = allowed->data + allowed->len;

    for (p = allowed->data; p < last; p = comma + 1) {
        comma = ngx_strlchr(p, last, ',');
        if (comma == NULL) {
            comma = last;
        }

        if ((size_t) (comma - p) == len && ngx_strncmp(p, name, len) == 0) {
            return 1;
        }
    }

    return 0;
}
