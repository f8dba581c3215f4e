
/*
 * Copyright (C) ngx_ai_relay authors
 *
 * Streams translated event by event between Anthropic messages and
 * OpenAI chat completions (see ngx_ai_relay_xlate.h).  Each source event
 * is read whole (it is small) and gives zero or more complete events of
 * the client's format at once: nothing waits for the end of the stream
 * but what only the end can say (OpenAI's usage chunk, Anthropic's
 * message_delta when OpenAI sends its usage after finish_reason).
 */


#include <string.h>

#include "ngx_ai_relay_xlate.h"


typedef ngx_ai_relay_json_member_t  ngx_ai_relay_xm_t;


#define NGX_AI_RELAY_XS_MEMBERS   64

#define NGX_AI_RELAY_XS_TEXT      1
#define NGX_AI_RELAY_XS_THINKING  2
#define NGX_AI_RELAY_XS_TOOL      3


static int ngx_ai_relay_xs_event_one(ngx_ai_relay_xlate_sse_t *x,
    const u_char *data, size_t len);
static int ngx_ai_relay_xs_finish_one(ngx_ai_relay_xlate_sse_t *x);
static int ngx_ai_relay_xs_a2o(ngx_ai_relay_xlate_sse_t *x,
    const u_char *b, ngx_ai_relay_json_scan_t *scan);
static int ngx_ai_relay_xs_o2a(ngx_ai_relay_xlate_sse_t *x,
    const u_char *b, ngx_ai_relay_json_scan_t *scan);
static void ngx_ai_relay_xs_o2a_end(ngx_ai_relay_xlate_sse_t *x);
static int ngx_ai_relay_xs_g2o(ngx_ai_relay_xlate_sse_t *x,
    const u_char *b, ngx_ai_relay_json_scan_t *scan);
static void ngx_ai_relay_xs_g2o_end(ngx_ai_relay_xlate_sse_t *x);
static int ngx_ai_relay_xs_o2g(ngx_ai_relay_xlate_sse_t *x,
    const u_char *b, ngx_ai_relay_json_scan_t *scan);
static void ngx_ai_relay_xs_o2g_end(ngx_ai_relay_xlate_sse_t *x);


void
ngx_ai_relay_xlate_sse_init(ngx_ai_relay_xlate_sse_t *x,
    ngx_ai_relay_format_e from, ngx_ai_relay_format_e to,
    ngx_ai_relay_xlate_alloc_pt alloc, void *data)
{
    ngx_ai_relay_xlate_sse_t  *next;

    if (ngx_ai_relay_xlate_chained(from, to)) {

        /*
         * Anthropic <-> Gemini: this step to OpenAI's chunks (with their
         * usage chunk), the next from them; NULL next: out of memory,
         * said by the first event
         */

        ngx_ai_relay_xlate_sse_init(x, from, NGX_AI_RELAY_FMT_OPENAI_CHAT,
                                    alloc, data);
        x->include_usage = 1;

        next = alloc(data, sizeof(ngx_ai_relay_xlate_sse_t));

        if (next == NULL) {
            x->out.failed = 1;
            return;
        }

        ngx_ai_relay_xlate_sse_init(next, NGX_AI_RELAY_FMT_OPENAI_CHAT, to,
                                    alloc, data);
        x->next = next;
        return;
    }

    memset(x, 0, sizeof(ngx_ai_relay_xlate_sse_t));

    x->from = from;
    x->to = to;
    x->tool_of_block = -1;
    x->tool_open = -1;
    x->block_index = -1;

    ngx_ai_relay_jw_init(&x->out, alloc, data);
    ngx_ai_relay_jw_init(&x->mid, alloc, data);
    ngx_ai_relay_jw_init(&x->calls, alloc, data);
    ngx_ai_relay_jw_init(&x->args, alloc, data);
}


/*
 * Chained: the OpenAI chunks this step wrote go through the next step,
 * one by one, and what it writes becomes this step's output.
 */

static int
ngx_ai_relay_xs_pipe(ngx_ai_relay_xlate_sse_t *x)
{
    u_char                    *p, *last, *end;
    ngx_ai_relay_xlate_sse_t  *next;

    next = x->next;

    if (x->out.len == 0) {
        return NGX_AI_RELAY_XLATE_OK;
    }

    x->mid.len = 0;
    ngx_ai_relay_jw_raw(&x->mid, x->out.buf, x->out.len);
    x->out.len = 0;

    if (x->mid.failed) {
        return NGX_AI_RELAY_XLATE_ERROR;
    }

    p = x->mid.buf;
    last = p + x->mid.len;

    /* "data: <one line>\n\n" each: this step writes nothing else */

    while (p < last) {
        end = memchr(p, '\n', last - p);

        if (end == NULL) {
            break;
        }

        if (end - p > 6 && memcmp(p, "data: ", 6) == 0
            && ngx_ai_relay_xlate_sse_event(next, NULL, 0, p + 6,
                                            end - p - 6)
               != NGX_AI_RELAY_XLATE_OK)
        {
            return NGX_AI_RELAY_XLATE_ERROR;
        }

        p = end + 1;
    }

    ngx_ai_relay_jw_raw(&x->out, next->out.buf, next->out.len);
    next->out.len = 0;

    return x->out.failed ? NGX_AI_RELAY_XLATE_ERROR : NGX_AI_RELAY_XLATE_OK;
}


/* a non-empty string */

static int
ngx_ai_relay_xs_text(const ngx_ai_relay_xm_t *m)
{
    return m->type == NGX_AI_RELAY_JSON_STRING
           && m->value_end - m->value_start > 2;
}


static int64_t
ngx_ai_relay_xs_int(const u_char *b, const ngx_ai_relay_xm_t *obj,
    const char *name, int64_t dflt)
{
    int64_t            v;
    ngx_ai_relay_xm_t  m;

    if (!ngx_ai_relay_xm_find(b, obj, name, &m)
        || ngx_ai_relay_json_member_int(b, &m, &v) != NGX_AI_RELAY_JSON_GET_OK
        || v < 0)
    {
        return dflt;
    }

    return v;
}


/* a string's JSON text, quotes included, kept for later events */

static void
ngx_ai_relay_xs_keep(u_char *dst, size_t *len, size_t size, const u_char *b,
    const ngx_ai_relay_xm_t *m)
{
    size_t  n;

    n = m->value_end - m->value_start;

    if (m->type != NGX_AI_RELAY_JSON_STRING || n > size) {
        return;
    }

    memcpy(dst, b + m->value_start, n);
    *len = n;
}


/*
 * The model the client's events name, whatever the upstream's say
 * (ai_relay_response_model client): as a JSON string; a name longer
 * than the room for it leaves the upstream's.
 */

