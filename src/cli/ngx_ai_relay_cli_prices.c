
/*
 * Copyright (C) ngx_ai_relay authors
 *
 * ai-relay prices: what a model costs.
 *
 *   ar:{cfg}:price:<model>  hash  input cached_input cache_write
 *                                 cache_write_1h output (uUSD per 1M
 *                                 tokens), request, image,
 *                                 image:<size>:<quality> (uUSD),
 *                                 character (uUSD per 1M characters,
 *                                 audio/speech input), second (uUSD per
 *                                 second of transcribed audio or video),
 *                                 second:<size> (uUSD per second of a
 *                                 video of that size),
 *                                 second:<size>:<quality> (of that size
 *                                 and quality; either may be *)
 *
 * Prices are given in exact USD ("2.50" per 1M tokens) and stored as
 * integer micro-USD.
 */


#include "ngx_ai_relay_cli.h"
#include "ngx_ai_relay_price.h"


static int ngx_ai_relay_cli_prices_set(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_args_t *args);
static int ngx_ai_relay_cli_prices_list(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_args_t *args);
static int ngx_ai_relay_cli_prices_show(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_args_t *args);
static int ngx_ai_relay_cli_prices_remove(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_args_t *args);
static int ngx_ai_relay_cli_size_valid(const char *k, size_t len);
static int ngx_ai_relay_cli_image_key_valid(const char *k, size_t len);
static int ngx_ai_relay_cli_price_overrides(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_args_t *args, const char *opt, const char *prefix,
    const char *example, int (*valid)(const char *k, size_t len),
    ngx_ai_relay_cli_list_t *set);


static const ngx_ai_relay_cli_opt_t  ngx_ai_relay_cli_prices_set_opts[] = {
    { "input", 1, 0 },
    { "cached-input", 1, 0 },
    { "cache-write", 1, 0 },
    { "cache-write-1h", 1, 0 },
    { "output", 1, 0 },
    { "request", 1, 0 },
    { "image", 1, 0 },
    { "character", 1, 0 },
    { "second", 1, 0 },
    { "image-size-quality", 1, 1 },
    { "second-size", 1, 1 },
    { "second-size-quality", 1, 1 },
    { "unset", 1, 1 },
    { "force", 0, 0 },
    { NULL, 0, 0 }
};


/* option name, hash field */
static const ngx_ai_relay_cli_opt_t  ngx_ai_relay_cli_prices_list_opts[] = {
    { "micro", 0, 0 },
    { NULL, 0, 0 }
};


static const char  *ngx_ai_relay_cli_price_fields[][2] = {
    { "input", "input" },
    { "cached-input", "cached_input" },
    { "cache-write", "cache_write" },
    { "cache-write-1h", "cache_write_1h" },
    { "output", "output" },
    { "request", "request" },
    { "image", "image" },
    { "character", "character" },
    { "second", "second" },
    { NULL, NULL }
};


