
/*
 * Copyright (C) ngx_ai_relay authors
 *
 * ai-relay users: accounts, balances and the balance ledger.
 *
 *   ar:{u<id>}:user    hash   name status balance unlimited used requests
 *                             created group
 *   ar:{u<id>}:ledger  stream time op amount balance note
 *   ar:users           set    all user ids
 */


#include "ngx_ai_relay_cli.h"


static int ngx_ai_relay_cli_users_create(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_args_t *args);
static int ngx_ai_relay_cli_users_show(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_args_t *args);
static int ngx_ai_relay_cli_users_list(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_args_t *args);
static int ngx_ai_relay_cli_users_topup(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_args_t *args);
static int ngx_ai_relay_cli_users_deduct(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_args_t *args);
static int ngx_ai_relay_cli_users_enable(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_args_t *args);
static int ngx_ai_relay_cli_users_disable(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_args_t *args);
static int ngx_ai_relay_cli_users_unlimited(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_args_t *args);
static int ngx_ai_relay_cli_users_group(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_args_t *args);
static int ngx_ai_relay_cli_users_ledger(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_args_t *args);


static const ngx_ai_relay_cli_opt_t  ngx_ai_relay_cli_users_create_opts[] = {
    { "balance", 1, 0 },
    { "unlimited", 0, 0 },
    { "group", 1, 0 },
    { "id", 1, 0 },
    { "note", 1, 0 },
    { NULL, 0, 0 }
};


static const ngx_ai_relay_cli_opt_t  ngx_ai_relay_cli_users_money_opts[] = {
    { "note", 1, 0 },
    { "allow-negative", 0, 0 },
    { NULL, 0, 0 }
};


static const ngx_ai_relay_cli_opt_t  ngx_ai_relay_cli_users_ledger_opts[] = {
    { "limit", 1, 0 },
    { NULL, 0, 0 }
};


ngx_ai_relay_cli_command_t  ngx_ai_relay_cli_users_commands[] = {

    { "users", "create", ngx_ai_relay_cli_users_create,
      ngx_ai_relay_cli_users_create_opts, 1, 1,
      "users create NAME [--balance USD] [--unlimited] [--group GROUP] "
      "[--id N] [--note TEXT]",
      "Create a user.  NAME must not be all digits (ids are).  The\n"
      "balance is exact USD (\"10\", \"0.50\", at most 6 decimals) and is\n"
      "written to the ledger.  --unlimited: no balance check (usage is\n"
      "still metered).  --id picks the id instead of the next free one.\n" },

    { "users", "show", ngx_ai_relay_cli_users_show, NULL, 1, 1,
      "users show USER",
      "Show a user (USER is an id or a name) and the user's keys.\n" },

    { "users", "list", ngx_ai_relay_cli_users_list, NULL, 0, 0,
      "users list",
      "List all users.\n" },

    { "users", "topup", ngx_ai_relay_cli_users_topup,
      ngx_ai_relay_cli_users_money_opts, 2, 2,
      "users topup USER USD [--note TEXT]",
      "Add money to the balance (exact, e.g. 10 or 0.50) and write a ledger\n"
      "entry.\n" },

    { "users", "deduct", ngx_ai_relay_cli_users_deduct,
      ngx_ai_relay_cli_users_money_opts, 2, 2,
      "users deduct USER USD [--note TEXT] [--allow-negative]",
      "Take money from the balance and write a ledger entry.  Refused if\n"
      "the balance would become negative, unless --allow-negative.\n" },

    { "users", "disable", ngx_ai_relay_cli_users_disable, NULL, 1, 1,
      "users disable USER",
      "Disable a user: all of the user's keys are refused (403).\n" },

    { "users", "enable", ngx_ai_relay_cli_users_enable, NULL, 1, 1,
      "users enable USER",
      "Enable a disabled user.\n" },

    { "users", "unlimited", ngx_ai_relay_cli_users_unlimited, NULL, 2, 2,
      "users unlimited USER on|off",
      "Turn the balance check off (on) or back on (off).  Usage is metered\n"
      "either way.\n" },

    { "users", "group", ngx_ai_relay_cli_users_group, NULL, 2, 2,
      "users group USER GROUP",
      "Set the user's group (informative; imported from One API / New API).\n"
    },

    { "users", "ledger", ngx_ai_relay_cli_users_ledger,
      ngx_ai_relay_cli_users_ledger_opts, 1, 1,
      "users ledger USER [--limit N]",
      "Show the balance changes made by operators, newest first (default\n"
      "50).\n" },

    { NULL, NULL, NULL, NULL, 0, 0, NULL, NULL }
};


