
/*
 * Copyright (C) ngx_ai_relay authors
 *
 * Redis for the operator CLI: the synchronous hiredis API, binary-safe
 * argument vectors, and optimistic transactions (WATCH the keys a
 * decision was based on, then MULTI ... EXEC; a nil EXEC means somebody
 * else changed them and the command starts over).
 *
 * A failed Redis call ends the program with NGX_AI_RELAY_CLI_FAILED:
 * nothing is written outside EXEC, so nothing is half done.
 */


#include <errno.h>
#include <sys/time.h>

#include "ngx_ai_relay_cli.h"
#include "ngx_ai_relay_slot.h"


/*
 * A Redis Cluster ("--redis cluster:IP:PORT,..."): the slot map from a
 * seed, a connection per node on first need, each command sent to its
 * key's slot's owner (MOVED and ASK followed).  A transaction runs on one
 * node, so all its keys (and the ones it watches) must share a slot: a
 * command that would write keys of several slots at once is refused
 * before anything is written.
 */

typedef struct {
    ngx_ai_relay_slot_map_t       map;
    redisContext                 *node[NGX_AI_RELAY_SLOT_MAX_NODES];
    int                           watch_slot;   /* -1: nothing watched */
} ngx_ai_relay_cli_cluster_t;


static void ngx_ai_relay_cli_fatal(ngx_ai_relay_cli_t *cli,
    const char *what);
static int ngx_ai_relay_cli_cluster_connect(ngx_ai_relay_cli_t *cli,
    const char *addrs);
static redisContext *ngx_ai_relay_cli_cluster_node(ngx_ai_relay_cli_t *cli,
    int idx);
static int ngx_ai_relay_cli_cmd_slot(ngx_ai_relay_cli_cmd_t *c);
static redisContext *ngx_ai_relay_cli_slot_ctx(ngx_ai_relay_cli_t *cli,
    int slot);
static redisReply *ngx_ai_relay_cli_cluster_run(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_cmd_t *c);
static redisContext *ngx_ai_relay_cli_open(ngx_ai_relay_cli_t *cli,
    const char *host, int port);


int
ngx_ai_relay_cli_connect(ngx_ai_relay_cli_t *cli)
{
    int              port;
    char            *host, *p, *end;
    long             v;
    const char      *addr;
    redisReply      *r;
    struct timeval   tv;

    if (cli->redis) {
        return NGX_AI_RELAY_CLI_OK;
    }

    addr = cli->redis_addr ? cli->redis_addr : "127.0.0.1:6379";

    if (strncmp(addr, "cluster:", 8) == 0) {
        return ngx_ai_relay_cli_cluster_connect(cli, addr + 8);
    }

    tv.tv_sec = 5;
    tv.tv_usec = 0;

    if (strncmp(addr, "unix:", 5) == 0 || addr[0] == '/') {
        host = (char *) (addr[0] == '/' ? addr : addr + 5);
        cli->redis = redisConnectUnixWithTimeout(host, tv);

    } else {
        host = ngx_ai_relay_cli_strdup(addr);
        port = 6379;

        if (host[0] == '[') {
            p = strchr(host, ']');
            if (p == NULL) {
                return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_USAGE,
                                          "invalid Redis address \"%s\"", addr);
            }

            *p++ = '\0';
            host++;

            if (*p != ':' && *p != '\0') {
                return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_USAGE,
                                          "invalid Redis address \"%s\"", addr);
            }

        } else {
            p = strrchr(host, ':');

            if (p && strchr(host, ':') != p) {
                /* a bare IPv6 address */
                p = NULL;
            }
        }

        if (p && *p == ':') {
            *p++ = '\0';
            errno = 0;
            v = strtol(p, &end, 10);

            if (errno || *end != '\0' || v < 1 || v > 65535) {
                return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_USAGE,
                                          "invalid Redis address \"%s\"", addr);
            }

            port = (int) v;
        }

        if (*host == '\0') {
            return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_USAGE,
                                          "invalid Redis address \"%s\"", addr);
        }

        cli->redis = redisConnectWithTimeout(host, port, tv);
    }

    if (cli->redis == NULL || cli->redis->err) {
        ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_FAILED,
                               "cannot connect to Redis at %s: %s", addr,
                               cli->redis ? cli->redis->errstr
                                          : "out of memory");
        if (cli->redis) {
            redisFree(cli->redis);
            cli->redis = NULL;
        }

        return NGX_AI_RELAY_CLI_FAILED;
    }

    tv.tv_sec = 60;
    redisSetTimeout(cli->redis, tv);

    if (cli->redis_password && cli->redis_password[0]) {
        r = redisCommand(cli->redis, "AUTH %s", cli->redis_password);

        if (r == NULL || r->type == REDIS_REPLY_ERROR) {
            ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_FAILED,
                                   "Redis AUTH failed: %s",
                                   r ? r->str : cli->redis->errstr);
            if (r) {
                freeReplyObject(r);
            }

            return NGX_AI_RELAY_CLI_FAILED;
        }

        freeReplyObject(r);
    }

    if (cli->redis_db) {
        r = redisCommand(cli->redis, "SELECT %d", cli->redis_db);

        if (r == NULL || r->type == REDIS_REPLY_ERROR) {
            ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_FAILED,
                                   "Redis SELECT %d failed: %s",
                                   cli->redis_db,
                                   r ? r->str : cli->redis->errstr);
            if (r) {
                freeReplyObject(r);
            }

            return NGX_AI_RELAY_CLI_FAILED;
        }

        freeReplyObject(r);
    }

    return NGX_AI_RELAY_CLI_OK;
}


