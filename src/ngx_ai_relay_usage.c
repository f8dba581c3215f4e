
/*
 * Copyright (C) ngx_ai_relay authors
 *
 * Token usage extraction; see ngx_ai_relay_usage.h.
 * No nginx headers here on purpose.
 */


#include <stdio.h>
#include <string.h>

#include "ngx_ai_relay_json_scan.h"
#include "ngx_ai_relay_usage.h"


/* larger counts are nonsense; the cap keeps sums of counts from overflowing */
#define NGX_AI_RELAY_MAX_TOKENS      ((int64_t) 1 << 50)

/* nesting limit of the usage object walker */
#define NGX_AI_RELAY_JSON_DEPTH      32

/* nesting limit of error bodies: jansson's JSON_PARSER_MAX_DEPTH */
#define NGX_AI_RELAY_ERROR_DEPTH     2048

/* decoded error strings: the error text, and a little for the UTF-8 cut */
#define NGX_AI_RELAY_ERROR_BUF       (NGX_AI_RELAY_USAGE_ERROR_LEN + 8)


/* the numbers a usage object may hold, of every provider */
#define NGX_AI_RELAY_F_PROMPT        0    /* prompt_tokens */
#define NGX_AI_RELAY_F_INPUT         1    /* input_tokens */
#define NGX_AI_RELAY_F_COMPLETION    2    /* completion_tokens */
#define NGX_AI_RELAY_F_OUTPUT        3    /* output_tokens */
#define NGX_AI_RELAY_F_P_CACHED      4    /* prompt_tokens_details. */
#define NGX_AI_RELAY_F_I_CACHED      5    /* input_tokens_details. */
#define NGX_AI_RELAY_F_CACHE_HIT     6    /* DeepSeek */
#define NGX_AI_RELAY_F_C_REASONING   7    /* completion_tokens_details. */
#define NGX_AI_RELAY_F_O_REASONING   8    /* output_tokens_details. */
#define NGX_AI_RELAY_F_CACHE_READ    9    /* Anthropic */
#define NGX_AI_RELAY_F_CACHE_WRITE   10
#define NGX_AI_RELAY_F_CACHE_SPLIT   11   /* the cache_creation object */
#define NGX_AI_RELAY_F_WRITE_5M      12
#define NGX_AI_RELAY_F_WRITE_1H      13
#define NGX_AI_RELAY_F_G_PROMPT      14   /* Gemini */
#define NGX_AI_RELAY_F_G_CANDIDATES  15
#define NGX_AI_RELAY_F_G_TOTAL       16
#define NGX_AI_RELAY_F_G_TOOL        17
#define NGX_AI_RELAY_F_G_THOUGHTS    18
#define NGX_AI_RELAY_F_G_CACHED      19
#define NGX_AI_RELAY_F_N             20

/* a member whose value is an object, not a number */
#define NGX_AI_RELAY_F_OBJECT        (-2)


typedef struct {
    const char            *parent;        /* NULL: in the usage object */
    size_t                 parent_len;
    const char            *name;
    size_t                 len;
    int                    object;        /* the value is an object */
} ngx_ai_relay_field_t;


typedef struct {
    int64_t                value[NGX_AI_RELAY_F_N];
    uint32_t               present;
} ngx_ai_relay_fields_t;


/* what one pass of the scanner found in an event or a body */
typedef struct {
    ngx_ai_relay_usage_t      *u;

    ngx_ai_relay_fields_t      fields;    /* of the chosen usage object */
    int                        usage_depth;
    int64_t                    images;

    unsigned                   usage:1;
    unsigned                   has_images:1;
    unsigned                   choices:2;
    unsigned                   error:1;
    unsigned                   completed:1;
} ngx_ai_relay_scan_t;


/* ngx_ai_relay_scan_t.choices: top-level "choices" of an OpenAI chunk */
#define NGX_AI_RELAY_CHOICES_ABSENT  0
#define NGX_AI_RELAY_CHOICES_EMPTY   1   /* [] or null */
#define NGX_AI_RELAY_CHOICES_SOME    2


#define ngx_ai_relay_key(s)  { (const u_char *) s, sizeof(s) - 1 }

#define ngx_ai_relay_top(s, obj)  { NULL, 0, s, sizeof(s) - 1, obj }

#define ngx_ai_relay_sub(p, s)  { p, sizeof(p) - 1, s, sizeof(s) - 1, 0 }

#define ngx_ai_relay_streq(p, n, s)                                          \
    ((n) == sizeof(s) - 1 && (p)[0] == (u_char) (s)[0]                       \
     && memcmp(p, s, sizeof(s) - 1) == 0)


/*
 * Key filters (see ngx_ai_relay_json_walk_t): the keys scan_key() looks
 * at, "usage", "usageMetadata", "error", "choices", with "data" and
 * "type" for images, and the text keys of each format.
 */

#define ngx_ai_relay_kb  ngx_ai_relay_json_key_bit

#define NGX_AI_RELAY_KEYS_ANY(w)                                             \
    (ngx_ai_relay_kb(w, 'u', 'e', 5)                /* usage */              \
     | ngx_ai_relay_kb(w, 'u', 'a', 13)             /* usageMetadata */      \
     | ngx_ai_relay_kb(w, 'e', 'r', 5)              /* error */              \
     | ngx_ai_relay_kb(w, 'c', 's', 7))             /* choices */

#define NGX_AI_RELAY_KEYS_CHAT(w)                                            \
    (NGX_AI_RELAY_KEYS_ANY(w)                                                \
     | ngx_ai_relay_kb(w, 'c', 't', 7)              /* content */            \
     | ngx_ai_relay_kb(w, 'r', 't', 17)             /* reasoning_content */  \
     | ngx_ai_relay_kb(w, 'r', 'g', 9)              /* reasoning */          \
     | ngx_ai_relay_kb(w, 'r', 'l', 7)              /* refusal */            \
     | ngx_ai_relay_kb(w, 'a', 's', 9))             /* arguments */

