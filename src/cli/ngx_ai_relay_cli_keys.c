
/*
 * Copyright (C) ngx_ai_relay authors
 *
 * ai-relay keys: client API keys.  Only the SHA-256 of a key and a masked
 * form are stored; a new key is printed once.
 *
 *   ar:keyidx:<sha256>         string  owner's user id
 *   ar:keyid:<kid>             string  "<uid>:<sha256>"
 *   ar:{u<uid>}:keys           set     the user's key hashes
 *   ar:{u<uid>}:key:<sha256>   hash    id name masked status expires
 *                                      models rpm tpm quota unlimited used
 *                                      requests created
 */


#include "ngx_ai_relay_cli.h"
#include "ngx_ai_relay_key.h"


typedef struct {
    const char                   *name;
    char                         *models;
    int64_t                       rpm;
    int64_t                       tpm;
    int64_t                       quota;
    time_t                        expires;
    unsigned                      unlimited:1;
} ngx_ai_relay_cli_key_conf_t;


static int ngx_ai_relay_cli_keys_create(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_args_t *args);
static int ngx_ai_relay_cli_keys_add(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_args_t *args);
static int ngx_ai_relay_cli_keys_list(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_args_t *args);
static int ngx_ai_relay_cli_keys_show(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_args_t *args);
static int ngx_ai_relay_cli_keys_enable(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_args_t *args);
static int ngx_ai_relay_cli_keys_disable(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_args_t *args);
static int ngx_ai_relay_cli_keys_expire(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_args_t *args);
static int ngx_ai_relay_cli_keys_models(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_args_t *args);
static int ngx_ai_relay_cli_keys_limits(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_args_t *args);
static int ngx_ai_relay_cli_keys_quota(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_args_t *args);
static int ngx_ai_relay_cli_keys_rotate(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_args_t *args);
static int ngx_ai_relay_cli_keys_delete(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_args_t *args);


static const ngx_ai_relay_cli_opt_t  ngx_ai_relay_cli_keys_create_opts[] = {
    { "user", 1, 0 },
    { "key", 1, 0 },
    { "name", 1, 0 },
    { "models", 1, 0 },
    { "rpm", 1, 0 },
    { "tpm", 1, 0 },
    { "expires", 1, 0 },
    { "quota", 1, 0 },
    { "unlimited", 0, 0 },
    { "id", 1, 0 },
    { NULL, 0, 0 }
};


static const ngx_ai_relay_cli_opt_t  ngx_ai_relay_cli_keys_list_opts[] = {
    { "user", 1, 0 },
    { NULL, 0, 0 }
};


static const ngx_ai_relay_cli_opt_t  ngx_ai_relay_cli_keys_models_opts[] = {
    { "all", 0, 0 },
    { NULL, 0, 0 }
};


static const ngx_ai_relay_cli_opt_t  ngx_ai_relay_cli_keys_limits_opts[] = {
    { "rpm", 1, 0 },
    { "tpm", 1, 0 },
    { NULL, 0, 0 }
};


#define NGX_AI_RELAY_CLI_KEY_OPTS                                             \
    "[--name NAME] [--models a,b] [--rpm N] [--tpm N] "                       \
    "[--expires WHEN] [--quota USD] [--unlimited] [--id N]"

#define NGX_AI_RELAY_CLI_KEY_HELP                                             \
    "  --name NAME      a label\n"                                            \
    "  --models a,b     client model names the key may use (default: all)\n"  \
    "  --rpm N          requests per minute (0: no limit)\n"                  \
    "  --tpm N          tokens per minute (0: no limit)\n"                    \
    "  --expires WHEN   YYYY-MM-DD[THH:MM[:SS]] (UTC), +30d, +12h, Unix\n"    \
    "                   seconds, or never (default)\n"                        \
    "  --quota USD      budget of this key on top of the user's balance\n"    \
    "                   (default: none)\n"                                    \
    "  --unlimited      no balance check for this key (still metered)\n"      \
    "  --id N           key id instead of the next free one\n"


