
/*
 * Copyright (C) ngx_ai_relay authors
 *
 * A circuit breaker for one upstream key of a channel: nginx-free, the
 * time is passed in.  CLOSED lets requests through; a run of failures
 * (or one refusal of the key) OPENs it for a cool-down that doubles with
 * each opening in a row; after the cool-down one request goes through as
 * a probe (HALF_OPEN) and its outcome closes or opens the breaker again.
 * An upstream 429 benches the key for its Retry-After without counting
 * as a failure of the key.
 */


#ifndef _NGX_AI_RELAY_BREAKER_H_INCLUDED_
#define _NGX_AI_RELAY_BREAKER_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>


#define NGX_AI_RELAY_BREAKER_CLOSED     0
#define NGX_AI_RELAY_BREAKER_OPEN       1
#define NGX_AI_RELAY_BREAKER_HALF_OPEN  2

/* what an attempt's outcome says about the key */
#define NGX_AI_RELAY_OUTCOME_OK         0   /* answered (2xx, or the
                                               client's own 4xx) */
#define NGX_AI_RELAY_OUTCOME_FAIL       1   /* 5xx, connect error, timeout */
#define NGX_AI_RELAY_OUTCOME_RATE       2   /* 429: benched, not failed */
#define NGX_AI_RELAY_OUTCOME_AUTH       3   /* 401/403, quota: the key */


typedef struct {
    uint32_t     failures;      /* in a row, while closed */
    int64_t      cooldown_ms;   /* first cool-down; doubles per opening */
    int64_t      max_ms;        /* longest cool-down */
    int64_t      probe_ms;      /* a probe unanswered this long: another */
} ngx_ai_relay_breaker_conf_t;


typedef struct {
    uint8_t      state;
    uint8_t      reason;        /* the outcome that opened it */
    uint16_t     status;        /* its HTTP status, 0 for no answer */
    uint32_t     failures;      /* in a row */
    uint32_t     opens;         /* openings in a row */
    int64_t      until_ms;      /* OPEN: a probe may go from then */
    int64_t      probe_ms;      /* HALF_OPEN: when the probe went */
    uint64_t     requests;      /* attempts let through */
    uint64_t     failed;        /* attempts that failed (any kind) */
} ngx_ai_relay_breaker_t;


/* may a request use the key now (without taking the probe) */
int ngx_ai_relay_breaker_ready(const ngx_ai_relay_breaker_t *b, int64_t now);

/* a request will use the key: 1 if it may (it may be the probe), 0 if not */
int ngx_ai_relay_breaker_take(ngx_ai_relay_breaker_t *b, int64_t now,
    const ngx_ai_relay_breaker_conf_t *conf);

/*
 * The attempt's outcome.  retry_after_ms: an upstream 429's Retry-After
 * (-1 when it sent none).  Returns 1 when the breaker opened (or stayed
 * open longer), for the caller to say so in its log.
 */
int ngx_ai_relay_breaker_report(ngx_ai_relay_breaker_t *b, int outcome,
    unsigned status, int64_t retry_after_ms, int64_t now,
    const ngx_ai_relay_breaker_conf_t *conf);

const char *ngx_ai_relay_breaker_state_name(unsigned state);
const char *ngx_ai_relay_breaker_reason_name(unsigned reason);


#endif /* _NGX_AI_RELAY_BREAKER_H_INCLUDED_ */
