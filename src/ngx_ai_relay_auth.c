
/*
 * Copyright (C) ngx_ai_relay authors
 *
 * The client's key: found in the request in any style clients use,
 * hashed and masked at once (the plaintext goes no further), and checked
 * by the AUTH script, whose refusals become the client's errors.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_ai_relay_module.h"
#include "ngx_ai_relay_auth.h"
#include "ngx_ai_relay_ctx.h"
#include "ngx_ai_relay_route.h"
#include "ngx_ai_relay_error.h"
#include "ngx_ai_relay_lease.h"
#include "ngx_ai_relay_lua.h"
#include "ngx_ai_relay_key.h"


static void ngx_ai_relay_auth_check_reply(void *data, redisReply *reply);


/*
 * The client key, in the styles clients use: Authorization: Bearer,
 * x-api-key (Anthropic), x-goog-api-key or ?key= (Gemini).
 */

ngx_int_t
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


/* hash and mask the client's key; the plaintext goes no further */

ngx_int_t
ngx_ai_relay_client_key(ngx_http_request_t *r, ngx_str_t *key,
    ngx_ai_relay_ctx_t *ctx)
{
    char    masked[NGX_AI_RELAY_KEY_MASK_SIZE];
    size_t  len;

    ctx->key.hash.data = ngx_pnalloc(r->pool, NGX_AI_RELAY_KEY_HASH_LEN + 1);
    if (ctx->key.hash.data == NULL) {
        return NGX_ERROR;
    }

    if (ngx_ai_relay_key_hash(key->data, key->len,
                              (char *) ctx->key.hash.data)
        != 0)
    {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "ai relay: SHA-256 failed");
        return NGX_ERROR;
    }

    ctx->key.hash.len = NGX_AI_RELAY_KEY_HASH_LEN;

    len = ngx_ai_relay_key_mask(key->data, key->len, masked, sizeof(masked));

    ctx->key.masked.data = ngx_pnalloc(r->pool, len);
    if (ctx->key.masked.data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(ctx->key.masked.data, masked, len);
    ctx->key.masked.len = len;

    ctx->key.valid = ngx_ai_relay_key_valid(key->data, key->len);

    return NGX_OK;
}


/* round trip 2: key and owner checks, limits, reservation */

/*
 * AUTH "check" for a request that reserves nothing (model lists, balance,
 * tasks): done() runs once its replies are in, whatever AUTH said
 */

ngx_int_t
ngx_ai_relay_auth_check(ngx_http_request_t *r, ngx_ai_relay_ctx_t *ctx,
    ngx_ai_relay_checked_pt done)
{
    ctx->key.checked = done;

    return ngx_ai_relay_auth_send(r, ctx, ngx_ai_relay_auth_check_reply,
                                  "check");
}


static void
ngx_ai_relay_auth_check_reply(void *data, redisReply *reply)
{
    ngx_http_request_t  *r = data;

    ngx_ai_relay_ctx_t  *ctx;

    ctx = ngx_ai_relay_reply_ctx(r, reply);

    if (ctx->state != NGX_AI_RELAY_STATE_DONE) {
        (void) ngx_ai_relay_auth_result(r, ctx, reply);
    }

    if (ctx->nsent == 0) {
        ctx->key.checked(r, ctx);
    }
}


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

    pre.len = sizeof(NGX_AI_RELAY_RKEY_U("")) - 1 + ctx->key.user_id.len;
    len = 4 * (pre.len + sizeof(NGX_AI_RELAY_RKEY_U_KEY(""))
               + ctx->key.hash.len)
          + 4 * NGX_INT64_LEN;

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    last = p + len;

    pre.data = p;
    p = ngx_sprintf(p, NGX_AI_RELAY_RKEY_U("%V"), &ctx->key.user_id);

