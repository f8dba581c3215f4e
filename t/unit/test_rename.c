
/*
 * Copyright (C) ngx_ai_relay authors
 */


#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "ngx_ai_relay_rename.h"


static int
find(const char *s, char *out)
{
    size_t  a, z;

    out[0] = '\0';

    if (!ngx_ai_relay_rename_find((const unsigned char *) s, strlen(s), &a,
                                  &z))
    {
        return 0;
    }

    memcpy(out, s + a, z - a);
    out[z - a] = '\0';

    return 1;
}


static void
test_find(void **state)
{
    char  v[256];

    assert_true(find("{\"id\":\"x\",\"model\":\"gpt-4o-2024\",\"o\":1}", v));
    assert_string_equal(v, "\"gpt-4o-2024\"");

    assert_true(find("{\"model\" : \t\"a\\\"b\"}", v));
    assert_string_equal(v, "\"a\\\"b\"");

    /* nested: Anthropic's message_start */
    assert_true(find("event: message_start\ndata: {\"type\":\"message_start\","
                     "\"message\":{\"id\":\"m\",\"model\":\"claude-x\"}}\n\n",
                     v));
    assert_string_equal(v, "\"claude-x\"");

    /* a "model" inside a text is no member; a value "model" neither */
    assert_true(find("{\"content\":\"say \\\"model\\\":\\\"x\\\"\","
                     "\"k\":\"model\",\"model\":\"real\"}", v));
    assert_string_equal(v, "\"real\"");

    /* not a string: skipped, the next one counts */
    assert_true(find("{\"model\":null,\"x\":{\"model\":\"b\"}}", v));
    assert_string_equal(v, "\"b\"");

    assert_false(find("{\"models\":\"a\",\"modelVersion\":\"b\"}", v));
    assert_false(find("{\"model\":\"cut", v));
    assert_false(find("{\"mod", v));
    assert_false(find("{\"model\":", v));
    assert_false(find("", v));
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_find),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
