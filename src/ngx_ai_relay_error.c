
/*
 * Copyright (C) ngx_ai_relay authors
 *
 * JSON error responses in the provider's shape, for our own errors and
 * in place of nginx's HTML error pages on relay locations.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_ai_relay_module.h"
#include "ngx_ai_relay_error.h"


typedef struct {
    ngx_uint_t    status;
    const char   *openai_type;
    const char   *openai_code;
    const char   *anthropic_type;
    const char   *gemini_status;
} ngx_ai_relay_error_kind_t;


static ngx_ai_relay_error_kind_t  ngx_ai_relay_error_kinds[] = {
    { 400, "invalid_request_error", "invalid_request",
      "invalid_request_error", "INVALID_ARGUMENT" },
    { 401, "invalid_request_error", "invalid_api_key",
      "authentication_error", "UNAUTHENTICATED" },
    { 402, "insufficient_quota", "insufficient_quota",
      "billing_error", "RESOURCE_EXHAUSTED" },
    { 403, "invalid_request_error", "permission_denied",
      "permission_error", "PERMISSION_DENIED" },
    { 404, "invalid_request_error", "not_found",
      "not_found_error", "NOT_FOUND" },
    { 405, "invalid_request_error", "method_not_allowed",
      "invalid_request_error", "INVALID_ARGUMENT" },
    { 408, "invalid_request_error", "request_timeout",
      "invalid_request_error", "DEADLINE_EXCEEDED" },
    { 413, "invalid_request_error", "request_too_large",
      "request_too_large", "INVALID_ARGUMENT" },
    { 414, "invalid_request_error", "request_too_large",
      "request_too_large", "INVALID_ARGUMENT" },
    { 429, "requests", "rate_limit_exceeded",
      "rate_limit_error", "RESOURCE_EXHAUSTED" },
    { 500, "server_error", "internal_error",
      "api_error", "INTERNAL" },
    { 502, "server_error", "bad_gateway",
      "api_error", "UNAVAILABLE" },
    { 503, "server_error", "service_unavailable",
      "api_error", "UNAVAILABLE" },
    { 504, "server_error", "upstream_timeout",
      "timeout_error", "DEADLINE_EXCEEDED" },
    { 0, "invalid_request_error", "invalid_request",
      "invalid_request_error", "INVALID_ARGUMENT" }
};


static ngx_ai_relay_error_kind_t *
ngx_ai_relay_error_kind(ngx_uint_t status)
{
    ngx_ai_relay_error_kind_t  *k;

    for (k = ngx_ai_relay_error_kinds; k->status; k++) {
        if (k->status == status) {
            return k;
        }
    }

    if (status >= 500) {
        return &ngx_ai_relay_error_kinds[10];
    }

    return k;
}


/* the bytes an escaped byte adds: \" \\ \n ... 1, \u00XX 5, else 0 */

static const u_char  ngx_ai_relay_json_extra[256] = {
    5, 5, 5, 5, 5, 5, 5, 5, 1, 1, 1, 5, 1, 1, 5, 5,
    5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5,
    0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0
};


size_t
ngx_ai_relay_json_escape_len(u_char *src, size_t len)
{
    size_t   n;
    u_char  *last;

    n = len;

    for (last = src + len; src < last; src++) {
        n += ngx_ai_relay_json_extra[*src];
    }

    return n;
}


u_char *
ngx_ai_relay_json_escape(u_char *dst, u_char *src, size_t len)
{
    u_char         *last, *plain;
    static u_char   hex[] = "0123456789abcdef";

    last = src + len;

    while (src < last) {

        /* a run that needs no escaping goes in one copy */

        for (plain = src;
             src < last && ngx_ai_relay_json_extra[*src] == 0;
             src++)
        {
            /* void */
        }

        dst = ngx_cpymem(dst, plain, src - plain);

        if (src == last) {
            break;
        }

        *dst++ = '\\';

        switch (*src) {
        case '"':  *dst++ = '"'; break;
        case '\\': *dst++ = '\\'; break;
        case '\n': *dst++ = 'n'; break;
        case '\r': *dst++ = 'r'; break;
        case '\t': *dst++ = 't'; break;
        case '\b': *dst++ = 'b'; break;
        case '\f': *dst++ = 'f'; break;
        default:
            *dst++ = 'u'; *dst++ = '0'; *dst++ = '0';
            *dst++ = hex[*src >> 4];
            *dst++ = hex[*src & 0xf];
        }

        src++;
    }

    return dst;
}


