
/*
 * Copyright (C) ngx_ai_relay authors
 */


#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "ngx_ai_relay_price.h"


/* 384 bits: five 126-bit products, or three 64-bit mantissas and more */
#define NGX_AI_RELAY_PRICE_LIMBS      12

#define NGX_AI_RELAY_PRICE_EXP_MAX    400
#define NGX_AI_RELAY_PRICE_SIG_MAX    19

#define ngx_ai_relay_price_digit(c)   ((c) >= '0' && (c) <= '9')


typedef struct {
    uint32_t                     d[NGX_AI_RELAY_PRICE_LIMBS];
    unsigned                     overflow;
} ngx_ai_relay_price_big_t;


static void ngx_ai_relay_price_big_set(ngx_ai_relay_price_big_t *b,
    uint64_t v);
static void ngx_ai_relay_price_big_mul32(ngx_ai_relay_price_big_t *b,
    uint32_t m);
static void ngx_ai_relay_price_big_mul64(ngx_ai_relay_price_big_t *b,
    uint64_t m);
static void ngx_ai_relay_price_big_add(ngx_ai_relay_price_big_t *b,
    const ngx_ai_relay_price_big_t *a);
static void ngx_ai_relay_price_big_add_product(ngx_ai_relay_price_big_t *b,
    uint64_t x, uint64_t y);
static uint32_t ngx_ai_relay_price_big_div32(ngx_ai_relay_price_big_t *b,
    uint32_t dv);
static int ngx_ai_relay_price_big_is_zero(const ngx_ai_relay_price_big_t *b);
static int ngx_ai_relay_price_big_get(const ngx_ai_relay_price_big_t *b,
    int64_t *v);
static int ngx_ai_relay_price_image_match(const char *key, const char *a,
    size_t alen, const char *b, size_t blen);
static int64_t ngx_ai_relay_price_lookup(const ngx_ai_relay_price_image_t *t,
    unsigned n, const ngx_ai_relay_price_usage_t *usage, unsigned bare,
    int64_t dflt);
static int64_t ngx_ai_relay_price_image(const ngx_ai_relay_price_t *p,
    const ngx_ai_relay_price_usage_t *usage);
static int64_t ngx_ai_relay_price_second(const ngx_ai_relay_price_t *p,
    const ngx_ai_relay_price_usage_t *usage);
static int ngx_ai_relay_price_worst(int a, int b);


void
ngx_ai_relay_price_init(ngx_ai_relay_price_t *price)
{
    memset(price, 0, sizeof(ngx_ai_relay_price_t));

    price->input = NGX_AI_RELAY_PRICE_UNSET;
    price->cached_input = NGX_AI_RELAY_PRICE_UNSET;
    price->cache_write_5m = NGX_AI_RELAY_PRICE_UNSET;
    price->cache_write_1h = NGX_AI_RELAY_PRICE_UNSET;
    price->output = NGX_AI_RELAY_PRICE_UNSET;
    price->per_request = NGX_AI_RELAY_PRICE_UNSET;
    price->per_image = NGX_AI_RELAY_PRICE_UNSET;
    price->per_char = NGX_AI_RELAY_PRICE_UNSET;
    price->per_second = NGX_AI_RELAY_PRICE_UNSET;
}


int
ngx_ai_relay_price_add_image(ngx_ai_relay_price_t *price, const char *key,
    size_t key_len, int64_t image_price)
{
    ngx_ai_relay_price_image_t  *img;

    if (price->nimages == NGX_AI_RELAY_PRICE_IMAGE_MAX
        || key_len >= NGX_AI_RELAY_PRICE_IMAGE_KEY_LEN
        || memchr(key, ':', key_len) == NULL
        || memchr(key, '\0', key_len) != NULL)
    {
        return -1;
    }

    img = &price->images[price->nimages++];

    memcpy(img->key, key, key_len);
    img->key[key_len] = '\0';
    img->price = image_price;

    return 0;
}