ngx_ai_relay_cli_command_t  ngx_ai_relay_cli_prices_commands[] = {

    { "prices", "set", ngx_ai_relay_cli_prices_set,
      ngx_ai_relay_cli_prices_set_opts, 1, 1,
      "prices set MODEL [--input USD] [--cached-input USD] "
      "[--cache-write USD] [--cache-write-1h USD] [--output USD] "
      "[--request USD] [--image USD] [--character USD] [--second USD] "
      "[--image-size-quality SIZE:QUALITY=USD]... [--second-size SIZE=USD]... "
      "[--second-size-quality SIZE:QUALITY=USD]... "
      "[--unset FIELD]... "
      "[--force]",
      "Set prices of a model (or alias: an alias may be priced apart from\n"
      "its target; the relay uses the first priced name of the chain).\n"
      "Fields not given stay as they are.\n"
      "  --input USD            per 1M uncached input tokens\n"
      "  --cached-input USD     per 1M cached input tokens (default: input)\n"
      "  --cache-write USD      per 1M tokens written to a 5 minute cache\n"
      "                         (default: input)\n"
      "  --cache-write-1h USD   per 1M tokens written to a 1 hour cache\n"
      "                         (default: input)\n"
      "  --output USD           per 1M output tokens\n"
      "  --request USD          per request\n"
      "  --image USD            per generated image\n"
      "  --character USD        per 1M input characters (audio/speech)\n"
      "  --second USD           per second of audio a transcription\n"
      "                         reports (usage type duration), and per\n"
      "                         second of a video task (its \"seconds\")\n"
      "  --image-size-quality 1024x1024:hd=USD   per image of that size and\n"
      "                         quality (either may be *); at most 8\n"
      "  --second-size 1792x1024=USD   per second of a video task of that\n"
      "                         size (its \"size\"); others pay --second\n"
      "  --second-size-quality 1792x1024:high=USD   per second of a video\n"
      "                         task of that size and quality (its\n"
      "                         \"quality\"; either may be *); first match of\n"
      "                         SIZE:QUALITY, SIZE:* (or --second-size),\n"
      "                         *:QUALITY, then --second; at most 16\n"
      "                         second overrides in all\n"
      "  --unset FIELD          remove a field (input, cached_input, ...,\n"
      "                         image:1024x1024:hd, second:1792x1024,\n"
      "                         second:1792x1024:high)\n"
      "  --force                allow a name that is not a model (yet)\n"
      "Amounts are exact USD with at most 6 decimals (0.075, 2.5, 15).\n" },

    { "prices", "list", ngx_ai_relay_cli_prices_list,
      ngx_ai_relay_cli_prices_list_opts, 0, 0,
      "prices list [--micro]",
      "List all prices in USD, or with --micro in micro-USD (--json gives\n"
      "both).\n" },

    { "prices", "show", ngx_ai_relay_cli_prices_show, NULL, 1, 1,
      "prices show MODEL",
      "Show the price of a name (no alias resolution; see models show).\n" },

    { "prices", "remove", ngx_ai_relay_cli_prices_remove, NULL, 1, 1,
      "prices remove MODEL",
      "Remove the price of a name.\n" },

    { NULL, NULL, NULL, NULL, 0, 0, NULL, NULL }
};


static int
ngx_ai_relay_cli_price_field_valid(const char *f)
{
    size_t       i;
    const char  *colon;

    for (i = 0; ngx_ai_relay_cli_price_fields[i][0]; i++) {
        if (strcmp(ngx_ai_relay_cli_price_fields[i][1], f) == 0) {
            return 1;
        }
    }

    if (strncmp(f, "second:", 7) == 0) {
        return ngx_ai_relay_cli_size_valid(f + 7, strlen(f + 7))
               || ngx_ai_relay_cli_image_key_valid(f + 7, strlen(f + 7));
    }

    if (strncmp(f, "image:", 6) != 0) {
        return 0;
    }

    colon = strchr(f + 6, ':');

    return colon && colon > f + 6 && colon[1] != '\0'
           && strlen(f + 6) < NGX_AI_RELAY_PRICE_IMAGE_KEY_LEN;
}


/* a video's size, "1792x1024": letters, digits, '-', '_', '.' */
static int
ngx_ai_relay_cli_size_valid(const char *k, size_t len)
{
    size_t  i;

    if (len == 0 || len >= NGX_AI_RELAY_PRICE_IMAGE_KEY_LEN) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        if (!((k[i] >= 'a' && k[i] <= 'z') || (k[i] >= 'A' && k[i] <= 'Z')
              || (k[i] >= '0' && k[i] <= '9') || k[i] == '-' || k[i] == '_'
              || k[i] == '.'))
        {
            return 0;
        }
    }

    return 1;
}


/* "1024x1024:hd", "*:hd", "1024x1024:*": an image's, a video's */
static int
ngx_ai_relay_cli_image_key_valid(const char *k, size_t len)
{
    size_t       i;
    const char  *colon;

    colon = memchr(k, ':', len);

    if (colon == NULL || colon == k || colon == k + len - 1
        || len >= NGX_AI_RELAY_PRICE_IMAGE_KEY_LEN
        || (colon == k + 1 && k[0] == '*' && len == 3 && k[2] == '*'))
    {
        return 0;
    }

    for (i = 0; i < len; i++) {
        if (k + i == colon) {
            continue;
        }

        if (!((k[i] >= 'a' && k[i] <= 'z') || (k[i] >= 'A' && k[i] <= 'Z')
              || (k[i] >= '0' && k[i] <= '9') || k[i] == '-' || k[i] == '_'
              || k[i] == '*' || k[i] == '.'))
        {
            return 0;
        }
    }

    return 1;
}


