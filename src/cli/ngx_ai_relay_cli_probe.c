
/*
 * Copyright (C) ngx_ai_relay authors
 *
 * ai-relay channels test: one minimal real request per upstream key of a
 * channel, sent straight to the channel's base URL (not through nginx),
 * with libcurl; a few at once.
 *
 * (a base URL whose path has a version segment, such as .../v1beta/openai,
 * is the API root: the endpoint's own /v1 or /v1beta is left out)
 *
 *   openai, openai-compatible  POST {base}/v1/chat/completions
 *                              Authorization: Bearer KEY
 *   anthropic                  POST {base}/v1/messages
 *                              x-api-key: KEY, anthropic-version
 *   gemini                     POST {base}/v1beta/models/{M}:generateContent
 *                              x-goog-api-key: KEY
 *
 * Keys are shown masked only, and a key the upstream echoes in its error
 * message is masked there too.
 */


#include <curl/curl.h>

#include "ngx_ai_relay_cli.h"


#define NGX_AI_RELAY_CLI_PROBE_PARALLEL   8
#define NGX_AI_RELAY_CLI_PROBE_BODY_MAX   65536
#define NGX_AI_RELAY_CLI_PROBE_ERROR_MAX  300
#define NGX_AI_RELAY_CLI_PROBE_TIMEOUT    30

#define NGX_AI_RELAY_CLI_ANTHROPIC_VERSION  "2023-06-01"


typedef struct {
    const char                   *channel;
    const char                   *name;
    const char                   *provider;
    const char                   *channel_status;
    const char                   *key;       /* NULL: the channel has none */
    char                         *masked;
    const char                   *model;     /* as sent upstream */
    char                         *url;
    char                         *body;
    struct curl_slist            *headers;
    CURL                         *easy;
    ngx_ai_relay_cli_buf_t        resp;
    long                          status;    /* 0: no HTTP answer */
    int64_t                       latency;   /* ms */
    char                         *error;
    char                         *error_code;
    char                          errbuf[CURL_ERROR_SIZE];
    unsigned                      ok:1;
    unsigned                      done:1;
} ngx_ai_relay_cli_probe_t;


static size_t
ngx_ai_relay_cli_probe_write(char *data, size_t size, size_t n, void *ctx)
{
    size_t                     len;
    ngx_ai_relay_cli_probe_t  *p;

    p = ctx;
    len = size * n;

    if (p->resp.len < NGX_AI_RELAY_CLI_PROBE_BODY_MAX) {
        ngx_ai_relay_cli_buf_add(&p->resp, data,
                 len < NGX_AI_RELAY_CLI_PROBE_BODY_MAX - p->resp.len
                 ? len : NGX_AI_RELAY_CLI_PROBE_BODY_MAX - p->resp.len);
    }

    return len;
}


/* one line of printable text, the key masked, at most a few hundred */
static char *
ngx_ai_relay_cli_probe_clean(ngx_ai_relay_cli_probe_t *p, const char *s,
    size_t n)
{
    char                    *t;
    size_t                   i, klen;
    ngx_ai_relay_cli_buf_t   b;

    memset(&b, 0, sizeof(b));
    klen = p->key ? strlen(p->key) : 0;

    for (i = 0; i < n && b.len < NGX_AI_RELAY_CLI_PROBE_ERROR_MAX; i++) {

        if (klen >= 4 && n - i >= klen && memcmp(s + i, p->key, klen) == 0) {
            ngx_ai_relay_cli_buf_add(&b, p->masked, strlen(p->masked));
            i += klen - 1;
            continue;
        }

        if ((unsigned char) s[i] < 0x20 || s[i] == 0x7f) {
            if (b.len && b.data[b.len - 1] != ' ') {
                ngx_ai_relay_cli_buf_add(&b, " ", 1);
            }

            continue;
        }

        ngx_ai_relay_cli_buf_add(&b, s + i, 1);
    }

    if (b.len == 0) {
        return ngx_ai_relay_cli_strdup("");
    }

    while (b.len && b.data[b.len - 1] == ' ') {
        b.len--;
    }

    t = ngx_ai_relay_cli_strndup(b.data, b.len);

    if (i < n) {
        t = ngx_ai_relay_cli_sprintf("%s...", t);
    }

    return t;
}


