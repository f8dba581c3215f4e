
/*
 * Copyright (C) ngx_ai_relay authors
 *
 * Leases: admitting a busy user's requests without a Redis round trip.
 *
 * When a worker keeps asking AUTH for the same user (NGX_AI_RELAY_LEASE_
 * SLOW requests within a second) and the key has no limits of its own
 * (no RPM, TPM or budget), the worker takes a lease: LEASE moves money
 * from the balance into an entry of the user's reservations hash.  The
 * worker then reserves each request's estimate from the lease locally
 * and proxies at once; the settlement charges the actual cost against
 * the lease.  The balance can still never be overdrawn: lease money left
 * the balance atomically.  An idle lease is given back (RELEASE) after
 * NGX_AI_RELAY_LEASE_IDLE; one whose worker died is refunded after
 * ai_relay_reservation_ttl, like any reservation.
 *
 * Redis may reclaim a lease at its deadline, so the worker keeps moving
 * the deadline while it holds the lease (a LEASE of nothing, every half
 * TTL) and stops admitting against it a quarter TTL before the deadline
 * it knows of.  RELEASE gives back only what the worker has not spent.
 * The worker tells it everything it took out of the lease ("spent", plus
 * what running requests hold) and Redis subtracts what settlements have
 * charged to the lease so far: the difference, the cost of settlements
 * not applied yet, stays in the lease for them.  Counting totals on both
 * sides makes the answer exact whatever settlements are on their way.
 *
 * What AUTH said about a key (its id, models, expiry, that it has no
 * limits) is kept per worker and forgotten whenever the configuration
 * version changes (polled every NGX_AI_RELAY_LEASE_TICK while anything is
 * cached) or AUTH refuses the key: an operator's change reaches leased
 * traffic within that tick.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_ai_relay_module.h"
#include "ngx_ai_relay_lease.h"
#include "ngx_ai_relay_settle.h"
#include "ngx_ai_relay_release.h"
#include "ngx_ai_relay_lua.h"


#define NGX_AI_RELAY_LEASE_SLOW     8      /* AUTHs per second */
#define NGX_AI_RELAY_LEASE_IDLE     1000   /* ms */
#define NGX_AI_RELAY_LEASE_TICK     250    /* ms */
#define NGX_AI_RELAY_LEASE_SIZE     64     /* estimates, first grant */
#define NGX_AI_RELAY_LEASE_MAX      1024   /* estimates, largest grant */
#define NGX_AI_RELAY_LEASE_MIN      8      /* estimates, least worth it */
#define NGX_AI_RELAY_LEASE_FAST     500    /* ms: a grant gone this fast */
#define NGX_AI_RELAY_WALLETS        64     /* hash buckets */
#define NGX_AI_RELAY_LEASE_ID_LEN   (3 * NGX_INT64_LEN)


struct ngx_ai_relay_wallet_s {
    ngx_ai_relay_wallet_t        *next;
    ngx_ai_relay_main_conf_t     *armcf;
    ngx_str_t                     user;
    ngx_str_t                     lease;
    int64_t                       available;   /* not spoken for */
    int64_t                       want;        /* the next grant */
    int64_t                       estimate;    /* a typical request */
    int64_t                       spent;       /* by requests that ended */
    int64_t                       reserved;    /* by requests on their way */
    ngx_msec_t                    granted_at;
    ngx_msec_t                    refused_at;  /* LEASE granted nothing */
    time_t                        sent_at;     /* the last LEASE's "now" */
    time_t                        deadline;    /* Redis's, as we know it */
    ngx_uint_t                    inflight;
    ngx_uint_t                    slow;        /* AUTHs in this window */
    ngx_msec_t                    window;
    ngx_msec_t                    last_use;
    ngx_ai_relay_redis_cmd_t     *cmd;         /* the LEASE on its way */
    unsigned                      pending:1;
    unsigned                      active:1;
    unsigned                      refresh:1;   /* the LEASE only renews */
    u_char                        data[1];     /* user id, lease id */
};