ngx_ai_relay_cli_command_t  ngx_ai_relay_cli_keys_commands[] = {

    { "keys", "create", ngx_ai_relay_cli_keys_create,
      ngx_ai_relay_cli_keys_create_opts, 0, 0,
      "keys create --user USER " NGX_AI_RELAY_CLI_KEY_OPTS,
      "Create a key for a user.  The new key (sk-...) is printed on stdout\n"
      "once and never stored; only its SHA-256 and a masked form are kept.\n"
      NGX_AI_RELAY_CLI_KEY_HELP },

    { "keys", "add", ngx_ai_relay_cli_keys_add,
      ngx_ai_relay_cli_keys_create_opts, 0, 0,
      "keys add --user USER --key sk-... " NGX_AI_RELAY_CLI_KEY_OPTS,
      "Register an existing plaintext key (8-256 printable characters)\n"
      "for a user, e.g. a key moved from another system.\n"
      NGX_AI_RELAY_CLI_KEY_HELP },

    { "keys", "list", ngx_ai_relay_cli_keys_list,
      ngx_ai_relay_cli_keys_list_opts, 0, 0,
      "keys list [--user USER]",
      "List keys (masked), of one user or of all.\n" },

    { "keys", "show", ngx_ai_relay_cli_keys_show, NULL, 1, 1,
      "keys show KEY",
      "Show a key.  KEY is a key id, the plaintext key or its SHA-256.\n" },

    { "keys", "disable", ngx_ai_relay_cli_keys_disable, NULL, 1, 1,
      "keys disable KEY",
      "Disable a key (403 key_disabled).\n" },

    { "keys", "enable", ngx_ai_relay_cli_keys_enable, NULL, 1, 1,
      "keys enable KEY",
      "Enable a disabled, expired or exhausted key (its expiry time still\n"
      "applies).\n" },

    { "keys", "expire", ngx_ai_relay_cli_keys_expire, NULL, 1, 2,
      "keys expire KEY [WHEN]",
      "Expire a key now (default), or set when it expires: a date, +30d,\n"
      "Unix seconds, or never.\n" },

    { "keys", "models", ngx_ai_relay_cli_keys_models,
      ngx_ai_relay_cli_keys_models_opts, 1, 2,
      "keys models KEY a,b | KEY --all",
      "Set the client model names a key may use; --all removes the limit.\n"
    },

    { "keys", "limits", ngx_ai_relay_cli_keys_limits,
      ngx_ai_relay_cli_keys_limits_opts, 1, 1,
      "keys limits KEY [--rpm N] [--tpm N]",
      "Set requests and tokens per minute (0: no limit).\n" },

    { "keys", "quota", ngx_ai_relay_cli_keys_quota, NULL, 2, 2,
      "keys quota KEY USD|none",
      "Set the key's own budget (remaining, exact USD), or remove it.\n" },

    { "keys", "rotate", ngx_ai_relay_cli_keys_rotate, NULL, 1, 1,
      "keys rotate KEY",
      "Replace a key by a new one, atomically: the old key stops working,\n"
      "the new one keeps the id, settings and counters.  The new key is\n"
      "printed on stdout once.\n" },

    { "keys", "delete", ngx_ai_relay_cli_keys_delete, NULL, 1, 1,
      "keys delete KEY",
      "Delete a key.  Its records and statistics stay.\n" },

    { NULL, NULL, NULL, NULL, 0, 0, NULL, NULL }
};


json_t *
ngx_ai_relay_cli_key_json(const char *uid, json_t *h)
{
    json_t   *j;
    int64_t   quota, used;

    quota = ngx_ai_relay_cli_hint(h, "quota", -1);
    used = ngx_ai_relay_cli_hint(h, "used", 0);

    j = json_pack("{s:o,s:I,s:s,s:s,s:s,s:I,s:s,s:I,s:I,s:I,s:b,s:I,s:s,"
                  "s:I,s:I}",
                  "id", ngx_ai_relay_cli_json_int(
                                         ngx_ai_relay_cli_hval(h, "id")),
                  "user", (json_int_t) atoll(uid),
                  "name", ngx_ai_relay_cli_hstr(h, "name"),
                  "masked", ngx_ai_relay_cli_hstr(h, "masked"),
                  "status", ngx_ai_relay_cli_hstr(h, "status"),
                  "expires",
                  (json_int_t) ngx_ai_relay_cli_hint(h, "expires", 0),
                  "models", ngx_ai_relay_cli_hstr(h, "models"),
                  "rpm", (json_int_t) ngx_ai_relay_cli_hint(h, "rpm", 0),
                  "tpm", (json_int_t) ngx_ai_relay_cli_hint(h, "tpm", 0),
                  "quota", (json_int_t) quota,
                  "unlimited", ngx_ai_relay_cli_hint(h, "unlimited", 0) == 1,
                  "used", (json_int_t) used,
                  "used_usd", ngx_ai_relay_cli_usd(used),
                  "requests",
                  (json_int_t) ngx_ai_relay_cli_hint(h, "requests", 0),
                  "created",
                  (json_int_t) ngx_ai_relay_cli_hint(h, "created", 0));

    json_object_set_new(j, "quota_usd", quota < 0
                        ? json_null()
                        : json_string(ngx_ai_relay_cli_usd(quota)));

    if (ngx_ai_relay_cli_hval(h, "source")) {
        json_object_set_new(j, "source",
                            json_string(ngx_ai_relay_cli_hval(h, "source")));
    }

    return j;
}


