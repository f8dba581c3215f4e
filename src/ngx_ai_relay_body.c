
/*
 * Copyright (C) ngx_ai_relay authors
 *
 * The request body: read it whole (from memory or nginx's temp file),
 * validate and scan it in one pass, and rewrite only the bytes that must
 * change (the model name, stream_options.include_usage) by splicing:
 * every other byte reaches the upstream as the client sent it.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_ai_relay_module.h"
#include "ngx_ai_relay_body.h"
#include "ngx_ai_relay_error.h"
#include "ngx_ai_relay_form.h"


/* top-level members: enough for any real request, retried larger */
#define NGX_AI_RELAY_MEMBERS         24
#define NGX_AI_RELAY_MAX_MEMBERS     1024
#define NGX_AI_RELAY_MAX_MODEL_LEN   256


static ngx_int_t ngx_ai_relay_body_get(ngx_http_request_t *r,
    ngx_str_t *body);
static ngx_int_t ngx_ai_relay_body_join(ngx_http_request_t *r);
static ngx_int_t ngx_ai_relay_gemini_model(ngx_http_request_t *r,
    ngx_ai_relay_ctx_t *ctx);
static ngx_int_t ngx_ai_relay_body_characters(ngx_http_request_t *r,
    ngx_ai_relay_ctx_t *ctx);
static ngx_int_t ngx_ai_relay_body_task(ngx_http_request_t *r,
    ngx_ai_relay_ctx_t *ctx, ngx_ai_relay_json_scan_t *scan);
static ngx_int_t ngx_ai_relay_body_video_size(ngx_http_request_t *r,
    ngx_ai_relay_ctx_t *ctx, ngx_ai_relay_json_scan_t *scan);
static int64_t ngx_ai_relay_body_number(ngx_ai_relay_json_scan_t *scan,
    u_char *body, const char *outer, const char *name);
static ngx_int_t ngx_ai_relay_body_string(ngx_http_request_t *r,
    ngx_ai_relay_json_scan_t *scan, u_char *body, const char *name,
    ngx_str_t *value);
static ngx_int_t ngx_ai_relay_body_xlate_use(ngx_http_request_t *r,
    ngx_ai_relay_ctx_t *ctx);
static ngx_int_t ngx_ai_relay_body_chain(ngx_http_request_t *r,
    ngx_ai_relay_ctx_t *ctx, ngx_ai_relay_json_piece_t *pieces,
    size_t npieces, size_t out_len);
static void *ngx_ai_relay_body_alloc(void *data, size_t size);


