
/*
 * Copyright (C) ngx_ai_relay authors
 *
 * Lookups and writes shared by the commands: users and keys by id, name
 * or plaintext key, pipelined reads, and the small Lua scripts used for
 * changes to hashes the relay itself updates on every request (a WATCH
 * on those would be retried forever under traffic).
 */


#include "ngx_ai_relay_cli.h"
#include "ngx_ai_relay_key.h"
#include "ngx_ai_relay_price.h"


/*
 * Set fields of a hash only if it exists, and bump the config version.
 * An imported object (it has "source") is marked "edited": a later
 * import leaves it as the operator made it.
 * KEYS[1] the hash  KEYS[2] ar:{cfg}:version  ARGV field, value, ...
 * -> 1, or 0 if the hash does not exist
 */

#define NGX_AI_RELAY_CLI_SCRIPT_HSET                                         \
"if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end\n"                  \
"redis.call('HSET', KEYS[1], unpack(ARGV))\n"                                \
"if redis.call('HEXISTS', KEYS[1], 'source') == 1 then\n"                    \
"  redis.call('HSET', KEYS[1], 'edited', '1')\n"                             \
"end\n"

static const char  ngx_ai_relay_cli_script_hset[] =
NGX_AI_RELAY_CLI_SCRIPT_HSET
"redis.call('INCR', KEYS[2])\n"
"return 1\n";

/* on a Redis Cluster: the hash alone, the version is a step of its own */
static const char  ngx_ai_relay_cli_script_hset1[] =
NGX_AI_RELAY_CLI_SCRIPT_HSET
"return 1\n";


/*
 * Move money in or out of a balance and write the ledger entry.
 * KEYS[1] ar:{u<id>}:user  KEYS[2] ar:{u<id>}:ledger
 * ARGV[1] amount, signed micro-USD  ARGV[2] op  ARGV[3] note
 * ARGV[4] unix time  ARGV[5] "1": the balance may become negative
 * -> {"ok", new balance} | {"missing"} | {"short", balance}
 */

static const char  ngx_ai_relay_cli_script_money[] =
"if redis.call('EXISTS', KEYS[1]) == 0 then return {'missing'} end\n"
"local bal = redis.call('HGET', KEYS[1], 'balance') or '0'\n"
"if ARGV[5] ~= '1'\n"
"   and tonumber(bal) + tonumber(ARGV[1]) < 0 then\n"
"  return {'short', bal}\n"
"end\n"
"local new = redis.call('HINCRBY', KEYS[1], 'balance', ARGV[1])\n"
"redis.call('XADD', KEYS[2], '*', 'time', ARGV[4], 'op', ARGV[2],\n"
"           'amount', ARGV[1], 'balance', tostring(new),\n"
"           'note', ARGV[3])\n"
"return {'ok', tostring(new)}\n";


/*
 * keys rotate on a Redis Cluster, in steps (ngx_ai_relay_cli_rotate_key()).
 * The first, in the user's slot: the new key hash, a copy of the old one
 * with its masked form, in the user's set of keys.
 * KEYS[1] old key hash  KEYS[2] new key hash  KEYS[3] ar:{u<id>}:keys
 * ARGV[1] new sha256  ARGV[2] new masked form  -> "ok" | "missing"
 */

static const char  ngx_ai_relay_cli_script_rotate_copy[] =
"if redis.call('EXISTS', KEYS[1]) == 0 then return 'missing' end\n"
"local h = redis.call('HGETALL', KEYS[1])\n"
"redis.call('HSET', KEYS[2], unpack(h))\n"
"redis.call('HSET', KEYS[2], 'masked', ARGV[2])\n"
"redis.call('SADD', KEYS[3], ARGV[1])\n"
"return 'ok'\n";


/*
 * The last in the user's slot, once nothing points to the old key: the
 * old key hash goes, its reservations become the new key's.
 * KEYS[1] old key hash  KEYS[2] ar:{u<id>}:rl:<old>  KEYS[3] ar:{u<id>}:keys
 * KEYS[4] ar:{u<id>}:res  ARGV[1] old sha256  ARGV[2] new sha256
 */

