
/*
 * Copyright (C) ngx_ai_relay authors
 */


#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ngx_ai_relay_json_scan.h"

#if (defined __SSE2__ && defined __GNUC__)
#include <emmintrin.h>
#define NGX_AI_RELAY_JSON_SSE2  1
#endif


/* the hot path of the lenient walk is inlined into its loops */
#if (defined __GNUC__)
#define ngx_ai_relay_json_hot  inline __attribute__((always_inline))
#else
#define ngx_ai_relay_json_hot  inline
#endif

#define NGX_AI_RELAY_JSON_ONES   0x0101010101010101ULL
#define NGX_AI_RELAY_JSON_HIGHS  0x8080808080808080ULL

/* nonzero if any byte of x is below n (n <= 128) */
#define ngx_ai_relay_json_has_less(x, n)                                     \
    (((x) - NGX_AI_RELAY_JSON_ONES * (n)) & ~(x) & NGX_AI_RELAY_JSON_HIGHS)

#define ngx_ai_relay_json_has_byte(x, b)                                     \
    ngx_ai_relay_json_has_less((x) ^ (NGX_AI_RELAY_JSON_ONES * (b)), 1)

/* nonzero if any byte needs the slow path: < 0x20, '"', '\\' or >= 0x80 */
#define ngx_ai_relay_json_special(x)                                         \
    (ngx_ai_relay_json_has_less(x, 0x20)                                     \
     | ngx_ai_relay_json_has_byte(x, '"')                                    \
     | ngx_ai_relay_json_has_byte(x, '\\')                                   \
     | ((x) & NGX_AI_RELAY_JSON_HIGHS))

#define ngx_ai_relay_json_ws(c)                                              \
    ((c) == ' ' || (c) == '\n' || (c) == '\r' || (c) == '\t')

#define ngx_ai_relay_json_skip_ws(p, end)                                    \
    while ((p) < (end) && ngx_ai_relay_json_ws(*(p))) { (p)++; }

#define ngx_ai_relay_json_digit(c)  ((c) >= '0' && (c) <= '9')

#define NGX_AI_RELAY_JSON_KEY_SHOW  64

/* reals written longer are not counts: see number_count() */
#define NGX_AI_RELAY_JSON_REAL_LEN  64


typedef struct {
    const unsigned char         *p;
    const unsigned char         *end;
    unsigned char                buf[4];
    unsigned                     n;
    unsigned                     i;
} ngx_ai_relay_json_cursor_t;


static int ngx_ai_relay_json_fail(ngx_ai_relay_json_scan_t *scan, int rc,
    const char *err, size_t offset);
static const unsigned char *ngx_ai_relay_json_string(
    ngx_ai_relay_json_scan_t *scan, const unsigned char *body,
    const unsigned char *p, const unsigned char *end, uint64_t *counts,
    unsigned *escaped);
static const unsigned char *ngx_ai_relay_json_number(
    ngx_ai_relay_json_scan_t *scan, const unsigned char *body,
    const unsigned char *p, const unsigned char *end);
static int ngx_ai_relay_json_number_fits(const unsigned char *p,
    const unsigned char *end);
static const unsigned char *ngx_ai_relay_json_number_end(
    const unsigned char *p, const unsigned char *end);
static const unsigned char *ngx_ai_relay_json_lax_value(
    ngx_ai_relay_json_lax_t *lax, const unsigned char *p,
    const unsigned char *end, unsigned level);
static inline const unsigned char *ngx_ai_relay_json_find_special(
    const unsigned char *p, const unsigned char *end, int ascii);
static inline const unsigned char *ngx_ai_relay_json_lax_string_end(
    const unsigned char *p, const unsigned char *end);
static ngx_ai_relay_json_hot const unsigned char *ngx_ai_relay_json_count(
    const unsigned char *p, const unsigned char *end, uint64_t *counts);
static ngx_ai_relay_json_hot int ngx_ai_relay_json_key_pass(
    const uint64_t *filter, const unsigned char *k, size_t len);
static const unsigned char *ngx_ai_relay_json_literal(
    ngx_ai_relay_json_scan_t *scan, const unsigned char *body,
    const unsigned char *p, const unsigned char *end, const char *lit,
    size_t len);
#if (NGX_AI_RELAY_JSON_SSE2)
static inline const unsigned char *ngx_ai_relay_json_plain_run(
    const unsigned char *p, const unsigned char *end);
#endif
static inline size_t ngx_ai_relay_json_utf8_len(const unsigned char *p,
    const unsigned char *end);
static uint32_t ngx_ai_relay_json_hex4(const unsigned char *p,
    const unsigned char *end);
static size_t ngx_ai_relay_json_decode_escape(const unsigned char **pp,
    const unsigned char *end, unsigned char *out);
static int ngx_ai_relay_json_type_of(unsigned char c);
static int ngx_ai_relay_json_cursor_next(ngx_ai_relay_json_cursor_t *c);
static uint32_t ngx_ai_relay_json_hash(const unsigned char *p, size_t len,
    unsigned escaped);
static int ngx_ai_relay_json_key_eq(const unsigned char *p, size_t len,
    unsigned escaped, const unsigned char *name, size_t name_len);
static int ngx_ai_relay_json_keys_eq(const unsigned char *a, size_t alen,
    unsigned aesc, const unsigned char *b, size_t blen, unsigned besc);
static const unsigned char *ngx_ai_relay_json_skip_string(
    const unsigned char *p, const unsigned char *end);
static const unsigned char *ngx_ai_relay_json_skip_value(
    const unsigned char *p, const unsigned char *end);
static size_t ngx_ai_relay_json_insert_pos(
    const ngx_ai_relay_json_scan_t *scan);
static int ngx_ai_relay_json_edit_after(const ngx_ai_relay_json_edit_t *a,
    const ngx_ai_relay_json_edit_t *b);


