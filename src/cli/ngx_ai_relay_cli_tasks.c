
/*
 * Copyright (C) ngx_ai_relay authors
 *
 * ai-relay tasks: the async tasks (videos) a user submitted, as the relay
 * keeps them for polls and refunds.
 *
 *   ar:{u<uid>}:task:<id>  hash  channel model key key_id cost charged
 *                                request created [refunded status]
 */


#include "ngx_ai_relay_cli.h"


static int ngx_ai_relay_cli_tasks_list(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_args_t *args);
static int ngx_ai_relay_cli_tasks_show(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_args_t *args);


static const ngx_ai_relay_cli_opt_t  ngx_ai_relay_cli_tasks_opts[] = {
    { "user", 1, 0 },
    { NULL, 0, 0 }
};


ngx_ai_relay_cli_command_t  ngx_ai_relay_cli_tasks_commands[] = {

    { "tasks", "list", ngx_ai_relay_cli_tasks_list,
      ngx_ai_relay_cli_tasks_opts, 0, 0,
      "tasks list --user USER",
      "The video tasks of a user the relay keeps (30 days): id, model,\n"
      "channel, cost, whether a poll found it failed and refunded it.\n" },

    { "tasks", "show", ngx_ai_relay_cli_tasks_show,
      ngx_ai_relay_cli_tasks_opts, 1, 1,
      "tasks show --user USER ID",
      "One video task of a user, every field.\n" },

    { NULL, NULL, NULL, NULL, 0, 0, NULL, NULL }
};


static const char *
ngx_ai_relay_cli_task_state(json_t *h)
{
    return strcmp(ngx_ai_relay_cli_hstr(h, "refunded"), "1") == 0
           ? "failed, refunded" : "charged";
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

        json_object_foreach(h, f, v) {
            if (strcmp(f, "cost") != 0 && strcmp(f, "created") != 0) {
                printf("  %-16s %s\n", f, json_string_value(v));
            }
        }
    }

    json_decref(h);

    return NGX_AI_RELAY_CLI_OK;
}
