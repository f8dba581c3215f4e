
/*
 * Copyright (C) ngx_ai_relay authors
 */


#ifndef _NGX_AI_RELAY_VTASK_H_INCLUDED_
#define _NGX_AI_RELAY_VTASK_H_INCLUDED_


/*
 * What an upstream's status means for a video task (nginx-free): the
 * module's polls, downloads and deletes and `ai-relay tasks reconcile`
 * decide with these what they hand to the REFUND script, which applies
 * the same rules (src/lua/refund.lua).
 */


#include <stddef.h>
#include <stdint.h>


/* a status word REFUND takes: letters, digits, '_', 1 to 32 of them */
#define NGX_AI_RELAY_VTASK_WORD_MAX    32

/* how a status leaves a task */
#define NGX_AI_RELAY_VTASK_RUNNING     0   /* queued, in_progress, another
                                              word: unfinished */
#define NGX_AI_RELAY_VTASK_COMPLETED   1   /* ended with its video */
#define NGX_AI_RELAY_VTASK_LOST        2   /* failed, cancelled, expired,
                                              deleted: ended without it */


int ngx_ai_relay_vtask_word(const unsigned char *s, size_t len);
int ngx_ai_relay_vtask_end(const unsigned char *s, size_t len);

/*
 * The reconciling pass: what REFUND is told of a task polled now.  seen:
 * the upstream's status, NULL when the upstream does not know the task
 * (404); expires_at: the upstream's (0: none); the task's deadline is
 * expires_at if an unfinished task has one, else created + expire_after.
 * -> seen if it ended the task, "expired" if the task is unfinished or
 * unknown past its deadline, else seen (NULL: nothing to tell).
 */
const char *ngx_ai_relay_vtask_verdict(const char *seen, int64_t now,
    int64_t created, int64_t expires_at, int64_t expire_after);


/*
 * The task APIs the relay serves: where a submit's answer names the task,
 * where a poll's answer says its status, and the path that polls it (the
 * reconciling pass).  Their names are kept in the task's hash ("api");
 * a task without one is OpenAI's video API.
 */
typedef struct {
    const char  *name;        /* "video", "generation", "dashscope" */
    const char  *id;          /* "id", "task_id", "output.task_id" */
    const char  *status;      /* "status", "output.task_status" */
    const char  *poll;        /* "/v1/videos/", ... + the task's id */
} ngx_ai_relay_vtask_api_t;

extern const ngx_ai_relay_vtask_api_t  ngx_ai_relay_vtask_apis[];

#define NGX_AI_RELAY_VTASK_VIDEO       0   /* POST /v1/videos */
#define NGX_AI_RELAY_VTASK_GENERATION  1   /* POST /v1/video/generations */
#define NGX_AI_RELAY_VTASK_DASHSCOPE   2   /* DashScope's async tasks */

/* the API of a task hash's "api" field (NULL or empty: OpenAI's videos) */
const ngx_ai_relay_vtask_api_t *ngx_ai_relay_vtask_api(const char *name,
    size_t len);

/*
 * An upstream's status word in the relay's words, into out (at least
 * NGX_AI_RELAY_VTASK_WORD_MAX bytes): lower case; "succeeded", "success",
 * "succeed" -> "completed"; "canceled" -> "cancelled"; "failure" ->
 * "failed"; "pending", "submitted", "queueing" -> "queued"; "running",
 * "processing" -> "in_progress"; any other word as it is, lower case.
 * -> its length, or 0 if s is not a status word.
 */
size_t ngx_ai_relay_vtask_normal(const unsigned char *s, size_t len,
    unsigned char *out);


#endif /* _NGX_AI_RELAY_VTASK_H_INCLUDED_ */
