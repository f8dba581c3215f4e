
/*
 * Copyright (C) ngx_ai_relay authors
 *
 * libFuzzer target for the multipart parser (and the answer's model
 * finder, and an audio file's duration from its first bytes): the
 * input's first line is the boundary, the rest the body.
 * The body is fed whole and cut at points derived from the input; both
 * feeds must agree on every part, and every value kept must be the
 * body's own bytes at the part's offsets.
 */


#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ngx_ai_relay_multipart.h"
#include "ngx_ai_relay_rename.h"
#include "ngx_ai_relay_audio.h"


static void
fz_parse(ngx_ai_relay_mp_t *mp, const uint8_t *ct, size_t ctlen,
    const uint8_t *body, size_t len, size_t step)
{
    size_t  i, n;

    if (ngx_ai_relay_mp_init(mp, ct, ctlen) != 0) {
        return;
    }

    for (i = 0; i < len; i += n) {
        n = step ? step + (body[i] & 7) : len;

        if (n > len - i) {
            n = len - i;
        }

        if (ngx_ai_relay_mp_feed(mp, body + i, n) != NGX_AI_RELAY_MP_OK) {
            break;
        }
    }

    (void) ngx_ai_relay_mp_finish(mp);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t              blen, len, i, a, z;
    uint8_t             ct[128];
    const uint8_t      *nl, *body;
    ngx_ai_relay_mp_t  *m1, *m2;

    /* a file that is not empty plays for a second at least */

    if (size && (ngx_ai_relay_audio_seconds(data, size, size) == 0
                 || ngx_ai_relay_audio_seconds(data, size / 2, size) == 0))
    {
        abort();
    }

    if (ngx_ai_relay_rename_find(data, size, &a, &z)) {
        if (!(a < z && z <= size && data[a] == '"' && data[z - 1] == '"')) {
            abort();
        }
    }

    nl = memchr(data, '\n', size < 80 ? size : 80);
    if (nl == NULL) {
        return 0;
    }

    blen = nl - data;
    body = nl + 1;
    len = size - blen - 1;

    memcpy(ct, "multipart/form-data; boundary=", 30);
    memcpy(ct + 30, data, blen);

    m1 = malloc(sizeof(ngx_ai_relay_mp_t));
    m2 = malloc(sizeof(ngx_ai_relay_mp_t));

    fz_parse(m1, ct, 30 + blen, body, len, 0);
    fz_parse(m2, ct, 30 + blen, body, len, 1 + (size & 15));

    if ((m1->error == NULL) != (m2->error == NULL)) {
        abort();
    }

    if (m1->error == NULL) {
        if (m1->nparts != m2->nparts || m1->offset != m2->offset
            || m1->text_bytes != m2->text_bytes)
        {
            abort();
        }

        for (i = 0; i < m1->nparts; i++) {
            ngx_ai_relay_mp_part_t  *p = &m1->parts[i], *q = &m2->parts[i];

            if (p->start != q->start || p->end != q->end
                || p->kept != q->kept || p->file != q->file
                || p->name_len != q->name_len
                || memcmp(p->name, q->name, p->name_len) != 0
                || p->start > p->end || p->end > len)
            {
                abort();
            }

            if (p->kept
                && (memcmp(p->value, body + p->start, p->end - p->start) != 0
                    || memcmp(q->value, body + q->start, q->end - q->start)
                       != 0))
            {
                abort();
            }
        }
    }

    free(m1);
    free(m2);

    return 0;
}
