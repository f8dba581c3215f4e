
/*
 * Copyright (C) ngx_ai_relay authors
 */


#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ngx_ai_relay_price.h"


#define N(s)  (s), sizeof(s) - 1


static int64_t
cost_of(const ngx_ai_relay_price_t *p, int64_t prompt, int64_t cached,
    int64_t cw5m, int64_t cw1h, int64_t completion)
{
    int64_t                     cost;
    ngx_ai_relay_price_usage_t  u;

    memset(&u, 0, sizeof(u));

    u.prompt_tokens = prompt;
    u.cached_tokens = cached;
    u.cache_write_5m_tokens = cw5m;
    u.cache_write_1h_tokens = cw1h;
    u.completion_tokens = completion;

    assert_int_equal(ngx_ai_relay_price_cost(p, &u, &cost),
                     NGX_AI_RELAY_PRICE_OK);

    return cost;
}


static void
test_resolve(void **state)
{
    ngx_ai_relay_price_t  p, r;

    ngx_ai_relay_price_init(&p);
    assert_int_equal(p.input, NGX_AI_RELAY_PRICE_UNSET);
    assert_int_equal(p.nimages, 0);

    ngx_ai_relay_price_resolve(&p, &r);
    assert_int_equal(r.input, 0);
    assert_int_equal(r.cached_input, 0);
    assert_int_equal(r.cache_write_5m, 0);
    assert_int_equal(r.cache_write_1h, 0);
    assert_int_equal(r.output, 0);
    assert_int_equal(r.per_request, 0);
    assert_int_equal(r.per_image, 0);

    p.input = 3000000;
    p.cache_write_1h = 6000000;
    p.output = -7;
    ngx_ai_relay_price_resolve(&p, &r);
    assert_int_equal(r.input, 3000000);
    assert_int_equal(r.cached_input, 3000000);
    assert_int_equal(r.cache_write_5m, 3000000);
    assert_int_equal(r.cache_write_1h, 6000000);
    assert_int_equal(r.output, 0);

    p.cached_input = 0;
    ngx_ai_relay_price_resolve(&p, &r);
    assert_int_equal(r.cached_input, 0);
}


static void
test_cost(void **state)
{
    ngx_ai_relay_price_t  p;

    /* $2.50 / $10.00 per 1M tokens */
    ngx_ai_relay_price_init(&p);
    p.input = 2500000;
    p.output = 10000000;

    assert_int_equal(cost_of(&p, 1000, 0, 0, 0, 500), 7500);
    assert_int_equal(cost_of(&p, 0, 0, 0, 0, 0), 0);

    /* rounding up to a whole uUSD */
    assert_int_equal(cost_of(&p, 1, 0, 0, 0, 0), 3);
    assert_int_equal(cost_of(&p, 2, 0, 0, 0, 0), 5);
    assert_int_equal(cost_of(&p, 0, 0, 0, 0, 1), 10);

    p.input = 1;
    p.output = 0;
    assert_int_equal(cost_of(&p, 1, 0, 0, 0, 0), 1);
    assert_int_equal(cost_of(&p, 999999, 0, 0, 0, 0), 1);
    assert_int_equal(cost_of(&p, 1000000, 0, 0, 0, 0), 1);
    assert_int_equal(cost_of(&p, 1000001, 0, 0, 0, 0), 2);

    /* the sum is rounded once, not each part */
    p.input = 500000;
    p.output = 500000;
    assert_int_equal(cost_of(&p, 1, 0, 0, 0, 1), 1);

    /* cached input at half price */
    p.input = 2500000;
    p.cached_input = 1250000;
    p.output = 10000000;
    assert_int_equal(cost_of(&p, 1000, 800, 0, 0, 0), 1500);

    /* cached unset: billed at the input price */
    p.cached_input = NGX_AI_RELAY_PRICE_UNSET;
    assert_int_equal(cost_of(&p, 1000, 800, 0, 0, 0), 2500);

    /* Anthropic: $3 input, $0.30 read, $3.75 5m write, $6 1h write, $15 */
    ngx_ai_relay_price_init(&p);
    p.input = 3000000;
    p.cached_input = 300000;
    p.cache_write_5m = 3750000;
    p.cache_write_1h = 6000000;
    p.output = 15000000;

    /* input_tokens 100 + read 2000 + 5m 300 + 1h 50 = 2450 prompt */
    assert_int_equal(cost_of(&p, 2450, 2000, 300, 50, 400),
                     (100 * 3000000LL + 2000 * 300000LL + 300 * 3750000LL
                      + 50 * 6000000LL + 400 * 15000000LL) / 1000000);

    /* inconsistent: parts above prompt; the parts are still billed */
    ngx_ai_relay_price_init(&p);
    p.input = 1000000;
    p.cached_input = 500000;
    assert_int_equal(cost_of(&p, 100, 150, 0, 0, 0), 75);
    assert_int_equal(cost_of(&p, 100, 60, 60, 0, 0), 30 + 60);

    /* negative counts are 0 */
    assert_int_equal(cost_of(&p, -100, -5, -1, -1, -1), 0);
    assert_int_equal(cost_of(&p, 100, -5, 0, 0, 0), 100);
}


/* audio/speech: per 1M input characters, in the same rounding as tokens */

static void
test_characters(void **state)
{
    int64_t                     cost;
    ngx_ai_relay_price_t        p;
    ngx_ai_relay_price_usage_t  u;

    ngx_ai_relay_price_init(&p);
    memset(&u, 0, sizeof(u));

    p.per_char = 15000000;
    u.characters = 8;
    assert_int_equal(ngx_ai_relay_price_cost(&p, &u, &cost),
                     NGX_AI_RELAY_PRICE_OK);
    assert_int_equal(cost, 120);

    /* one character at 1 uUSD per 1M: rounded up to 1 */

    p.per_char = 1;
    u.characters = 1;
    assert_int_equal(ngx_ai_relay_price_cost(&p, &u, &cost),
                     NGX_AI_RELAY_PRICE_OK);
    assert_int_equal(cost, 1);

    /* tokens and characters share one rounding */

    p.input = 1000000;
    p.per_char = 500000;
    p.per_request = 7;
    u.prompt_tokens = 1;
    u.characters = 1;
    assert_int_equal(ngx_ai_relay_price_cost(&p, &u, &cost),
                     NGX_AI_RELAY_PRICE_OK);
    assert_int_equal(cost, 2 + 7);

    /* transcriptions by the second: no per-1M division */

    ngx_ai_relay_price_init(&p);
    memset(&u, 0, sizeof(u));
    p.per_second = 100;
    p.per_request = 1;
    u.seconds = 9;
    assert_int_equal(ngx_ai_relay_price_cost(&p, &u, &cost),
                     NGX_AI_RELAY_PRICE_OK);
    assert_int_equal(cost, 901);

    /* unset: free */

    ngx_ai_relay_price_init(&p);
    u.seconds = 0;
    u.prompt_tokens = 0;
    u.characters = 1000000;
    assert_int_equal(ngx_ai_relay_price_cost(&p, &u, &cost),
                     NGX_AI_RELAY_PRICE_OK);
    assert_int_equal(cost, 0);
}