void
ngx_ai_relay_xlate_sse_model(ngx_ai_relay_xlate_sse_t *x,
    const u_char *name, size_t len)
{
    for ( /* void */ ; x; x = x->next) {

        if (ngx_ai_relay_json_quote_len(name, len) > sizeof(x->model)) {
            return;
        }

        ngx_ai_relay_json_quote(x->model, name, len);
        x->model_len = ngx_ai_relay_json_quote_len(name, len);
        x->model_fixed = 1;
    }
}


int
ngx_ai_relay_xlate_sse_event(ngx_ai_relay_xlate_sse_t *x, const u_char *name,
    size_t name_len, const u_char *data, size_t len)
{
    int  rc;

    if (x->next == NULL) {
        return x->out.failed ? NGX_AI_RELAY_XLATE_ERROR
                             : ngx_ai_relay_xs_event_one(x, data, len);
    }

    /* the next step needs the usage chunk, whatever the caller set */
    x->include_usage = 1;

    rc = ngx_ai_relay_xs_event_one(x, data, len);

    if (rc != NGX_AI_RELAY_XLATE_OK) {
        return rc;
    }

    return ngx_ai_relay_xs_pipe(x);
}


static int
ngx_ai_relay_xs_event_one(ngx_ai_relay_xlate_sse_t *x, const u_char *data,
    size_t len)
{
    ngx_ai_relay_xm_t         members[NGX_AI_RELAY_XS_MEMBERS];
    ngx_ai_relay_json_scan_t  scan;

    if (x->finished) {
        return NGX_AI_RELAY_XLATE_OK;
    }

    if (x->from == NGX_AI_RELAY_FMT_OPENAI_CHAT
        && len == sizeof("[DONE]") - 1 && memcmp(data, "[DONE]", len) == 0)
    {
        if (x->to == NGX_AI_RELAY_FMT_GEMINI) {
            if (x->started) {
                ngx_ai_relay_xs_o2g_end(x);
            }

            return x->out.failed || x->calls.failed || x->args.failed
                   ? NGX_AI_RELAY_XLATE_ERROR : NGX_AI_RELAY_XLATE_OK;
        }

        ngx_ai_relay_xs_o2a_end(x);
        return x->out.failed ? NGX_AI_RELAY_XLATE_ERROR
                             : NGX_AI_RELAY_XLATE_OK;
    }

    ngx_ai_relay_json_scan_init(&scan, members, NGX_AI_RELAY_XS_MEMBERS);

    if (len == 0 || ngx_ai_relay_json_scan(&scan, data, len)
                    != NGX_AI_RELAY_JSON_OK)
    {
        /* nothing the client could use: not passed on */
        return NGX_AI_RELAY_XLATE_OK;
    }

    if (x->from == NGX_AI_RELAY_FMT_ANTHROPIC_MESSAGES) {
        (void) ngx_ai_relay_xs_a2o(x, data, &scan);

    } else if (x->from == NGX_AI_RELAY_FMT_GEMINI) {
        (void) ngx_ai_relay_xs_g2o(x, data, &scan);

    } else if (x->to == NGX_AI_RELAY_FMT_GEMINI) {
        (void) ngx_ai_relay_xs_o2g(x, data, &scan);

    } else {
        (void) ngx_ai_relay_xs_o2a(x, data, &scan);
    }

    return (x->out.failed || x->calls.failed || x->args.failed)
           ? NGX_AI_RELAY_XLATE_ERROR : NGX_AI_RELAY_XLATE_OK;
}


int
ngx_ai_relay_xlate_sse_finish(ngx_ai_relay_xlate_sse_t *x)
{
    int                        rc;
    ngx_ai_relay_xlate_sse_t  *next;

    next = x->next;

    if (next) {
        x->include_usage = 1;
        rc = ngx_ai_relay_xs_finish_one(x);

        if (rc == NGX_AI_RELAY_XLATE_OK) {
            rc = ngx_ai_relay_xs_pipe(x);
        }

        if (rc != NGX_AI_RELAY_XLATE_OK
            || ngx_ai_relay_xlate_sse_finish(next) != NGX_AI_RELAY_XLATE_OK)
        {
            return NGX_AI_RELAY_XLATE_ERROR;
        }

        ngx_ai_relay_jw_raw(&x->out, next->out.buf, next->out.len);
        next->out.len = 0;

        return x->out.failed ? NGX_AI_RELAY_XLATE_ERROR
                             : NGX_AI_RELAY_XLATE_OK;
    }

    return ngx_ai_relay_xs_finish_one(x);
}


static int
ngx_ai_relay_xs_finish_one(ngx_ai_relay_xlate_sse_t *x)
{
    if (x->finished) {
        return NGX_AI_RELAY_XLATE_OK;
    }

    /*
     * OpenAI upstreams that end without [DONE] after their finish_reason
     * still end the answer; a stream cut before it is left cut
     */

    if (x->from == NGX_AI_RELAY_FMT_OPENAI_CHAT && x->stopped) {
        if (x->to == NGX_AI_RELAY_FMT_GEMINI) {
            ngx_ai_relay_xs_o2g_end(x);

        } else {
            ngx_ai_relay_xs_o2a_end(x);
        }
    }

    /* Gemini says nothing after its last chunk: the end is the end */

    if (x->from == NGX_AI_RELAY_FMT_GEMINI && x->stopped) {
        ngx_ai_relay_xs_g2o_end(x);
    }

    return x->out.failed ? NGX_AI_RELAY_XLATE_ERROR : NGX_AI_RELAY_XLATE_OK;
}


/* --------------------------------------- Anthropic -> OpenAI chunks */

static void
ngx_ai_relay_xs_chunk_open(ngx_ai_relay_xlate_sse_t *x)
{
    ngx_ai_relay_jw_t  *w;

    w = &x->out;

    ngx_ai_relay_jw_lit(w, "data: {\"id\":");

    if (x->id_len) {
        ngx_ai_relay_jw_raw(w, x->id, x->id_len);

    } else {
        ngx_ai_relay_jw_lit(w, "\"chatcmpl-relay\"");
    }

    ngx_ai_relay_jw_lit(w, ",\"object\":\"chat.completion.chunk\","
                        "\"created\":");
    ngx_ai_relay_jw_int(w, x->created);
    ngx_ai_relay_jw_lit(w, ",\"model\":");

    if (x->model_len) {
        ngx_ai_relay_jw_raw(w, x->model, x->model_len);

    } else {
        ngx_ai_relay_jw_lit(w, "\"\"");
    }

    ngx_ai_relay_jw_lit(w, ",\"choices\":[{\"index\":0,\"delta\":");
}


static void
ngx_ai_relay_xs_chunk_close(ngx_ai_relay_xlate_sse_t *x, const char *finish)
{
    ngx_ai_relay_jw_t  *w;

    w = &x->out;

    ngx_ai_relay_jw_lit(w, ",\"finish_reason\":");

    if (finish) {
        ngx_ai_relay_jw_raw(w, "\"", 1);
        ngx_ai_relay_jw_raw(w, finish, strlen(finish));
        ngx_ai_relay_jw_raw(w, "\"", 1);

    } else {
        ngx_ai_relay_jw_lit(w, "null");
    }

    ngx_ai_relay_jw_lit(w, "}]}\n\n");
}