#define NGX_AI_RELAY_KEYS_TEXT(w)                                            \
    (NGX_AI_RELAY_KEYS_ANY(w)                                                \
     | ngx_ai_relay_kb(w, 't', 't', 4))             /* text */

#define NGX_AI_RELAY_KEYS_RESPONSES(w)                                       \
    (NGX_AI_RELAY_KEYS_ANY(w)                                                \
     | ngx_ai_relay_kb(w, 'd', 'a', 5)              /* delta */              \
     | ngx_ai_relay_kb(w, 't', 't', 4)              /* text */               \
     | ngx_ai_relay_kb(w, 'r', 'l', 7)              /* refusal */            \
     | ngx_ai_relay_kb(w, 'a', 's', 9))             /* arguments */

#define NGX_AI_RELAY_KEYS_IMAGES(w)                                          \
    (NGX_AI_RELAY_KEYS_ANY(w)                                                \
     | ngx_ai_relay_kb(w, 'd', 'a', 4)              /* data */               \
     | ngx_ai_relay_kb(w, 't', 'e', 4))             /* type */

#define NGX_AI_RELAY_KEYS_ANTHROPIC(w)                                       \
    (NGX_AI_RELAY_KEYS_ANY(w)                                                \
     | ngx_ai_relay_kb(w, 't', 't', 4)              /* text */               \
     | ngx_ai_relay_kb(w, 't', 'g', 8)              /* thinking */           \
     | ngx_ai_relay_kb(w, 'p', 'n', 12))            /* partial_json */

#define ngx_ai_relay_filter(keys)                                            \
    { keys(0), keys(1), keys(2), keys(3), keys(4) }


#define ngx_ai_relay_has(f, i)  ((f)->present & (1u << (i)))

#define ngx_ai_relay_get(f, i)                                               \
    (ngx_ai_relay_has(f, i) ? (f)->value[i] : 0)


static void ngx_ai_relay_usage_apply(ngx_ai_relay_usage_t *u,
    ngx_ai_relay_fields_t *f, int depth);
static void ngx_ai_relay_usage_openai(ngx_ai_relay_usage_t *u,
    ngx_ai_relay_fields_t *f);
static void ngx_ai_relay_usage_anthropic(ngx_ai_relay_usage_t *u,
    ngx_ai_relay_fields_t *f, int final);
static void ngx_ai_relay_usage_gemini(ngx_ai_relay_usage_t *u,
    ngx_ai_relay_fields_t *f);
static int ngx_ai_relay_usage_errors(ngx_ai_relay_usage_t *u,
    const u_char *p, size_t len, const u_char *name, size_t name_len);
static int ngx_ai_relay_usage_error(ngx_ai_relay_usage_t *u,
    const u_char *body, const ngx_ai_relay_json_member_t *obj,
    const u_char *name, size_t name_len);
static void ngx_ai_relay_usage_set_error(ngx_ai_relay_usage_t *u,
    const u_char *body, const ngx_ai_relay_json_member_t *type,
    const ngx_ai_relay_json_member_t *message);
static size_t ngx_ai_relay_usage_string(const u_char *body,
    const ngx_ai_relay_json_member_t *m, u_char *buf);
static void ngx_ai_relay_usage_error_append(ngx_ai_relay_usage_t *u,
    const char *p, size_t n);
static const ngx_ai_relay_json_span_t *ngx_ai_relay_usage_keys(
    ngx_ai_relay_usage_t *u, const u_char *name, size_t name_len,
    int stream);
static inline void ngx_ai_relay_scan(ngx_ai_relay_usage_t *u,
    const u_char *p, size_t len, const ngx_ai_relay_json_span_t *keys,
    ngx_ai_relay_scan_t *scan);
static const u_char *ngx_ai_relay_scan_key(ngx_ai_relay_json_walk_t *walk,
    const u_char *k, size_t klen, const u_char *p);
static void ngx_ai_relay_usage_member(ngx_ai_relay_json_lax_t *lax,
    const u_char *key, size_t klen, const u_char *value,
    const u_char *value_end);
static void ngx_ai_relay_array_element(ngx_ai_relay_json_lax_t *lax,
    const u_char *key, size_t klen, const u_char *value,
    const u_char *value_end);
static int64_t ngx_ai_relay_text_units(const u_char *p, size_t len);


#if (NGX_AI_RELAY_USAGE_TEST)
size_t  ngx_ai_relay_usage_error_scans;
#endif


/* indexed by NGX_AI_RELAY_F_* */
static const ngx_ai_relay_field_t  ngx_ai_relay_fields[] = {
    ngx_ai_relay_top("prompt_tokens", 0),
    ngx_ai_relay_top("input_tokens", 0),
    ngx_ai_relay_top("completion_tokens", 0),
    ngx_ai_relay_top("output_tokens", 0),
    ngx_ai_relay_sub("prompt_tokens_details", "cached_tokens"),
    ngx_ai_relay_sub("input_tokens_details", "cached_tokens"),
    ngx_ai_relay_top("prompt_cache_hit_tokens", 0),
    ngx_ai_relay_sub("completion_tokens_details", "reasoning_tokens"),
    ngx_ai_relay_sub("output_tokens_details", "reasoning_tokens"),
    ngx_ai_relay_top("cache_read_input_tokens", 0),
    ngx_ai_relay_top("cache_creation_input_tokens", 0),
    ngx_ai_relay_top("cache_creation", 1),
    ngx_ai_relay_sub("cache_creation", "ephemeral_5m_input_tokens"),
    ngx_ai_relay_sub("cache_creation", "ephemeral_1h_input_tokens"),
    ngx_ai_relay_top("promptTokenCount", 0),
    ngx_ai_relay_top("candidatesTokenCount", 0),
    ngx_ai_relay_top("totalTokenCount", 0),
    ngx_ai_relay_top("toolUsePromptTokenCount", 0),
    ngx_ai_relay_top("thoughtsTokenCount", 0),
    ngx_ai_relay_top("cachedContentTokenCount", 0),
};


