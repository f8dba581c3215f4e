
/*
 * Copyright (C) ngx_ai_relay authors
 *
 * cmocka tests of usage extraction (src/ngx_ai_relay_usage.c) over the
 * recorded-style fixtures in t/unit/fixtures, driven through the SSE
 * parser exactly as the nginx body filter does.  Each stream is fed
 * whole, split at every byte position and one byte at a time; the usage
 * and the event boundaries must be identical.  The runs of the strict
 * error scan are counted (ngx_ai_relay_usage_error_scans, built with
 * NGX_AI_RELAY_USAGE_TEST) to prove that only error events pay for it.
 */


#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "ngx_ai_relay_sse.h"
#include "ngx_ai_relay_usage.h"


#define T_MAX_EVENTS  64
#define T_MAX_ALLOCS  64


typedef struct {
    const char             *file;
    ngx_ai_relay_format_e   format;
    int                     stream;

    int64_t                 prompt;
    int64_t                 cached;
    int64_t                 write_5m;
    int64_t                 write_1h;
    int64_t                 completion;
    int64_t                 reasoning;
    int64_t                 images;
    int64_t                 text_units;

    int                     found;
    int                     estimated;
    const char             *error;

    /* streams only */
    size_t                  events;
    size_t                  usage_only;   /* events flagged USAGE_ONLY */
    size_t                  parsed;       /* events that ran the error
                                             scan */
    int                     done;
} t_fixture_t;


typedef struct {
    ngx_ai_relay_usage_t    u;
    size_t                  ends[T_MAX_EVENTS];
    size_t                  n;
    size_t                  usage_only;
    size_t                  found_events;
    size_t                  error_events;
    size_t                  done_events;
    size_t                  parsed;
} t_result_t;


typedef struct {
    void                   *blocks[T_MAX_ALLOCS];
    size_t                  n;
} t_pool_t;


static void *
t_pool_alloc(void *data, size_t size)
{
    t_pool_t  *pool;

    pool = data;

    assert_true(pool->n < T_MAX_ALLOCS);

    pool->blocks[pool->n] = malloc(size);
    assert_non_null(pool->blocks[pool->n]);

    return pool->blocks[pool->n++];
}


static char *
t_read(const char *file, size_t *len)
{
    char   *buf, path[512];
    FILE   *f;
    long    size;

    snprintf(path, sizeof(path), "%s/%s", NGX_AI_RELAY_FIXTURES, file);

    f = fopen(path, "rb");
    if (f == NULL) {
        print_error("cannot open %s\n", path);
        fail();
    }

    fseek(f, 0, SEEK_END);
    size = ftell(f);
    fseek(f, 0, SEEK_SET);

    buf = malloc(size + 1);
    assert_non_null(buf);

    *len = fread(buf, 1, size, f);
    assert_int_equal(*len, size);
    fclose(f);

    return buf;
}


static void
t_event(t_result_t *r, ngx_ai_relay_sse_t *sse, size_t end)
{
    int     rc;
    size_t  allocs;

    assert_true(r->n < T_MAX_EVENTS);
    r->ends[r->n++] = end;

    allocs = ngx_ai_relay_usage_error_scans;

    rc = ngx_ai_relay_usage_event(&r->u, sse->event_name, sse->event_name_len,
                                  sse->data, sse->data_len);

    if (ngx_ai_relay_usage_error_scans != allocs) {
        r->parsed++;
    }

    r->usage_only += (rc & NGX_AI_RELAY_USAGE_ONLY) != 0;
    r->found_events += (rc & NGX_AI_RELAY_USAGE_FOUND) != 0;
    r->error_events += (rc & NGX_AI_RELAY_USAGE_ERROR) != 0;
    r->done_events += (rc & NGX_AI_RELAY_USAGE_DONE) != 0;
}


/* feeds a stream cut at "split" (step == 0) or "step" bytes at a time */

static void
t_stream(const char *s, size_t len, ngx_ai_relay_format_e format,
    size_t split, size_t step, t_result_t *r)
{
    size_t               i, off, end, n, allocs;
    t_pool_t             pool;
    ngx_ai_relay_sse_t   sse;

    memset(r, 0, sizeof(t_result_t));
    memset(&pool, 0, sizeof(t_pool_t));

    ngx_ai_relay_sse_init(&sse, t_pool_alloc, &pool, 0);
    ngx_ai_relay_usage_init(&r->u, format);

    off = 0;

    while (off < len) {

        if (step) {
            end = (len - off < step) ? len : off + step;

        } else {
            end = (off < split) ? split : len;
        }

        while (off < end) {
            n = ngx_ai_relay_sse_feed(&sse, (const u_char *) s + off,
                                      end - off);
            off += n;

            if (sse.event_ready) {
                t_event(r, &sse, off);
            }
        }
    }

    if (ngx_ai_relay_sse_finish(&sse)) {
        t_event(r, &sse, len);
    }

    allocs = ngx_ai_relay_usage_error_scans;

    ngx_ai_relay_usage_finish(&r->u);

    if (ngx_ai_relay_usage_error_scans != allocs) {
        r->parsed++;
    }

    for (i = 0; i < pool.n; i++) {
        free(pool.blocks[i]);
    }
}


