
/*
 * Copyright (C) ngx_ai_relay authors
 *
 * ai-relay channels: upstreams that serve models.
 *
 *   ar:{cfg}:channels         set   all channel ids
 *   ar:{cfg}:channel:<id>     hash  name provider base_url keys priority
 *                                   weight status models map:<model>
 *
 * "channels test" is in ngx_ai_relay_cli_probe.c (libcurl).
 *
 * "--models" keeps both sides in step: the channel id is added to (or
 * removed from) the "channels" list of each real model.
 */


#include "ngx_ai_relay_cli.h"


typedef struct {
    const char                   *name;
    const char                   *provider;
    const char                   *base_url;
    char                         *keys;      /* newline-separated */
    const char                   *priority;
    const char                   *weight;
    ngx_ai_relay_cli_list_t       models;
    ngx_ai_relay_cli_list_t       map;       /* "map:client", "upstream" */
    ngx_ai_relay_cli_list_t       unmap;     /* "map:client" */
    unsigned                      has_models:1;
} ngx_ai_relay_cli_channel_conf_t;


static int ngx_ai_relay_cli_channels_create(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_args_t *args);
static int ngx_ai_relay_cli_channels_update(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_args_t *args);
static int ngx_ai_relay_cli_channels_list(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_args_t *args);
static int ngx_ai_relay_cli_channels_show(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_args_t *args);
static int ngx_ai_relay_cli_channels_enable(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_args_t *args);
static int ngx_ai_relay_cli_channels_disable(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_args_t *args);
static int ngx_ai_relay_cli_channels_remove(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_args_t *args);


static const ngx_ai_relay_cli_opt_t  ngx_ai_relay_cli_channels_opts[] = {
    { "id", 1, 0 },
    { "name", 1, 0 },
    { "provider", 1, 0 },
    { "base-url", 1, 0 },
    { "key", 1, 1 },
    { "priority", 1, 0 },
    { "weight", 1, 0 },
    { "models", 1, 0 },
    { "map", 1, 1 },
    { "unmap", 1, 1 },
    { "disabled", 0, 0 },
    { NULL, 0, 0 }
};


static const ngx_ai_relay_cli_opt_t  ngx_ai_relay_cli_channels_test_opts[] = {
    { "all", 0, 0 },
    { "model", 1, 0 },
    { "timeout", 1, 0 },
    { NULL, 0, 0 }
};


#define NGX_AI_RELAY_CLI_CHANNEL_HELP                                         \
    "  --name NAME          a label\n"                                        \
    "  --provider P         openai, openai-compatible, anthropic or gemini\n" \
    "  --base-url URL       http(s)://host[:port][/prefix]; a prefix with a\n"\
    "                       version (/v1, /v1beta/openai) is the API root;\n"\
    "                       defaults: openai\n"                              \
    "                       https://api.openai.com, anthropic\n"              \
    "                       https://api.anthropic.com, gemini\n"              \
    "                       https://generativelanguage.googleapis.com;\n"     \
    "                       required for openai-compatible\n"                 \
    "  --key KEY            upstream key; repeat for several (used in\n"      \
    "                       rotation); replaces all keys on update\n"         \
    "  --priority N         higher tiers are tried first (default 0)\n"       \
    "  --weight N           weighted random choice in a tier (default 1)\n"   \
    "  --models a,b         real models this channel serves (sets the\n"      \
    "                       models' channel lists too)\n"                     \
    "  --map CLIENT=UPSTREAM  send model CLIENT upstream as UPSTREAM\n"       \
    "                       (repeatable)\n"