int
ngx_ai_relay_price_add_second(ngx_ai_relay_price_t *price, const char *key,
    size_t key_len, int64_t second_price)
{
    ngx_ai_relay_price_image_t  *sec;

    if (price->nseconds == NGX_AI_RELAY_PRICE_SECOND_MAX || key_len == 0
        || key_len >= NGX_AI_RELAY_PRICE_IMAGE_KEY_LEN
        || memchr(key, '\0', key_len) != NULL)
    {
        return -1;
    }

    sec = &price->seconds[price->nseconds++];

    memcpy(sec->key, key, key_len);
    sec->key[key_len] = '\0';
    sec->price = second_price;

    return 0;
}


void
ngx_ai_relay_price_resolve(const ngx_ai_relay_price_t *price,
    ngx_ai_relay_price_t *out)
{
    *out = *price;

    if (out->input < 0) {
        out->input = 0;
    }

    if (out->cached_input < 0) {
        out->cached_input = out->input;
    }

    if (out->cache_write_5m < 0) {
        out->cache_write_5m = out->input;
    }

    if (out->cache_write_1h < 0) {
        out->cache_write_1h = out->input;
    }

    if (out->output < 0) {
        out->output = 0;
    }

    if (out->per_request < 0) {
        out->per_request = 0;
    }

    if (out->per_image < 0) {
        out->per_image = 0;
    }

    if (out->per_char < 0) {
        out->per_char = 0;
    }

    if (out->per_second < 0) {
        out->per_second = 0;
    }
}


/*
 * The common case in plain 64-bit arithmetic: token counts below 2^30 and
 * prices below 2^31 keep each product below 2^61 and the sum of five
 * below 2^64.  Anything larger, and images, take the exact wide path.
 */

#define NGX_AI_RELAY_FAST_TOKENS  ((int64_t) 1 << 30)
#define NGX_AI_RELAY_FAST_PRICE   ((int64_t) 1 << 31)

static int
ngx_ai_relay_price_cost_fast(const ngx_ai_relay_price_t *price,
    const ngx_ai_relay_price_usage_t *usage, int64_t *cost)
{
    int64_t   in, ci, c5, c1, out, req;
    int64_t   prompt, cached, cw5m, cw1h, completion, uncached;
    uint64_t  sum;

    if (usage->images > 0 || usage->characters > 0 || usage->seconds > 0) {
        return 0;
    }

    prompt = usage->prompt_tokens > 0 ? usage->prompt_tokens : 0;
    cached = usage->cached_tokens > 0 ? usage->cached_tokens : 0;
    cw5m = usage->cache_write_5m_tokens > 0 ? usage->cache_write_5m_tokens
                                            : 0;
    cw1h = usage->cache_write_1h_tokens > 0 ? usage->cache_write_1h_tokens
                                            : 0;
    completion = usage->completion_tokens > 0 ? usage->completion_tokens : 0;

    in = price->input < 0 ? 0 : price->input;
    ci = price->cached_input < 0 ? in : price->cached_input;
    c5 = price->cache_write_5m < 0 ? in : price->cache_write_5m;
    c1 = price->cache_write_1h < 0 ? in : price->cache_write_1h;
    out = price->output < 0 ? 0 : price->output;
    req = price->per_request < 0 ? 0 : price->per_request;

    if (prompt >= NGX_AI_RELAY_FAST_TOKENS
        || cached >= NGX_AI_RELAY_FAST_TOKENS
        || cw5m >= NGX_AI_RELAY_FAST_TOKENS
        || cw1h >= NGX_AI_RELAY_FAST_TOKENS
        || completion >= NGX_AI_RELAY_FAST_TOKENS
        || in >= NGX_AI_RELAY_FAST_PRICE || ci >= NGX_AI_RELAY_FAST_PRICE
        || c5 >= NGX_AI_RELAY_FAST_PRICE || c1 >= NGX_AI_RELAY_FAST_PRICE
        || out >= NGX_AI_RELAY_FAST_PRICE || req >= NGX_AI_RELAY_FAST_PRICE)
    {
        return 0;
    }

    uncached = prompt - cached - cw5m - cw1h;

    if (uncached < 0) {
        uncached = 0;
    }

    sum = (uint64_t) uncached * in + (uint64_t) cached * ci
          + (uint64_t) cw5m * c5 + (uint64_t) cw1h * c1
          + (uint64_t) completion * out;

    *cost = (int64_t) ((sum + NGX_AI_RELAY_PRICE_MICRO - 1)
                       / NGX_AI_RELAY_PRICE_MICRO) + req;

    return 1;
}


