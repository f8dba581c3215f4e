
/*
 * Copyright (C) ngx_ai_relay authors
 */


/*
 * Cost of the response-path core (src/ngx_ai_relay_sse.c and
 * src/ngx_ai_relay_usage.c) per SSE event and per non-stream body:
 *
 *   sse     ngx_ai_relay_sse_feed() over the whole stream, events only
 *   usage   ngx_ai_relay_usage_event() over the pre-split events
 *   both    the body filter's loop: feed, then usage of every event
 *   xlate   the same loop translating each event to another API's format
 *           (src/ngx_ai_relay_xlate_sse.c), as a translated stream costs:
 *           the ratio xlate / both is the translated stream's factor
 *   body    ngx_ai_relay_usage_body() over a whole response
 *
 * The streams are the recorded-style fixtures of t/unit/fixtures and the
 * mock upstream of `make bench` (bench/mock: 50 short OpenAI chunks and
 * an ~800 byte completion).
 *
 * Every number is the best of BENCH_TRIALS rounds.
 *
 * Usage: bench_stream [seconds per case, default 1]
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ngx_ai_relay_sse.h"
#include "ngx_ai_relay_usage.h"
#include "ngx_ai_relay_xlate.h"


#define BENCH_MAX_EVENTS  256
#define BENCH_MAX_CASES   16
#define BENCH_TRIALS      50    /* the best of, against a noisy machine */


typedef struct {
    const char             *dir;
    const char             *file;
    ngx_ai_relay_format_e   format;
    int                     stream;
    ngx_ai_relay_format_e   xlate_to;  /* the client's, or 0 */
} bench_case_t;


typedef struct {
    u_char                  name[NGX_AI_RELAY_SSE_NAME_LEN];
    size_t                  name_len;
    u_char                 *data;
    size_t                  data_len;
} bench_event_t;


typedef struct {
    u_char                 *buf;
    size_t                  size;
    size_t                  used;
} bench_pool_t;


typedef struct {
    const bench_case_t     *bc;
    u_char                 *buf;
    size_t                  len;
    bench_event_t           events[BENCH_MAX_EVENTS];
    size_t                  nevents;
    double                  ns[5];      /* sse, usage, both, body, xlate */
    int64_t                 units;
    int64_t                 tokens;
} bench_run_t;


static const bench_case_t  bench_cases[] = {
    { "bench/mock", "stream.sse", NGX_AI_RELAY_FMT_OPENAI_CHAT, 1,
      NGX_AI_RELAY_FMT_ANTHROPIC_MESSAGES },
    { "t/unit/fixtures", "openai_chat_stream_usage.sse",
      NGX_AI_RELAY_FMT_OPENAI_CHAT, 1, NGX_AI_RELAY_FMT_ANTHROPIC_MESSAGES },
    { "t/unit/fixtures", "openai_chat_stream_tools.sse",
      NGX_AI_RELAY_FMT_OPENAI_CHAT, 1, NGX_AI_RELAY_FMT_GEMINI },
    { "t/unit/fixtures", "openai_chat_stream_no_usage.sse",
      NGX_AI_RELAY_FMT_OPENAI_CHAT, 1, 0 },
    { "t/unit/fixtures", "openai_responses_stream_completed.sse",
      NGX_AI_RELAY_FMT_OPENAI_RESPONSES, 1, 0 },
    { "t/unit/fixtures", "anthropic_stream.sse",
      NGX_AI_RELAY_FMT_ANTHROPIC_MESSAGES, 1, NGX_AI_RELAY_FMT_OPENAI_CHAT },
    { "t/unit/fixtures", "anthropic_stream_tools.sse",
      NGX_AI_RELAY_FMT_ANTHROPIC_MESSAGES, 1, NGX_AI_RELAY_FMT_OPENAI_CHAT },
    { "t/unit/fixtures", "gemini_stream.sse", NGX_AI_RELAY_FMT_GEMINI, 1,
      NGX_AI_RELAY_FMT_OPENAI_CHAT },
    { "bench/mock", "completion.json", NGX_AI_RELAY_FMT_OPENAI_CHAT, 0, 0 },
    { "t/unit/fixtures", "openai_chat.json", NGX_AI_RELAY_FMT_OPENAI_CHAT,
      0, 0 },
    { "t/unit/fixtures", "anthropic.json",
      NGX_AI_RELAY_FMT_ANTHROPIC_MESSAGES, 0, 0 },
    { "t/unit/fixtures", "openai_responses.json",
      NGX_AI_RELAY_FMT_OPENAI_RESPONSES, 0, 0 },
    { NULL, NULL, 0, 0, 0 }
};


static double
bench_now(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);

    return ts.tv_sec + ts.tv_nsec / 1e9;
}


/* a bump allocator, reset before every stream: no malloc() in the loop */

