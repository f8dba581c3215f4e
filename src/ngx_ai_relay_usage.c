
/*
 * Copyright (C) ngx_ai_relay authors
 *
 * Token usage extraction; see ngx_ai_relay_usage.h.
 * No nginx headers here on purpose.
 */


#include <string.h>
#include <stdio.h>

#include <jansson.h>

#include "ngx_ai_relay_usage.h"


typedef struct {
    const char            *name;
    size_t                 len;
} ngx_ai_relay_key_t;


/* what one pass of the scanner found in an event */
typedef struct {
    const u_char          *usage;         /* shallowest usage object */
    size_t                 usage_len;
    int                    usage_depth;

    unsigned               choices:2;
    unsigned               error:1;
    unsigned               completed:1;
} ngx_ai_relay_scan_t;


/* ngx_ai_relay_scan_t.choices: top-level "choices" of an OpenAI chunk */
#define NGX_AI_RELAY_CHOICES_ABSENT  0
#define NGX_AI_RELAY_CHOICES_EMPTY   1   /* [] or null */
#define NGX_AI_RELAY_CHOICES_SOME    2


/* larger counts are nonsense; the cap keeps sums of counts from overflowing */
#define NGX_AI_RELAY_MAX_TOKENS      ((int64_t) 1 << 50)


#define ngx_ai_relay_key(s)  { s, sizeof(s) - 1 }

#define ngx_ai_relay_streq(p, n, s)                                          \
    ((n) == sizeof(s) - 1 && memcmp(p, s, sizeof(s) - 1) == 0)


static int ngx_ai_relay_usage_object(ngx_ai_relay_usage_t *u, json_t *obj,
    const u_char *name, size_t name_len, int stream);
static int ngx_ai_relay_usage_apply(ngx_ai_relay_usage_t *u,
    const u_char *p, size_t len, int depth);
static void ngx_ai_relay_usage_apply_json(ngx_ai_relay_usage_t *u,
    json_t *usage, int depth);
static void ngx_ai_relay_usage_openai(ngx_ai_relay_usage_t *u,
    json_t *usage);
static void ngx_ai_relay_usage_anthropic(ngx_ai_relay_usage_t *u,
    json_t *usage, int final);
static void ngx_ai_relay_usage_gemini(ngx_ai_relay_usage_t *u,
    json_t *usage);
static int ngx_ai_relay_usage_error(ngx_ai_relay_usage_t *u, json_t *obj,
    const u_char *name, size_t name_len);
static void ngx_ai_relay_usage_set_error(ngx_ai_relay_usage_t *u,
    json_t *type, json_t *message);
static void ngx_ai_relay_usage_error_append(ngx_ai_relay_usage_t *u,
    const char *p, size_t n);
static int ngx_ai_relay_json_int(json_t *obj, const char *key,
    int64_t *value);
static const ngx_ai_relay_key_t *ngx_ai_relay_usage_keys(
    ngx_ai_relay_usage_t *u, const u_char *name, size_t name_len,
    int stream);
static void ngx_ai_relay_scan(ngx_ai_relay_usage_t *u, const u_char *p,
    size_t len, const ngx_ai_relay_key_t *keys, ngx_ai_relay_scan_t *scan);
static const u_char *ngx_ai_relay_string_end(const u_char *p,
    const u_char *last);
static const u_char *ngx_ai_relay_value_end(const u_char *p,
    const u_char *last);
static const u_char *ngx_ai_relay_count_string(const u_char *p,
    const u_char *last, int64_t *units);
static int64_t ngx_ai_relay_text_units(const u_char *p, size_t len);


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
    json_t                    *root;
    ngx_ai_relay_scan_t        scan;
    const ngx_ai_relay_key_t  *keys;

    if (ngx_ai_relay_streq(data, len, "[DONE]")) {
        return NGX_AI_RELAY_USAGE_DONE;
    }

    rc = 0;

    keys = ngx_ai_relay_usage_keys(u, name, name_len, 1);

    ngx_ai_relay_scan(u, data, len, keys, &scan);

    if (ngx_ai_relay_streq(name, name_len, "error")) {
        scan.error = 1;
    }

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

        switch (u->format) {

        case NGX_AI_RELAY_FMT_OPENAI_CHAT:
        case NGX_AI_RELAY_FMT_OPENAI_COMPLETIONS:
        case NGX_AI_RELAY_FMT_GEMINI:

            /* the last one wins: keep a copy, parse it in finish() */

            if (scan.usage_len <= NGX_AI_RELAY_USAGE_OBJECT_LEN) {
                memcpy(u->object, scan.usage, scan.usage_len);
                u->object_len = scan.usage_len;
                u->deferred = 1;
                break;
            }

            u->deferred = 0;

            /* fall through */

        default:
            (void) ngx_ai_relay_usage_apply(u, scan.usage, scan.usage_len,
                                            scan.usage_depth);
            break;
        }
    }

    if (u->format == NGX_AI_RELAY_FMT_OPENAI_IMAGES) {

        if (scan.completed
            || (name_len > 10
                && memcmp(name + name_len - 10, ".completed", 10) == 0))
        {
            u->images++;
        }
    }

    if (scan.error) {
        root = json_loadb((const char *) data, len, 0, NULL);

        if (root == NULL) {
            u->json_errors++;

        } else {
            if (json_is_object(root)
                && ngx_ai_relay_usage_error(u, root, name, name_len))
            {
                rc |= NGX_AI_RELAY_USAGE_ERROR;
            }

            json_decref(root);
        }
    }

    return rc;
}


