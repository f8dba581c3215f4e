
/*
 * Copyright (C) ngx_ai_relay authors
 */


#ifndef _NGX_AI_RELAY_SCHEMA_H_INCLUDED_
#define _NGX_AI_RELAY_SCHEMA_H_INCLUDED_


/*
 * The Redis key schema and the reservation format: their one definition,
 * for the module, the CLI and the Redis scripts (README.md, "Redis key
 * layout", has the fields of each key).  No nginx headers, no code.
 *
 * A key with a variable part is a function-like macro that pastes its
 * argument into the name, a printf conversion or a literal:
 *
 *     ngx_sprintf(p, NGX_AI_RELAY_RKEY_USER("%V"), &uid);
 *     ngx_ai_relay_cli_sprintf(NGX_AI_RELAY_RKEY_KEY("%s", "%s"), uid, h);
 *     NGX_AI_RELAY_RKEY_PRICE("*")                   (a SCAN pattern)
 *
 * Keys a script changes together share a Redis Cluster hash tag: {cfg}
 * for the routing configuration, {u<uid>} for one user.
 *
 * The Redis scripts get these definitions too: src/lua/mkheader.sh puts
 * in front of a script "local NAME = '<text>'" for each NAME the script
 * uses, NAME being a macro's name without NGX_AI_RELAY_; a function-like
 * macro's text is that with empty arguments (a key's prefix).  So every
 * macro here is one #define of string literals, its parameters and the
 * macros above it, no other C.
 */


/* keys without a hash tag: single-key lookups */

/* set: all user ids */
#define NGX_AI_RELAY_RKEY_USERS             "ar:users"

/* hash: "user", "key", "channel": the last ids handed out */
#define NGX_AI_RELAY_RKEY_SEQ               "ar:seq"

/* string: the user id owning the key whose SHA-256 is sha */
#define NGX_AI_RELAY_RKEY_KEYIDX(sha)       "ar:keyidx:" sha

/* string: "<uid>:<sha256>" of key id kid */
#define NGX_AI_RELAY_RKEY_KEYID(kid)        "ar:keyid:" kid


/* the routing configuration: hash tag {cfg} */

#define NGX_AI_RELAY_RKEY_CFG               "ar:{cfg}:"

/* string: incremented by every configuration change */
#define NGX_AI_RELAY_RKEY_VERSION           NGX_AI_RELAY_RKEY_CFG "version"

/* set: model and alias names */
#define NGX_AI_RELAY_RKEY_MODELS            NGX_AI_RELAY_RKEY_CFG "models"

/* hash: alias or channels; owned_by, created, hidden */
#define NGX_AI_RELAY_RKEY_MODEL(name)       NGX_AI_RELAY_RKEY_CFG "model:" name

/* set: channel ids */
#define NGX_AI_RELAY_RKEY_CHANNELS          NGX_AI_RELAY_RKEY_CFG "channels"

/* hash: name, provider, base_url, keys, priority, weight, status, ... */
#define NGX_AI_RELAY_RKEY_CHANNEL(id)       NGX_AI_RELAY_RKEY_CFG "channel:" id

/* hash: input, cached_input, ..., output (uUSD per 1M tokens), ... */
#define NGX_AI_RELAY_RKEY_PRICE(name)       NGX_AI_RELAY_RKEY_CFG "price:" name

/* hash: "price:<model>" -> import tag (the CLI's import only) */
#define NGX_AI_RELAY_RKEY_IMPORTED          NGX_AI_RELAY_RKEY_CFG "imported"


/*
 * One user's data: hash tag {u<uid>}.  A key is NGX_AI_RELAY_RKEY_U(uid)
 * followed by its part, NGX_AI_RELAY_RKEY_U_*: code and scripts given the
 * prefix "ar:{u<uid>}:" append the part.  The id is found in a key between
 * NGX_AI_RELAY_RKEY_U_HEAD and NGX_AI_RELAY_RKEY_U_TAIL.
 */

#define NGX_AI_RELAY_RKEY_U_HEAD            "ar:{u"
#define NGX_AI_RELAY_RKEY_U_TAIL            "}:"
#define NGX_AI_RELAY_RKEY_U(uid)                                              \
    NGX_AI_RELAY_RKEY_U_HEAD uid NGX_AI_RELAY_RKEY_U_TAIL

/* hash: name, status, balance (uUSD), unlimited, used, requests, ... */
#define NGX_AI_RELAY_RKEY_U_USER            "user"

/* set: the user's key hashes */
#define NGX_AI_RELAY_RKEY_U_KEYS            "keys"

/* hash: one API key by its SHA-256: id, status, quota, rl_m, ... */
#define NGX_AI_RELAY_RKEY_U_KEY(sha)        "key:" sha

/* hash: request or lease id -> a reservation, NGX_AI_RELAY_RES() */
#define NGX_AI_RELAY_RKEY_U_RES             "res"