static void
ngx_ai_relay_cli_fatal(ngx_ai_relay_cli_t *cli, const char *what)
{
    ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_FAILED, "Redis: %s", what);
    exit(NGX_AI_RELAY_CLI_FAILED);
}


ngx_ai_relay_cli_cmd_t *
ngx_ai_relay_cli_cmd(const char *first, ...)
{
    va_list                  ap;
    const char              *s;
    ngx_ai_relay_cli_cmd_t  *c;

    c = ngx_ai_relay_cli_alloc(sizeof(ngx_ai_relay_cli_cmd_t));
    memset(c, 0, sizeof(ngx_ai_relay_cli_cmd_t));

    va_start(ap, first);

    for (s = first; s; s = va_arg(ap, const char *)) {
        ngx_ai_relay_cli_cmd_add(c, s);
    }

    va_end(ap);

    return c;
}


void
ngx_ai_relay_cli_cmd_addn(ngx_ai_relay_cli_cmd_t *c, const char *s, size_t n)
{
    char    **argv;
    size_t   *lens;

    if (c->argc == c->nalloc) {
        c->nalloc = c->nalloc ? c->nalloc * 2 : 8;
        argv = ngx_ai_relay_cli_alloc(c->nalloc * sizeof(char *));
        lens = ngx_ai_relay_cli_alloc(c->nalloc * sizeof(size_t));

        if (c->argc) {
            memcpy(argv, c->argv, c->argc * sizeof(char *));
            memcpy(lens, c->lens, c->argc * sizeof(size_t));
        }

        c->argv = argv;
        c->lens = lens;
    }

    c->argv[c->argc] = ngx_ai_relay_cli_strndup(s, n);
    c->lens[c->argc] = n;
    c->argc++;
}


void
ngx_ai_relay_cli_cmd_add(ngx_ai_relay_cli_cmd_t *c, const char *s)
{
    ngx_ai_relay_cli_cmd_addn(c, s, strlen(s));
}


void
ngx_ai_relay_cli_cmd_addf(ngx_ai_relay_cli_cmd_t *c, const char *fmt, ...)
{
    int       n;
    char     *p;
    va_list   ap;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);

    p = ngx_ai_relay_cli_alloc(n + 1);

    va_start(ap, fmt);
    vsnprintf(p, n + 1, fmt, ap);
    va_end(ap);

    ngx_ai_relay_cli_cmd_addn(c, p, n);
}


/* the reply, never NULL and never an error: those end the program */
redisReply *
ngx_ai_relay_cli_run(ngx_ai_relay_cli_t *cli, ngx_ai_relay_cli_cmd_t *c)
{
    redisReply  *r;

    if (ngx_ai_relay_cli_connect(cli) != NGX_AI_RELAY_CLI_OK) {
        exit(NGX_AI_RELAY_CLI_FAILED);
    }

    if (cli->cluster) {
        r = ngx_ai_relay_cli_cluster_run(cli, c);

    } else {
        r = redisCommandArgv(cli->redis, c->argc, (const char **) c->argv,
                             c->lens);

        if (r == NULL) {
            ngx_ai_relay_cli_fatal(cli, cli->redis->errstr);
        }
    }

    if (r->type == REDIS_REPLY_ERROR) {
        ngx_ai_relay_cli_fatal(cli, ngx_ai_relay_cli_sprintf("%s: %s",
                                                             c->argv[0],
                                                             r->str));
    }

    return r;
}


