
/*
 * Copyright (C) ngx_ai_relay authors
 *
 * GET /v1/models and GET /v1/models/{id}: the models this key may use,
 * in the shape of the client's API: OpenAI's, Anthropic's (data[] of
 * {type, id, display_name, created_at}, has_more, first_id, last_id) or
 * Gemini's (models[] of {name: "models/x", ...}).
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


static void ngx_ai_relay_models_list_reply(void *data, redisReply *reply);
static void ngx_ai_relay_models_done(ngx_http_request_t *r,
    ngx_ai_relay_ctx_t *ctx);
static ngx_uint_t ngx_ai_relay_models_shape(ngx_http_request_t *r);
static u_char *ngx_ai_relay_models_one(u_char *p, ngx_uint_t shape,
    redisReply *m);
static u_char *ngx_ai_relay_models_id(u_char *p, redisReply *id);
static ngx_uint_t ngx_ai_relay_model_allowed(ngx_str_t *allowed,
    u_char *name, size_t len);


ngx_int_t
ngx_ai_relay_models_send(ngx_http_request_t *r, ngx_ai_relay_ctx_t *ctx)
{
    size_t       argvlen[4];
    const char  *argv[4];

    if (ngx_ai_relay_auth_check(r, ctx, ngx_ai_relay_models_done)
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
ngx_ai_relay_models_list_reply(void *data, redisReply *reply)
{
    ngx_http_request_t  *r = data;

    size_t               i, len;
    u_char              *p;
    ngx_uint_t           shape;
    redisReply          *m, **e, *first, *last;
    ngx_ai_relay_ctx_t  *ctx;

    ctx = ngx_ai_relay_reply_ctx(r, reply);

    if (ctx->state == NGX_AI_RELAY_STATE_DONE || reply == NULL
        || reply->type != REDIS_REPLY_ARRAY)
    {
        goto done;
    }

    shape = ngx_ai_relay_models_shape(r);

    len = 128;
    e = reply->element;

    for (i = 0; i < reply->elements; i++) {
        m = e[i];

        if (m->type != REDIS_REPLY_ARRAY || m->elements != 3
            || m->element[0]->type != REDIS_REPLY_STRING
            || m->element[1]->type != REDIS_REPLY_STRING
            || m->element[2]->type != REDIS_REPLY_STRING)
        {
            continue;
        }

        len += 256 + NGX_INT64_LEN
               + 3 * ngx_ai_relay_json_escape_len(
                         (u_char *) m->element[0]->str, m->element[0]->len)
               + ngx_ai_relay_json_escape_len((u_char *) m->element[1]->str,
                                              m->element[1]->len);
    }

    ctx->response = ngx_create_temp_buf(r->pool, len);
    if (ctx->response == NULL) {
        goto done;
    }

    p = ctx->response->last;

    if (ctx->body.model.len == 0) {
        switch (shape) {
        case NGX_AI_RELAY_STYLE_ANTHROPIC:
            p = ngx_cpymem(p, "{\"data\":[", sizeof("{\"data\":[") - 1);
            break;
        case NGX_AI_RELAY_STYLE_GEMINI:
            p = ngx_cpymem(p, "{\"models\":[", sizeof("{\"models\":[") - 1);
            break;
        default:
            p = ngx_cpymem(p, "{\"object\":\"list\",\"data\":[",
                           sizeof("{\"object\":\"list\",\"data\":[") - 1);
        }
    }

    ctx->found = 0;
    first = NULL;
    last = NULL;

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

        if (first == NULL) {
            first = m->element[0];
        }

        last = m->element[0];

        p = ngx_ai_relay_models_one(p, shape, m);

        if (ctx->body.model.len) {
            break;
        }
    }

    if (ctx->body.model.len == 0) {
        switch (shape) {

        case NGX_AI_RELAY_STYLE_ANTHROPIC:
            p = ngx_cpymem(p, "],\"has_more\":false,\"first_id\":",
                           sizeof("],\"has_more\":false,\"first_id\":") - 1);
            p = ngx_ai_relay_models_id(p, first);
            p = ngx_cpymem(p, ",\"last_id\":", sizeof(",\"last_id\":") - 1);
            p = ngx_ai_relay_models_id(p, last);
            *p++ = '}';
            break;

        default:
            p = ngx_cpymem(p, "]}", 2);
        }
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


/*
 * The shape of the client's API: Anthropic's on an anthropic location or
 * for a client that sends anthropic-version (its SDKs do), Gemini's on a
 * gemini location or under /v1beta/, OpenAI's otherwise.
 */

