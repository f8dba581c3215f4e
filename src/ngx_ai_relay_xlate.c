
/*
 * Copyright (C) ngx_ai_relay authors
 *
 * Requests and whole answers translated between OpenAI chat completions
 * and Anthropic messages (see ngx_ai_relay_xlate.h).  No nginx headers.
 */


#include <string.h>
#include <stdio.h>
#include <stdarg.h>
#include <stdlib.h>

#include "ngx_ai_relay_xlate.h"


typedef ngx_ai_relay_json_member_t  ngx_ai_relay_xm_t;


#define NGX_AI_RELAY_XLATE_MEMBERS  64


static int ngx_ai_relay_xlate_fail(ngx_ai_relay_xlate_req_t *rq,
    const char *fmt, ...);
static int ngx_ai_relay_xm_key_is(const u_char *b, const ngx_ai_relay_xm_t *m,
    const char *s);
static int ngx_ai_relay_xm_null(const ngx_ai_relay_xm_t *m);
static int ngx_ai_relay_xm_zero(const u_char *b, const ngx_ai_relay_xm_t *m);
static int ngx_ai_relay_json_object_text(const u_char *p, size_t len);
static int ngx_ai_relay_o2a_request(ngx_ai_relay_xlate_req_t *rq,
    ngx_ai_relay_jw_t *w);
static int ngx_ai_relay_a2o_request(ngx_ai_relay_xlate_req_t *rq,
    ngx_ai_relay_jw_t *w);
static int ngx_ai_relay_a2o_response(const u_char *b,
    ngx_ai_relay_json_scan_t *scan, int64_t created, ngx_ai_relay_jw_t *w);
static int ngx_ai_relay_o2a_response(const u_char *b,
    ngx_ai_relay_json_scan_t *scan, ngx_ai_relay_jw_t *w);
static int ngx_ai_relay_xlate_request_one(ngx_ai_relay_xlate_req_t *rq,
    ngx_ai_relay_xlate_alloc_pt alloc, void *data);
static int ngx_ai_relay_xlate_response_one(ngx_ai_relay_format_e from,
    ngx_ai_relay_format_e to, const u_char *body, size_t len,
    int64_t created, ngx_ai_relay_jw_t *out);
static int ngx_ai_relay_o2g_request(ngx_ai_relay_xlate_req_t *rq,
    ngx_ai_relay_jw_t *w);
static int ngx_ai_relay_g2o_response(const u_char *b,
    ngx_ai_relay_json_scan_t *scan, int64_t created, ngx_ai_relay_jw_t *w);
static int64_t ngx_ai_relay_xm_int(const u_char *b,
    const ngx_ai_relay_xm_t *obj, const char *name);
static int ngx_ai_relay_g2o_request(ngx_ai_relay_xlate_req_t *rq,
    ngx_ai_relay_jw_t *w);
static int ngx_ai_relay_o2g_response(const u_char *b,
    ngx_ai_relay_json_scan_t *scan, ngx_ai_relay_jw_t *w);


/* ------------------------------------------------------------ writer */

void
ngx_ai_relay_jw_init(ngx_ai_relay_jw_t *w, ngx_ai_relay_xlate_alloc_pt alloc,
    void *data)
{
    memset(w, 0, sizeof(ngx_ai_relay_jw_t));
    w->alloc = alloc;
    w->data = data;
}


static int
ngx_ai_relay_jw_grow(ngx_ai_relay_jw_t *w, size_t n)
{
    u_char  *nb;
    size_t   cap;

    if (w->failed) {
        return -1;
    }

    if (w->len + n <= w->cap) {
        return 0;
    }

    cap = w->cap ? w->cap : 256;

    while (cap < w->len + n) {
        cap *= 2;
    }

    nb = w->alloc(w->data, cap);
    if (nb == NULL) {
        w->failed = 1;
        return -1;
    }

    if (w->len) {
        memcpy(nb, w->buf, w->len);
    }

    w->buf = nb;
    w->cap = cap;

    return 0;
}


void
ngx_ai_relay_jw_raw(ngx_ai_relay_jw_t *w, const void *p, size_t n)
{
    if (n == 0 || ngx_ai_relay_jw_grow(w, n) != 0) {
        return;
    }

    memcpy(w->buf + w->len, p, n);
    w->len += n;
}


void
ngx_ai_relay_jw_str(ngx_ai_relay_jw_t *w, const u_char *p, size_t n)
{
    size_t  qlen;

    qlen = ngx_ai_relay_json_quote_len(p, n);

    if (ngx_ai_relay_jw_grow(w, qlen) != 0) {
        return;
    }

    ngx_ai_relay_json_quote(w->buf + w->len, p, n);
    w->len += qlen;
}


void
ngx_ai_relay_jw_int(ngx_ai_relay_jw_t *w, int64_t v)
{
    int   n;
    char  tmp[24];

    n = snprintf(tmp, sizeof(tmp), "%lld", (long long) v);
    ngx_ai_relay_jw_raw(w, tmp, (size_t) n);
}


/* ----------------------------------------------------------- reading */

static int
ngx_ai_relay_xlate_fail(ngx_ai_relay_xlate_req_t *rq, const char *fmt, ...)
{
    va_list  args;

    va_start(args, fmt);
    vsnprintf(rq->err, sizeof(rq->err), fmt, args);
    va_end(args);

    return NGX_AI_RELAY_XLATE_INVALID;
}


int
ngx_ai_relay_xm_find(const u_char *b, const ngx_ai_relay_xm_t *obj,
    const char *name, ngx_ai_relay_xm_t *out)
{
    if (obj == NULL || obj->type != NGX_AI_RELAY_JSON_OBJECT) {
        memset(out, 0, sizeof(ngx_ai_relay_xm_t));
        return 0;
    }

    if (!ngx_ai_relay_json_object_find(b, obj, name, strlen(name), out)) {
        memset(out, 0, sizeof(ngx_ai_relay_xm_t));
        return 0;
    }

    return 1;
}


/* a string value equal to s (as written, escapes are not decoded) */

int
ngx_ai_relay_xm_is(const u_char *b, const ngx_ai_relay_xm_t *m, const char *s)
{
    size_t  n;

    n = strlen(s);

    return m != NULL && m->type == NGX_AI_RELAY_JSON_STRING
           && m->value_end - m->value_start == n + 2
           && memcmp(b + m->value_start + 1, s, n) == 0;
}


static int
ngx_ai_relay_xm_key_is(const u_char *b, const ngx_ai_relay_xm_t *m,
    const char *s)
{
    size_t  n;

    n = strlen(s);

    return m->key_end - m->key_start == n
           && memcmp(b + m->key_start, s, n) == 0;
}


void
ngx_ai_relay_xm_raw(ngx_ai_relay_jw_t *w, const u_char *b,
    const ngx_ai_relay_xm_t *m)
{
    ngx_ai_relay_jw_raw(w, b + m->value_start, m->value_end - m->value_start);
}


/* absent or null */

static int
ngx_ai_relay_xm_null(const ngx_ai_relay_xm_t *m)
{
    return m->type == NGX_AI_RELAY_JSON_NONE
           || m->type == NGX_AI_RELAY_JSON_NULL;
}


/* absent, null, false, 0, an empty string, array or object */

static int
ngx_ai_relay_xm_zero(const u_char *b, const ngx_ai_relay_xm_t *m)
{
    size_t  i;

    switch (m->type) {

    case NGX_AI_RELAY_JSON_NONE:
    case NGX_AI_RELAY_JSON_NULL:
    case NGX_AI_RELAY_JSON_FALSE:
        return 1;

    case NGX_AI_RELAY_JSON_NUMBER:
        for (i = m->value_start; i < m->value_end; i++) {
            if (b[i] >= '1' && b[i] <= '9') {
                return 0;
            }

            if (b[i] == 'e' || b[i] == 'E') {
                break;
            }
        }

        return 1;

    case NGX_AI_RELAY_JSON_STRING:
    case NGX_AI_RELAY_JSON_ARRAY:
    case NGX_AI_RELAY_JSON_OBJECT:
        for (i = m->value_start + 1; i + 1 < m->value_end; i++) {
            if (b[i] != ' ' && b[i] != '\t' && b[i] != '\n' && b[i] != '\r') {
                return 0;
            }
        }

        return 1;

    default:
        return 0;
    }
}


/* p is valid JSON and an object */

static int
ngx_ai_relay_json_object_text(const u_char *p, size_t len)
{
    size_t                    i;
    ngx_ai_relay_json_scan_t  scan;

    for (i = 0; i < len && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n'
                            || p[i] == '\r'); i++)
    { /* void */ }

    if (i == len || p[i] != '{') {
        return 0;
    }

    ngx_ai_relay_json_scan_init(&scan, NULL, 0);

    return ngx_ai_relay_json_scan(&scan, p, len) == NGX_AI_RELAY_JSON_OK;
}


/* a string value decoded into a buffer of the writer's allocator */

static u_char *
ngx_ai_relay_xm_decode(ngx_ai_relay_jw_t *w, const u_char *b,
    const ngx_ai_relay_xm_t *m, size_t *len)
{
    u_char  *p;
    size_t   n;

    n = m->value_end - m->value_start - 2;

    p = w->alloc(w->data, n + 1);
    if (p == NULL) {
        w->failed = 1;
        return NULL;
    }

    if (ngx_ai_relay_json_unescape(b + m->value_start + 1, n, p, n + 1, len)
        != 0)
    {
        return NULL;
    }

    return p;
}


int
ngx_ai_relay_xlate_supported(ngx_ai_relay_format_e from,
    ngx_ai_relay_format_e to)
{
    return (from == NGX_AI_RELAY_FMT_OPENAI_CHAT
            && to == NGX_AI_RELAY_FMT_ANTHROPIC_MESSAGES)
           || (from == NGX_AI_RELAY_FMT_ANTHROPIC_MESSAGES
               && to == NGX_AI_RELAY_FMT_OPENAI_CHAT)
           || (from == NGX_AI_RELAY_FMT_OPENAI_CHAT
               && to == NGX_AI_RELAY_FMT_GEMINI)
           || (from == NGX_AI_RELAY_FMT_GEMINI
               && to == NGX_AI_RELAY_FMT_OPENAI_CHAT)
           || ngx_ai_relay_xlate_chained(from, to);
}


/* Anthropic <-> Gemini: by way of OpenAI's format, both steps */

int
ngx_ai_relay_xlate_chained(ngx_ai_relay_format_e from,
    ngx_ai_relay_format_e to)
{
    return (from == NGX_AI_RELAY_FMT_ANTHROPIC_MESSAGES
            && to == NGX_AI_RELAY_FMT_GEMINI)
           || (from == NGX_AI_RELAY_FMT_GEMINI
               && to == NGX_AI_RELAY_FMT_ANTHROPIC_MESSAGES);
}


int
ngx_ai_relay_xlate_request(ngx_ai_relay_xlate_req_t *rq,
    ngx_ai_relay_xlate_alloc_pt alloc, void *data)
{
    int                          rc;
    ngx_ai_relay_xlate_req_t    *mid;
    ngx_ai_relay_json_scan_t     scan;
    ngx_ai_relay_json_member_t   members[NGX_AI_RELAY_XLATE_MEMBERS];

    if (!ngx_ai_relay_xlate_chained(rq->from, rq->to)) {
        return ngx_ai_relay_xlate_request_one(rq, alloc, data);
    }

    /* first to OpenAI's format, then from it */

    mid = alloc(data, sizeof(ngx_ai_relay_xlate_req_t));
    if (mid == NULL) {
        return NGX_AI_RELAY_XLATE_ERROR;
    }

    *mid = *rq;
    mid->to = NGX_AI_RELAY_FMT_OPENAI_CHAT;

    rc = ngx_ai_relay_xlate_request_one(mid, alloc, data);

    if (rc != NGX_AI_RELAY_XLATE_OK) {
        memcpy(rq->err, mid->err, sizeof(rq->err));
        return rc;
    }

    ngx_ai_relay_json_scan_init(&scan, members, NGX_AI_RELAY_XLATE_MEMBERS);

    if (ngx_ai_relay_json_scan(&scan, mid->out, mid->out_len)
        != NGX_AI_RELAY_JSON_OK)
    {
        return NGX_AI_RELAY_XLATE_ERROR;
    }

    mid->body = mid->out;
    mid->len = mid->out_len;
    mid->scan = &scan;
    mid->from = NGX_AI_RELAY_FMT_OPENAI_CHAT;
    mid->to = rq->to;

    rc = ngx_ai_relay_xlate_request_one(mid, alloc, data);

    memcpy(rq->err, mid->err, sizeof(rq->err));

    if (rc != NGX_AI_RELAY_XLATE_OK) {
        return rc;
    }

    rq->out = mid->out;
    rq->out_len = mid->out_len;
    rq->max_out = mid->max_out;
    rq->stream = mid->stream;
    rq->include_usage = 0;

    return NGX_AI_RELAY_XLATE_OK;
}


static int
ngx_ai_relay_xlate_request_one(ngx_ai_relay_xlate_req_t *rq,
    ngx_ai_relay_xlate_alloc_pt alloc, void *data)
{
    int                rc;
    ngx_ai_relay_jw_t  w;

    rq->err[0] = '\0';
    rq->out = NULL;
    rq->out_len = 0;
    rq->max_out = -1;

    if (rq->from != NGX_AI_RELAY_FMT_GEMINI) {
        rq->stream = 0;
    }

    ngx_ai_relay_jw_init(&w, alloc, data);

    if (rq->from == NGX_AI_RELAY_FMT_OPENAI_CHAT
        && rq->to == NGX_AI_RELAY_FMT_ANTHROPIC_MESSAGES)
    {
        rc = ngx_ai_relay_o2a_request(rq, &w);

    } else if (rq->from == NGX_AI_RELAY_FMT_ANTHROPIC_MESSAGES
               && rq->to == NGX_AI_RELAY_FMT_OPENAI_CHAT)
    {
        rc = ngx_ai_relay_a2o_request(rq, &w);

    } else if (rq->from == NGX_AI_RELAY_FMT_OPENAI_CHAT
               && rq->to == NGX_AI_RELAY_FMT_GEMINI)
    {
        rc = ngx_ai_relay_o2g_request(rq, &w);

    } else if (rq->from == NGX_AI_RELAY_FMT_GEMINI
               && rq->to == NGX_AI_RELAY_FMT_OPENAI_CHAT)
    {
        rc = ngx_ai_relay_g2o_request(rq, &w);

    } else {
        return ngx_ai_relay_xlate_fail(rq, "this API cannot be translated "
                                       "for the model's channel");
    }

    if (rc != NGX_AI_RELAY_XLATE_OK) {
        return rc;
    }

    if (w.failed) {
        return NGX_AI_RELAY_XLATE_ERROR;
    }

    rq->out = w.buf;
    rq->out_len = w.len;

    return NGX_AI_RELAY_XLATE_OK;
}


/* ------------------------------------------- OpenAI -> Anthropic, request */

/* an OpenAI content part list or string as Anthropic content blocks */

static int
ngx_ai_relay_o2a_parts(ngx_ai_relay_xlate_req_t *rq, ngx_ai_relay_jw_t *w,
    const ngx_ai_relay_xm_t *content, int images, int *n)
{
    u_char             *url, *comma;
    size_t              pos, len;
    const u_char       *b;
    ngx_ai_relay_xm_t   part, type, text, iu, u;

    b = rq->body;

    if (content->type == NGX_AI_RELAY_JSON_STRING) {
        if (ngx_ai_relay_xm_zero(b, content)) {
            return NGX_AI_RELAY_XLATE_OK;
        }

        ngx_ai_relay_jw_raw(w, *n ? "," : "", *n ? 1 : 0);
        ngx_ai_relay_jw_lit(w, "{\"type\":\"text\",\"text\":");
        ngx_ai_relay_xm_raw(w, b, content);
        ngx_ai_relay_jw_lit(w, "}");
        (*n)++;
        return NGX_AI_RELAY_XLATE_OK;
    }

    if (ngx_ai_relay_xm_null(content)) {
        return NGX_AI_RELAY_XLATE_OK;
    }

    if (content->type != NGX_AI_RELAY_JSON_ARRAY) {
        return ngx_ai_relay_xlate_fail(rq, "message content must be a string "
                                       "or an array of content parts");
    }

    pos = 0;

    while (ngx_ai_relay_json_array_next(b, content, &pos, &part)) {
        ngx_ai_relay_xm_find(b, &part, "type", &type);

        if (ngx_ai_relay_xm_is(b, &type, "text")) {
            ngx_ai_relay_xm_find(b, &part, "text", &text);

            if (text.type != NGX_AI_RELAY_JSON_STRING) {
                return ngx_ai_relay_xlate_fail(rq, "a text part needs a "
                                               "string \"text\"");
            }

            if (ngx_ai_relay_xm_zero(b, &text)) {
                continue;
            }

            ngx_ai_relay_jw_raw(w, *n ? "," : "", *n ? 1 : 0);
            ngx_ai_relay_jw_lit(w, "{\"type\":\"text\",\"text\":");
            ngx_ai_relay_xm_raw(w, b, &text);
            ngx_ai_relay_jw_lit(w, "}");
            (*n)++;
            continue;
        }

        if (ngx_ai_relay_xm_is(b, &type, "image_url") && images) {
            ngx_ai_relay_xm_find(b, &part, "image_url", &iu);

            if (iu.type == NGX_AI_RELAY_JSON_STRING) {
                u = iu;

            } else {
                ngx_ai_relay_xm_find(b, &iu, "url", &u);
            }

            if (u.type != NGX_AI_RELAY_JSON_STRING) {
                return ngx_ai_relay_xlate_fail(rq, "an image_url part needs "
                                               "a url");
            }

            ngx_ai_relay_jw_raw(w, *n ? "," : "", *n ? 1 : 0);
            (*n)++;

            if (u.value_end - u.value_start > 7
                && memcmp(b + u.value_start + 1, "data:", 5) == 0)
            {
                url = ngx_ai_relay_xm_decode(w, b, &u, &len);
                if (url == NULL) {
                    return NGX_AI_RELAY_XLATE_ERROR;
                }

                comma = memchr(url, ',', len);

                if (comma == NULL || comma - url < 12
                    || memcmp(comma - 7, ";base64", 7) != 0)
                {
                    return ngx_ai_relay_xlate_fail(rq, "an image data URL "
                                                   "must be base64: "
                                                   "data:<type>;base64,...");
                }

                ngx_ai_relay_jw_lit(w, "{\"type\":\"image\",\"source\":"
                                    "{\"type\":\"base64\",\"media_type\":");
                ngx_ai_relay_jw_str(w, url + 5, comma - 7 - url - 5);
                ngx_ai_relay_jw_lit(w, ",\"data\":");
                ngx_ai_relay_jw_str(w, comma + 1, url + len - comma - 1);
                ngx_ai_relay_jw_lit(w, "}}");
                continue;
            }

            ngx_ai_relay_jw_lit(w, "{\"type\":\"image\",\"source\":"
                                "{\"type\":\"url\",\"url\":");
            ngx_ai_relay_xm_raw(w, b, &u);
            ngx_ai_relay_jw_lit(w, "}}");
            continue;
        }

        if (type.type == NGX_AI_RELAY_JSON_STRING) {
            return ngx_ai_relay_xlate_fail(rq, "content parts of type %.*s "
                                           "cannot be sent to this model's "
                                           "channel (Anthropic)",
                                           (int) (type.value_end
                                                  - type.value_start),
                                           b + type.value_start);
        }

        return ngx_ai_relay_xlate_fail(rq, "a content part needs a type");
    }

    return NGX_AI_RELAY_XLATE_OK;
}


/* "function": {"name", "arguments"} of a tool call as a tool_use block */

