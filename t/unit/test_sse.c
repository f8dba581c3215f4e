
/*
 * Copyright (C) ngx_ai_relay authors
 *
 * cmocka tests of the incremental SSE parser (src/ngx_ai_relay_sse.c).
 * Every stream is also fed split at every byte position and one byte at
 * a time: the events and their end offsets must not change.
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


#define T_MAX_EVENTS  64
#define T_MAX_ALLOCS  256


/* a "pool": every block is kept until t_pool_free(); can fail on demand */
typedef struct {
    void      *blocks[T_MAX_ALLOCS];
    size_t     sizes[T_MAX_ALLOCS];
    size_t     n;
    size_t     total;
    int        fail_after;  /* -1: never */
} t_pool_t;


typedef struct {
    char       name[NGX_AI_RELAY_SSE_NAME_LEN + 1];
    char      *data;
    size_t     data_len;
    size_t     end;         /* offset of the byte after the event */
    unsigned   truncated:1;
    unsigned   unterminated:1;
} t_event_t;


typedef struct {
    t_event_t  ev[T_MAX_EVENTS];
    size_t     n;
    int        done;
    int        nomem;
    int        partial;     /* ngx_ai_relay_sse_partial() before finish */
} t_result_t;


static void *
t_pool_alloc(void *data, size_t size)
{
    t_pool_t  *pool;
    void      *p;

    pool = data;

    if (pool->fail_after >= 0 && pool->n >= (size_t) pool->fail_after) {
        return NULL;
    }

    assert_true(pool->n < T_MAX_ALLOCS);

    p = malloc(size);
    assert_non_null(p);

    pool->blocks[pool->n] = p;
    pool->sizes[pool->n] = size;
    pool->n++;
    pool->total += size;

    return p;
}


static void
t_pool_free(t_pool_t *pool)
{
    size_t  i;

    for (i = 0; i < pool->n; i++) {
        free(pool->blocks[i]);
    }

    pool->n = 0;
    pool->total = 0;
}


static void
t_result_free(t_result_t *r)
{
    size_t  i;

    for (i = 0; i < r->n; i++) {
        free(r->ev[i].data);
    }

    r->n = 0;
}


static void
t_record(ngx_ai_relay_sse_t *sse, t_result_t *r, size_t end)
{
    t_event_t  *ev;

    assert_true(sse->event_ready);
    assert_true(r->n < T_MAX_EVENTS);

    ev = &r->ev[r->n++];

    assert_true(sse->event_name_len <= NGX_AI_RELAY_SSE_NAME_LEN);
    memcpy(ev->name, sse->event_name, sse->event_name_len);
    ev->name[sse->event_name_len] = '\0';

    ev->data = malloc(sse->data_len + 1);
    assert_non_null(ev->data);
    assert_non_null(sse->data);
    memcpy(ev->data, sse->data, sse->data_len);
    ev->data[sse->data_len] = '\0';
    ev->data_len = sse->data_len;

    ev->end = end;
    ev->truncated = sse->truncated;
    ev->unterminated = sse->unterminated;
}


/*
 * Feeds s in pieces: cut at "split" if step == 0, else "step" bytes at a
 * time.  max_event 0 means the default; fail_after as in t_pool_t.
 */