static ngx_int_t
ngx_ai_relay_body_get(ngx_http_request_t *r, ngx_str_t *body)
{
    u_char       *p;
    size_t        len, size;
    ssize_t       n;
    ngx_buf_t    *b;
    ngx_chain_t  *cl;

    ngx_str_null(body);

    if (r->request_body == NULL || r->request_body->bufs == NULL) {
        return NGX_OK;
    }

    cl = r->request_body->bufs;

    if (cl->next == NULL && !cl->buf->in_file) {
        body->data = cl->buf->pos;
        body->len = cl->buf->last - cl->buf->pos;
        return NGX_OK;
    }

    /*
     * The usual large body: the part read with the headers, then the rest
     * in nginx's body buffer (one buf per read, one after the other),
     * which request_body_in_single_buf made large enough for both.
     * Joining them there costs a memmove, not a new buffer of the body's
     * size (page faults, zeroed pages).
     */

    if (ngx_ai_relay_body_join(r) == NGX_OK) {
        cl = r->request_body->bufs;
        body->data = cl->buf->pos;
        body->len = cl->buf->last - cl->buf->pos;
        return NGX_OK;
    }

    len = 0;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        len += ngx_buf_size(cl->buf);
    }

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    body->data = p;
    body->len = len;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        b = cl->buf;

        if (b->in_file) {
            size = (size_t) (b->file_last - b->file_pos);

            /* nginx wrote it a moment ago: it is in the page cache */

            n = ngx_read_file(b->file, p, size, b->file_pos);

            if (n == NGX_ERROR || (size_t) n != size) {
                ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                              "ai relay: reading the body from \"%V\" "
                              "failed", &b->file->name);
                return NGX_ERROR;
            }

            p += size;

        } else if (b->last > b->pos) {
            p = ngx_cpymem(p, b->pos, b->last - b->pos);
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_ai_relay_body_join(ngx_http_request_t *r)
{
    u_char       *last;
    size_t        head, rest;
    ngx_buf_t    *b, *rb;
    ngx_chain_t  *first, *cl;

    first = r->request_body->bufs;
    rb = r->request_body->buf;

    if (rb == NULL || first->next == NULL || first->buf->in_file
        || rb->in_file || !rb->temporary
        || (first->buf->pos >= rb->start && first->buf->pos < rb->end))
    {
        return NGX_DECLINED;
    }

    /* the rest: from the start of nginx's buffer, in order, no gaps */

    last = rb->start;

    for (cl = first->next; cl; cl = cl->next) {
        b = cl->buf;

        if (b->in_file || (b->pos != last && b->pos != b->last)) {
            return NGX_DECLINED;
        }

        if (b->pos != b->last) {
            last = b->last;
        }
    }

    head = first->buf->last - first->buf->pos;
    rest = last - rb->start;

    if (last > rb->end || (size_t) (rb->end - last) < head) {
        return NGX_DECLINED;
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_DECLINED;
    }

    ngx_memmove(rb->start + head, rb->start, rest);
    ngx_memcpy(rb->start, first->buf->pos, head);

    b->temporary = 1;
    b->start = rb->start;
    b->pos = rb->start;
    b->last = rb->start + head + rest;
    b->end = rb->end;
    b->last_buf = 1;

    first->buf = b;
    first->next = NULL;

    return NGX_OK;
}


/* Gemini names the model in the path: /v1beta/models/<model>:<method> */

static ngx_int_t
ngx_ai_relay_gemini_model(ngx_http_request_t *r, ngx_ai_relay_ctx_t *ctx)
{
    u_char  *p, *start, *end, *last;

    start = NULL;
    end = NULL;
    last = r->uri.data + r->uri.len;

    for (p = r->uri.data; p + 8 <= last; p++) {
        if (ngx_strncmp(p, "/models/", 8) == 0) {
            start = p + 8;
        }
    }

    if (start == NULL) {
        return NGX_DECLINED;
    }

    for (end = start; end < last && *end != ':' && *end != '/'; end++) {
        /* void */
    }

    if (end == start) {
        return NGX_DECLINED;
    }

    ctx->body.model.len = end - start;
    ctx->body.model.data = ngx_pnalloc(r->pool, ctx->body.model.len + 1);
    if (ctx->body.model.data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(ctx->body.model.data, start, ctx->body.model.len);
    ctx->body.model.data[ctx->body.model.len] = '\0';

    ctx->body.gemini_path = 1;
    ctx->body.stream =
        (last - end >= (ssize_t) sizeof(":streamGenerateContent") - 1
         && ngx_strncmp(end, ":streamGenerateContent",
                        sizeof(":streamGenerateContent") - 1)
            == 0);

    return NGX_OK;
}


/* a short top-level string member, e.g. an image's "size"; absent: empty */

static ngx_int_t
ngx_ai_relay_body_string(ngx_http_request_t *r,
    ngx_ai_relay_json_scan_t *scan, u_char *body, const char *name,
    ngx_str_t *value)
{
    size_t  len;

    ngx_str_null(value);

    value->data = ngx_pnalloc(r->pool, 32);
    if (value->data == NULL) {
        return NGX_ERROR;
    }

    if (ngx_ai_relay_json_get_string(scan, body, name, ngx_strlen(name),
                                     value->data, 32, &len)
        == NGX_AI_RELAY_JSON_GET_OK)
    {
        value->len = len;
    }

    return NGX_OK;
}


ngx_int_t
ngx_ai_relay_body_parse(ngx_http_request_t *r, ngx_ai_relay_ctx_t *ctx)
{
    int                          rc, flag;
    char                         err[128];
    size_t                       len;
    int64_t                      n, units;
    ngx_int_t                    grc;
    ngx_ai_relay_json_scan_t    *scan;
    ngx_ai_relay_loc_conf_t     *arlcf;
    ngx_ai_relay_json_member_t  *members;

    arlcf = ngx_http_get_module_loc_conf(r, ngx_ai_relay_module);

    if (ngx_ai_relay_body_get(r, &ctx->body.raw) != NGX_OK) {
        ngx_ai_relay_set_error(r, NGX_HTTP_INTERNAL_SERVER_ERROR, "",
                               "internal error");
        return NGX_ERROR;
    }

    if (ctx->body.raw.len == 0) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "ai relay: client sent an empty body");
        ngx_ai_relay_set_error(r, NGX_HTTP_BAD_REQUEST, "invalid_json",
                               "We could not parse the JSON body of your "
                               "request: the body is empty.");
        return NGX_ERROR;
    }

    scan = ngx_palloc(r->pool, sizeof(ngx_ai_relay_json_scan_t));
    if (scan == NULL) {
        ngx_ai_relay_set_error(r, NGX_HTTP_INTERNAL_SERVER_ERROR, "",
                               "internal error");
        return NGX_ERROR;
    }

    for (n = NGX_AI_RELAY_MEMBERS; /* void */; n = NGX_AI_RELAY_MAX_MEMBERS)
    {
        members = ngx_palloc(r->pool,
                             n * sizeof(ngx_ai_relay_json_member_t));
        if (members == NULL) {
            ngx_ai_relay_set_error(r, NGX_HTTP_INTERNAL_SERVER_ERROR, "",
                                   "internal error");
            return NGX_ERROR;
        }

        ngx_ai_relay_json_scan_init(scan, members, n);
        scan->max_depth = arlcf->max_depth;

        rc = ngx_ai_relay_json_scan(scan, ctx->body.raw.data,
                                    ctx->body.raw.len);

        if (rc != NGX_AI_RELAY_JSON_ERR_MEMBERS
            || n == NGX_AI_RELAY_MAX_MEMBERS)
        {
            break;
        }
    }

    if (rc != NGX_AI_RELAY_JSON_OK) {
        ngx_ai_relay_json_strerror(scan, ctx->body.raw.data, err, sizeof(err));

        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "ai relay: client sent invalid JSON: %s", err);

        if (rc == NGX_AI_RELAY_JSON_ERR_NOT_OBJECT) {
            ngx_ai_relay_set_error(r, NGX_HTTP_BAD_REQUEST, "invalid_json",
                                   "The request body must be a JSON "
                                   "object.");

        } else {
            ngx_ai_relay_set_error(r, NGX_HTTP_BAD_REQUEST, "invalid_json",
                                   "We could not parse the JSON body of "
                                   "your request: %s.", err);
        }

        return NGX_ERROR;
    }

    ctx->body.scan = scan;
    ctx->body.usage_format = ctx->endpoint->format;

    /* the model */

    if (ctx->body.usage_format == NGX_AI_RELAY_FMT_GEMINI) {
        grc = ngx_ai_relay_gemini_model(r, ctx);

        if (grc == NGX_ERROR) {
            ngx_ai_relay_set_error(r, NGX_HTTP_INTERNAL_SERVER_ERROR, "",
                                   "internal error");
            return NGX_ERROR;
        }

        if (grc == NGX_DECLINED) {
            ngx_ai_relay_set_error(r, NGX_HTTP_BAD_REQUEST, "missing_model",
                                   "The model must be named in the path: "
                                   "/v1beta/models/{model}:generateContent."
                                   );
            return NGX_ERROR;
        }

    } else if (ctx->endpoint->id == NGX_AI_RELAY_EP_VIDEO_REMIX) {

        /* the remixed video's model, looked up with it (task.c) */

        if (ngx_ai_relay_json_find(scan, ctx->body.raw.data, "model", 5)) {
            ngx_ai_relay_set_error(r, NGX_HTTP_BAD_REQUEST,
                                   "unsupported_parameter",
                                   "A remix is made with the model of the "
                                   "video it remixes: do not send a model.");
            return NGX_ERROR;
        }

        ctx->body.task_model = 1;

    } else {
        ctx->body.model.data = ngx_pnalloc(r->pool,
                                           NGX_AI_RELAY_MAX_MODEL_LEN + 1);
        if (ctx->body.model.data == NULL) {
            ngx_ai_relay_set_error(r, NGX_HTTP_INTERNAL_SERVER_ERROR, "",
                                   "internal error");
            return NGX_ERROR;
        }

        rc = ngx_ai_relay_json_get_string(scan, ctx->body.raw.data, "model", 5,
                                          ctx->body.model.data,
                                          NGX_AI_RELAY_MAX_MODEL_LEN, &len);

        if (rc == NGX_AI_RELAY_JSON_GET_MISSING) {
            ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                          "ai relay: client sent no model");
            ngx_ai_relay_set_error(r, NGX_HTTP_BAD_REQUEST, "missing_model",
                                   "You must provide a model parameter.");
            return NGX_ERROR;
        }

        if (rc != NGX_AI_RELAY_JSON_GET_OK || len == 0
            || ngx_strlchr(ctx->body.model.data, ctx->body.model.data + len,
                           '\0'))
        {
            ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                          "ai relay: client sent an invalid model");
            ngx_ai_relay_set_error(r, NGX_HTTP_BAD_REQUEST, "invalid_model",
                                   "The model parameter must be a non-empty "
                                   "string of at most %d bytes.",
                                   NGX_AI_RELAY_MAX_MODEL_LEN);
            return NGX_ERROR;
        }

        ctx->body.model.len = len;
        ctx->body.model.data[len] = '\0';

        if (ngx_ai_relay_json_get_bool(scan, ctx->body.raw.data, "stream", 6,
                                       &flag)
            == NGX_AI_RELAY_JSON_GET_OK)
        {
            ctx->body.stream = flag ? 1 : 0;
        }
    }

    /* what the answer may cost at most: max_tokens and friends */

    ctx->body.max_tokens = -1;

    if ((ngx_ai_relay_json_get_int(scan, ctx->body.raw.data, "max_tokens",
                                   10, &n)
         == NGX_AI_RELAY_JSON_GET_OK
         || ngx_ai_relay_json_get_int(scan, ctx->body.raw.data,
                                      "max_completion_tokens", 21, &n)
            == NGX_AI_RELAY_JSON_GET_OK
         || ngx_ai_relay_json_get_int(scan, ctx->body.raw.data,
                                      "max_output_tokens", 17, &n)
            == NGX_AI_RELAY_JSON_GET_OK
         || ngx_ai_relay_json_get_nested_int(scan, ctx->body.raw.data,
                                             "generationConfig", 16,
                                             "maxOutputTokens", 15, &n)
            == NGX_AI_RELAY_JSON_GET_OK)
        && n >= 0)
    {
        ctx->body.max_tokens = n;
    }

    if (ngx_ai_relay_json_get_int(scan, ctx->body.raw.data, "n", 1, &n)
        == NGX_AI_RELAY_JSON_GET_OK && n > 0 && n <= 128)
    {
        ctx->body.images_requested = n;

    } else {
        ctx->body.images_requested = 1;
    }

    if (ctx->body.usage_format == NGX_AI_RELAY_FMT_OPENAI_IMAGES
        && (ngx_ai_relay_body_string(r, scan, ctx->body.raw.data, "size",
                                     &ctx->body.image_size) != NGX_OK
            || ngx_ai_relay_body_string(r, scan, ctx->body.raw.data, "quality",
                                        &ctx->body.image_quality) != NGX_OK))
    {
        ngx_ai_relay_set_error(r, NGX_HTTP_INTERNAL_SERVER_ERROR, "",
                               "internal error");
        return NGX_ERROR;
    }

    if (ctx->endpoint->price == NGX_AI_RELAY_EP_PRICE_CHARS
        && ngx_ai_relay_body_characters(r, ctx) != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ctx->endpoint->price == NGX_AI_RELAY_EP_PRICE_TASK
        && ngx_ai_relay_body_task(r, ctx, scan) != NGX_OK)
    {
        return NGX_ERROR;
    }

    /*
     * prompt estimate from the text of all string values: ~4 ASCII
     * characters per token, one token per other character (an upper
     * bound for CJK, generous for accented Latin)
     */

    units = (int64_t) scan->str_ascii + 4 * (int64_t) scan->str_non_ascii;
    ctx->body.prompt_estimate = (units + 3) / 4;

    if (ctx->body.prompt_estimate == 0) {
        ctx->body.prompt_estimate = 1;
    }

    ngx_log_debug5(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "ai relay: body %uz bytes, model \"%V\", stream %d, "
                   "max_tokens %L, prompt estimate %L",
                   ctx->body.raw.len, &ctx->body.model, (int) ctx->body.stream,
                   ctx->body.max_tokens, ctx->body.prompt_estimate);

    return NGX_OK;
}