/* 1: a byte that can stand for itself inside a string, in the fast path */
static const unsigned char  ngx_ai_relay_json_plain[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,    /* 0x00 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,    /* 0x10 */
    1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,    /* 0x20 '"' */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,    /* 0x30 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,    /* 0x40 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1,    /* 0x50 '\\' */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,    /* 0x60 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,    /* 0x70 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,    /* 0x80 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0
};


/* what a byte outside of strings does to the depth: [ { +1, ] } -1 */
static const signed char  ngx_ai_relay_json_depth[256] = {
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


static const char  ngx_ai_relay_json_usage_opts[] =
    ",\"stream_options\":{\"include_usage\":true}";
static const char  ngx_ai_relay_json_usage_obj[] =
    "{\"include_usage\":true}";
static const char  ngx_ai_relay_json_usage_field[] =
    "\"include_usage\":true,";
static const char  ngx_ai_relay_json_true[] = "true";


void
ngx_ai_relay_json_scan_init(ngx_ai_relay_json_scan_t *scan,
    ngx_ai_relay_json_member_t *members, size_t members_max)
{
    memset(scan, 0, sizeof(ngx_ai_relay_json_scan_t));

    scan->members = members;
    scan->members_max = members_max;
    scan->max_depth = NGX_AI_RELAY_JSON_DEFAULT_DEPTH;
}


int
ngx_ai_relay_json_scan(ngx_ai_relay_json_scan_t *scan,
    const unsigned char *body, size_t len)
{
    int                          top;
    size_t                       i, j;
    unsigned                     depth, max_depth, escaped;
    uint64_t                     counts[2], kcounts[2], mark[2];
    uint64_t                     stack[NGX_AI_RELAY_JSON_DEPTH_LIMIT / 64];
    unsigned char                c;
    const unsigned char         *p, *end, *q;
    ngx_ai_relay_json_member_t  *m, *members;

    scan->nmembers = 0;
    scan->obj_start = 0;
    scan->obj_end = 0;
    scan->str_ascii = 0;
    scan->str_non_ascii = 0;
    scan->rc = NGX_AI_RELAY_JSON_OK;
    scan->err = NULL;
    scan->err_offset = 0;
    scan->err_member = 0;
    scan->nadded = 0;

    max_depth = scan->max_depth;

    if (max_depth == 0 || max_depth > NGX_AI_RELAY_JSON_DEPTH_LIMIT) {
        max_depth = NGX_AI_RELAY_JSON_DEPTH_LIMIT;
    }


    members = scan->members;
    m = NULL;
    depth = 0;
    counts[0] = 0;
    counts[1] = 0;
    mark[0] = 0;
    mark[1] = 0;

    if (len == 0) {
        /* body may be NULL */
        return ngx_ai_relay_json_fail(scan, NGX_AI_RELAY_JSON_ERR_SYNTAX,
                                      "unexpected end of input", 0);
    }

    p = body;
    end = body + len;

    ngx_ai_relay_json_skip_ws(p, end);

    top = (p < end && *p == '{');

    if (top) {
        scan->obj_start = p - body;
    }

value:

    /* p is at the first byte of a value, whitespace skipped */

    if (p == end) {
        goto eof;
    }

    if (depth == 1 && m != NULL) {
        m->value_start = p - body;
        m->type = ngx_ai_relay_json_type_of(*p);
        mark[0] = counts[0];
        mark[1] = counts[1];
    }

    switch (*p) {

    case '{':
    case '[':
        if (depth >= max_depth - 1) {

            if (depth == max_depth) {
                return ngx_ai_relay_json_fail(scan,
                                              NGX_AI_RELAY_JSON_ERR_DEPTH,
                                              "nesting too deep", p - body);
            }

            if (scan->value_depth) {

                /* only an empty container may be this deep */

                q = p + 1;
                ngx_ai_relay_json_skip_ws(q, end);

                if (q < end && *q != (*p == '{' ? '}' : ']')) {
                    return ngx_ai_relay_json_fail(scan,
                                                  NGX_AI_RELAY_JSON_ERR_DEPTH,
                                                  "nesting too deep",
                                                  q - body);
                }
            }
        }

        c = *p++;

        if (c == '{') {
            stack[depth >> 6] |= (uint64_t) 1 << (depth & 63);

        } else {
            stack[depth >> 6] &= ~((uint64_t) 1 << (depth & 63));
        }

        depth++;

        ngx_ai_relay_json_skip_ws(p, end);

        if (c == '{') {

            if (p < end && *p == '}') {
                p++;
                depth--;
                goto done;
            }

            goto key;
        }

        if (p < end && *p == ']') {
            p++;
            depth--;
            goto done;
        }

        goto value;

    case '"':
        p = ngx_ai_relay_json_string(scan, body, p + 1, end, counts,
                                     &escaped);
        if (p == NULL) {
            return scan->rc;
        }

        if (depth == 1 && m != NULL) {
            m->value_escaped = escaped;
        }

        goto done;

    case '-':
    case '0':
    case '1':
    case '2':
    case '3':
    case '4':
    case '5':
    case '6':
    case '7':
    case '8':
    case '9':
        p = ngx_ai_relay_json_number(scan, body, p, end);
        break;

    case 't':
        p = ngx_ai_relay_json_literal(scan, body, p, end, "true", 4);
        break;

    case 'f':
        p = ngx_ai_relay_json_literal(scan, body, p, end, "false", 5);
        break;

    case 'n':
        p = ngx_ai_relay_json_literal(scan, body, p, end, "null", 4);
        break;

    default:
        goto unexpected;
    }

    if (p == NULL) {
        return scan->rc;
    }

done:

    /* a value has just ended at p; depth is that of its container */

    if (depth == 1 && m != NULL) {
        m->value_end = p - body;
        m->str_ascii = counts[0] - mark[0];
        m->str_non_ascii = counts[1] - mark[1];
        m = NULL;
    }

    if (depth == 0) {
        goto finish;
    }

    ngx_ai_relay_json_skip_ws(p, end);

    if (p == end) {
        goto eof;
    }

    if (stack[(depth - 1) >> 6] & ((uint64_t) 1 << ((depth - 1) & 63))) {

        if (*p == ',') {
            p++;
            ngx_ai_relay_json_skip_ws(p, end);
            goto key;
        }

        if (*p == '}') {
            p++;
            depth--;
            goto done;
        }

        goto unexpected;
    }

    if (*p == ',') {
        p++;
        ngx_ai_relay_json_skip_ws(p, end);
        goto value;
    }

    if (*p == ']') {
        p++;
        depth--;
        goto done;
    }

    goto unexpected;

key:

    if (p == end) {
        goto eof;
    }

    if (*p != '"') {
        goto unexpected;
    }

    q = p + 1;

    kcounts[0] = 0;
    kcounts[1] = 0;

    p = ngx_ai_relay_json_string(scan, body, q, end, kcounts, &escaped);
    if (p == NULL) {
        return scan->rc;
    }

    if (depth == 1 && top && members != NULL) {

        if (scan->nmembers == scan->members_max) {
            return ngx_ai_relay_json_fail(scan, NGX_AI_RELAY_JSON_ERR_MEMBERS,
                                          "too many top-level members",
                                          q - 1 - body);
        }

        m = &members[scan->nmembers++];

        m->key_start = q - body;
        m->key_end = p - 1 - body;
        m->value_start = 0;
        m->value_end = 0;
        m->str_ascii = 0;
        m->str_non_ascii = 0;
        m->key_hash = 0;
        m->type = NGX_AI_RELAY_JSON_NONE;
        m->key_escaped = escaped;
        m->value_escaped = 0;
    }

    ngx_ai_relay_json_skip_ws(p, end);

    if (p == end) {
        goto eof;
    }

    if (*p != ':') {
        goto unexpected;
    }

    p++;

    ngx_ai_relay_json_skip_ws(p, end);

    goto value;

finish:

    if (top) {
        scan->obj_end = p - 1 - body;
    }

    scan->str_ascii = counts[0];
    scan->str_non_ascii = counts[1];

    ngx_ai_relay_json_skip_ws(p, end);

    if (p != end) {
        return ngx_ai_relay_json_fail(scan, NGX_AI_RELAY_JSON_ERR_SYNTAX,
                                      "unexpected data after JSON value",
                                      p - body);
    }

    if (!top) {
        q = body;
        ngx_ai_relay_json_skip_ws(q, end);

        return ngx_ai_relay_json_fail(scan, NGX_AI_RELAY_JSON_ERR_NOT_OBJECT,
                                      "not an object", q - body);
    }

    if (members == NULL) {
        return NGX_AI_RELAY_JSON_OK;
    }

    for (i = 0; i < scan->nmembers; i++) {
        m = &members[i];

        m->key_hash = ngx_ai_relay_json_hash(body + m->key_start,
                                             m->key_end - m->key_start,
                                             m->key_escaped);

        for (j = 0; j < i; j++) {
            if (members[j].key_hash == m->key_hash
                && ngx_ai_relay_json_keys_eq(body + m->key_start,
                                             m->key_end - m->key_start,
                                             m->key_escaped,
                                             body + members[j].key_start,
                                             members[j].key_end
                                             - members[j].key_start,
                                             members[j].key_escaped))
            {
                scan->err_member = i;

                return ngx_ai_relay_json_fail(scan,
                                              NGX_AI_RELAY_JSON_ERR_DUPLICATE,
                                              "duplicate key",
                                              m->key_start - 1);
            }
        }
    }

    return NGX_AI_RELAY_JSON_OK;

eof:

    return ngx_ai_relay_json_fail(scan, NGX_AI_RELAY_JSON_ERR_SYNTAX,
                                  "unexpected end of input", len);

unexpected:

    return ngx_ai_relay_json_fail(scan, NGX_AI_RELAY_JSON_ERR_SYNTAX,
                                  "unexpected character", p - body);
}


static int
ngx_ai_relay_json_fail(ngx_ai_relay_json_scan_t *scan, int rc,
    const char *err, size_t offset)
{
    scan->rc = rc;
    scan->err = err;
    scan->err_offset = offset;

    return rc;
}


/*
 * p is just past the opening quote; returns the byte after the closing
 * quote, or NULL on error.  counts[0] and counts[1] get the ASCII and the
 * non-ASCII code points of the decoded string.
 */

static const unsigned char *
ngx_ai_relay_json_string(ngx_ai_relay_json_scan_t *scan,
    const unsigned char *body, const unsigned char *p,
    const unsigned char *end, uint64_t *counts, unsigned *escaped)
{
    size_t                n;
    uint32_t              cp, lo;
    uint64_t              w, skip, esc_ascii, non_ascii;
    const unsigned char  *start, *bs;

    start = p;
    skip = 0;          /* raw bytes that are not one ASCII code point each */
    esc_ascii = 0;     /* ASCII code points written as escapes */
    non_ascii = 0;
    *escaped = 0;

#if (NGX_AI_RELAY_JSON_SSE2)
    /*
     * long plain runs (base64 images) mostly start the string; after an
     * escape or a non-ASCII character the 8-byte loop is cheaper
     */
    p = ngx_ai_relay_json_plain_run(p, end);
#endif

    for ( ;; ) {

        /* runs of plain ASCII, 8 bytes at a time */

        while (end - p >= 8) {
            memcpy(&w, p, 8);

            if (ngx_ai_relay_json_special(w)) {
                break;
            }

            p += 8;
        }

        while (p < end && ngx_ai_relay_json_plain[*p]) {
            p++;
        }

        if (p == end) {
            ngx_ai_relay_json_fail(scan, NGX_AI_RELAY_JSON_ERR_SYNTAX,
                                   "unexpected end of input", p - body);
            return NULL;
        }

        if (*p == '"') {
            break;
        }

        if (*p == '\\') {
            bs = p++;
            *escaped = 1;

            if (p == end) {
                ngx_ai_relay_json_fail(scan, NGX_AI_RELAY_JSON_ERR_SYNTAX,
                                       "unexpected end of input", p - body);
                return NULL;
            }

            switch (*p) {

            case '"':
            case '\\':
            case '/':
            case 'b':
            case 'f':
            case 'n':
            case 'r':
            case 't':
                p++;
                skip += 2;
                esc_ascii++;
                continue;

            case 'u':
                cp = ngx_ai_relay_json_hex4(p + 1, end);
                if (cp > 0xffff) {
                    goto bad_unicode;
                }

                p += 5;

                if (cp >= 0xdc00 && cp <= 0xdfff) {
                    goto bad_surrogate;
                }

                if (cp >= 0xd800 && cp <= 0xdbff) {

                    if (end - p < 2 || p[0] != '\\' || p[1] != 'u') {
                        goto bad_surrogate;
                    }

                    bs = p;

                    lo = ngx_ai_relay_json_hex4(p + 2, end);
                    if (lo > 0xffff) {
                        goto bad_unicode;
                    }

                    if (lo < 0xdc00 || lo > 0xdfff) {
                        goto bad_surrogate;
                    }

                    p += 6;
                    skip += 12;
                    non_ascii++;
                    continue;
                }

                skip += 6;

                if (cp == 0 && scan->reject_nul) {
                    ngx_ai_relay_json_fail(scan, NGX_AI_RELAY_JSON_ERR_SYNTAX,
                                           "\\u0000 in string", bs - body);
                    return NULL;
                }

                if (cp < 0x80) {
                    esc_ascii++;

                } else {
                    non_ascii++;
                }

                continue;

            default:
                ngx_ai_relay_json_fail(scan, NGX_AI_RELAY_JSON_ERR_SYNTAX,
                                       "invalid escape", bs - body);
                return NULL;
            }
        }

        if (*p < 0x20) {
            ngx_ai_relay_json_fail(scan, NGX_AI_RELAY_JSON_ERR_SYNTAX,
                                   "control character in string", p - body);
            return NULL;
        }

        /* a run of non-ASCII characters */

        do {
            n = ngx_ai_relay_json_utf8_len(p, end);
            if (n == 0) {
                ngx_ai_relay_json_fail(scan, NGX_AI_RELAY_JSON_ERR_UTF8,
                                       "invalid UTF-8", p - body);
                return NULL;
            }

            p += n;
            skip += n;
            non_ascii++;

        } while (p < end && *p >= 0x80);
    }

    counts[0] += (uint64_t) (p - start) - skip + esc_ascii;
    counts[1] += non_ascii;

    return p + 1;

bad_unicode:

    ngx_ai_relay_json_fail(scan, NGX_AI_RELAY_JSON_ERR_SYNTAX,
                           "invalid \\u escape", bs - body);
    return NULL;

bad_surrogate:

    ngx_ai_relay_json_fail(scan, NGX_AI_RELAY_JSON_ERR_SYNTAX,
                           "invalid surrogate escape", bs - body);
    return NULL;
}


static const unsigned char *
ngx_ai_relay_json_number(ngx_ai_relay_json_scan_t *scan,
    const unsigned char *body, const unsigned char *p,
    const unsigned char *end)
{
    const unsigned char  *start;

    start = p;

    if (*p == '-') {
        p++;
    }

    if (p == end) {
        goto eof;
    }

    if (*p == '0') {
        p++;

    } else if (*p >= '1' && *p <= '9') {
        do {
            p++;
        } while (p < end && ngx_ai_relay_json_digit(*p));

    } else {
        goto invalid;
    }

    if (p < end && *p == '.') {
        p++;

        if (p == end) {
            goto eof;
        }

        if (!ngx_ai_relay_json_digit(*p)) {
            goto invalid;
        }

        do {
            p++;
        } while (p < end && ngx_ai_relay_json_digit(*p));
    }

    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;

        if (p < end && (*p == '+' || *p == '-')) {
            p++;
        }

        if (p == end) {
            goto eof;
        }

        if (!ngx_ai_relay_json_digit(*p)) {
            goto invalid;
        }

        do {
            p++;
        } while (p < end && ngx_ai_relay_json_digit(*p));
    }

    if (scan->reject_overflow && !ngx_ai_relay_json_number_fits(start, p)) {
        ngx_ai_relay_json_fail(scan, NGX_AI_RELAY_JSON_ERR_RANGE,
                               "number out of range", start - body);
        return NULL;
    }

    return p;

eof:

    ngx_ai_relay_json_fail(scan, NGX_AI_RELAY_JSON_ERR_SYNTAX,
                           "unexpected end of input", p - body);
    return NULL;

invalid:

    ngx_ai_relay_json_fail(scan, NGX_AI_RELAY_JSON_ERR_SYNTAX,
                           "invalid number", p - body);
    return NULL;
}


static const unsigned char *
ngx_ai_relay_json_literal(ngx_ai_relay_json_scan_t *scan,
    const unsigned char *body, const unsigned char *p,
    const unsigned char *end, const char *lit, size_t len)
{
    size_t  i;

    for (i = 0; i < len; i++) {

        if (p + i == end) {
            ngx_ai_relay_json_fail(scan, NGX_AI_RELAY_JSON_ERR_SYNTAX,
                                   "unexpected end of input", end - body);
            return NULL;
        }

        if (p[i] != (unsigned char) lit[i]) {
            ngx_ai_relay_json_fail(scan, NGX_AI_RELAY_JSON_ERR_SYNTAX,
                                   "unexpected character", p + i - body);
            return NULL;
        }
    }

    return p + len;
}


/*
 * reject_overflow: p..end is a valid number.  An integer must fit in
 * int64_t; any other number must not round beyond DBL_MAX (strtod()
 * overflow, as jansson checks it).  Long numbers are rewritten as their
 * first 40 significant digits and a decimal exponent, which decides the
 * same but for the last unit in the last place of DBL_MAX.
 */

static int
ngx_ai_relay_json_number_fits(const unsigned char *p, const unsigned char *end)
{
    int                   neg, real, frac;
    char                  buf[80];
    double                d;
    size_t                n, digits, int_len, pos;
    int64_t               exp, e, sign, first;
    const unsigned char  *q;

    neg = (*p == '-');
    real = 0;

    for (q = p; q < end; q++) {
        if (*q == '.' || *q == 'e' || *q == 'E') {
            real = 1;
            break;
        }
    }

    if (!real) {
        q = p + neg;
        n = end - q;

        if (n != 19) {
            return n < 19;
        }

        return memcmp(q, neg ? "9223372036854775808" : "9223372036854775807",
                      19) <= 0;
    }

    n = end - p;

    if (n < sizeof(buf)) {
        memcpy(buf, p, n);
        buf[n] = '\0';

        d = strtod(buf, NULL);

        return !isinf(d);
    }

    /* the number is 0.DDD * 10^exp: DDD its significant digits */

    q = p + neg;
    frac = 0;
    int_len = 0;
    first = -1;
    pos = 0;
    digits = 0;

    n = 0;
    buf[n++] = '0';
    buf[n++] = '.';

    for ( ; q < end && (ngx_ai_relay_json_digit(*q) || *q == '.'); q++) {

        if (*q == '.') {
            frac = 1;
            continue;
        }

        int_len += !frac;

        if (first < 0 && *q == '0') {
            pos++;
            continue;
        }

        if (first < 0) {
            first = pos;
        }

        if (digits < 40) {
            buf[n++] = *q;
        }

        digits++;
        pos++;
    }

    if (first < 0) {
        return 1;
    }

    exp = (int64_t) int_len - first;

    if (q < end) {
        /* 'e' or 'E' */
        q++;

        sign = 1;

        if (*q == '-' || *q == '+') {
            sign = (*q == '-') ? -1 : 1;
            q++;
        }

        e = 0;

        for ( ; q < end; q++) {
            if (e < 1000000) {
                e = e * 10 + (*q - '0');
            }
        }

        exp += sign * e;
    }

    if (exp > 310) {
        return 0;
    }

    if (exp < 300) {
        return 1;
    }

    snprintf(buf + n, sizeof(buf) - n, "e%d", (int) exp);

    d = strtod(buf, NULL);

    return !isinf(d);
}


#if (NGX_AI_RELAY_JSON_SSE2)

/*
 * The first byte at or after p that is not plain ASCII in a string (below
 * 0x20, '"', '\\' or 0x80 and above), or a point less than 16 bytes
 * before end from which the caller goes on.  Long strings (base64 images)
 * are read 64 bytes at a time.
 */

static inline const unsigned char *
ngx_ai_relay_json_plain_run(const unsigned char *p, const unsigned char *end)
{
    int      m;
    __m128i  v0, v1, v2, v3, space, quote, bslash;

    /* signed: below 0x20 also means 0x80 and above */
    space = _mm_set1_epi8(0x20);
    quote = _mm_set1_epi8('"');
    bslash = _mm_set1_epi8('\\');

#define ngx_ai_relay_json_simd_special(v)                                    \
    _mm_or_si128(_mm_cmplt_epi8(v, space),                                   \
                 _mm_or_si128(_mm_cmpeq_epi8(v, quote),                      \
                              _mm_cmpeq_epi8(v, bslash)))

    while (end - p >= 64) {
        v0 = _mm_loadu_si128((const __m128i *) p);
        v1 = _mm_loadu_si128((const __m128i *) (p + 16));
        v2 = _mm_loadu_si128((const __m128i *) (p + 32));
        v3 = _mm_loadu_si128((const __m128i *) (p + 48));

        v0 = ngx_ai_relay_json_simd_special(v0);
        v1 = ngx_ai_relay_json_simd_special(v1);
        v2 = ngx_ai_relay_json_simd_special(v2);
        v3 = ngx_ai_relay_json_simd_special(v3);

        if (_mm_movemask_epi8(_mm_or_si128(_mm_or_si128(v0, v1),
                                           _mm_or_si128(v2, v3))))
        {
            break;
        }

        p += 64;
    }

    while (end - p >= 16) {
        v0 = _mm_loadu_si128((const __m128i *) p);
        m = _mm_movemask_epi8(ngx_ai_relay_json_simd_special(v0));

        if (m) {
            return p + __builtin_ctz(m);
        }

        p += 16;
    }

#undef ngx_ai_relay_json_simd_special

    return p;
}

#endif


/* length of the well-formed UTF-8 sequence at p (Unicode table 3-7), or 0 */

static inline size_t
ngx_ai_relay_json_utf8_len(const unsigned char *p, const unsigned char *end)
{
    size_t         i, n;
    unsigned char  c, lo, hi;

    c = p[0];

    if (c < 0x80) {
        return 1;
    }

    if (c < 0xc2) {
        return 0;
    }

    if (c < 0xe0) {
        n = 2;
        lo = 0x80;
        hi = 0xbf;

    } else if (c < 0xf0) {
        n = 3;
        lo = (c == 0xe0) ? 0xa0 : 0x80;
        hi = (c == 0xed) ? 0x9f : 0xbf;

    } else if (c < 0xf5) {
        n = 4;
        lo = (c == 0xf0) ? 0x90 : 0x80;
        hi = (c == 0xf4) ? 0x8f : 0xbf;

    } else {
        return 0;
    }

    if ((size_t) (end - p) < n || p[1] < lo || p[1] > hi) {
        return 0;
    }

    for (i = 2; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80) {
            return 0;
        }
    }

    return n;
}