/*
 * The upstream's error message: {"error":{"message","code"|"type"|
 * "status"}} (OpenAI, Anthropic, Gemini), {"error":"..."}, {"message":
 * "..."} or {"detail":"..."} (compatible servers); else the body's start.
 */
static void
ngx_ai_relay_cli_probe_error(ngx_ai_relay_cli_probe_t *p)
{
    json_t      *j, *e, *v;
    const char  *msg, *code;

    msg = NULL;
    code = NULL;

    j = p->resp.len ? json_loadb(p->resp.data, p->resp.len, 0, NULL) : NULL;
    e = json_object_get(j, "error");

    if (json_is_object(e)) {
        msg = json_string_value(json_object_get(e, "message"));

        v = json_object_get(e, "code");
        code = json_string_value(v);

        if (code == NULL) {
            code = json_string_value(json_object_get(e, "type"));
        }

        if (code == NULL) {
            code = json_string_value(json_object_get(e, "status"));
        }

    } else if (json_is_string(e)) {
        msg = json_string_value(e);

    } else {
        msg = json_string_value(json_object_get(j, "message"));

        if (msg == NULL) {
            msg = json_string_value(json_object_get(j, "detail"));
        }
    }

    if (msg) {
        p->error = ngx_ai_relay_cli_probe_clean(p, msg, strlen(msg));

    } else if (p->resp.len) {
        p->error = ngx_ai_relay_cli_probe_clean(p, p->resp.data,
                                                p->resp.len);

    } else {
        p->error = ngx_ai_relay_cli_sprintf("HTTP %ld, empty body",
                                            p->status);
    }

    if (code) {
        p->error_code = ngx_ai_relay_cli_probe_clean(p, code, strlen(code));
    }

    json_decref(j);
}


/* the model sent upstream: --model or the first one routed here, mapped */
static const char *
ngx_ai_relay_cli_probe_model(const char *id, json_t *h, const char *want,
    ngx_ai_relay_cli_list_t *names, json_t *models)
{
    size_t                   i, n;
    json_t                  *m;
    const char              *model, *up;
    ngx_ai_relay_cli_list_t  listed;

    model = want;

    if (model == NULL) {
        /* the channel's own list first, in its order, then any model */

        memset(&listed, 0, sizeof(listed));
        ngx_ai_relay_cli_list_split(&listed,
                                    ngx_ai_relay_cli_hstr(h, "models"), ",");

        for (n = 0; n <= listed.nelts && model == NULL; n++) {
            for (i = 0; i < names->nelts; i++) {
                if (n < listed.nelts
                    && strcmp(names->elts[i], listed.elts[n]) != 0)
                {
                    continue;
                }

                m = json_array_get(models, i);

                if (ngx_ai_relay_cli_hval(m, "alias") == NULL
                    && ngx_ai_relay_cli_csv_has(ngx_ai_relay_cli_hstr(m,
                                                           "channels"), id))
                {
                    model = names->elts[i];
                    break;
                }
            }
        }

        if (model == NULL) {
            return NULL;
        }
    }

    up = ngx_ai_relay_cli_hval(h, ngx_ai_relay_cli_sprintf("map:%s", model));

    return up && up[0] ? up : model;
}


/* "v1", "v1beta", "v4": 'v', digits, then letters or digits */

static int
ngx_ai_relay_cli_version_segment(const char *p, size_t len)
{
    size_t  i;

    if (len < 2 || p[0] != 'v' || p[1] < '0' || p[1] > '9') {
        return 0;
    }

    for (i = 2; i < len; i++) {
        if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'z'))) {
            return 0;
        }
    }

    return 1;
}


/*
 * base + path as the module joins them (README, "Base URLs with a path"):
 * a base URL whose path has a version segment is the API root, and the
 * endpoint's own version segment is left out
 */