int
ngx_ai_relay_price_cost(const ngx_ai_relay_price_t *price,
    const ngx_ai_relay_price_usage_t *usage, int64_t *cost)
{
    uint64_t                  prompt, cached, cw5m, cw1h, completion;
    uint64_t                  images, uncached;
    ngx_ai_relay_price_t      p;
    ngx_ai_relay_price_big_t  acc;

    if (ngx_ai_relay_price_cost_fast(price, usage, cost)) {
        return NGX_AI_RELAY_PRICE_OK;
    }

    ngx_ai_relay_price_resolve(price, &p);

    prompt = usage->prompt_tokens > 0 ? (uint64_t) usage->prompt_tokens : 0;
    cached = usage->cached_tokens > 0 ? (uint64_t) usage->cached_tokens : 0;
    cw5m = usage->cache_write_5m_tokens > 0
           ? (uint64_t) usage->cache_write_5m_tokens : 0;
    cw1h = usage->cache_write_1h_tokens > 0
           ? (uint64_t) usage->cache_write_1h_tokens : 0;
    completion = usage->completion_tokens > 0
                 ? (uint64_t) usage->completion_tokens : 0;
    images = usage->images > 0 ? (uint64_t) usage->images : 0;

    /* uncached = max(0, prompt - cached - cw5m - cw1h) */

    uncached = prompt;
    uncached = (uncached > cached) ? uncached - cached : 0;
    uncached = (uncached > cw5m) ? uncached - cw5m : 0;
    uncached = (uncached > cw1h) ? uncached - cw1h : 0;

    ngx_ai_relay_price_big_set(&acc, 0);

    ngx_ai_relay_price_big_add_product(&acc, uncached, (uint64_t) p.input);
    ngx_ai_relay_price_big_add_product(&acc, cached,
                                       (uint64_t) p.cached_input);
    ngx_ai_relay_price_big_add_product(&acc, cw5m,
                                       (uint64_t) p.cache_write_5m);
    ngx_ai_relay_price_big_add_product(&acc, cw1h,
                                       (uint64_t) p.cache_write_1h);
    ngx_ai_relay_price_big_add_product(&acc, completion, (uint64_t) p.output);

    if (usage->characters > 0) {
        ngx_ai_relay_price_big_add_product(&acc, (uint64_t) usage->characters,
                                           (uint64_t) p.per_char);
    }

    if (ngx_ai_relay_price_big_div32(&acc, NGX_AI_RELAY_PRICE_MICRO) != 0) {
        ngx_ai_relay_price_big_add_product(&acc, 1, 1);
    }

    ngx_ai_relay_price_big_add_product(&acc, 1, (uint64_t) p.per_request);

    if (usage->seconds > 0) {
        ngx_ai_relay_price_big_add_product(&acc, (uint64_t) usage->seconds,
                            (uint64_t) ngx_ai_relay_price_second(&p, usage));
    }

    if (images > 0) {
        ngx_ai_relay_price_big_add_product(&acc, images,
                            (uint64_t) ngx_ai_relay_price_image(&p, usage));
    }

    if (!ngx_ai_relay_price_big_get(&acc, cost)) {
        *cost = INT64_MAX;
        return NGX_AI_RELAY_PRICE_OVERFLOW;
    }

    return NGX_AI_RELAY_PRICE_OK;
}


