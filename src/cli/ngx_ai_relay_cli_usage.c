
/*
 * Copyright (C) ngx_ai_relay authors
 *
 * ai-relay usage: totals from the daily counters (by channel: from the
 * request records, the counters have no channel).
 * ai-relay records: the per-request records, for support tickets.
 *
 *   ar:{u<uid>}:stats:<yyyymmdd>  hash    requests errors prompt_tokens
 *                                         completion_tokens cost, also as
 *                                         key:<kid>:<counter> and
 *                                         model:<model>:<counter>
 *   ar:{u<uid>}:log               stream  one record per request
 */


#include "ngx_ai_relay_cli.h"


#define NGX_AI_RELAY_CLI_COUNTERS   5
#define NGX_AI_RELAY_CLI_MAX_DAYS   400


static int ngx_ai_relay_cli_usage(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_args_t *args);
static json_t *ngx_ai_relay_cli_entry_records(redisReply *e);
static char *ngx_ai_relay_cli_record_channel(json_t *rec);
static int ngx_ai_relay_cli_records(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_args_t *args);


static const char  *ngx_ai_relay_cli_counters[NGX_AI_RELAY_CLI_COUNTERS] = {
    "requests", "errors", "prompt_tokens", "completion_tokens", "cost"
};


static const ngx_ai_relay_cli_opt_t  ngx_ai_relay_cli_usage_opts[] = {
    { "by", 1, 0 },
    { "user", 1, 0 },
    { "key", 1, 0 },
    { "model", 1, 0 },
    { "since", 1, 0 },
    { "until", 1, 0 },
    { NULL, 0, 0 }
};


static const ngx_ai_relay_cli_opt_t  ngx_ai_relay_cli_records_opts[] = {
    { "user", 1, 0 },
    { "key", 1, 0 },
    { "since", 1, 0 },
    { "until", 1, 0 },
    { "status", 1, 0 },
    { "model", 1, 0 },
    { "channel", 1, 0 },
    { "request-id", 1, 0 },
    { "limit", 1, 0 },
    { NULL, 0, 0 }
};


ngx_ai_relay_cli_command_t  ngx_ai_relay_cli_usage_commands[] = {

    { "usage", NULL, ngx_ai_relay_cli_usage,
      ngx_ai_relay_cli_usage_opts, 0, 0,
      "usage [--by day|user|key|model|channel] [--user USER] [--key KEY] "
      "[--model MODEL] [--since DAY] [--until DAY]",
      "Requests, errors, tokens and cost from the daily counters (UTC\n"
      "days), summed over users where needed, with a total.\n"
      "  --by        group rows by day (default), user, key, model or\n"
      "              channel (from the request records, which are kept\n"
      "              in a capped stream: recent traffic only)\n"
      "  --user      only this user (id or name)\n"
      "  --key       only this key (id, plaintext or SHA-256)\n"
      "  --model     only this model (the name the client sent)\n"
      "  --since     first day (YYYY-MM-DD, -7d, ...; default 30 days\n"
      "              ago)\n"
      "  --until     last day (default today)\n"
      "--key and --model cannot be combined, nor --by key with --model or\n"
      "--by model with --key: the counters are kept per key and per model,\n"
      "not per pair (--by channel takes both).\n" },

    { "records", NULL, ngx_ai_relay_cli_records,
      ngx_ai_relay_cli_records_opts, 0, 0,
      "records [--user USER] [--key KEY] [--since WHEN] [--until WHEN] "
      "[--status CODE|2xx|4xx|5xx|error|ok] [--model MODEL] "
      "[--channel ID] [--request-id ID] [--limit N]",
      "Request records, newest first (default 50): time, account, key\n"
      "(masked), path, host and client address, model, channel, status,\n"
      "error, tries, request id, tokens and cost: what a support ticket\n"
      "needs.\n"
      "  --user, --key   whose records (default: all users)\n"
      "  --since/--until a time range (YYYY-MM-DD[THH:MM[:SS]], -1h, ...)\n"
      "  --status        an exact code, a class (4xx), error (>= 400) or\n"
      "                  ok (< 400)\n"
      "  --model         the client's or the upstream's model name\n"
      "  --channel       the channel that answered (its id)\n"
      "  --request-id    one request (searches every user)\n" },

    { NULL, NULL, NULL, NULL, 0, 0, NULL, NULL }
};


static json_t *
ngx_ai_relay_cli_usage_row(json_t *rows, const char *name)
{
    size_t   i;
    json_t  *row;

    row = json_object_get(rows, name);

    if (row == NULL) {
        row = json_object();

        for (i = 0; i < NGX_AI_RELAY_CLI_COUNTERS; i++) {
            json_object_set_new(row, ngx_ai_relay_cli_counters[i],
                                json_integer(0));
        }

        json_object_set_new(rows, name, row);
    }

    return row;
}


