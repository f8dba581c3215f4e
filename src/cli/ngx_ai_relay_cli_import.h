
/*
 * Copyright (C) ngx_ai_relay authors
 */


#ifndef _NGX_AI_RELAY_CLI_IMPORT_H_INCLUDED_
#define _NGX_AI_RELAY_CLI_IMPORT_H_INCLUDED_


#include "ngx_ai_relay_cli.h"


#define NGX_AI_RELAY_CLI_DB_NO_TABLE  100


typedef struct ngx_ai_relay_cli_db_s  ngx_ai_relay_cli_db_t;


/*
 * An import: what the source database asks for (JSON objects keyed by
 * our ids and names, in order), then the report of what was changed.
 */
typedef struct {
    ngx_ai_relay_cli_t           *cli;
    const char                   *from;          /* one-api, new-api */
    const char                   *tag;           /* "source" prefix */
    const char                   *db_what;
    int64_t                       offset;        /* --id-offset */
    unsigned                      new_api:1;
    unsigned                      dry_run:1;
    unsigned                      sync_balances:1;

    /* uid -> {src, sync: {field: value}, initial: {...}} */
    json_t                       *users;
    /* kid -> {uid, sha, src, sync, initial} */
    json_t                       *keys;
    /* id -> {src, sync} */
    json_t                       *channels;
    /* name -> {alias: name} | {channels: [id, ...]} */
    json_t                       *models;
    /* name -> {field: value} */
    json_t                       *prices;

    int64_t                       max_user;
    int64_t                       max_key;
    int64_t                       max_channel;

    json_t                       *changes;
    json_t                       *skipped;
    json_t                       *inexact;
    json_t                       *notes;
    json_t                       *conflicts;
} ngx_ai_relay_cli_import_t;


int ngx_ai_relay_cli_db_open(ngx_ai_relay_cli_t *cli, const char *sqlite,
    const char *mysql, ngx_ai_relay_cli_db_t **db);
void ngx_ai_relay_cli_db_close(ngx_ai_relay_cli_db_t *db);
const char *ngx_ai_relay_cli_db_what(ngx_ai_relay_cli_db_t *db);
int ngx_ai_relay_cli_db_table(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_db_t *db, const char *table, json_t **rows);


void ngx_ai_relay_cli_import_skip(ngx_ai_relay_cli_import_t *im,
    const char *kind, const char *id, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void ngx_ai_relay_cli_import_note(ngx_ai_relay_cli_import_t *im,
    const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int ngx_ai_relay_cli_import_sync(ngx_ai_relay_cli_import_t *im);


#endif /* _NGX_AI_RELAY_CLI_IMPORT_H_INCLUDED_ */