static int
ngx_ai_relay_o2a_tool_call(ngx_ai_relay_xlate_req_t *rq, ngx_ai_relay_jw_t *w,
    const ngx_ai_relay_xm_t *tc)
{
    u_char             *args;
    size_t              len;
    const u_char       *b;
    ngx_ai_relay_xm_t   id, fn, name, a;

    b = rq->body;

    ngx_ai_relay_xm_find(b, tc, "id", &id);
    ngx_ai_relay_xm_find(b, tc, "function", &fn);
    ngx_ai_relay_xm_find(b, &fn, "name", &name);
    ngx_ai_relay_xm_find(b, &fn, "arguments", &a);

    if (id.type != NGX_AI_RELAY_JSON_STRING
        || name.type != NGX_AI_RELAY_JSON_STRING)
    {
        return ngx_ai_relay_xlate_fail(rq, "a tool call needs an id and a "
                                       "function name");
    }

    ngx_ai_relay_jw_lit(w, "{\"type\":\"tool_use\",\"id\":");
    ngx_ai_relay_xm_raw(w, b, &id);
    ngx_ai_relay_jw_lit(w, ",\"name\":");
    ngx_ai_relay_xm_raw(w, b, &name);
    ngx_ai_relay_jw_lit(w, ",\"input\":");

    if (ngx_ai_relay_xm_null(&a) || ngx_ai_relay_xm_zero(b, &a)) {
        ngx_ai_relay_jw_lit(w, "{}");

    } else if (a.type == NGX_AI_RELAY_JSON_STRING) {
        args = ngx_ai_relay_xm_decode(w, b, &a, &len);
        if (args == NULL) {
            return NGX_AI_RELAY_XLATE_ERROR;
        }

        if (!ngx_ai_relay_json_object_text(args, len)) {
            return ngx_ai_relay_xlate_fail(rq, "the arguments of a tool "
                                           "call must be a JSON object");
        }

        ngx_ai_relay_jw_raw(w, args, len);

    } else {
        return ngx_ai_relay_xlate_fail(rq, "the arguments of a tool call "
                                       "must be a string");
    }

    ngx_ai_relay_jw_lit(w, "}");

    return NGX_AI_RELAY_XLATE_OK;
}


static const char  *ngx_ai_relay_o2a_ignored[] = {
    "model", "messages", "max_tokens", "max_completion_tokens", "stream",
    "stream_options", "temperature", "top_p", "stop", "tools",
    "tool_choice", "parallel_tool_calls", "user", "reasoning_effort",
    "seed", "store", "metadata", "service_tier", "n", "logprobs",
    "top_logprobs", "frequency_penalty", "presence_penalty", "logit_bias",
    "response_format", NULL
};


/* a JSON number's value; anything else: -1 (outside every range) */

static double
ngx_ai_relay_xm_number(const u_char *b, const ngx_ai_relay_xm_t *m)
{
    char    buf[64];
    size_t  n;

    n = m->value_end - m->value_start;

    if (m->type != NGX_AI_RELAY_JSON_NUMBER || n >= sizeof(buf)) {
        return -1;
    }

    memcpy(buf, b + m->value_start, n);
    buf[n] = '\0';

    return strtod(buf, NULL);
}


static int
ngx_ai_relay_o2a_request(ngx_ai_relay_xlate_req_t *rq, ngx_ai_relay_jw_t *w)
{
    int                               rc, n, open, system_done, flag;
    size_t                            i, pos, tpos, mark;
    double                            d;
    int64_t                           max_tokens, budget, v;
    const char                      **k;
    const u_char                     *b;
    ngx_ai_relay_xm_t                 msg, role, content, calls, tc, m, t,
                                      fn, x;
    const ngx_ai_relay_xm_t          *top;
    const ngx_ai_relay_json_scan_t   *scan;

#define ngx_ai_relay_top(name)                                                \
    ((top = ngx_ai_relay_json_find(scan, b, name, sizeof(name) - 1))         \
     ? *top : (memset(&x, 0, sizeof(x)), x))

    b = rq->body;
    scan = rq->scan;

    /* what Anthropic cannot do, said rather than dropped */

    for (i = 0; i < scan->nmembers; i++) {
        for (k = ngx_ai_relay_o2a_ignored; *k; k++) {
            if (ngx_ai_relay_xm_key_is(b, &scan->members[i], *k)) {
                break;
            }
        }

        if (*k == NULL) {
            return ngx_ai_relay_xlate_fail(rq, "the parameter %.*s cannot be "
                                   "sent to this model's channel (Anthropic)",
                                   (int) (scan->members[i].key_end
                                          - scan->members[i].key_start),
                                   b + scan->members[i].key_start);
        }
    }

    m = ngx_ai_relay_top("n");
    if (!ngx_ai_relay_xm_null(&m)
        && !(m.value_end - m.value_start == 1 && b[m.value_start] == '1'))
    {
        return ngx_ai_relay_xlate_fail(rq, "n other than 1 cannot be sent to "
                                       "this model's channel (Anthropic)");
    }

#define ngx_ai_relay_refuse_set(name)                                         \
    m = ngx_ai_relay_top(name);                                               \
    if (!ngx_ai_relay_xm_zero(b, &m)) {                                       \
        return ngx_ai_relay_xlate_fail(rq, "the parameter " name " cannot "   \
                                       "be sent to this model's channel "     \
                                       "(Anthropic)");                        \
    }

    ngx_ai_relay_refuse_set("logprobs");
    ngx_ai_relay_refuse_set("top_logprobs");
    ngx_ai_relay_refuse_set("frequency_penalty");
    ngx_ai_relay_refuse_set("presence_penalty");
    ngx_ai_relay_refuse_set("logit_bias");

#undef ngx_ai_relay_refuse_set

    m = ngx_ai_relay_top("response_format");
    if (!ngx_ai_relay_xm_null(&m)) {
        ngx_ai_relay_xm_find(b, &m, "type", &t);

        if (!ngx_ai_relay_xm_is(b, &t, "text")) {
            return ngx_ai_relay_xlate_fail(rq, "response_format cannot be "
                                           "sent to this model's channel "
                                           "(Anthropic)");
        }
    }

    ngx_ai_relay_jw_lit(w, "{\"model\":");
    ngx_ai_relay_jw_str(w, rq->model, rq->model_len);

    /* system: the leading system and developer messages */

    m = ngx_ai_relay_top("messages");
    if (m.type != NGX_AI_RELAY_JSON_ARRAY) {
        return ngx_ai_relay_xlate_fail(rq, "messages must be an array");
    }

    pos = 0;
    n = 0;
    system_done = 0;

    while (ngx_ai_relay_json_array_next(b, &m, &pos, &msg)) {
        ngx_ai_relay_xm_find(b, &msg, "role", &role);

        if (!ngx_ai_relay_xm_is(b, &role, "system")
            && !ngx_ai_relay_xm_is(b, &role, "developer"))
        {
            break;
        }

        if (n == 0) {
            ngx_ai_relay_jw_lit(w, ",\"system\":[");
        }

        ngx_ai_relay_xm_find(b, &msg, "content", &content);

        rc = ngx_ai_relay_o2a_parts(rq, w, &content, 0, &n);
        if (rc != NGX_AI_RELAY_XLATE_OK) {
            return rc;
        }

        system_done = 1;
    }

    if (system_done) {
        if (n == 0) {
            /* only empty system text: nothing to say */
            w->len -= sizeof(",\"system\":[") - 1;

        } else {
            ngx_ai_relay_jw_lit(w, "]");
        }
    }

    /* the conversation; tool results go in a user turn */

    ngx_ai_relay_jw_lit(w, ",\"messages\":[");

    open = 0;      /* 1: a user turn of tool results is open */
    n = 0;         /* messages written */
    pos = 0;

    while (ngx_ai_relay_json_array_next(b, &m, &pos, &msg)) {
        ngx_ai_relay_xm_find(b, &msg, "role", &role);
        ngx_ai_relay_xm_find(b, &msg, "content", &content);

        if (ngx_ai_relay_xm_is(b, &role, "system")
            || ngx_ai_relay_xm_is(b, &role, "developer"))
        {
            if (n == 0 && !open) {
                continue;       /* leading: went to "system" */
            }

            return ngx_ai_relay_xlate_fail(rq, "system messages after the "
                                           "conversation started cannot be "
                                           "sent to this model's channel "
                                           "(Anthropic)");
        }

        if (ngx_ai_relay_xm_is(b, &role, "tool")) {
            ngx_ai_relay_xm_find(b, &msg, "tool_call_id", &t);

            if (t.type != NGX_AI_RELAY_JSON_STRING) {
                return ngx_ai_relay_xlate_fail(rq, "a tool message needs a "
                                               "tool_call_id");
            }

            if (!open) {
                ngx_ai_relay_jw_raw(w, n ? "," : "", n ? 1 : 0);
                ngx_ai_relay_jw_lit(w, "{\"role\":\"user\",\"content\":[");
                open = 1;
                n++;

            } else {
                ngx_ai_relay_jw_lit(w, ",");
            }

            ngx_ai_relay_jw_lit(w, "{\"type\":\"tool_result\","
                                "\"tool_use_id\":");
            ngx_ai_relay_xm_raw(w, b, &t);

            if (content.type == NGX_AI_RELAY_JSON_STRING) {
                ngx_ai_relay_jw_lit(w, ",\"content\":");
                ngx_ai_relay_xm_raw(w, b, &content);

            } else if (!ngx_ai_relay_xm_null(&content)) {
                ngx_ai_relay_jw_lit(w, ",\"content\":[");
                i = 0;
                flag = 0;
                rc = ngx_ai_relay_o2a_parts(rq, w, &content, 0, &flag);
                if (rc != NGX_AI_RELAY_XLATE_OK) {
                    return rc;
                }

                ngx_ai_relay_jw_lit(w, "]");
            }

            ngx_ai_relay_jw_lit(w, "}");
            continue;
        }

        if (open) {
            ngx_ai_relay_jw_lit(w, "]}");
            open = 0;
        }

        if (ngx_ai_relay_xm_is(b, &role, "user")) {
            ngx_ai_relay_jw_raw(w, n ? "," : "", n ? 1 : 0);
            ngx_ai_relay_jw_lit(w, "{\"role\":\"user\",\"content\":");

            if (content.type == NGX_AI_RELAY_JSON_STRING) {
                ngx_ai_relay_xm_raw(w, b, &content);

            } else {
                ngx_ai_relay_jw_lit(w, "[");
                flag = 0;
                rc = ngx_ai_relay_o2a_parts(rq, w, &content, 1, &flag);
                if (rc != NGX_AI_RELAY_XLATE_OK) {
                    return rc;
                }

                ngx_ai_relay_jw_lit(w, "]");
            }

            ngx_ai_relay_jw_lit(w, "}");
            n++;
            continue;
        }

        if (ngx_ai_relay_xm_is(b, &role, "assistant")) {
            mark = w->len;
            ngx_ai_relay_jw_raw(w, n ? "," : "", n ? 1 : 0);
            ngx_ai_relay_jw_lit(w, "{\"role\":\"assistant\",\"content\":[");

            flag = 0;
            rc = ngx_ai_relay_o2a_parts(rq, w, &content, 0, &flag);
            if (rc != NGX_AI_RELAY_XLATE_OK) {
                return rc;
            }

            ngx_ai_relay_xm_find(b, &msg, "tool_calls", &calls);

            if (calls.type == NGX_AI_RELAY_JSON_ARRAY) {
                tpos = 0;

                while (ngx_ai_relay_json_array_next(b, &calls, &tpos, &tc)) {
                    ngx_ai_relay_jw_raw(w, flag ? "," : "", flag ? 1 : 0);
                    flag++;

                    rc = ngx_ai_relay_o2a_tool_call(rq, w, &tc);
                    if (rc != NGX_AI_RELAY_XLATE_OK) {
                        return rc;
                    }
                }
            }

            if (flag == 0) {

                /*
                 * Anthropic refuses an empty assistant turn and an empty
                 * text block: the turn is left out (its neighbours, of
                 * the same role, are merged by Anthropic)
                 */

                w->len = mark;
                continue;
            }

            ngx_ai_relay_jw_lit(w, "]}");
            n++;
            continue;
        }

        return ngx_ai_relay_xlate_fail(rq, "messages of role %.*s cannot be "
                                       "sent to this model's channel "
                                       "(Anthropic)",
                                       (int) (role.value_end
                                              - role.value_start),
                                       b + role.value_start);
    }

    if (open) {
        ngx_ai_relay_jw_lit(w, "]}");
    }

    if (n == 0) {
        return ngx_ai_relay_xlate_fail(rq, "messages must hold at least one "
                                       "user message");
    }

    ngx_ai_relay_jw_lit(w, "]");

    /* max_tokens is required; extended thinking takes its budget from it */

    max_tokens = -1;

    if (ngx_ai_relay_json_get_int(scan, b, "max_completion_tokens", 21,
                                  &v) == NGX_AI_RELAY_JSON_GET_OK
        || ngx_ai_relay_json_get_int(scan, b, "max_tokens", 10, &v)
           == NGX_AI_RELAY_JSON_GET_OK)
    {
        max_tokens = v;
    }

    budget = 0;
    m = ngx_ai_relay_top("reasoning_effort");

    if (ngx_ai_relay_xm_is(b, &m, "low")
        || ngx_ai_relay_xm_is(b, &m, "minimal"))
    {
        budget = NGX_AI_RELAY_XLATE_BUDGET_LOW;

    } else if (ngx_ai_relay_xm_is(b, &m, "medium")) {
        budget = NGX_AI_RELAY_XLATE_BUDGET_MEDIUM;

    } else if (ngx_ai_relay_xm_is(b, &m, "high")) {
        budget = NGX_AI_RELAY_XLATE_BUDGET_HIGH;

    } else if (!ngx_ai_relay_xm_null(&m) && !ngx_ai_relay_xm_is(b, &m, "none"))
    {
        return ngx_ai_relay_xlate_fail(rq, "reasoning_effort must be none, "
                                       "minimal, low, medium or high");
    }

    if (max_tokens < 0) {
        max_tokens = rq->default_max_tokens + budget;

    } else if (budget && max_tokens <= budget) {
        return ngx_ai_relay_xlate_fail(rq, "max_tokens must be larger than "
                                       "%lld, the thinking budget of this "
                                       "reasoning_effort on this model's "
                                       "channel (Anthropic)",
                                       (long long) budget);
    }

    if (max_tokens < 1) {
        return ngx_ai_relay_xlate_fail(rq, "max_tokens must be at least 1");
    }

    ngx_ai_relay_jw_lit(w, ",\"max_tokens\":");
    ngx_ai_relay_jw_int(w, max_tokens);
    rq->max_out = max_tokens;

    if (budget) {
        ngx_ai_relay_jw_lit(w, ",\"thinking\":{\"type\":\"enabled\","
                            "\"budget_tokens\":");
        ngx_ai_relay_jw_int(w, budget);
        ngx_ai_relay_jw_lit(w, "}");
    }

    /* Anthropic's ranges: temperature 0-1, and with thinking none of it */

    m = ngx_ai_relay_top("temperature");
    if (!ngx_ai_relay_xm_null(&m)) {
        d = ngx_ai_relay_xm_number(b, &m);

        if (d > 1 || d < 0) {
            return ngx_ai_relay_xlate_fail(rq, "temperature must be between "
                                           "0 and 1 on this model's channel "
                                           "(Anthropic)");
        }

        if (budget && d != 1) {
            return ngx_ai_relay_xlate_fail(rq, "temperature cannot be set "
                                           "with reasoning_effort on this "
                                           "model's channel (Anthropic)");
        }

        ngx_ai_relay_jw_lit(w, ",\"temperature\":");
        ngx_ai_relay_xm_raw(w, b, &m);
    }

    m = ngx_ai_relay_top("top_p");
    if (!ngx_ai_relay_xm_null(&m)) {
        d = ngx_ai_relay_xm_number(b, &m);

        if (budget && d < 0.95) {
            return ngx_ai_relay_xlate_fail(rq, "top_p must be at least 0.95 "
                                           "with reasoning_effort on this "
                                           "model's channel (Anthropic)");
        }

        ngx_ai_relay_jw_lit(w, ",\"top_p\":");
        ngx_ai_relay_xm_raw(w, b, &m);
    }

    m = ngx_ai_relay_top("stop");
    if (m.type == NGX_AI_RELAY_JSON_STRING) {
        ngx_ai_relay_jw_lit(w, ",\"stop_sequences\":[");
        ngx_ai_relay_xm_raw(w, b, &m);
        ngx_ai_relay_jw_lit(w, "]");

    } else if (m.type == NGX_AI_RELAY_JSON_ARRAY) {
        ngx_ai_relay_jw_lit(w, ",\"stop_sequences\":");
        ngx_ai_relay_xm_raw(w, b, &m);

    } else if (!ngx_ai_relay_xm_null(&m)) {
        return ngx_ai_relay_xlate_fail(rq, "stop must be a string or an "
                                       "array of strings");
    }

    m = ngx_ai_relay_top("stream");
    if (m.type == NGX_AI_RELAY_JSON_TRUE) {
        rq->stream = 1;
        ngx_ai_relay_jw_lit(w, ",\"stream\":true");

        x = ngx_ai_relay_top("stream_options");
        ngx_ai_relay_xm_find(b, &x, "include_usage", &t);
        rq->include_usage = (t.type == NGX_AI_RELAY_JSON_TRUE);
    }

    m = ngx_ai_relay_top("user");
    if (m.type == NGX_AI_RELAY_JSON_STRING) {
        ngx_ai_relay_jw_lit(w, ",\"metadata\":{\"user_id\":");
        ngx_ai_relay_xm_raw(w, b, &m);
        ngx_ai_relay_jw_lit(w, "}");
    }

    /* tools */

    m = ngx_ai_relay_top("tools");
    if (m.type == NGX_AI_RELAY_JSON_ARRAY) {
        ngx_ai_relay_jw_lit(w, ",\"tools\":[");
        pos = 0;
        n = 0;

        while (ngx_ai_relay_json_array_next(b, &m, &pos, &tc)) {
            ngx_ai_relay_xm_find(b, &tc, "type", &t);
            ngx_ai_relay_xm_find(b, &tc, "function", &fn);
            ngx_ai_relay_xm_find(b, &fn, "name", &x);

            if (!ngx_ai_relay_xm_is(b, &t, "function")
                || x.type != NGX_AI_RELAY_JSON_STRING)
            {
                return ngx_ai_relay_xlate_fail(rq, "only function tools can "
                                               "be sent to this model's "
                                               "channel (Anthropic)");
            }

            ngx_ai_relay_jw_raw(w, n ? "," : "", n ? 1 : 0);
            n++;

            ngx_ai_relay_jw_lit(w, "{\"name\":");
            ngx_ai_relay_xm_raw(w, b, &x);

            ngx_ai_relay_xm_find(b, &fn, "description", &x);
            if (x.type == NGX_AI_RELAY_JSON_STRING) {
                ngx_ai_relay_jw_lit(w, ",\"description\":");
                ngx_ai_relay_xm_raw(w, b, &x);
            }

            ngx_ai_relay_jw_lit(w, ",\"input_schema\":");
            ngx_ai_relay_xm_find(b, &fn, "parameters", &x);

            if (x.type == NGX_AI_RELAY_JSON_OBJECT) {
                ngx_ai_relay_xm_raw(w, b, &x);

            } else {
                ngx_ai_relay_jw_lit(w, "{\"type\":\"object\","
                                    "\"properties\":{}}");
            }

            ngx_ai_relay_jw_lit(w, "}");
        }

        ngx_ai_relay_jw_lit(w, "]");

    } else if (!ngx_ai_relay_xm_null(&m)) {
        return ngx_ai_relay_xlate_fail(rq, "tools must be an array");
    }

    m = ngx_ai_relay_top("tool_choice");
    x = ngx_ai_relay_top("parallel_tool_calls");
    flag = (x.type == NGX_AI_RELAY_JSON_FALSE);

    if (!ngx_ai_relay_xm_null(&m) || flag) {
        ngx_ai_relay_jw_lit(w, ",\"tool_choice\":{\"type\":");

        if (ngx_ai_relay_xm_null(&m) || ngx_ai_relay_xm_is(b, &m, "auto")) {
            ngx_ai_relay_jw_lit(w, "\"auto\"");

        } else if (ngx_ai_relay_xm_is(b, &m, "none")) {
            ngx_ai_relay_jw_lit(w, "\"none\"");

        } else if (ngx_ai_relay_xm_is(b, &m, "required")) {
            ngx_ai_relay_jw_lit(w, "\"any\"");

        } else {
            ngx_ai_relay_xm_find(b, &m, "function", &fn);
            ngx_ai_relay_xm_find(b, &fn, "name", &x);

            if (x.type != NGX_AI_RELAY_JSON_STRING) {
                return ngx_ai_relay_xlate_fail(rq, "tool_choice must be "
                                               "auto, none, required or a "
                                               "function");
            }

            ngx_ai_relay_jw_lit(w, "\"tool\",\"name\":");
            ngx_ai_relay_xm_raw(w, b, &x);
        }

        if (flag && !ngx_ai_relay_xm_is(b, &m, "none")) {
            ngx_ai_relay_jw_lit(w, ",\"disable_parallel_tool_use\":true");
        }

        ngx_ai_relay_jw_lit(w, "}");
    }

    ngx_ai_relay_jw_lit(w, "}");

#undef ngx_ai_relay_top

    return NGX_AI_RELAY_XLATE_OK;
}


