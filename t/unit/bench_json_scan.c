
/*
 * Copyright (C) ngx_ai_relay authors
 */


/*
 * Throughput of ngx_ai_relay_json_scan() on 1 MB request bodies:
 *   base64  one image_url data: string (the common large body)
 *   chat    many short messages, pretty-printed, with numbers
 *   cjk     one long string of 3-byte UTF-8 characters
 * Usage: bench_json_scan [seconds per body, default 1]
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ngx_ai_relay_json_scan.h"


#define BENCH_SIZE  (1024 * 1024)


static double
bench_now(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);

    return ts.tv_sec + ts.tv_nsec / 1e9;
}


static size_t
bench_base64(char *p)
{
    char    *start;
    size_t   i;

    static const char  b64[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

    start = p;

    p += sprintf(p, "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\","
                 "\"content\":[{\"type\":\"image_url\",\"image_url\":{\"url\":"
                 "\"data:image/png;base64,");

    for (i = 0; i < BENCH_SIZE; i++) {
        *p++ = b64[(i * 7 + (i >> 5)) % 64];
    }

    p += sprintf(p, "\"}}]}],\"stream\":true}");

    return p - start;
}


static size_t
bench_chat(char *p)
{
    char    *start;
    size_t   i;

    start = p;

    p += sprintf(p, "{\n  \"model\": \"gpt-4o\",\n  \"temperature\": 0.7,\n"
                 "  \"messages\": [\n");

    for (i = 0; (size_t) (p - start) < BENCH_SIZE; i++) {
        p += sprintf(p, "    {\n      \"role\": \"%s\",\n      \"content\": "
                     "\"Message %zu: The quick brown fox jumps over the lazy "
                     "dog, \\\"quoted\\\"\\nnew line and caf\\u00e9.\",\n"
                     "      \"weight\": %zu.%03zu\n    },\n",
                     (i & 1) ? "assistant" : "user", i, i % 100, i % 1000);
    }

    p += sprintf(p, "    {\"role\": \"user\", \"content\": \"end\"}\n  ]\n}\n");

    return p - start;
}


static size_t
bench_cjk(char *p)
{
    char    *start;
    size_t   i;

    start = p;

    p += sprintf(p, "{\"model\":\"x\",\"prompt\":\"");

    for (i = 0; i < BENCH_SIZE / 3; i++) {
        memcpy(p, "\xe4\xb8\xad", 3);
        p += 3;
    }

    p += sprintf(p, "\"}");

    return p - start;
}


static void
bench_run(const char *name, const char *body, size_t len, double seconds)
{
    size_t                       n;
    double                       t0, t;
    ngx_ai_relay_json_member_t   members[64];
    ngx_ai_relay_json_scan_t     scan;

    ngx_ai_relay_json_scan_init(&scan, members, 64);

    if (ngx_ai_relay_json_scan(&scan, (const unsigned char *) body, len)
        != NGX_AI_RELAY_JSON_OK)
    {
        fprintf(stderr, "%s: scan failed: %s\n", name, scan.err);
        exit(1);
    }

    n = 0;
    t0 = bench_now();

    do {
        ngx_ai_relay_json_scan(&scan, (const unsigned char *) body, len);
        n++;
        t = bench_now() - t0;
    } while (t < seconds);

    printf("%-8s %8zu bytes  %6zu scans  %8.0f MB/s\n", name, len, n,
           (double) len * n / t / 1e6);
}


int
main(int argc, char **argv)
{
    char    *body;
    double   seconds;
    size_t   len;

    seconds = (argc > 1) ? atof(argv[1]) : 1.0;

    body = malloc(2 * BENCH_SIZE);
    if (body == NULL) {
        return 1;
    }

    len = bench_base64(body);
    bench_run("base64", body, len, seconds);

    len = bench_chat(body);
    bench_run("chat", body, len, seconds);

    len = bench_cjk(body);
    bench_run("cjk", body, len, seconds);

    free(body);

    return 0;
}
