
/*
 * Copyright (C) ngx_ai_relay authors
 *
 * The Redis side of an import: read every key the import touches,
 * compare with what it wants, and write only the differences in one
 * MULTI/EXEC, watched by ar:{cfg}:version and the global sets.  Objects
 * carry a "source" field; one that exists but came from somewhere else
 * is a conflict, and nothing is written.
 *
 * Fields of users and keys that the relay itself changes (balance,
 * quota, used, requests) are written when the object is created, and
 * later only with --sync-balances, as differences (HINCRBY).
 */


#include "ngx_ai_relay_cli.h"
#include "ngx_ai_relay_cli_import.h"


typedef struct {
    ngx_ai_relay_cli_import_t    *im;
    json_t                       *cur;     /* key -> value read */
    ngx_ai_relay_cli_tx_t         tx;
} ngx_ai_relay_cli_sync_t;


#define NGX_AI_RELAY_CLI_READ_HASH    0
#define NGX_AI_RELAY_CLI_READ_STRING  1
#define NGX_AI_RELAY_CLI_READ_SET     2


static void
ngx_ai_relay_cli_sync_want(ngx_ai_relay_cli_list_t *keys,
    ngx_ai_relay_cli_list_t *types, char *key, int type)
{
    ngx_ai_relay_cli_list_push(keys, key);
    ngx_ai_relay_cli_list_push(types, (char *) (intptr_t) type);
}


/* read every key the import may write */
static json_t *
ngx_ai_relay_cli_sync_read(ngx_ai_relay_cli_import_t *im)
{
    int                       type;
    size_t                    i, k;
    json_t                   *cur, *o, *v;
    const char               *id;
    redisReply              **replies, *r;
    ngx_ai_relay_cli_cmd_t  **cmds;
    ngx_ai_relay_cli_list_t   keys, types, watch;

    memset(&keys, 0, sizeof(keys));
    memset(&types, 0, sizeof(types));

    ngx_ai_relay_cli_sync_want(&keys, &types, NGX_AI_RELAY_RKEY_USERS,
                               NGX_AI_RELAY_CLI_READ_SET);
    ngx_ai_relay_cli_sync_want(&keys, &types, NGX_AI_RELAY_RKEY_CHANNELS,
                               NGX_AI_RELAY_CLI_READ_SET);
    ngx_ai_relay_cli_sync_want(&keys, &types, NGX_AI_RELAY_RKEY_MODELS,
                               NGX_AI_RELAY_CLI_READ_SET);
    ngx_ai_relay_cli_sync_want(&keys, &types, NGX_AI_RELAY_RKEY_SEQ,
                               NGX_AI_RELAY_CLI_READ_HASH);
    ngx_ai_relay_cli_sync_want(&keys, &types, NGX_AI_RELAY_RKEY_IMPORTED,
                               NGX_AI_RELAY_CLI_READ_HASH);

    memset(&watch, 0, sizeof(watch));

    for (i = 0; i < keys.nelts; i++) {
        ngx_ai_relay_cli_list_push(&watch, keys.elts[i]);
    }

    ngx_ai_relay_cli_list_push(&watch, NGX_AI_RELAY_RKEY_VERSION);

    json_object_foreach(im->users, id, o) {
        ngx_ai_relay_cli_sync_want(&keys, &types, ngx_ai_relay_cli_sprintf(
                                       NGX_AI_RELAY_RKEY_USER("%s"), id),
                                   NGX_AI_RELAY_CLI_READ_HASH);
        ngx_ai_relay_cli_sync_want(&keys, &types, ngx_ai_relay_cli_sprintf(
                                       NGX_AI_RELAY_RKEY_KEYS("%s"), id),
                                   NGX_AI_RELAY_CLI_READ_SET);
    }

    json_object_foreach(im->keys, id, o) {
        ngx_ai_relay_cli_sync_want(&keys, &types,
                      ngx_ai_relay_cli_sprintf(
                          NGX_AI_RELAY_RKEY_KEY("%s", "%s"),
                          json_string_value(json_object_get(o, "uid")),
                          json_string_value(json_object_get(o, "sha"))),
                      NGX_AI_RELAY_CLI_READ_HASH);
        ngx_ai_relay_cli_sync_want(&keys, &types,
                      ngx_ai_relay_cli_sprintf(NGX_AI_RELAY_RKEY_KEYIDX("%s"),
                          json_string_value(json_object_get(o, "sha"))),
                      NGX_AI_RELAY_CLI_READ_STRING);
        ngx_ai_relay_cli_sync_want(&keys, &types, ngx_ai_relay_cli_sprintf(
                                       NGX_AI_RELAY_RKEY_KEYID("%s"), id),
                                   NGX_AI_RELAY_CLI_READ_STRING);
    }

    json_object_foreach(im->channels, id, o) {
        ngx_ai_relay_cli_sync_want(&keys, &types, ngx_ai_relay_cli_sprintf(
                                       NGX_AI_RELAY_RKEY_CHANNEL("%s"), id),
                                   NGX_AI_RELAY_CLI_READ_HASH);
    }

    json_object_foreach(im->models, id, o) {
        ngx_ai_relay_cli_sync_want(&keys, &types, ngx_ai_relay_cli_sprintf(
                                       NGX_AI_RELAY_RKEY_MODEL("%s"), id),
                                   NGX_AI_RELAY_CLI_READ_HASH);
    }

    json_object_foreach(im->prices, id, o) {
        ngx_ai_relay_cli_sync_want(&keys, &types, ngx_ai_relay_cli_sprintf(
                                       NGX_AI_RELAY_RKEY_PRICE("%s"), id),
                                   NGX_AI_RELAY_CLI_READ_HASH);
    }

    /*
     * WATCH what any other change would touch: every ai-relay command
     * that changes something INCRs ar:{cfg}:version (balances aside, which
     * an import writes only as deltas), and the relay itself never writes
     * the fields an import compares.  Watching each of possibly a
     * hundred thousand keys would cost Redis O(n^2).
     */

    ngx_ai_relay_cli_watch(im->cli, &watch);

    /* read them */

    cmds = ngx_ai_relay_cli_alloc((keys.nelts + 1) * sizeof(void *));
    replies = ngx_ai_relay_cli_alloc((keys.nelts + 1) * sizeof(void *));

    for (i = 0; i < keys.nelts; i++) {
        type = (int) (intptr_t) types.elts[i];

        cmds[i] = ngx_ai_relay_cli_cmd(
                         type == NGX_AI_RELAY_CLI_READ_HASH ? "HGETALL"
                         : type == NGX_AI_RELAY_CLI_READ_STRING ? "GET"
                         : "SMEMBERS", keys.elts[i], NULL);
    }

    ngx_ai_relay_cli_pipeline(im->cli, cmds, keys.nelts, replies);

    cur = json_object();

    for (i = 0; i < keys.nelts; i++) {
        r = replies[i];
        type = (int) (intptr_t) types.elts[i];

        if (type == NGX_AI_RELAY_CLI_READ_HASH) {
            v = ngx_ai_relay_cli_reply_hash(r);

        } else if (type == NGX_AI_RELAY_CLI_READ_STRING) {
            v = r->type == REDIS_REPLY_STRING ? json_stringn(r->str, r->len)
                                              : NULL;

        } else {
            v = json_object();

            for (k = 0; k < r->elements; k++) {
                json_object_set_new(v, ngx_ai_relay_cli_strndup(
                                           r->element[k]->str,
                                           r->element[k]->len),
                                    json_true());
            }
        }

        json_object_set_new(cur, keys.elts[i], v ? v : json_null());
    }

    ngx_ai_relay_cli_free_replies(replies, keys.nelts);

    return cur;
}