static ngx_uint_t
ngx_ai_relay_models_shape(ngx_http_request_t *r)
{
    ngx_uint_t                i;
    ngx_list_part_t          *part;
    ngx_table_elt_t          *h;
    ngx_ai_relay_loc_conf_t  *arlcf;

    arlcf = ngx_http_get_module_loc_conf(r, ngx_ai_relay_module);

    if (arlcf->style == NGX_AI_RELAY_STYLE_ANTHROPIC
        || arlcf->style == NGX_AI_RELAY_STYLE_GEMINI)
    {
        return arlcf->style;
    }

    if (ngx_strlcasestrn(r->uri.data, r->uri.data + r->uri.len,
                         (u_char *) "/v1beta/", sizeof("/v1beta/") - 2)
        != NULL)
    {
        return NGX_AI_RELAY_STYLE_GEMINI;
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

        if (h[i].key.len == sizeof("anthropic-version") - 1
            && ngx_strncasecmp(h[i].key.data, (u_char *) "anthropic-version",
                               h[i].key.len) == 0)
        {
            return NGX_AI_RELAY_STYLE_ANTHROPIC;
        }
    }

    return NGX_AI_RELAY_STYLE_OPENAI;
}


/* one model: {name, owned_by, created} */

static u_char *
ngx_ai_relay_models_one(u_char *p, ngx_uint_t shape, redisReply *m)
{
    u_char       *name;
    size_t        len;
    time_t        created;
    ngx_tm_t      tm;

    name = (u_char *) m->element[0]->str;
    len = m->element[0]->len;

    created = ngx_atotm((u_char *) m->element[2]->str, m->element[2]->len);
    if (created == NGX_ERROR) {
        created = 0;
    }

    switch (shape) {

    case NGX_AI_RELAY_STYLE_ANTHROPIC:
        ngx_gmtime(created, &tm);

        p = ngx_cpymem(p, "{\"type\":\"model\",\"id\":\"",
                       sizeof("{\"type\":\"model\",\"id\":\"") - 1);
        p = ngx_ai_relay_json_escape(p, name, len);
        p = ngx_cpymem(p, "\",\"display_name\":\"",
                       sizeof("\",\"display_name\":\"") - 1);
        p = ngx_ai_relay_json_escape(p, name, len);
        p = ngx_sprintf(p, "\",\"created_at\":\"%4d-%02d-%02dT%02d:%02d:%02dZ\"}",
                        tm.ngx_tm_year, tm.ngx_tm_mon, tm.ngx_tm_mday,
                        tm.ngx_tm_hour, tm.ngx_tm_min, tm.ngx_tm_sec);
        break;

    case NGX_AI_RELAY_STYLE_GEMINI:
        p = ngx_cpymem(p, "{\"name\":\"models/",
                       sizeof("{\"name\":\"models/") - 1);
        p = ngx_ai_relay_json_escape(p, name, len);
        p = ngx_cpymem(p, "\",\"displayName\":\"",
                       sizeof("\",\"displayName\":\"") - 1);
        p = ngx_ai_relay_json_escape(p, name, len);
        p = ngx_cpymem(p, "\",\"supportedGenerationMethods\":"
                       "[\"generateContent\",\"streamGenerateContent\","
                       "\"countTokens\"]}",
                       sizeof("\",\"supportedGenerationMethods\":"
                              "[\"generateContent\",\"streamGenerateContent\","
                              "\"countTokens\"]}") - 1);
        break;

    default:
        p = ngx_cpymem(p, "{\"id\":\"", sizeof("{\"id\":\"") - 1);
        p = ngx_ai_relay_json_escape(p, name, len);
        p = ngx_sprintf(p, "\",\"object\":\"model\",\"created\":%T,"
                        "\"owned_by\":\"", created);
        p = ngx_ai_relay_json_escape(p, (u_char *) m->element[1]->str,
                                     m->element[1]->len);
        p = ngx_cpymem(p, "\"}", 2);
    }

    return p;
}


/* a JSON string of the id, or null */

static u_char *
ngx_ai_relay_models_id(u_char *p, redisReply *id)
{
    if (id == NULL) {
        return ngx_cpymem(p, "null", 4);
    }

    *p++ = '"';
    p = ngx_ai_relay_json_escape(p, (u_char *) id->str, id->len);
    *p++ = '"';

    return p;
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
