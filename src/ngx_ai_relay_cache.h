
/*
 * Copyright (C) ngx_ai_relay authors
 */


#ifndef _NGX_AI_RELAY_CACHE_H_INCLUDED_
#define _NGX_AI_RELAY_CACHE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


/*
 * A small per-worker cache of byte strings (key -> value) with a TTL, a
 * size bound (least recently used entries go first) and a generation
 * counter that invalidates everything at once.  Entries are ngx_alloc()ed:
 * they outlive requests, so a hit is copied into the request's pool.
 */

typedef struct ngx_ai_relay_cache_entry_s  ngx_ai_relay_cache_entry_t;

struct ngx_ai_relay_cache_entry_s {
    ngx_queue_t                   lru;
    ngx_ai_relay_cache_entry_t   *next;        /* bucket chain */
    uint32_t                      hash;
    ngx_uint_t                    generation;
    ngx_msec_t                    expires;
    size_t                        key_len;
    size_t                        value_len;
    u_char                        data[1];     /* key, then value */
};


typedef struct {
    ngx_ai_relay_cache_entry_t  **buckets;
    ngx_uint_t                    nbuckets;    /* a power of two */
    ngx_queue_t                   lru;         /* most recent first */
    ngx_uint_t                    n;
    ngx_uint_t                    max;
    ngx_msec_t                    ttl;
    ngx_uint_t                    generation;
    ngx_log_t                    *log;
} ngx_ai_relay_cache_t;


ngx_int_t ngx_ai_relay_cache_init(ngx_ai_relay_cache_t *cache,
    ngx_uint_t max, ngx_msec_t ttl, ngx_log_t *log);
ngx_int_t ngx_ai_relay_cache_get(ngx_ai_relay_cache_t *cache, u_char *key,
    size_t len, ngx_str_t *value);
ngx_int_t ngx_ai_relay_cache_put(ngx_ai_relay_cache_t *cache, u_char *key,
    size_t len, u_char *value, size_t value_len);
void ngx_ai_relay_cache_delete(ngx_ai_relay_cache_t *cache, u_char *key,
    size_t len);
void ngx_ai_relay_cache_flush(ngx_ai_relay_cache_t *cache);
void ngx_ai_relay_cache_free(ngx_ai_relay_cache_t *cache);


#endif /* _NGX_AI_RELAY_CACHE_H_INCLUDED_ */