static json_t *
ngx_ai_relay_cli_sync_cur(ngx_ai_relay_cli_sync_t *s, const char *key)
{
    json_t  *v;

    v = json_object_get(s->cur, key);

    return json_is_null(v) ? NULL : v;
}


static void
ngx_ai_relay_cli_sync_sadd(ngx_ai_relay_cli_sync_t *s, const char *set,
    const char *member)
{
    json_t  *cur;

    cur = ngx_ai_relay_cli_sync_cur(s, set);

    if (json_object_get(cur, member) == NULL) {
        ngx_ai_relay_cli_tx_add(&s->tx, ngx_ai_relay_cli_cmd("SADD", set,
                                                         member, NULL));
    }
}


static void
ngx_ai_relay_cli_sync_change(ngx_ai_relay_cli_sync_t *s, const char *op,
    const char *kind, const char *id, json_t *fields)
{
    json_array_append_new(s->im->changes, json_pack("{s:s,s:s,s:s,s:o}",
                                                    "op", op, "kind", kind,
                                                    "id", id,
                                                    "fields", fields));
}


static void
ngx_ai_relay_cli_sync_conflict(ngx_ai_relay_cli_sync_t *s, const char *kind,
    const char *id, const char *fmt, ...)
{
    int       n;
    char     *msg;
    va_list   ap;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);

    msg = ngx_ai_relay_cli_alloc(n + 1);

    va_start(ap, fmt);
    vsnprintf(msg, n + 1, fmt, ap);
    va_end(ap);

    json_array_append_new(s->im->conflicts, json_pack("{s:s,s:s,s:s}",
                                                  "kind", kind, "id", id,
                                                  "reason", msg));
}


