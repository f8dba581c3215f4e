
/*
 * Copyright (C) ngx_ai_relay authors
 *
 * Redis for the operator CLI: the synchronous hiredis API, binary-safe
 * argument vectors, and optimistic transactions (WATCH the keys a
 * decision was based on, then MULTI ... EXEC; a nil EXEC means somebody
 * else changed them and the command starts over).
 *
 * A failed Redis call ends the program with NGX_AI_RELAY_CLI_FAILED:
 * nothing is written outside EXEC, so nothing is half done; on a Redis
 * Cluster, a write of several slots is several EXECs, and one failing
 * leaves at most objects nothing reaches (below).  "sentinel:" addresses
 * name a master the sentinels are asked for, then used as a single Redis.
 */


#include <errno.h>
#include <sys/time.h>

#include "ngx_ai_relay_cli.h"
#include "ngx_ai_relay_slot.h"


/*
 * A Redis Cluster ("--redis cluster:IP:PORT,..."): the slot map from a
 * seed, a connection per node on first need, each command sent to its
 * key's slot's owner (MOVED and ASK followed).  A transaction runs on one
 * slot, so one whose keys span several slots runs as a sequence of
 * single-slot steps (ngx_ai_relay_cli_tx_steps()): objects first, the
 * indexes that make them reachable after them, the configuration version
 * last; removals from the indexes before the objects they point to.  A
 * CLI stopped between two steps leaves at most an object nobody reaches.
 * WATCH is sent to each watched key's node; a step aborts when a key it
 * watched on its node changed.
 */

typedef struct {
    ngx_ai_relay_slot_map_t       map;
    redisContext                 *node[NGX_AI_RELAY_SLOT_MAX_NODES];
    redisContext                 *watched[NGX_AI_RELAY_SLOT_MAX_NODES + 1];
    int                           nwatched;
    int                           steps;        /* done, for the test hook */
} ngx_ai_relay_cli_cluster_t;


/* a command of a multi-slot transaction, where it goes and when */
typedef struct {
    ngx_ai_relay_cli_cmd_t       *cmd;
    int                           slot;
    int                           rank;
    unsigned                      claim:1;
    size_t                        order;
} ngx_ai_relay_cli_step_cmd_t;


/*
 * On a Redis Cluster, the set of an ar:keyidx:<sha> is a claim: it fails
 * (0) if the key names another user, so that two CLIs never both take
 * one key, even after the WATCH on its node was spent by an earlier step.
 * KEYS[1] ar:keyidx:<sha>  ARGV[1] the user id  -> 1 | 0
 */

static const char  ngx_ai_relay_cli_script_claim[] =
"local v = redis.call('GET', KEYS[1])\n"
"if v and v ~= ARGV[1] then return 0 end\n"
"redis.call('SET', KEYS[1], ARGV[1])\n"
"return 1\n";


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
static void ngx_ai_relay_cli_watched(ngx_ai_relay_cli_t *cli,
    redisContext *rc);
static int ngx_ai_relay_cli_tx_multi(ngx_ai_relay_cli_t *cli,
    redisContext *rc, ngx_ai_relay_cli_cmd_t **cmds, size_t ncmds,
    unsigned char *claim);
static int ngx_ai_relay_cli_tx_steps(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_tx_t *tx);
static int ngx_ai_relay_cli_key_rank(const char *cmd, const char *key,
    size_t len);
static int ngx_ai_relay_cli_step_cmp(const void *one, const void *two);
static char *ngx_ai_relay_cli_sentinel_master(ngx_ai_relay_cli_t *cli,
    const char *spec);


