
/*
 * Copyright (C) ngx_ai_relay authors
 */


#include <string.h>

#include "ngx_ai_relay_prom.h"


#define NGX_AI_RELAY_PROM_LABELS_MAX  8


static size_t ngx_ai_relay_prom_utf8(const unsigned char *p, size_t len);
static void ngx_ai_relay_prom_labels(ngx_ai_relay_prom_out_t *out,
    const ngx_ai_relay_prom_label_t *labels, size_t nlabels);


static const char  ngx_ai_relay_prom_hex[] = "0123456789abcdef";


/*
 * A label value as the exposition format wants it: backslash, double
 * quote and line feed escaped; a byte that is not part of valid UTF-8 is
 * written as the text \xHH (its backslash escaped), so the output stays
 * UTF-8 whatever a client sent.
 */

size_t
ngx_ai_relay_prom_escape(unsigned char *dst, const unsigned char *src,
    size_t len)
{
    size_t               n, k;
    const unsigned char *end;

    n = 0;
    end = src + len;

    while (src < end) {

        if (*src >= 0x80) {
            k = ngx_ai_relay_prom_utf8(src, end - src);

            if (k == 0) {
                if (dst) {
                    *dst++ = '\\';
                    *dst++ = '\\';
                    *dst++ = 'x';
                    *dst++ = ngx_ai_relay_prom_hex[*src >> 4];
                    *dst++ = ngx_ai_relay_prom_hex[*src & 0xf];
                }

                n += 5;
                src++;
                continue;
            }

            if (dst) {
                memcpy(dst, src, k);
                dst += k;
            }

            n += k;
            src += k;
            continue;
        }

        switch (*src) {

        case '\\':
        case '"':
            if (dst) {
                *dst++ = '\\';
                *dst++ = *src;
            }

            n += 2;
            break;

        case '\n':
            if (dst) {
                *dst++ = '\\';
                *dst++ = 'n';
            }

            n += 2;
            break;

        default:
            if (dst) {
                *dst++ = *src;
            }

            n++;
        }

        src++;
    }

    return n;
}


/* the length of the valid UTF-8 sequence at p (a byte >= 0x80), or 0 */

static size_t
ngx_ai_relay_prom_utf8(const unsigned char *p, size_t len)
{
    size_t         n, i;
    unsigned char  lo, hi;

    lo = 0x80;
    hi = 0xbf;

    if (p[0] >= 0xc2 && p[0] <= 0xdf) {
        n = 2;

    } else if (p[0] >= 0xe0 && p[0] <= 0xef) {
        n = 3;

        if (p[0] == 0xe0) {
            lo = 0xa0;                     /* no overlong form */

        } else if (p[0] == 0xed) {
            hi = 0x9f;                     /* no surrogate */
        }

    } else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
        n = 4;

        if (p[0] == 0xf0) {
            lo = 0x90;

        } else if (p[0] == 0xf4) {
            hi = 0x8f;                     /* up to U+10FFFF */
        }

    } else {
        return 0;
    }

    if (len < n || p[1] < lo || p[1] > hi) {
        return 0;
    }

    for (i = 2; i < n; i++) {
        if (p[i] < 0x80 || p[i] > 0xbf) {
            return 0;
        }
    }

    return n;
}


size_t
ngx_ai_relay_prom_uint(char *buf, uint64_t v)
{
    char    tmp[NGX_AI_RELAY_PROM_NUM_LEN];
    size_t  n, i;

    n = 0;

    do {
        tmp[n++] = (char) ('0' + v % 10);
        v /= 10;
    } while (v);

    for (i = 0; i < n; i++) {
        buf[i] = tmp[n - 1 - i];
    }

    buf[n] = '\0';

    return n;
}


size_t
ngx_ai_relay_prom_int(char *buf, int64_t v)
{
    if (v < 0) {
        buf[0] = '-';
        return 1 + ngx_ai_relay_prom_uint(buf + 1, - (uint64_t) v);
    }

    return ngx_ai_relay_prom_uint(buf, (uint64_t) v);
}


size_t
ngx_ai_relay_prom_fixed(char *buf, int64_t v, unsigned scale)
{
    char      *p;
    size_t     n;
    unsigned   i;
    uint64_t   u, div, frac;

    p = buf;

    if (v < 0) {
        *p++ = '-';
        u = - (uint64_t) v;

    } else {
        u = (uint64_t) v;
    }

    div = 1;

    for (i = 0; i < scale; i++) {
        div *= 10;
    }

    p += ngx_ai_relay_prom_uint(p, u / div);

    frac = u % div;

    if (frac == 0) {
        return p - buf;
    }

    while (frac % 10 == 0) {
        frac /= 10;
        scale--;
    }

    *p++ = '.';

    n = ngx_ai_relay_prom_uint(p + scale, frac);

    /* leading zeros of the fraction, then its digits */

    memset(p, '0', scale - n);
    memmove(p + scale - n, p + scale, n + 1);

    return p + scale - buf;
}


void
ngx_ai_relay_prom_raw(ngx_ai_relay_prom_out_t *out, const char *s, size_t len)
{
    if (out->pos) {
        memcpy(out->pos, s, len);
        out->pos += len;
    }

    out->len += len;
}


#define ngx_ai_relay_prom_str(out, s)                                         \
    ngx_ai_relay_prom_raw(out, s, strlen(s))


