
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

#include "ngx_ai_relay_key.h"


#define S(s)  (const unsigned char *) (s), sizeof(s) - 1


static void
test_hash(void **state)
{
    char  out[NGX_AI_RELAY_KEY_HASH_LEN + 1];

    /* FIPS 180-2 / NIST vectors */

    assert_int_equal(ngx_ai_relay_key_hash(S(""), out), 0);
    assert_string_equal(out, "e3b0c44298fc1c149afbf4c8996fb924"
                             "27ae41e4649b934ca495991b7852b855");

    assert_int_equal(ngx_ai_relay_key_hash(S("abc"), out), 0);
    assert_string_equal(out, "ba7816bf8f01cfea414140de5dae2223"
                             "b00361a396177a9cb410ff61f20015ad");

    assert_int_equal(ngx_ai_relay_key_hash(
                         S("abcdbcdecdefdefgefghfghighijhijkijkljklmklmn"
                           "lmnomnopnopq"), out),
                     0);
    assert_string_equal(out, "248d6a61d20638b8e5c026930c3e6039"
                             "a33ce45964ff2167f6ecedd419db06c1");

    assert_int_equal(ngx_ai_relay_key_hash(
                         S("The quick brown fox jumps over the lazy dog"),
                         out),
                     0);
    assert_string_equal(out, "d7a8fbb307d7809469ca9abcb0082e4f"
                             "8d5651e46d3cdb762d02d0bf37c9e592");

    assert_int_equal(strlen(out), NGX_AI_RELAY_KEY_HASH_LEN);
}


static void
test_hash_million_a(void **state)
{
    char           out[NGX_AI_RELAY_KEY_HASH_LEN + 1];
    unsigned char *a;

    a = malloc(1000000);
    assert_non_null(a);
    memset(a, 'a', 1000000);

    assert_int_equal(ngx_ai_relay_key_hash(a, 1000000, out), 0);
    assert_string_equal(out, "cdc76e5c9914fb9281a1c7e284d73e67"
                             "f1809a48a497200e046d39ccc7112cd0");

    free(a);
}


static void
test_equal(void **state)
{
    assert_true(ngx_ai_relay_key_equal("abc", 3, "abc", 3));
    assert_false(ngx_ai_relay_key_equal("abc", 3, "abd", 3));
    assert_false(ngx_ai_relay_key_equal("abc", 3, "abcd", 4));
    assert_false(ngx_ai_relay_key_equal("abcd", 4, "abc", 3));
    assert_true(ngx_ai_relay_key_equal("", 0, "", 0));
    assert_true(ngx_ai_relay_key_equal("a\0b", 3, "a\0b", 3));
    assert_false(ngx_ai_relay_key_equal("a\0b", 3, "a\0c", 3));
}


static void
test_mask(void **state)
{
    char    out[NGX_AI_RELAY_KEY_MASK_SIZE];
    size_t  n;

#define MASK(key, want)                                                      \
    n = ngx_ai_relay_key_mask(S(key), out, sizeof(out));                     \
    assert_string_equal(out, want);                                          \
    assert_int_equal(n, strlen(want))

    MASK("sk-abcdefghijklmnopqrstuvwxyz", "sk-ab\xe2\x80\xa6wxyz");
    MASK("sk-abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOP",
         "sk-ab\xe2\x80\xa6MNOP");

    /* 12 bytes: the long form, 3 bytes hidden */
    MASK("sk-123456789", "sk-12\xe2\x80\xa6" "6789");

    /* 4 to 11 bytes: only 2 shown */
    MASK("sk-12345678", "sk\xe2\x80\xa6");
    MASK("abcd", "ab\xe2\x80\xa6");

    /* fewer: nothing shown */
    MASK("abc", "\xe2\x80\xa6");
    MASK("", "\xe2\x80\xa6");

    /* bytes that must not reach a log */
    MASK("s\nk\x01x-aaaaaaaa\x7f\xff z", "s?k?x\xe2\x80\xa6???z");
    MASK("ab\"\\" "cdefghijkl\r\n", "ab\"\\c\xe2\x80\xa6kl??");

#undef MASK

    /* an output buffer that is too small */
    assert_int_equal(ngx_ai_relay_key_mask(S("sk-abcdefghijklmnop"), out,
                                           NGX_AI_RELAY_KEY_MASK_SIZE - 1),
                     0);
    assert_string_equal(out, "");
}