static json_t *
ngx_ai_relay_cli_user_json(const char *uid, json_t *h)
{
    int64_t   balance, used;

    balance = ngx_ai_relay_cli_hint(h, "balance", 0);
    used = ngx_ai_relay_cli_hint(h, "used", 0);

    return json_pack("{s:I,s:s,s:s,s:I,s:s,s:b,s:I,s:s,s:I,s:s,s:I}",
                     "id", (json_int_t) atoll(uid),
                     "name", ngx_ai_relay_cli_hstr(h, "name"),
                     "status", ngx_ai_relay_cli_hstr(h, "status"),
                     "balance", (json_int_t) balance,
                     "balance_usd", ngx_ai_relay_cli_usd(balance),
                     "unlimited",
                     ngx_ai_relay_cli_hint(h, "unlimited", 0) == 1,
                     "used", (json_int_t) used,
                     "used_usd", ngx_ai_relay_cli_usd(used),
                     "requests",
                     (json_int_t) ngx_ai_relay_cli_hint(h, "requests", 0),
                     "group", ngx_ai_relay_cli_hstr(h, "group"),
                     "created",
                     (json_int_t) ngx_ai_relay_cli_hint(h, "created", 0));
}


/* print one user after a change, as JSON or a one-line summary */
static int
ngx_ai_relay_cli_user_done(ngx_ai_relay_cli_t *cli, const char *uid,
    const char *what)
{
    json_t  *h, *j;

    h = ngx_ai_relay_cli_hgetall(cli, ngx_ai_relay_cli_sprintf(
                                      NGX_AI_RELAY_RKEY_USER("%s"), uid));
    if (h == NULL) {
        return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_REJECTED,
                                      "no user with id %s", uid);
    }

    j = ngx_ai_relay_cli_user_json(uid, h);

    if (cli->json) {
        ngx_ai_relay_cli_print_json(j);

    } else {
        printf("%s user %s (%s): status %s, balance %s%s\n", what, uid,
               json_string_value(json_object_get(j, "name")),
               json_string_value(json_object_get(j, "status")),
               json_string_value(json_object_get(j, "balance_usd")),
               json_is_true(json_object_get(j, "unlimited"))
               ? ", unlimited" : "");
    }

    json_decref(j);
    json_decref(h);

    return NGX_AI_RELAY_CLI_OK;
}


