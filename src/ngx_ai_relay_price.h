
/*
 * Copyright (C) ngx_ai_relay authors
 */


#ifndef _NGX_AI_RELAY_PRICE_H_INCLUDED_
#define _NGX_AI_RELAY_PRICE_H_INCLUDED_


/*
 * Exact integer money; no floating point anywhere.
 *
 * Money is in micro-USD (uUSD, int64_t): 1 USD = 1,000,000.
 * Token prices are uUSD per 1M tokens: 1 USD per 1M tokens = 1,000,000.
 *
 * Cost of one request:
 *
 *   ceil((uncached * input + cached * cached_input
 *         + cw5m * cache_write_5m + cw1h * cache_write_1h
 *         + completion * output + characters * per_char) / 1,000,000)
 *   + per_request + images * image_price + seconds * per_second
 *
 * where uncached = prompt - cached - cw5m - cw1h.  Intermediates are
 * 384-bit integers, so nothing overflows before the final int64_t, which
 * saturates at INT64_MAX with NGX_AI_RELAY_PRICE_OVERFLOW.
 *
 * Price components (all int64_t, any negative value means "unset"):
 *   input, output, per_request, per_image, per_char, per_second: unset
 *   means 0;
 *   cached_input, cache_write_5m, cache_write_1h: unset means the input
 *   price (after its own fallback), i.e. no discount and no surcharge
 *   unless configured.
 * image_price is the first match of: the override "size:quality", then
 * "size:*", then "*:quality", then per_image.  per_second likewise, for
 * a video's size and quality: "size:quality", then "size:*" or the bare
 * "size" (the same; "size:*" wins if both are set), then "*:quality",
 * then per_second.
 *
 * Usage (all int64_t, negative values count as 0):
 *   prompt_tokens is the TOTAL input, including cached and cache-write
 *   tokens (OpenAI's prompt_tokens; for Anthropic the caller sums
 *   input_tokens + cache_read + cache_creation); completion_tokens
 *   includes reasoning tokens.  If cached + cache writes exceed
 *   prompt_tokens the usage is inconsistent: each reported component is
 *   still billed and the uncached part is 0, so a request is never billed
 *   below the parts the provider reported.
 */


#include <stddef.h>
#include <stdint.h>


#define NGX_AI_RELAY_PRICE_UNSET          (-1)
#define NGX_AI_RELAY_PRICE_IMAGE_MAX      8
#define NGX_AI_RELAY_PRICE_IMAGE_KEY_LEN  32
#define NGX_AI_RELAY_PRICE_SECOND_MAX     16

/* micro-USD per USD, and per 1M tokens */
#define NGX_AI_RELAY_PRICE_MICRO          1000000

/* One API / New API: 500,000 quota = 1 USD, so 1 quota = 2 uUSD */
#define NGX_AI_RELAY_PRICE_QUOTA_MICRO    2

/* "-$9223372036854.775807" and NUL */
#define NGX_AI_RELAY_PRICE_USD_LEN        32

/* format flags */
#define NGX_AI_RELAY_PRICE_FMT_TRIM       0x1  /* "$1.50", not "$1.500000" */
#define NGX_AI_RELAY_PRICE_FMT_NO_SYMBOL  0x2  /* "1.50", no "$" */


typedef enum {
    NGX_AI_RELAY_PRICE_OK = 0,
    NGX_AI_RELAY_PRICE_INEXACT,     /* rounded up to a whole uUSD */
    NGX_AI_RELAY_PRICE_OVERFLOW,    /* result saturated / out of range */
    NGX_AI_RELAY_PRICE_INVALID      /* malformed input */
} ngx_ai_relay_price_rc_e;


typedef struct {
    char                         key[NGX_AI_RELAY_PRICE_IMAGE_KEY_LEN];
    int64_t                      price;          /* uUSD per image */
} ngx_ai_relay_price_image_t;


typedef struct {
    int64_t                      input;          /* uUSD per 1M tokens */
    int64_t                      cached_input;
    int64_t                      cache_write_5m;
    int64_t                      cache_write_1h;
    int64_t                      output;
    int64_t                      per_request;    /* uUSD */
    int64_t                      per_image;      /* uUSD */
    int64_t                      per_char;       /* uUSD per 1M chars */
    int64_t                      per_second;     /* uUSD per second */
    unsigned                     nimages;
    ngx_ai_relay_price_image_t   images[NGX_AI_RELAY_PRICE_IMAGE_MAX];
    unsigned                     nseconds;
    ngx_ai_relay_price_image_t   seconds[NGX_AI_RELAY_PRICE_SECOND_MAX];
                                                 /* key: "size" or as
                                                    images' */
} ngx_ai_relay_price_t;


typedef struct {
    int64_t                      prompt_tokens;  /* all input tokens */
    int64_t                      cached_tokens;
    int64_t                      cache_write_5m_tokens;
    int64_t                      cache_write_1h_tokens;
    int64_t                      completion_tokens;
    int64_t                      images;
    int64_t                      characters;     /* audio/speech input */
    int64_t                      seconds;        /* of audio, of a video */
    const char                  *image_size;     /* "1024x1024", or NULL;
                                                    an image's, a video's */
    size_t                       image_size_len;
    const char                  *image_quality;  /* "hd", or NULL */
    size_t                       image_quality_len;
} ngx_ai_relay_price_usage_t;


/* an exact non-negative decimal: mant * 10^exp10 */
typedef struct {
    uint64_t                     mant;
    int                          exp10;
} ngx_ai_relay_price_ratio_t;


void ngx_ai_relay_price_init(ngx_ai_relay_price_t *price);