ngx_ai_relay_cli_command_t  ngx_ai_relay_cli_channels_commands[] = {

    { "channels", "create", ngx_ai_relay_cli_channels_create,
      ngx_ai_relay_cli_channels_opts, 0, 0,
      "channels create --provider P [--name NAME] [--base-url URL] "
      "[--key KEY]... [--priority N] [--weight N] [--models a,b] "
      "[--map CLIENT=UPSTREAM]... [--disabled] [--id N]",
      "Create a channel.\n" NGX_AI_RELAY_CLI_CHANNEL_HELP
      "  --disabled           create it disabled\n"
      "  --id N               channel id instead of the next free one\n" },

    { "channels", "update", ngx_ai_relay_cli_channels_update,
      ngx_ai_relay_cli_channels_opts, 1, 1,
      "channels update ID [--name NAME] [--provider P] [--base-url URL] "
      "[--key KEY]... [--priority N] [--weight N] [--models a,b] "
      "[--map CLIENT=UPSTREAM]... [--unmap CLIENT]...",
      "Change a channel; options not given stay as they are.\n"
      NGX_AI_RELAY_CLI_CHANNEL_HELP
      "  --unmap CLIENT       drop the mapping of CLIENT (repeatable)\n" },

    { "channels", "list", ngx_ai_relay_cli_channels_list, NULL, 0, 0,
      "channels list",
      "List channels (upstream keys are never shown in full).\n" },

    { "channels", "show", ngx_ai_relay_cli_channels_show, NULL, 1, 1,
      "channels show ID",
      "Show a channel (upstream keys masked).\n" },

    { "channels", "enable", ngx_ai_relay_cli_channels_enable, NULL, 1, 1,
      "channels enable ID",
      "Enable a channel.\n" },

    { "channels", "disable", ngx_ai_relay_cli_channels_disable, NULL, 1, 1,
      "channels disable ID",
      "Disable a channel: the relay stops choosing it.\n" },

    { "channels", "remove", ngx_ai_relay_cli_channels_remove, NULL, 1, 1,
      "channels remove ID",
      "Remove a channel and take it out of every model's channel list.\n" },

    { "channels", "test", ngx_ai_relay_cli_channels_test,
      ngx_ai_relay_cli_channels_test_opts, 0, 1,
      "channels test ID|--all [--model M] [--timeout S]",
      "Send a minimal real request (\"hi\", at most 1 output token)\n"
      "through a channel with each of its upstream keys, straight to its\n"
      "base URL (not through nginx; disabled channels too), and print\n"
      "per key: HTTP status, latency and the upstream's error message or\n"
      "the connection error.  Keys are shown masked.\n"
      "  --all        every channel\n"
      "  --model M    the model to ask for (default: the first model that\n"
      "               routes to the channel); the channel's mapping of M,\n"
      "               if any, is what is sent\n"
      "  --timeout S  seconds per request (default 30)\n"
      "Exit code 1 when any test failed.\n" },

    { NULL, NULL, NULL, NULL, 0, 0, NULL, NULL }
};


const char *
ngx_ai_relay_cli_provider_base_url(const char *provider)
{
    if (strcmp(provider, "openai") == 0) {
        return "https://api.openai.com";
    }

    if (strcmp(provider, "anthropic") == 0) {
        return "https://api.anthropic.com";
    }

    if (strcmp(provider, "gemini") == 0) {
        return "https://generativelanguage.googleapis.com";
    }

    return NULL;
}


int
ngx_ai_relay_cli_valid_provider(const char *p)
{
    return strcmp(p, "openai") == 0 || strcmp(p, "openai-compatible") == 0
           || strcmp(p, "anthropic") == 0 || strcmp(p, "gemini") == 0;
}


/* http(s)://host..., no spaces; the trailing "/" is dropped; NULL: bad */
char *
ngx_ai_relay_cli_base_url(const char *url)
{
    size_t       n, i;
    const char  *host;

    if (strncmp(url, "http://", 7) == 0) {
        host = url + 7;

    } else if (strncmp(url, "https://", 8) == 0) {
        host = url + 8;

    } else {
        return NULL;
    }

    if (*host == '\0' || *host == '/') {
        return NULL;
    }

    n = strlen(url);

    for (i = 0; i < n; i++) {
        if ((unsigned char) url[i] <= 0x20 || url[i] == 0x7f) {
            return NULL;
        }
    }

    while (n > (size_t) (host - url) && url[n - 1] == '/') {
        n--;
    }

    return ngx_ai_relay_cli_strndup(url, n);
}


/* an upstream key: 1..4096 printable ASCII bytes without spaces */
int
ngx_ai_relay_cli_valid_upstream_key(const char *k)
{
    size_t  i;

    for (i = 0; k[i]; i++) {
        if ((unsigned char) k[i] <= 0x20 || (unsigned char) k[i] >= 0x7f) {
            return 0;
        }
    }

    return i > 0 && i <= 4096;
}


