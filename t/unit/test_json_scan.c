
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

#include "ngx_ai_relay_json_scan.h"
#include "json_scan_diff.h"


#define S(s)  (const unsigned char *) (s), sizeof(s) - 1
#define N(s)  (s), sizeof(s) - 1

#define MEMBERS  256


static ngx_ai_relay_json_member_t  members[MEMBERS];
static ngx_ai_relay_json_scan_t    scan;


static int
scan_buf(const void *buf, size_t len)
{
    ngx_ai_relay_json_scan_init(&scan, members, MEMBERS);

    return ngx_ai_relay_json_scan(&scan, buf, len);
}


static int
scan_str(const char *s)
{
    return scan_buf(s, strlen(s));
}


/* applies edits and returns the malloc()ed, NUL-terminated result */

static char *
splice_str(const char *body, ngx_ai_relay_json_edit_t *edits, size_t n)
{
    char                       *out;
    size_t                      np, len;
    ngx_ai_relay_json_piece_t   pieces[16];

    assert_int_equal(ngx_ai_relay_json_splice((const unsigned char *) body,
                                              strlen(body), edits, n,
                                              pieces, 16, &np, &len),
                     0);

    out = malloc(len + 1);
    assert_non_null(out);

    assert_ptr_equal(ngx_ai_relay_json_pieces_copy((unsigned char *) out,
                                                   pieces, np),
                     out + len);
    out[len] = '\0';

    return out;
}


/* the member's raw value as a NUL-terminated string (static buffer) */

static const char *
value_of(const char *body, const ngx_ai_relay_json_member_t *m)
{
    static char  buf[256];

    assert_true(m->value_end - m->value_start < sizeof(buf));

    memcpy(buf, body + m->value_start, m->value_end - m->value_start);
    buf[m->value_end - m->value_start] = '\0';

    return buf;
}


static void
set_edit(ngx_ai_relay_json_edit_t *e, size_t start, size_t end,
    const char *data)
{
    e->start = start;
    e->end = end;
    e->data = (const unsigned char *) data;
    e->len = strlen(data);
}


static void
test_basic(void **state)
{
    const char                  *body;
    ngx_ai_relay_json_member_t  *m;

    body = "{\"model\":\"gpt-4o\",\"n\":2,\"stream\":true,\"x\":false,"
           "\"y\":null,\"messages\":[{\"role\":\"user\"}],\"o\":{}}";

    assert_int_equal(scan_str(body), NGX_AI_RELAY_JSON_OK);
    assert_int_equal(scan.nmembers, 7);
    assert_int_equal(scan.obj_start, 0);
    assert_int_equal(scan.obj_end, strlen(body) - 1);
    assert_null(scan.err);

    m = &members[0];
    assert_int_equal(m->key_start, 2);
    assert_int_equal(m->key_end, 7);
    assert_int_equal(m->value_start, 9);
    assert_int_equal(m->value_end, 17);
    assert_int_equal(m->type, NGX_AI_RELAY_JSON_STRING);
    assert_string_equal(value_of(body, m), "\"gpt-4o\"");
    assert_int_equal(m->key_escaped, 0);
    assert_int_equal(m->value_escaped, 0);

    assert_int_equal(members[1].type, NGX_AI_RELAY_JSON_NUMBER);
    assert_string_equal(value_of(body, &members[1]), "2");
    assert_int_equal(members[2].type, NGX_AI_RELAY_JSON_TRUE);
    assert_string_equal(value_of(body, &members[2]), "true");
    assert_int_equal(members[3].type, NGX_AI_RELAY_JSON_FALSE);
    assert_int_equal(members[4].type, NGX_AI_RELAY_JSON_NULL);
    assert_string_equal(value_of(body, &members[4]), "null");
    assert_int_equal(members[5].type, NGX_AI_RELAY_JSON_ARRAY);
    assert_string_equal(value_of(body, &members[5]),
                        "[{\"role\":\"user\"}]");
    assert_int_equal(members[6].type, NGX_AI_RELAY_JSON_OBJECT);
    assert_string_equal(value_of(body, &members[6]), "{}");

    assert_ptr_equal(ngx_ai_relay_json_find(&scan, (const unsigned char *)
                                            body, N("messages")),
                     &members[5]);
    assert_null(ngx_ai_relay_json_find(&scan, (const unsigned char *) body,
                                       N("mode")));
    assert_null(ngx_ai_relay_json_find(&scan, (const unsigned char *) body,
                                       N("models")));
}


static void
test_empty_and_whitespace(void **state)
{
    const char  *body;

    assert_int_equal(scan_str("{}"), NGX_AI_RELAY_JSON_OK);
    assert_int_equal(scan.nmembers, 0);
    assert_int_equal(scan.obj_start, 0);
    assert_int_equal(scan.obj_end, 1);

    assert_int_equal(scan_str(" \t\r\n{ \n\t} \r\n"), NGX_AI_RELAY_JSON_OK);
    assert_int_equal(scan.nmembers, 0);
    assert_int_equal(scan.obj_start, 4);
    assert_int_equal(scan.obj_end, 8);

    body = " \n{ \"a\" :\t1 ,\r\n\"b\"\n:\n[ 1 , { } , [ ] ] , \"c\" : "
           "\"x\" }\n ";
    assert_int_equal(scan_str(body), NGX_AI_RELAY_JSON_OK);
    assert_int_equal(scan.nmembers, 3);
    assert_int_equal(scan.obj_start, 2);
    assert_string_equal(value_of(body, &members[0]), "1");
    assert_string_equal(value_of(body, &members[1]),
                        "[ 1 , { } , [ ] ]");
    assert_string_equal(value_of(body, &members[2]), "\"x\"");
    assert_int_equal(body[scan.obj_end], '}');
    assert_int_equal(scan.obj_end, strlen(body) - 3);
}


static void
test_not_object(void **state)
{
    assert_int_equal(scan_str("[1,2]"), NGX_AI_RELAY_JSON_ERR_NOT_OBJECT);
    assert_int_equal(scan_str(" \"x\" "), NGX_AI_RELAY_JSON_ERR_NOT_OBJECT);
    assert_int_equal(scan.err_offset, 1);
    assert_int_equal(scan_str("1"), NGX_AI_RELAY_JSON_ERR_NOT_OBJECT);
    assert_int_equal(scan_str("-0.5e3"), NGX_AI_RELAY_JSON_ERR_NOT_OBJECT);
    assert_int_equal(scan_str("null"), NGX_AI_RELAY_JSON_ERR_NOT_OBJECT);
    assert_int_equal(scan_str("true"), NGX_AI_RELAY_JSON_ERR_NOT_OBJECT);
    assert_int_equal(scan_str("false"), NGX_AI_RELAY_JSON_ERR_NOT_OBJECT);
    assert_int_equal(scan_str("[]"), NGX_AI_RELAY_JSON_ERR_NOT_OBJECT);
    assert_string_equal(scan.err, "not an object");

    /* a broken non-object is a syntax error */
    assert_int_equal(scan_str("[1,"), NGX_AI_RELAY_JSON_ERR_SYNTAX);

    /* an empty body may come as NULL */
    ngx_ai_relay_json_scan_init(&scan, members, MEMBERS);
    assert_int_equal(ngx_ai_relay_json_scan(&scan, NULL, 0),
                     NGX_AI_RELAY_JSON_ERR_SYNTAX);
    assert_int_equal(scan.err_offset, 0);
    assert_int_equal(scan_str("[1}"), NGX_AI_RELAY_JSON_ERR_SYNTAX);
}


typedef struct {
    const char  *json;
    size_t       len;        /* 0: strlen */
    int          rc;
    size_t       offset;
    const char  *err;
} error_case_t;


