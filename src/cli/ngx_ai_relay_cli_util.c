
/*
 * Copyright (C) ngx_ai_relay authors
 *
 * Memory, strings, lists and value parsing for the operator CLI.  The
 * tool is short lived: everything is allocated from one arena that is
 * released when it exits.
 */


#include <ctype.h>
#include <errno.h>

#include "ngx_ai_relay_cli.h"
#include "ngx_ai_relay_price.h"


typedef struct ngx_ai_relay_cli_block_s  ngx_ai_relay_cli_block_t;

struct ngx_ai_relay_cli_block_s {
    ngx_ai_relay_cli_block_t     *next;
    union {
        int64_t                   i;
        double                    d;
        void                     *p;
    }                             align[1];
};


static ngx_ai_relay_cli_block_t  *ngx_ai_relay_cli_blocks;


void *
ngx_ai_relay_cli_alloc(size_t size)
{
    ngx_ai_relay_cli_block_t  *b;

    b = malloc(sizeof(ngx_ai_relay_cli_block_t) + size);
    if (b == NULL) {
        fprintf(stderr, "ai-relay: out of memory\n");
        exit(NGX_AI_RELAY_CLI_FAILED);
    }

    b->next = ngx_ai_relay_cli_blocks;
    ngx_ai_relay_cli_blocks = b;

    return b->align;
}


void
ngx_ai_relay_cli_free_all(void)
{
    ngx_ai_relay_cli_block_t  *b, *next;

    for (b = ngx_ai_relay_cli_blocks; b; b = next) {
        next = b->next;
        free(b);
    }

    ngx_ai_relay_cli_blocks = NULL;
}


char *
ngx_ai_relay_cli_strndup(const char *s, size_t n)
{
    char  *p;

    p = ngx_ai_relay_cli_alloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';

    return p;
}


char *
ngx_ai_relay_cli_strdup(const char *s)
{
    return ngx_ai_relay_cli_strndup(s, strlen(s));
}


char *
ngx_ai_relay_cli_sprintf(const char *fmt, ...)
{
    int       n;
    char     *p;
    va_list   ap;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);

    p = ngx_ai_relay_cli_alloc(n + 1);

    va_start(ap, fmt);
    vsnprintf(p, n + 1, fmt, ap);
    va_end(ap);

    return p;
}


void
ngx_ai_relay_cli_list_push(ngx_ai_relay_cli_list_t *l, char *s)
{
    char  **elts;

    if (l->nelts == l->nalloc) {
        l->nalloc = l->nalloc ? l->nalloc * 2 : 8;
        elts = ngx_ai_relay_cli_alloc(l->nalloc * sizeof(char *));

        if (l->nelts) {
            memcpy(elts, l->elts, l->nelts * sizeof(char *));
        }

        l->elts = elts;
    }

    l->elts[l->nelts++] = s;
}


int
ngx_ai_relay_cli_list_has(ngx_ai_relay_cli_list_t *l, const char *s)
{
    size_t  i;

    for (i = 0; i < l->nelts; i++) {
        if (strcmp(l->elts[i], s) == 0) {
            return 1;
        }
    }

    return 0;
}


void
ngx_ai_relay_cli_list_remove(ngx_ai_relay_cli_list_t *l, const char *s)
{
    size_t  i, j;

    for (i = 0, j = 0; i < l->nelts; i++) {
        if (strcmp(l->elts[i], s) != 0) {
            l->elts[j++] = l->elts[i];
        }
    }

    l->nelts = j;
}


static int
ngx_ai_relay_cli_cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *) a, *(char *const *) b);
}


/* numbers first in numeric order, then other strings */
static int
ngx_ai_relay_cli_cmp_num(const void *a, const void *b)
{
    int          na, nb;
    size_t       la, lb;
    const char  *sa, *sb;

    sa = *(char *const *) a;
    sb = *(char *const *) b;

    na = ngx_ai_relay_cli_is_id(sa);
    nb = ngx_ai_relay_cli_is_id(sb);

    if (na != nb) {
        return na ? -1 : 1;
    }

    if (na) {
        la = strlen(sa);
        lb = strlen(sb);

        if (la != lb) {
            return la < lb ? -1 : 1;
        }
    }

    return strcmp(sa, sb);
}


void
ngx_ai_relay_cli_list_sort(ngx_ai_relay_cli_list_t *l)
{
    if (l->nelts > 1) {
        qsort(l->elts, l->nelts, sizeof(char *), ngx_ai_relay_cli_cmp_str);
    }
}