static int
ngx_ai_relay_cli_channel_conf(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_args_t *args, ngx_ai_relay_cli_channel_conf_t *cc)
{
    char                     *eq, *csv;
    size_t                    i;
    int64_t                   n;
    const char               *v;
    ngx_ai_relay_cli_list_t  *l;

    memset(cc, 0, sizeof(ngx_ai_relay_cli_channel_conf_t));

    cc->name = ngx_ai_relay_cli_opt(args, "name");

    if (cc->name && (cc->name[0] == '\0' || strlen(cc->name) > 200
                     || strchr(cc->name, '\n')))
    {
        return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_REJECTED,
                                      "invalid --name");
    }

    cc->provider = ngx_ai_relay_cli_opt(args, "provider");

    if (cc->provider && !ngx_ai_relay_cli_valid_provider(cc->provider)) {
        return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_REJECTED,
                                      "invalid --provider \"%s\" (openai, "
                                      "openai-compatible, anthropic, "
                                      "gemini)", cc->provider);
    }

    v = ngx_ai_relay_cli_opt(args, "base-url");

    if (v) {
        cc->base_url = ngx_ai_relay_cli_base_url(v);

        if (cc->base_url == NULL) {
            return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_REJECTED,
                                          "invalid --base-url \"%s\" "
                                          "(http://host[:port][/prefix] or "
                                          "https://...)", v);
        }
    }

    l = ngx_ai_relay_cli_opt_list(args, "key");

    for (i = 0; i < l->nelts; i++) {
        if (!ngx_ai_relay_cli_valid_upstream_key(l->elts[i])) {
            return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_REJECTED,
                                          "invalid --key number %zu "
                                          "(printable, no spaces)", i + 1);
        }
    }

    if (l->nelts) {
        cc->keys = ngx_ai_relay_cli_list_join(l, "\n");
    }

    v = ngx_ai_relay_cli_opt(args, "priority");

    if (v) {
        if (ngx_ai_relay_cli_parse_int(v, -1000000000, 1000000000, &n) != 0) {
            return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_REJECTED,
                                          "invalid --priority \"%s\"", v);
        }

        cc->priority = ngx_ai_relay_cli_sprintf("%" PRId64, n);
    }

    v = ngx_ai_relay_cli_opt(args, "weight");

    if (v) {
        if (ngx_ai_relay_cli_parse_int(v, 0, 1000000, &n) != 0) {
            return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_REJECTED,
                                          "invalid --weight \"%s\" (0 to "
                                          "1000000)", v);
        }

        cc->weight = ngx_ai_relay_cli_sprintf("%" PRId64, n);
    }

    v = ngx_ai_relay_cli_opt(args, "models");

    if (v) {
        if (ngx_ai_relay_cli_models_csv(v, &csv) != 0) {
            return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_REJECTED,
                                          "invalid --models \"%s\"", v);
        }

        ngx_ai_relay_cli_list_split(&cc->models, csv, ",");
        cc->has_models = 1;
    }

    l = ngx_ai_relay_cli_opt_list(args, "map");

    for (i = 0; i < l->nelts; i++) {
        eq = strchr(l->elts[i], '=');

        if (eq == NULL
            || !ngx_ai_relay_cli_valid_name(ngx_ai_relay_cli_strndup(
                                          l->elts[i], eq - l->elts[i]))
            || !ngx_ai_relay_cli_valid_name(eq + 1))
        {
            return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_REJECTED,
                                          "invalid --map \"%s\" "
                                          "(CLIENT=UPSTREAM)", l->elts[i]);
        }

        ngx_ai_relay_cli_list_push(&cc->map, ngx_ai_relay_cli_sprintf(
                                       "map:%.*s", (int) (eq - l->elts[i]),
                                       l->elts[i]));
        ngx_ai_relay_cli_list_push(&cc->map, eq + 1);
    }

    l = ngx_ai_relay_cli_opt_list(args, "unmap");

    for (i = 0; i < l->nelts; i++) {
        if (!ngx_ai_relay_cli_valid_name(l->elts[i])) {
            return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_REJECTED,
                                          "invalid --unmap \"%s\"",
                                          l->elts[i]);
        }

        ngx_ai_relay_cli_list_push(&cc->unmap, ngx_ai_relay_cli_sprintf(
                                                     "map:%s", l->elts[i]));
    }

    return NGX_AI_RELAY_CLI_OK;
}


/* an imported model changed by the operator: a later import keeps it */
static void
ngx_ai_relay_cli_channel_edited(ngx_ai_relay_cli_tx_t *tx, const char *key,
    json_t *m)
{
    if (ngx_ai_relay_cli_hval(m, "source")) {
        ngx_ai_relay_cli_tx_add(tx, ngx_ai_relay_cli_cmd("HSET", key,
                                                     "edited", "1", NULL));
    }
}


/*
 * Make the models that list channel id be exactly "want" (when given):
 * WATCHes the model hashes and adds their changes to tx.  REJECTED if a
 * wanted name is an alias.
 */
