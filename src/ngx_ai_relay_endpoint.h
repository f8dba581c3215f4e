
/*
 * Copyright (C) ngx_ai_relay authors
 */


#ifndef _NGX_AI_RELAY_ENDPOINT_H_INCLUDED_
#define _NGX_AI_RELAY_ENDPOINT_H_INCLUDED_


/*
 * The endpoints a relay location serves (nginx-free): each with the
 * methods it takes, its body, how it is priced and where its usage
 * comes from.  A path is matched after its API version segment ("/v1/",
 * "/v1beta/", "/v1alpha/"; the whole path when it has none), so
 * "/v1/chat/completions" and "/openai/v1/chat/completions" are the same
 * endpoint.  Anything not in the table is no endpoint: the relay answers
 * 404 unless the location passes other paths through
 * (ai_relay_passthrough).
 */


#include <stddef.h>
#include <stdint.h>

#include "ngx_ai_relay_usage.h"


/* methods */
#define NGX_AI_RELAY_EP_GET           0x01   /* and HEAD */
#define NGX_AI_RELAY_EP_POST          0x02
#define NGX_AI_RELAY_EP_DELETE        0x04
#define NGX_AI_RELAY_EP_ANY           0xff

/* the request's body */
#define NGX_AI_RELAY_EP_BODY_NONE     0      /* answered by the relay */
#define NGX_AI_RELAY_EP_BODY_JSON     1      /* a JSON object, "model" */
#define NGX_AI_RELAY_EP_BODY_MULTIPART 2     /* multipart/form-data */
#define NGX_AI_RELAY_EP_BODY_RAW      3      /* passed as is, not read */
#define NGX_AI_RELAY_EP_BODY_TASK     4      /* none: the task in the path */

/* how it is priced */
#define NGX_AI_RELAY_EP_PRICE_TOKENS  0      /* input and output tokens */
#define NGX_AI_RELAY_EP_PRICE_INPUT   1      /* input tokens only */
#define NGX_AI_RELAY_EP_PRICE_IMAGES  2      /* per image, size, quality */
#define NGX_AI_RELAY_EP_PRICE_CHARS   3      /* per 1M input characters */
#define NGX_AI_RELAY_EP_PRICE_REQUEST 4      /* the model's per request */
#define NGX_AI_RELAY_EP_PRICE_FREE    5      /* nothing, still recorded */
#define NGX_AI_RELAY_EP_PRICE_NONE    6      /* the relay's own answer */
#define NGX_AI_RELAY_EP_PRICE_TASK    7      /* per task, second, image */

typedef enum {
    NGX_AI_RELAY_EP_CHAT = 1,
    NGX_AI_RELAY_EP_COMPLETIONS,
    NGX_AI_RELAY_EP_EMBEDDINGS,
    NGX_AI_RELAY_EP_RESPONSES,
    NGX_AI_RELAY_EP_MESSAGES,
    NGX_AI_RELAY_EP_COUNT_TOKENS,
    NGX_AI_RELAY_EP_GEMINI_GENERATE,
    NGX_AI_RELAY_EP_GEMINI_STREAM,
    NGX_AI_RELAY_EP_GEMINI_COUNT_TOKENS,
    NGX_AI_RELAY_EP_GEMINI_EMBED,
    NGX_AI_RELAY_EP_GEMINI_BATCH_EMBED,
    NGX_AI_RELAY_EP_IMAGES,
    NGX_AI_RELAY_EP_IMAGES_EDIT,
    NGX_AI_RELAY_EP_IMAGES_VARIATION,
    NGX_AI_RELAY_EP_SPEECH,
    NGX_AI_RELAY_EP_TRANSCRIPTION,
    NGX_AI_RELAY_EP_TRANSLATION,
    NGX_AI_RELAY_EP_MODERATIONS,
    NGX_AI_RELAY_EP_MODELS,
    NGX_AI_RELAY_EP_MODEL,
    NGX_AI_RELAY_EP_SUBSCRIPTION,
    NGX_AI_RELAY_EP_USAGE,
    NGX_AI_RELAY_EP_VIDEO_CREATE,
    NGX_AI_RELAY_EP_VIDEO_GET,
    NGX_AI_RELAY_EP_VIDEO_CONTENT,
    NGX_AI_RELAY_EP_VIDEO_REMIX,
    NGX_AI_RELAY_EP_VGEN_CREATE,
    NGX_AI_RELAY_EP_VGEN_GET,
    NGX_AI_RELAY_EP_DS_IMAGE,
    NGX_AI_RELAY_EP_DS_VIDEO,
    NGX_AI_RELAY_EP_DS_TASK,
    NGX_AI_RELAY_EP_PASSTHROUGH
} ngx_ai_relay_endpoint_e;


typedef struct {
    const char               *path;      /* after the version; '*': a name */
    ngx_ai_relay_endpoint_e   id;
    unsigned                  methods;
    unsigned                  body;
    unsigned                  price;
    ngx_ai_relay_format_e     format;    /* of its answer's usage */
    const char               *usage;     /* README's words: from where */
} ngx_ai_relay_endpoint_t;


/*
 * The endpoint of a path (no query string), or NULL.  *name, *name_len:
 * the part a '*' of the pattern matched (the model of a Gemini path, the
 * id of /models/{id}), or NULL and 0.
 */
const ngx_ai_relay_endpoint_t *ngx_ai_relay_endpoint_find(
    const unsigned char *path, size_t len, const unsigned char **name,
    size_t *name_len);

/*
 * 1 if a path no endpoint serves is one in all but letter case or
 * trailing slashes ("/V1/Chat/Completions/"), or longer than
 * NGX_AI_RELAY_EP_NEAR_MAX: such a path is never passed through
 */
#define NGX_AI_RELAY_EP_NEAR_MAX  2048

int ngx_ai_relay_endpoint_near(const unsigned char *path, size_t len);

/*
 * 1 if path starts with prefix at a segment boundary: "/v1/files"
 * covers "/v1/files" and "/v1/files/f-1", not "/v1/filesystem"
 */
int ngx_ai_relay_endpoint_prefix(const unsigned char *path, size_t len,
    const unsigned char *prefix, size_t prefix_len);

/* the path after the version segment, as matched */
const unsigned char *ngx_ai_relay_endpoint_tail(const unsigned char *path,
    size_t len, size_t *tail_len);

/* an operator's pass-through (ai_relay_passthrough): any method, raw */
extern const ngx_ai_relay_endpoint_t  ngx_ai_relay_endpoint_passthrough;

/* the table, ended by an entry whose path is NULL (README's table) */
extern const ngx_ai_relay_endpoint_t  ngx_ai_relay_endpoints[];

/*
 * Days since 1970-01-01 of "YYYY-MM-DD" (a real date of years 1970 to
 * 9999): 0, or -1 if it is not one.
 */
int ngx_ai_relay_endpoint_date(const unsigned char *s, size_t len,
    int64_t *days);

/* the civil date of a day number: year, month 1-12, day 1-31 */
void ngx_ai_relay_endpoint_civil(int64_t days, int *year, int *month,
    int *mday);

/* UTF-8 characters of a string (bytes that do not continue a sequence) */
size_t ngx_ai_relay_endpoint_chars(const unsigned char *s, size_t len);


#endif /* _NGX_AI_RELAY_ENDPOINT_H_INCLUDED_ */