static void
t_same(const t_result_t *a, const t_result_t *b, size_t split, size_t step)
{
    const ngx_ai_relay_usage_t  *x, *y;

    x = &a->u;
    y = &b->u;

    if (a->n != b->n
        || memcmp(a->ends, b->ends, a->n * sizeof(size_t)) != 0
        || a->usage_only != b->usage_only
        || a->found_events != b->found_events
        || a->error_events != b->error_events
        || a->done_events != b->done_events
        || a->parsed != b->parsed
        || x->prompt_tokens != y->prompt_tokens
        || x->cached_tokens != y->cached_tokens
        || x->cache_write_5m_tokens != y->cache_write_5m_tokens
        || x->cache_write_1h_tokens != y->cache_write_1h_tokens
        || x->completion_tokens != y->completion_tokens
        || x->reasoning_tokens != y->reasoning_tokens
        || x->images != y->images
        || x->text_units != y->text_units
        || x->text_tokens != y->text_tokens
        || x->usage_events != y->usage_events
        || x->json_errors != y->json_errors
        || x->found != y->found
        || x->has_error != y->has_error
        || x->estimated != y->estimated
        || x->error_len != y->error_len
        || memcmp(x->error, y->error, x->error_len) != 0)
    {
        print_error("split %zu step %zu: results differ\n", split, step);
        fail();
    }
}


static void
t_check(const t_fixture_t *fx, const t_result_t *r)
{
    const ngx_ai_relay_usage_t  *u;

    u = &r->u;

    print_message("  %-40s prompt %lld cached %lld w5m %lld w1h %lld "
                  "completion %lld reasoning %lld images %lld units %lld\n",
                  fx->file, (long long) u->prompt_tokens,
                  (long long) u->cached_tokens,
                  (long long) u->cache_write_5m_tokens,
                  (long long) u->cache_write_1h_tokens,
                  (long long) u->completion_tokens,
                  (long long) u->reasoning_tokens, (long long) u->images,
                  (long long) u->text_units);

    assert_int_equal(u->prompt_tokens, fx->prompt);
    assert_int_equal(u->cached_tokens, fx->cached);
    assert_int_equal(u->cache_write_5m_tokens, fx->write_5m);
    assert_int_equal(u->cache_write_1h_tokens, fx->write_1h);
    assert_int_equal(u->completion_tokens, fx->completion);
    assert_int_equal(u->reasoning_tokens, fx->reasoning);
    assert_int_equal(u->images, fx->images);
    assert_int_equal(u->text_units, fx->text_units);
    assert_int_equal(u->text_tokens, (fx->text_units + 3) / 4);
    assert_int_equal(u->found, fx->found);
    assert_int_equal(u->estimated, fx->estimated);
    assert_int_equal(u->json_errors, 0);

    if (fx->error) {
        assert_true(u->has_error);
        assert_int_equal(u->error_len, strlen(fx->error));
        assert_memory_equal(u->error, fx->error, u->error_len);

    } else {
        assert_false(u->has_error);
        assert_int_equal(u->error_len, 0);
    }

    if (!fx->stream) {
        return;
    }

    assert_int_equal(r->n, fx->events);
    assert_int_equal(r->usage_only, fx->usage_only);
    assert_int_equal(r->parsed, fx->parsed);
    assert_int_equal(r->done_events, fx->done);
    assert_int_equal(r->error_events, fx->error ? 1 : 0);
}


#define T_CHAT    NGX_AI_RELAY_FMT_OPENAI_CHAT
#define T_COMPL   NGX_AI_RELAY_FMT_OPENAI_COMPLETIONS
#define T_EMB     NGX_AI_RELAY_FMT_OPENAI_EMBEDDINGS
#define T_RESP    NGX_AI_RELAY_FMT_OPENAI_RESPONSES
#define T_IMG     NGX_AI_RELAY_FMT_OPENAI_IMAGES
#define T_ANTH    NGX_AI_RELAY_FMT_ANTHROPIC_MESSAGES
#define T_GEM     NGX_AI_RELAY_FMT_GEMINI


/*
 * file, format, stream,
 *   prompt, cached, w5m, w1h, completion, reasoning, images, text units,
 *   found, estimated, error,
 *   events, usage-only events, events that ran the error scan, [DONE] seen
 *
 * Text units were computed independently from the decoded JSON.
 */

