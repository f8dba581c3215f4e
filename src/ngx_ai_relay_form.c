
/*
 * Copyright (C) ngx_ai_relay authors
 *
 * multipart/form-data bodies (audio transcriptions and translations,
 * image edits and variations): read as nginx reads them, by a request
 * body filter that feeds each piece to the parser (multipart.c) before
 * nginx keeps it, in memory or in its temporary file.  The fields (model,
 * n, size, quality, stream) are kept; a file part is looked at once, for
 * the boundary, and never copied.  The new body for the upstream is a
 * chain of buffers pointing into the old one, memory or file ranges, with
 * only the model's value replaced.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_ai_relay_module.h"
#include "ngx_ai_relay_form.h"
#include "ngx_ai_relay_error.h"
#include "ngx_ai_relay_audio.h"


static ngx_int_t ngx_ai_relay_form_filter(ngx_http_request_t *r,
    ngx_chain_t *in);
static ngx_int_t ngx_ai_relay_form_slice(ngx_http_request_t *r,
    ngx_chain_t *in, off_t from, off_t to, ngx_chain_t ***ll,
    ngx_buf_t **last);
static ngx_int_t ngx_ai_relay_form_field(ngx_http_request_t *r,
    ngx_ai_relay_mp_t *mp, const char *name, ngx_str_t *value);


static ngx_http_request_body_filter_pt   ngx_http_next_request_body_filter;


ngx_int_t
ngx_ai_relay_form_init(ngx_conf_t *cf)
{
    ngx_http_next_request_body_filter = ngx_http_top_request_body_filter;
    ngx_http_top_request_body_filter = ngx_ai_relay_form_filter;

    return NGX_OK;
}


/*
 * Before the body is read: NGX_OK with a parser set up for a multipart
 * body, NGX_DECLINED for another body (JSON), NGX_ERROR with the error
 * set.
 */

ngx_int_t
ngx_ai_relay_form_start(ngx_http_request_t *r, ngx_ai_relay_ctx_t *ctx)
{
    ngx_str_t          *ct;
    ngx_ai_relay_mp_t  *mp;

    if (r->headers_in.content_type == NULL) {
        return NGX_DECLINED;
    }

    ct = &r->headers_in.content_type->value;

    if (ct->len < sizeof("multipart/") - 1
        || ngx_strncasecmp(ct->data, (u_char *) "multipart/",
                           sizeof("multipart/") - 1) != 0)
    {
        return NGX_DECLINED;
    }

    mp = ngx_palloc(r->pool, sizeof(ngx_ai_relay_mp_t));
    if (mp == NULL) {
        ngx_ai_relay_set_error(r, NGX_HTTP_INTERNAL_SERVER_ERROR, "",
                               "internal error");
        return NGX_ERROR;
    }

    if (ngx_ai_relay_mp_init(mp, ct->data, ct->len) != 0) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "ai relay: multipart body without a boundary");
        ngx_ai_relay_set_error(r, NGX_HTTP_BAD_REQUEST, "invalid_multipart",
                               "The request must be multipart/form-data "
                               "with a boundary.");
        return NGX_ERROR;
    }

    ctx->body.form = mp;

    return NGX_OK;
}


/* each piece of the body, as nginx reads it, before it is kept */

static ngx_int_t
ngx_ai_relay_form_filter(ngx_http_request_t *r, ngx_chain_t *in)
{
    ngx_buf_t           *b;
    ngx_chain_t         *cl;
    ngx_ai_relay_ctx_t  *ctx;

    if (r == r->main) {
        ctx = ngx_http_get_module_ctx(r, ngx_ai_relay_module);

        if (ctx && ctx->body.form && !ctx->body.form_read) {

            for (cl = in; cl; cl = cl->next) {
                b = cl->buf;

                if (ngx_buf_in_memory(b) && b->last > b->pos) {
                    (void) ngx_ai_relay_mp_feed(ctx->body.form, b->pos,
                                                b->last - b->pos);
                }
            }
        }
    }

    return ngx_http_next_request_body_filter(r, in);
}