static void
ngx_ai_relay_xs_a2o_usage(ngx_ai_relay_xlate_sse_t *x, const u_char *b,
    const ngx_ai_relay_xm_t *usage)
{
    if (usage->type != NGX_AI_RELAY_JSON_OBJECT) {
        return;
    }

    x->usage_seen = 1;
    x->in_tokens = ngx_ai_relay_xs_int(b, usage, "input_tokens",
                                       x->in_tokens);
    x->out_tokens = ngx_ai_relay_xs_int(b, usage, "output_tokens",
                                        x->out_tokens);
    x->cache_read = ngx_ai_relay_xs_int(b, usage, "cache_read_input_tokens",
                                        x->cache_read);
    x->cache_write = ngx_ai_relay_xs_int(b, usage,
                                         "cache_creation_input_tokens",
                                         x->cache_write);
}


static int
ngx_ai_relay_xs_a2o(ngx_ai_relay_xlate_sse_t *x, const u_char *b,
    ngx_ai_relay_json_scan_t *scan)
{
    int64_t             index;
    const char         *finish;
    ngx_ai_relay_jw_t  *w;
    ngx_ai_relay_xm_t   m, t, u, blk;
    ngx_ai_relay_xm_t  *type, *msg, *delta, *usage, *cb, *err;

    w = &x->out;
    type = ngx_ai_relay_json_find(scan, b, "type", 4);

    if (type == NULL) {
        return NGX_AI_RELAY_XLATE_OK;
    }

    if (ngx_ai_relay_xm_is(b, type, "message_start")) {
        msg = ngx_ai_relay_json_find(scan, b, "message", 7);

        ngx_ai_relay_xm_find(b, msg, "id", &m);
        ngx_ai_relay_xs_keep(x->id, &x->id_len, sizeof(x->id), b, &m);
        ngx_ai_relay_xm_find(b, msg, "model", &m);
        if (!x->model_fixed) {
            ngx_ai_relay_xs_keep(x->model, &x->model_len, sizeof(x->model),
                                 b, &m);
        }
        ngx_ai_relay_xm_find(b, msg, "usage", &u);
        ngx_ai_relay_xs_a2o_usage(x, b, &u);

        x->started = 1;

        ngx_ai_relay_xs_chunk_open(x);
        ngx_ai_relay_jw_lit(w, "{\"role\":\"assistant\",\"content\":\"\"}");
        ngx_ai_relay_xs_chunk_close(x, NULL);
        return NGX_AI_RELAY_XLATE_OK;
    }

    if (ngx_ai_relay_xm_is(b, type, "content_block_start")) {
        cb = ngx_ai_relay_json_find(scan, b, "content_block", 13);
        index = -1;
        m.type = NGX_AI_RELAY_JSON_NONE;

        if (cb) {
            ngx_ai_relay_xm_find(b, cb, "type", &t);

            if (ngx_ai_relay_xm_is(b, &t, "tool_use")) {
                x->tool_of_block = x->tool_index++;

                ngx_ai_relay_xm_find(b, cb, "id", &m);
                ngx_ai_relay_xm_find(b, cb, "name", &u);

                if (m.type != NGX_AI_RELAY_JSON_STRING
                    || u.type != NGX_AI_RELAY_JSON_STRING)
                {
                    return NGX_AI_RELAY_XLATE_OK;
                }

                ngx_ai_relay_xs_chunk_open(x);
                ngx_ai_relay_jw_lit(w, "{\"tool_calls\":[{\"index\":");
                ngx_ai_relay_jw_int(w, x->tool_of_block);
                ngx_ai_relay_jw_lit(w, ",\"id\":");
                ngx_ai_relay_xm_raw(w, b, &m);
                ngx_ai_relay_jw_lit(w, ",\"type\":\"function\","
                                    "\"function\":{\"name\":");
                ngx_ai_relay_xm_raw(w, b, &u);
                ngx_ai_relay_jw_lit(w, ",\"arguments\":\"\"}}]}");
                ngx_ai_relay_xs_chunk_close(x, NULL);

            } else {
                x->tool_of_block = -1;

                /* a text block may start with text */

                ngx_ai_relay_xm_find(b, cb, "text", &m);

                if (ngx_ai_relay_xs_text(&m)) {
                    ngx_ai_relay_xs_chunk_open(x);
                    ngx_ai_relay_jw_lit(w, "{\"content\":");
                    ngx_ai_relay_xm_raw(w, b, &m);
                    ngx_ai_relay_jw_lit(w, "}");
                    ngx_ai_relay_xs_chunk_close(x, NULL);
                }
            }
        }

        (void) index;
        return NGX_AI_RELAY_XLATE_OK;
    }

    if (ngx_ai_relay_xm_is(b, type, "content_block_delta")) {
        delta = ngx_ai_relay_json_find(scan, b, "delta", 5);

        ngx_ai_relay_xm_find(b, delta, "type", &t);

        if (ngx_ai_relay_xm_is(b, &t, "text_delta")) {
            ngx_ai_relay_xm_find(b, delta, "text", &m);

            if (ngx_ai_relay_xs_text(&m)) {
                ngx_ai_relay_xs_chunk_open(x);
                ngx_ai_relay_jw_lit(w, "{\"content\":");
                ngx_ai_relay_xm_raw(w, b, &m);
                ngx_ai_relay_jw_lit(w, "}");
                ngx_ai_relay_xs_chunk_close(x, NULL);
            }

        } else if (ngx_ai_relay_xm_is(b, &t, "thinking_delta")) {
            ngx_ai_relay_xm_find(b, delta, "thinking", &m);

            if (ngx_ai_relay_xs_text(&m)) {
                ngx_ai_relay_xs_chunk_open(x);
                ngx_ai_relay_jw_lit(w, "{\"reasoning_content\":");
                ngx_ai_relay_xm_raw(w, b, &m);
                ngx_ai_relay_jw_lit(w, "}");
                ngx_ai_relay_xs_chunk_close(x, NULL);
            }

        } else if (ngx_ai_relay_xm_is(b, &t, "input_json_delta")) {
            ngx_ai_relay_xm_find(b, delta, "partial_json", &m);

            if (ngx_ai_relay_xs_text(&m) && x->tool_of_block >= 0) {
                ngx_ai_relay_xs_chunk_open(x);
                ngx_ai_relay_jw_lit(w, "{\"tool_calls\":[{\"index\":");
                ngx_ai_relay_jw_int(w, x->tool_of_block);
                ngx_ai_relay_jw_lit(w, ",\"function\":{\"arguments\":");
                ngx_ai_relay_xm_raw(w, b, &m);
                ngx_ai_relay_jw_lit(w, "}}]}");
                ngx_ai_relay_xs_chunk_close(x, NULL);
            }
        }

        return NGX_AI_RELAY_XLATE_OK;
    }

    if (ngx_ai_relay_xm_is(b, type, "message_delta")) {
        delta = ngx_ai_relay_json_find(scan, b, "delta", 5);
        usage = ngx_ai_relay_json_find(scan, b, "usage", 5);

        if (usage) {
            ngx_ai_relay_xs_a2o_usage(x, b, usage);
        }

        ngx_ai_relay_xm_find(b, delta, "stop_reason", &m);

        if (m.type == NGX_AI_RELAY_JSON_STRING) {
            finish = ngx_ai_relay_xlate_finish_reason(b + m.value_start + 1,
                                                      m.value_end
                                                      - m.value_start - 2);
            x->stopped = 1;

            ngx_ai_relay_xs_chunk_open(x);
            ngx_ai_relay_jw_lit(w, "{}");
            ngx_ai_relay_xs_chunk_close(x, finish);
        }

        return NGX_AI_RELAY_XLATE_OK;
    }

    if (ngx_ai_relay_xm_is(b, type, "message_stop")) {
        if (x->include_usage) {
            ngx_ai_relay_jw_lit(w, "data: {\"id\":");

            if (x->id_len) {
                ngx_ai_relay_jw_raw(w, x->id, x->id_len);

            } else {
                ngx_ai_relay_jw_lit(w, "\"chatcmpl-relay\"");
            }

            ngx_ai_relay_jw_lit(w, ",\"object\":\"chat.completion.chunk\","
                                "\"created\":");
            ngx_ai_relay_jw_int(w, x->created);
            ngx_ai_relay_jw_lit(w, ",\"model\":");

            if (x->model_len) {
                ngx_ai_relay_jw_raw(w, x->model, x->model_len);

            } else {
                ngx_ai_relay_jw_lit(w, "\"\"");
            }

            ngx_ai_relay_jw_lit(w, ",\"choices\":[],\"usage\":");
            ngx_ai_relay_xlate_openai_usage(w, x->in_tokens, x->out_tokens,
                                            x->cache_read, x->cache_write);
            ngx_ai_relay_jw_lit(w, "}\n\n");
        }

        ngx_ai_relay_jw_lit(w, "data: [DONE]\n\n");
        x->finished = 1;
        return NGX_AI_RELAY_XLATE_OK;
    }

    if (ngx_ai_relay_xm_is(b, type, "error")) {
        err = ngx_ai_relay_json_find(scan, b, "error", 5);

        ngx_ai_relay_xm_find(b, err, "type", &t);
        ngx_ai_relay_xm_find(b, err, "message", &m);

        ngx_ai_relay_jw_lit(w, "data: {\"error\":{\"type\":");

        if (t.type == NGX_AI_RELAY_JSON_STRING) {
            ngx_ai_relay_xm_raw(w, b, &t);

        } else {
            ngx_ai_relay_jw_lit(w, "\"api_error\"");
        }

        ngx_ai_relay_jw_lit(w, ",\"param\":null,\"code\":null,\"message\":");

        if (m.type == NGX_AI_RELAY_JSON_STRING) {
            ngx_ai_relay_xm_raw(w, b, &m);

        } else {
            ngx_ai_relay_jw_lit(w, "\"The upstream stream failed.\"");
        }

        ngx_ai_relay_jw_lit(w, "}}\n\n");
        return NGX_AI_RELAY_XLATE_OK;
    }

    /* ping, content_block_stop, signature deltas: nothing to say */

    (void) blk;

    return NGX_AI_RELAY_XLATE_OK;
}