/* four hex digits at p, or 0x10000 if there are none */

static uint32_t
ngx_ai_relay_json_hex4(const unsigned char *p, const unsigned char *end)
{
    uint32_t       v;
    unsigned       i;
    unsigned char  c;

    if (end - p < 4) {
        return 0x10000;
    }

    v = 0;

    for (i = 0; i < 4; i++) {
        c = p[i];

        if (c >= '0' && c <= '9') {
            v = (v << 4) | (uint32_t) (c - '0');

        } else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f') {
            v = (v << 4) | (uint32_t) ((c | 0x20) - 'a' + 10);

        } else {
            return 0x10000;
        }
    }

    return v;
}


/*
 * *pp is at a backslash: decodes one escape (a surrogate pair is one) into
 * out as UTF-8, advances *pp and returns the number of bytes, or 0 if the
 * escape is invalid.
 */

static size_t
ngx_ai_relay_json_decode_escape(const unsigned char **pp,
    const unsigned char *end, unsigned char *out)
{
    uint32_t              cp, lo;
    const unsigned char  *p;

    p = *pp + 1;

    if (p >= end) {
        return 0;
    }

    switch (*p) {

    case '"':
    case '\\':
    case '/':
        out[0] = *p;
        break;

    case 'b':
        out[0] = '\b';
        break;

    case 'f':
        out[0] = '\f';
        break;

    case 'n':
        out[0] = '\n';
        break;

    case 'r':
        out[0] = '\r';
        break;

    case 't':
        out[0] = '\t';
        break;

    case 'u':
        cp = ngx_ai_relay_json_hex4(p + 1, end);
        if (cp > 0xffff || (cp >= 0xdc00 && cp <= 0xdfff)) {
            return 0;
        }

        p += 5;

        if (cp >= 0xd800 && cp <= 0xdbff) {

            if (end - p < 2 || p[0] != '\\' || p[1] != 'u') {
                return 0;
            }

            lo = ngx_ai_relay_json_hex4(p + 2, end);
            if (lo < 0xdc00 || lo > 0xdfff) {
                return 0;
            }

            p += 6;
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
        }

        *pp = p;

        if (cp < 0x80) {
            out[0] = (unsigned char) cp;
            return 1;
        }

        if (cp < 0x800) {
            out[0] = (unsigned char) (0xc0 | (cp >> 6));
            out[1] = (unsigned char) (0x80 | (cp & 0x3f));
            return 2;
        }

        if (cp < 0x10000) {
            out[0] = (unsigned char) (0xe0 | (cp >> 12));
            out[1] = (unsigned char) (0x80 | ((cp >> 6) & 0x3f));
            out[2] = (unsigned char) (0x80 | (cp & 0x3f));
            return 3;
        }

        out[0] = (unsigned char) (0xf0 | (cp >> 18));
        out[1] = (unsigned char) (0x80 | ((cp >> 12) & 0x3f));
        out[2] = (unsigned char) (0x80 | ((cp >> 6) & 0x3f));
        out[3] = (unsigned char) (0x80 | (cp & 0x3f));
        return 4;

    default:
        return 0;
    }

    *pp = p + 1;

    return 1;
}