int
ngx_ai_relay_price_estimate(const ngx_ai_relay_price_t *price,
    int64_t prompt_estimate, int64_t max_output, int64_t *cost)
{
    ngx_ai_relay_price_usage_t  usage;

    memset(&usage, 0, sizeof(ngx_ai_relay_price_usage_t));

    usage.prompt_tokens = prompt_estimate;
    usage.completion_tokens = max_output;

    return ngx_ai_relay_price_cost(price, &usage, cost);
}


static int
ngx_ai_relay_price_image_match(const char *key, const char *a, size_t alen,
    const char *b, size_t blen)
{
    if (b == NULL) {
        /* a bare size: "1792x1024" */
        return strlen(key) == alen && memcmp(key, a, alen) == 0;
    }

    return strlen(key) == alen + 1 + blen
           && memcmp(key, a, alen) == 0
           && key[alen] == ':'
           && memcmp(key + alen + 1, b, blen) == 0;
}


/*
 * The first set override of the table for the usage's size and quality:
 * "size:quality", "size:*", the bare "size" (if bare), "*:quality"; or
 * dflt.
 */

static int64_t
ngx_ai_relay_price_lookup(const ngx_ai_relay_price_image_t *t, unsigned n,
    const ngx_ai_relay_price_usage_t *usage, unsigned bare, int64_t dflt)
{
    size_t       alen, blen;
    unsigned     i, pass;
    const char  *a, *b;

    for (pass = 0; pass < 4; pass++) {

        switch (pass) {

        case 0:
            if (usage->image_size == NULL || usage->image_quality == NULL) {
                continue;
            }

            a = usage->image_size;
            alen = usage->image_size_len;
            b = usage->image_quality;
            blen = usage->image_quality_len;
            break;

        case 1:
            if (usage->image_size == NULL) {
                continue;
            }

            a = usage->image_size;
            alen = usage->image_size_len;
            b = "*";
            blen = 1;
            break;

        case 2:
            if (usage->image_size == NULL || !bare) {
                continue;
            }

            a = usage->image_size;
            alen = usage->image_size_len;
            b = NULL;
            blen = 0;
            break;

        default:
            if (usage->image_quality == NULL) {
                continue;
            }

            a = "*";
            alen = 1;
            b = usage->image_quality;
            blen = usage->image_quality_len;
            break;
        }

        for (i = 0; i < n; i++) {
            if (t[i].price >= 0
                && ngx_ai_relay_price_image_match(t[i].key, a, alen, b, blen))
            {
                return t[i].price;
            }
        }
    }

    return dflt;
}


/* p is resolved */

static int64_t
ngx_ai_relay_price_image(const ngx_ai_relay_price_t *p,
    const ngx_ai_relay_price_usage_t *usage)
{
    return ngx_ai_relay_price_lookup(p->images, p->nimages, usage, 0,
                                     p->per_image);
}


/*
 * The price of a second of this size and quality: "size:quality",
 * "size:*", "size" (the same as "size:*", which wins if both are set),
 * "*:quality", then per_second.  p is resolved.
 */

static int64_t
ngx_ai_relay_price_second(const ngx_ai_relay_price_t *p,
    const ngx_ai_relay_price_usage_t *usage)
{
    return ngx_ai_relay_price_lookup(p->seconds, p->nseconds, usage, 1,
                                     p->per_second);
}


int
ngx_ai_relay_price_quota_to_micro(int64_t quota, int64_t *micro)
{
    if (quota > INT64_MAX / NGX_AI_RELAY_PRICE_QUOTA_MICRO) {
        *micro = INT64_MAX;
        return NGX_AI_RELAY_PRICE_OVERFLOW;
    }

    if (quota < INT64_MIN / NGX_AI_RELAY_PRICE_QUOTA_MICRO) {
        *micro = INT64_MIN;
        return NGX_AI_RELAY_PRICE_OVERFLOW;
    }

    *micro = quota * NGX_AI_RELAY_PRICE_QUOTA_MICRO;

    return NGX_AI_RELAY_PRICE_OK;
}