static const char  ngx_ai_relay_cli_script_rotate_drop[] =
"redis.call('DEL', KEYS[1], KEYS[2])\n"
"redis.call('SREM', KEYS[3], ARGV[1])\n"
"local res = redis.call('HGETALL', KEYS[4])\n"
"for i = 1, #res, 2 do\n"
"  local d, amt, kamt, h =\n"
"    string.match(res[i + 1], '" NGX_AI_RELAY_RES_PATTERN "')\n"
"  if h == ARGV[1] then\n"
"    redis.call('HSET', KEYS[4], res[i],\n"
"               string.format('" NGX_AI_RELAY_RES_FORMAT "', d, amt, kamt,\n"
"                             ARGV[2]))\n"
"  end\n"
"end\n"
"return 'ok'\n";


static const char *ngx_ai_relay_cli_rotate_steps(ngx_ai_relay_cli_t *cli,
    const char *uid, const char *kid, const char *old, const char *new,
    const char *masked);


/*
 * Replace a key by a new one, keeping its id, settings and counters.
 * KEYS[1] old key hash  KEYS[2] new key hash  KEYS[3] ar:{u<id>}:keys
 * KEYS[4] ar:keyidx:<old>  KEYS[5] ar:keyidx:<new>  KEYS[6] ar:keyid:<id>
 * KEYS[7] ar:{u<id>}:rl:<old> (gone since 0.2)  KEYS[8] ar:{u<id>}:res
 * KEYS[9] ar:{cfg}:version
 * ARGV[1] old sha256  ARGV[2] new sha256  ARGV[3] new masked form
 * ARGV[4] user id
 * The old key's reservations become the new key's.
 * -> "ok" | "missing" | "taken"
 */

static const char  ngx_ai_relay_cli_script_rotate[] =
"if redis.call('EXISTS', KEYS[1]) == 0 then return 'missing' end\n"
"if redis.call('EXISTS', KEYS[5]) == 1 then return 'taken' end\n"
"local h = redis.call('HGETALL', KEYS[1])\n"
"redis.call('HSET', KEYS[2], unpack(h))\n"
"redis.call('HSET', KEYS[2], 'masked', ARGV[3])\n"
"redis.call('DEL', KEYS[1], KEYS[4], KEYS[7])\n"
"redis.call('SREM', KEYS[3], ARGV[1])\n"
"redis.call('SADD', KEYS[3], ARGV[2])\n"
"redis.call('SET', KEYS[5], ARGV[4])\n"
"redis.call('SET', KEYS[6], ARGV[4] .. ':' .. ARGV[2])\n"
"local res = redis.call('HGETALL', KEYS[8])\n"
"for i = 1, #res, 2 do\n"
"  local d, amt, kamt, h =\n"
"    string.match(res[i + 1], '" NGX_AI_RELAY_RES_PATTERN "')\n"
"  if h == ARGV[1] then\n"
"    redis.call('HSET', KEYS[8], res[i],\n"
"               string.format('" NGX_AI_RELAY_RES_FORMAT "', d, amt, kamt,\n"
"                             ARGV[2]))\n"
"  end\n"
"end\n"
"redis.call('INCR', KEYS[9])\n"
"return 'ok'\n";


redisReply *
ngx_ai_relay_cli_eval(ngx_ai_relay_cli_t *cli, const char *script,
    int nkeys, const char **keys, int nargs, const char **argv)
{
    int                      i;
    ngx_ai_relay_cli_cmd_t  *c;

    c = ngx_ai_relay_cli_cmd("EVAL", script, NULL);
    ngx_ai_relay_cli_cmd_addf(c, "%d", nkeys);

    for (i = 0; i < nkeys; i++) {
        ngx_ai_relay_cli_cmd_add(c, keys[i]);
    }

    for (i = 0; i < nargs; i++) {
        ngx_ai_relay_cli_cmd_add(c, argv[i]);
    }

    return ngx_ai_relay_cli_run(cli, c);
}