static int
ngx_ai_relay_cli_users_create(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_args_t *args)
{
    int                      try;
    char                    *uid, *key;
    int64_t                  balance, seq, id;
    const char              *name, *v, *group, *note;
    redisReply              *r;
    ngx_ai_relay_cli_tx_t    tx;
    ngx_ai_relay_cli_cmd_t  *c;
    ngx_ai_relay_cli_list_t  watch;

    name = args->pos.elts[0];

    if (!ngx_ai_relay_cli_valid_name(name) || ngx_ai_relay_cli_is_id(name)
        || strspn(name, "0123456789") == strlen(name))
    {
        return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_REJECTED,
                                 "invalid user name \"%s\" (1-200 printable "
                                 "characters without spaces, commas or "
                                 "'|', not all digits)", name);
    }

    balance = 0;
    v = ngx_ai_relay_cli_opt(args, "balance");

    if (v && ngx_ai_relay_cli_parse_usd(v, &balance) != 0) {
        return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_REJECTED,
                                      "invalid --balance \"%s\" (USD, e.g. "
                                      "10 or 0.50, at most 6 decimals)", v);
    }

    group = ngx_ai_relay_cli_opt(args, "group");

    if (group == NULL) {
        group = "default";

    } else if (!ngx_ai_relay_cli_valid_name(group)) {
        return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_REJECTED,
                                      "invalid --group \"%s\"", group);
    }

    v = ngx_ai_relay_cli_opt(args, "id");

    if (v && !ngx_ai_relay_cli_is_id(v)) {
        return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_REJECTED,
                                      "invalid --id \"%s\"", v);
    }

    note = ngx_ai_relay_cli_opt(args, "note");

    if (ngx_ai_relay_cli_connect(cli) != NGX_AI_RELAY_CLI_OK) {
        return cli->failed_rc;
    }

    for (try = 0; try < NGX_AI_RELAY_CLI_TX_TRIES; try++) {

        memset(&watch, 0, sizeof(watch));
        ngx_ai_relay_cli_list_push(&watch, NGX_AI_RELAY_RKEY_USERS);
        ngx_ai_relay_cli_list_push(&watch, NGX_AI_RELAY_RKEY_SEQ);
        ngx_ai_relay_cli_watch(cli, &watch);

        if (ngx_ai_relay_cli_user_by_name(cli, name)) {
            ngx_ai_relay_cli_unwatch(cli);
            return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_REJECTED,
                                          "a user named \"%s\" exists",
                                          name);
        }

        if (v) {
            uid = ngx_ai_relay_cli_strdup(v);
            key = ngx_ai_relay_cli_sprintf(NGX_AI_RELAY_RKEY_USER("%s"), uid);
            ngx_ai_relay_cli_watch1(cli, key);

            if (ngx_ai_relay_cli_exists(cli, key)) {
                ngx_ai_relay_cli_unwatch(cli);
                return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_REJECTED,
                                              "user id %s is taken", uid);
            }

        } else {
            uid = ngx_ai_relay_cli_next_id(cli, "user",
                                           NGX_AI_RELAY_RKEY_USER("%s"));
            key = ngx_ai_relay_cli_sprintf(NGX_AI_RELAY_RKEY_USER("%s"), uid);
            ngx_ai_relay_cli_watch1(cli, key);
        }

        r = ngx_ai_relay_cli_runv(cli, "HGET", NGX_AI_RELAY_RKEY_SEQ, "user",
                                  NULL);
        seq = 0;
        if (r->type == REDIS_REPLY_STRING) {
            ngx_ai_relay_cli_parse_int(r->str, 0, INT64_MAX, &seq);
        }
        freeReplyObject(r);

        memset(&tx, 0, sizeof(tx));

        c = ngx_ai_relay_cli_cmd("HSET", key, "name", name,
                                 "status", "active", NULL);
        ngx_ai_relay_cli_cmd_add(c, "balance");
        ngx_ai_relay_cli_cmd_addf(c, "%" PRId64, balance);
        ngx_ai_relay_cli_cmd_add(c, "unlimited");
        ngx_ai_relay_cli_cmd_add(c, ngx_ai_relay_cli_opt_has(args,
                                                             "unlimited")
                                    ? "1" : "0");
        ngx_ai_relay_cli_cmd_add(c, "used");
        ngx_ai_relay_cli_cmd_add(c, "0");
        ngx_ai_relay_cli_cmd_add(c, "requests");
        ngx_ai_relay_cli_cmd_add(c, "0");
        ngx_ai_relay_cli_cmd_add(c, "created");
        ngx_ai_relay_cli_cmd_addf(c, "%" PRId64, (int64_t) cli->now);
        ngx_ai_relay_cli_cmd_add(c, "group");
        ngx_ai_relay_cli_cmd_add(c, group);
        ngx_ai_relay_cli_tx_add(&tx, c);

        ngx_ai_relay_cli_tx_add(&tx, ngx_ai_relay_cli_cmd("SADD",
                                         NGX_AI_RELAY_RKEY_USERS, uid, NULL));

        id = atoll(uid);

        if (id > seq) {
            ngx_ai_relay_cli_tx_add(&tx, ngx_ai_relay_cli_cmd("HSET",
                                           NGX_AI_RELAY_RKEY_SEQ, "user", uid,
                                           NULL));
        }

        if (balance > 0) {
            c = ngx_ai_relay_cli_cmd("XADD",
                     ngx_ai_relay_cli_sprintf(NGX_AI_RELAY_RKEY_LEDGER("%s"),
                                              uid),
                     "*", "time", NULL);
            ngx_ai_relay_cli_cmd_addf(c, "%" PRId64, (int64_t) cli->now);
            ngx_ai_relay_cli_cmd_add(c, "op");
            ngx_ai_relay_cli_cmd_add(c, "create");
            ngx_ai_relay_cli_cmd_add(c, "amount");
            ngx_ai_relay_cli_cmd_addf(c, "%" PRId64, balance);
            ngx_ai_relay_cli_cmd_add(c, "balance");
            ngx_ai_relay_cli_cmd_addf(c, "%" PRId64, balance);
            ngx_ai_relay_cli_cmd_add(c, "note");
            ngx_ai_relay_cli_cmd_add(c, note ? note : "initial balance");
            ngx_ai_relay_cli_tx_add(&tx, c);
        }

        tx.version = 1;

        if (ngx_ai_relay_cli_tx_exec(cli, &tx) == 0) {
            return ngx_ai_relay_cli_user_done(cli, uid, "created");
        }
    }

    return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_FAILED,
                                  "too much concurrent change, try again");
}


