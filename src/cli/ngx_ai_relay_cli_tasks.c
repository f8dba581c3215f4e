
/*
 * Copyright (C) ngx_ai_relay authors
 *
 * ai-relay tasks: the async tasks (videos) a user submitted, as the relay
 * keeps them for polls and refunds, and the reconciling pass that polls
 * the unfinished ones nobody asks about.
 *
 *   ar:{u<uid>}:task:<id>   hash  channel model key key_id cost charged
 *                                 request created [status history
 *                                 completed refunded]
 *   ar:{u<uid>}:tasks:open  zset  the unfinished ones, by creation time
 *
 * The reconciling pass polls each task's channel itself (libcurl, GET
 * {base}/v1/videos/{id} with the channel's first key, never shown) and
 * hands the status to the module's own REFUND script, whose
 * exactly-once claim makes a client's poll and this pass refund once.
 */


#include <curl/curl.h>

#include "ngx_ai_relay_cli.h"
#include "ngx_ai_relay_cli_scripts.h"
#include "ngx_ai_relay_vtask.h"


#define NGX_AI_RELAY_CLI_TASK_BODY_MAX   65536
#define NGX_AI_RELAY_CLI_TASK_TIMEOUT    30
#define NGX_AI_RELAY_CLI_TASK_EXPIRE     86400
#define NGX_AI_RELAY_CLI_RECORDS_MAX     "100000"


static int ngx_ai_relay_cli_tasks_list(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_args_t *args);
static int ngx_ai_relay_cli_tasks_show(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_args_t *args);
static int ngx_ai_relay_cli_tasks_reconcile(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_args_t *args);
static void ngx_ai_relay_cli_task_history(json_t *h);


static const ngx_ai_relay_cli_opt_t  ngx_ai_relay_cli_tasks_opts[] = {
    { "user", 1, 0 },
    { NULL, 0, 0 }
};


static const ngx_ai_relay_cli_opt_t  ngx_ai_relay_cli_reconcile_opts[] = {
    { "user", 1, 0 },
    { "older-than", 1, 0 },
    { "expire-after", 1, 0 },
    { "timeout", 1, 0 },
    { "records-max", 1, 0 },
    { "dry-run", 0, 0 },
    { NULL, 0, 0 }
};


ngx_ai_relay_cli_command_t  ngx_ai_relay_cli_tasks_commands[] = {

    { "tasks", "list", ngx_ai_relay_cli_tasks_list,
      ngx_ai_relay_cli_tasks_opts, 0, 0,
      "tasks list --user USER",
      "The video tasks of a user the relay keeps (30 days): id, model,\n"
      "channel, cost, state (the last status seen; refunded or not).\n" },

    { "tasks", "show", ngx_ai_relay_cli_tasks_show,
      ngx_ai_relay_cli_tasks_opts, 1, 1,
      "tasks show --user USER ID",
      "One video task of a user, every field, and the statuses seen.\n" },

    { "tasks", "reconcile", ngx_ai_relay_cli_tasks_reconcile,
      ngx_ai_relay_cli_reconcile_opts, 0, 0,
      "tasks reconcile [--user USER] [--older-than DUR] [--expire-after DUR]\n"
      "                [--timeout S] [--records-max N] [--dry-run]",
      "Polls the unfinished video tasks (of one user, or of all) on their\n"
      "channels, with the channel's first key, and records what each\n"
      "upstream says, as a client's poll would: a task failed or cancelled\n"
      "upstream gets its charge back, once (the module's REFUND script: a\n"
      "client's poll and this pass racing refund once); a completed task\n"
      "is only recorded; a task still unfinished (or unknown upstream) past\n"
      "its deadline is expired and refunded once.  The deadline is the\n"
      "upstream's expires_at when the task has one, else its creation time\n"
      "plus --expire-after (default 24h).  Ended tasks leave the index of\n"
      "unfinished ones.  A task whose channel did not answer is left as it\n"
      "is (exit code 1).\n"
      "  --older-than DUR    only tasks created at least DUR ago (0)\n"
      "  --expire-after DUR  30s, 15m, 24h, 7d or seconds (24h)\n"
      "  --timeout S         per poll (30)\n"
      "  --records-max N     records kept, as ai_relay_records_max (100000)\n"
      "  --dry-run           poll and print, change nothing\n" },

    { NULL, NULL, NULL, NULL, 0, 0, NULL, NULL }
};