static void *
bench_alloc(void *data, size_t size)
{
    void          *p;
    bench_pool_t  *pool;

    pool = data;

    if (pool->size - pool->used < size) {
        return NULL;
    }

    p = pool->buf + pool->used;
    pool->used += (size + 15) & ~(size_t) 15;

    return p;
}


static u_char *
bench_read(const char *root, const char *dir, const char *file, size_t *len)
{
    char    path[1024];
    long    size;
    FILE   *f;
    u_char *buf;

    snprintf(path, sizeof(path), "%s/%s/%s", root, dir, file);

    f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "cannot open %s\n", path);
        exit(1);
    }

    fseek(f, 0, SEEK_END);
    size = ftell(f);
    fseek(f, 0, SEEK_SET);

    buf = malloc(size + 1);
    if (buf == NULL || fread(buf, 1, size, f) != (size_t) size) {
        fprintf(stderr, "cannot read %s\n", path);
        exit(1);
    }

    fclose(f);

    *len = size;

    return buf;
}


/* the translated stream's loop: feed, usage, translation of each event */

static size_t
bench_xfeed(const u_char *p, size_t len, const bench_case_t *bc,
    bench_pool_t *pool, size_t *out)
{
    size_t                    n, nevents;
    ngx_ai_relay_sse_t        sse;
    ngx_ai_relay_usage_t      u;
    ngx_ai_relay_xlate_sse_t  x;

    pool->used = 0;
    nevents = 0;
    *out = 0;

    ngx_ai_relay_sse_init(&sse, bench_alloc, pool, 0);
    ngx_ai_relay_usage_init(&u, bc->format);
    ngx_ai_relay_xlate_sse_init(&x, bc->format, bc->xlate_to, bench_alloc,
                                pool);
    x.include_usage = 1;

    while (len) {
        n = ngx_ai_relay_sse_feed(&sse, p, len);
        p += n;
        len -= n;

        if (!sse.event_ready) {
            continue;
        }

        (void) ngx_ai_relay_usage_event(&u, sse.event_name,
                                        sse.event_name_len, sse.data,
                                        sse.data_len);

        if (ngx_ai_relay_xlate_sse_event(&x, sse.event_name,
                                         sse.event_name_len, sse.data,
                                         sse.data_len)
            != NGX_AI_RELAY_XLATE_OK)
        {
            fprintf(stderr, "%s: translation failed\n", bc->file);
            exit(1);
        }

        *out += x.out.len;
        x.out.len = 0;
        nevents++;
    }

    (void) ngx_ai_relay_xlate_sse_finish(&x);
    *out += x.out.len;
    ngx_ai_relay_usage_finish(&u);

    return nevents;
}


/* feeds the stream whole; with u, every event goes to the usage scan */

static size_t
bench_feed(const u_char *p, size_t len, ngx_ai_relay_format_e format,
    bench_pool_t *pool, ngx_ai_relay_usage_t *u, bench_event_t *events)
{
    size_t              n, nevents;
    ngx_ai_relay_sse_t  sse;

    pool->used = 0;
    nevents = 0;

    ngx_ai_relay_sse_init(&sse, bench_alloc, pool, 0);

    if (u) {
        ngx_ai_relay_usage_init(u, format);
    }

    while (len) {
        n = ngx_ai_relay_sse_feed(&sse, p, len);
        p += n;
        len -= n;

        if (!sse.event_ready) {
            continue;
        }

        if (u) {
            (void) ngx_ai_relay_usage_event(u, sse.event_name,
                                            sse.event_name_len, sse.data,
                                            sse.data_len);
        }

        if (events && nevents < BENCH_MAX_EVENTS) {
            memcpy(events[nevents].name, sse.event_name, sse.event_name_len);
            events[nevents].name_len = sse.event_name_len;
            events[nevents].data = malloc(sse.data_len + 1);

            if (events[nevents].data == NULL) {
                exit(1);
            }

            memcpy(events[nevents].data, sse.data, sse.data_len);
            events[nevents].data_len = sse.data_len;
        }

        nevents++;
    }

    if (ngx_ai_relay_sse_finish(&sse)) {
        nevents++;
    }

    if (u) {
        ngx_ai_relay_usage_finish(u);
    }

    return nevents;
}


static void
bench_prepare(bench_run_t *r, bench_pool_t *pool)
{
    size_t                 i;
    ngx_ai_relay_usage_t   u;

    r->buf = bench_read(NGX_AI_RELAY_ROOT, r->bc->dir, r->bc->file, &r->len);

    for (i = 0; i < 5; i++) {
        r->ns[i] = 1e30;
    }

    if (!r->bc->stream) {
        r->nevents = 1;

        ngx_ai_relay_usage_init(&u, r->bc->format);
        (void) ngx_ai_relay_usage_body(&u, r->buf, r->len);
        ngx_ai_relay_usage_finish(&u);

        r->units = u.text_units;
        r->tokens = u.completion_tokens;
        return;
    }

    r->nevents = bench_feed(r->buf, r->len, r->bc->format, pool, &u,
                            r->events);

    if (r->nevents > BENCH_MAX_EVENTS) {
        fprintf(stderr, "%s: too many events\n", r->bc->file);
        exit(1);
    }

    r->units = u.text_units;
    r->tokens = u.completion_tokens;
}