static int
ngx_ai_relay_cli_users_show(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_args_t *args)
{
    int                      rc;
    char                    *uid;
    size_t                   i;
    json_t                  *h, *j, *keys, *k, *arr;
    ngx_ai_relay_cli_list_t  hashes, hkeys;

    if (ngx_ai_relay_cli_connect(cli) != NGX_AI_RELAY_CLI_OK) {
        return cli->failed_rc;
    }

    rc = ngx_ai_relay_cli_find_user(cli, args->pos.elts[0], &uid, &h);
    if (rc != NGX_AI_RELAY_CLI_OK) {
        return rc;
    }

    memset(&hashes, 0, sizeof(hashes));
    memset(&hkeys, 0, sizeof(hkeys));

    ngx_ai_relay_cli_smembers(cli, ngx_ai_relay_cli_sprintf(
                                   NGX_AI_RELAY_RKEY_KEYS("%s"), uid),
                              &hashes);

    for (i = 0; i < hashes.nelts; i++) {
        ngx_ai_relay_cli_list_push(&hkeys,
                 ngx_ai_relay_cli_sprintf(NGX_AI_RELAY_RKEY_KEY("%s", "%s"),
                                          uid, hashes.elts[i]));
    }

    keys = ngx_ai_relay_cli_hgetall_many(cli, &hkeys);

    j = ngx_ai_relay_cli_user_json(uid, h);
    arr = json_array();

    json_array_foreach(keys, i, k) {
        if (json_is_null(k)
            || !ngx_ai_relay_cli_key_reachable(cli, uid, hashes.elts[i]))
        {
            continue;
        }

        json_array_append_new(arr, json_pack("{s:o,s:s,s:s,s:s}",
                     "id", ngx_ai_relay_cli_json_int(
                                         ngx_ai_relay_cli_hval(k, "id")),
                     "name", ngx_ai_relay_cli_hstr(k, "name"),
                     "masked", ngx_ai_relay_cli_hstr(k, "masked"),
                     "status", ngx_ai_relay_cli_hstr(k, "status")));
    }

    json_object_set(j, "keys", arr);

    if (cli->json) {
        ngx_ai_relay_cli_print_json(j);

    } else {
        printf("id:         %s\n", uid);
        printf("name:       %s\n",
               json_string_value(json_object_get(j, "name")));
        printf("status:     %s\n",
               json_string_value(json_object_get(j, "status")));
        printf("balance:    %s (%" PRId64 " uUSD)\n",
               json_string_value(json_object_get(j, "balance_usd")),
               (int64_t) json_integer_value(json_object_get(j, "balance")));
        printf("unlimited:  %s\n",
               json_is_true(json_object_get(j, "unlimited")) ? "yes" : "no");
        printf("used:       %s\n",
               json_string_value(json_object_get(j, "used_usd")));
        printf("requests:   %" PRId64 "\n",
               (int64_t) json_integer_value(json_object_get(j, "requests")));
        printf("group:      %s\n",
               json_string_value(json_object_get(j, "group")));
        printf("created:    %s\n", ngx_ai_relay_cli_time_str(
                   json_integer_value(json_object_get(j, "created"))));

        if (ngx_ai_relay_cli_hval(h, "source")) {
            printf("source:     %s\n", ngx_ai_relay_cli_hval(h, "source"));
        }

        printf("keys:       %zu\n", json_array_size(arr));

        json_array_foreach(arr, i, k) {
            printf("  %-6s %s %-10s %s\n",
                   json_is_integer(json_object_get(k, "id"))
                   ? ngx_ai_relay_cli_sprintf("%" PRId64,
                         (int64_t) json_integer_value(json_object_get(k,
                                                                   "id")))
                   : "?",
                   ngx_ai_relay_cli_pad(json_string_value(
                                        json_object_get(k, "masked")), 16),
                   json_string_value(json_object_get(k, "status")),
                   json_string_value(json_object_get(k, "name")));
        }
    }

    json_decref(arr);
    json_decref(j);
    json_decref(keys);
    json_decref(h);

    return NGX_AI_RELAY_CLI_OK;
}