int
ngx_ai_relay_price_micro_to_quota(int64_t micro, int64_t *quota,
    int64_t *rem)
{
    int64_t  q, r;

    q = micro / NGX_AI_RELAY_PRICE_QUOTA_MICRO;
    r = micro % NGX_AI_RELAY_PRICE_QUOTA_MICRO;

    if (r < 0) {
        q--;
        r += NGX_AI_RELAY_PRICE_QUOTA_MICRO;
    }

    *quota = q;
    *rem = r;

    return r ? NGX_AI_RELAY_PRICE_INEXACT : NGX_AI_RELAY_PRICE_OK;
}


int
ngx_ai_relay_price_ratio_parse(const char *s, size_t len,
    ngx_ai_relay_price_ratio_t *ratio)
{
    int          exp, esign, frac_part;
    size_t       nsig, pending, frac, ndig;
    uint64_t     mant;
    const char  *p, *end;

    p = s;
    end = s + len;

    mant = 0;
    nsig = 0;
    pending = 0;    /* zeros after the last nonzero digit */
    frac = 0;       /* fraction digits */
    ndig = 0;
    frac_part = 0;

    for ( ;; ) {

        if (p < end && ngx_ai_relay_price_digit(*p)) {
            ndig++;

            if (frac_part) {
                frac++;
            }

            if (*p == '0') {
                if (mant != 0) {
                    pending++;
                }

            } else {
                if (nsig + pending + 1 > NGX_AI_RELAY_PRICE_SIG_MAX) {
                    return NGX_AI_RELAY_PRICE_INVALID;
                }

                while (pending) {
                    mant *= 10;
                    nsig++;
                    pending--;
                }

                mant = mant * 10 + (uint64_t) (*p - '0');
                nsig++;
            }

            p++;
            continue;
        }

        if (!frac_part && ndig > 0 && p < end && *p == '.') {
            frac_part = 1;
            ndig = 0;
            p++;
            continue;
        }

        break;
    }

    if (ndig == 0) {
        /* no digits, or a '.' without digits after it */
        return NGX_AI_RELAY_PRICE_INVALID;
    }

    exp = 0;

    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        esign = 1;

        if (p < end && (*p == '+' || *p == '-')) {
            esign = (*p == '-') ? -1 : 1;
            p++;
        }

        if (p == end) {
            return NGX_AI_RELAY_PRICE_INVALID;
        }

        while (p < end && ngx_ai_relay_price_digit(*p)) {
            exp = exp * 10 + (*p - '0');

            if (exp > NGX_AI_RELAY_PRICE_EXP_MAX) {
                return NGX_AI_RELAY_PRICE_INVALID;
            }

            p++;
        }

        exp *= esign;
    }

    if (p != end) {
        return NGX_AI_RELAY_PRICE_INVALID;
    }

    if (frac > 2 * NGX_AI_RELAY_PRICE_EXP_MAX
        || pending > 2 * NGX_AI_RELAY_PRICE_EXP_MAX)
    {
        return NGX_AI_RELAY_PRICE_INVALID;
    }

    ratio->mant = mant;
    ratio->exp10 = (mant == 0) ? 0 : exp + (int) pending - (int) frac;

    return NGX_AI_RELAY_PRICE_OK;
}


