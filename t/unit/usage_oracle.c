
/*
 * Copyright (C) ngx_ai_relay authors
 *
 * Token usage extraction; see ngx_ai_relay_usage.h.
 * No nginx headers here on purpose.
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ngx_ai_relay_usage.h"

#if (defined __SSE2__ && defined __GNUC__)
#include <emmintrin.h>
#define NGX_AI_RELAY_USAGE_SSE2  1
#endif


/* larger counts are nonsense; the cap keeps sums of counts from overflowing */
#define NGX_AI_RELAY_MAX_TOKENS      ((int64_t) 1 << 50)

/* nesting limit of the usage object walker */
#define NGX_AI_RELAY_JSON_DEPTH      32


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
    const char            *name;
    size_t                 len;
} ngx_ai_relay_key_t;


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


typedef struct {
    ngx_ai_relay_fields_t  *fields;       /* NULL: only validate */
    const u_char           *parent;
    size_t                  parent_len;
    int                     level;
} ngx_ai_relay_walk_t;


/* what one pass of the scanner found in an event or a body */
typedef struct {
    ngx_ai_relay_fields_t  fields;        /* of the chosen usage object */
    int                    usage_depth;
    int64_t                images;

    unsigned               usage:1;
    unsigned               has_images:1;
    unsigned               choices:2;
    unsigned               error:1;
    unsigned               completed:1;
} ngx_ai_relay_scan_t;


/* ngx_ai_relay_scan_t.choices: top-level "choices" of an OpenAI chunk */
#define NGX_AI_RELAY_CHOICES_ABSENT  0
#define NGX_AI_RELAY_CHOICES_EMPTY   1   /* [] or null */
#define NGX_AI_RELAY_CHOICES_SOME    2


#define ngx_ai_relay_key(s)  { s, sizeof(s) - 1 }

#define ngx_ai_relay_top(s, obj)  { NULL, 0, s, sizeof(s) - 1, obj }

#define ngx_ai_relay_sub(p, s)  { p, sizeof(p) - 1, s, sizeof(s) - 1, 0 }

#define ngx_ai_relay_streq(p, n, s)                                          \
    ((n) == sizeof(s) - 1 && (p)[0] == (u_char) (s)[0]                       \
     && memcmp(p, s, sizeof(s) - 1) == 0)

#define ngx_ai_relay_has(f, i)  ((f)->present & (1u << (i)))

#define ngx_ai_relay_get(f, i)                                               \
    (ngx_ai_relay_has(f, i) ? (f)->value[i] : 0)

#define ngx_ai_relay_is_ws(c)                                                \
    ((c) == ' ' || (c) == '\t' || (c) == '\r' || (c) == '\n')

#define NGX_AI_RELAY_ONES   0x0101010101010101ULL
#define NGX_AI_RELAY_HIGHS  0x8080808080808080ULL

/* nonzero if some byte of the 64-bit word x is b */
#define ngx_ai_relay_has_byte(x, b)                                          \
    ((((x) ^ (NGX_AI_RELAY_ONES * (b))) - NGX_AI_RELAY_ONES)                 \
     & ~((x) ^ (NGX_AI_RELAY_ONES * (b))) & NGX_AI_RELAY_HIGHS)


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
static int ngx_ai_relay_usage_error(ngx_ai_relay_usage_t *u, json_t *obj,
    const u_char *name, size_t name_len);
static void ngx_ai_relay_usage_set_error(ngx_ai_relay_usage_t *u,
    json_t *type, json_t *message);
static void ngx_ai_relay_usage_error_append(ngx_ai_relay_usage_t *u,
    const char *p, size_t n);
static const ngx_ai_relay_key_t *ngx_ai_relay_usage_keys(
    ngx_ai_relay_usage_t *u, const u_char *name, size_t name_len,
    int stream);
static void ngx_ai_relay_scan(ngx_ai_relay_usage_t *u, const u_char *p,
    size_t len, const ngx_ai_relay_key_t *keys, ngx_ai_relay_scan_t *scan);