/*
 * A hash the import owns.  Missing: created from sync + initial.  Ours:
 * sync fields (and initial ones with --sync-balances) made equal; fields
 * starting with del_prefix that are not wanted are removed.  Somebody
 * else's: NULL is returned and a conflict (fatal) or a skip reported.
 * Returns the changed fields ({} if none), or NULL.
 */
static json_t *
ngx_ai_relay_cli_sync_hash(ngx_ai_relay_cli_sync_t *s, const char *kind,
    const char *id, const char *key, json_t *sync, json_t *initial,
    const char *del_prefix, int fatal, int *created)
{
    json_t                  *cur, *v, *changed, *all;
    int64_t                  want_n, cur_n;
    const char              *f, *src, *want;
    ngx_ai_relay_cli_cmd_t  *hset, *hdel;

    cur = ngx_ai_relay_cli_sync_cur(s, key);
    want = json_string_value(json_object_get(sync, "source"));
    *created = 0;

    if (cur == NULL) {
        all = json_deep_copy(sync);

        if (initial) {
            json_object_update(all, initial);
        }

        hset = ngx_ai_relay_cli_cmd("HSET", key, NULL);

        json_object_foreach(all, f, v) {
            ngx_ai_relay_cli_cmd_add(hset, f);
            ngx_ai_relay_cli_cmd_add(hset, json_string_value(v));
        }

        ngx_ai_relay_cli_tx_add(&s->tx, hset);
        *created = 1;

        return all;
    }

    src = ngx_ai_relay_cli_hval(cur, "source");

    if (src == NULL || strcmp(src, want) != 0) {
        if (fatal) {
            ngx_ai_relay_cli_sync_conflict(s, kind, id,
                    "%s %s exists in Redis and was not imported from this "
                    "source (its source: %s)", kind, id, src ? src : "none");

        } else {
            ngx_ai_relay_cli_import_skip(s->im, kind, id,
                    "set in Redis by other means (source: %s); kept",
                    src ? src : "none");
        }

        return NULL;
    }

    if (strcmp(ngx_ai_relay_cli_hstr(cur, "edited"), "1") == 0) {
        ngx_ai_relay_cli_import_skip(s->im, kind, id,
                "changed with ai-relay since it was imported; kept");
        return NULL;
    }

    changed = json_object();
    hset = ngx_ai_relay_cli_cmd("HSET", key, NULL);
    hdel = ngx_ai_relay_cli_cmd("HDEL", key, NULL);

    if (s->im->sync_balances) {

        /*
         * Counters the relay changes all the time: moved by the
         * difference, so that a charge made meanwhile is not lost.
         */

        json_object_foreach(initial, f, v) {
            if (strcmp(f, "balance") != 0 && strcmp(f, "quota") != 0
                && strcmp(f, "used") != 0 && strcmp(f, "requests") != 0)
            {
                continue;
            }

            want_n = atoll(json_string_value(v));
            cur_n = ngx_ai_relay_cli_hint(cur, f, 0);

            if (want_n == cur_n) {
                continue;
            }

            json_object_set(changed, f, v);

            if (strcmp(f, "quota") == 0 && (want_n < 0 || cur_n < 0)) {
                ngx_ai_relay_cli_cmd_add(hset, f);
                ngx_ai_relay_cli_cmd_add(hset, json_string_value(v));
                continue;
            }

            ngx_ai_relay_cli_tx_add(&s->tx, ngx_ai_relay_cli_cmd("HINCRBY",
                         key, f, ngx_ai_relay_cli_sprintf("%" PRId64,
                                                          want_n - cur_n),
                         NULL));
        }
    }

    json_object_foreach(sync, f, v) {
        if (json_equal(json_object_get(cur, f), v)) {
            continue;
        }

        ngx_ai_relay_cli_cmd_add(hset, f);
        ngx_ai_relay_cli_cmd_add(hset, json_string_value(v));
        json_object_set(changed, f, v);
    }

    if (del_prefix) {
        json_object_foreach(cur, f, v) {
            if (strncmp(f, del_prefix, strlen(del_prefix)) == 0
                && json_object_get(sync, f) == NULL
                && json_object_get(initial, f) == NULL)
            {
                ngx_ai_relay_cli_cmd_add(hdel, f);
                json_object_set_new(changed, f, json_null());
            }
        }
    }

    if (hdel->argc > 2) {
        ngx_ai_relay_cli_tx_add(&s->tx, hdel);
    }

    if (hset->argc > 2) {
        ngx_ai_relay_cli_tx_add(&s->tx, hset);
    }

    return changed;
}