static void
test_seconds_by_size(void **state)
{
    int64_t                     cost;
    ngx_ai_relay_price_t        p;
    ngx_ai_relay_price_usage_t  u;

    ngx_ai_relay_price_init(&p);
    p.per_request = 7;
    p.per_second = 100000;

    assert_int_equal(ngx_ai_relay_price_add_second(&p, N("1792x1024"),
                                                   500000),
                     0);
    assert_int_equal(ngx_ai_relay_price_add_second(&p, N("1024x1792"), -1),
                     0);
    assert_int_equal(ngx_ai_relay_price_add_second(&p, N(""), 1), -1);

    memset(&u, 0, sizeof(u));
    u.seconds = 8;

    /* no size: per_second */
    ngx_ai_relay_price_cost(&p, &u, &cost);
    assert_int_equal(cost, 7 + 8 * 100000);

    u.image_size = "1792x1024";
    u.image_size_len = 9;
    ngx_ai_relay_price_cost(&p, &u, &cost);
    assert_int_equal(cost, 7 + 8 * 500000);

    /* a size priced unset, another size, a prefix of a priced one */
    u.image_size = "1024x1792";
    ngx_ai_relay_price_cost(&p, &u, &cost);
    assert_int_equal(cost, 7 + 8 * 100000);

    u.image_size = "1280x720";
    u.image_size_len = 8;
    ngx_ai_relay_price_cost(&p, &u, &cost);
    assert_int_equal(cost, 7 + 8 * 100000);

    u.image_size = "1792x102";
    ngx_ai_relay_price_cost(&p, &u, &cost);
    assert_int_equal(cost, 7 + 8 * 100000);

    /* full */
    while (p.nseconds < NGX_AI_RELAY_PRICE_SECOND_MAX) {
        assert_int_equal(ngx_ai_relay_price_add_second(&p, N("1x1"), 1), 0);
    }

    assert_int_equal(ngx_ai_relay_price_add_second(&p, N("2x2"), 1), -1);
}


/*
 * A video's size and quality: "size:quality", "size:*", the bare "size",
 * "*:quality", then per_second; images' lookup knows no bare size.
 */

static void
test_seconds_by_quality(void **state)
{
    int64_t                     cost;
    ngx_ai_relay_price_t        p;
    ngx_ai_relay_price_usage_t  u;

    ngx_ai_relay_price_init(&p);
    p.per_request = 7;
    p.per_second = 100000;

    /* added in an order unlike the lookup's: order in the table is moot */
    assert_int_equal(ngx_ai_relay_price_add_second(&p, N("*:high"), 300000),
                     0);
    assert_int_equal(ngx_ai_relay_price_add_second(&p, N("1792x1024"),
                                                   500000),
                     0);
    assert_int_equal(ngx_ai_relay_price_add_second(&p, N("1792x1024:high"),
                                                   700000),
                     0);
    assert_int_equal(ngx_ai_relay_price_add_second(&p, N("1280x720:*"),
                                                   200000),
                     0);
    assert_int_equal(ngx_ai_relay_price_add_second(&p, N("1280x720"),
                                                   250000),
                     0);
    assert_int_equal(ngx_ai_relay_price_add_second(&p, N("720x1280:low"),
                                                   -1),
                     0);

    memset(&u, 0, sizeof(u));
    u.seconds = 4;

    /* size and quality priced together */
    u.image_size = "1792x1024";
    u.image_size_len = 9;
    u.image_quality = "high";
    u.image_quality_len = 4;
    assert_int_equal(ngx_ai_relay_price_cost(&p, &u, &cost),
                     NGX_AI_RELAY_PRICE_OK);
    assert_int_equal(cost, 7 + 4 * 700000);

    /* another quality of that size: the bare size */
    u.image_quality = "standard";
    u.image_quality_len = 8;
    ngx_ai_relay_price_cost(&p, &u, &cost);
    assert_int_equal(cost, 7 + 4 * 500000);

    /* no quality: the bare size */
    u.image_quality = NULL;
    u.image_quality_len = 0;
    ngx_ai_relay_price_cost(&p, &u, &cost);
    assert_int_equal(cost, 7 + 4 * 500000);

    /* an empty quality (a field not sent) is no quality */
    u.image_quality = "";
    ngx_ai_relay_price_cost(&p, &u, &cost);
    assert_int_equal(cost, 7 + 4 * 500000);

    /* "size:*" wins over the bare size, and both over "*:quality" */
    u.image_size = "1280x720";
    u.image_size_len = 8;
    u.image_quality = "high";
    u.image_quality_len = 4;
    ngx_ai_relay_price_cost(&p, &u, &cost);
    assert_int_equal(cost, 7 + 4 * 200000);

    /* a size without a price of its own: "*:quality" */
    u.image_size = "720x1280";
    ngx_ai_relay_price_cost(&p, &u, &cost);
    assert_int_equal(cost, 7 + 4 * 300000);

    /* an unset override is skipped: "*:low" is not there, per_second */
    u.image_quality = "low";
    u.image_quality_len = 3;
    ngx_ai_relay_price_cost(&p, &u, &cost);
    assert_int_equal(cost, 7 + 4 * 100000);

    /* only a quality */
    u.image_size = NULL;
    u.image_size_len = 0;
    u.image_quality = "high";
    u.image_quality_len = 4;
    ngx_ai_relay_price_cost(&p, &u, &cost);
    assert_int_equal(cost, 7 + 4 * 300000);

    /* prefixes match nothing */
    u.image_size = "1792x1024";
    u.image_size_len = 9;
    u.image_quality = "hig";
    u.image_quality_len = 3;
    ngx_ai_relay_price_cost(&p, &u, &cost);
    assert_int_equal(cost, 7 + 4 * 500000);

    u.image_size = "1792x10";
    u.image_size_len = 7;
    ngx_ai_relay_price_cost(&p, &u, &cost);
    assert_int_equal(cost, 7 + 4 * 100000);

    /* a quality is not a size: "high" alone is no "*:high" */
    ngx_ai_relay_price_init(&p);
    p.per_second = 100000;
    assert_int_equal(ngx_ai_relay_price_add_second(&p, N("high"), 900000),
                     0);
    u.image_size = NULL;
    u.image_size_len = 0;
    u.image_quality = "high";
    u.image_quality_len = 4;
    ngx_ai_relay_price_cost(&p, &u, &cost);
    assert_int_equal(cost, 4 * 100000);

    /* no seconds: nothing per second, whatever the overrides */
    u.seconds = 0;
    ngx_ai_relay_price_cost(&p, &u, &cost);
    assert_int_equal(cost, 0);

    /* images ignore a bare size ("1024x1024" is no image key) */
    ngx_ai_relay_price_init(&p);
    p.per_image = 40000;
    assert_int_equal(ngx_ai_relay_price_add_image(&p, N("1024x1024"), 1), -1);
    p.images[0].price = 90000;
    memcpy(p.images[0].key, "1024x1024", sizeof("1024x1024"));
    p.nimages = 1;
    memset(&u, 0, sizeof(u));
    u.images = 1;
    u.image_size = "1024x1024";
    u.image_size_len = 9;
    ngx_ai_relay_price_cost(&p, &u, &cost);
    assert_int_equal(cost, 40000);
}