json_t *
ngx_ai_relay_cli_price_json(json_t *h)
{
    json_t      *j, *usd, *v;
    int64_t      n;
    const char  *f;

    j = json_object();
    usd = json_object();

    json_object_foreach(h, f, v) {
        if (ngx_ai_relay_cli_parse_int(json_string_value(v), INT64_MIN,
                                       INT64_MAX, &n)
            == 0)
        {
            json_object_set_new(j, f, json_integer(n));
            json_object_set_new(usd, f, json_string(ngx_ai_relay_cli_usd(n)));

        } else {
            json_object_set(j, f, v);
        }
    }

    json_object_set_new(j, "usd", usd);

    return j;
}


/* --OPT KEY=USD, repeated: PREFIX KEY and its micro-USD added to set */
static int
ngx_ai_relay_cli_price_overrides(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_args_t *args, const char *opt, const char *prefix,
    const char *example, int (*valid)(const char *k, size_t len),
    ngx_ai_relay_cli_list_t *set)
{
    char                     *eq;
    size_t                    i;
    int64_t                   micro;
    ngx_ai_relay_cli_list_t  *l;

    l = ngx_ai_relay_cli_opt_list(args, opt);

    for (i = 0; i < l->nelts; i++) {
        eq = strrchr(l->elts[i], '=');

        if (eq == NULL || !valid(l->elts[i], eq - l->elts[i])
            || ngx_ai_relay_cli_parse_usd(eq + 1, &micro) != 0)
        {
            return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_REJECTED,
                                          "invalid --%s \"%s\" (e.g. %s)",
                                          opt, l->elts[i], example);
        }

        ngx_ai_relay_cli_list_push(set, ngx_ai_relay_cli_sprintf(
                                   "%s%.*s", prefix, (int) (eq - l->elts[i]),
                                   l->elts[i]));
        ngx_ai_relay_cli_list_push(set, ngx_ai_relay_cli_sprintf(
                                   "%" PRId64, micro));
    }

    return NGX_AI_RELAY_CLI_OK;
}