static void
ngx_ai_relay_cli_sync_ledger(ngx_ai_relay_cli_sync_t *s, const char *uid,
    int64_t amount, int64_t balance, const char *src)
{
    ngx_ai_relay_cli_cmd_t  *c;

    c = ngx_ai_relay_cli_cmd("XADD", ngx_ai_relay_cli_sprintf(
                                         NGX_AI_RELAY_RKEY_LEDGER("%s"), uid),
                             "*", "time", NULL);
    ngx_ai_relay_cli_cmd_addf(c, "%" PRId64, (int64_t) s->im->cli->now);
    ngx_ai_relay_cli_cmd_add(c, "op");
    ngx_ai_relay_cli_cmd_add(c, "import");
    ngx_ai_relay_cli_cmd_add(c, "amount");
    ngx_ai_relay_cli_cmd_addf(c, "%" PRId64, amount);
    ngx_ai_relay_cli_cmd_add(c, "balance");
    ngx_ai_relay_cli_cmd_addf(c, "%" PRId64, balance);
    ngx_ai_relay_cli_cmd_add(c, "note");
    ngx_ai_relay_cli_cmd_addf(c, "import from %s user %s", s->im->tag, src);
    ngx_ai_relay_cli_tx_add(&s->tx, c);
}


static void
ngx_ai_relay_cli_sync_users(ngx_ai_relay_cli_sync_t *s)
{
    int          created;
    char        *key;
    json_t      *o, *changed, *cur;
    int64_t      balance, old;
    const char  *uid, *v;

    json_object_foreach(s->im->users, uid, o) {
        key = ngx_ai_relay_cli_sprintf(NGX_AI_RELAY_RKEY_USER("%s"), uid);
        cur = ngx_ai_relay_cli_sync_cur(s, key);
        old = ngx_ai_relay_cli_hint(cur, "balance", 0);

        changed = ngx_ai_relay_cli_sync_hash(s, "user", uid, key,
                                             json_object_get(o, "sync"),
                                             json_object_get(o, "initial"),
                                             NULL, 1, &created);
        if (changed == NULL) {
            continue;
        }

        v = json_string_value(json_object_get(changed, "balance"));
        balance = v ? atoll(v) : 0;

        if (v && (created ? balance != 0 : balance != old)) {
            ngx_ai_relay_cli_sync_ledger(s, uid,
                                         created ? balance : balance - old,
                                         balance,
                                         json_string_value(json_object_get(o,
                                                                    "src")));
        }

        if (json_object_size(changed)) {
            ngx_ai_relay_cli_sync_change(s, created ? "create" : "update",
                                         "user", uid, changed);

        } else {
            json_decref(changed);
        }

        ngx_ai_relay_cli_sync_sadd(s, NGX_AI_RELAY_RKEY_USERS, uid);
    }
}


static void
ngx_ai_relay_cli_sync_keys(ngx_ai_relay_cli_sync_t *s)
{
    int          created;
    char        *key, *idx, *kidk, *pair;
    json_t      *o, *changed, *other, *ki, *kd;
    const char  *kid, *uid, *sha, *src, *want;

    json_object_foreach(s->im->keys, kid, o) {
        uid = json_string_value(json_object_get(o, "uid"));
        sha = json_string_value(json_object_get(o, "sha"));
        want = json_string_value(json_object_get(json_object_get(o, "sync"),
                                                 "source"));

        key = ngx_ai_relay_cli_sprintf(NGX_AI_RELAY_RKEY_KEY("%s", "%s"),
                                       uid, sha);
        idx = ngx_ai_relay_cli_sprintf(NGX_AI_RELAY_RKEY_KEYIDX("%s"), sha);
        kidk = ngx_ai_relay_cli_sprintf(NGX_AI_RELAY_RKEY_KEYID("%s"), kid);
        pair = ngx_ai_relay_cli_sprintf("%s:%s", uid, sha);

        ki = ngx_ai_relay_cli_sync_cur(s, idx);
        kd = ngx_ai_relay_cli_sync_cur(s, kidk);

        if (ki && strcmp(json_string_value(ki), uid) != 0) {
            ngx_ai_relay_cli_sync_conflict(s, "key", kid,
                    "the key of token %s is already registered for user %s",
                    json_string_value(json_object_get(o, "src")),
                    json_string_value(ki));
            continue;
        }

        if (kd && strcmp(json_string_value(kd), pair) != 0) {

            /* a key rotated (or replaced) after an earlier import? */

            other = NULL;

            if (ki == NULL && strchr(json_string_value(kd), ':')) {
                other = ngx_ai_relay_cli_hgetall(s->im->cli,
                           ngx_ai_relay_cli_sprintf(
                               NGX_AI_RELAY_RKEY_KEY("%.*s", "%s"),
                               (int) (strchr(json_string_value(kd), ':')
                                      - json_string_value(kd)),
                               json_string_value(kd),
                               strchr(json_string_value(kd), ':') + 1));
            }

            src = ngx_ai_relay_cli_hval(other, "source");

            if (src && strcmp(src, want) == 0) {
                ngx_ai_relay_cli_import_skip(s->im, "key", kid,
                        "rotated or replaced in ai-relay since it was "
                        "imported; kept");

            } else {
                ngx_ai_relay_cli_sync_conflict(s, "key", kid,
                        "key id %s is used by another key (source: %s)",
                        kid, src ? src : "none");
            }

            json_decref(other);
            continue;
        }

        changed = ngx_ai_relay_cli_sync_hash(s, "key", kid, key,
                                             json_object_get(o, "sync"),
                                             json_object_get(o, "initial"),
                                             NULL, 1, &created);
        if (changed == NULL) {
            continue;
        }

        if (ki == NULL) {
            ngx_ai_relay_cli_tx_add(&s->tx, ngx_ai_relay_cli_cmd("SET", idx,
                                                             uid, NULL));
        }

        if (kd == NULL) {
            ngx_ai_relay_cli_tx_add(&s->tx, ngx_ai_relay_cli_cmd("SET", kidk,
                                                             pair, NULL));
        }

        ngx_ai_relay_cli_sync_sadd(s, ngx_ai_relay_cli_sprintf(
                                          NGX_AI_RELAY_RKEY_KEYS("%s"), uid),
                                   sha);

        if (json_object_size(changed)) {
            json_object_set_new(changed, "user", json_string(uid));
            ngx_ai_relay_cli_sync_change(s, created ? "create" : "update",
                                         "key", kid, changed);

        } else {
            json_decref(changed);
        }
    }
}