static int
ngx_ai_relay_cli_users_list(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_args_t *args)
{
    size_t                    i, k;
    long long                 nkeys;
    json_t                   *users, *h, *j, *out;
    redisReply              **replies;
    ngx_ai_relay_cli_cmd_t  **cmds;
    ngx_ai_relay_cli_list_t   ids, keys;

    if (ngx_ai_relay_cli_connect(cli) != NGX_AI_RELAY_CLI_OK) {
        return cli->failed_rc;
    }

    memset(&ids, 0, sizeof(ids));
    memset(&keys, 0, sizeof(keys));

    ngx_ai_relay_cli_user_ids(cli, &ids);

    for (i = 0; i < ids.nelts; i++) {
        ngx_ai_relay_cli_list_push(&keys, ngx_ai_relay_cli_sprintf(
                                          NGX_AI_RELAY_RKEY_USER("%s"),
                                          ids.elts[i]));
    }

    users = ngx_ai_relay_cli_hgetall_many(cli, &keys);

    cmds = ngx_ai_relay_cli_alloc((ids.nelts + 1) * sizeof(void *));
    replies = ngx_ai_relay_cli_alloc((ids.nelts + 1) * sizeof(void *));

    for (i = 0; i < ids.nelts; i++) {
        /* on a Redis Cluster, without the orphans of a stopped write */
        cmds[i] = ngx_ai_relay_cli_cmd(cli->cluster ? "SMEMBERS" : "SCARD",
                                       ngx_ai_relay_cli_sprintf(
                                           NGX_AI_RELAY_RKEY_KEYS("%s"),
                                           ids.elts[i]),
                                       NULL);
    }

    ngx_ai_relay_cli_pipeline(cli, cmds, ids.nelts, replies);

    out = json_array();

    if (!cli->json) {
        printf("%-6s %-20s %-9s %16s %-9s %-12s %s\n", "ID", "NAME",
               "STATUS", "BALANCE", "UNLIMITED", "GROUP", "KEYS");
    }

    for (i = 0; i < ids.nelts; i++) {
        h = json_array_get(users, i);

        if (json_is_null(h)) {
            continue;
        }

        nkeys = replies[i]->integer;

        if (cli->cluster) {
            for (nkeys = 0, k = 0; k < replies[i]->elements; k++) {
                nkeys += ngx_ai_relay_cli_key_reachable(cli, ids.elts[i],
                                              replies[i]->element[k]->str);
            }
        }

        j = ngx_ai_relay_cli_user_json(ids.elts[i], h);
        json_object_set_new(j, "keys", json_integer(nkeys));

        if (!cli->json) {
            printf("%-6s %-20s %-9s %16s %-9s %-12s %lld\n", ids.elts[i],
                   json_string_value(json_object_get(j, "name")),
                   json_string_value(json_object_get(j, "status")),
                   json_string_value(json_object_get(j, "balance_usd")),
                   json_is_true(json_object_get(j, "unlimited"))
                   ? "yes" : "no",
                   json_string_value(json_object_get(j, "group")),
                   (long long) nkeys);
        }

        json_array_append_new(out, j);
    }

    if (cli->json) {
        ngx_ai_relay_cli_print_json(out);
    }

    ngx_ai_relay_cli_free_replies(replies, ids.nelts);
    json_decref(out);
    json_decref(users);

    return NGX_AI_RELAY_CLI_OK;
}


