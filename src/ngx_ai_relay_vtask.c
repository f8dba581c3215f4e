
/*
 * Copyright (C) ngx_ai_relay authors
 *
 * Video task statuses: OpenAI's video API has queued, in_progress,
 * completed and failed; other upstreams add cancelled; the relay adds
 * expired (unfinished past its deadline) and deleted (a delete the
 * upstream accepted).
 */


#include <string.h>

#include "ngx_ai_relay_vtask.h"


int
ngx_ai_relay_vtask_word(const unsigned char *s, size_t len)
{
    size_t  i;

    if (len == 0 || len > NGX_AI_RELAY_VTASK_WORD_MAX) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z')
              || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
        {
            return 0;
        }
    }

    return 1;
}


#define ngx_ai_relay_vtask_is(s, len, w)                                      \
    ((len) == sizeof(w) - 1 && memcmp(s, w, sizeof(w) - 1) == 0)


int
ngx_ai_relay_vtask_end(const unsigned char *s, size_t len)
{
    if (ngx_ai_relay_vtask_is(s, len, "completed")) {
        return NGX_AI_RELAY_VTASK_COMPLETED;
    }

    if (ngx_ai_relay_vtask_is(s, len, "failed")
        || ngx_ai_relay_vtask_is(s, len, "cancelled")
        || ngx_ai_relay_vtask_is(s, len, "expired")
        || ngx_ai_relay_vtask_is(s, len, "deleted"))
    {
        return NGX_AI_RELAY_VTASK_LOST;
    }

    return NGX_AI_RELAY_VTASK_RUNNING;
}


const char *
ngx_ai_relay_vtask_verdict(const char *seen, int64_t now, int64_t created,
    int64_t expires_at, int64_t expire_after)
{
    int64_t  deadline;

    if (seen
        && ngx_ai_relay_vtask_end((const unsigned char *) seen, strlen(seen))
           != NGX_AI_RELAY_VTASK_RUNNING)
    {
        return seen;
    }

    deadline = (seen && expires_at > 0) ? expires_at : created + expire_after;

    return (now >= deadline) ? "expired" : seen;
}