#if (defined __GNUC__)
#define ngx_ai_relay_lowest_bit(m)  __builtin_ctz(m)
#else
static unsigned
ngx_ai_relay_lowest_bit(uint32_t m)
{
    unsigned  i;

    for (i = 0; !(m & 1); i++, m >>= 1) { /* void */ }

    return i;
}
#endif


/* the fields by name length, a bit per NGX_AI_RELAY_F_* */
#define ngx_ai_relay_bit(f)  (1u << NGX_AI_RELAY_F_ ## f)

static const uint32_t  ngx_ai_relay_fields_by_len[28] = {
    [12] = ngx_ai_relay_bit(INPUT),
    [13] = ngx_ai_relay_bit(PROMPT) | ngx_ai_relay_bit(OUTPUT)
           | ngx_ai_relay_bit(P_CACHED) | ngx_ai_relay_bit(I_CACHED),
    [14] = ngx_ai_relay_bit(CACHE_SPLIT),
    [15] = ngx_ai_relay_bit(G_TOTAL),
    [16] = ngx_ai_relay_bit(C_REASONING) | ngx_ai_relay_bit(O_REASONING)
           | ngx_ai_relay_bit(G_PROMPT),
    [17] = ngx_ai_relay_bit(COMPLETION),
    [18] = ngx_ai_relay_bit(G_THOUGHTS),
    [20] = ngx_ai_relay_bit(G_CANDIDATES),
    [23] = ngx_ai_relay_bit(CACHE_HIT) | ngx_ai_relay_bit(CACHE_READ)
           | ngx_ai_relay_bit(G_TOOL) | ngx_ai_relay_bit(G_CACHED),
    [25] = ngx_ai_relay_bit(WRITE_5M) | ngx_ai_relay_bit(WRITE_1H),
    [27] = ngx_ai_relay_bit(CACHE_WRITE)
};


/* indexed by ngx_ai_relay_format_e */
static const uint64_t  ngx_ai_relay_filters[][5] = {
    ngx_ai_relay_filter(NGX_AI_RELAY_KEYS_ANY),          /* unknown */
    ngx_ai_relay_filter(NGX_AI_RELAY_KEYS_CHAT),
    ngx_ai_relay_filter(NGX_AI_RELAY_KEYS_TEXT),         /* completions */
    ngx_ai_relay_filter(NGX_AI_RELAY_KEYS_ANY),          /* embeddings */
    ngx_ai_relay_filter(NGX_AI_RELAY_KEYS_RESPONSES),
    ngx_ai_relay_filter(NGX_AI_RELAY_KEYS_IMAGES),
    ngx_ai_relay_filter(NGX_AI_RELAY_KEYS_ANTHROPIC),
    ngx_ai_relay_filter(NGX_AI_RELAY_KEYS_TEXT)          /* Gemini */
};


static const ngx_ai_relay_json_span_t  ngx_ai_relay_chat_keys[] = {
    ngx_ai_relay_key("content"),
    ngx_ai_relay_key("reasoning_content"),
    ngx_ai_relay_key("reasoning"),
    ngx_ai_relay_key("refusal"),
    ngx_ai_relay_key("arguments"),
    { NULL, 0 }
};


static const ngx_ai_relay_json_span_t  ngx_ai_relay_text_keys[] = {
    ngx_ai_relay_key("text"),
    { NULL, 0 }
};


static const ngx_ai_relay_json_span_t  ngx_ai_relay_delta_keys[] = {
    ngx_ai_relay_key("delta"),
    { NULL, 0 }
};


static const ngx_ai_relay_json_span_t  ngx_ai_relay_responses_keys[] = {
    ngx_ai_relay_key("text"),
    ngx_ai_relay_key("refusal"),
    ngx_ai_relay_key("arguments"),
    { NULL, 0 }
};


static const ngx_ai_relay_json_span_t  ngx_ai_relay_anthropic_keys[] = {
    ngx_ai_relay_key("text"),
    ngx_ai_relay_key("thinking"),
    ngx_ai_relay_key("partial_json"),
    { NULL, 0 }
};


void
ngx_ai_relay_usage_init(ngx_ai_relay_usage_t *u, ngx_ai_relay_format_e format)
{
    memset(u, 0, sizeof(ngx_ai_relay_usage_t));

    u->format = format;
}


int
ngx_ai_relay_usage_event(ngx_ai_relay_usage_t *u, const u_char *name,
    size_t name_len, const u_char *data, size_t len)
{
    int                        rc;
    ngx_ai_relay_scan_t        scan;
    const ngx_ai_relay_json_span_t  *keys;

    if (ngx_ai_relay_streq(data, len, "[DONE]")) {
        return NGX_AI_RELAY_USAGE_DONE;
    }

    rc = 0;

    keys = ngx_ai_relay_usage_keys(u, name, name_len, 1);

    ngx_ai_relay_scan(u, data, len, keys, &scan);

    if (scan.usage) {
        rc |= NGX_AI_RELAY_USAGE_FOUND;
        u->usage_events++;

        if ((u->format == NGX_AI_RELAY_FMT_OPENAI_CHAT
             || u->format == NGX_AI_RELAY_FMT_OPENAI_COMPLETIONS)
            && scan.usage_depth == 1
            && scan.choices != NGX_AI_RELAY_CHOICES_SOME)
        {
            rc |= NGX_AI_RELAY_USAGE_ONLY;
        }

        ngx_ai_relay_usage_apply(u, &scan.fields, scan.usage_depth);
    }

    if (u->format == NGX_AI_RELAY_FMT_OPENAI_IMAGES
        && (scan.completed
            || (name_len > 10
                && memcmp(name + name_len - 10, ".completed", 10) == 0)))
    {
        u->images++;
    }

    if (scan.error || ngx_ai_relay_streq(name, name_len, "error")) {
        rc |= ngx_ai_relay_usage_errors(u, data, len, name, name_len);
    }

    return rc;
}