static int
ngx_ai_relay_cli_prices_set(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_args_t *args)
{
    int                       try, member;
    char                     *key;
    size_t                    i, nimages, nseconds;
    json_t                   *h, *v, *j;
    int64_t                   micro;
    const char               *name, *val, *f;
    redisReply               *r;
    ngx_ai_relay_cli_tx_t     tx;
    ngx_ai_relay_cli_cmd_t   *hset, *hdel;
    ngx_ai_relay_cli_list_t  *l, set, unset;

    name = args->pos.elts[0];

    if (!ngx_ai_relay_cli_valid_name(name)) {
        return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_REJECTED,
                                      "invalid model name \"%s\"", name);
    }

    memset(&set, 0, sizeof(set));
    memset(&unset, 0, sizeof(unset));

    for (i = 0; ngx_ai_relay_cli_price_fields[i][0]; i++) {
        val = ngx_ai_relay_cli_opt(args, ngx_ai_relay_cli_price_fields[i][0]);

        if (val == NULL) {
            continue;
        }

        if (ngx_ai_relay_cli_parse_usd(val, &micro) != 0) {
            return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_REJECTED,
                                          "invalid --%s \"%s\" (USD, e.g. "
                                          "2.50, at most 6 decimals)",
                                          ngx_ai_relay_cli_price_fields[i][0],
                                          val);
        }

        ngx_ai_relay_cli_list_push(&set,
                                (char *) ngx_ai_relay_cli_price_fields[i][1]);
        ngx_ai_relay_cli_list_push(&set, ngx_ai_relay_cli_sprintf(
                                                     "%" PRId64, micro));
    }

    if (ngx_ai_relay_cli_price_overrides(cli, args, "image-size-quality",
                                         "image:", "1024x1024:hd=0.08",
                                         ngx_ai_relay_cli_image_key_valid,
                                         &set)
        != NGX_AI_RELAY_CLI_OK
        || ngx_ai_relay_cli_price_overrides(cli, args, "second-size",
                                            "second:", "1792x1024=0.50",
                                            ngx_ai_relay_cli_size_valid, &set)
           != NGX_AI_RELAY_CLI_OK
        || ngx_ai_relay_cli_price_overrides(cli, args, "second-size-quality",
                                            "second:", "1792x1024:high=0.70",
                                            ngx_ai_relay_cli_image_key_valid,
                                            &set)
           != NGX_AI_RELAY_CLI_OK)
    {
        return cli->failed_rc;
    }

    l = ngx_ai_relay_cli_opt_list(args, "unset");

    for (i = 0; i < l->nelts; i++) {
        if (!ngx_ai_relay_cli_price_field_valid(l->elts[i])) {
            return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_REJECTED,
                                          "invalid --unset \"%s\" (input, "
                                          "cached_input, cache_write, "
                                          "cache_write_1h, output, request, "
                                          "image, character, second, "
                                          "image:SIZE:QUALITY, second:SIZE, "
                                          "second:SIZE:QUALITY)",
                                          l->elts[i]);
        }

        ngx_ai_relay_cli_list_push(&unset, l->elts[i]);
    }

    if (set.nelts == 0 && unset.nelts == 0) {
        return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_USAGE,
                                      "nothing to set (see --help)");
    }

    key = ngx_ai_relay_cli_sprintf(NGX_AI_RELAY_RKEY_PRICE("%s"), name);

    if (ngx_ai_relay_cli_connect(cli) != NGX_AI_RELAY_CLI_OK) {
        return cli->failed_rc;
    }

    for (try = 0; try < NGX_AI_RELAY_CLI_TX_TRIES; try++) {

        ngx_ai_relay_cli_watch1(cli, key);
        ngx_ai_relay_cli_watch1(cli, NGX_AI_RELAY_RKEY_MODELS);

        if (!ngx_ai_relay_cli_opt_has(args, "force")) {
            r = ngx_ai_relay_cli_runv(cli, "SISMEMBER",
                                      NGX_AI_RELAY_RKEY_MODELS, name, NULL);
            member = (r->integer == 1);
            freeReplyObject(r);

            if (!member) {
                ngx_ai_relay_cli_unwatch(cli);
                return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_REJECTED,
                                              "no model \"%s\" (add it "
                                              "first, or use --force)", name);
            }
        }

        /* the number of image overrides after the change */

        h = ngx_ai_relay_cli_hgetall(cli, key);
        nimages = 0;
        nseconds = 0;

        json_object_foreach(h, f, v) {
            if (ngx_ai_relay_cli_list_has(&unset, (char *) f)) {
                continue;
            }

            nimages += (strncmp(f, "image:", 6) == 0);
            nseconds += (strncmp(f, "second:", 7) == 0);
        }

        for (i = 0; i < set.nelts; i += 2) {
            if (ngx_ai_relay_cli_hval(h, set.elts[i]) != NULL) {
                continue;
            }

            nimages += (strncmp(set.elts[i], "image:", 6) == 0);
            nseconds += (strncmp(set.elts[i], "second:", 7) == 0);
        }

        json_decref(h);

        if (nimages > NGX_AI_RELAY_PRICE_IMAGE_MAX) {
            ngx_ai_relay_cli_unwatch(cli);
            return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_REJECTED,
                                          "at most %d image size/quality "
                                          "prices per model",
                                          NGX_AI_RELAY_PRICE_IMAGE_MAX);
        }

        if (nseconds > NGX_AI_RELAY_PRICE_SECOND_MAX) {
            ngx_ai_relay_cli_unwatch(cli);
            return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_REJECTED,
                                          "at most %d video size/quality "
                                          "prices per model",
                                          NGX_AI_RELAY_PRICE_SECOND_MAX);
        }

        memset(&tx, 0, sizeof(tx));

        /* an operator's price is no longer the importer's */

        ngx_ai_relay_cli_tx_add(&tx, ngx_ai_relay_cli_cmd("HDEL",
                                  NGX_AI_RELAY_RKEY_IMPORTED,
                                  ngx_ai_relay_cli_sprintf("price:%s", name),
                                  NULL));

        hdel = ngx_ai_relay_cli_cmd("HDEL", key, NULL);

        for (i = 0; i < unset.nelts; i++) {
            ngx_ai_relay_cli_cmd_add(hdel, unset.elts[i]);
        }

        if (hdel->argc > 2) {
            ngx_ai_relay_cli_tx_add(&tx, hdel);
        }

        if (set.nelts) {
            hset = ngx_ai_relay_cli_cmd("HSET", key, NULL);

            for (i = 0; i < set.nelts; i++) {
                ngx_ai_relay_cli_cmd_add(hset, set.elts[i]);
            }

            ngx_ai_relay_cli_tx_add(&tx, hset);
        }

        tx.version = 1;

        if (ngx_ai_relay_cli_tx_exec(cli, &tx) == 0) {
            h = ngx_ai_relay_cli_hgetall(cli, key);
            j = ngx_ai_relay_cli_price_json(h ? h : json_object());
            json_object_set_new(j, "model", json_string(name));

            if (cli->json) {
                ngx_ai_relay_cli_print_json(j);

            } else {
                printf("price of %s:", name);

                json_object_foreach(json_object_get(j, "usd"), f, v) {
                    printf(" %s=%s", f, json_string_value(v));
                }

                printf("%s\n", h ? "" : " (none)");
            }

            json_decref(j);
            json_decref(h);

            return NGX_AI_RELAY_CLI_OK;
        }
    }

    return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_FAILED,
                                  "too much concurrent change, try again");
}


