
/*
 * Copyright (C) ngx_ai_relay authors
 */


#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <openssl/rand.h>

#include "ngx_ai_relay_key.h"


static EVP_MD  *ngx_ai_relay_sha256;


void
ngx_ai_relay_key_cleanup(void)
{
    EVP_MD_free(ngx_ai_relay_sha256);
    ngx_ai_relay_sha256 = NULL;
}


#define NGX_AI_RELAY_KEY_ELLIPSIS      "\xe2\x80\xa6"    /* U+2026 */
#define NGX_AI_RELAY_KEY_ELLIPSIS_LEN  3

/* 62 * 4: bytes at or above this are rejected, so no modulo bias */
#define NGX_AI_RELAY_KEY_REJECT        248


static const char  ngx_ai_relay_key_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";


int
ngx_ai_relay_key_hash(const unsigned char *key, size_t len, char *out)
{
    unsigned int   n, i;
    unsigned char  md[SHA256_DIGEST_LENGTH];

    static const char  hex[] = "0123456789abcdef";

    /*
     * the algorithm is fetched once (ngx_ai_relay_key_cleanup() frees it):
     * OpenSSL 3's SHA256() fetches and frees it on every call; the digest
     * context is still a fresh one each time, cleansed when freed, so no
     * part of a key outlives the call
     */

    if (ngx_ai_relay_sha256 == NULL) {
        ngx_ai_relay_sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);

        if (ngx_ai_relay_sha256 == NULL) {
            return -1;
        }
    }

    if (EVP_Digest(key, len, md, &n, ngx_ai_relay_sha256, NULL) != 1
        || n != SHA256_DIGEST_LENGTH)
    {
        return -1;
    }

    for (i = 0; i < n; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 0xf];
    }

    out[2 * n] = '\0';

    return 0;
}


int
ngx_ai_relay_key_equal(const void *a, size_t alen, const void *b,
    size_t blen)
{
    if (alen != blen) {
        return 0;
    }

    return CRYPTO_memcmp(a, b, alen) == 0;
}


size_t
ngx_ai_relay_key_mask(const unsigned char *key, size_t len, char *out,
    size_t size)
{
    char    *p;
    size_t   i, head, tail;

    if (size < NGX_AI_RELAY_KEY_MASK_SIZE) {
        if (size > 0) {
            out[0] = '\0';
        }

        return 0;
    }

    if (len >= 12) {
        head = 5;
        tail = 4;

    } else if (len >= 4) {
        head = 2;
        tail = 0;

    } else {
        head = 0;
        tail = 0;
    }

    p = out;

    for (i = 0; i < head; i++) {
        *p++ = (key[i] > 0x20 && key[i] < 0x7f) ? (char) key[i] : '?';
    }

    memcpy(p, NGX_AI_RELAY_KEY_ELLIPSIS, NGX_AI_RELAY_KEY_ELLIPSIS_LEN);
    p += NGX_AI_RELAY_KEY_ELLIPSIS_LEN;

    for (i = len - tail; i < len; i++) {
        *p++ = (key[i] > 0x20 && key[i] < 0x7f) ? (char) key[i] : '?';
    }

    *p = '\0';

    return p - out;
}


int
ngx_ai_relay_key_generate(char *out, size_t size)
{
    size_t         n, i;
    unsigned char  rnd[64];

    if (size <= NGX_AI_RELAY_KEY_GEN_LEN) {
        return -1;
    }

    memcpy(out, NGX_AI_RELAY_KEY_PREFIX, sizeof(NGX_AI_RELAY_KEY_PREFIX) - 1);
    n = sizeof(NGX_AI_RELAY_KEY_PREFIX) - 1;

    while (n < NGX_AI_RELAY_KEY_GEN_LEN) {

        if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
            OPENSSL_cleanse(out, size);
            return -1;
        }

        for (i = 0; i < sizeof(rnd) && n < NGX_AI_RELAY_KEY_GEN_LEN; i++) {
            if (rnd[i] < NGX_AI_RELAY_KEY_REJECT) {
                out[n++] = ngx_ai_relay_key_alphabet[rnd[i] % 62];
            }
        }
    }

    out[n] = '\0';

    OPENSSL_cleanse(rnd, sizeof(rnd));

    return 0;
}


int
ngx_ai_relay_key_valid(const unsigned char *key, size_t len)
{
    size_t  i;

    if (len < NGX_AI_RELAY_KEY_MIN_LEN || len > NGX_AI_RELAY_KEY_MAX_LEN) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        if (key[i] <= 0x20 || key[i] >= 0x7f) {
            return 0;
        }
    }

    return 1;
}


int
ngx_ai_relay_request_id_seed(uint64_t *seed)
{
    return RAND_bytes((unsigned char *) seed, sizeof(uint64_t)) == 1 ? 0 : -1;
}


/* the splitmix64 finalizer: a bijection of 64-bit words */

static uint64_t
ngx_ai_relay_mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;

    return x;
}


void
ngx_ai_relay_request_id(uint64_t seed, uint64_t seq, unsigned char *out)
{
    int                  i;
    uint64_t             hi, lo;
    static const char    hex[] = "0123456789abcdef";

    /* two Feistel rounds over (seed, seq): invertible, so ids are unique */

    lo = ngx_ai_relay_mix64(seq ^ seed);
    hi = seed ^ ngx_ai_relay_mix64(lo);

    for (i = 15; i >= 0; i--) {
        out[i] = hex[hi & 0xf];
        hi >>= 4;
        out[16 + i] = hex[lo & 0xf];
        lo >>= 4;
    }
}


int
ngx_ai_relay_key_blank(unsigned char *key, size_t len)
{
    size_t  i, head, tail;

    head = len >= 12 ? 5 : (len >= 4 ? 2 : 0);
    tail = len >= 12 ? 4 : 0;

    if (len == 0 || key[head < len ? head : 0] == '*') {
        return 0;
    }

    for (i = head; i < len - tail; i++) {
        key[i] = '*';
    }

    return 1;
}