#define ngx_ai_relay_arg(i, start, end)                                       \
    argv[i] = (const char *) (start);                                         \
    argvlen[i] = (end) - (start)

    argv[0] = "EVALSHA";
    argvlen[0] = 7;
    argv[1] = ngx_ai_relay_script_sha(r, NGX_AI_RELAY_SCRIPT_AUTH,
                                      &argvlen[1]);
    argv[2] = "3";
    argvlen[2] = 1;

    ngx_ai_relay_arg(3, p, ngx_sprintf(p, "%V" NGX_AI_RELAY_RKEY_U_USER, &pre));
    p += argvlen[3];
    ngx_ai_relay_arg(4, p, ngx_sprintf(p, "%V" NGX_AI_RELAY_RKEY_U_KEY("%V"),
                                       &pre, &ctx->key.hash));
    p += argvlen[4];
    ngx_ai_relay_arg(5, p, ngx_sprintf(p, "%V" NGX_AI_RELAY_RKEY_U_RES, &pre));
    p += argvlen[5];

    argv[6] = mode;
    argvlen[6] = ngx_strlen(mode);
    argv[7] = (const char *) ctx->request_id.data;
    argvlen[7] = ctx->request_id.len;
    ngx_ai_relay_arg(8, p, ngx_sprintf(p, "%T", ngx_time()));
    p += argvlen[8];
    argv[9] = (const char *) ctx->body.model.data;
    argvlen[9] = ctx->body.model.len;
    ngx_ai_relay_arg(10, p, ngx_sprintf(p, "%L", ctx->bill.reserve));
    p += argvlen[10];
    ngx_ai_relay_arg(11, p, ngx_sprintf(p, "%T",
                                        (time_t) armcf->reservation_ttl));
    p += argvlen[11];
    argv[12] = (const char *) ctx->key.hash.data;
    argvlen[12] = ctx->key.hash.len;
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
        && ngx_ai_relay_reply_string(r, e[2], &ctx->key.id) == NGX_ERROR)
    {
        return NGX_ERROR;
    }

    if (reply->elements > 4) {
        if (ngx_ai_relay_reply_string(r, e[3], &ctx->key.allowed_models)
            == NGX_ERROR)
        {
            return NGX_ERROR;
        }

        ctx->key.unlimited = (e[4]->type == REDIS_REPLY_STRING
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
                  &ctx->key.masked, &ctx->key.id, &status, &detail);

    ngx_ai_relay_lease_forget(r, ctx);

    if (ngx_ai_relay_is("unknown_key")) {
        armcf = ngx_http_get_module_main_conf(r, ngx_ai_relay_module);
        ngx_ai_relay_cache_delete(&armcf->worker->key_cache, ctx->key.hash.data,
                                  ctx->key.hash.len);

        ngx_ai_relay_set_error(r, NGX_HTTP_UNAUTHORIZED, "",
                               "Incorrect API key provided: %V.",
                               &ctx->key.masked);

    } else if (ngx_ai_relay_is("key_disabled")) {
        ngx_ai_relay_set_error(r, NGX_HTTP_UNAUTHORIZED, "",
                               "The API key %V has been disabled.",
                               &ctx->key.masked);

    } else if (ngx_ai_relay_is("key_expired")) {
        ngx_ai_relay_set_error(r, NGX_HTTP_UNAUTHORIZED, "",
                               "The API key %V has expired.",
                               &ctx->key.masked);

    } else if (ngx_ai_relay_is("user_disabled")) {
        ngx_ai_relay_set_error(r, NGX_HTTP_UNAUTHORIZED, "",
                               "The account that owns the API key %V "
                               "is disabled.", &ctx->key.masked);

    } else if (ngx_ai_relay_is("model_not_allowed")) {
        ngx_ai_relay_model_not_found(r, ctx);

    } else if (ngx_ai_relay_is("rpm") || ngx_ai_relay_is("tpm")) {
        ctx->err.retry_after = ngx_atoi(detail.data, detail.len);

        ngx_ai_relay_set_error(r, NGX_HTTP_TOO_MANY_REQUESTS,
                               status.data[0] == 't' ? "tokens" : "requests",
                               "Rate limit reached for %s per minute on "
                               "the API key %V. Please try again in %Vs.",
                               status.data[0] == 't' ? "tokens" : "requests",
                               &ctx->key.masked, &detail);

    } else if (ngx_ai_relay_is("quota_short")
               || ngx_ai_relay_is("key_quota_short"))
    {
        ngx_ai_relay_set_error(r, 402, "insufficient_quota",
                               "Insufficient quota for this request: it "
                               "reserves up to %L micro-USD (prompt "
                               "estimate and max_tokens) and the %s has "
                               "%V left. Lower max_tokens or top up.",
                               ctx->bill.reserve,
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

ngx_uint_t
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