static int
ngx_ai_relay_cli_key_conf(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_args_t *args, ngx_ai_relay_cli_key_conf_t *kc)
{
    const char  *v;

    memset(kc, 0, sizeof(ngx_ai_relay_cli_key_conf_t));

    kc->quota = -1;
    kc->models = "";

    kc->name = ngx_ai_relay_cli_opt(args, "name");

    if (kc->name == NULL) {
        kc->name = "";

    } else if (strlen(kc->name) > 200 || strchr(kc->name, '\n')) {
        return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_REJECTED,
                                      "invalid --name (one line, at most "
                                      "200 bytes)");
    }

    v = ngx_ai_relay_cli_opt(args, "models");

    if (v && ngx_ai_relay_cli_models_csv(v, &kc->models) != 0) {
        return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_REJECTED,
                                      "invalid --models \"%s\" (names "
                                      "separated by commas)", v);
    }

    v = ngx_ai_relay_cli_opt(args, "rpm");

    if (v && ngx_ai_relay_cli_parse_int(v, 0, INT32_MAX, &kc->rpm) != 0) {
        return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_REJECTED,
                                      "invalid --rpm \"%s\"", v);
    }

    v = ngx_ai_relay_cli_opt(args, "tpm");

    if (v && ngx_ai_relay_cli_parse_int(v, 0, INT64_MAX / 2, &kc->tpm) != 0)
    {
        return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_REJECTED,
                                      "invalid --tpm \"%s\"", v);
    }

    v = ngx_ai_relay_cli_opt(args, "expires");

    if (v) {
        if (ngx_ai_relay_cli_parse_time(v, cli->now, &kc->expires) != 0) {
            return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_REJECTED,
                                          "invalid --expires \"%s\" "
                                          "(YYYY-MM-DD, +30d, never, ...)",
                                          v);
        }

        if (kc->expires != 0 && kc->expires <= cli->now) {
            return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_REJECTED,
                                          "--expires \"%s\" is in the past",
                                          v);
        }
    }

    v = ngx_ai_relay_cli_opt(args, "quota");

    if (v && ngx_ai_relay_cli_parse_usd(v, &kc->quota) != 0) {
        return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_REJECTED,
                                      "invalid --quota \"%s\" (USD, e.g. 5 "
                                      "or 0.50)", v);
    }

    kc->unlimited = ngx_ai_relay_cli_opt_has(args, "unlimited");

    v = ngx_ai_relay_cli_opt(args, "id");

    if (v && !ngx_ai_relay_cli_is_id(v)) {
        return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_REJECTED,
                                      "invalid --id \"%s\"", v);
    }

    return NGX_AI_RELAY_CLI_OK;
}