static int
ngx_ai_relay_cli_users_money(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_args_t *args, int sign)
{
    int          rc;
    char        *uid;
    int64_t      amount, balance;
    const char  *v, *note;

    v = args->pos.elts[1];

    if (ngx_ai_relay_cli_parse_usd(v, &amount) != 0 || amount == 0) {
        return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_REJECTED,
                                      "invalid amount \"%s\" (USD greater "
                                      "than 0, e.g. 10 or 0.50, at most 6 "
                                      "decimals)", v);
    }

    note = ngx_ai_relay_cli_opt(args, "note");

    if (sign > 0 && ngx_ai_relay_cli_opt_has(args, "allow-negative")) {
        return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_USAGE,
                                      "--allow-negative is for deduct");
    }

    if (ngx_ai_relay_cli_connect(cli) != NGX_AI_RELAY_CLI_OK) {
        return cli->failed_rc;
    }

    rc = ngx_ai_relay_cli_find_user(cli, args->pos.elts[0], &uid, NULL);
    if (rc != NGX_AI_RELAY_CLI_OK) {
        return rc;
    }

    balance = 0;

    rc = ngx_ai_relay_cli_move_money(cli, uid, sign * amount,
                                     sign > 0 ? "topup" : "deduct", note,
                                     sign > 0
                                     || ngx_ai_relay_cli_opt_has(args,
                                                          "allow-negative"),
                                     &balance);
    if (rc == 1) {
        return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_REJECTED,
                                      "no user with id %s", uid);
    }

    if (rc == 2) {
        return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_REJECTED,
                                      "the balance of user %s is %s, less "
                                      "than %s (use --allow-negative)", uid,
                                      ngx_ai_relay_cli_usd(balance),
                                      ngx_ai_relay_cli_usd(amount));
    }

    return ngx_ai_relay_cli_user_done(cli, uid, sign > 0 ? "topped up"
                                                         : "deducted from");
}


static int
ngx_ai_relay_cli_users_topup(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_args_t *args)
{
    return ngx_ai_relay_cli_users_money(cli, args, 1);
}


static int
ngx_ai_relay_cli_users_deduct(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_args_t *args)
{
    return ngx_ai_relay_cli_users_money(cli, args, -1);
}


static int
ngx_ai_relay_cli_users_set(ngx_ai_relay_cli_t *cli, const char *ref,
    const char *field, const char *value, const char *what)
{
    int                      rc;
    char                    *uid;
    ngx_ai_relay_cli_list_t  fv;

    if (ngx_ai_relay_cli_connect(cli) != NGX_AI_RELAY_CLI_OK) {
        return cli->failed_rc;
    }

    rc = ngx_ai_relay_cli_find_user(cli, ref, &uid, NULL);
    if (rc != NGX_AI_RELAY_CLI_OK) {
        return rc;
    }

    memset(&fv, 0, sizeof(fv));
    ngx_ai_relay_cli_list_push(&fv, (char *) field);
    ngx_ai_relay_cli_list_push(&fv, (char *) value);

    if (!ngx_ai_relay_cli_hset_existing(cli, ngx_ai_relay_cli_sprintf(
                                             NGX_AI_RELAY_RKEY_USER("%s"), uid),
                                        &fv))
    {
        return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_REJECTED,
                                      "no user with id %s", uid);
    }

    return ngx_ai_relay_cli_user_done(cli, uid, what);
}


static int
ngx_ai_relay_cli_users_enable(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_args_t *args)
{
    return ngx_ai_relay_cli_users_set(cli, args->pos.elts[0], "status",
                                      "active", "enabled");
}


static int
ngx_ai_relay_cli_users_disable(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_args_t *args)
{
    return ngx_ai_relay_cli_users_set(cli, args->pos.elts[0], "status",
                                      "disabled", "disabled");
}


