
/*
 * Copyright (C) ngx_ai_relay authors
 *
 * The endpoint table: what a relay location serves, and nothing else.
 */


#include <string.h>

#include "ngx_ai_relay_endpoint.h"


#define G     NGX_AI_RELAY_EP_GET
#define P     NGX_AI_RELAY_EP_POST
#define JSON  NGX_AI_RELAY_EP_BODY_JSON
#define MULTI NGX_AI_RELAY_EP_BODY_MULTIPART
#define NONE  NGX_AI_RELAY_EP_BODY_NONE


const ngx_ai_relay_endpoint_t  ngx_ai_relay_endpoints[] = {

    { "chat/completions", NGX_AI_RELAY_EP_CHAT, P, JSON,
      NGX_AI_RELAY_EP_PRICE_TOKENS, NGX_AI_RELAY_FMT_OPENAI_CHAT,
      "usage, or the stream's usage chunk" },

    { "completions", NGX_AI_RELAY_EP_COMPLETIONS, P, JSON,
      NGX_AI_RELAY_EP_PRICE_TOKENS, NGX_AI_RELAY_FMT_OPENAI_COMPLETIONS,
      "usage, or the stream's usage chunk" },

    { "embeddings", NGX_AI_RELAY_EP_EMBEDDINGS, P, JSON,
      NGX_AI_RELAY_EP_PRICE_INPUT, NGX_AI_RELAY_FMT_OPENAI_EMBEDDINGS,
      "usage" },

    { "responses", NGX_AI_RELAY_EP_RESPONSES, P, JSON,
      NGX_AI_RELAY_EP_PRICE_TOKENS, NGX_AI_RELAY_FMT_OPENAI_RESPONSES,
      "response.usage" },

    { "messages", NGX_AI_RELAY_EP_MESSAGES, P, JSON,
      NGX_AI_RELAY_EP_PRICE_TOKENS, NGX_AI_RELAY_FMT_ANTHROPIC_MESSAGES,
      "usage, message_start + message_delta" },

    { "messages/count_tokens", NGX_AI_RELAY_EP_COUNT_TOKENS, P, JSON,
      NGX_AI_RELAY_EP_PRICE_FREE, NGX_AI_RELAY_FMT_ANTHROPIC_MESSAGES,
      "none: free" },

    { "models/*:generateContent", NGX_AI_RELAY_EP_GEMINI_GENERATE, P, JSON,
      NGX_AI_RELAY_EP_PRICE_TOKENS, NGX_AI_RELAY_FMT_GEMINI,
      "usageMetadata" },

    { "models/*:streamGenerateContent", NGX_AI_RELAY_EP_GEMINI_STREAM, P,
      JSON, NGX_AI_RELAY_EP_PRICE_TOKENS, NGX_AI_RELAY_FMT_GEMINI,
      "the last usageMetadata" },

    { "models/*:countTokens", NGX_AI_RELAY_EP_GEMINI_COUNT_TOKENS, P, JSON,
      NGX_AI_RELAY_EP_PRICE_FREE, NGX_AI_RELAY_FMT_GEMINI,
      "none: free" },

    { "models/*:embedContent", NGX_AI_RELAY_EP_GEMINI_EMBED, P, JSON,
      NGX_AI_RELAY_EP_PRICE_INPUT, NGX_AI_RELAY_FMT_GEMINI,
      "usageMetadata, or estimated from the request" },

    { "models/*:batchEmbedContents", NGX_AI_RELAY_EP_GEMINI_BATCH_EMBED, P,
      JSON, NGX_AI_RELAY_EP_PRICE_INPUT, NGX_AI_RELAY_FMT_GEMINI,
      "usageMetadata, or estimated from the request" },

    { "images/generations", NGX_AI_RELAY_EP_IMAGES, P, JSON,
      NGX_AI_RELAY_EP_PRICE_IMAGES, NGX_AI_RELAY_FMT_OPENAI_IMAGES,
      "data[] (one per image), usage" },

    { "images/edits", NGX_AI_RELAY_EP_IMAGES_EDIT, P, MULTI,
      NGX_AI_RELAY_EP_PRICE_IMAGES, NGX_AI_RELAY_FMT_OPENAI_IMAGES,
      "data[] (one per image), usage" },

    { "images/variations", NGX_AI_RELAY_EP_IMAGES_VARIATION, P, MULTI,
      NGX_AI_RELAY_EP_PRICE_IMAGES, NGX_AI_RELAY_FMT_OPENAI_IMAGES,
      "data[] (one per image)" },

    { "audio/speech", NGX_AI_RELAY_EP_SPEECH, P, JSON,
      NGX_AI_RELAY_EP_PRICE_CHARS, NGX_AI_RELAY_FMT_UNKNOWN,
      "the characters of the request's input" },

    { "audio/transcriptions", NGX_AI_RELAY_EP_TRANSCRIPTION, P, MULTI,
      NGX_AI_RELAY_EP_PRICE_TOKENS, NGX_AI_RELAY_FMT_OPENAI_RESPONSES,
      "usage (input_tokens, output_tokens), or estimated from text" },

    { "audio/translations", NGX_AI_RELAY_EP_TRANSLATION, P, MULTI,
      NGX_AI_RELAY_EP_PRICE_TOKENS, NGX_AI_RELAY_FMT_OPENAI_RESPONSES,
      "usage (input_tokens, output_tokens), or estimated from text" },

    { "moderations", NGX_AI_RELAY_EP_MODERATIONS, P, JSON,
      NGX_AI_RELAY_EP_PRICE_REQUEST, NGX_AI_RELAY_FMT_UNKNOWN,
      "none: the model's per-request price" },

    { "models", NGX_AI_RELAY_EP_MODELS, G, NONE,
      NGX_AI_RELAY_EP_PRICE_NONE, NGX_AI_RELAY_FMT_UNKNOWN,
      "the relay's own answer" },

    { "models/*", NGX_AI_RELAY_EP_MODEL, G, NONE,
      NGX_AI_RELAY_EP_PRICE_NONE, NGX_AI_RELAY_FMT_UNKNOWN,
      "the relay's own answer" },

    { "dashboard/billing/subscription", NGX_AI_RELAY_EP_SUBSCRIPTION, G, NONE,
      NGX_AI_RELAY_EP_PRICE_NONE, NGX_AI_RELAY_FMT_UNKNOWN,
      "the relay's own answer" },

    { "dashboard/billing/usage", NGX_AI_RELAY_EP_USAGE, G, NONE,
      NGX_AI_RELAY_EP_PRICE_NONE, NGX_AI_RELAY_FMT_UNKNOWN,
      "the relay's own answer" },

    { "videos", NGX_AI_RELAY_EP_VIDEO_CREATE, P, MULTI,
      NGX_AI_RELAY_EP_PRICE_TASK, NGX_AI_RELAY_FMT_UNKNOWN,
      "the request: per task, per second of video" },

    { "videos/*", NGX_AI_RELAY_EP_VIDEO_GET, G|NGX_AI_RELAY_EP_DELETE,
      NGX_AI_RELAY_EP_BODY_TASK,
      NGX_AI_RELAY_EP_PRICE_FREE, NGX_AI_RELAY_FMT_UNKNOWN,
      "none: the key's own task, on its channel" },

    { "videos/*/content", NGX_AI_RELAY_EP_VIDEO_CONTENT, G,
      NGX_AI_RELAY_EP_BODY_TASK, NGX_AI_RELAY_EP_PRICE_FREE,
      NGX_AI_RELAY_FMT_UNKNOWN, "none: the key's own task, on its channel" },

    { "videos/*/remix", NGX_AI_RELAY_EP_VIDEO_REMIX, P, JSON,
      NGX_AI_RELAY_EP_PRICE_TASK, NGX_AI_RELAY_FMT_UNKNOWN,
      "the remixed task: its model, seconds and size, on its channel" },

    { "video/generations", NGX_AI_RELAY_EP_VGEN_CREATE, P, JSON,
      NGX_AI_RELAY_EP_PRICE_TASK, NGX_AI_RELAY_FMT_UNKNOWN,
      "the request: per task, per second of video" },

    { "video/generations/*", NGX_AI_RELAY_EP_VGEN_GET, G,
      NGX_AI_RELAY_EP_BODY_TASK, NGX_AI_RELAY_EP_PRICE_FREE,
      NGX_AI_RELAY_FMT_UNKNOWN, "none: the key's own task, on its channel" },

    { "services/aigc/text2image/image-synthesis", NGX_AI_RELAY_EP_DS_IMAGE,
      P, JSON, NGX_AI_RELAY_EP_PRICE_TASK, NGX_AI_RELAY_FMT_UNKNOWN,
      "the request: per task, per image (parameters.n, 4 if absent)" },

    { "services/aigc/video-generation/video-synthesis",
      NGX_AI_RELAY_EP_DS_VIDEO, P, JSON, NGX_AI_RELAY_EP_PRICE_TASK,
      NGX_AI_RELAY_FMT_UNKNOWN,
      "the request: per task, per second (parameters.duration)" },

    { "tasks/*", NGX_AI_RELAY_EP_DS_TASK, G, NGX_AI_RELAY_EP_BODY_TASK,
      NGX_AI_RELAY_EP_PRICE_FREE, NGX_AI_RELAY_FMT_UNKNOWN,
      "none: the key's own task, on its channel" },

    { NULL, 0, 0, 0, 0, 0, NULL }
};


