
/*
 * Copyright (C) ngx_ai_relay authors
 *
 * Video task statuses: the words REFUND takes, which end a task, and the
 * reconciling pass's verdict (deadline, expires_at, unknown tasks).
 */


#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "ngx_ai_relay_vtask.h"


#define WORD(s)  ngx_ai_relay_vtask_word((const unsigned char *) (s),        \
                                         strlen(s))
#define END(s)   ngx_ai_relay_vtask_end((const unsigned char *) (s), strlen(s))

#define NOW      1767225600
#define DAY      86400


static void
test_word(void **state)
{
    assert_true(WORD("queued"));
    assert_true(WORD("in_progress"));
    assert_true(WORD("IN_PROGRESS2"));
    assert_true(WORD("abcdefghijklmnopqrstuvwxyz_01234"));     /* 32 */

    assert_false(WORD(""));
    assert_false(WORD("abcdefghijklmnopqrstuvwxyz_012345"));   /* 33 */
    assert_false(WORD("in progress"));
    assert_false(WORD("failed\""));
    assert_false(WORD("a:b"));
    assert_false(WORD("caf\xc3\xa9"));
    assert_false(ngx_ai_relay_vtask_word((const unsigned char *) "ok\0x", 4));
}


static void
test_end(void **state)
{
    assert_int_equal(END("completed"), NGX_AI_RELAY_VTASK_COMPLETED);
    assert_int_equal(END("failed"), NGX_AI_RELAY_VTASK_LOST);
    assert_int_equal(END("cancelled"), NGX_AI_RELAY_VTASK_LOST);
    assert_int_equal(END("expired"), NGX_AI_RELAY_VTASK_LOST);
    assert_int_equal(END("deleted"), NGX_AI_RELAY_VTASK_LOST);

    assert_int_equal(END("queued"), NGX_AI_RELAY_VTASK_RUNNING);
    assert_int_equal(END("in_progress"), NGX_AI_RELAY_VTASK_RUNNING);
    assert_int_equal(END("processing"), NGX_AI_RELAY_VTASK_RUNNING);

    /* exact words only */
    assert_int_equal(END("Completed"), NGX_AI_RELAY_VTASK_RUNNING);
    assert_int_equal(END("fail"), NGX_AI_RELAY_VTASK_RUNNING);
    assert_int_equal(END("failed_"), NGX_AI_RELAY_VTASK_RUNNING);
    assert_int_equal(ngx_ai_relay_vtask_end((const unsigned char *)
                                            "completed", 8),
                     NGX_AI_RELAY_VTASK_RUNNING);
}


static void
test_verdict(void **state)
{
    const char  *v;

    /* an ended task: what the upstream said, deadline or not */
    assert_string_equal(ngx_ai_relay_vtask_verdict("failed", NOW, NOW - 60,
                                                   0, DAY), "failed");
    assert_string_equal(ngx_ai_relay_vtask_verdict("completed", NOW,
                                                   NOW - 2 * DAY, 0, DAY),
                        "completed");
    assert_string_equal(ngx_ai_relay_vtask_verdict("cancelled", NOW,
                                                   NOW - 2 * DAY, 0, DAY),
                        "cancelled");

    /* unfinished: before its deadline, recorded; at or past it, expired */
    assert_string_equal(ngx_ai_relay_vtask_verdict("in_progress", NOW,
                                                   NOW - DAY + 1, 0, DAY),
                        "in_progress");
    assert_string_equal(ngx_ai_relay_vtask_verdict("in_progress", NOW,
                                                   NOW - DAY, 0, DAY),
                        "expired");
    assert_string_equal(ngx_ai_relay_vtask_verdict("queued", NOW,
                                                   NOW - 3 * DAY, 0, DAY),
                        "expired");

    /* the upstream's expires_at is the deadline of an unfinished task */
    assert_string_equal(ngx_ai_relay_vtask_verdict("queued", NOW, NOW - 60,
                                                   NOW - 1, DAY),
                        "expired");
    assert_string_equal(ngx_ai_relay_vtask_verdict("queued", NOW,
                                                   NOW - 2 * DAY, NOW + 60,
                                                   DAY),
                        "queued");

    /* unknown upstream (404): nothing to tell until the deadline */
    v = ngx_ai_relay_vtask_verdict(NULL, NOW, NOW - 60, 0, DAY);
    assert_null(v);
    assert_string_equal(ngx_ai_relay_vtask_verdict(NULL, NOW, NOW - DAY, 0,
                                                   DAY),
                        "expired");

    /* ... and an unknown task's expires_at means nothing */
    assert_null(ngx_ai_relay_vtask_verdict(NULL, NOW, NOW - 60, NOW - 1,
                                           DAY));
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_word),
        cmocka_unit_test(test_end),
        cmocka_unit_test(test_verdict),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
