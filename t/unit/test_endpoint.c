
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

#include "ngx_ai_relay_endpoint.h"


static const ngx_ai_relay_endpoint_t *
find(const char *path, char *name)
{
    size_t                          n;
    const unsigned char            *p;
    const ngx_ai_relay_endpoint_t  *ep;

    ep = ngx_ai_relay_endpoint_find((const unsigned char *) path,
                                    strlen(path), &p, &n);
    name[0] = '\0';

    if (p) {
        memcpy(name, p, n);
        name[n] = '\0';
    }

    return ep;
}


static void
test_known(void **state)
{
    char                            name[64];
    const ngx_ai_relay_endpoint_t  *ep;

    ep = find("/v1/chat/completions", name);
    assert_non_null(ep);
    assert_int_equal(ep->id, NGX_AI_RELAY_EP_CHAT);
    assert_int_equal(ep->methods, NGX_AI_RELAY_EP_POST);
    assert_string_equal(name, "");

    ep = find("/fallback/v1/chat/completions", name);
    assert_non_null(ep);
    assert_int_equal(ep->id, NGX_AI_RELAY_EP_CHAT);

    ep = find("/v1/completions", name);
    assert_int_equal(ep->id, NGX_AI_RELAY_EP_COMPLETIONS);

    ep = find("/v1/messages/count_tokens", name);
    assert_int_equal(ep->id, NGX_AI_RELAY_EP_COUNT_TOKENS);
    assert_int_equal(ep->price, NGX_AI_RELAY_EP_PRICE_FREE);

    ep = find("/v1beta/models/gemini-2.0-flash:streamGenerateContent",
              name);
    assert_int_equal(ep->id, NGX_AI_RELAY_EP_GEMINI_STREAM);
    assert_string_equal(name, "gemini-2.0-flash");

    ep = find("/small/v1beta/models/g:countTokens", name);
    assert_int_equal(ep->id, NGX_AI_RELAY_EP_GEMINI_COUNT_TOKENS);
    assert_string_equal(name, "g");

    ep = find("/v1/models/gpt-4o-mini", name);
    assert_int_equal(ep->id, NGX_AI_RELAY_EP_MODEL);
    assert_string_equal(name, "gpt-4o-mini");

    ep = find("/v1beta/models", name);
    assert_int_equal(ep->id, NGX_AI_RELAY_EP_MODELS);

    ep = find("/dashboard/billing/usage", name);
    assert_int_equal(ep->id, NGX_AI_RELAY_EP_USAGE);

    ep = find("/v1/dashboard/billing/subscription", name);
    assert_int_equal(ep->id, NGX_AI_RELAY_EP_SUBSCRIPTION);

    ep = find("/v1/audio/speech", name);
    assert_int_equal(ep->price, NGX_AI_RELAY_EP_PRICE_CHARS);

    ep = find("/v1/images/edits", name);
    assert_int_equal(ep->body, NGX_AI_RELAY_EP_BODY_MULTIPART);

    ep = find("/v1/videos", name);
    assert_int_equal(ep->id, NGX_AI_RELAY_EP_VIDEO_CREATE);
    assert_int_equal(ep->price, NGX_AI_RELAY_EP_PRICE_TASK);

    ep = find("/v1/videos/video_123", name);
    assert_int_equal(ep->id, NGX_AI_RELAY_EP_VIDEO_GET);
    assert_string_equal(name, "video_123");

    ep = find("/v1/videos/video_123/content", name);
    assert_int_equal(ep->id, NGX_AI_RELAY_EP_VIDEO_CONTENT);
    assert_string_equal(name, "video_123");

    ep = find("/v1/videos/video_123/remix", name);
    assert_int_equal(ep->id, NGX_AI_RELAY_EP_VIDEO_REMIX);
    assert_int_equal(ep->body, NGX_AI_RELAY_EP_BODY_JSON);
    assert_int_equal(ep->price, NGX_AI_RELAY_EP_PRICE_TASK);
    assert_string_equal(name, "video_123");

    ep = find("/v1/video/generations", name);
    assert_int_equal(ep->id, NGX_AI_RELAY_EP_VGEN_CREATE);
    assert_int_equal(ep->price, NGX_AI_RELAY_EP_PRICE_TASK);

    ep = find("/v1/video/generations/task_9", name);
    assert_int_equal(ep->id, NGX_AI_RELAY_EP_VGEN_GET);
    assert_int_equal(ep->body, NGX_AI_RELAY_EP_BODY_TASK);
    assert_string_equal(name, "task_9");

    ep = find("/api/v1/services/aigc/text2image/image-synthesis", name);
    assert_int_equal(ep->id, NGX_AI_RELAY_EP_DS_IMAGE);

    ep = find("/api/v1/services/aigc/video-generation/video-synthesis",
              name);
    assert_int_equal(ep->id, NGX_AI_RELAY_EP_DS_VIDEO);

    ep = find("/api/v1/tasks/86ecf553-d340-4e21-af6e-a0c6a421c010", name);
    assert_int_equal(ep->id, NGX_AI_RELAY_EP_DS_TASK);
    assert_string_equal(name, "86ecf553-d340-4e21-af6e-a0c6a421c010");
}