static void
ngx_ai_relay_cli_sync_channels(ngx_ai_relay_cli_sync_t *s)
{
    int          created;
    json_t      *o, *changed;
    const char  *id;

    json_object_foreach(s->im->channels, id, o) {
        changed = ngx_ai_relay_cli_sync_hash(s, "channel", id,
                      ngx_ai_relay_cli_sprintf(NGX_AI_RELAY_RKEY_CHANNEL("%s"),
                                               id),
                      json_object_get(o, "sync"), NULL, "map:", 1,
                      &created);
        if (changed == NULL) {
            continue;
        }

        ngx_ai_relay_cli_sync_sadd(s, NGX_AI_RELAY_RKEY_CHANNELS, id);

        if (json_object_size(changed)) {
            ngx_ai_relay_cli_sync_change(s, created ? "create" : "update",
                                         "channel", id, changed);

        } else {
            json_decref(changed);
        }
    }
}


static void
ngx_ai_relay_cli_sync_models(ngx_ai_relay_cli_sync_t *s)
{
    int                      ours;
    char                    *key, *csv;
    size_t                   i;
    json_t                  *o, *cur, *ids, *v;
    const char              *name, *alias, *old;
    ngx_ai_relay_cli_list_t  list;

    json_object_foreach(s->im->models, name, o) {
        key = ngx_ai_relay_cli_sprintf(NGX_AI_RELAY_RKEY_MODEL("%s"), name);
        cur = ngx_ai_relay_cli_sync_cur(s, key);
        alias = json_string_value(json_object_get(o, "alias"));
        ids = json_object_get(o, "channels");
        ours = cur && strcmp(ngx_ai_relay_cli_hstr(cur, "source"),
                             s->im->tag) == 0;

        ngx_ai_relay_cli_sync_sadd(s, NGX_AI_RELAY_RKEY_MODELS, name);

        if (ours && strcmp(ngx_ai_relay_cli_hstr(cur, "edited"), "1") == 0) {
            ngx_ai_relay_cli_import_skip(s->im, "model", name,
                    "changed with ai-relay since it was imported; kept");
            continue;
        }

        if (cur == NULL) {
            if (alias) {
                ngx_ai_relay_cli_tx_add(&s->tx, ngx_ai_relay_cli_cmd("HSET",
                                   key, "alias", alias, "source",
                                   s->im->tag, NULL));
                ngx_ai_relay_cli_sync_change(s, "create", "model", name,
                                   json_pack("{s:s}", "alias", alias));
                continue;
            }

            memset(&list, 0, sizeof(list));

            json_array_foreach(ids, i, v) {
                ngx_ai_relay_cli_list_push(&list,
                                        (char *) json_string_value(v));
            }

            csv = ngx_ai_relay_cli_list_join(&list, ",");
            ngx_ai_relay_cli_tx_add(&s->tx, ngx_ai_relay_cli_cmd("HSET", key,
                               "channels", csv, "source", s->im->tag, NULL));
            ngx_ai_relay_cli_sync_change(s, "create", "model", name,
                               json_pack("{s:s}", "channels", csv));
            continue;
        }

        old = ngx_ai_relay_cli_hval(cur, "alias");

        if (alias) {
            if (old && strcmp(old, alias) == 0) {
                continue;
            }

            if (ours) {
                ngx_ai_relay_cli_tx_add(&s->tx, ngx_ai_relay_cli_cmd("HDEL",
                                                   key, "channels", NULL));
                ngx_ai_relay_cli_tx_add(&s->tx, ngx_ai_relay_cli_cmd("HSET",
                                                   key, "alias", alias,
                                                   NULL));
                ngx_ai_relay_cli_sync_change(s, "update", "model", name,
                                   json_pack("{s:s}", "alias", alias));
                continue;
            }

            if (old) {
                ngx_ai_relay_cli_import_skip(s->im, "model", name,
                        "an alias of %s in Redis (not imported); kept", old);
                continue;
            }

            /* a real model already: its channels serve it, mapped */
        }

        if (old) {
            if (!ours) {
                ngx_ai_relay_cli_import_skip(s->im, "model", name,
                        "an alias of %s in Redis (not imported); its "
                        "channels were not attached", old);
                continue;
            }

            ngx_ai_relay_cli_tx_add(&s->tx, ngx_ai_relay_cli_cmd("HDEL", key,
                                                       "alias", NULL));
        }

        /* add the channels missing from the list, keep the others */

        csv = (char *) ngx_ai_relay_cli_hstr(cur, "channels");

        json_array_foreach(ids, i, v) {
            csv = ngx_ai_relay_cli_csv_add(csv, json_string_value(v));
        }

        if (old || strcmp(csv, ngx_ai_relay_cli_hstr(cur, "channels")) != 0)
        {
            ngx_ai_relay_cli_tx_add(&s->tx, ngx_ai_relay_cli_cmd("HSET", key,
                                                  "channels", csv, NULL));
            ngx_ai_relay_cli_sync_change(s, "update", "model", name,
                                         json_pack("{s:s}", "channels",
                                                   csv));
        }
    }
}