static const error_case_t  error_cases[] = {
    { "", 0, NGX_AI_RELAY_JSON_ERR_SYNTAX, 0, "unexpected end of input" },
    { "   ", 0, NGX_AI_RELAY_JSON_ERR_SYNTAX, 3, "unexpected end of input" },
    { "{", 0, NGX_AI_RELAY_JSON_ERR_SYNTAX, 1, "unexpected end of input" },
    { "{\"a\"", 0, NGX_AI_RELAY_JSON_ERR_SYNTAX, 4,
      "unexpected end of input" },
    { "{\"a\":", 0, NGX_AI_RELAY_JSON_ERR_SYNTAX, 5,
      "unexpected end of input" },
    { "{\"a\":1", 0, NGX_AI_RELAY_JSON_ERR_SYNTAX, 6,
      "unexpected end of input" },
    { "{\"a\":1,", 0, NGX_AI_RELAY_JSON_ERR_SYNTAX, 7,
      "unexpected end of input" },
    { "{\"a\"}", 0, NGX_AI_RELAY_JSON_ERR_SYNTAX, 4, "unexpected character" },
    { "{\"a\" 1}", 0, NGX_AI_RELAY_JSON_ERR_SYNTAX, 5,
      "unexpected character" },
    { "{\"a\":}", 0, NGX_AI_RELAY_JSON_ERR_SYNTAX, 5,
      "unexpected character" },
    { "{\"a\":1,}", 0, NGX_AI_RELAY_JSON_ERR_SYNTAX, 7,
      "unexpected character" },
    { "{\"a\":[1,]}", 0, NGX_AI_RELAY_JSON_ERR_SYNTAX, 8,
      "unexpected character" },
    { "{\"a\":[1 2]}", 0, NGX_AI_RELAY_JSON_ERR_SYNTAX, 8,
      "unexpected character" },
    { "{\"a\":[}", 0, NGX_AI_RELAY_JSON_ERR_SYNTAX, 6,
      "unexpected character" },
    { "{\"a\":]}", 0, NGX_AI_RELAY_JSON_ERR_SYNTAX, 5,
      "unexpected character" },
    { "{\"a\":1 2}", 0, NGX_AI_RELAY_JSON_ERR_SYNTAX, 7,
      "unexpected character" },
    { "{,}", 0, NGX_AI_RELAY_JSON_ERR_SYNTAX, 1, "unexpected character" },
    { "{a:1}", 0, NGX_AI_RELAY_JSON_ERR_SYNTAX, 1, "unexpected character" },
    { "{'a':1}", 0, NGX_AI_RELAY_JSON_ERR_SYNTAX, 1,
      "unexpected character" },
    { "{\"a\":1]", 0, NGX_AI_RELAY_JSON_ERR_SYNTAX, 6,
      "unexpected character" },
    { "{\"a\":1}x", 0, NGX_AI_RELAY_JSON_ERR_SYNTAX, 7,
      "unexpected data after JSON value" },
    { "{\"a\":1} {}", 0, NGX_AI_RELAY_JSON_ERR_SYNTAX, 8,
      "unexpected data after JSON value" },
    { "{}}", 0, NGX_AI_RELAY_JSON_ERR_SYNTAX, 2,
      "unexpected data after JSON value" },
    { "\xef\xbb\xbf{}", 0, NGX_AI_RELAY_JSON_ERR_SYNTAX, 0,
      "unexpected character" },
    { "{\"a\":1}\0", 8, NGX_AI_RELAY_JSON_ERR_SYNTAX, 7,
      "unexpected data after JSON value" },
    { "{\"a\":\0}", 7, NGX_AI_RELAY_JSON_ERR_SYNTAX, 5,
      "unexpected character" },
    { "{\"a\":1\f}", 0, NGX_AI_RELAY_JSON_ERR_SYNTAX, 6,
      "unexpected character" },

    /* numbers */
    { "{\"a\":01}", 0, NGX_AI_RELAY_JSON_ERR_SYNTAX, 6,
      "unexpected character" },
    { "{\"a\":-}", 0, NGX_AI_RELAY_JSON_ERR_SYNTAX, 6, "invalid number" },
    { "{\"a\":-a}", 0, NGX_AI_RELAY_JSON_ERR_SYNTAX, 6, "invalid number" },
    { "{\"a\":1.}", 0, NGX_AI_RELAY_JSON_ERR_SYNTAX, 7, "invalid number" },
    { "{\"a\":1.e5}", 0, NGX_AI_RELAY_JSON_ERR_SYNTAX, 7,
      "invalid number" },
    { "{\"a\":.5}", 0, NGX_AI_RELAY_JSON_ERR_SYNTAX, 5,
      "unexpected character" },
    { "{\"a\":1e}", 0, NGX_AI_RELAY_JSON_ERR_SYNTAX, 7, "invalid number" },
    { "{\"a\":1e+}", 0, NGX_AI_RELAY_JSON_ERR_SYNTAX, 8,
      "invalid number" },
    { "{\"a\":+1}", 0, NGX_AI_RELAY_JSON_ERR_SYNTAX, 5,
      "unexpected character" },
    { "{\"a\":--1}", 0, NGX_AI_RELAY_JSON_ERR_SYNTAX, 6,
      "invalid number" },
    { "{\"a\":0x10}", 0, NGX_AI_RELAY_JSON_ERR_SYNTAX, 6,
      "unexpected character" },
    { "{\"a\":NaN}", 0, NGX_AI_RELAY_JSON_ERR_SYNTAX, 5,
      "unexpected character" },
    { "{\"a\":Infinity}", 0, NGX_AI_RELAY_JSON_ERR_SYNTAX, 5,
      "unexpected character" },
    { "{\"a\":-Infinity}", 0, NGX_AI_RELAY_JSON_ERR_SYNTAX, 6,
      "invalid number" },
    { "{\"a\":1.5", 0, NGX_AI_RELAY_JSON_ERR_SYNTAX, 8,
      "unexpected end of input" },
    { "{\"a\":-", 0, NGX_AI_RELAY_JSON_ERR_SYNTAX, 6,
      "unexpected end of input" },
    { "{\"a\":1e", 0, NGX_AI_RELAY_JSON_ERR_SYNTAX, 7,
      "unexpected end of input" },

    /* literals */
    { "{\"a\":tru}", 0, NGX_AI_RELAY_JSON_ERR_SYNTAX, 8,
      "unexpected character" },
    { "{\"a\":True}", 0, NGX_AI_RELAY_JSON_ERR_SYNTAX, 5,
      "unexpected character" },
    { "{\"a\":nul", 0, NGX_AI_RELAY_JSON_ERR_SYNTAX, 8,
      "unexpected end of input" },
    { "{\"a\":falsey}", 0, NGX_AI_RELAY_JSON_ERR_SYNTAX, 10,
      "unexpected character" },
    { "{\"a\":nulll}", 0, NGX_AI_RELAY_JSON_ERR_SYNTAX, 9,
      "unexpected character" },

    /* strings */
    { "{\"a\":\"x\x01\"}", 0, NGX_AI_RELAY_JSON_ERR_SYNTAX, 7,
      "control character in string" },
    { "{\"a\":\"x\ty\"}", 0, NGX_AI_RELAY_JSON_ERR_SYNTAX, 7,
      "control character in string" },
    { "{\"a\":\"x\ny\"}", 0, NGX_AI_RELAY_JSON_ERR_SYNTAX, 7,
      "control character in string" },
    { "{\"a\x1f\":1}", 0, NGX_AI_RELAY_JSON_ERR_SYNTAX, 3,
      "control character in string" },
    { "{\"a\":\"\0\"}", 9, NGX_AI_RELAY_JSON_ERR_SYNTAX, 6,
      "control character in string" },
    { "{\"a\":\"\\q\"}", 0, NGX_AI_RELAY_JSON_ERR_SYNTAX, 6,
      "invalid escape" },
    { "{\"a\":\"\\x41\"}", 0, NGX_AI_RELAY_JSON_ERR_SYNTAX, 6,
      "invalid escape" },
    { "{\"a\":\"\\U0041\"}", 0, NGX_AI_RELAY_JSON_ERR_SYNTAX, 6,
      "invalid escape" },
    { "{\"a\":\"\\'\"}", 0, NGX_AI_RELAY_JSON_ERR_SYNTAX, 6,
      "invalid escape" },
    { "{\"a\":\"\\u12G4\"}", 0, NGX_AI_RELAY_JSON_ERR_SYNTAX, 6,
      "invalid \\u escape" },
    { "{\"a\":\"\\u12\"}", 0, NGX_AI_RELAY_JSON_ERR_SYNTAX, 6,
      "invalid \\u escape" },
    { "{\"a\":\"\\u12", 0, NGX_AI_RELAY_JSON_ERR_SYNTAX, 6,
      "invalid \\u escape" },
    { "{\"a\":\"\\uD800\"}", 0, NGX_AI_RELAY_JSON_ERR_SYNTAX, 6,
      "invalid surrogate escape" },
    { "{\"a\":\"\\udbff\"}", 0, NGX_AI_RELAY_JSON_ERR_SYNTAX, 6,
      "invalid surrogate escape" },
    { "{\"a\":\"\\uDC00\"}", 0, NGX_AI_RELAY_JSON_ERR_SYNTAX, 6,
      "invalid surrogate escape" },
    { "{\"a\":\"\\uDFFF\\uD800\"}", 0, NGX_AI_RELAY_JSON_ERR_SYNTAX, 6,
      "invalid surrogate escape" },
    { "{\"a\":\"\\uD800\\u0041\"}", 0, NGX_AI_RELAY_JSON_ERR_SYNTAX, 12,
      "invalid surrogate escape" },
    { "{\"a\":\"\\uD800\\uD800\"}", 0, NGX_AI_RELAY_JSON_ERR_SYNTAX, 12,
      "invalid surrogate escape" },
    { "{\"a\":\"\\uD800\\n\"}", 0, NGX_AI_RELAY_JSON_ERR_SYNTAX, 6,
      "invalid surrogate escape" },
    { "{\"a\":\"\\uD800x\"}", 0, NGX_AI_RELAY_JSON_ERR_SYNTAX, 6,
      "invalid surrogate escape" },
    { "{\"a\":\"\\uD800\\uDC0", 0, NGX_AI_RELAY_JSON_ERR_SYNTAX, 12,
      "invalid \\u escape" },
    { "{\"a\":\"abc", 0, NGX_AI_RELAY_JSON_ERR_SYNTAX, 9,
      "unexpected end of input" },
    { "{\"a\":\"abc\\", 0, NGX_AI_RELAY_JSON_ERR_SYNTAX, 10,
      "unexpected end of input" },
    { "{\"abcdefghijklmnop", 0, NGX_AI_RELAY_JSON_ERR_SYNTAX, 18,
      "unexpected end of input" },

    /* UTF-8 */
    { "{\"a\":\"\x80\"}", 0, NGX_AI_RELAY_JSON_ERR_UTF8, 6,
      "invalid UTF-8" },
    { "{\"a\":\"\xbf\"}", 0, NGX_AI_RELAY_JSON_ERR_UTF8, 6,
      "invalid UTF-8" },
    { "{\"a\":\"\xc0\xaf\"}", 0, NGX_AI_RELAY_JSON_ERR_UTF8, 6,
      "invalid UTF-8" },
    { "{\"a\":\"\xc1\xbf\"}", 0, NGX_AI_RELAY_JSON_ERR_UTF8, 6,
      "invalid UTF-8" },
    { "{\"a\":\"\xe0\x80\xaf\"}", 0, NGX_AI_RELAY_JSON_ERR_UTF8, 6,
      "invalid UTF-8" },
    { "{\"a\":\"\xe0\x9f\xbf\"}", 0, NGX_AI_RELAY_JSON_ERR_UTF8, 6,
      "invalid UTF-8" },
    { "{\"a\":\"\xf0\x80\x80\xaf\"}", 0, NGX_AI_RELAY_JSON_ERR_UTF8, 6,
      "invalid UTF-8" },
    { "{\"a\":\"\xf0\x8f\xbf\xbf\"}", 0, NGX_AI_RELAY_JSON_ERR_UTF8, 6,
      "invalid UTF-8" },
    { "{\"a\":\"\xed\xa0\x80\"}", 0, NGX_AI_RELAY_JSON_ERR_UTF8, 6,
      "invalid UTF-8" },
    { "{\"a\":\"\xed\xbf\xbf\"}", 0, NGX_AI_RELAY_JSON_ERR_UTF8, 6,
      "invalid UTF-8" },
    { "{\"a\":\"\xf4\x90\x80\x80\"}", 0, NGX_AI_RELAY_JSON_ERR_UTF8, 6,
      "invalid UTF-8" },
    { "{\"a\":\"\xf5\x80\x80\x80\"}", 0, NGX_AI_RELAY_JSON_ERR_UTF8, 6,
      "invalid UTF-8" },
    { "{\"a\":\"\xff\"}", 0, NGX_AI_RELAY_JSON_ERR_UTF8, 6,
      "invalid UTF-8" },
    { "{\"a\":\"\xfe\"}", 0, NGX_AI_RELAY_JSON_ERR_UTF8, 6,
      "invalid UTF-8" },
    { "{\"a\":\"xy\xc3\"}", 0, NGX_AI_RELAY_JSON_ERR_UTF8, 8,
      "invalid UTF-8" },
    { "{\"a\":\"\xe2\x82\"}", 0, NGX_AI_RELAY_JSON_ERR_UTF8, 6,
      "invalid UTF-8" },
    { "{\"a\":\"\xe2\x82", 0, NGX_AI_RELAY_JSON_ERR_UTF8, 6,
      "invalid UTF-8" },
    { "{\"a\":\"\xf0\x9f\x98\"}", 0, NGX_AI_RELAY_JSON_ERR_UTF8, 6,
      "invalid UTF-8" },
    { "{\"a\":\"\xc3\xa9\xc3\x28\"}", 0, NGX_AI_RELAY_JSON_ERR_UTF8, 8,
      "invalid UTF-8" },
    { "{\"\xe9t\xe9\":1}", 0, NGX_AI_RELAY_JSON_ERR_UTF8, 2,
      "invalid UTF-8" },
    { "{\"a\":\xc3\xa9}", 0, NGX_AI_RELAY_JSON_ERR_SYNTAX, 5,
      "unexpected character" },
    { "{\"a\":\"aaaaaaaaaaaaaaaa\x80\"}", 0, NGX_AI_RELAY_JSON_ERR_UTF8, 22,
      "invalid UTF-8" },
};


static void
test_errors(void **state)
{
    char                 msg[128], want[128];
    size_t               i, len;
    const error_case_t  *c;

    for (i = 0; i < sizeof(error_cases) / sizeof(error_cases[0]); i++) {
        c = &error_cases[i];
        len = c->len ? c->len : strlen(c->json);

        if (scan_buf(c->json, len) != c->rc
            || scan.err_offset != c->offset
            || scan.err == NULL
            || strcmp(scan.err, c->err) != 0)
        {
            print_error("case %zu \"%s\": rc %d offset %zu err \"%s\"\n",
                        i, c->json, scan.rc, scan.err_offset,
                        scan.err ? scan.err : "(null)");
            fail();
        }

        ngx_ai_relay_json_strerror(&scan, (const unsigned char *) c->json,
                                   msg, sizeof(msg));
        snprintf(want, sizeof(want), "%s at offset %zu", c->err, c->offset);
        assert_string_equal(msg, want);

        /* jansson must reject all of them as well */
        assert_null(jd_check((const unsigned char *) c->json, len));
    }
}


static void
test_strerror(void **state)
{
    char         buf[64];
    const char  *body;

    body = "{\"a\":\"\xff\"}";
    assert_int_equal(scan_str(body), NGX_AI_RELAY_JSON_ERR_UTF8);
    ngx_ai_relay_json_strerror(&scan, (const unsigned char *) body, buf,
                               sizeof(buf));
    assert_string_equal(buf, "invalid UTF-8 at offset 6");

    /* truncated */
    assert_int_equal(ngx_ai_relay_json_strerror(&scan, (const unsigned char *)
                                                body, buf, 8),
                     7);
    assert_string_equal(buf, "invalid");

    body = "{\"model\":\"a\",\"x\":1,\"model\":\"b\"}";
    assert_int_equal(scan_str(body), NGX_AI_RELAY_JSON_ERR_DUPLICATE);
    ngx_ai_relay_json_strerror(&scan, (const unsigned char *) body, buf,
                               sizeof(buf));
    assert_string_equal(buf, "duplicate key \"model\"");
    assert_int_equal(scan.err_member, 2);
    assert_int_equal(scan.err_offset, 19);

    assert_int_equal(scan_str("[]"), NGX_AI_RELAY_JSON_ERR_NOT_OBJECT);
    ngx_ai_relay_json_strerror(&scan, (const unsigned char *) "[]", buf,
                               sizeof(buf));
    assert_string_equal(buf, "not an object");

    assert_int_equal(scan_str("{}"), NGX_AI_RELAY_JSON_OK);
    ngx_ai_relay_json_strerror(&scan, (const unsigned char *) "{}", buf,
                               sizeof(buf));
    assert_string_equal(buf, "ok");
}