static ngx_ai_relay_wallet_t *ngx_ai_relay_wallet(
    ngx_ai_relay_main_conf_t *armcf, ngx_str_t *user, ngx_uint_t create);
static void ngx_ai_relay_wallet_free(ngx_ai_relay_main_conf_t *armcf,
    ngx_ai_relay_wallet_t *w);
static void ngx_ai_relay_lease_new_id(ngx_ai_relay_main_conf_t *armcf,
    ngx_ai_relay_wallet_t *w);
static time_t ngx_ai_relay_lease_margin(ngx_ai_relay_main_conf_t *armcf);
static void ngx_ai_relay_lease_top_up(ngx_ai_relay_main_conf_t *armcf,
    ngx_ai_relay_wallet_t *w);
static void ngx_ai_relay_lease_request(ngx_ai_relay_main_conf_t *armcf,
    ngx_ai_relay_wallet_t *w, int64_t amount);
static void ngx_ai_relay_lease_reply(void *data, redisReply *reply);
static void ngx_ai_relay_lease_release(ngx_ai_relay_main_conf_t *armcf,
    ngx_ai_relay_wallet_t *w, ngx_uint_t keep);
static void ngx_ai_relay_lease_tick(ngx_event_t *ev);
static void ngx_ai_relay_lease_arm(ngx_ai_relay_main_conf_t *armcf);
static void ngx_ai_relay_lease_version_reply(void *data, redisReply *reply);
static ngx_int_t ngx_ai_relay_lease_argv(ngx_pool_t *pool,
    ngx_ai_relay_redis_t *rds, ngx_uint_t script, ngx_ai_relay_wallet_t *w,
    const char **argv, size_t *lens);


ngx_int_t
ngx_ai_relay_lease_init(ngx_ai_relay_main_conf_t *armcf)
{
    armcf->worker->wallets = ngx_calloc(NGX_AI_RELAY_WALLETS
                                * sizeof(ngx_ai_relay_wallet_t *),
                                ngx_cycle->log);
    if (armcf->worker->wallets == NULL) {
        return NGX_ERROR;
    }

    armcf->worker->lease_timer.handler = ngx_ai_relay_lease_tick;
    armcf->worker->lease_timer.data = armcf;
    armcf->worker->lease_timer.log = ngx_cycle->log;
    armcf->worker->lease_timer.cancelable = 1;

    return NGX_OK;
}


static ngx_ai_relay_wallet_t *
ngx_ai_relay_wallet(ngx_ai_relay_main_conf_t *armcf, ngx_str_t *user,
    ngx_uint_t create)
{
    ngx_uint_t              b;
    ngx_ai_relay_wallet_t  *w;

    if (armcf->worker->wallets == NULL) {
        return NULL;
    }

    b = ngx_hash_key(user->data, user->len) % NGX_AI_RELAY_WALLETS;

    for (w = armcf->worker->wallets[b]; w; w = w->next) {
        if (w->user.len == user->len
            && ngx_strncmp(w->user.data, user->data, user->len) == 0)
        {
            return w;
        }
    }

    if (!create) {
        return NULL;
    }

    w = ngx_calloc(sizeof(ngx_ai_relay_wallet_t) + user->len
                   + NGX_AI_RELAY_LEASE_ID_LEN, ngx_cycle->log);
    if (w == NULL) {
        return NULL;
    }

    w->armcf = armcf;
    w->user.data = w->data;
    w->user.len = user->len;
    ngx_memcpy(w->data, user->data, user->len);

    /* one lease id per wallet: top-ups add to the same lease */

    w->lease.data = w->data + user->len;
    ngx_ai_relay_lease_new_id(armcf, w);

    w->next = armcf->worker->wallets[b];
    armcf->worker->wallets[b] = w;
    armcf->worker->nwallets++;

    ngx_ai_relay_lease_arm(armcf);

    return w;
}