static int
ngx_ai_relay_cli_keys_new(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_args_t *args, int generate)
{
    int                           rc, try;
    char                         *uid, *kid, *hkey, *name;
    char                          plain[NGX_AI_RELAY_KEY_MAX_LEN + 1];
    char                          hash[NGX_AI_RELAY_KEY_HASH_LEN + 1];
    json_t                       *user, *h, *j;
    int64_t                       seq;
    const char                   *v, *owner;
    redisReply                   *r;
    ngx_ai_relay_cli_tx_t         tx;
    ngx_ai_relay_cli_cmd_t       *c;
    ngx_ai_relay_cli_list_t       watch;
    ngx_ai_relay_cli_key_conf_t   kc;

    owner = ngx_ai_relay_cli_opt(args, "user");

    if (owner == NULL) {
        return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_USAGE,
                                      "--user is required");
    }

    v = ngx_ai_relay_cli_opt(args, "key");

    if (generate) {
        if (v) {
            return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_USAGE,
                                          "\"keys create\" makes a new key; "
                                          "use \"keys add --key\" to "
                                          "register one");
        }

        if (ngx_ai_relay_key_generate(plain, sizeof(plain)) != 0) {
            return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_FAILED,
                                          "cannot generate a random key");
        }

    } else {
        if (v == NULL) {
            return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_USAGE,
                                          "--key is required");
        }

        if (!ngx_ai_relay_key_valid((const unsigned char *) v, strlen(v))) {
            return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_REJECTED,
                                          "invalid --key (8-256 printable "
                                          "characters without spaces)");
        }

        strcpy(plain, v);
    }

    rc = ngx_ai_relay_cli_key_conf(cli, args, &kc);
    if (rc != NGX_AI_RELAY_CLI_OK) {
        return rc;
    }

    if (ngx_ai_relay_cli_connect(cli) != NGX_AI_RELAY_CLI_OK) {
        return cli->failed_rc;
    }

    rc = ngx_ai_relay_cli_find_user(cli, owner, &uid, &user);
    if (rc != NGX_AI_RELAY_CLI_OK) {
        return rc;
    }

    rc = ngx_ai_relay_cli_hash_key(cli, plain, hash);
    if (rc != NGX_AI_RELAY_CLI_OK) {
        return rc;
    }

    v = ngx_ai_relay_cli_opt(args, "id");

    for (try = 0; try < NGX_AI_RELAY_CLI_TX_TRIES; try++) {

        memset(&watch, 0, sizeof(watch));
        ngx_ai_relay_cli_list_push(&watch, NGX_AI_RELAY_RKEY_SEQ);
        ngx_ai_relay_cli_list_push(&watch, ngx_ai_relay_cli_sprintf(
                                       NGX_AI_RELAY_RKEY_KEYIDX("%s"), hash));
        ngx_ai_relay_cli_watch(cli, &watch);

        if (ngx_ai_relay_cli_exists(cli, watch.elts[1])) {
            ngx_ai_relay_cli_unwatch(cli);
            return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_REJECTED,
                                          "this key is already registered");
        }

        if (v) {
            kid = ngx_ai_relay_cli_strdup(v);
            ngx_ai_relay_cli_watch1(cli, ngx_ai_relay_cli_sprintf(
                                         NGX_AI_RELAY_RKEY_KEYID("%s"), kid));

            if (ngx_ai_relay_cli_exists(cli, ngx_ai_relay_cli_sprintf(
                    NGX_AI_RELAY_RKEY_KEYID("%s"), kid)))
            {
                ngx_ai_relay_cli_unwatch(cli);
                return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_REJECTED,
                                              "key id %s is taken", kid);
            }

        } else {
            kid = ngx_ai_relay_cli_next_id(cli, "key",
                                           NGX_AI_RELAY_RKEY_KEYID("%s"));
            ngx_ai_relay_cli_watch1(cli, ngx_ai_relay_cli_sprintf(
                                         NGX_AI_RELAY_RKEY_KEYID("%s"), kid));
        }

        r = ngx_ai_relay_cli_runv(cli, "HGET", NGX_AI_RELAY_RKEY_SEQ, "key",
                                  NULL);
        seq = 0;
        if (r->type == REDIS_REPLY_STRING) {
            ngx_ai_relay_cli_parse_int(r->str, 0, INT64_MAX, &seq);
        }
        freeReplyObject(r);

        hkey = ngx_ai_relay_cli_sprintf(NGX_AI_RELAY_RKEY_KEY("%s", "%s"),
                                        uid, hash);

        memset(&tx, 0, sizeof(tx));

        c = ngx_ai_relay_cli_cmd("HSET", hkey, "id", kid, "name", kc.name,
                                 "masked", ngx_ai_relay_cli_mask(plain),
                                 "status", "active", "expires", NULL);
        ngx_ai_relay_cli_cmd_addf(c, "%" PRId64, (int64_t) kc.expires);
        ngx_ai_relay_cli_cmd_add(c, "models");
        ngx_ai_relay_cli_cmd_add(c, kc.models);
        ngx_ai_relay_cli_cmd_add(c, "rpm");
        ngx_ai_relay_cli_cmd_addf(c, "%" PRId64, kc.rpm);
        ngx_ai_relay_cli_cmd_add(c, "tpm");
        ngx_ai_relay_cli_cmd_addf(c, "%" PRId64, kc.tpm);
        ngx_ai_relay_cli_cmd_add(c, "quota");
        ngx_ai_relay_cli_cmd_addf(c, "%" PRId64, kc.quota);
        ngx_ai_relay_cli_cmd_add(c, "unlimited");
        ngx_ai_relay_cli_cmd_add(c, kc.unlimited ? "1" : "0");
        ngx_ai_relay_cli_cmd_add(c, "used");
        ngx_ai_relay_cli_cmd_add(c, "0");
        ngx_ai_relay_cli_cmd_add(c, "requests");
        ngx_ai_relay_cli_cmd_add(c, "0");
        ngx_ai_relay_cli_cmd_add(c, "created");
        ngx_ai_relay_cli_cmd_addf(c, "%" PRId64, (int64_t) cli->now);
        ngx_ai_relay_cli_tx_add(&tx, c);

        ngx_ai_relay_cli_tx_add(&tx, ngx_ai_relay_cli_cmd("SADD",
                       ngx_ai_relay_cli_sprintf(NGX_AI_RELAY_RKEY_KEYS("%s"),
                                                uid),
                       hash, NULL));
        ngx_ai_relay_cli_tx_add(&tx, ngx_ai_relay_cli_cmd("SET",
                       watch.elts[1], uid, NULL));
        ngx_ai_relay_cli_tx_add(&tx, ngx_ai_relay_cli_cmd("SET",
                       ngx_ai_relay_cli_sprintf(NGX_AI_RELAY_RKEY_KEYID("%s"),
                                                kid),
                       ngx_ai_relay_cli_sprintf("%s:%s", uid, hash), NULL));

        if (atoll(kid) > seq) {
            ngx_ai_relay_cli_tx_add(&tx, ngx_ai_relay_cli_cmd("HSET",
                                             NGX_AI_RELAY_RKEY_SEQ, "key", kid,
                                             NULL));
        }

        tx.version = 1;

        if (ngx_ai_relay_cli_tx_exec(cli, &tx) == 0) {
            break;
        }
    }

    if (try == NGX_AI_RELAY_CLI_TX_TRIES) {
        return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_FAILED,
                                      "too much concurrent change, try "
                                      "again");
    }

    h = ngx_ai_relay_cli_hgetall(cli, hkey);
    j = ngx_ai_relay_cli_key_json(uid, h ? h : json_object());
    name = (char *) ngx_ai_relay_cli_hstr(user, "name");

    if (cli->json) {
        if (generate) {
            json_object_set_new(j, "key", json_string(plain));
        }

        ngx_ai_relay_cli_print_json(j);

    } else if (generate) {
        printf("%s\n", plain);
        fprintf(stderr, "ai-relay: created key %s for user %s (%s); the key "
                        "above is shown only this once\n", kid, uid, name);

    } else {
        printf("registered key %s (%s) for user %s (%s)\n", kid,
               ngx_ai_relay_cli_mask(plain), uid, name);
    }

    json_decref(j);
    json_decref(h);
    json_decref(user);

    return NGX_AI_RELAY_CLI_OK;
}


static int
ngx_ai_relay_cli_keys_create(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_args_t *args)
{
    return ngx_ai_relay_cli_keys_new(cli, args, 1);
}


static int
ngx_ai_relay_cli_keys_add(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_args_t *args)
{
    return ngx_ai_relay_cli_keys_new(cli, args, 0);
}


static void
ngx_ai_relay_cli_key_print(json_t *j)
{
    int64_t      quota, expires;
    const char  *models;

    quota = json_integer_value(json_object_get(j, "quota"));
    expires = json_integer_value(json_object_get(j, "expires"));
    models = json_string_value(json_object_get(j, "models"));

    printf("%-6" PRId64 " %-6" PRId64 " %s %-10s %-20s %12s %s\n",
           (int64_t) json_integer_value(json_object_get(j, "id")),
           (int64_t) json_integer_value(json_object_get(j, "user")),
           ngx_ai_relay_cli_pad(json_string_value(json_object_get(j,
                                                              "masked")),
                                16),
           json_string_value(json_object_get(j, "status")),
           ngx_ai_relay_cli_time_str(expires),
           quota < 0 ? "-" : ngx_ai_relay_cli_usd(quota),
           models[0] ? models : "*");
}


