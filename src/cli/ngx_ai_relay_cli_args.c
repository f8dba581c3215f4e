
/*
 * Copyright (C) ngx_ai_relay authors
 *
 * Command line options: "--name VALUE", "--name=VALUE" and "--flag", in
 * any order among the positional arguments; "--" ends the options.  The
 * global options (--redis, --redis-password, --redis-db, --json) are
 * accepted by every command.
 */


#include "ngx_ai_relay_cli.h"


static const ngx_ai_relay_cli_opt_t  ngx_ai_relay_cli_global_opts[] = {
    { "redis", 1, 0 },
    { "redis-password", 1, 0 },
    { "redis-db", 1, 0 },
    { "json", 0, 0 },
    { "help", 0, 0 },
    { NULL, 0, 0 }
};


static ngx_ai_relay_cli_optval_t *
ngx_ai_relay_cli_find_opt(ngx_ai_relay_cli_args_t *args, const char *name,
    size_t len)
{
    size_t  i;

    for (i = 0; i < args->nopts; i++) {
        if (strlen(args->opts[i].opt->name) == len
            && strncmp(args->opts[i].opt->name, name, len) == 0)
        {
            return &args->opts[i];
        }
    }

    return NULL;
}


int
ngx_ai_relay_cli_parse_args(ngx_ai_relay_cli_t *cli,
    const ngx_ai_relay_cli_command_t *cmd, int argc, char **argv,
    ngx_ai_relay_cli_args_t *args, int *help)
{
    int                         i, n, nopts, options;
    char                       *a, *eq, *value;
    size_t                      len;
    int64_t                     db;
    const char                 *v;
    ngx_ai_relay_cli_optval_t  *ov;

    memset(args, 0, sizeof(ngx_ai_relay_cli_args_t));

    nopts = 0;

    for (n = 0; cmd->opts && cmd->opts[n].name; n++) {
        nopts++;
    }

    for (n = 0; ngx_ai_relay_cli_global_opts[n].name; n++) {
        nopts++;
    }

    args->opts = ngx_ai_relay_cli_alloc(nopts
                                        * sizeof(ngx_ai_relay_cli_optval_t));
    memset(args->opts, 0, nopts * sizeof(ngx_ai_relay_cli_optval_t));

    for (n = 0; cmd->opts && cmd->opts[n].name; n++) {
        args->opts[args->nopts++].opt = &cmd->opts[n];
    }

    for (n = 0; ngx_ai_relay_cli_global_opts[n].name; n++) {
        args->opts[args->nopts++].opt = &ngx_ai_relay_cli_global_opts[n];
    }

    options = 1;

    for (i = 0; i < argc; i++) {
        a = argv[i];

        if (!options || a[0] != '-' || a[1] != '-') {
            ngx_ai_relay_cli_list_push(&args->pos, a);
            continue;
        }

        if (a[2] == '\0') {
            options = 0;
            continue;
        }

        eq = strchr(a + 2, '=');
        len = eq ? (size_t) (eq - (a + 2)) : strlen(a + 2);

        ov = ngx_ai_relay_cli_find_opt(args, a + 2, len);

        if (ov == NULL) {
            return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_USAGE,
                                     "unknown option \"--%.*s\" (see --help)",
                                     (int) len, a + 2);
        }

        if (ov->seen && !ov->opt->multi) {
            return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_USAGE,
                                          "option \"--%s\" is given twice",
                                          ov->opt->name);
        }

        ov->seen = 1;

        if (!ov->opt->value) {
            if (eq) {
                return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_USAGE,
                                         "option \"--%s\" takes no value",
                                         ov->opt->name);
            }

            continue;
        }

        if (eq) {
            value = eq + 1;

        } else if (i + 1 < argc) {
            value = argv[++i];

        } else {
            return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_USAGE,
                                          "option \"--%s\" needs a value",
                                          ov->opt->name);
        }

        ngx_ai_relay_cli_list_push(&ov->values, value);
    }

    *help = ngx_ai_relay_cli_opt_has(args, "help");

    if (ngx_ai_relay_cli_opt_has(args, "json")) {
        cli->json = 1;
    }

    v = ngx_ai_relay_cli_opt(args, "redis");
    if (v) {
        cli->redis_addr = v;
    }

    v = ngx_ai_relay_cli_opt(args, "redis-password");
    if (v) {
        cli->redis_password = v;
    }

    v = ngx_ai_relay_cli_opt(args, "redis-db");
    if (v) {
        if (ngx_ai_relay_cli_parse_int(v, 0, 65535, &db) != 0) {
            return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_USAGE,
                                          "invalid --redis-db \"%s\"", v);
        }

        cli->redis_db = (int) db;
    }

    return NGX_AI_RELAY_CLI_OK;
}


const char *
ngx_ai_relay_cli_opt(ngx_ai_relay_cli_args_t *args, const char *name)
{
    ngx_ai_relay_cli_optval_t  *ov;

    ov = ngx_ai_relay_cli_find_opt(args, name, strlen(name));

    if (ov == NULL || ov->values.nelts == 0) {
        return NULL;
    }

    return ov->values.elts[ov->values.nelts - 1];
}


int
ngx_ai_relay_cli_opt_has(ngx_ai_relay_cli_args_t *args, const char *name)
{
    ngx_ai_relay_cli_optval_t  *ov;

    ov = ngx_ai_relay_cli_find_opt(args, name, strlen(name));

    return ov != NULL && ov->seen;
}


ngx_ai_relay_cli_list_t *
ngx_ai_relay_cli_opt_list(ngx_ai_relay_cli_args_t *args, const char *name)
{
    ngx_ai_relay_cli_optval_t  *ov;

    ov = ngx_ai_relay_cli_find_opt(args, name, strlen(name));

    return &ov->values;
}
