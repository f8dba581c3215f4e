
/*
 * Copyright (C) ngx_ai_relay authors
 *
 * The worker's settlement pipeline: finished requests wait here
 * (ai_relay_settle_delay) and leave as one SETTLE per user, each a
 * journal entry kept until Redis acknowledges it.  A request becomes an
 * item in billing.c; what a killed worker left in the shared zone is
 * adopted here.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_ai_relay_module.h"
#include "ngx_ai_relay_settle.h"
#include "ngx_ai_relay_journal.h"


#define NGX_AI_RELAY_KEY_BATCH_ID_LEN  (3 * NGX_INT64_LEN)


/* a batch's sums, made before SETTLE */
typedef struct {
    int64_t                       cost;
    int64_t                       requests;
    int64_t                       tokens;
} ngx_ai_relay_key_sum_t;


typedef struct {
    ngx_str_t                    *lease;
    ngx_uint_t                    key_index;
    int64_t                       cost;
} ngx_ai_relay_lease_sum_t;


typedef struct {
    ngx_str_t                    *key_id;
    ngx_str_t                    *model;
    int64_t                       requests;
    int64_t                       errors;
    int64_t                       prompt_tokens;
    int64_t                       completion_tokens;
    int64_t                       cost;
} ngx_ai_relay_group_sum_t;


static ngx_str_t *ngx_ai_relay_settle_args(ngx_ai_relay_main_conf_t *armcf,
    ngx_pool_t *pool, ngx_str_t *user, ngx_queue_t *batch,
    ngx_uint_t nitems, ngx_str_t **keys, ngx_uint_t nkeys,
    ngx_uint_t *nargs);


void
ngx_ai_relay_settle_queue(ngx_ai_relay_main_conf_t *armcf,
    ngx_ai_relay_settle_item_t *item)
{
    ngx_queue_insert_tail(&armcf->worker->settle_queue, &item->queue);
    armcf->worker->settle_n++;

    if (armcf->settle_delay == 0
        || armcf->worker->settle_n >= NGX_AI_RELAY_SETTLE_BATCH)
    {
        ngx_ai_relay_settle_flush(armcf);
        return;
    }

    if (!armcf->worker->settle_timer.timer_set) {
        ngx_add_timer(&armcf->worker->settle_timer, armcf->settle_delay);
    }
}


/*
 * A finished request a killed worker left in the shared zone: settled by
 * this worker, in a batch of its own (called with the zone locked).
 */

void
ngx_ai_relay_settle_adopt(ngx_ai_relay_main_conf_t *armcf, void *p)
{
    ngx_ai_relay_pending_t      *node = p;
    ngx_ai_relay_settle_item_t  *item;

    item = (ngx_ai_relay_settle_item_t *) node->data;
    item->node = node;

    ngx_queue_insert_tail(&armcf->worker->settle_queue, &item->queue);
    armcf->worker->settle_n++;

    /* it waited long enough already */

    if (!armcf->worker->settle_timer.timer_set) {
        ngx_add_timer(&armcf->worker->settle_timer, 1);
    }
}


void
ngx_ai_relay_settle_timer_handler(ngx_event_t *ev)
{
    ngx_ai_relay_settle_flush(ev->data);
}


/*
 * Send what waits, one SETTLE per user (and per NGX_AI_RELAY_SETTLE_BATCH
 * requests).  Each becomes a journal entry: kept until Redis answers.
 */