/* --------------------------------------- OpenAI chunks -> Anthropic */

static void
ngx_ai_relay_xs_event(ngx_ai_relay_xlate_sse_t *x, const char *name)
{
    ngx_ai_relay_jw_lit(&x->out, "event: ");
    ngx_ai_relay_jw_raw(&x->out, name, strlen(name));
    ngx_ai_relay_jw_lit(&x->out, "\ndata: ");
}


static void
ngx_ai_relay_xs_block_stop(ngx_ai_relay_xlate_sse_t *x)
{
    if (!x->block_open) {
        return;
    }

    ngx_ai_relay_xs_event(x, "content_block_stop");
    ngx_ai_relay_jw_lit(&x->out, "{\"type\":\"content_block_stop\","
                        "\"index\":");
    ngx_ai_relay_jw_int(&x->out, x->block_index);
    ngx_ai_relay_jw_lit(&x->out, "}\n\n");

    x->block_open = 0;
    x->tool_open = -1;
}


/* a block of that type is open: the current one, or a new one */

static void
ngx_ai_relay_xs_block(ngx_ai_relay_xlate_sse_t *x, int type)
{
    if (x->block_open && x->block_type == type) {
        return;
    }

    ngx_ai_relay_xs_block_stop(x);

    x->block_index++;
    x->block_open = 1;
    x->block_type = type;

    ngx_ai_relay_xs_event(x, "content_block_start");
    ngx_ai_relay_jw_lit(&x->out, "{\"type\":\"content_block_start\","
                        "\"index\":");
    ngx_ai_relay_jw_int(&x->out, x->block_index);

    if (type == NGX_AI_RELAY_XS_TEXT) {
        ngx_ai_relay_jw_lit(&x->out, ",\"content_block\":{\"type\":\"text\","
                            "\"text\":\"\"}}\n\n");

    } else {
        ngx_ai_relay_jw_lit(&x->out, ",\"content_block\":{\"type\":"
                            "\"thinking\",\"thinking\":\"\","
                            "\"signature\":\"\"}}\n\n");
    }
}


static void
ngx_ai_relay_xs_delta(ngx_ai_relay_xlate_sse_t *x, const char *type,
    const char *field, const u_char *b, const ngx_ai_relay_xm_t *m)
{
    ngx_ai_relay_jw_t  *w;

    w = &x->out;

    ngx_ai_relay_xs_event(x, "content_block_delta");
    ngx_ai_relay_jw_lit(w, "{\"type\":\"content_block_delta\",\"index\":");
    ngx_ai_relay_jw_int(w, x->block_index);
    ngx_ai_relay_jw_lit(w, ",\"delta\":{\"type\":\"");
    ngx_ai_relay_jw_raw(w, type, strlen(type));
    ngx_ai_relay_jw_lit(w, "\",\"");
    ngx_ai_relay_jw_raw(w, field, strlen(field));
    ngx_ai_relay_jw_lit(w, "\":");
    ngx_ai_relay_xm_raw(w, b, m);
    ngx_ai_relay_jw_lit(w, "}}\n\n");
}


