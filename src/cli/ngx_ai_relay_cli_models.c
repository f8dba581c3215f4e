
/*
 * Copyright (C) ngx_ai_relay authors
 *
 * ai-relay models: model names clients use.  A real model is served by
 * channels; an alias points to another name (possibly another alias).
 *
 *   ar:{cfg}:models        set   every model and alias name
 *   ar:{cfg}:model:<name>  hash  alias | channels, owned_by, created,
 *                                hidden
 *
 * The channels' own "models" field lists the real models they serve; it
 * is informative and kept in step here.
 */


#include "ngx_ai_relay_cli.h"


/* aliases are followed at most this far by "models show" */
#define NGX_AI_RELAY_CLI_ALIAS_MAX  32


static int ngx_ai_relay_cli_models_set(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_args_t *args);
static int ngx_ai_relay_cli_models_alias(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_args_t *args);
static int ngx_ai_relay_cli_models_list(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_args_t *args);
static int ngx_ai_relay_cli_models_show(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_args_t *args);
static int ngx_ai_relay_cli_models_remove(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_args_t *args);


static const ngx_ai_relay_cli_opt_t  ngx_ai_relay_cli_models_set_opts[] = {
    { "channels", 1, 0 },
    { "owned-by", 1, 0 },
    { "created", 1, 0 },
    { "hidden", 0, 0 },
    { "visible", 0, 0 },
    { NULL, 0, 0 }
};


ngx_ai_relay_cli_command_t  ngx_ai_relay_cli_models_commands[] = {

    { "models", "set", ngx_ai_relay_cli_models_set,
      ngx_ai_relay_cli_models_set_opts, 1, 1,
      "models set NAME [--channels 1,2] [--owned-by ORG] [--created WHEN] "
      "[--hidden|--visible]",
      "Create or change a real model served by the given channels (ids, in\n"
      "order; required for a new model).  An alias of that name becomes a\n"
      "real model.  --owned-by and --created are what GET /v1/models shows;\n"
      "--hidden leaves the model out of that list.\n" },

    { "models", "alias", ngx_ai_relay_cli_models_alias,
      ngx_ai_relay_cli_models_set_opts, 2, 2,
      "models alias NAME TARGET [--owned-by ORG] [--created WHEN] "
      "[--hidden|--visible]",
      "Make NAME an alias of TARGET (a model or another alias).  Refused if\n"
      "TARGET does not exist or the alias would close a cycle.  A real\n"
      "model NAME stops being served by its channels.\n" },

    { "models", "list", ngx_ai_relay_cli_models_list, NULL, 0, 0,
      "models list",
      "List models and aliases.\n" },

    { "models", "show", ngx_ai_relay_cli_models_show, NULL, 1, 1,
      "models show NAME",
      "Resolve a name the way the relay does: the alias chain, the channels\n"
      "with the upstream model name each one is sent, and the price used.\n"
    },

    { "models", "remove", ngx_ai_relay_cli_models_remove, NULL, 1, 1,
      "models remove NAME",
      "Remove a model or alias.  Refused while aliases point to it.  Its\n"
      "price stays (see prices remove).\n" },

    { NULL, NULL, NULL, NULL, 0, 0, NULL, NULL }
};


/*
 * All model names (sorted) and their hashes (same order; null where a
 * name has no hash).
 */
json_t *
ngx_ai_relay_cli_models_load(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_list_t *names)
{
    size_t                   i;
    ngx_ai_relay_cli_list_t  keys;

    memset(&keys, 0, sizeof(keys));

    ngx_ai_relay_cli_smembers(cli, NGX_AI_RELAY_RKEY_MODELS, names);
    ngx_ai_relay_cli_list_sort(names);

    for (i = 0; i < names->nelts; i++) {
        ngx_ai_relay_cli_list_push(&keys, ngx_ai_relay_cli_sprintf(
                                       NGX_AI_RELAY_RKEY_MODEL("%s"),
                                       names->elts[i]));
    }

    return ngx_ai_relay_cli_hgetall_many(cli, &keys);
}