/* the model names that have a price hash, sorted */
static void
ngx_ai_relay_cli_price_names(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_list_t *names)
{
    char        *cursor;
    size_t       i, plen;
    redisReply  *r, *keys;

    plen = sizeof(NGX_AI_RELAY_RKEY_PRICE("")) - 1;
    cursor = "0";

    do {
        r = ngx_ai_relay_cli_runv(cli, "SCAN", cursor, "MATCH",
                                  NGX_AI_RELAY_RKEY_PRICE("*"), "COUNT",
                                  "1000", NULL);

        cursor = ngx_ai_relay_cli_strdup(r->element[0]->str);
        keys = r->element[1];

        for (i = 0; i < keys->elements; i++) {
            if (keys->element[i]->len > plen
                && !ngx_ai_relay_cli_list_has(names,
                                              keys->element[i]->str + plen))
            {
                ngx_ai_relay_cli_list_push(names, ngx_ai_relay_cli_strdup(
                                           keys->element[i]->str + plen));
            }
        }

        freeReplyObject(r);

    } while (strcmp(cursor, "0") != 0);

    ngx_ai_relay_cli_list_sort(names);
}


static const char *
ngx_ai_relay_cli_price_cell(json_t *j, const char *f, int micro)
{
    json_t  *v;

    if (micro) {
        v = json_object_get(j, f);

        return v ? ngx_ai_relay_cli_sprintf("%" PRId64,
                                            (int64_t) json_integer_value(v))
                 : "-";
    }

    v = json_object_get(json_object_get(j, "usd"), f);

    return v ? json_string_value(v) : "-";
}


static int
ngx_ai_relay_cli_prices_list(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_args_t *args)
{
    int                      micro;
    size_t                   i;
    json_t                  *hashes, *h, *j, *out, *v;
    const char              *f;
    ngx_ai_relay_cli_list_t  names, keys;

    if (ngx_ai_relay_cli_connect(cli) != NGX_AI_RELAY_CLI_OK) {
        return cli->failed_rc;
    }

    memset(&names, 0, sizeof(names));
    memset(&keys, 0, sizeof(keys));

    ngx_ai_relay_cli_price_names(cli, &names);

    for (i = 0; i < names.nelts; i++) {
        ngx_ai_relay_cli_list_push(&keys, ngx_ai_relay_cli_sprintf(
                                       NGX_AI_RELAY_RKEY_PRICE("%s"),
                                       names.elts[i]));
    }

    hashes = ngx_ai_relay_cli_hgetall_many(cli, &keys);
    out = json_object();
    micro = ngx_ai_relay_cli_opt_has(args, "micro");

    if (!cli->json) {
        printf("%s per 1M tokens, per request, per image\n",
               micro ? "micro-USD" : "USD");
        printf("%-32s %10s %10s %10s %10s %10s %10s %10s\n", "MODEL",
               "INPUT", "CACHED", "CW5M", "CW1H", "OUTPUT", "REQUEST",
               "IMAGE");
    }

    json_array_foreach(hashes, i, h) {
        if (json_is_null(h)) {
            continue;
        }

        j = ngx_ai_relay_cli_price_json(h);

        if (!cli->json) {
            printf("%-32s %10s %10s %10s %10s %10s %10s %10s\n",
                   names.elts[i],
                   ngx_ai_relay_cli_price_cell(j, "input", micro),
                   ngx_ai_relay_cli_price_cell(j, "cached_input", micro),
                   ngx_ai_relay_cli_price_cell(j, "cache_write", micro),
                   ngx_ai_relay_cli_price_cell(j, "cache_write_1h", micro),
                   ngx_ai_relay_cli_price_cell(j, "output", micro),
                   ngx_ai_relay_cli_price_cell(j, "request", micro),
                   ngx_ai_relay_cli_price_cell(j, "image", micro));

            json_object_foreach(j, f, v) {
                if (strncmp(f, "image:", 6) == 0
                    || strncmp(f, "second:", 7) == 0
                    || strcmp(f, "character") == 0
                    || strcmp(f, "second") == 0)
                {
                    printf("%-32s %s %s\n", "", f,
                           ngx_ai_relay_cli_price_cell(j, f, micro));
                }
            }
        }

        json_object_set_new(out, names.elts[i], j);
    }

    if (cli->json) {
        ngx_ai_relay_cli_print_json(out);
    }

    json_decref(out);
    json_decref(hashes);

    return NGX_AI_RELAY_CLI_OK;
}