static const u_char *ngx_ai_relay_walk(ngx_ai_relay_walk_t *w,
    const u_char *p, const u_char *last, int rec);
static const u_char *ngx_ai_relay_walk_number(const u_char *p,
    const u_char *last, int64_t *value);
static void ngx_ai_relay_walk_field(ngx_ai_relay_walk_t *w, int rec,
    const u_char *key, size_t klen, int64_t value);
static const u_char *ngx_ai_relay_array_size(const u_char *p,
    const u_char *last, int64_t *n);
static inline const u_char *ngx_ai_relay_skip_ws(const u_char *p,
    const u_char *last);
static inline const u_char *ngx_ai_relay_string_end(const u_char *p,
    const u_char *last);
static inline const u_char *ngx_ai_relay_find_special(const u_char *p,
    const u_char *last, int ascii);
static const u_char *ngx_ai_relay_count_string(const u_char *p,
    const u_char *last, int64_t *units);
static int64_t ngx_ai_relay_text_units(const u_char *p, size_t len);


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


static const ngx_ai_relay_key_t  ngx_ai_relay_chat_keys[] = {
    ngx_ai_relay_key("content"),
    ngx_ai_relay_key("reasoning_content"),
    ngx_ai_relay_key("reasoning"),
    ngx_ai_relay_key("refusal"),
    ngx_ai_relay_key("arguments"),
    { NULL, 0 }
};


static const ngx_ai_relay_key_t  ngx_ai_relay_text_keys[] = {
    ngx_ai_relay_key("text"),
    { NULL, 0 }
};


static const ngx_ai_relay_key_t  ngx_ai_relay_delta_keys[] = {
    ngx_ai_relay_key("delta"),
    { NULL, 0 }
};


static const ngx_ai_relay_key_t  ngx_ai_relay_responses_keys[] = {
    ngx_ai_relay_key("text"),
    ngx_ai_relay_key("refusal"),
    ngx_ai_relay_key("arguments"),
    { NULL, 0 }
};


static const ngx_ai_relay_key_t  ngx_ai_relay_anthropic_keys[] = {
    ngx_ai_relay_key("text"),
    ngx_ai_relay_key("thinking"),
    ngx_ai_relay_key("partial_json"),
    { NULL, 0 }
};


/* what a byte outside of strings does to the depth: [ { +1, ] } -1 */
static const signed char  ngx_ai_relay_depth[256] = {
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  /* 0x00 */
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  1,  0, -1,  0,  0,  /* 0x50 */
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  1,  0, -1,  0,  0,  /* 0x70 */
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0 
};


void
ngx_ai_relay_oracle_init(ngx_ai_relay_usage_t *u, ngx_ai_relay_format_e format)
{
    memset(u, 0, sizeof(ngx_ai_relay_usage_t));

    u->format = format;
}