char *
ngx_ai_relay_cli_probe_url(const char *base, const char *path)
{
    const char  *p, *seg, *end;

    p = strstr(base, "://");
    p = p ? p + 3 : base;
    p = strchr(p, '/');

    while (p && *p) {
        seg = p + 1;
        end = strchr(seg, '/');

        if (ngx_ai_relay_cli_version_segment(seg, end ? (size_t) (end - seg)
                                                      : strlen(seg)))
        {
            end = strchr(path + 1, '/');
            return ngx_ai_relay_cli_sprintf("%s%s", base, end ? end : path);
        }

        p = end;
    }

    return ngx_ai_relay_cli_sprintf("%s%s", base, path);
}


static int
ngx_ai_relay_cli_probe_prepare(ngx_ai_relay_cli_probe_t *p,
    const char *base, long timeout)
{
    char        *esc;
    json_t      *body;
    const char  *model;

    p->easy = curl_easy_init();
    if (p->easy == NULL) {
        p->error = "cannot start libcurl";
        return -1;
    }

    if (strcmp(p->provider, "anthropic") == 0) {
        p->url = ngx_ai_relay_cli_probe_url(base, "/v1/messages");
        body = json_pack("{s:s,s:i,s:[{s:s,s:s}]}", "model", p->model,
                         "max_tokens", 1, "messages", "role", "user",
                         "content", "hi");

        if (p->key) {
            p->headers = curl_slist_append(p->headers,
                             ngx_ai_relay_cli_sprintf("x-api-key: %s",
                                                      p->key));
        }

        p->headers = curl_slist_append(p->headers, "anthropic-version: "
                                       NGX_AI_RELAY_CLI_ANTHROPIC_VERSION);

    } else if (strcmp(p->provider, "gemini") == 0) {
        model = p->model;

        if (strncmp(model, "models/", 7) == 0) {
            model += 7;
        }

        esc = curl_easy_escape(p->easy, model, 0);
        if (esc == NULL) {
            p->error = "cannot escape the model name";
            return -1;
        }

        p->url = ngx_ai_relay_cli_probe_url(base,
                     ngx_ai_relay_cli_sprintf(
                         "/v1beta/models/%s:generateContent", esc));
        curl_free(esc);

        body = json_pack("{s:[{s:s,s:[{s:s}]}],s:{s:i}}", "contents",
                         "role", "user", "parts", "text", "hi",
                         "generationConfig", "maxOutputTokens", 1);

        if (p->key) {
            p->headers = curl_slist_append(p->headers,
                             ngx_ai_relay_cli_sprintf("x-goog-api-key: %s",
                                                      p->key));
        }

    } else {
        p->url = ngx_ai_relay_cli_probe_url(base, "/v1/chat/completions");
        body = json_pack("{s:s,s:[{s:s,s:s}],s:i}", "model", p->model,
                         "messages", "role", "user", "content", "hi",
                         "max_tokens", 1);

        if (p->key) {
            p->headers = curl_slist_append(p->headers,
                             ngx_ai_relay_cli_sprintf(
                                 "Authorization: Bearer %s", p->key));
        }
    }

    p->headers = curl_slist_append(p->headers,
                                   "Content-Type: application/json");
    p->headers = curl_slist_append(p->headers, "Accept: application/json");

    esc = json_dumps(body, JSON_COMPACT);
    json_decref(body);

    if (esc == NULL || p->headers == NULL) {
        free(esc);
        p->error = "out of memory";
        return -1;
    }

    p->body = ngx_ai_relay_cli_strdup(esc);
    free(esc);

    curl_easy_setopt(p->easy, CURLOPT_URL, p->url);
#if (LIBCURL_VERSION_NUM >= 0x075500)
    curl_easy_setopt(p->easy, CURLOPT_PROTOCOLS_STR, "http,https");
#endif
    curl_easy_setopt(p->easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(p->easy, CURLOPT_POST, 1L);
    curl_easy_setopt(p->easy, CURLOPT_POSTFIELDS, p->body);
    curl_easy_setopt(p->easy, CURLOPT_POSTFIELDSIZE, (long) strlen(p->body));
    curl_easy_setopt(p->easy, CURLOPT_HTTPHEADER, p->headers);
    curl_easy_setopt(p->easy, CURLOPT_USERAGENT,
                     "ai-relay/" NGX_AI_RELAY_CLI_VERSION);
    curl_easy_setopt(p->easy, CURLOPT_TIMEOUT_MS, timeout * 1000);
    curl_easy_setopt(p->easy, CURLOPT_CONNECTTIMEOUT_MS, timeout * 1000);
    curl_easy_setopt(p->easy, CURLOPT_WRITEFUNCTION,
                     ngx_ai_relay_cli_probe_write);
    curl_easy_setopt(p->easy, CURLOPT_WRITEDATA, p);
    curl_easy_setopt(p->easy, CURLOPT_ERRORBUFFER, p->errbuf);
    curl_easy_setopt(p->easy, CURLOPT_PRIVATE, p);

    return 0;
}


static void
ngx_ai_relay_cli_probe_finish(ngx_ai_relay_cli_probe_t *p, CURLcode code)
{
    curl_off_t  us;

    us = 0;
    curl_easy_getinfo(p->easy, CURLINFO_TOTAL_TIME_T, &us);
    p->latency = (int64_t) (us / 1000);

    if (code != CURLE_OK) {
        p->error = ngx_ai_relay_cli_probe_clean(p, p->errbuf[0]
                                                ? p->errbuf
                                                : curl_easy_strerror(code),
                                                strlen(p->errbuf[0]
                                                ? p->errbuf
                                                : curl_easy_strerror(code)));

    } else {
        curl_easy_getinfo(p->easy, CURLINFO_RESPONSE_CODE, &p->status);

        if (p->status >= 200 && p->status < 300) {
            p->ok = 1;

        } else {
            ngx_ai_relay_cli_probe_error(p);
        }
    }

    p->done = 1;
}


/* runs the probes not yet done, at most a few at once */
static void
ngx_ai_relay_cli_probe_run(ngx_ai_relay_cli_probe_t *probes, size_t n)
{
    int                        running, left;
    size_t                     next, active;
    CURLM                     *multi;
    CURLMsg                   *msg;
    ngx_ai_relay_cli_probe_t  *p;

    multi = curl_multi_init();

    if (multi == NULL) {
        for (next = 0; next < n; next++) {
            if (!probes[next].done) {
                probes[next].error = "cannot start libcurl";
                probes[next].done = 1;
            }
        }

        return;
    }

    next = 0;
    active = 0;

    for ( ;; ) {

        while (active < NGX_AI_RELAY_CLI_PROBE_PARALLEL && next < n) {
            p = &probes[next++];

            if (p->done) {
                continue;
            }

            if (curl_multi_add_handle(multi, p->easy) != CURLM_OK) {
                p->error = "cannot start the request";
                p->done = 1;
                continue;
            }

            active++;
        }

        if (active == 0) {
            break;
        }

        if (curl_multi_perform(multi, &running) != CURLM_OK) {
            break;
        }

        while ((msg = curl_multi_info_read(multi, &left)) != NULL) {
            if (msg->msg != CURLMSG_DONE) {
                continue;
            }

            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &p);
            ngx_ai_relay_cli_probe_finish(p, msg->data.result);
            curl_multi_remove_handle(multi, p->easy);
            active--;
        }

        if (running && curl_multi_poll(multi, NULL, 0, 1000, NULL)
                       != CURLM_OK)
        {
            break;
        }
    }

    for (next = 0; next < n; next++) {
        p = &probes[next];

        if (!p->done) {
            curl_multi_remove_handle(multi, p->easy);
            p->error = "libcurl failed";
            p->done = 1;
        }
    }

    curl_multi_cleanup(multi);
}