redisReply *
ngx_ai_relay_cli_runv(ngx_ai_relay_cli_t *cli, const char *first, ...)
{
    va_list                  ap;
    const char              *s;
    ngx_ai_relay_cli_cmd_t  *c;

    c = ngx_ai_relay_cli_cmd(NULL);

    va_start(ap, first);

    for (s = first; s; s = va_arg(ap, const char *)) {
        ngx_ai_relay_cli_cmd_add(c, s);
    }

    va_end(ap);

    return ngx_ai_relay_cli_run(cli, c);
}


/* a string value, or NULL if the key does not exist */
char *
ngx_ai_relay_cli_get(ngx_ai_relay_cli_t *cli, const char *key)
{
    char        *v;
    redisReply  *r;

    r = ngx_ai_relay_cli_runv(cli, "GET", key, NULL);

    v = NULL;

    if (r->type == REDIS_REPLY_STRING) {
        v = ngx_ai_relay_cli_strndup(r->str, r->len);
    }

    freeReplyObject(r);

    return v;
}


/* a hash as a JSON object of strings, or NULL if it does not exist */
json_t *
ngx_ai_relay_cli_hgetall(ngx_ai_relay_cli_t *cli, const char *key)
{
    size_t       i;
    json_t      *h;
    redisReply  *r;

    r = ngx_ai_relay_cli_runv(cli, "HGETALL", key, NULL);

    if (r->type != REDIS_REPLY_ARRAY || r->elements == 0) {
        freeReplyObject(r);
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

    freeReplyObject(r);

    return h;
}


const char *
ngx_ai_relay_cli_hval(json_t *h, const char *field)
{
    json_t  *v;

    if (h == NULL) {
        return NULL;
    }

    v = json_object_get(h, field);

    return v ? json_string_value(v) : NULL;
}


int
ngx_ai_relay_cli_smembers(ngx_ai_relay_cli_t *cli, const char *key,
    ngx_ai_relay_cli_list_t *out)
{
    size_t       i;
    redisReply  *r;

    r = ngx_ai_relay_cli_runv(cli, "SMEMBERS", key, NULL);

    for (i = 0; i < r->elements; i++) {
        ngx_ai_relay_cli_list_push(out,
                                   ngx_ai_relay_cli_strndup(r->element[i]->str,
                                                          r->element[i]->len));
    }

    freeReplyObject(r);

    return (int) i;
}


int
ngx_ai_relay_cli_exists(ngx_ai_relay_cli_t *cli, const char *key)
{
    int          n;
    redisReply  *r;

    r = ngx_ai_relay_cli_runv(cli, "EXISTS", key, NULL);
    n = (r->type == REDIS_REPLY_INTEGER && r->integer > 0);
    freeReplyObject(r);

    return n;
}


int
ngx_ai_relay_cli_watch(ngx_ai_relay_cli_t *cli, ngx_ai_relay_cli_list_t *keys)
{
    size_t                       i;
    redisReply                  *r;
    ngx_ai_relay_cli_cmd_t      *c;
    ngx_ai_relay_cli_cluster_t  *cl;

    c = ngx_ai_relay_cli_cmd("WATCH", NULL);

    for (i = 0; i < keys->nelts; i++) {
        ngx_ai_relay_cli_cmd_add(c, keys->elts[i]);
    }

    if (c->argc == 1) {
        return NGX_AI_RELAY_CLI_OK;
    }

    if (ngx_ai_relay_cli_connect(cli) != NGX_AI_RELAY_CLI_OK) {
        exit(NGX_AI_RELAY_CLI_FAILED);
    }

    if (cli->cluster) {
        /* on the node of their slot, which the transaction goes to */
        cl = cli->cluster;
        cl->watch_slot = ngx_ai_relay_cli_cmd_slot(c);
    }

    r = ngx_ai_relay_cli_run(cli, c);
    freeReplyObject(r);

    return NGX_AI_RELAY_CLI_OK;
}


void
ngx_ai_relay_cli_unwatch(ngx_ai_relay_cli_t *cli)
{
    redisContext                *rc;
    ngx_ai_relay_cli_cluster_t  *cl;

    if (cli->cluster) {
        cl = cli->cluster;

        if (cl->watch_slot >= 0) {
            rc = ngx_ai_relay_cli_slot_ctx(cli, cl->watch_slot);
            freeReplyObject(redisCommand(rc, "UNWATCH"));
            cl->watch_slot = -1;
        }

        return;
    }

    if (cli->redis) {
        freeReplyObject(ngx_ai_relay_cli_runv(cli, "UNWATCH", NULL));
    }
}


void
ngx_ai_relay_cli_tx_add(ngx_ai_relay_cli_tx_t *tx, ngx_ai_relay_cli_cmd_t *c)
{
    ngx_ai_relay_cli_cmd_t  **cmds;

    if (tx->ncmds == tx->nalloc) {
        tx->nalloc = tx->nalloc ? tx->nalloc * 2 : 16;
        cmds = ngx_ai_relay_cli_alloc(tx->nalloc * sizeof(void *));

        if (tx->ncmds) {
            memcpy(cmds, tx->cmds, tx->ncmds * sizeof(void *));
        }

        tx->cmds = cmds;
    }

    tx->cmds[tx->ncmds++] = c;
}


/*
 * MULTI, the commands, INCR ar:{cfg}:version if asked, EXEC.
 * 0: done; 1: a watched key changed, nothing was written (start over).
 */
int
ngx_ai_relay_cli_tx_exec(ngx_ai_relay_cli_t *cli, ngx_ai_relay_cli_tx_t *tx)
{
    int                      aborted, slot, s;
    char                    *err;
    size_t                   i, n;
    redisReply              *r;
    redisContext            *rc;
    ngx_ai_relay_cli_cmd_t  *c;

    if (tx->ncmds == 0 && !tx->version) {
        ngx_ai_relay_cli_unwatch(cli);
        return 0;
    }

    if (ngx_ai_relay_cli_connect(cli) != NGX_AI_RELAY_CLI_OK) {
        exit(NGX_AI_RELAY_CLI_FAILED);
    }

    if (tx->version) {
        ngx_ai_relay_cli_tx_add(tx, ngx_ai_relay_cli_cmd("INCR",
                                             NGX_AI_RELAY_RKEY_VERSION, NULL));
        tx->version = 0;
    }

    rc = cli->redis;

    if (cli->cluster) {
        /* one node runs it: every key in one slot, the watched ones too */

        slot = ((ngx_ai_relay_cli_cluster_t *) cli->cluster)->watch_slot;

        for (i = 0; i < tx->ncmds; i++) {
            s = ngx_ai_relay_cli_cmd_slot(tx->cmds[i]);

            if (s == -2 || (s >= 0 && slot >= 0 && s != slot)) {
                ngx_ai_relay_cli_unwatch(cli);
                ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_FAILED,
                    "on a Redis Cluster, this command would change keys "
                    "of several hash slots at once (%s ...), which the "
                    "CLI does not do: nothing was changed",
                    tx->cmds[i]->argv[1]);
                exit(NGX_AI_RELAY_CLI_FAILED);
            }

            if (s >= 0) {
                slot = s;
            }
        }

        rc = ngx_ai_relay_cli_slot_ctx(cli, slot);
        ((ngx_ai_relay_cli_cluster_t *) cli->cluster)->watch_slot = -1;
    }

    c = ngx_ai_relay_cli_cmd("MULTI", NULL);
    redisAppendCommandArgv(rc, c->argc, (const char **) c->argv, c->lens);

    for (i = 0; i < tx->ncmds; i++) {
        c = tx->cmds[i];
        redisAppendCommandArgv(rc, c->argc, (const char **) c->argv,
                               c->lens);
    }

    c = ngx_ai_relay_cli_cmd("EXEC", NULL);
    redisAppendCommandArgv(rc, c->argc, (const char **) c->argv, c->lens);

    err = NULL;
    aborted = 0;

    for (n = 0; n < tx->ncmds + 2; n++) {
        if (redisGetReply(rc, (void **) &r) != REDIS_OK) {
            ngx_ai_relay_cli_fatal(cli, rc->errstr);
        }

        if (r->type == REDIS_REPLY_ERROR && err == NULL) {
            err = ngx_ai_relay_cli_sprintf("%s%s%s", r->str,
                         (n > 0 && n <= tx->ncmds) ? " in " : "",
                         (n > 0 && n <= tx->ncmds) ? tx->cmds[n - 1]->argv[0]
                                                   : "");
        }

        if (n == tx->ncmds + 1) {
            if (r->type == REDIS_REPLY_NIL) {
                aborted = 1;

            } else if (r->type == REDIS_REPLY_ARRAY) {
                for (i = 0; i < r->elements; i++) {
                    if (r->element[i]->type == REDIS_REPLY_ERROR
                        && err == NULL)
                    {
                        err = ngx_ai_relay_cli_sprintf("%s in %s",
                                                  r->element[i]->str,
                                                  tx->cmds[i]->argv[0]);
                    }
                }
            }
        }

        freeReplyObject(r);
    }

    if (err) {
        ngx_ai_relay_cli_fatal(cli, err);
    }

    return aborted;
}