static void
test_duplicates(void **state)
{
    char         buf[128], *big;
    size_t       i;
    const char  *body;

    body = "{\"model\":\"a\",\"mo\\u0064el\":\"b\"}";
    assert_int_equal(scan_str(body), NGX_AI_RELAY_JSON_ERR_DUPLICATE);
    ngx_ai_relay_json_strerror(&scan, (const unsigned char *) body, buf,
                               sizeof(buf));
    assert_string_equal(buf, "duplicate key \"mo\\u0064el\"");

    body = "{\"\\u006dodel\":1,\"mo\\u0064el\":2}";
    assert_int_equal(scan_str(body), NGX_AI_RELAY_JSON_ERR_DUPLICATE);

    body = "{\"\\u00e9\":1,\"\xc3\xa9\":2}";
    assert_int_equal(scan_str(body), NGX_AI_RELAY_JSON_ERR_DUPLICATE);

    body = "{\"\\ud83d\\ude00\":1,\"\xf0\x9f\x98\x80\":2}";
    assert_int_equal(scan_str(body), NGX_AI_RELAY_JSON_ERR_DUPLICATE);

    body = "{\"a\\/b\":1,\"a/b\":2}";
    assert_int_equal(scan_str(body), NGX_AI_RELAY_JSON_ERR_DUPLICATE);

    body = "{\"\":1,\"\":2}";
    assert_int_equal(scan_str(body), NGX_AI_RELAY_JSON_ERR_DUPLICATE);

    /* not duplicates */
    assert_int_equal(scan_str("{\"model\":1,\"models\":2,\"Model\":3,"
                              "\"mode\":4,\"mo\\u0064elz\":5,\"\":6}"),
                     NGX_AI_RELAY_JSON_OK);
    assert_int_equal(scan_str("{\"a\\u0000\":1,\"a\":2}"),
                     NGX_AI_RELAY_JSON_OK);

    /* nested duplicates are allowed */
    assert_int_equal(scan_str("{\"a\":{\"x\":1,\"x\":2},\"b\":[{\"y\":1,"
                              "\"y\":2}]}"),
                     NGX_AI_RELAY_JSON_OK);

    /* a syntax error later wins over a duplicate */
    assert_int_equal(scan_str("{\"a\":1,\"a\":2,}"),
                     NGX_AI_RELAY_JSON_ERR_SYNTAX);

    /* a long duplicate key is shortened in the message */
    big = malloc(300);
    strcpy(big, "{\"");
    for (i = 0; i < 100; i++) {
        strcat(big, "k");
    }
    strcat(big, "\":1,\"");
    for (i = 0; i < 100; i++) {
        strcat(big, "k");
    }
    strcat(big, "\":2}");
    assert_int_equal(scan_str(big), NGX_AI_RELAY_JSON_ERR_DUPLICATE);
    ngx_ai_relay_json_strerror(&scan, (const unsigned char *) big, buf,
                               sizeof(buf));
    assert_int_equal(strlen(buf), strlen("duplicate key \"\"") + 64 + 3);
    free(big);
}


static void
test_escaped_keys(void **state)
{
    unsigned char                buf[32];
    size_t                       len;
    const char                  *body;
    ngx_ai_relay_json_member_t  *m;

    body = "{\"mo\\u0064el\":\"gpt\\u002d4o\",\"\\\"q\\\"\":1,"
           "\"\\u00e9t\\u00e9\":2}";

    assert_int_equal(scan_str(body), NGX_AI_RELAY_JSON_OK);

    m = ngx_ai_relay_json_find(&scan, (const unsigned char *) body,
                               N("model"));
    assert_ptr_equal(m, &members[0]);
    assert_int_equal(m->key_escaped, 1);
    assert_int_equal(m->value_escaped, 1);

    assert_int_equal(ngx_ai_relay_json_get_string(&scan,
                                                  (const unsigned char *)
                                                  body, N("model"),
                                                  buf, sizeof(buf), &len),
                     NGX_AI_RELAY_JSON_GET_OK);
    assert_int_equal(len, 6);
    assert_memory_equal(buf, "gpt-4o", 6);

    assert_ptr_equal(ngx_ai_relay_json_find(&scan, (const unsigned char *)
                                            body, N("\"q\"")),
                     &members[1]);
    assert_ptr_equal(ngx_ai_relay_json_find(&scan, (const unsigned char *)
                                            body, N("\xc3\xa9t\xc3\xa9")),
                     &members[2]);
    assert_null(ngx_ai_relay_json_find(&scan, (const unsigned char *) body,
                                       N("mo\\u0064el")));
    assert_null(ngx_ai_relay_json_find(&scan, (const unsigned char *) body,
                                       N("modelx")));
    assert_null(ngx_ai_relay_json_find(&scan, (const unsigned char *) body,
                                       N("mode")));
}


static void
test_surrogates_and_utf8(void **state)
{
    unsigned char  buf[64];
    size_t         len;
    const char    *body;

    body = "{\"s\":\"\\ud83d\\ude00\\uD834\\uDD1E\\u00e9\\u4e2d\","
           "\"r\":\"\xf0\x9f\x98\x80\xc3\xa9\xe4\xb8\xad\xef\xbf\xbf"
           "\xf4\x8f\xbf\xbf\xc2\x80\xe0\xa0\x80\xf0\x90\x80\x80\"}";

    assert_int_equal(scan_str(body), NGX_AI_RELAY_JSON_OK);
    assert_int_equal(members[0].str_non_ascii, 4);
    assert_int_equal(members[0].str_ascii, 0);
    assert_int_equal(members[1].str_non_ascii, 8);
    assert_int_equal(members[1].str_ascii, 0);

    assert_int_equal(ngx_ai_relay_json_get_string(&scan,
                                                  (const unsigned char *)
                                                  body, N("s"),
                                                  buf, sizeof(buf), &len),
                     NGX_AI_RELAY_JSON_GET_OK);
    assert_int_equal(len, 4 + 4 + 2 + 3);
    assert_memory_equal(buf, "\xf0\x9f\x98\x80\xf0\x9d\x84\x9e\xc3\xa9"
                        "\xe4\xb8\xad", len);

    /* \u0000 is valid JSON */
    assert_int_equal(scan_str("{\"a\":\"x\\u0000y\"}"), NGX_AI_RELAY_JSON_OK);
    assert_int_equal(ngx_ai_relay_json_get_string(&scan,
                                                  (const unsigned char *)
                                                  "{\"a\":\"x\\u0000y\"}",
                                                  N("a"), buf, sizeof(buf),
                                                  &len),
                     NGX_AI_RELAY_JSON_GET_OK);
    assert_int_equal(len, 3);
    assert_memory_equal(buf, "x\0y", 3);

    assert_true(ngx_ai_relay_json_utf8_valid(S("")));
    assert_true(ngx_ai_relay_json_utf8_valid(S("abc\xc3\xa9\xf0\x9f\x98\x80"
                                                "\xef\xbf\xbf")));
    assert_false(ngx_ai_relay_json_utf8_valid(S("\xed\xa0\x80")));
    assert_false(ngx_ai_relay_json_utf8_valid(S("\xc0\x80")));
    assert_false(ngx_ai_relay_json_utf8_valid(S("abc\xe2\x82")));
    assert_false(ngx_ai_relay_json_utf8_valid(S("\xf4\x90\x80\x80")));
}


static void
test_counts(void **state)
{
    const char  *body;

    body = "{\"a\":\"h\\u00e9llo \\ud83d\\ude00 \xc3\xbc \xe4\xb8\xad\","
           "\"b\":[\"x\",{\"key\":\"yz\"},1,true,null],\"c\":1,"
           "\"d\":\"\\n\\\"\\\\\\/\\u0041\\b\\f\\r\\t\","
           "\"long\":\"0123456789abcdefghijklmnopqrstuvwxyz\"}";

    assert_int_equal(scan_str(body), NGX_AI_RELAY_JSON_OK);

    assert_int_equal(members[0].str_ascii, 7);
    assert_int_equal(members[0].str_non_ascii, 4);
    assert_int_equal(members[1].str_ascii, 3);
    assert_int_equal(members[1].str_non_ascii, 0);
    assert_int_equal(members[2].str_ascii, 0);
    assert_int_equal(members[3].str_ascii, 9);
    assert_int_equal(members[4].str_ascii, 36);

    assert_int_equal(scan.str_ascii, 7 + 3 + 9 + 36);
    assert_int_equal(scan.str_non_ascii, 4);

    assert_null(jd_check((const unsigned char *) body, strlen(body)));

    /* keys are never counted */
    assert_int_equal(scan_str("{\"aaaa\":{\"bbbb\":{}}}"),
                     NGX_AI_RELAY_JSON_OK);
    assert_int_equal(scan.str_ascii, 0);

    /* counts of a non-object document */
    assert_int_equal(scan_str("[\"ab\",\"\xc3\xa9\"]"),
                     NGX_AI_RELAY_JSON_ERR_NOT_OBJECT);
    assert_int_equal(scan.str_ascii, 2);
    assert_int_equal(scan.str_non_ascii, 1);
}


static char *
nest(size_t depth, int object_first)
{
    char    *s, *p;
    size_t   i;

    /* {"a": + "[" * (depth - 1) + "]" * (depth - 1) + } */

    s = malloc(2 * depth + 16);
    assert_non_null(s);

    p = s;

    if (object_first) {
        p += sprintf(p, "{\"a\":");
    }

    for (i = object_first ? 1 : 0; i < depth; i++) {
        *p++ = '[';
    }

    for (i = object_first ? 1 : 0; i < depth; i++) {
        *p++ = ']';
    }

    if (object_first) {
        *p++ = '}';
    }

    *p = '\0';

    return s;
}


static void
test_depth(void **state)
{
    char  *s;

    s = nest(512, 1);
    assert_int_equal(scan_str(s), NGX_AI_RELAY_JSON_OK);
    assert_int_equal(scan.nmembers, 1);
    assert_int_equal(members[0].type, NGX_AI_RELAY_JSON_ARRAY);
    assert_int_equal(members[0].value_end, strlen(s) - 1);
    free(s);

    s = nest(513, 1);
    assert_int_equal(scan_str(s), NGX_AI_RELAY_JSON_ERR_DEPTH);
    assert_int_equal(scan.err_offset, 5 + 511);
    assert_string_equal(scan.err, "nesting too deep");
    free(s);

    s = nest(512, 0);
    assert_int_equal(scan_str(s), NGX_AI_RELAY_JSON_ERR_NOT_OBJECT);
    free(s);

    s = nest(513, 0);
    assert_int_equal(scan_str(s), NGX_AI_RELAY_JSON_ERR_DEPTH);
    assert_int_equal(scan.err_offset, 512);
    free(s);

    /* a custom limit, and the hard limit */

    ngx_ai_relay_json_scan_init(&scan, members, MEMBERS);
    scan.max_depth = 2;
    assert_int_equal(ngx_ai_relay_json_scan(&scan, S("{\"a\":{\"b\":1}}")),
                     NGX_AI_RELAY_JSON_OK);
    assert_int_equal(ngx_ai_relay_json_scan(&scan, S("{\"a\":{\"b\":[]}}")),
                     NGX_AI_RELAY_JSON_ERR_DEPTH);
    assert_int_equal(scan.err_offset, 10);

    s = nest(NGX_AI_RELAY_JSON_DEPTH_LIMIT, 1);
    scan.max_depth = 1000000;
    assert_int_equal(ngx_ai_relay_json_scan(&scan, (unsigned char *) s,
                                            strlen(s)),
                     NGX_AI_RELAY_JSON_OK);
    free(s);

    s = nest(NGX_AI_RELAY_JSON_DEPTH_LIMIT + 1, 1);
    assert_int_equal(ngx_ai_relay_json_scan(&scan, (unsigned char *) s,
                                            strlen(s)),
                     NGX_AI_RELAY_JSON_ERR_DEPTH);
    free(s);

    /* jansson agrees at its own limit, 2048 */

    s = nest(2048, 1);
    assert_null(jd_check((unsigned char *) s, strlen(s)));
    free(s);

    s = nest(2049, 1);
    assert_null(jd_check((unsigned char *) s, strlen(s)));
    free(s);

    /* deep nesting mixed with objects; members stay right */
    assert_int_equal(scan_str("{\"a\":[{\"b\":[{\"c\":{}}]}],\"z\":1}"),
                     NGX_AI_RELAY_JSON_OK);
    assert_int_equal(scan.nmembers, 2);
    assert_string_equal(value_of("{\"a\":[{\"b\":[{\"c\":{}}]}],\"z\":1}",
                                 &members[1]), "1");
}