int
ngx_ai_relay_usage_body(ngx_ai_relay_usage_t *u, const u_char *body,
    size_t len)
{
    int                        rc;
    ngx_ai_relay_scan_t        scan;
    const ngx_ai_relay_json_span_t  *keys;

    rc = 0;

    keys = ngx_ai_relay_usage_keys(u, NULL, 0, 0);

    ngx_ai_relay_scan(u, body, len, keys, &scan);

    if (scan.usage) {
        rc |= NGX_AI_RELAY_USAGE_FOUND;
        u->usage_events++;

        ngx_ai_relay_usage_apply(u, &scan.fields, scan.usage_depth);
    }

    if (u->format == NGX_AI_RELAY_FMT_OPENAI_IMAGES && scan.has_images) {
        u->images = scan.images;
    }

    if (scan.error) {
        rc |= ngx_ai_relay_usage_errors(u, body, len, NULL, 0);
    }

    return rc;
}


void
ngx_ai_relay_usage_finish(ngx_ai_relay_usage_t *u)
{
    u->estimated = 0;

    if (!u->found) {
        u->completion_tokens = u->text_tokens;
        u->estimated = 1;
        return;
    }

    if (u->format == NGX_AI_RELAY_FMT_ANTHROPIC_MESSAGES
        && !u->anthropic_final
        && u->text_tokens > u->completion_tokens)
    {
        u->completion_tokens = u->text_tokens;
        u->estimated = 1;
    }
}


int64_t
ngx_ai_relay_estimate_tokens(const u_char *text, size_t len)
{
    int64_t  tokens;

    if (len == 0) {
        return 0;
    }

    tokens = (ngx_ai_relay_text_units(text, len) + 3) / 4;

    return tokens ? tokens : 1;
}


/* depth: 1 for a top-level "usage", 2 for message.usage / response.usage */

static void
ngx_ai_relay_usage_apply(ngx_ai_relay_usage_t *u, ngx_ai_relay_fields_t *f,
    int depth)
{
    switch (u->format) {

    case NGX_AI_RELAY_FMT_ANTHROPIC_MESSAGES:
        ngx_ai_relay_usage_anthropic(u, f, depth == 1);
        break;

    case NGX_AI_RELAY_FMT_GEMINI:
        ngx_ai_relay_usage_gemini(u, f);
        break;

    default:
        ngx_ai_relay_usage_openai(u, f);
        break;
    }
}


/* the whole usage object replaces the last one */

static void
ngx_ai_relay_usage_openai(ngx_ai_relay_usage_t *u, ngx_ai_relay_fields_t *f)
{
    if (!ngx_ai_relay_has(f, NGX_AI_RELAY_F_PROMPT)
        && !ngx_ai_relay_has(f, NGX_AI_RELAY_F_INPUT)
        && !ngx_ai_relay_has(f, NGX_AI_RELAY_F_COMPLETION)
        && !ngx_ai_relay_has(f, NGX_AI_RELAY_F_OUTPUT))
    {
        /* "usage": {} or something else: keep what we had */
        return;
    }

    u->prompt_tokens = ngx_ai_relay_has(f, NGX_AI_RELAY_F_PROMPT)
                       ? f->value[NGX_AI_RELAY_F_PROMPT]
                       : ngx_ai_relay_get(f, NGX_AI_RELAY_F_INPUT);

    u->completion_tokens = ngx_ai_relay_has(f, NGX_AI_RELAY_F_COMPLETION)
                           ? f->value[NGX_AI_RELAY_F_COMPLETION]
                           : ngx_ai_relay_get(f, NGX_AI_RELAY_F_OUTPUT);

    if (ngx_ai_relay_has(f, NGX_AI_RELAY_F_P_CACHED)) {
        u->cached_tokens = f->value[NGX_AI_RELAY_F_P_CACHED];

    } else if (ngx_ai_relay_has(f, NGX_AI_RELAY_F_I_CACHED)) {
        u->cached_tokens = f->value[NGX_AI_RELAY_F_I_CACHED];

    } else {
        /* DeepSeek */
        u->cached_tokens = ngx_ai_relay_get(f, NGX_AI_RELAY_F_CACHE_HIT);
    }

    u->reasoning_tokens = ngx_ai_relay_has(f, NGX_AI_RELAY_F_C_REASONING)
                          ? f->value[NGX_AI_RELAY_F_C_REASONING]
                          : ngx_ai_relay_get(f, NGX_AI_RELAY_F_O_REASONING);

    u->cache_write_5m_tokens = 0;
    u->cache_write_1h_tokens = 0;
    u->found = 1;
}


/*
 * message_start carries message.usage (final == 0), message_delta and a
 * non-stream body carry a top-level usage (final == 1).  Fields present
 * replace what we had; output_tokens is cumulative.
 */