static void
ngx_ai_relay_xs_o2a_start(ngx_ai_relay_xlate_sse_t *x)
{
    ngx_ai_relay_jw_t  *w;

    if (x->started) {
        return;
    }

    x->started = 1;
    w = &x->out;

    ngx_ai_relay_xs_event(x, "message_start");
    ngx_ai_relay_jw_lit(w, "{\"type\":\"message_start\",\"message\":"
                        "{\"id\":");

    if (x->id_len) {
        ngx_ai_relay_jw_raw(w, x->id, x->id_len);

    } else {
        ngx_ai_relay_jw_lit(w, "\"msg_relay\"");
    }

    ngx_ai_relay_jw_lit(w, ",\"type\":\"message\",\"role\":\"assistant\","
                        "\"model\":");

    if (x->model_len) {
        ngx_ai_relay_jw_raw(w, x->model, x->model_len);

    } else {
        ngx_ai_relay_jw_lit(w, "\"\"");
    }

    ngx_ai_relay_jw_lit(w, ",\"content\":[],\"stop_reason\":null,"
                        "\"stop_sequence\":null,\"usage\":{"
                        "\"input_tokens\":0,\"output_tokens\":0}}}\n\n");
}


static int
ngx_ai_relay_xs_o2a(ngx_ai_relay_xlate_sse_t *x, const u_char *b,
    ngx_ai_relay_json_scan_t *scan)
{
    size_t              pos, n;
    int64_t             index;
    const char         *stop;
    ngx_ai_relay_jw_t  *w;
    ngx_ai_relay_xm_t   choice, delta, m, calls, tc, fn, a, name, details;
    ngx_ai_relay_xm_t  *id, *model, *choices, *usage, *err;

    w = &x->out;

    err = ngx_ai_relay_json_find(scan, b, "error", 5);

    if (err && err->type == NGX_AI_RELAY_JSON_OBJECT) {
        ngx_ai_relay_xm_find(b, err, "message", &m);

        ngx_ai_relay_xs_event(x, "error");
        ngx_ai_relay_jw_lit(w, "{\"type\":\"error\",\"error\":{\"type\":"
                            "\"api_error\",\"message\":");

        if (m.type == NGX_AI_RELAY_JSON_STRING) {
            ngx_ai_relay_xm_raw(w, b, &m);

        } else {
            ngx_ai_relay_jw_lit(w, "\"The upstream stream failed.\"");
        }

        ngx_ai_relay_jw_lit(w, "}}\n\n");
        return NGX_AI_RELAY_XLATE_OK;
    }

    if (!x->started) {
        id = ngx_ai_relay_json_find(scan, b, "id", 2);
        model = ngx_ai_relay_json_find(scan, b, "model", 5);

        if (id) {
            ngx_ai_relay_xs_keep(x->id, &x->id_len, sizeof(x->id), b, id);
        }

        if (model && !x->model_fixed) {
            ngx_ai_relay_xs_keep(x->model, &x->model_len, sizeof(x->model),
                                 b, model);
        }

        ngx_ai_relay_xs_o2a_start(x);
    }

    usage = ngx_ai_relay_json_find(scan, b, "usage", 5);

    if (usage && usage->type == NGX_AI_RELAY_JSON_OBJECT) {
        x->usage_seen = 1;
        x->in_tokens = ngx_ai_relay_xs_int(b, usage, "prompt_tokens", 0);
        x->out_tokens = ngx_ai_relay_xs_int(b, usage, "completion_tokens", 0);

        ngx_ai_relay_xm_find(b, usage, "prompt_tokens_details", &details);
        x->cache_read = ngx_ai_relay_xs_int(b, &details, "cached_tokens", 0);

        if (x->cache_read == 0) {
            x->cache_read = ngx_ai_relay_xs_int(b, usage,
                                                "prompt_cache_hit_tokens", 0);
        }
    }

    choices = ngx_ai_relay_json_find(scan, b, "choices", 7);
    pos = 0;

    if (choices == NULL
        || !ngx_ai_relay_json_array_next(b, choices, &pos, &choice))
    {
        if (x->stopped && x->usage_seen) {
            /* the usage chunk after finish_reason: the end is known */
            ngx_ai_relay_xs_o2a_end(x);
        }

        return NGX_AI_RELAY_XLATE_OK;
    }

    ngx_ai_relay_xm_find(b, &choice, "delta", &delta);

    ngx_ai_relay_xm_find(b, &delta, "reasoning_content", &m);

    if (!ngx_ai_relay_xs_text(&m)) {
        ngx_ai_relay_xm_find(b, &delta, "reasoning", &m);
    }

    if (ngx_ai_relay_xs_text(&m)) {
        ngx_ai_relay_xs_block(x, NGX_AI_RELAY_XS_THINKING);
        ngx_ai_relay_xs_delta(x, "thinking_delta", "thinking", b, &m);
    }

    ngx_ai_relay_xm_find(b, &delta, "content", &m);

    if (ngx_ai_relay_xs_text(&m)) {
        ngx_ai_relay_xs_block(x, NGX_AI_RELAY_XS_TEXT);
        ngx_ai_relay_xs_delta(x, "text_delta", "text", b, &m);
    }

    ngx_ai_relay_xm_find(b, &delta, "tool_calls", &calls);

    if (calls.type == NGX_AI_RELAY_JSON_ARRAY) {
        n = 0;

        while (ngx_ai_relay_json_array_next(b, &calls, &n, &tc)) {
            index = ngx_ai_relay_xs_int(b, &tc, "index", 0);

            ngx_ai_relay_xm_find(b, &tc, "id", &m);
            ngx_ai_relay_xm_find(b, &tc, "function", &fn);
            ngx_ai_relay_xm_find(b, &fn, "name", &name);
            ngx_ai_relay_xm_find(b, &fn, "arguments", &a);

            if (ngx_ai_relay_xs_text(&m) && index != x->tool_open) {

                /* a new call: a tool_use block */

                ngx_ai_relay_xs_block_stop(x);

                x->block_index++;
                x->block_open = 1;
                x->block_type = NGX_AI_RELAY_XS_TOOL;
                x->tool_open = index;

                ngx_ai_relay_xs_event(x, "content_block_start");
                ngx_ai_relay_jw_lit(w, "{\"type\":\"content_block_start\","
                                    "\"index\":");
                ngx_ai_relay_jw_int(w, x->block_index);
                ngx_ai_relay_jw_lit(w, ",\"content_block\":{\"type\":"
                                    "\"tool_use\",\"id\":");
                ngx_ai_relay_xm_raw(w, b, &m);
                ngx_ai_relay_jw_lit(w, ",\"name\":");

                if (name.type == NGX_AI_RELAY_JSON_STRING) {
                    ngx_ai_relay_xm_raw(w, b, &name);

                } else {
                    ngx_ai_relay_jw_lit(w, "\"\"");
                }

                ngx_ai_relay_jw_lit(w, ",\"input\":{}}}\n\n");
            }

            if (ngx_ai_relay_xs_text(&a) && x->block_open
                && x->block_type == NGX_AI_RELAY_XS_TOOL
                && index == x->tool_open)
            {
                ngx_ai_relay_xs_delta(x, "input_json_delta", "partial_json",
                                      b, &a);
            }
        }
    }

    ngx_ai_relay_xm_find(b, &choice, "finish_reason", &m);

    if (m.type == NGX_AI_RELAY_JSON_STRING) {
        stop = ngx_ai_relay_xlate_stop_reason(b + m.value_start + 1,
                                              m.value_end - m.value_start
                                              - 2);
        n = strlen(stop);

        if (n < sizeof(x->stop)) {
            memcpy(x->stop, stop, n + 1);
        }

        x->stopped = 1;

        if (x->usage_seen) {
            ngx_ai_relay_xs_o2a_end(x);
        }
    }

    return NGX_AI_RELAY_XLATE_OK;
}


