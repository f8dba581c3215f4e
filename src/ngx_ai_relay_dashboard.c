
/*
 * Copyright (C) ngx_ai_relay authors
 *
 * The balance endpoints chat clients (ChatGPT-Next-Web, LobeChat, ...)
 * read, in the shape New API and One API serve them:
 *
 *   GET /v1/dashboard/billing/subscription
 *       {"object":"billing_subscription","has_payment_method":true,
 *        "soft_limit_usd":..,"hard_limit_usd":..,
 *        "system_hard_limit_usd":..,"access_until":..}
 *   GET /v1/dashboard/billing/usage?start_date=..&end_date=..
 *       {"object":"list","total_usage":<cents>}
 *
 * for the key that asks only.  The key is checked by AUTH ("check"), and
 * the DASHBOARD script reads its owner's balance, its quota and its cost
 * over the days asked, pipelined behind it: one round trip.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_ai_relay_module.h"
#include "ngx_ai_relay_dashboard.h"
#include "ngx_ai_relay_ctx.h"
#include "ngx_ai_relay_auth.h"
#include "ngx_ai_relay_error.h"
#include "ngx_ai_relay_lua.h"


/* OpenAI's own limit on a usage range */
#define NGX_AI_RELAY_DASHBOARD_MAX_DAYS  100

/* what One API shows for an unlimited key, in USD */
#define NGX_AI_RELAY_DASHBOARD_UNLIMITED  ((int64_t) 100000000 * 1000000)


static ngx_int_t ngx_ai_relay_dashboard_range(ngx_http_request_t *r,
    int64_t *first, int64_t *last);
static void ngx_ai_relay_dashboard_reply(void *data, redisReply *reply);
static void ngx_ai_relay_dashboard_done(ngx_http_request_t *r,
    ngx_ai_relay_ctx_t *ctx);
static u_char *ngx_ai_relay_dashboard_usd(u_char *p, int64_t micro);


ngx_int_t
ngx_ai_relay_dashboard_send(ngx_http_request_t *r, ngx_ai_relay_ctx_t *ctx)
{
    int          year, month, mday;
    u_char      *p;
    size_t      *argvlen;
    int64_t      first, last, day;
    ngx_str_t    pre;
    ngx_uint_t   n, i;
    const char **argv;

    first = 0;
    last = -1;

    if (ctx->endpoint->id == NGX_AI_RELAY_EP_USAGE
        && ngx_ai_relay_dashboard_range(r, &first, &last) != NGX_OK)
    {
        return NGX_DONE;
    }

    if (ngx_ai_relay_auth_check(r, ctx, ngx_ai_relay_dashboard_done)
        != NGX_AGAIN)
    {
        return NGX_ERROR;
    }

    n = (ngx_uint_t) (last - first + 1);

    argv = ngx_palloc(r->pool, (5 + n) * sizeof(char *));
    argvlen = ngx_palloc(r->pool, (5 + n) * sizeof(size_t));

    pre.len = sizeof(NGX_AI_RELAY_RKEY_U("")) - 1 + ctx->key.user_id.len;

    /*
     * exactly what is written below: the prefix, the key count, the
     * user's hash, the key's hash, and n daily counters
     */

    p = ngx_pnalloc(r->pool,
                    pre.len
                    + NGX_INT_T_LEN
                    + pre.len + sizeof(NGX_AI_RELAY_RKEY_U_USER) - 1
                    + pre.len + sizeof(NGX_AI_RELAY_RKEY_U_KEY("")) - 1
                      + ctx->key.hash.len
                    + n * (pre.len + sizeof(NGX_AI_RELAY_RKEY_U_STATS(""))
                           - 1 + sizeof("YYYYMMDD") - 1));

    if (argv == NULL || argvlen == NULL || p == NULL) {
        return NGX_ERROR;
    }

    pre.data = p;
    p = ngx_sprintf(p, NGX_AI_RELAY_RKEY_U("%V"), &ctx->key.user_id);

    argv[0] = "EVALSHA";
    argvlen[0] = 7;
    argv[1] = ngx_ai_relay_script_sha(r, NGX_AI_RELAY_SCRIPT_DASHBOARD,
                                      &argvlen[1]);

    argv[2] = (const char *) p;
    p = ngx_sprintf(p, "%ui", 2 + n);
    argvlen[2] = p - (u_char *) argv[2];

    argv[3] = (const char *) p;
    p = ngx_sprintf(p, "%V" NGX_AI_RELAY_RKEY_U_USER, &pre);
    argvlen[3] = p - (u_char *) argv[3];

    argv[4] = (const char *) p;
    p = ngx_sprintf(p, "%V" NGX_AI_RELAY_RKEY_U_KEY("%V"), &pre,
                    &ctx->key.hash);
    argvlen[4] = p - (u_char *) argv[4];

    for (i = 0, day = first; i < n; i++, day++) {
        ngx_ai_relay_endpoint_civil(day, &year, &month, &mday);

        argv[5 + i] = (const char *) p;
        p = ngx_sprintf(p, "%V" NGX_AI_RELAY_RKEY_U_STATS("%04d%02d%02d"),
                        &pre, year, month, mday);
        argvlen[5 + i] = p - (u_char *) argv[5 + i];
    }

    return ngx_ai_relay_wait(r, ctx, ngx_ai_relay_dashboard_reply,
                             (int) (5 + n), argv, argvlen);
}