static const char *
ngx_ai_relay_cli_task_state(json_t *h)
{
    const char  *st;

    st = ngx_ai_relay_cli_hstr(h, "status");

    if (strcmp(ngx_ai_relay_cli_hstr(h, "refunded"), "1") == 0) {
        return ngx_ai_relay_cli_sprintf("%s, refunded",
                                        st[0] ? st : "failed");
    }

    return st[0] ? st : "charged";
}


/* "24h", "15m", "30s", "7d" or seconds: 0, or -1 */

static int
ngx_ai_relay_cli_duration(const char *s, int64_t *out)
{
    size_t   len;
    int64_t  unit;

    len = strlen(s);
    unit = 1;

    if (len > 1 && ngx_ai_relay_cli_unit_seconds(s[len - 1])) {
        unit = ngx_ai_relay_cli_unit_seconds(s[len - 1]);
        len--;
    }

    if (ngx_ai_relay_cli_parse_int(ngx_ai_relay_cli_strndup(s, len), 0,
                                   3650LL * 86400, out)
        != 0)
    {
        return -1;
    }

    *out *= unit;

    return 0;
}


static int
ngx_ai_relay_cli_tasks_user(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_args_t *args, char **uid)
{
    const char  *user;

    user = ngx_ai_relay_cli_opt(args, "user");

    if (user == NULL) {
        return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_USAGE,
                                      "--user is required");
    }

    if (ngx_ai_relay_cli_connect(cli) != NGX_AI_RELAY_CLI_OK) {
        return cli->failed_rc;
    }

    return ngx_ai_relay_cli_find_user(cli, user, uid, NULL);
}


static int
ngx_ai_relay_cli_tasks_list(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_args_t *args)
{
    int                      rc;
    char                    *uid, *cursor, *pattern;
    size_t                   i, plen;
    json_t                  *hashes, *h, *out, *j;
    redisReply              *r, *keys;
    ngx_ai_relay_cli_list_t  names, full;

    rc = ngx_ai_relay_cli_tasks_user(cli, args, &uid);
    if (rc != NGX_AI_RELAY_CLI_OK) {
        return rc;
    }

    memset(&names, 0, sizeof(names));
    memset(&full, 0, sizeof(full));

    pattern = ngx_ai_relay_cli_sprintf(NGX_AI_RELAY_RKEY_TASK("%s", "*"), uid);
    plen = strlen(pattern) - 1;
    cursor = "0";

    do {
        r = ngx_ai_relay_cli_runv(cli, "SCAN", cursor, "MATCH", pattern,
                                  "COUNT", "1000", NULL);

        cursor = ngx_ai_relay_cli_strdup(r->element[0]->str);
        keys = r->element[1];

        for (i = 0; i < keys->elements; i++) {
            if (keys->element[i]->len > plen
                && !ngx_ai_relay_cli_list_has(&names,
                                              keys->element[i]->str + plen))
            {
                ngx_ai_relay_cli_list_push(&names, ngx_ai_relay_cli_strdup(
                                           keys->element[i]->str + plen));
            }
        }

        freeReplyObject(r);

    } while (strcmp(cursor, "0") != 0);

    ngx_ai_relay_cli_list_sort(&names);

    for (i = 0; i < names.nelts; i++) {
        ngx_ai_relay_cli_list_push(&full, ngx_ai_relay_cli_sprintf(
                                   NGX_AI_RELAY_RKEY_TASK("%s", "%s"), uid,
                                   names.elts[i]));
    }

    hashes = ngx_ai_relay_cli_hgetall_many(cli, &full);
    out = json_array();

    if (!cli->json) {
        printf("%-32s %-20s %-8s %12s %-17s %s\n", "ID", "MODEL", "CHANNEL",
               "COST", "STATE", "CREATED");
    }

    json_array_foreach(hashes, i, h) {
        if (json_is_null(h)) {
            continue;
        }

        if (cli->json) {
            j = json_object();
            json_object_set_new(j, "id", json_string(names.elts[i]));
            json_object_set_new(j, "model",
                                json_string(ngx_ai_relay_cli_hstr(h, "model")));
            json_object_set_new(j, "channel", json_string(
                                    ngx_ai_relay_cli_hstr(h, "channel")));
            json_object_set_new(j, "cost", json_integer(
                                    ngx_ai_relay_cli_hint(h, "cost", 0)));
            json_object_set_new(j, "charged", json_integer(
                                    ngx_ai_relay_cli_hint(h, "charged", 0)));
            json_object_set_new(j, "refunded", json_boolean(
                strcmp(ngx_ai_relay_cli_hstr(h, "refunded"), "1") == 0));
            json_object_set_new(j, "status", json_string(
                                    ngx_ai_relay_cli_hstr(h, "status")));
            json_object_set_new(j, "created", json_integer(
                                    ngx_ai_relay_cli_hint(h, "created", 0)));
            json_array_append_new(out, j);
            continue;
        }

        printf("%-32s %-20s %-8s %12s %-17s %s\n", names.elts[i],
               ngx_ai_relay_cli_hstr(h, "model"),
               ngx_ai_relay_cli_hstr(h, "channel"),
               ngx_ai_relay_cli_usd(ngx_ai_relay_cli_hint(h, "cost", 0)),
               ngx_ai_relay_cli_task_state(h),
               ngx_ai_relay_cli_time_str(
                   (time_t) ngx_ai_relay_cli_hint(h, "created", 0)));
    }

    if (cli->json) {
        ngx_ai_relay_cli_print_json(out);
    }

    json_decref(out);
    json_decref(hashes);

    return NGX_AI_RELAY_CLI_OK;
}