static void
ngx_ai_relay_xs_o2a_end(ngx_ai_relay_xlate_sse_t *x)
{
    ngx_ai_relay_jw_t  *w;

    if (x->finished) {
        return;
    }

    w = &x->out;

    ngx_ai_relay_xs_o2a_start(x);
    ngx_ai_relay_xs_block_stop(x);

    ngx_ai_relay_xs_event(x, "message_delta");
    ngx_ai_relay_jw_lit(w, "{\"type\":\"message_delta\",\"delta\":"
                        "{\"stop_reason\":");

    if (x->stop[0]) {
        ngx_ai_relay_jw_raw(w, "\"", 1);
        ngx_ai_relay_jw_raw(w, x->stop, strlen(x->stop));
        ngx_ai_relay_jw_raw(w, "\"", 1);

    } else {
        ngx_ai_relay_jw_lit(w, "\"end_turn\"");
    }

    ngx_ai_relay_jw_lit(w, ",\"stop_sequence\":null},\"usage\":");
    ngx_ai_relay_xlate_anthropic_usage(w, x->in_tokens, x->out_tokens,
                                       x->cache_read);
    ngx_ai_relay_jw_lit(w, "}\n\n");

    ngx_ai_relay_xs_event(x, "message_stop");
    ngx_ai_relay_jw_lit(w, "{\"type\":\"message_stop\"}\n\n");

    x->finished = 1;
}


/* --------------------------------------- Gemini chunks -> OpenAI */

static int
ngx_ai_relay_xs_g2o(ngx_ai_relay_xlate_sse_t *x, const u_char *b,
    ngx_ai_relay_json_scan_t *scan)
{
    size_t              pos;
    const char         *finish;
    ngx_ai_relay_jw_t  *w;
    ngx_ai_relay_xm_t   cand, content, parts, part, t, thought, fc, fr, m;
    ngx_ai_relay_xm_t  *id, *model, *cands, *um, *err;

    w = &x->out;

    err = ngx_ai_relay_json_find(scan, b, "error", 5);

    if (err && err->type == NGX_AI_RELAY_JSON_OBJECT) {
        ngx_ai_relay_xm_find(b, err, "status", &t);
        ngx_ai_relay_xm_find(b, err, "message", &m);

        ngx_ai_relay_jw_lit(w, "data: {\"error\":{\"type\":");

        if (t.type == NGX_AI_RELAY_JSON_STRING) {
            ngx_ai_relay_xm_raw(w, b, &t);

        } else {
            ngx_ai_relay_jw_lit(w, "\"api_error\"");
        }

        ngx_ai_relay_jw_lit(w, ",\"param\":null,\"code\":null,\"message\":");

        if (m.type == NGX_AI_RELAY_JSON_STRING) {
            ngx_ai_relay_xm_raw(w, b, &m);

        } else {
            ngx_ai_relay_jw_lit(w, "\"The upstream stream failed.\"");
        }

        ngx_ai_relay_jw_lit(w, "}}\n\n");
        return NGX_AI_RELAY_XLATE_OK;
    }

    if (!x->started) {
        id = ngx_ai_relay_json_find(scan, b, "responseId", 10);
        model = ngx_ai_relay_json_find(scan, b, "modelVersion", 12);

        if (id) {
            ngx_ai_relay_xs_keep(x->id, &x->id_len, sizeof(x->id), b, id);
        }

        if (model && !x->model_fixed) {
            ngx_ai_relay_xs_keep(x->model, &x->model_len, sizeof(x->model),
                                 b, model);
        }

        x->started = 1;

        ngx_ai_relay_xs_chunk_open(x);
        ngx_ai_relay_jw_lit(w, "{\"role\":\"assistant\",\"content\":\"\"}");
        ngx_ai_relay_xs_chunk_close(x, NULL);
    }

    um = ngx_ai_relay_json_find(scan, b, "usageMetadata", 13);

    if (um && um->type == NGX_AI_RELAY_JSON_OBJECT) {
        x->usage_seen = 1;
        x->in_tokens = ngx_ai_relay_xs_int(b, um, "promptTokenCount", 0)
                       + ngx_ai_relay_xs_int(b, um, "toolUsePromptTokenCount",
                                             0);
        x->reasoning = ngx_ai_relay_xs_int(b, um, "thoughtsTokenCount", 0);
        x->out_tokens = ngx_ai_relay_xs_int(b, um, "candidatesTokenCount", 0)
                        + x->reasoning;
        x->cache_read = ngx_ai_relay_xs_int(b, um, "cachedContentTokenCount",
                                            0);
    }

    cands = ngx_ai_relay_json_find(scan, b, "candidates", 10);
    pos = 0;

    if (cands == NULL || !ngx_ai_relay_json_array_next(b, cands, &pos, &cand))
    {
        return NGX_AI_RELAY_XLATE_OK;
    }

    ngx_ai_relay_xm_find(b, &cand, "content", &content);
    ngx_ai_relay_xm_find(b, &content, "parts", &parts);

    pos = 0;

    while (parts.type == NGX_AI_RELAY_JSON_ARRAY
           && ngx_ai_relay_json_array_next(b, &parts, &pos, &part))
    {
        ngx_ai_relay_xm_find(b, &part, "text", &t);
        ngx_ai_relay_xm_find(b, &part, "thought", &thought);

        if (ngx_ai_relay_xm_find(b, &part, "functionCall", &fc)) {
            ngx_ai_relay_xs_chunk_open(x);
            ngx_ai_relay_jw_lit(w, "{\"tool_calls\":[{\"index\":");
            ngx_ai_relay_jw_int(w, x->tool_index);
            ngx_ai_relay_jw_lit(w, ",");
            ngx_ai_relay_xlate_gemini_call(w, b, &part, &fc,
                                           x->tool_index);
            ngx_ai_relay_jw_lit(w, "}]}");
            ngx_ai_relay_xs_chunk_close(x, NULL);

            x->tool_index++;
            continue;
        }

        if (!ngx_ai_relay_xs_text(&t)) {
            continue;
        }

        ngx_ai_relay_xs_chunk_open(x);

        if (thought.type == NGX_AI_RELAY_JSON_TRUE) {
            ngx_ai_relay_jw_lit(w, "{\"reasoning_content\":");

        } else {
            ngx_ai_relay_jw_lit(w, "{\"content\":");
        }

        ngx_ai_relay_xm_raw(w, b, &t);
        ngx_ai_relay_jw_lit(w, "}");
        ngx_ai_relay_xs_chunk_close(x, NULL);
    }

    ngx_ai_relay_xm_find(b, &cand, "finishReason", &fr);

    if (fr.type == NGX_AI_RELAY_JSON_STRING && !x->stopped) {
        finish = ngx_ai_relay_xlate_gemini_finish(b + fr.value_start + 1,
                                                  fr.value_end
                                                  - fr.value_start - 2,
                                                  x->tool_index > 0);
        x->stopped = 1;

        ngx_ai_relay_xs_chunk_open(x);
        ngx_ai_relay_jw_lit(w, "{}");
        ngx_ai_relay_xs_chunk_close(x, finish);
    }

    return NGX_AI_RELAY_XLATE_OK;
}


