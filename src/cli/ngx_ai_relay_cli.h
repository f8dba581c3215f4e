
/*
 * Copyright (C) ngx_ai_relay authors
 *
 * ai-relay: the operator command line tool.  It writes the Redis layout
 * of src/ngx_ai_relay_schema.h (README.md, "Redis key layout") with the
 * synchronous hiredis API; it is never linked into nginx.
 */


#ifndef _NGX_AI_RELAY_CLI_H_INCLUDED_
#define _NGX_AI_RELAY_CLI_H_INCLUDED_


#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <stdarg.h>
#include <string.h>
#include <inttypes.h>
#include <time.h>

#include <hiredis/hiredis.h>
#include <jansson.h>

#include "ngx_ai_relay_schema.h"


#define NGX_AI_RELAY_CLI_VERSION      "0.1.0"

/* exit codes */
#define NGX_AI_RELAY_CLI_OK           0
#define NGX_AI_RELAY_CLI_REJECTED     1   /* bad value, not found, conflict */
#define NGX_AI_RELAY_CLI_USAGE        2   /* unknown command or option */
#define NGX_AI_RELAY_CLI_FAILED       3   /* Redis or database failure */

/* how often an optimistic (WATCH) transaction is tried */
#define NGX_AI_RELAY_CLI_TX_TRIES     16


typedef struct {
    char                        **elts;
    size_t                        nelts;
    size_t                        nalloc;
} ngx_ai_relay_cli_list_t;


typedef struct {
    char                         *data;
    size_t                        len;
    size_t                        cap;
} ngx_ai_relay_cli_buf_t;


/* one option a command accepts: --name or --name VALUE */
typedef struct {
    const char                   *name;
    unsigned                      value:1;
    unsigned                      multi:1;
} ngx_ai_relay_cli_opt_t;


typedef struct {
    const ngx_ai_relay_cli_opt_t *opt;
    ngx_ai_relay_cli_list_t       values;
    unsigned                      seen:1;
} ngx_ai_relay_cli_optval_t;


typedef struct {
    ngx_ai_relay_cli_list_t       pos;       /* positional arguments */
    ngx_ai_relay_cli_optval_t    *opts;
    size_t                        nopts;
} ngx_ai_relay_cli_args_t;


typedef struct {
    const char                   *redis_addr;
    const char                   *redis_password;
    int                           redis_db;
    redisContext                 *redis;
    void                         *cluster;   /* "cluster:" addresses */
    int                           failed_rc; /* code of the first error */
    unsigned                      json:1;
    unsigned                      failed:1;  /* an error was reported */
    time_t                        now;
} ngx_ai_relay_cli_t;


typedef int (*ngx_ai_relay_cli_handler_pt)(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_args_t *args);


typedef struct {
    const char                   *group;
    const char                   *name;      /* NULL: the group itself */
    ngx_ai_relay_cli_handler_pt   handler;
    const ngx_ai_relay_cli_opt_t *opts;
    int                           min_pos;
    int                           max_pos;   /* -1: any number */
    const char                   *synopsis;
    const char                   *help;
} ngx_ai_relay_cli_command_t;


/* a Redis command under construction */
typedef struct {
    int                           argc;
    int                           nalloc;
    char                        **argv;
    size_t                       *lens;
} ngx_ai_relay_cli_cmd_t;


/* the writes of one MULTI/EXEC transaction */
typedef struct {
    ngx_ai_relay_cli_cmd_t      **cmds;
    size_t                        ncmds;
    size_t                        nalloc;
    unsigned                      version:1; /* INCR ar:{cfg}:version */
} ngx_ai_relay_cli_tx_t;


/* ngx_ai_relay_cli_util.c */

