
/*
 * Copyright (C) ngx_ai_relay authors
 *
 * multipart/form-data, incrementally: a state machine over the bytes as
 * they come, which keeps offsets and the values of small fields only.
 * A file part's bytes are looked at once, for the boundary, and stay
 * where nginx put them.
 */


#include <string.h>

#include "ngx_ai_relay_multipart.h"


enum {
    NGX_AI_RELAY_MP_PREAMBLE = 0,
    NGX_AI_RELAY_MP_AFTER,          /* a delimiter: "--" or CRLF next */
    NGX_AI_RELAY_MP_AFTER_DASH,
    NGX_AI_RELAY_MP_AFTER_CR,
    NGX_AI_RELAY_MP_HEADERS,
    NGX_AI_RELAY_MP_CONTENT,
    NGX_AI_RELAY_MP_END
};


static int ngx_ai_relay_mp_headers(ngx_ai_relay_mp_t *mp);
static size_t ngx_ai_relay_mp_param1(const unsigned char *p,
    const unsigned char *last, const char *name, unsigned char *out,
    size_t size, int *found, const unsigned char **next);
static size_t ngx_ai_relay_mp_param(const unsigned char *p,
    const unsigned char *last, const char *name, unsigned char *out,
    size_t size, int *found);


static int
ngx_ai_relay_mp_lower(int c)
{
    return (c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : c;
}


static int
ngx_ai_relay_mp_strncaseeq(const unsigned char *a, const char *b, size_t n)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        if (ngx_ai_relay_mp_lower(a[i]) != (unsigned char) b[i]) {
            return 0;
        }
    }

    return 1;
}


int
ngx_ai_relay_mp_init(ngx_ai_relay_mp_t *mp, const unsigned char *ct,
    size_t len)
{
    int            found;
    size_t         n;
    unsigned char  b[NGX_AI_RELAY_MP_BOUNDARY_LEN + 1];

    memset(mp, 0, sizeof(ngx_ai_relay_mp_t));

    if (len < 19 || !ngx_ai_relay_mp_strncaseeq(ct, "multipart/form-data",
                                                 19))
    {
        return -1;
    }

    n = ngx_ai_relay_mp_param(ct + 19, ct + len, "boundary", b, sizeof(b),
                              &found);

    if (found != 1 || n == 0 || n > NGX_AI_RELAY_MP_BOUNDARY_LEN) {
        return -1;
    }

    memcpy(mp->delim, "\r\n--", 4);
    memcpy(mp->delim + 4, b, n);
    mp->delim_len = 4 + n;

    /* the first delimiter may start the body: as if a CRLF came before */

    mp->state = NGX_AI_RELAY_MP_PREAMBLE;
    mp->matched = 2;

    return 0;
}