int
ngx_ai_relay_price_ratio_mul(uint64_t base,
    const ngx_ai_relay_price_ratio_t *const *r, size_t n, int64_t *result)
{
    int                       exp, inexact;
    size_t                    i;
    ngx_ai_relay_price_big_t  b;

    ngx_ai_relay_price_big_set(&b, base);
    exp = 0;

    for (i = 0; i < n; i++) {
        if (r[i] == NULL) {
            continue;
        }

        ngx_ai_relay_price_big_mul64(&b, r[i]->mant);
        exp += r[i]->exp10;
    }

    if (ngx_ai_relay_price_big_is_zero(&b)) {
        *result = 0;
        return NGX_AI_RELAY_PRICE_OK;
    }

    while (exp > 0 && !b.overflow) {
        ngx_ai_relay_price_big_mul32(&b, 10);
        exp--;
    }

    inexact = 0;

    while (exp < 0 && !ngx_ai_relay_price_big_is_zero(&b)) {
        if (ngx_ai_relay_price_big_div32(&b, 10) != 0) {
            inexact = 1;
        }

        exp++;
    }

    if (inexact) {
        ngx_ai_relay_price_big_add_product(&b, 1, 1);
    }

    if (!ngx_ai_relay_price_big_get(&b, result)) {
        *result = INT64_MAX;
        return NGX_AI_RELAY_PRICE_OVERFLOW;
    }

    return inexact ? NGX_AI_RELAY_PRICE_INEXACT : NGX_AI_RELAY_PRICE_OK;
}


int
ngx_ai_relay_price_from_model_ratio(const ngx_ai_relay_price_ratio_t *model,
    const ngx_ai_relay_price_ratio_t *group, int64_t *input)
{
    const ngx_ai_relay_price_ratio_t  *r[2];

    if (model == NULL) {
        return NGX_AI_RELAY_PRICE_INVALID;
    }

    r[0] = model;
    r[1] = group;

    return ngx_ai_relay_price_ratio_mul(NGX_AI_RELAY_PRICE_MICRO
                                        * NGX_AI_RELAY_PRICE_QUOTA_MICRO,
                                        r, 2, input);
}


int
ngx_ai_relay_price_from_completion_ratio(
    const ngx_ai_relay_price_ratio_t *model,
    const ngx_ai_relay_price_ratio_t *completion,
    const ngx_ai_relay_price_ratio_t *group, int64_t *output)
{
    const ngx_ai_relay_price_ratio_t  *r[3];

    if (model == NULL) {
        return NGX_AI_RELAY_PRICE_INVALID;
    }

    r[0] = model;
    r[1] = completion;
    r[2] = group;

    return ngx_ai_relay_price_ratio_mul(NGX_AI_RELAY_PRICE_MICRO
                                        * NGX_AI_RELAY_PRICE_QUOTA_MICRO,
                                        r, 3, output);
}


int
ngx_ai_relay_price_from_cache_ratio(const ngx_ai_relay_price_ratio_t *model,
    const ngx_ai_relay_price_ratio_t *cache,
    const ngx_ai_relay_price_ratio_t *group, int64_t *cached)
{
    return ngx_ai_relay_price_from_completion_ratio(model, cache, group,
                                                    cached);
}


int
ngx_ai_relay_price_from_model_price(const ngx_ai_relay_price_ratio_t *usd,
    const ngx_ai_relay_price_ratio_t *group, int64_t *per_request)
{
    const ngx_ai_relay_price_ratio_t  *r[2];

    if (usd == NULL) {
        return NGX_AI_RELAY_PRICE_INVALID;
    }

    r[0] = usd;
    r[1] = group;

    return ngx_ai_relay_price_ratio_mul(NGX_AI_RELAY_PRICE_MICRO, r, 2,
                                        per_request);
}


static int
ngx_ai_relay_price_worst(int a, int b)
{
    return a > b ? a : b;
}