int
ngx_ai_relay_cli_connect(ngx_ai_relay_cli_t *cli)
{
    int              port;
    char            *host, *p, *end;
    long             v;
    char            *master;
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

    if (strncmp(addr, "sentinel:", 9) == 0) {
        master = ngx_ai_relay_cli_sentinel_master(cli, addr + 9);

        if (master == NULL) {
            return cli->failed_rc;
        }

        addr = master;
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


/*
 * "sentinel:NAME@IP:PORT[,IP:PORT...]": the address of the master NAME,
 * as the first sentinel that knows it says (SENTINEL
 * get-master-addr-by-name); the sentinels are asked without a password.
 */

static char *
ngx_ai_relay_cli_sentinel_master(ngx_ai_relay_cli_t *cli, const char *spec)
{
    int              port;
    char            *list, *name, *a, *next, *addr;
    char             host[NGX_AI_RELAY_SLOT_HOST_LEN];
    redisReply      *r;
    redisContext    *rc;
    struct timeval   tv;

    list = ngx_ai_relay_cli_strdup(spec);
    name = list;

    a = strchr(list, '@');

    if (a == NULL || a == list || a[1] == '\0') {
        ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_USAGE,
                               "invalid Redis Sentinel address "
                               "\"sentinel:%s\" "
                               "(sentinel:MASTER@IP:PORT[,IP:PORT...])", spec);
        return NULL;
    }

    *a++ = '\0';

    for ( /* void */ ; a && *a; a = next) {
        next = strchr(a, ',');
        if (next) {
            *next++ = '\0';
        }

        if (ngx_ai_relay_slot_parse_addr(a, strlen(a), host, &port) != 0) {
            ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_USAGE,
                                   "invalid Redis Sentinel address \"%s\" "
                                   "(IP:port)", a);
            return NULL;
        }

        tv.tv_sec = 5;
        tv.tv_usec = 0;

        rc = redisConnectWithTimeout(host, port, tv);

        if (rc == NULL || rc->err) {
            if (rc) {
                redisFree(rc);
            }

            continue;
        }

        redisSetTimeout(rc, tv);

        r = redisCommand(rc, "SENTINEL get-master-addr-by-name %s", name);
        redisFree(rc);

        if (r == NULL) {
            continue;
        }

        if (r->type == REDIS_REPLY_ARRAY && r->elements == 2
            && r->element[0]->type == REDIS_REPLY_STRING
            && r->element[1]->type == REDIS_REPLY_STRING)
        {
            addr = ngx_ai_relay_cli_sprintf(
                        strchr(r->element[0]->str, ':') ? "[%s]:%s" : "%s:%s",
                        r->element[0]->str, r->element[1]->str);
            freeReplyObject(r);

            return addr;
        }

        freeReplyObject(r);
    }

    ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_FAILED,
                           "no Redis Sentinel at \"%s\" answered with the "
                           "address of the master \"%s\"",
                           strchr(spec, '@') + 1, name);
    return NULL;
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
    size_t                   i, j;
    unsigned                 slot;
    redisReply              *r;
    redisContext            *rc;
    ngx_ai_relay_cli_cmd_t  *c;
    unsigned char           *done;

    if (keys->nelts == 0) {
        return NGX_AI_RELAY_CLI_OK;
    }

    if (ngx_ai_relay_cli_connect(cli) != NGX_AI_RELAY_CLI_OK) {
        exit(NGX_AI_RELAY_CLI_FAILED);
    }

    if (cli->cluster == NULL) {
        c = ngx_ai_relay_cli_cmd("WATCH", NULL);

        for (i = 0; i < keys->nelts; i++) {
            ngx_ai_relay_cli_cmd_add(c, keys->elts[i]);
        }

        r = ngx_ai_relay_cli_run(cli, c);
        freeReplyObject(r);

        return NGX_AI_RELAY_CLI_OK;
    }

    /* a WATCH per slot, on the node its step's EXEC goes to */

    done = ngx_ai_relay_cli_alloc(keys->nelts);
    memset(done, 0, keys->nelts);

    for (i = 0; i < keys->nelts; i++) {
        if (done[i]) {
            continue;
        }

        slot = ngx_ai_relay_slot_of((const unsigned char *) keys->elts[i],
                                    strlen(keys->elts[i]));
        c = ngx_ai_relay_cli_cmd("WATCH", NULL);

        for (j = i; j < keys->nelts; j++) {
            if (!done[j]
                && ngx_ai_relay_slot_of((const unsigned char *) keys->elts[j],
                                        strlen(keys->elts[j])) == slot)
            {
                ngx_ai_relay_cli_cmd_add(c, keys->elts[j]);
                done[j] = 1;
            }
        }

        rc = ngx_ai_relay_cli_slot_ctx(cli, (int) slot);

        r = redisCommandArgv(rc, c->argc, (const char **) c->argv, c->lens);

        if (r == NULL) {
            ngx_ai_relay_cli_fatal(cli, rc->errstr);
        }

        if (r->type == REDIS_REPLY_ERROR) {
            ngx_ai_relay_cli_fatal(cli, ngx_ai_relay_cli_sprintf("WATCH: %s",
                                                                 r->str));
        }

        freeReplyObject(r);

        ngx_ai_relay_cli_watched(cli, rc);
    }

    return NGX_AI_RELAY_CLI_OK;
}


