
/*
 * Copyright (C) ngx_ai_relay authors
 *
 * ai-relay: entry point, command dispatch and help.
 *
 *   ai-relay [global options] <group> [<command>] [arguments] [options]
 */


#include "ngx_ai_relay_cli.h"


static ngx_ai_relay_cli_command_t *ngx_ai_relay_cli_tables[] = {
    ngx_ai_relay_cli_users_commands,
    ngx_ai_relay_cli_keys_commands,
    ngx_ai_relay_cli_models_commands,
    ngx_ai_relay_cli_channels_commands,
    ngx_ai_relay_cli_prices_commands,
    ngx_ai_relay_cli_usage_commands,
    ngx_ai_relay_cli_import_commands,
    ngx_ai_relay_cli_tasks_commands,
    NULL
};


static const char  ngx_ai_relay_cli_global_help[] =
"Global options (any position):\n"
"  --redis ADDR            host:port, [ipv6]:port or unix:/path; or\n"
"                          cluster:IP:PORT[,IP:PORT...], a Redis Cluster\n"
"                          (writes over several hash slots in steps); or\n"
"                          sentinel:MASTER@IP:PORT[,IP:PORT...], the\n"
"                          master Redis Sentinel names\n"
"                          (env AI_RELAY_REDIS, default 127.0.0.1:6379)\n"
"  --redis-password PASS   (env AI_RELAY_REDIS_PASSWORD)\n"
"  --redis-db N            (env AI_RELAY_REDIS_DB, default 0)\n"
"  --json                  machine-readable output on stdout\n"
"  --help                  help for the command\n"
"\n"
"Exit codes: 0 ok, 1 rejected (bad value, not found, conflict; nothing\n"
"was changed), 2 usage error, 3 Redis or database failure.\n";


static void
ngx_ai_relay_cli_usage_all(FILE *f)
{
    size_t                       t;
    ngx_ai_relay_cli_command_t  *c;

    fprintf(f, "ai-relay %s: operator tool of ngx_ai_relay\n\n"
               "Usage: ai-relay <group> [<command>] [arguments] "
               "[options]\n\n", NGX_AI_RELAY_CLI_VERSION);

    for (t = 0; ngx_ai_relay_cli_tables[t]; t++) {
        for (c = ngx_ai_relay_cli_tables[t]; c->group; c++) {
            fprintf(f, "  ai-relay %s\n", c->synopsis);
        }

        fputc('\n', f);
    }

    fprintf(f, "%s\nRun \"ai-relay <group> <command> --help\" for "
               "details; docs/cli.md has them all.\n",
            ngx_ai_relay_cli_global_help);
}


static void
ngx_ai_relay_cli_usage_group(FILE *f, const char *group)
{
    size_t                       t;
    ngx_ai_relay_cli_command_t  *c;

    fprintf(f, "Usage:\n");

    for (t = 0; ngx_ai_relay_cli_tables[t]; t++) {
        for (c = ngx_ai_relay_cli_tables[t]; c->group; c++) {
            if (strcmp(c->group, group) == 0) {
                fprintf(f, "  ai-relay %s\n", c->synopsis);
            }
        }
    }

    fprintf(f, "\n%s", ngx_ai_relay_cli_global_help);
}


static void
ngx_ai_relay_cli_usage_command(FILE *f, ngx_ai_relay_cli_command_t *c)
{
    fprintf(f, "Usage: ai-relay %s\n\n%s\n%s", c->synopsis, c->help,
            ngx_ai_relay_cli_global_help);
}


static int
ngx_ai_relay_cli_is_group(const char *group)
{
    size_t                       t;
    ngx_ai_relay_cli_command_t  *c;

    for (t = 0; ngx_ai_relay_cli_tables[t]; t++) {
        for (c = ngx_ai_relay_cli_tables[t]; c->group; c++) {
            if (strcmp(c->group, group) == 0) {
                return 1;
            }
        }
    }

    return 0;
}


static ngx_ai_relay_cli_command_t *
ngx_ai_relay_cli_find(const char *group, const char *name)
{
    size_t                       t;
    ngx_ai_relay_cli_command_t  *c;

    for (t = 0; ngx_ai_relay_cli_tables[t]; t++) {
        for (c = ngx_ai_relay_cli_tables[t]; c->group; c++) {
            if (strcmp(c->group, group) != 0) {
                continue;
            }

            if (c->name == NULL) {
                return c;
            }

            if (name && strcmp(c->name, name) == 0) {
                return c;
            }
        }
    }

    return NULL;
}