int
ngx_ai_relay_price_from_ratios(ngx_ai_relay_price_t *price,
    const ngx_ai_relay_price_ratio_t *model,
    const ngx_ai_relay_price_ratio_t *completion,
    const ngx_ai_relay_price_ratio_t *cache,
    const ngx_ai_relay_price_ratio_t *create_cache,
    const ngx_ai_relay_price_ratio_t *group,
    const ngx_ai_relay_price_ratio_t *model_price)
{
    int  rc;

    ngx_ai_relay_price_init(price);

    if (model_price != NULL) {
        return ngx_ai_relay_price_from_model_price(model_price, group,
                                                   &price->per_request);
    }

    if (model == NULL) {
        return NGX_AI_RELAY_PRICE_INVALID;
    }

    rc = ngx_ai_relay_price_from_model_ratio(model, group, &price->input);

    rc = ngx_ai_relay_price_worst(rc,
             ngx_ai_relay_price_from_completion_ratio(model, completion,
                                                      group, &price->output));

    if (cache != NULL) {
        rc = ngx_ai_relay_price_worst(rc,
                 ngx_ai_relay_price_from_cache_ratio(model, cache, group,
                                                     &price->cached_input));
    }

    if (create_cache != NULL) {
        rc = ngx_ai_relay_price_worst(rc,
                 ngx_ai_relay_price_from_cache_ratio(model, create_cache,
                                                     group,
                                                     &price->cache_write_5m));
    }

    return rc;
}


int
ngx_ai_relay_price_parse_usd(const char *s, size_t len, int64_t *micro)
{
    int          neg;
    size_t       ndec;
    uint64_t     whole, frac, v;
    const char  *p, *end;

    p = s;
    end = s + len;

    neg = (p < end && *p == '-');
    if (neg) {
        p++;
    }

    if (p < end && *p == '$') {
        p++;
    }

    if (p == end || !ngx_ai_relay_price_digit(*p)) {
        return NGX_AI_RELAY_PRICE_INVALID;
    }

    whole = 0;

    while (p < end && ngx_ai_relay_price_digit(*p)) {
        if (whole > (uint64_t) INT64_MAX / NGX_AI_RELAY_PRICE_MICRO) {
            return NGX_AI_RELAY_PRICE_OVERFLOW;
        }

        whole = whole * 10 + (uint64_t) (*p++ - '0');
    }

    frac = 0;
    ndec = 0;

    if (p < end && *p == '.') {
        p++;

        while (p < end && ngx_ai_relay_price_digit(*p)) {
            if (++ndec > 6) {
                return NGX_AI_RELAY_PRICE_INVALID;
            }

            frac = frac * 10 + (uint64_t) (*p++ - '0');
        }

        if (ndec == 0) {
            return NGX_AI_RELAY_PRICE_INVALID;
        }
    }

    if (p != end) {
        return NGX_AI_RELAY_PRICE_INVALID;
    }

    while (ndec++ < 6) {
        frac *= 10;
    }

    if (whole > ((uint64_t) INT64_MAX - frac) / NGX_AI_RELAY_PRICE_MICRO) {
        return NGX_AI_RELAY_PRICE_OVERFLOW;
    }

    v = whole * NGX_AI_RELAY_PRICE_MICRO + frac;

    *micro = neg ? -(int64_t) v : (int64_t) v;

    return NGX_AI_RELAY_PRICE_OK;
}


size_t
ngx_ai_relay_price_format_usd(char *buf, size_t size, int64_t micro,
    unsigned flags)
{
    int       n;
    char      frac[8];
    size_t    ndec;
    uint64_t  u;

    u = (micro < 0) ? (uint64_t) -(micro + 1) + 1 : (uint64_t) micro;

    snprintf(frac, sizeof(frac), "%06" PRIu64,
             u % NGX_AI_RELAY_PRICE_MICRO);

    ndec = 6;

    if (flags & NGX_AI_RELAY_PRICE_FMT_TRIM) {
        while (ndec > 2 && frac[ndec - 1] == '0') {
            ndec--;
        }
    }

    n = snprintf(buf, size, "%s%s%" PRIu64 ".%.*s",
                 (micro < 0) ? "-" : "",
                 (flags & NGX_AI_RELAY_PRICE_FMT_NO_SYMBOL) ? "" : "$",
                 u / NGX_AI_RELAY_PRICE_MICRO, (int) ndec, frac);

    if (n < 0 || (size_t) n >= size) {
        if (size > 0) {
            buf[0] = '\0';
        }

        return 0;
    }

    return (size_t) n;
}