static int
ngx_ai_relay_cli_keys_list(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_args_t *args)
{
    int                       rc;
    char                     *uid;
    size_t                    i, k, n;
    json_t                   *keys, *h, *out, *j;
    const char               *v;
    redisReply              **replies, *r;
    ngx_ai_relay_cli_cmd_t  **cmds;
    ngx_ai_relay_cli_list_t   ids, hkeys, owners, shas;

    if (ngx_ai_relay_cli_connect(cli) != NGX_AI_RELAY_CLI_OK) {
        return cli->failed_rc;
    }

    memset(&ids, 0, sizeof(ids));
    memset(&hkeys, 0, sizeof(hkeys));
    memset(&owners, 0, sizeof(owners));
    memset(&shas, 0, sizeof(shas));

    v = ngx_ai_relay_cli_opt(args, "user");

    if (v) {
        rc = ngx_ai_relay_cli_find_user(cli, v, &uid, NULL);
        if (rc != NGX_AI_RELAY_CLI_OK) {
            return rc;
        }

        ngx_ai_relay_cli_list_push(&ids, uid);

    } else {
        ngx_ai_relay_cli_user_ids(cli, &ids);
    }

    n = ids.nelts;
    cmds = ngx_ai_relay_cli_alloc((n + 1) * sizeof(void *));
    replies = ngx_ai_relay_cli_alloc((n + 1) * sizeof(void *));

    for (i = 0; i < n; i++) {
        cmds[i] = ngx_ai_relay_cli_cmd("SMEMBERS", ngx_ai_relay_cli_sprintf(
                                           NGX_AI_RELAY_RKEY_KEYS("%s"),
                                           ids.elts[i]),
                                       NULL);
    }

    ngx_ai_relay_cli_pipeline(cli, cmds, n, replies);

    for (i = 0; i < n; i++) {
        r = replies[i];

        for (k = 0; k < r->elements; k++) {
            ngx_ai_relay_cli_list_push(&hkeys, ngx_ai_relay_cli_sprintf(
                                 NGX_AI_RELAY_RKEY_KEY("%s", "%s"),
                                 ids.elts[i], r->element[k]->str));
            ngx_ai_relay_cli_list_push(&owners, ids.elts[i]);
            ngx_ai_relay_cli_list_push(&shas, ngx_ai_relay_cli_strdup(
                                                   r->element[k]->str));
        }
    }

    ngx_ai_relay_cli_free_replies(replies, n);

    keys = ngx_ai_relay_cli_hgetall_many(cli, &hkeys);
    out = json_array();

    json_array_foreach(keys, i, h) {
        if (!json_is_null(h)
            && ngx_ai_relay_cli_key_reachable(cli, owners.elts[i],
                                              shas.elts[i]))
        {
            json_array_append_new(out, ngx_ai_relay_cli_key_json(
                                                 owners.elts[i], h));
        }
    }

    json_decref(keys);

    /* by key id */

    for (i = 1; i < json_array_size(out); i++) {
        for (k = i; k > 0; k--) {
            if (json_integer_value(json_object_get(json_array_get(out, k - 1),
                                                   "id"))
                <= json_integer_value(json_object_get(json_array_get(out, k),
                                                      "id")))
            {
                break;
            }

            j = json_incref(json_array_get(out, k));
            json_array_remove(out, k);
            json_array_insert_new(out, k - 1, j);
        }
    }

    if (cli->json) {
        ngx_ai_relay_cli_print_json(out);

    } else {
        printf("%-6s %-6s %-16s %-10s %-20s %12s %s\n", "ID", "USER",
               "KEY", "STATUS", "EXPIRES", "QUOTA", "MODELS");

        json_array_foreach(out, i, j) {
            ngx_ai_relay_cli_key_print(j);
        }
    }

    json_decref(out);

    return NGX_AI_RELAY_CLI_OK;
}


