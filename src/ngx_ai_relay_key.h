
/*
 * Copyright (C) ngx_ai_relay authors
 */


#ifndef _NGX_AI_RELAY_KEY_H_INCLUDED_
#define _NGX_AI_RELAY_KEY_H_INCLUDED_


/*
 * API key helpers (OpenSSL libcrypto only, no nginx headers).
 *
 * Keys are stored and looked up by their SHA-256, never in plaintext;
 * only masked forms may reach logs.
 */


#include <stddef.h>
#include <stdint.h>


#define NGX_AI_RELAY_KEY_HASH_LEN     64   /* lowercase hex SHA-256 */
#define NGX_AI_RELAY_KEY_MASK_SIZE    16   /* masked form and NUL */
#define NGX_AI_RELAY_KEY_PREFIX       "sk-"
#define NGX_AI_RELAY_KEY_RANDOM_LEN   48
#define NGX_AI_RELAY_KEY_GEN_LEN      51   /* "sk-" + 48 */
#define NGX_AI_RELAY_KEY_MIN_LEN      8
#define NGX_AI_RELAY_KEY_MAX_LEN      256


/* out gets 64 hex digits and a NUL; 0, or -1 on an OpenSSL failure */
int ngx_ai_relay_key_hash(const unsigned char *key, size_t len, char *out);

/*
 * Constant time for equal lengths (CRYPTO_memcmp); lengths are not
 * secret (compare digests of one fixed length).  1 if equal, else 0.
 */
int ngx_ai_relay_key_equal(const void *a, size_t alen, const void *b,
    size_t blen);

/*
 * A form safe for logs, NUL-terminated, into out[size] (size >=
 * NGX_AI_RELAY_KEY_MASK_SIZE):
 *   12 bytes or more: the first 5 and the last 4 bytes around U+2026
 *                     ("sk-ab\xe2\x80\xa6wxyz", shown as sk-ab...wxyz);
 *   4 to 11 bytes:    the first 2 bytes and U+2026;
 *   fewer:            U+2026 alone.
 * Bytes outside printable ASCII are shown as '?'.  Returns the length
 * (without the NUL), or 0 if size is too small.
 */
size_t ngx_ai_relay_key_mask(const unsigned char *key, size_t len,
    char *out, size_t size);

/*
 * A key inside a buffer others read too (the request line and ?key=):
 * its middle overwritten with '*', the same bytes kept as
 * ngx_ai_relay_key_mask() shows.  Returns 0 if it was blanked already.
 */
int ngx_ai_relay_key_blank(unsigned char *key, size_t len);

/*
 * "sk-" and 48 characters [A-Za-z0-9] from RAND_bytes, without modulo
 * bias; out[size] with size > NGX_AI_RELAY_KEY_GEN_LEN gets a NUL too.
 * 0, or -1 on failure.
 */
int ngx_ai_relay_key_generate(char *out, size_t size);

/* frees what ngx_ai_relay_key_hash() keeps between calls */
void ngx_ai_relay_key_cleanup(void);

/* 8..256 bytes, each printable ASCII without space (0x21..0x7e): 1 or 0 */
int ngx_ai_relay_key_valid(const unsigned char *key, size_t len);


/*
 * Request ids: 32 lowercase hex digits, like nginx's $request_id, made
 * without asking the random generator each time (that is most of what
 * $request_id costs).  A worker draws a 64-bit seed once; each id is a
 * bijective mix of (seed, sequence number), so a worker never repeats an
 * id and two workers collide only if their seeds do (2^-64).
 */
#define NGX_AI_RELAY_REQUEST_ID_LEN   32

/* 0, or -1 if the random generator failed */
int ngx_ai_relay_request_id_seed(uint64_t *seed);

/* out[NGX_AI_RELAY_REQUEST_ID_LEN], no NUL */
void ngx_ai_relay_request_id(uint64_t seed, uint64_t seq, unsigned char *out);


#endif /* _NGX_AI_RELAY_KEY_H_INCLUDED_ */