/* ------------------------------------------- Anthropic -> OpenAI, request */

/* text blocks (or a string) as an OpenAI content value */

static int
ngx_ai_relay_a2o_text(ngx_ai_relay_xlate_req_t *rq, ngx_ai_relay_jw_t *w,
    const ngx_ai_relay_xm_t *content)
{
    int                 n;
    size_t              pos;
    const u_char       *b;
    ngx_ai_relay_xm_t   blk, type, text;

    b = rq->body;

    if (content->type == NGX_AI_RELAY_JSON_STRING) {
        ngx_ai_relay_xm_raw(w, b, content);
        return NGX_AI_RELAY_XLATE_OK;
    }

    if (content->type != NGX_AI_RELAY_JSON_ARRAY) {
        return ngx_ai_relay_xlate_fail(rq, "content must be a string or an "
                                       "array of content blocks");
    }

    ngx_ai_relay_jw_lit(w, "[");
    pos = 0;
    n = 0;

    while (ngx_ai_relay_json_array_next(b, content, &pos, &blk)) {
        ngx_ai_relay_xm_find(b, &blk, "type", &type);
        ngx_ai_relay_xm_find(b, &blk, "text", &text);

        if (!ngx_ai_relay_xm_is(b, &type, "text")
            || text.type != NGX_AI_RELAY_JSON_STRING)
        {
            return ngx_ai_relay_xlate_fail(rq, "only text blocks can be "
                                           "sent here to this model's "
                                           "channel (OpenAI)");
        }

        ngx_ai_relay_jw_raw(w, n ? "," : "", n ? 1 : 0);
        n++;
        ngx_ai_relay_jw_lit(w, "{\"type\":\"text\",\"text\":");
        ngx_ai_relay_xm_raw(w, b, &text);
        ngx_ai_relay_jw_lit(w, "}");
    }

    ngx_ai_relay_jw_lit(w, "]");

    return NGX_AI_RELAY_XLATE_OK;
}


static const char  *ngx_ai_relay_a2o_ignored[] = {
    "model", "messages", "max_tokens", "system", "stream", "temperature",
    "top_p", "stop_sequences", "tools", "tool_choice", "metadata",
    "thinking", "service_tier", "top_k", NULL
};


static int
ngx_ai_relay_a2o_request(ngx_ai_relay_xlate_req_t *rq, ngx_ai_relay_jw_t *w)
{
    int                               rc, n, parts, calls;
    size_t                            i, pos, bpos;
    int64_t                           v;
    const char                      **k;
    const u_char                     *b;
    ngx_ai_relay_xm_t                 msg, role, content, blk, type, m, t,
                                      x, src;
    const ngx_ai_relay_xm_t          *top;
    const ngx_ai_relay_json_scan_t   *scan;

#define ngx_ai_relay_top(name)                                                \
    ((top = ngx_ai_relay_json_find(scan, b, name, sizeof(name) - 1))         \
     ? *top : (memset(&x, 0, sizeof(x)), x))

    b = rq->body;
    scan = rq->scan;

    for (i = 0; i < scan->nmembers; i++) {
        for (k = ngx_ai_relay_a2o_ignored; *k; k++) {
            if (ngx_ai_relay_xm_key_is(b, &scan->members[i], *k)) {
                break;
            }
        }

        if (*k == NULL) {
            return ngx_ai_relay_xlate_fail(rq, "the parameter %.*s cannot be "
                                   "sent to this model's channel (OpenAI)",
                                   (int) (scan->members[i].key_end
                                          - scan->members[i].key_start),
                                   b + scan->members[i].key_start);
        }
    }

    m = ngx_ai_relay_top("top_k");
    if (!ngx_ai_relay_xm_null(&m)) {
        return ngx_ai_relay_xlate_fail(rq, "top_k cannot be sent to this "
                                       "model's channel (OpenAI)");
    }

    ngx_ai_relay_jw_lit(w, "{\"model\":");
    ngx_ai_relay_jw_str(w, rq->model, rq->model_len);
    ngx_ai_relay_jw_lit(w, ",\"messages\":[");

    n = 0;

    m = ngx_ai_relay_top("system");
    if (!ngx_ai_relay_xm_null(&m)) {
        ngx_ai_relay_jw_lit(w, "{\"role\":\"system\",\"content\":");

        rc = ngx_ai_relay_a2o_text(rq, w, &m);
        if (rc != NGX_AI_RELAY_XLATE_OK) {
            return rc;
        }

        ngx_ai_relay_jw_lit(w, "}");
        n++;
    }

    m = ngx_ai_relay_top("messages");
    if (m.type != NGX_AI_RELAY_JSON_ARRAY) {
        return ngx_ai_relay_xlate_fail(rq, "messages: Input should be a "
                                       "valid list");
    }

    pos = 0;

    while (ngx_ai_relay_json_array_next(b, &m, &pos, &msg)) {
        ngx_ai_relay_xm_find(b, &msg, "role", &role);
        ngx_ai_relay_xm_find(b, &msg, "content", &content);

        if (!ngx_ai_relay_xm_is(b, &role, "user")
            && !ngx_ai_relay_xm_is(b, &role, "assistant"))
        {
            return ngx_ai_relay_xlate_fail(rq, "messages: role must be user "
                                           "or assistant");
        }

        if (content.type == NGX_AI_RELAY_JSON_STRING) {
            ngx_ai_relay_jw_raw(w, n ? "," : "", n ? 1 : 0);
            n++;
            ngx_ai_relay_jw_lit(w, "{\"role\":");
            ngx_ai_relay_xm_raw(w, b, &role);
            ngx_ai_relay_jw_lit(w, ",\"content\":");
            ngx_ai_relay_xm_raw(w, b, &content);
            ngx_ai_relay_jw_lit(w, "}");
            continue;
        }

        if (content.type != NGX_AI_RELAY_JSON_ARRAY) {
            return ngx_ai_relay_xlate_fail(rq, "messages: content must be a "
                                           "string or an array");
        }

        if (ngx_ai_relay_xm_is(b, &role, "user")) {

            /* tool results first, each a "tool" message */

            bpos = 0;

            while (ngx_ai_relay_json_array_next(b, &content, &bpos, &blk)) {
                ngx_ai_relay_xm_find(b, &blk, "type", &type);

                if (!ngx_ai_relay_xm_is(b, &type, "tool_result")) {
                    continue;
                }

                ngx_ai_relay_xm_find(b, &blk, "tool_use_id", &t);

                if (t.type != NGX_AI_RELAY_JSON_STRING) {
                    return ngx_ai_relay_xlate_fail(rq, "a tool_result needs "
                                                   "a tool_use_id");
                }

                ngx_ai_relay_jw_raw(w, n ? "," : "", n ? 1 : 0);
                n++;
                ngx_ai_relay_jw_lit(w, "{\"role\":\"tool\","
                                    "\"tool_call_id\":");
                ngx_ai_relay_xm_raw(w, b, &t);
                ngx_ai_relay_jw_lit(w, ",\"content\":");

                ngx_ai_relay_xm_find(b, &blk, "content", &x);

                if (ngx_ai_relay_xm_null(&x)) {
                    ngx_ai_relay_jw_lit(w, "\"\"");

                } else {
                    rc = ngx_ai_relay_a2o_text(rq, w, &x);
                    if (rc != NGX_AI_RELAY_XLATE_OK) {
                        return rc;
                    }
                }

                ngx_ai_relay_jw_lit(w, "}");
            }

            /* then the rest, as one user message */

            bpos = 0;
            parts = 0;

            while (ngx_ai_relay_json_array_next(b, &content, &bpos, &blk)) {
                ngx_ai_relay_xm_find(b, &blk, "type", &type);

                if (ngx_ai_relay_xm_is(b, &type, "tool_result")) {
                    continue;
                }

                if (parts == 0) {
                    ngx_ai_relay_jw_raw(w, n ? "," : "", n ? 1 : 0);
                    n++;
                    ngx_ai_relay_jw_lit(w, "{\"role\":\"user\","
                                        "\"content\":[");

                } else {
                    ngx_ai_relay_jw_lit(w, ",");
                }

                parts++;

                if (ngx_ai_relay_xm_is(b, &type, "text")) {
                    ngx_ai_relay_xm_find(b, &blk, "text", &t);

                    if (t.type != NGX_AI_RELAY_JSON_STRING) {
                        return ngx_ai_relay_xlate_fail(rq, "a text block "
                                                       "needs a text");
                    }

                    ngx_ai_relay_jw_lit(w, "{\"type\":\"text\",\"text\":");
                    ngx_ai_relay_xm_raw(w, b, &t);
                    ngx_ai_relay_jw_lit(w, "}");
                    continue;
                }

                if (ngx_ai_relay_xm_is(b, &type, "image")) {
                    ngx_ai_relay_xm_find(b, &blk, "source", &src);
                    ngx_ai_relay_xm_find(b, &src, "type", &t);

                    ngx_ai_relay_jw_lit(w, "{\"type\":\"image_url\","
                                        "\"image_url\":{\"url\":");

                    if (ngx_ai_relay_xm_is(b, &t, "url")) {
                        ngx_ai_relay_xm_find(b, &src, "url", &x);

                        if (x.type != NGX_AI_RELAY_JSON_STRING) {
                            return ngx_ai_relay_xlate_fail(rq, "an image "
                                                   "source needs a url");
                        }

                        ngx_ai_relay_xm_raw(w, b, &x);

                    } else if (ngx_ai_relay_xm_is(b, &t, "base64")) {
                        ngx_ai_relay_xm_find(b, &src, "media_type", &x);
                        ngx_ai_relay_xm_find(b, &src, "data", &type);

                        if (x.type != NGX_AI_RELAY_JSON_STRING
                            || type.type != NGX_AI_RELAY_JSON_STRING)
                        {
                            return ngx_ai_relay_xlate_fail(rq, "an image "
                                           "source needs media_type and "
                                           "data");
                        }

                        /* both are JSON strings: join their text */

                        ngx_ai_relay_jw_lit(w, "\"data:");
                        ngx_ai_relay_jw_raw(w, b + x.value_start + 1,
                                            x.value_end - x.value_start - 2);
                        ngx_ai_relay_jw_lit(w, ";base64,");
                        ngx_ai_relay_jw_raw(w, b + type.value_start + 1,
                                            type.value_end - type.value_start
                                            - 2);
                        ngx_ai_relay_jw_lit(w, "\"");

                    } else {
                        return ngx_ai_relay_xlate_fail(rq, "image sources "
                                       "other than url and base64 cannot be "
                                       "sent to this model's channel "
                                       "(OpenAI)");
                    }

                    ngx_ai_relay_jw_lit(w, "}}");
                    continue;
                }

                return ngx_ai_relay_xlate_fail(rq, "content blocks of type "
                                       "%.*s cannot be sent to this model's "
                                       "channel (OpenAI)",
                                       (int) (type.value_end
                                              - type.value_start),
                                       b + type.value_start);
            }

            if (parts) {
                ngx_ai_relay_jw_lit(w, "]}");
            }

            continue;
        }

        /* assistant: text and tool_use; thinking is the model's own */

        ngx_ai_relay_jw_raw(w, n ? "," : "", n ? 1 : 0);
        n++;
        ngx_ai_relay_jw_lit(w, "{\"role\":\"assistant\",\"content\":");

        parts = 0;
        bpos = 0;

        while (ngx_ai_relay_json_array_next(b, &content, &bpos, &blk)) {
            ngx_ai_relay_xm_find(b, &blk, "type", &type);

            if (!ngx_ai_relay_xm_is(b, &type, "text")) {
                continue;
            }

            ngx_ai_relay_xm_find(b, &blk, "text", &t);

            if (t.type != NGX_AI_RELAY_JSON_STRING) {
                return ngx_ai_relay_xlate_fail(rq, "a text block needs a "
                                               "text");
            }

            ngx_ai_relay_jw_raw(w, "\"", parts ? 0 : 1);
            ngx_ai_relay_jw_raw(w, b + t.value_start + 1,
                                t.value_end - t.value_start - 2);
            parts++;
        }

        if (parts) {
            ngx_ai_relay_jw_lit(w, "\"");

        } else {
            ngx_ai_relay_jw_lit(w, "null");
        }

        calls = 0;
        bpos = 0;

        while (ngx_ai_relay_json_array_next(b, &content, &bpos, &blk)) {
            ngx_ai_relay_xm_find(b, &blk, "type", &type);

            if (ngx_ai_relay_xm_is(b, &type, "text")
                || ngx_ai_relay_xm_is(b, &type, "thinking")
                || ngx_ai_relay_xm_is(b, &type, "redacted_thinking"))
            {
                continue;
            }

            if (!ngx_ai_relay_xm_is(b, &type, "tool_use")) {
                return ngx_ai_relay_xlate_fail(rq, "assistant content blocks "
                                       "of type %.*s cannot be sent to this "
                                       "model's channel (OpenAI)",
                                       (int) (type.value_end
                                              - type.value_start),
                                       b + type.value_start);
            }

            ngx_ai_relay_xm_find(b, &blk, "id", &t);
            ngx_ai_relay_xm_find(b, &blk, "name", &x);
            ngx_ai_relay_xm_find(b, &blk, "input", &src);

            if (t.type != NGX_AI_RELAY_JSON_STRING
                || x.type != NGX_AI_RELAY_JSON_STRING)
            {
                return ngx_ai_relay_xlate_fail(rq, "a tool_use block needs "
                                               "an id and a name");
            }

            if (calls) {
                ngx_ai_relay_jw_lit(w, ",");

            } else {
                ngx_ai_relay_jw_lit(w, ",\"tool_calls\":[");
            }
            calls++;

            ngx_ai_relay_jw_lit(w, "{\"id\":");
            ngx_ai_relay_xm_raw(w, b, &t);
            ngx_ai_relay_jw_lit(w, ",\"type\":\"function\",\"function\":"
                                "{\"name\":");
            ngx_ai_relay_xm_raw(w, b, &x);
            ngx_ai_relay_jw_lit(w, ",\"arguments\":");

            if (src.type == NGX_AI_RELAY_JSON_NONE) {
                ngx_ai_relay_jw_lit(w, "\"{}\"");

            } else {
                ngx_ai_relay_jw_str(w, b + src.value_start,
                                    src.value_end - src.value_start);
            }

            ngx_ai_relay_jw_lit(w, "}}");
        }

        if (calls) {
            ngx_ai_relay_jw_lit(w, "]");
        }

        ngx_ai_relay_jw_lit(w, "}");
    }

    ngx_ai_relay_jw_lit(w, "]");

    /*
     * with thinking the target is a reasoning model: OpenAI's refuse
     * max_tokens for max_completion_tokens (reasoning included in it)
     */

    m = ngx_ai_relay_top("thinking");
    ngx_ai_relay_xm_find(b, &m, "type", &t);

    if (ngx_ai_relay_json_get_int(scan, b, "max_tokens", 10, &v)
        == NGX_AI_RELAY_JSON_GET_OK)
    {
        if (ngx_ai_relay_xm_is(b, &t, "enabled")) {
            ngx_ai_relay_jw_lit(w, ",\"max_completion_tokens\":");

        } else {
            ngx_ai_relay_jw_lit(w, ",\"max_tokens\":");
        }

        ngx_ai_relay_jw_int(w, v);
        rq->max_out = v;

    } else {
        return ngx_ai_relay_xlate_fail(rq, "max_tokens: Field required");
    }

    m = ngx_ai_relay_top("temperature");
    if (!ngx_ai_relay_xm_null(&m)) {
        ngx_ai_relay_jw_lit(w, ",\"temperature\":");
        ngx_ai_relay_xm_raw(w, b, &m);
    }

    m = ngx_ai_relay_top("top_p");
    if (!ngx_ai_relay_xm_null(&m)) {
        ngx_ai_relay_jw_lit(w, ",\"top_p\":");
        ngx_ai_relay_xm_raw(w, b, &m);
    }

    m = ngx_ai_relay_top("stop_sequences");
    if (m.type == NGX_AI_RELAY_JSON_ARRAY && !ngx_ai_relay_xm_zero(b, &m)) {
        ngx_ai_relay_jw_lit(w, ",\"stop\":");
        ngx_ai_relay_xm_raw(w, b, &m);
    }

    m = ngx_ai_relay_top("thinking");
    ngx_ai_relay_xm_find(b, &m, "type", &t);

    if (ngx_ai_relay_xm_is(b, &t, "enabled")) {
        ngx_ai_relay_xm_find(b, &m, "budget_tokens", &x);

        if (ngx_ai_relay_json_member_int(b, &x, &v)
            != NGX_AI_RELAY_JSON_GET_OK)
        {
            return ngx_ai_relay_xlate_fail(rq, "thinking.budget_tokens: "
                                           "Field required");
        }

        ngx_ai_relay_jw_lit(w, ",\"reasoning_effort\":");

        if (v < NGX_AI_RELAY_XLATE_BUDGET_MEDIUM) {
            ngx_ai_relay_jw_lit(w, "\"low\"");

        } else if (v < NGX_AI_RELAY_XLATE_BUDGET_HIGH) {
            ngx_ai_relay_jw_lit(w, "\"medium\"");

        } else {
            ngx_ai_relay_jw_lit(w, "\"high\"");
        }
    }

    m = ngx_ai_relay_top("stream");
    if (m.type == NGX_AI_RELAY_JSON_TRUE) {
        rq->stream = 1;
        ngx_ai_relay_jw_lit(w, ",\"stream\":true,\"stream_options\":"
                            "{\"include_usage\":true}");
    }

    m = ngx_ai_relay_top("metadata");
    ngx_ai_relay_xm_find(b, &m, "user_id", &t);
    if (t.type == NGX_AI_RELAY_JSON_STRING) {
        ngx_ai_relay_jw_lit(w, ",\"user\":");
        ngx_ai_relay_xm_raw(w, b, &t);
    }

    m = ngx_ai_relay_top("tools");
    if (m.type == NGX_AI_RELAY_JSON_ARRAY) {
        ngx_ai_relay_jw_lit(w, ",\"tools\":[");
        pos = 0;
        n = 0;

        while (ngx_ai_relay_json_array_next(b, &m, &pos, &blk)) {
            ngx_ai_relay_xm_find(b, &blk, "type", &type);
            ngx_ai_relay_xm_find(b, &blk, "name", &x);
            ngx_ai_relay_xm_find(b, &blk, "input_schema", &src);

            if ((type.type != NGX_AI_RELAY_JSON_NONE
                 && !ngx_ai_relay_xm_is(b, &type, "custom"))
                || x.type != NGX_AI_RELAY_JSON_STRING)
            {
                return ngx_ai_relay_xlate_fail(rq, "only custom tools (name, "
                                       "description, input_schema) can be "
                                       "sent to this model's channel "
                                       "(OpenAI)");
            }

            ngx_ai_relay_jw_raw(w, n ? "," : "", n ? 1 : 0);
            n++;

            ngx_ai_relay_jw_lit(w, "{\"type\":\"function\",\"function\":"
                                "{\"name\":");
            ngx_ai_relay_xm_raw(w, b, &x);

            ngx_ai_relay_xm_find(b, &blk, "description", &x);
            if (x.type == NGX_AI_RELAY_JSON_STRING) {
                ngx_ai_relay_jw_lit(w, ",\"description\":");
                ngx_ai_relay_xm_raw(w, b, &x);
            }

            if (src.type == NGX_AI_RELAY_JSON_OBJECT) {
                ngx_ai_relay_jw_lit(w, ",\"parameters\":");
                ngx_ai_relay_xm_raw(w, b, &src);
            }

            ngx_ai_relay_jw_lit(w, "}}");
        }

        ngx_ai_relay_jw_lit(w, "]");
    }

    m = ngx_ai_relay_top("tool_choice");
    if (m.type == NGX_AI_RELAY_JSON_OBJECT) {
        ngx_ai_relay_xm_find(b, &m, "type", &t);
        ngx_ai_relay_jw_lit(w, ",\"tool_choice\":");

        if (ngx_ai_relay_xm_is(b, &t, "auto")) {
            ngx_ai_relay_jw_lit(w, "\"auto\"");

        } else if (ngx_ai_relay_xm_is(b, &t, "any")) {
            ngx_ai_relay_jw_lit(w, "\"required\"");

        } else if (ngx_ai_relay_xm_is(b, &t, "none")) {
            ngx_ai_relay_jw_lit(w, "\"none\"");

        } else if (ngx_ai_relay_xm_is(b, &t, "tool")) {
            ngx_ai_relay_xm_find(b, &m, "name", &x);

            if (x.type != NGX_AI_RELAY_JSON_STRING) {
                return ngx_ai_relay_xlate_fail(rq, "tool_choice.name: Field "
                                               "required");
            }

            ngx_ai_relay_jw_lit(w, "{\"type\":\"function\",\"function\":"
                                "{\"name\":");
            ngx_ai_relay_xm_raw(w, b, &x);
            ngx_ai_relay_jw_lit(w, "}}");

        } else {
            return ngx_ai_relay_xlate_fail(rq, "tool_choice.type must be "
                                           "auto, any, tool or none");
        }

        ngx_ai_relay_xm_find(b, &m, "disable_parallel_tool_use", &x);
        if (x.type == NGX_AI_RELAY_JSON_TRUE) {
            ngx_ai_relay_jw_lit(w, ",\"parallel_tool_calls\":false");
        }
    }

    ngx_ai_relay_jw_lit(w, "}");

#undef ngx_ai_relay_top

    return NGX_AI_RELAY_XLATE_OK;
}


