
/*
 * Copyright (C) ngx_ai_relay authors
 */


/*
 * libFuzzer target: ngx_ai_relay_json_scan() against jansson (also with
 * the jansson-strict options), the model / include_usage edit round trip
 * and the lenient walk (t/unit/json_scan_diff.h).
 *
 *   clang -std=gnu99 -g -O1 -fsanitize=fuzzer,address,undefined \
 *       -Isrc -It/unit fuzz/fuzz_json_scan.c src/ngx_ai_relay_json_scan.c \
 *       -ljansson -o build/unit/fuzz_json_scan
 *   build/unit/fuzz_json_scan -max_total_time=300 \
 *       -dict=fuzz/json_scan.dict build/unit/fuzz_corpus fuzz/corpus_json_scan
 * or: make core-fuzz (t/unit/core.mk)
 */


#include <stdio.h>
#include <stdlib.h>

#include "json_scan_diff.h"


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t                       i;
    const char                  *msg;
    ngx_ai_relay_json_scan_t     scan;
    ngx_ai_relay_json_member_t   m;

    msg = jd_check(data, size);

    if (msg == NULL) {
        msg = jd_check_edits(data, size);
    }

    if (msg == NULL) {
        msg = jd_check_strict(data, size);
    }

    if (msg == NULL) {
        msg = jd_check_lax(data, size);
    }

    if (msg != NULL) {
        fprintf(stderr, "json_scan: %s\n", msg);
        abort();
    }

    /* lookups on a validated document must stay inside it */

    ngx_ai_relay_json_scan_init(&scan, jd_members, JD_MEMBERS);

    if (ngx_ai_relay_json_scan(&scan, data, size) == NGX_AI_RELAY_JSON_OK) {

        for (i = 0; i < scan.nmembers; i++) {
            if (ngx_ai_relay_json_object_find(data, &jd_members[i], "a", 1,
                                              &m)
                && (m.value_end > jd_members[i].value_end
                    || m.value_start < jd_members[i].value_start))
            {
                fprintf(stderr, "json_scan: nested span out of bounds\n");
                abort();
            }
        }
    }

    return 0;
}