ngx_buf_t *
ngx_ai_relay_error_body(ngx_http_request_t *r, ngx_uint_t style,
    ngx_uint_t status, const char *code, ngx_str_t *message)
{
    size_t                      len, mlen;
    ngx_buf_t                  *b;
    ngx_ai_relay_error_kind_t  *k;

    k = ngx_ai_relay_error_kind(status);

    if (code == NULL || *code == '\0') {
        code = k->openai_code;
    }

    mlen = ngx_ai_relay_json_escape_len(message->data, message->len);

    len = sizeof("{\"error\":{\"message\":\"\",\"type\":\"\",\"param\":null,"
                 "\"code\":\"\"}}\n") + mlen + 64 + ngx_strlen(code);

    b = ngx_create_temp_buf(r->pool, len);
    if (b == NULL) {
        return NULL;
    }

    switch (style) {

    case NGX_AI_RELAY_STYLE_ANTHROPIC:
        b->last = ngx_sprintf(b->last,
                              "{\"type\":\"error\",\"error\":{\"type\":\"%s\","
                              "\"message\":\"", k->anthropic_type);
        b->last = ngx_ai_relay_json_escape(b->last, message->data,
                                           message->len);
        b->last = ngx_cpymem(b->last, "\"}}\n", 4);
        break;

    case NGX_AI_RELAY_STYLE_GEMINI:
        b->last = ngx_sprintf(b->last, "{\"error\":{\"code\":%ui,"
                              "\"message\":\"", status);
        b->last = ngx_ai_relay_json_escape(b->last, message->data,
                                           message->len);
        b->last = ngx_sprintf(b->last, "\",\"status\":\"%s\"}}\n",
                              k->gemini_status);
        break;

    default: /* NGX_AI_RELAY_STYLE_OPENAI */
        b->last = ngx_cpymem(b->last, "{\"error\":{\"message\":\"",
                             sizeof("{\"error\":{\"message\":\"") - 1);
        b->last = ngx_ai_relay_json_escape(b->last, message->data,
                                           message->len);
        b->last = ngx_sprintf(b->last, "\",\"type\":\"%s\",\"param\":null,"
                              "\"code\":\"%s\"}}\n",
                              (status == 429 && ngx_strcmp(code, "tokens") == 0)
                              ? "tokens" : k->openai_type,
                              (status == 429) ? "rate_limit_exceeded" : code);
    }

    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    return b;
}


ngx_int_t
ngx_ai_relay_send_json(ngx_http_request_t *r, ngx_uint_t status,
    ngx_buf_t *b)
{
    ngx_int_t            rc;
    ngx_chain_t          out;
    ngx_ai_relay_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_ai_relay_module);
    if (ctx) {
        ctx->err.own = 1;
    }

    if (ngx_http_discard_request_body(r) != NGX_OK) {
        r->keepalive = 0;
    }

    r->headers_out.status = status;
    r->headers_out.content_length_n = b->last - b->pos;
    ngx_str_set(&r->headers_out.content_type, "application/json");
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_type_lowcase = NULL;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


ngx_int_t
ngx_ai_relay_send_error(ngx_http_request_t *r, ngx_uint_t status,
    const char *code, ngx_str_t *message)
{
    ngx_buf_t                *b;
    ngx_ai_relay_ctx_t       *ctx;
    ngx_ai_relay_loc_conf_t  *arlcf;

    arlcf = ngx_http_get_module_loc_conf(r, ngx_ai_relay_module);

    b = ngx_ai_relay_error_body(r, arlcf->style, status, code, message);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_ai_relay_module);
    if (ctx && ctx->err.message.len == 0) {
        ctx->err.status = status;
        ctx->err.message = *message;
    }

    return ngx_ai_relay_send_json(r, status, b);
}


/* remember an error for the client; the handler sends it when it resumes */

void
ngx_ai_relay_set_error(ngx_http_request_t *r, ngx_uint_t status,
    const char *code, const char *fmt, ...)
{
    u_char              *p, buf[NGX_MAX_ERROR_STR];
    va_list              args;
    ngx_ai_relay_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_ai_relay_module);
    if (ctx == NULL) {
        return;
    }

    va_start(args, fmt);
    p = ngx_vslprintf(buf, buf + sizeof(buf), fmt, args);
    va_end(args);

    ctx->err.message.data = ngx_pnalloc(r->pool, p - buf);
    if (ctx->err.message.data == NULL) {
        ctx->err.message.len = 0;

    } else {
        ngx_memcpy(ctx->err.message.data, buf, p - buf);
        ctx->err.message.len = p - buf;
    }

    ctx->err.status = status;
    ctx->err.code = code;
    ctx->state = NGX_AI_RELAY_STATE_DONE;
    ctx->status = status;
}