void
ngx_ai_relay_settle_flush(ngx_ai_relay_main_conf_t *armcf)
{
    ngx_str_t                     *args, *keys[NGX_AI_RELAY_SETTLE_BATCH];
    ngx_uint_t                     k, n, nkeys, nitems, ndrop;
    ngx_ai_relay_pending_t        *drop[NGX_AI_RELAY_SETTLE_BATCH];
    ngx_pool_t                    *pool;
    ngx_queue_t                   *q, *next, batch;
    ngx_ai_relay_settle_item_t    *first, *item;
    ngx_ai_relay_journal_entry_t  *entry;

    if (armcf->worker->settle_timer.timer_set) {
        ngx_del_timer(&armcf->worker->settle_timer);
    }

    while (!ngx_queue_empty(&armcf->worker->settle_queue)) {

        first = ngx_queue_data(ngx_queue_head(&armcf->worker->settle_queue),
                               ngx_ai_relay_settle_item_t, queue);

        /* this user's requests, and their distinct keys */

        ngx_queue_init(&batch);
        nitems = 0;
        nkeys = 0;

        for (q = ngx_queue_head(&armcf->worker->settle_queue);
             q != ngx_queue_sentinel(&armcf->worker->settle_queue)
             && nitems < NGX_AI_RELAY_SETTLE_BATCH;
             q = next)
        {
            next = ngx_queue_next(q);
            item = ngx_queue_data(q, ngx_ai_relay_settle_item_t, queue);

            if (item->user.len != first->user.len
                || ngx_strncmp(item->user.data, first->user.data,
                               item->user.len) != 0)
            {
                continue;
            }

            ngx_queue_remove(q);
            ngx_queue_insert_tail(&batch, q);
            armcf->worker->settle_n--;
            nitems++;

            for (k = 0; k < nkeys; k++) {
                if (keys[k]->len == item->key_hash.len
                    && ngx_strncmp(keys[k]->data, item->key_hash.data,
                                   item->key_hash.len) == 0)
                {
                    break;
                }
            }

            item->key_index = k + 1;

            if (k == nkeys) {
                keys[nkeys++] = &item->key_hash;
            }
        }

        pool = ngx_create_pool(4096, ngx_cycle->log);
        if (pool == NULL) {
            goto failed;
        }

        args = ngx_ai_relay_settle_args(armcf, pool, &first->user, &batch,
                                        nitems, keys, nkeys, &n);
        if (args == NULL) {
            ngx_destroy_pool(pool);
            goto failed;
        }

        entry = ngx_ai_relay_journal_entry(ngx_cycle->log, args, n);

        ngx_destroy_pool(pool);

        if (entry == NULL) {
            goto failed;
        }

        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                       "ai relay: settling %ui requests of user %V",
                       nitems, &first->user);

        ndrop = 0;

        while (!ngx_queue_empty(&batch)) {
            q = ngx_queue_head(&batch);
            ngx_queue_remove(q);
            item = ngx_queue_data(q, ngx_ai_relay_settle_item_t, queue);

            if (item->node) {
                /* leaves the zone as the batch joins it */
                drop[ndrop++] = item->node;

            } else {
                ngx_free(item);
            }
        }

        ngx_ai_relay_journal_send_batch(armcf, entry, drop, ndrop);

        continue;

    failed:

        /* out of memory: they wait for the next flush */

        while (!ngx_queue_empty(&batch)) {
            q = ngx_queue_head(&batch);
            ngx_queue_remove(q);
            ngx_queue_insert_tail(&armcf->worker->settle_queue, q);
            armcf->worker->settle_n++;
        }

        if (!armcf->worker->settle_timer.timer_set) {
            ngx_add_timer(&armcf->worker->settle_timer, 100);
        }

        return;
    }
}


/*
 * SETTLE's arguments for a batch (see src/lua/settle.lua): the sums per
 * key, per lease and per key and model are made here, so that Redis does
 * per request no more than refund a reservation and add a record.
 */