/* 1: set; 0: the hash does not exist */
int
ngx_ai_relay_cli_hset_existing(ngx_ai_relay_cli_t *cli, const char *key,
    ngx_ai_relay_cli_list_t *fv)
{
    int          rc;
    const char  *keys[2];
    redisReply  *r;

    keys[0] = key;
    keys[1] = NGX_AI_RELAY_RKEY_VERSION;

    if (ngx_ai_relay_cli_connect(cli) != NGX_AI_RELAY_CLI_OK) {
        exit(NGX_AI_RELAY_CLI_FAILED);
    }

    if (cli->cluster) {
        /* two slots: the hash, then the version */

        r = ngx_ai_relay_cli_eval(cli, ngx_ai_relay_cli_script_hset1, 1,
                                  keys, (int) fv->nelts,
                                  (const char **) fv->elts);

        rc = (r->type == REDIS_REPLY_INTEGER && r->integer == 1);
        freeReplyObject(r);

        if (rc) {
            ngx_ai_relay_cli_step_done(cli);
            freeReplyObject(ngx_ai_relay_cli_runv(cli, "INCR", keys[1],
                                                  NULL));
        }

        return rc;
    }

    r = ngx_ai_relay_cli_eval(cli, ngx_ai_relay_cli_script_hset, 2, keys,
                              (int) fv->nelts, (const char **) fv->elts);

    rc = (r->type == REDIS_REPLY_INTEGER && r->integer == 1);
    freeReplyObject(r);

    return rc;
}


/*
 * Change a balance: *balance gets the new one.  0 done, 1 the user does
 * not exist, 2 the balance is too small (*balance gets it).
 */
int
ngx_ai_relay_cli_move_money(ngx_ai_relay_cli_t *cli, const char *uid,
    int64_t amount, const char *op, const char *note, int allow_negative,
    int64_t *balance)
{
    int          rc;
    const char  *keys[2], *argv[5];
    redisReply  *r;

    keys[0] = ngx_ai_relay_cli_sprintf(NGX_AI_RELAY_RKEY_USER("%s"), uid);
    keys[1] = ngx_ai_relay_cli_sprintf(NGX_AI_RELAY_RKEY_LEDGER("%s"), uid);

    argv[0] = ngx_ai_relay_cli_sprintf("%" PRId64, amount);
    argv[1] = op;
    argv[2] = note ? note : "";
    argv[3] = ngx_ai_relay_cli_sprintf("%" PRId64, (int64_t) cli->now);
    argv[4] = allow_negative ? "1" : "0";

    r = ngx_ai_relay_cli_eval(cli, ngx_ai_relay_cli_script_money, 2, keys,
                              5, argv);

    rc = 1;

    if (r->type == REDIS_REPLY_ARRAY && r->elements >= 1) {
        if (strcmp(r->element[0]->str, "ok") == 0) {
            rc = 0;

        } else if (strcmp(r->element[0]->str, "short") == 0) {
            rc = 2;
        }

        if (r->elements == 2) {
            ngx_ai_relay_cli_parse_int(r->element[1]->str, INT64_MIN,
                                       INT64_MAX, balance);
        }
    }

    freeReplyObject(r);

    return rc;
}