static int
ngx_ai_relay_json_type_of(unsigned char c)
{
    switch (c) {

    case '"':
        return NGX_AI_RELAY_JSON_STRING;

    case '{':
        return NGX_AI_RELAY_JSON_OBJECT;

    case '[':
        return NGX_AI_RELAY_JSON_ARRAY;

    case 't':
        return NGX_AI_RELAY_JSON_TRUE;

    case 'f':
        return NGX_AI_RELAY_JSON_FALSE;

    case 'n':
        return NGX_AI_RELAY_JSON_NULL;

    default:
        if (c == '-' || ngx_ai_relay_json_digit(c)) {
            return NGX_AI_RELAY_JSON_NUMBER;
        }

        return NGX_AI_RELAY_JSON_NONE;
    }
}


/* next decoded byte of an escaped string, or -1 at its end */

static int
ngx_ai_relay_json_cursor_next(ngx_ai_relay_json_cursor_t *c)
{
    if (c->i < c->n) {
        return c->buf[c->i++];
    }

    if (c->p >= c->end) {
        return -1;
    }

    if (*c->p != '\\') {
        return *c->p++;
    }

    c->n = ngx_ai_relay_json_decode_escape(&c->p, c->end, c->buf);

    if (c->n == 0) {
        /* invalid escape: take the backslash literally */
        return *c->p++;
    }

    c->i = 1;

    return c->buf[0];
}


/* FNV-1a over the decoded bytes */

static uint32_t
ngx_ai_relay_json_hash(const unsigned char *p, size_t len, unsigned escaped)
{
    int                         ch;
    size_t                      i;
    uint32_t                    h;
    ngx_ai_relay_json_cursor_t  c;

    h = 2166136261u;

    if (!escaped) {
        for (i = 0; i < len; i++) {
            h = (h ^ p[i]) * 16777619u;
        }

        return h;
    }

    c.p = p;
    c.end = p + len;
    c.n = 0;
    c.i = 0;

    while ((ch = ngx_ai_relay_json_cursor_next(&c)) >= 0) {
        h = (h ^ (uint32_t) ch) * 16777619u;
    }

    return h;
}


static int
ngx_ai_relay_json_key_eq(const unsigned char *p, size_t len, unsigned escaped,
    const unsigned char *name, size_t name_len)
{
    int                         ch;
    size_t                      i;
    ngx_ai_relay_json_cursor_t  c;

    if (!escaped) {
        return len == name_len && memcmp(p, name, len) == 0;
    }

    if (len < name_len) {
        /* decoding never makes a string longer */
        return 0;
    }

    c.p = p;
    c.end = p + len;
    c.n = 0;
    c.i = 0;

    for (i = 0; i < name_len; i++) {
        ch = ngx_ai_relay_json_cursor_next(&c);

        if (ch != name[i]) {
            return 0;
        }
    }

    return ngx_ai_relay_json_cursor_next(&c) == -1;
}


static int
ngx_ai_relay_json_keys_eq(const unsigned char *a, size_t alen, unsigned aesc,
    const unsigned char *b, size_t blen, unsigned besc)
{
    int                         ca, cb;
    ngx_ai_relay_json_cursor_t  x, y;

    if (!aesc) {
        return ngx_ai_relay_json_key_eq(b, blen, besc, a, alen);
    }

    if (!besc) {
        return ngx_ai_relay_json_key_eq(a, alen, aesc, b, blen);
    }

    x.p = a;
    x.end = a + alen;
    x.n = 0;
    x.i = 0;

    y.p = b;
    y.end = b + blen;
    y.n = 0;
    y.i = 0;

    do {
        ca = ngx_ai_relay_json_cursor_next(&x);
        cb = ngx_ai_relay_json_cursor_next(&y);

        if (ca != cb) {
            return 0;
        }

    } while (ca >= 0);

    return 1;
}


