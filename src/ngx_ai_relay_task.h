
/*
 * Copyright (C) ngx_ai_relay authors
 */


#ifndef _NGX_AI_RELAY_TASK_H_INCLUDED_
#define _NGX_AI_RELAY_TASK_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_ai_relay_module.h"


/* found: how a remix goes on once its video is found (NULL: a poll) */
ngx_int_t ngx_ai_relay_task_send(ngx_http_request_t *r,
    ngx_ai_relay_ctx_t *ctx, ngx_ai_relay_checked_pt found);


#endif /* _NGX_AI_RELAY_TASK_H_INCLUDED_ */