static redisContext *
ngx_ai_relay_cli_open(ngx_ai_relay_cli_t *cli, const char *host, int port)
{
    redisReply      *r;
    redisContext    *rc;
    struct timeval   tv;

    tv.tv_sec = 5;
    tv.tv_usec = 0;

    rc = redisConnectWithTimeout(host, port, tv);

    if (rc == NULL || rc->err) {
        ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_FAILED,
                               "cannot connect to Redis at %s:%d: %s", host,
                               port, rc ? rc->errstr : "out of memory");
        if (rc) {
            redisFree(rc);
        }

        return NULL;
    }

    tv.tv_sec = 60;
    redisSetTimeout(rc, tv);

    if (cli->redis_password && cli->redis_password[0]) {
        r = redisCommand(rc, "AUTH %s", cli->redis_password);

        if (r == NULL || r->type == REDIS_REPLY_ERROR) {
            ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_FAILED,
                                   "Redis AUTH failed: %s",
                                   r ? r->str : rc->errstr);
            if (r) {
                freeReplyObject(r);
            }

            redisFree(rc);
            return NULL;
        }

        freeReplyObject(r);
    }

    return rc;
}


/* the first seed that answers gives the slot map */

static int
ngx_ai_relay_cli_cluster_connect(ngx_ai_relay_cli_t *cli, const char *addrs)
{
    int                          port, idx;
    char                        *list, *a, *next;
    char                         host[NGX_AI_RELAY_SLOT_HOST_LEN];
    redisReply                  *r;
    redisContext                *rc;
    ngx_ai_relay_cli_cluster_t  *cl;

    if (cli->redis_db) {
        return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_USAGE,
                                      "a Redis Cluster has no --redis-db "
                                      "but 0");
    }

    cl = ngx_ai_relay_cli_alloc(sizeof(ngx_ai_relay_cli_cluster_t));
    memset(cl, 0, sizeof(ngx_ai_relay_cli_cluster_t));
    cl->watch_slot = -1;

    list = ngx_ai_relay_cli_strdup(addrs);

    for (a = list; a && *a; a = next) {
        next = strchr(a, ',');
        if (next) {
            *next++ = '\0';
        }

        if (ngx_ai_relay_slot_parse_addr(a, strlen(a), host, &port) != 0) {
            return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_USAGE,
                                          "invalid Redis Cluster address "
                                          "\"%s\" (IP:port)", a);
        }

        rc = ngx_ai_relay_cli_open(cli, host, port);
        if (rc == NULL) {
            cli->failed = 0;
            continue;
        }

        r = redisCommand(rc, "CLUSTER SLOTS");

        if (r == NULL || ngx_ai_relay_slot_map_parse(&cl->map, r) <= 0) {
            ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_FAILED,
                                   "Redis at %s: no slot map (%s)", a,
                                   r && r->type == REDIS_REPLY_ERROR
                                   ? r->str : "no answer");
            if (r) {
                freeReplyObject(r);
            }

            redisFree(rc);
            return NGX_AI_RELAY_CLI_FAILED;
        }

        freeReplyObject(r);

        idx = ngx_ai_relay_slot_node(&cl->map, host, port);
        if (idx >= 0) {
            cl->node[idx] = rc;
        }

        cli->redis = rc;
        cli->cluster = cl;

        return NGX_AI_RELAY_CLI_OK;
    }

    return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_FAILED,
                                  "no node of the Redis Cluster at \"%s\" "
                                  "answered", addrs);
}