static void
test_members_limit(void **state)
{
    ngx_ai_relay_json_member_t  two[2];

    ngx_ai_relay_json_scan_init(&scan, two, 2);
    assert_int_equal(ngx_ai_relay_json_scan(&scan, S("{\"a\":1,\"b\":2}")),
                     NGX_AI_RELAY_JSON_OK);
    assert_int_equal(ngx_ai_relay_json_scan(&scan,
                                            S("{\"a\":1,\"b\":2,\"c\":3}")),
                     NGX_AI_RELAY_JSON_ERR_MEMBERS);
    assert_int_equal(scan.err_offset, 13);

    /* nested members do not count */
    assert_int_equal(ngx_ai_relay_json_scan(&scan,
                         S("{\"a\":{\"x\":1,\"y\":2,\"z\":3},\"b\":2}")),
                     NGX_AI_RELAY_JSON_OK);

    /* validation only */
    ngx_ai_relay_json_scan_init(&scan, NULL, 0);
    assert_int_equal(ngx_ai_relay_json_scan(&scan,
                                            S("{\"a\":1,\"b\":2,\"a\":3}")),
                     NGX_AI_RELAY_JSON_OK);
    assert_int_equal(scan.nmembers, 0);
    assert_null(ngx_ai_relay_json_find(&scan, (const unsigned char *)
                                       "{\"a\":1,\"b\":2,\"a\":3}",
                                       N("a")));
    assert_int_equal(ngx_ai_relay_json_scan(&scan, S("{\"a\":1,}")),
                     NGX_AI_RELAY_JSON_ERR_SYNTAX);
}


static void
test_getters(void **state)
{
    int            b;
    size_t         len;
    int64_t        v;
    const char    *body;
    unsigned char  buf[16];

    body = "{\"i\":100,\"neg\":-5,\"e\":1e3,\"f\":100.0,\"h\":1.5,"
           "\"max\":9223372036854775807,\"over\":9223372036854775808,"
           "\"min\":-9223372036854775808,\"under\":-9223372036854775809,"
           "\"big\":1e19,\"zero\":0.0e5,\"z2\":-0,\"x\":12.5e1,"
           "\"y\":1250e-1,\"w\":1251e-1,\"s\":\"100\",\"huge\":1e999999999,"
           "\"tiny\":0e999999999,\"nz\":0.000,\"E\":2E+2,\"m\":-1.0e-0,"
           "\"long\":100000000000000000000000e-5,"
           "\"frac\":0.00000000000000000000000000001e29,"
           "\"t\":true,\"fa\":false,\"nu\":null,\"str\":\"a\\\"b\","
           "\"o\":{\"maxOutputTokens\":64,\"k\":\"v\"}}";

    assert_int_equal(scan_str(body), NGX_AI_RELAY_JSON_OK);

#define GET_INT(name, rc, val)                                               \
    v = 12345;                                                               \
    assert_int_equal(ngx_ai_relay_json_get_int(&scan,                        \
                         (const unsigned char *) body, N(name), &v), rc);    \
    if (rc == NGX_AI_RELAY_JSON_GET_OK) {                                    \
        assert_true(v == (int64_t) (val));                                   \
    }

    GET_INT("i", NGX_AI_RELAY_JSON_GET_OK, 100);
    GET_INT("neg", NGX_AI_RELAY_JSON_GET_OK, -5);
    GET_INT("e", NGX_AI_RELAY_JSON_GET_OK, 1000);
    GET_INT("f", NGX_AI_RELAY_JSON_GET_OK, 100);
    GET_INT("h", NGX_AI_RELAY_JSON_GET_RANGE, 0);
    GET_INT("max", NGX_AI_RELAY_JSON_GET_OK, INT64_MAX);
    GET_INT("over", NGX_AI_RELAY_JSON_GET_RANGE, 0);
    GET_INT("min", NGX_AI_RELAY_JSON_GET_OK, INT64_MIN);
    GET_INT("under", NGX_AI_RELAY_JSON_GET_RANGE, 0);
    GET_INT("big", NGX_AI_RELAY_JSON_GET_RANGE, 0);
    GET_INT("zero", NGX_AI_RELAY_JSON_GET_OK, 0);
    GET_INT("z2", NGX_AI_RELAY_JSON_GET_OK, 0);
    GET_INT("x", NGX_AI_RELAY_JSON_GET_OK, 125);
    GET_INT("y", NGX_AI_RELAY_JSON_GET_OK, 125);
    GET_INT("w", NGX_AI_RELAY_JSON_GET_RANGE, 0);
    GET_INT("s", NGX_AI_RELAY_JSON_GET_TYPE, 0);
    GET_INT("huge", NGX_AI_RELAY_JSON_GET_RANGE, 0);
    GET_INT("tiny", NGX_AI_RELAY_JSON_GET_OK, 0);
    GET_INT("nz", NGX_AI_RELAY_JSON_GET_OK, 0);
    GET_INT("E", NGX_AI_RELAY_JSON_GET_OK, 200);
    GET_INT("m", NGX_AI_RELAY_JSON_GET_OK, -1);
    GET_INT("long", NGX_AI_RELAY_JSON_GET_OK, 1000000000000000000LL);
    GET_INT("frac", NGX_AI_RELAY_JSON_GET_OK, 1);
    GET_INT("t", NGX_AI_RELAY_JSON_GET_TYPE, 0);
    GET_INT("missing", NGX_AI_RELAY_JSON_GET_MISSING, 0);

#undef GET_INT

    assert_int_equal(ngx_ai_relay_json_get_bool(&scan, (const unsigned char *)
                                                body, N("t"), &b),
                     NGX_AI_RELAY_JSON_GET_OK);
    assert_int_equal(b, 1);
    assert_int_equal(ngx_ai_relay_json_get_bool(&scan, (const unsigned char *)
                                                body, N("fa"), &b),
                     NGX_AI_RELAY_JSON_GET_OK);
    assert_int_equal(b, 0);
    assert_int_equal(ngx_ai_relay_json_get_bool(&scan, (const unsigned char *)
                                                body, N("nu"), &b),
                     NGX_AI_RELAY_JSON_GET_TYPE);
    assert_int_equal(ngx_ai_relay_json_get_bool(&scan, (const unsigned char *)
                                                body, N("i"), &b),
                     NGX_AI_RELAY_JSON_GET_TYPE);
    assert_int_equal(ngx_ai_relay_json_get_bool(&scan, (const unsigned char *)
                                                body, N("stream"), &b),
                     NGX_AI_RELAY_JSON_GET_MISSING);

    assert_int_equal(ngx_ai_relay_json_get_string(&scan,
                                                  (const unsigned char *)
                                                  body, N("str"), buf,
                                                  sizeof(buf), &len),
                     NGX_AI_RELAY_JSON_GET_OK);
    assert_int_equal(len, 3);
    assert_memory_equal(buf, "a\"b", 3);
    assert_int_equal(ngx_ai_relay_json_get_string(&scan,
                                                  (const unsigned char *)
                                                  body, N("str"), buf, 2,
                                                  &len),
                     NGX_AI_RELAY_JSON_GET_RANGE);
    assert_int_equal(ngx_ai_relay_json_get_string(&scan,
                                                  (const unsigned char *)
                                                  body, N("str"), buf, 3,
                                                  &len),
                     NGX_AI_RELAY_JSON_GET_OK);
    assert_int_equal(ngx_ai_relay_json_get_string(&scan,
                                                  (const unsigned char *)
                                                  body, N("i"), buf,
                                                  sizeof(buf), &len),
                     NGX_AI_RELAY_JSON_GET_TYPE);
    assert_int_equal(ngx_ai_relay_json_get_string(&scan,
                                                  (const unsigned char *)
                                                  body, N("nope"), buf,
                                                  sizeof(buf), &len),
                     NGX_AI_RELAY_JSON_GET_MISSING);

    /* generationConfig.maxOutputTokens style */
    assert_int_equal(ngx_ai_relay_json_get_nested_int(&scan,
                         (const unsigned char *) body, N("o"),
                         N("maxOutputTokens"), &v),
                     NGX_AI_RELAY_JSON_GET_OK);
    assert_int_equal(v, 64);
    assert_int_equal(ngx_ai_relay_json_get_nested_int(&scan,
                         (const unsigned char *) body, N("o"), N("k"), &v),
                     NGX_AI_RELAY_JSON_GET_TYPE);
    assert_int_equal(ngx_ai_relay_json_get_nested_int(&scan,
                         (const unsigned char *) body, N("o"), N("q"), &v),
                     NGX_AI_RELAY_JSON_GET_MISSING);
    assert_int_equal(ngx_ai_relay_json_get_nested_int(&scan,
                         (const unsigned char *) body, N("i"), N("q"), &v),
                     NGX_AI_RELAY_JSON_GET_TYPE);
    assert_int_equal(ngx_ai_relay_json_get_nested_int(&scan,
                         (const unsigned char *) body, N("none"), N("q"), &v),
                     NGX_AI_RELAY_JSON_GET_MISSING);

    /* lookups after a failed scan find nothing */
    assert_int_equal(scan_str("{\"a\":1,\"a\":2}"),
                     NGX_AI_RELAY_JSON_ERR_DUPLICATE);
    assert_null(ngx_ai_relay_json_find(&scan, (const unsigned char *)
                                       "{\"a\":1,\"a\":2}", N("a")));
}


static void
test_object_find(void **state)
{
    const char                  *body;
    ngx_ai_relay_json_member_t   m, *so;

    body = "{\"stream_options\" : { \"a\" : \"x\\\"}{\\\\\" , "
           "\"b\":[1,{\"include_usage\":7}], \"c\":{\"include_usage\":8},"
           "\"include_usage\" :false, \"d\":\"\\\\\","
           "\"include_usage\": null , \"e\" : 1.5e3 } }";

    assert_int_equal(scan_str(body), NGX_AI_RELAY_JSON_OK);

    so = ngx_ai_relay_json_find(&scan, (const unsigned char *) body,
                                N("stream_options"));
    assert_non_null(so);

    /* the last of the duplicates, never a nested one */
    assert_true(ngx_ai_relay_json_object_find((const unsigned char *) body,
                                              so, N("include_usage"), &m));
    assert_int_equal(m.type, NGX_AI_RELAY_JSON_NULL);
    assert_string_equal(value_of(body, &m), "null");

    assert_true(ngx_ai_relay_json_object_find((const unsigned char *) body,
                                              so, N("a"), &m));
    assert_int_equal(m.type, NGX_AI_RELAY_JSON_STRING);
    assert_int_equal(m.value_escaped, 1);
    assert_string_equal(value_of(body, &m), "\"x\\\"}{\\\\\"");

    assert_true(ngx_ai_relay_json_object_find((const unsigned char *) body,
                                              so, N("d"), &m));
    assert_string_equal(value_of(body, &m), "\"\\\\\"");

    assert_true(ngx_ai_relay_json_object_find((const unsigned char *) body,
                                              so, N("e"), &m));
    assert_int_equal(m.type, NGX_AI_RELAY_JSON_NUMBER);
    assert_string_equal(value_of(body, &m), "1.5e3");

    assert_true(ngx_ai_relay_json_object_find((const unsigned char *) body,
                                              so, N("b"), &m));
    assert_string_equal(value_of(body, &m), "[1,{\"include_usage\":7}]");

    assert_false(ngx_ai_relay_json_object_find((const unsigned char *) body,
                                               so, N("zz"), &m));
    assert_false(ngx_ai_relay_json_object_find((const unsigned char *) body,
                                               NULL, N("a"), &m));

    /* an escaped nested key */
    body = "{\"o\":{\"in\\u0063lude_usage\":true}}";
    assert_int_equal(scan_str(body), NGX_AI_RELAY_JSON_OK);
    assert_true(ngx_ai_relay_json_object_find((const unsigned char *) body,
                                              &members[0],
                                              N("include_usage"), &m));
    assert_int_equal(m.type, NGX_AI_RELAY_JSON_TRUE);
    assert_int_equal(m.key_escaped, 1);

    /* empty object */
    body = "{\"o\":{ }}";
    assert_int_equal(scan_str(body), NGX_AI_RELAY_JSON_OK);
    assert_false(ngx_ai_relay_json_object_find((const unsigned char *) body,
                                               &members[0], N("a"), &m));
}