/* add/remove a model name in the informative list of channel id */
void
ngx_ai_relay_cli_channel_models_tx(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_tx_t *tx, const char *id, const char *add,
    const char *del)
{
    char        *key, *v, *nv;
    redisReply  *r;

    key = ngx_ai_relay_cli_sprintf(NGX_AI_RELAY_RKEY_CHANNEL("%s"), id);

    ngx_ai_relay_cli_watch1(cli, key);

    if (!ngx_ai_relay_cli_exists(cli, key)) {
        return;
    }

    r = ngx_ai_relay_cli_runv(cli, "HGET", key, "models", NULL);
    v = ngx_ai_relay_cli_strdup(r->type == REDIS_REPLY_STRING ? r->str : "");
    freeReplyObject(r);

    nv = add ? ngx_ai_relay_cli_csv_add(v, add)
             : ngx_ai_relay_cli_csv_del(v, del);

    if (strcmp(v, nv) != 0) {
        ngx_ai_relay_cli_tx_add(tx, ngx_ai_relay_cli_cmd("HSET", key,
                                                 "models", nv, NULL));
    }
}


/* --owned-by, --created, --hidden / --visible into HSET/HDEL commands */
static int
ngx_ai_relay_cli_models_meta(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_args_t *args, ngx_ai_relay_cli_cmd_t *hset,
    ngx_ai_relay_cli_cmd_t *hdel)
{
    time_t       t;
    const char  *v;

    v = ngx_ai_relay_cli_opt(args, "owned-by");

    if (v) {
        if (!ngx_ai_relay_cli_valid_name(v)) {
            return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_REJECTED,
                                          "invalid --owned-by \"%s\"", v);
        }

        ngx_ai_relay_cli_cmd_add(hset, "owned_by");
        ngx_ai_relay_cli_cmd_add(hset, v);
    }

    v = ngx_ai_relay_cli_opt(args, "created");

    if (v) {
        if (ngx_ai_relay_cli_parse_time(v, cli->now, &t) != 0) {
            return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_REJECTED,
                                          "invalid --created \"%s\"", v);
        }

        ngx_ai_relay_cli_cmd_add(hset, "created");
        ngx_ai_relay_cli_cmd_addf(hset, "%" PRId64, (int64_t) t);
    }

    if (ngx_ai_relay_cli_opt_has(args, "hidden")
        && ngx_ai_relay_cli_opt_has(args, "visible"))
    {
        return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_USAGE,
                                      "--hidden and --visible exclude each "
                                      "other");
    }

    if (ngx_ai_relay_cli_opt_has(args, "hidden")) {
        ngx_ai_relay_cli_cmd_add(hset, "hidden");
        ngx_ai_relay_cli_cmd_add(hset, "1");
    }

    if (ngx_ai_relay_cli_opt_has(args, "visible")) {
        ngx_ai_relay_cli_cmd_add(hdel, "hidden");
    }

    return NGX_AI_RELAY_CLI_OK;
}


static int
ngx_ai_relay_cli_models_done(ngx_ai_relay_cli_t *cli, const char *name,
    const char *what)
{
    json_t  *h, *j;

    h = ngx_ai_relay_cli_hgetall(cli, ngx_ai_relay_cli_sprintf(
                                      NGX_AI_RELAY_RKEY_MODEL("%s"), name));
    if (h == NULL) {
        h = json_object();
    }

    if (cli->json) {
        j = json_pack("{s:s,s:O}", "name", name, "fields", h);
        ngx_ai_relay_cli_print_json(j);
        json_decref(j);

    } else if (ngx_ai_relay_cli_hval(h, "alias")) {
        printf("%s alias %s -> %s\n", what, name,
               ngx_ai_relay_cli_hstr(h, "alias"));

    } else {
        printf("%s model %s served by channels %s\n", what, name,
               ngx_ai_relay_cli_hstr(h, "channels"));
    }

    json_decref(h);

    return NGX_AI_RELAY_CLI_OK;
}


