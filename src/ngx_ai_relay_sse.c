
/*
 * Copyright (C) ngx_ai_relay authors
 *
 * Incremental Server-Sent Events parser; see ngx_ai_relay_sse.h.
 * No nginx headers here on purpose.
 */


#include <string.h>

#include "ngx_ai_relay_sse.h"

#if (defined __SSE2__ && defined __GNUC__)
#include <emmintrin.h>
#define NGX_AI_RELAY_SSE_SSE2  1
#endif


#define NGX_AI_RELAY_SSE_BUF_SIZE  256

/* sse->state */
#define NGX_AI_RELAY_SSE_START     0   /* at the start of a line */
#define NGX_AI_RELAY_SSE_FIELD     1   /* in the field name */
#define NGX_AI_RELAY_SSE_SPACE     2   /* right after the colon */
#define NGX_AI_RELAY_SSE_VALUE     3   /* in the value */

/* sse->kind */
#define NGX_AI_RELAY_SSE_OTHER     0
#define NGX_AI_RELAY_SSE_DATA      1
#define NGX_AI_RELAY_SSE_EVENT     2

/* sse->field holds this many bytes; field_len == this means "longer" */
#define NGX_AI_RELAY_SSE_FIELD_LEN  6

#define NGX_AI_RELAY_SSE_ONES   0x0101010101010101ULL
#define NGX_AI_RELAY_SSE_HIGHS  0x8080808080808080ULL

/* nonzero if some byte of the 64-bit word x is b */
#define ngx_ai_relay_sse_has_byte(x, b)                                      \
    ((((x) ^ (NGX_AI_RELAY_SSE_ONES * (b))) - NGX_AI_RELAY_SSE_ONES)         \
     & ~((x) ^ (NGX_AI_RELAY_SSE_ONES * (b))) & NGX_AI_RELAY_SSE_HIGHS)


static const u_char *ngx_ai_relay_sse_eol(const u_char *p,
    const u_char *last);
static void ngx_ai_relay_sse_field(ngx_ai_relay_sse_t *sse);
static void ngx_ai_relay_sse_append(ngx_ai_relay_sse_t *sse,
    const u_char *p, size_t n);
static void ngx_ai_relay_sse_dispatch(ngx_ai_relay_sse_t *sse);


static u_char  ngx_ai_relay_sse_empty[1];


void
ngx_ai_relay_sse_init(ngx_ai_relay_sse_t *sse,
    ngx_ai_relay_sse_alloc_pt alloc, void *alloc_data, size_t max_event)
{
    memset(sse, 0, sizeof(ngx_ai_relay_sse_t));

    if (max_event == 0) {
        max_event = NGX_AI_RELAY_SSE_MAX_EVENT;
    }

    /* keeps the doubling in ngx_ai_relay_sse_append() from overflowing */
    if (max_event > SIZE_MAX / 4) {
        max_event = SIZE_MAX / 4;
    }

    sse->alloc = alloc;
    sse->alloc_data = alloc_data;
    sse->max_event = max_event;
    sse->event_name = sse->name;
    sse->data = ngx_ai_relay_sse_empty;
}


