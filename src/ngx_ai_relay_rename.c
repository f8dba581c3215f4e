
/*
 * Copyright (C) ngx_ai_relay authors
 *
 * A JSON string token ends at an unescaped quote; a string followed by
 * ':' is a member's name.  That is all this needs to know of JSON to
 * find the answer's "model" without taking a quoted "model" inside a
 * text for one.
 */


#include <string.h>

#include "ngx_ai_relay_rename.h"


/* the index after the string starting at p[i] (a quote), or 0 if cut */

static size_t
ngx_ai_relay_rename_string(const unsigned char *p, size_t len, size_t i)
{
    for (i++; i < len; i++) {
        if (p[i] == '\\') {
            i++;

        } else if (p[i] == '"') {
            return i + 1;
        }
    }

    return 0;
}


static size_t
ngx_ai_relay_rename_ws(const unsigned char *p, size_t len, size_t i)
{
    while (i < len
           && (p[i] == ' ' || p[i] == '\t' || p[i] == '\r' || p[i] == '\n'))
    {
        i++;
    }

    return i;
}


int
ngx_ai_relay_rename_find(const unsigned char *p, size_t len, size_t *start,
    size_t *end)
{
    size_t  i, j, k, v;

    i = 0;

    while (i < len) {

        if (p[i] != '"') {
            i++;
            continue;
        }

        j = ngx_ai_relay_rename_string(p, len, i);
        if (j == 0) {
            return 0;
        }

        k = ngx_ai_relay_rename_ws(p, len, j);

        if (k < len && p[k] == ':' && j - i == sizeof("\"model\"") - 1
            && memcmp(p + i, "\"model\"", j - i) == 0)
        {
            k = ngx_ai_relay_rename_ws(p, len, k + 1);

            if (k < len && p[k] == '"') {
                v = ngx_ai_relay_rename_string(p, len, k);
                if (v == 0) {
                    return 0;
                }

                *start = k;
                *end = v;
                return 1;
            }
        }

        i = j;
    }

    return 0;
}