void
ngx_ai_relay_prom_family(ngx_ai_relay_prom_out_t *out, const char *name,
    const char *type, const char *help)
{
    ngx_ai_relay_prom_str(out, "# HELP ");
    ngx_ai_relay_prom_str(out, name);
    ngx_ai_relay_prom_raw(out, " ", 1);
    ngx_ai_relay_prom_str(out, help);
    ngx_ai_relay_prom_str(out, "\n# TYPE ");
    ngx_ai_relay_prom_str(out, name);
    ngx_ai_relay_prom_raw(out, " ", 1);
    ngx_ai_relay_prom_str(out, type);
    ngx_ai_relay_prom_raw(out, "\n", 1);
}


static void
ngx_ai_relay_prom_labels(ngx_ai_relay_prom_out_t *out,
    const ngx_ai_relay_prom_label_t *labels, size_t nlabels)
{
    size_t  i, n;

    if (nlabels == 0) {
        return;
    }

    ngx_ai_relay_prom_raw(out, "{", 1);

    for (i = 0; i < nlabels; i++) {
        if (i) {
            ngx_ai_relay_prom_raw(out, ",", 1);
        }

        ngx_ai_relay_prom_str(out, labels[i].name);
        ngx_ai_relay_prom_raw(out, "=\"", 2);

        n = ngx_ai_relay_prom_escape(out->pos, labels[i].value,
                                     labels[i].len);
        if (out->pos) {
            out->pos += n;
        }

        out->len += n;

        ngx_ai_relay_prom_raw(out, "\"", 1);
    }

    ngx_ai_relay_prom_raw(out, "}", 1);
}


void
ngx_ai_relay_prom_sample(ngx_ai_relay_prom_out_t *out, const char *name,
    const char *suffix, const ngx_ai_relay_prom_label_t *labels,
    size_t nlabels, const char *value)
{
    ngx_ai_relay_prom_str(out, name);

    if (suffix) {
        ngx_ai_relay_prom_str(out, suffix);
    }

    ngx_ai_relay_prom_labels(out, labels, nlabels);
    ngx_ai_relay_prom_raw(out, " ", 1);
    ngx_ai_relay_prom_str(out, value);
    ngx_ai_relay_prom_raw(out, "\n", 1);
}


void
ngx_ai_relay_prom_sample_uint(ngx_ai_relay_prom_out_t *out, const char *name,
    const ngx_ai_relay_prom_label_t *labels, size_t nlabels, uint64_t v)
{
    char  buf[NGX_AI_RELAY_PROM_NUM_LEN];

    (void) ngx_ai_relay_prom_uint(buf, v);
    ngx_ai_relay_prom_sample(out, name, NULL, labels, nlabels, buf);
}


size_t
ngx_ai_relay_prom_bucket(const ngx_ai_relay_prom_bounds_t *bounds,
    uint64_t v)
{
    size_t  i;

    for (i = 0; i < bounds->n; i++) {
        if (v <= bounds->le[i]) {
            return i;
        }
    }

    return bounds->n;
}


void
ngx_ai_relay_prom_observe(ngx_ai_relay_prom_hist_t *h,
    const ngx_ai_relay_prom_bounds_t *bounds, uint64_t v)
{
    h->count++;
    h->sum += v;
    h->bucket[ngx_ai_relay_prom_bucket(bounds, v)]++;
}


void
ngx_ai_relay_prom_hist_add(ngx_ai_relay_prom_hist_t *dst,
    const ngx_ai_relay_prom_hist_t *src)
{
    size_t  i;

    dst->count += src->count;
    dst->sum += src->sum;

    for (i = 0; i < NGX_AI_RELAY_PROM_BUCKETS; i++) {
        dst->bucket[i] += src->bucket[i];
    }
}


void
ngx_ai_relay_prom_histogram(ngx_ai_relay_prom_out_t *out, const char *name,
    const ngx_ai_relay_prom_label_t *labels, size_t nlabels,
    const ngx_ai_relay_prom_hist_t *h,
    const ngx_ai_relay_prom_bounds_t *bounds)
{
    char                       le[NGX_AI_RELAY_PROM_NUM_LEN];
    char                       num[NGX_AI_RELAY_PROM_NUM_LEN];
    size_t                     i, n;
    uint64_t                   cum;
    ngx_ai_relay_prom_label_t  lab[NGX_AI_RELAY_PROM_LABELS_MAX + 1];

    if (nlabels > NGX_AI_RELAY_PROM_LABELS_MAX) {
        nlabels = NGX_AI_RELAY_PROM_LABELS_MAX;
    }

    if (nlabels) {
        memcpy(lab, labels, nlabels * sizeof(ngx_ai_relay_prom_label_t));
    }

    lab[nlabels].name = "le";
    lab[nlabels].value = (const unsigned char *) le;

    cum = 0;

    for (i = 0; i <= bounds->n; i++) {
        cum += h->bucket[i];

        if (i < bounds->n) {
            n = ngx_ai_relay_prom_fixed(le, (int64_t) bounds->le[i],
                                        bounds->scale);

        } else {
            n = 4;
            memcpy(le, "+Inf", 5);
        }

        lab[nlabels].len = n;

        (void) ngx_ai_relay_prom_uint(num, cum);
        ngx_ai_relay_prom_sample(out, name, "_bucket", lab, nlabels + 1, num);
    }

    (void) ngx_ai_relay_prom_fixed(num, (int64_t) h->sum, bounds->scale);
    ngx_ai_relay_prom_sample(out, name, "_sum", labels, nlabels, num);

    (void) ngx_ai_relay_prom_uint(num, h->count);
    ngx_ai_relay_prom_sample(out, name, "_count", labels, nlabels, num);
}