static int
ngx_ai_relay_cli_tasks_show(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_args_t *args)
{
    int          rc;
    char        *uid;
    json_t      *h, *v;
    const char  *f;

    rc = ngx_ai_relay_cli_tasks_user(cli, args, &uid);
    if (rc != NGX_AI_RELAY_CLI_OK) {
        return rc;
    }

    h = ngx_ai_relay_cli_hgetall(cli, ngx_ai_relay_cli_sprintf(
                                      NGX_AI_RELAY_RKEY_TASK("%s", "%s"), uid,
                                      args->pos.elts[0]));
    if (h == NULL) {
        return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_REJECTED,
                                      "no task \"%s\" of user %s",
                                      args->pos.elts[0], uid);
    }

    if (cli->json) {
        json_object_set_new(h, "id", json_string(args->pos.elts[0]));
        ngx_ai_relay_cli_print_json(h);

    } else {
        printf("id:         %s\n", args->pos.elts[0]);
        printf("state:      %s\n", ngx_ai_relay_cli_task_state(h));
        printf("cost:       %s\n",
               ngx_ai_relay_cli_usd(ngx_ai_relay_cli_hint(h, "cost", 0)));
        printf("created:    %s\n", ngx_ai_relay_cli_time_str(
                   (time_t) ngx_ai_relay_cli_hint(h, "created", 0)));

        ngx_ai_relay_cli_task_history(h);

        json_object_foreach(h, f, v) {
            if (strcmp(f, "cost") != 0 && strcmp(f, "created") != 0
                && strcmp(f, "history") != 0)
            {
                printf("  %-16s %s\n", f, json_string_value(v));
            }
        }
    }

    json_decref(h);

    return NGX_AI_RELAY_CLI_OK;
}


/* the statuses REFUND recorded, "<time>:<status>" each, oldest first */

static void
ngx_ai_relay_cli_task_history(json_t *h)
{
    char        *hist, *e, *colon, *save;
    int64_t      t;

    hist = ngx_ai_relay_cli_strdup(ngx_ai_relay_cli_hstr(h, "history"));

    if (hist[0] == '\0') {
        return;
    }

    printf("history:\n");

    for (e = strtok_r(hist, " ", &save); e; e = strtok_r(NULL, " ", &save)) {
        colon = strchr(e, ':');

        if (colon == NULL) {
            continue;
        }

        *colon = '\0';

        if (ngx_ai_relay_cli_parse_int(e, 0, INT64_MAX, &t) != 0) {
            continue;
        }

        printf("  %-24s %s\n", ngx_ai_relay_cli_time_str((time_t) t),
               colon + 1);
    }
}


typedef struct {
    const char              *uid;
    const char              *id;
    json_t                  *task;
    const char              *channel;
    long                     http;       /* 0: no HTTP answer */
    const char              *seen;      /* the upstream's status, or NULL */
    int64_t                  expires_at;
    const char              *final;     /* what REFUND is told, or NULL */
    const char              *action;
    const char              *error;
    int64_t                  refunded;
} ngx_ai_relay_cli_recon_t;