/*
 * A task's price: per task, per second of the video it asks for, per
 * image.  Each API names the length, size and count its own way; a length
 * not given is the API's own default, so a task is never priced shorter
 * than the upstream makes it.
 */

static ngx_int_t
ngx_ai_relay_body_task(ngx_http_request_t *r, ngx_ai_relay_ctx_t *ctx,
    ngx_ai_relay_json_scan_t *scan)
{
    u_char                      *p, *body;
    size_t                       len;
    int64_t                      n, w, h;
    const char                  *outer;
    ngx_ai_relay_json_member_t  *m, in;

    body = ctx->body.raw.data;

    switch (ctx->endpoint->id) {

    case NGX_AI_RELAY_EP_VIDEO_REMIX:

        /* the remixed video's seconds and size (task.c) */
        return NGX_OK;

    case NGX_AI_RELAY_EP_VGEN_CREATE:

        /* {"duration": 5, "size": "1280x720" or "width", "height", "n"} */

        n = ngx_ai_relay_body_number(scan, body, NULL, "n");

        if (n != -1 && n != 1) {
            ngx_ai_relay_set_error(r, NGX_HTTP_BAD_REQUEST,
                                   "unsupported_parameter",
                                   "This relay makes one video per task: "
                                   "\"n\" must be 1.");
            return NGX_ERROR;
        }

        n = ngx_ai_relay_body_number(scan, body, NULL, "duration");
        ctx->body.seconds = (n > 0) ? n : 5;

        if (ngx_ai_relay_body_video_size(r, ctx, scan) != NGX_OK) {
            return NGX_ERROR;
        }

        /* no "size": "width" and "height" */

        w = ngx_ai_relay_body_number(scan, body, NULL, "width");
        h = ngx_ai_relay_body_number(scan, body, NULL, "height");

        if (ctx->body.image_size.len == 0 && w > 0 && h > 0) {
            p = ngx_pnalloc(r->pool, 2 * NGX_INT64_LEN + 1);
            if (p == NULL) {
                return NGX_ERROR;
            }

            ctx->body.image_size.data = p;
            ctx->body.image_size.len = ngx_sprintf(p, "%Lx%L", w, h) - p;
        }

        break;

    case NGX_AI_RELAY_EP_DS_IMAGE:
    case NGX_AI_RELAY_EP_DS_VIDEO:

        /* {"parameters": {"n": 4, "size": "1024*1024", "duration": 5}} */

        outer = "parameters";

        if (ctx->endpoint->id == NGX_AI_RELAY_EP_DS_IMAGE) {
            n = ngx_ai_relay_body_number(scan, body, outer, "n");
            ctx->body.images_requested = (n > 0) ? n : 4;

        } else {
            ctx->body.images_requested = 0;
            n = ngx_ai_relay_body_number(scan, body, outer, "duration");
            ctx->body.seconds = (n > 0) ? n : 5;
        }

        ngx_str_null(&ctx->body.image_size);

        m = ngx_ai_relay_json_find(scan, body, outer, ngx_strlen(outer));

        if (m && m->type == NGX_AI_RELAY_JSON_OBJECT
            && ngx_ai_relay_json_object_find(body, m, "size", 4, &in))
        {
            p = ngx_pnalloc(r->pool, 32);
            if (p == NULL) {
                return NGX_ERROR;
            }

            if (ngx_ai_relay_json_member_string(body, &in, p, 32, &len)
                == NGX_AI_RELAY_JSON_GET_OK)
            {
                /* "1024*1024" is priced as "1024x1024": '*' is a wildcard */

                ctx->body.image_size.data = p;
                ctx->body.image_size.len = len;

                for ( /* void */ ; len; len--, p++) {
                    if (*p == '*') {
                        *p = 'x';
                    }
                }
            }
        }

        break;

    default:

        /* OpenAI's videos: "seconds": "8" or 8, 4 if absent; "size" */

        n = ngx_ai_relay_body_number(scan, body, NULL, "seconds");
        ctx->body.seconds = (n > 0) ? n : 4;

        if (ngx_ai_relay_body_video_size(r, ctx, scan) != NGX_OK) {
            return NGX_ERROR;
        }

        break;
    }

    if (ctx->body.seconds > 3600) {
        ngx_ai_relay_set_error(r, NGX_HTTP_BAD_REQUEST, "invalid_value",
                               "A video may be at most 3600 seconds long.");
        return NGX_ERROR;
    }

    if (ctx->body.images_requested > 128) {
        ngx_ai_relay_set_error(r, NGX_HTTP_BAD_REQUEST, "invalid_value",
                               "A task may ask for at most 128 images.");
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* a video's "size" and "quality": either may have a price per second */

static ngx_int_t
ngx_ai_relay_body_video_size(ngx_http_request_t *r, ngx_ai_relay_ctx_t *ctx,
    ngx_ai_relay_json_scan_t *scan)
{
    if (ngx_ai_relay_body_string(r, scan, ctx->body.raw.data, "size",
                                 &ctx->body.image_size)
        != NGX_OK
        || ngx_ai_relay_body_string(r, scan, ctx->body.raw.data, "quality",
                                    &ctx->body.image_quality)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * A whole number given as 8, 8.0, 7.5 (rounded up) or "8" (at the top
 * level, or in the object outer): -1 if absent or not one, or if not
 * positive
 */

static int64_t
ngx_ai_relay_body_number(ngx_ai_relay_json_scan_t *scan, u_char *body,
    const char *outer, const char *name)
{
    size_t                       len;
    int64_t                      n;
    unsigned char                buf[24];
    ngx_ai_relay_json_member_t  *m, in;

    if (outer) {
        m = ngx_ai_relay_json_find(scan, body, outer, ngx_strlen(outer));

        if (m == NULL || m->type != NGX_AI_RELAY_JSON_OBJECT
            || !ngx_ai_relay_json_object_find(body, m, name,
                                              ngx_strlen(name), &in))
        {
            return -1;
        }

        m = &in;

    } else {
        m = ngx_ai_relay_json_find(scan, body, name, ngx_strlen(name));

        if (m == NULL) {
            return -1;
        }
    }

    if (m->type == NGX_AI_RELAY_JSON_STRING) {
        if (ngx_ai_relay_json_member_string(body, m, buf, sizeof(buf), &len)
            != NGX_AI_RELAY_JSON_GET_OK
            || ngx_ai_relay_json_whole(buf, len, &n) != 0)
        {
            return -1;
        }

    } else if (m->type != NGX_AI_RELAY_JSON_NUMBER
               || ngx_ai_relay_json_whole(body + m->value_start,
                                          m->value_end - m->value_start, &n)
                  != 0)
    {
        return -1;
    }

    return n > 0 ? n : -1;
}


/* audio/speech is priced by the characters of its "input" */

static ngx_int_t
ngx_ai_relay_body_characters(ngx_http_request_t *r, ngx_ai_relay_ctx_t *ctx)
{
    int      rc;
    size_t   len;
    u_char  *buf;

    buf = ngx_pnalloc(r->pool, ctx->body.raw.len);
    if (buf == NULL) {
        ngx_ai_relay_set_error(r, NGX_HTTP_INTERNAL_SERVER_ERROR, "",
                               "internal error");
        return NGX_ERROR;
    }

    rc = ngx_ai_relay_json_get_string(ctx->body.scan, ctx->body.raw.data,
                                      "input", 5, buf, ctx->body.raw.len,
                                      &len);

    if (rc != NGX_AI_RELAY_JSON_GET_OK) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "ai relay: speech without a string \"input\"");
        ngx_ai_relay_set_error(r, NGX_HTTP_BAD_REQUEST, "invalid_request",
                               "You must provide the text to speak as a "
                               "string \"input\".");
        return NGX_ERROR;
    }

    ctx->body.characters = ngx_ai_relay_endpoint_chars(buf, len);

    return NGX_OK;
}


/*
 * A path the location passes through (ai_relay_passthrough): the body
 * goes as it came, whatever it is, to a channel of the operator's model,
 * priced per request.
 */

ngx_int_t
ngx_ai_relay_body_passthrough(ngx_http_request_t *r, ngx_ai_relay_ctx_t *ctx)
{
    ngx_ai_relay_loc_conf_t  *arlcf;

    arlcf = ngx_http_get_module_loc_conf(r, ngx_ai_relay_module);

    ctx->body.model = arlcf->passthrough;
    ctx->body.usage_format = NGX_AI_RELAY_FMT_UNKNOWN;
    ctx->body.max_tokens = 0;
    ctx->body.prompt_estimate = 0;
    ctx->body.images_requested = 0;

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "ai relay: %V passed through as model \"%V\"",
                   &r->uri, &ctx->body.model);

    return NGX_OK;
}


/*
 * Splice the edits into the body as a chain of buffers that point into
 * the original bytes: a 1 MB body is not copied again.
 */

ngx_int_t
ngx_ai_relay_body_rewrite(ngx_http_request_t *r, ngx_ai_relay_ctx_t *ctx)
{
    int                          rc;
    u_char                      *quoted;
    size_t                       n, npieces, out_len, qlen;
    ngx_ai_relay_json_edit_t     edits[2];
    ngx_ai_relay_json_piece_t    pieces[5];
    ngx_ai_relay_loc_conf_t     *arlcf;

    arlcf = ngx_http_get_module_loc_conf(r, ngx_ai_relay_module);

    if (ctx->body.form) {
        return ngx_ai_relay_form_rewrite(r, ctx);
    }

    if (ctx->body.scan == NULL) {
        /* passed through: not ours to change */
        return NGX_OK;
    }

    ctx->xlate.to = ngx_ai_relay_body_xlate_target(ctx, ctx->route.channel);

    if (ctx->xlate.to) {
        return ngx_ai_relay_body_xlate_use(r, ctx);
    }

    n = 0;

    if (!ctx->body.gemini_path && !ctx->body.task_model
        && (ctx->body.upstream_model.len != ctx->body.model.len
            || ngx_strncmp(ctx->body.upstream_model.data, ctx->body.model.data,
                           ctx->body.model.len) != 0))
    {
        qlen = ngx_ai_relay_json_quote_len(ctx->body.upstream_model.data,
                                           ctx->body.upstream_model.len);
        quoted = ngx_pnalloc(r->pool, qlen);
        if (quoted == NULL) {
            return NGX_ERROR;
        }

        ngx_ai_relay_json_quote(quoted, ctx->body.upstream_model.data,
                                ctx->body.upstream_model.len);

        if (ngx_ai_relay_json_edit_member(ctx->body.scan, ctx->body.raw.data,
                                          "model", 5, quoted, qlen, NULL, 0,
                                          &edits[n])
            != 0)
        {
            return NGX_ERROR;
        }

        n++;
    }

    if (ctx->body.stream && arlcf->inject_usage
        && (ctx->body.usage_format == NGX_AI_RELAY_FMT_OPENAI_CHAT
            || ctx->body.usage_format == NGX_AI_RELAY_FMT_OPENAI_COMPLETIONS))
    {
        rc = ngx_ai_relay_json_edit_include_usage(ctx->body.scan,
                                                  ctx->body.raw.data,
                                                  &edits[n]);

        switch (rc) {

        case NGX_AI_RELAY_JSON_USAGE_ADD_OPTIONS:
        case NGX_AI_RELAY_JSON_USAGE_SET_OPTIONS:
        case NGX_AI_RELAY_JSON_USAGE_ADD_FIELD:
        case NGX_AI_RELAY_JSON_USAGE_SET_FIELD:
            ctx->stream.injected_usage = 1;
            n++;
            break;

        case NGX_AI_RELAY_JSON_USAGE_CONFLICT:
            ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                          "ai relay: stream_options is not an object, "
                          "usage will be estimated if not reported");
            break;

        default: /* NGX_AI_RELAY_JSON_USAGE_PRESENT */
            break;
        }
    }

    if (n == 0 && ctx->route.tries <= 1) {
        return NGX_OK;
    }

    if (n == 0) {

        /* a failover: the first attempt's buffers were sent, new ones */

        pieces[0].data = ctx->body.raw.data;
        pieces[0].len = ctx->body.raw.len;
        npieces = 1;
        out_len = ctx->body.raw.len;

    } else if (ngx_ai_relay_json_splice(ctx->body.raw.data,
                                        ctx->body.raw.len, edits, n, pieces,
                                        5, &npieces, &out_len)
               != 0)
    {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "ai relay: body splice failed");
        return NGX_ERROR;
    }

    return ngx_ai_relay_body_chain(r, ctx, pieces, npieces, out_len);
}


