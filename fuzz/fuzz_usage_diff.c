
/*
 * Copyright (C) ngx_ai_relay authors
 *
 * libFuzzer target: the usage extractor (src/ngx_ai_relay_usage.c, on
 * ngx_ai_relay_json_scan.c) against its frozen oracle
 * (t/unit/usage_oracle.c: its own walker and jansson), every format, as
 * a body and as events under several names (t/unit/usage_diff.h).
 * Aborts on the first input where they disagree.
 *
 * make fuzz-usage-diff (fuzz/fuzz.mk)
 */


#include <stdio.h>
#include <stdlib.h>

#include "usage_diff.h"


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char  *msg;

    msg = ud_check(data, size);

    if (msg != NULL) {
        fprintf(stderr, "usage: old and new differ: %s\n", msg);
        abort();
    }

    return 0;
}