static void
test_images(void **state)
{
    int64_t                     cost;
    ngx_ai_relay_price_t        p;
    ngx_ai_relay_price_usage_t  u;

    ngx_ai_relay_price_init(&p);
    p.per_request = 1000;
    p.per_image = 40000;

    assert_int_equal(ngx_ai_relay_price_add_image(&p, N("1024x1024:hd"),
                                                  80000),
                     0);
    assert_int_equal(ngx_ai_relay_price_add_image(&p, N("1024x1792:*"),
                                                  120000),
                     0);
    assert_int_equal(ngx_ai_relay_price_add_image(&p, N("*:low"), 10000), 0);
    assert_int_equal(ngx_ai_relay_price_add_image(&p, N("512x512:hd"), -1),
                     0);

    memset(&u, 0, sizeof(u));
    u.images = 2;

    /* no size or quality: per_image */
    assert_int_equal(ngx_ai_relay_price_cost(&p, &u, &cost),
                     NGX_AI_RELAY_PRICE_OK);
    assert_int_equal(cost, 1000 + 2 * 40000);

    u.image_size = "1024x1024";
    u.image_size_len = 9;
    u.image_quality = "hd";
    u.image_quality_len = 2;
    ngx_ai_relay_price_cost(&p, &u, &cost);
    assert_int_equal(cost, 1000 + 2 * 80000);

    u.image_quality = "standard";
    u.image_quality_len = 8;
    ngx_ai_relay_price_cost(&p, &u, &cost);
    assert_int_equal(cost, 1000 + 2 * 40000);

    u.image_size = "1024x1792";
    ngx_ai_relay_price_cost(&p, &u, &cost);
    assert_int_equal(cost, 1000 + 2 * 120000);

    /* size:* before *:quality */
    u.image_quality = "low";
    u.image_quality_len = 3;
    ngx_ai_relay_price_cost(&p, &u, &cost);
    assert_int_equal(cost, 1000 + 2 * 120000);

    u.image_size = "256x256";
    u.image_size_len = 7;
    ngx_ai_relay_price_cost(&p, &u, &cost);
    assert_int_equal(cost, 1000 + 2 * 10000);

    /* a negative override is unset */
    u.image_size = "512x512";
    u.image_quality = "hd";
    u.image_quality_len = 2;
    ngx_ai_relay_price_cost(&p, &u, &cost);
    assert_int_equal(cost, 1000 + 2 * 40000);

    /* only a quality */
    u.image_size = NULL;
    u.image_quality = "low";
    u.image_quality_len = 3;
    ngx_ai_relay_price_cost(&p, &u, &cost);
    assert_int_equal(cost, 1000 + 2 * 10000);

    /* prefixes do not match */
    u.image_size = "1024x10";
    u.image_size_len = 7;
    u.image_quality = "h";
    u.image_quality_len = 1;
    ngx_ai_relay_price_cost(&p, &u, &cost);
    assert_int_equal(cost, 1000 + 2 * 40000);

    /* bad keys, a full table */
    assert_int_equal(ngx_ai_relay_price_add_image(&p, N("1024x1024"), 1), -1);
    assert_int_equal(ngx_ai_relay_price_add_image(&p,
                         N("0123456789012345678901234567890:x"), 1),
                     -1);
    assert_int_equal(ngx_ai_relay_price_add_image(&p, N("a:b"), 1), 0);
    assert_int_equal(ngx_ai_relay_price_add_image(&p, N("a:c"), 1), 0);
    assert_int_equal(ngx_ai_relay_price_add_image(&p, N("a:d"), 1), 0);
    assert_int_equal(ngx_ai_relay_price_add_image(&p, N("a:e"), 1), 0);
    assert_int_equal(p.nimages, NGX_AI_RELAY_PRICE_IMAGE_MAX);
    assert_int_equal(ngx_ai_relay_price_add_image(&p, N("a:f"), 1), -1);
}