/* ------------------------------------------------------ whole answers */

static int
ngx_ai_relay_xlate_scan(const u_char *body, size_t len,
    ngx_ai_relay_json_scan_t *scan, ngx_ai_relay_xm_t *members)
{
    ngx_ai_relay_json_scan_init(scan, members, NGX_AI_RELAY_XLATE_MEMBERS);

    return ngx_ai_relay_json_scan(scan, body, len) == NGX_AI_RELAY_JSON_OK
           ? 0 : -1;
}


int
ngx_ai_relay_xlate_response(ngx_ai_relay_format_e from,
    ngx_ai_relay_format_e to, const u_char *body, size_t len,
    int64_t created, ngx_ai_relay_jw_t *out)
{
    int                rc;
    ngx_ai_relay_jw_t  mid;

    if (!ngx_ai_relay_xlate_chained(from, to)) {
        return ngx_ai_relay_xlate_response_one(from, to, body, len, created,
                                               out);
    }

    ngx_ai_relay_jw_init(&mid, out->alloc, out->data);

    rc = ngx_ai_relay_xlate_response_one(from, NGX_AI_RELAY_FMT_OPENAI_CHAT,
                                         body, len, created, &mid);
    if (rc != NGX_AI_RELAY_XLATE_OK) {
        return rc;
    }

    return ngx_ai_relay_xlate_response_one(NGX_AI_RELAY_FMT_OPENAI_CHAT, to,
                                           mid.buf, mid.len, created, out);
}


static int
ngx_ai_relay_xlate_response_one(ngx_ai_relay_format_e from,
    ngx_ai_relay_format_e to, const u_char *body, size_t len,
    int64_t created, ngx_ai_relay_jw_t *out)
{
    int                       rc;
    ngx_ai_relay_xm_t         members[NGX_AI_RELAY_XLATE_MEMBERS];
    ngx_ai_relay_json_scan_t  scan;

    if (ngx_ai_relay_xlate_scan(body, len, &scan, members) != 0) {
        return NGX_AI_RELAY_XLATE_ERROR;
    }

    if (from == NGX_AI_RELAY_FMT_ANTHROPIC_MESSAGES
        && to == NGX_AI_RELAY_FMT_OPENAI_CHAT)
    {
        rc = ngx_ai_relay_a2o_response(body, &scan, created, out);

    } else if (from == NGX_AI_RELAY_FMT_OPENAI_CHAT
               && to == NGX_AI_RELAY_FMT_ANTHROPIC_MESSAGES)
    {
        rc = ngx_ai_relay_o2a_response(body, &scan, out);

    } else if (from == NGX_AI_RELAY_FMT_GEMINI
               && to == NGX_AI_RELAY_FMT_OPENAI_CHAT)
    {
        rc = ngx_ai_relay_g2o_response(body, &scan, created, out);

    } else if (from == NGX_AI_RELAY_FMT_OPENAI_CHAT
               && to == NGX_AI_RELAY_FMT_GEMINI)
    {
        rc = ngx_ai_relay_o2g_response(body, &scan, out);

    } else {
        return NGX_AI_RELAY_XLATE_ERROR;
    }

    return (rc == NGX_AI_RELAY_XLATE_OK && out->failed)
           ? NGX_AI_RELAY_XLATE_ERROR : rc;
}


/* Anthropic's stop_reason as OpenAI's finish_reason */

const char *
ngx_ai_relay_xlate_finish_reason(const u_char *p, size_t len)
{
#define ngx_ai_relay_eq(s)                                                    \
    (len == sizeof(s) - 1 && memcmp(p, s, len) == 0)

    if (ngx_ai_relay_eq("max_tokens")
        || ngx_ai_relay_eq("model_context_window_exceeded"))
    {
        return "length";
    }

    if (ngx_ai_relay_eq("tool_use")) {
        return "tool_calls";
    }

    if (ngx_ai_relay_eq("refusal")) {
        return "content_filter";
    }

    return "stop";

#undef ngx_ai_relay_eq
}


/* OpenAI's finish_reason as Anthropic's stop_reason */

const char *
ngx_ai_relay_xlate_stop_reason(const u_char *p, size_t len)
{
#define ngx_ai_relay_eq(s)                                                    \
    (len == sizeof(s) - 1 && memcmp(p, s, len) == 0)

    if (ngx_ai_relay_eq("length")) {
        return "max_tokens";
    }

    if (ngx_ai_relay_eq("tool_calls") || ngx_ai_relay_eq("function_call")) {
        return "tool_use";
    }

    if (ngx_ai_relay_eq("content_filter")) {
        return "refusal";
    }

    return "end_turn";

#undef ngx_ai_relay_eq
}


/* OpenAI's usage object from Anthropic's counters */

void
ngx_ai_relay_xlate_openai_usage(ngx_ai_relay_jw_t *w, int64_t input,
    int64_t output, int64_t cache_read, int64_t cache_write)
{
    int64_t  prompt;

    prompt = input + cache_read + cache_write;

    ngx_ai_relay_jw_lit(w, "{\"prompt_tokens\":");
    ngx_ai_relay_jw_int(w, prompt);
    ngx_ai_relay_jw_lit(w, ",\"completion_tokens\":");
    ngx_ai_relay_jw_int(w, output);
    ngx_ai_relay_jw_lit(w, ",\"total_tokens\":");
    ngx_ai_relay_jw_int(w, prompt + output);
    ngx_ai_relay_jw_lit(w, ",\"prompt_tokens_details\":{\"cached_tokens\":");
    ngx_ai_relay_jw_int(w, cache_read);
    ngx_ai_relay_jw_lit(w, "}}");
}


static int64_t
ngx_ai_relay_xm_int(const u_char *b, const ngx_ai_relay_xm_t *obj,
    const char *name)
{
    int64_t            v;
    ngx_ai_relay_xm_t  m;

    ngx_ai_relay_xm_find(b, obj, name, &m);

    if (ngx_ai_relay_json_member_int(b, &m, &v) != NGX_AI_RELAY_JSON_GET_OK
        || v < 0)
    {
        return 0;
    }

    return v;
}


static int
ngx_ai_relay_a2o_response(const u_char *b, ngx_ai_relay_json_scan_t *scan,
    int64_t created, ngx_ai_relay_jw_t *w)
{
    int                 n, calls, thinking;
    size_t              pos;
    const char         *finish;
    ngx_ai_relay_xm_t   blk, type, t, x, in;
    ngx_ai_relay_xm_t  *id, *model, *content, *stop, *usage;

    id = ngx_ai_relay_json_find(scan, b, "id", 2);
    model = ngx_ai_relay_json_find(scan, b, "model", 5);
    content = ngx_ai_relay_json_find(scan, b, "content", 7);
    stop = ngx_ai_relay_json_find(scan, b, "stop_reason", 11);
    usage = ngx_ai_relay_json_find(scan, b, "usage", 5);

    if (content == NULL || content->type != NGX_AI_RELAY_JSON_ARRAY) {
        return NGX_AI_RELAY_XLATE_ERROR;
    }

    ngx_ai_relay_jw_lit(w, "{\"id\":");

    if (id && id->type == NGX_AI_RELAY_JSON_STRING) {
        ngx_ai_relay_xm_raw(w, b, id);

    } else {
        ngx_ai_relay_jw_lit(w, "\"chatcmpl-relay\"");
    }

    ngx_ai_relay_jw_lit(w, ",\"object\":\"chat.completion\",\"created\":");
    ngx_ai_relay_jw_int(w, created);
    ngx_ai_relay_jw_lit(w, ",\"model\":");

    if (model && model->type == NGX_AI_RELAY_JSON_STRING) {
        ngx_ai_relay_xm_raw(w, b, model);

    } else {
        ngx_ai_relay_jw_lit(w, "\"\"");
    }

    ngx_ai_relay_jw_lit(w, ",\"choices\":[{\"index\":0,\"message\":"
                        "{\"role\":\"assistant\",\"content\":");

    /* the text blocks, joined */

    n = 0;
    thinking = 0;
    pos = 0;

    while (ngx_ai_relay_json_array_next(b, content, &pos, &blk)) {
        ngx_ai_relay_xm_find(b, &blk, "type", &type);

        if (ngx_ai_relay_xm_is(b, &type, "thinking")) {
            thinking = 1;
        }

        if (!ngx_ai_relay_xm_is(b, &type, "text")) {
            continue;
        }

        ngx_ai_relay_xm_find(b, &blk, "text", &t);

        if (t.type != NGX_AI_RELAY_JSON_STRING) {
            continue;
        }

        ngx_ai_relay_jw_raw(w, "\"", n ? 0 : 1);
        ngx_ai_relay_jw_raw(w, b + t.value_start + 1,
                            t.value_end - t.value_start - 2);
        n++;
    }

    if (n) {
        ngx_ai_relay_jw_lit(w, "\"");

    } else {
        ngx_ai_relay_jw_lit(w, "null");
    }

    /* thinking, as DeepSeek and others name it */

    if (thinking) {
        ngx_ai_relay_jw_lit(w, ",\"reasoning_content\":\"");
        pos = 0;

        while (ngx_ai_relay_json_array_next(b, content, &pos, &blk)) {
            ngx_ai_relay_xm_find(b, &blk, "type", &type);
            ngx_ai_relay_xm_find(b, &blk, "thinking", &t);

            if (ngx_ai_relay_xm_is(b, &type, "thinking")
                && t.type == NGX_AI_RELAY_JSON_STRING)
            {
                ngx_ai_relay_jw_raw(w, b + t.value_start + 1,
                                    t.value_end - t.value_start - 2);
            }
        }

        ngx_ai_relay_jw_lit(w, "\"");
    }

    calls = 0;
    pos = 0;

    while (ngx_ai_relay_json_array_next(b, content, &pos, &blk)) {
        ngx_ai_relay_xm_find(b, &blk, "type", &type);

        if (!ngx_ai_relay_xm_is(b, &type, "tool_use")) {
            continue;
        }

        ngx_ai_relay_xm_find(b, &blk, "id", &t);
        ngx_ai_relay_xm_find(b, &blk, "name", &x);
        ngx_ai_relay_xm_find(b, &blk, "input", &in);

        if (t.type != NGX_AI_RELAY_JSON_STRING
            || x.type != NGX_AI_RELAY_JSON_STRING)
        {
            /* not an answer Anthropic gives */
            return NGX_AI_RELAY_XLATE_ERROR;
        }

        if (calls) {
            ngx_ai_relay_jw_lit(w, ",");

        } else {
            ngx_ai_relay_jw_lit(w, ",\"tool_calls\":[");
        }

        calls++;

        ngx_ai_relay_jw_lit(w, "{\"id\":");
        ngx_ai_relay_xm_raw(w, b, &t);
        ngx_ai_relay_jw_lit(w, ",\"type\":\"function\",\"function\":"
                            "{\"name\":");
        ngx_ai_relay_xm_raw(w, b, &x);
        ngx_ai_relay_jw_lit(w, ",\"arguments\":");

        if (in.type == NGX_AI_RELAY_JSON_NONE) {
            ngx_ai_relay_jw_lit(w, "\"{}\"");

        } else {
            ngx_ai_relay_jw_str(w, b + in.value_start,
                                in.value_end - in.value_start);
        }

        ngx_ai_relay_jw_lit(w, "}}");
    }

    if (calls) {
        ngx_ai_relay_jw_lit(w, "]");
    }

    ngx_ai_relay_jw_lit(w, "},\"finish_reason\":");

    if (stop && stop->type == NGX_AI_RELAY_JSON_STRING) {
        finish = ngx_ai_relay_xlate_finish_reason(b + stop->value_start + 1,
                                                  stop->value_end
                                                  - stop->value_start - 2);
        ngx_ai_relay_jw_raw(w, "\"", 1);
        ngx_ai_relay_jw_raw(w, finish, strlen(finish));
        ngx_ai_relay_jw_raw(w, "\"", 1);

    } else {
        ngx_ai_relay_jw_lit(w, "null");
    }

    ngx_ai_relay_jw_lit(w, "}],\"usage\":");

    ngx_ai_relay_xlate_openai_usage(w,
        ngx_ai_relay_xm_int(b, usage, "input_tokens"),
        ngx_ai_relay_xm_int(b, usage, "output_tokens"),
        ngx_ai_relay_xm_int(b, usage, "cache_read_input_tokens"),
        ngx_ai_relay_xm_int(b, usage, "cache_creation_input_tokens"));

    ngx_ai_relay_jw_lit(w, "}");

    return NGX_AI_RELAY_XLATE_OK;
}


/* Anthropic's usage object from OpenAI's */

void
ngx_ai_relay_xlate_anthropic_usage(ngx_ai_relay_jw_t *w, int64_t prompt,
    int64_t completion, int64_t cached)
{
    ngx_ai_relay_jw_lit(w, "{\"input_tokens\":");
    ngx_ai_relay_jw_int(w, prompt > cached ? prompt - cached : 0);
    ngx_ai_relay_jw_lit(w, ",\"cache_creation_input_tokens\":0,"
                        "\"cache_read_input_tokens\":");
    ngx_ai_relay_jw_int(w, cached);
    ngx_ai_relay_jw_lit(w, ",\"output_tokens\":");
    ngx_ai_relay_jw_int(w, completion);
    ngx_ai_relay_jw_lit(w, "}");
}


