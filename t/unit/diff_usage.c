
/*
 * Copyright (C) ngx_ai_relay authors
 *
 * Differential run of the usage extractor against its frozen oracle (see
 * t/unit/usage_diff.h) over: every file named on the command line (a .sse
 * file contributes each of its data: lines), every prefix of each of them
 * (truncated bodies and events), NGX_AI_RELAY_DIFF_MUTANTS seeded
 * mutations of each (bytes flipped, dictionary tokens inserted, ranges
 * cut or doubled) and a list of hand-written edge cases.  Prints how many
 * inputs and runs were compared; exits 1 on the first disagreement.
 *
 * Usage: diff_usage [-m mutants] [-d dictionary] files...
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "usage_diff.h"


#define DU_MAX_DICT   512
#define DU_MAX_INPUT  (1024 * 1024)


typedef struct {
    u_char          *data;
    size_t           len;
} du_str_t;


static du_str_t   du_dict[DU_MAX_DICT];
static size_t     du_ndict;
static uint64_t   du_inputs;
static uint64_t   du_rand = 0x9e3779b97f4a7c15ULL;


static const char  *du_edges[] = {
    "{\"usage\":{\"prompt_tokens\":1125899906842624}}",
    "{\"usage\":{\"prompt_tokens\":1125899906842625}}",
    "{\"usage\":{\"prompt_tokens\":99999999999999999999999999999}}",
    "{\"usage\":{\"prompt_tokens\":1125899906842624.9}}",
    "{\"usage\":{\"prompt_tokens\":1.125899906842624e15}}",
    "{\"usage\":{\"prompt_tokens\":1.2e400,\"completion_tokens\":2}}",
    "{\"usage\":{\"prompt_tokens\":1e-400,\"completion_tokens\":2}}",
    "{\"usage\":{\"prompt_tokens\":-0,\"completion_tokens\":-1}}",
    "{\"usage\":{\"prompt_tokens\":-0.0,\"completion_tokens\":0.0}}",
    "{\"usage\":{\"prompt_tokens\":2.999999999999999999999}}",
    "{\"usage\":{\"prompt_tokens\":1.0000000000000000000000000000000000000"
        "000000000000000000000000001}}",
    "{\"usage\":{\"prompt_tokens\":00}}",
    "{\"usage\":{\"prompt_tokens\":1e}}",
    "{\"usage\":{\"prompt_tokens\":.5}}",
    "{\"usage\":{\"prompt_tokens\":+5}}",
    "{\"usage\":{\"prompt\\u005ftokens\":5,\"completion_tokens\":1}}",
    "{\"us\\u0061ge\":{\"prompt_tokens\":5}}",
    "{\"usage\":{\"prompt_tokens\":5,\"x\":\"\\q\\u12\"}}",
    "{\"usage\":{\"prompt_tokens\":5,\"x\":\"\x01\xff\"}}",
    "{\"usage\":{\"prompt_tokens_details\":{\"cached_tokens\":{}},"
        "\"prompt_tokens\":3}}",
    "{\"usage\":{\"cache_creation\":[],\"input_tokens\":3}}",
    "{\"usage\":{\"cache_creation\":{\"ephemeral_5m_input_tokens\":2,"
        "\"ephemeral_1h_input_tokens\":{\"a\":1}},\"input_tokens\":3}}",
    "{\"usage\":{\"prompt_tokens_details\":[{\"cached_tokens\":1}],"
        "\"prompt_tokens\":3}}",
    "{\"a\":{\"usage\":{\"prompt_tokens\":1}},\"usage\":{\"prompt_tokens\":2}}",
    "{\"usage\":{\"prompt_tokens\":2},\"a\":{\"usage\":{\"prompt_tokens\":1}}}",
    "{\"usage\":{\"prompt_tokens\":2},\"usage\":{\"prompt_tokens\":3}}",
    "{\"usage\":{\"prompt_tokens\":2},\"usage\":[1]}",
    "{\"usage\"  :  {\"prompt_tokens\" : 2 } , \"choices\" : [ ] }",
    "{\"choices\":null,\"usage\":{\"prompt_tokens\":2}}",
    "{\"choices\":[ 1 ],\"usage\":{\"prompt_tokens\":2}}",
    "{\"choices\":\"x\",\"usage\":{\"prompt_tokens\":2}}",
    "[{\"usageMetadata\":{\"promptTokenCount\":3}},"
        "{\"usageMetadata\":{\"totalTokenCount\":4}}]",
    "{\"error\":{\"type\":\"t\",\"message\":\"m\"}}",
    "{\"error\":{\"type\":5,\"status\":\"S\",\"code\":7,\"message\":\"m\"}}",
    "{\"error\":{\"code\":-9223372036854775808}}",
    "{\"error\":{\"code\":9223372036854775808}}",
    "{\"error\":{\"code\":1e3,\"message\":1}}",
    "{\"error\":{\"code\":-0}}",
    "{\"error\":{\"code\":1.5e400}}",
    "{\"error\":{\"code\":1e-400}}",
    "{\"error\":{\"code\":true,\"message\":\"a\\u0000b\"}}",
    "{\"error\":{\"message\":\"\\ud83d\\ude00\\ud800\"}}",
    "{\"error\":{\"message\":\"\\ud83d\\ude00\"}}",
    "{\"error\":{\"message\":\"\xed\xa0\x80\"}}",
    "{\"error\":{\"message\":\"\xc0\xaf\"}}",
    "{\"error\":{\"message\":\"a\tb\"}}",
    "{\"err\\u006fr\":\"x\",\"error\":\"y\"}",
    "{\"error\":\"y\",\"err\\u006fr\":\"x\"}",
    "{\"error\":\"a\",\"error\":{\"message\":\"b\"}}",
    "{\"error\":null,\"response\":{\"error\":{\"code\":\"c\"}}}",
    "{\"error\":1,\"response\":{\"error\":\"s\"}}",
    "{\"type\":\"error\",\"code\":\"c\",\"message\":\"m\"}",
    "{\"type\":\"error\\u0000\",\"code\":\"c\"}",
    "{\"type\":\"error\",\"error\":3}",
    "[{\"error\":\"a\"},{\"error\":{\"message\":\"b\"}},1,[]]",
    "[]",
    "\"error\"",
    "{\"error\":\"x\"} ",
    "{\"error\":\"x\"} x",
    " {\"error\":\"x\"}\n",
    "{\"error\":\"x\"}{}",
    "\xef\xbb\xbf{\"error\":\"x\"}",
    "{\"error\":\"x\",}",
    "{\"error\":\"x\" \"y\":1}",
    "{\"data\":[{},{},[1,{\"a\":[]}],\"x\",1.5,null],\"created\":1}",
    "{\"data\":[],\"usage\":{\"input_tokens\":3}}",
    "{\"data\":[1,],\"usage\":{\"input_tokens\":3}}",
    "{\"type\":\"image_generation.completed\",\"usage\":{}}",
    "{\"type\":\"x.completed\"}",
    "{\"type\":\".completed\"}",
    "{\"type\":\"ab.completed\\\"\"}",
    "{\"content\":\"\\u00e9\\ud83d\\ude00\\uDE00\\uZZZZ\\\\\"}",
    "{\"text\":\"\xe6\x97\xa5\xc3\xa9\x80\xff\"}",
    "{\"text\":\"abc",
    "{\"text\":\"abc\\",
    "{\"text\":\"abc\\u00",
    "{\"text\":",
    "{\"text\"",
    "{\"text\": \"a\"  , \"partial_json\" :\"{\\\"a\\\"\"}",
    "[DONE]",
    "[DONE] ",
    "",
    "{",
    "}}}]]]{\"usage\":{\"prompt_tokens\":1}}",
    NULL
};


static const char  *du_deep_pre[] = {
    "{\"usage\":{\"prompt_tokens\":1,\"a\":",
    "{\"error\":\"x\",\"a\":",
    "{\"data\":[1,",
    NULL
};


static uint64_t
du_next(void)
{
    du_rand ^= du_rand << 13;
    du_rand ^= du_rand >> 7;
    du_rand ^= du_rand << 17;

    return du_rand;
}


static void
du_one(const u_char *p, size_t len)
{
    size_t       i;
    const char  *what;

    du_inputs++;

    what = ud_check(p, len);

    if (what == NULL) {
        return;
    }

    fprintf(stderr, "diff_usage: %s differs on %zu bytes:\n", what, len);

    for (i = 0; i < len; i++) {
        fprintf(stderr, (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '\\')
                        ? "%c" : "\\x%02x", p[i]);
    }

    fprintf(stderr, "\n");

    exit(1);
}


static void
du_mutate(const u_char *p, size_t len, size_t mutants)
{
    size_t     i, k, n, at, cut, total;
    u_char    *buf;
    du_str_t  *t;

    buf = malloc(len * 2 + 4096);
    if (buf == NULL) {
        exit(2);
    }

    for (i = 0; i < mutants; i++) {
        memcpy(buf, p, len);
        n = len;

        for (k = 1 + du_next() % 4; k; k--) {
            at = n ? du_next() % (n + 1) : 0;

            switch (du_next() % 5) {

            case 0:
                if (at < n) {
                    buf[at] = (u_char) du_next();
                }

                break;

            case 1:
            case 2:
                if (du_ndict == 0) {
                    break;
                }

                t = &du_dict[du_next() % du_ndict];

                if (n + t->len > len * 2 + 4000) {
                    break;
                }

                memmove(buf + at + t->len, buf + at, n - at);
                memcpy(buf + at, t->data, t->len);
                n += t->len;
                break;

            case 3:
                cut = du_next() % 16;
                cut = (cut > n - at) ? n - at : cut;
                memmove(buf + at, buf + at + cut, n - at - cut);
                n -= cut;
                break;

            default:
                cut = du_next() % 32;
                cut = (cut > n - at) ? n - at : cut;
                total = n + cut;

                if (total > len * 2 + 4000) {
                    break;
                }

                memmove(buf + at + cut, buf + at, n - at);
                n = total;
                break;
            }
        }

        du_one(buf, n);
    }

    free(buf);
}


static void
du_input(const u_char *p, size_t len, size_t mutants)
{
    size_t  i;

    du_one(p, len);

    for (i = 0; i < len; i++) {
        du_one(p, i);
    }

    du_mutate(p, len, mutants);
}


/*
 * Nesting around the limits: 32 containers in a usage object, 2048
 * values in an error body (jansson), with nothing, a scalar or an empty
 * object innermost, and an array of that many elements for image counts.
 */