/* string: a settlement batch was settled (kept 7 days) */
#define NGX_AI_RELAY_RKEY_U_DONE(batch)     "done:" batch

/* string: a request that gave up before its AUTH answered */
#define NGX_AI_RELAY_RKEY_U_GONE(rid)       "gone:" rid

/* stream: request records, an entry per settlement batch */
#define NGX_AI_RELAY_RKEY_U_LOG             "log"

/* stream: balance changes by the operator */
#define NGX_AI_RELAY_RKEY_U_LEDGER          "ledger"

/* hash: a day's counters, day is <yyyymmdd> */
#define NGX_AI_RELAY_RKEY_U_STATS(day)      "stats:" day

/* hash: an async task (a video) the user submitted: its channel, model,
 * key, cost; kept 30 days */
#define NGX_AI_RELAY_RKEY_U_TASK(id)        "task:" id

/* sorted set: the user's tasks not finished yet (task id, scored by its
 * creation time): what `ai-relay tasks reconcile` polls */
#define NGX_AI_RELAY_RKEY_U_TASKS_OPEN      "tasks:open"

/* string: a key's rate counters before 0.2 (now in the key's hash) */
#define NGX_AI_RELAY_RKEY_U_RL(sha)         "rl:" sha

#define NGX_AI_RELAY_RKEY_USER(uid)                                           \
    NGX_AI_RELAY_RKEY_U(uid) NGX_AI_RELAY_RKEY_U_USER
#define NGX_AI_RELAY_RKEY_KEYS(uid)                                           \
    NGX_AI_RELAY_RKEY_U(uid) NGX_AI_RELAY_RKEY_U_KEYS
#define NGX_AI_RELAY_RKEY_KEY(uid, sha)                                       \
    NGX_AI_RELAY_RKEY_U(uid) NGX_AI_RELAY_RKEY_U_KEY(sha)
#define NGX_AI_RELAY_RKEY_RES(uid)                                            \
    NGX_AI_RELAY_RKEY_U(uid) NGX_AI_RELAY_RKEY_U_RES
#define NGX_AI_RELAY_RKEY_DONE(uid, batch)                                    \
    NGX_AI_RELAY_RKEY_U(uid) NGX_AI_RELAY_RKEY_U_DONE(batch)
#define NGX_AI_RELAY_RKEY_GONE(uid, rid)                                      \
    NGX_AI_RELAY_RKEY_U(uid) NGX_AI_RELAY_RKEY_U_GONE(rid)
#define NGX_AI_RELAY_RKEY_LOG(uid)                                            \
    NGX_AI_RELAY_RKEY_U(uid) NGX_AI_RELAY_RKEY_U_LOG
#define NGX_AI_RELAY_RKEY_LEDGER(uid)                                         \
    NGX_AI_RELAY_RKEY_U(uid) NGX_AI_RELAY_RKEY_U_LEDGER
#define NGX_AI_RELAY_RKEY_STATS(uid, day)                                     \
    NGX_AI_RELAY_RKEY_U(uid) NGX_AI_RELAY_RKEY_U_STATS(day)
#define NGX_AI_RELAY_RKEY_TASK(uid, id)                                       \
    NGX_AI_RELAY_RKEY_U(uid) NGX_AI_RELAY_RKEY_U_TASK(id)
#define NGX_AI_RELAY_RKEY_TASKS_OPEN(uid)                                     \
    NGX_AI_RELAY_RKEY_U(uid) NGX_AI_RELAY_RKEY_U_TASKS_OPEN
#define NGX_AI_RELAY_RKEY_RL(uid, sha)                                        \
    NGX_AI_RELAY_RKEY_U(uid) NGX_AI_RELAY_RKEY_U_RL(sha)


/*
 * A reservation, the value of a field of NGX_AI_RELAY_RKEY_RES(): its
 * deadline (unix time; past it, AUTH refunds it), the uUSD reserved from
 * the balance (a lease's: what is left, negative if overspent), the uUSD
 * of those reserved from the key's quota, and the key's SHA-256.  A
 * lease's has no key, and in place of the key's part the uUSD that
 * settlements charged to it so far: "<deadline>|<uUSD left>|<uUSD
 * charged>|" (RELEASE keeps what the worker spent less that).
 */

#define NGX_AI_RELAY_RES(deadline, amount, key_amount, sha)                   \
    deadline "|" amount "|" key_amount "|" sha

/* string.format()'s and printf's: the four fields as strings */
#define NGX_AI_RELAY_RES_FORMAT                                               \
    NGX_AI_RELAY_RES("%s", "%s", "%s", "%s")

/* the Lua pattern: string.match() returns the four fields, or nil */
#define NGX_AI_RELAY_RES_PATTERN                                              \
    NGX_AI_RELAY_RES("^(%d+)", "(%-?%d+)", "(%d+)", "(%x*)$")


#endif /* _NGX_AI_RELAY_SCHEMA_H_INCLUDED_ */