static void
ngx_ai_relay_cli_usage_add(json_t *row, const char *counter, const char *v)
{
    size_t   i;
    int64_t  n;

    for (i = 0; i < NGX_AI_RELAY_CLI_COUNTERS; i++) {
        if (strcmp(counter, ngx_ai_relay_cli_counters[i]) == 0) {
            break;
        }
    }

    if (i == NGX_AI_RELAY_CLI_COUNTERS
        || ngx_ai_relay_cli_parse_int(v, INT64_MIN, INT64_MAX, &n) != 0)
    {
        return;
    }

    json_object_set_new(row, counter, json_integer(
                json_integer_value(json_object_get(row, counter)) + n));
}


static void
ngx_ai_relay_cli_usage_print_row(const char *name, json_t *row)
{
    printf("%-32s %10" PRId64 " %8" PRId64 " %14" PRId64 " %14" PRId64
           " %14s\n", name,
           (int64_t) json_integer_value(json_object_get(row, "requests")),
           (int64_t) json_integer_value(json_object_get(row, "errors")),
           (int64_t) json_integer_value(json_object_get(row,
                                                       "prompt_tokens")),
           (int64_t) json_integer_value(json_object_get(row,
                                                   "completion_tokens")),
           ngx_ai_relay_cli_usd(json_integer_value(json_object_get(row,
                                                                  "cost"))));
}


/* one request record into a row, as SETTLE adds it to the counters */
static void
ngx_ai_relay_cli_usage_add_record(json_t *row, json_t *rec)
{
    size_t   i;
    int64_t  n;

    for (i = 0; i < NGX_AI_RELAY_CLI_COUNTERS; i++) {
        if (strcmp(ngx_ai_relay_cli_counters[i], "requests") == 0) {
            n = 1;

        } else if (strcmp(ngx_ai_relay_cli_counters[i], "errors") == 0) {
            n = json_integer_value(json_object_get(rec, "status")) >= 400;

        } else {
            n = json_integer_value(json_object_get(rec,
                                           ngx_ai_relay_cli_counters[i]));
        }

        json_object_set_new(row, ngx_ai_relay_cli_counters[i], json_integer(
            json_integer_value(json_object_get(row,
                                       ngx_ai_relay_cli_counters[i])) + n));
    }
}


/*
 * --by channel: the daily counters have no channel, so the rows are summed
 * from the records of the users' streams whose entries were added in the
 * days [since, until]; the records of requests without a channel (they
 * failed before one was chosen) make the row "-".  names gets each
 * channel's name.
 */
static void
ngx_ai_relay_cli_usage_channels(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_list_t *users, time_t since, time_t until,
    const char *kid, const char *model, json_t *rows, json_t *total,
    json_t *names)
{
    char        *start, *stop, *ch;
    size_t       u, i, j;
    json_t      *recs, *rec, *row;
    const char  *name;
    redisReply  *r;

    for (u = 0; u < users->nelts; u++) {
        start = ngx_ai_relay_cli_sprintf("%" PRId64, (int64_t) since * 1000);
        stop = ngx_ai_relay_cli_sprintf("%" PRId64,
                                        ((int64_t) until + 86400) * 1000 - 1);

        for ( ;; ) {
            r = ngx_ai_relay_cli_runv(cli, "XRANGE",
                      ngx_ai_relay_cli_sprintf(NGX_AI_RELAY_RKEY_LOG("%s"),
                                               users->elts[u]),
                      start, stop, "COUNT", "1000", NULL);

            for (i = 0; i < r->elements; i++) {
                recs = ngx_ai_relay_cli_entry_records(r->element[i]);

                json_array_foreach(recs, j, rec) {
                    if ((kid && json_integer_value(json_object_get(rec,
                                                                 "key_id"))
                                != atoll(kid))
                        || (model && strcmp(ngx_ai_relay_cli_hstr(rec,
                                                                  "model"),
                                            model) != 0))
                    {
                        continue;
                    }

                    ch = ngx_ai_relay_cli_record_channel(rec);

                    if (ch[0] == '\0') {
                        ch = "-";
                    }

                    name = json_string_value(json_object_get(rec,
                                                            "channel_name"));
                    if (name && name[0]) {
                        json_object_set_new(names, ch, json_string(name));
                    }

                    row = ngx_ai_relay_cli_usage_row(rows, ch);
                    ngx_ai_relay_cli_usage_add_record(row, rec);
                    ngx_ai_relay_cli_usage_add_record(total, rec);
                }

                json_decref(recs);
            }

            if (r->elements < 1000) {
                freeReplyObject(r);
                break;
            }

            /* continue after the last id seen */

            start = ngx_ai_relay_cli_sprintf("(%s",
                        r->element[r->elements - 1]->element[0]->str);
            freeReplyObject(r);
        }
    }
}