static void
du_deep(void)
{
    int          i, n, inner, k;
    size_t       len;
    u_char      *buf;
    const char  *pre, *suf;

    buf = malloc(32768);
    if (buf == NULL) {
        exit(2);
    }

    for (k = 0; du_deep_pre[k]; k++) {
        pre = du_deep_pre[k];

        for (n = 1; n < 2060; n++) {

            if (n > 40 && (n < 2040 || k != 1)) {
                continue;
            }

            for (inner = 0; inner < 3; inner++) {
                len = strlen(pre);
                memcpy(buf, pre, len);

                for (i = 0; i < n; i++) {
                    buf[len++] = (i & 1) ? '{' : '[';

                    if (i & 1) {
                        memcpy(buf + len, "\"k\":", 4);
                        len += 4;
                    }
                }

                if (inner == 1) {
                    buf[len++] = '1';

                } else if (inner == 2) {
                    memcpy(buf + len, "{}", 2);
                    len += 2;
                }

                for (i = n - 1; i >= 0; i--) {
                    buf[len++] = (i & 1) ? '}' : ']';
                }

                suf = (k == 0) ? "}}" : (k == 1) ? "}" : "]}";
                memcpy(buf + len, suf, strlen(suf));
                len += strlen(suf);

                du_one(buf, len);
            }
        }
    }

    free(buf);
}