/* the body the upstream gets: buffers pointing at the pieces */

static ngx_int_t
ngx_ai_relay_body_chain(ngx_http_request_t *r, ngx_ai_relay_ctx_t *ctx,
    ngx_ai_relay_json_piece_t *pieces, size_t npieces, size_t out_len)
{
    size_t            i;
    ngx_buf_t        *b;
    ngx_chain_t      *cl, **ll;
    ngx_table_elt_t  *h;

    ll = &cl;
    b = NULL;

    for (i = 0; i < npieces; i++) {
        b = ngx_calloc_buf(r->pool);
        if (b == NULL) {
            return NGX_ERROR;
        }

        b->pos = (u_char *) pieces[i].data;
        b->last = b->pos + pieces[i].len;
        b->start = b->pos;
        b->end = b->last;
        b->memory = 1;

        *ll = ngx_alloc_chain_link(r->pool);
        if (*ll == NULL) {
            return NGX_ERROR;
        }

        (*ll)->buf = b;
        ll = &(*ll)->next;
    }

    *ll = NULL;

    if (b == NULL) {
        return NGX_ERROR;
    }

    b->last_buf = 1;

    r->request_body->bufs = cl;
    r->request_body->temp_file = NULL;

    r->headers_in.content_length_n = out_len;

    h = r->headers_in.content_length;

    if (h) {
        h->value.data = ngx_pnalloc(r->pool, NGX_OFF_T_LEN);
        if (h->value.data == NULL) {
            return NGX_ERROR;
        }

        h->value.len = ngx_sprintf(h->value.data, "%O", (off_t) out_len)
                       - h->value.data;
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "ai relay: body rewritten, %uz -> %uz bytes",
                   ctx->body.raw.len, out_len);

    return NGX_OK;
}


