
/*
 * Copyright (C) ngx_ai_relay authors
 *
 * ai-relay import: users, balances, keys, channels, model routing and
 * prices from a One API or New API database (SQLite or MySQL).
 *
 * Everything is read and translated first; anything that cannot be
 * translated is listed with the reason.  The Redis side (compare, then
 * one MULTI/EXEC) is in ngx_ai_relay_cli_sync.c.
 *
 * Ids are kept (plus --id-offset): their user 5 is our user 5, their
 * token 12 our key 12, their channel 3 our channel 3; the "source" field
 * ("one-api:5") tells what was imported, so a second run finds its own
 * objects and changes only what differs.
 */


#include <math.h>

#include "ngx_ai_relay_cli.h"
#include "ngx_ai_relay_cli_import.h"
#include "ngx_ai_relay_key.h"
#include "ngx_ai_relay_price.h"


typedef struct {
    int                           type;
    const char                   *provider;
    const char                   *base_url;      /* NULL: must be given */
    const char                   *name;
} ngx_ai_relay_cli_import_type_t;


/* the ratio settings of the source, parsed */
typedef struct {
    json_t                       *model;         /* ModelRatio */
    json_t                       *completion;    /* CompletionRatio */
    json_t                       *group;         /* GroupRatio */
    json_t                       *price;         /* ModelPrice (New API) */
    json_t                       *cache;         /* CacheRatio */
    json_t                       *create_cache;  /* CreateCacheRatio */
    ngx_ai_relay_price_ratio_t    group_default;
    unsigned                      has_group:1;
} ngx_ai_relay_cli_import_ratios_t;


static int ngx_ai_relay_cli_import(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_args_t *args);


static const ngx_ai_relay_cli_opt_t  ngx_ai_relay_cli_import_opts[] = {
    { "from", 1, 0 },
    { "sqlite", 1, 0 },
    { "mysql", 1, 0 },
    { "dry-run", 0, 0 },
    { "source", 1, 0 },
    { "id-offset", 1, 0 },
    { "sync-balances", 0, 0 },
    { "strict", 0, 0 },
    { NULL, 0, 0 }
};


ngx_ai_relay_cli_command_t  ngx_ai_relay_cli_import_commands[] = {

    { "import", NULL, ngx_ai_relay_cli_import,
      ngx_ai_relay_cli_import_opts, 0, 0,
      "import --from one-api|new-api (--sqlite FILE | --mysql DSN) "
      "[--dry-run] [--source TAG] [--id-offset N] [--sync-balances] "
      "[--strict]",
      "Move users and balances, keys, channels, model routing and prices\n"
      "from a One API or New API database.  Nothing is written until all\n"
      "of it is read and translated; then everything is written in one\n"
      "MULTI/EXEC.  A second run changes only what differs.\n"
      "  --sqlite FILE       the database file (e.g. one-api.db)\n"
      "  --mysql DSN         \"host=H;port=P;user=U;password=W;db=D\" or\n"
      "                      \"socket=/path;user=U;db=D\"\n"
      "  --dry-run           show what would change, write nothing\n"
      "  --source TAG        the tag recorded in each object's \"source\"\n"
      "                      field (default: the --from name); use one per\n"
      "                      database when importing several\n"
      "  --id-offset N       add N to user, key and channel ids (to keep\n"
      "                      several databases apart)\n"
      "  --sync-balances     on a later run also overwrite balances, key\n"
      "                      quotas and usage counters with the source's\n"
      "                      (default: set only when first imported, since\n"
      "                      the relay is authoritative afterwards)\n"
      "  --strict            write nothing if anything cannot be imported\n"
      "                      exactly\n"
      "Exit status 1 (nothing written) if an id or key is already used by\n"
      "something that was not imported from this source.\n" },

    { NULL, NULL, NULL, NULL, 0, 0, NULL, NULL }
};


static const ngx_ai_relay_cli_import_type_t  ngx_ai_relay_cli_one_api_types[]
    = {
    { 1, "openai", "https://api.openai.com", "OpenAI" },
    { 8, "openai-compatible", NULL, "Custom" },
    { 14, "anthropic", "https://api.anthropic.com", "Anthropic" },
    { 20, "openai-compatible", "https://openrouter.ai/api", "OpenRouter" },
    { 24, "gemini", "https://generativelanguage.googleapis.com", "Gemini" },
    { 25, "openai-compatible", "https://api.moonshot.cn", "Moonshot" },
    { 28, "openai-compatible", "https://api.mistral.ai", "Mistral" },
    { 29, "openai-compatible", "https://api.groq.com/openai", "Groq" },
    { 36, "openai-compatible", "https://api.deepseek.com", "DeepSeek" },
    { 44, "openai-compatible", "https://api.siliconflow.cn", "SiliconFlow" },
    { 45, "openai-compatible", "https://api.x.ai", "xAI" },
    { 50, "openai-compatible", NULL, "OpenAI compatible" },
    { 0, NULL, NULL, NULL }
};


static const ngx_ai_relay_cli_import_type_t  ngx_ai_relay_cli_new_api_types[]
    = {
    { 1, "openai", "https://api.openai.com", "OpenAI" },
    { 14, "anthropic", "https://api.anthropic.com", "Anthropic" },
    { 20, "openai-compatible", "https://openrouter.ai/api", "OpenRouter" },
    { 24, "gemini", "https://generativelanguage.googleapis.com", "Gemini" },
    { 25, "openai-compatible", "https://api.moonshot.cn", "Moonshot" },
    { 40, "openai-compatible", "https://api.siliconflow.cn", "SiliconFlow" },
    { 42, "openai-compatible", "https://api.mistral.ai", "Mistral" },
    { 43, "openai-compatible", "https://api.deepseek.com", "DeepSeek" },
    { 48, "openai-compatible", "https://api.x.ai", "xAI" },
    { 0, NULL, NULL, NULL }
};


void
ngx_ai_relay_cli_import_skip(ngx_ai_relay_cli_import_t *im, const char *kind,
    const char *id, const char *fmt, ...)
{
    int       n;
    char     *msg;
    va_list   ap;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);

    msg = ngx_ai_relay_cli_alloc(n + 1);

    va_start(ap, fmt);
    vsnprintf(msg, n + 1, fmt, ap);
    va_end(ap);

    json_array_append_new(im->skipped, json_pack("{s:s,s:s,s:s}",
                                                 "kind", kind, "id", id,
                                                 "reason", msg));
}


void
ngx_ai_relay_cli_import_note(ngx_ai_relay_cli_import_t *im, const char *fmt,
    ...)
{
    int       n;
    char     *msg;
    va_list   ap;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);

    msg = ngx_ai_relay_cli_alloc(n + 1);

    va_start(ap, fmt);
    vsnprintf(msg, n + 1, fmt, ap);
    va_end(ap);

    json_array_append_new(im->notes, json_string(msg));
}


/* a column as a string, NULL if NULL or missing */
static const char *
ngx_ai_relay_cli_col(json_t *row, const char *col)
{
    return json_string_value(json_object_get(row, col));
}