static void
test_generate(void **state)
{
    int     i, j;
    char    key[NGX_AI_RELAY_KEY_GEN_LEN + 1];
    char    prev[NGX_AI_RELAY_KEY_GEN_LEN + 1];
    size_t  counts[62], total, k;
    double  chi2, d;

    static const char  alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

    assert_int_equal(ngx_ai_relay_key_generate(key, NGX_AI_RELAY_KEY_GEN_LEN),
                     -1);

    memset(counts, 0, sizeof(counts));
    memset(prev, 0, sizeof(prev));
    total = 0;

    for (i = 0; i < 20000; i++) {
        assert_int_equal(ngx_ai_relay_key_generate(key, sizeof(key)), 0);
        assert_int_equal(strlen(key), NGX_AI_RELAY_KEY_GEN_LEN);
        assert_memory_equal(key, "sk-", 3);
        assert_true(ngx_ai_relay_key_valid((unsigned char *) key,
                                           strlen(key)));
        assert_string_not_equal(key, prev);

        for (j = 3; j < NGX_AI_RELAY_KEY_GEN_LEN; j++) {
            k = strchr(alphabet, key[j]) - alphabet;
            assert_true(k < 62);
            counts[k]++;
            total++;
        }

        memcpy(prev, key, sizeof(key));
    }

    /*
     * Uniformity: chi-square with 61 degrees of freedom; p = 1e-6 is at
     * about 130.  A modulo bias (256 % 62 = 8) would give the first 8
     * characters 25% more weight and a chi-square in the thousands.
     */

    chi2 = 0;

    for (k = 0; k < 62; k++) {
        d = counts[k] - total / 62.0;
        chi2 += d * d / (total / 62.0);
    }

    print_message("chi-square over %zu characters: %.1f\n", total, chi2);
    assert_true(chi2 < 130.0);
}


static void
test_valid(void **state)
{
    unsigned char  buf[300];

    assert_true(ngx_ai_relay_key_valid(S("sk-12345")));
    assert_true(ngx_ai_relay_key_valid(
                    S("!~\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}")));
    assert_false(ngx_ai_relay_key_valid(S("sk-1234")));
    assert_false(ngx_ai_relay_key_valid(S("")));
    assert_false(ngx_ai_relay_key_valid(S("sk-1234 5678")));
    assert_false(ngx_ai_relay_key_valid(S("sk-12345678\n")));
    assert_false(ngx_ai_relay_key_valid(S("sk-12345678\t")));
    assert_false(ngx_ai_relay_key_valid(S("sk-1234\x00" "5678")));
    assert_false(ngx_ai_relay_key_valid(S("sk-1234\x7f" "5678")));
    assert_false(ngx_ai_relay_key_valid(S("sk-1234\xc3\xa9" "5678")));

    memset(buf, 'a', sizeof(buf));
    assert_true(ngx_ai_relay_key_valid(buf, 256));
    assert_false(ngx_ai_relay_key_valid(buf, 257));
    assert_true(ngx_ai_relay_key_valid(buf, 8));
    assert_false(ngx_ai_relay_key_valid(buf, 7));
}


static int
cmp_id(const void *a, const void *b)
{
    return memcmp(a, b, NGX_AI_RELAY_REQUEST_ID_LEN);
}


static void
test_request_id(void **state)
{
    size_t          i, n, j;
    uint64_t        seed[2];
    unsigned char  *ids, one[NGX_AI_RELAY_REQUEST_ID_LEN],
                    two[NGX_AI_RELAY_REQUEST_ID_LEN];

    assert_int_equal(ngx_ai_relay_request_id_seed(&seed[0]), 0);
    assert_int_equal(ngx_ai_relay_request_id_seed(&seed[1]), 0);
    assert_true(seed[0] != seed[1]);

    /* same input, same id; 32 lowercase hex digits */

    ngx_ai_relay_request_id(seed[0], 7, one);
    ngx_ai_relay_request_id(seed[0], 7, two);
    assert_memory_equal(one, two, sizeof(one));

    for (i = 0; i < sizeof(one); i++) {
        assert_non_null(strchr("0123456789abcdef", one[i]));
    }

    /* two workers (seeds), 200,000 requests each: no id twice */

    n = 200000;
    ids = malloc(2 * n * NGX_AI_RELAY_REQUEST_ID_LEN);
    assert_non_null(ids);

    for (j = 0; j < 2; j++) {
        for (i = 0; i < n; i++) {
            ngx_ai_relay_request_id(seed[j], i,
                                    ids + (j * n + i)
                                          * NGX_AI_RELAY_REQUEST_ID_LEN);
        }
    }

    qsort(ids, 2 * n, NGX_AI_RELAY_REQUEST_ID_LEN, cmp_id);

    for (i = 1; i < 2 * n; i++) {
        assert_true(cmp_id(ids + (i - 1) * NGX_AI_RELAY_REQUEST_ID_LEN,
                           ids + i * NGX_AI_RELAY_REQUEST_ID_LEN) != 0);
    }

    free(ids);

    /* consecutive ids do not look consecutive: most digits change */

    ngx_ai_relay_request_id(seed[0], 1000, one);
    ngx_ai_relay_request_id(seed[0], 1001, two);

    for (i = 0, j = 0; i < sizeof(one); i++) {
        j += (one[i] != two[i]);
    }

    assert_true(j > 16);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_hash),
        cmocka_unit_test(test_hash_million_a),
        cmocka_unit_test(test_equal),
        cmocka_unit_test(test_mask),
        cmocka_unit_test(test_generate),
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_request_id),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