static void
test_quote_unescape(void **state)
{
    size_t          n, len;
    unsigned char   out[64], dec[64];

    static const unsigned char  raw[] = "a\"b\\c\n\x01\x1f\t\b\f\r/\xc3\xa9";

    n = ngx_ai_relay_json_quote(out, raw, sizeof(raw) - 1) - out;
    assert_int_equal(n, ngx_ai_relay_json_quote_len(raw, sizeof(raw) - 1));
    assert_memory_equal(out, "\"a\\\"b\\\\c\\n\\u0001\\u001f\\t\\b\\f\\r/"
                        "\xc3\xa9\"", n);

    assert_int_equal(ngx_ai_relay_json_unescape(out + 1, n - 2, dec,
                                                sizeof(dec), &len),
                     0);
    assert_int_equal(len, sizeof(raw) - 1);
    assert_memory_equal(dec, raw, len);

    assert_int_equal(ngx_ai_relay_json_quote(out, S("")) - out, 2);
    assert_memory_equal(out, "\"\"", 2);

    assert_int_equal(ngx_ai_relay_json_unescape(S("\\/\\u0041\\ud83d\\ude00"),
                                                dec, sizeof(dec), &len),
                     0);
    assert_int_equal(len, 6);
    assert_memory_equal(dec, "/A\xf0\x9f\x98\x80", 6);

    /* exact fit, and one byte short */
    assert_int_equal(ngx_ai_relay_json_unescape(S("ab\\ud83d\\ude00"), dec,
                                                6, &len),
                     0);
    assert_int_equal(ngx_ai_relay_json_unescape(S("ab\\ud83d\\ude00"), dec,
                                                5, &len),
                     -1);
    assert_int_equal(ngx_ai_relay_json_unescape(S("abc"), dec, 2, &len), -1);

    /* invalid escapes */
    assert_int_equal(ngx_ai_relay_json_unescape(S("\\q"), dec, sizeof(dec),
                                                &len),
                     -1);
    assert_int_equal(ngx_ai_relay_json_unescape(S("\\ud800"), dec,
                                                sizeof(dec), &len),
                     -1);
    assert_int_equal(ngx_ai_relay_json_unescape(S("\\u12"), dec, sizeof(dec),
                                                &len),
                     -1);
    assert_int_equal(ngx_ai_relay_json_unescape(S("x\\"), dec, sizeof(dec),
                                                &len),
                     -1);
}


static void
test_splice(void **state)
{
    char                      *out;
    size_t                     np, len;
    const char                *body;
    ngx_ai_relay_json_edit_t   e[4];
    ngx_ai_relay_json_piece_t  pieces[8];

    body = "0123456789";

    /* no edits: one piece, the body itself */
    assert_int_equal(ngx_ai_relay_json_splice(S("0123456789"), e, 0,
                                              pieces, 8, &np, &len),
                     0);
    assert_int_equal(np, 1);
    assert_int_equal(len, 10);

    /* given out of order; inserts at 0 and at the end */
    set_edit(&e[0], 10, 10, "E");
    set_edit(&e[1], 2, 5, "xy");
    set_edit(&e[2], 0, 0, "S");
    out = splice_str(body, e, 3);
    assert_string_equal(out, "S01xy56789E");
    free(out);

    /* an insertion goes before a replacement at the same offset */
    set_edit(&e[0], 2, 4, "R");
    set_edit(&e[1], 2, 2, "I");
    set_edit(&e[2], 4, 4, "J");
    out = splice_str(body, e, 3);
    assert_string_equal(out, "01IRJ456789");
    free(out);

    /* insertions at one offset keep their order */
    set_edit(&e[0], 5, 5, "a");
    set_edit(&e[1], 5, 5, "b");
    set_edit(&e[2], 5, 5, "c");
    out = splice_str(body, e, 3);
    assert_string_equal(out, "01234abc56789");
    free(out);

    /* deletion, whole replacement, adjacent replacements */
    set_edit(&e[0], 0, 10, "");
    out = splice_str(body, e, 1);
    assert_string_equal(out, "");
    free(out);

    set_edit(&e[0], 0, 5, "A");
    set_edit(&e[1], 5, 10, "B");
    out = splice_str(body, e, 2);
    assert_string_equal(out, "AB");
    free(out);

    /* zero-length pieces are left out */
    set_edit(&e[0], 0, 3, "");
    assert_int_equal(ngx_ai_relay_json_splice(S("0123456789"), e, 1,
                                              pieces, 8, &np, &len),
                     0);
    assert_int_equal(np, 1);
    assert_int_equal(len, 7);
    assert_memory_equal(pieces[0].data, "3456789", 7);

    /* overlaps and bad ranges */
    set_edit(&e[0], 2, 5, "x");
    set_edit(&e[1], 4, 6, "y");
    assert_int_equal(ngx_ai_relay_json_splice(S("0123456789"), e, 2,
                                              pieces, 8, &np, &len),
                     -1);

    set_edit(&e[0], 2, 5, "x");
    set_edit(&e[1], 3, 3, "y");
    assert_int_equal(ngx_ai_relay_json_splice(S("0123456789"), e, 2,
                                              pieces, 8, &np, &len),
                     -1);

    set_edit(&e[0], 2, 5, "x");
    set_edit(&e[1], 2, 6, "y");
    assert_int_equal(ngx_ai_relay_json_splice(S("0123456789"), e, 2,
                                              pieces, 8, &np, &len),
                     -1);

    set_edit(&e[0], 5, 11, "x");
    assert_int_equal(ngx_ai_relay_json_splice(S("0123456789"), e, 1,
                                              pieces, 8, &np, &len),
                     -1);

    set_edit(&e[0], 5, 4, "x");
    assert_int_equal(ngx_ai_relay_json_splice(S("0123456789"), e, 1,
                                              pieces, 8, &np, &len),
                     -1);

    /* too few pieces; 2 * n + 1 is enough */
    set_edit(&e[0], 2, 3, "x");
    set_edit(&e[1], 5, 6, "y");
    assert_int_equal(ngx_ai_relay_json_splice(S("0123456789"), e, 2,
                                              pieces, 4, &np, &len),
                     -1);
    assert_int_equal(ngx_ai_relay_json_splice(S("0123456789"), e, 2,
                                              pieces, 5, &np, &len),
                     0);
    assert_int_equal(np, 5);
    assert_int_equal(len, 10);
    assert_ptr_equal(pieces[1].data, e[0].data);
    assert_ptr_equal(pieces[3].data, e[1].data);
}


static void
test_edit_member(void **state)
{
    int                        rc;
    char                      *out;
    const char                *body;
    unsigned char              scratch[64], quoted[64];
    size_t                     qlen;
    ngx_ai_relay_json_edit_t   e[2];

    /* numbers and everything else stay byte-exact */
    body = "{ \"temperature\" : 0.70000000000000000001, \"model\" : "
           "\"gpt-4\" ,\"big\":123456789012345678901234567890,"
           "\"neg\":-0.0,\"exp\":1E-400,\"u\":\"\\u00e9\\n\",\"z\":{} }";
    assert_int_equal(scan_str(body), NGX_AI_RELAY_JSON_OK);

    qlen = ngx_ai_relay_json_quote(quoted, S("gpt-4o-2024-08-06")) - quoted;

    assert_int_equal(ngx_ai_relay_json_edit_member(&scan,
                         (const unsigned char *) body, N("model"), quoted,
                         qlen, scratch, sizeof(scratch), &e[0]),
                     0);
    assert_ptr_equal(e[0].data, quoted);
    out = splice_str(body, e, 1);
    assert_string_equal(out,
           "{ \"temperature\" : 0.70000000000000000001, \"model\" : "
           "\"gpt-4o-2024-08-06\" ,\"big\":123456789012345678901234567890,"
           "\"neg\":-0.0,\"exp\":1E-400,\"u\":\"\\u00e9\\n\",\"z\":{} }");
    free(out);

    /* added after the last member when missing */
    body = "{\"messages\":[],\"n\":1 }";
    assert_int_equal(scan_str(body), NGX_AI_RELAY_JSON_OK);
    assert_int_equal(ngx_ai_relay_json_edit_member_size(N("model"), qlen),
                     2 + 7 + qlen);
    assert_int_equal(ngx_ai_relay_json_edit_member(&scan,
                         (const unsigned char *) body, N("model"), quoted,
                         qlen, scratch, 2 + 7 + qlen, &e[0]),
                     0);
    out = splice_str(body, e, 1);
    assert_string_equal(out, "{\"messages\":[],\"n\":1,"
                        "\"model\":\"gpt-4o-2024-08-06\" }");
    free(out);

    /* scratch one byte short */
    assert_int_equal(scan_str(body), NGX_AI_RELAY_JSON_OK);
    assert_int_equal(ngx_ai_relay_json_edit_member(&scan,
                         (const unsigned char *) body, N("model"), quoted,
                         qlen, scratch, 2 + 7 + qlen - 1, &e[0]),
                     -1);

    /* an empty object, then a second member into it */
    body = " { \n } ";
    assert_int_equal(scan_str(body), NGX_AI_RELAY_JSON_OK);
    assert_int_equal(ngx_ai_relay_json_edit_member(&scan,
                         (const unsigned char *) body, N("model"),
                         S("\"m\""), scratch, sizeof(scratch), &e[0]),
                     0);
    rc = ngx_ai_relay_json_edit_include_usage(&scan,
                                              (const unsigned char *) body,
                                              &e[1]);
    assert_int_equal(rc, NGX_AI_RELAY_JSON_USAGE_ADD_OPTIONS);
    out = splice_str(body, e, 2);
    assert_string_equal(out, " {\"model\":\"m\","
                        "\"stream_options\":{\"include_usage\":true} \n } ");
    assert_null(jd_check((unsigned char *) out, strlen(out)));
    free(out);

    /* a name that needs escaping */
    body = "{}";
    assert_int_equal(scan_str(body), NGX_AI_RELAY_JSON_OK);
    assert_int_equal(ngx_ai_relay_json_edit_member(&scan,
                         (const unsigned char *) body, N("a\"b"),
                         S("[1]"), scratch, sizeof(scratch), &e[0]),
                     0);
    out = splice_str(body, e, 1);
    assert_string_equal(out, "{\"a\\\"b\":[1]}");
    free(out);

    /* an escaped key is found and its value replaced */
    body = "{\"mo\\u0064el\":\"x\"}";
    assert_int_equal(scan_str(body), NGX_AI_RELAY_JSON_OK);
    assert_int_equal(ngx_ai_relay_json_edit_member(&scan,
                         (const unsigned char *) body, N("model"),
                         S("\"y\""), scratch, sizeof(scratch), &e[0]),
                     0);
    out = splice_str(body, e, 1);
    assert_string_equal(out, "{\"mo\\u0064el\":\"y\"}");
    free(out);

    /* not after a failed scan */
    assert_int_equal(scan_str("[]"), NGX_AI_RELAY_JSON_ERR_NOT_OBJECT);
    assert_int_equal(ngx_ai_relay_json_edit_member(&scan,
                         (const unsigned char *) "[]", N("model"),
                         S("\"y\""), scratch, sizeof(scratch), &e[0]),
                     -1);
}


typedef struct {
    const char  *in;
    int          rc;
    const char  *out;     /* NULL: no edit */
} usage_case_t;