static void
ngx_ai_relay_usage_anthropic(ngx_ai_relay_usage_t *u,
    ngx_ai_relay_fields_t *f, int final)
{
    int64_t  w5, w1, write;

    if (ngx_ai_relay_has(f, NGX_AI_RELAY_F_CACHE_SPLIT)) {
        u->anthropic_split = 1;

        if (ngx_ai_relay_has(f, NGX_AI_RELAY_F_WRITE_5M)) {
            u->a_5m = f->value[NGX_AI_RELAY_F_WRITE_5M];
        }

        if (ngx_ai_relay_has(f, NGX_AI_RELAY_F_WRITE_1H)) {
            u->a_1h = f->value[NGX_AI_RELAY_F_WRITE_1H];
        }
    }

    if (!ngx_ai_relay_has(f, NGX_AI_RELAY_F_INPUT)
        && !ngx_ai_relay_has(f, NGX_AI_RELAY_F_CACHE_READ)
        && !ngx_ai_relay_has(f, NGX_AI_RELAY_F_CACHE_WRITE)
        && !ngx_ai_relay_has(f, NGX_AI_RELAY_F_OUTPUT))
    {
        return;
    }

    if (ngx_ai_relay_has(f, NGX_AI_RELAY_F_INPUT)) {
        u->a_input = f->value[NGX_AI_RELAY_F_INPUT];
    }

    if (ngx_ai_relay_has(f, NGX_AI_RELAY_F_CACHE_READ)) {
        u->a_cache_read = f->value[NGX_AI_RELAY_F_CACHE_READ];
    }

    if (ngx_ai_relay_has(f, NGX_AI_RELAY_F_CACHE_WRITE)) {
        u->a_cache_write = f->value[NGX_AI_RELAY_F_CACHE_WRITE];
    }

    if (ngx_ai_relay_has(f, NGX_AI_RELAY_F_OUTPUT)) {
        u->completion_tokens = f->value[NGX_AI_RELAY_F_OUTPUT];
    }

    if (final) {
        u->anthropic_final = 1;
    }

    w5 = u->anthropic_split ? u->a_5m : 0;
    w1 = u->anthropic_split ? u->a_1h : 0;

    /* writes not covered by the breakdown count as 5m writes */

    write = u->a_cache_write;

    if (write > w5 + w1) {
        w5 = write - w1;

    } else {
        write = w5 + w1;
    }

    u->prompt_tokens = u->a_input + u->a_cache_read + write;
    u->cached_tokens = u->a_cache_read;
    u->cache_write_5m_tokens = w5;
    u->cache_write_1h_tokens = w1;
    u->reasoning_tokens = 0;
    u->found = 1;
}


/* the whole usageMetadata replaces the last one */

static void
ngx_ai_relay_usage_gemini(ngx_ai_relay_usage_t *u, ngx_ai_relay_fields_t *f)
{
    int64_t  thoughts;

    if (!ngx_ai_relay_has(f, NGX_AI_RELAY_F_G_PROMPT)
        && !ngx_ai_relay_has(f, NGX_AI_RELAY_F_G_CANDIDATES)
        && !ngx_ai_relay_has(f, NGX_AI_RELAY_F_G_TOTAL))
    {
        return;
    }

    thoughts = ngx_ai_relay_get(f, NGX_AI_RELAY_F_G_THOUGHTS);

    u->prompt_tokens = ngx_ai_relay_get(f, NGX_AI_RELAY_F_G_PROMPT)
                       + ngx_ai_relay_get(f, NGX_AI_RELAY_F_G_TOOL);
    u->cached_tokens = ngx_ai_relay_get(f, NGX_AI_RELAY_F_G_CACHED);
    u->cache_write_5m_tokens = 0;
    u->cache_write_1h_tokens = 0;
    u->completion_tokens = ngx_ai_relay_get(f, NGX_AI_RELAY_F_G_CANDIDATES)
                           + thoughts;
    u->reasoning_tokens = thoughts;
    u->found = 1;
}


/*
 * Rare: an event or body that holds an error is validated whole, with
 * the scanner as strict as jansson, which read these before.
 */

static int
ngx_ai_relay_usage_errors(ngx_ai_relay_usage_t *u, const u_char *p,
    size_t len, const u_char *name, size_t name_len)
{
    int                          rc;
    size_t                       pos, start, end;
    ngx_ai_relay_json_scan_t     scan;
    ngx_ai_relay_json_member_t   root, v;

#if (NGX_AI_RELAY_USAGE_TEST)
    ngx_ai_relay_usage_error_scans++;
#endif

    ngx_ai_relay_json_scan_init(&scan, NULL, 0);

    scan.max_depth = NGX_AI_RELAY_ERROR_DEPTH;
    scan.reject_nul = 1;
    scan.reject_overflow = 1;
    scan.value_depth = 1;

    rc = ngx_ai_relay_json_scan(&scan, p, len);

    start = 0;

    while (start < len
           && (p[start] == ' ' || p[start] == '\t' || p[start] == '\r'
               || p[start] == '\n'))
    {
        start++;
    }

    if (rc == NGX_AI_RELAY_JSON_OK) {
        root.type = NGX_AI_RELAY_JSON_OBJECT;

    } else if (rc == NGX_AI_RELAY_JSON_ERR_NOT_OBJECT && p[start] == '[') {
        root.type = NGX_AI_RELAY_JSON_ARRAY;

    } else {
        /* invalid, or a scalar */
        u->json_errors++;
        return 0;
    }

    end = len;

    while (p[end - 1] == ' ' || p[end - 1] == '\t' || p[end - 1] == '\r'
           || p[end - 1] == '\n')
    {
        end--;
    }

    root.value_start = start;
    root.value_end = end;

    if (root.type == NGX_AI_RELAY_JSON_OBJECT) {
        rc = ngx_ai_relay_usage_error(u, p, &root, name, name_len);

    } else {

        /* Gemini streamGenerateContent without alt=sse: array of chunks */

        rc = 0;
        pos = 0;

        while (ngx_ai_relay_json_array_next(p, &root, &pos, &v)) {
            if (v.type == NGX_AI_RELAY_JSON_OBJECT) {
                rc |= ngx_ai_relay_usage_error(u, p, &v, name, name_len);
            }
        }
    }

    return rc ? NGX_AI_RELAY_USAGE_ERROR : 0;
}


/*
 * Error shapes: {"error": {...}} (OpenAI, Anthropic, Gemini),
 * {"error": "text"}, Responses "response.failed" (response.error) and
 * Responses "error" events ({"type": "error", "code", "message"}).  Of
 * duplicate keys the last counts.
 */