static json_t *
ngx_ai_relay_cli_probe_json(ngx_ai_relay_cli_probe_t *p)
{
    return json_pack("{s:o,s:s,s:s,s:s,s:o,s:o,s:o,s:b,s:o,s:o,s:o,s:o}",
                     "channel", ngx_ai_relay_cli_json_int(p->channel),
                     "name", p->name,
                     "provider", p->provider,
                     "channel_status", p->channel_status,
                     "key", p->key ? json_string(p->masked) : json_null(),
                     "model", p->model ? json_string(p->model)
                                       : json_null(),
                     "url", p->url ? json_string(p->url) : json_null(),
                     "ok", (int) p->ok,
                     "status", p->status ? json_integer(p->status)
                                         : json_null(),
                     "latency_ms", p->easy ? json_integer(p->latency)
                                           : json_null(),
                     "error", p->error ? json_string(p->error)
                                       : json_null(),
                     "error_code", p->error_code
                                   ? json_string(p->error_code)
                                   : json_null());
}


static void
ngx_ai_relay_cli_probe_print(ngx_ai_relay_cli_probe_t *p)
{
    char  *name;

    name = strcmp(p->channel_status, "enabled") == 0
           ? (char *) p->name
           : ngx_ai_relay_cli_sprintf("%s (%s)", p->name, p->channel_status);

    printf("%-7s %s %-17s %s %s %6s %8s  %s%s%s\n", p->channel,
           ngx_ai_relay_cli_pad(name, 20), p->provider,
           ngx_ai_relay_cli_pad(p->key ? p->masked : "-", 14),
           ngx_ai_relay_cli_pad(p->model ? p->model : "-", 24),
           p->status ? ngx_ai_relay_cli_sprintf("%ld", p->status) : "-",
           p->easy ? ngx_ai_relay_cli_sprintf("%" PRId64 " ms", p->latency)
                   : "-",
           p->ok ? "ok" : "",
           p->error_code ? p->error_code : "",
           p->error ? ngx_ai_relay_cli_sprintf("%s%s",
                                               p->error_code ? ": " : "",
                                               p->error)
                    : "");
}