/* "ok", "missing" or "taken" */
const char *
ngx_ai_relay_cli_rotate_key(ngx_ai_relay_cli_t *cli, const char *uid,
    const char *kid, const char *old, const char *new, const char *masked)
{
    char        *rc;
    const char  *keys[9], *argv[4];
    redisReply  *r;

    if (ngx_ai_relay_cli_connect(cli) != NGX_AI_RELAY_CLI_OK) {
        exit(NGX_AI_RELAY_CLI_FAILED);
    }

    if (cli->cluster) {
        return ngx_ai_relay_cli_rotate_steps(cli, uid, kid, old, new, masked);
    }

    keys[0] = ngx_ai_relay_cli_sprintf(NGX_AI_RELAY_RKEY_KEY("%s", "%s"),
                                       uid, old);
    keys[1] = ngx_ai_relay_cli_sprintf(NGX_AI_RELAY_RKEY_KEY("%s", "%s"),
                                       uid, new);
    keys[2] = ngx_ai_relay_cli_sprintf(NGX_AI_RELAY_RKEY_KEYS("%s"), uid);
    keys[3] = ngx_ai_relay_cli_sprintf(NGX_AI_RELAY_RKEY_KEYIDX("%s"), old);
    keys[4] = ngx_ai_relay_cli_sprintf(NGX_AI_RELAY_RKEY_KEYIDX("%s"), new);
    keys[5] = ngx_ai_relay_cli_sprintf(NGX_AI_RELAY_RKEY_KEYID("%s"), kid);
    keys[6] = ngx_ai_relay_cli_sprintf(NGX_AI_RELAY_RKEY_RL("%s", "%s"),
                                       uid, old);
    keys[7] = ngx_ai_relay_cli_sprintf(NGX_AI_RELAY_RKEY_RES("%s"), uid);
    keys[8] = NGX_AI_RELAY_RKEY_VERSION;

    argv[0] = old;
    argv[1] = new;
    argv[2] = masked;
    argv[3] = uid;

    r = ngx_ai_relay_cli_eval(cli, ngx_ai_relay_cli_script_rotate, 9, keys,
                              4, argv);

    rc = ngx_ai_relay_cli_strdup(r->type == REDIS_REPLY_STRING
                                 || r->type == REDIS_REPLY_STATUS
                                 ? r->str : "missing");
    freeReplyObject(r);

    return rc;
}


/*
 * keys rotate on a Redis Cluster, in steps: the new key hash (a copy,
 * unreachable yet), the old SHA-256's index removed (the old key stops
 * working), the id's index pointed at the new hash, the new SHA-256's
 * index claimed with SET NX (the new key works), the old hash dropped
 * (its reservations become the new key's), the configuration version.
 * Stopped anywhere, at most one of the two keys works, and "keys rotate
 * ID" again rotates whatever the id names (ngx_ai_relay_cli_find_any_key())
 * to a fresh key; the hash left behind is an orphan nothing reaches.
 */