static void
t_run(const char *s, size_t len, size_t split, size_t step, size_t max_event,
    int fail_after, t_result_t *r)
{
    size_t               off, end, n, chunk;
    t_pool_t             pool;
    ngx_ai_relay_sse_t   sse;
    const u_char        *p;

    memset(r, 0, sizeof(t_result_t));
    memset(&pool, 0, sizeof(t_pool_t));
    pool.fail_after = fail_after;

    ngx_ai_relay_sse_init(&sse, t_pool_alloc, &pool, max_event);

    off = 0;

    while (off < len) {

        if (step) {
            chunk = (len - off < step) ? len - off : step;

        } else {
            chunk = (off < split) ? split - off : len - off;
        }

        p = (const u_char *) s + off;
        end = off + chunk;

        while (off < end) {
            n = ngx_ai_relay_sse_feed(&sse, p, end - off);
            assert_true(n <= end - off);

            p += n;
            off += n;

            if (sse.event_ready) {
                t_record(&sse, r, off);

            } else {
                /* no event: the whole chunk must have been consumed */
                assert_int_equal(off, end);
            }
        }
    }

    r->partial = ngx_ai_relay_sse_partial(&sse);

    if (ngx_ai_relay_sse_finish(&sse)) {
        t_record(&sse, r, len);
    }

    assert_int_equal(sse.events, r->n);
    assert_false(ngx_ai_relay_sse_partial(&sse));

    r->done = sse.done;
    r->nomem = sse.nomem;

    t_pool_free(&pool);
}


static void
t_same(const t_result_t *a, const t_result_t *b, size_t split, size_t step)
{
    size_t  i;

    if (a->n != b->n || a->done != b->done || a->partial != b->partial) {
        print_error("split %zu step %zu: %zu events, expected %zu\n",
                    split, step, b->n, a->n);
        fail();
    }

    for (i = 0; i < a->n; i++) {

        if (a->ev[i].end != b->ev[i].end
            || a->ev[i].data_len != b->ev[i].data_len
            || memcmp(a->ev[i].data, b->ev[i].data, a->ev[i].data_len) != 0
            || strcmp(a->ev[i].name, b->ev[i].name) != 0
            || a->ev[i].truncated != b->ev[i].truncated
            || a->ev[i].unterminated != b->ev[i].unterminated)
        {
            print_error("split %zu step %zu: event %zu differs "
                        "(end %zu vs %zu)\n", split, step, i,
                        b->ev[i].end, a->ev[i].end);
            fail();
        }
    }
}


/* whole, every two-piece split, byte by byte: all must agree */

static void
t_all_splits(const char *s, size_t len, size_t max_event, t_result_t *whole)
{
    size_t      split;
    t_result_t  r;

    t_run(s, len, len, 0, max_event, -1, whole);

    for (split = 0; split <= len; split++) {
        t_run(s, len, split, 0, max_event, -1, &r);
        t_same(whole, &r, split, 0);
        t_result_free(&r);
    }

    t_run(s, len, 0, 1, max_event, -1, &r);
    t_same(whole, &r, 0, 1);
    t_result_free(&r);

    t_run(s, len, 0, 3, max_event, -1, &r);
    t_same(whole, &r, 0, 3);
    t_result_free(&r);
}


#define t_check_event(r, i, nm, dt, e)                                       \
    do {                                                                     \
        assert_string_equal((r)->ev[i].name, nm);                            \
        assert_int_equal((r)->ev[i].data_len, sizeof(dt) - 1);               \
        assert_memory_equal((r)->ev[i].data, dt, sizeof(dt) - 1);            \
        assert_int_equal((r)->ev[i].end, e);                                 \
    } while (0)


static void
test_lf(void **state)
{
    t_result_t   r;
    static char  s[] = "data: one\n\ndata: two\n\n";

    t_all_splits(s, sizeof(s) - 1, 0, &r);

    assert_int_equal(r.n, 2);
    t_check_event(&r, 0, "", "one", 11);
    t_check_event(&r, 1, "", "two", 22);
    assert_false(r.ev[1].unterminated);

    t_result_free(&r);
}


static void
test_crlf(void **state)
{
    t_result_t   r;
    static char  s[] = "event: a\r\ndata: one\r\n\r\ndata: two\r\n\r\n";

    t_all_splits(s, sizeof(s) - 1, 0, &r);

    assert_int_equal(r.n, 2);
    t_check_event(&r, 0, "a", "one", 23);
    t_check_event(&r, 1, "", "two", 36);

    t_result_free(&r);
}