int
ngx_ai_relay_oracle_event(ngx_ai_relay_usage_t *u, const u_char *name,
    size_t name_len, const u_char *data, size_t len)
{
    int                        rc;
    ngx_ai_relay_scan_t        scan;
    const ngx_ai_relay_key_t  *keys;

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
ngx_ai_relay_oracle_body(ngx_ai_relay_usage_t *u, const u_char *body,
    size_t len)
{
    int                        rc;
    ngx_ai_relay_scan_t        scan;
    const ngx_ai_relay_key_t  *keys;

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
ngx_ai_relay_oracle_finish(ngx_ai_relay_usage_t *u)
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
ngx_ai_relay_oracle_estimate(const u_char *text, size_t len)
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


/* rare: an event or body that holds an error is parsed whole by jansson */

static int
ngx_ai_relay_usage_errors(ngx_ai_relay_usage_t *u, const u_char *p,
    size_t len, const u_char *name, size_t name_len)
{
    int      rc;
    size_t   i;
    json_t  *root, *v;

    root = json_loadb((const char *) p, len, 0, NULL);

    if (root == NULL) {
        u->json_errors++;
        return 0;
    }

    rc = 0;

    if (json_is_object(root)) {
        rc = ngx_ai_relay_usage_error(u, root, name, name_len);

    } else if (json_is_array(root)) {

        /* Gemini streamGenerateContent without alt=sse: array of chunks */

        json_array_foreach(root, i, v) {
            if (json_is_object(v)) {
                rc |= ngx_ai_relay_usage_error(u, v, name, name_len);
            }
        }
    }

    json_decref(root);

    return rc ? NGX_AI_RELAY_USAGE_ERROR : 0;
}


/*
 * Error shapes: {"error": {...}} (OpenAI, Anthropic, Gemini),
 * {"error": "text"}, Responses "response.failed" (response.error) and
 * Responses "error" events ({"type": "error", "code", "message"}).
 */

static int
ngx_ai_relay_usage_error(ngx_ai_relay_usage_t *u, json_t *obj,
    const u_char *name, size_t name_len)
{
    json_t  *err, *type, *v;

    err = json_object_get(obj, "error");

    if (!json_is_object(err) && !json_is_string(err)) {
        v = json_object_get(obj, "response");
        err = json_is_object(v) ? json_object_get(v, "error") : NULL;
    }

    if (json_is_string(err)) {
        ngx_ai_relay_usage_set_error(u, NULL, err);
        return 1;
    }

    if (json_is_object(err)) {
        type = json_object_get(err, "type");

        if (!json_is_string(type)) {
            type = json_object_get(err, "status");
        }

        if (!json_is_string(type)) {
            type = json_object_get(err, "code");
        }

        ngx_ai_relay_usage_set_error(u, type,
                                     json_object_get(err, "message"));
        return 1;
    }

    v = json_object_get(obj, "type");

    if (ngx_ai_relay_streq(name, name_len, "error")
        || (json_is_string(v) && strcmp(json_string_value(v), "error") == 0))
    {
        ngx_ai_relay_usage_set_error(u, json_object_get(obj, "code"),
                                     json_object_get(obj, "message"));
        return 1;
    }

    return 0;
}


static void
ngx_ai_relay_usage_set_error(ngx_ai_relay_usage_t *u, json_t *type,
    json_t *message)
{
    int   n;
    char  num[32];

    if (u->has_error) {
        /* keep the first one: the cause */
        return;
    }

    u->has_error = 1;
    u->error_len = 0;

    if (json_is_string(type)) {
        ngx_ai_relay_usage_error_append(u, json_string_value(type),
                                        json_string_length(type));

    } else if (json_is_integer(type)) {
        n = snprintf(num, sizeof(num), "%lld",
                     (long long) json_integer_value(type));

        if (n > 0) {
            ngx_ai_relay_usage_error_append(u, num, n);
        }
    }

    if (json_is_string(message)) {

        if (u->error_len) {
            ngx_ai_relay_usage_error_append(u, ": ", 2);
        }

        ngx_ai_relay_usage_error_append(u, json_string_value(message),
                                        json_string_length(message));
    }

    if (u->error_len == 0) {
        ngx_ai_relay_usage_error_append(u, "unknown error",
                                        sizeof("unknown error") - 1);
    }
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


static const ngx_ai_relay_key_t *
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
 * One pass over a JSON text without building it: tracks the nesting depth
 * outside of strings, recognises keys (a string followed by ':'), counts
 * the string values of the given keys into u->text_units, walks the
 * "usage" / "usageMetadata" objects (the last of the shallowest wins) and
 * notes what needs more work.  Never reads outside [p, p + len).
 */

static void
ngx_ai_relay_scan(ngx_ai_relay_usage_t *u, const u_char *p, size_t len,
    const ngx_ai_relay_key_t *keys, ngx_ai_relay_scan_t *scan)
{
    int                        depth;
    size_t                     klen;
    int64_t                    units;
    const u_char              *k, *e, *last;
    ngx_ai_relay_walk_t        w;
    ngx_ai_relay_fields_t      fields;
    const ngx_ai_relay_key_t  *key;

    scan->fields.present = 0;
    scan->usage_depth = 0;
    scan->images = 0;
    scan->usage = 0;
    scan->has_images = 0;
    scan->choices = NGX_AI_RELAY_CHOICES_ABSENT;
    scan->error = 0;
    scan->completed = 0;

    depth = 0;
    units = 0;
    last = p + len;

    for ( ;; ) {

        /* outside of strings: only brackets and quotes matter */

        while (p < last && *p != '"') {
            depth += ngx_ai_relay_depth[*p++];
        }

        if (p == last) {
            break;
        }

        k = p + 1;
        e = ngx_ai_relay_string_end(k, last);

        if (e == NULL) {
            break;
        }

        klen = e - k;

        p = ngx_ai_relay_skip_ws(e + 1, last);

        if (p == last || *p != ':') {
            /* a string value */
            continue;
        }

        p = ngx_ai_relay_skip_ws(p + 1, last);

        if (p == last) {
            break;
        }

        /* a key, and p is at its value */

        if (*p == '{'
            && (!scan->usage || depth <= scan->usage_depth)
            && (ngx_ai_relay_streq(k, klen, "usage")
                || ngx_ai_relay_streq(k, klen, "usageMetadata")))
        {
            fields.present = 0;

            w.fields = &fields;
            w.parent = NULL;
            w.parent_len = 0;
            w.level = 0;

            e = ngx_ai_relay_walk(&w, p, last, 1);

            if (e == NULL) {
                u->json_errors++;
                continue;
            }

            scan->fields = fields;
            scan->usage_depth = depth;
            scan->usage = 1;

            /* nothing inside a usage object is counted */
            p = e;
            continue;
        }

        if (ngx_ai_relay_streq(k, klen, "error")) {

            if (*p == '{' || *p == '"') {
                scan->error = 1;
            }

            continue;
        }

        if (depth == 1 && ngx_ai_relay_streq(k, klen, "choices")) {

            if (*p == 'n') {
                scan->choices = NGX_AI_RELAY_CHOICES_EMPTY;

            } else if (*p == '[') {
                e = ngx_ai_relay_skip_ws(p + 1, last);

                scan->choices = (e < last && *e == ']')
                                ? NGX_AI_RELAY_CHOICES_EMPTY
                                : NGX_AI_RELAY_CHOICES_SOME;

            } else {
                scan->choices = NGX_AI_RELAY_CHOICES_SOME;
            }

            continue;
        }

        if (u->format != NGX_AI_RELAY_FMT_OPENAI_IMAGES || depth != 1) {
            /* void */

        } else if (*p == '[' && ngx_ai_relay_streq(k, klen, "data")) {

            /* a body: the generated images */

            e = ngx_ai_relay_array_size(p, last, &scan->images);

            if (e) {
                scan->has_images = 1;
                p = e;
            }

            continue;

        } else if (*p == '"' && ngx_ai_relay_streq(k, klen, "type")) {

            /* an event: "image_generation.completed" and the like */

            e = ngx_ai_relay_string_end(p + 1, last);

            if (e == NULL) {
                break;
            }

            if (e - (p + 1) > 10 && memcmp(e - 10, ".completed", 10) == 0) {
                scan->completed = 1;
            }

            p = e + 1;
            continue;
        }

        if (*p != '"' || keys == NULL) {
            continue;
        }

        for (key = keys; key->name; key++) {

            if (klen == key->len
                && k[0] == (u_char) key->name[0]
                && memcmp(k, key->name, klen) == 0)
            {
                p = ngx_ai_relay_count_string(p + 1, last, &units);
                break;
            }
        }
    }

    if (units) {
        u->text_units += units;
        u->text_tokens = (u->text_units + 3) / 4;
    }
}


/*
 * A small validating JSON walker for usage objects, instead of jansson,
 * which costs several microseconds for one.  Returns the byte after the
 * value at p, or NULL if it is not valid JSON or nested too deep.  When
 * the value is an object whose members are of interest, rec says which:
 * 1 for the usage object itself, 2 for an object inside it (w->parent);
 * their numbers go to w->fields, the last duplicate key winning.
 */

static const u_char *
ngx_ai_relay_walk(ngx_ai_relay_walk_t *w, const u_char *p,
    const u_char *last, int rec)
{
    int            array;
    size_t         klen;
    int64_t        value;
    const u_char  *k, *e;

    if (p == last) {
        return NULL;
    }

    switch (*p) {

    case '"':
        e = ngx_ai_relay_string_end(p + 1, last);
        return e ? e + 1 : NULL;

    case '{':
    case '[':
        break;

    case 't':
        return (last - p >= 4 && memcmp(p, "true", 4) == 0) ? p + 4 : NULL;

    case 'f':
        return (last - p >= 5 && memcmp(p, "false", 5) == 0) ? p + 5 : NULL;

    case 'n':
        return (last - p >= 4 && memcmp(p, "null", 4) == 0) ? p + 4 : NULL;

    default:
        return ngx_ai_relay_walk_number(p, last, &value);
    }

    if (++w->level > NGX_AI_RELAY_JSON_DEPTH) {
        return NULL;
    }

    array = (*p == '[');

    p = ngx_ai_relay_skip_ws(p + 1, last);

    if (p < last && *p == (array ? ']' : '}')) {
        w->level--;
        return p + 1;
    }

    for ( ;; ) {

        if (array) {
            e = ngx_ai_relay_walk(w, p, last, 0);

        } else {

            if (p == last || *p != '"') {
                return NULL;
            }

            k = p + 1;
            e = ngx_ai_relay_string_end(k, last);

            if (e == NULL) {
                return NULL;
            }

            klen = e - k;

            p = ngx_ai_relay_skip_ws(e + 1, last);

            if (p == last || *p != ':') {
                return NULL;
            }

            p = ngx_ai_relay_skip_ws(p + 1, last);

            if (p == last) {
                return NULL;
            }

            if (rec == 0 || w->fields == NULL) {
                e = ngx_ai_relay_walk(w, p, last, 0);

            } else if (*p == '{') {
                ngx_ai_relay_walk_field(w, rec, k, klen,
                                        NGX_AI_RELAY_F_OBJECT);

                if (rec == 1) {
                    w->parent = k;
                    w->parent_len = klen;
                }

                e = ngx_ai_relay_walk(w, p, last, rec == 1 ? 2 : 0);

            } else if (*p == '-' || (*p >= '0' && *p <= '9')) {
                e = ngx_ai_relay_walk_number(p, last, &value);

                if (e) {
                    ngx_ai_relay_walk_field(w, rec, k, klen, value);
                }

            } else {
                e = ngx_ai_relay_walk(w, p, last, 0);

                if (e) {
                    ngx_ai_relay_walk_field(w, rec, k, klen, -1);
                }
            }
        }

        if (e == NULL) {
            return NULL;
        }

        p = ngx_ai_relay_skip_ws(e, last);

        if (p == last) {
            return NULL;
        }

        if (*p == (array ? ']' : '}')) {
            w->level--;
            return p + 1;
        }

        if (*p != ',') {
            return NULL;
        }

        p = ngx_ai_relay_skip_ws(p + 1, last);
    }
}


/*
 * A JSON number at p.  *value is its value if it is a token count (an
 * integer, or a real with no fraction worth keeping, within
 * [0, NGX_AI_RELAY_MAX_TOKENS]), else -1.
 */

static const u_char *
ngx_ai_relay_walk_number(const u_char *p, const u_char *last,
    int64_t *value)
{
    int            neg, real;
    char           buf[64];
    double         d;
    size_t         n;
    int64_t        v;
    const u_char  *q;

    *value = -1;

    q = p;
    v = 0;
    neg = 0;
    real = 0;

    if (*q == '-') {
        neg = 1;
        q++;
    }

    if (q == last) {
        return NULL;
    }

    if (*q == '0') {
        q++;

    } else if (*q >= '1' && *q <= '9') {

        while (q < last && *q >= '0' && *q <= '9') {

            if (v <= NGX_AI_RELAY_MAX_TOKENS) {
                v = v * 10 + (*q - '0');
            }

            q++;
        }

    } else {
        return NULL;
    }

    if (q < last && *q == '.') {
        q++;
        real = 1;

        if (q == last || *q < '0' || *q > '9') {
            return NULL;
        }

        while (q < last && *q >= '0' && *q <= '9') {
            q++;
        }
    }

    if (q < last && (*q == 'e' || *q == 'E')) {
        q++;
        real = 1;

        if (q < last && (*q == '+' || *q == '-')) {
            q++;
        }

        if (q == last || *q < '0' || *q > '9') {
            return NULL;
        }

        while (q < last && *q >= '0' && *q <= '9') {
            q++;
        }
    }

    if (neg) {
        return q;
    }

    if (!real) {

        if (v <= NGX_AI_RELAY_MAX_TOKENS) {
            *value = v;
        }

        return q;
    }

    n = q - p;

    if (n < sizeof(buf)) {
        memcpy(buf, p, n);
        buf[n] = '\0';

        d = strtod(buf, NULL);

        if (d >= 0 && d <= (double) NGX_AI_RELAY_MAX_TOKENS) {
            *value = (int64_t) d;
        }
    }

    return q;
}


/* value: a count, -1 for "not a count", or NGX_AI_RELAY_F_OBJECT */

static void
ngx_ai_relay_walk_field(ngx_ai_relay_walk_t *w, int rec, const u_char *key,
    size_t klen, int64_t value)
{
    size_t                       i;
    uint32_t                     bit;
    const ngx_ai_relay_field_t  *f;

    for (i = 0; i < NGX_AI_RELAY_F_N; i++) {
        f = &ngx_ai_relay_fields[i];

        if (f->len != klen || memcmp(f->name, key, klen) != 0) {
            continue;
        }

        if (rec == 1) {

            if (f->parent != NULL) {
                continue;
            }

        } else if (f->parent == NULL
                   || f->parent_len != w->parent_len
                   || memcmp(f->parent, w->parent, w->parent_len) != 0)
        {
            continue;
        }

        bit = 1u << i;

        if (f->object ? value == NGX_AI_RELAY_F_OBJECT : value >= 0) {
            w->fields->value[i] = value;
            w->fields->present |= bit;

        } else {
            w->fields->present &= ~bit;
        }

        return;
    }
}


/* p is at '['; the number of elements goes to *n */

static const u_char *
ngx_ai_relay_array_size(const u_char *p, const u_char *last, int64_t *n)
{
    int64_t              count;
    const u_char        *e;
    ngx_ai_relay_walk_t  w;

    w.fields = NULL;
    w.parent = NULL;
    w.parent_len = 0;
    w.level = 1;

    count = 0;

    p = ngx_ai_relay_skip_ws(p + 1, last);

    if (p < last && *p == ']') {
        *n = 0;
        return p + 1;
    }

    for ( ;; ) {
        e = ngx_ai_relay_walk(&w, p, last, 0);

        if (e == NULL) {
            return NULL;
        }

        count++;

        p = ngx_ai_relay_skip_ws(e, last);

        if (p == last) {
            return NULL;
        }

        if (*p == ']') {
            *n = count;
            return p + 1;
        }

        if (*p != ',') {
            return NULL;
        }

        p = ngx_ai_relay_skip_ws(p + 1, last);
    }
}


static inline const u_char *
ngx_ai_relay_skip_ws(const u_char *p, const u_char *last)
{
    while (p < last && ngx_ai_relay_is_ws(*p)) {
        p++;
    }

    return p;
}


/*
 * p is right after an opening quote; returns the closing quote (the first
 * '"' not escaped by a backslash) or NULL.
 */

static inline const u_char *
ngx_ai_relay_string_end(const u_char *p, const u_char *last)
{
    for ( ;; ) {
        p = ngx_ai_relay_find_special(p, last, 0);

        if (p == last) {
            return NULL;
        }

        if (*p == '"') {
            return p;
        }

        /* a backslash escapes the next byte, whatever it is */

        if (last - p < 2) {
            return NULL;
        }

        p += 2;
    }
}


/*
 * The first '"' or '\\' at or after p (with ascii, also the first byte
 * >= 0x80), or last.  Strings are most of the bytes of a response: they
 * are searched 16 (SSE2) or 8 bytes at a time.
 */

static inline const u_char *
ngx_ai_relay_find_special(const u_char *p, const u_char *last, int ascii)
{
    uint64_t  w, m8;
#if (NGX_AI_RELAY_USAGE_SSE2)
    int       m;
    __m128i   v, quote, bslash;

    quote = _mm_set1_epi8('"');
    bslash = _mm_set1_epi8('\\');

    while (last - p >= 16) {
        v = _mm_loadu_si128((const __m128i *) p);
        m = _mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(v, quote),
                                           _mm_cmpeq_epi8(v, bslash)));

        if (ascii) {
            m |= _mm_movemask_epi8(v);
        }

        if (m) {
            return p + __builtin_ctz(m);
        }

        p += 16;
    }
#endif

    m8 = ascii ? NGX_AI_RELAY_HIGHS : 0;

    while (last - p >= 8) {
        memcpy(&w, p, 8);

        if ((w & m8)
            | ngx_ai_relay_has_byte(w, '"')
            | ngx_ai_relay_has_byte(w, '\\'))
        {
            break;
        }

        p += 8;
    }

    while (p < last && *p != '"' && *p != '\\' && !(ascii && *p >= 0x80)) {
        p++;
    }

    return p;
}


/*
 * p is right after the opening quote of a JSON string: adds its decoded
 * text to *units (see the header) and returns the byte after the closing
 * quote, or last if the string is not terminated.
 */

static const u_char *
ngx_ai_relay_count_string(const u_char *p, const u_char *last,
    int64_t *units)
{
    u_char         ch;
    int64_t        n;
    uint32_t       cp;
    const u_char  *q;

    n = 0;

    while (p < last) {

        /* the common case: a run of plain ASCII */

        q = ngx_ai_relay_find_special(p, last, 1);

        n += q - p;
        p = q;

        if (p == last) {
            break;
        }

        ch = *p;

        if (ch == '"') {
            p++;
            break;
        }

        if (ch == '\\') {

            if (last - p < 2) {
                p = last;
                break;
            }

            if (p[1] != 'u') {
                n++;
                p += 2;
                continue;
            }

            if (last - p < 6) {
                p = last;
                break;
            }

            cp = 0;

            for (q = p + 2; q < p + 6; q++) {
                cp <<= 4;

                if (*q >= '0' && *q <= '9') {
                    cp |= *q - '0';

                } else if ((*q | 0x20) >= 'a' && (*q | 0x20) <= 'f') {
                    cp |= (*q | 0x20) - 'a' + 10;

                } else {
                    break;
                }
            }

            if (q < p + 6) {
                /* a bad escape: count the backslash, go on after it */
                n++;
                p++;
                continue;
            }

            if (cp < 0x80) {
                n += 1;

            } else if (cp < 0x800) {
                n += 2;

            } else if (cp < 0xdc00 || cp > 0xdfff) {
                /* a low surrogate completes a pair already counted */
                n += 4;
            }

            p += 6;
            continue;
        }

        /* non-ASCII: count lead bytes only */

        if (ch >= 0xe0) {
            n += 4;

        } else if (ch >= 0xc0) {
            n += 2;
        }

        p++;
    }

    *units += n;

    return p;
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