/*
 * Prices: the relay reads the whole price hash, so who imported one is
 * kept apart, in ar:{cfg}:imported (field "price:<model>").
 */
static void
ngx_ai_relay_cli_sync_prices(ngx_ai_relay_cli_sync_t *s)
{
    char                    *key, *field;
    json_t                  *o, *cur, *imported, *changed, *v;
    const char              *name, *f, *owner;
    ngx_ai_relay_cli_cmd_t  *hset, *hdel;

    imported = ngx_ai_relay_cli_sync_cur(s, NGX_AI_RELAY_RKEY_IMPORTED);

    json_object_foreach(s->im->prices, name, o) {
        key = ngx_ai_relay_cli_sprintf(NGX_AI_RELAY_RKEY_PRICE("%s"), name);
        field = ngx_ai_relay_cli_sprintf("price:%s", name);
        cur = ngx_ai_relay_cli_sync_cur(s, key);
        owner = ngx_ai_relay_cli_hval(imported, field);

        if (cur && (owner == NULL || strcmp(owner, s->im->tag) != 0)) {
            ngx_ai_relay_cli_import_skip(s->im, "price", name,
                    "set in Redis by other means%s%s; kept",
                    owner ? " (imported from " : "",
                    owner ? ngx_ai_relay_cli_sprintf("%s)", owner) : "");
            continue;
        }

        changed = json_object();
        hset = ngx_ai_relay_cli_cmd("HSET", key, NULL);
        hdel = ngx_ai_relay_cli_cmd("HDEL", key, NULL);

        json_object_foreach(o, f, v) {
            if (!json_equal(json_object_get(cur, f), v)) {
                ngx_ai_relay_cli_cmd_add(hset, f);
                ngx_ai_relay_cli_cmd_add(hset, json_string_value(v));
                json_object_set(changed, f, v);
            }
        }

        json_object_foreach(cur, f, v) {
            if (json_object_get(o, f) == NULL) {
                ngx_ai_relay_cli_cmd_add(hdel, f);
                json_object_set_new(changed, f, json_null());
            }
        }

        if (hdel->argc > 2) {
            ngx_ai_relay_cli_tx_add(&s->tx, hdel);
        }

        if (hset->argc > 2) {
            ngx_ai_relay_cli_tx_add(&s->tx, hset);
        }

        if (owner == NULL) {
            ngx_ai_relay_cli_tx_add(&s->tx, ngx_ai_relay_cli_cmd("HSET",
                                          NGX_AI_RELAY_RKEY_IMPORTED, field,
                                          s->im->tag, NULL));
        }

        if (json_object_size(changed)) {
            ngx_ai_relay_cli_sync_change(s, cur ? "update" : "create",
                                         "price", name, changed);

        } else {
            json_decref(changed);
        }
    }
}