static const char *
ngx_ai_relay_cli_rotate_steps(ngx_ai_relay_cli_t *cli, const char *uid,
    const char *kid, const char *old, const char *new, const char *masked)
{
    int          bad;
    char        *ohash, *nhash, *set, *idx;
    const char  *keys[4], *argv[2];
    redisReply  *r;

    ohash = ngx_ai_relay_cli_sprintf(NGX_AI_RELAY_RKEY_KEY("%s", "%s"),
                                     uid, old);
    nhash = ngx_ai_relay_cli_sprintf(NGX_AI_RELAY_RKEY_KEY("%s", "%s"),
                                     uid, new);
    set = ngx_ai_relay_cli_sprintf(NGX_AI_RELAY_RKEY_KEYS("%s"), uid);
    idx = ngx_ai_relay_cli_sprintf(NGX_AI_RELAY_RKEY_KEYIDX("%s"), new);

    if (ngx_ai_relay_cli_exists(cli, idx)) {
        return "taken";
    }

    keys[0] = ohash;
    keys[1] = nhash;
    keys[2] = set;
    argv[0] = new;
    argv[1] = masked;

    r = ngx_ai_relay_cli_eval(cli, ngx_ai_relay_cli_script_rotate_copy, 3,
                              keys, 2, argv);
    bad = (r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_STATUS)
          || strcmp(r->str, "ok") != 0;
    freeReplyObject(r);

    if (bad) {
        return "missing";
    }

    ngx_ai_relay_cli_step_done(cli);

    /* the old index, only if it still names this user */

    if (ngx_ai_relay_cli_key_reachable(cli, uid, old)) {
        freeReplyObject(ngx_ai_relay_cli_runv(cli, "DEL",
                            ngx_ai_relay_cli_sprintf(
                                NGX_AI_RELAY_RKEY_KEYIDX("%s"), old),
                            NULL));
    }

    ngx_ai_relay_cli_step_done(cli);

    freeReplyObject(ngx_ai_relay_cli_runv(cli, "SET",
                        ngx_ai_relay_cli_sprintf(NGX_AI_RELAY_RKEY_KEYID("%s"),
                                                 kid),
                        ngx_ai_relay_cli_sprintf("%s:%s", uid, new), NULL));
    ngx_ai_relay_cli_step_done(cli);

    r = ngx_ai_relay_cli_runv(cli, "SET", idx, uid, "NX", NULL);
    bad = (r->type == REDIS_REPLY_NIL);
    freeReplyObject(r);

    if (bad) {
        /* a new SHA-256 taken since the check: "keys rotate ID" again */
        return "taken meanwhile; the key works no more, rotate it again";
    }

    ngx_ai_relay_cli_step_done(cli);

    keys[0] = ohash;
    keys[1] = ngx_ai_relay_cli_sprintf(NGX_AI_RELAY_RKEY_RL("%s", "%s"),
                                       uid, old);
    keys[2] = set;
    keys[3] = ngx_ai_relay_cli_sprintf(NGX_AI_RELAY_RKEY_RES("%s"), uid);
    argv[0] = old;
    argv[1] = new;

    freeReplyObject(ngx_ai_relay_cli_eval(cli,
                                          ngx_ai_relay_cli_script_rotate_drop,
                                          4, keys, 2, argv));
    ngx_ai_relay_cli_step_done(cli);

    freeReplyObject(ngx_ai_relay_cli_runv(cli, "INCR",
                                          NGX_AI_RELAY_RKEY_VERSION, NULL));

    return "ok";
}


/*
 * Run commands pipelined; replies[i] gets each reply (the caller frees
 * them with ngx_ai_relay_cli_free_replies).
 */
void
ngx_ai_relay_cli_pipeline(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_cmd_t **cmds, size_t n, redisReply **replies)
{
    size_t                   i, done, batch;
    ngx_ai_relay_cli_cmd_t  *c;

    if (ngx_ai_relay_cli_connect(cli) != NGX_AI_RELAY_CLI_OK) {
        exit(NGX_AI_RELAY_CLI_FAILED);
    }

    if (cli->cluster) {
        /* each to its node, one after another */

        for (i = 0; i < n; i++) {
            replies[i] = ngx_ai_relay_cli_run(cli, cmds[i]);
        }

        return;
    }

    /* in batches, so that neither side buffers everything */

    for (done = 0; done < n; done += batch) {
        batch = n - done < 1000 ? n - done : 1000;

        for (i = done; i < done + batch; i++) {
            c = cmds[i];
            redisAppendCommandArgv(cli->redis, c->argc,
                                   (const char **) c->argv, c->lens);
        }

        for (i = done; i < done + batch; i++) {
            if (redisGetReply(cli->redis, (void **) &replies[i])
                != REDIS_OK)
            {
                ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_FAILED,
                                       "Redis: %s", cli->redis->errstr);
                exit(NGX_AI_RELAY_CLI_FAILED);
            }

            if (replies[i]->type == REDIS_REPLY_ERROR) {
                ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_FAILED,
                                       "Redis: %s: %s", cmds[i]->argv[0],
                                       replies[i]->str);
                exit(NGX_AI_RELAY_CLI_FAILED);
            }
        }
    }
}


void
ngx_ai_relay_cli_free_replies(redisReply **replies, size_t n)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        if (replies[i]) {
            freeReplyObject(replies[i]);
        }
    }
}