static void
ngx_ai_relay_cli_watched(ngx_ai_relay_cli_t *cli, redisContext *rc)
{
    int                          i;
    ngx_ai_relay_cli_cluster_t  *cl;

    cl = cli->cluster;

    for (i = 0; i < cl->nwatched; i++) {
        if (cl->watched[i] == rc) {
            return;
        }
    }

    if (cl->nwatched < NGX_AI_RELAY_SLOT_MAX_NODES + 1) {
        cl->watched[cl->nwatched++] = rc;
    }
}


void
ngx_ai_relay_cli_unwatch(ngx_ai_relay_cli_t *cli)
{
    int                          i;
    ngx_ai_relay_cli_cluster_t  *cl;

    if (cli->cluster) {
        cl = cli->cluster;

        for (i = 0; i < cl->nwatched; i++) {
            freeReplyObject(redisCommand(cl->watched[i], "UNWATCH"));
        }

        cl->nwatched = 0;

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
 * MULTI, the commands, INCR ar:{cfg}:version if asked, EXEC; on a Redis
 * Cluster, as many of those as the commands' keys have slots (see
 * ngx_ai_relay_cli_tx_steps()).
 * 0: done; 1: a watched key changed, nothing was written (start over) or,
 * on a cluster, what the steps before wrote is unreachable (start over).
 */
int
ngx_ai_relay_cli_tx_exec(ngx_ai_relay_cli_t *cli, ngx_ai_relay_cli_tx_t *tx)
{
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

    if (cli->cluster) {
        return ngx_ai_relay_cli_tx_steps(cli, tx);
    }

    return ngx_ai_relay_cli_tx_multi(cli, cli->redis, tx->cmds, tx->ncmds,
                                     NULL);
}


/*
 * One MULTI/EXEC on one connection: 0 done, 1 a watched key changed
 * (nothing written), 2 a claim (claim[i] set: the command is
 * ngx_ai_relay_cli_script_claim) found its key taken (the rest written).
 */

static int
ngx_ai_relay_cli_tx_multi(ngx_ai_relay_cli_t *cli, redisContext *rc,
    ngx_ai_relay_cli_cmd_t **cmds, size_t ncmds, unsigned char *claim)
{
    int                      aborted;
    char                    *err;
    size_t                   i, n;
    redisReply              *r;
    ngx_ai_relay_cli_cmd_t  *c;

    c = ngx_ai_relay_cli_cmd("MULTI", NULL);
    redisAppendCommandArgv(rc, c->argc, (const char **) c->argv, c->lens);

    for (i = 0; i < ncmds; i++) {
        c = cmds[i];
        redisAppendCommandArgv(rc, c->argc, (const char **) c->argv,
                               c->lens);
    }

    c = ngx_ai_relay_cli_cmd("EXEC", NULL);
    redisAppendCommandArgv(rc, c->argc, (const char **) c->argv, c->lens);

    err = NULL;
    aborted = 0;

    for (n = 0; n < ncmds + 2; n++) {
        if (redisGetReply(rc, (void **) &r) != REDIS_OK) {
            ngx_ai_relay_cli_fatal(cli, rc->errstr);
        }

        if (r->type == REDIS_REPLY_ERROR && err == NULL) {
            err = ngx_ai_relay_cli_sprintf("%s%s%s", r->str,
                         (n > 0 && n <= ncmds) ? " in " : "",
                         (n > 0 && n <= ncmds) ? cmds[n - 1]->argv[0] : "");
        }

        if (n == ncmds + 1) {
            if (r->type == REDIS_REPLY_NIL) {
                aborted = 1;

            } else if (r->type == REDIS_REPLY_ARRAY) {
                for (i = 0; i < r->elements; i++) {
                    if (r->element[i]->type == REDIS_REPLY_ERROR
                        && err == NULL)
                    {
                        err = ngx_ai_relay_cli_sprintf("%s in %s",
                                                  r->element[i]->str,
                                                  cmds[i]->argv[0]);
                    }

                    if (claim && claim[i]
                        && r->element[i]->type == REDIS_REPLY_INTEGER
                        && r->element[i]->integer == 0)
                    {
                        aborted = 2;
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


/*
 * A transaction on a Redis Cluster.  Its commands sorted by the rank of
 * their key (ngx_ai_relay_cli_key_rank()), then by slot; each run of one
 * slot is a step, a MULTI/EXEC on that slot's node.  The first step
 * aborting writes nothing; a later one leaves what the steps before wrote
 * unreachable (objects, ids), and the caller starts over as after any
 * abort.
 */

static int
ngx_ai_relay_cli_tx_steps(ngx_ai_relay_cli_t *cli, ngx_ai_relay_cli_tx_t *tx)
{
    int                           slot, k, i, first;
    size_t                        n, j, from, nsteps, step;
    unsigned char                *claim;
    redisContext                 *rc;
    ngx_ai_relay_cli_cmd_t       *c, *one, **cmds;
    ngx_ai_relay_cli_step_cmd_t  *sc;

    /* a DEL of keys of several slots: a DEL per key */

    n = 0;
    for (j = 0; j < tx->ncmds; j++) {
        n += tx->cmds[j]->argc;
    }

    sc = ngx_ai_relay_cli_alloc(n * sizeof(ngx_ai_relay_cli_step_cmd_t));
    n = 0;

    for (j = 0; j < tx->ncmds; j++) {
        c = tx->cmds[j];
        slot = ngx_ai_relay_cli_cmd_slot(c);

        if (slot == -2
            && (strcasecmp(c->argv[0], "DEL") == 0
                || strcasecmp(c->argv[0], "UNLINK") == 0))
        {
            for (i = 1; i < c->argc; i++) {
                one = ngx_ai_relay_cli_cmd(c->argv[0], NULL);
                ngx_ai_relay_cli_cmd_addn(one, c->argv[i], c->lens[i]);

                sc[n].cmd = one;
                sc[n].slot = (int) ngx_ai_relay_slot_of(
                                   (const unsigned char *) c->argv[i],
                                   c->lens[i]);
                sc[n].rank = ngx_ai_relay_cli_key_rank(c->argv[0],
                                                       c->argv[i],
                                                       c->lens[i]);
                sc[n].claim = 0;
                sc[n].order = n;
                n++;
            }

            continue;
        }

        if (slot == -2) {
            ngx_ai_relay_cli_unwatch(cli);
            ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_FAILED,
                "on a Redis Cluster, %s %s ... uses keys of several hash "
                "slots in one command, which the CLI does not do there: "
                "nothing was changed", c->argv[0], c->argv[1]);
            exit(NGX_AI_RELAY_CLI_FAILED);
        }

        k = ngx_ai_relay_slot_key_arg(c->argc, (const char **) c->argv,
                                      c->lens);

        sc[n].cmd = c;
        sc[n].slot = slot;
        sc[n].rank = k < 0 ? 1 : ngx_ai_relay_cli_key_rank(c->argv[0],
                                                           c->argv[k],
                                                           c->lens[k]);
        sc[n].claim = 0;
        sc[n].order = n;

        if (sc[n].rank == 5 && c->argc == 3
            && strcasecmp(c->argv[0], "SET") == 0)
        {
            /* an ar:keyidx:<sha> set: a claim, whatever was watched */

            one = ngx_ai_relay_cli_cmd("EVAL", ngx_ai_relay_cli_script_claim,
                                       "1", NULL);
            ngx_ai_relay_cli_cmd_addn(one, c->argv[1], c->lens[1]);
            ngx_ai_relay_cli_cmd_addn(one, c->argv[2], c->lens[2]);

            sc[n].cmd = one;
            sc[n].claim = 1;
        }

        n++;
    }

    /* one slot: the transaction as it is, on that slot's node */

    first = -1;

    for (j = 0; j < n; j++) {
        if (sc[j].slot >= 0) {
            if (first >= 0 && sc[j].slot != first) {
                break;
            }

            first = sc[j].slot;
        }
    }

    if (j == n) {
        rc = ngx_ai_relay_cli_slot_ctx(cli, first);
        i = ngx_ai_relay_cli_tx_multi(cli, rc, tx->cmds, tx->ncmds, NULL);
        ngx_ai_relay_cli_unwatch(cli);

        return i;
    }

    qsort(sc, n, sizeof(ngx_ai_relay_cli_step_cmd_t),
          ngx_ai_relay_cli_step_cmp);

    nsteps = 0;
    for (j = 0; j < n; j++) {
        if (j == 0 || sc[j].slot != sc[j - 1].slot) {
            nsteps++;
        }
    }

    cmds = ngx_ai_relay_cli_alloc(n * sizeof(ngx_ai_relay_cli_cmd_t *));
    claim = ngx_ai_relay_cli_alloc(n);

    for (from = 0, step = 0; from < n; from = j, step++) {

        for (j = from; j < n && sc[j].slot == sc[from].slot; j++) {
            cmds[j - from] = sc[j].cmd;
            claim[j - from] = sc[j].claim;
        }

        rc = ngx_ai_relay_cli_slot_ctx(cli, sc[from].slot);

        if (ngx_ai_relay_cli_tx_multi(cli, rc, cmds, j - from, claim)) {
            ngx_ai_relay_cli_unwatch(cli);

            if (step > 0) {
                fprintf(stderr, "ai-relay: Redis Cluster: a concurrent "
                        "change stopped step %d of %d (%s ...); what the "
                        "steps before wrote is unreachable; starting over\n",
                        (int) step + 1, (int) nsteps,
                        cmds[0]->argv[claim[0] ? 3 : 1]);
            }

            return 1;
        }

        ngx_ai_relay_cli_step_done(cli);
    }

    ngx_ai_relay_cli_unwatch(cli);

    return 0;
}


/*
 * A step of a multi-slot write on a Redis Cluster is done.  The test hook
 * AI_RELAY_TEST_CLUSTER_STEPS=N ends the program after the Nth, as a CLI
 * killed there would end.
 */

void
ngx_ai_relay_cli_step_done(ngx_ai_relay_cli_t *cli)
{
    int64_t                      stop;
    const char                  *v;
    ngx_ai_relay_cli_cluster_t  *cl;

    cl = cli->cluster;
    cl->steps++;

    v = getenv("AI_RELAY_TEST_CLUSTER_STEPS");

    if (v && ngx_ai_relay_cli_parse_int(v, 1, INT32_MAX, &stop) == 0
        && cl->steps >= stop)
    {
        ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_FAILED,
                               "stopped after step %d of the Redis Cluster "
                               "writes (AI_RELAY_TEST_CLUSTER_STEPS)",
                               cl->steps);
        exit(NGX_AI_RELAY_CLI_FAILED);
    }
}


/*
 * When a write of a multi-slot transaction runs: ids (ar:seq) first,
 * then objects (everything not listed here), then the indexes that make
 * them reachable, the key's own set of its user before its id, its id
 * before its SHA-256 and the global users set; the import's record and
 * the configuration version last.  A removal from an index comes before
 * the objects, the most reachable index first.
 */

static int
ngx_ai_relay_cli_key_rank(const char *cmd, const char *key, size_t len)
{
    int      idx;
    size_t   hl, tl;

    static const char  seq[] = NGX_AI_RELAY_RKEY_SEQ;
    static const char  users[] = NGX_AI_RELAY_RKEY_USERS;
    static const char  version[] = NGX_AI_RELAY_RKEY_VERSION;
    static const char  imported[] = NGX_AI_RELAY_RKEY_IMPORTED;
    static const char  keyidx[] = NGX_AI_RELAY_RKEY_KEYIDX("");
    static const char  keyid[] = NGX_AI_RELAY_RKEY_KEYID("");
    static const char  uhead[] = NGX_AI_RELAY_RKEY_U_HEAD;
    static const char  ukeys[] = NGX_AI_RELAY_RKEY_U_TAIL
                                 NGX_AI_RELAY_RKEY_U_KEYS;

    if (len == sizeof(version) - 1 && memcmp(key, version, len) == 0) {
        return 7;
    }

    if (len == sizeof(imported) - 1 && memcmp(key, imported, len) == 0) {
        return 6;
    }

    if (len == sizeof(seq) - 1 && memcmp(key, seq, len) == 0) {
        return 0;
    }

    hl = sizeof(uhead) - 1;
    tl = sizeof(ukeys) - 1;

    if ((len == sizeof(users) - 1 && memcmp(key, users, len) == 0)
        || (len > sizeof(keyidx) - 1
            && memcmp(key, keyidx, sizeof(keyidx) - 1) == 0))
    {
        idx = 4;

    } else if (len > sizeof(keyid) - 1
               && memcmp(key, keyid, sizeof(keyid) - 1) == 0)
    {
        idx = 3;

    } else if (len > hl + tl && memcmp(key, uhead, hl) == 0
               && memcmp(key + len - tl, ukeys, tl) == 0)
    {
        idx = 2;

    } else {
        return 1;
    }

    if (strcasecmp(cmd, "DEL") == 0 || strcasecmp(cmd, "UNLINK") == 0
        || strcasecmp(cmd, "SREM") == 0 || strcasecmp(cmd, "HDEL") == 0)
    {
        return -idx;
    }

    return idx + 1;
}


static int
ngx_ai_relay_cli_step_cmp(const void *one, const void *two)
{
    const ngx_ai_relay_cli_step_cmd_t  *a = one, *b = two;

    if (a->rank != b->rank) {
        return a->rank < b->rank ? -1 : 1;
    }

    if (a->slot != b->slot) {
        return a->slot < b->slot ? -1 : 1;
    }

    return a->order < b->order ? -1 : (a->order > b->order);
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
                               c->argv[0],
                               strncasecmp(c->argv[0], "EVAL", 4) == 0
                               && c->argc > 3 ? c->argv[3] : c->argv[1]);
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
