
/*
 * Copyright (C) ngx_ai_relay authors
 */


#ifndef _NGX_AI_RELAY_PENDING_H_INCLUDED_
#define _NGX_AI_RELAY_PENDING_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_ai_relay_module.h"


#define NGX_AI_RELAY_PENDING_BATCH  0    /* SETTLE's arguments, serialized */
#define NGX_AI_RELAY_PENDING_ITEM   1    /* one finished request, unbatched */


/* one settlement in the zone: its owner and what it holds */
typedef struct {
    ngx_queue_t                  queue;
    ngx_pid_t                    owner;
    ngx_uint_t                   kind;
    size_t                       len;
    u_char                       data[1];
} ngx_ai_relay_pending_t;


/* a settlement found in the zone whose owner is gone; now ours */
typedef void (*ngx_ai_relay_pending_found_pt)(ngx_ai_relay_main_conf_t *armcf,
    ngx_ai_relay_pending_t *p);


char *ngx_ai_relay_pending_conf(ngx_conf_t *cf,
    ngx_ai_relay_main_conf_t *armcf);
ngx_ai_relay_pending_t *ngx_ai_relay_pending_alloc(
    ngx_ai_relay_main_conf_t *armcf, ngx_uint_t kind, size_t len);
void ngx_ai_relay_pending_link(ngx_ai_relay_main_conf_t *armcf,
    ngx_ai_relay_pending_t *p, ngx_ai_relay_pending_t **drop,
    ngx_uint_t ndrop);
void ngx_ai_relay_pending_remove(ngx_ai_relay_main_conf_t *armcf,
    ngx_ai_relay_pending_t *p);
ngx_uint_t ngx_ai_relay_pending_claim(ngx_ai_relay_main_conf_t *armcf,
    ngx_ai_relay_pending_found_pt batch, ngx_ai_relay_pending_found_pt item);
ngx_uint_t ngx_ai_relay_pending_count(ngx_ai_relay_main_conf_t *armcf);


#endif /* _NGX_AI_RELAY_PENDING_H_INCLUDED_ */
