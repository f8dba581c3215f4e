
/*
 * Copyright (C) ngx_ai_relay authors
 */


#ifndef _NGX_AI_RELAY_JSON_SCAN_DIFF_H_INCLUDED_
#define _NGX_AI_RELAY_JSON_SCAN_DIFF_H_INCLUDED_


/*
 * Differential checks of ngx_ai_relay_json_scan() against jansson, shared
 * by t/unit/test_json_scan.c and fuzz/fuzz_json_scan.c.  Each check returns
 * NULL when both agree, or a static description of the disagreement.
 *
 * jansson 2.14 is run with JSON_DECODE_ANY | JSON_ALLOW_NUL.  Known and
 * accounted differences:
 *   - jansson rejects numbers that overflow json_int_t or double
 *     (json_error_numeric_overflow); RFC 8259 allows them and so do we;
 *   - jansson rejects "\u0000" in object keys even with JSON_ALLOW_NUL
 *     (json_error_null_byte_in_key); we accept it;
 *     jansson stops at either error, so such documents are not compared
 *     (jd_skipped counts them);
 *   - jansson loses a NUL byte that directly follows a number (its
 *     stream unget treats NUL as "buffer empty"), so it accepts "21\0" and
 *     "[1\0]"; we reject them at the NUL, and that case is skipped too;
 *   - without JSON_REJECT_DUPLICATES jansson accepts duplicate keys (the
 *     last wins); we reject duplicate top-level keys only, and only in an
 *     otherwise valid document, so ERR_DUPLICATE counts as valid JSON;
 *   - a non-object top level is valid for jansson (JSON_DECODE_ANY) and a
 *     policy error for us (ERR_NOT_OBJECT, also counted as valid JSON);
 *   - jansson allows 2048 levels of nesting (JSON_PARSER_MAX_DEPTH); the
 *     checks set max_depth to 2048 so that both agree;
 *   - string counts are compared only when the document has no duplicate
 *     keys at any depth (jansson keeps one of them).
 */


#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ngx_ai_relay_json_scan.h"


#define JD_MEMBERS  4096
#define JD_FLAGS    (JSON_DECODE_ANY | JSON_ALLOW_NUL)


static ngx_ai_relay_json_member_t  jd_members[JD_MEMBERS];
static ngx_ai_relay_json_member_t  jd_members2[JD_MEMBERS];
static size_t                      jd_skipped;


static int
jd_tolerated(const json_error_t *err)
{
    return json_error_code(err) == json_error_numeric_overflow
           || json_error_code(err) == json_error_null_byte_in_key;
}


static void
jd_count(const json_t *v, uint64_t *ascii, uint64_t *non_ascii)
{
    size_t       i, len;
    json_t      *e;
    const char  *k, *s;

    switch (json_typeof(v)) {

    case JSON_STRING:
        s = json_string_value(v);
        len = json_string_length(v);

        for (i = 0; i < len; i++) {
            if ((unsigned char) s[i] < 0x80) {
                (*ascii)++;

            } else if (((unsigned char) s[i] & 0xc0) != 0x80) {
                (*non_ascii)++;
            }
        }

        break;

    case JSON_OBJECT:
        json_object_foreach((json_t *) v, k, e) {
            (void) k;
            jd_count(e, ascii, non_ascii);
        }

        break;

    case JSON_ARRAY:
        json_array_foreach(v, i, e) {
            jd_count(e, ascii, non_ascii);
        }

        break;

    default:
        break;
    }
}


static int
jd_type(const json_t *v)
{
    switch (json_typeof(v)) {

    case JSON_OBJECT:
        return NGX_AI_RELAY_JSON_OBJECT;

    case JSON_ARRAY:
        return NGX_AI_RELAY_JSON_ARRAY;

    case JSON_STRING:
        return NGX_AI_RELAY_JSON_STRING;

    case JSON_INTEGER:
    case JSON_REAL:
        return NGX_AI_RELAY_JSON_NUMBER;

    case JSON_TRUE:
        return NGX_AI_RELAY_JSON_TRUE;

    case JSON_FALSE:
        return NGX_AI_RELAY_JSON_FALSE;

    default:
        return NGX_AI_RELAY_JSON_NULL;
    }
}