static void
ngx_ai_relay_lease_new_id(ngx_ai_relay_main_conf_t *armcf,
    ngx_ai_relay_wallet_t *w)
{
    /*
     * requests admitted on the old id no longer count here: their end
     * finds another id (ngx_ai_relay_lease_done()) and their settlements
     * charge the old lease or, gone, the balance
     */

    w->spent = 0;
    w->reserved = 0;
    w->inflight = 0;

    w->lease.len = ngx_sprintf(w->lease.data, "l%P.%T.%ui", ngx_pid,
                               armcf->worker->settle_epoch,
                               armcf->worker->lease_seq++)
                   - w->lease.data;
}


static void
ngx_ai_relay_wallet_free(ngx_ai_relay_main_conf_t *armcf,
    ngx_ai_relay_wallet_t *w)
{
    ngx_uint_t               b;
    ngx_ai_relay_wallet_t  **pw;

    b = ngx_hash_key(w->user.data, w->user.len) % NGX_AI_RELAY_WALLETS;

    for (pw = &armcf->worker->wallets[b]; *pw; pw = &(*pw)->next) {
        if (*pw == w) {
            *pw = w->next;
            armcf->worker->nwallets--;
            ngx_free(w);
            return;
        }
    }
}


/*
 * NGX_OK: the request is admitted against the worker's lease (or the user
 * is unlimited) and goes to the upstream without asking Redis.
 */

ngx_int_t
ngx_ai_relay_lease_admit(ngx_http_request_t *r, ngx_ai_relay_ctx_t *ctx)
{
    u_char                    *p, *last, *comma;
    ngx_str_t                  blob;
    ngx_uint_t                 allowed;
    ngx_ai_relay_wallet_t     *w;
    ngx_ai_relay_keyconf_t    *kc;
    ngx_ai_relay_main_conf_t  *armcf;

    armcf = ngx_http_get_module_main_conf(r, ngx_ai_relay_module);

    if (!ctx->key.cached || !ctx->route.cached || ctx->route.failed
        || ctx->xlate.failed || ctx->models_list)
    {
        return NGX_DECLINED;
    }

    if (ngx_ai_relay_cache_get(&armcf->worker->keyconf_cache,
                               ctx->key.hash.data, ctx->key.hash.len, &blob)
        != NGX_OK)
    {
        return NGX_DECLINED;
    }

    kc = (ngx_ai_relay_keyconf_t *) blob.data;

    if (!kc->fast || (kc->expires && ngx_time() >= kc->expires)) {
        return NGX_DECLINED;
    }

    /* the key's own model list: the refusal itself comes from AUTH */

    if (kc->models_len) {
        allowed = 0;
        p = kc->data + kc->kid_len;
        last = p + kc->models_len;

        for ( /* void */ ; p < last; p = comma + 1) {
            comma = ngx_strlchr(p, last, ',');
            if (comma == NULL) {
                comma = last;
            }

            if ((size_t) (comma - p) == ctx->body.model.len
                && ngx_strncmp(p, ctx->body.model.data, ctx->body.model.len)
                   == 0)
            {
                allowed = 1;
                break;
            }
        }

        if (!allowed) {
            return NGX_DECLINED;
        }
    }

    ctx->key.id.data = ngx_pnalloc(r->pool, kc->kid_len + kc->models_len);
    ctx->bill.lease.data = ngx_pnalloc(r->pool, NGX_AI_RELAY_LEASE_ID_LEN);

    if (ctx->key.id.data == NULL || ctx->bill.lease.data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(ctx->key.id.data, kc->data, kc->kid_len + kc->models_len);
    ctx->key.id.len = kc->kid_len;
    ctx->key.allowed_models.data = ctx->key.id.data + kc->kid_len;
    ctx->key.allowed_models.len = kc->models_len;
    ctx->key.unlimited = kc->unlimited;

    if (!kc->unlimited) {
        w = ngx_ai_relay_wallet(armcf, &ctx->key.user_id, 0);

        if (w == NULL || !w->active || w->available < ctx->bill.reserve
            || ngx_time() + ngx_ai_relay_lease_margin(armcf) >= w->deadline)
        {
            if (w && w->active && !w->pending) {
                ngx_ai_relay_lease_top_up(armcf, w);
            }

            return NGX_DECLINED;
        }

        w->available -= ctx->bill.reserve;
        w->reserved += ctx->bill.reserve;
        w->inflight++;
        w->last_use = ngx_current_msec;

        ngx_memcpy(ctx->bill.lease.data, w->lease.data, w->lease.len);
        ctx->bill.lease.len = w->lease.len;

        /* top up before it runs dry */

        if (w->available < w->want / 2 && !w->pending) {
            ngx_ai_relay_lease_top_up(armcf, w);
        }
    }

    ctx->bill.leased = 1;
    ctx->bill.reserved_ok = 1;

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "ai relay: admitted on lease \"%V\", %L reserved",
                   &ctx->bill.lease, ctx->bill.reserve);

    return NGX_OK;
}