static void
test_overflow(void **state)
{
    int64_t                     cost;
    ngx_ai_relay_price_t        p;
    ngx_ai_relay_price_usage_t  u;

    /* 1e12 tokens at 1e12 uUSD per 1M in all five parts: 5e18 uUSD */
    ngx_ai_relay_price_init(&p);
    p.input = 1000000000000LL;
    p.cached_input = 1000000000000LL;
    p.cache_write_5m = 1000000000000LL;
    p.cache_write_1h = 1000000000000LL;
    p.output = 1000000000000LL;

    memset(&u, 0, sizeof(u));
    u.prompt_tokens = 4000000000000LL;
    u.cached_tokens = 1000000000000LL;
    u.cache_write_5m_tokens = 1000000000000LL;
    u.cache_write_1h_tokens = 1000000000000LL;
    u.completion_tokens = 1000000000000LL;

    assert_int_equal(ngx_ai_relay_price_cost(&p, &u, &cost),
                     NGX_AI_RELAY_PRICE_OK);
    assert_true(cost == 5000000000000000000LL);

    /* the largest inputs: saturated, no wrap-around */
    p.input = INT64_MAX;
    p.cached_input = INT64_MAX;
    p.cache_write_5m = INT64_MAX;
    p.cache_write_1h = INT64_MAX;
    p.output = INT64_MAX;
    p.per_request = INT64_MAX;
    p.per_image = INT64_MAX;
    u.prompt_tokens = INT64_MAX;
    u.cached_tokens = INT64_MAX;
    u.cache_write_5m_tokens = INT64_MAX;
    u.cache_write_1h_tokens = INT64_MAX;
    u.completion_tokens = INT64_MAX;
    u.images = INT64_MAX;

    assert_int_equal(ngx_ai_relay_price_cost(&p, &u, &cost),
                     NGX_AI_RELAY_PRICE_OVERFLOW);
    assert_true(cost == INT64_MAX);

    /* exactly INT64_MAX fits */
    ngx_ai_relay_price_init(&p);
    p.input = 1000000;
    memset(&u, 0, sizeof(u));
    u.prompt_tokens = INT64_MAX;
    assert_int_equal(ngx_ai_relay_price_cost(&p, &u, &cost),
                     NGX_AI_RELAY_PRICE_OK);
    assert_true(cost == INT64_MAX);

    p.per_request = 1;
    assert_int_equal(ngx_ai_relay_price_cost(&p, &u, &cost),
                     NGX_AI_RELAY_PRICE_OVERFLOW);
    assert_true(cost == INT64_MAX);

    ngx_ai_relay_price_init(&p);
    p.per_request = INT64_MAX;
    memset(&u, 0, sizeof(u));
    assert_int_equal(ngx_ai_relay_price_cost(&p, &u, &cost),
                     NGX_AI_RELAY_PRICE_OK);
    assert_true(cost == INT64_MAX);

    u.prompt_tokens = 1;
    p.input = 1;
    assert_int_equal(ngx_ai_relay_price_cost(&p, &u, &cost),
                     NGX_AI_RELAY_PRICE_OVERFLOW);

    ngx_ai_relay_price_init(&p);
    p.per_image = 2;
    memset(&u, 0, sizeof(u));
    u.images = INT64_MAX / 2;
    assert_int_equal(ngx_ai_relay_price_cost(&p, &u, &cost),
                     NGX_AI_RELAY_PRICE_OK);
    u.images = INT64_MAX / 2 + 1;
    assert_int_equal(ngx_ai_relay_price_cost(&p, &u, &cost),
                     NGX_AI_RELAY_PRICE_OVERFLOW);
}


#if defined(__SIZEOF_INT128__)

static void
test_cost_reference(void **state)
{
    int                         rc, i;
    int64_t                     cost;
    uint64_t                    seed;
    unsigned __int128           sum, v, t[5], pr[5];
    ngx_ai_relay_price_t        p;
    ngx_ai_relay_price_usage_t  u;

    seed = 88172645463325252ULL;

#define RND(bits)                                                            \
    (seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17,              \
     (int64_t) (seed >> (64 - (bits))))

    for (i = 0; i < 200000; i++) {
        ngx_ai_relay_price_init(&p);
        memset(&u, 0, sizeof(u));

        p.input = RND(1 + i % 62);
        p.cached_input = RND(1 + (i * 7) % 62);
        p.cache_write_5m = RND(1 + (i * 11) % 62);
        p.cache_write_1h = RND(1 + (i * 13) % 62);
        p.output = RND(1 + (i * 17) % 62);
        p.per_request = RND(1 + (i * 19) % 62);

        u.cached_tokens = RND(1 + (i * 3) % 62);
        u.cache_write_5m_tokens = RND(1 + (i * 5) % 62);
        u.cache_write_1h_tokens = RND(1 + (i * 23) % 62);
        sum = (unsigned __int128) u.cached_tokens + u.cache_write_5m_tokens
              + u.cache_write_1h_tokens + RND(1 + i % 60);
        u.prompt_tokens = (sum > INT64_MAX) ? INT64_MAX : (int64_t) sum;

        u.completion_tokens = RND(1 + (i * 29) % 62);

        t[0] = (unsigned __int128) u.prompt_tokens;
        t[1] = (unsigned __int128) u.cached_tokens;
        t[2] = (unsigned __int128) u.cache_write_5m_tokens;
        t[3] = (unsigned __int128) u.cache_write_1h_tokens;
        t[4] = (unsigned __int128) u.completion_tokens;

        v = t[1] + t[2] + t[3];
        t[0] = (t[0] > v) ? t[0] - v : 0;

        pr[0] = (unsigned __int128) p.input;
        pr[1] = (unsigned __int128) p.cached_input;
        pr[2] = (unsigned __int128) p.cache_write_5m;
        pr[3] = (unsigned __int128) p.cache_write_1h;
        pr[4] = (unsigned __int128) p.output;

        /* each product < 2^124 here, so the sum cannot wrap */
        sum = 0;
        for (rc = 0; rc < 5; rc++) {
            sum += t[rc] * pr[rc];
        }

        sum = (sum + 999999) / 1000000 + (unsigned __int128) p.per_request;

        rc = ngx_ai_relay_price_cost(&p, &u, &cost);

        if (sum > (unsigned __int128) INT64_MAX) {
            assert_int_equal(rc, NGX_AI_RELAY_PRICE_OVERFLOW);
            assert_true(cost == INT64_MAX);

        } else {
            assert_int_equal(rc, NGX_AI_RELAY_PRICE_OK);
            assert_true((unsigned __int128) cost == sum);
        }
    }

#undef RND
}

#endif