static int
ngx_ai_relay_o2a_response(const u_char *b, ngx_ai_relay_json_scan_t *scan,
    ngx_ai_relay_jw_t *w)
{
    int                 n;
    u_char             *args;
    size_t              pos, len;
    int64_t             cached;
    const char         *stop;
    ngx_ai_relay_xm_t   choice, msg, t, x, calls, tc, fn, a, details;
    ngx_ai_relay_xm_t  *id, *model, *choices, *usage;

    id = ngx_ai_relay_json_find(scan, b, "id", 2);
    model = ngx_ai_relay_json_find(scan, b, "model", 5);
    choices = ngx_ai_relay_json_find(scan, b, "choices", 7);
    usage = ngx_ai_relay_json_find(scan, b, "usage", 5);

    pos = 0;

    if (choices == NULL
        || !ngx_ai_relay_json_array_next(b, choices, &pos, &choice))
    {
        return NGX_AI_RELAY_XLATE_ERROR;
    }

    ngx_ai_relay_xm_find(b, &choice, "message", &msg);

    ngx_ai_relay_jw_lit(w, "{\"id\":");

    if (id && id->type == NGX_AI_RELAY_JSON_STRING) {
        ngx_ai_relay_xm_raw(w, b, id);

    } else {
        ngx_ai_relay_jw_lit(w, "\"msg_relay\"");
    }

    ngx_ai_relay_jw_lit(w, ",\"type\":\"message\",\"role\":\"assistant\","
                        "\"model\":");

    if (model && model->type == NGX_AI_RELAY_JSON_STRING) {
        ngx_ai_relay_xm_raw(w, b, model);

    } else {
        ngx_ai_relay_jw_lit(w, "\"\"");
    }

    ngx_ai_relay_jw_lit(w, ",\"content\":[");
    n = 0;

    ngx_ai_relay_xm_find(b, &msg, "reasoning_content", &t);
    if (t.type == NGX_AI_RELAY_JSON_STRING && !ngx_ai_relay_xm_zero(b, &t)) {
        ngx_ai_relay_jw_lit(w, "{\"type\":\"thinking\",\"thinking\":");
        ngx_ai_relay_xm_raw(w, b, &t);
        ngx_ai_relay_jw_lit(w, ",\"signature\":\"\"}");
        n++;
    }

    ngx_ai_relay_xm_find(b, &msg, "content", &t);
    if (t.type == NGX_AI_RELAY_JSON_STRING && !ngx_ai_relay_xm_zero(b, &t)) {
        ngx_ai_relay_jw_raw(w, n ? "," : "", n ? 1 : 0);
        ngx_ai_relay_jw_lit(w, "{\"type\":\"text\",\"text\":");
        ngx_ai_relay_xm_raw(w, b, &t);
        ngx_ai_relay_jw_lit(w, "}");
        n++;
    }

    ngx_ai_relay_xm_find(b, &msg, "tool_calls", &calls);

    if (calls.type == NGX_AI_RELAY_JSON_ARRAY) {
        pos = 0;

        while (ngx_ai_relay_json_array_next(b, &calls, &pos, &tc)) {
            ngx_ai_relay_xm_find(b, &tc, "id", &t);
            ngx_ai_relay_xm_find(b, &tc, "function", &fn);
            ngx_ai_relay_xm_find(b, &fn, "name", &x);
            ngx_ai_relay_xm_find(b, &fn, "arguments", &a);

            if (t.type != NGX_AI_RELAY_JSON_STRING
                || x.type != NGX_AI_RELAY_JSON_STRING)
            {
                continue;
            }

            ngx_ai_relay_jw_raw(w, n ? "," : "", n ? 1 : 0);
            n++;

            ngx_ai_relay_jw_lit(w, "{\"type\":\"tool_use\",\"id\":");
            ngx_ai_relay_xm_raw(w, b, &t);
            ngx_ai_relay_jw_lit(w, ",\"name\":");
            ngx_ai_relay_xm_raw(w, b, &x);
            ngx_ai_relay_jw_lit(w, ",\"input\":");

            args = NULL;
            len = 0;

            if (a.type == NGX_AI_RELAY_JSON_STRING) {
                args = ngx_ai_relay_xm_decode(w, b, &a, &len);
            }

            if (args && ngx_ai_relay_json_object_text(args, len)) {
                ngx_ai_relay_jw_raw(w, args, len);

            } else {
                ngx_ai_relay_jw_lit(w, "{}");
            }

            ngx_ai_relay_jw_lit(w, "}");
        }
    }

    ngx_ai_relay_jw_lit(w, "],\"stop_reason\":");

    ngx_ai_relay_xm_find(b, &choice, "finish_reason", &t);

    if (t.type == NGX_AI_RELAY_JSON_STRING) {
        stop = ngx_ai_relay_xlate_stop_reason(b + t.value_start + 1,
                                              t.value_end - t.value_start
                                              - 2);
        ngx_ai_relay_jw_raw(w, "\"", 1);
        ngx_ai_relay_jw_raw(w, stop, strlen(stop));
        ngx_ai_relay_jw_raw(w, "\"", 1);

    } else {
        ngx_ai_relay_jw_lit(w, "null");
    }

    ngx_ai_relay_jw_lit(w, ",\"stop_sequence\":null,\"usage\":");

    ngx_ai_relay_xm_find(b, usage, "prompt_tokens_details", &details);
    cached = ngx_ai_relay_xm_int(b, &details, "cached_tokens");

    if (cached == 0) {
        /* DeepSeek */
        cached = ngx_ai_relay_xm_int(b, usage, "prompt_cache_hit_tokens");
    }

    ngx_ai_relay_xlate_anthropic_usage(w,
        ngx_ai_relay_xm_int(b, usage, "prompt_tokens"),
        ngx_ai_relay_xm_int(b, usage, "completion_tokens"), cached);

    ngx_ai_relay_jw_lit(w, "}");

    return NGX_AI_RELAY_XLATE_OK;
}


/* ------------------------------------------------------------ errors */

static const char *
ngx_ai_relay_xlate_anthropic_type(unsigned status)
{
    switch (status) {
    case 400: return "invalid_request_error";
    case 401: return "authentication_error";
    case 402: return "billing_error";
    case 403: return "permission_error";
    case 404: return "not_found_error";
    case 413: return "request_too_large";
    case 429: return "rate_limit_error";
    case 529: return "overloaded_error";
    default:  return status >= 500 ? "api_error" : "invalid_request_error";
    }
}


static const char *
ngx_ai_relay_xlate_gemini_status(unsigned status)
{
    switch (status) {
    case 400: return "INVALID_ARGUMENT";
    case 401: return "UNAUTHENTICATED";
    case 403: return "PERMISSION_DENIED";
    case 404: return "NOT_FOUND";
    case 429: return "RESOURCE_EXHAUSTED";
    case 503: return "UNAVAILABLE";
    case 504: return "DEADLINE_EXCEEDED";
    default:  return status >= 500 ? "INTERNAL" : "INVALID_ARGUMENT";
    }
}


void
ngx_ai_relay_xlate_error(ngx_ai_relay_format_e from, ngx_ai_relay_format_e to,
    unsigned status, const u_char *body, size_t len, ngx_ai_relay_jw_t *out)
{
    const char                *type;
    ngx_ai_relay_xm_t          members[NGX_AI_RELAY_XLATE_MEMBERS], msg, t;
    ngx_ai_relay_xm_t         *err;
    ngx_ai_relay_json_scan_t   scan;

    memset(&msg, 0, sizeof(msg));
    memset(&t, 0, sizeof(t));

    if (ngx_ai_relay_xlate_scan(body, len, &scan, members) == 0) {
        err = ngx_ai_relay_json_find(&scan, body, "error", 5);

        if (err && err->type == NGX_AI_RELAY_JSON_OBJECT) {
            ngx_ai_relay_xm_find(body, err, "message", &msg);
            ngx_ai_relay_xm_find(body, err, "type", &t);

            if (t.type != NGX_AI_RELAY_JSON_STRING) {
                /* Gemini: "status" */
                ngx_ai_relay_xm_find(body, err, "status", &t);
            }

        } else if (err && err->type == NGX_AI_RELAY_JSON_STRING) {
            msg = *err;
        }
    }

    (void) from;

    if (to == NGX_AI_RELAY_FMT_GEMINI) {
        ngx_ai_relay_jw_lit(out, "{\"error\":{\"code\":");
        ngx_ai_relay_jw_int(out, status);
        ngx_ai_relay_jw_lit(out, ",\"message\":");

        if (msg.type == NGX_AI_RELAY_JSON_STRING) {
            ngx_ai_relay_xm_raw(out, body, &msg);

        } else {
            ngx_ai_relay_jw_lit(out, "\"The upstream answered with an "
                                "error.\"");
        }

        type = ngx_ai_relay_xlate_gemini_status(status);

        ngx_ai_relay_jw_lit(out, ",\"status\":\"");
        ngx_ai_relay_jw_raw(out, type, strlen(type));
        ngx_ai_relay_jw_lit(out, "\"}}");
        return;
    }

    if (to == NGX_AI_RELAY_FMT_ANTHROPIC_MESSAGES) {
        type = ngx_ai_relay_xlate_anthropic_type(status);

        ngx_ai_relay_jw_lit(out, "{\"type\":\"error\",\"error\":{\"type\":\"");
        ngx_ai_relay_jw_raw(out, type, strlen(type));
        ngx_ai_relay_jw_lit(out, "\",\"message\":");

    } else {
        ngx_ai_relay_jw_lit(out, "{\"error\":{\"type\":");

        if (t.type == NGX_AI_RELAY_JSON_STRING) {
            ngx_ai_relay_xm_raw(out, body, &t);

        } else {
            type = ngx_ai_relay_xlate_anthropic_type(status);
            ngx_ai_relay_jw_raw(out, "\"", 1);
            ngx_ai_relay_jw_raw(out, type, strlen(type));
            ngx_ai_relay_jw_raw(out, "\"", 1);
        }

        ngx_ai_relay_jw_lit(out, ",\"param\":null,\"code\":null,"
                            "\"message\":");
    }

    if (msg.type == NGX_AI_RELAY_JSON_STRING) {
        ngx_ai_relay_xm_raw(out, body, &msg);

    } else {
        ngx_ai_relay_jw_lit(out, "\"The upstream answered with an error.\"");
    }

    ngx_ai_relay_jw_lit(out, "}}");
}


/* ---------------------------------------------- OpenAI -> Gemini, request */

/* the name of the function a tool_call_id called, from the assistant */

static int
ngx_ai_relay_o2g_tool_name(const u_char *b, const ngx_ai_relay_xm_t *messages,
    const ngx_ai_relay_xm_t *id, ngx_ai_relay_xm_t *name)
{
    size_t             pos, tpos, n;
    ngx_ai_relay_xm_t  msg, calls, tc, tid, fn;

    n = id->value_end - id->value_start;
    pos = 0;

    while (ngx_ai_relay_json_array_next(b, messages, &pos, &msg)) {
        ngx_ai_relay_xm_find(b, &msg, "tool_calls", &calls);

        if (calls.type != NGX_AI_RELAY_JSON_ARRAY) {
            continue;
        }

        tpos = 0;

        while (ngx_ai_relay_json_array_next(b, &calls, &tpos, &tc)) {
            ngx_ai_relay_xm_find(b, &tc, "id", &tid);

            if (tid.value_end - tid.value_start == n
                && memcmp(b + tid.value_start, b + id->value_start, n) == 0)
            {
                ngx_ai_relay_xm_find(b, &tc, "function", &fn);

                return ngx_ai_relay_xm_find(b, &fn, "name", name)
                       && name->type == NGX_AI_RELAY_JSON_STRING;
            }
        }
    }

    return 0;
}


/*
 * The thoughtSignature a tool call id carries (see ngx_ai_relay_g2o_sig),
 * back in base64 as a member of the functionCall's part; nothing for ids
 * without one.
 */

static void
ngx_ai_relay_o2g_sig(ngx_ai_relay_jw_t *w, const u_char *b,
    const ngx_ai_relay_xm_t *id)
{
    u_char         c;
    size_t         sl;
    const u_char  *p, *s, *end;

    if (id->type != NGX_AI_RELAY_JSON_STRING) {
        return;
    }

    sl = sizeof(NGX_AI_RELAY_XLATE_SIG) - 1;
    p = b + id->value_start + 1;
    end = b + id->value_end - 1;

    for (s = p; s + sl <= end; s++) {
        if (memcmp(s, NGX_AI_RELAY_XLATE_SIG, sl) == 0) {
            break;
        }
    }

    if (s + sl >= end) {
        return;
    }

    s += sl;

    if ((end - s) % 4 == 1) {
        return;
    }

    for (p = s; p < end; p++) {
        c = *p;

        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
              || (c >= '0' && c <= '9') || c == '-' || c == '_'))
        {
            return;
        }
    }

    ngx_ai_relay_jw_lit(w, ",\"thoughtSignature\":\"");

    for (p = s; p < end; p++) {
        c = *p;

        if (c == '-') {
            c = '+';

        } else if (c == '_') {
            c = '/';
        }

        ngx_ai_relay_jw_raw(w, &c, 1);
    }

    if ((end - s) % 4 == 2) {
        ngx_ai_relay_jw_lit(w, "==");

    } else if ((end - s) % 4 == 3) {
        ngx_ai_relay_jw_lit(w, "=");
    }

    ngx_ai_relay_jw_lit(w, "\"");
}


/* OpenAI content (string or parts) as Gemini parts, comma separated */

static int
ngx_ai_relay_o2g_parts(ngx_ai_relay_xlate_req_t *rq, ngx_ai_relay_jw_t *w,
    const ngx_ai_relay_xm_t *content, int images, int *n)
{
    u_char             *url, *comma;
    size_t              pos, len;
    const u_char       *b;
    ngx_ai_relay_xm_t   part, type, text, iu, u;

    b = rq->body;

    if (content->type == NGX_AI_RELAY_JSON_STRING) {
        if (ngx_ai_relay_xm_zero(b, content)) {
            return NGX_AI_RELAY_XLATE_OK;   /* no empty part */
        }

        ngx_ai_relay_jw_raw(w, ",", *n ? 1 : 0);
        ngx_ai_relay_jw_lit(w, "{\"text\":");
        ngx_ai_relay_xm_raw(w, b, content);
        ngx_ai_relay_jw_lit(w, "}");
        (*n)++;
        return NGX_AI_RELAY_XLATE_OK;
    }

    if (ngx_ai_relay_xm_null(content)) {
        return NGX_AI_RELAY_XLATE_OK;
    }

    if (content->type != NGX_AI_RELAY_JSON_ARRAY) {
        return ngx_ai_relay_xlate_fail(rq, "message content must be a string "
                                       "or an array of content parts");
    }

    pos = 0;

    while (ngx_ai_relay_json_array_next(b, content, &pos, &part)) {
        ngx_ai_relay_xm_find(b, &part, "type", &type);

        if (ngx_ai_relay_xm_is(b, &type, "text")) {
            ngx_ai_relay_xm_find(b, &part, "text", &text);

            if (text.type != NGX_AI_RELAY_JSON_STRING) {
                return ngx_ai_relay_xlate_fail(rq, "a text part needs a "
                                               "string \"text\"");
            }

            if (ngx_ai_relay_xm_zero(b, &text)) {
                continue;
            }

            ngx_ai_relay_jw_raw(w, ",", *n ? 1 : 0);
            ngx_ai_relay_jw_lit(w, "{\"text\":");
            ngx_ai_relay_xm_raw(w, b, &text);
            ngx_ai_relay_jw_lit(w, "}");
            (*n)++;
            continue;
        }

        if (ngx_ai_relay_xm_is(b, &type, "image_url") && images) {
            ngx_ai_relay_xm_find(b, &part, "image_url", &iu);

            if (iu.type == NGX_AI_RELAY_JSON_STRING) {
                u = iu;

            } else {
                ngx_ai_relay_xm_find(b, &iu, "url", &u);
            }

            if (u.type != NGX_AI_RELAY_JSON_STRING
                || u.value_end - u.value_start <= 7
                || memcmp(b + u.value_start + 1, "data:", 5) != 0)
            {
                return ngx_ai_relay_xlate_fail(rq, "only images given as "
                                               "data: URLs can be sent to "
                                               "this model's channel "
                                               "(Gemini)");
            }

            url = ngx_ai_relay_xm_decode(w, b, &u, &len);
            if (url == NULL) {
                return NGX_AI_RELAY_XLATE_ERROR;
            }

            comma = memchr(url, ',', len);

            if (comma == NULL || comma - url < 12
                || memcmp(comma - 7, ";base64", 7) != 0)
            {
                return ngx_ai_relay_xlate_fail(rq, "an image data URL must "
                                               "be base64: "
                                               "data:<type>;base64,...");
            }

            ngx_ai_relay_jw_raw(w, ",", *n ? 1 : 0);
            ngx_ai_relay_jw_lit(w, "{\"inlineData\":{\"mimeType\":");
            ngx_ai_relay_jw_str(w, url + 5, comma - 7 - url - 5);
            ngx_ai_relay_jw_lit(w, ",\"data\":");
            ngx_ai_relay_jw_str(w, comma + 1, url + len - comma - 1);
            ngx_ai_relay_jw_lit(w, "}}");
            (*n)++;
            continue;
        }

        if (type.type == NGX_AI_RELAY_JSON_STRING) {
            return ngx_ai_relay_xlate_fail(rq, "content parts of type %.*s "
                                           "cannot be sent to this model's "
                                           "channel (Gemini)",
                                           (int) (type.value_end
                                                  - type.value_start),
                                           b + type.value_start);
        }

        return ngx_ai_relay_xlate_fail(rq, "a content part needs a type");
    }

    return NGX_AI_RELAY_XLATE_OK;
}


static const char  *ngx_ai_relay_o2g_ignored[] = {
    "model", "messages", "max_tokens", "max_completion_tokens", "stream",
    "stream_options", "temperature", "top_p", "stop", "tools",
    "tool_choice", "parallel_tool_calls", "user", "reasoning_effort",
    "seed", "store", "metadata", "service_tier", "n", "logprobs",
    "top_logprobs", "frequency_penalty", "presence_penalty",
    "response_format", NULL
};


