
/*
 * Copyright (C) ngx_ai_relay authors
 */


#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ngx_ai_relay_prom.h"


#define S(s)  (const unsigned char *) (s), sizeof(s) - 1


/* both passes: the length counted equals the bytes written */

static char *
render(void (*fill)(ngx_ai_relay_prom_out_t *out, void *data), void *data)
{
    char                     *buf;
    size_t                    need;
    ngx_ai_relay_prom_out_t   out;

    out.pos = NULL;
    out.len = 0;
    fill(&out, data);
    need = out.len;

    buf = malloc(need + 1);
    assert_non_null(buf);
    memset(buf, '#', need + 1);

    out.pos = (unsigned char *) buf;
    out.len = 0;
    fill(&out, data);

    assert_int_equal(out.len, need);
    assert_ptr_equal(out.pos, (unsigned char *) buf + need);
    assert_int_equal(buf[need], '#');

    buf[need] = '\0';

    return buf;
}


static void
check_escape(const unsigned char *in, size_t len, const char *want)
{
    char    out[256];
    size_t  n;

    n = ngx_ai_relay_prom_escape(NULL, in, len);
    assert_int_equal(n, strlen(want));

    memset(out, 0, sizeof(out));
    assert_int_equal(ngx_ai_relay_prom_escape((unsigned char *) out, in, len),
                     n);
    assert_string_equal(out, want);
}


static void
test_escape(void **state)
{
    check_escape(S(""), "");
    check_escape(S("gpt-4o-mini"), "gpt-4o-mini");
    check_escape(S("a\"b"), "a\\\"b");
    check_escape(S("a\\b"), "a\\\\b");
    check_escape(S("a\nb"), "a\\nb");
    check_escape(S("\"\\\n"), "\\\"\\\\\\n");
    check_escape(S("tab\there"), "tab\there");

    /* UTF-8 passes through; anything else becomes the text \xHH */

    check_escape(S("caf\xc3\xa9"), "caf\xc3\xa9");
    check_escape(S("\xe2\x80\xa6"), "\xe2\x80\xa6");
    check_escape(S("\xf0\x9f\x98\x80"), "\xf0\x9f\x98\x80");
    check_escape(S("a\xff" "b"), "a\\\\xffb");
    check_escape(S("\xc3"), "\\\\xc3");
    check_escape(S("\xc0\xaf"), "\\\\xc0\\\\xaf");
    check_escape(S("\xe0\x80\xaf"), "\\\\xe0\\\\x80\\\\xaf");
    check_escape(S("\xed\xa0\x80"), "\\\\xed\\\\xa0\\\\x80");
    check_escape(S("\xf4\x90\x80\x80"), "\\\\xf4\\\\x90\\\\x80\\\\x80");
    check_escape(S("\xe2\x80"), "\\\\xe2\\\\x80");
}


static void
test_numbers(void **state)
{
    char  buf[NGX_AI_RELAY_PROM_NUM_LEN];

    assert_int_equal(ngx_ai_relay_prom_uint(buf, 0), 1);
    assert_string_equal(buf, "0");
    assert_int_equal(ngx_ai_relay_prom_uint(buf, UINT64_MAX), 20);
    assert_string_equal(buf, "18446744073709551615");

    assert_int_equal(ngx_ai_relay_prom_int(buf, -42), 3);
    assert_string_equal(buf, "-42");
    (void) ngx_ai_relay_prom_int(buf, INT64_MIN);
    assert_string_equal(buf, "-9223372036854775808");

    assert_int_equal(ngx_ai_relay_prom_fixed(buf, 0, 6), 1);
    assert_string_equal(buf, "0");
    (void) ngx_ai_relay_prom_fixed(buf, 1500, 3);
    assert_string_equal(buf, "1.5");
    (void) ngx_ai_relay_prom_fixed(buf, 5, 3);
    assert_string_equal(buf, "0.005");
    (void) ngx_ai_relay_prom_fixed(buf, 1000, 3);
    assert_string_equal(buf, "1");
    (void) ngx_ai_relay_prom_fixed(buf, 7200, 6);
    assert_string_equal(buf, "0.0072");
    (void) ngx_ai_relay_prom_fixed(buf, 1234567, 6);
    assert_string_equal(buf, "1.234567");
    (void) ngx_ai_relay_prom_fixed(buf, -250, 3);
    assert_string_equal(buf, "-0.25");
    (void) ngx_ai_relay_prom_fixed(buf, 42, 0);
    assert_string_equal(buf, "42");
    (void) ngx_ai_relay_prom_fixed(buf, INT64_MIN, 6);
    assert_string_equal(buf, "-9223372036854.775808");
    (void) ngx_ai_relay_prom_fixed(buf, 1, 19);
    assert_string_equal(buf, "0.0000000000000000001");
}