/* a --by channel row: its id (null for "-") and name */
static void
ngx_ai_relay_cli_usage_channel_row(ngx_ai_relay_cli_t *cli, json_t *row,
    const char *id, json_t *chnames)
{
    char        *v;
    const char  *name;
    redisReply  *r;

    json_object_set_new(row, "channel", strcmp(id, "-") == 0
                                        ? json_null()
                                        : ngx_ai_relay_cli_json_int(id));

    name = json_string_value(json_object_get(chnames, id));

    if (name == NULL && strcmp(id, "-") != 0) {
        /* records written before they carried the channel's name */

        r = ngx_ai_relay_cli_runv(cli, "HGET", ngx_ai_relay_cli_sprintf(
                                      NGX_AI_RELAY_RKEY_CHANNEL("%s"), id),
                                  "name", NULL);
        v = (r->type == REDIS_REPLY_STRING)
            ? ngx_ai_relay_cli_strdup(r->str) : NULL;
        freeReplyObject(r);

        name = v;
    }

    json_object_set_new(row, "name", name ? json_string(name) : json_null());
}


static int
ngx_ai_relay_cli_usage(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_args_t *args)
{
    int                       rc;
    char                     *uid, *hash, *kid, *prefix, *group, *counter;
    char                     *last, day[16];
    size_t                    i, d, n, plen;
    json_t                   *k, *rows, *row, *total, *out, *h, *v, *arr;
    json_t                   *chnames;
    time_t                    since, until, t;
    const char               *by, *val, *f, *model;
    struct tm                 tm;
    redisReply              **replies;
    ngx_ai_relay_cli_cmd_t  **cmds;
    ngx_ai_relay_cli_list_t   users, days, names;

    by = ngx_ai_relay_cli_opt(args, "by");

    if (by == NULL) {
        by = "day";

    } else if (strcmp(by, "day") != 0 && strcmp(by, "user") != 0
               && strcmp(by, "key") != 0 && strcmp(by, "model") != 0
               && strcmp(by, "channel") != 0)
    {
        return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_REJECTED,
                                      "invalid --by \"%s\" (day, user, key, "
                                      "model or channel)", by);
    }

    model = ngx_ai_relay_cli_opt(args, "model");

    if (ngx_ai_relay_cli_opt(args, "key") && model
        && strcmp(by, "channel") != 0)
    {
        return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_REJECTED,
                                      "--key and --model cannot be combined "
                                      "(counters are per key and per "
                                      "model, not per pair)");
    }

    if ((strcmp(by, "key") == 0 && model)
        || (strcmp(by, "model") == 0 && ngx_ai_relay_cli_opt(args, "key")))
    {
        return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_REJECTED,
                                      "--by %s cannot be filtered by %s "
                                      "(counters are per key and per "
                                      "model, not per pair)", by,
                                      model ? "model" : "key");
    }

    val = ngx_ai_relay_cli_opt(args, "since");
    since = cli->now - 29 * 86400;

    if (val && ngx_ai_relay_cli_parse_time(val, cli->now, &since) != 0) {
        return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_REJECTED,
                                      "invalid --since \"%s\"", val);
    }

    val = ngx_ai_relay_cli_opt(args, "until");
    until = cli->now;

    if (val && ngx_ai_relay_cli_parse_time(val, cli->now, &until) != 0) {
        return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_REJECTED,
                                      "invalid --until \"%s\"", val);
    }

    since -= since % 86400;
    until -= until % 86400;

    if (until < since) {
        return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_REJECTED,
                                      "--until is before --since");
    }

    if ((until - since) / 86400 >= NGX_AI_RELAY_CLI_MAX_DAYS) {
        return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_REJECTED,
                                      "at most %d days at once (counters are "
                                      "kept 400 days)",
                                      NGX_AI_RELAY_CLI_MAX_DAYS);
    }

    memset(&days, 0, sizeof(days));

    for (t = since; t <= until; t += 86400) {
        gmtime_r(&t, &tm);
        strftime(day, sizeof(day), "%Y%m%d", &tm);
        ngx_ai_relay_cli_list_push(&days, ngx_ai_relay_cli_strdup(day));
    }

    if (ngx_ai_relay_cli_connect(cli) != NGX_AI_RELAY_CLI_OK) {
        return cli->failed_rc;
    }

    memset(&users, 0, sizeof(users));
    kid = NULL;

    val = ngx_ai_relay_cli_opt(args, "key");

    if (val) {
        rc = ngx_ai_relay_cli_find_key(cli, val, &uid, &hash, &k);
        if (rc != NGX_AI_RELAY_CLI_OK) {
            return rc;
        }

        kid = ngx_ai_relay_cli_strdup(ngx_ai_relay_cli_hstr(k, "id"));
        json_decref(k);

        if (ngx_ai_relay_cli_opt(args, "user")) {
            return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_USAGE,
                                          "--key implies its user; drop "
                                          "--user");
        }

        ngx_ai_relay_cli_list_push(&users, uid);

    } else if (ngx_ai_relay_cli_opt(args, "user")) {
        rc = ngx_ai_relay_cli_find_user(cli, ngx_ai_relay_cli_opt(args,
                                                                  "user"),
                                        &uid, NULL);
        if (rc != NGX_AI_RELAY_CLI_OK) {
            return rc;
        }

        ngx_ai_relay_cli_list_push(&users, uid);

    } else {
        ngx_ai_relay_cli_user_ids(cli, &users);
    }

    prefix = "";

    if (kid) {
        prefix = ngx_ai_relay_cli_sprintf("key:%s:", kid);

    } else if (model) {
        prefix = ngx_ai_relay_cli_sprintf("model:%s:", model);
    }

    plen = strlen(prefix);

    rows = json_object();
    total = ngx_ai_relay_cli_usage_row(json_object(), "total");
    json_incref(total);
    chnames = json_object();

    n = (strcmp(by, "channel") == 0) ? 0 : users.nelts * days.nelts;
    cmds = ngx_ai_relay_cli_alloc((n + 1) * sizeof(void *));
    replies = ngx_ai_relay_cli_alloc((n + 1) * sizeof(void *));

    for (i = 0; i < users.nelts && n; i++) {
        for (d = 0; d < days.nelts; d++) {
            cmds[i * days.nelts + d] = ngx_ai_relay_cli_cmd("HGETALL",
                           ngx_ai_relay_cli_sprintf(
                               NGX_AI_RELAY_RKEY_STATS("%s", "%s"),
                               users.elts[i], days.elts[d]),
                           NULL);
        }
    }

    ngx_ai_relay_cli_pipeline(cli, cmds, n, replies);

    if (n == 0) {
        ngx_ai_relay_cli_usage_channels(cli, &users, since, until, kid, model,
                                        rows, total, chnames);
    }

    for (i = 0; i < users.nelts && n; i++) {
        for (d = 0; d < days.nelts; d++) {
            h = ngx_ai_relay_cli_reply_hash(replies[i * days.nelts + d]);

            if (h == NULL) {
                continue;
            }

            json_object_foreach(h, f, v) {
                group = NULL;
                val = json_string_value(v);

                if (strcmp(by, "key") == 0 || strcmp(by, "model") == 0) {
                    /* "key:<kid>:<counter>", "model:<name>:<counter>" */

                    if (strncmp(f, by, strlen(by)) != 0
                        || f[strlen(by)] != ':')
                    {
                        continue;
                    }

                    last = strrchr(f, ':');
                    group = ngx_ai_relay_cli_strndup(f + strlen(by) + 1,
                                             last - (f + strlen(by) + 1));
                    counter = last + 1;

                    if (kid && strcmp(group, kid) != 0) {
                        continue;
                    }

                } else {
                    if (strncmp(f, prefix, plen) != 0
                        || strchr(f + plen, ':'))
                    {
                        continue;
                    }

                    counter = (char *) f + plen;
                    group = (strcmp(by, "day") == 0) ? days.elts[d]
                                                     : users.elts[i];
                }

                row = ngx_ai_relay_cli_usage_row(rows, group);
                ngx_ai_relay_cli_usage_add(row, counter, val);
                ngx_ai_relay_cli_usage_add(total, counter, val);
            }

            json_decref(h);
        }
    }

    ngx_ai_relay_cli_free_replies(replies, n);

    /* rows in order */

    memset(&names, 0, sizeof(names));

    json_object_foreach(rows, f, v) {
        ngx_ai_relay_cli_list_push(&names, (char *) f);
    }

    if (strcmp(by, "user") == 0 || strcmp(by, "key") == 0
        || strcmp(by, "channel") == 0)
    {
        ngx_ai_relay_cli_list_sort_num(&names);

    } else {
        ngx_ai_relay_cli_list_sort(&names);
    }

    arr = json_array();

    for (i = 0; i < names.nelts; i++) {
        row = json_deep_copy(json_object_get(rows, names.elts[i]));
        json_object_set_new(row, by, strcmp(by, "model") == 0
                                     || strcmp(by, "day") == 0
                                     ? json_string(names.elts[i])
                                     : ngx_ai_relay_cli_json_int(
                                                          names.elts[i]));
        json_object_set_new(row, "cost_usd", json_string(
            ngx_ai_relay_cli_usd(json_integer_value(json_object_get(row,
                                                                 "cost")))));

        if (strcmp(by, "channel") == 0) {
            ngx_ai_relay_cli_usage_channel_row(cli, row, names.elts[i],
                                               chnames);
        }

        json_array_append_new(arr, row);
    }

    json_object_set_new(total, "cost_usd", json_string(
        ngx_ai_relay_cli_usd(json_integer_value(json_object_get(total,
                                                               "cost")))));

    if (cli->json) {
        out = json_pack("{s:s,s:s,s:s,s:o,s:O}", "by", by,
                        "since", days.elts[0],
                        "until", days.elts[days.nelts - 1],
                        "rows", arr, "total", total);
        ngx_ai_relay_cli_print_json(out);
        json_decref(out);

    } else {
        printf("%-32s %10s %8s %14s %14s %14s\n", by[0] == 'd' ? "DAY"
                                                  : by[0] == 'u' ? "USER"
                                                  : by[0] == 'k' ? "KEY"
                                                  : by[0] == 'c' ? "CHANNEL"
                                                  : "MODEL",
               "REQUESTS", "ERRORS", "PROMPT", "COMPLETION", "COST");

        json_array_foreach(arr, i, row) {
            v = json_object_get(row, "name");

            ngx_ai_relay_cli_usage_print_row(json_string_value(v)
                     ? ngx_ai_relay_cli_sprintf("%s (%s)", names.elts[i],
                                                json_string_value(v))
                     : names.elts[i], row);
        }

        ngx_ai_relay_cli_usage_print_row("TOTAL", total);
        json_decref(arr);
    }

    json_decref(total);
    json_decref(rows);
    json_decref(chnames);

    return NGX_AI_RELAY_CLI_OK;
}