void
ngx_ai_relay_cli_list_sort_num(ngx_ai_relay_cli_list_t *l)
{
    if (l->nelts > 1) {
        qsort(l->elts, l->nelts, sizeof(char *), ngx_ai_relay_cli_cmp_num);
    }
}


char *
ngx_ai_relay_cli_list_join(ngx_ai_relay_cli_list_t *l, const char *sep)
{
    size_t                   i;
    ngx_ai_relay_cli_buf_t   b;

    memset(&b, 0, sizeof(b));
    ngx_ai_relay_cli_buf_add(&b, "", 0);

    for (i = 0; i < l->nelts; i++) {
        if (i) {
            ngx_ai_relay_cli_buf_add(&b, sep, strlen(sep));
        }

        ngx_ai_relay_cli_buf_add(&b, l->elts[i], strlen(l->elts[i]));
    }

    return b.data;
}


/* split s at any of seps, dropping empty parts and surrounding spaces */
void
ngx_ai_relay_cli_list_split(ngx_ai_relay_cli_list_t *l, const char *s,
    const char *seps)
{
    const char  *p, *start, *end;

    p = s;

    for ( ;; ) {
        start = p;

        while (*p && strchr(seps, *p) == NULL) {
            p++;
        }

        end = p;

        while (start < end && isspace((unsigned char) *start)) {
            start++;
        }

        while (end > start && isspace((unsigned char) end[-1])) {
            end--;
        }

        if (end > start) {
            ngx_ai_relay_cli_list_push(l,
                                  ngx_ai_relay_cli_strndup(start, end - start));
        }

        if (*p == '\0') {
            break;
        }

        p++;
    }
}


/* a comma-separated list with item added at the end, if missing */
char *
ngx_ai_relay_cli_csv_add(const char *csv, const char *item)
{
    ngx_ai_relay_cli_list_t  l;

    memset(&l, 0, sizeof(l));
    ngx_ai_relay_cli_list_split(&l, csv ? csv : "", ",");

    if (!ngx_ai_relay_cli_list_has(&l, item)) {
        ngx_ai_relay_cli_list_push(&l, (char *) item);
    }

    return ngx_ai_relay_cli_list_join(&l, ",");
}


/* a comma-separated list without item */
char *
ngx_ai_relay_cli_csv_del(const char *csv, const char *item)
{
    ngx_ai_relay_cli_list_t  l;

    memset(&l, 0, sizeof(l));
    ngx_ai_relay_cli_list_split(&l, csv ? csv : "", ",");
    ngx_ai_relay_cli_list_remove(&l, item);

    return ngx_ai_relay_cli_list_join(&l, ",");
}


int
ngx_ai_relay_cli_csv_has(const char *csv, const char *item)
{
    ngx_ai_relay_cli_list_t  l;

    memset(&l, 0, sizeof(l));
    ngx_ai_relay_cli_list_split(&l, csv ? csv : "", ",");

    return ngx_ai_relay_cli_list_has(&l, item);
}


/* printf("%-*s") for UTF-8: pads by characters, not bytes */
char *
ngx_ai_relay_cli_pad(const char *s, int width)
{
    int                      chars;
    const char              *p;
    ngx_ai_relay_cli_buf_t   b;

    chars = 0;

    for (p = s; *p; p++) {
        if (((unsigned char) *p & 0xc0) != 0x80) {
            chars++;
        }
    }

    memset(&b, 0, sizeof(b));
    ngx_ai_relay_cli_buf_add(&b, s, strlen(s));

    while (chars++ < width) {
        ngx_ai_relay_cli_buf_add(&b, " ", 1);
    }

    return b.data;
}


void
ngx_ai_relay_cli_buf_add(ngx_ai_relay_cli_buf_t *b, const char *s, size_t n)
{
    char  *p;

    if (b->len + n + 1 > b->cap) {
        b->cap = (b->len + n + 1) * 2;
        p = ngx_ai_relay_cli_alloc(b->cap);

        if (b->len) {
            memcpy(p, b->data, b->len);
        }

        b->data = p;
    }

    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}


/* a decimal integer within [min, max]: 0, or -1 */
int
ngx_ai_relay_cli_parse_int(const char *s, int64_t min, int64_t max,
    int64_t *out)
{
    char       *end;
    long long   v;

    if (s == NULL || *s == '\0' || isspace((unsigned char) *s)) {
        return -1;
    }

    errno = 0;
    v = strtoll(s, &end, 10);

    if (errno || *end != '\0' || v < min || v > max) {
        return -1;
    }

    *out = v;

    return 0;
}