void *ngx_ai_relay_cli_alloc(size_t size);
void ngx_ai_relay_cli_free_all(void);
char *ngx_ai_relay_cli_strdup(const char *s);
char *ngx_ai_relay_cli_strndup(const char *s, size_t n);
char *ngx_ai_relay_cli_sprintf(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

void ngx_ai_relay_cli_list_push(ngx_ai_relay_cli_list_t *l, char *s);
int ngx_ai_relay_cli_list_has(ngx_ai_relay_cli_list_t *l, const char *s);
void ngx_ai_relay_cli_list_remove(ngx_ai_relay_cli_list_t *l, const char *s);
void ngx_ai_relay_cli_list_sort(ngx_ai_relay_cli_list_t *l);
void ngx_ai_relay_cli_list_sort_num(ngx_ai_relay_cli_list_t *l);
char *ngx_ai_relay_cli_list_join(ngx_ai_relay_cli_list_t *l,
    const char *sep);
void ngx_ai_relay_cli_list_split(ngx_ai_relay_cli_list_t *l,
    const char *s, const char *seps);

char *ngx_ai_relay_cli_csv_add(const char *csv, const char *item);
char *ngx_ai_relay_cli_csv_del(const char *csv, const char *item);
int ngx_ai_relay_cli_csv_has(const char *csv, const char *item);
char *ngx_ai_relay_cli_pad(const char *s, int width);

void ngx_ai_relay_cli_buf_add(ngx_ai_relay_cli_buf_t *b, const char *s,
    size_t n);

int ngx_ai_relay_cli_parse_int(const char *s, int64_t min, int64_t max,
    int64_t *out);
int ngx_ai_relay_cli_is_id(const char *s);
int64_t ngx_ai_relay_cli_unit_seconds(char c);
int ngx_ai_relay_cli_parse_time(const char *s, time_t now, time_t *out);
int ngx_ai_relay_cli_parse_usd(const char *s, int64_t *out);
char *ngx_ai_relay_cli_usd(int64_t micro);
char *ngx_ai_relay_cli_time_str(time_t t);
int ngx_ai_relay_cli_valid_name(const char *s);
int ngx_ai_relay_cli_models_csv(const char *s, char **out);

int ngx_ai_relay_cli_error(ngx_ai_relay_cli_t *cli, int code,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void ngx_ai_relay_cli_print_json(json_t *j);
json_t *ngx_ai_relay_cli_json_int(const char *s);


/* ngx_ai_relay_cli_args.c */

int ngx_ai_relay_cli_parse_args(ngx_ai_relay_cli_t *cli,
    const ngx_ai_relay_cli_command_t *cmd, int argc, char **argv,
    ngx_ai_relay_cli_args_t *args, int *help);
const char *ngx_ai_relay_cli_opt(ngx_ai_relay_cli_args_t *args,
    const char *name);
int ngx_ai_relay_cli_opt_has(ngx_ai_relay_cli_args_t *args,
    const char *name);
ngx_ai_relay_cli_list_t *ngx_ai_relay_cli_opt_list(
    ngx_ai_relay_cli_args_t *args, const char *name);


/* ngx_ai_relay_cli_redis.c */

int ngx_ai_relay_cli_connect(ngx_ai_relay_cli_t *cli);
ngx_ai_relay_cli_cmd_t *ngx_ai_relay_cli_cmd(const char *first, ...);
void ngx_ai_relay_cli_cmd_add(ngx_ai_relay_cli_cmd_t *c, const char *s);
void ngx_ai_relay_cli_cmd_addn(ngx_ai_relay_cli_cmd_t *c, const char *s,
    size_t n);
void ngx_ai_relay_cli_cmd_addf(ngx_ai_relay_cli_cmd_t *c,
    const char *fmt, ...) __attribute__((format(printf, 2, 3)));
redisReply *ngx_ai_relay_cli_run(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_cmd_t *c);
redisReply *ngx_ai_relay_cli_runv(ngx_ai_relay_cli_t *cli,
    const char *first, ...);
char *ngx_ai_relay_cli_get(ngx_ai_relay_cli_t *cli, const char *key);
json_t *ngx_ai_relay_cli_hgetall(ngx_ai_relay_cli_t *cli, const char *key);
const char *ngx_ai_relay_cli_hval(json_t *h, const char *field);
int ngx_ai_relay_cli_smembers(ngx_ai_relay_cli_t *cli, const char *key,
    ngx_ai_relay_cli_list_t *out);
int ngx_ai_relay_cli_exists(ngx_ai_relay_cli_t *cli, const char *key);
int ngx_ai_relay_cli_watch(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_list_t *keys);
void ngx_ai_relay_cli_unwatch(ngx_ai_relay_cli_t *cli);
void ngx_ai_relay_cli_tx_add(ngx_ai_relay_cli_tx_t *tx,
    ngx_ai_relay_cli_cmd_t *c);
int ngx_ai_relay_cli_tx_exec(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_tx_t *tx);
void ngx_ai_relay_cli_step_done(ngx_ai_relay_cli_t *cli);


/* ngx_ai_relay_cli_common.c: lookups and writes shared by the commands */

redisReply *ngx_ai_relay_cli_eval(ngx_ai_relay_cli_t *cli,
    const char *script, int nkeys, const char **keys, int nargs,
    const char **argv);
int ngx_ai_relay_cli_hset_existing(ngx_ai_relay_cli_t *cli,
    const char *key, ngx_ai_relay_cli_list_t *fv);
int ngx_ai_relay_cli_move_money(ngx_ai_relay_cli_t *cli, const char *uid,
    int64_t amount, const char *op, const char *note, int allow_negative,
    int64_t *balance);
const char *ngx_ai_relay_cli_rotate_key(ngx_ai_relay_cli_t *cli,
    const char *uid, const char *kid, const char *old, const char *new,
    const char *masked);
void ngx_ai_relay_cli_pipeline(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_cmd_t **cmds, size_t n, redisReply **replies);
void ngx_ai_relay_cli_free_replies(redisReply **replies, size_t n);
json_t *ngx_ai_relay_cli_reply_hash(redisReply *r);
json_t *ngx_ai_relay_cli_hgetall_many(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_list_t *keys);
void ngx_ai_relay_cli_user_ids(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_list_t *ids);
char *ngx_ai_relay_cli_user_by_name(ngx_ai_relay_cli_t *cli,
    const char *name);
int ngx_ai_relay_cli_find_user(ngx_ai_relay_cli_t *cli, const char *ref,
    char **uid, json_t **user);
int ngx_ai_relay_cli_key_reachable(ngx_ai_relay_cli_t *cli,
    const char *uid, const char *sha);
int ngx_ai_relay_cli_is_member(ngx_ai_relay_cli_t *cli, const char *set,
    const char *member);
int ngx_ai_relay_cli_hash_key(ngx_ai_relay_cli_t *cli, const char *key,
    char *hash);
int ngx_ai_relay_cli_find_key(ngx_ai_relay_cli_t *cli, const char *ref,
    char **uid, char **hash, json_t **key);
int ngx_ai_relay_cli_find_any_key(ngx_ai_relay_cli_t *cli, const char *ref,
    char **uid, char **hash, json_t **key);
char *ngx_ai_relay_cli_mask(const char *key);
const char *ngx_ai_relay_cli_hstr(json_t *h, const char *field);
int64_t ngx_ai_relay_cli_hint(json_t *h, const char *field, int64_t def);
char *ngx_ai_relay_cli_next_id(ngx_ai_relay_cli_t *cli, const char *field,
    const char *key_fmt);
void ngx_ai_relay_cli_watch1(ngx_ai_relay_cli_t *cli, const char *key);

json_t *ngx_ai_relay_cli_key_json(const char *uid, json_t *h);
json_t *ngx_ai_relay_cli_models_load(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_list_t *names);
void ngx_ai_relay_cli_channel_models_tx(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_tx_t *tx, const char *id, const char *add,
    const char *del);
json_t *ngx_ai_relay_cli_price_json(json_t *h);
const char *ngx_ai_relay_cli_provider_base_url(const char *provider);
int ngx_ai_relay_cli_valid_provider(const char *p);
char *ngx_ai_relay_cli_base_url(const char *url);
int ngx_ai_relay_cli_valid_upstream_key(const char *k);


/* ngx_ai_relay_cli_probe.c */

int ngx_ai_relay_cli_channels_test(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_args_t *args);
char *ngx_ai_relay_cli_probe_url(const char *base, const char *path);


/* command tables */

extern ngx_ai_relay_cli_command_t  ngx_ai_relay_cli_users_commands[];
extern ngx_ai_relay_cli_command_t  ngx_ai_relay_cli_keys_commands[];
extern ngx_ai_relay_cli_command_t  ngx_ai_relay_cli_models_commands[];
extern ngx_ai_relay_cli_command_t  ngx_ai_relay_cli_channels_commands[];
extern ngx_ai_relay_cli_command_t  ngx_ai_relay_cli_prices_commands[];
extern ngx_ai_relay_cli_command_t  ngx_ai_relay_cli_usage_commands[];
extern ngx_ai_relay_cli_command_t  ngx_ai_relay_cli_tasks_commands[];
extern ngx_ai_relay_cli_command_t  ngx_ai_relay_cli_import_commands[];


#endif /* _NGX_AI_RELAY_CLI_H_INCLUDED_ */