static int
ngx_ai_relay_o2g_request(ngx_ai_relay_xlate_req_t *rq, ngx_ai_relay_jw_t *w)
{
    int                               rc, n, open, parts, first;
    u_char                           *args;
    size_t                            i, pos, tpos, len;
    int64_t                           v, budget;
    const char                      **k;
    const u_char                     *b;
    ngx_ai_relay_jw_t                 g;
    ngx_ai_relay_xm_t                 msgs, msg, role, content, calls, tc,
                                      m, t, fn, x, name, a, tid;
    const ngx_ai_relay_xm_t          *top;
    const ngx_ai_relay_json_scan_t   *scan;

#define ngx_ai_relay_top(nm)                                                  \
    ((top = ngx_ai_relay_json_find(scan, b, nm, sizeof(nm) - 1))             \
     ? *top : (memset(&x, 0, sizeof(x)), x))

    b = rq->body;
    scan = rq->scan;

    for (i = 0; i < scan->nmembers; i++) {
        for (k = ngx_ai_relay_o2g_ignored; *k; k++) {
            if (ngx_ai_relay_xm_key_is(b, &scan->members[i], *k)) {
                break;
            }
        }

        if (*k == NULL) {
            return ngx_ai_relay_xlate_fail(rq, "the parameter %.*s cannot be "
                                   "sent to this model's channel (Gemini)",
                                   (int) (scan->members[i].key_end
                                          - scan->members[i].key_start),
                                   b + scan->members[i].key_start);
        }
    }

    m = ngx_ai_relay_top("n");
    if (!ngx_ai_relay_xm_null(&m)
        && !(m.value_end - m.value_start == 1 && b[m.value_start] == '1'))
    {
        return ngx_ai_relay_xlate_fail(rq, "n other than 1 cannot be sent to "
                                       "this model's channel (Gemini)");
    }

    m = ngx_ai_relay_top("logprobs");
    if (!ngx_ai_relay_xm_zero(b, &m)) {
        return ngx_ai_relay_xlate_fail(rq, "logprobs cannot be sent to this "
                                       "model's channel (Gemini)");
    }

    m = ngx_ai_relay_top("parallel_tool_calls");
    if (m.type == NGX_AI_RELAY_JSON_FALSE) {
        return ngx_ai_relay_xlate_fail(rq, "parallel_tool_calls false cannot "
                                       "be sent to this model's channel "
                                       "(Gemini)");
    }

    msgs = ngx_ai_relay_top("messages");
    if (msgs.type != NGX_AI_RELAY_JSON_ARRAY) {
        return ngx_ai_relay_xlate_fail(rq, "messages must be an array");
    }

    ngx_ai_relay_jw_lit(w, "{");
    first = 1;

    /* systemInstruction: the leading system and developer messages */

    pos = 0;
    parts = 0;

    while (ngx_ai_relay_json_array_next(b, &msgs, &pos, &msg)) {
        ngx_ai_relay_xm_find(b, &msg, "role", &role);

        if (!ngx_ai_relay_xm_is(b, &role, "system")
            && !ngx_ai_relay_xm_is(b, &role, "developer"))
        {
            break;
        }

        if (parts == 0) {
            ngx_ai_relay_jw_lit(w, "\"systemInstruction\":{\"parts\":[");
        }

        ngx_ai_relay_xm_find(b, &msg, "content", &content);

        n = parts;
        rc = ngx_ai_relay_o2g_parts(rq, w, &content, 0, &parts);
        if (rc != NGX_AI_RELAY_XLATE_OK) {
            return rc;
        }

        if (parts == n && parts == 0) {
            ngx_ai_relay_jw_lit(w, "{\"text\":\"\"}");
            parts++;
        }
    }

    if (parts) {
        ngx_ai_relay_jw_lit(w, "]}");
        first = 0;
    }

    ngx_ai_relay_jw_raw(w, ",", first ? 0 : 1);
    ngx_ai_relay_jw_lit(w, "\"contents\":[");

    open = 0;      /* a user turn of function responses is open */
    n = 0;
    pos = 0;

    while (ngx_ai_relay_json_array_next(b, &msgs, &pos, &msg)) {
        ngx_ai_relay_xm_find(b, &msg, "role", &role);
        ngx_ai_relay_xm_find(b, &msg, "content", &content);

        if (ngx_ai_relay_xm_is(b, &role, "system")
            || ngx_ai_relay_xm_is(b, &role, "developer"))
        {
            if (n == 0 && !open) {
                continue;
            }

            return ngx_ai_relay_xlate_fail(rq, "system messages after the "
                                           "conversation started cannot be "
                                           "sent to this model's channel "
                                           "(Gemini)");
        }

        if (ngx_ai_relay_xm_is(b, &role, "tool")) {
            ngx_ai_relay_xm_find(b, &msg, "tool_call_id", &t);

            if (t.type != NGX_AI_RELAY_JSON_STRING
                || !ngx_ai_relay_o2g_tool_name(b, &msgs, &t, &name))
            {
                return ngx_ai_relay_xlate_fail(rq, "a tool message needs the "
                                               "tool_call_id of an earlier "
                                               "assistant tool call");
            }

            if (!open) {
                ngx_ai_relay_jw_raw(w, ",", n ? 1 : 0);
                ngx_ai_relay_jw_lit(w, "{\"role\":\"user\",\"parts\":[");
                open = 1;
                n++;

            } else {
                ngx_ai_relay_jw_lit(w, ",");
            }

            ngx_ai_relay_jw_lit(w, "{\"functionResponse\":{\"name\":");
            ngx_ai_relay_xm_raw(w, b, &name);
            ngx_ai_relay_jw_lit(w, ",\"response\":{\"content\":");

            if (content.type == NGX_AI_RELAY_JSON_STRING) {
                ngx_ai_relay_xm_raw(w, b, &content);

            } else if (content.type == NGX_AI_RELAY_JSON_ARRAY) {

                /* text parts: joined */

                ngx_ai_relay_jw_lit(w, "\"");
                tpos = 0;

                while (ngx_ai_relay_json_array_next(b, &content, &tpos, &tc)) {
                    ngx_ai_relay_xm_find(b, &tc, "text", &a);

                    if (a.type != NGX_AI_RELAY_JSON_STRING) {
                        return ngx_ai_relay_xlate_fail(rq, "tool message "
                                               "content must be text");
                    }

                    ngx_ai_relay_jw_raw(w, b + a.value_start + 1,
                                        a.value_end - a.value_start - 2);
                }

                ngx_ai_relay_jw_lit(w, "\"");

            } else {
                ngx_ai_relay_jw_lit(w, "\"\"");
            }

            ngx_ai_relay_jw_lit(w, "}}}");
            continue;
        }

        if (open) {
            ngx_ai_relay_jw_lit(w, "]}");
            open = 0;
        }

        if (ngx_ai_relay_xm_is(b, &role, "user")) {
            ngx_ai_relay_jw_raw(w, ",", n ? 1 : 0);
            ngx_ai_relay_jw_lit(w, "{\"role\":\"user\",\"parts\":[");

            parts = 0;
            rc = ngx_ai_relay_o2g_parts(rq, w, &content, 1, &parts);
            if (rc != NGX_AI_RELAY_XLATE_OK) {
                return rc;
            }

            if (parts == 0) {
                ngx_ai_relay_jw_lit(w, "{\"text\":\"\"}");
            }

            ngx_ai_relay_jw_lit(w, "]}");
            n++;
            continue;
        }

        if (ngx_ai_relay_xm_is(b, &role, "assistant")) {
            ngx_ai_relay_jw_raw(w, ",", n ? 1 : 0);
            ngx_ai_relay_jw_lit(w, "{\"role\":\"model\",\"parts\":[");

            parts = 0;

            if (!ngx_ai_relay_xm_zero(b, &content)) {
                rc = ngx_ai_relay_o2g_parts(rq, w, &content, 0, &parts);
                if (rc != NGX_AI_RELAY_XLATE_OK) {
                    return rc;
                }
            }

            ngx_ai_relay_xm_find(b, &msg, "tool_calls", &calls);

            if (calls.type == NGX_AI_RELAY_JSON_ARRAY) {
                tpos = 0;

                while (ngx_ai_relay_json_array_next(b, &calls, &tpos, &tc)) {
                    ngx_ai_relay_xm_find(b, &tc, "function", &fn);
                    ngx_ai_relay_xm_find(b, &fn, "name", &name);
                    ngx_ai_relay_xm_find(b, &fn, "arguments", &a);

                    if (name.type != NGX_AI_RELAY_JSON_STRING) {
                        return ngx_ai_relay_xlate_fail(rq, "a tool call "
                                                       "needs a function "
                                                       "name");
                    }

                    ngx_ai_relay_jw_raw(w, ",", parts ? 1 : 0);
                    parts++;

                    ngx_ai_relay_jw_lit(w, "{\"functionCall\":{\"name\":");
                    ngx_ai_relay_xm_raw(w, b, &name);
                    ngx_ai_relay_jw_lit(w, ",\"args\":");

                    if (ngx_ai_relay_xm_zero(b, &a)) {
                        ngx_ai_relay_jw_lit(w, "{}");

                    } else if (a.type == NGX_AI_RELAY_JSON_STRING) {
                        args = ngx_ai_relay_xm_decode(w, b, &a, &len);
                        if (args == NULL) {
                            return NGX_AI_RELAY_XLATE_ERROR;
                        }

                        if (!ngx_ai_relay_json_object_text(args, len)) {
                            return ngx_ai_relay_xlate_fail(rq, "the arguments "
                                           "of a tool call must be a JSON "
                                           "object");
                        }

                        ngx_ai_relay_jw_raw(w, args, len);

                    } else {
                        return ngx_ai_relay_xlate_fail(rq, "the arguments of "
                                                       "a tool call must be "
                                                       "a string");
                    }

                    ngx_ai_relay_jw_lit(w, "}");

                    ngx_ai_relay_xm_find(b, &tc, "id", &tid);
                    ngx_ai_relay_o2g_sig(w, b, &tid);

                    ngx_ai_relay_jw_lit(w, "}");
                }
            }

            if (parts == 0) {
                ngx_ai_relay_jw_lit(w, "{\"text\":\"\"}");
            }

            ngx_ai_relay_jw_lit(w, "]}");
            n++;
            continue;
        }

        return ngx_ai_relay_xlate_fail(rq, "messages of role %.*s cannot be "
                                       "sent to this model's channel "
                                       "(Gemini)",
                                       (int) (role.value_end
                                              - role.value_start),
                                       b + role.value_start);
    }

    if (open) {
        ngx_ai_relay_jw_lit(w, "]}");
    }

    if (n == 0) {
        return ngx_ai_relay_xlate_fail(rq, "messages must hold at least one "
                                       "user message");
    }

    ngx_ai_relay_jw_lit(w, "]");

    /* generationConfig, when anything is set */

    ngx_ai_relay_jw_init(&g, w->alloc, w->data);

#define ngx_ai_relay_gc(field)                                                \
    ngx_ai_relay_jw_raw(&g, ",", g.len ? 1 : 0);                              \
    ngx_ai_relay_jw_lit(&g, "\"" field "\":")

    /*
     * reasoning_effort: a thinking budget; maxOutputTokens is always
     * sent, the thoughts counted in it (the most this request may be
     * billed for, what the relay reserves): the client's, or the default
     * plus the budget
     */

    budget = -1;
    m = ngx_ai_relay_top("reasoning_effort");

    if (!ngx_ai_relay_xm_null(&m)) {
        if (ngx_ai_relay_xm_is(b, &m, "none")) {
            budget = 0;

        } else if (ngx_ai_relay_xm_is(b, &m, "minimal")
                   || ngx_ai_relay_xm_is(b, &m, "low"))
        {
            budget = NGX_AI_RELAY_XLATE_BUDGET_LOW;

        } else if (ngx_ai_relay_xm_is(b, &m, "medium")) {
            budget = NGX_AI_RELAY_XLATE_BUDGET_MEDIUM;

        } else if (ngx_ai_relay_xm_is(b, &m, "high")) {
            budget = NGX_AI_RELAY_XLATE_BUDGET_HIGH;

        } else {
            return ngx_ai_relay_xlate_fail(rq, "reasoning_effort must be "
                                           "none, minimal, low, medium or "
                                           "high");
        }
    }

    if (ngx_ai_relay_json_get_int(scan, b, "max_completion_tokens", 21, &v)
        == NGX_AI_RELAY_JSON_GET_OK
        || ngx_ai_relay_json_get_int(scan, b, "max_tokens", 10, &v)
           == NGX_AI_RELAY_JSON_GET_OK)
    {
        if (v < 1) {
            return ngx_ai_relay_xlate_fail(rq, "max_tokens must be at "
                                           "least 1");
        }

    } else {
        v = rq->default_max_tokens + (budget > 0 ? budget : 0);
    }

    ngx_ai_relay_gc("maxOutputTokens");
    ngx_ai_relay_jw_int(&g, v);
    rq->max_out = v;

    m = ngx_ai_relay_top("temperature");
    if (!ngx_ai_relay_xm_null(&m)) {
        ngx_ai_relay_gc("temperature");
        ngx_ai_relay_xm_raw(&g, b, &m);
    }

    m = ngx_ai_relay_top("top_p");
    if (!ngx_ai_relay_xm_null(&m)) {
        ngx_ai_relay_gc("topP");
        ngx_ai_relay_xm_raw(&g, b, &m);
    }

    m = ngx_ai_relay_top("presence_penalty");
    if (!ngx_ai_relay_xm_null(&m)) {
        ngx_ai_relay_gc("presencePenalty");
        ngx_ai_relay_xm_raw(&g, b, &m);
    }

    m = ngx_ai_relay_top("frequency_penalty");
    if (!ngx_ai_relay_xm_null(&m)) {
        ngx_ai_relay_gc("frequencyPenalty");
        ngx_ai_relay_xm_raw(&g, b, &m);
    }

    m = ngx_ai_relay_top("seed");
    if (!ngx_ai_relay_xm_null(&m)) {
        ngx_ai_relay_gc("seed");
        ngx_ai_relay_xm_raw(&g, b, &m);
    }

    m = ngx_ai_relay_top("stop");
    if (m.type == NGX_AI_RELAY_JSON_STRING) {
        ngx_ai_relay_gc("stopSequences");
        ngx_ai_relay_jw_lit(&g, "[");
        ngx_ai_relay_xm_raw(&g, b, &m);
        ngx_ai_relay_jw_lit(&g, "]");

    } else if (m.type == NGX_AI_RELAY_JSON_ARRAY) {
        ngx_ai_relay_gc("stopSequences");
        ngx_ai_relay_xm_raw(&g, b, &m);
    }

    m = ngx_ai_relay_top("response_format");
    if (!ngx_ai_relay_xm_null(&m)) {
        ngx_ai_relay_xm_find(b, &m, "type", &t);

        if (ngx_ai_relay_xm_is(b, &t, "json_object")) {
            ngx_ai_relay_gc("responseMimeType");
            ngx_ai_relay_jw_lit(&g, "\"application/json\"");

        } else if (!ngx_ai_relay_xm_is(b, &t, "text")) {
            return ngx_ai_relay_xlate_fail(rq, "response_format %.*s cannot "
                                           "be sent to this model's channel "
                                           "(Gemini)",
                                           (int) (t.value_end
                                                  - t.value_start),
                                           b + t.value_start);
        }
    }

    if (budget >= 0) {
        ngx_ai_relay_gc("thinkingConfig");
        ngx_ai_relay_jw_lit(&g, "{\"thinkingBudget\":");
        ngx_ai_relay_jw_int(&g, budget);
        ngx_ai_relay_jw_lit(&g, ",\"includeThoughts\":true}");
    }

#undef ngx_ai_relay_gc

    if (g.failed) {
        return NGX_AI_RELAY_XLATE_ERROR;
    }

    if (g.len) {
        ngx_ai_relay_jw_lit(w, ",\"generationConfig\":{");
        ngx_ai_relay_jw_raw(w, g.buf, g.len);
        ngx_ai_relay_jw_lit(w, "}");
    }

    /* tools */

    m = ngx_ai_relay_top("tools");
    if (m.type == NGX_AI_RELAY_JSON_ARRAY && !ngx_ai_relay_xm_zero(b, &m)) {
        ngx_ai_relay_jw_lit(w, ",\"tools\":[{\"functionDeclarations\":[");
        pos = 0;
        n = 0;

        while (ngx_ai_relay_json_array_next(b, &m, &pos, &tc)) {
            ngx_ai_relay_xm_find(b, &tc, "type", &t);
            ngx_ai_relay_xm_find(b, &tc, "function", &fn);
            ngx_ai_relay_xm_find(b, &fn, "name", &name);

            if (!ngx_ai_relay_xm_is(b, &t, "function")
                || name.type != NGX_AI_RELAY_JSON_STRING)
            {
                return ngx_ai_relay_xlate_fail(rq, "only function tools can "
                                               "be sent to this model's "
                                               "channel (Gemini)");
            }

            ngx_ai_relay_jw_raw(w, ",", n ? 1 : 0);
            n++;

            ngx_ai_relay_jw_lit(w, "{\"name\":");
            ngx_ai_relay_xm_raw(w, b, &name);

            ngx_ai_relay_xm_find(b, &fn, "description", &x);
            if (x.type == NGX_AI_RELAY_JSON_STRING) {
                ngx_ai_relay_jw_lit(w, ",\"description\":");
                ngx_ai_relay_xm_raw(w, b, &x);
            }

            ngx_ai_relay_xm_find(b, &fn, "parameters", &x);
            if (x.type == NGX_AI_RELAY_JSON_OBJECT) {
                ngx_ai_relay_jw_lit(w, ",\"parametersJsonSchema\":");
                ngx_ai_relay_xm_raw(w, b, &x);
            }

            ngx_ai_relay_jw_lit(w, "}");
        }

        ngx_ai_relay_jw_lit(w, "]}]");

    } else if (!ngx_ai_relay_xm_null(&m) && m.type != NGX_AI_RELAY_JSON_ARRAY)
    {
        return ngx_ai_relay_xlate_fail(rq, "tools must be an array");
    }

    m = ngx_ai_relay_top("tool_choice");
    if (!ngx_ai_relay_xm_null(&m)) {
        ngx_ai_relay_jw_lit(w, ",\"toolConfig\":{\"functionCallingConfig\":"
                            "{\"mode\":");

        if (ngx_ai_relay_xm_is(b, &m, "auto")) {
            ngx_ai_relay_jw_lit(w, "\"AUTO\"");

        } else if (ngx_ai_relay_xm_is(b, &m, "none")) {
            ngx_ai_relay_jw_lit(w, "\"NONE\"");

        } else if (ngx_ai_relay_xm_is(b, &m, "required")) {
            ngx_ai_relay_jw_lit(w, "\"ANY\"");

        } else {
            ngx_ai_relay_xm_find(b, &m, "function", &fn);
            ngx_ai_relay_xm_find(b, &fn, "name", &name);

            if (name.type != NGX_AI_RELAY_JSON_STRING) {
                return ngx_ai_relay_xlate_fail(rq, "tool_choice must be "
                                               "auto, none, required or a "
                                               "function");
            }

            ngx_ai_relay_jw_lit(w, "\"ANY\",\"allowedFunctionNames\":[");
            ngx_ai_relay_xm_raw(w, b, &name);
            ngx_ai_relay_jw_lit(w, "]");
        }

        ngx_ai_relay_jw_lit(w, "}}");
    }

    m = ngx_ai_relay_top("stream");
    if (m.type == NGX_AI_RELAY_JSON_TRUE) {
        rq->stream = 1;

        x = ngx_ai_relay_top("stream_options");
        ngx_ai_relay_xm_find(b, &x, "include_usage", &t);
        rq->include_usage = (t.type == NGX_AI_RELAY_JSON_TRUE);
    }

    ngx_ai_relay_jw_lit(w, "}");

#undef ngx_ai_relay_top

    return NGX_AI_RELAY_XLATE_OK;
}


/* --------------------------------------------- Gemini -> OpenAI, answers */

/* Gemini's finishReason as OpenAI's finish_reason */

const char *
ngx_ai_relay_xlate_gemini_finish(const u_char *p, size_t len, int calls)
{
#define ngx_ai_relay_eq(s)                                                    \
    (len == sizeof(s) - 1 && memcmp(p, s, len) == 0)

    if (ngx_ai_relay_eq("MAX_TOKENS")) {
        return "length";
    }

    if (ngx_ai_relay_eq("SAFETY") || ngx_ai_relay_eq("RECITATION")
        || ngx_ai_relay_eq("BLOCKLIST")
        || ngx_ai_relay_eq("PROHIBITED_CONTENT") || ngx_ai_relay_eq("SPII")
        || ngx_ai_relay_eq("IMAGE_SAFETY"))
    {
        return "content_filter";
    }

    return calls ? "tool_calls" : "stop";

#undef ngx_ai_relay_eq
}


/* OpenAI's usage object from Gemini's usageMetadata */

void
ngx_ai_relay_xlate_gemini_usage(ngx_ai_relay_jw_t *w, const u_char *b,
    const ngx_ai_relay_json_member_t *um)
{
    int64_t  prompt, completion, thoughts;

    prompt = ngx_ai_relay_xm_int(b, um, "promptTokenCount")
             + ngx_ai_relay_xm_int(b, um, "toolUsePromptTokenCount");
    thoughts = ngx_ai_relay_xm_int(b, um, "thoughtsTokenCount");
    completion = ngx_ai_relay_xm_int(b, um, "candidatesTokenCount")
                 + thoughts;

    ngx_ai_relay_jw_lit(w, "{\"prompt_tokens\":");
    ngx_ai_relay_jw_int(w, prompt);
    ngx_ai_relay_jw_lit(w, ",\"completion_tokens\":");
    ngx_ai_relay_jw_int(w, completion);
    ngx_ai_relay_jw_lit(w, ",\"total_tokens\":");
    ngx_ai_relay_jw_int(w, prompt + completion);
    ngx_ai_relay_jw_lit(w, ",\"prompt_tokens_details\":{\"cached_tokens\":");
    ngx_ai_relay_jw_int(w, ngx_ai_relay_xm_int(b, um,
                                               "cachedContentTokenCount"));
    ngx_ai_relay_jw_lit(w, "},\"completion_tokens_details\":"
                        "{\"reasoning_tokens\":");
    ngx_ai_relay_jw_int(w, thoughts);
    ngx_ai_relay_jw_lit(w, "}}");
}


/*
 * A part's thoughtSignature (base64) after a tool call id: the separator,
 * then the signature in base64url without padding, so that the id keeps
 * to letters, digits, '_' and '-' (ids are opaque to OpenAI's and
 * Anthropic's SDKs); nothing when there is none or it is not base64.
 */

static void
ngx_ai_relay_g2o_sig(ngx_ai_relay_jw_t *w, const u_char *b,
    const ngx_ai_relay_xm_t *part)
{
    u_char             c;
    size_t             i, start, end;
    ngx_ai_relay_xm_t  sig;

    if (!ngx_ai_relay_xm_find(b, part, "thoughtSignature", &sig)
        || sig.type != NGX_AI_RELAY_JSON_STRING)
    {
        return;
    }

    start = sig.value_start + 1;
    end = sig.value_end - 1;

    if (start >= end) {
        return;
    }

    for (i = start; i < end; i++) {
        c = b[i];

        if (c == '\\' && i + 1 < end && b[i + 1] == '/') {
            i++;
            continue;
        }

        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
              || (c >= '0' && c <= '9') || c == '+' || c == '/' || c == '='))
        {
            return;
        }
    }

    ngx_ai_relay_jw_lit(w, NGX_AI_RELAY_XLATE_SIG);

    for (i = start; i < end; i++) {
        c = b[i];

        if (c == '\\') {        /* "\/" */
            i++;
            c = '/';
        }

        if (c == '=') {
            continue;
        }

        if (c == '+') {
            c = '-';

        } else if (c == '/') {
            c = '_';
        }

        ngx_ai_relay_jw_raw(w, &c, 1);
    }
}