/* record fields shown as numbers */
static int
ngx_ai_relay_cli_record_numeric(const char *f)
{
    static const char  *numeric[] = {
        "time", "key_id", "user", "channel", "stream", "status",
        "latency_ms", "ttft_ms", "prompt_tokens", "cached_tokens",
        "cache_write_tokens", "completion_tokens", "reasoning_tokens",
        "cost", "tries", "images", NULL
    };

    size_t  i;

    for (i = 0; numeric[i]; i++) {
        if (strcmp(numeric[i], f) == 0) {
            return 1;
        }
    }

    return 0;
}


static int
ngx_ai_relay_cli_status_match(const char *want, const char *status)
{
    int64_t  s;

    if (ngx_ai_relay_cli_parse_int(status, 0, 999, &s) != 0) {
        s = 0;
    }

    if (strcmp(want, "error") == 0) {
        return s >= 400;
    }

    if (strcmp(want, "ok") == 0) {
        return s > 0 && s < 400;
    }

    if (strlen(want) == 3 && want[1] == 'x' && want[2] == 'x') {
        return s / 100 == want[0] - '0';
    }

    return strcmp(want, status) == 0;
}


static int
ngx_ai_relay_cli_status_valid(const char *want)
{
    int64_t  s;

    if (strcmp(want, "error") == 0 || strcmp(want, "ok") == 0) {
        return 1;
    }

    if (strlen(want) == 3 && want[0] >= '1' && want[0] <= '5'
        && want[1] == 'x' && want[2] == 'x')
    {
        return 1;
    }

    return ngx_ai_relay_cli_parse_int(want, 100, 599, &s) == 0;
}


