
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

#include "ngx_ai_relay_multipart.h"


#define CT  "multipart/form-data; boundary=----b0undary"

static const char  body[] =
    "------b0undary\r\n"
    "Content-Disposition: form-data; name=\"file\"; filename=\"a.mp3\"\r\n"
    "Content-Type: audio/mpeg\r\n"
    "\r\n"
    "ID3\r\n--\r\n------b0undar\r\x00\xff audio\r\n"
    "------b0undary\r\n"
    "content-disposition: form-data; name=model\r\n"
    "\r\n"
    "whisper-1\r\n"
    "------b0undary\r\n"
    "Content-Disposition: form-data; name=\"prompt\"\r\n"
    "\r\n"
    "\r\n"
    "------b0undary--\r\n"
    "epilogue";


static void
check(ngx_ai_relay_mp_t *mp)
{
    const char              *v;
    ngx_ai_relay_mp_part_t  *part;

    assert_int_equal(ngx_ai_relay_mp_finish(mp), NGX_AI_RELAY_MP_OK);
    assert_int_equal(mp->nparts, 3);
    assert_int_equal(mp->offset, sizeof(body) - 1);

    part = ngx_ai_relay_mp_find(mp, "file");
    assert_non_null(part);
    assert_true(part->file);
    assert_false(part->kept);
    v = strstr(body, "ID3");
    assert_int_equal(part->start, v - body);
    assert_int_equal(part->end - part->start,
                     sizeof("ID3\r\n--\r\n------b0undar\r\x00\xff audio") - 1);

    part = ngx_ai_relay_mp_find(mp, "model");
    assert_non_null(part);
    assert_false(part->file);
    assert_true(part->kept);
    assert_int_equal(part->end - part->start, 9);
    assert_memory_equal(part->value, "whisper-1", 9);
    assert_memory_equal(body + part->start, "whisper-1", 9);

    part = ngx_ai_relay_mp_find(mp, "prompt");
    assert_non_null(part);
    assert_int_equal(part->end - part->start, 0);

    assert_null(ngx_ai_relay_mp_find(mp, "nothing"));
    assert_int_equal(mp->text_bytes, 9);
}


static void
test_whole(void **state)
{
    ngx_ai_relay_mp_t  mp;

    assert_int_equal(ngx_ai_relay_mp_init(&mp, (const unsigned char *) CT,
                                          sizeof(CT) - 1), 0);
    assert_int_equal(ngx_ai_relay_mp_feed(&mp, (const unsigned char *) body,
                                          sizeof(body) - 1),
                     NGX_AI_RELAY_MP_OK);
    check(&mp);
}


/* every split in two, and one byte at a time */

static void
test_pieces(void **state)
{
    size_t             i;
    ngx_ai_relay_mp_t  mp;

    for (i = 0; i < sizeof(body); i++) {
        assert_int_equal(ngx_ai_relay_mp_init(&mp, (const unsigned char *) CT,
                                              sizeof(CT) - 1), 0);
        assert_int_equal(ngx_ai_relay_mp_feed(&mp,
                                              (const unsigned char *) body, i),
                         NGX_AI_RELAY_MP_OK);
        assert_int_equal(ngx_ai_relay_mp_feed(&mp,
                             (const unsigned char *) body + i,
                             sizeof(body) - 1 - i), NGX_AI_RELAY_MP_OK);
        check(&mp);
    }

    assert_int_equal(ngx_ai_relay_mp_init(&mp, (const unsigned char *) CT,
                                          sizeof(CT) - 1), 0);

    for (i = 0; i < sizeof(body) - 1; i++) {
        assert_int_equal(ngx_ai_relay_mp_feed(&mp,
                             (const unsigned char *) body + i, 1),
                         NGX_AI_RELAY_MP_OK);
    }

    check(&mp);
}


static void
test_content_type(void **state)
{
    ngx_ai_relay_mp_t  mp;

#define INIT(s)  ngx_ai_relay_mp_init(&mp, (const unsigned char *) s,         \
                                      sizeof(s) - 1)

    assert_int_equal(INIT("multipart/form-data; boundary=\"a b\""), 0);
    assert_int_equal(mp.delim_len, 7);
    assert_memory_equal(mp.delim, "\r\n--a b", 7);
    assert_int_equal(INIT("Multipart/Form-Data;charset=x;BOUNDARY=zz"), 0);
    assert_memory_equal(mp.delim, "\r\n--zz", 6);
    assert_int_equal(INIT("multipart/form-data"), -1);
    assert_int_equal(INIT("multipart/form-data; boundary="), -1);
    assert_int_equal(INIT("application/json"), -1);
    /* two boundaries: readers differ on which counts */
    assert_int_equal(INIT("multipart/form-data; boundary=a; boundary=b"), -1);
    assert_int_equal(INIT("multipart/form-data; boundary=\"a;b\"; "
                          "BOUNDARY=a"), -1);
    assert_int_equal(INIT("multipart/form-data; boundary=12345678901234567890"
                          "123456789012345678901234567890123456789012345678901"),
                     -1);

#undef INIT
}


static void
test_malformed(void **state)
{
    ngx_ai_relay_mp_t  mp;

#define RUN(s)                                                                \
    assert_int_equal(ngx_ai_relay_mp_init(&mp, (const unsigned char *) CT,    \
                                          sizeof(CT) - 1), 0);                \
    (void) ngx_ai_relay_mp_feed(&mp, (const unsigned char *) s,               \
                                sizeof(s) - 1);                               \
    assert_int_equal(ngx_ai_relay_mp_finish(&mp), NGX_AI_RELAY_MP_ERROR);     \
    assert_non_null(mp.error)

    RUN("");
    RUN("------b0undary\r\nContent-Disposition: form-data\r\n\r\nx\r\n"
        "------b0undary--");
    RUN("------b0undary\r\nContent-Disposition: form-data; name=a\r\n\r\nx");
    RUN("------b0undaryX\r\n");
    RUN("------b0undary-x");
    RUN("------b0undary\r\nContent-Disposition: form-data; name=a; "
        "name=b\r\n\r\nx\r\n------b0undary--");
    RUN("------b0undary\r\nContent-Disposition: form-data; name=a\r\n"
        "content-disposition: form-data; name=b\r\n\r\nx\r\n"
        "------b0undary--");

#undef RUN
}


static void
test_count(void **state)
{
    ngx_ai_relay_mp_t  mp;

    static const char  body[] =
        "------b0undary\r\nContent-Disposition: form-data; name=model\r\n"
        "\r\ncheap\r\n"
        "------b0undary\r\nContent-Disposition: form-data; name=\"model\""
        "\r\n\r\nexpensive\r\n------b0undary--";

    assert_int_equal(ngx_ai_relay_mp_init(&mp, (const unsigned char *) CT,
                                          sizeof(CT) - 1), 0);
    (void) ngx_ai_relay_mp_feed(&mp, (const unsigned char *) body,
                                sizeof(body) - 1);
    assert_int_equal(ngx_ai_relay_mp_finish(&mp), NGX_AI_RELAY_MP_OK);
    assert_int_equal(ngx_ai_relay_mp_count(&mp, "model"), 2);
    assert_int_equal(ngx_ai_relay_mp_count(&mp, "n"), 0);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_whole),
        cmocka_unit_test(test_pieces),
        cmocka_unit_test(test_content_type),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_count),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