/* a functionCall part as an OpenAI tool call (no "index") */

void
ngx_ai_relay_xlate_gemini_call(ngx_ai_relay_jw_t *w, const u_char *b,
    const ngx_ai_relay_json_member_t *part,
    const ngx_ai_relay_json_member_t *fc, int64_t n)
{
    ngx_ai_relay_xm_t  id, name, args;

    ngx_ai_relay_xm_find(b, fc, "id", &id);
    ngx_ai_relay_xm_find(b, fc, "name", &name);
    ngx_ai_relay_xm_find(b, fc, "args", &args);

    ngx_ai_relay_jw_lit(w, "\"id\":");

    if (id.type == NGX_AI_RELAY_JSON_STRING) {
        ngx_ai_relay_jw_raw(w, b + id.value_start,
                            id.value_end - id.value_start - 1);

    } else {

        /*
         * Gemini names no call: the id says the function, so that a tool
         * result sent back names the function Gemini wants, whatever
         * turn the call was in
         */

        ngx_ai_relay_jw_lit(w, "\"call_");
        ngx_ai_relay_jw_int(w, n);
        ngx_ai_relay_jw_lit(w, "_");

        if (name.type == NGX_AI_RELAY_JSON_STRING) {
            ngx_ai_relay_jw_raw(w, b + name.value_start + 1,
                                name.value_end - name.value_start - 2);
        }
    }

    /* Gemini 3 wants the call's signature back with it */

    ngx_ai_relay_g2o_sig(w, b, part);
    ngx_ai_relay_jw_lit(w, "\"");

    ngx_ai_relay_jw_lit(w, ",\"type\":\"function\",\"function\":{\"name\":");

    if (name.type == NGX_AI_RELAY_JSON_STRING) {
        ngx_ai_relay_xm_raw(w, b, &name);

    } else {
        ngx_ai_relay_jw_lit(w, "\"\"");
    }

    ngx_ai_relay_jw_lit(w, ",\"arguments\":");

    if (args.type == NGX_AI_RELAY_JSON_OBJECT) {
        ngx_ai_relay_jw_str(w, b + args.value_start,
                            args.value_end - args.value_start);

    } else {
        ngx_ai_relay_jw_lit(w, "\"{}\"");
    }

    ngx_ai_relay_jw_lit(w, "}");
}


static int
ngx_ai_relay_g2o_response(const u_char *b, ngx_ai_relay_json_scan_t *scan,
    int64_t created, ngx_ai_relay_jw_t *w)
{
    int                 n, calls, thoughts;
    size_t              pos, ppos;
    const char         *finish;
    ngx_ai_relay_xm_t   cand, content, parts, part, t, thought, fc, fr;
    ngx_ai_relay_xm_t  *id, *model, *cands, *um;

    id = ngx_ai_relay_json_find(scan, b, "responseId", 10);
    model = ngx_ai_relay_json_find(scan, b, "modelVersion", 12);
    cands = ngx_ai_relay_json_find(scan, b, "candidates", 10);
    um = ngx_ai_relay_json_find(scan, b, "usageMetadata", 13);

    memset(&parts, 0, sizeof(parts));
    memset(&cand, 0, sizeof(cand));
    pos = 0;

    if (cands && ngx_ai_relay_json_array_next(b, cands, &pos, &cand)) {
        ngx_ai_relay_xm_find(b, &cand, "content", &content);
        ngx_ai_relay_xm_find(b, &content, "parts", &parts);
    }

    ngx_ai_relay_jw_lit(w, "{\"id\":");

    if (id && id->type == NGX_AI_RELAY_JSON_STRING) {
        ngx_ai_relay_xm_raw(w, b, id);

    } else {
        ngx_ai_relay_jw_lit(w, "\"chatcmpl-relay\"");
    }

    ngx_ai_relay_jw_lit(w, ",\"object\":\"chat.completion\",\"created\":");
    ngx_ai_relay_jw_int(w, created);
    ngx_ai_relay_jw_lit(w, ",\"model\":");

    if (model && model->type == NGX_AI_RELAY_JSON_STRING) {
        ngx_ai_relay_xm_raw(w, b, model);

    } else {
        ngx_ai_relay_jw_lit(w, "\"\"");
    }

    ngx_ai_relay_jw_lit(w, ",\"choices\":[{\"index\":0,\"message\":"
                        "{\"role\":\"assistant\",\"content\":");

    n = 0;
    thoughts = 0;
    calls = 0;
    ppos = 0;

    while (parts.type == NGX_AI_RELAY_JSON_ARRAY
           && ngx_ai_relay_json_array_next(b, &parts, &ppos, &part))
    {
        ngx_ai_relay_xm_find(b, &part, "text", &t);
        ngx_ai_relay_xm_find(b, &part, "thought", &thought);

        if (ngx_ai_relay_xm_find(b, &part, "functionCall", &fc)) {
            calls++;
        }

        if (t.type != NGX_AI_RELAY_JSON_STRING) {
            continue;
        }

        if (thought.type == NGX_AI_RELAY_JSON_TRUE) {
            thoughts++;
            continue;
        }

        ngx_ai_relay_jw_raw(w, "\"", n ? 0 : 1);
        ngx_ai_relay_jw_raw(w, b + t.value_start + 1,
                            t.value_end - t.value_start - 2);
        n++;
    }

    if (n) {
        ngx_ai_relay_jw_lit(w, "\"");

    } else {
        ngx_ai_relay_jw_lit(w, "null");
    }

    if (thoughts) {
        ngx_ai_relay_jw_lit(w, ",\"reasoning_content\":\"");
        ppos = 0;

        while (ngx_ai_relay_json_array_next(b, &parts, &ppos, &part)) {
            ngx_ai_relay_xm_find(b, &part, "text", &t);
            ngx_ai_relay_xm_find(b, &part, "thought", &thought);

            if (t.type == NGX_AI_RELAY_JSON_STRING
                && thought.type == NGX_AI_RELAY_JSON_TRUE)
            {
                ngx_ai_relay_jw_raw(w, b + t.value_start + 1,
                                    t.value_end - t.value_start - 2);
            }
        }

        ngx_ai_relay_jw_lit(w, "\"");
    }

    if (calls) {
        ngx_ai_relay_jw_lit(w, ",\"tool_calls\":[");
        ppos = 0;
        n = 0;

        while (ngx_ai_relay_json_array_next(b, &parts, &ppos, &part)) {
            if (!ngx_ai_relay_xm_find(b, &part, "functionCall", &fc)) {
                continue;
            }

            ngx_ai_relay_jw_raw(w, ",", n ? 1 : 0);
            ngx_ai_relay_jw_lit(w, "{");
            ngx_ai_relay_xlate_gemini_call(w, b, &part, &fc, n);
            ngx_ai_relay_jw_lit(w, "}");
            n++;
        }

        ngx_ai_relay_jw_lit(w, "]");
    }

    ngx_ai_relay_jw_lit(w, "},\"finish_reason\":");

    ngx_ai_relay_xm_find(b, &cand, "finishReason", &fr);

    if (fr.type == NGX_AI_RELAY_JSON_STRING) {
        finish = ngx_ai_relay_xlate_gemini_finish(b + fr.value_start + 1,
                                                  fr.value_end
                                                  - fr.value_start - 2,
                                                  calls);
        ngx_ai_relay_jw_raw(w, "\"", 1);
        ngx_ai_relay_jw_raw(w, finish, strlen(finish));
        ngx_ai_relay_jw_raw(w, "\"", 1);

    } else {
        ngx_ai_relay_jw_lit(w, "null");
    }

    ngx_ai_relay_jw_lit(w, "}],\"usage\":");
    ngx_ai_relay_xlate_gemini_usage(w, b, um);
    ngx_ai_relay_jw_lit(w, "}");

    return NGX_AI_RELAY_XLATE_OK;
}


/* ---------------------------------------------- Gemini -> OpenAI, request */

/*
 * A function call's id: Gemini's own when it gives one, else
 * call_<k>_<name>, k counting the calls (or the responses) of the turn:
 * a response answers the call of the same rank, as Gemini sends them.
 */

static void
ngx_ai_relay_g2o_call_id(ngx_ai_relay_jw_t *w, const u_char *b,
    const ngx_ai_relay_xm_t *fc, const ngx_ai_relay_xm_t *name, int k)
{
    ngx_ai_relay_xm_t  id;

    ngx_ai_relay_xm_find(b, fc, "id", &id);

    if (id.type == NGX_AI_RELAY_JSON_STRING) {
        ngx_ai_relay_xm_raw(w, b, &id);
        return;
    }

    ngx_ai_relay_jw_lit(w, "\"call_");
    ngx_ai_relay_jw_int(w, k);
    ngx_ai_relay_jw_lit(w, "_");
    ngx_ai_relay_jw_raw(w, b + name->value_start + 1,
                        name->value_end - name->value_start - 2);
    ngx_ai_relay_jw_lit(w, "\"");
}


/*
 * The id of the call a functionResponse without an id answers: its own
 * name's call in the model turn before it (the first such call for the
 * first response of that name, and so on), as that call's id was written
 * in that turn; 0 if that turn has none.
 */

static int
ngx_ai_relay_g2o_answered_id(ngx_ai_relay_jw_t *w, const u_char *b,
    const ngx_ai_relay_xm_t *prev, const ngx_ai_relay_xm_t *parts,
    const ngx_ai_relay_xm_t *resp, const ngx_ai_relay_xm_t *name)
{
    int                 same, r;
    size_t              pos, nlen;
    ngx_ai_relay_xm_t   part, fc, n;

    nlen = name->value_end - name->value_start;

    /* how many responses of this name come before this one */

    same = 0;
    pos = 0;

    while (ngx_ai_relay_json_array_next(b, parts, &pos, &part)) {
        if (!ngx_ai_relay_xm_find(b, &part, "functionResponse", &fc)) {
            continue;
        }

        if (fc.value_start == resp->value_start) {
            break;
        }

        ngx_ai_relay_xm_find(b, &fc, "name", &n);

        if (n.value_end - n.value_start == nlen
            && memcmp(b + n.value_start, b + name->value_start, nlen) == 0)
        {
            same++;
        }
    }

    pos = 0;
    r = 0;

    while (ngx_ai_relay_json_array_next(b, prev, &pos, &part)) {
        if (!ngx_ai_relay_xm_find(b, &part, "functionCall", &fc)) {
            continue;
        }

        ngx_ai_relay_xm_find(b, &fc, "name", &n);

        if (n.type == NGX_AI_RELAY_JSON_STRING
            && n.value_end - n.value_start == nlen
            && memcmp(b + n.value_start, b + name->value_start, nlen) == 0
            && same-- == 0)
        {
            ngx_ai_relay_g2o_call_id(w, b, &fc, &n, r);
            return 1;
        }

        r++;
    }

    return 0;
}


static const char  *ngx_ai_relay_g2o_ignored[] = {
    "contents", "systemInstruction", "generationConfig", "tools",
    "toolConfig", "safetySettings", NULL
};


static const char  *ngx_ai_relay_g2o_config[] = {
    "maxOutputTokens", "temperature", "topP", "stopSequences",
    "candidateCount", "responseMimeType", "presencePenalty",
    "frequencyPenalty", "seed", "thinkingConfig", NULL
};