/* key is "size:quality", "size:*" or "*:quality"; 0, or -1 if full/long */
int ngx_ai_relay_price_add_image(ngx_ai_relay_price_t *price,
    const char *key, size_t key_len, int64_t image_price);

/*
 * key is a size ("1792x1024") or, as images' keys, "size:quality",
 * "size:*" or "*:quality": uUSD per second of it; 0, or -1 if full/long
 */
int ngx_ai_relay_price_add_second(ngx_ai_relay_price_t *price,
    const char *key, size_t key_len, int64_t second_price);

/* the effective (fallbacks applied) prices */
void ngx_ai_relay_price_resolve(const ngx_ai_relay_price_t *price,
    ngx_ai_relay_price_t *out);

/* OK or OVERFLOW (*cost = INT64_MAX) */
int ngx_ai_relay_price_cost(const ngx_ai_relay_price_t *price,
    const ngx_ai_relay_price_usage_t *usage, int64_t *cost);

/*
 * Reservation: prompt_estimate uncached input tokens at the input price,
 * max_output tokens at the output price, plus per_request.
 */
int ngx_ai_relay_price_estimate(const ngx_ai_relay_price_t *price,
    int64_t prompt_estimate, int64_t max_output, int64_t *cost);

/* quota units <-> uUSD: OK or OVERFLOW */
int ngx_ai_relay_price_quota_to_micro(int64_t quota, int64_t *micro);

/*
 * *quota = floor(micro / 2), *rem = micro - 2 * *quota (0 or 1; add it to
 * round a charge up).  OK if exact, INEXACT if *rem is 1.
 */
int ngx_ai_relay_price_micro_to_quota(int64_t micro, int64_t *quota,
    int64_t *rem);

/*
 * "0.075", "1", "15", "2.5e-1", "1E+3": digits, an optional fraction and
 * an optional exponent; no sign, at most 19 significant digits, exponent
 * within +-400.  OK or INVALID.
 */
int ngx_ai_relay_price_ratio_parse(const char *s, size_t len,
    ngx_ai_relay_price_ratio_t *ratio);

/*
 * ceil(base * r[0] * ... * r[n-1]) into *result: OK (exact), INEXACT
 * (rounded up) or OVERFLOW (> INT64_MAX).  A NULL entry counts as 1.
 */
int ngx_ai_relay_price_ratio_mul(uint64_t base,
    const ngx_ai_relay_price_ratio_t *const *r, size_t n, int64_t *result);

/*
 * One API / New API conversions.  group may be NULL (GroupRatio 1).
 *   input  = ModelRatio * 2,000,000 * group            (uUSD per 1M)
 *   output = ModelRatio * CompletionRatio * 2,000,000 * group
 *   cached / cache write = ModelRatio * CacheRatio (or CreateCacheRatio)
 *            * 2,000,000 * group
 *   per_request = ModelPrice (USD) * 1,000,000 * group (uUSD)
 * Each returns OK, INEXACT (rounded up) or OVERFLOW.
 */
int ngx_ai_relay_price_from_model_ratio(
    const ngx_ai_relay_price_ratio_t *model,
    const ngx_ai_relay_price_ratio_t *group, int64_t *input);
int ngx_ai_relay_price_from_completion_ratio(
    const ngx_ai_relay_price_ratio_t *model,
    const ngx_ai_relay_price_ratio_t *completion,
    const ngx_ai_relay_price_ratio_t *group, int64_t *output);
int ngx_ai_relay_price_from_cache_ratio(
    const ngx_ai_relay_price_ratio_t *model,
    const ngx_ai_relay_price_ratio_t *cache,
    const ngx_ai_relay_price_ratio_t *group, int64_t *cached);
int ngx_ai_relay_price_from_model_price(
    const ngx_ai_relay_price_ratio_t *usd,
    const ngx_ai_relay_price_ratio_t *group, int64_t *per_request);

/*
 * A whole price from an incumbent's settings for one model; NULL means
 * not set.  With model_price set (New API per-request pricing) only
 * per_request is set.  Otherwise model is required (INVALID without it),
 * output uses completion (missing: 1), cached_input / cache_write_5m use
 * cache / create_cache (missing: unset, i.e. the input price);
 * cache_write_1h stays unset.  Returns the worst of the conversions'
 * codes (OK < INEXACT < OVERFLOW).
 */
int ngx_ai_relay_price_from_ratios(ngx_ai_relay_price_t *price,
    const ngx_ai_relay_price_ratio_t *model,
    const ngx_ai_relay_price_ratio_t *completion,
    const ngx_ai_relay_price_ratio_t *cache,
    const ngx_ai_relay_price_ratio_t *create_cache,
    const ngx_ai_relay_price_ratio_t *group,
    const ngx_ai_relay_price_ratio_t *model_price);

/*
 * USD decimal string to uUSD: [-][$]digits[.digits], at most 6 decimals
 * ("$1.50", "1.5", "0.000001", "-2").  OK, or INVALID (malformed, more
 * than 6 decimals) or OVERFLOW.
 */
int ngx_ai_relay_price_parse_usd(const char *s, size_t len, int64_t *micro);

/*
 * "$0.000123", "-$1.500000"; with FMT_TRIM trailing zeros go, keeping two
 * decimals ("$1.50", "$0.000123").  NUL-terminated; returns the length,
 * or 0 if size is too small (NGX_AI_RELAY_PRICE_USD_LEN always suffices).
 */
size_t ngx_ai_relay_price_format_usd(char *buf, size_t size, int64_t micro,
    unsigned flags);


#endif /* _NGX_AI_RELAY_PRICE_H_INCLUDED_ */