static int
ngx_ai_relay_cli_models_set(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_args_t *args)
{
    int                       rc, try;
    char                     *key, *csv;
    size_t                    i;
    json_t                   *h;
    const char               *name, *v;
    redisReply               *r;
    ngx_ai_relay_cli_tx_t     tx;
    ngx_ai_relay_cli_cmd_t   *hset, *hdel;
    ngx_ai_relay_cli_list_t   chans, old, watch;

    name = args->pos.elts[0];

    if (!ngx_ai_relay_cli_valid_name(name)) {
        return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_REJECTED,
                                      "invalid model name \"%s\"", name);
    }

    memset(&chans, 0, sizeof(chans));

    v = ngx_ai_relay_cli_opt(args, "channels");

    if (v) {
        ngx_ai_relay_cli_list_split(&chans, v, ",");

        for (i = 0; i < chans.nelts; i++) {
            if (!ngx_ai_relay_cli_is_id(chans.elts[i])) {
                return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_REJECTED,
                                              "invalid channel id \"%s\"",
                                              chans.elts[i]);
            }
        }
    }

    key = ngx_ai_relay_cli_sprintf(NGX_AI_RELAY_RKEY_MODEL("%s"), name);

    if (ngx_ai_relay_cli_connect(cli) != NGX_AI_RELAY_CLI_OK) {
        return cli->failed_rc;
    }

    for (try = 0; try < NGX_AI_RELAY_CLI_TX_TRIES; try++) {

        memset(&watch, 0, sizeof(watch));
        ngx_ai_relay_cli_list_push(&watch, key);
        ngx_ai_relay_cli_list_push(&watch, NGX_AI_RELAY_RKEY_CHANNELS);
        ngx_ai_relay_cli_watch(cli, &watch);

        h = ngx_ai_relay_cli_hgetall(cli, key);

        if (v == NULL && (h == NULL || ngx_ai_relay_cli_hval(h, "alias"))) {
            ngx_ai_relay_cli_unwatch(cli);
            json_decref(h);
            return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_USAGE,
                                          "--channels is required for a new "
                                          "model");
        }

        for (i = 0; i < chans.nelts; i++) {
            r = ngx_ai_relay_cli_runv(cli, "SISMEMBER",
                                      NGX_AI_RELAY_RKEY_CHANNELS,
                                      chans.elts[i], NULL);
            rc = (r->integer == 1);
            freeReplyObject(r);

            if (!rc) {
                ngx_ai_relay_cli_unwatch(cli);
                json_decref(h);
                return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_REJECTED,
                                              "no channel %s", chans.elts[i]);
            }
        }

        memset(&tx, 0, sizeof(tx));
        hset = ngx_ai_relay_cli_cmd("HSET", key, NULL);
        hdel = ngx_ai_relay_cli_cmd("HDEL", key, "alias", NULL);

        rc = ngx_ai_relay_cli_models_meta(cli, args, hset, hdel);
        if (rc != NGX_AI_RELAY_CLI_OK) {
            ngx_ai_relay_cli_unwatch(cli);
            json_decref(h);
            return rc;
        }

        if (ngx_ai_relay_cli_hval(h, "source")) {
            /* an imported model: a later import leaves it alone */
            ngx_ai_relay_cli_cmd_add(hset, "edited");
            ngx_ai_relay_cli_cmd_add(hset, "1");
        }

        memset(&old, 0, sizeof(old));
        ngx_ai_relay_cli_list_split(&old, ngx_ai_relay_cli_hstr(h,
                                                            "channels"), ",");

        if (v) {
            csv = ngx_ai_relay_cli_list_join(&chans, ",");
            ngx_ai_relay_cli_cmd_add(hset, "channels");
            ngx_ai_relay_cli_cmd_add(hset, csv);

            for (i = 0; i < old.nelts; i++) {
                if (!ngx_ai_relay_cli_list_has(&chans, old.elts[i])) {
                    ngx_ai_relay_cli_channel_models_tx(cli, &tx, old.elts[i],
                                                       NULL, name);
                }
            }

            for (i = 0; i < chans.nelts; i++) {
                ngx_ai_relay_cli_channel_models_tx(cli, &tx, chans.elts[i],
                                                   name, NULL);
            }
        }

        ngx_ai_relay_cli_tx_add(&tx, hdel);

        if (hset->argc > 2) {
            ngx_ai_relay_cli_tx_add(&tx, hset);
        }

        ngx_ai_relay_cli_tx_add(&tx, ngx_ai_relay_cli_cmd("SADD",
                                         NGX_AI_RELAY_RKEY_MODELS, name, NULL));
        tx.version = 1;

        json_decref(h);

        if (ngx_ai_relay_cli_tx_exec(cli, &tx) == 0) {
            return ngx_ai_relay_cli_models_done(cli, name, "set");
        }
    }

    return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_FAILED,
                                  "too much concurrent change, try again");
}