/* 1 if s is a positive decimal id without leading zeros */
int
ngx_ai_relay_cli_is_id(const char *s)
{
    size_t  i;

    if (s == NULL || s[0] < '1' || s[0] > '9') {
        return 0;
    }

    for (i = 1; s[i]; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return 0;
        }
    }

    return i <= 18;
}


static int64_t
ngx_ai_relay_cli_days_from_civil(int64_t y, unsigned m, unsigned d)
{
    unsigned  yoe, doy, doe;
    int64_t   era;

    /* days since 1970-01-01 of a proleptic Gregorian date */

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = (unsigned) (y - era * 400);
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

    return era * 146097 + (int64_t) doe - 719468;
}


/* n decimal digits at s: the value, or -1 */
static int
ngx_ai_relay_cli_digits(const char *s, int n)
{
    int  i, v;

    v = 0;

    for (i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return -1;
        }

        v = v * 10 + (s[i] - '0');
    }

    return v;
}


/* the seconds of a duration's unit: d, h, m, s; 0 for another letter */
int64_t
ngx_ai_relay_cli_unit_seconds(char c)
{
    switch (c) {
    case 'd':
        return 86400;
    case 'h':
        return 3600;
    case 'm':
        return 60;
    case 's':
        return 1;
    default:
        return 0;
    }
}


/*
 * A point in time, UTC: "now", "never" (0), "+30d", "+12h", "+15m",
 * "-7d", "YYYY-MM-DD", "YYYY-MM-DD[T| ]HH:MM[:SS][Z]" or Unix seconds
 * ("1767225600" or "@1767225600").  0, or -1.
 */
int
ngx_ai_relay_cli_parse_time(const char *s, time_t now, time_t *out)
{
    int       y, mo, d, h, mi, sec, dim;
    size_t    len;
    int64_t   v, unit;

    static const int  mdays[] = {
        31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31
    };

    if (strcmp(s, "now") == 0) {
        *out = now;
        return 0;
    }

    if (strcmp(s, "never") == 0) {
        *out = 0;
        return 0;
    }

    len = strlen(s);

    if (s[0] == '+' || s[0] == '-') {

        if (len < 3) {
            return -1;
        }

        unit = ngx_ai_relay_cli_unit_seconds(s[len - 1]);

        if (unit == 0) {
            return -1;
        }

        if (ngx_ai_relay_cli_parse_int(ngx_ai_relay_cli_strndup(s + 1,
                                                                len - 2),
                                       0, 36500LL * 86400, &v)
            != 0)
        {
            return -1;
        }

        v *= unit;
        *out = (s[0] == '+') ? now + v : now - v;

        return (*out >= 0) ? 0 : -1;
    }

    if (ngx_ai_relay_cli_parse_int(s[0] == '@' ? s + 1 : s, 0,
                                   253402300799LL, &v)
        == 0)
    {
        *out = (time_t) v;
        return 0;
    }

    if (len != 10 && len != 16 && len != 17 && len != 19 && len != 20) {
        return -1;
    }

    y = ngx_ai_relay_cli_digits(s, 4);
    mo = ngx_ai_relay_cli_digits(s + 5, 2);
    d = ngx_ai_relay_cli_digits(s + 8, 2);
    h = mi = sec = 0;

    if (s[4] != '-' || s[7] != '-') {
        return -1;
    }

    if (len > 10) {
        if ((s[10] != 'T' && s[10] != ' ') || s[13] != ':') {
            return -1;
        }

        h = ngx_ai_relay_cli_digits(s + 11, 2);
        mi = ngx_ai_relay_cli_digits(s + 14, 2);

        if (len == 17 && s[16] != 'Z') {
            return -1;
        }

        if (len >= 19) {
            if (s[16] != ':' || (len == 20 && s[19] != 'Z')) {
                return -1;
            }

            sec = ngx_ai_relay_cli_digits(s + 17, 2);
        }
    }

    if (y < 1970 || mo < 1 || mo > 12 || d < 1 || h < 0 || h > 23
        || mi < 0 || mi > 59 || sec < 0 || sec > 59)
    {
        return -1;
    }

    dim = mdays[mo - 1];

    if (mo == 2 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0)) {
        dim = 28;
    }

    if (d > dim) {
        return -1;
    }

    *out = (time_t) (ngx_ai_relay_cli_days_from_civil(y, mo, d) * 86400
                     + h * 3600 + mi * 60 + sec);

    return 0;
}