static void
test_cr(void **state)
{
    t_result_t   r;
    static char  s[] = "data: one\r\rdata: two\rdata: three\r\r: c\r\r";

    t_all_splits(s, sizeof(s) - 1, 0, &r);

    assert_int_equal(r.n, 2);
    t_check_event(&r, 0, "", "one", 11);
    t_check_event(&r, 1, "", "two\nthree", 34);

    t_result_free(&r);
}


/* a CR ending one chunk and an LF starting the next are one line end */

static void
test_cr_lf_split(void **state)
{
    size_t               n;
    t_pool_t             pool;
    ngx_ai_relay_sse_t   sse;

    memset(&pool, 0, sizeof(t_pool_t));
    pool.fail_after = -1;

    ngx_ai_relay_sse_init(&sse, t_pool_alloc, &pool, 0);

    /* data line ends in CR|LF across chunks: no extra blank line */

    n = ngx_ai_relay_sse_feed(&sse, (u_char *) "data: x\r", 8);
    assert_int_equal(n, 8);
    assert_false(sse.event_ready);

    n = ngx_ai_relay_sse_feed(&sse, (u_char *) "\ndata: y\r", 9);
    assert_int_equal(n, 9);
    assert_false(sse.event_ready);

    /* the blank line's CR ends the chunk: dispatch waits for one byte */

    n = ngx_ai_relay_sse_feed(&sse, (u_char *) "\n\r", 2);
    assert_int_equal(n, 2);
    assert_false(sse.event_ready);
    assert_true(ngx_ai_relay_sse_partial(&sse));

    /* ... and the LF belongs to the event */

    n = ngx_ai_relay_sse_feed(&sse, (u_char *) "\ndata: z\n\n", 10);
    assert_int_equal(n, 1);
    assert_true(sse.event_ready);
    assert_int_equal(sse.data_len, 3);
    assert_memory_equal(sse.data, "x\ny", 3);

    n = ngx_ai_relay_sse_feed(&sse, (u_char *) "data: z\n\n", 9);
    assert_int_equal(n, 9);
    assert_true(sse.event_ready);
    assert_memory_equal(sse.data, "z", 1);

    /* a blank CR, then a chunk that does not start with LF */

    n = ngx_ai_relay_sse_feed(&sse, (u_char *) "data: w\r\r", 9);
    assert_int_equal(n, 9);
    assert_false(sse.event_ready);

    n = ngx_ai_relay_sse_feed(&sse, (u_char *) "", 0);
    assert_int_equal(n, 0);
    assert_false(sse.event_ready);

    n = ngx_ai_relay_sse_feed(&sse, (u_char *) "data: v\n\n", 9);
    assert_int_equal(n, 0);
    assert_true(sse.event_ready);
    assert_memory_equal(sse.data, "w", 1);

    n = ngx_ai_relay_sse_feed(&sse, (u_char *) "data: v\n\n", 9);
    assert_int_equal(n, 9);
    assert_true(sse.event_ready);
    assert_memory_equal(sse.data, "v", 1);

    /* a pending CR dispatch at end of stream is a terminated event */

    n = ngx_ai_relay_sse_feed(&sse, (u_char *) "data: u\r\r", 9);
    assert_int_equal(n, 9);
    assert_false(sse.event_ready);
    assert_true(ngx_ai_relay_sse_finish(&sse));
    assert_true(sse.event_ready);
    assert_false(sse.unterminated);
    assert_memory_equal(sse.data, "u", 1);
    assert_int_equal(sse.events, 5);

    t_pool_free(&pool);
}


static void
test_mixed_line_ends(void **state)
{
    t_result_t   r;
    static char  s[] =
        ": hello\r\n"
        "data: a\r"
        "data: b\n"
        "data: c\r\n"
        "\r"
        "event: e2\n"
        "data:\n"
        "\r\n"
        "\n\n\r\r\n"
        "data: d\r\n"
        "\n";

    t_all_splits(s, sizeof(s) - 1, 0, &r);

    assert_int_equal(r.n, 3);
    t_check_event(&r, 0, "", "a\nb\nc", 35);
    t_check_event(&r, 1, "e2", "", 53);
    t_check_event(&r, 2, "", "d", sizeof(s) - 1);

    t_result_free(&r);
}