/* a column as text: "" if NULL or missing, surrounding spaces dropped */
static char *
ngx_ai_relay_cli_col_text(json_t *row, const char *col)
{
    size_t       n;
    const char  *s;

    s = ngx_ai_relay_cli_col(row, col);

    if (s == NULL) {
        return "";
    }

    while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n') {
        s++;
    }

    n = strlen(s);

    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'
                 || s[n - 1] == '\n'))
    {
        n--;
    }

    return ngx_ai_relay_cli_strndup(s, n);
}


/* an integer column; def if NULL, missing or not an integer */
static int64_t
ngx_ai_relay_cli_col_int(json_t *row, const char *col, int64_t def)
{
    double       d;
    char        *end;
    int64_t      v;
    const char  *s;

    s = ngx_ai_relay_cli_col(row, col);

    if (s == NULL) {
        return def;
    }

    if (ngx_ai_relay_cli_parse_int(s, INT64_MIN, INT64_MAX, &v) == 0) {
        return v;
    }

    /* "5.0" from a REAL column */

    d = strtod(s, &end);

    if (*end == '\0' && d == floor(d) && fabs(d) < 9e15) {
        return (int64_t) d;
    }

    return def;
}


static int
ngx_ai_relay_cli_col_bool(json_t *row, const char *col)
{
    const char  *s;

    s = ngx_ai_relay_cli_col(row, col);

    return s && (strcmp(s, "1") == 0 || strcasecmp(s, "true") == 0
                 || strcasecmp(s, "t") == 0);
}


static int
ngx_ai_relay_cli_row_cmp(const void *a, const void *b)
{
    int64_t  ia, ib;

    ia = ngx_ai_relay_cli_col_int(*(json_t *const *) a, "id", 0);
    ib = ngx_ai_relay_cli_col_int(*(json_t *const *) b, "id", 0);

    return (ia > ib) - (ia < ib);
}


/* rows in id order, as a C array (borrowed references) */
static json_t **
ngx_ai_relay_cli_rows_sorted(json_t *rows, size_t *n)
{
    size_t    i;
    json_t  **out;

    *n = json_array_size(rows);
    out = ngx_ai_relay_cli_alloc((*n + 1) * sizeof(json_t *));

    for (i = 0; i < *n; i++) {
        out[i] = json_array_get(rows, i);
    }

    if (*n > 1) {
        qsort(out, *n, sizeof(json_t *), ngx_ai_relay_cli_row_cmp);
    }

    return out;
}


static char *
ngx_ai_relay_cli_import_id(ngx_ai_relay_cli_import_t *im, int64_t src)
{
    return ngx_ai_relay_cli_sprintf("%" PRId64, src + im->offset);
}


static const ngx_ai_relay_cli_import_type_t *
ngx_ai_relay_cli_import_type(ngx_ai_relay_cli_import_t *im, int64_t type)
{
    const ngx_ai_relay_cli_import_type_t  *t;

    t = im->new_api ? ngx_ai_relay_cli_new_api_types
                    : ngx_ai_relay_cli_one_api_types;

    for ( /* void */ ; t->provider; t++) {
        if (t->type == type) {
            return t;
        }
    }

    return NULL;
}


/* ------------------------------------------------------------- users */


static void
ngx_ai_relay_cli_import_users(ngx_ai_relay_cli_import_t *im, json_t *rows,
    json_t *groups)
{
    char     *uid, *name, *group, *src;
    size_t    i, n;
    json_t  **sorted, *row, *sync, *initial;
    int64_t   id, quota, used, created;

    sorted = ngx_ai_relay_cli_rows_sorted(rows, &n);

    for (i = 0; i < n; i++) {
        row = sorted[i];
        id = ngx_ai_relay_cli_col_int(row, "id", 0);
        src = ngx_ai_relay_cli_sprintf("%" PRId64, id);

        if (id <= 0) {
            ngx_ai_relay_cli_import_skip(im, "user", src, "invalid id");
            continue;
        }

        if (ngx_ai_relay_cli_col(row, "deleted_at")) {
            ngx_ai_relay_cli_import_skip(im, "user", src,
                                         "deleted in %s", im->from);
            continue;
        }

        uid = ngx_ai_relay_cli_import_id(im, id);
        name = ngx_ai_relay_cli_col_text(row, "username");

        if (name[0] == '\0' || strchr(name, '\n')) {
            name = ngx_ai_relay_cli_sprintf("user%s", uid);
        }

        if (ngx_ai_relay_price_quota_to_micro(
                ngx_ai_relay_cli_col_int(row, "quota", 0), &quota)
            != NGX_AI_RELAY_PRICE_OK
            || ngx_ai_relay_price_quota_to_micro(
                ngx_ai_relay_cli_col_int(row, "used_quota", 0), &used)
            != NGX_AI_RELAY_PRICE_OK)
        {
            ngx_ai_relay_cli_import_skip(im, "user", src,
                                         "quota out of range");
            continue;
        }

        group = ngx_ai_relay_cli_col_text(row, "group");

        if (group[0] == '\0') {
            group = "default";
        }

        created = ngx_ai_relay_cli_col_int(row, "created_at", 0);

        if (created <= 0) {
            created = im->cli->now;
        }

        sync = json_pack("{s:s,s:s,s:s,s:s}",
                         "name", name,
                         "status", ngx_ai_relay_cli_col_int(row, "status", 1)
                                   == 1 ? "active" : "disabled",
                         "group", group,
                         "source", ngx_ai_relay_cli_sprintf("%s:%s", im->tag,
                                                            src));

        initial = json_pack("{s:s,s:s,s:s,s:s,s:s}",
                  "balance", ngx_ai_relay_cli_sprintf("%" PRId64, quota),
                  "unlimited", "0",
                  "used", ngx_ai_relay_cli_sprintf("%" PRId64, used),
                  "requests", ngx_ai_relay_cli_sprintf("%" PRId64,
                      ngx_ai_relay_cli_col_int(row, "request_count", 0)),
                  "created", ngx_ai_relay_cli_sprintf("%" PRId64, created));

        json_object_set_new(im->users, uid, json_pack("{s:s,s:o,s:o}",
                                                "src", src, "sync", sync,
                                                "initial", initial));

        json_object_set_new(groups, group, json_integer(
                 json_integer_value(json_object_get(groups, group)) + 1));

        if (id + im->offset > im->max_user) {
            im->max_user = id + im->offset;
        }
    }
}


/* ------------------------------------------------------------ tokens */


