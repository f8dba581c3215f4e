
/*
 * Copyright (C) ngx_ai_relay authors
 *
 * libFuzzer target for format translation (src/ngx_ai_relay_xlate.c,
 * src/ngx_ai_relay_xlate_sse.c).  The input is tried as a client's
 * request body (when it is a valid JSON object, as the module's scanner
 * requires), as a whole upstream answer, as an upstream error body, and
 * as an upstream event stream, for every pair the relay translates.
 * Beyond crashes, leaks and UB (ASan/UBSan), it aborts if a translation
 * that succeeded is not valid JSON, or if a translated stream holds an
 * event whose data is neither valid JSON nor [DONE].
 */


#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ngx_ai_relay_sse.h"
#include "ngx_ai_relay_xlate.h"


#define FZ_BLOCKS   4096


typedef struct {
    void      *blocks[FZ_BLOCKS];
    size_t     n;
} fz_pool_t;


static const ngx_ai_relay_format_e  fz_pairs[][2] = {
    { NGX_AI_RELAY_FMT_OPENAI_CHAT, NGX_AI_RELAY_FMT_ANTHROPIC_MESSAGES },
    { NGX_AI_RELAY_FMT_ANTHROPIC_MESSAGES, NGX_AI_RELAY_FMT_OPENAI_CHAT },
    { NGX_AI_RELAY_FMT_OPENAI_CHAT, NGX_AI_RELAY_FMT_GEMINI },
    { NGX_AI_RELAY_FMT_GEMINI, NGX_AI_RELAY_FMT_OPENAI_CHAT },
    { NGX_AI_RELAY_FMT_ANTHROPIC_MESSAGES, NGX_AI_RELAY_FMT_GEMINI },
    { NGX_AI_RELAY_FMT_GEMINI, NGX_AI_RELAY_FMT_ANTHROPIC_MESSAGES },
};

#define FZ_NPAIRS  (sizeof(fz_pairs) / sizeof(fz_pairs[0]))


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


static void *
fz_alloc(void *data, size_t size)
{
    fz_pool_t  *pool;

    pool = data;

    if (pool->n == FZ_BLOCKS) {
        return NULL;
    }

    pool->blocks[pool->n] = malloc(size);

    return pool->blocks[pool->n] ? pool->blocks[pool->n++] : NULL;
}


static void
fz_free(fz_pool_t *pool)
{
    while (pool->n) {
        free(pool->blocks[--pool->n]);
    }
}


static int
fz_json(const u_char *p, size_t len)
{
    ngx_ai_relay_json_scan_t  scan;

    ngx_ai_relay_json_scan_init(&scan, NULL, 0);

    return ngx_ai_relay_json_scan(&scan, p, len) == NGX_AI_RELAY_JSON_OK;
}


static void
fz_check(const char *what, const u_char *p, size_t len)
{
    if (!fz_json(p, len)) {
        fprintf(stderr, "%s is not valid JSON: %.*s\n", what, (int) len,
                (const char *) p);
        abort();
    }
}


/* every event a translated stream gave: data JSON or [DONE] */

static void
fz_check_events(const u_char *p, size_t len)
{
    size_t              n;
    fz_pool_t           pool;
    ngx_ai_relay_sse_t  sse;

    memset(&pool, 0, sizeof(pool));
    ngx_ai_relay_sse_init(&sse, fz_alloc, &pool, 0);

    while (len) {
        n = ngx_ai_relay_sse_feed(&sse, p, len);
        p += n;
        len -= n;

        if (!sse.event_ready) {
            continue;
        }

        if (!(sse.data_len == 6 && memcmp(sse.data, "[DONE]", 6) == 0)) {
            fz_check("a translated event", sse.data, sse.data_len);
        }
    }

    if (ngx_ai_relay_sse_partial(&sse)) {
        fprintf(stderr, "a translated stream ends inside an event\n");
        abort();
    }

    fz_free(&pool);
}