static int
ngx_ai_relay_cli_models_alias(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_args_t *args)
{
    int                       rc, try, depth;
    char                     *key, *cur, *next;
    size_t                    i;
    json_t                   *h, *t;
    const char               *name, *target;
    ngx_ai_relay_cli_tx_t     tx;
    ngx_ai_relay_cli_cmd_t   *hset, *hdel;
    ngx_ai_relay_cli_list_t   old, chain;

    name = args->pos.elts[0];
    target = args->pos.elts[1];

    if (!ngx_ai_relay_cli_valid_name(name)) {
        return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_REJECTED,
                                      "invalid model name \"%s\"", name);
    }

    if (!ngx_ai_relay_cli_valid_name(target)) {
        return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_REJECTED,
                                      "invalid model name \"%s\"", target);
    }

    if (strcmp(name, target) == 0) {
        return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_REJECTED,
                                      "an alias cannot point to itself");
    }

    if (ngx_ai_relay_cli_opt(args, "channels")) {
        return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_USAGE,
                                      "an alias has no channels");
    }

    key = ngx_ai_relay_cli_sprintf(NGX_AI_RELAY_RKEY_MODEL("%s"), name);

    if (ngx_ai_relay_cli_connect(cli) != NGX_AI_RELAY_CLI_OK) {
        return cli->failed_rc;
    }

    for (try = 0; try < NGX_AI_RELAY_CLI_TX_TRIES; try++) {

        ngx_ai_relay_cli_watch1(cli, key);
        ngx_ai_relay_cli_watch1(cli, NGX_AI_RELAY_RKEY_MODELS);

        /* follow the target's chain: it must end in a real model */

        memset(&chain, 0, sizeof(chain));
        ngx_ai_relay_cli_list_push(&chain, (char *) name);
        cur = (char *) target;

        for (depth = 0; ; depth++) {
            ngx_ai_relay_cli_list_push(&chain, cur);

            next = ngx_ai_relay_cli_sprintf(NGX_AI_RELAY_RKEY_MODEL("%s"), cur);
            ngx_ai_relay_cli_watch1(cli, next);
            t = ngx_ai_relay_cli_hgetall(cli, next);

            if (t == NULL) {
                ngx_ai_relay_cli_unwatch(cli);
                return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_REJECTED,
                                              "%s model \"%s\"",
                                              depth ? "broken alias chain: "
                                                      "no" : "no",
                                              cur);
            }

            if (ngx_ai_relay_cli_hval(t, "alias") == NULL) {
                json_decref(t);
                break;
            }

            next = ngx_ai_relay_cli_strdup(ngx_ai_relay_cli_hstr(t, "alias"));
            json_decref(t);

            if (ngx_ai_relay_cli_list_has(&chain, next)) {
                ngx_ai_relay_cli_list_push(&chain, next);
                ngx_ai_relay_cli_unwatch(cli);
                return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_REJECTED,
                                              "refusing a cycle: %s",
                                              ngx_ai_relay_cli_list_join(
                                                            &chain, " -> "));
            }

            if (depth >= NGX_AI_RELAY_CLI_ALIAS_MAX) {
                ngx_ai_relay_cli_unwatch(cli);
                return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_REJECTED,
                                              "alias chain too long: %s",
                                              ngx_ai_relay_cli_list_join(
                                                            &chain, " -> "));
            }

            cur = next;
        }

        h = ngx_ai_relay_cli_hgetall(cli, key);

        memset(&tx, 0, sizeof(tx));
        hset = ngx_ai_relay_cli_cmd("HSET", key, "alias", target, NULL);
        hdel = ngx_ai_relay_cli_cmd("HDEL", key, "channels", NULL);

        rc = ngx_ai_relay_cli_models_meta(cli, args, hset, hdel);
        if (rc != NGX_AI_RELAY_CLI_OK) {
            ngx_ai_relay_cli_unwatch(cli);
            json_decref(h);
            return rc;
        }

        if (ngx_ai_relay_cli_hval(h, "source")) {
            ngx_ai_relay_cli_cmd_add(hset, "edited");
            ngx_ai_relay_cli_cmd_add(hset, "1");
        }

        memset(&old, 0, sizeof(old));
        ngx_ai_relay_cli_list_split(&old, ngx_ai_relay_cli_hstr(h,
                                                            "channels"), ",");

        for (i = 0; i < old.nelts; i++) {
            ngx_ai_relay_cli_channel_models_tx(cli, &tx, old.elts[i], NULL,
                                               name);
        }

        if (old.nelts && !cli->json) {
            fprintf(stderr, "ai-relay: %s was served by channels %s; it is "
                            "an alias now\n", name,
                    ngx_ai_relay_cli_list_join(&old, ","));
        }

        ngx_ai_relay_cli_tx_add(&tx, hdel);
        ngx_ai_relay_cli_tx_add(&tx, hset);
        ngx_ai_relay_cli_tx_add(&tx, ngx_ai_relay_cli_cmd("SADD",
                                         NGX_AI_RELAY_RKEY_MODELS, name, NULL));
        tx.version = 1;

        json_decref(h);

        if (ngx_ai_relay_cli_tx_exec(cli, &tx) == 0) {
            return ngx_ai_relay_cli_models_done(cli, name, "set");
        }
    }

    return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_FAILED,
                                  "too much concurrent change, try again");
}