static void
bench_min(bench_run_t *r, int k, double t0, size_t runs)
{
    double  t;

    t = (bench_now() - t0) * 1e9 / runs / r->nevents;

    if (t < r->ns[k]) {
        r->ns[k] = t;
    }
}


static void
bench_trial(bench_run_t *r, bench_pool_t *pool, double seconds)
{
    size_t                 i, runs;
    double                 t0;
    ngx_ai_relay_usage_t   u;

    if (!r->bc->stream) {
        runs = 0;
        t0 = bench_now();

        do {
            ngx_ai_relay_usage_init(&u, r->bc->format);
            (void) ngx_ai_relay_usage_body(&u, r->buf, r->len);
            ngx_ai_relay_usage_finish(&u);
            runs++;
        } while (bench_now() - t0 < seconds);

        bench_min(r, 3, t0, runs);
        return;
    }

    /* sse only */

    runs = 0;
    t0 = bench_now();

    do {
        (void) bench_feed(r->buf, r->len, r->bc->format, pool, NULL, NULL);
        runs++;
    } while (bench_now() - t0 < seconds / 3);

    bench_min(r, 0, t0, runs);

    /* usage only */

    runs = 0;
    t0 = bench_now();

    do {
        ngx_ai_relay_usage_init(&u, r->bc->format);

        for (i = 0; i < r->nevents; i++) {
            (void) ngx_ai_relay_usage_event(&u, r->events[i].name,
                                            r->events[i].name_len,
                                            r->events[i].data,
                                            r->events[i].data_len);
        }

        ngx_ai_relay_usage_finish(&u);
        runs++;
    } while (bench_now() - t0 < seconds / 3);

    bench_min(r, 1, t0, runs);

    /* both */

    runs = 0;
    t0 = bench_now();

    do {
        (void) bench_feed(r->buf, r->len, r->bc->format, pool, &u, NULL);
        runs++;
    } while (bench_now() - t0 < seconds / 3);

    bench_min(r, 2, t0, runs);

    /* both, and each event translated */

    if (r->bc->xlate_to == 0) {
        return;
    }

    runs = 0;
    t0 = bench_now();

    do {
        (void) bench_xfeed(r->buf, r->len, r->bc, pool, &i);
        runs++;
    } while (bench_now() - t0 < seconds / 3);

    bench_min(r, 4, t0, runs);
}


int
main(int argc, char **argv)
{
    int            trial;
    size_t         i, n, ncases;
    double         seconds;
    bench_pool_t   pool;
    bench_run_t   *r, runs[BENCH_MAX_CASES];

    seconds = (argc > 1) ? atof(argv[1]) : 1.0;

    pool.size = 4 * 1024 * 1024;
    pool.buf = malloc(pool.size);

    if (pool.buf == NULL) {
        return 1;
    }

    for (ncases = 0; bench_cases[ncases].file; ncases++) {
        runs[ncases].bc = &bench_cases[ncases];
        bench_prepare(&runs[ncases], &pool);
    }

    /*
     * the trials of all cases are interleaved: a noisy neighbour slows
     * down some trials of every case rather than all trials of one
     */

    for (trial = 0; trial < BENCH_TRIALS; trial++) {
        for (i = 0; i < ncases; i++) {
            bench_trial(&runs[i], &pool, seconds / BENCH_TRIALS);
        }
    }

    for (i = 0; i < ncases; i++) {
        r = &runs[i];

        if (r->bc->stream) {
            printf("%-38s %3zu ev %4zu B/ev  sse %6.1f  usage %6.1f  "
                   "both %6.1f ns/ev  (units %lld tokens %lld)\n",
                   r->bc->file, r->nevents, r->len / r->nevents, r->ns[0],
                   r->ns[1], r->ns[2], (long long) r->units,
                   (long long) r->tokens);

            if (r->bc->xlate_to) {
                printf("%-38s translated to format %d: xlate %6.1f ns/ev, "
                       "%.2fx of both\n", "", (int) r->bc->xlate_to,
                       r->ns[4], r->ns[4] / r->ns[2]);
            }

        } else {
            printf("%-38s %6zu bytes  body %7.1f ns  "
                   "(units %lld tokens %lld)\n",
                   r->bc->file, r->len, r->ns[3], (long long) r->units,
                   (long long) r->tokens);
        }

        for (n = 0; r->bc->stream && n < r->nevents; n++) {
            free(r->events[n].data);
        }

        free(r->buf);
    }

    free(pool.buf);

    return 0;
}