static void
ngx_ai_relay_cli_import_tokens(ngx_ai_relay_cli_import_t *im, json_t *rows)
{
    char      *kid, *uid, *src, *plain, *models, *name, *status, *v;
    char       hash[NGX_AI_RELAY_KEY_HASH_LEN + 1];
    size_t     i, n, m;
    json_t   **sorted, *row, *sync, *initial;
    int64_t    id, st, expires, quota, used;
    ngx_ai_relay_cli_list_t  list, ok;

    sorted = ngx_ai_relay_cli_rows_sorted(rows, &n);

    for (i = 0; i < n; i++) {
        row = sorted[i];
        id = ngx_ai_relay_cli_col_int(row, "id", 0);
        src = ngx_ai_relay_cli_sprintf("%" PRId64, id);

        if (id <= 0) {
            ngx_ai_relay_cli_import_skip(im, "key", src, "invalid id");
            continue;
        }

        if (ngx_ai_relay_cli_col(row, "deleted_at")) {
            ngx_ai_relay_cli_import_skip(im, "key", src, "deleted in %s",
                                         im->from);
            continue;
        }

        uid = ngx_ai_relay_cli_import_id(im,
                               ngx_ai_relay_cli_col_int(row, "user_id", 0));

        if (json_object_get(im->users, uid) == NULL) {
            ngx_ai_relay_cli_import_skip(im, "key", src,
                                         "its user %" PRId64 " is not "
                                         "imported",
                                         ngx_ai_relay_cli_col_int(row,
                                                            "user_id", 0));
            continue;
        }

        v = ngx_ai_relay_cli_col_text(row, "key");
        plain = ngx_ai_relay_cli_sprintf("sk-%s", v);

        if (v[0] == '\0'
            || !ngx_ai_relay_key_valid((const unsigned char *) plain,
                                       strlen(plain)))
        {
            ngx_ai_relay_cli_import_skip(im, "key", src,
                                         "the key is empty or not printable");
            continue;
        }

        if (ngx_ai_relay_key_hash((const unsigned char *) plain,
                                  strlen(plain), hash)
            != 0)
        {
            ngx_ai_relay_cli_import_skip(im, "key", src, "SHA-256 failed");
            continue;
        }

        kid = ngx_ai_relay_cli_import_id(im, id);

        st = ngx_ai_relay_cli_col_int(row, "status", 1);

        switch (st) {
        case 1:
            status = "active";
            break;
        case 2:
            status = "disabled";
            break;
        case 3:
            status = "expired";
            break;
        case 4:
            status = "exhausted";
            break;
        default:
            status = "disabled";
            ngx_ai_relay_cli_import_note(im, "key %s: unknown status %" PRId64
                                         ", imported disabled", kid, st);
        }

        expires = ngx_ai_relay_cli_col_int(row, "expired_time", -1);

        if (expires == -1) {
            expires = 0;

        } else if (expires <= 0) {
            /* the source treats it as long expired */
            expires = 1;
        }

        /* allowed models */

        memset(&list, 0, sizeof(list));
        memset(&ok, 0, sizeof(ok));

        if (im->new_api) {
            if (ngx_ai_relay_cli_col_bool(row, "model_limits_enabled")) {
                ngx_ai_relay_cli_list_split(&list,
                        ngx_ai_relay_cli_col_text(row, "model_limits"), ",");

                if (list.nelts == 0) {
                    status = "disabled";
                    ngx_ai_relay_cli_import_note(im, "key %s: model limits "
                        "are on with an empty list (no model allowed); "
                        "imported disabled", kid);
                }
            }

        } else {
            ngx_ai_relay_cli_list_split(&list,
                              ngx_ai_relay_cli_col_text(row, "models"), ",");
        }

        for (m = 0; m < list.nelts; m++) {
            if (!ngx_ai_relay_cli_valid_name(list.elts[m])) {
                ngx_ai_relay_cli_import_note(im, "key %s: model name \"%s\" "
                                             "dropped from its allowed "
                                             "models", kid, list.elts[m]);
                continue;
            }

            if (!ngx_ai_relay_cli_list_has(&ok, list.elts[m])) {
                ngx_ai_relay_cli_list_push(&ok, list.elts[m]);
            }
        }

        if (list.nelts && ok.nelts == 0) {
            status = "disabled";
            ngx_ai_relay_cli_import_note(im, "key %s: none of its allowed "
                                         "models is valid; imported "
                                         "disabled", kid);
        }

        models = ngx_ai_relay_cli_list_join(&ok, ",");

        /* its own budget */

        if (ngx_ai_relay_cli_col_bool(row, "unlimited_quota")) {
            quota = -1;

        } else {
            if (ngx_ai_relay_price_quota_to_micro(
                    ngx_ai_relay_cli_col_int(row, "remain_quota", 0), &quota)
                != NGX_AI_RELAY_PRICE_OK)
            {
                ngx_ai_relay_cli_import_skip(im, "key", src,
                                             "remain_quota out of range");
                continue;
            }

            if (quota < 0) {
                ngx_ai_relay_cli_import_note(im, "key %s: remain_quota is "
                                             "negative; imported as 0", kid);
                quota = 0;
            }
        }

        if (ngx_ai_relay_price_quota_to_micro(
                ngx_ai_relay_cli_col_int(row, "used_quota", 0), &used)
            != NGX_AI_RELAY_PRICE_OK)
        {
            used = 0;
        }

        v = ngx_ai_relay_cli_col_text(row, im->new_api ? "allow_ips"
                                                       : "subnet");
        if (v[0]) {
            ngx_ai_relay_cli_import_note(im, "key %s: its IP restriction "
                                         "\"%s\" is not supported and was "
                                         "dropped", kid, v);
        }

        name = ngx_ai_relay_cli_col_text(row, "name");

        if (strchr(name, '\n')) {
            name = "";
        }

        sync = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s}",
                   "id", kid,
                   "name", name,
                   "masked", ngx_ai_relay_cli_mask(plain),
                   "status", status,
                   "expires", ngx_ai_relay_cli_sprintf("%" PRId64, expires),
                   "models", models,
                   "source", ngx_ai_relay_cli_sprintf("%s:%s", im->tag, src));

        initial = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s}",
                  "rpm", "0", "tpm", "0",
                  "quota", ngx_ai_relay_cli_sprintf("%" PRId64, quota),
                  "unlimited", "0",
                  "used", ngx_ai_relay_cli_sprintf("%" PRId64, used),
                  "requests", "0",
                  "created", ngx_ai_relay_cli_sprintf("%" PRId64,
                       ngx_ai_relay_cli_col_int(row, "created_time",
                                                im->cli->now)));

        json_object_set_new(im->keys, kid, json_pack("{s:s,s:s,s:s,s:o,s:o}",
                                                 "uid", uid, "sha", hash,
                                                 "src", src, "sync", sync,
                                                 "initial", initial));

        if (id + im->offset > im->max_key) {
            im->max_key = id + im->offset;
        }
    }
}


/* ---------------------------------------------------------- channels */


