
/*
 * Copyright (C) ngx_ai_relay authors
 *
 * libFuzzer target for the response path core: the input is fed to the
 * SSE parser once whole and once cut at pseudo-random points (derived
 * from the input, so runs are reproducible); every event goes to the
 * usage extractor of every format; the input is also tried as a whole
 * non-stream body.  Beyond crashes, leaks and UB (ASan/UBSan), it aborts
 * if the two feeds disagree on any event, boundary or usage number.
 */


#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ngx_ai_relay_sse.h"
#include "ngx_ai_relay_usage.h"


#define FZ_FORMATS   (NGX_AI_RELAY_FMT_GEMINI + 1)
#define FZ_BLOCKS    64


typedef struct {
    void                  *blocks[FZ_BLOCKS];
    size_t                 n;
} fz_pool_t;


typedef struct {
    uint64_t               hash;      /* of events and their boundaries */
    uint64_t               events;
    ngx_ai_relay_usage_t   u[FZ_FORMATS];
    int                    rc[FZ_FORMATS];
} fz_result_t;


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


static uint64_t
fz_hash(uint64_t h, const void *p, size_t len)
{
    const u_char  *s;

    s = p;

    while (len--) {
        h = (h ^ *s++) * 0x100000001b3ULL;
    }

    return h;
}


static void *
fz_alloc(void *data, size_t size)
{
    fz_pool_t  *pool;

    pool = data;

    if (pool->n == FZ_BLOCKS) {
        /* cannot happen: at most 13 doublings from 256 to 1 MiB */
        abort();
    }

    pool->blocks[pool->n] = malloc(size);

    return pool->blocks[pool->n] ? pool->blocks[pool->n++] : NULL;
}


static void
fz_event(ngx_ai_relay_sse_t *sse, size_t end, fz_result_t *r)
{
    int  i;

    r->events++;
    r->hash = fz_hash(r->hash, &end, sizeof(size_t));
    r->hash = fz_hash(r->hash, sse->event_name, sse->event_name_len);
    r->hash = fz_hash(r->hash, "|", 1);
    r->hash = fz_hash(r->hash, sse->data, sse->data_len);
    r->hash = fz_hash(r->hash, sse->truncated ? "T" : "t", 1);
    r->hash = fz_hash(r->hash, sse->unterminated ? "U" : "u", 1);

    for (i = 0; i < FZ_FORMATS; i++) {
        r->rc[i] |= ngx_ai_relay_usage_event(&r->u[i], sse->event_name,
                                             sse->event_name_len,
                                             sse->data, sse->data_len);
    }
}


/* seed == 0: one feed of everything */

static void
fz_run(const u_char *data, size_t size, size_t max_event, uint64_t seed,
    fz_result_t *r)
{
    int                  i;
    size_t               off, end, n, chunk;
    fz_pool_t            pool;
    ngx_ai_relay_sse_t   sse;

    memset(r, 0, sizeof(fz_result_t));
    memset(&pool, 0, sizeof(fz_pool_t));

    ngx_ai_relay_sse_init(&sse, fz_alloc, &pool, max_event);

    for (i = 0; i < FZ_FORMATS; i++) {
        ngx_ai_relay_usage_init(&r->u[i], (ngx_ai_relay_format_e) i);
    }

    off = 0;

    while (off < size) {

        if (seed == 0) {
            chunk = size;

        } else {
            /* xorshift64 */
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;

            chunk = (seed & 0x100) ? seed % 4 : seed % 97;
        }

        end = (size - off < chunk) ? size : off + chunk;

        if (chunk == 0) {
            /* an empty feed must be harmless, even with a CR pending */
            if (ngx_ai_relay_sse_feed(&sse, data + off, 0) != 0) {
                abort();
            }

            if (sse.event_ready) {
                fz_event(&sse, off, r);
            }

            continue;
        }

        while (off < end) {
            n = ngx_ai_relay_sse_feed(&sse, data + off, end - off);

            if (n > end - off) {
                abort();
            }

            off += n;

            if (sse.event_ready) {
                fz_event(&sse, off, r);

            } else if (off != end) {
                abort();
            }
        }
    }

    if (ngx_ai_relay_sse_finish(&sse)) {
        fz_event(&sse, size, r);
    }

    if (ngx_ai_relay_sse_partial(&sse) || sse.events != r->events) {
        abort();
    }

    for (i = 0; i < FZ_FORMATS; i++) {
        ngx_ai_relay_usage_finish(&r->u[i]);
    }

    for (n = 0; n < pool.n; n++) {
        free(pool.blocks[n]);
    }
}


static int
fz_same_usage(const ngx_ai_relay_usage_t *x, const ngx_ai_relay_usage_t *y)
{
    return x->prompt_tokens == y->prompt_tokens
           && x->cached_tokens == y->cached_tokens
           && x->cache_write_5m_tokens == y->cache_write_5m_tokens
           && x->cache_write_1h_tokens == y->cache_write_1h_tokens
           && x->completion_tokens == y->completion_tokens
           && x->reasoning_tokens == y->reasoning_tokens
           && x->images == y->images
           && x->text_units == y->text_units
           && x->text_tokens == y->text_tokens
           && x->usage_events == y->usage_events
           && x->json_errors == y->json_errors
           && x->found == y->found
           && x->has_error == y->has_error
           && x->estimated == y->estimated
           && x->error_len == y->error_len
           && x->error_len <= NGX_AI_RELAY_USAGE_ERROR_LEN
           && memcmp(x->error, y->error, x->error_len) == 0;
}


static void
fz_sane(const ngx_ai_relay_usage_t *u)
{
    if (u->prompt_tokens < 0 || u->cached_tokens < 0
        || u->completion_tokens < 0 || u->reasoning_tokens < 0
        || u->cache_write_5m_tokens < 0 || u->cache_write_1h_tokens < 0
        || u->images < 0 || u->text_units < 0 || u->text_tokens < 0
        || u->error_len > NGX_AI_RELAY_USAGE_ERROR_LEN
        || (u->has_error && u->error_len == 0))
    {
        abort();
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                   i;
    int64_t               tokens;
    uint64_t              h;
    fz_result_t          *a, *b;
    ngx_ai_relay_usage_t  u;

    static const size_t  max_events[] = { 0, 8, 64, 300 };
    static fz_result_t   results[2];

    h = fz_hash(0xcbf29ce484222325ULL, data, size);

    a = &results[0];
    b = &results[1];

    fz_run(data, size, max_events[h & 3], 0, a);
    fz_run(data, size, max_events[h & 3], h | 1, b);

    if (a->events != b->events || a->hash != b->hash) {
        fprintf(stderr, "events differ between whole and split feeds\n");
        abort();
    }

    for (i = 0; i < FZ_FORMATS; i++) {

        if (a->rc[i] != b->rc[i] || !fz_same_usage(&a->u[i], &b->u[i])) {
            fprintf(stderr, "usage differs for format %d\n", i);
            abort();
        }

        fz_sane(&a->u[i]);
    }

    /* the input as a whole non-stream body */

    for (i = 0; i < FZ_FORMATS; i++) {
        ngx_ai_relay_usage_init(&u, (ngx_ai_relay_format_e) i);
        (void) ngx_ai_relay_usage_body(&u, data, size);
        ngx_ai_relay_usage_finish(&u);
        fz_sane(&u);
    }

    tokens = ngx_ai_relay_estimate_tokens(data, size);

    if ((size && tokens <= 0) || (size == 0 && tokens != 0)
        || tokens > (int64_t) size)
    {
        abort();
    }

    return 0;
}