size_t
ngx_ai_relay_json_strerror(const ngx_ai_relay_json_scan_t *scan,
    const unsigned char *body, char *buf, size_t size)
{
    int                                n;
    char                               key[NGX_AI_RELAY_JSON_KEY_SHOW + 4];
    size_t                             i, len;
    const ngx_ai_relay_json_member_t  *m;

    if (size == 0) {
        return 0;
    }

    switch (scan->rc) {

    case NGX_AI_RELAY_JSON_OK:
        n = snprintf(buf, size, "ok");
        break;

    case NGX_AI_RELAY_JSON_ERR_NOT_OBJECT:
        n = snprintf(buf, size, "not an object");
        break;

    case NGX_AI_RELAY_JSON_ERR_DUPLICATE:
        m = &scan->members[scan->err_member];
        len = m->key_end - m->key_start;

        if (len > NGX_AI_RELAY_JSON_KEY_SHOW) {
            len = NGX_AI_RELAY_JSON_KEY_SHOW;
        }

        for (i = 0; i < len; i++) {
            key[i] = (body[m->key_start + i] >= 0x20
                      && body[m->key_start + i] < 0x7f)
                     ? (char) body[m->key_start + i] : '?';
        }

        if (len < m->key_end - m->key_start) {
            memcpy(&key[len], "...", 3);
            len += 3;
        }

        key[len] = '\0';

        n = snprintf(buf, size, "duplicate key \"%s\"", key);
        break;

    default:
        n = snprintf(buf, size, "%s at offset %zu",
                     scan->err ? scan->err : "error", scan->err_offset);
        break;
    }

    if (n < 0) {
        buf[0] = '\0';
        return 0;
    }

    return ((size_t) n < size) ? (size_t) n : size - 1;
}


ngx_ai_relay_json_member_t *
ngx_ai_relay_json_find(const ngx_ai_relay_json_scan_t *scan,
    const unsigned char *body, const char *name, size_t name_len)
{
    size_t                       i;
    uint32_t                     h;
    ngx_ai_relay_json_member_t  *m;

    if (scan->rc != NGX_AI_RELAY_JSON_OK || scan->members == NULL) {
        return NULL;
    }

    h = ngx_ai_relay_json_hash((const unsigned char *) name, name_len, 0);

    for (i = 0; i < scan->nmembers; i++) {
        m = &scan->members[i];

        if (m->key_hash == h
            && ngx_ai_relay_json_key_eq(body + m->key_start,
                                        m->key_end - m->key_start,
                                        m->key_escaped,
                                        (const unsigned char *) name,
                                        name_len))
        {
            return m;
        }
    }

    return NULL;
}


/* p is past the opening quote of a validated string */

static const unsigned char *
ngx_ai_relay_json_skip_string(const unsigned char *p, const unsigned char *end)
{
    const unsigned char  *q, *b;

    for ( ;; ) {
        q = memchr(p, '"', end - p);
        if (q == NULL) {
            return end;
        }

        b = q;

        while (b > p && b[-1] == '\\') {
            b--;
        }

        if (((q - b) & 1) == 0) {
            return q + 1;
        }

        p = q + 1;
    }
}


/* p is at a validated value */