/* AUTH accepted the key: keep what it said, maybe take a lease */

void
ngx_ai_relay_lease_remember(ngx_http_request_t *r, ngx_ai_relay_ctx_t *ctx,
    time_t expires, ngx_uint_t fast)
{
    size_t                     size;
    ngx_ai_relay_wallet_t     *w;
    ngx_ai_relay_keyconf_t    *kc;
    ngx_ai_relay_main_conf_t  *armcf;

    armcf = ngx_http_get_module_main_conf(r, ngx_ai_relay_module);

    if (armcf->worker->keyconf_cache.max == 0) {
        return;
    }

    size = sizeof(ngx_ai_relay_keyconf_t) + ctx->key.id.len
           + ctx->key.allowed_models.len;

    kc = ngx_pcalloc(r->pool, size);
    if (kc == NULL) {
        return;
    }

    kc->expires = expires;
    kc->fast = fast;
    kc->unlimited = ctx->key.unlimited;
    kc->kid_len = ctx->key.id.len;
    kc->models_len = ctx->key.allowed_models.len;
    ngx_memcpy(kc->data, ctx->key.id.data, ctx->key.id.len);
    ngx_memcpy(kc->data + ctx->key.id.len, ctx->key.allowed_models.data,
               ctx->key.allowed_models.len);

    (void) ngx_ai_relay_cache_put(&armcf->worker->keyconf_cache,
                                  ctx->key.hash.data, ctx->key.hash.len,
                                  (u_char *) kc, size);

    ngx_ai_relay_lease_arm(armcf);

    if (!fast || ctx->key.unlimited || !ctx->bill.auth_reserve) {
        return;
    }

    /* a busy user: a lease saves the AUTH round trip from now on */

    w = ngx_ai_relay_wallet(armcf, &ctx->key.user_id, 1);
    if (w == NULL) {
        return;
    }

    if (ngx_current_msec - w->window >= 1000) {
        w->window = ngx_current_msec;
        w->slow = 0;
    }

    w->estimate = ctx->bill.reserve;
    w->last_use = ngx_current_msec;

    if (++w->slow >= NGX_AI_RELAY_LEASE_SLOW && !w->pending && !w->active
        && (w->refused_at == 0
            || ngx_current_msec - w->refused_at >= NGX_AI_RELAY_LEASE_IDLE))
    {
        w->want = NGX_AI_RELAY_LEASE_SIZE * ctx->bill.reserve;
        ngx_ai_relay_lease_request(armcf, w, w->want);
    }
}


void
ngx_ai_relay_lease_forget(ngx_http_request_t *r, ngx_ai_relay_ctx_t *ctx)
{
    ngx_ai_relay_main_conf_t  *armcf;

    armcf = ngx_http_get_module_main_conf(r, ngx_ai_relay_module);

    ngx_ai_relay_cache_delete(&armcf->worker->keyconf_cache, ctx->key.hash.data,
                              ctx->key.hash.len);
}


/* a leased request ended: what it did not spend is available again */