int
ngx_ai_relay_cli_channels_test(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_args_t *args)
{
    size_t                     i, k, n, nfailed;
    json_t                    *hashes, *h, *models, *out;
    int64_t                    timeout;
    const char                *v, *want, *base, *provider;
    ngx_ai_relay_cli_list_t    ids, hkeys, keys, names;
    ngx_ai_relay_cli_probe_t  *probes, *p;

    memset(&ids, 0, sizeof(ids));

    if (ngx_ai_relay_cli_opt_has(args, "all") == (args->pos.nelts == 1)) {
        return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_USAGE,
                                      "give a channel ID or --all");
    }

    timeout = NGX_AI_RELAY_CLI_PROBE_TIMEOUT;
    v = ngx_ai_relay_cli_opt(args, "timeout");

    if (v && ngx_ai_relay_cli_parse_int(v, 1, 600, &timeout) != 0) {
        return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_REJECTED,
                                      "invalid --timeout \"%s\" (1 to 600 "
                                      "seconds)", v);
    }

    want = ngx_ai_relay_cli_opt(args, "model");

    if (want && !ngx_ai_relay_cli_valid_name(want)) {
        return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_REJECTED,
                                      "invalid --model \"%s\"", want);
    }

    if (args->pos.nelts == 1 && !ngx_ai_relay_cli_is_id(args->pos.elts[0])) {
        return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_REJECTED,
                                      "invalid channel id \"%s\"",
                                      args->pos.elts[0]);
    }

    if (ngx_ai_relay_cli_connect(cli) != NGX_AI_RELAY_CLI_OK) {
        return cli->failed_rc;
    }

    if (args->pos.nelts == 1) {
        ngx_ai_relay_cli_list_push(&ids, args->pos.elts[0]);

    } else {
        ngx_ai_relay_cli_smembers(cli, NGX_AI_RELAY_RKEY_CHANNELS, &ids);
        ngx_ai_relay_cli_list_sort_num(&ids);
    }

    memset(&hkeys, 0, sizeof(hkeys));

    for (i = 0; i < ids.nelts; i++) {
        ngx_ai_relay_cli_list_push(&hkeys, ngx_ai_relay_cli_sprintf(
                                       NGX_AI_RELAY_RKEY_CHANNEL("%s"),
                                       ids.elts[i]));
    }

    hashes = ngx_ai_relay_cli_hgetall_many(cli, &hkeys);

    if (args->pos.nelts == 1 && json_is_null(json_array_get(hashes, 0))) {
        json_decref(hashes);
        return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_REJECTED,
                                      "no channel %s", ids.elts[0]);
    }

    memset(&names, 0, sizeof(names));
    models = want ? json_array() : ngx_ai_relay_cli_models_load(cli, &names);

    /* one probe per key (one without a key for a keyless channel) */

    n = 0;

    json_array_foreach(hashes, i, h) {
        memset(&keys, 0, sizeof(keys));
        ngx_ai_relay_cli_list_split(&keys, ngx_ai_relay_cli_hstr(h, "keys"),
                                    "\n");
        n += keys.nelts ? keys.nelts : 1;
    }

    probes = ngx_ai_relay_cli_alloc((n + 1)
                                    * sizeof(ngx_ai_relay_cli_probe_t));
    memset(probes, 0, (n + 1) * sizeof(ngx_ai_relay_cli_probe_t));

    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        json_decref(models);
        json_decref(hashes);
        return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_FAILED,
                                      "cannot initialize libcurl");
    }

    n = 0;

    json_array_foreach(hashes, i, h) {
        if (json_is_null(h)) {
            continue;
        }

        memset(&keys, 0, sizeof(keys));
        ngx_ai_relay_cli_list_split(&keys, ngx_ai_relay_cli_hstr(h, "keys"),
                                    "\n");

        provider = ngx_ai_relay_cli_hstr(h, "provider");
        base = ngx_ai_relay_cli_hstr(h, "base_url");

        if (base[0] == '\0') {
            base = ngx_ai_relay_cli_provider_base_url(provider);
        }

        for (k = 0; k < keys.nelts || (k == 0 && keys.nelts == 0); k++) {
            p = &probes[n++];

            p->channel = ids.elts[i];
            p->name = ngx_ai_relay_cli_hstr(h, "name");
            p->provider = provider;
            p->channel_status = ngx_ai_relay_cli_hval(h, "status")
                                ? ngx_ai_relay_cli_hstr(h, "status")
                                : "enabled";
            p->key = keys.nelts ? keys.elts[k] : NULL;
            p->masked = p->key ? ngx_ai_relay_cli_mask(p->key) : NULL;
            p->model = ngx_ai_relay_cli_probe_model(ids.elts[i], h, want,
                                                    &names, models);

            if (!ngx_ai_relay_cli_valid_provider(provider)) {
                p->error = ngx_ai_relay_cli_sprintf("unknown provider "
                                                    "\"%s\"", provider);
                p->done = 1;

            } else if (base == NULL || base[0] == '\0') {
                p->error = "the channel has no base_url";
                p->done = 1;

            } else if (p->model == NULL) {
                p->error = "no model routes to this channel; give --model";
                p->done = 1;

            } else if (ngx_ai_relay_cli_probe_prepare(p, base, timeout)
                       != 0)
            {
                p->done = 1;
            }
        }
    }

    ngx_ai_relay_cli_probe_run(probes, n);

    /* the results, in channel and key order */

    nfailed = 0;
    out = json_array();

    if (!cli->json) {
        printf("%-7s %-20s %-17s %-14s %-24s %6s %8s  %s\n", "CHANNEL",
               "NAME", "PROVIDER", "KEY", "MODEL", "STATUS", "LATENCY",
               "RESULT");
    }

    for (i = 0; i < n; i++) {
        p = &probes[i];
        nfailed += !p->ok;

        if (cli->json) {
            json_array_append_new(out, ngx_ai_relay_cli_probe_json(p));

        } else {
            ngx_ai_relay_cli_probe_print(p);
        }

        if (p->easy) {
            curl_easy_cleanup(p->easy);
        }

        curl_slist_free_all(p->headers);
    }

    if (cli->json) {
        ngx_ai_relay_cli_print_json(out);

    } else {
        printf("%zu test%s, %zu failed\n", n, n == 1 ? "" : "s", nfailed);
    }

    json_decref(out);
    json_decref(models);
    json_decref(hashes);
    curl_global_cleanup();

    if (nfailed) {
        fprintf(stderr, "ai-relay: %zu of %zu channel test%s failed\n",
                nfailed, n, n == 1 ? "" : "s");
        return NGX_AI_RELAY_CLI_REJECTED;
    }

    return NGX_AI_RELAY_CLI_OK;
}