static void
test_estimate(void **state)
{
    int64_t               cost;
    ngx_ai_relay_price_t  p;

    ngx_ai_relay_price_init(&p);
    p.input = 2500000;
    p.cached_input = 1;
    p.output = 10000000;
    p.per_request = 7;

    assert_int_equal(ngx_ai_relay_price_estimate(&p, 1000, 4096, &cost),
                     NGX_AI_RELAY_PRICE_OK);
    assert_int_equal(cost, 2500 + 40960 + 7);

    assert_int_equal(ngx_ai_relay_price_estimate(&p, 0, 0, &cost),
                     NGX_AI_RELAY_PRICE_OK);
    assert_int_equal(cost, 7);

    assert_int_equal(ngx_ai_relay_price_estimate(&p, 1, 1, &cost),
                     NGX_AI_RELAY_PRICE_OK);
    assert_int_equal(cost, 13 + 7);

    assert_int_equal(ngx_ai_relay_price_estimate(&p, INT64_MAX, INT64_MAX,
                                                 &cost),
                     NGX_AI_RELAY_PRICE_OVERFLOW);
}


static void
test_quota(void **state)
{
    int64_t  v, rem;

    assert_int_equal(ngx_ai_relay_price_quota_to_micro(500000, &v),
                     NGX_AI_RELAY_PRICE_OK);
    assert_int_equal(v, 1000000);
    assert_int_equal(ngx_ai_relay_price_quota_to_micro(-7, &v),
                     NGX_AI_RELAY_PRICE_OK);
    assert_int_equal(v, -14);
    assert_int_equal(ngx_ai_relay_price_quota_to_micro(INT64_MAX / 2, &v),
                     NGX_AI_RELAY_PRICE_OK);
    assert_int_equal(ngx_ai_relay_price_quota_to_micro(INT64_MAX / 2 + 1, &v),
                     NGX_AI_RELAY_PRICE_OVERFLOW);
    assert_true(v == INT64_MAX);
    assert_int_equal(ngx_ai_relay_price_quota_to_micro(INT64_MIN / 2, &v),
                     NGX_AI_RELAY_PRICE_OK);
    assert_true(v == INT64_MIN);
    assert_int_equal(ngx_ai_relay_price_quota_to_micro(INT64_MIN / 2 - 1, &v),
                     NGX_AI_RELAY_PRICE_OVERFLOW);
    assert_true(v == INT64_MIN);

    assert_int_equal(ngx_ai_relay_price_micro_to_quota(1000000, &v, &rem),
                     NGX_AI_RELAY_PRICE_OK);
    assert_int_equal(v, 500000);
    assert_int_equal(rem, 0);

    assert_int_equal(ngx_ai_relay_price_micro_to_quota(3, &v, &rem),
                     NGX_AI_RELAY_PRICE_INEXACT);
    assert_int_equal(v, 1);
    assert_int_equal(rem, 1);

    assert_int_equal(ngx_ai_relay_price_micro_to_quota(-3, &v, &rem),
                     NGX_AI_RELAY_PRICE_INEXACT);
    assert_int_equal(v, -2);
    assert_int_equal(rem, 1);

    assert_int_equal(ngx_ai_relay_price_micro_to_quota(0, &v, &rem),
                     NGX_AI_RELAY_PRICE_OK);
    assert_int_equal(v, 0);

    assert_int_equal(ngx_ai_relay_price_micro_to_quota(INT64_MAX, &v, &rem),
                     NGX_AI_RELAY_PRICE_INEXACT);
    assert_true(v == INT64_MAX / 2);
    assert_int_equal(rem, 1);

    assert_int_equal(ngx_ai_relay_price_micro_to_quota(INT64_MIN, &v, &rem),
                     NGX_AI_RELAY_PRICE_OK);
    assert_true(v == INT64_MIN / 2);
}


typedef struct {
    const char  *s;
    int          rc;
    uint64_t     mant;
    int          exp10;
} ratio_case_t;


static const ratio_case_t  ratio_cases[] = {
    { "0.075", NGX_AI_RELAY_PRICE_OK, 75, -3 },
    { "1", NGX_AI_RELAY_PRICE_OK, 1, 0 },
    { "15", NGX_AI_RELAY_PRICE_OK, 15, 0 },
    { "2.5e-1", NGX_AI_RELAY_PRICE_OK, 25, -2 },
    { "1E+3", NGX_AI_RELAY_PRICE_OK, 1, 3 },
    { "1e-07", NGX_AI_RELAY_PRICE_OK, 1, -7 },
    { "0", NGX_AI_RELAY_PRICE_OK, 0, 0 },
    { "0.000", NGX_AI_RELAY_PRICE_OK, 0, 0 },
    { "0e5", NGX_AI_RELAY_PRICE_OK, 0, 0 },
    { "100", NGX_AI_RELAY_PRICE_OK, 1, 2 },
    { "1.50", NGX_AI_RELAY_PRICE_OK, 15, -1 },
    { "007", NGX_AI_RELAY_PRICE_OK, 7, 0 },
    { "10.01", NGX_AI_RELAY_PRICE_OK, 1001, -2 },
    { "0.3333333333333333", NGX_AI_RELAY_PRICE_OK, 3333333333333333ULL,
      -16 },
    { "1234567890123456789", NGX_AI_RELAY_PRICE_OK, 1234567890123456789ULL,
      0 },
    { "9999999999999999999", NGX_AI_RELAY_PRICE_OK, 9999999999999999999ULL,
      0 },
    { "12345678901234567890", NGX_AI_RELAY_PRICE_OK, 1234567890123456789ULL,
      1 },
    { "123456789012345678901", NGX_AI_RELAY_PRICE_INVALID, 0, 0 },
    { "1.0000000000000000001", NGX_AI_RELAY_PRICE_INVALID, 0, 0 },
    { "10000000000000000000000000", NGX_AI_RELAY_PRICE_OK, 1, 25 },
    { "1.000000000000000000000000", NGX_AI_RELAY_PRICE_OK, 1, 0 },
    { "0.00000000000000000000000001", NGX_AI_RELAY_PRICE_OK, 1, -26 },
    { "1e400", NGX_AI_RELAY_PRICE_OK, 1, 400 },
    { "1e-400", NGX_AI_RELAY_PRICE_OK, 1, -400 },
    { "1e401", NGX_AI_RELAY_PRICE_INVALID, 0, 0 },
    { "", NGX_AI_RELAY_PRICE_INVALID, 0, 0 },
    { "-1", NGX_AI_RELAY_PRICE_INVALID, 0, 0 },
    { "+1", NGX_AI_RELAY_PRICE_INVALID, 0, 0 },
    { ".5", NGX_AI_RELAY_PRICE_INVALID, 0, 0 },
    { "1.", NGX_AI_RELAY_PRICE_INVALID, 0, 0 },
    { "1..2", NGX_AI_RELAY_PRICE_INVALID, 0, 0 },
    { "1.2.3", NGX_AI_RELAY_PRICE_INVALID, 0, 0 },
    { "1e", NGX_AI_RELAY_PRICE_INVALID, 0, 0 },
    { "1e+", NGX_AI_RELAY_PRICE_INVALID, 0, 0 },
    { "e5", NGX_AI_RELAY_PRICE_INVALID, 0, 0 },
    { "abc", NGX_AI_RELAY_PRICE_INVALID, 0, 0 },
    { "1 ", NGX_AI_RELAY_PRICE_INVALID, 0, 0 },
    { " 1", NGX_AI_RELAY_PRICE_INVALID, 0, 0 },
    { "0x10", NGX_AI_RELAY_PRICE_INVALID, 0, 0 },
    { "1,5", NGX_AI_RELAY_PRICE_INVALID, 0, 0 },
    { "NaN", NGX_AI_RELAY_PRICE_INVALID, 0, 0 },
    { "1/3", NGX_AI_RELAY_PRICE_INVALID, 0, 0 },
};


