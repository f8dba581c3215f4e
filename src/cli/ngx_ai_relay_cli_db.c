
/*
 * Copyright (C) ngx_ai_relay authors
 *
 * Read-only access to a One API / New API database, SQLite or MySQL /
 * MariaDB.  A table is read whole ("SELECT *"), so columns that one
 * version of the schema lacks are simply absent: each row is a JSON
 * object of column name to string (or null).
 */


#include <sqlite3.h>
#include <mysql.h>
#include <mysqld_error.h>

#include "ngx_ai_relay_cli.h"
#include "ngx_ai_relay_cli_import.h"


struct ngx_ai_relay_cli_db_s {
    sqlite3                      *sqlite;
    MYSQL                        *mysql;
    char                         *what;      /* for messages */
};


/*
 * "host=127.0.0.1;port=3306;user=root;password=x;db=oneapi" or with
 * "socket=/path"; values cannot contain ';'.
 */
static int
ngx_ai_relay_cli_db_mysql(ngx_ai_relay_cli_t *cli, ngx_ai_relay_cli_db_t *db,
    const char *dsn)
{
    char                     *eq, *name, *value;
    size_t                    i;
    int64_t                   port;
    const char               *host, *user, *password, *dbname, *socket;
    ngx_ai_relay_cli_list_t   parts;

    host = NULL;
    user = NULL;
    password = NULL;
    dbname = NULL;
    socket = NULL;
    port = 0;

    memset(&parts, 0, sizeof(parts));
    ngx_ai_relay_cli_list_split(&parts, dsn, ";");

    for (i = 0; i < parts.nelts; i++) {
        eq = strchr(parts.elts[i], '=');

        if (eq == NULL) {
            return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_USAGE,
                                          "invalid --mysql part \"%s\" "
                                          "(name=value)", parts.elts[i]);
        }

        name = ngx_ai_relay_cli_strndup(parts.elts[i], eq - parts.elts[i]);
        value = eq + 1;

        if (strcmp(name, "host") == 0) {
            host = value;

        } else if (strcmp(name, "user") == 0) {
            user = value;

        } else if (strcmp(name, "password") == 0) {
            password = value;

        } else if (strcmp(name, "db") == 0 || strcmp(name, "database") == 0)
        {
            dbname = value;

        } else if (strcmp(name, "socket") == 0) {
            socket = value;

        } else if (strcmp(name, "port") == 0) {
            if (ngx_ai_relay_cli_parse_int(value, 1, 65535, &port) != 0) {
                return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_USAGE,
                                              "invalid --mysql port \"%s\"",
                                              value);
            }

        } else {
            return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_USAGE,
                                          "unknown --mysql part \"%s\" "
                                          "(host, port, user, password, db, "
                                          "socket)", name);
        }
    }

    if (dbname == NULL) {
        return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_USAGE,
                                      "--mysql needs db=NAME");
    }

    db->mysql = mysql_init(NULL);

    if (db->mysql == NULL) {
        return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_FAILED,
                                      "mysql_init() failed");
    }

    mysql_options(db->mysql, MYSQL_SET_CHARSET_NAME, "utf8mb4");

    if (mysql_real_connect(db->mysql, host, user, password, dbname,
                           (unsigned int) port, socket, 0)
        == NULL)
    {
        return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_FAILED,
                                      "cannot connect to MySQL: %s",
                                      mysql_error(db->mysql));
    }

    db->what = ngx_ai_relay_cli_sprintf("mysql %s", dbname);

    return NGX_AI_RELAY_CLI_OK;
}


int
ngx_ai_relay_cli_db_open(ngx_ai_relay_cli_t *cli, const char *sqlite,
    const char *mysql, ngx_ai_relay_cli_db_t **out)
{
    int                     rc;
    ngx_ai_relay_cli_db_t  *db;

    db = ngx_ai_relay_cli_alloc(sizeof(ngx_ai_relay_cli_db_t));
    memset(db, 0, sizeof(ngx_ai_relay_cli_db_t));

    if (mysql) {
        rc = ngx_ai_relay_cli_db_mysql(cli, db, mysql);
        if (rc != NGX_AI_RELAY_CLI_OK) {
            ngx_ai_relay_cli_db_close(db);
            return rc;
        }

        *out = db;
        return NGX_AI_RELAY_CLI_OK;
    }

    if (sqlite3_open_v2(sqlite, &db->sqlite, SQLITE_OPEN_READONLY, NULL)
        != SQLITE_OK)
    {
        rc = ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_FAILED,
                                    "cannot open SQLite database \"%s\": %s",
                                    sqlite, db->sqlite
                                            ? sqlite3_errmsg(db->sqlite)
                                            : "out of memory");
        ngx_ai_relay_cli_db_close(db);
        return rc;
    }

    sqlite3_busy_timeout(db->sqlite, 5000);

    db->what = ngx_ai_relay_cli_sprintf("sqlite %s", sqlite);
    *out = db;

    return NGX_AI_RELAY_CLI_OK;
}