static int
ngx_ai_relay_usage_error(ngx_ai_relay_usage_t *u, const u_char *body,
    const ngx_ai_relay_json_member_t *obj, const u_char *name,
    size_t name_len)
{
    u_char                      buf[8];
    size_t                      n, len;
    ngx_ai_relay_json_member_t  err, type, message, v;

#define ngx_ai_relay_find(o, s, m)                                           \
    ngx_ai_relay_json_object_find(body, o, s, sizeof(s) - 1, m)

#define ngx_ai_relay_is(m, t)  ((m).type == NGX_AI_RELAY_JSON_ ## t)

    if (!ngx_ai_relay_find(obj, "error", &err)) {
        err.type = NGX_AI_RELAY_JSON_NONE;
    }

    if (!ngx_ai_relay_is(err, OBJECT) && !ngx_ai_relay_is(err, STRING)) {

        if (!ngx_ai_relay_find(obj, "response", &v)
            || !ngx_ai_relay_find(&v, "error", &err))
        {
            err.type = NGX_AI_RELAY_JSON_NONE;
        }
    }

    if (ngx_ai_relay_is(err, STRING)) {
        ngx_ai_relay_usage_set_error(u, body, NULL, &err);
        return 1;
    }

    if (ngx_ai_relay_is(err, OBJECT)) {

        if (!ngx_ai_relay_find(&err, "type", &type)
            || !ngx_ai_relay_is(type, STRING))
        {
            if (!ngx_ai_relay_find(&err, "status", &type)
                || !ngx_ai_relay_is(type, STRING))
            {
                if (!ngx_ai_relay_find(&err, "code", &type)) {
                    type.type = NGX_AI_RELAY_JSON_NONE;
                }
            }
        }

        if (!ngx_ai_relay_find(&err, "message", &message)) {
            message.type = NGX_AI_RELAY_JSON_NONE;
        }

        ngx_ai_relay_usage_set_error(u, body, &type, &message);
        return 1;
    }

    n = 0;

    if (ngx_ai_relay_find(obj, "type", &v) && ngx_ai_relay_is(v, STRING)) {
        len = v.value_end - v.value_start - 2;

        if (ngx_ai_relay_json_unescape_prefix(body + v.value_start + 1, len,
                                              buf, sizeof(buf), &n)
            != len)
        {
            n = 0;
        }
    }

    if (ngx_ai_relay_streq(name, name_len, "error")
        || ngx_ai_relay_streq(buf, n, "error"))
    {
        if (!ngx_ai_relay_find(obj, "code", &type)) {
            type.type = NGX_AI_RELAY_JSON_NONE;
        }

        if (!ngx_ai_relay_find(obj, "message", &message)) {
            message.type = NGX_AI_RELAY_JSON_NONE;
        }

        ngx_ai_relay_usage_set_error(u, body, &type, &message);
        return 1;
    }

#undef ngx_ai_relay_find
#undef ngx_ai_relay_is

    return 0;
}


/* type: a string, or an integer (a number without fraction or exponent) */

static void
ngx_ai_relay_usage_set_error(ngx_ai_relay_usage_t *u, const u_char *body,
    const ngx_ai_relay_json_member_t *type,
    const ngx_ai_relay_json_member_t *message)
{
    int      n;
    char     num[32];
    u_char   buf[NGX_AI_RELAY_ERROR_BUF];
    size_t   len;
    int64_t  value;

    if (u->has_error) {
        /* keep the first one: the cause */
        return;
    }

    u->has_error = 1;
    u->error_len = 0;

    if (type == NULL) {
        /* void */

    } else if (type->type == NGX_AI_RELAY_JSON_STRING) {
        len = ngx_ai_relay_usage_string(body, type, buf);
        ngx_ai_relay_usage_error_append(u, (char *) buf, len);

    } else if (type->type == NGX_AI_RELAY_JSON_NUMBER
               && memchr(body + type->value_start, '.',
                         type->value_end - type->value_start) == NULL
               && memchr(body + type->value_start, 'e',
                         type->value_end - type->value_start) == NULL
               && memchr(body + type->value_start, 'E',
                         type->value_end - type->value_start) == NULL
               && ngx_ai_relay_json_member_int(body, type, &value)
                  == NGX_AI_RELAY_JSON_GET_OK)
    {
        n = snprintf(num, sizeof(num), "%lld", (long long) value);

        if (n > 0) {
            ngx_ai_relay_usage_error_append(u, num, n);
        }
    }

    if (message != NULL && message->type == NGX_AI_RELAY_JSON_STRING) {

        if (u->error_len) {
            ngx_ai_relay_usage_error_append(u, ": ", 2);
        }

        len = ngx_ai_relay_usage_string(body, message, buf);
        ngx_ai_relay_usage_error_append(u, (char *) buf, len);
    }

    if (u->error_len == 0) {
        ngx_ai_relay_usage_error_append(u, "unknown error",
                                        sizeof("unknown error") - 1);
    }
}


/*
 * The decoded string m into buf, cut to NGX_AI_RELAY_ERROR_BUF bytes at
 * most: more than the error text holds, so a longer string is still cut
 * (on a UTF-8 boundary) by error_append().
 */

static size_t
ngx_ai_relay_usage_string(const u_char *body,
    const ngx_ai_relay_json_member_t *m, u_char *buf)
{
    size_t  len;

    (void) ngx_ai_relay_json_unescape_prefix(body + m->value_start + 1,
                                             m->value_end - m->value_start
                                             - 2,
                                             buf, NGX_AI_RELAY_ERROR_BUF,
                                             &len);
    return len;
}


/* control characters become spaces; never cuts a UTF-8 sequence */

static void
ngx_ai_relay_usage_error_append(ngx_ai_relay_usage_t *u, const char *p,
    size_t n)
{
    size_t   room;
    u_char   ch;

    room = NGX_AI_RELAY_USAGE_ERROR_LEN - u->error_len;

    if (n > room) {
        n = room;

        /* back off to the start of a UTF-8 sequence */

        while (n && ((u_char) p[n] & 0xc0) == 0x80) {
            n--;
        }
    }

    while (n--) {
        ch = (u_char) *p++;
        u->error[u->error_len++] = (ch < 0x20 || ch == 0x7f) ? ' ' : ch;
    }
}