void
ngx_ai_relay_lease_done(ngx_ai_relay_main_conf_t *armcf,
    ngx_ai_relay_ctx_t *ctx)
{
    ngx_ai_relay_wallet_t  *w;

    if (ctx->bill.lease.len == 0) {
        return;
    }

    w = ngx_ai_relay_wallet(armcf, &ctx->key.user_id, 0);

    if (w == NULL || w->lease.len != ctx->bill.lease.len
        || ngx_strncmp(w->lease.data, ctx->bill.lease.data, w->lease.len) != 0)
    {
        return;
    }

    w->available += ctx->bill.reserve - ctx->bill.cost;
    w->reserved -= ctx->bill.reserve;
    w->spent += ctx->bill.cost;
    w->inflight--;
    w->last_use = ngx_current_msec;
}


/* stop admitting this long before the deadline Redis holds */

static time_t
ngx_ai_relay_lease_margin(ngx_ai_relay_main_conf_t *armcf)
{
    return ngx_max(armcf->reservation_ttl / 4, 1);
}


/* EVALSHA <LEASE or RELEASE> 2 ar:{u<id>}:user ar:{u<id>}:res <lease id> */

static ngx_int_t
ngx_ai_relay_lease_argv(ngx_pool_t *pool, ngx_ai_relay_redis_t *rds,
    ngx_uint_t script, ngx_ai_relay_wallet_t *w, const char **argv,
    size_t *lens)
{
    u_char  *p, *last;

    p = ngx_pnalloc(pool,
                    2 * (sizeof(NGX_AI_RELAY_RKEY_USER("")) + w->user.len));
    if (p == NULL) {
        return NGX_ERROR;
    }

    argv[0] = "EVALSHA";
    lens[0] = 7;
    argv[1] = (const char *) rds->script_sha[script].data;
    lens[1] = rds->script_sha[script].len;
    argv[2] = "2";
    lens[2] = 1;

    last = ngx_sprintf(p, NGX_AI_RELAY_RKEY_USER("%V"), &w->user);
    argv[3] = (const char *) p;
    lens[3] = last - p;

    p = last;
    last = ngx_sprintf(p, NGX_AI_RELAY_RKEY_RES("%V"), &w->user);
    argv[4] = (const char *) p;
    lens[4] = last - p;

    argv[5] = (const char *) w->lease.data;
    lens[5] = w->lease.len;

    return NGX_OK;
}


/*
 * A lease spent within NGX_AI_RELAY_LEASE_FAST is topped up with twice as
 * much (up to NGX_AI_RELAY_LEASE_MAX estimates): top-ups, and the requests
 * that go to AUTH while one is on its way, stay rare however busy the user
 * is.  A lease that lasts four times as long shrinks again, so little
 * money sits in a worker for a user who slowed down.
 */

static void
ngx_ai_relay_lease_top_up(ngx_ai_relay_main_conf_t *armcf,
    ngx_ai_relay_wallet_t *w)
{
    ngx_msec_t  age;

    /* too little balance to lend: AUTH serves the user for a while */

    if (w->refused_at
        && ngx_current_msec - w->refused_at < NGX_AI_RELAY_LEASE_IDLE)
    {
        return;
    }

    age = ngx_current_msec - w->granted_at;

    if (age < NGX_AI_RELAY_LEASE_FAST) {
        if (w->want <= NGX_AI_RELAY_LEASE_MAX / 2 * w->estimate) {
            w->want *= 2;
        }

    } else if (age > 4 * NGX_AI_RELAY_LEASE_FAST
               && w->want >= 2 * NGX_AI_RELAY_LEASE_SIZE * w->estimate)
    {
        w->want /= 2;
    }

    ngx_ai_relay_lease_request(armcf, w, w->want);
}