static const usage_case_t  usage_cases[] = {
    { "{\"model\":\"x\",\"stream\":true}",
      NGX_AI_RELAY_JSON_USAGE_ADD_OPTIONS,
      "{\"model\":\"x\",\"stream\":true,"
      "\"stream_options\":{\"include_usage\":true}}" },
    { "{}", NGX_AI_RELAY_JSON_USAGE_ADD_OPTIONS,
      "{\"stream_options\":{\"include_usage\":true}}" },
    { "{\n  \"a\": 1\n}\n", NGX_AI_RELAY_JSON_USAGE_ADD_OPTIONS,
      "{\n  \"a\": 1,\"stream_options\":{\"include_usage\":true}\n}\n" },
    { "{\"stream_options\":{}}", NGX_AI_RELAY_JSON_USAGE_ADD_FIELD,
      "{\"stream_options\":{\"include_usage\":true}}" },
    { "{\"stream_options\":{ \n }}", NGX_AI_RELAY_JSON_USAGE_ADD_FIELD,
      "{\"stream_options\":{\"include_usage\":true \n }}" },
    { "{\"stream_options\":{\"x\":1}}", NGX_AI_RELAY_JSON_USAGE_ADD_FIELD,
      "{\"stream_options\":{\"include_usage\":true,\"x\":1}}" },
    { "{\"stream_options\":{ \"x\":{\"include_usage\":true}}}",
      NGX_AI_RELAY_JSON_USAGE_ADD_FIELD,
      "{\"stream_options\":{\"include_usage\":true, "
      "\"x\":{\"include_usage\":true}}}" },
    { "{\"stream_options\":{\"include_usage\":false},\"b\":2}",
      NGX_AI_RELAY_JSON_USAGE_SET_FIELD,
      "{\"stream_options\":{\"include_usage\":true},\"b\":2}" },
    { "{\"stream_options\":{\"include_usage\" : null }}",
      NGX_AI_RELAY_JSON_USAGE_SET_FIELD,
      "{\"stream_options\":{\"include_usage\" : true }}" },
    { "{\"stream_options\":{\"include_usage\":true}}",
      NGX_AI_RELAY_JSON_USAGE_PRESENT, NULL },
    { "{\"stream_options\":{\"include_usage\":false,"
      "\"include_usage\":true}}",
      NGX_AI_RELAY_JSON_USAGE_PRESENT, NULL },
    { "{\"stream_options\":{\"include_usage\":\"yes\"}}",
      NGX_AI_RELAY_JSON_USAGE_CONFLICT, NULL },
    { "{\"stream_options\":{\"include_usage\":1}}",
      NGX_AI_RELAY_JSON_USAGE_CONFLICT, NULL },
    { "{\"stream_options\":null}", NGX_AI_RELAY_JSON_USAGE_SET_OPTIONS,
      "{\"stream_options\":{\"include_usage\":true}}" },
    { "{\"stream_options\":[]}", NGX_AI_RELAY_JSON_USAGE_CONFLICT, NULL },
    { "{\"stream_options\":\"x\"}", NGX_AI_RELAY_JSON_USAGE_CONFLICT,
      NULL },
    { "{\"stream_options\":false}", NGX_AI_RELAY_JSON_USAGE_CONFLICT,
      NULL },
    { "{\"stream_\\u006fptions\":{}}", NGX_AI_RELAY_JSON_USAGE_ADD_FIELD,
      "{\"stream_\\u006fptions\":{\"include_usage\":true}}" },
};


static void
test_include_usage(void **state)
{
    int                        rc;
    char                      *out;
    size_t                     i;
    ngx_ai_relay_json_edit_t   e;

    for (i = 0; i < sizeof(usage_cases) / sizeof(usage_cases[0]); i++) {
        assert_int_equal(scan_str(usage_cases[i].in), NGX_AI_RELAY_JSON_OK);

        rc = ngx_ai_relay_json_edit_include_usage(&scan,
                 (const unsigned char *) usage_cases[i].in, &e);

        if (rc != usage_cases[i].rc) {
            print_error("case %zu: rc %d\n", i, rc);
            fail();
        }

        if (usage_cases[i].out == NULL) {
            assert_null(jd_check_edits((const unsigned char *)
                                       usage_cases[i].in,
                                       strlen(usage_cases[i].in)));
            continue;
        }

        out = splice_str(usage_cases[i].in, &e, 1);
        assert_string_equal(out, usage_cases[i].out);
        assert_null(jd_check((unsigned char *) out, strlen(out)));
        free(out);

        assert_null(jd_check_edits((const unsigned char *) usage_cases[i].in,
                                   strlen(usage_cases[i].in)));
    }
}


static void
test_big_body(void **state)
{
    int                          rc;
    char                        *body, *p, *out;
    size_t                       n, len;
    int64_t                      v;
    const char                  *tail;
    ngx_ai_relay_json_edit_t     e[2];
    ngx_ai_relay_json_member_t  *m;

    /* 10 MB of base64 in one string, plus a CJK string */

    n = 10 * 1024 * 1024;

    body = malloc(n + 4096);
    assert_non_null(body);

    p = body;
    p += sprintf(p, "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\","
                 "\"content\":[{\"type\":\"image_url\",\"image_url\":"
                 "{\"url\":\"data:image/png;base64,");

    for (len = 0; len < n; len++) {
        *p++ = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
               "0123456789+/"[len % 64];
    }

    p += sprintf(p, "\"}},{\"type\":\"text\",\"text\":\"\xe4\xb8\xad\xe6"
                 "\x96\x87\"}]}],\"max_tokens\":4096,\"stream\":true}");

    len = p - body;
    *p = '\0';

    assert_int_equal(scan_buf(body, len), NGX_AI_RELAY_JSON_OK);
    assert_int_equal(scan.nmembers, 4);

    m = ngx_ai_relay_json_find(&scan, (unsigned char *) body, N("messages"));
    assert_non_null(m);
    assert_int_equal(m->str_ascii, strlen("user") + strlen("image_url")
                     + strlen("data:image/png;base64,") + n + strlen("text"));
    assert_int_equal(m->str_non_ascii, 2);
    assert_int_equal(scan.str_ascii, m->str_ascii + 6);

    assert_int_equal(ngx_ai_relay_json_get_int(&scan, (unsigned char *) body,
                                               N("max_tokens"), &v),
                     NGX_AI_RELAY_JSON_GET_OK);
    assert_int_equal(v, 4096);

    assert_int_equal(ngx_ai_relay_json_edit_member(&scan,
                         (unsigned char *) body, N("model"), S("\"gpt-4.1\""),
                         NULL, 0, &e[0]),
                     0);
    rc = ngx_ai_relay_json_edit_include_usage(&scan, (unsigned char *) body,
                                              &e[1]);
    assert_int_equal(rc, NGX_AI_RELAY_JSON_USAGE_ADD_OPTIONS);

    out = splice_str(body, e, 2);
    assert_int_equal(strlen(out), len + 1
                     + strlen(",\"stream_options\":{\"include_usage\":true}"));
    assert_memory_equal(out, "{\"model\":\"gpt-4.1\",\"messages\":", 30);
    assert_memory_equal(out + 18, body + 17, len - 18);
    tail = ",\"stream\":true,\"stream_options\":{\"include_usage\":true}}";
    assert_string_equal(out + strlen(out) - strlen(tail), tail);

    assert_int_equal(scan_buf(out, strlen(out)), NGX_AI_RELAY_JSON_OK);
    free(out);

    /* a corrupt byte near the end is found */
    body[len - 100] = '\x01';
    assert_int_equal(scan_buf(body, len), NGX_AI_RELAY_JSON_ERR_SYNTAX);
    body[len - 100] = 'A';

    body[n / 2] = '\xff';
    assert_int_equal(scan_buf(body, len), NGX_AI_RELAY_JSON_ERR_UTF8);
    assert_int_equal(scan.err_offset, n / 2);

    free(body);
}


/* a deterministic generator of JSON-like text for the differential test */

typedef struct {
    char    *p;
    size_t   len;
    size_t   size;
} gen_buf_t;


static uint64_t  gen_state = 0x9e3779b97f4a7c15ULL;


static uint32_t
gen_rand(uint32_t n)
{
    gen_state ^= gen_state << 13;
    gen_state ^= gen_state >> 7;
    gen_state ^= gen_state << 17;

    return (uint32_t) (gen_state % n);
}


static void
gen_put(gen_buf_t *b, const char *s, size_t len)
{
    if (b->len + len + 1 > b->size) {
        b->size = (b->len + len + 1) * 2;
        b->p = realloc(b->p, b->size);
        assert_non_null(b->p);
    }

    memcpy(b->p + b->len, s, len);
    b->len += len;
}


static void
gen_ws(gen_buf_t *b)
{
    const char  *s;

    static const char  *ws[] = { " ", "\n", "\t", "\r", "  \n  " };

    while (gen_rand(4) == 0) {
        s = ws[gen_rand(5)];
        gen_put(b, s, strlen(s));
    }
}


static const char  *gen_pieces[] = {
    "a", "model", "x y", "\\n", "\\\"", "\\\\", "\\/", "\\u00e9",
    "\\u00E9", "\\ud83d\\ude00", "\\uD834\\uDD1E", "\xc3\xa9",
    "\xe4\xb8\xad", "\xf0\x9f\x98\x80", "\\u0000", "\\u0041", "{", "}",
    "[", "]", ":", ",", "0", "stream_options", "include_usage", "\\t",
    "\xef\xbf\xbf", "\xc2\x80",

    /* invalid, rarely */
    "\\ud800", "\\udc00", "\\x", "\x01", "\xc0\xaf", "\xed\xa0\x80",
    "\xf4\x90\x80\x80", "\xff", "\t", "\\u12", "\\"
};


static void
gen_string(gen_buf_t *b, int key)
{
    size_t       i, n, valid;
    const char  *s;

    static const char  *keys[] = {
        "model", "stream", "stream_options", "include_usage", "n", "a",
        "mo\\u0064el", "messages", ""
    };

    gen_put(b, "\"", 1);

    if (key && gen_rand(2)) {
        n = gen_rand(sizeof(keys) / sizeof(keys[0]));
        gen_put(b, keys[n], strlen(keys[n]));

    } else {
        n = gen_rand(6);
        valid = sizeof(gen_pieces) / sizeof(gen_pieces[0]) - 11;

        for (i = 0; i < n; i++) {
            s = gen_pieces[gen_rand(gen_rand(50) == 0
                                    ? sizeof(gen_pieces)
                                      / sizeof(gen_pieces[0])
                                    : valid)];

            if (key && strcmp(s, "\\u0000") == 0 && gen_rand(20)) {
                /* jansson stops at NUL in keys: keep it rare */
                s = "b";
            }

            gen_put(b, s, strlen(s));
        }
    }

    gen_put(b, "\"", 1);
}


static void
gen_number(gen_buf_t *b)
{
    size_t       i, n;
    const char  *s;

    static const char  *parts[] = {
        "-", "0", "1", "9", "123", ".", "5", "e", "E", "+", "-", "01",
        "1e400", "99999999999999999999"
    };

    if (gen_rand(8) == 0) {
        n = 1 + gen_rand(4);

        for (i = 0; i < n; i++) {
            s = parts[gen_rand(14)];
            gen_put(b, s, strlen(s));
        }

        return;
    }

    if (gen_rand(3) == 0) {
        gen_put(b, "-", 1);
    }

    if (gen_rand(4) == 0) {
        gen_put(b, "0", 1);

    } else {
        n = 1 + (gen_rand(20) == 0 ? gen_rand(25) : gen_rand(8));
        gen_put(b, &"123456789"[gen_rand(9)], 1);

        for (i = 1; i < n; i++) {
            gen_put(b, &"0123456789"[gen_rand(10)], 1);
        }
    }

    if (gen_rand(3) == 0) {
        gen_put(b, ".", 1);
        n = 1 + gen_rand(5);

        for (i = 0; i < n; i++) {
            gen_put(b, &"0123456789"[gen_rand(10)], 1);
        }
    }

    if (gen_rand(4) == 0) {
        gen_put(b, &"eE"[gen_rand(2)], 1);

        if (gen_rand(2)) {
            gen_put(b, &"+-"[gen_rand(2)], 1);
        }

        n = 1 + (gen_rand(20) == 0 ? gen_rand(4) : gen_rand(2));

        for (i = 0; i < n; i++) {
            gen_put(b, &"0123456789"[gen_rand(10)], 1);
        }
    }
}


static void
gen_value(gen_buf_t *b, int depth)
{
    size_t  i, n;

    gen_ws(b);

    switch (gen_rand(depth > 6 ? 4 : 7)) {

    case 0:
        gen_string(b, 0);
        break;

    case 1:
        gen_number(b);
        break;

    case 2:
        if (gen_rand(2)) {
            gen_put(b, "true", 4);

        } else {
            gen_put(b, "false", 5);
        }

        break;

    case 3:
        gen_put(b, "null", 4);
        break;

    case 4:
    case 5:
        gen_put(b, "{", 1);
        n = gen_rand(5);

        for (i = 0; i < n; i++) {
            if (i) {
                gen_put(b, ",", 1);
            }

            gen_ws(b);
            gen_string(b, 1);
            gen_ws(b);
            gen_put(b, ":", 1);
            gen_value(b, depth + 1);
        }

        gen_ws(b);
        gen_put(b, "}", 1);
        break;

    default:
        gen_put(b, "[", 1);
        n = gen_rand(5);

        for (i = 0; i < n; i++) {
            if (i) {
                gen_put(b, ",", 1);
            }

            gen_value(b, depth + 1);
        }

        gen_ws(b);
        gen_put(b, "]", 1);
        break;
    }

    gen_ws(b);
}