static void
test_fields(void **state)
{
    t_result_t   r;
    static char  s[] =
        ":comment only\n\n"
        "id: 7\nretry: 100\n\n"
        "data:no space\n"
        "data:  two spaces\n"
        "data\n"
        "data:\n"
        "dat: not data\n"
        "datas: not data\n"
        "event\n"
        ": data: comment\n"
        "\n"
        "event: only-a-name\n"
        "\n"
        "event: first\n"
        "event: second\n"
        "id\n"
        "data: x:y: z\n"
        "\n";

    t_all_splits(s, sizeof(s) - 1, 0, &r);

    assert_int_equal(r.n, 3);
    assert_string_equal(r.ev[0].name, "");
    assert_int_equal(r.ev[0].data_len, sizeof("no space\n two spaces\n\n") - 1);
    assert_memory_equal(r.ev[0].data, "no space\n two spaces\n\n",
                        r.ev[0].data_len);
    t_check_event(&r, 1, "only-a-name", "",
                  strstr(s, "name\n\n") + 6 - s);
    t_check_event(&r, 2, "second", "x:y: z", sizeof(s) - 1);
    assert_false(r.done);

    t_result_free(&r);
}


static void
test_done(void **state)
{
    t_result_t   r;
    static char  s[] = "data: {\"a\":1}\n\ndata: [DONE]\n\n";

    t_all_splits(s, sizeof(s) - 1, 0, &r);

    assert_int_equal(r.n, 2);
    t_check_event(&r, 1, "", "[DONE]", sizeof(s) - 1);
    assert_true(r.done);

    t_result_free(&r);

    t_run("data: [DONE] \n\n", 15, 15, 0, 0, -1, &r);
    assert_false(r.done);
    t_result_free(&r);
}


/* an event over max_event is dispatched truncated; the next ones are fine */

static void
test_oversize(void **state)
{
    size_t       i;
    t_result_t   r;
    static char  s[] =
        "data: 0123456789\n\n"
        "data: 0123456789abcdefg\n\n"
        "data: 0123456789\ndata: 0123456789\n\n"
        "event: big\ndata: 01234567\ndata: 0123456\n\n"
        "data: small\n\n";

    t_all_splits(s, sizeof(s) - 1, 16, &r);

    assert_int_equal(r.n, 5);

    t_check_event(&r, 0, "", "0123456789", 18);
    assert_false(r.ev[0].truncated);

    assert_true(r.ev[1].truncated);
    assert_int_equal(r.ev[1].data_len, 0);
    assert_int_equal(r.ev[1].end, 43);

    assert_true(r.ev[2].truncated);

    /* 8 + 1 + 7 == 16 bytes fits exactly */
    t_check_event(&r, 3, "big", "01234567\n0123456",
                  strstr(s, "0123456\n\n") + 9 - s);
    assert_false(r.ev[3].truncated);

    t_check_event(&r, 4, "", "small", sizeof(s) - 1);
    assert_false(r.ev[4].truncated);

    t_result_free(&r);

    /* a single huge line with the default limit */

    {
        char    *big;
        size_t   len;

        len = NGX_AI_RELAY_SSE_MAX_EVENT + 100;
        big = malloc(len + 64);
        assert_non_null(big);

        memcpy(big, "data: ", 6);
        for (i = 6; i < len; i++) {
            big[i] = 'a' + i % 26;
        }
        memcpy(big + len, "\n\ndata: ok\n\n", 12);

        t_run(big, len + 12, 0, 4096, 0, -1, &r);

        assert_int_equal(r.n, 2);
        assert_true(r.ev[0].truncated);
        assert_false(r.ev[1].truncated);
        assert_memory_equal(r.ev[1].data, "ok", 2);
        t_result_free(&r);

        free(big);
    }
}