static int
ngx_ai_relay_cli_channel_link(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_tx_t *tx, const char *id,
    ngx_ai_relay_cli_list_t *want)
{
    size_t                   i;
    json_t                  *models, *m;
    const char              *key, *chans;
    ngx_ai_relay_cli_list_t  names, keys;

    memset(&names, 0, sizeof(names));
    memset(&keys, 0, sizeof(keys));

    /* WATCH every model, then read them (the set itself is watched) */

    ngx_ai_relay_cli_smembers(cli, NGX_AI_RELAY_RKEY_MODELS, &names);

    for (i = 0; i < names.nelts; i++) {
        ngx_ai_relay_cli_list_push(&keys, ngx_ai_relay_cli_sprintf(
                                       NGX_AI_RELAY_RKEY_MODEL("%s"),
                                       names.elts[i]));
    }

    ngx_ai_relay_cli_watch(cli, &keys);

    memset(&names, 0, sizeof(names));
    models = ngx_ai_relay_cli_models_load(cli, &names);

    for (i = 0; i < names.nelts; i++) {
        key = ngx_ai_relay_cli_sprintf(NGX_AI_RELAY_RKEY_MODEL("%s"),
                                       names.elts[i]);
        m = json_array_get(models, i);
        chans = ngx_ai_relay_cli_hstr(m, "channels");

        if (want && ngx_ai_relay_cli_list_has(want, names.elts[i])) {

            if (ngx_ai_relay_cli_hval(m, "alias")) {
                json_decref(models);
                return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_REJECTED,
                                              "\"%s\" is an alias; a channel "
                                              "serves real models",
                                              names.elts[i]);
            }

            if (!ngx_ai_relay_cli_csv_has(chans, id)) {
                ngx_ai_relay_cli_tx_add(tx, ngx_ai_relay_cli_cmd("HSET", key,
                                   "channels",
                                   ngx_ai_relay_cli_csv_add(chans, id),
                                   NULL));
                ngx_ai_relay_cli_channel_edited(tx, key, m);
            }

        } else if (ngx_ai_relay_cli_csv_has(chans, id)) {
            ngx_ai_relay_cli_tx_add(tx, ngx_ai_relay_cli_cmd("HSET", key,
                                   "channels",
                                   ngx_ai_relay_cli_csv_del(chans, id),
                                   NULL));
            ngx_ai_relay_cli_channel_edited(tx, key, m);
        }
    }

    /* new model names */

    for (i = 0; want && i < want->nelts; i++) {
        if (ngx_ai_relay_cli_list_has(&names, want->elts[i])) {
            continue;
        }

        key = ngx_ai_relay_cli_sprintf(NGX_AI_RELAY_RKEY_MODEL("%s"),
                                       want->elts[i]);
        ngx_ai_relay_cli_watch1(cli, key);

        ngx_ai_relay_cli_tx_add(tx, ngx_ai_relay_cli_cmd("HSET", key,
                                               "channels", id, NULL));
        ngx_ai_relay_cli_tx_add(tx, ngx_ai_relay_cli_cmd("SADD",
                                 NGX_AI_RELAY_RKEY_MODELS, want->elts[i],
                                 NULL));
    }

    json_decref(models);

    return NGX_AI_RELAY_CLI_OK;
}


static json_t *
ngx_ai_relay_cli_channel_json(const char *id, json_t *h)
{
    size_t                   i;
    json_t                  *j, *keys, *map, *v;
    const char              *f;
    ngx_ai_relay_cli_list_t  kl;

    memset(&kl, 0, sizeof(kl));
    ngx_ai_relay_cli_list_split(&kl, ngx_ai_relay_cli_hstr(h, "keys"), "\n");

    keys = json_array();

    for (i = 0; i < kl.nelts; i++) {
        json_array_append_new(keys, json_string(ngx_ai_relay_cli_mask(
                                                              kl.elts[i])));
    }

    map = json_object();

    json_object_foreach(h, f, v) {
        if (strncmp(f, "map:", 4) == 0) {
            json_object_set(map, f + 4, v);
        }
    }

    j = json_pack("{s:o,s:s,s:s,s:s,s:o,s:I,s:I,s:s,s:s,s:o}",
                  "id", ngx_ai_relay_cli_json_int(id),
                  "name", ngx_ai_relay_cli_hstr(h, "name"),
                  "provider", ngx_ai_relay_cli_hstr(h, "provider"),
                  "base_url", ngx_ai_relay_cli_hstr(h, "base_url"),
                  "keys", keys,
                  "priority",
                  (json_int_t) ngx_ai_relay_cli_hint(h, "priority", 0),
                  "weight", (json_int_t) ngx_ai_relay_cli_hint(h, "weight", 1),
                  "status", ngx_ai_relay_cli_hval(h, "status")
                            ? ngx_ai_relay_cli_hstr(h, "status") : "enabled",
                  "models", ngx_ai_relay_cli_hstr(h, "models"),
                  "map", map);

    if (ngx_ai_relay_cli_hval(h, "source")) {
        json_object_set_new(j, "source",
                            json_string(ngx_ai_relay_cli_hstr(h, "source")));
    }

    return j;
}