static void
gen_mutate(gen_buf_t *b)
{
    size_t       pos, n, len;
    const char  *s;

    static const char  *tokens[] = {
        "\"", "\\", ",", ":", "{", "}", "[", "]", "0", "-", ".", "e",
        "\\u", "\xc3", "\x80", "", " ", "true", "nul", "\xed\xa0"
    };

    n = 1 + gen_rand(3);

    while (n--) {
        pos = b->len ? gen_rand(b->len + 1) : 0;

        switch (gen_rand(4)) {

        case 0:
            if (pos < b->len) {
                b->p[pos] = (char) gen_rand(256);
            }

            break;

        case 1:
            if (pos < b->len) {
                memmove(b->p + pos, b->p + pos + 1, b->len - pos - 1);
                b->len--;
            }

            break;

        case 2:
            /* insert a token; "" stands for a NUL byte */
            s = tokens[gen_rand(sizeof(tokens) / sizeof(tokens[0]))];
            len = strlen(s) ? strlen(s) : 1;

            gen_put(b, s, len);
            memmove(b->p + pos + len, b->p + pos, b->len - len - pos);
            memcpy(b->p + pos, s, len);
            break;

        default:
            b->len = pos;
            break;
        }
    }
}


/* the lenient walk: keys and the depth they were found at */

typedef struct {
    char                        keys[16][16];
    int                         depth[16];
    size_t                      n;
    const char                 *stop;       /* NULL at this key */
    const char                 *skip;       /* this key's value skipped */
} walk_log_t;


static const unsigned char *
walk_log(ngx_ai_relay_json_walk_t *walk, const unsigned char *key,
    size_t key_len, const unsigned char *value)
{
    walk_log_t               *log;
    ngx_ai_relay_json_lax_t   lax;

    log = walk->data;

    assert_true(log->n < 16 && key_len < 16);
    assert_true(value < walk->end);

    memcpy(log->keys[log->n], key, key_len);
    log->keys[log->n][key_len] = '\0';
    log->depth[log->n++] = walk->depth;

    if (log->stop && strcmp(log->keys[log->n - 1], log->stop) == 0) {
        return NULL;
    }

    if (log->skip && strcmp(log->keys[log->n - 1], log->skip) == 0) {
        memset(&lax, 0, sizeof(lax));
        lax.max_depth = 32;

        return ngx_ai_relay_json_walk_value(&lax, value, walk->end);
    }

    return value;
}


static walk_log_t *
walk_str(const char *s, const uint64_t *filter,
    const ngx_ai_relay_json_span_t *count, uint64_t *counts)
{
    static walk_log_t         log;
    ngx_ai_relay_json_walk_t  walk;

    memset(&log, 0, sizeof(log));
    memset(&walk, 0, sizeof(walk));

    walk.handler = walk_log;
    walk.data = &log;
    walk.filter = filter;
    walk.count = count;

    ngx_ai_relay_json_walk_keys(&walk, (const unsigned char *) s, strlen(s));

    if (counts) {
        memcpy(counts, walk.counts, sizeof(walk.counts));
    }

    return &log;
}


#define KB(k, f, l, n)                                                       \
    ngx_ai_relay_json_key_bit(k, f, l, n)

static void
test_walk_keys(void **state)
{
    uint64_t     counts[3];
    walk_log_t  *log;

    static const uint64_t  filter_a[5] = {
        KB(0, 'a', 'a', 1), KB(1, 'a', 'a', 1), KB(2, 'a', 'a', 1),
        KB(3, 'a', 'a', 1), KB(4, 'a', 'a', 1)
    };

    static const ngx_ai_relay_json_span_t  count_t[] = {
        { (const unsigned char *) "t", 1 },
        { NULL, 0 }
    };

    log = walk_str("{\"a\":1,\"b\":{\"c\":\"x\",\"d\":[{\"e\":2}]},"
                   "\"s\":\"f:\" , \"g\" : [\"h\", \"i\"]}", NULL, NULL, NULL);

    assert_int_equal(log->n, 7);
    assert_string_equal(log->keys[0], "a");
    assert_int_equal(log->depth[0], 1);
    assert_string_equal(log->keys[2], "c");
    assert_int_equal(log->depth[2], 2);
    assert_string_equal(log->keys[4], "e");
    assert_int_equal(log->depth[4], 4);
    assert_string_equal(log->keys[5], "s");
    assert_int_equal(log->depth[5], 1);
    assert_string_equal(log->keys[6], "g");

    /* keys as written; stray brackets; a cut text */

    log = walk_str("}]{\"a\\\"b\":1,\"c\":", NULL, NULL, NULL);
    assert_int_equal(log->n, 1);
    assert_string_equal(log->keys[0], "a\\\"b");
    assert_int_equal(log->depth[0], -1);

    log = walk_str("{\"a\":1,\"b", NULL, NULL, NULL);
    assert_int_equal(log->n, 1);

    log = walk_str("no json \"a\" :x \"b\"", NULL, NULL, NULL);
    assert_int_equal(log->n, 1);
    assert_int_equal(log->depth[0], 0);

    /* the handler stops the walk or skips a value */

    {
        walk_log_t                lg;
        ngx_ai_relay_json_walk_t  walk;

        memset(&lg, 0, sizeof(lg));
        memset(&walk, 0, sizeof(walk));

        walk.handler = walk_log;
        walk.data = &lg;
        lg.skip = "a";

        ngx_ai_relay_json_walk_keys(&walk,
            S("{\"a\":{\"x\":[{\"y\":1}]},\"b\":2}"));
        assert_int_equal(lg.n, 2);
        assert_string_equal(lg.keys[1], "b");
        assert_int_equal(lg.depth[1], 1);

        memset(&lg, 0, sizeof(lg));
        lg.stop = "a";

        ngx_ai_relay_json_walk_keys(&walk, S("{\"a\":1,\"b\":2}"));
        assert_int_equal(lg.n, 1);
    }

    /* the filter */

    log = walk_str("{\"a\":1,\"b\":2,\"aa\":3,\"\":4,\"a\":5}", filter_a,
                   NULL, NULL);
    assert_int_equal(log->n, 2);
    assert_string_equal(log->keys[1], "a");

    assert_true(ngx_ai_relay_json_key_filtered(filter_a, S("a")));
    assert_false(ngx_ai_relay_json_key_filtered(filter_a, S("b")));
    assert_false(ngx_ai_relay_json_key_filtered(filter_a, S("")));

    /* counted text: raw, escaped, a surrogate pair; non-strings go on */

    log = walk_str("{\"t\":\"h\xc3\xa9llo\\u00e9\\ud83d\\ude00\\n\","
                   "\"t\":1,\"u\":\"x\",\"v\":{\"t\":\"\xe6\x97\xa5\"}}",
                   NULL, count_t, counts);
    assert_int_equal(log->n, 3);
    assert_string_equal(log->keys[0], "t");
    assert_string_equal(log->keys[1], "u");
    assert_int_equal(counts[0], 5);
    assert_int_equal(counts[1], 2);
    assert_int_equal(counts[2], 2);
}


typedef struct {
    char                        line[32][40];
    size_t                      n;
} lax_log_t;


static void
lax_log(ngx_ai_relay_json_lax_t *lax, const unsigned char *key,
    size_t key_len, const unsigned char *value,
    const unsigned char *value_end)
{
    char       path[16];
    size_t     i;
    lax_log_t  *log;

    log = lax->data;

    assert_true(log->n < 32);

    for (i = 0; i + 1 < lax->depth && i < sizeof(path) - 1; i++) {
        path[i] = lax->path[i].data ? (char) lax->path[i].data[0] : '[';
    }

    path[i] = '\0';

    snprintf(log->line[log->n++], 40, "%u %s %.*s %.*s", lax->depth, path,
             key ? (int) key_len : 1, key ? (const char *) key : "#",
             (int) (value_end - value), value);
}


static const char *
lax_str(const char *s, unsigned max_depth, unsigned report, lax_log_t *log)
{
    const unsigned char      *e;
    ngx_ai_relay_json_lax_t   lax;

    memset(log, 0, sizeof(lax_log_t));
    memset(&lax, 0, sizeof(lax));

    lax.handler = report ? lax_log : NULL;
    lax.data = log;
    lax.max_depth = max_depth;
    lax.report_depth = report;

    e = ngx_ai_relay_json_walk_value(&lax, (const unsigned char *) s,
                                     (const unsigned char *) s + strlen(s));

    return (const char *) e;
}


static void
test_walk_value(void **state)
{
    const char  *s;
    lax_log_t    log;

    s = "{\"a\":{\"b\":1,\"c\":[1,{\"d\":2}]},\"e\":\"x\"} tail";
    assert_ptr_equal(lax_str(s, 32, 2, &log), s + strlen(s) - 5);

    assert_int_equal(log.n, 4);
    assert_string_equal(log.line[0], "2 a b 1");
    assert_string_equal(log.line[1], "2 a c [1,{\"d\":2}]");
    assert_string_equal(log.line[2], "1  a {\"b\":1,\"c\":[1,{\"d\":2}]}");
    assert_string_equal(log.line[3], "1  e \"x\"");

    /* elements: key NULL */

    s = " [1 , [2],\"x\", {} ]";
    assert_ptr_equal(lax_str(s + 1, 32, 1, &log), s + strlen(s));
    assert_int_equal(log.n, 4);
    assert_string_equal(log.line[1], "1  # [2]");

    /* strings are not checked; numbers, literals and commas are */

    s = "{\"a\":\"\\q\x01\xff\",\"\\u12\":[true,false,null,-0.5e+3]}";
    assert_ptr_equal(lax_str(s, 32, 0, &log), s + strlen(s));

    assert_null(lax_str("{\"a\":01}", 32, 0, &log));
    assert_null(lax_str("{\"a\":1.}", 32, 0, &log));
    assert_null(lax_str("{\"a\":1,}", 32, 0, &log));
    assert_null(lax_str("[1,]", 32, 0, &log));
    assert_null(lax_str("[tru]", 32, 0, &log));
    assert_null(lax_str("{\"a\" 1}", 32, 0, &log));
    assert_null(lax_str("{a:1}", 32, 0, &log));
    assert_null(lax_str("{\"a\":1", 32, 0, &log));
    assert_null(lax_str("\"abc", 32, 0, &log));
    assert_null(lax_str("", 32, 0, &log));

    /* depth: the value at p is the first container */

    assert_non_null(lax_str("[[[1]]]", 3, 0, &log));
    assert_null(lax_str("[[[[1]]]]", 3, 0, &log));
    assert_non_null(lax_str("1", 0, 0, &log));
    assert_null(lax_str("[]", 0, 0, &log));

    /* reports made before the value turned out invalid stay */

    assert_null(lax_str("{\"a\":1,\"b\":}", 32, 1, &log));
    assert_int_equal(log.n, 1);
}


static void
test_lax_helpers(void **state)
{
    int64_t               v;
    uint64_t              counts[3];
    const char           *s;
    const unsigned char  *e;

#define NC(s, max)                                                           \
    ngx_ai_relay_json_number_count((const unsigned char *) s,                \
                                   (const unsigned char *) s + strlen(s),    \
                                   max, &v)

    s = "123,";
    assert_ptr_equal(NC(s, 1000), s + 3);
    assert_int_equal(v, 123);

    s = "0";
    assert_ptr_equal(NC(s, 1000), s + 1);
    assert_int_equal(v, 0);

    s = "01";
    assert_ptr_equal(NC(s, 1000), s + 1);
    assert_int_equal(v, 0);

    s = "1000";
    assert_non_null(NC(s, 1000));
    assert_int_equal(v, 1000);

    s = "1001";
    assert_non_null(NC(s, 1000));
    assert_int_equal(v, -1);

    s = "99999999999999999999999999";
    assert_ptr_equal(NC(s, 1000), s + strlen(s));
    assert_int_equal(v, -1);

    s = "-5";
    assert_ptr_equal(NC(s, 1000), s + 2);
    assert_int_equal(v, -1);

    s = "-0";
    assert_non_null(NC(s, 1000));
    assert_int_equal(v, -1);

    s = "1.9e1}";
    assert_ptr_equal(NC(s, 1000), s + 5);
    assert_int_equal(v, 19);

    s = "1.5";
    assert_non_null(NC(s, 1000));
    assert_int_equal(v, 1);

    s = "2.9999999999999999999";
    assert_non_null(NC(s, 1000));
    assert_int_equal(v, 3);

    s = "1000.5";
    assert_non_null(NC(s, 1000));
    assert_int_equal(v, -1);

    s = "1e400";
    assert_non_null(NC(s, 1000));
    assert_int_equal(v, -1);

    s = "1.000000000000000000000000000000000000000000000000000000000000000";
    assert_non_null(NC(s, 1000));
    assert_int_equal(v, -1);

    assert_null(NC("1.", 1000));
    assert_null(NC("1e", 1000));
    assert_null(NC("-", 1000));
    assert_null(NC(".5", 1000));
    assert_null(NC("x", 1000));
    assert_null(NC("", 1000));

#undef NC

    /* string_end and string_count: p is after the opening quote */

    s = "ab\\\"c\" x";
    e = ngx_ai_relay_json_string_end((const unsigned char *) s,
                                     (const unsigned char *) s + strlen(s));
    assert_ptr_equal(e, s + 5);

    s = "ab\\";
    assert_null(ngx_ai_relay_json_string_end((const unsigned char *) s,
                              (const unsigned char *) s + strlen(s)));

    memset(counts, 0, sizeof(counts));
    s = "a\\uZZ\\u00e9\xc3\xa9\xe6\x97\xa5\\uDE00\" rest";
    e = ngx_ai_relay_json_string_count((const unsigned char *) s,
                                       (const unsigned char *) s + strlen(s),
                                       counts);
    assert_ptr_equal(e, s + strlen(s) - 5);
    assert_int_equal(counts[0], 5);
    assert_int_equal(counts[1], 2);
    assert_int_equal(counts[2], 1);

    s = "abc\\u00";
    e = ngx_ai_relay_json_string_count((const unsigned char *) s,
                                       (const unsigned char *) s + strlen(s),
                                       counts);
    assert_ptr_equal(e, s + strlen(s));
    assert_int_equal(counts[0], 8);
}