static void
fz_request(const uint8_t *data, size_t size)
{
    size_t                       i;
    fz_pool_t                    pool;
    ngx_ai_relay_xlate_req_t     rq;
    ngx_ai_relay_json_scan_t     scan;
    ngx_ai_relay_json_member_t   members[64];

    ngx_ai_relay_json_scan_init(&scan, members, 64);

    if (ngx_ai_relay_json_scan(&scan, data, size) != NGX_AI_RELAY_JSON_OK) {
        return;
    }

    for (i = 0; i < FZ_NPAIRS; i++) {
        memset(&pool, 0, sizeof(pool));
        memset(&rq, 0, sizeof(rq));

        rq.body = data;
        rq.len = size;
        rq.scan = &scan;
        rq.model = (const u_char *) "m\"odel";
        rq.model_len = 6;
        rq.default_max_tokens = 4096;
        rq.from = fz_pairs[i][0];
        rq.to = fz_pairs[i][1];
        rq.stream = size & 1;

        if (ngx_ai_relay_xlate_request(&rq, fz_alloc, &pool)
            == NGX_AI_RELAY_XLATE_OK)
        {
            fz_check("a translated request", rq.out, rq.out_len);
        }

        fz_free(&pool);
    }
}


static void
fz_answer(const uint8_t *data, size_t size)
{
    size_t             i;
    fz_pool_t          pool;
    ngx_ai_relay_jw_t  w;

    for (i = 0; i < FZ_NPAIRS; i++) {
        memset(&pool, 0, sizeof(pool));

        /* the answer comes from the channel: to -> from */

        ngx_ai_relay_jw_init(&w, fz_alloc, &pool);

        if (ngx_ai_relay_xlate_response(fz_pairs[i][1], fz_pairs[i][0],
                                        data, size, 1700000000, &w)
            == NGX_AI_RELAY_XLATE_OK)
        {
            fz_check("a translated answer", w.buf, w.len);
        }

        ngx_ai_relay_jw_init(&w, fz_alloc, &pool);
        ngx_ai_relay_xlate_error(fz_pairs[i][1], fz_pairs[i][0], 400, data,
                                 size, &w);

        if (!w.failed) {
            fz_check("a translated error", w.buf, w.len);
        }

        fz_free(&pool);
    }
}


static void
fz_stream(const uint8_t *data, size_t size)
{
    size_t                     i, n, len;
    u_char                    *out;
    size_t                     out_len;
    const u_char              *p;
    fz_pool_t                  pool;
    ngx_ai_relay_sse_t         sse;
    ngx_ai_relay_xlate_sse_t   x;

    for (i = 0; i < FZ_NPAIRS; i++) {
        memset(&pool, 0, sizeof(pool));

        ngx_ai_relay_sse_init(&sse, fz_alloc, &pool, 0);
        ngx_ai_relay_xlate_sse_init(&x, fz_pairs[i][1], fz_pairs[i][0],
                                    fz_alloc, &pool);
        x.include_usage = size & 1;

        out = NULL;
        out_len = 0;
        p = data;
        len = size;

        for ( ;; ) {
            if (len) {
                n = ngx_ai_relay_sse_feed(&sse, p, len);
                p += n;
                len -= n;

                if (!sse.event_ready) {
                    continue;
                }

            } else if (!ngx_ai_relay_sse_finish(&sse)) {
                break;
            }

            if (ngx_ai_relay_xlate_sse_event(&x, sse.event_name,
                                             sse.event_name_len, sse.data,
                                             sse.data_len)
                != NGX_AI_RELAY_XLATE_OK)
            {
                break;
            }

            if (x.out.len) {
                out = realloc(out, out_len + x.out.len);
                if (out == NULL) {
                    abort();
                }

                memcpy(out + out_len, x.out.buf, x.out.len);
                out_len += x.out.len;
                x.out.len = 0;
            }

            if (len == 0 && sse.unterminated) {
                break;
            }
        }

        if (ngx_ai_relay_xlate_sse_finish(&x) == NGX_AI_RELAY_XLATE_OK
            && x.out.len)
        {
            out = realloc(out, out_len + x.out.len);
            if (out == NULL) {
                abort();
            }

            memcpy(out + out_len, x.out.buf, x.out.len);
            out_len += x.out.len;
        }

        if (out_len) {
            fz_check_events(out, out_len);
        }

        free(out);
        fz_free(&pool);
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_request(data, size);
    fz_answer(data, size);
    fz_stream(data, size);

    return 0;
}