/* a hash reply as a JSON object of strings, NULL if empty */
json_t *
ngx_ai_relay_cli_reply_hash(redisReply *r)
{
    size_t   i;
    json_t  *h;

    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements == 0) {
        return NULL;
    }

    h = json_object();

    for (i = 0; i + 1 < r->elements; i += 2) {
        json_object_set_new(h,
                  ngx_ai_relay_cli_strndup(r->element[i]->str,
                                           r->element[i]->len),
                  json_stringn(r->element[i + 1]->str,
                               r->element[i + 1]->len));
    }

    return h;
}


/* HGETALL of many keys: an array of objects (null where missing) */
json_t *
ngx_ai_relay_cli_hgetall_many(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_list_t *keys)
{
    size_t                    i;
    json_t                   *out, *h;
    redisReply              **replies;
    ngx_ai_relay_cli_cmd_t  **cmds;

    out = json_array();

    if (keys->nelts == 0) {
        return out;
    }

    cmds = ngx_ai_relay_cli_alloc(keys->nelts * sizeof(void *));
    replies = ngx_ai_relay_cli_alloc(keys->nelts * sizeof(void *));

    for (i = 0; i < keys->nelts; i++) {
        cmds[i] = ngx_ai_relay_cli_cmd("HGETALL", keys->elts[i], NULL);
    }

    ngx_ai_relay_cli_pipeline(cli, cmds, keys->nelts, replies);

    for (i = 0; i < keys->nelts; i++) {
        h = ngx_ai_relay_cli_reply_hash(replies[i]);
        json_array_append_new(out, h ? h : json_null());
    }

    ngx_ai_relay_cli_free_replies(replies, keys->nelts);

    return out;
}


/* all user ids, in numeric order */
void
ngx_ai_relay_cli_user_ids(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_list_t *ids)
{
    ngx_ai_relay_cli_smembers(cli, NGX_AI_RELAY_RKEY_USERS, ids);
    ngx_ai_relay_cli_list_sort_num(ids);
}


/* the id of the user with this name, or NULL */
char *
ngx_ai_relay_cli_user_by_name(ngx_ai_relay_cli_t *cli, const char *name)
{
    size_t                    i;
    char                     *uid;
    redisReply              **replies;
    ngx_ai_relay_cli_cmd_t  **cmds;
    ngx_ai_relay_cli_list_t   ids;

    memset(&ids, 0, sizeof(ids));
    ngx_ai_relay_cli_user_ids(cli, &ids);

    if (ids.nelts == 0) {
        return NULL;
    }

    cmds = ngx_ai_relay_cli_alloc(ids.nelts * sizeof(void *));
    replies = ngx_ai_relay_cli_alloc(ids.nelts * sizeof(void *));

    for (i = 0; i < ids.nelts; i++) {
        cmds[i] = ngx_ai_relay_cli_cmd("HGET",
                      ngx_ai_relay_cli_sprintf(NGX_AI_RELAY_RKEY_USER("%s"),
                                               ids.elts[i]),
                      "name", NULL);
    }

    ngx_ai_relay_cli_pipeline(cli, cmds, ids.nelts, replies);

    uid = NULL;

    for (i = 0; i < ids.nelts; i++) {
        if (replies[i]->type == REDIS_REPLY_STRING
            && strcmp(replies[i]->str, name) == 0)
        {
            uid = ids.elts[i];
            break;
        }
    }

    ngx_ai_relay_cli_free_replies(replies, ids.nelts);

    return uid;
}


/*
 * A user by id ("7") or name ("alice").  OK, or REJECTED (reported).
 */
