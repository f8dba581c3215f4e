
/*
 * Copyright (C) ngx_ai_relay authors
 *
 * Format translation between provider APIs, without nginx: OpenAI chat
 * completions <-> Anthropic messages.  Requests and whole answers are
 * read with the JSON scanner (the client's body is already validated and
 * scanned) and written anew with a small JSON writer that allocates
 * through a callback (nginx's pool in the module, malloc in the unit
 * tests).  String values are copied as their JSON text, escapes and all,
 * so nothing is decoded and encoded again on the way.
 *
 * A stream is translated by ngx_ai_relay_xlate_sse_*(): fed one complete
 * event of the upstream's format at a time, it appends zero or more
 * complete events of the client's format to its writer, which the caller
 * sends on and empties.
 *
 * What cannot be expressed in the target format is refused
 * (NGX_AI_RELAY_XLATE_INVALID, with a message for a 400 in the client's
 * format), never silently left out; README's "Format translation" lists
 * what is translated.
 */


#ifndef _NGX_AI_RELAY_XLATE_H_INCLUDED_
#define _NGX_AI_RELAY_XLATE_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "ngx_ai_relay_json_scan.h"
#include "ngx_ai_relay_usage.h"


#define NGX_AI_RELAY_XLATE_OK        0
#define NGX_AI_RELAY_XLATE_INVALID   1   /* the client's request: a 400 */
#define NGX_AI_RELAY_XLATE_ERROR     2   /* no memory, or the upstream's
                                            answer could not be read */

#define NGX_AI_RELAY_XLATE_ERR_LEN   256

/*
 * Between an OpenAI tool call id and the Gemini thoughtSignature it
 * carries (in base64url, no padding), so that the signature goes back to
 * Gemini with the call
 */
#define NGX_AI_RELAY_XLATE_SIG       "__tsig_"

/* the default budget of Anthropic's extended thinking per effort */
#define NGX_AI_RELAY_XLATE_BUDGET_LOW     1024
#define NGX_AI_RELAY_XLATE_BUDGET_MEDIUM  4096
#define NGX_AI_RELAY_XLATE_BUDGET_HIGH    16384


typedef void *(*ngx_ai_relay_xlate_alloc_pt)(void *data, size_t size);


/* a growing output buffer for JSON text */
typedef struct {
    ngx_ai_relay_xlate_alloc_pt   alloc;
    void                         *data;
    u_char                       *buf;
    size_t                        len;
    size_t                        cap;
    unsigned                      failed:1;
} ngx_ai_relay_jw_t;


typedef struct {
    /* in */
    const u_char                 *body;      /* validated, scanned */
    size_t                        len;
    const ngx_ai_relay_json_scan_t  *scan;
    const u_char                 *model;     /* the upstream's name */
    size_t                        model_len;
    int64_t                       default_max_tokens;
    int64_t                       max_out;   /* out: the output tokens
                                              * the translation allows at
                                              * most (thinking included),
                                              * -1: it sets no limit */
    ngx_ai_relay_format_e         from;
    ngx_ai_relay_format_e         to;

    /* out */
    u_char                       *out;
    size_t                        out_len;
    unsigned                      stream:1;      /* in too: Gemini says it
                                                    in the path */
    unsigned                      include_usage:1; /* the client asked */
    char                          err[NGX_AI_RELAY_XLATE_ERR_LEN];
} ngx_ai_relay_xlate_req_t;


typedef struct {
    ngx_ai_relay_format_e         from;      /* the upstream's format */
    ngx_ai_relay_format_e         to;        /* the client's */
    ngx_ai_relay_jw_t             out;       /* events for the client */
    int64_t                       created;   /* unix time, OpenAI chunks */
    unsigned                      include_usage:1;

    /* private */
    unsigned                      started:1;
    unsigned                      finished:1;
    unsigned                      block_open:1;
    unsigned                      stopped:1;
    unsigned                      usage_seen:1;
    unsigned                      model_fixed:1; /* not the upstream's */
    int                           block_type; /* of the open block */
    int64_t                       block_index;
    int64_t                       tool_index;    /* next OpenAI tool call */
    int64_t                       tool_of_block; /* tool of Anthropic block */
    int64_t                       tool_open;     /* OpenAI call in block */
    int64_t                       in_tokens;
    int64_t                       out_tokens;
    int64_t                       cache_read;
    int64_t                       cache_write;
    int64_t                       reasoning;
    void                         *next;      /* chained: the step from
                                                OpenAI's format */
    ngx_ai_relay_jw_t             mid;       /* chained: this step's */
    ngx_ai_relay_jw_t             calls;     /* Gemini: whole calls */
    ngx_ai_relay_jw_t             args;      /* the current call's text */
    u_char                        id[128];
    size_t                        id_len;
    u_char                        model[128];
    size_t                        model_len;
    char                          stop[24];
} ngx_ai_relay_xlate_sse_t;