static const char *
jd_check_members(const unsigned char *buf, ngx_ai_relay_json_scan_t *scan,
    json_t *root, int counts)
{
    int                          rc;
    size_t                       i, klen, vlen;
    int64_t                      iv;
    json_t                      *v, *span;
    uint64_t                     a, n;
    unsigned char               *key, *val;
    json_error_t                 err;
    ngx_ai_relay_json_member_t  *m;

    for (i = 0; i < scan->nmembers; i++) {
        m = &scan->members[i];

        if (buf[m->key_start - 1] != '"' || buf[m->key_end] != '"') {
            return "key span not between quotes";
        }

        key = malloc(m->key_end - m->key_start + 1);

        if (ngx_ai_relay_json_unescape(buf + m->key_start,
                                       m->key_end - m->key_start,
                                       key, m->key_end - m->key_start, &klen)
            != 0)
        {
            free(key);
            return "cannot unescape a key";
        }

        v = json_object_getn(root, (char *) key, klen);

        if (v == NULL) {
            free(key);
            return "member missing in jansson's object";
        }

        if (ngx_ai_relay_json_find(scan, buf, (char *) key, klen) != m) {
            free(key);
            return "find() does not return the member";
        }

        free(key);

        if (jd_type(v) != (int) m->type) {
            return "member type differs";
        }

        span = json_loadb((const char *) buf + m->value_start,
                          m->value_end - m->value_start, JD_FLAGS, &err);

        if (span == NULL) {
            if (!jd_tolerated(&err)) {
                return "value span is not a JSON value";
            }

        } else {
            if (!json_equal(span, v)) {
                json_decref(span);
                return "value span differs from jansson's value";
            }

            json_decref(span);
        }

        if (json_is_string(v)) {
            vlen = m->value_end - m->value_start;
            val = malloc(vlen + 1);

            if (ngx_ai_relay_json_member_string(buf, m, val, vlen, &vlen)
                != NGX_AI_RELAY_JSON_GET_OK
                || vlen != json_string_length(v)
                || memcmp(val, json_string_value(v), vlen) != 0)
            {
                free(val);
                return "string value differs";
            }

            free(val);
        }

        if (json_is_integer(v)) {
            rc = ngx_ai_relay_json_member_int(buf, m, &iv);

            if (rc != NGX_AI_RELAY_JSON_GET_OK
                || iv != (int64_t) json_integer_value(v))
            {
                return "integer value differs";
            }
        }

        if (counts) {
            a = 0;
            n = 0;
            jd_count(v, &a, &n);

            if (a != m->str_ascii || n != m->str_non_ascii) {
                return "member string counts differ";
            }
        }
    }

    return NULL;
}