/* a record's channel id as text: "" when the request had none */
static char *
ngx_ai_relay_cli_record_channel(json_t *rec)
{
    json_t  *v;

    v = json_object_get(rec, "channel");

    if (json_is_integer(v)) {
        return ngx_ai_relay_cli_sprintf("%" PRId64,
                                        (int64_t) json_integer_value(v));
    }

    return ngx_ai_relay_cli_strdup(json_is_string(v) ? json_string_value(v)
                                                     : "");
}


/* a string field of a record, "" when absent */
static const char *
ngx_ai_relay_cli_record_str(json_t *r, const char *field)
{
    const char  *v;

    v = json_string_value(json_object_get(r, field));

    return v ? v : "";
}


static void
ngx_ai_relay_cli_record_print(json_t *r)
{
    int64_t      ms, cost;
    time_t       t;
    json_t      *tries, *images;
    struct tm    tm;
    const char  *err, *up, *model, *chname, *path, *host, *client;
    char         buf[32];

    ms = json_integer_value(json_object_get(r, "time"));
    t = (time_t) (ms / 1000);
    gmtime_r(&t, &tm);
    strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);

    cost = json_integer_value(json_object_get(r, "cost"));
    model = json_string_value(json_object_get(r, "model"));
    up = json_string_value(json_object_get(r, "upstream_model"));
    err = json_string_value(json_object_get(r, "error"));
    chname = ngx_ai_relay_cli_record_str(r, "channel_name");
    path = ngx_ai_relay_cli_record_str(r, "path");
    host = ngx_ai_relay_cli_record_str(r, "host");
    client = ngx_ai_relay_cli_record_str(r, "client");
    tries = json_object_get(r, "tries");
    images = json_object_get(r, "images");

    printf("%s.%03dZ  request %s\n", buf, (int) (ms % 1000),
           json_string_value(json_object_get(r, "request_id"))
           ? json_string_value(json_object_get(r, "request_id")) : "-");
    printf("  account  user %" PRId64 " (%s), key %" PRId64 " %s\n",
           (int64_t) json_integer_value(json_object_get(r, "user")),
           json_string_value(json_object_get(r, "user_name")),
           (int64_t) json_integer_value(json_object_get(r, "key_id")),
           json_string_value(json_object_get(r, "key"))
           ? json_string_value(json_object_get(r, "key")) : "-");

    if (path[0] || host[0] || client[0]) {
        printf("  request  %s%s%s%s%s\n", path[0] ? path : "-",
               host[0] ? " on " : "", host,
               client[0] ? " from " : "", client);
    }

    printf("  model    %s%s%s, channel %s%s%s%s%s\n",
           model ? model : "-",
           up && model && strcmp(up, model) != 0 ? " -> " : "",
           up && model && strcmp(up, model) != 0 ? up : "",
           ngx_ai_relay_cli_record_channel(r)[0]
           ? ngx_ai_relay_cli_record_channel(r) : "-",
           chname[0] ? " (" : "", chname, chname[0] ? ")" : "",
           json_integer_value(json_object_get(r, "stream")) ? ", stream"
                                                            : "");
    printf("  status   %" PRId64 "%s%s%s\n",
           (int64_t) json_integer_value(json_object_get(r, "status")),
           err && err[0] ? ", error: " : "", err && err[0] ? err : "",
           json_is_integer(tries)
           ? ngx_ai_relay_cli_sprintf(", tries %" PRId64,
                                      (int64_t) json_integer_value(tries))
           : "");
    printf("  tokens   prompt %" PRId64 " (cached %" PRId64 ", cache "
           "write %" PRId64 "), completion %" PRId64 " (reasoning %"
           PRId64 "), usage %s%s\n",
           (int64_t) json_integer_value(json_object_get(r,
                                                      "prompt_tokens")),
           (int64_t) json_integer_value(json_object_get(r,
                                                      "cached_tokens")),
           (int64_t) json_integer_value(json_object_get(r,
                                                  "cache_write_tokens")),
           (int64_t) json_integer_value(json_object_get(r,
                                                  "completion_tokens")),
           (int64_t) json_integer_value(json_object_get(r,
                                                  "reasoning_tokens")),
           json_string_value(json_object_get(r, "usage_source"))
           ? json_string_value(json_object_get(r, "usage_source")) : "-",
           json_integer_value(images) > 0
           ? ngx_ai_relay_cli_sprintf(", images %" PRId64,
                                      (int64_t) json_integer_value(images))
           : "");
    printf("  cost     %s, latency %" PRId64 " ms, first token %" PRId64
           " ms\n\n", ngx_ai_relay_cli_usd(cost),
           (int64_t) json_integer_value(json_object_get(r, "latency_ms")),
           (int64_t) json_integer_value(json_object_get(r, "ttft_ms")));
}