/*
 * ?start_date=YYYY-MM-DD&end_date=YYYY-MM-DD, the end not included (as
 * OpenAI's); without them, this month to today.  Days are UTC days, as
 * the daily counters are.
 */

static ngx_int_t
ngx_ai_relay_dashboard_range(ngx_http_request_t *r, int64_t *first,
    int64_t *last)
{
    int64_t     today, start, end;
    ngx_str_t   s, e;
    ngx_tm_t    tm;

    today = (int64_t) (ngx_time() / 86400);

    if (ngx_http_arg(r, (u_char *) "start_date", 10, &s) != NGX_OK) {
        ngx_str_null(&s);
    }

    if (ngx_http_arg(r, (u_char *) "end_date", 8, &e) != NGX_OK) {
        ngx_str_null(&e);
    }

    if (s.len == 0) {
        ngx_gmtime(ngx_time(), &tm);
        start = today - (tm.ngx_tm_mday - 1);

    } else if (ngx_ai_relay_endpoint_date(s.data, s.len, &start) != 0) {
        goto invalid;
    }

    if (e.len == 0) {
        end = today + 1;

    } else if (ngx_ai_relay_endpoint_date(e.data, e.len, &end) != 0) {
        goto invalid;
    }

    if (end <= start) {
        ngx_ai_relay_set_error(r, NGX_HTTP_BAD_REQUEST, "invalid_request",
                               "end_date must be after start_date.");
        return NGX_ERROR;
    }

    if (end - start > NGX_AI_RELAY_DASHBOARD_MAX_DAYS) {
        ngx_ai_relay_set_error(r, NGX_HTTP_BAD_REQUEST, "invalid_request",
                               "The range may span at most %d days.",
                               NGX_AI_RELAY_DASHBOARD_MAX_DAYS);
        return NGX_ERROR;
    }

    *first = start;
    *last = end - 1;

    return NGX_OK;

invalid:

    ngx_ai_relay_set_error(r, NGX_HTTP_BAD_REQUEST, "invalid_request",
                           "start_date and end_date must be dates, "
                           "YYYY-MM-DD.");
    return NGX_ERROR;
}