static size_t
ngx_ai_relay_cli_recon_write(char *data, size_t size, size_t n, void *ctx)
{
    size_t                   len;
    ngx_ai_relay_cli_buf_t  *b;

    b = ctx;
    len = size * n;

    if (b->len < NGX_AI_RELAY_CLI_TASK_BODY_MAX) {
        ngx_ai_relay_cli_buf_add(b, data,
                 len < NGX_AI_RELAY_CLI_TASK_BODY_MAX - b->len
                 ? len : NGX_AI_RELAY_CLI_TASK_BODY_MAX - b->len);
    }

    return len;
}


static int
ngx_ai_relay_cli_task_ended(const char *st)
{
    return ngx_ai_relay_vtask_end((const unsigned char *) st, strlen(st))
           != NGX_AI_RELAY_VTASK_RUNNING;
}


/*
 * GET {base}/v1/videos/{id} (or the poll path of the task's API) on the
 * task's channel, with its first key
 */

static void
ngx_ai_relay_cli_recon_poll(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_recon_t *t, long timeout)
{
    char                            *url, *key, *nl, *dot;
    char                             errbuf[CURL_ERROR_SIZE];
    size_t                           n;
    CURL                            *easy;
    json_t                          *ch, *body, *v;
    CURLcode                         code;
    const char                      *base, *name;
    json_error_t                     jerr;
    unsigned char                    word[NGX_AI_RELAY_VTASK_WORD_MAX];
    struct curl_slist               *headers;
    ngx_ai_relay_cli_buf_t           resp;
    const ngx_ai_relay_vtask_api_t  *api;

    name = ngx_ai_relay_cli_hstr(t->task, "api");
    api = ngx_ai_relay_vtask_api(name, strlen(name));

    if (api == NULL) {
        t->error = ngx_ai_relay_cli_sprintf("the task's API \"%s\" is not "
                                            "one this version knows", name);
        return;
    }

    ch = ngx_ai_relay_cli_hgetall(cli, ngx_ai_relay_cli_sprintf(
                                       NGX_AI_RELAY_RKEY_CHANNEL("%s"),
                                       t->channel));
    if (ch == NULL) {
        t->error = ngx_ai_relay_cli_sprintf("channel %s is gone",
                                            t->channel);
        return;
    }

    /* the channel's hash is freed below: copies */

    base = ngx_ai_relay_cli_strdup(ngx_ai_relay_cli_hstr(ch, "base_url"));

    if (base[0] == '\0') {
        base = ngx_ai_relay_cli_provider_base_url(
                   ngx_ai_relay_cli_hstr(ch, "provider"));
    }

    key = ngx_ai_relay_cli_strdup(ngx_ai_relay_cli_hstr(ch, "keys"));
    nl = strchr(key, '\n');
    if (nl) {
        *nl = '\0';
    }

    json_decref(ch);

    if (base == NULL || base[0] == '\0' || key[0] == '\0') {
        t->error = ngx_ai_relay_cli_sprintf("channel %s has no base_url or "
                                            "no key", t->channel);
        return;
    }

    url = ngx_ai_relay_cli_probe_url(base, ngx_ai_relay_cli_sprintf(
                                               "%s%s", api->poll, t->id));

    easy = curl_easy_init();
    if (easy == NULL) {
        t->error = "libcurl failed";
        return;
    }

    memset(&resp, 0, sizeof(resp));
    errbuf[0] = '\0';

    headers = curl_slist_append(NULL, ngx_ai_relay_cli_sprintf(
                                    "Authorization: Bearer %s", key));
    headers = curl_slist_append(headers, "Accept: application/json");

    curl_easy_setopt(easy, CURLOPT_URL, url);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
#endif
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(easy, CURLOPT_USERAGENT,
                     "ai-relay/" NGX_AI_RELAY_CLI_VERSION);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, timeout * 1000);
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, timeout * 1000);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION,
                     ngx_ai_relay_cli_recon_write);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, &resp);
    curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, errbuf);

    code = curl_easy_perform(easy);

    if (code != CURLE_OK) {
        /* libcurl's messages name the host, never the key */
        t->error = ngx_ai_relay_cli_strdup(errbuf[0] ? errbuf
                                           : curl_easy_strerror(code));

    } else {
        curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &t->http);
    }

    curl_slist_free_all(headers);
    curl_easy_cleanup(easy);

    if (t->http >= 200 && t->http < 300) {
        body = resp.len ? json_loadb(resp.data, resp.len, 0, &jerr) : NULL;

        /* "status", or "output.task_status": one level down */

        dot = strchr(api->status, '.');
        v = body;

        if (dot) {
            v = v ? json_object_get(v, ngx_ai_relay_cli_strndup(
                                           api->status, dot - api->status))
                  : NULL;
        }

        v = json_is_object(v) ? json_object_get(v, dot ? dot + 1
                                                       : api->status)
                              : NULL;

        n = json_is_string(v)
            ? ngx_ai_relay_vtask_normal((const unsigned char *)
                                        json_string_value(v),
                                        json_string_length(v), word)
            : 0;

        if (n) {
            t->seen = ngx_ai_relay_cli_strndup((const char *) word, n);

        } else {
            t->error = "the upstream's answer has no status";
        }

        v = body ? json_object_get(body, "expires_at") : NULL;

        if (json_is_integer(v)) {
            t->expires_at = json_integer_value(v);
        }

        json_decref(body);

    } else if (t->http != 0 && t->http != 404) {
        t->error = ngx_ai_relay_cli_sprintf("the upstream answered %ld",
                                            t->http);
    }
}