static u_char *
du_read(const char *path, size_t *len)
{
    FILE    *f;
    u_char  *buf;

    f = fopen(path, "rb");
    if (f == NULL) {
        perror(path);
        exit(2);
    }

    buf = malloc(DU_MAX_INPUT);
    if (buf == NULL) {
        exit(2);
    }

    *len = fread(buf, 1, DU_MAX_INPUT, f);
    fclose(f);

    return buf;
}


/* libFuzzer dictionary lines: name="value" with \\, \" and \xHH */

static void
du_read_dict(const char *path)
{
    char     line[1024], *s;
    u_char  *d;
    size_t   n;
    FILE    *f;

    f = fopen(path, "r");
    if (f == NULL) {
        perror(path);
        exit(2);
    }

    while (du_ndict < DU_MAX_DICT && fgets(line, sizeof(line), f)) {
        s = strchr(line, '"');

        if (line[0] == '#' || s == NULL) {
            continue;
        }

        s++;
        d = malloc(strlen(s) + 1);
        n = 0;

        while (*s && *s != '\n') {

            if (*s == '\\' && s[1] == 'x' && s[2] && s[3]) {
                d[n++] = (u_char) strtol((char []) { s[2], s[3], 0 }, NULL,
                                         16);
                s += 4;

            } else if (*s == '\\' && s[1]) {
                d[n++] = (u_char) s[1];
                s += 2;

            } else {
                d[n++] = (u_char) *s++;
            }
        }

        /* the closing quote */
        if (n && d[n - 1] == '"') {
            n--;
        }

        du_dict[du_ndict].data = d;
        du_dict[du_ndict].len = n;
        du_ndict++;
    }

    fclose(f);
}


int
main(int argc, char **argv)
{
    int          i;
    size_t       len, n, mutants;
    u_char      *buf, *p, *last, *e, *q;
    const char  *name;

    mutants = 200;

    for (i = 1; i < argc; i++) {

        if (strcmp(argv[i], "-m") == 0 && i + 1 < argc) {
            mutants = strtoul(argv[++i], NULL, 10);
            continue;
        }

        if (strcmp(argv[i], "-d") == 0 && i + 1 < argc) {
            du_read_dict(argv[++i]);
            continue;
        }
    }

    for (i = 0; du_edges[i]; i++) {
        du_input((const u_char *) du_edges[i], strlen(du_edges[i]), mutants);
    }

    du_deep();

    for (i = 1; i < argc; i++) {

        if (argv[i][0] == '-') {
            i++;
            continue;
        }

        name = argv[i];
        buf = du_read(name, &len);

        du_input(buf, len, mutants);

        n = strlen(name);

        if (n > 4 && strcmp(name + n - 4, ".sse") == 0) {
            p = buf;
            last = buf + len;

            while (p < last) {
                e = memchr(p, '\n', last - p);
                e = e ? e : last;

                if (e - p > 5 && memcmp(p, "data:", 5) == 0) {
                    q = p + 5;
                    q += (q < e && *q == ' ');
                    du_input(q, e - q, mutants);
                }

                p = e + 1;
            }
        }

        free(buf);
    }

    printf("diff_usage: %llu inputs, %llu runs compared (%llu skipped: "
           "NUL after a number), old and new agree\n",
           (unsigned long long) du_inputs, (unsigned long long) ud_runs,
           (unsigned long long) ud_skipped);

    return 0;
}