static void
test_unknown(void **state)
{
    char  name[64];

    assert_null(find("/v1/fine_tuning/jobs", name));
    assert_null(find("/v1/assistants", name));
    assert_null(find("/v1/realtime/sessions", name));
    assert_null(find("/v1/fine_tuning/chat/completions", name));
    assert_null(find("/v1/chat/completions/x", name));
    assert_null(find("/v1/chat/completionsx", name));
    assert_null(find("/v1/models/", name));
    assert_null(find("/v1/models/a/b", name));
    assert_null(find("/v1beta/models/:generateContent", name));
    assert_null(find("/v1beta/models/g:deleteAll", name));
    assert_null(find("/v1/", name));
    assert_null(find("/v1/videos/v1/remix/x", name));
    assert_null(find("/v1/videos//remix", name));
    assert_null(find("/v1/video/generations/a/b", name));
    assert_null(find("/v1/video/generation", name));
    assert_null(find("/v1/tasks", name));
    assert_null(find("/api/v1/services/aigc/text2image", name));
    assert_null(find("", name));
    assert_string_equal(name, "");
}


static void
test_tail(void **state)
{
    size_t                n;
    const unsigned char  *t;

    t = ngx_ai_relay_endpoint_tail((const unsigned char *) "/a/v1beta/x/y",
                                   13, &n);
    assert_int_equal(n, 3);
    assert_memory_equal(t, "x/y", 3);

    t = ngx_ai_relay_endpoint_tail((const unsigned char *) "//x/v2/y", 8, &n);
    assert_int_equal(n, 6);
    assert_memory_equal(t, "x/v2/y", 6);
}


static void
test_dates(void **state)
{
    int      y, m, d;
    int64_t  days, i;

#define D(s)  ngx_ai_relay_endpoint_date((const unsigned char *) s,           \
                                         sizeof(s) - 1, &days)

    assert_int_equal(D("1970-01-01"), 0);
    assert_int_equal(days, 0);
    assert_int_equal(D("2000-03-01"), 0);
    assert_int_equal(days, 11017);
    assert_int_equal(D("2024-02-29"), 0);
    assert_int_equal(days, 19782);
    assert_int_equal(D("2023-02-29"), -1);
    assert_int_equal(D("1900-02-28"), -1);
    assert_int_equal(D("2024-13-01"), -1);
    assert_int_equal(D("2024-04-31"), -1);
    assert_int_equal(D("2024-4-30"), -1);
    assert_int_equal(D("2024-04-3a"), -1);
    assert_int_equal(D("2024/04/30"), -1);

#undef D

    /* civil() inverts date() over a few centuries */

    for (i = 0; i < 150000; i += 7) {
        char  buf[16];

        ngx_ai_relay_endpoint_civil(i, &y, &m, &d);
        snprintf(buf, sizeof(buf), "%04d-%02d-%02d", y, m, d);
        assert_int_equal(ngx_ai_relay_endpoint_date(
                             (const unsigned char *) buf, 10, &days), 0);
        assert_int_equal(days, i);
    }
}


static void
test_chars(void **state)
{
    assert_int_equal(ngx_ai_relay_endpoint_chars(
                         (const unsigned char *) "abc", 3), 3);
    /* "héllo 世界": 8 characters in 13 bytes */
    assert_int_equal(ngx_ai_relay_endpoint_chars(
                         (const unsigned char *)
                         "h\xc3\xa9llo \xe4\xb8\x96\xe7\x95\x8c", 13), 8);
    assert_int_equal(ngx_ai_relay_endpoint_chars(
                         (const unsigned char *) "", 0), 0);
}


static int
near(const char *path)
{
    return ngx_ai_relay_endpoint_near((const unsigned char *) path,
                                      strlen(path));
}


static int
prefix(const char *path, const char *pre)
{
    return ngx_ai_relay_endpoint_prefix((const unsigned char *) path,
                                        strlen(path),
                                        (const unsigned char *) pre,
                                        strlen(pre));
}


static void
test_near(void **state)
{
    char  big[NGX_AI_RELAY_EP_NEAR_MAX + 2];

    assert_int_equal(near("/v1/chat/completions/"), 1);
    assert_int_equal(near("/V1/Chat/Completions"), 1);
    assert_int_equal(near("/v1/images/edits//"), 1);
    assert_int_equal(near("/v1beta/models/Gemini-Pro:GENERATECONTENT"), 1);
    assert_int_equal(near("/openai/v1/MESSAGES/count_tokens/"), 1);
    assert_int_equal(near("/v1/files"), 0);
    assert_int_equal(near("/v1/files/file-1/content"), 0);
    assert_int_equal(near("/v1/chat/completions/x"), 0);
    assert_int_equal(near("/v1/fine_tuning/jobs"), 0);

    memset(big, 'a', sizeof(big) - 1);
    big[0] = '/';
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(near(big), 1);
}


static void
test_prefix(void **state)
{
    assert_int_equal(prefix("/v1/files", "/v1/files"), 1);
    assert_int_equal(prefix("/v1/files/f-1", "/v1/files"), 1);
    assert_int_equal(prefix("/v1/files/f-1", "/v1/files/"), 1);
    assert_int_equal(prefix("/v1/filesystem", "/v1/files"), 0);
    assert_int_equal(prefix("/v1/file", "/v1/files"), 0);
    assert_int_equal(prefix("/v1/Files", "/v1/files"), 0);
    assert_int_equal(prefix("/v1/files", ""), 0);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known),
        cmocka_unit_test(test_unknown),
        cmocka_unit_test(test_tail),
        cmocka_unit_test(test_dates),
        cmocka_unit_test(test_chars),
        cmocka_unit_test(test_near),
        cmocka_unit_test(test_prefix),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