static const t_fixture_t  t_fixtures[] = {

    { "openai_chat_stream_usage.sse", T_CHAT, 1,
      1200, 1024, 0, 0, 42, 10, 0, 68,
      1, 0, NULL,
      12, 1, 0, 1 },

    /* no include_usage: estimated from the text */
    { "openai_chat_stream_no_usage.sse", T_CHAT, 1,
      0, 0, 0, 0, 12, 0, 0, 46,
      0, 1, NULL,
      9, 0, 0, 1 },

    /* cumulative usage on every chunk, odd whitespace, multi-line data */
    { "openai_chat_stream_cumulative.sse", T_CHAT, 1,
      50, 0, 0, 0, 7, 0, 0, 48,
      1, 0, NULL,
      5, 0, 0, 1 },

    { "deepseek_chat_stream.sse", T_CHAT, 1,
      30, 20, 0, 0, 120, 100, 0, 52,
      1, 0, NULL,
      8, 0, 0, 1 },

    { "openai_chat_stream_error.sse", T_CHAT, 1,
      0, 0, 0, 0, 4, 0, 0, 14,
      0, 1, "server_error: The server had an error while processing "
            "your request. Sorry about that!",
      4, 0, 1, 0 },

    { "openai_completions_stream.sse", T_COMPL, 1,
      5, 0, 0, 0, 4, 0, 0, 18,
      1, 0, NULL,
      7, 1, 0, 1 },

    { "openai_responses_stream_completed.sse", T_RESP, 1,
      328, 128, 0, 0, 52, 20, 0, 20,
      1, 0, NULL,
      10, 0, 0, 0 },

    { "openai_responses_stream_incomplete.sse", T_RESP, 1,
      40, 0, 0, 0, 16, 0, 0, 20,
      1, 0, NULL,
      10, 0, 0, 0 },

    { "openai_responses_stream_failed.sse", T_RESP, 1,
      61, 0, 0, 0, 3, 0, 0, 20,
      1, 0, "server_error: The model failed to generate a response.",
      10, 0, 1, 0 },

    /* 25 + 1500 read + 3000 written (1000 5m, 2000 1h) */
    { "anthropic_stream.sse", T_ANTH, 1,
      4525, 1500, 1000, 2000, 87, 0, 0, 49,
      1, 0, NULL,
      16, 0, 0, 0 },

    /* two cumulative message_delta, the last repeats input and cache */
    { "anthropic_stream_delta_full.sse", T_ANTH, 1,
      512, 300, 200, 0, 55, 0, 0, 61,
      1, 0, NULL,
      14, 0, 0, 0 },

    /* cut by an error before message_delta: output estimated */
    { "anthropic_stream_error.sse", T_ANTH, 1,
      18, 0, 0, 0, 30, 0, 0, 119,
      1, 1, "overloaded_error: Overloaded",
      8, 0, 1, 0 },

    { "gemini_stream.sse", T_GEM, 1,
      2100, 2048, 0, 0, 140, 100, 0, 90,
      1, 0, NULL,
      3, 0, 0, 0 },

    { "openai_images_stream.sse", T_IMG, 1,
      50, 0, 0, 0, 272, 0, 1, 0,
      1, 0, NULL,
      2, 0, 0, 0 },

    { "openai_chat.json", T_CHAT, 0,
      2006, 1920, 0, 0, 300, 256, 0, 17,
      1, 0, NULL,
      0, 0, 0, 0 },

    { "openai_completions.json", T_COMPL, 0,
      5, 0, 0, 0, 7, 0, 0, 23,
      1, 0, NULL,
      0, 0, 0, 0 },

    { "openai_embeddings.json", T_EMB, 0,
      8, 0, 0, 0, 0, 0, 0, 0,
      1, 0, NULL,
      0, 0, 0, 0 },

    { "openai_responses.json", T_RESP, 0,
      36, 0, 0, 0, 87, 64, 0, 44,
      1, 0, NULL,
      0, 0, 0, 0 },

    /* 2095 + 4102 read + 2051 written (51 5m, 2000 1h) */
    { "anthropic.json", T_ANTH, 0,
      8248, 4102, 51, 2000, 503, 0, 0, 22,
      1, 0, NULL,
      0, 0, 0, 0 },

    /* prompt 7 + tool use prompt 2; candidates 9 + thoughts 20 */
    { "gemini.json", T_GEM, 0,
      9, 0, 0, 0, 29, 20, 0, 32,
      1, 0, NULL,
      0, 0, 0, 0 },

    /* streamGenerateContent without alt=sse: a JSON array */
    { "gemini_array.json", T_GEM, 0,
      4, 0, 0, 0, 3, 0, 0, 4,
      1, 0, NULL,
      0, 0, 0, 0 },

    /* dall-e: priced per image, no token usage */
    { "openai_images.json", T_IMG, 0,
      0, 0, 0, 0, 0, 0, 2, 0,
      0, 1, NULL,
      0, 0, 0, 0 },

    { "openai_images_usage.json", T_IMG, 0,
      50, 0, 0, 0, 4160, 0, 1, 0,
      1, 0, NULL,
      0, 0, 0, 0 },

    { NULL, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, NULL, 0, 0, 0, 0 }
};


static void
test_fixtures(void **state)
{
    char               *buf;
    size_t              len, split;
    t_result_t          whole, r;
    const t_fixture_t  *fx;

    for (fx = t_fixtures; fx->file; fx++) {

        buf = t_read(fx->file, &len);

        if (!fx->stream) {
            memset(&whole, 0, sizeof(t_result_t));
            ngx_ai_relay_usage_init(&whole.u, fx->format);
            (void) ngx_ai_relay_usage_body(&whole.u, (u_char *) buf, len);
            ngx_ai_relay_usage_finish(&whole.u);
            t_check(fx, &whole);

            free(buf);
            continue;
        }

        t_stream(buf, len, fx->format, len, 0, &whole);
        t_check(fx, &whole);

        for (split = 0; split <= len; split++) {
            t_stream(buf, len, fx->format, split, 0, &r);
            t_same(&whole, &r, split, 0);
        }

        t_stream(buf, len, fx->format, 0, 1, &r);
        t_same(&whole, &r, 0, 1);

        t_stream(buf, len, fx->format, 0, 5, &r);
        t_same(&whole, &r, 0, 5);

        free(buf);
    }
}


/* helpers for the hand-written cases below */

static int
t_ev(ngx_ai_relay_usage_t *u, const char *name, const char *data)
{
    return ngx_ai_relay_usage_event(u, (const u_char *) name,
                                    name ? strlen(name) : 0,
                                    (const u_char *) data, strlen(data));
}


static int
t_body(ngx_ai_relay_usage_t *u, const char *body)
{
    return ngx_ai_relay_usage_body(u, (const u_char *) body, strlen(body));
}


/* ordinary events never reach the error scan, whatever their text says */