/* REFUND, as the module runs it for a poll: -> its reply */

static redisReply *
ngx_ai_relay_cli_recon_refund(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_recon_t *t, const char *records_max)
{
    char        *rec, *pre;
    json_t      *j;
    struct tm    tm;
    const char  *keys[5], *argv[5];

    pre = ngx_ai_relay_cli_sprintf(NGX_AI_RELAY_RKEY_U("%s"), t->uid);
    gmtime_r(&cli->now, &tm);

    keys[0] = ngx_ai_relay_cli_sprintf(NGX_AI_RELAY_RKEY_USER("%s"), t->uid);
    keys[1] = ngx_ai_relay_cli_sprintf(NGX_AI_RELAY_RKEY_TASK("%s", "%s"),
                                       t->uid, t->id);
    keys[2] = ngx_ai_relay_cli_sprintf(NGX_AI_RELAY_RKEY_LOG("%s"), t->uid);
    keys[3] = ngx_ai_relay_cli_sprintf(NGX_AI_RELAY_RKEY_STATS("%s",
                                           "%04d%02d%02d"),
                                       t->uid, tm.tm_year + 1900,
                                       tm.tm_mon + 1, tm.tm_mday);
    keys[4] = ngx_ai_relay_cli_sprintf(NGX_AI_RELAY_RKEY_TASKS_OPEN("%s"),
                                       t->uid);

    /* the refund's record without its end: REFUND adds the cost */

    j = json_object();
    json_object_set_new(j, "time", json_integer((json_int_t) cli->now * 1000));
    json_object_set_new(j, "request_id", json_string(
                            ngx_ai_relay_cli_sprintf("reconcile-%lld",
                                                     (long long) cli->now)));
    json_object_set_new(j, "task", json_string(t->id));
    json_object_set_new(j, "task_status", json_string(t->final));
    json_object_set_new(j, "status", json_integer(200));
    json_object_set_new(j, "usage_source", json_string("refund"));
    json_object_set_new(j, "model", json_string(
                            ngx_ai_relay_cli_hstr(t->task, "model")));
    json_object_set_new(j, "channel", json_string(t->channel));
    json_object_set_new(j, "key_id", json_string(
                            ngx_ai_relay_cli_hstr(t->task, "key_id")));

    rec = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(j);

    /* "{...}" -> "{...,\"cost\":" */
    rec[strlen(rec) - 1] = '\0';

    argv[0] = pre;
    argv[1] = records_max;
    argv[2] = ngx_ai_relay_cli_sprintf("%s,\"cost\":", rec);
    argv[3] = t->final;
    argv[4] = ngx_ai_relay_cli_sprintf("%lld", (long long) cli->now);

    free(rec);

    return ngx_ai_relay_cli_eval(cli, NGX_AI_RELAY_SCRIPT_REFUND_SRC, 5, keys,
                                 5, argv);
}