static int
ngx_ai_relay_g2o_request(ngx_ai_relay_xlate_req_t *rq, ngx_ai_relay_jw_t *w)
{
    int                               n, k, calls, texts, parts_n;
    size_t                            i, pos, ppos;
    int64_t                           v;
    const char                      **kw;
    const u_char                     *b;
    ngx_ai_relay_xm_t                 m, c, role, parts, part, t, x, fc,
                                      name, cfg, mem, prev, id;
    ngx_ai_relay_xm_t                 cmembers[NGX_AI_RELAY_XLATE_MEMBERS];
    ngx_ai_relay_json_scan_t          cscan;
    const ngx_ai_relay_xm_t          *top;
    const ngx_ai_relay_json_scan_t   *scan;

#define ngx_ai_relay_top(nm)                                                  \
    ((top = ngx_ai_relay_json_find(scan, b, nm, sizeof(nm) - 1))             \
     ? *top : (memset(&x, 0, sizeof(x)), x))

    b = rq->body;
    scan = rq->scan;

    for (i = 0; i < scan->nmembers; i++) {
        for (kw = ngx_ai_relay_g2o_ignored; *kw; kw++) {
            if (ngx_ai_relay_xm_key_is(b, &scan->members[i], *kw)) {
                break;
            }
        }

        if (*kw == NULL) {
            return ngx_ai_relay_xlate_fail(rq, "the field %.*s cannot be sent "
                                   "to this model's channel (OpenAI)",
                                   (int) (scan->members[i].key_end
                                          - scan->members[i].key_start),
                                   b + scan->members[i].key_start);
        }
    }

    cfg = ngx_ai_relay_top("generationConfig");

    if (cfg.type == NGX_AI_RELAY_JSON_OBJECT) {

        /* its members, by scanning it as a document of its own */

        ngx_ai_relay_json_scan_init(&cscan, cmembers,
                                    NGX_AI_RELAY_XLATE_MEMBERS);

        if (ngx_ai_relay_json_scan(&cscan, b + cfg.value_start,
                                   cfg.value_end - cfg.value_start)
            != NGX_AI_RELAY_JSON_OK)
        {
            return ngx_ai_relay_xlate_fail(rq, "generationConfig has too "
                                           "many fields");
        }

        for (i = 0; i < cscan.nmembers; i++) {
            for (kw = ngx_ai_relay_g2o_config; *kw; kw++) {
                if (ngx_ai_relay_xm_key_is(b + cfg.value_start,
                                           &cmembers[i], *kw))
                {
                    break;
                }
            }

            if (*kw == NULL) {
                return ngx_ai_relay_xlate_fail(rq, "generationConfig.%.*s "
                                   "cannot be sent to this model's channel "
                                   "(OpenAI)",
                                   (int) (cmembers[i].key_end
                                          - cmembers[i].key_start),
                                   b + cfg.value_start
                                   + cmembers[i].key_start);
            }
        }
    }

    ngx_ai_relay_jw_lit(w, "{\"model\":");
    ngx_ai_relay_jw_str(w, rq->model, rq->model_len);
    ngx_ai_relay_jw_lit(w, ",\"messages\":[");

    n = 0;

    m = ngx_ai_relay_top("systemInstruction");
    if (m.type == NGX_AI_RELAY_JSON_OBJECT) {
        ngx_ai_relay_xm_find(b, &m, "parts", &parts);

        if (parts.type != NGX_AI_RELAY_JSON_ARRAY) {
            return ngx_ai_relay_xlate_fail(rq, "systemInstruction needs "
                                           "parts");
        }

        ngx_ai_relay_jw_lit(w, "{\"role\":\"system\",\"content\":\"");
        ppos = 0;

        while (ngx_ai_relay_json_array_next(b, &parts, &ppos, &part)) {
            ngx_ai_relay_xm_find(b, &part, "text", &t);

            if (t.type != NGX_AI_RELAY_JSON_STRING) {
                return ngx_ai_relay_xlate_fail(rq, "systemInstruction parts "
                                               "must be text");
            }

            ngx_ai_relay_jw_raw(w, b + t.value_start + 1,
                                t.value_end - t.value_start - 2);
        }

        ngx_ai_relay_jw_lit(w, "\"}");
        n++;
    }

    c = ngx_ai_relay_top("contents");
    if (c.type != NGX_AI_RELAY_JSON_ARRAY) {
        return ngx_ai_relay_xlate_fail(rq, "contents must be an array");
    }

    pos = 0;
    memset(&prev, 0, sizeof(prev));

    while (ngx_ai_relay_json_array_next(b, &c, &pos, &m)) {
        ngx_ai_relay_xm_find(b, &m, "role", &role);
        ngx_ai_relay_xm_find(b, &m, "parts", &parts);

        if (parts.type != NGX_AI_RELAY_JSON_ARRAY) {
            return ngx_ai_relay_xlate_fail(rq, "each content needs parts");
        }

        if (ngx_ai_relay_xm_is(b, &role, "model")) {

            prev = parts;   /* the calls the next user turn answers */

            /* text, then function calls */

            ngx_ai_relay_jw_raw(w, ",", n ? 1 : 0);
            n++;
            ngx_ai_relay_jw_lit(w, "{\"role\":\"assistant\",\"content\":");

            texts = 0;
            calls = 0;
            ppos = 0;

            while (ngx_ai_relay_json_array_next(b, &parts, &ppos, &part)) {
                ngx_ai_relay_xm_find(b, &part, "text", &t);
                ngx_ai_relay_xm_find(b, &part, "thought", &x);

                if (ngx_ai_relay_xm_find(b, &part, "functionCall", &fc)) {
                    calls++;
                    continue;
                }

                if (t.type != NGX_AI_RELAY_JSON_STRING) {
                    return ngx_ai_relay_xlate_fail(rq, "model parts other "
                                   "than text and functionCall cannot be "
                                   "sent to this model's channel (OpenAI)");
                }

                if (x.type == NGX_AI_RELAY_JSON_TRUE) {
                    continue;   /* the model's own thoughts */
                }

                ngx_ai_relay_jw_raw(w, "\"", texts ? 0 : 1);
                ngx_ai_relay_jw_raw(w, b + t.value_start + 1,
                                    t.value_end - t.value_start - 2);
                texts++;
            }

            if (texts) {
                ngx_ai_relay_jw_lit(w, "\"");

            } else {
                ngx_ai_relay_jw_lit(w, "null");
            }

            if (calls) {
                ngx_ai_relay_jw_lit(w, ",\"tool_calls\":[");
                ppos = 0;
                k = 0;

                while (ngx_ai_relay_json_array_next(b, &parts, &ppos, &part))
                {
                    if (!ngx_ai_relay_xm_find(b, &part, "functionCall", &fc)) {
                        continue;
                    }

                    ngx_ai_relay_xm_find(b, &fc, "name", &name);
                    ngx_ai_relay_xm_find(b, &fc, "args", &x);

                    if (name.type != NGX_AI_RELAY_JSON_STRING) {
                        return ngx_ai_relay_xlate_fail(rq, "a functionCall "
                                                       "needs a name");
                    }

                    ngx_ai_relay_jw_raw(w, ",", k ? 1 : 0);
                    ngx_ai_relay_jw_lit(w, "{\"id\":");
                    ngx_ai_relay_g2o_call_id(w, b, &fc, &name, k);
                    ngx_ai_relay_jw_lit(w, ",\"type\":\"function\","
                                        "\"function\":{\"name\":");
                    ngx_ai_relay_xm_raw(w, b, &name);
                    ngx_ai_relay_jw_lit(w, ",\"arguments\":");

                    if (x.type == NGX_AI_RELAY_JSON_OBJECT) {
                        ngx_ai_relay_jw_str(w, b + x.value_start,
                                            x.value_end - x.value_start);

                    } else {
                        ngx_ai_relay_jw_lit(w, "\"{}\"");
                    }

                    ngx_ai_relay_jw_lit(w, "}}");
                    k++;
                }

                ngx_ai_relay_jw_lit(w, "]");
            }

            ngx_ai_relay_jw_lit(w, "}");
            continue;
        }

        if (!ngx_ai_relay_xm_null(&role)
            && !ngx_ai_relay_xm_is(b, &role, "user"))
        {
            return ngx_ai_relay_xlate_fail(rq, "a content's role must be "
                                           "user or model");
        }

        /* user: function responses first, as tool messages */

        ppos = 0;
        k = 0;

        while (ngx_ai_relay_json_array_next(b, &parts, &ppos, &part)) {
            if (!ngx_ai_relay_xm_find(b, &part, "functionResponse", &fc)) {
                continue;
            }

            ngx_ai_relay_xm_find(b, &fc, "name", &name);
            ngx_ai_relay_xm_find(b, &fc, "response", &x);

            if (name.type != NGX_AI_RELAY_JSON_STRING) {
                return ngx_ai_relay_xlate_fail(rq, "a functionResponse needs "
                                               "a name");
            }

            ngx_ai_relay_jw_raw(w, ",", n ? 1 : 0);
            n++;
            ngx_ai_relay_jw_lit(w, "{\"role\":\"tool\",\"tool_call_id\":");
            ngx_ai_relay_xm_find(b, &fc, "id", &id);

            if (id.type == NGX_AI_RELAY_JSON_STRING
                || prev.type != NGX_AI_RELAY_JSON_ARRAY
                || !ngx_ai_relay_g2o_answered_id(w, b, &prev, &parts, &fc,
                                                 &name))
            {
                ngx_ai_relay_g2o_call_id(w, b, &fc, &name, k);
            }

            ngx_ai_relay_jw_lit(w, ",\"content\":");

            if (x.type == NGX_AI_RELAY_JSON_NONE) {
                ngx_ai_relay_jw_lit(w, "\"\"");

            } else {
                ngx_ai_relay_jw_str(w, b + x.value_start,
                                    x.value_end - x.value_start);
            }

            ngx_ai_relay_jw_lit(w, "}");
            k++;
        }

        ppos = 0;
        parts_n = 0;

        while (ngx_ai_relay_json_array_next(b, &parts, &ppos, &part)) {
            if (ngx_ai_relay_xm_find(b, &part, "functionResponse", &fc)) {
                continue;
            }

            if (parts_n == 0) {
                ngx_ai_relay_jw_raw(w, ",", n ? 1 : 0);
                n++;
                ngx_ai_relay_jw_lit(w, "{\"role\":\"user\",\"content\":[");

            } else {
                ngx_ai_relay_jw_lit(w, ",");
            }

            parts_n++;

            ngx_ai_relay_xm_find(b, &part, "text", &t);

            if (t.type == NGX_AI_RELAY_JSON_STRING) {
                ngx_ai_relay_jw_lit(w, "{\"type\":\"text\",\"text\":");
                ngx_ai_relay_xm_raw(w, b, &t);
                ngx_ai_relay_jw_lit(w, "}");
                continue;
            }

            if (ngx_ai_relay_xm_find(b, &part, "inlineData", &x)) {
                ngx_ai_relay_xm_find(b, &x, "mimeType", &t);
                ngx_ai_relay_xm_find(b, &x, "data", &mem);

                if (t.type != NGX_AI_RELAY_JSON_STRING
                    || mem.type != NGX_AI_RELAY_JSON_STRING
                    || t.value_end - t.value_start < 8
                    || memcmp(b + t.value_start + 1, "image/", 6) != 0)
                {
                    return ngx_ai_relay_xlate_fail(rq, "only inline images "
                                           "can be sent to this model's "
                                           "channel (OpenAI)");
                }

                ngx_ai_relay_jw_lit(w, "{\"type\":\"image_url\","
                                    "\"image_url\":{\"url\":\"data:");
                ngx_ai_relay_jw_raw(w, b + t.value_start + 1,
                                    t.value_end - t.value_start - 2);
                ngx_ai_relay_jw_lit(w, ";base64,");
                ngx_ai_relay_jw_raw(w, b + mem.value_start + 1,
                                    mem.value_end - mem.value_start - 2);
                ngx_ai_relay_jw_lit(w, "\"}}");
                continue;
            }

            return ngx_ai_relay_xlate_fail(rq, "user parts other than text, "
                                           "inline images and function "
                                           "responses cannot be sent to "
                                           "this model's channel (OpenAI)");
        }

        if (parts_n) {
            ngx_ai_relay_jw_lit(w, "]}");
        }
    }

    if (n == 0) {
        return ngx_ai_relay_xlate_fail(rq, "contents must not be empty");
    }

    ngx_ai_relay_jw_lit(w, "]");

    /* generationConfig: what OpenAI has */

    if (cfg.type == NGX_AI_RELAY_JSON_OBJECT) {

#define ngx_ai_relay_cfg(gname, oname)                                        \
        if (ngx_ai_relay_xm_find(b, &cfg, gname, &t)                          \
            && !ngx_ai_relay_xm_null(&t))                                     \
        {                                                                     \
            ngx_ai_relay_jw_lit(w, ",\"" oname "\":");                        \
            ngx_ai_relay_xm_raw(w, b, &t);                                    \
        }

        /* with thinking: max_completion_tokens, as from Anthropic */

        if (ngx_ai_relay_xm_find(b, &cfg, "thinkingConfig", &x)
            && ngx_ai_relay_xm_find(b, &x, "thinkingBudget", &t)
            && ngx_ai_relay_json_member_int(b, &t, &v)
               == NGX_AI_RELAY_JSON_GET_OK
            && v != 0)
        {
            ngx_ai_relay_cfg("maxOutputTokens", "max_completion_tokens");

        } else {
            ngx_ai_relay_cfg("maxOutputTokens", "max_tokens");
        }

        if (ngx_ai_relay_xm_find(b, &cfg, "maxOutputTokens", &t)
            && ngx_ai_relay_json_member_int(b, &t, &v)
               == NGX_AI_RELAY_JSON_GET_OK)
        {
            rq->max_out = v;
        }
        ngx_ai_relay_cfg("temperature", "temperature");
        ngx_ai_relay_cfg("topP", "top_p");
        ngx_ai_relay_cfg("stopSequences", "stop");
        ngx_ai_relay_cfg("presencePenalty", "presence_penalty");
        ngx_ai_relay_cfg("frequencyPenalty", "frequency_penalty");
        ngx_ai_relay_cfg("seed", "seed");

#undef ngx_ai_relay_cfg

        if (ngx_ai_relay_xm_find(b, &cfg, "candidateCount", &t)
            && ngx_ai_relay_json_member_int(b, &t, &v)
               == NGX_AI_RELAY_JSON_GET_OK
            && v != 1)
        {
            return ngx_ai_relay_xlate_fail(rq, "candidateCount other than 1 "
                                           "cannot be sent to this model's "
                                           "channel (OpenAI)");
        }

        if (ngx_ai_relay_xm_find(b, &cfg, "responseMimeType", &t)) {
            if (ngx_ai_relay_xm_is(b, &t, "application/json")) {
                ngx_ai_relay_jw_lit(w, ",\"response_format\":"
                                    "{\"type\":\"json_object\"}");

            } else if (!ngx_ai_relay_xm_is(b, &t, "text/plain")) {
                return ngx_ai_relay_xlate_fail(rq, "this responseMimeType "
                                               "cannot be sent to this "
                                               "model's channel (OpenAI)");
            }
        }

        if (ngx_ai_relay_xm_find(b, &cfg, "thinkingConfig", &x)
            && ngx_ai_relay_xm_find(b, &x, "thinkingBudget", &t)
            && ngx_ai_relay_json_member_int(b, &t, &v)
               == NGX_AI_RELAY_JSON_GET_OK
            && v != 0)
        {
            ngx_ai_relay_jw_lit(w, ",\"reasoning_effort\":");

            if (v > 0 && v < NGX_AI_RELAY_XLATE_BUDGET_MEDIUM) {
                ngx_ai_relay_jw_lit(w, "\"low\"");

            } else if (v > 0 && v < NGX_AI_RELAY_XLATE_BUDGET_HIGH) {
                ngx_ai_relay_jw_lit(w, "\"medium\"");

            } else {
                ngx_ai_relay_jw_lit(w, "\"high\"");
            }
        }

    } else if (!ngx_ai_relay_xm_null(&cfg)) {
        return ngx_ai_relay_xlate_fail(rq, "generationConfig must be an "
                                       "object");
    }

    if (rq->stream) {
        ngx_ai_relay_jw_lit(w, ",\"stream\":true,\"stream_options\":"
                            "{\"include_usage\":true}");
    }

    /* tools: function declarations only */

    m = ngx_ai_relay_top("tools");
    if (m.type == NGX_AI_RELAY_JSON_ARRAY && !ngx_ai_relay_xm_zero(b, &m)) {
        ngx_ai_relay_jw_lit(w, ",\"tools\":[");
        pos = 0;
        k = 0;

        while (ngx_ai_relay_json_array_next(b, &m, &pos, &part)) {
            if (!ngx_ai_relay_xm_find(b, &part, "functionDeclarations", &x)
                || x.type != NGX_AI_RELAY_JSON_ARRAY)
            {
                return ngx_ai_relay_xlate_fail(rq, "only functionDeclarations "
                                               "tools can be sent to this "
                                               "model's channel (OpenAI)");
            }

            ppos = 0;

            while (ngx_ai_relay_json_array_next(b, &x, &ppos, &fc)) {
                ngx_ai_relay_xm_find(b, &fc, "name", &name);

                if (name.type != NGX_AI_RELAY_JSON_STRING) {
                    return ngx_ai_relay_xlate_fail(rq, "a function "
                                                   "declaration needs a "
                                                   "name");
                }

                ngx_ai_relay_jw_raw(w, ",", k ? 1 : 0);
                k++;

                ngx_ai_relay_jw_lit(w, "{\"type\":\"function\",\"function\":"
                                    "{\"name\":");
                ngx_ai_relay_xm_raw(w, b, &name);

                ngx_ai_relay_xm_find(b, &fc, "description", &t);
                if (t.type == NGX_AI_RELAY_JSON_STRING) {
                    ngx_ai_relay_jw_lit(w, ",\"description\":");
                    ngx_ai_relay_xm_raw(w, b, &t);
                }

                if ((ngx_ai_relay_xm_find(b, &fc, "parametersJsonSchema", &t)
                     || ngx_ai_relay_xm_find(b, &fc, "parameters", &t))
                    && t.type == NGX_AI_RELAY_JSON_OBJECT)
                {
                    ngx_ai_relay_jw_lit(w, ",\"parameters\":");
                    ngx_ai_relay_xm_raw(w, b, &t);
                }

                ngx_ai_relay_jw_lit(w, "}}");
            }
        }

        ngx_ai_relay_jw_lit(w, "]");
    }

    m = ngx_ai_relay_top("toolConfig");
    ngx_ai_relay_xm_find(b, &m, "functionCallingConfig", &x);

    if (x.type == NGX_AI_RELAY_JSON_OBJECT) {
        ngx_ai_relay_xm_find(b, &x, "mode", &t);
        ngx_ai_relay_xm_find(b, &x, "allowedFunctionNames", &mem);

        ngx_ai_relay_jw_lit(w, ",\"tool_choice\":");

        if (ngx_ai_relay_xm_is(b, &t, "NONE")) {
            ngx_ai_relay_jw_lit(w, "\"none\"");

        } else if (ngx_ai_relay_xm_is(b, &t, "ANY")) {
            ppos = 0;

            if (mem.type == NGX_AI_RELAY_JSON_ARRAY
                && ngx_ai_relay_json_array_next(b, &mem, &ppos, &name))
            {
                if (ngx_ai_relay_json_array_next(b, &mem, &ppos, &fc)) {
                    return ngx_ai_relay_xlate_fail(rq, "more than one "
                                   "allowedFunctionNames cannot be sent to "
                                   "this model's channel (OpenAI)");
                }

                ngx_ai_relay_jw_lit(w, "{\"type\":\"function\",\"function\":"
                                    "{\"name\":");
                ngx_ai_relay_xm_raw(w, b, &name);
                ngx_ai_relay_jw_lit(w, "}}");

            } else {
                ngx_ai_relay_jw_lit(w, "\"required\"");
            }

        } else {
            ngx_ai_relay_jw_lit(w, "\"auto\"");
        }
    }

    ngx_ai_relay_jw_lit(w, "}");

#undef ngx_ai_relay_top

    return NGX_AI_RELAY_XLATE_OK;
}


/* --------------------------------------------- OpenAI -> Gemini, answers */

const char *
ngx_ai_relay_xlate_gemini_reason(const u_char *p, size_t len)
{
#define ngx_ai_relay_eq(s)                                                    \
    (len == sizeof(s) - 1 && memcmp(p, s, len) == 0)

    if (ngx_ai_relay_eq("length")) {
        return "MAX_TOKENS";
    }

    if (ngx_ai_relay_eq("content_filter")) {
        return "SAFETY";
    }

    return "STOP";

#undef ngx_ai_relay_eq
}


/* Gemini's usageMetadata from OpenAI's counters */

void
ngx_ai_relay_xlate_gemini_meta(ngx_ai_relay_jw_t *w, int64_t prompt,
    int64_t completion, int64_t cached, int64_t reasoning)
{
    ngx_ai_relay_jw_lit(w, "{\"promptTokenCount\":");
    ngx_ai_relay_jw_int(w, prompt);
    ngx_ai_relay_jw_lit(w, ",\"candidatesTokenCount\":");
    ngx_ai_relay_jw_int(w, completion > reasoning ? completion - reasoning
                                                  : 0);
    ngx_ai_relay_jw_lit(w, ",\"totalTokenCount\":");
    ngx_ai_relay_jw_int(w, prompt + completion);
    ngx_ai_relay_jw_lit(w, ",\"cachedContentTokenCount\":");
    ngx_ai_relay_jw_int(w, cached);
    ngx_ai_relay_jw_lit(w, ",\"thoughtsTokenCount\":");
    ngx_ai_relay_jw_int(w, reasoning);
    ngx_ai_relay_jw_lit(w, "}");
}


static int
ngx_ai_relay_o2g_response(const u_char *b, ngx_ai_relay_json_scan_t *scan,
    ngx_ai_relay_jw_t *w)
{
    int                 n;
    u_char             *args;
    size_t              pos, len;
    int64_t             cached, reasoning;
    const char         *reason;
    ngx_ai_relay_xm_t   choice, msg, t, x, calls, tc, fn, a, details;
    ngx_ai_relay_xm_t  *id, *model, *choices, *usage;

    id = ngx_ai_relay_json_find(scan, b, "id", 2);
    model = ngx_ai_relay_json_find(scan, b, "model", 5);
    choices = ngx_ai_relay_json_find(scan, b, "choices", 7);
    usage = ngx_ai_relay_json_find(scan, b, "usage", 5);

    pos = 0;

    if (choices == NULL
        || !ngx_ai_relay_json_array_next(b, choices, &pos, &choice))
    {
        return NGX_AI_RELAY_XLATE_ERROR;
    }

    ngx_ai_relay_xm_find(b, &choice, "message", &msg);

    ngx_ai_relay_jw_lit(w, "{\"candidates\":[{\"content\":{\"role\":"
                        "\"model\",\"parts\":[");
    n = 0;

    ngx_ai_relay_xm_find(b, &msg, "reasoning_content", &t);
    if (t.type == NGX_AI_RELAY_JSON_STRING && !ngx_ai_relay_xm_zero(b, &t)) {
        ngx_ai_relay_jw_lit(w, "{\"text\":");
        ngx_ai_relay_xm_raw(w, b, &t);
        ngx_ai_relay_jw_lit(w, ",\"thought\":true}");
        n++;
    }

    ngx_ai_relay_xm_find(b, &msg, "content", &t);
    if (t.type == NGX_AI_RELAY_JSON_STRING) {
        ngx_ai_relay_jw_raw(w, ",", n ? 1 : 0);
        ngx_ai_relay_jw_lit(w, "{\"text\":");
        ngx_ai_relay_xm_raw(w, b, &t);
        ngx_ai_relay_jw_lit(w, "}");
        n++;
    }

    ngx_ai_relay_xm_find(b, &msg, "tool_calls", &calls);

    if (calls.type == NGX_AI_RELAY_JSON_ARRAY) {
        pos = 0;

        while (ngx_ai_relay_json_array_next(b, &calls, &pos, &tc)) {
            ngx_ai_relay_xm_find(b, &tc, "id", &t);
            ngx_ai_relay_xm_find(b, &tc, "function", &fn);
            ngx_ai_relay_xm_find(b, &fn, "name", &x);
            ngx_ai_relay_xm_find(b, &fn, "arguments", &a);

            if (x.type != NGX_AI_RELAY_JSON_STRING) {
                return NGX_AI_RELAY_XLATE_ERROR;
            }

            ngx_ai_relay_jw_raw(w, ",", n ? 1 : 0);
            n++;

            ngx_ai_relay_jw_lit(w, "{\"functionCall\":{");

            if (t.type == NGX_AI_RELAY_JSON_STRING) {
                ngx_ai_relay_jw_lit(w, "\"id\":");
                ngx_ai_relay_xm_raw(w, b, &t);
                ngx_ai_relay_jw_lit(w, ",");
            }

            ngx_ai_relay_jw_lit(w, "\"name\":");
            ngx_ai_relay_xm_raw(w, b, &x);
            ngx_ai_relay_jw_lit(w, ",\"args\":");

            args = NULL;
            len = 0;

            if (a.type == NGX_AI_RELAY_JSON_STRING) {
                args = ngx_ai_relay_xm_decode(w, b, &a, &len);
            }

            if (args && ngx_ai_relay_json_object_text(args, len)) {
                ngx_ai_relay_jw_raw(w, args, len);

            } else {
                ngx_ai_relay_jw_lit(w, "{}");
            }

            ngx_ai_relay_jw_lit(w, "}}");
        }
    }

    if (n == 0) {
        ngx_ai_relay_jw_lit(w, "{\"text\":\"\"}");
    }

    ngx_ai_relay_jw_lit(w, "]},\"finishReason\":");

    ngx_ai_relay_xm_find(b, &choice, "finish_reason", &t);

    if (t.type == NGX_AI_RELAY_JSON_STRING) {
        reason = ngx_ai_relay_xlate_gemini_reason(b + t.value_start + 1,
                                                  t.value_end - t.value_start
                                                  - 2);
        ngx_ai_relay_jw_raw(w, "\"", 1);
        ngx_ai_relay_jw_raw(w, reason, strlen(reason));
        ngx_ai_relay_jw_raw(w, "\"", 1);

    } else {
        ngx_ai_relay_jw_lit(w, "\"STOP\"");
    }

    ngx_ai_relay_jw_lit(w, ",\"index\":0}],\"usageMetadata\":");

    ngx_ai_relay_xm_find(b, usage, "prompt_tokens_details", &details);
    cached = ngx_ai_relay_xm_int(b, &details, "cached_tokens");

    if (cached == 0) {
        cached = ngx_ai_relay_xm_int(b, usage, "prompt_cache_hit_tokens");
    }

    ngx_ai_relay_xm_find(b, usage, "completion_tokens_details", &details);
    reasoning = ngx_ai_relay_xm_int(b, &details, "reasoning_tokens");

    ngx_ai_relay_xlate_gemini_meta(w,
        ngx_ai_relay_xm_int(b, usage, "prompt_tokens"),
        ngx_ai_relay_xm_int(b, usage, "completion_tokens"), cached,
        reasoning);

    ngx_ai_relay_jw_lit(w, ",\"modelVersion\":");

    if (model && model->type == NGX_AI_RELAY_JSON_STRING) {
        ngx_ai_relay_xm_raw(w, b, model);

    } else {
        ngx_ai_relay_jw_lit(w, "\"\"");
    }

    ngx_ai_relay_jw_lit(w, ",\"responseId\":");

    if (id && id->type == NGX_AI_RELAY_JSON_STRING) {
        ngx_ai_relay_xm_raw(w, b, id);

    } else {
        ngx_ai_relay_jw_lit(w, "\"relay\"");
    }

    ngx_ai_relay_jw_lit(w, "}");

    return NGX_AI_RELAY_XLATE_OK;
}