static void
test_no_parse(void **state)
{
    int                   rc;
    size_t                allocs;
    ngx_ai_relay_usage_t  u;

    ngx_ai_relay_usage_init(&u, NGX_AI_RELAY_FMT_OPENAI_CHAT);

    allocs = ngx_ai_relay_usage_error_scans;

    rc = t_ev(&u, NULL,
              "{\"choices\":[{\"delta\":{\"content\":\"the \\\"usage\\\": {"
              "\\\"prompt_tokens\\\": 1} and \\\"error\\\": \\\"x\\\"\"}}],"
              "\"usage\":null,\"error\":null}");
    assert_int_equal(rc, 0);

    rc = t_ev(&u, NULL, "{\"choices\":[],\"x\":\"usage\",\"usage\" : null}");
    assert_int_equal(rc, 0);

    rc = t_ev(&u, NULL, "{\"usage\":[1,2],\"usageMetadata\":\"{\"}");
    assert_int_equal(rc, 0);

    /* nor does usage */

    rc = t_ev(&u, NULL, "{\"choices\":[{\"delta\":{}}],"
                        "\"usage\":{\"prompt_tokens\":3,"
                        "\"completion_tokens\":1}}");
    assert_int_equal(rc, NGX_AI_RELAY_USAGE_FOUND);
    assert_true(u.found);

    ngx_ai_relay_usage_finish(&u);
    assert_int_equal(ngx_ai_relay_usage_error_scans, allocs);
    assert_int_equal(u.prompt_tokens, 3);
    assert_int_equal(u.completion_tokens, 1);
    assert_int_equal(u.json_errors, 0);
}


/* the pre-check must never miss a real usage object */

static void
test_precheck_variants(void **state)
{
    int                   rc;
    ngx_ai_relay_usage_t  u;

    static const char  *variants[] = {
        "{\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":2},"
        "\"choices\":[]}",
        "{ \"choices\" : [ ] , \"usage\"\t:\r\n { \"completion_tokens\" : 2 ,"
        " \"prompt_tokens\" : 7 } }",
        "{\"id\":\"a\\\\\",\"choices\":[],\"usage\":{\"prompt_tokens\":7,"
        "\"completion_tokens\":2}}",
        "{\"choices\":null,\"usage\":\n{\"prompt_tokens\":7.0,"
        "\"completion_tokens\":2}}",
        "{\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":2}}",
        NULL
    };

    const char  **v;

    for (v = variants; *v; v++) {
        ngx_ai_relay_usage_init(&u, NGX_AI_RELAY_FMT_OPENAI_CHAT);

        rc = t_ev(&u, NULL, *v);
        assert_int_equal(rc, NGX_AI_RELAY_USAGE_FOUND
                             | NGX_AI_RELAY_USAGE_ONLY);

        ngx_ai_relay_usage_finish(&u);
        assert_int_equal(u.prompt_tokens, 7);
        assert_int_equal(u.completion_tokens, 2);
        assert_false(u.estimated);
    }

    /* a chunk with content and usage is not a usage-only chunk */

    ngx_ai_relay_usage_init(&u, NGX_AI_RELAY_FMT_OPENAI_CHAT);
    rc = t_ev(&u, NULL, "{\"usage\":{\"prompt_tokens\":1},\"choices\":"
                        "[{\"delta\":{\"content\":\"hi\"}}]}");
    assert_int_equal(rc, NGX_AI_RELAY_USAGE_FOUND);

    /* nested "usage" only is not top-level: found, not usage-only */

    rc = t_ev(&u, NULL, "{\"x\":{\"usage\":{\"prompt_tokens\":1}}}");
    assert_int_equal(rc, NGX_AI_RELAY_USAGE_FOUND);

    /* an empty usage object does not erase the last one */

    ngx_ai_relay_usage_init(&u, NGX_AI_RELAY_FMT_OPENAI_CHAT);
    (void) t_ev(&u, NULL, "{\"choices\":[],\"usage\":{\"prompt_tokens\":4,"
                          "\"completion_tokens\":5}}");
    ngx_ai_relay_usage_finish(&u);
    (void) t_ev(&u, NULL, "{\"choices\":[],\"usage\":{}}");
    ngx_ai_relay_usage_finish(&u);
    assert_int_equal(u.prompt_tokens, 4);
    assert_int_equal(u.completion_tokens, 5);

    /* absurd counts cannot overflow the sums */

    ngx_ai_relay_usage_init(&u, NGX_AI_RELAY_FMT_ANTHROPIC_MESSAGES);
    (void) t_body(&u, "{\"usage\":{\"input_tokens\":9223372036854775807,"
                      "\"cache_read_input_tokens\":9e18,"
                      "\"cache_creation_input_tokens\":1125899906842624,"
                      "\"output_tokens\":1}}");
    ngx_ai_relay_usage_finish(&u);
    assert_int_equal(u.prompt_tokens, 1125899906842624LL);
    assert_int_equal(u.completion_tokens, 1);

    /* negative and non-numeric values are ignored */

    ngx_ai_relay_usage_init(&u, NGX_AI_RELAY_FMT_OPENAI_CHAT);
    (void) t_ev(&u, NULL, "{\"usage\":{\"prompt_tokens\":-4,"
                          "\"completion_tokens\":\"5\"}}");
    ngx_ai_relay_usage_finish(&u);
    assert_false(u.found);
    assert_true(u.estimated);
}


/* the usage walker: validation, nesting, numbers, duplicates */