/* a member of a scanned object by name; its string value; its JSON text */
int ngx_ai_relay_xm_find(const u_char *b,
    const ngx_ai_relay_json_member_t *obj, const char *name,
    ngx_ai_relay_json_member_t *out);
int ngx_ai_relay_xm_is(const u_char *b, const ngx_ai_relay_json_member_t *m,
    const char *s);
void ngx_ai_relay_xm_raw(ngx_ai_relay_jw_t *w, const u_char *b,
    const ngx_ai_relay_json_member_t *m);

void ngx_ai_relay_jw_init(ngx_ai_relay_jw_t *w,
    ngx_ai_relay_xlate_alloc_pt alloc, void *data);
void ngx_ai_relay_jw_raw(ngx_ai_relay_jw_t *w, const void *p, size_t n);
void ngx_ai_relay_jw_str(ngx_ai_relay_jw_t *w, const u_char *p, size_t n);
void ngx_ai_relay_jw_int(ngx_ai_relay_jw_t *w, int64_t v);

#define ngx_ai_relay_jw_lit(w, s)  ngx_ai_relay_jw_raw(w, s, sizeof(s) - 1)

/* 1 when a request of format from goes to a channel of format to */
int ngx_ai_relay_xlate_supported(ngx_ai_relay_format_e from,
    ngx_ai_relay_format_e to);
/* 1 for Anthropic <-> Gemini: translated by way of OpenAI's format */
int ngx_ai_relay_xlate_chained(ngx_ai_relay_format_e from,
    ngx_ai_relay_format_e to);

int ngx_ai_relay_xlate_request(ngx_ai_relay_xlate_req_t *rq,
    ngx_ai_relay_xlate_alloc_pt alloc, void *data);

/* a whole 2xx answer of format from, as the client's format to */
int ngx_ai_relay_xlate_response(ngx_ai_relay_format_e from,
    ngx_ai_relay_format_e to, const u_char *body, size_t len,
    int64_t created, ngx_ai_relay_jw_t *out);

/*
 * An upstream's error answer (any status) as an error body of the
 * client's format; a body it cannot read gives a generic message.
 */
void ngx_ai_relay_xlate_error(ngx_ai_relay_format_e from,
    ngx_ai_relay_format_e to, unsigned status, const u_char *body,
    size_t len, ngx_ai_relay_jw_t *out);

/* shared by the two files: reasons and usage objects */
const char *ngx_ai_relay_xlate_finish_reason(const u_char *p, size_t len);
const char *ngx_ai_relay_xlate_stop_reason(const u_char *p, size_t len);
void ngx_ai_relay_xlate_openai_usage(ngx_ai_relay_jw_t *w, int64_t input,
    int64_t output, int64_t cache_read, int64_t cache_write);
void ngx_ai_relay_xlate_anthropic_usage(ngx_ai_relay_jw_t *w,
    int64_t prompt, int64_t completion, int64_t cached);
const char *ngx_ai_relay_xlate_gemini_finish(const u_char *p, size_t len,
    int calls);
void ngx_ai_relay_xlate_gemini_usage(ngx_ai_relay_jw_t *w, const u_char *b,
    const ngx_ai_relay_json_member_t *um);
void ngx_ai_relay_xlate_gemini_call(ngx_ai_relay_jw_t *w, const u_char *b,
    const ngx_ai_relay_json_member_t *part,
    const ngx_ai_relay_json_member_t *fc, int64_t n);
const char *ngx_ai_relay_xlate_gemini_reason(const u_char *p, size_t len);
void ngx_ai_relay_xlate_gemini_meta(ngx_ai_relay_jw_t *w, int64_t prompt,
    int64_t completion, int64_t cached, int64_t reasoning);

void ngx_ai_relay_xlate_sse_init(ngx_ai_relay_xlate_sse_t *x,
    ngx_ai_relay_format_e from, ngx_ai_relay_format_e to,
    ngx_ai_relay_xlate_alloc_pt alloc, void *data);
int ngx_ai_relay_xlate_sse_event(ngx_ai_relay_xlate_sse_t *x,
    const u_char *name, size_t name_len, const u_char *data, size_t len);
/* the client's events name this model (a name, not yet JSON) */
void ngx_ai_relay_xlate_sse_model(ngx_ai_relay_xlate_sse_t *x,
    const u_char *name, size_t len);
/* the upstream's stream ended: close what the client still waits for */
int ngx_ai_relay_xlate_sse_finish(ngx_ai_relay_xlate_sse_t *x);


#endif /* _NGX_AI_RELAY_XLATE_H_INCLUDED_ */