static void
ngx_ai_relay_cli_sync_seq(ngx_ai_relay_cli_sync_t *s, const char *field,
    int64_t max)
{
    json_t  *seq;

    seq = ngx_ai_relay_cli_sync_cur(s, NGX_AI_RELAY_RKEY_SEQ);

    if (max > ngx_ai_relay_cli_hint(seq, field, 0)) {
        ngx_ai_relay_cli_tx_add(&s->tx, ngx_ai_relay_cli_cmd("HSET",
                                 NGX_AI_RELAY_RKEY_SEQ, field,
                                 ngx_ai_relay_cli_sprintf("%" PRId64, max),
                                 NULL));
    }
}


/* ------------------------------------------------------------ report */


static const char *
ngx_ai_relay_cli_sync_field(const char *kind, const char *f, json_t *v)
{
    size_t                   i;
    const char              *s;
    ngx_ai_relay_cli_list_t  l, m;

    s = json_string_value(v);

    if (s == NULL) {
        return "(removed)";
    }

    if (strcmp(kind, "channel") == 0 && strcmp(f, "keys") == 0) {
        memset(&l, 0, sizeof(l));
        memset(&m, 0, sizeof(m));
        ngx_ai_relay_cli_list_split(&l, s, "\n");

        for (i = 0; i < l.nelts; i++) {
            ngx_ai_relay_cli_list_push(&m, ngx_ai_relay_cli_mask(l.elts[i]));
        }

        return ngx_ai_relay_cli_list_join(&m, ",");
    }

    if ((strcmp(kind, "price") == 0 && strcmp(f, "source") != 0)
        || strcmp(f, "balance") == 0 || strcmp(f, "used") == 0
        || (strcmp(f, "quota") == 0 && atoll(s) >= 0))
    {
        return ngx_ai_relay_cli_usd(atoll(s));
    }

    if (strcmp(f, "quota") == 0) {
        return "none";
    }

    if (strcmp(f, "expires") == 0 || strcmp(f, "created") == 0) {
        return ngx_ai_relay_cli_time_str(atoll(s));
    }

    return s;
}


/* channel keys in the report are masked, never shown */
static void
ngx_ai_relay_cli_sync_mask(json_t *changes)
{
    size_t   i;
    json_t  *c, *fields, *keys;

    json_array_foreach(changes, i, c) {
        fields = json_object_get(c, "fields");
        keys = json_object_get(fields, "keys");

        if (strcmp(json_string_value(json_object_get(c, "kind")), "channel")
            == 0 && json_is_string(keys))
        {
            json_object_set_new(fields, "keys", json_string(
                       ngx_ai_relay_cli_sync_field("channel", "keys", keys)));
        }
    }
}


static void
ngx_ai_relay_cli_sync_report(ngx_ai_relay_cli_import_t *im,
    const char *result, int written)
{
    size_t       i;
    json_t      *j, *c, *v;
    const char  *f, *kind;

    ngx_ai_relay_cli_sync_mask(im->changes);

    if (im->cli->json) {
        j = json_pack("{s:s,s:s,s:s,s:b,s:b,s:s,s:{s:I,s:I,s:I,s:I,s:I},"
                      "s:O,s:O,s:O,s:O,s:O}",
                      "from", im->from, "source", im->tag,
                      "database", im->db_what,
                      "dry_run", im->dry_run, "written", written,
                      "result", result,
                      "read",
                      "users", (json_int_t) json_object_size(im->users),
                      "keys", (json_int_t) json_object_size(im->keys),
                      "channels", (json_int_t) json_object_size(im->channels),
                      "models", (json_int_t) json_object_size(im->models),
                      "prices", (json_int_t) json_object_size(im->prices),
                      "changes", im->changes, "skipped", im->skipped,
                      "inexact", im->inexact, "notes", im->notes,
                      "conflicts", im->conflicts);
        ngx_ai_relay_cli_print_json(j);
        json_decref(j);
        return;
    }

    printf("import from %s (%s), source tag \"%s\"\n", im->from,
           im->db_what, im->tag);
    printf("translated: %zu users, %zu keys, %zu channels, %zu models, "
           "%zu prices\n", json_object_size(im->users),
           json_object_size(im->keys), json_object_size(im->channels),
           json_object_size(im->models), json_object_size(im->prices));

    if (json_array_size(im->changes)) {
        printf("\nchanges (%zu):\n", json_array_size(im->changes));

        json_array_foreach(im->changes, i, c) {
            kind = json_string_value(json_object_get(c, "kind"));

            printf("  %c %s %s", strcmp(json_string_value(json_object_get(c,
                                                            "op")),
                                        "create") == 0 ? '+' : '~',
                   kind, json_string_value(json_object_get(c, "id")));

            json_object_foreach(json_object_get(c, "fields"), f, v) {
                if (strcmp(f, "source") == 0 || strcmp(f, "masked") == 0
                    || strcmp(f, "id") == 0)
                {
                    continue;
                }

                printf(" %s=%s", f, ngx_ai_relay_cli_sync_field(kind, f, v));
            }

            printf("\n");
        }
    }

    if (json_array_size(im->conflicts)) {
        printf("\nconflicts (%zu), nothing written:\n",
               json_array_size(im->conflicts));

        json_array_foreach(im->conflicts, i, c) {
            printf("  ! %s\n", json_string_value(json_object_get(c,
                                                                 "reason")));
        }
    }

    if (json_array_size(im->skipped)) {
        printf("\nnot imported (%zu):\n", json_array_size(im->skipped));

        json_array_foreach(im->skipped, i, c) {
            printf("  - %s %s: %s\n",
                   json_string_value(json_object_get(c, "kind")),
                   json_string_value(json_object_get(c, "id")),
                   json_string_value(json_object_get(c, "reason")));
        }
    }

    if (json_array_size(im->inexact)) {
        printf("\ninexact (%zu):\n", json_array_size(im->inexact));

        json_array_foreach(im->inexact, i, c) {
            printf("  ~ price %s %s: %" PRId64 " uUSD, %s\n",
                   json_string_value(json_object_get(c, "model")),
                   json_string_value(json_object_get(c, "field")),
                   (int64_t) json_integer_value(json_object_get(c,
                                                               "stored")),
                   json_string_value(json_object_get(c, "reason")));
        }
    }

    if (json_array_size(im->notes)) {
        printf("\nnotes (%zu):\n", json_array_size(im->notes));

        json_array_foreach(im->notes, i, c) {
            printf("  * %s\n", json_string_value(c));
        }
    }

    printf("\n%s\n", result);
}