static int
ngx_ai_relay_cli_keys_show(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_args_t *args)
{
    int      rc;
    char    *uid, *hash;
    json_t  *h, *j, *user;
    int64_t  quota, expires;

    if (ngx_ai_relay_cli_connect(cli) != NGX_AI_RELAY_CLI_OK) {
        return cli->failed_rc;
    }

    rc = ngx_ai_relay_cli_find_key(cli, args->pos.elts[0], &uid, &hash, &h);
    if (rc != NGX_AI_RELAY_CLI_OK) {
        return rc;
    }

    j = ngx_ai_relay_cli_key_json(uid, h);
    json_object_set_new(j, "sha256", json_string(hash));

    user = ngx_ai_relay_cli_hgetall(cli, ngx_ai_relay_cli_sprintf(
                                         NGX_AI_RELAY_RKEY_USER("%s"), uid));
    json_object_set_new(j, "user_name",
                        json_string(ngx_ai_relay_cli_hstr(user, "name")));

    if (cli->json) {
        ngx_ai_relay_cli_print_json(j);

    } else {
        quota = json_integer_value(json_object_get(j, "quota"));
        expires = json_integer_value(json_object_get(j, "expires"));

        printf("id:         %s\n", ngx_ai_relay_cli_hstr(h, "id"));
        printf("user:       %s (%s)\n", uid,
               ngx_ai_relay_cli_hstr(user, "name"));
        printf("name:       %s\n", ngx_ai_relay_cli_hstr(h, "name"));
        printf("key:        %s\n", ngx_ai_relay_cli_hstr(h, "masked"));
        printf("sha256:     %s\n", hash);
        printf("status:     %s\n", ngx_ai_relay_cli_hstr(h, "status"));
        printf("expires:    %s%s\n", ngx_ai_relay_cli_time_str(expires),
               expires && expires <= cli->now ? " (passed)" : "");
        printf("models:     %s\n", ngx_ai_relay_cli_hstr(h, "models")[0]
                                   ? ngx_ai_relay_cli_hstr(h, "models")
                                   : "* (all)");
        printf("rpm:        %s\n", ngx_ai_relay_cli_hstr(h, "rpm"));
        printf("tpm:        %s\n", ngx_ai_relay_cli_hstr(h, "tpm"));
        printf("quota:      %s\n", quota < 0 ? "none"
                                             : ngx_ai_relay_cli_usd(quota));
        printf("unlimited:  %s\n",
               json_is_true(json_object_get(j, "unlimited")) ? "yes" : "no");
        printf("used:       %s\n",
               json_string_value(json_object_get(j, "used_usd")));
        printf("requests:   %s\n", ngx_ai_relay_cli_hstr(h, "requests"));
        printf("created:    %s\n", ngx_ai_relay_cli_time_str(
                   json_integer_value(json_object_get(j, "created"))));

        if (ngx_ai_relay_cli_hval(h, "source")) {
            printf("source:     %s\n", ngx_ai_relay_cli_hstr(h, "source"));
        }
    }

    json_decref(user);
    json_decref(j);
    json_decref(h);

    return NGX_AI_RELAY_CLI_OK;
}


/* set fields of a key that exists, then print it */
static int
ngx_ai_relay_cli_keys_set(ngx_ai_relay_cli_t *cli, const char *ref,
    ngx_ai_relay_cli_list_t *fv, const char *what)
{
    int      rc;
    char    *uid, *hash, *hkey;
    json_t  *h, *j;

    if (ngx_ai_relay_cli_connect(cli) != NGX_AI_RELAY_CLI_OK) {
        return cli->failed_rc;
    }

    rc = ngx_ai_relay_cli_find_key(cli, ref, &uid, &hash, NULL);
    if (rc != NGX_AI_RELAY_CLI_OK) {
        return rc;
    }

    hkey = ngx_ai_relay_cli_sprintf(NGX_AI_RELAY_RKEY_KEY("%s", "%s"),
                                    uid, hash);

    if (!ngx_ai_relay_cli_hset_existing(cli, hkey, fv)) {
        return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_REJECTED,
                                      "key %s was deleted", ref);
    }

    h = ngx_ai_relay_cli_hgetall(cli, hkey);
    j = ngx_ai_relay_cli_key_json(uid, h ? h : json_object());

    if (cli->json) {
        ngx_ai_relay_cli_print_json(j);

    } else {
        printf("%s key %s (%s): status %s\n", what,
               ngx_ai_relay_cli_hstr(h, "id"),
               ngx_ai_relay_cli_hstr(h, "masked"),
               ngx_ai_relay_cli_hstr(h, "status"));
    }

    json_decref(j);
    json_decref(h);

    return NGX_AI_RELAY_CLI_OK;
}


static ngx_ai_relay_cli_list_t *
ngx_ai_relay_cli_fv(const char *f1, const char *v1, const char *f2,
    const char *v2)
{
    ngx_ai_relay_cli_list_t  *fv;

    fv = ngx_ai_relay_cli_alloc(sizeof(ngx_ai_relay_cli_list_t));
    memset(fv, 0, sizeof(ngx_ai_relay_cli_list_t));

    ngx_ai_relay_cli_list_push(fv, (char *) f1);
    ngx_ai_relay_cli_list_push(fv, (char *) v1);

    if (f2) {
        ngx_ai_relay_cli_list_push(fv, (char *) f2);
        ngx_ai_relay_cli_list_push(fv, (char *) v2);
    }

    return fv;
}


static int
ngx_ai_relay_cli_keys_enable(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_args_t *args)
{
    return ngx_ai_relay_cli_keys_set(cli, args->pos.elts[0],
                       ngx_ai_relay_cli_fv("status", "active", NULL, NULL),
                       "enabled");
}


static int
ngx_ai_relay_cli_keys_disable(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_args_t *args)
{
    return ngx_ai_relay_cli_keys_set(cli, args->pos.elts[0],
                       ngx_ai_relay_cli_fv("status", "disabled", NULL, NULL),
                       "disabled");
}


