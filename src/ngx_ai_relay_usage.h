
/*
 * Copyright (C) ngx_ai_relay authors
 *
 * Token usage extraction from provider responses: one SSE event at a time
 * (ngx_ai_relay_usage_event()) or a whole non-stream body
 * (ngx_ai_relay_usage_body()), plus a text-based estimate for streams that
 * never report usage.  No nginx headers: built into the module and into
 * the standalone unit tests and fuzzer, with ngx_ai_relay_json_scan.c,
 * which does all the JSON reading.
 *
 * Normalised numbers, whatever the provider:
 *
 *   prompt_tokens      all input: uncached + cache reads + cache writes
 *                      (Anthropic input_tokens + cache_read_input_tokens
 *                      + cache_creation_input_tokens; Gemini
 *                      promptTokenCount + toolUsePromptTokenCount)
 *   cached_tokens      cache reads (OpenAI cached_tokens, DeepSeek
 *                      prompt_cache_hit_tokens, Anthropic
 *                      cache_read_input_tokens, Gemini
 *                      cachedContentTokenCount)
 *   cache_write_5m/1h  Anthropic cache writes; without the cache_creation
 *                      breakdown all writes count as 5m
 *   completion_tokens  all output including reasoning (Gemini
 *                      candidatesTokenCount + thoughtsTokenCount)
 *   reasoning_tokens   part of completion_tokens
 *   images             images generated (OpenAI images API)
 *
 * Which usage wins: OpenAI-style and Gemini streams take the LAST usage
 * object seen (servers that repeat cumulative usage are never summed);
 * Anthropic merges message_start's message.usage with message_delta's
 * usage, whose output_tokens is cumulative; the Responses API takes
 * response.usage (present in response.completed, .incomplete, .failed).
 *
 * Cost: one lenient pass over the event (or body),
 * ngx_ai_relay_json_walk_keys(): it finds keys outside of string values
 * (so text that merely contains "usage" never matches, while any
 * whitespace and key order does), counts the text of the format's text
 * keys itself and calls us only for the other keys we look at (a key
 * filter).  The value of the shallowest "usage" / "usageMetadata" key
 * that is an object (the last one, if several) goes to
 * ngx_ai_relay_json_walk_value(), which checks its structure and reports
 * the known counters (a few hundred ns an event in all, no
 * allocation).  Only an event or body holding an "error" key whose value
 * is an object or a string, or an event named "error", is validated whole,
 * by ngx_ai_relay_json_scan() made as strict as jansson (which read these
 * bodies before), and its error read from the validated text (rare).
 * Keys spelled with \u escapes are not recognised; counts above 2^50 or
 * negative are ignored.
 *
 * Token estimate from text (ngx_ai_relay_estimate_tokens(), and the
 * streamed text counter): we count "units" of a quarter token:
 *   ASCII byte (or JSON escape for one)          1 unit  (~4 chars/token)
 *   code point U+0080..U+07FF (Latin, Cyrillic,  2 units (~2 chars/token)
 *     Greek, Hebrew, Arabic)
 *   code point >= U+0800 (CJK, Thai, emoji...)   4 units (~1 token each)
 * tokens = ceil(units / 4), and never 0 for non-empty text.  It is a
 * heuristic for streams that report nothing, not a tokenizer.
 *
 * Streamed text counted per format: OpenAI chat "content",
 * "reasoning_content", "reasoning", "refusal", tool call "arguments";
 * completions "text"; Responses "delta" of *.delta events (not audio);
 * Anthropic "text", "thinking", "partial_json"; Gemini "text".
 *
 * Use:
 *
 *     ngx_ai_relay_usage_init(&u, NGX_AI_RELAY_FMT_OPENAI_CHAT);
 *     for each event: rc = ngx_ai_relay_usage_event(&u, name, name_len,
 *                                                    data, data_len);
 *     or once:        rc = ngx_ai_relay_usage_body(&u, body, len);
 *     ngx_ai_relay_usage_finish(&u);
 *     read the numbers.
 *
 * The reported numbers are current after every event;
 * ngx_ai_relay_usage_finish() only applies the estimate and may be called
 * again after more events.  If no usage was reported it sets "estimated"
 * and completion_tokens = text_tokens (prompt_tokens stays 0: the caller
 * estimates the prompt from the request); for an Anthropic stream cut
 * before message_delta, completion_tokens becomes the larger of the
 * reported and the estimated count (and "estimated" is set).
 */