const ngx_ai_relay_endpoint_t  ngx_ai_relay_endpoint_passthrough = {
    "*", NGX_AI_RELAY_EP_PASSTHROUGH, NGX_AI_RELAY_EP_ANY,
    NGX_AI_RELAY_EP_BODY_RAW, NGX_AI_RELAY_EP_PRICE_REQUEST,
    NGX_AI_RELAY_FMT_UNKNOWN, "none: the model's per-request price"
};


#undef G
#undef P
#undef JSON
#undef MULTI
#undef NONE


static int ngx_ai_relay_endpoint_match(const char *pattern,
    const unsigned char *s, size_t len, const unsigned char **name,
    size_t *name_len, int nocase);


const unsigned char *
ngx_ai_relay_endpoint_tail(const unsigned char *path, size_t len,
    size_t *tail_len)
{
    size_t                i, n;
    const unsigned char  *seg, *end, *last;

    static const struct {
        const char  *s;
        size_t       len;
    } versions[] = {
        { "v1", 2 }, { "v1beta", 6 }, { "v1alpha", 7 }
    };

    last = path + len;

    /* the first segment that is a version */

    for (seg = path; seg < last; seg = end) {

        while (seg < last && *seg == '/') {
            seg++;
        }

        for (end = seg; end < last && *end != '/'; end++) {
            /* void */
        }

        if (end == last) {
            break;
        }

        n = end - seg;

        for (i = 0; i < sizeof(versions) / sizeof(versions[0]); i++) {
            if (n == versions[i].len && memcmp(seg, versions[i].s, n) == 0) {
                *tail_len = last - (end + 1);
                return end + 1;
            }
        }
    }

    /* no version: the whole path */

    while (len && *path == '/') {
        path++;
        len--;
    }

    *tail_len = len;

    return path;
}