/* "10", "0.50", "$1.5": exact micro-USD, not negative; 0, or -1 */
int
ngx_ai_relay_cli_parse_usd(const char *s, int64_t *out)
{
    if (s == NULL || *s == '\0' || *s == '-') {
        return -1;
    }

    if (ngx_ai_relay_price_parse_usd(s, strlen(s), out)
        != NGX_AI_RELAY_PRICE_OK)
    {
        return -1;
    }

    return 0;
}


char *
ngx_ai_relay_cli_usd(int64_t micro)
{
    char  buf[NGX_AI_RELAY_PRICE_USD_LEN];

    ngx_ai_relay_price_format_usd(buf, sizeof(buf), micro,
                                  NGX_AI_RELAY_PRICE_FMT_TRIM);

    return ngx_ai_relay_cli_strdup(buf);
}


/* "2026-01-31T12:00:00Z", or "never" for 0 */
char *
ngx_ai_relay_cli_time_str(time_t t)
{
    char       buf[32];
    struct tm  tm;

    if (t == 0) {
        return "never";
    }

    gmtime_r(&t, &tm);
    strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);

    return ngx_ai_relay_cli_strdup(buf);
}


/*
 * A name of a user, model or key: 1..200 bytes, printable, no spaces,
 * no commas (lists are comma-separated), no '|' (reservation records).
 */
int
ngx_ai_relay_cli_valid_name(const char *s)
{
    size_t  i;

    for (i = 0; s[i]; i++) {
        if ((unsigned char) s[i] <= 0x20 || s[i] == 0x7f || s[i] == ','
            || s[i] == '|')
        {
            return 0;
        }
    }

    return i > 0 && i <= 200;
}


/*
 * A comma-separated model list as the layout stores it: no spaces, no
 * empty or repeated entries, in the order given.  0, or -1 if a name is
 * not valid.
 */
int
ngx_ai_relay_cli_models_csv(const char *s, char **out)
{
    size_t                   i;
    ngx_ai_relay_cli_list_t  in, uniq;

    memset(&in, 0, sizeof(in));
    memset(&uniq, 0, sizeof(uniq));

    ngx_ai_relay_cli_list_split(&in, s, ",");

    for (i = 0; i < in.nelts; i++) {
        if (!ngx_ai_relay_cli_valid_name(in.elts[i])) {
            return -1;
        }

        if (!ngx_ai_relay_cli_list_has(&uniq, in.elts[i])) {
            ngx_ai_relay_cli_list_push(&uniq, in.elts[i]);
        }
    }

    *out = ngx_ai_relay_cli_list_join(&uniq, ",");

    return 0;
}


/*
 * Report an error: "ai-relay: ..." on stderr and, with --json, an
 * {"error": ...} object on stdout.  Returns code.
 */
int
ngx_ai_relay_cli_error(ngx_ai_relay_cli_t *cli, int code, const char *fmt,
    ...)
{
    char     *msg;
    int       n;
    json_t   *j;
    va_list   ap;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);

    msg = ngx_ai_relay_cli_alloc(n + 1);

    va_start(ap, fmt);
    vsnprintf(msg, n + 1, fmt, ap);
    va_end(ap);

    fprintf(stderr, "ai-relay: %s\n", msg);

    if (cli && cli->json && !cli->failed) {
        j = json_pack("{s:{s:s,s:i}}", "error", "message", msg,
                      "exit", code);
        ngx_ai_relay_cli_print_json(j);
        json_decref(j);
    }

    if (cli && !cli->failed) {
        cli->failed = 1;
        cli->failed_rc = code;
    }

    return code;
}


void
ngx_ai_relay_cli_print_json(json_t *j)
{
    json_dumpf(j, stdout, JSON_INDENT(2) | JSON_ENSURE_ASCII);
    fputc('\n', stdout);
}


/* a JSON integer from a decimal string, or the string itself */
json_t *
ngx_ai_relay_cli_json_int(const char *s)
{
    int64_t  v;

    if (s == NULL) {
        return json_null();
    }

    if (ngx_ai_relay_cli_parse_int(s, INT64_MIN, INT64_MAX, &v) == 0) {
        return json_integer(v);
    }

    return json_string(s);
}