static void
ngx_ai_relay_xs_g2o_end(ngx_ai_relay_xlate_sse_t *x)
{
    ngx_ai_relay_jw_t  *w;

    w = &x->out;

    if (x->include_usage) {
        ngx_ai_relay_jw_lit(w, "data: {\"id\":");

        if (x->id_len) {
            ngx_ai_relay_jw_raw(w, x->id, x->id_len);

        } else {
            ngx_ai_relay_jw_lit(w, "\"chatcmpl-relay\"");
        }

        ngx_ai_relay_jw_lit(w, ",\"object\":\"chat.completion.chunk\","
                            "\"created\":");
        ngx_ai_relay_jw_int(w, x->created);
        ngx_ai_relay_jw_lit(w, ",\"model\":");

        if (x->model_len) {
            ngx_ai_relay_jw_raw(w, x->model, x->model_len);

        } else {
            ngx_ai_relay_jw_lit(w, "\"\"");
        }

        ngx_ai_relay_jw_lit(w, ",\"choices\":[],\"usage\":{"
                            "\"prompt_tokens\":");
        ngx_ai_relay_jw_int(w, x->in_tokens);
        ngx_ai_relay_jw_lit(w, ",\"completion_tokens\":");
        ngx_ai_relay_jw_int(w, x->out_tokens);
        ngx_ai_relay_jw_lit(w, ",\"total_tokens\":");
        ngx_ai_relay_jw_int(w, x->in_tokens + x->out_tokens);
        ngx_ai_relay_jw_lit(w, ",\"prompt_tokens_details\":"
                            "{\"cached_tokens\":");
        ngx_ai_relay_jw_int(w, x->cache_read);
        ngx_ai_relay_jw_lit(w, "},\"completion_tokens_details\":"
                            "{\"reasoning_tokens\":");
        ngx_ai_relay_jw_int(w, x->reasoning);
        ngx_ai_relay_jw_lit(w, "}}}\n\n");
    }

    ngx_ai_relay_jw_lit(w, "data: [DONE]\n\n");
    x->finished = 1;
}


/* --------------------------------------- OpenAI chunks -> Gemini */

static void
ngx_ai_relay_xs_gemini_tail(ngx_ai_relay_xlate_sse_t *x)
{
    ngx_ai_relay_jw_t  *w;

    w = &x->out;

    ngx_ai_relay_jw_lit(w, ",\"modelVersion\":");

    if (x->model_len) {
        ngx_ai_relay_jw_raw(w, x->model, x->model_len);

    } else {
        ngx_ai_relay_jw_lit(w, "\"\"");
    }

    ngx_ai_relay_jw_lit(w, ",\"responseId\":");

    if (x->id_len) {
        ngx_ai_relay_jw_raw(w, x->id, x->id_len);

    } else {
        ngx_ai_relay_jw_lit(w, "\"relay\"");
    }

    ngx_ai_relay_jw_lit(w, "}\n\n");
}


static void
ngx_ai_relay_xs_gemini_text(ngx_ai_relay_xlate_sse_t *x, const u_char *b,
    const ngx_ai_relay_xm_t *m, int thought)
{
    ngx_ai_relay_jw_t  *w;

    w = &x->out;

    ngx_ai_relay_jw_lit(w, "data: {\"candidates\":[{\"content\":{\"role\":"
                        "\"model\",\"parts\":[{\"text\":");
    ngx_ai_relay_xm_raw(w, b, m);

    if (thought) {
        ngx_ai_relay_jw_lit(w, ",\"thought\":true");
    }

    ngx_ai_relay_jw_lit(w, "}]},\"index\":0}]");
    ngx_ai_relay_xs_gemini_tail(x);
}


/* the call being streamed is whole: its arguments become "args" */

static void
ngx_ai_relay_xs_o2g_call_end(ngx_ai_relay_xlate_sse_t *x)
{
    u_char                    *p;
    size_t                     len;
    ngx_ai_relay_json_scan_t   scan;

    if (x->tool_open < 0) {
        return;
    }

    x->tool_open = -1;

    p = NULL;
    len = 0;

    if (x->args.len) {
        p = x->out.alloc(x->out.data, x->args.len);

        if (p == NULL) {
            x->calls.failed = 1;
            return;
        }

        if (ngx_ai_relay_json_unescape(x->args.buf, x->args.len, p,
                                       x->args.len, &len)
            != 0)
        {
            len = 0;
        }
    }

    ngx_ai_relay_json_scan_init(&scan, NULL, 0);

    if (len && p[0] == '{'
        && ngx_ai_relay_json_scan(&scan, p, len) == NGX_AI_RELAY_JSON_OK)
    {
        ngx_ai_relay_jw_raw(&x->calls, p, len);

    } else {
        ngx_ai_relay_jw_lit(&x->calls, "{}");
    }

    ngx_ai_relay_jw_lit(&x->calls, "}}");
    x->args.len = 0;
}