/*
 * Format translation.  A channel that speaks another API than the
 * client's gets the request translated (ngx_ai_relay_xlate.c) when the
 * endpoint is a chat one (chat/completions, messages, generateContent,
 * streamGenerateContent) and the pair is one the relay translates; any
 * other request goes as it is.
 */

ngx_uint_t
ngx_ai_relay_body_xlate_target(ngx_ai_relay_ctx_t *ctx,
    ngx_ai_relay_channel_t *ch)
{
    ngx_ai_relay_format_e  to;

    if (ch == NULL || ctx->endpoint == NULL) {
        return 0;
    }

    /* only the chat endpoints: never count_tokens, embeddings, ... */

    switch (ctx->endpoint->id) {

    case NGX_AI_RELAY_EP_CHAT:
    case NGX_AI_RELAY_EP_MESSAGES:
    case NGX_AI_RELAY_EP_GEMINI_GENERATE:
    case NGX_AI_RELAY_EP_GEMINI_STREAM:
        break;

    default:
        return 0;
    }

    switch (ch->provider) {

    case NGX_AI_RELAY_PROVIDER_ANTHROPIC:
        to = NGX_AI_RELAY_FMT_ANTHROPIC_MESSAGES;
        break;

    case NGX_AI_RELAY_PROVIDER_GEMINI:
        to = NGX_AI_RELAY_FMT_GEMINI;
        break;

    default:

        /*
         * openai-compatible: a relay of relays, or a provider's endpoint
         * that speaks several APIs (api.deepseek.com/anthropic): what the
         * client sends goes as it is, as before translation existed;
         * openai: OpenAI's API only, other clients translated
         */

        if (ch->compatible) {
            return 0;
        }

        to = NGX_AI_RELAY_FMT_OPENAI_CHAT;
        break;
    }

    if (!ngx_ai_relay_xlate_supported(ctx->body.usage_format, to)) {
        return 0;
    }

    return to;
}