static void
test_array_next(void **state)
{
    int                          types[8];
    size_t                       pos, n;
    const char                  *s;
    ngx_ai_relay_json_member_t   arr, el;

    s = " [1 , {\"a\":[2,\"]\"]} ,\"x\",[], true ] ";

    arr.value_start = 1;
    arr.value_end = strlen(s) - 1;
    arr.type = NGX_AI_RELAY_JSON_ARRAY;

    pos = 0;
    n = 0;

    while (ngx_ai_relay_json_array_next((const unsigned char *) s, &arr,
                                        &pos, &el))
    {
        assert_true(n < 8);
        types[n++] = el.type;
    }

    assert_int_equal(n, 5);
    assert_int_equal(types[0], NGX_AI_RELAY_JSON_NUMBER);
    assert_int_equal(types[1], NGX_AI_RELAY_JSON_OBJECT);
    assert_int_equal(types[2], NGX_AI_RELAY_JSON_STRING);
    assert_int_equal(types[3], NGX_AI_RELAY_JSON_ARRAY);
    assert_int_equal(types[4], NGX_AI_RELAY_JSON_TRUE);

    s = "[ ]";
    arr.value_start = 0;
    arr.value_end = 3;
    pos = 0;

    assert_false(ngx_ai_relay_json_array_next((const unsigned char *) s,
                                              &arr, &pos, &el));

    arr.type = NGX_AI_RELAY_JSON_OBJECT;
    pos = 0;

    assert_false(ngx_ai_relay_json_array_next((const unsigned char *) s,
                                              &arr, &pos, &el));
}


static void
test_unescape_prefix(void **state)
{
    size_t          n, len;
    unsigned char   buf[16];

    n = ngx_ai_relay_json_unescape_prefix(S("abc\\u00e9def"), buf, 4, &len);
    assert_int_equal(n, 3);
    assert_int_equal(len, 3);

    n = ngx_ai_relay_json_unescape_prefix(S("abc\\u00e9def"), buf, 5, &len);
    assert_int_equal(n, 9);
    assert_int_equal(len, 5);
    assert_memory_equal(buf, "abc\xc3\xa9", 5);

    n = ngx_ai_relay_json_unescape_prefix(S("abc\\u00e9def"), buf, 16, &len);
    assert_int_equal(n, 12);
    assert_int_equal(len, 8);

    n = ngx_ai_relay_json_unescape_prefix(S("abcdef"), buf, 4, &len);
    assert_int_equal(n, 4);
    assert_memory_equal(buf, "abcd", 4);

    /* an invalid escape stops it */
    n = ngx_ai_relay_json_unescape_prefix(S("a\\qb"), buf, 16, &len);
    assert_int_equal(n, 1);
    assert_int_equal(len, 1);
}


static int
scan_strict(const char *s, unsigned max_depth)
{
    ngx_ai_relay_json_scan_init(&scan, NULL, 0);

    scan.reject_nul = 1;
    scan.reject_overflow = 1;
    scan.value_depth = 1;
    scan.max_depth = max_depth;

    return ngx_ai_relay_json_scan(&scan, (const unsigned char *) s,
                                  strlen(s));
}


static void
test_strict(void **state)
{
    char    buf[512];
    size_t  n;

    /* the options are off by default */

    assert_int_equal(scan_str("{\"a\":\"\\u0000\",\"b\":1e400,"
                              "\"c\":99999999999999999999}"),
                     NGX_AI_RELAY_JSON_OK);

    assert_int_equal(scan_strict("{\"a\":\"\\u0000\"}", 8),
                     NGX_AI_RELAY_JSON_ERR_SYNTAX);
    assert_int_equal(scan_strict("{\"\\u0000\":1}", 8),
                     NGX_AI_RELAY_JSON_ERR_SYNTAX);
    assert_int_equal(scan_strict("{\"a\":\"\\u0001\"}", 8),
                     NGX_AI_RELAY_JSON_OK);

    assert_int_equal(scan_strict("[9223372036854775807,"
                                 "-9223372036854775808,1e308,-1.7e308,"
                                 "1e-400,0.0000000000000000000001]", 8),
                     NGX_AI_RELAY_JSON_ERR_NOT_OBJECT);
    assert_int_equal(scan_strict("[9223372036854775808]", 8),
                     NGX_AI_RELAY_JSON_ERR_RANGE);
    assert_int_equal(scan_strict("[-9223372036854775809]", 8),
                     NGX_AI_RELAY_JSON_ERR_RANGE);
    assert_int_equal(scan_strict("[1e309]", 8), NGX_AI_RELAY_JSON_ERR_RANGE);
    assert_int_equal(scan_strict("[-1.8e308]", 8),
                     NGX_AI_RELAY_JSON_ERR_RANGE);
    assert_int_equal(scan.err_offset, 1);

    /* long numbers: decided on their first 40 digits and exponent */

    n = snprintf(buf, sizeof(buf), "[0.");
    memset(buf + n, '0', 200);
    n += 200;
    n += snprintf(buf + n, sizeof(buf) - n, "19e509]");
    assert_int_equal(scan_strict(buf, 8), NGX_AI_RELAY_JSON_ERR_RANGE);

    buf[n - 6] = '7';
    assert_int_equal(scan_strict(buf, 8), NGX_AI_RELAY_JSON_ERR_NOT_OBJECT);

    n = snprintf(buf, sizeof(buf), "[1");
    memset(buf + n, '0', 309);
    n += 309;
    snprintf(buf + n, sizeof(buf) - n, ".5]");
    assert_int_equal(scan_strict(buf, 8), NGX_AI_RELAY_JSON_ERR_RANGE);

    n = snprintf(buf, sizeof(buf), "[1");
    memset(buf + n, '0', 308);
    n += 308;
    snprintf(buf + n, sizeof(buf) - n, ".5]");
    assert_int_equal(scan_strict(buf, 8), NGX_AI_RELAY_JSON_ERR_NOT_OBJECT);

    /* value_depth: a value inside max_depth containers is too deep */

    assert_int_equal(scan_strict("[[[]]]", 3),
                     NGX_AI_RELAY_JSON_ERR_NOT_OBJECT);
    assert_int_equal(scan_strict("[[[1]]]", 3), NGX_AI_RELAY_JSON_ERR_DEPTH);
    assert_int_equal(scan_strict("{\"a\":{\"b\":{}}}", 3),
                     NGX_AI_RELAY_JSON_OK);
    assert_int_equal(scan_strict("{\"a\":{\"b\":{\"c\":1}}}", 3),
                     NGX_AI_RELAY_JSON_ERR_DEPTH);

    assert_null(jd_check_strict(S("{\"a\":[1e400]}")));
    assert_null(jd_check_strict(S("{\"a\":\"\\u0000\"}")));
}

static void
test_differential(void **state)
{
    size_t       i, iterations, ok, ok_edits;
    gen_buf_t    b;
    const char  *msg;

    b.p = NULL;
    b.len = 0;
    b.size = 0;

    iterations = 200000;
    ok = 0;
    ok_edits = 0;

    for (i = 0; i < iterations; i++) {
        b.len = 0;

        if (gen_rand(5)) {
            /* an object at the top, mostly */
            gen_put(&b, "{", 1);
            gen_string(&b, 1);
            gen_put(&b, ":", 1);
            gen_value(&b, 1);

            while (gen_rand(2)) {
                gen_put(&b, ",", 1);
                gen_string(&b, 1);
                gen_put(&b, ":", 1);
                gen_value(&b, 1);
            }

            gen_put(&b, "}", 1);

        } else {
            gen_value(&b, 0);
        }

        if (gen_rand(3) == 0) {
            gen_mutate(&b);
        }

        msg = jd_check((unsigned char *) b.p, b.len);

        if (msg == NULL) {
            msg = jd_check_edits((unsigned char *) b.p, b.len);
        }

        if (msg == NULL) {
            msg = jd_check_strict((unsigned char *) b.p, b.len);
        }

        if (msg == NULL) {
            msg = jd_check_lax((unsigned char *) b.p, b.len);
        }

        if (msg != NULL) {
            print_error("iteration %zu: %s: \"%.*s\"\n", i, msg,
                        (int) b.len, b.p);

            if (getenv("DIFF_DUMP") != NULL) {
                FILE  *f;

                f = fopen(getenv("DIFF_DUMP"), "w");
                if (f != NULL) {
                    fwrite(b.p, 1, b.len, f);
                    fclose(f);
                }
            }
            fail();
        }

        if (scan_buf(b.p, b.len) == NGX_AI_RELAY_JSON_OK) {
            ok++;

            if (ngx_ai_relay_json_find(&scan, (unsigned char *) b.p,
                                       N("stream_options"))
                != NULL)
            {
                ok_edits++;
            }
        }
    }

    print_message("differential: %zu documents, %zu valid objects, %zu with "
                  "stream_options, %zu not comparable\n", iterations, ok,
                  ok_edits, jd_skipped);

    assert_true(ok > iterations / 10);
    assert_true(ok < iterations - iterations / 10);

    free(b.p);
}


static void
test_whole(void **state)
{
    int64_t  n;

#define WHOLE(s)  ngx_ai_relay_json_whole((const unsigned char *) (s),       \
                                          strlen(s), &n)

    assert_int_equal(WHOLE("8"), 0);
    assert_int_equal(n, 8);
    assert_int_equal(WHOLE("8.0"), 0);
    assert_int_equal(n, 8);
    assert_int_equal(WHOLE("7.5"), 0);
    assert_int_equal(n, 8);
    assert_int_equal(WHOLE("0.01"), 0);
    assert_int_equal(n, 1);
    assert_int_equal(WHOLE("0"), 0);
    assert_int_equal(n, 0);
    assert_int_equal(WHOLE("99999999999999999999999"), 0);
    assert_int_equal(n, NGX_AI_RELAY_JSON_WHOLE_MAX);

    assert_int_equal(WHOLE(""), -1);
    assert_int_equal(WHOLE("-1"), -1);
    assert_int_equal(WHOLE("1e3"), -1);
    assert_int_equal(WHOLE(".5"), -1);
    assert_int_equal(WHOLE("8 "), -1);
    assert_int_equal(WHOLE("8s"), -1);

#undef WHOLE
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_basic),
        cmocka_unit_test(test_empty_and_whitespace),
        cmocka_unit_test(test_not_object),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_strerror),
        cmocka_unit_test(test_duplicates),
        cmocka_unit_test(test_escaped_keys),
        cmocka_unit_test(test_surrogates_and_utf8),
        cmocka_unit_test(test_counts),
        cmocka_unit_test(test_depth),
        cmocka_unit_test(test_members_limit),
        cmocka_unit_test(test_getters),
        cmocka_unit_test(test_object_find),
        cmocka_unit_test(test_quote_unescape),
        cmocka_unit_test(test_splice),
        cmocka_unit_test(test_edit_member),
        cmocka_unit_test(test_include_usage),
        cmocka_unit_test(test_big_body),
        cmocka_unit_test(test_walk_keys),
        cmocka_unit_test(test_walk_value),
        cmocka_unit_test(test_lax_helpers),
        cmocka_unit_test(test_array_next),
        cmocka_unit_test(test_unescape_prefix),
        cmocka_unit_test(test_strict),
        cmocka_unit_test(test_differential),
        cmocka_unit_test(test_whole),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