static void
ngx_ai_relay_dashboard_reply(void *data, redisReply *reply)
{
    ngx_http_request_t  *r = data;

    u_char              *p;
    int64_t              v[6], limit;
    ngx_uint_t           i;
    redisReply         **e;
    ngx_ai_relay_ctx_t  *ctx;

    ctx = ngx_ai_relay_reply_ctx(r, reply);

    if (ctx->state == NGX_AI_RELAY_STATE_DONE || reply == NULL
        || reply->type != REDIS_REPLY_ARRAY || reply->elements != 6)
    {
        goto done;
    }

    e = reply->element;

    for (i = 0; i < 6; i++) {
        if (e[i]->type != REDIS_REPLY_STRING) {
            goto done;
        }

        if (e[i]->len && e[i]->str[0] == '-') {
            v[i] = ngx_atoof((u_char *) e[i]->str + 1, e[i]->len - 1);
            v[i] = (v[i] == NGX_ERROR) ? 0 : -v[i];

        } else {
            v[i] = ngx_atoof((u_char *) e[i]->str, e[i]->len);
            v[i] = (v[i] == NGX_ERROR) ? 0 : v[i];
        }
    }

    /* {balance, user unlimited, key quota, key unlimited, expires, cost} */

    ctx->response = ngx_create_temp_buf(r->pool, 256 + 4 * NGX_INT64_LEN);
    if (ctx->response == NULL) {
        goto done;
    }

    p = ctx->response->last;

    if (ctx->endpoint->id == NGX_AI_RELAY_EP_USAGE) {

        /* cents, to a hundredth of a micro-USD's worth: 4 decimals */

        p = ngx_sprintf(p, "{\"object\":\"list\",\"total_usage\":%L.%04L}\n",
                        v[5] / 10000, v[5] % 10000);

    } else {

        /* what the key may still spend: the balance, or its quota */

        if (v[1] == 1 || v[3] == 1) {
            limit = NGX_AI_RELAY_DASHBOARD_UNLIMITED;

        } else {
            limit = v[0];

            if (v[2] >= 0 && v[2] < limit) {
                limit = v[2];
            }

            if (limit < 0) {
                limit = 0;
            }
        }

        p = ngx_cpymem(p, "{\"object\":\"billing_subscription\","
                       "\"has_payment_method\":true,\"soft_limit_usd\":",
                       sizeof("{\"object\":\"billing_subscription\","
                              "\"has_payment_method\":true,"
                              "\"soft_limit_usd\":") - 1);
        p = ngx_ai_relay_dashboard_usd(p, limit);
        p = ngx_cpymem(p, ",\"hard_limit_usd\":",
                       sizeof(",\"hard_limit_usd\":") - 1);
        p = ngx_ai_relay_dashboard_usd(p, limit);
        p = ngx_cpymem(p, ",\"system_hard_limit_usd\":",
                       sizeof(",\"system_hard_limit_usd\":") - 1);
        p = ngx_ai_relay_dashboard_usd(p, limit);
        p = ngx_sprintf(p, ",\"access_until\":%L}\n", v[4]);
    }

    ctx->response->last = p;
    ctx->response->last_buf = 1;
    ctx->response->last_in_chain = 1;

done:

    if (ctx->nsent == 0) {
        ngx_ai_relay_dashboard_done(r, ctx);
    }
}


static void
ngx_ai_relay_dashboard_done(ngx_http_request_t *r, ngx_ai_relay_ctx_t *ctx)
{
    if (ctx->state != NGX_AI_RELAY_STATE_DONE) {

        if (ctx->response == NULL) {
            ngx_ai_relay_set_error(r, NGX_HTTP_INTERNAL_SERVER_ERROR, "",
                                   "internal error");

        } else {
            ctx->state = NGX_AI_RELAY_STATE_DONE;
            ctx->status = NGX_OK;
        }
    }

    ngx_ai_relay_resume(r);
}


/* micro-USD as a JSON number of USD: 12.5, 0.000001 */

static u_char *
ngx_ai_relay_dashboard_usd(u_char *p, int64_t micro)
{
    size_t  n;
    char    buf[NGX_AI_RELAY_PRICE_USD_LEN];

    n = ngx_ai_relay_price_format_usd(buf, sizeof(buf), micro,
                                      NGX_AI_RELAY_PRICE_FMT_TRIM
                                      |NGX_AI_RELAY_PRICE_FMT_NO_SYMBOL);

    return ngx_cpymem(p, buf, n);
}