static void
t_usage_one(const char *usage, int valid, int64_t prompt, int64_t cached)
{
    char                  buf[4096];
    size_t                errors;
    ngx_ai_relay_usage_t  u;

    snprintf(buf, sizeof(buf), "{\"choices\":[],\"usage\":%s}", usage);

    ngx_ai_relay_usage_init(&u, NGX_AI_RELAY_FMT_OPENAI_CHAT);
    errors = u.json_errors;

    assert_int_equal(t_ev(&u, NULL, buf),
                     valid ? NGX_AI_RELAY_USAGE_FOUND | NGX_AI_RELAY_USAGE_ONLY
                           : 0);
    assert_int_equal(u.json_errors, errors + !valid);

    if (valid) {
        assert_int_equal(u.prompt_tokens, prompt);
        assert_int_equal(u.cached_tokens, cached);
    }
}


static void
test_walker(void **state)
{
    char  deep[256];
    int   i;

    t_usage_one("{\"prompt_tokens\":5,\"completion_tokens\":1}", 1, 5, 0);
    t_usage_one("{ \"x\" : [1, -2.5e3, {\"a\":[true,false,null]}, \"}\\\"\"],"
                "\"prompt_tokens\" : 6 , \"prompt_tokens_details\":{"
                "\"x\":{\"cached_tokens\":99},\"cached_tokens\":4}}",
                1, 6, 4);

    /* duplicates: the last wins, also when it is not a number */
    t_usage_one("{\"prompt_tokens\":5,\"prompt_tokens\":7}", 1, 7, 0);
    t_usage_one("{\"prompt_tokens\":5,\"input_tokens\":8,"
                "\"prompt_tokens\":null}", 1, 8, 0);

    /* reals and exponents */
    t_usage_one("{\"prompt_tokens\":1.2e1}", 1, 12, 0);
    t_usage_one("{\"prompt_tokens\":0,\"completion_tokens\":1E0}", 1, 0, 0);

    /* a nested counter is not a top-level one */
    t_usage_one("{\"x\":{\"prompt_tokens\":5},\"completion_tokens\":1}",
                1, 0, 0);

    /* invalid JSON */
    t_usage_one("{\"prompt_tokens\":01}", 0, 0, 0);
    t_usage_one("{\"prompt_tokens\":1.}", 0, 0, 0);
    t_usage_one("{\"prompt_tokens\":-}", 0, 0, 0);
    t_usage_one("{\"prompt_tokens\":1,}", 0, 0, 0);
    t_usage_one("{\"prompt_tokens\" 1}", 0, 0, 0);
    t_usage_one("{\"prompt_tokens\":tru}", 0, 0, 0);
    t_usage_one("{\"a\":[1 2],\"prompt_tokens\":1}", 0, 0, 0);
    t_usage_one("{prompt_tokens:1}", 0, 0, 0);

    /* too deep */
    i = snprintf(deep, sizeof(deep), "{\"prompt_tokens\":1,\"x\":");
    memset(deep + i, '[', 40);
    memset(deep + i + 40, ']', 40);
    strcpy(deep + i + 80, "}");
    t_usage_one(deep, 0, 0, 0);

    memset(deep + i, '[', 20);
    memset(deep + i + 20, ']', 20);
    strcpy(deep + i + 40, "}");
    t_usage_one(deep, 1, 1, 0);

    /* an invalid usage object does not hide a valid one after it */
    {
        ngx_ai_relay_usage_t  u;

        ngx_ai_relay_usage_init(&u, NGX_AI_RELAY_FMT_GEMINI);
        assert_int_equal(t_ev(&u, NULL, "[{\"usageMetadata\":{\"a\":},"
                                        "\"usageMetadata\":{"
                                        "\"promptTokenCount\":3}}]"),
                         NGX_AI_RELAY_USAGE_FOUND);
        assert_int_equal(u.prompt_tokens, 3);
        assert_int_equal(u.json_errors, 1);
    }
}


static void
test_anthropic(void **state)
{
    ngx_ai_relay_usage_t  u;

    /* no cache_creation breakdown: all writes are 5m writes */

    ngx_ai_relay_usage_init(&u, NGX_AI_RELAY_FMT_ANTHROPIC_MESSAGES);
    (void) t_ev(&u, "message_start",
                "{\"type\":\"message_start\",\"message\":{\"usage\":"
                "{\"input_tokens\":5,\"cache_creation_input_tokens\":100,"
                "\"cache_read_input_tokens\":50,\"output_tokens\":1}}}");
    (void) t_ev(&u, "message_delta",
                "{\"type\":\"message_delta\",\"usage\":{\"output_tokens\":9}}");
    (void) t_ev(&u, "message_delta",
                "{\"type\":\"message_delta\",\"usage\":{\"output_tokens\":12,"
                "\"cache_read_input_tokens\":null}}");
    ngx_ai_relay_usage_finish(&u);

    assert_int_equal(u.prompt_tokens, 155);
    assert_int_equal(u.cached_tokens, 50);
    assert_int_equal(u.cache_write_5m_tokens, 100);
    assert_int_equal(u.cache_write_1h_tokens, 0);
    assert_int_equal(u.completion_tokens, 12);
    assert_false(u.estimated);

    /* a breakdown smaller than the total: the rest counts as 5m */

    ngx_ai_relay_usage_init(&u, NGX_AI_RELAY_FMT_ANTHROPIC_MESSAGES);
    (void) t_body(&u, "{\"usage\":{\"input_tokens\":1,"
                      "\"cache_creation_input_tokens\":10,"
                      "\"cache_creation\":{\"ephemeral_1h_input_tokens\":4},"
                      "\"output_tokens\":2}}");
    ngx_ai_relay_usage_finish(&u);

    assert_int_equal(u.prompt_tokens, 11);
    assert_int_equal(u.cache_write_5m_tokens, 6);
    assert_int_equal(u.cache_write_1h_tokens, 4);
    assert_int_equal(u.completion_tokens, 2);

    /* cut before message_delta with little text: reported output stays */

    ngx_ai_relay_usage_init(&u, NGX_AI_RELAY_FMT_ANTHROPIC_MESSAGES);
    (void) t_ev(&u, "message_start",
                "{\"message\":{\"usage\":{\"input_tokens\":5,"
                "\"output_tokens\":3}}}");
    (void) t_ev(&u, "content_block_delta",
                "{\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}");
    ngx_ai_relay_usage_finish(&u);

    assert_int_equal(u.completion_tokens, 3);
    assert_false(u.estimated);
}