static int
ngx_ai_relay_xs_o2g(ngx_ai_relay_xlate_sse_t *x, const u_char *b,
    ngx_ai_relay_json_scan_t *scan)
{
    size_t              pos, n;
    int64_t             index;
    const char         *reason;
    ngx_ai_relay_jw_t  *w;
    ngx_ai_relay_xm_t   choice, delta, m, calls, tc, fn, a, name, details;
    ngx_ai_relay_xm_t  *id, *model, *choices, *usage, *err;

    w = &x->out;

    err = ngx_ai_relay_json_find(scan, b, "error", 5);

    if (err && err->type == NGX_AI_RELAY_JSON_OBJECT) {
        ngx_ai_relay_xm_find(b, err, "message", &m);

        ngx_ai_relay_jw_lit(w, "data: {\"error\":{\"code\":500,\"message\":");

        if (m.type == NGX_AI_RELAY_JSON_STRING) {
            ngx_ai_relay_xm_raw(w, b, &m);

        } else {
            ngx_ai_relay_jw_lit(w, "\"The upstream stream failed.\"");
        }

        ngx_ai_relay_jw_lit(w, ",\"status\":\"INTERNAL\"}}\n\n");
        return NGX_AI_RELAY_XLATE_OK;
    }

    if (!x->started) {
        id = ngx_ai_relay_json_find(scan, b, "id", 2);
        model = ngx_ai_relay_json_find(scan, b, "model", 5);

        if (id) {
            ngx_ai_relay_xs_keep(x->id, &x->id_len, sizeof(x->id), b, id);
        }

        if (model && !x->model_fixed) {
            ngx_ai_relay_xs_keep(x->model, &x->model_len, sizeof(x->model),
                                 b, model);
        }

        x->started = 1;
    }

    usage = ngx_ai_relay_json_find(scan, b, "usage", 5);

    if (usage && usage->type == NGX_AI_RELAY_JSON_OBJECT) {
        x->usage_seen = 1;
        x->in_tokens = ngx_ai_relay_xs_int(b, usage, "prompt_tokens", 0);
        x->out_tokens = ngx_ai_relay_xs_int(b, usage, "completion_tokens", 0);

        ngx_ai_relay_xm_find(b, usage, "prompt_tokens_details", &details);
        x->cache_read = ngx_ai_relay_xs_int(b, &details, "cached_tokens", 0);

        if (x->cache_read == 0) {
            x->cache_read = ngx_ai_relay_xs_int(b, usage,
                                                "prompt_cache_hit_tokens", 0);
        }

        ngx_ai_relay_xm_find(b, usage, "completion_tokens_details",
                             &details);
        x->reasoning = ngx_ai_relay_xs_int(b, &details, "reasoning_tokens",
                                           0);
    }

    choices = ngx_ai_relay_json_find(scan, b, "choices", 7);
    pos = 0;

    if (choices == NULL
        || !ngx_ai_relay_json_array_next(b, choices, &pos, &choice))
    {
        if (x->stopped && x->usage_seen) {
            ngx_ai_relay_xs_o2g_end(x);
        }

        return NGX_AI_RELAY_XLATE_OK;
    }

    ngx_ai_relay_xm_find(b, &choice, "delta", &delta);

    ngx_ai_relay_xm_find(b, &delta, "reasoning_content", &m);

    if (!ngx_ai_relay_xs_text(&m)) {
        ngx_ai_relay_xm_find(b, &delta, "reasoning", &m);
    }

    if (ngx_ai_relay_xs_text(&m)) {
        ngx_ai_relay_xs_gemini_text(x, b, &m, 1);
    }

    ngx_ai_relay_xm_find(b, &delta, "content", &m);

    if (ngx_ai_relay_xs_text(&m)) {
        ngx_ai_relay_xs_gemini_text(x, b, &m, 0);
    }

    /* Gemini sends a call whole: its pieces are kept until it ends */

    ngx_ai_relay_xm_find(b, &delta, "tool_calls", &calls);

    if (calls.type == NGX_AI_RELAY_JSON_ARRAY) {
        n = 0;

        while (ngx_ai_relay_json_array_next(b, &calls, &n, &tc)) {
            index = ngx_ai_relay_xs_int(b, &tc, "index", 0);

            ngx_ai_relay_xm_find(b, &tc, "id", &m);
            ngx_ai_relay_xm_find(b, &tc, "function", &fn);
            ngx_ai_relay_xm_find(b, &fn, "name", &name);
            ngx_ai_relay_xm_find(b, &fn, "arguments", &a);

            if (ngx_ai_relay_xs_text(&m) && index != x->tool_open) {
                ngx_ai_relay_xs_o2g_call_end(x);

                ngx_ai_relay_jw_raw(&x->calls, ",", x->calls.len ? 1 : 0);
                ngx_ai_relay_jw_lit(&x->calls, "{\"functionCall\":{\"id\":");
                ngx_ai_relay_xm_raw(&x->calls, b, &m);
                ngx_ai_relay_jw_lit(&x->calls, ",\"name\":");

                if (name.type == NGX_AI_RELAY_JSON_STRING) {
                    ngx_ai_relay_xm_raw(&x->calls, b, &name);

                } else {
                    ngx_ai_relay_jw_lit(&x->calls, "\"\"");
                }

                ngx_ai_relay_jw_lit(&x->calls, ",\"args\":");
                x->tool_open = index;
            }

            if (ngx_ai_relay_xs_text(&a) && index == x->tool_open) {
                ngx_ai_relay_jw_raw(&x->args, b + a.value_start + 1,
                                    a.value_end - a.value_start - 2);
            }
        }
    }

    ngx_ai_relay_xm_find(b, &choice, "finish_reason", &m);

    if (m.type == NGX_AI_RELAY_JSON_STRING) {
        reason = ngx_ai_relay_xlate_gemini_reason(b + m.value_start + 1,
                                                  m.value_end - m.value_start
                                                  - 2);
        n = strlen(reason);

        if (n < sizeof(x->stop)) {
            memcpy(x->stop, reason, n + 1);
        }

        x->stopped = 1;

        if (x->usage_seen) {
            ngx_ai_relay_xs_o2g_end(x);
        }
    }

    return NGX_AI_RELAY_XLATE_OK;
}


static void
ngx_ai_relay_xs_o2g_end(ngx_ai_relay_xlate_sse_t *x)
{
    ngx_ai_relay_jw_t  *w;

    if (x->finished) {
        return;
    }

    w = &x->out;

    ngx_ai_relay_xs_o2g_call_end(x);

    ngx_ai_relay_jw_lit(w, "data: {\"candidates\":[{\"content\":{\"role\":"
                        "\"model\",\"parts\":[");

    if (x->calls.len) {
        ngx_ai_relay_jw_raw(w, x->calls.buf, x->calls.len);

    } else {
        ngx_ai_relay_jw_lit(w, "{\"text\":\"\"}");
    }

    ngx_ai_relay_jw_lit(w, "]},\"finishReason\":\"");

    if (x->stop[0]) {
        ngx_ai_relay_jw_raw(w, x->stop, strlen(x->stop));

    } else {
        ngx_ai_relay_jw_lit(w, "STOP");
    }

    ngx_ai_relay_jw_lit(w, "\",\"index\":0}],\"usageMetadata\":");
    ngx_ai_relay_xlate_gemini_meta(w, x->in_tokens, x->out_tokens,
                                   x->cache_read, x->reasoning);
    ngx_ai_relay_xs_gemini_tail(x);

    x->finished = 1;
}