static const unsigned char *
ngx_ai_relay_json_skip_value(const unsigned char *p, const unsigned char *end)
{
    size_t  depth;

    if (p >= end) {
        return end;
    }

    switch (*p) {

    case '"':
        return ngx_ai_relay_json_skip_string(p + 1, end);

    case '{':
    case '[':
        depth = 0;

        while (p < end) {

            switch (*p) {

            case '"':
                p = ngx_ai_relay_json_skip_string(p + 1, end);
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

        return end;

    default:
        while (p < end && *p != ',' && *p != '}' && *p != ']'
               && !ngx_ai_relay_json_ws(*p))
        {
            p++;
        }

        return p;
    }
}


int
ngx_ai_relay_json_object_find(const unsigned char *body,
    const ngx_ai_relay_json_member_t *obj, const char *name,
    size_t name_len, ngx_ai_relay_json_member_t *out)
{
    int                   found;
    unsigned              escaped;
    const unsigned char  *p, *end, *ks, *ke, *vs;

    if (obj == NULL || obj->type != NGX_AI_RELAY_JSON_OBJECT) {
        return 0;
    }

    found = 0;

    p = body + obj->value_start + 1;
    end = body + obj->value_end - 1;

    for ( ;; ) {
        ngx_ai_relay_json_skip_ws(p, end);

        if (p >= end || *p != '"') {
            break;
        }

        ks = p + 1;
        p = ngx_ai_relay_json_skip_string(ks, end);
        ke = p - 1;

        ngx_ai_relay_json_skip_ws(p, end);

        if (p >= end || *p != ':') {
            break;
        }

        p++;

        ngx_ai_relay_json_skip_ws(p, end);

        if (p >= end) {
            break;
        }

        vs = p;
        p = ngx_ai_relay_json_skip_value(p, end);

        escaped = (memchr(ks, '\\', ke - ks) != NULL);

        if (ngx_ai_relay_json_key_eq(ks, ke - ks, escaped,
                                     (const unsigned char *) name, name_len))
        {
            found = 1;

            out->key_start = ks - body;
            out->key_end = ke - body;
            out->value_start = vs - body;
            out->value_end = p - body;
            out->str_ascii = 0;
            out->str_non_ascii = 0;
            out->key_hash = 0;
            out->type = ngx_ai_relay_json_type_of(*vs);
            out->key_escaped = escaped;
            out->value_escaped = (*vs == '"'
                                  && memchr(vs, '\\', p - vs) != NULL);
        }

        ngx_ai_relay_json_skip_ws(p, end);

        if (p >= end || *p != ',') {
            break;
        }

        p++;
    }

    return found;
}


int
ngx_ai_relay_json_array_next(const unsigned char *body,
    const ngx_ai_relay_json_member_t *arr, size_t *pos,
    ngx_ai_relay_json_member_t *out)
{
    const unsigned char  *p, *end, *vs;

    if (arr == NULL || arr->type != NGX_AI_RELAY_JSON_ARRAY) {
        return 0;
    }

    p = body + (*pos ? *pos : arr->value_start + 1);
    end = body + arr->value_end - 1;

    ngx_ai_relay_json_skip_ws(p, end);

    if (p < end && *p == ',') {
        p++;
        ngx_ai_relay_json_skip_ws(p, end);
    }

    if (p >= end) {
        *pos = end - body;
        return 0;
    }

    vs = p;
    p = ngx_ai_relay_json_skip_value(p, end);

    out->key_start = 0;
    out->key_end = 0;
    out->value_start = vs - body;
    out->value_end = p - body;
    out->str_ascii = 0;
    out->str_non_ascii = 0;
    out->key_hash = 0;
    out->type = ngx_ai_relay_json_type_of(*vs);
    out->key_escaped = 0;
    out->value_escaped = (*vs == '"' && memchr(vs, '\\', p - vs) != NULL);

    *pos = p - body;

    return 1;
}


int
ngx_ai_relay_json_member_string(const unsigned char *body,
    const ngx_ai_relay_json_member_t *m, unsigned char *buf, size_t size,
    size_t *len)
{
    if (m == NULL) {
        return NGX_AI_RELAY_JSON_GET_MISSING;
    }

    if (m->type != NGX_AI_RELAY_JSON_STRING) {
        return NGX_AI_RELAY_JSON_GET_TYPE;
    }

    if (ngx_ai_relay_json_unescape(body + m->value_start + 1,
                                   m->value_end - m->value_start - 2,
                                   buf, size, len)
        != 0)
    {
        return NGX_AI_RELAY_JSON_GET_RANGE;
    }

    return NGX_AI_RELAY_JSON_GET_OK;
}


/*
 * The number must be an integer exactly ("1e3" and "100.0" are, "1.5" is
 * not) that fits in int64_t.
 */

int
ngx_ai_relay_json_member_int(const unsigned char *body,
    const ngx_ai_relay_json_member_t *m, int64_t *value)
{
    int                   neg;
    size_t                ndig, first, last, i, int_len, frac_len;
    int64_t               exp, e;
    uint64_t              v, limit;
    const unsigned char  *p, *end, *ip, *fp;

    if (m == NULL) {
        return NGX_AI_RELAY_JSON_GET_MISSING;
    }

    if (m->type != NGX_AI_RELAY_JSON_NUMBER) {
        return NGX_AI_RELAY_JSON_GET_TYPE;
    }

    p = body + m->value_start;
    end = body + m->value_end;

    neg = (*p == '-');
    if (neg) {
        p++;
    }

    ip = p;

    while (p < end && ngx_ai_relay_json_digit(*p)) {
        p++;
    }

    int_len = p - ip;
    fp = p;
    frac_len = 0;

    if (p < end && *p == '.') {
        fp = ++p;

        while (p < end && ngx_ai_relay_json_digit(*p)) {
            p++;
        }

        frac_len = p - fp;
    }

    exp = 0;

    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;

        e = 1;

        if (*p == '-' || *p == '+') {
            e = (*p == '-') ? -1 : 1;
            p++;
        }

        while (p < end) {
            if (exp < 1000000) {
                exp = exp * 10 + (*p - '0');
            }

            p++;
        }

        exp *= e;
    }

    /* the digits ip[0 .. int_len) fp[0 .. frac_len) as one sequence */

    ndig = int_len + frac_len;
    first = ndig;
    last = 0;

    for (i = 0; i < ndig; i++) {
        if ((i < int_len ? ip[i] : fp[i - int_len]) != '0') {
            if (first == ndig) {
                first = i;
            }

            last = i;
        }
    }

    if (first == ndig) {
        *value = 0;
        return NGX_AI_RELAY_JSON_GET_OK;
    }

    /* value = digits[first .. last] * 10^e */

    e = exp - (int64_t) frac_len + (int64_t) (ndig - 1 - last);

    if (e < 0 || last - first + 1 + (uint64_t) e > 19) {
        return NGX_AI_RELAY_JSON_GET_RANGE;
    }

    v = 0;

    for (i = first; i <= last; i++) {
        v = v * 10 + ((i < int_len ? ip[i] : fp[i - int_len]) - '0');
    }

    limit = neg ? (uint64_t) INT64_MAX + 1 : (uint64_t) INT64_MAX;

    while (e-- > 0) {
        if (v > limit / 10) {
            return NGX_AI_RELAY_JSON_GET_RANGE;
        }

        v *= 10;
    }

    if (v > limit) {
        return NGX_AI_RELAY_JSON_GET_RANGE;
    }

    if (neg) {
        *value = (v == (uint64_t) INT64_MAX + 1) ? INT64_MIN : -(int64_t) v;

    } else {
        *value = (int64_t) v;
    }

    return NGX_AI_RELAY_JSON_GET_OK;
}


int
ngx_ai_relay_json_member_bool(const ngx_ai_relay_json_member_t *m,
    int *value)
{
    if (m == NULL) {
        return NGX_AI_RELAY_JSON_GET_MISSING;
    }

    if (m->type == NGX_AI_RELAY_JSON_TRUE) {
        *value = 1;
        return NGX_AI_RELAY_JSON_GET_OK;
    }

    if (m->type == NGX_AI_RELAY_JSON_FALSE) {
        *value = 0;
        return NGX_AI_RELAY_JSON_GET_OK;
    }

    return NGX_AI_RELAY_JSON_GET_TYPE;
}


int
ngx_ai_relay_json_get_string(const ngx_ai_relay_json_scan_t *scan,
    const unsigned char *body, const char *name, size_t name_len,
    unsigned char *buf, size_t size, size_t *len)
{
    return ngx_ai_relay_json_member_string(body,
               ngx_ai_relay_json_find(scan, body, name, name_len),
               buf, size, len);
}


int
ngx_ai_relay_json_get_int(const ngx_ai_relay_json_scan_t *scan,
    const unsigned char *body, const char *name, size_t name_len,
    int64_t *value)
{
    return ngx_ai_relay_json_member_int(body,
               ngx_ai_relay_json_find(scan, body, name, name_len), value);
}


int
ngx_ai_relay_json_get_bool(const ngx_ai_relay_json_scan_t *scan,
    const unsigned char *body, const char *name, size_t name_len,
    int *value)
{
    return ngx_ai_relay_json_member_bool(
               ngx_ai_relay_json_find(scan, body, name, name_len), value);
}


int
ngx_ai_relay_json_get_nested_int(const ngx_ai_relay_json_scan_t *scan,
    const unsigned char *body, const char *outer, size_t outer_len,
    const char *inner, size_t inner_len, int64_t *value)
{
    ngx_ai_relay_json_member_t  *m, in;

    m = ngx_ai_relay_json_find(scan, body, outer, outer_len);

    if (m == NULL) {
        return NGX_AI_RELAY_JSON_GET_MISSING;
    }

    if (m->type != NGX_AI_RELAY_JSON_OBJECT) {
        return NGX_AI_RELAY_JSON_GET_TYPE;
    }

    if (!ngx_ai_relay_json_object_find(body, m, inner, inner_len, &in)) {
        return NGX_AI_RELAY_JSON_GET_MISSING;
    }

    return ngx_ai_relay_json_member_int(body, &in, value);
}


/*
 * Returns 0, or -1 if dst is too small or the escapes are invalid.
 * The decoded length never exceeds len.
 */

int
ngx_ai_relay_json_unescape(const unsigned char *src, size_t len,
    unsigned char *dst, size_t size, size_t *out_len)
{
    size_t                n;
    unsigned char        *d, tmp[4];
    const unsigned char  *p, *end, *q;

    p = src;
    end = src + len;
    d = dst;

    while (p < end) {
        q = memchr(p, '\\', end - p);
        n = (q ? q : end) - p;

        if ((size_t) (dst + size - d) < n) {
            return -1;
        }

        memcpy(d, p, n);
        d += n;
        p += n;

        if (p == end) {
            break;
        }

        if ((size_t) (dst + size - d) < 4) {
            /* may still fit: decode into a side buffer */

            n = ngx_ai_relay_json_decode_escape(&p, end, tmp);
            if (n == 0 || (size_t) (dst + size - d) < n) {
                return -1;
            }

            memcpy(d, tmp, n);

        } else {
            n = ngx_ai_relay_json_decode_escape(&p, end, d);
            if (n == 0) {
                return -1;
            }
        }

        d += n;
    }

    *out_len = d - dst;

    return 0;
}


int
ngx_ai_relay_json_whole(const unsigned char *p, size_t len, int64_t *value)
{
    int                   frac;
    int64_t               n;
    const unsigned char  *last;

    last = p + len;
    n = 0;
    frac = 0;

    if (p == last || *p < '0' || *p > '9') {
        return -1;
    }

    for ( /* void */ ; p < last && *p >= '0' && *p <= '9'; p++) {
        if (n < NGX_AI_RELAY_JSON_WHOLE_MAX) {
            n = n * 10 + (*p - '0');
        }
    }

    if (p < last && *p == '.') {
        for (p++; p < last && *p >= '0' && *p <= '9'; p++) {
            frac |= (*p != '0');
        }
    }

    if (p != last) {
        return -1;
    }

    n += frac;

    *value = (n > NGX_AI_RELAY_JSON_WHOLE_MAX) ? NGX_AI_RELAY_JSON_WHOLE_MAX
                                               : n;

    return 0;
}


size_t
ngx_ai_relay_json_quote_len(const unsigned char *src, size_t len)
{
    size_t  i, n;

    n = 2;

    for (i = 0; i < len; i++) {
        if (src[i] == '"' || src[i] == '\\' || src[i] == '\b'
            || src[i] == '\f' || src[i] == '\n' || src[i] == '\r'
            || src[i] == '\t')
        {
            n += 2;

        } else if (src[i] < 0x20) {
            n += 6;

        } else {
            n++;
        }
    }

    return n;
}


unsigned char *
ngx_ai_relay_json_quote(unsigned char *dst, const unsigned char *src,
    size_t len)
{
    size_t         i;
    unsigned char  c;

    static const char  hex[] = "0123456789abcdef";

    *dst++ = '"';

    for (i = 0; i < len; i++) {
        c = src[i];

        switch (c) {

        case '"':
        case '\\':
            *dst++ = '\\';
            *dst++ = c;
            break;

        case '\b':
            *dst++ = '\\';
            *dst++ = 'b';
            break;

        case '\f':
            *dst++ = '\\';
            *dst++ = 'f';
            break;

        case '\n':
            *dst++ = '\\';
            *dst++ = 'n';
            break;

        case '\r':
            *dst++ = '\\';
            *dst++ = 'r';
            break;

        case '\t':
            *dst++ = '\\';
            *dst++ = 't';
            break;

        default:
            if (c < 0x20) {
                *dst++ = '\\';
                *dst++ = 'u';
                *dst++ = '0';
                *dst++ = '0';
                *dst++ = hex[c >> 4];
                *dst++ = hex[c & 0xf];

            } else {
                *dst++ = c;
            }
        }
    }

    *dst++ = '"';

    return dst;
}


int
ngx_ai_relay_json_utf8_valid(const unsigned char *p, size_t len)
{
    size_t                n;
    const unsigned char  *end;

    end = p + len;

    while (p < end) {
        if (*p < 0x80) {
            p++;
            continue;
        }

        n = ngx_ai_relay_json_utf8_len(p, end);
        if (n == 0) {
            return 0;
        }

        p += n;
    }

    return 1;
}


static size_t
ngx_ai_relay_json_insert_pos(const ngx_ai_relay_json_scan_t *scan)
{
    if (scan->nmembers > 0) {
        return scan->members[scan->nmembers - 1].value_end;
    }

    return scan->obj_start + 1;
}


size_t
ngx_ai_relay_json_edit_member_size(const char *name, size_t name_len,
    size_t value_len)
{
    return 2 + ngx_ai_relay_json_quote_len((const unsigned char *) name,
                                           name_len)
           + value_len;
}


int
ngx_ai_relay_json_edit_member(ngx_ai_relay_json_scan_t *scan,
    const unsigned char *body, const char *name, size_t name_len,
    const unsigned char *value, size_t value_len, unsigned char *scratch,
    size_t scratch_size, ngx_ai_relay_json_edit_t *edit)
{
    unsigned char               *p;
    ngx_ai_relay_json_member_t  *m;

    if (scan->rc != NGX_AI_RELAY_JSON_OK || scan->members == NULL) {
        return -1;
    }

    m = ngx_ai_relay_json_find(scan, body, name, name_len);

    if (m != NULL) {
        edit->start = m->value_start;
        edit->end = m->value_end;
        edit->data = value;
        edit->len = value_len;
        return 0;
    }

    if (scratch_size < ngx_ai_relay_json_edit_member_size(name, name_len,
                                                          value_len))
    {
        return -1;
    }

    p = scratch;

    if (scan->nmembers > 0 || scan->nadded > 0) {
        *p++ = ',';
    }

    p = ngx_ai_relay_json_quote(p, (const unsigned char *) name, name_len);
    *p++ = ':';
    memcpy(p, value, value_len);
    p += value_len;

    edit->start = ngx_ai_relay_json_insert_pos(scan);
    edit->end = edit->start;
    edit->data = scratch;
    edit->len = p - scratch;

    scan->nadded++;

    return 0;
}


int
ngx_ai_relay_json_edit_include_usage(ngx_ai_relay_json_scan_t *scan,
    const unsigned char *body, ngx_ai_relay_json_edit_t *edit)
{
    int                          comma;
    const unsigned char         *p;
    ngx_ai_relay_json_member_t  *so, iu;

    if (scan->rc != NGX_AI_RELAY_JSON_OK || scan->members == NULL) {
        return NGX_AI_RELAY_JSON_USAGE_CONFLICT;
    }

    so = ngx_ai_relay_json_find(scan, body, "stream_options",
                                sizeof("stream_options") - 1);

    if (so == NULL) {
        comma = (scan->nmembers > 0 || scan->nadded > 0);

        edit->start = ngx_ai_relay_json_insert_pos(scan);
        edit->end = edit->start;
        edit->data = (const unsigned char *) ngx_ai_relay_json_usage_opts
                     + (comma ? 0 : 1);
        edit->len = sizeof(ngx_ai_relay_json_usage_opts) - 1 - (comma ? 0 : 1);

        scan->nadded++;

        return NGX_AI_RELAY_JSON_USAGE_ADD_OPTIONS;
    }

    if (so->type == NGX_AI_RELAY_JSON_NULL) {
        edit->start = so->value_start;
        edit->end = so->value_end;
        edit->data = (const unsigned char *) ngx_ai_relay_json_usage_obj;
        edit->len = sizeof(ngx_ai_relay_json_usage_obj) - 1;

        return NGX_AI_RELAY_JSON_USAGE_SET_OPTIONS;
    }

    if (so->type != NGX_AI_RELAY_JSON_OBJECT) {
        return NGX_AI_RELAY_JSON_USAGE_CONFLICT;
    }

    if (!ngx_ai_relay_json_object_find(body, so, "include_usage",
                                       sizeof("include_usage") - 1, &iu))
    {
        p = body + so->value_start + 1;

        while (ngx_ai_relay_json_ws(*p)) {
            p++;
        }

        edit->start = so->value_start + 1;
        edit->end = edit->start;
        edit->data = (const unsigned char *) ngx_ai_relay_json_usage_field;
        edit->len = sizeof(ngx_ai_relay_json_usage_field) - 1
                    - (*p == '}' ? 1 : 0);

        return NGX_AI_RELAY_JSON_USAGE_ADD_FIELD;
    }

    switch (iu.type) {

    case NGX_AI_RELAY_JSON_TRUE:
        return NGX_AI_RELAY_JSON_USAGE_PRESENT;

    case NGX_AI_RELAY_JSON_FALSE:
    case NGX_AI_RELAY_JSON_NULL:
        edit->start = iu.value_start;
        edit->end = iu.value_end;
        edit->data = (const unsigned char *) ngx_ai_relay_json_true;
        edit->len = sizeof(ngx_ai_relay_json_true) - 1;

        return NGX_AI_RELAY_JSON_USAGE_SET_FIELD;

    default:
        return NGX_AI_RELAY_JSON_USAGE_CONFLICT;
    }
}


/* a goes after b: later offset, or a replacement after an insertion */

static int
ngx_ai_relay_json_edit_after(const ngx_ai_relay_json_edit_t *a,
    const ngx_ai_relay_json_edit_t *b)
{
    if (a->start != b->start) {
        return a->start > b->start;
    }

    return a->end > a->start && b->end == b->start;
}


int
ngx_ai_relay_json_splice(const unsigned char *body, size_t len,
    ngx_ai_relay_json_edit_t *edits, size_t nedits,
    ngx_ai_relay_json_piece_t *pieces, size_t max_pieces, size_t *npieces,
    size_t *out_len)
{
    size_t                    i, j, n, pos, out;
    ngx_ai_relay_json_edit_t  e;

    /* stable insertion sort: there are only a few edits */

    for (i = 1; i < nedits; i++) {
        e = edits[i];

        for (j = i; j > 0 && ngx_ai_relay_json_edit_after(&edits[j - 1], &e);
             j--)
        {
            edits[j] = edits[j - 1];
        }

        edits[j] = e;
    }

    n = 0;
    pos = 0;
    out = 0;

    for (i = 0; i <= nedits; i++) {

        if (i < nedits) {
            e = edits[i];

            if (e.start < pos || e.end < e.start || e.end > len) {
                return -1;
            }

        } else {
            e.start = len;
            e.end = len;
            e.data = NULL;
            e.len = 0;
        }

        if (e.start > pos) {
            if (n == max_pieces) {
                return -1;
            }

            pieces[n].data = body + pos;
            pieces[n].len = e.start - pos;
            out += pieces[n++].len;
        }

        if (e.len > 0) {
            if (n == max_pieces) {
                return -1;
            }

            pieces[n].data = e.data;
            pieces[n].len = e.len;
            out += pieces[n++].len;
        }

        pos = e.end;
    }

    *npieces = n;
    *out_len = out;

    return 0;
}


unsigned char *
ngx_ai_relay_json_pieces_copy(unsigned char *dst,
    const ngx_ai_relay_json_piece_t *pieces, size_t npieces)
{
    size_t  i;

    for (i = 0; i < npieces; i++) {
        memcpy(dst, pieces[i].data, pieces[i].len);
        dst += pieces[i].len;
    }

    return dst;
}


/*
 * The first byte at or after p of a string that is '"' or '\\' (with
 * ascii, also 0x80 and above), or end.  Strings are most of the bytes of
 * a response: they are searched 16 (SSE2) or 8 bytes at a time.
 */

static inline const unsigned char *
ngx_ai_relay_json_find_special(const unsigned char *p,
    const unsigned char *end, int ascii)
{
    uint64_t  w, m8;
#if (NGX_AI_RELAY_JSON_SSE2)
    int       m;
    __m128i   v, quote, bslash;

    quote = _mm_set1_epi8('"');
    bslash = _mm_set1_epi8('\\');

    while (end - p >= 16) {
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

    m8 = ascii ? NGX_AI_RELAY_JSON_HIGHS : 0;

    while (end - p >= 8) {
        memcpy(&w, p, 8);

        if ((w & m8)
            | ngx_ai_relay_json_has_byte(w, '"')
            | ngx_ai_relay_json_has_byte(w, '\\'))
        {
            break;
        }

        p += 8;
    }

    while (p < end && *p != '"' && *p != '\\' && !(ascii && *p >= 0x80)) {
        p++;
    }

    return p;
}


const unsigned char *
ngx_ai_relay_json_string_end(const unsigned char *p, const unsigned char *end)
{
    return ngx_ai_relay_json_lax_string_end(p, end);
}


static inline const unsigned char *
ngx_ai_relay_json_lax_string_end(const unsigned char *p,
    const unsigned char *end)
{
    for ( ;; ) {
        p = ngx_ai_relay_json_find_special(p, end, 0);

        if (p == end) {
            return NULL;
        }

        if (*p == '"') {
            return p;
        }

        /* a backslash escapes the next byte, whatever it is */

        if (end - p < 2) {
            return NULL;
        }

        p += 2;
    }
}


int
ngx_ai_relay_json_key_filtered(const uint64_t *filter,
    const unsigned char *key, size_t len)
{
    return ngx_ai_relay_json_key_pass(filter, key, len);
}


/* see ngx_ai_relay_json_walk_t: a length bit, then a hash bit */

static ngx_ai_relay_json_hot int
ngx_ai_relay_json_key_pass(const uint64_t *filter, const unsigned char *k,
    size_t len)
{
    size_t  h;

    if (len - 1 > 62 || !((filter[4] >> len) & 1)) {
        return 0;
    }

    h = ngx_ai_relay_json_key_hash((size_t) k[0], (size_t) k[len - 1], len);

    return (filter[h >> 6] >> (h & 63)) & 1;
}


void
ngx_ai_relay_json_walk_keys(ngx_ai_relay_json_walk_t *walk,
    const unsigned char *p, size_t len)
{
    int                              depth;
    const unsigned char             *k, *e, *end;
    const ngx_ai_relay_json_span_t  *c;

    depth = 0;
    end = p + len;

    walk->end = end;

    for ( ;; ) {

        /* outside of strings: only brackets and quotes matter */

        while (p < end && *p != '"') {
            depth += ngx_ai_relay_json_depth[*p++];
        }

        if (p == end) {
            return;
        }

        k = p + 1;
        e = ngx_ai_relay_json_lax_string_end(k, end);

        if (e == NULL) {
            return;
        }

        p = e + 1;

        ngx_ai_relay_json_skip_ws(p, end);

        if (p == end || *p != ':') {
            /* a string value */
            continue;
        }

        p++;

        ngx_ai_relay_json_skip_ws(p, end);

        if (p == end) {
            return;
        }

        if (walk->filter
            && !ngx_ai_relay_json_key_pass(walk->filter, k, (size_t) (e - k)))
        {
            continue;
        }

        if (walk->count && *p == '"') {

            for (c = walk->count; c->data; c++) {

                if ((size_t) (e - k) == c->len
                    && k[0] == c->data[0]
                    && memcmp(k, c->data, c->len) == 0)
                {
                    break;
                }
            }

            if (c->data) {
                p = ngx_ai_relay_json_count(p + 1, end, walk->counts);
                continue;
            }
        }

        walk->depth = depth;

        p = walk->handler(walk, k, e - k, p);

        if (p == NULL) {
            return;
        }
    }
}


const unsigned char *
ngx_ai_relay_json_walk_value(ngx_ai_relay_json_lax_t *lax,
    const unsigned char *p, const unsigned char *end)
{
    if (lax->max_depth > NGX_AI_RELAY_JSON_LAX_DEPTH) {
        lax->max_depth = NGX_AI_RELAY_JSON_LAX_DEPTH;
    }

    if (lax->report_depth > NGX_AI_RELAY_JSON_PATH_MAX) {
        lax->report_depth = NGX_AI_RELAY_JSON_PATH_MAX;
    }

    if (lax->handler == NULL) {
        lax->report_depth = 0;
    }

    return ngx_ai_relay_json_lax_value(lax, p, end, 0);
}


/* p is at a value inside level containers */

static const unsigned char *
ngx_ai_relay_json_lax_value(ngx_ai_relay_json_lax_t *lax,
    const unsigned char *p, const unsigned char *end, unsigned level)
{
    int                   object;
    size_t                klen;
    const unsigned char  *k, *e, *v;

    if (p == end) {
        return NULL;
    }

    switch (*p) {

    case '"':
        e = ngx_ai_relay_json_lax_string_end(p + 1, end);
        return e ? e + 1 : NULL;

    case '{':
    case '[':
        break;

    case 't':
        return (end - p >= 4 && p[1] == 'r' && p[2] == 'u' && p[3] == 'e')
               ? p + 4 : NULL;

    case 'f':
        return (end - p >= 5 && p[1] == 'a' && p[2] == 'l' && p[3] == 's'
                && p[4] == 'e')
               ? p + 5 : NULL;

    case 'n':
        return (end - p >= 4 && p[1] == 'u' && p[2] == 'l' && p[3] == 'l')
               ? p + 4 : NULL;

    default:
        return ngx_ai_relay_json_number_end(p, end);
    }

    if (level >= lax->max_depth) {
        return NULL;
    }

    level++;

    object = (*p == '{');

    p++;

    ngx_ai_relay_json_skip_ws(p, end);

    if (p < end && *p == (object ? '}' : ']')) {
        return p + 1;
    }

    k = NULL;
    klen = 0;

    for ( ;; ) {

        if (object) {

            if (p == end || *p != '"') {
                return NULL;
            }

            k = p + 1;
            e = ngx_ai_relay_json_lax_string_end(k, end);

            if (e == NULL) {
                return NULL;
            }

            klen = e - k;
            p = e + 1;

            ngx_ai_relay_json_skip_ws(p, end);

            if (p == end || *p != ':') {
                return NULL;
            }

            p++;

            ngx_ai_relay_json_skip_ws(p, end);
        }

        if (level <= lax->report_depth) {
            lax->path[level - 1].data = k;
            lax->path[level - 1].len = klen;
        }

        v = p;
        p = ngx_ai_relay_json_lax_value(lax, p, end, level);

        if (p == NULL) {
            return NULL;
        }

        if (level <= lax->report_depth) {
            lax->depth = level;
            lax->handler(lax, k, klen, v, p);
        }

        ngx_ai_relay_json_skip_ws(p, end);

        if (p == end) {
            return NULL;
        }

        if (*p == (object ? '}' : ']')) {
            return p + 1;
        }

        if (*p != ',') {
            return NULL;
        }

        p++;

        ngx_ai_relay_json_skip_ws(p, end);
    }
}


/* the byte after a JSON number at p (strict syntax), or NULL */

static const unsigned char *
ngx_ai_relay_json_number_end(const unsigned char *p, const unsigned char *end)
{
    if (p < end && *p == '-') {
        p++;
    }

    if (p == end) {
        return NULL;
    }

    if (*p == '0') {
        p++;

    } else if (*p >= '1' && *p <= '9') {
        do {
            p++;
        } while (p < end && ngx_ai_relay_json_digit(*p));

    } else {
        return NULL;
    }

    if (p < end && *p == '.') {
        p++;

        if (p == end || !ngx_ai_relay_json_digit(*p)) {
            return NULL;
        }

        do {
            p++;
        } while (p < end && ngx_ai_relay_json_digit(*p));
    }

    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;

        if (p < end && (*p == '+' || *p == '-')) {
            p++;
        }

        if (p == end || !ngx_ai_relay_json_digit(*p)) {
            return NULL;
        }

        do {
            p++;
        } while (p < end && ngx_ai_relay_json_digit(*p));
    }

    return p;
}


const unsigned char *
ngx_ai_relay_json_number_count(const unsigned char *p,
    const unsigned char *end, int64_t max, int64_t *value)
{
    char                  buf[NGX_AI_RELAY_JSON_REAL_LEN];
    double                d;
    size_t                n;
    int64_t               v;
    const unsigned char  *q, *e;

    *value = -1;

    if (p < end && *p == '0'
        && (p + 1 == end || (p[1] != '.' && p[1] != 'e' && p[1] != 'E')))
    {
        *value = 0;
        return p + 1;
    }

    if (p < end && *p >= '1' && *p <= '9') {

        /* the common case, an integer: stop adding once past max */

        v = 0;

        for (q = p; q < end && ngx_ai_relay_json_digit(*q); q++) {
            if (v <= max) {
                v = v * 10 + (*q - '0');
            }
        }

        if (q == end || (*q != '.' && *q != 'e' && *q != 'E')) {

            if (v <= max) {
                *value = v;
            }

            return q;
        }
    }

    e = ngx_ai_relay_json_number_end(p, end);

    if (e == NULL || *p == '-') {
        return e;
    }

    v = 0;

    for (q = p; q < e && ngx_ai_relay_json_digit(*q); q++) {
        if (v <= max) {
            v = v * 10 + (*q - '0');
        }
    }

    if (q == e) {

        if (v <= max) {
            *value = v;
        }

        return e;
    }

    n = e - p;

    if (n < sizeof(buf)) {
        memcpy(buf, p, n);
        buf[n] = '\0';

        d = strtod(buf, NULL);

        if (d >= 0 && d <= (double) max) {
            *value = (int64_t) d;
        }
    }

    return e;
}


const unsigned char *
ngx_ai_relay_json_string_count(const unsigned char *p,
    const unsigned char *end, uint64_t *counts)
{
    return ngx_ai_relay_json_count(p, end, counts);
}


static ngx_ai_relay_json_hot const unsigned char *
ngx_ai_relay_json_count(const unsigned char *p, const unsigned char *end,
    uint64_t *counts)
{
    unsigned char         ch;
    uint32_t              cp;
    uint64_t              ascii, two, four;
    const unsigned char  *q;

    ascii = 0;
    two = 0;
    four = 0;

    while (p < end) {

        /* the common case: a run of plain ASCII */

        q = ngx_ai_relay_json_find_special(p, end, 1);

        ascii += q - p;
        p = q;

        if (p == end) {
            break;
        }

        ch = *p;

        if (ch == '"') {
            p++;
            break;
        }

        if (ch == '\\') {

            if (end - p < 2) {
                p = end;
                break;
            }

            if (p[1] != 'u') {
                ascii++;
                p += 2;
                continue;
            }

            if (end - p < 6) {
                p = end;
                break;
            }

            cp = ngx_ai_relay_json_hex4(p + 2, end);

            if (cp > 0xffff) {
                /* a bad escape: count the backslash, go on after it */
                ascii++;
                p++;
                continue;
            }

            if (cp < 0x80) {
                ascii++;

            } else if (cp < 0x800) {
                two++;

            } else if (cp < 0xdc00 || cp > 0xdfff) {
                /* a low surrogate completes a pair already counted */
                four++;
            }

            p += 6;
            continue;
        }

        /* non-ASCII: count lead bytes only */

        if (ch >= 0xe0) {
            four++;

        } else if (ch >= 0xc0) {
            two++;
        }

        p++;
    }

    counts[0] += ascii;
    counts[1] += two;
    counts[2] += four;

    return p;
}


size_t
ngx_ai_relay_json_unescape_prefix(const unsigned char *src, size_t len,
    unsigned char *dst, size_t size, size_t *out_len)
{
    size_t                n, room;
    unsigned char        *d, tmp[4];
    const unsigned char  *p, *end, *q, *e;

    p = src;
    end = src + len;
    d = dst;

    while (p < end) {
        room = dst + size - d;

        q = memchr(p, '\\', end - p);
        n = (q ? q : end) - p;

        if (n > room) {
            memcpy(d, p, room);
            d += room;
            p += room;
            break;
        }

        memcpy(d, p, n);
        d += n;
        p += n;

        if (p == end) {
            break;
        }

        e = p;
        n = ngx_ai_relay_json_decode_escape(&e, end, tmp);

        if (n == 0 || n > (size_t) (dst + size - d)) {
            break;
        }

        memcpy(d, tmp, n);
        d += n;
        p = e;
    }

    *out_len = d - dst;

    return p - src;
}