static redisContext *
ngx_ai_relay_cli_cluster_node(ngx_ai_relay_cli_t *cli, int idx)
{
    ngx_ai_relay_cli_cluster_t  *cl;

    cl = cli->cluster;

    if (cl->node[idx] == NULL) {
        cl->node[idx] = ngx_ai_relay_cli_open(cli, cl->map.nodes[idx].host,
                                              cl->map.nodes[idx].port);
        if (cl->node[idx] == NULL) {
            exit(NGX_AI_RELAY_CLI_FAILED);
        }
    }

    return cl->node[idx];
}


/*
 * The slot of a command's keys: -1 none (any node), -2 keys of several
 * slots.  WATCH, DEL, EXISTS and MGET take keys only; SCAN goes by its
 * MATCH pattern's hash tag.
 */

static int
ngx_ai_relay_cli_cmd_slot(ngx_ai_relay_cli_cmd_t *c)
{
    int          k, i, first;
    unsigned     s;
    const char  *name;

    if (c->argc < 2) {
        return -1;
    }

    name = c->argv[0];

    if (strcasecmp(name, "WATCH") == 0 || strcasecmp(name, "DEL") == 0
        || strcasecmp(name, "EXISTS") == 0 || strcasecmp(name, "MGET") == 0
        || strcasecmp(name, "UNLINK") == 0)
    {
        first = -1;

        for (i = 1; i < c->argc; i++) {
            s = ngx_ai_relay_slot_of((const unsigned char *) c->argv[i],
                                     c->lens[i]);
            if (first >= 0 && (int) s != first) {
                return -2;
            }

            first = (int) s;
        }

        return first;
    }

    if (strcasecmp(name, "SCAN") == 0) {
        for (i = 2; i + 1 < c->argc; i++) {
            if (strcasecmp(c->argv[i], "MATCH") == 0
                && memchr(c->argv[i + 1], '{', c->lens[i + 1]))
            {
                return (int) ngx_ai_relay_slot_of(
                           (const unsigned char *) c->argv[i + 1],
                           c->lens[i + 1]);
            }
        }

        return -1;
    }

    k = ngx_ai_relay_slot_key_arg(c->argc, (const char **) c->argv, c->lens);
    if (k < 0) {
        return -1;
    }

    if (!ngx_ai_relay_slot_same(c->argc, (const char **) c->argv, c->lens)) {
        return -2;
    }

    return (int) ngx_ai_relay_slot_of((const unsigned char *) c->argv[k],
                                      c->lens[k]);
}