static void
test_ratio_parse(void **state)
{
    size_t                      i;
    ngx_ai_relay_price_ratio_t  r;
    const ratio_case_t         *c;

    for (i = 0; i < sizeof(ratio_cases) / sizeof(ratio_cases[0]); i++) {
        c = &ratio_cases[i];

        r.mant = 12345;
        r.exp10 = 12345;

        if (ngx_ai_relay_price_ratio_parse(c->s, strlen(c->s), &r) != c->rc
            || (c->rc == NGX_AI_RELAY_PRICE_OK
                && (r.mant != c->mant || r.exp10 != c->exp10)))
        {
            print_error("\"%s\": mant %llu exp %d\n", c->s,
                        (unsigned long long) r.mant, r.exp10);
            fail();
        }
    }

    /* a length, not a NUL, ends the string */
    assert_int_equal(ngx_ai_relay_price_ratio_parse("1.25xyz", 4, &r),
                     NGX_AI_RELAY_PRICE_OK);
    assert_int_equal(r.mant, 125);
    assert_int_equal(r.exp10, -2);
}


static ngx_ai_relay_price_ratio_t *
ratio(const char *s)
{
    static int                         n;
    static ngx_ai_relay_price_ratio_t  r[16];

    n = (n + 1) % 16;

    assert_int_equal(ngx_ai_relay_price_ratio_parse(s, strlen(s), &r[n]),
                     NGX_AI_RELAY_PRICE_OK);

    return &r[n];
}