static void
fill_samples(ngx_ai_relay_prom_out_t *out, void *data)
{
    ngx_ai_relay_prom_label_t  l[2];

    l[0].name = "model";
    l[0].value = (const unsigned char *) "we\"ird\\one\n";
    l[0].len = strlen((const char *) l[0].value);
    l[1].name = "channel";
    l[1].value = (const unsigned char *) "1";
    l[1].len = 1;

    ngx_ai_relay_prom_family(out, "ai_relay_requests_total", "counter",
                             "Requests.");
    ngx_ai_relay_prom_sample_uint(out, "ai_relay_requests_total", l, 2, 7);
    ngx_ai_relay_prom_sample(out, "ai_relay_up", NULL, NULL, 0, "1");
    ngx_ai_relay_prom_sample(out, "ai_relay_x", "_sum", l + 1, 1, "0.5");
}


static void
test_samples(void **state)
{
    char  *s;

    s = render(fill_samples, NULL);

    assert_string_equal(s,
        "# HELP ai_relay_requests_total Requests.\n"
        "# TYPE ai_relay_requests_total counter\n"
        "ai_relay_requests_total{model=\"we\\\"ird\\\\one\\n\","
        "channel=\"1\"} 7\n"
        "ai_relay_up 1\n"
        "ai_relay_x_sum{channel=\"1\"} 0.5\n");

    free(s);
}


static const uint64_t  le_ms[] = { 5, 100, 1000, 2500 };

static const ngx_ai_relay_prom_bounds_t  bounds = { 4, le_ms, 3 };


static void
test_buckets(void **state)
{
    assert_int_equal(ngx_ai_relay_prom_bucket(&bounds, 0), 0);
    assert_int_equal(ngx_ai_relay_prom_bucket(&bounds, 5), 0);
    assert_int_equal(ngx_ai_relay_prom_bucket(&bounds, 6), 1);
    assert_int_equal(ngx_ai_relay_prom_bucket(&bounds, 100), 1);
    assert_int_equal(ngx_ai_relay_prom_bucket(&bounds, 2500), 3);
    assert_int_equal(ngx_ai_relay_prom_bucket(&bounds, 2501), 4);
    assert_int_equal(ngx_ai_relay_prom_bucket(&bounds, UINT64_MAX), 4);
}


static void
fill_histogram(ngx_ai_relay_prom_out_t *out, void *data)
{
    ngx_ai_relay_prom_label_t  l;

    l.name = "model";
    l.value = (const unsigned char *) "m";
    l.len = 1;

    ngx_ai_relay_prom_family(out, "h_seconds", "histogram", "H.");
    ngx_ai_relay_prom_histogram(out, "h_seconds", &l, 1, data, &bounds);
    ngx_ai_relay_prom_histogram(out, "h_seconds", NULL, 0, data, &bounds);
}


static void
test_histogram(void **state)
{
    char                      *s;
    ngx_ai_relay_prom_hist_t   h, sum;

    memset(&h, 0, sizeof(h));

    ngx_ai_relay_prom_observe(&h, &bounds, 3);
    ngx_ai_relay_prom_observe(&h, &bounds, 5);
    ngx_ai_relay_prom_observe(&h, &bounds, 250);
    ngx_ai_relay_prom_observe(&h, &bounds, 9000);

    assert_int_equal(h.count, 4);
    assert_int_equal(h.sum, 9258);
    assert_int_equal(h.bucket[0], 2);
    assert_int_equal(h.bucket[1], 0);
    assert_int_equal(h.bucket[2], 1);
    assert_int_equal(h.bucket[3], 0);
    assert_int_equal(h.bucket[4], 1);

    s = render(fill_histogram, &h);

    assert_string_equal(s,
        "# HELP h_seconds H.\n"
        "# TYPE h_seconds histogram\n"
        "h_seconds_bucket{model=\"m\",le=\"0.005\"} 2\n"
        "h_seconds_bucket{model=\"m\",le=\"0.1\"} 2\n"
        "h_seconds_bucket{model=\"m\",le=\"1\"} 3\n"
        "h_seconds_bucket{model=\"m\",le=\"2.5\"} 3\n"
        "h_seconds_bucket{model=\"m\",le=\"+Inf\"} 4\n"
        "h_seconds_sum{model=\"m\"} 9.258\n"
        "h_seconds_count{model=\"m\"} 4\n"
        "h_seconds_bucket{le=\"0.005\"} 2\n"
        "h_seconds_bucket{le=\"0.1\"} 2\n"
        "h_seconds_bucket{le=\"1\"} 3\n"
        "h_seconds_bucket{le=\"2.5\"} 3\n"
        "h_seconds_bucket{le=\"+Inf\"} 4\n"
        "h_seconds_sum 9.258\n"
        "h_seconds_count 4\n");

    free(s);

    /* a worker's histogram folded into another */

    memset(&sum, 0, sizeof(sum));
    ngx_ai_relay_prom_observe(&sum, &bounds, 100);
    ngx_ai_relay_prom_hist_add(&sum, &h);

    assert_int_equal(sum.count, 5);
    assert_int_equal(sum.sum, 9358);
    assert_int_equal(sum.bucket[0], 2);
    assert_int_equal(sum.bucket[1], 1);
    assert_int_equal(sum.bucket[4], 1);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_escape),
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_samples),
        cmocka_unit_test(test_buckets),
        cmocka_unit_test(test_histogram),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