static int
ngx_ai_relay_cli_models_list(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_args_t *args)
{
    size_t                    i;
    json_t                   *models, *h, *out, *j;
    redisReply              **replies;
    ngx_ai_relay_cli_cmd_t  **cmds;
    ngx_ai_relay_cli_list_t   names;

    if (ngx_ai_relay_cli_connect(cli) != NGX_AI_RELAY_CLI_OK) {
        return cli->failed_rc;
    }

    memset(&names, 0, sizeof(names));
    models = ngx_ai_relay_cli_models_load(cli, &names);

    cmds = ngx_ai_relay_cli_alloc((names.nelts + 1) * sizeof(void *));
    replies = ngx_ai_relay_cli_alloc((names.nelts + 1) * sizeof(void *));

    for (i = 0; i < names.nelts; i++) {
        cmds[i] = ngx_ai_relay_cli_cmd("EXISTS", ngx_ai_relay_cli_sprintf(
                                       NGX_AI_RELAY_RKEY_PRICE("%s"),
                                       names.elts[i]),
                                       NULL);
    }

    ngx_ai_relay_cli_pipeline(cli, cmds, names.nelts, replies);

    out = json_array();

    if (!cli->json) {
        printf("%-32s %-6s %-24s %-5s %s\n", "NAME", "TYPE",
               "TARGET/CHANNELS", "PRICE", "HIDDEN");
    }

    for (i = 0; i < names.nelts; i++) {
        h = json_array_get(models, i);

        if (json_is_null(h)) {
            h = NULL;
        }

        j = json_pack("{s:s,s:s,s:b,s:b}", "name", names.elts[i],
                      "type", ngx_ai_relay_cli_hval(h, "alias")
                              ? "alias" : "model",
                      "priced", replies[i]->integer == 1,
                      "hidden", strcmp(ngx_ai_relay_cli_hstr(h, "hidden"),
                                       "1") == 0);

        if (ngx_ai_relay_cli_hval(h, "alias")) {
            json_object_set_new(j, "alias", json_string(
                                     ngx_ai_relay_cli_hstr(h, "alias")));

        } else {
            json_object_set_new(j, "channels", json_string(
                                     ngx_ai_relay_cli_hstr(h, "channels")));
        }

        if (!cli->json) {
            printf("%-32s %-6s %-24s %-5s %s\n", names.elts[i],
                   json_string_value(json_object_get(j, "type")),
                   ngx_ai_relay_cli_hval(h, "alias")
                   ? ngx_ai_relay_cli_sprintf("-> %s",
                                     ngx_ai_relay_cli_hstr(h, "alias"))
                   : ngx_ai_relay_cli_hstr(h, "channels"),
                   replies[i]->integer == 1 ? "yes" : "-",
                   json_is_true(json_object_get(j, "hidden")) ? "yes" : "");
        }

        json_array_append_new(out, j);
    }

    if (cli->json) {
        ngx_ai_relay_cli_print_json(out);
    }

    ngx_ai_relay_cli_free_replies(replies, names.nelts);
    json_decref(out);
    json_decref(models);

    return NGX_AI_RELAY_CLI_OK;
}