static int
ngx_ai_relay_cli_prices_show(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_args_t *args)
{
    char        *src;
    json_t      *h, *j, *v;
    const char  *f;
    redisReply  *r;

    if (ngx_ai_relay_cli_connect(cli) != NGX_AI_RELAY_CLI_OK) {
        return cli->failed_rc;
    }

    h = ngx_ai_relay_cli_hgetall(cli, ngx_ai_relay_cli_sprintf(
                                      NGX_AI_RELAY_RKEY_PRICE("%s"),
                                      args->pos.elts[0]));
    if (h == NULL) {
        return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_REJECTED,
                                      "no price for \"%s\"",
                                      args->pos.elts[0]);
    }

    r = ngx_ai_relay_cli_runv(cli, "HGET", NGX_AI_RELAY_RKEY_IMPORTED,
                              ngx_ai_relay_cli_sprintf("price:%s",
                                                       args->pos.elts[0]),
                              NULL);
    src = r->type == REDIS_REPLY_STRING ? ngx_ai_relay_cli_strdup(r->str)
                                        : NULL;
    freeReplyObject(r);

    j = ngx_ai_relay_cli_price_json(h);
    json_object_set_new(j, "model", json_string(args->pos.elts[0]));

    if (src) {
        json_object_set_new(j, "imported_from", json_string(src));
    }

    if (cli->json) {
        ngx_ai_relay_cli_print_json(j);

    } else {
        printf("model:      %s\n", args->pos.elts[0]);

        json_object_foreach(json_object_get(j, "usd"), f, v) {
            printf("  %-24s %s (%s uUSD)\n", f, json_string_value(v),
                   ngx_ai_relay_cli_hstr(h, f));
        }

        if (src) {
            printf("imported:   from %s\n", src);
        }
    }

    json_decref(j);
    json_decref(h);

    return NGX_AI_RELAY_CLI_OK;
}


static int
ngx_ai_relay_cli_prices_remove(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_args_t *args)
{
    int                    try;
    char                  *key;
    json_t                *j;
    ngx_ai_relay_cli_tx_t  tx;

    key = ngx_ai_relay_cli_sprintf(NGX_AI_RELAY_RKEY_PRICE("%s"),
                                   args->pos.elts[0]);

    if (ngx_ai_relay_cli_connect(cli) != NGX_AI_RELAY_CLI_OK) {
        return cli->failed_rc;
    }

    for (try = 0; try < NGX_AI_RELAY_CLI_TX_TRIES; try++) {
        ngx_ai_relay_cli_watch1(cli, key);

        if (!ngx_ai_relay_cli_exists(cli, key)) {
            ngx_ai_relay_cli_unwatch(cli);
            return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_REJECTED,
                                          "no price for \"%s\"",
                                          args->pos.elts[0]);
        }

        memset(&tx, 0, sizeof(tx));
        ngx_ai_relay_cli_tx_add(&tx, ngx_ai_relay_cli_cmd("DEL", key, NULL));
        ngx_ai_relay_cli_tx_add(&tx, ngx_ai_relay_cli_cmd("HDEL",
                                  NGX_AI_RELAY_RKEY_IMPORTED,
                                  ngx_ai_relay_cli_sprintf("price:%s",
                                                     args->pos.elts[0]),
                                  NULL));
        tx.version = 1;

        if (ngx_ai_relay_cli_tx_exec(cli, &tx) == 0) {
            if (cli->json) {
                j = json_pack("{s:s,s:b}", "model", args->pos.elts[0],
                              "removed", 1);
                ngx_ai_relay_cli_print_json(j);
                json_decref(j);

            } else {
                printf("removed the price of %s\n", args->pos.elts[0]);
            }

            return NGX_AI_RELAY_CLI_OK;
        }
    }

    return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_FAILED,
                                  "too much concurrent change, try again");
}