size_t
ngx_ai_relay_sse_feed(ngx_ai_relay_sse_t *sse, const u_char *p, size_t len)
{
    u_char         ch;
    size_t         n;
    const u_char  *q, *start, *last;

    sse->event_ready = 0;
    sse->truncated = 0;
    sse->unterminated = 0;

    start = p;
    last = p + len;

    if (sse->pending) {

        /*
         * the blank line that ends an event was terminated by a CR
         * that was the last byte of the previous chunk
         */

        if (len == 0) {
            return 0;
        }

        sse->pending = 0;
        sse->cr = 0;

        if (*p == '\n') {
            p++;
        }

        ngx_ai_relay_sse_dispatch(sse);

        return p - start;
    }

    while (p < last) {

        ch = *p;

        if (sse->cr) {
            sse->cr = 0;

            if (ch == '\n') {
                /* the LF of a CRLF */
                p++;
                continue;
            }
        }

        if (ch == '\n' || ch == '\r') {
            p++;

            if (ch == '\r') {
                sse->cr = 1;
            }

            if (sse->state != NGX_AI_RELAY_SSE_START) {

                if (sse->state == NGX_AI_RELAY_SSE_FIELD) {
                    /* a field name without a colon: empty value */
                    ngx_ai_relay_sse_field(sse);
                }

                sse->state = NGX_AI_RELAY_SSE_START;
                continue;
            }

            /* a blank line */

            if (!sse->has_data && sse->name_len == 0) {
                continue;
            }

            if (ch == '\r') {

                if (p == last) {
                    /* dispatch once we know whether an LF follows */
                    sse->pending = 1;
                    return len;
                }

                if (*p == '\n') {
                    sse->cr = 0;
                    p++;
                }
            }

            ngx_ai_relay_sse_dispatch(sse);

            return p - start;
        }

        switch (sse->state) {

        case NGX_AI_RELAY_SSE_START:

            /* the fields that matter, whole in this chunk: no byte loop */

            if (last - p >= 5 && memcmp(p, "data:", 5) == 0) {
                memcpy(sse->field, "data", 4);
                sse->field_len = 4;
                ngx_ai_relay_sse_field(sse);
                sse->state = NGX_AI_RELAY_SSE_SPACE;
                p += 5;
                break;
            }

            if (last - p >= 6 && memcmp(p, "event:", 6) == 0) {
                memcpy(sse->field, "event", 5);
                sse->field_len = 5;
                ngx_ai_relay_sse_field(sse);
                sse->state = NGX_AI_RELAY_SSE_SPACE;
                p += 6;
                break;
            }

            sse->field_len = 0;
            sse->state = NGX_AI_RELAY_SSE_FIELD;

            /* fall through */

        case NGX_AI_RELAY_SSE_FIELD:
            p++;

            if (ch == ':') {
                ngx_ai_relay_sse_field(sse);
                sse->state = NGX_AI_RELAY_SSE_SPACE;
                break;
            }

            if (sse->field_len < NGX_AI_RELAY_SSE_FIELD_LEN) {
                sse->field[sse->field_len++] = ch;
            }

            break;

        case NGX_AI_RELAY_SSE_SPACE:
            sse->state = NGX_AI_RELAY_SSE_VALUE;

            if (ch == ' ') {
                p++;
                break;
            }

            /* fall through */

        default: /* NGX_AI_RELAY_SSE_VALUE */

            q = ngx_ai_relay_sse_eol(p, last);

            if (sse->kind == NGX_AI_RELAY_SSE_DATA) {
                ngx_ai_relay_sse_append(sse, p, q - p);

            } else if (sse->kind == NGX_AI_RELAY_SSE_EVENT) {
                n = NGX_AI_RELAY_SSE_NAME_LEN - sse->name_len;

                if (n > (size_t) (q - p)) {
                    n = q - p;
                }

                memcpy(sse->name + sse->name_len, p, n);
                sse->name_len += n;
            }

            p = q;
            break;
        }
    }

    return len;
}


int
ngx_ai_relay_sse_finish(ngx_ai_relay_sse_t *sse)
{
    sse->event_ready = 0;
    sse->truncated = 0;
    sse->unterminated = 0;
    sse->cr = 0;

    if (sse->pending) {
        sse->pending = 0;
        ngx_ai_relay_sse_dispatch(sse);
        return 1;
    }

    if (sse->state == NGX_AI_RELAY_SSE_FIELD) {
        ngx_ai_relay_sse_field(sse);
    }

    sse->state = NGX_AI_RELAY_SSE_START;

    if (!sse->has_data && sse->name_len == 0) {
        return 0;
    }

    ngx_ai_relay_sse_dispatch(sse);
    sse->unterminated = 1;

    return 1;
}


int
ngx_ai_relay_sse_partial(ngx_ai_relay_sse_t *sse)
{
    return sse->pending
           || sse->state != NGX_AI_RELAY_SSE_START
           || sse->has_data
           || sse->name_len != 0;
}