static void
test_errors(void **state)
{
    int                   rc, i;
    char                  buf[1024];
    size_t                n;
    ngx_ai_relay_usage_t  u;

    /* Gemini: integer code, status as the type */

    ngx_ai_relay_usage_init(&u, NGX_AI_RELAY_FMT_GEMINI);
    rc = t_ev(&u, NULL, "{\"error\":{\"code\":429,\"message\":\"Resource "
                        "has been exhausted\",\"status\":"
                        "\"RESOURCE_EXHAUSTED\"}}");
    assert_int_equal(rc, NGX_AI_RELAY_USAGE_ERROR);
    assert_int_equal(u.error_len, sizeof("RESOURCE_EXHAUSTED: Resource has "
                                         "been exhausted") - 1);
    assert_memory_equal(u.error, "RESOURCE_EXHAUSTED: Resource has been "
                        "exhausted", u.error_len);

    /* the first error is kept */

    rc = t_ev(&u, NULL, "{\"error\":\"second\"}");
    assert_int_equal(rc, NGX_AI_RELAY_USAGE_ERROR);
    assert_memory_equal(u.error, "RESOURCE_EXHAUSTED", 18);

    /* a string error; an integer code only */

    ngx_ai_relay_usage_init(&u, NGX_AI_RELAY_FMT_OPENAI_CHAT);
    (void) t_ev(&u, NULL, "{\"error\":\"rate\\nlimited\"}");
    assert_int_equal(u.error_len, 12);
    assert_memory_equal(u.error, "rate limited", 12);

    ngx_ai_relay_usage_init(&u, NGX_AI_RELAY_FMT_OPENAI_CHAT);
    (void) t_ev(&u, NULL, "{\"error\":{\"code\":500}}");
    assert_int_equal(u.error_len, 3);
    assert_memory_equal(u.error, "500", 3);

    ngx_ai_relay_usage_init(&u, NGX_AI_RELAY_FMT_OPENAI_CHAT);
    (void) t_ev(&u, NULL, "{\"error\":{}}");
    assert_int_equal(u.error_len, 13);
    assert_memory_equal(u.error, "unknown error", 13);

    /* Responses API "error" event */

    ngx_ai_relay_usage_init(&u, NGX_AI_RELAY_FMT_OPENAI_RESPONSES);
    rc = t_ev(&u, "error", "{\"type\":\"error\",\"code\":\"ERR_SOMETHING\","
                           "\"message\":\"Something went wrong\","
                           "\"param\":null,\"sequence_number\":1}");
    assert_int_equal(rc, NGX_AI_RELAY_USAGE_ERROR);
    assert_int_equal(u.error_len, 35);
    assert_memory_equal(u.error, "ERR_SOMETHING: Something went wrong", 35);

    /* "error": null is not an error, and costs no parse */

    ngx_ai_relay_usage_init(&u, NGX_AI_RELAY_FMT_OPENAI_RESPONSES);
    rc = t_ev(&u, "response.created", "{\"response\":{\"error\":null}}");
    assert_int_equal(rc, 0);
    assert_false(u.has_error);

    /* bounded, cut on a UTF-8 boundary, control characters removed */

    n = snprintf(buf, sizeof(buf), "{\"error\":{\"type\":\"t\",\"message\":\"");

    for (i = 0; i < 200; i++) {
        memcpy(buf + n, "\xc3\xa9", 2);
        n += 2;
    }

    memcpy(buf + n, "\"}}", 4);

    ngx_ai_relay_usage_init(&u, NGX_AI_RELAY_FMT_ANTHROPIC_MESSAGES);
    rc = t_ev(&u, "error", buf);
    assert_int_equal(rc, NGX_AI_RELAY_USAGE_ERROR);
    assert_int_equal(u.error_len, NGX_AI_RELAY_USAGE_ERROR_LEN - 1);
    assert_memory_equal(u.error, "t: \xc3\xa9", 5);

    /* broken JSON is counted, never fatal */

    ngx_ai_relay_usage_init(&u, NGX_AI_RELAY_FMT_OPENAI_CHAT);
    rc = t_ev(&u, NULL, "{\"error\":{\"message\":\"x\"");
    assert_int_equal(rc, 0);
    assert_int_equal(u.json_errors, 1);

    rc = t_ev(&u, NULL, "{\"usage\":{\"prompt_tokens\":1,]}}");
    assert_int_equal(rc, 0);
    ngx_ai_relay_usage_finish(&u);
    assert_int_equal(u.json_errors, 2);
    assert_false(u.found);

    assert_int_equal(t_body(&u, "{\"usage\":{\"prompt_tokens\":1"), 0);
    assert_int_equal(u.json_errors, 3);

    assert_int_equal(t_body(&u, "{\"error\":{\"message\":}}"), 0);
    assert_int_equal(u.json_errors, 4);
}