static const char *
jd_check(const unsigned char *buf, size_t len)
{
    int                        ours, theirs, counts;
    uint64_t                   a, n;
    json_t                    *root, *strict;
    const char                *msg;
    json_error_t               err;
    ngx_ai_relay_json_scan_t   scan;

    ngx_ai_relay_json_scan_init(&scan, jd_members, JD_MEMBERS);
    scan.max_depth = 2048;

    ngx_ai_relay_json_scan(&scan, buf, len);

    if (scan.rc == NGX_AI_RELAY_JSON_ERR_MEMBERS) {
        return NULL;
    }

    root = json_loadb((const char *) buf, len, JD_FLAGS, &err);

    if (root == NULL && jd_tolerated(&err)) {
        /* jansson gave up early: nothing to compare */
        jd_skipped++;
        return NULL;
    }

    ours = (scan.rc == NGX_AI_RELAY_JSON_OK
            || scan.rc == NGX_AI_RELAY_JSON_ERR_NOT_OBJECT
            || scan.rc == NGX_AI_RELAY_JSON_ERR_DUPLICATE);

    theirs = (root != NULL);

    if (!ours && theirs && scan.err_offset < len
        && buf[scan.err_offset] == '\0')
    {
        jd_skipped++;
        json_decref(root);
        return NULL;
    }

    if (ours != theirs) {
        json_decref(root);
        return ours ? "accepted by us, rejected by jansson"
                    : "rejected by us, accepted by jansson";
    }

    if (!ours) {
        return (scan.err_offset <= len && scan.err != NULL)
               ? NULL : "bad error offset";
    }

    msg = NULL;

    strict = json_loadb((const char *) buf, len,
                        JD_FLAGS | JSON_REJECT_DUPLICATES, &err);
    counts = (strict != NULL);
    json_decref(strict);

    if (counts) {
        a = 0;
        n = 0;
        jd_count(root, &a, &n);

        if (a != scan.str_ascii || n != scan.str_non_ascii) {
            msg = "document string counts differ";
            goto done;
        }
    }

    switch (scan.rc) {

    case NGX_AI_RELAY_JSON_ERR_NOT_OBJECT:
        if (json_is_object(root)) {
            msg = "NOT_OBJECT for an object";
        }

        break;

    case NGX_AI_RELAY_JSON_ERR_DUPLICATE:
        if (!json_is_object(root) || json_object_size(root) >= scan.nmembers)
        {
            msg = "DUPLICATE without a duplicate";
        }

        break;

    default:
        if (!json_is_object(root)
            || json_object_size(root) != scan.nmembers)
        {
            msg = "member count differs";
            break;
        }

        if (buf[scan.obj_start] != '{' || buf[scan.obj_end] != '}') {
            msg = "object span wrong";
            break;
        }

        msg = jd_check_members(buf, &scan, root, counts);
    }

done:

    json_decref(root);

    return msg;
}


/*
 * The strict options (reject_nul, reject_overflow, value_depth with
 * max_depth 2048) against jansson's defaults (JSON_DECODE_ANY only, so
 * "\u0000" and numeric overflow are errors): both must accept the same
 * documents, but for jansson's NUL after a number (see above).
 */

static const char *
jd_check_strict(const unsigned char *buf, size_t len)
{
    int                        ours, theirs;
    json_t                    *root;
    json_error_t               err;
    ngx_ai_relay_json_scan_t   scan;

    ngx_ai_relay_json_scan_init(&scan, NULL, 0);
    scan.max_depth = 2048;
    scan.reject_nul = 1;
    scan.reject_overflow = 1;
    scan.value_depth = 1;

    ngx_ai_relay_json_scan(&scan, buf, len);

    root = json_loadb((const char *) buf, len, JSON_DECODE_ANY, &err);

    ours = (scan.rc == NGX_AI_RELAY_JSON_OK
            || scan.rc == NGX_AI_RELAY_JSON_ERR_NOT_OBJECT);
    theirs = (root != NULL);

    json_decref(root);

    if (!ours && theirs && scan.err_offset < len
        && buf[scan.err_offset] == '\0')
    {
        jd_skipped++;
        return NULL;
    }

    if (ours != theirs) {
        return ours ? "strict: accepted by us, rejected by jansson"
                    : "strict: rejected by us, accepted by jansson";
    }

    return NULL;
}


/*
 * Rewrites model and adds include_usage, then checks that the result
 * is valid, carries both, and keeps every other member equal.
 */