static void
ngx_ai_relay_price_big_set(ngx_ai_relay_price_big_t *b, uint64_t v)
{
    memset(b, 0, sizeof(ngx_ai_relay_price_big_t));

    b->d[0] = (uint32_t) v;
    b->d[1] = (uint32_t) (v >> 32);
}


static void
ngx_ai_relay_price_big_mul32(ngx_ai_relay_price_big_t *b, uint32_t m)
{
    size_t    i;
    uint64_t  t, carry;

    carry = 0;

    for (i = 0; i < NGX_AI_RELAY_PRICE_LIMBS; i++) {
        t = (uint64_t) b->d[i] * m + carry;
        b->d[i] = (uint32_t) t;
        carry = t >> 32;
    }

    if (carry) {
        b->overflow = 1;
    }
}


static void
ngx_ai_relay_price_big_mul64(ngx_ai_relay_price_big_t *b, uint64_t m)
{
    ngx_ai_relay_price_big_t  hi;

    hi = *b;

    ngx_ai_relay_price_big_mul32(&hi, (uint32_t) (m >> 32));

    if (hi.d[NGX_AI_RELAY_PRICE_LIMBS - 1] != 0) {
        hi.overflow = 1;
    }

    memmove(&hi.d[1], &hi.d[0],
            (NGX_AI_RELAY_PRICE_LIMBS - 1) * sizeof(uint32_t));
    hi.d[0] = 0;

    ngx_ai_relay_price_big_mul32(b, (uint32_t) m);
    ngx_ai_relay_price_big_add(b, &hi);
}


static void
ngx_ai_relay_price_big_add(ngx_ai_relay_price_big_t *b,
    const ngx_ai_relay_price_big_t *a)
{
    size_t    i;
    uint64_t  t, carry;

    carry = 0;

    for (i = 0; i < NGX_AI_RELAY_PRICE_LIMBS; i++) {
        t = (uint64_t) b->d[i] + a->d[i] + carry;
        b->d[i] = (uint32_t) t;
        carry = t >> 32;
    }

    b->overflow |= a->overflow | (carry != 0);
}


static void
ngx_ai_relay_price_big_add_product(ngx_ai_relay_price_big_t *b, uint64_t x,
    uint64_t y)
{
    ngx_ai_relay_price_big_t  t;

    ngx_ai_relay_price_big_set(&t, x);
    ngx_ai_relay_price_big_mul64(&t, y);
    ngx_ai_relay_price_big_add(b, &t);
}


static uint32_t
ngx_ai_relay_price_big_div32(ngx_ai_relay_price_big_t *b, uint32_t dv)
{
    size_t    i;
    uint64_t  t, rem;

    rem = 0;

    for (i = NGX_AI_RELAY_PRICE_LIMBS; i-- > 0; /* void */) {
        t = (rem << 32) | b->d[i];
        b->d[i] = (uint32_t) (t / dv);
        rem = t % dv;
    }

    return (uint32_t) rem;
}


static int
ngx_ai_relay_price_big_is_zero(const ngx_ai_relay_price_big_t *b)
{
    size_t  i;

    for (i = 0; i < NGX_AI_RELAY_PRICE_LIMBS; i++) {
        if (b->d[i] != 0) {
            return 0;
        }
    }

    return 1;
}


static int
ngx_ai_relay_price_big_get(const ngx_ai_relay_price_big_t *b, int64_t *v)
{
    size_t    i;
    uint64_t  u;

    if (b->overflow) {
        return 0;
    }

    for (i = 2; i < NGX_AI_RELAY_PRICE_LIMBS; i++) {
        if (b->d[i] != 0) {
            return 0;
        }
    }

    u = ((uint64_t) b->d[1] << 32) | b->d[0];

    if (u > (uint64_t) INT64_MAX) {
        return 0;
    }

    *v = (int64_t) u;

    return 1;
}