/* the upstream keys of a channel: newline-separated or a JSON array */
static int
ngx_ai_relay_cli_import_channel_keys(ngx_ai_relay_cli_import_t *im,
    json_t *row, const char *id, ngx_ai_relay_cli_list_t *keys)
{
    char                    *raw;
    size_t                   i;
    json_t                  *arr, *v, *info, *st;
    ngx_ai_relay_cli_list_t  all;

    memset(&all, 0, sizeof(all));

    raw = ngx_ai_relay_cli_col_text(row, "key");

    if (raw[0] == '[') {
        arr = json_loads(raw, 0, NULL);

        json_array_foreach(arr, i, v) {
            if (json_is_string(v)) {
                ngx_ai_relay_cli_list_push(&all, ngx_ai_relay_cli_strdup(
                                                   json_string_value(v)));
            }
        }

        json_decref(arr);

    } else {
        ngx_ai_relay_cli_list_split(&all, raw, "\n");
    }

    /* New API: keys of a multi-key channel may be disabled one by one */

    info = NULL;

    if (ngx_ai_relay_cli_col(row, "channel_info")) {
        info = json_loads(ngx_ai_relay_cli_col(row, "channel_info"), 0, NULL);
    }

    for (i = 0; i < all.nelts; i++) {
        st = json_object_get(json_object_get(info, "multi_key_status_list"),
                             ngx_ai_relay_cli_sprintf("%zu", i));

        if (st && json_integer_value(st) != 1) {
            ngx_ai_relay_cli_import_note(im, "channel %s: upstream key %zu "
                                         "is disabled in %s; not imported",
                                         id, i + 1, im->from);
            continue;
        }

        if (!ngx_ai_relay_cli_valid_upstream_key(all.elts[i])) {
            ngx_ai_relay_cli_import_note(im, "channel %s: upstream key %zu "
                                         "is not printable ASCII; not "
                                         "imported", id, i + 1);
            continue;
        }

        ngx_ai_relay_cli_list_push(keys, all.elts[i]);
    }

    json_decref(info);

    return (int) keys->nelts;
}


static void
ngx_ai_relay_cli_import_channel_extras(ngx_ai_relay_cli_import_t *im,
    json_t *row, const char *id)
{
    size_t       i;
    const char  *v;

    static const char  *ignored[] = {
        "system_prompt", "config", "param_override", "header_override",
        "status_code_mapping", "setting", "openai_organization", NULL
    };

    for (i = 0; ignored[i]; i++) {
        v = ngx_ai_relay_cli_col_text(row, ignored[i]);

        if (v[0] && strcmp(v, "{}") != 0 && strcmp(v, "null") != 0
            && strcmp(v, "[]") != 0)
        {
            ngx_ai_relay_cli_import_note(im, "channel %s: its %s is not "
                                         "supported and was ignored", id,
                                         ignored[i]);
        }
    }
}


/*
 * Channels: their hash fields except map: (added once the models each
 * channel serves are known).  *mappings gets id -> model_mapping object.
 */
static void
ngx_ai_relay_cli_import_channels(ngx_ai_relay_cli_import_t *im,
    json_t *rows, json_t *mappings, json_t *groups)
{
    int                                    ok;
    char                                  *cid, *src, *base, *name, *raw;
    char                                  *models;
    size_t                                 i, n, k;
    json_t                               **sorted, *row, *map, *v, *mv;
    json_t                                *sync;
    int64_t                                id, type, weight;
    const char                            *f;
    ngx_ai_relay_cli_list_t                keys, gl;
    const ngx_ai_relay_cli_import_type_t  *t;

    sorted = ngx_ai_relay_cli_rows_sorted(rows, &n);

    for (i = 0; i < n; i++) {
        row = sorted[i];
        id = ngx_ai_relay_cli_col_int(row, "id", 0);
        src = ngx_ai_relay_cli_sprintf("%" PRId64, id);

        if (id <= 0) {
            ngx_ai_relay_cli_import_skip(im, "channel", src, "invalid id");
            continue;
        }

        cid = ngx_ai_relay_cli_import_id(im, id);
        type = ngx_ai_relay_cli_col_int(row, "type", 0);
        t = ngx_ai_relay_cli_import_type(im, type);

        if (t == NULL) {
            if (type == 3) {
                ngx_ai_relay_cli_import_skip(im, "channel", src,
                    "type 3 (Azure OpenAI) needs deployment URLs and the "
                    "api-key header; no ai-relay provider does that");

            } else if (type == 8 && im->new_api) {
                ngx_ai_relay_cli_import_skip(im, "channel", src,
                    "type 8 (Custom) takes a full request URL template in "
                    "New API; create it with \"channels create\"");

            } else {
                ngx_ai_relay_cli_import_skip(im, "channel", src,
                    "type %" PRId64 " has no ai-relay provider", type);
            }

            continue;
        }

        raw = ngx_ai_relay_cli_col_text(row, "base_url");

        if (raw[0] == '\0') {
            if (t->base_url == NULL) {
                ngx_ai_relay_cli_import_skip(im, "channel", src,
                    "type %" PRId64 " (%s) needs a base URL and has none",
                    type, t->name);
                continue;
            }

            raw = (char *) t->base_url;
        }

        base = ngx_ai_relay_cli_base_url(raw);

        if (base == NULL) {
            ngx_ai_relay_cli_import_skip(im, "channel", src,
                                         "invalid base URL \"%s\"", raw);
            continue;
        }

        memset(&keys, 0, sizeof(keys));

        if (ngx_ai_relay_cli_import_channel_keys(im, row, cid, &keys) == 0) {
            ngx_ai_relay_cli_import_skip(im, "channel", src,
                                         "no usable upstream key");
            continue;
        }

        /* model_mapping: a JSON object of strings */

        raw = ngx_ai_relay_cli_col_text(row, "model_mapping");
        map = json_object();
        ok = 1;

        if (raw[0] && strcmp(raw, "null") != 0) {
            v = json_loads(raw, JSON_REJECT_DUPLICATES, NULL);
            ok = json_is_object(v);

            json_object_foreach(v, f, mv) {
                if (!json_is_string(mv)) {
                    ok = 0;
                    break;
                }

                if (json_string_value(mv)[0]) {
                    json_object_set(map, f, mv);
                }
            }

            json_decref(v);
        }

        if (!ok) {
            json_decref(map);
            ngx_ai_relay_cli_import_skip(im, "channel", src,
                "model_mapping is not a JSON object of strings");
            continue;
        }

        weight = 1;

        if (im->new_api) {
            /* New API picks by weight + 10 */
            weight = ngx_ai_relay_cli_col_int(row, "weight", 0);
            weight = (weight < 0 ? 0 : weight) + 10;
        }

        name = ngx_ai_relay_cli_col_text(row, "name");

        if (name[0] == '\0' || strchr(name, '\n')) {
            name = ngx_ai_relay_cli_sprintf("channel-%s", cid);
        }

        ngx_ai_relay_cli_models_csv(ngx_ai_relay_cli_col_text(row, "models"),
                                    &models);

        sync = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s}",
                  "name", name,
                  "provider", t->provider,
                  "base_url", base,
                  "keys", ngx_ai_relay_cli_list_join(&keys, "\n"),
                  "priority", ngx_ai_relay_cli_sprintf("%" PRId64,
                                ngx_ai_relay_cli_col_int(row, "priority", 0)),
                  "weight", ngx_ai_relay_cli_sprintf("%" PRId64, weight),
                  "status", ngx_ai_relay_cli_col_int(row, "status", 1) == 1
                            ? "enabled" : "disabled",
                  "models", models ? models : "",
                  "source", ngx_ai_relay_cli_sprintf("%s:%s", im->tag, src));

        json_object_set_new(im->channels, cid, json_pack("{s:s,s:I,s:o}",
                                           "src", src, "type",
                                           (json_int_t) type, "sync", sync));
        json_object_set_new(mappings, cid, map);

        memset(&gl, 0, sizeof(gl));
        ngx_ai_relay_cli_list_split(&gl, ngx_ai_relay_cli_col_text(row,
                                                                   "group"),
                                    ",");

        for (k = 0; k < gl.nelts; k++) {
            json_object_set_new(groups, gl.elts[k], json_true());
        }

        ngx_ai_relay_cli_import_channel_extras(im, row, cid);

        if (id + im->offset > im->max_channel) {
            im->max_channel = id + im->offset;
        }
    }
}