static void
ngx_ai_relay_lease_request(ngx_ai_relay_main_conf_t *armcf,
    ngx_ai_relay_wallet_t *w, int64_t amount)
{
    u_char                    *p;
    size_t                     lens[12];
    ngx_pool_t                *pool;
    const char                *argv[12];
    ngx_ai_relay_redis_t      *rds;
    ngx_ai_relay_redis_cmd_t  *cmd;

    if (amount < 0 || (amount == 0 && !w->active) || ngx_exiting) {
        return;
    }

    rds = ngx_ai_relay_redis_link(armcf);
    if (rds == NULL) {
        return;
    }

    pool = ngx_create_pool(512, ngx_cycle->log);
    if (pool == NULL) {
        return;
    }

    p = ngx_pnalloc(pool, 4 * NGX_INT64_LEN
                          + sizeof(NGX_AI_RELAY_RKEY_U("")) + w->user.len);

    if (p == NULL
        || ngx_ai_relay_lease_argv(pool, rds, NGX_AI_RELAY_SCRIPT_LEASE, w,
                                   argv, lens)
           != NGX_OK)
    {
        ngx_destroy_pool(pool);
        return;
    }

    argv[6] = (const char *) p;
    lens[6] = ngx_sprintf(p, "%L", amount) - p;
    p += lens[6];
    argv[7] = (const char *) p;
    lens[7] = ngx_sprintf(p, "%T", ngx_time()) - p;
    p += lens[7];
    argv[8] = (const char *) p;
    lens[8] = ngx_sprintf(p, "%T", armcf->reservation_ttl) - p;
    p += lens[8];
    argv[9] = (const char *) p;
    lens[9] = ngx_sprintf(p, "%L", NGX_AI_RELAY_LEASE_MIN * w->estimate) - p;
    p += lens[9];
    argv[10] = w->active ? "1" : "0";
    lens[10] = 1;
    argv[11] = (const char *) p;
    lens[11] = ngx_sprintf(p, NGX_AI_RELAY_RKEY_U("%V"), &w->user) - p;

    w->sent_at = ngx_time();

    cmd = ngx_ai_relay_redis_send(rds, ngx_ai_relay_lease_reply, w, 12, argv,
                                  lens);
    ngx_destroy_pool(pool);

    if (cmd) {
        /* the wallet stays while its reply is pending */
        w->pending = 1;
        w->refresh = (amount == 0);
        w->cmd = cmd;
    }
}


static void
ngx_ai_relay_lease_reply(void *data, redisReply *reply)
{
    ngx_ai_relay_wallet_t *w = data;

    ngx_uint_t  refresh;

    refresh = w->refresh;

    w->pending = 0;
    w->refresh = 0;
    w->cmd = NULL;

    if (reply && reply->type == REDIS_REPLY_INTEGER && reply->integer < 0) {

        /*
         * Redis no longer has the lease (it outlived its deadline and was
         * refunded): nothing of it may be spent any more.  Requests still
         * on their way settle against the old id, straight from the
         * balance; a new lease gets a new id.
         */

        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "ai relay: lease \"%V\" was reclaimed by redis",
                      &w->lease);

        w->active = 0;
        w->available = 0;
        ngx_ai_relay_lease_new_id(w->armcf, w);
        return;
    }

    if (reply && reply->type == REDIS_REPLY_INTEGER && w->active) {
        /* the lease is there: its deadline moved */
        w->deadline = w->sent_at + w->armcf->reservation_ttl;
    }

    if (refresh) {
        return;
    }

    if (reply == NULL && !w->active && !ngx_exiting) {

        /*
         * did LEASE run?  Nobody spent from this lease yet: RELEASE gives
         * back whatever it got when the link is back (a Redis failover
         * lost the reply), and the next LEASE asks under a new id
         */

        ngx_ai_relay_release_id(w->armcf, &w->user, &w->lease, NULL);
        ngx_ai_relay_lease_new_id(w->armcf, w);
    }

    if (reply == NULL || reply->type != REDIS_REPLY_INTEGER
        || reply->integer <= 0)
    {
        if (reply && reply->type == REDIS_REPLY_ERROR) {
            ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                          "ai relay: lease \"%V\" failed: %*s", &w->lease,
                          (size_t) reply->len, reply->str);
        }

        w->refused_at = ngx_current_msec ? ngx_current_msec : 1;

        return;
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                   "ai relay: lease \"%V\" got %L", &w->lease,
                   (int64_t) reply->integer);

    w->available += reply->integer;
    w->granted_at = ngx_current_msec;
    w->refused_at = 0;
    w->active = 1;
    w->deadline = w->sent_at + w->armcf->reservation_ttl;
    w->last_use = ngx_current_msec;

    ngx_ai_relay_lease_arm(w->armcf);
}