/*
 * Once the route is known and before any money is held: the body
 * translated for every format the model's enabled channels need.  A
 * channel whose API cannot express the request is left out of this
 * request's channels (excluded, as one with no key left); the request is
 * refused (400) with no state changed only when no channel is left.  A
 * failover to another channel of the same format costs no second
 * translation.  The reservation covers the largest output any channel in
 * play may be asked for (ctx->xlate.max_out): a translation may send
 * another max_tokens than the client's body names (max_completion_tokens
 * first, the default plus a thinking budget).  What follows the model is
 * kept: each channel names the model its own way.
 */

ngx_int_t
ngx_ai_relay_body_xlate_prepare(ngx_http_request_t *r,
    ngx_ai_relay_ctx_t *ctx)
{
    int                        rc;
    size_t                     skip;
    int64_t                    max_out[NGX_AI_RELAY_FMT_GEMINI + 1];
    ngx_str_t                  alt;
    ngx_uint_t                 i, to, inplay;
    ngx_uint_t                 state[NGX_AI_RELAY_FMT_GEMINI + 1];
    ngx_ai_relay_channel_t    *ch;
    ngx_ai_relay_loc_conf_t   *arlcf;
    ngx_ai_relay_xlate_req_t  *rq;

    arlcf = ngx_http_get_module_loc_conf(r, ngx_ai_relay_module);

    ctx->xlate.failed = 0;
    ctx->xlate.native = 0;
    ctx->xlate.max_out = -1;
    rq = NULL;
    inplay = 0;

    /* per format: 0 not yet translated, 1 translated, 2 refused */
    ngx_memzero(state, sizeof(state));

    /*
     * Gemini's streamGenerateContent without alt=sse answers a JSON
     * array, which no translated stream is: only a Gemini channel takes it
     */

    if (ctx->endpoint && ctx->endpoint->id == NGX_AI_RELAY_EP_GEMINI_STREAM
        && (ngx_http_arg(r, (u_char *) "alt", 3, &alt) != NGX_OK
            || alt.len != 3 || ngx_strncmp(alt.data, "sse", 3) != 0))
    {
        for (i = NGX_AI_RELAY_FMT_OPENAI_CHAT; i <= NGX_AI_RELAY_FMT_GEMINI;
             i++)
        {
            state[i] = 2;
        }

        ngx_str_set(&ctx->xlate.error, "streamGenerateContent without "
                    "alt=sse (a JSON array) cannot be sent to this model's "
                    "channel; ask for alt=sse");
    }

    for (i = 0; i < ctx->route.nchannels; i++) {

        ch = &ctx->route.channels[i];

        if (!ch->enabled) {
            continue;
        }

        to = ngx_ai_relay_body_xlate_target(ctx, ch);

        if (to == 0) {
            ctx->xlate.native = 1;
            inplay++;
            continue;
        }

        if (state[to] == 0) {

            if (rq == NULL) {
                rq = ngx_pcalloc(r->pool, sizeof(ngx_ai_relay_xlate_req_t));
                if (rq == NULL) {
                    return NGX_ERROR;
                }
            }

            rq->body = ctx->body.raw.data;
            rq->len = ctx->body.raw.len;
            rq->scan = ctx->body.scan;
            rq->model = ctx->body.resolved_model.data;
            rq->model_len = ctx->body.resolved_model.len;
            rq->default_max_tokens = arlcf->default_max_tokens;
            rq->from = ctx->body.usage_format;
            rq->to = to;
            rq->stream = ctx->body.stream;   /* Gemini: said by the path */

            rc = ngx_ai_relay_xlate_request(rq, ngx_ai_relay_body_alloc,
                                            r->pool);

            if (rc == NGX_AI_RELAY_XLATE_INVALID) {
                state[to] = 2;

                if (ctx->xlate.error.len == 0) {
                    ctx->xlate.error.len = ngx_strlen(rq->err);
                    ctx->xlate.error.data = ngx_pnalloc(r->pool,
                                                       ctx->xlate.error.len);
                    if (ctx->xlate.error.data == NULL) {
                        return NGX_ERROR;
                    }

                    ngx_memcpy(ctx->xlate.error.data, rq->err,
                               ctx->xlate.error.len);
                }

            } else {

                /* Gemini names the model in the path, the others in the
                 * body */

                skip = (to == NGX_AI_RELAY_FMT_GEMINI)
                       ? 0
                       : sizeof("{\"model\":") - 1
                         + ngx_ai_relay_json_quote_len(rq->model,
                                                       rq->model_len);

                if (rc != NGX_AI_RELAY_XLATE_OK || rq->out_len <= skip) {
                    return NGX_ERROR;
                }

                state[to] = 1;
                max_out[to] = rq->max_out >= 0 ? rq->max_out
                                               : arlcf->default_max_tokens;

                ctx->xlate.rest[to].data = rq->out + skip;
                ctx->xlate.rest[to].len = rq->out_len - skip;
                ctx->xlate.include_usage = rq->include_usage;

                ngx_log_debug4(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                               "ai relay: request translated from format "
                               "%d to %ui, %uz bytes, max_out %L",
                               (int) rq->from, to, rq->out_len,
                               max_out[to]);
            }
        }

        if (state[to] == 2) {
            ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                          "ai relay: request cannot be translated for "
                          "channel %V, left out: %V", &ch->id,
                          &ctx->xlate.error);
            ch->excluded = 1;
            continue;
        }

        inplay++;

        if (max_out[to] > ctx->xlate.max_out) {
            ctx->xlate.max_out = max_out[to];
        }
    }

    if (inplay == 0 && ctx->xlate.error.len) {
        /* no channel of the model can express it */
        ctx->xlate.failed = 1;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_ai_relay_body_xlate_use(ngx_http_request_t *r, ngx_ai_relay_ctx_t *ctx)
{
    u_char                     *quoted;
    size_t                      qlen;
    ngx_str_t                  *rest;
    ngx_ai_relay_json_piece_t   pieces[3];

    rest = &ctx->xlate.rest[ctx->xlate.to];

    if (rest->len == 0) {
        /* a channel prepare() did not see: a cached route changed */
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "ai relay: no translated body for channel %V",
                      &ctx->route.channel->id);
        return NGX_ERROR;
    }

    /* the stream's usage is the translator's business */
    ctx->stream.injected_usage = 0;

    if (ctx->xlate.to == NGX_AI_RELAY_FMT_GEMINI) {
        pieces[0].data = rest->data;
        pieces[0].len = rest->len;

        return ngx_ai_relay_body_chain(r, ctx, pieces, 1, rest->len);
    }

    qlen = ngx_ai_relay_json_quote_len(ctx->body.upstream_model.data,
                                       ctx->body.upstream_model.len);
    quoted = ngx_pnalloc(r->pool, qlen);
    if (quoted == NULL) {
        return NGX_ERROR;
    }

    ngx_ai_relay_json_quote(quoted, ctx->body.upstream_model.data,
                            ctx->body.upstream_model.len);

    pieces[0].data = (u_char *) "{\"model\":";
    pieces[0].len = sizeof("{\"model\":") - 1;
    pieces[1].data = quoted;
    pieces[1].len = qlen;
    pieces[2].data = rest->data;
    pieces[2].len = rest->len;

    return ngx_ai_relay_body_chain(r, ctx, pieces, 3,
                                   pieces[0].len + qlen + rest->len);
}


static void *
ngx_ai_relay_body_alloc(void *data, size_t size)
{
    return ngx_pnalloc(data, size);
}