static int
ngx_ai_relay_cli_models_show(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_args_t *args)
{
    char                     *cur, *priced, *problem, *upstream;
    size_t                    i;
    json_t                   *h, *out, *chans, *c, *price, *p, *pv;
    const char               *name, *v, *key, *f;
    ngx_ai_relay_cli_list_t   chain, ids;

    name = args->pos.elts[0];

    if (ngx_ai_relay_cli_connect(cli) != NGX_AI_RELAY_CLI_OK) {
        return cli->failed_rc;
    }

    memset(&chain, 0, sizeof(chain));
    memset(&ids, 0, sizeof(ids));

    cur = (char *) name;
    problem = NULL;
    h = NULL;

    for ( ;; ) {
        ngx_ai_relay_cli_list_push(&chain, cur);
        h = ngx_ai_relay_cli_hgetall(cli, ngx_ai_relay_cli_sprintf(
                                          NGX_AI_RELAY_RKEY_MODEL("%s"), cur));
        if (h == NULL) {
            if (chain.nelts == 1) {
                return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_REJECTED,
                                              "no model \"%s\"", name);
            }

            problem = "broken";
            break;
        }

        v = ngx_ai_relay_cli_hval(h, "alias");

        if (v == NULL || v[0] == '\0') {
            break;
        }

        cur = ngx_ai_relay_cli_strdup(v);
        json_decref(h);
        h = NULL;

        if (ngx_ai_relay_cli_list_has(&chain, cur)) {
            ngx_ai_relay_cli_list_push(&chain, cur);
            problem = "cycle";
            break;
        }

        if (chain.nelts > NGX_AI_RELAY_CLI_ALIAS_MAX) {
            problem = "deep";
            break;
        }
    }

    out = json_pack("{s:s,s:s}", "name", name, "chain",
                    ngx_ai_relay_cli_list_join(&chain, " -> "));

    if (problem) {
        json_object_set_new(out, "problem", json_string(problem));

    } else {
        json_object_set_new(out, "resolved", json_string(cur));
    }

    /* price: the first name of the chain with a price hash */

    priced = NULL;
    price = NULL;

    for (i = 0; i < chain.nelts && !problem; i++) {
        price = ngx_ai_relay_cli_hgetall(cli, ngx_ai_relay_cli_sprintf(
                                              NGX_AI_RELAY_RKEY_PRICE("%s"),
                                              chain.elts[i]));
        if (price) {
            priced = chain.elts[i];
            break;
        }
    }

    json_object_set_new(out, "priced_as", priced ? json_string(priced)
                                                 : json_null());
    p = json_object();

    if (price) {
        json_object_foreach(price, f, pv) {
            json_object_set_new(p, f, ngx_ai_relay_cli_json_int(
                                              json_string_value(pv)));
        }
    }

    json_object_set_new(out, "price", p);

    chans = json_array();

    if (h && !problem) {
        ngx_ai_relay_cli_list_split(&ids, ngx_ai_relay_cli_hstr(h,
                                                            "channels"), ",");

        for (i = 0; i < ids.nelts; i++) {
            key = ngx_ai_relay_cli_sprintf(NGX_AI_RELAY_RKEY_CHANNEL("%s"),
                                           ids.elts[i]);
            c = ngx_ai_relay_cli_hgetall(cli, key);

            if (c == NULL) {
                json_array_append_new(chans, json_pack("{s:o,s:b}", "id",
                                      ngx_ai_relay_cli_json_int(ids.elts[i]),
                                      "missing", 1));
                continue;
            }

            upstream = ngx_ai_relay_cli_sprintf("map:%s", cur);
            v = ngx_ai_relay_cli_hval(c, upstream);

            json_array_append_new(chans, json_pack(
                        "{s:o,s:s,s:s,s:s,s:s,s:I,s:I,s:s}",
                        "id", ngx_ai_relay_cli_json_int(ids.elts[i]),
                        "name", ngx_ai_relay_cli_hstr(c, "name"),
                        "provider", ngx_ai_relay_cli_hstr(c, "provider"),
                        "base_url", ngx_ai_relay_cli_hstr(c, "base_url"),
                        "status", ngx_ai_relay_cli_hval(c, "status")
                                  ? ngx_ai_relay_cli_hstr(c, "status")
                                  : "enabled",
                        "priority",
                        (json_int_t) ngx_ai_relay_cli_hint(c, "priority", 0),
                        "weight",
                        (json_int_t) ngx_ai_relay_cli_hint(c, "weight", 1),
                        "upstream_model", v ? v : cur));
            json_decref(c);
        }
    }

    json_object_set_new(out, "channels", chans);

    if (cli->json) {
        ngx_ai_relay_cli_print_json(out);

    } else {
        printf("name:       %s\n", name);
        printf("chain:      %s\n", ngx_ai_relay_cli_list_join(&chain,
                                                               " -> "));

        if (problem) {
            printf("problem:    %s (the relay answers 404/500 for this "
                   "name)\n", problem);

        } else {
            printf("resolved:   %s\n", cur);
        }

        if (priced) {
            printf("priced as:  %s\n", priced);

            json_object_foreach(p, f, pv) {
                printf("  %-24s %" PRId64 " uUSD (%s)\n", f,
                       (int64_t) json_integer_value(pv),
                       ngx_ai_relay_cli_usd(json_integer_value(pv)));
            }

        } else {
            printf("priced as:  - (no price)\n");
        }

        printf("channels:   %zu\n", json_array_size(chans));

        json_array_foreach(chans, i, c) {
            if (json_object_get(c, "missing")) {
                printf("  %" PRId64 " (missing)\n",
                       (int64_t) json_integer_value(json_object_get(c,
                                                                    "id")));
                continue;
            }

            printf("  %-4" PRId64 " %-20s %-18s %-9s prio %-4" PRId64
                   " weight %-4" PRId64 " %s as %s\n",
                   (int64_t) json_integer_value(json_object_get(c, "id")),
                   json_string_value(json_object_get(c, "name")),
                   json_string_value(json_object_get(c, "provider")),
                   json_string_value(json_object_get(c, "status")),
                   (int64_t) json_integer_value(json_object_get(c,
                                                             "priority")),
                   (int64_t) json_integer_value(json_object_get(c,
                                                             "weight")),
                   json_string_value(json_object_get(c, "base_url")),
                   json_string_value(json_object_get(c, "upstream_model")));
        }
    }

    json_decref(out);
    json_decref(h);
    json_decref(price);

    return NGX_AI_RELAY_CLI_OK;
}