int
ngx_ai_relay_cli_import_sync(ngx_ai_relay_cli_import_t *im)
{
    int                       try, n;
    size_t                    nskipped;
    const char               *result;
    ngx_ai_relay_cli_sync_t   s;

    if (ngx_ai_relay_cli_connect(im->cli) != NGX_AI_RELAY_CLI_OK) {
        return im->cli->failed_rc;
    }

    nskipped = json_array_size(im->skipped);

    for (try = 0; try < NGX_AI_RELAY_CLI_TX_TRIES; try++) {

        memset(&s, 0, sizeof(s));
        s.im = im;

        json_array_clear(im->changes);
        json_array_clear(im->conflicts);

        while (json_array_size(im->skipped) > nskipped) {
            json_array_remove(im->skipped, nskipped);
        }

        s.cur = ngx_ai_relay_cli_sync_read(im);

        ngx_ai_relay_cli_sync_users(&s);
        ngx_ai_relay_cli_sync_keys(&s);
        ngx_ai_relay_cli_sync_channels(&s);
        ngx_ai_relay_cli_sync_models(&s);
        ngx_ai_relay_cli_sync_prices(&s);

        ngx_ai_relay_cli_sync_seq(&s, "user", im->max_user);
        ngx_ai_relay_cli_sync_seq(&s, "key", im->max_key);
        ngx_ai_relay_cli_sync_seq(&s, "channel", im->max_channel);

        json_decref(s.cur);

        n = (int) json_array_size(im->changes);

        if (json_array_size(im->conflicts)) {
            ngx_ai_relay_cli_unwatch(im->cli);
            ngx_ai_relay_cli_sync_report(im, "conflicts: nothing written", 0);

            return ngx_ai_relay_cli_error(NULL, NGX_AI_RELAY_CLI_REJECTED,
                                          "import refused: %zu conflict(s) "
                                          "with existing data; nothing "
                                          "written (--id-offset keeps ids "
                                          "apart)",
                                          json_array_size(im->conflicts));
        }

        if (im->dry_run || s.tx.ncmds == 0) {
            ngx_ai_relay_cli_unwatch(im->cli);

            result = im->dry_run
                     ? ngx_ai_relay_cli_sprintf("dry run: %d change(s), "
                                                "nothing written", n)
                     : "nothing to change";

            ngx_ai_relay_cli_sync_report(im, result, 0);

            return NGX_AI_RELAY_CLI_OK;
        }

        s.tx.version = 1;

        if (ngx_ai_relay_cli_tx_exec(im->cli, &s.tx) == 0) {
            ngx_ai_relay_cli_sync_report(im, ngx_ai_relay_cli_sprintf(
                                         "written: %d change(s) in %s", n,
                                         im->cli->cluster
                                         ? "single-slot steps (Redis Cluster)"
                                         : "one transaction"), 1);
            return NGX_AI_RELAY_CLI_OK;
        }
    }

    return ngx_ai_relay_cli_error(im->cli, NGX_AI_RELAY_CLI_FAILED,
                                  "Redis kept changing during the import; "
                                  "nothing written, try again");
}