/*
 * Edges pinned before the extractor moved onto json_scan: numbers at and
 * past the 2^50 cap, reals, escaped keys, nesting, array sizes, errors
 * with integer codes, duplicate and escaped error keys.
 */

static void
test_edges(void **state)
{
    ngx_ai_relay_usage_t  u;

    /* the key filters and the field table agree with their lists */

    assert_null(ngx_ai_relay_usage_check_tables());

    /* counts: 2^50 is kept, more is not a count, reals are truncated */

    t_usage_one("{\"prompt_tokens\":1125899906842624}", 1, 1125899906842624,
                0);
    t_usage_one("{\"prompt_tokens\":1125899906842625,\"input_tokens\":4}",
                1, 4, 0);
    t_usage_one("{\"prompt_tokens\":99999999999999999999999999,"
                "\"completion_tokens\":1}", 1, 0, 0);
    t_usage_one("{\"prompt_tokens\":2.9}", 1, 2, 0);
    t_usage_one("{\"prompt_tokens\":1e400,\"completion_tokens\":1}", 1, 0, 0);
    t_usage_one("{\"prompt_tokens\":1e-400}", 1, 0, 0);
    t_usage_one("{\"prompt_tokens\":-0,\"completion_tokens\":1}", 1, 0, 0);
    t_usage_one("{\"prompt_tokens\":-3,\"input_tokens\":4}", 1, 4, 0);

    /* a real written with 64 bytes or more is not a count */
    t_usage_one("{\"prompt_tokens\":1.00000000000000000000000000000000000000"
                "00000000000000000000000001,\"input_tokens\":4}", 1, 4, 0);

    /* a key spelled with an escape is not recognised */
    t_usage_one("{\"prompt\\u005ftokens\":5,\"input_tokens\":4}", 1, 4, 0);

    ngx_ai_relay_usage_init(&u, NGX_AI_RELAY_FMT_OPENAI_CHAT);
    assert_int_equal(t_ev(&u, NULL, "{\"us\\u0061ge\":{\"prompt_tokens\":5}}"),
                     0);

    /* an object or array where a count belongs; cached in an array */
    t_usage_one("{\"prompt_tokens\":{},\"input_tokens\":4}", 1, 4, 0);
    t_usage_one("{\"prompt_tokens\":3,\"prompt_tokens_details\":"
                "[{\"cached_tokens\":1}]}", 1, 3, 0);
    t_usage_one("{\"prompt_tokens\":3,\"prompt_tokens_details\":"
                "{\"cached_tokens\":{}},\"prompt_cache_hit_tokens\":2}",
                1, 3, 2);

    /* strings inside the usage object are not validated */
    t_usage_one("{\"x\":\"\\q\x01\xff\",\"prompt_tokens\":3}", 1, 3, 0);

    /* the shallowest usage object wins; at one depth the last */

    ngx_ai_relay_usage_init(&u, NGX_AI_RELAY_FMT_OPENAI_CHAT);
    (void) t_ev(&u, NULL, "{\"usage\":{\"prompt_tokens\":2},\"a\":{\"usage\":"
                          "{\"prompt_tokens\":1}},\"usage\":{\"prompt_tokens\":"
                          "3}}");
    assert_int_equal(u.prompt_tokens, 3);

    /* a stray closing bracket before a usage object */

    ngx_ai_relay_usage_init(&u, NGX_AI_RELAY_FMT_OPENAI_CHAT);
    assert_int_equal(t_ev(&u, NULL, "}]{\"usage\":{\"prompt_tokens\":1}}"),
                     NGX_AI_RELAY_USAGE_FOUND);

    /* images: elements of any type; an invalid array is no count */

    ngx_ai_relay_usage_init(&u, NGX_AI_RELAY_FMT_OPENAI_IMAGES);
    (void) t_body(&u, "{\"data\":[{},[1,{\"a\":[]}],\"x\",1.5,null],"
                      "\"created\":1}");
    assert_int_equal(u.images, 5);

    ngx_ai_relay_usage_init(&u, NGX_AI_RELAY_FMT_OPENAI_IMAGES);
    (void) t_body(&u, "{\"data\":[1,],\"created\":1}");
    assert_int_equal(u.images, 0);

    /* errors: integer codes, a real code, the last duplicate */

    ngx_ai_relay_usage_init(&u, NGX_AI_RELAY_FMT_OPENAI_CHAT);
    (void) t_ev(&u, NULL, "{\"error\":{\"code\":-9223372036854775808}}");
    assert_int_equal(u.error_len, 20);
    assert_memory_equal(u.error, "-9223372036854775808", 20);

    ngx_ai_relay_usage_init(&u, NGX_AI_RELAY_FMT_OPENAI_CHAT);
    assert_int_equal(t_ev(&u, NULL,
                          "{\"error\":{\"code\":9223372036854775808}}"),
                     0);
    assert_int_equal(u.json_errors, 1);

    ngx_ai_relay_usage_init(&u, NGX_AI_RELAY_FMT_OPENAI_CHAT);
    (void) t_ev(&u, NULL, "{\"error\":{\"code\":1e3,\"message\":\"m\"}}");
    assert_int_equal(u.error_len, 1);

    ngx_ai_relay_usage_init(&u, NGX_AI_RELAY_FMT_OPENAI_CHAT);
    (void) t_ev(&u, NULL, "{\"error\":\"a\",\"err\\u006fr\":{\"type\":\"b\"}}");
    assert_int_equal(u.error_len, 1);
    assert_memory_equal(u.error, "b", 1);

    /* errors in a JSON array (Gemini without alt=sse): the first is kept */

    ngx_ai_relay_usage_init(&u, NGX_AI_RELAY_FMT_GEMINI);
    assert_int_equal(t_body(&u, "[{\"error\":\"a\"},{\"error\":"
                                "{\"message\":\"b\"}},1]"),
                     NGX_AI_RELAY_USAGE_ERROR);
    assert_int_equal(u.error_len, 1);
    assert_memory_equal(u.error, "a", 1);

    /*
     * strict JSON for errors: \u0000, a lone surrogate, bad UTF-8, a
     * number out of range of a double, data after the value
     */
    ngx_ai_relay_usage_init(&u, NGX_AI_RELAY_FMT_OPENAI_CHAT);
    assert_int_equal(t_ev(&u, NULL, "{\"error\":\"a\\u0000\"}"), 0);
    assert_int_equal(t_ev(&u, NULL, "{\"error\":\"\\ud800\"}"), 0);
    assert_int_equal(t_ev(&u, NULL, "{\"error\":\"\xc0\xaf\"}"), 0);
    assert_int_equal(t_ev(&u, NULL, "{\"error\":\"x\",\"a\":1e400}"), 0);
    assert_int_equal(t_ev(&u, NULL, "[{\"error\":\"x\"}] x"), 0);
    assert_int_equal(u.json_errors, 5);
    assert_false(u.has_error);

    assert_int_equal(t_ev(&u, NULL, "{\"error\":\"\\ud83d\\ude00\"}"),
                     NGX_AI_RELAY_USAGE_ERROR);
    assert_int_equal(u.error_len, 4);
    assert_memory_equal(u.error, "\xf0\x9f\x98\x80", 4);
}