static ngx_str_t *
ngx_ai_relay_settle_args(ngx_ai_relay_main_conf_t *armcf, ngx_pool_t *pool,
    ngx_str_t *user, ngx_queue_t *batch, ngx_uint_t nitems, ngx_str_t **keys,
    ngx_uint_t nkeys, ngx_uint_t *nargs)
{
    u_char                      *p;
    ngx_tm_t                     tm;
    ngx_str_t                   *args, pre;
    ngx_uint_t                   i, n, nres, nleases, ngroups;
    ngx_queue_t                 *q;
    ngx_ai_relay_key_sum_t      *ks, *kv;
    ngx_ai_relay_lease_sum_t    *ls, *lv;
    ngx_ai_relay_group_sum_t    *gs, *gv;
    ngx_ai_relay_settle_item_t  *item;

    ks = ngx_pcalloc(pool, nkeys * sizeof(ngx_ai_relay_key_sum_t));
    ls = ngx_pcalloc(pool, nitems * sizeof(ngx_ai_relay_lease_sum_t));
    gs = ngx_pcalloc(pool, nitems * sizeof(ngx_ai_relay_group_sum_t));

    args = ngx_palloc(pool, (16 + 4 * nkeys + 14 * nitems)
                            * sizeof(ngx_str_t));

    p = ngx_pnalloc(pool, 8 * (sizeof(NGX_AI_RELAY_RKEY_STATS("", ""))
                               + user->len + NGX_AI_RELAY_KEY_BATCH_ID_LEN)
                          + nkeys * (sizeof(NGX_AI_RELAY_RKEY_KEY("", ""))
                                     + user->len + 64)
                          + (10 + 3 * nkeys + 9 * nitems) * NGX_INT64_LEN);

    if (ks == NULL || ls == NULL || gs == NULL || args == NULL || p == NULL) {
        return NULL;
    }

    /* the sums; a batch is at most NGX_AI_RELAY_SETTLE_BATCH long */

    nres = 0;
    nleases = 0;
    ngroups = 0;

    for (q = ngx_queue_head(batch);
         q != ngx_queue_sentinel(batch);
         q = ngx_queue_next(q))
    {
        item = ngx_queue_data(q, ngx_ai_relay_settle_item_t, queue);

        kv = &ks[item->key_index - 1];
        kv->cost += item->cost;
        kv->requests++;
        kv->tokens += item->prompt_tokens + item->completion_tokens;

        if (item->lease.len == 0) {
            nres++;

        } else {
            for (i = 0; i < nleases; i++) {
                lv = &ls[i];

                if (lv->key_index == item->key_index
                    && lv->lease->len == item->lease.len
                    && ngx_strncmp(lv->lease->data, item->lease.data,
                                   item->lease.len) == 0)
                {
                    break;
                }
            }

            lv = &ls[i];

            if (i == nleases) {
                lv->lease = &item->lease;
                lv->key_index = item->key_index;
                nleases++;
            }

            lv->cost += item->cost;
        }

        for (i = 0; i < ngroups; i++) {
            gv = &gs[i];

            if (gv->key_id->len == item->key_id.len
                && gv->model->len == item->model.len
                && ngx_strncmp(gv->key_id->data, item->key_id.data,
                               item->key_id.len) == 0
                && ngx_strncmp(gv->model->data, item->model.data,
                               item->model.len) == 0)
            {
                break;
            }
        }

        gv = &gs[i];

        if (i == ngroups) {
            gv->key_id = &item->key_id;
            gv->model = &item->model;
            ngroups++;
        }

        gv->requests++;
        gv->errors += (item->status >= 400);
        gv->prompt_tokens += item->prompt_tokens;
        gv->completion_tokens += item->completion_tokens;
        gv->cost += item->cost;
    }

#define ngx_ai_relay_fmt(...)                                                 \
    args[n].data = p; p = ngx_sprintf(p, __VA_ARGS__);                        \
    args[n].len = p - args[n].data; n++

    n = 0;

    ngx_gmtime(ngx_time(), &tm);

    pre.data = p;
    p = ngx_sprintf(p, NGX_AI_RELAY_RKEY_U("%V"), user);
    pre.len = p - pre.data;

    ngx_ai_relay_fmt("%ui", 5 + nkeys);
    ngx_ai_relay_fmt("%V" NGX_AI_RELAY_RKEY_U_USER, &pre);
    ngx_ai_relay_fmt("%V" NGX_AI_RELAY_RKEY_U_RES, &pre);
    ngx_ai_relay_fmt("%V" NGX_AI_RELAY_RKEY_U_DONE("%P.%T.%ui"), &pre, ngx_pid,
                     armcf->worker->settle_epoch, armcf->worker->settle_seq);
    ngx_ai_relay_fmt("%V" NGX_AI_RELAY_RKEY_U_LOG, &pre);
    ngx_ai_relay_fmt("%V" NGX_AI_RELAY_RKEY_U_STATS("%04d%02d%02d"), &pre,
                     tm.ngx_tm_year, tm.ngx_tm_mon, tm.ngx_tm_mday);

    for (i = 0; i < nkeys; i++) {
        ngx_ai_relay_fmt("%V" NGX_AI_RELAY_RKEY_U_KEY("%V"), &pre, keys[i]);
    }

    ngx_ai_relay_fmt("%P.%T.%ui", ngx_pid, armcf->worker->settle_epoch,
                     armcf->worker->settle_seq);
    ngx_ai_relay_fmt("%T", ngx_time());
    ngx_ai_relay_fmt("%ui", armcf->records_max);
    ngx_ai_relay_fmt("%ui", nres);
    ngx_ai_relay_fmt("%ui", nleases);
    ngx_ai_relay_fmt("%ui", ngroups);

    armcf->worker->settle_seq++;

    for (i = 0; i < nkeys; i++) {
        ngx_ai_relay_fmt("%L", ks[i].cost);
        ngx_ai_relay_fmt("%L", ks[i].requests);
        ngx_ai_relay_fmt("%L", ks[i].tokens);
    }

    for (q = ngx_queue_head(batch);
         q != ngx_queue_sentinel(batch);
         q = ngx_queue_next(q))
    {
        item = ngx_queue_data(q, ngx_ai_relay_settle_item_t, queue);

        if (item->lease.len == 0) {
            args[n++] = item->request_id;
            ngx_ai_relay_fmt("%ui", item->key_index);
            ngx_ai_relay_fmt("%L", item->cost);
        }
    }

    for (i = 0; i < nleases; i++) {
        args[n++] = *ls[i].lease;
        ngx_ai_relay_fmt("%ui", ls[i].key_index);
        ngx_ai_relay_fmt("%L", ls[i].cost);
    }

    for (i = 0; i < ngroups; i++) {
        args[n++] = *gs[i].key_id;
        args[n++] = *gs[i].model;
        ngx_ai_relay_fmt("%L", gs[i].requests);
        ngx_ai_relay_fmt("%L", gs[i].errors);
        ngx_ai_relay_fmt("%L", gs[i].prompt_tokens);
        ngx_ai_relay_fmt("%L", gs[i].completion_tokens);
        ngx_ai_relay_fmt("%L", gs[i].cost);
    }

#undef ngx_ai_relay_fmt

    for (q = ngx_queue_head(batch);
         q != ngx_queue_sentinel(batch);
         q = ngx_queue_next(q))
    {
        item = ngx_queue_data(q, ngx_ai_relay_settle_item_t, queue);
        args[n++] = item->record;
    }

    *nargs = n;

    return args;
}