static const char *
jd_check_edits(const unsigned char *buf, size_t len)
{
    int                         usage, bool_value;
    size_t                      npieces, out_len, slen, expect;
    json_t                     *orig, *res, *v;
    const char                 *k, *msg;
    unsigned char              *out, quoted[64], scratch[64], str[64];
    json_error_t                err;
    ngx_ai_relay_json_edit_t    edits[2];
    ngx_ai_relay_json_piece_t   pieces[5];
    ngx_ai_relay_json_member_t  iu;
    ngx_ai_relay_json_scan_t    scan, scan2;

    static const unsigned char  model[] = "new-m\xc3\xb6" "del\"x";

    ngx_ai_relay_json_scan_init(&scan, jd_members, JD_MEMBERS);
    scan.max_depth = 2048;

    if (ngx_ai_relay_json_scan(&scan, buf, len) != NGX_AI_RELAY_JSON_OK) {
        return NULL;
    }

    orig = json_loadb((const char *) buf, len, JD_FLAGS, &err);
    if (orig == NULL) {
        return NULL;
    }

    expect = json_object_size(orig);

    slen = ngx_ai_relay_json_quote(quoted, model, sizeof(model) - 1)
           - quoted;

    if (slen != ngx_ai_relay_json_quote_len(model, sizeof(model) - 1)) {
        json_decref(orig);
        return "quote_len differs from quote";
    }

    if (ngx_ai_relay_json_find(&scan, buf, "model", 5) == NULL) {
        expect++;
    }

    if (ngx_ai_relay_json_edit_member(&scan, buf, "model", 5, quoted, slen,
                                      scratch, sizeof(scratch), &edits[0])
        != 0)
    {
        json_decref(orig);
        return "edit_member failed";
    }

    usage = ngx_ai_relay_json_edit_include_usage(&scan, buf, &edits[1]);

    if (usage == NGX_AI_RELAY_JSON_USAGE_ADD_OPTIONS) {
        expect++;
    }

    if (ngx_ai_relay_json_splice(buf, len, edits,
                                 (usage == NGX_AI_RELAY_JSON_USAGE_PRESENT
                                  || usage == NGX_AI_RELAY_JSON_USAGE_CONFLICT)
                                 ? 1 : 2,
                                 pieces, 5, &npieces, &out_len)
        != 0)
    {
        json_decref(orig);
        return "splice failed";
    }

    out = malloc(out_len + 1);

    if ((size_t) (ngx_ai_relay_json_pieces_copy(out, pieces, npieces) - out)
        != out_len)
    {
        msg = "pieces_copy length differs";
        goto failed;
    }

    ngx_ai_relay_json_scan_init(&scan2, jd_members2, JD_MEMBERS);
    scan2.max_depth = 2048;

    if (ngx_ai_relay_json_scan(&scan2, out, out_len) != NGX_AI_RELAY_JSON_OK) {
        msg = "edited body does not scan";
        goto failed;
    }

    if (ngx_ai_relay_json_get_string(&scan2, out, "model", 5, str,
                                     sizeof(str), &slen)
        != NGX_AI_RELAY_JSON_GET_OK
        || slen != sizeof(model) - 1
        || memcmp(str, model, slen) != 0)
    {
        msg = "model not rewritten";
        goto failed;
    }

    if (usage != NGX_AI_RELAY_JSON_USAGE_CONFLICT) {
        if (!ngx_ai_relay_json_object_find(out,
                 ngx_ai_relay_json_find(&scan2, out, "stream_options", 14),
                 "include_usage", 13, &iu)
            || ngx_ai_relay_json_member_bool(&iu, &bool_value)
               != NGX_AI_RELAY_JSON_GET_OK
            || !bool_value)
        {
            msg = "include_usage not true";
            goto failed;
        }

    } else {
        if (ngx_ai_relay_json_find(&scan2, out, "stream_options", 14) == NULL) {
            msg = "CONFLICT without stream_options";
            goto failed;
        }
    }

    res = json_loadb((const char *) out, out_len, JD_FLAGS, &err);
    if (res == NULL) {
        msg = "jansson rejects the edited body";
        goto failed;
    }

    msg = NULL;

    if (json_object_size(res) != expect) {
        msg = "edited body has a wrong member count";
    }

    json_object_foreach(orig, k, v) {
        if (msg != NULL) {
            break;
        }

        if (strcmp(k, "model") == 0 || strcmp(k, "stream_options") == 0) {
            continue;
        }

        if (!json_equal(v, json_object_get(res, k))) {
            msg = "a member changed";
        }
    }

    json_decref(res);

failed:

    free(out);
    json_decref(orig);

    return msg;
}