static int
ngx_ai_relay_cli_keys_expire(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_args_t *args)
{
    int          rc;
    char        *uid, *hash, *t;
    time_t       when;
    json_t      *h;
    const char  *v, *status;

    v = args->pos.nelts > 1 ? args->pos.elts[1] : "now";

    if (ngx_ai_relay_cli_parse_time(v, cli->now, &when) != 0) {
        return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_REJECTED,
                                      "invalid time \"%s\" (now, never, "
                                      "YYYY-MM-DD, +30d, ...)", v);
    }

    if (ngx_ai_relay_cli_connect(cli) != NGX_AI_RELAY_CLI_OK) {
        return cli->failed_rc;
    }

    rc = ngx_ai_relay_cli_find_key(cli, args->pos.elts[0], &uid, &hash, &h);
    if (rc != NGX_AI_RELAY_CLI_OK) {
        return rc;
    }

    status = ngx_ai_relay_cli_hstr(h, "status");

    if (when != 0 && when <= cli->now) {
        status = "expired";

    } else if (strcmp(status, "expired") == 0) {
        status = "active";
    }

    t = ngx_ai_relay_cli_sprintf("%" PRId64, (int64_t) when);
    status = ngx_ai_relay_cli_strdup(status);
    json_decref(h);

    return ngx_ai_relay_cli_keys_set(cli, args->pos.elts[0],
                       ngx_ai_relay_cli_fv("expires", t, "status", status),
                       "updated");
}


static int
ngx_ai_relay_cli_keys_models(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_args_t *args)
{
    char  *models;

    if (ngx_ai_relay_cli_opt_has(args, "all") == (args->pos.nelts == 2)) {
        return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_USAGE,
                                      "give either a model list or --all");
    }

    models = "";

    if (args->pos.nelts == 2) {
        if (ngx_ai_relay_cli_models_csv(args->pos.elts[1], &models) != 0
            || models[0] == '\0')
        {
            return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_REJECTED,
                                          "invalid model list \"%s\"",
                                          args->pos.elts[1]);
        }
    }

    return ngx_ai_relay_cli_keys_set(cli, args->pos.elts[0],
                       ngx_ai_relay_cli_fv("models", models, NULL, NULL),
                       "updated");
}


static int
ngx_ai_relay_cli_keys_limits(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_args_t *args)
{
    int64_t                   n;
    const char               *v;
    ngx_ai_relay_cli_list_t  *fv;

    fv = ngx_ai_relay_cli_alloc(sizeof(ngx_ai_relay_cli_list_t));
    memset(fv, 0, sizeof(ngx_ai_relay_cli_list_t));

    v = ngx_ai_relay_cli_opt(args, "rpm");

    if (v) {
        if (ngx_ai_relay_cli_parse_int(v, 0, INT32_MAX, &n) != 0) {
            return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_REJECTED,
                                          "invalid --rpm \"%s\"", v);
        }

        ngx_ai_relay_cli_list_push(fv, "rpm");
        ngx_ai_relay_cli_list_push(fv, ngx_ai_relay_cli_sprintf("%" PRId64,
                                                                n));
    }

    v = ngx_ai_relay_cli_opt(args, "tpm");

    if (v) {
        if (ngx_ai_relay_cli_parse_int(v, 0, INT64_MAX / 2, &n) != 0) {
            return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_REJECTED,
                                          "invalid --tpm \"%s\"", v);
        }

        ngx_ai_relay_cli_list_push(fv, "tpm");
        ngx_ai_relay_cli_list_push(fv, ngx_ai_relay_cli_sprintf("%" PRId64,
                                                                n));
    }

    if (fv->nelts == 0) {
        return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_USAGE,
                                      "give --rpm and/or --tpm");
    }

    return ngx_ai_relay_cli_keys_set(cli, args->pos.elts[0], fv, "updated");
}


static int
ngx_ai_relay_cli_keys_quota(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_args_t *args)
{
    int64_t      quota;
    const char  *v;

    v = args->pos.elts[1];
    quota = -1;

    if (strcmp(v, "none") != 0 && ngx_ai_relay_cli_parse_usd(v, &quota) != 0)
    {
        return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_REJECTED,
                                      "invalid quota \"%s\" (USD, e.g. 5 or "
                                      "0.50, or none)", v);
    }

    return ngx_ai_relay_cli_keys_set(cli, args->pos.elts[0],
                       ngx_ai_relay_cli_fv("quota",
                           ngx_ai_relay_cli_sprintf("%" PRId64, quota),
                           NULL, NULL),
                       "updated");
}


