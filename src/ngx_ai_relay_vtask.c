
/*
 * Copyright (C) ngx_ai_relay authors
 *
 * Task statuses: OpenAI's video API has queued, in_progress, completed
 * and failed; other upstreams add cancelled, or say the same in words of
 * their own (DashScope's PENDING, RUNNING, SUCCEEDED, FAILED, CANCELED),
 * which are brought to these; the relay adds expired (unfinished past its
 * deadline) and deleted (a delete the upstream accepted).
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


const ngx_ai_relay_vtask_api_t  ngx_ai_relay_vtask_apis[] = {
    { "video", "id", "status", "/v1/videos/" },
    { "generation", "task_id", "status", "/v1/video/generations/" },
    { "dashscope", "output.task_id", "output.task_status", "/api/v1/tasks/" },
    { NULL, NULL, NULL, NULL }
};


const ngx_ai_relay_vtask_api_t *
ngx_ai_relay_vtask_api(const char *name, size_t len)
{
    const ngx_ai_relay_vtask_api_t  *api;

    if (name == NULL || len == 0) {
        return &ngx_ai_relay_vtask_apis[NGX_AI_RELAY_VTASK_VIDEO];
    }

    for (api = ngx_ai_relay_vtask_apis; api->name; api++) {
        if (strlen(api->name) == len && memcmp(api->name, name, len) == 0) {
            return api;
        }
    }

    return NULL;
}


size_t
ngx_ai_relay_vtask_normal(const unsigned char *s, size_t len,
    unsigned char *out)
{
    size_t  i, n;

    static const struct {
        const char  *from;
        const char  *to;
    } same[] = {
        { "succeeded", "completed" },
        { "success", "completed" },
        { "succeed", "completed" },
        { "canceled", "cancelled" },
        { "failure", "failed" },
        { "pending", "queued" },
        { "submitted", "queued" },
        { "queueing", "queued" },
        { "running", "in_progress" },
        { "processing", "in_progress" }
    };

    if (!ngx_ai_relay_vtask_word(s, len)) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        out[i] = (s[i] >= 'A' && s[i] <= 'Z') ? (s[i] | 0x20) : s[i];
    }

    for (i = 0; i < sizeof(same) / sizeof(same[0]); i++) {
        n = strlen(same[i].from);

        if (n == len && memcmp(out, same[i].from, n) == 0) {
            n = strlen(same[i].to);
            memcpy(out, same[i].to, n);
            return n;
        }
    }

    return len;
}