static int
ngx_ai_relay_cli_channel_done(ngx_ai_relay_cli_t *cli, const char *id,
    const char *what)
{
    json_t  *h, *j;

    h = ngx_ai_relay_cli_hgetall(cli, ngx_ai_relay_cli_sprintf(
                                      NGX_AI_RELAY_RKEY_CHANNEL("%s"), id));
    if (h == NULL) {
        h = json_object();
    }

    j = ngx_ai_relay_cli_channel_json(id, h);

    if (cli->json) {
        ngx_ai_relay_cli_print_json(j);

    } else {
        printf("%s channel %s (%s): %s %s, %s\n", what, id,
               ngx_ai_relay_cli_hstr(h, "name"),
               ngx_ai_relay_cli_hstr(h, "provider"),
               ngx_ai_relay_cli_hstr(h, "base_url"),
               json_string_value(json_object_get(j, "status")));
    }

    json_decref(j);
    json_decref(h);

    return NGX_AI_RELAY_CLI_OK;
}


static int
ngx_ai_relay_cli_channels_write(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_args_t *args, const char *update_id)
{
    int                              rc, try;
    char                            *id, *key, *models;
    size_t                           i;
    json_t                          *h;
    int64_t                          seq;
    const char                      *v, *provider, *base_url;
    redisReply                      *r;
    ngx_ai_relay_cli_tx_t            tx;
    ngx_ai_relay_cli_cmd_t          *c, *hdel;
    ngx_ai_relay_cli_list_t          watch;
    ngx_ai_relay_cli_channel_conf_t  cc;

    rc = ngx_ai_relay_cli_channel_conf(cli, args, &cc);
    if (rc != NGX_AI_RELAY_CLI_OK) {
        return rc;
    }

    v = ngx_ai_relay_cli_opt(args, "id");

    if (update_id) {
        if (!ngx_ai_relay_cli_is_id(update_id)) {
            return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_REJECTED,
                                          "invalid channel id \"%s\"",
                                          update_id);
        }

        if (v || ngx_ai_relay_cli_opt_has(args, "disabled")) {
            return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_USAGE,
                                          "--id and --disabled are for "
                                          "create (see channels disable)");
        }

    } else {
        if (v && !ngx_ai_relay_cli_is_id(v)) {
            return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_REJECTED,
                                          "invalid --id \"%s\"", v);
        }

        if (cc.provider == NULL) {
            return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_USAGE,
                                          "--provider is required");
        }

        if (cc.unmap.nelts) {
            return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_USAGE,
                                          "--unmap is for update");
        }
    }

    if (ngx_ai_relay_cli_connect(cli) != NGX_AI_RELAY_CLI_OK) {
        return cli->failed_rc;
    }

    for (try = 0; try < NGX_AI_RELAY_CLI_TX_TRIES; try++) {

        memset(&watch, 0, sizeof(watch));
        ngx_ai_relay_cli_list_push(&watch, NGX_AI_RELAY_RKEY_CHANNELS);
        ngx_ai_relay_cli_list_push(&watch, NGX_AI_RELAY_RKEY_MODELS);
        ngx_ai_relay_cli_list_push(&watch, NGX_AI_RELAY_RKEY_SEQ);
        ngx_ai_relay_cli_watch(cli, &watch);

        h = NULL;

        if (update_id) {
            id = (char *) update_id;
            key = ngx_ai_relay_cli_sprintf(NGX_AI_RELAY_RKEY_CHANNEL("%s"), id);
            ngx_ai_relay_cli_watch1(cli, key);
            h = ngx_ai_relay_cli_hgetall(cli, key);

            if (h == NULL) {
                ngx_ai_relay_cli_unwatch(cli);
                return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_REJECTED,
                                              "no channel %s", id);
            }

        } else if (v) {
            id = (char *) v;
            key = ngx_ai_relay_cli_sprintf(NGX_AI_RELAY_RKEY_CHANNEL("%s"), id);
            ngx_ai_relay_cli_watch1(cli, key);

            if (ngx_ai_relay_cli_exists(cli, key)) {
                ngx_ai_relay_cli_unwatch(cli);
                return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_REJECTED,
                                              "channel id %s is taken", id);
            }

        } else {
            id = ngx_ai_relay_cli_next_id(cli, "channel",
                                          NGX_AI_RELAY_RKEY_CHANNEL("%s"));
            key = ngx_ai_relay_cli_sprintf(NGX_AI_RELAY_RKEY_CHANNEL("%s"), id);
            ngx_ai_relay_cli_watch1(cli, key);
        }

        provider = cc.provider ? cc.provider
                               : ngx_ai_relay_cli_hstr(h, "provider");
        base_url = cc.base_url ? cc.base_url
                               : ngx_ai_relay_cli_hval(h, "base_url");

        if (base_url == NULL || base_url[0] == '\0') {
            base_url = ngx_ai_relay_cli_provider_base_url(provider);

            if (base_url == NULL) {
                ngx_ai_relay_cli_unwatch(cli);
                json_decref(h);
                return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_REJECTED,
                                              "--base-url is required for "
                                              "provider %s", provider);
            }
        }

        memset(&tx, 0, sizeof(tx));

        if (cc.has_models) {
            rc = ngx_ai_relay_cli_channel_link(cli, &tx, id, &cc.models);
            if (rc != NGX_AI_RELAY_CLI_OK) {
                ngx_ai_relay_cli_unwatch(cli);
                json_decref(h);
                return rc;
            }
        }

        c = ngx_ai_relay_cli_cmd("HSET", key, "provider", provider,
                                 "base_url", base_url, NULL);

        if (h == NULL || cc.name) {
            ngx_ai_relay_cli_cmd_add(c, "name");
            ngx_ai_relay_cli_cmd_add(c, cc.name ? cc.name
                                     : ngx_ai_relay_cli_sprintf("channel-%s",
                                                                id));
        }

        if (h == NULL || cc.keys) {
            ngx_ai_relay_cli_cmd_add(c, "keys");
            ngx_ai_relay_cli_cmd_add(c, cc.keys ? cc.keys : "");
        }

        if (h == NULL || cc.priority) {
            ngx_ai_relay_cli_cmd_add(c, "priority");
            ngx_ai_relay_cli_cmd_add(c, cc.priority ? cc.priority : "0");
        }

        if (h == NULL || cc.weight) {
            ngx_ai_relay_cli_cmd_add(c, "weight");
            ngx_ai_relay_cli_cmd_add(c, cc.weight ? cc.weight : "1");
        }

        if (h == NULL) {
            ngx_ai_relay_cli_cmd_add(c, "status");
            ngx_ai_relay_cli_cmd_add(c, ngx_ai_relay_cli_opt_has(args,
                                                                 "disabled")
                                        ? "disabled" : "enabled");
        }

        if (h == NULL || cc.has_models) {
            models = ngx_ai_relay_cli_list_join(&cc.models, ",");
            ngx_ai_relay_cli_cmd_add(c, "models");
            ngx_ai_relay_cli_cmd_add(c, models);
        }

        for (i = 0; i < cc.map.nelts; i++) {
            ngx_ai_relay_cli_cmd_add(c, cc.map.elts[i]);
        }

        if (ngx_ai_relay_cli_hval(h, "source")) {
            /* an imported channel: a later import leaves it alone */
            ngx_ai_relay_cli_cmd_add(c, "edited");
            ngx_ai_relay_cli_cmd_add(c, "1");
        }

        if (cc.unmap.nelts) {
            hdel = ngx_ai_relay_cli_cmd("HDEL", key, NULL);

            for (i = 0; i < cc.unmap.nelts; i++) {
                ngx_ai_relay_cli_cmd_add(hdel, cc.unmap.elts[i]);
            }

            ngx_ai_relay_cli_tx_add(&tx, hdel);
        }

        ngx_ai_relay_cli_tx_add(&tx, c);
        ngx_ai_relay_cli_tx_add(&tx, ngx_ai_relay_cli_cmd("SADD",
                                         NGX_AI_RELAY_RKEY_CHANNELS, id, NULL));

        if (h == NULL) {
            r = ngx_ai_relay_cli_runv(cli, "HGET", NGX_AI_RELAY_RKEY_SEQ,
                                      "channel", NULL);
            seq = 0;
            if (r->type == REDIS_REPLY_STRING) {
                ngx_ai_relay_cli_parse_int(r->str, 0, INT64_MAX, &seq);
            }
            freeReplyObject(r);

            if (atoll(id) > seq) {
                ngx_ai_relay_cli_tx_add(&tx, ngx_ai_relay_cli_cmd("HSET",
                                            NGX_AI_RELAY_RKEY_SEQ, "channel",
                                            id, NULL));
            }
        }

        tx.version = 1;

        rc = (h == NULL);
        json_decref(h);

        if (ngx_ai_relay_cli_tx_exec(cli, &tx) == 0) {
            return ngx_ai_relay_cli_channel_done(cli, id, rc ? "created"
                                                             : "updated");
        }
    }

    return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_FAILED,
                                  "too much concurrent change, try again");
}


