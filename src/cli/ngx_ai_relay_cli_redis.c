
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


static void ngx_ai_relay_cli_fatal(ngx_ai_relay_cli_t *cli,
    const char *what);


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

    r = redisCommandArgv(cli->redis, c->argc, (const char **) c->argv,
                         c->lens);

    if (r == NULL) {
        ngx_ai_relay_cli_fatal(cli, cli->redis->errstr);
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
    size_t                   i;
    redisReply              *r;
    ngx_ai_relay_cli_cmd_t  *c;

    c = ngx_ai_relay_cli_cmd("WATCH", NULL);

    for (i = 0; i < keys->nelts; i++) {
        ngx_ai_relay_cli_cmd_add(c, keys->elts[i]);
    }

    if (c->argc == 1) {
        return NGX_AI_RELAY_CLI_OK;
    }

    r = ngx_ai_relay_cli_run(cli, c);
    freeReplyObject(r);

    return NGX_AI_RELAY_CLI_OK;
}


void
ngx_ai_relay_cli_unwatch(ngx_ai_relay_cli_t *cli)
{
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
    int                      aborted;
    char                    *err;
    size_t                   i, n;
    redisReply              *r;
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

    c = ngx_ai_relay_cli_cmd("MULTI", NULL);
    redisAppendCommandArgv(cli->redis, c->argc, (const char **) c->argv,
                           c->lens);

    for (i = 0; i < tx->ncmds; i++) {
        c = tx->cmds[i];
        redisAppendCommandArgv(cli->redis, c->argc, (const char **) c->argv,
                               c->lens);
    }

    c = ngx_ai_relay_cli_cmd("EXEC", NULL);
    redisAppendCommandArgv(cli->redis, c->argc, (const char **) c->argv,
                           c->lens);

    err = NULL;
    aborted = 0;

    for (n = 0; n < tx->ncmds + 2; n++) {
        if (redisGetReply(cli->redis, (void **) &r) != REDIS_OK) {
            ngx_ai_relay_cli_fatal(cli, cli->redis->errstr);
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