int
ngx_ai_relay_cli_find_user(ngx_ai_relay_cli_t *cli, const char *ref,
    char **uid, json_t **user)
{
    char    *id;
    json_t  *h;

    if (ngx_ai_relay_cli_is_id(ref)) {
        id = ngx_ai_relay_cli_strdup(ref);

    } else {
        id = ngx_ai_relay_cli_user_by_name(cli, ref);

        if (id == NULL) {
            return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_REJECTED,
                                          "no user \"%s\"", ref);
        }
    }

    h = ngx_ai_relay_cli_hgetall(cli, ngx_ai_relay_cli_sprintf(
                                      NGX_AI_RELAY_RKEY_USER("%s"), id));

    if (h && cli->cluster && !ngx_ai_relay_cli_is_member(cli,
                                                 NGX_AI_RELAY_RKEY_USERS, id))
    {
        /* left by a "users create" stopped before its last steps */
        json_decref(h);
        h = NULL;
    }

    if (h == NULL) {
        return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_REJECTED,
                                      "no user with id %s", id);
    }

    *uid = id;

    if (user) {
        *user = h;

    } else {
        json_decref(h);
    }

    return NGX_AI_RELAY_CLI_OK;
}


/*
 * On a Redis Cluster, the CLI's writes run in steps and one stopped
 * midway may leave objects nothing points to (README, "Operator command
 * line"): a key of a user's set of keys is listed only if its SHA-256's
 * index names that user.  Elsewhere every key of the set is.
 */
int
ngx_ai_relay_cli_key_reachable(ngx_ai_relay_cli_t *cli, const char *uid,
    const char *sha)
{
    char  *v;

    if (cli->cluster == NULL) {
        return 1;
    }

    v = ngx_ai_relay_cli_get(cli, ngx_ai_relay_cli_sprintf(
                                  NGX_AI_RELAY_RKEY_KEYIDX("%s"), sha));

    return v && strcmp(v, uid) == 0;
}


int
ngx_ai_relay_cli_is_member(ngx_ai_relay_cli_t *cli, const char *set,
    const char *member)
{
    int          n;
    redisReply  *r;

    r = ngx_ai_relay_cli_runv(cli, "SISMEMBER", set, member, NULL);
    n = (r->type == REDIS_REPLY_INTEGER && r->integer == 1);
    freeReplyObject(r);

    return n;
}


int
ngx_ai_relay_cli_hash_key(ngx_ai_relay_cli_t *cli, const char *key,
    char *hash)
{
    if (ngx_ai_relay_key_hash((const unsigned char *) key, strlen(key), hash)
        != 0)
    {
        return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_FAILED,
                                      "SHA-256 failed");
    }

    return NGX_AI_RELAY_CLI_OK;
}


static int
ngx_ai_relay_cli_is_hash(const char *s)
{
    size_t  i;

    for (i = 0; s[i]; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) {
            return 0;
        }
    }

    return i == NGX_AI_RELAY_KEY_HASH_LEN;
}


/*
 * A key by id ("12"), by plaintext ("sk-...") or by its SHA-256 (64 hex
 * digits).  OK, or REJECTED (reported).
 */
/*
 * A key by id, plaintext or SHA-256.  On a Redis Cluster, one whose
 * SHA-256's index does not name its user (left by a write stopped between
 * two steps) is not found; ngx_ai_relay_cli_find_any_key() finds it (keys
 * delete, which finishes such a delete).
 */
int
ngx_ai_relay_cli_find_key(ngx_ai_relay_cli_t *cli, const char *ref,
    char **uid, char **hash, json_t **key)
{
    int  rc;

    rc = ngx_ai_relay_cli_find_any_key(cli, ref, uid, hash, key);

    if (rc != NGX_AI_RELAY_CLI_OK
        || ngx_ai_relay_cli_key_reachable(cli, *uid, *hash))
    {
        return rc;
    }

    if (key) {
        json_decref(*key);
        *key = NULL;
    }

    return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_REJECTED,
                                  "no key %s (its index does not name its "
                                  "user: a write stopped midway)", ref);
}


