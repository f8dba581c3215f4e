
/*
 * Copyright (C) ngx_ai_relay authors
 */


#ifndef _NGX_AI_RELAY_SETTLE_H_INCLUDED_
#define _NGX_AI_RELAY_SETTLE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_ai_relay_module.h"
#include "ngx_ai_relay_pending.h"


/* a finished request waiting to be settled with others of its user */
typedef struct {
    ngx_queue_t                   queue;
    ngx_str_t                     user;
    ngx_str_t                     key_hash;
    ngx_str_t                     request_id;
    ngx_str_t                     key_id;
    ngx_str_t                     model;
    ngx_str_t                     lease;       /* "": its own reservation */
    ngx_str_t                     record;      /* JSON */
    int64_t                       cost;        /* micro-USD */
    int64_t                       prompt_tokens;
    int64_t                       completion_tokens;
    ngx_uint_t                    status;
    ngx_uint_t                    key_index;   /* set when batched */
    ngx_ai_relay_pending_t       *node;        /* in the shared zone, or heap */
} ngx_ai_relay_settle_item_t;


#define NGX_AI_RELAY_SETTLE_BATCH  128


void ngx_ai_relay_settle_queue(ngx_ai_relay_main_conf_t *armcf,
    ngx_ai_relay_settle_item_t *item);
void ngx_ai_relay_settle_flush(ngx_ai_relay_main_conf_t *armcf);
void ngx_ai_relay_settle_timer_handler(ngx_event_t *ev);
void ngx_ai_relay_settle_adopt(ngx_ai_relay_main_conf_t *armcf, void *p);


#endif /* _NGX_AI_RELAY_SETTLE_H_INCLUDED_ */