static const ngx_ai_relay_json_span_t *
ngx_ai_relay_usage_keys(ngx_ai_relay_usage_t *u, const u_char *name,
    size_t name_len, int stream)
{
    switch (u->format) {

    case NGX_AI_RELAY_FMT_OPENAI_CHAT:
        return ngx_ai_relay_chat_keys;

    case NGX_AI_RELAY_FMT_OPENAI_COMPLETIONS:
    case NGX_AI_RELAY_FMT_GEMINI:
        return ngx_ai_relay_text_keys;

    case NGX_AI_RELAY_FMT_ANTHROPIC_MESSAGES:
        return ngx_ai_relay_anthropic_keys;

    case NGX_AI_RELAY_FMT_OPENAI_RESPONSES:

        if (!stream) {
            return ngx_ai_relay_responses_keys;
        }

        /* only "*.delta" events carry new text; audio is not text */

        if (name_len == 0) {
            return ngx_ai_relay_delta_keys;
        }

        if (name_len > 6
            && memcmp(name + name_len - 6, ".delta", 6) == 0
            && !(name_len > 15 && memcmp(name, "response.audio.", 15) == 0))
        {
            return ngx_ai_relay_delta_keys;
        }

        return NULL;

    default:
        return NULL;
    }
}


/*
 * One pass over a JSON text without building it (see
 * ngx_ai_relay_json_walk_keys()): counts the string values of the given
 * keys into u->text_units, walks the "usage" / "usageMetadata" objects
 * (the last of the shallowest wins) and notes what needs more work.
 */

static inline void
ngx_ai_relay_scan(ngx_ai_relay_usage_t *u, const u_char *p, size_t len,
    const ngx_ai_relay_json_span_t *keys, ngx_ai_relay_scan_t *scan)
{
    int64_t                   units;
    ngx_ai_relay_json_walk_t  walk;

    scan->u = u;
    scan->fields.present = 0;
    scan->usage_depth = 0;
    scan->images = 0;
    scan->usage = 0;
    scan->has_images = 0;
    scan->choices = NGX_AI_RELAY_CHOICES_ABSENT;
    scan->error = 0;
    scan->completed = 0;

    walk.handler = ngx_ai_relay_scan_key;
    walk.data = scan;
    walk.count = keys;
    walk.counts[0] = 0;
    walk.counts[1] = 0;
    walk.counts[2] = 0;
    walk.filter = ngx_ai_relay_filters[u->format];

    ngx_ai_relay_json_walk_keys(&walk, p, len);

    units = walk.counts[0] + 2 * walk.counts[1] + 4 * walk.counts[2];

    if (units) {
        u->text_units += units;
        u->text_tokens = (u->text_units + 3) / 4;
    }
}


/* a key k, and p is at its value */

static const u_char *
ngx_ai_relay_scan_key(ngx_ai_relay_json_walk_t *walk, const u_char *k,
    size_t klen, const u_char *p)
{
    int                        depth;
    int64_t                    images;
    const u_char              *e, *last;
    ngx_ai_relay_scan_t       *scan;
    ngx_ai_relay_usage_t      *u;
    ngx_ai_relay_fields_t      fields;
    ngx_ai_relay_json_lax_t    lax;

    scan = walk->data;
    u = scan->u;
    depth = walk->depth;
    last = walk->end;

    if (*p == '{'
        && (!scan->usage || depth <= scan->usage_depth)
        && (ngx_ai_relay_streq(k, klen, "usage")
            || ngx_ai_relay_streq(k, klen, "usageMetadata")))
    {
        fields.present = 0;

        lax.handler = ngx_ai_relay_usage_member;
        lax.data = &fields;
        lax.max_depth = NGX_AI_RELAY_JSON_DEPTH;
        lax.report_depth = 2;

        e = ngx_ai_relay_json_walk_value(&lax, p, last);

        if (e == NULL) {
            u->json_errors++;
            return p;
        }

        scan->fields = fields;
        scan->usage_depth = depth;
        scan->usage = 1;

        /* nothing inside a usage object is counted */
        return e;
    }

    if (ngx_ai_relay_streq(k, klen, "error")) {

        if (*p == '{' || *p == '"') {
            scan->error = 1;
        }

        return p;
    }

    if (depth == 1 && ngx_ai_relay_streq(k, klen, "choices")) {

        if (*p == 'n') {
            scan->choices = NGX_AI_RELAY_CHOICES_EMPTY;

        } else if (*p == '[') {
            e = p + 1;

            while (e < last
                   && (*e == ' ' || *e == '\t' || *e == '\r' || *e == '\n'))
            {
                e++;
            }

            scan->choices = (e < last && *e == ']')
                            ? NGX_AI_RELAY_CHOICES_EMPTY
                            : NGX_AI_RELAY_CHOICES_SOME;

        } else {
            scan->choices = NGX_AI_RELAY_CHOICES_SOME;
        }

        return p;
    }

    if (u->format != NGX_AI_RELAY_FMT_OPENAI_IMAGES || depth != 1) {
        /* void */

    } else if (*p == '[' && ngx_ai_relay_streq(k, klen, "data")) {

        /* a body: the generated images */

        images = 0;

        lax.handler = ngx_ai_relay_array_element;
        lax.data = &images;
        lax.max_depth = NGX_AI_RELAY_JSON_DEPTH;
        lax.report_depth = 1;

        e = ngx_ai_relay_json_walk_value(&lax, p, last);

        if (e) {
            scan->images = images;
            scan->has_images = 1;
            return e;
        }

        return p;

    } else if (*p == '"' && ngx_ai_relay_streq(k, klen, "type")) {

        /* an event: "image_generation.completed" and the like */

        e = ngx_ai_relay_json_string_end(p + 1, last);

        if (e == NULL) {
            return NULL;
        }

        if (e - (p + 1) > 10 && memcmp(e - 10, ".completed", 10) == 0) {
            scan->completed = 1;
        }

        return e + 1;
    }

    /* text keys are counted by the walk */

    return p;
}


