
/*
 * Copyright (C) ngx_ai_relay authors
 */


#ifndef _NGX_AI_RELAY_USAGE_DIFF_H_INCLUDED_
#define _NGX_AI_RELAY_USAGE_DIFF_H_INCLUDED_


/*
 * Differential check of the usage extractor (src/ngx_ai_relay_usage.c)
 * against t/unit/usage_oracle.c, a frozen copy of the extractor as it was
 * before it moved onto ngx_ai_relay_json_scan.c (own walker, jansson for
 * error bodies).  Shared by t/unit/diff_usage.c and fuzz/fuzz_usage_diff.c.
 *
 * One input is run, for every format, as a body, as one event under each
 * of the event names below, and as the same event twice in a row (state
 * carried between events: Anthropic merging, the first error kept, the
 * last usage winning), then finished; every field of the results and
 * every return code must agree.
 *
 * Known and accounted difference: jansson drops a NUL byte that directly
 * follows a number (its stream unget takes NUL for "buffer empty"), so it
 * accepted "{\"error\":1\0}"; such inputs are not compared when they reach
 * the error path (ud_skipped counts them).
 */


#include <stdint.h>
#include <string.h>

#include "ngx_ai_relay_usage.h"


void ngx_ai_relay_oracle_init(ngx_ai_relay_usage_t *u,
    ngx_ai_relay_format_e format);
int ngx_ai_relay_oracle_event(ngx_ai_relay_usage_t *u, const u_char *name,
    size_t name_len, const u_char *data, size_t len);
int ngx_ai_relay_oracle_body(ngx_ai_relay_usage_t *u, const u_char *body,
    size_t len);
void ngx_ai_relay_oracle_finish(ngx_ai_relay_usage_t *u);
int64_t ngx_ai_relay_oracle_estimate(const u_char *text, size_t len);


static const char  *ud_names[] = {
    NULL,
    "error",
    "message_start",
    "message_delta",
    "response.output_text.delta",
    "response.audio.delta",
    "response.completed",
    "image_generation.completed",
    "x.delta"
};


static uint64_t  ud_runs;
static uint64_t  ud_skipped;


static int
ud_same(const ngx_ai_relay_usage_t *x, const ngx_ai_relay_usage_t *y)
{
    return x->format == y->format
           && x->prompt_tokens == y->prompt_tokens
           && x->cached_tokens == y->cached_tokens
           && x->cache_write_5m_tokens == y->cache_write_5m_tokens
           && x->cache_write_1h_tokens == y->cache_write_1h_tokens
           && x->completion_tokens == y->completion_tokens
           && x->reasoning_tokens == y->reasoning_tokens
           && x->images == y->images
           && x->text_units == y->text_units
           && x->text_tokens == y->text_tokens
           && x->usage_events == y->usage_events
           && x->json_errors == y->json_errors
           && x->error_len == y->error_len
           && memcmp(x->error, y->error, x->error_len) == 0
           && x->found == y->found
           && x->has_error == y->has_error
           && x->estimated == y->estimated
           && x->anthropic_final == y->anthropic_final
           && x->anthropic_split == y->anthropic_split
           && x->a_input == y->a_input
           && x->a_cache_read == y->a_cache_read
           && x->a_cache_write == y->a_cache_write
           && x->a_5m == y->a_5m
           && x->a_1h == y->a_1h;
}


/* a NUL right after a digit: jansson's number lexer loses it */

static int
ud_jansson_nul(const u_char *p, size_t len)
{
    size_t  i;

    for (i = 1; i < len; i++) {
        if (p[i] == '\0' && p[i - 1] >= '0' && p[i - 1] <= '9') {
            return 1;
        }
    }

    return 0;
}


/* NULL if old and new agree on p, else what differs */

static const char *
ud_check(const u_char *p, size_t len)
{
    int                   f, rc1, rc2;
    size_t                i, nlen;
    const u_char         *name;
    ngx_ai_relay_usage_t  a, b;

    if (ud_jansson_nul(p, len)) {
        ud_skipped++;
        return NULL;
    }

    if (ngx_ai_relay_oracle_estimate(p, len)
        != ngx_ai_relay_estimate_tokens(p, len))
    {
        return "estimate";
    }

    for (f = NGX_AI_RELAY_FMT_UNKNOWN; f <= NGX_AI_RELAY_FMT_GEMINI; f++) {

        ngx_ai_relay_oracle_init(&a, f);
        ngx_ai_relay_usage_init(&b, f);

        rc1 = ngx_ai_relay_oracle_body(&a, p, len);
        rc2 = ngx_ai_relay_usage_body(&b, p, len);

        ud_runs++;

        if (rc1 != rc2 || !ud_same(&a, &b)) {
            return "body";
        }

        ngx_ai_relay_oracle_finish(&a);
        ngx_ai_relay_usage_finish(&b);

        if (!ud_same(&a, &b)) {
            return "body finish";
        }

        for (i = 0; i < sizeof(ud_names) / sizeof(ud_names[0]); i++) {
            name = (const u_char *) ud_names[i];
            nlen = name ? strlen(ud_names[i]) : 0;

            ngx_ai_relay_oracle_init(&a, f);
            ngx_ai_relay_usage_init(&b, f);

            rc1 = ngx_ai_relay_oracle_event(&a, name, nlen, p, len);
            rc2 = ngx_ai_relay_usage_event(&b, name, nlen, p, len);

            ud_runs++;

            if (rc1 != rc2 || !ud_same(&a, &b)) {
                return "event";
            }

            rc1 = ngx_ai_relay_oracle_event(&a, name, nlen, p, len);
            rc2 = ngx_ai_relay_usage_event(&b, name, nlen, p, len);

            if (rc1 != rc2 || !ud_same(&a, &b)) {
                return "second event";
            }

            ngx_ai_relay_oracle_finish(&a);
            ngx_ai_relay_usage_finish(&b);

            if (!ud_same(&a, &b)) {
                return "event finish";
            }
        }
    }

    return NULL;
}


#endif /* _NGX_AI_RELAY_USAGE_DIFF_H_INCLUDED_ */