static void
ngx_ai_relay_cli_recon_task(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_recon_t *t, int64_t score, int64_t expire_after,
    long timeout, int dry_run, const char *records_max)
{
    int64_t      created, charged;
    redisReply  *r;

    t->task = ngx_ai_relay_cli_hgetall(cli, ngx_ai_relay_cli_sprintf(
                                           NGX_AI_RELAY_RKEY_TASK("%s", "%s"),
                                           t->uid, t->id));

    if (t->task == NULL) {
        /* expired after its 30 days, or removed: nothing to poll */

        if (!dry_run) {
            freeReplyObject(ngx_ai_relay_cli_runv(cli, "ZREM",
                ngx_ai_relay_cli_sprintf(NGX_AI_RELAY_RKEY_TASKS_OPEN("%s"),
                                         t->uid),
                t->id, NULL));
        }

        t->action = dry_run ? "would drop: no task hash" : "dropped: no task "
                                                            "hash";
        return;
    }

    t->channel = ngx_ai_relay_cli_strdup(ngx_ai_relay_cli_hstr(t->task,
                                                               "channel"));
    created = ngx_ai_relay_cli_hint(t->task, "created", score);
    charged = ngx_ai_relay_cli_hint(t->task, "charged", 0);

    ngx_ai_relay_cli_recon_poll(cli, t, timeout);

    if (t->error && t->http == 0 && t->seen == NULL
        && strncmp(t->error, "channel ", 8) != 0)
    {
        /* no answer: the task may be fine, it is left as it is */
        t->action = "left: no answer";
        return;
    }

    if (t->error && t->seen == NULL && t->http != 0 && t->http != 404) {
        t->action = "left: upstream error";
        return;
    }

    t->final = ngx_ai_relay_vtask_verdict(t->seen, cli->now, created,
                                          t->expires_at, expire_after);

    if (t->final == NULL) {
        t->action = "left: unknown upstream, not expired yet";
        return;
    }

    if (dry_run) {
        if (strcmp(t->final, "completed") != 0
            && ngx_ai_relay_cli_task_ended(t->final)
            && strcmp(ngx_ai_relay_cli_hstr(t->task, "refunded"), "1") != 0
            && ngx_ai_relay_cli_hstr(t->task, "completed")[0] == '\0')
        {
            t->action = ngx_ai_relay_cli_sprintf("would refund %s (%s)",
                            ngx_ai_relay_cli_usd(charged), t->final);

        } else {
            t->action = ngx_ai_relay_cli_sprintf("would record %s", t->final);
        }

        return;
    }

    r = ngx_ai_relay_cli_recon_refund(cli, t, records_max);

    if (r->type == REDIS_REPLY_ARRAY && r->elements == 3
        && r->element[0]->integer == 1)
    {
        t->refunded = r->element[1]->integer;
        t->action = ngx_ai_relay_cli_sprintf("refunded %s (%s)",
                        ngx_ai_relay_cli_usd(t->refunded), t->final);

    } else if (r->type == REDIS_REPLY_ARRAY && r->elements == 3
               && r->element[2]->integer == 1)
    {
        t->action = ngx_ai_relay_cli_sprintf("recorded %s", t->final);

    } else {
        t->action = ngx_ai_relay_cli_sprintf("unchanged (%s)", t->final);
    }

    freeReplyObject(r);
}