const ngx_ai_relay_endpoint_t *
ngx_ai_relay_endpoint_find(const unsigned char *path, size_t len,
    const unsigned char **name, size_t *name_len)
{
    size_t                          tlen;
    const unsigned char            *tail;
    const ngx_ai_relay_endpoint_t  *ep;

    *name = NULL;
    *name_len = 0;

    tail = ngx_ai_relay_endpoint_tail(path, len, &tlen);

    for (ep = ngx_ai_relay_endpoints; ep->path; ep++) {
        if (ngx_ai_relay_endpoint_match(ep->path, tail, tlen, name, name_len,
                                        0))
        {
            return ep;
        }
    }

    *name = NULL;
    *name_len = 0;

    return NULL;
}


int
ngx_ai_relay_endpoint_near(const unsigned char *path, size_t len)
{
    size_t                          i, tlen, nlen;
    unsigned char                   low[NGX_AI_RELAY_EP_NEAR_MAX];
    const unsigned char            *tail, *name;
    const ngx_ai_relay_endpoint_t  *ep;

    if (len > sizeof(low)) {
        return 1;
    }

    for (i = 0; i < len; i++) {
        low[i] = (path[i] >= 'A' && path[i] <= 'Z') ? path[i] | 0x20
                                                     : path[i];
    }

    /* the version segment, whatever its case; then trailing slashes off */

    tail = ngx_ai_relay_endpoint_tail(low, len, &tlen);

    while (tlen && tail[tlen - 1] == '/') {
        tlen--;
    }

    for (ep = ngx_ai_relay_endpoints; ep->path; ep++) {
        if (ngx_ai_relay_endpoint_match(ep->path, tail, tlen, &name, &nlen,
                                        1))
        {
            return 1;
        }
    }

    return 0;
}