static void
test_text_count(void **state)
{
    ngx_ai_relay_usage_t  u;

    /* escapes: e-acute 2, CJK 4, surrogate pair 4, 'A' 1, \n 1, \" 1 */

    ngx_ai_relay_usage_init(&u, NGX_AI_RELAY_FMT_OPENAI_CHAT);
    (void) t_ev(&u, NULL, "{\"choices\":[{\"delta\":{\"content\":"
                          "\"\\u00e9\\u65E5\\ud83d\\ude00A\\n\\\"\"}}]}");
    assert_int_equal(u.text_units, 13);
    assert_int_equal(u.text_tokens, 4);

    /* raw UTF-8, keys at any depth, other keys and non-strings ignored */

    (void) t_ev(&u, NULL, "{\"content\":\"\xc3\xa9\xe6\x97\xa5\xf0\x9f\x98"
                          "\x80\",\"role\":\"assistant\",\"content\":null,"
                          "\"x\":{\"arguments\":\"{}\"}}");
    assert_int_equal(u.text_units, 13 + 10 + 2);

    /* a bad \u escape and an unterminated string do not overrun */

    (void) t_ev(&u, NULL, "{\"content\":\"\\uZZ\\u12");
    assert_int_equal(u.text_units, 25 + 4);

    (void) t_ev(&u, NULL, "{\"content\":\"ab\\");
    assert_int_equal(u.text_units, 29 + 2);

    /* Responses: only text deltas count */

    ngx_ai_relay_usage_init(&u, NGX_AI_RELAY_FMT_OPENAI_RESPONSES);
    (void) t_ev(&u, "response.output_text.delta", "{\"delta\":\"abcd\"}");
    (void) t_ev(&u, "response.audio.delta", "{\"delta\":\"QUJDRA==\"}");
    (void) t_ev(&u, "response.output_text.done", "{\"text\":\"abcd\"}");
    (void) t_ev(&u, "response.other.done", "{\"delta\":\"abcd\"}");
    (void) t_ev(&u, "response.function_call_arguments.delta",
                "{\"delta\":\"{}\"}");
    assert_int_equal(u.text_units, 6);
    ngx_ai_relay_usage_finish(&u);
    assert_true(u.estimated);
    assert_int_equal(u.completion_tokens, 2);

    /* [DONE] */

    assert_int_equal(t_ev(&u, NULL, "[DONE]"), NGX_AI_RELAY_USAGE_DONE);
}


static void
test_estimate(void **state)
{
#define t_est(s)  ngx_ai_relay_estimate_tokens((const u_char *) s,         \
                                               sizeof(s) - 1)

    assert_int_equal(t_est(""), 0);
    assert_int_equal(t_est("a"), 1);
    assert_int_equal(t_est("abcd"), 1);
    assert_int_equal(t_est("abcde"), 2);
    assert_int_equal(t_est("Hello, world! How are you?"), 7);
    assert_int_equal(t_est("\xc3\xa9"), 1);                 /* e-acute */
    assert_int_equal(t_est("\xc3\xa9\xc3\xa9\xc3\xa9"), 2);
    assert_int_equal(t_est("\xe6\x97\xa5\xe6\x9c\xac"), 2); /* CJK */
    assert_int_equal(t_est("\xf0\x9f\x98\x80"), 1);         /* emoji */
    assert_int_equal(t_est("\x80\x80"), 1);                 /* never 0 */

#undef t_est
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_fixtures),
        cmocka_unit_test(test_no_parse),
        cmocka_unit_test(test_precheck_variants),
        cmocka_unit_test(test_walker),
        cmocka_unit_test(test_anthropic),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_edges),
        cmocka_unit_test(test_text_count),
        cmocka_unit_test(test_estimate),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
