
/*
 * Copyright (C) ngx_ai_relay authors
 *
 * Per-worker key -> value cache: hash buckets, an LRU list, a TTL, and a
 * generation counter for "forget everything".  See the header.
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_ai_relay_cache.h"



static ngx_inline uint32_t ngx_ai_relay_cache_hash(u_char *key, size_t len);
static ngx_ai_relay_cache_entry_t **ngx_ai_relay_cache_find(
    ngx_ai_relay_cache_t *cache, uint32_t hash, u_char *key, size_t len);
static void ngx_ai_relay_cache_unlink(ngx_ai_relay_cache_t *cache,
    ngx_ai_relay_cache_entry_t **pe);


ngx_int_t
ngx_ai_relay_cache_init(ngx_ai_relay_cache_t *cache, ngx_uint_t max,
    ngx_msec_t ttl, ngx_log_t *log)
{
    ngx_uint_t  n;

    for (n = 64; n < max && n < 65536; n *= 2) { /* void */ }

    cache->buckets = ngx_calloc(n * sizeof(ngx_ai_relay_cache_entry_t *),
                                log);
    if (cache->buckets == NULL) {
        return NGX_ERROR;
    }

    cache->nbuckets = n;
    cache->n = 0;
    cache->max = max;
    cache->ttl = ttl;
    cache->generation = 0;
    cache->log = log;
    ngx_queue_init(&cache->lru);

    return NGX_OK;
}


static ngx_ai_relay_cache_entry_t **
ngx_ai_relay_cache_find(ngx_ai_relay_cache_t *cache, uint32_t hash,
    u_char *key, size_t len)
{
    ngx_ai_relay_cache_entry_t  **pe;

    for (pe = &cache->buckets[hash & (cache->nbuckets - 1)];
         *pe;
         pe = &(*pe)->next)
    {
        if ((*pe)->hash == hash && (*pe)->key_len == len
            && ngx_memcmp((*pe)->data, key, len) == 0)
        {
            return pe;
        }
    }

    return NULL;
}


static void
ngx_ai_relay_cache_unlink(ngx_ai_relay_cache_t *cache,
    ngx_ai_relay_cache_entry_t **pe)
{
    ngx_ai_relay_cache_entry_t  *e;

    e = *pe;
    *pe = e->next;

    ngx_queue_remove(&e->lru);
    cache->n--;

    ngx_free(e);
}


/* NGX_OK and the value (valid until the next call), or NGX_DECLINED */

ngx_int_t
ngx_ai_relay_cache_get(ngx_ai_relay_cache_t *cache, u_char *key, size_t len,
    ngx_str_t *value)
{
    uint32_t                      hash;
    ngx_ai_relay_cache_entry_t  **pe, *e;

    if (cache->buckets == NULL) {
        return NGX_DECLINED;
    }

    hash = ngx_ai_relay_cache_hash(key, len);

    pe = ngx_ai_relay_cache_find(cache, hash, key, len);
    if (pe == NULL) {
        return NGX_DECLINED;
    }

    e = *pe;

    if (e->generation != cache->generation
        || (ngx_msec_int_t) (e->expires - ngx_current_msec) <= 0)
    {
        ngx_ai_relay_cache_unlink(cache, pe);
        return NGX_DECLINED;
    }

    ngx_queue_remove(&e->lru);
    ngx_queue_insert_head(&cache->lru, &e->lru);

    value->data = e->data + e->key_len;
    value->len = e->value_len;

    return NGX_OK;
}


ngx_int_t
ngx_ai_relay_cache_put(ngx_ai_relay_cache_t *cache, u_char *key, size_t len,
    u_char *value, size_t value_len)
{
    uint32_t                      hash;
    ngx_queue_t                  *q;
    ngx_ai_relay_cache_entry_t  **pe, *e;

    if (cache->buckets == NULL || cache->max == 0) {
        return NGX_DECLINED;
    }

    hash = ngx_ai_relay_cache_hash(key, len);

    pe = ngx_ai_relay_cache_find(cache, hash, key, len);
    if (pe) {
        ngx_ai_relay_cache_unlink(cache, pe);
    }

    while (cache->n >= cache->max && !ngx_queue_empty(&cache->lru)) {
        q = ngx_queue_last(&cache->lru);
        e = ngx_queue_data(q, ngx_ai_relay_cache_entry_t, lru);

        pe = ngx_ai_relay_cache_find(cache, e->hash, e->data, e->key_len);
        if (pe == NULL) {
            break;
        }

        ngx_ai_relay_cache_unlink(cache, pe);
    }

    e = ngx_alloc(sizeof(ngx_ai_relay_cache_entry_t) + len + value_len,
                  cache->log);
    if (e == NULL) {
        return NGX_ERROR;
    }

    e->hash = hash;
    e->generation = cache->generation;
    e->expires = ngx_current_msec + cache->ttl;
    e->key_len = len;
    e->value_len = value_len;
    ngx_memcpy(e->data, key, len);
    ngx_memcpy(e->data + len, value, value_len);

    pe = &cache->buckets[hash & (cache->nbuckets - 1)];
    e->next = *pe;
    *pe = e;

    ngx_queue_insert_head(&cache->lru, &e->lru);
    cache->n++;

    return NGX_OK;
}


void
ngx_ai_relay_cache_delete(ngx_ai_relay_cache_t *cache, u_char *key,
    size_t len)
{
    ngx_ai_relay_cache_entry_t  **pe;

    if (cache->buckets == NULL) {
        return;
    }

    pe = ngx_ai_relay_cache_find(cache, ngx_ai_relay_cache_hash(key, len),
                                 key, len);
    if (pe) {
        ngx_ai_relay_cache_unlink(cache, pe);
    }
}


/* stale entries go lazily, on their next lookup or by LRU */

void
ngx_ai_relay_cache_flush(ngx_ai_relay_cache_t *cache)
{
    cache->generation++;
}


void
ngx_ai_relay_cache_free(ngx_ai_relay_cache_t *cache)
{
    ngx_uint_t                   i;
    ngx_ai_relay_cache_entry_t  *e, *next;

    if (cache->buckets == NULL) {
        return;
    }

    for (i = 0; i < cache->nbuckets; i++) {
        for (e = cache->buckets[i]; e; e = next) {
            next = e->next;
            ngx_free(e);
        }
    }

    ngx_free(cache->buckets);
    cache->buckets = NULL;
    cache->n = 0;
    ngx_queue_init(&cache->lru);
}


/*
 * The keys are SHA-256 digests in hex and model names: 8 bytes at a time
 * with a multiply-xorshift mix is plenty, and 8 times fewer steps than
 * the byte-wise CRC32.
 */

static ngx_inline uint32_t
ngx_ai_relay_cache_hash(u_char *key, size_t len)
{
    uint64_t  h, w;

    h = 0x9e3779b97f4a7c15ULL ^ len;

    while (len >= 8) {
        ngx_memcpy(&w, key, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdULL;
        h ^= h >> 32;
        key += 8;
        len -= 8;
    }

    w = 0;
    ngx_memcpy(&w, key, len);
    h = (h ^ w) * 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 29;

    return (uint32_t) h;
}
