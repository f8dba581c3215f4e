
/*
 * Copyright (C) ngx_ai_relay authors
 *
 * A key in the query string (Gemini clients send ?key=) out of the lines
 * nginx itself writes.  The relay masks such a key in place once it has
 * copied it (handler.c), but nginx may reject a request before the relay
 * runs (413 by Content-Length, 400) and log its request line first.  So
 * every request of an http{} block with relay locations gets a masked
 * copy of its request line as soon as its headers are read (POST_READ),
 * and again, for requests nginx rejected while reading them, first thing
 * in the LOG phase: error.log's "request:" and $request show
 * "key=AIzaS*****wxyz".  $args and $request_uri keep what the client sent
 * on locations that are not relays (their upstreams may need it).
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_ai_relay_logsafe.h"
#include "ngx_ai_relay_key.h"


/* POST_READ, and first in the LOG phase: a masked copy of the line */

ngx_int_t
ngx_ai_relay_logsafe_handler(ngx_http_request_t *r)
{
    u_char      *p, *q, *last, *copy, *end;
    ngx_uint_t   changed;

    if (r->request_line.len == 0) {
        return NGX_DECLINED;
    }

    p = r->request_line.data;
    last = p + r->request_line.len;

    q = ngx_strlchr(p, last, '?');
    if (q == NULL) {
        return NGX_DECLINED;
    }

    copy = NULL;
    changed = 0;

    for (p = q + 1; p < last; p = end + 1) {

        end = p;
        while (end < last && *end != '&' && *end != ' ') {
            end++;
        }

        if (end - p > 4 && ngx_strncmp(p, "key=", 4) == 0) {

            if (copy == NULL) {
                copy = ngx_pnalloc(r->pool, r->request_line.len);
                if (copy == NULL) {
                    return NGX_DECLINED;
                }

                ngx_memcpy(copy, r->request_line.data, r->request_line.len);
            }

            changed |= ngx_ai_relay_key_blank(
                           copy + (p + 4 - r->request_line.data), end - p - 4);
        }

        if (end == last || *end == ' ') {
            break;
        }
    }

    if (changed) {
        r->request_line.data = copy;
    }

    return NGX_DECLINED;
}