static int
ngx_ai_relay_cli_channels_create(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_args_t *args)
{
    return ngx_ai_relay_cli_channels_write(cli, args, NULL);
}


static int
ngx_ai_relay_cli_channels_update(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_args_t *args)
{
    return ngx_ai_relay_cli_channels_write(cli, args, args->pos.elts[0]);
}


static int
ngx_ai_relay_cli_channels_list(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_args_t *args)
{
    size_t                   i;
    json_t                  *hashes, *h, *j, *out;
    ngx_ai_relay_cli_list_t  ids, keys;

    if (ngx_ai_relay_cli_connect(cli) != NGX_AI_RELAY_CLI_OK) {
        return cli->failed_rc;
    }

    memset(&ids, 0, sizeof(ids));
    memset(&keys, 0, sizeof(keys));

    ngx_ai_relay_cli_smembers(cli, NGX_AI_RELAY_RKEY_CHANNELS, &ids);
    ngx_ai_relay_cli_list_sort_num(&ids);

    for (i = 0; i < ids.nelts; i++) {
        ngx_ai_relay_cli_list_push(&keys, ngx_ai_relay_cli_sprintf(
                                     NGX_AI_RELAY_RKEY_CHANNEL("%s"),
                                     ids.elts[i]));
    }

    hashes = ngx_ai_relay_cli_hgetall_many(cli, &keys);
    out = json_array();

    if (!cli->json) {
        printf("%-5s %-20s %-18s %-9s %5s %6s %4s %-40s %s\n", "ID", "NAME",
               "PROVIDER", "STATUS", "PRIO", "WEIGHT", "KEYS", "BASE URL",
               "MODELS");
    }

    json_array_foreach(hashes, i, h) {
        if (json_is_null(h)) {
            continue;
        }

        j = ngx_ai_relay_cli_channel_json(ids.elts[i], h);

        if (!cli->json) {
            printf("%-5s %-20s %-18s %-9s %5" PRId64 " %6" PRId64
                   " %4zu %-40s %s\n", ids.elts[i],
                   json_string_value(json_object_get(j, "name")),
                   json_string_value(json_object_get(j, "provider")),
                   json_string_value(json_object_get(j, "status")),
                   (int64_t) json_integer_value(json_object_get(j,
                                                             "priority")),
                   (int64_t) json_integer_value(json_object_get(j,
                                                             "weight")),
                   json_array_size(json_object_get(j, "keys")),
                   json_string_value(json_object_get(j, "base_url")),
                   json_string_value(json_object_get(j, "models")));
        }

        json_array_append_new(out, j);
    }

    if (cli->json) {
        ngx_ai_relay_cli_print_json(out);
    }

    json_decref(out);
    json_decref(hashes);

    return NGX_AI_RELAY_CLI_OK;
}