int
ngx_ai_relay_mp_feed(ngx_ai_relay_mp_t *mp, const unsigned char *p,
    size_t len)
{
    unsigned char            c;
    const unsigned char     *last, *cr;
    ngx_ai_relay_mp_part_t  *part;

    if (mp->error) {
        return NGX_AI_RELAY_MP_ERROR;
    }

    last = p + len;

    while (p < last) {

        switch (mp->state) {

        case NGX_AI_RELAY_MP_PREAMBLE:
        case NGX_AI_RELAY_MP_CONTENT:

            part = (mp->state == NGX_AI_RELAY_MP_CONTENT)
                   ? &mp->parts[mp->nparts - 1] : NULL;

            if (mp->matched == 0) {

                /* the delimiter starts with the only CR it has: skip */

                cr = memchr(p, '\r', last - p);
                if (cr == NULL) {
                    cr = last;
                }

                if (part && mp->captured < NGX_AI_RELAY_MP_VALUE_LEN) {
                    size_t  n = (size_t) (cr - p);

                    if (n > NGX_AI_RELAY_MP_VALUE_LEN - mp->captured) {
                        n = NGX_AI_RELAY_MP_VALUE_LEN - mp->captured;
                    }

                    memcpy(part->value + mp->captured, p, n);
                    mp->captured += n;
                }

                mp->offset += cr - p;
                p = cr;

                if (p == last) {
                    break;
                }
            }

            c = *p++;
            mp->offset++;

            if (part && mp->captured < NGX_AI_RELAY_MP_VALUE_LEN) {
                part->value[mp->captured++] = c;
            }

            if (c == mp->delim[mp->matched]) {
                mp->matched++;

            } else {
                mp->matched = (c == '\r') ? 1 : 0;
                break;
            }

            if (mp->matched < mp->delim_len) {
                break;
            }

            /* a whole delimiter: the value before it ends */

            if (part) {
                part->end = mp->offset - mp->delim_len;
                part->kept = !part->file
                             && part->end - part->start
                                <= NGX_AI_RELAY_MP_VALUE_LEN;

                if (!part->file) {
                    mp->text_bytes += part->end - part->start;
                }
            }

            mp->matched = 0;
            mp->state = NGX_AI_RELAY_MP_AFTER;
            break;

        case NGX_AI_RELAY_MP_AFTER:
            c = *p++;
            mp->offset++;

            if (c == '-') {
                mp->state = NGX_AI_RELAY_MP_AFTER_DASH;

            } else if (c == '\r') {
                mp->state = NGX_AI_RELAY_MP_AFTER_CR;

            } else if (c != ' ' && c != '\t') {
                mp->error = "bad delimiter line";
                return NGX_AI_RELAY_MP_ERROR;
            }

            break;

        case NGX_AI_RELAY_MP_AFTER_DASH:
            c = *p++;
            mp->offset++;

            if (c != '-') {
                mp->error = "bad delimiter line";
                return NGX_AI_RELAY_MP_ERROR;
            }

            mp->state = NGX_AI_RELAY_MP_END;
            break;

        case NGX_AI_RELAY_MP_AFTER_CR:
            c = *p++;
            mp->offset++;

            if (c != '\n') {
                mp->error = "bad delimiter line";
                return NGX_AI_RELAY_MP_ERROR;
            }

            mp->headers_len = 0;
            mp->state = NGX_AI_RELAY_MP_HEADERS;
            break;

        case NGX_AI_RELAY_MP_HEADERS:
            c = *p++;
            mp->offset++;

            if (mp->headers_len == NGX_AI_RELAY_MP_HEADERS_LEN) {
                mp->error = "part headers too long";
                return NGX_AI_RELAY_MP_ERROR;
            }

            mp->headers[mp->headers_len++] = c;

            /* the part's headers end with an empty line */

            if (c != '\n'
                || !((mp->headers_len == 2 && mp->headers[0] == '\r')
                     || (mp->headers_len >= 4
                         && memcmp(mp->headers + mp->headers_len - 4,
                                   "\r\n\r\n", 4) == 0)))
            {
                break;
            }

            if (ngx_ai_relay_mp_headers(mp) != 0) {
                return NGX_AI_RELAY_MP_ERROR;
            }

            mp->captured = 0;
            mp->matched = 0;
            mp->state = NGX_AI_RELAY_MP_CONTENT;
            break;

        default: /* NGX_AI_RELAY_MP_END: the epilogue is ignored */
            mp->offset += last - p;
            p = last;
        }
    }

    return NGX_AI_RELAY_MP_OK;
}


int
ngx_ai_relay_mp_finish(ngx_ai_relay_mp_t *mp)
{
    if (mp->error) {
        return NGX_AI_RELAY_MP_ERROR;
    }

    if (mp->state != NGX_AI_RELAY_MP_END) {
        mp->error = "the closing boundary is missing";
        return NGX_AI_RELAY_MP_ERROR;
    }

    return NGX_AI_RELAY_MP_OK;
}


ngx_ai_relay_mp_part_t *
ngx_ai_relay_mp_find(ngx_ai_relay_mp_t *mp, const char *name)
{
    size_t   len;
    unsigned i;

    len = strlen(name);

    for (i = 0; i < mp->nparts; i++) {
        if (mp->parts[i].name_len == len
            && memcmp(mp->parts[i].name, name, len) == 0)
        {
            return &mp->parts[i];
        }
    }

    return NULL;
}


unsigned
ngx_ai_relay_mp_count(ngx_ai_relay_mp_t *mp, const char *name)
{
    size_t    len;
    unsigned  i, n;

    len = strlen(name);
    n = 0;

    for (i = 0; i < mp->nparts; i++) {
        if (mp->parts[i].name_len == len
            && memcmp(mp->parts[i].name, name, len) == 0)
        {
            n++;
        }
    }

    return n;
}