int
ngx_ai_relay_usage_body(ngx_ai_relay_usage_t *u, const u_char *body,
    size_t len)
{
    int                        rc;
    size_t                     i;
    json_t                    *root, *v;
    ngx_ai_relay_scan_t        scan;
    const ngx_ai_relay_key_t  *keys;

    /* the generated text, in case the body reports no usage */

    keys = ngx_ai_relay_usage_keys(u, NULL, 0, 0);

    if (keys) {
        ngx_ai_relay_scan(u, body, len, keys, &scan);
    }

    root = json_loadb((const char *) body, len, 0, NULL);

    if (root == NULL) {
        u->json_errors++;
        return 0;
    }

    rc = 0;

    if (json_is_object(root)) {
        rc = ngx_ai_relay_usage_object(u, root, NULL, 0, 0);

    } else if (json_is_array(root)) {

        /* Gemini streamGenerateContent without alt=sse: array of chunks */

        json_array_foreach(root, i, v) {
            if (json_is_object(v)) {
                rc |= ngx_ai_relay_usage_object(u, v, NULL, 0, 0);
            }
        }
    }

    json_decref(root);

    return rc;
}


void
ngx_ai_relay_usage_finish(ngx_ai_relay_usage_t *u)
{
    if (u->deferred) {
        u->deferred = 0;
        (void) ngx_ai_relay_usage_apply(u, u->object, u->object_len, 1);
    }

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


/* a whole JSON object: a non-stream body, or a chunk of a Gemini array */

static int
ngx_ai_relay_usage_object(ngx_ai_relay_usage_t *u, json_t *obj,
    const u_char *name, size_t name_len, int stream)
{
    int      rc, depth;
    json_t  *usage, *v;

    rc = 0;
    depth = 1;

    if (u->format == NGX_AI_RELAY_FMT_GEMINI) {
        usage = json_object_get(obj, "usageMetadata");

    } else {
        usage = json_object_get(obj, "usage");

        if (!json_is_object(usage)) {
            depth = 2;

            v = json_object_get(obj, "response");
            if (!json_is_object(v)) {
                v = json_object_get(obj, "message");
            }

            usage = json_is_object(v) ? json_object_get(v, "usage") : NULL;
        }
    }

    if (json_is_object(usage)) {
        ngx_ai_relay_usage_apply_json(u, usage, depth);
        u->usage_events++;
        rc |= NGX_AI_RELAY_USAGE_FOUND;
    }

    if (u->format == NGX_AI_RELAY_FMT_OPENAI_IMAGES) {
        v = json_object_get(obj, "data");

        if (json_is_array(v)) {
            u->images = json_array_size(v);
        }
    }

    if (ngx_ai_relay_usage_error(u, obj, name, name_len)) {
        rc |= NGX_AI_RELAY_USAGE_ERROR;
    }

    return rc;
}


static int
ngx_ai_relay_usage_apply(ngx_ai_relay_usage_t *u, const u_char *p,
    size_t len, int depth)
{
    json_t  *usage;

    usage = json_loadb((const char *) p, len, 0, NULL);

    if (usage == NULL) {
        u->json_errors++;
        return 0;
    }

    if (json_is_object(usage)) {
        ngx_ai_relay_usage_apply_json(u, usage, depth);
    }

    json_decref(usage);

    return 1;
}


/* depth: 1 for a top-level "usage", 2 for message.usage / response.usage */

static void
ngx_ai_relay_usage_apply_json(ngx_ai_relay_usage_t *u, json_t *usage,
    int depth)
{
    switch (u->format) {

    case NGX_AI_RELAY_FMT_ANTHROPIC_MESSAGES:
        ngx_ai_relay_usage_anthropic(u, usage, depth == 1);
        break;

    case NGX_AI_RELAY_FMT_GEMINI:
        ngx_ai_relay_usage_gemini(u, usage);
        break;

    default:
        ngx_ai_relay_usage_openai(u, usage);
        break;
    }
}


static void
ngx_ai_relay_usage_openai(ngx_ai_relay_usage_t *u, json_t *usage)
{
    int       found;
    json_t   *d;
    int64_t   prompt, completion, cached, reasoning;

    prompt = 0;
    completion = 0;
    cached = 0;
    reasoning = 0;

    found = ngx_ai_relay_json_int(usage, "prompt_tokens", &prompt)
            || ngx_ai_relay_json_int(usage, "input_tokens", &prompt);

    found |= ngx_ai_relay_json_int(usage, "completion_tokens", &completion)
             || ngx_ai_relay_json_int(usage, "output_tokens", &completion);

    if (!found) {
        /* "usage": {} or something else: keep what we had */
        return;
    }

    d = json_object_get(usage, "prompt_tokens_details");
    if (!json_is_object(d)) {
        d = json_object_get(usage, "input_tokens_details");
    }

    if (!ngx_ai_relay_json_int(d, "cached_tokens", &cached)) {
        /* DeepSeek */
        (void) ngx_ai_relay_json_int(usage, "prompt_cache_hit_tokens",
                                     &cached);
    }

    d = json_object_get(usage, "completion_tokens_details");
    if (!json_is_object(d)) {
        d = json_object_get(usage, "output_tokens_details");
    }

    (void) ngx_ai_relay_json_int(d, "reasoning_tokens", &reasoning);

    u->prompt_tokens = prompt;
    u->cached_tokens = cached;
    u->cache_write_5m_tokens = 0;
    u->cache_write_1h_tokens = 0;
    u->completion_tokens = completion;
    u->reasoning_tokens = reasoning;
    u->found = 1;
}


/*
 * message_start carries message.usage (final == 0), message_delta and a
 * non-stream body carry a top-level usage (final == 1).  Fields present
 * replace what we had; output_tokens is cumulative.
 */

static void
ngx_ai_relay_usage_anthropic(ngx_ai_relay_usage_t *u, json_t *usage,
    int final)
{
    int       found;
    json_t   *cc;
    int64_t   w5, w1, write;

    found = ngx_ai_relay_json_int(usage, "input_tokens", &u->a_input);
    found |= ngx_ai_relay_json_int(usage, "cache_read_input_tokens",
                                   &u->a_cache_read);
    found |= ngx_ai_relay_json_int(usage, "cache_creation_input_tokens",
                                   &u->a_cache_write);
    found |= ngx_ai_relay_json_int(usage, "output_tokens",
                                   &u->completion_tokens);

    cc = json_object_get(usage, "cache_creation");

    if (json_is_object(cc)) {
        u->anthropic_split = 1;
        (void) ngx_ai_relay_json_int(cc, "ephemeral_5m_input_tokens",
                                     &u->a_5m);
        (void) ngx_ai_relay_json_int(cc, "ephemeral_1h_input_tokens",
                                     &u->a_1h);
    }

    if (!found) {
        return;
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


static void
ngx_ai_relay_usage_gemini(ngx_ai_relay_usage_t *u, json_t *usage)
{
    int       found;
    int64_t   prompt, tool, candidates, thoughts, cached, total;

    prompt = 0;
    tool = 0;
    candidates = 0;
    thoughts = 0;
    cached = 0;
    total = 0;

    found = ngx_ai_relay_json_int(usage, "promptTokenCount", &prompt);
    found |= ngx_ai_relay_json_int(usage, "candidatesTokenCount",
                                   &candidates);
    found |= ngx_ai_relay_json_int(usage, "totalTokenCount", &total);

    if (!found) {
        return;
    }

    (void) ngx_ai_relay_json_int(usage, "toolUsePromptTokenCount", &tool);
    (void) ngx_ai_relay_json_int(usage, "thoughtsTokenCount", &thoughts);
    (void) ngx_ai_relay_json_int(usage, "cachedContentTokenCount", &cached);

    u->prompt_tokens = prompt + tool;
    u->cached_tokens = cached;
    u->cache_write_5m_tokens = 0;
    u->cache_write_1h_tokens = 0;
    u->completion_tokens = candidates + thoughts;
    u->reasoning_tokens = thoughts;
    u->found = 1;
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


/* a number in [0, NGX_AI_RELAY_MAX_TOKENS], integer or real */

static int
ngx_ai_relay_json_int(json_t *obj, const char *key, int64_t *value)
{
    json_t  *v;
    double   d;

    if (!json_is_object(obj)) {
        return 0;
    }

    v = json_object_get(obj, key);

    if (json_is_integer(v)) {

        if (json_integer_value(v) < 0
            || json_integer_value(v) > NGX_AI_RELAY_MAX_TOKENS)
        {
            return 0;
        }

        *value = json_integer_value(v);
        return 1;
    }

    if (json_is_real(v)) {
        d = json_real_value(v);

        if (!(d >= 0 && d <= (double) NGX_AI_RELAY_MAX_TOKENS)) {
            return 0;
        }

        *value = (int64_t) d;
        return 1;
    }

    return 0;
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
 * the string values of the given keys into u->text_units, and notes the
 * keys that need a real parser.  Never reads outside [p, p + len).
 */

static void
ngx_ai_relay_scan(ngx_ai_relay_usage_t *u, const u_char *p, size_t len,
    const ngx_ai_relay_key_t *keys, ngx_ai_relay_scan_t *scan)
{
    int                        depth;
    size_t                     klen;
    int64_t                    units;
    const u_char              *k, *e, *last;
    const ngx_ai_relay_key_t  *key;

    memset(scan, 0, sizeof(ngx_ai_relay_scan_t));

    depth = 0;
    units = 0;
    last = p + len;

    while (p < last) {

        switch (*p) {

        case '{':
        case '[':
            depth++;
            p++;
            continue;

        case '}':
        case ']':
            depth--;
            p++;
            continue;

        case '"':
            break;

        default:
            p++;
            continue;
        }

        k = p + 1;
        e = ngx_ai_relay_string_end(k, last);

        if (e == NULL) {
            break;
        }

        klen = e - k;

        for (p = e + 1; p < last && (*p == ' ' || *p == '\t'
                                     || *p == '\r' || *p == '\n'); p++)
        {
            /* void */
        }

        if (p == last || *p != ':') {
            /* a string value */
            continue;
        }

        for (p++; p < last && (*p == ' ' || *p == '\t'
                               || *p == '\r' || *p == '\n'); p++)
        {
            /* void */
        }

        if (p == last) {
            break;
        }

        /* a key, and p is at its value */

        if (*p == '{'
            && (ngx_ai_relay_streq(k, klen, "usage")
                || ngx_ai_relay_streq(k, klen, "usageMetadata")))
        {
            if (scan->usage == NULL || depth < scan->usage_depth) {
                e = ngx_ai_relay_value_end(p, last);

                if (e) {
                    scan->usage = p;
                    scan->usage_len = e - p;
                    scan->usage_depth = depth;
                }
            }

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

                for (e = p + 1; e < last && (*e == ' ' || *e == '\t'
                                             || *e == '\r' || *e == '\n');
                     e++)
                {
                    /* void */
                }

                scan->choices = (e < last && *e == ']')
                                ? NGX_AI_RELAY_CHOICES_EMPTY
                                : NGX_AI_RELAY_CHOICES_SOME;

            } else {
                scan->choices = NGX_AI_RELAY_CHOICES_SOME;
            }

            continue;
        }

        if (*p != '"') {
            continue;
        }

        if (u->format == NGX_AI_RELAY_FMT_OPENAI_IMAGES
            && depth == 1
            && ngx_ai_relay_streq(k, klen, "type"))
        {
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

        if (keys == NULL) {
            continue;
        }

        for (key = keys; key->name; key++) {

            if (klen == key->len && memcmp(k, key->name, klen) == 0) {
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
 * p is right after an opening quote; returns the closing quote or NULL.
 * Keys and streamed deltas are short: an inline loop is faster than
 * memchr() for them; long strings (base64 images) switch to memchr().
 */

static const u_char *
ngx_ai_relay_string_end(const u_char *p, const u_char *last)
{
    size_t         n;
    const u_char  *q, *b, *start, *end;

    end = (last - p > 32) ? p + 32 : last;

    while (p < end) {

        if (*p == '"') {
            return p;
        }

        if (*p == '\\') {

            if (last - p < 2) {
                return NULL;
            }

            p += 2;
            continue;
        }

        p++;
    }

    /* p may be one past end after an escape: never before an escape */

    start = p;

    while (p < last) {
        q = memchr(p, '"', last - p);

        if (q == NULL) {
            return NULL;
        }

        n = 0;

        for (b = q; b > start && b[-1] == '\\'; b--) {
            n++;
        }

        if ((n & 1) == 0) {
            return q;
        }

        p = q + 1;
    }

    return NULL;
}


/* p is at '{' or '['; returns the byte after its match, or NULL */

static const u_char *
ngx_ai_relay_value_end(const u_char *p, const u_char *last)
{
    size_t         depth;
    const u_char  *e;

    depth = 0;

    while (p < last) {

        switch (*p) {

        case '"':
            e = ngx_ai_relay_string_end(p + 1, last);

            if (e == NULL) {
                return NULL;
            }

            p = e + 1;
            continue;

        case '{':
        case '[':
            depth++;
            break;

        case '}':
        case ']':
            if (--depth == 0) {
                return p + 1;
            }

            break;
        }

        p++;
    }

    return NULL;
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

        for (q = p; q < last && *q < 0x80 && *q != '"' && *q != '\\'; q++) {
            /* void */
        }

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