int
ngx_ai_relay_endpoint_prefix(const unsigned char *path, size_t len,
    const unsigned char *prefix, size_t prefix_len)
{
    if (prefix_len == 0 || len < prefix_len
        || memcmp(path, prefix, prefix_len) != 0)
    {
        return 0;
    }

    return len == prefix_len || prefix[prefix_len - 1] == '/'
           || path[prefix_len] == '/';
}


/* '*' matches one byte or more, none of them '/' or ':' */

static int
ngx_ai_relay_endpoint_match(const char *pattern, const unsigned char *s,
    size_t len, const unsigned char **name, size_t *name_len, int nocase)
{
    unsigned char         c;
    const unsigned char  *last, *start;

    last = s + len;

    for ( /* void */ ; *pattern; pattern++) {

        if (*pattern == '*') {
            start = s;

            while (s < last && *s != '/' && *s != ':') {
                s++;
            }

            if (s == start) {
                return 0;
            }

            *name = start;
            *name_len = s - start;
            continue;
        }

        c = (unsigned char) *pattern;

        if (nocase && c >= 'A' && c <= 'Z') {
            c |= 0x20;
        }

        if (s == last || *s != c) {
            return 0;
        }

        s++;
    }

    return s == last;
}


int
ngx_ai_relay_endpoint_date(const unsigned char *s, size_t len, int64_t *days)
{
    int       i, v[3], dim;
    int64_t   y, m, d, era, yoe, doy, doe;

    static const int  mdays[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31,
                                  30, 31 };

    if (len != 10 || s[4] != '-' || s[7] != '-') {
        return -1;
    }

    v[0] = v[1] = v[2] = 0;

    for (i = 0; i < 10; i++) {
        if (i == 4 || i == 7) {
            continue;
        }

        if (s[i] < '0' || s[i] > '9') {
            return -1;
        }

        v[i < 4 ? 0 : (i < 7 ? 1 : 2)] = v[i < 4 ? 0 : (i < 7 ? 1 : 2)] * 10
                                         + (s[i] - '0');
    }

    if (v[0] < 1970 || v[1] < 1 || v[1] > 12 || v[2] < 1) {
        return -1;
    }

    dim = mdays[v[1] - 1];

    if (v[1] == 2
        && ((v[0] % 4 == 0 && v[0] % 100 != 0) || v[0] % 400 == 0))
    {
        dim = 29;
    }

    if (v[2] > dim) {
        return -1;
    }

    /* days from civil (H. Hinnant's algorithm, proleptic Gregorian) */

    y = v[0];
    m = v[1];
    d = v[2];

    y -= (m <= 2);
    era = y / 400;
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

    *days = era * 146097 + doe - 719468;

    return 0;
}


void
ngx_ai_relay_endpoint_civil(int64_t days, int *year, int *month, int *mday)
{
    int64_t  z, era, doe, yoe, y, doy, mp, d, m;

    z = days + 719468;
    era = (z >= 0 ? z : z - 146096) / 146097;
    doe = z - era * 146097;
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    y = yoe + era * 400;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    d = doy - (153 * mp + 2) / 5 + 1;
    m = mp < 10 ? mp + 3 : mp - 9;

    *year = (int) (y + (m <= 2));
    *month = (int) m;
    *mday = (int) d;
}


size_t
ngx_ai_relay_endpoint_chars(const unsigned char *s, size_t len)
{
    size_t  i, n;

    n = 0;

    for (i = 0; i < len; i++) {
        n += ((s[i] & 0xc0) != 0x80);
    }

    return n;
}