static int
ngx_ai_relay_cli_users_unlimited(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_args_t *args)
{
    const char  *v;

    v = args->pos.elts[1];

    if (strcmp(v, "on") != 0 && strcmp(v, "off") != 0) {
        return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_REJECTED,
                                      "expected \"on\" or \"off\", not "
                                      "\"%s\"", v);
    }

    return ngx_ai_relay_cli_users_set(cli, args->pos.elts[0], "unlimited",
                                      v[1] == 'n' ? "1" : "0", "updated");
}


static int
ngx_ai_relay_cli_users_group(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_args_t *args)
{
    const char  *v;

    v = args->pos.elts[1];

    if (!ngx_ai_relay_cli_valid_name(v)) {
        return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_REJECTED,
                                      "invalid group \"%s\"", v);
    }

    return ngx_ai_relay_cli_users_set(cli, args->pos.elts[0], "group", v,
                                      "updated");
}


static int
ngx_ai_relay_cli_users_ledger(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_args_t *args)
{
    int          rc;
    char        *uid;
    size_t       i, f;
    json_t      *out, *e;
    int64_t      limit, amount;
    const char  *v, *name;
    redisReply  *r, *entry, *fields;

    limit = 50;
    v = ngx_ai_relay_cli_opt(args, "limit");

    if (v && ngx_ai_relay_cli_parse_int(v, 1, 1000000, &limit) != 0) {
        return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_REJECTED,
                                      "invalid --limit \"%s\"", v);
    }

    if (ngx_ai_relay_cli_connect(cli) != NGX_AI_RELAY_CLI_OK) {
        return cli->failed_rc;
    }

    rc = ngx_ai_relay_cli_find_user(cli, args->pos.elts[0], &uid, NULL);
    if (rc != NGX_AI_RELAY_CLI_OK) {
        return rc;
    }

    r = ngx_ai_relay_cli_runv(cli, "XREVRANGE",
                              ngx_ai_relay_cli_sprintf(
                                  NGX_AI_RELAY_RKEY_LEDGER("%s"), uid),
                              "+", "-", "COUNT",
                              ngx_ai_relay_cli_sprintf("%" PRId64, limit),
                              NULL);

    out = json_array();

    if (!cli->json) {
        printf("%-20s %-8s %14s %16s  %s\n", "TIME", "OP", "AMOUNT",
               "BALANCE", "NOTE");
    }

    for (i = 0; i < r->elements; i++) {
        entry = r->element[i];

        if (entry->type != REDIS_REPLY_ARRAY || entry->elements != 2) {
            continue;
        }

        fields = entry->element[1];
        e = json_object();
        json_object_set_new(e, "id", json_string(entry->element[0]->str));

        for (f = 0; f + 1 < fields->elements; f += 2) {
            name = fields->element[f]->str;

            if (strcmp(name, "note") == 0 || strcmp(name, "op") == 0) {
                json_object_set_new(e, name, json_string(
                                          fields->element[f + 1]->str));

            } else {
                json_object_set_new(e, name, ngx_ai_relay_cli_json_int(
                                          fields->element[f + 1]->str));
            }
        }

        amount = json_integer_value(json_object_get(e, "amount"));

        if (!cli->json) {
            printf("%-20s %-8s %14s %16s  %s\n",
                   ngx_ai_relay_cli_time_str(json_integer_value(
                                         json_object_get(e, "time"))),
                   json_string_value(json_object_get(e, "op"))
                   ? json_string_value(json_object_get(e, "op")) : "",
                   ngx_ai_relay_cli_usd(amount),
                   ngx_ai_relay_cli_usd(json_integer_value(
                                         json_object_get(e, "balance"))),
                   json_string_value(json_object_get(e, "note"))
                   ? json_string_value(json_object_get(e, "note")) : "");
        }

        json_array_append_new(out, e);
    }

    if (cli->json) {
        ngx_ai_relay_cli_print_json(out);
    }

    json_decref(out);
    freeReplyObject(r);

    return NGX_AI_RELAY_CLI_OK;
}