/* the body was read: its fields */

ngx_int_t
ngx_ai_relay_form_parse(ngx_http_request_t *r, ngx_ai_relay_ctx_t *ctx)
{
    ngx_int_t                 n;
    ngx_str_t                 v;
    ngx_ai_relay_mp_t        *mp;
    ngx_ai_relay_mp_part_t   *model, *file;

    static const char  *single[] = { "model", "n", "size", "quality",
                                     "stream", "seconds", "response_format" };

    mp = ctx->body.form;
    ctx->body.form_read = 1;

    if (ngx_ai_relay_mp_finish(mp) != NGX_AI_RELAY_MP_OK) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "ai relay: client sent an invalid multipart body: %s",
                      mp->error);
        ngx_ai_relay_set_error(r, NGX_HTTP_BAD_REQUEST, "invalid_multipart",
                               "We could not parse the multipart body of "
                               "your request: %s.", mp->error);
        return NGX_ERROR;
    }

    /*
     * a priced field twice: the relay would read the first, the upstream
     * may read the last (Starlette does)
     */

    for (n = 0; n < (ngx_int_t) (sizeof(single) / sizeof(single[0])); n++) {
        if (ngx_ai_relay_mp_count(mp, single[n]) > 1) {
            ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                          "ai relay: client sent the field \"%s\" twice",
                          single[n]);
            ngx_ai_relay_set_error(r, NGX_HTTP_BAD_REQUEST,
                                   "invalid_multipart",
                                   "We could not parse the multipart body "
                                   "of your request: the field '%s' is "
                                   "given more than once.", single[n]);
            return NGX_ERROR;
        }
    }

    model = ngx_ai_relay_mp_find(mp, "model");

    if (model == NULL) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "ai relay: client sent no model");
        ngx_ai_relay_set_error(r, NGX_HTTP_BAD_REQUEST, "missing_model",
                               "You must provide a model parameter.");
        return NGX_ERROR;
    }

    if (model->file || !model->kept || model->end == model->start
        || ngx_strlchr(model->value, model->value + (model->end - model->start),
                       '\0'))
    {
        ngx_ai_relay_set_error(r, NGX_HTTP_BAD_REQUEST, "invalid_model",
                               "The model parameter must be a non-empty "
                               "string of at most %d bytes.",
                               NGX_AI_RELAY_MP_VALUE_LEN);
        return NGX_ERROR;
    }

    ctx->body.model.len = (size_t) (model->end - model->start);
    ctx->body.model.data = ngx_pnalloc(r->pool, ctx->body.model.len + 1);
    if (ctx->body.model.data == NULL) {
        goto failed;
    }

    ngx_memcpy(ctx->body.model.data, model->value, ctx->body.model.len);
    ctx->body.model.data[ctx->body.model.len] = '\0';

    ctx->body.usage_format = ctx->endpoint->format;
    ctx->body.max_tokens = -1;
    ctx->body.images_requested = 1;
    ctx->body.prompt_estimate = (int64_t) (mp->text_bytes + 3) / 4;

    if (ctx->body.prompt_estimate == 0) {
        ctx->body.prompt_estimate = 1;
    }

    if (ngx_ai_relay_form_field(r, mp, "n", &v) != NGX_OK
        || ngx_ai_relay_form_field(r, mp, "size", &ctx->body.image_size)
           != NGX_OK
        || ngx_ai_relay_form_field(r, mp, "quality", &ctx->body.image_quality)
           != NGX_OK)
    {
        goto failed;
    }

    n = ngx_atoi(v.data, v.len);

    if (n > 0 && n <= 128) {
        ctx->body.images_requested = n;
    }

    if (ngx_ai_relay_form_field(r, mp, "stream", &v) != NGX_OK) {
        goto failed;
    }

    ctx->body.stream = (v.len == 4 && ngx_strncmp(v.data, "true", 4) == 0);

    if (ngx_ai_relay_form_field(r, mp, "seconds", &v) != NGX_OK) {
        goto failed;
    }

    n = ngx_atoi(v.data, v.len);
    ctx->body.seconds = (n > 0 && n <= 3600) ? n : 0;

    /*
     * a transcription is billed from the usage of its JSON answer (tokens
     * or seconds); text, srt and vtt answers carry none, so they would go
     * almost free: refused, before anything is reserved
     */

    if (ctx->endpoint->id == NGX_AI_RELAY_EP_TRANSCRIPTION
        || ctx->endpoint->id == NGX_AI_RELAY_EP_TRANSLATION)
    {
        if (ngx_ai_relay_form_field(r, mp, "response_format", &v) != NGX_OK) {
            goto failed;
        }

        if (v.len
            && !(v.len == 4 && ngx_strncmp(v.data, "json", 4) == 0)
            && !(v.len == 12 && ngx_strncmp(v.data, "verbose_json", 12) == 0))
        {
            ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                          "ai relay: client asked for response_format "
                          "\"%V\", which carries no usage", &v);
            ngx_ai_relay_set_error(r, NGX_HTTP_BAD_REQUEST,
                                   "unsupported_response_format",
                                   "This relay bills transcriptions from "
                                   "the usage of their JSON answer: "
                                   "response_format must be 'json' or "
                                   "'verbose_json'.");
            return NGX_ERROR;
        }

        /*
         * how long the audio can play, from its first bytes (the parser
         * kept them): a price by the second reserves that much
         */

        file = ngx_ai_relay_mp_find(mp, "file");

        if (file && file->file) {
            ctx->body.audio_seconds = (int64_t) ngx_ai_relay_audio_seconds(
                file->value,
                ngx_min(file->end - file->start, NGX_AI_RELAY_MP_VALUE_LEN),
                file->end - file->start);
        }
    }

    /* the body as read: every rewrite starts from it */

    ctx->body.form_bufs = r->request_body->bufs;

    ngx_log_debug4(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "ai relay: multipart body %uL bytes, %ui parts, "
                   "model \"%V\", stream %d", mp->offset,
                   (ngx_uint_t) mp->nparts, &ctx->body.model,
                   (int) ctx->body.stream);

    return NGX_OK;

