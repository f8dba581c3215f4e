
/*
 * Copyright (C) ngx_ai_relay authors
 *
 * The breaker of a channel key: its states, cool-downs and probes, with
 * the time passed in.
 */


#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "ngx_ai_relay_breaker.h"


static const ngx_ai_relay_breaker_conf_t  conf = {
    3,          /* failures */
    10000,      /* cooldown_ms */
    300000,     /* max_ms */
    60000       /* probe_ms */
};


#define FAIL  NGX_AI_RELAY_OUTCOME_FAIL
#define OK    NGX_AI_RELAY_OUTCOME_OK
#define RATE  NGX_AI_RELAY_OUTCOME_RATE
#define AUTH  NGX_AI_RELAY_OUTCOME_AUTH


static void
test_failures_open(void **state)
{
    ngx_ai_relay_breaker_t  b;

    memset(&b, 0, sizeof(b));

    assert_true(ngx_ai_relay_breaker_take(&b, 0, &conf));
    assert_int_equal(ngx_ai_relay_breaker_report(&b, FAIL, 500, -1, 0, &conf),
                     0);
    assert_int_equal(ngx_ai_relay_breaker_report(&b, FAIL, 502, -1, 1, &conf),
                     0);
    assert_int_equal(b.state, NGX_AI_RELAY_BREAKER_CLOSED);
    assert_true(ngx_ai_relay_breaker_ready(&b, 2));

    /* the third in a row opens it for the cool-down */

    assert_int_equal(ngx_ai_relay_breaker_report(&b, FAIL, 0, -1, 2, &conf),
                     1);
    assert_int_equal(b.state, NGX_AI_RELAY_BREAKER_OPEN);
    assert_int_equal(b.reason, FAIL);
    assert_int_equal(b.until_ms, 10002);
    assert_false(ngx_ai_relay_breaker_ready(&b, 10001));
    assert_false(ngx_ai_relay_breaker_take(&b, 10001, &conf));
    assert_true(ngx_ai_relay_breaker_ready(&b, 10002));
}


static void
test_success_resets_the_run(void **state)
{
    ngx_ai_relay_breaker_t  b;

    memset(&b, 0, sizeof(b));

    ngx_ai_relay_breaker_report(&b, FAIL, 500, -1, 0, &conf);
    ngx_ai_relay_breaker_report(&b, FAIL, 500, -1, 0, &conf);
    ngx_ai_relay_breaker_report(&b, OK, 200, -1, 0, &conf);
    ngx_ai_relay_breaker_report(&b, FAIL, 500, -1, 0, &conf);
    ngx_ai_relay_breaker_report(&b, FAIL, 500, -1, 0, &conf);

    assert_int_equal(b.state, NGX_AI_RELAY_BREAKER_CLOSED);
    assert_int_equal(b.failures, 2);
}


static void
test_probe(void **state)
{
    ngx_ai_relay_breaker_t  b;

    memset(&b, 0, sizeof(b));

    ngx_ai_relay_breaker_report(&b, AUTH, 401, -1, 0, &conf);
    assert_int_equal(b.state, NGX_AI_RELAY_BREAKER_OPEN);

    /* one probe after the cool-down, the others wait for it */

    assert_true(ngx_ai_relay_breaker_take(&b, 10000, &conf));
    assert_int_equal(b.state, NGX_AI_RELAY_BREAKER_HALF_OPEN);
    assert_false(ngx_ai_relay_breaker_ready(&b, 10001));
    assert_false(ngx_ai_relay_breaker_take(&b, 10001, &conf));

    /* the probe fails: open again, twice as long */

    assert_int_equal(ngx_ai_relay_breaker_report(&b, FAIL, 500, -1, 10500,
                                                 &conf), 1);
    assert_int_equal(b.state, NGX_AI_RELAY_BREAKER_OPEN);
    assert_int_equal(b.until_ms, 10500 + 20000);

    /* the next probe succeeds: closed, the run forgotten */

    assert_true(ngx_ai_relay_breaker_take(&b, 30500, &conf));
    ngx_ai_relay_breaker_report(&b, OK, 200, -1, 30600, &conf);
    assert_int_equal(b.state, NGX_AI_RELAY_BREAKER_CLOSED);
    assert_int_equal(b.opens, 0);
    assert_true(ngx_ai_relay_breaker_take(&b, 30601, &conf));
}


static void
test_lost_probe(void **state)
{
    ngx_ai_relay_breaker_t  b;

    memset(&b, 0, sizeof(b));

    ngx_ai_relay_breaker_report(&b, AUTH, 403, -1, 0, &conf);
    assert_true(ngx_ai_relay_breaker_take(&b, 10000, &conf));

    /* its worker died: after probe_ms another request probes */

    assert_false(ngx_ai_relay_breaker_take(&b, 69999, &conf));
    assert_true(ngx_ai_relay_breaker_take(&b, 70000, &conf));
}


static void
test_cooldown_grows_to_max(void **state)
{
    int                     i;
    int64_t                 now;
    ngx_ai_relay_breaker_t  b;

    memset(&b, 0, sizeof(b));

    now = 0;
    ngx_ai_relay_breaker_report(&b, AUTH, 401, -1, now, &conf);

    for (i = 0; i < 12; i++) {
        now = b.until_ms;
        assert_true(ngx_ai_relay_breaker_take(&b, now, &conf));
        ngx_ai_relay_breaker_report(&b, AUTH, 401, -1, now, &conf);
    }

    assert_int_equal(b.until_ms - now, 300000);
}


static void
test_rate_limited(void **state)
{
    ngx_ai_relay_breaker_t  b;

    memset(&b, 0, sizeof(b));

    /* benched for the Retry-After at once, not counted as broken */

    assert_int_equal(ngx_ai_relay_breaker_report(&b, RATE, 429, 60000, 5,
                                                 &conf), 1);
    assert_int_equal(b.state, NGX_AI_RELAY_BREAKER_OPEN);
    assert_int_equal(b.reason, RATE);
    assert_int_equal(b.until_ms, 60005);
    assert_int_equal(b.opens, 0);

    /* a shorter Retry-After does not shorten the bench */

    assert_int_equal(ngx_ai_relay_breaker_report(&b, RATE, 429, 1000, 6,
                                                 &conf), 0);
    assert_int_equal(b.until_ms, 60005);

    /* without Retry-After: the cool-down */

    memset(&b, 0, sizeof(b));
    ngx_ai_relay_breaker_report(&b, RATE, 429, -1, 0, &conf);
    assert_int_equal(b.until_ms, 10000);
}


static void
test_names(void **state)
{
    assert_string_equal(ngx_ai_relay_breaker_state_name(1), "open");
    assert_string_equal(ngx_ai_relay_breaker_state_name(9), "unknown");
    assert_string_equal(ngx_ai_relay_breaker_reason_name(AUTH),
                        "key_refused");
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_failures_open),
        cmocka_unit_test(test_success_resets_the_run),
        cmocka_unit_test(test_probe),
        cmocka_unit_test(test_lost_probe),
        cmocka_unit_test(test_cooldown_grows_to_max),
        cmocka_unit_test(test_rate_limited),
        cmocka_unit_test(test_names),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