#ifndef _NGX_AI_RELAY_USAGE_H_INCLUDED_
#define _NGX_AI_RELAY_USAGE_H_INCLUDED_


#include <sys/types.h>
#include <stddef.h>
#include <stdint.h>


#define NGX_AI_RELAY_USAGE_ERROR_LEN   256


/* ngx_ai_relay_usage_event() and ngx_ai_relay_usage_body() result bits */
#define NGX_AI_RELAY_USAGE_FOUND       0x01  /* carried a usage object */
#define NGX_AI_RELAY_USAGE_ONLY        0x02  /* OpenAI chunk with usage and
                                                no or empty "choices" */
#define NGX_AI_RELAY_USAGE_ERROR       0x04  /* an upstream error object */
#define NGX_AI_RELAY_USAGE_DONE        0x08  /* data: [DONE] */


typedef enum {
    NGX_AI_RELAY_FMT_UNKNOWN = 0,
    NGX_AI_RELAY_FMT_OPENAI_CHAT,
    NGX_AI_RELAY_FMT_OPENAI_COMPLETIONS,
    NGX_AI_RELAY_FMT_OPENAI_EMBEDDINGS,
    NGX_AI_RELAY_FMT_OPENAI_RESPONSES,
    NGX_AI_RELAY_FMT_OPENAI_IMAGES,
    NGX_AI_RELAY_FMT_ANTHROPIC_MESSAGES,
    NGX_AI_RELAY_FMT_GEMINI
} ngx_ai_relay_format_e;


typedef struct {
    ngx_ai_relay_format_e  format;

    int64_t                prompt_tokens;
    int64_t                cached_tokens;
    int64_t                cache_write_5m_tokens;
    int64_t                cache_write_1h_tokens;
    int64_t                completion_tokens;
    int64_t                reasoning_tokens;
    int64_t                images;

    /* generated text seen so far, in quarter tokens, and its estimate */
    int64_t                text_units;
    int64_t                text_tokens;

    uint32_t               usage_events;   /* events that carried usage */
    uint32_t               json_errors;    /* invalid usage or error JSON */

    /* the first upstream error: "type: message", sanitised, truncated */
    size_t                 error_len;
    u_char                 error[NGX_AI_RELAY_USAGE_ERROR_LEN];

    unsigned               found:1;        /* some usage was reported */
    unsigned               has_error:1;
    unsigned               estimated:1;    /* set by finish(), see above */

    /* private */
    unsigned               anthropic_final:1;
    unsigned               anthropic_split:1;

    int64_t                a_input;
    int64_t                a_cache_read;
    int64_t                a_cache_write;
    int64_t                a_5m;
    int64_t                a_1h;
} ngx_ai_relay_usage_t;


void ngx_ai_relay_usage_init(ngx_ai_relay_usage_t *u,
    ngx_ai_relay_format_e format);
int ngx_ai_relay_usage_event(ngx_ai_relay_usage_t *u, const u_char *name,
    size_t name_len, const u_char *data, size_t len);
int ngx_ai_relay_usage_body(ngx_ai_relay_usage_t *u, const u_char *body,
    size_t len);
void ngx_ai_relay_usage_finish(ngx_ai_relay_usage_t *u);

int64_t ngx_ai_relay_estimate_tokens(const u_char *text, size_t len);

#if (NGX_AI_RELAY_USAGE_TEST)
/* unit tests: how many texts the error path has scanned */
extern size_t  ngx_ai_relay_usage_error_scans;
const char *ngx_ai_relay_usage_check_tables(void);
#endif


#endif /* _NGX_AI_RELAY_USAGE_H_INCLUDED_ */