/* nothing is allocated until a data byte; allocation failure is soft */

static void
test_memory(void **state)
{
    size_t               n;
    t_pool_t             pool;
    t_result_t           r;
    ngx_ai_relay_sse_t   sse;
    static char          comments[] =
        ": keep-alive\n\nevent: ping\n\nid: 1\n\ndata:\n\n";
    static char          grow[] =
        "data: 0123456789012345678901234567890123456789012345678901234567"
        "89012345678901234567890123456789012345678901234567890123456789"
        "0123456789012345678901234567890123456789012345678901234567890123"
        "45678901234567890123456789012345678901234567890123456789\n\n";

    memset(&pool, 0, sizeof(t_pool_t));
    pool.fail_after = -1;

    ngx_ai_relay_sse_init(&sse, t_pool_alloc, &pool, 0);

    n = ngx_ai_relay_sse_feed(&sse, (u_char *) comments, sizeof(comments) - 1);
    assert_true(sse.event_ready);
    assert_memory_equal(sse.event_name, "ping", 4);
    assert_int_equal(sse.event_name_len, 4);
    assert_int_equal(n, 27);

    n = ngx_ai_relay_sse_feed(&sse, (u_char *) comments + 27,
                              sizeof(comments) - 1 - 27);
    assert_true(sse.event_ready);
    assert_int_equal(sse.data_len, 0);
    assert_non_null(sse.data);
    assert_int_equal(pool.n, 0);

    /* 240 data bytes: the first buffer is 256 */

    n = ngx_ai_relay_sse_feed(&sse, (u_char *) grow, sizeof(grow) - 1);
    assert_true(sse.event_ready);
    assert_int_equal(sse.data_len, sizeof(grow) - 1 - 8);
    assert_int_equal(pool.n, 1);

    /* 500 bytes: grows once, by doubling */

    ngx_ai_relay_sse_feed(&sse, (u_char *) grow, sizeof(grow) - 3);
    ngx_ai_relay_sse_feed(&sse, (u_char *) "\n", 1);
    ngx_ai_relay_sse_feed(&sse, (u_char *) grow, sizeof(grow) - 1);
    assert_true(sse.event_ready);
    assert_int_equal(sse.data_len, 2 * (sizeof(grow) - 9) + 1);
    assert_int_equal(pool.n, 2);
    assert_int_equal(pool.sizes[1], 512);

    t_pool_free(&pool);

    /* the allocator fails: events come truncated, parsing goes on */

    t_run(grow, sizeof(grow) - 1, 0, 7, 0, 0, &r);
    assert_int_equal(r.n, 1);
    assert_true(r.ev[0].truncated);
    assert_true(r.nomem);
    t_result_free(&r);

    /* no allocator at all */

    ngx_ai_relay_sse_init(&sse, NULL, NULL, 0);
    n = ngx_ai_relay_sse_feed(&sse, (u_char *) "data: x\n\ndata", 13);
    assert_int_equal(n, 9);
    assert_true(sse.event_ready);
    assert_true(sse.truncated);
    assert_true(sse.nomem);
}


static void
test_long_name(void **state)
{
    char         s[256];
    size_t       len;
    t_result_t   r;

    len = snprintf(s, sizeof(s), "event: %0100d\ndata: x\n\n", 7);

    t_all_splits(s, len, 0, &r);

    assert_int_equal(r.n, 1);
    assert_int_equal(strlen(r.ev[0].name), NGX_AI_RELAY_SSE_NAME_LEN);
    assert_memory_equal(r.ev[0].data, "x", 1);

    t_result_free(&r);
}


/* an unterminated last event is dispatched by finish(), marked */