static int
ngx_ai_relay_cli_models_remove(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_args_t *args)
{
    int                       try;
    char                     *key;
    size_t                    i;
    json_t                   *models, *h, *m, *j;
    const char               *name;
    ngx_ai_relay_cli_tx_t     tx;
    ngx_ai_relay_cli_list_t   names, refs, old;

    name = args->pos.elts[0];
    key = ngx_ai_relay_cli_sprintf(NGX_AI_RELAY_RKEY_MODEL("%s"), name);

    if (ngx_ai_relay_cli_connect(cli) != NGX_AI_RELAY_CLI_OK) {
        return cli->failed_rc;
    }

    for (try = 0; try < NGX_AI_RELAY_CLI_TX_TRIES; try++) {

        ngx_ai_relay_cli_watch1(cli, key);
        ngx_ai_relay_cli_watch1(cli, NGX_AI_RELAY_RKEY_MODELS);

        h = ngx_ai_relay_cli_hgetall(cli, key);

        memset(&names, 0, sizeof(names));
        memset(&refs, 0, sizeof(refs));
        models = ngx_ai_relay_cli_models_load(cli, &names);

        if (h == NULL && !ngx_ai_relay_cli_list_has(&names, name)) {
            ngx_ai_relay_cli_unwatch(cli);
            json_decref(models);
            return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_REJECTED,
                                          "no model \"%s\"", name);
        }

        json_array_foreach(models, i, m) {
            if (strcmp(ngx_ai_relay_cli_hstr(m, "alias"), name) == 0) {
                ngx_ai_relay_cli_list_push(&refs, names.elts[i]);
            }
        }

        json_decref(models);

        if (refs.nelts) {
            ngx_ai_relay_cli_unwatch(cli);
            json_decref(h);
            return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_REJECTED,
                                          "aliases point to \"%s\": %s; "
                                          "remove or re-point them first",
                                          name, ngx_ai_relay_cli_list_join(
                                                                &refs, ", "));
        }

        memset(&tx, 0, sizeof(tx));
        memset(&old, 0, sizeof(old));

        ngx_ai_relay_cli_list_split(&old, ngx_ai_relay_cli_hstr(h,
                                                            "channels"), ",");

        for (i = 0; i < old.nelts; i++) {
            ngx_ai_relay_cli_channel_models_tx(cli, &tx, old.elts[i], NULL,
                                               name);
        }

        ngx_ai_relay_cli_tx_add(&tx, ngx_ai_relay_cli_cmd("DEL", key,
                                                          NULL));
        ngx_ai_relay_cli_tx_add(&tx, ngx_ai_relay_cli_cmd("SREM",
                                         NGX_AI_RELAY_RKEY_MODELS, name, NULL));
        tx.version = 1;

        json_decref(h);

        if (ngx_ai_relay_cli_tx_exec(cli, &tx) == 0) {
            if (cli->json) {
                j = json_pack("{s:s,s:b}", "name", name, "removed", 1);
                ngx_ai_relay_cli_print_json(j);
                json_decref(j);

            } else {
                printf("removed model %s\n", name);
            }

            return NGX_AI_RELAY_CLI_OK;
        }
    }

    return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_FAILED,
                                  "too much concurrent change, try again");
}