/*
 * The first LF or CR at or after p, or last.  Data lines are most of a
 * stream: they are searched 16 (SSE2) or 8 bytes at a time.
 */

static const u_char *
ngx_ai_relay_sse_eol(const u_char *p, const u_char *last)
{
    uint64_t  w;
#if (NGX_AI_RELAY_SSE_SSE2)
    int       m;
    __m128i   v, lf, cr;

    lf = _mm_set1_epi8('\n');
    cr = _mm_set1_epi8('\r');

    while (last - p >= 16) {
        v = _mm_loadu_si128((const __m128i *) p);
        m = _mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(v, lf),
                                           _mm_cmpeq_epi8(v, cr)));
        if (m) {
            return p + __builtin_ctz(m);
        }

        p += 16;
    }
#endif

    while (last - p >= 8) {
        memcpy(&w, p, 8);

        if (ngx_ai_relay_sse_has_byte(w, '\n')
            | ngx_ai_relay_sse_has_byte(w, '\r'))
        {
            break;
        }

        p += 8;
    }

    while (p < last && *p != '\n' && *p != '\r') {
        p++;
    }

    return p;
}


/* the field name is complete: decide what its value is for */

static void
ngx_ai_relay_sse_field(ngx_ai_relay_sse_t *sse)
{
    if (sse->field_len == 4 && memcmp(sse->field, "data", 4) == 0) {
        sse->kind = NGX_AI_RELAY_SSE_DATA;

        if (sse->has_data) {
            ngx_ai_relay_sse_append(sse, (const u_char *) "\n", 1);
        }

        sse->has_data = 1;
        return;
    }

    if (sse->field_len == 5 && memcmp(sse->field, "event", 5) == 0) {
        sse->kind = NGX_AI_RELAY_SSE_EVENT;
        sse->name_len = 0;
        return;
    }

    sse->kind = NGX_AI_RELAY_SSE_OTHER;
}


static void
ngx_ai_relay_sse_append(ngx_ai_relay_sse_t *sse, const u_char *p, size_t n)
{
    u_char  *nb;
    size_t   need, cap;

    if (sse->overflow || n == 0) {
        return;
    }

    need = sse->buf_len + n;

    if (need > sse->max_event) {
        sse->overflow = 1;
        return;
    }

    if (need > sse->buf_cap) {

        cap = sse->buf_cap ? sse->buf_cap * 2 : NGX_AI_RELAY_SSE_BUF_SIZE;

        while (cap < need) {
            cap *= 2;
        }

        if (cap > sse->max_event) {
            cap = sse->max_event;
        }

        nb = (sse->alloc != NULL) ? sse->alloc(sse->alloc_data, cap) : NULL;

        if (nb == NULL) {
            sse->nomem = 1;
            sse->overflow = 1;
            return;
        }

        if (sse->buf_len) {
            memcpy(nb, sse->buf, sse->buf_len);
        }

        /* the old buffer belongs to a pool: it is not freed */

        sse->buf = nb;
        sse->buf_cap = cap;
    }

    memcpy(sse->buf + sse->buf_len, p, n);
    sse->buf_len += n;
}


static void
ngx_ai_relay_sse_dispatch(ngx_ai_relay_sse_t *sse)
{
    sse->event_ready = 1;
    sse->events++;

    sse->event_name = sse->name;
    sse->event_name_len = sse->name_len;

    if (sse->overflow) {
        sse->truncated = 1;
        sse->truncated_events++;
        sse->data = ngx_ai_relay_sse_empty;
        sse->data_len = 0;

    } else {
        sse->data = sse->buf_len ? sse->buf : ngx_ai_relay_sse_empty;
        sse->data_len = sse->buf_len;

        if (sse->data_len == 6 && memcmp(sse->data, "[DONE]", 6) == 0) {
            sse->done = 1;
        }
    }

    /* the event stays readable until the next feed(): only reset lengths */

    sse->buf_len = 0;
    sse->name_len = 0;
    sse->has_data = 0;
    sse->overflow = 0;
}