static int
ngx_ai_relay_cli_channels_show(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_args_t *args)
{
    size_t       i;
    json_t      *h, *j, *v;
    const char  *id, *f;

    id = args->pos.elts[0];

    if (!ngx_ai_relay_cli_is_id(id)) {
        return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_REJECTED,
                                      "invalid channel id \"%s\"", id);
    }

    if (ngx_ai_relay_cli_connect(cli) != NGX_AI_RELAY_CLI_OK) {
        return cli->failed_rc;
    }

    h = ngx_ai_relay_cli_hgetall(cli, ngx_ai_relay_cli_sprintf(
                                      NGX_AI_RELAY_RKEY_CHANNEL("%s"), id));
    if (h == NULL) {
        return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_REJECTED,
                                      "no channel %s", id);
    }

    j = ngx_ai_relay_cli_channel_json(id, h);

    if (cli->json) {
        ngx_ai_relay_cli_print_json(j);

    } else {
        printf("id:         %s\n", id);
        printf("name:       %s\n", ngx_ai_relay_cli_hstr(h, "name"));
        printf("provider:   %s\n", ngx_ai_relay_cli_hstr(h, "provider"));
        printf("base_url:   %s\n", ngx_ai_relay_cli_hstr(h, "base_url"));
        printf("status:     %s\n",
               json_string_value(json_object_get(j, "status")));
        printf("priority:   %" PRId64 "\n",
               (int64_t) json_integer_value(json_object_get(j,
                                                            "priority")));
        printf("weight:     %" PRId64 "\n",
               (int64_t) json_integer_value(json_object_get(j, "weight")));
        printf("models:     %s\n", ngx_ai_relay_cli_hstr(h, "models"));
        printf("keys:       %zu\n",
               json_array_size(json_object_get(j, "keys")));

        json_array_foreach(json_object_get(j, "keys"), i, v) {
            printf("  %s\n", json_string_value(v));
        }

        json_object_foreach(json_object_get(j, "map"), f, v) {
            printf("map:        %s -> %s\n", f, json_string_value(v));
        }

        if (ngx_ai_relay_cli_hval(h, "source")) {
            printf("source:     %s\n", ngx_ai_relay_cli_hstr(h, "source"));
        }
    }

    json_decref(j);
    json_decref(h);

    return NGX_AI_RELAY_CLI_OK;
}


