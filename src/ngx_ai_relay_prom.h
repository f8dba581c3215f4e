
/*
 * Copyright (C) ngx_ai_relay authors
 */


#ifndef _NGX_AI_RELAY_PROM_H_INCLUDED_
#define _NGX_AI_RELAY_PROM_H_INCLUDED_


/*
 * The Prometheus text exposition format (version 0.0.4), nginx-free:
 * label values escaped, samples, histograms with cumulative buckets.
 *
 * Output is written in two passes with the same calls: first with
 * out->pos NULL, which only adds up out->len (the bytes needed), then
 * into a buffer of that size.
 *
 * A histogram keeps a count per bucket (not cumulative) in the unit it
 * observes (milliseconds for the relay's latencies); its bounds say how
 * many decimal places turn that unit into the base unit (3: ms to s).
 */


#include <stddef.h>
#include <stdint.h>


/* buckets of a histogram, +Inf included */
#define NGX_AI_RELAY_PROM_BUCKETS    16

/* a 64-bit integer, a sign, a dot, up to 20 decimals, a NUL */
#define NGX_AI_RELAY_PROM_NUM_LEN    48


typedef struct {
    unsigned char               *pos;           /* NULL: count only */
    size_t                       len;           /* written, or needed */
} ngx_ai_relay_prom_out_t;


typedef struct {
    const char                  *name;
    const unsigned char         *value;
    size_t                       len;
} ngx_ai_relay_prom_label_t;


typedef struct {
    size_t                       n;             /* finite bounds */
    const uint64_t              *le;            /* ascending */
    unsigned                     scale;         /* decimals to base unit */
} ngx_ai_relay_prom_bounds_t;


typedef struct {
    uint64_t                     count;
    uint64_t                     sum;
    uint64_t                     bucket[NGX_AI_RELAY_PROM_BUCKETS];
} ngx_ai_relay_prom_hist_t;


/* the escaped value's length; written to dst unless NULL */
size_t ngx_ai_relay_prom_escape(unsigned char *dst, const unsigned char *src,
    size_t len);

/* a decimal, NUL ended; its length */
size_t ngx_ai_relay_prom_uint(char *buf, uint64_t v);
size_t ngx_ai_relay_prom_int(char *buf, int64_t v);

/* v / 10^scale, without trailing zeros: 1500, 3 -> "1.5" */
size_t ngx_ai_relay_prom_fixed(char *buf, int64_t v, unsigned scale);

void ngx_ai_relay_prom_raw(ngx_ai_relay_prom_out_t *out, const char *s,
    size_t len);

/* "# HELP name help" and "# TYPE name type" */
void ngx_ai_relay_prom_family(ngx_ai_relay_prom_out_t *out, const char *name,
    const char *type, const char *help);

/* "name{a="x",b="y"} value": suffix may be NULL, so may labels */
void ngx_ai_relay_prom_sample(ngx_ai_relay_prom_out_t *out,
    const char *name, const char *suffix,
    const ngx_ai_relay_prom_label_t *labels, size_t nlabels,
    const char *value);

void ngx_ai_relay_prom_sample_uint(ngx_ai_relay_prom_out_t *out,
    const char *name, const ngx_ai_relay_prom_label_t *labels,
    size_t nlabels, uint64_t v);

/* the bucket v falls in (n for +Inf) */
size_t ngx_ai_relay_prom_bucket(const ngx_ai_relay_prom_bounds_t *bounds,
    uint64_t v);

void ngx_ai_relay_prom_observe(ngx_ai_relay_prom_hist_t *h,
    const ngx_ai_relay_prom_bounds_t *bounds, uint64_t v);

void ngx_ai_relay_prom_hist_add(ngx_ai_relay_prom_hist_t *dst,
    const ngx_ai_relay_prom_hist_t *src);

/* name_bucket{...,le="..."} (cumulative, +Inf last), name_sum, _count */
void ngx_ai_relay_prom_histogram(ngx_ai_relay_prom_out_t *out,
    const char *name, const ngx_ai_relay_prom_label_t *labels,
    size_t nlabels, const ngx_ai_relay_prom_hist_t *h,
    const ngx_ai_relay_prom_bounds_t *bounds);


#endif /* _NGX_AI_RELAY_PROM_H_INCLUDED_ */
