
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


static void
test_normal(void **state)
{
    size_t          i, n;
    unsigned char   out[NGX_AI_RELAY_VTASK_WORD_MAX];

    static const char  *cases[][2] = {
        { "queued", "queued" },
        { "completed", "completed" },
        { "SUCCEEDED", "completed" },
        { "success", "completed" },
        { "succeed", "completed" },
        { "CANCELED", "cancelled" },
        { "cancelled", "cancelled" },
        { "FAILED", "failed" },
        { "failure", "failed" },
        { "PENDING", "queued" },
        { "submitted", "queued" },
        { "queueing", "queued" },
        { "RUNNING", "in_progress" },
        { "processing", "in_progress" },
        { "UNKNOWN", "unknown" },
        { "In_Progress", "in_progress" },
        { "abcdefghijklmnopqrstuvwxyz_01234",
          "abcdefghijklmnopqrstuvwxyz_01234" }
    };

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        memset(out, 'X', sizeof(out));
        n = ngx_ai_relay_vtask_normal((const unsigned char *) cases[i][0],
                                      strlen(cases[i][0]), out);
        assert_int_equal(n, strlen(cases[i][1]));
        assert_memory_equal(out, cases[i][1], n);
    }

    /* what normal makes of DashScope's words ends the task as ours do */
    n = ngx_ai_relay_vtask_normal((const unsigned char *) "SUCCEEDED", 9, out);
    assert_int_equal(ngx_ai_relay_vtask_end(out, n),
                     NGX_AI_RELAY_VTASK_COMPLETED);
    n = ngx_ai_relay_vtask_normal((const unsigned char *) "CANCELED", 8, out);
    assert_int_equal(ngx_ai_relay_vtask_end(out, n), NGX_AI_RELAY_VTASK_LOST);

    /* not a status word: nothing */
    assert_int_equal(ngx_ai_relay_vtask_normal((const unsigned char *) "", 0,
                                               out), 0);
    assert_int_equal(ngx_ai_relay_vtask_normal((const unsigned char *)
                                               "in progress", 11, out), 0);
    assert_int_equal(ngx_ai_relay_vtask_normal((const unsigned char *)
                         "abcdefghijklmnopqrstuvwxyz_012345", 33, out), 0);
}


static void
test_api(void **state)
{
    const ngx_ai_relay_vtask_api_t  *api;

    api = ngx_ai_relay_vtask_api(NULL, 0);
    assert_non_null(api);
    assert_string_equal(api->name, "video");
    assert_string_equal(api->poll, "/v1/videos/");

    api = ngx_ai_relay_vtask_api("", 0);
    assert_string_equal(api->name, "video");

    api = ngx_ai_relay_vtask_api("generation", 10);
    assert_non_null(api);
    assert_string_equal(api->id, "task_id");
    assert_string_equal(api->poll, "/v1/video/generations/");

    api = ngx_ai_relay_vtask_api("dashscope", 9);
    assert_non_null(api);
    assert_string_equal(api->id, "output.task_id");
    assert_string_equal(api->status, "output.task_status");
    assert_string_equal(api->poll, "/api/v1/tasks/");

    assert_null(ngx_ai_relay_vtask_api("dashscop", 8));
    assert_null(ngx_ai_relay_vtask_api("videos", 6));
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_word),
        cmocka_unit_test(test_end),
        cmocka_unit_test(test_verdict),
        cmocka_unit_test(test_normal),
        cmocka_unit_test(test_api),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