/*
 * The records of one stream entry, newest first.  The module adds a
 * settlement's records as one entry, an "r" field (a JSON object) each;
 * other fields (records written one field per value) make one record.
 */

static json_t *
ngx_ai_relay_cli_entry_records(redisReply *e)
{
    size_t        f;
    json_t       *recs, *rec, *packed;
    int64_t       ms;
    const char   *fv;
    redisReply   *fields;

    recs = json_array();
    rec = NULL;

    if (e->type != REDIS_REPLY_ARRAY || e->elements != 2
        || e->element[1]->type != REDIS_REPLY_ARRAY)
    {
        return recs;
    }

    fields = e->element[1];

    for (f = 0; f + 1 < fields->elements; f += 2) {
        fv = fields->element[f + 1]->str;

        if (strcmp(fields->element[f]->str, "r") == 0) {
            packed = json_loads(fv, 0, NULL);

            if (json_is_object(packed)) {
                json_object_set_new(packed, "id",
                                    json_string(e->element[0]->str));
                json_array_insert_new(recs, 0, packed);

            } else {
                json_decref(packed);
            }

            continue;
        }

        if (rec == NULL) {
            rec = json_object();
            json_object_set_new(rec, "id", json_string(e->element[0]->str));
        }

        json_object_set_new(rec, fields->element[f]->str,
            ngx_ai_relay_cli_record_numeric(fields->element[f]->str)
            ? ngx_ai_relay_cli_json_int(fv) : json_string(fv));
    }

    if (rec) {
        json_array_append_new(recs, rec);
    }

    /* the stream id's milliseconds stand for a missing time */

    for (f = 0; f < json_array_size(recs); f++) {
        rec = json_array_get(recs, f);

        if (json_object_get(rec, "time") == NULL) {
            ms = 0;
            ngx_ai_relay_cli_parse_int(ngx_ai_relay_cli_strndup(
                     e->element[0]->str, strcspn(e->element[0]->str, "-")),
                     0, INT64_MAX, &ms);
            json_object_set_new(rec, "time", json_integer(ms));
        }
    }

    return recs;
}