/* give back what is left; the lease's settlements go out first */

static void
ngx_ai_relay_lease_release(ngx_ai_relay_main_conf_t *armcf,
    ngx_ai_relay_wallet_t *w, ngx_uint_t keep)
{
    size_t                     lens[7];
    ngx_pool_t                *pool;
    const char                *argv[7];
    ngx_ai_relay_redis_t      *rds;
    ngx_ai_relay_redis_cmd_t  *cmd;

    ngx_ai_relay_settle_flush(armcf);

    rds = ngx_ai_relay_redis_link(armcf);

    pool = ngx_create_pool(512, ngx_cycle->log);

    if (rds && pool
        && ngx_ai_relay_lease_argv(pool, rds, NGX_AI_RELAY_SCRIPT_RELEASE, w,
                                   argv, lens)
           == NGX_OK
        && (argv[6] = ngx_pnalloc(pool, NGX_INT64_LEN)) != NULL)
    {
        /*
         * all the worker took out of the lease: Redis keeps what its
         * settlements have not charged yet
         */

        lens[6] = ngx_sprintf((u_char *) argv[6], "%L",
                              w->spent + w->reserved)
                  - (u_char *) argv[6];

        /* unanswered, the lease is refunded after the reservation TTL */

        cmd = ngx_ai_relay_redis_send(rds, NULL, NULL, 7, argv, lens);

        if (cmd) {
            ngx_ai_relay_redis_set_critical(cmd);
        }

        /*
         * unanswered or unsent: released whole when the link is back (a
         * lease kept for requests on their way is left to its TTL)
         */

        if (!ngx_exiting && !keep) {
            ngx_ai_relay_release_id(armcf, &w->user, &w->lease, cmd);
        }

        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                       "ai relay: lease \"%V\" released", &w->lease);
    }

    if (pool) {
        ngx_destroy_pool(pool);
    }

    if (keep) {
        /* requests on their way still settle against it */
        w->available = 0;
        return;
    }

    ngx_ai_relay_wallet_free(armcf, w);
}


/*
 * AUTH found the balance short for a user this worker holds a lease for:
 * its unspent part goes back first (RELEASE goes out before the AUTH
 * asked again, on the same link), so a user is never refused while money
 * lent to this worker would cover the request.
 */

ngx_int_t
ngx_ai_relay_lease_give_back(ngx_ai_relay_main_conf_t *armcf,
    ngx_str_t *user)
{
    ngx_ai_relay_wallet_t  *w;

    w = ngx_ai_relay_wallet(armcf, user, 0);

    if (w == NULL || !w->active || w->pending || w->available <= 0) {
        return NGX_DECLINED;
    }

    w->refused_at = ngx_current_msec ? ngx_current_msec : 1;

    ngx_ai_relay_lease_release(armcf, w, w->inflight > 0);

    return NGX_OK;
}