/* ------------------------------------------------------------ models */


/*
 * The name channel cid sends model upstream, NULL if that cannot be
 * known (New API mapping cycle).  One API maps once; New API follows
 * chains.
 */
static const char *
ngx_ai_relay_cli_import_upstream(ngx_ai_relay_cli_import_t *im, json_t *map,
    const char *model)
{
    const char              *cur, *next;
    ngx_ai_relay_cli_list_t  seen;

    next = json_string_value(json_object_get(map, model));

    if (next == NULL || next[0] == '\0') {
        return model;
    }

    if (!im->new_api) {
        return next;
    }

    memset(&seen, 0, sizeof(seen));
    ngx_ai_relay_cli_list_push(&seen, (char *) model);
    cur = model;

    for ( ;; ) {
        next = json_string_value(json_object_get(map, cur));

        if (next == NULL || next[0] == '\0' || strcmp(next, cur) == 0) {
            return cur;
        }

        if (ngx_ai_relay_cli_list_has(&seen, next)) {
            return NULL;
        }

        ngx_ai_relay_cli_list_push(&seen, (char *) next);
        cur = next;
    }
}


/*
 * served: model -> [channel ids] from the abilities (or, without them,
 * from each channel's models); then per channel the map: fields, and per
 * model an alias or a channel list.
 */
static void
ngx_ai_relay_cli_import_models(ngx_ai_relay_cli_import_t *im,
    json_t *abilities, json_t *mappings, json_t *channel_rows)
{
    int                      alias;
    char                    *cid;
    void                    *tmp;
    size_t                   i, k;
    json_t                  *served, *row, *list, *ch, *sync, *map, *blist;
    json_t                  *ups, *u;
    const char              *model, *up, *b, *f;
    ngx_ai_relay_cli_list_t  l, ids;

    served = json_object();

    if (abilities && json_array_size(abilities)) {
        json_array_foreach(abilities, i, row) {
            cid = ngx_ai_relay_cli_import_id(im,
                            ngx_ai_relay_cli_col_int(row, "channel_id", 0));
            model = ngx_ai_relay_cli_col_text(row, "model");

            if (json_object_get(im->channels, cid) == NULL
                || model[0] == '\0')
            {
                continue;
            }

            list = json_object_get(served, model);

            if (list == NULL) {
                list = json_object();
                json_object_set_new(served, model, list);
            }

            json_object_set_new(list, cid, json_true());
        }

    } else {
        ngx_ai_relay_cli_import_note(im, "no abilities: routing derived "
                                     "from the channels' model lists");

        json_array_foreach(channel_rows, i, row) {
            cid = ngx_ai_relay_cli_import_id(im,
                                    ngx_ai_relay_cli_col_int(row, "id", 0));

            if (json_object_get(im->channels, cid) == NULL) {
                continue;
            }

            memset(&l, 0, sizeof(l));
            ngx_ai_relay_cli_list_split(&l, ngx_ai_relay_cli_col_text(row,
                                                                  "models"),
                                        ",");

            for (k = 0; k < l.nelts; k++) {
                list = json_object_get(served, l.elts[k]);

                if (list == NULL) {
                    list = json_object();
                    json_object_set_new(served, l.elts[k], list);
                }

                json_object_set_new(list, cid, json_true());
            }
        }
    }

    /* per model and channel: the upstream name; drop what cannot work */

    memset(&l, 0, sizeof(l));

    json_object_foreach(served, model, list) {
        ngx_ai_relay_cli_list_push(&l, (char *) model);
    }

    ngx_ai_relay_cli_list_sort(&l);

    ups = json_object();

    for (i = 0; i < l.nelts; i++) {
        model = l.elts[i];
        list = json_object_get(served, model);

        if (!ngx_ai_relay_cli_valid_name(model)) {
            ngx_ai_relay_cli_import_skip(im, "model", model,
                                         "not a valid model name (spaces, "
                                         "commas or '|')");
            continue;
        }

        u = json_object();

        json_object_foreach_safe(list, tmp, f, ch) {
            map = json_object_get(mappings, f);
            up = ngx_ai_relay_cli_import_upstream(im, map, model);

            if (up == NULL) {
                ngx_ai_relay_cli_import_note(im, "channel %s: model_mapping "
                    "of %s is a cycle (New API refuses it); the channel "
                    "does not serve it", f, model);
                continue;
            }

            if (!ngx_ai_relay_cli_valid_name(up)) {
                ngx_ai_relay_cli_import_note(im, "channel %s: %s maps to an "
                    "invalid name \"%s\"; the channel does not serve it",
                    f, model, up);
                continue;
            }

            json_object_set_new(u, f, json_string(up));
        }

        if (json_object_size(u) == 0) {
            json_decref(u);
            ngx_ai_relay_cli_import_skip(im, "model", model,
                                         "no channel can serve it");
            continue;
        }

        json_object_set_new(ups, model, u);
    }

    json_decref(served);

    /* map: fields of the channels */

    json_object_foreach(ups, model, list) {
        json_object_foreach(list, f, ch) {
            if (strcmp(json_string_value(ch), model) != 0) {
                sync = json_object_get(json_object_get(im->channels, f),
                                       "sync");
                json_object_set(sync, ngx_ai_relay_cli_sprintf("map:%s",
                                                               model), ch);
            }
        }
    }

    /*
     * An alias M -> B when every channel of M sends it as B, the same
     * channels serve B, and they send B as B: then the alias is routed
     * exactly like the mapping, and prices follow the chain.
     */

    json_object_foreach(ups, model, list) {
        b = NULL;
        alias = 1;

        json_object_foreach(list, f, ch) {
            up = json_string_value(ch);

            if (strcmp(up, model) == 0 || (b && strcmp(b, up) != 0)) {
                alias = 0;
                break;
            }

            b = up;
        }

        blist = b ? json_object_get(ups, b) : NULL;

        if (alias && blist && json_object_size(blist) == json_object_size(list))
        {
            json_object_foreach(list, f, ch) {
                up = json_string_value(json_object_get(blist, f));

                if (up == NULL || strcmp(up, b) != 0) {
                    alias = 0;
                    break;
                }
            }

        } else {
            alias = 0;
        }

        memset(&ids, 0, sizeof(ids));

        json_object_foreach(list, f, ch) {
            ngx_ai_relay_cli_list_push(&ids, (char *) f);
        }

        ngx_ai_relay_cli_list_sort_num(&ids);

        row = json_array();

        for (k = 0; k < ids.nelts; k++) {
            json_array_append_new(row, json_string(ids.elts[k]));
        }

        if (alias) {
            /* the channels are kept for when the alias cannot be made */
            json_object_set_new(im->models, model,
                                json_pack("{s:s,s:o}", "alias", b,
                                          "channels", row));

        } else {
            json_object_set_new(im->models, model,
                                json_pack("{s:o,s:O}", "channels", row,
                                          "upstream", list));
        }
    }

    json_decref(ups);
}