static void
test_finish(void **state)
{
    t_result_t   r;
    static char  s1[] = "data: one\n\ndata: {\"usage\":1}";
    static char  s2[] = "data: one\n\nevent: x\ndata: a\n";
    static char  s3[] = "data: one\n\n: trailing comment";
    static char  s4[] = "data: one\n\ndata";

    t_all_splits(s1, sizeof(s1) - 1, 0, &r);
    assert_int_equal(r.n, 2);
    assert_true(r.partial);
    assert_true(r.ev[1].unterminated);
    t_check_event(&r, 1, "", "{\"usage\":1}", sizeof(s1) - 1);
    t_result_free(&r);

    t_all_splits(s2, sizeof(s2) - 1, 0, &r);
    assert_int_equal(r.n, 2);
    assert_true(r.ev[1].unterminated);
    t_check_event(&r, 1, "x", "a", sizeof(s2) - 1);
    t_result_free(&r);

    t_all_splits(s3, sizeof(s3) - 1, 0, &r);
    assert_int_equal(r.n, 1);
    assert_true(r.partial);
    assert_false(r.ev[0].unterminated);
    t_result_free(&r);

    t_all_splits(s4, sizeof(s4) - 1, 0, &r);
    assert_int_equal(r.n, 2);
    assert_true(r.ev[1].unterminated);
    assert_int_equal(r.ev[1].data_len, 0);
    t_result_free(&r);

    t_run("", 0, 0, 0, 0, -1, &r);
    assert_int_equal(r.n, 0);
    assert_false(r.partial);
}


/* every fixture stream: splitting never changes the events */

static void
test_fixtures(void **state)
{
    char        *buf, path[512];
    FILE        *f;
    size_t       i, j, len;
    t_result_t   r;

    static const char  *files[] = {
        "openai_chat_stream_usage.sse",
        "openai_chat_stream_no_usage.sse",
        "openai_chat_stream_cumulative.sse",
        "openai_chat_stream_error.sse",
        "deepseek_chat_stream.sse",
        "openai_completions_stream.sse",
        "openai_responses_stream_completed.sse",
        "openai_responses_stream_incomplete.sse",
        "openai_responses_stream_failed.sse",
        "anthropic_stream.sse",
        "anthropic_stream_delta_full.sse",
        "anthropic_stream_error.sse",
        "gemini_stream.sse",
        "openai_images_stream.sse",
        NULL
    };

    buf = malloc(1 << 20);
    assert_non_null(buf);

    for (i = 0; files[i]; i++) {
        snprintf(path, sizeof(path), "%s/%s", NGX_AI_RELAY_FIXTURES,
                 files[i]);

        f = fopen(path, "rb");
        assert_non_null(f);
        len = fread(buf, 1, 1 << 20, f);
        fclose(f);

        t_all_splits(buf, len, 0, &r);

        assert_true(r.n > 1);
        assert_false(r.partial);

        for (j = 0; j < r.n; j++) {
            /* every event ends right after its blank line */
            assert_true(r.ev[j].end >= 2);
            assert_int_equal(buf[r.ev[j].end - 1], '\n');
            assert_true(buf[r.ev[j].end - 2] == '\n'
                        || (buf[r.ev[j].end - 2] == '\r'
                            && buf[r.ev[j].end - 3] == '\n'));
            assert_false(r.ev[j].truncated);
            assert_false(r.ev[j].unterminated);
        }

        assert_int_equal(r.ev[r.n - 1].end, len);

        t_result_free(&r);
    }

    free(buf);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_lf),
        cmocka_unit_test(test_crlf),
        cmocka_unit_test(test_cr),
        cmocka_unit_test(test_cr_lf_split),
        cmocka_unit_test(test_mixed_line_ends),
        cmocka_unit_test(test_fields),
        cmocka_unit_test(test_done),
        cmocka_unit_test(test_oversize),
        cmocka_unit_test(test_memory),
        cmocka_unit_test(test_long_name),
        cmocka_unit_test(test_finish),
        cmocka_unit_test(test_fixtures),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