/*
 * The lenient walk (walk_keys, walk_value) on any text: inside it, and
 * accepting whatever the strict scanner accepts, at the same end; with
 * and without a filter, and counting text in the walk or in the
 * handler, the same text.
 */

typedef struct {
    size_t                      keys;
    uint64_t                    counts[3];
    const unsigned char        *start;
    const unsigned char        *end;
} jd_lax_stats_t;


static const unsigned char *
jd_lax_key(ngx_ai_relay_json_walk_t *walk, const unsigned char *key,
    size_t key_len, const unsigned char *value)
{
    jd_lax_stats_t  *st;

    st = walk->data;

    if (key < st->start || key + key_len >= value || value >= walk->end) {
        return NULL;
    }

    st->keys++;

    if (key_len == 1 && key[0] == 'a' && *value == '"') {
        return ngx_ai_relay_json_string_count(value + 1, walk->end,
                                              st->counts);
    }

    return value;
}


static const char *
jd_check_lax(const unsigned char *buf, size_t len)
{
    size_t                     i;
    const unsigned char       *e, *end;
    ngx_ai_relay_json_lax_t    lax;
    ngx_ai_relay_json_walk_t   walk;
    ngx_ai_relay_json_scan_t   sc;
    jd_lax_stats_t                a, b;

    static const uint64_t  all[5] = {
        ~(uint64_t) 0, ~(uint64_t) 0, ~(uint64_t) 0, ~(uint64_t) 0,
        ~(uint64_t) 0
    };

    static const ngx_ai_relay_json_span_t  count_a[] = {
        { (const unsigned char *) "a", 1 },
        { NULL, 0 }
    };

    end = buf + len;

    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    a.start = buf;
    b.start = buf;

    memset(&walk, 0, sizeof(walk));
    walk.handler = jd_lax_key;
    walk.data = &a;
    ngx_ai_relay_json_walk_keys(&walk, buf, len);

    memset(&walk, 0, sizeof(walk));
    walk.handler = jd_lax_key;
    walk.data = &b;
    walk.filter = all;
    walk.count = count_a;
    ngx_ai_relay_json_walk_keys(&walk, buf, len);

    b.counts[0] += walk.counts[0];
    b.counts[1] += walk.counts[1];
    b.counts[2] += walk.counts[2];

    if (a.keys < b.keys) {
        return "lax: more keys through the filter than without";
    }

    if (memcmp(a.counts, b.counts, sizeof(a.counts)) != 0) {
        return "lax: counts differ in the walk and in the handler";
    }

    memset(&lax, 0, sizeof(lax));
    lax.max_depth = NGX_AI_RELAY_JSON_LAX_DEPTH;

    i = 0;

    while (i < len && (buf[i] == ' ' || buf[i] == '\t' || buf[i] == '\n'
                       || buf[i] == '\r'))
    {
        i++;
    }

    e = ngx_ai_relay_json_walk_value(&lax, buf + i, end);

    if (e != NULL && (e < buf + i || e > end)) {
        return "lax: walk_value outside the text";
    }

    ngx_ai_relay_json_scan_init(&sc, NULL, 0);
    sc.max_depth = NGX_AI_RELAY_JSON_LAX_DEPTH;

    ngx_ai_relay_json_scan(&sc, buf, len);

    if (sc.rc == NGX_AI_RELAY_JSON_OK
        || sc.rc == NGX_AI_RELAY_JSON_ERR_NOT_OBJECT)
    {
        if (e == NULL) {
            return "lax: walk_value rejects valid JSON";
        }

        while (e < end && (*e == ' ' || *e == '\t' || *e == '\n'
                           || *e == '\r'))
        {
            e++;
        }

        if (e != end) {
            return "lax: walk_value ends valid JSON elsewhere";
        }
    }

    return NULL;
}


#endif /* _NGX_AI_RELAY_JSON_SCAN_DIFF_H_INCLUDED_ */