/* ------------------------------------------------------------ prices */


/* a JSON number as an exact decimal: the shortest text that round-trips */
static int
ngx_ai_relay_cli_import_ratio(json_t *v, ngx_ai_relay_price_ratio_t *r,
    char **text)
{
    int     p;
    char    buf[64];
    double  d;

    if (json_is_integer(v)) {
        if (json_integer_value(v) < 0) {
            return -1;
        }

        snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT,
                 json_integer_value(v));

    } else if (json_is_real(v)) {
        d = json_real_value(v);

        if (!(d >= 0) || isinf(d)) {
            return -1;
        }

        for (p = 1; p <= 17; p++) {
            snprintf(buf, sizeof(buf), "%.*g", p, d);

            if (strtod(buf, NULL) == d) {
                break;
            }
        }

    } else {
        return -1;
    }

    if (ngx_ai_relay_price_ratio_parse(buf, strlen(buf), r)
        != NGX_AI_RELAY_PRICE_OK)
    {
        return -1;
    }

    if (text) {
        *text = ngx_ai_relay_cli_strdup(buf);
    }

    return 0;
}


/* one ratio map from the options table, or NULL */
static json_t *
ngx_ai_relay_cli_import_option(ngx_ai_relay_cli_import_t *im, json_t *opts,
    const char *name)
{
    json_t       *v;
    const char   *s;
    json_error_t  err;

    s = json_string_value(json_object_get(opts, name));

    if (s == NULL || s[0] == '\0') {
        return NULL;
    }

    v = json_loads(s, 0, &err);

    if (!json_is_object(v)) {
        json_decref(v);
        ngx_ai_relay_cli_import_note(im, "option %s is not a JSON object; "
                                     "ignored", name);
        return NULL;
    }

    return v;
}


static const ngx_ai_relay_price_ratio_t *
ngx_ai_relay_cli_import_get_ratio(ngx_ai_relay_cli_import_t *im, json_t *map,
    const char *option, const char *model, ngx_ai_relay_price_ratio_t *r)
{
    json_t  *v;

    v = json_object_get(map, model);

    if (v == NULL) {
        return NULL;
    }

    if (ngx_ai_relay_cli_import_ratio(v, r, NULL) != 0) {
        ngx_ai_relay_cli_import_note(im, "%s of %s is not a non-negative "
                                     "number; ignored", option, model);
        return NULL;
    }

    return r;
}


static void
ngx_ai_relay_cli_import_inexact(ngx_ai_relay_cli_import_t *im,
    const char *model, const char *field, int rc, int64_t value)
{
    if (rc == NGX_AI_RELAY_PRICE_INEXACT) {
        json_array_append_new(im->inexact, json_pack("{s:s,s:s,s:I,s:s}",
                "model", model, "field", field, "stored", (json_int_t) value,
                "reason", "not a whole micro-USD; rounded up"));
    }
}


/*
 * The price hash fields of billing name "name" (NULL: not priced).
 * rc of the conversions: OK, INEXACT (reported) or worse.
 */
static json_t *
ngx_ai_relay_cli_import_price(ngx_ai_relay_cli_import_t *im,
    ngx_ai_relay_cli_import_ratios_t *rt, const char *model,
    const char *name)
{
    int                                rc;
    json_t                            *p;
    int64_t                            v;
    const ngx_ai_relay_price_ratio_t  *mr, *cr, *cache, *create, *price;
    const ngx_ai_relay_price_ratio_t  *group;
    ngx_ai_relay_price_ratio_t         r1, r2, r3, r4, r5;

    group = rt->has_group ? &rt->group_default : NULL;

    price = ngx_ai_relay_cli_import_get_ratio(im, rt->price, "ModelPrice",
                                              name, &r5);
    mr = ngx_ai_relay_cli_import_get_ratio(im, rt->model, "ModelRatio", name,
                                           &r1);

    if (price == NULL && mr == NULL) {
        return NULL;
    }

    p = json_object();

    if (price) {
        rc = ngx_ai_relay_price_from_model_price(price, group, &v);

        if (rc == NGX_AI_RELAY_PRICE_OVERFLOW) {
            json_decref(p);
            return NULL;
        }

        ngx_ai_relay_cli_import_inexact(im, model, "request", rc, v);
        json_object_set_new(p, "request", json_string(
                                 ngx_ai_relay_cli_sprintf("%" PRId64, v)));
        return p;
    }

    cr = ngx_ai_relay_cli_import_get_ratio(im, rt->completion,
                                           "CompletionRatio", name, &r2);
    cache = ngx_ai_relay_cli_import_get_ratio(im, rt->cache, "CacheRatio",
                                              name, &r3);
    create = ngx_ai_relay_cli_import_get_ratio(im, rt->create_cache,
                                               "CreateCacheRatio", name, &r4);

    if (cr == NULL) {
        ngx_ai_relay_cli_import_note(im, "no CompletionRatio for %s: output "
                                     "priced like input (%s may apply a "
                                     "built-in one)", name, im->from);
    }

    rc = ngx_ai_relay_price_from_model_ratio(mr, group, &v);
    if (rc == NGX_AI_RELAY_PRICE_OVERFLOW) {
        goto overflow;
    }

    ngx_ai_relay_cli_import_inexact(im, model, "input", rc, v);
    json_object_set_new(p, "input", json_string(
                             ngx_ai_relay_cli_sprintf("%" PRId64, v)));

    rc = ngx_ai_relay_price_from_completion_ratio(mr, cr, group, &v);
    if (rc == NGX_AI_RELAY_PRICE_OVERFLOW) {
        goto overflow;
    }

    ngx_ai_relay_cli_import_inexact(im, model, "output", rc, v);
    json_object_set_new(p, "output", json_string(
                             ngx_ai_relay_cli_sprintf("%" PRId64, v)));

    if (cache) {
        rc = ngx_ai_relay_price_from_cache_ratio(mr, cache, group, &v);
        if (rc == NGX_AI_RELAY_PRICE_OVERFLOW) {
            goto overflow;
        }

        ngx_ai_relay_cli_import_inexact(im, model, "cached_input", rc, v);
        json_object_set_new(p, "cached_input", json_string(
                                 ngx_ai_relay_cli_sprintf("%" PRId64, v)));
    }

    if (create) {
        rc = ngx_ai_relay_price_from_cache_ratio(mr, create, group, &v);
        if (rc == NGX_AI_RELAY_PRICE_OVERFLOW) {
            goto overflow;
        }

        ngx_ai_relay_cli_import_inexact(im, model, "cache_write", rc, v);
        json_object_set_new(p, "cache_write", json_string(
                                 ngx_ai_relay_cli_sprintf("%" PRId64, v)));
    }

    return p;

overflow:

    json_decref(p);
    ngx_ai_relay_cli_import_skip(im, "price", model, "price out of range");

    return NULL;
}