static int
ngx_ai_relay_cli_channels_status(ngx_ai_relay_cli_t *cli, const char *id,
    const char *status)
{
    ngx_ai_relay_cli_list_t  fv;

    if (!ngx_ai_relay_cli_is_id(id)) {
        return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_REJECTED,
                                      "invalid channel id \"%s\"", id);
    }

    if (ngx_ai_relay_cli_connect(cli) != NGX_AI_RELAY_CLI_OK) {
        return cli->failed_rc;
    }

    memset(&fv, 0, sizeof(fv));
    ngx_ai_relay_cli_list_push(&fv, "status");
    ngx_ai_relay_cli_list_push(&fv, (char *) status);

    if (!ngx_ai_relay_cli_hset_existing(cli, ngx_ai_relay_cli_sprintf(
                                        NGX_AI_RELAY_RKEY_CHANNEL("%s"), id),
                                        &fv))
    {
        return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_REJECTED,
                                      "no channel %s", id);
    }

    return ngx_ai_relay_cli_channel_done(cli, id, status[0] == 'e'
                                                  ? "enabled" : "disabled");
}


static int
ngx_ai_relay_cli_channels_enable(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_args_t *args)
{
    return ngx_ai_relay_cli_channels_status(cli, args->pos.elts[0],
                                            "enabled");
}


static int
ngx_ai_relay_cli_channels_disable(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_args_t *args)
{
    return ngx_ai_relay_cli_channels_status(cli, args->pos.elts[0],
                                            "disabled");
}


static int
ngx_ai_relay_cli_channels_remove(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_args_t *args)
{
    int                    rc, try;
    char                  *key;
    json_t                *j;
    const char            *id;
    ngx_ai_relay_cli_tx_t  tx;

    id = args->pos.elts[0];

    if (!ngx_ai_relay_cli_is_id(id)) {
        return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_REJECTED,
                                      "invalid channel id \"%s\"", id);
    }

    key = ngx_ai_relay_cli_sprintf(NGX_AI_RELAY_RKEY_CHANNEL("%s"), id);

    if (ngx_ai_relay_cli_connect(cli) != NGX_AI_RELAY_CLI_OK) {
        return cli->failed_rc;
    }

    for (try = 0; try < NGX_AI_RELAY_CLI_TX_TRIES; try++) {

        ngx_ai_relay_cli_watch1(cli, key);
        ngx_ai_relay_cli_watch1(cli, NGX_AI_RELAY_RKEY_MODELS);

        if (!ngx_ai_relay_cli_exists(cli, key)) {
            ngx_ai_relay_cli_unwatch(cli);
            return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_REJECTED,
                                          "no channel %s", id);
        }

        memset(&tx, 0, sizeof(tx));

        rc = ngx_ai_relay_cli_channel_link(cli, &tx, id, NULL);
        if (rc != NGX_AI_RELAY_CLI_OK) {
            ngx_ai_relay_cli_unwatch(cli);
            return rc;
        }

        ngx_ai_relay_cli_tx_add(&tx, ngx_ai_relay_cli_cmd("DEL", key, NULL));
        ngx_ai_relay_cli_tx_add(&tx, ngx_ai_relay_cli_cmd("SREM",
                                         NGX_AI_RELAY_RKEY_CHANNELS, id, NULL));
        tx.version = 1;

        if (ngx_ai_relay_cli_tx_exec(cli, &tx) == 0) {
            if (cli->json) {
                j = json_pack("{s:o,s:b}", "id",
                              ngx_ai_relay_cli_json_int(id), "removed", 1);
                ngx_ai_relay_cli_print_json(j);
                json_decref(j);

            } else {
                printf("removed channel %s\n", id);
            }

            return NGX_AI_RELAY_CLI_OK;
        }
    }

    return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_FAILED,
                                  "too much concurrent change, try again");
}