failed:

    ngx_ai_relay_set_error(r, NGX_HTTP_INTERNAL_SERVER_ERROR, "",
                           "internal error");
    return NGX_ERROR;
}


/* a short field's value (not a file's), or empty */

static ngx_int_t
ngx_ai_relay_form_field(ngx_http_request_t *r, ngx_ai_relay_mp_t *mp,
    const char *name, ngx_str_t *value)
{
    ngx_ai_relay_mp_part_t  *part;

    ngx_str_null(value);

    part = ngx_ai_relay_mp_find(mp, name);

    if (part == NULL || part->file || !part->kept || part->end - part->start
                                                      > 32)
    {
        return NGX_OK;
    }

    value->len = (size_t) (part->end - part->start);
    value->data = ngx_pnalloc(r->pool, value->len + 1);
    if (value->data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(value->data, part->value, value->len);
    value->data[value->len] = '\0';

    return NGX_OK;
}


/*
 * The body for this try: the original buffers around a new model value.
 * Memory stays where it is, file ranges stay in the file.
 */

ngx_int_t
ngx_ai_relay_form_rewrite(ngx_http_request_t *r, ngx_ai_relay_ctx_t *ctx)
{
    off_t                    total, pos;
    ngx_buf_t               *b, *last;
    ngx_chain_t             *out, **ll, *cl;
    ngx_table_elt_t         *h;
    ngx_ai_relay_mp_part_t  *model;

    if (ctx->body.upstream_model.len == ctx->body.model.len
        && ngx_strncmp(ctx->body.upstream_model.data, ctx->body.model.data,
                       ctx->body.model.len) == 0
        && ctx->route.tries <= 1)
    {
        return NGX_OK;
    }

    model = ngx_ai_relay_mp_find(ctx->body.form, "model");
    total = (off_t) ctx->body.form->offset;

    out = NULL;
    ll = &out;
    last = NULL;

    if (ngx_ai_relay_form_slice(r, ctx->body.form_bufs, 0,
                                (off_t) model->start, &ll, &last)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_ERROR;
    }

    b->memory = 1;
    b->pos = ctx->body.upstream_model.data;
    b->last = b->pos + ctx->body.upstream_model.len;
    b->start = b->pos;
    b->end = b->last;

    *ll = ngx_alloc_chain_link(r->pool);
    if (*ll == NULL) {
        return NGX_ERROR;
    }

    (*ll)->buf = b;
    (*ll)->next = NULL;
    ll = &(*ll)->next;
    last = b;

    if (ngx_ai_relay_form_slice(r, ctx->body.form_bufs, (off_t) model->end,
                                total, &ll, &last)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    last->last_buf = 1;

    r->request_body->bufs = out;

    /*
     * nginx, retrying a request it sent (proxy_next_upstream ...
     * non_idempotent), restarts each file buffer where the previous one
     * ended: right only for one contiguous range of the file.  Ranges
     * with a gap (the model's old value cut out of the temporary file)
     * are not retried by nginx (upstream.c); the relay's failover
     * rebuilds them.
     */

    ctx->body.form_split = 0;
    pos = 0;

    for (cl = out; cl; cl = cl->next) {
        if (cl->buf->in_file) {
            if (cl->buf->file_pos != pos) {
                ctx->body.form_split = 1;
            }

            pos = cl->buf->file_last;
        }
    }

    r->headers_in.content_length_n = total - (off_t) (model->end - model->start)
                                     + (off_t) ctx->body.upstream_model.len;

    h = r->headers_in.content_length;

    if (h) {
        h->value.data = ngx_pnalloc(r->pool, NGX_OFF_T_LEN);
        if (h->value.data == NULL) {
            return NGX_ERROR;
        }

        h->value.len = ngx_sprintf(h->value.data, "%O",
                                   r->headers_in.content_length_n)
                       - h->value.data;
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "ai relay: multipart body rewritten, %O -> %O bytes",
                   total, r->headers_in.content_length_n);

    return NGX_OK;
}


/* buffers for the bytes from..to of the chain, sharing its memory or file */

static ngx_int_t
ngx_ai_relay_form_slice(ngx_http_request_t *r, ngx_chain_t *in, off_t from,
    off_t to, ngx_chain_t ***ll, ngx_buf_t **last)
{
    off_t         pos, size, a, z;
    ngx_buf_t    *b, *nb;
    ngx_chain_t  *cl;

    pos = 0;

    for (cl = in; cl && pos < to; cl = cl->next) {
        b = cl->buf;
        size = ngx_buf_size(b);

        if (size > 0 && pos + size > from) {
            a = ngx_max(from, pos) - pos;
            z = ngx_min(to, pos + size) - pos;

            nb = ngx_calloc_buf(r->pool);
            if (nb == NULL) {
                return NGX_ERROR;
            }

            if (ngx_buf_in_memory(b)) {
                nb->memory = 1;
                nb->pos = b->pos + a;
                nb->last = b->pos + z;
                nb->start = nb->pos;
                nb->end = nb->last;

            } else {
                nb->in_file = 1;
                nb->file = b->file;
                nb->file_pos = b->file_pos + a;
                nb->file_last = b->file_pos + z;
            }

            **ll = ngx_alloc_chain_link(r->pool);
            if (**ll == NULL) {
                return NGX_ERROR;
            }

            (**ll)->buf = nb;
            (**ll)->next = NULL;
            *ll = &(**ll)->next;
            *last = nb;
        }

        pos += size;
    }

    return NGX_OK;
}