/* field-wise maximum of two price objects (into a) */
static void
ngx_ai_relay_cli_price_max(json_t *a, json_t *b)
{
    json_t      *v, *o;
    const char  *f;

    json_object_foreach(b, f, v) {
        o = json_object_get(a, f);

        if (o == NULL
            || atoll(json_string_value(v)) > atoll(json_string_value(o)))
        {
            json_object_set(a, f, v);
        }
    }
}


static int
ngx_ai_relay_cli_ratio_eq(const ngx_ai_relay_price_ratio_t *a,
    const ngx_ai_relay_price_ratio_t *b)
{
    uint64_t  ma, mb;
    int       ea, eb;

    ma = a->mant;
    ea = a->exp10;
    mb = b->mant;
    eb = b->exp10;

    if (ma == 0 || mb == 0) {
        return ma == mb;
    }

    while (ma % 10 == 0) {
        ma /= 10;
        ea++;
    }

    while (mb % 10 == 0) {
        mb /= 10;
        eb++;
    }

    return ma == mb && ea == eb;
}


static void
ngx_ai_relay_cli_import_prices(ngx_ai_relay_cli_import_t *im, json_t *opts,
    json_t *groups)
{
    char                             *text;
    json_t                           *m, *up, *p, *q, *v, *names;
    const char                       *model, *f, *b;
    ngx_ai_relay_price_ratio_t        r;
    ngx_ai_relay_cli_import_ratios_t  rt;

    memset(&rt, 0, sizeof(rt));

    rt.model = ngx_ai_relay_cli_import_option(im, opts, "ModelRatio");
    rt.completion = ngx_ai_relay_cli_import_option(im, opts,
                                                   "CompletionRatio");
    rt.group = ngx_ai_relay_cli_import_option(im, opts, "GroupRatio");

    if (im->new_api) {
        rt.price = ngx_ai_relay_cli_import_option(im, opts, "ModelPrice");
        rt.cache = ngx_ai_relay_cli_import_option(im, opts, "CacheRatio");
        rt.create_cache = ngx_ai_relay_cli_import_option(im, opts,
                                                       "CreateCacheRatio");
    }

    if (rt.model == NULL && rt.price == NULL) {
        ngx_ai_relay_cli_import_note(im, "the options table has no "
            "ModelRatio%s (%s then uses its built-in table): no prices "
            "imported; set them with \"ai-relay prices set\"",
            im->new_api ? " or ModelPrice" : "", im->from);
    }

    /* one group ratio for everybody: the "default" group's */

    v = json_object_get(rt.group, "default");

    if (v && ngx_ai_relay_cli_import_ratio(v, &rt.group_default, &text) == 0)
    {
        rt.has_group = 1;

        if (!ngx_ai_relay_cli_ratio_eq(&rt.group_default,
                                       &(ngx_ai_relay_price_ratio_t) {1, 0}))
        {
            ngx_ai_relay_cli_import_note(im, "prices include GroupRatio %s "
                                         "of group \"default\"", text);
        }
    }

    json_object_foreach(groups, f, v) {
        q = json_object_get(rt.group, f);

        if (q == NULL || strcmp(f, "default") == 0
            || ngx_ai_relay_cli_import_ratio(q, &r, &text) != 0)
        {
            continue;
        }

        if (!ngx_ai_relay_cli_ratio_eq(&r, rt.has_group
                                  ? &rt.group_default
                                  : &(ngx_ai_relay_price_ratio_t) {1, 0}))
        {
            ngx_ai_relay_cli_import_note(im, "group \"%s\" was billed at "
                "GroupRatio %s; ai-relay has no per-group prices and bills "
                "it like group \"default\"", f, text);
        }
    }

    /* channel-type-specific ratios ("name(14)") are One API only */

    names = json_object();

    json_object_foreach(rt.model, f, v) {
        b = strchr(f, '(');

        if (b && f[strlen(f) - 1] == ')') {
            json_object_set_new(names, ngx_ai_relay_cli_strndup(f, b - f),
                                json_string(f));
        }
    }

    json_object_foreach(im->models, model, m) {
        if (json_object_get(names, model)) {
            ngx_ai_relay_cli_import_note(im, "ModelRatio \"%s\" is per "
                "channel type; ai-relay prices per model and uses the "
                "plain \"%s\" entry",
                json_string_value(json_object_get(names, model)), model);
        }
    }

    json_decref(names);

    /*
     * Which name carries the price: New API bills the client's name,
     * One API the name after the channel's mapping.  An alias is priced
     * by its target unless it has a price of its own.
     */

    json_object_foreach(im->models, model, m) {
        p = NULL;

        if (im->new_api || json_object_get(m, "alias")) {
            if (!im->new_api) {
                continue;
            }

            p = ngx_ai_relay_cli_import_price(im, &rt, model, model);

            if (p == NULL && json_object_get(m, "alias") == NULL) {
                ngx_ai_relay_cli_import_skip(im, "price", model,
                    "no ModelRatio or ModelPrice: New API refuses it; not "
                    "priced");
            }

        } else {
            up = json_object_get(m, "upstream");
            names = json_object();

            json_object_foreach(up, f, v) {
                json_object_set_new(names, json_string_value(v),
                                    json_true());
            }

            json_object_foreach(names, b, v) {
                q = ngx_ai_relay_cli_import_price(im, &rt, model, b);

                if (q == NULL) {
                    ngx_ai_relay_cli_import_skip(im, "price", model,
                        "no ModelRatio for \"%s\" in the options table "
                        "(One API falls back to its built-in table); %s",
                        b, json_object_size(names) > 1 ? "ignored"
                                                       : "not priced");
                    continue;
                }

                if (p == NULL) {
                    p = q;
                    continue;
                }

                if (!json_equal(p, q)) {
                    ngx_ai_relay_cli_import_note(im, "%s is billed as "
                        "different upstream models on different channels; "
                        "priced at the highest of each", model);
                }

                ngx_ai_relay_cli_price_max(p, q);
                json_decref(q);
            }

            json_decref(names);
        }

        if (p) {
            json_object_set_new(im->prices, model, p);
        }
    }

    json_decref(rt.model);
    json_decref(rt.completion);
    json_decref(rt.group);
    json_decref(rt.price);
    json_decref(rt.cache);
    json_decref(rt.create_cache);
}


/* ------------------------------------------------------------ command */