static int
ngx_ai_relay_cli_keys_rotate(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_args_t *args)
{
    int          rc;
    char        *uid, *hash, *kid;
    char         plain[NGX_AI_RELAY_KEY_GEN_LEN + 1];
    char         nhash[NGX_AI_RELAY_KEY_HASH_LEN + 1];
    json_t      *h, *j;
    const char  *res;

    if (ngx_ai_relay_cli_connect(cli) != NGX_AI_RELAY_CLI_OK) {
        return cli->failed_rc;
    }

    /* on a Redis Cluster, also a key a stopped rotate left unreachable */

    rc = ngx_ai_relay_cli_find_any_key(cli, args->pos.elts[0], &uid, &hash,
                                       &h);
    if (rc != NGX_AI_RELAY_CLI_OK) {
        return rc;
    }

    kid = ngx_ai_relay_cli_strdup(ngx_ai_relay_cli_hstr(h, "id"));
    json_decref(h);

    if (ngx_ai_relay_key_generate(plain, sizeof(plain)) != 0) {
        return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_FAILED,
                                      "cannot generate a random key");
    }

    rc = ngx_ai_relay_cli_hash_key(cli, plain, nhash);
    if (rc != NGX_AI_RELAY_CLI_OK) {
        return rc;
    }

    res = ngx_ai_relay_cli_rotate_key(cli, uid, kid, hash, nhash,
                                      ngx_ai_relay_cli_mask(plain));

    if (strcmp(res, "ok") != 0) {
        return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_REJECTED,
                                      "cannot rotate key %s: %s", kid, res);
    }

    if (cli->json) {
        h = ngx_ai_relay_cli_hgetall(cli, ngx_ai_relay_cli_sprintf(
                                          NGX_AI_RELAY_RKEY_KEY("%s", "%s"),
                                          uid, nhash));
        j = ngx_ai_relay_cli_key_json(uid, h ? h : json_object());
        json_object_set_new(j, "key", json_string(plain));
        ngx_ai_relay_cli_print_json(j);
        json_decref(j);
        json_decref(h);

    } else {
        printf("%s\n", plain);
        fprintf(stderr, "ai-relay: rotated key %s of user %s; the old key "
                        "no longer works, the new key above is shown only "
                        "this once\n", kid, uid);
    }

    return NGX_AI_RELAY_CLI_OK;
}


static int
ngx_ai_relay_cli_keys_delete(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_args_t *args)
{
    int                      rc, try;
    char                    *uid, *hash, *kid, *v;
    json_t                  *h;
    ngx_ai_relay_cli_tx_t    tx;
    ngx_ai_relay_cli_list_t  watch;

    if (ngx_ai_relay_cli_connect(cli) != NGX_AI_RELAY_CLI_OK) {
        return cli->failed_rc;
    }

    rc = ngx_ai_relay_cli_find_any_key(cli, args->pos.elts[0], &uid, &hash,
                                       &h);
    if (rc != NGX_AI_RELAY_CLI_OK) {
        return rc;
    }

    kid = ngx_ai_relay_cli_strdup(ngx_ai_relay_cli_hstr(h, "id"));
    json_decref(h);

    for (try = 0; try < NGX_AI_RELAY_CLI_TX_TRIES; try++) {

        memset(&watch, 0, sizeof(watch));
        ngx_ai_relay_cli_list_push(&watch, ngx_ai_relay_cli_sprintf(
                                       NGX_AI_RELAY_RKEY_KEYIDX("%s"), hash));
        ngx_ai_relay_cli_list_push(&watch, ngx_ai_relay_cli_sprintf(
                                       NGX_AI_RELAY_RKEY_KEYID("%s"), kid));
        ngx_ai_relay_cli_watch(cli, &watch);

        /*
         * on a Redis Cluster, a delete stopped after its first step left
         * the key hash without its SHA-256's index: this one finishes it
         */

        if (!ngx_ai_relay_cli_exists(cli, watch.elts[0])
            && (cli->cluster == NULL
                || !ngx_ai_relay_cli_exists(cli, ngx_ai_relay_cli_sprintf(
                                        NGX_AI_RELAY_RKEY_KEY("%s", "%s"),
                                        uid, hash))))
        {
            ngx_ai_relay_cli_unwatch(cli);
            return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_REJECTED,
                                          "key %s was deleted", kid);
        }

        memset(&tx, 0, sizeof(tx));

        ngx_ai_relay_cli_tx_add(&tx, ngx_ai_relay_cli_cmd("DEL",
                  ngx_ai_relay_cli_sprintf(NGX_AI_RELAY_RKEY_KEY("%s", "%s"),
                                           uid, hash),
                  ngx_ai_relay_cli_sprintf(NGX_AI_RELAY_RKEY_RL("%s", "%s"),
                                           uid, hash),
                  NULL));

        /*
         * on a Redis Cluster, the orphan of a stopped create may share its
         * SHA-256 with another user's key: that user's index stays
         */

        if (cli->cluster == NULL
            || ngx_ai_relay_cli_key_reachable(cli, uid, hash))
        {
            ngx_ai_relay_cli_tx_add(&tx, ngx_ai_relay_cli_cmd("DEL",
                                             watch.elts[0], NULL));
        }
        ngx_ai_relay_cli_tx_add(&tx, ngx_ai_relay_cli_cmd("SREM",
                  ngx_ai_relay_cli_sprintf(NGX_AI_RELAY_RKEY_KEYS("%s"), uid),
                  hash, NULL));

        v = ngx_ai_relay_cli_get(cli, watch.elts[1]);

        if (v && strcmp(v, ngx_ai_relay_cli_sprintf("%s:%s", uid, hash))
                 == 0)
        {
            ngx_ai_relay_cli_tx_add(&tx, ngx_ai_relay_cli_cmd("DEL",
                                             watch.elts[1], NULL));
        }

        tx.version = 1;

        if (ngx_ai_relay_cli_tx_exec(cli, &tx) == 0) {
            if (cli->json) {
                h = json_pack("{s:o,s:I,s:b}", "id",
                              ngx_ai_relay_cli_json_int(kid), "user",
                              (json_int_t) atoll(uid), "deleted", 1);
                ngx_ai_relay_cli_print_json(h);
                json_decref(h);

            } else {
                printf("deleted key %s of user %s\n", kid, uid);
            }

            return NGX_AI_RELAY_CLI_OK;
        }
    }

    return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_FAILED,
                                  "too much concurrent change, try again");
}