static int
ngx_ai_relay_cli_tasks_reconcile(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_args_t *args)
{
    int                        rc, dry_run;
    char                      *uid;
    size_t                     i, j, n, nerr, nref;
    json_t                    *out, *o;
    int64_t                    older, expire, timeout, total, rmax;
    redisReply                *r;
    const char                *v, *user, *records_max;
    ngx_ai_relay_cli_list_t    users;
    ngx_ai_relay_cli_recon_t   t;

    older = 0;
    expire = NGX_AI_RELAY_CLI_TASK_EXPIRE;
    timeout = NGX_AI_RELAY_CLI_TASK_TIMEOUT;
    records_max = NGX_AI_RELAY_CLI_RECORDS_MAX;

    v = ngx_ai_relay_cli_opt(args, "older-than");
    if (v && ngx_ai_relay_cli_duration(v, &older) != 0) {
        return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_USAGE,
                                      "invalid --older-than \"%s\"", v);
    }

    v = ngx_ai_relay_cli_opt(args, "expire-after");
    if (v && (ngx_ai_relay_cli_duration(v, &expire) != 0 || expire == 0)) {
        return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_USAGE,
                                      "invalid --expire-after \"%s\"", v);
    }

    v = ngx_ai_relay_cli_opt(args, "timeout");
    if (v && ngx_ai_relay_cli_parse_int(v, 1, 600, &timeout) != 0) {
        return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_USAGE,
                                      "invalid --timeout \"%s\"", v);
    }

    v = ngx_ai_relay_cli_opt(args, "records-max");
    if (v) {
        if (ngx_ai_relay_cli_parse_int(v, 1, INT32_MAX, &rmax) != 0) {
            return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_USAGE,
                                          "invalid --records-max \"%s\"", v);
        }

        records_max = v;
    }

    dry_run = ngx_ai_relay_cli_opt_has(args, "dry-run");

    if (ngx_ai_relay_cli_connect(cli) != NGX_AI_RELAY_CLI_OK) {
        return cli->failed_rc;
    }

    memset(&users, 0, sizeof(users));

    user = ngx_ai_relay_cli_opt(args, "user");

    if (user) {
        rc = ngx_ai_relay_cli_find_user(cli, user, &uid, NULL);
        if (rc != NGX_AI_RELAY_CLI_OK) {
            return rc;
        }

        ngx_ai_relay_cli_list_push(&users, uid);

    } else {
        ngx_ai_relay_cli_user_ids(cli, &users);
    }

    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_FAILED,
                                      "libcurl could not be initialized");
    }

    out = json_array();
    n = nerr = nref = 0;
    total = 0;

    if (!cli->json) {
        printf("%-6s %-32s %-8s %-6s %-12s %s\n", "USER", "ID", "CHANNEL",
               "HTTP", "UPSTREAM", "ACTION");
    }

    for (i = 0; i < users.nelts; i++) {
        r = ngx_ai_relay_cli_runv(cli, "ZRANGEBYSCORE",
                ngx_ai_relay_cli_sprintf(NGX_AI_RELAY_RKEY_TASKS_OPEN("%s"),
                                         users.elts[i]),
                "-inf",
                ngx_ai_relay_cli_sprintf("%lld",
                                         (long long) (cli->now - older)),
                "WITHSCORES", NULL);

        for (j = 0; j + 1 < r->elements; j += 2) {
            memset(&t, 0, sizeof(t));
            t.uid = users.elts[i];
            t.id = ngx_ai_relay_cli_strdup(r->element[j]->str);

            ngx_ai_relay_cli_recon_task(cli, &t,
                                        (int64_t) atoll(r->element[j + 1]->str),
                                        expire, (long) timeout, dry_run,
                                        records_max);
            n++;

            if (t.error && strncmp(t.action, "left", 4) == 0) {
                nerr++;
            }

            if (t.refunded || strncmp(t.action, "refunded", 8) == 0) {
                nref++;
                total += t.refunded;
            }

            if (cli->json) {
                o = json_object();
                json_object_set_new(o, "user", json_string(t.uid));
                json_object_set_new(o, "id", json_string(t.id));
                json_object_set_new(o, "channel", t.channel
                                    ? json_string(t.channel) : json_null());
                json_object_set_new(o, "http", json_integer(t.http));
                json_object_set_new(o, "upstream_status", t.seen
                                    ? json_string(t.seen) : json_null());
                json_object_set_new(o, "status", t.final
                                    ? json_string(t.final) : json_null());
                json_object_set_new(o, "action", json_string(t.action));
                json_object_set_new(o, "refunded", json_integer(t.refunded));
                json_object_set_new(o, "error", t.error
                                    ? json_string(t.error) : json_null());
                json_array_append_new(out, o);

            } else {
                printf("%-6s %-32s %-8s %-6s %-12s %s%s%s\n", t.uid, t.id,
                       t.channel ? t.channel : "-",
                       t.http ? ngx_ai_relay_cli_sprintf("%ld", t.http) : "-",
                       t.seen ? t.seen : "-", t.action,
                       t.error ? ": " : "", t.error ? t.error : "");
            }

            json_decref(t.task);
        }

        freeReplyObject(r);
    }

    curl_global_cleanup();

    if (cli->json) {
        ngx_ai_relay_cli_print_json(out);

    } else {
        printf("%zu tasks polled, %zu refunded (%s), %zu left for an "
               "upstream that did not answer%s\n", n, nref,
               ngx_ai_relay_cli_usd(total), nerr,
               dry_run ? " (dry run: nothing changed)" : "");
    }

    json_decref(out);

    if (nerr) {
        return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_REJECTED,
                                      "%zu of %zu tasks could not be polled",
                                      nerr, n);
    }

    return NGX_AI_RELAY_CLI_OK;
}