/*
 * A member of the usage object (depth 1) or of an object in it (depth 2,
 * lax->path[0] its key): its number goes to the fields, the last of
 * duplicate keys winning.
 */

static void
ngx_ai_relay_usage_member(ngx_ai_relay_json_lax_t *lax, const u_char *key,
    size_t klen, const u_char *value, const u_char *value_end)
{
    size_t                       i;
    int64_t                      v;
    uint32_t                     bit, m;
    ngx_ai_relay_fields_t       *fields;
    ngx_ai_relay_json_span_t    *parent;
    const ngx_ai_relay_field_t  *f;

    if (key == NULL) {
        /* an array element */
        return;
    }

    fields = lax->data;
    parent = &lax->path[0];

    if (lax->depth == 2 && parent->data == NULL) {
        /* cannot happen: the usage object holds members only */
        return;
    }

    if (klen >= sizeof(ngx_ai_relay_fields_by_len) / sizeof(uint32_t)) {
        return;
    }

    for (m = ngx_ai_relay_fields_by_len[klen]; m; m &= m - 1) {

        i = ngx_ai_relay_lowest_bit(m);
        f = &ngx_ai_relay_fields[i];

        if (f->name[0] != (char) key[0] || memcmp(f->name, key, klen) != 0) {
            continue;
        }

        if (lax->depth == 1) {

            if (f->parent != NULL) {
                continue;
            }

        } else if (f->parent == NULL
                   || f->parent_len != parent->len
                   || memcmp(f->parent, parent->data, parent->len) != 0)
        {
            continue;
        }

        if (*value == '{') {
            v = NGX_AI_RELAY_F_OBJECT;

        } else if (*value == '-' || (*value >= '0' && *value <= '9')) {
            (void) ngx_ai_relay_json_number_count(value, value_end,
                                                  NGX_AI_RELAY_MAX_TOKENS, &v);

        } else {
            v = -1;
        }

        bit = 1u << i;

        if (f->object ? v == NGX_AI_RELAY_F_OBJECT : v >= 0) {
            fields->value[i] = v;
            fields->present |= bit;

        } else {
            fields->present &= ~bit;
        }

        return;
    }
}


static void
ngx_ai_relay_array_element(ngx_ai_relay_json_lax_t *lax, const u_char *key,
    size_t klen, const u_char *value, const u_char *value_end)
{
    int64_t  *n;

    n = lax->data;

    (*n)++;
}


static int64_t
ngx_ai_relay_text_units(const u_char *p, size_t len)
{
    u_char         ch;
    int64_t        n;
    const u_char  *last;

    n = 0;
    last = p + len;

    while (p < last) {
        ch = *p++;

        if (ch < 0x80) {
            n += 1;

        } else if (ch >= 0xe0) {
            n += 4;

        } else if (ch >= 0xc0) {
            n += 2;
        }
    }

    return n;
}


#if (NGX_AI_RELAY_USAGE_TEST)

/*
 * Unit tests: the hand-written tables agree with the lists they speed up:
 * every key of a format passes its filter, every field is found by its
 * name length and by no other.  Returns NULL or what is wrong.
 */

static int
ngx_ai_relay_usage_filtered(ngx_ai_relay_format_e format, const char *key,
    size_t len)
{
    return ngx_ai_relay_json_key_filtered(ngx_ai_relay_filters[format],
                                          (const u_char *) key, len);
}


const char *
ngx_ai_relay_usage_check_tables(void)
{
    int                              f, stream;
    size_t                           i, len;
    uint32_t                         m;
    const ngx_ai_relay_json_span_t  *k;

    static const char  *fixed[] = { "usage", "usageMetadata", "error",
                                    "choices", NULL };

    for (f = NGX_AI_RELAY_FMT_UNKNOWN; f <= NGX_AI_RELAY_FMT_GEMINI; f++) {

        for (i = 0; fixed[i]; i++) {
            if (!ngx_ai_relay_usage_filtered(f, fixed[i],
                                             strlen(fixed[i])))
            {
                return "a key of every format is filtered out";
            }
        }

        if (f == NGX_AI_RELAY_FMT_OPENAI_IMAGES
            && (!ngx_ai_relay_usage_filtered(f, "data", 4)
                || !ngx_ai_relay_usage_filtered(f, "type", 4)))
        {
            return "an images key is filtered out";
        }

        for (stream = 0; stream < 2; stream++) {
            ngx_ai_relay_usage_t  u;

            u.format = f;

            k = ngx_ai_relay_usage_keys(&u, (const u_char *) "x.delta", 7,
                                        stream);

            for ( /* void */ ; k && k->data; k++) {
                if (!ngx_ai_relay_usage_filtered(f, (const char *) k->data,
                                                 k->len))
                {
                    return "a text key is filtered out";
                }
            }
        }
    }

    for (len = 0; len < sizeof(ngx_ai_relay_fields_by_len) / sizeof(uint32_t);
         len++)
    {
        m = ngx_ai_relay_fields_by_len[len];

        for (i = 0; i < NGX_AI_RELAY_F_N; i++) {
            if (((m >> i) & 1) != (ngx_ai_relay_fields[i].len == len)) {
                return "fields_by_len is wrong";
            }
        }
    }

    for (i = 0; i < NGX_AI_RELAY_F_N; i++) {
        if (ngx_ai_relay_fields[i].len
            >= sizeof(ngx_ai_relay_fields_by_len) / sizeof(uint32_t))
        {
            return "fields_by_len is too short";
        }
    }

    return NULL;
}

#endif