static void
test_conversions(void **state)
{
    int64_t                            v, rem;
    ngx_ai_relay_price_t               p;
    const ngx_ai_relay_price_ratio_t  *r[3];

    /* ModelRatio r: input = r * 2,000,000 uUSD per 1M */

#define MODEL(s, rc, val)                                                    \
    v = -1;                                                                  \
    assert_int_equal(ngx_ai_relay_price_from_model_ratio(ratio(s), NULL,     \
                                                         &v), rc);           \
    assert_true(v == (val))

    MODEL("0.075", NGX_AI_RELAY_PRICE_OK, 150000);
    MODEL("1", NGX_AI_RELAY_PRICE_OK, 2000000);
    MODEL("15", NGX_AI_RELAY_PRICE_OK, 30000000);
    MODEL("2.5e-1", NGX_AI_RELAY_PRICE_OK, 500000);
    MODEL("0", NGX_AI_RELAY_PRICE_OK, 0);
    MODEL("0.0000005", NGX_AI_RELAY_PRICE_OK, 1);
    MODEL("0.0000001", NGX_AI_RELAY_PRICE_INEXACT, 1);
    MODEL("0.3333333333333333", NGX_AI_RELAY_PRICE_INEXACT, 666667);
    MODEL("0.6666666666666666", NGX_AI_RELAY_PRICE_INEXACT, 1333334);
    MODEL("1e-400", NGX_AI_RELAY_PRICE_INEXACT, 1);
    MODEL("4611686018427.387903", NGX_AI_RELAY_PRICE_OK, INT64_MAX - 1);
    MODEL("4611686018427.387904", NGX_AI_RELAY_PRICE_OVERFLOW, INT64_MAX);
    MODEL("1e300", NGX_AI_RELAY_PRICE_OVERFLOW, INT64_MAX);
    MODEL("9999999999999999999e400", NGX_AI_RELAY_PRICE_OVERFLOW, INT64_MAX);

#undef MODEL

    /* with a GroupRatio */
    assert_int_equal(ngx_ai_relay_price_from_model_ratio(ratio("0.075"),
                                                         ratio("0.8"), &v),
                     NGX_AI_RELAY_PRICE_OK);
    assert_int_equal(v, 120000);

    assert_int_equal(ngx_ai_relay_price_from_model_ratio(NULL, NULL, &v),
                     NGX_AI_RELAY_PRICE_INVALID);

    /* CompletionRatio c: output = r * c * 2,000,000 */
    assert_int_equal(ngx_ai_relay_price_from_completion_ratio(ratio("0.075"),
                         ratio("4"), NULL, &v),
                     NGX_AI_RELAY_PRICE_OK);
    assert_int_equal(v, 600000);

    assert_int_equal(ngx_ai_relay_price_from_completion_ratio(ratio("2.5"),
                         ratio("3"), ratio("1.5"), &v),
                     NGX_AI_RELAY_PRICE_OK);
    assert_int_equal(v, 22500000);

    assert_int_equal(ngx_ai_relay_price_from_completion_ratio(ratio("1"),
                         ratio("0.3333333333333333"), ratio("3"), &v),
                     NGX_AI_RELAY_PRICE_INEXACT);
    assert_int_equal(v, 2000000);

    /* the exact product is taken before rounding */
    assert_int_equal(ngx_ai_relay_price_from_completion_ratio(
                         ratio("0.0000001"), ratio("10"), NULL, &v),
                     NGX_AI_RELAY_PRICE_OK);
    assert_int_equal(v, 2);

    /* CacheRatio / CreateCacheRatio: input * ratio */
    assert_int_equal(ngx_ai_relay_price_from_cache_ratio(ratio("1.5"),
                         ratio("0.1"), NULL, &v),
                     NGX_AI_RELAY_PRICE_OK);
    assert_int_equal(v, 300000);
    assert_int_equal(ngx_ai_relay_price_from_cache_ratio(ratio("1.5"),
                         ratio("1.25"), NULL, &v),
                     NGX_AI_RELAY_PRICE_OK);
    assert_int_equal(v, 3750000);

    /* ModelPrice: USD per request */
    assert_int_equal(ngx_ai_relay_price_from_model_price(ratio("0.04"), NULL,
                                                         &v),
                     NGX_AI_RELAY_PRICE_OK);
    assert_int_equal(v, 40000);
    assert_int_equal(ngx_ai_relay_price_from_model_price(ratio("0.04"),
                                                         ratio("1.5"), &v),
                     NGX_AI_RELAY_PRICE_OK);
    assert_int_equal(v, 60000);
    assert_int_equal(ngx_ai_relay_price_from_model_price(ratio("0.0000001"),
                                                         NULL, &v),
                     NGX_AI_RELAY_PRICE_INEXACT);
    assert_int_equal(v, 1);
    assert_int_equal(ngx_ai_relay_price_from_model_price(NULL, NULL, &v),
                     NGX_AI_RELAY_PRICE_INVALID);

    /* the generic product; NULL entries are 1 */
    r[0] = ratio("0.5");
    r[1] = NULL;
    r[2] = ratio("0.5");
    assert_int_equal(ngx_ai_relay_price_ratio_mul(3, r, 3, &v),
                     NGX_AI_RELAY_PRICE_INEXACT);
    assert_int_equal(v, 1);
    assert_int_equal(ngx_ai_relay_price_ratio_mul(4, r, 3, &v),
                     NGX_AI_RELAY_PRICE_OK);
    assert_int_equal(v, 1);
    assert_int_equal(ngx_ai_relay_price_ratio_mul(0, r, 3, &v),
                     NGX_AI_RELAY_PRICE_OK);
    assert_int_equal(v, 0);
    assert_int_equal(ngx_ai_relay_price_ratio_mul(7, r, 0, &v),
                     NGX_AI_RELAY_PRICE_OK);
    assert_int_equal(v, 7);
    r[0] = ratio("9999999999999999999");
    r[1] = ratio("9999999999999999999");
    r[2] = ratio("9999999999999999999e-60");
    assert_int_equal(ngx_ai_relay_price_ratio_mul(UINT64_MAX, r, 3, &v),
                     NGX_AI_RELAY_PRICE_INEXACT);
    assert_true(v == 18446744073709552LL);
    r[2] = ratio("9999999999999999999e-57");
    assert_int_equal(ngx_ai_relay_price_ratio_mul(UINT64_MAX, r, 3, &v),
                     NGX_AI_RELAY_PRICE_OVERFLOW);

    /* the edge of int64_t through ModelPrice (base 1,000,000) */
    assert_int_equal(ngx_ai_relay_price_from_model_price(
                         ratio("9223372036854.775807"), NULL, &v),
                     NGX_AI_RELAY_PRICE_OK);
    assert_true(v == INT64_MAX);
    assert_int_equal(ngx_ai_relay_price_from_model_price(
                         ratio("9223372036854.775808"), NULL, &v),
                     NGX_AI_RELAY_PRICE_OVERFLOW);

    /* a whole price, New API style (gpt-4o-mini) */
    assert_int_equal(ngx_ai_relay_price_from_ratios(&p, ratio("0.075"),
                         ratio("4"), ratio("0.5"), ratio("1.25"), NULL,
                         NULL),
                     NGX_AI_RELAY_PRICE_OK);
    assert_int_equal(p.input, 150000);
    assert_int_equal(p.output, 600000);
    assert_int_equal(p.cached_input, 75000);
    assert_int_equal(p.cache_write_5m, 187500);
    assert_int_equal(p.cache_write_1h, NGX_AI_RELAY_PRICE_UNSET);
    assert_int_equal(p.per_request, NGX_AI_RELAY_PRICE_UNSET);

    /* One API bills ceil((prompt + completion * CR) * MR * GR) quota */
    assert_int_equal(cost_of(&p, 1000, 0, 0, 0, 100), 210);
    assert_int_equal(ngx_ai_relay_price_micro_to_quota(210, &v, &rem),
                     NGX_AI_RELAY_PRICE_OK);
    assert_int_equal(v, 105);

    /* a missing CompletionRatio is 1 */
    assert_int_equal(ngx_ai_relay_price_from_ratios(&p, ratio("0.3333333333"
                                                              "333333"),
                         NULL, NULL, NULL, ratio("2"), NULL),
                     NGX_AI_RELAY_PRICE_INEXACT);
    assert_int_equal(p.input, 1333334);
    assert_int_equal(p.output, 1333334);
    assert_int_equal(p.cached_input, NGX_AI_RELAY_PRICE_UNSET);

    /* per request pricing */
    assert_int_equal(ngx_ai_relay_price_from_ratios(&p, ratio("15"),
                         ratio("4"), NULL, NULL, ratio("0.5"),
                         ratio("0.1")),
                     NGX_AI_RELAY_PRICE_OK);
    assert_int_equal(p.per_request, 50000);
    assert_int_equal(p.input, NGX_AI_RELAY_PRICE_UNSET);
    assert_int_equal(cost_of(&p, 100000, 0, 0, 0, 100000), 50000);

    assert_int_equal(ngx_ai_relay_price_from_ratios(&p, NULL, ratio("4"),
                         NULL, NULL, NULL, NULL),
                     NGX_AI_RELAY_PRICE_INVALID);

    assert_int_equal(ngx_ai_relay_price_from_ratios(&p, ratio("1e30"), NULL,
                         NULL, NULL, NULL, NULL),
                     NGX_AI_RELAY_PRICE_OVERFLOW);
}


typedef struct {
    const char  *s;
    int          rc;
    int64_t      micro;
} usd_case_t;


