
/*
 * Copyright (C) ngx_ai_relay authors
 */


#include "ngx_ai_relay_breaker.h"


static int64_t ngx_ai_relay_breaker_cooldown(const ngx_ai_relay_breaker_t *b,
    const ngx_ai_relay_breaker_conf_t *conf);


int
ngx_ai_relay_breaker_ready(const ngx_ai_relay_breaker_t *b, int64_t now)
{
    switch (b->state) {

    case NGX_AI_RELAY_BREAKER_CLOSED:
        return 1;

    case NGX_AI_RELAY_BREAKER_OPEN:
        return now >= b->until_ms;

    default: /* NGX_AI_RELAY_BREAKER_HALF_OPEN: its probe is out */
        return 0;
    }
}


int
ngx_ai_relay_breaker_take(ngx_ai_relay_breaker_t *b, int64_t now,
    const ngx_ai_relay_breaker_conf_t *conf)
{
    switch (b->state) {

    case NGX_AI_RELAY_BREAKER_CLOSED:
        break;

    case NGX_AI_RELAY_BREAKER_OPEN:
        if (now < b->until_ms) {
            return 0;
        }

        /* the cool-down is over: this request is the probe */

        b->state = NGX_AI_RELAY_BREAKER_HALF_OPEN;
        b->probe_ms = now;
        break;

    default: /* NGX_AI_RELAY_BREAKER_HALF_OPEN */

        /* one probe at a time, unless it was lost (its worker died) */

        if (now - b->probe_ms < conf->probe_ms) {
            return 0;
        }

        b->probe_ms = now;
    }

    b->requests++;

    return 1;
}


int
ngx_ai_relay_breaker_report(ngx_ai_relay_breaker_t *b, int outcome,
    unsigned status, int64_t retry_after_ms, int64_t now,
    const ngx_ai_relay_breaker_conf_t *conf)
{
    int64_t  until;

    if (outcome == NGX_AI_RELAY_OUTCOME_OK) {
        b->state = NGX_AI_RELAY_BREAKER_CLOSED;
        b->failures = 0;
        b->opens = 0;
        b->until_ms = 0;
        return 0;
    }

    b->failed++;
    b->status = (uint16_t) status;

    if (outcome == NGX_AI_RELAY_OUTCOME_RATE) {

        /* the key is busy, not broken: benched for what the upstream said */

        until = now + (retry_after_ms >= 0 ? retry_after_ms
                                           : conf->cooldown_ms);

        if (b->state == NGX_AI_RELAY_BREAKER_OPEN && b->until_ms >= until) {
            return 0;
        }

        b->state = NGX_AI_RELAY_BREAKER_OPEN;
        b->reason = (uint8_t) outcome;
        b->until_ms = until;
        b->failures = 0;

        return 1;
    }

    b->failures++;

    if (outcome == NGX_AI_RELAY_OUTCOME_FAIL
        && b->state == NGX_AI_RELAY_BREAKER_CLOSED
        && b->failures < conf->failures)
    {
        return 0;
    }

    /* a refused key opens at once; a failed probe reopens, for longer */

    b->state = NGX_AI_RELAY_BREAKER_OPEN;
    b->reason = (uint8_t) outcome;
    b->until_ms = now + ngx_ai_relay_breaker_cooldown(b, conf);
    b->opens++;
    b->failures = 0;

    return 1;
}


/* cooldown, 2 * cooldown, 4 * cooldown ... up to max */

static int64_t
ngx_ai_relay_breaker_cooldown(const ngx_ai_relay_breaker_t *b,
    const ngx_ai_relay_breaker_conf_t *conf)
{
    int64_t   t;
    uint32_t  i;

    t = conf->cooldown_ms;

    for (i = 0; i < b->opens && t < conf->max_ms; i++) {
        t *= 2;
    }

    return t < conf->max_ms ? t : conf->max_ms;
}


const char *
ngx_ai_relay_breaker_state_name(unsigned state)
{
    static const char  *names[] = { "closed", "open", "half_open" };

    return state < 3 ? names[state] : "unknown";
}


const char *
ngx_ai_relay_breaker_reason_name(unsigned reason)
{
    static const char  *names[] = { "ok", "failed", "rate_limited",
                                    "key_refused" };

    return reason < 4 ? names[reason] : "unknown";
}