void
ngx_ai_relay_cli_db_close(ngx_ai_relay_cli_db_t *db)
{
    if (db->sqlite) {
        sqlite3_close(db->sqlite);
        db->sqlite = NULL;
    }

    if (db->mysql) {
        mysql_close(db->mysql);
        db->mysql = NULL;
    }
}


const char *
ngx_ai_relay_cli_db_what(ngx_ai_relay_cli_db_t *db)
{
    return db->what;
}


static int
ngx_ai_relay_cli_db_sqlite_table(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_db_t *db, const char *table, json_t **rows)
{
    int            rc, i, n, type;
    json_t        *row;
    const char    *msg;
    sqlite3_stmt  *st;

    rc = sqlite3_prepare_v2(db->sqlite,
                            ngx_ai_relay_cli_sprintf("SELECT * FROM \"%s\"",
                                                     table),
                            -1, &st, NULL);
    if (rc != SQLITE_OK) {
        msg = sqlite3_errmsg(db->sqlite);

        if (strstr(msg, "no such table")) {
            return NGX_AI_RELAY_CLI_DB_NO_TABLE;
        }

        return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_FAILED,
                                      "SQLite: reading %s: %s", table, msg);
    }

    *rows = json_array();
    n = sqlite3_column_count(st);

    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        row = json_object();

        for (i = 0; i < n; i++) {
            type = sqlite3_column_type(st, i);

            json_object_set_new(row, sqlite3_column_name(st, i),
                                type == SQLITE_NULL
                                ? json_null()
                                : json_stringn((const char *)
                                               sqlite3_column_text(st, i),
                                               sqlite3_column_bytes(st, i)));
        }

        json_array_append_new(*rows, row);
    }

    if (rc != SQLITE_DONE) {
        msg = sqlite3_errmsg(db->sqlite);
        sqlite3_finalize(st);
        json_decref(*rows);
        *rows = NULL;
        return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_FAILED,
                                      "SQLite: reading %s: %s", table, msg);
    }

    sqlite3_finalize(st);

    return NGX_AI_RELAY_CLI_OK;
}


static int
ngx_ai_relay_cli_db_mysql_table(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_db_t *db, const char *table, json_t **rows)
{
    unsigned int    i, n;
    json_t         *row;
    MYSQL_ROW       r;
    MYSQL_RES      *res;
    MYSQL_FIELD    *fields;
    unsigned long  *lens;

    if (mysql_query(db->mysql, ngx_ai_relay_cli_sprintf("SELECT * FROM `%s`",
                                                        table))
        != 0)
    {
        if (mysql_errno(db->mysql) == ER_NO_SUCH_TABLE) {
            return NGX_AI_RELAY_CLI_DB_NO_TABLE;
        }

        return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_FAILED,
                                      "MySQL: reading %s: %s", table,
                                      mysql_error(db->mysql));
    }

    res = mysql_store_result(db->mysql);

    if (res == NULL) {
        return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_FAILED,
                                      "MySQL: reading %s: %s", table,
                                      mysql_error(db->mysql));
    }

    n = mysql_num_fields(res);
    fields = mysql_fetch_fields(res);
    *rows = json_array();

    while ((r = mysql_fetch_row(res)) != NULL) {
        lens = mysql_fetch_lengths(res);
        row = json_object();

        for (i = 0; i < n; i++) {
            json_object_set_new(row, fields[i].name,
                                r[i] == NULL ? json_null()
                                             : json_stringn(r[i], lens[i]));
        }

        json_array_append_new(*rows, row);
    }

    mysql_free_result(res);

    return NGX_AI_RELAY_CLI_OK;
}


/*
 * All rows of a table: OK, NGX_AI_RELAY_CLI_DB_NO_TABLE (not reported),
 * or FAILED (reported).
 */
int
ngx_ai_relay_cli_db_table(ngx_ai_relay_cli_t *cli, ngx_ai_relay_cli_db_t *db,
    const char *table, json_t **rows)
{
    *rows = NULL;

    if (db->mysql) {
        return ngx_ai_relay_cli_db_mysql_table(cli, db, table, rows);
    }

    return ngx_ai_relay_cli_db_sqlite_table(cli, db, table, rows);
}