static int
ngx_ai_relay_cli_import_read(ngx_ai_relay_cli_import_t *im,
    ngx_ai_relay_cli_db_t *db, const char *table, int required,
    json_t **rows)
{
    int  rc;

    rc = ngx_ai_relay_cli_db_table(im->cli, db, table, rows);

    if (rc == NGX_AI_RELAY_CLI_DB_NO_TABLE) {
        if (required) {
            return ngx_ai_relay_cli_error(im->cli, NGX_AI_RELAY_CLI_REJECTED,
                                          "%s has no table \"%s\"; is it a "
                                          "%s database?", im->db_what,
                                          table, im->from);
        }

        *rows = NULL;
        return NGX_AI_RELAY_CLI_OK;
    }

    return rc;
}


static int
ngx_ai_relay_cli_import(ngx_ai_relay_cli_t *cli,
    ngx_ai_relay_cli_args_t *args)
{
    int                         rc;
    size_t                      i;
    json_t                     *users, *tokens, *channels, *abilities;
    json_t                     *options, *opts, *mappings, *groups, *row;
    json_t                     *cgroups;
    const char                 *from, *sqlite, *mysql, *v, *f;
    ngx_ai_relay_cli_db_t      *db;
    ngx_ai_relay_cli_import_t   im;

    memset(&im, 0, sizeof(im));
    im.cli = cli;

    from = ngx_ai_relay_cli_opt(args, "from");

    if (from == NULL) {
        return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_USAGE,
                                      "--from one-api|new-api is required");
    }

    if (strcmp(from, "new-api") == 0) {
        im.new_api = 1;

    } else if (strcmp(from, "one-api") != 0) {
        return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_REJECTED,
                                      "invalid --from \"%s\" (one-api or "
                                      "new-api)", from);
    }

    im.from = from;

    sqlite = ngx_ai_relay_cli_opt(args, "sqlite");
    mysql = ngx_ai_relay_cli_opt(args, "mysql");

    if ((sqlite == NULL) == (mysql == NULL)) {
        return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_USAGE,
                                      "give one of --sqlite FILE or "
                                      "--mysql DSN");
    }

    im.tag = ngx_ai_relay_cli_opt(args, "source");

    if (im.tag == NULL) {
        im.tag = from;

    } else if (!ngx_ai_relay_cli_valid_name(im.tag) || strchr(im.tag, ':')
               || strlen(im.tag) > 64)
    {
        return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_REJECTED,
                                      "invalid --source \"%s\" (a name "
                                      "without ':')", im.tag);
    }

    v = ngx_ai_relay_cli_opt(args, "id-offset");

    if (v && ngx_ai_relay_cli_parse_int(v, 0, 1000000000000LL, &im.offset)
             != 0)
    {
        return ngx_ai_relay_cli_error(cli, NGX_AI_RELAY_CLI_REJECTED,
                                      "invalid --id-offset \"%s\"", v);
    }

    im.dry_run = ngx_ai_relay_cli_opt_has(args, "dry-run");
    im.sync_balances = ngx_ai_relay_cli_opt_has(args, "sync-balances");

    rc = ngx_ai_relay_cli_db_open(cli, sqlite, mysql, &db);
    if (rc != NGX_AI_RELAY_CLI_OK) {
        return rc;
    }

    im.db_what = ngx_ai_relay_cli_strdup(ngx_ai_relay_cli_db_what(db));

    users = tokens = channels = abilities = options = NULL;

    rc = ngx_ai_relay_cli_import_read(&im, db, "users", 1, &users);

    if (rc == NGX_AI_RELAY_CLI_OK) {
        rc = ngx_ai_relay_cli_import_read(&im, db, "tokens", 1, &tokens);
    }

    if (rc == NGX_AI_RELAY_CLI_OK) {
        rc = ngx_ai_relay_cli_import_read(&im, db, "channels", 1, &channels);
    }

    if (rc == NGX_AI_RELAY_CLI_OK) {
        rc = ngx_ai_relay_cli_import_read(&im, db, "abilities", 0,
                                          &abilities);
    }

    if (rc == NGX_AI_RELAY_CLI_OK) {
        rc = ngx_ai_relay_cli_import_read(&im, db, "options", 0, &options);
    }

    ngx_ai_relay_cli_db_close(db);

    if (rc != NGX_AI_RELAY_CLI_OK) {
        json_decref(users);
        json_decref(tokens);
        json_decref(channels);
        json_decref(abilities);
        json_decref(options);
        return rc;
    }

    im.users = json_object();
    im.keys = json_object();
    im.channels = json_object();
    im.models = json_object();
    im.prices = json_object();
    im.changes = json_array();
    im.skipped = json_array();
    im.inexact = json_array();
    im.notes = json_array();
    im.conflicts = json_array();

    opts = json_object();

    json_array_foreach(options, i, row) {
        v = ngx_ai_relay_cli_col(row, "key");

        if (v && ngx_ai_relay_cli_col(row, "value")) {
            json_object_set_new(opts, v, json_string(
                                  ngx_ai_relay_cli_col(row, "value")));
        }
    }

    groups = json_object();
    cgroups = json_object();
    mappings = json_object();

    ngx_ai_relay_cli_import_users(&im, users, groups);
    ngx_ai_relay_cli_import_tokens(&im, tokens);
    ngx_ai_relay_cli_import_channels(&im, channels, mappings, cgroups);
    ngx_ai_relay_cli_import_models(&im, abilities, mappings, channels);
    ngx_ai_relay_cli_import_prices(&im, opts, groups);

    json_object_foreach(cgroups, f, row) {
        if (strcmp(f, "default") != 0) {
            ngx_ai_relay_cli_import_note(&im, "channels of group \"%s\" now "
                                         "serve every user (ai-relay does "
                                         "not route by group)", f);
        }
    }

    json_decref(cgroups);
    json_decref(groups);
    json_decref(mappings);
    json_decref(opts);
    json_decref(users);
    json_decref(tokens);
    json_decref(channels);
    json_decref(abilities);
    json_decref(options);

    if (ngx_ai_relay_cli_opt_has(args, "strict")
        && (json_array_size(im.skipped) || json_array_size(im.inexact)))
    {
        im.dry_run = 1;
        rc = ngx_ai_relay_cli_import_sync(&im);

        if (rc == NGX_AI_RELAY_CLI_OK) {
            rc = ngx_ai_relay_cli_error(NULL, NGX_AI_RELAY_CLI_REJECTED,
                                        "--strict: %zu item(s) cannot be "
                                        "imported exactly; nothing written",
                                        json_array_size(im.skipped)
                                        + json_array_size(im.inexact));
        }

    } else {
        rc = ngx_ai_relay_cli_import_sync(&im);
    }

    json_decref(im.users);
    json_decref(im.keys);
    json_decref(im.channels);
    json_decref(im.models);
    json_decref(im.prices);
    json_decref(im.changes);
    json_decref(im.skipped);
    json_decref(im.inexact);
    json_decref(im.notes);
    json_decref(im.conflicts);

    return rc;
}