static const usd_case_t  usd_cases[] = {
    { "$1.50", NGX_AI_RELAY_PRICE_OK, 1500000 },
    { "1.5", NGX_AI_RELAY_PRICE_OK, 1500000 },
    { "0.000001", NGX_AI_RELAY_PRICE_OK, 1 },
    { "$0.000123", NGX_AI_RELAY_PRICE_OK, 123 },
    { "-2", NGX_AI_RELAY_PRICE_OK, -2000000 },
    { "-$0.5", NGX_AI_RELAY_PRICE_OK, -500000 },
    { "0", NGX_AI_RELAY_PRICE_OK, 0 },
    { "-0", NGX_AI_RELAY_PRICE_OK, 0 },
    { "00012.340", NGX_AI_RELAY_PRICE_OK, 12340000 },
    { "15", NGX_AI_RELAY_PRICE_OK, 15000000 },
    { "9223372036854.775807", NGX_AI_RELAY_PRICE_OK, INT64_MAX },
    { "-9223372036854.775807", NGX_AI_RELAY_PRICE_OK, -INT64_MAX },
    { "9223372036854.775808", NGX_AI_RELAY_PRICE_OVERFLOW, 0 },
    { "9223372036855", NGX_AI_RELAY_PRICE_OVERFLOW, 0 },
    { "99999999999999999999999", NGX_AI_RELAY_PRICE_OVERFLOW, 0 },
    { "1.0000001", NGX_AI_RELAY_PRICE_INVALID, 0 },
    { "1.0000000", NGX_AI_RELAY_PRICE_INVALID, 0 },
    { "", NGX_AI_RELAY_PRICE_INVALID, 0 },
    { "$", NGX_AI_RELAY_PRICE_INVALID, 0 },
    { "-", NGX_AI_RELAY_PRICE_INVALID, 0 },
    { "1.", NGX_AI_RELAY_PRICE_INVALID, 0 },
    { ".5", NGX_AI_RELAY_PRICE_INVALID, 0 },
    { "1e3", NGX_AI_RELAY_PRICE_INVALID, 0 },
    { " 1", NGX_AI_RELAY_PRICE_INVALID, 0 },
    { "1 ", NGX_AI_RELAY_PRICE_INVALID, 0 },
    { "$-1", NGX_AI_RELAY_PRICE_INVALID, 0 },
    { "+1", NGX_AI_RELAY_PRICE_INVALID, 0 },
    { "1,000", NGX_AI_RELAY_PRICE_INVALID, 0 },
    { "USD1", NGX_AI_RELAY_PRICE_INVALID, 0 },
    { "$$1", NGX_AI_RELAY_PRICE_INVALID, 0 },
};


static void
test_usd_parse(void **state)
{
    size_t             i;
    int64_t            v;
    const usd_case_t  *c;

    for (i = 0; i < sizeof(usd_cases) / sizeof(usd_cases[0]); i++) {
        c = &usd_cases[i];
        v = 424242;

        if (ngx_ai_relay_price_parse_usd(c->s, strlen(c->s), &v) != c->rc
            || (c->rc == NGX_AI_RELAY_PRICE_OK && v != c->micro))
        {
            print_error("\"%s\": %lld\n", c->s, (long long) v);
            fail();
        }
    }
}


static void
test_usd_format(void **state)
{
    int       i;
    char      buf[NGX_AI_RELAY_PRICE_USD_LEN];
    size_t    n;
    int64_t   v, back;
    uint64_t  seed;

#define FMT(micro, flags, want)                                              \
    n = ngx_ai_relay_price_format_usd(buf, sizeof(buf), micro, flags);       \
    assert_string_equal(buf, want);                                          \
    assert_int_equal(n, strlen(want))

    FMT(123, 0, "$0.000123");
    FMT(1500000, 0, "$1.500000");
    FMT(1500000, NGX_AI_RELAY_PRICE_FMT_TRIM, "$1.50");
    FMT(1200000, NGX_AI_RELAY_PRICE_FMT_TRIM, "$1.20");
    FMT(1230000, NGX_AI_RELAY_PRICE_FMT_TRIM, "$1.23");
    FMT(1234567, NGX_AI_RELAY_PRICE_FMT_TRIM, "$1.234567");
    FMT(123, NGX_AI_RELAY_PRICE_FMT_TRIM, "$0.000123");
    FMT(0, 0, "$0.000000");
    FMT(0, NGX_AI_RELAY_PRICE_FMT_TRIM, "$0.00");
    FMT(-1, 0, "-$0.000001");
    FMT(-1500000, NGX_AI_RELAY_PRICE_FMT_TRIM, "-$1.50");
    FMT(12000000, NGX_AI_RELAY_PRICE_FMT_TRIM
                  | NGX_AI_RELAY_PRICE_FMT_NO_SYMBOL, "12.00");
    FMT(INT64_MAX, 0, "$9223372036854.775807");
    FMT(INT64_MIN, 0, "-$9223372036854.775808");

#undef FMT

    /* too small: 0 and an empty string; exactly enough works */
    assert_int_equal(ngx_ai_relay_price_format_usd(buf, 9, 123, 0), 0);
    assert_string_equal(buf, "");
    assert_int_equal(ngx_ai_relay_price_format_usd(buf, 10, 123, 0), 9);
    assert_int_equal(ngx_ai_relay_price_format_usd(buf, 0, 123, 0), 0);

    /* format and parse are inverses */
    seed = 0x2545f4914f6cdd1dULL;

    for (i = 0; i < 100000; i++) {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;

        v = (int64_t) (seed >> (1 + i % 63));
        if (i & 1) {
            v = -v;
        }

        n = ngx_ai_relay_price_format_usd(buf, sizeof(buf), v,
                                          (i & 2)
                                          ? NGX_AI_RELAY_PRICE_FMT_TRIM : 0);
        assert_true(n > 0);
        assert_int_equal(ngx_ai_relay_price_parse_usd(buf, n, &back),
                         NGX_AI_RELAY_PRICE_OK);
        assert_true(back == v);
    }
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_resolve),
        cmocka_unit_test(test_cost),
        cmocka_unit_test(test_images),
        cmocka_unit_test(test_seconds_by_size),
        cmocka_unit_test(test_seconds_by_quality),
        cmocka_unit_test(test_characters),
        cmocka_unit_test(test_overflow),
#if defined(__SIZEOF_INT128__)
        cmocka_unit_test(test_cost_reference),
#endif
        cmocka_unit_test(test_estimate),
        cmocka_unit_test(test_quota),
        cmocka_unit_test(test_ratio_parse),
        cmocka_unit_test(test_conversions),
        cmocka_unit_test(test_usd_parse),
        cmocka_unit_test(test_usd_format),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