static void
ngx_ai_relay_lease_tick(ngx_event_t *ev)
{
    size_t                     lens[2];
    ngx_uint_t                 b;
    const char                *argv[2];
    ngx_ai_relay_redis_t      *rds;
    ngx_ai_relay_wallet_t     *w, *next;
    ngx_ai_relay_main_conf_t  *armcf;

    armcf = ev->data;

    /* idle leases go back; at worker exit all of them, once done */

    for (b = 0; b < NGX_AI_RELAY_WALLETS; b++) {
        for (w = armcf->worker->wallets[b]; w; w = next) {
            next = w->next;

            /* half the TTL gone: move the deadline Redis holds */

            if (w->active && !w->pending && !ngx_exiting
                && ngx_time() >= w->deadline
                                 - armcf->reservation_ttl / 2)
            {
                ngx_ai_relay_lease_request(armcf, w, 0);
            }

            if (w->pending || w->inflight) {
                continue;
            }

            if (ngx_exiting
                || ngx_current_msec - w->last_use >= NGX_AI_RELAY_LEASE_IDLE)
            {
                if (w->active) {
                    ngx_ai_relay_lease_release(armcf, w, 0);

                } else {
                    ngx_ai_relay_wallet_free(armcf, w);
                }
            }
        }
    }

    /* is what AUTH told us still current? */

    if (armcf->worker->keyconf_cache.n && !ngx_exiting) {
        rds = ngx_ai_relay_redis_link(armcf);

        if (rds) {
            argv[0] = "GET";
            lens[0] = 3;
            argv[1] = NGX_AI_RELAY_RKEY_VERSION;
            lens[1] = sizeof(NGX_AI_RELAY_RKEY_VERSION) - 1;

            (void) ngx_ai_relay_redis_send(rds,
                                           ngx_ai_relay_lease_version_reply,
                                           armcf, 2, argv, lens);
        }
    }

    ngx_ai_relay_lease_arm(armcf);
}


static void
ngx_ai_relay_lease_arm(ngx_ai_relay_main_conf_t *armcf)
{
    /* a held lease keeps a graceful exit waiting until it went back */

    armcf->worker->lease_timer.cancelable = (armcf->worker->nwallets == 0);

    if ((armcf->worker->nwallets || armcf->worker->keyconf_cache.n)
        && !armcf->worker->lease_timer.timer_set)
    {
        ngx_add_timer(&armcf->worker->lease_timer, NGX_AI_RELAY_LEASE_TICK);
    }
}


static void
ngx_ai_relay_lease_version_reply(void *data, redisReply *reply)
{
    if (reply && reply->type == REDIS_REPLY_STRING) {
        ngx_ai_relay_lease_version(data, (u_char *) reply->str, reply->len);
    }
}


/* the configuration version seen last; a change forgets what is cached */

void
ngx_ai_relay_lease_version(ngx_ai_relay_main_conf_t *armcf, u_char *version,
    size_t len)
{
    if (len > sizeof(armcf->worker->version)) {
        len = sizeof(armcf->worker->version);
    }

    if (len == armcf->worker->version_len
        && ngx_memcmp(version, armcf->worker->version, len) == 0)
    {
        return;
    }

    if (armcf->worker->version_len) {
        ngx_log_debug0(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                       "ai relay: configuration changed, caches flushed");

        ngx_ai_relay_cache_flush(&armcf->worker->route_cache);
        ngx_ai_relay_cache_flush(&armcf->worker->keyconf_cache);
    }

    ngx_memcpy(armcf->worker->version, version, len);
    armcf->worker->version_len = len;
}


void
ngx_ai_relay_lease_exit(ngx_ai_relay_main_conf_t *armcf)
{
    ngx_uint_t              b;
    ngx_ai_relay_wallet_t  *w, *next;

    if (armcf->worker->wallets == NULL) {
        return;
    }

    for (b = 0; b < NGX_AI_RELAY_WALLETS; b++) {
        for (w = armcf->worker->wallets[b]; w; w = next) {
            next = w->next;

            if (w->active && !w->pending) {
                ngx_ai_relay_lease_release(armcf, w, 0);

            } else {
                /* a reply may still come: it must not find the wallet */
                if (w->cmd) {
                    ngx_ai_relay_redis_detach(w->cmd);
                }

                ngx_ai_relay_wallet_free(armcf, w);
            }
        }
    }

    ngx_free(armcf->worker->wallets);
    armcf->worker->wallets = NULL;
}