static redisContext *
ngx_ai_relay_cli_slot_ctx(ngx_ai_relay_cli_t *cli, int slot)
{
    ngx_ai_relay_cli_cluster_t  *cl;

    cl = cli->cluster;

    if (slot < 0 || cl->map.owner[slot] == 0) {
        return cli->redis;
    }

    return ngx_ai_relay_cli_cluster_node(cli, cl->map.owner[slot] - 1);
}


static redisReply *
ngx_ai_relay_cli_cluster_run(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_cmd_t *c)
{
    int                            slot, idx, n;
    redisReply                    *r, *a;
    redisContext                  *rc;
    ngx_ai_relay_cli_cluster_t    *cl;
    ngx_ai_relay_slot_redirect_t   rd;

    cl = cli->cluster;

    slot = ngx_ai_relay_cli_cmd_slot(c);

    if (slot == -2) {
        ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_FAILED,
                               "on a Redis Cluster, %s %s ... uses keys of "
                               "several hash slots at once, which the CLI "
                               "does not do there: refused before it ran",
                               c->argv[0], c->argv[1]);
        exit(NGX_AI_RELAY_CLI_FAILED);
    }

    if (strcasecmp(c->argv[0], "SCAN") == 0 && slot < 0) {
        ngx_ai_relay_cli_fatal(cli, "SCAN over a whole Redis Cluster");
    }

    rc = ngx_ai_relay_cli_slot_ctx(cli, slot);

    for (n = 0; ; n++) {
        r = redisCommandArgv(rc, c->argc, (const char **) c->argv, c->lens);

        if (r == NULL) {
            ngx_ai_relay_cli_fatal(cli, rc->errstr);
        }

        if (r->type != REDIS_REPLY_ERROR || n == 5
            || ngx_ai_relay_slot_redirect(r->str, r->len, &rd) != 1)
        {
            return r;
        }

        freeReplyObject(r);

        idx = ngx_ai_relay_slot_node(&cl->map, rd.host, rd.port);
        if (idx < 0) {
            ngx_ai_relay_cli_fatal(cli, "too many Redis Cluster nodes");
        }

        rc = ngx_ai_relay_cli_cluster_node(cli, idx);

        if (rd.ask) {
            a = redisCommand(rc, "ASKING");
            if (a) {
                freeReplyObject(a);
            }

        } else {
            cl->map.owner[rd.slot] = (uint8_t) (idx + 1);
        }
    }
}