int
ngx_ai_relay_cli_find_any_key(ngx_ai_relay_cli_t *cli, const char *ref,
    char **uid, char **hash, json_t **key)
{
    char    *v, *colon, *id, *h;
    char     buf[NGX_AI_RELAY_KEY_HASH_LEN + 1];
    json_t  *k;

    if (ngx_ai_relay_cli_is_id(ref)) {
        v = ngx_ai_relay_cli_get(cli, ngx_ai_relay_cli_sprintf(
                                      NGX_AI_RELAY_RKEY_KEYID("%s"), ref));
        colon = v ? strchr(v, ':') : NULL;

        if (colon == NULL) {
            return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_REJECTED,
                                          "no key with id %s", ref);
        }

        id = ngx_ai_relay_cli_strndup(v, colon - v);
        h = colon + 1;

    } else {
        if (ngx_ai_relay_cli_is_hash(ref)) {
            h = ngx_ai_relay_cli_strdup(ref);

        } else {
            if (ngx_ai_relay_cli_hash_key(cli, ref, buf)
                != NGX_AI_RELAY_CLI_OK)
            {
                return NGX_AI_RELAY_CLI_FAILED;
            }

            h = ngx_ai_relay_cli_strdup(buf);
        }

        id = ngx_ai_relay_cli_get(cli, ngx_ai_relay_cli_sprintf(
                                       NGX_AI_RELAY_RKEY_KEYIDX("%s"), h));
        if (id == NULL) {
            return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_REJECTED,
                                          "no such key");
        }
    }

    k = ngx_ai_relay_cli_hgetall(cli, ngx_ai_relay_cli_sprintf(
                                      NGX_AI_RELAY_RKEY_KEY("%s", "%s"),
                                      id, h));
    if (k == NULL) {
        return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_REJECTED,
                                      "key %s is indexed but its record is "
                                      "missing", ref);
    }

    *uid = id;
    *hash = h;

    if (key) {
        *key = k;

    } else {
        json_decref(k);
    }

    return NGX_AI_RELAY_CLI_OK;
}


/* a masked form of a plaintext key */
char *
ngx_ai_relay_cli_mask(const char *key)
{
    char  buf[64];

    ngx_ai_relay_key_mask((const unsigned char *) key, strlen(key), buf,
                          sizeof(buf));

    return ngx_ai_relay_cli_strdup(buf);
}


/* a field of a hash, or "" */
const char *
ngx_ai_relay_cli_hstr(json_t *h, const char *field)
{
    const char  *v;

    v = ngx_ai_relay_cli_hval(h, field);

    return v ? v : "";
}


/* an integer field of a hash, or def */
int64_t
ngx_ai_relay_cli_hint(json_t *h, const char *field, int64_t def)
{
    int64_t      v;
    const char  *s;

    s = ngx_ai_relay_cli_hval(h, field);

    if (s && ngx_ai_relay_cli_parse_int(s, INT64_MIN, INT64_MAX, &v) == 0) {
        return v;
    }

    return def;
}


/* the next free id of a sequence: max(ar:seq field + 1, any taken) */
char *
ngx_ai_relay_cli_next_id(ngx_ai_relay_cli_t *cli, const char *field,
    const char *key_fmt)
{
    char        *v, *key;
    int64_t      id;
    redisReply  *r;

    r = ngx_ai_relay_cli_runv(cli, "HGET", NGX_AI_RELAY_RKEY_SEQ, field,
                              NULL);

    id = 0;

    if (r->type == REDIS_REPLY_STRING) {
        ngx_ai_relay_cli_parse_int(r->str, 0, INT64_MAX, &id);
    }

    freeReplyObject(r);

    for ( ;; ) {
        id++;
        v = ngx_ai_relay_cli_sprintf("%" PRId64, id);
        key = ngx_ai_relay_cli_sprintf(key_fmt, v);

        if (!ngx_ai_relay_cli_exists(cli, key)) {
            return v;
        }
    }
}


void
ngx_ai_relay_cli_watch1(ngx_ai_relay_cli_t *cli, const char *key)
{
    ngx_ai_relay_cli_list_t  l;

    memset(&l, 0, sizeof(l));
    ngx_ai_relay_cli_list_push(&l, (char *) key);
    ngx_ai_relay_cli_watch(cli, &l);
}