static int
ngx_ai_relay_cli_records(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_args_t *args)
{
    int                       rc, done;
    char                     *uid, *hash, *kid, *start, *stop;
    size_t                    i, j, u, k, nmatch;
    json_t                   *key, *out, *rec, *names, *h, *recs;
    time_t                    since, until;
    int64_t                   limit;
    const char               *v, *status, *model, *reqid, *channel;
    redisReply               *r, *e;
    ngx_ai_relay_cli_list_t   users, hkeys;

    limit = 50;
    v = ngx_ai_relay_cli_opt(args, "limit");

    if (v && ngx_ai_relay_cli_parse_int(v, 1, 100000, &limit) != 0) {
        return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_REJECTED,
                                      "invalid --limit \"%s\"", v);
    }

    since = 0;
    v = ngx_ai_relay_cli_opt(args, "since");

    if (v && ngx_ai_relay_cli_parse_time(v, cli->now, &since) != 0) {
        return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_REJECTED,
                                      "invalid --since \"%s\"", v);
    }

    until = 0;
    v = ngx_ai_relay_cli_opt(args, "until");

    if (v && ngx_ai_relay_cli_parse_time(v, cli->now, &until) != 0) {
        return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_REJECTED,
                                      "invalid --until \"%s\"", v);
    }

    status = ngx_ai_relay_cli_opt(args, "status");

    if (status && !ngx_ai_relay_cli_status_valid(status)) {
        return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_REJECTED,
                                      "invalid --status \"%s\" (200, 4xx, "
                                      "error, ok)", status);
    }

    model = ngx_ai_relay_cli_opt(args, "model");
    reqid = ngx_ai_relay_cli_opt(args, "request-id");
    channel = ngx_ai_relay_cli_opt(args, "channel");

    if (channel && !ngx_ai_relay_cli_is_id(channel)) {
        return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_REJECTED,
                                      "invalid --channel \"%s\"", channel);
    }

    if (ngx_ai_relay_cli_connect(cli) != NGX_AI_RELAY_CLI_OK) {
        return cli->failed_rc;
    }

    memset(&users, 0, sizeof(users));
    kid = NULL;

    v = ngx_ai_relay_cli_opt(args, "key");

    if (v) {
        rc = ngx_ai_relay_cli_find_key(cli, v, &uid, &hash, &key);
        if (rc != NGX_AI_RELAY_CLI_OK) {
            return rc;
        }

        kid = ngx_ai_relay_cli_strdup(ngx_ai_relay_cli_hstr(key, "id"));
        json_decref(key);
        ngx_ai_relay_cli_list_push(&users, uid);

    } else if (ngx_ai_relay_cli_opt(args, "user")) {
        rc = ngx_ai_relay_cli_find_user(cli, ngx_ai_relay_cli_opt(args,
                                                                  "user"),
                                        &uid, NULL);
        if (rc != NGX_AI_RELAY_CLI_OK) {
            return rc;
        }

        ngx_ai_relay_cli_list_push(&users, uid);

    } else {
        ngx_ai_relay_cli_user_ids(cli, &users);
    }

    /* user names for the account column */

    memset(&hkeys, 0, sizeof(hkeys));

    for (u = 0; u < users.nelts; u++) {
        ngx_ai_relay_cli_list_push(&hkeys, ngx_ai_relay_cli_sprintf(
                                           NGX_AI_RELAY_RKEY_USER("%s"),
                                           users.elts[u]));
    }

    names = ngx_ai_relay_cli_hgetall_many(cli, &hkeys);

    out = json_array();
    done = 0;

    for (u = 0; u < users.nelts && !done; u++) {
        h = json_array_get(names, u);
        stop = until ? ngx_ai_relay_cli_sprintf("%" PRId64,
                                             (int64_t) until * 1000 + 999)
                     : "+";
        start = since ? ngx_ai_relay_cli_sprintf("%" PRId64,
                                                 (int64_t) since * 1000)
                      : "-";
        nmatch = 0;

        /* pages of newest first, until enough matched for this user */

        for ( ;; ) {
            r = ngx_ai_relay_cli_runv(cli, "XREVRANGE",
                      ngx_ai_relay_cli_sprintf(NGX_AI_RELAY_RKEY_LOG("%s"),
                                               users.elts[u]),
                      stop, start, "COUNT", "500", NULL);

            for (i = 0; i < r->elements && !done && nmatch < (size_t) limit;
                 i++)
            {
                e = r->element[i];
                recs = ngx_ai_relay_cli_entry_records(e);

                for (j = 0; j < json_array_size(recs); j++) {
                    rec = json_incref(json_array_get(recs, j));

                    json_object_set_new(rec, "user",
                        ngx_ai_relay_cli_json_int(users.elts[u]));
                    json_object_set_new(rec, "user_name", json_string(
                                        ngx_ai_relay_cli_hstr(h, "name")));

                    if ((kid && json_integer_value(json_object_get(rec,
                                                                   "key_id"))
                                != atoll(kid))
                        || (reqid && strcmp(ngx_ai_relay_cli_hstr(rec,
                                                              "request_id"),
                                            reqid) != 0)
                        || (channel && strcmp(
                                ngx_ai_relay_cli_record_channel(rec),
                                channel) != 0)
                        || (model && strcmp(ngx_ai_relay_cli_hstr(rec,
                                                                  "model"),
                                            model) != 0
                            && strcmp(ngx_ai_relay_cli_hstr(rec,
                                                            "upstream_model"),
                                      model) != 0)
                        || (status && !ngx_ai_relay_cli_status_match(status,
                              ngx_ai_relay_cli_sprintf("%" PRId64,
                                  (int64_t) json_integer_value(
                                      json_object_get(rec, "status"))))))
                    {
                        json_decref(rec);
                        continue;
                    }

                    json_array_append_new(out, rec);
                    nmatch++;

                    if (reqid) {
                        done = 1;
                        break;
                    }

                    if (nmatch >= (size_t) limit) {
                        break;
                    }
                }

                json_decref(recs);
            }

            if (done || nmatch >= (size_t) limit || r->elements < 500) {
                freeReplyObject(r);
                break;
            }

            /* continue before the last id seen */

            e = r->element[r->elements - 1];
            stop = ngx_ai_relay_cli_sprintf("(%s", e->element[0]->str);
            freeReplyObject(r);
        }
    }

    json_decref(names);

    /* newest first over all users, at most limit */

    for (i = 1; i < json_array_size(out); i++) {
        for (k = i; k > 0; k--) {
            if (json_integer_value(json_object_get(json_array_get(out, k - 1),
                                                   "time"))
                >= json_integer_value(json_object_get(json_array_get(out, k),
                                                      "time")))
            {
                break;
            }

            rec = json_incref(json_array_get(out, k));
            json_array_remove(out, k);
            json_array_insert_new(out, k - 1, rec);
        }
    }

    while (json_array_size(out) > (size_t) limit) {
        json_array_remove(out, json_array_size(out) - 1);
    }

    if (reqid && json_array_size(out) == 0) {
        json_decref(out);
        return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_REJECTED,
                                      "no record of request %s", reqid);
    }

    if (cli->json) {
        ngx_ai_relay_cli_print_json(out);

    } else {
        json_array_foreach(out, i, rec) {
            ngx_ai_relay_cli_record_print(rec);
        }

        printf("%zu record%s\n", json_array_size(out),
               json_array_size(out) == 1 ? "" : "s");
    }

    json_decref(out);

    return NGX_AI_RELAY_CLI_OK;
}