/* a part's headers: Content-Disposition: form-data; name=".."[; filename] */

static int
ngx_ai_relay_mp_headers(ngx_ai_relay_mp_t *mp)
{
    int                      found, file, cd;
    size_t                   n;
    const unsigned char     *p, *last, *eol;
    ngx_ai_relay_mp_part_t  *part;

    if (mp->nparts == NGX_AI_RELAY_MP_MAX_PARTS) {
        mp->error = "too many parts";
        return -1;
    }

    part = &mp->parts[mp->nparts];
    memset(part, 0, sizeof(ngx_ai_relay_mp_part_t));

    last = mp->headers + mp->headers_len;
    found = 0;
    cd = 0;

    for (p = mp->headers; p < last; p = eol + 1) {
        eol = memchr(p, '\n', last - p);
        if (eol == NULL) {
            break;
        }

        if (eol - p < 20
            || !ngx_ai_relay_mp_strncaseeq(p, "content-disposition:", 20))
        {
            continue;
        }

        /* readers differ on which of two counts: none does here */

        if (cd++) {
            mp->error = "a part with two Content-Disposition headers";
            return -1;
        }

        n = ngx_ai_relay_mp_param(p + 20, eol, "name",
                                  (unsigned char *) part->name,
                                  sizeof(part->name), &found);

        if (found == 2) {
            mp->error = "a part with two name parameters";
            return -1;
        }

        if (found && n < sizeof(part->name)) {
            part->name_len = n;
        }

        (void) ngx_ai_relay_mp_param(p + 20, eol, "filename", NULL, 0, &file);
        part->file = file ? 1 : 0;
    }

    if (!found || part->name_len == 0) {
        mp->error = "a part without a name";
        return -1;
    }

    part->start = mp->offset;
    mp->nparts++;

    return 0;
}


/*
 * The value of a parameter ";name=value" or ';name="value"' between p and
 * last: its length (copied into out when out is not NULL and it fits).
 * *found: 0, 1, or 2 when the parameter comes twice (readers differ on
 * which one counts: the caller refuses it).
 */

static size_t
ngx_ai_relay_mp_param(const unsigned char *p, const unsigned char *last,
    const char *name, unsigned char *out, size_t size, int *found)
{
    int                   again;
    size_t                n;
    const unsigned char  *next;

    n = ngx_ai_relay_mp_param1(p, last, name, out, size, found, &next);

    if (*found) {
        (void) ngx_ai_relay_mp_param1(next, last, name, NULL, 0, &again,
                                      &next);
        if (again) {
            *found = 2;
        }
    }

    return n;
}


static size_t
ngx_ai_relay_mp_param1(const unsigned char *p, const unsigned char *last,
    const char *name, unsigned char *out, size_t size, int *found,
    const unsigned char **next)
{
    size_t                nlen, n;
    const unsigned char  *start;

    *found = 0;
    *next = last;
    nlen = strlen(name);

    while (p < last) {

        /* the next parameter */

        while (p < last && *p != ';') {
            if (*p == '"') {
                for (p++; p < last && *p != '"'; p++) {
                    if (*p == '\\') {
                        p++;
                    }
                }
            }

            p++;
        }

        if (p >= last) {
            return 0;
        }

        p++;

        while (p < last && (*p == ' ' || *p == '\t')) {
            p++;
        }

        if ((size_t) (last - p) <= nlen || p[nlen] != '='
            || !ngx_ai_relay_mp_strncaseeq(p, name, nlen))
        {
            continue;
        }

        p += nlen + 1;
        n = 0;
        *found = 1;

        if (p < last && *p == '"') {
            for (p++; p < last && *p != '"'; p++) {
                if (*p == '\\' && p + 1 < last) {
                    p++;
                }

                if (out && n < size) {
                    out[n] = *p;
                }

                n++;
            }

            *next = (p < last) ? p + 1 : last;

            return n;
        }

        for (start = p; p < last && *p != ';' && *p != ' ' && *p != '\t'
                        && *p != '\r' && *p != '\n'; p++)
        {
            /* void */
        }

        n = p - start;

        if (out && n <= size) {
            memcpy(out, start, n);
        }

        *next = p;

        return n;
    }

    return 0;
}