static int
ngx_ai_relay_cli_main(ngx_ai_relay_cli_t *cli, int argc, char **argv)
{
    int                          i, rc, help, npos;
    char                        *group, *name;
    size_t                       n;
    ngx_ai_relay_cli_list_t      pre, rest;
    ngx_ai_relay_cli_args_t      args;
    ngx_ai_relay_cli_command_t  *cmd;

    /* global options may come before the group too */

    memset(&pre, 0, sizeof(pre));

    for (i = 1; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            ngx_ai_relay_cli_usage_all(stdout);
            return NGX_AI_RELAY_CLI_OK;
        }

        if (strcmp(argv[i], "--version") == 0) {
            printf("ai-relay %s\n", NGX_AI_RELAY_CLI_VERSION);
            return NGX_AI_RELAY_CLI_OK;
        }

        if (strcmp(argv[i], "--json") == 0) {
            cli->json = 1;
            continue;
        }

        if (strncmp(argv[i], "--redis", 7) == 0) {
            ngx_ai_relay_cli_list_push(&pre, argv[i]);

            if (strchr(argv[i], '=') == NULL && i + 1 < argc) {
                ngx_ai_relay_cli_list_push(&pre, argv[++i]);
            }

            continue;
        }

        break;
    }

    if (i == argc) {
        ngx_ai_relay_cli_usage_all(stderr);
        return NGX_AI_RELAY_CLI_USAGE;
    }

    group = argv[i++];

    if (strcmp(group, "help") == 0) {
        if (i == argc) {
            ngx_ai_relay_cli_usage_all(stdout);
            return NGX_AI_RELAY_CLI_OK;
        }

        group = argv[i++];
        cmd = ngx_ai_relay_cli_find(group, i < argc ? argv[i] : NULL);

        if (cmd && (cmd->name == NULL || i < argc)) {
            ngx_ai_relay_cli_usage_command(stdout, cmd);
            return NGX_AI_RELAY_CLI_OK;
        }

        if (ngx_ai_relay_cli_is_group(group)) {
            ngx_ai_relay_cli_usage_group(stdout, group);
            return NGX_AI_RELAY_CLI_OK;
        }

        return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_USAGE,
                                      "unknown command \"%s\"", group);
    }

    if (group[0] == '-') {
        return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_USAGE,
                                      "unknown option \"%s\" (see "
                                      "ai-relay --help)", group);
    }

    memset(&rest, 0, sizeof(rest));

    if (!ngx_ai_relay_cli_is_group(group)) {
        return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_USAGE,
                                      "unknown command \"%s\" (see "
                                      "ai-relay --help)", group);
    }

    cmd = ngx_ai_relay_cli_find(group, NULL);

    if (cmd == NULL) {
        name = (i < argc) ? argv[i] : NULL;

        if (name == NULL || strcmp(name, "--help") == 0
            || strcmp(name, "-h") == 0)
        {
            ngx_ai_relay_cli_usage_group(name ? stdout : stderr, group);
            return name ? NGX_AI_RELAY_CLI_OK : NGX_AI_RELAY_CLI_USAGE;
        }

        cmd = ngx_ai_relay_cli_find(group, name);

        if (cmd == NULL) {
            return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_USAGE,
                                          "unknown command \"%s %s\" (see "
                                          "ai-relay %s --help)",
                                          group, name, group);
        }

        i++;
    }

    for ( /* void */ ; i < argc; i++) {
        ngx_ai_relay_cli_list_push(&rest, argv[i]);
    }

    for (n = 0; n < pre.nelts; n++) {
        ngx_ai_relay_cli_list_push(&rest, pre.elts[n]);
    }

    rc = ngx_ai_relay_cli_parse_args(cli, cmd, (int) rest.nelts, rest.elts,
                                     &args, &help);
    if (rc != NGX_AI_RELAY_CLI_OK) {
        return rc;
    }

    if (help) {
        ngx_ai_relay_cli_usage_command(stdout, cmd);
        return NGX_AI_RELAY_CLI_OK;
    }

    npos = (int) args.pos.nelts;

    if (npos < cmd->min_pos || (cmd->max_pos >= 0 && npos > cmd->max_pos)) {
        return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_USAGE,
                                      "%s arguments; usage: ai-relay %s",
                                      npos < cmd->min_pos ? "missing"
                                                          : "too many",
                                      cmd->synopsis);
    }

    return cmd->handler(cli, &args);
}


int
main(int argc, char **argv)
{
    int                  rc;
    int64_t              db;
    const char          *v;
    ngx_ai_relay_cli_t   cli;

    memset(&cli, 0, sizeof(ngx_ai_relay_cli_t));

    cli.now = time(NULL);

    v = getenv("AI_RELAY_NOW");
    if (v && ngx_ai_relay_cli_parse_int(v, 1, INT32_MAX, &db) == 0) {
        /* tests pin the clock */
        cli.now = (time_t) db;
    }

    cli.redis_addr = getenv("AI_RELAY_REDIS");
    cli.redis_password = getenv("AI_RELAY_REDIS_PASSWORD");

    v = getenv("AI_RELAY_REDIS_DB");
    if (v && v[0]) {
        if (ngx_ai_relay_cli_parse_int(v, 0, 65535, &db) != 0) {
            return ngx_ai_relay_cli_error(&cli, NGX_AI_RELAY_CLI_USAGE,
                                          "invalid AI_RELAY_REDIS_DB \"%s\"",
                                          v);
        }

        cli.redis_db = (int) db;
    }

    rc = ngx_ai_relay_cli_main(&cli, argc, argv);

    if (cli.redis) {
        redisFree(cli.redis);
    }

    fflush(stdout);
    ngx_ai_relay_cli_free_all();

    return rc;
}
